#!/usr/bin/env bash
# bench/events_behind.sh: the cost of eventsource.events_behind per call, and of the status views
# that call it per subscription member and projection, against a baseline in the same run: the
# same count written as a LATERAL subquery (one plan, executed per row), the least a call can cost.
#
#   PGHOST=... PGPORT=... bash bench/events_behind.sh [rounds]
#
# Runs against the server the environment names (a private cluster: it creates and drops
# databases es_behind_tiny and, kept between runs, es_behind_large (loaded as es_behind_loading); EVENTSOURCE_BENCH_RELOAD=1
# loads es_behind_large again).
# - es_behind_tiny: 101 events; 1,000 plain subscriptions and one of a consumer group of 1,000.
# - es_behind_large: 1,000,000 events in 1,000 transactions (10 categories, 100,000 streams, event
#   types Common and Rare); 10,000 subscriptions of every filter shape and one of a consumer group
#   of 1,000, all near the head (within the last 1,000 events) but 10 plain subscriptions spread
#   over the log; 100 async projections near the head, paused.
# Prints the median of the rounds (default 5) in milliseconds, per call in microseconds, and each
# call's ratio to the baseline.
set -euo pipefail
rounds=${1:-5}
psql_quiet() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_quiet -d postgres -c "DROP DATABASE IF EXISTS es_behind_tiny" -c "CREATE DATABASE es_behind_tiny"
psql_quiet -d es_behind_tiny -o /dev/null <<'SQL'
CREATE EXTENSION eventsource;
SELECT eventsource.append('order-' || (i % 10), 'Placed', '{}') FROM generate_series(0, 100) i;
SELECT eventsource.create_subscription('plain-' || i) FROM generate_series(1, 1000) i;
SELECT eventsource.create_subscription('group', consumer_group_size => 1000);
SQL

if [ "${EVENTSOURCE_BENCH_RELOAD:-0}" = 1 ] ||
   [ -z "$(psql -X -Atd postgres -c "SELECT 1 FROM pg_database WHERE datname = 'es_behind_large'")" ]; then
  psql_quiet -d postgres -c "DROP DATABASE IF EXISTS es_behind_large" -c "DROP DATABASE IF EXISTS es_behind_loading" \
    -c "CREATE DATABASE es_behind_loading"
  psql_quiet -d es_behind_loading -o /dev/null <<'SQL'
SET client_min_messages = error;
CREATE EXTENSION eventsource;
DO $$
DECLARE ten jsonb := (SELECT jsonb_agg(jsonb_build_object('type', CASE WHEN n % 5 = 0 THEN 'Rare' ELSE 'Common' END,
                                                          'data', '{}'::jsonb))
                        FROM generate_series(1, 10) n);
BEGIN
  FOR b IN 0..999 LOOP
    PERFORM eventsource.append_events('c' || (n % 10) || '-' || (b * 100 + n), ten) FROM generate_series(0, 99) n;
    COMMIT;
  END LOOP;
END $$;
ANALYZE eventsource.events;
-- 10,000 subscriptions, 1,250 of each shape of (category, event types, consumer group of 2).
SELECT eventsource.create_subscription('s-' || i,
         CASE WHEN i % 2 = 1 THEN 'c' || (i % 10) END,
         CASE WHEN i % 4 >= 2 THEN ARRAY['Rare'] END,
         consumer_group_size => CASE WHEN i % 8 >= 4 THEN 2 ELSE 1 END)
  FROM generate_series(0, 9999) i;
SELECT eventsource.create_subscription('group', consumer_group_size => 1000);
-- Paused at once, so that the worker leaves their checkpoints where the load puts them.
CREATE FUNCTION public.ignore_event(e eventsource.event) RETURNS void LANGUAGE sql AS '';
SELECT eventsource.create_projection('p-' || i, 'public.ignore_event(eventsource.event)'::regprocedure,
                                     category => CASE WHEN i % 2 = 1 THEN 'c' || (i % 10) END, mode => 'async'),
       eventsource.pause_projection('p-' || i)
  FROM generate_series(0, 99) i;
-- Checkpoints: every consumer within the last 1,000 events, but plain subscriptions s-0 to s-72
-- (by 8) spread over the log.
WITH positions AS (
  SELECT row_number() OVER (ORDER BY e.transaction_id DESC, e.global_position DESC) AS back,
         eventsource.checkpoint(e.transaction_id, e.global_position) AS checkpoint
    FROM eventsource.events e)
UPDATE eventsource.subscription_members m
   SET checkpoint = p.checkpoint
  FROM positions p
 WHERE p.back = CASE WHEN m.subscription_name IN (SELECT 's-' || (i * 8) FROM generate_series(0, 9) i)
                     THEN 1 + 100000 * substr(m.subscription_name, 3)::int / 8
                     ELSE 1 + (abs(hashtext(m.subscription_name)) + m.consumer_group_member) % 1000 END;
WITH positions AS (
  SELECT row_number() OVER (ORDER BY e.transaction_id DESC, e.global_position DESC) AS back,
         eventsource.checkpoint(e.transaction_id, e.global_position) AS checkpoint
    FROM eventsource.events e)
UPDATE eventsource.projections j SET checkpoint = p.checkpoint
  FROM positions p WHERE p.back = 1 + abs(hashtext(j.name)) % 1000;
