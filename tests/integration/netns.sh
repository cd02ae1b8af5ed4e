# tests/integration/netns.sh — network namespaces, veth pairs and bridges for the
# suites that need real broadcast (sourced after lib.sh, as root).
#
# Every name is unique per run (prefix bs<pid of the suite>).  Cleanup finds
# our namespaces by that prefix, so namespaces made inside run_suite's
# per-test subshells are found too: lib.sh's EXIT/INT/TERM trap kills every
# process left in them, then deletes them (which deletes their veths and
# bridges), even when a test failed half-way.  ns_drop NAME does the same
# for one namespace at the end of a test.
#
#   ns_new NAME               → creates namespace $(ns NAME), loopback up
#   ns NAME                   → the full namespace name
#   in_ns NAME CMD...         → runs CMD inside it
#   ns_bridge NAME BR ADDR/P  → a bridge BR in NAME (ADDR/P on it; "" for none)
#   ns_plug BRNS BR NAME IF MAC [ADDR/P]
#                             → a veth: IF (with MAC) in NAME, its peer on BR in BRNS
#   ns_link A IFA ADDRA/P B IFB ADDRB/P
#                             → a veth pair joining namespaces A and B
#   ns_kill_all NAME          → SIGKILL every process in NAME
#   ns_drop NAME...           → kill its processes, delete it

NS_PREFIX="bs$$-"

ns() { echo "${NS_PREFIX}$1"; }

ns_kill_all() {
  local pids
  pids=$(ip netns pids "$(ns "$1")" 2>/dev/null) || return 0
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  return 0
}

ns_drop() {
  local n
  for n in "$@"; do ns_kill_all "$n"; done
  for n in "$@"; do ip netns del "$(ns "$n")" 2>/dev/null; done
  return 0
}

ns_cleanup_all() {
  local n ours=()
  for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case $n in "$NS_PREFIX"*) ours+=("${n#"$NS_PREFIX"}") ;; esac
  done
  [ ${#ours[@]} -gt 0 ] && ns_drop "${ours[@]}"
  return 0
}
on_exit ns_cleanup_all

ns_new() {
  ip netns add "$(ns "$1")" || return 1
  ip -n "$(ns "$1")" link set lo up
}

in_ns() {
  local n=$1; shift
  ip netns exec "$(ns "$n")" "$@"
}

ns_bridge() {
  local n=$1 br=$2 addr=$3 full
  full=$(ns "$n")
  ip -n "$full" link add "$br" type bridge || return 1
  # forward at once: no STP listening delay, no multicast snooping surprises
  ip -n "$full" link set "$br" type bridge forward_delay 0 stp_state 0 mcast_snooping 0
  [ -n "$addr" ] && ip -n "$full" addr add "$addr" dev "$br"
  ip -n "$full" link set "$br" up
}

# The peer's name on the bridge side is derived from the client's namespace
# and interface so that several clients can share one bridge.
ns_plug() {
  local brns=$1 br=$2 n=$3 ifname=$4 mac=$5 addr=${6:-} peer
  peer="p${n:0:6}${ifname:0:6}"
  ip -n "$(ns "$brns")" link add "$peer" type veth peer name "$ifname" netns "$(ns "$n")" || return 1
  ip -n "$(ns "$brns")" link set "$peer" master "$br" up
  [ -n "$mac" ] && ip -n "$(ns "$n")" link set "$ifname" address "$mac"
  [ -n "$addr" ] && ip -n "$(ns "$n")" addr add "$addr" dev "$ifname"
  ip -n "$(ns "$n")" link set "$ifname" up
}

ns_link() {
  local a=$1 ifa=$2 addra=$3 b=$4 ifb=$5 addrb=$6
  ip -n "$(ns "$a")" link add "$ifa" type veth peer name "$ifb" netns "$(ns "$b")" || return 1
  [ -n "$addra" ] && ip -n "$(ns "$a")" addr add "$addra" dev "$ifa"
  [ -n "$addrb" ] && ip -n "$(ns "$b")" addr add "$addrb" dev "$ifb"
  ip -n "$(ns "$a")" link set "$ifa" up
  ip -n "$(ns "$b")" link set "$ifb" up
}
