-- 44_projections.sql: administering projections, read models kept by a handler function.
--
-- A handler is called for every matching event, inline (from a trigger on the log, in the
-- appending transaction: 60_triggers.sql) or async (by the background worker, from a checkpoint
-- committed with the handler's work). Handlers run sandboxed as the role that created the
-- projection, with its search path; create_projection must know that role, so it is SECURITY
-- INVOKER (with a pinned search path) and acts as the extension's owner itself once it has noted it.

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
    search_path   text         DEFAULT pg_catalog.current_setting('search_path'),
    query         jsonb        DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_create_projection';

COMMENT ON FUNCTION eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer, text, jsonb) IS
    'Creates a projection: handler(eventsource.event) is called for every matching event (of its category, event types and query, as read_by_query takes it), inline in the appending transaction or async by the background worker; handlers run sandboxed as the role that creates the projection, with search_path (by default the creator''s) and pg_temp last.';

CREATE FUNCTION eventsource.drop_projection(name text)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_drop_projection';

COMMENT ON FUNCTION eventsource.drop_projection(text) IS
    'Drops a projection (its read model tables are the user''s and stay).';

CREATE FUNCTION eventsource.pause_projection(name text)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_pause_projection';

COMMENT ON FUNCTION eventsource.pause_projection(text) IS
    'Pauses a projection: an inline one is no longer called (rebuild it to catch up), an async one stops at its checkpoint.';

CREATE FUNCTION eventsource.resume_projection(name text)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_resume_projection';

COMMENT ON FUNCTION eventsource.resume_projection(text) IS
    'Resumes a paused or failed projection; a failed async one retries the event it failed on.';

CREATE FUNCTION eventsource.rebuild_projection(name text)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_rebuild_projection';

COMMENT ON FUNCTION eventsource.rebuild_projection(text) IS
    'Calls the reset handler, then replays the whole log through the handler: an inline projection at once in this transaction (returns the number of events), an async one in the background from the start of the log (returns 0; projection_status shows the progress).';
