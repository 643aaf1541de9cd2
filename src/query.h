/*-------------------------------------------------------------------------
 *
 * query.h
 *	  A query of events by event types and tags (query.c): what
 *	  eventsource.read_by_query reads.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_QUERY_H
#define EVENTSOURCE_QUERY_H

#include "utils/array.h"
#include "utils/jsonb.h"

#include "checkpoint.h"

/* The most items a query has. */
#define EVENTSOURCE_MAX_QUERY_ITEMS 100

/*
 * One item of a query: an event matches it when its type is one of types
 * (NULL: any type) and its tags contain all of tags (NULL: whatever its
 * tags).  An event matches a query when it matches any of its items.
 */
typedef struct QueryItem
{
	ArrayType  *types;			/* text[], or NULL */
	ArrayType  *tags;			/* text[], or NULL */
} QueryItem;

typedef struct EventQuery
{
	int			count;
	QueryItem  *items;
} EventQuery;

extern EventQuery *parse_event_query(Jsonb *query, const char *name);
extern uint64 read_query_item(const QueryItem *item, const Checkpoint *after, int32 limit,
							  Datum horizon, bool latest);

#endif							/* EVENTSOURCE_QUERY_H */
