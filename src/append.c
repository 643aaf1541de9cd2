/*-------------------------------------------------------------------------
 *
 * append.c
 *	  eventsource.append, eventsource.append_events and
 *	  eventsource.append_to_streams: their input (the events array, event
 *	  ids, types, data and metadata; the streams of a call to many) checked
 *	  and read into batches, which stream_write.c writes to the streams with
 *	  optimistic concurrency and idempotent retries.  A call to many streams
 *	  takes their turns first, in one order (streams.c), then the
 *	  consistency keys of its events and its condition (consistency.c),
 *	  then checks every expected version and the condition, then writes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "arguments.h"
#include "checkpoint.h"
#include "consistency.h"
#include "eventsource.h"
#include "query.h"
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

/* The "tags" of event ordinal of a batch: a JSON array of strings. */
static Datum
json_tags(JsonbValue *value, int ordinal, bool *none)
{
	char		label[32];
	int			count;
	Datum	   *tags = json_array_strings(value, &count);

	snprintf(label, sizeof(label), "event %d: tags", ordinal);
	if (tags == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON array of strings or null", label)));
	return checked_tags(tags, NULL, count, label, none);
}

/*
 * Reads one {"type", "data", "metadata", "tags", "id"} object of the events array into
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
	bool		have_type = false;
	bool		have_data = false;
	bool		have_id = false;

	snprintf(where, sizeof(where), "event %d: ", i + 1);
	snprintf(type_label, sizeof(type_label), "event %d: type", i + 1);
	batch->metadata_nulls[i] = true;

	while (next_object_key(&iterator, &key, &value))
	{
		if (JSON_KEY_IS(key, "type"))
		{
			if (value.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s must be a JSON string", type_label)));
			batch->event_types[i] = checked_event_type(value.val.string.val,
													   value.val.string.len, type_label);
			have_type = true;
		}
		else if (JSON_KEY_IS(key, "data"))
		{
			if (value.type != jbvBinary || !JsonContainerIsObject(value.val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%sdata must be a JSON object", where)));
			batch->data[i] = JsonbPGetDatum(JsonbValueToJsonb(&value));
			have_data = true;
		}
		else if (JSON_KEY_IS(key, "metadata"))
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
		else if (JSON_KEY_IS(key, "tags"))
		{
			if (value.type == jbvNull)
				continue;
			batch->tags[i] = json_tags(&value, i + 1, &batch->tags_nulls[i]);
		}
		else if (JSON_KEY_IS(key, "id"))
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
					 errmsg("%sunknown key \"%.*s\"", where, Min(key.val.string.len, 64), key.val.string.val),
					 errdetail("An event has the keys \"type\", \"data\", \"metadata\", \"tags\" and \"id\".")));
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
 * Appends as the function's owner (the extension's), as a SECURITY
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
typedef struct AppendingAsOwner
{
	ActingAsOwner acting;
	int			nest_level;		/* -1: the search path was left as it was */
} AppendingAsOwner;

static void
begin_append_as_owner(FunctionCallInfo fcinfo, AppendingAsOwner *appending)
{
	appending->nest_level = -1;
	if (kept_plans_search_path == NULL)
		kept_plans_search_path = MemoryContextStrdup(TopMemoryContext, namespace_search_path);
	else if (strcmp(namespace_search_path, kept_plans_search_path) != 0)
	{
		appending->nest_level = NewGUCNestLevel();
		(void) set_config_option("search_path", kept_plans_search_path, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	act_as_function_owner(fcinfo, &appending->acting);
}

static void
end_append_as_owner(AppendingAsOwner *appending)
{
	stop_acting_as_owner(&appending->acting);
	if (appending->nest_level >= 0)
		AtEOXact_GUC(true, appending->nest_level);
	notifier_wake_at_commit();
}

static void
append_as_owner(FunctionCallInfo fcinfo, text *stream_id, EventBatch *batch,
				ExpectedVersion expected, StreamsSchema schema, AppendResult *result)
{
	AppendingAsOwner appending;

	begin_append_as_owner(fcinfo, &appending);
	append_batch(stream_id, batch, expected, schema, result);
	end_append_as_owner(&appending);
}

/*
 * eventsource.append(stream_id, event_type, data, metadata, expected_version,
 * event_id, tags) returns bigint: the stream's new version.
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

	/* tags: the argument 0.8.0 added */
	if (PG_NARGS() > 6 && !PG_ARGISNULL(6))
	{
		ArrayType  *tags = PG_GETARG_ARRAYTYPE_P(6);
		Datum	   *elements;
		bool	   *element_nulls;
		int			count;

		if (ARR_NDIM(tags) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("tags must be a one-dimensional array")));
		deconstruct_array(tags, TEXTOID, -1, false, TYPALIGN_INT, &elements, &element_nulls, &count);
		batch->tags[0] = checked_tags(elements, element_nulls, count, "tags", &batch->tags_nulls[0]);
	}

	append_as_owner(fcinfo, stream_id, batch, expected, schema, &result);
	PG_RETURN_INT64(result.stream_version);
}

