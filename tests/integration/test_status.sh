#!/usr/bin/env bash
# Tracking (issue 6) with real clients in network namespaces: a host walks
# through every stage — busybox udhcpc (DHCP), tftp-hpa (loader, menu, kernel,
# initrd), udhcpc again (the installer's DHCP), curl (kickstart, install.img,
# packages, the installed callback) — and after each step `bootstorm status
# --json` shows it, in order; a second host that stops half-way is reported
# stalled; a restart keeps every state; the table form shows the same; a
# TFTP transfer whose client stops answering is that host's failure, with its
# reason, while firmware's size probe (ERROR 8 after the OACK) and a missing
# optional file (shim's revocations_*.efi) are not; a stage reached just
# before kill -9 is still there after the restart.
#
#   S (server): br0 10.77.0.1/24 ──veth── C (client: eth0 52:54:00:77:00:01)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

for tool in ip python3 busybox tftp curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (make deps)"; echo "0 passed, 1 failed"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces)"; echo "0 passed, 1 failed"; exit 1; }
PY=$(command -v /usr/bin/python3 || command -v python3)

A=52:54:00:77:00:01; AIP=10.77.0.21
B=52:54:00:77:00:02; BIP=10.77.0.22
URL=http://10.77.0.1:8080
T=$WORK/tree
mkdir -p "$T/tftp/images" "$T/tftp/pxelinux.cfg" "$T/http/images" "$T/http/repo/Packages" "$T/profiles" "$WORK/state"
head -c 20000 /dev/urandom >"$T/tftp/pxelinux.0"
echo "default node" >"$T/tftp/pxelinux.cfg/01-52-54-00-77-00-01"
head -c 300000 /dev/urandom >"$T/tftp/images/vmlinuz"
head -c 500000 /dev/urandom >"$T/tftp/images/initrd.img"
cp "$T/tftp/images/vmlinuz" "$T/tftp/images/initrd.img" "$T/http/images/"
head -c 1000000 /dev/urandom >"$T/http/images/install.img"
head -c 70000 /dev/urandom >"$T/http/repo/Packages/bash-5.1.rpm"
head -c 30000 /dev/urandom >"$T/http/repo/Packages/curl-7.7.rpm"
echo "# static kickstart" >"$T/http/ks.cfg"
# a profile for when the rollout layer is wired in: its kickstart carries the callback
printf 'kernel = images/vmlinuz\ninitrd = images/initrd.img\nkickstart = node.ks\n' >"$T/profiles/node.conf"
printf '# kickstart for {{hostname}}\n%%post\ncurl -X POST {{callback_url}}\n%%end\n' >"$T/profiles/node.ks"
printf 'mac,hostname,ip,profile,rack\n%s,node-a,%s,node,r1\n%s,node-b,%s,node,r2\n' "$A" "$AIP" "$B" "$BIP" \
  >"$T/hosts.csv"

ns_new S && ns_bridge S br0 10.77.0.1/24 && ns_new C && ns_plug S br0 C eth0 "$A" || exit 1

