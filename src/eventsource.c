/*-------------------------------------------------------------------------
 *
 * eventsource.c
 *	  Module entry point of the eventsource extension (its settings) and the
 *	  small helpers every other file uses: acting as the extension's owner,
 *	  the schema an old entry point serves, the category of a stream id.
 *	  Kept plans are kept_plan.c's, the checks of arguments arguments.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "postmaster/postmaster.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "epoch.h"
#include "eventsource.h"
#include "statistics.h"
#include "trust.h"
#include "worker_shared.h"

PG_MODULE_MAGIC;

/* Settings: README.md documents each. */
int			eventsource_snapshots_to_keep = 3;
int			eventsource_read_wait_timeout = 1000;
bool		eventsource_notify = true;
char	   *eventsource_worker_databases = NULL;
char	   *eventsource_notify_databases = NULL;
int			eventsource_max_databases = 64;
int			eventsource_max_databases_per_owner = 2;
int			eventsource_notify_max_delay = 50;
bool		eventsource_scavenge_enabled = true;
int			eventsource_scavenge_interval = 60;
int			eventsource_scavenge_slice = 10;
bool		eventsource_async_projections = true;
int			eventsource_async_projection_slice = 10;

/* Whether shared_preload_libraries loaded the library (its shared memory and workers exist). */
static bool preloaded = false;

void		_PG_init(void);

/*
 * Defines the extension's settings when the library is loaded; loaded by
 * shared_preload_libraries, it also sets up the worker (worker_shared.c,
 * launcher.c).
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("eventsource.read_wait_timeout",
							"How long read_by_query waits for older transactions in progress before it returns the gap-safe log below them.",
							"0 never waits.",
							&eventsource_read_wait_timeout,
							1000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("eventsource.snapshots_to_keep",
							"How many snapshots save_snapshot keeps per stream, the newest ones.",
							"0 keeps every snapshot.",
							&eventsource_snapshots_to_keep,
							3, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("eventsource.notify",
							 "Whether the worker sends NOTIFY on channel eventsource for new events.",
							 "Only the notifications: the worker's other jobs have settings of their own. Needs eventsource in shared_preload_libraries.",
							 &eventsource_notify,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("eventsource.worker_databases",
							   "The databases the background worker serves, comma-separated, or * for every database in which the extension is installed.",
							   "Needs eventsource in shared_preload_libraries. * (or empty) serves each database that accepts connections and is not a template; a list serves the listed databases only.",
							   &eventsource_worker_databases,
							   "*",
							   PGC_SIGHUP, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("eventsource.notify_databases",
							   "The old name of eventsource.worker_databases, read while that is *; removed in 0.9.0.",
							   "Empty (the default) leaves the list to eventsource.worker_databases.",
							   &eventsource_notify_databases,
							   "",
							   PGC_SIGHUP, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("eventsource.notify_max_delay",
							"The longest the notifier waits before announcing events that became visible without waking it.",
							"Events of an append are announced when it commits; events held back by an older running transaction become visible when it ends, and the notifier looks for them this often.",
							&eventsource_notify_max_delay,
							50, 1, 10000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("eventsource.scavenge",
							 "Whether the worker runs scavenge in the databases it serves, every eventsource.scavenge_interval.",
							 "Needs eventsource in shared_preload_libraries.",
							 &eventsource_scavenge_enabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("eventsource.scavenge_interval",
							"How often the worker runs scavenge in the databases it serves.",
							"Each pass removes hidden events in batches, a transaction each, until none is left. 0 also turns it off, as before 0.8.0 (eventsource.scavenge is the switch; from 0.9.0 the interval is at least 1 s).",
							&eventsource_scavenge_interval,
							60, 0, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("eventsource.scavenge_slice",
							"The longest the worker spends on a slice of a scavenge pass before it looks for new events to announce, and rests after it.",
							"Scavenge deletes in batches, a transaction each, sized to take about half of the slice; after each slice of a pass it rests as long.",
							&eventsource_scavenge_slice,
							10, 1, 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("eventsource.async_projections",
							 "Whether the worker runs the async projections of the databases it serves.",
							 "Needs eventsource in shared_preload_libraries.",
							 &eventsource_async_projections,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("eventsource.async_projection_slice",
							"The longest the worker spends on a slice of its async projections before it looks for new events to announce.",
							"An async projection's turn handles events until the slice is spent (at least one) and commits; its transactions last no longer than the slice plus one handler call.",
							&eventsource_async_projection_slice,
							10, 1, 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	/* PostgreSQL takes a setting fixed at server start from a preloaded library only. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("eventsource.max_databases",
								"The most databases the notifier serves at once.",
								"Each served database takes a background worker of max_worker_processes.",
								&eventsource_max_databases,
								64, 1, MAX_BACKENDS,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
	DefineCustomIntVariable("eventsource.max_databases_per_owner",
							"The most databases of one role other than a superuser that the notifier serves at once.",
							"Each served database takes a background worker; a role with CREATEDB could otherwise copy a served database until its notifiers take them all. -1: no limit.",
							&eventsource_max_databases_per_owner,
							2, -1, MAX_BACKENDS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("eventsource");

	if (process_shared_preload_libraries_in_progress)
	{
		preloaded = true;
		worker_shared_preload_init();
		launcher_preload_init();
		statistics_preload_init();
		epoch_preload_init();
	}
}

/*
 * The schema of this database's extension, told apart by the columns of
 * eventsource.streams that a version added: for the entry points of before
 * 0.8.0 and the background worker, which no script tells (see
 * SCHEMA_VERSIONED_FUNCTION).
 *
 * It locks eventsource.streams first (AccessShareLock, which every caller's
 * statements take anyway, held to the end of the transaction), and only then
 * looks at its columns.  An ALTER EXTENSION UPDATE that changes the table
 * holds it in AccessExclusiveLock until it commits, so a call that starts
 * while one runs waits here, and taking the lock accepts the update's
 * invalidations: the columns looked at are those the update made, and the
 * statements run are those of the updated schema.  Asked before the lock,
 * the answer would be the old schema, and the call would write the old
 * statements into the new one once its statements got the table.  An update
 * that starts later waits for this transaction to end, so the answer holds
 * for the whole transaction.  Three or four syscache lookups, made again on
 * every call rather than kept: an update in this session or another changes
 * the answer between two transactions, while these entry points serve only
 * until the database is updated.
 */
