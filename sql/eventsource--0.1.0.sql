-- eventsource--0.1.0.sql: install script for version 0.1.0 of the eventsource extension.
--
-- Creates the event log (eventsource.events), the stream registry (eventsource.streams), the
-- row types the read functions return, the append and read functions (implemented in C), the
-- guard that keeps the log append-only, and the three roles with their grants.

\echo Use "CREATE EXTENSION eventsource" to load this file. \quit

-- Roles are cluster-wide: create them only where an earlier install (in another database) has not.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventsource_reader') THEN
        CREATE ROLE eventsource_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventsource_writer') THEN
        CREATE ROLE eventsource_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventsource_admin') THEN
        CREATE ROLE eventsource_admin NOLOGIN;
    END IF;
END
$roles$;

GRANT eventsource_reader TO eventsource_writer;
GRANT eventsource_writer TO eventsource_admin;

GRANT USAGE ON SCHEMA eventsource TO eventsource_reader;

-- ---------------------------------------------------------------------------------------------
-- Storage
-- ---------------------------------------------------------------------------------------------

CREATE SEQUENCE eventsource.events_global_position_seq AS bigint;

-- No CHECK constraints: only the append functions write these tables, and PostgreSQL re-parses a
-- CHECK expression on every statement that writes the table.
CREATE TABLE eventsource.streams (
    stream_id      text        NOT NULL PRIMARY KEY,
    category       text        NOT NULL,
    stream_version bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

COMMENT ON TABLE eventsource.streams IS
    'One row per stream: its category and current stream version (the number of events appended to it).';

CREATE TABLE eventsource.events (
    global_position bigint      NOT NULL DEFAULT pg_catalog.nextval('eventsource.events_global_position_seq'::pg_catalog.regclass),
    transaction_id  xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb,
    recorded_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT events_pkey PRIMARY KEY (global_position),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

ALTER SEQUENCE eventsource.events_global_position_seq OWNED BY eventsource.events.global_position;

-- The gap-safe global log is read in (transaction_id, global_position) order.
CREATE INDEX events_log_order_idx ON eventsource.events (transaction_id, global_position);
-- The same order within one category (the part of the stream id before its first '-').
CREATE INDEX events_category_log_order_idx
    ON eventsource.events (pg_catalog.split_part(stream_id, '-', 1), transaction_id, global_position);

COMMENT ON TABLE eventsource.events IS
    'The event log. Append-only: written by eventsource.append and eventsource.append_events only.';

-- pg_dump must dump the rows (and the position counter), not just CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('eventsource.streams', '');
SELECT pg_catalog.pg_extension_config_dump('eventsource.events', '');
SELECT pg_catalog.pg_extension_config_dump('eventsource.events_global_position_seq', '');

-- ---------------------------------------------------------------------------------------------
-- Row types
-- ---------------------------------------------------------------------------------------------

-- A place in the gap-safe global log: (transaction_id, global_position), ordered in that order.
-- A 16-byte base type (src/checkpoint.c): every row a log read returns carries one.
CREATE TYPE eventsource.checkpoint;

CREATE FUNCTION eventsource.checkpoint_in(cstring) RETURNS eventsource.checkpoint
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_in';
CREATE FUNCTION eventsource.checkpoint_out(eventsource.checkpoint) RETURNS cstring
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_out';
CREATE FUNCTION eventsource.checkpoint_recv(internal) RETURNS eventsource.checkpoint
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_recv';
CREATE FUNCTION eventsource.checkpoint_send(eventsource.checkpoint) RETURNS bytea
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_send';

CREATE TYPE eventsource.checkpoint (
    INPUT = eventsource.checkpoint_in,
    OUTPUT = eventsource.checkpoint_out,
    RECEIVE = eventsource.checkpoint_recv,
    SEND = eventsource.checkpoint_send,
    INTERNALLENGTH = 16,
    ALIGNMENT = double
);

COMMENT ON TYPE eventsource.checkpoint IS
    'A place in the gap-safe global log, written (transaction_id,global_position): pass a row''s checkpoint back to read_all or read_category to resume right after it.';
COMMENT ON FUNCTION eventsource.checkpoint_in(cstring) IS 'Input function of eventsource.checkpoint.';
COMMENT ON FUNCTION eventsource.checkpoint_out(eventsource.checkpoint) IS 'Output function of eventsource.checkpoint.';
COMMENT ON FUNCTION eventsource.checkpoint_recv(internal) IS 'Binary input function of eventsource.checkpoint.';
COMMENT ON FUNCTION eventsource.checkpoint_send(eventsource.checkpoint) IS 'Binary output function of eventsource.checkpoint.';

CREATE FUNCTION eventsource.checkpoint(transaction_id xid8, global_position bigint) RETURNS eventsource.checkpoint
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_make';
COMMENT ON FUNCTION eventsource.checkpoint(xid8, bigint) IS
    'The checkpoint of the event with this transaction id and global position.';
CREATE FUNCTION eventsource.checkpoint_transaction_id(eventsource.checkpoint) RETURNS xid8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_transaction_id';
COMMENT ON FUNCTION eventsource.checkpoint_transaction_id(eventsource.checkpoint) IS
    'The transaction id part of a checkpoint.';
CREATE FUNCTION eventsource.checkpoint_global_position(eventsource.checkpoint) RETURNS bigint
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_global_position';
COMMENT ON FUNCTION eventsource.checkpoint_global_position(eventsource.checkpoint) IS
    'The global position part of a checkpoint.';

CREATE FUNCTION eventsource.checkpoint_cmp(eventsource.checkpoint, eventsource.checkpoint) RETURNS integer
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_cmp';
CREATE FUNCTION eventsource.checkpoint_lt(eventsource.checkpoint, eventsource.checkpoint) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_lt';
CREATE FUNCTION eventsource.checkpoint_le(eventsource.checkpoint, eventsource.checkpoint) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_le';
CREATE FUNCTION eventsource.checkpoint_eq(eventsource.checkpoint, eventsource.checkpoint) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_eq';
CREATE FUNCTION eventsource.checkpoint_ne(eventsource.checkpoint, eventsource.checkpoint) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_ne';
CREATE FUNCTION eventsource.checkpoint_ge(eventsource.checkpoint, eventsource.checkpoint) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_ge';
CREATE FUNCTION eventsource.checkpoint_gt(eventsource.checkpoint, eventsource.checkpoint) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'eventsource_checkpoint_gt';
COMMENT ON FUNCTION eventsource.checkpoint_cmp(eventsource.checkpoint, eventsource.checkpoint) IS 'Orders checkpoints: -1, 0 or 1 (btree support).';
COMMENT ON FUNCTION eventsource.checkpoint_lt(eventsource.checkpoint, eventsource.checkpoint) IS 'Implements < on checkpoints.';
COMMENT ON FUNCTION eventsource.checkpoint_le(eventsource.checkpoint, eventsource.checkpoint) IS 'Implements <= on checkpoints.';
COMMENT ON FUNCTION eventsource.checkpoint_eq(eventsource.checkpoint, eventsource.checkpoint) IS 'Implements = on checkpoints.';
COMMENT ON FUNCTION eventsource.checkpoint_ne(eventsource.checkpoint, eventsource.checkpoint) IS 'Implements <> on checkpoints.';
COMMENT ON FUNCTION eventsource.checkpoint_ge(eventsource.checkpoint, eventsource.checkpoint) IS 'Implements >= on checkpoints.';
COMMENT ON FUNCTION eventsource.checkpoint_gt(eventsource.checkpoint, eventsource.checkpoint) IS 'Implements > on checkpoints.';

CREATE OPERATOR eventsource.< (LEFTARG = eventsource.checkpoint, RIGHTARG = eventsource.checkpoint,
    FUNCTION = eventsource.checkpoint_lt, COMMUTATOR = OPERATOR(eventsource.>), NEGATOR = OPERATOR(eventsource.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR eventsource.<= (LEFTARG = eventsource.checkpoint, RIGHTARG = eventsource.checkpoint,
    FUNCTION = eventsource.checkpoint_le, COMMUTATOR = OPERATOR(eventsource.>=), NEGATOR = OPERATOR(eventsource.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR eventsource.= (LEFTARG = eventsource.checkpoint, RIGHTARG = eventsource.checkpoint,
    FUNCTION = eventsource.checkpoint_eq, COMMUTATOR = OPERATOR(eventsource.=), NEGATOR = OPERATOR(eventsource.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, MERGES);
CREATE OPERATOR eventsource.<> (LEFTARG = eventsource.checkpoint, RIGHTARG = eventsource.checkpoint,
    FUNCTION = eventsource.checkpoint_ne, COMMUTATOR = OPERATOR(eventsource.<>), NEGATOR = OPERATOR(eventsource.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR eventsource.>= (LEFTARG = eventsource.checkpoint, RIGHTARG = eventsource.checkpoint,
    FUNCTION = eventsource.checkpoint_ge, COMMUTATOR = OPERATOR(eventsource.<=), NEGATOR = OPERATOR(eventsource.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR eventsource.> (LEFTARG = eventsource.checkpoint, RIGHTARG = eventsource.checkpoint,
    FUNCTION = eventsource.checkpoint_gt, COMMUTATOR = OPERATOR(eventsource.<), NEGATOR = OPERATOR(eventsource.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR CLASS eventsource.checkpoint_ops DEFAULT FOR TYPE eventsource.checkpoint USING btree AS
    OPERATOR 1 eventsource.<,
    OPERATOR 2 eventsource.<=,
    OPERATOR 3 eventsource.=,
    OPERATOR 4 eventsource.>=,
    OPERATOR 5 eventsource.>,
    FUNCTION 1 eventsource.checkpoint_cmp(eventsource.checkpoint, eventsource.checkpoint);

CREATE TYPE eventsource.event AS (
    global_position bigint,
    transaction_id  xid8,
    stream_id       text,
    stream_version  bigint,
    event_id        uuid,
    event_type      text,
    data            jsonb,
    metadata        jsonb,
    recorded_at     timestamptz,
    checkpoint      eventsource.checkpoint
);

COMMENT ON TYPE eventsource.event IS
    'An event as the read functions return it: the stored columns plus its checkpoint in the global log.';

-- ---------------------------------------------------------------------------------------------
-- Append-only guard
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION eventsource.reject_event_change()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'eventsource_reject_event_change';

COMMENT ON FUNCTION eventsource.reject_event_change() IS
    'Trigger function that keeps eventsource.events append-only: raises an error on UPDATE, DELETE and TRUNCATE.';

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON eventsource.events
    FOR EACH ROW EXECUTE FUNCTION eventsource.reject_event_change();

CREATE TRIGGER events_append_only_truncate
    BEFORE TRUNCATE ON eventsource.events
    FOR EACH STATEMENT EXECUTE FUNCTION eventsource.reject_event_change();

-- ---------------------------------------------------------------------------------------------
-- Append
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION eventsource.append(
    stream_id        text,
    event_type       text,
    data             jsonb,
    metadata         jsonb  DEFAULT NULL,
    expected_version bigint DEFAULT NULL,
    event_id         uuid   DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_append';

COMMENT ON FUNCTION eventsource.append(text, text, jsonb, jsonb, bigint, uuid) IS
    'Appends one event to a stream and returns the stream''s new version. expected_version: NULL any, 0 no stream, -1 stream exists, N exactly N.';

CREATE FUNCTION eventsource.append_events(
    stream_id        text,
    events           jsonb,
    expected_version bigint DEFAULT NULL,
    OUT stream_version   bigint,
    OUT global_positions bigint[])
RETURNS record
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_append_events';

COMMENT ON FUNCTION eventsource.append_events(text, jsonb, bigint) IS
    'Appends a JSON array of {"type", "data", "metadata", "id"} events to a stream atomically; returns the new stream version and the global positions taken.';

-- ---------------------------------------------------------------------------------------------
-- Reads
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION eventsource.category(stream_id text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.split_part(stream_id, '-', 1);

COMMENT ON FUNCTION eventsource.category(text) IS
    'The category of a stream: the part of its id before the first ''-'' (order-42 is in order).';

CREATE FUNCTION eventsource.stream_version(stream_id text)
RETURNS bigint
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'eventsource_stream_version';

COMMENT ON FUNCTION eventsource.stream_version(text) IS
    'The current version of a stream: the number of events appended to it, 0 when it does not exist.';

CREATE FUNCTION eventsource.read_stream(
    stream_id    text,
    from_version bigint DEFAULT NULL,
    max_count    integer DEFAULT 1000,
    direction    text DEFAULT 'forward')
RETURNS SETOF eventsource.event
LANGUAGE c STABLE PARALLEL SAFE ROWS 1000
AS 'MODULE_PATHNAME', 'eventsource_read_stream';

COMMENT ON FUNCTION eventsource.read_stream(text, bigint, integer, text) IS
    'Reads up to max_count events of one stream from from_version (inclusive), forward or backward. NULL from_version: the first event forward, the last backward.';

CREATE FUNCTION eventsource.read_all(
    after       eventsource.checkpoint DEFAULT NULL,
    max_count   integer DEFAULT 1000,
    category    text DEFAULT NULL,
    event_types text[] DEFAULT NULL)
RETURNS SETOF eventsource.event
LANGUAGE c STABLE PARALLEL SAFE ROWS 1000
AS 'MODULE_PATHNAME', 'eventsource_read_all';

COMMENT ON FUNCTION eventsource.read_all(eventsource.checkpoint, integer, text, text[]) IS
    'Reads the gap-safe global log after a checkpoint (NULL: from the start), optionally of one category and of some event types only.';

CREATE FUNCTION eventsource.read_category(
    category    text,
    after       eventsource.checkpoint DEFAULT NULL,
    max_count   integer DEFAULT 1000,
    event_types text[] DEFAULT NULL)
RETURNS SETOF eventsource.event
LANGUAGE c STABLE PARALLEL SAFE ROWS 1000
AS 'MODULE_PATHNAME', 'eventsource_read_category';

COMMENT ON FUNCTION eventsource.read_category(text, eventsource.checkpoint, integer, text[]) IS
    'Reads the gap-safe log of one category after a checkpoint (NULL: from the start), optionally of some event types only.';

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA eventsource FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA eventsource FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA eventsource FROM PUBLIC;

GRANT SELECT ON eventsource.events, eventsource.streams TO eventsource_reader;
GRANT EXECUTE ON FUNCTION
    eventsource.checkpoint(xid8, bigint),
    eventsource.checkpoint_transaction_id(eventsource.checkpoint),
    eventsource.checkpoint_global_position(eventsource.checkpoint),
    eventsource.checkpoint_cmp(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_lt(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_le(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_eq(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_ne(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_ge(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_gt(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.category(text),
    eventsource.stream_version(text),
    eventsource.read_stream(text, bigint, integer, text),
    eventsource.read_all(eventsource.checkpoint, integer, text, text[]),
    eventsource.read_category(text, eventsource.checkpoint, integer, text[])
    TO eventsource_reader;
GRANT EXECUTE ON FUNCTION
    eventsource.append(text, text, jsonb, jsonb, bigint, uuid),
    eventsource.append_events(text, jsonb, bigint)
    TO eventsource_writer;
