#!/usr/bin/env bash
# crash_restart.sh: durability, on a cluster of its own (fsync on, eventsource preloaded).
# Crash: several clients append (single events and append_events batches, with event ids of their
# own) to a few dozen streams, and a consumer polls and acks a subscription, while the postmaster
# is killed with SIGKILL; after the restart every append a client saw succeed is in the log with
# the version (and positions) it was told, no batch is half there, stream versions are 1..n with no
# gaps or duplicates and match eventsource.streams, the inline projection matches the log, the
# subscription's checkpoint is not behind its last acknowledgement, and appends, reads and the
# global position counter work again. One round per fault in CRASH_FAULTS (by default: the
# postmaster, one backend in the middle of an append, the notifier and the postmaster again; a
# backend or the notifier killed with SIGKILL makes the postmaster reset every backend and recover).
# Restart: a subscription's checkpoint, an inline and an async projection survive a clean restart;
# poll continues after the checkpoint, the inline projection still projects and the async one
# catches up to the same read model.
# Starts its cluster with pg_virtualenv on a port of its own, next to test/run's cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ -z "${EVENTSOURCE_CRASH_CLUSTER:-}" ]; then
  EVENTSOURCE_CRASH_CLUSTER=1 exec pg_virtualenv -t -c "-p $((${PGPORT:-5432} + 13))" -v 15 \
    -o fsync=on -o shared_preload_libraries=eventsource -o eventsource.worker_databases=es_crash "$0"
fi

db=es_crash
faults_to_inject=${CRASH_FAULTS:-postmaster backend notifier postmaster}
load_seconds=${CRASH_LOAD_SECONDS:-3}
writers=${CRASH_WRITERS:-4}
source "$here/lib/check.sh"
client() { /usr/bin/python3 "$here/crash/client.py" --dbname "$db" "$@"; }
work=$(mktemp -d)
client_pids=()
cleanup() {
  for pid in "${client_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

createdb "$db"
psql_db <<'SQL'
CREATE EXTENSION eventsource;
CREATE SCHEMA crash;
-- What the clients saw: every call tried (with its event ids) and every call that returned.
CREATE TABLE crash.tried (batch text PRIMARY KEY, stream_id text NOT NULL, ids uuid[] NOT NULL);
CREATE TABLE crash.acked (batch text PRIMARY KEY, stream_id text NOT NULL, version bigint NOT NULL,
                          positions bigint[], ids uuid[] NOT NULL);
-- The read models: events and last version per stream, inline and async.
CREATE TABLE crash.inline_counts (stream_id text PRIMARY KEY, events bigint NOT NULL, last_version bigint NOT NULL);
CREATE TABLE crash.async_counts (stream_id text PRIMARY KEY, events bigint NOT NULL, last_version bigint NOT NULL);
CREATE FUNCTION crash.count_inline(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO crash.inline_counts AS c VALUES (e.stream_id, 1, e.stream_version)
    ON CONFLICT (stream_id) DO UPDATE SET events = c.events + 1, last_version = greatest(c.last_version, excluded.last_version);
END $$;
CREATE FUNCTION crash.count_async(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO crash.async_counts AS c VALUES (e.stream_id, 1, e.stream_version)
    ON CONFLICT (stream_id) DO UPDATE SET events = c.events + 1, last_version = greatest(c.last_version, excluded.last_version);
END $$;
CREATE FUNCTION crash.reset_inline() RETURNS void LANGUAGE sql AS 'TRUNCATE crash.inline_counts';
CREATE FUNCTION crash.reset_async() RETURNS void LANGUAGE sql AS 'TRUNCATE crash.async_counts';
SELECT eventsource.create_projection('crash-inline', 'crash.count_inline(eventsource.event)',
                                     category => 'crash', reset_handler => 'crash.reset_inline()');
SELECT eventsource.create_projection('crash-async', 'crash.count_async(eventsource.event)',
                                     category => 'crash', mode => 'async', reset_handler => 'crash.reset_async()');
SELECT eventsource.create_subscription('crash-sub', category => 'crash');
SQL
check "the notifier serves the database (it runs the async projection)" "$(notifier_serves "$db")" t
data_directory=$(realpath "$(psql_db -c "SHOW data_directory")")

# cluster_processes: the pids of processes of this cluster (their working directory is its data
# directory), postmaster or not.
cluster_processes() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/cwd" 2>/dev/null)" = "$data_directory" ] && echo "${p#/proc/}"
  done
  return 0
}

# kill_target FAULT: kills (SIGKILL) the process FAULT names; prints its pid.  A writer's backend
# is idle between its appends, so the backend is looked for until one is in an append (at most 10 s).
kill_target() {
  local pid=
  case $1 in
    postmaster) pid=$(head -1 "$data_directory/postmaster.pid") ;;
    backend)
      for _ in $(seq 1000); do
        pid=$(psql_db -c "SELECT pid FROM pg_stat_activity WHERE datname = '$db' AND state = 'active'
                            AND query LIKE '%eventsource.append%' AND pid <> pg_backend_pid() LIMIT 1")
        [ -n "$pid" ] && break
        sleep 0.01
      done ;;
    notifier) pid=$(psql_db -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'eventsource notifier'") ;;
  esac
  [ -n "$pid" ] && kill -9 "$pid"
  echo "${pid:-none}"
}

