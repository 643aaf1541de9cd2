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
 * - a launcher (connected to no database) keeps one notifier worker running
 *	 for each database in which the extension is installed (or, when
 *	 eventsource.worker_databases names databases, each of those in which it
 *	 is installed);
 * - an appending backend, after its transaction commits, sets the latch of
 *	 its database's notifier (a shared memory slot, no lock);
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
 * The launcher reads pg_database, a shared catalog, but cannot see which
 * databases have the extension: it starts a worker in each database it has
 * not looked at, and a worker that finds no extension says so in its slot
 * and exits.  The launcher does not look there again until an extension is
 * created, altered or dropped there: the backend that does it wakes the
 * launcher when its transaction commits (an object access hook, so that
 * CREATE EXTENSION, a restore and ALTER EXTENSION ... UPDATE all count,
 * and a transaction rolled back does not).  A new database is looked at
 * once, when the launcher finds it in pg_database; CREATE DATABASE wakes
 * the launcher, which also reads pg_database every few seconds.  What a
 * prepared transaction did to extensions counts when it commits: the
 * launcher follows it from PREPARE TRANSACTION on.
 *
 * Looks are bounded for a tenant with CREATEDB, who may hold locks on its
 * databases and copy them at will: a database is looked at no more than
 * once a second; a look that does not find out within 10 s is stopped and
 * made again later, with a doubling delay; and the databases of one role
 * that is not a superuser take at most eventsource.max_databases_per_owner
 * slots.
 *
 * Statements that need a database without connections (DROP DATABASE,
 * renaming it, moving it, using it as a template) first stop its notifier,
 * once the role running them has passed the privilege checks PostgreSQL
 * makes before it needs the database so; the launcher starts it again as
 * soon as the statement ends, if the database still exists.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/twophase.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/tablespace.h"
#include "funcapi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "rewrite/rewriteSupport.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/varlena.h"
#include "utils/xid8.h"

#include "epoch.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "log.h"
#include "trust.h"
#include "worker_transaction.h"

PG_FUNCTION_INFO_V1(eventsource_notifier_status);

/* The launcher reads pg_database at least this often. */
#define LAUNCHER_CYCLE_MS		5000
/*
 * At most this many workers look for the extension at a time (each takes a
 * background worker of max_worker_processes, which parallel queries and the
 * epoch starter share); a worker that finds it serves the database.
 */
#define LOOKS_AT_ONCE			2
/*
 * How many databases in which an extension was created or changed backends
 * can report before the launcher takes them; beyond, it looks again at every
 * database it found without the extension.
 */
#define LOOK_REQUESTS			32
/*
 * A look that has not found out within this long (a connection waiting for
 * a lock someone holds on the database) is stopped and made again after a
 * delay that starts at this and doubles, up to LOOK_BACKOFF_MAX_MS, until a
 * look finds out.  Databases whose last look was stopped take at most
 * LOOKS_AT_ONCE - 1 of the looks at a time.
 */
#define LOOK_TIME_LIMIT_MS		10000
#define LOOK_BACKOFF_MAX_MS		300000
/*
 * A database is looked at no more often than this: a loop of CREATE and DROP
 * EXTENSION must not have the launcher start a worker each time.
 */
#define LOOK_INTERVAL_MS		1000
/* A notifier that stopped is not started again sooner than this. */
#define RESTART_DELAY_MS		5000
/* A notifier with nothing pending still looks this often (events written by other means). */
#define IDLE_TIMEOUT_MS			1000
/*
 * After a round that notified, the notifier lets commits gather this long
 * before the next round: at most 200 rounds a second, whatever the append
 * rate, for at most this much more latency.
 */
#define COALESCE_MS				5

/* What the worker of a slot found when it started. */
typedef enum InstallationFound
{
	INSTALLATION_NOT_LOOKED_AT, /* no worker has looked yet */
	INSTALLATION_FOUND,			/* the extension is installed: it serves */
	INSTALLATION_ABSENT			/* it is not: the worker exited */
} InstallationFound;

/* One database's notifier. */
typedef struct NotifierSlot
{
	Oid			database_oid;	/* InvalidOid: the slot is free */
	char		database_name[NAMEDATALEN];
	pid_t		pid;			/* the running notifier, 0 when none */
	int			procno;			/* its PGPROC number, for its latch */
	bool		paused;			/* a statement needs the database to itself */
	bool		restart_at_once;	/* stopped by a pause: no restart delay */
	InstallationFound installation; /* set by the worker */
	bool		extension_dropped;	/* by a committed transaction since */
	uint64		wakeups;
	uint64		notifications;
	bool		has_notified;
	Checkpoint	last_checkpoint;
	TimestampTz last_notified_at;

	/*
	 * Set, unlocked, by a backend whose transaction appended events, when it
	 * commits and before it sets the notifier's latch (SetLatch's barrier
	 * orders the two); cleared by the notifications job before it looks.  A
	 * latch alone would not do: a handler the worker calls may reset it
	 * (pg_sleep, a lock wait).  Other jobs end their slices when it is set
	 * (worker_slice_ends).
	 */
	bool		events_committed;
} NotifierSlot;

/* A prepared transaction that created, altered or dropped an extension. */
typedef struct PreparedChange
{
	Oid			database_oid;
	TransactionId transaction_id;
	bool		extension_changed;
	bool		extension_dropped;
} PreparedChange;

typedef struct NotifierShared
{
	slock_t		mutex;			/* protects everything below */
	pid_t		launcher_pid;
	int			launcher_procno;
	/* Databases in which a committed transaction created or altered an extension. */
	int			look_request_count;
	bool		look_requests_lost; /* more than LOOK_REQUESTS came */
	Oid			look_requests[LOOK_REQUESTS];
	/*
	 * What the launcher reports once each prepared transaction commits: the
	 * prepared_change_count first of prepared_changes, which has room for
	 * every transaction that may be prepared or preparing at a time
	 * (prepared_change_capacity).  Those prepared before
	 * prepared_followed_since (by an earlier server, before a restart) are
	 * added by the looks at their databases.
	 */
	int			prepared_change_count;
	FullTransactionId prepared_followed_since;
	int			slot_count;		/* eventsource.max_databases */
	NotifierSlot slots[FLEXIBLE_ARRAY_MEMBER];
	/* PreparedChange prepared_changes[prepared_change_capacity()] follows */
} NotifierShared;

static NotifierShared *notifier_shared = NULL;
static PreparedChange *prepared_changes = NULL;
static shmem_request_hook_type previous_shmem_request_hook = NULL;
static shmem_startup_hook_type previous_shmem_startup_hook = NULL;
static ProcessUtility_hook_type previous_process_utility_hook = NULL;

/* What to do when this backend's transaction ends (see at_transaction_end). */
#define WAKE_NOTIFIER_AT_COMMIT		0x01	/* it appended: its database's notifier */
#define WAKE_LAUNCHER_AT_END		0x02	/* a database may be new, or free again */
#define EXTENSION_CHANGED_AT_COMMIT 0x04	/* the launcher looks at this database */
#define EXTENSION_DROPPED_AT_COMMIT 0x08	/* this database's notifier stops */
static int	actions_at_transaction_end = 0;
static bool transaction_callback_registered = false;
static object_access_hook_type previous_object_access_hook = NULL;

