#!/usr/bin/env bash
# stress_log_order.sh: appends and deletes racing on a few hot streams, from transactions that write
# to the stream first and from transactions that wrote elsewhere before (and so have older
# transaction ids). A transaction that cannot be put in log order fails with 40001 and pgbench
# retries it. Afterwards the global log (transaction_id, global_position order) must keep every
# stream's versions increasing, put every $stream-deleted marker after every event it covers, and
# put no event that survives a delete before the delete's marker.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${STRESS_SECONDS:-15}
clients=${STRESS_CLIENTS:-12}
db=es_stress_log_order
pgbench_log=${TMPDIR:-/tmp}/es_stress_log_order_pgbench.log

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

dropdb --if-exists "$db"
createdb "$db"
psql_db >/dev/null <<'SQL'
CREATE EXTENSION eventsource;
-- The writes some transactions make before they append or delete.
CREATE TABLE elsewhere (client int NOT NULL);
-- Nothing may be scavenged while the test runs: a subscription from the beginning holds the log.
SELECT eventsource.create_subscription('hold-the-log');
SELECT eventsource.append('hot-' || n, 'Appended', jsonb_build_object('client', 0)) FROM generate_series(1, 4) AS n;
SQL

echo "# $clients clients for ${seconds}s on 4 streams: first-write and later-write appends and deletes"
pgbench -n -c "$clients" -j 2 -T "$seconds" --max-tries=1000 \
  -f "$here/stress/log_order_first_write_append.pgbench@4" \
  -f "$here/stress/log_order_later_write_append.pgbench@4" \
  -f "$here/stress/log_order_later_write_delete.pgbench@1" \
  -f "$here/stress/log_order_first_write_delete.pgbench@1" "$db" > "$pgbench_log" 2>&1 \
  || { cat "$pgbench_log"; exit 1; }
grep -E "^(number of (transactions|failed)|total number of retries|SQL script)| - ([0-9]+ transactions|number of transactions retried)" \
  "$pgbench_log" | sed 's/^/# /'

results=$(psql_db -v test=stress_log_order -v lib="$here/lib" <<'SQL'
SELECT '# ' || count(*) FILTER (WHERE stream_id LIKE 'hot-%') || ' events in the hot streams, '
       || count(*) FILTER (WHERE event_type = '$stream-deleted') || ' deletes'
  FROM eventsource.events;

CREATE TEMP TABLE checks (name text, passed boolean, detail text);

-- Every stream's versions, $streams's included, increase in log order.
INSERT INTO checks
SELECT 'every stream''s versions increase in log order', count(*) = 0, count(*) || ' inversions'
  FROM (SELECT stream_version,
               lag(stream_version) OVER (PARTITION BY stream_id ORDER BY transaction_id, global_position) AS previous
          FROM eventsource.events) AS ordered
 WHERE previous >= stream_version;

-- The hot streams' events and the markers of their deletes, in log order: an event may follow no
-- marker that covers it, and precede none that it survives.
CREATE TEMP TABLE placed AS
SELECT stream_id, version, through,
       max(through) OVER (PARTITION BY stream_id ORDER BY transaction_id, global_position
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS through_before,
       min(through) OVER (PARTITION BY stream_id ORDER BY transaction_id, global_position
                          ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS through_after
  FROM (SELECT stream_id, stream_version AS version, NULL::bigint AS through, transaction_id, global_position
          FROM eventsource.events WHERE stream_id LIKE 'hot-%'
        UNION ALL
        SELECT data->>'stream_id', NULL, (data->>'stream_version')::bigint, transaction_id, global_position
          FROM eventsource.events
         WHERE stream_id = '$streams' AND event_type IN ('$stream-deleted', '$stream-tombstoned')) AS log;

INSERT INTO checks
SELECT 'every event a delete covers comes before its marker', count(*) = 0, count(*) || ' events after a marker that covers them'
  FROM placed WHERE version <= through_before;
INSERT INTO checks
SELECT 'no event that survives a delete comes before its marker', count(*) = 0, count(*) || ' surviving events before a marker'
  FROM placed WHERE version > through_after;
INSERT INTO checks
SELECT 'the streams were deleted and appended to after deletes', count(*) FILTER (WHERE through IS NOT NULL) > 0
       AND count(*) FILTER (WHERE version > through_before) > 0,
       count(*) FILTER (WHERE through IS NOT NULL) || ' markers'
  FROM placed;

\i :lib/stress_checks.sql
SQL
)
echo "$results"
dropdb "$db"
[[ "$results" == *" 0 failed" ]]
