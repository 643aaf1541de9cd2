/*-------------------------------------------------------------------------
 *
 * log.h
 *	  The rules of the global log as SQL fragments, written once for every
 *	  plan that reads it: poll, replay, the reads, scavenge and
 *	  eventsource.events_behind (which the status views call), so that what
 *	  a consumer is owed, what it is delivered, what its lag counts and what
 *	  scavenge may remove cannot drift apart.  Every fragment names the
 *	  event e (eventsource.events e).
 *
 *	  - The gap-safe log: an event is delivered once its transaction_id is
 *		below the horizon (log_horizon_datum(), epoch.c), in the order of
 *		(transaction_id, global_position), after a checkpoint.
 *	  - A filter (of a subscription or projection) takes an event when its
 *		category is NULL or the event's, and its event types are NULL or
 *		hold the event's type; a member of a consumer group of more than one
 *		takes the events of the streams consumer_group_member gives it.
 *	  - The category of an event is the part of its stream id before the
 *		first '-': split_part(stream_id, '-', 1), the category index's
 *		expression (category_of in C, eventsource.category() in SQL).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_LOG_H
#define EVENTSOURCE_LOG_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "fmgr.h"
#include "utils/array.h"

#include "checkpoint.h"
#include "eventsource.h"
#include "kept_plan.h"

/*
 * The stored columns of an event: every column of eventsource.events, so
 * that a scan returns its rows as they are stored, unprojected.  They are
 * the nine of 0.1.0, which eventsource.event begins with, then (0.8.0 on)
 * tags, which the event has after its checkpoint (arrange_event_columns).
 * e.*, so that one plan serves every schema the library serves.
 */
#define STORED_EVENT_COLUMNS \
	"SELECT e.* FROM eventsource.events e"

/* The most columns an event has: the stored ones (with tags) and the checkpoint. */
#define MAX_EVENT_COLUMNS 11

/* The stored columns of events e, then the checkpoint (arrange_event_columns makes an event of them). */
#define EVENT_COLUMNS \
	"SELECT e.*, eventsource.checkpoint(e.transaction_id, e.global_position)" \
	"  FROM eventsource.events e"

/* The category of event e. */
#define EVENT_CATEGORY "pg_catalog.split_part(e.stream_id, '-', 1)"

/*
 * Each rule of a filter twice: as it reads with its argument not NULL (a
 * group of more than one), and as it reads with any argument, built from
 * the first.
 */

/* Whether the category filter category (an SQL expression, NULL: every category) takes an event of event_category. */
#define CATEGORY_IS(category, event_category) \
	event_category " OPERATOR(pg_catalog.=) " category
#define CATEGORY_TAKES(category, event_category) \
	"(" category " IS NULL OR " CATEGORY_IS(category, event_category) ")"

/* Whether the event types filter event_types (a text[] expression, NULL: every type) takes event e. */
#define EVENT_TYPE_AMONG(event_types) \
	"e.event_type OPERATOR(pg_catalog.=) ANY (" event_types ")"
#define EVENT_TYPES_TAKE(event_types) \
	"(" event_types " IS NULL OR " EVENT_TYPE_AMONG(event_types) ")"

/* Whether member of a consumer group of group_size (SQL expressions) takes event e. */
#define GROUP_MEMBER_IS(group_size, member) \
	"eventsource.consumer_group_member(e.stream_id, " group_size ") OPERATOR(pg_catalog.=) " member
#define GROUP_MEMBER_TAKES(group_size, member) \
	"(" group_size " OPERATOR(pg_catalog.=) 1 OR " GROUP_MEMBER_IS(group_size, member) ")"

/* Whether event e comes after checkpoint, an eventsource.checkpoint expression (NULL: before the log). */
#define AFTER_CHECKPOINT(checkpoint) \
	"(" checkpoint " IS NULL OR " checkpoint " OPERATOR(eventsource.<)" \
	" eventsource.checkpoint(e.transaction_id, e.global_position))"

/* The order of the global log. */
#define LOG_ORDER " ORDER BY e.transaction_id, e.global_position"

/*
 * The gap-safe part of every log read: after the checkpoint ($1, $2)
 * (LOG_AFTER_CHECKPOINT_PARAMETERS), below the horizon (a parameter set to
 * log_horizon_datum()) (LOG_RANGE), of the event types $4 (NULL: all).  $3
 * is the row limit.
 */
#define LOG_AFTER_CHECKPOINT_PARAMETERS \
	" WHERE (e.transaction_id, e.global_position) OPERATOR(pg_catalog.>) ($1, $2)"
#define LOG_RANGE(horizon) \
	LOG_AFTER_CHECKPOINT_PARAMETERS \
	"   AND e.transaction_id OPERATOR(pg_catalog.<) " horizon
