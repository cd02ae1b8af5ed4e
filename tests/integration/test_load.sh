#!/usr/bin/env bash
# bootstorm-load against the real server on loopback (issue 7): 50 machines
# through every stage the server serves, every file checksummed against the
# tree it was generated from; a stage's file missing on the server fails that
# stage for every machine, is reported per stage, and makes the exit status
# non-zero.  The load generator's TFTP and HTTP clients are also checked
# against tftpd-hpa and nginx (when installed) and through a lossy relay, so
# that a bug shared by bootstorm and bootstorm-load cannot hide.
. "$(dirname "$0")/lib.sh"
: "${LOADGEN:?set LOADGEN to the bootstorm-load binary}"
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
N=50
T=$WORK/tree   # the reference: what the server should serve
S=$WORK/served # what it serves: hard links to T, so a test can take a file away
"$REPO/tools/mktree.sh" "$T" --scale 0.01 --machines "$N" >"$WORK/mktree.log" 2>&1 ||
  { echo "mktree failed: $(tail -3 "$WORK/mktree.log")"; exit 1; }
cp -al "$T" "$S"
# kickstart for a server without per-host kickstarts: the --kickstart-path fallback
printf '# static kickstart (bootstorm-load test)\ntext\nreboot\n' >"$S/http/ks.cfg"

# A loopback /16 of our own: relay address and pool, unlikely to meet another
# suite's (the relay binds NET.0.1:67).  The inventory names the machines
# without addresses (bootstorm refuses loopback reservations): the pool gives
# them, and the installer's second DHCP must get the same one again.
NET=127.$((100 + RANDOM % 100))
GIADDR=$NET.0.1
HPORT=$(free_port); TPORT=$(free_port); DPORT=$(free_port)
"$LOADGEN" --write-inventory "$WORK/hosts.csv" --machines "$N" --reservations no >/dev/null 2>&1 ||
  { echo "--write-inventory failed"; exit 1; }

HELP=$("$BOOTSTORM" serve --help 2>&1)
DHCP=no
if [ "$(id -u)" = 0 ] && grep -q -- '--subnet' <<<"$HELP"; then DHCP=yes; fi
HOSTS=no
grep -q -- '--hosts' <<<"$HELP" && HOSTS=yes
ROLLOUT=no
if [ -d "$REPO/tools/sample/profiles" ] && grep -q -- '--profiles' <<<"$HELP"; then ROLLOUT=yes; fi

# serve: a fresh server (own state directory) for each test, so that one
# storm's install-once callbacks do not turn the next storm's machines into
# "boot from local disk"; the PID goes through a file (tests run in subshells).
serve() {
  halt
  local st; st=$(mktemp -d "$WORK/state.XXXX")
  local args=(--listen 127.0.0.1 --http-port "$HPORT" --http-root "$S/http" --tftp-root "$S/tftp"
              --tftp-port "$TPORT" --state-dir "$st" --threads 2 --quiet)
  [ $DHCP = yes ] && args+=(--dhcp-port "$DPORT"
    --subnet "$NET.0.0/16,pool=$NET.1.1-$NET.150.254,router=$GIADDR,dns=127.0.0.53")
  [ $HOSTS = yes ] && args+=(--hosts "$WORK/hosts.csv")
  [ $ROLLOUT = yes ] && args+=(--profiles "$REPO/tools/sample/profiles")
  start_server "${args[@]}" || return 1
  echo "$SERVER_PID" >"$WORK/pid"
}
halt() {
  [ -f "$WORK/pid" ] || return 0
  SERVER_PID=$(cat "$WORK/pid"); stop_server; rm -f "$WORK/pid"
}
on_exit halt

# Which stages this server serves now, probed once.
serve || exit 1
STAGES=tftp,kernel,initrd,stage2,rpms
KSOPT=(--kickstart-path /ks.cfg)
[ $DHCP = yes ] && STAGES=dhcp,$STAGES
code=$(curl -s -o "$WORK/ks0" -w '%{http_code}' "http://127.0.0.1:$HPORT/ks/52:54:00:00:00:00")
if [ "$code" = 200 ]; then
  KSOPT=()
  STAGES=$STAGES,ks
  grep -q 'installed?token=' "$WORK/ks0" && STAGES=$STAGES,callback
else
  STAGES=$STAGES,ks # through the fallback path
fi
echo "  (stages served now: $STAGES; dhcp $DHCP, inventory $HOSTS, profiles $ROLLOUT)"
halt

