/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *	  The stream lifecycle: delete_stream (soft delete), tombstone_stream,
 *	  set_stream_metadata (truncate_before, max_count, max_age), and
 *	  scavenge, which removes the events nothing shows any more and the
 *	  snapshots the loads no longer use.  The rule that decides which events
 *	  stream reads show (first_visible_version) is a stream rule (streams.c).
 *
 * Deletes and retention settings hide events from stream reads at once.
 * The global log keeps them, as it was written, until scavenge removes
 * them; scavenge leaves every event that a subscription (a consumer group
 * member's checkpoint) or an async projection whose filter takes it has not
 * passed yet, so no consumer ever skips an event it was owed.  Consumers
 * learn of deletes and metadata changes from the audit events in the
 * $streams stream; the global log puts a delete's event after every event
 * of the stream it covers and before every event appended after it (a
 * delete takes the stream's turn and records itself as the stream's last
 * writer, as an append does).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "arguments.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "log.h"
#include "statistics.h"
#include "stream_write.h"
#include "streams.h"
#include "worker_shared.h"
#include "worker_transaction.h"

PG_FUNCTION_INFO_V1(eventsource_scavenge);

/* The worker's first scavenge batch, and its smallest (so that a pass always moves on). */
#define SCAVENGE_FIRST_BATCH_ROWS	100
#define SCAVENGE_FEWEST_BATCH_ROWS	10

static KeptPlan lock_stream_plan = {
	"SELECT s.stream_version, s.tombstoned_at IS NOT NULL"
	"  FROM eventsource.streams s WHERE s.stream_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	1, {TEXTOID}
};

/*
 * Hides every event of stream $1; $2: tombstones it too.  With the log order
 * (0.7.0 on, the second plan) it records this transaction as the last that
 * wrote the stream, or fails with 40001 if a newer one did: the marker
 * would come before that one's events.
 */
#define END_STREAM_SQL \
	"UPDATE eventsource.streams" \
	"   SET deleted_through = stream_version," \
	"       tombstoned_at = CASE WHEN $2 THEN pg_catalog.now() END"
#define END_STREAM_WHERE_SQL " WHERE stream_id OPERATOR(pg_catalog.=) $1"
#define END_STREAM_OPERATION_SQL "CASE WHEN $2 THEN 'tombstone' ELSE 'delete' END"

static KeptPlan end_stream_plans[2] = {
	{END_STREAM_SQL END_STREAM_WHERE_SQL, 2, {TEXTOID, BOOLOID}},
	{END_STREAM_SQL ", last_transaction_id = "
		STREAM_LOG_TRANSACTION_ID_SQL("last_transaction_id", END_STREAM_OPERATION_SQL)
	END_STREAM_WHERE_SQL, 2, {TEXTOID, BOOLOID}}
};

/* A tombstone for a stream id never written: it may never be. */
#define TOMBSTONE_NEW_STREAM_SQL(column, value) \
	"INSERT INTO eventsource.streams" \
	"       (stream_id, category, stream_version, created_at, updated_at, deleted_through, tombstoned_at" column ")" \
	"VALUES ($1, $2, 0, pg_catalog.now(), pg_catalog.now(), 0, pg_catalog.now()" value ")" \
	"    ON CONFLICT (stream_id) DO NOTHING"

static KeptPlan tombstone_new_stream_plans[2] = {
	{TOMBSTONE_NEW_STREAM_SQL("", ""), 2, {TEXTOID, TEXTOID}},
	{TOMBSTONE_NEW_STREAM_SQL(", last_transaction_id",
							  ", " STREAM_LOG_TRANSACTION_ID_SQL("NULL::pg_catalog.xid8", "'tombstone'")),
	2, {TEXTOID, TEXTOID}}
};

static KeptPlan delete_stream_snapshots_plan = {
	"DELETE FROM eventsource.snapshots s WHERE s.stream_id OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}
};

static KeptPlan set_metadata_plan = {
	"UPDATE eventsource.streams SET truncate_before = $2, max_count = $3, max_age = $4"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1",
	4, {TEXTOID, INT8OID, INT8OID, INTERVALOID}
};

static KeptPlan metadata_plan = {
	"SELECT eventsource.stream_metadata($1)",
	1, {TEXTOID}
};

/*
 * A stream that has something that hides events: the condition of the
 * partial index streams_retention_idx, which the scavenge plans use.
 */
#define STREAM_HIDES_EVENTS \
	"(s.truncate_before IS NOT NULL OR s.max_count IS NOT NULL OR s.max_age IS NOT NULL" \
	" OR s.deleted_through IS NOT NULL)"

/*
 * The first $3 streams from $2 on, in stream id order, that have something
 * that hides events (the partial index), each with its row.
 */
#define SCAVENGED_STREAMS \
	"(SELECT s.stream_id, s.category, s AS stream FROM eventsource.streams s" \
	"  WHERE " STREAM_HIDES_EVENTS " AND s.stream_id OPERATOR(pg_catalog.>=) $2" \
	"  ORDER BY s.stream_id LIMIT $3)"

/*
 * Up to $1 events hidden from stream reads that no consumer still needs, of
 * the streams SCAVENGED_STREAMS visits: below their first visible version,
 * and past the checkpoint of every subscription member and async projection
 * whose filter takes the event (the log's rules, log.h: the same filters
 * poll, replay and events_behind read with, their queries from 0.8.0 on;
 * the category of the stream's row is its events').  The lateral subquery makes the first
 * visible version a bound of an index scan, computed once per stream rather
 * than once per event; it skips held events before its limit, so events held
 * for one event type do not hide free ones after them.  Returns how many
 * events it removed and the greatest stream id among them, and how many
 * streams it visited and the greatest of them: the worker's next batch
 * resumes there, so that a batch costs at most $3 streams and $1 events, not
 * a visit to every stream an earlier batch already cleaned (whose index
 * entries stay until VACUUM).
 */
#define SCAVENGE_PLAN(subscription_query, projection_query) \
	"WITH removable AS (" \
	"  SELECT e.global_position, v.stream_id" \
	"    FROM " SCAVENGED_STREAMS " v" \
	"   CROSS JOIN LATERAL (" \
	"         SELECT e.global_position" \
	"           FROM eventsource.events e" \
	"          WHERE e.stream_id OPERATOR(pg_catalog.=) v.stream_id" \
	"            AND e.stream_version OPERATOR(pg_catalog.<) eventsource.first_visible_version(v.stream)" \
	"            AND NOT EXISTS (" \
	"                SELECT FROM eventsource.subscriptions b" \
	"                  JOIN eventsource.subscription_members m ON m.subscription_name OPERATOR(pg_catalog.=) b.name" \
	"                 WHERE " CATEGORY_TAKES("b.category", "v.category") \
	"                   AND " EVENT_TYPES_TAKE("b.event_types") \
	"                   AND " GROUP_MEMBER_TAKES("b.consumer_group_size", "m.consumer_group_member") \
	"                   AND " AFTER_CHECKPOINT("m.checkpoint") subscription_query ")" \
	"            AND NOT EXISTS (" \
	"                SELECT FROM eventsource.projections p" \
	"                 WHERE p.mode OPERATOR(pg_catalog.=) 'async'" \
	"                   AND " CATEGORY_TAKES("p.category", "v.category") \
	"                   AND " EVENT_TYPES_TAKE("p.event_types") \
	"                   AND " AFTER_CHECKPOINT("p.checkpoint") projection_query ")" \
	"          ORDER BY e.stream_version LIMIT $1) e" \
	"   ORDER BY v.stream_id" \
	"   LIMIT $1)," \
	" removed AS (" \
	"  DELETE FROM eventsource.events e USING removable r" \
	"   WHERE e.global_position OPERATOR(pg_catalog.=) r.global_position" \
	"   RETURNING r.stream_id)" \
	" SELECT (SELECT pg_catalog.count(*) FROM removed), (SELECT pg_catalog.max(removed.stream_id) FROM removed)," \
	"        pg_catalog.count(*), pg_catalog.max(v.stream_id)" \
	"   FROM " SCAVENGED_STREAMS " v"

static KeptPlan scavenge_plan = {
	SCAVENGE_PLAN("", ""),
	3, {INT4OID, TEXTOID, INT4OID}
};

/* From 0.8.0, what a subscription's or projection's query skips is not owed to it. */
static KeptPlan scavenge_0_8_plan = {
	SCAVENGE_PLAN("   AND (b.query IS NULL OR " QUERY_MATCHES("b.query") ")",
				  "   AND (p.query IS NULL OR " QUERY_MATCHES("p.query") ")"),
	3, {INT4OID, TEXTOID, INT4OID}
};

/*
 * Up to $1 snapshots below their stream's first snapshot version, which the
 * loads never use (snapshot.c): one may hold the state of a deleted stream,
 * saved by a transaction that committed after a repeatable read delete
 * began.  The snapshot just before the first visible version stays: it
 * stands for the history retention hides.  Scavenge never waits: it skips a
 * snapshot another transaction has locked (a save replacing it, the
 * snapshots_to_keep trim, a delete, delete_snapshots) and a stream whose row
 * a delete, tombstone or metadata change has locked, and leaves them to a
 * later round; the key-share lock on the stream keeps those from changing
 * what the snapshot's stream hides until this transaction ends.  Driven by
 * the snapshots, so that streams without one cost nothing.
 */
static KeptPlan scavenge_snapshots_plan = {
	"DELETE FROM eventsource.snapshots n"
	" USING (SELECT k.stream_id, k.stream_version, k.schema_version"
	"          FROM eventsource.snapshots k"
	"          JOIN eventsource.streams s ON s.stream_id OPERATOR(pg_catalog.=) k.stream_id"
	"         WHERE " STREAM_HIDES_EVENTS
	"           AND k.stream_version OPERATOR(pg_catalog.<) " FIRST_SNAPSHOT_VERSION("s")
	"         LIMIT $1"
	"           FOR UPDATE OF k SKIP LOCKED FOR KEY SHARE OF s SKIP LOCKED) r"
	" WHERE n.stream_id OPERATOR(pg_catalog.=) r.stream_id"
	"   AND n.stream_version OPERATOR(pg_catalog.=) r.stream_version"
	"   AND n.schema_version OPERATOR(pg_catalog.=) r.schema_version",
	1, {INT4OID}
};

/* ------------------------------------------------------------------------
 * Which events stream reads show
 * ------------------------------------------------------------------------
 */

/* ------------------------------------------------------------------------
 * Delete, tombstone, metadata
 * ------------------------------------------------------------------------
 */

/*
 * Starts an operation that writes an audit event: refuses to run read-only,
 * notes the caller (whom the audit event names) and acts as the extension's
 * owner, connects to SPI, and takes the turn of the stream it ends (when
 * stream_id is not NULL: delete and tombstone write the stream's order too)
 * and the audit stream's before any write, so that what it writes lands in
 * log order (see lock_stream_in_log_order).
 */
static void
begin_audited_change(FunctionCallInfo fcinfo, const char *function_name, text *stream_id,
					 ActingAsOwner *acting)
{
	PreventCommandIfReadOnly(function_name);
	act_as_function_owner(fcinfo, acting);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (stream_id != NULL)
		lock_stream_in_log_order(stream_id);
	lock_stream_in_log_order(cstring_to_text(EVENTSOURCE_AUDIT_STREAM));
}

/*
 * Locks the row of an existing stream; returns false when there is none.
 */
static bool
lock_stream(text *stream_id, int64 *stream_version, bool *tombstoned)
{
	Datum		values[1] = {PointerGetDatum(stream_id)};
	bool		isnull;

	if (run_kept_plan(&lock_stream_plan, values, NULL, false) == 0)
		return false;
	*stream_version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*tombstoned = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return true;
}

static void
raise_no_such_stream(text *stream_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("stream \"%s\" does not exist", text_to_cstring(stream_id)),
			 errdetail("Nothing was ever appended to it.")));
}

