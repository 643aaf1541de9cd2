-- privileges.sql: who may append, read and change the log; SECURITY DEFINER under a hostile search_path.
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default

CREATE ROLE test_nobody;
CREATE ROLE test_reader IN ROLE eventsource_reader;
CREATE ROLE test_writer IN ROLE eventsource_writer;
CREATE ROLE test_admin IN ROLE eventsource_admin;
SELECT eventsource.append('ledger-1', 'Opened', '{}');
SELECT eventsource.save_snapshot('ledger-1', 1, '{"balance": 0}');
SELECT eventsource.create_subscription('ledger-feed', owner => 'eventsource_reader');

-- PUBLIC (a role in none of the eventsource roles) can do nothing.
SET ROLE test_nobody;
SELECT eventsource.append('ledger-1', 'Credited', '{}');
SELECT * FROM eventsource.append_events('ledger-1', '[{"type": "Credited", "data": {}}]');
SELECT count(*) FROM eventsource.read_stream('ledger-1');
SELECT count(*) FROM eventsource.read_all();
SELECT count(*) FROM eventsource.read_category('ledger');
SELECT eventsource.stream_version('ledger-1');
SELECT count(*) FROM eventsource.events;
SELECT count(*) FROM eventsource.load_snapshot('ledger-1');
SELECT count(*) FROM eventsource.load_stream('ledger-1');
SELECT eventsource.save_snapshot('ledger-1', 1, '{}');
SELECT eventsource.delete_snapshots();
SELECT count(*) FROM eventsource.snapshots;
SELECT count(*) FROM eventsource.poll('ledger-feed');
SELECT eventsource.create_subscription('mine');
SELECT count(*) FROM eventsource.subscription_status;
RESET ROLE;

-- A reader reads but cannot append.
SET ROLE test_reader;
SELECT count(*) FROM eventsource.read_stream('ledger-1');
SELECT count(*) FROM eventsource.read_all();
SELECT count(*) FROM eventsource.read_category('ledger');
SELECT eventsource.stream_version('ledger-1');
SELECT count(*) FROM eventsource.events;
SELECT count(*) FROM eventsource.streams;
SELECT count(*) FROM eventsource.snapshots;
SELECT state FROM eventsource.load_snapshot('ledger-1');
SELECT kind, stream_version FROM eventsource.load_stream('ledger-1');
SELECT eventsource.append('ledger-1', 'Credited', '{}');
SELECT eventsource.save_snapshot('ledger-1', 1, '{}');
SELECT eventsource.delete_snapshots();
-- Readers consume subscriptions; creating and dropping them is for admins.
SELECT stream_id, stream_version FROM eventsource.poll('ledger-feed');
SELECT eventsource.ack('ledger-feed', checkpoint, 0, (SELECT lease FROM eventsource.subscription_members WHERE subscription_name OPERATOR(pg_catalog.=) 'ledger-feed')) FROM eventsource.read_all() ORDER BY global_position DESC LIMIT 1;
SELECT name, events_behind FROM eventsource.subscription_status;
SELECT eventsource.create_subscription('mine');
SELECT eventsource.drop_subscription('ledger-feed');
UPDATE eventsource.subscription_members SET checkpoint = NULL;
RESET ROLE;

-- A writer appends and reads, but cannot write the tables directly.
SET ROLE test_writer;
SELECT eventsource.append('ledger-1', 'Credited', '{"amount": 5}');
SELECT stream_version FROM eventsource.append_events('ledger-1', '[{"type": "Debited", "data": {"amount": 2}}]');
SELECT count(*) FROM eventsource.read_stream('ledger-1');
INSERT INTO eventsource.events (stream_id, stream_version, event_id, event_type, data)
VALUES ('ledger-1', 99, gen_random_uuid(), 'Forged', '{}');
UPDATE eventsource.streams SET stream_version = 0;
UPDATE eventsource.events SET data = '{}';
DELETE FROM eventsource.events;
TRUNCATE eventsource.events;
SELECT nextval('eventsource.events_global_position_seq');
SELECT eventsource.save_snapshot('ledger-1', 3, '{"balance": 3}');
SELECT eventsource.delete_snapshots();
UPDATE eventsource.snapshots SET state = '{}';
DELETE FROM eventsource.snapshots;
RESET ROLE;

-- An admin has what a writer has; nobody changes recorded events.
SET ROLE test_admin;
SELECT eventsource.append('ledger-1', 'Audited', '{}');
UPDATE eventsource.events SET data = '{}';
DELETE FROM eventsource.events;
SELECT eventsource.create_subscription('audit-feed', start_from => 'end');
SELECT eventsource.drop_subscription('audit-feed');
DELETE FROM eventsource.subscriptions;
-- Only an admin deletes snapshots, and only through delete_snapshots.
DELETE FROM eventsource.snapshots;
SELECT eventsource.delete_snapshots('ledger-1', below_schema_version => 2);
SELECT stream_id, stream_version FROM eventsource.snapshots;
RESET ROLE;

-- The log's guard does not fire where session_replication_role is replica (logical replication's
-- apply), but only a superuser sets it, and a role granted SET on it still lacks the privileges.
SET ROLE test_admin;
SET session_replication_role = replica;
RESET ROLE;
GRANT SET ON PARAMETER session_replication_role TO test_admin;
SET ROLE test_admin;
SET session_replication_role = replica;
UPDATE eventsource.events SET data = '{}';
DELETE FROM eventsource.events;
TRUNCATE eventsource.events;
RESET session_replication_role;
RESET ROLE;
REVOKE SET ON PARAMETER session_replication_role FROM test_admin;

-- The append functions run as their owner with a pinned search_path: a writer's hostile search_path
-- (a shadowing table, and operators in a schema searched before pg_catalog) changes nothing.
CREATE SCHEMA hostile;
GRANT USAGE, CREATE ON SCHEMA hostile TO test_writer;
SET ROLE test_writer;
CREATE TABLE hostile.streams (stream_id text, category text, stream_version bigint, created_at timestamptz, updated_at timestamptz);
CREATE TABLE hostile.snapshots (stream_id text, stream_version bigint, schema_version integer, state jsonb, created_at timestamptz);
CREATE TABLE hostile.subscription_members (subscription_name text, consumer_group_member integer);
CREATE FUNCTION hostile.always_true(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.always_true);
SET search_path = hostile, pg_catalog, eventsource;
SELECT eventsource.append('ledger-2', 'Opened', '{}');
SELECT eventsource.append('ledger-1', 'Credited', '{}', expected_version => 4);
SELECT eventsource.save_snapshot('ledger-1', 5, '{"balance": 5}');
SELECT count(*) AS polled FROM eventsource.poll('ledger-feed');
RESET search_path;
RESET ROLE;
SELECT count(*) AS rows_in_shadow_table FROM hostile.streams;
SELECT count(*) AS rows_in_shadow_table FROM hostile.snapshots;
SELECT count(*) AS rows_in_shadow_table FROM hostile.subscription_members;
SELECT subscription_name, leased_until IS NOT NULL AS leased FROM eventsource.subscription_members;
SELECT stream_id, stream_version, state FROM eventsource.snapshots ORDER BY stream_id, stream_version;
SELECT stream_id, stream_version FROM eventsource.streams ORDER BY stream_id;
SELECT stream_id, stream_version, event_type FROM eventsource.events ORDER BY global_position;

DROP SCHEMA hostile CASCADE;
DROP ROLE test_nobody, test_reader, test_writer, test_admin;
