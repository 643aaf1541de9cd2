# check.sh: sourced by the shell tests. check NAME GOT EXPECTED prints "ok - NAME" or "not ok -
# NAME: ..." and counts it; finish TEST prints "TEST: N passed, M failed" and fails if any did;
# notifier_serves DB prints t once a notifier serves DB (waiting up to 20 s), f otherwise;
# preloaded_cluster DIR PORT SOCKET_DIR DATABASES initdb's a cluster in DIR with eventsource
# preloaded and its notifier serving DATABASES (eventsource.worker_databases left unset, so every
# database with the extension, when DATABASES is empty), listening on PORT in SOCKET_DIR only
# (binaries from $bin); the caller adds settings to DIR/postgresql.conf and starts it.
# output_within SECONDS COMMAND... runs COMMAND every 0.05 s until it prints something, for SECONDS at
# most, and prints that, or "none".
# hears_own_append PSQL... prints t when a session of the psql command PSQL... that LISTENs on
# eventsource hears, within 20 s, the notification whose payload is the checkpoint of the event it
# appended; f otherwise.
# start_worker_cluster DATABASES, in a test with $bin, $port and a directory $work, starts a
# preloaded_cluster in $work/data (socket in $work, log $work/server.log) serving DATABASES, whose
# notifier looks again every 20 ms while events are held back and which scavenges only when asked,
# and points the environment (PGHOST, PGPORT, PGUSER) at it.
# worker_pid_of DB PSQL... prints the pid of DB's worker once eventsource.notifier_status(), asked
# through the psql command PSQL... (unaligned), shows one (waiting up to 20 s), nothing otherwise;
# worker_exits LOG prints how many times a worker exited with an exit code, in the server log LOG.
# run_as_postgres ARGS, called first by a test that starts clusters of its own (PostgreSQL refuses
# to run as root), runs the test again as postgres when it runs as root, with the same environment.
# psql_db ARGS... runs psql on the test's database $db: unaligned tuples only, stopping at the
# first error; wait_for_db QUERY runs QUERY there every 0.1 s until it returns t (60 s at most) and
# fails if it never did.
passes=0
failures=0

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

wait_for_db() {
  for _ in $(seq 600); do
    [ "$(psql_db -c "$1")" = t ] && return 0
    sleep 0.1
  done
  return 1
}

check() {
  if [ "$2" = "$3" ]; then
    echo "ok - $1"
    passes=$((passes + 1))
  else
    echo "not ok - $1: expected '$3', got '$2'"
    failures=$((failures + 1))
  fi
}

finish() {
  echo "$1: $passes passed, $failures failed"
  [ "$failures" -eq 0 ]
}

notifier_serves() {
  local serves=f
  for _ in $(seq 200); do
    serves=$(psql -X -At -d "$1" -c "SELECT pid IS NOT NULL FROM eventsource.notifier_status() WHERE database_name = '$1'")
    [ "$serves" = t ] && break
    sleep 0.1
  done
  echo "${serves:-f}"
}

output_within() {
  local seconds=$1 output
  shift
  for _ in $(seq $((seconds * 20))); do
    output=$("$@")
    [ -n "$output" ] && { echo "$output"; return; }
    sleep 0.05
  done
  echo none
}

hears_own_append() {
  local out stream=liveness-$RANDOM$RANDOM heard=f
  out=$(mktemp)
  # heard_in OUT: whether OUT has the notification of the checkpoint the session printed.
  heard_in() { grep -qF "Asynchronous notification \"eventsource\" with payload \"$(sed -n 's/^appended //p' "$1")\"" "$1"; }
  {
    echo "LISTEN eventsource;"
    echo "SELECT eventsource.append('$stream', 'Pinged', '{}');"
    echo "SELECT 'appended ' || checkpoint FROM eventsource.read_stream('$stream');"
    for _ in $(seq 100); do
      echo "SELECT pg_sleep(0.2);"
      sleep 0.2
      heard_in "$out" && break
    done
  } | "$@" > "$out" 2>&1
  heard_in "$out" && heard=t
  rm -f "$out"
  echo "$heard"
}

start_worker_cluster() {
  preloaded_cluster "$work/data" "$port" "$work" "$1"
  cat >> "$work/data/postgresql.conf" <<CONF
eventsource.notify_max_delay = 20
eventsource.scavenge_interval = 0
CONF
  "$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w start > /dev/null
  unset PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS
  export PGHOST=$work PGPORT=$port PGUSER=postgres
}

worker_pid_of() {
  local database=$1 pid
  shift
  pid=$(output_within 20 "$@" -c "SELECT pid FROM eventsource.notifier_status() WHERE database_name = '$database'")
  [ "$pid" = none ] || echo "$pid"
}

worker_exits() { grep -c 'eventsource notifier.*exited with exit code' "$1" || true; }

run_as_postgres() {
  [ "$(id -u)" -eq 0 ] || return 0
  exec runuser -u postgres -- bash "$0" "$@"
}

preloaded_cluster() {
  "$bin/initdb" -D "$1" -A trust -U postgres --locale=C.UTF-8 > /dev/null
  cat >> "$1/postgresql.conf" <<CONF
port = $2
unix_socket_directories = '$3'
listen_addresses = ''
shared_preload_libraries = 'eventsource'
${4:+eventsource.worker_databases = '$4'}
CONF
}
