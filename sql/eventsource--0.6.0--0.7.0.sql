-- eventsource--0.6.0--0.7.0.sql: upgrade from 0.6.0 to 0.7.0 (also part of a fresh install).
--
-- Log integrity: the log stays readable and in order after a restore into another cluster, a
-- crash that loses commits and pg_upgrade; lifecycle markers follow the events they cover; an
-- acknowledgement is accepted only from the lease it acknowledges; projections never silently
-- stop; snapshots never bring deleted data back; a category is never a stream id.

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.7.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Item 5: projections that never silently stop. Handlers are stored as their schema-qualified
-- signature (text), not as regprocedure, which pg_upgrade refuses in user tables; the library
-- resolves them to the function each time they run. A function dropped before this upgrade gets a
-- signature in pg_catalog that names nothing, so its projection still reports it gone.
-- ---------------------------------------------------------------------------------------------

DROP VIEW eventsource.projection_status;

ALTER TABLE eventsource.projections
    ALTER COLUMN handler TYPE text USING
        COALESCE((pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass, handler, 0)).identity,
                 'pg_catalog.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident('dropped function ' OPERATOR(pg_catalog.||) handler::pg_catalog.oid)
                     OPERATOR(pg_catalog.||) '(eventsource.event)'),
    ALTER COLUMN reset_handler TYPE text USING
        COALESCE((pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass, reset_handler, 0)).identity,
                 'pg_catalog.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident('dropped function ' OPERATOR(pg_catalog.||) reset_handler::pg_catalog.oid)
                     OPERATOR(pg_catalog.||) '()');

COMMENT ON COLUMN eventsource.projections.handler IS
    'The handler''s signature, schema-qualified (for example public.count_event(eventsource.event)): looked up each time the projection runs.';
COMMENT ON COLUMN eventsource.projections.reset_handler IS
    'The reset handler''s signature, schema-qualified (for example public.reset_totals()), or NULL: looked up at each rebuild.';

CREATE VIEW eventsource.projection_status AS
SELECT p.name, p.mode, p.status, p.handler, p.event_types, p.category, p.checkpoint,
       p.events_processed,
       CASE WHEN p.mode = 'async' THEN pending.events_behind ELSE 0 END AS events_behind,
       p.attempts, p.retry_at, p.last_error, p.last_error_at, p.last_error_position,
       (SELECT pg_catalog.count(*) FROM eventsource.projection_dead_letters d WHERE d.projection_name = p.name)
           AS dead_letters,
       COALESCE(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) pending.oldest_recorded_at), 0)
           AS seconds_behind
  FROM eventsource.projections p
 CROSS JOIN LATERAL (
       SELECT pg_catalog.count(*) AS events_behind, pg_catalog.min(e.recorded_at) AS oldest_recorded_at
         FROM eventsource.events e
        WHERE p.mode = 'async'
          AND (e.transaction_id, e.global_position) >
              (COALESCE(eventsource.checkpoint_transaction_id(p.checkpoint), '0'::xid8),
               COALESCE(eventsource.checkpoint_global_position(p.checkpoint), 0))
          AND e.transaction_id < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
          AND (p.category IS NULL OR pg_catalog.split_part(e.stream_id, '-', 1) = p.category)
          AND (p.event_types IS NULL OR e.event_type = ANY (p.event_types))) AS pending;

COMMENT ON VIEW eventsource.projection_status IS
    'Every projection with its mode, status, handler (its signature), checkpoint, lag (async: visible matching events not yet projected), failures and dead letters.';

REVOKE ALL ON eventsource.projection_status FROM PUBLIC;
GRANT SELECT ON eventsource.projection_status TO eventsource_reader;
