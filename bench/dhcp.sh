#!/usr/bin/env bash
# bench/dhcp.sh — bootstorm vs Kea vs dnsmasq, DHCPv4 DORA, same run.
# The server runs in one network namespace, the client in another, joined by a
# veth pair (server 10.0.0.1, client 10.0.0.2); the client is a relay agent
# (giaddr 10.0.0.2, port 67), every client new (a fresh MAC per exchange), one
# large pool (10.16.0.1-10.31.255.254 in 10.0.0.0/8, 1M addresses), leases kept
# on disk by every server:
#   bootstorm  journal on, fsync batched (--fsync-interval-ms, BENCH_FSYNC_MS)
#   Kea        kea-dhcp4 2.x, memfile with its lease file (appended, never fsynced),
#              one thread, WARN logging (Debian's INFO costs it ~8% at 4,000/s)
#   dnsmasq    --no-ping, lease file on (rewritten and fsynced on every change),
#              --quiet-dhcp
# perfdhcp (Kea's, -g single) offers each rate of the sweep for BENCH_SECONDS
# against a fresh server; a server's sweep stops at the first rate it cannot
# sustain with under 0.1% of the DORAs lost (tried twice).  Reports DORA/s,
# drops, p99 DISCOVER→OFFER and REQUEST→ACK (perfdhcp -x t), the server's own
# CPU µs per DORA (a cgroup of its own, else /proc: bench/proc.sh), RSS; then bootstorm-load dhcp in closed loop (its
# --outstanding exchanges in flight), which offers more than perfdhcp can, for
# each server's own ceiling.  Server on BENCH_SERVER_CPU, client on BENCH_CLIENT_CPU.
#
# Knobs (environment):
#   BENCH_SECONDS      seconds per rate [5; 3 with BENCH_QUICK]
#   BENCH_QUICK=1      fewer rates: 100 1000 4000 8000 16000 30000
#   BENCH_DHCP_RATES   offered rates, ascending
#                      [100 200 500 1000 2000 4000 8000 12000 16000 24000 32000]
#   BENCH_SERVERS      [bootstorm kea dnsmasq]
#   BENCH_FSYNC_MS     bootstorm --fsync-interval-ms [5]
#   BENCH_DHCP_OUTSTANDING  closed-loop exchanges in flight [256]
#   BENCH_DHCP_FIXED   a fixed rate bootstorm-load offers every server too, for the
#                      CPU per DORA at the same load (perfdhcp cannot offer much more
#                      than 6,000/s here) [8000]; "no": skip
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU  cores [0 / 1]
#   BENCH_KEEP=1       keep the scratch directory (results.tsv, logs, lease files)
#   BOOTSTORM LOADGEN  binaries [build/release/bin/bootstorm, bootstorm-load]
set -u
. "$(dirname "$0")/args.sh"
bench_args "$0" "$@"
[ "$(id -u)" = 0 ] || { echo "bench/dhcp.sh: needs root (network namespaces, port 67)" >&2; exit 1; }
for b in "$BOOTSTORM" "$LOADGEN"; do [ -x "$b" ] || { echo "bench/dhcp.sh: $b missing: make all" >&2; exit 1; }; done
QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 1 ] && : "${BENCH_SECONDS:=3}"
: "${BENCH_SECONDS:=5}"
export BENCH_SECONDS
. "$HERE/lib.sh"
. "$HERE/proc.sh"
srv_cg_init
if [ "$QUICK" = 1 ]; then RATES=${BENCH_DHCP_RATES:-"100 1000 4000 8000 16000 30000"}
else RATES=${BENCH_DHCP_RATES:-"100 200 500 1000 2000 4000 8000 12000 16000 24000 32000"}; fi
SERVERS=${BENCH_SERVERS:-"bootstorm kea dnsmasq"}
FSYNC=${BENCH_FSYNC_MS:-5}
OUTST=${BENCH_DHCP_OUTSTANDING:-256}
ulimit -n 65536 2>/dev/null || true

