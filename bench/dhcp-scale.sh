#!/usr/bin/env bash
# bench/dhcp-scale.sh — does bootstorm's DHCP cost stay flat as the lease table
# grows, and how long does a restart take to load the journal?  (issue 3:
# "per-DORA cost flat from 1,000 to 1,000,000 leases"; "1 million leases load
# from the journal in under 2 seconds".)
#
# One server (--threads 1, journal on, fsync batched) in a network namespace of
# its own, bootstorm-load as a relay agent on the same loopback, server and
# client pinned to their own cores.  The table is filled with new clients
# (closed loop, every MAC new) up to each level of SCALE_LEVELS; at each level a
# fixed-rate run of new clients measures the server's own CPU per DORA
# (/proc/PID/stat utime+stime, all its threads), the p99 DORA time and the
# losses, and the server's RSS growth per lease held.  After the last level
# the server is stopped (SIGTERM) and restarted on the same state directory
# SCALE_RESTARTS times: the replay time the server reports ("N leases loaded in
# S s"), and the time from exec to its "serving" line (an empty state directory's
# start is timed too, for comparison).
#
# Knobs (environment):
#   SCALE_LEVELS      lease counts to measure at [1000 10000 100000 1000000]
#   SCALE_RATE        offered DORA/s of each measurement [2000]
#   SCALE_SECONDS     seconds per measurement [5]
#   SCALE_RESTARTS    restarts timed at the end [3]
#   BENCH_FSYNC_MS    bootstorm --fsync-interval-ms [5]
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU  cores [0 / 1]
#   BOOTSTORM LOADGEN binaries [build/release/bin/bootstorm, bootstorm-load]
set -u
. "$(dirname "$0")/args.sh"
bench_args "$0" "$@"
LEVELS=${SCALE_LEVELS:-"1000 10000 100000 1000000"}
RATE=${SCALE_RATE:-2000}
SECS=${SCALE_SECONDS:-5}
RESTARTS=${SCALE_RESTARTS:-3}
FSYNC=${BENCH_FSYNC_MS:-5}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
[ "$(id -u)" = 0 ] || { echo "bench/dhcp-scale.sh: needs root (a network namespace, port 67)" >&2; exit 1; }
for b in "$BOOTSTORM" "$LOADGEN"; do [ -x "$b" ] || { echo "bench/dhcp-scale.sh: $b missing: make all" >&2; exit 1; }; done
for x in $LEVELS $RATE $SECS $RESTARTS; do
  case $x in ''|*[!0-9]*) echo "bench/dhcp-scale.sh: '$x' is not a whole number" >&2; exit 2 ;; esac
done

NS=bsscale$$
W=$(mktemp -d /tmp/bootstorm-scale.XXXXXX)
SPID=""
cleanup() {
  [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null
  local p
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$NS" && ip -n "$NS" link set lo up &&
  ip -n "$NS" addr add 10.0.0.1/8 dev lo && ip -n "$NS" addr add 10.0.0.2/8 dev lo ||
  { echo "bench/dhcp-scale.sh: cannot set up the namespace" >&2; exit 1; }

# a /8 pool (16M addresses): the largest level plus every measurement fits
start_server() {  # starts bootstorm on $W/state, waits for "serving"; STARTED_S: the seconds it took
  local t0 t1 i
  : >"$W/err"
  t0=$(date +%s.%N)
  ip netns exec "$NS" taskset -c "$SCPU" "$BOOTSTORM" serve --listen 10.0.0.1 --threads 1 --quiet \
    --http-port 18080 --state-dir "$W/state" --fsync-interval-ms "$FSYNC" \
    --subnet 10.0.0.0/8,pool=10.1.0.1-10.254.255.254,lease=86400 >/dev/null 2>>"$W/err" &
  SPID=$!
  for i in $(seq 1 6000); do
    grep -q serving "$W/err" && break
    kill -0 "$SPID" 2>/dev/null || { echo "bench/dhcp-scale.sh: server exited: $(tail -n3 "$W/err")" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(date +%s.%N)
  grep -q serving "$W/err" || { echo "bench/dhcp-scale.sh: server did not start in 60 s" >&2; exit 1; }
  STARTED_S=$(echo "$t1 - $t0" | bc -l)
}
stop_server() {
  kill -TERM "$SPID" 2>/dev/null
  local i
  for i in $(seq 1 300); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SPID" 2>/dev/null
  wait "$SPID" 2>/dev/null
  SPID=""
}
ticks() { awk '{print $14 + $15}' "/proc/$SPID/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SPID/status"; }

# load RUN MACBASE ARGS...: one bootstorm-load dhcp run, its JSON in $W/RUN.json
RUNS=0
load() {
  local run=$1 mac=$2
  shift 2
  ip netns exec "$NS" taskset -c "$CCPU" "$LOADGEN" dhcp --server 10.0.0.1 --giaddr 10.0.0.2 --relay-port 67 \
    --mac-base "$mac" --progress no --json "$W/$run.json" "$@" >"$W/$run.out" 2>&1
  # it exits non-zero when exchanges were lost: the JSON says how many
  [ -s "$W/$run.json" ] || { echo "bench/dhcp-scale.sh: bootstorm-load failed: $(tail -n2 "$W/$run.out")" >&2; exit 1; }
}
jget() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"j": j}))' "$@"; }
macbase() { printf '52:%02x:%02x:00:00:00' $(($1 >> 8 & 255)) $(($1 & 255)); } # 16M MACs per run

