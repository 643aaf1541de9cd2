/*-------------------------------------------------------------------------
 *
 * stream_write.c
 *	  Writing a batch of events to a stream: the atomic append of one or
 *	  many events with optimistic concurrency and idempotent retries, which
 *	  eventsource.append and append_events (append.c) and the system events
 *	  of the lifecycle (the $streams audit stream) share.
 *
 * An append is one statement: a compare-and-set on the stream's row in
 * eventsource.streams and the INSERT of all the events after it.  The row
 * lock taken by the compare-and-set orders writers of one stream, and the
 * row records the log transaction id of its last writer, so that a writer
 * whose events would come before that one's in the global log is refused
 * (see lock_stream_in_log_order); writers of different streams share nothing
 * but the global position sequence.  The expected version is checked before
 * any global position is taken, so the loser of a race burns none.
 *
 * When the caller supplies event ids, one query first looks them up together
 * with the stream's version.  Ids already stored at the same place make the
 * call an idempotent retry (the original result is returned and nothing is
 * written); otherwise the compare-and-set is made against the version that
 * query saw, and a writer that slipped in between sends us round again, so
 * a retry racing its own original still ends in the original result.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "arguments.h"
#include "consistency.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "statistics.h"
#include "stream_write.h"
#include "streams.h"
#include "worker_shared.h"

/* Set while an append's INSERT runs: the inline projections' trigger acts only then. */
bool		eventsource_appending = false;

static KeptPlan probe_plan = {
	"SELECT (SELECT s.stream_version FROM eventsource.streams s WHERE s.stream_id OPERATOR(pg_catalog.=) $1),"
	"       e.stream_id, e.stream_version, e.global_position"
	"  FROM pg_catalog.unnest($2::pg_catalog.uuid[]) WITH ORDINALITY AS i(event_id, ordinal)"
	"  LEFT JOIN eventsource.events e ON e.event_id OPERATOR(pg_catalog.=) i.event_id"
	" ORDER BY i.ordinal",
	2, {TEXTOID, UUIDARRAYOID}
};

/*
 * The statement that writes an append: the compare-and-set on the stream's
 * row and the INSERT of the events, as one statement so that an append costs
 * one executor run.  The events are selected from the stream row the first
 * part returns, so when the compare-and-set fails nothing is inserted and no
 * global position is taken.
 *
 * Its parameters are the same in every variant (a variant ignores those it
 * does not use): $1 stream id, $2 number of events, $3 expected version (NULL:
 * any), $4 category, $5-$8 event id, event type, data and metadata, as
 * arrays when there is more than one event; with tags (0.8.0 on) $9 the
 * tags (text[], NULL: none), and for more than one event the tags of all in
 * one array, each event's the slice from $10 to $11 (NULL: none).
 */
typedef enum StreamChange
{
	ADVANCE_STREAM,				/* the stream exists: move its version */
	CREATE_STREAM				/* the stream is new: insert its row */
} StreamChange;

/*
 * The part of the statement each change makes.  With the log order (0.7.0
 * on) the row's last_transaction_id becomes this transaction's log
 * transaction id, unless a newer transaction wrote the stream (then 40001),
 * and the events take it as their transaction_id; the first %s is the
 * assignment (ADVANCE_STREAM) or the column (CREATE_STREAM), the second the
 * lifecycle's condition or the value, the third the column returned.
 */
static const char *const stream_change_sql[] = {
	[ADVANCE_STREAM] =
	"UPDATE eventsource.streams"
	"   SET stream_version = stream_version OPERATOR(pg_catalog.+) $2, updated_at = pg_catalog.now()%s"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	"   AND ($3::bigint IS NULL OR stream_version OPERATOR(pg_catalog.=) $3)%s"
	" RETURNING stream_version OPERATOR(pg_catalog.-) $2 AS from_version%s",
	[CREATE_STREAM] =
	"INSERT INTO eventsource.streams"
	"       (stream_id, category, stream_version, created_at, updated_at%s)"
	"VALUES ($1, $4, $2, pg_catalog.now(), pg_catalog.now()%s)"
	"    ON CONFLICT (stream_id) DO NOTHING"
	" RETURNING 0::bigint AS from_version%s"
};

