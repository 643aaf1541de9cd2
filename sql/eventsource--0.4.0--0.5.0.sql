-- eventsource--0.4.0--0.5.0.sql: upgrade from 0.4.0 to 0.5.0 (also part of a fresh install).
--
-- Adds the stream lifecycle and the operator's views: soft delete and tombstones, per-stream
-- retention (truncate_before, max_count, max_age) honoured by stream reads at once, scavenge (the
-- physical removal of hidden events, held back for subscriptions and async projections that have
-- not passed them), an audit stream ($streams), and statistics views with counters kept in shared
-- memory when the library is preloaded.

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.5.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Storage
-- ---------------------------------------------------------------------------------------------

-- Nullable columns without defaults: adding them rewrites nothing, and an append (which updates
-- stream_version and updated_at only) stays a HOT update.
ALTER TABLE eventsource.streams
    ADD COLUMN truncate_before bigint,
    ADD COLUMN max_count       bigint,
    ADD COLUMN max_age         interval,
    ADD COLUMN deleted_through bigint,
    ADD COLUMN tombstoned_at   timestamptz;

COMMENT ON COLUMN eventsource.streams.truncate_before IS
    'Events below this stream version are hidden from stream reads.';
COMMENT ON COLUMN eventsource.streams.max_count IS
    'Stream reads show at most this many of the newest events.';
COMMENT ON COLUMN eventsource.streams.max_age IS
    'Stream reads hide the events before the first one recorded within this interval.';
COMMENT ON COLUMN eventsource.streams.deleted_through IS
    'The stream version delete_stream or tombstone_stream deleted the stream at: events up to it are hidden from stream reads.';
COMMENT ON COLUMN eventsource.streams.tombstoned_at IS
    'When tombstone_stream made the stream unwritable for ever (NULL: it is not).';

-- The streams scavenge visits: those with something that hides events.
CREATE INDEX streams_retention_idx ON eventsource.streams (stream_id)
 WHERE truncate_before IS NOT NULL OR max_count IS NOT NULL OR max_age IS NOT NULL OR deleted_through IS NOT NULL;

-- ---------------------------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION eventsource.first_visible_version(stream eventsource.streams)
RETURNS bigint
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'eventsource_first_visible_version';

COMMENT ON FUNCTION eventsource.first_visible_version(eventsource.streams) IS
    'The lowest stream version stream reads show: after a delete, from truncate_before, the newest max_count events, from the first event recorded within max_age.';

-- max_age in ISO 8601 (P1DT2H), whatever the session's IntervalStyle: the same text everywhere.
CREATE FUNCTION eventsource.stream_metadata(stream_id text)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET IntervalStyle = iso_8601
BEGIN ATOMIC
    SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
               'truncate_before', s.truncate_before,
               'max_count', s.max_count,
               'max_age', s.max_age::text))
      FROM eventsource.streams s
     WHERE s.stream_id OPERATOR(pg_catalog.=) stream_metadata.stream_id;
END;

COMMENT ON FUNCTION eventsource.stream_metadata(text) IS
    'The retention settings of a stream as set_stream_metadata takes them ({} when it has none, NULL when the stream does not exist).';

