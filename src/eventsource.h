/*-------------------------------------------------------------------------
 *
 * eventsource.h
 *	  Declarations shared by the eventsource extension's C files: the
 *	  error codes users can catch and the helpers that prepare and keep SPI
 *	  plans.  The input limits and argument checks are in arguments.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_H
#define EVENTSOURCE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "tcop/dest.h"
#include "utils/array.h"

/*
 * Error codes of class SE ("stream/event"), a class PostgreSQL does not use.
 * README.md documents them; keep the two in step.
 */
#define ERRCODE_EVENTSOURCE_VERSION_CONFLICT	MAKE_SQLSTATE('S','E','0','0','1')
#define ERRCODE_EVENTSOURCE_DUPLICATE_EVENT_ID	MAKE_SQLSTATE('S','E','0','0','2')
#define ERRCODE_EVENTSOURCE_APPEND_ONLY			MAKE_SQLSTATE('S','E','0','0','3')
#define ERRCODE_EVENTSOURCE_SNAPSHOT_VERSION	MAKE_SQLSTATE('S','E','0','0','4')
#define ERRCODE_EVENTSOURCE_STREAM_TOMBSTONED	MAKE_SQLSTATE('S','E','0','0','5')

/*
 * The class (the fourth field) of the advisory locks append takes on streams:
 * PostgreSQL's pg_advisory_* functions use 1 and 2.
 */
#define EVENTSOURCE_STREAM_LOCK_CLASS	0x4553

/*
 * The class of the advisory lock (keys 0, 0) that orders the changes to the
 * projections, and with them the state of the log's inline trigger.
 */
#define EVENTSOURCE_PROJECTIONS_LOCK_CLASS	0x4550
/* The class of the locks poll and ack take on a subscription's consumer group member. */
#define EVENTSOURCE_MEMBER_LOCK_CLASS	0x4554

/* The class of the advisory lock (keys 0, 0) that serialises the starters of log epochs. */
#define EVENTSOURCE_EPOCH_LOCK_CLASS	0x4545

/* The audit stream: delete_stream, tombstone_stream and set_stream_metadata record events in it. */
#define EVENTSOURCE_AUDIT_STREAM		"$streams"

/*
 * The schemas of the extension that its C functions tell apart: what
 * eventsource.streams has.  The library serves every version its scripts
 * install, so that appends and reads go on between installing a new library
 * and ALTER EXTENSION UPDATE.
 */
typedef enum StreamsSchema
{
	STREAMS_BEFORE_LIFECYCLE,	/* 0.1.0 to 0.4.0 */
	STREAMS_WITH_LIFECYCLE,		/* 0.5.0 and 0.6.0: a tombstoned stream does not advance */
	STREAMS_WITH_LOG_ORDER,		/* 0.7.0 on: the row checks and records the log order */
	STREAMS_SCHEMAS				/* their number */
} StreamsSchema;

/*
 * Whether the schema has the stream lifecycle (0.5.0 on): tombstoned_at,
 * deleted_through and the retention settings, and first_visible_version.
 */
static inline bool
streams_have_lifecycle(StreamsSchema schema)
{
	return schema >= STREAMS_WITH_LIFECYCLE;
}

/*
 * The schema of this database's extension, asked of the catalog once
 * eventsource.streams is locked (eventsource.c).
 */
extern StreamsSchema installed_streams_schema(void);

/*
 * The SQL-callable entry points of a function whose work depends on the
 * schema, as pg_stat_statements binds pg_stat_statements_1_12: the scripts
 * of 0.8.0 on bind the function to name_0_8, which serves the schema those
 * scripts create; the scripts of before 0.8.0 bound it to name, which asks
 * the catalog on every call (installed_streams_schema).  Both run
 * implementation, a Datum (*)(FunctionCallInfo, StreamsSchema).
 *
 * A version that changes the schema adds a value to StreamsSchema and an
 * entry point here (name_0_9), and its scripts bind the new one.  Only the
 * newest entry point may assume its schema: a call resolves the function
 * before it runs, so one that starts while ALTER EXTENSION UPDATE runs still
 * enters through the entry point the old scripts bound, and runs after the
 * update has committed.  So when name_0_9 comes, name_0_8 turns into one that
 * asks, as name does, and every entry point that asks locks, then checks
 * (installed_streams_schema): it takes the lock on eventsource.streams that
 * the update's ALTER TABLE conflicts with before it looks at the columns,
 * never the other way round (test/specs/update_during_append.spec).
 */
#define SCHEMA_VERSIONED_FUNCTION(name, implementation) \
	PG_FUNCTION_INFO_V1(name); \
	PG_FUNCTION_INFO_V1(name##_0_8); \
	Datum \
	name(PG_FUNCTION_ARGS) \
	{ \
		return implementation(fcinfo, installed_streams_schema()); \
	} \
	Datum \
	name##_0_8(PG_FUNCTION_ARGS) \
	{ \
		return implementation(fcinfo, STREAMS_WITH_LOG_ORDER); \
	} \
	extern int	no_such_variable


/* Counters in shared memory (statistics.c); without the preload they count nothing. */
typedef enum StatisticKind
{
	STATISTIC_APPENDS,
	STATISTIC_EVENTS_APPENDED,
	STATISTIC_VERSION_CONFLICTS,
	STATISTIC_IDEMPOTENT_RETRIES,
	STATISTIC_TOMBSTONE_REJECTIONS,
	STATISTIC_EVENTS_SCAVENGED,
	STATISTIC_KINDS				/* their number */
} StatisticKind;

extern void statistics_preload_init(void);
extern void count_statistic(StatisticKind kind, uint64 amount);

/* Set while scavenge deletes events: the append-only guard lets it (lifecycle.c). */
extern bool eventsource_scavenging;

/*
 * Set while an append inserts its events (stream_write.c): only those feed
 * inline projections, not a restore's COPY into the log.
 */
extern bool eventsource_appending;

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
	Oid			argtypes[10];
	int			cursor_options;
	SPIPlanPtr	plan;
} KeptPlan;

