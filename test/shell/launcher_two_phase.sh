#!/usr/bin/env bash
# launcher_two_phase.sh: the launcher (eventsource.worker_databases unset) follows prepared
# transactions that create eventsource, on a cluster of its own, whatever a tenant (a LOGIN role
# with CREATEDB, owning a database) does with two-phase commit and however the server stops.
# - A flood of prepared extension changes: the tenant prepares and rolls back 64 CREATE EXTENSION
#   pg_trgm (a trusted extension) between two of the launcher's cycles (the launcher is stopped
#   with SIGSTOP meanwhile, so that the flood is faster than its cycles); a superuser's CREATE EXTENSION eventsource prepared right after, and committed once
#   the launcher has looked at the database, must be served.
# - An immediate stop with a CREATE EXTENSION eventsource prepared: after the restart (which
#   recovers the prepared transaction), its COMMIT PREPARED must have the database served.
# Binaries from EVENTSOURCE_PG_BIN (default the system's 15); port PGPORT + 34.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
run_as_postgres "$@"
bin=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
port=$((${PGPORT:-5432} + 34))
work=$(mktemp -d)
log=$work/server.log
cleanup() {
  "$bin/pg_ctl" -D "$work/data" -m immediate stop > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

preloaded_cluster "$work/data" "$port" "$work" ""
cat >> "$work/data/postgresql.conf" <<CONF
max_prepared_transactions = 4
fsync = off
CONF
"$bin/pg_ctl" -D "$work/data" -l "$log" -w start > /dev/null
unset PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS
export PGHOST=$work PGPORT=$port
psql_as() { local role=$1 db=$2; shift 2; "$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -U "$role" -d "$db" "$@"; }
psql_db() { psql_as postgres "$@"; }
# is_served DB: "served" once DB has a notifier (waits up to 10 s), else "not served".
is_served() {
  [ "$(output_within 10 psql_db "$1" -c "SELECT pid FROM eventsource.notifier_status() WHERE database_name = '$1'")" != none ] &&
    echo served || echo "not served"
}

psql_db postgres > /dev/null <<'SQL'
CREATE ROLE mallory LOGIN CREATEDB;
SQL
psql_as mallory postgres -c "CREATE DATABASE es_flood"
psql_db postgres -c "CREATE DATABASE es_flooded"
# Both looked at (no eventsource there), so that only a reported change has them looked at again.
sleep 2

# The flood, in one session, then the superuser's prepared CREATE EXTENSION eventsource, while the
# launcher is between two cycles: it is stopped (SIGSTOP) meanwhile, so that it reclaims nothing.
launcher=$(psql_db postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'eventsource launcher'")
kill -STOP "$launcher"
for i in $(seq 64); do
  echo "BEGIN; CREATE EXTENSION pg_trgm; PREPARE TRANSACTION 'flood_$i'; ROLLBACK PREPARED 'flood_$i';"
done | psql_as mallory es_flood > /dev/null
psql_db es_flooded -c "BEGIN" -c "CREATE EXTENSION eventsource" -c "PREPARE TRANSACTION 'create_eventsource'"
kill -CONT "$launcher"
# The launcher looks at every database when it cannot follow a change: it finds no eventsource yet.
sleep 3
psql_db es_flooded -c "COMMIT PREPARED 'create_eventsource'"
check "a CREATE EXTENSION prepared after a flood of prepared extension changes is served once committed" \
  "$(is_served es_flooded)" served

# An immediate stop with a CREATE EXTENSION eventsource prepared.
psql_db postgres -c "CREATE DATABASE es_recovered"
sleep 2
psql_db es_recovered -c "BEGIN" -c "CREATE EXTENSION eventsource" -c "PREPARE TRANSACTION 'create_eventsource'"
"$bin/pg_ctl" -D "$work/data" -m immediate stop > /dev/null
"$bin/pg_ctl" -D "$work/data" -l "$log" -w start > /dev/null
check "the prepared transaction survives the immediate stop" \
  "$(psql_db postgres -c "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'create_eventsource'")" 1
# The launcher has looked at the database meanwhile (a restart looks at every one), and found no
# eventsource.
sleep 3
psql_db es_recovered -c "COMMIT PREPARED 'create_eventsource'"
check "a CREATE EXTENSION prepared before an immediate stop is served once committed after the restart" \
  "$(is_served es_recovered)" served

finish launcher_two_phase