# ---- two namespaces and a veth pair, removed on every exit ----
NSS=bsdh$$-srv; NSC=bsdh$$-cli; VS=bsdh$$s; VC=bsdh$$c
SIP=10.0.0.1; CIP=10.0.0.2
SUBNET=10.0.0.0/8; POOL_LO=10.16.0.1; POOL_HI=10.31.255.254
dhcp_cleanup() {
  local n p
  for n in "$NSS" "$NSC"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  PIDS=()
  bench_cleanup
  for n in "$NSS" "$NSC"; do ip netns del "$n" 2>/dev/null; done
  srv_cg_fini
  return 0
}
trap dhcp_cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$NSS" && ip netns add "$NSC" &&
  ip link add "$VS" type veth peer name "$VC" &&
  ip link set "$VS" netns "$NSS" && ip link set "$VC" netns "$NSC" &&
  ip -n "$NSS" addr add "$SIP/24" dev "$VS" && ip -n "$NSC" addr add "$CIP/24" dev "$VC" &&
  ip -n "$NSS" link set lo up && ip -n "$NSC" link set lo up &&
  ip -n "$NSS" link set "$VS" up && ip -n "$NSC" link set "$VC" up ||
  { echo "bench/dhcp.sh: cannot set up the namespaces and the veth pair" >&2; exit 1; }
# (not functions: timeout and $! need the real command)
INS=(ip netns exec "$NSS"); INC=(ip netns exec "$NSC")

SKIPPED=()
have=()
for s in $SERVERS; do
  case $s in
    bootstorm) have+=("$s") ;;
    kea) command -v kea-dhcp4 >/dev/null && have+=("$s") || SKIPPED+=("kea: kea-dhcp4 not installed") ;;
    dnsmasq) command -v dnsmasq >/dev/null && have+=("$s") || SKIPPED+=("dnsmasq: not installed") ;;
    *) echo "bench/dhcp.sh: unknown server $s" >&2; exit 2 ;;
  esac
done
command -v perfdhcp >/dev/null || SKIPPED+=("perfdhcp (kea-admin) not installed: no rate sweep, closed loop only")

wait_udp67() {  # PID: until the server binds port 67 in its namespace (10 s)
  local i
  for i in $(seq 1 100); do
    [ -n "$("${INS[@]}" ss -Hlun 'sport = :67' 2>/dev/null)" ] && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
SPID=""
start_server() {  # NAME: a fresh server with empty lease state, sets SPID
  local log=$BW/$1.log
  rm -rf "$BW/state" "$BW/kea-leases4.csv" "$BW/dnsmasq.leases"
  case $1 in
    bootstorm)
      "${INS[@]}" taskset -c "$SCPU" "$BOOTSTORM" serve --listen "$SIP" --threads 1 --quiet --state-dir "$BW/state" \
        --subnet "$SUBNET,pool=$POOL_LO-$POOL_HI,lease=3600" --fsync-interval-ms "$FSYNC" >/dev/null 2>>"$log" & SPID=$! ;;
    kea)
      cat >"$BW/kea.json" <<KEA
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "$VS/$SIP" ], "dhcp-socket-type": "udp" },
  "lease-database": { "type": "memfile", "persist": true, "name": "$BW/kea-leases4.csv", "lfc-interval": 0 },
  "multi-threading": { "enable-multi-threading": false },
  "valid-lifetime": 3600,
  "subnet4": [ { "id": 1, "subnet": "$SUBNET", "pools": [ { "pool": "$POOL_LO - $POOL_HI" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "$log" } ] } ]
} }
KEA
      KEA_PIDFILE_DIR=$BW KEA_LOCKFILE_DIR=$BW "${INS[@]}" taskset -c "$SCPU" kea-dhcp4 -c "$BW/kea.json" >>"$log" 2>&1 & SPID=$! ;;
    dnsmasq)
      "${INS[@]}" taskset -c "$SCPU" dnsmasq -k --conf-file=/dev/null --port=0 --no-ping --interface="$VS" --bind-interfaces \
        --dhcp-range="$POOL_LO,$POOL_HI,255.0.0.0,1h" --dhcp-lease-max=2000000 --dhcp-leasefile="$BW/dnsmasq.leases" \
        --dhcp-authoritative --quiet-dhcp --log-facility="$log" --pid-file="$BW/dnsmasq.pid" >>"$log" 2>&1 & SPID=$! ;;
  esac
  PIDS=("$SPID")
  srv_track "$SPID"
  wait_udp67 "$SPID" || { echo "bench/dhcp.sh: $1 did not start: $(tail -n2 "$log")" >&2; stop_server; return 1; }
}
stop_server() {  # TERM (bootstorm flushes its journal), then KILL after 2 s
  [ -n "$SPID" ] || return 0
  local i
  kill -TERM "$SPID" 2>/dev/null
  for i in $(seq 1 20); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SPID" 2>/dev/null
  srv_cg_killall
  wait "$SPID" 2>/dev/null
  SPID=""; PIDS=()
}

