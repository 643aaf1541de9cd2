/*-------------------------------------------------------------------------
 *
 * notifier.c
 *	  The bus: background workers that tell LISTEN subscribers about new
 *	  events without any appending transaction sending NOTIFY itself.
 *
 * PostgreSQL's NOTIFY takes a cluster-wide lock at commit and holds it
 * across the commit's WAL flush, so notifying transactions commit one at a
 * time.  Appends therefore never notify.  Instead, with the library in
 * shared_preload_libraries:
 *
 * - a launcher (connected to no database: launcher.c) keeps one notifier
 *	 worker running for each database in which the extension is installed
 *	 (or, when eventsource.worker_databases names databases, each of those
 *	 in which it is installed);
 * - an appending backend, after its transaction commits, sets the latch of
 *	 its database's notifier (a shared memory slot, no lock:
 *	 worker_shared.c);
 * - the notifier wakes, finds the events that became visible in the gap-safe
 *	 log since its last notification, and sends one NOTIFY on channel
 *	 "eventsource" and one per category ("eventsource.order") whose payload
 *	 is the checkpoint of the newest such event.  Many commits coalesce into
 *	 one notification, and only the notifier ever holds the NOTIFY lock.
 *
 * An event becomes visible in the gap-safe log when every older transaction
 * has ended, which may be a transaction that appended nothing and wakes no
 * one: while committed events are held back that way, the notifier looks
 * again every eventsource.notify_max_delay milliseconds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/extension.h"
#include "funcapi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

#include "epoch.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "log.h"
#include "trust.h"
#include "worker_shared.h"
#include "worker_transaction.h"

PG_FUNCTION_INFO_V1(eventsource_notifier_status);

/* A notifier with nothing pending still looks this often (events written by other means). */
#define IDLE_TIMEOUT_MS			1000
/*
 * After a round that notified, the notifier lets commits gather this long
 * before the next round, and the slice of another job is not cut for the
 * commits of this long after the notifications looked (worker_slice_ends):
 * at most 200 rounds a second, whatever the append rate, for at most this
 * much more latency.
 */
#define COALESCE_MS				5

void		eventsource_notifier_main(Datum main_arg);

/* ------------------------------------------------------------------------
 * A database's notifier
 * ------------------------------------------------------------------------
 */

/*
 * Of the next ROUND_EVENTS events below the horizon $3 after ($1, $2), the
 * newest of each category, and how many there were.  The limit keeps the
 * plan an index scan in log order (without it the generic plan scans the
 * whole log); a round that reaches it is followed at once by another.  The
 * planner may underestimate the events after ($1, $2), when many share one
 * transaction (a bulk import), and then takes them all in a bitmap scan and
 * sorts them, each round: 0.3 s a round behind 360,000 events, which the
 * notifier announced 1,000 a round, for minutes (and a plan made while the
 * log was empty scans all of it).  So it is planned without sequential and
 * bitmap scans (notify_categories), which leaves the index scan in log order
 * whatever the estimates say, and once (the generic plan).
 */
#define ROUND_EVENTS 1000
static KeptPlan newly_visible_plan = {
	"SELECT DISTINCT ON (category) category, transaction_id, global_position,"
	"       pg_catalog.count(*) OVER () AS events"
	"  FROM (SELECT " EVENT_CATEGORY " AS category, e.transaction_id, e.global_position"
	"          FROM eventsource.events e"
	LOG_RANGE("$3") LOG_ORDER
	"         LIMIT " CppAsString2(ROUND_EVENTS) ") AS visible"
	" ORDER BY category, transaction_id DESC, global_position DESC",
	3, {XID8OID, INT8OID, XID8OID},
	CURSOR_OPT_GENERIC_PLAN
};

/*
 * Whether committed events wait at or above the horizon $1 (behind a
 * transaction still running).  Written with max(), which is an index probe
 * in any plan: an EXISTS gets a generic plan that scans the log.
 */
static KeptPlan held_back_plan = {
	"SELECT COALESCE(pg_catalog.max(e.transaction_id) OPERATOR(pg_catalog.>=) $1, false)"
	"  FROM eventsource.events e",
	1, {XID8OID}
};

static KeptPlan notify_plan = {
	"SELECT pg_catalog.pg_notify($1, $2)",
	2, {TEXTOID, TEXTOID}
};

static void
clear_notifier_pid(int code, Datum arg)
{
	SpinLockAcquire(&notifier_shared->mutex);
	worker_slot->pid = 0;
	SpinLockRelease(&notifier_shared->mutex);
}

/* ------------------------------------------------------------------------
 * The notifications job
 * ------------------------------------------------------------------------
 */

