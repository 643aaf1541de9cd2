#!/usr/bin/env bash
# dump_restore.sh: pg_dump of a database with events and snapshots, restored into a fresh database
# (custom format through pg_restore, and plain SQL through psql), brings back every event, stream,
# snapshot and the position counter, and appends continue with the right versions and positions.
# The stream lifecycle (0.5.0) survives too: retention metadata, soft deletes and tombstones (of a
# written stream and of an id never written), the $streams audit stream; stream reads hide the same
# events, a tombstoned stream stays unwritable, a deleted one continues its numbering, and scavenge
# removes what nothing holds back. A parallel restore (pg_dump -Fd, pg_restore -j 4) of a database
# with inline projections, five times: the log's COPY does not call their handlers, every event and
# the read model come back as dumped, and an append afterwards is projected once.
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
  # The snapshots below their stream's first snapshot version (order-2's, order-3's and order-4's,
  # which retention left behind), which scavenge removes after the events.
  unusable=$(psql_quiet -d "$db" -c "SELECT count(*) FROM eventsource.snapshots n JOIN eventsource.streams s USING (stream_id)
                                      WHERE n.stream_version < greatest(eventsource.first_visible_version(s) - 1, coalesce(s.deleted_through, 0) + 1)")
  check "$db: scavenge removes the hidden events nothing holds back, then the unusable snapshots, in batches" \
    "$(psql_quiet -d "$db" -c "SELECT $unusable > 0" -c "SELECT eventsource.scavenge(3)" -c "SELECT eventsource.scavenge()" -c "SELECT eventsource.scavenge()")" \
    "$(printf 't\n3\n%s\n0' $((scavengeable - 3 + unusable)))"
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

# A parallel restore (a directory dump through pg_restore -j 4) of a database with inline
# projections: the restore's COPY into eventsource.events must not call their handlers, whose read
# model is restored with it (a call counts the events twice, or fails the COPY: the handlers' ON
# CONFLICT needs the unique indexes, which come after the data). pg_restore -j starts the larger
# tables' data first: the application's three larger tables keep three of the workers busy, and the
# fourth loads eventsource.projections (its rows, with their event_types, outweigh the log's three
# events in one transaction), which enables the inline trigger, before the log. Five restores, each
# into a new database; then an append to the last is projected once.
parallel_databases=(es_parallel_source es_parallel_1 es_parallel_2 es_parallel_3 es_parallel_4 es_parallel_5)
for db in "${parallel_databases[@]}"; do
  dropdb --if-exists "$db"
done
createdb es_parallel_source
psql_quiet -d es_parallel_source > /dev/null <<'SQL'
CREATE EXTENSION eventsource;
CREATE SCHEMA model;
CREATE TABLE model.account_totals (account_id text NOT NULL, deposits integer NOT NULL, amount bigint NOT NULL);
CREATE UNIQUE INDEX account_totals_account_id ON model.account_totals (account_id);
CREATE TABLE model.event_counts (event_type text NOT NULL, events integer NOT NULL);
CREATE UNIQUE INDEX event_counts_event_type ON model.event_counts (event_type);
CREATE FUNCTION model.total(e eventsource.event) RETURNS void LANGUAGE sql AS $$
    INSERT INTO model.account_totals AS t VALUES (e.stream_id, 1, (e.data->>'amount')::bigint)
    ON CONFLICT (account_id) DO UPDATE SET deposits = t.deposits + 1, amount = t.amount + excluded.amount
$$;
CREATE FUNCTION model.count(e eventsource.event) RETURNS void LANGUAGE sql AS $$
    INSERT INTO model.event_counts AS c VALUES (e.event_type, 1) ON CONFLICT (event_type) DO UPDATE SET events = c.events + 1
$$;
SELECT eventsource.create_projection('account-totals', 'model.total(eventsource.event)', category => 'account',
                                     event_types => ARRAY['Deposited']);
SELECT eventsource.create_projection('event-counts', 'model.count(eventsource.event)',
                                     event_types => ARRAY['Opened', 'Deposited', 'Withdrawn', 'Transferred', 'InterestPaid', 'FeeCharged', 'Closed']);
-- One transaction: the events share their transaction id and time, and weigh little in the dump.
BEGIN;
SELECT eventsource.append('account-1', 'Deposited', '{"amount": 10}');
SELECT eventsource.append('account-2', 'Deposited', '{"amount": 20}');
SELECT eventsource.append('account-1', 'Deposited', '{"amount": 5}');
COMMIT;
CREATE SCHEMA app;
CREATE TABLE app.customers AS SELECT n, md5(n::text) AS name FROM generate_series(1, 3000) AS n;
CREATE TABLE app.orders AS SELECT n, md5(n::text) AS item FROM generate_series(1, 3000) AS n;
CREATE TABLE app.invoices AS SELECT n, md5(n::text) AS line FROM generate_series(1, 3000) AS n;
SQL
read_model() {
  psql_quiet -d "$1" <<'SQL'
SELECT global_position, stream_id, stream_version, event_id, event_type, data FROM eventsource.events ORDER BY global_position;
SELECT account_id, deposits, amount FROM model.account_totals ORDER BY account_id;
SELECT event_type, events FROM model.event_counts ORDER BY event_type;
SQL
}
read_model es_parallel_source > "$work/parallel_source.txt"
pg_dump -Fd -d es_parallel_source -f "$work/dump.directory"
# dumped_size TABLE: the bytes of eventsource.TABLE's data in the directory dump (pg_restore -j
# loads the larger first).
dumped_size() {
  local id
  id=$(pg_restore -l "$work/dump.directory" | awk -v t="$1" '$4 $5 $6 $7 == "TABLEDATAeventsource" t { sub(";", "", $1); print $1 }')
  stat -c %s "$work/dump.directory/$id.dat.gz" 2> /dev/null || echo "no data file"
}
check "parallel: the dump holds more of eventsource.projections than of the log" \
  "$([ "$(dumped_size projections)" -gt "$(dumped_size events)" ] 2> /dev/null && echo t || echo "f: $(dumped_size projections), $(dumped_size events)")" t
for db in "${parallel_databases[@]:1}"; do
  createdb "$db"
  restored=$(pg_restore -j 4 -d "$db" "$work/dump.directory" 2>&1) || true
  check "$db: pg_restore -j 4 succeeds" "$(grep -m1 -o 'ERROR:.*' <<<"$restored" || echo ok)" ok
  check "$db: every event is restored" "$(psql_quiet -d "$db" -c "SELECT count(*) FROM eventsource.events")" 3
  check "$db: events and read model are as dumped" "$(read_model "$db" | cmp -s - "$work/parallel_source.txt" && echo identical || echo different)" identical
done
check "$db: an append after the restore is projected once" \
  "$(psql_quiet -d "$db" -c "SELECT eventsource.append('account-1', 'Deposited', '{\"amount\": 1}')" \
       -c "SELECT deposits || ' ' || amount FROM model.account_totals WHERE account_id = 'account-1'" \
       -c "SELECT events FROM model.event_counts WHERE event_type = 'Deposited'")" "$(printf '3\n3 16\n4')"
for db in "${parallel_databases[@]}"; do
  dropdb "$db"
done

finish dump_restore
