-- subscriptions.sql: durable subscriptions: create, poll, ack, leases, consumer groups, the status
-- view, drop, and every error path (each leaves the subscriptions unchanged).
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default
SELECT eventsource.append('order-1', 'OrderPlaced', '{"total": 10}');
SELECT eventsource.append('order-2', 'OrderPlaced', '{"total": 20}');
SELECT eventsource.append('cart-1', 'ItemAdded', '{}');
SELECT eventsource.append('order-1', 'OrderPaid', '{}');

-- A subscription to everything, from the beginning; one to a category and event type; one from the end.
SELECT eventsource.create_subscription('audit');
SELECT eventsource.create_subscription('billing', category => 'order', event_types => '{OrderPaid}');
SELECT eventsource.create_subscription('live', start_from => 'end');
SELECT name, category, event_types, consumer_group_size FROM eventsource.subscriptions ORDER BY name;
SELECT subscription_name, consumer_group_member, checkpoint IS NULL AS from_the_start
  FROM eventsource.subscription_members ORDER BY 1, 2;

-- poll returns the next batch in log order and leases it: a second poll gets nothing.
SELECT stream_id, stream_version, event_type FROM eventsource.poll('audit', 3);
SELECT count(*) AS while_leased FROM eventsource.poll('audit', 3);
SELECT name, leased, events_behind FROM eventsource.subscription_status WHERE name = 'audit';
-- ack the last event of the batch: the lease ends and the next poll continues after it.
SELECT eventsource.ack('audit', checkpoint) FROM eventsource.read_all(max_count => 3) ORDER BY checkpoint DESC LIMIT 1;
SELECT stream_id, stream_version, event_type FROM eventsource.poll('audit', 3);
SELECT eventsource.ack('audit', checkpoint) FROM eventsource.read_all() ORDER BY checkpoint DESC LIMIT 1;
SELECT count(*) AS caught_up FROM eventsource.poll('audit');
SELECT name, leased, events_behind, seconds_behind FROM eventsource.subscription_status WHERE name = 'audit';
-- A caught-up poll takes no lease: new events arrive at the next poll.
SELECT eventsource.append('order-3', 'OrderPlaced', '{}');
SELECT stream_id FROM eventsource.poll('audit');
-- An ack never moves the checkpoint back.
SELECT eventsource.ack('audit', checkpoint) FROM eventsource.read_all() ORDER BY checkpoint DESC LIMIT 1;
SELECT eventsource.ack('audit', checkpoint) FROM eventsource.read_all() ORDER BY checkpoint LIMIT 1;
SELECT eventsource.checkpoint_global_position(checkpoint) = (SELECT max(global_position) FROM eventsource.events) AS still_at_the_head
  FROM eventsource.subscription_members WHERE subscription_name = 'audit';

-- Filters: the category and event types of the subscription.
SELECT stream_id, event_type FROM eventsource.poll('billing');
-- From the end: only what was appended after the subscription was created.
SELECT stream_id, event_type FROM eventsource.poll('live');

-- A lease that runs out hands the batch to the next consumer (at-least-once delivery).
SELECT eventsource.create_subscription('retry');
SELECT count(*) AS first_delivery FROM eventsource.poll('retry', lease_seconds => 1);
SELECT count(*) AS while_leased FROM eventsource.poll('retry');
SELECT pg_sleep(1.1);
SELECT count(*) AS redelivered FROM eventsource.poll('retry');

-- A late ack of an earlier batch advances the checkpoint but leaves the current lease alone.
SELECT eventsource.create_subscription('late');
SELECT count(*) AS first_consumer FROM eventsource.poll('late', 2, lease_seconds => 1);
SELECT pg_sleep(1.1);
SELECT count(*) AS second_consumer FROM eventsource.poll('late', 4);
SELECT eventsource.ack('late', checkpoint) FROM eventsource.read_all(max_count => 2) ORDER BY checkpoint DESC LIMIT 1;
SELECT count(*) AS third_consumer FROM eventsource.poll('late');
SELECT leased, events_behind FROM eventsource.subscription_status WHERE name = 'late';
SELECT eventsource.ack('late', checkpoint) FROM eventsource.read_all(max_count => 4) ORDER BY checkpoint DESC LIMIT 1;
SELECT leased, events_behind FROM eventsource.subscription_status WHERE name = 'late';

-- Consumer groups: every stream goes to one member, together the members get every event once.
SELECT count(eventsource.append('order-' || n, 'OrderPlaced', '{}')) FROM generate_series(4, 40) AS n;
SELECT eventsource.create_subscription('grouped', consumer_group_size => 3);
CREATE TEMP TABLE delivered AS
SELECT member, e.* FROM generate_series(0, 2) AS member, eventsource.poll('grouped', 1000, member) AS e;
SELECT count(*) AS delivered, count(DISTINCT global_position) AS distinct_events,
       (SELECT count(*) FROM eventsource.events) AS events FROM delivered;
