/*-------------------------------------------------------------------------
 *
 * epoch.c
 *	  Log epochs: the log transaction id every event carries (the place in
 *	  the global log that every event a transaction writes takes, before its
 *	  global position), and the read horizon below which the global log is
 *	  gap-safe.
 *
 * An event's transaction_id is its transaction's xid8 plus the offset of
 * the log epoch it was appended in (eventsource.log_epochs).  A new epoch
 * starts at the first append when the newest one belongs to another cluster
 * (a restore, logical replication, pg_upgrade: the log's transaction ids
 * come from another counter) or to an earlier start of this server (a
 * restart, a crash restart, a promotion: commits that were lost may have used
 * transaction ids and global positions the server now hands out again).  Its
 * offset places its events after every event of the log, and, by a term
 * that grows with the clock, after every id any cluster handed out before
 * (lost commits, the source of an older dump); after a server start the
 * global position sequence moves on too.
 *
 * An epoch is committed, with synchronous_commit on, before any append uses
 * it: a short-lived background worker starts it while the appender waits, or
 * the appender itself when no worker can run (then the epoch commits with
 * the append, synchronously whatever the transaction sets, and the WAL
 * orders every later append's commit after it; an appender does not keep an
 * epoch it wrote, which a rollback to a savepoint may take away).  A lock
 * serialises the starters, so concurrent first appenders agree on one
 * epoch.  Every transaction that can still append may append in the new
 * epoch, also one that had its transaction id before the epoch began (see
 * start_epoch), so no append has to be retried because an epoch began.
 *
 * "This server start" is a time kept in shared memory, set whenever the
 * postmaster creates it (at start and at every crash reinitialisation).
 * Without the preload there is no such memory; the server start is then
 * the later of the postmaster's start and the last reset of the shared
 * statistics, which crash recovery resets.
 *
 * A database whose extension is older than 0.7.0 has no log_epochs: its log
 * transaction ids are plain transaction ids, and its horizon is the
 * snapshot's xmin.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "epoch.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "streams.h"
#include "trust.h"
#include "worker_transaction.h"

PG_FUNCTION_INFO_V1(eventsource_log_horizon);
PG_FUNCTION_INFO_V1(eventsource_server_start);
PGDLLEXPORT void eventsource_epoch_starter_main(Datum main_arg);

/*
 * How far a new epoch after a server start moves on: at least this many
 * transaction ids and global positions past the previous epoch, and at least
 * EPOCH_IDS_PER_MICROSECOND times the microseconds since EPOCH_TIME_BASE
 * (more ids than any server can use), which also covers epochs a promoted
 * asynchronous standby never received.
 */
#define EPOCH_MARGIN				(INT64CONST(1) << 26)
#define EPOCH_IDS_PER_MICROSECOND	(INT64CONST(1) << 11)
/* 2026-01-01 00:00:00 UTC in PostgreSQL's timestamp microseconds */
#define EPOCH_TIME_BASE				(INT64CONST(820540800) * USECS_PER_SEC)
/* 2^62: offsets stay far inside bigint (the time term reaches it in 2097) */
#define EPOCH_OFFSET_LIMIT			(PG_INT64_MAX / 2 + 1)

typedef struct EpochShared
{
	TimestampTz server_start;
} EpochShared;

static EpochShared *epoch_shared = NULL;
static shmem_request_hook_type previous_shmem_request_hook = NULL;
static shmem_startup_hook_type previous_shmem_startup_hook = NULL;

/* A row of eventsource.log_epochs (found is false when there is none). */
typedef struct LogEpoch
{
	bool		found;
	int32		epoch;
	int64		system_identifier;
	bool		server_start_known;
	TimestampTz server_start;
	int64		offset;
	uint64		start_transaction_id;
	bool		written_here;	/* by this transaction, not committed yet */
} LogEpoch;

#define EPOCH_COLUMNS \
	"SELECT l.epoch, l.system_identifier, l.server_started_at, l.transaction_id_offset," \
	"       l.start_transaction_id, l.xmin FROM eventsource.log_epochs l"