RES=$BW/results.tsv
: >"$RES"
# TSV: kind server rate secs cpu_us rss_kib started acked drops_pct p99_do p99_ra p99_dora note
#   kind "sweep" (perfdhcp at RATE) or "closed" (bootstorm-load dhcp --rate 0)
perf_step() {  # SERVER RATE -> 0 if under 0.1% drops
  local s=$1 r=$2 t0 t1 rss rc
  start_server "$s" || { echo -e "sweep\t$s\t$r\t$SECS\t0\t0\t0\t0\t100\t-\t-\t-\tserver did not start" >>"$RES"; return 1; }
  t0=$(srv_cpu_us "$SPID")
  # -R: a 24-bit MAC space, so every exchange is a new client; -W: 1 s to collect late replies
  timeout -k 2 $((SECS + 30)) "${INC[@]}" taskset -c "$CCPU" perfdhcp -4 -g single -l "$CIP" -r "$r" -R 16777215 \
    -p "$SECS" -W 1000000 -x t "$SIP" >"$BW/perf.out" 2>&1
  rc=$?
  t1=$(srv_cpu_us "$SPID")
  rss=$(proc_rss "$SPID")
  stop_server
  python3 - "$s" "$r" "$SECS" $((t1 - t0)) "$rss" "$BW/perf.out" "$rc" >>"$RES" <<'PY'
import re, sys
s, r, secs, cpu, rss, path, rc = sys.argv[1:8]
secs = float(secs)
text = open(path, errors="replace").read()
def section(name):   # the statistics block of DISCOVER-OFFER or REQUEST-ACK
    m = re.search(r"\*\*\*Statistics for: %s\*\*\*(.*?)(\*\*\*|$)" % name, text, re.S)
    if not m:
        return None
    b = m.group(1)
    g = lambda k: int(re.search(r"%s: (\d+)" % k, b).group(1)) if re.search(r"%s: (\d+)" % k, b) else 0
    return dict(sent=g("sent packets"), recv=g("received packets"))
def p99(name):       # from -x t: one "sent / received" pair per completed exchange
    m = re.search(r"\*\*\*Timestamps for packets: %s\*\*\*(.*?)(\*\*\*|$)" % name, text, re.S)
    if not m:
        return None
    d = sorted(float(b) - float(a) for a, b in re.findall(r"sent / received: ([\d.]+) / ([\d.]+)", m.group(1)))
    return d[min(len(d) - 1, int(len(d) * 0.99))] * 1e3 if d else None
do, ra = section("DISCOVER-OFFER"), section("REQUEST-ACK")
if not do or not ra or do["sent"] == 0:
    last = [l for l in text.splitlines() if l.strip()][-1:] or [""]
    print("\t".join(["sweep", s, r, "%g" % secs, cpu, rss, "0", "0", "100", "-", "-", "-",
                     "perfdhcp gave no statistics (exit %s): %s" % (rc, last[0][:100])]))
    sys.exit()
a, b = p99("DISCOVER-OFFER"), p99("REQUEST-ACK")
f = lambda x: "-" if x is None else "%.2f" % x
drops = 100.0 * (do["sent"] - ra["recv"]) / do["sent"]
note = ""
if do["sent"] < 0.95 * float(r) * secs:
    note = "perfdhcp offered only %.0f/s" % (do["sent"] / secs)
print("\t".join([ "sweep", s, r, "%g" % secs, cpu, rss, str(do["sent"]), str(ra["recv"]), "%.3f" % drops,
                  f(a), f(b), f(a + b) if a is not None and b is not None else "-", note]))
PY
  tail -n1 "$RES" | awk -F'\t' '{printf "  %-9s %6s/s offered: %6d DORAs acked, drops %7s%%, p99 DO %s RA %s ms %s\n", $2,$3,$8,$9,$10,$11,$13}' >&2
  awk -F'\t' 'END { exit !($9 != "" && $9 + 0 < 0.1 && $8 > 0) }' "$RES"
}
closed_loop() {  # SERVER [RATE]: RATE 0 (default) = as fast as answers come
  local s=$1 rate=${2:-0} kind=closed t0 t1 rss rc
  [ "$rate" != 0 ] && kind=fixed
  start_server "$s" || { echo -e "$kind\t$s\t$rate\t$SECS\t0\t0\t0\t0\t100\t-\t-\t-\tserver did not start" >>"$RES"; return; }
  rm -f "$BW/dl.json"
  t0=$(srv_cpu_us "$SPID")
  timeout -k 2 $((SECS + 30)) "${INC[@]}" taskset -c "$CCPU" "$LOADGEN" dhcp --server "$SIP" --giaddr "$CIP" --relay-port 67 \
    --rate "$rate" --outstanding "$OUTST" --duration "$SECS" --progress no --json "$BW/dl.json" >"$BW/dl.out" 2>&1
  rc=$?
  t1=$(srv_cpu_us "$SPID")
  rss=$(proc_rss "$SPID")
  stop_server
  python3 - "$s" "$SECS" $((t1 - t0)) "$rss" "$BW/dl.json" "$BW/dl.out" "$rc" "$kind" "$rate" >>"$RES" <<'PY'
import json, sys
s, secs, cpu, rss, jp, op, rc, kind, rate = sys.argv[1:10]
try:
    j = json.load(open(jp))
except Exception:
    last = [l for l in open(op, errors="replace").read().splitlines() if l.strip()][-1:] or [""]
    print("\t".join([kind, s, rate, secs, cpu, rss, "0", "0", "100", "-", "-", "-",
                     "bootstorm-load gave no result (exit %s): %s" % (rc, last[0][:100])]))
    sys.exit()
ra = j["dora"]["p99_ms"] if j["dora"]["count"] else None
print("\t".join([kind, s, rate, "%.3f" % j["seconds"], cpu, rss, str(j["started"]), str(j["acked"]),
                 "%.3f" % j["dropped_pct"], "%.2f" % j["offer"]["p99_ms"] if j["offer"]["count"] else "-", "-",
                 "%.2f" % ra if ra is not None else "-",
                 "%d NAK, %d late" % (j["naks"], j["late"]) if j["naks"] or j["late"] else ""]))
PY
  tail -n1 "$RES" | awk -F'\t' '{printf "  %-9s %s %s: %d DORAs acked in %s s, drops %s%%, p99 DORA %s ms %s\n", $2,$1,$3,$8,$4,$9,$12,$13}' >&2
}

