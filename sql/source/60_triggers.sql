-- 60_triggers.sql: the triggers and event triggers and their functions.
--
-- On the log: the guard that lets no one change or remove recorded events but scavenge, and the
-- trigger that feeds appended events to the inline projections (enabled while a running inline
-- projection exists). On the projections: the triggers that keep the log's inline trigger in step.
-- On the database: the event triggers that follow a projection's handler when it is renamed or
-- moved.

-- ---------------------------------------------------------------------------------------------
-- The log's guard
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION eventsource.reject_event_change()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'eventsource_reject_event_change';

COMMENT ON FUNCTION eventsource.reject_event_change() IS
    'Trigger function that guards eventsource.events: raises an error on UPDATE, DELETE and TRUNCATE, whoever runs them, except for the DELETE of eventsource.scavenge. Its triggers fire on the origin only: not where session_replication_role is replica (which only a superuser sets, or a role granted SET on it), so that logical replication applies the publisher''s scavenge.';

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON eventsource.events
    FOR EACH ROW EXECUTE FUNCTION eventsource.reject_event_change();

COMMENT ON TRIGGER events_append_only ON eventsource.events IS
    'Refuses every UPDATE of a recorded event, and every DELETE but scavenge''s of the events that deletes and retention settings hide (eventsource.reject_event_change); on the origin only, not where session_replication_role is replica.';

CREATE TRIGGER events_append_only_truncate
    BEFORE TRUNCATE ON eventsource.events
    FOR EACH STATEMENT EXECUTE FUNCTION eventsource.reject_event_change();

COMMENT ON TRIGGER events_append_only_truncate ON eventsource.events IS
    'Refuses every TRUNCATE of the log (eventsource.reject_event_change); on the origin only, not where session_replication_role is replica.';

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

COMMENT ON TRIGGER events_inline_projections ON eventsource.events IS
    'Feeds the events each INSERT appends to the running inline projections (eventsource.run_inline_projections); enabled while one exists, disabled otherwise.';

-- Any change to the projections (their functions, or a pg_restore loading the table) enables the
-- trigger above while a running inline projection exists and disables it otherwise.
CREATE FUNCTION eventsource.synchronize_inline_projections()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'eventsource_synchronize_inline_projections';

COMMENT ON FUNCTION eventsource.synchronize_inline_projections() IS
    'Trigger function on eventsource.projections: enables the log''s inline projection trigger while a running inline projection exists, and disables it otherwise.';

-- Both fire also where session_replication_role is replica: a superuser's session, and logical
-- replication's apply, which fires row triggers only.
CREATE TRIGGER projections_synchronize_inline
    AFTER INSERT OR UPDATE OF mode, status OR DELETE OR TRUNCATE ON eventsource.projections
    FOR EACH STATEMENT EXECUTE FUNCTION eventsource.synchronize_inline_projections();

ALTER TABLE eventsource.projections ENABLE ALWAYS TRIGGER projections_synchronize_inline;

COMMENT ON TRIGGER projections_synchronize_inline ON eventsource.projections IS
    'After each statement that changes the projections, enables the log''s inline trigger while a running inline projection exists and disables it otherwise (eventsource.synchronize_inline_projections).';

CREATE TRIGGER projections_synchronize_inline_applied
    AFTER INSERT OR UPDATE OF mode, status OR DELETE ON eventsource.projections
    FOR EACH ROW EXECUTE FUNCTION eventsource.synchronize_inline_projections();

ALTER TABLE eventsource.projections ENABLE REPLICA TRIGGER projections_synchronize_inline_applied;

COMMENT ON TRIGGER projections_synchronize_inline_applied ON eventsource.projections IS
    'Where session_replication_role is replica (logical replication applying the projections): the log''s inline trigger follows each change, as projections_synchronize_inline does for statements.';

-- ---------------------------------------------------------------------------------------------
-- Renamed handlers
-- ---------------------------------------------------------------------------------------------

-- A projection follows its handler when the function is renamed or moved (as the OID of before
-- 0.7.0 did): an event trigger notes the function each stored signature names at the start of a
-- command that can rename or move one, and stores the new signatures at its end.
CREATE FUNCTION eventsource.follow_renamed_handlers()
RETURNS event_trigger
LANGUAGE c
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_follow_renamed_handlers';

COMMENT ON FUNCTION eventsource.follow_renamed_handlers() IS
    'Event trigger function: at the start of ALTER FUNCTION, ALTER ROUTINE, ALTER SCHEMA and ALTER EXTENSION, notes the function each projection''s handler and reset handler signature names; at their end, stores the new signature of each of those functions that was renamed or moved.';

CREATE EVENT TRIGGER eventsource_handlers_before_rename ON ddl_command_start
    WHEN TAG IN ('ALTER FUNCTION', 'ALTER ROUTINE', 'ALTER SCHEMA', 'ALTER EXTENSION')
    EXECUTE FUNCTION eventsource.follow_renamed_handlers();

CREATE EVENT TRIGGER eventsource_handlers_after_rename ON ddl_command_end
    WHEN TAG IN ('ALTER FUNCTION', 'ALTER ROUTINE', 'ALTER SCHEMA', 'ALTER EXTENSION')
    EXECUTE FUNCTION eventsource.follow_renamed_handlers();

-- Also where session_replication_role is replica.
ALTER EVENT TRIGGER eventsource_handlers_before_rename ENABLE ALWAYS;
ALTER EVENT TRIGGER eventsource_handlers_after_rename ENABLE ALWAYS;

COMMENT ON EVENT TRIGGER eventsource_handlers_before_rename IS
    'Notes the function each projection handler''s signature names before a command that can rename or move it (eventsource.follow_renamed_handlers).';
COMMENT ON EVENT TRIGGER eventsource_handlers_after_rename IS
    'Stores the new signatures of projection handlers that a command renamed or moved (eventsource.follow_renamed_handlers).';
