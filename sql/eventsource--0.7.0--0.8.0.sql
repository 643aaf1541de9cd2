-- eventsource--0.7.0--0.8.0.sql: upgrade from 0.7.0 to 0.8.0.
--
-- From 0.8.0 on, a fresh install runs one script built from sql/source/ (the current definition
-- of every object) instead of 0.1.0's and every upgrade after it; this script brings a database
-- installed earlier to the same objects (test/sql/upgrade.sql compares the two).

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.8.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Comments that said less than the code does: the log is written by the lifecycle functions too
-- and scavenge deletes from it; the streams carry their lifecycle; snapshots are removed by
-- deletes and scavenge; every trigger says what it does.
-- ---------------------------------------------------------------------------------------------

COMMENT ON TABLE eventsource.events IS
    'The event log. Written by append and append_events, and by delete_stream, tombstone_stream and set_stream_metadata (their audit events in the $streams stream); never updated; only scavenge deletes, the events that deletes and retention settings hide once no subscription or async projection is owed them.';

COMMENT ON TABLE eventsource.streams IS
    'One row per stream: its category, its current stream version (the number of events appended to it), its retention settings, delete and tombstone, and the last transaction that wrote it.';

COMMENT ON TABLE eventsource.snapshots IS
    'Aggregate state as of a stream version, one row per (stream, stream version, schema version): written by eventsource.save_snapshot, which keeps the newest eventsource.snapshots_to_keep of a stream; removed by delete_snapshots, delete_stream, tombstone_stream and scavenge.';

COMMENT ON FUNCTION eventsource.reject_event_change() IS
    'Trigger function that guards eventsource.events: raises an error on UPDATE, DELETE and TRUNCATE, whoever runs them, except for the DELETE of eventsource.scavenge. Its triggers fire on the origin only: not where session_replication_role is replica (which only a superuser sets, or a role granted SET on it), so that logical replication applies the publisher''s scavenge.';

COMMENT ON TRIGGER events_append_only ON eventsource.events IS
    'Refuses every UPDATE of a recorded event, and every DELETE but scavenge''s of the events that deletes and retention settings hide (eventsource.reject_event_change); on the origin only, not where session_replication_role is replica.';

COMMENT ON TRIGGER events_append_only_truncate ON eventsource.events IS
    'Refuses every TRUNCATE of the log (eventsource.reject_event_change); on the origin only, not where session_replication_role is replica.';

COMMENT ON TRIGGER events_inline_projections ON eventsource.events IS
    'Feeds the events each INSERT appends to the running inline projections (eventsource.run_inline_projections); enabled while one exists, disabled otherwise.';

COMMENT ON TRIGGER projections_synchronize_inline ON eventsource.projections IS
    'After each statement that changes the projections, enables the log''s inline trigger while a running inline projection exists and disables it otherwise (eventsource.synchronize_inline_projections).';

-- ---------------------------------------------------------------------------------------------
-- A dump of a database older than 0.6.0 restores into this version: the rows of its subscriptions
-- and projections lack owner and search_path, which get the values the 0.6.0 upgrade gives the
-- rows it finds (the functions that create them always set both).
-- ---------------------------------------------------------------------------------------------

ALTER TABLE eventsource.subscriptions ALTER COLUMN owner SET DEFAULT pg_catalog.to_regrole('eventsource_reader');
ALTER TABLE eventsource.projections ALTER COLUMN search_path SET DEFAULT 'pg_catalog, pg_temp';

COMMENT ON COLUMN eventsource.subscriptions.owner IS
    'The role the subscription belongs to: only its members and eventsource_admin may poll or acknowledge it. Its default, eventsource_reader (open to every reader, as every subscription was before 0.6.0), fills in the rows of a restored dump of a version before 0.6.0, as the 0.6.0 upgrade did; create_subscription always names the owner.';
COMMENT ON COLUMN eventsource.projections.search_path IS
    'The search path the handler and reset handler run with: the creator''s when the projection was created, pg_temp last. Its default, the search path handlers had before 0.6.0, fills in the rows of a restored dump of a version before 0.6.0, as the 0.6.0 upgrade did; create_projection always sets it.';

