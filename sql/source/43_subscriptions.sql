-- 43_subscriptions.sql: durable subscriptions to the global log, and the notifier's status.
--
-- A subscription belongs to a role: only that role's members and eventsource_admin may poll or
-- acknowledge it. create_subscription, poll and ack must know their caller, so they are SECURITY
-- INVOKER (with a pinned search path) and act as the extension's owner themselves once they have
-- checked it. A poll that delivers a batch leases it to the caller with a new lease token, which
-- ack must present.

CREATE FUNCTION eventsource.consumer_group_member(stream_id text, consumer_group_size integer)
RETURNS integer
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'eventsource_consumer_group_member';

COMMENT ON FUNCTION eventsource.consumer_group_member(text, integer) IS
    'The member (0 to consumer_group_size - 1) of a consumer group that receives the events of a stream.';

CREATE FUNCTION eventsource.create_subscription(
    name                text,
    category            text    DEFAULT NULL,
    event_types         text[]  DEFAULT NULL,
    start_from          text    DEFAULT 'beginning',
    consumer_group_size integer DEFAULT 1,
    owner               regrole DEFAULT NULL,
    query               jsonb   DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_create_subscription';

COMMENT ON FUNCTION eventsource.create_subscription(text, text, text[], text, integer, regrole, jsonb) IS
    'Creates a durable subscription to the global log, of one category, some event types and a query (as read_by_query takes it) or all, starting from the beginning of the log or its end, consumed by a group of consumer_group_size members; it belongs to owner (by default the caller).';

CREATE FUNCTION eventsource.drop_subscription(name text)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_drop_subscription';

COMMENT ON FUNCTION eventsource.drop_subscription(text) IS
    'Drops a subscription with its checkpoints.';

CREATE FUNCTION eventsource.set_subscription_owner(name text, owner regrole)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_set_subscription_owner';

COMMENT ON FUNCTION eventsource.set_subscription_owner(text, regrole) IS
    'Hands a subscription to another role: from then on only that role''s members and eventsource_admin may poll or acknowledge it.';

CREATE FUNCTION eventsource.poll(
    name                  text,
    max_count             integer DEFAULT 100,
    consumer_group_member integer DEFAULT 0,
    lease_seconds         integer DEFAULT 30)
RETURNS TABLE (
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
    tags            text[],
    lease           uuid)
LANGUAGE c VOLATILE PARALLEL UNSAFE ROWS 100
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_poll';

COMMENT ON FUNCTION eventsource.poll(text, integer, integer, integer) IS
    'The next batch of a subscription''s events after its checkpoint, in log order, leased to the caller for lease_seconds: until it is acknowledged or the lease ends, other consumers of the same member get nothing. Every row carries the batch''s lease, which ack must present.';

-- lease has a default only so that the call of before 0.7.0, without it, gets a clear error (22004).
CREATE FUNCTION eventsource.ack(
    name                  text,
    checkpoint            eventsource.checkpoint,
    consumer_group_member integer DEFAULT 0,
    lease                 uuid    DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_ack';

COMMENT ON FUNCTION eventsource.ack(text, eventsource.checkpoint, integer, uuid) IS
    'Acknowledges a subscription''s events up to and including checkpoint, an event of the batch that poll leased with lease; only that lease, unexpired and not yet superseded by another poll, may (otherwise 55006, so work done in the same transaction rolls back). The lease ends once the whole batch is acknowledged.';

CREATE FUNCTION eventsource.notifier_status(
    OUT database_name    text,
    OUT pid              integer,
    OUT paused           boolean,
    OUT wakeups          bigint,
    OUT notifications    bigint,
    OUT last_checkpoint  eventsource.checkpoint,
    OUT last_notified_at timestamptz)
RETURNS SETOF record
LANGUAGE c VOLATILE PARALLEL RESTRICTED ROWS 1
AS 'MODULE_PATHNAME', 'eventsource_notifier_status';

COMMENT ON FUNCTION eventsource.notifier_status() IS
    'One row per database the notifier serves: its process, how often it woke and notified, and the checkpoint it last announced. Needs eventsource in shared_preload_libraries.';