SCHEMA_VERSIONED_FUNCTION(eventsource_append, append_event);

/* The global positions of an append of count events, as a bigint[]. */
static Datum
global_positions_array(AppendResult *result, int count)
{
	Datum	   *positions = palloc(Max(count, 1) * sizeof(Datum));

	for (int i = 0; i < count; i++)
		positions[i] = Int64GetDatum(result->global_positions[i]);
	return PointerGetDatum(construct_array(positions, count, INT8OID,
										   sizeof(int64), true, TYPALIGN_DOUBLE));
}

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

	check_not_null(fcinfo, 1, "events");
	batch = parse_events(PG_GETARG_JSONB_P(1));
	expected = expected_version_argument(fcinfo, 2);

	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	append_as_owner(fcinfo, stream_id, batch, expected, schema, &result);

	values[0] = Int64GetDatum(result.stream_version);
	values[1] = global_positions_array(&result, batch->count);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc),
													  values, nulls)));
}

SCHEMA_VERSIONED_FUNCTION(eventsource_append_events, append_events);

/* ------------------------------------------------------------------------
 * append_to_streams
 * ------------------------------------------------------------------------
 */

/* One entry of append_to_streams' appends. */
typedef struct StreamAppend
{
	text	   *stream_id;
	ExpectedVersion expected;
	EventBatch *batch;			/* NULL: a check-only expectation */
	AppendResult result;
} StreamAppend;

/* Says which entry of appends an error is about. */
typedef struct AppendEntryContext
{
	int			ordinal;
	text	   *stream_id;		/* NULL until it is read */
} AppendEntryContext;

static void
append_entry_error_context(void *argument)
{
	AppendEntryContext *entry = argument;

	if (entry->stream_id != NULL)
		errcontext("entry %d of appends, stream \"%s\"", entry->ordinal,
				   text_for_message(entry->stream_id));
	else
		errcontext("entry %d of appends", entry->ordinal);
}

/* Whether a JSON value is a number with an integral value within bigint's range, *result. */
static bool
json_bigint(JsonbValue *value, int64 *result)
{
	Datum		number;
	Datum		integer;

	if (value->type != jbvNumeric)
		return false;
	number = NumericGetDatum(value->val.numeric);
	if (DatumGetBool(DirectFunctionCall2(numeric_lt, number,
										 DirectFunctionCall1(int8_numeric, Int64GetDatum(PG_INT64_MIN)))) ||
		DatumGetBool(DirectFunctionCall2(numeric_gt, number,
										 DirectFunctionCall1(int8_numeric, Int64GetDatum(PG_INT64_MAX)))))
		return false;
	integer = DirectFunctionCall1(numeric_int8, number);
	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, number, DirectFunctionCall1(int8_numeric, integer))))
		return false;
	*result = DatumGetInt64(integer);
	return true;
}

/*
 * Reads one {"stream_id", "expected_version", "events"} object of appends.
 * An entry without "events" checks its stream's version and writes nothing,
 * so it must give an expected version.
 */
