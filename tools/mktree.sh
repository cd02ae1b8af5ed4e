#!/usr/bin/env bash
# tools/mktree.sh DIR [--machines N] [--scale F] [--subnet-prefix 10.77]
# Generates a sample boot tree for demos, tests and benchmarks:
#   DIR/tftp/   pxelinux.0 (40 KiB), ldlinux.c32, grubx64.efi, images/vmlinuz (12 MiB), images/initrd.img (96 MiB)
#   DIR/http/   install tree: .treeinfo, images/install.img (512 MiB), Packages/*.rpm (375 MiB in 60 files,
#               50 KiB to 30 MiB), Packages/LIST, repodata/repomd.xml, and the same kernel/initrd
#               (hard links) for the iPXE HTTP path
#   DIR/hosts.csv  an inventory of N machines (mac,hostname,ip,profile,rack,role)
# Sizes are the realistic defaults times --scale (e.g. 0.05 for a quick demo).
# File contents are pseudo-random (slices of one AES-128-CTR keystream: deterministic,
# incompressible) so checksums mean something.  A file already there with the right
# size is kept, so a tree is generated once and reused.
set -euo pipefail
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; esac
dir=$1; shift
machines=200; scale=1; prefix=10.77
while [ $# -gt 0 ]; do
  case "$1" in
    --machines) machines=${2:?}; shift 2 ;;
    --scale) scale=${2:?}; shift 2 ;;
    --subnet-prefix) prefix=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "mktree: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$machines" =~ ^[0-9]+$ ]] && [ "$machines" -ge 1 ] && [ "$machines" -le 60000 ] ||
  { echo "mktree: --machines $machines: want 1-60000" >&2; exit 2; }
[[ "$scale" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] && awk -v s="$scale" 'BEGIN { exit !(s > 0 && s <= 100) }' ||
  { echo "mktree: --scale $scale: want a number in (0, 100]" >&2; exit 2; }
[[ "$prefix" =~ ^[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "mktree: --subnet-prefix $prefix: want A.B" >&2; exit 2; }
command -v openssl >/dev/null || { echo "mktree: openssl is missing (make deps)" >&2; exit 1; }

# The work list, one "PATH BYTES" line per generated file, computed in one awk
# (no interpreter started per file: on some machines python3 is a shim that
# takes a second to start).  Package sizes: a fixed skewed mix (KiB).
list=$(awk -v s="$scale" 'function b(n) { n = int(n * s); return n < 1 ? 1 : n }
BEGIN {
  K = 1024; M = K * K
  print "tftp/pxelinux.0", 40 * K; print "tftp/ldlinux.c32", 120 * K; print "tftp/grubx64.efi", 1500 * K
  print "tftp/images/vmlinuz", b(12 * M); print "tftp/images/initrd.img", b(96 * M)
  print "http/images/install.img", b(512 * M)
  n = split("800 120 1500 50 80 8000 80 800 30000 50 8000 200 50 80 1500 1500 80 200 80 8000 " \
            "1500 50 30000 80 200 30000 50 30000 30000 1500 50 200 50 8000 120 400 1500 120 8000 80 " \
            "30000 400 8000 120 80 30000 30000 200 800 80 8000 80 30000 50 30000 200 3000 8000 1500 800", p, " ")
  for (i = 1; i <= n; i++) printf "http/Packages/pkg%03d-1.0-1.x86_64.rpm %d\n", i - 1, int(p[i] * s) < 1 ? K : int(p[i] * s) * K
}')

# The files' bytes are consecutive slices of one AES-128-CTR keystream, in the
# list's order, from a single openssl process (a process per file costs more than
# the data at small scales); head -c reads a pipe no further than it is asked to.
# A file already there with the right size is skipped (its slice is read and
# dropped, so the others' contents do not depend on what was there).
need=0
while read -r path bytes; do
  f=$dir/$path
  [ -f "$f" ] && [ "$(stat -c %s "$f")" = "$bytes" ] || need=1
done <<<"$list"
mkdir -p "$dir/tftp/pxelinux.cfg" "$dir/tftp/images" "$dir/http/images" "$dir/http/Packages" "$dir/http/repodata"
echo "mktree: generating tree in $dir (scale $scale, $machines machines)" >&2
if [ "$need" = 1 ]; then
  exec 3< <(exec openssl enc -aes-128-ctr -K 626f6f7473746f726d2d6d6b74726565 -iv 00000000000000000000000000000000 \
              -in /dev/zero 2>/dev/null)
  while read -r path bytes; do
    f=$dir/$path
    if [ -f "$f" ] && [ "$(stat -c %s "$f")" = "$bytes" ]; then
      head -c "$bytes" <&3 >/dev/null
      continue
    fi
    head -c "$bytes" <&3 >"$f.tmp" && [ "$(stat -c %s "$f.tmp")" = "$bytes" ] ||
      { echo "mktree: $f: the keystream ended early (openssl enc failed?)" >&2; rm -f "$f.tmp"; exit 1; }
    mv "$f.tmp" "$f"
  done <<<"$list"
  exec 3<&-
fi
for f in vmlinuz initrd.img; do
  ln -f "$dir/tftp/images/$f" "$dir/http/images/$f" 2>/dev/null || cp "$dir/tftp/images/$f" "$dir/http/images/$f"
done
grep '^http/Packages/' <<<"$list" | cut -d' ' -f1 | sed 's,^http/,,' >"$dir/http/Packages/LIST"
cat >"$dir/http/.treeinfo" <<TI
[general]
name = bootstorm sample
family = sample
version = 1
arch = x86_64
[images-x86_64]
kernel = images/vmlinuz
initrd = images/initrd.img
[stage2]
mainimage = images/install.img
TI
cat >"$dir/http/repodata/repomd.xml" <<RX
<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>1</revision></repomd>
RX
# inventory: MACs 52:54:00:xx:xx:xx by index, addresses PREFIX.R.H from .1.11 on
awk -v n="$machines" -v pfx="$prefix" 'BEGIN {
  print "mac,hostname,ip,profile,rack,role"
  for (i = 0; i < n; i++)
    printf "52:54:00:%02x:%02x:%02x,node%04d,%s.%d.%d,default,r%02d,%s\n", int(i / 65536) % 256, int(i / 256) % 256,
           i % 256, i, pfx, 1 + int((i + 10) / 250), 1 + (i + 10) % 250, int(i / 40), i % 10 ? "compute" : "storage"
}' >"$dir/hosts.csv.tmp" && mv "$dir/hosts.csv.tmp" "$dir/hosts.csv"
echo "mktree: done: $(du -sh "$dir" | cut -f1) in $dir" >&2
