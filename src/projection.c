/*-------------------------------------------------------------------------
 *
 * projection.c
 *	  Projections: read models kept by a user's handler function, called
 *	  with each matching event (an eventsource.event).
 *
 * Inline projections run in the appending transaction: a statement-level
 * trigger on the log (enabled only while an inline projection is running)
 * calls each handler for each event the INSERT appended, in stream order;
 * an error in a handler aborts the append, so the read model never gets
 * out of step with the log.  Every change to the projections takes one
 * ordering lock first and then decides the trigger's state from the latest
 * committed projections, so the last change to commit leaves it right.
 *
 * Async projections run in the notifier's background worker: batches from
 * the gap-safe log after the projection's checkpoint, the handler's work
 * and the new checkpoint committed together (exactly-once effect).  A batch
 * that fails is retried one event at a time with a growing delay; after
 * max_attempts failures of one event the projection stops as failed, or,
 * with on_failure = 'dead_letter', records the event and goes on.
 *
 * Handlers are user code, and run sandboxed the way PostgreSQL runs index
 * expressions and maintenance commands: as the role that created the
 * projection (whose rights are checked again each time a batch of its
 * events starts), in a security-restricted operation, inside a GUC nest
 * level of their own that undoes every setting they change, with the search
 * path in effect when the projection was created and pg_temp last.
 *
 * A handler is stored as its schema-qualified signature (text, which
 * pg_upgrade accepts, unlike regprocedure) and resolved to the function each
 * time its projection's row is read; an event trigger rewrites the signature
 * when the function is renamed or moved.  A database still at 0.6.0 stores
 * its OID (regprocedure).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_type.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/varlena.h"
#include "utils/xid8.h"

#include "arguments.h"
#include "checkpoint.h"
#include "epoch.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "log.h"
#include "query.h"
#include "worker_shared.h"
#include "worker_transaction.h"

PG_FUNCTION_INFO_V1(eventsource_run_inline_projections);
PG_FUNCTION_INFO_V1(eventsource_synchronize_inline_projections);
PG_FUNCTION_INFO_V1(eventsource_create_projection);
PG_FUNCTION_INFO_V1(eventsource_drop_projection);
PG_FUNCTION_INFO_V1(eventsource_pause_projection);
PG_FUNCTION_INFO_V1(eventsource_resume_projection);
PG_FUNCTION_INFO_V1(eventsource_rebuild_projection);
PG_FUNCTION_INFO_V1(eventsource_follow_renamed_handlers);

/* The first retry of a failing event waits this long, doubling up to a minute. */
#define FIRST_RETRY_MS				100
#define LONGEST_RETRY_MS			60000

/* The search path of handlers of projections created before 0.6.0. */
#define DEFAULT_HANDLER_SEARCH_PATH	"pg_catalog, pg_temp"

/* A projection: a row of eventsource.projections. */
typedef struct Projection
{
	char	   *name;
	Oid			handler;		/* InvalidOid: its signature resolves to nothing */
	char	   *handler_signature;
	Oid			reset_handler;	/* InvalidOid: none, or it resolves to nothing */
	char	   *reset_signature;	/* NULL: none */
	Oid			owner;
	ArrayType  *event_types;	/* NULL: every type */
	char	   *category;		/* NULL: every category */
	Jsonb	   *query;			/* NULL: every event (before 0.8.0, always) */
	EventQuery *parsed_query;	/* query, parsed */
	char	   *search_path;	/* the handlers', pg_temp last */
	bool		is_inline;
	bool		dead_letter;	/* on_failure = 'dead_letter' */
	int			attempts;
	int			max_attempts;
	Checkpoint	checkpoint;		/* {0, 0}: the start of the log */
	FmgrInfo	handler_info;	/* looked up on first call: a SQL function keeps its plan in it */
	bool		handler_info_ready;
} Projection;

/* ------------------------------------------------------------------------
 * Calling a handler
 * ------------------------------------------------------------------------
 */

typedef struct HandlerCall
{
	const Projection *projection;
	int64		global_position;
} HandlerCall;

static void
handler_call_context(void *arg)
{
	HandlerCall *call = (HandlerCall *) arg;

	errcontext("projection \"%s\", handling the event at global position " INT64_FORMAT,
			   call->projection->name, call->global_position);
}

/*
 * Whether a stored handler signature has the form create_projection writes
 * (format_procedure_qualified: a schema-qualified name, and no argument or
 * the one eventsource.event), which to_regprocedure reads without raising an
 * error.  Anything else (a restore of a 0.6.0 dump stores a dropped handler
 * as its bare OID) names no function, so that only its own projection fails.
 */
static bool
is_handler_signature(const char *signature)
{
	const char *open = NULL;
	bool		quoted = false;
	List	   *names;

	for (const char *c = signature; *c != '\0' && open == NULL; c++)
	{
		if (*c == '"')
			quoted = !quoted;
		else if (*c == '(' && !quoted)
			open = c;
	}
	if (open == NULL || open == signature ||
		(strcmp(open, "()") != 0 && strcmp(open, "(eventsource.event)") != 0))
		return false;
	return SplitIdentifierString(pnstrdup(signature, open - signature), '.', &names) &&
		list_length(names) == 2;
}

/*
 * Why role (called role_name) may not have function (its signature
 * signature; InvalidOid when that resolves to nothing) run as itself, or
 * NULL when it may: it must be allowed to execute the function and to use
 * its schema (a function given by OID skips the name lookup that checks
 * that), and the function must belong to the role itself or to a superuser,
 * so that no one else (not even another member of a group that owns it) can
 * replace its body with code that then runs as the role.
 */
static char *
function_rights_problem(Oid function, const char *signature, Oid role, const char *role_name)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	Oid			schema;
	Oid			function_owner;

	if (!HeapTupleIsValid(tuple))
		return psprintf("Its function %s no longer exists.", signature);
	schema = ((Form_pg_proc) GETSTRUCT(tuple))->pronamespace;
	function_owner = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
	ReleaseSysCache(tuple);
	if (pg_namespace_aclcheck(schema, role, ACL_USAGE) != ACLCHECK_OK)
		return psprintf("Role \"%s\" may not use schema \"%s\" of %s.",
						role_name, get_namespace_name(schema), format_procedure(function));
	if (pg_proc_aclcheck(function, role, ACL_EXECUTE) != ACLCHECK_OK)
		return psprintf("Role \"%s\" may not execute %s.", role_name, format_procedure(function));
	if (function_owner != role && !superuser_arg(function_owner))
		return psprintf("%s belongs to role \"%s\", which could change it to run as role \"%s\".",
						format_procedure(function), GetUserNameFromId(function_owner, false), role_name);
	return NULL;
}

/*
 * Why the projection's owner may no longer run function (its handler or
 * reset handler), or NULL when it may: handlers run with their owner's
 * rights, so those rights are checked when they run, not only when the
 * projection is created.
 */
static char *
owner_rights_problem(const Projection *projection, Oid function, const char *signature)
{
	char	   *owner_name = GetUserNameFromId(projection->owner, true);

	if (owner_name == NULL)
		return psprintf("Its owner, the role with OID %u, no longer exists.", projection->owner);
	if (!may_administer(projection->owner))
		return psprintf("Its owner, role \"%s\", is no longer a member of eventsource_admin.", owner_name);
	return function_rights_problem(function, signature, projection->owner, owner_name);
}

/*
 * Refuses to run the projection, whose owner may not run function (its
 * signature signature), for the reason problem.  The hint says what can be
 * done: a signature that names no function can be made to name one again,
 * unless it is one no one can create (a function dropped before the upgrade
 * to 0.7.0, in pg_catalog, or no signature at all).
 */
static void
require_owner_rights(const Projection *projection, Oid function, const char *signature)
{
	char	   *problem = owner_rights_problem(projection, function, signature);
	const char *hint;

	if (problem == NULL)
		return;
	if (OidIsValid(function) && SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(function)))
		hint = "Give the owner its rights back, or drop the projection.";
	else if (is_handler_signature(signature) && strncmp(signature, "pg_catalog.", strlen("pg_catalog.")) != 0)
		hint = "Create a function of that signature again, owned by the projection's owner or a superuser, or drop the projection.";
	else
		hint = "The function was dropped before this database was upgraded or restored: drop the projection and create it again with an existing handler.";
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to run projection \"%s\"", projection->name),
			 errdetail_internal("%s", problem),
			 errhint("%s", hint)));
}

/*
 * Calls a function of a projection, sandboxed: its handler with an event
 * (flinfo NULL; the owner's rights are checked before its first call), or
 * the reset handler flinfo with no argument (event (Datum) 0).  It runs as
 * the projection's owner in a security-restricted operation (no role
 * changes, temporary objects or deferred work left for later, which would
 * run with the caller's rights), in a GUC nest level of its own whose
 * settings, the projection's search path first, are all undone when it
 * returns; an error undoes them with the (sub)transaction.
 */