/*
 * The slot of the notifier a statement of this backend paused, NULL when
 * none is paused; and whether resume_paused_notifier_at_exit is registered
 * (once per backend, never cancelled).
 */
static NotifierSlot *paused_slot = NULL;
static bool exit_callback_registered = false;

static void at_transaction_end(int actions);
static void notifier_object_access(ObjectAccessType access, Oid class_id, Oid object_id,
								   int sub_id, void *arg);
static bool any_worker_job_on(void);

void		eventsource_launcher_main(Datum main_arg);
void		eventsource_notifier_main(Datum main_arg);

/*
 * Each transaction that passed PREPARE TRANSACTION and is not resolved is
 * prepared (at most max_prepared_transactions) or still preparing in its
 * backend.
 */
static int
prepared_change_capacity(void)
{
	return max_prepared_xacts + MaxBackends;
}

static Size
notifier_slots_size(void)
{
	return add_size(offsetof(NotifierShared, slots),
					mul_size(eventsource_max_databases, sizeof(NotifierSlot)));
}

static Size
notifier_shared_size(void)
{
	return add_size(notifier_slots_size(),
					mul_size(prepared_change_capacity(), sizeof(PreparedChange)));
}

static void
notifier_shmem_request(void)
{
	if (previous_shmem_request_hook)
		previous_shmem_request_hook();
	RequestAddinShmemSpace(notifier_shared_size());
}

static void
notifier_shmem_startup(void)
{
	bool		found;

	if (previous_shmem_startup_hook)
		previous_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	notifier_shared = ShmemInitStruct("eventsource notifier", notifier_shared_size(), &found);
	if (!found)
	{
		memset(notifier_shared, 0, notifier_shared_size());
		SpinLockInit(&notifier_shared->mutex);
		notifier_shared->slot_count = eventsource_max_databases;
	}
	prepared_changes = (PreparedChange *) ((char *) notifier_shared + notifier_slots_size());
	LWLockRelease(AddinShmemInitLock);
}

static void
set_latch_of(int procno)
{
	SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

static void resume_paused_notifier_at_exit(int code, Datum arg);

/*
 * Stops the notifier of a database and keeps it stopped while a statement
 * that needs the database without connections runs.  Sets paused_slot to the
 * slot (left NULL when no notifier serves the database) before it waits, so
 * that a backend interrupted meanwhile still resumes it, at the error or at
 * its exit.  A notifier stopped here is not a failing one: the launcher
 * starts it again without the restart delay.
 */
static void
pause_notifier(Oid database_oid)
{
	pid_t		pid = 0;

	if (!exit_callback_registered)
	{
		before_shmem_exit(resume_paused_notifier_at_exit, (Datum) 0);
		exit_callback_registered = true;
	}

	SpinLockAcquire(&notifier_shared->mutex);
	for (int i = 0; i < notifier_shared->slot_count; i++)
	{
		NotifierSlot *slot = &notifier_shared->slots[i];

		if (slot->database_oid == database_oid)
		{
			slot->paused = true;
			pid = slot->pid;
			slot->restart_at_once |= pid != 0;
			paused_slot = slot;
		}
	}
	SpinLockRelease(&notifier_shared->mutex);

	if (pid != 0)
	{
		/* SIGTERM ends it at once; wait up to 10 s for it to be gone. */
		kill(pid, SIGTERM);
		for (int waited = 0; waited < 1000; waited++)
		{
			bool		running;

			SpinLockAcquire(&notifier_shared->mutex);
			running = paused_slot->pid != 0;
			SpinLockRelease(&notifier_shared->mutex);
			if (!running)
				break;
			CHECK_FOR_INTERRUPTS();
			pg_usleep(10000L);
		}
	}
}

static void
wake_launcher(void)
{
	int			launcher_procno = -1;

	SpinLockAcquire(&notifier_shared->mutex);
	if (notifier_shared->launcher_pid != 0)
		launcher_procno = notifier_shared->launcher_procno;
	SpinLockRelease(&notifier_shared->mutex);
	if (launcher_procno >= 0)
		set_latch_of(launcher_procno);
}

static void
resume_notifier(NotifierSlot *slot)
{
	SpinLockAcquire(&notifier_shared->mutex);
	slot->paused = false;
	SpinLockRelease(&notifier_shared->mutex);
}

/*
 * The value of a statement's option, NULL when it is not given (or given as
 * DEFAULT).
 */
static const char *
option_value(List *options, const char *name)
{
	ListCell   *option;

	foreach(option, options)
	{
		DefElem    *element = lfirst_node(DefElem, option);

		if (strcmp(element->defname, name) == 0 && element->arg != NULL)
			return defGetString(element);
	}
	return NULL;
}

/*
 * The name of the database a statement needs without other connections, or
 * NULL: DROP DATABASE, renaming a database, moving it (ALTER DATABASE ... SET
 * TABLESPACE, which AlterDatabase accepts only as its one option; the other
 * forms of ALTER DATABASE need no such thing) and CREATE DATABASE, which
 * copies its TEMPLATE, template1 by default (served only when listed).
 */
static const char *
database_needed_alone(Node *statement)
{
	if (IsA(statement, DropdbStmt))
		return ((DropdbStmt *) statement)->dbname;
	if (IsA(statement, RenameStmt) && ((RenameStmt *) statement)->renameType == OBJECT_DATABASE)
		return ((RenameStmt *) statement)->subname;
	if (IsA(statement, AlterDatabaseStmt))
	{
		AlterDatabaseStmt *alter = (AlterDatabaseStmt *) statement;

		if (list_length(alter->options) == 1 && option_value(alter->options, "tablespace") != NULL)
			return alter->dbname;
		return NULL;
	}
	if (IsA(statement, CreatedbStmt))
	{
		const char *template_name = option_value(((CreatedbStmt *) statement)->options, "template");

		return template_name ? template_name : "template1";
	}
	return NULL;
}

/*
 * The default tablespace of a database and whether it is a template; false
 * when it no longer exists.
 */
static bool
database_row(Oid database_oid, Oid *tablespace, bool *is_template)
{
	HeapTuple	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(database_oid));

	if (!HeapTupleIsValid(tuple))
		return false;
	*tablespace = ((Form_pg_database) GETSTRUCT(tuple))->dattablespace;
	*is_template = ((Form_pg_database) GETSTRUCT(tuple))->datistemplate;
	ReleaseSysCache(tuple);
	return true;
}

/*
 * Whether the current role passes the checks PostgreSQL 15 makes
 * (dbcommands.c) before a statement of database_needed_alone needs the
 * database without connections, and whether it really needs it so.  Only
 * then may the statement stop the database's notifier: a role that may not
 * drop, rename, move or copy a database must not stop its notifier by
 * trying.  A statement that passes may still fail later; its notifier then
 * starts again at once.
 */
