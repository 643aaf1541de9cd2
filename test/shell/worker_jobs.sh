#!/usr/bin/env bash
# worker_jobs.sh: the per-database worker's jobs (notifications, async projections, scavenge), on a
# cluster of its own.
# 1. A failure in a projection's work is that projection's failure, also after its handler returned:
#    in a database whose transactions are SERIALIZABLE (and eventsource.async_projection_slice = 1s,
#    by a reload, so that one transaction handles several events), a handler's write skew with a
#    session that commits while the handler sleeps fails the worker's transaction after the handler (40001, when
#    it records its progress or commits). The transaction of several events that fails is tried again
#    one event per transaction: the events before and after the culprit are projected once each, and
#    the culprit, failing again each time, becomes a dead letter after max_attempts, each failure
#    logged naming it. Another async projection of the same events projects them meanwhile, and the
#    worker keeps its pid and never exits. A handler writing a table with a DEFERRABLE INITIALLY
#    DEFERRED constraint fails at once (42501: no deferred trigger in a security-restricted
#    operation), a failure of its projection like any other.
# 2. The worker's transactions follow worker_spi's rules: in a handler called after the worker sat
#    idle, and in each call of a handler that takes 0.3 s, now() is under 200 ms old (a transaction
#    of its own per slice, with a fresh statement start), and pg_stat_activity shows the worker
#    active, running the projection.
# 3. Notifications keep flowing while the worker has other work: the p99 latency from an append
#    (200 a second, bench/workloads/append_timed.pgbench) to a LISTEN subscriber having read it
#    (bench/latency_subscriber.py) stays under 200 ms while an async projection with a 5 ms-per-event
#    handler catches up with 1,500 events, and while scavenge removes 600,000 events; sampled every
#    few milliseconds meanwhile, no transaction of the worker is older than 250 ms (the bound on the
#    visibility horizon it can hold), and pg_stat_activity shows its scavenge transactions active;
#    with eventsource.scavenge_slice = 1s (a reload), scavenge's batches grow past 250 ms, and back
#    to 10 ms (a reload) they shrink at once: none started from 1.1 s after the reload lasts 100 ms.
# 4. Each job has its own settings (their defaults, units and ranges in pg_settings):
#    eventsource.notify = off stops the notifications only (async projections go on, the worker
#    keeps running), eventsource.async_projections = off the async projections only,
#    eventsource.scavenge = off the scavenge only (with scavenge_interval 1 s); with all three off
#    the worker stops, and one on again starts it.
# Binaries from EVENTSOURCE_PG_BIN (default the system's 15); port EVENTSOURCE_WORKER_JOBS_PORT
# (default PGPORT + 26).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
run_as_postgres "$@"
bin=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
port=${EVENTSOURCE_WORKER_JOBS_PORT:-$((${PGPORT:-5432} + 26))}
repository=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
cleanup() { "$bin/pg_ctl" -D "$work/data" -m immediate stop > /dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

start_worker_cluster es_jobs
db=es_jobs
psql_db() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
# wait_for QUERY [SECONDS]: until QUERY returns t (20 s by default); fails when it does not.
wait_for() {
  for _ in $(seq $((${2:-20} * 10))); do [ "$(psql_db -c "$1")" = t ] && return 0; sleep 0.1; done
  return 1
}
# worker_pid [DB]: the pid of the database's worker, once it runs (waits up to 20 s).
worker_pid() { worker_pid_of "${1:-$db}" psql_db; }
exits() { worker_exits "$work/server.log"; }

"$bin/createdb" "$db"
psql_db -f "$here/lib/counter.sql" > /dev/null
psql_db > /dev/null <<'SQL'
CREATE TABLE model.parents (id int PRIMARY KEY);
CREATE TABLE model.children (n int PRIMARY KEY, parent int REFERENCES model.parents DEFERRABLE INITIALLY DEFERRED);
CREATE FUNCTION model.add_child(e eventsource.event) RETURNS void LANGUAGE sql AS
  $$INSERT INTO model.children VALUES ((e.data ->> 'n')::int, (e.data ->> 'parent')::int)$$;
SELECT eventsource.create_projection('children', 'model.add_child(eventsource.event)', category => 'family',
                                     mode => 'async', on_failure => 'dead_letter', max_attempts => 1);
SQL
pid=$(worker_pid)
check "the worker runs" "$([ -n "$pid" ] && echo running)" running

# 1. SERIALIZABLE, in a database of its own (the worker reads the setting when it connects).
ssi=es_jobs_serializable
psql_ssi() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$ssi" "$@"; }
"$bin/createdb" "$ssi"
psql_ssi -c "ALTER DATABASE $ssi SET default_transaction_isolation = 'serializable'" \
         -c "ALTER SYSTEM SET eventsource.worker_databases = 'es_jobs, $ssi'" -c "SELECT pg_reload_conf()" > /dev/null
psql_ssi > /dev/null <<'SQL'
CREATE EXTENSION eventsource;
CREATE SCHEMA model;
CREATE TABLE model.read_by_handler (n int);
CREATE TABLE model.written_by_handler (n int);
CREATE TABLE model.projected (n int PRIMARY KEY);
CREATE FUNCTION model.skew(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count(*) FROM model.read_by_handler;
    INSERT INTO model.written_by_handler VALUES ((e.data ->> 'n')::int);
    INSERT INTO model.projected VALUES ((e.data ->> 'n')::int);
    IF e.data ? 'sleep' THEN
        PERFORM pg_sleep((e.data ->> 'sleep')::float8);
    END IF;
END
$$;
CREATE TABLE model.counted (n int PRIMARY KEY);
CREATE FUNCTION model.count_event(e eventsource.event) RETURNS void LANGUAGE sql AS
  $$INSERT INTO model.counted VALUES ((e.data ->> 'n')::int)$$;
SELECT eventsource.create_projection('skew', 'model.skew(eventsource.event)', category => 'skew', mode => 'async',
                                     on_failure => 'dead_letter', max_attempts => 2);
SELECT eventsource.create_projection('counter', 'model.count_event(eventsource.event)', category => 'skew',
                                     mode => 'async');
SQL
ssi_pid=$(worker_pid "$ssi")
check "a second database gets a worker" "$([ -n "$ssi_pid" ] && echo running)" running
check "whose transactions are SERIALIZABLE" \
  "$(psql_ssi -c "SELECT setting FROM pg_settings WHERE name = 'default_transaction_isolation'")" serializable
# conflict.sql (psql variable previous: a transaction id): waits until the worker sleeps in the
# handler in a transaction other than previous, then, in a SERIALIZABLE transaction that starts
# then, reads what the handler writes and writes what it read, and commits first; prints the
# transaction id of the worker's it met.
cat > "$work/conflict.sql" <<'SQL'
SELECT pg_catalog.set_config('conflict.previous', :'previous', false) \gset
DO $$
BEGIN
    FOR i IN 1..1000 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN EXISTS (SELECT FROM pg_stat_activity
                           WHERE backend_type = 'eventsource notifier' AND datname = current_database()
                             AND wait_event = 'PgSleep'
                             AND backend_xid::text IS DISTINCT FROM current_setting('conflict.previous'));
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;
SELECT backend_xid FROM pg_stat_activity WHERE backend_type = 'eventsource notifier' AND datname = current_database();
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) FROM model.written_by_handler \gset
INSERT INTO model.read_by_handler VALUES (1);
COMMIT;
SQL
conflicts() { # conflicts N: N conflicting transactions in a row, each against a new worker transaction.
  local previous=none
  for _ in $(seq "$1"); do
    previous=$("$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$ssi" -v previous="$previous" -f "$work/conflict.sql" | head -1) || true
  done
}
# With slices of a second (eventsource.async_projection_slice, by a reload), the five events are
# handled in one transaction, which fails at the fourth (its handler's first write once the
# conflicting transaction has committed).
psql_ssi -c "ALTER SYSTEM SET eventsource.async_projection_slice = '1s'" -c "SELECT pg_reload_conf()" > /dev/null || true
sleep 1
conflicts 3 > /dev/null &
conflicting=$!
psql_ssi -c "BEGIN ISOLATION LEVEL READ COMMITTED" -c "SELECT eventsource.append_events('skew-1', (SELECT jsonb_agg(jsonb_build_object('type', 'Skewed',
               'data', CASE n WHEN 3 THEN jsonb_build_object('n', n, 'sleep', 0.5) ELSE jsonb_build_object('n', n) END)
               ORDER BY n) FROM generate_series(1, 5) AS n))" -c COMMIT > /dev/null
