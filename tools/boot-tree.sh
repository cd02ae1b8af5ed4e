#!/usr/bin/env bash
# tools/boot-tree.sh DIR — assembles a real network-boot tree from Debian's packages
# (nothing of it is committed; the e2e suite builds it at test time):
#   DIR/tftp/pxelinux.0, ldlinux.c32, menu.c32, libutil.c32, libcom32.c32, vesamenu.c32
#                                  pxelinux, syslinux-common (BIOS loader and its modules)
#   DIR/tftp/debian-installer/amd64/linux, initrd.gz
#                                  debian-installer-12-netboot-amd64 (kernel and installer)
#   DIR/tftp/debian-installer/amd64/bootnetx64.efi (shim), grubx64.efi, grub/font.pf2,
#            grub/x86_64-efi/*     the same package: UEFI loaders; the GRUB image has
#                                  /debian-installer/amd64/grub built in as its prefix
#   DIR/http/debian-installer/amd64/linux, initrd.gz   the same kernel and installer for HTTP
#   DIR/firmware/OVMF_CODE.fd, OVMF_VARS.fd            ovmf (copy VARS per VM: it is written)
#   DIR/firmware/pxe-virtio.rom, efi-virtio.rom        ipxe-qemu (iPXE option ROMs, device 1af4:1041)
#   DIR/SOURCES                    package versions the tree came from
# Loader menus (pxelinux.cfg/, grub.cfg) are deliberately left out: bootstorm renders
# them per host. Files are hard-linked when DIR is on the same file system as /usr,
# else copied (never symlinked: a TFTP root refuses links leading out of it).
# Re-running is cheap: files already in place with the right size are kept.
set -euo pipefail
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
[ $# -eq 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; esac
dir=$1

DI=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
SYSLINUX_BIOS=/usr/lib/syslinux/modules/bios
PXELINUX=/usr/lib/PXELINUX/pxelinux.0
IPXE=/usr/lib/ipxe/qemu
OVMF_DIR=/usr/share/OVMF

need=(
  "$PXELINUX:pxelinux"
  "$SYSLINUX_BIOS/ldlinux.c32:syslinux-common"
  "$DI/linux:debian-installer-12-netboot-amd64"
  "$DI/initrd.gz:debian-installer-12-netboot-amd64"
  "$DI/bootnetx64.efi:debian-installer-12-netboot-amd64"
  "$DI/grubx64.efi:debian-installer-12-netboot-amd64"
  "$IPXE/pxe-virtio.rom:ipxe-qemu"
  "$IPXE/efi-virtio.rom:ipxe-qemu"
)
missing=()
for n in "${need[@]}"; do [ -f "${n%%:*}" ] || missing+=("${n##*:} (${n%%:*})"); done
# OVMF: Debian 12 ships the 4M images; older ones the 2M ones.
if [ -f "$OVMF_DIR/OVMF_CODE_4M.fd" ]; then ovmf_code=$OVMF_DIR/OVMF_CODE_4M.fd ovmf_vars=$OVMF_DIR/OVMF_VARS_4M.fd
elif [ -f "$OVMF_DIR/OVMF_CODE.fd" ]; then ovmf_code=$OVMF_DIR/OVMF_CODE.fd ovmf_vars=$OVMF_DIR/OVMF_VARS.fd
else missing+=("ovmf ($OVMF_DIR/OVMF_CODE_4M.fd)"); fi
if [ ${#missing[@]} -gt 0 ]; then
  printf 'boot-tree: missing: %s\n' "${missing[@]}" >&2
  echo "boot-tree: install them with: DEPS_SET=e2e tools/deps.sh" >&2
  exit 1
fi

# put SRC DST: hard link (same file system) or copy, unless DST already matches
put() {
  local src=$1 dst=$2
  [ "$dst" -ef "$src" ] && return 0
  if [ -f "$dst" ] && cmp -s "$src" "$dst"; then return 0; fi
  mkdir -p "${dst%/*}"
  rm -f "$dst"
  ln "$(readlink -f "$src")" "$dst" 2>/dev/null || cp "$src" "$dst"
}
# putdir SRC DST: the same for a whole directory, in one cp
putdir() {
  local src=$1 dst=$2
  mkdir -p "$dst"
  cp -alf "$src/." "$dst/" 2>/dev/null || cp -af "$src/." "$dst/"
}

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
t=$dir/tftp h=$dir/http f=$dir/firmware
put "$PXELINUX" "$t/pxelinux.0"
for m in ldlinux.c32 menu.c32 libutil.c32 libcom32.c32 vesamenu.c32; do
  put "$SYSLINUX_BIOS/$m" "$t/$m"
done
for x in linux initrd.gz bootnetx64.efi grubx64.efi; do put "$DI/$x" "$t/debian-installer/amd64/$x"; done
put "$DI/grub/font.pf2" "$t/debian-installer/amd64/grub/font.pf2"
putdir "$DI/grub/x86_64-efi" "$t/debian-installer/amd64/grub/x86_64-efi"
for x in linux initrd.gz; do put "$DI/$x" "$h/debian-installer/amd64/$x"; done
put "$ovmf_code" "$f/OVMF_CODE.fd"
put "$ovmf_vars" "$f/OVMF_VARS.fd"
put "$IPXE/pxe-virtio.rom" "$f/pxe-virtio.rom"
put "$IPXE/efi-virtio.rom" "$f/efi-virtio.rom"

{
  echo "# bootstorm boot tree, assembled by tools/boot-tree.sh"
  dpkg-query -W -f='${Package} ${Version}\n' pxelinux syslinux-common debian-installer-12-netboot-amd64 \
    ovmf ipxe-qemu 2>/dev/null || true
  sed -n 's/^Installer build: */d-i build /p' "$DI/../../version.info" 2>/dev/null || true
} >"$dir/SOURCES"
echo "boot-tree: $dir ($(du -sh --apparent-size "$dir" | cut -f1); $(sed -n 's/^d-i build //p' "$dir/SOURCES"))" >&2
