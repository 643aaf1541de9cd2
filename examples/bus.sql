-- examples/bus.sql: a psql walk-through of the eventsource bus: durable subscriptions, LISTEN,
-- poll, ack, the status view and a consumer group. Run it in a database of a server that has
-- shared_preload_libraries = 'eventsource' (for the notifier's NOTIFY; if eventsource.worker_databases
-- lists databases, the database must be among them; everything else works without it):
--
--   createdb bus_demo && psql -d bus_demo -c 'CREATE EXTENSION eventsource'
--   psql -d bus_demo -v ON_ERROR_STOP=1 -f examples/bus.sql
--
-- It can be run again: the subscriptions it creates start at the end of the log, and it drops them.
\set ON_ERROR_STOP 1

\echo '== 1. A subscription: the order category, from the end of the log (the default is its beginning).'
-- Its checkpoint lives in the database: a consumer that restarts goes on where it acknowledged.
SELECT eventsource.create_subscription('billing', category => 'order', start_from => 'end');

\echo '== 2. LISTEN: the notifier sends NOTIFY "eventsource.order" after appends to order-* commit.'
-- The channel name has a dot: quote it. (Channel "eventsource" is told about every category.)
LISTEN "eventsource.order";

\echo '== 3. Appends to two orders, and a payment that the subscription does not receive.'
SELECT eventsource.append('order-1', 'OrderPlaced', '{"total": 30}');
SELECT eventsource.append('order-2', 'OrderPlaced', '{"total": 12}');
SELECT eventsource.append('payment-7', 'PaymentReceived', '{"order": "order-1", "amount": 30}');
SELECT eventsource.append('order-1', 'OrderShipped', '{"carrier": "DHL"}');
-- psql shows a notification after the next statement: this one waits a moment for the notifier.
-- Its payload is the checkpoint of the newest event; many commits coalesce into one notification.
SELECT pg_sleep(0.5);

\echo '== 4. poll: the next batch after the checkpoint, in log order, leased for 30 seconds.'
-- A client processes the rows; here a temporary table keeps them for the ack below.
CREATE TEMP TABLE batch AS SELECT * FROM eventsource.poll('billing', max_count => 10, lease_seconds => 30);
SELECT stream_id, stream_version, event_type, data, checkpoint, lease IS NOT NULL AS leased FROM batch ORDER BY checkpoint;

\echo '== 5. While the batch is leased, another poll of the same subscription gets nothing.'
SELECT count(*) AS events_while_leased FROM eventsource.poll('billing');

\echo '== 6. The status view: the batch is leased and not acknowledged yet (events_behind).'
SELECT name, consumer_group_member, checkpoint, leased, events_behind FROM eventsource.subscription_status;

\echo '== 7. ack: the checkpoint of the last event of the batch, with its lease. The lease ends, the checkpoint moves on.'
-- A consumer that dies before its ack gets the same batch again when the lease runs out:
-- delivery is at least once. Only the newest lease may ack: a consumer whose lease ran out and
-- whose batch another consumer polled gets 55006, and work done in the ack's transaction rolls back
-- with it, so "work + ack in one transaction" applies each batch once.
SELECT eventsource.ack('billing', checkpoint, 0, lease) FROM batch ORDER BY checkpoint DESC LIMIT 1;
SELECT name, consumer_group_member, checkpoint, leased, events_behind FROM eventsource.subscription_status;
SELECT count(*) AS events_after_ack FROM eventsource.poll('billing');
DROP TABLE batch;
UNLISTEN *;

\echo '== 8. A consumer group of two: each member receives whole streams, in stream order.'
SELECT eventsource.create_subscription('shipping', category => 'order', start_from => 'end', consumer_group_size => 2);
SELECT eventsource.append('order-' || n, 'OrderPlaced', jsonb_build_object('n', n)) FROM generate_series(10, 15) AS n;
-- Which member receives a stream: a hash of its id, the same for every subscription of that size.
SELECT 'order-' || n AS stream_id, eventsource.consumer_group_member('order-' || n, 2) AS member
  FROM generate_series(10, 15) AS n;
-- Two consumers, one per member, poll and ack independently. Here each batch is processed in SQL
-- and acknowledged in the same statement: a projection kept that way is updated exactly once.
WITH batch AS (SELECT * FROM eventsource.poll('shipping', consumer_group_member => 0))
SELECT string_agg(stream_id, ' ' ORDER BY checkpoint) AS member_0_received,
       eventsource.ack('shipping', (SELECT checkpoint FROM batch ORDER BY checkpoint DESC LIMIT 1), 0, min(lease::text)::uuid)
  FROM batch HAVING count(*) > 0;
WITH batch AS (SELECT * FROM eventsource.poll('shipping', consumer_group_member => 1))
SELECT string_agg(stream_id, ' ' ORDER BY checkpoint) AS member_1_received,
       eventsource.ack('shipping', (SELECT checkpoint FROM batch ORDER BY checkpoint DESC LIMIT 1), 1, min(lease::text)::uuid)
  FROM batch HAVING count(*) > 0;
SELECT name, consumer_group_member, consumer_group_size, leased, events_behind
  FROM eventsource.subscription_status WHERE name = 'shipping' ORDER BY consumer_group_member;

\echo '== 9. drop_subscription removes a subscription with its checkpoints.'
SELECT eventsource.drop_subscription('billing');
SELECT eventsource.drop_subscription('shipping');
SELECT count(*) AS subscriptions FROM eventsource.subscription_status;