StreamsSchema
installed_streams_schema(void)
{
	Oid			streams = RangeVarGetRelid(makeRangeVar("eventsource", "streams", -1),
										   AccessShareLock, true);

	if (!OidIsValid(streams))
		return STREAMS_BEFORE_LIFECYCLE;
	if (get_attnum(streams, "last_transaction_id") != InvalidAttrNumber)
	{
		Oid			events = RangeVarGetRelid(makeRangeVar("eventsource", "events", -1),
											  AccessShareLock, true);

		if (OidIsValid(events) && get_attnum(events, "tags") != InvalidAttrNumber)
			return STREAMS_WITH_TAGS;
		return STREAMS_WITH_LOG_ORDER;
	}
	if (get_attnum(streams, "tombstoned_at") != InvalidAttrNumber)
		return STREAMS_WITH_LIFECYCLE;
	return STREAMS_BEFORE_LIFECYCLE;
}

/*
 * Raises the error for a function that needs the library preloaded (its
 * shared memory or background workers); detail says what for.
 */
void
require_preloaded_library(const char *function_name, const char *detail, const char *hint)
{
	if (!preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s requires eventsource in shared_preload_libraries", function_name),
				 errdetail_internal("%s", detail),
				 errhint("%s", hint)));
}

/*
 * Notes the role that called the function of fcinfo, then acts as the
 * function's owner (the extension's), as a SECURITY DEFINER function would.
 * A function that is SECURITY DEFINER itself (as before 0.6.0) already acts
 * as its owner, and its caller is known only as the role outside every
 * SECURITY DEFINER function.  An error ends the acting with the
 * (sub)transaction; otherwise stop_acting_as_owner ends it.
 */
void
act_as_function_owner(FunctionCallInfo fcinfo, ActingAsOwner *acting)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	Oid			owner;

	GetUserIdAndSecContext(&acting->saved_user, &acting->saved_security_context);
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_proc procedure = (Form_pg_proc) GETSTRUCT(tuple);

		owner = procedure->proowner;
		acting->caller = procedure->prosecdef ? GetOuterUserId() : acting->saved_user;
		ReleaseSysCache(tuple);
	}
	else
	{
		Oid			schema;

		/*
		 * ALTER EXTENSION UPDATE dropped the function while this call waited
		 * for it (an update that changes its arguments): its owner was the
		 * extension's, as is every function of the extension.
		 */
		if (!extension_row(get_extension_oid("eventsource", false), &schema, &owner))
			elog(ERROR, "extension eventsource has no row");
		acting->caller = acting->saved_user;
	}
	SetUserIdAndSecContext(owner, acting->saved_security_context | SECURITY_LOCAL_USERID_CHANGE);
}

void
stop_acting_as_owner(const ActingAsOwner *acting)
{
	SetUserIdAndSecContext(acting->saved_user, acting->saved_security_context);
}

/*
 * Takes the lock that orders the changes to the projections (a transaction
 * advisory lock), before a change: the change then decides the state of the
 * log's trigger after every earlier change has committed.
 */
void
lock_projection_changes(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, 0, EVENTSOURCE_PROJECTIONS_LOCK_CLASS);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* Whether role has the rights of eventsource_admin (a superuser has). */
bool
may_administer(Oid role)
{
	Oid			admin = get_role_oid("eventsource_admin", true);

	return superuser_arg(role) || (OidIsValid(admin) && has_privs_of_role(role, admin));
}

/*
 * The category of a stream: the part of its id before the first '-', the
 * whole id when it has none.  Matches eventsource.category() and the
 * category index expression split_part(stream_id, '-', 1).
 */
text *
category_of(text *stream_id)
{
	const char *bytes = VARDATA_ANY(stream_id);
	int			length = VARSIZE_ANY_EXHDR(stream_id);
	const char *dash = memchr(bytes, '-', length);

	return cstring_to_text_with_len(bytes, dash ? dash - bytes : length);
}
