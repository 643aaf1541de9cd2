#!/usr/bin/env bash
# worker_trust.sh: the notifier runs as a superuser, so it trusts only what a superuser controls, and
# only a statement its role may run stops it.
# - In a served database without the extension, a look-alike eventsource schema made by the
#   database's (non-superuser) owner is never called: its function would record the call and make
#   its owner a superuser. No notifier stays in that database.
# - CREATE EXTENSION refuses a schema eventsource that a non-superuser made before (42501). The
#   extension in a schema that a superuser then hands to a non-superuser, in a schema that grants
#   CREATE to a non-superuser, or owned by a role that is no longer a superuser, is refused:
#   nothing announced, nothing scavenged, one WARNING naming the database and the reason; served
#   again once a superuser fixes it.
# - A LOGIN role without the privileges that tries DROP DATABASE, renaming, SET TABLESPACE or CREATE
#   DATABASE ... TEMPLATE of a served database leaves its notifier running (the same pid), and so does
#   an ALTER DATABASE that needs no exclusive use; the owner's DROP DATABASE stops it and succeeds, and
#   after a privileged statement that fails the notifier runs again at once.
# Makes its own cluster (initdb and pg_ctl from EVENTSOURCE_PG_BIN, /usr/lib/postgresql/15/bin by
# default, so that it can run against a private install tree) under a temporary directory, on port
# PGPORT + 17, next to test/run's cluster; removes it on exit.
set -euo pipefail

