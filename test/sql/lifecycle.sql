-- lifecycle.sql: delete_stream, tombstone_stream, set_stream_metadata and stream_metadata, stream
-- reads honouring them at once, the $streams audit stream, scavenge (and what holds it back), the
-- stream_status view, and every error path (each leaves the streams and the log unchanged).
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default
SELECT eventsource.append_events('order-1', jsonb_agg(jsonb_build_object('type', 'Step', 'data', jsonb_build_object('n', n))))
  FROM generate_series(1, 10) AS n;
SELECT eventsource.append_events('order-2', '[{"type": "Placed", "data": {}}, {"type": "Paid", "data": {}}]');
SELECT eventsource.append('cart-1', 'Opened', '{}', event_id => '00000000-0000-4000-8000-000000000001');
SELECT eventsource.save_snapshot('order-2', 2, '{"paid": true}');
CREATE ROLE lifecycle_operator IN ROLE eventsource_admin;
-- The log and the streams as they are; every failed call below must leave them so.
CREATE TEMP VIEW store AS
SELECT (SELECT count(*) FROM eventsource.events) AS events,
       (SELECT string_agg(format('%s:%s:%s:%s:%s:%s:%s', stream_id, stream_version, truncate_before, max_count, max_age,
                                 deleted_through, tombstoned_at IS NOT NULL), ' ' ORDER BY stream_id)
          FROM eventsource.streams) AS streams,
       (SELECT count(*) FROM eventsource.snapshots) AS snapshots;
SELECT * FROM store;

-- ---------------------------------------------------------------------------------------------
-- Retention settings: stream reads honour them at once.
-- ---------------------------------------------------------------------------------------------
SELECT eventsource.stream_metadata('order-1') AS none_set, eventsource.stream_metadata('order-404') AS no_stream;
SELECT eventsource.set_stream_metadata('order-1', '{"max_count": 3}');
SELECT stream_version FROM eventsource.read_stream('order-1');
SELECT stream_version FROM eventsource.read_stream('order-1', direction => 'backward');
SELECT stream_version FROM eventsource.read_stream('order-1', from_version => 9);
SELECT stream_version FROM eventsource.read_stream('order-1', from_version => 7, direction => 'backward');
SELECT count(*) AS below_the_first_visible FROM eventsource.read_stream('order-1', from_version => 7, direction => 'backward', max_count => 1)
 WHERE stream_version < 8;
-- The stream's version and the global log are unchanged: the events are hidden, not removed.
SELECT eventsource.stream_version('order-1'),
       (SELECT count(*) FROM eventsource.read_category('order')) AS in_the_category,
       (SELECT count(*) FROM eventsource.read_all()) AS in_the_log;
-- A new append moves the window.
SELECT eventsource.append('order-1', 'Step', '{"n": 11}');
SELECT stream_version FROM eventsource.read_stream('order-1');
-- truncate_before and max_count together: the later of the two wins.
SELECT eventsource.set_stream_metadata('order-1', '{"truncate_before": 5, "max_count": 10}');
SELECT min(stream_version), max(stream_version) FROM eventsource.read_stream('order-1');
SELECT eventsource.set_stream_metadata('order-1', '{"truncate_before": 10, "max_count": 10}');
SELECT min(stream_version), max(stream_version) FROM eventsource.read_stream('order-1');
SELECT eventsource.stream_metadata('order-1');
-- Setting replaces every setting: {} (or nulls) clears them, and the whole stream shows again.
SELECT eventsource.set_stream_metadata('order-1', '{"truncate_before": null}');
SELECT count(*) AS visible_again FROM eventsource.read_stream('order-1');
-- max_age: an interval or seconds; events before the first one recorded within it are hidden.
SELECT eventsource.set_stream_metadata('order-1', '{"max_age": 86400}');
SELECT eventsource.set_stream_metadata('order-1', '{"max_age": "1 day 2 hours"}');
SELECT eventsource.set_stream_metadata('cart-1', '{"max_age": "2 seconds"}');
SELECT pg_sleep(2.2);
SELECT eventsource.append('cart-1', 'ItemAdded', '{}');
SELECT stream_version, event_type FROM eventsource.read_stream('cart-1');
-- load_stream honours them too, and uses only a snapshot of a visible version.
SELECT eventsource.set_stream_metadata('order-2', '{"truncate_before": 2}');
SELECT kind, stream_version FROM eventsource.load_stream('order-2');
SELECT eventsource.set_stream_metadata('order-2', '{"truncate_before": 4}');
SELECT eventsource.append('order-2', 'Shipped', '{}');
SELECT eventsource.append('order-2', 'Delivered', '{}');
SELECT kind, stream_version FROM eventsource.load_stream('order-2');
SELECT eventsource.set_stream_metadata('order-2', '{}');
SELECT kind, stream_version FROM eventsource.load_stream('order-2');

