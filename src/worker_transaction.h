/*-------------------------------------------------------------------------
 *
 * worker_transaction.h
 *	  The transactions of eventsource's background workers
 *	  (worker_transaction.c), which every job of the worker runs in.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_WORKER_TRANSACTION_H
#define EVENTSOURCE_WORKER_TRANSACTION_H

#include "utils/elog.h"
#include "utils/palloc.h"

#include "trust.h"

/* Reset at the start of each round of the worker's loop; transactions end in it. */
extern MemoryContext worker_round_context;

extern void worker_set_session(void);
extern ExtensionTrust start_job_transaction(const char *activity);

/*
 * The transactions of the worker's jobs, as worker_spi runs
 * them: worker_start_transaction gives the transaction a fresh start time
 * (now()), shows activity in pg_stat_activity, locks the extension, takes
 * the snapshot and connects to SPI, and returns whether the worker may act
 * on the extension (only the installed extension, in a schema only
 * superusers can change: trust.c); worker_commit_transaction
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

#endif							/* EVENTSOURCE_WORKER_TRANSACTION_H */
