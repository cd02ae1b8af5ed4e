#!/usr/bin/env bash
# bench/zerocopy.sh — builds bench/zerocopy.c (outside the tree, not part of the
# Makefile) and measures issue 2's zero-copy candidates on this kernel: sendfile(2)
# from the sending thread (what bootstorm does), splice file->pipe->socket through
# io_uring, IORING_OP_SEND_ZC from the mmapped file and from a registered in-memory
# copy, and a plain (copying) ring send as the baseline.  One file of ZC_FILE_MB MiB
# of random data (page cache warm), ZC_CONNS loopback connections per run, sender
# pinned to BENCH_SERVER_CPU (0), receiver (recv MSG_TRUNC) to BENCH_CLIENT_CPU (1).
# Prints GB/s and the sender's and receiver's CPU per GB for each method.
# Knobs: ZC_CONNS ("32 200"), ZC_SECONDS (5), ZC_CHUNK_KIB (256), ZC_FILE_MB (256),
#        ZC_METHODS ("all", or some of: sendfile splice sendzc sendzc-fixed send),
#        ZC_REPEAT (1).
set -u
set -e
. "$(dirname "$0")/args.sh"
bench_args "$0" "$@"
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/bootstorm-zerocopy.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Wshadow -D_GNU_SOURCE -o "$work/zerocopy" "$here/zerocopy.c" -luring
head -c "$(( ${ZC_FILE_MB:-256} * 1024 * 1024 ))" /dev/urandom >"$work/file.bin"
cat "$work/file.bin" >/dev/null # warm the page cache
echo "# kernel $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq 1 "${ZC_REPEAT:-1}"); do
  for n in ${ZC_CONNS:-32 200}; do
    for m in ${ZC_METHODS:-all}; do
      "$work/zerocopy" -f "$work/file.bin" -m "$m" -c "$n" -s "${ZC_SECONDS:-5}" -k "${ZC_CHUNK_KIB:-256}" \
        -S "${BENCH_SERVER_CPU:-0}" -C "${BENCH_CLIENT_CPU:-1}"
    done
  done
done
