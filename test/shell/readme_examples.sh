#!/usr/bin/env bash
# readme_examples.sh: runs every ```sql block of README.md, in order, in a fresh database. A block
# preceded by a line "<!-- error: SQLSTATE -->" must fail with that SQLSTATE; every other block
# must succeed. Keeps the documentation and the code in step.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one).
set -euo pipefail
readme="$(cd "$(dirname "$0")/../.." && pwd)/README.md"
db=es_readme
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dropdb --if-exists "$db" 2>/dev/null
psql -X -q -c "DROP ROLE IF EXISTS order_service" -c "DROP ROLE IF EXISTS reporting" -c "DROP ROLE IF EXISTS billing_service"
createdb "$db"

# Split the README into numbered block files; an expected SQLSTATE goes into NAME.error.
awk -v dir="$work" '
  /^<!-- error: [0-9A-Z]+ -->$/ { expected = $3; next }
  /^```sql$/ { block++; file = sprintf("%s/%03d.sql", dir, block); inside = 1
               if (expected != "") print expected > (file ".error"); expected = ""; next }
  /^```/ && inside { inside = 0; close(file); next }
  inside { print > file; next }
  NF { expected = "" }
' "$readme"

passed=0
failed=0
for block in "$work"/*.sql; do
  name="README.md sql block $(basename "$block" .sql)"
  if [ -f "$block.error" ]; then
    want=$(cat "$block.error")
    got=$(psql -X -q -d "$db" -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate -f "$block" 2>&1 >/dev/null || true)
    if grep -q "ERROR:  $want" <<<"$got"; then
      echo "ok - $name fails with $want"; passed=$((passed + 1))
    else
      echo "not ok - $name should fail with $want, got: $got"; failed=$((failed + 1))
    fi
  elif out=$(psql -X -q -d "$db" -v ON_ERROR_STOP=1 -f "$block" 2>&1); then
    echo "ok - $name runs"; passed=$((passed + 1))
  else
    echo "not ok - $name: $out"; failed=$((failed + 1))
  fi
done

dropdb "$db"
psql -X -q -c "DROP ROLE IF EXISTS order_service" -c "DROP ROLE IF EXISTS reporting" -c "DROP ROLE IF EXISTS billing_service"
echo "readme_examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
