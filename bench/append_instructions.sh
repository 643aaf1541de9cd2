#!/usr/bin/env bash
# bench/append_instructions.sh: the CPU instructions one eventsource.append costs, counted by
# valgrind's callgrind on a single-user backend (no other process, no timing noise), and beside
# them the catalog lookups by name that eventsource makes per append (a schema, a relation or a
# column looked up in the syscache: get_namespace_oid, get_relname_relid, get_attnum). One stream
# per database, any expected version, one event per append, one append per transaction (each a
# statement of its own), after a warm-up that prepares the plans and starts the log epoch; every
# run starts from a copy of the same cluster.
#
# Measured in the same run, each in a database of its own:
#   current   a fresh install of the current version: its functions call the versioned entry
#             points (eventsource_append_0_8), which know the schema they serve
#   0.7.0     a database still at 0.7.0: the entry points of before 0.8.0 (eventsource_append),
#             which ask the catalog which schema is installed
#   raw       a raw INSERT of the same row into a copy of eventsource.events (its indexes and
#             defaults), the physical floor
# An append costs (instructions of warm-up + N appends - instructions of warm-up alone) / N.
#
#   bench/append_instructions.sh [N]      N appends per measurement (default 10000)
#
# Needs valgrind. Runs on a throwaway cluster of its own in a temporary directory, with the
# binaries of EVENTSOURCE_PG_BIN (default: pg_config --bindir) and the eventsource they have
# installed; as root it runs itself again as postgres.
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then
  exec runuser -u postgres -- env EVENTSOURCE_PG_BIN="${EVENTSOURCE_PG_BIN:-}" bash "$0" "$@"
fi
count=${1:-10000}
warm_up=200
bin=${EVENTSOURCE_PG_BIN:-$(pg_config --bindir)}
work=$(mktemp -d /tmp/eventsource-instructions.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$bin/initdb" -D "$work/data" -A trust -U postgres --locale=C.UTF-8 > /dev/null
cat >> "$work/data/postgresql.conf" <<CONF
shared_preload_libraries = 'eventsource'
fsync = off
CONF

# single_user DATABASE SCRIPT: runs SCRIPT's statements, one a line, in a single-user backend.
single_user() {
  "$bin/postgres" --single -D "$work/data" -c log_min_messages=fatal "$1" < "$2" > "$work/out" 2>&1 ||
    { cat "$work/out" >&2; exit 1; }
}

setup="$work/setup.sql"
cat > "$setup" <<'SQL'
CREATE EXTENSION eventsource
CREATE TABLE raw_events (LIKE eventsource.events INCLUDING ALL)
SQL
printf 'CREATE DATABASE current_version\nCREATE DATABASE version_0_7\nCREATE DATABASE raw\n' > "$work/databases.sql"
single_user postgres "$work/databases.sql"
single_user current_version "$setup"
printf "CREATE EXTENSION eventsource VERSION '0.7.0'\n" > "$work/setup_0_7.sql"
single_user version_0_7 "$work/setup_0_7.sql"
single_user raw "$setup"

# append_lines FIRST LAST: appends FIRST to LAST to stream bench-1; raw_lines the same as INSERTs.
append_lines() {
  seq "$1" "$2" | sed "s/.*/SELECT eventsource.append('bench-1', 'Measured', '{\"n\": &}')/"
}
raw_lines() {
  seq "$1" "$2" | sed "s/.*/INSERT INTO raw_events (stream_id, stream_version, event_id, event_type, data) VALUES ('bench-1', &, gen_random_uuid(), 'Measured', '{\"n\": &}')/"
}

# counted_run DATABASE SCRIPT: the instructions and lookups by name of single_user under callgrind,
# as "instructions lookups", starting from a copy of the cluster as the set-up left it.
counted_run() {
  local database=$1 script=$2 out="$work/callgrind.out"
  rm -rf "$out" "$work/run"
  cp -a "$work/data" "$work/run"
  valgrind --tool=callgrind --callgrind-out-file="$out" --trace-children=no \
    "$bin/postgres" --single -D "$work/run" -c log_min_messages=fatal "$database" < "$script" > "$work/out" 2>&1 ||
    { cat "$work/out" >&2; exit 1; }
  python3 - "$out" <<'PY'
import re, sys
# Total instructions (the "totals:" or "summary:" line), and the calls eventsource.so makes to the
# functions that look a catalog object up by name (a schema, a relation, a column).
by_name = {'get_namespace_oid', 'get_relname_relid', 'get_attnum'}
names, objects, total, lookups = {}, {}, 0, 0
caller_object = target = None
def compressed(table, line):
    m = re.match(r'\w+=\((\d+)\)(?: (.*))?', line.strip())
    if m.group(2):
        table[m.group(1)] = m.group(2)
    return table.get(m.group(1), '')
for line in open(sys.argv[1]):
    if line.startswith(('totals:', 'summary:')):
        total = int(line.split()[1])
    elif line.startswith('ob='):
        caller_object = compressed(objects, line)
    elif line.startswith('cob='):
        compressed(objects, line)
    elif line.startswith('fn='):
        compressed(names, line)
        target = None
    elif line.startswith('cfn='):
        target = compressed(names, line)
    elif line.startswith('calls=') and target is not None:
        if target in by_name and caller_object.endswith('/eventsource.so'):
            lookups += int(line.split()[0][len('calls='):])
        target = None
print(total, lookups)
PY
}

# per_call NAME DATABASE GENERATOR: instructions and lookups per statement of GENERATOR.
per_call() {
  local name=$1 database=$2 generator=$3 base measured
  "$generator" 1 "$warm_up" > "$work/base.sql"
  "$generator" 1 $((warm_up + count)) > "$work/measured.sql"
  base=$(counted_run "$database" "$work/base.sql")
  measured=$(counted_run "$database" "$work/measured.sql")
  python3 - "$name" "$count" "$base" "$measured" <<'PY'
import sys
name, count = sys.argv[1], int(sys.argv[2])
base, measured = [list(map(int, s.split())) for s in sys.argv[3:5]]
print(f"{name}\t{(measured[0] - base[0]) / count:.0f}\t{(measured[1] - base[1]) / count:.2f}")
PY
}

echo "$count appends per measurement, after $warm_up to warm up"
printf 'what\tinstructions per call\tcatalog lookups by name from eventsource per call\n'
results=$(
  per_call current current_version append_lines
  per_call 0.7.0 version_0_7 append_lines
  per_call raw raw raw_lines
)
echo "$results"
awk -F'\t' '{ ir[$1] = $2 } END { printf "current / raw %.3f, 0.7.0 / raw %.3f, current / 0.7.0 %.4f\n", ir["current"] / ir["raw"], ir["0.7.0"] / ir["raw"], ir["current"] / ir["0.7.0"] }' <<<"$results"