static const char *const log_order_column_sql = ", last_transaction_id";
static const char *const log_order_assignment_sql =
", last_transaction_id = " STREAM_LOG_TRANSACTION_ID_SQL("last_transaction_id", "'append'");
static const char *const log_order_value_sql =
", " STREAM_LOG_TRANSACTION_ID_SQL("NULL::pg_catalog.xid8", "'append'");

static const char *const events_sql[2][2] = {
	{
		/* one event */
		"SELECT $1, stream.from_version OPERATOR(pg_catalog.+) 1, $5, $6, $7, $8%s FROM stream",
		/* many events (ROWS FROM: the unnest of pg_catalog takes one array) */
		"SELECT $1, stream.from_version OPERATOR(pg_catalog.+) i.ordinal, i.event_id, i.event_type, i.data, i.metadata%s"
		"  FROM stream,"
		"       ROWS FROM (pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8))"
		"       WITH ORDINALITY AS i(event_id, event_type, data, metadata, ordinal)"
	},
	{
		/* one event, with tags */
		"SELECT $1, stream.from_version OPERATOR(pg_catalog.+) 1, $5, $6, $7, $8%s, $9 FROM stream",
		/* many events, with tags */
		"SELECT $1, stream.from_version OPERATOR(pg_catalog.+) i.ordinal, i.event_id, i.event_type, i.data, i.metadata%s,"
		"       $9[i.tags_from:i.tags_to]"
		"  FROM stream,"
		"       ROWS FROM (pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8),"
		"                  pg_catalog.unnest($10), pg_catalog.unnest($11))"
		"       WITH ORDINALITY AS i(event_id, event_type, data, metadata, tags_from, tags_to, ordinal)"
	}
};

/*
 * Ids the caller supplied can collide with an append to another stream that
 * commits while ours runs; those inserts skip the collision instead of
 * failing on the unique index, so that the caller gets the same clear error
 * as when the other append committed first.  Generated ids cannot collide.
 */
static const char *const skip_taken_ids_sql = " ON CONFLICT (event_id) DO NOTHING";

/* With the stream lifecycle (0.5.0 on), a tombstoned stream does not advance. */
static const char *const not_tombstoned_sql = " AND tombstoned_at IS NULL";

#define APPEND_PLAN_ARGUMENTS 11
StaticAssertDecl(APPEND_PLAN_ARGUMENTS <= KEPT_PLAN_MAX_ARGUMENTS, "the append statement has too many parameters");

/* The kept plan of one variant of the append statement, composed on first use. */
static KeptPlan *
append_plan(StreamChange change, bool many, bool ids_supplied, StreamsSchema schema)
{
	static KeptPlan plans[2][2][2][STREAMS_SCHEMAS];
	KeptPlan   *kept = &plans[change][many][ids_supplied][schema];

	if (kept->sql == NULL)
	{
		Oid			argtypes[APPEND_PLAN_ARGUMENTS] = {TEXTOID, INT8OID, INT8OID, TEXTOID,
			many ? UUIDARRAYOID : UUIDOID, many ? TEXTARRAYOID : TEXTOID,
			many ? JSONBARRAYOID : JSONBOID, many ? JSONBARRAYOID : JSONBOID,
		TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID};
		bool		log_order = streams_have_log_order(schema);
		bool		tags = events_have_tags(schema);
		const char *column = log_order ? log_order_column_sql : "";
		const char *stream_change;

		if (change == ADVANCE_STREAM)
			stream_change = psprintf(stream_change_sql[change],
									 log_order ? log_order_assignment_sql : "",
									 streams_have_lifecycle(schema) ? not_tombstoned_sql : "",
									 column);
		else
			stream_change = psprintf(stream_change_sql[change], column,
									 log_order ? log_order_value_sql : "", column);
		kept->nargs = !tags ? 8 : (many ? 11 : 9);
		memcpy(kept->argtypes, argtypes, kept->nargs * sizeof(Oid));
		kept->sql = MemoryContextStrdup(TopMemoryContext,
										psprintf("WITH stream AS (%s)"
												 " INSERT INTO eventsource.events"
												 " (stream_id, stream_version, event_id, event_type, data, metadata%s%s)"
												 " %s%s RETURNING global_position, stream_version",
												 stream_change,
												 log_order ? ", transaction_id" : "",
												 tags ? ", tags" : "",
												 psprintf(events_sql[tags][many],
														  log_order ? ", stream.last_transaction_id" : ""),
												 ids_supplied ? skip_taken_ids_sql : ""));
	}
	return kept;
}

