/*-------------------------------------------------------------------------
 *
 * query.c
 *	  A query of events, {"items": [{"types": [...], "tags": [...]}, ...]},
 *	  read from its JSON and checked: at least one item and at most
 *	  EVENTSOURCE_MAX_QUERY_ITEMS; in each, types (event types) and tags
 *	  (tags), each a non-empty array of strings when given.  And the plans
 *	  that read the events of an item, which read_by_query and the
 *	  conditions of append_to_streams share; and whether an event matches
 *	  a query, the filter of a subscription or projection of one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/xid8.h"

#include "arguments.h"
#include "kept_plan.h"
#include "log.h"
#include "query.h"

PG_FUNCTION_INFO_V1(eventsource_event_matches_query);

/* Says which item of a query an error is about. */
static void
query_item_error_context(void *argument)
{
	errcontext("item %d of the query", *(int *) argument);
}

/*
 * The order of strings (text Datums) that event_matches_query searches: by
 * length, then byte for byte (equal exactly when text equality says so).
 */
static int
compare_strings(const void *left, const void *right)
{
	text	   *a = DatumGetTextPP(*(const Datum *) left);
	text	   *b = DatumGetTextPP(*(const Datum *) right);
	int			length = VARSIZE_ANY_EXHDR(a);

	if (length != (int) VARSIZE_ANY_EXHDR(b))
		return length < (int) VARSIZE_ANY_EXHDR(b) ? -1 : 1;
	return memcmp(VARDATA_ANY(a), VARDATA_ANY(b), length);
}

/* Whether strings (count text Datums in compare_strings's order) hold string. */
static bool
sorted_strings_hold(const Datum *strings, int count, Datum string)
{
	return count > 0 && bsearch(&string, strings, count, sizeof(Datum), compare_strings) != NULL;
}

/*
 * The strings of a JSON array that must not be empty, checked as what
 * (event types or tags; key names it in errors), as a text[], and as its
 * elements (text Datums, in compare_strings's order) and their count.
 */
static ArrayType *
json_string_array(JsonbValue *value, const char *key, bool tags, Datum **elements, int *element_count)
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
	*elements = palloc(count * sizeof(Datum));
	memcpy(*elements, strings, count * sizeof(Datum));
	qsort(*elements, count, sizeof(Datum), compare_strings);
	*element_count = count;
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
			item->types = json_string_array(&field, "types", false, &item->type_values, &item->type_count);
		else if (JSON_KEY_IS(key, "tags"))
			item->tags = json_string_array(&field, "tags", true, &item->tag_values, &item->tag_count);
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
		parsed->terms += 1 + parsed->items[i].type_count + parsed->items[i].tag_count;
	}
	error_context_stack = callback.previous;
	return parsed;
}

/*
 * The query argument argno of a function (a subscription's, a projection's
 * filter), checked, or NULL when it is NULL.
 */
Jsonb *
checked_query(FunctionCallInfo fcinfo, int argno)
{
	Jsonb	   *query;

	if (PG_ARGISNULL(argno))
		return NULL;
	query = PG_GETARG_JSONB_P(argno);
	(void) parse_event_query(query, "query");
	return query;
}

/*
 * Whether an event of event_type with tags (NULL: none) matches the query:
 * any of its items, as the plans below read them (its type one of the
 * item's types, its tags containing all of the item's).
 */
bool
event_matches_query(const EventQuery *query, text *event_type, ArrayType *tags)
{
	Datum	   *event_tags = NULL;
	bool	   *event_tag_nulls;
	int			event_tag_count = 0;
	int			present = 0;
	bool		matches = false;

	if (tags != NULL)
	{
		deconstruct_array(tags, TEXTOID, -1, false, TYPALIGN_INT, &event_tags, &event_tag_nulls,
						  &event_tag_count);
		/* A NULL element is no tag (appends store none). */
		for (int i = 0; i < event_tag_count; i++)
			if (!event_tag_nulls[i])
				event_tags[present++] = event_tags[i];
		qsort(event_tags, present, sizeof(Datum), compare_strings);
	}
	for (int i = 0; i < query->count && !matches; i++)
	{
		const QueryItem *item = &query->items[i];

		matches = item->types == NULL ||
			sorted_strings_hold(item->type_values, item->type_count, PointerGetDatum(event_type));
		for (int j = 0; j < item->tag_count && matches; j++)
			matches = sorted_strings_hold(event_tags, present, item->tag_values[j]);
	}
	if (event_tags != NULL)
	{
		pfree(event_tags);
		pfree(event_tag_nulls);
	}
	return matches;
}

/*
 * The query of the calls of one eventsource.event_matches_query expression,
 * parsed, with its JSON, in a memory context of its own that the next query
 * replaces; stable when the expression's query is a constant, the same at
 * every call.
 */
typedef struct ParsedQueryCache
{
	MemoryContext context;
	bool		stable;
	Jsonb	   *source;			/* NULL: none parsed */
	EventQuery *query;
} ParsedQueryCache;

/*
 * Whether the query argument of the call is a constant of the expression.
 * Not a parameter, even an external one: PL/pgSQL keeps a simple
 * expression's state, this cache with it, across evaluations whose variable
 * (a parameter) holds another query each time.
 */
static bool
query_argument_is_constant(FmgrInfo *flinfo)
{
	Node	   *expression = flinfo->fn_expr;
	List	   *arguments;

	if (expression == NULL || !IsA(expression, FuncExpr))
		return false;
	arguments = ((FuncExpr *) expression)->args;
	return list_length(arguments) == 3 && IsA(lthird(arguments), Const);
}

