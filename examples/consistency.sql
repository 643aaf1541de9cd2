-- examples/consistency.sql: decisions that span streams, each read with read_by_query and appended
-- with append_to_streams, conditioned on what it read (a dynamic consistency boundary): a course
-- with a capacity, a stock reservation of several SKUs for one order, and a transfer between two
-- accounts. Run it in a database with the extension:
--
--   createdb dcb_demo && psql -d dcb_demo -c 'CREATE EXTENSION eventsource'
--   psql -d dcb_demo -v ON_ERROR_STOP=1 -f examples/consistency.sql
--
-- Each decision is a function that reads, decides and appends in one call, so a client retries it
-- whole when its condition fails (SE006): something it read about changed meanwhile.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS dcb;

\echo '== 1. A course with a capacity: a student subscribes while it has a place.'
-- The decision reads the course's events (its definition and its subscriptions, tag course:ID)
-- and appends the subscription, tagged with the course and the student, on the condition that
-- no event of the course came after what it read.
CREATE OR REPLACE FUNCTION dcb.subscribe(course text, student text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    query jsonb := jsonb_build_object('items', jsonb_build_array(
        jsonb_build_object('types', '["CourseDefined", "StudentSubscribed"]'::jsonb,
                           'tags', jsonb_build_array('course:' || course))));
    capacity integer;
    subscribed integer;
    last_read eventsource.checkpoint;
BEGIN
    SELECT max((data->>'capacity')::integer) FILTER (WHERE event_type = 'CourseDefined'),
           count(*) FILTER (WHERE event_type = 'StudentSubscribed'),
           (array_agg(checkpoint ORDER BY checkpoint DESC))[1]
      INTO capacity, subscribed, last_read
      FROM eventsource.read_by_query(query, max_count => 100000);
    IF capacity IS NULL THEN
        RETURN 'no such course';
    END IF;
    IF subscribed >= capacity THEN
        RETURN 'full';
    END IF;
    PERFORM eventsource.append_to_streams(
        jsonb_build_array(jsonb_build_object('stream_id', 'student-' || student, 'events', jsonb_build_array(
            jsonb_build_object('type', 'StudentSubscribed', 'data', jsonb_build_object('course', course),
                               'tags', jsonb_build_array('course:' || course, 'student:' || student))))),
        jsonb_build_object('fail_if_events_match', query, 'after', last_read::text));
    RETURN 'subscribed';
END
$$;
SELECT eventsource.append('course-c1', 'CourseDefined', '{"capacity": 2}', tags => '{course:c1}');
-- Each decision in a transaction of its own (in one that wrote already, a read does not see the
-- events of transactions still in progress, its own included, and the condition would fail).
SELECT dcb.subscribe('c1', 's1') AS s1;
SELECT dcb.subscribe('c1', 's2') AS s2;
SELECT dcb.subscribe('c1', 's3') AS s3;
-- The condition at work: a decision made on a read, overtaken by a subscription that committed
-- after it, fails instead of filling the course beyond its capacity.
SELECT eventsource.append('course-c2', 'CourseDefined', '{"capacity": 1}', tags => '{course:c2}');
SELECT set_config('dcb.read_before', checkpoint::text, false) AS read_before
  FROM eventsource.read_by_query('{"items": [{"tags": ["course:c2"]}]}');
SELECT dcb.subscribe('c2', 's1');
DO $$
BEGIN
    PERFORM eventsource.append_to_streams(
        '[{"stream_id": "student-s2", "events": [{"type": "StudentSubscribed", "data": {"course": "c2"}, "tags": ["course:c2", "student:s2"]}]}]',
        jsonb_build_object('fail_if_events_match', '{"items": [{"tags": ["course:c2"]}]}'::jsonb,
                           'after', current_setting('dcb.read_before')));
EXCEPTION WHEN SQLSTATE 'SE006' THEN
    RAISE WARNING 'as expected: %', SQLERRM;
END
$$;

\echo '== 2. Stock of several SKUs reserved for one order, never oversold.'
-- Each SKU's stock is the sum of its StockAdded and StockReserved events (tag sku:ID). An order
-- reserves all its lines or none, on the condition that no stock event of any of its SKUs came
-- after the read.
CREATE OR REPLACE FUNCTION dcb.reserve(order_id text, lines jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    skus text[] := ARRAY(SELECT jsonb_object_keys(lines));
    query jsonb := jsonb_build_object('items',
        (SELECT jsonb_agg(jsonb_build_object('types', '["StockAdded", "StockReserved"]'::jsonb,
                                             'tags', jsonb_build_array('sku:' || sku)))
           FROM unnest(skus) AS sku));
    last_read eventsource.checkpoint;
    short text;
BEGIN
    WITH stock AS (
        SELECT substr(t, 5) AS sku,
               sum(CASE e.event_type WHEN 'StockAdded' THEN 1 ELSE -1 END * (e.data->>'quantity')::integer) AS available
          FROM eventsource.read_by_query(query, max_count => 100000) AS e, unnest(e.tags) AS t
         WHERE t LIKE 'sku:%'
         GROUP BY 1)
    SELECT string_agg(l.key, ', ')
      INTO short
      FROM jsonb_each_text(lines) AS l LEFT JOIN stock s ON s.sku = l.key
     WHERE COALESCE(s.available, 0) < l.value::integer;
    IF short IS NOT NULL THEN
        RETURN 'not enough of ' || short;
    END IF;
    SELECT checkpoint INTO last_read FROM eventsource.read_by_query(query, max_count => 100000)
     ORDER BY checkpoint DESC LIMIT 1;
    PERFORM eventsource.append_to_streams(
        jsonb_build_array(jsonb_build_object('stream_id', 'order-' || order_id, 'expected_version', 0, 'events',
            (SELECT jsonb_agg(jsonb_build_object('type', 'StockReserved',
                                                 'data', jsonb_build_object('quantity', l.value::integer, 'order', order_id),
                                                 'tags', jsonb_build_array('sku:' || l.key, 'order:' || order_id)))
               FROM jsonb_each_text(lines) AS l))),
        jsonb_build_object('fail_if_events_match', query, 'after', last_read::text));
    RETURN 'reserved';
END
$$;
SELECT * FROM eventsource.append_events('warehouse-1', '[
  {"type": "StockAdded", "data": {"quantity": 5}, "tags": ["sku:apple"]},
  {"type": "StockAdded", "data": {"quantity": 2}, "tags": ["sku:pear"]}]');
SELECT dcb.reserve('o1', '{"apple": 3, "pear": 1}') AS o1;
SELECT dcb.reserve('o2', '{"apple": 3, "pear": 1}') AS o2;
SELECT dcb.reserve('o3', '{"apple": 2, "pear": 1}') AS o3;

\echo '== 3. A transfer between two accounts that never overdraws the source.'
-- The balance of an account is read from its stream (tag account:ID on each of its events); the
-- transfer writes both accounts in one call, on the condition that nothing touched the source
-- after the read (credits to the target do not matter to the decision).
CREATE OR REPLACE FUNCTION dcb.transfer(source text, target text, amount integer) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    query jsonb := jsonb_build_object('items', jsonb_build_array(
        jsonb_build_object('tags', jsonb_build_array('account:' || source))));
    balance integer;
    last_read eventsource.checkpoint;
BEGIN
    SELECT COALESCE(sum(CASE event_type WHEN 'Debited' THEN -1 ELSE 1 END * (data->>'amount')::integer), 0),
           (array_agg(checkpoint ORDER BY checkpoint DESC))[1]
      INTO balance, last_read
      FROM eventsource.read_by_query(query, max_count => 100000);
    IF balance < amount THEN
        RETURN 'insufficient funds: ' || balance;
    END IF;
    PERFORM eventsource.append_to_streams(
        jsonb_build_array(
            jsonb_build_object('stream_id', 'account-' || source, 'events', jsonb_build_array(
                jsonb_build_object('type', 'Debited', 'data', jsonb_build_object('amount', amount, 'to', target),
                                   'tags', jsonb_build_array('account:' || source)))),
            jsonb_build_object('stream_id', 'account-' || target, 'events', jsonb_build_array(
                jsonb_build_object('type', 'Credited', 'data', jsonb_build_object('amount', amount, 'from', source),
                                   'tags', jsonb_build_array('account:' || target))))),
        jsonb_build_object('fail_if_events_match', query, 'after', last_read::text));
    RETURN 'transferred';
END
$$;
SELECT eventsource.append('account-a', 'Credited', '{"amount": 100}', tags => '{account:a}');
SELECT dcb.transfer('a', 'b', 60) AS first;
SELECT dcb.transfer('a', 'b', 60) AS second;
SELECT dcb.transfer('b', 'a', 10) AS back;

\echo '== The log: every decision, each in one transaction.'
SELECT stream_id, event_type, data, tags FROM eventsource.read_all() ORDER BY checkpoint;
