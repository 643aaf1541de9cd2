-- 50_views.sql: the status and statistics views.
--
-- They run as their caller (eventsource_reader may SELECT them). subscription_status and
-- projection_status count the events below the log horizon with events_behind, which reads the log
-- through the filter as poll and the background worker do (the log's rules are written once, in
-- the library); the statistics views read the whole log. An inline projection is never behind:
-- projection_status does not count for it (the OFFSET keeps the subquery, and its condition on
-- the mode, from being merged into the join).

-- A lease's end is compared with the clock, not with the start of the reading transaction.
-- locked_by names the transaction that holds the member's lock (a poll that leased a batch, or an
-- ack, that has not ended, perhaps prepared): its lease is not committed, so leased may be false,
-- but polls get nothing and acks wait until it ends. The lock is the advisory lock of class 17748
-- whose keys are the first 8 bytes of the SHA-256 of the name and the member number (as the
-- library computes them).
CREATE VIEW eventsource.subscription_status AS
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

COMMENT ON VIEW eventsource.subscription_status IS
    'Every subscription member with its checkpoint, lease and lag (the visible events it has not acknowledged and the age in seconds of the oldest of them), and locked_by: the process or prepared transaction whose poll that leased a batch, or ack, has not ended (polls get nothing and acks wait until it ends), or NULL.';

CREATE VIEW eventsource.projection_status AS
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

COMMENT ON VIEW eventsource.projection_status IS
    'Every projection with its mode, status, handler (its signature), checkpoint, lag (async: visible matching events not yet projected), failures and dead letters.';

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

-- The visibility horizon is the log horizon; the session holding it is the oldest running one.
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
  FROM (SELECT eventsource.log_horizon() AS horizon,
               pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) AS oldest) AS h
  LEFT JOIN pg_catalog.pg_stat_activity a
         ON a.backend_xid OPERATOR(pg_catalog.=) pg_catalog.xid(h.oldest)
  LEFT JOIN pg_catalog.pg_prepared_xacts p
         ON p.transaction OPERATOR(pg_catalog.=) pg_catalog.xid(h.oldest);

COMMENT ON VIEW eventsource.visibility_horizon IS
    'The log horizon (eventsource.log_horizon()) and the oldest running transaction it follows: the global log is delivered only up to it. Shows the committed events it holds back and the session (or prepared transaction) holding it.';

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
