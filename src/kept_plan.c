/*-------------------------------------------------------------------------
 *
 * kept_plan.c
 *	  Statements prepared on first use in a backend and kept for its
 *	  lifetime, run through SPI: into SPI_tuptable, on the latest snapshot,
 *	  or straight into a set-returning function's result (a tuplestore).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "utils/snapmgr.h"

#include "kept_plan.h"

/*
 * Returns the plan for kept->sql, preparing it on first use in this backend
 * and keeping it for the backend's lifetime.  Must be called while connected
 * to SPI.
 *
 * The statement is parsed under the search path of the moment, and parsed
 * again whenever it changes; for the functions that are not SECURITY DEFINER
 * (the reads, and append, which keeps its first caller's: append.c) that is
 * the caller's search path.  So no SQL the extension runs
 * may resolve anything through it: every operator is written
 * OPERATOR(pg_catalog.=) (or OPERATOR(eventsource.<=) for checkpoints), and
 * every function, relation and type in a cast is named with its schema.
 * bigint, integer and boolean are keywords the grammar makes pg_catalog's
 * types; IS NULL, COALESCE, GREATEST, searched CASE, ORDER BY and DISTINCT look
 * up no operator by name.  Every OPERATOR() has the one precedence of "any
 * other operator" and they group left to right: parenthesize arithmetic on
 * either side of a comparison.
 * test/sql/search_path.sql runs every public function under a hostile path.
 */
SPIPlanPtr
kept_plan(KeptPlan *kept)
{
	if (kept->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(kept->sql, kept->nargs, kept->argtypes,
											  kept->cursor_options);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 kept->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed for \"%s\"", kept->sql);
		kept->plan = plan;
	}
	return kept->plan;
}

/*
 * Runs a kept plan with the parameters values and nulls (true: NULL), its
 * rows going to receiver, or to SPI_tuptable when receiver is NULL; returns
 * the number of rows it processed.  Any SPI failure is a can't-happen fault:
 * SQL errors are raised by the executor itself.
 */
static uint64
execute_kept_plan(KeptPlan *kept, Datum *values, const bool *nulls, bool read_only,
				  DestReceiver *receiver)
{
	ParamListInfo params = makeParamList(kept->nargs);
	SPIExecuteOptions options;
	int			rc;

	params->numParams = kept->nargs;
	for (int i = 0; i < kept->nargs; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = nulls != NULL && nulls[i];
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = kept->argtypes[i];
	}

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = read_only;
	options.dest = receiver;
	rc = SPI_execute_plan_extended(kept_plan(kept), &options);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan_extended failed for \"%s\": %s",
			 kept->sql, SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Runs a kept plan and returns the number of rows it processed; the rows are
 * in SPI_tuptable.  nulls may be NULL when no parameter is.
 */
uint64
run_kept_plan(KeptPlan *kept, Datum *values, const bool *nulls, bool read_only)
{
	return execute_kept_plan(kept, values, nulls, read_only, NULL);
}

/*
 * Runs a kept plan on a snapshot taken now, not the transaction's: in
 * REPEATABLE READ and SERIALIZABLE too it reads, locks and writes rows as the
 * latest committed transactions (and this one) left them.  For statements
 * that must act on what committed after the transaction's snapshot: the
 * inline projections an append feeds, the state of the log's inline trigger,
 * the handlers a rename moves.
 */
uint64
run_kept_plan_on_latest_snapshot(KeptPlan *kept, Datum *values, const bool *nulls)
{
	char	   *spi_nulls = NULL;
	int			rc;

	/* SPI_execute_snapshot takes SPI's nulls: 'n' for NULL, ' ' otherwise. */
	if (nulls != NULL)
	{
		spi_nulls = palloc(kept->nargs);
		for (int i = 0; i < kept->nargs; i++)
			spi_nulls[i] = nulls[i] ? 'n' : ' ';
	}
	CommandCounterIncrement();	/* this transaction's own changes too */
	rc = SPI_execute_snapshot(kept_plan(kept), values, spi_nulls, GetLatestSnapshot(), InvalidSnapshot,
							  false, true, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute_snapshot failed for \"%s\": %s",
			 kept->sql, SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * The value of the column called name of an SPI row, or NULL (*isnull) when
 * the row has no such column.  Plans that select t.* see the columns of the
 * installed version of the extension, so a column an older version lacks
 * reads as NULL.
 */
Datum
column_by_name(HeapTuple row, TupleDesc description, const char *name, bool *isnull)
{
	int			column = SPI_fnumber(description, name);

	if (column <= 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return SPI_getbinval(row, description, column, isnull);
}

/*
 * Makes the set-returning function's result a tuplestore and returns a
 * receiver that puts rows into it.
 */
DestReceiver *
materialized_result(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DestReceiver *receiver;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	receiver = CreateDestReceiver(DestTuplestore);
	SetTuplestoreDestReceiverParams(receiver, rsinfo->setResult,
									rsinfo->econtext->ecxt_per_query_memory,
									false, NULL, NULL);
	return receiver;
}

/*
 * Runs a kept plan with its rows going to receiver; returns their number.
 * Call while connected to SPI.
 */
uint64
run_kept_plan_into(KeptPlan *kept, Datum *values, const bool *nulls,
				   DestReceiver *receiver, bool read_only)
{
	return execute_kept_plan(kept, values, nulls, read_only, receiver);
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
	run_reads_into(materialized_result(fcinfo), plans, plan_count, values, nulls);
}

/*
 * The body of materialize_reads, with the rows going to receiver, which it
 * destroys at the end.
 */
void
run_reads_into(DestReceiver *receiver, KeptPlan **plans, int plan_count,
			   Datum *values, const bool *nulls)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (int i = 0; i < plan_count; i++)
		run_kept_plan_into(plans[i], values, nulls, receiver, true);
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