third=$(psql_ssi -c "SELECT global_position FROM eventsource.events WHERE stream_id = 'skew-1' AND stream_version = 3")
wait_for "SELECT count(*) = 5 FROM model.counted" 3 || true
check "another async projection of the events projects them while the first one's fail" \
  "$(psql_ssi -c "SELECT count(*) FROM model.counted")" 5
wait "$conflicting" || true
wait_for "SELECT events_behind = 0 FROM eventsource.projection_status WHERE name = 'skew'" || true
check "a transaction that fails after its handlers returned (40001) is that projection's failure: the event it failed on, again and again, becomes a dead letter after max_attempts" \
  "$(psql_ssi -c "SELECT global_position = $third, attempts, error LIKE 'could not serialize access%'
                   FROM eventsource.projection_dead_letters WHERE projection_name = 'skew'")" "t|2|t"
check "the events before and after it are projected, each once" \
  "$(psql_ssi -c "SELECT string_agg(n::text, ',' ORDER BY n) FROM model.projected")" 1,2,4,5
check "projection_status shows it running, caught up, with its dead letter" \
  "$(psql_ssi -c "SELECT status, events_processed, events_behind, attempts, dead_letters FROM eventsource.projection_status WHERE name = 'skew'")" \
  "running|4|0|0|1"
{ grep -o 'projection "skew" failed.*' "$work/server.log" || true; } | sed 's/^/# /'
check "the failed transaction of several events is logged, and tried again one event per transaction" \
  "$(grep -c 'projection "skew" failed in a transaction of 4 events: could not serialize access' "$work/server.log" || true)" 1
