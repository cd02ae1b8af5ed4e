#!/usr/bin/env bash
# Rollouts against the real server on loopback (issue 5): for a host in the
# inventory, real clients fetch what it is served — tftp-hpa its
# pxelinux.cfg/01-<mac> and grub.cfg-01-<mac>, curl its kickstart and its iPXE
# script; the installed callback with the right token flips its menus to the
# local disk, a wrong token changes nothing, a restart keeps the state; a reload
# (API or SIGHUP) with a bad row keeps the old inventory; bootstorm check
# reports every problem of a broken profile directory at once; render prints.
# backends: both
. "$(dirname "$0")/lib.sh"

T=$WORK/tree
mkdir -p "$T/tftp/d-i" "$T/http/d-i" "$T/profiles" "$WORK/state"
echo kernel >"$T/tftp/d-i/linux"; echo initrd >"$T/tftp/d-i/initrd.gz"
cp "$T/tftp/d-i/linux" "$T/tftp/d-i/initrd.gz" "$T/http/d-i/"
cat >"$T/profiles/debian.conf" <<'EOF'
label = Debian 12
kernel = d-i/linux
initrd = d-i/initrd.gz
append = auto=true priority=critical url={{base_url}}/preseed/{{mac}}.cfg --- quiet
kickstart = debian.ks
EOF
cat >"$T/profiles/debian.ks" <<'EOF'
d-i netcfg/get_hostname string {{hostname}}
{{#if ip}}
d-i netcfg/get_ipaddress string {{ip}}
d-i netcfg/get_gateway string {{gateway}}
{{/if}}
d-i netcfg/get_nameservers string {{dns_all}}
d-i preseed/late_command string in-target curl -fsS -X POST '{{callback_url}}'
EOF
GOOD_HOSTS='mac,hostname,ip,profile,rack
52:54:00:12:34:56,node1,10.0.0.5,debian,r01
52:54:00:12:34:57,node2,10.0.0.6,debian,r02'
echo "$GOOD_HOSTS" >"$T/hosts.csv"

HPORT=$(free_port); TPORT=$(free_port); DPORT=$(free_port)
URL=http://127.0.0.1:$HPORT
MAC=52:54:00:12:34:56; MACD=01-52-54-00-12-34-56
KNOBS=(--listen 127.0.0.1 --http-port "$HPORT" --tftp-root "$T/tftp" --tftp-port "$TPORT" --http-root "$T/http"
       --hosts "$T/hosts.csv" --profiles "$T/profiles" --state-dir "$WORK/state"
       --subnet "10.0.0.0/24,router=10.0.0.1,dns=10.0.0.2+10.0.0.3")
# The tests run in subshells (lib.sh): the server's PID goes through a file, so
# that one a test restarts is still the one the next test finds and the exit stops.
serve() {
  if [ -f "$WORK/pid" ] && kill -0 "$(cat "$WORK/pid")" 2>/dev/null; then SERVER_PID=$(cat "$WORK/pid"); return 0; fi
  start_server "${KNOBS[@]}" --dhcp-port "$DPORT" --threads 2 || return 1
  echo "$SERVER_PID" >"$WORK/pid"
}
halt() {
  [ -f "$WORK/pid" ] || return 0
  SERVER_PID=$(cat "$WORK/pid"); stop_server; rm -f "$WORK/pid"
}
on_exit halt
serve || exit 1

# tftp-hpa, as a PXE ROM would ask (it exits 0 after an ERROR packet: look at what it says)
tget() {
  rm -f "$WORK/got"
  local said; said=$(tftp -m binary 127.0.0.1 "$TPORT" -c get "$1" "$WORK/got" 2>&1)
  [ -z "$said" ] && [ -s "$WORK/got" ] && cat "$WORK/got"
}
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
token() { curl -sf "$URL/ks/$MAC" | sed -n 's/.*token=\([0-9a-f]\{64\}\).*/\1/p'; }
reset_state() {  # node1 not installed, the good inventory in force
  echo "$GOOD_HOSTS" >"$T/hosts.csv"
  serve
  curl -sf -X POST "$URL/api/reload" >/dev/null
  curl -sf -X POST "$URL/api/hosts/$MAC/reinstall" >/dev/null
}

t_tftp_pxelinux_per_host() {
  reset_state
  m=$(tget "pxelinux.cfg/$MACD") || fail "tftp get pxelinux.cfg/$MACD"
  echo "$m" | grep -qx 'DEFAULT install' || fail "not its own entry by default: $m"
  echo "$m" | grep -qx 'MENU TITLE node1 (10.0.0.5)' || fail "$m"
  echo "$m" | grep -qx '  KERNEL d-i/linux' || fail "$m"
  echo "$m" | grep -q "APPEND auto=true priority=critical url=http://127.0.0.1:$HPORT/preseed/$MAC.cfg" || fail "$m"
  m=$(tget pxelinux.cfg/0A000006) || fail "hex IP name"
  echo "$m" | grep -q 'MENU TITLE node2' || fail "$m"
  m=$(tget pxelinux.cfg/default) || fail "default"
  echo "$m" | grep -qx 'LABEL debian' || fail "$m"
  ! tget pxelinux.cfg/0A00000 >/dev/null || fail "a hex-IP prefix is not a host"
}

t_tftp_grub_per_host() {
  reset_state
  m=$(tget "debian-installer/amd64/grub/grub.cfg-$MACD") || fail "tftp get grub.cfg-$MACD"
  echo "$m" | grep -qx 'set default=install' || fail "$m"
  echo "$m" | grep -q '^    linux /d-i/linux auto=true' || fail "$m"
}

t_kickstart_has_hostname_and_ip() {
  reset_state
  k=$(curl -sf "$URL/ks/$MAC") || fail "GET /ks/$MAC"
  echo "$k" | grep -qx 'd-i netcfg/get_hostname string node1' || fail "$k"
  echo "$k" | grep -qx 'd-i netcfg/get_ipaddress string 10.0.0.5' || fail "$k"
  echo "$k" | grep -qx 'd-i netcfg/get_gateway string 10.0.0.1' || fail "$k"
  echo "$k" | grep -qx 'd-i netcfg/get_nameservers string 10.0.0.2 10.0.0.3' || fail "$k"
  echo "$k" | grep -q "installed?token=[0-9a-f]\{64\}'" || fail "$k"
  p=$(curl -sf "$URL/preseed/$MAC.cfg") || fail "GET /preseed/$MAC.cfg"
  expect_eq "preseed alias" "$p" "$k"
  expect_eq "by hostname" "$(curl -sf "$URL/ks/node1")" "$k"
  expect_eq "unknown host" "$(code "$URL/ks/52:54:00:99:99:99")" 404
  # node2's kickstart has node2's token, not node1's
  k2=$(curl -sf "$URL/ks/node2")
  [ "$(echo "$k" | grep -o 'token=[0-9a-f]*')" != "$(echo "$k2" | grep -o 'token=[0-9a-f]*')" ] || fail "same token"
}

t_ipxe_script_names_kernel() {
  reset_state
  s=$(curl -sf "$URL/boot.ipxe?mac=$MAC") || fail "GET /boot.ipxe"
  expect_eq "first line" "$(echo "$s" | head -n1)" '#!ipxe'
  echo "$s" | grep -q "^kernel http://127.0.0.1:$HPORT/d-i/linux initrd=initrd.gz auto=true" || fail "$s"
  echo "$s" | grep -qx "initrd http://127.0.0.1:$HPORT/d-i/initrd.gz" || fail "$s"
  # and the kernel it names is really served
  curl -sf "$URL/d-i/linux" | grep -qx kernel || fail "kernel not served"
}

t_wrong_token_changes_nothing() {
  reset_state
  bad=$(printf '%064d' 0)
  expect_eq "wrong token" "$(code -X POST "$URL/api/hosts/$MAC/installed?token=$bad")" 403
  expect_eq "no token" "$(code -X POST "$URL/api/hosts/$MAC/installed")" 403
  # node2's token for node1
  t2=$(curl -sf "$URL/ks/node2" | sed -n 's/.*token=\([0-9a-f]\{64\}\).*/\1/p')
  expect_eq "other host's token" "$(code -X POST "$URL/api/hosts/$MAC/installed?token=$t2")" 403
  grep -q "refused installed callback for $MAC (node1) from 127.0.0.1: wrong token" "$WORK/server.log" ||
    fail "no log line: $(tail -n 5 "$WORK/server.log")"
  tget "pxelinux.cfg/$MACD" | grep -qx 'DEFAULT install' || fail "menu changed"
  curl -sf "$URL/api/hosts/$MAC" | grep -q '"installed":false' || fail "state changed"
}

t_installed_flips_to_local_and_survives_restart() {
  reset_state
  tok=$(token); [ ${#tok} -eq 64 ] || fail "no token in the kickstart"
  expect_eq "installed callback" "$(code -X POST "$URL/api/hosts/$MAC/installed?token=$tok")" 200
  tget "pxelinux.cfg/$MACD" | grep -qx 'DEFAULT local' || fail "pxelinux still installs"
  tget "grub.cfg-$MACD" | grep -qx 'set default=local' || fail "grub still installs"
  curl -sf "$URL/boot.ipxe?mac=$MAC" | grep -q '^sanboot --no-describe --drive 0x80' || fail "ipxe still installs"
  tget pxelinux.cfg/0A000006 | grep -qx 'DEFAULT install' || fail "node2 changed too"
  halt
  serve || fail "restart"
  tget "pxelinux.cfg/$MACD" | grep -qx 'DEFAULT local' || fail "state lost in the restart"
  curl -sf "$URL/api/hosts/$MAC" | grep -q '"installed":true' || fail "api: $(curl -s "$URL/api/hosts/$MAC")"
  # the admin flips it back (loopback is the default --admin-allow)
  expect_eq "reinstall" "$(code -X POST "$URL/api/hosts/$MAC/reinstall")" 200
  tget "pxelinux.cfg/$MACD" | grep -qx 'DEFAULT install' || fail "reinstall did not flip back"
}

t_reload_with_bad_row_keeps_old_inventory() {
  reset_state
  printf '%s\n%s\n' "$GOOD_HOSTS" 'zz:zz,node3,10.0.0.7,debian,r03' >"$T/hosts.csv"
  r=$(curl -s -w ' %{http_code}' -X POST "$URL/api/reload")
  echo "$r" | grep -q 'hosts.csv:4: mac "zz:zz": not a MAC address' || fail "$r"
  echo "$r" | grep -q ' 422$' || fail "$r"
  tget "pxelinux.cfg/$MACD" | grep -q 'MENU TITLE node1' || fail "old inventory gone"
  # SIGHUP, same file: same outcome
  kill -HUP "$SERVER_PID"; sleep 0.5
  server_alive || fail "died on SIGHUP"
  tget "pxelinux.cfg/$MACD" | grep -q 'MENU TITLE node1' || fail "old inventory gone after SIGHUP"
  # a good file with a new host goes in on SIGHUP
  printf '%s\n%s\n' "$GOOD_HOSTS" '52:54:00:12:34:58,node3,10.0.0.7,debian,r03' >"$T/hosts.csv"
  kill -HUP "$SERVER_PID"
  for i in $(seq 1 30); do tget pxelinux.cfg/01-52-54-00-12-34-58 | grep -q node3 && break; sleep 0.1; done
  tget pxelinux.cfg/01-52-54-00-12-34-58 | grep -q 'MENU TITLE node3' || fail "SIGHUP reload did not take the new host"
}

t_check_reports_every_problem() {
  B=$WORK/broken; rm -rf "$B"; mkdir -p "$B/profiles"
  printf 'kernel = ../escape\ncolour = blue\n' >"$B/profiles/a.conf"
  printf 'label = no kernel\n' >"$B/profiles/b.conf"
  printf 'kernel = d-i/linux\nkickstart = c.ks\n' >"$B/profiles/c.conf"
  printf 'x {{#if ip}}\n' >"$B/profiles/c.ks"
  printf 'kernel = missing/vmlinuz\n' >"$B/profiles/d.conf"
  printf 'mac,hostname,profile\n52:54:00:00:00:01,n1,a\n' >"$B/hosts.csv"
  out=$("$BOOTSTORM" check --hosts "$B/hosts.csv" --profiles "$B/profiles" --tftp-root "$T/tftp" \
        --state-dir "$WORK/state" 2>&1) && rc=0 || rc=$?
  expect_eq "exit status" "$rc" 1
  for want in 'a.conf:1: kernel "../escape": not a relative path' 'a.conf:2: unknown key "colour"' \
              'b.conf: no kernel = ... line' 'c.ks:1: {{#if ip}} never closed' \
              'd.conf: kernel missing/vmlinuz: no such file under --tftp-root' 'hosts.csv:2: profile "a"'; do
    echo "$out" | grep -qF "$want" || fail "check did not report: $want
$out"
  done
}

t_check_ok_and_render() {
  reset_state
  out=$("$BOOTSTORM" check "${KNOBS[@]}" 2>&1) || fail "check failed: $out"
  echo "$out" | grep -q 'ok: 2 hosts, 1 profiles' || fail "$out"
  r=$("$BOOTSTORM" render "${KNOBS[@]}" node1 ipxe 2>/dev/null) || fail "render"
  echo "$r" | grep -q "^kernel http://127.0.0.1:$HPORT/d-i/linux" || fail "$r"
  # the token render prints is the server's (same secret in the state directory)
  expect_eq "render's token" "$(echo "$("$BOOTSTORM" render "${KNOBS[@]}" $MAC kickstart 2>/dev/null)" |
    sed -n 's/.*token=\([0-9a-f]\{64\}\).*/\1/p')" "$(token)"
  ! "$BOOTSTORM" render "${KNOBS[@]}" nobody >/dev/null 2>&1 || fail "render of an unknown host succeeded"
}

run_suite rollout
