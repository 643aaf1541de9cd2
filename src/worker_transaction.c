/*-------------------------------------------------------------------------
 *
 * worker_transaction.c
 *	  The transactions of eventsource's background workers, as worker_spi
 *	  runs them, for every job (worker_transaction.h): the session's forced
 *	  settings, a fresh statement start, activity reporting, the trust check,
 *	  SPI and a snapshot; commits with and without the WAL flush, aborts,
 *	  caught errors; the memory context of a round of the worker's loop.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "eventsource.h"
#include "trust.h"
#include "worker_transaction.h"

/*
 * What the worker allocates outside its transactions during one round of
 * its loop (a job's list of projections, an error's copy): reset at the
 * start of each round.  The jobs run in it, and each transaction ends there.
 */
MemoryContext worker_round_context = NULL;

/*
 * The settings of a background worker's session (the notifier's, the epoch
 * starter's) whatever the database's and role's settings (ALTER DATABASE
 * ... SET, ALTER ROLE ... SET, which its connection applied) say, so that
 * their owner cannot make the worker fail or change what it does:
 *
 * - nothing a user defines may run with the worker's (superuser) rights:
 *	 its statements name every operator, function and type with its schema,
 *	 and all run with this search path;
 * - its transactions write, and fire the triggers of the extension's
 *	 tables, which keep them consistent (session_replication_role replica or
 *	 local would skip them).  Their isolation level is the database's: in a
 *	 database whose transactions are serializable, so are the async
 *	 projections' (a serialization failure is the projection's failure, and
 *	 the worker's own queries work at any level);
 * - the database's and role's statement_timeout and lock_timeout do apply,
 *	 to each of its transactions (start_job_transaction): they bound a
 *	 handler that never returns and a wait for a lock someone keeps, and
 *	 what they end is a job's failure, which rests that job, never the
 *	 worker.  (The idle timeouts apply to client sessions only.)
 *
 * The source is the session's, not an override: a projection handler's SET
 * (in a GUC nest level of its own) must take effect, and an override would
 * silently ignore it.
 */
static const char *const worker_session_settings[][2] = {
	{"search_path", "pg_catalog, pg_temp"},
	{"default_transaction_read_only", "off"},
	{"session_replication_role", "origin"},
};

void
worker_set_session(void)
{
	for (size_t i = 0; i < lengthof(worker_session_settings); i++)
		SetConfigOption(worker_session_settings[i][0], worker_session_settings[i][1],
						PGC_SUSET, PGC_S_SESSION);
}

/*
 * Starts one of the worker's transactions, as worker_spi does: a fresh
 * statement start time, which is the transaction's (now()), and
 * pg_stat_activity showing what it does; then the extension, locked, and
 * the snapshot the job's queries read with; connected to SPI.  Returns what
 * the worker may do with the extension in this transaction
 * (extension_trust): it touches the schema only when the answer is
 * EXTENSION_SERVED, which holds until the transaction ends.
 */
ExtensionTrust
start_job_transaction(const char *activity)
{
	ExtensionTrust trust;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, activity);
	/* Each transaction is a statement for statement_timeout: it bounds a handler that never returns. */
	if (StatementTimeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
	trust = extension_trust();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	return trust;
}

bool
worker_start_transaction(const char *activity)
{
	return start_job_transaction(activity) == EXTENSION_SERVED;
}

/*
 * What every transaction of the worker leaves behind when it ends: its
 * statement timeout, which must not fire in the next one, and the
 * session-level advisory locks a handler took (pg_advisory_lock), which
 * would otherwise be held by the worker's session for ever; the worker
 * takes none itself.
 */
static void
end_job_transaction(void)
{
	if (get_timeout_active(STATEMENT_TIMEOUT))
		disable_timeout(STATEMENT_TIMEOUT, false);
	LockReleaseSession(USER_LOCKMETHOD);
}

void
worker_commit_transaction(void)
{
	SPI_finish();
	PopActiveSnapshot();
	end_job_transaction();
	CommitTransactionCommand();
	MemoryContextSwitchTo(worker_round_context);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Lets the current transaction commit without waiting for its commit record
 * to be flushed (synchronous_commit = off, for this transaction), when losing
 * it in a crash would cost nothing: the notifications job's (which only
 * sends NOTIFY: PostgreSQL holds its cluster-wide lock across that wait), a
 * scavenge batch's (which the next pass removes again), an async
 * projection's turn that only moved its checkpoint past skipped events.
 * Waiting would also flush first whatever WAL the worker's scavenge wrote
 * before.
 */
void
worker_commit_without_flush(void)
{
	(void) set_config_option("synchronous_commit", "off", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

/*
 * Ends the transaction of an error caught (and copied, and flushed) by a
 * job: everything it did is undone, SPI and its snapshots included.
 */
void
worker_abort_transaction(void)
{
	end_job_transaction();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(worker_round_context);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * In the PG_CATCH of a job: returns the error, copied into the round's
 * memory, once flushed and its transaction (if any) undone.
 */
ErrorData *
worker_catch_error(void)
{
	ErrorData  *error;

	MemoryContextSwitchTo(worker_round_context);
	error = CopyErrorData();
	FlushErrorState();
	worker_abort_transaction();
	return error;
}