check "each failure of the culprit is logged, naming it" \
  "$(grep -c "projection \"skew\" failed on the event at global position $third (attempt [12] of 2): could not serialize access" "$work/server.log" || true)" 2
psql_ssi -c "ALTER SYSTEM RESET eventsource.async_projection_slice" -c "SELECT pg_reload_conf()" > /dev/null || true
check "the worker kept its pid" "$(worker_pid "$ssi")" "$ssi_pid"
check "and never exited" "$(exits)" 0

# A deferred constraint: refused in the handler, a failure of its projection.
psql_db -c "SELECT eventsource.append_events('family-1', (SELECT jsonb_agg(jsonb_build_object('type', 'Born',
              'data', jsonb_build_object('n', n, 'parent', 1)) ORDER BY n) FROM generate_series(1, 2) AS n))" > /dev/null
wait_for "SELECT events_behind = 0 FROM eventsource.projection_status WHERE name = 'children'" || true
check "a handler whose write defers a constraint fails (42501), each event a dead letter of its projection" \
  "$(psql_db -c "SELECT string_agg(error, ',') FROM eventsource.projection_dead_letters WHERE projection_name = 'children'")" \
  "cannot fire deferred trigger within security-restricted operation,cannot fire deferred trigger within security-restricted operation"
check "while the other projection projects the events" "$(psql_db -c "SELECT string_agg(n::text, ',' ORDER BY n) FROM model.counted")" 1,2
check "and the worker keeps its pid" "$(worker_pid)" "$pid"

# 2. now() and pg_stat_activity in the worker's transactions.
psql_db > /dev/null <<'SQL'
CREATE TABLE model.observed (n int PRIMARY KEY, staleness_ms float8, state text, query text);
CREATE FUNCTION model.observe(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO model.observed
    SELECT (e.data ->> 'n')::int, extract(epoch FROM clock_timestamp() - now()) * 1000, a.state, a.query
      FROM pg_stat_activity a WHERE a.pid = pg_backend_pid();
    PERFORM pg_sleep(0.3);
END
$$;
SELECT eventsource.create_projection('observer', 'model.observe(eventsource.event)', category => 'watch', mode => 'async');
SQL
sleep 2
psql_db -c "SELECT eventsource.append_events('watch-1', (SELECT jsonb_agg(jsonb_build_object('type', 'Seen',
              'data', jsonb_build_object('n', n)) ORDER BY n) FROM generate_series(1, 4) AS n))" > /dev/null
