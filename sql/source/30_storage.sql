-- 30_storage.sql: the tables, their sequence and indexes.
--
-- The log (events) and its streams, the log epochs, snapshots, subscriptions and their members,
-- projections and their dead letters. Every table holds user data, so each is registered with
-- pg_extension_config_dump: pg_dump dumps its rows (and the position counter), not only CREATE
-- EXTENSION. Only the extension's functions write them (70_privileges.sql grants no one INSERT,
-- UPDATE or DELETE).

-- ---------------------------------------------------------------------------------------------
-- Streams
-- ---------------------------------------------------------------------------------------------

-- No CHECK constraints on the streams and the log: only the extension's functions write these
-- tables, and PostgreSQL re-parses a CHECK expression on every statement that writes the table.
-- The lifecycle columns are nullable and have no defaults, so that an append (which updates
-- stream_version, updated_at and last_transaction_id only) stays a HOT update.
CREATE TABLE eventsource.streams (
    stream_id           text        NOT NULL PRIMARY KEY,
    category            text        NOT NULL,
    stream_version      bigint      NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    truncate_before     bigint,
    max_count           bigint,
    max_age             interval,
    deleted_through     bigint,
    tombstoned_at       timestamptz,
    last_transaction_id xid8
);

COMMENT ON TABLE eventsource.streams IS
    'One row per stream: its category, its current stream version (the number of events appended to it), its retention settings, delete and tombstone, and the last transaction that wrote it.';
COMMENT ON COLUMN eventsource.streams.truncate_before IS
    'Events below this stream version are hidden from stream reads.';
COMMENT ON COLUMN eventsource.streams.max_count IS
    'Stream reads show at most this many of the newest events.';
COMMENT ON COLUMN eventsource.streams.max_age IS
    'Stream reads hide the events before the first one recorded within this interval.';
COMMENT ON COLUMN eventsource.streams.deleted_through IS
    'The stream version delete_stream or tombstone_stream deleted the stream at: events up to it are hidden from stream reads.';
COMMENT ON COLUMN eventsource.streams.tombstoned_at IS
    'When tombstone_stream made the stream unwritable for ever (NULL: it is not).';
COMMENT ON COLUMN eventsource.streams.last_transaction_id IS
    'The log transaction id of the last transaction that appended to, deleted or tombstoned the stream (its events and markers carry it as transaction_id); a later writer with an older one gets 40001. NULL: not known.';

-- The streams scavenge visits: those with something that hides events.
CREATE INDEX streams_retention_idx ON eventsource.streams (stream_id)
 WHERE truncate_before IS NOT NULL OR max_count IS NOT NULL OR max_age IS NOT NULL OR deleted_through IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('eventsource.streams', '');

-- ---------------------------------------------------------------------------------------------
-- The log
-- ---------------------------------------------------------------------------------------------

CREATE SEQUENCE eventsource.events_global_position_seq AS bigint;

-- transaction_id is the appending transaction's id plus its log epoch's offset, which the append
-- supplies; the default (the id alone) is what it was before log epochs (0.7.0).
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
    tags            text[],
    CONSTRAINT events_pkey PRIMARY KEY (global_position),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

ALTER SEQUENCE eventsource.events_global_position_seq OWNED BY eventsource.events.global_position;

COMMENT ON TABLE eventsource.events IS
    'The event log. Written by append and append_events, and by delete_stream, tombstone_stream and set_stream_metadata (their audit events in the $streams stream); never updated; only scavenge deletes, the events that deletes and retention settings hide once no subscription or async projection is owed them.';

-- The gap-safe global log is read in (transaction_id, global_position) order.
CREATE INDEX events_log_order_idx ON eventsource.events (transaction_id, global_position);
-- The same order within one category (the part of the stream id before its first '-').
CREATE INDEX events_category_log_order_idx
    ON eventsource.events (pg_catalog.split_part(stream_id, '-', 1), transaction_id, global_position);

-- The tagged events by tag (an event without tags has NULL, and is not in the index). Without
-- GIN's pending list: every condition of a conditional append reads the index, and a search
-- reads the whole pending list (with it, conditional appends ran at 0.02x-0.03x).
CREATE INDEX events_tags_idx ON eventsource.events USING gin (tags) WITH (fastupdate = off) WHERE tags IS NOT NULL;
COMMENT ON COLUMN eventsource.events.tags IS
    'The event''s tags (for example {course:c1,student:s7}), NULL when it has none.';

