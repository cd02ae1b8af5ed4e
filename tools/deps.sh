#!/usr/bin/env bash
# Installs the Debian packages bootstorm builds, tests and benchmarks with, when missing.
# Idempotent: prints nothing but one line when everything is present.
# DEPS_SET=build|test|bench|e2e|all picks how much (default: test).
set -eu
build_pkgs="gcc make pkg-config liburing-dev libjemalloc-dev libcriterion-dev clang"
test_pkgs="openssl curl busybox tftp-hpa atftp isc-dhcp-client udhcpc dhcpcd5 kea-admin iproute2 python3 chromium"
bench_pkgs="wrk nginx-light lighttpd dnsmasq-base kea-dhcp4-server tftpd-hpa"
e2e_pkgs="qemu-system-x86 ipxe-qemu pxelinux syslinux-common ovmf debian-installer-12-netboot-amd64"
set_="${DEPS_SET:-test}"
case "$set_" in
  build) want="$build_pkgs" ;;
  # make test boots one real BIOS VM (tests/e2e/run.sh --quick): it needs the e2e set too
  test)  want="$build_pkgs $test_pkgs $e2e_pkgs" ;;
  bench) want="$build_pkgs $test_pkgs $e2e_pkgs $bench_pkgs" ;;
  e2e|all) want="$build_pkgs $test_pkgs $bench_pkgs $e2e_pkgs" ;;
  *) echo "tools/deps.sh: DEPS_SET=$set_ is not one of build, test, bench, e2e, all" >&2; exit 2 ;;
esac
missing=()
for p in $want; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${set_} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages and not root: run 'sudo make deps' or apt-get install -y ${missing[*]}" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/bootstorm-deps.log 2>&1 || {
  echo "deps: apt-get install failed; see /tmp/bootstorm-deps.log" >&2; tail -n 20 /tmp/bootstorm-deps.log >&2; exit 1; }
echo "deps: installed ${#missing[@]} packages"
