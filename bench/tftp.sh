#!/usr/bin/env bash
# bench/tftp.sh — bootstorm vs tftpd-hpa vs atftpd vs dnsmasq's TFTP, same sweep,
# same run.  bootstorm-load tftp holds N transfers at once, back to back, for
# BENCH_SECONDS per cell, of a 64 MiB initrd and of a 40 KiB loader; clients
# 1/16/64/200, blksize 512/1468, windowsize 1/16.  Each cell gets a fresh server
# (pinned to BENCH_SERVER_CPU) and the client is pinned to BENCH_CLIENT_CPU; the
# server's own CPU comes from a cgroup holding it and all its processes (else
# /proc: bench/proc.sh; tftpd-hpa's per-transfer children would be missed).  Then a 1%-loss row: the loader through
# tests/integration/udp_relay.py, with and without loss.  Everything runs in a
# private network namespace (its own loopback: port 69 is ours, nothing on the
# host is touched).  Prints a Markdown table with ratios.
#
# Knobs (environment):
#   BENCH_SECONDS       seconds per cell [5; 3 with BENCH_QUICK]
#   BENCH_QUICK=1       a subset for a fast check: clients 16 and 200, blksize 1468
#   BENCH_SERVERS       [bootstorm tftpd-hpa atftpd dnsmasq]
#   BENCH_TFTP_CLIENTS  [1 16 64 200]     BENCH_TFTP_BLKSIZES [512 1468]
#   BENCH_TFTP_WINDOWS  [1 16]            BENCH_TFTP_FILES    [initrd loader]
#   BENCH_TFTP_MAX      transfer cap given to atftpd (--maxthread) and dnsmasq
#                       (--tftp-max), raised as an admin would for a storm [1000]
#   BENCH_LOSS          loss row: share dropped each way [0.01]; 0 or "no": no loss row
#   BENCH_LOSS_BIG      big-file loss row: an 8 MiB kernel, one client, 2 transfers, to see
#                       what a lost block costs a long transfer (the loader's row is
#                       dominated by the client's 1 s RRQ timeout) [bootstorm]: the servers
#                       to run it against ("no": none; the lock-step servers' 1-3 s
#                       timeouts make it minutes long for them)
#   BENCH_LOSS_XFERS    transfers per loss cell, 16 clients at a time [320; 160 with
#                       BENCH_QUICK]: each transfer whose RRQ (or OACK) is lost costs
#                       a 1 s timeout, so few transfers make the mean a lottery
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU  cores [0 / 1]
#   BENCH_KEEP=1        keep the scratch directory (results.tsv, logs)
#   BOOTSTORM LOADGEN   binaries [build/release/bin/bootstorm, bootstorm-load]
#   BENCH_ATFTPD_DIR    where atftpd is unpacked [/var/cache/bootstorm-bench/atftpd]
# atftpd conflicts with tftpd-hpa as a Debian package: it is fetched with
# `apt-get download` and unpacked there (dpkg -x), or skipped with the reason.
set -u
. "$(dirname "$0")/args.sh"
bench_args "$0" "$@"
ATFTPD_DIR=${BENCH_ATFTPD_DIR:-/var/cache/bootstorm-bench/atftpd}

