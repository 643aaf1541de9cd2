#!/usr/bin/env bash
# append_search_path_replan.sh: an append's own statements are not parsed again when its caller's
# search path changes. Apps that switch the search path between appends (a schema per tenant,
# SET ROLE to roles with a "$user" schema each, functions with a SET search_path of their own that
# call append) must not pay a parse and plan of every kept statement on each switch: that cost
# 130-160 us an append here, where a SECURITY DEFINER function's pinned search path costs 10 us.
# With debug_print_parse on, each statement parsed (the session's own, and every statement parsed
# again for it) logs one "parse tree"; an append after a search path change may log only its own.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one).
set -euo pipefail
source "$(dirname "$0")/lib/check.sh"

db=es_append_search_path_replan

dropdb --if-exists "$db"
createdb "$db"
psql_db <<'SQL'
CREATE EXTENSION eventsource;
CREATE SCHEMA tenant_1;
CREATE SCHEMA tenant_2;
SQL

# parse_trees SETUP APPEND: in one session, runs SETUP, then every kept statement of APPEND under
# search path tenant_1 (twice, so that they are kept and planned), then switches to tenant_2 and
# prints how many statements were parsed during APPEND run once more.
parse_trees() {
  psql -X -q -d "$db" 2>&1 >/dev/null <<SQL | sed -n '/^BEGIN-APPEND$/,/^END-APPEND$/p' | grep -c 'LOG:  parse tree' || true
$1
SET search_path = tenant_1, public;
$2;
$2;
SET search_path = tenant_2, public;
SET client_min_messages = log;
SET debug_print_parse = on;
\warn BEGIN-APPEND
$2;
\warn END-APPEND
SQL
}

check "an append to an existing stream parses only itself after a search path change" \
  "$(parse_trees "SELECT eventsource.append('order-1', 'Placed', '{}')" \
                 "SELECT eventsource.append('order-1', 'Paid', '{}')")" 1
check "an append at an expected version parses only itself after a search path change" \
  "$(parse_trees "SELECT eventsource.append('order-2', 'Placed', '{}')" \
                 "SELECT eventsource.append('order-2', 'Paid', '{}', expected_version => -1)")" 1
check "an append with an event id parses only itself after a search path change" \
  "$(parse_trees "" "SELECT eventsource.append('order-3', 'Paid', '{}', event_id => gen_random_uuid())")" 1
check "append_events parses only itself after a search path change" \
  "$(parse_trees "" "SELECT stream_version FROM eventsource.append_events('order-4', '[{\"type\": \"A\", \"data\": {}}, {\"type\": \"B\", \"data\": {}}]')")" 1

finish append_search_path_replan