# The tests run in subshells (lib.sh): the server's PID goes through a file.
serve() {
  if [ -f "$WORK/pid" ] && kill -0 "$(cat "$WORK/pid")" 2>/dev/null; then SERVER_PID=$(cat "$WORK/pid"); return 0; fi
  local before i
  before=$(grep -c serving "$WORK/server.err" 2>/dev/null || true)
  # not through in_ns (a function): $! must be bootstorm itself
  ip netns exec "$(ns S)" "$BOOTSTORM" serve --backend "$BACKEND" --threads 2 --quiet \
    --subnet 10.77.0.0/24,pool=10.77.0.100-10.77.0.150,router=10.77.0.1 \
    --tftp-root "$T/tftp" --http-root "$T/http" --http-port 8080 --hosts "$T/hosts.csv" \
    --profiles "$T/profiles" --state-dir "$WORK/state" --stall-after 3 \
    --tftp-timeout 100 --tftp-retries 2 >>"$WORK/server.out" 2>>"$WORK/server.err" &
  SERVER_PID=$!
  echo "$SERVER_PID" >"$WORK/pid"
  for i in $(seq 1 100); do
    [ "$(grep -c serving "$WORK/server.err" 2>/dev/null || true)" -gt "${before:-0}" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited: $(cat "$WORK/server.err")"; return 1; }
    sleep 0.1
  done
  echo "server did not start: $(cat "$WORK/server.err")"; return 1
}
halt() {
  [ -f "$WORK/pid" ] || return 0
  SERVER_PID=$(cat "$WORK/pid"); stop_server; rm -f "$WORK/pid"
}
on_exit halt
serve || { echo "0 passed, 1 failed"; exit 1; }
"$BOOTSTORM" status --help >/dev/null 2>&1 || { echo "bootstorm status is not a command of $BOOTSTORM"; echo "0 passed, 1 failed"; exit 1; }

# note TEXT: printed after the summary (run_suite shows a passing test's output to nobody)
note() { echo "  note: $*" >>"$WORK/notes"; }

# status [ARGS]: bootstorm status from the server's namespace
status() { in_ns S "$BOOTSTORM" status --server "$URL" "$@"; }
# hostj MAC: that host's object from `bootstorm status --json`, as JSON
hostj() {
  status --json | "$PY" -c 'import json,sys; m=sys.argv[1]
d=json.load(sys.stdin); print(json.dumps([h for h in d["hosts"] if h["mac"]==m][0]))' "$1"
}
# get JSON KEY: a field of a JSON object
get() { "$PY" -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2"; }

# expect_step MAC STAGE: status --json shows the host at STAGE, reached after
# the previous step (its "since" is not older), not failed; remembers "since"
expect_step() {
  local h stage since prev
  h=$(hostj "$1") || fail "no host $1 in status --json"
  stage=$(get "$h" stage); since=$(get "$h" since)
  expect_eq "stage of $1" "$stage" "$2"
  prev=$(cat "$WORK/since.$1" 2>/dev/null || echo 0)
  [ "$since" -ge "$prev" ] || fail "$2 reached at $since, before the previous step ($prev)"
  expect_eq "failed" "$(get "$h" failed)" false
  echo "$since" >"$WORK/since.$1"
}

cat >"$WORK/udhcpc.sh" <<'SH'
#!/bin/sh
[ "$1" = bound ] && echo "$ip" >"$OUT"
exit 0
SH
chmod +x "$WORK/udhcpc.sh"
# dhcp: one DORA from the client namespace; prints the address
dhcp() {
  rm -f "$WORK/lease"
  in_ns C env OUT="$WORK/lease" busybox udhcpc -i eth0 -f -q -n -t 3 -T 1 -s "$WORK/udhcpc.sh" \
    >"$WORK/udhcpc.log" 2>&1 && cat "$WORK/lease"
}
# tget NAME: tftp-hpa fetches NAME (it exits 0 after an ERROR packet: look at what it says);
# a file on disk must come back whole (a menu may be generated by the rollout layer instead)
tget() {
  local said
  rm -f "$WORK/got"
  said=$(in_ns C tftp -m binary 10.77.0.1 -c get "$1" "$WORK/got" 2>&1)
  [ -z "$said" ] && [ -s "$WORK/got" ] || fail "tftp get $1: $said"
  case "$1" in pxelinux.cfg/*) ;; *) cmp -s "$WORK/got" "$T/tftp/$1" || fail "tftp get $1: not the file" ;; esac
}

t_01_dhcp_discover_offer_ack() {
  local ip
  if ip=$(dhcp); then
    expect_eq "leased address" "$ip" "$AIP"
    echo dhcp >"$WORK/dhcp_ok"
    expect_step "$A" acked
    h=$(hostj "$A")
    expect_eq "address" "$(get "$h" ip)" "$AIP"
  else
    note "DHCP step skipped: the DHCP service did not lease an address ($(tail -n 2 "$WORK/udhcpc.log" | tr '\n' ' '))"
  fi
  in_ns C ip addr add "$AIP/24" dev eth0
}
t_02_loader() { tget pxelinux.0; expect_step "$A" loader; }
t_03_config() { tget pxelinux.cfg/01-52-54-00-77-00-01; stat -c %s "$WORK/got" >"$WORK/menu_size"; expect_step "$A" config; }
t_04_kernel() { tget images/vmlinuz; expect_step "$A" kernel; }
t_05_initrd() { tget images/initrd.img; expect_step "$A" initrd; }
t_06_installer_dhcp() {
  if [ ! -f "$WORK/dhcp_ok" ]; then note "installer DHCP step skipped: no DHCP service"; return 0; fi
  in_ns C ip addr del "$AIP/24" dev eth0
  expect_eq "installer's lease" "$(dhcp)" "$AIP"
  in_ns C ip addr add "$AIP/24" dev eth0
  expect_step "$A" installer_dhcp
}
t_07_kickstart() {
  # the rollout layer renders /ks/<mac> (with the callback); without it, a file
  if in_ns C curl -sf "$URL/ks/$A" -o "$WORK/ks" && grep -q 'api/hosts/.*/installed' "$WORK/ks"; then
    grep -o 'http://[^ ]*installed[^ ]*' "$WORK/ks" | head -n1 >"$WORK/callback"
  else
    in_ns C curl -sf "$URL/ks.cfg" -o "$WORK/ks" || fail "GET /ks.cfg"
  fi
  expect_step "$A" kickstart
}
t_08_stage2() {
  in_ns C curl -sf "$URL/images/install.img" -o "$WORK/img" && cmp -s "$WORK/img" "$T/http/images/install.img" ||
    fail "install.img"
  expect_step "$A" stage2
}
t_09_packages_count_bytes() {
  in_ns C curl -sf "$URL/repo/Packages/bash-5.1.rpm" -o /dev/null
  expect_step "$A" packages
  in_ns C curl -sf "$URL/repo/Packages/curl-7.7.rpm" -o /dev/null
  local h; h=$(hostj "$A")
  # everything served in this cycle: over TFTP pxelinux.0, the menu, vmlinuz and
  # initrd.img (added as each transfer ends); over HTTP the kickstart,
  # install.img and both packages
  local ks menu; ks=$(stat -c %s "$WORK/ks"); menu=$(cat "$WORK/menu_size")
  expect_eq "bytes" "$(get "$h" bytes)" $((20000 + menu + 300000 + 500000 + ks + 1000000 + 70000 + 30000))
  expect_eq "stage" "$(get "$h" stage)" packages
}
t_10_postinstall_and_installed() {
  local code
  if [ -s "$WORK/callback" ]; then
    code=$(in_ns C curl -s -o /dev/null -w '%{http_code}' -X POST "$(cat "$WORK/callback")")
    expect_eq "callback" "$code" 200
    expect_step "$A" installed
  else
    code=$(in_ns C curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/api/hosts/$A/installed")
    expect_step "$A" postinstall
    note "installed step skipped: the rollout layer is not wired in, nothing accepts the callback (POST answered $code)"
  fi
  # the timeline: every stage reached, in stage order
  in_ns S curl -sf "$URL/api/hosts/$A" | "$PY" -c '
import json, sys
order = ["discover","offered","acked","loader","config","kernel","initrd","installer_dhcp","kickstart",
         "stage2","packages","postinstall","installed"]
d = json.load(sys.stdin)
tl = [t["stage"] for t in d["timeline"]]
assert tl == [s for s in order if s in tl], "timeline out of order: %s" % tl
need = ["loader","config","kernel","initrd","kickstart","stage2","packages","postinstall"]
missing = [s for s in need if s not in tl]
assert not missing, "missing %s in %s" % (missing, tl)
print(" ".join(tl))' >"$WORK/tl" || fail "timeline"
  note "node-a's timeline: $(cat "$WORK/tl")"
}
t_11_a_stall_is_reported() {
  in_ns C ip addr add "$BIP/24" dev eth0
  in_ns C curl -sf --interface "$BIP" "$URL/images/vmlinuz" -o /dev/null || fail "node-b kernel"
  local h; h=$(hostj "$B")
  expect_eq "node-b stage" "$(get "$h" stage)" kernel
  expect_eq "node-b stalled at first" "$(get "$h" stalled)" false
  sleep 3.6
  h=$(hostj "$B")
  expect_eq "node-b stalled" "$(get "$h" stalled)" true
  status --json | "$PY" -c 'import json,sys; c=json.load(sys.stdin)["counts"]; assert c["stalled"]>=1, c' ||
    fail "no stalled count"
  status | grep -q "node-b .*kernel (stalled)" || fail "table: $(status)"
  in_ns S curl -sf "$URL/api/hosts?stage=stalled" | grep -q "\"mac\":\"$B\"" || fail "?stage=stalled"
  # a failure is reported with its reason
  in_ns C curl -s --interface "$BIP" "$URL/images/initrd-missing.img" -o /dev/null
  h=$(hostj "$B")
  expect_eq "node-b failed" "$(get "$h" failed)" true
  get "$h" error | grep -q 'HTTP 404 GET /images/initrd-missing.img' || fail "reason: $h"
}
t_12_a_restart_keeps_the_states() {
  local before after
  before=$(status --json | "$PY" -c 'import json,sys
for h in json.load(sys.stdin)["hosts"]:
    print(h["mac"], h["stage"], h["since"], h["progress"], h["bytes"], h["failed"], h["failures"], json.dumps(h["error"]))')
  halt
  [ -s "$WORK/state/hosts.state" ] || fail "no hosts.state"
  serve || fail "restart"
  after=$(status --json | "$PY" -c 'import json,sys
for h in json.load(sys.stdin)["hosts"]:
    print(h["mac"], h["stage"], h["since"], h["progress"], h["bytes"], h["failed"], h["failures"], json.dumps(h["error"]))')
  expect_eq "states after a restart" "$after" "$before"
  # node-b made no progress since well before the restart: stalled again (or still)
  # the stall checker runs on its own tick: give it a few seconds
  st=false
  for _ in $(seq 1 12); do
    st=$(get "$(hostj "$B")" stalled)
    [ "$st" = true ] && break
    sleep 0.5
  done
  expect_eq "node-b stalled after the restart" "$st" true
  in_ns S curl -sf "$URL/api/hosts/node-a" | grep -q '"timeline":\[{"stage":"' || fail "timeline after restart"
}
t_13_table_and_watch() {
  local out
  out=$(status)
  echo "$out" | head -n1 | grep -q '^HOSTNAME  *MAC  *IP  *STAGE  *IN STAGE  *LAST ERROR' || fail "header: $out"
  echo "$out" | grep -q "^node-a  *$A  *$AIP " || fail "node-a row: $out"
  echo "$out" | tail -n1 | grep -q '^2 hosts:' || fail "counts: $out"
  # --watch repeats until interrupted
  out=$(in_ns S timeout -s INT 3 "$BOOTSTORM" status --server "$URL" --watch --json | wc -l)
  [ "$out" -ge 2 ] || fail "--watch printed $out documents in 3 s"
  # an unreachable server is an error with a reason (a port just found free, not a guess)
  local port; port=$(free_port)
  out=$("$BOOTSTORM" status --server "http://127.0.0.1:$port" 2>&1) && fail "status succeeded without a server"
  echo "$out" | grep -q "cannot get the host status from http://127.0.0.1:$port: .*Connection refused" || fail "$out"
  out=$("$BOOTSTORM" status --server https://x 2>&1) && fail "https accepted"
  echo "$out" | grep -q 'https is not spoken here' || fail "$out"
}
# rrq_client MODE FILE SRC: a TFTP client (RFC 2347-2349 options, timeout 1 s)
# from address SRC in the client namespace.  MODE probe: reads the OACK and
# sends ERROR 8, as OVMF does to learn a file's size; stall: takes block 1,
# acknowledges it, then never answers again
cat >"$WORK/rrq.py" <<'PY'
import socket, struct, sys
mode, name, src = sys.argv[1:4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
s.settimeout(3)
opts = [b"octet", b"blksize", b"512", b"tsize", b"0", b"timeout", b"1"]
s.sendto(struct.pack("!H", 1) + b"\x00".join([name.encode()] + opts) + b"\x00", ("10.77.0.1", 69))
pkt, tid = s.recvfrom(65536)
assert pkt[:2] == struct.pack("!H", 6), "no OACK: %r" % pkt[:60]
if mode == "probe":
    s.sendto(struct.pack("!HH", 5, 8) + b"size probe\0", tid)
else:
    s.sendto(struct.pack("!HH", 4, 0), tid)
    pkt, _ = s.recvfrom(65536)
    assert struct.unpack("!HH", pkt[:4]) == (3, 1), "no DATA 1: %r" % pkt[:4]
    s.sendto(struct.pack("!HH", 4, 1), tid)
print(mode, "ok")
PY
rrq_client() { in_ns C "$PY" "$WORK/rrq.py" "$@"; }
# metric NAME: a sample's value from /metrics
metric() { in_ns S curl -sf "$URL/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

t_14_tftp_timeout_is_the_hosts_failure() {
  rrq_client stall images/initrd.img "$BIP" >/dev/null || fail "stalling client"
  # the server gives up after twice the client's 1 s timeout without progress
  local h kind=null i
  for i in $(seq 1 40); do
    h=$(hostj "$B")
    kind=$(get "$(get "$h" error)" kind 2>/dev/null || echo null)
    [ "$kind" = tftp_timeout ] && break
    sleep 0.25
  done
  expect_eq "node-b's error" "$kind" tftp_timeout
  expect_eq "node-b failed" "$(get "$h" failed)" true
  expect_eq "node-b's reason" "$(get "$(get "$h" error)" reason)" \
    "tftp timeout on images/initrd.img after 512 of 500000 bytes"
  expect_eq "node-b stage (the RRQ)" "$(get "$h" stage)" initrd
  [ "$(metric 'bootstorm_host_failures_total{kind="tftp_timeout"}')" -ge 1 ] || fail "no tftp_timeout in /metrics"
  status | grep -q "node-b .*tftp timeout on images/initrd.img" || fail "table: $(status)"
}
t_15_size_probe_and_optional_files_are_no_failures() {
  local before after probes missing
  before=$(hostj "$A")
  probes=$(metric 'bootstorm_host_probes_total{kind="tftp_size_probe"}')
  missing=$(metric 'bootstorm_host_probes_total{kind="tftp_optional_missing"}')
  rrq_client probe pxelinux.0 "$AIP" >/dev/null || fail "probing client"
  in_ns C tftp -m binary 10.77.0.1 -c get images/revocations_sku.efi "$WORK/rev" >/dev/null 2>&1 || true
  in_ns C tftp -m binary 10.77.0.1 -c get grub/x86_64-efi/command.lst "$WORK/lst" >/dev/null 2>&1 || true
  sleep 0.3
  after=$(hostj "$A")
  expect_eq "node-a failures" "$(get "$after" failures)" "$(get "$before" failures)"
  expect_eq "node-a error" "$(get "$after" error)" "$(get "$before" error)"
  expect_eq "node-a failed" "$(get "$after" failed)" false
  expect_eq "size probes" "$(metric 'bootstorm_host_probes_total{kind="tftp_size_probe"}')" $((probes + 1))
  expect_eq "optional files missing" "$(metric 'bootstorm_host_probes_total{kind="tftp_optional_missing"}')" \
    $((missing + 2))
  # a loader module the boot needs is a failure, though
  in_ns C tftp -m binary 10.77.0.1 -c get ldlinux.c32 "$WORK/k" >/dev/null 2>&1 || true
  sleep 0.3
  after=$(hostj "$A")
  expect_eq "node-a failures after a missing ldlinux.c32" "$(get "$after" failures)" $(($(get "$before" failures) + 1))
  expect_eq "reason" "$(get "$(get "$after" error)" reason)" "tftp ldlinux.c32: file not found (ERROR 1)"
}
t_16_a_stage_survives_kill_9() {
  local pid h t0 t1
  pid=$(cat "$WORK/pid")
  expect_eq "node-b stage before" "$(get "$(hostj "$B")" stage)" initrd
  in_ns C curl -sf --interface "$BIP" "$URL/ks.cfg" -o /dev/null || fail "node-b kickstart"
  t0=$(date +%s%N)
  sleep 0.2 # > the journal's 50 ms, far below the 2 s snapshot interval
  kill -9 "$pid"
  t1=$(date +%s%N)
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$WORK/pid"
  serve || fail "restart after kill -9"
  h=$(hostj "$B")
  expect_eq "node-b stage after kill -9, $(( (t1 - t0) / 1000000 )) ms after the stage" "$(get "$h" stage)" kickstart
  [ "$(get "$h" since)" -gt 0 ] || fail "no time for the stage"
  expect_eq "node-b's failure kept" "$(get "$(get "$h" error)" kind)" tftp_timeout
  note "kill -9 $(( (t1 - t0) / 1000000 )) ms after node-b reached kickstart: kept"
}
t_17_no_sanitizer_reports() {
  ! grep -E -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK/server.err" || fail "sanitizer report"
}

run_suite status; rc=$?
cat "$WORK/notes" 2>/dev/null
exit $rc