static void
call_as_owner(Projection *projection, FmgrInfo *flinfo, Datum event, int64 global_position)
{
	Oid			saved_user;
	int			saved_security_context;
	int			nest_level;
	HandlerCall call = {projection, global_position};
	ErrorContextCallback context = {error_context_stack, handler_call_context, &call};
	LOCAL_FCINFO(call_info, 1);

	if (flinfo == NULL)
	{
		if (!projection->handler_info_ready)
		{
			require_owner_rights(projection, projection->handler, projection->handler_signature);
			/* Where the projection is: a replay resets the context it calls the handler in. */
			fmgr_info_cxt(projection->handler, &projection->handler_info, GetMemoryChunkContext(projection));
			projection->handler_info_ready = true;
		}
		flinfo = &projection->handler_info;
	}
	InitFunctionCallInfoData(*call_info, flinfo, event == (Datum) 0 ? 0 : 1, InvalidOid, NULL, NULL);
	call_info->args[0].value = event;
	call_info->args[0].isnull = false;

	GetUserIdAndSecContext(&saved_user, &saved_security_context);
	SetUserIdAndSecContext(projection->owner,
						   saved_security_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", projection->search_path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	error_context_stack = &context;
	/* The result (void, or anything) is ignored. */
	(void) FunctionCallInvoke(call_info);
	error_context_stack = context.previous;
	AtEOXact_GUC(false, nest_level);
	SetUserIdAndSecContext(saved_user, saved_security_context);
}

/*
 * The type eventsource.event, looked up by name once per backend (and again
 * if the extension was dropped and created since).
 */
static Oid
event_type(void)
{
	static Oid	type = InvalidOid;

	if (!OidIsValid(type) || get_typtype(type) != TYPTYPE_COMPOSITE)
		type = typenameTypeId(NULL, makeTypeNameFromNameList(list_make2(makeString("eventsource"),
																		makeString("event"))));
	return type;
}

/* The row type eventsource.event, from the type cache. */
static TupleDesc
event_descriptor(void)
{
	return lookup_rowtype_tupdesc_copy(event_type(), -1);
}

/*
 * Whether an event (its stream id, type and tags) is one the projection wants.
 */
static bool
projection_wants(const Projection *projection, text *stream_id, text *event_type, ArrayType *tags)
{
	if (projection->category != NULL)
	{
		text	   *category = category_of(stream_id);

		if (strcmp(text_to_cstring(category), projection->category) != 0)
			return false;
	}
	if (projection->event_types != NULL)
	{
		Datum	   *types;
		int			count;
		bool		found = false;

		deconstruct_array(projection->event_types, TEXTOID, -1, false, TYPALIGN_INT,
						  &types, NULL, &count);
		for (int i = 0; i < count && !found; i++)
			found = DatumGetBool(DirectFunctionCall2Coll(texteq, DEFAULT_COLLATION_OID, types[i],
														   PointerGetDatum(event_type)));
		if (!found)
			return false;
	}
	return projection->parsed_query == NULL || event_matches_query(projection->parsed_query, event_type, tags);
}

/*
 * The function a handler column of a projection's row names, and its
 * signature (NULL when the column is NULL): since 0.7.0 the column holds the
 * schema-qualified signature, which is looked up now (InvalidOid when it
 * names no function, as after a DROP FUNCTION, or is no signature); before,
 * the function's OID (regprocedure).
 */
static Oid
handler_from_row(HeapTuple row, TupleDesc description, const char *column, char **signature)
{
	bool		isnull;
	Datum		value = column_by_name(row, description, column, &isnull);
	Oid			function;
	LOCAL_FCINFO(lookup, 1);

	*signature = NULL;
	if (isnull)
		return InvalidOid;
	if (SPI_gettypeid(description, SPI_fnumber(description, column)) == REGPROCEDUREOID)
	{
		function = DatumGetObjectId(value);
		*signature = format_procedure_extended(function, FORMAT_PROC_FORCE_QUALIFY);
		return function;
	}
	*signature = TextDatumGetCString(value);
	if (!is_handler_signature(*signature))
		return InvalidOid;
	InitFunctionCallInfoData(*lookup, NULL, 1, InvalidOid, NULL, NULL);
	lookup->args[0].value = value;
	lookup->args[0].isnull = false;
	function = DatumGetObjectId(to_regprocedure(lookup));
	return lookup->isnull ? InvalidOid : function;
}

/*
 * Reads a projection from a row of eventsource.projections (all of its
 * columns, p.*, by name: a column the installed version lacks reads as
 * NULL).
 */
static Projection *
projection_from_row(HeapTuple row, TupleDesc description)
{
	Projection *projection = palloc0(sizeof(Projection));
	bool		isnull;
	Datum		value;

	projection->name = TextDatumGetCString(column_by_name(row, description, "name", &isnull));
	projection->handler = handler_from_row(row, description, "handler", &projection->handler_signature);
	projection->reset_handler = handler_from_row(row, description, "reset_handler",
												 &projection->reset_signature);
	projection->owner = DatumGetObjectId(column_by_name(row, description, "owner", &isnull));
	value = column_by_name(row, description, "event_types", &isnull);
	if (!isnull)
		projection->event_types = DatumGetArrayTypePCopy(value);
	value = column_by_name(row, description, "category", &isnull);
	if (!isnull)
		projection->category = TextDatumGetCString(value);
	value = column_by_name(row, description, "query", &isnull);
	if (!isnull)
	{
		projection->query = DatumGetJsonbPCopy(value);
		projection->parsed_query = parse_event_query(projection->query, "query");
	}
	value = column_by_name(row, description, "search_path", &isnull);
	projection->search_path = isnull ? DEFAULT_HANDLER_SEARCH_PATH : TextDatumGetCString(value);
	value = column_by_name(row, description, "mode", &isnull);
	projection->is_inline = strcmp(TextDatumGetCString(value), "inline") == 0;
	value = column_by_name(row, description, "on_failure", &isnull);
	projection->dead_letter = strcmp(TextDatumGetCString(value), "dead_letter") == 0;
	projection->attempts = DatumGetInt32(column_by_name(row, description, "attempts", &isnull));
	projection->max_attempts = DatumGetInt32(column_by_name(row, description, "max_attempts", &isnull));
	value = column_by_name(row, description, "checkpoint", &isnull);
	if (!isnull)
		projection->checkpoint = *(Checkpoint *) DatumGetPointer(value);
	return projection;
}

/* ------------------------------------------------------------------------
 * Inline projections
 * ------------------------------------------------------------------------
 */

static KeptPlan inline_projections_plan = {
	"SELECT p.* FROM eventsource.projections p"
	" WHERE p.mode OPERATOR(pg_catalog.=) 'inline' AND p.status OPERATOR(pg_catalog.=) 'running'"
	" ORDER BY p.name",
	0, {InvalidOid}
};

/* How often an inline append reads again a handler signature that resolved to nothing. */
#define INLINE_PROJECTION_RETRIES 3

static KeptPlan share_projection_plan = {
	"SELECT p.xmin FROM eventsource.projections p WHERE p.name OPERATOR(pg_catalog.=) $1 FOR SHARE",
	1, {TEXTOID}
};

/*
 * The running inline projections, read on the latest snapshot, into *count.
 * A handler renamed by a transaction that committed after this statement
 * took its locks has its new signature in the row, but this backend may not
 * have taken the rename's catalog invalidations yet (the renaming
 * transaction sends them just after its commit becomes visible, and before
 * it releases its locks; a backend takes them as it locks something), or the
 * other way round: once a signature resolves to nothing, this share-locks
 * each such row (waiting for a writer still in progress to end, and keeping
 * the next rename, whose event trigger updates the row, from committing
 * until this transaction ends), waits for the lock of the transaction that
 * wrote the row version it locked (so a rename whose commit is visible has
 * sent its invalidations), takes the invalidations and reads again (at most
 * retries times: a signature that still resolves to nothing then names a
 * dropped function), so that a rename never fails an append.
 */
static Projection **
read_inline_projections(uint64 *count, int retries)
{
	Projection **projections;
	List	   *unresolved = NIL;
	ListCell   *cell;

	*count = run_kept_plan_on_latest_snapshot(&inline_projections_plan, NULL, NULL);
	projections = palloc(Max(*count, 1) * sizeof(Projection *));
	for (uint64 i = 0; i < *count; i++)
	{
		projections[i] = projection_from_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
		if (retries > 0 && !OidIsValid(projections[i]->handler))
			unresolved = lappend(unresolved, projections[i]->name);
	}
	if (unresolved == NIL)
		return projections;
	foreach(cell, unresolved)
	{
		Datum		name = CStringGetTextDatum(lfirst(cell));
		bool		isnull;
		TransactionId writer;

		if (run_kept_plan_on_latest_snapshot(&share_projection_plan, &name, NULL) == 0)
			continue;
		writer = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
													 1, &isnull));
		if (TransactionIdIsNormal(writer) && !TransactionIdIsCurrentTransactionId(writer))
			XactLockTableWait(writer, NULL, NULL, XLTW_None);
	}
	AcceptInvalidationMessages();
	InvalidateCatalogSnapshot();
	return read_inline_projections(count, retries - 1);
}

/*
 * The trigger function: every event the INSERT appended, to every running
 * inline projection that wants it.
 */