faults=0
acked_total=0
round=0
for fault in $faults_to_inject; do
  round=$((round + 1))
  # The load: writers and a consumer, until the server is killed under them.
  client_pids=()
  appended_before=$(psql_db -c "SELECT count(*) FROM eventsource.events")
  for w in $(seq "$writers"); do
    client --mode writer --name "r$round-w$w" --out "$work/writer-$round-$w.log" &
    client_pids+=($!)
  done
  client --mode consumer --name "r$round-c" --out "$work/consumer-$round.log" &
  client_pids+=($!)
  sleep "$load_seconds"
  # On a loaded machine the clients may take longer to start: the fault comes once they append
  # (at most 60 s more).
  for _ in $(seq 600); do
    [ "$(psql_db -c "SELECT count(*) > $appended_before FROM eventsource.events")" = t ] && break
    sleep 0.1
  done
  postmaster=$(head -1 "$data_directory/postmaster.pid")
  victim=$(kill_target "$fault")
  check "round $round: a $fault process was killed" "$([ "$victim" != none ] && echo killed)" killed
  faults=$((faults + 1))
  # The clients fail once their backends notice the postmaster is gone, or are terminated by its
  # reset after a child's crash.
  stuck=0
  for pid in "${client_pids[@]}"; do
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then stuck=$((stuck + 1)); kill "$pid" 2>/dev/null || true; fi
    wait "$pid" || true
  done
  client_pids=()
  check "round $round: every client fails within 20 s of the $fault's SIGKILL" "$stuck" 0
  if [ "$fault" = postmaster ]; then
    # (The postmaster itself counts until it is reaped: as a zombie it still holds its lock files.)
    for _ in $(seq 200); do [ -z "$(cluster_processes)" ] && [ ! -e "/proc/$postmaster" ] && break; sleep 0.1; done
    left=$({ cluster_processes; [ ! -e "/proc/$postmaster" ] || echo "$postmaster"; } | tr '\n' ' ')
    check "round $round: no process of the killed cluster lingers after 20 s" "$left" ""
    [ -z "$left" ] || { echo "# lingering: $(ps -o pid,args -p "${left// /,}" 2>/dev/null | tail -n +2)"; break; }
    pg_ctlcluster 15 regress start
  else
    for _ in $(seq 200); do psql_db -c "SELECT 1" > /dev/null 2>&1 && break; sleep 0.1; done
    check "round $round: the same postmaster recovered and accepts connections" \
      "$(psql_db -c "SELECT pg_postmaster_start_time() IS NOT NULL" 2>&1)|$(head -1 "$data_directory/postmaster.pid")" "t|$postmaster"
  fi

  check "round $round: a notifier serves the database again" "$(notifier_serves "$db")" t

  # What the clients saw.
  cat "$work"/writer-"$round"-*.log | awk -F'\t' '$1 == "try" {print $2 "\t" $3 "\t{" $4 "}"}' > "$work/tried"
  cat "$work"/writer-"$round"-*.log | awk -F'\t' '$1 == "ack" {print $2 "\t" $3 "\t" $4 "\t{" $5 "}\t{" $6 "}"}' > "$work/acked"
  acked=$(wc -l < "$work/acked")
  acked_events=$(awk -F'\t' '{print $5}' "$work/acked" | tr -cd ',\n' | awk '{n += length($0) + 1} END {print n + 0}')
  acked_total=$((acked_total + acked))
  last_ack=$(awk -F'\t' '$1 == "ack" {c = $2} END {print c}' "$work/consumer-$round.log")
  echo "# round $round: $acked appends acknowledged ($acked_events events), $(wc -l < "$work/tried") tried; consumer's last ack ${last_ack:-none}"
  check "round $round: the writers appended before the kill" "$([ "$acked" -gt 20 ] && echo some)" some
  psql_db -c "COPY crash.tried FROM STDIN" < "$work/tried"
  psql_db -c "COPY crash.acked (batch, stream_id, version, positions, ids) FROM STDIN" < "$work/acked"
  psql_db -c "UPDATE crash.acked SET positions = NULL WHERE positions = '{}'"

  check "round $round: every acknowledged event is in the log with its stream, version and position" "$(psql_db <<'SQL'
SELECT count(*)
  FROM crash.acked a
 CROSS JOIN LATERAL unnest(a.ids) WITH ORDINALITY AS i(event_id, n)
 WHERE NOT EXISTS (SELECT FROM eventsource.events e
                    WHERE e.event_id = i.event_id AND e.stream_id = a.stream_id
                      AND e.stream_version = a.version - cardinality(a.ids) + i.n
                      AND (a.positions IS NULL OR e.global_position = a.positions[i.n]));
SQL
)" 0
  check "round $round: no batch tried is half there (all its events or none, in one transaction)" "$(psql_db <<'SQL'
SELECT count(*)
  FROM crash.tried t
 CROSS JOIN LATERAL (SELECT count(*) AS present, count(DISTINCT e.transaction_id) AS transactions,
                            count(*) FILTER (WHERE e.stream_id <> t.stream_id) AS elsewhere
                       FROM eventsource.events e WHERE e.event_id = ANY (t.ids)) AS found
 WHERE found.present NOT IN (0, cardinality(t.ids)) OR found.transactions > 1 OR found.elsewhere > 0;
SQL
)" 0
  check "round $round: every stream's versions are 1..n, contiguous and unique" "$(psql_db <<'SQL'
