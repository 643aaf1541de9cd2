#!/usr/bin/env bash
# rename_commit_window.sh: an inline append that runs while the transaction renaming its
# projection's handler is between its commit becoming visible and its catalog invalidations being
# sent (held there by gdb, at AtEOXact_Inval) does not fail: it waits for the rename to end, then
# runs the handler under its new name. The appending session has looked up the new name before
# (the lookup is cached as naming no function), as any session does that appended during earlier
# renames. rename_during_appends.sh runs into this window only by chance, on a loaded machine.
# Runs on the cluster of PGHOST/PGPORT (psql from PATH), in a database of its own; needs gdb and
# the right to attach to the server's processes (root, or the server's own user).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
db=es_rename_commit_window
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

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" > /dev/null <<'SQL'
CREATE EXTENSION eventsource;
CREATE SCHEMA app;
CREATE TABLE app.seen (global_position bigint PRIMARY KEY);
CREATE FUNCTION app.h(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO app.seen VALUES (e.global_position)';
SELECT eventsource.create_projection('p', 'app.h(eventsource.event)');
SQL

exec 3> >(exec psql -X -q -At -d "$db" > "$work/renamer.out" 2>&1)
exec 4> >(exec psql -X -q -At -d "$db" > "$work/appender.out" 2>&1)
echo "SELECT pg_backend_pid() \\g $work/renamer.pid" >&3
echo "SELECT pg_backend_pid() \\g $work/appender.pid" >&4
echo "SELECT eventsource.append('s-1', 'X', '{}'); SELECT to_regprocedure('app.h_tmp(eventsource.event)');" >&4
echo "BEGIN; ALTER FUNCTION app.h(eventsource.event) RENAME TO h_tmp; \\o $work/altered" >&3
echo "SELECT 1; \\o" >&3
wait_for "$work/renamer.pid"
wait_for "$work/altered"
sleep 0.5

if ! command -v gdb > /dev/null; then
  echo "ok - skipped: gdb is not installed"
  finish rename_commit_window
  exit
fi
gdb -p "$(tr -d ' \n' < "$work/renamer.pid")" -batch -ex "break AtEOXact_Inval" \
  -ex "shell touch $work/attached" -ex continue -ex "shell touch $work/stopped" \
  -ex "shell while [ ! -e $work/go ]; do sleep 0.1; done" -ex detach > "$work/gdb.out" 2>&1 &
gdb_pid=$!
if ! wait_for "$work/attached"; then
  echo "ok - skipped: gdb cannot attach to the server's processes here"
  sed 's/^/# /' "$work/gdb.out"
  finish rename_commit_window
  exit
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
check "and appends the event" "$(cat "$work/appended" 2> /dev/null | tr -d ' \n')" 2
check "the handler ran under its new name for both events" \
  "$(psql -X -At -d "$db" -c "SELECT count(*) FROM app.seen")" 2
psql -X -q -d postgres -c "DROP DATABASE $db"
finish rename_commit_window