/*
 * The data of an audit event: the JSON text of {"stream_id": stream_id, ...}
 * with the members the format and its arguments give after it.
 */
pg_attribute_printf(2, 3)
static char *
audit_event_data(text *stream_id, const char *format,...)
{
	StringInfoData data;

	initStringInfo(&data);
	appendStringInfoString(&data, "{\"stream_id\": ");
	escape_json(&data, text_to_cstring(stream_id));
	for (;;)
	{
		va_list		arguments;
		int			needed;

		va_start(arguments, format);
		needed = appendStringInfoVA(&data, format, arguments);
		va_end(arguments);
		if (needed == 0)
			break;
		enlargeStringInfo(&data, needed);
	}
	appendStringInfoChar(&data, '}');
	return data.data;
}

/*
 * The body of delete_stream and tombstone_stream: hides every event of the
 * stream, deletes its snapshots, records the audit event; returns the
 * version deleted through.  schema has the lifecycle (these functions came
 * with it).
 */
static int64
end_stream(FunctionCallInfo fcinfo, StreamsSchema schema, bool tombstone)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, true);
	ExpectedVersion expected = expected_version_argument(fcinfo, 1);
	const char *function_name = tombstone ? "eventsource.tombstone_stream()" : "eventsource.delete_stream()";
	Datum		values[2] = {PointerGetDatum(stream_id), BoolGetDatum(tombstone)};
	Datum		new_stream[2] = {PointerGetDatum(stream_id), PointerGetDatum(category_of(stream_id))};
	int64		version = 0;
	bool		tombstoned = false;
	bool		exists;
	bool		log_order = streams_have_log_order(schema);
	ActingAsOwner acting;

	begin_audited_change(fcinfo, function_name, stream_id, &acting);
	for (;;)
	{
		exists = lock_stream(stream_id, &version, &tombstoned);
		if (exists || !tombstone)
			break;
		/* A tombstone for an id never written, unless an append creates it meanwhile. */
		if (!expectation_met(expected, false, 0))
			raise_version_conflict(stream_id, expected, 0, schema);
		if (run_kept_plan(&tombstone_new_stream_plans[log_order], new_stream, NULL, false) > 0)
			break;
	}
	if (exists)
	{
		if (tombstoned)
			reject_if_tombstoned(stream_id, schema);
		if (!expectation_met(expected, true, version))
			raise_version_conflict(stream_id, expected, version, schema);
		run_kept_plan(&end_stream_plans[log_order], values, NULL, false);
	}
	else if (!tombstone)
		raise_no_such_stream(stream_id);

	run_kept_plan(&delete_stream_snapshots_plan, values, NULL, false);
	append_system_event(EVENTSOURCE_AUDIT_STREAM,
						tombstone ? "$stream-tombstoned" : "$stream-deleted",
						audit_event_data(stream_id, ", \"stream_version\": " INT64_FORMAT, version),
						acting.caller, schema);
	SPI_finish();
	stop_acting_as_owner(&acting);
	return version;
}

