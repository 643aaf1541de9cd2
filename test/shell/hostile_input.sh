#!/usr/bin/env bash
# hostile_input.sh: a generated corpus of thousands of hostile calls to every public function
# (malformed JSON, payloads up to and past the limits, NUL bytes and invalid UTF-8 via bytea casts,
# extreme integers, NULL in every argument, SQL-injection strings in every text argument; and, for
# the stream lifecycle, hostile metadata, stream ids and versions to set_stream_metadata,
# delete_stream, tombstone_stream, stream_metadata and scavenge). Each is
# rejected with a documented SQLSTATE (never class XX or 58) or accepted and read back byte for
# byte; the server never crashes and the baseline store is unchanged.
# Starts its cluster with pg_virtualenv on a port of its own, next to test/run's cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ -z "${EVENTSOURCE_HOSTILE_CLUSTER:-}" ]; then
  EVENTSOURCE_HOSTILE_CLUSTER=1 exec pg_virtualenv -t -c "-p $((${PGPORT:-5432} + 16))" -v 15 \
    -o shared_preload_libraries=eventsource -o eventsource.worker_databases=es_hostile "$0"
fi

source "$here/lib/check.sh"
export PGCLIENTENCODING=UTF8
db=es_hostile
log_file() { ls "$(dirname "$PG_CLUSTER_CONF_ROOT")"/log/*.log | head -1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

createdb -E UTF8 -T template0 --locale=C "$db"
psql_db -f - <<'SQL'
CREATE EXTENSION eventsource;
CREATE SCHEMA hostile;
CREATE TABLE hostile.cases (id int PRIMARY KEY, kind text, sql text, expect text, extra text[], verify text, events int);
CREATE TABLE hostile.results (id int PRIMARY KEY, sqlstate text, message text, verified boolean);
CREATE TABLE hostile.base_seen (global_position bigint PRIMARY KEY);
CREATE FUNCTION hostile.noop(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION hostile.noop_reset() RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION hostile.noop_set(e eventsource.event) RETURNS SETOF int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION hostile.two(e eventsource.event, i int) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION hostile.see_base(e eventsource.event) RETURNS void LANGUAGE sql
    AS 'INSERT INTO hostile.base_seen VALUES (e.global_position)';
-- try(sql): runs one statement; 'ok', or the SQLSTATE and message of its error.
CREATE FUNCTION hostile.try(statement text, OUT state text, OUT message text) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    state := 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
END
$$;
-- run(from_id): every case from from_id on, each in its own transaction, then its verification.
CREATE PROCEDURE hostile.run(from_id int) LANGUAGE plpgsql AS $$
DECLARE
    c record;
    r record;
    good boolean;
BEGIN
    FOR c IN SELECT * FROM hostile.cases WHERE id >= from_id ORDER BY id LOOP
        INSERT INTO hostile.results (id, sqlstate) VALUES (c.id, 'running');
        COMMIT;
        r := hostile.try(c.sql);
        good := NULL;
        IF r.state = 'ok' AND c.verify IS NOT NULL THEN
            BEGIN
                EXECUTE c.verify INTO good;
            EXCEPTION WHEN OTHERS THEN
                good := false;
            END;
        END IF;
        UPDATE hostile.results SET sqlstate = r.state, message = left(r.message, 300), verified = good WHERE id = c.id;
        COMMIT;
    END LOOP;
END
$$;
-- The baseline: what the corpus must leave alone.
SELECT eventsource.append('base-1', 'Opened', '{"a": 1}', '{"m": "x"}');
SELECT eventsource.append('base-1', 'Changed', '{"b": [1, 2]}');
SELECT * FROM eventsource.append_events('base-2', '[{"type": "A", "data": {}}, {"type": "B", "data": {"z": null}}]');
SELECT eventsource.save_snapshot('base-1', 2, '{"s": 2}');
SELECT eventsource.save_snapshot('base-2', 1, '{"s": 1}', 3);
SELECT eventsource.create_subscription('base-sub', consumer_group_size => 2);
SELECT eventsource.create_subscription('hsub', category => 'h', consumer_group_size => 2);
SELECT eventsource.create_projection('base-proj', 'hostile.see_base(eventsource.event)', category => 'base');
SELECT eventsource.rebuild_projection('base-proj');
SQL
psql_db -c "SELECT count(*) FROM eventsource.poll('base-sub', 2)" \
  -c "SELECT eventsource.ack('base-sub', checkpoint, 0, (SELECT lease FROM eventsource.subscription_members WHERE subscription_name = 'base-sub' AND consumer_group_member = 0)) FROM eventsource.read_all(max_count => 1)" > /dev/null

fingerprint() {
  psql_db <<'SQL'
SELECT x FROM (
  SELECT format('e %s', row(e.*)) FROM eventsource.events e WHERE stream_id LIKE 'base-%'
  UNION ALL SELECT format('s %s', row(s.*)) FROM eventsource.streams s WHERE stream_id LIKE 'base-%'
  UNION ALL SELECT format('n %s', row(n.*)) FROM eventsource.snapshots n WHERE stream_id LIKE 'base-%'
  UNION ALL SELECT format('u %s', row(u.*)) FROM eventsource.subscriptions u WHERE name LIKE 'base-%'
  UNION ALL SELECT format('m %s', row(m.*)) FROM eventsource.subscription_members m WHERE subscription_name LIKE 'base-%'
  UNION ALL SELECT format('p %s %s %s %s %s', name, handler, category, mode, status) FROM eventsource.projections WHERE name LIKE 'base-%'
  UNION ALL SELECT format('b %s', global_position) FROM hostile.base_seen
  UNION ALL SELECT format('c %s %s %s', c.relname, c.relkind, n.nspname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relpersistence <> 't' AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname <> 'hostile'
  UNION ALL SELECT format('f %s', p.oid::regprocedure) FROM pg_proc p WHERE p.pronamespace = 'eventsource'::regnamespace
  UNION ALL SELECT format('x %s %s', extname, extversion) FROM pg_extension
  UNION ALL SELECT format('r %s', rolname) FROM pg_roles
  UNION ALL SELECT format('t %s %s', tgname, tgenabled) FROM pg_trigger WHERE NOT tgisinternal
) f(x) ORDER BY x
SQL
}
before=$(fingerprint)
events_before=$(psql_db -c "SELECT count(*) FROM eventsource.events")
postmaster() { ps -o ppid= -p "$(psql_db -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")" | tr -d ' '; }
postmaster_pid=$(postmaster)
log=$(log_file)
log_lines_before=$(wc -l < "$log")

/usr/bin/python3 "$here/hostile/corpus.py" > "$work/corpus.sql"
psql_db -f "$work/corpus.sql" > /dev/null
cases=$(psql_db -c "SELECT count(*) FROM hostile.cases")

# Run the corpus; should a case end the backend, mark it and go on after it (at most 5 times).
from=1
for attempt in 1 2 3 4 5 6; do
  if psql_db -c "SET synchronous_commit = off" -c "CALL hostile.run($from)" > "$work/run.$attempt.out" 2>&1; then
    break
  fi
  cat "$work/run.$attempt.out"
  for _ in $(seq 100); do pg_isready -q -d "$db" && break; sleep 0.2; done
  sleep 1
  crashed=$(psql_db -c "SELECT coalesce(max(id), 0) FROM hostile.results WHERE sqlstate = 'running'")
  [ "$crashed" -eq 0 ] && crashed=$(psql_db -c "SELECT coalesce(max(id), 0) FROM hostile.results")
  psql_db -c "UPDATE hostile.results SET sqlstate = 'CRASH' WHERE id = $crashed" \
    -c "INSERT INTO hostile.results (id, sqlstate) VALUES ($crashed, 'CRASH') ON CONFLICT DO NOTHING" > /dev/null
  echo "# case $crashed ended the backend: $(psql_db -c "SELECT left(sql, 300) FROM hostile.cases WHERE id = $crashed")"
  from=$((crashed + 1))
done

# Classify every outcome.
psql_db -f - > "$work/summary.txt" <<'SQL'
CREATE VIEW hostile.outcomes AS
SELECT c.id, c.kind, c.sql, c.expect, r.sqlstate, r.message, r.verified, c.verify, c.events,
       CASE
         WHEN r.sqlstate IS NULL THEN 'not run'
         WHEN r.sqlstate IN ('CRASH', 'running') THEN 'crash'
         WHEN r.sqlstate = 'ok' AND c.verify IS NOT NULL AND r.verified IS NOT TRUE THEN 'accepted but not read back identical'
         WHEN r.sqlstate = 'ok' AND c.expect IS NOT NULL AND c.expect <> 'ok' THEN 'accepted, expected ' || c.expect
         WHEN r.sqlstate = 'ok' THEN 'good'
         WHEN r.sqlstate LIKE 'XX%' OR r.sqlstate LIKE '58%' OR r.sqlstate LIKE '53%' OR r.sqlstate LIKE '57%' THEN 'internal error'
         WHEN c.expect IS NOT NULL AND r.sqlstate <> c.expect AND NOT r.sqlstate = ANY (c.extra) THEN 'expected ' || c.expect
         WHEN r.sqlstate IN ('SE001', 'SE002', 'SE004', '22004', '22023', '22001', '22P02', '42704', '42710', '42883', '42P13',
                             -- the stream lifecycle (0.5.0): numbers and intervals out of range, bad intervals,
                             -- tombstoned streams, read-only transactions
                             '22003', '22007', '22008', 'SE005', '25006',
                             -- an ack whose lease does not hold the batch (0.7.0)
                             '55006')
              OR r.sqlstate = ANY (c.extra) THEN 'good'
         ELSE 'undocumented SQLSTATE'
       END AS verdict
  FROM hostile.cases c LEFT JOIN hostile.results r USING (id);
SELECT '# ' || count(*) || ' cases: ' || count(*) FILTER (WHERE sqlstate = 'ok') || ' accepted ('
       || count(*) FILTER (WHERE sqlstate = 'ok' AND verified) || ' read back and verified), '
       || count(*) FILTER (WHERE sqlstate <> 'ok') || ' rejected'
  FROM hostile.outcomes;
SELECT '#   rejected with ' || sqlstate || ': ' || count(*) FROM hostile.outcomes WHERE sqlstate <> 'ok' GROUP BY sqlstate ORDER BY sqlstate;
SELECT '# BAD ' || id || ' [' || kind || '] ' || verdict || ': ' || coalesce(sqlstate, '-') || ' ' || coalesce(message, '') || ' <- ' || left(sql, 200)
  FROM hostile.outcomes WHERE verdict <> 'good' ORDER BY id;
SQL
cat "$work/summary.txt"
bad() { psql_db -c "SELECT count(*) FROM hostile.outcomes WHERE verdict = '$1'"; }
check "all $cases cases ran" "$(psql_db -c "SELECT count(*) FROM hostile.results WHERE sqlstate NOT IN ('running', 'CRASH')")" "$cases"
check "no case ended its backend" "$(bad crash)" 0
check "no case raised an internal error (class XX, 58, 53 or 57)" "$(bad 'internal error')" 0
check "every rejection has a documented SQLSTATE" "$(bad 'undocumented SQLSTATE')" 0
check "every case with a documented outcome got it" \
  "$(psql_db -c "SELECT count(*) FROM hostile.outcomes WHERE verdict LIKE 'expected %' OR verdict LIKE 'accepted, expected %'")" 0
check "every accepted write reads back byte-identical" "$(bad 'accepted but not read back identical')" 0
check "the corpus both accepted and rejected hundreds of cases" \
  "$(psql_db -c "SELECT count(*) FILTER (WHERE sqlstate = 'ok') > 300 AND count(*) FILTER (WHERE sqlstate <> 'ok') > 1000 FROM hostile.results")" t
check "the log grew by exactly the events of the accepted writes" \
  "$(psql_db -c "SELECT count(*) FROM eventsource.events")" \
  "$(psql_db -c "SELECT $events_before + coalesce(sum(events), 0) FROM hostile.outcomes WHERE sqlstate = 'ok'")"
check "the baseline (events, streams, snapshots, subscription, projection, catalog) is unchanged" "$(fingerprint | md5sum)" "$(md5sum <<<"$before")"
diff <(echo "$before") <(fingerprint) | head -20 | sed 's/^/# /' || true
check "no subscription or projection of the corpus is left" \
  "$(psql_db -c "SELECT (SELECT string_agg(name, ',' ORDER BY name) FROM eventsource.subscriptions) || ' ' || (SELECT string_agg(name, ',' ORDER BY name) FROM eventsource.projections)")" \
  "base-sub,hsub base-proj"
check "the postmaster is the same process" "$(postmaster)" "$postmaster_pid"
crash_lines=$(tail -n +"$((log_lines_before + 1))" "$log" | grep -E 'PANIC|terminated by signal|was terminated|server process .* exited|all server processes terminated|database system was interrupted' || true)
[ -n "$crash_lines" ] && echo "$crash_lines" | head -20 | sed 's/^/# /'
check "the server log has no crash, PANIC or terminated process" "$(grep -c . <<<"$crash_lines" || true)" 0
check "the server still answers" "$(psql_db -c "SELECT eventsource.stream_version('base-1')")" 2

finish hostile_input
