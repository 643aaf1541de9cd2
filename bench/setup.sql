-- bench/setup.sql: the baselines and helpers the benchmark compares eventsource against.
--
-- bench.raw_events has the columns, defaults and indexes of eventsource.events: a raw INSERT into
-- it, with no version check, is the physical limit an append can approach. bench.plpgsql_append is
-- a reference append written in PL/pgSQL (stream row compare-and-set, then INSERT) on copies of the
-- same tables, so the gain of the C path is visible.
CREATE EXTENSION eventsource;
CREATE SCHEMA bench;

CREATE SEQUENCE bench.raw_events_global_position_seq;
CREATE TABLE bench.raw_events (LIKE eventsource.events INCLUDING DEFAULTS INCLUDING INDEXES);
ALTER TABLE bench.raw_events
    ALTER global_position SET DEFAULT nextval('bench.raw_events_global_position_seq');

CREATE SEQUENCE bench.plpgsql_events_global_position_seq;
CREATE TABLE bench.plpgsql_events (LIKE eventsource.events INCLUDING DEFAULTS INCLUDING INDEXES);
ALTER TABLE bench.plpgsql_events
    ALTER global_position SET DEFAULT nextval('bench.plpgsql_events_global_position_seq');
CREATE TABLE bench.plpgsql_streams (LIKE eventsource.streams INCLUDING INDEXES);

