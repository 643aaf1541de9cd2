-- event_store.sql: pgTAP tests of the public API: its shape, every error's SQLSTATE, and the
-- guarantees a client relies on. Runs in a database of its own (see test/run).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP EXTENSION IF EXISTS eventsource;
CREATE EXTENSION eventsource;
RESET client_min_messages;

SELECT plan(58);

-- The API's shape.
SELECT has_schema('eventsource');
SELECT has_table('eventsource', 'events', 'the event log');
SELECT has_table('eventsource', 'streams', 'the stream registry');
SELECT columns_are('eventsource', 'events', ARRAY['global_position', 'transaction_id', 'stream_id',
    'stream_version', 'event_id', 'event_type', 'data', 'metadata', 'recorded_at', 'tags']);
SELECT columns_are('eventsource', 'streams', ARRAY['stream_id', 'category', 'stream_version', 'created_at', 'updated_at',
                                                   'truncate_before', 'max_count', 'max_age', 'deleted_through', 'tombstoned_at',
                                                   'last_transaction_id']);
SELECT has_function('eventsource', 'append', ARRAY['text', 'text', 'jsonb', 'jsonb', 'bigint', 'uuid', 'text[]']);
SELECT has_function('eventsource', 'append_events', ARRAY['text', 'jsonb', 'bigint']);
SELECT has_function('eventsource', 'read_stream', ARRAY['text', 'bigint', 'integer', 'text']);
SELECT has_function('eventsource', 'read_all', ARRAY['eventsource.checkpoint', 'integer', 'text', 'text[]']);
SELECT has_function('eventsource', 'read_category', ARRAY['text', 'eventsource.checkpoint', 'integer', 'text[]']);
SELECT has_function('eventsource', 'stream_version', ARRAY['text']);
SELECT isnt_definer('eventsource', 'append', ARRAY['text', 'text', 'jsonb', 'jsonb', 'bigint', 'uuid', 'text[]'], 'append is SECURITY INVOKER: it acts as the extension''s owner itself, without a SECURITY DEFINER call''s cost');
SELECT isnt_definer('eventsource', 'read_all', ARRAY['eventsource.checkpoint', 'integer', 'text', 'text[]']);
SELECT has_role('eventsource_reader');
SELECT has_role('eventsource_writer');
SELECT has_role('eventsource_admin');
SELECT is_member_of('eventsource_reader', 'eventsource_writer');
SELECT is_member_of('eventsource_writer', 'eventsource_admin');

-- Appends and expected versions.
SELECT is(eventsource.append('tap-1', 'Opened', '{"balance": 0}', expected_version => 0), 1::bigint, 'a new stream starts at version 1');
SELECT is(eventsource.append('tap-1', 'Deposited', '{"amount": 10}', expected_version => 1), 2::bigint, 'exact expected version appends');
SELECT is(eventsource.append('tap-1', 'Deposited', '{"amount": 5}', expected_version => -1), 3::bigint, 'stream-exists expectation appends');
SELECT is(eventsource.append('tap-1', 'Withdrawn', '{"amount": 3}'), 4::bigint, 'any version appends');
SELECT is(eventsource.stream_version('tap-1'), 4::bigint, 'stream_version');
SELECT is(eventsource.stream_version('tap-none'), 0::bigint, 'a stream that does not exist has version 0');

-- Conflicts: their own SQLSTATE, message naming the stream, detail with both versions.
SELECT throws_ok($$SELECT eventsource.append('tap-1', 'Deposited', '{}', expected_version => 2)$$,
    'SE001', 'version conflict on stream "tap-1"', 'wrong exact version');
SELECT throws_ok($$SELECT eventsource.append('tap-1', 'Opened', '{}', expected_version => 0)$$,
    'SE001', 'version conflict on stream "tap-1"', 'stream exists but no stream was expected');
SELECT throws_ok($$SELECT eventsource.append('tap-2', 'Deposited', '{}', expected_version => -1)$$,
    'SE001', 'version conflict on stream "tap-2"', 'stream missing but expected to exist');
CREATE FUNCTION pg_temp.conflict_detail() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    PERFORM eventsource.append('tap-1', 'Deposited', '{}', expected_version => 1);
    RETURN 'no error';
EXCEPTION WHEN SQLSTATE 'SE001' THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN detail;
END
$$;
SELECT is(pg_temp.conflict_detail(), 'Expected version 1, actual version 4.', 'the detail gives expected and actual versions');
SELECT is(eventsource.stream_version('tap-1'), 4::bigint, 'conflicts wrote nothing');

-- Batches are atomic and idempotent.
SELECT results_eq(
    $$SELECT stream_version, cardinality(global_positions) FROM eventsource.append_events('tap-3', '[
        {"type": "A", "data": {}, "id": "00000000-0000-4000-8000-00000000000a"},
        {"type": "B", "data": {}, "id": "00000000-0000-4000-8000-00000000000b"}]', 0)$$,
    $$VALUES (2::bigint, 2)$$, 'a batch returns the new version and one position per event');