Datum
eventsource_run_inline_projections(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;
	TupleDesc	log_description;
	TupleDesc	event_description;
	TupleTableSlot *slot;
	Projection **projections;
	uint64		projection_count;

	if (!CALLED_AS_TRIGGER(fcinfo) || trigger->tg_newtable == NULL)
		elog(ERROR, "run_inline_projections must be an AFTER INSERT trigger with a transition table");
	/* Rows a restore copies into the log were projected when they were appended. */
	if (!eventsource_appending)
		return PointerGetDatum(NULL);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/*
	 * The latest committed projections, not the transaction's snapshot's: a
	 * projection created or resumed before this INSERT began holds off
	 * appends until it commits (hold_off_appends), so this sees it.
	 */
	projections = read_inline_projections(&projection_count, INLINE_PROJECTION_RETRIES);

	log_description = RelationGetDescr(trigger->tg_relation);
	event_description = event_descriptor();
	slot = MakeSingleTupleTableSlot(log_description, &TTSOpsMinimalTuple);

	/* The rows of one append statement are one stream's events, in version order. */
	while (tuplestore_gettupleslot(trigger->tg_newtable, true, false, slot))
	{
		Datum		values[MAX_EVENT_COLUMNS];
		bool		nulls[MAX_EVENT_COLUMNS];
		Checkpoint *checkpoint = palloc(sizeof(Checkpoint));
		Datum		event;
		ArrayType  *tags;

		slot_getallattrs(slot);
		checkpoint->global_position = DatumGetInt64(slot->tts_values[0]);
		checkpoint->transaction_id =
			U64FromFullTransactionId(DatumGetFullTransactionId(slot->tts_values[1]));
		tags = event_tags(values, nulls,
						  arrange_event_columns(slot->tts_values, slot->tts_isnull, log_description->natts,
												PointerGetDatum(checkpoint), values, nulls));
		event = heap_copy_tuple_as_datum(heap_form_tuple(event_description, values, nulls),
										 event_description);
		for (uint64 i = 0; i < projection_count; i++)
		{
			if (!projection_wants(projections[i], DatumGetTextPP(values[2]), DatumGetTextPP(values[5]), tags))
				continue;
			call_as_owner(projections[i], NULL, event, checkpoint->global_position);
		}
		CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* ------------------------------------------------------------------------
 * Replaying the log through a handler (rebuilds, async projections)
 * ------------------------------------------------------------------------
 */

/*
 * The projection's events after ($1, $2), in log order, at most $3; $4 event
 * types, $5 category.  visible_only: below the gap-safe horizon $6 (async), or
 * every event this snapshot sees (an inline rebuild, which must not miss the
 * events an older running transaction holds back: their triggers ran before
 * the reset).  Planned with the values, so that a projection of one category
 * reads the category index: a generic plan keeps the "$5 IS NULL OR" and
 * reads the whole log after the checkpoint, every event of every other
 * category, at each of its turns (0.45 s a turn, a caught-up projection's,
 * while scavenge had 600,000 events to remove).
 *
 * The visible read (an async projection's) takes its event types among the
 * first $7 events of its category (of the log, without one) only, its
 * window: a projection of rare event types otherwise read the whole log in
 * one statement at its first turn, whatever the time box (0.43 s behind
 * 2,000,000 events without one of its types), and as much between two of its
 * events.  When a read comes back short, window_end_plan says where its
 * window ended, and the replay's checkpoint passes the events there that its
 * types skip.  A projection of a query reads the plans with REPLAY_QUERY,
 * its query $8, which its types' window takes too.
 */
#define REPLAY_CATEGORY "   AND " CATEGORY_TAKES("$5::pg_catalog.text", EVENT_CATEGORY)
#define REPLAY_QUERY "   AND " QUERY_MATCHES("$8::pg_catalog.jsonb")
#define REPLAY_ARGUMENTS \
	8, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID, XID8OID, INT4OID, JSONBOID}, \
	CURSOR_OPT_CUSTOM_PLAN
#define REPLAY_VISIBLE_PLAN(query) \
	{"SELECT e.* FROM (" EVENT_COLUMNS LOG_RANGE("$6") REPLAY_CATEGORY LOG_ORDER " LIMIT $7) e" \
	 " WHERE " EVENT_TYPES_TAKE("$4::pg_catalog.text[]") query LOG_ORDER " LIMIT $3", \
	 REPLAY_ARGUMENTS}
#define REPLAY_ALL_PLAN(query) \
	{EVENT_COLUMNS \
	 LOG_AFTER_CHECKPOINT_PARAMETERS \
	 "   AND " EVENT_TYPES_TAKE("$4::pg_catalog.text[]") query \
	 REPLAY_CATEGORY LOG_ORDER " LIMIT $3", \
	 REPLAY_ARGUMENTS}

static KeptPlan replay_visible_plan = REPLAY_VISIBLE_PLAN("");
static KeptPlan replay_visible_query_plan = REPLAY_VISIBLE_PLAN(REPLAY_QUERY);
static KeptPlan replay_all_plan = REPLAY_ALL_PLAN("");
static KeptPlan replay_all_query_plan = REPLAY_ALL_PLAN(REPLAY_QUERY);

static KeptPlan window_end_plan = {
	"SELECT e.transaction_id, e.global_position FROM eventsource.events e"
	LOG_RANGE("$6") REPLAY_CATEGORY LOG_ORDER " OFFSET $7 OPERATOR(pg_catalog.-) 1 LIMIT 1",
	REPLAY_ARGUMENTS
};

/*
 * The events of an async projection's category (of the log) a read takes its
 * types among; for a projection of a query, fewer as its query is larger
 * (WINDOW_TERMS of its items, types and tags for each event of a full
 * window), so that a window costs about as much to match whatever the query
 * (100 items of 100 tags, at 10,000 events, held the worker for seconds).
 */
#define EVENTS_PER_WINDOW 10000
#define WINDOW_TERMS 10
#define SMALLEST_WINDOW 100

static int
replay_window(const Projection *projection)
{
	if (projection->parsed_query == NULL || projection->parsed_query->terms <= WINDOW_TERMS)
		return EVENTS_PER_WINDOW;
	return Max(EVENTS_PER_WINDOW / (projection->parsed_query->terms / WINDOW_TERMS), SMALLEST_WINDOW);
}

/*
 * Runs plan (one of the replay plans or window_end_plan) for the
 * projection's events after `after`, at most limit of them, in windows of
 * window events (visible reads only).
 */
static uint64
run_replay_plan(KeptPlan *plan, const Projection *projection, const Checkpoint *after, int limit, int window,
				bool visible_only)
{
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};

	values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(after->transaction_id));
	values[1] = Int64GetDatum(after->global_position);
	values[2] = Int32GetDatum(limit);
	values[3] = PointerGetDatum(projection->event_types);
	nulls[3] = projection->event_types == NULL;
	values[4] = projection->category ? CStringGetTextDatum(projection->category) : (Datum) 0;
	nulls[4] = projection->category == NULL;
	values[5] = visible_only ? log_horizon_datum() : (Datum) 0;
	nulls[5] = !visible_only;
	values[6] = Int32GetDatum(window);
	values[7] = PointerGetDatum(projection->query);
	nulls[7] = projection->query == NULL;
	return run_kept_plan(plan, values, nulls, false);
}

/*
 * Reads up to limit of the projection's events after `after` into
 * SPI_tuptable (eventsource.event rows) and returns how many; a visible
 * read, among the first window events after `after` only.
 */
static uint64
read_projection_events(const Projection *projection, const Checkpoint *after, int limit, bool visible_only,
					   int window)
{
	KeptPlan   *plan = visible_only ?
		(projection->query ? &replay_visible_query_plan : &replay_visible_plan) :
		(projection->query ? &replay_all_query_plan : &replay_all_plan);

	return run_replay_plan(plan, projection, after, limit, window, visible_only);
}

/*
 * Whether a visible read of the projection after *after that came back short
 * stopped at the end of its window rather than of the gap-safe log: then
 * *after becomes that end, past the events there its types skip.
 */
