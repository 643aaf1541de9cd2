#!/usr/bin/env bash
# stress_bus.sh: the bus under load. 8 writers (pgbench: random sleeps inside transactions, single
# appends and batches, two streams in one transaction, savepoints and whole transactions rolled back)
# append to 300 streams in 3 categories for STRESS_SECONDS (default 60) while 3 subscriptions are
# consumed: "all-events" (no filter), "one-category" (category stress1, event types Ticked and Tacked)
# and "grouped" (a consumer group of 2, one process per member). A subscriber is a psql session
# looping over a batch: poll, record the events in its received_* table, ack the last checkpoint, all
# in one transaction ("one-category" commits the poll first, so its lease is durable, then records
# and acks in a second transaction). Mid-run, subscriber processes are killed with SIGKILL and
# restarted: one at a random moment, two while they hold a batch recorded but not committed (one
# whose batch is redelivered at once, one whose batch is redelivered when its lease runs out).
# Once the writers stop and the subscribers drain, every subscriber must have recorded exactly the
# committed events it subscribes to, each once, in order per stream and in log order; each group
# member exactly the streams hashing to it.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one, with
# the library preloaded and a notifier for this database; the subscribers LISTEN but only poll).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${STRESS_SECONDS:-60}
writers=${STRESS_WRITERS:-8}
db=es_stress_bus
# The lease of "one-category", whose held batch is redelivered only when the lease runs out.
lease=6

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
# give_up REASON: a failure that leaves nothing to check.
give_up() {
  echo "not ok - $1"
  echo "stress_bus: 0 passed, 1 failed"
  exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/es_stress_bus.XXXXXX")
declare -A pids=()
writer_pid=
cleanup() {
  local pid
  for pid in "${pids[@]}" $writer_pid; do
    kill -9 -- "-$pid" 2> /dev/null || true
  done
  # The subscribers' logs stay for a failed run.
  if [ "${passed:-}" = yes ]; then rm -rf "$work"; else echo "# subscriber logs: $work"; fi
}
trap cleanup EXIT

dropdb --if-exists "$db"
createdb "$db"
psql_db > /dev/null <<'SQL'
CREATE EXTENSION eventsource;

-- The subscriptions, and what each should receive (the checks derive it from this, not from the bus).
CREATE TABLE subscribers (name text PRIMARY KEY, category text, event_types text[], group_size int NOT NULL);
INSERT INTO subscribers VALUES
    ('all-events', NULL, NULL, 1),
    ('one-category', 'stress1', '{Ticked,Tacked}', 1),
    ('grouped', NULL, NULL, 2);
SELECT eventsource.create_subscription(name, category, event_types, 'beginning', group_size) FROM subscribers;

-- What each subscriber recorded, in the order it received it (receive_order).
CREATE TABLE received_all_events (
    subscriber      text NOT NULL,
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL,
    global_position bigint NOT NULL,
    member          int NOT NULL,
    receive_order   bigint GENERATED ALWAYS AS IDENTITY,
    checkpoint      eventsource.checkpoint NOT NULL);
CREATE TABLE received_one_category (LIKE received_all_events INCLUDING IDENTITY);
CREATE TABLE received_grouped (LIKE received_all_events INCLUDING IDENTITY);
CREATE VIEW received AS
SELECT * FROM received_all_events UNION ALL
SELECT * FROM received_one_category UNION ALL
SELECT * FROM received_grouped;

-- The events each subscriber (member) should receive: the committed ones matching its filter.
CREATE VIEW expected AS
SELECT s.name AS subscriber, m.member, e.stream_id, e.stream_version, e.global_position
  FROM subscribers s
 CROSS JOIN LATERAL generate_series(0, s.group_size - 1) AS m(member)
  JOIN eventsource.events e
    ON (s.category IS NULL OR split_part(e.stream_id, '-', 1) = s.category)
   AND (s.event_types IS NULL OR e.event_type = ANY (s.event_types))
   AND (s.group_size = 1 OR eventsource.consumer_group_member(e.stream_id, s.group_size) = m.member);

-- A row here makes that subscriber member stop between recording a batch and committing it.
CREATE TABLE holds (subscriber text NOT NULL, member int NOT NULL);
-- What the subscribers' logs say they polled, and the kills.
CREATE TABLE deliveries (process text, line_no int, got int, first_position bigint, last_position bigint,
                         polled_at numeric);
CREATE TABLE kills (process text, kind text, log_lines int, killed_at numeric DEFAULT extract(epoch FROM clock_timestamp()));
SQL

# One batch of a subscriber: psql variables sub, member, max_count, lease, split, received.
cat > "$work/batch.psql" <<'PSQL'
BEGIN;
INSERT INTO batch (n, stream_id, stream_version, global_position, checkpoint, lease)
SELECT p.ordinality, p.stream_id, p.stream_version, p.global_position, p.checkpoint, p.lease
  FROM eventsource.poll(:'sub', :max_count, :member, :lease) WITH ORDINALITY AS p;
SELECT count(*) AS got, count(*) > 0 AS got_any,
       coalesce((array_agg(global_position ORDER BY n))[1], 0) AS first_position,
       coalesce((array_agg(global_position ORDER BY n DESC))[1], 0) AS last_position,
       extract(epoch FROM clock_timestamp()) AS polled_at
  FROM batch \gset
\echo polled :got :first_position :last_position :polled_at
\if :split
COMMIT;
BEGIN;
\endif
INSERT INTO :"received" (subscriber, stream_id, stream_version, global_position, member, checkpoint)
SELECT :'sub', stream_id, stream_version, global_position, :member, checkpoint FROM batch ORDER BY n;
SELECT pg_sleep(60) FROM holds WHERE subscriber = :'sub' AND member = :member AND :got > 0;
\if :got_any
SELECT eventsource.ack(:'sub', checkpoint, :member, lease) AS acked FROM batch ORDER BY n DESC LIMIT 1 \gset
\endif
DELETE FROM batch;
COMMIT;
\if :got_any
\else
SELECT pg_sleep(0.02) AS idle \gset
\endif
PSQL

# start_subscriber NAME/MEMBER: a psql session running batch.psql over and over, in a process group
# of its own (set -m) so that kill -9 -- -PID ends psql and its feeder at once.
set -m
start_subscriber() {
  local process=$1 name=${1%/*} member=${1#*/}
  local max_count split=off process_lease=30 listen=
  case $name in
    all-events) max_count=100; listen='LISTEN eventsource;' ;;
    one-category) max_count=25; split=on; process_lease=$lease; listen='LISTEN "eventsource.stress1";' ;;
    grouped) max_count=50 ;;
  esac
  (
    {
      # A killed client must end its backend at once, even in pg_sleep, so its locks go with it.
      echo "SET client_connection_check_interval = 100;"
      echo "CREATE TEMP TABLE batch (n bigint, stream_id text, stream_version bigint, global_position bigint, checkpoint eventsource.checkpoint, lease uuid);"
      echo "$listen"
      echo "SELECT extract(epoch FROM clock_timestamp()) AS started_at \\gset"
      echo "\\echo started :started_at"
      yes "\\i $work/batch.psql"
    } | PGAPPNAME="stress_bus $process" psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" \
          -v sub="$name" -v member="$member" -v max_count="$max_count" -v lease="$process_lease" \
          -v split="$split" -v received="received_${name//-/_}" >> "$work/$name.$member.log" 2>&1
  ) &
  pids[$process]=$!
}

