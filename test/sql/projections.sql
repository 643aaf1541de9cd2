-- projections.sql: creating, pausing, resuming, rebuilding and dropping projections; inline
-- projections in the appending transaction; every error path (each leaves the projections
-- unchanged). Async projections need the background worker: test/pgtap/projections.sql.
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default
CREATE SCHEMA read_model;
CREATE TABLE read_model.orders (order_id text PRIMARY KEY, status text NOT NULL, total numeric NOT NULL, events int NOT NULL);
CREATE FUNCTION read_model.project_order(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.event_type = 'OrderRejected' THEN
        RAISE EXCEPTION 'order % cannot be rejected', e.stream_id USING ERRCODE = 'P0001';
    END IF;
    INSERT INTO read_model.orders AS o VALUES (e.stream_id, e.event_type, COALESCE((e.data->>'total')::numeric, 0), 1)
    ON CONFLICT (order_id) DO UPDATE
       SET status = e.event_type, total = o.total + COALESCE((e.data->>'total')::numeric, 0), events = o.events + 1;
END
$$;
CREATE FUNCTION read_model.reset_orders() RETURNS void LANGUAGE sql AS 'TRUNCATE read_model.orders';
CREATE FUNCTION read_model.wrong_argument(e text) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION read_model.two_arguments(e eventsource.event, x int) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION read_model.returns_set(e eventsource.event) RETURNS SETOF int LANGUAGE sql AS 'SELECT 1';
SELECT eventsource.append('order-1', 'OrderPlaced', '{"total": 10}');

-- The trigger on the log is enabled only while a running inline projection exists.
SELECT tgenabled FROM pg_trigger WHERE tgname = 'events_inline_projections';
SELECT eventsource.create_projection('orders', 'read_model.project_order(eventsource.event)',
                                     category => 'order', reset_handler => 'read_model.reset_orders()');
SELECT tgenabled FROM pg_trigger WHERE tgname = 'events_inline_projections';
SELECT name, handler, reset_handler, owner = current_user::regrole AS owned_by_creator, event_types, category, mode, status, on_failure, max_attempts
  FROM eventsource.projections;

-- Inline: every matching event of an append, in the same transaction, in stream order.
SELECT eventsource.append('order-1', 'OrderPaid', '{"total": 5}');
SELECT * FROM eventsource.append_events('order-2', '[{"type": "OrderPlaced", "data": {"total": 7}}, {"type": "OrderPaid", "data": {}}]');
SELECT eventsource.append('cart-1', 'ItemAdded', '{}');
SELECT * FROM read_model.orders ORDER BY order_id;
-- A rolled-back append leaves the read model as it was.
BEGIN;
SELECT eventsource.append('order-2', 'OrderShipped', '{}');
SELECT status FROM read_model.orders WHERE order_id = 'order-2';
ROLLBACK;
SELECT status FROM read_model.orders WHERE order_id = 'order-2';
-- A handler error aborts the append, naming the projection: log and read model unchanged.
SELECT eventsource.append('order-2', 'OrderRejected', '{}');
SELECT count(*) AS rejected_events FROM eventsource.events WHERE event_type = 'OrderRejected';
SELECT * FROM read_model.orders ORDER BY order_id;

-- Rebuild: the reset handler, then the whole log (including events from before the projection).
SELECT eventsource.rebuild_projection('orders') AS replayed;
SELECT * FROM read_model.orders ORDER BY order_id;

-- An inline rebuild in REPEATABLE READ or SERIALIZABLE would not see the events committed after
-- the transaction's snapshot, whose rows the reset removes (test/specs/projection_rebuild.spec):
-- it refuses (0A000); READ COMMITTED is the remedy.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT eventsource.rebuild_projection('orders');
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT eventsource.rebuild_projection('orders');
ROLLBACK;
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT eventsource.rebuild_projection('orders') AS replayed;
COMMIT;

-- Event type filters.
CREATE TABLE read_model.payments (order_id text, global_position bigint);
CREATE FUNCTION read_model.project_payment(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO read_model.payments VALUES (e.stream_id, e.global_position)';
SELECT eventsource.create_projection('payments', 'read_model.project_payment(eventsource.event)', event_types => '{OrderPaid}');
SELECT eventsource.append('order-3', 'OrderPlaced', '{}');
SELECT eventsource.append('order-3', 'OrderPaid', '{}');
SELECT eventsource.rebuild_projection('payments') AS replayed_without_reset;
SELECT order_id, count(*) FROM read_model.payments GROUP BY order_id ORDER BY order_id;

-- Pause: the handler is no longer called; resume; a paused projection catches up by a rebuild.
SELECT eventsource.pause_projection('orders');
SELECT eventsource.pause_projection('payments');
SELECT tgenabled FROM pg_trigger WHERE tgname = 'events_inline_projections';
SELECT eventsource.append('order-4', 'OrderPlaced', '{"total": 1}');
SELECT count(*) AS while_paused FROM read_model.orders WHERE order_id = 'order-4';
SELECT eventsource.resume_projection('orders');
SELECT tgenabled FROM pg_trigger WHERE tgname = 'events_inline_projections';
SELECT eventsource.rebuild_projection('orders') AS replayed;
SELECT count(*) AS after_rebuild FROM read_model.orders WHERE order_id = 'order-4';
SELECT name, mode, status, events_behind FROM eventsource.projection_status ORDER BY name;

-- Async projections start from the beginning of the log (the worker feeds them).
SELECT eventsource.create_projection('orders-later', 'read_model.project_order(eventsource.event)', mode => 'async',
                                     on_failure => 'dead_letter', max_attempts => 3);
SELECT name, mode, status, checkpoint, on_failure, max_attempts FROM eventsource.projections WHERE name = 'orders-later';
SELECT eventsource.drop_projection('orders-later');

-- Handlers run as the role that created the projection.
CREATE ROLE projection_admin IN ROLE eventsource_admin;
CREATE TABLE read_model.audit (who text, event_type text);
GRANT USAGE ON SCHEMA read_model TO projection_admin;
GRANT INSERT ON read_model.audit TO projection_admin;
CREATE FUNCTION read_model.audit_event(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO read_model.audit VALUES (current_user, e.event_type)';
GRANT EXECUTE ON FUNCTION read_model.audit_event(eventsource.event) TO projection_admin;
SET ROLE projection_admin;
SELECT eventsource.create_projection('audit', 'read_model.audit_event(eventsource.event)');
RESET ROLE;
SELECT eventsource.append('order-5', 'OrderPlaced', '{}');
SELECT who, event_type FROM read_model.audit;
SELECT owner FROM eventsource.projections WHERE name = 'audit';
SELECT eventsource.drop_projection('audit');

-- Errors: each one changes nothing.
CREATE TEMP TABLE projections_before AS SELECT name, status, mode FROM eventsource.projections;
SELECT eventsource.create_projection('orders', 'read_model.project_order(eventsource.event)');
SELECT eventsource.create_projection(NULL, 'read_model.project_order(eventsource.event)');
SELECT eventsource.create_projection('', 'read_model.project_order(eventsource.event)');
SELECT eventsource.create_projection(repeat('p', 256), 'read_model.project_order(eventsource.event)');
SELECT eventsource.create_projection('bad', NULL);
SELECT eventsource.create_projection('bad', 'read_model.no_such_function(eventsource.event)');
SELECT eventsource.create_projection('bad', 'read_model.wrong_argument(text)');
SELECT eventsource.create_projection('bad', 'read_model.two_arguments(eventsource.event, integer)');
SELECT eventsource.create_projection('bad', 'read_model.returns_set(eventsource.event)');
SELECT eventsource.create_projection('bad', 'read_model.reset_orders()');
SELECT eventsource.create_projection('bad', 'read_model.project_order(eventsource.event)', reset_handler => 'read_model.project_order(eventsource.event)');
SELECT eventsource.create_projection('bad', 'read_model.project_order(eventsource.event)', mode => 'sometimes');
SELECT eventsource.create_projection('bad', 'read_model.project_order(eventsource.event)', mode => NULL);
SELECT eventsource.create_projection('bad', 'read_model.project_order(eventsource.event)', on_failure => 'ignore');
SELECT eventsource.create_projection('bad', 'read_model.project_order(eventsource.event)', max_attempts => 0);
SELECT eventsource.create_projection('bad', 'read_model.project_order(eventsource.event)', max_attempts => 101);
SELECT eventsource.create_projection('bad', 'read_model.project_order(eventsource.event)', category => '');
SELECT eventsource.create_projection('bad', 'read_model.project_order(eventsource.event)', category => 'order-1');
SELECT eventsource.create_projection('bad', 'read_model.project_order(eventsource.event)', event_types => '{}');
-- A role may not register a handler it cannot execute.
REVOKE EXECUTE ON FUNCTION read_model.audit_event(eventsource.event) FROM projection_admin, PUBLIC;
SET ROLE projection_admin;
SELECT eventsource.create_projection('bad', 'read_model.audit_event(eventsource.event)');
RESET ROLE;
SELECT eventsource.drop_projection('nothing');
SELECT eventsource.pause_projection('nothing');
SELECT eventsource.resume_projection('nothing');
SELECT eventsource.rebuild_projection('nothing');
SELECT eventsource.rebuild_projection(NULL);
SELECT count(*) AS changed FROM ((SELECT name, status, mode FROM eventsource.projections EXCEPT SELECT * FROM projections_before)
                                 UNION ALL (SELECT * FROM projections_before EXCEPT SELECT name, status, mode FROM eventsource.projections)) AS difference;

-- Handlers are stored as their qualified signature (text), resolved each time they run. Like the
-- regprocedure of before 0.7.0 it records no dependency: DROP FUNCTION succeeds, and the projection
-- then fails with 42501 naming the signature (an inline one fails every matching append) until a
-- function of that signature, the owner's, exists again.
CREATE FUNCTION read_model.count_gone(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION read_model.reset_gone() RETURNS void LANGUAGE sql AS 'SELECT';
SELECT eventsource.create_projection('gone', 'read_model.count_gone(eventsource.event)', category => 'gone',
                                     reset_handler => 'read_model.reset_gone()');
SELECT handler, reset_handler, pg_typeof(handler) FROM eventsource.projections WHERE name = 'gone';
DROP FUNCTION read_model.count_gone(eventsource.event);
DROP FUNCTION read_model.reset_gone();
SELECT eventsource.append('gone-1', 'Happened', '{}');
SELECT eventsource.rebuild_projection('gone');
SELECT count(*) AS gone_events FROM eventsource.events WHERE stream_id = 'gone-1';
CREATE FUNCTION read_model.count_gone(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT eventsource.append('gone-1', 'Happened', '{}');
SELECT eventsource.drop_projection('gone');

-- Dropping the last inline projection disables the trigger; the read model tables stay.
SELECT eventsource.drop_projection('orders');
SELECT eventsource.drop_projection('payments');
SELECT tgenabled FROM pg_trigger WHERE tgname = 'events_inline_projections';
SELECT count(*) > 0 AS read_model_kept FROM read_model.orders;
-- The handlers' search path: resolved when the projection is created, pg_temp last; a list it cannot
-- read is 22023.
CREATE FUNCTION read_model.noop(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT eventsource.create_projection('paths', 'read_model.noop(eventsource.event)',
                                     search_path => 'pg_temp, "$user", no_such_schema, read_model, public');
SELECT search_path FROM eventsource.projections WHERE name = 'paths';
SELECT eventsource.create_projection('bad-path', 'read_model.noop(eventsource.event)', search_path => 'public, "unclosed');
SELECT eventsource.drop_projection('paths');
DROP SCHEMA read_model CASCADE;
DROP ROLE projection_admin;
