-- subscriptions.sql: durable subscriptions: create, poll, ack, leases, consumer groups, the status
-- view, drop, and every error path (each leaves the subscriptions unchanged).
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default
-- A consumer acknowledges the last event of its batch with the lease poll returned: ack_batch does
-- that for the batch poll delivered last to the member (its lease is in subscription_members).
CREATE FUNCTION pg_temp.ack_batch(subscription text, member integer DEFAULT 0) RETURNS void LANGUAGE sql AS $$
    SELECT eventsource.ack(subscription, m.delivered_through, member, m.lease)
      FROM eventsource.subscription_members m
     WHERE m.subscription_name = subscription AND m.consumer_group_member = member
$$;
-- The SQLSTATE, message, detail and hint of the error a statement raises, with what differs from
-- run to run (lease tokens, transaction ids, times) replaced.
CREATE FUNCTION pg_temp.error_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text;
    message text;
    detail text;
    hint text;
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
                            hint = PG_EXCEPTION_HINT;
    RETURN regexp_replace(regexp_replace(regexp_replace(
               format(E'%s: %s\nDETAIL:  %s\nHINT:  %s', state, message, detail, hint),
               '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<lease>', 'g'),
               '\(\d+,(\d+)\)', '(<xid>,\1)', 'g'),
               'ended at [^\n]+\.\n', E'ended at <time>.\n');
END
$$;

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
SELECT pg_temp.ack_batch('audit');
SELECT stream_id, stream_version, event_type FROM eventsource.poll('audit', 3);
SELECT pg_temp.ack_batch('audit');
SELECT count(*) AS caught_up FROM eventsource.poll('audit');
SELECT name, leased, events_behind, seconds_behind FROM eventsource.subscription_status WHERE name = 'audit';
-- A caught-up poll takes no lease: new events arrive at the next poll.
SELECT eventsource.append('order-3', 'OrderPlaced', '{}');
SELECT stream_id FROM eventsource.poll('audit');
SELECT pg_temp.ack_batch('audit');
-- A batch is acknowledged once: a re-ack, or an ack of an earlier checkpoint, is 55006, and the
-- checkpoint never moves back.
SELECT pg_temp.error_of($$SELECT pg_temp.ack_batch('audit')$$);
SELECT pg_temp.error_of($$SELECT eventsource.ack('audit', (SELECT checkpoint FROM eventsource.read_all(max_count => 1)), 0, lease)
                            FROM eventsource.subscription_members WHERE subscription_name = 'audit'$$);
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

-- A late ack: the first consumer's lease ran out, so its ack fails (55006) and the work it did in
-- the same transaction rolls back with it; once a second consumer has polled the batch, the first's
-- lease is superseded, and its ack leaves the second's lease alone.
SELECT eventsource.create_subscription('late');
CREATE TEMP TABLE work (consumer text, event_id uuid);
CREATE TEMP TABLE first_batch AS SELECT * FROM eventsource.poll('late', 2, lease_seconds => 1);
SELECT count(*) AS first_consumer, count(DISTINCT lease) AS leases FROM first_batch;
SELECT pg_sleep(1.1);
SELECT pg_temp.error_of($$SELECT eventsource.ack('late', checkpoint, 0, lease) FROM first_batch ORDER BY checkpoint DESC LIMIT 1$$);
CREATE TEMP TABLE second_batch AS SELECT * FROM eventsource.poll('late', 4);
SELECT count(*) AS second_consumer, count(*) FILTER (WHERE event_id IN (SELECT event_id FROM first_batch)) AS redelivered,
       bool_and(lease <> (SELECT lease FROM first_batch LIMIT 1)) AS new_lease FROM second_batch;
