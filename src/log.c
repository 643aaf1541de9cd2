/*-------------------------------------------------------------------------
 *
 * log.c
 *	  The head of the gap-safe global log, the checkpoint of an event read
 *	  from a row, and the rows of the read functions, to which it adds the
 *	  checkpoint.  The log's rules as SQL fragments are in log.h; its
 *	  horizon is epoch.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "tcop/dest.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

#include "checkpoint.h"
#include "epoch.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "log.h"

/* The newest event below the horizon: the head of the gap-safe log. */
static KeptPlan visible_head_plan = {
	"SELECT e.transaction_id, e.global_position FROM eventsource.events e"
	" WHERE e.transaction_id OPERATOR(pg_catalog.<) $1"
	" ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1",
	1, {XID8OID}
};

/*
 * The checkpoint of the newest event of the gap-safe log, (0,0) when it has
 * none.  Call while connected to SPI.
 */
Checkpoint
visible_head(void)
{
	Checkpoint	head = {0, 0};
	Datum		values[1] = {log_horizon_datum()};

	if (run_kept_plan(&visible_head_plan, values, NULL, true) > 0)
		head = checkpoint_from_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return head;
}

/* The checkpoint of an event's transaction_id (an xid8) and global_position (a bigint). */
static Checkpoint
checkpoint_of(Datum transaction_id, Datum global_position)
{
	Checkpoint	checkpoint;

	checkpoint.transaction_id = U64FromFullTransactionId(DatumGetFullTransactionId(transaction_id));
	checkpoint.global_position = DatumGetInt64(global_position);
	return checkpoint;
}

/*
 * The checkpoint in columns first_column (an xid8) and first_column + 1 (a
 * bigint) of an SPI result row.
 */
Checkpoint
checkpoint_from_row(HeapTuple row, TupleDesc description, int first_column)
{
	bool		isnull;

	return checkpoint_of(SPI_getbinval(row, description, first_column, &isnull),
						 SPI_getbinval(row, description, first_column + 1, &isnull));
}

/*
 * The columns of eventsource.event from a row of EVENT_COLUMNS (the stored
 * columns, then the checkpoint), as arrange_event_columns.
 */
int
event_columns_from_row(HeapTuple row, TupleDesc description, Datum *event, bool *event_nulls)
{
	Datum		columns[MAX_EVENT_COLUMNS];
	bool		column_nulls[MAX_EVENT_COLUMNS];

	if (description->natts > MAX_EVENT_COLUMNS)
		elog(ERROR, "a row of an event has %d columns", description->natts);
	heap_deform_tuple(row, description, columns, column_nulls);
	return arrange_event_columns(columns, column_nulls, description->natts - 1,
								 columns[description->natts - 1], event, event_nulls);
}

/*
 * The rows of eventsource.event that a read function returns: its stored
 * columns (STORED_EVENT_COLUMNS), with the checkpoint, which this receiver
 * adds as it puts each row into the function's tuplestore.  Computing the
 * checkpoint in the statement instead makes the scan project every row: a
 * 1,000-event read_stream ran at 0.77x-0.80x a plain SELECT of the stored
 * columns that way, 0.83x-0.92x this way (one client).
 */
#define FIRST_STORED_EVENT_COLUMNS 9	/* those of 0.1.0, before the checkpoint */
#define EVENT_GLOBAL_POSITION_COLUMN 0
#define EVENT_TRANSACTION_ID_COLUMN 1

/*
 * The columns of eventsource.event, into event and event_nulls, from the
 * stored_count stored columns of an event (those of its schema: 9, or 10
 * with tags) and its checkpoint (a Datum of a Checkpoint): the first nine,
 * the checkpoint, then the rest.  Returns their number, stored_count + 1.
 */