static bool
may_need_database_alone(Node *statement, Oid database_oid)
{
	Oid			role = GetUserId();

	/* dropdb: the owner. */
	if (IsA(statement, DropdbStmt))
		return pg_database_ownercheck(database_oid, role);

	/* RenameDatabase: the owner, with CREATEDB. */
	if (IsA(statement, RenameStmt))
		return pg_database_ownercheck(database_oid, role) && have_createdb_privilege();

	/*
	 * movedb: the owner, allowed to create in the tablespace; moving a
	 * database to the tablespace it is in does nothing.
	 */
	if (IsA(statement, AlterDatabaseStmt))
	{
		const char *tablespace_name = option_value(((AlterDatabaseStmt *) statement)->options, "tablespace");
		Oid			tablespace = get_tablespace_oid(tablespace_name, true);
		Oid			current_tablespace;
		bool		is_template;

		return pg_database_ownercheck(database_oid, role) && OidIsValid(tablespace) &&
			pg_tablespace_aclcheck(tablespace, role, ACL_CREATE) == ACLCHECK_OK &&
			database_row(database_oid, &current_tablespace, &is_template) &&
			current_tablespace != tablespace;
	}

	/*
	 * createdb: CREATEDB, able to become the new database's owner, and a
	 * template database or the owner of the one copied.
	 */
	if (IsA(statement, CreatedbStmt))
	{
		const char *owner_name = option_value(((CreatedbStmt *) statement)->options, "owner");
		Oid			owner = owner_name ? get_role_oid(owner_name, true) : role;
		Oid			tablespace;
		bool		is_template;

		return have_createdb_privilege() && OidIsValid(owner) && is_member_of_role(role, owner) &&
			database_row(database_oid, &tablespace, &is_template) &&
			(is_template || pg_database_ownercheck(database_oid, role));
	}
	return false;
}

/*
 * Resumes the notifier a statement of this backend paused, if any, and wakes
 * the launcher, which starts it again at once.
 */
static void
resume_paused_notifier(void)
{
	if (paused_slot != NULL)
	{
		resume_notifier(paused_slot);
		paused_slot = NULL;
		wake_launcher();
	}
}

/*
 * At the exit of a backend that once paused a notifier: a backend terminated
 * (or ended by FATAL) while its statement had the notifier paused must not
 * leave it stopped for good.  Registered with before_shmem_exit at the first
 * pause and never cancelled: PostgreSQL may register callbacks of its own
 * meanwhile (two-phase commit's, a temporary schema's), so only the latest
 * entry could be cancelled.
 */
static void
resume_paused_notifier_at_exit(int code, Datum arg)
{
	resume_paused_notifier();
}

/*
 * Runs a utility statement by the next hook, or PostgreSQL's own code, with
 * the notifier of pause_database paused meanwhile (none when InvalidOid).
 */
static void
run_utility(Oid pause_database, PlannedStmt *planned, const char *query_string,
			bool read_only_tree, ProcessUtilityContext context, ParamListInfo params,
			QueryEnvironment *query_environment, DestReceiver *dest,
			QueryCompletion *completion)
{
	if (OidIsValid(pause_database))
	{
		PG_TRY();
		{
			pause_notifier(pause_database);
			run_utility(InvalidOid, planned, query_string, read_only_tree, context,
						params, query_environment, dest, completion);
		}
		PG_FINALLY();
		{
			resume_paused_notifier();
		}
		PG_END_TRY();
	}
	else if (previous_process_utility_hook)
		previous_process_utility_hook(planned, query_string, read_only_tree, context,
									  params, query_environment, dest, completion);
	else
		standard_ProcessUtility(planned, query_string, read_only_tree, context,
								params, query_environment, dest, completion);
}

/*
 * Stops the notifier of the database a statement needs without other
 * connections, for as long as the statement runs, when the statement may
 * need it so (never in a transaction block, where such a statement fails,
 * except a rename, which may run there): it resumes when the statement ends,
 * by an error too, or when the backend exits.  Otherwise runs the statement
 * as is, with nothing around it.  The launcher looks again when the statement's transaction ends.
 * Around the statement: the owners of projections and subscriptions
 * (owners.c).
 */
static void
notifier_process_utility(PlannedStmt *planned, const char *query_string, bool read_only_tree,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *query_environment, DestReceiver *dest,
						 QueryCompletion *completion)
{
	Node	   *statement = planned->utilityStmt;
	const char *database_name = database_needed_alone(statement);
	Oid			database_oid = database_name ? get_database_oid(database_name, true) : InvalidOid;
	bool		may_run_here = IsA(statement, RenameStmt) ||
		(context == PROCESS_UTILITY_TOPLEVEL && !IsTransactionBlock());
	bool		needs_alone = OidIsValid(database_oid) && may_run_here &&
		may_need_database_alone(statement, database_oid);
	Oid		   *dropped_roles = roles_to_drop(statement);

	run_utility(needs_alone ? database_oid : InvalidOid, planned, query_string, read_only_tree,
				context, params, query_environment, dest, completion);
	after_role_statement(statement, dropped_roles);
	/*
	 * When the statement's transaction ends, the launcher looks again: a
	 * database may be new, or a prepared transaction that changed an
	 * extension may have ended.
	 */
	if (database_name ||
		(IsA(statement, TransactionStmt) &&
		 (((TransactionStmt *) statement)->kind == TRANS_STMT_COMMIT_PREPARED ||
		  ((TransactionStmt *) statement)->kind == TRANS_STMT_ROLLBACK_PREPARED)))
		at_transaction_end(WAKE_LAUNCHER_AT_END);
}

/*
 * Called by _PG_init while shared_preload_libraries is processed: reserves
 * the shared memory, installs the hooks and registers the launcher.
 */
void
notifier_preload_init(void)
{
	BackgroundWorker worker;

	previous_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = notifier_shmem_request;
	previous_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = notifier_shmem_startup;
	previous_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = notifier_process_utility;
	previous_object_access_hook = object_access_hook;
	object_access_hook = notifier_object_access;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "eventsource");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "eventsource_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "eventsource launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "eventsource launcher");
	RegisterBackgroundWorker(&worker);
}

/* ------------------------------------------------------------------------
 * Waking the notifier after an append commits, and the launcher after a
 * change to the databases or their extensions
 * ------------------------------------------------------------------------
 */

/*
 * Tells the launcher that this database's extension was dropped, so that it
 * stops the database's notifier, and that an extension was created or
 * altered here, so that it looks at the database again if it found no
 * eventsource here before.
 */
static void
report_extension_change(Oid database_oid, bool changed, bool dropped)
{
	SpinLockAcquire(&notifier_shared->mutex);
	for (int i = 0; dropped && i < notifier_shared->slot_count; i++)
		if (notifier_shared->slots[i].database_oid == database_oid)
			notifier_shared->slots[i].extension_dropped = true;
	if (changed)
	{
		bool		requested = false;

		for (int i = 0; i < notifier_shared->look_request_count; i++)
			requested |= notifier_shared->look_requests[i] == database_oid;
		if (!requested && notifier_shared->look_request_count < LOOK_REQUESTS)
			notifier_shared->look_requests[notifier_shared->look_request_count++] = database_oid;
		else if (!requested)
			notifier_shared->look_requests_lost = true;
	}
	SpinLockRelease(&notifier_shared->mutex);
}