/*
 * eventsource.delete_stream(stream_id, expected_version) returns bigint.
 */
static Datum
delete_stream(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	PG_RETURN_INT64(end_stream(fcinfo, schema, false));
}

SCHEMA_VERSIONED_FUNCTION(eventsource_delete_stream, delete_stream);

/*
 * eventsource.tombstone_stream(stream_id, expected_version) returns bigint.
 */
static Datum
tombstone_stream(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	PG_RETURN_INT64(end_stream(fcinfo, schema, true));
}

SCHEMA_VERSIONED_FUNCTION(eventsource_tombstone_stream, tombstone_stream);

static void
raise_bad_metadata(const char *message, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", message),
			 errdetail("%s", detail),
			 errhint("Stream metadata is a JSON object with the keys truncate_before (a version), max_count (a number of events) and max_age (an interval such as \"30 days\", or seconds), each optional.")));
}

/*
 * A metadata value that must be a whole number from minimum to
 * EVENTSOURCE_MAX_METADATA_NUMBER.
 */
static int64
metadata_integer(JsonbValue *value, const char *key, int64 minimum)
{
	Datum		number;
	float8		approximate;

	if (value->type != jbvNumeric)
		raise_bad_metadata(psprintf("stream metadata %s must be a number", key),
						   psprintf("%s was not a number.", key));
	number = NumericGetDatum(value->val.numeric);
	approximate = DatumGetFloat8(DirectFunctionCall1(numeric_float8, number));
	if (!(approximate >= minimum && approximate <= EVENTSOURCE_MAX_METADATA_NUMBER) ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, number,
										  DirectFunctionCall2(numeric_trunc, number, Int32GetDatum(0)))) != 0)
		raise_bad_metadata(psprintf("stream metadata %s must be a whole number from " INT64_FORMAT " to " INT64_FORMAT,
									key, minimum, (int64) EVENTSOURCE_MAX_METADATA_NUMBER),
						   psprintf("%s was %s.", key,
									DatumGetCString(DirectFunctionCall1(numeric_out, number))));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, number));
}

