#!/usr/bin/env bash
# query_filters_stress.sh: subscriptions and projections of a query, against an independent checker.
# 8 writers append events of three types tagged with random courses and students while a 3-member
# consumer group polls a subscription of a query, recording each batch with its ack in one
# transaction, and an async projection (the worker's) and an inline projection of the same query
# record what their handler gets. At the end each holds exactly the events of the log that match
# the query, each once: what this test selects with tags @> and event_type = ANY, apart from the
# library's matcher. Then an async projection of a tag that only the newest of 30,000 events has
# catches up, and its checkpoint passes the others.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one, whose
# notifier serves es_queries).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
seconds=${STRESS_SECONDS:-10}
db=es_queries
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
query='{"items": [{"types": ["Enrolled", "Left"], "tags": ["course:c1"]}, {"tags": ["student:s7"]}]}'
matching="(e.event_type = ANY ('{Enrolled,Left}') AND e.tags @> '{course:c1}') OR e.tags @> '{student:s7}'"

dropdb --if-exists "$db"
createdb "$db"
psql_db > /dev/null <<SQL
CREATE EXTENSION eventsource;
CREATE SCHEMA checker;
CREATE TABLE checker.consumed (global_position bigint NOT NULL, stream_id text NOT NULL,
                               stream_version bigint NOT NULL, member integer NOT NULL, seen serial);
CREATE TABLE checker.projected (global_position bigint NOT NULL, projection text NOT NULL);
CREATE FUNCTION checker.record_async(e eventsource.event) RETURNS void LANGUAGE sql
    AS \$\$INSERT INTO checker.projected VALUES (e.global_position, 'async')\$\$;
CREATE FUNCTION checker.record_inline(e eventsource.event) RETURNS void LANGUAGE sql
    AS \$\$INSERT INTO checker.projected VALUES (e.global_position, 'inline')\$\$;
CREATE FUNCTION checker.record_rare(e eventsource.event) RETURNS void LANGUAGE sql
    AS \$\$INSERT INTO checker.projected VALUES (e.global_position, 'rare')\$\$;
-- One batch of the member, recorded and acknowledged in one transaction; how many events it had.
CREATE FUNCTION checker.consume(member integer) RETURNS integer LANGUAGE plpgsql AS \$\$
DECLARE
    event record;
    last_checkpoint eventsource.checkpoint;
    last_lease uuid;
    count integer := 0;
BEGIN
    FOR event IN SELECT * FROM eventsource.poll('course-feed', 50, member) LOOP
        INSERT INTO checker.consumed VALUES (event.global_position, event.stream_id, event.stream_version, member);
        last_checkpoint := event.checkpoint;
        last_lease := event.lease;
        count := count + 1;
    END LOOP;
    IF count > 0 THEN
        PERFORM eventsource.ack('course-feed', last_checkpoint, member, last_lease);
    END IF;
    RETURN count;
END
\$\$;
SELECT eventsource.create_subscription('course-feed', consumer_group_size => 3, query => '$query');
SELECT eventsource.create_projection('course-async', 'checker.record_async(eventsource.event)', mode => 'async',
                                     query => '$query');
SELECT eventsource.create_projection('course-inline', 'checker.record_inline(eventsource.event)', query => '$query');
SQL
check "a notifier serves the database" "$(notifier_serves "$db")" t

pgbench -n -c 8 -j 2 -T "$seconds" -f "$here/stress/course_writer.pgbench" "$db" > "$work/pgbench.log" 2>&1 &
writers=$!
for member in 0 1 2; do
  psql_db > /dev/null <<SQL &
DO \$\$
DECLARE
    writing_ends timestamptz := clock_timestamp() + interval '$seconds seconds';
BEGIN
    LOOP
        IF checker.consume($member) = 0 THEN
            EXIT WHEN clock_timestamp() > writing_ends;
            PERFORM pg_sleep(0.01);
        END IF;
        COMMIT;
    END LOOP;
