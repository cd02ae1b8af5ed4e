#!/usr/bin/env bash
# bench/storm.sh — the boot storm: N machines through the whole install flow
# (bootstorm-load storm) against bootstorm and against the stack people use
# today, same tree, same N, same client options, same run:
#   bootstorm                  DHCP + TFTP + HTTP, per-host configs and kickstarts
#                              from the inventory, journal on (--fsync-interval-ms 5)
#   dnsmasq+nginx              dnsmasq DHCP + TFTP (--no-ping, lease file on,
#                              --dhcp-lease-max/--tftp-max raised, --dhcp-ignore-clid
#                              so the installer's DHCP gets the PXE ROM's address),
#                              nginx (sendfile on) for the kickstart, install.img, RPMs
#   dnsmasq+tftpd-hpa+nginx    the same, TFTP from tftpd-hpa (a process per transfer)
# The old stacks get a static pxelinux.cfg/default and a static kickstart, so the
# flow is the same; they skip the %post callback (no API to call).  blksize 1468,
# windowsize 1 (old ROMs) and 16 (UEFI); the machines all power on at once.
# Everything runs in a private network namespace on its loopback, the load
# generator as a DHCP relay (giaddr 127.77.0.1, subnet 127.77.0.0/16).  Servers on
# BENCH_SERVER_CPU, the load generator on BENCH_CLIENT_CPU; server CPU from a
# cgroup holding the servers and all their processes (else /proc: bench/proc.sh).
#
# Knobs (environment):
#   BENCH_MACHINES   machines per storm [100]
#   BENCH_SCALE      file sizes against the realistic ones (loader 40 KiB, kernel
#                    12 MiB, initrd 96 MiB, install.img 512 MiB, 375 MiB of RPMs in
#                    60 packages: tools/mktree.sh)
#                    [0.02: 18 MB per machine; 0.01 with BENCH_QUICK]
#   BENCH_QUICK=1    20 machines, scale 0.01
#   BENCH_WINDOWS    TFTP windowsize asked [1 16]
#   BENCH_STACKS     [bootstorm dnsmasq+nginx dnsmasq+tftpd-hpa+nginx]
#   BENCH_STORM_TIMEOUT  seconds a storm may take before it is stopped [900]
#   BENCH_TREE_DIR   where the tree is generated and kept between runs
#                    [/var/cache/bootstorm-bench/storm-tree-SCALE]
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU  cores [0 / 1]
#   BENCH_KEEP=1     keep the scratch directory (results, storm JSON, logs)
#   BOOTSTORM LOADGEN  binaries [build/release/bin/bootstorm, bootstorm-load]
set -u
. "$(dirname "$0")/args.sh"
bench_args "$0" "$@"
if [ -z "${BENCH_STORM_INNER:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "bench/storm.sh: needs root (ports 67/69, a network namespace)" >&2; exit 1; }
  for b in "$BOOTSTORM" "$LOADGEN"; do [ -x "$b" ] || { echo "bench/storm.sh: $b missing: make all" >&2; exit 1; }; done
  export BENCH_STORM_INNER=1
  exec unshare --net -- bash "$0"
fi

# ---- inside the private namespace ----
ip link set lo up
# a non-loopback address too: tftpd-hpa resolves its -a address with AI_ADDRCONFIG
ip link add bsb0 type veth peer name bsb1 && ip addr add 192.0.2.1/24 dev bsb0 &&
  ip link set bsb0 up && ip link set bsb1 up || echo "bench/storm.sh: no veth in the namespace: tftpd-hpa may not start" >&2
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then N=${BENCH_MACHINES:-20}; SCALE=${BENCH_SCALE:-0.01}
else N=${BENCH_MACHINES:-100}; SCALE=${BENCH_SCALE:-0.02}; fi
WINDOWS=${BENCH_WINDOWS:-"1 16"}
STACKS=${BENCH_STACKS:-"bootstorm dnsmasq+nginx dnsmasq+tftpd-hpa+nginx"}
TMO=${BENCH_STORM_TIMEOUT:-900}
TREE=${BENCH_TREE_DIR:-/var/cache/bootstorm-bench/storm-tree-$SCALE}
FSYNC=5
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 60000 ] || { echo "bench/storm.sh: BENCH_MACHINES=$N: want 1-60000" >&2; exit 2; }
. "$HERE/lib.sh"
. "$HERE/proc.sh"
srv_cg_init
ulimit -n 65536 2>/dev/null || true
HTTP_PORT=8080
SAMPLER=""
storm_cleanup() {
  [ -n "$SAMPLER" ] && kill -KILL "$SAMPLER" 2>/dev/null
  local p
  for p in "${PIDS[@]}"; do pkill -KILL -P "$p" 2>/dev/null; done   # nginx workers, tftpd-hpa children
  bench_cleanup
  srv_cg_fini
}
trap storm_cleanup EXIT
trap 'exit 130' INT TERM