echo "bench/dhcp.sh: servers ${have[*]}; ${SECS}s per rate; rates $RATES; bootstorm --fsync-interval-ms $FSYNC" >&2
for x in "${SKIPPED[@]}"; do echo "bench/dhcp.sh: skipped $x" >&2; done
if command -v perfdhcp >/dev/null; then
  for s in "${have[@]}"; do
    echo "== $s: perfdhcp sweep" >&2
    for r in $RATES; do
      perf_step "$s" "$r" && continue
      echo "  $s: retrying $r/s once (the machine may be busy)" >&2
      perf_step "$s" "$r" && continue
      break
    done
  done
fi
for s in "${have[@]}"; do
  echo "== $s: bootstorm-load dhcp, closed loop, $OUTST outstanding" >&2
  closed_loop "$s"
done
FIXED=${BENCH_DHCP_FIXED:-8000}
if [ "$FIXED" != no ] && [ "$FIXED" != 0 ]; then
  for s in "${have[@]}"; do
    echo "== $s: bootstorm-load dhcp, fixed $FIXED/s" >&2
    closed_loop "$s" "$FIXED"
  done
fi

python3 - "$RES" "$FSYNC" "$OUTST" "$SRV_CPU_SOURCE" "${SKIPPED[@]}" <<'PY'
import sys
from collections import OrderedDict
path, fsync, outst, cpu_source = sys.argv[1:5]
skipped = sys.argv[5:]
DUR = {"bootstorm": "journal, fsync batched (--fsync-interval-ms %s)" % fsync,
       "kea": "memfile lease file, appended, never fsynced",
       "dnsmasq": "lease file rewritten and fsynced on every change"}
sweep, closed, fixed, servers = OrderedDict(), {}, {}, []
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if len(f) < 13:
        continue
    r = dict(kind=f[0], s=f[1], rate=int(f[2]), secs=float(f[3]), cpu=int(f[4]), rss=int(f[5]), sent=int(f[6]),
             acked=int(f[7]), drops=float(f[8]), p99do=f[9], p99ra=f[10], p99=f[11], note=f[12])
    r["dps"] = r["acked"] / r["secs"] if r["secs"] else 0
    r["us"] = r["cpu"] / r["acked"] if r["acked"] else float("nan")
    r["ok"] = r["acked"] > 0 and r["drops"] < 0.1
    if r["s"] not in servers:
        servers.append(r["s"])
    if r["kind"] == "sweep":
        sweep.setdefault(r["s"], []).append(r)
    elif r["kind"] == "fixed":
        fixed[r["s"]] = r
    else:
        closed[r["s"]] = r
