-- examples/projections.sql: a psql walk-through of eventsource projections: read models kept up to
-- date by a handler function, inline (in the appending transaction) or async (by the background
-- worker). Two read models of a shop:
--
--   shop.order_summary   one row per order: status, item count, total, last version
--                        kept by the inline projection 'order-summary' (category order)
--   shop.daily_revenue   one row per day: orders paid, revenue
--                        kept by the async projection 'daily-revenue' (OrderPaid events)
--
-- Run it in a fresh database of a server with shared_preload_libraries = 'eventsource' (the async
-- projection runs in the notifier's worker; if eventsource.worker_databases lists databases, the
-- database must be among them):
--
--   createdb shop_demo && psql -d shop_demo -c 'CREATE EXTENSION eventsource'
--   psql -d shop_demo -v ON_ERROR_STOP=1 -f examples/projections.sql
--
-- It leaves the read model tables and the events behind (it drops its projections at the end).
\set ON_ERROR_STOP 1

\echo '== 1. The read models: ordinary tables of your own, here in schema shop.'
CREATE SCHEMA shop;

CREATE TABLE shop.order_summary (
    order_id     text        PRIMARY KEY,   -- the stream id, e.g. order-1
    status       text        NOT NULL,      -- placed, paid, shipped or cancelled
    item_count   integer     NOT NULL,
    total        numeric     NOT NULL,
    last_version bigint      NOT NULL,      -- the stream version of the last event applied
    updated_at   timestamptz NOT NULL       -- when that event was recorded
);

CREATE TABLE shop.daily_revenue (
    day         date    PRIMARY KEY,        -- the UTC day the payment was recorded
    orders_paid integer NOT NULL,
    revenue     numeric NOT NULL
);

\echo '== 2. The handlers: one function per projection, called with each matching eventsource.event.'
-- A handler takes one eventsource.event and RETURNS void. It runs as the role that created the
-- projection, with search_path = pg_catalog, pg_temp: every table name must be schema-qualified
-- (shop.order_summary, not order_summary). Whatever it does commits or rolls back with the event.
-- It uses only the event (never now() or random()), so a rebuild reproduces the same rows.
CREATE FUNCTION shop.apply_order_event(e eventsource.event) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF e.event_type = 'OrderPlaced' THEN
        -- data: {"items": [{"sku": ..., "price": ...}, ...], "total": ...}
        INSERT INTO shop.order_summary (order_id, status, item_count, total, last_version, updated_at)
        VALUES (e.stream_id, 'placed', jsonb_array_length(e.data -> 'items'),
                (e.data ->> 'total')::numeric, e.stream_version, e.recorded_at);
        RETURN;
    END IF;

    UPDATE shop.order_summary s
       SET status = CASE e.event_type
                        WHEN 'OrderPaid' THEN 'paid'
                        WHEN 'OrderShipped' THEN 'shipped'
                        WHEN 'OrderCancelled' THEN 'cancelled'
                        ELSE s.status
                    END,
           -- ItemAdded data: {"sku": ..., "price": ...}
           item_count = s.item_count + CASE WHEN e.event_type = 'ItemAdded' THEN 1 ELSE 0 END,
           total = s.total + CASE WHEN e.event_type = 'ItemAdded' THEN (e.data ->> 'price')::numeric ELSE 0 END,
           last_version = e.stream_version,
           updated_at = e.recorded_at
     WHERE s.order_id = e.stream_id;
    IF NOT FOUND THEN
        -- The read model cannot apply this event: the error aborts the append.
        RAISE EXCEPTION 'order summary: % has no OrderPlaced before its % event', e.stream_id, e.event_type
              USING ERRCODE = 'no_data_found';
    END IF;
END
$$;

-- The reset handler (no argument) empties the read model before a rebuild. TRUNCATE rather than
-- DELETE: its lock makes concurrent appends (whose inline handlers write this table) wait until
-- the rebuild commits, so none of them is lost or applied twice.
CREATE FUNCTION shop.reset_order_summary() RETURNS void
LANGUAGE sql AS 'TRUNCATE shop.order_summary';

