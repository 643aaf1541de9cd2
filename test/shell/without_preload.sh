#!/usr/bin/env bash
# without_preload.sh: on a cluster without eventsource in shared_preload_libraries (a managed
# Postgres, say), appends, reads, snapshots and subscriptions (poll and ack) all work; the notifier's
# status says clearly that the library must be preloaded. The stream lifecycle (delete, tombstone,
# metadata, scavenge) works too; the shared-memory counters of eventsource.statistics() are NULL,
# and reset_statistics() says the library must be preloaded. Log epochs still start after a server
# start: a reset of all shared statistics (which crash recovery makes) counts as one.
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
psql_db -c "SELECT eventsource.ack('billing', checkpoint, 0, (SELECT lease FROM eventsource.subscription_members WHERE subscription_name = 'billing' AND consumer_group_member = 0)) FROM eventsource.read_all() ORDER BY global_position DESC LIMIT 1" > /dev/null
check "ack advances the subscription" "$(psql_db -c "SELECT count(*) FROM eventsource.poll('billing')")" 0
check "the notify settings exist once the library is loaded" "$(psql_db -c "SELECT eventsource.stream_version('order-1')" -c "SHOW eventsource.notify")" "$(printf '2\non')"
error=$(psql -X -q -At -d es_plain -v VERBOSITY=verbose -c "SELECT * FROM eventsource.notifier_status()" 2>&1 || true)
check "notifier_status fails with SQLSTATE 55000" "$(grep -c 'ERROR:  55000: eventsource.notifier_status() requires eventsource in shared_preload_libraries' <<<"$error")" 1
check "and a hint naming the setting" "$(grep -c 'HINT:  Add eventsource to shared_preload_libraries in postgresql.conf' <<<"$error")" 1

# Statistics: no shared memory, so NULL counters; the rest of store_statistics works.
check "statistics() returns one row of NULLs" \
  "$(psql_db -c "SELECT count(*), bool_and(appends IS NULL AND events_appended IS NULL AND version_conflicts IS NULL AND idempotent_retries IS NULL AND tombstone_rejections IS NULL AND events_scavenged IS NULL AND statistics_reset IS NULL) FROM eventsource.statistics()")" "1|t"
check "store_statistics: its counters are NULL" \
  "$(psql_db -c "SELECT num_nulls(appends, events_appended, version_conflicts, idempotent_retries, tombstone_rejections, events_scavenged, statistics_reset) FROM eventsource.store_statistics")" 7
check "and its other columns work" \
  "$(psql_db -c "SELECT streams, head_global_position, snapshots, log_bytes > 0, streams_bytes > 0, snapshots_bytes > 0 FROM eventsource.store_statistics")" "1|2|1|t|t|t"
error=$(psql -X -q -At -d es_plain -v VERBOSITY=verbose -c "SELECT eventsource.reset_statistics()" 2>&1 || true)
check "reset_statistics fails with SQLSTATE 55000 naming shared_preload_libraries" \
  "$(grep -c 'ERROR:  55000: eventsource.reset_statistics() requires eventsource in shared_preload_libraries' <<<"$error")" 1
check "and a hint naming the setting" "$(grep -c 'HINT:  Add eventsource to shared_preload_libraries in postgresql.conf' <<<"$error")" 1
check "statistics_reset is NULL after the failed reset" "$(psql_db -c "SELECT statistics_reset IS NULL FROM eventsource.statistics()")" t

# The stream lifecycle needs no preload.
psql_db > /dev/null <<'SQL'
SELECT eventsource.append('order-' || n % 4, 'OrderEvent', jsonb_build_object('n', n)) FROM generate_series(1, 20) AS n;
SELECT eventsource.drop_subscription('billing');
SQL
check "set_stream_metadata works, and stream reads honour it at once" \
  "$(psql_db -c "SELECT eventsource.set_stream_metadata('order-2', '{\"max_count\": 2, \"max_age\": 3600}')" \
             -c "SELECT eventsource.stream_metadata('order-2')" \
             -c "SELECT string_agg(stream_version::text, ',' ORDER BY stream_version) FROM eventsource.read_stream('order-2')")" \
  "$(printf '%s\n%s\n4,5' '{"max_age": "PT1H", "max_count": 2}' '{"max_age": "PT1H", "max_count": 2}')"