source "$(dirname "$0")/lib/check.sh"
bindir=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
port=$((${PGPORT:-5432} + 17))
work=$(mktemp -d)
# The server runs as postgres when this runs as root.
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -ne 0 ] || chown postgres "$work"
cleanup() { as_server "$bindir/pg_ctl" -D "$work/data" -m immediate stop > /dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

as_server "$bindir/initdb" -D "$work/data" -A trust -U postgres > /dev/null
cat >> "$work/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$work'
shared_preload_libraries = 'eventsource'
eventsource.worker_databases = 'es_trust_served, es_trust_dropped, es_trust_lookalike, es_trust_owned, es_trust_lapsed'
eventsource.scavenge_interval = 1
CONF
as_server "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start > /dev/null
unset PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS
export PGHOST=$work PGPORT=$port PGUSER=postgres
psql_as() { local role=$1 db=$2; shift 2; "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -At -U "$role" -d "$db" "$@"; }
psql_db() { psql_as postgres "$@"; }
# attempt ROLE SQL: runs SQL on a connection of the LOGIN role ROLE; prints its error message.
attempt() { "$bindir/psql" -X -q -At -U "$1" -d postgres -c "$2" 2>&1 | sed -n 's/^ERROR:  //p' || true; }
# notifier_pid DB: the pid of DB's notifier once it runs (waits up to 20 s), or "none".
notifier_pid() { output_within 20 psql_db es_trust_served -c "SELECT pid FROM eventsource.notifier_status() WHERE database_name = '$1'"; }
# warnings DB: how many times the server log says the notifier does not serve DB.
warnings() { grep -c "WARNING:  eventsource notifier does not serve database \"$1\"" "$work/server.log" || true; }
stored() { psql_db "$1" -c "SELECT count(*) FROM eventsource.events WHERE stream_id = '$2'"; }
# stored_after DB STREAM COUNT: waits up to 10 s until DB's log holds COUNT events of STREAM; prints how many it holds.
stored_after() {
  local n
  for _ in $(seq 100); do
    n=$(stored "$1" "$2")
    [ "$n" = "$3" ] && break
    sleep 0.1
  done
  echo "$n"
}
notifications() { psql_db es_trust_served -c "SELECT notifications FROM eventsource.notifier_status() WHERE database_name = '$1'"; }

psql_db postgres > /dev/null <<'SQL'
CREATE ROLE nobody LOGIN;
CREATE ROLE creator LOGIN CREATEDB;
CREATE ROLE dora LOGIN;
CREATE ROLE mallory LOGIN;
CREATE DATABASE es_trust_served;
CREATE DATABASE es_trust_dropped OWNER dora;
CREATE DATABASE es_trust_lookalike OWNER mallory;
CREATE DATABASE es_trust_owned OWNER mallory;
CREATE DATABASE es_trust_lapsed;
SQL
for db in es_trust_served es_trust_dropped; do psql_db "$db" -c "CREATE EXTENSION eventsource"; done

# Statements that would need a served database alone, by roles without the privileges they need.
served=$(notifier_pid es_trust_served)
check "a notifier serves es_trust_served" "$([ "$served" != none ] && echo running)" running
check "DROP DATABASE by a role that does not own it fails" \
  "$(attempt nobody "DROP DATABASE es_trust_served")" "must be owner of database es_trust_served"
check "and leaves the notifier running" "$(notifier_pid es_trust_served)" "$served"
check "renaming it by a role that does not own it fails" \
  "$(attempt nobody "ALTER DATABASE es_trust_served RENAME TO es_trust_renamed")" "must be owner of database es_trust_served"
check "and leaves the notifier running" "$(notifier_pid es_trust_served)" "$served"
check "SET TABLESPACE by a role that does not own it fails" \
  "$(attempt nobody "ALTER DATABASE es_trust_served SET TABLESPACE pg_default")" "must be owner of database es_trust_served"
check "and leaves the notifier running" "$(notifier_pid es_trust_served)" "$served"
check "CREATE DATABASE ... TEMPLATE it by a role without CREATEDB fails" \
  "$(attempt nobody "CREATE DATABASE es_trust_copy TEMPLATE es_trust_served")" "permission denied to create database"
check "and leaves the notifier running" "$(notifier_pid es_trust_served)" "$served"
check "CREATE DATABASE ... TEMPLATE it by a role with CREATEDB that does not own it fails" \
  "$(attempt creator "CREATE DATABASE es_trust_copy TEMPLATE es_trust_served")" 'permission denied to copy database "es_trust_served"'
check "and leaves the notifier running" "$(notifier_pid es_trust_served)" "$served"
dropped=$(notifier_pid es_trust_dropped)
check "renaming a database by its owner without CREATEDB fails" \
  "$(attempt dora "ALTER DATABASE es_trust_dropped RENAME TO es_trust_renamed")" "permission denied to rename database"
check "and leaves its notifier running" "$(notifier_pid es_trust_dropped)" "$dropped"
psql_db postgres -c "ALTER DATABASE es_trust_served WITH CONNECTION LIMIT 50" -c "ALTER DATABASE es_trust_served SET TABLESPACE pg_default"
check "ALTER DATABASE ... CONNECTION LIMIT, and SET TABLESPACE to the tablespace it is in, leave the notifier running" \
  "$(notifier_pid es_trust_served)" "$served"

# A privileged statement stops the notifier; when it fails, the notifier runs again at once, however
# recently it started.
for attempt in first second; do
  check "renaming es_trust_served to a name in use fails ($attempt time)" \
    "$(attempt postgres "ALTER DATABASE es_trust_served RENAME TO postgres")" 'database "postgres" already exists'
  failed_at=$(date +%s%N)
  restarted=$(notifier_pid es_trust_served)
  elapsed_ms=$(( ($(date +%s%N) - failed_at) / 1000000 ))
  check "it stopped the notifier, which runs again" "$([ "$restarted" != none ] && [ "$restarted" != "$served" ] && echo restarted)" restarted
  check "within a second and a half of the failure ($elapsed_ms ms)" "$([ "$elapsed_ms" -lt 1500 ] && echo promptly)" promptly
  served=$restarted
done

as_server mkdir "$work/tablespace"
psql_db postgres -c "CREATE TABLESPACE es_trust_space LOCATION '$work/tablespace'"
check "moving a served database to another tablespace succeeds" \
  "$(attempt postgres "ALTER DATABASE es_trust_served SET TABLESPACE es_trust_space")" ""
restarted=$(notifier_pid es_trust_served)
check "its notifier was stopped for it, and runs again" "$([ "$restarted" != none ] && [ "$restarted" != "$served" ] && echo restarted)" restarted

start=$(date +%s%N)
check "the owner's DROP DATABASE of a served database succeeds" "$(attempt dora "DROP DATABASE es_trust_dropped")" ""
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "without waiting out its notifier ($elapsed_ms ms)" "$([ "$elapsed_ms" -lt 4000 ] && echo fast)" fast
check "its notifier is gone" "$(psql_db postgres -c "SELECT count(*) FROM pg_database WHERE datname = 'es_trust_dropped'" \
  -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'eventsource notifier' AND datname = 'es_trust_dropped'")" "$(printf '0\n0')"

# A look-alike eventsource schema, made by the owner of a served database without the extension:
# tables and functions of the shape scavenge and async projections look for. Its functions record
# each call and try to make mallory a superuser.
psql_as mallory es_trust_lookalike > /dev/null <<'SQL'
CREATE SCHEMA eventsource;
CREATE TABLE eventsource.calls (called text, by_role name DEFAULT current_user, superuser text DEFAULT current_setting('is_superuser'));
CREATE FUNCTION eventsource.trap(called text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO eventsource.calls (called) VALUES (called);
  BEGIN
    ALTER ROLE mallory SUPERUSER;
  EXCEPTION WHEN insufficient_privilege THEN
    NULL;
  END;
END $$;
CREATE TABLE eventsource.streams (stream_id text, category text, stream_version bigint, created_at timestamptz,
  updated_at timestamptz, truncate_before bigint, max_count bigint, max_age interval, deleted_through bigint,
  tombstoned_at timestamptz);
CREATE TABLE eventsource.events (global_position bigint, transaction_id xid8, stream_id text, stream_version bigint,
  event_id uuid, event_type text, data jsonb, metadata jsonb, recorded_at timestamptz, category text);
CREATE TABLE eventsource.subscriptions (name text, category text, event_types text[], consumer_group_size integer);
CREATE TABLE eventsource.subscription_members (subscription_name text, consumer_group_member integer, checkpoint bigint);
CREATE TABLE eventsource.projections (name text, handler regproc, owner regrole, event_types text[], category text,
  mode text, status text, checkpoint bigint, attempts integer, max_attempts integer, on_failure text,
  retry_at timestamptz, reset_handler regproc);
CREATE FUNCTION eventsource.first_visible_version(eventsource.streams) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM eventsource.trap('first_visible_version'); RETURN 1000; END $$;
CREATE FUNCTION eventsource.consumer_group_member(text, integer) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN PERFORM eventsource.trap('consumer_group_member'); RETURN 0; END $$;
CREATE FUNCTION eventsource.checkpoint(xid8, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM eventsource.trap('checkpoint'); RETURN 0; END $$;
CREATE FUNCTION eventsource.less(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM eventsource.trap('<'); RETURN true; END $$;
CREATE OPERATOR eventsource.< (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = eventsource.less);
INSERT INTO eventsource.streams VALUES ('bait-1', 'bait', 1, now(), now(), NULL, 1, NULL, NULL, NULL);
INSERT INTO eventsource.events VALUES (1, '1', 'bait-1', 1, gen_random_uuid(), 'Bait', '{}', '{}', now(), 'bait');
INSERT INTO eventsource.subscriptions VALUES ('bait', NULL, NULL, 2);
INSERT INTO eventsource.subscription_members VALUES ('bait', 0, 0);
SQL
sleep 3.5
check "a look-alike eventsource schema in a served database without the extension is never called" \
  "$(psql_db es_trust_lookalike -c "SELECT count(*) FROM eventsource.calls")" 0
check "its owner is still no superuser" "$(psql_db postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'")" f
check "no WARNING about it: the extension is merely not installed" "$(warnings es_trust_lookalike)" 0
check "no notifier stays there: the one that looked found no extension and exited" \
  "$(psql_db postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'eventsource notifier' AND datname = 'es_trust_lookalike'")" 0

# An eventsource schema made by the database's non-superuser owner: CREATE EXTENSION refuses it.
psql_as mallory es_trust_owned -c "CREATE SCHEMA eventsource"
check "CREATE EXTENSION refuses a schema eventsource that a non-superuser owns" \
  "$("$bindir/psql" -X -At -d es_trust_owned -c "CREATE EXTENSION eventsource" 2>&1 | head -1)" \
  'ERROR:  cannot install eventsource into the existing schema eventsource: it is owned by role "mallory", which is not a superuser'
# The extension in a schema that a superuser then hands to that owner.
psql_db es_trust_owned > /dev/null <<'SQL'
ALTER SCHEMA eventsource OWNER TO postgres;
CREATE EXTENSION eventsource;
ALTER SCHEMA eventsource OWNER TO mallory;
SELECT eventsource.append('bin-1', 'Step', pg_catalog.jsonb_build_object('n', n)) FROM pg_catalog.generate_series(1, 10) AS n;
SELECT eventsource.set_stream_metadata('bin-1', '{"max_count": 3}');
SQL
sleep 3.5
check "the extension in a schema a non-superuser owns is refused: nothing scavenged" "$(stored es_trust_owned bin-1)" 10
check "nothing announced" "$(notifications es_trust_owned)" 0
check "one WARNING names the database, over several rounds" "$(warnings es_trust_owned)" 1
check "and says why" \
  "$(grep -A1 'does not serve database "es_trust_owned"' "$work/server.log" | grep -c 'DETAIL:  Its schema eventsource is owned by role "mallory", which is not a superuser')" 1
psql_db es_trust_owned -c "ALTER SCHEMA eventsource OWNER TO postgres"
check "once a superuser owns the schema, the notifier scavenges" "$(stored_after es_trust_owned bin-1 3)" 3
check "and announces" "$([ "$(notifications es_trust_owned)" -gt 0 ] && echo announced)" announced
psql_db es_trust_owned -c "GRANT CREATE ON SCHEMA eventsource TO mallory" \
  -c "SELECT eventsource.append('bin-1', 'Step', pg_catalog.jsonb_build_object('n', n)) FROM pg_catalog.generate_series(11, 15) AS n" > /dev/null
sleep 2.5
check "a schema that grants CREATE to a non-superuser is refused" "$(stored es_trust_owned bin-1)" 8
check "with a second WARNING" "$(warnings es_trust_owned)" 2
check "saying why" "$(grep -c 'DETAIL:  Its schema eventsource grants CREATE to role "mallory", which is not a superuser' "$work/server.log")" 1
psql_db es_trust_owned -c "REVOKE CREATE ON SCHEMA eventsource FROM mallory"
check "served again once revoked" "$(stored_after es_trust_owned bin-1 3)" 3

# The extension created by a superuser that is one no more.
psql_db es_trust_lapsed > /dev/null <<'SQL'
CREATE ROLE ivan SUPERUSER;
SET ROLE ivan;
CREATE EXTENSION eventsource;
SELECT eventsource.append('bin-1', 'Step', pg_catalog.jsonb_build_object('n', n)) FROM pg_catalog.generate_series(1, 10) AS n;
SELECT eventsource.set_stream_metadata('bin-1', '{"max_count": 3}');
RESET ROLE;
ALTER ROLE ivan NOSUPERUSER;
SQL
sleep 2.5
check "an extension whose owner is no longer a superuser is refused" "$(stored es_trust_lapsed bin-1)" 10
check "with a WARNING saying why" "$(warnings es_trust_lapsed)|$(grep -c 'DETAIL:  The extension eventsource is owned by role "ivan", which is not a superuser' "$work/server.log")" "1|1"
psql_db es_trust_lapsed -c "REASSIGN OWNED BY ivan TO postgres"
check "served again once REASSIGN OWNED gives it to a superuser" "$(stored_after es_trust_lapsed bin-1 3)" 3
check "the server log has no ERROR but those of the statements refused above" \
  "$(grep 'ERROR:' "$work/server.log" | grep -v -e 'must be owner of database' -e 'permission denied to' -e 'already exists' -e 'cannot install eventsource into the existing schema' | grep -c . || true)" 0

finish worker_trust
