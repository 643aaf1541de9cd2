-- query_filters.sql: subscriptions and projections of a query (event types and tags, as
-- read_by_query reads them): what poll, ack, inline projections, rebuilds, events_behind and the
-- status views take, event_matches_query, and every error of a query argument.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default

-- event_matches_query: any item; in an item, one of its types and all of its tags.
SELECT event_type, tags, query, eventsource.event_matches_query(event_type, tags, query) AS matches
  FROM (VALUES ('Enrolled', '{course:c1,student:s1}'::text[], '{"items": [{"types": ["Enrolled"], "tags": ["course:c1"]}]}'::jsonb),
               ('Left',     '{course:c1,student:s1}',         '{"items": [{"types": ["Enrolled"], "tags": ["course:c1"]}]}'),
               ('Enrolled', '{course:c2}',                    '{"items": [{"types": ["Enrolled"], "tags": ["course:c1"]}]}'),
               ('Enrolled', '{course:c1}',                    '{"items": [{"tags": ["course:c1", "student:s1"]}]}'),
               ('Enrolled', '{student:s1,course:c1}',         '{"items": [{"tags": ["course:c1", "student:s1"]}]}'),
               ('Enrolled', NULL,                             '{"items": [{"tags": ["course:c1"]}]}'),
               ('Enrolled', NULL,                             '{"items": [{"types": ["Left", "Enrolled"]}]}'),
               ('Enrolled', '{course:c1}',                    '{"items": [{}]}'),
               ('Noted',    '{course:c1}',                    '{"items": [{"types": ["Enrolled"]}, {"tags": ["course:c1"]}]}'),
               ('Noted',    '{course:c1}',                    '{"items": [{"types": ["Enrolled"]}, {"tags": ["Course:c1"]}]}'),
               (NULL,       '{course:c1}',                    '{"items": [{}]}'),
               ('Noted',    '{course:c1}',                    NULL)) AS cases (event_type, tags, query);
-- As read_by_query and the tags index read the same events.
SELECT eventsource.event_matches_query(t, g, '{"items": [{"types": ["A"], "tags": ["x"]}, {"tags": ["y", "z"]}]}')
       = (((t = 'A' AND g @> '{x}') OR g @> '{y,z}') IS TRUE) AS agrees, count(*)
  FROM unnest(ARRAY['A', 'B']) AS t,
       (VALUES (NULL::text[]), ('{}'), ('{x}'), ('{y}'), ('{x,y}'), ('{y,z}'), ('{z,y,x}'), ('{x,NULL}')) AS tags (g)
 GROUP BY 1;
-- A query is checked as read_by_query checks it.
SELECT eventsource.event_matches_query('A', NULL, '[]');
SELECT eventsource.event_matches_query('A', NULL, '{"items": []}');
SELECT eventsource.event_matches_query('A', NULL, '{"items": [{"types": []}]}');
SELECT eventsource.event_matches_query('A', NULL, '{"items": [{"tag": ["x"]}]}');

-- The matcher keeps one parsed query at a time: 200,000 calls alternating between two queries
-- leave the statement's memory as it was (it grew by some 390 bytes a call, 20 GB with large
-- queries).
SELECT (SELECT count(*) FILTER (WHERE eventsource.event_matches_query('A', '{a}',
                                  CASE WHEN g % 2 = 0 THEN '{"items": [{"tags": ["a"]}]}'::jsonb
                                       ELSE '{"items": [{"tags": ["b"]}]}'::jsonb END))
          FROM generate_series(1, 200000) AS g) AS matched,
       (SELECT sum(total_bytes) FROM pg_backend_memory_contexts) < 30000000 AS memory_kept;

-- A PL/pgSQL variable holding another query at each evaluation gets the answer of each (the
-- expression's state, and the parsed query with it, lasts across the loop: each was answered
-- for the first query).
DO $$
DECLARE
  query jsonb;
BEGIN
  FOR i IN 1..3 LOOP
    query := jsonb_build_object('items', jsonb_build_array(jsonb_build_object('types', jsonb_build_array('T' || i))));
    RAISE NOTICE 'query of T%: %', i, eventsource.event_matches_query('T2', NULL, query);
  END LOOP;
END
$$;

-- The log: courses and students, tagged.
SELECT eventsource.append('course-c1', 'CourseDefined', '{"capacity": 2}', tags => '{course:c1}');
SELECT eventsource.append('course-c2', 'CourseDefined', '{"capacity": 5}', tags => '{course:c2}');

