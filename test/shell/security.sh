#!/usr/bin/env bash
# security.sh: attacks on eventsource, each from the attacker's own LOGIN role (never SET ROLE from
# a superuser), on a preloaded cluster of its own. After each attack a superuser checks that no
# role has gained superuser, createrole, createdb, replication, bypassrls or a membership (pg_roles
# and pg_auth_members against their state before the first attack; what an attack gained is taken
# back after its check), that the victim's session is as it was, and that the notifier kept its
# process and still sends NOTIFY for an append (LISTEN in psql). A notifier that an attack left
# with the attacker's settings is replaced once that attack's checks have failed, so that the next
# attack is judged alone.
#  1. an eventsource_admin's handlers that leave settings behind (set_config('search_path', 'evil,
#     pg_catalog', false), a plain SET search_path) for the extension's own unqualified `=` to
#     resolve to the attacker's operators, or try SET ROLE, CREATE TEMP TABLE or a deferred
#     constraint trigger: (a) as reset handlers of rebuild_projection, (b) as async handlers in the
#     notifier, (c) as inline handlers in a writer's transaction of two appends;
#  2. the owner of a served database without the extension builds a look-alike schema eventsource
#     (tables the notifier queries, functions and operators that escalate), creates an extension
#     there so that the launcher looks at the database again, and waits: no notifier stays there;
#  3. a role that may do none of it runs DROP DATABASE, ALTER DATABASE ... RENAME and SET
#     TABLESPACE and CREATE DATABASE ... TEMPLATE on a served database: its notifier keeps running;
#  4. a reader polls and acknowledges subscriptions that belong to another role (owner => at
#     creation, or the creator): 42501, the member's checkpoint and lease unchanged; the owner can;
#  5. a projection whose owner lost EXECUTE on its handler or eventsource_admin: the append fails
#     with 42501 naming the projection and writes nothing, an async one stops as failed; DROP ROLE
#     of the owner of projections and a subscription fails with 2BP01 naming them;
#  6. handlers run with the search path of create_projection (search_path => or the creator's),
#     pg_temp last: an unqualified table of public is found, a writer's temp table is not;
#  7. that search path holds only the schemas that existed at create_projection ("$user" the
#     owner's own schema): a writer who creates schemas dba, admin2 and staging later, with a table
#     totals whose trigger escalates, does not capture the INSERT INTO totals of dba's (a
#     superuser's) async projections or admin2's inline one;
#  8. a temporary schema named in search_path => (pg_temp_8) is left out, pg_temp stays last;
#  9. a handler given by OID in a schema its owner may not use (a superuser's SECURITY DEFINER
#     function in schema private): create_projection fails with 42501, rebuild_projection gains
#     nothing; an owner who loses USAGE on the handler's schema: the append fails with 42501;
# 10. a handler another non-superuser role owns (and could replace): 42501 at create_projection,
#     a superuser's included, and for a handler a group of the creator's owns; and at the append
#     once a superuser has given the handler to the writer;
# 11. a reader's REASSIGN OWNED BY eventsource_reader TO itself and DROP OWNED BY eventsource_reader
#     leave the subscriptions eventsource_reader owns alone; an administrator's still move or drop;
# 12. a subscription owner that is no role ('-'): 22023 from create_subscription and
#     set_subscription_owner;
# 13. the $streams audit event of delete_stream called in the attacker's SECURITY DEFINER function
#     that the writer calls names the attacker as its role;
# 14. DROP DATABASE by the database's owner, terminated while it waits for another session, leaves
#     the notifier running again; in a transaction block (where it fails) it never stops it;
# 15. statements during which PostgreSQL registers exit callbacks of its own, by a role with no
#     rights at all: COMMIT PREPARED and ROLLBACK PREPARED of a transaction prepared in another
#     session, a DO block that creates the session's first temporary table (its session then ended
#     by idle_session_timeout) succeed, and no backend crashes at its exit (the server does not
#     restart: its checkpointer keeps its start, the log has no "terminated by signal").
# Runs initdb and pg_ctl itself (as the postgres OS user when run as root) on port $PGPORT + 14,
# with the binaries in ${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}, so that it can test
# another build of PostgreSQL and eventsource. A failed step is a failed check, never the end of
# the run (no set -e).
set -uo pipefail

source "$(dirname "$0")/lib/check.sh"

bindir=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
export PATH="$bindir:$PATH"
port=$((${PGPORT:-5432} + 14))
tmp=$(mktemp -d "${TMPDIR:-/tmp}/eventsource-security.XXXXXX")
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres: "$tmp"

