/*-------------------------------------------------------------------------
 *
 * statistics.h
 *	  The counters in shared memory (statistics.c) that eventsource.statistics()
 *	  reports: what appends, conflicts, retries and scavenge did.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_STATISTICS_H
#define EVENTSOURCE_STATISTICS_H

/* Counters in shared memory (statistics.c); without the preload they count nothing. */
typedef enum StatisticKind
{
	STATISTIC_APPENDS,
	STATISTIC_EVENTS_APPENDED,
	STATISTIC_VERSION_CONFLICTS,
	STATISTIC_IDEMPOTENT_RETRIES,
	STATISTIC_TOMBSTONE_REJECTIONS,
	STATISTIC_EVENTS_SCAVENGED,
	STATISTIC_KINDS				/* their number */
} StatisticKind;

extern void statistics_preload_init(void);
extern void count_statistic(StatisticKind kind, uint64 amount);

#endif							/* EVENTSOURCE_STATISTICS_H */
