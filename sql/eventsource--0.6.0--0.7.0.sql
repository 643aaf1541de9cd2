-- eventsource--0.6.0--0.7.0.sql: upgrade from 0.6.0 to 0.7.0 (also part of a fresh install).
--
-- Log integrity: the log stays readable and in order after a restore into another cluster, a
-- crash that loses commits and pg_upgrade; lifecycle markers follow the events they cover; an
-- acknowledgement is accepted only from the lease it acknowledges; projections never silently
-- stop; snapshots never bring deleted data back; a category is never a stream id.

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.7.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Log epochs (restores into another cluster, crashes that lose commits)
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

-- An existing log is epoch 1 of this cluster and server start, without offset.
CREATE FUNCTION eventsource.server_start_for_upgrade() RETURNS timestamptz
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'eventsource_server_start';
INSERT INTO eventsource.log_epochs
SELECT 1, c.system_identifier, eventsource.server_start_for_upgrade(), 0, '0'::pg_catalog.xid8,
       pg_catalog.now(), 'upgrade'
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


REVOKE ALL ON eventsource.log_epochs FROM PUBLIC;
GRANT SELECT ON eventsource.log_epochs TO eventsource_reader;
REVOKE ALL ON FUNCTION eventsource.log_horizon() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventsource.log_horizon() TO eventsource_reader;

-- ---------------------------------------------------------------------------------------------
-- Snapshots never bring deleted data back. save_snapshot refuses a version below the first
-- snapshot version (the version just before the first visible one, never one of a deleted life),
-- the loads use only a snapshot from it on, scavenge deletes the others without waiting for any
-- transaction, within the call's max_events (all in the library); the comments say so.
-- ---------------------------------------------------------------------------------------------

COMMENT ON FUNCTION eventsource.save_snapshot(text, bigint, jsonb, integer) IS
    'Stores the state of a stream as of one of the versions stream reads show or the one just before the first of them (replacing a snapshot of the same version and schema version), then keeps the newest eventsource.snapshots_to_keep snapshots of the stream; a deleted or tombstoned version, or one further below the first visible version, is refused like one that does not exist.';

COMMENT ON FUNCTION eventsource.load_snapshot(text, bigint, integer) IS
    'The newest snapshot of a stream at or below max_version (NULL: any), of schema_version when given, of a version stream reads show or the one just before the first of them (never a deleted or tombstoned one); no row when there is none.';

COMMENT ON FUNCTION eventsource.scavenge(integer) IS
    'Removes up to max_events rows: events that deletes and retention settings hide, except those a subscription or async projection has not passed yet, then snapshots the loads no longer use, skipping what other transactions hold; returns how many events and snapshots it removed (call again until 0).';

-- ---------------------------------------------------------------------------------------------
-- A category is never a stream id. read_all, read_category, create_subscription and
-- create_projection refuse a category containing '-' (in the library); one created earlier has
-- never matched an event: name them.
-- ---------------------------------------------------------------------------------------------

DO $upgrade$
DECLARE
    found text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('%s %I (category %L)', c.kind, c.name, c.category), ', '
                                 ORDER BY c.kind, c.name)
      INTO found
      FROM (SELECT 'subscription' AS kind, s.name, s.category FROM eventsource.subscriptions s
             WHERE pg_catalog.strpos(s.category, '-') OPERATOR(pg_catalog.>) 0
            UNION ALL
            SELECT 'projection', p.name, p.category FROM eventsource.projections p
             WHERE pg_catalog.strpos(p.category, '-') OPERATOR(pg_catalog.>) 0) AS c;
    IF found IS NOT NULL THEN
        RAISE WARNING 'a category containing ''-'' matches no event: %', found
            USING HINT = 'A category is the part of a stream id before its first ''-''. Drop each and create it again with the category meant.';
    END IF;
END
$upgrade$;
-- Projections that never silently stop. Handlers are stored as their schema-qualified
-- signature (text), not as regprocedure, which pg_upgrade refuses in user tables; the library
-- resolves them to the function each time they run. A function dropped before this upgrade gets a
-- signature in pg_catalog that names nothing, so its projection still reports it gone.
-- ---------------------------------------------------------------------------------------------

DROP VIEW eventsource.projection_status;

ALTER TABLE eventsource.projections
    ALTER COLUMN handler TYPE text USING
        COALESCE((pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass, handler, 0)).identity,
                 'pg_catalog.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident('dropped function ' OPERATOR(pg_catalog.||) handler::pg_catalog.oid)
                     OPERATOR(pg_catalog.||) '(eventsource.event)'),
    ALTER COLUMN reset_handler TYPE text USING
        COALESCE((pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass, reset_handler, 0)).identity,
                 'pg_catalog.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident('dropped function ' OPERATOR(pg_catalog.||) reset_handler::pg_catalog.oid)
                     OPERATOR(pg_catalog.||) '()');

