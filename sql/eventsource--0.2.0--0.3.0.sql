-- eventsource--0.2.0--0.3.0.sql: upgrade from 0.2.0 to 0.3.0 (also part of a fresh install).
--
-- Adds the bus: durable subscriptions with checkpoints, consumer groups and leases (poll and ack,
-- which work with or without LISTEN), and the status of the notifier, the background worker that
-- sends NOTIFY for new events when the library is preloaded.

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Storage
-- ---------------------------------------------------------------------------------------------

CREATE TABLE eventsource.subscriptions (
    name                text        NOT NULL PRIMARY KEY,
    category            text,
    event_types         text[],
    consumer_group_size integer     NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE eventsource.subscriptions IS
    'Durable subscriptions to the global log: what each receives (a category, some event types) and its consumer group size.';

-- One row per consumer group member: where it has acknowledged up to, and its lease.
CREATE TABLE eventsource.subscription_members (
    subscription_name     text                   NOT NULL
        REFERENCES eventsource.subscriptions (name) ON DELETE CASCADE,
    consumer_group_member integer                NOT NULL,
    checkpoint            eventsource.checkpoint,
    acknowledged_at       timestamptz,
    delivered_through     eventsource.checkpoint,
    leased_until          timestamptz,
    CONSTRAINT subscription_members_pkey PRIMARY KEY (subscription_name, consumer_group_member)
);

COMMENT ON TABLE eventsource.subscription_members IS
    'Each member of a subscription''s consumer group: its checkpoint (NULL: the start of the log), the last event poll delivered to it, and the lease of that batch.';

SELECT pg_catalog.pg_extension_config_dump('eventsource.subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('eventsource.subscription_members', '');

-- ---------------------------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------------------------

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
    consumer_group_size integer DEFAULT 1)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_create_subscription';

COMMENT ON FUNCTION eventsource.create_subscription(text, text, text[], text, integer) IS
    'Creates a durable subscription to the global log, of one category and some event types or all, starting from the beginning of the log or its end, consumed by a group of consumer_group_size members.';

CREATE FUNCTION eventsource.drop_subscription(name text)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_drop_subscription';

COMMENT ON FUNCTION eventsource.drop_subscription(text) IS
    'Drops a subscription with its checkpoints.';

CREATE FUNCTION eventsource.poll(
    name                  text,
    max_count             integer DEFAULT 100,
    consumer_group_member integer DEFAULT 0,
    lease_seconds         integer DEFAULT 30)
RETURNS SETOF eventsource.event
LANGUAGE c VOLATILE PARALLEL UNSAFE ROWS 100
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_poll';

COMMENT ON FUNCTION eventsource.poll(text, integer, integer, integer) IS
    'The next batch of a subscription''s events after its checkpoint, in log order, leased to the caller for lease_seconds: until it is acknowledged or the lease ends, other consumers of the same member get nothing.';

CREATE FUNCTION eventsource.ack(
    name                  text,
    checkpoint            eventsource.checkpoint,
    consumer_group_member integer DEFAULT 0)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_ack';

COMMENT ON FUNCTION eventsource.ack(text, eventsource.checkpoint, integer) IS
    'Acknowledges a subscription''s events up to and including checkpoint, which must not be beyond the last event poll delivered; the checkpoint never moves back, and the lease ends once the whole batch is acknowledged.';

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

-- ---------------------------------------------------------------------------------------------
-- Views
-- ---------------------------------------------------------------------------------------------

CREATE VIEW eventsource.subscription_status AS
SELECT s.name, s.category, s.event_types, m.consumer_group_member, s.consumer_group_size,
       m.checkpoint, m.acknowledged_at, m.delivered_through,
       COALESCE(m.leased_until > pg_catalog.now(), false) AS leased, m.leased_until,
       pending.events_behind,
       COALESCE(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) pending.oldest_recorded_at), 0)
           AS seconds_behind
  FROM eventsource.subscriptions s
  JOIN eventsource.subscription_members m ON m.subscription_name = s.name
 CROSS JOIN LATERAL (
       SELECT pg_catalog.count(*) AS events_behind, pg_catalog.min(e.recorded_at) AS oldest_recorded_at
         FROM eventsource.events e
        WHERE (e.transaction_id, e.global_position) >
              (COALESCE(eventsource.checkpoint_transaction_id(m.checkpoint), '0'::xid8),
               COALESCE(eventsource.checkpoint_global_position(m.checkpoint), 0))
          AND e.transaction_id OPERATOR(pg_catalog.<) pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
          AND (s.category IS NULL OR pg_catalog.split_part(e.stream_id, '-', 1) OPERATOR(pg_catalog.=) s.category)
          AND (s.event_types IS NULL OR e.event_type OPERATOR(pg_catalog.=) ANY (s.event_types))
          AND (s.consumer_group_size OPERATOR(pg_catalog.=) 1
               OR eventsource.consumer_group_member(e.stream_id, s.consumer_group_size)
                  OPERATOR(pg_catalog.=) m.consumer_group_member)) AS pending;

COMMENT ON VIEW eventsource.subscription_status IS
    'Every subscription member with its checkpoint, lease and lag: the visible events it has not acknowledged and the age in seconds of the oldest of them.';

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------

REVOKE ALL ON eventsource.subscriptions, eventsource.subscription_members, eventsource.subscription_status FROM PUBLIC;
REVOKE ALL ON FUNCTION
    eventsource.consumer_group_member(text, integer),
    eventsource.create_subscription(text, text, text[], text, integer),
    eventsource.drop_subscription(text),
    eventsource.poll(text, integer, integer, integer),
    eventsource.ack(text, eventsource.checkpoint, integer),
    eventsource.notifier_status()
    FROM PUBLIC;

GRANT SELECT ON eventsource.subscriptions, eventsource.subscription_members, eventsource.subscription_status
    TO eventsource_reader;
GRANT EXECUTE ON FUNCTION
    eventsource.consumer_group_member(text, integer),
    eventsource.poll(text, integer, integer, integer),
    eventsource.ack(text, eventsource.checkpoint, integer),
    eventsource.notifier_status()
    TO eventsource_reader;
GRANT EXECUTE ON FUNCTION
    eventsource.create_subscription(text, text, text[], text, integer),
    eventsource.drop_subscription(text)
    TO eventsource_admin;