static KeptPlan newest_epoch_plan = {
	EPOCH_COLUMNS " ORDER BY l.epoch DESC LIMIT 1",
	0, {InvalidOid}
};

/*
 * The epochs of this cluster ($1) since the newest epoch of another: the
 * newest that began at or before $2, else (second part) the first of them.
 */
#define RUN_OF_THIS_CLUSTER \
	" WHERE l.system_identifier OPERATOR(pg_catalog.=) $1" \
	"   AND l.epoch OPERATOR(pg_catalog.>) COALESCE((SELECT pg_catalog.max(f.epoch)" \
	"         FROM eventsource.log_epochs f WHERE f.system_identifier OPERATOR(pg_catalog.<>) $1), 0)"

static KeptPlan epoch_of_transaction_plan = {
	EPOCH_COLUMNS RUN_OF_THIS_CLUSTER
	"   AND l.start_transaction_id OPERATOR(pg_catalog.<=) $2"
	" ORDER BY l.epoch DESC LIMIT 1",
	2, {INT8OID, XID8OID}
};

static KeptPlan first_epoch_of_run_plan = {
	EPOCH_COLUMNS RUN_OF_THIS_CLUSTER " ORDER BY l.epoch LIMIT 1",
	1, {INT8OID}
};

#define NEWEST_LOG_ID "(SELECT pg_catalog.max(e.transaction_id) FROM eventsource.events e)"

static KeptPlan newest_log_id_plan = {
	"SELECT " NEWEST_LOG_ID,
	0, {InvalidOid}
};

/*
 * A starter's view: the log's newest event, the position sequence, and the
 * oldest running transaction (the snapshot includes the starter's own).
 */
static KeptPlan log_head_plan = {
	"SELECT " NEWEST_LOG_ID ","
	"       (SELECT pg_catalog.max(e.global_position) FROM eventsource.events e),"
	"       s.last_value, pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())"
	"  FROM eventsource.events_global_position_seq s",
	0, {InvalidOid}
};

static KeptPlan insert_epoch_plan = {
	"INSERT INTO eventsource.log_epochs"
	"       (epoch, system_identifier, server_started_at, transaction_id_offset,"
	"        start_transaction_id, started_at, reason)"
	" VALUES ($1, $2, $3, $4, $5, pg_catalog.now(), $6)",
	6, {INT4OID, INT8OID, TIMESTAMPTZOID, INT8OID, XID8OID, TEXTOID}
};

static KeptPlan move_positions_plan = {
	"SELECT pg_catalog.setval('eventsource.events_global_position_seq'::pg_catalog.regclass, $1, true)",
	1, {INT8OID}
};

/* ------------------------------------------------------------------------
 * This server start
 * ------------------------------------------------------------------------
 */

static void
epoch_shmem_request(void)
{
	if (previous_shmem_request_hook)
		previous_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(EpochShared));
}

static void
epoch_shmem_startup(void)
{
	bool		found;

	if (previous_shmem_startup_hook)
		previous_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	epoch_shared = ShmemInitStruct("eventsource log epochs", sizeof(EpochShared), &found);
	if (!found)
		epoch_shared->server_start = GetCurrentTimestamp();
	LWLockRelease(AddinShmemInitLock);
}

/* Called by _PG_init while the library is being preloaded. */
void
epoch_preload_init(void)
{
	previous_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = epoch_shmem_request;
	previous_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = epoch_shmem_startup;
}

/*
 * When this server (its shared memory) started.  Without the preload: the
 * postmaster's start, or the reset of every shared statistic that crash
 * recovery makes, whichever is later.  The earliest of the archiver's,
 * bgwriter's and WAL statistics' resets is taken, so that a reset of some of
 * them by pg_stat_reset_shared() does not count; resetting all three does,
 * while appends may run: it must not race an append (see README.md).
 */
static TimestampTz
this_server_start(void)
{
	TimestampTz reset;

	if (epoch_shared != NULL)
		return epoch_shared->server_start;
	reset = Min(pgstat_fetch_stat_archiver()->stat_reset_timestamp,
				pgstat_fetch_stat_bgwriter()->stat_reset_timestamp);
	reset = Min(reset, pgstat_fetch_stat_wal()->stat_reset_timestamp);
	return Max(PgStartTime, reset);
}

