#!/usr/bin/env bash
# launcher_hostile.sh: the launcher (eventsource.worker_databases unset) against a tenant with a LOGIN
# role that has CREATEDB and owns databases, and against two-phase commit, on a cluster of its own.
# - Looks that never end: the tenant holds a rename of two of its databases open in a transaction
#   (which keeps every new connection to them waiting for the database's lock) while an extension
#   change there has the launcher look at them; both looks wait for ever, and they are the two the
#   launcher runs at a time. A superuser's CREATE EXTENSION eventsource in a new database must still
#   be served within seconds: the launcher stops a look after 10 s and looks there again later (the
#   held database in which a superuser created eventsource is served once the tenant lets go).
# - A loop of CREATE and DROP EXTENSION has the launcher look at the database at most once a second.
# - Two-phase commit: a CREATE EXTENSION eventsource committed by COMMIT PREPARED (from another
#   session) must be served; a DROP EXTENSION prepared and rolled back must not stop the notifier at
#   the preparing session's next commit.
# - A flood of prepared extension changes: the tenant prepares and rolls back 64 CREATE EXTENSION
#   pg_trgm between two of the launcher's cycles (the launcher is stopped with SIGSTOP meanwhile, so
#   that the flood is faster than its cycles); a superuser's CREATE EXTENSION eventsource prepared
#   right after, and committed once the launcher has looked at the database, must be served.
# - An immediate stop with a CREATE EXTENSION eventsource prepared: after the restart (which
#   recovers the prepared transaction), its COMMIT PREPARED must have the database served.
# - A grant of the schema's tables that includes TRIGGER (GRANT ALL ON ALL TABLES IN SCHEMA
#   eventsource): the grantee's trigger on eventsource.projections, which the notifier updates when
#   it runs an async projection, must not run with the notifier's superuser rights: the notifier
#   refuses the database (a WARNING) until the trigger is dropped and the grant revoked.
# - Database settings: the owner of a served database sets default_transaction_read_only (ALTER
#   DATABASE ... SET, which every connection to it applies, the notifier's too) and has it restart
#   (a rename); the notifier must not end in an error every 5 seconds, and runs its async projection.
# - Background workers: the owner of one served database copies it (CREATE DATABASE ... TEMPLATE, its
#   right) until the copies take every background worker of max_worker_processes (8, the default);
#   a superuser's new database with the extension must still be served (eventsource.
#   max_databases_per_owner, 2 by default, with a WARNING for the copies it does not serve).
# Binaries from EVENTSOURCE_PG_BIN (default the system's 15); port PGPORT + 29.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
run_as_postgres "$@"
bin=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
port=$((${PGPORT:-5432} + 29))
work=$(mktemp -d)
log=$work/server.log
cleanup() {
  for fd in "${session_fds[@]}"; do eval "exec $fd>&-" 2> /dev/null || true; done
  "$bin/pg_ctl" -D "$work/data" -m immediate stop > /dev/null 2>&1 || true
  rm -rf "$work"
}
declare -A session_fds=()
trap cleanup EXIT

