/*-------------------------------------------------------------------------
 *
 * append.c
 *	  eventsource.append and eventsource.append_events: their input (the
 *	  events array, event ids, types, data and metadata) checked and read
 *	  into a batch, which stream_write.c writes to the stream with
 *	  optimistic concurrency and idempotent retries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

#include "arguments.h"
#include "eventsource.h"
#include "stream_write.h"
#include "streams.h"
#include "worker_shared.h"

/* ------------------------------------------------------------------------
 * Input
 * ------------------------------------------------------------------------
 */

static void
check_json_object(Jsonb *value, const char *name)
{
	if (!JB_ROOT_IS_OBJECT(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", name)));
}

static int
hex_digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Parses an event id given as a JSON string: 32 hex digits, with or without
 * the hyphens of the standard 8-4-4-4-12 form.
 */
static Datum
parse_event_id(const char *chars, int length, int ordinal)
{
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));
	bool		hyphens = length == 36;
	int			digits = 0;

	if (length != 32 && length != 36)
		goto invalid;
	for (int i = 0; i < length; i++)
	{
		int			value;

		if (hyphens && (i == 8 || i == 13 || i == 18 || i == 23))
		{
			if (chars[i] != '-')
				goto invalid;
			continue;
		}
		value = hex_digit_value(chars[i]);
		if (value < 0)
			goto invalid;
		if (digits % 2 == 0)
			uuid->data[digits / 2] = value << 4;
		else
			uuid->data[digits / 2] |= value;
		digits++;
	}
	return UUIDPGetDatum(uuid);

invalid:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("event %d: id \"%.*s\" is not a valid uuid", ordinal, Min(length, 64), chars)));
	pg_unreachable();
}

/*
 * Reads one {"type", "data", "metadata", "id"} object of the events array into
 * position i of the batch.
 */
static void
parse_event(EventBatch *batch, int i, JsonbContainer *object)
{
	char		where[32];
	char		type_label[40];
	JsonbIterator *iterator = JsonbIteratorInit(object);
	JsonbValue	key;
	JsonbValue	value;
	JsonbIteratorToken token;
	bool		have_type = false;
	bool		have_data = false;
	bool		have_id = false;

	snprintf(where, sizeof(where), "event %d: ", i + 1);
	snprintf(type_label, sizeof(type_label), "event %d: type", i + 1);
	batch->metadata_nulls[i] = true;

	while ((token = JsonbIteratorNext(&iterator, &key, true)) != WJB_DONE)
	{
		const char *name;
		int			name_length;

		if (token != WJB_KEY)
			continue;
		token = JsonbIteratorNext(&iterator, &value, true);
		Assert(token == WJB_VALUE);
		name = key.val.string.val;
		name_length = key.val.string.len;

#define KEY_IS(literal) \
	(name_length == (int) strlen(literal) && memcmp(name, literal, name_length) == 0)

		if (KEY_IS("type"))
		{
			if (value.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s must be a JSON string", type_label)));
			batch->event_types[i] = checked_event_type(value.val.string.val,
													   value.val.string.len, type_label);
			have_type = true;
		}
		else if (KEY_IS("data"))
		{
			if (value.type != jbvBinary || !JsonContainerIsObject(value.val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%sdata must be a JSON object", where)));
			batch->data[i] = JsonbPGetDatum(JsonbValueToJsonb(&value));
			have_data = true;
		}
		else if (KEY_IS("metadata"))
		{
			if (value.type == jbvNull)
				continue;
			if (value.type != jbvBinary || !JsonContainerIsObject(value.val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%smetadata must be a JSON object or null", where)));
			batch->metadata[i] = JsonbPGetDatum(JsonbValueToJsonb(&value));
			batch->metadata_nulls[i] = false;
		}
		else if (KEY_IS("id"))
		{
			if (value.type == jbvNull)
				continue;
			if (value.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("%sid must be a uuid in a JSON string", where)));
			batch->event_ids[i] = parse_event_id(value.val.string.val,
												 value.val.string.len, i + 1);
			have_id = true;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%sunknown key \"%.*s\"", where, Min(name_length, 64), name),
					 errdetail("An event has the keys \"type\", \"data\", \"metadata\" and \"id\".")));
#undef KEY_IS
	}

	if (!have_type)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s\"type\" is missing", where)));
	if (!have_data)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s\"data\" is missing", where)));
	if (have_id)
		batch->ids_supplied = true;
	else
		batch->event_ids[i] = generate_event_id();
}

/* An event id of a batch and the first event (1-based) that has it. */
typedef struct FirstEventWithId
{
	pg_uuid_t	id;				/* the hash key */
	int			ordinal;
} FirstEventWithId;

/*
 * Raises 22023 if two events of the batch have one id, naming the first
 * event that repeats an earlier one's id and that earlier event.  One hash
 * table lookup per event: a batch has no size limit but memory.
 */
static void
reject_duplicate_ids(EventBatch *batch)
{
	HASHCTL		control;
	HTAB	   *first_events;

	control.keysize = sizeof(pg_uuid_t);
	control.entrysize = sizeof(FirstEventWithId);
	control.hcxt = CurrentMemoryContext;
	first_events = hash_create("eventsource append_events ids", batch->count, &control,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int i = 0; i < batch->count; i++)
	{
		bool		found;
		FirstEventWithId *first = hash_search(first_events, DatumGetUUIDP(batch->event_ids[i]),
											  HASH_ENTER, &found);

		if (found)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("events %d and %d have the same id", first->ordinal, i + 1)));
		first->ordinal = i + 1;
		CHECK_FOR_INTERRUPTS();
	}
	hash_destroy(first_events);
}

