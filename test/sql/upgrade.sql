-- upgrade.sql: walks every released version up to the current one with ALTER EXTENSION ... UPDATE,
-- with data in the store: the data survives, the new features work, and the upgraded extension is
-- the fresh install (the current version's own script, built from sql/source/), object by object:
-- every column, default, constraint, index, trigger, view, function with its attributes, type,
-- operator, sequence, owner, privilege and comment, and what pg_dump dumps the data of.
DROP EXTENSION eventsource;

-- The installed extension described object by object: one row per object and aspect of it, with
-- nothing in it that differs between two equal installs (no OIDs, ACL items in order).
CREATE FUNCTION pg_temp.sorted_acl(acl aclitem[]) RETURNS text LANGUAGE sql IMMUTABLE
    RETURN (SELECT string_agg(item::text, ' ' ORDER BY item::text) FROM unnest(acl) AS item);

CREATE TEMP VIEW extension_shape (object, aspect, value) AS
WITH member AS (
    SELECT d.classid, d.objid, i.type || ' ' || i.identity AS object,
           COALESCE(c.relowner, p.proowner, t.typowner, o.oprowner, oc.opcowner, f.opfowner, e.evtowner) AS owner,
           COALESCE(c.relacl, p.proacl, t.typacl) AS privileges
      FROM pg_depend d
     CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, 0) AS i
      LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
      LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
      LEFT JOIN pg_type t ON d.classid = 'pg_type'::regclass AND t.oid = d.objid
      LEFT JOIN pg_operator o ON d.classid = 'pg_operator'::regclass AND o.oid = d.objid
      LEFT JOIN pg_opclass oc ON d.classid = 'pg_opclass'::regclass AND oc.oid = d.objid
      LEFT JOIN pg_opfamily f ON d.classid = 'pg_opfamily'::regclass AND f.oid = d.objid
      LEFT JOIN pg_event_trigger e ON d.classid = 'pg_event_trigger'::regclass AND e.oid = d.objid
     WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventsource')),
-- The members' relations: tables, views, sequences, and the relations of composite types.
relation AS (
    SELECT m.object, c.oid, c.relkind FROM member m JOIN pg_class c ON c.oid = m.objid
     WHERE m.classid = 'pg_class'::regclass
    UNION ALL
    SELECT m.object, c.oid, c.relkind FROM member m JOIN pg_type t ON t.oid = m.objid
      JOIN pg_class c ON c.oid = t.typrelid
     WHERE m.classid = 'pg_type'::regclass),
-- The objects that belong to a member table: constraints, indexes, triggers, rules and policies.
part AS (
    SELECT r.object, 'constraint ' || n.conname AS aspect,
           pg_get_constraintdef(n.oid) AS definition, obj_description(n.oid, 'pg_constraint') AS comment
      FROM relation r JOIN pg_constraint n ON n.conrelid = r.oid
    UNION ALL
    SELECT r.object, 'index ' || x.indexrelid::regclass::text,
           pg_get_indexdef(x.indexrelid)
               || CASE WHEN x.indisclustered THEN ' (clustered)' ELSE '' END
               || CASE WHEN x.indisreplident THEN ' (replica identity)' ELSE '' END,
           obj_description(x.indexrelid, 'pg_class')
      FROM relation r JOIN pg_index x ON x.indrelid = r.oid
    UNION ALL
    SELECT r.object, 'trigger ' || g.tgname, format('%s (enabled %s)', pg_get_triggerdef(g.oid), g.tgenabled),
           obj_description(g.oid, 'pg_trigger')
      FROM relation r JOIN pg_trigger g ON g.tgrelid = r.oid
     WHERE NOT g.tgisinternal
    UNION ALL
    SELECT r.object, 'rule ' || w.rulename, pg_get_ruledef(w.oid), obj_description(w.oid, 'pg_rewrite')
      FROM relation r JOIN pg_rewrite w ON w.ev_class = r.oid
     WHERE r.relkind <> 'v'
    UNION ALL
    SELECT r.object, 'policy ' || y.polname,
           format('%s %s to %s using (%s) with check (%s)', y.polcmd, y.polpermissive, y.polroles::regrole[],
                  pg_get_expr(y.polqual, y.polrelid), pg_get_expr(y.polwithcheck, y.polrelid)),
           obj_description(y.oid, 'pg_policy')
      FROM relation r JOIN pg_policy y ON y.polrelid = r.oid)
-- Every member, with its owner, privileges, comment and initial privileges (what pg_dump compares
-- the privileges with).
SELECT m.object, 'member', NULL::text FROM member m
UNION ALL
SELECT m.object, 'owner', pg_get_userbyid(m.owner)::text FROM member m
UNION ALL
SELECT m.object, 'privileges', pg_temp.sorted_acl(m.privileges) FROM member m
UNION ALL
SELECT m.object, 'comment', obj_description(m.objid, m.classid::regclass::name) FROM member m
UNION ALL
SELECT m.object, 'initial privileges' || CASE WHEN p.objsubid <> 0 THEN ' of column ' || p.objsubid ELSE '' END,
       format('%s %s', p.privtype, pg_temp.sorted_acl(p.initprivs))
  FROM member m JOIN pg_init_privs p ON p.classoid = m.classid AND p.objoid = m.objid
UNION ALL
-- Relations: kind and options, every column (dropped ones too, so that the
-- numbers match) with its comment, and their constraints, indexes, triggers, rules and policies.
SELECT r.object, 'relation',
       format('kind %s, persistence %s, access method %s, options %s, replica identity %s, row security %s, forced %s',
              c.relkind, c.relpersistence, am.amname, c.reloptions, c.relreplident, c.relrowsecurity, c.relforcerowsecurity)
  FROM relation r JOIN pg_class c ON c.oid = r.oid LEFT JOIN pg_am am ON am.oid = c.relam
UNION ALL
SELECT r.object, 'column ' || a.attnum,
       CASE WHEN a.attisdropped THEN 'dropped'
            ELSE concat_ws(' ', quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
                           CASE WHEN a.attnotnull THEN 'not null' END,
                           'default ' || pg_get_expr(d.adbin, d.adrelid),
                           CASE a.attidentity WHEN 'a' THEN 'generated always as identity'
                                              WHEN 'd' THEN 'generated by default as identity' END,
                           CASE WHEN a.attgenerated = 's' THEN 'generated always (stored)' END,
                           CASE WHEN a.attcollation <> t.typcollation THEN 'collate ' || a.attcollation::regcollation::text END,
                           CASE WHEN a.attstorage <> t.typstorage THEN format('storage %s', a.attstorage) END,
                           CASE WHEN a.attcompression <> '' THEN format('compression %s', a.attcompression) END,
                           CASE WHEN a.attstattarget >= 0 THEN 'statistics ' || a.attstattarget END,
                           'options ' || options.list, 'privileges ' || pg_temp.sorted_acl(a.attacl)) END
  FROM relation r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND r.relkind <> 'S'
  LEFT JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  -- This server stores pg_attver=N among every column's options, N differing from one CREATE to
  -- the next: not a part of the column's definition.
 CROSS JOIN LATERAL (SELECT string_agg(o, ',' ORDER BY o) AS list FROM unnest(a.attoptions) AS o
                      WHERE o NOT LIKE 'pg\_attver=%') AS options
UNION ALL
SELECT r.object, 'comment on column ' || a.attname, col_description(r.oid, a.attnum)
  FROM relation r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND r.relkind <> 'S'
UNION ALL
SELECT p.object, p.aspect, p.definition FROM part p
UNION ALL
SELECT p.object, 'comment on ' || p.aspect, p.comment FROM part p
UNION ALL
SELECT r.object, 'definition', pg_get_viewdef(r.oid) FROM relation r WHERE r.relkind IN ('v', 'm')
UNION ALL
SELECT r.object, 'sequence',
       format('as %s, start %s, increment %s, minimum %s, maximum %s, cache %s, cycle %s',
              s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
  FROM relation r JOIN pg_sequence s ON s.seqrelid = r.oid
UNION ALL
SELECT r.object, 'owned by', d.refobjid::regclass || '.' || quote_ident(a.attname)
  FROM relation r
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = r.oid AND d.deptype = 'a'
                  AND d.refclassid = 'pg_class'::regclass
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE r.relkind = 'S'
UNION ALL
-- Functions and procedures: the definition (arguments, defaults, result, language, volatility,
-- parallel safety, strictness, security, settings, body), and each attribute again.
SELECT m.object, 'definition', pg_get_functiondef(p.oid)
  FROM member m JOIN pg_proc p ON p.oid = m.objid WHERE m.classid = 'pg_proc'::regclass
UNION ALL
SELECT m.object, 'attributes',
       format('kind %s, security definer %s, volatility %s, parallel %s, strict %s, leakproof %s, cost %s, rows %s, settings %s',
              p.prokind, p.prosecdef, p.provolatile, p.proparallel, p.proisstrict, p.proleakproof, p.procost,
              p.prorows, p.proconfig)
  FROM member m JOIN pg_proc p ON p.oid = m.objid WHERE m.classid = 'pg_proc'::regclass
UNION ALL
-- Types: every attribute of the type (a composite type's columns are its relation's, above).
SELECT m.object, 'type',
       format('type %s, length %s, by value %s, alignment %s, storage %s, category %s, preferred %s, delimiter %s, '
              'input %s, output %s, receive %s, send %s, typmod input %s, typmod output %s, analyze %s, subscript %s, '
              'element %s, base type %s, not null %s, default %s, collation %s',
              t.typtype, t.typlen, t.typbyval, t.typalign, t.typstorage, t.typcategory, t.typispreferred, t.typdelim,
              t.typinput::regprocedure, t.typoutput::regprocedure, t.typreceive::regprocedure, t.typsend::regprocedure,
              t.typmodin::regprocedure, t.typmodout::regprocedure, t.typanalyze::regprocedure,
              t.typsubscript::regprocedure, t.typelem::regtype, t.typbasetype::regtype, t.typnotnull,
              COALESCE(pg_get_expr(t.typdefaultbin, 0), t.typdefault), t.typcollation::regcollation)
  FROM member m JOIN pg_type t ON t.oid = m.objid WHERE m.classid = 'pg_type'::regclass
UNION ALL
-- Operators, operator classes and families (with the operators and functions in them).
SELECT m.object, 'operator',
       format('function %s, left %s, right %s, result %s, commutator %s, negator %s, restrict %s, join %s, merges %s, hashes %s',
              o.oprcode::regprocedure, o.oprleft::regtype, o.oprright::regtype, o.oprresult::regtype,
              NULLIF(o.oprcom, 0)::regoperator, NULLIF(o.oprnegate, 0)::regoperator, o.oprrest::regprocedure,
              o.oprjoin::regprocedure, o.oprcanmerge, o.oprcanhash)
  FROM member m JOIN pg_operator o ON o.oid = m.objid WHERE m.classid = 'pg_operator'::regclass
UNION ALL
SELECT m.object, 'operator class',
       format('method %s, type %s, default %s, family %s, storage %s', am.amname, c.opcintype::regtype,
              c.opcdefault, f.opfname, NULLIF(c.opckeytype, 0)::regtype)
  FROM member m JOIN pg_opclass c ON c.oid = m.objid JOIN pg_am am ON am.oid = c.opcmethod
  JOIN pg_opfamily f ON f.oid = c.opcfamily
 WHERE m.classid = 'pg_opclass'::regclass
UNION ALL
SELECT m.object, 'operator family', format('method %s', am.amname)
  FROM member m JOIN pg_opfamily f ON f.oid = m.objid JOIN pg_am am ON am.oid = f.opfmethod
 WHERE m.classid = 'pg_opfamily'::regclass
UNION ALL
SELECT m.object, format('operator %s (%s, %s)', o.amopstrategy, o.amoplefttype::regtype, o.amoprighttype::regtype),
       format('%s, purpose %s, sort family %s', o.amopopr::regoperator, o.amoppurpose, NULLIF(o.amopsortfamily, 0))
  FROM member m JOIN pg_amop o ON o.amopfamily = m.objid WHERE m.classid = 'pg_opfamily'::regclass
UNION ALL
SELECT m.object, format('function %s (%s, %s)', p.amprocnum, p.amproclefttype::regtype, p.amprocrighttype::regtype),
       p.amproc::regprocedure::text
  FROM member m JOIN pg_amproc p ON p.amprocfamily = m.objid WHERE m.classid = 'pg_opfamily'::regclass
UNION ALL
SELECT m.object, 'event trigger',
       format('on %s when tag in %s execute %s, enabled %s', e.evtevent, e.evttags,
              e.evtfoid::regprocedure, e.evtenabled)
  FROM member m JOIN pg_event_trigger e ON e.oid = m.objid WHERE m.classid = 'pg_event_trigger'::regclass
UNION ALL
-- The extension itself: its schema, and the tables and sequences pg_dump dumps the data of.
SELECT 'extension eventsource', 'extension',
       format('version %s, schema %s, relocatable %s, owner %s', x.extversion, x.extnamespace::regnamespace,
              x.extrelocatable, pg_get_userbyid(x.extowner))
  FROM pg_extension x WHERE x.extname = 'eventsource'
UNION ALL
SELECT 'extension eventsource', 'dumped with data: ' || config.relation::regclass::text, config.condition
  FROM pg_extension x, unnest(x.extconfig::regclass[], x.extcondition) AS config(relation, condition)
 WHERE x.extname = 'eventsource'
UNION ALL
SELECT 'schema eventsource', 'schema',
       format('owner %s, privileges %s, comment %s', pg_get_userbyid(n.nspowner), pg_temp.sorted_acl(n.nspacl),
              obj_description(n.oid, 'pg_namespace'))
  FROM pg_namespace n WHERE n.nspname = 'eventsource';

-- The calls of a version that the current library serves until ALTER EXTENSION UPDATE, through
-- the entry points that version's scripts bound (before 0.8.0 those ask the catalog which schema
-- is installed): appends, stream reads, snapshots and a version conflict, and with the stream
-- lifecycle (0.5.0 on) retention, a tombstone and what it refuses, and a delete. Each row is one
-- call's outcome; the first names the entry points. Callers roll back, so that the walk's data
-- stays as it was.
CREATE FUNCTION pg_temp.calls_served(lifecycle boolean) RETURNS SETOF text LANGUAGE plpgsql AS $calls$
DECLARE
    events_of_stream constant text :=
        'SELECT string_agg(stream_version || '' '' || event_type, '', '' ORDER BY stream_version) FROM eventsource.read_stream(''served-1''';
    outcome text;
BEGIN
    RETURN NEXT 'entry points: ' || (SELECT string_agg(p.prosrc, ', ' ORDER BY p.prosrc) FROM pg_proc p
                                      WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'eventsource')
                                        AND p.proname IN ('append', 'append_events', 'read_stream', 'save_snapshot', 'load_snapshot',
                                                          'load_stream', 'set_stream_metadata', 'delete_stream', 'tombstone_stream'));
    RETURN NEXT 'append_events: ' || (eventsource.append_events('served-1', '[{"type": "Opened", "data": {}}, {"type": "Approved", "data": {}}]', 0)).stream_version;
    RETURN NEXT 'append: ' || eventsource.append('served-1', 'Paid', '{}', expected_version => 2);
    IF lifecycle THEN
        RETURN NEXT 'set_stream_metadata: ' || eventsource.set_stream_metadata('served-1', '{"truncate_before": 2}')::text;
    END IF;
    EXECUTE events_of_stream || ')' INTO outcome;
    RETURN NEXT 'read_stream forward: ' || outcome;
    EXECUTE events_of_stream || ', direction => ''backward'')' INTO outcome;
    RETURN NEXT 'read_stream backward: ' || outcome;
    PERFORM eventsource.save_snapshot('served-1', 1, '{"opened": true}');
    RETURN NEXT 'load_snapshot: ' || (SELECT stream_version || ' ' || state FROM eventsource.load_snapshot('served-1'));
    RETURN NEXT 'load_stream: ' || (SELECT string_agg(kind || ' ' || stream_version, ', ') FROM eventsource.load_stream('served-1'));
    RETURN NEXT 'read_all: ' || (SELECT count(*) > 0 AND bool_and(checkpoint IS NOT NULL) FROM eventsource.read_all());
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'eventsource.events'::regclass AND attname = 'tags') THEN
        BEGIN
            PERFORM eventsource.append_events('served-1', '[{"type": "Tagged", "data": {}, "tags": ["t"]}]');
        EXCEPTION WHEN OTHERS THEN
            RETURN NEXT 'append_events with tags: ' || SQLSTATE || ' ' || SQLERRM;
        END;
    END IF;
    BEGIN
        PERFORM eventsource.append('served-1', 'Paid', '{}', expected_version => 1);
    EXCEPTION WHEN OTHERS THEN
        RETURN NEXT 'append at version 1: ' || SQLSTATE || ' ' || SQLERRM;
    END;
    IF lifecycle THEN
        RETURN NEXT 'tombstone_stream: ' || eventsource.tombstone_stream('served-1', expected_version => 3);
        RETURN NEXT 'read_stream after the tombstone: ' || (SELECT count(*) FROM eventsource.read_stream('served-1')) || ' events';
        BEGIN
            PERFORM eventsource.append('served-1', 'Reopened', '{}');
        EXCEPTION WHEN OTHERS THEN
            RETURN NEXT 'append after the tombstone: ' || SQLSTATE || ' ' || SQLERRM;
        END;
        BEGIN
            PERFORM eventsource.append('served-1', 'Reopened', '{}', expected_version => 1);
        EXCEPTION WHEN OTHERS THEN
            RETURN NEXT 'append at version 1 after the tombstone: ' || SQLSTATE || ' ' || SQLERRM;
        END;
        BEGIN
            PERFORM eventsource.save_snapshot('served-1', 3, '{}');
        EXCEPTION WHEN OTHERS THEN
            RETURN NEXT 'save_snapshot after the tombstone: ' || SQLSTATE || ' ' || SQLERRM;
        END;
        PERFORM eventsource.append('served-2', 'Opened', '{}');
        RETURN NEXT 'delete_stream: ' || eventsource.delete_stream('served-2', expected_version => 1);
        RETURN NEXT 'read_stream after the delete: ' || (SELECT count(*) FROM eventsource.read_stream('served-2')) || ' events';
    END IF;