# storm ARGS...: the common options, output in $WORK/out, status in $WORK/rc
storm() {
  local rc=0
  "$LOADGEN" storm --machines "$N" --server 127.0.0.1 --http-port "$HPORT" --tftp-port "$TPORT" \
    --dhcp-port "$DPORT" --giaddr "$GIADDR" --client-base "$NET.200.1" --windowsize 8 \
    --tftp-timeout 300 --follow-config-host no --progress no "${KSOPT[@]}" "$@" >"$WORK/out" 2>&1 || rc=$?
  echo $rc >"$WORK/rc"
}
# jq-less JSON reads: jget FILE EXPR (python over the parsed document d)
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

t_storm_every_stage_verified() {
  serve
  storm --stages "$STAGES" --tree "$T" --verify=sha256 --json "$WORK/all.json" --csv "$WORK/all.csv" \
    --svg "$WORK/all.svg"
  expect_eq "exit status" "$(cat "$WORK/rc")" 0 || { cat "$WORK/out"; return 1; }
  expect_eq "booted" "$(jget "$WORK/all.json" 'd["booted"]')" "$N"
  expect_eq "failed" "$(jget "$WORK/all.json" 'd["failed"]')" 0
  local s
  for s in ${STAGES//,/ }; do
    [ "$s" = dhcp ] && s=dhcp2 && expect_eq "dhcp ok" "$(jget "$WORK/all.json" 'd["stages"]["dhcp"]["ok"]')" "$N"
    expect_eq "$s ok" "$(jget "$WORK/all.json" "d['stages']['$s']['ok']")" "$N"
  done
  # the bytes are the tree's: every machine fetched every package
  want=$(( $(cat "$T"/http/Packages/*.rpm | wc -c) + $(stat -c %s "$T/http/Packages/LIST") ))
  expect_eq "rpm bytes per machine" "$(jget "$WORK/all.json" "d['stages']['rpms']['bytes'] // $N")" "$want"
  expect_eq "csv rows" "$(wc -l <"$WORK/all.csv")" $((N + 1))
  grep -q "booted ($N)" "$WORK/all.svg" || fail "svg lacks the booted line"
  grep -q "machines: $N booted, 0 failed" "$WORK/out" || fail "no summary line: $(tail -5 "$WORK/out")"
  if [ $DHCP = yes ]; then # 50 distinct addresses from the pool (dhcp2 checked each was given twice)
    expect_eq "addresses" "$(jget "$WORK/all.json" "len({m['ip'] for m in d['timeline'] if m['ip'].startswith('$NET.')})")" "$N"
  fi
  halt
}

t_missing_initrd_fails_that_stage() {
  serve
  rm "$S/tftp/images/initrd.img"
  storm --stages "$STAGES" --tree "$T" --json "$WORK/m.json"
  ln "$T/tftp/images/initrd.img" "$S/tftp/images/initrd.img"
  expect_eq "exit status" "$(cat "$WORK/rc")" 1
  expect_eq "initrd failed" "$(jget "$WORK/m.json" 'd["stages"]["initrd"]["failed"]')" "$N"
  expect_eq "kernel ok" "$(jget "$WORK/m.json" 'd["stages"]["kernel"]["ok"]')" "$N"
  expect_eq "stage2 reached" "$(jget "$WORK/m.json" 'd["stages"]["stage2"]["ok"] + d["stages"]["stage2"]["failed"]')" 0
  expect_eq "booted" "$(jget "$WORK/m.json" 'd["booted"]')" 0
  grep -Eq "^initrd +0 +$N " "$WORK/out" || fail "table row: $(grep ^initrd "$WORK/out")"
  grep -q "initrd: TFTP: ERROR 1" "$WORK/out" || fail "no reason: $(grep -A3 failures "$WORK/out")"
  halt
}

t_missing_package_fails_rpms() {
  serve
  rm "$S/http/Packages/pkg007-1.0-1.x86_64.rpm"
  storm --stages "$STAGES" --tree "$T" --json "$WORK/p.json"
  ln "$T/http/Packages/pkg007-1.0-1.x86_64.rpm" "$S/http/Packages/"
  expect_eq "exit status" "$(cat "$WORK/rc")" 1
  expect_eq "rpms failed" "$(jget "$WORK/p.json" 'd["stages"]["rpms"]["failed"]')" "$N"
  expect_eq "stage2 ok" "$(jget "$WORK/p.json" 'd["stages"]["stage2"]["ok"]')" "$N"
  grep -q "rpms: .*pkg007.*404" "$WORK/out" || fail "no reason: $(grep -A3 failures "$WORK/out")"
  halt
}

t_corrupt_file_fails_checksum() {
  # same size, other bytes: only --verify can tell
  serve
  rm "$S/http/images/install.img"
  head -c "$(stat -c %s "$T/http/images/install.img")" /dev/urandom >"$S/http/images/install.img"
  storm --stages stage2 --tree "$T" --verify --json "$WORK/c.json" --machines 5
  rm "$S/http/images/install.img"; ln "$T/http/images/install.img" "$S/http/images/install.img"
  expect_eq "exit status" "$(cat "$WORK/rc")" 1
  expect_eq "stage2 failed" "$(jget "$WORK/c.json" 'd["stages"]["stage2"]["failed"]')" 5
  grep -q "crc32c" "$WORK/out" || fail "no checksum reason: $(grep -A3 failures "$WORK/out")"
  halt
}

t_ramp_and_concurrency() {
  serve
  storm --stages tftp,kernel --machines 20 --ramp 1 --concurrency 5 --json "$WORK/r.json"
  expect_eq "exit status" "$(cat "$WORK/rc")" 0
  # arrivals spread over about a second, and never more than 5 machines at once
  python3 - "$WORK/r.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ev = []
for m in d["timeline"]:
    ev += [(m["start_ms"], 1), (m["end_ms"], -1)]
live = peak = 0
for _, k in sorted(ev, key=lambda e: (e[0], e[1])):
    live += k; peak = max(peak, live)
starts = sorted(m["start_ms"] for m in d["timeline"])
assert peak <= 5, peak
assert starts[-1] >= 900, starts[-1]
PY
  halt
}

t_tftp_client_against_tftpd_hpa() {
  command -v in.tftpd >/dev/null || { echo "    (in.tftpd not installed: skipped)"; return 0; }
  local p; p=$(free_port)
  in.tftpd -L -s "$T/tftp" -a "127.0.0.1:$p" & local pid=$!
  sleep 0.3
  local rc=0
  # tftp-hpa ignores windowsize: the client must fall back to lock-step
  "$LOADGEN" tftp --port "$p" --file images/vmlinuz --file pxelinux.0 --clients 4 --transfers 12 --windowsize 8 \
    --tree "$T/tftp" --verify=sha256 --progress no >"$WORK/hpa" 2>&1 || rc=$?
  "$LOADGEN" tftp --port "$p" --file images/initrd.img --blksize 512 --transfers 2 --io epoll \
    --tree "$T/tftp" --verify --progress no >>"$WORK/hpa" 2>&1 || rc=$?
  kill "$pid"; wait "$pid" 2>/dev/null
  expect_eq "status" "$rc" 0 || { cat "$WORK/hpa"; return 1; }
  grep -q "12 ok, 0 failed" "$WORK/hpa" || fail "$(cat "$WORK/hpa")"
  grep -q "negotiated 1468/1" "$WORK/hpa" || fail "windowsize not refused by tftp-hpa? $(head -1 "$WORK/hpa")"
}

t_tftp_client_through_lossy_relay() {
  serve
  : >"$WORK/relay.port"
  python3 -u "$HERE/udp_relay.py" --server "127.0.0.1:$TPORT" --drop 0.03 --reorder 0.03 --seed 7 \
    >"$WORK/relay.port" 2>"$WORK/relay.err" & local rp=$!
  local i; for i in $(seq 1 50); do [ -s "$WORK/relay.port" ] && break; sleep 0.1; done
  local port; port=$(head -1 "$WORK/relay.port")
  local rc=0
  # lock-step on io_uring (the default), windows on epoll: both datagram backends
  for run in 1:uring 8:epoll; do
    local w=${run%%:*} io=${run#*:}
    timeout 120 "$LOADGEN" tftp --port "$port" --file images/vmlinuz --clients 4 --transfers 8 --windowsize "$w" \
      --timeout 200 --retries 10 --tree "$T/tftp" --verify=sha256 --io "$io" --progress no \
      --json "$WORK/loss$w$io.json" >>"$WORK/loss" 2>&1 || rc=$?
  done
  kill "$rp"; wait "$rp" 2>/dev/null
  expect_eq "status" "$rc" 0 || { cat "$WORK/loss" "$WORK/relay.err"; return 1; }
  expect_eq "ok" "$(jget "$WORK/loss1uring.json" 'd["ok"]')" 8
  expect_eq "ok" "$(jget "$WORK/loss8epoll.json" 'd["ok"]')" 8
  # the relay did drop packets, and the client recovered from them
  [ "$(jget "$WORK/loss1uring.json" 'd["retransmits"] + d["dup_blocks"]')" -gt 0 ] || fail "no loss seen"
  halt
}

# bootstorm sends a window as one UDP GSO datagram; with --udp-gro (the default)
# it reaches the client whole and is split there.  Both datagram backends, both
# settings: every file checksummed, and GRO runs seen only when asked for.
t_tftp_windows_split_after_udp_gro() {
  serve
  local rc=0 io gro
  for io in uring epoll; do
    for gro in yes no; do
      "$LOADGEN" tftp --port "$TPORT" --file images/initrd.img --file images/vmlinuz --clients 4 --transfers 8 \
        --windowsize 16 --tree "$T/tftp" --verify=sha256 --io "$io" --udp-gro "$gro" --progress no \
        --json "$WORK/gro-$io-$gro.json" >>"$WORK/gro" 2>&1 || rc=$?
    done
  done
  halt
  expect_eq "status" "$rc" 0 || { cat "$WORK/gro"; return 1; }
  for io in uring epoll; do
    expect_eq "$io gro ok" "$(jget "$WORK/gro-$io-yes.json" 'd["ok"]')" 8
    expect_eq "$io no-gro ok" "$(jget "$WORK/gro-$io-no.json" 'd["ok"]')" 8
    expect_eq "$io no-gro runs" "$(jget "$WORK/gro-$io-no.json" 'd["udp_gro_runs"]')" 0
    [ "$(jget "$WORK/gro-$io-yes.json" 'd["udp_gro_runs"]')" -gt 0 ] || fail "$io: no window arrived whole"
  done
}

t_http_client_against_nginx() {
  command -v nginx >/dev/null || { echo "    (nginx not installed: skipped)"; return 0; }
  local p; p=$(free_port); local d=$WORK/nginx; mkdir -p "$d/tmp"
  local user=""; [ "$(id -u)" = 0 ] && user="user root;" # the tree is under a 0700 mktemp directory
  cat >"$d/nginx.conf" <<EOF
$user worker_processes 1; pid $d/nginx.pid; error_log $d/error.log; daemon off;
events { worker_connections 1024; }
http { access_log off; sendfile on; keepalive_requests 100000;
  client_body_temp_path $d/tmp; proxy_temp_path $d/tmp; fastcgi_temp_path $d/tmp;
  uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
  server { listen 127.0.0.1:$p; root $T/http; } }
EOF
  nginx -c "$d/nginx.conf" -p "$d" & local pid=$!
  local i; for i in $(seq 1 30); do curl -s -o /dev/null "http://127.0.0.1:$p/.treeinfo" && break; sleep 0.1; done
  local rc=0 u=http://127.0.0.1:$p
  "$LOADGEN" http --url "$u/images/install.img" --connections 8 --each-once --tree "$T/http" --verify=sha256 \
    --progress no --json "$WORK/ng1.json" >"$WORK/ng" 2>&1 || rc=$?
  sed 's|^|/|' "$T/http/Packages/LIST" >"$WORK/paths"
  { echo "$u/.treeinfo"; cat "$WORK/paths"; } >"$WORK/urls"
  "$LOADGEN" http --url-list "$WORK/urls" --connections 4 --requests-per-conn 50 --tree "$T/http" --verify \
    --progress no --json "$WORK/ng2.json" >>"$WORK/ng" 2>&1 || rc=$?
  "$LOADGEN" http --url "$u/images/install.img" --range 64K --connections 4 --requests-per-conn 20 \
    --progress no >>"$WORK/ng" 2>&1 || rc=$?
  kill "$pid"; wait "$pid" 2>/dev/null
  expect_eq "status" "$rc" 0 || { cat "$WORK/ng"; return 1; }
  expect_eq "downloads" "$(jget "$WORK/ng1.json" 'd["ok"]')" 8
  expect_eq "bytes" "$(jget "$WORK/ng1.json" 'd["bytes"]')" $((8 * $(stat -c %s "$T/http/images/install.img")))
  expect_eq "keep-alive connections" "$(jget "$WORK/ng2.json" 'd["connects"]')" 4
}

t_http_mode_against_bootstorm() {
  serve
  local rc=0 u=http://127.0.0.1:$HPORT
  "$LOADGEN" http --url "$u/images/install.img" --connections 8 --each-once --tree "$S/http" --verify=sha256 \
    --progress no --json "$WORK/h1.json" >"$WORK/h" 2>&1 || rc=$?
  "$LOADGEN" http --url "$u/.treeinfo" --connections 10 --new-conn-per-request --requests-per-conn 20 \
    --source-base "$NET.220.1" --sources 16 --progress no --json "$WORK/h2.json" >>"$WORK/h" 2>&1 || rc=$?
  sed 's|^|/|' "$S/http/Packages/LIST" >"$WORK/hpaths"  # /paths on --server, which is not fetched itself
  "$LOADGEN" http --server "$u" --url-list "$WORK/hpaths" --connections 2 --requests-per-conn 10 --tree "$S/http" \
    --verify --progress no --json "$WORK/h4.json" >>"$WORK/h" 2>&1 || rc=$?
  "$LOADGEN" http --url "$u/missing.img" --connections 1 --requests-per-conn 1 --progress no >"$WORK/h3" 2>&1 &&
    fail "a 404 must fail the run"
  expect_eq "status" "$rc" 0 || { cat "$WORK/h"; return 1; }
  expect_eq "downloads" "$(jget "$WORK/h1.json" 'd["ok"]')" 8
  expect_eq "a connection per request" "$(jget "$WORK/h2.json" 'd["connects"]')" 200
  expect_eq "list on --server" "$(jget "$WORK/h4.json" '(d["ok"], d["failed"], d["urls"])')" \
    "(20, 0, $(wc -l <"$WORK/hpaths"))"
  grep -q "404" "$WORK/h3" || fail "no 404 reported: $(cat "$WORK/h3")"
  halt
}

t_dhcp_mode() {
  [ $DHCP = yes ] || { echo "    (no DHCP here: skipped)"; return 0; }
  serve
  local rc=0
  "$LOADGEN" dhcp --server 127.0.0.1 --port "$DPORT" --giaddr "$GIADDR" --rate 300 --duration 1 \
    --mac-base 52:54:02:00:00:00 --progress no --json "$WORK/d.json" >"$WORK/d" 2>&1 || rc=$?
  expect_eq "status" "$rc" 0 || { cat "$WORK/d"; return 1; }
  expect_eq "acked" "$(jget "$WORK/d.json" 'd["acked"]')" 300
  halt
}

t_nothing_listening_fails_fast() {
  local p; p=$(free_port)
  for io in uring epoll; do
    local rc=0 t0=$SECONDS
    "$LOADGEN" storm --machines 3 --stages tftp --tftp-port "$p" --client-base "$NET.230.1" --io $io --progress no \
      >"$WORK/nl" 2>&1 || rc=$?
    expect_eq "status ($io)" "$rc" 1
    [ $((SECONDS - t0)) -le 3 ] || fail "$io: took $((SECONDS - t0)) s"
    grep -q "nothing listens" "$WORK/nl" || fail "$io: $(cat "$WORK/nl")"
  done
}

t_usage_errors_exit_2() {
  local rc
  for args in "storm --machines 0" "storm --verify" "storm --stages boot" "http" "tftp --file x --blksize 4" \
    "dhcp --rate -1" "http --server http://127.0.0.1:80/x --url /y" "http --url /y" "nosuchmode"; do
    rc=0; "$LOADGEN" $args >/dev/null 2>&1 || rc=$?
    expect_eq "$args" "$rc" 2
  done
  "$LOADGEN" --help | grep -q "one core plays about" || fail "--help does not say how many machines per core"
}

t_write_inventory() {
  "$LOADGEN" --write-inventory "$WORK/inv.csv" --machines 300 --mac-base 52:54:00:00:00:fe \
    --client-base 10.1.1.253 >/dev/null 2>&1
  expect_eq "rows" "$(wc -l <"$WORK/inv.csv")" 301
  expect_eq "header" "$(head -1 "$WORK/inv.csv")" "mac,hostname,ip,profile,rack,role"
  expect_eq "row 1" "$(sed -n 2p "$WORK/inv.csv")" "52:54:00:00:00:fe,node0000,10.1.1.253,default,r00,storage"
  expect_eq "row 3" "$(sed -n 4p "$WORK/inv.csv")" "52:54:00:00:01:00,node0002,10.1.2.1,default,r00,compute"
}

run_suite load
