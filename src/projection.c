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
 * out of step with the log.
 *
 * Async projections run in the notifier's background worker: batches from
 * the gap-safe log after the projection's checkpoint, the handler's work
 * and the new checkpoint committed together (exactly-once effect).  A batch
 * that fails is retried one event at a time with a growing delay; after
 * max_attempts failures of one event the projection stops as failed, or,
 * with on_failure = 'dead_letter', records the event and goes on.
 *
 * Handlers run as the role that created the projection, never as the
 * extension's owner, with search_path pg_catalog, pg_temp.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_type.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/xid8.h"

#include "eventsource.h"

PG_FUNCTION_INFO_V1(eventsource_run_inline_projections);
PG_FUNCTION_INFO_V1(eventsource_synchronize_inline_projections);
PG_FUNCTION_INFO_V1(eventsource_create_projection);
PG_FUNCTION_INFO_V1(eventsource_drop_projection);
PG_FUNCTION_INFO_V1(eventsource_pause_projection);
PG_FUNCTION_INFO_V1(eventsource_resume_projection);
PG_FUNCTION_INFO_V1(eventsource_rebuild_projection);

#define MAX_ATTEMPTS_LIMIT			100
/* Events an async projection handles in one transaction. */
#define ASYNC_BATCH					500
/* The first retry of a failing event waits this long, doubling up to a minute. */
#define FIRST_RETRY_MS				100
#define LONGEST_RETRY_MS			60000

/* A projection, as the functions here need it. */
typedef struct Projection
{
	char	   *name;
	Oid			handler;
	Oid			owner;
	ArrayType  *event_types;	/* NULL: every type */
	char	   *category;		/* NULL: every category */
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
 * Calls a function of a projection as the projection's owner: its handler
 * with an event (flinfo NULL), or the reset handler flinfo with no argument
 * (event (Datum) 0).
 */
static void
call_as_owner(Projection *projection, FmgrInfo *flinfo, Datum event, int64 global_position)
{
	Oid			saved_user;
	int			saved_security_context;
	HandlerCall call = {projection, global_position};
	ErrorContextCallback context = {error_context_stack, handler_call_context, &call};
	LOCAL_FCINFO(call_info, 1);

	if (flinfo == NULL)
	{
		if (!projection->handler_info_ready)
		{
			fmgr_info(projection->handler, &projection->handler_info);
			projection->handler_info_ready = true;
		}
		flinfo = &projection->handler_info;
	}
	InitFunctionCallInfoData(*call_info, flinfo, event == (Datum) 0 ? 0 : 1, InvalidOid, NULL, NULL);
	call_info->args[0].value = event;
	call_info->args[0].isnull = false;

	GetUserIdAndSecContext(&saved_user, &saved_security_context);
	SetUserIdAndSecContext(projection->owner, saved_security_context | SECURITY_LOCAL_USERID_CHANGE);
	error_context_stack = &context;
	/* The result (void, or anything) is ignored. */
	(void) FunctionCallInvoke(call_info);
	error_context_stack = context.previous;
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
 * Whether an event (its stream id and type) is one the projection wants.
 */
static bool
projection_wants(const Projection *projection, text *stream_id, text *event_type)
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
	return true;
}

/* Reads a projection from the columns name, handler, owner, event_types, category of a row. */
static Projection *
projection_from_row(HeapTuple row, TupleDesc description)
{
	Projection *projection = palloc0(sizeof(Projection));
	bool		isnull;
	Datum		value;

	projection->name = SPI_getvalue(row, description, 1);
	projection->handler = DatumGetObjectId(SPI_getbinval(row, description, 2, &isnull));
	projection->owner = DatumGetObjectId(SPI_getbinval(row, description, 3, &isnull));
	value = SPI_getbinval(row, description, 4, &isnull);
	if (!isnull)
		projection->event_types = DatumGetArrayTypePCopy(value);
	value = SPI_getbinval(row, description, 5, &isnull);
	if (!isnull)
		projection->category = TextDatumGetCString(value);
	return projection;
}

#define PROJECTION_COLUMNS "p.name, p.handler::oid, p.owner::oid, p.event_types, p.category"

/* ------------------------------------------------------------------------
 * Inline projections
 * ------------------------------------------------------------------------
 */

static KeptPlan inline_projections_plan = {
	"SELECT " PROJECTION_COLUMNS " FROM eventsource.projections p"
	" WHERE p.mode = 'inline' AND p.status = 'running' ORDER BY p.name",
	0, {InvalidOid}
};

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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	projection_count = run_kept_plan(&inline_projections_plan, NULL, NULL, false);
	projections = palloc(Max(projection_count, 1) * sizeof(Projection *));
	for (uint64 i = 0; i < projection_count; i++)
		projections[i] = projection_from_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);

	log_description = RelationGetDescr(trigger->tg_relation);
	event_description = event_descriptor();
	slot = MakeSingleTupleTableSlot(log_description, &TTSOpsMinimalTuple);

	/* The rows of one append statement are one stream's events, in version order. */
	while (tuplestore_gettupleslot(trigger->tg_newtable, true, false, slot))
	{
		Datum		values[10];
		bool		nulls[10];
		Checkpoint *checkpoint = palloc(sizeof(Checkpoint));
		Datum		event;

		slot_getallattrs(slot);
		for (int column = 0; column < 9; column++)
		{
			values[column] = slot->tts_values[column];
			nulls[column] = slot->tts_isnull[column];
		}
		checkpoint->global_position = DatumGetInt64(values[0]);
		checkpoint->transaction_id = U64FromFullTransactionId(DatumGetFullTransactionId(values[1]));
		values[9] = PointerGetDatum(checkpoint);
		nulls[9] = false;
		event = heap_copy_tuple_as_datum(heap_form_tuple(event_description, values, nulls),
										 event_description);

		for (uint64 i = 0; i < projection_count; i++)
		{
			if (!projection_wants(projections[i], DatumGetTextPP(values[2]), DatumGetTextPP(values[5])))
				continue;
			call_as_owner(projections[i], NULL, event, checkpoint->global_position);
		}
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
 * types, $5 category.  visible_only: below the gap-safe horizon (async), or
 * every event this snapshot sees (an inline rebuild, which must not miss the
 * events an older running transaction holds back: their triggers ran before
 * the reset).
 */
#define REPLAY_ORDER \
	"   AND ($5::text IS NULL OR pg_catalog.split_part(e.stream_id, '-', 1) = $5)" \
	" ORDER BY e.transaction_id, e.global_position LIMIT $3"

static KeptPlan replay_visible_plan = {
	EVENT_COLUMNS LOG_CONDITIONS REPLAY_ORDER,
	5, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID}
};

