#!/usr/bin/env bash
# dump_restore.sh: pg_dump of a database with events and snapshots, restored into a fresh database
# (custom format through pg_restore, and plain SQL through psql), brings back every event, stream,
# snapshot and the position counter, and appends continue with the right versions and positions.
# The stream lifecycle (0.5.0) survives too: retention metadata, soft deletes and tombstones (of a
# written stream and of an id never written), the $streams audit stream; stream reads hide the same
# events, a tombstoned stream stays unwritable, a deleted one continues its numbering, and scavenge
# removes what nothing holds back.
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
-- The stream lifecycle: retention metadata, a soft delete, tombstones; each recorded in $streams.
SELECT eventsource.set_stream_metadata('order-2', '{"max_count": 5}');
SELECT eventsource.set_stream_metadata('order-3', '{"truncate_before": 30}');
SELECT eventsource.set_stream_metadata('order-4', '{"max_age": "1 day", "max_count": 40}');
SELECT eventsource.set_stream_metadata('cart-1', '{"max_count": 1}');
SELECT eventsource.append('cart-aged', 'Aged', jsonb_build_object('n', n)) FROM generate_series(1, 3) AS n;
SELECT eventsource.append('cart-kept', 'Kept', jsonb_build_object('n', n)) FROM generate_series(1, 4) AS n;
SELECT eventsource.set_stream_metadata('cart-aged', '{"max_age": 1}');
SELECT eventsource.set_stream_metadata('cart-kept', '{"max_age": "P1D", "truncate_before": 2}');
SELECT eventsource.delete_stream('order-5');
SELECT eventsource.tombstone_stream('order-6', expected_version => -1);
SELECT eventsource.tombstone_stream('order-never', expected_version => 0);
-- max_age 1 (second): by the time anything reads cart-aged, all of its events are older.
SELECT pg_sleep(1.1);
SQL