SELECT pg_catalog.pg_extension_config_dump('eventsource.events', '');
SELECT pg_catalog.pg_extension_config_dump('eventsource.events_global_position_seq', '');

-- An event's transaction_id is its transaction's xid8 plus the offset of the epoch it was
-- appended in. A new epoch starts at the first append after the database finds itself in
-- another cluster or in a later start of its server (src/epoch.c).
CREATE TABLE eventsource.log_epochs (
    epoch                 integer     NOT NULL,
    system_identifier     bigint      NOT NULL,
    server_started_at     timestamptz,
    transaction_id_offset bigint      NOT NULL,
    start_transaction_id  xid8        NOT NULL,
    started_at            timestamptz NOT NULL,
    reason                text        NOT NULL,
    CONSTRAINT log_epochs_pkey PRIMARY KEY (epoch),
    CONSTRAINT log_epochs_reason_check
        CHECK (reason OPERATOR(pg_catalog.=) ANY (ARRAY['upgrade', 'new log', 'other cluster', 'server start']))
);

COMMENT ON TABLE eventsource.log_epochs IS
    'Log epochs: an event''s transaction_id is its transaction''s id plus the transaction_id_offset of the epoch it was appended in; a new epoch starts at the first append in another cluster (system_identifier) or after a server start (a restart, a crash, a promotion).';
COMMENT ON COLUMN eventsource.log_epochs.server_started_at IS
    'When the server that appended in this epoch started (its shared memory was set up); NULL: unknown.';
COMMENT ON COLUMN eventsource.log_epochs.start_transaction_id IS
    'The transaction that started the epoch: no transaction with a smaller id appends in it.';

SELECT pg_catalog.pg_extension_config_dump('eventsource.log_epochs', '');

-- ---------------------------------------------------------------------------------------------
-- Snapshots
-- ---------------------------------------------------------------------------------------------

-- No foreign key to eventsource.streams: save_snapshot checks the stream version itself, and a key
-- would make every snapshot save take a share lock on the stream's row.
CREATE TABLE eventsource.snapshots (
    stream_id      text        NOT NULL,
    stream_version bigint      NOT NULL,
    schema_version integer     NOT NULL,
    state          jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id, stream_version, schema_version)
);

COMMENT ON TABLE eventsource.snapshots IS
    'Aggregate state as of a stream version, one row per (stream, stream version, schema version): written by eventsource.save_snapshot, which keeps the newest eventsource.snapshots_to_keep of a stream; removed by delete_snapshots, delete_stream, tombstone_stream and scavenge.';

SELECT pg_catalog.pg_extension_config_dump('eventsource.snapshots', '');

-- ---------------------------------------------------------------------------------------------
-- Subscriptions
-- ---------------------------------------------------------------------------------------------

CREATE TABLE eventsource.subscriptions (
    name                text        NOT NULL PRIMARY KEY,
    category            text,
    event_types         text[],
    consumer_group_size integer     NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    owner               regrole     NOT NULL DEFAULT pg_catalog.to_regrole('eventsource_reader'),
    query               jsonb
);

COMMENT ON TABLE eventsource.subscriptions IS
    'Durable subscriptions to the global log: what each receives (a category, some event types, a query) and its consumer group size.';
COMMENT ON COLUMN eventsource.subscriptions.owner IS
    'The role the subscription belongs to: only its members and eventsource_admin may poll or acknowledge it. Its default, eventsource_reader (open to every reader, as every subscription was before 0.6.0), fills in the rows of a restored dump of a version before 0.6.0, as the 0.6.0 upgrade did; create_subscription always names the owner.';
COMMENT ON COLUMN eventsource.subscriptions.query IS
    'The query the subscription''s events match, {"items": [{"types": [...], "tags": [...]}, ...]} as read_by_query takes it, besides its category and event types, or NULL: every event of those.';