/*
 * The checkpoint of the newest event announced, when has_position: the
 * newly visible events are those after it.
 */
static bool has_position = false;
static Checkpoint position = {0, 0};

/* When the notifications job last cleared events_committed to look for new events. */
static TimestampTz notifications_looked_at = 0;

/*
 * Has the launcher follow this database's transactions prepared before it
 * followed those prepared (before the server restarted): one may have
 * created the extension, when it is not installed, or dropped it, when it
 * is, and its COMMIT PREPARED must have the database looked at again, its
 * notifier stopped first if it serves the database.  (Which of them did is
 * not known: one that changed no extension costs a look, or a restart of
 * the notifier, once, when it commits.)  Reads pg_prepared_xacts of
 * pg_catalog, with no statement timeout (the database's setting applies to
 * this worker's connection).
 */
static void
follow_earlier_prepared_transactions(bool installed)
{
	TransactionId followed_since;

	SpinLockAcquire(&notifier_shared->mutex);
	followed_since = XidFromFullTransactionId(notifier_shared->prepared_followed_since);
	SpinLockRelease(&notifier_shared->mutex);

	(void) set_config_option("statement_timeout", "0", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT transaction FROM pg_catalog.pg_prepared_xacts"
					" WHERE database OPERATOR(pg_catalog.=) pg_catalog.current_database()",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_prepared_xacts");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		TransactionId transaction_id =
			DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (TransactionIdPrecedes(transaction_id, followed_since))
			follow_prepared_change(transaction_id, true, installed);
	}
	SPI_finish();
	PopActiveSnapshot();
}

/*
 * Tells the launcher whether the extension is installed in this database,
 * and exits quietly when it is not: the launcher then starts no worker here
 * again until an extension is created or altered here, or a transaction
 * prepared before the server restarted commits; one that commits while it
 * serves has it stopped and the database looked at again
 * (follow_earlier_prepared_transactions).  Reads pg_extension and
 * pg_prepared_xacts only, nothing of a schema that any role could have made.
 * Exits first if a statement paused the database before this worker had its
 * pid in the slot (so the statement could not stop it): the launcher starts
 * it again as soon as the pause ends.
 */
static void
report_installation(void)
{
	bool		installed;
	bool		paused;

	SpinLockAcquire(&notifier_shared->mutex);
	paused = worker_slot->paused;
	worker_slot->restart_at_once |= paused;
	SpinLockRelease(&notifier_shared->mutex);
	if (paused)
		proc_exit(0);

	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid("eventsource", true));
	follow_earlier_prepared_transactions(installed);
	CommitTransactionCommand();

	SpinLockAcquire(&notifier_shared->mutex);
	worker_slot->installation = installed ? INSTALLATION_FOUND : INSTALLATION_ABSENT;
	SpinLockRelease(&notifier_shared->mutex);
	wake_launcher();
	if (!installed)
		proc_exit(0);
}

static void
notify(const char *channel, const Checkpoint *checkpoint)
{
	Datum		values[2];

	values[0] = CStringGetTextDatum(channel);
	values[1] = CStringGetTextDatum(checkpoint_to_cstring(checkpoint));
	run_kept_plan(&notify_plan, values, NULL, false);
}

/*
 * Notifies each category's channel of its newest event visible after
 * position, and returns the newest of them all (position when none).  Sets
 * *more when there may be more to announce at once.
 */
static Checkpoint
notify_categories(bool *more)
{
	Checkpoint	newest = position;
	Datum		values[3];
	uint64		categories;
	SPITupleTable *rows;

	values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(position.transaction_id));
	values[1] = Int64GetDatum(position.global_position);
	values[2] = log_horizon_datum();
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	categories = run_kept_plan(&newly_visible_plan, values, NULL, true);
	rows = SPI_tuptable;
	*more = false;
	if (categories > 0)
	{
		bool		isnull;

		*more = DatumGetInt64(SPI_getbinval(rows->vals[0], rows->tupdesc, 4, &isnull)) >= ROUND_EVENTS;
	}
	for (uint64 i = 0; i < categories; i++)
	{
		Checkpoint	checkpoint = checkpoint_from_row(rows->vals[i], rows->tupdesc, 2);
		char	   *channel = psprintf("eventsource.%s", SPI_getvalue(rows->vals[i], rows->tupdesc, 1));

		/* A channel name is at most NAMEDATALEN - 1 bytes: long categories share "eventsource" only. */
		if (strlen(channel) < NAMEDATALEN)
			notify(channel, &checkpoint);
		if (compare_checkpoints(&checkpoint, &newest) > 0)
			newest = checkpoint;
	}
	return newest;
}

