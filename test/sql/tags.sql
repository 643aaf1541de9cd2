-- tags.sql: events carry tags: given to append, append_events and append_to_streams, stored (none
-- as NULL), returned by every read, poll, and the event handlers get; every error of their input.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default

SELECT eventsource.append('course-c1', 'CourseDefined', '{"capacity": 10}', tags => '{course:c1}');
SELECT eventsource.append('student-s7', 'StudentRegistered', '{}', tags => ARRAY['student:s7']);
SELECT eventsource.append('student-s7', 'Noted', '{}');
SELECT eventsource.append('student-s7', 'Noted', '{}', tags => '{}');
SELECT * FROM eventsource.append_events('course-c1', '[
  {"type": "StudentSubscribed", "data": {}, "tags": ["course:c1", "student:s7"]},
  {"type": "Noted", "data": {}},
  {"type": "Noted", "data": {}, "tags": null},
  {"type": "Noted", "data": {}, "tags": []},
  {"type": "StudentSubscribed", "data": {}, "tags": ["course:c1", "student:s8", "student:s8"]}]');
SELECT * FROM eventsource.append_to_streams('[
  {"stream_id": "course-c2", "events": [{"type": "CourseDefined", "data": {}, "tags": ["course:c2"]}]},
  {"stream_id": "student-s7", "expected_version": 3,
   "events": [{"type": "StudentSubscribed", "data": {}, "tags": ["course:c2", "student:s7"]}, {"type": "Noted", "data": {}}]}]');

-- Stored as given; no tags (NULL, an empty array) is NULL.
SELECT global_position, stream_id, event_type, tags FROM eventsource.events ORDER BY global_position;
-- Every read returns them, after the checkpoint.
SELECT stream_version, tags FROM eventsource.read_stream('course-c1');
SELECT stream_version, tags FROM eventsource.read_stream('course-c1', direction => 'backward', max_count => 2);
SELECT global_position, tags FROM eventsource.read_all(event_types => ARRAY['StudentSubscribed']);
SELECT global_position, tags FROM eventsource.read_category('student');
SELECT (e).tags, (e).checkpoint IS NOT NULL AS has_checkpoint
  FROM (SELECT e FROM eventsource.read_all() e LIMIT 1) AS first;
SELECT eventsource.create_subscription('enrolments', event_types => ARRAY['StudentSubscribed']);
SELECT global_position, tags, lease IS NOT NULL AS leased FROM eventsource.poll('enrolments');
-- The tags index holds the tagged events only.
SELECT indexdef FROM pg_indexes WHERE indexname = 'events_tags_idx';

-- Handlers get them: an inline projection as it is appended, and a rebuild from the log.
CREATE TABLE seen_tags (global_position bigint, tags text[]);
CREATE FUNCTION public.see_tags(e eventsource.event) RETURNS void LANGUAGE sql
  AS 'INSERT INTO public.seen_tags VALUES (e.global_position, e.tags)';
SELECT eventsource.create_projection('tags-seen', 'public.see_tags(eventsource.event)', mode => 'inline',
                                     event_types => ARRAY['StudentSubscribed']);
SELECT eventsource.append('course-c3', 'StudentSubscribed', '{}', tags => '{course:c3,student:s9}');
SELECT * FROM seen_tags ORDER BY global_position;
DELETE FROM seen_tags;
SELECT eventsource.rebuild_projection('tags-seen');
SELECT * FROM seen_tags ORDER BY global_position;
SELECT eventsource.drop_projection('tags-seen');
DROP FUNCTION public.see_tags(eventsource.event);
DROP TABLE seen_tags;

-- Bad tags: a clear error, nothing written.
SELECT eventsource.append('course-c9', 'X', '{}', tags => ARRAY[NULL]::text[]);
SELECT eventsource.append('course-c9', 'X', '{}', tags => ARRAY['']);
SELECT eventsource.append('course-c9', 'X', '{}', tags => ARRAY[repeat('t', 256)]);
SELECT eventsource.append('course-c9', 'X', '{}', tags => ARRAY[repeat('t', 255)]) AS longest_tag;
SELECT eventsource.append('course-c9', 'X', '{}', tags => (SELECT array_agg('t' || i) FROM generate_series(1, 101) AS i));
SELECT eventsource.append('course-c9', 'X', '{}', tags => (SELECT array_agg('t' || i) FROM generate_series(1, 100) AS i)) AS most_tags;
SELECT eventsource.append('course-c9', 'X', '{}', tags => '{{a,b},{c,d}}');
SELECT * FROM eventsource.append_events('course-c9', '[{"type": "X", "data": {}, "tags": "course:c9"}]');
SELECT * FROM eventsource.append_events('course-c9', '[{"type": "X", "data": {}, "tags": ["a", 1]}]');
SELECT * FROM eventsource.append_events('course-c9', '[{"type": "X", "data": {}, "tags": ["a", null]}]');
SELECT * FROM eventsource.append_events('course-c9', '[{"type": "X", "data": {}, "tags": {"a": 1}}]');
SELECT * FROM eventsource.append_events('course-c9', '[{"type": "X", "data": {}}, {"type": "X", "data": {}, "tags": [""]}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "course-c9", "events": [{"type": "X", "data": {}, "tags": [["a"]]}]}]');
SELECT stream_version, array_length(tags, 1) FROM eventsource.read_stream('course-c9');

