-- 41_read.sql: reading streams, categories and the global log.
--
-- The reads run as their caller: eventsource_reader may SELECT the tables they read. The global
-- log is gap-safe: read_all and read_category deliver only events below log_horizon().

CREATE FUNCTION eventsource.category(stream_id text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.split_part(stream_id, '-', 1);

COMMENT ON FUNCTION eventsource.category(text) IS
    'The category of a stream: the part of its id before the first ''-'' (order-42 is in order).';

CREATE FUNCTION eventsource.stream_version(stream_id text)
RETURNS bigint
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'eventsource_stream_version';

COMMENT ON FUNCTION eventsource.stream_version(text) IS
    'The current version of a stream: the number of events appended to it, 0 when it does not exist.';

CREATE FUNCTION eventsource.read_stream(
    stream_id    text,
    from_version bigint DEFAULT NULL,
    max_count    integer DEFAULT 1000,
    direction    text DEFAULT 'forward')
RETURNS SETOF eventsource.event
LANGUAGE c STABLE PARALLEL SAFE ROWS 1000
AS 'MODULE_PATHNAME', 'eventsource_read_stream_0_8';

COMMENT ON FUNCTION eventsource.read_stream(text, bigint, integer, text) IS
    'Reads up to max_count events of one stream from from_version (inclusive), forward or backward. NULL from_version: the first event forward, the last backward.';

CREATE FUNCTION eventsource.read_all(
    after       eventsource.checkpoint DEFAULT NULL,
    max_count   integer DEFAULT 1000,
    category    text DEFAULT NULL,
    event_types text[] DEFAULT NULL)
RETURNS SETOF eventsource.event
LANGUAGE c STABLE PARALLEL SAFE ROWS 1000
AS 'MODULE_PATHNAME', 'eventsource_read_all';

COMMENT ON FUNCTION eventsource.read_all(eventsource.checkpoint, integer, text, text[]) IS
    'Reads the gap-safe global log after a checkpoint (NULL: from the start), optionally of one category and of some event types only.';

CREATE FUNCTION eventsource.read_category(
    category    text,
    after       eventsource.checkpoint DEFAULT NULL,
    max_count   integer DEFAULT 1000,
    event_types text[] DEFAULT NULL)
RETURNS SETOF eventsource.event
LANGUAGE c STABLE PARALLEL SAFE ROWS 1000
AS 'MODULE_PATHNAME', 'eventsource_read_category';

COMMENT ON FUNCTION eventsource.read_category(text, eventsource.checkpoint, integer, text[]) IS
    'Reads the gap-safe log of one category after a checkpoint (NULL: from the start), optionally of some event types only.';

-- PARALLEL UNSAFE: its wait for older transactions runs in a subtransaction, which parallel mode
-- does not allow.
CREATE FUNCTION eventsource.read_by_query(
    query     jsonb,
    after     eventsource.checkpoint DEFAULT NULL,
    max_count integer DEFAULT 1000)
RETURNS SETOF eventsource.event
LANGUAGE c STABLE PARALLEL UNSAFE ROWS 1000
AS 'MODULE_PATHNAME', 'eventsource_read_by_query';

COMMENT ON FUNCTION eventsource.read_by_query(jsonb, eventsource.checkpoint, integer) IS
    'Reads the events of the gap-safe global log after a checkpoint (NULL: from the start) that match a query, {"items": [{"types": [...], "tags": [...]}, ...]}: an event matches an item when its type is one of the item''s types (any when omitted) and its tags contain all the item''s tags, and the query when it matches any item.';

CREATE FUNCTION eventsource.log_horizon() RETURNS xid8
LANGUAGE c STABLE STRICT PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'eventsource_log_horizon';

COMMENT ON FUNCTION eventsource.log_horizon() IS
    'The horizon of the gap-safe global log: reads deliver only events whose transaction_id is below it (the oldest running transaction plus its log epoch''s offset).';

CREATE FUNCTION eventsource.events_behind(
    after                 eventsource.checkpoint,
    category              text,
    event_types           text[],
    consumer_group_size   integer DEFAULT 1,
    consumer_group_member integer DEFAULT 0,
    query                 jsonb   DEFAULT NULL)
RETURNS TABLE (events_behind bigint, oldest_recorded_at timestamptz)
LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 1
AS 'MODULE_PATHNAME', 'eventsource_events_behind';

COMMENT ON FUNCTION eventsource.events_behind(eventsource.checkpoint, text, text[], integer, integer, jsonb) IS
    'How many events of the gap-safe log after a checkpoint (NULL: from the start) a filter takes (a category, event types and a query, NULL: all; a member of a consumer group), as poll and the worker deliver them, and the recorded_at of the oldest of them: the lag subscription_status and projection_status show.';

CREATE FUNCTION eventsource.event_matches_query(event_type text, tags text[], query jsonb)
RETURNS boolean
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'eventsource_event_matches_query';

COMMENT ON FUNCTION eventsource.event_matches_query(text, text[], jsonb) IS
    'Whether an event of the type with the tags (NULL: none) matches a query, as read_by_query reads it: the filter of a subscription or projection of a query. NULL when the event type or the query is NULL.';
