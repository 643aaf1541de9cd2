#!/usr/bin/env bash
# replica.sh: a streaming-replication standby (a second local cluster made with pg_basebackup -R)
# serves read_all, read_stream, read_category, load_stream, stream_version and the subscription
# tables exactly as the primary does once it has replayed the primary's WAL; appends on the standby
# and polls fail with SQLSTATE 25006 (read-only transaction), and the notifier, preloaded on both, neither
# breaks recovery nor makes notifier_status() fail on the standby. Failover: the standby, cut off
# before the primary's last appends and promoted, starts a log epoch, so a follower's checkpoint
# from the old primary does not skip the events appended after the promotion.
# Makes its two throwaway clusters under a temporary directory, on ports PGPORT + 14 (primary)
# and PGPORT + 15 (standby), next to test/run's cluster; removes them on exit. The servers are
# ${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}'s, so that it can test another build.
set -euo pipefail

source "$(dirname "$0")/lib/check.sh"

bin=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
primary_port=$((${PGPORT:-5432} + 14))
standby_port=$((${PGPORT:-5432} + 15))
dir=$(mktemp -d /tmp/eventsource-replica.XXXXXX)
chmod 755 "$dir"

# Servers must run as postgres: as root, run the server commands through su.
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
owner=$(stat -c %U "$dir")

cleanup() {
  for data in "$dir/standby" "$dir/primary"; do
    if [ -f "$data/postmaster.pid" ]; then
      as_postgres "$bin/pg_ctl" -D "$data" -m immediate -w stop > /dev/null 2>&1 || true
    fi
  done
  rm -rf "$dir"
}
trap cleanup EXIT
trap "exit 1" INT TERM HUP PIPE

psql() { "$bin/psql" "$@"; }
primary() { psql -X -q -v ON_ERROR_STOP=1 -At -h "$dir" -p "$primary_port" -U "$owner" -d es_replica "$@"; }
standby() { psql -X -q -v ON_ERROR_STOP=1 -At -h "$dir" -p "$standby_port" -U "$owner" -d es_replica "$@"; }

as_postgres "$bin/initdb" -D "$dir/primary" -A trust -U "$owner" --no-sync > "$dir/initdb.log" 2>&1
cat >> "$dir/primary/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $primary_port
shared_preload_libraries = 'eventsource'
eventsource.worker_databases = 'es_replica'
wal_level = replica
max_wal_senders = 4
hot_standby = on
fsync = off
EOF
as_postgres "$bin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w start > /dev/null
as_postgres "$bin/pg_basebackup" -h "$dir" -p "$primary_port" -U "$owner" -D "$dir/standby" -R -X stream --no-sync
echo "port = $standby_port" >> "$dir/standby/postgresql.conf"
as_postgres "$bin/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w start > /dev/null

