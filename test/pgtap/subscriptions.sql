-- subscriptions.sql: pgTAP tests of durable subscriptions: the API's shape, the SQLSTATE of each
-- error, at-least-once redelivery with late acks refused, a consumer group receiving every event exactly once, and
-- a subscription of a query.
-- Runs in a database of its own (see test/run).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP EXTENSION IF EXISTS eventsource;
CREATE EXTENSION eventsource;
RESET client_min_messages;

SELECT plan(21);

SELECT has_table('eventsource', 'subscriptions', 'the subscriptions');
SELECT has_table('eventsource', 'subscription_members', 'their members and checkpoints');
SELECT has_view('eventsource', 'subscription_status', 'their status');
SELECT has_function('eventsource', 'create_subscription', ARRAY['text', 'text', 'text[]', 'text', 'integer', 'regrole', 'jsonb']);
SELECT has_function('eventsource', 'poll', ARRAY['text', 'integer', 'integer', 'integer']);
SELECT has_function('eventsource', 'ack', ARRAY['text', 'eventsource.checkpoint', 'integer', 'uuid']);
SELECT isnt_definer('eventsource', 'poll', ARRAY['text', 'integer', 'integer', 'integer'], 'poll is SECURITY INVOKER: it knows its caller, checks it against the subscription''s owner, then acts as the extension''s owner');

\o /dev/null
SELECT eventsource.append('order-' || n % 17, 'OrderEvent', jsonb_build_object('n', n)) FROM generate_series(1, 200) AS n;
SELECT eventsource.create_subscription('tap');
SELECT eventsource.create_subscription('tap-group', consumer_group_size => 4);
\o

SELECT throws_ok($$SELECT eventsource.create_subscription('tap')$$, '42710', 'subscription "tap" already exists', 'a duplicate name');
SELECT throws_ok($$SELECT * FROM eventsource.poll('nobody')$$, '42704', 'subscription "nobody" does not exist', 'an unknown subscription');
SELECT throws_ok($$SELECT * FROM eventsource.poll('tap-group', consumer_group_member => 4)$$, '22023',
                 'subscription "tap-group" has no consumer group member 4', 'a member the group does not have');
SELECT throws_ok($$SELECT eventsource.ack('tap', checkpoint) FROM eventsource.read_all() ORDER BY global_position DESC LIMIT 1$$,
                 '22004', 'lease must not be null', 'an ack without the lease poll returned');

-- At least once: an unacknowledged batch comes back when its lease ends.
CREATE TEMP TABLE first_batch AS SELECT * FROM eventsource.poll('tap', 50, lease_seconds => 1);
SELECT is((SELECT count(*) FROM eventsource.poll('tap', 50)), 0::bigint, 'a leased batch is not handed out twice');
SELECT pg_sleep(1.1);
SELECT results_eq($$SELECT global_position FROM eventsource.poll('tap', 50)$$,
                  $$SELECT global_position FROM first_batch$$, 'after the lease the same batch is delivered again');
SELECT throws_ok($$SELECT eventsource.ack('tap', checkpoint, 0, lease) FROM first_batch ORDER BY checkpoint DESC LIMIT 1$$,
                 '55006', 'the lease of subscription "tap" has been superseded', 'and the first consumer''s late ack fails');

-- A consumer group of four, each member polling and acknowledging in batches of 7 until done:
-- together they receive every event exactly once, each stream on one member, in stream order.
CREATE TEMP TABLE received (member int, stream_id text, stream_version bigint, received_order serial);
CREATE FUNCTION pg_temp.consume(member int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    last_checkpoint eventsource.checkpoint;
    batch_lease uuid;
BEGIN
    LOOP
        last_checkpoint := NULL;
        WITH batch AS (SELECT * FROM eventsource.poll('tap-group', 7, member)),
             stored AS (INSERT INTO received (member, stream_id, stream_version)
                        SELECT member, b.stream_id, b.stream_version FROM batch b ORDER BY b.checkpoint)
        SELECT b.checkpoint, b.lease INTO last_checkpoint, batch_lease FROM batch b ORDER BY b.checkpoint DESC LIMIT 1;
        EXIT WHEN last_checkpoint IS NULL;
        PERFORM eventsource.ack('tap-group', last_checkpoint, member, batch_lease);
    END LOOP;
END
$$;
SELECT pg_temp.consume(member) FROM generate_series(0, 3) AS member;
SELECT is((SELECT count(*) FROM received), 200::bigint, 'the group received 200 events');
SELECT is((SELECT count(DISTINCT (stream_id, stream_version)) FROM received), 200::bigint, 'each exactly once');
SELECT is((SELECT count(*) FROM (SELECT stream_id FROM received GROUP BY stream_id HAVING count(DISTINCT member) > 1) AS split),
          0::bigint, 'every stream on one member');
SELECT ok((SELECT bool_and(in_order) FROM (
               SELECT stream_version > lag(stream_version, 1, 0::bigint) OVER (PARTITION BY stream_id ORDER BY received_order) AS in_order
                 FROM received) AS ordered), 'each stream in version order');

-- A subscription of a query: the events of its tags, in log order, and nothing else.
\o /dev/null
SELECT eventsource.append('order-' || n % 17, 'OrderEvent', '{}', tags => ARRAY['customer:' || n % 3]) FROM generate_series(1, 60) AS n;
SELECT eventsource.create_subscription('tap-customer', query => '{"items": [{"tags": ["customer:1"]}]}');
\o
SELECT throws_ok($$SELECT eventsource.create_subscription('tap-bad', query => '{"items": []}')$$, '22023',
                 '"items" of query must be a non-empty JSON array', 'a query without items');
SELECT results_eq($$SELECT global_position FROM eventsource.poll('tap-customer', 100)$$,
                  $$SELECT global_position FROM eventsource.read_by_query('{"items": [{"tags": ["customer:1"]}]}')$$,
                  'a subscription of a query gets what read_by_query reads');
SELECT is((SELECT events_behind FROM eventsource.subscription_status WHERE name = 'tap-customer'), 20::bigint,
          'and its lag counts those events only');

SELECT * FROM finish();
