-- statistics.sql: the statistics views (store, categories, event types, snapshots, the visibility
-- horizon), the shared-memory counters and their reset, and the lag columns of the status views.
-- Runs on a cluster with eventsource preloaded (test/run's); counters are cluster-wide, so the
-- checks compare them before and after.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default

SELECT eventsource.reset_statistics();
SELECT appends, events_appended, version_conflicts, idempotent_retries, tombstone_rejections, events_scavenged,
       statistics_reset > now() - interval '1 minute' AS just_reset
  FROM eventsource.statistics();
CREATE TEMP TABLE counted AS SELECT * FROM eventsource.statistics();

-- Appends (calls and events), a conflict, a retry, a tombstone rejection and a scavenge are counted.
SELECT eventsource.append('order-1', 'Placed', '{}', event_id => '00000000-0000-4000-8000-0000000000a1');
SELECT eventsource.append_events('order-1', '[{"type": "Paid", "data": {"total": 5}}, {"type": "Shipped", "data": {}}]');
SELECT eventsource.append('order-2', 'Placed', '{}');
SELECT eventsource.append('cart-1', 'Opened', '{}');
SELECT eventsource.append('order-1', 'Placed', '{}', event_id => '00000000-0000-4000-8000-0000000000a1');
SELECT eventsource.append('order-1', 'Placed', '{}', expected_version => 1);
SELECT eventsource.tombstone_stream('cart-1');
SELECT eventsource.append('cart-1', 'Opened', '{}');
SELECT eventsource.scavenge();
SELECT s.appends - c.appends AS appends, s.events_appended - c.events_appended AS events_appended,
       s.version_conflicts - c.version_conflicts AS version_conflicts,
       s.idempotent_retries - c.idempotent_retries AS idempotent_retries,
       s.tombstone_rejections - c.tombstone_rejections AS tombstone_rejections,
       s.events_scavenged - c.events_scavenged AS events_scavenged
  FROM eventsource.statistics() s, counted c;

-- The store in one row; per category; per event type.
SELECT eventsource.save_snapshot('order-1', 3, jsonb_build_object('items', repeat('x', 100)));
SELECT eventsource.save_snapshot('order-1', 3, '{"v": 2}', schema_version => 2);
SELECT eventsource.save_snapshot('order-2', 1, jsonb_build_object('items', repeat('x', 300)));
SELECT streams, head_global_position, log_bytes > 0 AS log_bytes, streams_bytes > 0 AS streams_bytes,
       snapshots, snapshots_bytes > 0 AS snapshots_bytes, appends IS NOT NULL AS counted
  FROM eventsource.store_statistics;
SELECT category, streams, deleted_streams, tombstoned_streams, events,
       first_recorded_at <= last_recorded_at AS recorded_in_order
  FROM eventsource.category_statistics ORDER BY category;
SELECT event_type, events, streams FROM eventsource.event_type_statistics ORDER BY event_type;
-- Snapshot sizes per category and schema version (the state as stored).
SELECT category, schema_version, snapshots, streams, total_bytes > 100 AS total_bytes,
       largest_bytes >= average_bytes AS largest_at_least_average, last_created_at IS NOT NULL AS created
  FROM eventsource.snapshot_statistics ORDER BY category, schema_version;
SELECT (SELECT sum(total_bytes) FROM eventsource.snapshot_statistics) =
       (SELECT sum(pg_column_size(state)) FROM eventsource.snapshots) AS sizes_add_up;

-- The visibility horizon: one row. (Which session holds it depends on what else runs in the
-- cluster, a notifier's transaction for one; isolation spec stream_lifecycle shows a transaction
-- holding it and the events it holds back.)
SELECT count(*) AS rows, bool_and(horizon IS NOT NULL) AS has_horizon, bool_and(events_held_back >= 0) AS counts,
       bool_and((holding_pid IS NULL) = (holding_transaction_start IS NULL OR prepared_transaction IS NOT NULL)) AS holder_described
  FROM eventsource.visibility_horizon;

-- Lag: subscriptions and async projections report events and seconds behind.
SELECT eventsource.create_subscription('audit');
SELECT name, events_behind, seconds_behind >= 0 AS seconds_behind FROM eventsource.subscription_status;
CREATE SCHEMA statistics_test;
CREATE FUNCTION statistics_test.ignore(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
SET client_min_messages = error;
SELECT eventsource.create_projection('paused', 'statistics_test.ignore(eventsource.event)', mode => 'async');
RESET client_min_messages;
SELECT eventsource.pause_projection('paused');
SELECT name, status, events_behind, seconds_behind >= 0 AS seconds_behind FROM eventsource.projection_status;

-- Reset: the counters go back to zero and the reset time moves.
SELECT eventsource.reset_statistics();
SELECT appends, events_appended, version_conflicts, idempotent_retries, tombstone_rejections, events_scavenged,
       statistics_reset > (SELECT statistics_reset FROM counted) AS reset_later
  FROM eventsource.statistics();

SELECT eventsource.drop_projection('paused');
SELECT eventsource.drop_subscription('audit');
DROP SCHEMA statistics_test CASCADE;
