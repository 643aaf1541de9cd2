-- append_to_streams.sql: appends to many streams in one call: all or nothing, expected versions
-- per stream, check-only entries, idempotent retries, the log order, and every error of its input.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default

-- A transfer: two streams, one call; a row per entry, in the order given.
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-1", "expected_version": 0,
   "events": [{"type": "Opened", "data": {"balance": 100}}]},
  {"stream_id": "account-2", "expected_version": 0,
   "events": [{"type": "Opened", "data": {"balance": 0}}]}]$$);
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-1", "expected_version": 1,
   "events": [{"type": "Debited", "data": {"amount": 30}}]},
  {"stream_id": "account-2", "expected_version": 1,
   "events": [{"type": "Credited", "data": {"amount": 30}}, {"type": "Noted", "data": {}}]}]$$);

-- A check-only entry (no events) checks its stream's version and writes nothing; its row gives
-- the version it saw and no positions.
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-1", "expected_version": 2,
   "events": [{"type": "Debited", "data": {"amount": 5}}]},
  {"stream_id": "rules-1", "expected_version": 0},
  {"stream_id": "account-2", "expected_version": -1}]$$);

-- A conflict on any entry writes nothing, takes no global position, and names the first entry
-- that fails (in the order given) with both versions.
SELECT count(*) AS events, max(global_position) AS last_position FROM eventsource.events;
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-1", "expected_version": 3,
   "events": [{"type": "Debited", "data": {"amount": 1}}]},
  {"stream_id": "account-2", "expected_version": 2,
   "events": [{"type": "Credited", "data": {"amount": 1}}]},
  {"stream_id": "account-3", "expected_version": -1}]$$);
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-1", "expected_version": 3,
   "events": [{"type": "Debited", "data": {"amount": 1}}]},
  {"stream_id": "account-3", "expected_version": -1},
  {"stream_id": "account-2", "expected_version": 2,
   "events": [{"type": "Credited", "data": {"amount": 1}}]}]$$);
SELECT count(*) AS events, max(global_position) AS last_position FROM eventsource.events;
SELECT stream_id, stream_version FROM eventsource.streams ORDER BY stream_id;
-- the conflict's SQLSTATE, as a client catches it
DO $$
BEGIN
  PERFORM eventsource.append_to_streams('[{"stream_id": "account-1", "expected_version": 9}]');
EXCEPTION WHEN SQLSTATE 'SE001' THEN
  RAISE NOTICE 'caught %', SQLERRM;
END
$$;

-- Each stream's events stay in version order in the global log.
SELECT stream_id, stream_version, event_type FROM eventsource.read_all() ORDER BY checkpoint;

-- An idempotent retry with event ids returns the original result and writes nothing.
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-4", "expected_version": 0,
   "events": [{"type": "Opened", "data": {}, "id": "00000000-0000-7000-8000-000000000001"}]},
  {"stream_id": "account-5",
   "events": [{"type": "Opened", "data": {}, "id": "00000000-0000-7000-8000-000000000002"}]}]$$);
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-4", "expected_version": 0,
   "events": [{"type": "Opened", "data": {}, "id": "00000000-0000-7000-8000-000000000001"}]},
  {"stream_id": "account-5",
   "events": [{"type": "Opened", "data": {}, "id": "00000000-0000-7000-8000-000000000002"}]}]$$);
SELECT count(*) AS events FROM eventsource.events WHERE stream_id IN ('account-4', 'account-5');
-- the same ids with an expectation the original did not meet: a conflict
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-4", "expected_version": 3,
   "events": [{"type": "Opened", "data": {}, "id": "00000000-0000-7000-8000-000000000001"}]}]$$);
-- an id already used in another stream
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-6",
   "events": [{"type": "Opened", "data": {}, "id": "00000000-0000-7000-8000-000000000001"}]}]$$);

-- In one transaction with other appends: the call's writes commit or roll back with it.
BEGIN;
SELECT eventsource.append('account-7', 'Opened', '{}');
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-7", "expected_version": 1, "events": [{"type": "Noted", "data": {}}]},
  {"stream_id": "account-8", "events": [{"type": "Opened", "data": {}}]}]$$);
ROLLBACK;
SELECT count(*) AS events FROM eventsource.events WHERE stream_id IN ('account-7', 'account-8');

-- A tombstoned stream cannot be written.
SELECT eventsource.tombstone_stream('account-5');
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-5", "events": [{"type": "Noted", "data": {}}]}]$$);

-- Many streams in one call: more than max_locks_per_transaction of them; and 10,000 (the positions
-- of every entry outlive the call's statements).
SELECT count(*) AS rows, sum(stream_version) AS versions, sum(cardinality(global_positions)) AS positions,
       count(DISTINCT global_positions[1]) AS distinct_positions
  FROM eventsource.append_to_streams(
         (SELECT jsonb_agg(jsonb_build_object('stream_id', 'many-' || i, 'expected_version', 0,
                                              'events', '[{"type": "Made", "data": {}}, {"type": "Made", "data": {}}]'::jsonb))
            FROM generate_series(1, 10000) AS i));
SELECT count(*) AS rows, sum(stream_version) AS versions
  FROM eventsource.append_to_streams(
         (SELECT jsonb_agg(jsonb_build_object('stream_id', 'bulk-' || i,
                                              'events', jsonb_build_array(jsonb_build_object('type', 'Made', 'data', '{}'::jsonb))))
            FROM generate_series(1, 200) AS i));

-- Bad input: a clear error, naming the entry (and its stream once it is known); nothing written.
SELECT * FROM eventsource.append_to_streams(NULL);
SELECT * FROM eventsource.append_to_streams('{}');
SELECT * FROM eventsource.append_to_streams('[]');
SELECT * FROM eventsource.append_to_streams('[1]');
SELECT * FROM eventsource.append_to_streams('[{"expected_version": 0}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": 7, "expected_version": 0}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "", "expected_version": 0}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "$streams", "events": [{"type": "X", "data": {}}]}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1"}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "expected_version": 1.5}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "expected_version": "3"}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "expected_version": -2}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "expected_version": 99999999999999999999}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "expected_version": 9223372036854775808}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "expected_version": 1e30}]');
SELECT stream_version FROM eventsource.append_to_streams('[{"stream_id": "account-1", "expected_version": 3.0}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "events": {}}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "events": []}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "events": [{"type": "X"}]}]');
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "version": 3}]');
SELECT * FROM eventsource.append_to_streams($$[
  {"stream_id": "account-9", "events": [{"type": "X", "data": {}}]},
  {"stream_id": "account-1", "expected_version": 3},
  {"stream_id": "account-9", "expected_version": 1}]$$);
SELECT count(*) AS events FROM eventsource.events;

-- In a read-only transaction: refused before anything else.
BEGIN READ ONLY;
SELECT * FROM eventsource.append_to_streams('[{"stream_id": "account-1", "expected_version": 3}]');
ROLLBACK;
