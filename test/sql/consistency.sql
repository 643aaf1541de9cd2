-- consistency.sql: conditional appends (append_to_streams with a condition): the decision read with
-- read_by_query, the append conditioned on its checkpoint; what fails the condition and what does
-- not; idempotent retries; the locks a call takes; every error of a condition.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default
-- A condition's failure, its detail with the transaction ids of checkpoints (which depend on the
-- log epoch) left out.
CREATE FUNCTION pg_temp.failure(appends jsonb, condition jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  detail text;
BEGIN
  PERFORM eventsource.append_to_streams(appends, condition);
  RETURN 'appended';
EXCEPTION WHEN SQLSTATE 'SE006' THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RETURN SQLSTATE || ' ' || SQLERRM || ': ' || regexp_replace(detail, '\(\d+,', '(x,', 'g');
END
$$;

-- A course with a capacity of 2, and a student's subscription decided on what was read.
SELECT eventsource.append('course-c1', 'CourseDefined', '{"capacity": 2}', tags => '{course:c1}');
CREATE TEMP TABLE decision AS
SELECT count(*) FILTER (WHERE event_type = 'StudentSubscribed') AS subscribed,
       max((data->>'capacity')::int) AS capacity,
       (SELECT checkpoint::text FROM eventsource.read_by_query('{"items": [{"tags": ["course:c1"]}]}')
         ORDER BY checkpoint DESC LIMIT 1) AS after
  FROM eventsource.read_by_query('{"items": [{"tags": ["course:c1"]}]}');
SELECT subscribed, capacity FROM decision;
SELECT stream_id, stream_version FROM eventsource.append_to_streams(
  '[{"stream_id": "student-s1", "events": [{"type": "StudentSubscribed", "data": {}, "tags": ["course:c1", "student:s1"]}]}]',
  jsonb_build_object('fail_if_events_match', '{"items": [{"tags": ["course:c1"]}]}'::jsonb, 'after', (SELECT after FROM decision)));
-- The same decision again, now stale: the subscription just made matches the condition.
SELECT pg_temp.failure(
  '[{"stream_id": "student-s2", "events": [{"type": "StudentSubscribed", "data": {}, "tags": ["course:c1", "student:s2"]}]}]',
  jsonb_build_object('fail_if_events_match', '{"items": [{"tags": ["course:c1"]}]}'::jsonb, 'after', (SELECT after FROM decision)));
-- Caught by its SQLSTATE, as a client retries.
DO $$
BEGIN
  PERFORM eventsource.append_to_streams(
    '[{"stream_id": "student-s2", "events": [{"type": "StudentSubscribed", "data": {}, "tags": ["course:c1", "student:s2"]}]}]',
    jsonb_build_object('fail_if_events_match', '{"items": [{"tags": ["course:c1"]}]}'::jsonb, 'after', (SELECT after FROM decision)));
EXCEPTION WHEN SQLSTATE 'SE006' THEN
  RAISE NOTICE 'caught %', SQLERRM;
END
$$;
SELECT count(*) AS subscriptions FROM eventsource.events WHERE event_type = 'StudentSubscribed';

-- Events that do not match do not fail it: another course, another type of the course's tag
-- (the item names its types), an untagged event.
SELECT checkpoint::text AS after FROM eventsource.read_by_query('{"items": [{"tags": ["course:c1"]}]}')
 ORDER BY checkpoint DESC LIMIT 1 \gset
SELECT eventsource.append('course-c2', 'CourseDefined', '{"capacity": 5}', tags => '{course:c2}');
SELECT eventsource.append('course-c1', 'CourseNoted', '{}', tags => '{course:c1}');
SELECT eventsource.append('course-c1', 'StudentSubscribed', '{}');
SELECT stream_id, stream_version FROM eventsource.append_to_streams(
  '[{"stream_id": "student-s2", "events": [{"type": "StudentSubscribed", "data": {}, "tags": ["course:c1", "student:s2"]}]}]',
  jsonb_build_object('fail_if_events_match', '{"items": [{"types": ["CourseDefined", "StudentSubscribed"], "tags": ["course:c1"]}]}'::jsonb,
                     'after', :'after'));
-- An item of tags needs all of them; of types only, any event of those types.
SELECT stream_id FROM eventsource.append_to_streams('[{"stream_id": "x-1", "events": [{"type": "X", "data": {}}]}]',
  '{"fail_if_events_match": {"items": [{"tags": ["course:c1", "student:s9"]}]}}');
SELECT pg_temp.failure('[{"stream_id": "x-1", "events": [{"type": "X", "data": {}}]}]',
  '{"fail_if_events_match": {"items": [{"tags": ["course:c1", "student:s1"]}]}}');
SELECT pg_temp.failure('[{"stream_id": "x-1", "events": [{"type": "X", "data": {}}]}]',
  '{"fail_if_events_match": {"items": [{"types": ["CourseNoted"]}]}}');
SELECT stream_id FROM eventsource.append_to_streams('[{"stream_id": "x-1", "events": [{"type": "X", "data": {}}]}]',
  '{"fail_if_events_match": {"items": [{"types": ["CourseRenamed"]}, {"tags": ["course:c7"]}]}}');

-- No "after": fails if any matching event exists (a unique username, say).
SELECT stream_id FROM eventsource.append_to_streams(
  '[{"stream_id": "user-u1", "expected_version": 0, "events": [{"type": "UserRegistered", "data": {}, "tags": ["username:ann"]}]}]',
  '{"fail_if_events_match": {"items": [{"types": ["UserRegistered"], "tags": ["username:ann"]}]}}');
SELECT pg_temp.failure(
  '[{"stream_id": "user-u2", "expected_version": 0, "events": [{"type": "UserRegistered", "data": {}, "tags": ["username:ann"]}]}]',
  '{"fail_if_events_match": {"items": [{"types": ["UserRegistered"], "tags": ["username:ann"]}]}, "after": null}');

-- The retry of a call that committed (its events have ids) returns its result, though its own
-- events now match its condition; a call with ids not stored yet is checked.
SELECT * FROM eventsource.append_to_streams(
  '[{"stream_id": "user-u3", "events": [{"type": "UserRegistered", "data": {}, "tags": ["username:bob"], "id": "00000000-0000-7000-8000-0000000000b1"}]}]',
  '{"fail_if_events_match": {"items": [{"tags": ["username:bob"]}]}}');
SELECT * FROM eventsource.append_to_streams(
  '[{"stream_id": "user-u3", "events": [{"type": "UserRegistered", "data": {}, "tags": ["username:bob"], "id": "00000000-0000-7000-8000-0000000000b1"}]}]',
  '{"fail_if_events_match": {"items": [{"tags": ["username:bob"]}]}}');
SELECT pg_temp.failure(
  '[{"stream_id": "user-u4", "events": [{"type": "UserRegistered", "data": {}, "tags": ["username:bob"], "id": "00000000-0000-7000-8000-0000000000b2"}]}]',
  '{"fail_if_events_match": {"items": [{"tags": ["username:bob"]}]}}');

-- A condition with check-only and written entries together, and a version conflict first.
SELECT * FROM eventsource.append_to_streams(
  '[{"stream_id": "user-u1", "expected_version": 7}, {"stream_id": "x-2", "events": [{"type": "X", "data": {}}]}]',
  '{"fail_if_events_match": {"items": [{"tags": ["username:ann"]}]}}');

-- The locks a call holds until it ends: appends hold their events' keys in RowExclusiveLock, a
-- condition its keys in ShareLock and the lock on every key in ShareLock, a key of both in
-- ShareRowExclusiveLock; a transaction's appends beyond half of max_locks_per_transaction keys
-- hold the lock on every key in RowExclusiveLock instead.
CREATE TEMP VIEW key_locks AS
SELECT CASE l.objsubid WHEN 17739 THEN 'key' ELSE 'every key' END AS lock, l.mode, count(*)
  FROM pg_locks l
 WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.objsubid IN (17739, 17729)
 GROUP BY 1, 2 ORDER BY 1, 2;
BEGIN;
SELECT eventsource.append('course-c5', 'CourseDefined', '{}', tags => '{course:c5,term:t1}');
SELECT * FROM key_locks;
ROLLBACK;
BEGIN;
SELECT count(*) FROM eventsource.append_to_streams(
  '[{"stream_id": "student-s5", "events": [{"type": "StudentSubscribed", "data": {}, "tags": ["course:c5"]}]}]',
  '{"fail_if_events_match": {"items": [{"tags": ["course:c5"]}, {"types": ["CourseArchived"]}]}}');
SELECT * FROM key_locks;
ROLLBACK;
BEGIN;
SELECT count(*) FROM eventsource.append_events('bulk-1',
  (SELECT jsonb_agg(jsonb_build_object('type', 'Made', 'data', '{}'::jsonb, 'tags', jsonb_build_array('item:' || i)))
     FROM generate_series(1, 40) AS i));
SELECT * FROM key_locks;
SELECT pg_temp.failure(
  '[{"stream_id": "x-3", "events": [{"type": "X", "data": {}}]}]',
  '{"fail_if_events_match": {"items": [{"tags": ["item:1"]}]}}');
ROLLBACK;

-- Bad conditions: a clear error, nothing written.
SELECT count(*) AS events_before FROM eventsource.events \gset
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "x-9", "events": [{"type": "X", "data": {}}]}]', '[]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "x-9", "events": [{"type": "X", "data": {}}]}]', '{}');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "x-9", "events": [{"type": "X", "data": {}}]}]', '{"after": "(1,1)"}');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "x-9", "events": [{"type": "X", "data": {}}]}]', '{"fail_if_events_match": []}');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "x-9", "events": [{"type": "X", "data": {}}]}]', '{"fail_if_events_match": {"items": [{}]}}');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "x-9", "events": [{"type": "X", "data": {}}]}]', '{"fail_if_events_match": {"items": [{"tags": []}]}}');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "x-9", "events": [{"type": "X", "data": {}}]}]', '{"fail_if_events_match": {"items": [{"tags": ["a"]}]}, "after": 5}');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "x-9", "events": [{"type": "X", "data": {}}]}]', '{"fail_if_events_match": {"items": [{"tags": ["a"]}]}, "after": "5"}');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "x-9", "events": [{"type": "X", "data": {}}]}]', '{"fail_if_events_match": {"items": [{"tags": ["a"]}]}, "before": "(1,1)"}');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "x-9", "events": [{"type": "X", "data": {}}]}]',
  jsonb_build_object('fail_if_events_match', jsonb_build_object('items',
    (SELECT jsonb_agg(jsonb_build_object('types', (SELECT jsonb_agg('T' || t) FROM generate_series(1, 100) AS t)))
       FROM generate_series(1, 2)))));
SELECT count(*) - :events_before AS written FROM eventsource.events;