static bool
pass_window(const Projection *projection, Checkpoint *after)
{
	if (run_replay_plan(&window_end_plan, projection, after, 1, replay_window(projection), true) == 0)
		return false;
	*after = checkpoint_from_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/* At most this many rows are read at once: they hold the events' large values as TOAST pointers. */
#define EVENTS_PER_READ 100

/*
 * How far a replay got: the events handed to the handler (the one in its
 * hands when it fails included) and the last of them (the checkpoint it
 * started after, before the first), and whether it stopped with more to do,
 * at its limit or its deadline.
 */
typedef struct Replay
{
	int64		events;
	Checkpoint	last;
	bool		more;
} Replay;

/*
 * Feeds the events after replay->last to the handler, up to limit of them,
 * and, when deadline is not 0 (the worker), only until the worker's slice
 * ends (worker_slice_ends: the deadline, or notifications waiting), one event
 * at least.  Each event is detoasted just before its handler call, in a memory
 * context of its own that is reset after it, so the replay holds one event
 * at a time whatever their sizes.  Connected to SPI.
 */
static void
replay_events(Projection *projection, bool visible_only, TupleDesc event_description, int64 limit,
			  TimestampTz deadline, Replay *replay)
{
	MemoryContext caller_context = CurrentMemoryContext;
	MemoryContext event_context = AllocSetContextCreate(caller_context, "eventsource event",
														ALLOCSET_DEFAULT_SIZES);
	int64		first = replay->events;
	uint64		count;
	bool		passed;

	replay->more = false;
	do
	{
		int			wanted = (int) Min(limit - (replay->events - first), EVENTS_PER_READ);
		SPITupleTable *rows;

		count = read_projection_events(projection, &replay->last, wanted, visible_only, replay_window(projection));
		rows = SPI_tuptable;
		for (uint64 i = 0; i < count && !replay->more; i++)
		{
			HeapTuple	row = rows->vals[i];
			bool		isnull;
			Datum		event;
			Datum		values[MAX_EVENT_COLUMNS];
			bool		nulls[MAX_EVENT_COLUMNS];

			CHECK_FOR_INTERRUPTS();
			if (deadline != 0 && replay->events > first && worker_slice_ends(deadline))
			{
				replay->more = true;
				break;
			}
			replay->last = *(Checkpoint *) DatumGetPointer(SPI_getbinval(row, rows->tupdesc,
																		 rows->tupdesc->natts, &isnull));
			replay->events++;
			MemoryContextSwitchTo(event_context);
			/* The event of the SPI row's columns, with its type (and detoasted). */
			(void) event_columns_from_row(row, rows->tupdesc, values, nulls);
			event = heap_copy_tuple_as_datum(heap_form_tuple(event_description, values, nulls),
											 event_description);
			call_as_owner(projection, NULL, event, replay->last.global_position);
			MemoryContextSwitchTo(caller_context);
			MemoryContextReset(event_context);
		}
		SPI_freetuptable(rows);
		passed = false;
		if (count == (uint64) wanted && replay->events - first == limit)
			replay->more = true;
		else if (!replay->more && count < (uint64) wanted && visible_only &&
				 (projection->event_types != NULL || projection->query != NULL))
		{
			/*
			 * Short, maybe at the end of its window only.  Passed before the
			 * first event handed to the handler only, so that the last one
			 * handed stays the replay's last (a failure's event); after it,
			 * the next turn looks.
			 */
			if (replay->events > first)
				replay->more = true;
			else if ((passed = pass_window(projection, &replay->last)) &&
					 deadline != 0 && worker_slice_ends(deadline))
				replay->more = true;
		}
	} while (!replay->more && (count == EVENTS_PER_READ || passed));
	MemoryContextDelete(event_context);
}

/* ------------------------------------------------------------------------
 * Administration
 * ------------------------------------------------------------------------
 */

/*
 * A handler must take exactly one eventsource.event (a reset handler no
 * argument), and the caller, who will own the projection, must be allowed
 * to execute it.  Locks the function until the transaction ends first, as
 * ALTER FUNCTION and DROP FUNCTION do (a command renaming it commits before,
 * and this then stores its new signature, or waits for this to commit, and
 * then finds this projection: follow_renamed_handlers).
 */
static void
check_handler(Oid function, int expected_arguments, const char *what, Oid caller)
{
	HeapTuple	tuple;
	Form_pg_proc procedure;
	bool		matches;
	bool		temporary;
	Oid			argument_type = event_type();
	char	   *problem;

	LockDatabaseObject(ProcedureRelationId, function, 0, AccessShareLock);
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s function %u does not exist", what, function)));
	procedure = (Form_pg_proc) GETSTRUCT(tuple);
	matches = procedure->prokind == PROKIND_FUNCTION && !procedure->proretset &&
		procedure->pronargs == expected_arguments &&
		(expected_arguments == 0 || procedure->proargtypes.values[0] == argument_type);
	temporary = isAnyTempNamespace(procedure->pronamespace);
	ReleaseSysCache(tuple);
	if (temporary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("%s %s is a temporary function", what, format_procedure(function)),
				 errdetail("A temporary function is dropped when its session ends, and a later session's could take its name."),
				 errhint("Create the handler in a permanent schema.")));
	if (!matches)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("%s %s has the wrong signature", what, format_procedure(function)),
				 errdetail(expected_arguments == 0 ?
						   "A reset handler is a function that takes no argument." :
						   "A handler is a function that takes one argument of type eventsource.event."),
				 errhint("Its return value is ignored: declare it RETURNS void.")));
	problem = function_rights_problem(function, format_procedure(function), caller,
									  GetUserNameFromId(caller, false));
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s %s", what, format_procedure(function)),
				 errdetail_internal("%s", problem),
				 errhint("Handlers run as the role that creates the projection.")));
}

/*
 * The search path a projection's handlers run with: the one given (by
 * default the creator's, as SET search_path FROM CURRENT would capture it)
 * resolved as it stands now, for owner: "$user" becomes the owner's schema,
 * and a schema that does not exist is left out, so that no one can put a
 * schema in front of the handler's tables later by creating it.  Temporary
 * schemas are moved to the end (pg_temp), so that the temporary tables of a
 * session that appends cannot capture a handler's unqualified names.
 */
static char *
handler_search_path(FunctionCallInfo fcinfo, int argno, Oid owner)
{
	char	   *given;
	List	   *schemas;
	ListCell   *cell;
	StringInfoData path;

	check_not_null(fcinfo, argno, "search_path");
	given = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (!SplitIdentifierString(pstrdup(given), ',', &schemas))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid search_path \"%s\"", given),
				 errdetail("A search path is a comma-separated list of schema names.")));
	initStringInfo(&path);
	foreach(cell, schemas)
	{
		const char *schema = lfirst(cell);

		if (strcmp(schema, "$user") == 0)
			schema = GetUserNameFromId(owner, false);
		if (strncmp(schema, "pg_temp", strlen("pg_temp")) == 0 || !OidIsValid(get_namespace_oid(schema, true)))
			continue;
		appendStringInfo(&path, "%s, ", quote_identifier(schema));
	}
	appendStringInfoString(&path, "pg_temp");
	return path.data;
}

/*
 * The handlers' signatures ($2, $3) go through json_populate_record, which
 * reads them as the columns' type: text since 0.7.0, regprocedure before.
 */
static KeptPlan projection_exists_plan = {
	"SELECT FROM eventsource.projections p WHERE p.name OPERATOR(pg_catalog.=) $1", 1, {TEXTOID}
};

#define CREATE_PROJECTION(query_column, query_value) \
	"INSERT INTO eventsource.projections" \
	" (name, handler, reset_handler, owner, event_types, category, mode, on_failure, max_attempts," \
	"  search_path" query_column ")" \
	" SELECT $1, h.handler, h.reset_handler, $4, $5, $6, $7, $8, $9, $10" query_value \
	"   FROM pg_catalog.json_populate_record(NULL::eventsource.projections," \
	"          pg_catalog.json_build_object('handler', $2, 'reset_handler', $3)) h" \
	" ON CONFLICT (name) DO NOTHING"

static KeptPlan create_projection_plan = {
	CREATE_PROJECTION(", query", ", $11"),
	11, {TEXTOID, TEXTOID, TEXTOID, REGROLEOID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTOID,
	INT4OID, TEXTOID, JSONBOID}
};

/* Before 0.8.0, projections have no query. */
static KeptPlan create_projection_0_6_plan = {
	CREATE_PROJECTION("", ""),
	10, {TEXTOID, TEXTOID, TEXTOID, REGROLEOID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTOID,
	INT4OID, TEXTOID}
};

/* Whether the log's trigger is wrong: enabled without a running inline projection, or the reverse. */
static KeptPlan inline_trigger_wrong_plan = {
	"SELECT EXISTS (SELECT FROM eventsource.projections p"
	"                WHERE p.mode OPERATOR(pg_catalog.=) 'inline'"
	"                  AND p.status OPERATOR(pg_catalog.=) 'running'),"
	"       (SELECT t.tgenabled OPERATOR(pg_catalog.<>) 'D' FROM pg_catalog.pg_trigger t"
	"         WHERE t.tgrelid OPERATOR(pg_catalog.=) 'eventsource.events'::pg_catalog.regclass"
	"           AND t.tgname OPERATOR(pg_catalog.=) 'events_inline_projections')",
	0, {InvalidOid}
};

static KeptPlan enable_trigger_plan = {
	"ALTER TABLE eventsource.events ENABLE TRIGGER events_inline_projections", 0, {InvalidOid}
};

static KeptPlan disable_trigger_plan = {
	"ALTER TABLE eventsource.events DISABLE TRIGGER events_inline_projections", 0, {InvalidOid}
};

/*
 * Set while the notifier records a failure of an async projection (its
 * status): that runs no user code, and changes no inline projection, so it
 * need not wait for the ordering lock held by an administrator's open
 * transaction.
 */
static bool recording_async_failure = false;

/*
 * Holds off appends until this transaction ends, after waiting for those in
 * flight, before an inline projection starts (create, resume) or replays
 * (rebuild): an append that committed before is in the past (which a rebuild
 * replays), and one that starts later runs its trigger after this commits,
 * reading the projections then, so none is left out.  A share lock on the
 * log, which conflicts with the appenders' row exclusive lock.
 */
static void
hold_off_appends(void)
{
	LockRelationOid(get_relname_relid("events", get_namespace_oid("eventsource", false)), ShareLock);
}

/*
 * Enables the log's inline projection trigger while a running inline
 * projection exists, and disables it otherwise (appends then pay nothing).
 * Run by the trigger on eventsource.projections, under the ordering lock, so
 * no other change commits until this one has: it decides from the latest
 * committed projections and its own changes (a fresh snapshot, also in
 * REPEATABLE READ and SERIALIZABLE), and whichever change commits last
 * leaves the trigger right.
 */
static void
synchronize_inline_trigger(void)
{
	bool		isnull;
	bool		wanted;
	bool		enabled;

	lock_projection_changes();
	(void) run_kept_plan_on_latest_snapshot(&inline_trigger_wrong_plan, NULL, NULL);
	wanted = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	enabled = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	/* Altering the trigger locks the log against appends: only when it must change. */
	if (wanted != enabled)
		run_kept_plan(wanted ? &enable_trigger_plan : &disable_trigger_plan, NULL, NULL, false);
}

/*
 * The trigger function on eventsource.projections: after any change to it
 * (including a restore), the log's trigger matches the projections.
 */
Datum
eventsource_synchronize_inline_projections(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "synchronize_inline_projections must be called as a trigger");
	/* The notifier's failure records change async projections, which leave the trigger as it is. */
	if (recording_async_failure)
		return PointerGetDatum(NULL);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	synchronize_inline_trigger();
	SPI_finish();
	return PointerGetDatum(NULL);
}