check "delete_stream works: reads show nothing, appends continue the numbering" \
  "$(psql_db -c "SELECT eventsource.delete_stream('order-3', expected_version => 5)" \
             -c "SELECT count(*) FROM eventsource.read_stream('order-3')" \
             -c "SELECT eventsource.append('order-3', 'Reopened', '{}')" \
             -c "SELECT string_agg(stream_version || ':' || event_type, ',') FROM eventsource.read_stream('order-3')")" \
  "$(printf '5\n0\n6\n6:Reopened')"
check "tombstone_stream works, of a written stream and of an id never written" \
  "$(psql_db -c "SELECT eventsource.tombstone_stream('order-0', expected_version => -1)" -c "SELECT eventsource.tombstone_stream('order-none', expected_version => 0)" \
             -c "SELECT string_agg(stream_id || ':' || state, ' ' ORDER BY stream_id) FROM eventsource.stream_status WHERE state <> 'active'")" \
  "$(printf '5\n0\norder-0:tombstoned order-none:tombstoned')"
for stream in order-0 order-none; do
  check "appending to the tombstoned $stream fails with SE005" \
    "$(psql -X -q -At -d es_plain -v VERBOSITY=verbose -c "SELECT eventsource.append('$stream', 'Again', '{}')" 2>&1 | grep -c "ERROR:  SE005: stream \"$stream\" is tombstoned")" 1
done
check "the \$streams audit stream records them" \
  "$(psql_db -c "SELECT string_agg(event_type || ':' || (data->>'stream_id'), ',' ORDER BY stream_version) FROM eventsource.read_stream('\$streams')")" \
  '$stream-metadata-set:order-2,$stream-deleted:order-3,$stream-tombstoned:order-0,$stream-tombstoned:order-none'
check "scavenge works: removes the hidden events, in batches" \
  "$(psql_db -c "SELECT sum(events_to_scavenge) FROM eventsource.stream_status" -c "SELECT eventsource.scavenge(4)" -c "SELECT eventsource.scavenge()" -c "SELECT eventsource.scavenge()")" \
  "$(printf '13\n4\n9\n0')"
check "and the log holds what stream reads show, and the audit events" \
  "$(psql_db -c "SELECT count(*) FROM eventsource.events" -c "SELECT sum(visible_events) FROM eventsource.stream_status")" \
  "$(printf '14\n14')"
psql_db -c "CALL eventsource.scavenge_all()" > /dev/null
check "scavenge_all works" "$(psql_db -c "SELECT eventsource.scavenge()")" 0
check "the counters stay NULL" "$(psql_db -c "SELECT events_scavenged IS NULL AND appends IS NULL FROM eventsource.statistics()")" t
# Log epochs: without shared memory, a server start is the later of the postmaster's start and the
# last reset of every shared statistic (crash recovery resets them all), so such a reset starts an
# epoch, and a reset of only some does not.
before=$(psql_db -c "SELECT checkpoint FROM eventsource.read_all() ORDER BY checkpoint DESC LIMIT 1")
psql_db -c "SELECT pg_stat_reset_shared('bgwriter')" -c "SELECT pg_stat_reset_shared('wal')" > /dev/null
check "a reset of some shared statistics starts no log epoch" \
  "$(psql_db -c "SELECT eventsource.append('order-1', 'AfterSomeReset', '{}') > 0" -c "SELECT string_agg(reason, ',' ORDER BY epoch) FROM eventsource.log_epochs")" \
  "$(printf 't\nnew log')"
psql_db -c "SELECT pg_stat_reset_shared('archiver')" -c "SELECT pg_sleep(0.01)" > /dev/null
check "a reset of all of them (as crash recovery makes) starts a log epoch at the next append" \
  "$(psql_db -c "SELECT eventsource.append('order-1', 'AfterReset', '{}') > 0" -c "SELECT string_agg(reason, ',' ORDER BY epoch) FROM eventsource.log_epochs")" \
  "$(printf 't\nnew log,server start')"
check "and the new events come after the log" \
  "$(psql_db -c "SELECT string_agg(event_type, ',') FROM eventsource.read_all('$before')")" AfterSomeReset,AfterReset
check "no notifier or launcher runs" "$(psql_db -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'eventsource%'")" 0

finish without_preload