streaming=0
for _ in $(seq 200); do
  streaming=$(psql -X -At -h "$dir" -p "$primary_port" -U "$owner" -d postgres -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
  [ "$streaming" = 1 ] && break
  sleep 0.1
done
check "the standby streams from the primary" "$streaming" 1
check "the standby is in recovery" "$(psql -X -At -h "$dir" -p "$standby_port" -U "$owner" -d postgres -c "SELECT pg_is_in_recovery()")" t

psql -X -q -At -h "$dir" -p "$primary_port" -U "$owner" -d postgres -c "CREATE DATABASE es_replica"
primary -c "CREATE EXTENSION eventsource"
primary -c "SELECT eventsource.create_subscription('s')" > /dev/null
# 3000 events over 60 streams in 3 categories: single appends and batches, some with metadata.
primary > /dev/null <<'SQL'
SELECT count(eventsource.append('order-' || (i % 20), 'OrderTouched', jsonb_build_object('i', i),
                                jsonb_build_object('n', i)))
  FROM generate_series(1, 1000) i;
SELECT count(*) FROM (
  SELECT eventsource.append_events('cart-' || (b % 20),
           (SELECT jsonb_agg(jsonb_build_object('type', 'ItemAdded', 'data', jsonb_build_object('b', b, 'k', k)))
              FROM generate_series(1, 10) k), NULL)
    FROM generate_series(1, 100) b) x;
DO $$ BEGIN
  FOR i IN 1..1000 LOOP
    PERFORM eventsource.append('user-' || (i % 20), CASE WHEN i % 2 = 0 THEN 'UserSeen' ELSE 'UserLeft' END,
                               jsonb_build_object('i', i, 'text', repeat('x', i % 50)));
  END LOOP;
END $$;
SELECT eventsource.save_snapshot('order-3', 20, '{"total": 20}');
SELECT eventsource.save_snapshot('cart-7', 30, '{"items": 30}');
SQL

check "the primary holds 3000 events" "$(primary -c "SELECT count(*) FROM eventsource.read_all(NULL, 100000)")" 3000
polled=$(primary -c "SELECT count(*) FROM eventsource.poll('s', 500)")
check "poll delivers a batch on the primary" "$polled" 500
primary -c "SELECT eventsource.ack('s', c, 0, (SELECT lease FROM eventsource.subscription_members WHERE subscription_name = 's' AND consumer_group_member = 0)) FROM (SELECT checkpoint AS c FROM eventsource.read_all(NULL, 300) ORDER BY global_position DESC LIMIT 1) x" > /dev/null

# Wait until the standby has replayed everything the primary wrote.
lsn=$(primary -c "SELECT pg_current_wal_lsn()")
replayed=f
for _ in $(seq 300); do
  replayed=$(standby -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null || echo f)
  [ "$replayed" = t ] && break
  sleep 0.1
done
check "the standby replays up to the primary's current LSN" "$replayed" t

same() {  # same NAME QUERY: the query's output is the same on both, and not empty
  local p s
  p=$(primary -c "$2" 2>&1 || true)
  s=$(standby -c "$2" 2>&1 || true)
  if [ -z "$p" ]; then
    check "$1 (primary output is empty)" "$p" "not empty"
  elif [ "$p" = "$s" ]; then
    check "$1" same same
  else
    check "$1" "$(diff <(echo "$p") <(echo "$s") | head -5 | tr '\n' ' ')" "no difference"
  fi
}

check "read_all on the standby returns all 3000 events" "$(standby -c "SELECT count(*) FROM eventsource.read_all(NULL, 100000)" 2>&1)" 3000
same "read_all" "SELECT * FROM eventsource.read_all(NULL, 100000)"
same "read_all after a checkpoint, of one category and types" \
  "SELECT * FROM eventsource.read_all((SELECT checkpoint FROM eventsource.read_all(NULL, 1000) ORDER BY global_position DESC LIMIT 1), 100000, 'user', ARRAY['UserSeen'])"
same "the checkpoints read_all hands out" "SELECT checkpoint, global_position FROM eventsource.read_all(NULL, 100000)"
for s in order-0 order-3 cart-7 cart-19 user-1 user-10; do
  same "read_stream $s forwards" "SELECT * FROM eventsource.read_stream('$s')"
  same "read_stream $s backwards" "SELECT * FROM eventsource.read_stream('$s', NULL, 1000, 'backward')"
  same "read_stream $s from version 5, 7 events" "SELECT * FROM eventsource.read_stream('$s', 5, 7)"
  same "load_stream $s" "SELECT * FROM eventsource.load_stream('$s')"
  same "stream_version $s" "SELECT eventsource.stream_version('$s')"
done
for c in order cart user; do
  same "read_category $c" "SELECT * FROM eventsource.read_category('$c', NULL, 100000)"
done
check "load_stream on the standby starts from the snapshot" \
  "$(standby -c "SELECT kind, stream_version, data FROM eventsource.load_stream('cart-7') LIMIT 1")" 'snapshot|30|{"items": 30}'
same "load_snapshot" "SELECT * FROM eventsource.load_snapshot('order-3')"
same "streams" "SELECT * FROM eventsource.streams ORDER BY stream_id"
same "subscriptions" "SELECT * FROM eventsource.subscriptions"
same "subscription_members" "SELECT * FROM eventsource.subscription_members"
same "subscription_status (but its clock-dependent columns)" \
  "SELECT name, consumer_group_member, checkpoint, delivered_through, events_behind FROM eventsource.subscription_status"

# Gap safety on the standby too: an event committed behind a transaction still open on the
# primary is held back by read_all on both, until that transaction commits.
check "pg_current_snapshot() works on the standby" "$(standby -c "SELECT pg_current_snapshot() IS NOT NULL")" t
primary -c "BEGIN" -c "SELECT eventsource.append('late-1', 'Late', '{}')" -c "SELECT pg_sleep(3)" -c "COMMIT" > /dev/null &
open_pid=$!
open=0
for _ in $(seq 100); do
  open=$(primary -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3)' AND state = 'active'")
  [ "$open" = 1 ] && break
  sleep 0.05
done
check "a transaction that appended stays open on the primary" "$open" 1
primary -c "SELECT eventsource.append('late-2', 'Late', '{}')" > /dev/null
wait_replay() {
  local lsn replayed=f
  lsn=$(primary -c "SELECT pg_current_wal_lsn()")
  for _ in $(seq 300); do
    replayed=$(standby -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null || echo f)
    [ "$replayed" = t ] && break
    sleep 0.05
  done
  echo "$replayed"
}
check "the standby replays the later append" "$(wait_replay)" t
check "the later event is committed on the standby" "$(standby -c "SELECT count(*) FROM eventsource.events WHERE stream_id = 'late-2'")" 1
held="SELECT count(*), count(*) FILTER (WHERE stream_id LIKE 'late-%') FROM eventsource.read_all(NULL, 100000)"
check "read_all on the primary holds it back" "$(primary -c "$held")" "3000|0"
check "read_all on the standby holds it back too" "$(standby -c "$held")" "3000|0"
same "read_all while a transaction is open" "SELECT * FROM eventsource.read_all(NULL, 100000)"
wait "$open_pid"
check "the standby replays the commit" "$(wait_replay)" t
check "read_all on the standby then returns both" "$(standby -c "$held")" "3002|2"
same "read_all once it committed" "SELECT * FROM eventsource.read_all(NULL, 100000)"

error=$(psql -X -q -At -h "$dir" -p "$standby_port" -U "$owner" -d es_replica -v VERBOSITY=verbose \
  -c "SELECT eventsource.append('order-1', 'OrderPlaced', '{}')" 2>&1 || true)
check "append on the standby fails with SQLSTATE 25006" "$(grep -c 'ERROR:  25006: cannot execute .* in a read-only transaction' <<<"$error")" 1
error=$(psql -X -q -At -h "$dir" -p "$standby_port" -U "$owner" -d es_replica -v VERBOSITY=verbose \
  -c "SELECT eventsource.append_events('order-1', '[{\"type\": \"OrderPlaced\", \"data\": {}}]', NULL)" 2>&1 || true)
check "append_events on the standby fails with SQLSTATE 25006" "$(grep -c 'ERROR:  25006: cannot execute .* in a read-only transaction' <<<"$error")" 1
# poll leases (SELECT ... FOR UPDATE), so subscriptions are consumed on the primary only.
error=$(psql -X -q -At -h "$dir" -p "$standby_port" -U "$owner" -d es_replica -v VERBOSITY=verbose \
  -c "SELECT count(*) FROM eventsource.poll('s')" 2>&1 || true)
check "poll on the standby fails with SQLSTATE 25006" "$(grep -c 'ERROR:  25006: cannot execute .* in a read-only transaction' <<<"$error")" 1
status=$(standby -c "SELECT * FROM eventsource.notifier_status()" 2>&1 || echo "failed")
# Its launcher starts only once recovery ends (BgWorkerStart_RecoveryFinished): no rows until then.
check "notifier_status() on the standby answers, with no rows" "$status" ""
check "no notifier process on the standby" "$(standby -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'eventsource%'")" 0
serves=f
for _ in $(seq 200); do
  serves=$(primary -c "SELECT count(*) > 0 FROM eventsource.notifier_status() WHERE database_name = 'es_replica' AND pid IS NOT NULL")
  [ "$serves" = t ] && break
  sleep 0.1
