-- upgrade.sql: walks every released version up to the current one with ALTER EXTENSION ... UPDATE,
-- with data in the store: the data survives, the new features work, and the upgraded extension has
-- exactly the objects, definitions, comments and grants of a fresh install.
DROP EXTENSION eventsource;

-- The installed extension's objects, with their definitions, grants and comments.
CREATE TEMP VIEW extension_objects AS
SELECT pg_describe_object(d.classid, d.objid, 0) AS object,
       CASE WHEN d.classid = 'pg_proc'::regclass THEN pg_get_functiondef(d.objid) END AS definition,
       CASE WHEN d.classid = 'pg_proc'::regclass THEN (SELECT proacl::text FROM pg_proc WHERE oid = d.objid)
            WHEN d.classid = 'pg_class'::regclass THEN (SELECT relacl::text FROM pg_class WHERE oid = d.objid) END AS grants,
       obj_description(d.objid, d.classid::regclass::name) AS comment
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventsource');

-- What a fresh install of the current version consists of.
CREATE EXTENSION eventsource;
CREATE TEMP TABLE fresh_install AS SELECT * FROM extension_objects;
SELECT extversion AS current_version FROM pg_extension WHERE extname = 'eventsource';
DROP EXTENSION eventsource;

-- 0.1.0, with data.
CREATE EXTENSION eventsource VERSION '0.1.0';
SELECT eventsource.append_events('loan-1', '[{"type": "Requested", "data": {"amount": 100}}, {"type": "Approved", "data": {}}]');
SELECT eventsource.append('loan-2', 'Requested', '{"amount": 50}', event_id => 'c0ffee00-0000-4000-8000-000000000001');
CREATE TEMP TABLE events_before AS SELECT * FROM eventsource.events;
CREATE TEMP TABLE streams_before AS SELECT * FROM eventsource.streams;

-- 0.1.0 -> 0.2.0: snapshots.
ALTER EXTENSION eventsource UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
SELECT count(*) AS changed_events
  FROM ((SELECT * FROM eventsource.events EXCEPT SELECT * FROM events_before)
        UNION ALL (SELECT * FROM events_before EXCEPT SELECT * FROM eventsource.events)) AS difference;
SELECT count(*) AS changed_streams
  FROM ((SELECT * FROM eventsource.streams EXCEPT SELECT * FROM streams_before)
        UNION ALL (SELECT * FROM streams_before EXCEPT SELECT * FROM eventsource.streams)) AS difference;
SELECT eventsource.append('loan-1', 'Paid', '{}', expected_version => 2);
SELECT eventsource.append('loan-2', 'Requested', '{"amount": 50}', event_id => 'c0ffee00-0000-4000-8000-000000000001') AS idempotent_retry;
SELECT eventsource.save_snapshot('loan-1', 2, '{"owed": 100}');
SELECT kind, stream_version, data FROM eventsource.load_stream('loan-1');
CREATE TEMP TABLE snapshots_before AS SELECT * FROM eventsource.snapshots;

-- 0.2.0 -> 0.3.0: the bus (subscriptions).
ALTER EXTENSION eventsource UPDATE TO '0.3.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
SELECT (SELECT count(*) FROM eventsource.events) = (SELECT count(*) + 1 FROM events_before) AS events_kept,
       (SELECT count(*) FROM eventsource.snapshots) = (SELECT count(*) FROM snapshots_before) AS snapshots_kept;
SELECT eventsource.create_subscription('loans', category => 'loan');
SELECT stream_id, stream_version FROM eventsource.poll('loans');

