/*-------------------------------------------------------------------------
 *
 * eventsource.h
 *	  Declarations shared by the eventsource extension's C files: the
 *	  error codes users can catch, the input limits, and the helpers that
 *	  prepare and keep SPI plans.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_H
#define EVENTSOURCE_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"

/*
 * Error codes of class SE ("stream/event"), a class PostgreSQL does not use.
 * README.md documents them; keep the two in step.
 */
#define ERRCODE_EVENTSOURCE_VERSION_CONFLICT	MAKE_SQLSTATE('S','E','0','0','1')
#define ERRCODE_EVENTSOURCE_DUPLICATE_EVENT_ID	MAKE_SQLSTATE('S','E','0','0','2')
#define ERRCODE_EVENTSOURCE_APPEND_ONLY			MAKE_SQLSTATE('S','E','0','0','3')
#define ERRCODE_EVENTSOURCE_SNAPSHOT_VERSION	MAKE_SQLSTATE('S','E','0','0','4')

/* Input limits, documented in README.md. */
#define EVENTSOURCE_MAX_STREAM_ID_BYTES		500
#define EVENTSOURCE_MAX_EVENT_TYPE_BYTES	255
#define EVENTSOURCE_MAX_READ_COUNT			100000

/* expected_version values with a meaning of their own (NULL means "any"). */
#define EXPECTED_VERSION_NO_STREAM		0
#define EXPECTED_VERSION_STREAM_EXISTS	(-1)

/*
 * A statement prepared on first use in a backend and kept for its lifetime.
 * Declare one as a static variable next to the code that runs it.
 * cursor_options are SPI_prepare_cursor's: CURSOR_OPT_CUSTOM_PLAN makes the
 * planner see the parameter values on every run, for a statement whose best
 * plan depends on them.
 */
typedef struct KeptPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[8];
	int			cursor_options;
	SPIPlanPtr	plan;
} KeptPlan;

extern SPIPlanPtr kept_plan(KeptPlan *kept);
extern uint64 run_kept_plan(KeptPlan *kept, Datum *values, const char *nulls,
							bool read_only);

/*
 * eventsource.checkpoint (checkpoint.c): a place in the global log, ordered
 * by transaction id, then global position.
 */
typedef struct Checkpoint
{
	uint64		transaction_id; /* an xid8 */
	int64		global_position;
} Checkpoint;

#define PG_GETARG_CHECKPOINT(n) ((Checkpoint *) PG_GETARG_POINTER(n))

/* Validation shared by append and read (eventsource.c). */
extern void check_not_null(FunctionCallInfo fcinfo, int argno, const char *name);
extern text *checked_stream_id(FunctionCallInfo fcinfo, int argno, bool for_append);
extern text *category_of(text *stream_id);
extern int64 optional_stream_version(FunctionCallInfo fcinfo, int argno, const char *name,
									 int64 if_null);

/* Stream state (read.c); call while connected to SPI. */
extern int64 current_stream_version(text *stream_id);

/*
 * Run kept read plans with their rows going straight into the set-returning
 * function's result (read.c); they connect to SPI themselves.
 */
extern void materialize_reads(FunctionCallInfo fcinfo, KeptPlan **plans, int plan_count,
							  Datum *values, const bool *nulls);
extern void materialize_read(FunctionCallInfo fcinfo, KeptPlan *kept,
							 Datum *values, const bool *nulls);

/* GUCs (eventsource.c). */
extern int	eventsource_snapshots_to_keep;

#endif							/* EVENTSOURCE_H */
