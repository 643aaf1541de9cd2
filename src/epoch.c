/*-------------------------------------------------------------------------
 *
 * epoch.c
 *	  The log transaction id: the place in the global log that every event
 *	  this transaction writes takes, before its global position.  Events
 *	  and the streams' last_transaction_id get it from log_transaction_id
 *	  alone, so that what it is can change here only.
 *
 * For now it is the transaction's full transaction id (an xid8, what
 * pg_current_xact_id returns): assigned at the transaction's first write,
 * growing with the order in which transactions first write.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"

#include "eventsource.h"

/*
 * This transaction's log transaction id; assigns the transaction its id if
 * it has none yet (as its first write would).
 */
uint64
log_transaction_id(void)
{
	return U64FromFullTransactionId(GetTopFullTransactionId());
}