if [ -z "${BENCH_TFTP_INNER:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "bench/tftp.sh: needs root (port 69, a network namespace)" >&2; exit 1; }
  for b in "$BOOTSTORM" "$LOADGEN"; do [ -x "$b" ] || { echo "bench/tftp.sh: $b missing: make all" >&2; exit 1; }; done
  # atftpd: fetched here, before the namespace (which has no route out)
  reason=""
  if [ ! -x "$ATFTPD_DIR/usr/sbin/atftpd" ]; then
    mkdir -p "$ATFTPD_DIR/deb" &&
      (cd "$ATFTPD_DIR/deb" && timeout 60 apt-get download atftpd >/dev/null 2>&1) &&
      dpkg -x "$(ls "$ATFTPD_DIR"/deb/atftpd_*.deb | tail -n1)" "$ATFTPD_DIR" 2>/dev/null ||
      reason="apt-get download atftpd failed (no network or no such package)"
  fi
  [ -z "$reason" ] && ! "$ATFTPD_DIR/usr/sbin/atftpd" -V >/dev/null 2>&1 && reason="$ATFTPD_DIR/usr/sbin/atftpd does not run"
  export BENCH_ATFTPD_SKIP=$reason BENCH_TFTP_INNER=1
  exec unshare --net -- bash "$0"
fi

# ---- inside the private namespace ----
ip link set lo up
# a non-loopback address too: tftpd-hpa resolves its -a address with AI_ADDRCONFIG,
# which ignores loopback, and exits (status 66) in a namespace that has only lo
ip link add bsb0 type veth peer name bsb1 && ip addr add 192.0.2.1/24 dev bsb0 &&
  ip link set bsb0 up && ip link set bsb1 up || echo "bench/tftp.sh: no veth in the namespace: tftpd-hpa may not start" >&2
QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 1 ] && : "${BENCH_SECONDS:=3}"
: "${BENCH_SECONDS:=5}"
export BENCH_SECONDS
. "$HERE/lib.sh"
. "$HERE/proc.sh"
srv_cg_init
if [ "$QUICK" = 1 ]; then
  CLIENTS=${BENCH_TFTP_CLIENTS:-"16 200"}; BLKS=${BENCH_TFTP_BLKSIZES:-1468}
else
  CLIENTS=${BENCH_TFTP_CLIENTS:-"1 16 64 200"}; BLKS=${BENCH_TFTP_BLKSIZES:-"512 1468"}
fi
WINS=${BENCH_TFTP_WINDOWS:-"1 16"}
FILES=${BENCH_TFTP_FILES:-"initrd loader"}
SERVERS=${BENCH_SERVERS:-"bootstorm tftpd-hpa atftpd dnsmasq"}
TMAX=${BENCH_TFTP_MAX:-1000}
LOSS=${BENCH_LOSS:-0.01}
if [ "$QUICK" = 1 ]; then LOSS_XFERS=${BENCH_LOSS_XFERS:-160}; else LOSS_XFERS=${BENCH_LOSS_XFERS:-320}; fi
ATFTPD=$ATFTPD_DIR/usr/sbin/atftpd
ulimit -n 65536 2>/dev/null || true

RELAY_PID=""
tftp_cleanup() {
  [ -n "$RELAY_PID" ] && kill -KILL "$RELAY_PID" 2>/dev/null
  stop_server
  bench_cleanup
  srv_cg_fini
}
trap tftp_cleanup EXIT
trap 'exit 130' INT TERM

ROOT=$BW/root
mkdir -p "$ROOT"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$ROOT/initrd.img"
head -c $((40 * 1024)) /dev/urandom >"$ROOT/pxelinux.0"
chmod -R a+rX "$ROOT"
head -c $((8 * 1024 * 1024)) "$ROOT/initrd.img" >"$ROOT/vmlinuz"
file_of() { case $1 in initrd) echo initrd.img ;; loader) echo pxelinux.0 ;; kernel) echo vmlinuz ;; esac; }

# which servers can run here (a missing one is skipped with the reason, not faked)
SKIPPED=()
have=()
for s in $SERVERS; do
  case $s in
    bootstorm) have+=("$s") ;;
    tftpd-hpa) command -v in.tftpd >/dev/null && have+=("$s") || SKIPPED+=("tftpd-hpa: in.tftpd not installed") ;;
    dnsmasq) command -v dnsmasq >/dev/null && have+=("$s") || SKIPPED+=("dnsmasq: not installed") ;;
    atftpd) [ -z "${BENCH_ATFTPD_SKIP:-}" ] && have+=("$s") || SKIPPED+=("atftpd: $BENCH_ATFTPD_SKIP") ;;
    *) echo "bench/tftp.sh: unknown server $s" >&2; exit 2 ;;
  esac
done

