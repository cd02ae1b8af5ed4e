#!/usr/bin/env bash
# tools/demo.sh — `make demo`: a rack in a box.  Generates a sample boot tree,
# starts bootstorm on loopback, plays MACHINES machines through the whole
# install flow with bootstorm-load, prints the result table and where the
# dashboard is, and stops everything it started (pass or fail).
#
#   BOOTSTORM=build/release/bin/bootstorm LOADGEN=build/release/bin/bootstorm-load \
#   MACHINES=200 tools/demo.sh
#
# Knobs (environment): MACHINES (200), DEMO_DIR (scratch directory,
# /tmp/bootstorm-demo; the tree is reused when present), DEMO_SCALE (0.05:
# file sizes against realistic ones — kernel 12 MiB, initrd 96 MiB, install.img
# 512 MiB, 375 MiB of packages — 52 MB per machine), DEMO_WINDOW (TFTP
# windowsize the machines ask, 16 as UEFI firmware does), DEMO_KEEP=1 (keep the
# server and its dashboard up until Ctrl-C).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BOOTSTORM=${BOOTSTORM:-$repo/build/release/bin/bootstorm}
LOADGEN=${LOADGEN:-$repo/build/release/bin/bootstorm-load}
MACHINES=${MACHINES:-200}
DEMO_DIR=${DEMO_DIR:-/tmp/bootstorm-demo}
DEMO_SCALE=${DEMO_SCALE:-0.05}
DEMO_WINDOW=${DEMO_WINDOW:-16}
DEMO_KEEP=${DEMO_KEEP:-0}

say() { printf 'demo: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
for b in "$BOOTSTORM" "$LOADGEN"; do [ -x "$b" ] || die "$b is missing: run 'make all' first"; done
[[ "$MACHINES" =~ ^[0-9]+$ ]] && [ "$MACHINES" -ge 1 ] || die "MACHINES=$MACHINES: want a number >= 1"
for t in python3 openssl curl; do command -v "$t" >/dev/null || die "$t is missing: run 'make deps'"; done

server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# a port nobody listens on now (TCP and UDP), preferring the given one
free_port() {
  python3 - "$1" "$2" <<'PY'
import socket, sys
want, kind = int(sys.argv[1]), sys.argv[2]
def ok(p):
    for t in ((socket.SOCK_STREAM,) if kind == "tcp" else (socket.SOCK_DGRAM,)):
        s = socket.socket(socket.AF_INET, t)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True
if want and ok(want):
    print(want)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

mkdir -p "$DEMO_DIR"
tree=$DEMO_DIR/tree
state=$DEMO_DIR/state
out=$DEMO_DIR/results
rm -rf "$state" "$out"
mkdir -p "$state" "$out"

t0=$SECONDS
say "sample tree in $tree (scale $DEMO_SCALE; reused if already there)"
"$here/mktree.sh" "$tree" --scale "$DEMO_SCALE" --machines "$MACHINES" 2>&1 | sed 's/^/demo: /' >&2

# Machines and the inventory that names them.  Loopback addresses cannot be
# reserved, so the pool hands them out (the installer's second DHCP must get
# the same one back: leases are keyed on the MAC).
"$LOADGEN" --write-inventory "$DEMO_DIR/hosts.csv" --machines "$MACHINES" --reservations no 2>/dev/null

http_port=$(free_port 8080 tcp)
tftp_port=$(free_port 69 udp)
dhcp_port=$(free_port 1067 udp)
args=(serve --listen 127.0.0.1 --http-port "$http_port" --http-root "$tree/http" --tftp-root "$tree/tftp"
      --tftp-port "$tftp_port" --state-dir "$state" --quiet)
stages=all
load=()
relay_ok() { # can we take 127.77.0.1:67 (as bootstorm-load does: SO_REUSEADDR + SO_REUSEPORT)?
  python3 - <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
try:
    s.bind(("127.77.0.1", 67))
except OSError as e:
    sys.exit(1)
PY
}
if [ "$(id -u)" = 0 ] && ! relay_ok; then
  say "127.77.0.1:67 is taken (another DHCP server on this host?): no DHCP stages"
  stages=tftp,kernel,initrd,ks,stage2,rpms,callback
elif [ "$(id -u)" = 0 ]; then
  # replies to a relay go to giaddr:67: the load generator binds 127.77.0.1:67
  args+=(--dhcp-port "$dhcp_port" --subnet "127.77.0.0/16,pool=127.77.1.1-127.77.250.254,router=127.77.0.1,dns=127.0.0.53")
  load+=(--dhcp-port "$dhcp_port" --giaddr 127.77.0.1)
else
  say "not root: no DHCP stages (the relay port 67 needs root); machines get 127.77.x.y directly"
  stages=tftp,kernel,initrd,ks,stage2,rpms,callback
fi
help=$("$BOOTSTORM" serve --help 2>&1 || true)
grep -q -- '--hosts' <<<"$help" && args+=(--hosts "$DEMO_DIR/hosts.csv")
if [ -d "$here/sample/profiles" ] && grep -q -- '--profiles' <<<"$help"; then
  args+=(--profiles "$here/sample/profiles")
  say "profiles from tools/sample/profiles"
fi

say "starting bootstorm: http 127.0.0.1:$http_port, tftp :$tftp_port, dhcp :$dhcp_port"
"$BOOTSTORM" "${args[@]}" >"$DEMO_DIR/access.log" 2>"$DEMO_DIR/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q serving "$DEMO_DIR/server.log" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || die "bootstorm did not start: $(tail -3 "$DEMO_DIR/server.log")"
  sleep 0.1
done
grep -q serving "$DEMO_DIR/server.log" || die "bootstorm did not start in 10 s: $(tail -3 "$DEMO_DIR/server.log")"

# Per-host kickstarts when the server renders them; else a static one (the
# fallback path a plain web server would serve) and no install callback.
if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/ks/52:54:00:00:00:00")" != 200 ]; then
  printf '# static kickstart (bootstorm demo)\ntext\nreboot\n' >"$tree/http/ks.cfg"
  load+=(--kickstart-path /ks.cfg)
fi

say "bootstorm-load: $MACHINES machines powering on at once"
rc=0
"$LOADGEN" storm --machines "$MACHINES" --stages "$stages" --server 127.0.0.1 --http-port "$http_port" \
  --tftp-port "$tftp_port" --windowsize "$DEMO_WINDOW" --follow-config-host no \
  --tree "$tree" --verify=crc32c --json "$out/storm.json" --csv "$out/storm.csv" --svg "$out/storm.svg" \
  "${load[@]}" || rc=$?

echo
echo "results: $out/storm.svg (machines done per stage over time), storm.json, storm.csv"
echo "dashboard: http://127.0.0.1:$http_port/  (server log: $DEMO_DIR/server.log)"
echo "demo took $((SECONDS - t0)) s"
if [ "$DEMO_KEEP" = 1 ]; then
  echo "DEMO_KEEP=1: bootstorm keeps serving; Ctrl-C stops it"
  wait "$server_pid" || true
fi
[ $rc -eq 0 ] || say "some machines failed (exit status $rc): see the table above"
exit $rc
