/*-------------------------------------------------------------------------
 *
 * query.h
 *	  A query of events by event types and tags (query.c): what
 *	  eventsource.read_by_query reads, and what a subscription or a
 *	  projection of a query takes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_QUERY_H
#define EVENTSOURCE_QUERY_H

#include "fmgr.h"
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
	Datum	   *type_values;	/* the elements of types (text), type_count of them */
	int			type_count;
	Datum	   *tag_values;		/* the elements of tags (text), tag_count of them */
	int			tag_count;
} QueryItem;

typedef struct EventQuery
{
	int			count;
	QueryItem  *items;
	int			terms;			/* items, types and tags: what a match may compare */
} EventQuery;

extern EventQuery *parse_event_query(Jsonb *query, const char *name);
extern Jsonb *checked_query(FunctionCallInfo fcinfo, int argno);
extern bool event_matches_query(const EventQuery *query, text *event_type, ArrayType *tags);
extern uint64 read_query_item(const QueryItem *item, const Checkpoint *after, int32 limit,
							  Datum horizon, bool latest);

#endif							/* EVENTSOURCE_QUERY_H */