END
$calls$;

-- What a fresh install of the current version consists of.
CREATE EXTENSION eventsource;
CREATE TEMP TABLE fresh_install AS SELECT * FROM extension_shape;
SELECT extversion AS current_version FROM pg_extension WHERE extname = 'eventsource';
DROP EXTENSION eventsource;

-- 0.1.0, with data.
CREATE EXTENSION eventsource VERSION '0.1.0';
SELECT eventsource.append_events('loan-1', '[{"type": "Requested", "data": {"amount": 100}}, {"type": "Approved", "data": {}}]');
SELECT eventsource.append('loan-2', 'Requested', '{"amount": 50}', event_id => 'c0ffee00-0000-4000-8000-000000000001');
CREATE TEMP TABLE events_before AS SELECT * FROM eventsource.events;
CREATE TEMP TABLE streams_before AS SELECT * FROM eventsource.streams;

-- 0.1.0 -> 0.2.0: snapshots.
ALTER EXTENSION eventsource UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
SELECT count(*) AS changed_events
  FROM ((SELECT * FROM eventsource.events EXCEPT SELECT * FROM events_before)
        UNION ALL (SELECT * FROM events_before EXCEPT SELECT * FROM eventsource.events)) AS difference;
SELECT count(*) AS changed_streams
  FROM ((SELECT * FROM eventsource.streams EXCEPT SELECT * FROM streams_before)
        UNION ALL (SELECT * FROM streams_before EXCEPT SELECT * FROM eventsource.streams)) AS difference;