static void
raise_duplicate_projection(text *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("projection \"%s\" already exists", text_to_cstring(name))));
}

/*
 * eventsource.create_projection(name, handler, event_types, category, mode,
 * reset_handler, on_failure, max_attempts, search_path, query) returns void.
 * The caller owns the projection: its handlers run as the caller.  It takes
 * the events of its category, of its event types and matching its query
 * (each NULL: every event).  Before 0.6.0 the function (without search_path)
 * was SECURITY DEFINER, which hides the caller: that one refuses.  Before
 * 0.8.0 it has no query.
 */
Datum
eventsource_create_projection(PG_FUNCTION_ARGS)
{
	text	   *name = checked_object_name(fcinfo, 0, "projection");
	ArrayType  *event_types = checked_event_types(fcinfo, 2);
	bool		has_query = PG_NARGS() > 9;
	Jsonb	   *query = has_query ? checked_query(fcinfo, 9) : NULL;
	const char *mode;
	const char *on_failure;
	int32		max_attempts;
	ActingAsOwner acting;
	Datum		values[11];
	bool		nulls[11] = {false, false, false, false, false, false, false, false, false, false, false};

	if (PG_NARGS() < 9)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("create_projection needs eventsource 0.6.0 in this database"),
				 errdetail("Before 0.6.0, create_projection is SECURITY DEFINER, and the library cannot tell which role calls it: the one the projection's handlers would run as."),
				 errhint("Run ALTER EXTENSION eventsource UPDATE.")));
	act_as_function_owner(fcinfo, &acting);
	check_not_null(fcinfo, 1, "handler");
	check_handler(PG_GETARG_OID(1), 1, "handler", acting.caller);
	if (!PG_ARGISNULL(5))
		check_handler(PG_GETARG_OID(5), 0, "reset handler", acting.caller);
	mode = checked_choice(fcinfo, 4, "mode", "inline", "async");
	on_failure = checked_choice(fcinfo, 6, "on_failure", "stop", "dead_letter");
	max_attempts = checked_integer(fcinfo, 7, "max_attempts", 1, EVENTSOURCE_MAX_ATTEMPTS);

	values[0] = PointerGetDatum(name);
	values[1] = CStringGetTextDatum(format_procedure_qualified(PG_GETARG_OID(1)));
	values[2] = PG_ARGISNULL(5) ? (Datum) 0 : CStringGetTextDatum(format_procedure_qualified(PG_GETARG_OID(5)));
	nulls[2] = PG_ARGISNULL(5);
	values[3] = ObjectIdGetDatum(acting.caller);
	values[4] = PointerGetDatum(event_types);
	nulls[4] = event_types == NULL;
	values[5] = PG_ARGISNULL(3) ? (Datum) 0 : PointerGetDatum(checked_category(fcinfo, 3));
	nulls[5] = PG_ARGISNULL(3);
	values[6] = CStringGetTextDatum(mode);
	values[7] = CStringGetTextDatum(on_failure);
	values[8] = Int32GetDatum(max_attempts);
	values[9] = CStringGetTextDatum(handler_search_path(fcinfo, 8, acting.caller));
	values[10] = PointerGetDatum(query);
	nulls[10] = query == NULL;

	lock_projection_changes();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* A duplicate fails before it waits for the appends in flight. */
	if (run_kept_plan_on_latest_snapshot(&projection_exists_plan, values, NULL) > 0)
		raise_duplicate_projection(name);
	if (strcmp(mode, "inline") == 0)
		hold_off_appends();
	if (run_kept_plan(has_query ? &create_projection_plan : &create_projection_0_6_plan, values, nulls, false) == 0)
		raise_duplicate_projection(name);
	SPI_finish();
	stop_acting_as_owner(&acting);
	notifier_wake_at_commit();
	if (strcmp(mode, "async") == 0 && !notifier_serves_this_database())
		ereport(WARNING,
				(errmsg("async projection \"%s\" will not run until a notifier serves this database",
						text_to_cstring(name)),
				 errdetail("Async projections run in the notifier, a background worker."),
				 errhint("Add eventsource to shared_preload_libraries, and this database to eventsource.worker_databases if that lists databases.")));
	PG_RETURN_VOID();
}

static KeptPlan drop_projection_plan = {
	"DELETE FROM eventsource.projections p WHERE p.name OPERATOR(pg_catalog.=) $1", 1, {TEXTOID}
};

static KeptPlan set_status_plan = {
	"UPDATE eventsource.projections p"
	"   SET status = $2, attempts = 0, retry_at = NULL, updated_at = pg_catalog.now()"
	" WHERE p.name OPERATOR(pg_catalog.=) $1 RETURNING p.mode",
	2, {TEXTOID, TEXTOID}
};

static KeptPlan lock_projection_plan = {
	"SELECT p.* FROM eventsource.projections p WHERE p.name OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	1, {TEXTOID}
};

static void
raise_unknown_projection(text *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("projection \"%s\" does not exist", text_to_cstring(name))));
}

/*
 * The shared body of drop, pause and resume: one statement on the
 * projection (pause and resume return its mode); an inline projection that
 * resumes holds off appends.
 */
static Datum
change_projection(FunctionCallInfo fcinfo, KeptPlan *plan, const char *status)
{
	text	   *name = checked_object_name(fcinfo, 0, "projection");
	Datum		values[2] = {PointerGetDatum(name), status ? CStringGetTextDatum(status) : (Datum) 0};

	bool		starts = false;

	lock_projection_changes();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* Only a resume that starts an inline projection holds off appends (not one of a running one). */
	if (status != NULL && strcmp(status, "running") == 0 &&
		run_kept_plan(&lock_projection_plan, values, NULL, false) > 0)
		starts = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									 SPI_fnumber(SPI_tuptable->tupdesc, "status")), "running") != 0 &&
			strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								SPI_fnumber(SPI_tuptable->tupdesc, "mode")), "inline") == 0;
	if (run_kept_plan(plan, values, NULL, false) == 0)
		raise_unknown_projection(name);
	if (starts)
		hold_off_appends();
	SPI_finish();
	notifier_wake_at_commit();
	PG_RETURN_VOID();
}

Datum
eventsource_drop_projection(PG_FUNCTION_ARGS)
{
	return change_projection(fcinfo, &drop_projection_plan, NULL);
}

Datum
eventsource_pause_projection(PG_FUNCTION_ARGS)
{
	return change_projection(fcinfo, &set_status_plan, "paused");
}

Datum
eventsource_resume_projection(PG_FUNCTION_ARGS)
{
	return change_projection(fcinfo, &set_status_plan, "running");
}

static KeptPlan restart_projection_plan = {
	"UPDATE eventsource.projections p"
	"   SET checkpoint = NULL, events_processed = $2, attempts = 0, retry_at = NULL,"
	"       status = CASE WHEN p.status OPERATOR(pg_catalog.=) 'failed' THEN 'running' ELSE p.status END,"
	"       updated_at = pg_catalog.now()"
	" WHERE p.name OPERATOR(pg_catalog.=) $1",
	2, {TEXTOID, INT8OID}
};

/*
 * eventsource.rebuild_projection(name) returns bigint: the events replayed
 * (an inline projection) or 0 (an async one, replayed by the worker).
 */
Datum
eventsource_rebuild_projection(PG_FUNCTION_ARGS)
{
	text	   *name = checked_object_name(fcinfo, 0, "projection");
	Datum		key[2] = {PointerGetDatum(name), Int64GetDatum(0)};
	Projection *projection;
	int64		replayed = 0;

	lock_projection_changes();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * The row lock keeps the worker off the projection until this commits;
	 * in REPEATABLE READ or SERIALIZABLE, a batch the worker committed after
	 * this transaction's snapshot makes it a serialization failure.
	 */
	if (run_kept_plan(&lock_projection_plan, key, NULL, false) == 0)
		raise_unknown_projection(name);
	projection = projection_from_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc);

	/*
	 * An inline projection's read model holds the events committed so far,
	 * also those committed after this transaction's snapshot, whose rows the
	 * reset removes: a replay must see them, which a transaction snapshot
	 * (REPEATABLE READ, SERIALIZABLE) does not.
	 */
	if (projection->is_inline && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot rebuild inline projection \"%s\" in a %s transaction", projection->name,
						IsolationIsSerializable() ? "SERIALIZABLE" : "REPEATABLE READ"),
				 errdetail("The replay would not see the events committed after the transaction's snapshot, whose changes to the read model the reset handler removes."),
				 errhint("Rebuild it in a READ COMMITTED transaction.")));

	if (projection->reset_signature != NULL)
		require_owner_rights(projection, projection->reset_handler, projection->reset_signature);
	if (projection->is_inline)
		hold_off_appends();
	if (projection->reset_signature != NULL)
	{
		FmgrInfo	reset_info;

		fmgr_info(projection->reset_handler, &reset_info);
		call_as_owner(projection, &reset_info, (Datum) 0, 0);
	}

	if (projection->is_inline)
	{
		Replay		replay = {0, {0, 0}, false};

		replay_events(projection, false, event_descriptor(), PG_INT64_MAX, 0, &replay);
		replayed = replay.events;
	}
	key[1] = Int64GetDatum(replayed);
	run_kept_plan(&restart_projection_plan, key, NULL, false);
	SPI_finish();
	notifier_wake_at_commit();
	PG_RETURN_INT64(replayed);
}

