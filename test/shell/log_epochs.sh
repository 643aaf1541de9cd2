#!/usr/bin/env bash
# log_epochs.sh: the log stays readable and in order when it moves to another cluster or a crash
# loses commits (issue 14, items 1 and 2), on clusters of its own.
# 1. A database with 100 events, a subscription acknowledged part way and an async projection is
#    dumped (plain and custom format) and restored into a freshly initdb'd cluster, whose transaction
#    counter is far behind the source's: read_all shows all 100 in the original order (before and
#    after the first append), a new append comes after them, the subscription resumes exactly after
#    its acknowledgement and the projection continues. The same through logical replication of the
#    eventsource tables into a fresh cluster, then a cut-over (sequences are not replicated: the
#    positions continue after the log's newest all the same). An older dump restored into another
#    cluster: its new events come after a checkpoint a follower of the source read since the dump.
# 2. A crash that loses commits: with synchronous_commit = off a follower reads the log and keeps its
#    checkpoint as text; the WAL writer is stopped (SIGSTOP), more events are appended, every server
#    process is killed (SIGKILL), so the last commits are lost; after the restart the follower,
#    reading after its checkpoint, gets every event appended since, and no global position is handed
#    out twice. The same after only the WAL writer is killed (the postmaster reinitialises shared
#    memory without restarting).
# 3. After a restart, a transaction that had its id before the new epoch began appends in it, and
#    its event comes first; a transaction prepared (with an append) before a crash holds the new
#    epoch's events back until COMMIT PREPARED, then both are delivered in order. A server killed
#    while an epoch starter waits leaves no epoch behind, and the next start appends and reads in
#    order.
# 4. No worker slot for the epoch starter (max_worker_processes = 2): the first appender starts the
#    epoch itself and says so (a WARNING); an older appender waits for it, visibly in pg_locks; if
#    that first append is rolled back to a savepoint, its transaction's next append takes the epoch
#    the older one started, and a reader does not skip it. With synchronous_commit = off, a crash
#    after the appender started the epoch keeps the epoch, and no global position is handed out twice.
# 5. A server started with its clock 71 years ahead (libfaketime) starts no epoch (22003 naming the
#    clock); with the clock right again appends work.
# Binaries from EVENTSOURCE_PG_BIN (default the system's 15); ports from EVENTSOURCE_EPOCH_PORT on.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
run_as_postgres "$@"
bin=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
base_port=${EVENTSOURCE_EPOCH_PORT:-$((${PGPORT:-5432} + 20))}
work=$(mktemp -d)
clusters=()