-- A subscription of a query gets the events that match it, and only them.
SELECT eventsource.create_subscription('course-c1-feed',
                                       query => '{"items": [{"types": ["StudentEnrolled", "StudentLeft"], "tags": ["course:c1"]}]}');
SELECT eventsource.create_subscription('student-feed', category => 'student', consumer_group_size => 2,
                                       query => '{"items": [{"tags": ["student:s1"]}, {"tags": ["student:s2"]}]}');
SELECT name, category, event_types, consumer_group_size, query FROM eventsource.subscriptions ORDER BY name;
SELECT * FROM eventsource.append_to_streams('[
  {"stream_id": "student-s1", "events": [{"type": "StudentEnrolled", "data": {}, "tags": ["course:c1", "student:s1"]},
                                         {"type": "Noted", "data": {}, "tags": ["course:c1", "student:s1"]}]},
  {"stream_id": "student-s2", "events": [{"type": "StudentEnrolled", "data": {}, "tags": ["course:c2", "student:s2"]}]},
  {"stream_id": "student-s3", "events": [{"type": "StudentEnrolled", "data": {}, "tags": ["course:c1", "student:s3"]}]}]');
SELECT eventsource.append('student-s1', 'StudentLeft', '{}', tags => '{course:c1,student:s1}');
SELECT eventsource.append('student-s4', 'StudentEnrolled', '{}');
SELECT name, consumer_group_member, events_behind FROM eventsource.subscription_status ORDER BY 1, 2;
SELECT stream_id, stream_version, event_type, tags FROM eventsource.poll('course-c1-feed', 10, lease_seconds => 1);
SELECT stream_id, event_type, tags, eventsource.consumer_group_member(stream_id, 2) AS member
  FROM eventsource.poll('student-feed', 10, 0)
UNION ALL
SELECT stream_id, event_type, tags, eventsource.consumer_group_member(stream_id, 2)
  FROM eventsource.poll('student-feed', 10, 1)
 ORDER BY stream_id, event_type;

-- ack takes the checkpoint of an event the subscription delivers, and only of one.
SELECT pg_sleep(1.1);
CREATE TEMP TABLE again AS SELECT * FROM eventsource.poll('course-c1-feed', 2);
SELECT stream_id, event_type FROM again;
DO $$
BEGIN
  PERFORM eventsource.ack('course-c1-feed', e.checkpoint, lease => (SELECT DISTINCT lease FROM again))
     FROM eventsource.read_all() e WHERE e.event_type = 'Noted';
EXCEPTION WHEN invalid_parameter_value THEN
  RAISE NOTICE '% %', SQLSTATE, regexp_replace(SQLERRM, '\(\d+,', '(x,');
END
$$;
SELECT eventsource.ack('course-c1-feed', a.checkpoint, lease => a.lease)
  FROM (SELECT * FROM again ORDER BY checkpoint DESC LIMIT 1) AS a;
SELECT stream_id, event_type FROM eventsource.poll('course-c1-feed', 10);
SELECT name, events_behind, query FROM eventsource.subscription_status WHERE name = 'course-c1-feed';

-- events_behind counts what the filter takes; its query is checked.
SELECT events_behind FROM eventsource.events_behind(NULL, NULL, NULL, 1, 0, '{"items": [{"tags": ["course:c1"]}]}');
SELECT events_behind FROM eventsource.events_behind(NULL, 'student', ARRAY['StudentEnrolled'], 1, 0, '{"items": [{"tags": ["course:c1"]}]}');
SELECT events_behind FROM eventsource.events_behind(NULL, NULL, NULL, 2, 1, '{"items": [{"tags": ["course:c1"]}]}');
SELECT events_behind FROM eventsource.events_behind(NULL, NULL, NULL, 1, 0, '{"items": [{"tags": []}]}');

-- An inline projection of a query: called for the matching events only, and a rebuild replays them.
CREATE SCHEMA enrolment;
CREATE TABLE enrolment.course_c1 (student text PRIMARY KEY, enrolled boolean NOT NULL);
CREATE FUNCTION enrolment.project(e eventsource.event) RETURNS void LANGUAGE sql AS $$
    INSERT INTO enrolment.course_c1 VALUES (e.stream_id, e.event_type = 'StudentEnrolled')
    ON CONFLICT (student) DO UPDATE SET enrolled = excluded.enrolled