/*
 * The notifications job: notifies what became visible since the last
 * notification, in a transaction of its own (the notifications go out when
 * it commits).  Returns how long to wait before looking again unless woken.
 */
static long
notify_newly_visible(TimestampTz deadline)
{
	long		timeout = IDLE_TIMEOUT_MS;
	ExtensionTrust trust;

	/* Before the snapshot: the events of a commit that sets it again after are announced next time. */
	worker_slot->events_committed = false;
	notifications_looked_at = GetCurrentTimestamp();
	pg_memory_barrier();
	trust = start_job_transaction("eventsource notifier: looking for new events");

	if (trust == EXTENSION_NOT_INSTALLED)
	{
		/*
		 * Not installed (or dropped): nothing to notify.  Every event of a
		 * log created later is new, so start from its beginning.
		 */
		has_position = true;
		position.transaction_id = 0;
		position.global_position = 0;
	}
	else if (trust != EXTENSION_SERVED)
	{
		/*
		 * Refused: nothing to notify.  Once served again, start at the head,
		 * as the first notifier does.
		 */
		has_position = false;
	}
	else
	{
		Checkpoint	newest = position;
		bool		isnull;
		bool		more = false;

		if (!has_position)
		{
			/*
			 * The first notifier of the database (since the server started,
			 * or since eventsource.notify was turned on) starts at the head,
			 * and announces it on "eventsource": an append may have committed
			 * before this first look.  Subscribers read from their own
			 * checkpoints, so one notification too many costs them one empty
			 * poll.
			 */
			newest = visible_head();
			has_position = true;
		}
		else
			newest = notify_categories(&more);

		if (compare_checkpoints(&newest, &position) != 0 && newest.transaction_id != 0)
		{
			worker_commit_without_flush();
			notify("eventsource", &newest);
			position = newest;
			SpinLockAcquire(&notifier_shared->mutex);
			worker_slot->notifications++;
			worker_slot->has_notified = true;
			worker_slot->last_checkpoint = newest;
			worker_slot->last_notified_at = GetCurrentTimestamp();
			SpinLockRelease(&notifier_shared->mutex);
		}

		{
			Datum		horizon[1] = {log_horizon_datum()};

			run_kept_plan(&held_back_plan, horizon, NULL, true);
		}
		if (more)
			timeout = 0;
		else if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			timeout = eventsource_notify_max_delay;
	}
	worker_commit_transaction();
	return timeout;
}

/* ------------------------------------------------------------------------
 * The scavenge job
 * ------------------------------------------------------------------------
 */

/* When the last scavenge pass ended (the worker's start before the first), and whether one is under way. */
static TimestampTz scavenge_pass_ended_at = 0;
static bool scavenge_pass_under_way = false;

/*
 * The scavenge job: a pass every eventsource.scavenge_interval, each slice
 * of it in batches of its own (lifecycle.c), and after each slice a rest as
 * long as the slice took (a millisecond at least): a pass under way never
 * takes more than half of the worker's time, or floods the disk with what it
 * deletes, however early the notifications end its slices.
 */
static long
scavenge_every_interval(TimestampTz deadline)
{
	long		interval_ms = eventsource_scavenge_interval * 1000L;
	TimestampTz started;

	if (!scavenge_pass_under_way)
	{
		long		since_ms = (long) ((GetCurrentTimestamp() - scavenge_pass_ended_at) / 1000);

		if (since_ms < interval_ms)
			return interval_ms - since_ms;
	}
	started = GetCurrentTimestamp();
	scavenge_pass_under_way = run_scavenge_slice(deadline);
	if (scavenge_pass_under_way)
		return Max((long) ((GetCurrentTimestamp() - started + 999) / 1000), 1L);
	scavenge_pass_ended_at = GetCurrentTimestamp();
	return interval_ms;
}

/* ------------------------------------------------------------------------
 * The worker's loop: a table of time-boxed jobs, notifications first
 * ------------------------------------------------------------------------
 */

/*
 * A job of the worker.  run does a slice of it, in transactions of its own,
 * until the deadline it is given (its slice setting from its start) or,
 * sooner, until the notifications have work (worker_slice_ends), and returns
 * the milliseconds until it has work again (0: at once; -1: none, until new
 * events wake the worker or IDLE_TIMEOUT_MS).
 */
typedef struct WorkerJob
{
	const char *name;			/* for the server log */
	bool		(*on) (void);	/* its setting */
	const int  *slice_ms;		/* its setting of a slice's length; NULL: no deadline */
	long		(*run) (TimestampTz deadline);
	bool		runs_when_woken;	/* an append (the latch) may give it work */
	TimestampTz ready_at;		/* when to run it next; DT_NOEND: not while off */
	int			failures;		/* its slices that failed in a row */
	TimestampTz resting_until;	/* after a failed slice, not before this, woken or not */
} WorkerJob;