extern SPIPlanPtr kept_plan(KeptPlan *kept);
extern uint64 run_kept_plan(KeptPlan *kept, Datum *values, const char *nulls,
							bool read_only);
extern uint64 run_kept_plan_on_latest_snapshot(KeptPlan *kept, Datum *values, const char *nulls);
extern Datum column_by_name(HeapTuple row, TupleDesc description, const char *name,
							bool *isnull);

/*
 * Functions that must know their caller (the owner of what they create,
 * whether it may use a subscription) are SECURITY INVOKER with a pinned
 * search_path, and act as the function's owner themselves once they have
 * noted the caller (eventsource.c).
 */
typedef struct ActingAsOwner
{
	Oid			caller;			/* the role that called the function */
	Oid			saved_user;
	int			saved_security_context;
} ActingAsOwner;

extern void act_as_function_owner(FunctionCallInfo fcinfo, ActingAsOwner *acting);
extern void stop_acting_as_owner(const ActingAsOwner *acting);
extern bool may_administer(Oid role);

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

extern int	compare_checkpoints(const Checkpoint *a, const Checkpoint *b);
extern char *checkpoint_to_cstring(const Checkpoint *checkpoint);

/*
 * Log epochs (epoch.c).  log_transaction_id is this transaction's log
 * transaction id, the first part of the place in the global log of every
 * event it writes (and the streams' last_transaction_id): it assigns the
 * transaction its id if it has none yet and starts a log epoch when needed.
 * log_horizon is the gap-safe read horizon of the active snapshot.
 */
extern void epoch_preload_init(void);
extern uint64 log_transaction_id(void);
extern uint64 log_horizon(void);
extern Datum log_horizon_datum(void);

/* The library must be preloaded (eventsource.c); the category of a stream id. */
extern void require_preloaded_library(const char *function_name, const char *detail,
									  const char *hint);
extern text *category_of(text *stream_id);

/* The head of the gap-safe log, and a checkpoint from a row (read.c); call while connected to SPI. */
extern Checkpoint visible_head(void);
extern Checkpoint checkpoint_from_row(HeapTuple row, TupleDesc description, int first_column);

/*
 * Run kept read plans with their rows going straight into the set-returning
 * function's result (read.c); they connect to SPI themselves.
 */
extern DestReceiver *materialized_result(FunctionCallInfo fcinfo);
extern uint64 run_kept_plan_into(KeptPlan *kept, Datum *values, const bool *nulls,
								 DestReceiver *receiver, bool read_only);
extern void materialize_reads(FunctionCallInfo fcinfo, KeptPlan **plans, int plan_count,
							  Datum *values, const bool *nulls);
extern void materialize_read(FunctionCallInfo fcinfo, KeptPlan *kept,
							 Datum *values, const bool *nulls);

/* Settings (defined by eventsource.c). */
extern int	eventsource_snapshots_to_keep;
extern bool eventsource_notify;
extern char *eventsource_worker_databases;
extern char *eventsource_notify_databases;
extern int	eventsource_max_databases;
extern int	eventsource_notify_max_delay;
extern int	eventsource_scavenge_interval;
extern bool eventsource_async_projections;
extern int	eventsource_worker_job_slice;

/* The bus (notifier.c). */
extern void notifier_preload_init(void);
extern void notifier_wake_at_commit(void);
extern bool notifier_serves_this_database(void);
extern bool worker_may_serve_extension_quietly(void);

/* Owners of projections and subscriptions, from the utility hook (owners.c). */
extern Oid *roles_to_drop(Node *statement);
extern void after_role_statement(Node *statement, const Oid *dropped_roles);

/* The ordering lock of changes to the projections (projection.c; DROP OWNED in owners.c). */
extern void lock_projection_changes(void);

/*
 * The transactions of the worker's jobs (notifier.c), as worker_spi runs
 * them: worker_start_transaction gives the transaction a fresh start time
 * (now()), shows activity in pg_stat_activity, locks the extension, takes
 * the snapshot and connects to SPI, and returns whether the worker may act
 * on the extension (only the installed extension, in a schema only
 * superusers can change: notifier.c); worker_commit_transaction
 * and worker_abort_transaction (after an error caught) end it and return to
 * the memory context of the worker's round; worker_catch_error, in a
 * PG_CATCH, copies the error there and aborts.  worker_commit_without_flush
 * lets a transaction whose loss in a crash costs nothing commit without
 * waiting for the WAL flush.
 */
extern bool worker_start_transaction(const char *activity);
extern void worker_commit_transaction(void);
extern void worker_abort_transaction(void);
extern ErrorData *worker_catch_error(void);
extern void worker_commit_without_flush(void);

/*
 * Slices of the worker's jobs, until deadline: the async projections
 * (projection.c; returns the milliseconds until one has work again: 0 at
 * once, -1 when none has any) and scavenging (lifecycle.c; returns whether
 * its pass goes on).
 */
extern long run_async_projections(TimestampTz deadline);
extern bool run_scavenge_slice(TimestampTz deadline);

#endif							/* EVENTSOURCE_H */
