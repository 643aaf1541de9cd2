/*-------------------------------------------------------------------------
 *
 * log.c
 *	  The head of the gap-safe global log, and the checkpoint of an event
 *	  read from a row.  The log's rules as SQL fragments are in log.h; its
 *	  horizon is epoch.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
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

/*
 * The checkpoint in columns first_column (an xid8) and first_column + 1 (a
 * bigint) of an SPI result row.
 */
Checkpoint
checkpoint_from_row(HeapTuple row, TupleDesc description, int first_column)
{
	Checkpoint	checkpoint;
	bool		isnull;

	checkpoint.transaction_id =
		U64FromFullTransactionId(DatumGetFullTransactionId(SPI_getbinval(row, description, first_column, &isnull)));
	checkpoint.global_position = DatumGetInt64(SPI_getbinval(row, description, first_column + 1, &isnull));
	return checkpoint;
}