/*
 * The worker's jobs.  The first, the notifications, runs before the other
 * jobs and after the slice of each, which ends as soon as committed events
 * wait to be announced: no job delays a notification by more than what it
 * was doing then (a handler call and its turn's commit, a scavenge batch).
 */
static WorkerJob worker_jobs[] = {
	{"notifications", notifications_on, NULL, notify_newly_visible, true, 0, 0, 0},
	{"async projections", async_projections_on, &eventsource_async_projection_slice, run_async_projections, true, 0, 0, 0},
	{"scavenge", scavenge_on, &eventsource_scavenge_slice, scavenge_every_interval, false, 0, 0, 0},
};

#define WORKER_JOB_COUNT ((int) lengthof(worker_jobs))

/* When the job is ready to run: DT_NOEND while it is off. */
static TimestampTz
job_ready_at(const WorkerJob *job)
{
	return Max(job->ready_at, job->resting_until);
}

/*
 * Runs a slice of the job.  An error in it that its own work does not
 * handle (a projection's failure is handled as that projection's: the
 * async projections job) ends that slice only: a listing that fails, a
 * statement that cannot run in a read-only database, a cancel.  It is
 * logged, its transaction undone, and the job rests before its next slice
 * (FIRST_FAILED_JOB_REST_MS, doubling with each failure in a row up to
 * LONGEST_FAILED_JOB_REST_MS) while the other jobs go on; the worker does not
 * exit, so that a failure that lasts never becomes a crash loop.
 */
#define FIRST_FAILED_JOB_REST_MS	1000
#define LONGEST_FAILED_JOB_REST_MS	60000

static long
run_job_slice(WorkerJob *job)
{
	TimestampTz deadline = job->slice_ms == NULL ? DT_NOEND :
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), *job->slice_ms);
	WorkerJob  *notifications = &worker_jobs[0];
	volatile long wait_ms = 0;

	/* What ends the slice sooner (worker_slice_ends): the notifications while they are on and do not rest. */
	worker_notifications_due_at = job == notifications || !notifications->on() ||
		notifications->resting_until > GetCurrentTimestamp() ? DT_NOEND : job_ready_at(notifications);
	worker_commits_gather_until = TimestampTzPlusMilliseconds(notifications_looked_at, COALESCE_MS);
	PG_TRY();
	{
		CHECK_FOR_INTERRUPTS();
		wait_ms = job->run(deadline);
		job->failures = 0;
	}
	PG_CATCH();
	{
		ErrorData  *error = worker_catch_error();

		job->failures++;
		wait_ms = Min((long) FIRST_FAILED_JOB_REST_MS << Min(job->failures - 1, 16), LONGEST_FAILED_JOB_REST_MS);
		job->resting_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms);
		ereport(LOG,
				(errmsg("eventsource notifier: the %s job failed: %s", job->name, error->message),
				 errdetail("It tries again in %ld ms.", wait_ms)));
		FreeErrorData(error);
	}
	PG_END_TRY();
	return wait_ms;
}

static void
run_job(WorkerJob *job)
{
	long		wait_ms;

	if (!job->on())
	{
		job->ready_at = DT_NOEND;
		if (job == &worker_jobs[0])
			has_position = false;	/* turned on again, it starts at the head */
		return;
	}
	if (job->resting_until > GetCurrentTimestamp())
		return;
	wait_ms = run_job_slice(job);
	job->ready_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms < 0 ? IDLE_TIMEOUT_MS : wait_ms);
}

static bool
job_ready(const WorkerJob *job)
{
	return job_ready_at(job) <= GetCurrentTimestamp();
}

/*
 * One round: every job that is ready runs a slice, with the notifications
 * before and after each.
 */
static void
run_round(void)
{
	bool		any_ready = job_ready(&worker_jobs[0]);

	for (int i = 1; i < WORKER_JOB_COUNT; i++)
		any_ready |= job_ready(&worker_jobs[i]);
	if (!any_ready)
		return;
	run_job(&worker_jobs[0]);
	for (int i = 1; i < WORKER_JOB_COUNT; i++)
	{
		if (!job_ready(&worker_jobs[i]))
			continue;
		run_job(&worker_jobs[i]);
		run_job(&worker_jobs[0]);
	}
}

