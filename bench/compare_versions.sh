#!/usr/bin/env bash
# bench/compare_versions.sh REF [WORKLOAD]: one-event appends (or WORKLOAD, a file of bench/workloads)
# at 16 clients on two clusters side by side, one running the library and scripts of git REF, the
# other those of the working tree, alternating which goes first round by round (ROUNDS, default 8,
# of SECONDS, default 8, each), fsync on, each cluster's notifier serving its database; prints each
# round's ratio (working tree / REF) and their median. REF is built into a private copy of
# PostgreSQL's installation (/usr/lib/postgresql/15, /usr/share/postgresql/15 and its headers,
# copied under a temporary directory, which PostgreSQL finds its files relative to), so that the
# system's installation keeps the working tree's build (this script installs it first). Run as
# root. README.md, Performance, quotes it for REF 35963d7 (the version before tags and conditions).
set -euo pipefail
ref=${1:?usage: bench/compare_versions.sh REF [WORKLOAD]}
workload=${2:-append_one.pgbench}
rounds=${ROUNDS:-8}
seconds=${SECONDS_PER_ROUND:-8}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  for side in ref tree; do
    [ -d "$work/$side/data" ] && runuser -u postgres -- "$work/$side/bin/pg_ctl" -D "$work/$side/data" -m immediate stop > /dev/null 2>&1 || true
  done
  git -C "$root" worktree remove --force "$work/source" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bash "$root/.ci/build-and-install" > "$work/build-tree.log"
copy=$work/pg
mkdir -p "$copy/lib/postgresql" "$copy/share/postgresql" "$copy/include"
cp -a /usr/lib/postgresql/15 "$copy/lib/postgresql/"
cp -a /usr/share/postgresql/15 "$copy/share/postgresql/"
cp -a /usr/include/postgresql "$copy/include/"
git -C "$root" worktree add -q "$work/source" "$ref"
EVENTSOURCE_PG_BIN=$copy/lib/postgresql/15/bin bash "$work/source/.ci/build-and-install" > "$work/build-ref.log"

start() { # SIDE BIN PORT
  local dir=$work/$1
  mkdir -p "$dir"; ln -s "$2" "$dir/bin"; chown -R postgres "$dir"
  runuser -u postgres -- "$2/initdb" -D "$dir/data" -A trust -U postgres --locale=C.UTF-8 > /dev/null
  cat >> "$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'eventsource'
eventsource.worker_databases = 'bench'
unix_socket_directories = '$dir'
listen_addresses = ''
port = $3
shared_buffers = 512MB
CONF
  runuser -u postgres -- "$2/pg_ctl" -D "$dir/data" -l "$dir/log" -w start > /dev/null
  runuser -u postgres -- "$2/createdb" -h "$dir" -p "$3" -U postgres bench
  runuser -u postgres -- "$2/psql" -X -q -h "$dir" -p "$3" -U postgres -d bench -c "CREATE EXTENSION eventsource" \
    -c "SELECT count(*) FROM generate_series(0, 99) b, LATERAL (SELECT eventsource.append('stream-' || (b * 1000 + i), 'Opened', '{}') FROM generate_series(1, 1000) i) x" > /dev/null
}
start ref "$copy/lib/postgresql/15/bin" 5701
start tree /usr/lib/postgresql/15/bin 5702
run() { # SIDE PORT
  runuser -u postgres -- pgbench -n -M prepared -h "$work/$1" -p "$2" -U postgres -c 16 -j 2 -T "$seconds" \
    -f "$root/bench/workloads/$workload" bench 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
ratios=()
for round in $(seq "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then a=$(run ref 5701); b=$(run tree 5702); else b=$(run tree 5702); a=$(run ref 5701); fi
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')
  ratios+=("$ratio")
  echo "round $round: $ref $a tps, working tree $b tps, ratio $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s: median ratio %.3f over %d rounds (min %s, max %s)\n", "'"$workload"'", m, NR, v[1], v[NR]}'
