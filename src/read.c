/*-------------------------------------------------------------------------
 *
 * read.c
 *	  The read functions of eventsource: stream_version, read_stream, and the
 *	  gap-safe global log reads read_all, read_category and read_by_query.
 *
 * The global log is read in (transaction_id, global_position) order and only
 * up to the oldest transaction still running: every event of a transaction
 * whose id is below the snapshot's xmin has either committed or never will,
 * so no event can later appear before a checkpoint a reader has passed.
 * Global positions alone are not enough: they are taken at INSERT time and
 * transactions commit in another order.
 *
 * Rows go straight from the executor into the function's tuplestore, each
 * with its checkpoint (materialize_events, log.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "access/transam.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "storage/procarray.h"
#include "utils/timestamp.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

#include "arguments.h"
#include "checkpoint.h"
#include "epoch.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "log.h"
#include "query.h"
#include "streams.h"

PG_FUNCTION_INFO_V1(eventsource_stream_version);
PG_FUNCTION_INFO_V1(eventsource_read_all);
PG_FUNCTION_INFO_V1(eventsource_read_category);
PG_FUNCTION_INFO_V1(eventsource_read_by_query);
PG_FUNCTION_INFO_V1(eventsource_events_behind);

/*
 * Stream reads, forward and backward, from $2, at most $3 events.  With the
 * stream lifecycle (0.5.0 on) they show the versions from the first visible
 * one (lifecycle.c): [1] of each pair.
 */
#define READ_FORWARD(lowest) \
	STORED_EVENT_COLUMNS \
	" WHERE e.stream_id OPERATOR(pg_catalog.=) $1" \
	"   AND e.stream_version OPERATOR(pg_catalog.>=) " lowest \
	" ORDER BY e.stream_version LIMIT $3"
#define READ_BACKWARD(visible) \
	STORED_EVENT_COLUMNS \
	" WHERE e.stream_id OPERATOR(pg_catalog.=) $1" \
	"   AND e.stream_version OPERATOR(pg_catalog.<=) $2" visible \
	" ORDER BY e.stream_version DESC LIMIT $3"

static KeptPlan read_forward_plans[2] = {
	{READ_FORWARD("$2"), 3, {TEXTOID, INT8OID, INT4OID}},
	{READ_FORWARD("GREATEST($2, " FIRST_VISIBLE_VERSION_OF_STREAM_1 ")"), 3, {TEXTOID, INT8OID, INT4OID}}
};

static KeptPlan read_backward_plans[2] = {
	{READ_BACKWARD(""), 3, {TEXTOID, INT8OID, INT4OID}},
	{READ_BACKWARD(" AND e.stream_version OPERATOR(pg_catalog.>=) " FIRST_VISIBLE_VERSION_OF_STREAM_1),
	 3, {TEXTOID, INT8OID, INT4OID}}
};

/* $5 is read_category's category, $6 the horizon. */
static KeptPlan read_all_plan = {
	STORED_EVENT_COLUMNS
	LOG_CONDITIONS("$6")
	LOG_ORDER " LIMIT $3",
	6, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID, XID8OID}
};

static KeptPlan read_category_plan = {
	STORED_EVENT_COLUMNS
	LOG_CONDITIONS("$6")
	"   AND " CATEGORY_TAKES("$5::pg_catalog.text", EVENT_CATEGORY)
	LOG_ORDER " LIMIT $3",
	6, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID, XID8OID},

	/*
	 * Whether the category index or the log order index (filtering on the
	 * category) is faster depends on how common the category is: plan with it.
	 */
	CURSOR_OPT_CUSTOM_PLAN
};

/*
 * How many events a subscription's member or a projection has yet to take,
 * and the oldest's time: eventsource.events_behind, with the parameters and
 * filter of poll, so that the lag the status views show is what poll and
 * replay deliver.  One plan per shape of the filter's arguments, each kept
 * generic: the status views call it once per member and projection, and
 * planning it again at each call (with the values) cost eight times its run
 * on a small log.  Each reads the log order index (the category index for a
 * category) from the checkpoint to the horizon only.
 */
