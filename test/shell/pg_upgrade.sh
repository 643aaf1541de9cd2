#!/usr/bin/env bash
# pg_upgrade.sh: pg_upgrade of a cluster with an event log into a freshly initdb'd one (issue 14,
# item 1): the log is readable in its original order, new appends come after it, a subscription
# acknowledged part way resumes right after its acknowledgement, and an async projection continues.
# pg_upgrade copies the transaction counter but the new cluster has a system identifier of its own,
# so the first append starts a log epoch of the new cluster ('other cluster').
# pg_upgrade refuses user tables with columns of type regprocedure; until the projections' handler
# column is text, the projection part is left out and the test says so.
# Binaries from EVENTSOURCE_PG_BIN (default the system's 15); ports from EVENTSOURCE_UPGRADE_PORT on.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
run_as_postgres "$@"
bin=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
old_port=${EVENTSOURCE_UPGRADE_PORT:-$((${PGPORT:-5432} + 24))}
new_port=$((old_port + 1))
work=$(mktemp -d)

cleanup() {
  for name in old new; do "$bin/pg_ctl" -D "$work/$name" -m immediate stop > /dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

new_cluster() { preloaded_cluster "$work/$1" "$2" "$work" es_upgrade; } # new_cluster NAME PORT
on() { local port=$1; shift; "$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -h "$work" -p "$port" -U postgres -d es_upgrade "$@"; }
wait_for() { # wait_for PORT QUERY: until QUERY returns t (20 s at most)
  for _ in $(seq 200); do [ "$(on "$1" -c "$2")" = t ] && return 0; sleep 0.1; done
  return 1
}

new_cluster old "$old_port"
"$bin/pg_ctl" -D "$work/old" -l "$work/old.log" -w start > /dev/null
"$bin/createdb" -h "$work" -p "$old_port" -U postgres es_upgrade
on "$old_port" > /dev/null <<'SQL'
CREATE EXTENSION eventsource;
CREATE SCHEMA model;
CREATE TABLE model.seen (n int PRIMARY KEY);
CREATE FUNCTION model.see(e eventsource.event) RETURNS void LANGUAGE sql AS
  'INSERT INTO model.seen VALUES ((e.data->>''n'')::int)';
SELECT eventsource.create_subscription('billing');
SQL
handler_type=$(on "$old_port" -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'eventsource.projections'::regclass AND attname = 'handler'")
with_projection=$([ "$handler_type" = text ] && echo yes || echo no)
if [ "$with_projection" = yes ]; then
  on "$old_port" -c "SELECT eventsource.create_projection('seen', 'model.see(eventsource.event)', mode => 'async')" > /dev/null
else
  echo "# projections.handler is $handler_type, which pg_upgrade refuses: the projection part is left out"
fi
for n in $(seq 1 50); do echo "SELECT eventsource.append('order-$((n % 5))', 'OrderEvent', '{\"n\": $n}');"; done | on "$old_port" > /dev/null
on "$old_port" -c "SELECT eventsource.ack('billing', b.checkpoint, 0, b.lease) FROM (SELECT checkpoint, lease FROM eventsource.poll('billing', 20) ORDER BY checkpoint DESC LIMIT 1) AS b" > /dev/null
if [ "$with_projection" = yes ]; then
  check "old cluster: the async projection has caught up" "$(wait_for "$old_port" "SELECT count(*) = 50 FROM model.seen" && echo t)" t
fi
original=$(on "$old_port" -c "SELECT string_agg(data->>'n', ',' ORDER BY checkpoint) FROM eventsource.read_all()")
"$bin/pg_ctl" -D "$work/old" -m fast stop > /dev/null

new_cluster new "$new_port"
upgraded=$(cd "$work" && "$bin/pg_upgrade" -b "$bin" -B "$bin" -d "$work/old" -D "$work/new" \
  -p "$old_port" -P "$new_port" -U postgres -s "$work" > "$work/pg_upgrade.out" 2>&1 && echo t || echo f)
check "pg_upgrade succeeds" "$upgraded" t
[ "$upgraded" = t ] || { grep -B2 -A4 -i 'fatal\|failure\|checking for reg' "$work/pg_upgrade.out" | head -20; finish pg_upgrade; }
"$bin/pg_ctl" -D "$work/new" -l "$work/new.log" -w start > /dev/null

check "the new cluster has another system identifier" \
  "$(on "$new_port" -c "SELECT bool_and(system_identifier <> (SELECT system_identifier FROM pg_control_system())) FROM eventsource.log_epochs")" t
check "read_all shows the whole log in its original order" \
  "$(on "$new_port" -c "SELECT string_agg(data->>'n', ',' ORDER BY checkpoint) FROM eventsource.read_all()")" "$original"
last=$(on "$new_port" -c "SELECT checkpoint FROM eventsource.read_all() ORDER BY checkpoint DESC LIMIT 1")
on "$new_port" -c "SELECT eventsource.append('order-1', 'OrderEvent', '{\"n\": 51}')" > /dev/null
check "a new append comes after the upgraded log" \
  "$(on "$new_port" -c "SELECT string_agg(data->>'n', ',') FROM eventsource.read_all('$last')")" 51
check "the subscription resumes right after its acknowledgement" \
  "$(on "$new_port" -c "SELECT min((data->>'n')::int) || '..' || max((data->>'n')::int) || ':' || count(*) FROM eventsource.poll('billing', 1000)")" "21..51:31"
if [ "$with_projection" = yes ]; then
  check "the async projection continues with the new event" \
    "$(wait_for "$new_port" "SELECT count(*) = 51 FROM model.seen" && echo t)" t
fi
check "the first append started an epoch of the new cluster" \
  "$(on "$new_port" -c "SELECT reason FROM eventsource.log_epochs ORDER BY epoch DESC LIMIT 1")" "other cluster"

finish pg_upgrade