CREATE FUNCTION eventsource.set_stream_metadata(stream_id text, metadata jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_set_stream_metadata';

COMMENT ON FUNCTION eventsource.set_stream_metadata(text, jsonb) IS
    'Replaces a stream''s retention settings ({"truncate_before": N, "max_count": N, "max_age": "30 days" or seconds}, {} for none); stream reads honour them at once, scavenge removes what they hide. Recorded in the $streams stream.';

CREATE FUNCTION eventsource.delete_stream(stream_id text, expected_version bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_delete_stream';

COMMENT ON FUNCTION eventsource.delete_stream(text, bigint) IS
    'Soft-deletes a stream: its events disappear from stream reads and its snapshots are deleted; a later append continues the version numbering. Returns the version deleted through. Recorded in the $streams stream.';

CREATE FUNCTION eventsource.tombstone_stream(stream_id text, expected_version bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_tombstone_stream';

COMMENT ON FUNCTION eventsource.tombstone_stream(text, bigint) IS
    'Deletes a stream for ever: as delete_stream, and every later append to it fails with SE005. Returns the version deleted through. Recorded in the $streams stream.';

CREATE FUNCTION eventsource.scavenge(max_events integer DEFAULT 1000)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_scavenge';

COMMENT ON FUNCTION eventsource.scavenge(integer) IS
    'Removes up to max_events events that deletes and retention settings hide, except those a subscription or async projection has not passed yet; returns how many it removed (call again until 0).';

CREATE PROCEDURE eventsource.scavenge_all(batch_size integer DEFAULT 1000)
LANGUAGE plpgsql
AS $procedure$
BEGIN
    -- A transaction per batch: every batch's locks and dead rows are released as it goes.
    WHILE eventsource.scavenge(batch_size) OPERATOR(pg_catalog.>) 0 LOOP
        COMMIT;
    END LOOP;
END
$procedure$;

COMMENT ON PROCEDURE eventsource.scavenge_all(integer) IS
    'Runs scavenge in batches of batch_size, committing after each, until nothing more can be removed (CALL it outside a transaction block).';

CREATE FUNCTION eventsource.statistics(
    OUT appends             bigint,
    OUT events_appended     bigint,
    OUT version_conflicts   bigint,
    OUT idempotent_retries  bigint,
    OUT tombstone_rejections bigint,
    OUT events_scavenged    bigint,
    OUT statistics_reset    timestamptz)
RETURNS record
LANGUAGE c VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'eventsource_statistics';

COMMENT ON FUNCTION eventsource.statistics() IS
    'Counters of the whole cluster since statistics_reset (shared memory; NULLs unless eventsource is in shared_preload_libraries).';

CREATE FUNCTION eventsource.reset_statistics()
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_reset_statistics';

COMMENT ON FUNCTION eventsource.reset_statistics() IS
    'Sets the counters of eventsource.statistics() to zero.';

-- ---------------------------------------------------------------------------------------------
-- Views
-- ---------------------------------------------------------------------------------------------

CREATE VIEW eventsource.stream_status AS
SELECT s.stream_id, s.category,
       CASE WHEN s.tombstoned_at IS NOT NULL THEN 'tombstoned'
            WHEN s.deleted_through OPERATOR(pg_catalog.>=) s.stream_version THEN 'deleted'
            ELSE 'active' END AS state,
       s.stream_version, visible.first_visible_version,
       GREATEST(s.stream_version OPERATOR(pg_catalog.-) visible.first_visible_version
                           OPERATOR(pg_catalog.+) 1, 0) AS visible_events,
       (SELECT pg_catalog.count(*) FROM eventsource.events e
         WHERE e.stream_id OPERATOR(pg_catalog.=) s.stream_id
           AND e.stream_version OPERATOR(pg_catalog.<) visible.first_visible_version) AS events_to_scavenge,
       s.truncate_before, s.max_count, s.max_age, s.deleted_through, s.tombstoned_at, s.created_at, s.updated_at
  FROM eventsource.streams s
 CROSS JOIN LATERAL (SELECT eventsource.first_visible_version(s) AS first_visible_version) AS visible;

COMMENT ON VIEW eventsource.stream_status IS
    'Every stream with its state (active; deleted: nothing appended since delete_stream; tombstoned), versions, retention settings and the hidden events scavenge has yet to remove. Filter by stream_id: the counts are per stream.';

CREATE VIEW eventsource.category_statistics AS
SELECT category,
       COALESCE(s.streams, 0) AS streams,
       COALESCE(s.deleted_streams, 0) AS deleted_streams,
       COALESCE(s.tombstoned_streams, 0) AS tombstoned_streams,
       COALESCE(e.events, 0) AS events,
       e.first_recorded_at, e.last_recorded_at
  FROM (SELECT st.category, pg_catalog.count(*) AS streams,
               pg_catalog.count(*) FILTER (WHERE st.tombstoned_at IS NULL
                                             AND st.deleted_through OPERATOR(pg_catalog.>=) st.stream_version) AS deleted_streams,
               pg_catalog.count(*) FILTER (WHERE st.tombstoned_at IS NOT NULL) AS tombstoned_streams
          FROM eventsource.streams st GROUP BY st.category) AS s
  FULL JOIN
       (SELECT pg_catalog.split_part(ev.stream_id, '-', 1) AS category, pg_catalog.count(*) AS events,
               pg_catalog.min(ev.recorded_at) AS first_recorded_at, pg_catalog.max(ev.recorded_at) AS last_recorded_at
          FROM eventsource.events ev GROUP BY 1) AS e USING (category);

COMMENT ON VIEW eventsource.category_statistics IS
    'Streams (deleted, tombstoned) and stored events per category. Reads the whole log.';

CREATE VIEW eventsource.event_type_statistics AS
SELECT e.event_type, pg_catalog.count(*) AS events,
       pg_catalog.count(DISTINCT e.stream_id) AS streams,
       pg_catalog.min(e.recorded_at) AS first_recorded_at, pg_catalog.max(e.recorded_at) AS last_recorded_at
  FROM eventsource.events e
 GROUP BY e.event_type;

COMMENT ON VIEW eventsource.event_type_statistics IS
    'Stored events and the streams that hold them per event type. Reads the whole log.';

CREATE VIEW eventsource.snapshot_statistics AS
SELECT s.category, n.schema_version, pg_catalog.count(*) AS snapshots,
       pg_catalog.count(DISTINCT n.stream_id) AS streams,
       pg_catalog.sum(pg_catalog.pg_column_size(n.state)) AS total_bytes,
       pg_catalog.round(pg_catalog.avg(pg_catalog.pg_column_size(n.state))) AS average_bytes,
       pg_catalog.max(pg_catalog.pg_column_size(n.state)) AS largest_bytes,
       pg_catalog.max(n.created_at) AS last_created_at
  FROM eventsource.snapshots n
  JOIN eventsource.streams s ON s.stream_id OPERATOR(pg_catalog.=) n.stream_id
 GROUP BY s.category, n.schema_version;

COMMENT ON VIEW eventsource.snapshot_statistics IS
    'Snapshots per category and schema version, with the size of their state as stored (compressed).';

CREATE VIEW eventsource.visibility_horizon AS
SELECT h.horizon,
       (SELECT pg_catalog.count(*) FROM eventsource.events e
         WHERE e.transaction_id OPERATOR(pg_catalog.>=) h.horizon) AS events_held_back,
       a.pid AS holding_pid,
       COALESCE(a.backend_type, CASE WHEN p.gid IS NOT NULL THEN 'prepared transaction' END) AS holding_backend_type,
       a.usename AS holding_user, a.application_name AS holding_application_name,
       a.state AS holding_state, COALESCE(a.xact_start, p.prepared) AS holding_transaction_start,
       EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) COALESCE(a.xact_start, p.prepared)) AS holding_seconds,
       a.query AS holding_query, p.gid AS prepared_transaction
  FROM (SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) AS horizon) AS h
  LEFT JOIN pg_catalog.pg_stat_activity a
         ON a.backend_xid OPERATOR(pg_catalog.=) pg_catalog.xid(h.horizon)
  LEFT JOIN pg_catalog.pg_prepared_xacts p
         ON p.transaction OPERATOR(pg_catalog.=) pg_catalog.xid(h.horizon);