/* Milliseconds until the first job is ready (0: now), -1 when none will be unless woken. */
static long
until_next_job(void)
{
	TimestampTz next = DT_NOEND;
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < WORKER_JOB_COUNT; i++)
		next = Min(next, job_ready_at(&worker_jobs[i]));
	if (next == DT_NOEND)
		return -1;
	return next <= now ? 0 : (long) ((next - now + 999) / 1000);
}

/*
 * Entry point of a database's worker: main_arg is its slot in shared
 * memory.  An error in a job ends a slice of that job (run_job_slice); one
 * outside the jobs ends the process, and the launcher starts it again.
 */
void
eventsource_notifier_main(Datum main_arg)
{
	uint64		notifications;

	worker_slot = &notifier_shared->slots[DatumGetInt32(main_arg)];

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(worker_slot->database_oid, InvalidOid, 0);

	SpinLockAcquire(&notifier_shared->mutex);
	worker_slot->pid = MyProcPid;
	worker_slot->procno = MyProc->pgprocno;
	SpinLockRelease(&notifier_shared->mutex);
	before_shmem_exit(clear_notifier_pid, (Datum) 0);
	report_installation();

	worker_set_session();
	pgstat_report_appname("eventsource notifier");

	/*
	 * A notifier that ended (an error, a reload) resumes after what the last
	 * one announced, so events appended meanwhile are announced on their
	 * category channels too.
	 */
	SpinLockAcquire(&notifier_shared->mutex);
	has_position = worker_slot->has_notified;
	position = worker_slot->last_checkpoint;
	SpinLockRelease(&notifier_shared->mutex);

	/* The first scavenge pass comes one interval after the start. */
	scavenge_pass_ended_at = GetCurrentTimestamp();
	worker_round_context = AllocSetContextCreate(TopMemoryContext, "eventsource worker round",
										  ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(worker_round_context);

	ereport(LOG,
			(errmsg("eventsource notifier started for database \"%s\"", worker_slot->database_name)));

	for (;;)
	{
		long		timeout = until_next_job();
		int			events;

		events = WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout >= 0 ? WL_TIMEOUT : 0),
						   timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);

		/*
		 * A cancel (pg_cancel_backend) that came while the worker waited has
		 * nothing to cancel, as in a backend waiting for its client's next
		 * command: one that comes while a job runs ends that job's slice.
		 */
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(worker_round_context);
		for (int i = 0; i < WORKER_JOB_COUNT; i++)
		{
			/* A reload may have turned a job on or changed its pacing: each looks again. */
			if (ConfigReloadPending || ((events & WL_LATCH_SET) && worker_jobs[i].runs_when_woken))
				worker_jobs[i].ready_at = 0;
		}
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		SpinLockAcquire(&notifier_shared->mutex);
		worker_slot->wakeups++;
		SpinLockRelease(&notifier_shared->mutex);

		notifications = worker_slot->notifications;
		run_round();

		/*
		 * After a round that notified, with no job ready at once, let
		 * commits gather (COALESCE_MS).
		 */
		if (worker_slot->notifications != notifications && until_next_job() != 0)
			(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, COALESCE_MS, PG_WAIT_EXTENSION);
	}
}

/* ------------------------------------------------------------------------
 * eventsource.notifier_status()
 * ------------------------------------------------------------------------
 */

/*
 * eventsource.notifier_status() returns one row per served database.
 */
Datum
eventsource_notifier_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	require_preloaded_library("eventsource.notifier_status()",
							  "The notifier runs as a background worker, which only a preloaded library can start.",
							  "Add eventsource to shared_preload_libraries in postgresql.conf and restart the server.");
	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; i < notifier_shared->slot_count; i++)
	{
		NotifierSlot slot;
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};

		SpinLockAcquire(&notifier_shared->mutex);
		slot = notifier_shared->slots[i];
		SpinLockRelease(&notifier_shared->mutex);
		/* Not the slots of workers that look for the extension and have not found it. */
		if (!OidIsValid(slot.database_oid) || slot.installation != INSTALLATION_FOUND)
			continue;

		values[0] = CStringGetTextDatum(slot.database_name);
		values[1] = Int32GetDatum(slot.pid);
		nulls[1] = slot.pid == 0;
		values[2] = BoolGetDatum(slot.paused);
		values[3] = Int64GetDatum((int64) slot.wakeups);
		values[4] = Int64GetDatum((int64) slot.notifications);
		nulls[5] = nulls[6] = !slot.has_notified;
		if (slot.has_notified)
		{
			Checkpoint *checkpoint = palloc(sizeof(Checkpoint));

			*checkpoint = slot.last_checkpoint;
			values[5] = PointerGetDatum(checkpoint);
			values[6] = TimestampTzGetDatum(slot.last_notified_at);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