/*
 * Records a prepared transaction of this database that changed an extension,
 * unless it is recorded already; false when there is no room.
 */
static bool
record_prepared_change(TransactionId transaction_id, bool changed, bool dropped)
{
	bool		recorded = false;

	SpinLockAcquire(&notifier_shared->mutex);
	for (int i = 0; i < notifier_shared->prepared_change_count && !recorded; i++)
		recorded = prepared_changes[i].transaction_id == transaction_id;
	if (!recorded && notifier_shared->prepared_change_count < prepared_change_capacity())
	{
		PreparedChange *change = &prepared_changes[notifier_shared->prepared_change_count++];

		change->database_oid = MyDatabaseId;
		change->transaction_id = transaction_id;
		change->extension_changed = changed;
		change->extension_dropped = dropped;
		recorded = true;
	}
	SpinLockRelease(&notifier_shared->mutex);
	return recorded;
}

static bool take_resolved_prepared_changes(void);

/*
 * Has the launcher follow a prepared transaction of this database: what it
 * did to extensions counts once it commits, which may be in another session,
 * or never; the launcher reports it then (take_resolved_prepared_changes).
 * When the record is full of transactions resolved since the launcher's last
 * cycle (a flood of them), this backend takes those first.
 */
static void
follow_prepared_change(TransactionId transaction_id, bool changed, bool dropped)
{
	if (record_prepared_change(transaction_id, changed, dropped))
		return;
	if (take_resolved_prepared_changes())
		wake_launcher();
	/* Those left are prepared or preparing: the record has room for all of them. */
	if (!record_prepared_change(transaction_id, changed, dropped))
		elog(ERROR, "no room to follow prepared transaction %u", transaction_id);
}

/* At PREPARE TRANSACTION of a transaction that changed an extension. */
static void
report_prepared_extension_change(bool changed, bool dropped)
{
	TransactionId transaction_id = GetTopTransactionIdIfAny();

	/* Without a transaction ID, it changed nothing in the catalogs. */
	if (TransactionIdIsValid(transaction_id))
		follow_prepared_change(transaction_id, changed, dropped);
}

static void
act_at_transaction_end(XactEvent event, void *arg)
{
	bool		commit = event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT;
	bool		abort = event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT;
	int			actions = actions_at_transaction_end;

	/* A prepared transaction has ended in this session: its actions are the launcher's. */
	if (event == XACT_EVENT_PRE_PREPARE)
	{
		actions_at_transaction_end = 0;
		if (actions & (EXTENSION_CHANGED_AT_COMMIT | EXTENSION_DROPPED_AT_COMMIT))
			report_prepared_extension_change((actions & EXTENSION_CHANGED_AT_COMMIT) != 0,
											 (actions & EXTENSION_DROPPED_AT_COMMIT) != 0);
		return;
	}
	if (!commit && !abort)
		return;
	actions_at_transaction_end = 0;
	if (commit && (actions & WAKE_NOTIFIER_AT_COMMIT))
	{
		for (int i = 0; i < notifier_shared->slot_count; i++)
		{
			NotifierSlot *slot = &notifier_shared->slots[i];

			/* Unlocked reads: at worst a spurious or a missed wake-up of a notifier starting up. */
			if (slot->database_oid == MyDatabaseId && slot->pid != 0)
			{
				slot->events_committed = true;
				set_latch_of(slot->procno);
			}
		}
	}
	if (commit && (actions & (EXTENSION_CHANGED_AT_COMMIT | EXTENSION_DROPPED_AT_COMMIT)))
	{
		report_extension_change(MyDatabaseId, (actions & EXTENSION_CHANGED_AT_COMMIT) != 0,
								(actions & EXTENSION_DROPPED_AT_COMMIT) != 0);
		wake_launcher();
	}
	else if (actions & WAKE_LAUNCHER_AT_END)
		wake_launcher();
}

/*
 * Asks for actions (WAKE_NOTIFIER_AT_COMMIT and the others above) when this
 * transaction ends: those named "at commit" only if it commits, when what it
 * did is visible to every transaction that starts after.
 */
static void
at_transaction_end(int actions)
{
	if (!transaction_callback_registered)
	{
		RegisterXactCallback(act_at_transaction_end, NULL);
		transaction_callback_registered = true;
	}
	actions_at_transaction_end |= actions;
}

/*
 * Sees every extension created, altered or dropped in this backend, however
 * (CREATE EXTENSION, also through CASCADE or a restore, ALTER EXTENSION,
 * DROP EXTENSION, DROP SCHEMA ... CASCADE, DROP OWNED), and asks for the
 * launcher to be told if the transaction commits.  Any extension counts for
 * a creation (its row is not visible yet to look its name up): at worst the
 * launcher looks once more at a database without eventsource.
 */
static void
notifier_object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void *arg)
{
	if (previous_object_access_hook)
		previous_object_access_hook(access, class_id, object_id, sub_id, arg);
	if (class_id != ExtensionRelationId)
		return;
	if (access == OAT_POST_CREATE || access == OAT_POST_ALTER)
		at_transaction_end(EXTENSION_CHANGED_AT_COMMIT);
	else if (access == OAT_DROP && object_id == get_extension_oid("eventsource", true))
		at_transaction_end(EXTENSION_DROPPED_AT_COMMIT);
}

/*
 * The list of databases to serve and the name of the setting it comes from:
 * eventsource.worker_databases, or its old name eventsource.notify_databases
 * while the new one is left at * (or empty) and the old one is set (0.8.0
 * reads both; 0.9.0 drops the old name).
 */
static const char *
databases_setting(const char **setting_name)
{
	const char *worker_databases = eventsource_worker_databases ? eventsource_worker_databases : "";
	const char *notify_databases = eventsource_notify_databases ? eventsource_notify_databases : "";

	if ((worker_databases[0] == '\0' || strcmp(worker_databases, "*") == 0) && notify_databases[0] != '\0')
	{
		*setting_name = "eventsource.notify_databases";
		return notify_databases;
	}
	*setting_name = "eventsource.worker_databases";
	return worker_databases;
}

/*
 * Which databases the worker's jobs and eventsource.worker_databases have
 * the worker serve: returns true for every database (the list is empty or
 * has *), else false with the databases listed in *names (none when every
 * job is off or the list cannot be read).
 */
static bool
databases_to_serve(List **names)
{
	const char *setting_name;
	char	   *list_copy;
	ListCell   *cell;

	*names = NIL;
	if (!any_worker_job_on())
		return false;
	list_copy = pstrdup(databases_setting(&setting_name));
	if (!SplitGUCList(list_copy, ',', names))
	{
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in %s", setting_name)));
		*names = NIL;
		return false;
	}
	if (*names == NIL)
		return true;
	foreach(cell, *names)
		if (strcmp(lfirst(cell), "*") == 0)
			return true;
	return false;
}