static KeptPlan replay_all_plan = {
	EVENT_COLUMNS
	" WHERE (e.transaction_id, e.global_position) > ($1, $2)"
	"   AND ($4::text[] IS NULL OR e.event_type = ANY ($4))"
	REPLAY_ORDER,
	5, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID}
};

/*
 * Reads up to limit of the projection's events after `after` into
 * SPI_tuptable (eventsource.event rows) and returns how many.
 */
static uint64
read_projection_events(const Projection *projection, const Checkpoint *after, int limit, bool visible_only)
{
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(after->transaction_id));
	values[1] = Int64GetDatum(after->global_position);
	values[2] = Int32GetDatum(limit);
	values[3] = PointerGetDatum(projection->event_types);
	nulls[3] = projection->event_types ? ' ' : 'n';
	values[4] = projection->category ? CStringGetTextDatum(projection->category) : (Datum) 0;
	nulls[4] = projection->category ? ' ' : 'n';
	return run_kept_plan(visible_only ? &replay_visible_plan : &replay_all_plan, values, nulls, false);
}

/*
 * Feeds up to limit events after *after to the handler; advances *after to
 * the last one handled and returns how many.  Connected to SPI.
 */
static uint64
replay_batch(Projection *projection, Checkpoint *after, int limit, bool visible_only,
			 TupleDesc event_description)
{
	uint64		count = read_projection_events(projection, after, limit, visible_only);
	SPITupleTable *rows;

	rows = SPI_tuptable;
	for (uint64 i = 0; i < count; i++)
	{
		HeapTuple	row = rows->vals[i];
		Checkpoint *checkpoint;
		bool		isnull;
		Datum		event;

		/* The SPI row has eventsource.event's columns: give it the type. */
		event = heap_copy_tuple_as_datum(row, event_description);
		checkpoint = (Checkpoint *) DatumGetPointer(SPI_getbinval(row, rows->tupdesc, rows->tupdesc->natts, &isnull));
		call_as_owner(projection, NULL, event, checkpoint->global_position);
		*after = *checkpoint;
	}
	return count;
}

/* ------------------------------------------------------------------------
 * Administration
 * ------------------------------------------------------------------------
 */

