/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher of eventsource's background workers, connected to no
 *	  database, which keeps one notifier (notifier.c) running for each
 *	  database to serve in which the extension is installed; and the
 *	  utility hook that stops a database's notifier while a statement needs
 *	  the database without connections.
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
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/tablespace.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "eventsource.h"
#include "worker_shared.h"

/* The launcher reads pg_database at least this often. */
#define LAUNCHER_CYCLE_MS		5000
/*
 * At most this many workers look for the extension at a time (each takes a
 * background worker of max_worker_processes, which parallel queries and the
 * epoch starter share); a worker that finds it serves the database.
 */
#define LOOKS_AT_ONCE			2
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

static ProcessUtility_hook_type previous_process_utility_hook = NULL;

/*
 * The slot of the notifier a statement of this backend paused, NULL when
 * none is paused; and whether resume_paused_notifier_at_exit is registered
 * (once per backend, never cancelled).
 */
static NotifierSlot *paused_slot = NULL;
static bool exit_callback_registered = false;

void		eventsource_launcher_main(Datum main_arg);

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
	bool		commit_prepared = IsA(statement, TransactionStmt) &&
		((TransactionStmt *) statement)->kind == TRANS_STMT_COMMIT_PREPARED;
	bool		rollback_prepared = IsA(statement, TransactionStmt) &&
		((TransactionStmt *) statement)->kind == TRANS_STMT_ROLLBACK_PREPARED;

	run_utility(needs_alone ? database_oid : InvalidOid, planned, query_string, read_only_tree,
				context, params, query_environment, dest, completion);
	after_role_statement(statement, dropped_roles);
	/*
	 * When the statement's transaction ends, the launcher looks again: a
	 * database may be new, or a prepared transaction that changed an
	 * extension may have ended.  A prepared transaction that commits may
	 * have appended (what it asked for at commit was dropped at PREPARE
	 * TRANSACTION), and COMMIT PREPARED runs in its database: that
	 * database's notifier is woken as the append's own commit would.
	 */
	if (database_name || commit_prepared || rollback_prepared)
		at_transaction_end(WAKE_LAUNCHER_AT_END | (commit_prepared ? WAKE_NOTIFIER_AT_COMMIT : 0));
}

/*
 * Called by _PG_init while shared_preload_libraries is processed: installs
 * the utility hook and registers the launcher (worker_shared.c reserves the
 * shared memory).
 */
void
launcher_preload_init(void)
{
	BackgroundWorker worker;

	previous_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = notifier_process_utility;

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
