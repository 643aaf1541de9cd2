# check.sh: sourced by the shell tests. check NAME GOT EXPECTED prints "ok - NAME" or "not ok -
# NAME: ..." and counts it; finish TEST prints "TEST: N passed, M failed" and fails if any did;
# notifier_serves DB prints t once a notifier serves DB (waiting up to 20 s), f otherwise;
# preloaded_cluster DIR PORT SOCKET_DIR DATABASES initdb's a cluster in DIR with eventsource
# preloaded and its notifier serving DATABASES, listening on PORT in SOCKET_DIR only (binaries from
# $bin); the caller adds settings to DIR/postgresql.conf and starts it.
# run_as_postgres ARGS, called first by a test that starts clusters of its own (PostgreSQL refuses
# to run as root), runs the test again as postgres when it runs as root, with the same environment.
passes=0
failures=0

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
eventsource.notify_databases = '$4'
CONF
}
