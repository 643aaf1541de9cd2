#!/usr/bin/env bash
# dump_restore.sh: pg_dump of a database with events and snapshots, restored into a fresh database
# (custom format through pg_restore, and plain SQL through psql), brings back every event, stream,
# snapshot and the position counter, and appends continue with the right versions and positions.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one).
set -euo pipefail

psql_quiet() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for db in es_dump_source es_restored_custom es_restored_plain; do
  dropdb --if-exists "$db"
done
createdb es_dump_source
psql_quiet -d es_dump_source > /dev/null <<'SQL'
CREATE EXTENSION eventsource;
SELECT eventsource.append('order-' || n % 7, 'OrderEvent', jsonb_build_object('n', n, 'text', 'grüße ' || n),
                          CASE WHEN n % 3 = 0 THEN jsonb_build_object('trace', n) END)
  FROM generate_series(1, 500) AS n;
SELECT eventsource.append_events('cart-1', '[{"type": "A", "data": {}}, {"type": "B", "data": {"x": [1, 2]}, "id": "5b2f3a4e-0000-4000-8000-000000000001"}]');
-- A rolled-back append leaves a gap in global positions; the restore must keep it.
BEGIN;
SELECT eventsource.append('order-1', 'Lost', '{}');
ROLLBACK;
SELECT eventsource.append('order-1', 'AfterGap', '{}');
SELECT eventsource.save_snapshot('order-' || n, 10, jsonb_build_object('seen', 10, 'name', 'grüße')) FROM generate_series(0, 6) AS n;
SELECT eventsource.save_snapshot('order-1', 20, '{"seen": 20}', schema_version => 2);
SELECT eventsource.create_subscription('billing', category => 'order', consumer_group_size => 2);
SELECT count(*) FROM eventsource.poll('billing', 10);
CREATE SCHEMA model;
CREATE TABLE model.order_counts (order_id text PRIMARY KEY, events int NOT NULL);
CREATE FUNCTION model.count_order(e eventsource.event) RETURNS void LANGUAGE sql AS
  'INSERT INTO model.order_counts AS c VALUES (e.stream_id, 1) ON CONFLICT (order_id) DO UPDATE SET events = c.events + 1';
SELECT eventsource.create_projection('order-counts', 'model.count_order(eventsource.event)', category => 'order');
SELECT eventsource.rebuild_projection('order-counts');
SQL

snapshot() {
  psql_quiet -d "$1" <<'SQL'
SELECT global_position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at, transaction_id
  FROM eventsource.events ORDER BY global_position;
SELECT stream_id, category, stream_version, created_at, updated_at FROM eventsource.streams ORDER BY stream_id;
SELECT last_value FROM eventsource.events_global_position_seq;
SELECT stream_id, stream_version, schema_version, state, created_at FROM eventsource.snapshots ORDER BY 1, 2, 3;
SELECT subscription_name, consumer_group_member, checkpoint, delivered_through, leased_until FROM eventsource.subscription_members ORDER BY 1, 2;
SELECT name, handler, mode, status, category FROM eventsource.projections ORDER BY 1;
SELECT order_id, events FROM model.order_counts ORDER BY 1;
SQL
}
snapshot es_dump_source > "$work/source.txt"

pg_dump -Fc -d es_dump_source -f "$work/dump.custom"
createdb es_restored_custom
pg_restore --exit-on-error -d es_restored_custom "$work/dump.custom"

pg_dump -Fp -d es_dump_source -f "$work/dump.sql"
createdb es_restored_plain
psql_quiet -d es_restored_plain -f "$work/dump.sql" > /dev/null

source "$(dirname "$0")/lib/check.sh"

events=$(psql_quiet -d es_dump_source -c "SELECT count(*) FROM eventsource.events")
last_position=$(psql_quiet -d es_dump_source -c "SELECT max(global_position) FROM eventsource.events")
check "the source holds events" "$([ "$events" -gt 500 ] && echo yes)" yes
check "the source holds snapshots" "$(psql_quiet -d es_dump_source -c "SELECT count(*) FROM eventsource.snapshots")" 8
for db in es_restored_custom es_restored_plain; do
  snapshot "$db" > "$work/$db.txt"
  check "$db: events, streams, snapshots, subscriptions, projections and the position counter are identical" \
    "$(cmp -s "$work/source.txt" "$work/$db.txt" && echo identical || echo different)" identical
  check "$db: appends continue the stream's numbering" \
    "$(psql_quiet -d "$db" -c "SELECT eventsource.append('order-1', 'AfterRestore', '{}')")" \
    "$(($(psql_quiet -d es_dump_source -c "SELECT eventsource.stream_version('order-1')") + 1))"
  check "$db: new events take positions after every restored one" \
    "$(psql_quiet -d "$db" -c "SELECT global_position > $last_position FROM eventsource.events WHERE event_type = 'AfterRestore'")" t
  check "$db: retries of restored events stay idempotent" \
    "$(psql_quiet -d "$db" -c "SELECT stream_version FROM eventsource.append_events('cart-1', '[{\"type\": \"B\", \"data\": {\"x\": [1, 2]}, \"id\": \"5b2f3a4e-0000-4000-8000-000000000001\"}]')")" 2
  check "$db: snapshots load with the events after them" \
    "$(psql_quiet -d "$db" -c "SELECT string_agg(kind || ':' || stream_version, ',') FROM eventsource.load_stream('order-1', 22, 2)")" \
    "snapshot:20,event:21,event:22"
  check "$db: the inline projection still projects (its trigger is enabled)" \
    "$(psql_quiet -d "$db" -c "SELECT events FROM model.order_counts WHERE order_id = 'order-1'")" \
    "$(psql_quiet -d "$db" -c "SELECT count(*) FROM eventsource.events WHERE stream_id = 'order-1'")"
  check "$db: the log is still append-only" \
    "$(psql_quiet -d "$db" -c "DELETE FROM eventsource.events" 2>&1 | grep -c 'append-only')" 1
done

for db in es_dump_source es_restored_custom es_restored_plain; do
  dropdb "$db"
done
finish dump_restore
