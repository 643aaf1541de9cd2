#!/usr/bin/env bash
# rename_during_appends.sh: renaming an inline projection's handler back and forth never fails an
# append running at the same time (3 pgbench appenders, 1 renamer, RENAME_SECONDS, default 8): each
# append runs the handler under whichever name it has, and the read model holds every event.
# Runs on the cluster of PGHOST/PGPORT (pgbench and psql from PATH), in a database of its own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
db=es_rename_during_appends
seconds=${RENAME_SECONDS:-8}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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
check "the read model holds every event" \
  "$(psql -X -At -d "$db" -c "SELECT (SELECT count(*) FROM eventsource.events) = (SELECT count(*) FROM app.seen)")" t
psql -X -q -d postgres -c "DROP DATABASE $db"
finish rename_during_appends
