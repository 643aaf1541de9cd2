#!/usr/bin/env bash
# exactly_once.sh: the README's exactly-once recipe under competition. Four consumers share one
# subscription with a 1-second lease; each polls a batch (a transaction of its own, so the lease is
# durable), then records one effect per event and acknowledges the batch in one transaction, slowly
# enough (0 to 1.6 s) that its lease often runs out first and another consumer polls the same
# batch. A late ack must fail with 55006 and take its effects with it: once the subscription is
# drained, every one of the 300 events has exactly one effect. (Before 0.7.0, both consumers'
# acks succeeded and the effects were applied twice.)
# Runs against the cluster that PGHOST/PGPORT/PGUSER name.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
db=es_exactly_once
consumers=4
events=300

work=$(mktemp -d "${TMPDIR:-/tmp}/es_exactly_once.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -- "$pid" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

dropdb --if-exists "$db"
createdb "$db"
psql_db > /dev/null <<SQL
CREATE EXTENSION eventsource;
CREATE TABLE effects (event_id uuid NOT NULL, consumer integer NOT NULL);
SELECT eventsource.append('account-' || n % 30, 'Deposited', jsonb_build_object('n', n)) FROM generate_series(1, $events) AS n;
SELECT eventsource.create_subscription('effects');
SQL

# The ack of a batch: with the lease poll returned (0.7.0), or without (before 0.7.0, to show the defect).
if [ "$(psql_db -c "SELECT count(*) FROM pg_catalog.pg_proc WHERE oid = 'eventsource.ack'::regproc AND pronargs = 4" 2> /dev/null || echo 0)" = 1 ]; then
  ack="eventsource.ack('effects', checkpoint, 0, lease)"
else
  ack="eventsource.ack('effects', checkpoint)"
fi

# consume N: polls and works until it sees the subscription drained (at most 90 s).
consume() {
  local deadline=$((SECONDS + 90)) out
  while [ $SECONDS -lt $deadline ]; do
    out=$(psql -X -q -At -d "$db" -v consumer="$1" 2>&1 <<SQL
CREATE TEMPORARY TABLE batch AS SELECT * FROM eventsource.poll('effects', 10, 0, 1);
BEGIN;
SELECT pg_catalog.pg_sleep(random() * 1.6) FROM batch LIMIT 1;
INSERT INTO effects SELECT event_id, :consumer FROM batch;
SELECT 'acked' FROM (SELECT $ack FROM batch ORDER BY checkpoint DESC LIMIT 1) a;
COMMIT;
SELECT 'drained' FROM eventsource.subscription_status WHERE name = 'effects' AND events_behind = 0;
SQL
)
    echo "$out"
    grep -q '^drained$' <<<"$out" && break
  done
}

for n in $(seq "$consumers"); do
  consume "$n" > "$work/consumer-$n.log" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
pids=()

logs=$(cat "$work"/consumer-*.log)
late=$(grep -c 'ERROR:  the lease of subscription "effects"' <<<"$logs" || true)
other=$(grep 'ERROR' <<<"$logs" | grep -v 'ERROR:  the lease of subscription "effects"' || true)
echo "# acks: $(grep -c '^acked$' <<<"$logs" || true) accepted, $late refused as late"
check "the subscription is drained" "$(psql_db -c "SELECT events_behind FROM eventsource.subscription_status WHERE name = 'effects'")" 0
check "some acks came after their lease ended (the test exercised the race)" "$([ "$late" -gt 0 ] && echo yes || echo "no ($late)")" yes
check "no errors but late acks" "$other" ""
check "every event's effect applied exactly once" \
  "$(psql_db -c "SELECT format('effects %s (%s distinct)', count(*), count(DISTINCT event_id)) FROM effects")" \
  "effects $events ($events distinct)"
check "and no effect of an event outside the log" \
  "$(psql_db -c "SELECT count(*) FROM effects f WHERE NOT EXISTS (SELECT FROM eventsource.events e WHERE e.event_id = f.event_id)")" 0
finish exactly_once