/* ------------------------------------------------------------------------
 * Reading the epochs
 * ------------------------------------------------------------------------
 */

/* eventsource.log_epochs, InvalidOid before 0.7.0. */
static Oid
log_epochs_table(void)
{
	Oid			schema = get_namespace_oid("eventsource", true);

	return OidIsValid(schema) ? get_relname_relid("log_epochs", schema) : InvalidOid;
}

static LogEpoch
epoch_from_row(void)
{
	LogEpoch	epoch = {0};
	HeapTuple	row = SPI_tuptable->vals[0];
	TupleDesc	description = SPI_tuptable->tupdesc;
	bool		isnull;

	epoch.found = true;
	epoch.epoch = DatumGetInt32(SPI_getbinval(row, description, 1, &isnull));
	epoch.system_identifier = DatumGetInt64(SPI_getbinval(row, description, 2, &isnull));
	epoch.server_start = DatumGetTimestampTz(SPI_getbinval(row, description, 3, &isnull));
	epoch.server_start_known = !isnull;
	epoch.offset = DatumGetInt64(SPI_getbinval(row, description, 4, &isnull));
	epoch.start_transaction_id =
		U64FromFullTransactionId(DatumGetFullTransactionId(SPI_getbinval(row, description, 5, &isnull)));
	epoch.written_here =
		TransactionIdIsCurrentTransactionId(DatumGetTransactionId(SPI_getbinval(row, description, 6, &isnull)));
	return epoch;
}

/*
 * Runs a plan with the newest snapshot, so that an epoch committed after
 * this transaction's snapshot (a REPEATABLE READ one) is seen.
 */
static uint64
run_with_latest_snapshot(KeptPlan *kept, Datum *values, bool read_only)
{
	int			rc = SPI_execute_snapshot(kept_plan(kept), values, NULL,
										  GetLatestSnapshot(), InvalidSnapshot,
										  read_only, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute_snapshot failed for \"%s\": %s",
			 kept->sql, SPI_result_code_string(rc));
	return SPI_processed;
}

static LogEpoch
newest_epoch(void)
{
	LogEpoch	none = {0};

	if (run_with_latest_snapshot(&newest_epoch_plan, NULL, true) == 0)
		return none;
	return epoch_from_row();
}

/* Whether appends of this server start may use the epoch. */
static bool
epoch_is_current(const LogEpoch *epoch)
{
	return epoch->found &&
		epoch->system_identifier == (int64) GetSystemIdentifier() &&
		epoch->server_start_known &&
		epoch->server_start == this_server_start();
}

/*
 * The current epoch as this backend last saw it committed, and the
 * log_epochs table it is a row of.  While an epoch is current no other one
 * starts (one starts only when the newest is not current), so it stays
 * current for the rest of this server start, unless the table is replaced
 * (DROP and CREATE EXTENSION).  Appends and reads then need no query.
 */
static LogEpoch known_current = {0};
static Oid	known_current_table = InvalidOid;

static bool
known_current_epoch(Oid table, LogEpoch *epoch)
{
	if (!known_current.found || known_current_table != table || !epoch_is_current(&known_current))
		return false;
	*epoch = known_current;
	return true;
}

/* Notes a current epoch, unless this transaction wrote it (it may roll back). */
static void
note_current_epoch(Oid table, const LogEpoch *epoch)
{
	if (!epoch_is_current(epoch) || epoch->written_here)
		return;
	known_current = *epoch;
	known_current_table = table;
}

/* ------------------------------------------------------------------------
 * Starting an epoch
 * ------------------------------------------------------------------------
 */

/*
 * The offset of a new epoch that begins at transaction start_id: its events
 * come after the log's newest (newest_id) and, by at least EPOCH_MARGIN,
 * after the previous epoch's ids, and at least EPOCH_IDS_PER_MICROSECOND
 * times the microseconds since EPOCH_TIME_BASE, which passes every id any
 * cluster handed out before now (a restored older dump, commits a crash or
 * a failover lost) as long as no server runs more than 2^11 transactions a
 * microsecond and the clocks agree.  Offsets stay below 2^62, far inside
 * bigint.
 */