/* ------------------------------------------------------------------------
 * Handlers renamed or moved
 * ------------------------------------------------------------------------
 */

/*
 * A function a command can rename or move, and a handler signature stored
 * for it: when the command changes the function's signature, the
 * projections storing that signature follow.
 */
typedef struct HandlerBefore
{
	Oid			function;
	char	   *canonical;		/* the function's signature before the command */
	char	   *stored;			/* as a projection stores it (canonical or not) */
} HandlerBefore;

/*
 * The handlers the command under way (in its transaction, lxid) targets, in
 * a memory context of their own (a child of the transaction's, NULL while
 * none is noted), emptied at the start and at the end of each such command:
 * the notes of a command that failed go at the next one's start.
 */
static List *handlers_before = NIL;
static MemoryContext handlers_before_context = NULL;
static LocalTransactionId handlers_before_transaction = InvalidLocalTransactionId;

/*
 * The projections whose handler or reset handler signature might name the
 * target ($1: the function's or schema's name; NULL: every projection),
 * found by the text alone (without looking the signatures up): a quoted
 * identifier holds its name, with its quotes doubled.
 */
static KeptPlan targeted_projections_plan = {
	"SELECT p.name, p.handler, p.reset_handler FROM eventsource.projections p"
	" WHERE $1 IS NULL"
	"    OR pg_catalog.strpos(pg_catalog.lower(p.handler), pg_catalog.lower($1)) OPERATOR(pg_catalog.>) 0"
	"    OR pg_catalog.strpos(pg_catalog.lower(p.reset_handler), pg_catalog.lower($1)) OPERATOR(pg_catalog.>) 0"
	"    OR pg_catalog.strpos(pg_catalog.lower(p.handler),"
	"                         pg_catalog.lower(pg_catalog.replace($1, '\"', '\"\"'))) OPERATOR(pg_catalog.>) 0"
	"    OR pg_catalog.strpos(pg_catalog.lower(p.reset_handler),"
	"                         pg_catalog.lower(pg_catalog.replace($1, '\"', '\"\"'))) OPERATOR(pg_catalog.>) 0",
	1, {TEXTOID}
};

/* Every projection storing the signature $1 as its handler or reset handler gets $2 instead. */
static KeptPlan follow_handler_plan = {
	"UPDATE eventsource.projections p"
	"   SET handler = CASE WHEN p.handler OPERATOR(pg_catalog.=) $1 THEN $2 ELSE p.handler END,"
	"       reset_handler = CASE WHEN p.reset_handler OPERATOR(pg_catalog.=) $1 THEN $2"
	"                            ELSE p.reset_handler END,"
	"       updated_at = pg_catalog.now()"
	" WHERE p.handler OPERATOR(pg_catalog.=) $1 OR p.reset_handler OPERATOR(pg_catalog.=) $1",
	2, {TEXTOID, TEXTOID}
};

/* What a command that can rename or move a function targets (at most one). */
typedef struct RenameTarget
{
	char	   *function_name;	/* functions of this name */
	char	   *schema_name;	/* the functions in this schema */
	Oid			extension;		/* the functions of this extension */
} RenameTarget;

/*
 * What the command (its parse tree, at ddl_command_start) can rename or
 * move, by name (the command's role resolves it on its own search path):
 * false when it renames or moves no function (ALTER FUNCTION ... OWNER TO,
 * SET, ALTER EXTENSION ... ADD, an unknown extension).
 */
static bool
rename_target(Node *command, RenameTarget *target)
{
	memset(target, 0, sizeof(RenameTarget));
	if (IsA(command, RenameStmt))
	{
		RenameStmt *rename = (RenameStmt *) command;

		if (rename->renameType == OBJECT_SCHEMA)
			target->schema_name = rename->subname;
		else if (rename->renameType == OBJECT_FUNCTION || rename->renameType == OBJECT_PROCEDURE ||
				 rename->renameType == OBJECT_ROUTINE)
			target->function_name = strVal(llast(castNode(ObjectWithArgs, rename->object)->objname));
	}
	else if (IsA(command, AlterObjectSchemaStmt))
	{
		AlterObjectSchemaStmt *move = (AlterObjectSchemaStmt *) command;

		if (move->objectType == OBJECT_EXTENSION)
			target->extension = get_extension_oid(strVal(move->object), true);
		else if (move->objectType == OBJECT_FUNCTION || move->objectType == OBJECT_PROCEDURE ||
				 move->objectType == OBJECT_ROUTINE)
			target->function_name = strVal(llast(castNode(ObjectWithArgs, move->object)->objname));
	}
	else if (IsA(command, AlterExtensionStmt))
		target->extension = get_extension_oid(((AlterExtensionStmt *) command)->extname, true);
	return target->function_name != NULL || target->schema_name != NULL || OidIsValid(target->extension);
}

/* Whether the function (valid) is one the command targets. */
static bool
is_targeted(Oid function, const RenameTarget *target)
{
	char	   *name;

	/*
	 * The function (one of those of the target's name, or a handler) may
	 * have been dropped by a transaction that committed since it was found:
	 * then the command does not move it.
	 */
	if (target->function_name != NULL)
	{
		name = get_func_name(function);
		return name != NULL && strcmp(name, target->function_name) == 0;
	}
	if (target->schema_name != NULL)
	{
		Oid			schema = get_func_namespace(function);

		name = OidIsValid(schema) ? get_namespace_name(schema) : NULL;
		return name != NULL && strcmp(name, target->schema_name) == 0;
	}
	return getExtensionOfObject(ProcedureRelationId, function) == target->extension;
}

/*
 * Notes that a stored signature (NULL: the function's own) names the
 * function (InvalidOid: nothing), when the command targets it.
 */
static void
note_handler_before(Oid function, const char *stored, const RenameTarget *target)
{
	MemoryContext caller_context;
	HandlerBefore *handler;

	if (!OidIsValid(function) || !is_targeted(function, target))
		return;
	if (handlers_before_context == NULL)
		handlers_before_context = AllocSetContextCreate(TopTransactionContext, "eventsource handlers before",
														ALLOCSET_SMALL_SIZES);
	caller_context = MemoryContextSwitchTo(handlers_before_context);
	handler = palloc(sizeof(HandlerBefore));
	handler->function = function;
	handler->canonical = format_procedure_qualified(function);
	handler->stored = stored ? pstrdup(stored) : handler->canonical;
	handlers_before = lappend(handlers_before, handler);
	MemoryContextSwitchTo(caller_context);
}

/*
 * Notes the handlers the command targets: the stored signatures that name
 * one (read by the text first, so that a command on no handler looks none
 * up), and, for a function's name, each function of that name by its
 * signature, which a projection created while the command waits for its
 * lock on the function also stores (create_projection locks it too).
 */
static void
note_handlers_before(const RenameTarget *target)
{
	Datum		name = (Datum) 0;
	bool		nulls[1] = {true};
	uint64		count;

	if (target->function_name != NULL || target->schema_name != NULL)
	{
		name = CStringGetTextDatum(target->function_name ? target->function_name : target->schema_name);
		nulls[0] = false;
	}
	count = run_kept_plan_on_latest_snapshot(&targeted_projections_plan, &name, nulls);
	for (uint64 i = 0; i < count; i++)
	{
		char	   *signature;
		Oid			function;

		function = handler_from_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, "handler", &signature);
		note_handler_before(function, signature, target);
		function = handler_from_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, "reset_handler", &signature);
		note_handler_before(function, signature, target);
	}
	if (target->function_name != NULL)
	{
		CatCList   *functions = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(target->function_name));

		for (int i = 0; i < functions->n_members; i++)
			note_handler_before(((Form_pg_proc) GETSTRUCT(&functions->members[i]->tuple))->oid, NULL, target);
		ReleaseSysCacheList(functions);
	}
}

/* Forgets the notes of the command before, if this transaction made them. */
static void
forget_handlers_before(void)
{
	if (handlers_before_transaction == MyProc->lxid && handlers_before_context != NULL)
		MemoryContextDelete(handlers_before_context);
	handlers_before = NIL;
	handlers_before_context = NULL;
	handlers_before_transaction = InvalidLocalTransactionId;
}

/*
 * The event trigger on the commands that can rename or move a function
 * (ALTER FUNCTION, ALTER ROUTINE, ALTER SCHEMA, ALTER EXTENSION), at their
 * start and end: at the start it notes the function each stored handler
 * signature names, of those the command targets (by name: a function of the
 * name it renames or moves, a function in the schema it renames, a member
 * of the extension it moves or updates), at the end it stores the new
 * signature of each of those functions that got one, so that a projection
 * follows its handler as it did when it stored the OID (before 0.7.0).  A
 * command that targets no handler reads no signature and notes nothing.
 * SECURITY DEFINER: the command's role need not read the projections.
 * Nothing is kept beyond the command, so no OID outlives a dump, restore or
 * pg_upgrade.
 */