# ---- the tree (kept between runs: regenerating a full-scale one takes minutes) ----
echo "bench/storm.sh: tree in $TREE (scale $SCALE)" >&2
"$REPO/tools/mktree.sh" "$TREE" --scale "$SCALE" --machines "$N" 2>"$BW/mktree.log" ||
  { echo "bench/storm.sh: tools/mktree.sh failed: $(tail -n2 "$BW/mktree.log")" >&2; exit 1; }
chmod -R a+rX "$TREE"
"$LOADGEN" --write-inventory "$BW/hosts.csv" --machines "$N" --reservations no >/dev/null 2>&1 ||
  { echo "bench/storm.sh: bootstorm-load --write-inventory failed" >&2; exit 1; }
# The old stacks' TFTP root: the same files (hard links), plus the static menu.
OLD=$BW/old
mkdir -p "$OLD"
cp -al "$TREE/tftp" "$OLD/tftp" 2>/dev/null || cp -a "$TREE/tftp" "$OLD/tftp"
mkdir -p "$OLD/tftp/pxelinux.cfg"
cat >"$OLD/tftp/pxelinux.cfg/default" <<CFG
DEFAULT install
PROMPT 0
TIMEOUT 0
LABEL install
  MENU LABEL Debian-style install (static)
  KERNEL images/vmlinuz
  INITRD images/initrd.img
  APPEND auto=true priority=critical url=http://127.0.0.1:$HTTP_PORT/ks.cfg netcfg/choose_interface=auto --- quiet
  IPAPPEND 2
LABEL local
  LOCALBOOT 0
