#!/usr/bin/env bash
# examples.sh: the examples work. examples/consistency.sql runs cleanly and each of its decisions
# holds its invariant; examples/bus.sql runs cleanly, and each subscriber client
# (examples/python/subscriber.py and examples/node/subscriber.js, each in listen and in poll mode)
# prints exactly the events of its category appended while it runs, each once and in stream order,
# and acknowledges them all; in listen mode they arrive at once (by NOTIFY), not after the safety
# timeout. Needs python3-psycopg and node/npm (runs npm ci in examples/node if node_modules is missing).
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one, with
# the library preloaded and es_examples in eventsource.worker_databases).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
db=es_examples
export PGDATABASE=$db
work=$(mktemp -d)
client_pid=
cleanup() {
  if [ -n "$client_pid" ]; then kill "$client_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

psql_quiet() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

source "$(dirname "$0")/lib/check.sh"

if [ ! -d "$root/examples/node/node_modules" ]; then
  (cd "$root/examples/node" && npm ci --silent --no-audit --no-fund)
fi

dropdb --if-exists "$db"
createdb "$db"
psql_quiet -c "CREATE EXTENSION eventsource"
# The launcher starts the database's notifier within a few seconds.
check "the notifier serves $db" "$(notifier_serves "$db")" t

# The psql walk-through, in the fresh database; the notifier's NOTIFY reaches its LISTEN.
if psql -X -v ON_ERROR_STOP=1 -f "$root/examples/bus.sql" > "$work/bus.out" 2>&1; then status=0; else status=$?; fi
check "examples/bus.sql runs cleanly" "$status" 0
[ "$status" -eq 0 ] || sed 's/^/# /' "$work/bus.out"
check "examples/bus.sql receives a notification on its LISTEN" \
  "$(grep -c 'Asynchronous notification "eventsource.order"' "$work/bus.out" | awk '{ print ($1 > 0) }')" 1
check "examples/bus.sql drops its subscriptions" "$(psql_quiet -c "SELECT count(*) FROM eventsource.subscriptions")" 0

# examples/consistency.sql: each decision holds its invariant.
dropdb --if-exists es_consistency_example
createdb es_consistency_example
psql_quiet -d es_consistency_example -c "CREATE EXTENSION eventsource"
if psql -X -v ON_ERROR_STOP=1 -d es_consistency_example -f "$root/examples/consistency.sql" > "$work/consistency.out" 2>&1; then status=0; else status=$?; cat "$work/consistency.out"; fi
check "examples/consistency.sql runs cleanly" "$status" 0
check "examples/consistency.sql: the course of 2 places gets 2 students, a third is refused, and a stale decision fails its condition" \
  "$(grep -cx " subscribed" "$work/consistency.out")|$(grep -cx " full" "$work/consistency.out")|$(grep -c "as expected: append condition failed" "$work/consistency.out")" "3|1|1"
check "examples/consistency.sql: the stock of each SKU is never oversold" \
  "$(psql_quiet -d es_consistency_example -c "SELECT string_agg(sku || '=' || available, ',' ORDER BY sku) FROM (SELECT substr(t, 5) AS sku, sum(CASE event_type WHEN 'StockAdded' THEN 1 ELSE -1 END * (data->>'quantity')::int) AS available FROM eventsource.events, unnest(tags) t WHERE t LIKE 'sku:%' GROUP BY 1) s")" "apple=0,pear=0"
check "examples/consistency.sql: the transfers never overdraw the source" \
  "$(grep -cx " transferred" "$work/consistency.out")|$(grep -cx " insufficient funds: 40" "$work/consistency.out")" "2|1"
dropdb es_consistency_example

# What the appenders below write to the order category: 5 rounds of 3 events, and 5 of 1.
expected_count=20
# Two sessions append at once, in many transactions, to order-1..3 and to other categories
# (invoice, and orders: a category whose name starts like order's). Some of the second's
# transactions stay open for a while, so later commits wait behind them in the gap-safe log.
append_events() {
  for round in 1 2 3 4 5; do
    psql_quiet > /dev/null <<SQL
SELECT eventsource.append('order-1', 'OrderPlaced', '{"round": $round}');
SELECT eventsource.append('invoice-1', 'InvoiceSent', '{"round": $round}');
SELECT eventsource.append('order-2', 'OrderPaid', jsonb_build_object('round', $round, 'n', n)) FROM generate_series(1, 2) AS n;
SQL
    psql_quiet -c "BEGIN" -c "SELECT eventsource.append('order-1', 'Lost', '{}')" -c "ROLLBACK" > /dev/null
  done &
  local first=$!
  for round in 1 2 3 4 5; do
    psql_quiet > /dev/null <<SQL
BEGIN;
SELECT eventsource.append('order-3', 'OrderShipped', '{"round": $round}');
SELECT eventsource.append('orders-1', 'OrdersReported', '{"round": $round}');
SELECT pg_sleep(0.1 * ($round % 2));
COMMIT;
SQL
  done
  wait "$first"
}

# test_client NAME MODE COMMAND...: runs a subscriber while the events are appended.
test_client() {
  local name=$1 mode=$2
  shift 2
  local subscription="examples_${name}_$mode" out="$work/$name-$mode.out" err="$work/$name-$mode.err"
  local label="$name subscriber, $mode mode"
  local before status=0 ready=no appended_at done_at
  before=$(psql_quiet -c "SELECT coalesce(max(global_position), 0) FROM eventsource.events")
  psql_quiet -c "SELECT eventsource.create_subscription('$subscription', 'order', start_from => 'end')" > /dev/null

  # The safety timeout (30 s) is far longer than the 3 s the events may take in listen mode.
  "$@" --subscription "$subscription" --mode "$mode" --poll-interval 0.5 --listen-timeout 30 \
    --batch-size 4 --until-count "$expected_count" --timeout 40 > "$out" 2> "$err" &
  client_pid=$!
  for _ in $(seq 150); do
    if grep -qE '^(listening on|polling every)' "$err"; then ready=yes; break; fi
    kill -0 "$client_pid" 2>/dev/null || break
    sleep 0.1
  done
  check "$label: starts" "$ready" yes

  append_events
  appended_at=$(now_ms)
  wait "$client_pid" || status=$?
  done_at=$(now_ms)
  client_pid=
  check "$label: exits after receiving $expected_count events" "$status" 0
  [ "$status" -eq 0 ] || sed 's/^/# /' "$err"

  psql_quiet > "$work/expected" <<SQL
SELECT 'received ' || stream_id || ' ' || stream_version || ' ' || event_type
  FROM eventsource.events
 WHERE global_position > $before AND split_part(stream_id, '-', 1) = 'order'
 ORDER BY transaction_id, global_position;
SQL
  check "$label: the test appended $expected_count events of the category" "$(wc -l < "$work/expected")" "$expected_count"
  check "$label: prints exactly the subscribed events, each once" \
    "$(cmp -s <(sort "$work/expected") <(sort "$out") && echo same || echo different)" same
  check "$label: prints each stream's events in stream order" \
    "$(awk '$2 in last && $3 != last[$2] + 1 { bad++ } { last[$2] = $3 } END { print bad + 0 }' "$out")" 0
  if [ "$failures" -gt 0 ] && ! cmp -s "$work/expected" "$out"; then
    diff "$work/expected" "$out" | sed 's/^/# /'
  fi
  check "$label: acknowledges everything it received" \
    "$(psql_quiet -c "SELECT leased, events_behind FROM eventsource.subscription_status WHERE name = '$subscription'")" "f|0"
  check "$label: has received everything within 3 s of the last append" \
    "$([ $((done_at - appended_at)) -lt 3000 ] && echo yes || echo "no ($((done_at - appended_at)) ms)")" yes
  psql_quiet -c "SELECT eventsource.drop_subscription('$subscription')" > /dev/null
}

for mode in listen poll; do
  test_client python "$mode" /usr/bin/python3 "$root/examples/python/subscriber.py"
  test_client node "$mode" node "$root/examples/node/subscriber.js"
done

dropdb "$db"
finish examples
