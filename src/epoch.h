/*-------------------------------------------------------------------------
 *
 * epoch.h
 *	  Log epochs (epoch.c): the log transaction id of a writing transaction
 *	  and the horizon of the gap-safe log.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_EPOCH_H
#define EVENTSOURCE_EPOCH_H

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

#endif							/* EVENTSOURCE_EPOCH_H */
