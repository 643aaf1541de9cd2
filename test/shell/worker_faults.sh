#!/usr/bin/env bash
# worker_faults.sh: the per-database worker on a bad day, on a cluster of its own.
# 1. An error outside a projection's work ends a slice of that job only: the listing of the async
#    projections failing (lock_timeout, while a session holds eventsource.projections) is logged,
#    the job rests and tries again; a projection whose row a session holds (with a short
#    lock_timeout in the database) is passed by until it is free; the worker keeps its pid, never
#    exits, and keeps notifying.
# 2. A failure of a projection that cannot be recorded (its dead letter waits for a lock past
#    lock_timeout) is logged, and that projection rests and tries again: the failure is recorded once
#    the lock is gone, and the other projections go on meanwhile.
# 3. statement_timeout, set for the database, bounds each of the worker's transactions: a handler
#    that sleeps past it fails its turn (57014), a failure of its projection like any other.
# 4. A handler's session-level advisory lock ends with its turn, committed or failed: no session
#    waits for the worker.
# 5. An async projection of an event type absent from 400,000 events reads the log in windows: no
#    transaction of its first turn runs into a statement_timeout of 40 ms (one read of the whole log
#    takes about 90 ms here), and it projects the event of its type that follows them.
# 6. pg_cancel_backend of the worker while it waits cancels nothing, and while a handler runs fails
#    that handler's turn only (a failure of its projection): the worker keeps its pid.
# Binaries from EVENTSOURCE_PG_BIN (default the system's 15); port EVENTSOURCE_WORKER_FAULTS_PORT
# (default PGPORT + 33).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
run_as_postgres "$@"
bin=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
port=${EVENTSOURCE_WORKER_FAULTS_PORT:-$((${PGPORT:-5432} + 33))}
work=$(mktemp -d)
cleanup() { "$bin/pg_ctl" -D "$work/data" -m immediate stop > /dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

start_worker_cluster ""
db=es_faults
# psql_in DB ARGS...: psql in DB, read-write whatever the database's default.
psql_in() {
  local database=$1
  shift
  PGOPTIONS='-c default_transaction_read_only=off -c statement_timeout=0' "$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$database" "$@"
}
psql_db() { psql_in "$db" "$@"; }
# wait_for DB QUERY [SECONDS]: until QUERY returns t in DB (20 s by default); fails when it does not.
wait_for() {
  for _ in $(seq $((${3:-20} * 10))); do [ "$(psql_in "$1" -c "$2")" = t ] && return 0; sleep 0.1; done
  return 1
}
# worker_pid DB: the pid of the database's worker, once it runs (waits up to 20 s).
worker_pid() { worker_pid_of "$1" psql_in "$1"; }
exits() { worker_exits "$work/server.log"; }
logged() { grep -c "$1" "$work/server.log" || true; }
append() { psql_in "$1" -c "SELECT eventsource.append_events('$2', '$3')" > /dev/null; }
# The extension and a projection counting the events of category family, in the database $1.
counter() { psql_in "$1" -f "$here/lib/counter.sql" > /dev/null; }

# The worker reads the database's settings when it starts: they come before the extension.
"$bin/createdb" "$db"
psql_db -c "ALTER DATABASE $db SET lock_timeout = '200ms'"
counter "$db"
psql_db > /dev/null <<'SQL'
CREATE TABLE model.handled (stream_id text, n int);
-- Takes the session-level advisory lock data.key, if any; fails on the events of type Bad.
CREATE FUNCTION model.misbehave(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.data ? 'key' THEN
        PERFORM pg_advisory_lock((e.data ->> 'key')::bigint);
    END IF;
    IF e.event_type = 'Bad' THEN
        RAISE EXCEPTION 'bad event %', e.global_position;
    END IF;
    INSERT INTO model.handled VALUES (e.stream_id, (e.data ->> 'n')::int);
END
$$;
SELECT eventsource.create_projection('strict', 'model.misbehave(eventsource.event)', category => 'strict',
                                     mode => 'async', on_failure => 'dead_letter', max_attempts => 1);
SELECT eventsource.create_projection('locker', 'model.misbehave(eventsource.event)', category => 'lock',
                                     mode => 'async', on_failure => 'dead_letter', max_attempts => 1);
SQL
pid=$(worker_pid "$db")
check "the worker runs" "$([ -n "$pid" ] && echo running)" running

# 1. The listing of the projections fails while a session holds their table.
psql_db -c "SET lock_timeout = 0" -c "BEGIN" -c "LOCK TABLE eventsource.projections IN ACCESS EXCLUSIVE MODE" \
        -c "SELECT pg_sleep(2)" -c "COMMIT" > /dev/null &
holder=$!
sleep 0.3
append "$db" family-1 '[{"type": "Born", "data": {"n": 1}}]'
wait "$holder"
wait_for "$db" "SELECT count(*) = 1 FROM model.counted" 10 || true
check "the events appended while the listing of the projections failed are projected after" \
  "$(psql_db -c "SELECT count(*) FROM model.counted")" 1
check "the failure is logged as the async projections job's" \
  "$([ "$(logged 'async projections job failed: canceling statement due to lock timeout')" -ge 1 ] && echo logged)" logged
check "the worker kept its pid" "$(worker_pid "$db")" "$pid"
check "and never exited" "$(exits)" 0

# A session holds the projection's row (as an administrator's open pause_projection would), with a
# short lock_timeout in the database: the turns pass the projection by, and the worker goes on.
locked=es_faults_locked
"$bin/createdb" "$locked"
psql_in "$locked" -c "ALTER DATABASE $locked SET lock_timeout = '100ms'"
counter "$locked"
locked_pid=$(worker_pid "$locked")
check "the database gets a worker" "$([ -n "$locked_pid" ] && echo running)" running
psql_in "$locked" -c "SET lock_timeout = 0" -c "BEGIN" \
        -c "SELECT FROM eventsource.projections WHERE name = 'counter' FOR UPDATE" \
        -c "SELECT pg_sleep(6)" -c "COMMIT" > /dev/null &
holder=$!
sleep 0.3
append "$locked" family-1 '[{"type": "Born", "data": {"n": 1}}]'
sleep 4
check "its turns pass it by, with no failure" \
  "$(psql_in "$locked" -c "SELECT attempts, last_error IS NULL FROM eventsource.projection_status WHERE name = 'counter'")|$(logged "\[$locked_pid\] LOG: .*job failed")" "0|t|0"
check "its worker keeps its pid" "$(worker_pid "$locked")" "$locked_pid"
check "and never exits" "$(exits)" 0
check "and keeps notifying" "$(hears_own_append "$bin/psql" -X -q -At -d "$locked")" t
check "the projection waits, running" \
  "$(psql_in "$locked" -c "SELECT status, events_processed FROM eventsource.projection_status WHERE name = 'counter'")" "running|0"
wait "$holder"
wait_for "$locked" "SELECT events_processed = 1 FROM eventsource.projection_status WHERE name = 'counter'" 20 || true
check "once the row is free, the projection catches up" \
  "$(psql_in "$locked" -c "SELECT status, events_processed FROM eventsource.projection_status WHERE name = 'counter'")" "running|1"

# 2. A failure that cannot be recorded: its dead letter waits for a lock past lock_timeout.
psql_db -c "SET lock_timeout = 0" -c "BEGIN" -c "LOCK TABLE eventsource.projection_dead_letters IN SHARE MODE" \
        -c "SELECT pg_sleep(3)" -c "COMMIT" > /dev/null &
holder=$!
sleep 0.3
append "$db" strict-1 '[{"type": "Bad", "data": {"n": 1}}, {"type": "Good", "data": {"n": 2}}]'
sleep 0.5
append "$db" family-2 '[{"type": "Born", "data": {"n": 2}}]'
wait_for "$db" "SELECT count(*) = 2 FROM model.counted" 2 || true
check "another projection goes on while the failure of one cannot be recorded" \
  "$(psql_db -c "SELECT count(*) FROM model.counted")" 2
wait "$holder"
wait_for "$db" "SELECT events_behind = 0 FROM eventsource.projection_status WHERE name = 'strict'" || true
check "the failure that could not be recorded is logged" \
  "$([ "$(logged 'could not record the failure of async projection "strict": canceling statement due to lock timeout')" -ge 1 ] && echo logged)" logged
check "it is recorded once the lock is gone: the event is a dead letter, the next one projected" \
  "$(psql_db -c "SELECT (SELECT string_agg(error, ',') FROM eventsource.projection_dead_letters WHERE projection_name = 'strict'),
                        (SELECT string_agg(n::text, ',') FROM model.handled WHERE stream_id = 'strict-1')")" \
  "bad event $(psql_db -c "SELECT global_position FROM eventsource.events WHERE stream_id = 'strict-1' AND stream_version = 1")|2"
check "the worker kept its pid" "$(worker_pid "$db")" "$pid"
check "and never exited" "$(exits)" 0

# 3. statement_timeout bounds the worker's transactions.
slow=es_faults_timeout
"$bin/createdb" "$slow"
psql_in "$slow" -c "ALTER DATABASE $slow SET statement_timeout = '1s'"
counter "$slow"
psql_in "$slow" > /dev/null <<'SQL'
CREATE FUNCTION model.stuck(e eventsource.event) RETURNS void LANGUAGE sql AS $$SELECT pg_sleep(60)$$;
SELECT eventsource.create_projection('stuck', 'model.stuck(eventsource.event)', category => 'stuck',
                                     mode => 'async', on_failure => 'dead_letter', max_attempts => 1);
SQL
slow_pid=$(worker_pid "$slow")
append "$slow" stuck-1 '[{"type": "Stuck", "data": {}}]'
wait_for "$slow" "SELECT count(*) = 1 FROM eventsource.projection_dead_letters" 5 || true
check "a handler that runs past statement_timeout fails its turn, a failure of its projection" \
  "$(psql_in "$slow" -c "SELECT string_agg(error, ',') FROM eventsource.projection_dead_letters WHERE projection_name = 'stuck'")" \
  "canceling statement due to statement timeout"
append "$slow" family-1 '[{"type": "Born", "data": {"n": 1}}]'
wait_for "$slow" "SELECT count(*) = 1 FROM model.counted" 5 || true
check "and the other projections go on" "$(psql_in "$slow" -c "SELECT count(*) FROM model.counted")" 1
check "in the same worker" "$(worker_pid "$slow")" "$slow_pid"

# 4. Session-level advisory locks taken by handlers.
append "$db" lock-1 '[{"type": "Locked", "data": {"key": 4242, "n": 1}}, {"type": "Bad", "data": {"key": 4343, "n": 2}}]'
wait_for "$db" "SELECT events_behind = 0 FROM eventsource.projection_status WHERE name = 'locker'" || true
check "the handler ran" "$(psql_db -c "SELECT (SELECT string_agg(n::text, ',') FROM model.handled WHERE stream_id = 'lock-1'),
                                              (SELECT count(*) FROM eventsource.projection_dead_letters WHERE projection_name = 'locker')")" "1|1"
check "a handler's session-level advisory lock ends with its turn" \
  "$(psql_db -c "SELECT pg_try_advisory_lock(4242)")" t
check "and with its failed turn" "$(psql_db -c "SELECT pg_try_advisory_lock(4343)")" t
check "the worker kept its pid" "$(worker_pid "$db")" "$pid"
check "and never exited" "$(exits)" 0

# 5. A projection of a rare event type, behind 400,000 events of others.
sparse=es_faults_sparse
"$bin/createdb" "$sparse"
psql_in "$sparse" -c "ALTER DATABASE $sparse SET statement_timeout = '40ms'"
counter "$sparse"
psql_in "$sparse" -c "SELECT count(eventsource.append_events('filler-' || g, (SELECT jsonb_agg(jsonb_build_object('type', 'Filler', 'data', '{}'::jsonb))
                                                                         FROM generate_series(1, 1000))))
                        FROM generate_series(1, 400) AS g" -c "VACUUM ANALYZE eventsource.events" > /dev/null
