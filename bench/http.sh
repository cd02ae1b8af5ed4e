#!/usr/bin/env bash
# bench/http.sh — bootstorm vs nginx vs lighttpd on the same tree, same run.
# Server on core BENCH_SERVER_CPU (0), client on BENCH_CLIENT_CPU (1); every
# server configured as a good admin would (sendfile, workers per core, no access
# log, open-file cache, and TCP_DEFER_ACCEPT as bootstorm's --http-defer-accept:
# nginx's "deferred", lighttpd's server.defer-accept).  Rows: 3 KiB kickstart
# (100 and 500 keep-alive connections; ks100wrk/ks500wrk: the same with wrk,
# whose one thread on the client's core is the limit here at ~45-60k req/s for
# all three servers); RPM mix (200 connections); 512 MiB install.img by 32 and
# 200 clients at once (finish spread); 1 MiB random Range reads;
# connection storm (new connection per request).  Prints a Markdown table with
# each server's own CPU per request / per GB, and ratios against the better of
# nginx and lighttpd.  BENCH_SECONDS per row (8), BENCH_SERVERS to pick.
# BENCH_BOOTSTORM_ARGS adds options to bootstorm serve (for example
# "--http-tcp-congestion system" to run it with the kernel's congestion control,
# as nginx and lighttpd run; the kernel's and the qdisc are printed first).
# BENCH_ROWS picks rows by key (ks100 ks500 rpm img32 img200 range storm; also
# ks100wrk ks500wrk).  Each run's files are read just before it (warm_row).
# Each server is started afresh for each row, and the servers take turns row by
# row (the order reversed every other round), so a burst of load from other jobs
# lands on one measurement rather than on all of one server's rows.
# BENCH_REPEAT=N (1) runs each row N times per server and keeps the run with the
# median rate; the notes column lists every run's rate, and a last table gives the
# ratios taken within each round (and their median).  On a shared machine use
# 3 or more: single runs here vary by 2x.
set -u
. "$(dirname "$0")/args.sh"
bench_args "$0" "$@"
. "$(dirname "$0")/lib.sh"
SERVERS=${BENCH_SERVERS:-"bootstorm nginx lighttpd"}
echo "TCP congestion control: $(cat /proc/sys/net/ipv4/tcp_congestion_control) (kernel default, nginx and lighttpd);" \
  "bootstorm: ${BENCH_BOOTSTORM_ARGS:-its default --http-tcp-congestion cubic}; qdisc on lo: $(tc qdisc show dev lo 2>/dev/null | awk '{print $2; exit}')" >&2
ROOT=$BW/root
mkdir -p "$ROOT/Packages" "$ROOT/images"
head -c 3072 /dev/urandom >"$ROOT/ks.cfg"
truncate -s 512M "$ROOT/images/install.img"    # sparse: served from zero pages, no disk
python3 - "$ROOT" <<'PY'
import os, random, sys
root = sys.argv[1]; random.seed(42)
with open(os.path.join(root, "rpms.txt"), "w") as lst:
    for i in range(2000):
        r = random.random()   # 70% 50-500 KiB, 25% 0.5-5 MiB, 5% 5-30 MiB
        kib = random.randint(50, 500) if r < .7 else random.randint(512, 5120) if r < .95 else random.randint(5120, 30720)
        p = "Packages/p%04d-1.0-1.x86_64.rpm" % i
        with open(os.path.join(root, p), "wb") as f:
            f.truncate(kib * 1024)
        lst.write("/" + p + "\n")
PY
PORT=18480

start_server() {  # NAME -> sets SPID
  case "$1" in
    bootstorm)
      taskset -c "$SCPU" "$BOOTSTORM" serve --listen 127.0.0.1 --http-port $PORT --http-root "$ROOT" \
        --threads 1 --quiet --state-dir "$BW/state" ${BENCH_BOOTSTORM_ARGS:-} >/dev/null 2>"$BW/bootstorm.log" & SPID=$! ;;
    nginx)
      nginx_conf "$BW/nginx.conf" "$PORT" "$ROOT"
      taskset -c "$SCPU" nginx -c "$BW/nginx.conf" & SPID=$! ;;
    lighttpd)
      cat >"$BW/lighttpd.conf" <<LG