-- Bad metadata: each is an error with the rule, and changes nothing.
SELECT * FROM store;
SELECT eventsource.set_stream_metadata('order-1', '[1]');
SELECT eventsource.set_stream_metadata('order-1', '"max_count"');
SELECT eventsource.set_stream_metadata('order-1', '{"maxCount": 3}');
SELECT eventsource.set_stream_metadata('order-1', '{"max_count": 0}');
SELECT eventsource.set_stream_metadata('order-1', '{"max_count": 2.5}');
SELECT eventsource.set_stream_metadata('order-1', '{"max_count": "3"}');
SELECT eventsource.set_stream_metadata('order-1', '{"max_count": 1e30}');
SELECT eventsource.set_stream_metadata('order-1', '{"truncate_before": -1}');
SELECT eventsource.set_stream_metadata('order-1', '{"max_age": "-1 day"}');
SELECT eventsource.set_stream_metadata('order-1', '{"max_age": 0}');
SELECT eventsource.set_stream_metadata('order-1', '{"max_age": "1001 years"}');
SELECT eventsource.set_stream_metadata('order-1', '{"max_age": "a fortnight"}');
SELECT eventsource.set_stream_metadata('order-1', '{"max_age": true}');
SELECT eventsource.set_stream_metadata('order-1', NULL);
SELECT eventsource.set_stream_metadata(NULL, '{}');
SELECT eventsource.set_stream_metadata('order-404', '{}');
SELECT eventsource.set_stream_metadata('$streams', '{"max_count": 1}');
SELECT * FROM store;

-- ---------------------------------------------------------------------------------------------
-- Soft delete: the events disappear from stream reads, numbering continues.
-- ---------------------------------------------------------------------------------------------
SET ROLE lifecycle_operator;
SELECT eventsource.delete_stream('order-2', expected_version => 4);
RESET ROLE;
SELECT count(*) AS read_stream, (SELECT count(*) FROM eventsource.load_stream('order-2')) AS load_stream,
       (SELECT count(*) FROM eventsource.snapshots WHERE stream_id = 'order-2') AS snapshots,
       eventsource.stream_version('order-2') AS stream_version,
       (SELECT count(*) FROM eventsource.read_category('order') WHERE stream_id = 'order-2') AS still_in_the_log
  FROM eventsource.read_stream('order-2');
SELECT stream_id, state, stream_version, first_visible_version, visible_events, events_to_scavenge
  FROM eventsource.stream_status WHERE stream_id = 'order-2';
-- A later change of the retention settings leaves the delete as it is.
SELECT eventsource.set_stream_metadata('order-2', '{"max_count": 10}');
SELECT count(*) AS still_deleted FROM eventsource.read_stream('order-2');
SELECT eventsource.set_stream_metadata('order-2', '{}');
-- Appending again continues the version numbering; expected versions are checked against it.
SELECT eventsource.append('order-2', 'Reopened', '{}', expected_version => 0);
SELECT eventsource.append('order-2', 'Reopened', '{}', expected_version => 4);
SELECT stream_version, event_type FROM eventsource.read_stream('order-2');
SELECT state FROM eventsource.stream_status WHERE stream_id = 'order-2';
-- Each delete, tombstone and metadata change is an event in the $streams audit stream, with who did it.
SELECT stream_version, event_type, data,
       CASE metadata->>'role' WHEN current_user THEN 'the current user' ELSE metadata->>'role' END AS role,
       metadata->>'session_user' = session_user AS session_user
  FROM eventsource.read_stream('$streams', from_version => 10);
