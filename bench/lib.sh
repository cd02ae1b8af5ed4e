# bench/lib.sh — shared by the side-by-side benchmarks (sourced).
# Server pinned to core 0, load client to core 1 (BENCH_SERVER_CPU, BENCH_CLIENT_CPU);
# server CPU time read from /proc (utime+stime of the server and its children).
set -u
: "${BOOTSTORM:?set BOOTSTORM}" "${LOADGEN:?set LOADGEN}"
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
SECS=${BENCH_SECONDS:-8}
BW=$(mktemp -d /tmp/bootstorm-bench.XXXXXX); chmod 755 "$BW"
PIDS=()
bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; pkill -KILL -P "$p" 2>/dev/null; done
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$BW"
}
trap bench_cleanup EXIT INT TERM
CLK=$(getconf CLK_TCK)

# The /proc readers below read a file once and count a process that is gone as 0:
# a server's child (an nginx worker, a tftpd-hpa transfer) can exit between
# pgrep listing it and the read, and a test-then-read leaves an empty value that
# breaks the shell arithmetic.  /proc/PID/stat is split after the last ") ": the
# command name (field 2) may hold spaces and parentheses.
# pid_ticks PID: utime+stime+cutime+cstime (fields 14-17) of PID, in clock ticks
pid_ticks() {
  local s f
  { s=$(<"/proc/$1/stat"); } 2>/dev/null || { echo 0; return; }
  read -r -a f <<<"${s##*) }"
  [[ "${f[11]:-}${f[12]:-}${f[13]:-}${f[14]:-}" =~ ^[0-9]+$ ]] || { echo 0; return; }
  echo $((f[11] + f[12] + f[13] + f[14]))
}
# pid_rss PID: VmRSS of PID in KiB (0 when gone, or a kernel thread/zombie without one)
pid_rss() {
  local k v
  while read -r k v _; do
    [ "$k" = VmRSS: ] && [[ "$v" =~ ^[0-9]+$ ]] && { echo "$v"; return; }
  done 2>/dev/null <"/proc/$1/status"
  echo 0
}
# cpu_ticks PID: CPU ticks of PID and its direct children (nginx workers)
cpu_ticks() {
  local t=0 p
  for p in "$1" $(pgrep -P "$1" 2>/dev/null); do t=$((t + $(pid_ticks "$p"))); done
  echo "$t"
}
# rss_kib PID: VmRSS (KiB) of PID and its direct children
rss_kib() {
  local t=0 p
  for p in "$1" $(pgrep -P "$1" 2>/dev/null); do t=$((t + $(pid_rss "$p"))); done
  echo "$t"
}
# wait_tcp PORT: until something listens (5 s)
wait_tcp() {
  local i
  for i in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2; return 1
}
stop_pid() { kill -TERM "$1" 2>/dev/null; sleep 0.3; kill -KILL "$1" 2>/dev/null; pkill -KILL -P "$1" 2>/dev/null; wait "$1" 2>/dev/null; true; }
# ratio A B: A/B with two decimals ("-" when B is 0 or missing)
ratio() { python3 -c "import sys
a,b=sys.argv[1],sys.argv[2]
try: print('%.2f' % (float(a)/float(b)))
except Exception: print('-')" "$1" "$2"; }

# nginx_conf FILE PORT ROOT [LINES]: the nginx every benchmark compares with, as
# issue 2 sets it up (one worker, sendfile on with 256k chunks, open_file_cache,
# no access log); LINES go inside its server block.  pid/error log beside FILE.
nginx_conf() {
  local dir; dir=$(dirname "$1")
  cat >"$1" <<NG
user root; worker_processes 1; daemon off; pid $dir/nginx.pid; error_log $dir/nginx.err;
worker_rlimit_nofile 65536;
events { worker_connections 16384; multi_accept on; }
http { access_log off; sendfile on; tcp_nopush on; tcp_nodelay on; sendfile_max_chunk 256k;
  keepalive_requests 1000000; open_file_cache max=10000 inactive=60s; open_file_cache_valid 60s;
  types { application/octet-stream img rpm; text/plain cfg; }
  server { listen 127.0.0.1:$2 backlog=4096 reuseport deferred; root $3; ${4:-} } }
NG
}