Datum
eventsource_follow_renamed_handlers(PG_FUNCTION_ARGS)
{
	EventTriggerData *event = (EventTriggerData *) fcinfo->context;
	Oid			schema = get_namespace_oid("eventsource", true);
	Oid			projections = OidIsValid(schema) ? get_relname_relid("projections", schema) : InvalidOid;
	RenameTarget target;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "follow_renamed_handlers must be called as an event trigger");
	if (strcmp(event->event, "ddl_command_start") == 0)
	{
		forget_handlers_before();
		if (!OidIsValid(projections) || !rename_target(event->parsetree, &target))
			PG_RETURN_VOID();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		handlers_before_transaction = MyProc->lxid;
		note_handlers_before(&target);
		SPI_finish();
	}
	else if (handlers_before_transaction == MyProc->lxid && handlers_before != NIL)
	{
		ListCell   *cell;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		foreach(cell, handlers_before)
		{
			HandlerBefore *handler = lfirst(cell);
			char	   *now;
			Datum		values[2];

			if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(handler->function)))
				continue;
			/* Only a handler the command moved: a stored signature it did not move stays as it is. */
			now = format_procedure_qualified(handler->function);
			if (strcmp(now, handler->canonical) == 0)
				continue;
			values[0] = CStringGetTextDatum(handler->stored);
			values[1] = CStringGetTextDatum(now);
			(void) run_kept_plan_on_latest_snapshot(&follow_handler_plan, values, NULL);
		}
		SPI_finish();
		forget_handlers_before();
	}
	else
		forget_handlers_before();
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Async projections, run by the worker (notifier.c)
 * ------------------------------------------------------------------------
 */

/*
 * The running async projections, in name order, with their checkpoints and
 * the milliseconds until the retry of those waiting for one (NULL, or not
 * above 0: due now).
 */
static KeptPlan async_projections_plan = {
	"SELECT p.name, p.checkpoint,"
	"       pg_catalog.ceil(EXTRACT(epoch FROM p.retry_at OPERATOR(pg_catalog.-) pg_catalog.now())"
	"                       OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8"
	"  FROM eventsource.projections p"
	" WHERE p.mode OPERATOR(pg_catalog.=) 'async' AND p.status OPERATOR(pg_catalog.=) 'running'"
	" ORDER BY p.name",
	0, {InvalidOid}
};

/* The async projection $1 while it is running and due, locked unless an administrator holds it. */
static KeptPlan due_projection_plan = {
	"SELECT p.* FROM eventsource.projections p"
	" WHERE p.name OPERATOR(pg_catalog.=) $1"
	"   AND p.mode OPERATOR(pg_catalog.=) 'async' AND p.status OPERATOR(pg_catalog.=) 'running'"
	"   AND (p.retry_at IS NULL OR p.retry_at OPERATOR(pg_catalog.<=) pg_catalog.now())"
	" FOR UPDATE SKIP LOCKED",
	1, {TEXTOID}
};

static KeptPlan advance_plan = {
	"UPDATE eventsource.projections p"
	"   SET checkpoint = eventsource.checkpoint($2, $3),"
	"       events_processed = p.events_processed OPERATOR(pg_catalog.+) $4,"
	"       attempts = 0, retry_at = NULL, updated_at = pg_catalog.now()"
	" WHERE p.name OPERATOR(pg_catalog.=) $1",
	4, {TEXTOID, XID8OID, INT8OID, INT8OID}
};

static KeptPlan failure_plan = {
	"UPDATE eventsource.projections p"
	"   SET attempts = $2,"
	"       retry_at = pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $3),"
	"       status = $4, last_error = $5, last_error_at = pg_catalog.now(),"
	"       last_error_position = $6, updated_at = pg_catalog.now()"
	" WHERE p.name OPERATOR(pg_catalog.=) $1",
	6, {TEXTOID, INT4OID, FLOAT8OID, TEXTOID, TEXTOID, INT8OID}
};

static KeptPlan dead_letter_plan = {
	"INSERT INTO eventsource.projection_dead_letters (projection_name, global_position, error, attempts)"
	" VALUES ($1, $2, $3, $4)"
	" ON CONFLICT (projection_name, global_position) DO UPDATE SET error = excluded.error,"
	"   attempts = excluded.attempts, failed_at = excluded.failed_at",
	4, {TEXTOID, INT8OID, TEXTOID, INT4OID}
};

/* Records that count events, through after, were projected. */
static void
record_progress(const Projection *projection, Checkpoint after, uint64 count)
{
	Datum		values[4];

	values[0] = CStringGetTextDatum(projection->name);
	values[1] = FullTransactionIdGetDatum(FullTransactionIdFromU64(after.transaction_id));
	values[2] = Int64GetDatum(after.global_position);
	values[3] = Int64GetDatum((int64) count);
	run_kept_plan(&advance_plan, values, NULL, false);
}

/*
 * Records a failure of the projection: its attempts-th on the event at
 * failed_position (NULL when no event failed), to be retried after
 * delay_ms, or with the projection stopped as failed.
 */
static void
record_failure_state(const Projection *projection, int attempts, long delay_ms, bool stopped,
					 const char *message, const int64 *failed_position)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	values[0] = CStringGetTextDatum(projection->name);
	values[1] = Int32GetDatum(attempts);
	values[2] = Float8GetDatum(delay_ms / 1000.0);
	values[3] = CStringGetTextDatum(stopped ? "failed" : "running");
	values[4] = CStringGetTextDatum(message);
	values[5] = failed_position ? Int64GetDatum(*failed_position) : (Datum) 0;
	nulls[5] = failed_position == NULL;
	recording_async_failure = true;
	PG_TRY();
	{
		run_kept_plan(&failure_plan, values, nulls, false);
	}
	PG_FINALLY();
	{
		recording_async_failure = false;
	}
	PG_END_TRY();
}

/*
 * Records the attempts-th failure of the event failed (NULL: the
 * projection's next event, which the failing work did not reach): a retry
 * after a growing delay; once max_attempts is reached, the projection stops
 * as failed, or the event becomes a dead letter and is skipped.
 */
static void
record_failure(const Projection *projection, const Checkpoint *failed_event, int attempts,
			   const ErrorData *error)
{
	Checkpoint	failed = projection->checkpoint;
	bool		exhausted = attempts >= projection->max_attempts;
	long		delay_ms = Min((long) FIRST_RETRY_MS << Min(attempts - 1, 20), LONGEST_RETRY_MS);

	if (failed_event != NULL)
		failed = *failed_event;
	else if (read_projection_events(projection, &projection->checkpoint, 1, true, PG_INT32_MAX) > 0)
	{
		bool		isnull;

		failed = *(Checkpoint *) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
															   SPI_tuptable->tupdesc->natts, &isnull));
	}

	ereport(LOG,
			(errmsg("projection \"%s\" failed on the event at global position " INT64_FORMAT " (attempt %d of %d): %s",
					projection->name, failed.global_position, attempts, projection->max_attempts,
					error->message)));

	record_failure_state(projection, exhausted ? 0 : attempts, delay_ms,
						 exhausted && !projection->dead_letter, error->message, &failed.global_position);

	if (exhausted && projection->dead_letter)
	{
		Datum		letter[4] = {CStringGetTextDatum(projection->name), Int64GetDatum(failed.global_position),
		CStringGetTextDatum(error->message), Int32GetDatum(attempts)};

		run_kept_plan(&dead_letter_plan, letter, NULL, false);
		record_progress(projection, failed, 0);
	}
}

/*
 * What the worker keeps of an async projection between its turns, for its
 * lifetime: how many events, after a transaction of several that failed, it
 * still projects one per transaction (so that the one that fails, at its
 * handler or at its commit, is known); when its last turn found nothing more
 * to do, the log's visible head then and its checkpoint, so that it takes no
 * turn until one of them moves; when its checkpoint last went past the
 * events its filter skips; and, after failures that could not be recorded
 * in its row (which then says nothing of them), how many in a row and until
 * when it rests.
 */
typedef struct ProjectionState
{
	char		name[EVENTSOURCE_MAX_NAME_BYTES + 1];	/* the hash key */
	uint64		listed;			/* the listing that last saw it running */
	int64		events_alone;
	bool		caught_up;
	Checkpoint	caught_up_head;
	Checkpoint	caught_up_checkpoint;
	TimestampTz passed_at;		/* when its checkpoint last went past skipped events */
	int			unrecorded_failures;
	TimestampTz resting_until;
} ProjectionState;

static HTAB *projection_states = NULL;
static uint64 listings = 0;

/* A caught-up projection's checkpoint goes past the events its filter skips at most this often. */
#define PASSING_INTERVAL_MS 1000

/* The projection whose turn came last: the next slice starts after it. */
static char last_turn[EVENTSOURCE_MAX_NAME_BYTES + 1] = "";

/* A turn of an async projection, in the worker's round memory: what a failure needs to know. */
typedef struct ProjectionTurn
{
	bool		locked;			/* it read the projection's row: the work is the projection's */
	Checkpoint	start;			/* the projection's checkpoint then */
	Replay		replay;
} ProjectionTurn;

/*
 * A turn of the projection, in a transaction of its own: its events after
 * its checkpoint until the slice ends (one at least; only one while it retries
 * a failing event or finds one), with its new checkpoint, committed.  A
 * projection whose owner lost the rights to run its handler stops as failed
 * at once.  Returns true when it may have more to do at once.
 */