/*
 * max_age: an interval's text, or a number of seconds; positive and at most
 * EVENTSOURCE_MAX_AGE_YEARS (now() - max_age must be a timestamp).
 */
static Datum
metadata_interval(JsonbValue *value)
{
	Datum		interval;
	Interval	zero = {0, 0, 0};
	Interval	longest = {0, 0, EVENTSOURCE_MAX_AGE_YEARS * MONTHS_PER_YEAR};

	if (value->type == jbvString)
		interval = DirectFunctionCall3(interval_in,
									   CStringGetDatum(pnstrdup(value->val.string.val, value->val.string.len)),
									   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	else if (value->type == jbvNumeric)
		interval = DirectFunctionCall2(interval_mul,
									   DirectFunctionCall3(interval_in, CStringGetDatum("1 second"),
														   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)),
									   DirectFunctionCall1(numeric_float8, NumericGetDatum(value->val.numeric)));
	else
	{
		raise_bad_metadata("stream metadata max_age must be an interval or a number of seconds",
						   "max_age was neither a string nor a number.");
		return (Datum) 0;
	}
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, interval, PointerGetDatum(&zero))) <= 0 ||
		DatumGetInt32(DirectFunctionCall2(interval_cmp, interval, PointerGetDatum(&longest))) > 0)
		raise_bad_metadata(psprintf("stream metadata max_age must be positive and at most %d years",
									EVENTSOURCE_MAX_AGE_YEARS),
						   psprintf("max_age was %s.",
									DatumGetCString(DirectFunctionCall1(interval_out, interval))));
	return interval;
}

