#!/usr/bin/env bash
# DHCP in network namespaces, broadcast for real: real clients (dhclient,
# udhcpc, dhcpcd) on a bridge, a reservation, --known-only, proxyDHCP next to
# dnsmasq, perfdhcp as a relay agent (giaddr), and kill -9 under load.
#
# Topology of one test ("world" W; every name unique per run, see netns.sh):
#
#   W-s (server): br0 10.77.0.1/24 ──veth── W-c1, W-c2 ... (clients, eth0)
#                 tr0 10.99.0.1/24 ──veth── W-r (relay: tr1 10.99.0.2/24 and
#                                            10.88.0.1, the giaddr; perfdhcp)
#
# The server's transit address 10.99.0.1 is in no --subnet, so a relayed
# request can only land in 10.88.0.0/24 through its giaddr.
# backends: both
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

for tool in ip python3 dhclient busybox dhcpcd perfdhcp dnsmasq; do
  command -v "$tool" >/dev/null || { echo "missing $tool (make deps)"; echo "0 passed, 1 failed"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces)"; echo "0 passed, 1 failed"; exit 1; }

SUB77="10.77.0.0/24,pool=10.77.0.100-10.77.0.199,router=10.77.0.1,dns=10.77.0.53,domain=it.test,lease=600"
SUB88="10.88.0.0/24,pool=10.88.0.10-10.88.0.250,router=10.88.0.1,dns=10.88.0.53,lease=600"
# the system interpreter: a version-manager shim costs a second per start on a busy machine
PY=$(command -v /usr/bin/python3 || command -v python3)
DHCPC="$PY $WORK/dhcpc.py"

# ---- topology ----

world() { ns_new "$1s" && ns_bridge "$1s" br0 10.77.0.1/24; }
client() { ns_new "$1c$2" && ns_plug "$1s" br0 "$1c$2" eth0 "$3"; }
relay() {
  ns_new "$1r"
  ns_link "$1s" tr0 10.99.0.1/24 "$1r" tr1 10.99.0.2/24
  ip -n "$(ns "$1r")" addr add 10.88.0.1/32 dev tr1
  ip -n "$(ns "$1s")" route add 10.88.0.0/24 via 10.99.0.2
}

# serve W TAG ARGS...: bootstorm in W's server namespace (2 workers, so the
# broadcast de-duplication is exercised); one line per DHCP decision goes to
# $WORK/TAG.out, messages to $WORK/TAG.err; the state dir $WORK/TAG.state is
# kept across restarts.  Sets SERVER_PID.
serve() {
  local w=$1 tag=$2 before i
  shift 2
  mkdir -p "$WORK/$tag.state"
  before=$(grep -c serving "$WORK/$tag.err" 2>/dev/null || true)
  # not through in_ns (a function): $! must be bootstorm itself, for kill -9
  ip netns exec "$(ns "${w}s")" "$BOOTSTORM" serve --backend "$BACKEND" --threads 2 --http-port 8080 \
    --state-dir "$WORK/$tag.state" "$@" >>"$WORK/$tag.out" 2>>"$WORK/$tag.err" &
  SERVER_PID=$!
  for i in $(seq 1 100); do
    [ "$(grep -c serving "$WORK/$tag.err" 2>/dev/null || true)" -gt "${before:-0}" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { SERVER_PID=""; fail "server exited: $(cat "$WORK/$tag.err")"; return 1; }
    sleep 0.1
  done
  fail "server did not start: $(cat "$WORK/$tag.err")"
}

# stop W TAG NS...: graceful stop (SIGTERM), then the namespaces go; fails if a
# sanitizer (BUILD=asan) reported anything, leaks at exit included
stop() {
  local tag=$1
  shift
  stop_server
  ns_drop "$@"
  ! grep -E -A20 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$WORK/$tag.err" || fail "sanitizer report in $tag.err"
}

# in_pool IP FIRST LAST: IP within [FIRST, LAST] (same /24)
in_pool() {
  [ "${1%.*}" = "${2%.*}" ] && [ "${1##*.}" -ge "${2##*.}" ] && [ "${1##*.}" -le "${3##*.}" ] ||
    fail "$1 not in $2-$3"
}

# udhcpc_lease NS ARGS...: "ip=.. dns=.. hostname=.. router=.. boot=.." once bound
cat >"$WORK/udhcpc.sh" <<'SH'
#!/bin/sh
[ "$1" = bound ] && echo "ip=$ip dns=$dns hostname=$hostname router=$router boot=$boot_file bootfile=$bootfile" >"$OUT"
exit 0
SH
chmod +x "$WORK/udhcpc.sh"
udhcpc_lease() {
  local n=$1
  shift
  rm -f "$WORK/udhcpc.$n"
  in_ns "$n" env OUT="$WORK/udhcpc.$n" busybox udhcpc -i eth0 -f -q -n -t 3 -T 1 -s "$WORK/udhcpc.sh" "$@" \
    >"$WORK/udhcpc.$n.log" 2>&1 || { cat "$WORK/udhcpc.$n.log"; return 1; }
  cat "$WORK/udhcpc.$n"
}
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# acks TAG: "mac ip" of every ACK the server logged (a line is written after
# its reply was sent), for relayed and direct clients alike
acks() { sed -n 's/^dhcp REQUEST \([0-9a-f:]*\) .* -> ACK \([0-9.]*\) to .*/\1 \2/p' "$WORK/$1.out"; }

cat >"$WORK/dhcpc.py" <<'PY'
#!/usr/bin/env python3
"""Minimal DHCP client for the integration tests: precise packets, all replies seen.

  dhcpc.py dora MAC [opts]        DISCOVER/OFFER/REQUEST/ACK; prints "ACK ip" or "FAIL why"
  dhcpc.py offers MAC [opts]      DISCOVER, prints every OFFER seen within --wait s (one JSON line each)
  dhcpc.py request MAC --to IP:PORT --ciaddr IP [opts]
                                  unicast REQUEST (proxyDHCP on 4011); prints the reply as JSON
  dhcpc.py reboot FILE [opts]     INIT-REBOOT for each "mac ip" line; prints "mac ip RESULT [ip]"
  dhcpc.py new N PREFIX [opts]    N new clients (MACs PREFIX:00:00..) do DORA; prints "mac ip" per ACK
opts: --iface IF (broadcast from it) | --relay GIADDR --server IP (relay agent on port 67)
      --vendor STR --arch N --uuid HEX --client-id HEX --wait S (per try, 3 tries)
      new: --log FILE (append "mac ip" per ACK as it comes) --gap S --stop-on-fail
"""
import argparse, json, os, random, select, socket, struct, sys, time

def mac_bytes(m): return bytes(int(x, 16) for x in m.split(":"))
def mac_str(b): return ":".join("%02x" % x for x in b[:6])
def ip_b(s): return socket.inet_aton(s)
def ip_s(b): return socket.inet_ntoa(b)

def build(typ, mac, xid, ciaddr="0.0.0.0", giaddr="0.0.0.0", flags=0x8000, opts=()):
    p = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 1 if giaddr != "0.0.0.0" else 0, xid, 0, flags,
                    ip_b(ciaddr), b"\0" * 4, b"\0" * 4, ip_b(giaddr), mac_bytes(mac), b"", b"")
    p += b"\x63\x82\x53\x63" + bytes([53, 1, typ])
    for code, val in opts:
        p += bytes([code, len(val)]) + val
    p += b"\xff"
    return p + b"\0" * max(0, 300 - len(p))

