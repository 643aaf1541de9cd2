-- search_path.sql: no statement the extension runs depends on the search path. Schema shadow holds
-- operators, functions, aggregates, types and relations named like those of pg_catalog and
-- eventsource that the extension uses, each raising an error when used; with shadow first in the
-- search path, every public function works and none of them is used. The SECURITY DEFINER
-- functions pin their own search_path; the others (the reads, stream_version, load_stream, ...)
-- run their statements under the caller's, append and append_events under the one of the
-- backend's first append (append.c).
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY terse

CREATE SCHEMA shadow;

-- Operators, for the type pairs the extension's statements compare, add and concatenate. A row
-- comparison cannot be shadowed as a whole, but the column comparisons it is made of can.
DO $$
DECLARE
    o record;
    n integer := 0;
BEGIN
    FOR o IN
        SELECT s.symbol, t.leftarg, t.rightarg, 'boolean' AS result
          FROM unnest(ARRAY['=', '<>', '<', '<=', '>', '>=']) AS s(symbol),
               (VALUES ('text', 'text'), ('name', 'name'), ('"char"', '"char"'), ('bigint', 'bigint'),
                       ('integer', 'integer'), ('bigint', 'integer'), ('integer', 'bigint'),
                       ('xid8', 'xid8'), ('uuid', 'uuid'), ('boolean', 'boolean'), ('oid', 'oid'),
                       ('jsonb', 'jsonb'), ('timestamptz', 'timestamptz'), ('interval', 'interval'),
                       ('eventsource.checkpoint', 'eventsource.checkpoint')) AS t(leftarg, rightarg)
        UNION ALL
        VALUES ('+', 'bigint', 'bigint', 'bigint'), ('+', 'bigint', 'integer', 'bigint'),
               ('+', 'integer', 'bigint', 'bigint'), ('+', 'integer', 'integer', 'integer'),
               ('+', 'timestamptz', 'interval', 'timestamptz'),
               ('-', 'bigint', 'bigint', 'bigint'), ('-', 'bigint', 'integer', 'bigint'),
               ('-', 'integer', 'bigint', 'bigint'), ('-', 'integer', 'integer', 'integer'),
               ('-', 'timestamptz', 'interval', 'timestamptz'), ('-', 'timestamptz', 'timestamptz', 'interval'),
               ('*', 'numeric', 'integer', 'numeric'), ('*', 'double precision', 'integer', 'double precision'),
               ('||', 'text', 'text', 'text'), ('~~', 'text', 'text', 'boolean'),
               ('->>', 'jsonb', 'text', 'text'), ('->>', 'jsonb', 'integer', 'text'),
               ('->', 'jsonb', 'text', 'jsonb'), ('?', 'jsonb', 'text', 'boolean')
    LOOP
        n := n + 1;
        EXECUTE format('CREATE FUNCTION shadow.operator_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS %L',
                       n, o.leftarg, o.rightarg, o.result,
                       format('BEGIN RAISE EXCEPTION ''shadow operator %% called'', %L; END',
                              format('%s %s %s', o.leftarg, o.symbol, o.rightarg)));
        EXECUTE format('CREATE OPERATOR shadow.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = shadow.operator_%s)',
                       o.symbol, o.leftarg, o.rightarg, n);
    END LOOP;
END
$$;

-- Functions of pg_catalog and of eventsource the extension calls.
DO $$
DECLARE
    f record;
BEGIN
    FOR f IN
        VALUES ('now()', 'timestamptz'), ('split_part(text, text, integer)', 'text'),
               ('pg_snapshot_xmin(pg_snapshot)', 'xid8'), ('pg_current_snapshot()', 'pg_snapshot'),
               ('pg_current_xact_id()', 'xid8'), ('unnest(anyarray)', 'SETOF anyelement'),
               ('generate_series(integer, integer)', 'SETOF integer'),
               ('make_interval(years integer DEFAULT 0, months integer DEFAULT 0, weeks integer DEFAULT 0,'
                ' days integer DEFAULT 0, hours integer DEFAULT 0, mins integer DEFAULT 0,'
                ' secs double precision DEFAULT 0)', 'interval'),
               ('ceil(numeric)', 'numeric'), ('ceil(double precision)', 'double precision'),
               ('pg_notify(text, text)', 'void'), ('jsonb_strip_nulls(jsonb)', 'jsonb'),
               ('gen_random_uuid()', 'uuid'), ('nextval(regclass)', 'bigint'), ('xid(xid8)', 'xid'),
               ('pg_total_relation_size(regclass)', 'bigint'),
               ('checkpoint(xid8, bigint)', 'eventsource.checkpoint'),
               ('checkpoint_transaction_id(eventsource.checkpoint)', 'xid8'),
               ('checkpoint_global_position(eventsource.checkpoint)', 'bigint'),
               ('first_visible_version(eventsource.streams)', 'bigint'),
               ('consumer_group_member(text, integer)', 'integer'),
               ('category(text)', 'text'), ('stream_metadata(text)', 'jsonb')
    LOOP
        EXECUTE format('CREATE FUNCTION shadow.%s RETURNS %s LANGUAGE plpgsql AS %L',
                       f.column1, f.column2,
                       format('BEGIN RAISE EXCEPTION ''shadow function %% called'', %L; END',
                              split_part(f.column1, '(', 1)));
    END LOOP;
