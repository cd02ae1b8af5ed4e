# tests/integration/lib.sh — shared by the integration suites (sourced).
# Each suite defines test functions named t_*; run_suite runs them, counts,
# and ends with the one line "N passed, N failed".
set -u
: "${BOOTSTORM:?set BOOTSTORM to the bootstorm binary}"
BACKEND=${BACKEND:-uring}
WORK=$(mktemp -d /tmp/bootstorm-it.XXXXXX)
SERVER_PID=""
CLEANUPS=()

cleanup_all() {
  local i
  for ((i=${#CLEANUPS[@]}-1; i>=0; i--)); do eval "${CLEANUPS[i]}" >/dev/null 2>&1 || true; done
  stop_server
  rm -rf "$WORK"
}
trap cleanup_all EXIT INT TERM
on_exit() { CLEANUPS+=("$*"); }

# free_port: a TCP/UDP port nobody listens on right now
free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# wait_serving PID LOG: waits (10 s) for the "serving" line a bootstorm serve
# started in the background writes to LOG; 1, with a line saying why, if the
# process exits or the line does not come
wait_serving() {
  local i
  for i in $(seq 1 100); do
    if grep -q "serving" "$2" 2>/dev/null; then return 0; fi
    if ! kill -0 "$1" 2>/dev/null; then echo "server exited: $(cat "$2")"; return 1; fi
    sleep 0.1
  done
  echo "server did not start in 10 s: $(cat "$2")"; return 1
}

# start_server ARGS...: starts bootstorm serve in the background, waits for its
# "serving" line (10 s), logs to $WORK/server.log
start_server() {
  stop_server
  : >"$WORK/server.log"
  "$BOOTSTORM" serve --backend "$BACKEND" "$@" >"$WORK/access.log" 2>"$WORK/server.log" &
  SERVER_PID=$!
  wait_serving "$SERVER_PID" "$WORK/server.log" || { SERVER_PID=""; return 1; }
}

stop_server() {
  if [ -n "${SERVER_PID:-}" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

server_alive() { [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; }

PASSED=0; FAILED=0; FAILED_NAMES=()
fail() { echo "    FAIL: $*"; return 1; }
# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }

run_suite() {
  local name=$1; shift
  local t
  # TEST_ONLY=REGEX runs only the tests whose names match (for chasing one)
  for t in $(declare -F | awk '{print $3}' | grep '^t_' | grep -E -- "${TEST_ONLY:-.}"); do
    local out rc
    out=$( ( set -e; "$t" ) 2>&1 ); rc=$?
    if [ $rc -eq 0 ]; then
      PASSED=$((PASSED+1)); echo "  ok   $name/$t"
    else
      FAILED=$((FAILED+1)); FAILED_NAMES+=("$name/$t"); echo "  FAIL $name/$t"; echo "$out" | tail -n 15 | sed 's/^/      /'
    fi
  done
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
