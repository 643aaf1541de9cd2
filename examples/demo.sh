#!/usr/bin/env bash
# examples/demo.sh: the README's demo command (./examples/demo.sh). Installs what it needs, builds and installs
# eventsource, starts a throwaway PostgreSQL 15 cluster and tells a short story on it: a stock of
# widgets that two customers race to reserve (it must never oversell), and an order that is placed,
# paid and shipped; then reads of a stream, a category and the global log.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${EVENTSOURCE_DEMO_CLUSTER:-}" ]; then
  bash .ci/build-and-install
  EVENTSOURCE_DEMO_CLUSTER=1 exec pg_virtualenv -v 15 "$0" "$@"
fi

run() { psql -X -q -v ON_ERROR_STOP=1 -d eventsource_demo "$@"; }
dropdb --if-exists eventsource_demo 2>/dev/null
createdb eventsource_demo

run <<'SQL'
\echo '== 1. A warehouse receives 5 widgets. Stock is a stream of events: stock-widget.'
CREATE EXTENSION eventsource;
SELECT eventsource.append('stock-widget', 'StockReceived', '{"quantity": 5}', expected_version => 0) AS stream_version;

-- How many widgets are free, and at which stream version we saw that: a fold over the stream.
CREATE FUNCTION available(sku text, OUT quantity int, OUT stream_version bigint) LANGUAGE sql AS $$
    SELECT coalesce(sum(CASE event_type WHEN 'StockReceived' THEN (data->>'quantity')::int
                                        WHEN 'StockReserved' THEN -(data->>'quantity')::int END), 0),
           coalesce(max(e.stream_version), 0)
      FROM eventsource.read_stream('stock-' || sku) AS e
$$;

-- Reserve: read the stock, think, append with the version we read. If someone reserved meanwhile
-- the append fails with SQLSTATE SE001 (version conflict): read again and decide again.
CREATE FUNCTION reserve(sku text, customer text, wanted int, think_seconds float8) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    stock record;
    attempt int := 0;
    conflict text;
BEGIN
    LOOP
        attempt := attempt + 1;
        stock := available(sku);
        IF stock.quantity < wanted THEN
            RETURN format('%s: only %s left, so %s are not reserved (attempt %s)', customer, stock.quantity, wanted, attempt);
        END IF;
        PERFORM pg_sleep(think_seconds);
        BEGIN
            PERFORM eventsource.append('stock-' || sku, 'StockReserved',
                                       jsonb_build_object('customer', customer, 'quantity', wanted),
                                       expected_version => stock.stream_version);
            RETURN format('%s: reserved %s of the %s free (attempt %s)', customer, wanted, stock.quantity, attempt);
        EXCEPTION WHEN SQLSTATE 'SE001' THEN
            GET STACKED DIAGNOSTICS conflict = PG_EXCEPTION_DETAIL;
            RAISE NOTICE '%: % (%) Reading the stock again.', customer, SQLERRM, conflict;
        END;
    END LOOP;
END
$$;
\echo
\echo '== 2. Ann and Bob each want 3 widgets, at the same moment, from two connections.'
SQL
# Two real sessions at once; Ann decides faster than Bob.
run -At -c "SELECT reserve('widget', 'Ann', 3, 0.5)" &
ann=$!
run -At -c "SELECT reserve('widget', 'Bob', 3, 1.0)" &
bob=$!
wait $ann
wait $bob

run <<'SQL'
\echo
\echo '== 3. The stock stream: never oversold.'
SELECT stream_version, event_type, data FROM eventsource.read_stream('stock-widget');
SELECT quantity AS widgets_free FROM available('widget');

\echo '== 4. An order is placed, paid and shipped: three events appended atomically in one call.'
SELECT * FROM eventsource.append_events('order-1001', '[
  {"type": "OrderPlaced",  "data": {"customer": "Ann", "sku": "widget", "quantity": 3, "total": 29.97}},
  {"type": "OrderPaid",    "data": {"amount": 29.97, "method": "card"}},
  {"type": "OrderShipped", "data": {"carrier": "DHL"}, "metadata": {"warehouse": "north"}, "id": "7f0c8d52-3b1e-4e4a-9a55-2f1d6c0a1001"}
]', expected_version => 0);

\echo '== 5. A client retries the shipment after a timeout, with the same event id: nothing is written twice.'
SELECT * FROM eventsource.append_events('order-1001',
  '[{"type": "OrderShipped", "data": {"carrier": "DHL"}, "id": "7f0c8d52-3b1e-4e4a-9a55-2f1d6c0a1001"}]');
SELECT count(*) AS shipped_events FROM eventsource.read_stream('order-1001') WHERE event_type = 'OrderShipped';

\echo '== 6. The order, newest first.'
SELECT stream_version, event_type, data FROM eventsource.read_stream('order-1001', direction => 'backward');

\echo '== 7. The whole log, two events a page: each row carries the checkpoint to resume after it.'
SELECT global_position, stream_id, event_type, checkpoint FROM eventsource.read_all(max_count => 2);
\echo 'Resuming after the second row''s checkpoint:'
SELECT global_position, stream_id, event_type, checkpoint
  FROM eventsource.read_all((SELECT checkpoint FROM eventsource.read_all(max_count => 2) OFFSET 1), 2);

\echo '== 8. One category (the part of the stream id before the first dash), one event type.'
SELECT stream_id, event_type, data->>'quantity' AS quantity
  FROM eventsource.read_category('stock', event_types => '{StockReserved}');
SELECT stream_id, category, stream_version, created_at::time(0) AS created FROM eventsource.streams;
SQL
dropdb eventsource_demo
echo
echo "Demo done. The cluster it ran on is dropped now; see README.md for the full SQL reference."