static int64
new_epoch_offset(const LogEpoch *newest, int64 newest_id, uint64 start_id)
{
	int64		after_log = Max(0, newest_id + 1 - (int64) start_id);
	int64		after_epoch = newest->found ? newest->offset + EPOCH_MARGIN : 0;
	int64		after_time = EPOCH_IDS_PER_MICROSECOND * (GetCurrentTimestamp() - EPOCH_TIME_BASE);

	if (after_time >= EPOCH_OFFSET_LIMIT)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("could not start a log epoch: the server's clock says %s",
						timestamptz_to_str(GetCurrentTimestamp())),
				 errdetail("A log epoch started after the year 2097 would give transaction ids no later epoch can follow."),
				 errhint("Set the server's clock right; the next append then starts the epoch.")));
	if (Max(after_log, after_epoch) >= EPOCH_OFFSET_LIMIT)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("could not start a log epoch after transaction id " UINT64_FORMAT,
						(uint64) newest_id),
				 errdetail("The log's newest transaction id or its newest epoch's offset is 2^62 or more, beyond what a new epoch's offset can follow."),
				 errhint("Only events inserted directly into eventsource.events (not through append) with made-up transaction ids have such ids; see \"Log epochs\" in README.md.")));
	return Max(Max(after_log, after_epoch), after_time);
}

/*
 * Starts a new epoch in this transaction unless a current one exists (which
 * another starter may just have committed), and returns the current epoch.
 * With only_if_free (the worker), does nothing (and returns no epoch) when
 * another starter holds the lock: that one may be an appender starting it in
 * its own transaction, which may in turn wait for a lock of the appender
 * this worker serves, a wait the deadlock detector could not see through
 * the worker.  Call while connected to SPI, as a role that may write the
 * log.
 */
static LogEpoch
start_epoch(bool only_if_free)
{
	LOCKTAG		tag;
	LogEpoch	newest;
	LogEpoch	started = {0};
	FullTransactionId own;
	uint64		oldest_running;
	const char *reason;
	int64		newest_id = 0;
	int64		newest_position = 0;
	int64		last_position;
	int64		position_margin = 0;
	bool		isnull;
	Datum		values[6];

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, 0, EVENTSOURCE_EPOCH_LOCK_CLASS);
	if (LockAcquire(&tag, ExclusiveLock, false, only_if_free) == LOCKACQUIRE_NOT_AVAIL)
		return started;

	newest = newest_epoch();
	if (epoch_is_current(&newest))
		return newest;

	own = GetTopFullTransactionId();
	run_with_latest_snapshot(&log_head_plan, NULL, true);
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	description = SPI_tuptable->tupdesc;
		Datum		id = SPI_getbinval(row, description, 1, &isnull);

		if (!isnull)
			newest_id = (int64) U64FromFullTransactionId(DatumGetFullTransactionId(id));
		newest_position = DatumGetInt64(SPI_getbinval(row, description, 2, &isnull));
		if (isnull)
			newest_position = 0;
		last_position = DatumGetInt64(SPI_getbinval(row, description, 3, &isnull));
		oldest_running =
			U64FromFullTransactionId(DatumGetFullTransactionId(SPI_getbinval(row, description, 4, &isnull)));
	}

	if (!newest.found)
		reason = "new log";
	else if (newest.system_identifier != (int64) GetSystemIdentifier())
		reason = "other cluster";
	else
		reason = "server start";

	if (strcmp(reason, "server start") != 0)
	{
		/*
		 * The log came from elsewhere (or is new): the epoch begins at the
		 * oldest running transaction, so every transaction that can still
		 * append has an id at or after its start.  Its global positions come
		 * right after the log's newest.
		 */
		started.start_transaction_id = oldest_running;
	}
	else
	{
		/*
		 * The epoch begins at this transaction: a transaction still prepared
		 * from before keeps the horizon in the earlier epoch until it ends.
		 * Transactions of this server start with smaller ids append in this
		 * epoch all the same: the horizon stays below their events while
		 * they run.  Global positions move on past those lost commits can
		 * have used.
		 */
		started.start_transaction_id = U64FromFullTransactionId(own);
		position_margin = EPOCH_MARGIN;
	}
	started.offset = new_epoch_offset(&newest, newest_id, started.start_transaction_id);

	started.found = true;
	started.epoch = newest.found ? newest.epoch + 1 : 1;
	started.system_identifier = (int64) GetSystemIdentifier();
	started.server_start_known = true;
	started.server_start = this_server_start();
	started.written_here = true;

	values[0] = Int32GetDatum(started.epoch);
	values[1] = Int64GetDatum(started.system_identifier);
	values[2] = TimestampTzGetDatum(started.server_start);
	values[3] = Int64GetDatum(started.offset);
	values[4] = FullTransactionIdGetDatum(FullTransactionIdFromU64(started.start_transaction_id));
	values[5] = CStringGetTextDatum(reason);
	run_kept_plan(&insert_epoch_plan, values, NULL, false);

	/*
	 * A crash must not lose the epoch (and the position jump) while it keeps
	 * appends that came after it: the worker commits with synchronous_commit
	 * on, and an appender's transaction too, whatever it sets.
	 */
	ForceSyncCommit();

	/* Global positions are never handed out twice either. */
	if (position_margin > 0 || newest_position > last_position)
	{
		values[0] = Int64GetDatum(Max(newest_position, last_position) + position_margin);
		run_kept_plan(&move_positions_plan, values, NULL, false);
	}
	return started;
}

