-- role_matrix.sql: who may do what, as a matrix: PUBLIC (a role in none of the eventsource roles),
-- reader, writer, admin, and a non-superuser role that owns the event log. Each cell is "ok" or the
-- SQLSTATE of the error; each statement runs in a subtransaction that is rolled back, so the cells
-- do not depend on each other.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
SELECT eventsource.append('ledger-1', 'Opened', '{}');
SELECT eventsource.save_snapshot('ledger-1', 1, '{}');
SELECT eventsource.create_subscription('feed', owner => 'eventsource_reader');
SELECT eventsource.create_subscription('billing', owner => 'pg_monitor');
CREATE SCHEMA matrix;
CREATE FUNCTION matrix.handler(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
GRANT USAGE ON SCHEMA matrix TO PUBLIC;
SELECT eventsource.create_projection('existing', 'matrix.handler(eventsource.event)', mode => 'async');

CREATE ROLE matrix_public;
CREATE ROLE matrix_reader IN ROLE eventsource_reader;
CREATE ROLE matrix_writer IN ROLE eventsource_writer;
CREATE ROLE matrix_admin IN ROLE eventsource_admin;
CREATE ROLE matrix_owner;
GRANT USAGE ON SCHEMA eventsource TO matrix_owner;
ALTER TABLE eventsource.events OWNER TO matrix_owner;

CREATE TABLE matrix.operations (operation text PRIMARY KEY, statement text NOT NULL, ordinal serial);
INSERT INTO matrix.operations (operation, statement) VALUES
    ('append',                 $$SELECT eventsource.append('ledger-1', 'Credited', '{}')$$),
    ('append_events',          $$SELECT eventsource.append_events('ledger-2', '[{"type": "Opened", "data": {}}]')$$),
    ('append_to_streams',      $$SELECT count(*) FROM eventsource.append_to_streams('[{"stream_id": "ledger-3", "events": [{"type": "Opened", "data": {}}]}, {"stream_id": "ledger-1", "expected_version": 1}]')$$),
    ('read_stream',            $$SELECT count(*) FROM eventsource.read_stream('ledger-1')$$),
    ('read_all',               $$SELECT count(*) FROM eventsource.read_all()$$),
    ('read_by_query',          $$SELECT count(*) FROM eventsource.read_by_query('{"items": [{"types": ["Opened"]}]}')$$),
    ('read_category',          $$SELECT count(*) FROM eventsource.read_category('ledger')$$),
    ('select events',          $$SELECT count(*) FROM eventsource.events$$),
    ('insert events',          $$INSERT INTO eventsource.events (stream_id, stream_version, event_id, event_type, data) VALUES ('x-1', 1, gen_random_uuid(), 'X', '{}')$$),
    ('update events',          $$UPDATE eventsource.events SET data = '{}'$$),
    ('delete events',          $$DELETE FROM eventsource.events$$),
    ('truncate events',        $$TRUNCATE eventsource.events$$),
    ('update streams',         $$UPDATE eventsource.streams SET stream_version = 0$$),
    ('save_snapshot',          $$SELECT eventsource.save_snapshot('ledger-1', 1, '{"again": true}')$$),
    ('load_stream',            $$SELECT count(*) FROM eventsource.load_stream('ledger-1')$$),
    ('delete_snapshots',       $$SELECT eventsource.delete_snapshots()$$),
    ('delete from snapshots',  $$DELETE FROM eventsource.snapshots$$),
    ('create_subscription',    $$SELECT eventsource.create_subscription('another', query => '{"items": [{"tags": ["ledger:1"]}]}')$$),
    ('poll',                   $$SELECT count(*) FROM eventsource.poll('feed')$$),
    ('poll and ack',           $$SELECT eventsource.ack('feed', checkpoint, 0, lease) FROM eventsource.poll('feed') LIMIT 1$$),
    ('poll another''s',         $$SELECT count(*) FROM eventsource.poll('billing')$$),
    ('ack another''s',          $$SELECT eventsource.ack('billing', checkpoint, 0, gen_random_uuid()) FROM eventsource.read_all() LIMIT 1$$),
    ('set_subscription_owner', $$SELECT eventsource.set_subscription_owner('feed', 'eventsource_writer')$$),
    ('drop_subscription',      $$SELECT eventsource.drop_subscription('feed')$$),
    ('update subscription',    $$UPDATE eventsource.subscription_members SET checkpoint = NULL$$),
    ('subscription_status',    $$SELECT count(*) FROM eventsource.subscription_status$$),
    ('create_projection',      $$SELECT eventsource.create_projection('new', 'matrix.handler(eventsource.event)', mode => 'async')$$),
    ('pause_projection',       $$SELECT eventsource.pause_projection('existing')$$),
    ('rebuild_projection',     $$SELECT eventsource.rebuild_projection('existing')$$),
    ('drop_projection',        $$SELECT eventsource.drop_projection('existing')$$),
    ('update projections',     $$UPDATE eventsource.projections SET status = 'paused'$$),
    ('projection_status',      $$SELECT count(*) FROM eventsource.projection_status$$),
    ('events_behind',          $$SELECT events_behind FROM eventsource.events_behind(NULL, NULL, NULL)$$),
    ('event_matches_query',    $$SELECT eventsource.event_matches_query('Opened', NULL, '{"items": [{"types": ["Opened"]}]}')$$),
    ('delete_stream',          $$SELECT eventsource.delete_stream('ledger-1')$$),
    ('tombstone_stream',       $$SELECT eventsource.tombstone_stream('ledger-1')$$),
    ('set_stream_metadata',    $$SELECT eventsource.set_stream_metadata('ledger-1', '{"max_count": 1}')$$),
    ('stream_metadata',        $$SELECT eventsource.stream_metadata('ledger-1')$$),
    ('update stream retention', $$UPDATE eventsource.streams SET truncate_before = 100$$),
    ('scavenge',               $$SELECT eventsource.scavenge()$$),
    ('stream_status',          $$SELECT count(*) FROM eventsource.stream_status$$),
    ('statistics views',       $$SELECT (SELECT count(*) FROM eventsource.store_statistics) + (SELECT count(*) FROM eventsource.category_statistics) + (SELECT count(*) FROM eventsource.event_type_statistics) + (SELECT count(*) FROM eventsource.snapshot_statistics) + (SELECT count(*) FROM eventsource.visibility_horizon)$$),
    ('reset_statistics',       $$SELECT eventsource.reset_statistics()$$),
    ('log_horizon, log_epochs', $$SELECT eventsource.log_horizon() IS NOT NULL AND (SELECT count(*) FROM eventsource.log_epochs) >= 0$$),
    ('insert into log_epochs', $$INSERT INTO eventsource.log_epochs SELECT epoch + 1, system_identifier, server_started_at, transaction_id_offset, start_transaction_id, started_at, reason FROM eventsource.log_epochs$$);

-- Runs a statement as a role in a subtransaction that is always undone; "ok" or the SQLSTATE.
CREATE FUNCTION matrix.try(role_name text, statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    outcome text;
BEGIN
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', role_name);
        EXECUTE statement;
        outcome := 'ok';
        RAISE SQLSTATE 'MX000';
    EXCEPTION
        WHEN SQLSTATE 'MX000' THEN NULL;
        WHEN OTHERS THEN outcome := SQLSTATE;
    END;
    RETURN outcome;
END
$$;
GRANT USAGE ON SCHEMA matrix TO matrix_public, matrix_reader, matrix_writer, matrix_admin, matrix_owner;
SET client_min_messages = error;

-- ok: allowed; 42501: no privilege; SE003: the log is append-only, even for its owner (who, owning
-- the table, may INSERT into it directly: ownership of the log is a superuser's matter).
SELECT o.operation,
       matrix.try('matrix_public', o.statement) AS public,
       matrix.try('matrix_reader', o.statement) AS reader,
       matrix.try('matrix_writer', o.statement) AS writer,
       matrix.try('matrix_admin', o.statement) AS admin,
       matrix.try('matrix_owner', o.statement) AS log_owner
  FROM matrix.operations o
 ORDER BY o.ordinal;
RESET client_min_messages;

-- Nothing was changed by any of it.
SELECT count(*) AS events, (SELECT count(*) FROM eventsource.subscriptions) AS subscriptions,
       (SELECT count(*) FROM eventsource.projections) AS projections,
       (SELECT count(*) FROM eventsource.streams
         WHERE truncate_before IS NOT NULL OR max_count IS NOT NULL OR deleted_through IS NOT NULL) AS streams_with_lifecycle_changes
  FROM eventsource.events;

ALTER TABLE eventsource.events OWNER TO CURRENT_USER;
REVOKE USAGE ON SCHEMA eventsource FROM matrix_owner;
SET client_min_messages = warning;
DROP SCHEMA matrix CASCADE;
RESET client_min_messages;
DROP ROLE matrix_public, matrix_reader, matrix_writer, matrix_admin, matrix_owner;
DROP EXTENSION eventsource CASCADE;
CREATE EXTENSION eventsource;