/*
 * Whether the notifier serves this database once the extension is installed
 * there, by databases_to_serve's answer: every database that accepts
 * connections and is not a template (a worker there would make every CREATE
 * DATABASE from it fail), or those listed that accept connections.
 */
static bool
database_to_serve(Form_pg_database database, bool every_database, List *names)
{
	ListCell   *cell;

	if (!database->datallowconn || database_is_invalid_form(database))
		return false;
	if (every_database)
		return !database->datistemplate;
	foreach(cell, names)
		if (strcmp(lfirst(cell), NameStr(database->datname)) == 0)
			return true;
	return false;
}

/*
 * Whether a notifier serves this database (and so runs its async
 * projections), by the settings, once the extension is installed.
 */
bool
notifier_serves_this_database(void)
{
	List	   *names;
	bool		every_database;
	HeapTuple	tuple;
	bool		serves;

	if (notifier_shared == NULL)
		return false;
	every_database = databases_to_serve(&names);
	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
	serves = database_to_serve((Form_pg_database) GETSTRUCT(tuple), every_database, names);
	ReleaseSysCache(tuple);
	return serves;
}

/*
 * Called by the append functions: the notifier of this database is woken when
 * the transaction commits.  Without the preloaded library it does nothing.
 */
void
notifier_wake_at_commit(void)
{
	if (notifier_shared != NULL)
		at_transaction_end(WAKE_NOTIFIER_AT_COMMIT);
}

/* ------------------------------------------------------------------------
 * The launcher
 * ------------------------------------------------------------------------
 */

/* The launcher's own view of each slot's worker (arrays of slot_count). */
static BackgroundWorkerHandle **worker_handles;
static TimestampTz *worker_started_at;
/* A failure to start a worker is logged once, until one starts. */
static bool worker_start_failure_logged = false;

/* What the launcher knows of a database the settings have it serve. */
typedef struct KnownDatabase
{
	Oid			database_oid;	/* the hash key */
	char		database_name[NAMEDATALEN];
	bool		to_serve;		/* in the latest read of pg_database */
	bool		without_extension;	/* its worker found none: not looked at again */
	bool		look_requested; /* an extension changed there since its worker started */
	bool		limit_logged;	/* it waits for a slot, and that was logged */
	int			slot_index;		/* its slot, -1 when none */
	Oid			owner;			/* datdba */
	bool		owner_is_superuser;
	bool		owner_limit_logged; /* it waits for eventsource.max_databases_per_owner, logged */
	TimestampTz next_look_at;	/* no look starts there before */
	int			look_backoff_ms;	/* after a stopped look: LOOK_TIME_LIMIT_MS, doubling */
	bool		look_stopped;	/* the launcher stopped its look (LOOK_TIME_LIMIT_MS) */
} KnownDatabase;

/* The databases to serve, by OID: what the launcher knows of each. */
static HTAB *known_databases = NULL;

/* When the launcher goes through its databases next, at the latest. */
static TimestampTz launcher_next_cycle_at;

static void
launcher_cycle_by(TimestampTz when)
{
	if (when < launcher_next_cycle_at)
		launcher_next_cycle_at = when;
}

static void
clear_launcher_pid(int code, Datum arg)
{
	SpinLockAcquire(&notifier_shared->mutex);
	notifier_shared->launcher_pid = 0;
	SpinLockRelease(&notifier_shared->mutex);
}

static pid_t
slot_pid(int slot_index)
{
	pid_t		pid;

	SpinLockAcquire(&notifier_shared->mutex);
	pid = notifier_shared->slots[slot_index].pid;
	SpinLockRelease(&notifier_shared->mutex);
	return pid;
}

/*
 * Whether the slot's worker runs (or is about to).  A worker that an earlier
 * launcher started, which this one has no handle for, runs while it has its
 * pid in the slot.
 */
static bool
worker_running(int slot_index)
{
	pid_t		pid;

	if (worker_handles[slot_index] == NULL)
		return slot_pid(slot_index) != 0;
	switch (GetBackgroundWorkerPid(worker_handles[slot_index], &pid))
	{
		case BGWH_STARTED:
		case BGWH_NOT_YET_STARTED:
			return true;
		default:
			pfree(worker_handles[slot_index]);
			worker_handles[slot_index] = NULL;
			return false;
	}
}

static void
stop_worker(int slot_index)
{
	pid_t		pid;

	if (worker_handles[slot_index] != NULL)
		TerminateBackgroundWorker(worker_handles[slot_index]);
	else if ((pid = slot_pid(slot_index)) != 0)
		kill(pid, SIGTERM);
}

static void
start_worker(int slot_index, KnownDatabase *known)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	MemoryContext old_context;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;	/* the launcher restarts it */
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "eventsource");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "eventsource_notifier_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "eventsource notifier for database %s",
			 known->database_name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "eventsource notifier");
	worker.bgw_main_arg = Int32GetDatum(slot_index);
	worker.bgw_notify_pid = MyProcPid;

	SpinLockAcquire(&notifier_shared->mutex);
	notifier_shared->slots[slot_index].restart_at_once = false;
	SpinLockRelease(&notifier_shared->mutex);
	/* An extension changed before this worker looks: no need to look again after it. */
	known->look_requested = false;

	old_context = MemoryContextSwitchTo(TopMemoryContext);
	if (RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		worker_handles[slot_index] = handle;
		worker_started_at[slot_index] = GetCurrentTimestamp();
		worker_start_failure_logged = false;
	}
	else if (!worker_start_failure_logged)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the eventsource notifier for database \"%s\"",
						known->database_name),
				 errdetail("All background worker slots are in use; each database the notifier serves takes one."),
				 errhint("Raise max_worker_processes (now %d) and restart the server.",
						 max_worker_processes)));
		worker_start_failure_logged = true;
	}
	MemoryContextSwitchTo(old_context);
}

/* Frees a slot whose worker has stopped. */
static void
free_slot(int slot_index)
{
	SpinLockAcquire(&notifier_shared->mutex);
	notifier_shared->slots[slot_index].database_oid = InvalidOid;
	SpinLockRelease(&notifier_shared->mutex);
}

/*
 * Reads pg_database into known_databases: adds the databases to serve that
 * are new, updates the names (a rename), and forgets those no longer to
 * serve (dropped, or by a change of the settings).  The launcher is
 * connected to no database, so it scans the shared catalog as the autovacuum
 * launcher does (no index, no relation cache of pg_class).
 */
