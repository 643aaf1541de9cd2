#!/usr/bin/env bash
# install_script_build.sh: make rebuilds the install script of the current version from
# sql/source/ whenever the sources change, a source removed or added included (a branch switch that
# deletes one must not leave its objects in the script that make install installs). Builds in a
# copy of the worktree's sources (git ls-files), with pg_config from the PATH or PG_CONFIG.
set -euo pipefail
source "$(dirname "$0")/lib/check.sh"

pg_config=${PG_CONFIG:-pg_config}
root=$(git -c safe.directory='*' -C "$(dirname "$0")/../.." rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && git -c safe.directory='*' ls-files -z | xargs -0 cp --parents --no-dereference -t "$work")
target="sql/eventsource--$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$work/eventsource.control").sql"
script="$work/$target"
build() { make -s -C "$work" PG_CONFIG="$pg_config" "$target" > /dev/null; }
sources_concatenated() { awk 'FNR == 1 && NR > 1 { print "" } { print }' "$work"/sql/source/*.sql; }

build
check "the script is the sources, in name order" "$(tail -n +2 "$script" | cmp -s - <(sources_concatenated) && echo same)" "same"

sleep 1
rm "$work/sql/source/46_statistics.sql"
build
check "a removed source leaves the script" "$(grep -c 'FUNCTION eventsource.statistics()' "$script" || true)" "0"

sleep 1
printf -- '-- 47_added.sql: a source added later.\n' > "$work/sql/source/47_added.sql"
build
check "an added source joins the script" "$(grep -c '47_added.sql' "$script" || true)" "1"

finish install_script_build