/*
 * A new event id: a version 7 UUID (Unix milliseconds, then random bits), so
 * ids the extension generates land at the right edge of the event id index.
 */
Datum
generate_event_id(void)
{
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));
	uint64		unix_ms = (uint64) (GetCurrentTimestamp() / 1000) +
		(uint64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;

	if (!pg_strong_random(uuid->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values for an event id")));
	for (int i = 0; i < 6; i++)
		uuid->data[i] = (unsigned char) (unix_ms >> (40 - 8 * i));
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x70;	/* version 7 */
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return UUIDPGetDatum(uuid);
}

/* A batch of count events, to be filled in. */
EventBatch *
new_event_batch(int count)
{
	EventBatch *batch = palloc0(sizeof(EventBatch));

	batch->count = count;
	batch->event_ids = palloc(count * sizeof(Datum));
	batch->event_types = palloc(count * sizeof(Datum));
	batch->data = palloc(count * sizeof(Datum));
	batch->metadata = palloc(count * sizeof(Datum));
	batch->metadata_nulls = palloc0(count * sizeof(bool));
	batch->tags = palloc0(count * sizeof(Datum));
	batch->tags_nulls = palloc(count * sizeof(bool));
	memset(batch->tags_nulls, true, count * sizeof(bool));
	return batch;
}

/*
 * Looks up the batch's event ids and the stream's version in one snapshot.
 * Returns whether any id is stored; the rows, one per event in batch order,
 * are left in SPI_tuptable for resolve_retry.
 */
static bool
probe_event_ids(text *stream_id, EventBatch *batch, bool *exists, int64 *current_version)
{
	Datum		values[2];
	bool		isnull;

	values[0] = PointerGetDatum(stream_id);
	values[1] = PointerGetDatum(construct_array(batch->event_ids, batch->count,
												UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	run_kept_plan(&probe_plan, values, NULL, false);
	*current_version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
	*exists = !isnull;
	if (isnull)
		*current_version = 0;

	for (int i = 0; i < batch->count; i++)
	{
		SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
			return true;
	}
	return false;
}

static bool
same_stream(text *found, text *stream_id)
{
	return VARSIZE_ANY_EXHDR(found) == VARSIZE_ANY_EXHDR(stream_id) &&
		memcmp(VARDATA_ANY(found), VARDATA_ANY(stream_id), VARSIZE_ANY_EXHDR(stream_id)) == 0;
}

/*
 * The caller's event ids were found in the log (probe rows in SPI_tuptable,
 * one per event in batch order).  Either this is a retry of an append that
 * already happened, and *result gets its outcome, or an error is raised.
 */
static void
resolve_retry(text *stream_id, EventBatch *batch, ExpectedVersion expected,
			  bool exists, int64 current_version, StreamsSchema schema, AppendResult *result)
{
	SPITupleTable *rows = SPI_tuptable;
	int64		first_version = 0;
	int			found = 0;

	for (int i = 0; i < batch->count; i++)
	{
		HeapTuple	row = rows->vals[i];
		bool		isnull;
		Datum		found_datum = SPI_getbinval(row, rows->tupdesc, 2, &isnull);
		text	   *found_stream;
		int64		version;

		if (isnull)
			continue;
		found_stream = DatumGetTextPP(found_datum);
		if (!same_stream(found_stream, stream_id))
			ereport(ERROR,
					(errcode(ERRCODE_EVENTSOURCE_DUPLICATE_EVENT_ID),
					 errmsg("event %d: id %s is already used in stream \"%s\"", i + 1,
							DatumGetCString(DirectFunctionCall1(uuid_out, batch->event_ids[i])),
							text_to_cstring(found_stream)),
					 errdetail("An event id identifies one event; a retry must append to the same stream.")));
		version = DatumGetInt64(SPI_getbinval(row, rows->tupdesc, 3, &isnull));
		if (found == 0)
			first_version = version - i;
		if (version != first_version + i)
			break;
		result->global_positions[i] =
			DatumGetInt64(SPI_getbinval(row, rows->tupdesc, 4, &isnull));
		found++;
	}

	if (found != batch->count)
		ereport(ERROR,
				(errcode(ERRCODE_EVENTSOURCE_DUPLICATE_EVENT_ID),
				 errmsg("events do not match an earlier append to stream \"%s\"",
						text_to_cstring(stream_id)),
				 errdetail("Some of the event ids are stored already, but not all of them as one append in this order.")));

	/* The very events are stored: a retry, if it expected what they found. */
	if (!expectation_met(expected, true, first_version - 1))
		raise_version_conflict(stream_id, expected, exists ? current_version : 0, schema);
	result->stream_version = first_version - 1 + batch->count;
}

/*
 * The tags parameters of the append statement for a batch of more than one
 * event: the tags of all events in one text[] ($9), and for each event the
 * bounds of its slice ($10, $11: NULL for an event without tags).
 */
static void
set_batch_tags(EventBatch *batch, Datum *values, bool *nulls)
{
	int			dims[1] = {batch->count};
	int			lower_bounds[1] = {1};
	Datum	   *from = palloc(batch->count * sizeof(Datum));
	Datum	   *to = palloc(batch->count * sizeof(Datum));
	ArrayBuildState *all_tags = initArrayResult(TEXTOID, CurrentMemoryContext, false);
	int			count = 0;

	for (int i = 0; i < batch->count; i++)
	{
		Datum	   *tags;
		int			tag_count;

		from[i] = to[i] = (Datum) 0;
		if (batch->tags_nulls[i])
			continue;
		deconstruct_array(DatumGetArrayTypeP(batch->tags[i]), TEXTOID, -1, false, TYPALIGN_INT,
						  &tags, NULL, &tag_count);
		for (int tag = 0; tag < tag_count; tag++)
			accumArrayResult(all_tags, tags[tag], false, TEXTOID, CurrentMemoryContext);
		from[i] = Int32GetDatum(count + 1);
		to[i] = Int32GetDatum(count + tag_count);
		count += tag_count;
	}
	values[0] = count > 0 ? makeArrayResult(all_tags, CurrentMemoryContext) : (Datum) 0;
	nulls[0] = count == 0;
	values[1] = PointerGetDatum(construct_md_array(from, batch->tags_nulls, 1, dims, lower_bounds,
												   INT4OID, sizeof(int32), true, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_md_array(to, batch->tags_nulls, 1, dims, lower_bounds,
												   INT4OID, sizeof(int32), true, TYPALIGN_INT));
	nulls[1] = nulls[2] = false;
}

/*
 * Runs the append statement: moves the stream from version cas_version (any
 * version when any_version; CREATE_STREAM: from no stream) and inserts the
 * batch after it.  Returns the number of events written: the batch size, or
 * 0 when the stream was not in the expected state.
 */
static uint64
write_append(text *stream_id, EventBatch *batch, StreamsSchema schema, StreamChange change,
			 bool any_version, int64 cas_version, AppendResult *result)
{
	Datum		values[APPEND_PLAN_ARGUMENTS];
	bool		nulls[APPEND_PLAN_ARGUMENTS] = {false};
	bool		many = batch->count > 1;
	uint64 volatile inserted = 0;
	bool		previous_appending;
	bool		isnull;

	values[0] = PointerGetDatum(stream_id);
	values[1] = Int64GetDatum(batch->count);
	values[2] = Int64GetDatum(cas_version);
	nulls[2] = any_version;
	values[3] = change == CREATE_STREAM ? PointerGetDatum(category_of(stream_id)) : (Datum) 0;
	nulls[3] = change != CREATE_STREAM;
	if (!many)
	{
		values[4] = batch->event_ids[0];
		values[5] = batch->event_types[0];
		values[6] = batch->data[0];
		values[7] = batch->metadata[0];
		nulls[7] = batch->metadata_nulls[0];
		values[8] = batch->tags[0];
		nulls[8] = batch->tags_nulls[0];
	}
	else
	{
		int			dims[1] = {batch->count};
		int			lower_bounds[1] = {1};

		values[4] = PointerGetDatum(construct_array(batch->event_ids, batch->count,
													UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		values[5] = PointerGetDatum(construct_array(batch->event_types, batch->count,
													TEXTOID, -1, false, TYPALIGN_INT));
		values[6] = PointerGetDatum(construct_array(batch->data, batch->count,
													JSONBOID, -1, false, TYPALIGN_INT));
		values[7] = PointerGetDatum(construct_md_array(batch->metadata, batch->metadata_nulls,
													   1, dims, lower_bounds,
													   JSONBOID, -1, false, TYPALIGN_INT));
		if (events_have_tags(schema))
			set_batch_tags(batch, values + 8, nulls + 8);
	}

	/* Only this INSERT feeds the inline projections (a restore's COPY does not). */
	previous_appending = eventsource_appending;
	eventsource_appending = true;
	PG_TRY();
	{
		inserted = run_kept_plan(append_plan(change, many, batch->ids_supplied, schema),
								 values, nulls, false);
	}
	PG_FINALLY();
	{
		eventsource_appending = previous_appending;
	}
	PG_END_TRY();
	if (inserted == 0)
		return 0;
	if (inserted != (uint64) batch->count)
	{
		bool		exists;
		int64		current;

		/* An id was taken by an append that committed meanwhile: say where. */
		if (probe_event_ids(stream_id, batch, &exists, &current))
			resolve_retry(stream_id, batch, (ExpectedVersion) {EXPECT_ANY, 0},
						  exists, current, schema, result);
		elog(ERROR, "inserted " UINT64_FORMAT " events instead of %d", inserted, batch->count);
	}

	for (int i = 0; i < batch->count; i++)
		result->global_positions[i] =
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	result->stream_version =
		DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[batch->count - 1], SPI_tuptable->tupdesc, 2, &isnull));
	return inserted;
}

/*
 * Takes the consistency keys of the batch's events (consistency.c), so that
 * a condition that its events match waits for this transaction to end.
 */
static void
lock_batch_keys(EventBatch *batch)
{
	ConsistencyKeys keys = {0};

	for (int i = 0; i < batch->count; i++)
		add_event_keys(&keys, batch->event_types[i], batch->tags[i], batch->tags_nulls[i]);
	lock_consistency_keys(&keys, false);
}

/*
 * Whether every event of the batch, by its id, is stored in this stream
 * already: the batch is the retry of an append made.  Call while connected
 * to SPI.
 */
bool
batch_already_appended(text *stream_id, EventBatch *batch)
{
	bool		exists;
	int64		current;

	if (!batch->ids_supplied || !probe_event_ids(stream_id, batch, &exists, &current))
		return false;
	for (int i = 0; i < batch->count; i++)
	{
		bool		isnull;
		Datum		found = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);

		if (isnull || !same_stream(DatumGetTextPP(found), stream_id))
			return false;
	}
	return true;
}

/*
 * Writes the batch to the stream as one append, which the expected version
 * must allow (an idempotent retry of an earlier append returns its result
 * and writes nothing); result gets the new version and the positions.
 */
void
append_batch(text *stream_id, EventBatch *batch, ExpectedVersion expected, StreamsSchema schema,
			 AppendResult *result)
{
	bool		had_transaction_id;
	bool		written = false;

	result->global_positions = palloc(batch->count * sizeof(int64));

	/* On a standby, or in a read-only transaction: say so before anything else. */
	PreventCommandIfReadOnly("eventsource.append()");
	if (!events_have_tags(schema))
		for (int i = 0; i < batch->count; i++)
			if (!batch->tags_nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("events of this database cannot have tags"),
						 errdetail("Tags came with eventsource 0.8.0; this database has an older version of the extension."),
						 errhint("Run ALTER EXTENSION eventsource UPDATE.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	had_transaction_id = FullTransactionIdIsValid(GetTopFullTransactionIdIfAny());
	lock_stream_in_log_order(stream_id);
	if (events_have_tags(schema) && !batch->keys_locked)
		lock_batch_keys(batch);

	for (;;)
	{
		StreamChange change = ADVANCE_STREAM;
		bool		any_version = false;
		int64		cas_version = expected.version;

		if (batch->ids_supplied)
		{
			bool		exists;
			int64		current;

			if (probe_event_ids(stream_id, batch, &exists, &current))
			{
				resolve_retry(stream_id, batch, expected, exists, current, schema, result);
				count_statistic(STATISTIC_IDEMPOTENT_RETRIES, 1);
				break;
			}
			if (!expectation_met(expected, exists, current))
				raise_version_conflict(stream_id, expected, current, schema);

			/* Set from the version just seen; if it moves first, look again. */
			change = exists ? ADVANCE_STREAM : CREATE_STREAM;
			cas_version = current;
		}
		else if (expected.kind == EXPECT_VERSION)
			change = expected.version == EXPECTED_VERSION_NO_STREAM ?
				CREATE_STREAM : ADVANCE_STREAM;
		else
			any_version = true;

		if (write_append(stream_id, batch, schema, change, any_version, cas_version, result) > 0)
		{
			written = true;
			break;
		}
		reject_if_tombstoned(stream_id, schema);
		if (batch->ids_supplied)
			continue;
		if (expected.kind != EXPECT_ANY)
		{
			int64		actual;

			(void) find_stream_version(stream_id, false, &actual);
			raise_version_conflict(stream_id, expected, actual, schema);
		}

		/* Any version, and the stream does not exist: create it. */
		if (write_append(stream_id, batch, schema, CREATE_STREAM, false, 0, result) > 0)
		{
			written = true;
			break;
		}
		/* Another writer created it first: go round and advance it. */
	}

	if (written && had_transaction_id && !streams_have_log_order(schema))
		check_stream_log_order(stream_id, result->stream_version - batch->count);
	SPI_finish();
	if (written)
	{
		count_statistic(STATISTIC_APPENDS, 1);
		count_statistic(STATISTIC_EVENTS_APPENDED, batch->count);
	}
}

/*
 * Appends one event to a stream the extension writes itself (its id starts
 * with '$') at any version: the audit stream, for one.  data_json is a JSON
 * object's text; the event's metadata names the role that caused it (the
 * caller of the audited function) and the session user.
 */
void
append_system_event(const char *stream, const char *event_type, const char *data_json, Oid role,
					StreamsSchema schema)
{
	EventBatch *batch = new_event_batch(1);
	AppendResult result;
	StringInfoData metadata;

	initStringInfo(&metadata);
	appendStringInfoString(&metadata, "{\"role\": ");
	escape_json(&metadata, GetUserNameFromId(role, false));
	appendStringInfoString(&metadata, ", \"session_user\": ");
	escape_json(&metadata, GetUserNameFromId(GetSessionUserId(), false));
	appendStringInfoChar(&metadata, '}');

	batch->event_ids[0] = generate_event_id();
	batch->event_types[0] = CStringGetTextDatum(event_type);
	batch->data[0] = DirectFunctionCall1(jsonb_in, CStringGetDatum(data_json));
	batch->metadata[0] = DirectFunctionCall1(jsonb_in, CStringGetDatum(metadata.data));
	batch->metadata_nulls[0] = false;
	batch->ids_supplied = false;
	append_batch(cstring_to_text(stream), batch, (ExpectedVersion) {EXPECT_ANY, 0}, schema, &result);
	notifier_wake_at_commit();
}