static void
read_databases_to_serve(void)
{
	HASH_SEQ_STATUS status;
	KnownDatabase *known;
	List	   *names;
	bool		every_database;
	Relation	pg_database;
	TableScanDesc scan;
	HeapTuple	tuple;

	hash_seq_init(&status, known_databases);
	while ((known = hash_seq_search(&status)) != NULL)
	{
		known->to_serve = false;
		known->slot_index = -1;
	}

	StartTransactionCommand();
	every_database = databases_to_serve(&names);
	pg_database = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(pg_database, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database database = (Form_pg_database) GETSTRUCT(tuple);
		bool		found;

		if (!database_to_serve(database, every_database, names))
			continue;
		known = hash_search(known_databases, &database->oid, HASH_ENTER, &found);
		if (!found)
		{
			known->without_extension = false;
			known->look_requested = false;
			known->limit_logged = false;
			known->slot_index = -1;
			known->owner_limit_logged = false;
			known->next_look_at = 0;
			known->look_backoff_ms = 0;
			known->look_stopped = false;
		}
		strlcpy(known->database_name, NameStr(database->datname), NAMEDATALEN);
		known->owner = database->datdba;
		known->owner_is_superuser = superuser_arg(database->datdba);
		known->to_serve = true;
	}
	table_endscan(scan);
	table_close(pg_database, AccessShareLock);
	CommitTransactionCommand();

	hash_seq_init(&status, known_databases);
	while ((known = hash_seq_search(&status)) != NULL)
		if (!known->to_serve)
			hash_search(known_databases, &known->database_oid, HASH_REMOVE, NULL);
}

/*
 * Reports what each prepared transaction that changed an extension did, once
 * it has committed (COMMIT PREPARED, in any session), and forgets those that
 * ended: a prepared transaction stays in progress until it is resolved.
 * Whether it reported any.  The launcher calls it at each cycle, and a
 * backend whose change finds the record full: those resolved are forgotten
 * by their transaction ID, as another process may have forgotten some
 * meanwhile and backends added others.
 */
static bool
take_resolved_prepared_changes(void)
{
	PreparedChange *changes;
	bool	   *resolved;
	int			count;
	int			kept = 0;
	bool		reported = false;

	SpinLockAcquire(&notifier_shared->mutex);
	count = notifier_shared->prepared_change_count;
	SpinLockRelease(&notifier_shared->mutex);
	if (count == 0)
		return false;
	changes = palloc(count * sizeof(PreparedChange));
	resolved = palloc(count * sizeof(bool));
	SpinLockAcquire(&notifier_shared->mutex);
	count = Min(count, notifier_shared->prepared_change_count);
	memcpy(changes, prepared_changes, count * sizeof(PreparedChange));
	SpinLockRelease(&notifier_shared->mutex);

	for (int i = 0; i < count; i++)
	{
		resolved[i] = !TransactionIdIsInProgress(changes[i].transaction_id);
		if (resolved[i] && TransactionIdDidCommit(changes[i].transaction_id))
		{
			report_extension_change(changes[i].database_oid, changes[i].extension_changed,
									changes[i].extension_dropped);
			reported = true;
		}
	}

	SpinLockAcquire(&notifier_shared->mutex);
	for (int i = 0; i < notifier_shared->prepared_change_count; i++)
	{
		bool		forget = false;

		for (int j = 0; j < count && !forget; j++)
			forget = resolved[j] && changes[j].transaction_id == prepared_changes[i].transaction_id;
		if (!forget)
			prepared_changes[kept++] = prepared_changes[i];
	}
	notifier_shared->prepared_change_count = kept;
	SpinLockRelease(&notifier_shared->mutex);
	pfree(changes);
	pfree(resolved);
	/* Those still prepared are looked at again, at the launcher's next cycle at the latest. */
	return reported;
}

/*
 * Takes the databases in which backends created or altered an extension
 * since the last time: the launcher looks at each again (all of them when
 * some requests were lost).
 */
static void
take_look_requests(void)
{
	Oid			requests[LOOK_REQUESTS];
	int			request_count;
	bool		requests_lost;
	KnownDatabase *known;

	SpinLockAcquire(&notifier_shared->mutex);
	request_count = notifier_shared->look_request_count;
	memcpy(requests, notifier_shared->look_requests, request_count * sizeof(Oid));
	requests_lost = notifier_shared->look_requests_lost;
	notifier_shared->look_request_count = 0;
	notifier_shared->look_requests_lost = false;
	SpinLockRelease(&notifier_shared->mutex);

	if (requests_lost)
	{
		HASH_SEQ_STATUS status;

		hash_seq_init(&status, known_databases);
		while ((known = hash_seq_search(&status)) != NULL)
		{
			known->look_requested = true;
			known->without_extension = false;
		}
	}
	for (int i = 0; i < request_count; i++)
		if ((known = hash_search(known_databases, &requests[i], HASH_FIND, NULL)) != NULL)
		{
			known->look_requested = true;
			known->without_extension = false;
		}
}

/*
 * Stops a look that did not find out within LOOK_TIME_LIMIT_MS: its
 * connection waits, most likely for a lock that a session holds on the
 * database (a rename in a transaction left open).  The database is looked
 * at again after a delay that doubles each time, up to LOOK_BACKOFF_MAX_MS.
 */
static void
stop_look(int slot_index, KnownDatabase *known, TimestampTz now)
{
	known->look_backoff_ms = known->look_backoff_ms == 0 ? LOOK_TIME_LIMIT_MS :
		Min(known->look_backoff_ms * 2, LOOK_BACKOFF_MAX_MS);
	known->next_look_at = TimestampTzPlusMilliseconds(now, known->look_backoff_ms);
	known->look_stopped = true;
	stop_worker(slot_index);
	ereport(LOG,
			(errmsg("eventsource launcher stopped its look at database \"%s\" after %d s",
					known->database_name, LOOK_TIME_LIMIT_MS / 1000),
			 errdetail("The worker that looks whether the extension is installed there could not connect and read pg_extension in time; a session may hold a lock on the database. The launcher looks again in %d s.",
					   known->look_backoff_ms / 1000)));
}

/*
 * Keeps the workers of the slots in use running: restarts one that stopped
 * (after RESTART_DELAY_MS unless a pause stopped it), unless its database
 * is paused; stops those of databases no longer to serve and of databases
 * whose extension was dropped, and frees their slots once they have
 * stopped, as those of workers that found no extension.  Returns how many
 * slots serve a database in which the extension was found.
 */
