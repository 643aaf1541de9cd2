-- lifecycle.sql: pgTAP property test of the stream lifecycle (0.5.0). 200 streams in four
-- categories get random event counts (in three rounds, so the log interleaves them), random
-- snapshots and random retention settings (max_count, truncate_before, max_age); 30 are deleted and
-- 20 tombstoned, and two ids never written are tombstoned. A model computed here in SQL from the log
-- and the settings chosen predicts every stream read (forward, backward, paged, load_stream with
-- snapshots), and what scavenge may remove while a consumer group of 3, a filtered subscription and a
-- paused async projection have passed only part of the log; then what it removes once they have
-- passed everything. Reads must be the same before and after each scavenge; tombstoned streams must
-- refuse appends with SE005, deleted ones continue their numbering; the $streams audit stream must
-- hold one event per call made. Runs in a database of its own (see test/run).
--
-- Everything after the appends runs in one transaction: a notifier serving this database scavenges
-- every eventsource.scavenge_interval, and must not see a hidden event before this test's own
-- scavenge calls do.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP EXTENSION IF EXISTS eventsource;
CREATE EXTENSION eventsource;
DROP SCHEMA IF EXISTS lt CASCADE;
RESET client_min_messages;

SELECT plan(64);

-- ---------------------------------------------------------------------------------------------
-- Set-up (its output is not TAP: hidden).
-- ---------------------------------------------------------------------------------------------
\o /dev/null
SELECT setseed(0.31);
CREATE SCHEMA lt;
-- The streams and how many events each gets.
CREATE TABLE lt.streams AS
SELECT c.category || '-' || n AS stream_id, c.category, 1 + floor(random() * 24)::bigint AS events
  FROM generate_series(1, 200) AS n
 CROSS JOIN LATERAL (SELECT (ARRAY['order', 'cart', 'invoice', 'ticket'])[1 + n % 4] AS category) AS c;
-- Three rounds of appends, a transaction each; max_age '1 second' hides the first two rounds.
CREATE FUNCTION lt.append_round(round int) RETURNS void LANGUAGE sql AS $$
    SELECT count(eventsource.append_events(b.stream_id, b.events))
      FROM (SELECT s.stream_id,
                   jsonb_agg(jsonb_build_object(
                       'type', (ARRAY['Created', 'Updated', 'Closed'])[1 + floor(random() * 3)::int],
                       'data', jsonb_build_object('i', i)) ORDER BY i) AS events
              FROM lt.streams s, generate_series(1, s.events) AS i
             WHERE i > (round - 1) * s.events / 3 AND i <= round * s.events / 3
             GROUP BY s.stream_id
             ORDER BY s.stream_id) AS b
$$;
SELECT lt.append_round(1);
SELECT lt.append_round(2);
SELECT pg_sleep(1.2);
SELECT lt.append_round(3);
-- Snapshots: two at random versions in half of the streams.
CREATE TABLE lt.saved_snapshots AS
SELECT DISTINCT s.stream_id, 1 + floor(random() * s.events)::bigint AS stream_version
  FROM lt.streams s, generate_series(1, 2)
 WHERE s.stream_id IN (SELECT stream_id FROM lt.streams ORDER BY random() LIMIT 100);
SET eventsource.snapshots_to_keep = 0;
SELECT eventsource.save_snapshot(stream_id, stream_version, jsonb_build_object('v', stream_version))
  FROM lt.saved_snapshots;
RESET eventsource.snapshots_to_keep;