static void
parse_stream_append(StreamAppend *append, JsonbContainer *object, AppendEntryContext *context)
{
	JsonbIterator *iterator = JsonbIteratorInit(object);
	JsonbValue	key;
	JsonbValue	value;
	JsonbValue	events = {jbvNull};

	append->expected = (ExpectedVersion) {EXPECT_ANY, 0};
	while (next_object_key(&iterator, &key, &value))
	{
		if (JSON_KEY_IS(key, "stream_id"))
		{
			if (value.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("stream_id must be a JSON string")));
			append->stream_id = checked_stream_id_text(cstring_to_text_with_len(value.val.string.val,
																				value.val.string.len),
													   true);
			context->stream_id = append->stream_id;
		}
		else if (JSON_KEY_IS(key, "expected_version"))
		{
			int64		version;

			if (value.type == jbvNull)
				continue;
			if (!json_bigint(&value, &version))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("expected_version must be a JSON integer or null"),
						 errdetail("An expected version is a bigint: -1, 0 or a stream version.")));
			append->expected = checked_expected_version(version);
		}
		else if (JSON_KEY_IS(key, "events"))
		{
			events = value;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%.*s\"", Min(key.val.string.len, 64), key.val.string.val),
					 errdetail("An entry of appends has the keys \"stream_id\", \"expected_version\" and \"events\".")));
	}

	if (append->stream_id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"stream_id\" is missing")));
	/* read once the stream is known, so that an error in them names it */
	if (events.type != jbvNull)
	{
		if (events.type != jbvBinary || !JsonContainerIsArray(events.val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("events must be a JSON array")));
		append->batch = parse_events(JsonbValueToJsonb(&events));
	}
	if (append->batch == NULL && append->expected.kind == EXPECT_ANY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an entry without events must have an expected_version"),
				 errdetail("An entry without \"events\" checks the version of its stream and writes nothing.")));
}

/* Reads appends: a non-empty JSON array of entries. */
static StreamAppend *
parse_stream_appends(Jsonb *appends, int *count)
{
	StreamAppend *entries;
	AppendEntryContext context;
	ErrorContextCallback callback;

	if (!JB_ROOT_IS_ARRAY(appends) || JB_ROOT_IS_SCALAR(appends))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("appends must be a JSON array")));
	*count = JB_ROOT_COUNT(appends);
	if (*count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("appends must not be an empty array")));

	entries = palloc0(*count * sizeof(StreamAppend));
	callback.callback = append_entry_error_context;
	callback.arg = &context;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	for (int i = 0; i < *count; i++)
	{
		JsonbValue *element = getIthJsonbValueFromContainer(&appends->root, i);

		context.ordinal = i + 1;
		context.stream_id = NULL;
		if (element->type != jbvBinary || !JsonContainerIsObject(element->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an entry of appends must be a JSON object")));
		parse_stream_append(&entries[i], element->val.binary.data, &context);
		CHECK_FOR_INTERRUPTS();
	}
	error_context_stack = callback.previous;
	return entries;
}

/*
 * Checks every entry's expected version, in the order of appends, before
 * anything is written (a check-only entry's result is the version seen),
 * except that of an entry with event ids whose stream has moved on, which
 * append_batch finds to be a retry of an append made or a conflict, so that a conflict names the first entry that fails
 * and burns no global position.  The row of a stream that is only checked
 * is locked in share mode, so that its version holds until commit also
 * against a writer that takes no turn (a transaction that wrote before).
 * Call while connected to SPI, holding the streams' turns.
 */
static void
check_stream_expectations(StreamAppend *entries, int count, StreamsSchema schema)
{
	for (int i = 0; i < count; i++)
	{
		int64		version;
		bool		exists;

		if (entries[i].expected.kind == EXPECT_ANY)
			continue;
		exists = find_stream_version(entries[i].stream_id, entries[i].batch == NULL, &version);
		if (expectation_met(entries[i].expected, exists, version))
			;
		else if (entries[i].batch != NULL && entries[i].batch->ids_supplied)
			continue;			/* maybe a retry of this very append: append_batch tells */
		else
			raise_version_conflict(entries[i].stream_id, entries[i].expected, version, schema);
		entries[i].result.stream_version = version;
	}
}

/*
 * Reads the condition argument: {"fail_if_events_match": query, "after":
 * checkpoint text or null}; *after is NULL when the condition is on every
 * event that matches.
 */
static EventQuery *
parse_condition(Jsonb *condition, Checkpoint **after)
{
	JsonbIterator *iterator;
	JsonbValue	key;
	JsonbValue	value;
	EventQuery *query = NULL;

	*after = NULL;
	if (!JB_ROOT_IS_OBJECT(condition) || JB_ROOT_IS_SCALAR(condition))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("condition must be a JSON object"),
				 errdetail("A condition is {\"fail_if_events_match\": query, \"after\": checkpoint}.")));
	iterator = JsonbIteratorInit(&condition->root);
	while (next_object_key(&iterator, &key, &value))
	{
		if (JSON_KEY_IS(key, "fail_if_events_match"))
		{
			if (value.type != jbvBinary || !JsonContainerIsObject(value.val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("fail_if_events_match must be a JSON object with \"items\"")));
			query = parse_event_query(JsonbValueToJsonb(&value), "fail_if_events_match");
		}
		else if (JSON_KEY_IS(key, "after"))
		{
			if (value.type == jbvNull)
				continue;
			if (value.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("after must be a checkpoint in a JSON string, or null"),
						 errdetail("A checkpoint is written (transaction_id,global_position), e.g. (742,15).")));
			*after = checkpoint_from_cstring(pnstrdup(value.val.string.val, value.val.string.len));
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%.*s\" in the condition", Min(key.val.string.len, 64),
							key.val.string.val),
					 errdetail("A condition has the keys \"fail_if_events_match\" and \"after\".")));
	}
	if (query == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"fail_if_events_match\" is missing from the condition")));
	check_condition_items(query);
	return query;
}