wait_for "SELECT count(*) = 4 FROM model.observed" || true
check "now() in the worker's transactions is fresh: under 200 ms old at each of four 0.3 s handler calls" \
  "$(psql_db -c "SELECT count(*) FILTER (WHERE staleness_ms < 200) FROM model.observed")" 4
check "pg_stat_activity shows the worker active, running the projection" \
  "$(psql_db -c "SELECT count(*) FILTER (WHERE state = 'active' AND query LIKE '%async projection \"observer\"%') FROM model.observed")" 4
psql_db -c "SELECT eventsource.drop_projection('observer')" > /dev/null

# 3. Notification latency while the worker has other work.
# latency_under_load NAME: timed appends at 200 a second for 4 s while the subscriber reads them and
# a sampler watches the worker's transactions; sets p99 and worst (ms), oldest (ms: the oldest
# transaction of the worker seen, but when it waited for the disk: a commit's flush that a slow
# machine's disk holds up for a second, as CI's once did, is shown, not counted) and scavenging
# (samples showing it active in scavenge).
latency_under_load() {
  rm -f "$work/ready" "$work/result" "$work/sampled"
  /usr/bin/python3 "$repository/bench/latency_subscriber.py" --dsn "dbname=$db" --timed-prefix "lat-$1-" \
    --ready "$work/ready" --result "$work/result" &
  local subscriber=$!
  until [ -s "$work/ready" ]; do sleep 0.05; done
  psql_db > /dev/null 2> "$work/sampled" <<SQL &
DO \$\$
DECLARE
    oldest float8 := 0;
    oldest_activity text := '';
    oldest_on_disk float8 := 0;
    disk_wait text := '';
    scavenging int := 0;
    sample record;
    started timestamptz := clock_timestamp();
BEGIN
    WHILE clock_timestamp() < started + interval '4.5 seconds' LOOP
        COMMIT;   -- no snapshot held across samples, which would keep what scavenge deletes from being pruned
        SELECT extract(epoch FROM clock_timestamp() - a.xact_start) * 1000 AS age, a.query,
               a.state = 'active' AND a.query LIKE '%scavenge%' AS scavenging,
               a.wait_event_type = 'IO' OR a.wait_event = 'WALWrite' AS on_disk, a.wait_event
          INTO sample FROM pg_stat_activity a
         WHERE a.backend_type = 'eventsource notifier' AND a.datname = current_database();
        IF sample.on_disk THEN
            IF sample.age > oldest_on_disk THEN
                oldest_on_disk := sample.age;
                disk_wait := sample.wait_event;
            END IF;
        ELSIF sample.age > oldest THEN
            oldest := sample.age;
            oldest_activity := sample.query;
        END IF;
        scavenging := scavenging + coalesce(sample.scavenging, false)::int;
        PERFORM pg_sleep(0.005);
    END LOOP;
    RAISE NOTICE 'sampled % % (%)%', round(oldest), scavenging, oldest_activity,
        CASE WHEN oldest_on_disk > oldest
             THEN format('; older, %s ms, while it waited for the disk (%s)', round(oldest_on_disk), disk_wait) END;
END
\$\$;
SQL
  local sampler=$!
  "$bin/pgbench" -n -M prepared -c 2 -j 2 -T 4 --rate=200 -D run="$1" \
    -f "$repository/bench/workloads/append_timed.pgbench" "$db" > "$work/pgbench.out" 2>&1
  kill -TERM "$subscriber"
  wait "$subscriber"
  wait "$sampler" || true
  read -r _ _ p99 worst _ < "$work/result"
  read -r oldest scavenging < <(sed -n 's/.*sampled \([0-9]*\) \([0-9]*\).*/\1 \2/p' "$work/sampled")
  echo "# $1: p99 $p99 ms, max $worst ms; the worker's oldest transaction $oldest ms$(sed -n 's/.*sampled [0-9]* [0-9]* / /p' "$work/sampled")"
}
below() { awk -v v="$1" -v limit="$2" 'BEGIN {print (v != "NULL" && v + 0 < limit) ? "below" : v}'; }