/*
 * eventsource.set_stream_metadata(stream_id, metadata) returns jsonb: the
 * stream's metadata as stream_metadata returns it.
 */
static Datum
set_stream_metadata(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, true);
	Jsonb	   *metadata;
	JsonbIterator *iterator;
	JsonbIteratorToken token;
	JsonbValue	key;
	JsonbValue	value;
	Datum		values[4] = {PointerGetDatum(stream_id), 0, 0, 0};
	bool		nulls[4] = {false, true, true, true};
	Datum		previous;
	Datum		result;
	ActingAsOwner acting;
	int64		version;
	bool		tombstoned;
	bool		isnull;

	check_not_null(fcinfo, 1, "metadata");
	metadata = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_OBJECT(metadata) || JB_ROOT_IS_SCALAR(metadata))
		raise_bad_metadata("stream metadata must be a JSON object",
						   "The metadata given was not an object.");

	iterator = JsonbIteratorInit(&metadata->root);
	while ((token = JsonbIteratorNext(&iterator, &key, true)) != WJB_DONE)
	{
		char	   *name;

		if (token != WJB_KEY)
			continue;
		name = pnstrdup(key.val.string.val, key.val.string.len);
		token = JsonbIteratorNext(&iterator, &value, true);
		if (strcmp(name, "truncate_before") == 0)
		{
			if (!(nulls[1] = value.type == jbvNull))
				values[1] = Int64GetDatum(metadata_integer(&value, name, 0));
		}
		else if (strcmp(name, "max_count") == 0)
		{
			if (!(nulls[2] = value.type == jbvNull))
				values[2] = Int64GetDatum(metadata_integer(&value, name, 1));
		}
		else if (strcmp(name, "max_age") == 0)
		{
			if (!(nulls[3] = value.type == jbvNull))
				values[3] = metadata_interval(&value);
		}
		else
			raise_bad_metadata(psprintf("unknown stream metadata key \"%s\"", name),
							   "The keys are truncate_before, max_count and max_age.");
	}

	begin_audited_change(fcinfo, "eventsource.set_stream_metadata()", NULL, &acting);
	if (!lock_stream(stream_id, &version, &tombstoned))
		raise_no_such_stream(stream_id);
	if (tombstoned)
		reject_if_tombstoned(stream_id, schema);

	run_kept_plan(&metadata_plan, values, NULL, false);
	previous = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	previous = datumCopy(previous, false, -1);
	run_kept_plan(&set_metadata_plan, values, nulls, false);
	run_kept_plan(&metadata_plan, values, NULL, false);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	append_system_event(EVENTSOURCE_AUDIT_STREAM, "$stream-metadata-set",
						audit_event_data(stream_id, ", \"metadata\": %s, \"previous\": %s",
										 JsonbToCString(NULL, &DatumGetJsonbP(result)->root, 0),
										 JsonbToCString(NULL, &DatumGetJsonbP(previous)->root, 0)),
						acting.caller, schema);
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	stop_acting_as_owner(&acting);
	PG_RETURN_DATUM(result);
}