/*
 * Reads the events argument of append_events: a non-empty JSON array of event
 * objects, with no event id given twice.
 */
static EventBatch *
parse_events(Jsonb *events)
{
	EventBatch *batch;
	int			count;

	if (!JB_ROOT_IS_ARRAY(events) || JB_ROOT_IS_SCALAR(events))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a JSON array")));
	count = JB_ROOT_COUNT(events);
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must not be an empty array")));

	batch = new_event_batch(count);
	for (int i = 0; i < count; i++)
	{
		JsonbValue *element = getIthJsonbValueFromContainer(&events->root, i);

		if (element->type != jbvBinary || !JsonContainerIsObject(element->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event %d is not a JSON object", i + 1)));
		parse_event(batch, i, element->val.binary.data);
		CHECK_FOR_INTERRUPTS();
	}

	if (batch->ids_supplied)
		reject_duplicate_ids(batch);
	return batch;
}

/* ------------------------------------------------------------------------
 * SQL-callable functions
 * ------------------------------------------------------------------------
 */

/*
 * The search path this backend's first append ran under, which its kept
 * statements were parsed under.
 */
static char *kept_plans_search_path = NULL;

/*
 * Appends the batch as the function's owner (the extension's), as a SECURITY
 * DEFINER function would but without the cost of one (a GUC nest level and
 * the search path set and reset on every call): the statements it runs name
 * everything with its schema (kept_plan.c), and the inline projections'
 * handlers pin their own search path.  A caller whose search path is not the
 * one the kept statements were parsed under (a schema per tenant, a function
 * with a search path of its own) gets that one set for the append, as
 * SECURITY DEFINER would, so that the plan cache does not parse and plan
 * them all again at every change (test/shell/append_search_path_replan.sh).
 * Then has the worker woken at commit.
 */
static void
append_as_owner(FunctionCallInfo fcinfo, text *stream_id, EventBatch *batch,
				ExpectedVersion expected, StreamsSchema schema, AppendResult *result)
{
	ActingAsOwner acting;
	int			nest_level = -1;

	if (kept_plans_search_path == NULL)
		kept_plans_search_path = MemoryContextStrdup(TopMemoryContext, namespace_search_path);
	else if (strcmp(namespace_search_path, kept_plans_search_path) != 0)
	{
		nest_level = NewGUCNestLevel();
		(void) set_config_option("search_path", kept_plans_search_path, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	act_as_function_owner(fcinfo, &acting);
	append_batch(stream_id, batch, expected, schema, result);
	stop_acting_as_owner(&acting);
	if (nest_level >= 0)
		AtEOXact_GUC(true, nest_level);
	notifier_wake_at_commit();
}

/*
 * eventsource.append(stream_id, event_type, data, metadata, expected_version,
 * event_id) returns bigint: the stream's new version.
 */
static Datum
append_event(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, true);
	EventBatch *batch = new_event_batch(1);
	ExpectedVersion expected;
	AppendResult result;
	text	   *event_type;
	Jsonb	   *data;

	check_not_null(fcinfo, 1, "event_type");
	event_type = PG_GETARG_TEXT_PP(1);
	batch->event_types[0] = checked_event_type(VARDATA_ANY(event_type),
											   VARSIZE_ANY_EXHDR(event_type), "event_type");

	check_not_null(fcinfo, 2, "data");
	data = PG_GETARG_JSONB_P(2);
	check_json_object(data, "data");
	batch->data[0] = JsonbPGetDatum(data);

	batch->metadata_nulls[0] = PG_ARGISNULL(3);
	if (!PG_ARGISNULL(3))
	{
		Jsonb	   *metadata = PG_GETARG_JSONB_P(3);

		check_json_object(metadata, "metadata");
		batch->metadata[0] = JsonbPGetDatum(metadata);
	}

	expected = expected_version_argument(fcinfo, 4);

	batch->ids_supplied = !PG_ARGISNULL(5);
	batch->event_ids[0] = batch->ids_supplied ? PG_GETARG_DATUM(5) : generate_event_id();

	append_as_owner(fcinfo, stream_id, batch, expected, schema, &result);
	PG_RETURN_INT64(result.stream_version);
}

SCHEMA_VERSIONED_FUNCTION(eventsource_append, append_event);

/*
 * eventsource.append_events(stream_id, events, expected_version) returns
 * (stream_version bigint, global_positions bigint[]).
 */
static Datum
append_events(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, true);
	EventBatch *batch;
	ExpectedVersion expected;
	AppendResult result;
	TupleDesc	result_desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	Datum	   *positions;

	check_not_null(fcinfo, 1, "events");
	batch = parse_events(PG_GETARG_JSONB_P(1));
	expected = expected_version_argument(fcinfo, 2);

	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	append_as_owner(fcinfo, stream_id, batch, expected, schema, &result);

	positions = palloc(batch->count * sizeof(Datum));
	for (int i = 0; i < batch->count; i++)
		positions[i] = Int64GetDatum(result.global_positions[i]);
	values[0] = Int64GetDatum(result.stream_version);
	values[1] = PointerGetDatum(construct_array(positions, batch->count, INT8OID,
												sizeof(int64), true, TYPALIGN_DOUBLE));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc),
													  values, nulls)));
}

SCHEMA_VERSIONED_FUNCTION(eventsource_append_events, append_events);