COMMENT ON VIEW eventsource.visibility_horizon IS
    'The oldest running transaction: the global log is delivered only up to it. Shows the committed events it holds back and the session (or prepared transaction) holding it.';

CREATE VIEW eventsource.store_statistics AS
SELECT (SELECT pg_catalog.count(*) FROM eventsource.streams) AS streams,
       (SELECT pg_catalog.max(e.global_position) FROM eventsource.events e) AS head_global_position,
       pg_catalog.pg_total_relation_size('eventsource.events'::pg_catalog.regclass) AS log_bytes,
       pg_catalog.pg_total_relation_size('eventsource.streams'::pg_catalog.regclass) AS streams_bytes,
       (SELECT pg_catalog.count(*) FROM eventsource.snapshots) AS snapshots,
       pg_catalog.pg_total_relation_size('eventsource.snapshots'::pg_catalog.regclass) AS snapshots_bytes,
       c.appends, c.events_appended, c.version_conflicts, c.idempotent_retries,
       c.tombstone_rejections, c.events_scavenged, c.statistics_reset
  FROM eventsource.statistics() AS c;

COMMENT ON VIEW eventsource.store_statistics IS
    'One row: the store''s size, and the cluster''s append, conflict and scavenge counters since statistics_reset (NULL unless preloaded).';