COMMENT ON COLUMN eventsource.projections.handler IS
    'The handler''s signature, schema-qualified (for example public.count_event(eventsource.event)): looked up each time the projection runs.';
COMMENT ON COLUMN eventsource.projections.reset_handler IS
    'The reset handler''s signature, schema-qualified (for example public.reset_totals()), or NULL: looked up at each rebuild.';

CREATE VIEW eventsource.projection_status AS
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

COMMENT ON VIEW eventsource.projection_status IS
    'Every projection with its mode, status, handler (its signature), checkpoint, lag (async: visible matching events not yet projected), failures and dead letters.';

REVOKE ALL ON eventsource.projection_status FROM PUBLIC;
GRANT SELECT ON eventsource.projection_status TO eventsource_reader;

-- A projection follows its handler when the function is renamed or moved (as the OID of before
-- 0.7.0 did): an event trigger notes the function each stored signature names at the start of a
-- command that can rename or move one, and stores the new signatures at its end.
CREATE FUNCTION eventsource.follow_renamed_handlers()
RETURNS event_trigger
LANGUAGE c
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_follow_renamed_handlers';

COMMENT ON FUNCTION eventsource.follow_renamed_handlers() IS
    'Event trigger function: at the start of ALTER FUNCTION, ALTER ROUTINE, ALTER SCHEMA and ALTER EXTENSION, notes the function each projection''s handler and reset handler signature names; at their end, stores the new signature of each of those functions that was renamed or moved.';

REVOKE ALL ON FUNCTION eventsource.follow_renamed_handlers() FROM PUBLIC;

CREATE EVENT TRIGGER eventsource_handlers_before_rename ON ddl_command_start
    WHEN TAG IN ('ALTER FUNCTION', 'ALTER ROUTINE', 'ALTER SCHEMA', 'ALTER EXTENSION')
    EXECUTE FUNCTION eventsource.follow_renamed_handlers();

CREATE EVENT TRIGGER eventsource_handlers_after_rename ON ddl_command_end
    WHEN TAG IN ('ALTER FUNCTION', 'ALTER ROUTINE', 'ALTER SCHEMA', 'ALTER EXTENSION')
    EXECUTE FUNCTION eventsource.follow_renamed_handlers();

-- Also where session_replication_role is replica.
ALTER EVENT TRIGGER eventsource_handlers_before_rename ENABLE ALWAYS;
ALTER EVENT TRIGGER eventsource_handlers_after_rename ENABLE ALWAYS;

COMMENT ON EVENT TRIGGER eventsource_handlers_before_rename IS
    'Notes the function each projection handler''s signature names before a command that can rename or move it (eventsource.follow_renamed_handlers).';
COMMENT ON EVENT TRIGGER eventsource_handlers_after_rename IS
    'Stores the new signatures of projection handlers that a command renamed or moved (eventsource.follow_renamed_handlers).';

-- The log's inline trigger follows the projections also where session_replication_role is
-- replica: a superuser's session, and logical replication's apply, which fires row triggers only.
ALTER TABLE eventsource.projections ENABLE ALWAYS TRIGGER projections_synchronize_inline;

CREATE TRIGGER projections_synchronize_inline_applied
    AFTER INSERT OR UPDATE OF mode, status OR DELETE ON eventsource.projections
    FOR EACH ROW EXECUTE FUNCTION eventsource.synchronize_inline_projections();

ALTER TABLE eventsource.projections ENABLE REPLICA TRIGGER projections_synchronize_inline_applied;

COMMENT ON TRIGGER projections_synchronize_inline_applied ON eventsource.projections IS
    'Where session_replication_role is replica (logical replication applying the projections): the log''s inline trigger follows each change, as projections_synchronize_inline does for statements.';
-- An acknowledgement is accepted only from the lease it acknowledges
-- ---------------------------------------------------------------------------------------------

-- Each poll that delivers a batch grants a new lease token; ack must present it. The token stays
-- after the batch is acknowledged, so that a re-ack is told from a superseded lease.
ALTER TABLE eventsource.subscription_members ADD COLUMN lease uuid;

COMMENT ON COLUMN eventsource.subscription_members.lease IS
    'The token of the member''s latest lease, which poll returned with the batch: ack accepts only it, and only until leased_until (NULL: no batch polled since 0.7.0).';

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
    lease           uuid)
LANGUAGE c VOLATILE PARALLEL UNSAFE ROWS 100
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_poll';