END
\$\$;
SQL
done
wait "$writers"
wait
# Drain what the writers' last transactions left.
for member in 0 1 2; do
  until [ "$(psql_db -c "SELECT checker.consume($member)")" = 0 ]; do :; done
done
wait_for_db "SELECT events_behind = 0 FROM eventsource.projection_status WHERE name = 'course-async'" || true

psql_db -c "SELECT e.global_position FROM eventsource.events e WHERE $matching ORDER BY 1" > "$work/expected"
echo "# $(psql_db -c "SELECT count(*) FROM eventsource.events") events appended, $(wc -l < "$work/expected") of them match the query"
check "the writers appended, some events matching and many not" \
  "$(psql_db -c "SELECT count(*) > 200 AND count(*) FILTER (WHERE $matching) BETWEEN 50 AND count(*) / 2 FROM eventsource.events e")" t
psql_db -c "SELECT global_position FROM checker.consumed ORDER BY 1" > "$work/consumed"
check "the consumer group received every matching event once, and no other" \
  "$(cmp -s "$work/consumed" "$work/expected" && echo same || echo "$(wc -l < "$work/consumed") rows, differing")" same
check "each member received its streams' events in stream version order" \
  "$(psql_db -c "SELECT count(*) FROM (SELECT stream_version < lag(stream_version) OVER (PARTITION BY stream_id ORDER BY seen) AS back
                                         FROM checker.consumed) AS c WHERE back")" 0
check "each stream's events went to one member" \
  "$(psql_db -c "SELECT count(*) FROM (SELECT stream_id FROM checker.consumed GROUP BY stream_id HAVING count(DISTINCT member) > 1) AS s")" 0
for projection in async inline; do
  psql_db -c "SELECT global_position FROM checker.projected WHERE projection = '$projection' ORDER BY 1" > "$work/$projection"
  check "the $projection projection of the query was fed every matching event once, and no other" \
    "$(cmp -s "$work/$projection" "$work/expected" && echo same || echo "$(wc -l < "$work/$projection") rows, differing")" same
done
check "subscription_status shows no event behind" \
  "$(psql_db -c "SELECT sum(events_behind) FROM eventsource.subscription_status WHERE name = 'course-feed'")" 0

# A tag only the newest of 30,000 events has: its projection reads the log in windows, and its
# checkpoint passes the events its query skips.
psql_db > /dev/null <<'SQL'
SELECT count(*) FROM (SELECT eventsource.append_events('filler-' || s,
                                                       (SELECT jsonb_agg(jsonb_build_object('type', 'Filled', 'data', jsonb_build_object('n', n),
                                                                                            'tags', jsonb_build_array('filler:' || s)))
                                                          FROM generate_series(1, 1000) AS n))
                        FROM generate_series(1, 30) AS s) AS appended;
SELECT eventsource.append('rare-1', 'Spotted', '{}', tags => '{rare:1}');
SELECT eventsource.create_projection('rare', 'checker.record_rare(eventsource.event)', mode => 'async',
                                     query => '{"items": [{"tags": ["rare:1"]}]}');
SQL
wait_for_db "SELECT count(*) = 1 FROM checker.projected WHERE projection = 'rare'" || true
check "the projection of a rare tag got its one event" \
  "$(psql_db -c "SELECT count(*) FROM checker.projected WHERE projection = 'rare'")" 1
wait_for_db "SELECT p.checkpoint OPERATOR(eventsource.>=) e.checkpoint
               FROM eventsource.projections p, eventsource.read_stream('rare-1') e WHERE p.name = 'rare'" || true
check "and its checkpoint went past the 30,000 events before it" \
  "$(psql_db -c "SELECT p.checkpoint OPERATOR(eventsource.>=) e.checkpoint
                   FROM eventsource.projections p, eventsource.read_stream('rare-1') e WHERE p.name = 'rare'")" t

dropdb "$db"
finish query_filters_stress