psql_in "$sparse" > /dev/null <<'SQL'
CREATE TABLE model.rare (position bigint PRIMARY KEY);
CREATE FUNCTION model.note_rare(e eventsource.event) RETURNS void LANGUAGE sql AS
  $$INSERT INTO model.rare VALUES (e.global_position)$$;
SELECT eventsource.append('rare-1', 'Rare', '{}');
SELECT eventsource.create_projection('rare', 'model.note_rare(eventsource.event)', event_types => ARRAY['Rare'],
                                     mode => 'async');
SQL
wait_for "$sparse" "SELECT count(*) = 1 FROM model.rare" 20 || true
check "a projection of a rare type projects its event behind 400,000 others, in windows" \
  "$(psql_in "$sparse" -c "SELECT (SELECT count(*) FROM model.rare), events_processed, last_error FROM eventsource.projection_status WHERE name = 'rare'")" "1|1|"
check "with no transaction of the worker running into statement_timeout" \
  "$(logged 'async projection "rare"\|projection "rare" failed')" 0

# 6. pg_cancel_backend of the worker.
psql_db > /dev/null <<'SQL'
CREATE FUNCTION model.nap(e eventsource.event) RETURNS void LANGUAGE sql AS $$SELECT pg_sleep(30)$$;
SELECT eventsource.create_projection('napper', 'model.nap(eventsource.event)', category => 'nap',
                                     mode => 'async', on_failure => 'dead_letter', max_attempts => 1);
SQL
sleep 1
psql_db -c "SELECT pg_cancel_backend($pid)" > /dev/null
sleep 1
check "a cancel of the waiting worker cancels nothing: it keeps its pid" "$(worker_pid "$db")" "$pid"
append "$db" nap-1 '[{"type": "Napped", "data": {}}]'
wait_for "$db" "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid AND wait_event = 'PgSleep')" 5 || true
psql_db -c "SELECT pg_cancel_backend($pid)" > /dev/null
wait_for "$db" "SELECT count(*) = 1 FROM eventsource.projection_dead_letters WHERE projection_name = 'napper'" 5 || true
check "a cancel of a handler fails its turn, a failure of its projection" \
  "$(psql_db -c "SELECT string_agg(error, ',') FROM eventsource.projection_dead_letters WHERE projection_name = 'napper'")" \
  "canceling statement due to user request"
check "and the worker keeps its pid" "$(worker_pid "$db")" "$pid"
check "and never exited" "$(exits)" 0

finish worker_faults
