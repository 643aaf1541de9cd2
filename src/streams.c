/*-------------------------------------------------------------------------
 *
 * streams.c
 *	  The rules of a stream, which every write of one follows (append,
 *	  delete, tombstone, the system events) and the reads show: the
 *	  expected version, tombstones, the log-order turn of its writers, its
 *	  current version and its first visible version (deletes and
 *	  retention).  Declared in streams.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "arguments.h"
#include "epoch.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "statistics.h"
#include "streams.h"

PG_FUNCTION_INFO_V1(eventsource_stream_log_transaction_id);
PG_FUNCTION_INFO_V1(eventsource_first_visible_version);

/* The transaction that appended version $2 of stream $1. */
static KeptPlan previous_transaction_plan = {
	"SELECT e.transaction_id FROM eventsource.events e"
	" WHERE e.stream_id OPERATOR(pg_catalog.=) $1 AND e.stream_version OPERATOR(pg_catalog.=) $2",
	2, {TEXTOID, INT8OID}
};

static KeptPlan tombstone_plan = {
	"SELECT FROM eventsource.streams s"
	" WHERE s.stream_id OPERATOR(pg_catalog.=) $1 AND s.tombstoned_at IS NOT NULL",
	1, {TEXTOID}
};

/* The expected_version argument: NULL (any), -1 (the stream exists), 0 (no stream) or N. */
ExpectedVersion
expected_version_argument(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return (ExpectedVersion) {EXPECT_ANY, 0};
	return checked_expected_version(PG_GETARG_INT64(argno));
}

/* An expected version that is not NULL: -1 (the stream exists), 0 (no stream) or N. */
ExpectedVersion
checked_expected_version(int64 version)
{
	ExpectedVersion expected = {EXPECT_VERSION, version};

	if (expected.version < EXPECTED_VERSION_STREAM_EXISTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expected_version must be -1 or greater"),
				 errdetail("Use NULL for any version, 0 for no stream, -1 for an existing stream, or the exact version.")));
	expected.kind = expected.version == EXPECTED_VERSION_STREAM_EXISTS ?
		EXPECT_STREAM_EXISTS : EXPECT_VERSION;
	return expected;
}

static const char *
expected_version_text(ExpectedVersion expected)
{
	if (expected.kind == EXPECT_STREAM_EXISTS)
		return "-1 (stream exists)";
	if (expected.version == EXPECTED_VERSION_NO_STREAM)
		return "0 (no stream)";
	return psprintf(INT64_FORMAT, expected.version);
}

/*
 * Raises SE005 if the stream is tombstoned (only a schema with the lifecycle
 * has tombstones).  Call while connected to SPI.
 */
void
reject_if_tombstoned(text *stream_id, StreamsSchema schema)
{
	Datum		values[1] = {PointerGetDatum(stream_id)};

	if (!streams_have_lifecycle(schema) || run_kept_plan(&tombstone_plan, values, NULL, false) == 0)
		return;
	count_statistic(STATISTIC_TOMBSTONE_REJECTIONS, 1);
	ereport(ERROR,
			(errcode(ERRCODE_EVENTSOURCE_STREAM_TOMBSTONED),
			 errmsg("stream \"%s\" is tombstoned", text_to_cstring(stream_id)),
			 errdetail("A tombstoned stream can never be written again (eventsource.stream_status shows when it was tombstoned).")));
}

/*
 * Raises SE001 for a stream at version actual that was expected otherwise
 * (or SE005 if the stream is tombstoned: then no version would do).  Call
 * while connected to SPI.
 */
void
raise_version_conflict(text *stream_id, ExpectedVersion expected, int64 actual, StreamsSchema schema)
{
	reject_if_tombstoned(stream_id, schema);
	count_statistic(STATISTIC_VERSION_CONFLICTS, 1);
	ereport(ERROR,
			(errcode(ERRCODE_EVENTSOURCE_VERSION_CONFLICT),
			 errmsg("version conflict on stream \"%s\"", text_to_cstring(stream_id)),
			 errdetail("Expected version %s, actual version " INT64_FORMAT ".",
					   expected_version_text(expected), actual),
			 errhint("Read the stream again, then retry with its current version.")));
}

/* Whether a stream that exists (or not) at version meets the expectation. */
bool
expectation_met(ExpectedVersion expected, bool exists, int64 version)
{
	switch (expected.kind)
	{
		case EXPECT_ANY:
			return true;
		case EXPECT_STREAM_EXISTS:
			return exists;
		case EXPECT_VERSION:
			return version == expected.version;
	}
	return false;
}