preloaded_cluster "$work/data" "$port" "$work" ""
cat >> "$work/data/postgresql.conf" <<CONF
max_worker_processes = 8
max_prepared_transactions = 4
fsync = off
CONF
"$bin/pg_ctl" -D "$work/data" -l "$log" -w start > /dev/null
unset PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS
export PGHOST=$work PGPORT=$port
psql_as() { local role=$1 db=$2; shift 2; "$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -U "$role" -d "$db" "$@"; }
psql_db() { psql_as postgres "$@"; }
# logged_since LINE TEXT: how many lines of the server log after line LINE have TEXT.
logged_since() { tail -n +"$(($1 + 1))" "$log" | grep -cF "$2" || true; }
# ever_logged TEXT: "logged" once the server log has TEXT, else "not logged".
ever_logged() { [ "$(logged_since 0 "$1")" -ge 1 ] && echo logged || echo "not logged"; }
# served DB: DB's notifier pid once notifier_status shows it (waits up to 10 s), or "none".
served() { output_within 10 psql_db "$1" -c "SELECT pid FROM eventsource.notifier_status() WHERE database_name = '$1'"; }
# is_served DB: "served" once DB has a notifier (waits up to 10 s), else "not served".
is_served() { [ "$(served "$1")" != none ] && echo served || echo "not served"; }
# session NAME ROLE DB: a psql session that runs what say NAME sends it, its output in $work/NAME.out.
session() {
  local fd open
  mkfifo "$work/$1.in"
  # Not with the other sessions' inputs open: each must see its input end when end closes it.
  (
    for open in "${session_fds[@]}"; do eval "exec $open>&-"; done
    exec "$bin/psql" -X -At -U "$2" -d "$3" < "$work/$1.in" > "$work/$1.out" 2>&1
  ) &
  exec {fd}> "$work/$1.in"
  session_fds[$1]=$fd
}
say() { echo "$2" >&"${session_fds[$1]}"; }
# end NAME: closes the session's input, so that it ends (rolling back what it left open).
end() { eval "exec ${session_fds[$1]}>&-"; unset "session_fds[$1]"; }
# printed NAME TEXT: t once the session has printed TEXT (waits up to 10 s).
printed() {
  for _ in $(seq 200); do grep -qF "$2" "$work/$1.out" && { echo t; return; }; sleep 0.05; done
  echo f
}

psql_db postgres > /dev/null <<'SQL'
CREATE ROLE mallory LOGIN CREATEDB;
SQL

# Looks that never end.
for db in es_held_a es_held_b; do
  psql_as mallory postgres -c "CREATE DATABASE $db"
done
sleep 1.5
# In es_held_a the tenant creates an extension; in es_held_b a superuser creates eventsource.
declare -A creator=([es_held_a]=mallory [es_held_b]=postgres) created=([es_held_a]=pg_trgm [es_held_b]=eventsource)
for db in es_held_a es_held_b; do
  session "${db}_inside" "${creator[$db]}" "$db"
  say "${db}_inside" "BEGIN; CREATE EXTENSION ${created[$db]}; SELECT 'created';"
  printed "${db}_inside" created > /dev/null
  session "${db}_rename" mallory postgres
  # The rename takes the database's lock at once, then waits (up to 5 s) for the session inside to go.
  say "${db}_rename" "BEGIN; ALTER DATABASE $db RENAME TO ${db}_renamed; SELECT 'renamed';"
  sleep 0.5
  say "${db}_inside" "COMMIT;"
  end "${db}_inside"
  check "the tenant holds a rename of $db open" "$(printed "${db}_rename" renamed)" t
done
sleep 1
check "two of the launcher's looks wait for the databases' locks (the attack holds)" \
  "$(psql_db postgres -c "SELECT count(*) FROM pg_locks WHERE locktype = 'object' AND classid = 'pg_database'::regclass AND NOT granted")" 2
psql_db postgres -c "CREATE DATABASE es_real"
psql_db es_real -c "CREATE EXTENSION eventsource"
check "a superuser's new database with the extension is served meanwhile" \
  "$(is_served es_real)" served
check "the launcher logged that it stopped a look that waited" \
  "$(ever_logged 'eventsource launcher stopped its look at database "es_held_')" logged
end es_held_a_rename
end es_held_b_rename
check "once the tenant's transactions end, it is served" \
  "$(is_served es_real)" served
check "once the tenant's transactions end, the held databases are looked at again (no look waits)" \
  "$(output_within 30 psql_db postgres -c "SELECT 'none waits' WHERE NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'object' AND classid = 'pg_database'::regclass AND NOT granted)")" "none waits"
check "and the one with eventsource, whose look was stopped, is served (looked at again)" \
  "$([ "$(output_within 30 psql_db es_held_b -c "SELECT pid FROM eventsource.notifier_status() WHERE database_name = 'es_held_b'")" != none ] && echo served || echo "not served")" served

# A loop of CREATE and DROP EXTENSION: the launcher's looks at the database (each a worker, which
# the postmaster logs at DEBUG1) come at most once a second.
psql_db postgres -c "CREATE DATABASE es_loop"
sleep 1.5
psql_db postgres -c "ALTER SYSTEM SET log_min_messages = debug1" -c "SELECT pg_reload_conf()" > /dev/null
sleep 0.5
lines_before=$(wc -l < "$log")
loop_started=$(date +%s)
for _ in $(seq 30); do
  psql_db es_loop -c "CREATE EXTENSION pg_trgm" -c "DROP EXTENSION pg_trgm"
  sleep 0.1
done
sleep 1.5
# One look a second at most, and one for the second partly counted at each end.
most=$(($(date +%s) - loop_started + 2))
psql_db postgres -c "ALTER SYSTEM RESET log_min_messages" -c "SELECT pg_reload_conf()" > /dev/null
looks=$(logged_since "$lines_before" 'starting background worker process "eventsource notifier for database es_loop"')
echo "# $looks looks at es_loop in $((most - 2)) s"
check "30 CREATE/DROP EXTENSION start at most one look a second" \
  "$([ "$looks" -ge 1 ] && [ "$looks" -le "$most" ] && echo "at most one a second" || echo "$looks in $((most - 2)) s")" "at most one a second"