/*
 * A handler must take exactly one eventsource.event (a reset handler no
 * argument), and the caller must be allowed to execute it.
 */
static void
check_handler(Oid function, int expected_arguments, const char *what)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	Form_pg_proc procedure;
	bool		matches;
	Oid			argument_type = event_type();

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s function %u does not exist", what, function)));
	procedure = (Form_pg_proc) GETSTRUCT(tuple);
	matches = procedure->prokind == PROKIND_FUNCTION && !procedure->proretset &&
		procedure->pronargs == expected_arguments &&
		(expected_arguments == 0 || procedure->proargtypes.values[0] == argument_type);
	ReleaseSysCache(tuple);
	if (!matches)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("%s %s has the wrong signature", what, format_procedure(function)),
				 errdetail(expected_arguments == 0 ?
						   "A reset handler is a function that takes no argument." :
						   "A handler is a function that takes one argument of type eventsource.event."),
				 errhint("Its return value is ignored: declare it RETURNS void.")));
	if (pg_proc_aclcheck(function, GetOuterUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s %s", what, format_procedure(function)),
				 errdetail("Handlers run as the role that creates the projection.")));
}

static const char *
checked_choice(FunctionCallInfo fcinfo, int argno, const char *name, const char *first, const char *second)
{
	char	   *value;

	check_not_null(fcinfo, argno, name);
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(value, first) != 0 && strcmp(value, second) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s \"%s\"", name, value),
				 errhint("Use '%s' or '%s'.", first, second)));
	return value;
}

static KeptPlan create_projection_plan = {
	"INSERT INTO eventsource.projections"
	" (name, handler, reset_handler, owner, event_types, category, mode, on_failure, max_attempts)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING",
	9, {TEXTOID, REGPROCEDUREOID, REGPROCEDUREOID, REGROLEOID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTOID, INT4OID}
};

/* Whether the log's trigger is wrong: enabled without a running inline projection, or the reverse. */
static KeptPlan inline_trigger_wrong_plan = {
	"SELECT EXISTS (SELECT FROM eventsource.projections p WHERE p.mode = 'inline' AND p.status = 'running'),"
	"       (SELECT t.tgenabled <> 'D' FROM pg_catalog.pg_trigger t"
	"         WHERE t.tgrelid = 'eventsource.events'::pg_catalog.regclass"
	"           AND t.tgname = 'events_inline_projections')",
	0, {InvalidOid}
};

static KeptPlan enable_trigger_plan = {
	"ALTER TABLE eventsource.events ENABLE TRIGGER events_inline_projections", 0, {InvalidOid}
};

static KeptPlan disable_trigger_plan = {
	"ALTER TABLE eventsource.events DISABLE TRIGGER events_inline_projections", 0, {InvalidOid}
};

/*
 * Enables the log's inline projection trigger while a running inline
 * projection exists, and disables it otherwise (appends then pay nothing).
 * Run by the trigger on eventsource.projections.
 */