SELECT count(*) AS audit_events, count(DISTINCT event_type) AS kinds FROM eventsource.read_category('$streams');

-- Errors: each changes nothing.
SELECT * FROM store;
SELECT eventsource.delete_stream('order-1', expected_version => 3);
SELECT eventsource.delete_stream('order-1', expected_version => 0);
SELECT eventsource.delete_stream('order-1', expected_version => -2);
SELECT eventsource.delete_stream('order-404');
SELECT eventsource.delete_stream('order-404', expected_version => -1);
SELECT eventsource.delete_stream(NULL);
SELECT eventsource.delete_stream('');
SELECT eventsource.delete_stream('$streams');
SELECT * FROM store;

-- ---------------------------------------------------------------------------------------------
-- Tombstone: as a delete, and the stream can never be written again.
-- ---------------------------------------------------------------------------------------------
SELECT eventsource.tombstone_stream('cart-1', expected_version => -1);
SELECT count(*) AS visible FROM eventsource.read_stream('cart-1');
SELECT state FROM eventsource.stream_status WHERE stream_id = 'cart-1';
SELECT * FROM store;
SELECT eventsource.append('cart-1', 'ItemAdded', '{}');
SELECT eventsource.append('cart-1', 'ItemAdded', '{}', expected_version => 2);
SELECT eventsource.append('cart-1', 'ItemAdded', '{}', expected_version => 7);
SELECT eventsource.append('cart-1', 'ItemAdded', '{}', expected_version => 0);
SELECT eventsource.append('cart-1', 'ItemAdded', '{}', event_id => gen_random_uuid());
SELECT eventsource.append_events('cart-1', '[{"type": "ItemAdded", "data": {}}]');
SELECT eventsource.delete_stream('cart-1');
SELECT eventsource.tombstone_stream('cart-1');
SELECT eventsource.set_stream_metadata('cart-1', '{}');
-- A retry of an append made before the tombstone still returns its original result.
SELECT eventsource.append('cart-1', 'Opened', '{}', event_id => '00000000-0000-4000-8000-000000000001');
SELECT * FROM store;
-- A stream id never written can be tombstoned, so that it never is.
SELECT eventsource.tombstone_stream('cart-404', expected_version => 5);
SELECT eventsource.tombstone_stream('cart-404', expected_version => -1);
SELECT eventsource.tombstone_stream('cart-404', expected_version => 0);
SELECT eventsource.append('cart-404', 'Opened', '{}');
SELECT stream_id, category, state, stream_version, visible_events FROM eventsource.stream_status WHERE stream_id = 'cart-404';
SELECT stream_version, event_type, data FROM eventsource.read_stream('$streams', direction => 'backward', max_count => 2);

-- ---------------------------------------------------------------------------------------------
-- Scavenge: removes what nothing shows, in batches, leaving what a consumer still needs.
-- ---------------------------------------------------------------------------------------------
-- A subscription holds back the events it has not passed: a consumer group of two on the order
-- category, from the start. A cart subscription from the end holds back none of cart-1's.
SELECT eventsource.create_subscription('orders', category => 'order', consumer_group_size => 2);
SELECT eventsource.create_subscription('carts', category => 'cart', start_from => 'end');
SELECT stream_id, stream_version, first_visible_version, events_to_scavenge FROM eventsource.stream_status
 WHERE events_to_scavenge > 0 ORDER BY stream_id;
SELECT eventsource.scavenge(1) AS one_at_most;
SELECT eventsource.scavenge() AS the_rest;
SELECT eventsource.scavenge() AS nothing_left;
SELECT stream_id, count(*) FROM eventsource.events WHERE stream_id IN ('cart-1', 'order-2') GROUP BY 1 ORDER BY 1;
-- The member that receives order-2 passes its deleted events: they can go, though the other member
-- has polled nothing (it never receives order-2).
SELECT eventsource.ack('orders', checkpoint, eventsource.consumer_group_member('order-2', 2), lease)
  FROM eventsource.poll('orders', 1000, eventsource.consumer_group_member('order-2', 2))
 ORDER BY checkpoint DESC LIMIT 1;