# Two-phase commit.
psql_db postgres -c "CREATE DATABASE es_two_phase"
sleep 1.5
psql_db es_two_phase -c "BEGIN" -c "CREATE EXTENSION eventsource" -c "PREPARE TRANSACTION 'create_eventsource'"
psql_db es_two_phase -c "COMMIT PREPARED 'create_eventsource'"
check "a CREATE EXTENSION committed by COMMIT PREPARED is served" \
  "$(is_served es_two_phase)" served
before=$(served es_real)
psql_db es_real > /dev/null <<'SQL'
BEGIN;
DROP EXTENSION eventsource;
PREPARE TRANSACTION 'drop_eventsource';
ROLLBACK PREPARED 'drop_eventsource';
SELECT 'the session commits something else';
SELECT pg_sleep(2);
SQL
check "a DROP EXTENSION prepared and rolled back leaves the notifier running (the same pid)" \
  "$(served es_real)" "$before"
# An append committed by COMMIT PREPARED wakes the notifier as a commit does. The notifier has just
# announced an older transaction's append and, with nothing held back (the prepared transaction has
# not committed), rests for its idle second: the prepared append must not wait for the end of it.
session ordinary postgres es_two_phase
say ordinary "BEGIN; SELECT eventsource.append('order-ordinary', 'OrderPlaced', '{}'); SELECT 'ordinary appended';"
# The ordinary append first, so that it is the older transaction: after the prepared one, it would be
# held back until the prepared commits, and the notifier would look every notify_max_delay instead.
[ "$(printed ordinary 'ordinary appended')" = t ] || echo "# the ordinary session did not append"
psql_db es_two_phase -c "BEGIN" -c "SELECT eventsource.append('order-prepared', 'OrderPlaced', '{}')" \
  -c "PREPARE TRANSACTION 'append_prepared'" > /dev/null
/usr/bin/python3 "$here/bus/listen.py" --dbname es_two_phase --channel eventsource --count 2 --timeout 30 > "$work/heard" &
listener=$!
for _ in $(seq 100); do grep -q ready "$work/heard" && break; sleep 0.05; done
say ordinary "COMMIT;"
for _ in $(seq 100); do grep -q '^eventsource ' "$work/heard" && break; sleep 0.01; done
committed_at=$(date +%s.%N)
psql_db es_two_phase -c "COMMIT PREPARED 'append_prepared'"
wait "$listener" || true
end ordinary
prepared=$(psql_db es_two_phase -c "SELECT checkpoint FROM eventsource.read_stream('order-prepared')")
check "an append committed by COMMIT PREPARED is announced within 300 ms" \
  "$(awk -v t="$committed_at" -v c="$prepared" '$1 == "eventsource" && $2 == c {print ($3 - t < 0.3) ? "within" : ($3 - t) " s"}' "$work/heard")" within

# A flood of prepared extension changes.
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
psql_db es_two_phase -c "BEGIN" -c "DROP EXTENSION eventsource" -c "PREPARE TRANSACTION 'drop_eventsource'"
"$bin/pg_ctl" -D "$work/data" -m immediate stop > /dev/null
"$bin/pg_ctl" -D "$work/data" -l "$log" -w start > /dev/null
check "the prepared transactions survive the immediate stop" \
  "$(psql_db postgres -c "SELECT string_agg(gid, ',' ORDER BY gid) FROM pg_prepared_xacts")" create_eventsource,drop_eventsource
# The launcher has looked at the databases meanwhile (a restart looks at every one): no eventsource
# in es_recovered yet; es_two_phase has it until the drop commits.
sleep 3
psql_db es_recovered -c "COMMIT PREPARED 'create_eventsource'"
check "a CREATE EXTENSION prepared before an immediate stop is served once committed after the restart" \
  "$(is_served es_recovered)" served
check "es_two_phase is served until its prepared DROP EXTENSION commits" "$(is_served es_two_phase)" served
psql_db es_two_phase -c "COMMIT PREPARED 'drop_eventsource'"
check "a DROP EXTENSION prepared before an immediate stop stops the notifier once committed after the restart" \
  "$(output_within 10 psql_db postgres -c "SELECT 'stopped' WHERE NOT EXISTS (SELECT FROM pg_stat_activity
                                                                          WHERE backend_type = 'eventsource notifier' AND datname = 'es_two_phase')")" stopped
# Their notifiers would take background workers that the tests below need.
psql_db postgres -c "DROP DATABASE es_flooded WITH (FORCE)" -c "DROP DATABASE es_recovered WITH (FORCE)" \
  -c "DROP DATABASE es_flood" -c "DROP DATABASE es_two_phase WITH (FORCE)"