-- An SQL function works as well. The day is taken in UTC, so it does not depend on the TimeZone of
-- whichever session (or the background worker) runs the handler.
CREATE FUNCTION shop.apply_payment(e eventsource.event) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO shop.daily_revenue AS r (day, orders_paid, revenue)
    VALUES ((e.recorded_at AT TIME ZONE 'UTC')::date, 1, (e.data ->> 'amount')::numeric)
    ON CONFLICT (day) DO UPDATE
       SET orders_paid = r.orders_paid + 1, revenue = r.revenue + excluded.revenue;
$$;

CREATE FUNCTION shop.reset_daily_revenue() RETURNS void
LANGUAGE sql AS 'TRUNCATE shop.daily_revenue';

\echo '== 3. The projections.'
-- Inline (the default mode): every event of category order (stream ids order-...) goes through
-- apply_order_event inside the transaction that appends it.
SELECT eventsource.create_projection('order-summary', 'shop.apply_order_event(eventsource.event)',
                                     category => 'order',
                                     reset_handler => 'shop.reset_order_summary()');
-- Async: the background worker feeds OrderPaid events from the gap-safe log, after the
-- projection's checkpoint (from the beginning of the log), and commits the handler's work together
-- with the new checkpoint. A failing event is retried; after 5 attempts it goes to
-- eventsource.projection_dead_letters and the projection goes on (the default, 'stop', would stop it).
SELECT eventsource.create_projection('daily-revenue', 'shop.apply_payment(eventsource.event)',
                                     event_types => '{OrderPaid}', category => 'order',
                                     mode => 'async', reset_handler => 'shop.reset_daily_revenue()',
                                     on_failure => 'dead_letter', max_attempts => 5);
SELECT name, mode, status, handler, event_types, category FROM eventsource.projection_status ORDER BY name;

\echo '== 4. Some orders. The order summary is up to date when each append returns.'
SELECT eventsource.append('order-1', 'OrderPlaced',
                          '{"items": [{"sku": "A-1", "price": 20}, {"sku": "B-2", "price": 10}], "total": 30}');
SELECT eventsource.append('order-1', 'ItemAdded', '{"sku": "C-3", "price": 12.50}');
SELECT eventsource.append('order-1', 'OrderPaid', '{"amount": 42.50}');
SELECT eventsource.append('order-1', 'OrderShipped', '{"carrier": "DHL"}');
-- Several events in one append: the handler sees them in stream order.
SELECT * FROM eventsource.append_events('order-2', '[
  {"type": "OrderPlaced", "data": {"items": [{"sku": "A-1", "price": 20}], "total": 20}},
  {"type": "OrderPaid", "data": {"amount": 20}}
]');
SELECT eventsource.append('order-3', 'OrderPlaced', '{"items": [{"sku": "D-4", "price": 99}], "total": 99}');
SELECT eventsource.append('order-3', 'OrderCancelled', '{"reason": "changed my mind"}');
-- Other categories are not this projection's business.
SELECT eventsource.append('cart-1', 'ItemAdded', '{"sku": "A-1"}');

SELECT * FROM shop.order_summary ORDER BY order_id;