COMMENT ON FUNCTION eventsource.poll(text, integer, integer, integer) IS
    'The next batch of a subscription''s events after its checkpoint, in log order, leased to the caller for lease_seconds: until it is acknowledged or the lease ends, other consumers of the same member get nothing. Every row carries the batch''s lease, which ack must present.';

DROP FUNCTION eventsource.ack(text, eventsource.checkpoint, integer);

-- lease has a default only so that the call of before 0.7.0, without it, gets a clear error (22004).
CREATE FUNCTION eventsource.ack(
    name                  text,
    checkpoint            eventsource.checkpoint,
    consumer_group_member integer DEFAULT 0,
    lease                 uuid    DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_ack';

COMMENT ON FUNCTION eventsource.ack(text, eventsource.checkpoint, integer, uuid) IS
    'Acknowledges a subscription''s events up to and including checkpoint, an event of the batch that poll leased with lease; only that lease, unexpired and not yet superseded by another poll, may (otherwise 55006, so work done in the same transaction rolls back). The lease ends once the whole batch is acknowledged.';

-- A lease's end is compared with the clock, not with the start of the reading transaction.
-- locked_by names the transaction that holds the member's lock (a poll that leased a batch, or an
-- ack, that has not ended, perhaps prepared): its lease is not committed, so leased may be false,
-- but polls get nothing and acks wait until it ends. The lock is the advisory lock of class 17748
-- whose keys are the first 8 bytes of the SHA-256 of the name and the member number (as the
-- library computes them).
CREATE OR REPLACE VIEW eventsource.subscription_status AS
SELECT s.name, s.category, s.event_types, m.consumer_group_member, s.consumer_group_size,
       m.checkpoint, m.acknowledged_at, m.delivered_through,
       COALESCE(m.leased_until OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp(), false) AS leased, m.leased_until,
       pending.events_behind,
       COALESCE(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) pending.oldest_recorded_at), 0)
           AS seconds_behind,
       holder.locked_by
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

COMMENT ON VIEW eventsource.subscription_status IS
    'Every subscription member with its checkpoint, lease and lag (the visible events it has not acknowledged and the age in seconds of the oldest of them), and locked_by: the process or prepared transaction whose poll that leased a batch, or ack, has not ended (polls get nothing and acks wait until it ends), or NULL.';

REVOKE ALL ON FUNCTION
    eventsource.poll(text, integer, integer, integer),
    eventsource.ack(text, eventsource.checkpoint, integer, uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    eventsource.poll(text, integer, integer, integer),
    eventsource.ack(text, eventsource.checkpoint, integer, uuid)
    TO eventsource_reader;
-- Lifecycle markers in log order. Each stream's row records the log transaction id of the
-- last transaction that appended to, deleted or tombstoned it; the statement that writes the row
-- refuses (40001) a transaction whose id is older, whose events or $stream-deleted /
-- $stream-tombstoned marker would come before that transaction's in the global log.
-- ---------------------------------------------------------------------------------------------

ALTER TABLE eventsource.streams ADD COLUMN last_transaction_id xid8;

COMMENT ON COLUMN eventsource.streams.last_transaction_id IS
    'The log transaction id of the last transaction that appended to, deleted or tombstoned the stream (its events and markers carry it as transaction_id); a later writer with an older one gets 40001. NULL: not known.';

-- Streams written before 0.7.0: the newest id among their events and their markers in $streams
-- (a deleted stream's events may have been scavenged).
UPDATE eventsource.streams s
   SET last_transaction_id = w.last_transaction_id
  FROM (SELECT x.stream_id, pg_catalog.max(x.transaction_id) AS last_transaction_id
          FROM (SELECT e.stream_id, e.transaction_id FROM eventsource.events e
                UNION ALL
                SELECT e.data OPERATOR(pg_catalog.->>) 'stream_id', e.transaction_id
                  FROM eventsource.events e
                 WHERE e.stream_id OPERATOR(pg_catalog.=) '$streams'
                   AND e.event_type OPERATOR(pg_catalog.=) ANY ('{$stream-deleted,$stream-tombstoned}'::text[])) AS x
         GROUP BY x.stream_id) AS w
 WHERE w.stream_id OPERATOR(pg_catalog.=) s.stream_id;

CREATE FUNCTION eventsource.stream_log_transaction_id(stream_id text, latest_transaction_id xid8, operation text)
RETURNS xid8
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_stream_log_transaction_id';

COMMENT ON FUNCTION eventsource.stream_log_transaction_id(text, xid8, text) IS
    'Internal to the statements that append to, delete or tombstone a stream: this transaction''s log transaction id, or 40001 if latest_transaction_id (the stream''s last_transaction_id) is newer. Granted to nobody.';

REVOKE ALL ON FUNCTION eventsource.stream_log_transaction_id(text, xid8, text) FROM PUBLIC;
