# bench/proc.sh — server CPU and memory for tftp.sh, dhcp.sh and storm.sh
# (sourced after bench/lib.sh).
#
# CPU: a server's own CPU time is read from a cgroup the script creates for its
# servers (cgroup v1 cpuacct, else a cgroup v2 directory; removed at exit), when
# it may: /proc/PID/stat misses the CPU of children that exit unreaped-by-wait —
# tftpd-hpa ignores SIGCHLD, so its per-transfer processes are reaped by the
# kernel and their time never reaches the parent's cutime.  Without a cgroup,
# it falls back to /proc (utime+stime+cutime+cstime of the server and its live
# children) and says so.
#
# proc_ticks PID...: utime+stime+cutime+cstime (clock ticks) of each PID and its
# direct children (a process gone by the time it is read counts 0: lib.sh's pid_ticks)
proc_ticks() {
  local t=0 p
  for p in "$@" $(for p in "$@"; do pgrep -P "$p" 2>/dev/null; done); do t=$((t + $(pid_ticks "$p"))); done
  echo "$t"
}
# proc_rss PID...: VmRSS (KiB) of each PID and its direct children
proc_rss() {
  local t=0 p
  for p in "$@" $(for p in "$@"; do pgrep -P "$p" 2>/dev/null; done); do t=$((t + $(pid_rss "$p"))); done
  echo "$t"
}

SRV_CG="" SRV_CG_KIND=""
# srv_cg_init: the servers' cgroup; sets SRV_CPU_SOURCE to say where CPU comes from
srv_cg_init() {
  local d
  SRV_CPU_SOURCE="/proc (children that exit are not counted: no cgroup could be made)"
  d=/sys/fs/cgroup/cpuacct
  if [ -w "$d/cgroup.procs" ] && mkdir "$d/bootstorm-bench-$$" 2>/dev/null; then
    SRV_CG=$d/bootstorm-bench-$$; SRV_CG_KIND=v1
  else
    for d in /sys/fs/cgroup/unified /sys/fs/cgroup; do
      [ -e "$d/cgroup.controllers" ] && [ -w "$d" ] && mkdir "$d/bootstorm-bench-$$" 2>/dev/null || continue
      if [ -r "$d/bootstorm-bench-$$/cpu.stat" ]; then SRV_CG=$d/bootstorm-bench-$$; SRV_CG_KIND=v2; break; fi
      rmdir "$d/bootstorm-bench-$$" 2>/dev/null
    done
  fi
  [ -n "$SRV_CG" ] && SRV_CPU_SOURCE="a cgroup holding the servers and all their processes ($SRV_CG_KIND)"
  return 0
}
# srv_cg_killall: SIGKILL whatever is left in the servers' cgroup (only our
# servers and their children are ever put there), so that nothing of one
# server runs on into the next measurement
srv_cg_killall() {
  [ -n "$SRV_CG" ] || return 0
  local p
  for p in $(cat "$SRV_CG/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  return 0
}
# srv_cg_fini: kill what is left in the cgroup and remove it
srv_cg_fini() {
  [ -n "$SRV_CG" ] || return 0
  local i
  srv_cg_killall
  for i in 1 2 3 4 5 6 7 8 9 10; do rmdir "$SRV_CG" 2>/dev/null && break; sleep 0.1; done
  SRV_CG=""
}
# srv_track PID...: move the servers (and the children they already have) into the cgroup
srv_track() {
  [ -n "$SRV_CG" ] || return 0
  local p
  for p in "$@" $(for p in "$@"; do pgrep -P "$p" 2>/dev/null; done); do
    echo "$p" >"$SRV_CG/cgroup.procs" 2>/dev/null
  done
  return 0
}
# srv_cpu_us PID...: CPU microseconds so far of the servers (from the cgroup, or /proc)
srv_cpu_us() {
  case $SRV_CG_KIND in
    v1) echo $(( $(cat "$SRV_CG/cpuacct.usage" 2>/dev/null || echo 0) / 1000 )) ;;
    v2) awk '/^usage_usec/ { print $2; f = 1 } END { if (!f) print 0 }' "$SRV_CG/cpu.stat" 2>/dev/null || echo 0 ;;
    *) echo $(( $(proc_ticks "$@") * 1000000 / CLK )) ;;
  esac
}