def parse(d):
    if len(d) < 240 or d[236:240] != b"\x63\x82\x53\x63" or d[0] != 2:
        return None
    r = {"xid": struct.unpack("!I", d[4:8])[0], "flags": struct.unpack("!H", d[10:12])[0],
         "ciaddr": ip_s(d[12:16]), "yiaddr": ip_s(d[16:20]), "siaddr": ip_s(d[20:24]), "giaddr": ip_s(d[24:28]),
         "mac": mac_str(d[28:34]), "file": d[108:236].split(b"\0")[0].decode("latin-1"), "opts": {}}
    i = 240
    while i < len(d):
        c = d[i]
        if c == 0: i += 1; continue
        if c == 255 or i + 1 >= len(d): break
        l = d[i + 1]
        r["opts"][c] = r["opts"].get(c, b"") + d[i + 2:i + 2 + l]
        i += 2 + l
    r["type"] = r["opts"].get(53, b"\0")[0]
    return r

def show(r):
    o = {}
    for c, v in r["opts"].items():
        o[str(c)] = v.decode("latin-1") if c in (12, 15, 56, 60, 66, 67) else v.hex()
    out = dict(r); out["opts"] = o
    return json.dumps(out, sort_keys=True)

class Net:
    def __init__(self, a):
        self.a = a
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if a.relay:
            self.s.bind((a.relay, 67)); self.dst = (a.server, 67); self.gi = a.relay
        else:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, a.iface.encode())
            self.s.bind(("0.0.0.0", a.port)); self.dst = ("255.255.255.255", 67); self.gi = "0.0.0.0"
    def send(self, pkt, dst=None): self.s.sendto(pkt, dst or self.dst)
    def recv(self, deadline):
        while True:
            t = deadline - time.time()
            if t <= 0 or not select.select([self.s], [], [], t)[0]:
                return None, None
            d, src = self.s.recvfrom(4096)
            r = parse(d)
            if r: return r, src

def base_opts(a):
    o = [(55, bytes([1, 3, 6, 12, 15, 28, 42, 43, 60, 66, 67, 175]))]
    if a.vendor: o.append((60, a.vendor.encode()))
    if a.arch is not None: o.append((93, struct.pack("!H", a.arch)))
    if a.uuid: o.append((97, b"\0" + bytes.fromhex(a.uuid)))
    if a.client_id: o.append((61, bytes.fromhex(a.client_id)))
    return o