SELECT results_eq(
    $$SELECT global_positions FROM eventsource.append_events('tap-3', '[
        {"type": "A", "data": {}, "id": "00000000-0000-4000-8000-00000000000a"},
        {"type": "B", "data": {}, "id": "00000000-0000-4000-8000-00000000000b"}]', 0)$$,
    $$SELECT array_agg(global_position ORDER BY stream_version) FROM eventsource.events WHERE stream_id = 'tap-3'$$,
    'a retry returns the original positions');
SELECT is(eventsource.stream_version('tap-3'), 2::bigint, 'a retry writes nothing');
SELECT throws_ok($$SELECT eventsource.append('tap-4', 'A', '{}', event_id => '00000000-0000-4000-8000-00000000000a')$$,
    'SE002', NULL, 'an id used in another stream');
SELECT throws_ok($$SELECT eventsource.append_events('tap-3', '[
        {"type": "A", "data": {}, "id": "00000000-0000-4000-8000-00000000000a"},
        {"type": "C", "data": {}, "id": "00000000-0000-4000-8000-00000000000c"}]')$$,
    'SE002', 'events do not match an earlier append to stream "tap-3"', 'a partly stored batch');
SELECT throws_ok($$SELECT eventsource.append_events('tap-3', '[{"type": "C", "data": {}}, {"type": "D"}]')$$,
    '22023', 'event 2: "data" is missing', 'a bad event rejects the batch');
SELECT is(eventsource.stream_version('tap-3'), 2::bigint, 'a rejected batch wrote nothing');

-- Bad input: the SQLSTATE of each class of error.
SELECT throws_ok($$SELECT eventsource.append(NULL, 'A', '{}')$$, '22004', 'stream_id must not be null');
SELECT throws_ok($$SELECT eventsource.append('', 'A', '{}')$$, '22023', 'stream_id must not be empty');
SELECT throws_ok($$SELECT eventsource.append(repeat('x', 501), 'A', '{}')$$, '22001', 'stream_id is too long');
SELECT throws_ok($$SELECT eventsource.append('$all', 'A', '{}')$$, '22023', 'stream_id "$all" is reserved');
SELECT throws_ok($$SELECT eventsource.append('tap-5', repeat('t', 256), '{}')$$, '22001', 'event_type is too long');
SELECT throws_ok($$SELECT eventsource.append('tap-5', 'A', '[]')$$, '22023', 'data must be a JSON object');
SELECT throws_ok($$SELECT eventsource.append('tap-5', 'A', '{}', expected_version => -2)$$, '22023', 'expected_version must be -1 or greater');
SELECT throws_ok($$SELECT eventsource.append_events('tap-5', '[]')$$, '22023', 'events must not be an empty array');
SELECT throws_ok($$SELECT eventsource.append_events('tap-5', '[{"type": "A", "data": {}, "x": 1}]')$$, '22023', 'event 1: unknown key "x"');
SELECT throws_ok($$SELECT eventsource.append_events('tap-5', '[{"type": "A", "data": {}, "id": "zz"}]')$$, '22P02', 'event 1: id "zz" is not a valid uuid');
SELECT throws_ok($$SELECT * FROM eventsource.read_stream('tap-1', max_count => 0)$$, '22023', 'max_count must be between 1 and 100000');
SELECT throws_ok($$SELECT * FROM eventsource.read_stream('tap-1', direction => 'up')$$, '22023', 'invalid direction "up"');
SELECT throws_ok($$SELECT * FROM eventsource.read_all('(1,)')$$, '22P02', 'invalid input syntax for type eventsource.checkpoint: "(1,)"');
SELECT throws_ok($$DELETE FROM eventsource.events$$, 'SE003', 'eventsource.events is append-only');
SELECT throws_ok($$UPDATE eventsource.events SET data = '{}'$$, 'SE003', 'eventsource.events is append-only');
SELECT throws_ok($$TRUNCATE eventsource.events$$, 'SE003', 'eventsource.events is append-only');

-- Reads.
SELECT results_eq($$SELECT stream_version FROM eventsource.read_stream('tap-1')$$,
    ARRAY[1, 2, 3, 4]::bigint[], 'read_stream forwards');
SELECT results_eq($$SELECT stream_version FROM eventsource.read_stream('tap-1', direction => 'backward')$$,
    ARRAY[4, 3, 2, 1]::bigint[], 'read_stream backwards');
SELECT results_eq($$SELECT event_type FROM eventsource.read_category('tap', event_types => '{Deposited}')$$,
    ARRAY['Deposited', 'Deposited'], 'read_category filtered by event type');
SELECT throws_ok($$SELECT * FROM eventsource.read_category('tap-1')$$, '22023',
    'category "tap-1" contains ''-''', 'a stream id is not a category');
SELECT results_eq(
    $$SELECT global_position FROM eventsource.read_all((SELECT checkpoint FROM eventsource.read_all(max_count => 2) OFFSET 1), 3)$$,
    $$SELECT global_position FROM eventsource.read_all() OFFSET 2 LIMIT 3$$,
    'read_all resumes right after a checkpoint');
-- Fold the account's events into a balance, from the log alone.
SELECT is(
    (SELECT sum(CASE event_type WHEN 'Deposited' THEN (data->>'amount')::numeric
                                WHEN 'Withdrawn' THEN -(data->>'amount')::numeric ELSE 0 END)
       FROM eventsource.read_stream('tap-1')),
    12::numeric, 'an aggregate folds from its stream');

SELECT * FROM finish();