-- One row per consumer group member: where it has acknowledged up to, and its lease. Each poll
-- that delivers a batch grants a new lease token; ack must present it. The token stays after the
-- batch is acknowledged, so that a re-ack is told from a superseded lease.
CREATE TABLE eventsource.subscription_members (
    subscription_name     text                   NOT NULL
        REFERENCES eventsource.subscriptions (name) ON DELETE CASCADE,
    consumer_group_member integer                NOT NULL,
    checkpoint            eventsource.checkpoint,
    acknowledged_at       timestamptz,
    delivered_through     eventsource.checkpoint,
    leased_until          timestamptz,
    lease                 uuid,
    CONSTRAINT subscription_members_pkey PRIMARY KEY (subscription_name, consumer_group_member)
);

COMMENT ON TABLE eventsource.subscription_members IS
    'Each member of a subscription''s consumer group: its checkpoint (NULL: the start of the log), the last event poll delivered to it, and the lease of that batch.';
COMMENT ON COLUMN eventsource.subscription_members.lease IS
    'The token of the member''s latest lease, which poll returned with the batch: ack accepts only it, and only until leased_until (NULL: no batch polled since 0.7.0).';

SELECT pg_catalog.pg_extension_config_dump('eventsource.subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('eventsource.subscription_members', '');

-- ---------------------------------------------------------------------------------------------
-- Projections
-- ---------------------------------------------------------------------------------------------

-- Handlers are stored as their schema-qualified signature (text), not as regprocedure, which
-- pg_upgrade refuses in user tables; the library resolves them to the function each time they
-- run, and an event trigger (60_triggers.sql) follows a renamed or moved handler.
CREATE TABLE eventsource.projections (
    name                text          NOT NULL PRIMARY KEY,
    handler             text          NOT NULL,
    reset_handler       text,
    owner               regrole       NOT NULL,
    event_types         text[],
    category            text,
    mode                text          NOT NULL,
    status              text          NOT NULL DEFAULT 'running',
    on_failure          text          NOT NULL,
    max_attempts        integer       NOT NULL,
    checkpoint          eventsource.checkpoint,
    events_processed    bigint        NOT NULL DEFAULT 0,
    attempts            integer       NOT NULL DEFAULT 0,
    retry_at            timestamptz,
    last_error          text,
    last_error_at       timestamptz,
    last_error_position bigint,
    created_at          timestamptz   NOT NULL DEFAULT pg_catalog.now(),
    updated_at          timestamptz   NOT NULL DEFAULT pg_catalog.now(),
    search_path         text          NOT NULL DEFAULT 'pg_catalog, pg_temp',
    query               jsonb
);

COMMENT ON TABLE eventsource.projections IS
    'Projections: a handler function fed the matching events, inline (in the appending transaction) or async (by the background worker, from a checkpoint).';
COMMENT ON COLUMN eventsource.projections.handler IS
    'The handler''s signature, schema-qualified (for example public.count_event(eventsource.event)): looked up each time the projection runs.';
COMMENT ON COLUMN eventsource.projections.reset_handler IS
    'The reset handler''s signature, schema-qualified (for example public.reset_totals()), or NULL: looked up at each rebuild.';
COMMENT ON COLUMN eventsource.projections.search_path IS
    'The search path the handler and reset handler run with: the creator''s when the projection was created, pg_temp last. Its default, the search path handlers had before 0.6.0, fills in the rows of a restored dump of a version before 0.6.0, as the 0.6.0 upgrade did; create_projection always sets it.';
COMMENT ON COLUMN eventsource.projections.query IS
    'The query the projection''s events match, {"items": [{"types": [...], "tags": [...]}, ...]} as read_by_query takes it, besides its category and event types, or NULL: every event of those.';

CREATE TABLE eventsource.projection_dead_letters (
    projection_name text        NOT NULL REFERENCES eventsource.projections (name) ON DELETE CASCADE,
    global_position bigint      NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT projection_dead_letters_pkey PRIMARY KEY (projection_name, global_position)
);

COMMENT ON TABLE eventsource.projection_dead_letters IS
    'Events an async projection with on_failure = ''dead_letter'' skipped after max_attempts failures, with the last error.';

SELECT pg_catalog.pg_extension_config_dump('eventsource.projections', '');
SELECT pg_catalog.pg_extension_config_dump('eventsource.projection_dead_letters', '');