fmt = lambda x, d=1: "-" if x != x else "%.*f" % (d, x)
if sweep:
    secs = next(iter(sweep.values()))[0]["secs"]
    print("DHCP DORA sweep: perfdhcp as a relay agent, every client new, %g s per rate, a fresh server each time; "
          "p99 from perfdhcp -x t (DISCOVER→OFFER, REQUEST→ACK)." % secs)
    print()
    print("| server | offered /s | DORA/s acked | lost % | p99 DO ms | p99 RA ms | server CPU µs/DORA | RSS MiB | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in servers:
        for r in sweep.get(s, []):
            print("| %s | %d | %.0f | %.3f%s | %s | %s | %s | %.1f | %s |" % (s, r["rate"], r["dps"], r["drops"],
                  "" if r["ok"] else " ✗", r["p99do"], r["p99ra"], fmt(r["us"]), r["rss"] / 1024, r["note"]))
    print()
best = {}
for s in servers:
    ok = [r for r in sweep.get(s, []) if r["ok"]]
    best[s] = max(ok, key=lambda r: r["dps"]) if ok else None
print("| server | highest sustained DORA/s (< 0.1%% lost) | p99 DO+RA ms there | server CPU µs/DORA there | RSS MiB | "
      "closed loop DORA/s (%s outstanding) | closed loop lost %% | closed loop p99 DORA ms | closed loop CPU µs/DORA | lease durability |" % outst)
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for s in servers:
    b, c = best.get(s), closed.get(s)
    first = (sweep.get(s) or [None])[0]
    sus = "%.0f" % b["dps"] if b else ("< %d" % first["rate"] if first else "-")
    last = (sweep.get(s) or [None])[-1]
    if last and not last["ok"] and last["note"].startswith("perfdhcp offered only"):
        sus += " (next: %s, the client's limit)" % last["note"]
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        s, sus, b["p99"] if b else "-", fmt(b["us"]) if b else "-",
        "%.1f" % (max([r["rss"] for r in sweep.get(s, [])] + ([c["rss"]] if c else [0])) / 1024),
        "%.0f" % c["dps"] if c else "-", "%.3f" % c["drops"] if c else "-", c["p99"] if c else "-",
        fmt(c["us"]) if c else "-", DUR.get(s, "")))
print()
others = [s for s in servers if s != "bootstorm"]
if "bootstorm" in servers and others:
    print("| vs | sustained DORA/s ratio (bootstorm / it) | highest rate both sustain | CPU µs/DORA there: bootstorm / it | ratio | closed-loop DORA/s ratio |")
    print("|---|---:|---:|---|---:|---:|")
    B = best.get("bootstorm")
    for o in others:
        O = best.get(o)
        both = [r for r in sweep.get("bootstorm", []) if r["ok"] and any(
            x["ok"] and x["rate"] == r["rate"] for x in sweep.get(o, []))]
        common = max(both, key=lambda r: r["rate"]) if both else None
        oc = next((x for x in sweep.get(o, []) if common and x["ok"] and x["rate"] == common["rate"]), None)
        cb, co = closed.get("bootstorm"), closed.get(o)
        print("| %s | %s | %s | %s | %s | %s |" % (
            o, fmt(B["dps"] / O["dps"], 2) if B and O else "-", common["rate"] if common else "-",
            "%s / %s" % (fmt(common["us"]), fmt(oc["us"])) if common and oc else "-",
            fmt(common["us"] / oc["us"], 2) if common and oc and oc["us"] else "-",
            fmt(cb["dps"] / co["dps"], 2) if cb and co and co["dps"] else "-"))
    print()
if fixed:
    rate = next(iter(fixed.values()))["rate"]
    print("bootstorm-load dhcp offering a fixed %d DORA/s (every client new, %s outstanding at most):" % (rate, outst))
    print()
    print("| server | DORA/s acked | lost % | p99 DORA ms | server CPU µs/DORA | its CPU / bootstorm's |")
    print("|---|---:|---:|---:|---:|---:|")
    B = fixed.get("bootstorm")
    for s in servers:
        r = fixed.get(s)
        if not r:
            continue
        print("| %s | %.0f | %.3f%s | %s | %s | %s |" % (s, r["dps"], r["drops"], "" if r["ok"] else " ✗", r["p99"],
              fmt(r["us"]), fmt(r["us"] / B["us"], 2) if B and B["us"] == B["us"] and B["us"] else "-"))
    print()
print("Server CPU from " + cpu_source + ".")
for x in skipped:
    print("Skipped: " + x)
PY
