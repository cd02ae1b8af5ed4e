#!/usr/bin/env bash
# tests/e2e/run.sh [--quick] [--case N]... [--keep] — real firmware boots off bootstorm.
#
# Virtual machines with real network-boot firmware (SeaBIOS + iPXE ROMs from ipxe-qemu,
# OVMF) and Debian 12's real installer boot off bootstorm inside a network namespace
# (bridge br0 at 10.77.0.1/24, one tap per VM, qemu-system-x86_64 under KVM when it
# works, else TCG), stage by stage as ../shared/DESIGN.md describes:
#   1  BIOS PXE (iPXE ROM) -> pxelinux.0 -> per-host pxelinux.cfg/01-<mac> -> kernel and
#      initrd over TFTP -> the installer DHCPs again (same IP, option 6) -> its preseed
#   2  UEFI (OVMF's own PXE) -> shim -> GRUB -> per-host grub.cfg -> the same stages
#   3  iPXE fast path, BIOS and UEFI ROMs: per-host HTTP script, kernel + initrd over HTTP
#   4  a storm: 4 BIOS VMs at once, each with its reservation, all reach the preseed;
#      `bootstorm status` shows all four there (skipped, saying why, when it is absent)
#   5  install-once: the installer calls back "installed"; the next network boot gets
#      "boot from local disk" and the VM boots its disk's boot sector; and under UEFI
#      (OVMF) a host marked installed through the same callback gets a grub.cfg whose
#      default entry boots the local disk (an ESP written by esp.py, whose loader prints
#      a message); OVMF's boot manager menu (UiApp) instead is a failure
# Each case has a time bound, prints a stage table (seconds since power-on, from
# bootstorm's access log, the wire and the serial console) and cleans up every
# namespace, tap and process it made, pass or fail, interrupted or timed out (one EXIT
# trap).  Last line, always and only once: "N passed, N failed"; exit status 0 only
# when nothing failed.  Nothing is skipped for want of a tool: a missing dependency is
# a failure that names its package (DEPS_SET=e2e tools/deps.sh installs them all).
#
#   --quick      only case 1, reduced for `make test`: the whole run (boot-tree check,
#                namespace, VM, teardown) is bounded by E2E_RUN_BOUND (default 360 s),
#                and bootstorm sends IPv6 router advertisements (--ipv6-ra, unless
#                E2E_QUICK_RA=0) so that iPXE does not wait ~13 s for IPv6 autoconf,
#                and the case checks that the firmware heard one
#   --case N     run case N (repeatable; default: all)
#   --keep       keep the work directory (logs, serial consoles, capture) even on success
# Environment: BOOTSTORM (the binary; default build/release/bin/bootstorm), E2E_TREE (boot tree, default
# build/e2e/tree, assembled by tools/boot-tree.sh), E2E_TIME_SCALE (multiplies every
# time bound, default 1), E2E_ACCEL (auto|kvm|tcg), E2E_STATIC=1 (serve hand-written
# per-host files instead of bootstorm's rendered ones: a stop-gap while the rollout
# layer is not wired; case 5 is then skipped), E2E_BIOS_IPXE (what --boot-ipxe gets in
# the pxelinux cases, default "none": QEMU's BIOS PXE ROM is iPXE, and case 1 needs it
# to load pxelinux.0 like any PXE ROM would), E2E_SERVE_ARGS (more knobs for every
# bootstorm serve, e.g. "--ipv6-ra" to measure the firmware's IPv6 wait with and without),
# E2E_RUN_BOUND (seconds for the whole run, after which it is stopped and fails; default
# 360 with --quick, none otherwise; scaled by E2E_TIME_SCALE).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() { sed -n '2,/^set -u/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
QUICK=0; KEEP=0; CASES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --case) [ $# -ge 2 ] || { usage >&2; exit 2; }; CASES+=("$2"); shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "e2e: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ ${#CASES[@]} -eq 0 ] && { if [ $QUICK = 1 ]; then CASES=(1); else CASES=(1 2 3 4 5); fi; }
for c in "${CASES[@]}"; do
  case "$c" in 1|2|3|4|5) ;; *) echo "e2e: no case $c (1-5)" >&2; exit 2 ;; esac
done

BOOTSTORM=${BOOTSTORM:-$REPO/build/release/bin/bootstorm}
TIME_SCALE=${E2E_TIME_SCALE:-1}
TREE=${E2E_TREE:-$REPO/build/e2e/tree}
STATIC=${E2E_STATIC:-0}
BIOS_IPXE=${E2E_BIOS_IPXE:-none}
SERVE_ARGS=${E2E_SERVE_ARGS:-}   # word-split on purpose: extra knobs for every bootstorm serve
SERVER=10.77.0.1
SUBNET="10.77.0.0/24,pool=10.77.0.100-10.77.0.199,router=$SERVER,dns=$SERVER,domain=e2e.test,lease=3600"
HTTP_PORT=8080
NS="bse2e$$"
QUICK_RA=${E2E_QUICK_RA:-1}
EXPECT_RA=0  # bootstorm sends router advertisements: the firmware must hear one
case " $SERVE_ARGS " in *" --ipv6-ra "*) EXPECT_RA=1 ;; esac
if [ $QUICK = 1 ] && [ "$QUICK_RA" = 1 ] && [ $EXPECT_RA = 0 ]; then SERVE_ARGS+=" --ipv6-ra"; EXPECT_RA=1; fi

