-- snapshots.sql: pgTAP tests of snapshots: a bank account folded in SQL from a snapshot plus the
-- events after it equals the fold of its full history, at every version tried; schema versions keep
-- stale state out; retention and deletion. Runs in a database of its own (see test/run).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP EXTENSION IF EXISTS eventsource;
CREATE EXTENSION eventsource;
DROP SCHEMA IF EXISTS bank CASCADE;
RESET client_min_messages;

SELECT plan(29);

SELECT has_table('eventsource', 'snapshots', 'the snapshot store');
SELECT has_function('eventsource', 'save_snapshot', ARRAY['text', 'bigint', 'jsonb', 'integer']);
SELECT has_function('eventsource', 'load_snapshot', ARRAY['text', 'bigint', 'integer']);
SELECT has_function('eventsource', 'load_stream', ARRAY['text', 'bigint', 'integer']);
SELECT has_function('eventsource', 'delete_snapshots', ARRAY['text', 'integer']);

-- The aggregate: a balance and a count of bounced withdrawals (a withdrawal larger than the balance
-- bounces), so the fold depends on the order of the events, not just on which ones it sees.
CREATE SCHEMA bank;
CREATE FUNCTION bank.apply(state jsonb, kind text, event_type text, data jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN kind = 'snapshot' THEN data
        WHEN event_type = 'Deposited' THEN
            jsonb_build_object('balance', (state->>'balance')::numeric + (data->>'amount')::numeric,
                               'bounced', state->'bounced')
        WHEN event_type = 'Withdrawn' AND (data->>'amount')::numeric <= (state->>'balance')::numeric THEN
            jsonb_build_object('balance', (state->>'balance')::numeric - (data->>'amount')::numeric,
                               'bounced', state->'bounced')
        WHEN event_type = 'Withdrawn' THEN
            jsonb_build_object('balance', state->'balance', 'bounced', (state->>'bounced')::int + 1)
        ELSE state
    END
$$;
CREATE AGGREGATE bank.fold(text, text, jsonb) (
    SFUNC = bank.apply, STYPE = jsonb, INITCOND = '{"balance": 0, "bounced": 0}');
-- The full replay: every event up to a version, from the start.
CREATE FUNCTION bank.replay(stream_id text, up_to bigint) RETURNS jsonb LANGUAGE sql AS $$
    SELECT bank.fold('event', event_type, data ORDER BY stream_version)
      FROM eventsource.read_stream(stream_id, max_count => 100000)
     WHERE stream_version <= up_to
$$;
-- The fast load: the newest usable snapshot plus the tail, in one call.
CREATE FUNCTION bank.load(stream_id text, up_to bigint, schema integer DEFAULT 1) RETURNS jsonb LANGUAGE sql AS $$
    SELECT bank.fold(kind, event_type, data ORDER BY stream_version)
      FROM eventsource.load_stream(stream_id, up_to, schema)
$$;

-- 1,000 deposits and withdrawals of random amounts (set-up output is not TAP: hidden).
\o /dev/null
SELECT setseed(0.42);
SELECT eventsource.append_events('account-1', jsonb_agg(jsonb_build_object(
           'type', CASE WHEN random() < 0.55 THEN 'Deposited' ELSE 'Withdrawn' END,
           'data', jsonb_build_object('amount', (random() * 100)::int)) ORDER BY n))
  FROM generate_series(1, 1000) AS n;
\o
SELECT ok((bank.replay('account-1', 1000)->>'bounced')::int > 0, 'some withdrawals bounced: the fold depends on order');

-- Snapshots at a few versions, each the fold of the history up to it.
SET eventsource.snapshots_to_keep = 0;
\o /dev/null
SELECT eventsource.save_snapshot('account-1', v, bank.replay('account-1', v)) FROM unnest(ARRAY[100, 250, 500, 999]) AS v;
\o

SELECT is(bank.load('account-1', v), bank.replay('account-1', v), format('snapshot plus tail equals the full replay at version %s', v))
  FROM unnest(ARRAY[1, 99, 100, 101, 300, 500, 750, 999, 1000]) AS v;
SELECT is((SELECT count(*) FROM eventsource.load_stream('account-1')), 2::bigint,
          'the load at the head is the snapshot at 999 and one event');
SELECT is((SELECT min(stream_version) FROM eventsource.load_stream('account-1', 600)), 500::bigint,
          'a load as of version 600 starts at the snapshot at 500');

-- A state of a new shape (schema version 2) is not loaded by a client of the old shape.
\o /dev/null
SELECT eventsource.save_snapshot('account-1', 1000, '{"cents": 1}', schema_version => 2);
\o
SELECT is(bank.load('account-1', 1000, 1), bank.replay('account-1', 1000), 'schema version 1 ignores a schema version 2 snapshot');
SELECT is((SELECT state FROM eventsource.load_snapshot('account-1', schema_version => 2)), '{"cents": 1}'::jsonb,
          'schema version 2 loads its own snapshot');
SELECT is((SELECT schema_version FROM eventsource.load_snapshot('account-1')), 2, 'without a schema version the newest snapshot loads');
SELECT is(eventsource.delete_snapshots('account-1', below_schema_version => 2), 4::bigint, 'delete_snapshots purges the old shape');
SELECT is(bank.load('account-1', 1000, 1), bank.replay('account-1', 1000), 'with no usable snapshot the load is the full replay');
SELECT is((SELECT count(*) FROM eventsource.load_stream('account-1', schema_version => 1)), 1000::bigint, 'and returns every event');

-- Retention on save.
SET eventsource.snapshots_to_keep = 2;
\o /dev/null
SELECT eventsource.save_snapshot('account-1', v, bank.replay('account-1', v)) FROM unnest(ARRAY[10, 20, 30]) AS v;
\o
SELECT results_eq($$SELECT stream_version, schema_version FROM eventsource.snapshots ORDER BY 1$$,
                  $$VALUES (30::bigint, 1), (1000::bigint, 2)$$, 'the newest two snapshots are kept');
RESET eventsource.snapshots_to_keep;

-- Errors keep their SQLSTATE and store nothing.
SELECT throws_ok($$SELECT eventsource.save_snapshot('account-1', 1001, '{}')$$, 'SE004',
                 'stream "account-1" has no version 1001 to snapshot', 'a version the stream does not have');
SELECT throws_ok($$SELECT eventsource.save_snapshot('account-2', 1, '{}')$$, 'SE004',
                 'stream "account-2" has no version 1 to snapshot', 'a stream that does not exist');
\o /dev/null
SELECT eventsource.append('account-3', 'Opened', '{}');
SELECT eventsource.tombstone_stream('account-3');
\o
SELECT throws_ok($$SELECT eventsource.save_snapshot('account-3', 1, '{}')$$, 'SE004',
                 'stream "account-3" has no version 1 to snapshot', 'a version a tombstone hides');
SELECT throws_ok($$SELECT eventsource.save_snapshot('account-1', 1, '{}', 0)$$, '22023',
                 'schema_version must be positive', 'schema versions start at 1');
SELECT is((SELECT count(*) FROM eventsource.snapshots), 2::bigint, 'failed saves stored nothing');

SELECT * FROM finish();
SET client_min_messages = warning;
DROP SCHEMA bank CASCADE;
