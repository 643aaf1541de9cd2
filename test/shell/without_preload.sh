#!/usr/bin/env bash
# without_preload.sh: on a cluster without eventsource in shared_preload_libraries (a managed
# Postgres, say), appends, reads, snapshots and subscriptions (poll and ack) all work; the notifier's
# status says clearly that the library must be preloaded.
# Starts its cluster with pg_virtualenv on a port of its own, next to test/run's cluster.
set -euo pipefail

if [ -z "${EVENTSOURCE_WITHOUT_PRELOAD_CLUSTER:-}" ]; then
  EVENTSOURCE_WITHOUT_PRELOAD_CLUSTER=1 exec pg_virtualenv -t -c "-p $((${PGPORT:-5432} + 12))" -v 15 "$0"
fi

source "$(dirname "$0")/lib/check.sh"
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -At -d es_plain "$@"; }

createdb es_plain
psql_db -c "CREATE EXTENSION eventsource"
check "the library is not preloaded" "$(psql_db -c "SHOW shared_preload_libraries")" ""
check "appends work" "$(psql_db -c "SELECT eventsource.append('order-1', 'OrderPlaced', '{}')" -c "SELECT eventsource.append('order-1', 'OrderPaid', '{}')")" "$(printf '1\n2')"
check "reads work" "$(psql_db -c "SELECT string_agg(event_type, ',' ORDER BY global_position) FROM eventsource.read_all()")" "OrderPlaced,OrderPaid"
check "snapshots work" "$(psql_db -c "SELECT eventsource.save_snapshot('order-1', 1, '{}')" -c "SELECT count(*) FROM eventsource.load_stream('order-1')")" "$(printf '\n2')"
psql_db -c "SELECT eventsource.create_subscription('billing')" > /dev/null
check "poll delivers without LISTEN" "$(psql_db -c "SELECT count(*) FROM eventsource.poll('billing')")" 2
psql_db -c "SELECT eventsource.ack('billing', checkpoint) FROM eventsource.read_all() ORDER BY global_position DESC LIMIT 1" > /dev/null
check "ack advances the subscription" "$(psql_db -c "SELECT count(*) FROM eventsource.poll('billing')")" 0
check "the notify settings exist once the library is loaded" "$(psql_db -c "SELECT eventsource.stream_version('order-1')" -c "SHOW eventsource.notify")" "$(printf '2\non')"
error=$(psql -X -q -At -d es_plain -v VERBOSITY=verbose -c "SELECT * FROM eventsource.notifier_status()" 2>&1 || true)
check "notifier_status fails with SQLSTATE 55000" "$(grep -c 'ERROR:  55000: eventsource.notifier_status() requires eventsource in shared_preload_libraries' <<<"$error")" 1
check "and a hint naming the setting" "$(grep -c 'HINT:  Add eventsource to shared_preload_libraries in postgresql.conf' <<<"$error")" 1
check "no notifier or launcher runs" "$(psql_db -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'eventsource%'")" 0

finish without_preload
