# check.sh: sourced by the shell tests. check NAME GOT EXPECTED prints "ok - NAME" or "not ok -
# NAME: ..." and counts it; finish TEST prints "TEST: N passed, M failed" and fails if any did.
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
