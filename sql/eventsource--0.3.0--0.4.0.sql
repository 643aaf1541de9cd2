-- eventsource--0.3.0--0.4.0.sql: upgrade from 0.3.0 to 0.4.0 (also part of a fresh install).
--
-- Adds projections: read models kept by a handler function, inline (in the appending transaction,
-- from a trigger on the log) or async (by the notifier's background worker, with a checkpoint
-- committed with the handler's work, retries and a dead-letter table).

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.4.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Storage
-- ---------------------------------------------------------------------------------------------

CREATE TABLE eventsource.projections (
    name               text          NOT NULL PRIMARY KEY,
    handler            regprocedure  NOT NULL,
    reset_handler      regprocedure,
    owner              regrole       NOT NULL,
    event_types        text[],
    category           text,
    mode               text          NOT NULL,
    status             text          NOT NULL DEFAULT 'running',
    on_failure         text          NOT NULL,
    max_attempts       integer       NOT NULL,
    checkpoint         eventsource.checkpoint,
    events_processed   bigint        NOT NULL DEFAULT 0,
    attempts           integer       NOT NULL DEFAULT 0,
    retry_at           timestamptz,
    last_error         text,
    last_error_at      timestamptz,
    last_error_position bigint,
    created_at         timestamptz   NOT NULL DEFAULT pg_catalog.now(),
    updated_at         timestamptz   NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE eventsource.projections IS
    'Projections: a handler function fed the matching events, inline (in the appending transaction) or async (by the background worker, from a checkpoint).';

CREATE TABLE eventsource.projection_dead_letters (
    projection_name text        NOT NULL REFERENCES eventsource.projections (name) ON DELETE CASCADE,
    global_position bigint      NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT projection_dead_letters_pkey PRIMARY KEY (projection_name, global_position)
);

COMMENT ON TABLE eventsource.projection_dead_letters IS
    'Events an async projection with on_failure = ''dead_letter'' skipped after max_attempts failures, with the last error.';

SELECT pg_catalog.pg_extension_config_dump('eventsource.projections', '');
SELECT pg_catalog.pg_extension_config_dump('eventsource.projection_dead_letters', '');

-- ---------------------------------------------------------------------------------------------
-- Inline projections: a statement-level trigger on the log, enabled while any exists
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION eventsource.run_inline_projections()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'eventsource_run_inline_projections';

COMMENT ON FUNCTION eventsource.run_inline_projections() IS
    'Trigger function that feeds the events an INSERT appended to every running inline projection, in stream order.';

CREATE TRIGGER events_inline_projections
    AFTER INSERT ON eventsource.events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION eventsource.run_inline_projections();

ALTER TABLE eventsource.events DISABLE TRIGGER events_inline_projections;

-- Any change to the projections (their functions, or a pg_restore loading the table) enables the
-- trigger above while a running inline projection exists and disables it otherwise.
CREATE FUNCTION eventsource.synchronize_inline_projections()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'eventsource_synchronize_inline_projections';

COMMENT ON FUNCTION eventsource.synchronize_inline_projections() IS
    'Trigger function on eventsource.projections: enables the log''s inline projection trigger while a running inline projection exists, and disables it otherwise.';

CREATE TRIGGER projections_synchronize_inline
    AFTER INSERT OR UPDATE OF mode, status OR DELETE OR TRUNCATE ON eventsource.projections
    FOR EACH STATEMENT EXECUTE FUNCTION eventsource.synchronize_inline_projections();

-- ---------------------------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION eventsource.create_projection(
    name          text,
    handler       regprocedure,
    event_types   text[]       DEFAULT NULL,
    category      text         DEFAULT NULL,
    mode          text         DEFAULT 'inline',
    reset_handler regprocedure DEFAULT NULL,
    on_failure    text         DEFAULT 'stop',
    max_attempts  integer      DEFAULT 5)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_create_projection';

COMMENT ON FUNCTION eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer) IS
    'Creates a projection: handler(eventsource.event) is called for every matching event, inline in the appending transaction or async by the background worker; handlers run as the role that creates the projection.';

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

-- ---------------------------------------------------------------------------------------------
-- Views
-- ---------------------------------------------------------------------------------------------

CREATE VIEW eventsource.projection_status AS
SELECT p.name, p.mode, p.status, p.handler, p.event_types, p.category, p.checkpoint,
       p.events_processed,
       CASE WHEN p.mode = 'async' THEN pending.events_behind ELSE 0 END AS events_behind,
       p.attempts, p.retry_at, p.last_error, p.last_error_at, p.last_error_position,
       (SELECT pg_catalog.count(*) FROM eventsource.projection_dead_letters d WHERE d.projection_name = p.name)
           AS dead_letters
  FROM eventsource.projections p
 CROSS JOIN LATERAL (
       SELECT pg_catalog.count(*) AS events_behind
         FROM eventsource.events e
        WHERE p.mode = 'async'
          AND (e.transaction_id, e.global_position) >
              (COALESCE(eventsource.checkpoint_transaction_id(p.checkpoint), '0'::xid8),
               COALESCE(eventsource.checkpoint_global_position(p.checkpoint), 0))
          AND e.transaction_id < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
          AND (p.category IS NULL OR pg_catalog.split_part(e.stream_id, '-', 1) = p.category)
          AND (p.event_types IS NULL OR e.event_type = ANY (p.event_types))) AS pending;

COMMENT ON VIEW eventsource.projection_status IS
    'Every projection with its mode, status, checkpoint, lag (async: visible matching events not yet projected), failures and dead letters.';

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------

REVOKE ALL ON eventsource.projections, eventsource.projection_dead_letters, eventsource.projection_status FROM PUBLIC;
REVOKE ALL ON FUNCTION
    eventsource.run_inline_projections(),
    eventsource.synchronize_inline_projections(),
    eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer),
    eventsource.drop_projection(text),
    eventsource.pause_projection(text),
    eventsource.resume_projection(text),
    eventsource.rebuild_projection(text)
    FROM PUBLIC;

GRANT SELECT ON eventsource.projections, eventsource.projection_dead_letters, eventsource.projection_status
    TO eventsource_reader;
GRANT EXECUTE ON FUNCTION
    eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer),
    eventsource.drop_projection(text),
    eventsource.pause_projection(text),
    eventsource.resume_projection(text),
    eventsource.rebuild_projection(text)
    TO eventsource_admin;
