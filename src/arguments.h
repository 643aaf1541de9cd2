/*-------------------------------------------------------------------------
 *
 * arguments.h
 *	  The input limits of eventsource's SQL functions and the checks of
 *	  their arguments (arguments.c).  README.md documents the limits; keep
 *	  the two in step.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_ARGUMENTS_H
#define EVENTSOURCE_ARGUMENTS_H

#include "fmgr.h"
#include "utils/array.h"
#include "utils/jsonb.h"

/* Input limits, documented in README.md. */
#define EVENTSOURCE_MAX_STREAM_ID_BYTES		500
#define EVENTSOURCE_MAX_EVENT_TYPE_BYTES	255
#define EVENTSOURCE_MAX_TAG_BYTES			255
#define EVENTSOURCE_MAX_TAGS_PER_EVENT		100
#define EVENTSOURCE_MAX_READ_COUNT			100000
#define EVENTSOURCE_MAX_NAME_BYTES			255	/* subscriptions, projections */
#define EVENTSOURCE_MAX_CONSUMER_GROUP_SIZE	1000
#define EVENTSOURCE_MAX_LEASE_SECONDS		86400
#define EVENTSOURCE_MAX_ATTEMPTS			100 /* a projection's max_attempts */
#define EVENTSOURCE_MAX_SCAVENGE_EVENTS		100000	/* scavenge's max_events, a batch */
#define EVENTSOURCE_MAX_METADATA_NUMBER		INT64CONST(1000000000000000)	/* max_count, ... */
#define EVENTSOURCE_MAX_AGE_YEARS			1000	/* stream metadata's max_age */

extern void check_not_null(FunctionCallInfo fcinfo, int argno, const char *name);
extern int32 checked_integer(FunctionCallInfo fcinfo, int argno, const char *name,
							 int32 minimum, int32 maximum);
extern const char *checked_choice(FunctionCallInfo fcinfo, int argno, const char *name,
								  const char *first, const char *second);
extern int64 optional_stream_version(FunctionCallInfo fcinfo, int argno, const char *name,
									 int64 if_null);
extern text *checked_stream_id(FunctionCallInfo fcinfo, int argno, bool for_append);
extern text *checked_stream_id_text(text *stream_id, bool for_append);
extern text *checked_object_name(FunctionCallInfo fcinfo, int argno, const char *what);
extern Datum checked_event_type(const char *bytes, int length, const char *label);
/* The keys of a JSON object, one by one, with their values (for object, a JsonbIterator). */
extern bool next_object_key(JsonbIterator **iterator, JsonbValue *key, JsonbValue *value);

/* Whether a key next_object_key gave is literal. */
#define JSON_KEY_IS(key, literal) \
	((key).val.string.len == (int) strlen(literal) && \
	 memcmp((key).val.string.val, literal, (key).val.string.len) == 0)

extern Datum *json_array_strings(JsonbValue *value, int *count);
extern void check_tag(const char *bytes, int length, const char *label);
extern Datum checked_tags(Datum *tags, bool *tag_nulls, int count, const char *label, bool *none);
extern int32 checked_max_count(FunctionCallInfo fcinfo, int argno);
extern text *checked_category(FunctionCallInfo fcinfo, int argno);
extern ArrayType *checked_event_types(FunctionCallInfo fcinfo, int argno);
extern int32 checked_schema_version(FunctionCallInfo fcinfo, int argno, const char *name);
extern Datum checked_owner(FunctionCallInfo fcinfo, int argno);
extern char *text_for_message(text *value);

#endif							/* EVENTSOURCE_ARGUMENTS_H */
