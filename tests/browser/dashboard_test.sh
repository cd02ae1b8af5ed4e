#!/usr/bin/env bash
# The dashboard in headless Chromium (Debian's chromium package), driven by
# tests/browser/dashboard_test.py over the DevTools protocol: the page loads
# without console errors, lists 1000 hosts grouped by rack, a state change made
# through the server shows within a second, a burst of 1000 changes arrives
# while the page stays responsive.
#
# Everything runs in a private network namespace (unshare -n, as root): the
# server on 10.66.0.1, the hosts' requests from their inventory addresses on
# the same loopback (a /16 on lo makes every address in it local).
#   BOOTSTORM=build/release/bin/bootstorm tests/browser/dashboard_test.sh [--screenshot FILE]
set -u
: "${BOOTSTORM:?set BOOTSTORM to the bootstorm binary}"
HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-chromium}
command -v "$CHROMIUM" >/dev/null || { echo "missing $CHROMIUM (apt-get install -y chromium)"; echo "0 passed, 1 failed"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (unshare -n)"; echo "0 passed, 1 failed"; exit 1; }
BOOTSTORM=$(readlink -f "$BOOTSTORM")
PY=$(command -v /usr/bin/python3 || command -v python3)

if [ "${1:-}" != "--inside" ]; then
  exec unshare -n "$0" --inside "$@"
fi
shift
WORK=$(mktemp -d /tmp/bootstorm-browser.XXXXXX)
trap 'kill $SPID 2>/dev/null; wait $SPID 2>/dev/null; rm -rf "$WORK"' EXIT
ip link set lo up
ip addr add 10.66.0.1/16 dev lo

HOSTS=1000 RACKS=10
mkdir -p "$WORK/root/images" "$WORK/state"
echo kernel >"$WORK/root/images/vmlinuz"
echo initrd >"$WORK/root/images/initrd.img"
{
  echo "mac,hostname,ip,profile,rack"
  for i in $(seq 1 $HOSTS); do
    printf '52:54:00:66:%02x:%02x,node%04d,10.66.%d.%d,,r%d\n' $((i / 256)) $((i % 256)) "$i" \
      $((1 + i / 250)) $((i % 250 + 1)) $(((i - 1) % RACKS + 1))
  done
} >"$WORK/hosts.csv"
# every host but the first, for the burst
sed -n '3,$p' "$WORK/hosts.csv" | awk -F, '{print $1, $3}' >"$WORK/burst"
MOVER=$(sed -n 2p "$WORK/hosts.csv" | awk -F, '{print $1 "=" $3}')

"$BOOTSTORM" serve --listen 10.66.0.1 --http-port 8080 --http-root "$WORK/root" --hosts "$WORK/hosts.csv" \
  --state-dir "$WORK/state" --threads 2 --quiet >"$WORK/server.out" 2>"$WORK/server.err" &
SPID=$!
for _ in $(seq 1 100); do grep -q serving "$WORK/server.err" && break; sleep 0.1; done
grep -q serving "$WORK/server.err" || { cat "$WORK/server.err"; echo "0 passed, 1 failed"; exit 1; }

CHROMIUM=$CHROMIUM "$PY" "$HERE/dashboard_test.py" --url http://10.66.0.1:8080/ --hosts $HOSTS --racks $RACKS \
  --mover "$MOVER" --burst "$WORK/burst" "$@"
rc=$?
if grep -E -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK/server.err"; then
  echo "  FAIL server: sanitizer report"; rc=1
fi
exit $rc