server.document-root = "$ROOT"
server.bind = "127.0.0.1"
server.port = $PORT
server.max-connections = 16384
server.max-fds = 65536
server.max-keep-alive-requests = 1000000
server.network-backend = "sendfile"
server.defer-accept = 1
server.stat-cache-engine = "simple"
server.errorlog = "$BW/lighttpd.err"
mimetype.assign = ( ".img" => "application/octet-stream", ".rpm" => "application/x-rpm", ".cfg" => "text/plain" )
LG
      taskset -c "$SCPU" lighttpd -D -f "$BW/lighttpd.conf" & SPID=$! ;;
  esac
  PIDS+=("$SPID")
  wait_tcp $PORT
}

ulimit -n 65536 2>/dev/null || true
RES=$BW/results.tsv
: >"$RES"
# row NAME VALUE-KEY: runs the client command in "$@" after the row name, with
# server CPU measured around it; the client prints "rate mbps p99ms spread" on stdout
measure() {
  local server=$1 row=$2; shift 2
  local t0 t1 out
  t0=$(cpu_ticks "$SPID")
  out=$("$@")
  t1=$(cpu_ticks "$SPID")
  echo -e "$server\t$row\t$(( (t1 - t0) * 1000000 / CLK ))\t$out" >>"$RES"
}
wrk_row() {  # CONNS URL -> "reqs rate mbps p99"
  local o; o=$(taskset -c "$CCPU" wrk -t1 -c"$1" -d"${SECS}s" --latency "$2" 2>&1)
  python3 - "$o" <<'PY'
import re, sys
o = sys.argv[1]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", o).group(1))
m = re.search(r"(\d+) requests in", o); n = int(m.group(1))
p = re.search(r"99%\s+([\d.]+)(us|ms|s)", o)
p99 = float(p.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p.group(2)]
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", o)
print("%d\t%.0f\t%.1f\t%.2f\t-" % (n, rate, rate * 3072 / 1e6, p99) + ("\tNON2XX=" + errs.group(1) if errs else ""))
PY
}
load_row() {  # ARGS... -> "reqs rate mbps p99 spread"
  taskset -c "$CCPU" "$LOADGEN" http --progress no --json "$BW/l.json" "$@" >"$BW/l.out" 2>&1
  python3 - "$BW/l.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
spread = "-"
f = j.get("finish", {})
if f.get("count"):
    spread = "%.1f%%" % (100.0 * (f["max_ms"] - f["min_ms"]) / max(f["max_ms"], 1e-9))
fail = "" if not j.get("failed") else "\tFAILED=%d" % j["failed"]
print("%d\t%.0f\t%.1f\t%.2f\t%s%s" % (j["ok"], j["req_per_s"], j["mb_per_s"], j["latency"]["p99_ms"], spread, fail))
PY
}
# run_row KEY URL: the client command of one row, run through measure
run_row() {
  local U=$2
  case "$1" in
    ks100) measure "$s" "3 KiB file, 100 conns" load_row --url "$U/ks.cfg" --connections 100 --duration "$SECS" ;;
    ks500) measure "$s" "3 KiB file, 500 conns" load_row --url "$U/ks.cfg" --connections 500 --duration "$SECS" ;;
    ks100wrk) measure "$s" "3 KiB file, 100 conns, wrk" wrk_row 100 "$U/ks.cfg" ;;
    ks500wrk) measure "$s" "3 KiB file, 500 conns, wrk" wrk_row 500 "$U/ks.cfg" ;;
    rpm) measure "$s" "RPM mix, 200 conns" load_row --server "$U" --url-list "$ROOT/rpms.txt" --connections 200 --duration "$SECS" ;;
    img32) measure "$s" "install.img x32" load_row --url "$U/images/install.img" --connections 32 --each-once ;;
    img200) measure "$s" "install.img x200" load_row --url "$U/images/install.img" --connections 200 --each-once ;;
    range) measure "$s" "1 MiB Range reads, 64 conns" load_row --url "$U/images/install.img" --range 1048576 --connections 64 --duration "$SECS" ;;
    storm) measure "$s" "conn storm, 1000 clients" load_row --url "$U/ks.cfg" --connections 1000 --new-conn-per-request --duration "$SECS" ;;
    *) echo "bench/http.sh: BENCH_ROWS: unknown row '$1' (ks100 ks500 ks100wrk ks500wrk rpm img32 img200 range storm)" >&2; exit 2 ;;
  esac
}
# warm_row KEY: read the row's files just before its run.  This machine's DAMON
# pages out page cache unused for about a minute (kdamond, action pageout on
# unmapped file pages): a run that starts on evicted files refills the page
# cache inside the server's measured CPU (150,000 refaulted pages seen in the
# first RPM run after a pause, ~800 in the next), and that lands on whichever
# server runs a row first.
warm_row() {
  case "$1" in
    ks*|storm) cat "$ROOT/ks.cfg" >/dev/null ;;
    rpm) sed "s|^|$ROOT|" "$ROOT/rpms.txt" | xargs cat >/dev/null ;;
    *) cat "$ROOT/images/install.img" >/dev/null ;;
  esac
}
ROWS=${BENCH_ROWS:-"ks100 ks500 rpm img32 img200 range storm"}
REPEAT=${BENCH_REPEAT:-1}
RAW=$BW/raw.tsv
: >"$RAW"
ORDER=($SERVERS)
declare -A PEAK_RSS
for row in $ROWS; do
  for rep in $(seq 1 "$REPEAT"); do
    for s in "${ORDER[@]}"; do
      echo "== $row #$rep $s" >&2
      start_server "$s"
      warm_row "$row"
      : >"$RES"
      run_row "$row" "http://127.0.0.1:$PORT"
      sed "s/^/$rep\t/" "$RES" >>"$RAW"   # the round first: ratios are also taken within a round
      r=$(rss_kib "$SPID")
      [ "${PEAK_RSS[$s]:-0}" -ge "$r" ] || PEAK_RSS[$s]=$r
      stop_pid "$SPID"
    done
    # the other order next round: whoever ran second ran on a warmer, or busier, machine
    ORDER=($(printf '%s\n' "${ORDER[@]}" | tac))
  done