#define EVENTS_BEHIND_PLAN(types, category, member, query) \
	{"SELECT pg_catalog.count(*), pg_catalog.min(e.recorded_at) FROM eventsource.events e" \
	 LOG_RANGE("$8") types category member query, \
	 FILTERED_LOG_ARGUMENTS, \
	 CURSOR_OPT_GENERIC_PLAN}

static KeptPlan events_behind_plans[FILTER_SHAPE_COUNT] = {
	FILTER_SHAPES(EVENTS_BEHIND_PLAN)
};

/*
 * eventsource.stream_version(stream_id) returns bigint.
 */
Datum
eventsource_stream_version(PG_FUNCTION_ARGS)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, false);
	int64		version;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	version = current_stream_version(stream_id);
	SPI_finish();
	PG_RETURN_INT64(version);
}

/*
 * eventsource.read_stream(stream_id, from_version, max_count, direction)
 * returns setof eventsource.event.
 */
static Datum
read_stream(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, false);
	int32		max_count = checked_max_count(fcinfo, 2);
	bool		forward = strcmp(checked_choice(fcinfo, 3, "direction", "forward", "backward"),
								 "forward") == 0;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = PointerGetDatum(stream_id);
	values[1] = Int64GetDatum(optional_stream_version(fcinfo, 1, "from_version",
													  forward ? 1 : PG_INT64_MAX));
	values[2] = Int32GetDatum(max_count);
	materialize_events(fcinfo,
					   &(forward ? read_forward_plans : read_backward_plans)[streams_have_lifecycle(schema)],
					   values, nulls);
	return (Datum) 0;
}

SCHEMA_VERSIONED_FUNCTION(eventsource_read_stream, read_stream);

/*
 * Sets values[0] and values[1], the ($1, $2) of LOG_CONDITIONS, to the
 * checkpoint argument after_argno: the start of the log when it is NULL.
 */
static void
set_after_checkpoint(FunctionCallInfo fcinfo, int after_argno, Datum *values)
{
	Checkpoint	after = {0, 0};

	if (!PG_ARGISNULL(after_argno))
		after = *PG_GETARG_CHECKPOINT(after_argno);
	values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(after.transaction_id));
	values[1] = Int64GetDatum(after.global_position);
}

/*
 * The shared body of read_all and read_category: the log after a checkpoint,
 * of one category or all, of some event types or all.
 */
static Datum
read_log(FunctionCallInfo fcinfo, int after_argno, int max_count_argno,
		 text *category, int event_types_argno)
{
	int32		max_count = checked_max_count(fcinfo, max_count_argno);
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, true, false};

	set_after_checkpoint(fcinfo, after_argno, values);
	values[2] = Int32GetDatum(max_count);

	values[3] = PointerGetDatum(checked_event_types(fcinfo, event_types_argno));
	nulls[3] = values[3] == (Datum) 0;

	values[5] = log_horizon_datum();
	if (category == NULL)
		materialize_events(fcinfo, &read_all_plan, values, nulls);
	else
	{
		values[4] = PointerGetDatum(category);
		nulls[4] = false;
		materialize_events(fcinfo, &read_category_plan, values, nulls);
	}
	return (Datum) 0;
}

/*
 * eventsource.read_all(after, max_count, category, event_types) returns
 * setof eventsource.event.
 */
Datum
eventsource_read_all(PG_FUNCTION_ARGS)
{
	return read_log(fcinfo, 0, 1, PG_ARGISNULL(2) ? NULL : checked_category(fcinfo, 2), 3);
}

/*
 * eventsource.read_category(category, after, max_count, event_types) returns
 * setof eventsource.event.
 */
Datum
eventsource_read_category(PG_FUNCTION_ARGS)
{
	check_not_null(fcinfo, 0, "category");
	return read_log(fcinfo, 1, 2, checked_category(fcinfo, 0), 3);
}