def exchange(n, pkt, xid, want, wait, tries=3):
    for _ in range(tries):
        n.send(pkt)
        end = time.time() + wait
        while True:
            r, src = n.recv(end)
            if r is None: break
            if r["xid"] == xid and r["type"] in want: return r, src
    return None, None

def dora(n, a, mac):
    xid = random.getrandbits(32)
    off, src = exchange(n, build(1, mac, xid, giaddr=n.gi, opts=base_opts(a)), xid, (2,), a.wait)
    if not off: return None, "no offer"
    sid = off["opts"].get(54)
    ack, _ = exchange(n, build(3, mac, xid, giaddr=n.gi, opts=base_opts(a) + [(50, ip_b(off["yiaddr"])), (54, sid)]),
                      xid, (5, 6), a.wait)
    if not ack: return None, "no ack"
    if ack["type"] == 6: return None, "nak"
    return ack, ""

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd"); ap.add_argument("args", nargs="*")
    ap.add_argument("--iface"); ap.add_argument("--relay"); ap.add_argument("--server")
    ap.add_argument("--port", type=int, default=68)
    ap.add_argument("--vendor"); ap.add_argument("--arch", type=int); ap.add_argument("--uuid")
    ap.add_argument("--client-id"); ap.add_argument("--wait", type=float, default=1.0)
    ap.add_argument("--to"); ap.add_argument("--ciaddr"); ap.add_argument("--log")
    ap.add_argument("--gap", type=float, default=0.0); ap.add_argument("--stop-on-fail", action="store_true")
    a = ap.parse_args()
    n = Net(a)
    log = open(a.log, "a", buffering=1) if a.log else None
    if a.cmd == "dora":
        r, why = dora(n, a, a.args[0])
        print("ACK %s" % r["yiaddr"] if r else "FAIL %s" % why)
        if r: print(show(r))
        return 0 if r else 1
    if a.cmd == "offers":
        xid = random.getrandbits(32)
        n.send(build(1, a.args[0], xid, giaddr=n.gi, opts=base_opts(a)))
        end = time.time() + a.wait
        while True:
            r, src = n.recv(end)
            if r is None: return 0
            if r["xid"] == xid and r["type"] == 2:
                r["from"] = src[0]; print(show(r)); sys.stdout.flush()
    if a.cmd == "request":
        host, port = a.to.split(":")
        xid = random.getrandbits(32)
        pkt = build(3, a.args[0], xid, ciaddr=a.ciaddr, flags=0, opts=base_opts(a))
        for _ in range(3):
            n.send(pkt, (host, int(port)))
            r, src = n.recv(time.time() + a.wait)
            if r and r["xid"] == xid:
                r["from"] = "%s:%d" % src; print(show(r)); return 0
        print("FAIL no reply"); return 1
    if a.cmd == "reboot":
        todo = [l.split() for l in open(a.args[0]) if l.strip()]
        bad = 0
        for mac, ip in todo:
            xid = random.getrandbits(32)
            r, _ = exchange(n, build(3, mac, xid, giaddr=n.gi, opts=base_opts(a) + [(50, ip_b(ip))]), xid, (5, 6),
                            a.wait)
            res = "SILENT" if not r else "NAK" if r["type"] == 6 else "ACK %s" % r["yiaddr"]
            ok = res == "ACK %s" % ip
            bad += not ok
            print("%s %s %s%s" % (mac, ip, res, "" if ok else "  <-- lost"))
        return 1 if bad else 0
    if a.cmd == "new":
        count, prefix = int(a.args[0]), a.args[1]
        got = 0
        for i in range(count):
            mac = "%s:%02x:%02x" % (prefix, i >> 8, i & 255)
            r, why = dora(n, a, mac)
            if r:
                got += 1; print("%s %s" % (mac, r["yiaddr"]))
                if log: log.write("%s %s\n" % (mac, r["yiaddr"]))
            else:
                print("%s FAIL %s" % (mac, why))
                if a.stop_on_fail: break
            time.sleep(a.gap)
        return 0 if got == count else 1
    print("unknown command", a.cmd); return 2

if __name__ == "__main__":
    sys.exit(main())
PY

printf 'timeout 10;\nretry 1;\nrequest subnet-mask, routers, domain-name-servers, domain-name, host-name;\n' \
  >"$WORK/dhclient.conf"
# dhcpcd runs its hook with a clean environment: the output path is written in
cat >"$WORK/dhcpcd-hook.sh" <<SH
#!/bin/sh
[ "\$reason" = BOUND ] && echo "ip=\$new_ip_address dns=\$new_domain_name_servers" >"$WORK/dhcpcd.bound"
exit 0
SH
chmod +x "$WORK/dhcpcd-hook.sh"

# ---- tests ----

