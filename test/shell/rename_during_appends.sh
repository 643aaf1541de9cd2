#!/usr/bin/env bash
# rename_during_appends.sh: renaming an inline projection's handler never fails an append running
# at the same time, and the read model holds every event:
# - at random: 3 pgbench appenders and 1 renamer renaming the handler back and forth for
#   RENAME_SECONDS (default 8);
# - in the one window that random runs hit only by chance on a loaded machine: an append while the
#   renaming transaction is between its commit becoming visible and its catalog invalidations being
#   sent (held there by gdb, at AtEOXact_Inval), by a session that has looked up the new name before
#   (its lookup is cached as naming no function). The append waits for the rename to end, then runs
#   the handler under its new name. This part needs gdb and the right to attach to the server's
#   processes (root, or the server's own user), and says it skipped otherwise.
# Runs on the cluster of PGHOST/PGPORT (pgbench and psql from PATH), in a database of its own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
db=es_rename_during_appends
seconds=${RENAME_SECONDS:-8}
work=$(mktemp -d)
gdb_pid=
cleanup() {
  [ -n "$gdb_pid" ] && { touch "$work/go"; wait "$gdb_pid" 2> /dev/null || true; }
  exec 3>&- 4>&- 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# waits (up to 20 s) until the file $1 exists
wait_for() { for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
# skip WHY: the gdb part cannot run here
skip() {
  echo "ok - skipped: $1"
  psql -X -q -d postgres -c "DROP DATABASE $db WITH (FORCE)"
  finish rename_during_appends
  exit
}
read_model_complete() {
  psql -X -At -d "$db" -c "SELECT (SELECT count(*) FROM eventsource.events) = (SELECT count(*) FROM app.seen)"
}

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" > /dev/null <<'SQL'
CREATE EXTENSION eventsource;
CREATE SCHEMA app;
CREATE TABLE app.seen (global_position bigint PRIMARY KEY);
CREATE FUNCTION app.h(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO app.seen VALUES (e.global_position)';
SELECT eventsource.create_projection('p', 'app.h(eventsource.event)');
SQL
echo "SELECT eventsource.append('s-' || (random() * 1000)::int, 'X', jsonb_build_object());" > "$work/append.sql"
printf '%s\n' 'ALTER FUNCTION app.h(eventsource.event) RENAME TO h_tmp;' \
  'ALTER FUNCTION app.h_tmp(eventsource.event) RENAME TO h;' > "$work/rename.sql"
pgbench -n -T "$seconds" -c 1 -f "$work/rename.sql" "$db" > "$work/rename.out" 2>&1 &
renamer=$!
pgbench -n -T "$seconds" -c 3 -f "$work/append.sql" "$db" > "$work/append.out" 2>&1 || true
wait "$renamer" || true

check "no append failed" "$(grep -c 'aborted in command' "$work/append.out" || true)" 0
grep 'aborted in command' "$work/append.out" | sort -u | head -3 || true
check "the renamer ran" "$(grep -c 'aborted in command' "$work/rename.out" || true)" 0
check "the read model holds every event" "$(read_model_complete)" t

exec 3> >(exec psql -X -q -At -d "$db" > "$work/renamer.out" 2>&1)
exec 4> >(exec psql -X -q -At -d "$db" > "$work/appender.out" 2>&1)
echo "SELECT pg_backend_pid() \\g $work/renamer.pid" >&3
echo "SELECT pg_backend_pid() \\g $work/appender.pid" >&4
echo "SELECT eventsource.append('s-1', 'X', '{}') \\g /dev/null
SELECT to_regprocedure('app.h_tmp(eventsource.event)');" >&4
echo "BEGIN; ALTER FUNCTION app.h(eventsource.event) RENAME TO h_tmp; \\o $work/altered" >&3
echo "SELECT 1; \\o" >&3
wait_for "$work/renamer.pid"
wait_for "$work/altered"
sleep 0.5

command -v gdb > /dev/null || skip "gdb is not installed"
gdb -p "$(tr -d ' \n' < "$work/renamer.pid")" -batch -ex "break AtEOXact_Inval" \
  -ex "shell touch $work/attached" -ex continue -ex "shell touch $work/stopped" \
  -ex "shell while [ ! -e $work/go ]; do sleep 0.1; done" -ex detach > "$work/gdb.out" 2>&1 &
gdb_pid=$!
if ! wait_for "$work/attached"; then
  sed 's/^/# /' "$work/gdb.out"
  skip "gdb cannot attach to the server's processes here"
fi
echo "COMMIT;" >&3
check "the rename stops between its commit and its invalidations" "$(wait_for "$work/stopped" && echo t)" t
check "its commit is visible" \
  "$(psql -X -At -d "$db" -c "SELECT to_regprocedure('app.h_tmp(eventsource.event)') IS NOT NULL")" t

echo "SELECT eventsource.append('s-1', 'X', '{}') \\g $work/appended" >&4
appender=$(tr -d ' \n' < "$work/appender.pid")
waits=f
for _ in $(seq 100); do
  waits=$(psql -X -At -d "$db" -c "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $appender")
  [ "$waits" = t ] && break
  [ -e "$work/appended" ] && break
  sleep 0.1
done
check "the append waits for the rename to end" "$waits" t
touch "$work/go"
wait "$gdb_pid" || true
gdb_pid=
echo "\\q" >&4
echo "\\q" >&3
exec 3>&- 4>&-
wait_for "$work/appended" || true
sleep 0.5
check "the append does not fail" "$(grep -c ERROR "$work/appender.out" || true)" 0
grep ERROR -A1 "$work/appender.out" || true
check "and appends the event" "$(grep -c . "$work/appended" 2> /dev/null || true)" 1
check "the handler ran under its new name: the read model holds every event" "$(read_model_complete)" t
psql -X -q -d postgres -c "DROP DATABASE $db"
finish rename_during_appends