int
arrange_event_columns(const Datum *stored, const bool *stored_nulls, int stored_count,
					  Datum checkpoint, Datum *event, bool *event_nulls)
{
	if (stored_count < FIRST_STORED_EVENT_COLUMNS || stored_count >= MAX_EVENT_COLUMNS)
		elog(ERROR, "an event has %d stored columns", stored_count);
	memcpy(event, stored, FIRST_STORED_EVENT_COLUMNS * sizeof(Datum));
	memcpy(event_nulls, stored_nulls, FIRST_STORED_EVENT_COLUMNS * sizeof(bool));
	event[FIRST_STORED_EVENT_COLUMNS] = checkpoint;
	event_nulls[FIRST_STORED_EVENT_COLUMNS] = false;
	memcpy(event + FIRST_STORED_EVENT_COLUMNS + 1, stored + FIRST_STORED_EVENT_COLUMNS,
		   (stored_count - FIRST_STORED_EVENT_COLUMNS) * sizeof(Datum));
	memcpy(event_nulls + FIRST_STORED_EVENT_COLUMNS + 1, stored_nulls + FIRST_STORED_EVENT_COLUMNS,
		   (stored_count - FIRST_STORED_EVENT_COLUMNS) * sizeof(bool));
	return stored_count + 1;
}

/* The tags of an event of count columns (arrange_event_columns's), or NULL: none. */
ArrayType *
event_tags(const Datum *event, const bool *event_nulls, int count)
{
	int			column = FIRST_STORED_EVENT_COLUMNS + 1;

	return count > column && !event_nulls[column] ? DatumGetArrayTypeP(event[column]) : NULL;
}

typedef struct EventRowsReceiver
{
	DestReceiver receiver;		/* first: what the executor calls */
	Tuplestorestate *result;
	TupleDesc	event_type;		/* eventsource.event */
} EventRowsReceiver;

static void
start_event_rows(DestReceiver *self, int operation, TupleDesc stored)
{
	EventRowsReceiver *events = (EventRowsReceiver *) self;

	if (events->event_type->natts != stored->natts + 1)
		elog(ERROR, "a read returned %d columns for a row type of %d",
			 stored->natts, events->event_type->natts);
}

static bool
receive_event_row(TupleTableSlot *slot, DestReceiver *self)
{
	EventRowsReceiver *events = (EventRowsReceiver *) self;
	Datum		values[MAX_EVENT_COLUMNS];
	bool		nulls[MAX_EVENT_COLUMNS];
	Checkpoint	checkpoint;

	slot_getallattrs(slot);
	checkpoint = checkpoint_of(slot->tts_values[EVENT_TRANSACTION_ID_COLUMN],
							   slot->tts_values[EVENT_GLOBAL_POSITION_COLUMN]);
	(void) arrange_event_columns(slot->tts_values, slot->tts_isnull, slot->tts_tupleDescriptor->natts,
								 PointerGetDatum(&checkpoint), values, nulls);
	/* copies the row, its checkpoint too, into the tuplestore's memory */
	tuplestore_putvalues(events->result, events->event_type, values, nulls);
	return true;
}

static void
end_event_rows(DestReceiver *self)
{
}

static void
destroy_event_rows(DestReceiver *self)
{
	pfree(self);
}

/*
 * Runs a kept read plan of STORED_EVENT_COLUMNS with its rows, and their
 * checkpoints, going straight into the set-returning function's result of
 * eventsource.event.  Connects to SPI itself.
 */
void
materialize_events(FunctionCallInfo fcinfo, KeptPlan *kept, Datum *values, const bool *nulls)
{
	ReturnSetInfo *result = (ReturnSetInfo *) fcinfo->resultinfo;
	EventRowsReceiver *events;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	events = palloc0(sizeof(EventRowsReceiver));
	events->receiver.receiveSlot = receive_event_row;
	events->receiver.rStartup = start_event_rows;
	events->receiver.rShutdown = end_event_rows;
	events->receiver.rDestroy = destroy_event_rows;
	events->receiver.mydest = DestTuplestore;
	events->result = result->setResult;
	events->event_type = result->setDesc;
	run_reads_into(&events->receiver, &kept, 1, values, nulls);
}
