/*-------------------------------------------------------------------------
 *
 * worker_shared.h
 *	  The shared memory of eventsource's background workers (the launcher
 *	  and each database's notifier) and what backends tell them through it
 *	  (worker_shared.c): waking a database's worker at commit, the launcher
 *	  at a change to the databases or their extensions; the databases the
 *	  settings have the worker serve, and which of its jobs are on.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_WORKER_SHARED_H
#define EVENTSOURCE_WORKER_SHARED_H

#include "access/transam.h"
#include "catalog/pg_database.h"
#include "nodes/pg_list.h"
#include "storage/spin.h"

#include "checkpoint.h"

/*
 * How many databases in which an extension was created or changed backends
 * can report before the launcher takes them; beyond, it looks again at every
 * database it found without the extension.
 */
#define LOOK_REQUESTS			32

/* What the worker of a slot found when it started. */
typedef enum InstallationFound
{
	INSTALLATION_NOT_LOOKED_AT, /* no worker has looked yet */
	INSTALLATION_FOUND,			/* the extension is installed: it serves */
	INSTALLATION_ABSENT			/* it is not: the worker exited */
} InstallationFound;

/* One database's notifier. */
typedef struct NotifierSlot
{
	Oid			database_oid;	/* InvalidOid: the slot is free */
	char		database_name[NAMEDATALEN];
	pid_t		pid;			/* the running notifier, 0 when none */
	int			procno;			/* its PGPROC number, for its latch */
	bool		paused;			/* a statement needs the database to itself */
	bool		restart_at_once;	/* stopped by a pause: no restart delay */
	InstallationFound installation; /* set by the worker */
	bool		extension_dropped;	/* by a committed transaction since */
	uint64		wakeups;
	uint64		notifications;
	bool		has_notified;
	Checkpoint	last_checkpoint;
	TimestampTz last_notified_at;

	/*
	 * Set, unlocked, by a backend whose transaction appended events, when it
	 * commits and before it sets the notifier's latch (SetLatch's barrier
	 * orders the two); cleared by the notifications job before it looks.  A
	 * latch alone would not do: a handler the worker calls may reset it
	 * (pg_sleep, a lock wait).  Other jobs end their slices when it is set
	 * (worker_slice_ends).
	 */
	bool		events_committed;
} NotifierSlot;

/* A prepared transaction that created, altered or dropped an extension. */
typedef struct PreparedChange
{
	Oid			database_oid;
	TransactionId transaction_id;
	bool		extension_changed;
	bool		extension_dropped;
} PreparedChange;

typedef struct NotifierShared
{
	slock_t		mutex;			/* protects everything below */
	pid_t		launcher_pid;
	int			launcher_procno;
	/* Databases in which a committed transaction created or altered an extension. */
	int			look_request_count;
	bool		look_requests_lost; /* more than LOOK_REQUESTS came */
	Oid			look_requests[LOOK_REQUESTS];
	/*
	 * What the launcher reports once each prepared transaction commits: the
	 * prepared_change_count first of prepared_changes, which has room for
	 * every transaction that may be prepared or preparing at a time
	 * (prepared_change_capacity).  Those prepared before
	 * prepared_followed_since (by an earlier server, before a restart) are
	 * added by the looks at their databases.
	 */
	int			prepared_change_count;
	FullTransactionId prepared_followed_since;
	int			slot_count;		/* eventsource.max_databases */
	NotifierSlot slots[FLEXIBLE_ARRAY_MEMBER];
	/* PreparedChange prepared_changes[prepared_change_capacity()] follows */
} NotifierShared;

/* The launcher's and the notifiers' shared memory, NULL without the preloaded library. */
extern NotifierShared *notifier_shared;

extern void worker_shared_preload_init(void);
extern void set_latch_of(int procno);
extern void wake_launcher(void);

/* What to do when this backend's transaction ends (see at_transaction_end). */
#define WAKE_NOTIFIER_AT_COMMIT		0x01	/* it appended: its database's notifier */
#define WAKE_LAUNCHER_AT_END		0x02	/* a database may be new, or free again */
#define EXTENSION_CHANGED_AT_COMMIT 0x04	/* the launcher looks at this database */
#define EXTENSION_DROPPED_AT_COMMIT 0x08	/* this database's notifier stops */
extern void at_transaction_end(int actions);

/*
 * Prepared transactions that changed an extension: followed from PREPARE
 * TRANSACTION on, reported to the launcher once committed.
 */
extern void follow_prepared_change(TransactionId transaction_id, bool changed, bool dropped);
extern bool take_resolved_prepared_changes(void);

/* Whether each job of the worker is on, by its settings; the worker runs while one is. */
extern bool notifications_on(void);
extern bool async_projections_on(void);
extern bool scavenge_on(void);

/* The databases to serve, by the settings (databases_to_serve) and pg_database. */
extern bool databases_to_serve(List **names);
extern bool database_to_serve(Form_pg_database database, bool every_database, List *names);

/*
 * In a database's worker: its slot, when its notifications job has work by
 * its own timing (DT_NOEND while it is off or rests after a failure), and
 * until when the commits that set events_committed gather before they end a
 * slice, set by the worker's loop before each slice of its other jobs
 * (notifier.c).
 */
extern NotifierSlot *worker_slot;
extern TimestampTz worker_notifications_due_at;
extern TimestampTz worker_commits_gather_until;

/* For the worker's jobs: whether the slice given deadline ends now. */
extern bool worker_slice_ends(TimestampTz deadline);

/* For the features: waking this database's worker at commit, and whether one serves it. */
extern void notifier_wake_at_commit(void);
extern bool notifier_serves_this_database(void);

#endif							/* EVENTSOURCE_WORKER_SHARED_H */