/*
 * Orders the writers of one stream the way the global log orders their
 * events.  The log is read in (transaction_id, global_position) order, so the
 * events of one stream, and the $stream-deleted or $stream-tombstoned marker
 * that covers them, must come from transactions whose log transaction ids
 * grow with the order in which they got the stream's row.  A transaction id
 * is assigned at a transaction's first write, which for an append would be
 * just before it waits for the stream's row: ids would then follow the order
 * writers arrived in, not the order they got the stream.
 *
 * So a writer of a stream (an append, a delete or a tombstone) in a
 * transaction without an id yet first takes a transaction-scoped lock on the
 * stream, its turn (an advisory lock on a hash of its id, which assigns no
 * id), and writes only once it holds it: every earlier writer of the stream
 * that took its turn has ended by then, with a smaller id.  A transaction
 * that already has an id takes no such lock (a transaction writing many
 * streams would fill the lock table); the statement that writes the stream's
 * row refuses it if a newer transaction wrote the stream before it (see
 * eventsource_stream_log_transaction_id; before 0.7.0,
 * check_stream_log_order after the append).
 */
static uint64
stream_turn_hash(text *stream_id)
{
	return hash_bytes_extended((const unsigned char *) VARDATA_ANY(stream_id),
							   VARSIZE_ANY_EXHDR(stream_id), 0);
}

static void
take_stream_turn(uint64 hash, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (hash >> 32), (uint32) hash,
						 EVENTSOURCE_STREAM_LOCK_CLASS);
	(void) LockAcquire(&tag, mode, false, false);
}

void
lock_stream_in_log_order(text *stream_id)
{
	if (FullTransactionIdIsValid(GetTopFullTransactionIdIfAny()))
		return;
	take_stream_turn(stream_turn_hash(stream_id), ExclusiveLock);
}

/* Orders stream turns by hash, then by stream id, so that equal ids are neighbours. */
static int
compare_stream_turns(const void *left_pointer, const void *right_pointer)
{
	const StreamTurn *left = left_pointer;
	const StreamTurn *right = right_pointer;
	int			left_length = VARSIZE_ANY_EXHDR(left->stream_id);
	int			right_length = VARSIZE_ANY_EXHDR(right->stream_id);
	int			order;

	if (left->hash != right->hash)
		return left->hash < right->hash ? -1 : 1;
	order = memcmp(VARDATA_ANY(left->stream_id), VARDATA_ANY(right->stream_id),
				   Min(left_length, right_length));
	if (order != 0)
		return order;
	return left_length < right_length ? -1 : (left_length > right_length ? 1 : 0);
}

/*
 * The turns of many streams, for one call that writes or checks them all
 * (append_to_streams): taken in one canonical order, that of their hashes,
 * so that two such calls never wait for each other in a cycle, and all of
 * them before the transaction gets its id, which the caller then gets (once
 * it also holds its consistency keys): its id is newer than that of every
 * earlier writer of every one of the streams, so no write of the call is
 * refused for the log order.  A stream
 * that is only checked takes its turn in share mode: checks of one stream do
 * not wait for each other, only for its writers.  Streams whose ids have one
 * hash share one turn, in the strongest mode any of them needs.
 *
 * Rejects a stream given twice (22023, naming both entries).  At most
 * max_locks_per_transaction turns are taken, the first in the order, so
 * that a call of thousands of streams does not fill the shared lock table;
 * the writes of the streams after those are checked by the statement that
 * writes each row instead, as in a transaction that had an id (40001 when a
 * newer transaction wrote the stream first).  A transaction that has an id
 * already takes no turn.  Sorts turns in place.
 */