cleanup() {
  for name in "${clusters[@]}"; do
    kill -CONT $(pgrep -P "$(head -1 "$work/$name/postmaster.pid" 2>/dev/null)" 2>/dev/null) 2>/dev/null || true
    "$bin/pg_ctl" -D "$work/$name" -m immediate stop > /dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# new_cluster NAME PORT: initdb, eventsource preloaded, wal_level logical, started.
new_cluster() {
  preloaded_cluster "$work/$1" "$2" "$work" es_source,es_plain,es_custom,es_replica,es_crash
  cat >> "$work/$1/postgresql.conf" <<CONF
wal_level = logical
fsync = on
max_prepared_transactions = 5
CONF
  clusters+=("$1")
  start_cluster "$1"
}
start_cluster() { "$bin/pg_ctl" -D "$work/$1" -l "$work/$1.log" -w start > /dev/null; }
postmaster_pid() { head -1 "$work/$1/postmaster.pid"; }
# on PORT DB psql-arguments...
on() { local port=$1 db=$2; shift 2; "$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -h "$work" -p "$port" -U postgres -d "$db" "$@"; }
wait_for() { # wait_for PORT DB QUERY: until QUERY returns t (20 s at most)
  for _ in $(seq 200); do [ "$(on "$1" "$2" -c "$3")" = t ] && return 0; sleep 0.1; done
  return 1
}

source_port=$base_port
new_cluster source "$source_port"
"$bin/createdb" -h "$work" -p "$source_port" -U postgres es_source
# The source's transaction counter is far ahead of a fresh cluster's.
on "$source_port" es_source > /dev/null <<'SQL'
CREATE EXTENSION eventsource;
DO $$ BEGIN FOR i IN 1..3000 LOOP PERFORM pg_catalog.pg_current_xact_id(); COMMIT; END LOOP; END $$;
CREATE SCHEMA model;
CREATE TABLE model.seen (n int PRIMARY KEY);
CREATE FUNCTION model.see(e eventsource.event) RETURNS void LANGUAGE sql AS
  'INSERT INTO model.seen VALUES ((e.data->>''n'')::int)';
SELECT eventsource.create_subscription('billing');
SELECT eventsource.create_projection('seen', 'model.see(eventsource.event)', mode => 'async');
SQL
for n in $(seq 1 100); do echo "SELECT eventsource.append('order-$((n % 7))', 'OrderEvent', '{\"n\": $n}');"; done |
  on "$source_port" es_source > /dev/null
on "$source_port" es_source > /dev/null <<'SQL'
SELECT eventsource.ack('billing', b.checkpoint, 0, b.lease) FROM (SELECT checkpoint, lease FROM eventsource.poll('billing', 40) ORDER BY checkpoint DESC LIMIT 1) AS b;
SQL
check "source: the async projection has caught up" \
  "$(wait_for "$source_port" es_source "SELECT count(*) = 100 FROM model.seen" && echo t)" t
original=$(on "$source_port" es_source -c "SELECT string_agg(data->>'n', ',' ORDER BY checkpoint) FROM eventsource.read_all(max_count => 1000)")
check "source: read_all shows 100 events" "$(tr ',' '\n' <<<"$original" | wc -l)" 100
"$bin/pg_dump" -h "$work" -p "$source_port" -U postgres -Fp -f "$work/plain.sql" es_source
"$bin/pg_dump" -h "$work" -p "$source_port" -U postgres -Fc -f "$work/custom.dump" es_source
"$bin/pg_ctl" -D "$work/source" -m fast stop > /dev/null

# The restored copy of the log: readable in order, appends after it, consumers resume.
check_moved_log() { # check_moved_log PORT DB HOW [projection]
  local port=$1 db=$2 how=$3
  check "$how: read_all shows all 100 events in the original order" \
    "$(on "$port" "$db" -c "SELECT string_agg(data->>'n', ',' ORDER BY checkpoint) FROM eventsource.read_all(max_count => 1000)")" "$original"
  local last
  last=$(on "$port" "$db" -c "SELECT checkpoint FROM eventsource.read_all(max_count => 1000) ORDER BY checkpoint DESC LIMIT 1")
  on "$port" "$db" -c "SELECT eventsource.append('order-1', 'OrderEvent', '{\"n\": 101}')" > /dev/null || true
  check "$how: a new append comes after the restored history" \
    "$(on "$port" "$db" -c "SELECT string_agg(data->>'n', ',') FROM eventsource.read_all('$last')")" 101
  check "$how: and read_all shows all 101 in order" \
    "$(on "$port" "$db" -c "SELECT string_agg(data->>'n', ',' ORDER BY checkpoint) FROM eventsource.read_all(max_count => 1000)")" "$original,101"
  check "$how: new global positions follow the log's" \
    "$(on "$port" "$db" -c "SELECT global_position = (SELECT max(global_position) FROM eventsource.events WHERE data->>'n' <> '101') + 1 FROM eventsource.events WHERE data->>'n' = '101'")" t
  check "$how: the subscription resumes right after its acknowledgement" \
    "$(on "$port" "$db" -c "SELECT min((data->>'n')::int) || '..' || max((data->>'n')::int) || ':' || count(*) FROM eventsource.poll('billing', 1000)")" "41..101:61"
  if [ "${4:-}" = projection ]; then
    check "$how: the async projection continues with the new event" \
      "$(wait_for "$port" "$db" "SELECT count(*) = 101 FROM model.seen" && echo t)" t
  fi
}

target_port=$((base_port + 1))
new_cluster target "$target_port"
check "the target cluster's transaction counter is behind the log's" \
  "$(on "$target_port" postgres -c "SELECT pg_current_xact_id()::text::bigint < 3000")" t
"$bin/createdb" -h "$work" -p "$target_port" -U postgres es_plain
on "$target_port" es_plain -f "$work/plain.sql" > /dev/null 2>&1
check_moved_log "$target_port" es_plain "plain dump" projection
"$bin/createdb" -h "$work" -p "$target_port" -U postgres es_custom
"$bin/pg_restore" -h "$work" -p "$target_port" -U postgres -d es_custom "$work/custom.dump"
check "custom dump: before any append, read_all shows all 100" \
  "$(on "$target_port" es_custom -c "SELECT count(*) FROM eventsource.read_all(max_count => 1000)")" 100
check_moved_log "$target_port" es_custom "custom dump" projection
check "the restored database started an epoch of its own cluster" \
  "$(on "$target_port" es_custom -c "SELECT string_agg(reason, ',' ORDER BY epoch) FROM eventsource.log_epochs")" "new log,other cluster"

# Logical replication of the eventsource tables into a fresh cluster, then a cut-over.
start_cluster source
replica_port=$((base_port + 2))
new_cluster replica "$replica_port"
on "$source_port" es_source > /dev/null <<'SQL'
SELECT format('CREATE PUBLICATION es_pub FOR TABLE %s', string_agg(oid::regclass::text, ', '))
  FROM pg_class WHERE relnamespace = 'eventsource'::regnamespace AND relkind = 'r'
   AND relname IN ('events', 'streams', 'log_epochs', 'subscriptions', 'subscription_members') \gexec
SQL
"$bin/createdb" -h "$work" -p "$replica_port" -U postgres es_replica
on "$replica_port" es_replica -c "CREATE EXTENSION eventsource" \
  -c "CREATE SUBSCRIPTION es_sub CONNECTION 'host=$work port=$source_port user=postgres dbname=es_source' PUBLICATION es_pub"
check "logical replication: the tables are copied" \
  "$(wait_for "$replica_port" es_replica "SELECT (SELECT count(*) FROM eventsource.events) = 100 AND (SELECT bool_and(srsubstate = 'r') FROM pg_subscription_rel)" && echo t)" t
on "$replica_port" es_replica -c "DROP SUBSCRIPTION es_sub"
check_moved_log "$replica_port" es_replica "logical replication"

# A follower of the source, after the dump was taken, reads events appended since; an older dump of
# the source restored into another cluster: new appends there come after the follower's checkpoint.
for n in 201 202 203; do
  on "$source_port" es_source -c "SELECT eventsource.append('order-1', 'OrderEvent', '{\"n\": $n}')" > /dev/null
done
followed=$(on "$source_port" es_source -c "SELECT checkpoint FROM eventsource.read_all(max_count => 1000) ORDER BY checkpoint DESC LIMIT 1")
"$bin/createdb" -h "$work" -p "$target_port" -U postgres es_older
"$bin/pg_restore" -h "$work" -p "$target_port" -U postgres -d es_older "$work/custom.dump"
on "$target_port" es_older -c "SELECT eventsource.append('order-1', 'OrderEvent', '{\"n\": 301}')" > /dev/null
check "older dump restored elsewhere: reading after the source's newest checkpoint returns the new event" \
  "$(on "$target_port" es_older -c "SELECT string_agg(data->>'n', ',') FROM eventsource.read_all('$followed')")" 301

# 2. A crash that loses commits.
crash_port=$((base_port + 3))
new_cluster crash "$crash_port"
"$bin/createdb" -h "$work" -p "$crash_port" -U postgres es_crash
on "$crash_port" es_crash -c "CREATE EXTENSION eventsource" -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" > /dev/null
append_n() { # append_n PORT FROM TO
  for n in $(seq "$2" "$3"); do echo "SELECT eventsource.append('order-$((n % 3))', 'OrderEvent', '{\"n\": $n}');"; done |
    on "$1" es_crash > /dev/null
}
walwriter() { pgrep -P "$(postmaster_pid "${1:-crash}")" -f 'walwriter'; }
kill_server() { # kill_server [CLUSTER]: SIGKILL every process of the cluster (crash), the postmaster first
  local pm children
  pm=$(postmaster_pid "${1:-crash}")
  children=$(pgrep -P "$pm" || true)
  kill -KILL "$pm" $children
  for _ in $(seq 100); do kill -0 "$pm" 2>/dev/null || break; sleep 0.1; done
  sleep 0.5
}

crash_round() { # crash_round HOW FIRST: appends FIRST..FIRST+9 durably, 5 more that the crash loses
  local how=$1 first=$2 checkpoint position
  append_n "$crash_port" "$first" $((first + 9))
  on "$crash_port" es_crash -c "SET synchronous_commit = on" -c "SELECT eventsource.append('sync-1', 'Durable', '{}')" > /dev/null
  kill -STOP "$(walwriter)"
  append_n "$crash_port" $((first + 10)) $((first + 14))
  checkpoint=$(on "$crash_port" es_crash -c "SELECT checkpoint FROM eventsource.read_all(max_count => 1000) ORDER BY checkpoint DESC LIMIT 1")
  position=$(on "$crash_port" es_crash -c "SELECT max(global_position) FROM eventsource.read_all(max_count => 1000)")
  check "$how: the follower read the events the crash will lose" \
    "$(on "$crash_port" es_crash -c "SELECT count(*) FROM eventsource.read_all(max_count => 1000) WHERE (data->>'n')::int >= $((first + 10))")" 5
  if [ "$how" = "every process killed" ]; then
    kill_server
    start_cluster crash
  else
    # The postmaster reinitialises shared memory (and its WAL buffers) without restarting.
    kill -KILL "$(walwriter)"
    sleep 1
    wait_for "$crash_port" es_crash "SELECT true" || true
  fi
  check "$how: the crash lost the last commits" \
    "$(on "$crash_port" es_crash -c "SELECT count(*) < 5 FROM eventsource.events WHERE (data->>'n')::int >= $((first + 10))")" t
  append_n "$crash_port" $((first + 100)) $((first + 102))
  check "$how: reading after the follower's checkpoint gets the events appended since" \
    "$(on "$crash_port" es_crash -c "SELECT string_agg(data->>'n', ',' ORDER BY checkpoint) FROM eventsource.read_all('$checkpoint')")" \
    "$((first + 100)),$((first + 101)),$((first + 102))"
  check "$how: no global position is handed out twice" \
    "$(on "$crash_port" es_crash -c "SELECT min(global_position) > $position FROM eventsource.events WHERE (data->>'n')::int >= $((first + 100))")" t
}
crash_round "every process killed" 1000
crash_round "the WAL writer killed" 2000
check "each server start began an epoch" \
  "$(on "$crash_port" es_crash -c "SELECT string_agg(reason, ',' ORDER BY epoch) FROM eventsource.log_epochs")" "new log,server start,server start"

# 3. A transaction that had its id before the epoch began appends in it, in log order, and a
# transaction prepared before the restart holds the horizon back until it commits.
"$bin/pg_ctl" -D "$work/crash" -m fast restart > /dev/null
cat > "$work/early.sql" <<'SQL'
BEGIN;
SELECT pg_current_xact_id() IS NOT NULL;
SELECT pg_sleep(2);
SELECT eventsource.append('order-early', 'Early', '{}');
COMMIT;
SQL
before=$(on "$crash_port" es_crash -c "SELECT checkpoint FROM eventsource.read_all(max_count => 10000) ORDER BY checkpoint DESC LIMIT 1")
"$bin/psql" -X -At -h "$work" -p "$crash_port" -U postgres -d es_crash -v ON_ERROR_STOP=1 -f "$work/early.sql" > "$work/early.out" 2>&1 &
early=$!
sleep 1
on "$crash_port" es_crash -c "SELECT eventsource.append('order-late', 'Late', '{}')" > /dev/null
check "while the older transaction runs, the new epoch's first event is held back" \
  "$(on "$crash_port" es_crash -c "SELECT count(*) FROM eventsource.read_all('$before')")" 0
if wait "$early"; then early_ok=t; else early_ok=$(cat "$work/early.out"); fi
check "the older transaction's append succeeds" "$early_ok" t
check "and its event comes first in the log" \
  "$(on "$crash_port" es_crash -c "SELECT string_agg(event_type, ',') FROM eventsource.read_all('$before')")" Early,Late

on "$crash_port" es_crash -c "BEGIN" -c "SELECT eventsource.append('order-prepared', 'Prepared', '{}')" -c "PREPARE TRANSACTION 'before_restart'" > /dev/null
before=$(on "$crash_port" es_crash -c "SELECT checkpoint FROM eventsource.read_all(max_count => 10000) ORDER BY checkpoint DESC LIMIT 1")
kill_server
start_cluster crash
on "$crash_port" es_crash -c "SELECT eventsource.append('order-after', 'After', '{}')" > /dev/null
check "a transaction prepared before the crash holds the horizon back" \
  "$(on "$crash_port" es_crash -c "SELECT count(*) FROM eventsource.read_all('$before')")" 0
# (A session that did not prepare it: COMMIT PREPARED registers a before_shmem_exit callback
# there, which the notifier's utility hook once turned into an error after the commit.)
check "COMMIT PREPARED from another session succeeds without an error" \
  "$(on "$crash_port" es_crash -c "COMMIT PREPARED 'before_restart'" 2>&1 && echo t)" t
check "once committed, its event and the new one are delivered, the prepared one first" \
  "$(on "$crash_port" es_crash -c "SELECT string_agg(event_type, ',') FROM eventsource.read_all('$before')")" Prepared,After

# Concurrent first appenders after a restart agree on one epoch.
"$bin/pg_ctl" -D "$work/crash" -m fast restart > /dev/null
epochs_before=$(on "$crash_port" es_crash -c "SELECT count(*) FROM eventsource.log_epochs")
before=$(on "$crash_port" es_crash -c "SELECT checkpoint FROM eventsource.read_all(max_count => 10000) ORDER BY checkpoint DESC LIMIT 1")
pids=()
for n in $(seq 8); do
  on "$crash_port" es_crash -c "SELECT eventsource.append('concurrent-$n', 'First', '{}')" > /dev/null &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
check "eight concurrent first appenders start one epoch" \
  "$(on "$crash_port" es_crash -c "SELECT count(*) - $epochs_before FROM eventsource.log_epochs")" 1
check "and all eight events come after the log, in the new epoch" \
  "$(on "$crash_port" es_crash -c "SELECT count(*), bool_and(transaction_id::text::numeric >= (SELECT start_transaction_id::text::numeric + transaction_id_offset FROM eventsource.log_epochs ORDER BY epoch DESC LIMIT 1)) FROM eventsource.read_all('$before')")" "8|t"

# A server killed while an epoch starter waits (here for a lock on log_epochs).
"$bin/pg_ctl" -D "$work/crash" -m fast restart > /dev/null
cat > "$work/holder.sql" <<'SQL'
BEGIN;
LOCK TABLE eventsource.log_epochs IN EXCLUSIVE MODE;
SELECT pg_sleep(30);
COMMIT;
SQL
"$bin/psql" -X -At -h "$work" -p "$crash_port" -U postgres -d es_crash -f "$work/holder.sql" > /dev/null 2>&1 &
holder=$!
sleep 1
"$bin/psql" -X -At -h "$work" -p "$crash_port" -U postgres -d es_crash -c "SELECT eventsource.append('order-waiting', 'Waiting', '{}')" > "$work/waiting.out" 2>&1 &
waiting=$!
check "the appender's epoch starter waits for the lock" \
  "$(wait_for "$crash_port" es_crash "SELECT count(*) > 0 FROM pg_locks WHERE relation = 'eventsource.log_epochs'::regclass AND NOT granted" && echo t)" t
sleep 1.5
check "after the worker's lock_timeout, the appender waits itself, visibly" \
  "$(on "$crash_port" es_crash -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.relation = 'eventsource.log_epochs'::regclass AND NOT l.granted AND a.backend_type = 'client backend'")" 1
epochs_before=$(on "$crash_port" es_crash -c "SELECT count(*) FROM eventsource.log_epochs")
kill_server
wait "$holder" || true
wait "$waiting" || true
check "the waiting appender got an error, not a success" "$(grep -c '^1$' "$work/waiting.out" || true)" 0
start_cluster crash
check "no epoch of the killed server start remains" \
  "$(on "$crash_port" es_crash -c "SELECT count(*) FROM eventsource.log_epochs")" "$epochs_before"
check "the waiting append is not in the log" \
  "$(on "$crash_port" es_crash -c "SELECT count(*) FROM eventsource.events WHERE stream_id = 'order-waiting'")" 0
before=$(on "$crash_port" es_crash -c "SELECT checkpoint FROM eventsource.read_all(max_count => 10000) ORDER BY checkpoint DESC LIMIT 1")
on "$crash_port" es_crash -c "SELECT eventsource.append('order-waiting', 'Waiting', '{}')" > /dev/null
check "after the restart an append starts the epoch and reads come in order" \
  "$(on "$crash_port" es_crash -c "SELECT string_agg(event_type, ',') FROM eventsource.read_all('$before')")" Waiting

# 4. No worker slot for the epoch starter (max_worker_processes taken by the eventsource launcher
# and the logical replication launcher): the first appender starts the epoch in its own transaction.
noworker_port=$((base_port + 4))
new_cluster noworker "$noworker_port"
echo "max_worker_processes = 2" >> "$work/noworker/postgresql.conf"
"$bin/pg_ctl" -D "$work/noworker" -m fast restart > /dev/null
"$bin/createdb" -h "$work" -p "$noworker_port" -U postgres es_noworker
on "$noworker_port" es_noworker -c "CREATE EXTENSION eventsource" -c "SELECT eventsource.append('first', 'First', '{}')" > /dev/null 2>&1
# session NAME: a psql session fed through a fifo; say NAME SQL runs SQL there and waits for it
# (say_nowait does not wait).
session() {
  mkfifo "$work/$1.in"
  "$bin/psql" -X -At -h "$work" -p "$noworker_port" -U postgres -d es_noworker < "$work/$1.in" > "$work/$1.out" 2>&1 &
  eval "exec {fd_$1}> \"$work/$1.in\""
}
said=0
say_nowait() { local fd="fd_$1"; echo "$2" >&"${!fd}"; said=$((said + 1)); echo "\echo said-$said" >&"${!fd}"; }
say() {
  say_nowait "$1" "$2"
  for _ in $(seq 200); do grep -q "^said-$said\$" "$work/$1.out" && return 0; sleep 0.1; done
  echo "# $1 did not finish: $2"; return 1
}
done_with() { local fd="fd_$1"; echo '\q' >&"${!fd}"; eval "exec {fd_$1}>&-"; }
on_noworker() { on "$noworker_port" es_noworker "$@"; }
epoch_waiters="SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 17733 AND NOT granted"

# The first append of an epoch rolled back to a savepoint while an older transaction waits for the
# epoch: the later append of that transaction uses the epoch the older one started.
"$bin/pg_ctl" -D "$work/noworker" -m fast restart > /dev/null
before=$(on_noworker -c "SELECT checkpoint FROM eventsource.read_all(max_count => 10000) ORDER BY checkpoint DESC LIMIT 1")
session u
session t
say u "BEGIN; SELECT pg_current_xact_id() IS NOT NULL;"
say t "BEGIN; SELECT pg_current_xact_id() IS NOT NULL; SAVEPOINT s; SELECT eventsource.append('t-stream', 'e', '{}');"
check "without a worker slot the first appender says it starts the epoch itself" \
  "$(grep -c 'WARNING:  no background worker could start the log epoch' "$work/t.out")" 1
say_nowait u "SELECT eventsource.append('u-stream', 'e', '{}');"
check "an older transaction's append waits for the epoch lock, visibly in pg_locks" \
  "$(wait_for "$noworker_port" es_noworker "$epoch_waiters" && echo t)" t
say t "ROLLBACK TO SAVEPOINT s;"
say u "COMMIT;"
say t "SELECT eventsource.append('t-stream', 'e', '{\"n\": 2}');"
c1=$(on_noworker -c "SELECT checkpoint FROM eventsource.read_all('$before') WHERE stream_id = 'u-stream'")
check "while the savepoint's transaction runs, the reader gets only the older transaction's event" \
  "$(on_noworker -c "SELECT string_agg(stream_id, ',') FROM eventsource.read_all('$before')")" u-stream
say t "COMMIT;"
done_with u
done_with t
check "after it commits, reading after the reader's checkpoint returns its event" \
  "$(on_noworker -c "SELECT string_agg(stream_id || ':' || (data->>'n'), ',') FROM eventsource.read_all('$c1')")" t-stream:2
check "every event of that server start lies in its one epoch" \
  "$(on_noworker -c "SELECT count(*) FROM eventsource.events e WHERE stream_id IN ('t-stream', 'u-stream') AND NOT EXISTS (SELECT FROM eventsource.log_epochs l WHERE e.transaction_id::text::numeric - l.transaction_id_offset >= l.start_transaction_id::text::numeric AND l.epoch = (SELECT max(epoch) FROM eventsource.log_epochs))")" 0

# A crash that loses commits after the appender started the epoch with synchronous_commit off:
# the epoch it started stays (its transaction commits synchronously), no position is handed out twice.
on_noworker -c "ALTER SYSTEM SET synchronous_commit = off" > /dev/null
"$bin/pg_ctl" -D "$work/noworker" -m fast restart > /dev/null
epochs_before=$(on_noworker -c "SELECT count(*) FROM eventsource.log_epochs")
kill -STOP "$(walwriter noworker)"
on_noworker -c "SELECT eventsource.append('lost', 'Lost', '{}')" > /dev/null 2>&1
for n in 1 2 3 4 5; do on_noworker -c "SELECT eventsource.append('lost', 'Lost', '{}')" > /dev/null; done
position=$(on_noworker -c "SELECT max(global_position) FROM eventsource.read_all(max_count => 10000)")
kill_server noworker
start_cluster noworker
check "the epoch the appender started survives the crash" \
  "$(on_noworker -c "SELECT count(*) - $epochs_before FROM eventsource.log_epochs")" 1
on_noworker -c "SELECT eventsource.append('after-crash', 'After', '{}')" > /dev/null 2>&1
check "after the crash no global position is handed out twice" \
  "$(on_noworker -c "SELECT global_position > $position FROM eventsource.events WHERE stream_id = 'after-crash'")" t

# 5. A server started with its clock 71 years ahead: no epoch is started (22003, the clock named),
# and once the clock is right appends work again.
"$bin/pg_ctl" -D "$work/noworker" -m fast stop > /dev/null
FAKETIME="+71y" LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 start_cluster noworker
check "with the clock after 2097 an append is refused, naming the clock" \
  "$(on_noworker -c "SELECT eventsource.append('future', 'Future', '{}')" 2>&1 | grep -c "could not start a log epoch: the server's clock says 2097")" 1
"$bin/pg_ctl" -D "$work/noworker" -m fast stop > /dev/null
start_cluster noworker
check "with the clock right again the next append starts an epoch" \
  "$(on_noworker -c "SELECT eventsource.append('present', 'Present', '{}') IS NOT NULL" 2>/dev/null)" t

finish log_epochs