/*
 * eventsource.events_behind(after, category, event_types,
 * consumer_group_size, consumer_group_member, query) returns table
 * (events_behind bigint, oldest_recorded_at timestamptz): the events of the
 * gap-safe log after the checkpoint (NULL: from its start) that the filter
 * takes, counted, and the recorded_at of the oldest of them (NULL when
 * none).  The category, event types and query are a filter's as stored:
 * NULL takes every event, and the category is not checked (a category with
 * '-' takes no event, as it did in the subscriptions and projections created
 * before 0.7.0 refused it).  (Before 0.8.0 the function has no query.)
 */
Datum
eventsource_events_behind(PG_FUNCTION_ARGS)
{
	int32		group_size = checked_integer(fcinfo, 3, "consumer_group_size", 1,
											 EVENTSOURCE_MAX_CONSUMER_GROUP_SIZE);
	int32		member = checked_integer(fcinfo, 4, "consumer_group_member", 0, group_size - 1);
	Datum		values[FILTERED_LOG_ARGUMENT_COUNT];
	bool		nulls[FILTERED_LOG_ARGUMENT_COUNT] = {false};

	set_after_checkpoint(fcinfo, 0, values);
	values[2] = Int32GetDatum(1);
	values[3] = PointerGetDatum(checked_event_types(fcinfo, 2));
	nulls[3] = values[3] == (Datum) 0;
	values[4] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[4] = PG_ARGISNULL(1);
	values[5] = Int32GetDatum(group_size);
	values[6] = Int32GetDatum(member);
	values[7] = log_horizon_datum();
	values[8] = PointerGetDatum(PG_NARGS() > 5 ? checked_query(fcinfo, 5) : NULL);
	nulls[8] = values[8] == (Datum) 0;
	materialize_read(fcinfo, &events_behind_plans[filter_shape(nulls[3], nulls[4], group_size, nulls[8])],
					 values, nulls);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * read_by_query
 * ------------------------------------------------------------------------
 */

/* An event one item of a query read, and its checkpoint. */
typedef struct QueriedEvent
{
	Checkpoint	checkpoint;
	HeapTuple	row;			/* of EVENT_COLUMNS */
} QueriedEvent;

/* The events a read of a query collected, in log order once sorted. */
typedef struct QueriedEvents
{
	int			count;
	int			allocated;
	QueriedEvent *events;
	TupleDesc	description;	/* of the rows */
} QueriedEvents;

static int
compare_queried_events(const void *left, const void *right)
{
	return compare_checkpoints(&((const QueriedEvent *) left)->checkpoint,
							   &((const QueriedEvent *) right)->checkpoint);
}

/*
 * The events of the query after after, below horizon, each item's first
 * max_count, in log order and without repeats (an event two items match),
 * at most max_count; on the latest snapshot when latest, else on the
 * statement's.  Rows and description live in the caller's memory.
 */
static void
collect_queried_events(const EventQuery *query, const Checkpoint *after, int32 max_count,
					   Datum horizon, bool latest, QueriedEvents *collected)
{
	MemoryContext caller_context = CurrentMemoryContext;
	int			unique = 0;

	collected->count = 0;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (int i = 0; i < query->count; i++)
	{
		uint64		rows = read_query_item(&query->items[i], after, max_count, horizon, latest);

		if (rows > 0 && collected->description == NULL)
		{
			MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

			collected->description = CreateTupleDescCopy(SPI_tuptable->tupdesc);
			MemoryContextSwitchTo(spi_context);
		}
		if (collected->count + rows > (uint64) collected->allocated)
		{
			collected->allocated = collected->count + rows;
			collected->events = collected->events == NULL ?
				MemoryContextAlloc(caller_context, collected->allocated * sizeof(QueriedEvent)) :
				repalloc(collected->events, collected->allocated * sizeof(QueriedEvent));
		}
		for (uint64 row = 0; row < rows; row++)
		{
			QueriedEvent *event = &collected->events[collected->count++];
			bool		isnull;

			event->row = SPI_copytuple(SPI_tuptable->vals[row]);
			event->checkpoint =
				*(Checkpoint *) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
															  SPI_tuptable->tupdesc->natts, &isnull));
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();

	qsort(collected->events, collected->count, sizeof(QueriedEvent), compare_queried_events);
	for (int i = 0; i < collected->count && unique < max_count; i++)
		if (unique == 0 ||
			compare_checkpoints(&collected->events[i].checkpoint, &collected->events[unique - 1].checkpoint) != 0)
			collected->events[unique++] = collected->events[i];
	collected->count = unique;
}

/*
 * The transactions in progress in the statement's snapshot that have an id,
 * and whether each is a prepared transaction of this database.
 */
static KeptPlan running_transactions_plan = {
	"SELECT x, pg_catalog.xid(x) OPERATOR(pg_catalog.=) ANY ("
	"       SELECT p.transaction FROM pg_catalog.pg_prepared_xact() AS p(transaction, gid, prepared, ownerid, dbid)"
	"        WHERE p.dbid OPERATOR(pg_catalog.=) $1)"
	"  FROM pg_catalog.pg_snapshot_xip(pg_catalog.pg_current_snapshot()) AS x",
	1, {OIDOID}
};

/*
 * Whether a transaction in progress could write this database's log: it
 * runs in a session of this database, or is a prepared transaction of it
 * (those of other databases cannot).
 */
static bool
writes_this_database(TransactionId xid, bool prepared_here)
{
	int			pid;
	PGPROC	   *proc;

	if (prepared_here)
		return true;
	pid = BackendXidGetPid(xid);
	if (pid == 0)
		return false;			/* ended meanwhile, or prepared elsewhere */
	proc = BackendPidGetProc(pid);
	return proc != NULL && proc->databaseId == MyDatabaseId;
}

/* How a read waited for the transactions before its last event. */
typedef enum WaitOutcome
{
	NO_WAIT,					/* none was in progress: what the read saw is complete */
	WAITED,						/* they have all ended: read again */
	WAIT_TIMED_OUT				/* eventsource.read_wait_timeout ran out */
} WaitOutcome;

/*
 * Waits for xid to end, until deadline (a GetCurrentTimestamp value); false
 * when the deadline came first.  A lock wait (pg_locks and pg_stat_activity
 * show it, the deadlock detector sees it) bounded by lock_timeout set to the
 * time left, in a subtransaction that its timeout rolls back; a shorter
 * lock_timeout of the caller's stays, and its timeout is the caller's error.
 */
static bool
wait_for_transaction_until(TransactionId xid, TimestampTz deadline)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	long		remaining_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
	bool		callers_timeout = LockTimeout > 0 && LockTimeout <= remaining_ms;
	int			nest_level;
	volatile bool ended = true;

	if (remaining_ms <= 0)
		return ConditionalXactLockTableWait(xid);
	nest_level = NewGUCNestLevel();
	if (!callers_timeout)
		(void) set_config_option("lock_timeout", psprintf("%ld", remaining_ms), PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		XactLockTableWait(xid, NULL, NULL, XLTW_None);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
		if (callers_timeout || error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(error);
		ended = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);
	CurrentResourceOwner = owner;
	AtEOXact_GUC(true, nest_level);
	return ended;
}

/*
 * Waits for every transaction of this database in progress in the
 * statement's snapshot whose log transaction id is below last's: it could
 * still commit events that come before last in the log.  Waits at most
 * eventsource.read_wait_timeout in all (a transaction left open, a prepared
 * transaction nobody commits).  The log transaction id of a running
 * transaction is its id plus the offset of the epoch of the snapshot's xmin
 * (the horizon's).
 */
static WaitOutcome
wait_for_transactions_before(const Checkpoint *last)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), eventsource_read_wait_timeout);
	Datum		database = ObjectIdGetDatum(MyDatabaseId);
	uint64		horizon = log_horizon();
	uint64		xmin = U64FromFullTransactionId(DatumGetFullTransactionId(
		DirectFunctionCall1(pg_snapshot_xmin, DirectFunctionCall1(pg_current_snapshot, (Datum) 0))));
	uint64		offset = horizon - xmin;
	uint64		running;
	int			waited = 0;
	bool		older_in_progress = false;
	TransactionId *waits;

	if (last->transaction_id < horizon)
		return NO_WAIT;			/* every event before last has committed or never will */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	running = run_kept_plan(&running_transactions_plan, &database, NULL, true);
	waits = palloc(Max(running, 1) * sizeof(TransactionId));
	for (uint64 i = 0; i < running; i++)
	{
		bool		isnull;
		uint64		id = U64FromFullTransactionId(DatumGetFullTransactionId(
			SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
		TransactionId xid = XidFromFullTransactionId(FullTransactionIdFromU64(id));
		bool		prepared_here = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 2, &isnull));

		if (id + offset >= last->transaction_id)
			continue;
		/*
		 * In progress in the snapshot the read used, so its events are not
		 * in what it read: read again, even if it has ended since (then
		 * there is nothing to wait for), or is of another database.
		 */
		older_in_progress = true;
		if (writes_this_database(xid, prepared_here))
			waits[waited++] = xid;
	}
	SPI_finish();
	for (int i = 0; i < waited; i++)
		if (!wait_for_transaction_until(waits[i], deadline))
			return WAIT_TIMED_OUT;
	return older_in_progress ? WAITED : NO_WAIT;
}