\echo '== 5. The async read model catches up in the background: wait until events_behind = 0.'
-- events_behind: the projection's visible events after its checkpoint. A temporary function polls
-- it (for at most 15 seconds) so that the steps below can wait the same way.
CREATE FUNCTION pg_temp.wait_until_caught_up(projection text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
BEGIN
    WHILE (SELECT events_behind FROM eventsource.projection_status WHERE name = projection) > 0 LOOP
        IF clock_timestamp() > started + interval '15 seconds' THEN
            RAISE EXCEPTION 'projection % has not caught up within 15 seconds', projection
                  USING HINT = 'Is the library preloaded (and this database in eventsource.worker_databases, if that lists databases)?';
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT pg_temp.wait_until_caught_up('daily-revenue');
SELECT name, status, checkpoint, events_processed, events_behind FROM eventsource.projection_status ORDER BY name;
SELECT * FROM shop.daily_revenue ORDER BY day;

\echo '== 6. A handler error aborts the append: neither the log nor the read model changes.'
-- ItemAdded for an order that was never placed: apply_order_event raises, and so does the append.
-- (The DO block catches the error so that the walk-through goes on; a client would see it as the
-- append's error, with a context line naming the projection and the event's global position.)
DO $$
DECLARE
    message text;
    context text;
BEGIN
    PERFORM eventsource.append('order-404', 'ItemAdded', '{"sku": "Z-9", "price": 1}');
    RAISE NOTICE 'not reached';
EXCEPTION WHEN no_data_found THEN
    GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, context = PG_EXCEPTION_CONTEXT;
    RAISE NOTICE 'the append failed: %', message;
    -- The context has a line for the projection (and lines for the handler and the append).
    RAISE NOTICE 'context: %', substring(context from 'projection "[^"]*", [^\n]*');
END
$$;
SELECT eventsource.stream_version('order-404') AS order_404_version,
       (SELECT count(*) FROM eventsource.events WHERE stream_id = 'order-404') AS order_404_events,
       (SELECT count(*) FROM shop.order_summary WHERE order_id = 'order-404') AS order_404_summaries;

\echo '== 7. rebuild_projection: reset, then replay the whole log; the same rows come back.'
CREATE TEMP TABLE summary_before AS SELECT * FROM shop.order_summary;
CREATE TEMP TABLE revenue_before AS SELECT * FROM shop.daily_revenue;
-- Inline: replayed at once, in this transaction; returns the number of events replayed.
SELECT eventsource.rebuild_projection('order-summary') AS events_replayed;
SELECT count(*) AS rows_that_differ
  FROM ((TABLE summary_before EXCEPT TABLE shop.order_summary)
        UNION ALL (TABLE shop.order_summary EXCEPT TABLE summary_before)) AS difference;
-- Async: the reset handler runs now, the worker replays from the beginning (returns 0).
SELECT eventsource.rebuild_projection('daily-revenue') AS events_replayed;
SELECT count(*) AS revenue_rows_right_after_reset FROM shop.daily_revenue;
SELECT pg_temp.wait_until_caught_up('daily-revenue');
SELECT count(*) AS rows_that_differ
  FROM ((TABLE revenue_before EXCEPT TABLE shop.daily_revenue)
        UNION ALL (TABLE shop.daily_revenue EXCEPT TABLE revenue_before)) AS difference;

\echo '== 8. pause_projection and resume_projection.'
-- A paused async projection stays at its checkpoint; its events wait (events_behind).
SELECT eventsource.pause_projection('daily-revenue');
SELECT * FROM eventsource.append_events('order-5', '[
  {"type": "OrderPlaced", "data": {"items": [{"sku": "C-3", "price": 12.50}], "total": 12.50}},
  {"type": "OrderPaid", "data": {"amount": 12.50}}
]');
SELECT pg_sleep(1);   -- the worker leaves it alone
SELECT name, status, events_behind FROM eventsource.projection_status WHERE name = 'daily-revenue';
SELECT * FROM shop.daily_revenue ORDER BY day;
-- Resumed, it goes on from its checkpoint.
SELECT eventsource.resume_projection('daily-revenue');
SELECT pg_temp.wait_until_caught_up('daily-revenue');
SELECT * FROM shop.daily_revenue ORDER BY day;

-- A paused inline projection is not called at all: its read model misses the events appended
-- meanwhile. To catch up, resume and rebuild it in one transaction.
SELECT eventsource.pause_projection('order-summary');
SELECT eventsource.append('order-4', 'OrderPlaced', '{"items": [{"sku": "B-2", "price": 10}], "total": 10}');
SELECT count(*) AS order_4_summaries FROM shop.order_summary WHERE order_id = 'order-4';   -- 0
BEGIN;
SELECT eventsource.resume_projection('order-summary');
SELECT eventsource.rebuild_projection('order-summary') AS events_replayed;
COMMIT;
SELECT * FROM shop.order_summary ORDER BY order_id;

\echo '== 9. projection_status: mode, status, checkpoint, progress, errors, dead letters.'
SELECT name, mode, status, checkpoint, events_processed, events_behind, attempts, last_error, dead_letters
  FROM eventsource.projection_status ORDER BY name;

\echo '== 10. drop_projection: the projection goes, its read model tables stay (they are yours).'
SELECT eventsource.drop_projection('daily-revenue');
SELECT eventsource.drop_projection('order-summary');
SELECT count(*) AS projections FROM eventsource.projection_status;
SELECT count(*) AS order_summaries, (SELECT count(*) FROM shop.daily_revenue) AS revenue_days
  FROM shop.order_summary;
