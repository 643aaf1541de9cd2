-- eventsource--0.1.0--0.2.0.sql: upgrade from 0.1.0 to 0.2.0 (also the second half of a fresh
-- install, which PostgreSQL runs as eventsource--0.1.0.sql followed by this script).
--
-- Adds snapshots: the state of an aggregate as of a stream version, stored per schema version,
-- with save_snapshot, load_snapshot, load_stream (snapshot plus the events after it in one call)
-- and delete_snapshots.

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Storage
-- ---------------------------------------------------------------------------------------------

-- No foreign key to eventsource.streams: save_snapshot checks the stream version itself, and a key
-- would make every snapshot save take a share lock on the stream's row.
CREATE TABLE eventsource.snapshots (
    stream_id      text        NOT NULL,
    stream_version bigint      NOT NULL,
    schema_version integer     NOT NULL,
    state          jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id, stream_version, schema_version)
);

COMMENT ON TABLE eventsource.snapshots IS
    'Aggregate state as of a stream version, one row per (stream, stream version, schema version); written by eventsource.save_snapshot.';

SELECT pg_catalog.pg_extension_config_dump('eventsource.snapshots', '');

-- ---------------------------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION eventsource.save_snapshot(
    stream_id      text,
    stream_version bigint,
    state          jsonb,
    schema_version integer DEFAULT 1)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_save_snapshot';

COMMENT ON FUNCTION eventsource.save_snapshot(text, bigint, jsonb, integer) IS
    'Stores the state of a stream as of one of its versions (replacing a snapshot of the same version and schema version), then keeps the newest eventsource.snapshots_to_keep snapshots of the stream.';

CREATE FUNCTION eventsource.load_snapshot(
    stream_id      text,
    max_version    bigint DEFAULT NULL,
    schema_version integer DEFAULT NULL)
RETURNS SETOF eventsource.snapshots
LANGUAGE c STABLE PARALLEL SAFE ROWS 1
AS 'MODULE_PATHNAME', 'eventsource_load_snapshot';

COMMENT ON FUNCTION eventsource.load_snapshot(text, bigint, integer) IS
    'The newest snapshot of a stream at or below max_version (NULL: any), of schema_version when given; no row when there is none.';

CREATE FUNCTION eventsource.load_stream(
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
AS 'MODULE_PATHNAME', 'eventsource_load_stream';

COMMENT ON FUNCTION eventsource.load_stream(text, bigint, integer) IS
    'Everything needed to rebuild an aggregate in one call: the newest usable snapshot (kind ''snapshot'', its state in data) and then every event after it up to max_version (kind ''event''), in stream order.';

CREATE FUNCTION eventsource.delete_snapshots(
    stream_id            text DEFAULT NULL,
    below_schema_version integer DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_delete_snapshots';

COMMENT ON FUNCTION eventsource.delete_snapshots(text, integer) IS
    'Deletes the snapshots of one stream (NULL: of every stream) whose schema version is below below_schema_version (NULL: all of them); returns how many it deleted.';

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------

REVOKE ALL ON eventsource.snapshots FROM PUBLIC;
REVOKE ALL ON FUNCTION
    eventsource.save_snapshot(text, bigint, jsonb, integer),
    eventsource.load_snapshot(text, bigint, integer),
    eventsource.load_stream(text, bigint, integer),
    eventsource.delete_snapshots(text, integer)
    FROM PUBLIC;

GRANT SELECT ON eventsource.snapshots TO eventsource_reader;
GRANT EXECUTE ON FUNCTION
    eventsource.load_snapshot(text, bigint, integer),
    eventsource.load_stream(text, bigint, integer)
    TO eventsource_reader;
GRANT EXECUTE ON FUNCTION eventsource.save_snapshot(text, bigint, jsonb, integer) TO eventsource_writer;
GRANT EXECUTE ON FUNCTION eventsource.delete_snapshots(text, integer) TO eventsource_admin;