psql_db > /dev/null <<'SQL'
CREATE FUNCTION model.slow(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT pg_sleep(0.005)';
SELECT eventsource.append_events('backlog-1', (SELECT jsonb_agg(jsonb_build_object('type', 'Queued', 'data', '{}'::jsonb))
                                               FROM generate_series(1, 1500)));
SELECT eventsource.create_projection('slow', 'model.slow(eventsource.event)', category => 'backlog', mode => 'async');
SQL
latency_under_load catch-up
check "while a 5 ms-per-event async projection catches up, notifications stay prompt: p99 under 200 ms" "$(below "$p99" 200)" below
check "the worker's transactions stay short meanwhile: none seen older than 250 ms" "$(below "$oldest" 250)" below
check "the projection was still catching up at the end" \
  "$(psql_db -c "SELECT events_behind > 0 FROM eventsource.projection_status WHERE name = 'slow'")" t
psql_db -c "SELECT eventsource.drop_projection('slow')" > /dev/null

psql_db > /dev/null <<'SQL'
SELECT count(*) FROM (SELECT eventsource.append_events('junk-' || s, (SELECT jsonb_agg(jsonb_build_object('type', 'Junk', 'data', '{}'::jsonb))
                                                                      FROM generate_series(1, 1000)))
                        FROM generate_series(1, 600) AS s) AS appended;
SELECT count(*) FROM (SELECT eventsource.set_stream_metadata('junk-' || s, '{"max_count": 1}') FROM generate_series(1, 600) AS s) AS set;
SQL
# The notifier announces a backlog 1,000 events a round: let it get through these first.
wait_for "SELECT last_checkpoint::text = (SELECT eventsource.checkpoint(transaction_id, global_position)::text FROM eventsource.events
                                          ORDER BY transaction_id DESC, global_position DESC LIMIT 1)
            FROM eventsource.notifier_status() WHERE database_name = current_database()" || true
psql_db -c "ALTER SYSTEM SET eventsource.scavenge_interval = 1" -c "SELECT pg_reload_conf()" > /dev/null
wait_for "SELECT events_scavenged > 0 FROM eventsource.statistics()" || true
latency_under_load scavenge
check "while scavenge removes 600,000 events, notifications stay prompt: p99 under 200 ms" "$(below "$p99" 200)" below
check "the worker's transactions stay short meanwhile: none seen older than 250 ms" "$(below "$oldest" 250)" below
check "pg_stat_activity shows the worker active in its scavenge transactions" "$([ "${scavenging:-0}" -gt 0 ] && echo seen)" seen
check "scavenge was still under way at the end" "$(psql_db -c "SELECT events_scavenged < 599400 FROM eventsource.statistics()")" t
# eventsource.scavenge_slice = 1s, by a reload: the batches of the pass under way grow to take about
# half a second each, so a scavenge transaction older than 250 ms shows.
psql_db -c "ALTER SYSTEM SET eventsource.scavenge_slice = '1s'" -c "SELECT pg_reload_conf()" > /dev/null || true
echo "# left to scavenge at the reload: $(psql_db -c "SELECT 599400 - events_scavenged FROM eventsource.statistics()")"
# longest_scavenge_transaction: within 20 s, the age in ms of the worker's first scavenge transaction
# seen older than 250 ms, sampled every 5 ms, or 0 when none.
longest_scavenge_transaction() {
  psql_db 2>&1 <<'SQL' | sed -n 's/.*NOTICE:  oldest \([0-9]*\).*/\1/p'
DO $$
DECLARE
    started timestamptz := clock_timestamp();
    age float8 := 0;
BEGIN
    WHILE clock_timestamp() < started + interval '20 seconds' AND age <= 250 LOOP
        COMMIT;
        SELECT coalesce(max(extract(epoch FROM clock_timestamp() - a.xact_start) * 1000), 0) INTO age
          FROM pg_stat_activity a
         WHERE a.backend_type = 'eventsource notifier' AND a.datname = current_database()
           AND a.state = 'active' AND a.query LIKE '%scavenge%';
        PERFORM pg_sleep(0.005);
    END LOOP;
    RAISE NOTICE 'oldest %', ceil(CASE WHEN age > 250 THEN age ELSE 0 END);
END
$$;
SQL
}
longest=$(longest_scavenge_transaction)
echo "# a scavenge transaction seen $longest ms old"
check "with eventsource.scavenge_slice = 1s, scavenge transactions last longer than 250 ms" \
  "$([ "${longest:-0}" -gt 250 ] && echo longer)" longer
