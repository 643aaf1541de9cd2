-- 20_types.sql: the types the functions take and return.
--
-- eventsource.checkpoint, a place in the global log, with its input and output functions, its
-- constructor and accessors, the comparison operators and the default btree operator class;
-- eventsource.event, the row the read functions return.

-- ---------------------------------------------------------------------------------------------
-- The checkpoint
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

-- ---------------------------------------------------------------------------------------------
-- The event row
-- ---------------------------------------------------------------------------------------------

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
    checkpoint      eventsource.checkpoint,
    tags            text[]
);

COMMENT ON TYPE eventsource.event IS
    'An event as the read functions return it: the stored columns, its checkpoint in the global log, then its tags (NULL: none).';