SCHEMA_VERSIONED_FUNCTION(eventsource_set_stream_metadata, set_stream_metadata);

/* ------------------------------------------------------------------------
 * Scavenge
 * ------------------------------------------------------------------------
 */

/*
 * What a scavenge batch did: the events it removed and the greatest stream
 * id among them, the streams it visited and the greatest of them (NULL when
 * none), and the snapshots it removed.
 */
typedef struct ScavengeBatch
{
	uint64		events;
	char	   *last_cleaned_stream;
	int64		streams;
	char	   *last_stream;
	uint64		snapshots;
} ScavengeBatch;

static char *
optional_text_column(int column)
{
	bool		isnull;
	Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull);

	return isnull ? NULL : TextDatumGetCString(value);
}

/*
 * Removes up to max_rows rows: the events scavenge_plan finds in the first
 * max_streams streams from from_stream on (in stream id order; "" for all),
 * then, if that reached the last stream, within what is left of max_rows,
 * the snapshots scavenge_snapshots_plan does.  Call while connected to SPI.
 */
static ScavengeBatch
scavenge_batch(int max_rows, int max_streams, const char *from_stream)
{
	Datum		values[3] = {Int32GetDatum(max_rows), CStringGetTextDatum(from_stream),
	Int32GetDatum(max_streams)};
	ScavengeBatch batch;
	bool		isnull;

	eventsource_scavenging = true;
	PG_TRY();
	{
		run_kept_plan(events_have_tags(installed_streams_schema()) ? &scavenge_0_8_plan : &scavenge_plan,
					  values, NULL, false);
	}
	PG_FINALLY();
	{
		eventsource_scavenging = false;
	}
	PG_END_TRY();
	batch.events = (uint64) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	batch.last_cleaned_stream = optional_text_column(2);
	batch.streams = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	batch.last_stream = optional_text_column(4);
	count_statistic(STATISTIC_EVENTS_SCAVENGED, batch.events);
	batch.snapshots = 0;
	if (batch.events < (uint64) max_rows && batch.streams < max_streams)
	{
		values[0] = Int32GetDatum(max_rows - (int) batch.events);
		batch.snapshots = run_kept_plan(&scavenge_snapshots_plan, values, NULL, false);
	}
	return batch;
}

/*
 * eventsource.scavenge(max_events) returns bigint: the events and snapshots
 * removed, max_events at most.
 */
Datum
eventsource_scavenge(PG_FUNCTION_ARGS)
{
	int32		max_events = checked_integer(fcinfo, 0, "max_events", 1, EVENTSOURCE_MAX_SCAVENGE_EVENTS);
	ScavengeBatch batch;

	PreventCommandIfReadOnly("eventsource.scavenge()");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	batch = scavenge_batch(max_events, PG_INT32_MAX, "");
	SPI_finish();
	PG_RETURN_INT64((int64) (batch.events + batch.snapshots));
}

/*
 * The bounds of the worker's next scavenge batch, in events removed and in
 * streams visited, each adapting so that a batch, a transaction of its own,
 * takes about half of eventsource.scavenge_slice; and the slice they were
 * sized for.  The two cost differently (visiting a stream whose hidden
 * events are gone but not yet vacuumed walks their index entries), so each
 * learns its own: a bound the batch reached grows by the time left, at most
 * doubling, and both shrink at once, in proportion, after a batch that took
 * too long, the batch that ends a pass included (it visits every stream left
 * and removes nothing, which a bound learnt from removing batches would
 * make the longest of the pass).
 */
typedef struct ScavengeBatchBounds
{
	int			rows;
	int			streams;
} ScavengeBatchBounds;

static ScavengeBatchBounds scavenge_bounds = {SCAVENGE_FIRST_BATCH_ROWS, SCAVENGE_FEWEST_BATCH_ROWS};
static int	scavenge_bounds_slice_ms = 0;

/* A bound scaled by ratio, at most doubled, within its limits. */
static int
scaled_bound(int bound, double ratio)
{
	return (int) Max(Min(bound * ratio, Min(2.0 * bound, EVENTSOURCE_MAX_SCAVENGE_EVENTS)),
					 SCAVENGE_FEWEST_BATCH_ROWS);
}