# Back to 10 ms by a reload: the slice under way ends by its 1 s deadline, and from then on each
# batch is sized for the new slice at once (not halved batch by batch from half a second): sampled
# every 2 ms from 1.1 s after the reload to 3 s after it, no scavenge transaction started in that
# time lasts 100 ms, while some are seen.
reloaded_at=$(psql_db -c "ALTER SYSTEM RESET eventsource.scavenge_slice" -c "SELECT pg_reload_conf()" -c "SELECT clock_timestamp()" | tail -1) || true
read -r after_reload seen_after_reload < <(psql_db 2>&1 <<SQL | sed -n 's/.*NOTICE:  after reload \([0-9]*\) \([0-9]*\).*/\1 \2/p'
DO \$\$
DECLARE
    sized_from timestamptz := '$reloaded_at'::timestamptz + interval '1.1 seconds';
    oldest float8 := 0;
    seen int := 0;
    sample record;
BEGIN
    WHILE clock_timestamp() < '$reloaded_at'::timestamptz + interval '3 seconds' LOOP
        COMMIT;
        SELECT extract(epoch FROM clock_timestamp() - a.xact_start) * 1000 AS age, a.xact_start >= sized_from AS sized
          INTO sample FROM pg_stat_activity a
         WHERE a.backend_type = 'eventsource notifier' AND a.datname = current_database()
           AND a.state = 'active' AND a.query LIKE '%scavenge%';
        IF sample.sized THEN
            oldest := greatest(oldest, sample.age);
            seen := seen + 1;
        END IF;
        PERFORM pg_sleep(0.002);
    END LOOP;
    RAISE NOTICE 'after reload % %', round(oldest), seen;
END
\$\$;
SQL
)
echo "# scavenge transactions started 1.1-3 s after the reload to 10 ms: $seen_after_reload seen, the oldest $after_reload ms"
check "scavenge goes on after eventsource.scavenge_slice is reloaded back to 10ms" "$([ "${seen_after_reload:-0}" -gt 0 ] && echo seen)" seen
check "and its transactions are sized for the new slice at once: none lasts 100 ms" "$(below "${after_reload:-NULL}" 100)" below
wait_for "SELECT events_scavenged = 599400 FROM eventsource.statistics()" 90 || true
check "and removes every hidden event in the end" "$(psql_db -c "SELECT count(*) FROM eventsource.events WHERE stream_id LIKE 'junk-%'")" 600

# 4. One setting per job.
check "each job's switch and pacing settings: defaults, units, ranges, reloadable" \
  "$(psql_db -c "SELECT string_agg(concat_ws(' ', name, boot_val, unit, min_val, max_val, context), ', ' ORDER BY name) FROM pg_settings
                 WHERE name IN ('eventsource.notify', 'eventsource.notify_max_delay', 'eventsource.async_projections',
                                'eventsource.async_projection_slice', 'eventsource.scavenge', 'eventsource.scavenge_interval',
                                'eventsource.scavenge_slice')")" \
  "eventsource.async_projection_slice 10 ms 1 1000 sighup, eventsource.async_projections on sighup, eventsource.notify on sighup, eventsource.notify_max_delay 50 ms 1 10000 sighup, eventsource.scavenge on sighup, eventsource.scavenge_interval 60 s 0 2147483 sighup, eventsource.scavenge_slice 10 ms 1 1000 sighup"
