/*-------------------------------------------------------------------------
 *
 * arguments.c
 *	  The checks of the arguments of eventsource's SQL functions: every
 *	  input limit (arguments.h) is enforced here, with the error a caller
 *	  gets for a missing, empty, too long or out-of-range argument, so that
 *	  each function checks the same kind of argument the same way.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "arguments.h"
#include "eventsource.h"

/*
 * Raises the standard error for a NULL argument that must not be NULL.
 */
void
check_not_null(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/*
 * An integer argument that must be present and between minimum and maximum;
 * name is the argument's name for the errors.
 */
int32
checked_integer(FunctionCallInfo fcinfo, int argno, const char *name, int32 minimum, int32 maximum)
{
	int32		value;

	check_not_null(fcinfo, argno, name);
	value = PG_GETARG_INT32(argno);
	if (value < minimum || value > maximum)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %d and %d", name, minimum, maximum),
				 errdetail("%s was %d.", name, value)));
	return value;
}

/*
 * A stream version argument that may be NULL (then if_null is returned) but
 * not negative; name is the argument's name for the error.
 */
int64
optional_stream_version(FunctionCallInfo fcinfo, int argno, const char *name, int64 if_null)
{
	int64		version;

	if (PG_ARGISNULL(argno))
		return if_null;
	version = PG_GETARG_INT64(argno);
	if (version < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", name),
				 errdetail("%s was " INT64_FORMAT ".", name, version)));
	return version;
}

/*
 * The name argument of a subscription or projection (what): present, 1 to
 * EVENTSOURCE_MAX_NAME_BYTES bytes.
 */
text *
checked_object_name(FunctionCallInfo fcinfo, int argno, const char *what)
{
	text	   *name;
	int			length;

	check_not_null(fcinfo, argno, "name");
	name = PG_GETARG_TEXT_PP(argno);
	length = VARSIZE_ANY_EXHDR(name);
	if (length == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s name must not be empty", what)));
	if (length > EVENTSOURCE_MAX_NAME_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s name is too long", what),
				 errdetail("A %s name is at most %d bytes; this one is %d.",
						   what, EVENTSOURCE_MAX_NAME_BYTES, length)));
	return name;
}

/*
 * Returns the stream id argument after checking it is present, not empty,
 * within the length limit and has a non-empty category.  Ids that start with
 * '$' are reserved for streams the extension writes itself: for_append
 * rejects them.
 */
text *
checked_stream_id(FunctionCallInfo fcinfo, int argno, bool for_append)
{
	check_not_null(fcinfo, argno, "stream_id");
	return checked_stream_id_text(PG_GETARG_TEXT_PP(argno), for_append);
}

/* checked_stream_id of a stream id given otherwise than as an argument. */
text *
checked_stream_id_text(text *stream_id, bool for_append)
{
	const char *bytes = VARDATA_ANY(stream_id);
	int			length = VARSIZE_ANY_EXHDR(stream_id);

	if (length == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream_id must not be empty")));
	if (length > EVENTSOURCE_MAX_STREAM_ID_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("stream_id is too long"),
				 errdetail("A stream id is at most %d bytes; this one is %d.",
						   EVENTSOURCE_MAX_STREAM_ID_BYTES, length)));
	if (bytes[0] == '-')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream_id must not start with '-'"),
				 errdetail("The category of a stream is the part of its id before the first '-', and it must not be empty.")));
	if (for_append && bytes[0] == '$')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream_id \"%s\" is reserved", text_to_cstring(stream_id)),
				 errdetail("Stream ids that start with '$' are reserved for streams eventsource writes itself.")));
	return stream_id;
}

/* The most characters of an argument an error message quotes. */
#define MESSAGE_QUOTED_CHARACTERS	64

/*
 * An argument as an error message quotes it: whole when it has at most
 * MESSAGE_QUOTED_CHARACTERS characters, else the first of them and "...",
 * so that a huge argument does not flood the server log.
 */
char *
text_for_message(text *value)
{
	const char *bytes = VARDATA_ANY(value);
	int			length = VARSIZE_ANY_EXHDR(value);
	int			quoted = pg_mbcharcliplen(bytes, length, MESSAGE_QUOTED_CHARACTERS);

	if (quoted >= length)
		return text_to_cstring(value);
	return psprintf("%.*s...", quoted, bytes);
}

/* The max_count argument of the reads and poll: 1 to EVENTSOURCE_MAX_READ_COUNT. */
int32
checked_max_count(FunctionCallInfo fcinfo, int argno)
{
	return checked_integer(fcinfo, argno, "max_count", 1, EVENTSOURCE_MAX_READ_COUNT);
}

/*
 * An event_types argument: NULL (every type, returned as NULL) or a
 * non-empty array without nulls.
 */
ArrayType *
checked_event_types(FunctionCallInfo fcinfo, int argno)
{
	ArrayType  *event_types;

	if (PG_ARGISNULL(argno))
		return NULL;
	event_types = PG_GETARG_ARRAYTYPE_P(argno);
	if (ArrayGetNItems(ARR_NDIM(event_types), ARR_DIMS(event_types)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_types must not be an empty array"),
				 errhint("Pass NULL for events of every type.")));
	if (array_contains_nulls(event_types))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event_types must not contain nulls")));
	return event_types;
}

/*
 * The category argument of read_all, read_category, create_subscription and
 * create_projection (the caller handles NULL): not empty, and without '-',
 * for a category is the part of a stream id before its first '-' and one
 * with a '-' (a stream id passed by mistake) would match nothing.
 */
