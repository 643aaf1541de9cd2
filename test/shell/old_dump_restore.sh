#!/usr/bin/env bash
# old_dump_restore.sh: a pg_dump of a database at an older version (0.4.0 to 0.7.0: events,
# snapshots, a subscription, an async projection) restored with pg_restore --single-transaction
# --exit-on-error into a fresh database, which CREATE EXTENSION installs at the current version:
# every row comes back; the rows of before 0.6.0, which lack a subscription's owner and a
# projection's search path, get what the 0.6.0 upgrade gives them (eventsource_reader, the search
# path of before 0.6.0); an append afterwards continues the stream and comes last in the log.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one).
set -euo pipefail
source "$(dirname "$0")/lib/check.sh"

psql_quiet() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
current=$(psql_quiet -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'eventsource'")

# What a database holds, in short.
rows() { psql_quiet -d "$1" -c "SELECT (SELECT count(*) FROM eventsource.events) || ' events, '
  || (SELECT count(*) FROM eventsource.streams) || ' streams, '
  || (SELECT count(*) FROM eventsource.snapshots) || ' snapshots, '
  || (SELECT count(*) FROM eventsource.subscription_members) || ' members, '
  || (SELECT string_agg(name || ' ' || handler::text::regprocedure::text, ', ') FROM eventsource.projections)"; }

for version in 0.4.0 0.5.0 0.6.0 0.7.0; do
  source_db=es_old_dump_${version//./_}
  restored_db=${source_db}_restored
  dropdb --if-exists "$source_db"
  dropdb --if-exists "$restored_db"
  createdb "$source_db"
  psql_quiet -d "$source_db" -v version="$version" > /dev/null <<'SQL'
SET client_min_messages = error;
CREATE EXTENSION eventsource VERSION :'version';
SELECT eventsource.append('order-' || n % 3, 'OrderEvent', jsonb_build_object('n', n)) FROM generate_series(1, 12) AS n;
SELECT eventsource.save_snapshot('order-1', 4, '{"seen": 4}');
SELECT eventsource.create_subscription('billing', 'order');
CREATE FUNCTION public.count_event(e eventsource.event) RETURNS void LANGUAGE sql AS 'SELECT';
-- Before 0.6.0 this library refuses create_projection (its SECURITY DEFINER function hides the
-- caller): the row the function of then wrote.
SELECT CASE WHEN :'version' < '0.6.0'
            THEN 'INSERT INTO eventsource.projections (name, handler, owner, category, mode, on_failure, max_attempts)'
                 ' VALUES (''counts'', ''public.count_event(eventsource.event)'', ''postgres'', ''order'', ''async'', ''stop'', 5)'
            ELSE 'SELECT eventsource.create_projection(''counts'', ''public.count_event(eventsource.event)'','
                 ' category => ''order'', mode => ''async'')'
       END AS create_projection \gset
:create_projection;
SQL
  pg_dump -Fc -d "$source_db" -f "$work/$version.dump"
  createdb "$restored_db"
  restore_error=$(pg_restore --single-transaction --exit-on-error -d "$restored_db" "$work/$version.dump" 2>&1 || true)
  check "$version: the dump restores" "$restore_error" ""
  [ -n "$restore_error" ] && continue

  check "$version: every row comes back" "$(rows "$restored_db")" "$(rows "$source_db")"
  check "$version: at the current version" \
    "$(psql_quiet -d "$restored_db" -c "SELECT extversion FROM pg_extension WHERE extname = 'eventsource'")" "$current"
  if [[ $version < 0.6.0 ]]; then
    check "$version: the subscription belongs to eventsource_reader" \
      "$(psql_quiet -d "$restored_db" -c "SELECT owner FROM eventsource.subscriptions")" "eventsource_reader"
    check "$version: the projection keeps the search path of before 0.6.0" \
      "$(psql_quiet -d "$restored_db" -c "SELECT search_path FROM eventsource.projections")" "pg_catalog, pg_temp"
  fi
  check "$version: an append continues the stream, last in the log" \
    "$(psql_quiet -d "$restored_db" -c "SELECT eventsource.append('order-1', 'AfterRestore', '{}')" \
                                   -c "SELECT string_agg(stream_version::text, ',' ORDER BY checkpoint)
                                         FROM eventsource.read_all() WHERE stream_id = 'order-1'")" \
    "5
1,2,3,4,5"
  dropdb "$source_db"
  dropdb "$restored_db"
done

finish old_dump_restore
