/*-------------------------------------------------------------------------
 *
 * checkpoint.h
 *	  The eventsource.checkpoint type (checkpoint.c): a place in the global
 *	  log.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_CHECKPOINT_H
#define EVENTSOURCE_CHECKPOINT_H

#include "fmgr.h"

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
extern Checkpoint *checkpoint_from_cstring(const char *input);

#endif							/* EVENTSOURCE_CHECKPOINT_H */