$$;
CREATE FUNCTION enrolment.reset() RETURNS void LANGUAGE sql AS 'TRUNCATE enrolment.course_c1';
SELECT eventsource.create_projection('course-c1-roster', 'enrolment.project(eventsource.event)',
                                     reset_handler => 'enrolment.reset()',
                                     query => '{"items": [{"types": ["StudentEnrolled", "StudentLeft"], "tags": ["course:c1"]}]}');
SELECT eventsource.rebuild_projection('course-c1-roster') AS replayed;
SELECT * FROM enrolment.course_c1 ORDER BY student;
SELECT * FROM eventsource.append_events('student-s5', '[
  {"type": "StudentEnrolled", "data": {}, "tags": ["student:s5", "course:c1"]},
  {"type": "StudentEnrolled", "data": {}, "tags": ["student:s5", "course:c2"]},
  {"type": "Noted", "data": {}, "tags": ["course:c1"]}]');
SELECT eventsource.append('student-s3', 'StudentLeft', '{}', tags => '{course:c1,student:s3}');
SELECT eventsource.append('student-s6', 'StudentLeft', '{}', tags => '{course:c9,student:s6}');
SELECT * FROM enrolment.course_c1 ORDER BY student;
SELECT name, mode, events_behind, query FROM eventsource.projection_status;
SELECT eventsource.rebuild_projection('course-c1-roster') AS replayed;
SELECT * FROM enrolment.course_c1 ORDER BY student;
-- An async projection of a query counts its lag through it (the worker is not needed to count).
SELECT eventsource.create_projection('course-c2-roster', 'enrolment.project(eventsource.event)', mode => 'async',
                                     query => '{"items": [{"tags": ["course:c2"]}]}');
SELECT name, mode, events_behind, query FROM eventsource.projection_status ORDER BY name;
SELECT eventsource.drop_projection('course-c2-roster');

-- Errors of the query argument: each one creates nothing.
SELECT eventsource.create_subscription('bad', query => '"course:c1"');
SELECT eventsource.create_subscription('bad', query => '{"items": [{"tags": ["course:c1"]}], "after": null}');
SELECT eventsource.create_subscription('bad', query => '{"items": [{"tags": "course:c1"}]}');
SELECT eventsource.create_subscription('bad', query => '{"items": [{"tags": [""]}]}');
SELECT eventsource.create_subscription('bad', query => jsonb_build_object('items', jsonb_build_array(jsonb_build_object('tags', (SELECT jsonb_agg('t' || n) FROM generate_series(1, 101) AS n)))));
SELECT eventsource.create_subscription('bad', query => jsonb_build_object('items', (SELECT jsonb_agg(jsonb_build_object('tags', jsonb_build_array('t' || n))) FROM generate_series(1, 101) AS n)));
SELECT eventsource.create_projection('bad', 'enrolment.project(eventsource.event)', query => '{"items": [{"types": [1]}]}');
SELECT eventsource.create_projection('bad', 'enrolment.project(eventsource.event)', query => '{"items": [{"types": ["A"], "other": 1}]}');
SELECT count(*) AS created FROM eventsource.subscriptions WHERE name = 'bad';
SELECT count(*) AS created FROM eventsource.projections WHERE name = 'bad';

-- Scavenge removes what deletes hide once no subscription or projection is owed it: an event that
-- a subscription's query does not match is not owed to it.
SELECT eventsource.create_subscription('never', query => '{"items": [{"tags": ["never"]}]}');
SELECT eventsource.append('draft-' || i, 'Drafted', '{}') FROM generate_series(1, 3) AS i;
SELECT eventsource.delete_stream('draft-' || i) FROM generate_series(1, 3) AS i;
SELECT eventsource.create_subscription('drafts', query => '{"items": [{"types": ["Drafted"]}]}');
SELECT eventsource.scavenge() AS scavenged_while_drafts_owed;
SELECT eventsource.drop_subscription('drafts');
SELECT eventsource.scavenge() AS scavenged;
SELECT eventsource.drop_subscription('never');

-- A NULL query is no filter, as before 0.8.0.
SELECT eventsource.create_subscription('everything', query => NULL);
SELECT count(*) AS delivered FROM eventsource.poll('everything', 1000);
SELECT count(*) AS in_the_log FROM eventsource.events;

SELECT eventsource.drop_projection('course-c1-roster');
SELECT eventsource.drop_subscription(name) FROM eventsource.subscriptions ORDER BY name;
DROP SCHEMA enrolment CASCADE;
