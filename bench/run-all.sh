#!/usr/bin/env bash
# bench/run-all.sh — every side-by-side benchmark, one after the other; each
# prints its own Markdown table.  Copy the tables into bench/RESULTS.md with
# the command line and the machine's state (these runs vary by ~30%: repeat).
set -u
cd "$(dirname "$0")"
rc=0
for b in http.sh zerocopy.sh tftp.sh dhcp.sh dhcp-scale.sh storm.sh; do
  [ -x "$b" ] || continue
  echo "### $b ($(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
  bash "$b" || rc=1
  echo
done
exit $rc