t_real_clients_get_a_lease_with_dns() {
  world a; client a 1 52:54:00:a0:00:01; client a 2 52:54:00:a0:00:02; client a 3 52:54:00:a0:00:03
  serve a a --subnet "$SUB77"
  # ISC dhclient: -sf /bin/true leaves the interface alone, the lease file says what it got
  in_ns ac1 timeout 20 dhclient -4 -1 -sf /bin/true -cf "$WORK/dhclient.conf" -lf "$WORK/a.dhclient.leases" \
    -pf "$WORK/a.dhclient.pid" eth0 >"$WORK/a.dhclient.log" 2>&1 || fail "dhclient: $(cat "$WORK/a.dhclient.log")"
  local ip1 ip2 ip3 l
  ip1=$(sed -n 's/^ *fixed-address \(.*\);/\1/p' "$WORK/a.dhclient.leases" | tail -n1)
  in_pool "$ip1" 10.77.0.100 10.77.0.199
  grep -q 'option domain-name-servers 10.77.0.53;' "$WORK/a.dhclient.leases" || fail "dhclient: no DNS"
  grep -q 'option routers 10.77.0.1;' "$WORK/a.dhclient.leases" || fail "dhclient: no router"
  # busybox udhcpc
  l=$(udhcpc_lease ac2)
  ip2=$(field "$l" ip)
  in_pool "$ip2" 10.77.0.100 10.77.0.199
  expect_eq "udhcpc dns" "$(field "$l" dns)" 10.77.0.53
  # dhcpcd: its DUID and lease files in a private tmpfs, so nothing of the host is used or left
  in_ns ac3 sh -c "mount -t tmpfs tmpfs /var/lib/dhcpcd && mkdir -p /run/dhcpcd && mount -t tmpfs tmpfs /run/dhcpcd &&
    timeout 20 dhcpcd -4 -1 -B --noarp -t 15 -c '$WORK/dhcpcd-hook.sh' eth0" \
    >"$WORK/a.dhcpcd.log" 2>&1 || fail "dhcpcd: $(cat "$WORK/a.dhcpcd.log")"
  l=$(cat "$WORK/dhcpcd.bound")
  ip3=$(field "$l" ip)
  in_pool "$ip3" 10.77.0.100 10.77.0.199
  expect_eq "dhcpcd dns" "$(field "$l" dns)" 10.77.0.53
  [ "$ip1" != "$ip2" ] && [ "$ip2" != "$ip3" ] && [ "$ip1" != "$ip3" ] || fail "duplicate: $ip1 $ip2 $ip3"
  stop a as ac1 ac2 ac3
}

t_same_mac_other_client_id_gets_the_same_ip() {
  world b; client b 1 52:54:00:b0:00:01
  serve b b --subnet "$SUB77"
  local a b c n
  a=$(field "$(udhcpc_lease bc1)" ip)                                # client-id 01+MAC
  b=$(field "$(udhcpc_lease bc1 -x 0x3d:ff00000001000100012b3c4d5e525400b00001)" ip) # RFC 4361 IAID+DUID
  c=$(field "$(udhcpc_lease bc1 -C -V d-i)" ip)                       # none, as the installer's firmware stage
  in_pool "$a" 10.77.0.100 10.77.0.199
  expect_eq "DUID client-id" "$b" "$a"
  expect_eq "no client-id" "$c" "$a"
  # two workers share the port: each broadcast is answered exactly once
  for m in 02:00:00:00:b0:01 02:00:00:00:b0:02 02:00:00:00:b0:03; do
    n=$(in_ns bc1 $DHCPC offers "$m" --iface eth0 --wait 1 | wc -l)
    expect_eq "offers for $m" "$n" 1
  done
  stop b bs bc1
}

t_reservation_from_the_inventory() {
  world c; client c 1 52:54:00:c0:00:01; client c 2 52:54:00:c0:00:02
  printf 'mac,hostname,ip\n52:54:00:c0:00:01,node20,10.77.0.20\n52:54:00:c0:00:99,absent,10.77.0.100\n' \
    >"$WORK/c.hosts.csv"
  serve c c --subnet "$SUB77" --hosts "$WORK/c.hosts.csv"
  local l
  l=$(udhcpc_lease cc1)
  expect_eq "reserved address" "$(field "$l" ip)" 10.77.0.20
  expect_eq "inventory host name" "$(field "$l" hostname)" node20
  # 10.77.0.100 (the pool's first address) is reserved for a machine that is
  # not here: a dynamic client never gets it
  l=$(udhcpc_lease cc2)
  in_pool "$(field "$l" ip)" 10.77.0.101 10.77.0.199
  stop c cs cc1 cc2
}