END
$$;

-- Aggregates: both functions raise, so an aggregate over no rows is caught too.
CREATE FUNCTION shadow.aggregate_called(state text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'shadow aggregate % called', state; END$$;
CREATE FUNCTION shadow.aggregate_step(state text, value anyelement) RETURNS text LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'shadow aggregate % called', state; END$$;
CREATE AGGREGATE shadow.count(*) (
    SFUNC = shadow.aggregate_called, STYPE = text, FINALFUNC = shadow.aggregate_called, INITCOND = 'count');
CREATE AGGREGATE shadow.min(timestamptz) (
    SFUNC = shadow.aggregate_step, STYPE = text, FINALFUNC = shadow.aggregate_called, INITCOND = 'min');
CREATE AGGREGATE shadow.max(timestamptz) (
    SFUNC = shadow.aggregate_step, STYPE = text, FINALFUNC = shadow.aggregate_called, INITCOND = 'max');
CREATE AGGREGATE shadow.max(bigint) (
    SFUNC = shadow.aggregate_step, STYPE = text, FINALFUNC = shadow.aggregate_called, INITCOND = 'max');

-- Types: a domain whose check raises, for each type the extension names in a cast. int8, int4,
-- bool and interval are shadowed too, although bigint, integer, boolean and interval are keywords
-- that always name pg_catalog's types.
CREATE FUNCTION shadow.type_used(name text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'shadow type % used', name; END$$;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['text', 'name', 'uuid', 'jsonb', 'xid8', 'oid', 'regclass', 'regprocedure',
                             'timestamptz', 'int8', 'int4', 'bool', 'interval']
    LOOP
        EXECUTE format('CREATE DOMAIN shadow.%I AS pg_catalog.%I CHECK (shadow.type_used(%L))', t, t, t);
    END LOOP;
END
$$;

-- Relations: a view that raises when it is read, for each of the extension's tables.
CREATE FUNCTION shadow.relation_used(name text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'shadow relation % used', name; END$$;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['events', 'streams', 'snapshots', 'subscriptions', 'subscription_members',
                             'projections', 'projection_dead_letters']
    LOOP
        EXECUTE format('CREATE VIEW shadow.%I AS SELECT * FROM eventsource.%I WHERE shadow.relation_used(%L)', r, r, r);
    END LOOP;
END
$$;

-- The projections' read model and handlers, which pin their own search_path.
CREATE TABLE public.order_totals (order_id text PRIMARY KEY, total numeric NOT NULL, events integer NOT NULL);
CREATE FUNCTION public.project_total(e eventsource.event) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.order_totals AS t VALUES (e.stream_id, COALESCE((e.data->>'total')::numeric, 0), 1)
    ON CONFLICT (order_id) DO UPDATE
       SET total = t.total + COALESCE((e.data->>'total')::numeric, 0), events = t.events + 1;
END
$$;
CREATE FUNCTION public.reset_totals() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS 'DELETE FROM public.order_totals';
CREATE FUNCTION public.project_nothing(e eventsource.event) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS 'SELECT';

-- ---------------------------------------------------------------------------------------------
-- shadow, then pg_catalog
-- ---------------------------------------------------------------------------------------------
SET search_path = shadow, pg_catalog, public;

-- Appends: any version, exact versions, an existing stream, new streams; event ids and their
-- retries; a batch with and without ids; a version conflict.
SELECT eventsource.append('order-1', 'Placed', '{"total": 10}');
SELECT eventsource.append('order-1', 'Paid', '{"amount": 10}', '{"user": "ann"}', expected_version => 1);
SELECT eventsource.append('order-1', 'Packed', '{}', expected_version => -1,
                          event_id => '00000000-0000-4000-8000-000000000001');
SELECT eventsource.append('order-1', 'Packed', '{}', expected_version => -1,
                          event_id => '00000000-0000-4000-8000-000000000001');
SELECT eventsource.append('order-2', 'Placed', '{"total": 5}', expected_version => 0);
SELECT * FROM eventsource.append_events('order-2', '[
  {"type": "Paid", "data": {"amount": 5}},
  {"type": "Shipped", "data": {}, "metadata": {"carrier": "post"}}]', expected_version => 1);
SELECT * FROM eventsource.append_events('cart-1', '[
  {"type": "ItemAdded", "data": {"sku": "A"}, "id": "00000000-0000-4000-8000-000000000002"},
  {"type": "ItemAdded", "data": {"sku": "B"}, "id": "00000000-0000-4000-8000-000000000003"}]', expected_version => 0);
SELECT * FROM eventsource.append_events('cart-1', '[
  {"type": "ItemAdded", "data": {"sku": "A"}, "id": "00000000-0000-4000-8000-000000000002"},
  {"type": "ItemAdded", "data": {"sku": "B"}, "id": "00000000-0000-4000-8000-000000000003"}]', expected_version => 0);
SELECT * FROM eventsource.append_events('cart-1', '[{"type": "ItemAdded", "data": {"sku": "C"}}]');
SELECT eventsource.append('order-2', 'Placed', '{}', expected_version => 1);

-- Reads: stream versions, a stream forward and backward, the log and a category after a checkpoint,
-- of some event types.
SELECT eventsource.stream_version('order-1') AS order_1, eventsource.stream_version('order-9') AS order_9;
SELECT stream_id, stream_version, event_type, data, metadata FROM eventsource.read_stream('order-1');
SELECT stream_version, event_type FROM eventsource.read_stream('order-1', direction => 'backward');
SELECT stream_version, event_type FROM eventsource.read_stream('order-1', 2, 1);
SELECT stream_version, event_type FROM eventsource.read_stream('order-1', 2, 1, 'backward');
SELECT global_position, stream_id, stream_version, event_type FROM eventsource.read_all();
SELECT global_position, stream_id, event_type
  FROM eventsource.read_all((SELECT checkpoint FROM eventsource.read_all(max_count => 2) ORDER BY checkpoint DESC LIMIT 1), 3);
SELECT global_position, stream_id, event_type FROM eventsource.read_all(category => 'order', event_types => ARRAY['Placed', 'Shipped']);
SELECT global_position, stream_id, event_type FROM eventsource.read_category('cart');
SELECT global_position, stream_id, event_type
  FROM eventsource.read_category('order', (SELECT checkpoint FROM eventsource.read_category('order', max_count => 3) ORDER BY checkpoint DESC LIMIT 1),
                                 event_types => ARRAY['Paid', 'Shipped']);
SELECT eventsource.category('order-1'), eventsource.consumer_group_member('order-1', 2) IS NOT NULL AS member;

-- Snapshots: saves (the retention of the newest three runs on each), loads, deletes.
SELECT eventsource.save_snapshot('order-1', 1, '{"total": 10}');
SELECT eventsource.save_snapshot('order-1', 2, '{"total": 10, "paid": true}');
SELECT eventsource.save_snapshot('order-1', 2, '{"total": 10, "paid": true}');
SELECT eventsource.save_snapshot('order-1', 3, '{"total": 10, "paid": true, "packed": true}');
SELECT eventsource.save_snapshot('order-1', 3, '{"v": 2}', schema_version => 2);
SELECT eventsource.save_snapshot('order-2', 1, '{"total": 5}');
SELECT eventsource.save_snapshot('order-2', 9, '{}');
SELECT stream_id, stream_version, schema_version, state FROM eventsource.load_snapshot('order-1');
SELECT stream_version, schema_version, state FROM eventsource.load_snapshot('order-1', 2, 1);
SELECT stream_version, schema_version, state FROM eventsource.load_snapshot('order-9');
SELECT kind, stream_version, schema_version, event_type, data FROM eventsource.load_stream('order-1', schema_version => 1);
SELECT kind, stream_version, schema_version, event_type, data FROM eventsource.load_stream('order-2', 2);
SELECT kind, stream_version, event_type FROM eventsource.load_stream('cart-1');
SELECT eventsource.delete_snapshots('order-1', 2);
SELECT stream_id, stream_version, schema_version FROM eventsource.snapshots ORDER BY 1, 2, 3;

-- Subscriptions: a filtered one with a consumer group of two, one of everything; poll, ack, status.
SELECT eventsource.create_subscription('orders', category => 'order', event_types => ARRAY['Placed', 'Paid'],
                                       consumer_group_size => 2);
SELECT eventsource.create_subscription('everything');
SELECT eventsource.create_subscription('from-end', start_from => 'end');
SELECT stream_id, stream_version, event_type FROM eventsource.poll('orders', consumer_group_member => 0)
UNION ALL
SELECT stream_id, stream_version, event_type FROM eventsource.poll('orders', consumer_group_member => 1)
 ORDER BY 1, 2;
SELECT global_position, stream_id, event_type FROM eventsource.poll('everything', 3);
SELECT eventsource.ack('everything', checkpoint, 0, (SELECT lease FROM eventsource.subscription_members WHERE subscription_name OPERATOR(pg_catalog.=) 'everything'))
  FROM eventsource.read_all(max_count => 3) ORDER BY checkpoint DESC LIMIT 1;
SELECT global_position, stream_id, event_type FROM eventsource.poll('everything', 2, lease_seconds => 1);
SELECT name, consumer_group_member, consumer_group_size, checkpoint IS NOT NULL AS acknowledged,
       delivered_through IS NOT NULL AS delivered, events_behind
  FROM eventsource.subscription_status ORDER BY name, consumer_group_member;
SELECT eventsource.drop_subscription('from-end');
SELECT eventsource.drop_subscription('everything');

-- The stream lifecycle: retention settings (max_count, max_age, truncate_before) honoured by reads,
-- a delete and an append after it, a tombstone and an append rejected by it, scavenge (held back
-- for subscription orders).
SELECT eventsource.set_stream_metadata('order-1', '{"max_count": 2}');
SELECT eventsource.stream_metadata('order-1');
SELECT stream_version, event_type FROM eventsource.read_stream('order-1');
SELECT stream_version, event_type FROM eventsource.read_stream('order-1', direction => 'backward');
SELECT kind, stream_version, schema_version, event_type FROM eventsource.load_stream('order-1');
SELECT eventsource.set_stream_metadata('order-2', '{"max_age": "1 day"}');
SELECT eventsource.stream_metadata('order-2');
SELECT stream_version, event_type FROM eventsource.read_stream('order-2');
SELECT kind, stream_version, event_type FROM eventsource.load_stream('order-2');
SELECT eventsource.set_stream_metadata('cart-1', '{"truncate_before": 2}');
SELECT stream_version, event_type FROM eventsource.read_stream('cart-1');
SELECT eventsource.delete_stream('cart-1');
SELECT stream_version, event_type FROM eventsource.read_stream('cart-1');
SELECT eventsource.append('cart-1', 'ItemAdded', '{"sku": "D"}');
SELECT stream_version, event_type FROM eventsource.read_stream('cart-1');
SELECT eventsource.tombstone_stream('cart-1', expected_version => 4);
SELECT eventsource.append('cart-1', 'ItemAdded', '{"sku": "E"}');
SELECT eventsource.tombstone_stream('basket-1');
SELECT eventsource.scavenge();
CALL eventsource.scavenge_all();
SELECT stream_id, state, stream_version, first_visible_version, visible_events, events_to_scavenge
  FROM eventsource.stream_status ORDER BY stream_id;
SELECT stream_version, event_type, data FROM eventsource.read_stream('$streams');

-- Statistics and status views.
SELECT appends IS NOT NULL AS counted FROM eventsource.statistics();
SELECT streams, head_global_position, snapshots, appends IS NOT NULL AS counted FROM eventsource.store_statistics;
SELECT category, streams, deleted_streams, tombstoned_streams, events FROM eventsource.category_statistics ORDER BY category;
SELECT event_type, events, streams FROM eventsource.event_type_statistics ORDER BY event_type;
SELECT category, schema_version, snapshots, streams FROM eventsource.snapshot_statistics ORDER BY category, schema_version;
SELECT events_held_back IS NOT NULL AS shown FROM eventsource.visibility_horizon;
SELECT eventsource.log_horizon() IS NOT NULL AS shown;
SELECT pg_catalog.count(*) IS NOT NULL AS shown FROM eventsource.notifier_status();
SELECT eventsource.reset_statistics();

-- Projections: inline (in the appending transaction) and async (by the notifier; this database has
-- none, so it stays behind); appends, a rebuild of each, pause and resume, status.
SELECT eventsource.create_projection('totals', 'public.project_total(eventsource.event)', category => 'order',
                                     reset_handler => 'public.reset_totals()');
SELECT eventsource.create_projection('totals-async', 'public.project_nothing(eventsource.event)',
                                     event_types => ARRAY['Placed'], mode => 'async', on_failure => 'dead_letter');
SELECT eventsource.append('order-3', 'Placed', '{"total": 7}');
SELECT * FROM eventsource.append_events('order-3', '[{"type": "Paid", "data": {"total": 1}}, {"type": "Shipped", "data": {}}]');
SELECT order_id, total, events FROM public.order_totals ORDER BY order_id;
SELECT eventsource.rebuild_projection('totals');
SELECT order_id, total, events FROM public.order_totals ORDER BY order_id;
SELECT eventsource.rebuild_projection('totals-async');
SELECT eventsource.pause_projection('totals');
SELECT eventsource.append('order-3', 'Delivered', '{}');
SELECT eventsource.resume_projection('totals');
SELECT name, mode, status, events_processed, events_behind, dead_letters, checkpoint IS NULL AS from_start
  FROM eventsource.projection_status ORDER BY name;
SELECT eventsource.drop_projection('totals-async');

-- ---------------------------------------------------------------------------------------------
-- shadow, then eventsource, then pg_catalog: what eventsource names without its schema would be
-- shadow's too
-- ---------------------------------------------------------------------------------------------
SET search_path = shadow, eventsource, pg_catalog, public;

SELECT eventsource.append('invoice-1', 'Issued', '{"total": 3}');
SELECT eventsource.append('invoice-1', 'Sent', '{}', expected_version => 1,
                          event_id => '00000000-0000-4000-8000-000000000011');
SELECT eventsource.append('invoice-1', 'Sent', '{}', expected_version => 1,
                          event_id => '00000000-0000-4000-8000-000000000011');
SELECT * FROM eventsource.append_events('invoice-1', '[
  {"type": "Paid", "data": {"total": 3}, "id": "00000000-0000-4000-8000-000000000012"},
  {"type": "Closed", "data": {}}]', expected_version => 2);
SELECT * FROM eventsource.append_events('invoice-2', '[{"type": "Issued", "data": {}}, {"type": "Voided", "data": {}}]', 0);
SELECT eventsource.append('invoice-2', 'Issued', '{}', expected_version => 0);
SELECT eventsource.stream_version('invoice-1');
SELECT stream_version, event_type FROM eventsource.read_stream('invoice-1');
SELECT stream_version, event_type FROM eventsource.read_stream('invoice-1', 3, 2, 'backward');
SELECT global_position, stream_id, event_type
  FROM eventsource.read_all((SELECT checkpoint FROM eventsource.read_stream('invoice-1', 1, 1)), 100);
SELECT global_position, stream_id, event_type FROM eventsource.read_all(category => 'invoice', event_types => ARRAY['Issued']);
SELECT global_position, stream_id, event_type FROM eventsource.read_category('invoice', max_count => 2);
SELECT eventsource.save_snapshot('invoice-1', 2, '{"sent": true}');
SELECT stream_version, state FROM eventsource.load_snapshot('invoice-1');
SELECT kind, stream_version, event_type, data FROM eventsource.load_stream('invoice-1');
SELECT eventsource.delete_snapshots('invoice-1');
SELECT eventsource.create_subscription('invoices', category => 'invoice');
SELECT stream_id, stream_version, event_type FROM eventsource.poll('invoices', 3);
SELECT eventsource.ack('invoices', checkpoint, 0, (SELECT lease FROM eventsource.subscription_members WHERE subscription_name OPERATOR(pg_catalog.=) 'invoices'))
  FROM eventsource.read_category('invoice', max_count => 3) ORDER BY checkpoint DESC LIMIT 1;
SELECT name, checkpoint IS NOT NULL AS acknowledged, events_behind FROM eventsource.subscription_status WHERE name OPERATOR(pg_catalog.=) 'invoices';
SELECT eventsource.set_stream_metadata('invoice-1', '{"max_count": 3, "max_age": 86400}');
SELECT eventsource.stream_metadata('invoice-1');
SELECT stream_version, event_type FROM eventsource.read_stream('invoice-1');
SELECT kind, stream_version, event_type FROM eventsource.load_stream('invoice-1');
SELECT eventsource.delete_stream('invoice-2', expected_version => 2);
SELECT eventsource.tombstone_stream('invoice-2');
SELECT eventsource.append('invoice-2', 'Issued', '{}');
SELECT eventsource.drop_subscription('invoices');
SELECT eventsource.scavenge(10);
SELECT stream_id, state, first_visible_version, events_to_scavenge
  FROM eventsource.stream_status WHERE category OPERATOR(pg_catalog.=) 'invoice' ORDER BY stream_id;
SELECT eventsource.append('order-4', 'Placed', '{"total": 2}');
SELECT order_id, total, events FROM public.order_totals ORDER BY order_id;
SELECT eventsource.rebuild_projection('totals');
SELECT name, status, events_processed FROM eventsource.projection_status;
SELECT eventsource.drop_projection('totals');
SELECT streams, snapshots FROM eventsource.store_statistics;
SELECT appends OPERATOR(pg_catalog.>) 0 AS appended FROM eventsource.statistics();
-- Many streams in one call: written, checked, retried with ids, and a conflict.
SELECT * FROM eventsource.append_to_streams('[
  {"stream_id": "ledger-1", "expected_version": 0, "events": [{"type": "Opened", "data": {}, "id": "00000000-0000-4000-8000-000000000021"}]},
  {"stream_id": "ledger-2", "events": [{"type": "Opened", "data": {}}, {"type": "Noted", "data": {}}]},
  {"stream_id": "invoice-1", "expected_version": 4}]');
SELECT * FROM eventsource.append_to_streams('[
  {"stream_id": "ledger-1", "expected_version": 0, "events": [{"type": "Opened", "data": {}, "id": "00000000-0000-4000-8000-000000000021"}]}]');
SELECT * FROM eventsource.append_to_streams('[
  {"stream_id": "ledger-2", "expected_version": 2, "events": [{"type": "Noted", "data": {}}]},
  {"stream_id": "ledger-1", "expected_version": 5}]');
-- Tags, a read by query and a conditional append, and its failure.
SELECT eventsource.append('ledger-3', 'Opened', '{}', tags => '{ledger:3}');
SELECT stream_id, event_type, tags FROM eventsource.read_by_query('{"items": [{"tags": ["ledger:3"]}, {"types": ["Noted"]}]}');
SELECT stream_id, stream_version FROM eventsource.append_to_streams(
  '[{"stream_id": "ledger-3", "events": [{"type": "Closed", "data": {}, "tags": ["ledger:3"]}]}]',
  pg_catalog.jsonb_build_object('fail_if_events_match', '{"items": [{"tags": ["ledger:3"]}]}'::pg_catalog.jsonb,
                     'after', (SELECT checkpoint::pg_catalog.text FROM eventsource.read_by_query('{"items": [{"tags": ["ledger:3"]}]}'))));
SELECT stream_id FROM eventsource.append_to_streams(
  '[{"stream_id": "ledger-3", "events": [{"type": "Reopened", "data": {}, "tags": ["ledger:3"]}]}]',
  '{"fail_if_events_match": {"items": [{"types": ["Closed"], "tags": ["ledger:3"]}]}}');
-- A subscription and an inline projection of a query, its lag, and the matcher.
SELECT eventsource.create_subscription('ledger-3-feed', query => '{"items": [{"tags": ["ledger:3"]}]}');
SELECT stream_id, event_type, tags FROM eventsource.poll('ledger-3-feed');
SELECT eventsource.create_projection('ledger-3-count', 'public.project_nothing(eventsource.event)',
                                     query => '{"items": [{"types": ["Opened"], "tags": ["ledger:3"]}]}');
SELECT eventsource.append('ledger-3', 'Opened', '{}', tags => '{ledger:3}');
SELECT eventsource.rebuild_projection('ledger-3-count') AS replayed;
SELECT name, events_behind, query FROM eventsource.subscription_status WHERE name OPERATOR(pg_catalog.=) 'ledger-3-feed';
SELECT eventsource.event_matches_query('Opened', '{ledger:3}', '{"items": [{"tags": ["ledger:3"]}]}');
SELECT eventsource.drop_projection('ledger-3-count');

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA shadow CASCADE;
DROP TABLE public.order_totals;
DROP FUNCTION public.project_total(eventsource.event), public.reset_totals(), public.project_nothing(eventsource.event);