/*
 * Entry point of the epoch starter, a background worker an appender starts
 * and waits for: main_arg is the database.  It commits the epoch with
 * synchronous_commit on and ends; whatever keeps it from starting the epoch
 * at once (a lock, an error) leaves the epoch to the appender, whose waits
 * the deadlock detector sees.
 */
void
eventsource_epoch_starter_main(Datum main_arg)
{
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), InvalidOid, 0);
	worker_set_session();

	/*
	 * At the session level of worker_set_session, whose settings outrank an
	 * override (PGC_S_SESSION is the highest source): any other lock it
	 * cannot have soon is left to the appender too.
	 */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("lock_timeout", "1s", PGC_SUSET, PGC_S_SESSION);
	pgstat_report_appname("eventsource epoch starter");

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (worker_may_serve_extension_quietly() && OidIsValid(log_epochs_table()))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		(void) start_epoch(true);
		PopActiveSnapshot();
		SPI_finish();
	}
	CommitTransactionCommand();
	proc_exit(0);
}

/* An appender tries this many times, this far apart, to start a worker. */
#define WORKER_ATTEMPTS		20
#define WORKER_RETRY_MS		50

/*
 * Has a background worker start the epoch and waits for it; false when no
 * worker could run (the caller then starts it itself).
 */

static bool
start_epoch_in_worker(void)
{
	BackgroundWorker worker = {0};
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;

	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "eventsource");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "eventsource_epoch_starter_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "eventsource epoch starter");
	snprintf(worker.bgw_type, BGW_MAXLEN, "eventsource epoch starter");
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	worker.bgw_notify_pid = MyProcPid;

	/* A slot taken by a parallel query, say, may soon be free again. */
	for (int attempt = 1; !RegisterDynamicBackgroundWorker(&worker, &handle); attempt++)
	{
		if (attempt == WORKER_ATTEMPTS)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 WORKER_RETRY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	status = WaitForBackgroundWorkerShutdown(handle);
	if (status == BGWH_POSTMASTER_DIED)
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("the server ended while a log epoch was being started")));
	return status == BGWH_STOPPED;
}

/* ------------------------------------------------------------------------
 * The log transaction id and the horizon
 * ------------------------------------------------------------------------
 */

/*
 * This transaction's log transaction id: its xid8 plus the offset of the
 * current epoch, starting the epoch when there is none.  Assigns the
 * transaction id, so call it where the write would assign it anyway (after
 * lock_stream_in_log_order).  Events and the streams' last_transaction_id
 * get it from here alone.
 */
