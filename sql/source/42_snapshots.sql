-- 42_snapshots.sql: snapshots, the state of an aggregate as of a stream version.
--
-- A snapshot is stored per schema version (the shape of its state, chosen by the client); loads
-- use only a snapshot of a version stream reads show or the one just before the first of them,
-- so a snapshot never brings deleted data back.

CREATE FUNCTION eventsource.save_snapshot(
    stream_id      text,
    stream_version bigint,
    state          jsonb,
    schema_version integer DEFAULT 1)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_save_snapshot_0_8';

COMMENT ON FUNCTION eventsource.save_snapshot(text, bigint, jsonb, integer) IS
    'Stores the state of a stream as of one of the versions stream reads show or the one just before the first of them (replacing a snapshot of the same version and schema version), then keeps the newest eventsource.snapshots_to_keep snapshots of the stream; a deleted or tombstoned version, or one further below the first visible version, is refused like one that does not exist.';

CREATE FUNCTION eventsource.load_snapshot(
    stream_id      text,
    max_version    bigint DEFAULT NULL,
    schema_version integer DEFAULT NULL)
RETURNS SETOF eventsource.snapshots
LANGUAGE c STABLE PARALLEL SAFE ROWS 1
AS 'MODULE_PATHNAME', 'eventsource_load_snapshot_0_8';

COMMENT ON FUNCTION eventsource.load_snapshot(text, bigint, integer) IS
    'The newest snapshot of a stream at or below max_version (NULL: any), of schema_version when given, of a version stream reads show or the one just before the first of them (never a deleted or tombstoned one); no row when there is none.';

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
AS 'MODULE_PATHNAME', 'eventsource_load_stream_0_8';

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