t_known_only_ignores_a_stranger() {
  world d; client d 1 52:54:00:d0:00:01; client d 2 52:54:00:d0:00:02
  printf 'mac,hostname,ip\n52:54:00:d0:00:01,known1,\n' >"$WORK/d.hosts.csv"
  serve d d --subnet "$SUB77" --hosts "$WORK/d.hosts.csv" --known-only
  in_pool "$(field "$(udhcpc_lease dc1)" ip)" 10.77.0.100 10.77.0.199
  if in_ns dc2 busybox udhcpc -i eth0 -f -q -n -t 1 -T 1 -s "$WORK/udhcpc.sh" >/dev/null 2>&1; then
    fail "the stranger got a lease"
  fi
  in_ns dc2 $DHCPC offers 52:54:00:d0:00:02 --iface eth0 --wait 0.5 >"$WORK/d.offers"
  [ ! -s "$WORK/d.offers" ] || fail "offer to a stranger: $(cat "$WORK/d.offers")"
  expect_eq "stranger logged once" "$(grep -c '52:54:00:d0:00:02 is not in the inventory' "$WORK/d.err")" 1
  ! grep -q 'OFFER.*52:54:00:d0:00:02\|52:54:00:d0:00:02.*-> OFFER' "$WORK/d.out" || fail "stranger offered"
  stop d ds dc1 dc2
}

t_proxy_dhcp_next_to_dnsmasq_gives_the_boot_file_only() {
  world e; client e 1 52:54:00:e0:00:01; client e 2 52:54:00:e0:00:02
  ns_new ed; ns_plug es br0 ed eth0 52:54:00:e0:00:d0 10.77.0.2/24
  in_ns ed dnsmasq -k -u root --conf-file=/dev/null --port=0 --interface=eth0 --bind-interfaces \
    --dhcp-range=10.77.0.150,10.77.0.160,255.255.255.0,10m --no-ping --dhcp-leasefile="$WORK/e.dnsmasq.leases" \
    --pid-file="$WORK/e.dnsmasq.pid" >"$WORK/e.dnsmasq.log" 2>&1 &
  serve e e --proxy-dhcp
  sleep 0.3 # dnsmasq up
  local pxe='--vendor PXEClient:Arch:00007:UNDI:003000 --arch 7 --uuid 00112233445566778899aabbccddeeff'
  in_ns ec1 $DHCPC offers 52:54:00:e0:00:01 --iface eth0 --wait 1.5 $pxe >"$WORK/e.offers"
  expect_eq "offers (dnsmasq + proxy)" "$(wc -l <"$WORK/e.offers")" 2
  $PY - "$WORK/e.offers" <<'PY' || fail "offers: $(cat "$WORK/e.offers")"
import json, sys
o = {r["from"]: r for r in map(json.loads, open(sys.argv[1]))}
d, p = o["10.77.0.2"], o["10.77.0.1"]
assert d["yiaddr"].startswith("10.77.0.1") and 150 <= int(d["yiaddr"].split(".")[3]) <= 160, d
assert p["yiaddr"] == "0.0.0.0", p                   # never an address
assert p["file"] == "grubx64.efi" and p["opts"]["67"] == "grubx64.efi", p
assert p["siaddr"] == "10.77.0.1" and p["opts"]["54"] == "0a4d0001", p
assert p["opts"]["60"] == "PXEClient" and p["opts"]["43"] == "060108ff", p
assert p["opts"]["97"] == "0000112233445566778899aabbccddeeff", p
assert "51" not in p["opts"] and "1" not in p["opts"], p
print(d["yiaddr"])
PY
  local yi
  yi=$($PY -c 'import json,sys;print([r for r in map(json.loads,open(sys.argv[1])) if r["from"]=="10.77.0.2"][0]["yiaddr"])' "$WORK/e.offers")
  # with that address, the firmware asks the boot server on 4011 and is answered there
  ip -n "$(ns ec1)" addr add "$yi/24" dev eth0
  in_ns ec1 $DHCPC request 52:54:00:e0:00:01 --iface eth0 --to 10.77.0.1:4011 --ciaddr "$yi" $pxe >"$WORK/e.4011"
  $PY - "$WORK/e.4011" <<'PY' || fail "4011: $(cat "$WORK/e.4011")"
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["from"] == "10.77.0.1:4011" and r["type"] == 5, r
assert r["yiaddr"] == "0.0.0.0" and r["file"] == "grubx64.efi", r
PY
  # a machine that is not a PXE client is left to dnsmasq alone
  in_pool "$(field "$(udhcpc_lease ec2)" ip)" 10.77.0.150 10.77.0.160
  grep -q '52:54:00:e0:00:02 .*ignored: not a PXE client' "$WORK/e.out" || fail "no 'not a PXE client' line"
  stop e es ec1 ec2 ed
}

