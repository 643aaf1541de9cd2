/*-------------------------------------------------------------------------
 *
 * consistency.h
 *	  The consistency keys of appends and of the conditions of
 *	  append_to_streams, and the check of a condition (consistency.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_CONSISTENCY_H
#define EVENTSOURCE_CONSISTENCY_H

#include "storage/lockdefs.h"

#include "checkpoint.h"
#include "query.h"

/* A lock a call takes on a consistency key: the key's hash, and the mode. */
typedef struct ConsistencyKey
{
	uint64		hash;
	LOCKMODE	mode;
} ConsistencyKey;

/* The keys a call takes, gathered before they are taken in one order. */
typedef struct ConsistencyKeys
{
	int			count;
	int			allocated;
	ConsistencyKey *keys;
} ConsistencyKeys;

extern void add_event_keys(ConsistencyKeys *keys, Datum event_type, Datum tags, bool tags_null);
extern void add_condition_keys(ConsistencyKeys *keys, const EventQuery *condition);
extern void lock_consistency_keys(ConsistencyKeys *keys, bool condition);
extern void check_condition_items(const EventQuery *condition);
extern void raise_if_condition_matched(const EventQuery *condition, const Checkpoint *after);

#endif							/* EVENTSOURCE_CONSISTENCY_H */