listen() { /usr/bin/python3 "$here/bus/listen.py" --dbname "$db" --channel eventsource --count 1 --timeout "$1"; }
# heard_after_append SECONDS STREAM: listens, appends to STREAM, prints how many notifications came within SECONDS.
heard_after_append() {
  listen "$1" > "$work/heard" &
  local listener=$!
  for _ in $(seq 100); do grep -q ready "$work/heard" && break; sleep 0.05; done
  psql_db -c "SELECT eventsource.append('$2', 'Born', jsonb_build_object('n', $3, 'parent', 1))" > /dev/null
  wait "$listener"
  grep -c '^eventsource ' "$work/heard" || true
}
counted() { psql_db -c "SELECT count(*) FROM model.counted"; }
psql_db -c "ALTER SYSTEM SET eventsource.notify = off" -c "SELECT pg_reload_conf()" > /dev/null || true
sleep 1
check "with eventsource.notify = off, an append is not announced" "$(heard_after_append 1.5 family-3 9)" 0
wait_for "SELECT count(*) = 1 FROM model.counted WHERE n = 9" 10 || true
check "but async projections go on" "$(psql_db -c "SELECT count(*) FROM model.counted WHERE n = 9")" 1
check "and the worker keeps running" "$(worker_pid)" "$pid"
psql_db -c "ALTER SYSTEM RESET eventsource.notify" -c "ALTER SYSTEM SET eventsource.async_projections = off" \
        -c "SELECT pg_reload_conf()" > /dev/null || true
sleep 1
before=$(counted)
check "with eventsource.async_projections = off, appends are announced" "$(heard_after_append 5 family-3 10)" 1
sleep 1
check "but not projected" "$(counted)" "$before"
psql_db -c "ALTER SYSTEM RESET eventsource.async_projections" -c "SELECT pg_reload_conf()" > /dev/null || true
wait_for "SELECT count(*) = 1 FROM model.counted WHERE n = 10" 10 || true
check "on again, they catch up" "$(psql_db -c "SELECT count(*) FROM model.counted WHERE n = 10")" 1
# eventsource.scavenge = off stops the scavenge job only, eventsource.scavenge_interval (1 s here) as it is.
stored() { psql_db -c "SELECT count(*) FROM eventsource.events WHERE stream_id = 'spare-1'"; }
psql_db -c "ALTER SYSTEM SET eventsource.scavenge = off" -c "SELECT pg_reload_conf()" > /dev/null || true
sleep 1
psql_db -c "SELECT eventsource.append_events('spare-1', (SELECT jsonb_agg(jsonb_build_object('type', 'Spare', 'data', '{}'::jsonb))
                                              FROM generate_series(1, 10)))" \
        -c "SELECT eventsource.set_stream_metadata('spare-1', '{\"max_count\": 1}')" > /dev/null
sleep 3
check "with eventsource.scavenge = off, the worker removes no hidden event" "$(stored)" 10
check "but announces appends" "$(heard_after_append 5 family-3 11)" 1
psql_db -c "ALTER SYSTEM RESET eventsource.scavenge" -c "SELECT pg_reload_conf()" > /dev/null || true
wait_for "SELECT count(*) = 1 FROM eventsource.events WHERE stream_id = 'spare-1'" 10 || true
check "on again, it removes them" "$(stored)" 1
check "the worker kept its pid throughout" "$(worker_pid)" "$pid"
check "and never exited" "$(exits)" 0
# eventsource.scavenge = off is one of the three switches: with all three off the worker stops.
psql_db -c "ALTER SYSTEM SET eventsource.notify = off" -c "ALTER SYSTEM SET eventsource.async_projections = off" \
        -c "ALTER SYSTEM SET eventsource.scavenge = off" -c "SELECT pg_reload_conf()" > /dev/null || true
check "with eventsource.notify, async_projections and scavenge off, the worker stops" \
  "$(output_within 20 psql_db -c "SELECT 'stopped' WHERE NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'eventsource notifier' AND datname = '$db')")" stopped
psql_db -c "ALTER SYSTEM RESET eventsource.scavenge" -c "SELECT pg_reload_conf()" > /dev/null || true
check "scavenge on again, it runs again" "$([ -n "$(worker_pid)" ] && echo running)" running

finish worker_jobs