wait_udp() {  # PORT PID: until something binds 127.0.0.1:PORT (5 s)
  local i
  for i in $(seq 1 50); do
    [ -n "$(ss -Hlun "sport = :$1" 2>/dev/null)" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
SPID=""
start_server() {  # NAME: fresh server on 127.0.0.1:69, sets SPID
  local log=$BW/$1.log
  case $1 in
    bootstorm)
      rm -rf "$BW/state"
      taskset -c "$SCPU" "$BOOTSTORM" serve --listen 127.0.0.1 --tftp-root "$ROOT" --tftp-port 69 --threads 1 \
        --quiet --state-dir "$BW/state" >/dev/null 2>>"$log" & SPID=$! ;;
    tftpd-hpa)
      taskset -c "$SCPU" in.tftpd -L -s "$ROOT" -a 127.0.0.1:69 >>"$log" 2>&1 & SPID=$! ;;
    atftpd)  # a thread per transfer; notices only (no per-transfer log line)
      taskset -c "$SCPU" "$ATFTPD" --daemon --no-fork --port 69 --bind-address 127.0.0.1 --maxthread "$TMAX" \
        --verbose=1 --logfile "$log" "$ROOT" >>"$log" 2>&1 & SPID=$! ;;
    dnsmasq)
      taskset -c "$SCPU" dnsmasq -k --conf-file=/dev/null --port=0 --enable-tftp --tftp-root="$ROOT" \
        --tftp-max="$TMAX" --listen-address=127.0.0.1 --bind-interfaces --quiet-tftp \
        --pid-file="$BW/dnsmasq.pid" --log-facility="$log" >>"$log" 2>&1 & SPID=$! ;;
  esac
  PIDS=("$SPID")
  srv_track "$SPID"
  wait_udp 69 "$SPID" || { echo "bench/tftp.sh: $1 did not start: $(tail -n2 "$log")" >&2; stop_server; return 1; }
}
# The server and its per-transfer children (tftpd-hpa), taken before they are
# orphaned.  0.3 s of grace, then SIGKILL: the figures are already taken, and
# atftpd lingers after SIGTERM until the transfers the client abandoned at the
# end of the cell run out of retransmissions (bootstorm's drain ends them at
# 1.5 s).
stop_server() {
  [ -n "$SPID" ] || return 0
  local kids i
  kids=$(pgrep -P "$SPID" 2>/dev/null | tr '\n' ' ')
  kill -TERM "$SPID" $kids 2>/dev/null
  for i in 1 2 3; do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SPID" $kids 2>/dev/null
  srv_cg_killall
  wait "$SPID" 2>/dev/null
  SPID=""; PIDS=()
}

RES=$BW/results.tsv
: >"$RES"
# one TSV line from the client's JSON and its progress lines:
# kind server file clients blk ws secs cpu_us ok failed tps agg_MBps p50 p99 neg_blk neg_ws rss note
record() {
  python3 - "$@" >>"$RES" <<'PY'
import json, re, sys
kind, server, fname, clients, blk, ws, cpu_us, rss, jpath, ppath, rc = sys.argv[1:12]
try:
    j = json.load(open(jpath))
except Exception:
    j = None
if not j:
    err = open(ppath, errors="replace").read().strip().splitlines()
    print("\t".join([kind, server, fname, clients, blk, ws, "0", cpu_us, "0", "0", "0", "0", "-", "-", "0", "0", rss,
                     "client gave no result (exit %s): %s" % (rc, err[-1][:120] if err else "")]))
    sys.exit()
# Aggregate MB/s counts every in-order byte received, also of transfers still in
# flight at the end (a 64 MiB transfer by 200 clients outlasts the cell): the
# progress lines carry the rate of each 0.5 s tick.
total, prev = 0.0, 0.0
for line in open(ppath, errors="replace"):
    m = re.match(r"\s*([\d.]+)s\s+\d+ transfers\s+[\d.]+/s\s+([\d.]+) MB/s", line)
    if m:
        t, r = float(m.group(1)), float(m.group(2))
        total += r * (t - prev); prev = t
agg = total / prev if prev > 0 else j["mb_per_s"]
if kind.startswith("loss"):   # --transfers runs: the client's own figure is exact
    agg = j["mb_per_s"]
note = "; ".join("%s %d (%s)" % (k, v["count"], v["first"][:80]) for k, v in j.get("failures", {}).items())
if j["retransmits"] or j["timeouts"]:
    note = ("client retransmits %d, timeouts %d" % (j["retransmits"], j["timeouts"])) + ("; " + note if note else "")
t = j["time"]
have = t["count"] > 0
print("\t".join(str(x) for x in [kind, server, fname, clients, blk, ws, "%.3f" % j["seconds"], cpu_us, j["ok"], j["failed"],
      "%.1f" % j["transfers_per_s"], "%.1f" % agg, "%.1f" % t["p50_ms"] if have else "-",
      "%.1f" % t["p99_ms"] if have else "-", j["negotiated_blksize"], j["negotiated_windowsize"], rss, note,
      "%.1f" % t["mean_ms"] if have else "-"]))
PY
}