SELECT pg_temp.error_of($$SELECT eventsource.ack('late', checkpoint, 0, lease) FROM first_batch ORDER BY checkpoint DESC LIMIT 1$$);
\set VERBOSITY terse
BEGIN;
INSERT INTO work SELECT 'first', event_id FROM first_batch;
SELECT eventsource.ack('late', checkpoint, 0, lease) FROM first_batch ORDER BY checkpoint DESC LIMIT 1;
COMMIT;
\set VERBOSITY default
SELECT count(*) AS first_consumers_work FROM work;
SELECT count(*) AS third_consumer FROM eventsource.poll('late');
SELECT leased, checkpoint IS NULL AS nothing_acknowledged, events_behind FROM eventsource.subscription_status WHERE name = 'late';
-- The second consumer acknowledges part of its batch, then the rest: the lease holds until the end.
BEGIN;
INSERT INTO work SELECT 'second', event_id FROM second_batch;
SELECT eventsource.ack('late', checkpoint, 0, lease) FROM second_batch ORDER BY checkpoint LIMIT 1 OFFSET 1;
COMMIT;
SELECT leased, events_behind FROM eventsource.subscription_status WHERE name = 'late';
SELECT eventsource.ack('late', checkpoint, 0, lease) FROM second_batch ORDER BY checkpoint DESC LIMIT 1;
SELECT leased, events_behind FROM eventsource.subscription_status WHERE name = 'late';
SELECT consumer, count(*) AS effects FROM work GROUP BY consumer;

-- A lease is timed by the clock, not by the start of the transaction: in a transaction that outlives
-- it, subscription_status shows it ended, and a poll gets the batch again.
SELECT eventsource.create_subscription('clock');
BEGIN;
SELECT count(*) AS polled FROM eventsource.poll('clock', 1, lease_seconds => 1);
SELECT leased FROM eventsource.subscription_status WHERE name = 'clock';
SELECT pg_sleep(1.1);
SELECT leased FROM eventsource.subscription_status WHERE name = 'clock';
SELECT count(*) AS polled_again FROM eventsource.poll('clock', 1, lease_seconds => 1);
ROLLBACK;
SELECT eventsource.drop_subscription('clock');

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
-- events_behind counts, per member, exactly the events poll delivered to it (the log's rules are
-- written once), as subscription_status shows; and a filter of another category or type none.
SELECT member, count(*) AS delivered,
       (SELECT b.events_behind FROM eventsource.events_behind(NULL, NULL, NULL, 3, member) AS b) AS counted
  FROM delivered GROUP BY member ORDER BY member;
SELECT bool_and(s.events_behind = (SELECT count(*) FROM delivered d WHERE d.member = s.consumer_group_member))
           AS status_counts_what_poll_delivers
  FROM eventsource.subscription_status s WHERE s.name = 'grouped';
SELECT (SELECT events_behind FROM eventsource.events_behind(
            (SELECT checkpoint FROM delivered ORDER BY checkpoint DESC LIMIT 1), 'order', ARRAY['OrderPlaced']))
           AS behind_the_newest,
       (SELECT events_behind FROM eventsource.events_behind(NULL, 'nosuchcategory', NULL)) AS other_category,
       (SELECT events_behind FROM eventsource.events_behind(NULL, 'order', ARRAY['Other'])) AS other_type,
       (SELECT oldest_recorded_at IS NULL FROM eventsource.events_behind(NULL, 'nosuchcategory', NULL)) AS no_oldest;
-- Bad filters are errors.
SELECT * FROM eventsource.events_behind(NULL, NULL, NULL, 0, 0);
SELECT * FROM eventsource.events_behind(NULL, NULL, NULL, 1001, 0);
SELECT * FROM eventsource.events_behind(NULL, NULL, NULL, 3, 3);
SELECT * FROM eventsource.events_behind(NULL, NULL, NULL, 3, -1);
SELECT * FROM eventsource.events_behind(NULL, NULL, NULL, NULL, 0);
SELECT * FROM eventsource.events_behind(NULL, NULL, '{}');
SELECT * FROM eventsource.events_behind(NULL, NULL, ARRAY[NULL::text]);