# kill_subscriber NAME/MEMBER KIND: SIGKILL, then a restart 1.5 s later.
kill_subscriber() {
  local process=$1 kind=$2 log="$work/${1%/*}.${1#*/}.log"
  kill -9 -- "-${pids[$process]}"
  wait "${pids[$process]}" 2> /dev/null || true
  psql_db -c "INSERT INTO kills (process, kind, log_lines) VALUES ('$process', '$kind', $(wc -l < "$log"))"
  sleep 1.5
  start_subscriber "$process"
}

# hold_and_kill NAME/MEMBER KIND: kills the process while it holds a batch recorded but uncommitted.
hold_and_kill() {
  local process=$1 tries=0
  psql_db -c "INSERT INTO holds VALUES ('${process%/*}', ${process#*/})"
  until [ "$(psql_db -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'stress_bus $process'
                           AND state = 'active' AND wait_event = 'PgSleep' AND query LIKE '%FROM holds%'")" = 1 ]; do
    tries=$((tries + 1))
    [ $tries -lt 400 ] || give_up "$process held a batch when asked to"
    sleep 0.05
  done
  psql_db -c "DELETE FROM holds"
  kill_subscriber "$process" "$2"
}

# sleep_until SECOND: sleeps until that many seconds after the writers started.
sleep_until() {
  while [ $((SECONDS - started)) -lt "$1" ]; do sleep 0.1; done
}

