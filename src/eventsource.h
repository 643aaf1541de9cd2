/*-------------------------------------------------------------------------
 *
 * eventsource.h
 *	  Declarations shared by the eventsource extension's C files: the
 *	  error codes users can catch, lock classes, settings, the schema
 *	  versions and the declarations of the modules that have no header of
 *	  their own yet.  Modules with their own: arguments.h, checkpoint.h,
 *	  epoch.h, kept_plan.h, log.h, statistics.h, streams.h, stream_write.h,
 *	  trust.h, worker_shared.h, worker_transaction.h.
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
#define ERRCODE_EVENTSOURCE_APPEND_CONDITION_FAILED	MAKE_SQLSTATE('S','E','0','0','6')

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

/*
 * The classes of the locks on the consistency keys of events and conditions
 * (consistency.c), and of the lock (keys 0, 0) that stands for every key.
 */
#define EVENTSOURCE_CONSISTENCY_LOCK_CLASS	0x454B
#define EVENTSOURCE_EVERY_KEY_LOCK_CLASS	0x4541

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
	STREAMS_WITH_LOG_ORDER,		/* 0.7.0: the row checks and records the log order */
	STREAMS_WITH_TAGS,			/* 0.8.0 on: and events carry tags */
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

/* Whether the stream's row records the log order (0.7.0 on): last_transaction_id. */
static inline bool
streams_have_log_order(StreamsSchema schema)
{
	return schema >= STREAMS_WITH_LOG_ORDER;
}

/* Whether events have tags (0.8.0 on). */
static inline bool
events_have_tags(StreamsSchema schema)
{
	return schema >= STREAMS_WITH_TAGS;
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
		return implementation(fcinfo, STREAMS_WITH_TAGS); \
	} \
	extern int	no_such_variable

/* Set while scavenge deletes events: the append-only guard lets it (guard.c). */
extern bool eventsource_scavenging;

/*
 * Set while an append inserts its events (stream_write.c): only those feed
 * inline projections, not a restore's COPY into the log.
 */
extern bool eventsource_appending;

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

/* The library must be preloaded (eventsource.c); the category of a stream id. */
extern void require_preloaded_library(const char *function_name, const char *detail,
									  const char *hint);
extern text *category_of(text *stream_id);

/* Settings (defined by eventsource.c). */
extern int	eventsource_snapshots_to_keep;
extern int	eventsource_read_wait_timeout;	/* ms */
extern bool eventsource_notify;
extern char *eventsource_worker_databases;
extern char *eventsource_notify_databases;
extern int	eventsource_max_databases;
extern int	eventsource_max_databases_per_owner;
extern int	eventsource_notify_max_delay;
extern bool eventsource_scavenge_enabled;
extern int	eventsource_scavenge_interval;
extern int	eventsource_scavenge_slice;
extern bool eventsource_async_projections;
extern int	eventsource_async_projection_slice;

/* The launcher and the utility hook that pauses a database's worker (launcher.c). */
extern void launcher_preload_init(void);

/* Owners of projections and subscriptions, from the utility hook (owners.c). */
extern Oid *roles_to_drop(Node *statement);
extern void after_role_statement(Node *statement, const Oid *dropped_roles);

/* The ordering lock of changes to the projections (eventsource.c; projection.c, DROP OWNED in owners.c). */
extern void lock_projection_changes(void);

/*
 * Slices of the worker's jobs, until deadline: the async projections
 * (projection.c; returns the milliseconds until one has work again: 0 at
 * once, -1 when none has any) and scavenging (lifecycle.c; returns whether
 * its pass goes on).
 */
extern long run_async_projections(TimestampTz deadline);
extern bool run_scavenge_slice(TimestampTz deadline);

#endif							/* EVENTSOURCE_H */