-- Errors: each one changes nothing.
SELECT eventsource.create_subscription('fresh');
SELECT eventsource.append('order-99', 'OrderPlaced', '{}');
SELECT stream_id FROM eventsource.poll('fresh', 1);
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
SELECT eventsource.ack('nobody', '(1,1)', 0, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
SELECT eventsource.ack('audit', NULL, 0, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
-- The call of before 0.7.0, without the lease: 22004.
SELECT eventsource.ack('fresh', checkpoint) FROM eventsource.read_all(max_count => 1);
SELECT eventsource.ack('fresh', checkpoint, 0, NULL) FROM eventsource.read_all(max_count => 1);
-- A lease the member does not hold: 55006.
SELECT pg_temp.error_of($$SELECT eventsource.ack('fresh', checkpoint, 0, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11') FROM eventsource.read_all(max_count => 1)$$);
-- With the lease: an ack beyond what poll delivered would skip events nobody received; a checkpoint
-- that names no event, or an event the subscription does not deliver ('billing' gets the OrderPaid
-- of category order), is 22023.
SELECT pg_temp.error_of($$SELECT eventsource.ack('fresh', e.checkpoint, 0, m.lease) FROM eventsource.read_all() e, eventsource.subscription_members m WHERE e.stream_id = 'order-99' AND m.subscription_name = 'fresh'$$);
SELECT pg_temp.error_of($$SELECT eventsource.ack('fresh', '(1,1)', 0, lease) FROM eventsource.subscription_members WHERE subscription_name = 'fresh'$$);
SELECT pg_temp.error_of($$SELECT eventsource.ack('billing', e.checkpoint, 0, m.lease) FROM eventsource.read_all() e, eventsource.subscription_members m WHERE e.stream_id = 'order-2' AND m.subscription_name = 'billing'$$);
SELECT eventsource.ack('grouped', (SELECT checkpoint FROM eventsource.read_all(max_count => 1)), 3, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
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
SELECT eventsource.ack('owned', eventsource.checkpoint('1', 1), 0, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
RESET ROLE;
SET ROLE subscription_owner;
SELECT count(*) > 0 AS polled_by_its_owner FROM eventsource.poll('owned');
RESET ROLE;
SELECT eventsource.drop_subscription('owned');
DROP ROLE subscription_owner, subscription_stranger;

-- events_behind has a kept plan for each shape of its filter (category or not, event types or not,
-- a member of a group of more than one or not): each counts what the log's rules, written out
-- here, take, after every event of a log of two categories and two types, and in a second call
-- of the same shape with other values (the kept plan, not one made for the first values).
SELECT count(eventsource.append(category || '-' || n, event_type, '{}'))
  FROM generate_series(1, 12) AS n, (VALUES ('order'), ('invoice')) AS c(category),
       (VALUES ('OrderPlaced'), ('Shipped')) AS t(event_type);
CREATE TEMP TABLE shaped_filters (category text, event_types text[], group_size int, member int);
INSERT INTO shaped_filters
SELECT category, event_types, group_size, member
  FROM (VALUES (NULL), ('order'), ('invoice')) AS c(category),
       (VALUES (NULL::text[]), (ARRAY['Shipped']), (ARRAY['OrderPlaced', 'Other'])) AS t(event_types),
       (VALUES (1, 0), (3, 0), (3, 2), (7, 5)) AS g(group_size, member);
WITH checkpoints AS (
       SELECT NULL::eventsource.checkpoint AS after
       UNION ALL
       SELECT eventsource.checkpoint(e.transaction_id, e.global_position) FROM eventsource.events e)
SELECT count(*) AS cases, count(DISTINCT (f.category IS NULL, f.event_types IS NULL, f.group_size = 1)) AS shapes,
       count(*) FILTER (WHERE b.events_behind > 0) AS cases_behind,
       count(*) FILTER (WHERE b.events_behind IS DISTINCT FROM written_out.events
                           OR b.oldest_recorded_at IS DISTINCT FROM written_out.oldest) AS miscounted
  FROM checkpoints c CROSS JOIN shaped_filters f
 CROSS JOIN LATERAL eventsource.events_behind(c.after, f.category, f.event_types, f.group_size, f.member) AS b
 CROSS JOIN LATERAL (
       SELECT count(*) AS events, min(e.recorded_at) AS oldest
         FROM eventsource.events e
        WHERE (c.after IS NULL OR c.after OPERATOR(eventsource.<) eventsource.checkpoint(e.transaction_id, e.global_position))
          AND e.transaction_id < eventsource.log_horizon()
          AND (f.category IS NULL OR split_part(e.stream_id, '-', 1) = f.category)
          AND (f.event_types IS NULL OR e.event_type = ANY (f.event_types))
          AND (f.group_size = 1 OR eventsource.consumer_group_member(e.stream_id, f.group_size) = f.member)) AS written_out;
