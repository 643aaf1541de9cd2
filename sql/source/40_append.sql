-- 40_append.sql: appending events.
--
-- append and append_events write as the extension's owner: they switch to it themselves, as a
-- SECURITY DEFINER function would, without its cost per call (a GUC nest level, the search path
-- set and reset); their statements do not depend on the caller's search path. The statement
-- that writes a stream's row takes the transaction's log transaction id from
-- stream_log_transaction_id, which also keeps the stream's writers in log order.
-- append_to_streams takes the turns of all its streams in one order before it writes any.

CREATE FUNCTION eventsource.append(
    stream_id        text,
    event_type       text,
    data             jsonb,
    metadata         jsonb  DEFAULT NULL,
    expected_version bigint DEFAULT NULL,
    event_id         uuid   DEFAULT NULL,
    tags             text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_append_0_8';

COMMENT ON FUNCTION eventsource.append(text, text, jsonb, jsonb, bigint, uuid, text[]) IS
    'Appends one event to a stream and returns the stream''s new version. expected_version: NULL any, 0 no stream, -1 stream exists, N exactly N. tags: the event''s tags.';

CREATE FUNCTION eventsource.append_events(
    stream_id        text,
    events           jsonb,
    expected_version bigint DEFAULT NULL,
    OUT stream_version   bigint,
    OUT global_positions bigint[])
RETURNS record
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_append_events_0_8';

COMMENT ON FUNCTION eventsource.append_events(text, jsonb, bigint) IS
    'Appends a JSON array of {"type", "data", "metadata", "tags", "id"} events to a stream atomically; returns the new stream version and the global positions taken.';

CREATE FUNCTION eventsource.append_to_streams(appends jsonb, condition jsonb DEFAULT NULL)
RETURNS TABLE (stream_id text, stream_version bigint, global_positions bigint[])
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_append_to_streams_0_8';

COMMENT ON FUNCTION eventsource.append_to_streams(jsonb, jsonb) IS
    'Appends to many streams atomically: appends is a JSON array of {"stream_id", "expected_version", "events"}; an entry without events only checks its stream''s version. condition, {"fail_if_events_match": query, "after": checkpoint}, fails the call (SE006) if an event that matches the query comes after the checkpoint. Returns a row per entry: the stream''s version and the global positions taken.';

-- Lifecycle markers in log order. Each stream's row records the log transaction id of the
-- last transaction that appended to, deleted or tombstoned it; the statement that writes the row
-- refuses (40001) a transaction whose id is older, whose events or $stream-deleted /
-- $stream-tombstoned marker would come before that transaction's in the global log.
CREATE FUNCTION eventsource.stream_log_transaction_id(stream_id text, latest_transaction_id xid8, operation text)
RETURNS xid8
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_stream_log_transaction_id';

COMMENT ON FUNCTION eventsource.stream_log_transaction_id(text, xid8, text) IS
    'Internal to the statements that append to, delete or tombstone a stream: this transaction''s log transaction id, or 40001 if latest_transaction_id (the stream''s last_transaction_id) is newer. Granted to nobody.';
