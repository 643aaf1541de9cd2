-- append_errors.sql: bad input gets a clear error and changes nothing.
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default
SELECT eventsource.append('account-1', 'AccountOpened', '{}');
SELECT count(*) AS events_before FROM eventsource.events \gset

-- stream_id
SELECT eventsource.append(NULL, 'T', '{}');
SELECT eventsource.append('', 'T', '{}');
SELECT eventsource.append(repeat('s', 501), 'T', '{}');
SELECT eventsource.append('-1', 'T', '{}');
SELECT eventsource.append('$system', 'T', '{}');
SELECT eventsource.append_events(NULL, '[{"type": "T", "data": {}}]');
SELECT eventsource.append_events('', '[{"type": "T", "data": {}}]');
-- The longest stream id is accepted.
SELECT eventsource.append(repeat('s', 500), 'T', '{}');

-- event_type
SELECT eventsource.append('account-1', NULL, '{}');
SELECT eventsource.append('account-1', '', '{}');
SELECT eventsource.append('account-1', repeat('t', 256), '{}');
SELECT eventsource.append('account-2', repeat('t', 255), '{}');

-- data and metadata
SELECT eventsource.append('account-1', 'T', NULL);
SELECT eventsource.append('account-1', 'T', '[1, 2]');
SELECT eventsource.append('account-1', 'T', '"text"');
SELECT eventsource.append('account-1', 'T', 'null');
SELECT eventsource.append('account-1', 'T', '{}', '42');
SELECT eventsource.append('account-1', 'T', '{bad json');

-- expected_version
SELECT eventsource.append('account-1', 'T', '{}', expected_version => -2);
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": {}}]', -5);

-- event_id: PostgreSQL's own uuid input rejects a malformed one.
SELECT eventsource.append('account-1', 'T', '{}', event_id => 'not-a-uuid');

-- events
SELECT eventsource.append_events('account-1', NULL);
SELECT eventsource.append_events('account-1', '{"type": "T", "data": {}}');
SELECT eventsource.append_events('account-1', '"T"');
SELECT eventsource.append_events('account-1', '[]');
SELECT eventsource.append_events('account-1', '[42]');
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": {}}, []]');
SELECT eventsource.append_events('account-1', '[{"data": {}}]');
SELECT eventsource.append_events('account-1', '[{"type": "T"}]');
SELECT eventsource.append_events('account-1', '[{"type": 7, "data": {}}]');
SELECT eventsource.append_events('account-1', '[{"type": "", "data": {}}]');
SELECT eventsource.append_events('account-1', format('[{"type": "%s", "data": {}}]', repeat('t', 256))::jsonb);
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": null}]');
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": [1]}]');
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": {}, "metadata": "m"}]');
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": {}, "colour": "red"}]');
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": {}, "id": "not-a-uuid"}]');
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": {}, "id": "11111111-1111-4111-8111-11111111111g"}]');
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": {}, "id": "11111111x1111-4111-8111-111111111111"}]');
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": {}, "id": 12}]');
SELECT eventsource.append_events('account-1', '[
  {"type": "T", "data": {}, "id": "11111111-1111-4111-8111-111111111111"},
  {"type": "T", "data": {}, "id": "11111111-1111-4111-8111-111111111111"}]');
-- With several ids repeated, the error names the first event that repeats an earlier one's id, and
-- the first event with that id.
SELECT eventsource.append_events('account-1', '[
  {"type": "T", "data": {}, "id": "22222222-2222-4222-8222-222222222221"},
  {"type": "T", "data": {}, "id": "22222222-2222-4222-8222-222222222222"},
  {"type": "T", "data": {}, "id": "22222222-2222-4222-8222-222222222222"},
  {"type": "T", "data": {}, "id": "22222222-2222-4222-8222-222222222221"}]');
SELECT eventsource.append_events('account-1', '[
  {"type": "T", "data": {}, "id": "22222222-2222-4222-8222-222222222221"},
  {"type": "T", "data": {}},
  {"type": "T", "data": {}, "id": "22222222-2222-4222-8222-222222222221"},
  {"type": "T", "data": {}, "id": "22222222-2222-4222-8222-222222222221"}]');
-- A bad event late in a batch rejects the whole batch.
SELECT eventsource.append_events('account-1', '[{"type": "T", "data": {}}, {"type": "T", "data": {}}, {"type": "T"}]');

-- Nothing above changed anything but the two accepted appends.
SELECT count(*) - :events_before AS events_added FROM eventsource.events;
SELECT stream_id, stream_version FROM eventsource.streams WHERE stream_id LIKE 'account-%' ORDER BY 1;

-- The log is append-only, even for its owner.
UPDATE eventsource.events SET data = '{}';
DELETE FROM eventsource.events;
TRUNCATE eventsource.events;
-- Its guard fires on the origin only: where session_replication_role is replica (logical
-- replication's apply, replaying the publisher's scavenge; a superuser's setting), it lets the owner
-- through (privileges.sql: no other role has the privileges).
BEGIN;
SET LOCAL session_replication_role = replica;
WITH removed AS (DELETE FROM eventsource.events RETURNING 1)
SELECT count(*) > 0 AS owner_deleted_events FROM removed;
ROLLBACK;
SELECT count(*) - :events_before AS events_added FROM eventsource.events;