/*
 * Whether the call repeats one that committed: every entry that writes has
 * event ids, and its events are stored in its stream (append_batch returns
 * their result and writes nothing).  Such a call is not checked against its
 * condition, which its own events would match.  Call while connected to SPI.
 */
static bool
call_already_made(StreamAppend *entries, int count)
{
	bool		writes = false;

	for (int i = 0; i < count; i++)
	{
		if (entries[i].batch == NULL)
			continue;
		if (!batch_already_appended(entries[i].stream_id, entries[i].batch))
			return false;
		writes = true;
	}
	return writes;
}

/*
 * Takes the consistency keys of the call (consistency.c): those of its
 * events, and those of its condition.
 */
static void
lock_call_keys(StreamAppend *entries, int count, const EventQuery *condition)
{
	ConsistencyKeys keys = {0};

	for (int i = 0; i < count; i++)
	{
		EventBatch *batch = entries[i].batch;

		if (batch == NULL)
			continue;
		for (int event = 0; event < batch->count; event++)
			add_event_keys(&keys, batch->event_types[event], batch->tags[event], batch->tags_nulls[event]);
		batch->keys_locked = true;
	}
	if (condition != NULL)
		add_condition_keys(&keys, condition);
	lock_consistency_keys(&keys, condition != NULL);
}

/*
 * eventsource.append_to_streams(appends jsonb, condition jsonb) returns
 * table (stream_id text, stream_version bigint, global_positions bigint[]):
 * appends to many streams atomically, a row per entry of appends in its
 * order (an entry that only checks gives its stream's version and no
 * positions), unless an event that matches the condition's query comes
 * after its checkpoint (SE006).
 */
static Datum
append_to_streams(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	ReturnSetInfo *result_set = (ReturnSetInfo *) fcinfo->resultinfo;
	StreamAppend *entries;
	StreamTurn *turns;
	int			count;
	AppendingAsOwner appending;
	EventQuery *condition = NULL;
	Checkpoint *after = NULL;

	check_not_null(fcinfo, 0, "appends");
	entries = parse_stream_appends(PG_GETARG_JSONB_P(0), &count);
	if (!PG_ARGISNULL(1))
		condition = parse_condition(PG_GETARG_JSONB_P(1), &after);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	/* On a standby, or in a read-only transaction: say so before taking any turn. */
	PreventCommandIfReadOnly("eventsource.append_to_streams()");
	turns = palloc(count * sizeof(StreamTurn));
	for (int i = 0; i < count; i++)
		turns[i] = (StreamTurn) {entries[i].stream_id, entries[i].batch != NULL, i + 1, 0};
	lock_streams_in_log_order(turns, count);
	lock_call_keys(entries, count, condition);
	(void) GetTopTransactionId();

	begin_append_as_owner(fcinfo, &appending);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	check_stream_expectations(entries, count, schema);
	if (condition != NULL && !call_already_made(entries, count))
		raise_if_condition_matched(condition, after);
	SPI_finish();
	/* outside SPI: the results live in this function's memory */
	for (int i = 0; i < count; i++)
		if (entries[i].batch != NULL)
			append_batch(entries[i].stream_id, entries[i].batch, entries[i].expected, schema,
						 &entries[i].result);
	end_append_as_owner(&appending);

	for (int i = 0; i < count; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = PointerGetDatum(entries[i].stream_id);
		values[1] = Int64GetDatum(entries[i].result.stream_version);
		values[2] = global_positions_array(&entries[i].result,
										   entries[i].batch != NULL ? entries[i].batch->count : 0);
		tuplestore_putvalues(result_set->setResult, result_set->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(eventsource_append_to_streams_0_8);

Datum
eventsource_append_to_streams_0_8(PG_FUNCTION_ARGS)
{
	return append_to_streams(fcinfo, STREAMS_WITH_TAGS);
}
