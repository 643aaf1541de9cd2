/*-------------------------------------------------------------------------
 *
 * read.c
 *	  The read functions of eventsource: stream_version, read_stream, and the
 *	  gap-safe global log reads read_all, read_category and read_by_query.
 *
 * The global log is read in (transaction_id, global_position) order and only
 * up to the oldest transaction still running: every event of a transaction
 * whose id is below the snapshot's xmin has either committed or never will,
 * so no event can later appear before a checkpoint a reader has passed.
 * Global positions alone are not enough: they are taken at INSERT time and
 * transactions commit in another order.
 *
 * Rows go straight from the executor into the function's tuplestore, each
 * with its checkpoint (materialize_events, log.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

#include "arguments.h"
#include "checkpoint.h"
#include "epoch.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "log.h"
#include "query.h"
#include "streams.h"

PG_FUNCTION_INFO_V1(eventsource_stream_version);
PG_FUNCTION_INFO_V1(eventsource_read_all);
PG_FUNCTION_INFO_V1(eventsource_read_category);
PG_FUNCTION_INFO_V1(eventsource_read_by_query);
PG_FUNCTION_INFO_V1(eventsource_events_behind);

/*
 * Stream reads, forward and backward, from $2, at most $3 events.  With the
 * stream lifecycle (0.5.0 on) they show the versions from the first visible
 * one (lifecycle.c): [1] of each pair.
 */
#define READ_FORWARD(lowest) \
	STORED_EVENT_COLUMNS \
	" WHERE e.stream_id OPERATOR(pg_catalog.=) $1" \
	"   AND e.stream_version OPERATOR(pg_catalog.>=) " lowest \
	" ORDER BY e.stream_version LIMIT $3"
#define READ_BACKWARD(visible) \
	STORED_EVENT_COLUMNS \
	" WHERE e.stream_id OPERATOR(pg_catalog.=) $1" \
	"   AND e.stream_version OPERATOR(pg_catalog.<=) $2" visible \
	" ORDER BY e.stream_version DESC LIMIT $3"

static KeptPlan read_forward_plans[2] = {
	{READ_FORWARD("$2"), 3, {TEXTOID, INT8OID, INT4OID}},
	{READ_FORWARD("GREATEST($2, " FIRST_VISIBLE_VERSION_OF_STREAM_1 ")"), 3, {TEXTOID, INT8OID, INT4OID}}
};

static KeptPlan read_backward_plans[2] = {
	{READ_BACKWARD(""), 3, {TEXTOID, INT8OID, INT4OID}},
	{READ_BACKWARD(" AND e.stream_version OPERATOR(pg_catalog.>=) " FIRST_VISIBLE_VERSION_OF_STREAM_1),
	 3, {TEXTOID, INT8OID, INT4OID}}
};

/* $5 is read_category's category, $6 the horizon. */
static KeptPlan read_all_plan = {
	STORED_EVENT_COLUMNS
	LOG_CONDITIONS("$6")
	LOG_ORDER " LIMIT $3",
	6, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID, XID8OID}
};

static KeptPlan read_category_plan = {
	STORED_EVENT_COLUMNS
	LOG_CONDITIONS("$6")
	"   AND " CATEGORY_TAKES("$5::pg_catalog.text", EVENT_CATEGORY)
	LOG_ORDER " LIMIT $3",
	6, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID, XID8OID},

	/*
	 * Whether the category index or the log order index (filtering on the
	 * category) is faster depends on how common the category is: plan with it.
	 */
	CURSOR_OPT_CUSTOM_PLAN
};

/*
 * How many events a subscription's member or a projection has yet to take,
 * and the oldest's time: eventsource.events_behind, with the parameters and
 * filter of poll, so that the lag the status views show is what poll and
 * replay deliver.  One plan per shape of the filter's arguments, each kept
 * generic: the status views call it once per member and projection, and
 * planning it again at each call (with the values) cost eight times its run
 * on a small log.  Each reads the log order index (the category index for a
 * category) from the checkpoint to the horizon only.
 */