CFG
# the static kickstart: the sample profile's preseed as a plain file (same size class)
cp "$REPO/tools/sample/profiles/default.ks" "$OLD/ks.cfg"
chmod -R a+rX "$OLD"
cat "$TREE"/tftp/images/* "$TREE"/http/images/install.img "$TREE"/http/Packages/* >/dev/null  # page cache

SKIPPED=()
todo=()
for st in $STACKS; do
  case $st in
    bootstorm) todo+=("$st") ;;
    dnsmasq+nginx)
      if command -v dnsmasq >/dev/null && command -v nginx >/dev/null; then todo+=("$st")
      else SKIPPED+=("$st: dnsmasq or nginx not installed"); fi ;;
    dnsmasq+tftpd-hpa+nginx)
      if command -v dnsmasq >/dev/null && command -v nginx >/dev/null && command -v in.tftpd >/dev/null; then todo+=("$st")
      else SKIPPED+=("$st: dnsmasq, nginx or in.tftpd not installed"); fi ;;
    *) echo "bench/storm.sh: unknown stack $st" >&2; exit 2 ;;
  esac
done

wait_port() {  # PROTO PORT PID (10 s)
  local i
  for i in $(seq 1 100); do
    [ -n "$(ss -Hl"$1"n "sport = :$2" 2>/dev/null)" ] && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
SUBNET="127.77.0.0/16,pool=127.77.1.1-127.77.250.254,router=127.77.0.1,dns=127.0.0.53"
DNSMASQ_DHCP=(--conf-file=/dev/null --port=0 --interface=lo --bind-interfaces
  --dhcp-range=127.77.1.1,127.77.250.254,255.255.0.0,1h --dhcp-lease-max=100000 --dhcp-authoritative
  --no-ping --dhcp-ignore-clid --dhcp-boot=pxelinux.0 --quiet-dhcp --quiet-tftp)
start_stack() {  # STACK: fresh servers, sets SP (their pids)
  local st=$1 p
  SP=()
  rm -rf "$BW/state" "$BW/dnsmasq.leases"
  case $st in
    bootstorm)
      taskset -c "$SCPU" "$BOOTSTORM" serve --listen 127.0.0.1 --threads 1 --quiet --state-dir "$BW/state" \
        --http-port "$HTTP_PORT" --http-root "$TREE/http" --tftp-root "$TREE/tftp" --tftp-port 69 \
        --dhcp-port 67 --subnet "$SUBNET" --hosts "$BW/hosts.csv" --profiles "$REPO/tools/sample/profiles" \
        --fsync-interval-ms "$FSYNC" >/dev/null 2>>"$BW/bootstorm.log" &
      SP+=($!) ;;
    dnsmasq+*)
      local tftp=(--enable-tftp --tftp-root="$OLD/tftp" --tftp-max=1000)
      [ "$st" = dnsmasq+nginx ] || tftp=()
      taskset -c "$SCPU" dnsmasq -k "${DNSMASQ_DHCP[@]}" "${tftp[@]}" --dhcp-leasefile="$BW/dnsmasq.leases" \
        --log-facility="$BW/dnsmasq.log" --pid-file="$BW/dnsmasq.pid" >>"$BW/dnsmasq.log" 2>&1 &
      SP+=($!)
      if [ "$st" = dnsmasq+tftpd-hpa+nginx ]; then
        taskset -c "$SCPU" in.tftpd -L -s "$OLD/tftp" -a 127.0.0.1:69 >>"$BW/tftpd-hpa.log" 2>&1 &
        SP+=($!)
      fi
      nginx_conf "$BW/nginx.conf" "$HTTP_PORT" "$TREE/http" "location = /ks.cfg { alias $OLD/ks.cfg; }"
      taskset -c "$SCPU" nginx -c "$BW/nginx.conf" &
      SP+=($!) ;;
  esac
  PIDS=("${SP[@]}")
  srv_track "${SP[@]}"
  for p in "${SP[@]}"; do kill -0 "$p" 2>/dev/null || { echo "bench/storm.sh: $st: a server exited at start" >&2; return 1; }; done
  wait_port u 67 "${SP[0]}" && wait_port u 69 "${SP[-1]}" && wait_port t "$HTTP_PORT" "${SP[-1]}" ||
    { echo "bench/storm.sh: $st did not start (logs in $BW)" >&2; return 1; }
  srv_track "${SP[@]}"   # nginx's worker, if it forked before its master moved
}
stop_stack() {
  local p i alive kids=""
  for p in "${SP[@]}"; do kids+=" $(pgrep -P "$p" 2>/dev/null | tr '\n' ' ')"; done
  kill -TERM "${SP[@]}" $kids 2>/dev/null
  for i in $(seq 1 10); do
    alive=0; for p in "${SP[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 1 ] || break; sleep 0.1
  done
  kill -KILL "${SP[@]}" $kids 2>/dev/null
  srv_cg_killall
  for p in "${SP[@]}"; do wait "$p" 2>/dev/null; done
  SP=(); PIDS=()
}
stack_cpu_us() { srv_cpu_us "${SP[@]}"; }
stack_rss() { proc_rss "${SP[@]}"; }
# peak RSS: sampled every 0.25 s while the storm runs (tftpd-hpa's children come
# and go); bounded by the storm's own timeout
sampler() {
  local peak=0 r i
  for i in $(seq 1 $((TMO * 4 + 40))); do
    r=$(stack_rss); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$BW/peak.rss"
    [ -e "$BW/sampling" ] || break
    sleep 0.25
  done
}

# UDP datagrams the kernel dropped in this namespace because a socket's receive
# buffer was full (/proc/net/snmp Udp RcvbufErrors): a server's or the load
# generator's socket overflowing turns into retransmission timeouts
udp_rcvbuf_drops() { awk '$1 == "Udp:" && ++n == 2 { print $6; f = 1 } END { if (!f) print 0 }' /proc/net/snmp 2>/dev/null; }
RES=$BW/results.tsv
: >"$RES"
run_storm() {  # STACK WINDOW
  local st=$1 w=$2 stages t0 t1 rc
  start_stack "$st" || { stop_stack; echo -e "$st\t$w\t-\t0\t0\tdid not start" >>"$RES"; return; }
  if [ "$st" = bootstorm ]; then stages=all; else stages=dhcp,tftp,kernel,initrd,ks,stage2,rpms; fi
  echo 0 >"$BW/peak.rss"; touch "$BW/sampling"
  sampler & SAMPLER=$!
  t0=$(stack_cpu_us); l0=$(cut -d' ' -f1 /proc/loadavg); d0=$(udp_rcvbuf_drops)
  timeout -s TERM -k 10 "$TMO" taskset -c "$CCPU" "$LOADGEN" storm --machines "$N" --stages "$stages" \
    --server 127.0.0.1 --http-port "$HTTP_PORT" --tftp-server 127.0.0.1 --tftp-port 69 --dhcp-port 67 \
    --giaddr 127.77.0.1 --blksize 1468 --windowsize "$w" --follow-config-host no --tree "$TREE" \
    --progress no --json "$BW/storm-$st-w$w.json" >"$BW/storm-$st-w$w.out" 2>&1
  rc=$?
  t1=$(stack_cpu_us); l1=$(cut -d' ' -f1 /proc/loadavg); d1=$(udp_rcvbuf_drops)
  rm -f "$BW/sampling"; wait "$SAMPLER" 2>/dev/null; SAMPLER=""
  echo -e "$st\t$w\t$BW/storm-$st-w$w.json\t$((t1 - t0))\t$(cat "$BW/peak.rss")\texit $rc\t$l0-$l1\t$((d1 - d0))" >>"$RES"
  stop_stack
  python3 - "$BW/storm-$st-w$w.json" "$st" "$w" <<'PY' >&2
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    print("  %-24s windowsize %-2s: %d/%d installed, %d failed, last at %.1f s" % (sys.argv[2], sys.argv[3],
          j["booted"], j["machines"], j["failed"], j["time_to_last_done_s"]))
except Exception as e:
    print("  %s windowsize %s: no result (%s)" % (sys.argv[2], sys.argv[3], e))
PY
}

echo "bench/storm.sh: $N machines, scale $SCALE, stacks ${todo[*]}, windowsize $WINDOWS" >&2
for x in "${SKIPPED[@]}"; do echo "bench/storm.sh: skipped $x" >&2; done
for w in $WINDOWS; do
  for st in "${todo[@]}"; do
    echo "== $st, windowsize $w" >&2
    run_storm "$st" "$w"
  done
done

python3 - "$RES" "$N" "$SCALE" "$FSYNC" "$SRV_CPU_SOURCE" "$TMO" "${SKIPPED[@]}" <<'PY'
import json, sys
path, n, scale, fsync, cpu_source, tmo = sys.argv[1:7]
tmo = float(tmo)
skipped = sys.argv[7:]
STAGES = ["dhcp", "dhcp1", "tftp", "kernel", "initrd", "dhcp2", "ks", "stage2", "rpms", "callback"]
runs = []
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if len(f) < 6:
        continue
    r = dict(stack=f[0], w=f[1], cpu=int(f[3]) / 1e6, rss=int(f[4]), exit=f[5], load=f[6] if len(f) > 6 else "-",
             drops=f[7] if len(f) > 7 else "-", j=None)
    try:
        r["j"] = json.load(open(f[2]))
    except Exception:
        pass
    runs.append(r)
def stage_names(j):
    return [s for s in STAGES if s in j["stages"]] + [s for s in j["stages"] if s not in STAGES]
print("Boot storm: %s machines at once, tree scale %s (loader 40 KiB, kernel/initrd/install.img/RPMs x %s), "
      "blksize 1468; bootstorm with --fsync-interval-ms %s; the old stacks skip the callback stage." % (n, scale, scale, fsync))
print()
print("| stack | window | installed | failed | not finished | time to last installed s | server CPU s | peak RSS MiB | client CPU s | UDP rcvbuf drops | load avg (start-end) | notes |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
for r in runs:
    j = r["j"]
    if not j:
        print("| %s | %s | - | - | - | - | %.2f | %.1f | - | %s | %s | no result (%s) |" % (r["stack"], r["w"], r["cpu"],
              r["rss"] / 1024, r["drops"], r["load"], r["exit"]))
        continue
    notes = "; ".join("%s: %d × %s" % (x["stage"], x["count"], x["reason"][:70]) for x in j.get("failures", [])[:3])
    ttl = "%.2f" % j["time_to_last_done_s"]
    if j.get("interrupted") or j["not_finished"]:  # the storm was stopped: the last machine is later than that
        notes = ("stopped at the %.0f s time limit" % tmo) + ("; " + notes if notes else "")
        ttl = "> %.0f" % tmo
    print("| %s | %s | %d | %d | %d | %s | %.2f | %.1f | %.2f | %s | %s | %s |" % (r["stack"], r["w"], j["booted"], j["failed"],
          j["not_finished"], ttl, r["cpu"], r["rss"] / 1024, j.get("client_cpu_s", 0), r["drops"], r["load"], notes))
print()
names = []
for r in runs:
    if r["j"]:
        for s in stage_names(r["j"]):
            if s not in names:
                names.append(s)
names = [s for s in STAGES if s in names] + [s for s in names if s not in STAGES]
if names:
    def ms(v):  # a storm's stages span milliseconds to minutes
        return "%.0f" % v if v < 1000 else "%.1f s" % (v / 1000) if v < 100000 else "%.0f s" % (v / 1000)
    def stage_table(title, cell):
        print(title)
        print()
        print("| stack | window | " + " | ".join(names) + " |")
        print("|---|---:|" + "---:|" * len(names))
        for r in runs:
            if r["j"]:
                st = r["j"]["stages"]
                print("| %s | %s | " % (r["stack"], r["w"]) +
                      " | ".join(cell(st[s]) if s in st else "-" for s in names) + " |")
        print()
    stage_table("Per-stage p50 / p99 (ms, or s where marked; a stage's time for one machine):",
                lambda v: "%s / %s" % (ms(v["p50_ms"]), ms(v["p99_ms"])) if v["ok"] else "-")
    stage_table("Per-stage failures / client timeouts:", lambda v: "%d / %d" % (v["failed"], v["timeouts"]))
by = {(r["stack"], r["w"]): r for r in runs if r["j"]}
ws = []
for r in runs:
    if r["w"] not in ws:
        ws.append(r["w"])
rows = []
for w in ws:
    b = by.get(("bootstorm", w))
    if not b:
        continue
    for (st, ww), o in by.items():
        if ww != w or st == "bootstorm":
            continue
        bt, ot = b["j"]["time_to_last_done_s"], o["j"]["time_to_last_done_s"]
        unfinished = lambda x: x["j"].get("interrupted") or x["j"]["not_finished"]
        if unfinished(b) or bt <= 0:
            tr = "-"
        elif unfinished(o):
            tr = "> %.2f" % (tmo / bt)  # it had not finished at the time limit
        else:
            tr = "%.2f" % (ot / bt) if o["j"]["booted"] else "-"
        if o["j"]["failed"] and tr != "-":  # its last machine is the last of those that did install
            tr += " (%d of its machines failed)" % o["j"]["failed"]
        rows.append("| %s | %s | %s | %s | %s |" % (w, st, tr,
                    ("%.2f" % (o["cpu"] / b["cpu"]) + (" (it did not finish)" if unfinished(o) else "")) if b["cpu"] > 0 else "-",
                    "%.2f" % (o["rss"] / b["rss"]) if b["rss"] > 0 else "-"))
if rows:
    print("Ratios against bootstorm (> 1: bootstorm is faster / leaner):")
    print()
    print("| window | stack | time to last installed: it / bootstorm | server CPU: it / bootstorm | peak RSS: it / bootstorm |")
    print("|---:|---|---:|---:|---:|")
    print("\n".join(rows))
    print()
print("Server CPU from " + cpu_source + "; peak RSS sampled every 0.25 s (servers and their children; "
      "bootstorm maps the TFTP files it serves, so its RSS counts those page-cache pages too).")
for x in skipped:
    print("Skipped: " + x)
PY
