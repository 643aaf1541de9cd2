#!/usr/bin/env bash
# notifier.sh: the bus's notifier, on a cluster of its own with eventsource preloaded. LISTEN
# subscribers hear about new events after commit, on "eventsource" and per category, with the
# checkpoint of the newest event as payload; commits coalesce; events held back by an older
# transaction are announced when it ends even if it wakes no one; eventsource.notify = off stops
# the notifications only, and the notifier stops once every one of its jobs is off; the notifier
# survives errors, settings reloads, restarts and clean shutdowns, and never blocks DROP DATABASE or
# CREATE DATABASE ... TEMPLATE of the database it serves. It also scavenges every
# eventsource.scavenge_interval (reloadable; 0 turns it off, the way kept through 0.8.x beside
# eventsource.scavenge, which worker_jobs.sh tests): events retention settings hide are
# removed with no one calling scavenge, except those a subscription has not passed yet, and
# events_scavenged counts them.
# Starts its cluster with pg_virtualenv on the port after the one PGPORT names (test/run's cluster).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ -z "${EVENTSOURCE_NOTIFIER_CLUSTER:-}" ]; then
  EVENTSOURCE_NOTIFIER_CLUSTER=1 exec pg_virtualenv -t -c "-p $((${PGPORT:-5432} + 11))" -v 15 \
    -o shared_preload_libraries=eventsource -o eventsource.worker_databases=es_bus,es_bus_dropped \
    -o eventsource.notify_max_delay=20 "$0"
fi