#define LOG_CONDITIONS(horizon) \
	LOG_RANGE(horizon) \
	"   AND " EVENT_TYPES_TAKE("$4::pg_catalog.text[]")

/*
 * Whether event e matches query, a jsonb expression (query.c).  Only the
 * plans of a filter with a query have it: the function is 0.8.0's.
 */
#define QUERY_MATCHES(query) \
	"eventsource.event_matches_query(e.event_type, e.tags, " query ")"

/*
 * The filter of a subscription or projection, with the parameters of the
 * poll plans: the category $5 (NULL: all), member $7 of a consumer group of
 * $6 (1 for a projection).  The event types $4 are in LOG_CONDITIONS.  With
 * a query, FILTER_TAKES_QUERY follows: its query $9.
 */
#define FILTER_TAKES \
	"   AND " CATEGORY_TAKES("$5::pg_catalog.text", EVENT_CATEGORY) \
	"   AND " GROUP_MEMBER_TAKES("$6", "$7")
#define FILTER_TAKES_QUERY "   AND " QUERY_MATCHES("$9::pg_catalog.jsonb")

/*
 * FILTER_TAKES (and FILTER_TAKES_QUERY) for one shape of its arguments, with
 * the same parameters: FILTER_SHAPES(plan) lists plan(types, category,
 * member, query) for the sixteen shapes, in the order of filter_shape()'s
 * numbers, each argument either "" (that part of the filter takes every
 * event: $4, $5 or $9 is NULL, or $6 is 1) or its condition.  A plan per
 * shape is a plan the planner can keep (a generic plan) that still reads the
 * category index for a category, which the NULL tests of FILTER_TAKES keep a
 * generic plan from doing.
 */
#define SHAPE_TAKES_TYPES	"   AND " EVENT_TYPE_AMONG("$4::pg_catalog.text[]")
#define SHAPE_TAKES_CATEGORY	"   AND " CATEGORY_IS("$5::pg_catalog.text", EVENT_CATEGORY)
#define SHAPE_TAKES_MEMBER	"   AND " GROUP_MEMBER_IS("$6", "$7")
#define FILTER_SHAPES_WITH(plan, query) \
	plan("", "", "", query), \
	plan(SHAPE_TAKES_TYPES, "", "", query), \
	plan("", SHAPE_TAKES_CATEGORY, "", query), \
	plan(SHAPE_TAKES_TYPES, SHAPE_TAKES_CATEGORY, "", query), \
	plan("", "", SHAPE_TAKES_MEMBER, query), \
	plan(SHAPE_TAKES_TYPES, "", SHAPE_TAKES_MEMBER, query), \
	plan("", SHAPE_TAKES_CATEGORY, SHAPE_TAKES_MEMBER, query), \
	plan(SHAPE_TAKES_TYPES, SHAPE_TAKES_CATEGORY, SHAPE_TAKES_MEMBER, query)
#define FILTER_SHAPES(plan) \
	FILTER_SHAPES_WITH(plan, ""), \
	FILTER_SHAPES_WITH(plan, FILTER_TAKES_QUERY)
#define FILTER_SHAPE_COUNT 16

/* The number (0 to FILTER_SHAPE_COUNT - 1) of the shape of FILTER_TAKES's arguments in FILTER_SHAPES. */
static inline int
filter_shape(bool event_types_null, bool category_null, int32 consumer_group_size, bool query_null)
{
	return (event_types_null ? 0 : 1) | (category_null ? 0 : 2) | (consumer_group_size == 1 ? 0 : 4) |
		(query_null ? 0 : 8);
}

/*
 * The parameters of a read of the log through a filter: after ($1, $2), at
 * most $3, event types $4, FILTER_TAKES's $5 to $7, below the horizon $8,
 * FILTER_TAKES_QUERY's query $9 (a plan without it has it unused).
 */
#define FILTERED_LOG_ARGUMENT_COUNT 9
#define FILTERED_LOG_ARGUMENTS \
	FILTERED_LOG_ARGUMENT_COUNT, \
	{XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID, INT4OID, INT4OID, XID8OID, JSONBOID}

/* The head of the gap-safe log, and a checkpoint from a row (log.c); call while connected to SPI. */
extern Checkpoint visible_head(void);
extern Checkpoint checkpoint_from_row(HeapTuple row, TupleDesc description, int first_column);
extern void materialize_events(FunctionCallInfo fcinfo, KeptPlan *kept, Datum *values,
							   const bool *nulls);
extern int	event_columns_from_row(HeapTuple row, TupleDesc description, Datum *event,
								   bool *event_nulls);
extern ArrayType *event_tags(const Datum *event, const bool *event_nulls, int count);
extern int	arrange_event_columns(const Datum *stored, const bool *stored_nulls, int stored_count,
								  Datum checkpoint, Datum *event, bool *event_nulls);

#endif							/* EVENTSOURCE_LOG_H */