cell() {  # KIND SERVER FILE CLIENTS BLK WS CLIENT-ARGS...
  local kind=$1 s=$2 f=$3 c=$4 b=$5 w=$6 t0 t1 rc rss port=69
  shift 6
  start_server "$s" || {
    echo -e "$kind\t$s\t$f\t$c\t$b\t$w\t0\t0\t0\t0\t0\t0\t-\t-\t0\t0\t0\tserver did not start" >>"$RES"; return; }
  case $kind in loss*)
    local drop=${kind#loss}; drop=${drop#k}   # loss<D> (loader) or lossk<D> (kernel)
    relay_start "$drop" || {
      relay_stop; stop_server
      echo -e "$kind\t$s\t$f\t$c\t$b\t$w\t0\t0\t0\t0\t0\t0\t-\t-\t0\t0\t0\trelay did not start" >>"$RES"; return; }
    port=$RELAY_PORT ;;
  esac
  rm -f "$BW/t.json"
  cat "$ROOT/$(file_of "$f")" >/dev/null   # DAMON pages out files idle for a minute: not in the measured CPU
  t0=$(srv_cpu_us "$SPID")
  # bounded: a cell can never outlast its time (or, for --transfers runs, 120 s)
  timeout -k 2 $(( ${SECS%.*} + 120 )) taskset -c "$CCPU" "$LOADGEN" tftp --server 127.0.0.1 --port "$port" \
    --file "$(file_of "$f")" --clients "$c" --blksize "$b" --windowsize "$w" --progress yes --json "$BW/t.json" "$@" \
    >"$BW/t.out" 2>"$BW/t.prog"
  rc=$?
  t1=$(srv_cpu_us "$SPID")
  rss=$(proc_rss "$SPID")
  relay_stop
  stop_server
  record "$kind" "$s" "$f" "$c" "$b" "$w" $((t1 - t0)) "$rss" "$BW/t.json" "$BW/t.prog" "$rc"
  tail -n1 "$RES" | awk -F'\t' '{printf "  %-9s %-6s c=%-3s blk=%-4s ws=%-2s %8s MB/s %8s xfers/s ok %s failed %s %s\n", $2,$3,$4,$5,$6,$12,$11,$9,$10,$18}' >&2
}

RELAY_PORT=""
relay_start() {  # DROP -> RELAY_PID, RELAY_PORT
  local i
  taskset -c "$CCPU" python3 "$REPO/tests/integration/udp_relay.py" --server 127.0.0.1:69 --drop "$1" \
    --reorder 0 --seed 7 >"$BW/relay.port" 2>"$BW/relay.err" &
  RELAY_PID=$!
  for i in $(seq 1 150); do [ -s "$BW/relay.port" ] && break; sleep 0.1; done   # python may start slowly on a busy machine
  RELAY_PORT=$(head -n1 "$BW/relay.port")
  [[ "$RELAY_PORT" =~ ^[0-9]+$ ]]
}
relay_stop() {
  [ -n "$RELAY_PID" ] || return 0
  kill -TERM "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null; RELAY_PID=""; rm -f "$BW/relay.port"
}

echo "bench/tftp.sh: servers ${have[*]}; ${SECS}s per cell; files $FILES; clients $CLIENTS; blksize $BLKS; windowsize $WINS" >&2
for x in "${SKIPPED[@]}"; do echo "bench/tftp.sh: skipped $x" >&2; done
# cells outer, servers inner: a drift in the shared machine's load hits all alike
for f in $FILES; do
  for c in $CLIENTS; do
    for b in $BLKS; do
      for w in $WINS; do
        for s in "${have[@]}"; do
          cell sweep "$s" "$f" "$c" "$b" "$w" --duration "$SECS"
        done
      done
    done
  done