rm -rf "$W/state"
start_server
empty_start=$STARTED_S
stop_server
rm -rf "$W/state"
start_server
rss0=$(rss_kib)
leases=0
echo "bench/dhcp-scale.sh: levels $LEVELS; measured at $RATE DORA/s for $SECS s each; --fsync-interval-ms $FSYNC" >&2
printf '| leases held | DORA/s acked | lost %% | p99 DORA ms | server CPU µs/DORA | RSS MiB | RSS growth bytes/lease |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|\n'
for level in $LEVELS; do
  # fill with new clients: closed loop in 2 s steps while far from the level,
  # then the remainder at a fixed rate for one second (so the level is met closely)
  while [ "$leases" -lt "$level" ]; do
    RUNS=$((RUNS + 1))
    want=$((level - leases))
    if [ "$want" -gt 20000 ]; then
      load fill$RUNS "$(macbase $RUNS)" --rate 0 --outstanding 256 --duration 2
    else
      load fill$RUNS "$(macbase $RUNS)" --rate "$want" --duration 1
    fi
    got=$(jget "$W/fill$RUNS.json" 'j["acked"]')
    [ "$got" -gt 0 ] || { echo "bench/dhcp-scale.sh: no DORA acked while filling" >&2; exit 1; }
    leases=$((leases + got))
  done
  # measure: a fixed offered rate of new clients
  RUNS=$((RUNS + 1))
  t0=$(ticks)
  load m$RUNS "$(macbase $RUNS)" --rate "$RATE" --duration "$SECS"
  t1=$(ticks)
  rss=$(rss_kib)
  python3 - "$W/m$RUNS.json" $((t1 - t0)) "$leases" "$rss" "$rss0" <<'PY'
import json, os, sys
j = json.load(open(sys.argv[1])); ticks, held, rss, rss0 = map(int, sys.argv[2:6])
a = j["acked"]
cpu_us = ticks * 1e6 / os.sysconf("SC_CLK_TCK")
p99 = "%.2f" % j["dora"]["p99_ms"] if j["dora"]["count"] else "-"
print("| %d | %.0f | %.3f | %s | %s | %.1f | %.0f |" % (held, a / j["seconds"], j["dropped_pct"], p99,
      "%.1f" % (cpu_us / a) if a else "-", rss / 1024, (rss - rss0) * 1024 / held))
PY
  leases=$((leases + $(jget "$W/m$RUNS.json" 'j["acked"]')))
done
stop_server
jbytes=$(stat -c %s "$W/state/leases.journal")
printf '\nRestart with %d leases (journal %.1f MB); an empty state directory starts in %.3f s:\n' "$leases" \
  "$(echo "$jbytes / 1000000" | bc -l)" "$empty_start"
for r in $(seq 1 "$RESTARTS"); do
  start_server
  printf '  restart %d: exec to serving %.3f s; %s\n' "$r" "$STARTED_S" \
    "$(grep -o '[0-9]* leases loaded in [0-9.]* s' "$W/err" | tail -n1)"
  stop_server
done