static int
tend_slots(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			serving = 0;

	for (int i = 0; i < notifier_shared->slot_count; i++)
	{
		NotifierSlot *slot = &notifier_shared->slots[i];
		NotifierSlot state;
		KnownDatabase *known;
		bool		running;

		SpinLockAcquire(&notifier_shared->mutex);
		state = *slot;
		SpinLockRelease(&notifier_shared->mutex);
		if (!OidIsValid(state.database_oid))
			continue;
		known = hash_search(known_databases, &state.database_oid, HASH_FIND, NULL);
		running = worker_running(i);
		if (known != NULL)
			known->slot_index = i;
		if (known == NULL || state.extension_dropped || state.installation == INSTALLATION_ABSENT)
		{
			/* A worker that found no extension is exiting by itself. */
			if (running && state.installation != INSTALLATION_ABSENT)
				stop_worker(i);
			if (running)
				continue;
			free_slot(i);

			/*
			 * No eventsource there, unless an extension was created since the
			 * worker looked.  After a drop, a fresh worker looks: the drop may
			 * have been rolled back to a savepoint, or followed by a CREATE
			 * EXTENSION, and the new log starts without a position.
			 */
			if (known != NULL)
			{
				known->slot_index = -1;
				known->without_extension = state.installation == INSTALLATION_ABSENT &&
					!state.extension_dropped && !known->look_requested;
			}
			continue;
		}

		if (state.installation != INSTALLATION_NOT_LOOKED_AT)
		{
			/*
			 * It found out, maybe just as it was stopped at the time limit:
			 * the next look there is bounded again.
			 */
			known->look_backoff_ms = 0;
			known->look_stopped = false;
		}
		else if (known->look_stopped)
		{
			/* Stopped at LOOK_TIME_LIMIT_MS: the slot is free once it has exited. */
			if (running)
				continue;
			free_slot(i);
			known->slot_index = -1;
			known->look_stopped = false;
			continue;
		}
		else if (running && worker_started_at[i] != 0)
		{
			TimestampTz deadline = TimestampTzPlusMilliseconds(worker_started_at[i], LOOK_TIME_LIMIT_MS);

			if (now >= deadline)
			{
				stop_look(i, known, now);
				continue;
			}
			launcher_cycle_by(deadline);
		}

		known->limit_logged = false;
		serving += state.installation == INSTALLATION_FOUND;
		if (strcmp(state.database_name, known->database_name) != 0)
		{
			SpinLockAcquire(&notifier_shared->mutex);
			strlcpy(slot->database_name, known->database_name, NAMEDATALEN);
			SpinLockRelease(&notifier_shared->mutex);
		}
		if (!state.paused && !running &&
			(state.restart_at_once ||
			 TimestampDifferenceExceeds(worker_started_at[i], now, RESTART_DELAY_MS)))
			start_worker(i, known);
	}
	return serving;
}

/*
 * Whether the owner of a database may have one more served (or looked at):
 * a role other than a superuser has at most
 * eventsource.max_databases_per_owner at a time, so that copying a served
 * database, which its owner may do as often as it likes with CREATEDB,
 * cannot take every background worker.  A database over the limit waits,
 * with a WARNING once.
 */
static bool
within_owner_limit(KnownDatabase *known)
{
	int			owned = 0;

	if (known->owner_is_superuser || eventsource_max_databases_per_owner < 0)
		return true;
	for (int i = 0; i < notifier_shared->slot_count; i++)
	{
		Oid			database_oid = notifier_shared->slots[i].database_oid;
		KnownDatabase *other;

		if (OidIsValid(database_oid) &&
			(other = hash_search(known_databases, &database_oid, HASH_FIND, NULL)) != NULL)
			owned += other->owner == known->owner;
	}
	if (owned < eventsource_max_databases_per_owner)
	{
		known->owner_limit_logged = false;
		return true;
	}
	if (!known->owner_limit_logged)
	{
		char	   *owner_name;

		StartTransactionCommand();
		owner_name = GetUserNameFromId(known->owner, true);
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("eventsource notifier does not serve database \"%s\" for now",
						known->database_name),
				 errdetail("Its owner, role \"%s\", is not a superuser, and the notifier serves %d of its databases, the limit of eventsource.max_databases_per_owner.",
						   owner_name ? owner_name : "?", owned),
				 errhint("Raise eventsource.max_databases_per_owner (-1: no limit), or drop some of the role's databases.")));
		CommitTransactionCommand();
		known->owner_limit_logged = true;
	}
	return false;
}

/*
 * Starts a worker in each database to serve that no worker has looked at
 * yet, or in which an extension changed since (those first), LOOKS_AT_ONCE
 * at a time: one that finds the extension serves the database, one that
 * does not exits.  A database for which no slot is free waits, with a
 * WARNING once when every slot serves a database.
 */
static void
start_looks(int serving)
{
	int			looking = 0;
	int			looking_again = 0;
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < notifier_shared->slot_count; i++)
	{
		NotifierSlot *slot = &notifier_shared->slots[i];
		KnownDatabase *known;

		/* The launcher alone sets database_oid; the worker sets installation. */
		SpinLockAcquire(&notifier_shared->mutex);
		if (!OidIsValid(slot->database_oid) || slot->installation != INSTALLATION_NOT_LOOKED_AT)
		{
			SpinLockRelease(&notifier_shared->mutex);
			continue;
		}
		SpinLockRelease(&notifier_shared->mutex);
		looking++;
		known = hash_search(known_databases, &slot->database_oid, HASH_FIND, NULL);
		looking_again += known != NULL && known->look_backoff_ms > 0;
	}

	for (int requested_first = 1; requested_first >= 0; requested_first--)
	{
		HASH_SEQ_STATUS status;
		KnownDatabase *known;

		hash_seq_init(&status, known_databases);
		while ((known = hash_seq_search(&status)) != NULL)
		{
			int			free_index = -1;

			if (known->slot_index >= 0 || known->without_extension ||
				known->look_requested != (requested_first == 1))
				continue;
			if (looking >= LOOKS_AT_ONCE)
			{
				hash_seq_term(&status);
				return;
			}
			if (known->next_look_at > now)
			{
				launcher_cycle_by(known->next_look_at);
				continue;
			}
			/* A database whose looks were stopped does not take every look. */
			if (known->look_backoff_ms > 0 && looking_again >= LOOKS_AT_ONCE - 1)
				continue;
			if (!within_owner_limit(known))
				continue;
			for (int i = 0; i < notifier_shared->slot_count && free_index < 0; i++)
				if (!OidIsValid(notifier_shared->slots[i].database_oid) && !worker_running(i))
					free_index = i;
			if (free_index < 0)
			{
				if (serving < notifier_shared->slot_count || known->limit_logged)
					continue;
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("eventsource notifier cannot serve database \"%s\"",
								known->database_name),
						 errdetail("All %d slots of eventsource.max_databases serve other databases, so the notifier cannot look whether the extension is installed there.",
								   notifier_shared->slot_count),
						 errhint("Raise eventsource.max_databases (and max_worker_processes) and restart the server, or list the databases to serve in eventsource.worker_databases.")));
				known->limit_logged = true;
				continue;
			}

			SpinLockAcquire(&notifier_shared->mutex);
			memset(&notifier_shared->slots[free_index], 0, sizeof(NotifierSlot));
			notifier_shared->slots[free_index].database_oid = known->database_oid;
			strlcpy(notifier_shared->slots[free_index].database_name, known->database_name, NAMEDATALEN);
			SpinLockRelease(&notifier_shared->mutex);
			worker_started_at[free_index] = 0;
			known->slot_index = free_index;
			known->limit_logged = false;
			known->next_look_at = TimestampTzPlusMilliseconds(now, LOOK_INTERVAL_MS);
			start_worker(free_index, known);
			looking++;
			looking_again += known->look_backoff_ms > 0;
		}
	}
}

/*
 * Makes the running notifiers match the settings and the databases: serves
 * each database to serve in which the extension is installed, and stops the
 * others.
 */