SELECT eventsource.append('loan-1', 'Paid', '{}', expected_version => 2);
SELECT eventsource.append('loan-2', 'Requested', '{"amount": 50}', event_id => 'c0ffee00-0000-4000-8000-000000000001') AS idempotent_retry;
SELECT eventsource.save_snapshot('loan-1', 2, '{"owed": 100}');
SELECT kind, stream_version, data FROM eventsource.load_stream('loan-1');
CREATE TEMP TABLE snapshots_before AS SELECT * FROM eventsource.snapshots;

-- 0.2.0 -> 0.3.0: the bus (subscriptions).
ALTER EXTENSION eventsource UPDATE TO '0.3.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
SELECT (SELECT count(*) FROM eventsource.events) = (SELECT count(*) + 1 FROM events_before) AS events_kept,
       (SELECT count(*) FROM eventsource.snapshots) = (SELECT count(*) FROM snapshots_before) AS snapshots_kept;
SELECT eventsource.create_subscription('loans', category => 'loan');
SELECT stream_id, stream_version FROM eventsource.poll('loans');

-- 0.3.0 -> 0.4.0: projections.
ALTER EXTENSION eventsource UPDATE TO '0.4.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
SELECT name, consumer_group_member, events_behind FROM eventsource.subscription_status;
CREATE TABLE loan_totals (loan_id text PRIMARY KEY, events int NOT NULL);
CREATE FUNCTION count_loan_event(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO public.loan_totals VALUES (e.stream_id, 1) ON CONFLICT (loan_id) DO UPDATE SET events = public.loan_totals.events + 1';
-- The current library refuses create_projection before 0.6.0, whose SECURITY DEFINER function hides
-- the caller (the role the handlers would run as); a projection the 0.4.0 library made is a row.
SELECT eventsource.create_projection('loan-totals', 'count_loan_event(eventsource.event)');
INSERT INTO eventsource.projections (name, handler, owner, mode, on_failure, max_attempts)
VALUES ('loan-totals', 'count_loan_event(eventsource.event)', current_user::regrole, 'inline', 'stop', 5);
SELECT eventsource.rebuild_projection('loan-totals') AS replayed;
SELECT eventsource.append('loan-2', 'Approved', '{}');
SELECT * FROM loan_totals ORDER BY loan_id;
SELECT eventsource.drop_projection('loan-totals');
DROP TABLE loan_totals;
DROP FUNCTION count_loan_event(eventsource.event);

-- 0.4.0's calls, before its update.
BEGIN;
SELECT * FROM pg_temp.calls_served(lifecycle => false);
ROLLBACK;

-- 0.4.0 -> 0.5.0: the stream lifecycle and statistics. The streams keep their rows, with no
-- retention; delete, metadata and scavenge work on streams written before the upgrade.
CREATE TEMP TABLE streams_at_0_4 AS SELECT * FROM eventsource.streams;
ALTER EXTENSION eventsource UPDATE TO '0.5.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
SELECT count(*) AS changed_streams
  FROM ((SELECT stream_id, category, stream_version, created_at, updated_at FROM eventsource.streams
         EXCEPT SELECT * FROM streams_at_0_4)
        UNION ALL (SELECT * FROM streams_at_0_4
         EXCEPT SELECT stream_id, category, stream_version, created_at, updated_at FROM eventsource.streams)) AS difference;
SELECT stream_id, state, first_visible_version, visible_events FROM eventsource.stream_status ORDER BY stream_id;
SELECT eventsource.set_stream_metadata('loan-1', '{"max_count": 1}');
SELECT stream_version, event_type FROM eventsource.read_stream('loan-1');
SELECT eventsource.delete_stream('loan-2');
SELECT eventsource.drop_subscription('loans');
SELECT eventsource.scavenge();
SELECT stream_id, stream_version FROM eventsource.events ORDER BY global_position;

-- 0.5.0 -> 0.6.0: security. A subscription and an inline projection made before the upgrade keep
-- working: the subscription belongs to eventsource_reader (every reader may poll it, as before;
-- the upgrade says so), the handler keeps its search path; new ones belong to their creator and
-- capture the creator's search path.
SELECT eventsource.create_subscription('ledger');
CREATE TABLE public.ledger_totals (stream_id text PRIMARY KEY, events int NOT NULL);
CREATE FUNCTION public.count_ledger_event(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO public.ledger_totals VALUES (e.stream_id, 1) ON CONFLICT (stream_id) DO UPDATE SET events = public.ledger_totals.events + 1';
INSERT INTO eventsource.projections (name, handler, owner, mode, on_failure, max_attempts)
VALUES ('ledger-totals', 'public.count_ledger_event(eventsource.event)', current_user::regrole, 'inline', 'stop', 5);
ALTER EXTENSION eventsource UPDATE TO '0.6.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
SELECT name, owner FROM eventsource.subscriptions;
SELECT name, search_path FROM eventsource.projections;
CREATE ROLE upgrade_consumer IN ROLE eventsource_reader;
SET ROLE upgrade_consumer;
SELECT count(*) AS polled_by_a_reader FROM eventsource.poll('ledger');
RESET ROLE;
SELECT eventsource.append('loan-3', 'Requested', '{}');
SELECT * FROM public.ledger_totals ORDER BY stream_id;
SELECT eventsource.set_subscription_owner('ledger', 'postgres');
SET ROLE upgrade_consumer;
SELECT count(*) FROM eventsource.poll('ledger');
RESET ROLE;
SET search_path = public, pg_temp, pg_catalog;
SELECT eventsource.create_projection('ledger-totals-2', 'public.count_ledger_event(eventsource.event)', mode => 'async');
RESET search_path;
SELECT name, search_path FROM eventsource.projections ORDER BY name;
SELECT eventsource.drop_projection('ledger-totals');
SELECT eventsource.drop_projection('ledger-totals-2');
SELECT eventsource.drop_subscription('ledger');
DROP ROLE upgrade_consumer;
DROP TABLE public.ledger_totals;
DROP FUNCTION public.count_ledger_event(eventsource.event);

-- Projections made at 0.6.0 (handlers stored as regprocedure, which pg_upgrade refuses): one the
-- current library creates there, and one whose handler was dropped since.
CREATE TABLE public.carried_totals (stream_id text PRIMARY KEY, events int NOT NULL);
CREATE FUNCTION public.count_carried_event(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO public.carried_totals VALUES (e.stream_id, 1) ON CONFLICT (stream_id) DO UPDATE SET events = public.carried_totals.events + 1';
CREATE FUNCTION public.reset_carried_totals() RETURNS void LANGUAGE sql AS 'TRUNCATE public.carried_totals';
CREATE FUNCTION public.dropped_handler(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
SET search_path = public, pg_temp, pg_catalog;
SELECT eventsource.create_projection('carried-totals', 'count_carried_event(eventsource.event)', category => 'carry',
                                     reset_handler => 'reset_carried_totals()');
SELECT eventsource.create_projection('dropped-handler', 'dropped_handler(eventsource.event)', mode => 'async');
RESET search_path;
DROP FUNCTION public.dropped_handler(eventsource.event);
SELECT name, pg_typeof(handler) FROM eventsource.projections ORDER BY name;
SELECT eventsource.append('carry-1', 'Carried', '{}');
-- At 0.6.0 the current library keeps the check of before 0.7.0: a transaction that wrote before
-- it appends gets 40001 when the stream's newest event comes from a newer transaction (here one
-- far ahead, 2^63 - 1, inserted directly, as only the extension's owner can). This transaction's
-- id differs from run to run: terse errors.
SELECT eventsource.append('loan-4', 'Requested', '{}');
INSERT INTO eventsource.events (transaction_id, stream_id, stream_version, event_id, event_type, data)
VALUES ('9223372036854775807', 'loan-4', 2, gen_random_uuid(), 'Approved', '{}');
UPDATE eventsource.streams SET stream_version = 2 WHERE stream_id = 'loan-4';
\set VERBOSITY terse
BEGIN;
SELECT pg_current_xact_id() IS NOT NULL AS wrote_before;
SELECT eventsource.append('loan-4', 'Paid', '{}');
ROLLBACK;
\set VERBOSITY default
-- 0.6.0's calls, before its update.
BEGIN;
SELECT * FROM pg_temp.calls_served(lifecycle => true);
ROLLBACK;

-- 0.6.0 -> 0.7.0: log integrity.
-- A subscription and a projection with a category containing '-' never matched an event (0.7.0's
-- library refuses one, so they are made by hand here): the upgrade names them in a warning.
SELECT eventsource.create_subscription('misfiled', category => 'loan');
UPDATE eventsource.subscriptions SET category = 'loan-3' WHERE name = 'misfiled';
CREATE FUNCTION public.ignore_event(e eventsource.event) RETURNS void LANGUAGE sql AS '';
INSERT INTO eventsource.projections (name, handler, owner, mode, on_failure, max_attempts, search_path, category)
VALUES ('misfiled', 'public.ignore_event(eventsource.event)', current_user::regrole, 'async', 'stop', 5, 'pg_catalog, pg_temp', 'loan-3');
-- Acknowledgements bound to their lease: before the update, poll returns no lease and ack takes
-- none (a checkpoint that names no event is 22023 there too). A batch polled before the update
-- cannot be acknowledged after it (its lease has no token: 55006); once that lease ends, the next
-- poll delivers the batch again with a lease.
SELECT eventsource.create_subscription('lending');
SELECT stream_id, stream_version FROM eventsource.poll('lending', 2);
SELECT eventsource.ack('lending', checkpoint) FROM eventsource.read_all(max_count => 2) ORDER BY checkpoint DESC LIMIT 1;
\set VERBOSITY sqlstate
SELECT eventsource.ack('lending', '(1,1)');
\set VERBOSITY default
SELECT stream_id, stream_version FROM eventsource.poll('lending', 1, lease_seconds => 3600);
ALTER EXTENSION eventsource UPDATE TO '0.7.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
-- The existing log is epoch 1 of this cluster, without offset: its checkpoints stay valid.
SELECT epoch, reason, transaction_id_offset, start_transaction_id,
       system_identifier = (SELECT system_identifier FROM pg_control_system()) AS this_cluster
  FROM eventsource.log_epochs;
SELECT count(*) > 0 AS read_after_0_7_0, bool_and(transaction_id < eventsource.log_horizon()) AS below_horizon
  FROM eventsource.read_all(max_count => 100000);
SELECT count(*) AS while_leased FROM eventsource.poll('lending');
\set VERBOSITY sqlstate
SELECT eventsource.ack('lending', delivered_through) FROM eventsource.subscription_members WHERE subscription_name = 'lending';
SELECT eventsource.ack('lending', delivered_through, 0, gen_random_uuid()) FROM eventsource.subscription_members WHERE subscription_name = 'lending';
\set VERBOSITY default
-- The lease ends (a lease of an hour, so that a slow run, as under valgrind, cannot end it sooner).
UPDATE eventsource.subscription_members SET leased_until = now() - interval '1 second' WHERE subscription_name = 'lending';
CREATE TEMP TABLE lending_batch AS SELECT * FROM eventsource.poll('lending', 1);
SELECT stream_id, stream_version, lease IS NOT NULL AS leased FROM lending_batch;
SELECT eventsource.ack('lending', checkpoint, 0, lease) FROM lending_batch;
SELECT eventsource.drop_subscription('lending');
DROP TABLE lending_batch;
SELECT eventsource.drop_projection('misfiled');
SELECT eventsource.drop_subscription('misfiled');
DROP FUNCTION public.ignore_event(eventsource.event);
-- The handlers are their qualified signatures now (a dropped one a signature that names nothing),
-- and the projection made before the upgrade still runs and rebuilds.
SELECT name, pg_typeof(handler), handler, reset_handler FROM eventsource.projections
 WHERE name = 'carried-totals';
SELECT handler LIKE 'pg_catalog."dropped function %"(eventsource.event)' AS dropped_handler_names_nothing,
       pg_catalog.to_regprocedure(handler) IS NULL AS resolves_to_nothing
  FROM eventsource.projections WHERE name = 'dropped-handler';
SELECT a.attrelid::regclass AS pg_upgrade_refuses, a.attname, a.atttypid::regtype
  FROM pg_attribute a
 WHERE a.attrelid IN (SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'eventsource'::regnamespace AND c.relkind IN ('r', 'm'))
   AND a.attnum > 0 AND NOT a.attisdropped
   AND a.atttypid IN ('regcollation'::regtype, 'regconfig'::regtype, 'regdictionary'::regtype, 'regnamespace'::regtype,
                      'regoper'::regtype, 'regoperator'::regtype, 'regproc'::regtype, 'regprocedure'::regtype);
SELECT eventsource.append('carry-1', 'Carried', '{}');
SELECT * FROM public.carried_totals ORDER BY stream_id;
SELECT eventsource.rebuild_projection('carried-totals') AS replayed;
SELECT * FROM public.carried_totals ORDER BY stream_id;
SELECT eventsource.drop_projection('carried-totals');
SELECT eventsource.drop_projection('dropped-handler');
DROP TABLE public.carried_totals;
DROP FUNCTION public.count_carried_event(eventsource.event);
DROP FUNCTION public.reset_carried_totals();
-- Every stream's last_transaction_id is the newest id among its events and the markers of its
-- deletes (loan-2's events were scavenged after its delete: its marker's).
SELECT s.stream_id,
       s.last_transaction_id = (SELECT max(e.transaction_id) FROM eventsource.events e
                                 WHERE e.stream_id = s.stream_id) AS from_its_newest_event,
       s.last_transaction_id = (SELECT max(e.transaction_id) FROM eventsource.events e
                                 WHERE e.stream_id = '$streams' AND e.event_type = '$stream-deleted'
                                   AND e.data->>'stream_id' = s.stream_id) AS from_its_marker
  FROM eventsource.streams s ORDER BY s.stream_id;
-- Now the statement that writes the stream checks it, for a transaction that wrote before or not.
\set VERBOSITY terse
SELECT eventsource.append('loan-4', 'Paid', '{}');
\set VERBOSITY default
SELECT eventsource.append('loan-1', 'Paid', '{}');
SELECT s.last_transaction_id = e.transaction_id AS row_has_the_append
  FROM eventsource.streams s
  JOIN eventsource.events e ON e.stream_id = s.stream_id AND e.stream_version = s.stream_version
 WHERE s.stream_id = 'loan-1';
SELECT eventsource.delete_stream('loan-1');
SELECT s.last_transaction_id = e.transaction_id AS row_has_the_marker
  FROM eventsource.streams s
  JOIN eventsource.events e ON e.stream_id = '$streams' AND e.stream_version = (SELECT stream_version FROM eventsource.streams WHERE stream_id = '$streams')
 WHERE s.stream_id = 'loan-1';
-- The appends after the update stayed in epoch 1: same cluster, same server start.
SELECT count(*) AS epochs FROM eventsource.log_epochs;
-- 0.7.0's calls, before its update.
BEGIN;
SELECT * FROM pg_temp.calls_served(lifecycle => true);
ROLLBACK;

-- 0.7.0 -> 0.8.0: one install script built from readable sources; the log, the streams and the
-- snapshots are kept as they are, the events without tags (NULL).
CREATE TEMP TABLE events_at_0_7 AS SELECT * FROM eventsource.events;
CREATE TEMP TABLE streams_at_0_7 AS SELECT * FROM eventsource.streams;
SELECT eventsource.save_snapshot('loan-3', 1, '{"requested": true}');
CREATE TEMP TABLE snapshots_at_0_7 AS SELECT * FROM eventsource.snapshots;
ALTER EXTENSION eventsource UPDATE TO '0.8.0';
SELECT extversion FROM pg_extension WHERE extname = 'eventsource';
CREATE TEMP VIEW events_after_0_8 AS
SELECT global_position, transaction_id, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at
  FROM eventsource.events;
SELECT count(*) FILTER (WHERE tags IS NOT NULL) AS tagged_events FROM eventsource.events;
SELECT (SELECT count(*) FROM ((TABLE events_after_0_8 EXCEPT TABLE events_at_0_7)
                              UNION ALL (TABLE events_at_0_7 EXCEPT TABLE events_after_0_8)) AS d) AS changed_events,
       (SELECT count(*) FROM ((TABLE eventsource.streams EXCEPT TABLE streams_at_0_7)
                              UNION ALL (TABLE streams_at_0_7 EXCEPT TABLE eventsource.streams)) AS d) AS changed_streams,
       (SELECT count(*) FROM ((TABLE eventsource.snapshots EXCEPT TABLE snapshots_at_0_7)
                              UNION ALL (TABLE snapshots_at_0_7 EXCEPT TABLE eventsource.snapshots)) AS d) AS changed_snapshots;
SELECT eventsource.append('loan-3', 'Approved', '{}', expected_version => 1, tags => '{loan:3}');
SELECT kind, stream_version, data FROM eventsource.load_stream('loan-3');
SELECT stream_version, tags FROM eventsource.read_by_query('{"items": [{"tags": ["loan:3"]}]}');
DROP VIEW events_after_0_8;
-- The same calls through the entry points of 0.8.0.
BEGIN;
SELECT * FROM pg_temp.calls_served(lifecycle => true);
ROLLBACK;

-- The upgraded extension is the fresh install: nothing missing, nothing extra, nothing different.
CREATE TEMP TABLE upgraded AS SELECT * FROM extension_shape;
SELECT COALESCE(f.object, u.object) AS object, COALESCE(f.aspect, u.aspect) AS aspect,
       f.value AS fresh_install, u.value AS upgraded,
       CASE WHEN u.object IS NULL THEN 'missing after upgrade'
            WHEN f.object IS NULL THEN 'only after upgrade' ELSE 'different' END AS difference
  FROM fresh_install f FULL JOIN upgraded u ON u.object = f.object AND u.aspect = f.aspect
 WHERE f.object IS NULL OR u.object IS NULL OR f.value IS DISTINCT FROM u.value
 ORDER BY 1, 2;
-- What was compared (each object and aspect is described once).
SELECT count(DISTINCT object) AS objects, count(*) AS aspects, count(DISTINCT (object, aspect)) AS distinct_aspects
  FROM upgraded;

-- Back to a fresh install for the tests that follow.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