static void
synchronize_inline_trigger(void)
{
	bool		isnull;
	bool		wanted;
	bool		enabled;

	run_kept_plan(&inline_trigger_wrong_plan, NULL, NULL, false);
	wanted = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	enabled = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	/* Altering the trigger locks the log against appends: only when it must change. */
	if (wanted != enabled &&
		SPI_execute(wanted ? enable_trigger_plan.sql : disable_trigger_plan.sql, false, 0) < 0)
		elog(ERROR, "could not change the inline projection trigger");
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
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	synchronize_inline_trigger();
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * eventsource.create_projection(name, handler, event_types, category, mode,
 * reset_handler, on_failure, max_attempts) returns void.
 */
Datum
eventsource_create_projection(PG_FUNCTION_ARGS)
{
	text	   *name = checked_object_name(fcinfo, 0, "projection");
	ArrayType  *event_types = checked_event_types(fcinfo, 2);
	const char *mode;
	const char *on_failure;
	int32		max_attempts;
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	check_not_null(fcinfo, 1, "handler");
	check_handler(PG_GETARG_OID(1), 1, "handler");
	if (!PG_ARGISNULL(5))
		check_handler(PG_GETARG_OID(5), 0, "reset handler");
	mode = checked_choice(fcinfo, 4, "mode", "inline", "async");
	on_failure = checked_choice(fcinfo, 6, "on_failure", "stop", "dead_letter");
	max_attempts = checked_integer(fcinfo, 7, "max_attempts", 1, MAX_ATTEMPTS_LIMIT);

	values[0] = PointerGetDatum(name);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = PG_ARGISNULL(5) ? (Datum) 0 : PG_GETARG_DATUM(5);
	nulls[2] = PG_ARGISNULL(5) ? 'n' : ' ';
	values[3] = ObjectIdGetDatum(GetOuterUserId());
	values[4] = PointerGetDatum(event_types);
	nulls[4] = event_types ? ' ' : 'n';
	values[5] = PG_ARGISNULL(3) ? (Datum) 0 : PointerGetDatum(checked_category(fcinfo, 3));
	nulls[5] = PG_ARGISNULL(3) ? 'n' : ' ';
	values[6] = CStringGetTextDatum(mode);
	values[7] = CStringGetTextDatum(on_failure);
	values[8] = Int32GetDatum(max_attempts);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (run_kept_plan(&create_projection_plan, values, nulls, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("projection \"%s\" already exists", text_to_cstring(name))));
	SPI_finish();
	notifier_wake_at_commit();
	if (strcmp(mode, "async") == 0 && !notifier_serves_this_database())
		ereport(WARNING,
				(errmsg("async projection \"%s\" will not run until a notifier serves this database",
						text_to_cstring(name)),
				 errdetail("Async projections run in the notifier, a background worker."),
				 errhint("Add eventsource to shared_preload_libraries and this database to eventsource.notify_databases.")));
	PG_RETURN_VOID();
}

static KeptPlan drop_projection_plan = {
	"DELETE FROM eventsource.projections p WHERE p.name = $1", 1, {TEXTOID}
};

static KeptPlan set_status_plan = {
	"UPDATE eventsource.projections p"
	"   SET status = $2, attempts = 0, retry_at = NULL, updated_at = pg_catalog.now()"
	" WHERE p.name = $1",
	2, {TEXTOID, TEXTOID}
};

static void
raise_unknown_projection(text *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("projection \"%s\" does not exist", text_to_cstring(name))));
}

/* The shared body of drop, pause and resume: one statement on the projection. */
static Datum
change_projection(FunctionCallInfo fcinfo, KeptPlan *plan, const char *status)
{
	text	   *name = checked_object_name(fcinfo, 0, "projection");
	Datum		values[2] = {PointerGetDatum(name), status ? CStringGetTextDatum(status) : (Datum) 0};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (run_kept_plan(plan, values, NULL, false) == 0)
		raise_unknown_projection(name);
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

static KeptPlan lock_projection_plan = {
	"SELECT " PROJECTION_COLUMNS ", p.mode, p.reset_handler::oid"
	"  FROM eventsource.projections p WHERE p.name = $1 FOR UPDATE",
	1, {TEXTOID}
};

static KeptPlan restart_projection_plan = {
	"UPDATE eventsource.projections p"
	"   SET checkpoint = NULL, events_processed = $2, attempts = 0, retry_at = NULL,"
	"       status = CASE WHEN p.status = 'failed' THEN 'running' ELSE p.status END,"
	"       updated_at = pg_catalog.now()"
	" WHERE p.name = $1",
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
	bool		isnull;
	bool		is_inline;
	Datum		reset_handler;
	int64		replayed = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* The row lock keeps the worker off the projection until this commits. */
	if (run_kept_plan(&lock_projection_plan, key, NULL, false) == 0)
		raise_unknown_projection(name);
	projection = projection_from_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	is_inline = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6), "inline") == 0;
	reset_handler = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7, &isnull);

	if (!isnull)
	{
		FmgrInfo	reset_info;

		fmgr_info(DatumGetObjectId(reset_handler), &reset_info);
		call_as_owner(projection, &reset_info, (Datum) 0, 0);
	}

	if (is_inline)
	{
		TupleDesc	event_description = event_descriptor();
		Checkpoint	after = {0, 0};
		uint64		count;

		while ((count = replay_batch(projection, &after, 1000, false, event_description)) > 0)
			replayed += count;
	}
	key[1] = Int64GetDatum(replayed);
	run_kept_plan(&restart_projection_plan, key, NULL, false);
	SPI_finish();
	notifier_wake_at_commit();
	PG_RETURN_INT64(replayed);
}

/* ------------------------------------------------------------------------
 * Async projections, run by the notifier (notifier.c)
 * ------------------------------------------------------------------------
 */

