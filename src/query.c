/*-------------------------------------------------------------------------
 *
 * query.c
 *	  A query of events, {"items": [{"types": [...], "tags": [...]}, ...]},
 *	  read from its JSON and checked: at least one item and at most
 *	  EVENTSOURCE_MAX_QUERY_ITEMS; in each, types (event types) and tags
 *	  (tags), each a non-empty array of strings when given.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "arguments.h"
#include "query.h"

/* Says which item of a query an error is about. */
static void
query_item_error_context(void *argument)
{
	errcontext("item %d of the query", *(int *) argument);
}

/*
 * The strings of a JSON array that must not be empty, checked as what
 * (event types or tags; key names it in errors), as a text[].
 */
static ArrayType *
json_string_array(JsonbValue *value, const char *key, bool tags)
{
	int			count;
	Datum	   *strings = json_array_strings(value, &count);

	if (strings == NULL || count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must be a non-empty JSON array of strings", key)));
	if (count > EVENTSOURCE_MAX_TAGS_PER_EVENT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("\"%s\" has %d elements", key, count),
				 errdetail("A query item has at most %d event types and %d tags.",
						   EVENTSOURCE_MAX_TAGS_PER_EVENT, EVENTSOURCE_MAX_TAGS_PER_EVENT)));
	for (int i = 0; i < count; i++)
	{
		text	   *string = DatumGetTextPP(strings[i]);

		if (tags)
			check_tag(VARDATA_ANY(string), VARSIZE_ANY_EXHDR(string), key);
		else
			(void) checked_event_type(VARDATA_ANY(string), VARSIZE_ANY_EXHDR(string),
									  "an event type of \"types\"");
	}
	return construct_array(strings, count, TEXTOID, -1, false, TYPALIGN_INT);
}

static void
parse_query_item(QueryItem *item, JsonbValue *value)
{
	JsonbIterator *iterator;
	JsonbValue	key;
	JsonbValue	field;

	if (value->type != jbvBinary || !JsonContainerIsObject(value->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an item of a query must be a JSON object")));
	iterator = JsonbIteratorInit(value->val.binary.data);
	while (next_object_key(&iterator, &key, &field))
	{
		if (JSON_KEY_IS(key, "types"))
			item->types = json_string_array(&field, "types", false);
		else if (JSON_KEY_IS(key, "tags"))
			item->tags = json_string_array(&field, "tags", true);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%.*s\" in an item of a query",
							Min(key.val.string.len, 64), key.val.string.val),
					 errdetail("An item of a query has the keys \"types\" and \"tags\".")));
	}
}

/*
 * Reads a query, the argument name: {"items": [...]}, with at least one item;
 * an item without types or tags matches every event.
 */
EventQuery *
parse_event_query(Jsonb *query, const char *name)
{
	EventQuery *parsed = palloc0(sizeof(EventQuery));
	JsonbValue *items;
	ErrorContextCallback callback;
	int			ordinal = 0;

	if (!JB_ROOT_IS_OBJECT(query) || JB_ROOT_IS_SCALAR(query))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object with \"items\"", name)));
	items = getKeyJsonValueFromContainer(&query->root, "items", 5, NULL);
	if (items == NULL || items->type != jbvBinary || !JsonContainerIsArray(items->val.binary.data) ||
		JsonContainerSize(items->val.binary.data) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"items\" of %s must be a non-empty JSON array", name),
				 errdetail("A query is {\"items\": [{\"types\": [...], \"tags\": [...]}, ...]}; an event matches it when it matches any item.")));
	if (JB_ROOT_COUNT(query) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has a key other than \"items\"", name)));
	parsed->count = JsonContainerSize(items->val.binary.data);
	if (parsed->count > EVENTSOURCE_MAX_QUERY_ITEMS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has %d items", name, parsed->count),
				 errdetail("A query has at most %d items.", EVENTSOURCE_MAX_QUERY_ITEMS)));
	parsed->items = palloc0(parsed->count * sizeof(QueryItem));

	callback.callback = query_item_error_context;
	callback.arg = &ordinal;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	for (int i = 0; i < parsed->count; i++)
	{
		ordinal = i + 1;
		parse_query_item(&parsed->items[i], getIthJsonbValueFromContainer(items->val.binary.data, i));
	}
	error_context_stack = callback.previous;
	return parsed;
}