# A grant of every table of the schema (GRANT ALL, which includes TRIGGER) to an application role.
psql_db postgres -c "CREATE DATABASE es_granted"
psql_db es_granted > /dev/null <<'SQL'
CREATE EXTENSION eventsource;
CREATE FUNCTION public.seen(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT eventsource.create_projection('seen', 'public.seen(eventsource.event)', mode => 'async');
GRANT USAGE ON SCHEMA eventsource TO mallory;
GRANT ALL ON ALL TABLES IN SCHEMA eventsource TO mallory;
GRANT CREATE ON SCHEMA public TO mallory;
SQL
psql_as mallory es_granted > /dev/null <<'SQL'
CREATE FUNCTION public.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE mallory SUPERUSER';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER escalate AFTER UPDATE ON eventsource.projections
    FOR EACH STATEMENT EXECUTE FUNCTION public.escalate();
SQL
psql_db postgres -c "CREATE ROLE app_writer LOGIN IN ROLE eventsource_writer"
psql_as app_writer es_granted -c "SELECT eventsource.append('granted-1', 'Happened', '{}')" > /dev/null
sleep 3
check "a trigger that a role with TRIGGER on the schema's tables created never runs as the notifier" \
  "$(psql_db postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'")" f
check "the notifier refuses the database while the tables grant TRIGGER" \
  "$(logged_since 0 'grants TRIGGER to role "mallory"')" 1
psql_db postgres -c "ALTER ROLE mallory NOSUPERUSER"
lines_before=$(wc -l < "$log")
psql_db es_granted -c "REVOKE TRIGGER ON ALL TABLES IN SCHEMA eventsource FROM mallory"
sleep 1.5
check "with TRIGGER revoked, the notifier refuses the database while the trigger is there" \
  "$(logged_since "$lines_before" 'has trigger escalate, which is not one of the extension')" 1
psql_db es_granted -c "DROP TRIGGER escalate ON eventsource.projections"
sleep 1.5
check "with the trigger dropped, the notifier serves the database again" \
  "$(logged_since "$lines_before" 'eventsource notifier serves database "es_granted" again')" 1
check "and runs its async projection" \
  "$(output_within 10 psql_db es_granted -c "SELECT 'ran' FROM eventsource.projection_status WHERE name = 'seen' AND events_processed = 1")" ran

# Database settings of a served database's owner.
psql_db postgres -c "CREATE DATABASE es_tenant OWNER mallory"
psql_db es_tenant -c "CREATE EXTENSION eventsource"
served es_tenant > /dev/null
# An event, so that the notifier has a position and runs its other jobs (async projections) too.
psql_db es_tenant -c "SELECT eventsource.append('tenant-1', 'Happened', '{}')" > /dev/null
psql_db es_tenant > /dev/null <<'SQL'
CREATE FUNCTION public.seen(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT eventsource.create_projection('seen', 'public.seen(eventsource.event)', mode => 'async');
SQL
psql_as mallory postgres -c "ALTER DATABASE es_tenant SET default_transaction_read_only = on" \
  -c "ALTER DATABASE es_tenant SET default_transaction_isolation = 'serializable'"
lines_before=$(wc -l < "$log")
psql_as mallory postgres -c "ALTER DATABASE es_tenant RENAME TO es_tenant_renamed" -c "ALTER DATABASE es_tenant_renamed RENAME TO es_tenant"
psql_db es_tenant -c "SET default_transaction_read_only = off" -c "SELECT eventsource.append('tenant-2', 'Happened', '{}')" > /dev/null
check "with a read-only default, the notifier still runs the database's async projection" \
  "$(output_within 10 psql_db es_tenant -c "SELECT 'ran' FROM eventsource.projection_status WHERE name = 'seen' AND events_processed = 2")" ran
sleep 6
check "a read-only default of the database does not make its notifier end in errors" \
  "$(tail -n +"$((lines_before + 1))" "$log" | grep -c 'ERROR:' || true)" 0
psql_as mallory postgres -c "ALTER DATABASE es_tenant RESET ALL"

# The tenant copies its served database until the copies take every background worker.
for copy in 1 2 3 4 5 6 7 8; do
  psql_as mallory postgres -c "CREATE DATABASE es_tenant_copy_$copy TEMPLATE es_tenant"
done
sleep 2
psql_db postgres -c "CREATE DATABASE es_victim"
psql_db es_victim -c "CREATE EXTENSION eventsource"
check "a superuser's new database is served after a tenant's copies of its own" \
  "$(is_served es_victim)" served
check "the copies beyond eventsource.max_databases_per_owner wait, with a WARNING" \
  "$(ever_logged 'the limit of eventsource.max_databases_per_owner')" logged

finish launcher_hostile
