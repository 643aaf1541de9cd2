#!/usr/bin/env bash
# read_by_query_followers.sh: 4 followers of one tag, each reading pages of 50 with read_by_query
# from the last checkpoint it read, while 20 writers append events of the tag in transactions that
# commit out of order: each follower ends with exactly the tag's events of the log, in log order,
# none skipped and none twice. (An attack once saw a follower skip 8 of 13,987 events: a
# transaction in progress in the read's snapshot that ended before the read looked at what was
# still running was neither waited for nor read again.)
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
seconds=${STRESS_SECONDS:-15}
db=es_followers
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
query="'{\"items\": [{\"tags\": [\"follow:1\"]}]}'"

dropdb --if-exists "$db"
createdb "$db"
psql_db -c "CREATE EXTENSION eventsource"
pgbench -n -c 20 -j 2 -T "$seconds" -f "$here/stress/tagged_writer.pgbench" "$db" > "$work/pgbench.log" 2>&1 &
writers=$!
for follower in 1 2 3 4; do
  (
    after=NULL
    : > "$work/follower-$follower"
    end=$((SECONDS + seconds + 2))
    while [ $SECONDS -lt $end ]; do
      page=$(psql_db -c "SELECT global_position, checkpoint FROM eventsource.read_by_query($query, $after, 50)")
      [ -z "$page" ] && continue
      cut -d'|' -f1 <<< "$page" >> "$work/follower-$follower"
      after="'$(tail -1 <<< "$page" | cut -d'|' -f2)'"
    done
    psql_db -c "SELECT global_position FROM eventsource.read_by_query($query, $after, 100000)" >> "$work/follower-$follower"
  ) &
done
wait
psql_db -c "SELECT global_position FROM eventsource.events WHERE tags @> '{follow:1}' ORDER BY transaction_id, global_position" > "$work/log"
echo "# $(wc -l < "$work/log") events of the tag"
check "the writers appended" "$([ "$(wc -l < "$work/log")" -gt 1000 ] && echo many)" many
for follower in 1 2 3 4; do
  check "follower $follower read every event of the tag once, in log order" \
    "$(cmp -s "$work/follower-$follower" "$work/log" && echo same || echo "$(wc -l < "$work/follower-$follower") rows, $(sort "$work/follower-$follower" | uniq -d | wc -l) repeated, differing")" same
done
dropdb "$db"
echo "read_by_query_followers: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