t_relayed_requests_land_in_the_giaddr_subnet() {
  world f; relay f
  serve f f --subnet "$SUB77" --subnet "$SUB88"
  # perfdhcp binds port 67 itself and sets giaddr to its address, 10.88.0.1
  in_ns fr timeout 30 perfdhcp -4 -l 10.88.0.1 -r 200 -n 100 -R 100 -W 500000 -b mac=00:0c:01:00:00:00 \
    10.99.0.1 >"$WORK/f.perfdhcp" 2>&1 || fail "perfdhcp: $(tail -n 30 "$WORK/f.perfdhcp")"
  local sent got
  sent=$(sed -n '/REQUEST-ACK/,$p' "$WORK/f.perfdhcp" | sed -n 's/^sent packets: //p' | head -n1)
  got=$(sed -n '/REQUEST-ACK/,$p' "$WORK/f.perfdhcp" | sed -n 's/^received packets: //p' | head -n1)
  [ "${sent:-0}" -ge 100 ] || fail "perfdhcp sent only '$sent' REQUESTs"
  expect_eq "ACKs received by perfdhcp" "$got" "$sent"
  acks f >"$WORK/f.acks"
  expect_eq "ACKs logged" "$(wc -l <"$WORK/f.acks")" "$got"
  expect_eq "ACKs outside 10.88.0.0/24" "$(grep -vc ' 10\.88\.0\.' "$WORK/f.acks" || true)" 0
  # machines that came back kept their address: one address per machine
  expect_eq "addresses per machine" "$(sort -u "$WORK/f.acks" | wc -l)" "$(awk '{print $1}' "$WORK/f.acks" | sort -u | wc -l)"
  expect_eq "machines per address" "$(sort -u "$WORK/f.acks" | wc -l)" "$(awk '{print $2}' "$WORK/f.acks" | sort -u | wc -l)"
  grep -q -- '-> ACK 10.88.0.[0-9]* to 10.88.0.1:67' "$WORK/f.out" || fail "replies not sent to the relay"
  stop f fs fr
}

t_dhcp_arp_unicasts_to_a_client_without_address() {
  world g; client g 1 52:54:00:90:00:01
  serve g g --subnet "$SUB77" --dhcp-arp
  local ip
  ip=$(field "$(udhcpc_lease gc1)" ip) # udhcpc leaves the broadcast flag clear
  in_pool "$ip" 10.77.0.100 10.77.0.199
  grep -q -- "-> ACK $ip to $ip:68" "$WORK/g.out" || fail "not unicast: $(cat "$WORK/g.out")"
  ip -n "$(ns gs)" neigh show "$ip" | grep -qi '52:54:00:90:00:01' || fail "no ARP entry for $ip"
  stop g gs gc1
}

# kill -9 under load, then restart.  What must hold (issue 3): no acknowledged
# lease is lost, no address is given to two machines.  The check:
#  1. load: perfdhcp (relayed, 200 machines, some returning) and a python
#     client on the bridge doing one DORA after another, each ACK it receives
#     recorded at once; the server is killed with SIGKILL in the middle;
#  2. the evidence of acknowledgement: the python client's received ACKs, and
#     every ACK line in the server's log (a line is written only after its
#     datagram was sent, so a logged ACK did leave; the converse need not hold);
#  3. after a restart on the same state directory, every acknowledged client
#     does an INIT-REBOOT (RFC 2131 §4.3.2: REQUEST with option 50, no server
#     id) and must get an ACK for the same address: a lost lease would be
#     met with silence ("no record"), a reused one with a NAK;
#  4. new machines (bridge and relayed) get addresses, none of which any
#     acknowledged machine holds, and over the whole run no address is ACKed
#     to two hardware addresses.
kill9_under_load() {
  local w=$1
  shift
  world $w; relay $w; client $w 1 52:54:00:b9:00:01
  serve $w $w "$@" --subnet "${SUB77/pool=10.77.0.100-10.77.0.199/pool=10.77.0.10-10.77.0.250}" --subnet "$SUB88"
  local pd py i
  # started with ip netns exec directly, so that $! is the tool itself
  ip netns exec "$(ns ${w}r)" perfdhcp -4 -l 10.88.0.1 -r 400 -p 20 -R 200 -b mac=00:0c:02:00:00:00 10.99.0.1 \
    >"$WORK/$w.perfdhcp" 2>&1 &
  pd=$!
  ip netns exec "$(ns ${w}c1)" $DHCPC new 150 02:aa:00:00 --iface eth0 --gap 0.005 --wait 0.3 --stop-on-fail \
    --log "$WORK/$w.bridge-acked" >/dev/null 2>&1 &
  py=$!
  # kill in the middle of the load: once both kinds of client have leases
  for i in $(seq 1 100); do
    [ "$(wc -l <"$WORK/$w.bridge-acked" 2>/dev/null || echo 0)" -ge 5 ] &&
      [ "$(acks $w | grep -c ' 10\.88\.' || true)" -ge 30 ] && break
    sleep 0.1
  done
  kill -9 "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  kill -INT "$pd" 2>/dev/null || true
  wait "$pd" || true
  wait "$py" || true
  local n_bridge n_relayed
  n_bridge=$(wc -l <"$WORK/$w.bridge-acked")
  acks $w | grep ' 10\.88\.' | sort -u >"$WORK/$w.relay-acked"
  n_relayed=$(wc -l <"$WORK/$w.relay-acked")
  [ "$n_bridge" -ge 5 ] && [ "$n_relayed" -ge 30 ] || fail "too little load before the kill: $n_bridge/$n_relayed"
  cp "$WORK/$w.out" "$WORK/$w.out.before"

  serve $w $w "$@" --subnet "${SUB77/pool=10.77.0.100-10.77.0.199/pool=10.77.0.10-10.77.0.250}" --subnet "$SUB88"
  in_ns ${w}c1 $DHCPC reboot "$WORK/$w.bridge-acked" --iface eth0 --wait 0.5 >"$WORK/$w.reboot-bridge" ||
    fail "bridge clients lost their lease: $(grep lost "$WORK/$w.reboot-bridge" | head)"
  in_ns ${w}r $DHCPC reboot "$WORK/$w.relay-acked" --relay 10.88.0.1 --server 10.99.0.1 --wait 0.5 \
    >"$WORK/$w.reboot-relay" || fail "relayed clients lost their lease: $(grep lost "$WORK/$w.reboot-relay" | head)"
  in_ns ${w}c1 $DHCPC new 20 02:bb:00:00 --iface eth0 --wait 0.5 >"$WORK/$w.new-bridge" || fail "new bridge clients"
  in_ns ${w}r $DHCPC new 20 02:cc:00:00 --relay 10.88.0.1 --server 10.99.0.1 --wait 0.5 >"$WORK/$w.new-relay" ||
    fail "new relayed clients"
  cat "$WORK/$w.bridge-acked" "$WORK/$w.relay-acked" | awk '{print $2}' | sort -u >"$WORK/$w.held"
  cat "$WORK/$w.new-bridge" "$WORK/$w.new-relay" | awk '{print $2}' | sort >"$WORK/$w.new"
  expect_eq "new clients given a held address" "$(comm -12 "$WORK/$w.held" "$WORK/$w.new" | tr '\n' ' ')" ""
  # over both runs: one hardware address per acknowledged IP
  cat "$WORK/$w.bridge-acked" <(acks $w) | sort -u | awk '{print $2}' | sort | uniq -d >"$WORK/$w.dups"
  [ ! -s "$WORK/$w.dups" ] || fail "addresses ACKed to two machines: $(head "$WORK/$w.dups")"
  grep -q "leases loaded" "$WORK/$w.err" || fail "no load report"
  stop $w ${w}s ${w}r ${w}c1
}
t_kill9_under_load_loses_no_acknowledged_lease() { kill9_under_load k; }
# --fsync-interval-ms 0: ACKs wait for the syncer's fdatasync (held by the
# worker, not sent with the turn's other replies); the same must hold
t_kill9_with_fsync_before_every_ack_loses_nothing() { kill9_under_load q --fsync-interval-ms 0; }

