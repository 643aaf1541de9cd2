-- eventsource--0.6.0--0.7.0.sql: upgrade from 0.6.0 to 0.7.0 (also part of a fresh install).
--
-- Log integrity: the log stays readable and in order after a restore into another cluster, a
-- crash that loses commits and pg_upgrade; lifecycle markers follow the events they cover; an
-- acknowledgement is accepted only from the lease it acknowledges; projections never silently
-- stop; snapshots never bring deleted data back; a category is never a stream id.

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.7.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Items 1 and 2: log epochs (restores into another cluster, crashes that lose commits)
-- ---------------------------------------------------------------------------------------------

-- An event's transaction_id is its transaction's xid8 plus the offset of the epoch it was
-- appended in. A new epoch starts at the first append after the database finds itself in
-- another cluster or in a later start of its server (src/epoch.c).
CREATE TABLE eventsource.log_epochs (
    epoch                 integer     NOT NULL,
    system_identifier     bigint      NOT NULL,
    server_started_at     timestamptz,
    transaction_id_offset bigint      NOT NULL,
    start_transaction_id  xid8        NOT NULL,
    started_at            timestamptz NOT NULL,
    reason                text        NOT NULL,
    CONSTRAINT log_epochs_pkey PRIMARY KEY (epoch),
    CONSTRAINT log_epochs_reason_check
        CHECK (reason OPERATOR(pg_catalog.=) ANY (ARRAY['upgrade', 'new log', 'other cluster', 'server start']))
);

COMMENT ON TABLE eventsource.log_epochs IS
    'Log epochs: an event''s transaction_id is its transaction''s id plus the transaction_id_offset of the epoch it was appended in; a new epoch starts at the first append in another cluster (system_identifier) or after a server start (a restart, a crash, a promotion).';
COMMENT ON COLUMN eventsource.log_epochs.server_started_at IS
    'When the server that appended in this epoch started (its shared memory was set up); NULL: unknown.';
COMMENT ON COLUMN eventsource.log_epochs.start_transaction_id IS
    'The transaction that started the epoch: no transaction with a smaller id appends in it.';

SELECT pg_catalog.pg_extension_config_dump('eventsource.log_epochs', '');

-- An existing log is epoch 1 of this cluster and server start, without offset. A log whose newest
-- transaction id is not below this cluster's counter came from another cluster (logical
-- replication into a 0.6.0 database, say): its epoch 1 names no cluster (0), so the first append
-- starts an epoch of this one after it.
CREATE FUNCTION eventsource.server_start_for_upgrade() RETURNS timestamptz
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'eventsource_server_start';
INSERT INTO eventsource.log_epochs
SELECT 1,
       CASE WHEN (SELECT pg_catalog.max(e.transaction_id) FROM eventsource.events e)
                 OPERATOR(pg_catalog.<) pg_catalog.pg_current_xact_id()
            THEN c.system_identifier ELSE 0 END,
       eventsource.server_start_for_upgrade(), 0, '0'::pg_catalog.xid8, pg_catalog.now(), 'upgrade'
  FROM pg_catalog.pg_control_system() AS c
 WHERE EXISTS (SELECT FROM eventsource.events);
DROP FUNCTION eventsource.server_start_for_upgrade();

CREATE FUNCTION eventsource.log_horizon() RETURNS xid8
LANGUAGE c STABLE STRICT PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'eventsource_log_horizon';

COMMENT ON FUNCTION eventsource.log_horizon() IS
    'The horizon of the gap-safe global log: reads deliver only events whose transaction_id is below it (the oldest running transaction plus its log epoch''s offset).';

-- The visibility horizon is the log horizon; the session holding it is the oldest running one.
CREATE OR REPLACE VIEW eventsource.visibility_horizon AS
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

-- The status views count what is behind below the same horizon the readers use.
CREATE OR REPLACE VIEW eventsource.subscription_status AS
SELECT s.name, s.category, s.event_types, m.consumer_group_member, s.consumer_group_size,
       m.checkpoint, m.acknowledged_at, m.delivered_through,
       COALESCE(m.leased_until > pg_catalog.now(), false) AS leased, m.leased_until,
       pending.events_behind,
       COALESCE(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) pending.oldest_recorded_at), 0)
           AS seconds_behind
  FROM eventsource.subscriptions s
  JOIN eventsource.subscription_members m ON m.subscription_name = s.name
 CROSS JOIN LATERAL (
       SELECT pg_catalog.count(*) AS events_behind, pg_catalog.min(e.recorded_at) AS oldest_recorded_at
         FROM eventsource.events e
        WHERE (e.transaction_id, e.global_position) >
              (COALESCE(eventsource.checkpoint_transaction_id(m.checkpoint), '0'::xid8),
               COALESCE(eventsource.checkpoint_global_position(m.checkpoint), 0))
          AND e.transaction_id OPERATOR(pg_catalog.<) (SELECT eventsource.log_horizon())
          AND (s.category IS NULL OR pg_catalog.split_part(e.stream_id, '-', 1) OPERATOR(pg_catalog.=) s.category)
          AND (s.event_types IS NULL OR e.event_type OPERATOR(pg_catalog.=) ANY (s.event_types))
          AND (s.consumer_group_size OPERATOR(pg_catalog.=) 1
               OR eventsource.consumer_group_member(e.stream_id, s.consumer_group_size)
                  OPERATOR(pg_catalog.=) m.consumer_group_member)) AS pending;

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
          AND e.transaction_id < (SELECT eventsource.log_horizon())
          AND (p.category IS NULL OR pg_catalog.split_part(e.stream_id, '-', 1) = p.category)
          AND (p.event_types IS NULL OR e.event_type = ANY (p.event_types))) AS pending;

REVOKE ALL ON eventsource.log_epochs FROM PUBLIC;
GRANT SELECT ON eventsource.log_epochs TO eventsource_reader;
REVOKE ALL ON FUNCTION eventsource.log_horizon() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventsource.log_horizon() TO eventsource_reader;