static bool
take_turn(ProjectionState *state, Checkpoint head, TimestampTz deadline, ProjectionTurn *turn)
{
	Datum		name = CStringGetTextDatum(state->name);
	bool		served = worker_start_transaction(psprintf("eventsource notifier: async projection \"%s\"",
														   state->name));
	Projection *projection;
	char	   *problem;
	Checkpoint	reached;

	if (!served || run_kept_plan(&due_projection_plan, &name, NULL, false) == 0)
	{
		worker_commit_transaction();
		state->caught_up = false;
		return false;
	}
	projection = projection_from_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	turn->locked = true;
	turn->start = turn->replay.last = reached = projection->checkpoint;
	problem = owner_rights_problem(projection, projection->handler, projection->handler_signature);
	if (problem != NULL)
	{
		char	   *message = psprintf("permission denied to run projection \"%s\": %s",
									   projection->name, problem);

		ereport(LOG, (errmsg("%s", message)));
		record_failure_state(projection, projection->attempts, 0, true, message, NULL);
	}
	else
	{
		replay_events(projection, true, event_descriptor(),
					  projection->attempts > 0 || state->events_alone > 0 ? 1 : PG_INT64_MAX,
					  deadline, &turn->replay);
		reached = turn->replay.last;

		/*
		 * Caught up: the projection has projected every visible event it
		 * wants, and passed the others, up to the head of the gap-safe log
		 * (of this snapshot).  Its checkpoint goes there (once a second at
		 * most, a write of its row), so that its turns do not read again and
		 * again the events its filter skips: a projection of rare event
		 * types would read the whole log since its last event at each turn.
		 */
		if (!turn->replay.more &&
			TimestampDifferenceExceeds(state->passed_at, GetCurrentTimestamp(), PASSING_INTERVAL_MS))
		{
			Checkpoint	visible = visible_head();

			if (compare_checkpoints(&visible, &reached) > 0)
			{
				reached = visible;
				state->passed_at = GetCurrentTimestamp();
			}
		}
		if (compare_checkpoints(&reached, &turn->start) != 0)
			record_progress(projection, reached, turn->replay.events);
		/* Only passing skipped events: lost in a crash, they are read again. */
		if (turn->replay.events == 0)
			worker_commit_without_flush();
	}
	worker_commit_transaction();

	state->events_alone = Max(state->events_alone - turn->replay.events, 0);
	state->caught_up = problem == NULL && !turn->replay.more;
	state->caught_up_head = head;
	state->caught_up_checkpoint = reached;
	return turn->replay.more;
}

/*
 * Records the failure error of the turn of one event (or none), in a
 * transaction of its own, as a failure of the projection on that event, if
 * the projection is still where the turn found it.
 */
static void
record_failed_turn(ProjectionState *state, const ProjectionTurn *turn, const ErrorData *error)
{
	Datum		name = CStringGetTextDatum(state->name);

	if (worker_start_transaction(psprintf("eventsource notifier: recording a failure of async projection \"%s\"",
										  state->name)) &&
		run_kept_plan(&due_projection_plan, &name, NULL, false) > 0)
	{
		Projection *projection = projection_from_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc);

		if (compare_checkpoints(&projection->checkpoint, &turn->start) == 0)
			record_failure(projection, turn->replay.events > 0 ? &turn->replay.last : NULL,
						   projection->attempts + 1, error);
	}
	worker_commit_transaction();
}

/*
 * After a turn that failed (everything it did undone): a transaction of
 * several events is tried again one event per transaction, at once; the
 * failure of one event is recorded (record_failed_turn).  When that fails
 * too (a lock_timeout, a serialization failure), the failure is logged and
 * the projection rests in the worker's memory instead, its first rest
 * FIRST_RETRY_MS, doubling up to LONGEST_RETRY_MS, as a recorded failure's
 * retry would; the other projections go on.  An error before the turn read
 * the projection is the job's own: it is raised again (notifier.c's
 * run_job_slice handles it).  Returns true when the projection has more to
 * do at once.
 */
static bool
after_failed_turn(ProjectionState *state, const ProjectionTurn *turn, ErrorData *error)
{
	ErrorData  *volatile recording_error = NULL;

	if (!turn->locked)
		ReThrowError(error);
	state->caught_up = false;
	if (turn->replay.events > 1)
	{
		ereport(LOG,
				(errmsg("projection \"%s\" failed in a transaction of " INT64_FORMAT " events: %s",
						state->name, turn->replay.events, error->message),
				 errdetail("They are tried again one per transaction, to find the event that fails.")));
		state->events_alone = turn->replay.events;
		return true;
	}
	state->events_alone = 0;
	PG_TRY();
	{
		record_failed_turn(state, turn, error);
	}
	PG_CATCH();
	{
		recording_error = worker_catch_error();
	}
	PG_END_TRY();
	if (recording_error == NULL)
	{
		state->unrecorded_failures = 0;
		return false;
	}
	state->unrecorded_failures++;
	state->resting_until =
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
									Min((long) FIRST_RETRY_MS << Min(state->unrecorded_failures - 1, 20),
										LONGEST_RETRY_MS));
	ereport(LOG,
			(errmsg("could not record the failure of async projection \"%s\": %s",
					state->name, recording_error->message),
			 errdetail_internal("The turn failed: %s", error->message)));
	return false;
}

/*
 * A turn of the projection: its work, committed; or, when anything in it
 * fails (its handler, the worker's own statements after it, the commit: a
 * deferred trigger, a serialization failure), undone and handled as that
 * projection's failure.
 */
static bool
take_turn_or_fail(ProjectionState *state, Checkpoint head, TimestampTz deadline)
{
	ProjectionTurn *turn = palloc0(sizeof(ProjectionTurn));
	ErrorData  *volatile error = NULL;
	bool		more = false;

	PG_TRY();
	{
		more = take_turn(state, head, deadline, turn);
	}
	PG_CATCH();
	{
		error = worker_catch_error();
	}
	PG_END_TRY();
	if (error != NULL)
		more = after_failed_turn(state, turn, error);
	return more;
}

/*
 * The projections due for a turn, into *due (ProjectionState pointers in
 * name order), and the log's visible head, in a transaction of their own;
 * returns the milliseconds until the first retry of one waiting for it (-1:
 * none).  A projection that found nothing more to do at its last turn is not
 * due while the head and its checkpoint stay where they were.  Forgets the
 * projections no longer running.
 */
static long
list_due_projections(List **due, Checkpoint *head)
{
	MemoryContext round_memory = CurrentMemoryContext;
	long		retry_ms = -1;
	Oid			schema;
	HASH_SEQ_STATUS scan;
	ProjectionState *state;

	if (projection_states == NULL)
	{
		HASHCTL		control;

		control.keysize = EVENTSOURCE_MAX_NAME_BYTES + 1;
		control.entrysize = sizeof(ProjectionState);
		projection_states = hash_create("eventsource async projections", 16, &control,
										HASH_ELEM | HASH_STRINGS);
	}
	listings++;
	*due = NIL;

	/* Only the installed extension, in a schema no other role can change; before 0.4.0 it has no projections. */
	schema = worker_start_transaction("eventsource notifier: listing async projections") ?
		get_namespace_oid("eventsource", true) : InvalidOid;
	if (OidIsValid(schema) && OidIsValid(get_relname_relid("projections", schema)))
	{
		uint64		count = run_kept_plan(&async_projections_plan, NULL, NULL, true);
		SPITupleTable *rows = SPI_tuptable;

		*head = visible_head();
		for (uint64 i = 0; i < count; i++)
		{
			char	   *name = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
			Checkpoint	checkpoint = {0, 0};
			bool		isnull;
			Datum		value = SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull);
			int64		retry_in;
			bool		found;

			if (!isnull)
				checkpoint = *(Checkpoint *) DatumGetPointer(value);
			state = hash_search(projection_states, name, HASH_ENTER, &found);
			if (!found)
			{
				state->events_alone = 0;
				state->caught_up = false;
				state->passed_at = 0;
				state->unrecorded_failures = 0;
				state->resting_until = 0;
			}
			state->listed = listings;
			retry_in = DatumGetInt64(SPI_getbinval(rows->vals[i], rows->tupdesc, 3, &isnull));
			/* Its recorded retry, or its rest after failures that could not be recorded. */
			retry_in = Max(isnull ? 0 : retry_in, (state->resting_until - GetCurrentTimestamp() + 999) / 1000);
			if (retry_in > 0)
				retry_ms = retry_ms < 0 ? retry_in : Min(retry_ms, retry_in);
			else if (!state->caught_up || compare_checkpoints(&state->caught_up_head, head) != 0 ||
					 compare_checkpoints(&state->caught_up_checkpoint, &checkpoint) != 0)
			{
				MemoryContext transaction_memory = MemoryContextSwitchTo(round_memory);

				*due = lappend(*due, state);
				MemoryContextSwitchTo(transaction_memory);
			}
		}
	}
	worker_commit_transaction();

	hash_seq_init(&scan, projection_states);
	while ((state = hash_seq_search(&scan)) != NULL)
		if (state->listed != listings)
			(void) hash_search(projection_states, state->name, HASH_REMOVE, NULL);
	return retry_ms;
}

/*
 * The async projections job: turns of the projections due, each in a
 * transaction of its own, until the slice ends, starting after the one whose
 * turn came last.  Returns 0 when one may have more to do at once, else the
 * milliseconds until the next retry is due (-1: none).
 */
long
run_async_projections(TimestampTz deadline)
{
	List	   *due;
	Checkpoint	head = {0, 0};
	long		retry_ms = list_due_projections(&due, &head);
	int			count = list_length(due);
	int			first = 0;
	bool		more = false;

	/* Round robin: the first due after the one whose turn came last. */
	while (first < count && strcmp(((ProjectionState *) list_nth(due, first))->name, last_turn) <= 0)
		first++;
	for (int i = 0; i < count; i++)
	{
		ProjectionState *state = list_nth(due, (first + i) % count);

		if (i > 0 && worker_slice_ends(deadline))
		{
			more = true;
			break;
		}
		more |= take_turn_or_fail(state, head, deadline);
		strlcpy(last_turn, state->name, sizeof(last_turn));
	}
	return more ? 0 : retry_ms;
}