processes=(all-events/0 one-category/0 grouped/0 grouped/1)
for process in "${processes[@]}"; do
  start_subscriber "$process"
done

# Writers: the gap-safe stress test's transactions, and one over two streams (in ascending order,
# so that writers never deadlock) with a rolled-back savepoint between its appends.
cat > "$work/append_two_streams.pgbench" <<'PGBENCH'
\set a random(1, 150)
\set b random(151, 300)
\set pause random(0, 40)
BEGIN;
SELECT eventsource.append('stress' || (:a % 3) || '-' || :a, 'Tacked', jsonb_build_object('client', :client_id));
SAVEPOINT undone;
SELECT eventsource.append('stress' || (:b % 3) || '-' || :b, 'RolledBack', '{}');
SELECT pg_sleep(:pause / 2000.0);
ROLLBACK TO SAVEPOINT undone;
SELECT eventsource.append('stress' || (:b % 3) || '-' || :b, 'Tacked', jsonb_build_object('client', :client_id));
SELECT pg_sleep(:pause / 2000.0);
COMMIT;
PGBENCH

echo "# $writers writers for ${seconds}s; subscribers ${processes[*]}"
started=$SECONDS
pgbench -n -c "$writers" -j 2 -T "$seconds" --max-tries=20 \
  -f "$here/stress/append_one.pgbench@5" \
  -f "$here/stress/append_batch.pgbench@3" \
  -f "$here/stress/append_rolled_back.pgbench@1" \
  -f "$work/append_two_streams.pgbench@2" "$db" > "$work/pgbench.log" 2>&1 &
writer_pid=$!

sleep_until $((seconds / 4))
kill_subscriber all-events/0 random
sleep_until $((seconds * 9 / 20))
hold_and_kill grouped/1 hold
sleep_until $((seconds * 13 / 20))
hold_and_kill one-category/0 lease

wait "$writer_pid" || { cat "$work/pgbench.log"; give_up "the writers ran without error"; }
writer_pid=
grep -E "^number of (transactions|failed)" "$work/pgbench.log" | sed 's/^/# /'

# Drain: wait until every subscriber member has recorded as many events as it should, then for an
# empty poll by each (the poll that finds nothing more). A subscriber that died, or a count that
# never matches, ends the wait; the checks below then say what is wrong.
drain_started=$SECONDS
until [ "$(psql_db -c "SELECT count(*) FROM (SELECT subscriber, member, count(*) AS n FROM expected GROUP BY 1, 2) x
                         FULL JOIN (SELECT subscriber, member, count(*) AS n FROM received GROUP BY 1, 2) r
                         USING (subscriber, member) WHERE x.n IS DISTINCT FROM r.n")" = 0 ]; do
  for process in "${processes[@]}"; do
    kill -0 "${pids[$process]}" 2> /dev/null || { echo "# subscriber $process died:"; tail -5 "$work/${process%/*}.${process#*/}.log" | sed 's/^/#   /'; break 2; }
  done
  [ $((SECONDS - drain_started)) -lt 30 ] || { echo "# subscribers did not drain in 30 s"; break; }
  sleep 0.2