done
check "a notifier serves the primary" "$serves" t
# The standby's log may hold the two read-only errors provoked above, and nothing else.
check "the standby's log has no other errors" \
  "$(grep -E 'ERROR|FATAL|PANIC' "$dir/standby.log" | grep -v 'in a read-only transaction' | head -3 | tr '\n' ' ' || true)" ""
check "the primary's log has no errors" "$(grep -E 'ERROR|FATAL|PANIC' "$dir/primary.log" | head -3 | tr '\n' ' ' || true)" ""

# Failover to the asynchronous standby: the primary's last commits never reached it. A follower
# that read them from the primary and kept its checkpoint as text gets, from the promoted standby,
# every event appended there since; no global position is handed out twice.
check "the standby has replayed everything so far" "$(wait_replay)" t
standby -c "ALTER SYSTEM SET primary_conninfo = ''" -c "SELECT pg_reload_conf()" > /dev/null
for _ in $(seq 100); do
  [ "$(standby -c "SELECT count(*) FROM pg_stat_wal_receiver")" = 0 ] && break
  sleep 0.1
done
for n in 1 2 3 4 5; do primary -c "SELECT eventsource.append('lost-$n', 'NeverReplicated', '{}')" > /dev/null; done
checkpoint=$(primary -c "SELECT checkpoint FROM eventsource.read_all(NULL, 100000) ORDER BY checkpoint DESC LIMIT 1")
position=$(primary -c "SELECT max(global_position) FROM eventsource.events")
check "the standby never received the primary's last appends" \
  "$(standby -c "SELECT count(*) FROM eventsource.events WHERE stream_id LIKE 'lost-%'")" 0
as_postgres "$bin/pg_ctl" -D "$dir/primary" -m immediate -w stop > /dev/null
as_postgres "$bin/pg_ctl" -D "$dir/standby" -w promote > /dev/null
for n in 1 2 3; do standby -c "SELECT eventsource.append('after-failover', 'Appended', '{}')" > /dev/null; done
check "after promotion, reading after the follower's checkpoint gets the events appended since" \
  "$(standby -c "SELECT count(*) FROM eventsource.read_all('$checkpoint') WHERE stream_id = 'after-failover'")" 3
check "and new global positions are above the lost ones" \
  "$(standby -c "SELECT min(global_position) > $position FROM eventsource.events WHERE stream_id = 'after-failover'")" t
check "the promoted standby started a log epoch" \
  "$(standby -c "SELECT reason FROM eventsource.log_epochs ORDER BY epoch DESC LIMIT 1")" "server start"

finish replica