SELECT count(*) FROM (SELECT stream_id FROM eventsource.events GROUP BY stream_id
                       HAVING min(stream_version) <> 1 OR max(stream_version) <> count(*)
                           OR count(DISTINCT stream_version) <> count(*)) AS bad;
SQL
)" 0
  check "round $round: eventsource.streams holds every stream at its highest version" "$(psql_db <<'SQL'
SELECT count(*) FROM (SELECT stream_id, max(stream_version) AS version FROM eventsource.events GROUP BY stream_id) e
  FULL JOIN eventsource.streams s USING (stream_id)
 WHERE s.stream_version IS DISTINCT FROM e.version;
SQL
)" 0
  check "round $round: the inline projection matches the log (it committed with each append)" "$(psql_db <<'SQL'
SELECT count(*) FROM (SELECT stream_id, count(*) AS events, max(stream_version) AS last_version
                        FROM eventsource.events GROUP BY stream_id) e
  FULL JOIN crash.inline_counts c USING (stream_id)
 WHERE (e.events, e.last_version) IS DISTINCT FROM (c.events, c.last_version);
SQL
)" 0
  if [ -n "$last_ack" ]; then
    check "round $round: the subscription's checkpoint is not behind its last acknowledgement" \
      "$(psql_db -c "SELECT checkpoint OPERATOR(eventsource.>=) '$last_ack'::eventsource.checkpoint FROM eventsource.subscription_status WHERE name = 'crash-sub'")" t
  fi

  # Appends, reads and the position counter work again.
  before=$(psql_db -c "SELECT max(global_position) FROM eventsource.events")
  version=$(psql_db -c "SELECT eventsource.stream_version('crash-1')")
  check "round $round: append works after the restart" \
    "$(psql_db -c "SELECT eventsource.append('crash-1', 'Restarted', '{}', expected_version => $version)")" "$((version + 1))"
  version2=$(psql_db -c "SELECT eventsource.stream_version('crash-2')")
  check "round $round: append_events works after the restart" \
    "$(psql_db -c "SELECT stream_version FROM eventsource.append_events('crash-2', '[{\"type\": \"Restarted\", \"data\": {}}, {\"type\": \"Restarted\", \"data\": {}}]', $version2)")" "$((version2 + 2))"
  check "round $round: new events take global positions above every earlier one" \
    "$(psql_db -c "SELECT min(global_position) > $before AND count(*) = 3 FROM eventsource.events WHERE event_type = 'Restarted' AND global_position > $before")" t
  check "round $round: read_stream reads the whole stream" \
    "$(psql_db -c "SELECT count(*) = $((version + 1)) AND max(stream_version) = $((version + 1)) FROM eventsource.read_stream('crash-1', max_count => 100000)")" t
  check "round $round: read_all reads the whole log" \
    "$(psql_db -c "SELECT (SELECT count(*) FROM eventsource.read_all(max_count => 100000)) = (SELECT count(*) FROM eventsource.events)")" t
