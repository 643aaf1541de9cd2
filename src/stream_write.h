/*-------------------------------------------------------------------------
 *
 * stream_write.h
 *	  Writing a batch of events to a stream (stream_write.c): the batch, the
 *	  result of an append, and the system events.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_STREAM_WRITE_H
#define EVENTSOURCE_STREAM_WRITE_H

#include "eventsource.h"
#include "streams.h"

/* The events of one append, column by column, in stream order. */
typedef struct EventBatch
{
	int			count;
	Datum	   *event_ids;		/* uuid */
	Datum	   *event_types;	/* text */
	Datum	   *data;			/* jsonb */
	Datum	   *metadata;		/* jsonb */
	bool	   *metadata_nulls;
	Datum	   *tags;			/* text[] of checked tags (checked_tags) */
	bool	   *tags_nulls;		/* true: no tags (the default) */
	bool		ids_supplied;	/* did the caller give any event id? */
	bool		keys_locked;	/* the caller took the consistency keys of its events */
} EventBatch;

/* The outcome of an append: the stream's new version and the positions. */
typedef struct AppendResult
{
	int64		stream_version;
	int64	   *global_positions;	/* batch->count entries */
} AppendResult;

extern EventBatch *new_event_batch(int count);
extern Datum generate_event_id(void);
extern bool batch_already_appended(text *stream_id, EventBatch *batch);
extern void append_batch(text *stream_id, EventBatch *batch, ExpectedVersion expected,
						 StreamsSchema schema, AppendResult *result);

/* Appends one event to a stream the extension writes itself (the $streams audit stream, for one). */
extern void append_system_event(const char *stream, const char *event_type, const char *data_json,
								Oid role, StreamsSchema schema);

#endif							/* EVENTSOURCE_STREAM_WRITE_H */