/*
 * Adapts the bounds after a batch that took elapsed_ms: grows those it
 * reached, shrinks both when it took longer than target_ms.
 */
static void
adapt_scavenge_bounds(const ScavengeBatch *batch, const ScavengeBatchBounds *asked,
					  double elapsed_ms, double target_ms)
{
	double		ratio = target_ms / Max(elapsed_ms, 0.01);

	if (ratio < 1.0 || batch->events + batch->snapshots >= (uint64) asked->rows)
		scavenge_bounds.rows = scaled_bound(asked->rows, ratio);
	if (ratio < 1.0 || batch->streams >= asked->streams)
		scavenge_bounds.streams = scaled_bound(asked->streams, ratio);
}

/*
 * Scales the next batch to a slice that a reload changed since the last
 * batch, at once: adapting batch by batch would have the batches after a
 * reload from 1 s to 10 ms go on holding the visibility horizon for longer
 * than the new slice.
 */
static void
scale_scavenge_bounds_to_slice(void)
{
	if (scavenge_bounds_slice_ms != 0 && scavenge_bounds_slice_ms != eventsource_scavenge_slice)
	{
		double		ratio = (double) eventsource_scavenge_slice / scavenge_bounds_slice_ms;

		scavenge_bounds.rows = (int) Max(Min(scavenge_bounds.rows * ratio, EVENTSOURCE_MAX_SCAVENGE_EVENTS),
										 SCAVENGE_FEWEST_BATCH_ROWS);
		scavenge_bounds.streams = (int) Max(Min(scavenge_bounds.streams * ratio, EVENTSOURCE_MAX_SCAVENGE_EVENTS),
											SCAVENGE_FEWEST_BATCH_ROWS);
	}
	scavenge_bounds_slice_ms = eventsource_scavenge_slice;
}

/*
 * The stream the pass under way goes on from ("" at the start of a pass).  A
 * stream id is at most EVENTSOURCE_MAX_STREAM_ID_BYTES long; a longer one
 * (written before the limit) would only make the next batch start at a
 * prefix of it, before it.
 */
static char scavenge_from_stream[EVENTSOURCE_MAX_STREAM_ID_BYTES + 1] = "";

/*
 * A slice of the worker's scavenge job: batches, each in a transaction of
 * its own, until the slice ends (worker_slice_ends: its deadline, or
 * notifications to send) or the pass does: a batch that removed
 * fewer rows than it could and visited fewer streams than it could.  The
 * next batch goes on from the last stream the batch removed from when it
 * removed all it could (the stream may have more), else from the last one it
 * visited.  Returns whether the pass goes on.  Removes nothing unless the
 * worker may act on the database's extension (worker_start_transaction),
 * nor in a database whose extension is older than 0.5.0.
 */
bool
run_scavenge_slice(TimestampTz deadline)
{
	scale_scavenge_bounds_to_slice();
	for (;;)
	{
		TimestampTz started = GetCurrentTimestamp();
		ScavengeBatchBounds asked = scavenge_bounds;
		ScavengeBatch batch = {0, NULL, 0, NULL, 0};
		const char *next_stream;

		if (worker_start_transaction("eventsource notifier: scavenge") &&
			streams_have_lifecycle(installed_streams_schema()))
		{
			/* A batch lost in a crash removed nothing anyone could see: the next pass removes it again. */
			worker_commit_without_flush();
			batch = scavenge_batch(asked.rows, asked.streams, scavenge_from_stream);
			next_stream = batch.events == (uint64) asked.rows ? batch.last_cleaned_stream : batch.last_stream;
			if (next_stream != NULL)
				strlcpy(scavenge_from_stream, next_stream, sizeof(scavenge_from_stream));
		}
		worker_commit_transaction();
		adapt_scavenge_bounds(&batch, &asked, (GetCurrentTimestamp() - started) / 1000.0,
							  eventsource_scavenge_slice / 2.0);
		if (batch.events + batch.snapshots < (uint64) asked.rows && batch.streams < asked.streams)
		{
			scavenge_from_stream[0] = '\0';
			return false;
		}
		CHECK_FOR_INTERRUPTS();
		if (worker_slice_ends(deadline))
			return true;
	}
}