/* The async projections due now, each locked unless an administrator holds it. */
static KeptPlan due_projections_plan = {
	"SELECT " PROJECTION_COLUMNS ","
	"       eventsource.checkpoint_transaction_id(p.checkpoint),"
	"       eventsource.checkpoint_global_position(p.checkpoint),"
	"       p.attempts, p.max_attempts, p.on_failure"
	"  FROM eventsource.projections p"
	" WHERE p.mode = 'async' AND p.status = 'running'"
	"   AND (p.retry_at IS NULL OR p.retry_at <= pg_catalog.now())"
	" ORDER BY p.name FOR UPDATE SKIP LOCKED",
	0, {InvalidOid}
};

static KeptPlan advance_plan = {
	"UPDATE eventsource.projections p"
	"   SET checkpoint = eventsource.checkpoint($2, $3), events_processed = events_processed + $4,"
	"       attempts = 0, retry_at = NULL, updated_at = pg_catalog.now()"
	" WHERE p.name = $1",
	4, {TEXTOID, XID8OID, INT8OID, INT8OID}
};

static KeptPlan failure_plan = {
	"UPDATE eventsource.projections p"
	"   SET attempts = $2, retry_at = pg_catalog.now() + pg_catalog.make_interval(secs => $3),"
	"       status = $4, last_error = $5, last_error_at = pg_catalog.now(),"
	"       last_error_position = $6, updated_at = pg_catalog.now()"
	" WHERE p.name = $1",
	6, {TEXTOID, INT4OID, FLOAT8OID, TEXTOID, TEXTOID, INT8OID}
};

static KeptPlan dead_letter_plan = {
	"INSERT INTO eventsource.projection_dead_letters (projection_name, global_position, error, attempts)"
	" VALUES ($1, $2, $3, $4)"
	" ON CONFLICT (projection_name, global_position) DO UPDATE SET error = excluded.error,"
	"   attempts = excluded.attempts, failed_at = excluded.failed_at",
	4, {TEXTOID, INT8OID, TEXTOID, INT4OID}
};

/*
 * replay_batch in a subtransaction: returns NULL and the count, or the error
 * with everything the batch did undone.
 */
static ErrorData *
replay_in_subtransaction(Projection *projection, Checkpoint *after, int limit,
						 TupleDesc event_description, uint64 *count)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	ErrorData  *volatile error = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	PG_TRY();
	{
		*count = replay_batch(projection, after, limit, true, event_description);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller_context);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_END_TRY();
	return error;
}

/* Records that a batch (count events, through after) was projected. */
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
 * Records the failure of the event right after checkpoint (its attempts-th):
 * a retry after a growing delay; once max_attempts is reached, the projection
 * stops as failed, or the event becomes a dead letter and is skipped.
 */
static void
record_failure(const Projection *projection, Checkpoint checkpoint, int attempts, int max_attempts,
			   bool dead_letter, const ErrorData *error)
{
	Datum		values[6];
	Checkpoint	failed = checkpoint;
	bool		exhausted = attempts >= max_attempts;
	long		delay_ms = Min((long) FIRST_RETRY_MS << Min(attempts - 1, 20), LONGEST_RETRY_MS);

	/* The failing event: the projection's next one after the checkpoint. */
	if (read_projection_events(projection, &checkpoint, 1, true) > 0)
	{
		bool		isnull;

		failed = *(Checkpoint *) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
															   SPI_tuptable->tupdesc->natts, &isnull));
	}

	ereport(LOG,
			(errmsg("projection \"%s\" failed on the event at global position " INT64_FORMAT " (attempt %d of %d): %s",
					projection->name, failed.global_position, attempts, max_attempts, error->message)));

	values[0] = CStringGetTextDatum(projection->name);
	values[1] = Int32GetDatum(exhausted ? 0 : attempts);
	values[2] = Float8GetDatum(delay_ms / 1000.0);
	values[3] = CStringGetTextDatum(exhausted && !dead_letter ? "failed" : "running");
	values[4] = CStringGetTextDatum(error->message);
	values[5] = Int64GetDatum(failed.global_position);
	run_kept_plan(&failure_plan, values, NULL, false);

	if (exhausted && dead_letter)
	{
		Datum		letter[4] = {CStringGetTextDatum(projection->name), Int64GetDatum(failed.global_position),
		CStringGetTextDatum(error->message), Int32GetDatum(attempts)};

		run_kept_plan(&dead_letter_plan, letter, NULL, false);
		record_progress(projection, failed, 0);
	}
}