-- Each delete, tombstone and metadata call is made through these, which log it.
CREATE TABLE lt.calls (n serial, event_type text, stream_id text, stream_version bigint);
CREATE FUNCTION lt.set_metadata(id text, metadata jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO lt.calls (event_type, stream_id) VALUES ('$stream-metadata-set', id);
    SELECT eventsource.set_stream_metadata(id, metadata);
$$;
CREATE FUNCTION lt.end_stream(id text, tombstone boolean, expected bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    version bigint;
BEGIN
    IF tombstone THEN
        version := eventsource.tombstone_stream(id, expected);
    ELSE
        version := eventsource.delete_stream(id, expected);
    END IF;
    INSERT INTO lt.calls (event_type, stream_id, stream_version)
    VALUES (CASE WHEN tombstone THEN '$stream-tombstoned' ELSE '$stream-deleted' END, id, version);
    RETURN version;
END
$$;
-- Polls a batch and acknowledges its nth event; returns the events polled. The lease lasts an
-- hour: consume acknowledges the rest of the batch much later, and under valgrind (test/valgrind)
-- the default 30 seconds run out before it does.
CREATE TEMP TABLE polled_batch (checkpoint eventsource.checkpoint, lease uuid);
CREATE FUNCTION lt.poll_and_ack(subscription text, member int, batch int, nth int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    polled bigint;
    acknowledged eventsource.checkpoint;
    lease uuid;
BEGIN
    TRUNCATE polled_batch;
    INSERT INTO polled_batch SELECT p.checkpoint, p.lease FROM eventsource.poll(subscription, batch, member, 3600) p;
    SELECT count(*) INTO polled FROM polled_batch;
    SELECT b.checkpoint, b.lease INTO acknowledged, lease FROM polled_batch b ORDER BY b.checkpoint OFFSET nth - 1 LIMIT 1;
    IF acknowledged IS NOT NULL THEN
        PERFORM eventsource.ack(subscription, acknowledged, member, lease);
    END IF;
    RETURN polled;
END
$$;
-- Polls and acknowledges until the member has passed everything.
CREATE FUNCTION lt.consume(subscription text, member int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    total bigint := 0;
    polled bigint;
BEGIN
    -- First the rest of a batch already leased.
    PERFORM eventsource.ack(subscription, m.delivered_through, member, m.lease)
       FROM eventsource.subscription_members m
      WHERE m.subscription_name = subscription AND m.consumer_group_member = member
        AND m.leased_until IS NOT NULL;
    LOOP
        polled := lt.poll_and_ack(subscription, member, 50, 50);
        total := total + polled;
        IF polled < 50 THEN
            -- Acknowledge the last of a short batch.
            PERFORM eventsource.ack(subscription, m.delivered_through, member, m.lease)
               FROM eventsource.subscription_members m
              WHERE m.subscription_name = subscription AND m.consumer_group_member = member
                AND m.leased_until IS NOT NULL;
            RETURN total;
        END IF;
    END LOOP;
END
$$;
-- Scavenges in batches until a call removes nothing: (calls, events removed).
CREATE FUNCTION lt.scavenge_loop(batch int, OUT calls int, OUT removed bigint) LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    calls := 0;
    removed := 0;
    LOOP
        n := eventsource.scavenge(batch);
        calls := calls + 1;
        removed := removed + n;
        EXIT WHEN n = 0 OR calls > 10000;
    END LOOP;
END
$$;
CREATE TYPE lt.event AS (stream_id text, event_type text, transaction_id xid8, global_position bigint);
-- Whether a consumer still needs an event: a subscription member whose filter and hash take it and
-- whose checkpoint is before it, or an async projection whose filter takes it, likewise.
CREATE FUNCTION lt.held(e lt.event) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
               SELECT FROM eventsource.subscriptions b
                 JOIN eventsource.subscription_members m ON m.subscription_name = b.name
                WHERE (b.category IS NULL OR b.category = split_part(e.stream_id, '-', 1))
                  AND (b.event_types IS NULL OR e.event_type = ANY (b.event_types))
                  AND m.consumer_group_member = CASE WHEN b.consumer_group_size = 1 THEN 0
                          ELSE eventsource.consumer_group_member(e.stream_id, b.consumer_group_size) END
                  AND (m.checkpoint IS NULL
                       OR (eventsource.checkpoint_transaction_id(m.checkpoint),
                           eventsource.checkpoint_global_position(m.checkpoint)) < (e.transaction_id, e.global_position)))
        OR EXISTS (
               SELECT FROM eventsource.projections p
                WHERE p.mode = 'async'
                  AND (p.category IS NULL OR p.category = split_part(e.stream_id, '-', 1))
                  AND (p.event_types IS NULL OR e.event_type = ANY (p.event_types))
                  AND (p.checkpoint IS NULL
                       OR (eventsource.checkpoint_transaction_id(p.checkpoint),
                           eventsource.checkpoint_global_position(p.checkpoint)) < (e.transaction_id, e.global_position)))
$$;
CREATE FUNCTION lt.ignore(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
\o

BEGIN;
\o /dev/null
-- The fates and the settings, chosen at random: 20 tombstoned, 30 deleted, the rest live; and two
-- stream ids never written, tombstoned.
CREATE TABLE lt.choice AS
SELECT r.stream_id, r.category, r.events AS stream_version,
       CASE WHEN r.rank <= 20 THEN 'tombstoned' WHEN r.rank <= 50 THEN 'deleted' ELSE 'live' END AS fate,
       CASE WHEN r.pick < 0.25 THEN jsonb_build_object('max_count', 1 + floor(random() * 8))
            WHEN r.pick < 0.5 THEN jsonb_build_object('truncate_before', floor(random() * (r.events + 3)))
            WHEN r.pick < 0.6 THEN jsonb_build_object('truncate_before', floor(random() * (r.events + 3)),
                                                      'max_count', 1 + floor(random() * 8))
            WHEN r.pick < 0.7 THEN jsonb_build_object('max_age', '1 second')
            WHEN r.pick < 0.75 THEN jsonb_build_object('max_age', 86400, 'max_count', 3)
            WHEN r.pick < 0.8 THEN '{}'::jsonb
       END AS metadata,
       r.random_a, r.random_b, r.random_c
  FROM (SELECT s.*, row_number() OVER (ORDER BY random()) AS rank, random() AS pick,
               random() AS random_a, random() AS random_b, random() AS random_c
          FROM lt.streams s) AS r
UNION ALL
SELECT id, split_part(id, '-', 1), 0, 'tombstoned', NULL, 0.5, 0.5, 0.5
  FROM unnest(ARRAY['ticket-9001', 'cart-9002']) AS id;

SELECT lt.set_metadata(stream_id, metadata) FROM lt.choice WHERE metadata IS NOT NULL ORDER BY random_a;
SELECT lt.end_stream(stream_id, fate = 'tombstoned',
                     CASE WHEN random_b < 0.5 THEN stream_version WHEN random_b < 0.75 THEN -1 END)
  FROM lt.choice WHERE fate <> 'live' AND stream_version > 0 ORDER BY random_c;
SELECT lt.end_stream('ticket-9001', true, 0);
SELECT lt.end_stream('cart-9002', true, NULL);

-- The model: the first visible version of each stream, by the rule, from the choices alone and the
-- times the events were recorded; and random arguments for paged reads and loads.
CREATE TABLE lt.model AS
SELECT b.stream_id, b.fate, b.stream_version, b.metadata,
       CASE WHEN b.max_age IS NOT NULL AND b.base <= b.stream_version
            THEN COALESCE((SELECT min(e.stream_version) FROM eventsource.events e
                            WHERE e.stream_id = b.stream_id AND e.stream_version >= b.base
                              AND e.recorded_at >= now() - b.max_age), b.stream_version + 1)
            ELSE b.base END AS first_visible,
       1 + floor(b.random_a * (b.stream_version + 2))::bigint AS forward_from,
       floor(b.random_b * (b.stream_version + 2))::bigint AS backward_from,
       greatest(1, 1 + floor(b.random_c * b.stream_version))::bigint AS load_max
  FROM (SELECT c.*,
               greatest(1, CASE WHEN c.fate <> 'live' THEN c.stream_version + 1 END,
                        (c.metadata->>'truncate_before')::bigint,
                        c.stream_version - (c.metadata->>'max_count')::bigint + 1) AS base,
               CASE WHEN jsonb_typeof(c.metadata->'max_age') = 'number'
                    THEN (c.metadata->>'max_age')::numeric * interval '1 second'
                    ELSE (c.metadata->>'max_age')::interval END AS max_age
          FROM lt.choice c) AS b;

-- The reads, in one place: each is taken before and after scavenging.
CREATE VIEW lt.forward_reads AS
SELECT m.stream_id, r.stream_version, r.event_id, r.event_type, r.global_position
  FROM lt.model m CROSS JOIN LATERAL eventsource.read_stream(m.stream_id, max_count => 1000) AS r;
CREATE VIEW lt.backward_reads AS
SELECT m.stream_id, r.n, r.stream_version, r.event_id
  FROM lt.model m
 CROSS JOIN LATERAL eventsource.read_stream(m.stream_id, direction => 'backward') WITH ORDINALITY
       AS r (global_position, transaction_id, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at, checkpoint, tags, n);
CREATE VIEW lt.paged_reads AS
SELECT m.stream_id, 'forward' AS direction, r.n, r.stream_version
  FROM lt.model m
 CROSS JOIN LATERAL eventsource.read_stream(m.stream_id, m.forward_from, 3) WITH ORDINALITY
       AS r (global_position, transaction_id, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at, checkpoint, tags, n)
UNION ALL
SELECT m.stream_id, 'backward', r.n, r.stream_version
  FROM lt.model m
 CROSS JOIN LATERAL eventsource.read_stream(m.stream_id, m.backward_from, 3, 'backward') WITH ORDINALITY
       AS r (global_position, transaction_id, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at, checkpoint, tags, n);
CREATE VIEW lt.loads AS
SELECT m.stream_id, 'head' AS up_to, l.n, l.kind, l.stream_version, l.state, l.event_id
  FROM lt.model m
 CROSS JOIN LATERAL eventsource.load_stream(m.stream_id) WITH ORDINALITY
       AS l (kind, stream_version, schema_version, event_type, state, metadata, event_id, global_position, recorded_at, n)
UNION ALL
SELECT m.stream_id, 'load_max', l.n, l.kind, l.stream_version, l.state, l.event_id
  FROM lt.model m
 CROSS JOIN LATERAL eventsource.load_stream(m.stream_id, m.load_max) WITH ORDINALITY
       AS l (kind, stream_version, schema_version, event_type, state, metadata, event_id, global_position, recorded_at, n);
-- What load_stream should return: the newest snapshot at or below the version asked for (deletes
-- and tombstones deleted the stream's snapshots), when it is of a visible version or of the one just
-- before the first visible version (the state that stands for the history retention hides), and
-- the visible events after it; else the visible events.
CREATE VIEW lt.model_loads AS
WITH asked AS (
    SELECT m.stream_id, m.first_visible, 'head' AS up_to, m.stream_version AS max_version FROM lt.model m
    UNION ALL
    SELECT m.stream_id, m.first_visible, 'load_max', m.load_max FROM lt.model m),
usable AS (
    SELECT a.*, (SELECT max(s.stream_version) FROM lt.saved_snapshots s JOIN lt.model m USING (stream_id)
                  WHERE s.stream_id = a.stream_id AND m.fate = 'live' AND s.stream_version <= a.max_version
                 HAVING max(s.stream_version) >= a.first_visible - 1) AS snapshot_version
      FROM asked a)
SELECT u.stream_id, u.up_to, 'snapshot' AS kind, u.snapshot_version AS stream_version FROM usable u
 WHERE u.snapshot_version IS NOT NULL
UNION ALL
SELECT u.stream_id, u.up_to, 'event', e.stream_version FROM usable u
  JOIN eventsource.events e ON e.stream_id = u.stream_id
 WHERE e.stream_version <= u.max_version
   AND e.stream_version >= u.first_visible
   AND e.stream_version > COALESCE(u.snapshot_version, 0);
\o

-- ---------------------------------------------------------------------------------------------
-- Stream reads honour the rule at once.
-- ---------------------------------------------------------------------------------------------
SELECT results_eq(
    $$SELECT s.stream_id, eventsource.first_visible_version(s) FROM eventsource.streams s
       WHERE s.stream_id <> '$streams' ORDER BY 1$$,
    $$SELECT stream_id, first_visible FROM lt.model ORDER BY 1$$,
    'first_visible_version follows the rule for all 202 streams');
SELECT ok((SELECT count(*) FILTER (WHERE first_visible > 1 AND first_visible <= stream_version) > 20
              AND count(*) FILTER (WHERE first_visible = 1) > 20
              AND count(*) FILTER (WHERE fate = 'live' AND metadata ? 'max_age' AND first_visible > 1) > 0
             FROM lt.model),
          'the settings chosen hide part of many streams, none of many, and max_age hides some');
SELECT results_eq(
    $$SELECT stream_id, stream_version, event_id FROM lt.forward_reads ORDER BY stream_id, stream_version$$,
    $$SELECT e.stream_id, e.stream_version, e.event_id FROM eventsource.events e JOIN lt.model m USING (stream_id)
       WHERE e.stream_version >= m.first_visible ORDER BY 1, 2$$,
    'read_stream forward returns exactly the visible tail of every stream');
SELECT results_eq(
    $$SELECT stream_id, n, stream_version, event_id FROM lt.backward_reads ORDER BY stream_id, n$$,
    $$SELECT e.stream_id, row_number() OVER (PARTITION BY e.stream_id ORDER BY e.stream_version DESC),
             e.stream_version, e.event_id
        FROM eventsource.events e JOIN lt.model m USING (stream_id)
       WHERE e.stream_version >= m.first_visible ORDER BY 1, 2$$,
    'read_stream backward returns the same tail, newest first');
SELECT results_eq(
    $$SELECT stream_id, direction, n, stream_version FROM lt.paged_reads ORDER BY 1, 2, 3$$,
    $$SELECT stream_id, direction, n, stream_version FROM (
          SELECT e.stream_id, 'forward' AS direction,
                 row_number() OVER (PARTITION BY e.stream_id ORDER BY e.stream_version) AS n, e.stream_version
            FROM eventsource.events e JOIN lt.model m USING (stream_id)
           WHERE e.stream_version >= greatest(m.first_visible, m.forward_from)
          UNION ALL
          SELECT e.stream_id, 'backward',
                 row_number() OVER (PARTITION BY e.stream_id ORDER BY e.stream_version DESC), e.stream_version
            FROM eventsource.events e JOIN lt.model m USING (stream_id)
           WHERE e.stream_version >= m.first_visible AND e.stream_version <= m.backward_from) AS pages
       WHERE n <= 3 ORDER BY 1, 2, 3$$,
    'paged reads (3 events from a random version, either way) never show a hidden event');
SELECT results_eq(
    $$SELECT stream_id, up_to, kind, stream_version FROM lt.loads ORDER BY stream_id, up_to, n$$,
    $$SELECT stream_id, up_to, kind, stream_version FROM lt.model_loads
       ORDER BY stream_id, up_to, kind = 'event', stream_version$$,
    'load_stream (at the head and at a random version) uses a snapshot only from just before the first visible version on');
SELECT is((SELECT count(*) FROM eventsource.snapshots s JOIN lt.model m USING (stream_id) WHERE m.fate <> 'live'),
          0::bigint, 'deletes and tombstones deleted the streams'' snapshots');
SELECT results_eq(
    $$SELECT m.stream_id, eventsource.stream_metadata(m.stream_id) - 'max_age',
             (eventsource.stream_metadata(m.stream_id)->>'max_age')::interval
        FROM lt.model m ORDER BY 1$$,
    $$SELECT m.stream_id,
             jsonb_strip_nulls(COALESCE(m.metadata, '{}') - 'max_age'),
             CASE WHEN jsonb_typeof(m.metadata->'max_age') = 'number'
                  THEN (m.metadata->>'max_age')::numeric * interval '1 second'
                  ELSE (m.metadata->>'max_age')::interval END
        FROM lt.model m ORDER BY 1$$,
    'stream_metadata returns the settings made (a delete is not one of them)');
SELECT results_eq(
    $$SELECT s.stream_id, s.state, s.stream_version, s.first_visible_version, s.visible_events, s.events_to_scavenge
        FROM eventsource.stream_status s WHERE s.stream_id <> '$streams' ORDER BY 1$$,
    $$SELECT m.stream_id,
             CASE WHEN m.fate = 'tombstoned' THEN 'tombstoned'
                  WHEN m.fate = 'deleted' THEN 'deleted'
                  ELSE 'active' END,
             m.stream_version, m.first_visible, greatest(m.stream_version - m.first_visible + 1, 0),
             least(m.first_visible - 1, m.stream_version)
        FROM lt.model m ORDER BY 1$$,
    'stream_status has each stream''s state, visible events and events to scavenge');

-- The global log keeps every event until scavenge.
\o /dev/null
CREATE TABLE lt.log_before AS SELECT * FROM eventsource.events;
CREATE TABLE lt.forward_before AS SELECT * FROM lt.forward_reads;
CREATE TABLE lt.backward_before AS SELECT * FROM lt.backward_reads;
CREATE TABLE lt.paged_before AS SELECT * FROM lt.paged_reads;
CREATE TABLE lt.loads_before AS SELECT * FROM lt.loads;
CREATE VIEW lt.hidden AS
SELECT e.* FROM lt.log_before e JOIN lt.model m USING (stream_id) WHERE e.stream_version < m.first_visible;
-- The snapshots the loads no longer use: of live streams (the others have none), below the version
-- just before the first visible one.
CREATE VIEW lt.unusable_snapshots AS
SELECT s.* FROM lt.saved_snapshots s JOIN lt.model m USING (stream_id)
 WHERE m.fate = 'live' AND s.stream_version < m.first_visible - 1;
\o
SELECT set_eq($$SELECT event_id FROM eventsource.read_all(max_count => 100000)$$,
              $$SELECT event_id FROM lt.log_before WHERE stream_id <> '$streams'$$,
              'read_all still returns every event appended, hidden or not');
SELECT set_eq($$SELECT c.category, r.event_id FROM (SELECT DISTINCT category FROM lt.streams) c
                 CROSS JOIN LATERAL eventsource.read_category(c.category, max_count => 100000) r$$,
              $$SELECT split_part(stream_id, '-', 1), event_id FROM lt.log_before WHERE stream_id <> '$streams'$$,
              'read_category still returns every event of its category');

-- ---------------------------------------------------------------------------------------------
-- Scavenge, held back by consumers that have passed only part of the log.
-- ---------------------------------------------------------------------------------------------
\o /dev/null
-- A consumer group of 3 on the orders: member 0 acknowledges 12 of the first 30 events it gets,
-- member 1 everything it gets, member 2 nothing. One subscriber to the Closed invoices acknowledges
-- 25 events. An async projection of the Updated tickets is paused before it projected anything.
SELECT eventsource.create_subscription('tap-orders', category => 'order', consumer_group_size => 3);
SELECT eventsource.create_subscription('tap-closed-invoices', category => 'invoice', event_types => '{Closed}');
SET LOCAL client_min_messages = error;
SELECT eventsource.create_projection('tap-updated-tickets', 'lt.ignore(eventsource.event)', category => 'ticket',
                                     event_types => '{Updated}', mode => 'async');
SELECT eventsource.pause_projection('tap-updated-tickets');
SET LOCAL client_min_messages = notice;
SELECT lt.poll_and_ack('tap-orders', 0, 30, 12);
SELECT lt.consume('tap-orders', 1);
SELECT lt.poll_and_ack('tap-closed-invoices', 0, 40, 25);
CREATE TABLE lt.removable_1 AS SELECT h.* FROM lt.hidden h WHERE NOT lt.held((h.stream_id, h.event_type, h.transaction_id, h.global_position));
\o
SELECT ok((SELECT count(*) FROM lt.removable_1) > 0
          AND (SELECT count(*) FROM lt.hidden) > (SELECT count(*) FROM lt.removable_1)
          AND (SELECT count(*) FILTER (WHERE m.checkpoint IS NOT NULL) FROM eventsource.subscription_members m) = 3,
          'consumers hold back some hidden events, and three of the four members have acknowledged some');
SELECT results_eq($$SELECT calls, removed FROM lt.scavenge_loop(3)$$,
                  $$SELECT ((n + 2) / 3 + 1)::int, n
                      FROM (SELECT (SELECT count(*) FROM lt.removable_1) + (SELECT count(*) FROM lt.unusable_snapshots) AS n) AS r$$,
                  'scavenge in batches of 3 rows removes the hidden events no consumer holds and the unusable snapshots, then nothing');
SELECT set_eq($$SELECT event_id FROM eventsource.events$$,
              $$SELECT event_id FROM lt.log_before EXCEPT ALL SELECT event_id FROM lt.removable_1$$,
              'those and nothing else: every visible event and every event a consumer needs is left');
SELECT is((SELECT count(*) FROM lt.hidden h JOIN eventsource.events e USING (event_id)
            WHERE split_part(h.stream_id, '-', 1) = 'order'
              AND eventsource.consumer_group_member(h.stream_id, 3) = 1),
          0::bigint, 'no hidden event of the streams of member 1 (which acknowledged all) is left');
SELECT results_eq($$SELECT stream_id, stream_version, event_id, event_type, global_position FROM lt.forward_reads ORDER BY 1, 2$$,
                  $$SELECT stream_id, stream_version, event_id, event_type, global_position FROM lt.forward_before ORDER BY 1, 2$$,
                  'forward reads are the same after the scavenge');
SELECT results_eq($$SELECT * FROM lt.backward_reads ORDER BY stream_id, n$$,
                  $$SELECT * FROM lt.backward_before ORDER BY stream_id, n$$,
                  'backward reads are the same after the scavenge');
SELECT results_eq($$SELECT * FROM lt.paged_reads ORDER BY 1, 2, 3$$,
                  $$SELECT * FROM lt.paged_before ORDER BY 1, 2, 3$$,
                  'paged reads are the same after the scavenge');
SELECT results_eq($$SELECT * FROM lt.loads ORDER BY stream_id, up_to, n$$,
                  $$SELECT * FROM lt.loads_before ORDER BY stream_id, up_to, n$$,
                  'loads are the same after the scavenge');
SELECT ok((SELECT count(*) FROM lt.unusable_snapshots) > 0
          AND (SELECT count(*) FROM lt.saved_snapshots s JOIN lt.model m USING (stream_id)
                WHERE m.fate = 'live' AND s.stream_version = m.first_visible - 1) > 0,
          'some snapshots of live streams are below the version just before the first visible one, some of it');
SELECT set_eq($$SELECT stream_id, stream_version FROM eventsource.snapshots$$,
              $$SELECT s.stream_id, s.stream_version FROM lt.saved_snapshots s JOIN lt.model m USING (stream_id)
                 WHERE m.fate = 'live' AND s.stream_version >= m.first_visible - 1$$,
              'scavenge removed those below and kept the others, those just before the first visible version too');
SELECT results_eq($$SELECT s.stream_id, s.events_to_scavenge FROM eventsource.stream_status s
                     WHERE s.stream_id <> '$streams' ORDER BY 1$$,
                  $$SELECT m.stream_id, count(h.event_id) FROM lt.model m
                      LEFT JOIN (lt.hidden h JOIN eventsource.events e USING (event_id)) ON h.stream_id = m.stream_id
                     GROUP BY 1 ORDER BY 1$$,
                  'stream_status counts the held events as still to scavenge');
SELECT set_eq($$SELECT event_id FROM eventsource.read_all(max_count => 100000)$$,
              $$SELECT event_id FROM eventsource.events WHERE stream_id <> '$streams'$$,
              'read_all returns the events scavenge left');
SELECT is(eventsource.scavenge(), 0::bigint, 'a further scavenge removes nothing');

-- Every member passes everything: what remains hidden goes, except what the projection holds.
\o /dev/null
SELECT lt.consume('tap-orders', member) FROM generate_series(0, 2) AS member;
SELECT lt.consume('tap-closed-invoices', 0);
CREATE TABLE lt.removable_2 AS
SELECT h.* FROM lt.hidden h JOIN eventsource.events e USING (event_id) WHERE NOT lt.held((h.stream_id, h.event_type, h.transaction_id, h.global_position));
\o
SELECT ok((SELECT count(*) FROM lt.removable_2) > 0
          AND (SELECT count(*) FROM lt.removable_2 WHERE split_part(stream_id, '-', 1) = 'ticket' AND event_type = 'Updated') = 0
          AND (SELECT count(*) FROM lt.hidden h JOIN eventsource.events e USING (event_id)) > (SELECT count(*) FROM lt.removable_2),
          'after the acks only the projection holds hidden events back');
SELECT results_eq($$SELECT calls, removed FROM lt.scavenge_loop(100)$$,
                  $$SELECT ((count(*) + 99) / 100 + 1)::int, count(*) FROM lt.removable_2$$,
                  'once every member has acknowledged everything, scavenge removes what they held');
SELECT set_eq($$SELECT event_id FROM eventsource.events$$,
              $$SELECT event_id FROM lt.log_before
                EXCEPT ALL SELECT event_id FROM lt.removable_1 EXCEPT ALL SELECT event_id FROM lt.removable_2$$,
              'and nothing else');
\o /dev/null
SELECT eventsource.drop_projection('tap-updated-tickets');
\o
SELECT is((SELECT removed FROM lt.scavenge_loop(1000)),
          (SELECT count(*) FROM lt.hidden h JOIN eventsource.events e USING (event_id)),
          'with the projection dropped, scavenge removes the rest of the hidden events');
SELECT set_eq($$SELECT event_id FROM eventsource.events$$,
              $$SELECT event_id FROM lt.log_before EXCEPT ALL SELECT event_id FROM lt.hidden$$,
              'the log now holds exactly the visible events and the audit stream');
SELECT is((SELECT sum(events_to_scavenge) FROM eventsource.stream_status), 0::numeric,
          'stream_status has nothing left to scavenge');
SELECT results_eq($$SELECT stream_id, stream_version, event_id, event_type, global_position FROM lt.forward_reads ORDER BY 1, 2$$,
                  $$SELECT stream_id, stream_version, event_id, event_type, global_position FROM lt.forward_before ORDER BY 1, 2$$,
                  'forward reads are still the same');
SELECT results_eq($$SELECT * FROM lt.backward_reads ORDER BY stream_id, n$$,
                  $$SELECT * FROM lt.backward_before ORDER BY stream_id, n$$,
                  'backward reads are still the same');
SELECT results_eq($$SELECT * FROM lt.loads ORDER BY stream_id, up_to, n$$,
                  $$SELECT * FROM lt.loads_before ORDER BY stream_id, up_to, n$$,
                  'loads are still the same');

-- ---------------------------------------------------------------------------------------------
-- Writing after: tombstoned streams refuse for ever, deleted ones continue their numbering.
-- ---------------------------------------------------------------------------------------------
SELECT throws_ok(
           CASE row_number() OVER (ORDER BY stream_id) % 3
                WHEN 0 THEN format($$SELECT eventsource.append(%L, 'Reopened', '{}')$$, stream_id)
                WHEN 1 THEN format($$SELECT eventsource.append(%L, 'Reopened', '{}', expected_version => %s)$$,
                                   stream_id, stream_version)
                ELSE format($$SELECT eventsource.append_events(%L, '[{"type": "Reopened", "data": {}}]')$$, stream_id)
           END,
           'SE005', format('stream "%s" is tombstoned', stream_id),
           format('tombstoned %s (version %s) refuses an append', stream_id, stream_version))
  FROM lt.model WHERE fate = 'tombstoned' ORDER BY stream_id;
SELECT results_eq(
    $$SELECT s.stream_id, s.stream_version, (SELECT count(*) FROM eventsource.events e WHERE e.stream_id = s.stream_id)
        FROM eventsource.streams s JOIN lt.model m USING (stream_id) WHERE m.fate = 'tombstoned' ORDER BY 1$$,
    $$SELECT stream_id, stream_version, 0::bigint FROM lt.model WHERE fate = 'tombstoned' ORDER BY 1$$,
    'the refused appends wrote nothing');
SELECT results_eq(
    $$SELECT stream_id, eventsource.append(stream_id, 'Reopened', jsonb_build_object('after', stream_version),
                                          expected_version => stream_version)
        FROM lt.model WHERE fate = 'deleted' ORDER BY stream_id$$,
    $$SELECT stream_id, stream_version + 1 FROM lt.model WHERE fate = 'deleted' ORDER BY stream_id$$,
    'an append to each deleted stream, expecting the version deleted through, gets the next version');
SELECT results_eq(
    $$SELECT m.stream_id, r.stream_version, r.event_type, r.data
        FROM lt.model m CROSS JOIN LATERAL eventsource.read_stream(m.stream_id) r
       WHERE m.fate = 'deleted' ORDER BY 1, 2$$,
    $$SELECT stream_id, stream_version + 1, 'Reopened', jsonb_build_object('after', stream_version)
        FROM lt.model WHERE fate = 'deleted' AND COALESCE((metadata->>'truncate_before')::bigint, 0) <= stream_version + 1
       ORDER BY 1$$,
    'and a read of it shows that event alone (unless its truncate_before, which the delete left as it was, hides it)');
SELECT results_eq(
    $$SELECT m.stream_id, r.stream_version FROM lt.model m
       CROSS JOIN LATERAL eventsource.read_stream(m.stream_id, direction => 'backward', max_count => 5) r
       WHERE m.fate = 'deleted' ORDER BY 1, 2$$,
    $$SELECT stream_id, stream_version + 1
        FROM lt.model WHERE fate = 'deleted' AND COALESCE((metadata->>'truncate_before')::bigint, 0) <= stream_version + 1
       ORDER BY 1$$,
    'backwards too');

-- ---------------------------------------------------------------------------------------------
-- The audit stream: one event per call, in order, of the right type, naming the stream.
-- ---------------------------------------------------------------------------------------------
SELECT results_eq(
    $$SELECT event_type, data->>'stream_id', (data->>'stream_version')::bigint
        FROM eventsource.read_stream('$streams', max_count => 100000) ORDER BY stream_version$$,
    $$SELECT event_type, stream_id, stream_version FROM lt.calls ORDER BY n$$,
    'the $streams stream has one event per delete, tombstone and metadata call, in the order made');
SELECT results_eq(
    $$SELECT event_type, count(*) FROM eventsource.events WHERE stream_id = '$streams' GROUP BY 1 ORDER BY 1$$,
    $$SELECT * FROM (VALUES ('$stream-deleted', 30::bigint), ('$stream-metadata-set',
                             (SELECT count(*) FROM lt.choice WHERE metadata IS NOT NULL)),
                            ('$stream-tombstoned', 22::bigint)) AS v ORDER BY 1$$,
    '30 deletes, 22 tombstones and one metadata event per stream given settings');
SELECT results_eq(
    $$SELECT data->>'stream_id', (data->'metadata') - 'max_age', (data->'metadata'->>'max_age')::interval,
             data->'previous'
        FROM eventsource.events WHERE stream_id = '$streams' AND event_type = '$stream-metadata-set'
       ORDER BY 1$$,
    $$SELECT stream_id, jsonb_strip_nulls(metadata - 'max_age'),
             CASE WHEN jsonb_typeof(metadata->'max_age') = 'number'
                  THEN (metadata->>'max_age')::numeric * interval '1 second'
                  ELSE (metadata->>'max_age')::interval END,
             '{}'::jsonb
        FROM lt.model WHERE metadata IS NOT NULL ORDER BY 1$$,
    'each metadata event has the settings made and the previous ones');
SELECT results_eq(
    $$SELECT data->>'stream_id', count(*) FROM eventsource.events
       WHERE stream_id = '$streams' AND event_type IN ('$stream-deleted', '$stream-tombstoned') GROUP BY 1 ORDER BY 1$$,
    $$SELECT stream_id, 1::bigint FROM lt.model WHERE fate <> 'live' ORDER BY 1$$,
    'each deleted or tombstoned stream is named by exactly one event');

-- A delete is kept apart from the retention settings: changing them does not bring its events back.
\o /dev/null
SELECT eventsource.append_events('cart-7777', '[{"type": "A", "data": {}}, {"type": "B", "data": {}}]');
SELECT eventsource.delete_stream('cart-7777');
SELECT eventsource.set_stream_metadata('cart-7777', '{"max_count": 5}');
\o
SELECT is((SELECT count(*) FROM eventsource.read_stream('cart-7777')), 0::bigint,
          'a deleted stream stays deleted when its retention settings change');

SELECT * FROM finish();
ROLLBACK;
SET client_min_messages = warning;
DROP SCHEMA lt CASCADE;