done
# keep, per server and row, the run with the median rate (the lower middle of an
# even count), noting every run's rate
python3 - "$RAW" "$RES" <<'PY'
import sys
from collections import OrderedDict
runs = OrderedDict()
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")[1:]  # without the round
    if len(f) < 8:  # a client that failed to report: no figure to rank
        continue
    runs.setdefault((f[0], f[1]), []).append(f)
with open(sys.argv[2], "w") as out:
    for key, fs in runs.items():
        by_rate = sorted(fs, key=lambda f: float(f[4]))
        pick = list(by_rate[(len(by_rate) - 1) // 2])
        if len(fs) > 1:
            pick.append("runs: " + "/".join("%.0f" % float(f[4]) for f in fs))
        out.write("\t".join(pick) + "\n")
PY
for s in $SERVERS; do echo -e "$s\tRSS\t${PEAK_RSS[$s]:-0}" >>"$RES"; done
python3 "$(dirname "$0")/table.py" http "$RES"
# Ratios taken within each round, where the servers ran a minute apart at most,
# move less than medians of single runs on this shared machine.
[ "$REPEAT" -gt 1 ] && python3 - "$RAW" <<'PY'
import sys, statistics
from collections import OrderedDict
rounds = OrderedDict()  # row -> round -> server -> (rate, cpu per request)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) < 9 or not int(f[4]):
        continue
    rounds.setdefault(f[2], {}).setdefault(f[0], {})[f[1]] = (float(f[5]), int(f[3]) / int(f[4]))
print("| row | rate ratio per round (bootstorm / best other) | median | CPU per request ratio per round | median |")
print("|---|---|---:|---|---:|")
for row, by_round in rounds.items():
    rr, cr = [], []
    for r in by_round.values():
        others = [s for s in r if s != "bootstorm"]
        if "bootstorm" not in r or not others:
            continue
        best = max(others, key=lambda s: r[s][0])
        rr.append(r["bootstorm"][0] / r[best][0])
        cr.append(r["bootstorm"][1] / r[best][1])
    if rr:
        print("| %s | %s | %.2f | %s | %.2f |" % (row, " ".join("%.2f" % x for x in rr), statistics.median(rr),
                                                 " ".join("%.2f" % x for x in cr), statistics.median(cr)))
print()
PY