-- ---------------------------------------------------------------------------------------------
-- Versioned entry points: the functions whose C code depends on the schema call the entry point
-- of 0.8.0 (eventsource_append_0_8, ...), which serves this schema without asking the catalog;
-- the entry points of before 0.8.0 (eventsource_append, ...) stay in the library for databases
-- not yet updated and ask on every call. Each definition is the one in sql/source/ but for the
-- symbol (CREATE OR REPLACE keeps the owner, the privileges and the comment).
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION eventsource.append(
    stream_id        text,
    event_type       text,
    data             jsonb,
    metadata         jsonb  DEFAULT NULL,
    expected_version bigint DEFAULT NULL,
    event_id         uuid   DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_append_0_8';

CREATE OR REPLACE FUNCTION eventsource.append_events(
    stream_id        text,
    events           jsonb,
    expected_version bigint DEFAULT NULL,
    OUT stream_version   bigint,
    OUT global_positions bigint[])
RETURNS record
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_append_events_0_8';

CREATE OR REPLACE FUNCTION eventsource.read_stream(
    stream_id    text,
    from_version bigint DEFAULT NULL,
    max_count    integer DEFAULT 1000,
    direction    text DEFAULT 'forward')
RETURNS SETOF eventsource.event
LANGUAGE c STABLE PARALLEL SAFE ROWS 1000
AS 'MODULE_PATHNAME', 'eventsource_read_stream_0_8';

CREATE OR REPLACE FUNCTION eventsource.save_snapshot(
    stream_id      text,
    stream_version bigint,
    state          jsonb,
    schema_version integer DEFAULT 1)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_save_snapshot_0_8';

CREATE OR REPLACE FUNCTION eventsource.load_snapshot(
    stream_id      text,
    max_version    bigint DEFAULT NULL,
    schema_version integer DEFAULT NULL)
RETURNS SETOF eventsource.snapshots
LANGUAGE c STABLE PARALLEL SAFE ROWS 1
AS 'MODULE_PATHNAME', 'eventsource_load_snapshot_0_8';

CREATE OR REPLACE FUNCTION eventsource.load_stream(
    stream_id      text,
    max_version    bigint DEFAULT NULL,
    schema_version integer DEFAULT NULL)
RETURNS TABLE (
    kind            text,
    stream_version  bigint,
    schema_version  integer,
    event_type      text,
    data            jsonb,
    metadata        jsonb,
    event_id        uuid,
    global_position bigint,
    recorded_at     timestamptz)
LANGUAGE c STABLE PARALLEL SAFE ROWS 100
AS 'MODULE_PATHNAME', 'eventsource_load_stream_0_8';

CREATE OR REPLACE FUNCTION eventsource.set_stream_metadata(stream_id text, metadata jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_set_stream_metadata_0_8';

CREATE OR REPLACE FUNCTION eventsource.delete_stream(stream_id text, expected_version bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_delete_stream_0_8';

CREATE OR REPLACE FUNCTION eventsource.tombstone_stream(stream_id text, expected_version bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_tombstone_stream_0_8';

-- The status views count a consumer's lag with events_behind, which reads the log through the
-- same rules (in the library) as poll and the worker.
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

REVOKE ALL ON FUNCTION eventsource.events_behind(eventsource.checkpoint, text, text[], integer, integer, jsonb),
    eventsource.event_matches_query(text, text[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventsource.events_behind(eventsource.checkpoint, text, text[], integer, integer, jsonb),
    eventsource.event_matches_query(text, text[], jsonb)
    TO eventsource_reader;

-- Subscriptions and projections of a query: the column, and the argument of their create
-- functions (which gain it last, so that every call of 0.7.0 means what it did).
ALTER TABLE eventsource.subscriptions ADD COLUMN query jsonb;
ALTER TABLE eventsource.projections ADD COLUMN query jsonb;
COMMENT ON TABLE eventsource.subscriptions IS
    'Durable subscriptions to the global log: what each receives (a category, some event types, a query) and its consumer group size.';
COMMENT ON COLUMN eventsource.subscriptions.query IS
    'The query the subscription''s events match, {"items": [{"types": [...], "tags": [...]}, ...]} as read_by_query takes it, besides its category and event types, or NULL: every event of those.';
COMMENT ON COLUMN eventsource.projections.query IS
    'The query the projection''s events match, {"items": [{"types": [...], "tags": [...]}, ...]} as read_by_query takes it, besides its category and event types, or NULL: every event of those.';

DROP FUNCTION eventsource.create_subscription(text, text, text[], text, integer, regrole);
CREATE FUNCTION eventsource.create_subscription(
    name                text,
    category            text    DEFAULT NULL,
    event_types         text[]  DEFAULT NULL,
    start_from          text    DEFAULT 'beginning',
    consumer_group_size integer DEFAULT 1,
    owner               regrole DEFAULT NULL,
    query               jsonb   DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_create_subscription';

COMMENT ON FUNCTION eventsource.create_subscription(text, text, text[], text, integer, regrole, jsonb) IS
    'Creates a durable subscription to the global log, of one category, some event types and a query (as read_by_query takes it) or all, starting from the beginning of the log or its end, consumed by a group of consumer_group_size members; it belongs to owner (by default the caller).';

REVOKE ALL ON FUNCTION eventsource.create_subscription(text, text, text[], text, integer, regrole, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventsource.create_subscription(text, text, text[], text, integer, regrole, jsonb)
    TO eventsource_admin;

DROP FUNCTION eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer, text);
CREATE FUNCTION eventsource.create_projection(
    name          text,
    handler       regprocedure,
    event_types   text[]       DEFAULT NULL,
    category      text         DEFAULT NULL,
    mode          text         DEFAULT 'inline',
    reset_handler regprocedure DEFAULT NULL,
    on_failure    text         DEFAULT 'stop',
    max_attempts  integer      DEFAULT 5,
    search_path   text         DEFAULT pg_catalog.current_setting('search_path'),
    query         jsonb        DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_create_projection';

COMMENT ON FUNCTION eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer, text, jsonb) IS
    'Creates a projection: handler(eventsource.event) is called for every matching event (of its category, event types and query, as read_by_query takes it), inline in the appending transaction or async by the background worker; handlers run sandboxed as the role that creates the projection, with search_path (by default the creator''s) and pg_temp last.';

REVOKE ALL ON FUNCTION eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer, text, jsonb)
    TO eventsource_admin;

CREATE OR REPLACE VIEW eventsource.subscription_status AS
SELECT s.name, s.category, s.event_types, m.consumer_group_member, s.consumer_group_size,
       m.checkpoint, m.acknowledged_at, m.delivered_through,
       COALESCE(m.leased_until OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp(), false) AS leased, m.leased_until,
       pending.events_behind,
       COALESCE(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) pending.oldest_recorded_at), 0)
           AS seconds_behind,
       holder.locked_by,
       s.query
  FROM eventsource.subscriptions s
  JOIN eventsource.subscription_members m ON m.subscription_name = s.name
 CROSS JOIN LATERAL (
       SELECT pg_catalog.sha256(pg_catalog.convert_to(s.name, pg_catalog.getdatabaseencoding())
                                OPERATOR(pg_catalog.||) pg_catalog.int4send(m.consumer_group_member)) AS digest) AS lock_key
  LEFT JOIN (
       SELECT l.classid, l.objid,
              COALESCE('process ' OPERATOR(pg_catalog.||) l.pid,
                       'prepared transaction ' OPERATOR(pg_catalog.||) pg_catalog.quote_literal(p.gid)) AS locked_by
         FROM pg_catalog.pg_locks l
         LEFT JOIN (pg_catalog.pg_locks x
                    JOIN pg_catalog.pg_prepared_xacts p ON p.transaction OPERATOR(pg_catalog.=) x.transactionid)
                ON l.pid IS NULL AND x.pid IS NULL AND x.locktype OPERATOR(pg_catalog.=) 'transactionid'
               AND x.virtualtransaction OPERATOR(pg_catalog.=) l.virtualtransaction
        WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.objsubid OPERATOR(pg_catalog.=) 17748 AND l.granted
          AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                                                  WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())) AS holder
       ON holder.classid OPERATOR(pg_catalog.=)
              ('x' OPERATOR(pg_catalog.||) pg_catalog.encode(pg_catalog.substr(lock_key.digest, 1, 4), 'hex'))::pg_catalog.bit(32)::pg_catalog.int8::pg_catalog.oid
      AND holder.objid OPERATOR(pg_catalog.=)
              ('x' OPERATOR(pg_catalog.||) pg_catalog.encode(pg_catalog.substr(lock_key.digest, 5, 4), 'hex'))::pg_catalog.bit(32)::pg_catalog.int8::pg_catalog.oid
 CROSS JOIN LATERAL eventsource.events_behind(m.checkpoint, s.category, s.event_types,
                                              s.consumer_group_size, m.consumer_group_member, s.query) AS pending;

CREATE OR REPLACE VIEW eventsource.projection_status AS
SELECT p.name, p.mode, p.status, p.handler, p.event_types, p.category, p.checkpoint,
       p.events_processed,
       COALESCE(pending.events_behind, 0) AS events_behind,
       p.attempts, p.retry_at, p.last_error, p.last_error_at, p.last_error_position,
       (SELECT pg_catalog.count(*) FROM eventsource.projection_dead_letters d WHERE d.projection_name = p.name)
           AS dead_letters,
       COALESCE(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) pending.oldest_recorded_at), 0)
           AS seconds_behind,
       p.query
  FROM eventsource.projections p
  LEFT JOIN LATERAL (
       SELECT b.events_behind, b.oldest_recorded_at
         FROM eventsource.events_behind(p.checkpoint, p.category, p.event_types, 1, 0, p.query) AS b
        WHERE p.mode OPERATOR(pg_catalog.=) 'async'
       OFFSET 0) AS pending ON true;

-- Appends to many streams in one call.
CREATE FUNCTION eventsource.append_to_streams(appends jsonb, condition jsonb DEFAULT NULL)
RETURNS TABLE (stream_id text, stream_version bigint, global_positions bigint[])
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_append_to_streams_0_8';

COMMENT ON FUNCTION eventsource.append_to_streams(jsonb, jsonb) IS
    'Appends to many streams atomically: appends is a JSON array of {"stream_id", "expected_version", "events"}; an entry without events only checks its stream''s version. condition, {"fail_if_events_match": query, "after": checkpoint}, fails the call (SE006) if an event that matches the query comes after the checkpoint. Returns a row per entry: the stream''s version and the global positions taken.';

REVOKE ALL ON FUNCTION eventsource.append_to_streams(jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventsource.append_to_streams(jsonb, jsonb) TO eventsource_writer;

-- ---------------------------------------------------------------------------------------------
-- Tags: events carry them (NULL: none), indexed; the event type, append and poll return them.
-- Adding a column without a default rewrites nothing. A column of another table of the type
-- eventsource.event keeps the update from adding the attribute (drop the column first).
-- ---------------------------------------------------------------------------------------------

ALTER TABLE eventsource.events ADD COLUMN tags text[];
CREATE INDEX events_tags_idx ON eventsource.events USING gin (tags) WITH (fastupdate = off) WHERE tags IS NOT NULL;
COMMENT ON COLUMN eventsource.events.tags IS
    'The event''s tags (for example {course:c1,student:s7}), NULL when it has none.';

ALTER TYPE eventsource.event ADD ATTRIBUTE tags text[];
COMMENT ON TYPE eventsource.event IS
    'An event as the read functions return it: the stored columns, its checkpoint in the global log, then its tags (NULL: none).';

DROP FUNCTION eventsource.append(text, text, jsonb, jsonb, bigint, uuid);
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

COMMENT ON FUNCTION eventsource.append_events(text, jsonb, bigint) IS
    'Appends a JSON array of {"type", "data", "metadata", "tags", "id"} events to a stream atomically; returns the new stream version and the global positions taken.';

REVOKE ALL ON FUNCTION eventsource.append(text, text, jsonb, jsonb, bigint, uuid, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventsource.append(text, text, jsonb, jsonb, bigint, uuid, text[]) TO eventsource_writer;

DROP FUNCTION eventsource.poll(text, integer, integer, integer);
CREATE FUNCTION eventsource.poll(
    name                  text,
    max_count             integer DEFAULT 100,
    consumer_group_member integer DEFAULT 0,
    lease_seconds         integer DEFAULT 30)
RETURNS TABLE (
    global_position bigint,
    transaction_id  xid8,
    stream_id       text,
    stream_version  bigint,
    event_id        uuid,
    event_type      text,
    data            jsonb,
    metadata        jsonb,
    recorded_at     timestamptz,
    checkpoint      eventsource.checkpoint,
    tags            text[],
    lease           uuid)
LANGUAGE c VOLATILE PARALLEL UNSAFE ROWS 100
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_poll';

COMMENT ON FUNCTION eventsource.poll(text, integer, integer, integer) IS
    'The next batch of a subscription''s events after its checkpoint, in log order, leased to the caller for lease_seconds: until it is acknowledged or the lease ends, other consumers of the same member get nothing. Every row carries the batch''s lease, which ack must present.';

REVOKE ALL ON FUNCTION eventsource.poll(text, integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventsource.poll(text, integer, integer, integer) TO eventsource_reader;

-- Reads by tags and event types.
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

REVOKE ALL ON FUNCTION eventsource.read_by_query(jsonb, eventsource.checkpoint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventsource.read_by_query(jsonb, eventsource.checkpoint, integer) TO eventsource_reader;