# A second DHCP server on the same port and interface would hand out the same
# addresses from its own lease table: it must refuse to start, with one line
# naming the port, while the first goes on answering.  On another interface
# it may start (SO_BINDTODEVICE: the two never see each other's requests).
# --proxy-dhcp refuses a taken 4011 the same way.
t_second_server_on_the_same_dhcp_port_is_refused() {
  world h; relay h; client h 1 52:54:00:c8:00:01; client h 2 52:54:00:c8:00:02
  serve h h --subnet "$SUB77" --interface br0
  in_pool "$(field "$(udhcpc_lease hc1)" ip)" 10.77.0.100 10.77.0.199
  local args rc pid i
  # second() TAG ARGS...: a second bootstorm in the same namespace, its own HTTP
  # port and state directory, so that only the DHCP port can stop it; rc in $rc
  second() {
    local tag=$1; shift
    mkdir -p "$WORK/$tag.state"
    rc=0
    timeout 20 ip netns exec "$(ns hs)" "$BOOTSTORM" serve --backend "$BACKEND" --threads 1 --http-port 8081 \
      --state-dir "$WORK/$tag.state" "$@" >"$WORK/$tag.out" 2>"$WORK/$tag.err" || rc=$?
  }
  for args in "" "--interface br0"; do
    # shellcheck disable=SC2086
    second h2 --subnet "$SUB77" $args
    expect_eq "exit status of a second server ($args)" "$rc" 1
    expect_eq "lines it printed ($args)" "$(wc -l <"$WORK/h2.err")" 1
    grep -q '^bootstorm: udp port 0\.0\.0\.0:67: .*another DHCP server' "$WORK/h2.err" ||
      fail "message: $(cat "$WORK/h2.err")"
    [ -z "$args" ] || grep -q ' on br0 ' "$WORK/h2.err" || fail "interface not named: $(cat "$WORK/h2.err")"
    [ ! -s "$WORK/h2.state/leases.journal" ] || fail "the refused server wrote a journal"
  done
  kill -0 "$SERVER_PID" || fail "the first server died"
  in_pool "$(field "$(udhcpc_lease hc2)" ip)" 10.77.0.100 10.77.0.199
  expect_eq "same lease again from the first server" "$(field "$(udhcpc_lease hc1)" ip)" \
    "$(sed -n 's/^dhcp REQUEST 52:54:00:c8:00:01 .* -> ACK \([0-9.]*\) .*/\1/p' "$WORK/h.out" | head -n1)"
  # another interface: no conflict, it serves
  mkdir -p "$WORK/h3.state"
  ip netns exec "$(ns hs)" "$BOOTSTORM" serve --backend "$BACKEND" --threads 1 --http-port 8082 \
    --state-dir "$WORK/h3.state" --subnet "$SUB88" --interface tr0 >"$WORK/h3.out" 2>"$WORK/h3.err" &
  pid=$!
  wait_serving "$pid" "$WORK/h3.err" || { kill -9 "$pid" 2>/dev/null; fail "refused on tr0 (above)"; }
  kill -TERM "$pid"; wait "$pid" || true
  # proxyDHCP: 4011 held by someone else
  in_ns hs $PY -c 'import socket,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("0.0.0.0",4011));print("held",flush=True);time.sleep(30)' \
    >"$WORK/h.holder" 2>&1 &
  pid=$!
  for i in $(seq 1 50); do grep -q held "$WORK/h.holder" && break; sleep 0.1; done
  second h4 --proxy-dhcp --dhcp-port 1067
  kill "$pid"; wait "$pid" 2>/dev/null || true
  expect_eq "exit status with 4011 taken" "$rc" 1
  expect_eq "lines it printed (4011)" "$(wc -l <"$WORK/h4.err")" 1
  grep -q '^bootstorm: udp port 0\.0\.0\.0:4011: .*another DHCP server' "$WORK/h4.err" ||
    fail "message: $(cat "$WORK/h4.err")"
  stop h hs hr hc1 hc2
}

