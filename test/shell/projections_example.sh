#!/usr/bin/env bash
# projections_example.sh: examples/projections.sql runs cleanly in a fresh database served by the
# notifier, and the read models it leaves are right: the order summary (inline projection) equals
# an aggregate computed directly over eventsource.events, the daily revenue (async projection, by
# the background worker) equals the OrderPaid amounts summed per day; the append its handler
# aborted left no event and no row; projections created again from the example's functions and
# rebuilt (inline at once, async in the background) give the same rows.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name, which must have eventsource in
# shared_preload_libraries; it adds its database to eventsource.worker_databases itself
# (ALTER SYSTEM and a reload) and puts the setting back when it ends.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
db=es_projections
work=$(mktemp -d)

source "$(dirname "$0")/lib/check.sh"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -At -d postgres "$@"; }

preloaded=$(psql_admin -c "SELECT current_setting('shared_preload_libraries') ~ '(^|[\s,])\"?eventsource\"?($|[\s,])'")
check "the cluster preloads eventsource" "$preloaded" t
[ "$preloaded" = t ] || { finish projections_example; exit 1; }

# The notifier's list: the current value, and the one postgresql.auto.conf holds (if any), which is
# what ALTER SYSTEM changes and what the trap puts back.
previous=$(psql_admin -c "SHOW eventsource.worker_databases")
previous_auto=$(psql_admin -c "SELECT setting FROM pg_file_settings
                                WHERE name = 'eventsource.worker_databases'
                                  AND sourcefile LIKE '%/postgresql.auto.conf'
                                ORDER BY seqno DESC LIMIT 1")
had_auto=$(psql_admin -c "SELECT count(*) > 0 FROM pg_file_settings
                           WHERE name = 'eventsource.worker_databases'
                             AND sourcefile LIKE '%/postgresql.auto.conf'")
restore_setting() {
  if [ "$had_auto" = t ]; then
    psql_admin -v value="$previous_auto" <<'SQL' > /dev/null
ALTER SYSTEM SET eventsource.worker_databases = :'value';
SQL
  else
    psql_admin -c "ALTER SYSTEM RESET eventsource.worker_databases" > /dev/null
  fi
  psql_admin -c "SELECT pg_reload_conf()" > /dev/null
}
cleanup() {
  restore_setting || echo "# could not restore eventsource.worker_databases (was '$previous')"
  rm -rf "$work"
}
trap cleanup EXIT

# Append the database to the list (unless it is there already), and reload.
wanted=$(psql_admin -v previous="$previous" -v db="$db" <<'SQL'
SELECT CASE WHEN :'db' = ANY (SELECT btrim(name) FROM unnest(string_to_array(:'previous', ',')) AS name)
            THEN :'previous'
            WHEN btrim(:'previous') = '' THEN :'db'
            ELSE :'previous' || ',' || :'db' END;
SQL
)
psql_admin -v value="$wanted" <<'SQL' > /dev/null
ALTER SYSTEM SET eventsource.worker_databases = :'value';
SELECT pg_reload_conf();
SQL
for _ in $(seq 50); do
  [ "$(psql_admin -c "SHOW eventsource.worker_databases")" = "$wanted" ] && break
  sleep 0.1
done
check "eventsource.worker_databases names $db after the reload" "$(psql_admin -c "SHOW eventsource.worker_databases")" "$wanted"

dropdb --if-exists "$db" 2> /dev/null
createdb "$db"
psql_db -c "CREATE EXTENSION eventsource"
# The launcher starts the database's notifier (which runs the async projections) within seconds.
check "the notifier serves $db" "$(notifier_serves "$db")" t

# The walk-through, in the fresh database.
if psql -X -d "$db" -v ON_ERROR_STOP=1 -f "$root/examples/projections.sql" > "$work/example.out" 2>&1; then status=0; else status=$?; fi
check "examples/projections.sql runs cleanly" "$status" 0
[ "$status" -eq 0 ] || sed 's/^/# /' "$work/example.out"
check "it shows the handler's error aborting the append" \
  "$(grep -c 'NOTICE:  the append failed: order summary: order-404 has no OrderPlaced before its ItemAdded event' "$work/example.out")" 1
check "with a context naming the projection" \
  "$(grep -cE 'NOTICE:  context: projection "order-summary", handling the event at global position [0-9]+$' "$work/example.out")" 1
check "it drops its projections" "$(psql_db -c "SELECT count(*) FROM eventsource.projections")" 0

# What the read models should hold, computed straight from the log.
cat > "$work/summary.sql" <<'SQL'
SELECT order_id, status, item_count, total, last_version, updated_at FROM shop.order_summary ORDER BY order_id;
SQL
cat > "$work/summary_from_log.sql" <<'SQL'
SELECT stream_id,
       (array_agg(CASE event_type WHEN 'OrderPlaced' THEN 'placed' WHEN 'OrderPaid' THEN 'paid'
                                  WHEN 'OrderShipped' THEN 'shipped' WHEN 'OrderCancelled' THEN 'cancelled' END
                  ORDER BY stream_version DESC)
            FILTER (WHERE event_type IN ('OrderPlaced', 'OrderPaid', 'OrderShipped', 'OrderCancelled')))[1],
       sum(CASE event_type WHEN 'OrderPlaced' THEN jsonb_array_length(data -> 'items')
                           WHEN 'ItemAdded' THEN 1 ELSE 0 END),
       sum(CASE event_type WHEN 'OrderPlaced' THEN (data ->> 'total')::numeric
                           WHEN 'ItemAdded' THEN (data ->> 'price')::numeric ELSE 0 END),
       max(stream_version),
       (array_agg(recorded_at ORDER BY stream_version DESC))[1]
  FROM eventsource.events
 WHERE eventsource.category(stream_id) = 'order'
 GROUP BY stream_id ORDER BY stream_id;
SQL
cat > "$work/revenue.sql" <<'SQL'
SELECT day, orders_paid, revenue FROM shop.daily_revenue ORDER BY day;
SQL
cat > "$work/revenue_from_log.sql" <<'SQL'
SELECT (recorded_at AT TIME ZONE 'UTC')::date, count(*), sum((data ->> 'amount')::numeric)
  FROM eventsource.events
 WHERE eventsource.category(stream_id) = 'order' AND event_type = 'OrderPaid'
 GROUP BY 1 ORDER BY 1;
SQL
# check_read_models LABEL: both read models equal what the log says.
check_read_models() {
  local summary revenue
  summary=$(psql_db -f "$work/summary.sql")
  check "$1: the order summary equals the aggregate over eventsource.events" "$summary" "$(psql_db -f "$work/summary_from_log.sql")"
  check "$1: the order summary rows" "$(cut -d'|' -f1-5 <<<"$summary")" "$(printf '%s\n' \
    'order-1|shipped|3|42.50|4' 'order-2|paid|1|20|2' 'order-3|cancelled|1|99|2' 'order-4|placed|1|10|1' 'order-5|paid|1|12.50|2')"
  revenue=$(psql_db -f "$work/revenue.sql")
  check "$1: the daily revenue equals the OrderPaid amounts summed per day" "$revenue" "$(psql_db -f "$work/revenue_from_log.sql")"
  check "$1: the daily revenue counts 3 orders paid, 75.00 in all" \
    "$(psql_db -c "SELECT sum(orders_paid), sum(revenue) FROM shop.daily_revenue")" "3|75.00"
}
check_read_models "after the example"

check "the aborted append left no event and no stream" \
  "$(psql_db -c "SELECT count(*), eventsource.stream_version('order-404') FROM eventsource.events WHERE stream_id = 'order-404'")" "0|0"
check "nor a summary row" "$(psql_db -c "SELECT count(*) FROM shop.order_summary WHERE order_id = 'order-404'")" 0
check "the log holds the example's 12 events" "$(psql_db -c "SELECT count(*) FROM eventsource.events")" 12

# The same projections again, over read models that went wrong meanwhile: a rebuild repairs them.
psql_db -c "UPDATE shop.order_summary SET total = 0, status = 'lost'" -c "DELETE FROM shop.daily_revenue" \
        -c "INSERT INTO shop.daily_revenue VALUES ('2000-01-01', 1, 1)"
psql_db > /dev/null <<'SQL'
SELECT eventsource.create_projection('order-summary', 'shop.apply_order_event(eventsource.event)',
                                     category => 'order', reset_handler => 'shop.reset_order_summary()');
SQL
replayed=$(psql_db -c "SELECT eventsource.rebuild_projection('order-summary')")
check "the inline rebuild replays every event of the order category" "$replayed" \
  "$(psql_db -c "SELECT count(*) FROM eventsource.events WHERE eventsource.category(stream_id) = 'order'")"
psql_db -1 > /dev/null <<'SQL'
SELECT eventsource.create_projection('daily-revenue', 'shop.apply_payment(eventsource.event)',
                                     event_types => '{OrderPaid}', category => 'order', mode => 'async',
                                     reset_handler => 'shop.reset_daily_revenue()');
SELECT eventsource.rebuild_projection('daily-revenue');
SQL
caught_up=no
for _ in $(seq 150); do
  if [ "$(psql_db -c "SELECT status, events_behind, events_processed FROM eventsource.projection_status WHERE name = 'daily-revenue'")" = "running|0|3" ]; then
    caught_up=yes
    break
  fi
  sleep 0.1
done
check "the async projection catches up from the beginning of the log within 15 s" "$caught_up" yes
check_read_models "after the rebuilds"

check "no projection failed" \
  "$(psql_db -c "SELECT string_agg(name || ': ' || status || ' ' || coalesce(last_error, ''), '; ') FROM eventsource.projection_status WHERE status <> 'running' OR last_error IS NOT NULL OR dead_letters > 0")" ""
psql_db -c "SELECT eventsource.drop_projection('order-summary')" -c "SELECT eventsource.drop_projection('daily-revenue')" > /dev/null

dropdb "$db"
finish projections_example