-- Projections: the age of the oldest event not yet projected, as subscriptions have it.
CREATE OR REPLACE VIEW eventsource.projection_status AS
SELECT p.name, p.mode, p.status, p.handler, p.event_types, p.category, p.checkpoint,
       p.events_processed,
       CASE WHEN p.mode = 'async' THEN pending.events_behind ELSE 0 END AS events_behind,
       p.attempts, p.retry_at, p.last_error, p.last_error_at, p.last_error_position,
       (SELECT pg_catalog.count(*) FROM eventsource.projection_dead_letters d WHERE d.projection_name = p.name)
           AS dead_letters,
       COALESCE(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) pending.oldest_recorded_at), 0)
           AS seconds_behind
  FROM eventsource.projections p
 CROSS JOIN LATERAL (
       SELECT pg_catalog.count(*) AS events_behind, pg_catalog.min(e.recorded_at) AS oldest_recorded_at
         FROM eventsource.events e
        WHERE p.mode = 'async'
          AND (e.transaction_id, e.global_position) >
              (COALESCE(eventsource.checkpoint_transaction_id(p.checkpoint), '0'::xid8),
               COALESCE(eventsource.checkpoint_global_position(p.checkpoint), 0))
          AND e.transaction_id < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
          AND (p.category IS NULL OR pg_catalog.split_part(e.stream_id, '-', 1) = p.category)
          AND (p.event_types IS NULL OR e.event_type = ANY (p.event_types))) AS pending;

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------

REVOKE ALL ON eventsource.stream_status, eventsource.category_statistics, eventsource.event_type_statistics,
    eventsource.snapshot_statistics, eventsource.visibility_horizon, eventsource.store_statistics
    FROM PUBLIC;
REVOKE ALL ON FUNCTION
    eventsource.first_visible_version(eventsource.streams),
    eventsource.stream_metadata(text),
    eventsource.set_stream_metadata(text, jsonb),
    eventsource.delete_stream(text, bigint),
    eventsource.tombstone_stream(text, bigint),
    eventsource.scavenge(integer),
    eventsource.statistics(),
    eventsource.reset_statistics()
    FROM PUBLIC;
REVOKE ALL ON PROCEDURE eventsource.scavenge_all(integer) FROM PUBLIC;

GRANT SELECT ON eventsource.stream_status, eventsource.category_statistics, eventsource.event_type_statistics,
    eventsource.snapshot_statistics, eventsource.visibility_horizon, eventsource.store_statistics
    TO eventsource_reader;
GRANT EXECUTE ON FUNCTION
    eventsource.first_visible_version(eventsource.streams),
    eventsource.stream_metadata(text),
    eventsource.statistics()
    TO eventsource_reader;
GRANT EXECUTE ON FUNCTION
    eventsource.set_stream_metadata(text, jsonb),
    eventsource.delete_stream(text, bigint),
    eventsource.tombstone_stream(text, bigint),
    eventsource.scavenge(integer),
    eventsource.reset_statistics()
    TO eventsource_admin;
GRANT EXECUTE ON PROCEDURE eventsource.scavenge_all(integer) TO eventsource_admin;