-- The reference append: the same semantics as eventsource.append for the cases benchmarked.
CREATE FUNCTION bench.plpgsql_append(stream_id text, event_type text, data jsonb,
                                     metadata jsonb DEFAULT NULL, expected_version bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    new_version bigint;
BEGIN
    UPDATE bench.plpgsql_streams s SET stream_version = s.stream_version + 1, updated_at = now()
     WHERE s.stream_id = plpgsql_append.stream_id
       AND (plpgsql_append.expected_version IS NULL OR s.stream_version = plpgsql_append.expected_version)
    RETURNING s.stream_version INTO new_version;
    IF NOT FOUND THEN
        IF coalesce(plpgsql_append.expected_version, 0) <> 0 THEN
            RAISE EXCEPTION 'version conflict on stream "%"', stream_id USING ERRCODE = 'SE001';
        END IF;
        INSERT INTO bench.plpgsql_streams VALUES (stream_id, split_part(stream_id, '-', 1), 1, now(), now())
            ON CONFLICT DO NOTHING RETURNING 1 INTO new_version;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'version conflict on stream "%"', stream_id USING ERRCODE = 'SE001';
        END IF;
    END IF;
    INSERT INTO bench.plpgsql_events (stream_id, stream_version, event_id, event_type, data, metadata)
    VALUES (stream_id, new_version, gen_random_uuid(), event_type, data, metadata);
    RETURN new_version;
END
$$;

-- An append with an exact expected version that reports a conflict instead of raising it.
CREATE FUNCTION bench.try_append(stream_id text, expected_version bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM eventsource.append(stream_id, 'Ticked', '{"n": 1}', expected_version => expected_version);
    RETURN true;
EXCEPTION WHEN SQLSTATE 'SE001' THEN
    RETURN false;
END
$$;

-- Batch payloads: the same JSON array goes to append_events and to the raw multi-row INSERT.
CREATE TABLE bench.batches (size int PRIMARY KEY, events jsonb NOT NULL);
INSERT INTO bench.batches
SELECT size, jsonb_agg(jsonb_build_object('type', 'ItemAdded', 'data', jsonb_build_object('sku', 'A-' || n, 'quantity', n)))
  FROM (VALUES (10), (100)) AS sizes(size), generate_series(1, size) AS n
 GROUP BY size;

-- Pages of the log for the read workloads: where page n starts, as a checkpoint and a position.
CREATE TABLE bench.pages (page int PRIMARY KEY, after eventsource.checkpoint NOT NULL, after_position bigint NOT NULL);

CREATE TABLE bench.results (
    workload            text NOT NULL,
    variant             text NOT NULL,
    clients             int NOT NULL,
    synchronous_commit  text NOT NULL,
    round               int NOT NULL,
    seconds             numeric NOT NULL,
    transactions        bigint NOT NULL,
    events              bigint NOT NULL,
    latency_ms          numeric,
    p99_ms              numeric,
    wal_bytes           numeric,
    conflicts           bigint,
    projected           bigint,             -- events the inline projection handled during the run
    backend_ticks       bigint,             -- CPU clock ticks of the backends that ended during the run
    notifier_ticks      bigint,             -- of the benchmark database's notifier
    other_ticks         bigint,             -- of the other long-lived processes (WAL writer, checkpointer...)
    client_cpu_us       numeric);           -- the client's CPU per transaction (bench/peers/append.mjs)

-- Projections. The read model: a summary row per stream, upserted by the handler for each event
-- (events counted, the last event's type and position). Handlers run with search_path
-- pg_catalog, pg_temp, so they name their tables in full. Each is a PL/pgSQL function, or the same
-- upsert as a SQL function. bench.stream_summary is the inline projection's; bench.async_summary
-- the async projection's (and the handler's when called directly, the baseline).
CREATE TABLE bench.stream_summary (
    stream_id           text PRIMARY KEY,
    events              bigint NOT NULL,
    last_type           text NOT NULL,
    last_position       bigint NOT NULL);
CREATE TABLE bench.async_summary (LIKE bench.stream_summary INCLUDING ALL);

CREATE FUNCTION bench.summarize_inline_plpgsql(event eventsource.event) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.stream_summary AS s (stream_id, events, last_type, last_position)
    VALUES (event.stream_id, 1, event.event_type, event.global_position)
    ON CONFLICT (stream_id) DO UPDATE
       SET events = s.events + 1, last_type = excluded.last_type, last_position = excluded.last_position;
END
$$;

CREATE FUNCTION bench.summarize_inline_sql(event eventsource.event) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO bench.stream_summary AS s (stream_id, events, last_type, last_position)
    VALUES (event.stream_id, 1, event.event_type, event.global_position)
    ON CONFLICT (stream_id) DO UPDATE
       SET events = s.events + 1, last_type = excluded.last_type, last_position = excluded.last_position
$$;

-- A handler that does nothing: what the inline projection's trigger costs by itself.
CREATE FUNCTION bench.ignore_event(event eventsource.event) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
END
$$;

CREATE FUNCTION bench.summarize_async_plpgsql(event eventsource.event) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.async_summary AS s (stream_id, events, last_type, last_position)
    VALUES (event.stream_id, 1, event.event_type, event.global_position)
    ON CONFLICT (stream_id) DO UPDATE
       SET events = s.events + 1, last_type = excluded.last_type, last_position = excluded.last_position;
END
$$;

CREATE FUNCTION bench.summarize_async_sql(event eventsource.event) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO bench.async_summary AS s (stream_id, events, last_type, last_position)
    VALUES (event.stream_id, 1, event.event_type, event.global_position)
    ON CONFLICT (stream_id) DO UPDATE
       SET events = s.events + 1, last_type = excluded.last_type, last_position = excluded.last_position
$$;

-- The async runs: a projection created on the loaded log, timed from the create_projection call
-- until projection_status shows it caught up (events_behind 0, events_processed the number of
-- matching events); and the baseline, the same handler called directly over the same events in one
-- SELECT (one transaction, no checkpoints).
CREATE TABLE bench.projection_catchup (
    projection          text NOT NULL,      -- what it projects: 'every event', 'category c3'
    variant             text NOT NULL,      -- 'async projection' or 'handler called directly in one SELECT'
    handler             text NOT NULL,      -- 'PL/pgSQL' or 'SQL'
    log_events          bigint NOT NULL,    -- events in the log
    matching_events     bigint NOT NULL,    -- of them, the projection's
    events_processed    bigint NOT NULL,    -- projection_status.events_processed at the end
    projected_events    bigint NOT NULL,    -- events the read model counts at the end
    seconds             numeric NOT NULL,   -- async: from create_projection to the poll that saw it caught up
    worker_seconds      numeric,            -- async: created_at to the start of its last batch (updated_at)
    first_seconds       numeric,            -- async: from create_projection to the first events processed
    status_query_ms     numeric,            -- async: one query of projection_status just after creation
    caught_up           boolean NOT NULL);

-- The bus latency runs: timed appends at a target rate while bench/latency_subscriber.py LISTENs and
-- reads them with read_all; latencies run from the writer's clock in the append statement (before
-- the commit) to read_all returning the event to the subscriber.
CREATE TABLE bench.latency (
    target_rate         int NOT NULL,       -- pgbench --rate, appends per second
    clients             int NOT NULL,
    synchronous_commit  text NOT NULL,
    round               int NOT NULL,
    seconds             numeric NOT NULL,
    transactions        bigint NOT NULL,    -- appends pgbench committed
    timed_events        bigint NOT NULL,    -- of them, read by the subscriber on a notification
    unnotified          bigint NOT NULL,    -- read by its last read, which no notification prompted
    notifications       bigint NOT NULL,
    reads               bigint NOT NULL,    -- read_all calls
    p50_ms              numeric,
    p99_ms              numeric,
    max_ms              numeric,
    read_p50_ms         numeric,            -- the subscriber's share: notification arrived -> read returned
    read_p99_ms         numeric);