static void
synchronize_workers(void)
{
	read_databases_to_serve();
	take_resolved_prepared_changes();
	take_look_requests();
	start_looks(tend_slots());
}

/*
 * Entry point of the launcher: connected to no database, it reads the
 * shared catalog pg_database to find the databases to serve.
 */
void
eventsource_launcher_main(Datum main_arg)
{
	HASHCTL		hash_control;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	worker_handles = MemoryContextAllocZero(TopMemoryContext,
											notifier_shared->slot_count * sizeof(BackgroundWorkerHandle *));
	worker_started_at = MemoryContextAllocZero(TopMemoryContext,
											   notifier_shared->slot_count * sizeof(TimestampTz));
	hash_control.keysize = sizeof(Oid);
	hash_control.entrysize = sizeof(KnownDatabase);
	known_databases = hash_create("eventsource launcher databases", 64, &hash_control,
								  HASH_ELEM | HASH_BLOBS);

	SpinLockAcquire(&notifier_shared->mutex);
	notifier_shared->launcher_pid = MyProcPid;
	notifier_shared->launcher_procno = MyProc->pgprocno;
	/* The first launcher since the server started: it follows those prepared from now on. */
	if (!FullTransactionIdIsValid(notifier_shared->prepared_followed_since))
		notifier_shared->prepared_followed_since = ReadNextFullTransactionId();
	SpinLockRelease(&notifier_shared->mutex);
	before_shmem_exit(clear_launcher_pid, (Datum) 0);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		launcher_next_cycle_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LAUNCHER_CYCLE_MS);
		synchronize_workers();
		/* Woken by worker starts and exits (bgw_notify_pid), reloads, resumed databases, extension changes and looks. */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), launcher_next_cycle_at), 1),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ------------------------------------------------------------------------
 * A database's notifier
 * ------------------------------------------------------------------------
 */

static NotifierSlot *my_slot = NULL;

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
	my_slot->pid = 0;
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

/*
 * Has the launcher follow this database's transactions prepared before it
 * followed those prepared (before the server restarted): one may have
 * created the extension, and its COMMIT PREPARED must have the database
 * looked at again.  Reads pg_prepared_xacts of pg_catalog, with no statement
 * timeout (the database's setting applies to this worker's connection).
 */
static void
follow_earlier_prepared_transactions(void)
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
			follow_prepared_change(transaction_id, true, false);
	}
	SPI_finish();
	PopActiveSnapshot();
}

/*
 * Tells the launcher whether the extension is installed in this database,
 * and exits quietly when it is not: the launcher then starts no worker here
 * again until an extension is created or altered here, or a transaction
 * prepared before the server restarted commits
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
	paused = my_slot->paused;
	my_slot->restart_at_once |= paused;
	SpinLockRelease(&notifier_shared->mutex);
	if (paused)
		proc_exit(0);

	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid("eventsource", true));
	if (!installed)
		follow_earlier_prepared_transactions();
	CommitTransactionCommand();

	SpinLockAcquire(&notifier_shared->mutex);
	my_slot->installation = installed ? INSTALLATION_FOUND : INSTALLATION_ABSENT;
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
	my_slot->events_committed = false;
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
			my_slot->notifications++;
			my_slot->has_notified = true;
			my_slot->last_checkpoint = newest;
			my_slot->last_notified_at = GetCurrentTimestamp();
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

static bool
notifications_on(void)
{
	return eventsource_notify;
}

static bool
async_projections_on(void)
{
	return eventsource_async_projections;
}

static bool
scavenge_on(void)
{
	return eventsource_scavenge_interval > 0;
}

/*
 * A job of the worker.  run does a slice of it, in transactions of its own,
 * until the deadline it is given (eventsource.worker_job_slice from its
 * start) or, sooner, until the notifications have work
 * (worker_slice_ends), and returns the milliseconds until it has work again
 * (0: at once; -1: none, until new events wake the worker or
 * IDLE_TIMEOUT_MS).
 */
typedef struct WorkerJob
{
	const char *name;			/* for the server log */
	bool		(*on) (void);	/* its setting */
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
	{"notifications", notifications_on, notify_newly_visible, true, 0, 0, 0},
	{"async projections", async_projections_on, run_async_projections, true, 0, 0, 0},
	{"scavenge", scavenge_on, scavenge_every_interval, false, 0, 0, 0},
};

#define WORKER_JOB_COUNT ((int) lengthof(worker_jobs))

/* Whether any job of the workers is on: the launcher starts them only then. */
static bool
any_worker_job_on(void)
{
	for (int i = 0; i < WORKER_JOB_COUNT; i++)
		if (worker_jobs[i].on())
			return true;
	return false;
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
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), eventsource_worker_job_slice);
	volatile long wait_ms = 0;

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

/* When the job is ready to run: DT_NOEND while it is off. */
static TimestampTz
job_ready_at(const WorkerJob *job)
{
	return Max(job->ready_at, job->resting_until);
}

static bool
job_ready(const WorkerJob *job)
{
	return job_ready_at(job) <= GetCurrentTimestamp();
}

/*
 * Whether the notifications have work now: committed events may wait to be
 * announced (an append's commit said so), or the time to look again has
 * come (events held back, or written by other means).  Not while the job is
 * off or rests after a failure.
 */
static bool
notifications_due(void)
{
	WorkerJob  *notifications = &worker_jobs[0];

	if (!notifications->on() || notifications->resting_until > GetCurrentTimestamp())
		return false;
	pg_memory_barrier();
	return ((volatile NotifierSlot *) my_slot)->events_committed || job_ready(notifications);
}

/*
 * Whether the slice of a job given deadline ends now: at the deadline, or
 * before it as soon as the notifications have work.  The jobs look after
 * each step of their work that they can commit alone (a projection's event,
 * a scavenge batch), having done one at least, so that they go on however
 * often appends come.
 */
bool
worker_slice_ends(TimestampTz deadline)
{
	return GetCurrentTimestamp() >= deadline || notifications_due();
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

	my_slot = &notifier_shared->slots[DatumGetInt32(main_arg)];

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(my_slot->database_oid, InvalidOid, 0);

	SpinLockAcquire(&notifier_shared->mutex);
	my_slot->pid = MyProcPid;
	my_slot->procno = MyProc->pgprocno;
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
	has_position = my_slot->has_notified;
	position = my_slot->last_checkpoint;
	SpinLockRelease(&notifier_shared->mutex);

	/* The first scavenge pass comes one interval after the start. */
	scavenge_pass_ended_at = GetCurrentTimestamp();
	worker_round_context = AllocSetContextCreate(TopMemoryContext, "eventsource worker round",
										  ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(worker_round_context);

	ereport(LOG,
			(errmsg("eventsource notifier started for database \"%s\"", my_slot->database_name)));

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
		my_slot->wakeups++;
		SpinLockRelease(&notifier_shared->mutex);

		notifications = my_slot->notifications;
		run_round();

		/*
		 * After a round that notified, with no job ready at once, let
		 * commits gather (COALESCE_MS).
		 */
		if (my_slot->notifications != notifications && until_next_job() != 0)
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