#define EVENTS_BEHIND_PLAN(types, category, member) \
	{"SELECT pg_catalog.count(*), pg_catalog.min(e.recorded_at) FROM eventsource.events e" \
	 LOG_RANGE("$8") types category member, \
	 FILTERED_LOG_ARGUMENTS, \
	 CURSOR_OPT_GENERIC_PLAN}

static KeptPlan events_behind_plans[FILTER_SHAPE_COUNT] = {
	FILTER_SHAPES(EVENTS_BEHIND_PLAN)
};

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
static Datum
read_stream(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, false);
	int32		max_count = checked_max_count(fcinfo, 2);
	bool		forward = strcmp(checked_choice(fcinfo, 3, "direction", "forward", "backward"),
								 "forward") == 0;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = PointerGetDatum(stream_id);
	values[1] = Int64GetDatum(optional_stream_version(fcinfo, 1, "from_version",
													  forward ? 1 : PG_INT64_MAX));
	values[2] = Int32GetDatum(max_count);
	materialize_events(fcinfo,
					   &(forward ? read_forward_plans : read_backward_plans)[streams_have_lifecycle(schema)],
					   values, nulls);
	return (Datum) 0;
}

SCHEMA_VERSIONED_FUNCTION(eventsource_read_stream, read_stream);

/*
 * Sets values[0] and values[1], the ($1, $2) of LOG_CONDITIONS, to the
 * checkpoint argument after_argno: the start of the log when it is NULL.
 */
static void
set_after_checkpoint(FunctionCallInfo fcinfo, int after_argno, Datum *values)
{
	Checkpoint	after = {0, 0};

	if (!PG_ARGISNULL(after_argno))
		after = *PG_GETARG_CHECKPOINT(after_argno);
	values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(after.transaction_id));
	values[1] = Int64GetDatum(after.global_position);
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
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, true, false};

	set_after_checkpoint(fcinfo, after_argno, values);
	values[2] = Int32GetDatum(max_count);

	values[3] = PointerGetDatum(checked_event_types(fcinfo, event_types_argno));
	nulls[3] = values[3] == (Datum) 0;

	values[5] = log_horizon_datum();
	if (category == NULL)
		materialize_events(fcinfo, &read_all_plan, values, nulls);
	else
	{
		values[4] = PointerGetDatum(category);
		nulls[4] = false;
		materialize_events(fcinfo, &read_category_plan, values, nulls);
	}
	return (Datum) 0;
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

/*
 * eventsource.events_behind(after, category, event_types,
 * consumer_group_size, consumer_group_member) returns table (events_behind
 * bigint, oldest_recorded_at timestamptz): the events of the gap-safe log
 * after the checkpoint (NULL: from its start) that the filter takes, counted,
 * and the recorded_at of the oldest of them (NULL when none).  The category
 * and event types are a filter's as stored: NULL takes every one, and the
 * category is not checked (a category with '-' takes no event, as it did in
 * the subscriptions and projections created before 0.7.0 refused it).
 */
Datum
eventsource_events_behind(PG_FUNCTION_ARGS)
{
	int32		group_size = checked_integer(fcinfo, 3, "consumer_group_size", 1,
											 EVENTSOURCE_MAX_CONSUMER_GROUP_SIZE);
	int32		member = checked_integer(fcinfo, 4, "consumer_group_member", 0, group_size - 1);
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};

	set_after_checkpoint(fcinfo, 0, values);
	values[2] = Int32GetDatum(1);
	values[3] = PointerGetDatum(checked_event_types(fcinfo, 2));
	nulls[3] = values[3] == (Datum) 0;
	values[4] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[4] = PG_ARGISNULL(1);
	values[5] = Int32GetDatum(group_size);
	values[6] = Int32GetDatum(member);
	values[7] = log_horizon_datum();
	materialize_read(fcinfo, &events_behind_plans[filter_shape(nulls[3], nulls[4], group_size)],
					 values, nulls);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * read_by_query
 * ------------------------------------------------------------------------
 */

/*
 * The events of one item of a query after ($1, $2), at most $3, of the event
 * types $4 (NULL: any), below the horizon $6, in log order.  An item with
 * tags $5 reads the tags index, and only the events that have them all
 * (then sorts them: OFFSET 0 keeps the planner from reading the log in its
 * order and filtering instead, which for a rare tag reads the whole log);
 * one without reads the log in its order.
 */
