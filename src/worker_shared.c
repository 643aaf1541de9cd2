/*-------------------------------------------------------------------------
 *
 * worker_shared.c
 *	  The shared memory of eventsource's background workers, and what
 *	  backends tell them through it (worker_shared.h).
 *
 * Each database the worker serves has a slot: the launcher (launcher.c)
 * gives it to the database, the database's notifier (notifier.c) runs in
 * it.  A backend whose transaction appended sets the latch of its
 * database's notifier when it commits (no lock: notifier_wake_at_commit);
 * one that created, altered or dropped an extension, or ran a statement
 * that may have made a database new or free again, wakes the launcher at
 * its end (an object access hook sees the extensions, however they change;
 * a transaction rolled back changes none).  What a prepared transaction did
 * to extensions counts once it commits: it is recorded here at PREPARE
 * TRANSACTION and reported to the launcher once committed, in any session.
 *
 * The databases to serve are those eventsource.worker_databases (or its old
 * name) names, while any job of the worker is on: the launcher reads them,
 * and a backend asks whether a worker serves its database (the async
 * projections, which run there only then).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "eventsource.h"
#include "worker_shared.h"

NotifierShared *notifier_shared = NULL;
static PreparedChange *prepared_changes = NULL;
static shmem_request_hook_type previous_shmem_request_hook = NULL;
static shmem_startup_hook_type previous_shmem_startup_hook = NULL;
static int	actions_at_transaction_end = 0;
static bool transaction_callback_registered = false;
static object_access_hook_type previous_object_access_hook = NULL;

static void notifier_object_access(ObjectAccessType access, Oid class_id, Oid object_id,
								   int sub_id, void *arg);

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

void
set_latch_of(int procno)
{
	SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

void
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

/*
 * Called by _PG_init while shared_preload_libraries is processed: reserves
 * the shared memory and installs the object access hook.
 */
void
worker_shared_preload_init(void)
{
	previous_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = notifier_shmem_request;
	previous_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = notifier_shmem_startup;
	previous_object_access_hook = object_access_hook;
	object_access_hook = notifier_object_access;
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

/*
 * Has the launcher follow a prepared transaction of this database: what it
 * did to extensions counts once it commits, which may be in another session,
 * or never; the launcher reports it then (take_resolved_prepared_changes).
 * When the record is full of transactions resolved since the launcher's last
 * cycle (a flood of them), this backend takes those first.
 */
void
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
void
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
 * Whether each job of the worker is on, by its settings (the job table of
 * notifier.c runs those that are).
 */
bool
notifications_on(void)
{
	return eventsource_notify;
}

bool
async_projections_on(void)
{
	return eventsource_async_projections;
}

bool
scavenge_on(void)
{
	return eventsource_scavenge_enabled && eventsource_scavenge_interval > 0;
}

NotifierSlot *worker_slot = NULL;
TimestampTz worker_notifications_due_at = DT_NOEND;
TimestampTz worker_commits_gather_until = 0;

/*
 * Whether the slice of one of the worker's jobs, given deadline, ends now: at
 * the deadline, or before it as soon as the notifications have work, because
 * an append's commit said so (events_committed) once commits have gathered
 * since the notifications last looked (worker_commits_gather_until), or their
 * time to look again has come (events held back, or written by other means);
 * not while they are off or rest.  The jobs ask after each step of their work
 * that they can commit alone (a projection's event, a scavenge batch), having
 * done one at least, so that they go on however often appends come, and
 * without the gathering a commit every millisecond would cut every slice to
 * a step and the worker's time would go to cutting.
 */
bool
worker_slice_ends(TimestampTz deadline)
{
	TimestampTz now = GetCurrentTimestamp();

	if (now >= deadline || now >= worker_notifications_due_at)
		return true;
	if (worker_notifications_due_at == DT_NOEND || now < worker_commits_gather_until)
		return false;
	pg_memory_barrier();
	return ((volatile NotifierSlot *) worker_slot)->events_committed;
}

/* Whether any job of the worker is on: the launcher starts the workers only then. */
static bool
any_worker_job_on(void)
{
	return notifications_on() || async_projections_on() || scavenge_on();
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
bool
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
bool
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


/*
 * Reports what each prepared transaction that changed an extension did, once
 * it has committed (COMMIT PREPARED, in any session), and forgets those that
 * ended: a prepared transaction stays in progress until it is resolved.
 * Whether it reported any.  The launcher calls it at each cycle, and a
 * backend whose change finds the record full: those resolved are forgotten
 * by their transaction ID, as another process may have forgotten some
 * meanwhile and backends added others.
 */
bool
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
