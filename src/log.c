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
 * The rows of eventsource.event that a read function returns: its stored
 * columns (STORED_EVENT_COLUMNS), then the checkpoint, which this receiver
 * adds as it puts each row into the function's tuplestore.  Computing the
 * checkpoint in the statement instead makes the scan project every row: a
 * 1,000-event read_stream ran at 0.77x-0.80x a plain SELECT of the stored
 * columns that way, 0.83x-0.92x this way (one client).
 */
#define STORED_EVENT_COLUMN_COUNT 9
#define EVENT_GLOBAL_POSITION_COLUMN 0
#define EVENT_TRANSACTION_ID_COLUMN 1

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

	if (stored->natts != STORED_EVENT_COLUMN_COUNT ||
		events->event_type->natts != STORED_EVENT_COLUMN_COUNT + 1)
		elog(ERROR, "a read returned %d columns for a row type of %d",
			 stored->natts, events->event_type->natts);
}

static bool
receive_event_row(TupleTableSlot *slot, DestReceiver *self)
{
	EventRowsReceiver *events = (EventRowsReceiver *) self;
	Datum		values[STORED_EVENT_COLUMN_COUNT + 1];
	bool		nulls[STORED_EVENT_COLUMN_COUNT + 1];
	Checkpoint	checkpoint;

	slot_getallattrs(slot);
	memcpy(values, slot->tts_values, STORED_EVENT_COLUMN_COUNT * sizeof(Datum));
	memcpy(nulls, slot->tts_isnull, STORED_EVENT_COLUMN_COUNT * sizeof(bool));
	checkpoint = checkpoint_of(values[EVENT_TRANSACTION_ID_COLUMN], values[EVENT_GLOBAL_POSITION_COLUMN]);
	values[STORED_EVENT_COLUMN_COUNT] = PointerGetDatum(&checkpoint);
	nulls[STORED_EVENT_COLUMN_COUNT] = false;
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
