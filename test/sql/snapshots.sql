-- snapshots.sql: save_snapshot, load_snapshot, load_stream, delete_snapshots, retention, and every
-- error path (each leaves the stored snapshots unchanged).
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default
SELECT eventsource.append_events('account-1', jsonb_agg(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', n))))
  FROM generate_series(1, 20) AS n;
SELECT eventsource.append('account-2', 'Opened', '{}');
SHOW eventsource.snapshots_to_keep;

-- Save and load: the newest snapshot, at or below a version, of a schema version.
SELECT eventsource.save_snapshot('account-1', 5, '{"balance": 15}');
SELECT eventsource.save_snapshot('account-1', 10, '{"balance": 55}');
SELECT stream_id, stream_version, schema_version, state FROM eventsource.load_snapshot('account-1');
SELECT stream_version, state FROM eventsource.load_snapshot('account-1', max_version => 9);
SELECT stream_version, state FROM eventsource.load_snapshot('account-1', max_version => 10);
SELECT count(*) AS before_the_first FROM eventsource.load_snapshot('account-1', max_version => 4);
SELECT count(*) AS other_schema FROM eventsource.load_snapshot('account-1', schema_version => 2);
SELECT count(*) AS no_snapshot FROM eventsource.load_snapshot('account-2');
SELECT count(*) AS no_stream FROM eventsource.load_snapshot('account-404');
-- Saving again at the same version and schema version replaces the state.
SELECT eventsource.save_snapshot('account-1', 10, '{"balance": 55, "corrected": true}');
SELECT stream_version, schema_version, state FROM eventsource.snapshots ORDER BY stream_version, schema_version;
-- A new schema version is stored beside the old one; load picks by schema version, or the newest.
SELECT eventsource.save_snapshot('account-1', 8, '{"cents": 3600}', schema_version => 2);
SELECT stream_version, schema_version, state FROM eventsource.load_snapshot('account-1', schema_version => 2);
SELECT stream_version, schema_version FROM eventsource.load_snapshot('account-1', schema_version => 1);
SELECT stream_version, schema_version FROM eventsource.load_snapshot('account-1');
SELECT eventsource.save_snapshot('account-1', 10, '{"cents": 5500}', schema_version => 2);
SELECT stream_version, schema_version FROM eventsource.load_snapshot('account-1');
-- The last version of a stream, and a state that is not an object, can be saved.
SELECT eventsource.save_snapshot('account-2', 1, '0');
SELECT state FROM eventsource.load_snapshot('account-2');

-- load_stream: the snapshot first, then every event after it, in stream order.
SELECT kind, stream_version, schema_version, event_type, data FROM eventsource.load_stream('account-1', schema_version => 1);
SELECT kind, stream_version, schema_version, event_type, data FROM eventsource.load_stream('account-1', max_version => 12, schema_version => 2);
-- No usable snapshot: the whole stream, up to max_version.
SELECT kind, stream_version, data FROM eventsource.load_stream('account-1', max_version => 3, schema_version => 3);
SELECT count(*) AS events, min(stream_version), max(stream_version) FROM eventsource.load_stream('account-1', schema_version => 3);
-- Event rows carry the event's columns; the snapshot row its creation time.
SELECT bool_and(l.event_id = e.event_id AND l.global_position = e.global_position AND l.recorded_at = e.recorded_at
                AND l.metadata IS NOT DISTINCT FROM e.metadata) AS events_match
  FROM eventsource.load_stream('account-1') l JOIN eventsource.events e USING (stream_version)
 WHERE e.stream_id = 'account-1' AND l.kind = 'event';
SELECT event_id IS NULL AND global_position IS NULL AND metadata IS NULL AND recorded_at IS NOT NULL AS snapshot_row_shape
  FROM eventsource.load_stream('account-1') WHERE kind = 'snapshot';
SELECT count(*) AS at_version_zero FROM eventsource.load_stream('account-1', max_version => 0);
SELECT count(*) AS no_stream FROM eventsource.load_stream('account-404');
-- The newest snapshot at or below max_version, then the events up to it.
SELECT kind, stream_version, schema_version FROM eventsource.load_stream('account-1', max_version => 9, schema_version => 2);

-- Retention: save_snapshot keeps the newest eventsource.snapshots_to_keep snapshots of the stream
-- (by stream version, then schema version); other streams are untouched.
SET eventsource.snapshots_to_keep = 2;
SELECT eventsource.save_snapshot('account-1', 12, '{"balance": 78}');
SELECT stream_id, stream_version, schema_version FROM eventsource.snapshots ORDER BY 1, 2, 3;
-- An older version than the ones kept is saved and at once removed again.
SELECT eventsource.save_snapshot('account-1', 3, '{"balance": 6}');
SELECT stream_version, schema_version FROM eventsource.snapshots WHERE stream_id = 'account-1' ORDER BY 1, 2;
-- 0 keeps every snapshot.
SET eventsource.snapshots_to_keep = 0;
SELECT eventsource.save_snapshot('account-1', n, jsonb_build_object('n', n)) FROM generate_series(1, 6) AS n;
SELECT count(*) AS kept FROM eventsource.snapshots WHERE stream_id = 'account-1';
RESET eventsource.snapshots_to_keep;
SELECT eventsource.save_snapshot('account-1', 20, '{"balance": 210}');
SELECT stream_version, schema_version FROM eventsource.snapshots WHERE stream_id = 'account-1' ORDER BY 1, 2;
SET eventsource.snapshots_to_keep = -1;
SET eventsource.snapshots_to_keep = 'many';
SET eventsource.unknown_setting = 1;

-- Errors: each one stores nothing.
CREATE TEMP TABLE snapshots_before AS SELECT * FROM eventsource.snapshots;
-- The version must exist in the stream.
SELECT eventsource.save_snapshot('account-1', 21, '{}');
SELECT eventsource.save_snapshot('account-1', 0, '{}');
SELECT eventsource.save_snapshot('account-1', -1, '{}');
SELECT eventsource.save_snapshot('account-404', 1, '{}');
-- Arguments.
SELECT eventsource.save_snapshot(NULL, 1, '{}');
SELECT eventsource.save_snapshot('', 1, '{}');
SELECT eventsource.save_snapshot(repeat('s', 501), 1, '{}');
SELECT eventsource.save_snapshot('-1', 1, '{}');
SELECT eventsource.save_snapshot('account-1', NULL, '{}');
SELECT eventsource.save_snapshot('account-1', 1, NULL);
SELECT eventsource.save_snapshot('account-1', 1, '{}', NULL);
SELECT eventsource.save_snapshot('account-1', 1, '{}', 0);
SELECT eventsource.save_snapshot('account-1', 1, '{not json');
SELECT * FROM eventsource.load_snapshot(NULL);
SELECT * FROM eventsource.load_snapshot('');
SELECT * FROM eventsource.load_snapshot('account-1', -1);
SELECT * FROM eventsource.load_snapshot('account-1', schema_version => 0);
SELECT * FROM eventsource.load_stream(NULL);
SELECT * FROM eventsource.load_stream(repeat('s', 501));
SELECT * FROM eventsource.load_stream('account-1', -5);
SELECT * FROM eventsource.load_stream('account-1', schema_version => -2);
SELECT eventsource.delete_snapshots('');
SELECT eventsource.delete_snapshots(below_schema_version => 0);
SELECT count(*) AS changed_rows
  FROM ((SELECT * FROM eventsource.snapshots EXCEPT SELECT * FROM snapshots_before)
        UNION ALL (SELECT * FROM snapshots_before EXCEPT SELECT * FROM eventsource.snapshots)) AS difference;

-- The caller's own uncommitted append is a version it may snapshot.
BEGIN;
SELECT eventsource.append('account-2', 'Deposited', '{"amount": 1}');
SELECT eventsource.save_snapshot('account-2', 2, '1');
COMMIT;
SELECT stream_version, state FROM eventsource.load_snapshot('account-2');

-- delete_snapshots: below a schema version, of one stream, or all; returns how many.
SELECT eventsource.save_snapshot('account-2', 2, '{"v": 2}', schema_version => 2);
SELECT stream_id, stream_version, schema_version FROM eventsource.snapshots ORDER BY 1, 2, 3;
SELECT eventsource.delete_snapshots('account-1', below_schema_version => 2) AS deleted;
SELECT stream_id, stream_version, schema_version FROM eventsource.snapshots ORDER BY 1, 2, 3;
SELECT eventsource.delete_snapshots(below_schema_version => 2) AS deleted;
SELECT eventsource.delete_snapshots('account-404') AS deleted;
SELECT eventsource.delete_snapshots('account-1') AS deleted;
SELECT stream_id, stream_version, schema_version FROM eventsource.snapshots ORDER BY 1, 2, 3;
SELECT eventsource.delete_snapshots() AS deleted;
SELECT count(*) AS left_over FROM eventsource.snapshots;
-- The events are untouched by all of it.
SELECT stream_id, count(*) FROM eventsource.events GROUP BY stream_id ORDER BY stream_id;

-- Deleted, tombstoned and truncated versions are gone for snapshots as for stream reads: saving one
-- is SE004, the error of a version that does not exist, and the loads never use a snapshot of one.
SELECT eventsource.append_events('person-1', '[{"type": "Registered", "data": {"name": "Ann"}}, {"type": "Moved", "data": {"city": "Oslo"}}]');
SELECT eventsource.tombstone_stream('person-1');
SELECT eventsource.save_snapshot('person-1', 2, '{"name": "Ann", "city": "Oslo"}');
SELECT eventsource.save_snapshot('person-1', 1, '{"name": "Ann"}');
SELECT count(*) AS stored FROM eventsource.snapshots WHERE stream_id = 'person-1';
-- Soft delete, then the stream written again: its deleted versions cannot be snapshotted, its new ones can.
SELECT eventsource.append_events('person-2', '[{"type": "Registered", "data": {"name": "Ann"}}, {"type": "Moved", "data": {"city": "Oslo"}}]');
SELECT eventsource.delete_stream('person-2');
SELECT eventsource.save_snapshot('person-2', 2, '{"name": "Ann", "city": "Oslo"}');
SELECT eventsource.append('person-2', 'Registered', '{"name": "Bo"}');
SELECT eventsource.save_snapshot('person-2', 2, '{"name": "Ann", "city": "Oslo"}');
SELECT eventsource.save_snapshot('person-2', 3, '{"name": "Bo"}');
SELECT kind, stream_version, data FROM eventsource.load_stream('person-2');
-- Truncation: a snapshot of a version it hides is neither saved nor loaded, not even one stored
-- before it.
SELECT eventsource.append_events('person-3', '[{"type": "A", "data": {}}, {"type": "B", "data": {}}, {"type": "C", "data": {}}]');
SELECT eventsource.save_snapshot('person-3', 2, '{"v": 2}');
SELECT eventsource.set_stream_metadata('person-3', '{"truncate_before": 3}');
SELECT eventsource.save_snapshot('person-3', 2, '{"v": 2}');
SELECT kind, stream_version, data FROM eventsource.load_stream('person-3');
SELECT count(*) AS hidden FROM eventsource.load_snapshot('person-3');
SELECT eventsource.save_snapshot('person-3', 3, '{"v": 3}');
SELECT kind, stream_version, data FROM eventsource.load_stream('person-3');
-- max_count moves the first visible version with every append.
SELECT eventsource.set_stream_metadata('person-3', '{"max_count": 1}');
SELECT eventsource.append('person-3', 'D', '{}');
SELECT kind, stream_version, data FROM eventsource.load_stream('person-3');
SELECT eventsource.save_snapshot('person-3', 3, '{"v": 3}');
-- A snapshot of deleted data that a delete could not see (a save committed after a repeatable read
-- delete began, see snapshot_after_delete.spec) is never loaded either, and scavenge removes it
-- with the other snapshots of hidden versions.
INSERT INTO eventsource.snapshots (stream_id, stream_version, schema_version, state)
VALUES ('person-1', 2, 1, '{"name": "Ann", "city": "Oslo"}'), ('person-2', 2, 1, '{"name": "Ann", "city": "Oslo"}');
SELECT count(*) AS tombstoned FROM eventsource.load_stream('person-1');
SELECT count(*) AS tombstoned FROM eventsource.load_snapshot('person-1');
SELECT kind, stream_version, data FROM eventsource.load_stream('person-2', max_version => 2);
SELECT kind, stream_version, data FROM eventsource.load_stream('person-2');
SELECT eventsource.scavenge() AS events_scavenged;
SELECT stream_id, stream_version, state FROM eventsource.snapshots ORDER BY 1, 2;