snapshot() {
  psql_quiet -d "$1" <<'SQL'
SELECT global_position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at, transaction_id
  FROM eventsource.events ORDER BY global_position;
SELECT s.* FROM eventsource.streams s ORDER BY stream_id;
SELECT stream_id, eventsource.stream_metadata(stream_id) FROM eventsource.streams ORDER BY stream_id;
SELECT stream_id, state, stream_version, first_visible_version, visible_events, events_to_scavenge,
       truncate_before, max_count, max_age, tombstoned_at FROM eventsource.stream_status ORDER BY stream_id;
SELECT s.stream_id, r.stream_version, r.global_position, r.event_id, r.event_type, r.data
  FROM eventsource.streams s, eventsource.read_stream(s.stream_id, max_count => 100000) r ORDER BY 1, 2;
SELECT s.stream_id, l.kind, l.stream_version FROM eventsource.streams s, eventsource.load_stream(s.stream_id) l ORDER BY 1, 3, 2;
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
check "the source holds snapshots (but those of the deleted and tombstoned streams)" "$(psql_quiet -d es_dump_source -c "SELECT count(*) FROM eventsource.snapshots")" 6
check "the source's \$streams audit stream records the deletes, tombstones and metadata changes" \
  "$(psql_quiet -d es_dump_source -c "SELECT string_agg(event_type || ':' || (data->>'stream_id'), ',' ORDER BY stream_version) FROM eventsource.read_stream('\$streams')")" \
  '$stream-metadata-set:order-2,$stream-metadata-set:order-3,$stream-metadata-set:order-4,$stream-metadata-set:cart-1,$stream-metadata-set:cart-aged,$stream-metadata-set:cart-kept,$stream-deleted:order-5,$stream-tombstoned:order-6,$stream-tombstoned:order-never'
check "the source's stream reads honour the retention" \
  "$(psql_quiet -d es_dump_source -c "SELECT string_agg(s || ':' || (SELECT coalesce(min(stream_version), 0) || '-' || coalesce(max(stream_version), 0) FROM eventsource.read_stream(s, max_count => 1000)), ' ' ORDER BY s) FROM unnest(ARRAY['order-2', 'order-3', 'order-4', 'order-5', 'order-6', 'order-never', 'cart-1', 'cart-aged', 'cart-kept']) s")" \
  "cart-1:2-2 cart-aged:0-0 cart-kept:2-4 order-2:68-72 order-3:30-72 order-4:32-71 order-5:0-0 order-6:0-0 order-never:0-0"
check "the source's stream states" \
  "$(psql_quiet -d es_dump_source -c "SELECT string_agg(stream_id || ':' || state, ' ' ORDER BY stream_id) FROM eventsource.stream_status WHERE state <> 'active'")" \
  "order-5:deleted order-6:tombstoned order-never:tombstoned"
# What scavenge may remove: the hidden cart events (no subscription or async projection reads the
# cart category); the order category's hidden events are held back by the billing subscription.
scavengeable=$(psql_quiet -d es_dump_source -c "SELECT sum(events_to_scavenge) FROM eventsource.stream_status WHERE category = 'cart'")
check "the source has cart events to scavenge" "$scavengeable" 5
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
  # The stream lifecycle, as in the source.
  for stream in order-6 order-never; do
    check "$db: appending to the tombstoned $stream fails with SE005" \
      "$(psql -X -q -At -d "$db" -v VERBOSITY=verbose -c "SELECT eventsource.append('$stream', 'Again', '{}')" 2>&1 | grep -c "ERROR:  SE005: stream \"$stream\" is tombstoned")" 1
  done
  check "$db: tombstoning order-6 again fails with SE005" \
    "$(psql -X -q -At -d "$db" -v VERBOSITY=verbose -c "SELECT eventsource.tombstone_stream('order-6')" 2>&1 | grep -c 'ERROR:  SE005')" 1
  check "$db: appending to the deleted order-5 continues its numbering, and only the new event shows" \
    "$(psql_quiet -d "$db" -c "SELECT eventsource.append('order-5', 'Reopened', '{}', expected_version => $(psql_quiet -d es_dump_source -c "SELECT eventsource.stream_version('order-5')"))" \
                          -c "SELECT string_agg(stream_version || ':' || event_type, ',') FROM eventsource.read_stream('order-5')")" \
    "$(v=$(($(psql_quiet -d es_dump_source -c "SELECT eventsource.stream_version('order-5')") + 1)); printf '%s\n%s' "$v" "$v:Reopened")"
  check "$db: the restored metadata can be changed, and reads follow at once" \
    "$(psql_quiet -d "$db" -c "SELECT eventsource.set_stream_metadata('order-2', '{\"max_count\": 2}')" -c "SELECT count(*) FROM eventsource.read_stream('order-2')")" \
    "$(printf '{"max_count": 2}\n2')"
  reads_before=$(psql_quiet -d "$db" -c "SELECT s.stream_id, r.event_id FROM eventsource.streams s, eventsource.read_stream(s.stream_id, max_count => 100000) r ORDER BY 1, r.stream_version")
  check "$db: scavenge removes the hidden events nothing holds back, in batches" \
    "$(psql_quiet -d "$db" -c "SELECT eventsource.scavenge(3)" -c "SELECT eventsource.scavenge()" -c "SELECT eventsource.scavenge()")" \
    "$(printf '3\n%s\n0' $((scavengeable - 3)))"
  check "$db: the cart category's hidden events are gone from the log" \
    "$(psql_quiet -d "$db" -c "SELECT count(*) FROM eventsource.read_category('cart', max_count => 1000)" -c "SELECT sum(events_to_scavenge) FROM eventsource.stream_status WHERE category = 'cart'")" \
    "$(printf '%s\n0' $(($(psql_quiet -d es_dump_source -c "SELECT count(*) FROM eventsource.read_category('cart', max_count => 1000)") - scavengeable)))"
  check "$db: the order category's hidden events stay, held back by the billing subscription" \
    "$(psql_quiet -d "$db" -c "SELECT sum(events_to_scavenge) > 0 FROM eventsource.stream_status WHERE category = 'order'")" t
  check "$db: stream reads are unchanged by the scavenge" \
    "$(psql_quiet -d "$db" -c "SELECT s.stream_id, r.event_id FROM eventsource.streams s, eventsource.read_stream(s.stream_id, max_count => 100000) r ORDER BY 1, r.stream_version")" \
    "$reads_before"
done

for db in es_dump_source es_restored_custom es_restored_plain; do
  dropdb "$db"
done
finish dump_restore