void
lock_streams_in_log_order(StreamTurn *turns, int count)
{
	bool		take = !FullTransactionIdIsValid(GetTopFullTransactionIdIfAny());
	int			taken = 0;

	for (int i = 0; i < count; i++)
		turns[i].hash = stream_turn_hash(turns[i].stream_id);
	qsort(turns, count, sizeof(StreamTurn), compare_stream_turns);

	for (int i = 0; i < count; i++)
	{
		LOCKMODE	mode = turns[i].writes ? ExclusiveLock : ShareLock;

		if (i + 1 < count && compare_stream_turns(&turns[i], &turns[i + 1]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("stream \"%s\" is given twice", text_for_message(turns[i].stream_id)),
					 errdetail("Entries %d and %d of appends name the same stream; give each stream once, with all its events.",
							   Min(turns[i].ordinal, turns[i + 1].ordinal),
							   Max(turns[i].ordinal, turns[i + 1].ordinal))));
		/* the strongest mode of the streams that share this hash */
		for (int j = i + 1; j < count && turns[j].hash == turns[i].hash; j++)
			if (turns[j].writes)
				mode = ExclusiveLock;
		if (take && taken < max_locks_per_xact &&
			(i == 0 || turns[i - 1].hash != turns[i].hash))
		{
			take_stream_turn(turns[i].hash, mode);
			taken++;
		}
		CHECK_FOR_INTERRUPTS();
	}
}

/* The writes of a stream that must keep the log order, as the errors name them. */
typedef enum StreamWrite
{
	STREAM_APPEND,
	STREAM_DELETE,
	STREAM_TOMBSTONE,
	STREAM_WRITES				/* their number */
} StreamWrite;

static const struct
{
	const char *operation;		/* stream_log_transaction_id's argument */
	const char *message;
	const char *what_comes_first;
	const char *writer;
}			stream_writes[STREAM_WRITES] = {
	[STREAM_APPEND] = {"append", "could not append to stream \"%s\" in log order",
	"its events", "appends"},
	[STREAM_DELETE] = {"delete", "could not delete stream \"%s\" in log order",
	"its $stream-deleted event", "deletes a stream"},
	[STREAM_TOMBSTONE] = {"tombstone", "could not tombstone stream \"%s\" in log order",
	"its $stream-tombstoned event", "tombstones a stream"}
};

/*
 * Raises the serialization failure of a write of the stream by this
 * transaction (log transaction id own) that would come before the writes of
 * transaction latest in the global log.
 */
static void
raise_out_of_log_order(text *stream_id, StreamWrite write, uint64 own, uint64 latest)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg(stream_writes[write].message, text_to_cstring(stream_id)),
			 errdetail("This transaction (%llu) wrote before transaction %llu wrote to the stream, so %s would come before that transaction's in the global log.",
					   (unsigned long long) own, (unsigned long long) latest,
					   stream_writes[write].what_comes_first),
			 errhint("Retry the transaction. A transaction that %s before its other writes gets this error only when one that wrote before takes the stream first.",
					 stream_writes[write].writer)));
}

/*
 * eventsource.stream_log_transaction_id(stream_id, latest_transaction_id,
 * operation) returns xid8: this transaction's log transaction id, which the
 * statement that writes the stream's row (STREAM_LOG_TRANSACTION_ID_SQL)
 * records as its last_transaction_id and gives the events it writes.
 * latest_transaction_id is the row's last_transaction_id as the statement
 * sees it; after waiting for the row, the statement sees its newest version.
 * If that transaction is newer than this one, whatever this one writes would
 * come before what that one wrote: 40001.
 */
Datum
eventsource_stream_log_transaction_id(PG_FUNCTION_ARGS)
{
	char	   *operation;
	uint64		own;
	int			write;

	check_not_null(fcinfo, 0, "stream_id");
	check_not_null(fcinfo, 2, "operation");
	operation = text_to_cstring(PG_GETARG_TEXT_PP(2));
	for (write = 0; write < STREAM_WRITES; write++)
		if (strcmp(operation, stream_writes[write].operation) == 0)
			break;
	if (write == STREAM_WRITES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("operation must be append, delete or tombstone")));

	own = log_transaction_id();
	if (!PG_ARGISNULL(1) && own < DatumGetUInt64(PG_GETARG_DATUM(1)))
		raise_out_of_log_order(PG_GETARG_TEXT_PP(0), write, own, DatumGetUInt64(PG_GETARG_DATUM(1)));
	PG_RETURN_DATUM(UInt64GetDatum(own));
}

/*
 * Before 0.7.0 (no last_transaction_id), for a transaction that had an id
 * before it appended: the event before its first one in the stream must come
 * from an older transaction (it has committed: the append waited for the
 * stream's row).  If it does not, this transaction's events would come first
 * in the global log: a serialization failure, to be retried.  (The events
 * of these versions take their transaction_id from the column's default.)
 */
