#!/usr/bin/env bash
# worker_memory.sh: the worker holds one event at a time. An async projection catches up over
# 1.5 GB of events (200 of 5 MiB and two of 250 MiB, near jsonb's 255 MiB limit, all appended before
# the projection exists, so that it meets them in one go); its handler sees every one of them, and
# the worker's peak memory (VmHWM of /proc/PID/status) grows by less than three times the largest
# event, whatever the number of events behind. On a cluster of its own: binaries from
# EVENTSOURCE_PG_BIN (default the system's 15), port EVENTSOURCE_WORKER_MEMORY_PORT (default
# PGPORT + 28).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
run_as_postgres "$@"
bin=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
port=${EVENTSOURCE_WORKER_MEMORY_PORT:-$((${PGPORT:-5432} + 28))}
work=$(mktemp -d)
cleanup() { "$bin/pg_ctl" -D "$work/data" -m immediate stop > /dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

preloaded_cluster "$work/data" "$port" "$work" es_memory
"$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w start > /dev/null
unset PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS
export PGHOST=$work PGPORT=$port PGUSER=postgres
db=es_memory
psql_db() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
"$bin/createdb" "$db"

large=262144000   # 250 MiB of data
medium=5242880    # 5 MiB
psql_db > /dev/null <<SQL
CREATE EXTENSION eventsource;
CREATE SCHEMA model;
CREATE TABLE model.sizes (global_position bigint PRIMARY KEY, bytes bigint NOT NULL);
-- The handler sees the whole event, without copying it again.
CREATE FUNCTION model.measure(e eventsource.event) RETURNS void LANGUAGE sql AS
  'INSERT INTO model.sizes VALUES (e.global_position, pg_catalog.pg_column_size(e.data))';
SELECT count(*) FROM (SELECT eventsource.append('medium-' || n, 'Blob', jsonb_build_object('blob', repeat('m', $medium)))
                        FROM generate_series(1, 100) AS n) AS appended;
SELECT eventsource.append('large-1', 'Blob', jsonb_build_object('blob', repeat('l', $large)));
SELECT count(*) FROM (SELECT eventsource.append('medium-' || n, 'Blob', jsonb_build_object('blob', repeat('m', $medium)))
                        FROM generate_series(101, 200) AS n) AS appended;
SELECT eventsource.append('large-2', 'Blob', jsonb_build_object('blob', repeat('l', $large)));
SQL
pid=$(for _ in $(seq 200); do p=$(psql_db -c "SELECT pid FROM eventsource.notifier_status() WHERE database_name = '$db'"); [ -n "$p" ] && { echo "$p"; break; }; sleep 0.1; done)
peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$pid/status"; }
before=$(peak_kib)
start=$(date +%s)
psql_db -c "SELECT eventsource.create_projection('measure', 'model.measure(eventsource.event)', mode => 'async')" > /dev/null
for _ in $(seq 900); do
  [ "$(psql_db -c "SELECT events_behind = 0 FROM eventsource.projection_status WHERE name = 'measure'")" = t ] && break
  sleep 0.1
done
after=$(peak_kib)
total_mib=$(psql_db -c "SELECT (sum(bytes) / 1048576)::bigint FROM model.sizes")
grown_mib=$(( (after - before) / 1024 ))
echo "# the handler saw $total_mib MiB of events in $(( $(date +%s) - start )) s; the worker's peak memory grew from $((before / 1024)) MiB by $grown_mib MiB"
check "the async projection catches up over every event" \
  "$(psql_db -c "SELECT status, events_processed, count(*) FILTER (WHERE bytes > $large) FROM eventsource.projection_status, model.sizes WHERE name = 'measure' GROUP BY 1, 2")" \
  "running|202|2"
check "the worker's peak memory grows by less than three times the largest event" \
  "$([ "$grown_mib" -lt $((3 * large / 1048576)) ] && echo within || echo "$grown_mib MiB")" within
check "the worker kept its pid" "$(psql_db -c "SELECT pid FROM eventsource.notifier_status() WHERE database_name = '$db'")" "$pid"

finish worker_memory