SQL
  psql_quiet -d postgres -c "ALTER DATABASE es_behind_loading RENAME TO es_behind_large"
fi

# After a restart the log epoch is not current until an append: reads then look the epoch up.
for database in es_behind_tiny es_behind_large; do
  psql_quiet -d "$database" -o /dev/null -c "SELECT eventsource.append('order-0', 'Placed', '{}')"
done

timing_function="
CREATE FUNCTION pg_temp.median_ms(query text, rounds int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE
  started timestamptz;
  times float8[] := '{}';
BEGIN
  EXECUTE query;  -- warm-up: the kept plans are prepared
  FOR r IN 1..rounds LOOP
    started := clock_timestamp();
    EXECUTE query;
    times := times || extract(epoch FROM clock_timestamp() - started) * 1000;
  END LOOP;
  RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(times) t);
END \$\$;"

# report DATABASE BASELINE ROW...: each ROW (n, name, calls, query) timed: its median, per call, and
# its ratio to the row named BASELINE.
report() {
  local database=$1 baseline=$2
  shift 2
  psql -X -q -v ON_ERROR_STOP=1 -At -F ' | ' -d "$database" <<SQL
$timing_function
WITH queries(n, name, calls, query) AS (VALUES $*),
     timed AS (SELECT n, name, calls, pg_temp.median_ms(query, $rounds) AS ms FROM queries ORDER BY n)
SELECT rpad(name, 58), round(ms::numeric, 1) || ' ms',
       round((ms * 1000 / calls)::numeric, 1) || ' us/call',
       round((ms / (SELECT ms FROM timed WHERE name = '$baseline'))::numeric, 2) || 'x'
  FROM timed ORDER BY n;
SQL
}

checkpoint_varying="CASE WHEN i < 0 THEN eventsource.checkpoint('0', 0) END"
behind() {
  echo "(SELECT sum(b.events_behind) FROM generate_series(0, 9999) i, eventsource.events_behind($checkpoint_varying, $1) b)"
}
baseline="'SELECT sum(b.n) FROM generate_series(0, 9999) i, LATERAL (SELECT pg_catalog.count(*) AS n, pg_catalog.min(e.recorded_at) FROM eventsource.events e WHERE (e.transaction_id, e.global_position) > (''0''::xid8, i::bigint) AND e.transaction_id < eventsource.log_horizon()) b'"

q() { printf "%s" "$1" | sed "s/'/''/g"; }

echo "## es_behind_tiny (101 events): 10,000 calls per shape, median of $rounds rounds"
echo "shape | median | per call | ratio to the LATERAL baseline"
report es_behind_tiny 'baseline: the same count as a LATERAL subquery' \
  "(1, 'baseline: the same count as a LATERAL subquery', 10000, $baseline)," \
  "(2, 'every event', 10000, '$(q "$(behind "NULL, NULL")")')," \
  "(3, 'event types', 10000, '$(q "$(behind "NULL, ARRAY['Placed']")")')," \
  "(4, 'category', 10000, '$(q "$(behind "'order', NULL")")')," \
  "(5, 'category and event types', 10000, '$(q "$(behind "'order', ARRAY['Placed']")")')," \
  "(6, 'member i % 1000 of a group of 1,000', 10000, '$(q "$(behind "NULL, NULL, 1000, i % 1000")")')," \
  "(7, 'member of a group, event types', 10000, '$(q "$(behind "NULL, ARRAY['Placed'], 1000, i % 1000")")')," \
  "(8, 'member of a group, category', 10000, '$(q "$(behind "'order', NULL, 1000, i % 1000")")')," \
  "(9, 'member of a group, category and event types', 10000, '$(q "$(behind "'order', ARRAY['Placed'], 1000, i % 1000")")')"

echo
echo "## es_behind_tiny: subscription_status, 1,000 rows each"
echo "rows | median | per row | ratio to the 1,000 plain subscriptions"
report es_behind_tiny '1,000 plain subscriptions' \
  "(1, '1,000 plain subscriptions', 1000, 'SELECT count(*) FROM eventsource.subscription_status WHERE name LIKE ''plain-%''')," \
  "(2, '1,000 members of one consumer group', 1000, 'SELECT count(*) FROM eventsource.subscription_status WHERE name = ''group''')"

echo
echo "## es_behind_large (1,000,000 events): the views, median of $rounds rounds"
echo "rows | median | per row | ratio to the 1,000 members near the head"
report es_behind_large '1,000 members of a group, near the head' \
  "(1, '1,000 members of a group, near the head', 1000, 'SELECT count(*) FROM eventsource.subscription_status WHERE name = ''group''')," \
  "(2, '9,990 subscriptions near the head', 9990, 'SELECT count(*) FROM eventsource.subscription_status WHERE name LIKE ''s-%'' AND name NOT IN (SELECT ''s-'' || (i * 8) FROM generate_series(0, 9) i)')," \
  "(3, '10 subscriptions spread over the log', 10, 'SELECT count(*) FROM eventsource.subscription_status WHERE name IN (SELECT ''s-'' || (i * 8) FROM generate_series(0, 9) i)')," \
  "(4, '100 projections near the head', 100, 'SELECT count(*) FROM eventsource.projection_status')"