done
case $LOSS in 0|0.0|no|"") ;; *)
  echo "bench/tftp.sh: loss row: loader, 16 clients, $LOSS_XFERS transfers through udp_relay.py, loss 0 and $LOSS each way" >&2
  for w in $WINS; do
    for s in "${have[@]}"; do
      for d in 0 "$LOSS"; do
        cell "loss$d" "$s" loader 16 1468 "$w" --transfers "$LOSS_XFERS"
      done
    done
  done
  BIG=${BENCH_LOSS_BIG:-bootstorm}
  [ "$BIG" = no ] && BIG=""
  [ -n "$BIG" ] && echo "bench/tftp.sh: big-file loss row: kernel 8 MiB, 1 client, 2 transfers, servers: $BIG" >&2
  for w in $WINS; do
    for s in "${have[@]}"; do
      case " $BIG " in *" $s "*) ;; *) continue ;; esac
      for d in 0 "$LOSS"; do
        cell "lossk$d" "$s" kernel 1 1468 "$w" --transfers 2
      done
    done
  done ;;
esac

python3 - "$RES" "$LOSS" "$SRV_CPU_SOURCE" "${SKIPPED[@]}" <<'PY'
import sys
from collections import OrderedDict
path, loss, cpu_source = sys.argv[1], sys.argv[2], sys.argv[3]
skipped = sys.argv[4:]
LABEL = {"initrd": "initrd 64 MiB", "loader": "loader 40 KiB", "kernel": "kernel 8 MiB"}
WINDOWS = {"bootstorm": True, "atftpd": True, "tftpd-hpa": False, "dnsmasq": False}  # RFC 7440 support
rows, lossrows, neg = OrderedDict(), OrderedDict(), {}
servers = []
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if len(f) < 18:
        continue
    kind, s, fn, c, b, w = f[:6]
    r = dict(secs=float(f[6]), cpu=int(f[7]) / 1e6, ok=int(f[8]), failed=int(f[9]), tps=float(f[10]),
             mbps=float(f[11]), p50=f[12], p99=f[13], nb=int(f[14]), nw=int(f[15]), rss=int(f[16]), note=f[17],
             mean=float(f[18]) if len(f) > 18 and f[18] != "-" else float("nan"))
    if s not in servers:
        servers.append(s)
    if r["nb"]:
        neg[(s, b, w)] = (r["nb"], r["nw"])
    if kind == "sweep":
        rows.setdefault((fn, c, b, w), {})[s] = r
    elif kind.startswith("lossk"):
        lossrows.setdefault((s, w, "kernel 8 MiB, 1 client"), {})[kind[5:]] = r
    else:
        lossrows.setdefault((s, w, "loader 40 KiB, 16 clients"), {})[kind[4:]] = r

def per_core(r):   # MB/s per server core: MB moved per second of server CPU
    return r["mbps"] * r["secs"] / r["cpu"] if r["cpu"] > 0 else float("nan")
def per_gb(r):     # server CPU seconds per GB moved
    gb = r["mbps"] * r["secs"] / 1e3
    return r["cpu"] / gb if gb > 0 else float("nan")
def fmt(x, d=1):
    return "-" if x != x else ("%.*f" % (d, x))
def window(s, b, w):
    n = neg.get((s, b, w))
    if w == "1":
        return "1"
    if n:
        got = str(n[1]) if n[1] else "1"
    else:
        got = "?"
    return "%s→%s%s" % (w, got, "" if WINDOWS.get(s, True) else " (no RFC 7440)")

print("TFTP, each cell %s s, a fresh server per cell; MB/s counts all bytes received (also by transfers "
      "still running at the end); transfers/s and p50/p99 count finished transfers only; MB/s per server core "
      "is MB moved per second of the server's own CPU time." % (
          fmt(next(iter(next(iter(rows.values())).values()))["secs"], 0) if rows else "-"))
