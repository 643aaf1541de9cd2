#!/usr/bin/env bash
# append_cancel.sh: an append_events call of 150,000 events with caller-supplied ids answers
# pg_cancel_backend and pg_terminate_backend sent a second into it within 2 seconds (the check for
# duplicate ids inside the batch and the parsing of the events check for interrupts; the duplicate
# check was quadratic and did not, and took some 50 s to answer here), and leaves nothing behind.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one).
set -euo pipefail
source "$(dirname "$0")/lib/check.sh"

db=es_append_cancel
events=150000
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dropdb --if-exists "$db"
createdb "$db"
psql_db -c "CREATE EXTENSION eventsource"

# stop_append SIGNAL_FUNCTION: starts the append in a session of its own (the batch is built in an
# earlier statement of that session), sends SIGNAL_FUNCTION to it a second after the append began,
# and prints the seconds from the signal to the session's end, then the session's error.
stop_append() {
  local name="append_cancel_$1" started signalled ended
  psql -X -q -At -d "$db" -v "name=$name" > /dev/null 2> "$work/$1.err" <<SQL &
SET application_name = :'name';
CREATE TEMPORARY TABLE batch AS
  SELECT jsonb_agg(jsonb_build_object('type', 'Big', 'data', '{}'::jsonb, 'id', gen_random_uuid())) AS events
    FROM generate_series(1, $events);
SELECT stream_version FROM eventsource.append_events('big-1', (SELECT events FROM batch));
SQL
  local session=$!
  for _ in $(seq 600); do
    started=$(psql_db -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$name'
                            AND state = 'active' AND query LIKE 'SELECT stream_version%'")
    [ "$started" = 1 ] && break
    sleep 0.05
  done
  sleep 1
  psql_db -c "SELECT $1(pid) FROM pg_stat_activity WHERE application_name = '$name'" > /dev/null
  signalled=$(date +%s.%N)
  wait "$session" || true
  ended=$(date +%s.%N)
  echo "$ended - $signalled" | bc
  grep -m1 -o 'canceling statement due to user request\|terminating connection due to administrator command' \
    "$work/$1.err" || echo "no error: $(cat "$work/$1.err")"
}

for signal in pg_cancel_backend pg_terminate_backend; do
  { read -r seconds; read -r error; } < <(stop_append "$signal")
  echo "# $signal answered after $seconds s"
  check "$signal stops the append within 2 s" "$(echo "$seconds < 2" | bc)" 1
  case $signal in
    pg_cancel_backend) check "$signal: the statement is canceled" "$error" "canceling statement due to user request" ;;
    *) check "$signal: the session is terminated" "$error" "terminating connection due to administrator command" ;;
  esac
  check "$signal: nothing of the append is stored" \
    "$(psql_db -c "SELECT count(*) FROM eventsource.events WHERE stream_id = 'big-1'")" 0
done

dropdb "$db"
finish append_cancel.sh
