-- eventsource--0.5.0--0.6.0.sql: upgrade from 0.5.0 to 0.6.0 (also part of a fresh install).
--
-- Security: projection handlers run sandboxed with the search path their projection was created
-- with (pg_temp last); a subscription belongs to a role, and only that role's members and
-- eventsource_admin may poll or acknowledge it; the functions that must know their caller
-- (create_projection, create_subscription, poll, ack, and the audited delete_stream,
-- tombstone_stream and set_stream_metadata) are SECURITY INVOKER and act as the extension's owner
-- themselves once they have noted it.

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.6.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Storage
-- ---------------------------------------------------------------------------------------------

-- Handlers of projections created before 0.6.0 keep the search path they always ran with.
ALTER TABLE eventsource.projections ADD COLUMN search_path text NOT NULL DEFAULT 'pg_catalog, pg_temp';
ALTER TABLE eventsource.projections ALTER COLUMN search_path DROP DEFAULT;

COMMENT ON COLUMN eventsource.projections.search_path IS
    'The search path the handler and reset handler run with: the creator''s when the projection was created, pg_temp last.';

-- Subscriptions created before 0.6.0 stay open to every reader, as they were, until an
-- administrator hands each to its consumer role with set_subscription_owner (a WARNING lists them:
-- extension scripts run with client_min_messages = warning).
ALTER TABLE eventsource.subscriptions ADD COLUMN owner regrole;
UPDATE eventsource.subscriptions SET owner = 'eventsource_reader';
ALTER TABLE eventsource.subscriptions ALTER COLUMN owner SET NOT NULL;

COMMENT ON COLUMN eventsource.subscriptions.owner IS
    'The role the subscription belongs to: only its members and eventsource_admin may poll or acknowledge it.';

DO $notice$
DECLARE
    open_subscriptions text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.quote_literal(s.name), ', ' ORDER BY s.name)
      INTO open_subscriptions
      FROM eventsource.subscriptions s;
    IF open_subscriptions IS NOT NULL THEN
        RAISE WARNING 'subscriptions % now belong to eventsource_reader, so every reader may still poll them', open_subscriptions
            USING HINT = 'Hand each to its consumer role: SELECT eventsource.set_subscription_owner(name, ''role'').';
    END IF;
END
$notice$;

-- ---------------------------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------------------------

DROP FUNCTION eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer);

-- The default of search_path is evaluated in the caller's session, before the function's own
-- SET clause applies: it is the creator's search path.
CREATE FUNCTION eventsource.create_projection(
    name          text,
    handler       regprocedure,
    event_types   text[]       DEFAULT NULL,
    category      text         DEFAULT NULL,
    mode          text         DEFAULT 'inline',
    reset_handler regprocedure DEFAULT NULL,
    on_failure    text         DEFAULT 'stop',
    max_attempts  integer      DEFAULT 5,
    search_path   text         DEFAULT pg_catalog.current_setting('search_path'))
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_create_projection';

COMMENT ON FUNCTION eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer, text) IS
    'Creates a projection: handler(eventsource.event) is called for every matching event, inline in the appending transaction or async by the background worker; handlers run sandboxed as the role that creates the projection, with search_path (by default the creator''s) and pg_temp last.';

DROP FUNCTION eventsource.create_subscription(text, text, text[], text, integer);

CREATE FUNCTION eventsource.create_subscription(
    name                text,
    category            text    DEFAULT NULL,
    event_types         text[]  DEFAULT NULL,
    start_from          text    DEFAULT 'beginning',
    consumer_group_size integer DEFAULT 1,
    owner               regrole DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_create_subscription';

COMMENT ON FUNCTION eventsource.create_subscription(text, text, text[], text, integer, regrole) IS
    'Creates a durable subscription to the global log, of one category and some event types or all, starting from the beginning of the log or its end, consumed by a group of consumer_group_size members; it belongs to owner (by default the caller).';

ALTER FUNCTION eventsource.poll(text, integer, integer, integer) SECURITY INVOKER;
ALTER FUNCTION eventsource.ack(text, eventsource.checkpoint, integer) SECURITY INVOKER;
-- The audit event of these names their caller, even one inside a SECURITY DEFINER function.
ALTER FUNCTION eventsource.delete_stream(text, bigint) SECURITY INVOKER;
ALTER FUNCTION eventsource.tombstone_stream(text, bigint) SECURITY INVOKER;
ALTER FUNCTION eventsource.set_stream_metadata(text, jsonb) SECURITY INVOKER;

CREATE FUNCTION eventsource.set_subscription_owner(name text, owner regrole)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_set_subscription_owner';

COMMENT ON FUNCTION eventsource.set_subscription_owner(text, regrole) IS
    'Hands a subscription to another role: from then on only that role''s members and eventsource_admin may poll or acknowledge it.';

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
    eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer, text),
    eventsource.create_subscription(text, text, text[], text, integer, regrole),
    eventsource.set_subscription_owner(text, regrole)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer, text),
    eventsource.create_subscription(text, text, text[], text, integer, regrole),
    eventsource.set_subscription_owner(text, regrole)
    TO eventsource_admin;