void
check_stream_log_order(text *stream_id, int64 previous_version)
{
	Datum		values[2] = {PointerGetDatum(stream_id), Int64GetDatum(previous_version)};
	uint64		own = U64FromFullTransactionId(GetTopFullTransactionId());
	uint64		previous;
	bool		isnull;

	if (previous_version == 0 || run_kept_plan(&previous_transaction_plan, values, NULL, false) == 0)
		return;
	previous = DatumGetUInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (own < previous)
		raise_out_of_log_order(stream_id, STREAM_APPEND, own, previous);
}

static KeptPlan current_version_plan = {
	"SELECT s.stream_version FROM eventsource.streams s WHERE s.stream_id OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}
};

static KeptPlan version_for_share_plan = {
	"SELECT s.stream_version FROM eventsource.streams s WHERE s.stream_id OPERATOR(pg_catalog.=) $1"
	"   FOR SHARE",
	1, {TEXTOID}
};

/* Runs a plan of a stream's version: whether it found the stream, and its version. */
static bool
stream_version_of(text *stream_id, KeptPlan *plan, bool read_only, int64 *version)
{
	Datum		values[1] = {PointerGetDatum(stream_id)};
	bool		isnull;

	*version = 0;
	if (run_kept_plan(plan, values, NULL, read_only) == 0)
		return false;
	*version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return true;
}

/*
 * Whether a stream exists, and its version in *version (0 when it does not),
 * as committed when this statement runs (in READ COMMITTED: after a wait for
 * the stream's turn, what the writer waited for committed).  for_share locks
 * its row until the transaction ends, so that the version stays what the
 * caller saw.  Call while connected to SPI.
 */
bool
find_stream_version(text *stream_id, bool for_share, int64 *version)
{
	return stream_version_of(stream_id, for_share ? &version_for_share_plan : &current_version_plan,
							 false, version);
}

/*
 * The version of a stream, 0 when it does not exist, in the statement's
 * snapshot (a read).  Call while connected to SPI.
 */
int64
current_stream_version(text *stream_id)
{
	int64		version;

	(void) stream_version_of(stream_id, &current_version_plan, true, &version);
	return version;
}

/* The first event of stream $1 from version $2 on recorded at or after $3. */
static KeptPlan max_age_boundary_plan = {
	"SELECT e.stream_version FROM eventsource.events e"
	" WHERE e.stream_id OPERATOR(pg_catalog.=) $1 AND e.stream_version OPERATOR(pg_catalog.>=) $2"
	"   AND e.recorded_at OPERATOR(pg_catalog.>=) $3"
	" ORDER BY e.stream_version LIMIT 1",
	3, {TEXTOID, INT8OID, TIMESTAMPTZOID}
};

/*
 * eventsource.first_visible_version(stream eventsource.streams) returns
 * bigint: the greatest of 1, the version after deleted_through,
 * truncate_before, the first of the newest max_count versions, and the first
 * version recorded within max_age (the version after the last one when none
 * is).
 */
Datum
eventsource_first_visible_version(PG_FUNCTION_ARGS)
{
	HeapTupleHeader stream = PG_GETARG_HEAPTUPLEHEADER(0);
	bool		isnull;
	int64		stream_version;
	int64		first = 1;
	Datum		value;

	stream_version = DatumGetInt64(GetAttributeByName(stream, "stream_version", &isnull));
	value = GetAttributeByName(stream, "deleted_through", &isnull);
	if (!isnull)
		first = Max(first, DatumGetInt64(value) + 1);
	value = GetAttributeByName(stream, "truncate_before", &isnull);
	if (!isnull)
		first = Max(first, DatumGetInt64(value));
	value = GetAttributeByName(stream, "max_count", &isnull);
	if (!isnull)
		first = Max(first, stream_version - DatumGetInt64(value) + 1);

	value = GetAttributeByName(stream, "max_age", &isnull);
	if (!isnull && first <= stream_version)
	{
		Datum		values[3];
		Datum		stream_id = GetAttributeByName(stream, "stream_id", &isnull);

		values[0] = stream_id;
		values[1] = Int64GetDatum(first);
		values[2] = DirectFunctionCall2(timestamptz_mi_interval,
										TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
										value);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (run_kept_plan(&max_age_boundary_plan, values, NULL, true) > 0)
			first = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		else
			first = stream_version + 1;
		SPI_finish();
	}
	PG_RETURN_INT64(first);
}
