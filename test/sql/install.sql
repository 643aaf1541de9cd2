-- install.sql: what CREATE EXTENSION leaves behind: objects, comments, dump registration, grants.

-- Every function of the extension is commented.
SELECT p.oid::regprocedure AS function_without_comment
  FROM pg_proc p
 WHERE p.pronamespace = 'eventsource'::regnamespace
   AND obj_description(p.oid, 'pg_proc') IS NULL;

-- So is every table, view, type, trigger and event trigger.
SELECT c.oid::regclass AS relation_without_comment
  FROM pg_class c
 WHERE c.relnamespace = 'eventsource'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
   AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT t.oid::regtype AS type_without_comment
  FROM pg_type t
 WHERE t.typnamespace = 'eventsource'::regnamespace AND t.typtype IN ('b', 'c', 'd', 'e')
   AND t.typcategory <> 'A' AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
   AND obj_description(t.oid, 'pg_type') IS NULL;
SELECT g.tgrelid::regclass AS relation, g.tgname AS trigger_without_comment
  FROM pg_trigger g
 WHERE g.tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'eventsource'::regnamespace)
   AND NOT g.tgisinternal AND obj_description(g.oid, 'pg_trigger') IS NULL;
SELECT e.evtname AS event_trigger_without_comment
  FROM pg_event_trigger e
 WHERE e.evtfoid IN (SELECT oid FROM pg_proc WHERE pronamespace = 'eventsource'::regnamespace)
   AND obj_description(e.oid, 'pg_event_trigger') IS NULL;

-- The functions that run as the extension's owner pin their search_path: the SECURITY DEFINER ones,
-- and the SECURITY INVOKER ones that note their caller and then act as the owner themselves; but
-- append and append_events, which act as the owner without the cost of a pinned search path (their
-- statements depend on none: test/sql/search_path.sql).
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'eventsource'::regnamespace AND (p.prosecdef OR p.proconfig IS NOT NULL)
 ORDER BY p.oid::regprocedure::text;

-- Every table and sequence that holds user data is dumped by pg_dump.
SELECT c.oid::regclass AS dumped_with_data
  FROM pg_extension x, unnest(x.extconfig) AS config(oid)
  JOIN pg_class c ON c.oid = config.oid
 WHERE x.extname = 'eventsource'
 ORDER BY c.oid::regclass::text;
SELECT c.oid::regclass AS not_dumped
  FROM pg_class c
 WHERE c.relnamespace = 'eventsource'::regnamespace AND c.relkind IN ('r', 'S', 'p')
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'eventsource')::oid[]);

-- The roles exist and cannot log in.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'eventsource\_%' ORDER BY 1;

-- No function is executable by PUBLIC; which role may run what.
SELECT p.oid::regprocedure AS function,
       has_function_privilege('eventsource_reader', p.oid, 'EXECUTE') AS reader,
       has_function_privilege('eventsource_writer', p.oid, 'EXECUTE') AS writer,
       has_function_privilege('eventsource_admin', p.oid, 'EXECUTE') AS admin,
       p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) AS a
                                    WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public
  FROM pg_proc p
 WHERE p.pronamespace = 'eventsource'::regnamespace
 ORDER BY p.oid::regprocedure::text;

-- Tables: readers may SELECT; nobody but the owner may write directly.
SELECT c.oid::regclass AS relation, r.rolname,
       has_table_privilege(r.rolname, c.oid, 'SELECT') AS can_select,
       has_table_privilege(r.rolname, c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE') AS can_write
  FROM pg_class c, pg_roles r
 WHERE c.relnamespace = 'eventsource'::regnamespace AND c.relkind IN ('r', 'S')
   AND r.rolname LIKE 'eventsource\_%'
 ORDER BY c.oid::regclass::text, r.rolname;

-- The log's indexes: position, (stream, version), event id, and the two log orders.
SELECT indexrelid::regclass AS index, indisunique AS is_unique, pg_get_indexdef(indexrelid) AS definition
  FROM pg_index WHERE indrelid = 'eventsource.events'::regclass ORDER BY indexrelid::regclass::text;

-- The extension cannot be moved to another schema.
ALTER EXTENSION eventsource SET SCHEMA public;

-- The functions whose C code depends on the schema call the entry points of this version, which
-- serve its schema without asking the catalog; those without a version are for databases not
-- yet updated from before 0.8.0.
SELECT p.oid::regprocedure AS function, p.prosrc AS entry_point
  FROM pg_proc p
 WHERE p.pronamespace = 'eventsource'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
   AND p.prosrc ~ '_[0-9]+_[0-9]+$'
 ORDER BY p.oid::regprocedure::text;

-- CREATE EXTENSION installs into an existing schema eventsource as it finds it: one that a role
-- other than a superuser owns, may create in, or holds an object in is refused (42501).
DROP EXTENSION eventsource;
DROP SCHEMA eventsource;
CREATE ROLE test_mallory;
CREATE SCHEMA eventsource AUTHORIZATION test_mallory;
CREATE EXTENSION eventsource;
ALTER SCHEMA eventsource OWNER TO CURRENT_USER;
GRANT CREATE ON SCHEMA eventsource TO test_mallory;
CREATE EXTENSION eventsource;
SET ROLE test_mallory;
CREATE FUNCTION eventsource.append(text, text, jsonb) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
RESET ROLE;
REVOKE CREATE ON SCHEMA eventsource FROM test_mallory;
CREATE EXTENSION eventsource;
GRANT CREATE ON SCHEMA eventsource TO PUBLIC;
CREATE EXTENSION eventsource;
REVOKE CREATE ON SCHEMA eventsource FROM PUBLIC;
DROP FUNCTION eventsource.append(text, text, jsonb);
-- A schema a superuser owns, as a restore creates it before CREATE EXTENSION, is used.
CREATE EXTENSION eventsource;
SELECT n.nspowner::regrole = current_user::regrole AS superuser_owns_schema
  FROM pg_namespace n WHERE n.nspname = 'eventsource';
DROP ROLE test_mallory;