done
declare -A drained_lines=()
for process in "${processes[@]}"; do
  drained_lines[$process]=$(wc -l < "$work/${process%/*}.${process#*/}.log")
done
for process in "${processes[@]}"; do
  log="$work/${process%/*}.${process#*/}.log"
  until tail -n +"$((drained_lines[$process] + 1))" "$log" | grep -q '^polled 0 '; do
    kill -0 "${pids[$process]}" 2> /dev/null || break
    [ $((SECONDS - drain_started)) -lt 40 ] || break
    sleep 0.1
  done
done
echo "# drained $((SECONDS - drain_started))s after the writers stopped"
for process in "${processes[@]}"; do
  kill -TERM -- "-${pids[$process]}" 2> /dev/null || true
  wait "${pids[$process]}" 2> /dev/null || true
done
pids=()

# What the subscribers' logs say: every batch polled (including those never committed) and errors.
for process in "${processes[@]}"; do
  awk -v p="$process" '$1 == "polled" { print p "\t" NR "\t" $2 "\t" $3 "\t" $4 "\t" $5 }' \
    "$work/${process%/*}.${process#*/}.log"
done | psql_db -c "\copy deliveries FROM pstdin"
errors=$(cat "$work"/*.log | grep -E 'ERROR|FATAL|psql:' | head -5 || true)
notifications=$(cat "$work"/*.log | grep -c '^Asynchronous notification' || true)

results=$(psql_db -v errors="$errors" -v lease="$lease" <<'SQL'
SET search_path = public, eventsource;
SELECT '# ' || count(*) || ' events committed in ' || count(DISTINCT stream_id) || ' streams; '
       || count(DISTINCT transaction_id) || ' transactions; positions 1..' || max(global_position)
  FROM eventsource.events;

CREATE TEMP TABLE checks (name text, passed boolean, detail text);

CREATE TEMP TABLE differences AS
(SELECT subscriber, member, stream_id, stream_version, 'missed' AS kind FROM expected
 EXCEPT SELECT subscriber, member, stream_id, stream_version, 'missed' FROM received)
UNION ALL
(SELECT subscriber, member, stream_id, stream_version, 'unexpected' FROM received
 EXCEPT SELECT subscriber, member, stream_id, stream_version, 'unexpected' FROM expected);

CREATE TEMP VIEW members AS
SELECT s.name AS subscriber, m.member, s.name || CASE WHEN s.group_size > 1 THEN ' member ' || m.member ELSE '' END AS label
  FROM subscribers s CROSS JOIN LATERAL generate_series(0, s.group_size - 1) AS m(member);

INSERT INTO checks
SELECT format('%s: %s', m.label, k.label), count(d.*) = 0, count(d.*) || ' events'
  FROM members m
 CROSS JOIN (VALUES ('missed', 'received every committed event it subscribes to'),
                    ('unexpected', 'received only committed events it subscribes to')) AS k(kind, label)
  LEFT JOIN differences d ON (d.subscriber, d.member, d.kind) = (m.subscriber, m.member, k.kind)
 GROUP BY m.label, k.label;

INSERT INTO checks
SELECT format('%s: received each event once (%s events)', m.label, count(r.*)),
       count(r.*) = count(DISTINCT (r.stream_id, r.stream_version)),
       (count(r.*) - count(DISTINCT (r.stream_id, r.stream_version))) || ' duplicates'
  FROM members m LEFT JOIN received r USING (subscriber, member) GROUP BY m.label;

INSERT INTO checks
SELECT format('%s: received each stream''s events in version order', m.label),
       count(o.*) FILTER (WHERE NOT o.in_order) = 0,
       count(o.*) FILTER (WHERE NOT o.in_order) || ' out of order, e.g. ' || min(o.example) FILTER (WHERE NOT o.in_order)
  FROM members m
  LEFT JOIN (SELECT subscriber, member,
                    coalesce(stream_version > lag(stream_version) OVER w, true) AS in_order,
                    format('%s version %s (checkpoint %s) after version %s (checkpoint %s)', stream_id,
                           stream_version, checkpoint, lag(stream_version) OVER w, lag(checkpoint) OVER w) AS example
               FROM received WINDOW w AS (PARTITION BY subscriber, member, stream_id ORDER BY receive_order)) AS o
         USING (subscriber, member)
 GROUP BY m.label;

INSERT INTO checks
SELECT format('%s: received in log (checkpoint) order', m.label),
       count(o.*) FILTER (WHERE NOT o.in_order) = 0, count(o.*) FILTER (WHERE NOT o.in_order) || ' out of order'
  FROM members m
  LEFT JOIN (SELECT subscriber, member, coalesce(checkpoint > lag(checkpoint) OVER w, true) AS in_order
               FROM received WINDOW w AS (PARTITION BY subscriber, member ORDER BY receive_order)) AS o
         USING (subscriber, member)
 GROUP BY m.label;

INSERT INTO checks
SELECT 'every recorded event has the global position and checkpoint of the committed event',
       count(*) = 0, count(*) || ' mismatches'
  FROM received r LEFT JOIN eventsource.events e USING (stream_id, stream_version)
 WHERE e.global_position IS DISTINCT FROM r.global_position
    OR eventsource.checkpoint(e.transaction_id, e.global_position) IS DISTINCT FROM r.checkpoint;

INSERT INTO checks
SELECT 'grouped: each member received only the streams hashing to it, and both some',
       count(*) FILTER (WHERE eventsource.consumer_group_member(stream_id, 2) <> member) = 0
       AND count(DISTINCT member) = 2,
       count(*) FILTER (WHERE eventsource.consumer_group_member(stream_id, 2) <> member) || ' misrouted events, '
       || count(DISTINCT member) || ' members with events'
  FROM received_grouped;

INSERT INTO checks
SELECT 'grouped: the members together received every committed event, once',
       (SELECT count(*) FROM eventsource.events) = count(DISTINCT (stream_id, stream_version))
       AND count(*) = count(DISTINCT (stream_id, stream_version)),
       count(DISTINCT (stream_id, stream_version)) || ' of ' || (SELECT count(*) FROM eventsource.events)
       || ' events, ' || count(*) || ' rows'
  FROM received_grouped;

INSERT INTO checks
SELECT 'no rolled-back event was committed', count(*) = 0, count(*) || ' committed'
  FROM eventsource.events WHERE event_type = 'RolledBack';

INSERT INTO checks
SELECT 'every subscription member is caught up and holds no lease',
       count(*) FILTER (WHERE events_behind > 0 OR leased) = 0,
       count(*) FILTER (WHERE events_behind > 0 OR leased) || ' behind or leased'
  FROM eventsource.subscription_status;

-- The kills: the batch a process held (recorded, not committed) is the next batch delivered after
-- its restart, at once if its poll was part of the batch's transaction, after the lease if not.
CREATE TEMP VIEW kill_outcomes AS
SELECT k.process, k.kind, held.got AS held_got, held.first_position AS held_first, held.polled_at AS held_at,
       next.got AS next_got, next.first_position AS next_first, next.polled_at AS next_at,
       (SELECT count(*) FROM deliveries d WHERE d.process = k.process AND d.line_no > k.log_lines
                                            AND d.line_no < next.line_no AND d.got = 0) AS empty_polls_before
  FROM kills k
  LEFT JOIN LATERAL (SELECT * FROM deliveries d WHERE d.process = k.process AND d.line_no <= k.log_lines AND d.got > 0
                      ORDER BY d.line_no DESC LIMIT 1) AS held ON true
  LEFT JOIN LATERAL (SELECT * FROM deliveries d WHERE d.process = k.process AND d.line_no > k.log_lines AND d.got > 0
                      ORDER BY d.line_no LIMIT 1) AS next ON true;

INSERT INTO checks
SELECT format('%s, killed holding a recorded, uncommitted batch of %s events, got it again after restarting',
              process, held_got),
       coalesce(next_first = held_first, false), format('held from position %s, next from %s', held_first, next_first)
  FROM kill_outcomes WHERE kind IN ('hold', 'lease');

-- Its poll was rolled back with the batch, lease and all: no 30 s lease to wait for.
INSERT INTO checks
SELECT format('%s: the batch came again as soon as it restarted (%s s after it was polled)',
              process, round(next_at - held_at, 1)),
       coalesce(next_at < held_at + 10, false), format('polled at %s, again at %s', held_at, next_at)
  FROM kill_outcomes WHERE kind = 'hold';

INSERT INTO checks
SELECT format('%s: the batch came again only when its %s s lease ran out (%s s after it was polled; %s empty polls before)',
              process, :lease, round(next_at - held_at, 1), empty_polls_before),
       coalesce(next_at >= held_at + :lease - 0.2 AND next_at < held_at + :lease + 10 AND empty_polls_before > 0, false),
       format('polled at %s, again at %s', held_at, next_at)
  FROM kill_outcomes WHERE kind = 'lease';

INSERT INTO checks
SELECT 'no subscriber reported an error', :'errors' = '', :'errors';

SELECT CASE WHEN passed THEN 'ok - ' ELSE 'not ok - ' END || name || CASE WHEN passed THEN '' ELSE ' (' || detail || ')' END
  FROM checks ORDER BY name;

SELECT format('# %s: %s batches polled (%s events), %s recorded; %s batches redelivered (%s events polled more than once)',
              m.label, count(d.*) FILTER (WHERE d.got > 0), coalesce(sum(d.got), 0),
              (SELECT count(*) FROM received r WHERE (r.subscriber, r.member) = (m.subscriber, m.member)),
              count(d.*) FILTER (WHERE d.got > 0 AND EXISTS (SELECT FROM deliveries e WHERE e.process = d.process
                                   AND e.line_no < d.line_no AND e.got > 0 AND e.first_position = d.first_position)),
              coalesce(sum(d.got), 0) - (SELECT count(*) FROM received r WHERE (r.subscriber, r.member) = (m.subscriber, m.member)))
  FROM members m LEFT JOIN deliveries d ON d.process = m.subscriber || '/' || m.member
 GROUP BY m.subscriber, m.member, m.label ORDER BY m.label;
SELECT '# the log order itself puts ' || count(*) FILTER (WHERE stream_version < previous)
       || ' events before a lower version of their stream'
  FROM (SELECT stream_version, lag(stream_version) OVER (PARTITION BY stream_id ORDER BY transaction_id, global_position) AS previous
          FROM eventsource.events) AS log;
SELECT format('# %s killed at random: %s', process,
              CASE WHEN next_first = held_first THEN 'while it held a batch, which came again after its restart'
                   ELSE 'while it held no batch it had polled' END)
  FROM kill_outcomes WHERE kind = 'random';
SELECT 'stress_bus: ' || count(*) FILTER (WHERE passed) || ' passed, ' || count(*) FILTER (WHERE NOT passed) || ' failed'
  FROM checks;
SQL
)
echo "$results" | grep -v '^stress_bus: '
echo "# the listening subscribers got $notifications notifications"
echo "$results" | grep '^stress_bus: '
[[ "$results" == *" 0 failed" ]] || exit 1
passed=yes
dropdb "$db"