db=es_bus
listen() { /usr/bin/python3 "$here/bus/listen.py" --dbname "$db" "$@"; }
log_file() { ls "$(dirname "$PG_CLUSTER_CONF_ROOT")"/log/*.log | head -1; }
source "$(dirname "$0")/lib/check.sh"
# notifier_pid DB: the pid of DB's notifier once it runs (waits up to 20 s), or "none".
notifier_pid() {
  for _ in $(seq 200); do
    pid=$(psql -X -At -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'eventsource notifier' AND datname = '$1'")
    [ -n "$pid" ] && { echo "$pid"; return; }
    sleep 0.1
  done
  echo none
}
# with_listener COMMAND...: starts a listener (arguments in listener_args), waits until it
# listens, runs COMMAND, and leaves the listener's output in $work/heard.
with_listener() {
  listen "${listener_args[@]}" > "$work/heard" &
  local listener=$!
  for _ in $(seq 100); do grep -q ready "$work/heard" && break; sleep 0.05; done
  "$@"
  wait "$listener"
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

createdb "$db"
psql_db -c "CREATE EXTENSION eventsource"
first_pid=$(notifier_pid "$db")
check "the launcher starts a notifier for a database of eventsource.worker_databases" "$([ "$first_pid" != none ] && echo running)" running
check "notifier_status shows it" "$(psql_db -c "SELECT database_name, pid = $first_pid, paused FROM eventsource.notifier_status()")" "es_bus|t|f"

# One append: a notification on "eventsource" and on its category, whose payload is its checkpoint.
append_at() { psql_db -c "SELECT eventsource.append('$1', 'OrderPlaced', '{}')" > /dev/null; date +%s.%N > "$work/appended_at"; }
listener_args=(--channel eventsource --channel eventsource.order --count 2 --timeout 10)
with_listener append_at order-1
checkpoint=$(psql_db -c "SELECT checkpoint FROM eventsource.read_all() ORDER BY global_position DESC LIMIT 1")
check "an append is announced on eventsource with its checkpoint" "$(grep -c "^eventsource $checkpoint " "$work/heard")" 1
check "and on its category's channel" "$(grep -c "^eventsource.order $checkpoint " "$work/heard")" 1
check "within half a second of the append's return" \
  "$(awk -v t="$(cat "$work/appended_at")" '$1 == "eventsource" && $3 - t < 0.5 {n++} END {print n + 0}' "$work/heard")" 1

# 300 commits in a burst: fewer notifications than commits, the last one names the newest event.
listener_args=(--channel eventsource --count 1000 --timeout 4)
with_listener psql_db -c "SELECT eventsource.append('order-' || n, 'OrderPlaced', '{}') FROM generate_series(2, 301) AS n" -c "COMMIT" > /dev/null
for n in $(seq 2 100); do echo "SELECT eventsource.append('cart-$n', 'ItemAdded', '{}');"; done > "$work/burst.sql"
with_listener psql_db -f "$work/burst.sql" > /dev/null
notifications=$(grep -c '^eventsource ' "$work/heard" || true)
check "99 commits in a burst coalesce into fewer notifications ($notifications)" "$([ "$notifications" -ge 1 ] && [ "$notifications" -lt 99 ] && echo fewer)" fewer
newest=$(psql_db -c "SELECT checkpoint FROM eventsource.read_all(max_count => 100000) ORDER BY global_position DESC LIMIT 1")
check "the last notification names the newest event" "$(grep '^eventsource ' "$work/heard" | tail -1 | cut -d' ' -f2)" "$newest"

# An older transaction holds an event back; it rolls back without waking anyone, and the held-back
# event is announced within eventsource.notify_max_delay (20 ms here) plus a round trip.
{ psql_db > /dev/null <<'SQL'; date +%s.%N > "$work/holder_ended_at"; } &
BEGIN;
SELECT eventsource.append('order-old', 'OrderPlaced', '{}');
SELECT pg_sleep(2);
ROLLBACK;
SQL
holder=$!
for _ in $(seq 100); do
  [ "$(psql_db -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(2);'")" = 1 ] && break; sleep 0.05
done
listener_args=(--channel eventsource --count 1 --timeout 8)
with_listener append_at order-new
wait "$holder"
heard_at=$(awk '{print $3}' "$work/heard" | tail -1)
ended_at=$(cat "$work/holder_ended_at")
check "an event held back by an older transaction is not announced before it ends" \
  "$(awk -v h="$heard_at" -v e="$ended_at" 'BEGIN {print (h != "" && h > e - 0.1) ? "held" : "early"}')" held
check "and is announced soon after it ends, though that transaction woke no one" \
  "$(awk -v h="$heard_at" -v e="$ended_at" 'BEGIN {print (h != "" && h < e + 0.5) ? "announced" : "late"}')" announced

# Settings: notify off stops the notifications only; with every job of the worker off the notifier
# stops, and a job turned on again starts it.
running=$(notifier_pid "$db")
psql_db -c "ALTER SYSTEM SET eventsource.notify = off" -c "SELECT pg_reload_conf()" > /dev/null
sleep 0.5
listener_args=(--channel eventsource --count 1 --timeout 1.5)
with_listener psql_db -c "SELECT eventsource.append('order-quiet', 'OrderPlaced', '{}')" > /dev/null
check "eventsource.notify = off stops the notifications" "$(grep -c '^eventsource ' "$work/heard" || true)" 0
check "but not the notifier, which has other jobs" "$(notifier_pid "$db")" "$running"
psql_db -c "ALTER SYSTEM SET eventsource.async_projections = off" -c "ALTER SYSTEM SET eventsource.scavenge_interval = 0" \
        -c "SELECT pg_reload_conf()" > /dev/null
for _ in $(seq 100); do
  [ -z "$(psql_db -c "SELECT pid FROM eventsource.notifier_status() WHERE pid IS NOT NULL")" ] && break; sleep 0.1
done
check "with every job off (notify, async_projections, scavenge_interval) the notifier stops" \
  "$(psql_db -c "SELECT count(pid) FROM eventsource.notifier_status()")" 0
psql_db -c "ALTER SYSTEM RESET eventsource.notify" -c "SELECT pg_reload_conf()" > /dev/null
check "a job on again, it restarts" "$([ "$(notifier_pid "$db")" != none ] && echo running)" running
psql_db -c "ALTER SYSTEM RESET eventsource.async_projections" -c "ALTER SYSTEM RESET eventsource.scavenge_interval" \
        -c "SELECT pg_reload_conf()" > /dev/null

# An error in a job is logged and rests that job; the notifier goes on, and announces again once
# the error is gone. (With its table renamed away, the notifier's next look, within a second, fails.)
before=$(notifier_pid "$db")
psql_db -c "ALTER TABLE eventsource.events RENAME TO events_away" -c "SELECT pg_sleep(1.5)" \
        -c "ALTER TABLE eventsource.events_away RENAME TO events" > /dev/null
check "the notifications job's error is in the server log" \
  "$(grep -c "\[$before\] LOG:  eventsource notifier: the notifications job failed: relation \"eventsource.events\" does not exist" "$(log_file)" | sed 's/^[1-9][0-9]*$/logged/')" logged
check "and does not end the notifier" \
  "$(notifier_pid "$db")|$(grep -c "(PID $before) exited" "$(log_file)")" "$before|0"
listener_args=(--channel eventsource --count 1 --timeout 15)
with_listener psql_db -c "SELECT eventsource.append('order-after-error', 'OrderPlaced', '{}')" > /dev/null
check "and announces new events" "$(grep -c '^eventsource ' "$work/heard")" 1

# Statements that need the served database without connections do not wait for the notifier.
createdb es_bus_dropped
psql -X -q -d es_bus_dropped -c "CREATE EXTENSION eventsource"
check "a second database gets a notifier of its own" "$([ "$(notifier_pid es_bus_dropped)" != none ] && echo running)" running
start=$(date +%s%N)
createdb -T es_bus_dropped es_bus_copy
check "CREATE DATABASE ... TEMPLATE a served database succeeds" "$(psql -X -At -d es_bus_copy -c "SELECT count(*) FROM eventsource.events")" 0
dropdb es_bus_copy
dropdb es_bus_dropped
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "DROP DATABASE of a served database succeeds without waiting out its notifier ($elapsed_ms ms)" "$([ "$elapsed_ms" -lt 4000 ] && echo fast)" fast
check "the dropped database's notifier is gone" \
  "$(psql -X -At -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'eventsource notifier' AND datname IS DISTINCT FROM '$db'")" 0
check "the other database's notifier was not disturbed" "$(notifier_pid "$db")" "$before"

# Scavenging in the background, every eventsource.scavenge_interval (1 s here, set by a reload).
scavenged() { psql_db -c "SELECT events_scavenged FROM eventsource.statistics()"; }
# stored_after STREAM COUNT: waits up to 10 s until the log holds COUNT events of STREAM; prints how many it holds.
stored_after() {
  local n
  for _ in $(seq 100); do
    n=$(psql_db -c "SELECT count(*) FROM eventsource.events WHERE stream_id = '$1'")
    [ "$n" = "$2" ] && break
    sleep 0.1
  done
  echo "$n"
}
stored() { psql_db -c "SELECT count(*) FROM eventsource.events WHERE stream_id = '$1'"; }
psql_db -c "ALTER SYSTEM SET eventsource.scavenge_interval = 0" -c "SELECT pg_reload_conf()" > /dev/null
check "eventsource.scavenge_interval is reloadable" "$(sleep 0.5; psql_db -c "SHOW eventsource.scavenge_interval")" 0
scavenged_before=$(scavenged)
psql_db -c "SELECT eventsource.append('bin-1', 'Step', jsonb_build_object('n', n)) FROM generate_series(1, 10) AS n" \
        -c "SELECT eventsource.set_stream_metadata('bin-1', '{\"max_count\": 3}')" > /dev/null
check "stream reads hide what max_count hides at once" \
  "$(psql_db -c "SELECT string_agg(stream_version::text, ',' ORDER BY stream_version) FROM eventsource.read_stream('bin-1')")" 8,9,10
sleep 2.5
check "with scavenge_interval = 0 the notifier removes nothing" "$(stored bin-1)" 10
psql_db -c "ALTER SYSTEM SET eventsource.scavenge_interval = 1" -c "SELECT pg_reload_conf()" > /dev/null
check "with scavenge_interval = 1 the notifier removes the hidden events within seconds, unasked" "$(stored_after bin-1 3)" 3
check "the notifier still serves the database" "$(notifier_serves "$db")" t
check "stream reads are unchanged by the removal" \
  "$(psql_db -c "SELECT string_agg(stream_version::text, ',' ORDER BY stream_version) FROM eventsource.read_stream('bin-1')")" 8,9,10
check "statistics() counts the events it scavenged" "$(( $(scavenged) - scavenged_before ))" 7

# A subscription from the start that has not acknowledged them holds the hidden events back.
psql_db -c "SELECT eventsource.create_subscription('held', category => 'held')" \
        -c "SELECT eventsource.append('held-1', 'Step', jsonb_build_object('n', n)) FROM generate_series(1, 10) AS n" \
        -c "SELECT eventsource.set_stream_metadata('held-1', '{\"max_count\": 2}')" > /dev/null
sleep 3.5
check "a subscription that has not passed the hidden events holds them back over several intervals" "$(stored held-1)" 10
check "stream_status shows them as still to scavenge" \
  "$(psql_db -c "SELECT visible_events, events_to_scavenge FROM eventsource.stream_status WHERE stream_id = 'held-1'")" "2|8"
check "the counter did not move meanwhile" "$(( $(scavenged) - scavenged_before ))" 7
psql_db -c "SELECT count(*) FROM eventsource.poll('held', 5)" \
        -c "SELECT eventsource.ack('held', checkpoint, 0, (SELECT lease FROM eventsource.subscription_members WHERE subscription_name = 'held' AND consumer_group_member = 0)) FROM eventsource.read_category('held', max_count => 5) ORDER BY global_position DESC LIMIT 1" > /dev/null
check "once it acknowledges five of them, the notifier removes those five" "$(stored_after held-1 5)" 5
check "and leaves the rest, which it has not passed" \
  "$(sleep 2; psql_db -c "SELECT string_agg(stream_version::text, ',' ORDER BY stream_version) FROM eventsource.events WHERE stream_id = 'held-1'")" 6,7,8,9,10
psql_db -c "SELECT eventsource.drop_subscription('held')" > /dev/null
check "once the subscription is dropped, the notifier removes the rest of the hidden events" "$(stored_after held-1 2)" 2
check "statistics() counted every scavenged event" "$(( $(scavenged) - scavenged_before ))" 15
check "the notifier that scavenged is the one that served before" "$(notifier_pid "$db")" "$before"

# A restart: the notifier comes back and announces again.
pg_ctlcluster 15 regress stop -m fast
pg_ctlcluster 15 regress start
check "after a restart the notifier runs again" "$([ "$(notifier_pid "$db")" != none ] && echo running)" running
listener_args=(--channel eventsource --count 1 --timeout 15)
with_listener psql_db -c "SELECT eventsource.append('order-after-restart', 'OrderPlaced', '{}')" > /dev/null
check "and announces new events" "$(grep -c '^eventsource ' "$work/heard")" 1

# A clean shutdown stops the launcher and notifiers without errors.
log=$(log_file)
lines_before=$(wc -l < "$log")
pg_ctlcluster 15 regress stop -m fast
check "a fast shutdown completes" "$(pg_lsclusters -h | awk '$2 == "regress" {print $4}')" down
check "with no errors from eventsource's processes" \
  "$(tail -n +"$((lines_before + 1))" "$log" | grep -E 'ERROR|PANIC|exited with exit code [^01]|terminated by signal' | grep -c . || true)" 0

finish notifier
