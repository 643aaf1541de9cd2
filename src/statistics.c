/*-------------------------------------------------------------------------
 *
 * statistics.c
 *	  Counters of appends, version conflicts, idempotent retries, tombstone
 *	  rejections and scavenged events, kept in shared memory for the whole
 *	  cluster since the last reset, and the SQL functions that read and reset
 *	  them (eventsource.statistics(), eventsource.reset_statistics()).
 *
 * Shared memory exists only when the library is preloaded; otherwise
 * count_statistic counts nothing and statistics() returns NULLs.  A counter is
 * an atomic add: no lock, one cache line, nothing on the append path waits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "eventsource.h"
#include "statistics.h"

PG_FUNCTION_INFO_V1(eventsource_statistics);
PG_FUNCTION_INFO_V1(eventsource_reset_statistics);

typedef struct StatisticsShared
{
	pg_atomic_uint64 counters[STATISTIC_KINDS];
	pg_atomic_uint64 reset_at;	/* a TimestampTz */
} StatisticsShared;

static StatisticsShared *statistics_shared = NULL;
static shmem_request_hook_type previous_shmem_request_hook = NULL;
static shmem_startup_hook_type previous_shmem_startup_hook = NULL;

static void
statistics_shmem_request(void)
{
	if (previous_shmem_request_hook)
		previous_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(StatisticsShared));
}

static void
statistics_shmem_startup(void)
{
	bool		found;

	if (previous_shmem_startup_hook)
		previous_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	statistics_shared = ShmemInitStruct("eventsource statistics", sizeof(StatisticsShared), &found);
	if (!found)
	{
		for (int i = 0; i < STATISTIC_KINDS; i++)
			pg_atomic_init_u64(&statistics_shared->counters[i], 0);
		pg_atomic_init_u64(&statistics_shared->reset_at, (uint64) GetCurrentTimestamp());
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Called by _PG_init while the library is being preloaded.
 */
void
statistics_preload_init(void)
{
	previous_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = statistics_shmem_request;
	previous_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = statistics_shmem_startup;
}

void
count_statistic(StatisticKind kind, uint64 amount)
{
	if (statistics_shared != NULL)
		pg_atomic_fetch_add_u64(&statistics_shared->counters[kind], amount);
}

/*
 * eventsource.statistics() returns one row of counters (all NULL without the
 * preload).
 */
Datum
eventsource_statistics(PG_FUNCTION_ARGS)
{
	TupleDesc	description;
	Datum		values[STATISTIC_KINDS + 1];
	bool		nulls[STATISTIC_KINDS + 1];

	if (get_call_result_type(fcinfo, NULL, &description) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (description->natts != STATISTIC_KINDS + 1)
		elog(ERROR, "eventsource.statistics() returns %d columns, the library has %d counters",
			 description->natts, STATISTIC_KINDS);

	for (int i = 0; i <= STATISTIC_KINDS; i++)
		nulls[i] = statistics_shared == NULL;
	if (statistics_shared != NULL)
	{
		for (int i = 0; i < STATISTIC_KINDS; i++)
			values[i] = Int64GetDatum((int64) pg_atomic_read_u64(&statistics_shared->counters[i]));
		values[STATISTIC_KINDS] =
			TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&statistics_shared->reset_at));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(description), values, nulls)));
}

/*
 * eventsource.reset_statistics(): every counter to zero.
 */
Datum
eventsource_reset_statistics(PG_FUNCTION_ARGS)
{
	require_preloaded_library("eventsource.reset_statistics()",
							  "The counters live in shared memory, which only a preloaded library has.",
							  "Add eventsource to shared_preload_libraries in postgresql.conf and restart the server.");
	for (int i = 0; i < STATISTIC_KINDS; i++)
		pg_atomic_write_u64(&statistics_shared->counters[i], 0);
	pg_atomic_write_u64(&statistics_shared->reset_at, (uint64) GetCurrentTimestamp());
	PG_RETURN_VOID();
}