background=()
cleanup() {
  for pid in "${background[@]}"; do kill "$pid" 2> /dev/null; done
  as_postgres pg_ctl -D "$tmp/data" -m fast -w stop > /dev/null 2>&1
  if [ -n "${EVENTSOURCE_SECURITY_SERVER_LOG:-}" ] && [ -f "$tmp/server.log" ]; then
    cp "$tmp/server.log" "$EVENTSOURCE_SECURITY_SERVER_LOG"
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if ! as_postgres initdb -D "$tmp/data" -U postgres -A trust -E UTF8 --no-sync > "$tmp/initdb.log" 2>&1; then
  cat "$tmp/initdb.log"
  exit 1
fi
cat >> "$tmp/data/postgresql.conf" <<EOF
port = $port
listen_addresses = ''
unix_socket_directories = '$tmp'
fsync = off
shared_preload_libraries = 'eventsource'
eventsource.worker_databases = 'es_security,es_lookalike,es_victim,es_paused'
eventsource.scavenge_interval = 1
max_prepared_transactions = 2
EOF
echo "local all all trust" > "$tmp/data/pg_hba.conf"
if ! as_postgres pg_ctl -D "$tmp/data" -l "$tmp/server.log" -w -t 60 start > /dev/null; then
  cat "$tmp/server.log"
  exit 1
fi
export PGHOST=$tmp PGPORT=$port PGUSER=postgres
unset PGDATABASE PGOPTIONS PGSERVICE PGPASSWORD

# psql_as ROLE DB [ARGS]: a session of ROLE's own login; stdout and errors (with their SQLSTATE).
psql_as() {
  local role=$1 db=$2
  shift 2
  psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -U "$role" -d "$db" "$@" 2>&1
}
# super [ARGS]: a superuser session in es_security; errors go to stderr, so they show in the log.
super() { psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d es_security "$@"; }
# sqlstate OUTPUT: the SQLSTATE of the first error in a session's output, "ok" when there is none.
sqlstate() {
  local code
  code=$(grep -o -m1 -E 'ERROR:  [0-9A-Z]{5}' <<<"$1" | cut -c9-13)
  echo "${code:-ok}"
}
# field NAME OUTPUT: the value of the line "NAME=value" of a session's output, or what went wrong.
field() {
  if grep -q "^$1=" <<<"$2"; then
    sed -n "s/^$1=//p" <<<"$2" | head -1
  else
    echo "no $1: $(grep -m1 -o 'ERROR:.*' <<<"$2" || head -1 <<<"$2")"
  fi
}
# mentions OUTPUT WORD...: the words the output mentions, in order (the rest are left out).
mentions() {
  local text=$1 found=()
  shift
  for word in "$@"; do grep -qF -- "$word" <<<"$text" && found+=("$word"); done
  echo "${found[*]:-none}"
}

# The notifier of a database (pg_stat and shared memory: asked from es_security, never from a
# database whose schema eventsource someone else may have written).
notifier_pid() { super -c "SELECT coalesce((SELECT pid::text FROM eventsource.notifier_status() WHERE database_name = '$1'), 'none')"; }
wait_notifier() {
  local pid=none
  for _ in $(seq 200); do
    pid=$(notifier_pid "$1")
    [ "$pid" != none ] && [ -n "$pid" ] && break
    sleep 0.1
  done
  echo "$pid"
}
# notifies DB: t when a session that LISTENs on eventsource hears of its own append within 20 s.
notifies() { hears_own_append psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d "$1"; }
# notifier_kept LABEL DB PID: the notifier of DB still has PID and still notifies.
notifier_kept() {
  check "$1: the notifier of $2 kept its process" "$(wait_notifier "$2")" "$3"
  check "$1: and an append to $2 still produces a NOTIFY" "$(notifies "$2")" t
}

# Every role's attributes and memberships, one line each.
roles_state() {
  super <<'SQL'
SELECT 'role ' || rolname || ':' || CASE WHEN rolsuper THEN ' superuser' ELSE '' END
       || CASE WHEN rolcreaterole THEN ' createrole' ELSE '' END || CASE WHEN rolcreatedb THEN ' createdb' ELSE '' END
       || CASE WHEN rolreplication THEN ' replication' ELSE '' END || CASE WHEN rolbypassrls THEN ' bypassrls' ELSE '' END
  FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1;
SELECT 'member ' || member::regrole || ' of ' || roleid::regrole || CASE WHEN admin_option THEN ' with admin option' ELSE '' END
  FROM pg_auth_members ORDER BY 1;
SQL
}
attack_roles="attacker writer dbowner nobody reporting billing projector modeler admin2 reader reader2 outgoing incoming"
# escalations: what roles have gained since the cluster was set up (nothing: ""), and how (each
# attack records the ALTER ROLE that worked, with the role it ran as and where).
escalations() {
  local gained how query
  gained=$(comm -13 <(sort <<<"$roles_baseline") <(sort <<<"$(roles_state)") | paste -sd ';' -)
  [ -z "$gained" ] && return
  query="SELECT string_agg(DISTINCT via || ' as ' || ran_as || ' in ' || coalesce(nullif(application, ''), 'a background worker'), '; ')"
  how=$(super -c "$query FROM evil.pwned" 2> /dev/null)
  # The look-alike's record, read in dbowner's own session: a superuser runs nothing of dbowner's.
  [ -z "$how" ] && how=$(psql_as dbowner es_lookalike -c "$query FROM eventsource.pwned")
  echo "$gained (escalated by: ${how:-?})"
}
# no_escalation LABEL [GOT]: checks that escalations (or GOT) is empty, then takes back what the
# attack gained, so that each attack is judged alone.
no_escalation() {
  local got
  got=${2-$(escalations)}
  if [ -n "$got" ]; then
    super > /dev/null <<SQL
DO \$\$
DECLARE
    r name;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles WHERE rolname = ANY (string_to_array('$attack_roles', ' ')) LOOP
        EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS', r);
    END LOOP;
END
\$\$;
SQL
  fi
  super -c "DELETE FROM evil.pwned" > /dev/null 2>&1
  check "$1: no role gained an attribute or a membership" "$got" ""
}
# replace_notifier DB: ends the notifier of DB and prints the pid of the one the launcher starts.
# For an attack that left its settings in the notifier's session: they would escalate in every
# round after it, and the next attack would be blamed for them.
replace_notifier() {
  local old new=none
  old=$(notifier_pid "$1")
  super -c "SELECT pg_terminate_backend($old)" > /dev/null
  for _ in $(seq 200); do
    new=$(notifier_pid "$1")
    [ "$new" != none ] && [ "$new" != "$old" ] && break
    sleep 0.1
  done
  echo "$new"
}
# wait_until SECONDS QUERY: waits up to SECONDS for a superuser's QUERY to return t.
wait_until() {
  for _ in $(seq $(($1 * 10))); do
    [ "$(super -c "$2")" = t ] && return 0
    sleep 0.1
  done
  return 1
}
# wait_projection NAME CONDITION: waits up to 20 s for CONDITION on its projection_status row.
wait_projection() { wait_until 20 "SELECT $2 FROM eventsource.projection_status WHERE name = '$1'"; }
# projection_state NAME: "status after N events", and its last error if it has one (with_error).
projection_state() {
  super -c "SELECT status || ' after ' || events_processed || ' events'
                   || CASE WHEN '${2:-}' = 'with_error' THEN coalesce(': ' || last_error, '') ELSE '' END
              FROM eventsource.projection_status WHERE name = '$1'"
}

# ------------------------------------------------------------------------------------------------
# The cluster: three served databases, the roles
# ------------------------------------------------------------------------------------------------
psql -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres > /dev/null <<'SQL'
CREATE DATABASE es_security;
CREATE DATABASE es_victim;
\c es_security
CREATE EXTENSION eventsource;
\c es_victim
CREATE EXTENSION eventsource;
\c postgres
CREATE ROLE attacker LOGIN IN ROLE eventsource_admin;
CREATE ROLE writer LOGIN IN ROLE eventsource_writer;
CREATE ROLE dbowner LOGIN;
CREATE ROLE nobody LOGIN;
CREATE ROLE reporting LOGIN IN ROLE eventsource_reader;
CREATE ROLE billing LOGIN IN ROLE eventsource_reader;
CREATE ROLE projector LOGIN IN ROLE eventsource_admin;
CREATE ROLE modeler LOGIN IN ROLE eventsource_admin;
CREATE ROLE admin2 LOGIN IN ROLE eventsource_admin;
CREATE ROLE reader LOGIN IN ROLE eventsource_reader;
CREATE ROLE reader2 LOGIN IN ROLE eventsource_reader;
CREATE ROLE dba LOGIN SUPERUSER;
-- An administrator's REASSIGN OWNED BY outgoing TO incoming (it has the rights of both).
CREATE ROLE outgoing LOGIN IN ROLE eventsource_admin;
CREATE ROLE incoming IN ROLE eventsource_admin;
GRANT outgoing, incoming TO admin2;
CREATE DATABASE es_lookalike OWNER dbowner;
CREATE DATABASE es_paused OWNER dbowner;
GRANT CREATE ON DATABASE es_security TO attacker, writer;
SQL
psql -X -q -U postgres -d es_paused -c "CREATE EXTENSION eventsource"
check "the extension is installed in es_security and es_victim" \
  "$(super -c "SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'eventsource'")$(psql -X -At -U postgres -d es_victim -c "SELECT count(*) FROM pg_extension WHERE extname = 'eventsource'")" t1
security_pid=$(wait_notifier es_security)
victim_pid=$(wait_notifier es_victim)
check "a notifier serves each of es_security, es_victim" \
  "$([ "$security_pid" != none ] && [ "$victim_pid" != none ] && echo t || echo f)" t
# lookalike_workers: "none" once no notifier is in es_lookalike (none stays without the extension; the
# one that looks goes within 5 s), else "some".
lookalike_workers() {
  wait_until 5 "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'eventsource notifier' AND datname = 'es_lookalike')" \
    && echo none || echo some
}
check "none stays in es_lookalike, which has no extension" "$(lookalike_workers)" none
roles_baseline=$(roles_state)

# The attacker's schema evil (USAGE for PUBLIC): an operator = for every type an unqualified
# comparison of the extension may compare, whose function makes the attacker a superuser when a
# superuser runs it (and records how), then compares as pg_catalog.= does; and the handlers.
attacker_setup=$(psql_as attacker es_security <<'SQL'
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE TABLE evil.pwned (at timestamptz NOT NULL DEFAULT clock_timestamp(), via text, ran_as name, application text);
GRANT SELECT, INSERT ON evil.pwned TO PUBLIC;
CREATE FUNCTION evil.escalate(via text) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    ALTER ROLE attacker SUPERUSER;
    INSERT INTO evil.pwned (via, ran_as, application) VALUES (via, current_user, current_setting('application_name'));
EXCEPTION WHEN OTHERS THEN
    NULL;   -- not a superuser (yet)
END
$$;
DO $do$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['text', 'name', 'integer', 'bigint', 'smallint', 'oid', 'xid8', 'boolean', 'uuid',
                             'timestamptz', 'interval', 'jsonb', 'numeric', 'regproc', 'regprocedure', 'regrole'] LOOP
        EXECUTE format($f$
            CREATE FUNCTION evil.pwn_eq(%1$s, %1$s) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog AS $b$
            BEGIN
                PERFORM evil.escalate('operator = (%1$s, %1$s)');
                RETURN $1 OPERATOR(pg_catalog.=) $2;
            END
            $b$$f$, t);
        EXECUTE format('CREATE OPERATOR evil.= (leftarg = %1$s, rightarg = %1$s, function = evil.pwn_eq)', t);
    END LOOP;
END
$do$;

-- What each handler call saw of the settings earlier calls may have left.
CREATE TABLE evil.handler_log (stream_id text, global_position bigint, seen_search_path text, seen_marker text, ran_as name);
-- Leaves its settings behind: set_config(..., false), and a plain SET.
CREATE FUNCTION evil.handle_set_config(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evil.handler_log VALUES (e.stream_id, e.global_position, current_setting('search_path'),
                                         current_setting('evil.marker', true), current_user);
    PERFORM set_config('search_path', 'evil, pg_catalog', false);
    PERFORM set_config('evil.marker', 'leaked', false);
END
$$;
CREATE FUNCTION evil.handle_set(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evil.handler_log VALUES (e.stream_id, e.global_position, current_setting('search_path'),
                                         current_setting('evil.marker', true), current_user);
    SET search_path = evil, pg_catalog;
    SET evil.marker = 'leaked';
END
$$;
CREATE FUNCTION evil.reset_set_config() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('search_path', 'evil, pg_catalog', false);
    PERFORM set_config('evil.marker', 'leaked', false);
END
$$;
CREATE FUNCTION evil.reset_set() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    SET search_path = evil, pg_catalog;
    SET evil.marker = 'leaked';
END
$$;
CREATE FUNCTION evil.handle_nothing(e eventsource.event) RETURNS void LANGUAGE plpgsql AS 'BEGIN NULL; END';
-- Becomes the session's user (the notifier's: a superuser; an appender's), then escalates.
CREATE FUNCTION evil.handle_set_role(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SET ROLE %I', session_user);
    PERFORM evil.escalate('SET ROLE ' || session_user);
END
$$;
-- Leaves a temp table in the session that runs it (an appender's would see it first on its path).
CREATE FUNCTION evil.handle_temp_table(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS evil_temp (global_position bigint);
    INSERT INTO evil_temp VALUES (e.global_position);
END
$$;
-- Queues a deferred trigger, which would fire at the commit of whoever runs the handler.
CREATE TABLE evil.trigger_log (ran_as name, application text);
GRANT INSERT ON evil.trigger_log TO PUBLIC;
CREATE TABLE evil.deferred_target (global_position bigint);
CREATE FUNCTION evil.deferred_escalate() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO evil.trigger_log VALUES (current_user, current_setting('application_name'));
    PERFORM evil.escalate('deferred trigger');
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER deferred_escalate AFTER INSERT ON evil.deferred_target
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION evil.deferred_escalate();
CREATE FUNCTION evil.handle_deferred(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evil.deferred_target VALUES (e.global_position);
END
$$;
SELECT 'operators=' || count(*) FROM pg_operator WHERE oprnamespace = 'evil'::regnamespace;
SQL
)
check "the attacker's schema evil has its 16 operators =" "$(field operators "$attacker_setup")" 16

# doing VARIANT: what the handler of that name does, for the checks' names.
doing() {
  case $1 in
    set_config) echo "calling set_config('search_path', 'evil, pg_catalog', false)" ;;
    set) echo "running SET search_path = evil, pg_catalog" ;;
    set_role) echo "running SET ROLE to its session's user" ;;
    temp_table) echo "running CREATE TEMP TABLE" ;;
    deferred) echo "queueing a deferred constraint trigger" ;;
  esac
}
# evil_projection KIND VARIANT [OPTIONS]: the attacker's projection of the handler evil.handle_VARIANT,
# KIND inline or async, of a category of its own; sets name, category and label for the checks.
evil_projection() {
  name="evil-$1-${2/_/-}"
  category="$1${2/_/}"
  label="$([ "$1" = async ] && echo 1b || echo 1c) $1 handler $(doing "$2")"
  psql_as attacker es_security -c "SELECT eventsource.create_projection('$name', 'evil.handle_$2(eventsource.event)', category => '$category', mode => '$1'${3:+, $3})" > /dev/null
}
# The roles other than the attacker's that ran the attacker's deferred trigger since the last call.
trigger_ran_as() {
  super -c "SELECT coalesce(string_agg(DISTINCT ran_as || ' in ' || coalesce(nullif(application, ''), 'a background worker'), ', '), '')
               FROM evil.trigger_log WHERE ran_as <> 'attacker'"
  super -c "DELETE FROM evil.trigger_log" > /dev/null
}

# ------------------------------------------------------------------------------------------------
# 1a. rebuild_projection calls a reset handler that leaves search_path 'evil, pg_catalog'
# ------------------------------------------------------------------------------------------------
psql_as writer es_security -c "SELECT eventsource.append('rebuild-1', 'Noted', '{}')" > /dev/null
for variant in set_config set; do
  name="evil-rebuild-${variant/_/-}"
  label="1a rebuild_projection, a reset handler $(doing "$variant")"
  out=$(psql_as attacker es_security <<SQL
SELECT eventsource.create_projection('$name', 'evil.handle_nothing(eventsource.event)', category => 'rebuild',
                                     reset_handler => 'evil.reset_$variant()');
SELECT 'before=' || current_setting('search_path');
SELECT 'replayed=' || eventsource.rebuild_projection('$name');
SELECT 'after=' || current_setting('search_path');
SELECT 'marker=' || coalesce(current_setting('evil.marker', true), '');
SQL
)
  check "$label: the rebuild replays the log" "$(field replayed "$out")" 1
  check "$label: the search path did not outlive the reset handler" "$(field after "$out")" "$(field before "$out")"
  check "$label: nor did any other setting" "$(field marker "$out")" ""
  no_escalation "$label"
done
notifier_kept "1a" es_security "$security_pid"

# ------------------------------------------------------------------------------------------------
# 1b. The same handlers, async: run by the notifier, a superuser's session
# ------------------------------------------------------------------------------------------------
for variant in set_config set; do
  evil_projection async "$variant"
  psql_as writer es_security -c "SELECT eventsource.append_events('$category-1', '[{\"type\": \"Poked\", \"data\": {}}, {\"type\": \"Poked\", \"data\": {}}]')" > /dev/null
  wait_projection "$name" "status = 'failed' OR events_processed >= 2"
  seen=$(super -c "SELECT count(*) || ' ' || count(*) FILTER (WHERE coalesce(seen_marker, '') <> '' OR seen_search_path LIKE '%evil%')
                          || ' ' || coalesce(string_agg(seen_search_path || ' / ' || coalesce(seen_marker, '-'), '; ' ORDER BY global_position), '')
                     FROM evil.handler_log WHERE stream_id = '$category-1'")
  read -r calls leaks details <<<"$seen"
  status=$(super -c "SELECT status FROM eventsource.projection_status WHERE name = '$name'")
  if [ "$leaks" != 0 ]; then
    got="a later call saw what an earlier one left: $details"
  elif [ "$calls" = 2 ] || [ "$status" = failed ]; then
    got=clean
  else
    got="the handler ran $calls times: $(projection_state "$name" with_error)"
  fi
  check "$label: no call of the handler saw a setting an earlier call left" "$got" clean
  # A notifier that kept the handler's settings is replaced (the check above has failed).
  [ "$got" != clean ] && security_pid=$(replace_notifier es_security)
  no_escalation "$label"
done

# SET ROLE to the notifier's session user (a superuser), CREATE TEMP TABLE in the notifier's
# session, a deferred trigger firing at the notifier's commit: refused, the projection fails.
for variant in set_role temp_table deferred; do
  evil_projection async "$variant" "max_attempts => 1"
  psql_as writer es_security -c "SELECT eventsource.append('$category-1', 'Poked', '{}')" > /dev/null
  wait_projection "$name" "status = 'failed' OR events_processed >= 1"
  if [ "$variant" = deferred ]; then
    check "$label: the attacker's trigger never ran as another role" "$(trigger_ran_as)" ""
  else
    check "$label: is refused, and the projection fails" "$(projection_state "$name" | cut -d' ' -f1)" failed
  fi
  no_escalation "$label"
done
notifier_kept "1b" es_security "$security_pid"

# ------------------------------------------------------------------------------------------------
# 1c. The same handlers, inline: a writer appends twice in one transaction
# ------------------------------------------------------------------------------------------------
for variant in set_config set; do
  evil_projection inline "$variant"
  out=$(psql_as writer es_security <<SQL
SELECT 'before=' || current_setting('search_path');
BEGIN;
SELECT 'first=' || eventsource.append('$category-1', 'Poked', '{}');
SELECT 'second=' || eventsource.append('$category-1', 'Poked', '{}');
SELECT 'in_transaction=' || current_setting('search_path');
COMMIT;
SELECT 'after=' || current_setting('search_path');
SELECT 'marker=' || coalesce(current_setting('evil.marker', true), '');
SELECT 'user=' || current_user || ' ' || session_user;
SQL
)
  check "$label: both appends of the transaction succeed" "$(field first "$out") $(field second "$out")" "1 2"
  check "$label: the writer's search path is unchanged in its transaction" "$(field in_transaction "$out")" "$(field before "$out")"
  check "$label: and after it" "$(field after "$out")" "$(field before "$out")"
  check "$label: no other setting of the handler's is left in the writer's session" "$(field marker "$out")" ""
  check "$label: the writer's session is still the writer's" "$(field user "$out")" "writer writer"
  no_escalation "$label"
done

evil_projection inline set_role
out=$(psql_as writer es_security -c "SELECT eventsource.append('inlinesetrole-1', 'Poked', '{}')")
check "$label: the append is refused" "$([ "$(sqlstate "$out")" = ok ] && echo "appended" || echo refused)" refused
no_escalation "$label"

evil_projection inline temp_table
out=$(psql_as writer es_security <<'SQL'
SELECT 'appended=' || eventsource.append('inlinetemptable-1', 'Poked', '{}');
SELECT 'temp_table=' || (to_regclass('pg_temp.evil_temp') IS NOT NULL);
SQL
)
if [ "$(sqlstate "$out")" != ok ] || [ "$(field temp_table "$out")" = f ]; then
  got=none
else
  got="the attacker's evil_temp ($(field temp_table "$out"))"
fi
check "$label: no temp table of the attacker's is left in the writer's session" "$got" none
no_escalation "$label"

evil_projection inline deferred
psql_as writer es_security > /dev/null <<'SQL'
BEGIN;
SELECT eventsource.append('inlinedeferred-1', 'Poked', '{}');
COMMIT;
SQL
check "$label: the attacker's trigger never ran as another role" "$(trigger_ran_as)" ""
no_escalation "$label"
notifier_kept "1c" es_security "$security_pid"

# ------------------------------------------------------------------------------------------------
# 2. A look-alike schema eventsource in a served database without the extension
# ------------------------------------------------------------------------------------------------
# What the notifier reads there (the scavenge query of lifecycle.c, the checks of trust.c and
# projection.c), written by the database's owner, whose every function escalates.
lookalike=$(psql_as dbowner es_lookalike -1 -f - <<'SQL'
CREATE SCHEMA eventsource;
CREATE TABLE eventsource.pwned (at timestamptz NOT NULL DEFAULT clock_timestamp(), via text, ran_as name, application text);
CREATE FUNCTION eventsource.escalate(via text) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    ALTER ROLE dbowner SUPERUSER;
    INSERT INTO eventsource.pwned (via, ran_as, application) VALUES (via, current_user, current_setting('application_name'));
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;
CREATE TYPE eventsource.checkpoint AS (transaction_id xid8, global_position bigint);
CREATE FUNCTION eventsource.checkpoint(transaction_id xid8, global_position bigint) RETURNS eventsource.checkpoint
LANGUAGE plpgsql AS $$ BEGIN PERFORM eventsource.escalate('eventsource.checkpoint()'); RETURN ROW($1, $2); END $$;
CREATE FUNCTION eventsource.checkpoint_transaction_id(eventsource.checkpoint) RETURNS xid8
LANGUAGE plpgsql AS $$ BEGIN PERFORM eventsource.escalate('eventsource.checkpoint_transaction_id()'); RETURN ($1).transaction_id; END $$;
CREATE FUNCTION eventsource.checkpoint_global_position(eventsource.checkpoint) RETURNS bigint
LANGUAGE plpgsql AS $$ BEGIN PERFORM eventsource.escalate('eventsource.checkpoint_global_position()'); RETURN ($1).global_position; END $$;
CREATE FUNCTION eventsource.checkpoint_lt(eventsource.checkpoint, eventsource.checkpoint) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN PERFORM eventsource.escalate('operator eventsource.<'); RETURN true; END $$;
CREATE OPERATOR eventsource.< (leftarg = eventsource.checkpoint, rightarg = eventsource.checkpoint, function = eventsource.checkpoint_lt);
CREATE OPERATOR eventsource.>= (leftarg = eventsource.checkpoint, rightarg = eventsource.checkpoint, function = eventsource.checkpoint_lt);
CREATE OPERATOR eventsource.<= (leftarg = eventsource.checkpoint, rightarg = eventsource.checkpoint, function = eventsource.checkpoint_lt);
CREATE TABLE eventsource.events (
    global_position bigint PRIMARY KEY, transaction_id xid8 NOT NULL, stream_id text NOT NULL,
    stream_version bigint NOT NULL, event_id uuid NOT NULL, event_type text NOT NULL, data jsonb NOT NULL,
    metadata jsonb, recorded_at timestamptz NOT NULL DEFAULT now(), category text);
CREATE TABLE eventsource.streams (
    stream_id text PRIMARY KEY, category text NOT NULL, stream_version bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    truncate_before bigint, max_count bigint, max_age interval, deleted_through bigint, tombstoned_at timestamptz);
CREATE TABLE eventsource.snapshots (stream_id text, stream_version bigint, schema_version integer, state jsonb, created_at timestamptz);
CREATE TABLE eventsource.subscriptions (name text PRIMARY KEY, category text, event_types text[], consumer_group_size integer NOT NULL, owner regrole);
CREATE TABLE eventsource.subscription_members (
    subscription_name text, consumer_group_member integer, checkpoint eventsource.checkpoint,
    acknowledged_at timestamptz, delivered_through eventsource.checkpoint, leased_until timestamptz);
CREATE TABLE eventsource.projections (
    name text PRIMARY KEY, handler regprocedure, reset_handler regprocedure, owner regrole, event_types text[],
    category text, mode text, status text, on_failure text, max_attempts integer, checkpoint eventsource.checkpoint,
    events_processed bigint, attempts integer, retry_at timestamptz, last_error text, last_error_at timestamptz,
    last_error_position bigint, search_path text, created_at timestamptz, updated_at timestamptz);
CREATE FUNCTION eventsource.first_visible_version(stream eventsource.streams) RETURNS bigint
LANGUAGE plpgsql AS $$ BEGIN PERFORM eventsource.escalate('eventsource.first_visible_version()'); RETURN 1000000; END $$;
CREATE FUNCTION eventsource.consumer_group_member(stream_id text, consumer_group_size integer) RETURNS integer
LANGUAGE plpgsql AS $$ BEGIN PERFORM eventsource.escalate('eventsource.consumer_group_member()'); RETURN 0; END $$;
CREATE FUNCTION eventsource.stream_metadata(stream_id text) RETURNS jsonb
LANGUAGE plpgsql AS $$ BEGIN PERFORM eventsource.escalate('eventsource.stream_metadata()'); RETURN '{}'; END $$;
CREATE FUNCTION eventsource.handler(e eventsource.events) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN PERFORM eventsource.escalate('a projection handler'); END $$;
CREATE FUNCTION eventsource.on_delete() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN PERFORM eventsource.escalate('a trigger on eventsource.events'); RETURN OLD; END $$;
CREATE TRIGGER on_delete BEFORE DELETE ON eventsource.events FOR EACH ROW EXECUTE FUNCTION eventsource.on_delete();
-- A stream with retention and events below it (for scavenge); a subscription, an async projection.
INSERT INTO eventsource.streams (stream_id, category, stream_version, truncate_before, max_count, deleted_through)
VALUES ('bait-1', 'bait', 3, 3, 1, 2);
INSERT INTO eventsource.events (global_position, transaction_id, stream_id, stream_version, event_id, event_type, data, category)
SELECT n, pg_current_xact_id(), 'bait-1', n, gen_random_uuid(), 'Baited', '{}', 'bait' FROM generate_series(1, 3) AS n;
INSERT INTO eventsource.subscriptions VALUES ('bait', NULL, NULL, 2, 'dbowner');
INSERT INTO eventsource.subscription_members (subscription_name, consumer_group_member) VALUES ('bait', 0), ('bait', 1);
INSERT INTO eventsource.projections (name, handler, owner, mode, status, on_failure, max_attempts, events_processed, attempts)
VALUES ('bait', 'eventsource.handler(eventsource.events)', 'dbowner', 'async', 'running', 'stop', 5, 0, 0);
SELECT 'lookalike=ready';
SQL
)
check "2 dbowner builds the look-alike schema eventsource in es_lookalike" "$(field lookalike "$lookalike")" ready
# A trusted extension, which dbowner may create: the launcher looks at the database again.
psql_as dbowner es_lookalike -c "CREATE EXTENSION pg_trgm" > /dev/null
# Some scavenge intervals (1 s) and launcher rounds, or the escalation if it comes first.
for _ in $(seq 25); do
  [ "$(super -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'dbowner'")" = t ] && break
  sleep 0.2
done
check "2 after the launcher looked at es_lookalike again, no notifier stays there" "$(lookalike_workers)" none
got=$(escalations)
# dbowner drops the look-alike (the superuser runs nothing of dbowner's), so that it stops here.
psql_as dbowner es_lookalike -c "DROP SCHEMA eventsource CASCADE" -c "DROP EXTENSION pg_trgm" > /dev/null
no_escalation "2 a look-alike schema eventsource" "$got"
notifier_kept "2" es_security "$security_pid"

# ------------------------------------------------------------------------------------------------
# 3. Statements that need es_victim alone, from a role that may run none of them
# ------------------------------------------------------------------------------------------------
notifier_pid es_victim > "$tmp/victim_pids_after"
(
  while :; do
    notifier_pid es_victim
    sleep 0.05
  done
) > "$tmp/victim_pids" 2> /dev/null &
sampler=$!
background+=("$sampler")
codes=()
for _ in 1 2 3; do
  for statement in "DROP DATABASE es_victim" "ALTER DATABASE es_victim RENAME TO es_victim_renamed" \
    "ALTER DATABASE es_victim SET TABLESPACE pg_default" "CREATE DATABASE es_victim_copy TEMPLATE es_victim"; do
    codes+=("$(sqlstate "$(psql_as nobody postgres -c "$statement")")")
    notifier_pid es_victim >> "$tmp/victim_pids_after"
  done
done
sleep 0.3
kill "$sampler"
wait "$sampler" 2> /dev/null
check "3 DROP, RENAME, SET TABLESPACE and TEMPLATE of es_victim by nobody each fail with 42501" \
  "$(printf '%s\n' "${codes[@]}" | sort | uniq -c | awk '{print $1 "x" $2}' | paste -sd ' ' -)" "12x42501"
check "3 es_victim still exists" "$(super -c "SELECT count(*) FROM pg_database WHERE datname = 'es_victim'")" 1
check "3 the notifier of es_victim had the same process throughout ($(cat "$tmp/victim_pids"* | wc -l) samples)" \
  "$(sort -u "$tmp/victim_pids"* | paste -sd ' ' -)" "$victim_pid"
no_escalation "3 statements on es_victim by nobody"
notifier_kept "3" es_victim "$victim_pid"

# ------------------------------------------------------------------------------------------------
# 4. A reader polls and acknowledges another role's subscription
# ------------------------------------------------------------------------------------------------
psql_as writer es_security -c "SELECT eventsource.append('bill-' || n, 'Billed', '{}') FROM generate_series(1, 3) AS n" > /dev/null
out=$(super -v VERBOSITY=verbose -c "SELECT eventsource.create_subscription('billing', category => 'bill', owner => 'billing')" 2>&1)
check "4 create_subscription takes owner => (a role)" "$(sqlstate "$out")" ok
if [ "$(sqlstate "$out")" != ok ]; then
  # Without owner =>, the subscription is still made, so that the attacks on it still run.
  super -c "SELECT eventsource.create_subscription('billing', category => 'bill')" > /dev/null
fi
# A subscription belongs to its creator when no owner is named.
psql_as modeler es_security -c "SELECT eventsource.create_subscription('ledger', category => 'bill')" > /dev/null
member_state() {
  super -c "SELECT coalesce(m.checkpoint::text, 'start') || ', delivered ' || coalesce(m.delivered_through::text, 'nothing')
                   || ', leased ' || (m.leased_until IS NOT NULL) || ', acknowledged ' || (m.acknowledged_at IS NOT NULL)
              FROM eventsource.subscription_members m WHERE m.subscription_name = '$1'"
}
for subscription in billing ledger; do
  before=$(member_state "$subscription")
  out=$(psql_as reporting es_security -c "SELECT count(*) FROM eventsource.poll('$subscription')")
  check "4 reporting may not poll $subscription (42501)" "$(sqlstate "$out")" 42501
  check "4 $subscription's checkpoint and lease are unchanged by it" "$(member_state "$subscription")" "$before"
done
# Undo what a poll of reporting's did, so that billing's own checks below stand alone.
super -c "UPDATE eventsource.subscription_members SET leased_until = NULL, delivered_through = NULL, checkpoint = NULL, acknowledged_at = NULL WHERE subscription_name = 'billing'" > /dev/null
out=$(psql_as billing es_security -c "SELECT 'polled=' || count(*) FROM eventsource.poll('billing')")
check "4 billing (a member of the owner) polls billing" "$(field polled "$out")" 3
before=$(member_state billing)
last="(SELECT checkpoint FROM eventsource.read_category('bill') ORDER BY global_position DESC LIMIT 1)"
lease="(SELECT lease FROM eventsource.subscription_members WHERE subscription_name = 'billing' AND consumer_group_member = 0)"
out=$(psql_as reporting es_security -c "SELECT eventsource.ack('billing', $last, 0, $lease)")
check "4 reporting may not acknowledge billing (42501)" "$(sqlstate "$out")" 42501
check "4 billing's checkpoint and lease are unchanged by it" "$(member_state billing)" "$before"
out=$(psql_as billing es_security -c "SELECT eventsource.ack('billing', $last, 0, $lease)")
check "4 billing acknowledges billing" "$(sqlstate "$out")" ok
check "4 and its checkpoint is the last event, its lease ended" \
  "$(super -c "SELECT m.checkpoint OPERATOR(eventsource.=) $last AND m.leased_until IS NULL FROM eventsource.subscription_members m WHERE m.subscription_name = 'billing'")" t
no_escalation "4 reporting on billing's subscription"
notifier_kept "4" es_security "$security_pid"

# ------------------------------------------------------------------------------------------------
# 5. The owner of projections loses EXECUTE on the handler, or eventsource_admin
# ------------------------------------------------------------------------------------------------
# The handler and everything else are the superuser's: projector owns nothing but its projections
# and its subscription, and holds no privilege but its membership.
super > /dev/null <<'SQL'
CREATE FUNCTION public.project_nothing(e eventsource.event) RETURNS void LANGUAGE plpgsql AS 'BEGIN NULL; END';
SQL
give_back() {
  if [ "$1" = eventsource_admin ]; then
    super -c "GRANT eventsource_admin TO projector"
  else
    super -c "GRANT EXECUTE ON FUNCTION public.project_nothing(eventsource.event) TO PUBLIC"
  fi
}
revoked_events() { super -c "SELECT count(*) FROM eventsource.events WHERE stream_id LIKE '$1-%'"; }
# refused_append LABEL CATEGORY PROJECTION: the writer's append to CATEGORY-1, which the inline
# PROJECTION's owner may no longer run, fails with 42501 naming it and writes nothing.
refused_append() {
  local events out
  events=$(revoked_events "$2")
  out=$(psql_as writer es_security -c "SELECT eventsource.append('$2-1', 'Appended', '{}')")
  check "$1: the writer's append fails with 42501" "$(sqlstate "$out")" 42501
  check "$1: the error names the projection" "$(mentions "$out" "\"$3\"")" "\"$3\""
  check "$1: the append left nothing" "$(revoked_events "$2")" "$events"
}
# inline_then_refused LABEL OWNER NAME HANDLER CATEGORY SQL: OWNER creates the inline projection NAME
# of HANDLER for CATEGORY and the writer appends through it; once a superuser has run SQL, the
# writer's append is refused (refused_append).
inline_then_refused() {
  local out
  out=$(psql_as "$2" es_security -c "SELECT eventsource.create_projection('$3', '$4', category => '$5')")
  check "$1: $2 creates the inline projection $3 of $4" "$(sqlstate "$out")" ok
  out=$(psql_as writer es_security -c "SELECT eventsource.append('$5-1', 'Appended', '{}')")
  check "$1: the writer appends through it" "$(sqlstate "$out")" ok
  super -c "$6" > /dev/null
  refused_append "$1, then $6" "$5" "$3"
}
psql_as projector es_security -c "SELECT eventsource.create_projection('revoked-inline', 'public.project_nothing(eventsource.event)', category => 'revoked')" > /dev/null
out=$(psql_as writer es_security -c "SELECT eventsource.append('revoked-1', 'Appended', '{}')")
check "5 the writer appends through projector's inline projection" "$(sqlstate "$out")" ok
for loss in "EXECUTE on the handler" "eventsource_admin"; do
  if [ "$loss" = eventsource_admin ]; then
    super -c "REVOKE eventsource_admin FROM projector"
  else
    super -c "REVOKE EXECUTE ON FUNCTION public.project_nothing(eventsource.event) FROM projector, PUBLIC"
  fi
  refused_append "5 projector lost $loss" revoked revoked-inline
  give_back "$loss"
done
out=$(psql_as writer es_security -c "SELECT eventsource.append('revoked-1', 'Appended', '{}')")
check "5 with the rights back, the writer appends again" "$(sqlstate "$out")" ok

psql_as projector es_security -c "SELECT eventsource.create_projection('revoked-async', 'public.project_nothing(eventsource.event)', category => 'revokedasync', mode => 'async', max_attempts => 1)" > /dev/null
psql_as writer es_security -c "SELECT eventsource.append('revokedasync-1', 'Appended', '{}')" > /dev/null
wait_projection revoked-async "events_processed >= 1 OR status = 'failed'"
check "5 projector's async projection runs" "$(projection_state revoked-async)" "running after 1 events"
processed=1
for loss in "EXECUTE on the handler" "eventsource_admin"; do
  if [ "$loss" = eventsource_admin ]; then
    super -c "REVOKE eventsource_admin FROM projector"
  else
    super -c "REVOKE EXECUTE ON FUNCTION public.project_nothing(eventsource.event) FROM projector, PUBLIC"
  fi
  psql_as writer es_security -c "SELECT eventsource.append('revokedasync-1', 'Appended', '{}')" > /dev/null
  wait_projection revoked-async "status = 'failed'"
  state=$(projection_state revoked-async with_error)
  check "5 projector lost $loss: its async projection stops as failed" "$(cut -d' ' -f1 <<<"$state")" failed
  check "5 projector lost $loss: last_error names the permission problem" \
    "$(grep -qiE 'permission|privilege|eventsource_admin' <<<"$state" && echo t || echo "f ($state)")" t
  give_back "$loss"
  super -c "SELECT eventsource.resume_projection('revoked-async')" > /dev/null
  processed=$((processed + 1))
  wait_projection revoked-async "events_processed >= $processed"
done
check "5 with the rights back and resumed, the async projection catches up" "$(projection_state revoked-async)" "running after 3 events"

psql_as projector es_security -c "SELECT eventsource.create_subscription('revoked-subscription')" > /dev/null
out=$(psql -X -q -At -v VERBOSITY=verbose -U postgres -d es_security -c "DROP ROLE projector" 2>&1)
check "5 DROP ROLE projector, the owner of projections and a subscription, fails with 2BP01" "$(sqlstate "$out")" 2BP01
check "5 and its detail names them" "$(mentions "$out" revoked-async revoked-inline revoked-subscription)" \
  "revoked-async revoked-inline revoked-subscription"
# Whatever happened, the projections stop here (an owner that no longer exists would be left behind).
super -c "SELECT eventsource.drop_projection('revoked-inline')" -c "SELECT eventsource.drop_projection('revoked-async')" > /dev/null
no_escalation "5 revoked rights"
notifier_kept "5" es_security "$security_pid"

# ------------------------------------------------------------------------------------------------
# 6. Handlers run with the search path of create_projection, pg_temp last
# ------------------------------------------------------------------------------------------------
super > /dev/null <<'SQL'
CREATE TABLE public.totals (stream_id text PRIMARY KEY, events integer NOT NULL);
GRANT SELECT, INSERT, UPDATE ON public.totals TO modeler;
CREATE FUNCTION public.count_total(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO totals AS t VALUES (e.stream_id, 1) ON CONFLICT (stream_id) DO UPDATE SET events = t.events + 1;
END
$$;
SQL
total() { super -c "SELECT coalesce((SELECT events::text FROM public.totals WHERE stream_id = '$1'), 'none')"; }
out=$(psql_as modeler es_security <<'SQL'
SET search_path = public;
SELECT eventsource.create_projection('totals-inline', 'count_total(eventsource.event)', category => 'totalsinline');
SELECT eventsource.create_projection('totals-async', 'count_total(eventsource.event)', category => 'totalsasync', mode => 'async');
SQL
)
check "6 modeler creates an inline and an async projection with search_path public in effect" "$(sqlstate "$out")" ok
out=$(psql_as writer es_security -c "SELECT eventsource.append('totalsinline-1', 'Counted', '{}')")
check "6 the inline handler's INSERT INTO totals works" "$(sqlstate "$out")" ok
check "6 and lands in public.totals" "$(total totalsinline-1)" 1
psql_as writer es_security -c "SELECT eventsource.append('totalsasync-1', 'Counted', '{}')" > /dev/null
wait_projection totals-async "events_processed >= 1 OR last_error IS NOT NULL"
check "6 the async handler's INSERT INTO totals lands in public.totals" "$(total totalsasync-1)" 1
check "6 and the async projection runs" "$(projection_state totals-async with_error)" "running after 1 events"

out=$(psql_as modeler es_security <<'SQL'
SET search_path = pg_catalog;
SELECT eventsource.create_projection('totals-explicit', 'public.count_total(eventsource.event)', category => 'totalsexplicit',
                                     search_path => 'public');
SELECT eventsource.create_projection('totals-temp-first', 'public.count_total(eventsource.event)', category => 'totalstempfirst',
                                     search_path => 'pg_temp, public');
SQL
)
check "6 create_projection takes search_path =>" "$(sqlstate "$out")" ok
for category in totalsinline totalsexplicit totalstempfirst; do
  out=$(psql_as writer es_security <<SQL
CREATE TEMP TABLE totals (stream_id text PRIMARY KEY, events integer NOT NULL);
SELECT 'appended=' || eventsource.append('$category-2', 'Counted', '{}');
SELECT 'temp_rows=' || count(*) FROM pg_temp.totals;
SQL
)
  check "6 $category: with a temp table totals in the writer's session, the append works" "$(field appended "$out")" 1
  check "6 $category: the writer's temp table does not capture the handler's INSERT" "$(field temp_rows "$out")" 0
  check "6 $category: which lands in public.totals" "$(total "$category-2")" 1
done
no_escalation "6 the handler search path"
notifier_kept "6" es_security "$security_pid"

# ------------------------------------------------------------------------------------------------
# 7. The search path a projection keeps: the schemas that existed when it was created
# ------------------------------------------------------------------------------------------------
# dba (a superuser) and admin2 create projections whose handler writes to the unqualified totals
# (public.totals) with the default search path ("$user", public) or one naming a schema that does
# not exist yet; the writer, who may create schemas, then creates dba, staging and admin2, each with
# a table totals whose trigger makes the writer a superuser when a superuser runs it.
stored_search_path() { super -c "SELECT coalesce((SELECT search_path FROM eventsource.projections WHERE name = '$1'), 'no projection')"; }
super > /dev/null <<'SQL'
GRANT SELECT, INSERT, UPDATE ON public.totals TO admin2;
CREATE SCHEMA modeler AUTHORIZATION modeler;
SQL
created=(
  "$(psql_as dba es_security -c "SELECT eventsource.create_projection('dba-default', 'public.count_total(eventsource.event)', category => 'dbadefault', mode => 'async')")"
  "$(psql_as dba es_security -c "SET search_path = staging, public" \
       -c "SELECT eventsource.create_projection('dba-staging', 'public.count_total(eventsource.event)', category => 'dbastaging', mode => 'async')")"
  "$(psql_as admin2 es_security -c "SELECT eventsource.create_projection('admin2-default', 'public.count_total(eventsource.event)', category => 'admin2default')")"
  "$(psql_as modeler es_security -c "SELECT eventsource.create_projection('modeler-default', 'public.count_total(eventsource.event)', category => 'modelerdefault')")"
)
check "7 dba, admin2 and modeler create their projections" "$(for out in "${created[@]}"; do sqlstate "$out"; done | paste -sd ' ' -)" "ok ok ok ok"
for expected in "dba-default=public, pg_temp" "dba-staging=public, pg_temp" "admin2-default=public, pg_temp" \
  "modeler-default=modeler, public, pg_temp"; do
  check "7 ${expected%%=*} keeps the search path of the schemas that exist (\"\$user\" as its owner's own)" \
    "$(stored_search_path "${expected%%=*}")" "${expected#*=}"
done
traps=$(psql_as writer es_security <<'SQL'
CREATE SCHEMA trap;
GRANT USAGE ON SCHEMA trap TO PUBLIC;
CREATE TABLE trap.sprung (table_schema name, ran_as name);
GRANT INSERT ON trap.sprung TO PUBLIC;
CREATE FUNCTION trap.spring() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO trap.sprung VALUES (TG_TABLE_SCHEMA, current_user);
    BEGIN
        ALTER ROLE writer SUPERUSER;
        INSERT INTO evil.pwned (via, ran_as, application)
        VALUES ('a trigger on ' || TG_TABLE_SCHEMA || '.totals', current_user, current_setting('application_name'));
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NEW;
END
$$;
DO $do$
DECLARE
    s name;
BEGIN
    FOREACH s IN ARRAY ARRAY['dba', 'staging', 'admin2'] LOOP
        EXECUTE format('CREATE SCHEMA %I', s);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO PUBLIC', s);
        EXECUTE format('CREATE TABLE %I.totals (stream_id text PRIMARY KEY, events integer NOT NULL)', s);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.totals TO PUBLIC', s);
        EXECUTE format('CREATE TRIGGER spring BEFORE INSERT ON %I.totals FOR EACH ROW EXECUTE FUNCTION trap.spring()', s);
    END LOOP;
END
$do$;
SELECT 'traps=' || count(*) FROM pg_trigger WHERE tgname = 'spring';
SQL
)
check "7 the writer creates the schemas dba, staging and admin2, each with a trapped table totals" "$(field traps "$traps")" 3
for category in dbadefault dbastaging admin2default; do
  out=$(psql_as writer es_security -c "SELECT eventsource.append('$category-1', 'Counted', '{}')")
  check "7 $category: the writer appends" "$(sqlstate "$out")" ok
done
wait_projection dba-default "events_processed >= 1 OR last_error IS NOT NULL"
wait_projection dba-staging "events_processed >= 1 OR last_error IS NOT NULL"
for category in dbadefault dbastaging admin2default; do
  check "7 $category: the handler's INSERT INTO totals lands in public.totals" "$(total "$category-1")" 1
done
check "7 the writer's trigger on totals never ran" \
  "$(super -c "SELECT coalesce(string_agg(DISTINCT table_schema || '.totals as ' || ran_as, ', '), '') FROM trap.sprung")" ""
no_escalation "7 schemas created after the projections"
super -c "SELECT eventsource.drop_projection(name) FROM eventsource.projections WHERE name IN ('dba-default', 'dba-staging', 'admin2-default', 'modeler-default')" \
  -c "DROP SCHEMA modeler" > /dev/null
psql_as writer es_security -c "DROP SCHEMA dba, staging, admin2, trap CASCADE" > /dev/null

# ------------------------------------------------------------------------------------------------
# 8. A temporary schema named in search_path => (pg_temp_N): left out, pg_temp last
# ------------------------------------------------------------------------------------------------
out=$(psql_as modeler es_security -c "SELECT eventsource.create_projection('temp-numbered', 'public.count_total(eventsource.event)', category => 'tempnumbered', search_path => 'pg_temp_8, public')")
check "8 create_projection takes search_path => 'pg_temp_8, public'" "$(sqlstate "$out")" ok
check "8 and keeps public, pg_temp last, no pg_temp_8" "$(stored_search_path temp-numbered)" "public, pg_temp"
super -c "SELECT eventsource.drop_projection('temp-numbered')" > /dev/null

# ------------------------------------------------------------------------------------------------
# 9. A handler in a schema its projection's owner may not use
# ------------------------------------------------------------------------------------------------
# The superuser's schema private (no USAGE for anyone else) holds a SECURITY DEFINER maintenance
# function that PUBLIC may execute; the attacker names it by OID, which skips the name lookup.
super > /dev/null <<'SQL'
CREATE SCHEMA private;
CREATE FUNCTION private.nightly_maintenance() RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    ALTER ROLE attacker CREATEROLE;
    INSERT INTO evil.pwned (via, ran_as, application)
    VALUES ('private.nightly_maintenance()', current_user, current_setting('application_name'));
END
$$;
CREATE FUNCTION private.project_nothing(e eventsource.event) RETURNS void LANGUAGE plpgsql AS 'BEGIN NULL; END';
SQL
out=$(psql_as attacker es_security -c "SELECT eventsource.create_projection('maintenance', 'evil.handle_nothing(eventsource.event)', category => 'maintenance',
         reset_handler => (SELECT oid FROM pg_catalog.pg_proc WHERE proname = 'nightly_maintenance')::oid::regprocedure)")
check "9 create_projection with reset_handler => private.nightly_maintenance() by OID fails with 42501" "$(sqlstate "$out")" 42501
check "9 and its detail: the attacker may not use schema private" "$(mentions "$out" 'may not use schema "private"')" 'may not use schema "private"'
psql_as attacker es_security -c "SELECT eventsource.rebuild_projection('maintenance')" > /dev/null
no_escalation "9 rebuild_projection with a reset handler in schema private"
super -c "GRANT USAGE ON SCHEMA private TO attacker" > /dev/null
inline_then_refused "9 with USAGE on schema private" attacker private-inline 'private.project_nothing(eventsource.event)' privateinline \
  "REVOKE USAGE ON SCHEMA private FROM attacker"
super -c "SELECT eventsource.drop_projection(name) FROM eventsource.projections WHERE name IN ('maintenance', 'private-inline')" \
  -c "SET client_min_messages = warning" -c "DROP SCHEMA private CASCADE" > /dev/null
no_escalation "9 a handler in schema private"

# ------------------------------------------------------------------------------------------------
# 10. A handler that another (non-superuser) role owns, and could replace
# ------------------------------------------------------------------------------------------------
super -c "GRANT CREATE ON SCHEMA public TO writer" > /dev/null
psql_as writer es_security > /dev/null <<'SQL'
CREATE FUNCTION public.h(e eventsource.event) RETURNS void LANGUAGE plpgsql AS 'BEGIN NULL; END';
REVOKE EXECUTE ON FUNCTION public.h(eventsource.event) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.h(eventsource.event) TO admin2;
CREATE TABLE public.h_ran (ran_as name);
GRANT INSERT ON public.h_ran TO PUBLIC;
SQL
out=$(psql_as admin2 es_security -c "SELECT eventsource.create_projection('writers-handler', 'public.h(eventsource.event)', category => 'writershandler')")
check "10 admin2's create_projection with the writer's public.h fails with 42501" "$(sqlstate "$out")" 42501
check "10 and its detail: public.h belongs to role writer" "$(mentions "$out" 'belongs to role "writer"')" 'belongs to role "writer"'
# What the writer would do next: replace the body, and append.
psql_as writer es_security > /dev/null <<'SQL'
CREATE OR REPLACE FUNCTION public.h(e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.h_ran VALUES (current_user);
END
$$;
SELECT eventsource.append('writershandler-1', 'Appended', '{}');
SQL
check "10 the writer's replaced public.h never ran as another role" \
  "$(super -c "SELECT coalesce(string_agg(DISTINCT ran_as, ', '), '') FROM public.h_ran WHERE ran_as <> 'writer'")" ""
# A superuser's projection may not take it either (a superuser has the rights of every role), nor
# an administrator's one owned by a group it is in (another member could replace it).
out=$(psql_as dba es_security -c "SELECT eventsource.create_projection('writers-handler-dba', 'public.h(eventsource.event)', category => 'writershandler')")
check "10 a superuser's create_projection with the writer's public.h fails with 42501" "$(sqlstate "$out")" 42501
super -c "CREATE FUNCTION public.group_h(e eventsource.event) RETURNS void LANGUAGE plpgsql AS 'BEGIN NULL; END'" \
  -c "ALTER FUNCTION public.group_h(eventsource.event) OWNER TO eventsource_admin" > /dev/null
out=$(psql_as admin2 es_security -c "SELECT eventsource.create_projection('group-handler', 'public.group_h(eventsource.event)', category => 'grouphandler')")
check "10 admin2's create_projection with a handler eventsource_admin owns fails with 42501" "$(sqlstate "$out")" 42501
super -c "CREATE FUNCTION public.h2(e eventsource.event) RETURNS void LANGUAGE plpgsql AS 'BEGIN NULL; END'" > /dev/null
inline_then_refused "10 a handler of the superuser's" admin2 handed-handler 'public.h2(eventsource.event)' handedhandler \
  "ALTER FUNCTION public.h2(eventsource.event) OWNER TO writer"
super -c "SELECT eventsource.drop_projection(name) FROM eventsource.projections WHERE name IN ('writers-handler', 'handed-handler')" \
  -c "DROP FUNCTION public.h(eventsource.event), public.h2(eventsource.event), public.group_h(eventsource.event)" \
  -c "DROP TABLE public.h_ran" \
  -c "REVOKE CREATE ON SCHEMA public FROM writer" > /dev/null
no_escalation "10 a handler another role owns"

# ------------------------------------------------------------------------------------------------
# 11. REASSIGN OWNED and DROP OWNED of eventsource_reader's subscriptions by a reader
# ------------------------------------------------------------------------------------------------
# owned PATTERN: the projections and subscriptions named LIKE PATTERN, their owners and members.
owned() {
  super -c "SELECT coalesce(string_agg(line, '; ' ORDER BY line), 'none') FROM (
              SELECT 'projection ' || name || ' of ' || owner AS line FROM eventsource.projections WHERE name LIKE '$1'
              UNION ALL
              SELECT 'subscription ' || name || ' of ' || owner FROM eventsource.subscriptions WHERE name LIKE '$1'
              UNION ALL
              SELECT 'member ' || subscription_name || '/' || consumer_group_member || ' at ' || coalesce(checkpoint::text, 'start')
                FROM eventsource.subscription_members WHERE subscription_name LIKE '$1') o"
}
# Subscriptions as the upgrade to 0.6.0 leaves them (owned by eventsource_reader), one acknowledged.
psql_as writer es_security -c "SELECT eventsource.append('legacy-' || n, 'Billed', '{}') FROM generate_series(1, 3) AS n" > /dev/null
super -c "SELECT eventsource.create_subscription('legacy-' || n, category => 'legacy', owner => 'eventsource_reader') FROM generate_series(1, 2) AS n" > /dev/null
out=$(psql_as reader es_security -c "SELECT count(*) FROM eventsource.poll('legacy-1')" \
        -c "SELECT eventsource.ack('legacy-1', (SELECT checkpoint FROM eventsource.read_category('legacy') ORDER BY global_position DESC LIMIT 1), 0, (SELECT lease FROM eventsource.subscription_members WHERE subscription_name = 'legacy-1' AND consumer_group_member = 0))")
check "11 reader polls and acknowledges legacy-1" "$(sqlstate "$out")" ok
legacy=$(owned 'legacy-%')
for attack in "reader2:REASSIGN OWNED BY eventsource_reader TO reader2" "reader:DROP OWNED BY eventsource_reader"; do
  out=$(psql_as "${attack%%:*}" es_security -c "${attack#*:}")
  check "11 PostgreSQL lets ${attack%%:*} run ${attack#*:}" "$(sqlstate "$out")" ok
  check "11 ${attack%%:*}'s ${attack#*:}: the legacy subscriptions, their owner and checkpoints are unchanged" "$(owned 'legacy-%')" "$legacy"
  super -c "SELECT eventsource.set_subscription_owner(name, 'eventsource_reader') FROM eventsource.subscriptions WHERE name LIKE 'legacy-%'" > /dev/null
done
super -c "SELECT eventsource.create_subscription('handover-subscription', owner => 'outgoing')" > /dev/null
psql_as outgoing es_security -c "SELECT eventsource.create_projection('handover-projection', 'public.project_nothing(eventsource.event)', category => 'handover')" > /dev/null
out=$(psql_as admin2 es_security -c "REASSIGN OWNED BY outgoing TO incoming")
check "11 admin2's REASSIGN OWNED BY outgoing TO incoming hands outgoing's projection and subscription to incoming" \
  "$(sqlstate "$out"): $(owned 'handover-%')" \
  "ok: member handover-subscription/0 at start; projection handover-projection of incoming; subscription handover-subscription of incoming"
out=$(psql_as admin2 es_security -c "DROP OWNED BY incoming")
check "11 admin2's DROP OWNED BY incoming drops them" "$(sqlstate "$out"): $(owned 'handover-%')" "ok: none"
no_escalation "11 REASSIGN OWNED and DROP OWNED"

# ------------------------------------------------------------------------------------------------
# 12. A subscription owner that is no role ('-', OID 0)
# ------------------------------------------------------------------------------------------------
out=$(psql_as attacker es_security -c "SELECT eventsource.create_subscription('ownerless', owner => '-')")
check "12 create_subscription('ownerless', owner => '-') fails with 22023" "$(sqlstate "$out")" 22023
check "12 and creates nothing" "$(owned ownerless)" none
psql_as attacker es_security -c "SELECT eventsource.create_subscription('disowned')" > /dev/null
out=$(psql_as attacker es_security -c "SELECT eventsource.set_subscription_owner('disowned', '-')")
check "12 set_subscription_owner('disowned', '-') fails with 22023" "$(sqlstate "$out")" 22023
check "12 and disowned still belongs to attacker" "$(owned disowned)" "member disowned/0 at start; subscription disowned of attacker"

# ------------------------------------------------------------------------------------------------
# 13. The $streams audit event names the role that really called delete_stream
# ------------------------------------------------------------------------------------------------
# The attacker's SECURITY DEFINER evil.framer() deletes account-7; the writer, who may not call
# delete_stream, calls it: the deletion is the attacker's, and the audit must not blame the writer.
psql_as writer es_security -c "SELECT eventsource.append('account-7', 'Opened', '{}')" > /dev/null
out=$(psql_as writer es_security -c "SELECT eventsource.delete_stream('account-7')")
check "13 the writer may not call delete_stream (42501)" "$(sqlstate "$out")" 42501
psql_as attacker es_security > /dev/null <<'SQL'
CREATE FUNCTION evil.framer() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT eventsource.delete_stream('account-7') $$;
REVOKE EXECUTE ON FUNCTION evil.framer() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evil.framer() TO writer;
SQL
out=$(psql_as writer es_security -c "SELECT evil.framer()")
check "13 the writer calls evil.framer(), which deletes account-7" "$(sqlstate "$out")" ok
check "13 the \$stream-deleted event of account-7 names the attacker as its role, the writer as session_user" \
  "$(super -c "SELECT coalesce((SELECT (metadata->>'role') || ' ' || (metadata->>'session_user')
                                  FROM eventsource.read_stream('\$streams', max_count => 100000)
                                 WHERE event_type = '\$stream-deleted' AND data->>'stream_id' = 'account-7'
                                 ORDER BY stream_version DESC LIMIT 1), 'no such event')")" "attacker writer"
no_escalation "13 the audit of a SECURITY DEFINER function's delete_stream"
notifier_kept "13" es_security "$security_pid"

# ------------------------------------------------------------------------------------------------
# 14. DROP DATABASE by the database's owner: a terminated one, one in a transaction block
# ------------------------------------------------------------------------------------------------
paused_pid=$(wait_notifier es_paused)
check "14 a notifier serves es_paused" "$([ "$paused_pid" != none ] && echo t || echo f)" t
notifier_state() { super -c "SELECT 'paused ' || paused || ', running ' || (pid IS NOT NULL) FROM eventsource.notifier_status() WHERE database_name = '$1'"; }
# A superuser's session in es_paused, so that the DROP waits (up to 5 s) for it to go.
PGAPPNAME=es_holder psql -X -q -U postgres -d es_paused -c "SELECT pg_sleep(60)" > /dev/null 2>&1 &
background+=("$!")
wait_until 10 "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'es_holder' AND datname = 'es_paused')"
PGAPPNAME=es_dropper psql_as dbowner postgres -c "DROP DATABASE es_paused" > "$tmp/drop.out" &
dropper=$!
background+=("$dropper")
check "14 dbowner's DROP DATABASE es_paused waits for the other session, the notifier paused" \
  "$(wait_until 5 "SELECT (SELECT paused FROM eventsource.notifier_status() WHERE database_name = 'es_paused')
                      AND EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'es_dropper' AND query LIKE 'DROP DATABASE%')" \
       && echo t || echo "f ($(notifier_state es_paused))")" t
super -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'es_dropper'" > /dev/null
wait "$dropper"
check "14 the DROP's backend is terminated (57P01)" "$(mentions "$(cat "$tmp/drop.out")" 57P01)" 57P01
wait_until 5 "SELECT NOT paused AND pid IS NOT NULL FROM eventsource.notifier_status() WHERE database_name = 'es_paused'"
check "14 within 5 s the notifier of es_paused is no longer paused, and runs" "$(notifier_state es_paused)" "paused false, running true"
super -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'es_holder'" > /dev/null
check "14 es_paused still exists" "$(super -c "SELECT count(*) FROM pg_database WHERE datname = 'es_paused'")" 1
paused_pid=$(wait_notifier es_paused)
# A notifier left paused is resumed (by a superuser's failing rename, which pauses it and resumes
# it), so that the next check is judged alone.
if [ "$paused_pid" = none ]; then
  super -c "ALTER DATABASE es_paused RENAME TO es_paused" > /dev/null 2>&1
  paused_pid=$(wait_notifier es_paused)
fi
out=$(psql_as dbowner postgres -v ON_ERROR_STOP=0 <<'SQL'
BEGIN;
DROP DATABASE es_paused;
ROLLBACK;
SQL
)
check "14 BEGIN; DROP DATABASE es_paused; ROLLBACK by dbowner fails with 25001" "$(sqlstate "$out")" 25001
check "14 and the notifier of es_paused kept its process" "$(wait_notifier es_paused)" "$paused_pid"
no_escalation "14 DROP DATABASE es_paused by its owner"

# ------------------------------------------------------------------------------------------------
# 15. Statements during which PostgreSQL registers exit callbacks of its own, by a plain role
# ------------------------------------------------------------------------------------------------
# The server's (re)start: a crash restart keeps the postmaster, and so pg_postmaster_start_time(),
# but starts a new checkpointer.
server_start() { super -c "SELECT backend_start FROM pg_stat_activity WHERE backend_type = 'checkpointer'" 2>&1; }
started=$(server_start)
log_lines=$(wc -l < "$tmp/server.log")
for finish_prepared in "COMMIT PREPARED" "ROLLBACK PREPARED"; do
  psql_as nobody postgres -c "BEGIN" -c "SELECT 1" -c "PREPARE TRANSACTION 'es_nobody'" > /dev/null
  out=$(psql_as nobody postgres -c "$finish_prepared 'es_nobody'" -c "SELECT 'after=done'")
  check "15 nobody's $finish_prepared from another session succeeds, and the session goes on" \
    "$(sqlstate "$out") $(field after "$out")" "ok done"
done
check "15 no prepared transaction is left" "$(super -c "SELECT count(*) FROM pg_prepared_xacts")" 0
out=$(psql_as nobody postgres -c 'DO $$ BEGIN CREATE TEMP TABLE es_first_temp (a int); COMMIT; END $$' \
        -c "SET idle_session_timeout = '200ms'" -c "SELECT pg_sleep(0.6)" -c "SELECT 'after=done'")
check "15 nobody's DO block that creates its session's first temporary table succeeds" \
  "$(sqlstate "$out") $(field after "$out")" "ok done"
# The same in a session that then idles until idle_session_timeout ends it (FATAL 57P05).
out=$({ echo 'DO $$ BEGIN CREATE TEMP TABLE es_first_temp (a int); COMMIT; END $$;'
        echo "SET idle_session_timeout = '200ms';"; sleep 1; echo "SELECT 'after=done';"; } |
      psql_as nobody postgres -v ON_ERROR_STOP=0)
check "15 and in a session that then idles, idle_session_timeout ends the session (57P05)" \
  "$(sqlstate "$out") $(mentions "$out" 57P05)" "ok 57P05"
sleep 1
check "15 the server did not restart (its checkpointer's start is unchanged)" "$(server_start)" "$started"
check "15 no backend was terminated by a signal" \
  "$(tail -n +"$((log_lines + 1))" "$tmp/server.log" | grep -c 'terminated by signal')" 0
no_escalation "15 statements that register exit callbacks"
notifier_kept "15" es_security "$security_pid"

finish security
