#!/usr/bin/env bash
# consistency_stress.sh: the dynamic consistency boundary scenarios of dcb.events under load, each
# decision read with read_by_query and appended with append_to_streams on the condition that nothing
# it read changed (a condition that fails is counted, and the decision is not retried):
# - 20 parallel writers subscribing students to 5 courses of 10 places: no course ever gets an 11th
#   student, and every course fills up;
# - 20 parallel writers reserving stock of two of 5 SKUs per order: no SKU is ever oversold;
# - 4 readers following the course events with read_by_query from their last checkpoint while the
#   writers run: the checkpoints each sees only increase, none sees an event twice, and at the end
#   each has seen every course event of the log;
# - 8 clients each conditioning on a course of its own: no condition fails.
# The checks read the log directly (events and their tags), not through the functions under test.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${STRESS_SECONDS:-10}
db=es_consistency_stress
pgbench_log=${TMPDIR:-/tmp}/es_consistency_stress_pgbench.log

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

dropdb --if-exists "$db"
createdb "$db"
psql_db >/dev/null <<'SQL'
CREATE EXTENSION eventsource;
CREATE SCHEMA stress;
-- What each decision came to: one row per call, in the call's transaction.
CREATE TABLE stress.outcomes (decision text NOT NULL, outcome text NOT NULL);
-- A student subscribes to a course if it has a place (capacity in its CourseDefined; none: no limit).
CREATE FUNCTION stress.subscribe(course text, student text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    query jsonb := jsonb_build_object('items', jsonb_build_array(jsonb_build_object('tags', jsonb_build_array('course:' || course))));
    capacity integer;
    subscribed integer;
    last_read text;
    outcome text := 'subscribed';
BEGIN
    SELECT max((data->>'capacity')::integer), count(*) FILTER (WHERE event_type = 'StudentSubscribed'),
           (array_agg(checkpoint ORDER BY checkpoint DESC))[1]::text
      INTO capacity, subscribed, last_read
      FROM eventsource.read_by_query(query, max_count => 100000);
    IF capacity IS NOT NULL AND subscribed >= capacity THEN
        outcome := 'full';
    ELSE
        BEGIN
            PERFORM eventsource.append_to_streams(
                jsonb_build_array(jsonb_build_object('stream_id', 'student-' || student, 'events', jsonb_build_array(
                    jsonb_build_object('type', 'StudentSubscribed', 'data', jsonb_build_object('course', course),
                                       'tags', jsonb_build_array('course:' || course, 'student:' || student))))),
                jsonb_build_object('fail_if_events_match', query, 'after', last_read));
        EXCEPTION WHEN SQLSTATE 'SE006' THEN
            outcome := 'condition failed';
        END;
    END IF;
    INSERT INTO stress.outcomes VALUES ('subscribe ' || CASE WHEN course LIKE 'own%' THEN 'own' ELSE 'shared' END, outcome);
    RETURN outcome;
END
$$;
-- An order reserves the quantities of its SKUs if every one has them.
CREATE FUNCTION stress.reserve(lines jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    query jsonb := jsonb_build_object('items',
        (SELECT jsonb_agg(jsonb_build_object('tags', jsonb_build_array('sku:' || key))) FROM jsonb_object_keys(lines) AS key));
    last_read text;
    short boolean;
    outcome text := 'reserved';
BEGIN
    SELECT (array_agg(checkpoint ORDER BY checkpoint DESC))[1]::text INTO last_read
      FROM eventsource.read_by_query(query, max_count => 100000);
    WITH stock AS (
        SELECT substr(t, 5) AS sku, sum(CASE e.event_type WHEN 'StockAdded' THEN 1 ELSE -1 END * (e.data->>'quantity')::integer) AS available
          FROM eventsource.read_by_query(query, max_count => 100000) AS e, unnest(e.tags) AS t
         WHERE t LIKE 'sku:%' AND (last_read IS NULL OR e.checkpoint OPERATOR(eventsource.<=) last_read::eventsource.checkpoint)
         GROUP BY 1)
    SELECT bool_or(COALESCE(s.available, 0) < l.value::integer) INTO short
      FROM jsonb_each_text(lines) AS l LEFT JOIN stock s ON s.sku = l.key;
    IF short THEN
        outcome := 'short';
    ELSE
        BEGIN
            PERFORM eventsource.append_to_streams(
                jsonb_build_array(jsonb_build_object('stream_id', 'order-' || gen_random_uuid(), 'expected_version', 0, 'events',
                    (SELECT jsonb_agg(jsonb_build_object('type', 'StockReserved', 'data', jsonb_build_object('quantity', l.value::integer),
                                                         'tags', jsonb_build_array('sku:' || l.key)))
                       FROM jsonb_each_text(lines) AS l))),
                jsonb_build_object('fail_if_events_match', query, 'after', last_read));
        EXCEPTION WHEN SQLSTATE 'SE006' THEN
            outcome := 'condition failed';
        END;
    END IF;
    INSERT INTO stress.outcomes VALUES ('reserve', outcome);
    RETURN outcome;
END
$$;
-- A reader of the course events: from its last checkpoint, for a while, committing what it saw.
CREATE TABLE stress.seen (reader integer, seen_at bigint GENERATED ALWAYS AS IDENTITY, event_id uuid, checkpoint eventsource.checkpoint);
CREATE PROCEDURE stress.follow(reader integer, seconds integer) LANGUAGE plpgsql AS $$
DECLARE
    query jsonb := '{"items": [{"tags": ["course:c1"]}, {"tags": ["course:c2"]}, {"tags": ["course:c3"]}, {"tags": ["course:c4"]}, {"tags": ["course:c5"]}]}';
    last_seen eventsource.checkpoint;
    until timestamptz := clock_timestamp() + make_interval(secs => seconds);
BEGIN
    SELECT s.checkpoint INTO last_seen FROM stress.seen s WHERE s.reader = follow.reader ORDER BY s.seen_at DESC LIMIT 1;
    LOOP
        INSERT INTO stress.seen (reader, event_id, checkpoint)
        SELECT reader, e.event_id, e.checkpoint FROM eventsource.read_by_query(query, last_seen, 50) AS e ORDER BY e.checkpoint;
        SELECT s.checkpoint INTO last_seen FROM stress.seen s WHERE s.reader = follow.reader ORDER BY s.seen_at DESC LIMIT 1;
        COMMIT;
        EXIT WHEN clock_timestamp() > until;
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;
SELECT eventsource.append('course-c' || n, 'CourseDefined', '{"capacity": 10}', tags => ARRAY['course:c' || n]) FROM generate_series(1, 5) AS n;
SELECT eventsource.append('warehouse-1', 'StockAdded', '{"quantity": 50}', tags => ARRAY['sku:sku' || n]) FROM generate_series(1, 5) AS n;
SQL

echo "# 20 writers for ${seconds}s: course subscriptions and stock reservations; 4 readers following the courses"
readers=()
trap 'kill "${readers[@]}" 2>/dev/null || true' EXIT
for reader in 1 2 3 4; do
  psql_db -c "CALL stress.follow($reader, $((seconds + 2)))" &
  readers+=($!)
done
pgbench -n -c 20 -j 2 -T "$seconds" -f "$here/stress/dcb_subscribe.pgbench" -f "$here/stress/dcb_reserve.pgbench" "$db" > "$pgbench_log" 2>&1 \
  || { cat "$pgbench_log"; exit 1; }
wait "${readers[@]}"
# A last read of each reader, now that the writers are done.
for reader in 1 2 3 4; do psql_db -c "CALL stress.follow($reader, 0)"; done
echo "# 8 clients for ${seconds}s, each conditioning on a course of its own"
pgbench -n -c 8 -j 2 -T "$seconds" -f "$here/stress/dcb_disjoint.pgbench" "$db" > "$pgbench_log" 2>&1 \
  || { cat "$pgbench_log"; exit 1; }

results=$(psql_db -v test=consistency_stress -v lib="$here/lib" <<'SQL'
SELECT '# ' || decision || ': ' || string_agg(outcome || ' ' || n, ', ' ORDER BY outcome)
  FROM (SELECT decision, outcome, count(*) AS n FROM stress.outcomes GROUP BY 1, 2) o GROUP BY decision ORDER BY decision;

CREATE TEMP TABLE checks (name text, passed boolean, detail text);

-- Courses: subscriptions per course from the log's tags.
INSERT INTO checks
SELECT 'no course gets more students than its 10 places, and every course filled up', bool_and(n = 10), string_agg(course || ': ' || n, ', ' ORDER BY course)
  FROM (SELECT t AS course, count(*) AS n FROM eventsource.events, unnest(tags) AS t
         WHERE event_type = 'StudentSubscribed' AND t ~ '^course:c[0-9]$' GROUP BY 1) AS per_course;
INSERT INTO checks
SELECT 'five courses were subscribed to', count(DISTINCT t) = 5, count(DISTINCT t) || ' courses'
  FROM eventsource.events, unnest(tags) AS t WHERE event_type = 'StudentSubscribed' AND t ~ '^course:c[0-9]$';

-- Stock: what was added minus what was reserved, per SKU, from the log's tags.
INSERT INTO checks
SELECT 'no SKU is ever oversold', bool_and(available >= 0), string_agg(sku || ': ' || available, ', ' ORDER BY sku)
  FROM (SELECT t AS sku, sum(CASE event_type WHEN 'StockAdded' THEN 1 ELSE -1 END * (data->>'quantity')::int) AS available
          FROM eventsource.events, unnest(tags) AS t WHERE t LIKE 'sku:%' GROUP BY 1) AS per_sku;
INSERT INTO checks
SELECT 'orders were reserved, and some refused for want of stock', count(*) FILTER (WHERE outcome = 'reserved') > 0 AND count(*) FILTER (WHERE outcome = 'short') > 0,
       count(*) FILTER (WHERE outcome = 'reserved') || ' reserved'
  FROM stress.outcomes WHERE decision = 'reserve';

-- Readers: checkpoints only increase, no event twice, every course event seen.
INSERT INTO checks
SELECT 'each reader''s checkpoints only increase', count(*) = 0, count(*) || ' decreases'
  FROM (SELECT checkpoint, lag(checkpoint) OVER (PARTITION BY reader ORDER BY seen_at) AS previous FROM stress.seen) s
 WHERE previous OPERATOR(eventsource.>=) checkpoint;
INSERT INTO checks
SELECT 'no reader sees an event twice', count(*) = 0, count(*) || ' repeats'
  FROM (SELECT reader, event_id FROM stress.seen GROUP BY 1, 2 HAVING count(*) > 1) d;
INSERT INTO checks
SELECT 'each reader has seen every course event of the log', count(*) = 0, count(*) || ' missed'
  FROM generate_series(1, 4) AS r(reader)
 CROSS JOIN (SELECT event_id FROM eventsource.events e WHERE EXISTS (SELECT FROM unnest(e.tags) t WHERE t ~ '^course:c[0-9]$')) AS e
 WHERE NOT EXISTS (SELECT FROM stress.seen s WHERE s.reader = r.reader AND s.event_id = e.event_id);

-- Disjoint conditions: none failed.
INSERT INTO checks
SELECT 'conditional appends on courses of their own never fail', count(*) FILTER (WHERE outcome <> 'subscribed') = 0 AND count(*) > 0,
       count(*) FILTER (WHERE outcome <> 'subscribed') || ' failed of ' || count(*)
  FROM stress.outcomes WHERE decision = 'subscribe own';

\i :lib/stress_checks.sql
SQL
)
echo "$results"
dropdb "$db"
[[ "$results" == *" 0 failed" ]]
