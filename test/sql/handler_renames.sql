-- handler_renames.sql: the event trigger that makes projections follow their renamed or moved
-- handlers (follow_renamed_handlers) keeps nothing beyond the command, looks at the handlers only
-- of the function, schema or extension the command targets, and rewrites only a stored signature
-- whose function the command moved.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
CREATE SCHEMA renames;
CREATE FUNCTION renames.h(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION renames.taken(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION renames.other() RETURNS void LANGUAGE sql AS 'SELECT';
SELECT count(eventsource.create_projection('p' || i, 'renames.h(eventsource.event)', category => 'renames'))
  FROM generate_series(1, 20) i;

-- 2000 failing ALTERs in subtransactions of one transaction, on no handler (any role can run
-- them: the trigger runs before the command's checks) and on a handler, keep nothing.
CREATE FUNCTION renames.memory() RETURNS bigint LANGUAGE sql
    AS 'SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts';
BEGIN;
SELECT renames.memory() AS before \gset
DO $$
BEGIN
    FOR i IN 1..1000 LOOP
        BEGIN
            ALTER FUNCTION renames.missing() RENAME TO x;
        EXCEPTION WHEN undefined_function THEN NULL;
        END;
        BEGIN
            ALTER FUNCTION renames.h(eventsource.event) RENAME TO taken;
        EXCEPTION WHEN duplicate_function THEN NULL;
        END;
    END LOOP;
END
$$;
SELECT renames.memory() - :before < 1000000 AS memory_bounded;
COMMIT;

-- A stored signature that is not the canonical one (a superuser's edit) stays as it is through
-- an ALTER that does not move its function, and follows one that does.
UPDATE eventsource.projections SET handler = 'RENAMES.H(eventsource.event)' WHERE name = 'p1';
ALTER FUNCTION renames.other() SET work_mem = '64kB';
ALTER FUNCTION renames.h(eventsource.event) SET work_mem = '64kB';
ALTER FUNCTION renames.other() RENAME TO other2;
SELECT handler FROM eventsource.projections WHERE name = 'p1';
ALTER FUNCTION renames.h(eventsource.event) RENAME TO h2;
SELECT handler, count(*) FROM eventsource.projections GROUP BY handler;
SELECT eventsource.append('renames-1', 'Happened', '{}') IS NOT NULL AS appended;
SELECT count(eventsource.drop_projection(name)) FROM eventsource.projections;
DROP SCHEMA renames CASCADE;
