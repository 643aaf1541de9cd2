#!/usr/bin/env bash
# transfer_stress.sh: transfers between 50 accounts from 8 clients, no retries, written two ways in
# turn: as two appends in one transaction, which fail when opposite transfers meet (deadlocks, or
# 40001 for the log order: reported, as the contrast), and as one call of append_to_streams, which
# must never fail. Afterwards an independent check of the log: every transfer's transaction wrote
# exactly one Debited and one Credited event, of the two accounts it names, and every stream's
# versions run 1..n and increase in log order.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${STRESS_SECONDS:-10}
clients=${STRESS_CLIENTS:-8}
db=es_transfer_stress
pgbench_log=${TMPDIR:-/tmp}/es_transfer_stress_pgbench.log

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

dropdb --if-exists "$db"
createdb "$db"
psql_db -c "CREATE EXTENSION eventsource" \
  -c "SELECT eventsource.append('account-' || n, 'Opened', '{}') FROM generate_series(1, 50) AS n" > /dev/null

# run WORKLOAD: pgbench with no retries; prints "transactions failed".
run() {
  pgbench -n -c "$clients" -j 2 -T "$seconds" -f "$here/stress/$1.pgbench" "$db" > "$pgbench_log" 2>&1 \
    || { cat "$pgbench_log"; exit 1; }
  echo "$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$pgbench_log")" \
       "$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$pgbench_log")"
}

read -r two_done two_failed <<< "$(run transfer_two_appends)"
echo "# two appends in a transaction: $two_done transfers, $two_failed failed ($(( 100 * two_failed / (two_done + two_failed) ))%)"
read -r call_done call_failed <<< "$(run transfer_append_to_streams)"
echo "# append_to_streams: $call_done transfers, $call_failed failed"

results=$(psql_db -v test=transfer_stress -v lib="$here/lib" -v call_done="$call_done" -v call_failed="$call_failed" <<'SQL'
CREATE TEMP TABLE checks (name text, passed boolean, detail text);

INSERT INTO checks
SELECT 'append_to_streams: no transfer failed, and transfers were made',
       :call_failed = 0 AND :call_done > 0, :call_failed || ' failed of ' || :call_failed + :call_done;

-- Each transfer's transaction: one Debited of the source, one Credited of the target.
INSERT INTO checks
SELECT 'every transfer wrote one debit and one credit, of the accounts it names, in one transaction',
       count(*) FILTER (WHERE NOT ok) = 0 AND count(*) > 0, count(*) FILTER (WHERE NOT ok) || ' bad transactions of ' || count(*)
  FROM (SELECT count(*) = 2
               AND count(*) FILTER (WHERE event_type = 'Debited') = 1
               AND max(stream_id) FILTER (WHERE event_type = 'Debited') = 'account-' || max(data->>'from') FILTER (WHERE event_type = 'Credited')
               AND max(stream_id) FILTER (WHERE event_type = 'Credited') = 'account-' || max(data->>'to') FILTER (WHERE event_type = 'Debited') AS ok
          FROM eventsource.events WHERE event_type IN ('Debited', 'Credited')
         GROUP BY transaction_id) AS transfers;

INSERT INTO checks
SELECT 'every stream''s versions increase in log order', count(*) = 0, count(*) || ' inversions'
  FROM (SELECT stream_version,
               lag(stream_version) OVER (PARTITION BY stream_id ORDER BY transaction_id, global_position) AS previous
          FROM eventsource.events) AS ordered
 WHERE previous >= stream_version;

\i :lib/stress_checks.sql
SQL
)
echo "$results"
dropdb "$db"
[[ "$results" == *" 0 failed" ]]
