#!/usr/bin/env bash
# launcher.sh: with eventsource.worker_databases not set, the notifier serves every database in which
# the extension is installed, on a cluster of its own (log_min_messages = debug1, so that the server
# log names every worker the postmaster starts: "starting background worker process").
# - A database without the extension is looked at once, when it appears, by a worker that exits at
#   once; no worker stays there, and none starts there again over the launcher's rounds, until an
#   extension (any) is created there.
# - CREATE EXTENSION starts its database's worker within a second: notifier_status shows it, and a
#   LISTEN client hears of an append. A CREATE EXTENSION that is rolled back starts nothing.
# - CREATE DATABASE ... TEMPLATE a served database succeeds and the copy is served. template1 with
#   the extension is not served (a template is served only when listed); a database made from it is.
# - DROP EXTENSION stops the worker within a second, and none starts there again until CREATE
#   EXTENSION; DROP SCHEMA eventsource CASCADE does the same; one rolled back to a savepoint does
#   not; DROP DATABASE of a served database succeeds at once.
# - eventsource.worker_databases restricts the list (a reload): only the listed databases are served;
#   its old name eventsource.notify_databases does too while the new one is left at '*';
#   a listed template1 is served, and CREATE DATABASE from it still succeeds.
# - A restart finds every database with the extension again.
# - eventsource.max_databases bounds the databases served: those beyond wait, with a WARNING, and one
#   is served once a slot is free.
# Binaries from EVENTSOURCE_PG_BIN (default the system's 15); port EVENTSOURCE_LAUNCHER_PORT, or
# PGPORT + 27.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
run_as_postgres "$@"
bin=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
port=${EVENTSOURCE_LAUNCHER_PORT:-$((${PGPORT:-5432} + 27))}
work=$(mktemp -d)
log=$work/server.log
cleanup() { "$bin/pg_ctl" -D "$work/data" -m immediate stop > /dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

preloaded_cluster "$work/data" "$port" "$work" ""
cat >> "$work/data/postgresql.conf" <<CONF
log_min_messages = debug1
max_worker_processes = 16
# Nothing here needs durability; the checkpoint of DROP DATABASE would flush every database made.
fsync = off
CONF
"$bin/pg_ctl" -D "$work/data" -l "$log" -w start > /dev/null
psql_db() { local db=$1; shift; "$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -h "$work" -p "$port" -U postgres -d "$db" "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
epoch_ms_sql="(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
# exit_logged_ms PID: when, in ms since the epoch, the postmaster logged the exit of worker PID.
exit_logged_ms() {
  local at
  at=$(grep "background worker \"eventsource notifier\" (PID $1) exited" "$log" | cut -d' ' -f1-3)
  date -d "$at" +%s%3N
}
# starts DB: how many workers the postmaster has started in DB.
starts() { grep -c "starting background worker process \"eventsource notifier for database $1\"" "$log" || true; }
# served: the databases that have a worker now, comma-separated.
served() { psql_db postgres -c "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_stat_activity WHERE backend_type = 'eventsource notifier'"; }
# served_after EXPECTED: waits up to 10 s until served prints EXPECTED; prints what it printed last.
served_after() {
  local now
  for _ in $(seq 200); do
    now=$(served)
    [ "$now" = "$1" ] && break
    sleep 0.05
  done
  echo "$now"
}
# worker_pid DB: the pid of DB's worker once it runs (waits up to 10 s), or "none".
worker_pid() { output_within 10 psql_db postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'eventsource notifier' AND datname = '$1'"; }
# worker_gone DB: "gone" once DB has no worker (waits up to 10 s), else "running".
worker_gone() {
  [ "$(output_within 10 psql_db postgres -c "SELECT 'gone' WHERE NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'eventsource notifier' AND datname = '$1')")" = gone ] \
    && echo gone || echo running
}
# notifies DB: t when a LISTEN client of DB hears of its own append within 20 s.
notifies() { hears_own_append psql_db "$1"; }

# A database without the extension: looked at once, by a worker that does not stay.
psql_db postgres -c "CREATE DATABASE es_none"
sleep 1.5
check "a new database is looked at once" "$(starts es_none)" 1
check "and, without the extension, keeps no worker" "$(worker_gone es_none)" gone
sleep 6
check "nor is it looked at again over the launcher's rounds (every 5 s)" "$(starts es_none)" 1
psql_db es_none -c "CREATE EXTENSION pg_trgm"
sleep 1.5
check "CREATE EXTENSION of another extension has it looked at once more, and no worker stays" \
  "$(starts es_none)|$(worker_gone es_none)" "2|gone"

# CREATE EXTENSION starts the worker within a second.
psql_db postgres -c "CREATE DATABASE es_auto"
# The launcher looks at a database no more than once a second, and it has just looked at this one.
sleep 1.5
# Both ends are read off the server's clock (before the statement, the worker's backend_start), so that the
# time psql takes to start on a busy machine is not counted.
created_at=$(psql_db es_auto -c "SELECT $epoch_ms_sql" -c "CREATE EXTENSION eventsource")
pid=$(worker_pid es_auto)
elapsed_ms=$(( $(psql_db postgres -c "SELECT (extract(epoch FROM backend_start) * 1000)::bigint FROM pg_stat_activity WHERE pid = $pid") - created_at ))
check "CREATE EXTENSION starts the database's worker" "$([ "$pid" != none ] && echo running)" running
check "within a second ($elapsed_ms ms)" "$([ "$elapsed_ms" -lt 1000 ] && echo promptly)" promptly
check "notifier_status shows it" "$(psql_db es_auto -c "SELECT database_name, pid = $pid, paused FROM eventsource.notifier_status()")" "es_auto|t|f"
check "a LISTEN client hears of an append" "$(notifies es_auto)" t
check "an async projection needs no setting: create_projection does not warn" \
  "$(psql_db es_auto -c "CREATE FUNCTION public.seen(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT'" \
     -c "SELECT eventsource.create_projection('seen', 'public.seen(eventsource.event)', mode => 'async')" 2>&1)" ""

# A CREATE EXTENSION rolled back starts nothing.
psql_db postgres -c "CREATE DATABASE es_rollback"
sleep 1.5
before=$(starts es_rollback)
psql_db es_rollback <<'SQL'
BEGIN;
CREATE EXTENSION eventsource;
ROLLBACK;
SQL
sleep 1.5
check "a CREATE EXTENSION rolled back starts no worker" "$(( $(starts es_rollback) - before ))|$(worker_gone es_rollback)" "0|gone"

# CREATE DATABASE ... TEMPLATE a served database.
psql_db postgres -c "CREATE DATABASE es_copy TEMPLATE es_auto"
check "CREATE DATABASE ... TEMPLATE a served database succeeds, and the copy is served" \
  "$([ "$(worker_pid es_copy)" != none ] && echo running)" running
check "a LISTEN client of the copy hears of an append" "$(notifies es_copy)" t
check "the template's worker runs again" "$([ "$(worker_pid es_auto)" != none ] && echo running)" running

# template1 with the extension is not served; a database made from it is.
psql_db template1 -c "CREATE EXTENSION eventsource"
sleep 1.5
check "template1 with the extension is not served, nor looked at" "$(starts template1)|$(worker_gone template1)" "0|gone"
psql_db postgres -c "CREATE DATABASE es_from_template1"
check "a database made from it is served" "$([ "$(worker_pid es_from_template1)" != none ] && echo running)" running

# DROP EXTENSION stops the worker within a second, and none starts until CREATE EXTENSION.
# The server's clock before the statement, and the worker's exit as the postmaster logged it (%m).
pid=$(worker_pid es_auto)
dropped_at=$(psql_db es_auto -c "SET client_min_messages = warning" -c "SELECT $epoch_ms_sql" -c "DROP EXTENSION eventsource CASCADE")
gone=$(worker_gone es_auto)
elapsed_ms=$(( $(exit_logged_ms "$pid") - dropped_at ))
check "DROP EXTENSION stops the database's worker" "$gone" gone
check "within a second ($elapsed_ms ms)" "$([ "$elapsed_ms" -lt 1000 ] && echo promptly)" promptly
check "notifier_status no longer shows the database" \
  "$(psql_db es_copy -c "SELECT count(*) FROM eventsource.notifier_status() WHERE database_name = 'es_auto'")" 0
sleep 1
before=$(starts es_auto)
sleep 6
check "no worker starts there again over the launcher's rounds" "$(( $(starts es_auto) - before ))|$(worker_gone es_auto)" "0|gone"
psql_db es_auto -c "CREATE EXTENSION eventsource"
check "CREATE EXTENSION again serves it" "$([ "$(worker_pid es_auto)" != none ] && echo running)" running
check "a LISTEN client hears of an append to its new log" "$(notifies es_auto)" t
psql_db es_copy -c "DROP SCHEMA eventsource CASCADE" 2> /dev/null
check "DROP SCHEMA eventsource CASCADE, which drops the extension, stops the worker too" "$(worker_gone es_copy)" gone

# A DROP EXTENSION rolled back to a savepoint leaves the database served.
psql_db es_from_template1 <<'SQL'
SET client_min_messages = warning;
BEGIN;
SAVEPOINT before_drop;
DROP EXTENSION eventsource;
ROLLBACK TO SAVEPOINT before_drop;
COMMIT;
SQL
sleep 1
check "a DROP EXTENSION rolled back to a savepoint leaves the database served" \
  "$([ "$(worker_pid es_from_template1)" != none ] && echo running)|$(notifies es_from_template1)" "running|t"

# DROP DATABASE of a served database.
psql_db es_copy -c "CREATE EXTENSION eventsource"
check "es_copy is served again" "$([ "$(worker_pid es_copy)" != none ] && echo running)" running
dropping_at=$(now_ms)
psql_db postgres -c "DROP DATABASE es_copy"
elapsed_ms=$(( $(now_ms) - dropping_at ))
check "DROP DATABASE of a served database succeeds at once ($elapsed_ms ms)" \
  "$([ "$elapsed_ms" -lt 4000 ] && echo fast)|$(worker_gone es_copy)" "fast|gone"

# eventsource.worker_databases restricts the list; a listed template is served.
psql_db postgres -c "CREATE DATABASE es_listed TEMPLATE template0"
psql_db es_listed -c "CREATE EXTENSION eventsource"
check "before the setting, every database with the extension is served" \
  "$(served_after es_auto,es_from_template1,es_listed)" es_auto,es_from_template1,es_listed
psql_db postgres -c "ALTER SYSTEM SET eventsource.worker_databases = 'es_listed, template1'" -c "SELECT pg_reload_conf()" > /dev/null
check "with eventsource.worker_databases set, only the databases it lists are served" \
  "$(served_after es_listed,template1)" es_listed,template1
check "CREATE DATABASE from a served template1 succeeds" "$(psql_db postgres -c "CREATE DATABASE es_unlisted" 2>&1)" ""
check "template1's worker runs again" "$([ "$(worker_pid template1)" != none ] && echo running)" running
sleep 1.5
check "the new database, not listed, is not served, nor looked at, though it has the extension" \
  "$(starts es_unlisted)|$(served)" "0|es_listed,template1"

# The old name, eventsource.notify_databases, still restricts the list while the new one is left
# at its default, and the new one wins when both are set.
psql_db postgres -c "ALTER SYSTEM RESET eventsource.worker_databases" \
  -c "ALTER SYSTEM SET eventsource.notify_databases = 'es_listed'" -c "SELECT pg_reload_conf()" > /dev/null
check "eventsource.notify_databases, the old name, restricts the list" "$(served_after es_listed)" es_listed
psql_db postgres -c "ALTER SYSTEM SET eventsource.worker_databases = 'es_auto'" -c "SELECT pg_reload_conf()" > /dev/null
check "eventsource.worker_databases wins over the old name" "$(served_after es_auto)" es_auto

# A restart finds every database with the extension again.
psql_db postgres -c "ALTER SYSTEM RESET eventsource.worker_databases" \
  -c "ALTER SYSTEM RESET eventsource.notify_databases" > /dev/null
before=$(starts es_none)
"$bin/pg_ctl" -D "$work/data" -l "$log" -w restart > /dev/null
check "after a restart every database with the extension is served" \
  "$(served_after es_auto,es_from_template1,es_listed,es_unlisted)" es_auto,es_from_template1,es_listed,es_unlisted
check "and a database without it was looked at once more" "$(sleep 1; echo $(( $(starts es_none) - before )))" 1

# eventsource.max_databases = 2: two of the four are served, the others wait with a WARNING.
echo "eventsource.max_databases = 2" >> "$work/data/postgresql.conf"
lines_before=$(wc -l < "$log")
"$bin/pg_ctl" -D "$work/data" -l "$log" -w restart > /dev/null
sleep 3
now_served=$(served)
check "with eventsource.max_databases = 2, two databases are served" "$(echo "$now_served" | tr ',' '\n' | grep -c .)" 2
check "and those waiting are named in a WARNING" \
  "$(tail -n +"$((lines_before + 1))" "$log" | grep -A1 'WARNING:  eventsource notifier cannot serve database' | grep -c 'DETAIL:  All 2 slots of eventsource.max_databases serve other databases')" \
  "$(tail -n +"$((lines_before + 1))" "$log" | grep -c 'WARNING:  eventsource notifier cannot serve database')"
check "at least one" "$([ "$(tail -n +"$((lines_before + 1))" "$log" | grep -c 'WARNING:  eventsource notifier cannot serve database')" -ge 1 ] && echo warned)" warned
first=${now_served%%,*}
psql_db "$first" -c "DROP EXTENSION eventsource CASCADE"
sleep 3
after_drop=$(served)
check "once one drops the extension, another database takes its slot" \
  "$(echo "$after_drop" | tr ',' '\n' | grep -c .)|$(echo ",$after_drop," | grep -c ",$first,")" "2|0"

check "the server log has no ERROR" "$(grep -c 'ERROR:' "$log" || true)" 0
finish launcher
