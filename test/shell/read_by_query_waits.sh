#!/usr/bin/env bash
# read_by_query_waits.sh: what read_by_query waits for, on a cluster of its own (prepared
# transactions on). It returns every matching event committed when it runs, so it waits for the
# older transactions in progress that could still commit events before the last one it returns:
# - a transaction of another database, whatever its age, does not delay it (it cannot write this
#   log);
# - an older transaction of this database does, and the read then returns the event that
#   transaction committed before the newer one, in log order;
# - a transaction left open, or a prepared transaction nobody commits, delays it at most
#   eventsource.read_wait_timeout, after which it returns the gap-safe log below the horizon (the
#   newer event is not returned: a conditional append on what it returned fails, rather than the
#   read hanging), also after a restart with the prepared transaction still there; a shorter
#   lock_timeout of the caller's ends the read with the caller's error instead.
# Binaries from EVENTSOURCE_PG_BIN (default the system's 15); port PGPORT + 29.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
run_as_postgres "$@"
bin=${EVENTSOURCE_PG_BIN:-/usr/lib/postgresql/15/bin}
port=$((${PGPORT:-5432} + 29))
work=$(mktemp -d)
cleanup() { "$bin/pg_ctl" -D "$work/data" -m immediate stop > /dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
preloaded_cluster "$work/data" "$port" "$work" "none"
echo "max_prepared_transactions = 5" >> "$work/data/postgresql.conf"
"$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w start > /dev/null
psql_db() { local db=$1; shift; "$bin/psql" -X -q -v ON_ERROR_STOP=1 -At -h "$work" -p "$port" -U postgres -d "$db" "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
query="'{\"items\": [{\"tags\": [\"course:c1\"]}]}'"
read_course() { psql_db es "$@" -c "SELECT string_agg(event_type, ',' ORDER BY checkpoint) FROM eventsource.read_by_query($query)"; }

psql_db postgres -c "CREATE DATABASE es" -c "CREATE DATABASE es_other"
psql_db es -c "CREATE EXTENSION eventsource" -c "SELECT eventsource.append('course-c1', 'CourseDefined', '{}', tags => '{course:c1}')" > /dev/null
psql_db es_other -c "CREATE TABLE t (i int)"

# A transaction of another database, older than the event read: no wait.
psql_db es_other -c "BEGIN" -c "INSERT INTO t VALUES (1)" -c "SELECT pg_sleep(4)" -c "COMMIT" > /dev/null &
sleep 0.5
psql_db es -c "SELECT eventsource.append('course-c1', 'CourseRenamed', '{}', tags => '{course:c1}')" > /dev/null
started=$(now_ms)
events=$(read_course)
elapsed=$(( $(now_ms) - started ))
check "a transaction of another database does not delay the read ($elapsed ms)" "$events|$([ $elapsed -lt 1000 ] && echo prompt)" "CourseDefined,CourseRenamed|prompt"
wait

# An older transaction of this database: the read waits for it, and returns what it committed first.
psql_db es -c "BEGIN" -c "SELECT eventsource.append('other-1', 'Noted', '{}')" -c "SELECT pg_sleep(1.5)" \
  -c "SELECT eventsource.append('room-r1', 'CourseMoved', '{}', tags => '{course:c1}')" -c "COMMIT" > /dev/null &
sleep 0.5
psql_db es -c "SELECT eventsource.append('course-c1', 'CourseOpened', '{}', tags => '{course:c1}')" > /dev/null
check "an older transaction of this database is waited for, and its event comes first" \
  "$(read_course)" "CourseDefined,CourseRenamed,CourseMoved,CourseOpened"
wait

# A prepared transaction nobody commits, older than the event read: the read waits at most
# eventsource.read_wait_timeout, then returns the gap-safe log below it.
psql_db es -c "BEGIN" -c "SELECT eventsource.append('other-2', 'Noted', '{}')" -c "PREPARE TRANSACTION 'forgotten'" > /dev/null
psql_db es -c "SELECT eventsource.append('course-c1', 'CourseClosed', '{}', tags => '{course:c1}')" > /dev/null
started=$(now_ms)
events=$(PGOPTIONS="-c eventsource.read_wait_timeout=300" read_course)
elapsed=$(( $(now_ms) - started ))
check "a forgotten prepared transaction delays the read only for read_wait_timeout ($elapsed ms), which returns the log below it" \
  "$events|$([ $elapsed -ge 300 ] && [ $elapsed -lt 2000 ] && echo bounded)" "CourseDefined,CourseRenamed,CourseMoved,CourseOpened|bounded"
"$bin/pg_ctl" -D "$work/data" -m fast -w restart -l "$work/server.log" > /dev/null
started=$(now_ms)
events=$(PGOPTIONS="-c eventsource.read_wait_timeout=300" read_course)
elapsed=$(( $(now_ms) - started ))
check "and so after a restart ($elapsed ms)" "$events|$([ $elapsed -lt 2000 ] && echo bounded)" "CourseDefined,CourseRenamed,CourseMoved,CourseOpened|bounded"
check "eventsource.read_wait_timeout = 0: no wait at all" \
  "$(PGOPTIONS="-c eventsource.read_wait_timeout=0" read_course)" "CourseDefined,CourseRenamed,CourseMoved,CourseOpened"
check "a shorter lock_timeout of the caller's is the caller's error (55P03)" \
  "$(PGOPTIONS="-c lock_timeout=100" read_course -v VERBOSITY=sqlstate 2>&1 | grep -o 55P03)" 55P03
psql_db es -c "COMMIT PREPARED 'forgotten'"
check "once it commits, the read returns the newer event" "$(read_course)" "CourseDefined,CourseRenamed,CourseMoved,CourseOpened,CourseClosed"

echo "read_by_query_waits: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
