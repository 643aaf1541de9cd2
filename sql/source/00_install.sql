-- 00_install.sql: the head of the install script of the current version.
--
-- make concatenates sql/source/*.sql in name order into sql/eventsource--VERSION.sql (VERSION is
-- default_version in eventsource.control), the script CREATE EXTENSION eventsource runs. Each file
-- states the current definition of the objects of one topic, as an upgraded database has them:
--
--   10_roles.sql          the three roles and their hierarchy, the schema's USAGE
--   20_types.sql          the checkpoint type (with its operators and btree class), the event row type
--   30_storage.sql        every table, sequence and index, their comments, their registration with pg_dump
--   40_append.sql         appending events
--   41_read.sql           reading streams, categories and the global log
--   42_snapshots.sql      snapshots
--   43_subscriptions.sql  subscriptions (poll, ack) and the notifier's status
--   44_projections.sql    administering projections
--   45_lifecycle.sql      deletes, tombstones, retention, scavenge
--   46_statistics.sql     the shared-memory counters
--   50_views.sql          the status and statistics views
--   60_triggers.sql       the log's guard, the inline projections' triggers, the rename event triggers
--   70_privileges.sql     who may do what
--
-- A database installed at an older version reaches the same objects through the upgrade scripts
-- sql/eventsource--OLD--NEW.sql (test/sql/upgrade.sql compares the two): a change to an object is
-- made here and in the upgrade script of the version being made.
--
-- A C function whose work depends on the schema is bound to the library's entry point named for
-- the version (eventsource_append_0_8), which serves this schema without asking the catalog; the
-- entry points the scripts of earlier versions bound stay in the library for databases not yet
-- updated (README.md, "Entry points").

\echo Use "CREATE EXTENSION eventsource" to load this file. \quit

-- CREATE EXTENSION creates the schema eventsource (eventsource.control) only when none exists, and
-- otherwise installs into the one it finds. A role other than a superuser that owns it, may create
-- in it, or owns an object in it could replace or shadow what the functions running as the
-- extension's owner call (the worker refuses such a schema too: src/notifier.c): refuse it here.
DO $schema$
DECLARE
    problem text;
BEGIN
    SELECT found.problem INTO problem
      FROM pg_catalog.pg_namespace n
     CROSS JOIN LATERAL (
           SELECT 1 AS rank, pg_catalog.format('it is owned by role "%s", which is not a superuser', r.rolname) AS problem
             FROM pg_catalog.pg_roles r
            WHERE r.oid OPERATOR(pg_catalog.=) n.nspowner AND NOT r.rolsuper
           UNION ALL
           SELECT 2, CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'it grants CREATE to PUBLIC'
                          ELSE pg_catalog.format('it grants CREATE to role "%s", which is not a superuser', r.rolname) END
             FROM pg_catalog.aclexplode(n.nspacl) a
             LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
            WHERE a.privilege_type OPERATOR(pg_catalog.=) 'CREATE' AND NOT COALESCE(r.rolsuper, false)
           UNION ALL
           SELECT 3, pg_catalog.format('it holds %s, owned by role "%s", which is not a superuser',
                                       pg_catalog.pg_describe_object(o.catalog, o.object, 0), r.rolname)
             FROM (SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, c.relowner FROM pg_catalog.pg_class c
                    WHERE c.relnamespace OPERATOR(pg_catalog.=) n.oid
                   UNION ALL
                   SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, p.proowner FROM pg_catalog.pg_proc p
                    WHERE p.pronamespace OPERATOR(pg_catalog.=) n.oid
                   UNION ALL
                   SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, t.typowner FROM pg_catalog.pg_type t
                    WHERE t.typnamespace OPERATOR(pg_catalog.=) n.oid
                   UNION ALL
                   SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid, o.oprowner FROM pg_catalog.pg_operator o
                    WHERE o.oprnamespace OPERATOR(pg_catalog.=) n.oid) AS o (catalog, object, owner)
             JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) o.owner AND NOT r.rolsuper) AS found
     WHERE n.nspname OPERATOR(pg_catalog.=) 'eventsource'
     ORDER BY found.rank, found.problem
     LIMIT 1;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'cannot install eventsource into the existing schema eventsource: %', problem
            USING ERRCODE = '42501',
                  DETAIL = 'A role that is not a superuser and owns the schema, may create objects in it or owns one of them could replace or shadow what the extension''s functions call while they run as a superuser.',
                  HINT = 'Drop the schema, or have a superuser own it and everything in it and revoke CREATE on it from other roles, then create the extension again.';
    END IF;
END
$schema$;