uint64
log_transaction_id(void)
{
	static FullTransactionId known_for = {InvalidTransactionId};
	static uint64 known = 0;
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	Oid			table;
	LogEpoch	epoch;

	if (FullTransactionIdIsValid(own) && FullTransactionIdEquals(own, known_for))
		return known;
	table = log_epochs_table();
	if (!OidIsValid(table))
		return U64FromFullTransactionId(GetTopFullTransactionId());

	if (!known_current_epoch(table, &epoch))
	{
		/* Called from the statement that writes the stream's row, too. */
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		epoch = newest_epoch();
		if (!epoch_is_current(&epoch))
		{
			/*
			 * A worker starts the epoch and commits it on its own, so that
			 * other appenders need not wait for this transaction to end; when
			 * no worker can, this transaction starts it.
			 */
			bool		worker_ran = start_epoch_in_worker();

			if (worker_ran)
				epoch = newest_epoch();
			if (!epoch_is_current(&epoch))
			{
				epoch = start_epoch(false);
				if (epoch.written_here && !worker_ran)
					ereport(WARNING,
							(errmsg("no background worker could start the log epoch: this transaction starts it"),
							 errdetail("Every other append in this database waits until this transaction ends."),
							 errhint("Raise max_worker_processes, or keep this transaction short.")));
			}
		}
		note_current_epoch(table, &epoch);
		SPI_finish();
	}

	/*
	 * An epoch this transaction wrote is not remembered: a rollback to a
	 * savepoint may take its row away, and then another transaction starts
	 * the epoch, with another offset.
	 */
	own = GetTopFullTransactionId();
	known_for = epoch.written_here ? InvalidFullTransactionId : own;
	known = U64FromFullTransactionId(own) + (uint64) epoch.offset;
	return known;
}

/*
 * The horizon of the gap-safe log for the active snapshot: every event below
 * it has committed or never will, so reads deliver only events below it.  It
 * is the snapshot's xmin plus the offset of the epoch xmin belongs to; when
 * xmin precedes this cluster's epochs, the start of the first of them, and
 * when this cluster has none yet (a restore, nothing appended), just past the
 * log's newest event.
 */
uint64
log_horizon(void)
{
	uint64		xmin = U64FromFullTransactionId(DatumGetFullTransactionId(
		DirectFunctionCall1(pg_snapshot_xmin, DirectFunctionCall1(pg_current_snapshot, (Datum) 0))));
	uint64		horizon = xmin;
	Oid			table = log_epochs_table();
	Datum		values[2];
	LogEpoch	epoch;
	bool		isnull;
	Datum		newest;

	if (!OidIsValid(table))
		return xmin;
	if (known_current_epoch(table, &epoch) && xmin >= epoch.start_transaction_id)
		return xmin + (uint64) epoch.offset;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = Int64GetDatum((int64) GetSystemIdentifier());
	values[1] = FullTransactionIdGetDatum(FullTransactionIdFromU64(xmin));
	if (run_kept_plan(&epoch_of_transaction_plan, values, NULL, true) > 0)
	{
		epoch = epoch_from_row();
		horizon = xmin + (uint64) epoch.offset;
		note_current_epoch(table, &epoch);
	}
	else if (run_kept_plan(&first_epoch_of_run_plan, values, NULL, true) > 0)
	{
		epoch = epoch_from_row();
		horizon = epoch.start_transaction_id + (uint64) epoch.offset;
	}
	else
	{
		run_kept_plan(&newest_log_id_plan, NULL, NULL, true);
		newest = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		horizon = isnull ? 0 : U64FromFullTransactionId(DatumGetFullTransactionId(newest)) + 1;
	}
	SPI_finish();
	return horizon;
}

/* The horizon as a parameter of a read plan. */
Datum
log_horizon_datum(void)
{
	return FullTransactionIdGetDatum(FullTransactionIdFromU64(log_horizon()));
}

/*
 * eventsource.log_horizon() returns xid8.
 */
Datum
eventsource_log_horizon(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(log_horizon_datum());
}

/*
 * The server start a new log_epochs row records (the upgrade script's epoch
 * 1 uses it).
 */
Datum
eventsource_server_start(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(this_server_start());
}