#define QUERY_ITEM_RANGE \
	LOG_CONDITIONS("$6")
#define QUERY_ITEM_ARGUMENTS \
	6, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTARRAYOID, XID8OID}

static KeptPlan query_tagged_item_plan = {
	"SELECT e.* FROM (" EVENT_COLUMNS QUERY_ITEM_RANGE
	"   AND e.tags IS NOT NULL AND e.tags OPERATOR(pg_catalog.@>) $5 OFFSET 0) e"
	LOG_ORDER " LIMIT $3",
	QUERY_ITEM_ARGUMENTS
};

static KeptPlan query_untagged_item_plan = {
	EVENT_COLUMNS QUERY_ITEM_RANGE LOG_ORDER " LIMIT $3",
	QUERY_ITEM_ARGUMENTS
};

/* An event one item of a query read, and its checkpoint. */
typedef struct QueriedEvent
{
	Checkpoint	checkpoint;
	HeapTuple	row;			/* of EVENT_COLUMNS */
} QueriedEvent;

static int
compare_queried_events(const void *left, const void *right)
{
	return compare_checkpoints(&((const QueriedEvent *) left)->checkpoint,
							   &((const QueriedEvent *) right)->checkpoint);
}

/*
 * eventsource.read_by_query(query, after, max_count) returns setof
 * eventsource.event: the events of the gap-safe log after the checkpoint
 * that match the query, at most max_count, in log order.  Each item is read
 * on its own, at most max_count of its events; the first max_count of their
 * union, without the events two items both matched, are the query's.
 */
Datum
eventsource_read_by_query(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *result = (ReturnSetInfo *) fcinfo->resultinfo;
	EventQuery *query;
	int32		max_count;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, true, true, false};
	MemoryContext caller_context = CurrentMemoryContext;
	QueriedEvent *events = NULL;
	TupleDesc	row_description = NULL;
	int			count = 0;
	int			allocated = 64;
	int			returned = 0;

	check_not_null(fcinfo, 0, "query");
	query = parse_event_query(PG_GETARG_JSONB_P(0), "query");
	max_count = checked_max_count(fcinfo, 2);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	set_after_checkpoint(fcinfo, 1, values);
	values[2] = Int32GetDatum(max_count);
	values[5] = log_horizon_datum();
	events = palloc(allocated * sizeof(QueriedEvent));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (int i = 0; i < query->count; i++)
	{
		QueryItem  *item = &query->items[i];
		uint64		rows;

		values[3] = PointerGetDatum(item->types);
		nulls[3] = item->types == NULL;
		values[4] = PointerGetDatum(item->tags);
		nulls[4] = item->tags == NULL;
		rows = run_kept_plan(item->tags != NULL ? &query_tagged_item_plan : &query_untagged_item_plan,
							 values, nulls, true);
		if (rows > 0 && row_description == NULL)
		{
			MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

			row_description = CreateTupleDescCopy(SPI_tuptable->tupdesc);
			MemoryContextSwitchTo(spi_context);
		}
		if (count + rows > (uint64) allocated)
		{
			allocated = count + rows;
			events = repalloc(events, allocated * sizeof(QueriedEvent));
		}
		for (uint64 row = 0; row < rows; row++)
		{
			bool		isnull;

			events[count].row = SPI_copytuple(SPI_tuptable->vals[row]);
			events[count].checkpoint =
				*(Checkpoint *) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
															  SPI_tuptable->tupdesc->natts, &isnull));
			count++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();

	qsort(events, count, sizeof(QueriedEvent), compare_queried_events);
	for (int i = 0; i < count && returned < max_count; i++)
	{
		Datum		columns[MAX_EVENT_COLUMNS];
		bool		column_nulls[MAX_EVENT_COLUMNS];

		if (i > 0 && compare_checkpoints(&events[i].checkpoint, &events[i - 1].checkpoint) == 0)
			continue;			/* matched by an earlier item too */
		(void) event_columns_from_row(events[i].row, row_description, columns, column_nulls);
		tuplestore_putvalues(result->setResult, result->setDesc, columns, column_nulls);
		returned++;
	}
	return (Datum) 0;
}