# ---- the end of every run: cleanup and the one summary line -------------------------
PASSED=0; FAILED=0; FAILED_NAMES=()
WORK=""; NS_MADE=0; WATCHDOG=""; CASE_RUNNING=""
CASE_PIDS=()   # processes of the running case, in start order
CASE_TAPS=()   # its tap devices
RUN_PIDS=()    # processes of the whole run (the capture)
fatal() { echo "e2e: $*" >&2; FAILED=$((FAILED+1)); FAILED_NAMES+=("setup"); exit 1; }

kill_pids() {  # kill_pids PID... : TERM, up to 3 s, then KILL; newest first
  local i p alive
  for ((i=$#; i>=1; i--)); do p=${!i}; kill -TERM "$p" 2>/dev/null; done
  for i in $(seq 30); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
  for p in "$@"; do wait "$p" 2>/dev/null; done
  return 0
}

case_cleanup() {
  [ ${#CASE_PIDS[@]} -gt 0 ] && kill_pids "${CASE_PIDS[@]}"
  CASE_PIDS=()
  local t
  for t in "${CASE_TAPS[@]}"; do ip -n "$NS" link del "$t" 2>/dev/null; done
  CASE_TAPS=()
}

cleanup() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM  # the teardown runs to its end
  if [ -n "$CASE_RUNNING" ]; then  # stopped in the middle of a case: it failed
    FAILED=$((FAILED+1)); FAILED_NAMES+=("$CASE_RUNNING")
    echo "  FAIL case $CASE_RUNNING (stopped after $((SECONDS - CASE_START)) s: ${STOP_WHY:-exit status $rc})"
    [ -n "${CASE_DIR:-}" ] && echo "    logs: $CASE_DIR (access.log, server.log, */serial.raw; capture: $WORK/capture.log)"
  fi
  if [ -n "$WATCHDOG" ]; then kill -TERM "$WATCHDOG" 2>/dev/null; wait "$WATCHDOG" 2>/dev/null; fi
  case_cleanup
  [ ${#RUN_PIDS[@]} -gt 0 ] && kill_pids "${RUN_PIDS[@]}"
  if [ "$NS_MADE" = 1 ]; then
    # anything still in our namespace was started by this run
    local left
    left=$(ip netns pids "$NS" 2>/dev/null)
    [ -n "$left" ] && kill -KILL $left 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    if ip netns list 2>/dev/null | grep -qw "$NS"; then
      echo "e2e: could not delete network namespace $NS"; FAILED=$((FAILED+1)); FAILED_NAMES+=("cleanup")
    fi
  fi
  if [ -n "$WORK" ]; then
    if [ "$KEEP" = 1 ] || [ "$FAILED" -gt 0 ] || [ $rc -ne 0 ]; then
      echo "e2e: logs, serial consoles and the packet capture are in $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
  # a non-zero status with no failure counted (a bug in this script): still a failure
  if [ $rc -ne 0 ] && [ "$FAILED" -eq 0 ]; then FAILED=1; FAILED_NAMES+=("run (exit status $rc)"); fi
  echo
  [ ${#FAILED_NAMES[@]} -gt 0 ] && echo "failed cases: ${FAILED_NAMES[*]}"
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ] && exit 0
  [ $rc -ne 0 ] && exit $rc
  exit 1
}
STOP_WHY=""
trap cleanup EXIT
trap 'STOP_WHY="interrupted"; echo "e2e: interrupted"; exit 130' INT
on_term() {
  if [ -n "$WORK" ] && [ -e "$WORK/.run-bound" ]; then
    STOP_WHY="the run's time bound of ${RUN_BOUND} s passed"
  else
    STOP_WHY="terminated"
  fi
  echo "e2e: $STOP_WHY"
  exit 143
}
trap on_term TERM

# ---- preflight ---------------------------------------------------------------------
WORK=$(mktemp -d /tmp/bootstorm-e2e.XXXXXX) || fatal "mktemp failed"
TAPS=0

# the whole run's hard bound: a watchdog that TERMs this script (whose trap cleans up)
RUN_BOUND=${E2E_RUN_BOUND:-}
[ -z "$RUN_BOUND" ] && [ $QUICK = 1 ] && RUN_BOUND=360
RUN_DEADLINE=""
if [ -n "$RUN_BOUND" ] && [ "$RUN_BOUND" != 0 ]; then
  RUN_BOUND=$(awk -v b="$RUN_BOUND" -v s="$TIME_SCALE" 'BEGIN { printf "%d", b * s }')
  RUN_DEADLINE=$((SECONDS + RUN_BOUND))
  (
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$RUN_BOUND" & sp=$!
    wait "$sp" && : >"$WORK/.run-bound" && kill -TERM $$
  ) &
  WATCHDOG=$!
fi

[ "$(id -u)" -eq 0 ] || fatal "needs root (network namespaces, taps)"
[ -x "$BOOTSTORM" ] || fatal "BOOTSTORM=$BOOTSTORM is not executable"
for t in qemu-system-x86_64:qemu-system-x86 ip:iproute2 python3:python3 curl:curl; do
  command -v "${t%%:*}" >/dev/null || fatal "${t%%:*} is missing: install ${t#*:} (DEPS_SET=e2e tools/deps.sh)"
done
[ -c /dev/net/tun ] || fatal "/dev/net/tun is missing: the VMs' tap devices need the tun driver (modprobe tun)"
"$REPO/tools/boot-tree.sh" "$TREE" || fatal "cannot assemble the boot tree (tools/boot-tree.sh)"

ACCEL=${E2E_ACCEL:-auto}
if [ "$ACCEL" = auto ]; then
  ACCEL=tcg
  # KVM only when it really starts a VM: /dev/kvm may exist and still not work
  if [ -c /dev/kvm ]; then
    timeout 5 qemu-system-x86_64 -accel kvm -machine pc -nodefaults -display none -monitor none \
      -serial none -S </dev/null >/dev/null 2>&1
    [ $? -eq 124 ] && ACCEL=kvm
  fi
fi

# ---- the network --------------------------------------------------------------------
ip netns add "$NS" || fatal "ip netns add $NS failed"
NS_MADE=1
ip -n "$NS" link set lo up
ip -n "$NS" link add br0 type bridge
# forward at once: no STP listening delay, no multicast snooping surprises
ip -n "$NS" link set br0 type bridge forward_delay 0 stp_state 0 mcast_snooping 0
ip -n "$NS" addr add "$SERVER/24" dev br0
if [ $EXPECT_RA = 1 ]; then
  # --ipv6-ra needs IPv6 on br0 (a link-local source address for the advertisements)
  in_ns_sysctl() { ip netns exec "$NS" sysctl -qw "$@" >/dev/null 2>&1; }
  [ -d /proc/sys/net/ipv6 ] || fatal "--ipv6-ra: this kernel has no IPv6 (E2E_QUICK_RA=0 runs --quick without it)"
  in_ns_sysctl net.ipv6.conf.br0.disable_ipv6=0
fi
ip -n "$NS" link set br0 up
ip netns exec "$NS" python3 "$HERE/capture.py" br0 "$WORK/capture.log" 2>"$WORK/capture.err" &
RUN_PIDS+=($!)

in_ns() { ip netns exec "$NS" "$@"; }

# ---- the boot tree and the inventory -------------------------------------------------
TFTP_ROOT=$TREE/tftp HTTP_ROOT=$TREE/http
if [ "$STATIC" = 1 ]; then
  # a private copy (hard links) the hand-written per-host files go into
  mkdir -p "$WORK/static"
  cp -al "$TREE/tftp" "$TREE/http" "$WORK/static/"
  TFTP_ROOT=$WORK/static/tftp HTTP_ROOT=$WORK/static/http
fi
DISK_SECTOR=fa31c08ed88ed0bc007cfbbe1f7cac84c07409b40ebb0700cd10ebf2f4ebfd
DISK_MSG="BOOTSTORM-E2E: booted from the local disk"

# hosts_write FILE "mac,hostname,ip,callback"...: the case's inventory, plus a host no VM
# plays that the test asks for files as, so that its probes touch no VM's state
PROBE_MAC=52:54:00:e2:ff:01
hosts_write() {
  local f=$1; shift
  set -- "$PROBE_MAC,e2e-probe,10.77.0.250," "$@"  # first: E2E_STATIC writes one grub.cfg, the last host's
  echo "mac,hostname,ip,profile,e2e_callback" >"$f"
  local h mac name ip cb
  for h in "$@"; do
    IFS=, read -r mac name ip cb <<<"$h"
    echo "$mac,$name,$ip,d12,$cb" >>"$f"
    [ "$STATIC" = 1 ] && static_host "$mac" "$name" "$ip"
  done
}

# E2E_STATIC: what bootstorm's rollout layer would render, written by hand
static_host() {
  local mac=$1 name=$2 ip=$3 dash
  dash=$(echo "$mac" | tr : -)
  local base="http://$SERVER:$HTTP_PORT"
  local append="auto=true priority=critical url=$base/ks/$mac interface=auto netcfg/get_hostname=$name netcfg/get_domain=e2e.test debian-installer/locale=en_US.UTF-8 keyboard-configuration/xkb-keymap=us console=ttyS0,115200n8 --- console=ttyS0,115200n8"
  mkdir -p "$TFTP_ROOT/pxelinux.cfg" "$HTTP_ROOT/ks" "$HTTP_ROOT/ipxe"
  printf 'DEFAULT install\nPROMPT 0\nTIMEOUT 30\nLABEL install\n  KERNEL debian-installer/amd64/linux\n  INITRD debian-installer/amd64/initrd.gz\n  APPEND %s\n  IPAPPEND 2\n' \
    "$append" >"$TFTP_ROOT/pxelinux.cfg/01-$dash"
  printf "set timeout=3\nset default=0\nmenuentry 'Install %s' {\n    linux /debian-installer/amd64/linux %s\n    initrd /debian-installer/amd64/initrd.gz\n}\n" \
    "$name" "$append" >"$TFTP_ROOT/debian-installer/amd64/grub/grub.cfg"
  printf '#!ipxe\nkernel %s/debian-installer/amd64/linux initrd=initrd.gz %s\ninitrd %s/debian-installer/amd64/initrd.gz\nboot\n' \
    "$base" "$append" "$base" >"$HTTP_ROOT/ipxe/$mac.ipxe"
  printf 'd-i debian-installer/locale string en_US.UTF-8\nd-i keyboard-configuration/xkb-keymap select us\nd-i netcfg/get_hostname string %s\n' \
    "$name" >"$HTTP_ROOT/ks/$mac"
}

# ---- bootstorm ------------------------------------------------------------------------
# server_start ARGS... : bootstorm serve for the case, access log timestamped
server_start() {
  local d=$CASE_DIR
  mkfifo "$d/access.fifo"
  python3 "$HERE/tslog.py" lines "$d/access.log" <"$d/access.fifo" &
  CASE_PIDS+=($!)
  local rollout=(--profiles "$d/profiles")
  if [ "$STATIC" = 1 ]; then rollout=(); fi
  ip netns exec "$NS" "$BOOTSTORM" serve --listen "$SERVER" --interface br0 --subnet "$SUBNET" --http-port "$HTTP_PORT" \
    --tftp-root "$TFTP_ROOT" --http-root "$HTTP_ROOT" --state-dir "$d/state" --hosts "$d/hosts.csv" \
    --known-only "${rollout[@]}" $SERVE_ARGS "$@" >"$d/access.fifo" 2>"$d/server.log" &
  SRV_PID=$!
  CASE_PIDS+=($SRV_PID)
  echo "bootstorm serve ${rollout[*]} $SERVE_ARGS $*" >"$d/server.args"
  local i
  for i in $(seq 100); do
    grep -q "serving" "$d/server.log" 2>/dev/null && return 0
    kill -0 "$SRV_PID" 2>/dev/null || { SRV_ERR="bootstorm exited: $(tail -n 3 "$d/server.log")"; return 1; }
    sleep 0.1
  done
  SRV_ERR="bootstorm did not say 'serving' in 10 s: $(tail -n 3 "$d/server.log")"
  return 1
}

# server_serves KIND MAC: does bootstorm hand out this host's own boot files? (fails fast
# instead of letting a VM wait out its time bound)
server_serves() {
  local kind=$1 mac=$2 got dash
  dash=$(echo "$mac" | tr : -)
  case "$kind" in
    pxelinux) got=$(in_ns curl -sf -m 5 "tftp://$SERVER/pxelinux.cfg/01-$dash") ;;
    ipxe) if [ "$STATIC" = 1 ]; then got=$(in_ns curl -sf -m 5 "http://$SERVER:$HTTP_PORT/ipxe/$mac.ipxe")
          else got=$(in_ns curl -sf -m 5 "http://$SERVER:$HTTP_PORT/boot.ipxe?mac=$mac"); fi ;;
  esac
  [ -n "$got" ] && [[ "$got" == *"/ks/$mac"* ]]
}

api_host() { in_ns curl -s -m 5 "http://$SERVER:$HTTP_PORT/api/hosts/$1"; }

# ---- virtual machines -----------------------------------------------------------------
# vm_start NAME FIRMWARE MAC [disk]: FIRMWARE bios (SeaBIOS + iPXE ROM), uefi (OVMF's
# own PXE), uefi-ipxe (OVMF + iPXE's EFI ROM); sets VM_T0_, VM_PID_, VM_FW_, VM_MAC_<NAME>
vm_start() {
  local name=$1 fw=$2 mac=$3 disk=${4:-}
  local d=$CASE_DIR/$name tap
  mkdir -p "$d"
  TAPS=$((TAPS+1)); tap=tap$TAPS
  ip -n "$NS" tuntap add "$tap" mode tap || return 1
  CASE_TAPS+=("$tap")
  ip -n "$NS" link set "$tap" master br0 up
  mkfifo "$d/serial.fifo"
  python3 "$HERE/tslog.py" raw "$d/serial.raw" <"$d/serial.fifo" &
  CASE_PIDS+=($!)
  local args=(-name "$name" -accel "$ACCEL" -machine pc -m 1024 -smp 1 -nographic -monitor none
              -serial "file:$d/serial.fifo" -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no")
  local rom
  case "$fw" in
    bios) rom=$TREE/firmware/pxe-virtio.rom ;;
    uefi) rom= ;;
    uefi-ipxe) rom=$TREE/firmware/efi-virtio.rom ;;
  esac
  # disable-legacy=on: the ipxe-qemu ROMs carry device id 1041, a transitional NIC skips them
  args+=(-device "virtio-net-pci,netdev=n0,mac=$mac,disable-legacy=on,romfile=$rom,bootindex=1")
  if [ "$fw" != bios ]; then
    cp "$TREE/firmware/OVMF_VARS.fd" "$d/vars.fd"
    args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$TREE/firmware/OVMF_CODE.fd"
           -drive "if=pflash,format=raw,unit=1,file=$d/vars.fd")
  fi
  [ -n "$disk" ] && args+=(-drive "file=$disk,format=raw,if=none,id=disk0"
                           -device "virtio-blk-pci,drive=disk0,bootindex=2")
  echo "qemu-system-x86_64 ${args[*]}" >"$d/qemu.args"
  printf -v "VM_T0_$name" '%s' "$EPOCHREALTIME"
  # not through a shell function: $! must be qemu itself (ip netns exec execs it)
  ip netns exec "$NS" qemu-system-x86_64 "${args[@]}" </dev/null >"$d/qemu.log" 2>&1 &
  local pid=$!
  CASE_PIDS+=($pid)
  printf -v "VM_PID_$name" '%s' "$pid"
  printf -v "VM_FW_$name" '%s' "$fw"
  printf -v "VM_MAC_$name" '%s' "$mac"
}

vm_stop() {
  local pv="VM_PID_$1"
  kill_pids "${!pv}"
}

# stages NAME FLOW IP [--reached]: the VM's stage table / whether its last stage happened
stages() {
  local name=$1 flow=$2 ip=$3; shift 3
  local t0="VM_T0_$name" mac="VM_MAC_$name" fw="VM_FW_$name"
  python3 "$HERE/stages.py" --flow "$flow" --mac "${!mac}" --ip "$ip" --t0 "${!t0}" \
    --access "$CASE_DIR/access.log" --serial "$CASE_DIR/$name/serial.raw" --capture "$WORK/capture.log" \
    --tftp-root "$TFTP_ROOT" --http-root "$HTTP_ROOT" \
    --host-json "$CASE_DIR/$name/host.json" $([ "$STATIC" = 1 ] || echo --expect-virtual) \
    $([ "$EXPECT_RA" = 1 ] && echo --expect-ra) \
    --title "$name: ${!fw} firmware, ${!mac}, reserved $ip, $ACCEL" "$@"
}

# snap_host NAME: bootstorm's own record of the VM's machine (GET /api/hosts/<mac>), for
# the stage table; empty when this bootstorm has no such API
snap_host() {
  local mac="VM_MAC_$1"
  api_host "${!mac}" >"$CASE_DIR/$1/host.json" 2>/dev/null
}

# wait_stages BOUND "NAME FLOW IP"...: polls until every VM reached its flow's last stage,
# a stage failed for good, a VM died, or BOUND seconds passed; WAIT_MSG says which
WAIT_MSG=""
wait_stages() {
  local bound=$1; shift
  local deadline=$((SECONDS + bound)) vm name flow ip rc pending pv
  local -A fin=()
  WAIT_MSG=""
  while :; do
    pending=0
    for vm in "$@"; do
      read -r name flow ip <<<"$vm"
      [ -n "${fin[$name]:-}" ] && continue
      stages "$name" "$flow" "$ip" --reached; rc=$?
      if [ $rc -eq 0 ]; then fin[$name]=ok; continue; fi
      if [ $rc -eq 3 ]; then fin[$name]=failed; WAIT_MSG+="$name: a stage failed for good; "; continue; fi
      pv="VM_PID_$name"
      if ! kill -0 "${!pv}" 2>/dev/null; then
        fin[$name]=died; WAIT_MSG+="$name: qemu exited ($(tail -n 2 "$CASE_DIR/$name/qemu.log" | tr '\n' ' ')); "
        continue
      fi
      pending=$((pending+1))
    done
    [ $pending -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then WAIT_MSG+="time bound of ${bound} s passed; "; break; fi
    if ! kill -0 "$SRV_PID" 2>/dev/null; then WAIT_MSG+="bootstorm exited: $(tail -n 3 "$CASE_DIR/server.log"); "; break; fi
    sleep 2
  done
  [ -z "$WAIT_MSG" ]
}

# ---- cases -----------------------------------------------------------------------------
bound() { python3 -c "import sys;print(int(float(sys.argv[1])*float(sys.argv[2])))" "$1" "$TIME_SCALE"; }

CASE_FAILS=()
case_begin() {
  CASE_NAME=$1; CASE_BOUND=$(bound "$2"); shift 2
  CASE_DIR=$WORK/case$CASE_NAME
  CASE_FAILS=()
  CASE_START=$SECONDS
  CASE_RUNNING=$CASE_NAME
  if [ -n "$RUN_DEADLINE" ]; then
    # within the run's bound, leaving 20 s for the stage table and the teardown
    local left=$((RUN_DEADLINE - SECONDS - 20))
    [ $left -lt 30 ] && left=30
    [ $left -lt $CASE_BOUND ] && CASE_BOUND=$left
  fi
  mkdir -p "$CASE_DIR/profiles"
  cp "$HERE"/profiles/* "$CASE_DIR/profiles/"
  echo
  echo "== case $CASE_NAME: $* (bound ${CASE_BOUND} s)"
}
case_fail() { CASE_FAILS+=("$*"); }
case_end() {
  case_cleanup
  CASE_RUNNING=""
  local took=$((SECONDS - CASE_START))
  if [ ${#CASE_FAILS[@]} -eq 0 ]; then
    PASSED=$((PASSED+1)); echo "  ok   case $CASE_NAME (${took} s)"
  else
    FAILED=$((FAILED+1)); FAILED_NAMES+=("$CASE_NAME")
    echo "  FAIL case $CASE_NAME (${took} s)"
    local f
    for f in "${CASE_FAILS[@]}"; do echo "    - $f"; done
    echo "    logs: $CASE_DIR (access.log, server.log, */serial.raw; capture: $WORK/capture.log)"
  fi
}

# show_stages NAME FLOW IP: prints the table, records a failure when a stage is missing
show_stages() {
  local out rc
  out=$(stages "$@"); rc=$?
  echo "$out"
  [ $rc -eq 0 ] || case_fail "$1: $(echo "$out" | grep 'FAIL:' | head -n 3 | sed 's/^ *FAIL: //' | paste -sd';')"
}

serve_or_fail() {
  if ! server_start "$@"; then
    [[ "$SRV_ERR" == *"--boot-ipxe"* ]] && SRV_ERR+=" -- QEMU's BIOS PXE ROM is iPXE: this case needs bootstorm to hand iPXE clients their architecture's loader (pxelinux.0), as a vendor PXE ROM gets it (E2E_BIOS_IPXE sets the value tried)"
    case_fail "$SRV_ERR"
    return 1
  fi
  return 0
}

check_serves() {  # check_serves KIND MAC
  server_serves "$1" "$2" && return 0
  if [ "$STATIC" = 1 ]; then
    case_fail "bootstorm does not serve the hand-written $1 file for $2"
  else
    case_fail "bootstorm does not serve $2's own $1 configuration (is the rollout layer, --profiles, wired into serve? E2E_STATIC=1 runs with hand-written files)"
  fi
  return 1
}

case_1() {
  local mac=52:54:00:e2:01:01 ip=10.77.0.21
  case_begin 1 600 "BIOS PXE -> pxelinux -> 01-<mac> -> TFTP kernel+initrd -> installer DHCP -> preseed$([ $EXPECT_RA = 1 ] && echo ", IPv6 RAs on")"
  hosts_write "$CASE_DIR/hosts.csv" "$mac,e2e-bios,$ip,"
  if serve_or_fail --boot-ipxe "$BIOS_IPXE" && check_serves pxelinux "$PROBE_MAC"; then
    vm_start bios1 bios "$mac"
    wait_stages "$CASE_BOUND" "bios1 bios $ip" || case_fail "$WAIT_MSG"
    snap_host bios1
    show_stages bios1 bios "$ip"
  fi
  case_end
}

case_2() {
  local mac=52:54:00:e2:02:01 ip=10.77.0.31
  case_begin 2 720 "UEFI (OVMF PXE) -> shim -> GRUB -> per-host grub.cfg -> TFTP kernel+initrd -> installer DHCP -> preseed"
  hosts_write "$CASE_DIR/hosts.csv" "$mac,e2e-uefi,$ip,"
  # the shim; the profile names the same loader (loader_efi64)
  if serve_or_fail --boot-efi64 debian-installer/amd64/bootnetx64.efi && check_serves pxelinux "$PROBE_MAC"; then
    vm_start uefi1 uefi "$mac"
    wait_stages "$CASE_BOUND" "uefi1 uefi $ip" || case_fail "$WAIT_MSG"
    snap_host uefi1
    show_stages uefi1 uefi "$ip"
  fi
  case_end
}

case_3() {
  local m1=52:54:00:e2:03:01 ip1=10.77.0.41 m2=52:54:00:e2:03:02 ip2=10.77.0.42
  case_begin 3 600 "iPXE fast path (BIOS and UEFI ROMs): per-host HTTP script, kernel+initrd over HTTP"
  hosts_write "$CASE_DIR/hosts.csv" "$m1,e2e-ipxe-bios,$ip1," "$m2,e2e-ipxe-uefi,$ip2,"
  local extra=()
  [ "$STATIC" = 1 ] && extra=(--boot-ipxe "http://{server}:{http_port}/ipxe/{mac}.ipxe")
  if serve_or_fail "${extra[@]}" && check_serves ipxe "$PROBE_MAC"; then
    vm_start ipxe1 bios "$m1"
    vm_start ipxe2 uefi-ipxe "$m2"
    wait_stages "$CASE_BOUND" "ipxe1 ipxe $ip1" "ipxe2 ipxe $ip2" || case_fail "$WAIT_MSG"
    snap_host ipxe1; snap_host ipxe2
    show_stages ipxe1 ipxe "$ip1"
    show_stages ipxe2 ipxe "$ip2"
  fi
  case_end
}

case_4() {
  local i hosts=() vms=()
  case_begin 4 900 "a storm: 4 BIOS VMs at once, each with its own MAC and reservation"
  for i in 1 2 3 4; do hosts+=("52:54:00:e2:04:0$i,e2e-storm$i,10.77.0.5$i,"); done
  hosts_write "$CASE_DIR/hosts.csv" "${hosts[@]}"
  if serve_or_fail --boot-ipxe "$BIOS_IPXE" && check_serves pxelinux "$PROBE_MAC"; then
    for i in 1 2 3 4; do vm_start "storm$i" bios "52:54:00:e2:04:0$i"; vms+=("storm$i bios 10.77.0.5$i"); done
    wait_stages "$CASE_BOUND" "${vms[@]}" || case_fail "$WAIT_MSG"
    for i in 1 2 3 4; do snap_host "storm$i"; done
    for i in 1 2 3 4; do show_stages "storm$i" bios "10.77.0.5$i"; done
    storm_status
  fi
  case_end
}

# bootstorm status: all four storm hosts at the preseed (kickstart) stage, from the
# table a person reads and from --json, which a script reads
storm_status() {
  if ! "$BOOTSTORM" help 2>&1 | grep -qE '^ +status\b'; then
    echo "  SKIP status check: this bootstorm has no 'status' command (issue 6 has not landed)"
    return 0
  fi
  local url="http://$SERVER:$HTTP_PORT" out json i line
  out=$(in_ns "$BOOTSTORM" status --server "$url" 2>&1)
  echo "$out" | sed 's/^/  status| /'
  json=$(in_ns "$BOOTSTORM" status --server "$url" --json 2>&1)
  for i in 1 2 3 4; do
    line=$(echo "$out" | grep -i "52:54:00:e2:04:0$i")
    if [ -z "$line" ]; then
      case_fail "bootstorm status does not list 52:54:00:e2:04:0$i"
    elif ! echo "$line" | grep -qwE 'kickstart|stage2|packages|postinstall|installed'; then
      case_fail "bootstorm status: 52:54:00:e2:04:0$i is not at the preseed stage: $line"
    fi
  done
  echo "$json" | python3 -c '
import json, sys
want = ["52:54:00:e2:04:0%d" % i for i in range(1, 5)]
try:
    d = json.loads(sys.stdin.readline())
except ValueError as e:
    print("bootstorm status --json: not JSON (%s)" % e); sys.exit(1)
hosts = d.get("hosts", d) if isinstance(d, dict) else d
got = {h.get("mac"): h.get("stage") for h in hosts if isinstance(h, dict)}
ok = ("kickstart", "stage2", "packages", "postinstall", "installed")
bad = ["%s: %s" % (m, got.get(m, "absent")) for m in want if got.get(m) not in ok]
if bad:
    print("bootstorm status --json: not at the preseed stage: " + ", ".join(bad)); sys.exit(1)
' >"$CASE_DIR/status-json.check" 2>&1 || case_fail "$(cat "$CASE_DIR/status-json.check")"
}

# once_uefi MAC IP: case 5 under UEFI. The host is marked installed through the
# callback URL its own rendered preseed carries (what its installer would POST), then an
# OVMF machine with a disk boots from the network: shim, GRUB, the per-host grub.cfg
# (default: boot from the local disk), and the firmware goes on to the disk, whose loader
# prints DISK_MSG; no kernel is fetched.
once_uefi() {
  local mac=$1 ip=$2 ks url code j
  ks=$(in_ns curl -sf -m 5 "http://$SERVER:$HTTP_PORT/ks/$mac")
  url=$(printf '%s\n' "$ks" | sed -n "s/^d-i preseed\/early_command string wget .*--post-data= '\([^']*\)'.*/\1/p")
  if [ -z "$url" ]; then
    case_fail "uefi: no installed callback in $mac's preseed: $(printf '%s\n' "$ks" | grep -m1 early_command)"
    return 1
  fi
  code=$(in_ns curl -s -o /dev/null -w '%{http_code}' -m 5 --data '' "$url")
  [ "$code" = 200 ] || { case_fail "uefi: POST ${url%%\?*} answered $code"; return 1; }
  j=$(api_host "$mac")
  if [[ "$j" != *'"installed":true'* && "$j" != *'"installed": true'* ]]; then
    case_fail "uefi: bootstorm does not report $mac installed after its callback: $j"
    return 1
  fi
  echo "  UEFI: $mac marked installed by its callback (${url%%\?*}); an OVMF machine boots from the network"
  # its disk: a FAT file system whose removable-media loader is a GRUB that prints DISK_MSG
  local esp=$CASE_DIR/esp.img cfg=$CASE_DIR/esp-grub.cfg g=$TREE/tftp/debian-installer/amd64/grubx64.efi
  printf 'set timeout=0\necho "%s"\nsleep 600\n' "$DISK_MSG" >"$cfg"
  if ! python3 "$HERE/esp.py" "$esp" 16 "EFI/BOOT/BOOTX64.EFI=$g" "EFI/BOOT/grub.cfg=$cfg" \
       "boot/grub/grub.cfg=$cfg" "debian-installer/amd64/grub/grub.cfg=$cfg" 2>"$CASE_DIR/esp.err"; then
    case_fail "uefi: cannot write the disk image: $(tail -n 1 "$CASE_DIR/esp.err")"
    return 1
  fi
  vm_start onceu uefi "$mac" "$esp"
  wait_stages "$(bound 240)" "onceu uefi-local $ip" || case_fail "uefi: $WAIT_MSG"
  snap_host onceu
  show_stages onceu uefi-local "$ip"
  vm_stop onceu
}

case_5() {
  local mac=52:54:00:e2:05:01 ip=10.77.0.61 umac=52:54:00:e2:05:02 uip=10.77.0.62
  case_begin 5 960 "install-once: installed callback, then the next network boot goes to the local disk (UEFI, then BIOS)"
  if [ "$STATIC" = 1 ]; then
    echo "  SKIP: E2E_STATIC=1 has no install-once state to flip (needs bootstorm's rollout layer)"
    case_cleanup; CASE_RUNNING=""; return 0
  fi
  hosts_write "$CASE_DIR/hosts.csv" "$mac,e2e-once,$ip,yes" "$umac,e2e-once-uefi,$uip,yes"
  local disk=$CASE_DIR/disk.img
  # a 1 MiB disk whose boot sector prints DISK_MSG (through SeaBIOS to the serial console)
  python3 - "$disk" "$DISK_SECTOR" "$DISK_MSG" <<'PY'
import sys
code = bytes.fromhex(sys.argv[2]) + ("\r\n%s\r\n" % sys.argv[3]).encode() + b"\0"
sector = code.ljust(510, b"\0") + b"\x55\xaa"
open(sys.argv[1], "wb").write(sector + b"\0" * (1024 * 1024 - 512))
PY
  if ! { serve_or_fail --boot-ipxe "$BIOS_IPXE" --boot-efi64 debian-installer/amd64/bootnetx64.efi &&
         check_serves pxelinux "$PROBE_MAC"; }; then
    case_end; return
  fi
  once_uefi "$umac" "$uip"
  vm_start once1 bios "$mac" "$disk"
  local ok=1
  wait_stages "$CASE_BOUND" "once1 bios $ip" || { case_fail "$WAIT_MSG"; ok=0; }
  # the preseed's early_command posts the callback right after the fetch
  local i t=""
  for i in $(seq 60); do
    [ $ok = 1 ] || break
    t=$(grep -m1 -E "http $ip:[0-9]+ \"POST /api/hosts/[^ \"]*/installed[^\"]*\" 200" "$CASE_DIR/access.log" | cut -d' ' -f1)
    [ -n "$t" ] && break
    sleep 1
  done
  snap_host once1
  show_stages once1 bios "$ip"
  [ $ok = 1 ] || { case_end; return; }
  local t0="VM_T0_once1"
  if [ -n "$t" ]; then
    awk -v a="$t" -v b="${!t0}" -v m="$mac" \
      'BEGIN { printf "  %-32s %7.1f  %-9s  POST /api/hosts/%s/installed 200 (from the preseed early_command)\n", "installed callback", a - b, "bootstorm", m }'
  else
    case_fail "no 'POST /api/hosts/$mac/installed' answered 200 from $ip: $(grep -E "http $ip:[0-9]+ \"POST" "$CASE_DIR/access.log" | tail -n 2 | tr '\n' ' ')"
    case_end; return
  fi
  local j
  j=$(api_host "$mac")
  if [[ "$j" != *'"installed":true'* && "$j" != *'"installed": true'* ]]; then
    case_fail "bootstorm does not report $mac installed after its callback: $j"
    case_end; return
  fi
  echo "  bootstorm reports $mac installed; power cycle: the same machine boots from the network again"
  vm_stop once1
  vm_start once2 bios "$mac" "$disk"
  wait_stages "$(bound 300)" "once2 local $ip" || case_fail "$WAIT_MSG"
  snap_host once2
  show_stages once2 local "$ip"
  case_end
}

echo "e2e: bootstorm $BOOTSTORM, qemu $ACCEL, tree $TREE ($(sed -n 's/^d-i build //p' "$TREE/SOURCES")), work $WORK"
[ "$STATIC" = 1 ] && echo "e2e: E2E_STATIC=1: per-host files are hand-written by the test, not rendered by bootstorm"
echo "e2e: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (timings under TCG depend on it)"
for c in "${CASES[@]}"; do "case_$c"; done
exit 0  # the EXIT trap (cleanup) prints the summary
