#!/usr/bin/env bash
# tools/mktree.sh DIR [--machines N] [--scale F] [--subnet-prefix 10.77]
# Generates a sample boot tree for demos, tests and benchmarks:
#   DIR/tftp/   pxelinux.0 (40 KiB), ldlinux.c32, grubx64.efi, images/vmlinuz (12 MiB), images/initrd.img (96 MiB)
#   DIR/http/   install tree: .treeinfo, images/install.img (512 MiB), Packages/*.rpm (300 MiB in ~60 files),
#               repodata/repomd.xml, and the same kernel/initrd for the iPXE HTTP path
#   DIR/hosts.csv  an inventory of N machines (mac,hostname,ip,profile,rack,role)
# Sizes are the realistic defaults times --scale (e.g. 0.05 for a quick demo).
# File contents are pseudo-random (fast, incompressible) so checksums mean something.
set -euo pipefail
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; esac
dir=$1; shift
machines=200; scale=1; prefix=10.77
while [ $# -gt 0 ]; do
  case "$1" in
    --machines) machines=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --subnet-prefix) prefix=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "mktree: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$machines" =~ ^[0-9]+$ ]] && [ "$machines" -ge 1 ] && [ "$machines" -le 60000 ] ||
  { echo "mktree: --machines $machines: want 1-60000" >&2; exit 2; }
bytes() { python3 -c "import sys;print(max(1,int(float(sys.argv[1])*float(sys.argv[2]))))" "$1" "$scale"; }
# gen FILE BYTES SEED: deterministic pseudo-random content
gen() {
  local f=$1 n=$2 seed=$3
  mkdir -p "$(dirname "$f")"
  if [ -f "$f" ] && [ "$(stat -c %s "$f")" = "$n" ]; then return 0; fi
  { openssl enc -aes-128-ctr -pass "pass:$seed" -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } | head -c "$n" >"$f.tmp"
  mv "$f.tmp" "$f"
}
KiB=1024; MiB=$((1024*1024))
mkdir -p "$dir/tftp/pxelinux.cfg" "$dir/http/images" "$dir/http/Packages" "$dir/http/repodata"
echo "mktree: generating tree in $dir (scale $scale, $machines machines)" >&2
gen "$dir/tftp/pxelinux.0" $((40*KiB)) pxelinux
gen "$dir/tftp/ldlinux.c32" $((120*KiB)) ldlinux
gen "$dir/tftp/grubx64.efi" $((1500*KiB)) grub
gen "$dir/tftp/images/vmlinuz" "$(bytes $((12*MiB)))" kernel
gen "$dir/tftp/images/initrd.img" "$(bytes $((96*MiB)))" initrd
gen "$dir/http/images/install.img" "$(bytes $((512*MiB)))" installimg
ln -f "$dir/tftp/images/vmlinuz" "$dir/http/images/vmlinuz" 2>/dev/null || cp "$dir/tftp/images/vmlinuz" "$dir/http/images/vmlinuz"
ln -f "$dir/tftp/images/initrd.img" "$dir/http/images/initrd.img" 2>/dev/null || cp "$dir/tftp/images/initrd.img" "$dir/http/images/initrd.img"
# ~300 MiB of packages in 60 files from 50 KiB to 30 MiB (a realistic skew)
total=0; i=0
: >"$dir/http/Packages/LIST"
for size_kib in $(python3 -c "
import random; random.seed(7); s=float('$scale')
sizes=[int(random.choice([50,80,120,200,400,800,1500,3000,8000,30000][:10])) for _ in range(60)]
print(' '.join(str(max(1,int(x*s))) for x in sizes))"); do
  name=$(printf "pkg%03d-1.0-1.x86_64.rpm" $i)
  gen "$dir/http/Packages/$name" $((size_kib*KiB)) "rpm$i"
  echo "Packages/$name" >>"$dir/http/Packages/LIST"
  i=$((i+1))
done
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
# inventory
python3 - "$dir/hosts.csv" "$machines" "$prefix" <<'PY'
import sys
path, n, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write("mac,hostname,ip,profile,rack,role\n")
    for i in range(n):
        mac = "52:54:00:%02x:%02x:%02x" % ((i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
        ip = "%s.%d.%d" % (prefix, 1 + (i + 10) // 250, 1 + (i + 10) % 250)
        f.write("%s,node%04d,%s,default,r%02d,%s\n" % (mac, i, ip, i // 40, "compute" if i % 10 else "storage"))
PY
echo "mktree: done: $(du -sh "$dir" | cut -f1) in $dir" >&2