-- 0.3.0 -> 0.4.0: projections.
ALTER EXTENSION eventsource UPDATE TO '0.4.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
SELECT name, consumer_group_member, events_behind FROM eventsource.subscription_status;
CREATE TABLE loan_totals (loan_id text PRIMARY KEY, events int NOT NULL);
CREATE FUNCTION count_loan_event(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO public.loan_totals VALUES (e.stream_id, 1) ON CONFLICT (loan_id) DO UPDATE SET events = public.loan_totals.events + 1';
-- The current library refuses create_projection before 0.6.0, whose SECURITY DEFINER function hides
-- the caller (the role the handlers would run as); a projection the 0.4.0 library made is a row.
SELECT eventsource.create_projection('loan-totals', 'count_loan_event(eventsource.event)');
INSERT INTO eventsource.projections (name, handler, owner, mode, on_failure, max_attempts)
VALUES ('loan-totals', 'count_loan_event(eventsource.event)', current_user::regrole, 'inline', 'stop', 5);
SELECT eventsource.rebuild_projection('loan-totals') AS replayed;
SELECT eventsource.append('loan-2', 'Approved', '{}');
SELECT * FROM loan_totals ORDER BY loan_id;
SELECT eventsource.drop_projection('loan-totals');
DROP TABLE loan_totals;
DROP FUNCTION count_loan_event(eventsource.event);

-- 0.4.0 -> 0.5.0: the stream lifecycle and statistics. The streams keep their rows, with no
-- retention; delete, metadata and scavenge work on streams written before the upgrade.
CREATE TEMP TABLE streams_at_0_4 AS SELECT * FROM eventsource.streams;
ALTER EXTENSION eventsource UPDATE TO '0.5.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
SELECT count(*) AS changed_streams
  FROM ((SELECT stream_id, category, stream_version, created_at, updated_at FROM eventsource.streams
         EXCEPT SELECT * FROM streams_at_0_4)
        UNION ALL (SELECT * FROM streams_at_0_4
         EXCEPT SELECT stream_id, category, stream_version, created_at, updated_at FROM eventsource.streams)) AS difference;
SELECT stream_id, state, first_visible_version, visible_events FROM eventsource.stream_status ORDER BY stream_id;
SELECT eventsource.set_stream_metadata('loan-1', '{"max_count": 1}');
SELECT stream_version, event_type FROM eventsource.read_stream('loan-1');
SELECT eventsource.delete_stream('loan-2');
SELECT eventsource.drop_subscription('loans');
SELECT eventsource.scavenge();
SELECT stream_id, stream_version FROM eventsource.events ORDER BY global_position;

-- 0.5.0 -> 0.6.0: security. A subscription and an inline projection made before the upgrade keep
-- working: the subscription belongs to eventsource_reader (every reader may poll it, as before;
-- the upgrade says so), the handler keeps its search path; new ones belong to their creator and
-- capture the creator's search path.
SELECT eventsource.create_subscription('ledger');
CREATE TABLE public.ledger_totals (stream_id text PRIMARY KEY, events int NOT NULL);
CREATE FUNCTION public.count_ledger_event(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO public.ledger_totals VALUES (e.stream_id, 1) ON CONFLICT (stream_id) DO UPDATE SET events = public.ledger_totals.events + 1';
INSERT INTO eventsource.projections (name, handler, owner, mode, on_failure, max_attempts)
VALUES ('ledger-totals', 'public.count_ledger_event(eventsource.event)', current_user::regrole, 'inline', 'stop', 5);
ALTER EXTENSION eventsource UPDATE TO '0.6.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
SELECT name, owner FROM eventsource.subscriptions;
SELECT name, search_path FROM eventsource.projections;
CREATE ROLE upgrade_consumer IN ROLE eventsource_reader;
SET ROLE upgrade_consumer;
SELECT count(*) AS polled_by_a_reader FROM eventsource.poll('ledger');
RESET ROLE;
SELECT eventsource.append('loan-3', 'Requested', '{}');
SELECT * FROM public.ledger_totals ORDER BY stream_id;
SELECT eventsource.set_subscription_owner('ledger', 'postgres');
SET ROLE upgrade_consumer;
SELECT count(*) FROM eventsource.poll('ledger');
RESET ROLE;
SET search_path = public, pg_temp, pg_catalog;
SELECT eventsource.create_projection('ledger-totals-2', 'public.count_ledger_event(eventsource.event)', mode => 'async');
RESET search_path;
SELECT name, search_path FROM eventsource.projections ORDER BY name;
SELECT eventsource.drop_projection('ledger-totals');
SELECT eventsource.drop_projection('ledger-totals-2');
SELECT eventsource.drop_subscription('ledger');
DROP ROLE upgrade_consumer;
DROP TABLE public.ledger_totals;
DROP FUNCTION public.count_ledger_event(eventsource.event);

-- Projections made at 0.6.0 (handlers stored as regprocedure, which pg_upgrade refuses): one the
-- current library creates there, and one whose handler was dropped since.
CREATE TABLE public.carried_totals (stream_id text PRIMARY KEY, events int NOT NULL);
CREATE FUNCTION public.count_carried_event(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO public.carried_totals VALUES (e.stream_id, 1) ON CONFLICT (stream_id) DO UPDATE SET events = public.carried_totals.events + 1';
CREATE FUNCTION public.reset_carried_totals() RETURNS void LANGUAGE sql AS 'TRUNCATE public.carried_totals';
CREATE FUNCTION public.dropped_handler(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
SET search_path = public, pg_temp, pg_catalog;
SELECT eventsource.create_projection('carried-totals', 'count_carried_event(eventsource.event)', category => 'carry',
                                     reset_handler => 'reset_carried_totals()');
SELECT eventsource.create_projection('dropped-handler', 'dropped_handler(eventsource.event)', mode => 'async');
RESET search_path;
DROP FUNCTION public.dropped_handler(eventsource.event);
SELECT name, pg_typeof(handler) FROM eventsource.projections ORDER BY name;
SELECT eventsource.append('carry-1', 'Carried', '{}');
-- At 0.6.0 the current library keeps the check of before 0.7.0: a transaction that wrote before
-- it appends gets 40001 when the stream's newest event comes from a newer transaction (here one
-- far ahead, 2^63 - 1, inserted directly, as only the extension's owner can). This transaction's
-- id differs from run to run: terse errors.
SELECT eventsource.append('loan-4', 'Requested', '{}');
INSERT INTO eventsource.events (transaction_id, stream_id, stream_version, event_id, event_type, data)
VALUES ('9223372036854775807', 'loan-4', 2, gen_random_uuid(), 'Approved', '{}');
UPDATE eventsource.streams SET stream_version = 2 WHERE stream_id = 'loan-4';
\set VERBOSITY terse
BEGIN;
SELECT pg_current_xact_id() IS NOT NULL AS wrote_before;
SELECT eventsource.append('loan-4', 'Paid', '{}');
ROLLBACK;
\set VERBOSITY default

-- 0.6.0 -> 0.7.0: log integrity.
-- A subscription and a projection with a category containing '-' never matched an event (0.7.0's
-- library refuses one, so they are made by hand here): the upgrade names them in a warning.
SELECT eventsource.create_subscription('misfiled', category => 'loan');
UPDATE eventsource.subscriptions SET category = 'loan-3' WHERE name = 'misfiled';
CREATE FUNCTION public.ignore_event(e eventsource.event) RETURNS void LANGUAGE sql AS '';
INSERT INTO eventsource.projections (name, handler, owner, mode, on_failure, max_attempts, search_path, category)
VALUES ('misfiled', 'public.ignore_event(eventsource.event)', current_user::regrole, 'async', 'stop', 5, 'pg_catalog, pg_temp', 'loan-3');
-- Acknowledgements bound to their lease: before the update, poll returns no lease and ack takes
-- none (a checkpoint that names no event is 22023 there too). A batch polled before the update
-- cannot be acknowledged after it (its lease has no token: 55006); once that lease ends, the next
-- poll delivers the batch again with a lease.
SELECT eventsource.create_subscription('lending');
SELECT stream_id, stream_version FROM eventsource.poll('lending', 2);
SELECT eventsource.ack('lending', checkpoint) FROM eventsource.read_all(max_count => 2) ORDER BY checkpoint DESC LIMIT 1;
\set VERBOSITY sqlstate
SELECT eventsource.ack('lending', '(1,1)');
\set VERBOSITY default
SELECT stream_id, stream_version FROM eventsource.poll('lending', 1, lease_seconds => 3600);
ALTER EXTENSION eventsource UPDATE TO '0.7.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
-- The existing log is epoch 1 of this cluster, without offset: its checkpoints stay valid.
SELECT epoch, reason, transaction_id_offset, start_transaction_id,
       system_identifier = (SELECT system_identifier FROM pg_control_system()) AS this_cluster
  FROM eventsource.log_epochs;
SELECT count(*) > 0 AS read_after_0_7_0, bool_and(transaction_id < eventsource.log_horizon()) AS below_horizon
  FROM eventsource.read_all(max_count => 100000);
SELECT count(*) AS while_leased FROM eventsource.poll('lending');
\set VERBOSITY sqlstate
SELECT eventsource.ack('lending', delivered_through) FROM eventsource.subscription_members WHERE subscription_name = 'lending';
SELECT eventsource.ack('lending', delivered_through, 0, gen_random_uuid()) FROM eventsource.subscription_members WHERE subscription_name = 'lending';
\set VERBOSITY default
-- The lease ends (set here: the update takes longer than a short lease under valgrind).
UPDATE eventsource.subscription_members SET leased_until = pg_catalog.clock_timestamp() - interval '1 second'
 WHERE subscription_name = 'lending';
CREATE TEMP TABLE lending_batch AS SELECT * FROM eventsource.poll('lending', 1);
SELECT stream_id, stream_version, lease IS NOT NULL AS leased FROM lending_batch;
SELECT eventsource.ack('lending', checkpoint, 0, lease) FROM lending_batch;
SELECT eventsource.drop_subscription('lending');
DROP TABLE lending_batch;
SELECT eventsource.drop_projection('misfiled');
SELECT eventsource.drop_subscription('misfiled');
DROP FUNCTION public.ignore_event(eventsource.event);
-- The handlers are their qualified signatures now (a dropped one a signature that names nothing),
-- and the projection made before the upgrade still runs and rebuilds.
SELECT name, pg_typeof(handler), handler, reset_handler FROM eventsource.projections
 WHERE name = 'carried-totals';
SELECT handler LIKE 'pg_catalog."dropped function %"(eventsource.event)' AS dropped_handler_names_nothing,
       pg_catalog.to_regprocedure(handler) IS NULL AS resolves_to_nothing
  FROM eventsource.projections WHERE name = 'dropped-handler';
SELECT a.attrelid::regclass AS pg_upgrade_refuses, a.attname, a.atttypid::regtype
  FROM pg_attribute a
 WHERE a.attrelid IN (SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'eventsource'::regnamespace AND c.relkind IN ('r', 'm'))
   AND a.attnum > 0 AND NOT a.attisdropped
   AND a.atttypid IN ('regcollation'::regtype, 'regconfig'::regtype, 'regdictionary'::regtype, 'regnamespace'::regtype,
                      'regoper'::regtype, 'regoperator'::regtype, 'regproc'::regtype, 'regprocedure'::regtype);
SELECT eventsource.append('carry-1', 'Carried', '{}');
SELECT * FROM public.carried_totals ORDER BY stream_id;
SELECT eventsource.rebuild_projection('carried-totals') AS replayed;
SELECT * FROM public.carried_totals ORDER BY stream_id;
SELECT eventsource.drop_projection('carried-totals');
SELECT eventsource.drop_projection('dropped-handler');
DROP TABLE public.carried_totals;
DROP FUNCTION public.count_carried_event(eventsource.event);
DROP FUNCTION public.reset_carried_totals();
-- Every stream's last_transaction_id is the newest id among its events and the markers of its
-- deletes (loan-2's events were scavenged after its delete: its marker's).
SELECT s.stream_id,
       s.last_transaction_id = (SELECT max(e.transaction_id) FROM eventsource.events e
                                 WHERE e.stream_id = s.stream_id) AS from_its_newest_event,
       s.last_transaction_id = (SELECT max(e.transaction_id) FROM eventsource.events e
                                 WHERE e.stream_id = '$streams' AND e.event_type = '$stream-deleted'
                                   AND e.data->>'stream_id' = s.stream_id) AS from_its_marker
  FROM eventsource.streams s ORDER BY s.stream_id;
-- Now the statement that writes the stream checks it, for a transaction that wrote before or not.
\set VERBOSITY terse
SELECT eventsource.append('loan-4', 'Paid', '{}');
\set VERBOSITY default
SELECT eventsource.append('loan-1', 'Paid', '{}');
SELECT s.last_transaction_id = e.transaction_id AS row_has_the_append
  FROM eventsource.streams s
  JOIN eventsource.events e ON e.stream_id = s.stream_id AND e.stream_version = s.stream_version
 WHERE s.stream_id = 'loan-1';
SELECT eventsource.delete_stream('loan-1');
SELECT s.last_transaction_id = e.transaction_id AS row_has_the_marker
  FROM eventsource.streams s
  JOIN eventsource.events e ON e.stream_id = '$streams' AND e.stream_version = (SELECT stream_version FROM eventsource.streams WHERE stream_id = '$streams')
 WHERE s.stream_id = 'loan-1';
-- The appends after the update stayed in epoch 1: same cluster, same server start.
SELECT count(*) AS epochs FROM eventsource.log_epochs;

-- The upgraded extension is the fresh install: nothing missing, nothing extra, nothing different.
CREATE TEMP TABLE upgraded AS SELECT * FROM extension_objects;
SELECT 'missing after upgrade' AS problem, object FROM (SELECT * FROM fresh_install EXCEPT SELECT * FROM upgraded) AS f
UNION ALL
SELECT 'only after upgrade', object FROM (SELECT * FROM upgraded EXCEPT SELECT * FROM fresh_install) AS u
ORDER BY 1, 2;
SELECT count(*) AS objects_compared FROM upgraded;
SELECT (SELECT extconfig FROM pg_extension WHERE extname = 'eventsource')::regclass[] AS dumped_with_data;

-- Back to a fresh install for the tests that follow.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