# A profile's loader_bios / loader_efi64 reaches real clients in both the
# BOOTP 'file' field and option 67; a host whose profile has none gets
# --boot-bios / --boot-efi64.
t_profile_loader_reaches_a_real_client() {
  world i; client i 1 52:54:00:c9:00:01; client i 2 52:54:00:c9:00:02
  mkdir -p "$WORK/i.profiles"
  printf 'kernel = rhel9/vmlinuz\nloader_bios = rhel9/lpxelinux.0\nloader_efi64 = rhel9/shimx64.efi\n' \
    >"$WORK/i.profiles/rhel9.conf"
  printf 'kernel = plain/vmlinuz\n' >"$WORK/i.profiles/plain.conf"
  printf 'mac,hostname,ip,profile\n52:54:00:c9:00:01,node1,,rhel9\n52:54:00:c9:00:02,node2,,plain\n' \
    >"$WORK/i.hosts.csv"
  serve i i --subnet "$SUB77" --hosts "$WORK/i.hosts.csv" --profiles "$WORK/i.profiles"
  local bios='-V PXEClient:Arch:00000:UNDI:002001 -x 0x5d:0000' efi='-V PXEClient:Arch:00007:UNDI:003000 -x 0x5d:0007'
  local l
  # shellcheck disable=SC2086
  l=$(udhcpc_lease ic1 -O bootfile $bios)
  expect_eq "udhcpc BIOS boot_file (header)" "$(field "$l" boot)" rhel9/lpxelinux.0
  expect_eq "udhcpc BIOS bootfile (option 67)" "$(field "$l" bootfile)" rhel9/lpxelinux.0
  # shellcheck disable=SC2086
  l=$(udhcpc_lease ic1 -O bootfile $efi)
  expect_eq "udhcpc UEFI boot_file" "$(field "$l" boot)" rhel9/shimx64.efi
  expect_eq "udhcpc UEFI bootfile" "$(field "$l" bootfile)" rhel9/shimx64.efi
  # shellcheck disable=SC2086
  l=$(udhcpc_lease ic2 -O bootfile $bios)
  expect_eq "no profile loader: --boot-bios" "$(field "$l" boot)" pxelinux.0
  # shellcheck disable=SC2086
  l=$(udhcpc_lease ic2 -O bootfile $efi)
  expect_eq "no profile loader: --boot-efi64" "$(field "$l" boot)" grubx64.efi
  # ISC dhclient as a BIOS PXE client: the lease file's 'filename' is the header field
  { cat "$WORK/dhclient.conf"; echo 'send vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";'
    echo 'also request bootfile-name;'; } >"$WORK/i.dhclient.conf"
  in_ns ic1 timeout 20 dhclient -4 -1 -sf /bin/true -cf "$WORK/i.dhclient.conf" -lf "$WORK/i.dhclient.leases" \
    -pf "$WORK/i.dhclient.pid" eth0 >"$WORK/i.dhclient.log" 2>&1 || fail "dhclient: $(cat "$WORK/i.dhclient.log")"
  grep -q '^ *filename "rhel9/lpxelinux.0";' "$WORK/i.dhclient.leases" ||
    fail "dhclient lease: $(cat "$WORK/i.dhclient.leases")"
  grep -q 'option bootfile-name "rhel9/lpxelinux.0";' "$WORK/i.dhclient.leases" ||
    fail "dhclient option 67: $(cat "$WORK/i.dhclient.leases")"
  stop i is ic1 ic2
}

run_suite dhcp