-- read_by_query: the events that match any item of a query (its types, all its tags), in log order.
SELECT global_position, stream_id, event_type, tags
  FROM eventsource.read_by_query('{"items": [{"tags": ["student:s7"]}]}');
SELECT global_position, event_type, tags
  FROM eventsource.read_by_query('{"items": [{"types": ["StudentSubscribed"], "tags": ["course:c1"]}]}');
SELECT global_position, event_type, tags
  FROM eventsource.read_by_query('{"items": [{"types": ["CourseDefined"]}, {"tags": ["course:c1", "student:s8"]}]}');
-- an event two items match comes once; max_count and after apply to the union
SELECT global_position, event_type
  FROM eventsource.read_by_query('{"items": [{"tags": ["course:c1"]}, {"types": ["StudentSubscribed"]}]}');
SELECT global_position, event_type
  FROM eventsource.read_by_query('{"items": [{"tags": ["course:c1"]}, {"types": ["StudentSubscribed"]}]}', max_count => 2);
SELECT global_position, event_type
  FROM eventsource.read_by_query('{"items": [{"tags": ["course:c1"]}, {"types": ["StudentSubscribed"]}]}',
                                 (SELECT checkpoint FROM eventsource.read_by_query('{"items": [{"tags": ["course:c1"]}]}', max_count => 2) ORDER BY checkpoint DESC LIMIT 1));
-- an item without types or tags matches every event
SELECT count(*) FROM eventsource.read_by_query('{"items": [{}]}');
SELECT count(*) FROM eventsource.read_by_query('{"items": [{"tags": ["nobody:x"]}]}');
-- A tagged item reads the tags index, and only the tag's events.
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT e.* FROM eventsource.events e
  WHERE e.tags IS NOT NULL AND e.tags @> '{course:c1}' OFFSET 0;
RESET enable_seqscan;
-- Bad queries: a clear error.
SELECT * FROM eventsource.read_by_query(NULL);
SELECT * FROM eventsource.read_by_query('[]');
SELECT * FROM eventsource.read_by_query('{}');
SELECT * FROM eventsource.read_by_query('{"items": []}');
SELECT * FROM eventsource.read_by_query('{"items": [{"tags": ["a"]}], "after": 1}');
SELECT * FROM eventsource.read_by_query('{"items": [1]}');
SELECT * FROM eventsource.read_by_query('{"items": [{"tag": ["a"]}]}');
SELECT * FROM eventsource.read_by_query('{"items": [{"tags": []}]}');
SELECT * FROM eventsource.read_by_query('{"items": [{"tags": "a"}]}');
SELECT * FROM eventsource.read_by_query('{"items": [{"tags": [""]}]}');
SELECT * FROM eventsource.read_by_query('{"items": [{"types": ["A"]}, {"types": [7]}]}');
SELECT * FROM eventsource.read_by_query('{"items": [{"types": [""]}]}');
SELECT * FROM eventsource.read_by_query((SELECT jsonb_build_object('items', jsonb_agg(jsonb_build_object('tags', jsonb_build_array('t' || i)))) FROM generate_series(1, 101) AS i));
SELECT * FROM eventsource.read_by_query('{"items": [{}]}', max_count => 0);
SELECT * FROM eventsource.read_by_query(jsonb_build_object('items', jsonb_build_array(jsonb_build_object('tags',
  (SELECT jsonb_agg('t' || i) FROM generate_series(1, 101) AS i)))));
SELECT * FROM eventsource.read_by_query(jsonb_build_object('items', jsonb_build_array(jsonb_build_object('types',
  (SELECT jsonb_agg('T' || i) FROM generate_series(1, 101) AS i)))));
SELECT count(*) FROM eventsource.read_by_query(jsonb_build_object('items', jsonb_build_array(jsonb_build_object('tags',
  (SELECT jsonb_agg('t' || i) FROM generate_series(1, 100) AS i)))));
SELECT * FROM eventsource.read_by_query(jsonb_build_object('items', jsonb_build_array(jsonb_build_object('types', jsonb_build_array(repeat('T', 256))))));
