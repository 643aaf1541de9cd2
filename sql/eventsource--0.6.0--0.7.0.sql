-- eventsource--0.6.0--0.7.0.sql: upgrade from 0.6.0 to 0.7.0 (also part of a fresh install).
--
-- Log integrity: the log stays readable and in order after a restore into another cluster, a
-- crash that loses commits and pg_upgrade; lifecycle markers follow the events they cover; an
-- acknowledgement is accepted only from the lease it acknowledges; projections never silently
-- stop; snapshots never bring deleted data back; a category is never a stream id.

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.7.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Item 6: snapshots never bring deleted data back. save_snapshot refuses a version stream reads no
-- longer show, the loads use only a snapshot of a visible version, scavenge deletes the others
-- (all in the library); the comments say so.
-- ---------------------------------------------------------------------------------------------

COMMENT ON FUNCTION eventsource.save_snapshot(text, bigint, jsonb, integer) IS
    'Stores the state of a stream as of one of the versions stream reads show (replacing a snapshot of the same version and schema version), then keeps the newest eventsource.snapshots_to_keep snapshots of the stream; a deleted, tombstoned or truncated version is refused like one that does not exist.';

COMMENT ON FUNCTION eventsource.load_snapshot(text, bigint, integer) IS
    'The newest snapshot of a stream at or below max_version (NULL: any), of schema_version when given, of a version stream reads show; no row when there is none.';

COMMENT ON FUNCTION eventsource.scavenge(integer) IS
    'Removes up to max_events events that deletes and retention settings hide, except those a subscription or async projection has not passed yet, and the snapshots of hidden versions; returns how many events it removed (call again until 0).';

-- ---------------------------------------------------------------------------------------------
-- Item 7: a category is never a stream id. read_all, read_category, create_subscription and
-- create_projection refuse a category containing '-' (in the library); one created earlier has
-- never matched an event: name them.
-- ---------------------------------------------------------------------------------------------

DO $upgrade$
DECLARE
    found text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('%s %I (category %L)', c.kind, c.name, c.category), ', '
                                 ORDER BY c.kind, c.name)
      INTO found
      FROM (SELECT 'subscription' AS kind, s.name, s.category FROM eventsource.subscriptions s
             WHERE pg_catalog.strpos(s.category, '-') OPERATOR(pg_catalog.>) 0
            UNION ALL
            SELECT 'projection', p.name, p.category FROM eventsource.projections p
             WHERE pg_catalog.strpos(p.category, '-') OPERATOR(pg_catalog.>) 0) AS c;
    IF found IS NOT NULL THEN
        RAISE WARNING 'a category containing ''-'' matches no event: %', found
            USING HINT = 'A category is the part of a stream id before its first ''-''. Drop each and create it again with the category meant.';
    END IF;
END
$upgrade$;