/*
 * eventsource.event_matches_query(event_type, tags, query) returns boolean:
 * whether an event of the type with the tags (NULL: none) matches the query;
 * NULL when the event type or the query is NULL.  The filter of the
 * subscriptions and projections of a query.  The query is parsed once for
 * the calls of an expression with the same query (a plan's rows).
 */
Datum
eventsource_event_matches_query(PG_FUNCTION_ARGS)
{
	ParsedQueryCache *cache = (ParsedQueryCache *) fcinfo->flinfo->fn_extra;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ParsedQueryCache));
		cache->context = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "eventsource query",
											   ALLOCSET_SMALL_SIZES);
		cache->stable = query_argument_is_constant(fcinfo->flinfo);
		fcinfo->flinfo->fn_extra = cache;
	}
	/* A constant query is read (and detoasted) once; another is compared with the last. */
	if (cache->source == NULL || !cache->stable)
	{
		Jsonb	   *query = PG_GETARG_JSONB_P(2);

		if (cache->source == NULL || VARSIZE(cache->source) != VARSIZE(query) ||
			memcmp(cache->source, query, VARSIZE(query)) != 0)
		{
			MemoryContext caller_context;

			MemoryContextReset(cache->context);
			cache->source = NULL;
			caller_context = MemoryContextSwitchTo(cache->context);
			cache->query = parse_event_query(query, "query");
			cache->source = palloc(VARSIZE(query));
			memcpy(cache->source, query, VARSIZE(query));
			MemoryContextSwitchTo(caller_context);
		}
		if ((Pointer) query != DatumGetPointer(PG_GETARG_DATUM(2)))
			pfree(query);
	}
	PG_RETURN_BOOL(event_matches_query(cache->query, PG_GETARG_TEXT_PP(0),
									   PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1)));
}

/*
 * The events of one item of a query after ($1, $2), at most $3, of the event
 * types $4 (NULL: any), below the horizon $6, in log order.  An item with
 * tags $5 reads the tags index, and only the events that have them all
 * (then sorts them: OFFSET 0 keeps the planner from reading the log in its
 * order and filtering instead, which for a rare tag reads the whole log, and
 * from adding the checkpoint's range of the log order index to the bitmap,
 * which reads that range of it); one without reads the log in its order.
 * Generic plans, always: planned with a tag's values, a plan looks far
 * cheaper than the generic one, so the plan cache would plan every call.
 */
#define QUERY_ITEM_RANGE \
	LOG_CONDITIONS("$6")
#define QUERY_ITEM_ARGUMENTS \
	6, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTARRAYOID, XID8OID}, CURSOR_OPT_GENERIC_PLAN

static KeptPlan query_tagged_item_plan = {
	"SELECT e.* FROM (" EVENT_COLUMNS
	" WHERE e.tags IS NOT NULL AND e.tags OPERATOR(pg_catalog.@>) $5 OFFSET 0) e"
	QUERY_ITEM_RANGE LOG_ORDER " LIMIT $3",
	QUERY_ITEM_ARGUMENTS
};

/*
 * The same item read in log order from after, its tags a filter (written so
 * that it cannot be an index condition): for a read near the head of the
 * log, where the events after the checkpoint are fewer than a tag's.
 */
static KeptPlan query_tagged_item_near_head_plan = {
	EVENT_COLUMNS QUERY_ITEM_RANGE
	"   AND (e.tags OPERATOR(pg_catalog.@>) $5) IS TRUE"
	LOG_ORDER " LIMIT $3",
	QUERY_ITEM_ARGUMENTS
};

/* The newest global position in the log (one probe of its primary key). */
static KeptPlan newest_position_plan = {
	"SELECT pg_catalog.max(e.global_position) FROM eventsource.events e",
	0, {InvalidOid}
};

/*
 * Below this many global positions between a read's checkpoint and the
 * newest, an item with tags reads the log in order from the checkpoint
 * (a decision's condition, a follower near the head: the events after the
 * checkpoint are few); above, the tags index (all the tag's events after
 * the checkpoint, sorted: the checkpoint is far back, or NULL).
 */
#define NEAR_HEAD_POSITIONS 2000

static bool
near_head(const Checkpoint *after)
{
	bool		isnull;
	Datum		newest;

	if (after->transaction_id == 0 && after->global_position == 0)
		return false;
	if (run_kept_plan(&newest_position_plan, NULL, NULL, true) == 0)
		return false;
	newest = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetInt64(newest) - after->global_position < NEAR_HEAD_POSITIONS;
}

static KeptPlan query_untagged_item_plan = {
	EVENT_COLUMNS QUERY_ITEM_RANGE LOG_ORDER " LIMIT $3",
	QUERY_ITEM_ARGUMENTS
};

/*
 * Runs the plan of one item of a query: its events after after, at most
 * limit, below horizon (an xid8 Datum), in log order, into SPI_tuptable
 * (rows of EVENT_COLUMNS).  latest reads on the latest snapshot (what has
 * committed by now, this transaction's own changes too) instead of the
 * statement's.  Call while connected to SPI.
 */
uint64
read_query_item(const QueryItem *item, const Checkpoint *after, int32 limit, Datum horizon, bool latest)
{
	KeptPlan   *plan = &query_untagged_item_plan;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, item->types == NULL, item->tags == NULL, false};

	values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(after->transaction_id));
	values[1] = Int64GetDatum(after->global_position);
	values[2] = Int32GetDatum(limit);
	values[3] = PointerGetDatum(item->types);
	values[4] = PointerGetDatum(item->tags);
	values[5] = horizon;
	if (item->tags != NULL)
		plan = near_head(after) ? &query_tagged_item_near_head_plan : &query_tagged_item_plan;
	if (latest)
		return run_kept_plan_on_latest_snapshot(plan, values, nulls);
	return run_kept_plan(plan, values, nulls, true);
}