/*
 * One round of one async projection: a batch after its checkpoint in a
 * subtransaction (the handler's work and the new checkpoint, or nothing).
 * When the batch fails, its events are tried one at a time, each in a
 * subtransaction of its own, up to the one that fails, whose failure is
 * recorded.  An event that failed before is tried alone.  Returns true when
 * there may be more to do at once.
 */
static bool
project_batch(Projection *projection, Checkpoint checkpoint, int attempts, int max_attempts,
			  bool dead_letter, TupleDesc event_description)
{
	int			limit = attempts > 0 ? 1 : ASYNC_BATCH;
	Checkpoint	after = checkpoint;
	uint64		count = 0;
	ErrorData  *error = replay_in_subtransaction(projection, &after, limit, event_description, &count);

	if (error != NULL && limit > 1)
	{
		/* Find the failing event: the ones before it are projected, one by one. */
		FreeErrorData(error);
		error = NULL;
		after = checkpoint;
		count = 0;
		for (int i = 0; i < limit && error == NULL; i++)
		{
			uint64		one = 0;

			error = replay_in_subtransaction(projection, &after, 1, event_description, &one);
			if (error == NULL && one == 0)
				break;
			count += one;
		}
		if (count > 0)
			record_progress(projection, after, count);
		if (error != NULL)
			record_failure(projection, after, 1, max_attempts, dead_letter, error);
		return false;
	}
	if (error != NULL)
	{
		record_failure(projection, checkpoint, attempts + 1, max_attempts, dead_letter, error);
		return false;
	}
	if (count > 0)
		record_progress(projection, after, count);
	return count == (uint64) limit;
}

/* Milliseconds until the next retry of a failing async projection is due. */
static KeptPlan next_retry_plan = {
	"SELECT pg_catalog.ceil(EXTRACT(epoch FROM pg_catalog.min(p.retry_at) - pg_catalog.now()) * 1000)::bigint"
	"  FROM eventsource.projections p"
	" WHERE p.mode = 'async' AND p.status = 'running' AND p.retry_at IS NOT NULL",
	0, {InvalidOid}
};

/*
 * Runs one round of every due async projection, in one transaction: each
 * projection's row is locked (SKIP LOCKED) until the round commits, and each
 * batch is a subtransaction.  Returns how long the notifier may sleep before
 * the next round is needed: 0 when one may have more to do at once, the time
 * to the next retry, or -1 for no limit.  Called outside a transaction.
 */
long
run_async_projections(void)
{
	bool		more = false;
	long		sleep_ms = -1;
	uint64		due = 0;
	Oid			schema;
	MemoryContext round_context = AllocSetContextCreate(CurrentMemoryContext, "eventsource projections",
														ALLOCSET_DEFAULT_SIZES);
	MemoryContext caller_context = MemoryContextSwitchTo(round_context);

	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());

	/* An extension older than 0.4.0 has no projections. */
	schema = get_namespace_oid("eventsource", true);
	if (OidIsValid(schema) && OidIsValid(get_relname_relid("projections", schema)))
		due = run_kept_plan(&due_projections_plan, NULL, NULL, false);
	if (due > 0)
	{
		SPITupleTable *rows = SPI_tuptable;
		TupleDesc	event_description = event_descriptor();

		for (uint64 i = 0; i < due; i++)
		{
			HeapTuple	row = rows->vals[i];
			Projection *projection = projection_from_row(row, rows->tupdesc);
			Checkpoint	checkpoint = {0, 0};
			bool		isnull;
			int			attempts;
			int			max_attempts;
			bool		dead_letter;

			(void) SPI_getbinval(row, rows->tupdesc, 6, &isnull);
			if (!isnull)
				checkpoint = checkpoint_from_row(row, rows->tupdesc, 6);
			attempts = DatumGetInt32(SPI_getbinval(row, rows->tupdesc, 8, &isnull));
			max_attempts = DatumGetInt32(SPI_getbinval(row, rows->tupdesc, 9, &isnull));
			dead_letter = strcmp(SPI_getvalue(row, rows->tupdesc, 10), "dead_letter") == 0;
			more |= project_batch(projection, checkpoint, attempts, max_attempts, dead_letter,
								  event_description);
		}
	}

	if (OidIsValid(schema) && OidIsValid(get_relname_relid("projections", schema)) &&
		run_kept_plan(&next_retry_plan, NULL, NULL, false) > 0)
	{
		bool		isnull;
		Datum		until = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			sleep_ms = Max(DatumGetInt64(until), 0);
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller_context);
	MemoryContextDelete(round_context);
	return more ? 0 : sleep_ms;
}