text *
checked_category(FunctionCallInfo fcinfo, int argno)
{
	text	   *category = PG_GETARG_TEXT_PP(argno);
	int			length = VARSIZE_ANY_EXHDR(category);

	if (length == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("category must not be empty")));
	if (memchr(VARDATA_ANY(category), '-', length) != NULL)
	{
		text	   *before_dash = category_of(category);

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("category \"%s\" contains '-'", text_for_message(category)),
				 errdetail("No stream's category contains '-', so the category would match nothing."),
				 VARSIZE_ANY_EXHDR(before_dash) > 0 ?
				 errhint("A category is the part of a stream id before its first '-': pass '%s'.",
						 text_for_message(before_dash)) :
				 errhint("A category is the part of a stream id before its first '-'.")));
	}
	return category;
}

/*
 * Checks an event type and returns it as text.  label names it in errors:
 * "event_type" (the argument) or "event N: type" (the key of a batch event).
 */
Datum
checked_event_type(const char *bytes, int length, const char *label)
{
	if (length == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", label)));
	if (length > EVENTSOURCE_MAX_EVENT_TYPE_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s is too long", label),
				 errdetail("An event type is at most %d bytes; this one is %d.",
						   EVENTSOURCE_MAX_EVENT_TYPE_BYTES, length)));
	return PointerGetDatum(cstring_to_text_with_len(bytes, length));
}

/*
 * The next key of the JSON object iterator walks, with its value: false when
 * the object has no more.
 */
bool
next_object_key(JsonbIterator **iterator, JsonbValue *key, JsonbValue *value)
{
	JsonbIteratorToken token;

	while ((token = JsonbIteratorNext(iterator, key, true)) != WJB_DONE)
	{
		if (token != WJB_KEY)
			continue;
		token = JsonbIteratorNext(iterator, value, true);
		Assert(token == WJB_VALUE);
		return true;
	}
	return false;
}

/*
 * The elements of a JSON array of strings, as text, and their number;
 * NULL when value is not an array or holds anything but strings.
 */
Datum *
json_array_strings(JsonbValue *value, int *count)
{
	JsonbIterator *iterator;
	JsonbValue	element;
	JsonbIteratorToken token;
	Datum	   *strings;

	*count = 0;
	if (value->type != jbvBinary || !JsonContainerIsArray(value->val.binary.data))
		return NULL;
	strings = palloc(Max(JsonContainerSize(value->val.binary.data), 1) * sizeof(Datum));
	iterator = JsonbIteratorInit(value->val.binary.data);
	while ((token = JsonbIteratorNext(&iterator, &element, true)) != WJB_DONE)
	{
		if (token != WJB_ELEM)
			continue;
		if (element.type != jbvString)
			return NULL;
		strings[(*count)++] = PointerGetDatum(cstring_to_text_with_len(element.val.string.val,
																	   element.val.string.len));
	}
	return strings;
}

/*
 * Checks one tag: 1 to EVENTSOURCE_MAX_TAG_BYTES bytes.  label names the tags
 * in errors ("tags", "event N: tags").
 */
void
check_tag(const char *bytes, int length, const char *label)
{
	if (length == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not contain an empty tag", label)));
	if (length > EVENTSOURCE_MAX_TAG_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s contains a tag that is too long", label),
				 errdetail("A tag is at most %d bytes; this one is %d.", EVENTSOURCE_MAX_TAG_BYTES, length)));
}

/*
 * The tags of an event, count text values (tag_nulls: which are NULL, or
 * NULL), as the text[] the log stores: each checked, at most
 * EVENTSOURCE_MAX_TAGS_PER_EVENT.  No tags at all (count 0) is *none, which
 * the log stores as NULL, so that the tags index holds tagged events only.
 */
Datum
checked_tags(Datum *tags, bool *tag_nulls, int count, const char *label, bool *none)
{
	if (count > EVENTSOURCE_MAX_TAGS_PER_EVENT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has %d tags", label, count),
				 errdetail("An event has at most %d tags.", EVENTSOURCE_MAX_TAGS_PER_EVENT)));
	for (int i = 0; i < count; i++)
	{
		text	   *tag;

		if (tag_nulls != NULL && tag_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", label)));
		tag = DatumGetTextPP(tags[i]);
		check_tag(VARDATA_ANY(tag), VARSIZE_ANY_EXHDR(tag), label);
	}
	*none = count == 0;
	if (*none)
		return (Datum) 0;
	return PointerGetDatum(construct_array(tags, count, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * A text argument that must be present and one of two words; name is the
 * argument's name for the errors.
 */
const char *
checked_choice(FunctionCallInfo fcinfo, int argno, const char *name, const char *first, const char *second)
{
	char	   *value;

	check_not_null(fcinfo, argno, name);
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(value, first) != 0 && strcmp(value, second) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s \"%s\"", name, value),
				 errhint("Use '%s' or '%s'.", first, second)));
	return value;
}

/*
 * A schema version argument: positive.  The caller handles NULL.
 */
int32
checked_schema_version(FunctionCallInfo fcinfo, int argno, const char *name)
{
	int32		schema_version = PG_GETARG_INT32(argno);

	if (schema_version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be positive", name),
				 errdetail("%s was %d.", name, schema_version)));
	return schema_version;
}

/* An owner argument: a role ('-', which regrole reads as OID 0, is none). */
Datum
checked_owner(FunctionCallInfo fcinfo, int argno)
{
	Oid			owner = PG_GETARG_OID(argno);

	if (!OidIsValid(owner) || GetUserNameFromId(owner, true) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("owner must be an existing role"),
				 errdetail("owner was OID %u.", owner)));
	return ObjectIdGetDatum(owner);
}