print()
print("| file | clients | blksize | window asked→got | server | MB/s | MB/s per server core | transfers/s | p50 ms | p99 ms | done | failed | server CPU s/GB | notes |")
print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for (fn, c, b, w), by in rows.items():
    for s in servers:
        if s in by:
            r = by[s]
            print("| %s | %s | %s | %s | %s | %.1f | %s | %.1f | %s | %s | %d | %d | %s | %s |" % (
                LABEL.get(fn, fn), c, b, window(s, b, w), s, r["mbps"], fmt(per_core(r)), r["tps"], r["p50"], r["p99"],
                r["ok"], r["failed"], fmt(per_gb(r), 2), r["note"]))
print()
if "bootstorm" in servers and len(servers) > 1:
    print("Ratios, bootstorm / the best other server in the cell (higher is better, except CPU per GB):")
    print()
    print("| file | clients | blksize | window | MB/s ratio (vs) | MB/s per core ratio (vs) | transfers/s ratio (vs) | CPU per GB ratio (vs the MB/s best) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (fn, c, b, w), by in rows.items():
        o = [s for s in by if s != "bootstorm"]
        if "bootstorm" not in by or not o:
            continue
        B = by["bootstorm"]
        def rat(key):
            best = max(o, key=lambda s: key(by[s]) if key(by[s]) == key(by[s]) else -1)
            v = key(by[best])
            if not v or v != v:   # nobody finished anything (initrd: a cell shorter than a transfer)
                return "-", best
            return "%s (%s)" % (fmt(key(B) / v, 2), best), best
        m, best = rat(lambda r: r["mbps"])
        pc, _ = rat(per_core)
        tp, _ = rat(lambda r: r["tps"])
        cg = per_gb(by[best])
        print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (LABEL.get(fn, fn), c, b, w, m, pc, tp,
              fmt(per_gb(B) / cg, 2) if cg and cg == cg else "-"))
    print()
if lossrows:
    print("Loss: blksize 1468, the same transfers through tests/integration/udp_relay.py, "
          "without loss and with %s dropped each way: the wall time of the whole batch, and the mean time of "
          "one transfer (a lost RRQ costs the client's own 1 s timeout: no server can help there; a lost OACK "
          "or ACK 0 costs bootstorm 1 s too: atftp aborts on a second OACK, so it is not resent sooner), and "
          "the median, which those 1 s lotteries do not move.  The kernel row shows what lost blocks cost a long "
          "transfer (about 1%% of its 5,700 blocks each way):" % loss)
    print()
    print("| file | server | window | batch s loss-free → lossy | slowdown | mean transfer ms loss-free → lossy | slowdown | p50 ms loss-free → lossy | slowdown | p99 ms loss-free → lossy | failed (lossy) | notes |")
    print("|---|---|---:|---|---:|---|---:|---|---:|---|---:|---|")
    for (s, w, fl), d in lossrows.items():
        a, l = d.get("0"), d.get(loss)
        if not a or not l:
            continue
        def ratio(x, y):
            try:
                return fmt(float(y) / float(x), 1) + "x" if float(x) else "-"
            except ValueError:
                return "-"
        print("| %s | %s | %s | %.2f → %.2f | %s | %s → %s | %s | %s → %s | %s | %s → %s | %d | %s |" % (
            fl, s, window(s, "1468", w), a["secs"], l["secs"], fmt(l["secs"] / a["secs"], 1) + "x" if a["secs"] else "-",
            fmt(a["mean"]), fmt(l["mean"]), fmt(l["mean"] / a["mean"], 1) + "x" if a["mean"] == a["mean"] and a["mean"] else "-",
            a["p50"], l["p50"], ratio(a["p50"], l["p50"]), a["p99"], l["p99"], l["failed"], l["note"]))
    print()
rss = {}
for by in rows.values():
    for s, r in by.items():
        rss[s] = max(rss.get(s, 0), r["rss"])
if rss:
    print("Largest RSS at the end of a cell (KiB, server and its children): " + ", ".join("%s %d" % kv for kv in rss.items()) +
          " (bootstorm maps the files it serves: its RSS counts those page-cache pages, shared, not its own memory).")
print("Server CPU from " + cpu_source + ".")
for x in skipped:
    print("Skipped: " + x)
PY