done
echo "# $faults faults injected (SIGKILL of: $faults_to_inject), $acked_total acknowledged appends checked"

# Clean restart: poll and ack some events; keep the checkpoint and the read models.
# (A poll the killed consumer did not ack holds a lease of 2 s.)
for _ in $(seq 50); do
  acked=$(psql_db -c "SELECT 'acked', eventsource.ack('crash-sub', checkpoint, 0, lease) FROM (SELECT checkpoint, lease FROM eventsource.poll('crash-sub', 50) ORDER BY checkpoint DESC LIMIT 1) p")
  [ "$acked" = "acked|" ] && break
  sleep 0.1
done
check "poll and ack work before the clean restart" "$acked" "acked|"
checkpoint=$(psql_db -c "SELECT checkpoint FROM eventsource.subscription_status WHERE name = 'crash-sub'")
next=$(psql_db -c "SELECT checkpoint FROM eventsource.read_all('$checkpoint', 1, 'crash')")
pg_ctlcluster 15 regress restart
check "after a clean restart the subscription's checkpoint is unchanged" \
  "$(psql_db -c "SELECT checkpoint FROM eventsource.subscription_status WHERE name = 'crash-sub'")" "$checkpoint"
check "and poll continues right after it" "$(psql_db -c "SELECT checkpoint FROM eventsource.poll('crash-sub', 1, lease_seconds => 1)")" "$next"
check "the projections survive it" \
  "$(psql_db -c "SELECT string_agg(name || ':' || mode || ':' || status, ',' ORDER BY name) FROM eventsource.projection_status")" \
  "crash-async:async:running,crash-inline:inline:running"
psql_db -c "SELECT eventsource.append('crash-restarted', 'Ticked', '{}')" \
        -c "SELECT eventsource.append_events('crash-1', '[{\"type\": \"Ticked\", \"data\": {}}, {\"type\": \"Tocked\", \"data\": {}}]')" > /dev/null
check "the inline projection still projects new appends" \
  "$(psql_db -c "SELECT (SELECT events FROM crash.inline_counts WHERE stream_id = 'crash-restarted'), (SELECT last_version FROM crash.inline_counts WHERE stream_id = 'crash-1') = eventsource.stream_version('crash-1')")" "1|t"
behind=none
for _ in $(seq 200); do
  behind=$(psql_db -c "SELECT events_behind FROM eventsource.projection_status WHERE name = 'crash-async'")
  [ "$behind" = 0 ] && break
  sleep 0.1
done
check "the async projection catches up within 20 s" "$behind" 0
check "to the same read model as the inline one" "$(psql_db <<'SQL'
SELECT count(*) FROM crash.inline_counts i FULL JOIN crash.async_counts a USING (stream_id)
 WHERE (i.events, i.last_version) IS DISTINCT FROM (a.events, a.last_version);
SQL
)" 0
check "which matches the log" "$(psql_db -c "SELECT sum(events) = (SELECT count(*) FROM eventsource.events WHERE stream_id LIKE 'crash-%') FROM crash.async_counts")" t

finish crash_restart
