/*-------------------------------------------------------------------------
 *
 * kept_plan.h
 *	  Statements prepared once per backend and kept (kept_plan.c), and the
 *	  SPI and tuplestore plumbing every SQL the extension runs goes through.
 *	  Parameter nulls are bool arrays (true: NULL), as in ParamListInfo, or
 *	  NULL when no parameter is.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_KEPT_PLAN_H
#define EVENTSOURCE_KEPT_PLAN_H

#include "executor/spi.h"
#include "fmgr.h"
#include "tcop/dest.h"

/*
 * A statement prepared on first use in a backend and kept for its lifetime.
 * Declare one as a static variable next to the code that runs it.
 * cursor_options are SPI_prepare_cursor's: CURSOR_OPT_CUSTOM_PLAN makes the
 * planner see the parameter values on every run, for a statement whose best
 * plan depends on them.
 */
#define KEPT_PLAN_MAX_ARGUMENTS 12

typedef struct KeptPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[KEPT_PLAN_MAX_ARGUMENTS];
	int			cursor_options;
	SPIPlanPtr	plan;
} KeptPlan;

extern SPIPlanPtr kept_plan(KeptPlan *kept);
extern uint64 run_kept_plan(KeptPlan *kept, Datum *values, const bool *nulls,
							bool read_only);
extern uint64 run_kept_plan_on_latest_snapshot(KeptPlan *kept, Datum *values, const bool *nulls);
extern Datum column_by_name(HeapTuple row, TupleDesc description, const char *name,
							bool *isnull);

/*
 * Run kept read plans with their rows going straight into the set-returning
 * function's result; materialize_reads, materialize_read and run_reads_into
 * connect to SPI themselves.
 */
extern DestReceiver *materialized_result(FunctionCallInfo fcinfo);
extern uint64 run_kept_plan_into(KeptPlan *kept, Datum *values, const bool *nulls,
								 DestReceiver *receiver, bool read_only);
extern void materialize_reads(FunctionCallInfo fcinfo, KeptPlan **plans, int plan_count,
							  Datum *values, const bool *nulls);
extern void run_reads_into(DestReceiver *receiver, KeptPlan **plans, int plan_count,
						   Datum *values, const bool *nulls);
extern void materialize_read(FunctionCallInfo fcinfo, KeptPlan *kept,
							 Datum *values, const bool *nulls);

#endif							/* EVENTSOURCE_KEPT_PLAN_H */
