/*-------------------------------------------------------------------------
 *
 * read.c
 *	  The read functions of eventsource: stream_version, read_stream, and the
 *	  gap-safe global log reads read_all and read_category.
 *
 * The global log is read in (transaction_id, global_position) order and only
 * up to the oldest transaction still running: every event of a transaction
 * whose id is below the snapshot's xmin has either committed or never will,
 * so no event can later appear before a checkpoint a reader has passed.
 * Global positions alone are not enough: they are taken at INSERT time and
 * transactions commit in another order.
 *
 * Rows go straight from the executor into the function's tuplestore.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/xid8.h"

#include "eventsource.h"

PG_FUNCTION_INFO_V1(eventsource_stream_version);
PG_FUNCTION_INFO_V1(eventsource_read_stream);
PG_FUNCTION_INFO_V1(eventsource_read_all);
PG_FUNCTION_INFO_V1(eventsource_read_category);

/* The columns of eventsource.event, in order, from events e. */
#define EVENT_COLUMNS \
	"SELECT e.global_position, e.transaction_id, e.stream_id, e.stream_version," \
	"       e.event_id, e.event_type, e.data, e.metadata, e.recorded_at," \
	"       eventsource.checkpoint(e.transaction_id, e.global_position)" \
	"  FROM eventsource.events e"

/* The gap-safe part of every log read: after $1/$2, below the horizon. */
#define LOG_CONDITIONS \
	" WHERE (e.transaction_id, e.global_position) > ($1, $2)" \
	"   AND e.transaction_id < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())" \
	"   AND ($4::text[] IS NULL OR e.event_type = ANY ($4))"

static KeptPlan current_version_plan = {
	"SELECT s.stream_version FROM eventsource.streams s WHERE s.stream_id = $1",
	1, {TEXTOID}
};

static KeptPlan read_forward_plan = {
	EVENT_COLUMNS
	" WHERE e.stream_id = $1 AND e.stream_version >= $2"
	" ORDER BY e.stream_version LIMIT $3",
	3, {TEXTOID, INT8OID, INT4OID}
};

static KeptPlan read_backward_plan = {
	EVENT_COLUMNS
	" WHERE e.stream_id = $1 AND e.stream_version <= $2"
	" ORDER BY e.stream_version DESC LIMIT $3",
	3, {TEXTOID, INT8OID, INT4OID}
};

static KeptPlan read_all_plan = {
	EVENT_COLUMNS
	LOG_CONDITIONS
	" ORDER BY e.transaction_id, e.global_position LIMIT $3",
	4, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID}
};

static KeptPlan read_category_plan = {
	EVENT_COLUMNS
	LOG_CONDITIONS
	"   AND pg_catalog.split_part(e.stream_id, '-', 1) = $5"
	" ORDER BY e.transaction_id, e.global_position LIMIT $3",
	5, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID},

	/*
	 * Whether the category index or the log order index (filtering on the
	 * category) is faster depends on how common the category is: plan with it.
	 */
	CURSOR_OPT_CUSTOM_PLAN
};

/*
 * The version of a stream, 0 when it does not exist.  Call while connected
 * to SPI.
 */
int64
current_stream_version(text *stream_id)
{
	Datum		values[1] = {PointerGetDatum(stream_id)};
	bool		isnull;

	if (run_kept_plan(&current_version_plan, values, NULL, true) == 0)
		return 0;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Runs kept read plans one after the other, all with the same parameters,
 * with their rows going straight into the set-returning function's result.
 * The plans run read-only, so they all see the snapshot of the calling query.
 */
void
materialize_reads(FunctionCallInfo fcinfo, KeptPlan **plans, int plan_count,
				  Datum *values, const bool *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			nargs = plans[0]->nargs;
	ParamListInfo params;
	SPIExecuteOptions options;
	DestReceiver *receiver;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	receiver = CreateDestReceiver(DestTuplestore);
	SetTuplestoreDestReceiverParams(receiver, rsinfo->setResult,
									rsinfo->econtext->ecxt_per_query_memory,
									false, NULL, NULL);

	params = makeParamList(nargs);
	params->numParams = nargs;
	for (int i = 0; i < nargs; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = nulls[i];
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = plans[0]->argtypes[i];
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = true;
	options.dest = receiver;
	for (int i = 0; i < plan_count; i++)
	{
		int			rc = SPI_execute_plan_extended(kept_plan(plans[i]), &options);

		if (rc < 0)
			elog(ERROR, "SPI_execute_plan_extended failed for \"%s\": %s",
				 plans[i]->sql, SPI_result_code_string(rc));
	}
	SPI_finish();
	receiver->rDestroy(receiver);
}

/*
 * materialize_reads for a single plan.
 */
void
materialize_read(FunctionCallInfo fcinfo, KeptPlan *kept, Datum *values, const bool *nulls)
{
	materialize_reads(fcinfo, &kept, 1, values, nulls);
}

static int32
checked_max_count(FunctionCallInfo fcinfo, int argno)
{
	int32		max_count;

	check_not_null(fcinfo, argno, "max_count");
	max_count = PG_GETARG_INT32(argno);
	if (max_count < 1 || max_count > EVENTSOURCE_MAX_READ_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must be between 1 and %d", EVENTSOURCE_MAX_READ_COUNT),
				 errdetail("max_count was %d.", max_count)));
	return max_count;
}

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
Datum
eventsource_read_stream(PG_FUNCTION_ARGS)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, false);
	int32		max_count = checked_max_count(fcinfo, 2);
	char	   *direction;
	bool		forward;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	check_not_null(fcinfo, 3, "direction");
	direction = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (strcmp(direction, "forward") == 0)
		forward = true;
	else if (strcmp(direction, "backward") == 0)
		forward = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid direction \"%s\"", direction),
				 errhint("Use 'forward' or 'backward'.")));

	values[0] = PointerGetDatum(stream_id);
	values[1] = Int64GetDatum(optional_stream_version(fcinfo, 1, "from_version",
													  forward ? 1 : PG_INT64_MAX));
	values[2] = Int32GetDatum(max_count);
	materialize_read(fcinfo, forward ? &read_forward_plan : &read_backward_plan, values, nulls);
	return (Datum) 0;
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
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(0));
	values[1] = Int64GetDatum(0);
	if (!PG_ARGISNULL(after_argno))
	{
		Checkpoint *after = PG_GETARG_CHECKPOINT(after_argno);

		values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(after->transaction_id));
		values[1] = Int64GetDatum(after->global_position);
	}
	values[2] = Int32GetDatum(max_count);

	nulls[3] = PG_ARGISNULL(event_types_argno);
	if (!nulls[3])
	{
		ArrayType  *event_types = PG_GETARG_ARRAYTYPE_P(event_types_argno);

		if (ArrayGetNItems(ARR_NDIM(event_types), ARR_DIMS(event_types)) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event_types must not be an empty array"),
					 errhint("Pass NULL to read events of every type.")));
		if (array_contains_nulls(event_types))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("event_types must not contain nulls")));
		values[3] = PointerGetDatum(event_types);
	}

	if (category == NULL)
		materialize_read(fcinfo, &read_all_plan, values, nulls);
	else
	{
		values[4] = PointerGetDatum(category);
		materialize_read(fcinfo, &read_category_plan, values, nulls);
	}
	return (Datum) 0;
}

static text *
checked_category(FunctionCallInfo fcinfo, int argno)
{
	text	   *category = PG_GETARG_TEXT_PP(argno);

	if (VARSIZE_ANY_EXHDR(category) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("category must not be empty")));
	return category;
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