SELECT bool_and(member = eventsource.consumer_group_member(stream_id, 3)) AS each_stream_to_its_member,
       count(DISTINCT member) AS members_used FROM delivered;
SELECT count(*) AS streams_on_two_members
  FROM (SELECT stream_id FROM delivered GROUP BY stream_id HAVING count(DISTINCT member) > 1) AS split;
SELECT eventsource.consumer_group_member('order-1', 1) AS only_member, eventsource.consumer_group_member('order-1', 3) = eventsource.consumer_group_member('order-1', 3) AS stable;
SELECT name, consumer_group_member, consumer_group_size, leased FROM eventsource.subscription_status WHERE name = 'grouped' ORDER BY 2;

-- Errors: each one changes nothing.
SELECT eventsource.create_subscription('fresh');
SELECT eventsource.append('order-99', 'OrderPlaced', '{}');
CREATE TEMP TABLE members_before AS SELECT * FROM eventsource.subscription_members;
SELECT eventsource.create_subscription('audit');
SELECT eventsource.create_subscription(NULL);
SELECT eventsource.create_subscription('');
SELECT eventsource.create_subscription(repeat('s', 256));
SELECT eventsource.create_subscription('bad', category => '');
SELECT eventsource.create_subscription('bad', category => 'order-1');
SELECT eventsource.create_subscription('bad', event_types => '{}');
SELECT eventsource.create_subscription('bad', event_types => '{A,NULL}');
SELECT eventsource.create_subscription('bad', start_from => 'middle');
SELECT eventsource.create_subscription('bad', start_from => NULL);
SELECT eventsource.create_subscription('bad', consumer_group_size => 0);
SELECT eventsource.create_subscription('bad', consumer_group_size => 1001);
SELECT eventsource.create_subscription('bad', consumer_group_size => NULL);
SELECT * FROM eventsource.poll('nobody');
SELECT * FROM eventsource.poll(NULL);
SELECT * FROM eventsource.poll('audit', 0);
SELECT * FROM eventsource.poll('audit', 100001);
SELECT * FROM eventsource.poll('audit', consumer_group_member => 1);
SELECT * FROM eventsource.poll('audit', consumer_group_member => -1);
SELECT * FROM eventsource.poll('audit', consumer_group_member => NULL);
SELECT * FROM eventsource.poll('audit', lease_seconds => 0);
SELECT * FROM eventsource.poll('audit', lease_seconds => 86401);
SELECT eventsource.ack('nobody', '(1,1)');
SELECT eventsource.ack('audit', NULL);
-- An ack beyond what poll delivered would skip events nobody received (the message names
-- transaction ids, which differ from run to run: only the SQLSTATE is shown).
\set VERBOSITY sqlstate
SELECT eventsource.ack('audit', checkpoint) FROM eventsource.read_all() WHERE stream_id = 'order-99';
SELECT eventsource.ack('fresh', checkpoint) FROM eventsource.read_all() WHERE stream_id = 'order-99';
\set VERBOSITY default
SELECT eventsource.ack('grouped', (SELECT checkpoint FROM eventsource.read_all(max_count => 1)), 3);
SELECT eventsource.drop_subscription('nobody');
SELECT eventsource.consumer_group_member('order-1', 0);
SELECT eventsource.consumer_group_member('order-1', 1001);
SELECT eventsource.drop_subscription(NULL);
SELECT count(*) AS changed_rows
  FROM ((SELECT * FROM eventsource.subscription_members EXCEPT SELECT * FROM members_before)
        UNION ALL (SELECT * FROM members_before EXCEPT SELECT * FROM eventsource.subscription_members)) AS difference;
SELECT count(*) AS subscriptions FROM eventsource.subscriptions WHERE name = 'bad';

-- drop_subscription removes the subscription and its members.
SELECT eventsource.drop_subscription('grouped');
SELECT count(*) AS members_left FROM eventsource.subscription_members WHERE subscription_name = 'grouped';
SELECT name FROM eventsource.subscriptions ORDER BY name;

-- A subscription belongs to a role: others may not poll or acknowledge it; an owner must be a role.
CREATE ROLE subscription_owner IN ROLE eventsource_reader;
CREATE ROLE subscription_stranger IN ROLE eventsource_reader;
SELECT eventsource.create_subscription('owned', owner => 'subscription_owner');
SELECT eventsource.create_subscription('ownerless', owner => '-');
SELECT eventsource.set_subscription_owner('owned', '-');
SELECT eventsource.set_subscription_owner('no-such-subscription', 'subscription_owner');
SET ROLE subscription_stranger;
SELECT count(*) FROM eventsource.poll('owned');
SELECT eventsource.ack('owned', eventsource.checkpoint('1', 1));
RESET ROLE;
SET ROLE subscription_owner;
SELECT count(*) > 0 AS polled_by_its_owner FROM eventsource.poll('owned');
RESET ROLE;
SELECT eventsource.drop_subscription('owned');
DROP ROLE subscription_owner, subscription_stranger;