/*
 * eventsource.read_by_query(query, after, max_count) returns setof
 * eventsource.event: the events of the log after the checkpoint that match
 * the query, at most max_count, in log order, every one committed when the
 * read ran, so that a conditional append on the last one's checkpoint fails
 * only for an event that commits after the read.  That is more than the
 * gap-safe log below the horizon, which a transaction in progress holds
 * back: the events above it that it returns are made gap-safe by waiting
 * for the transactions in progress that could still commit events before
 * the last one returned, then reading again up to that one.  A transaction
 * that has an id (it wrote) does not wait, as it might wait for one that
 * waits for it, nor does a standby, which cannot wait for the primary's
 * transactions: they read the gap-safe log below the horizon, as read_all,
 * and so does a read whose wait ran out (eventsource.read_wait_timeout).
 */
Datum
eventsource_read_by_query(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *result = (ReturnSetInfo *) fcinfo->resultinfo;
	EventQuery *query;
	int32		max_count;
	Datum		after_values[2];
	Checkpoint	after;
	bool		may_wait = !FullTransactionIdIsValid(GetTopFullTransactionIdIfAny()) && !RecoveryInProgress();
	Datum		every_transaction = FullTransactionIdGetDatum(FullTransactionIdFromU64(PG_UINT64_MAX));
	QueriedEvents collected = {0};

	check_not_null(fcinfo, 0, "query");
	query = parse_event_query(PG_GETARG_JSONB_P(0), "query");
	max_count = checked_max_count(fcinfo, 2);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	set_after_checkpoint(fcinfo, 1, after_values);
	after.transaction_id = U64FromFullTransactionId(DatumGetFullTransactionId(after_values[0]));
	after.global_position = DatumGetInt64(after_values[1]);
	collect_queried_events(query, &after, max_count, may_wait ? every_transaction : log_horizon_datum(),
						   false, &collected);
	if (may_wait && collected.count > 0)
	{
		Checkpoint	last = collected.events[collected.count - 1].checkpoint;

		switch (wait_for_transactions_before(&last))
		{
			case NO_WAIT:
				break;
			case WAITED:
				/* again, now that every event up to last is there, and only up to it */
				collect_queried_events(query, &after, max_count,
									   FullTransactionIdGetDatum(FullTransactionIdFromU64(last.transaction_id + 1)),
									   true, &collected);
				while (collected.count > 0 &&
					   compare_checkpoints(&collected.events[collected.count - 1].checkpoint, &last) > 0)
					collected.count--;
				break;
			case WAIT_TIMED_OUT:
				/* the gap-safe log below the horizon, as a read that may not wait */
				collect_queried_events(query, &after, max_count, log_horizon_datum(), false, &collected);
				break;
		}
	}

	for (int i = 0; i < collected.count; i++)
	{
		Datum		columns[MAX_EVENT_COLUMNS];
		bool		column_nulls[MAX_EVENT_COLUMNS];

		(void) event_columns_from_row(collected.events[i].row, collected.description, columns, column_nulls);
		tuplestore_putvalues(result->setResult, result->setDesc, columns, column_nulls);
	}
	return (Datum) 0;
}