SELECT eventsource.scavenge();
SELECT stream_version, event_type FROM eventsource.events WHERE stream_id = 'order-2' ORDER BY 1;
SELECT eventsource.drop_subscription('orders');
-- An async projection holds back what it has not projected, paused or not; dropped, it holds nothing.
SELECT eventsource.set_stream_metadata('order-1', '{"max_count": 2}');
CREATE SCHEMA lifecycle;
CREATE FUNCTION lifecycle.ignore(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
SET client_min_messages = error;
SELECT eventsource.create_projection('order-steps', 'lifecycle.ignore(eventsource.event)', category => 'order',
                                     event_types => '{Step}', mode => 'async');
RESET client_min_messages;
SELECT eventsource.pause_projection('order-steps');
SELECT eventsource.scavenge() AS held_by_the_projection;
SELECT eventsource.drop_projection('order-steps');
SELECT eventsource.scavenge() AS after_the_drop;
SELECT stream_version FROM eventsource.events WHERE stream_id = 'order-1' ORDER BY 1;
SELECT stream_id, first_visible_version, events_to_scavenge FROM eventsource.stream_status WHERE stream_id = 'order-1';
-- Reads are unchanged by the removal.
SELECT stream_version FROM eventsource.read_stream('order-1');
-- Loosening a setting shows only what scavenge has not removed.
SELECT eventsource.set_stream_metadata('order-1', '{}');
SELECT stream_version FROM eventsource.read_stream('order-1');
-- scavenge_all: batches of a given size, a transaction each, until nothing is left.
SELECT eventsource.set_stream_metadata('order-1', '{"max_count": 1}');
CALL eventsource.scavenge_all(1);
SELECT count(*) AS left_in_order_1 FROM eventsource.events WHERE stream_id = 'order-1';
-- The log stays append-only outside scavenge.
DELETE FROM eventsource.events WHERE stream_id = 'order-1';
-- Errors.
SELECT eventsource.scavenge(0);
SELECT eventsource.scavenge(100001);
SELECT eventsource.scavenge(NULL);
BEGIN READ ONLY;
SELECT eventsource.scavenge();
ROLLBACK;
BEGIN READ ONLY;
SELECT eventsource.delete_stream('order-1');
ROLLBACK;

-- The log order: each stream's row records the log transaction id of the last transaction that
-- appended to, deleted or tombstoned it; its events and its marker in $streams carry the same one.
BEGIN;
SELECT eventsource.append('memo-1', 'Noted', '{}');
SELECT eventsource.append('memo-1', 'Noted', '{}');
SELECT eventsource.delete_stream('memo-1');
COMMIT;
SELECT count(DISTINCT e.transaction_id) AS transaction_ids, count(*) AS events_and_marker,
       min(e.transaction_id) = min(s.last_transaction_id) AS the_rows_last_transaction_id
  FROM eventsource.events e, eventsource.streams s
 WHERE (e.stream_id = 'memo-1' OR (e.stream_id = '$streams' AND e.data->>'stream_id' = 'memo-1'))
   AND s.stream_id = 'memo-1';
SELECT eventsource.tombstone_stream('memo-2');
SELECT s.last_transaction_id = e.transaction_id AS tombstone_of_a_new_stream_has_its_marker_id
  FROM eventsource.streams s
  JOIN eventsource.events e ON e.stream_id = '$streams' AND e.data->>'stream_id' = s.stream_id
 WHERE s.stream_id = 'memo-2';
-- A writer newer than this transaction took the stream: 40001 (this transaction's id differs from
-- run to run: shown as N).
DO $$
DECLARE
    detail text;
    hint text;
BEGIN
    PERFORM eventsource.stream_log_transaction_id('memo-1', '18446744073709551615', 'delete');
EXCEPTION WHEN serialization_failure THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RAISE NOTICE E'%\n%\n%', SQLERRM, regexp_replace(detail, '\(\d+\)', '(N)'), hint;
END
$$;
SELECT eventsource.stream_log_transaction_id('memo-1', NULL, 'rename');
-- Only the extension's own statements call it.
SET ROLE lifecycle_operator;
SELECT eventsource.stream_log_transaction_id('memo-1', NULL, 'append');
RESET ROLE;

SELECT eventsource.drop_subscription('carts');
DROP SCHEMA lifecycle CASCADE;
DROP ROLE lifecycle_operator;
