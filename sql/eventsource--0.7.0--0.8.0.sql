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
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_append_0_8';

CREATE OR REPLACE FUNCTION eventsource.append_events(
    stream_id        text,
    events           jsonb,
    expected_version bigint DEFAULT NULL,
    OUT stream_version   bigint,
    OUT global_positions bigint[])
RETURNS record
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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
