#!/usr/bin/env bash
# TFTP against the real server on loopback: tftp-hpa, atftp, curl and busybox,
# raw packets (tests/integration: tftplib below), the real clients' requests from
# the fixtures, and a lossy, reordering relay (udp_relay.py).
# backends: both
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
FIXTURES=${FIXTURES:-$HERE/../../../shared/fixtures/real-clients.json}
[ -f "$FIXTURES" ] || FIXTURES=/work/shared/fixtures/real-clients.json

ROOT=$WORK/root
mkdir -p "$ROOT/sub" "$ROOT/dir" "$ROOT/pxelinux.cfg"
head -c 40960 /dev/urandom >"$ROOT/loader.0"                      # a 40 KiB loader
head -c $((10*1024*1024)) /dev/urandom >"$ROOT/sub/kernel"         # a 10 MiB kernel
head -c $((32*1024*1024+1000)) /dev/urandom >"$ROOT/big.img"       # > 32 MiB: 65538 blocks at 512
head -c $((512*100)) /dev/urandom >"$ROOT/exact512"                # ends with an empty DATA
head -c $((1468*40)) /dev/urandom >"$ROOT/exact1468"
head -c $((512*1024)) /dev/urandom >"$ROOT/mid.img"                # for the lossy path
: >"$ROOT/empty"
printf 'DEFAULT linux\r\nLABEL linux\n  KERNEL sub/kernel\rCR alone\r\n\n\r' >"$ROOT/pxelinux.cfg/default"
echo secret >"$WORK/outside.txt"
ln -s "$WORK/outside.txt" "$ROOT/escape"
ln -s loader.0 "$ROOT/inside-link"
mkfifo "$ROOT/fifo"
TPORT=$(free_port)
start_server --listen 127.0.0.1 --http-port "$(free_port)" --tftp-root "$ROOT" --tftp-port "$TPORT" --threads 2 \
  --state-dir "$WORK/state" || exit 1
LOG=$WORK/access.log

# ---- a raw TFTP client for what the real clients cannot show ----------------------
cat >"$WORK/tftplib.py" <<'PY'
import socket, struct, time

class TftpError(Exception):
    def __init__(self, code, msg):
        super().__init__("ERROR %d %s" % (code, msg)); self.code = code; self.msg = msg

def rrq(name, opts=None, mode="octet", op=1):
    b = struct.pack("!H", op) + (name.encode("latin-1") if isinstance(name, str) else name) + b"\0"
    b += mode.encode() + b"\0"
    for k, v in (opts or {}).items():
        b += k.encode() + b"\0" + str(v).encode() + b"\0"
    return b

def parse(p):
    op = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 0
    d = {"op": op, "raw": p}
    if op in (3, 4) and len(p) >= 4:
        d["block"] = struct.unpack("!H", p[2:4])[0]; d["data"] = p[4:]
    elif op == 5 and len(p) >= 4:
        d["code"] = struct.unpack("!H", p[2:4])[0]; d["msg"] = p[4:].split(b"\0")[0].decode("latin-1")
    elif op == 6:
        parts = p[2:].split(b"\0")[:-1]
        d["opts"] = {parts[i].decode().lower(): parts[i + 1].decode() for i in range(0, len(parts) - 1, 2)}
    return d

class Peer:
    def __init__(self, port, host="127.0.0.1"):
        self.server = (host, port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.port = self.s.getsockname()[1]
        self.strays = []          # packets from a source other than the transfer's TID
    def send(self, pkt, to=None):
        self.s.sendto(pkt, to or self.server)
    def recv(self, timeout=2.0):
        self.s.settimeout(timeout)
        try:
            p, a = self.s.recvfrom(70000)
            return parse(p), a
        except socket.timeout:
            return None, None
    def ack(self, block, to):
        self.send(struct.pack("!HH", 4, block & 0xFFFF), to)
    def error(self, code, msg, to):
        self.send(struct.pack("!HH", 5, code) + msg.encode() + b"\0", to)

def fetch(peer, name=None, opts=None, first=None, addr=None, mode="octet"):
    """Receives one file as an RFC 7440 receiver.  Returns (data, oack, tid)."""
    if first is None:
        peer.send(rrq(name, opts, mode))
        first, addr = peer.recv()
    if first is None:
        raise RuntimeError("no answer to the request")
    if first["op"] == 5:
        raise TftpError(first["code"], first["msg"])
    tid, oack, blksize, window = addr, None, 512, 1
    data, expected, since_ack, in_order, tries = bytearray(), 1, 0, True, 0
    pkt = first
    if pkt["op"] == 6:
        oack = pkt["opts"]
        blksize = int(oack.get("blksize", 512)); window = int(oack.get("windowsize", 1))
        peer.ack(0, tid); pkt = None
    while True:
        if pkt is None:
            pkt, addr = peer.recv(1.0)
            if pkt is None:
                tries += 1
                if tries > 15:
                    raise RuntimeError("transfer stalled at block %d" % expected)
                peer.ack(expected - 1, tid)
                continue
        if addr != tid:
            peer.strays.append((addr, pkt)); pkt = None; continue
        tries = 0
        if pkt["op"] == 5:
            raise TftpError(pkt["code"], pkt["msg"])
        if pkt["op"] == 3:
            if pkt["block"] == expected & 0xFFFF:
                data += pkt["data"]; expected += 1; since_ack += 1; in_order = True
                if len(pkt["data"]) < blksize:
                    peer.ack(pkt["block"], tid)
                    return bytes(data), oack, tid
                if since_ack >= window:
                    peer.ack(pkt["block"], tid); since_ack = 0
            elif in_order:                      # a gap: say where we are, once
                peer.ack(expected - 1, tid); since_ack = 0; in_order = False
        pkt = None
PY
py() { PYTHONPATH=$WORK python3 - "$@"; }
sha() { sha256sum <"$1" | cut -d' ' -f1; }
same() { cmp -s "$1" "$2" || fail "$1 differs from $2 ($(stat -c %s "$1" 2>/dev/null || echo none) vs $(stat -c %s "$2") bytes)"; }
# log_has REGEX: the access log gets a line matching it within 2 s (it is flushed from the idle hook)
log_has() {
  local i
  for i in $(seq 1 20); do grep -qE "$1" "$LOG" && return 0; sleep 0.1; done
  fail "no log line matching: $1"
}
# no_sanitizer_reports LOG: an ASan/UBSan/LSan build reports into the server's stderr
no_sanitizer_reports() {
  ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$1" || fail "sanitizer report in $1: $(grep -m3 -E 'Sanitizer|runtime error' "$1")"
}
# aux_server NAME ARGS...: a second server (other knobs); its pid in AUX_PID, port in AUX_PORT
aux_server() {
  local name=$1; shift
  AUX_PORT=$(free_port)
  "$BOOTSTORM" serve --backend "$BACKEND" --listen 127.0.0.1 --http-port "$(free_port)" --tftp-port "$AUX_PORT" \
    --state-dir "$WORK/state-$name" "$@" >"$WORK/$name.access" 2>"$WORK/$name.log" &
  AUX_PID=$!
  wait_serving "$AUX_PID" "$WORK/$name.log" || fail "aux server $name did not start"
}

# ---- real clients ---------------------------------------------------------------

t_tftp_hpa_octet() {
  (cd "$WORK" && timeout 30 tftp 127.0.0.1 "$TPORT" -m binary -c get loader.0 hpa1)
  same "$WORK/hpa1" "$ROOT/loader.0"
  (cd "$WORK" && timeout 30 tftp 127.0.0.1 "$TPORT" -m binary -c get sub/kernel hpa2)
  same "$WORK/hpa2" "$ROOT/sub/kernel"
  log_has "RRQ \"sub/kernel\" bytes=$((10*1024*1024)) blksize=512 window=1 .* done"
}
t_tftp_hpa_netascii_default_mode() {
  # tftp-hpa asks netascii unless told otherwise: LF <-> CR LF, CR <-> CR NUL both ways
  (cd "$WORK" && timeout 30 tftp 127.0.0.1 "$TPORT" -c get pxelinux.cfg/default hpa3)
  same "$WORK/hpa3" "$ROOT/pxelinux.cfg/default"
  (cd "$WORK" && timeout 30 tftp 127.0.0.1 "$TPORT" -c get loader.0 hpa4)
  same "$WORK/hpa4" "$ROOT/loader.0"
  # the netascii stream is longer than the file: tsize and block count follow it
  py "$TPORT" <<'PY'
import os, sys, tftplib
raw = open(os.environ["ROOT"] + "/pxelinux.cfg/default", "rb").read()
p = tftplib.Peer(int(sys.argv[1]))
data, oack, _ = tftplib.fetch(p, "pxelinux.cfg/default", {"tsize": 0, "blksize": 8}, mode="netascii")
want = raw.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")
assert data == want, (data, want)
assert int(oack["tsize"]) == len(want) == len(raw) + raw.count(b"\r") + raw.count(b"\n"), oack
PY
}
t_atftp_windowsize_blksize() {
  timeout 30 atftp --option "blksize 1468" --option "windowsize 16" -g -r sub/kernel -l "$WORK/at1" 127.0.0.1 "$TPORT"
  same "$WORK/at1" "$ROOT/sub/kernel"
  log_has "RRQ \"sub/kernel\" bytes=$((10*1024*1024)) blksize=1468 window=16 .* done"
  # a window bigger than --tftp-window-max (64) is capped, not refused
  timeout 30 atftp --option "blksize 8192" --option "windowsize 200" -g -r loader.0 -l "$WORK/at2" 127.0.0.1 "$TPORT"
  same "$WORK/at2" "$ROOT/loader.0"
  log_has "RRQ \"loader.0\" bytes=40960 blksize=8192 window=64 "
}
t_curl_tftp_blksize() {
  timeout 30 curl -sf --tftp-blksize 1468 "tftp://127.0.0.1:$TPORT/sub/kernel" -o "$WORK/c1"
  same "$WORK/c1" "$ROOT/sub/kernel"
  timeout 30 curl -sf --tftp-blksize 8192 "tftp://127.0.0.1:$TPORT/loader.0" -o "$WORK/c2"
  same "$WORK/c2" "$ROOT/loader.0"
  log_has "RRQ \"sub/kernel\" bytes=$((10*1024*1024)) blksize=1468 window=1 "
}
t_busybox_tftp_blksize() {
  timeout 30 busybox tftp -b 1468 -g -r sub/kernel -l "$WORK/b1" 127.0.0.1 "$TPORT"
  same "$WORK/b1" "$ROOT/sub/kernel"
  timeout 30 busybox tftp -g -r loader.0 -l "$WORK/b2" 127.0.0.1 "$TPORT"
  same "$WORK/b2" "$ROOT/loader.0"
}
t_rollover_over_32mib_at_blksize_512() {
  # 65538 blocks: the block number wraps to 0 after 65535 (what clients expect)
  (cd "$WORK" && timeout 60 tftp 127.0.0.1 "$TPORT" -m binary -c get big.img r1) &
  timeout 60 atftp --option "blksize 512" --option "windowsize 16" -g -r big.img -l "$WORK/r2" 127.0.0.1 "$TPORT"
  wait $!
  want=$(sha "$ROOT/big.img")
  expect_eq "tftp-hpa sha256" "$(sha "$WORK/r1")" "$want"
  expect_eq "atftp sha256" "$(sha "$WORK/r2")" "$want"
  rm -f "$WORK/r1" "$WORK/r2"
  log_has "RRQ \"big.img\" bytes=$((32*1024*1024+1000)) blksize=512 window=16 .* done"
}
t_exact_multiple_and_empty_files() {
  # a size that is a multiple of blksize ends with a 0-byte DATA; a client that
  # did not get it would hang, not finish
  (cd "$WORK" && timeout 20 tftp 127.0.0.1 "$TPORT" -m binary -c get exact512 e1)
  same "$WORK/e1" "$ROOT/exact512"
  timeout 20 atftp --option "blksize 1468" --option "windowsize 8" -g -r exact1468 -l "$WORK/e2" 127.0.0.1 "$TPORT"
  same "$WORK/e2" "$ROOT/exact1468"
  timeout 20 curl -sf --tftp-blksize 1468 "tftp://127.0.0.1:$TPORT/exact1468" -o "$WORK/e3"
  same "$WORK/e3" "$ROOT/exact1468"
  # (not curl for the empty file: curl 7.88 rejects the correct "tsize 0" in an OACK)
  (cd "$WORK" && timeout 20 tftp 127.0.0.1 "$TPORT" -m binary -c get empty e4)
  expect_eq "empty file" "$(stat -c %s "$WORK/e4")" 0
  timeout 20 busybox tftp -g -r empty -l "$WORK/e5" 127.0.0.1 "$TPORT"
  expect_eq "empty file (busybox)" "$(stat -c %s "$WORK/e5")" 0
  got=$(py "$TPORT" <<'PY'
import sys, tftplib
p = tftplib.Peer(int(sys.argv[1]))
data, oack, _ = tftplib.fetch(p, "empty", {"tsize": 0})
print(len(data), oack["tsize"])
PY
)
  expect_eq "empty via raw client (bytes, tsize)" "$got" "0 0"
}
t_paths_grub_slash_backslash_symlink() {
  (cd "$WORK" && timeout 20 tftp 127.0.0.1 "$TPORT" -m binary -c get /loader.0 p1)   # GRUB's leading /
  same "$WORK/p1" "$ROOT/loader.0"
  timeout 20 atftp -g -r 'sub\kernel' -l "$WORK/p2" 127.0.0.1 "$TPORT"             # PXE/Windows '\'
  same "$WORK/p2" "$ROOT/sub/kernel"
  timeout 20 curl -sf "tftp://127.0.0.1:$TPORT/inside-link" -o "$WORK/p3"           # symlink inside the root
  same "$WORK/p3" "$ROOT/loader.0"
}

# ---- refusals -----------------------------------------------------------------

t_missing_file_error_1() {
  rc=0; timeout 20 curl -s "tftp://127.0.0.1:$TPORT/no/such/file" -o "$WORK/m1" || rc=$?
  expect_eq "curl exit (68 = TFTP file not found)" "$rc" 68
  out=$(cd "$WORK" && timeout 20 tftp 127.0.0.1 "$TPORT" -m binary -c get nosuch m2 2>&1)
  echo "$out" | grep -q "Error code 1" || fail "tftp-hpa: $out"
}
t_refusals_are_errors_without_paths() {
  py "$TPORT" "$ROOT" "$WORK" <<'PY'
import sys, tftplib
port, root, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cases = [  # (request bytes, expected ERROR code)
    (tftplib.rrq("nosuch"), 1),
    (tftplib.rrq("../outside.txt"), 2),
    (tftplib.rrq("sub/../../outside.txt"), 2),
    (tftplib.rrq("..\\outside.txt"), 2),
    (tftplib.rrq("/" + work.lstrip("/") + "/outside.txt"), 1),  # absolute: taken below the root
    (tftplib.rrq("/etc/passwd"), 1),
    (tftplib.rrq("escape"), 2),                      # a symlink out of the root
    (tftplib.rrq("dir"), 2),                         # a directory: ERROR, not an empty DATA
    (tftplib.rrq("dir/"), 1),
    (tftplib.rrq("fifo"), 2),                        # not a regular file (and must not hang)
    (tftplib.rrq(""), 1),                            # empty name
    (tftplib.rrq("a" * 300), 1),                     # over-long name
    (tftplib.rrq("loader.0", mode="mail"), 4),       # RFC 1350's obsolete mode
    (tftplib.rrq("x", op=2), 2),                     # WRQ on a read-only server
]
for pkt, code in cases:
    p = tftplib.Peer(port)
    p.send(pkt)
    r, _ = p.recv(2.0)
    assert r is not None, "no answer to %r" % pkt[:40]
    assert r["op"] == 5, "%r got opcode %d" % (pkt[:40], r["op"])
    assert r["code"] == code, "%r got ERROR %d (%s), want %d" % (pkt[:40], r["code"], r["msg"], code)
    assert root not in r["msg"] and "/tmp" not in r["msg"] and "secret" not in r["msg"], r["msg"]
    extra, _ = p.recv(0.2)
    assert extra is None, "a second packet after the ERROR: %r" % extra
PY
  log_has 'RRQ "\.\./outside\.txt" refused: traversal \(ERROR 2\)'
  log_has 'RRQ "escape" refused: leaves the root \(ERROR 2\)'
  server_alive || fail "server died"
}
t_wrq_refused_by_default() {
  echo upload >"$WORK/up.txt"
  out=$(cd "$WORK" && timeout 20 tftp 127.0.0.1 "$TPORT" -m binary -c put up.txt up.txt 2>&1)
  echo "$out" | grep -q "Error code 2" || fail "tftp-hpa put: $out"
  [ ! -e "$ROOT/up.txt" ] || fail "the file was written"
  log_has 'WRQ "up.txt" refused: read-only server \(ERROR 2\)'
}
t_garbage_datagrams_ignored() {
  py "$TPORT" <<'PY'
import os, sys, struct, tftplib
port = int(sys.argv[1])
junk = [b"", b"\x00", b"\x00\x09abc", b"\x00\x01noterminator", b"\x00\x01a\x00octet\x00blksize\x00",
        b"\x00\x01a\x00", b"\x00\x03\x00\x01data", b"\x00\x04\x00\x01", b"\x00\x05\x00\x00x\x00",
        b"\x00\x06blksize\x00512\x00", b"\x17\x42" + os.urandom(1000), b"\xff" * 3000,
        b"\x00\x01" + b"A" * 3500]
p = tftplib.Peer(port)
for j in junk:
    p.send(j)
while True:  # (DATA from another test's transfer to a reused port is not an answer)
    r, a = p.recv(0.5)
    if r is None:
        break
    assert a[1] != port and r["op"] == 3 and r["block"] != 1, "answered garbage: %r from %r" % (r, a)
data, _, _ = tftplib.fetch(tftplib.Peer(port), "loader.0", {"blksize": 1432})
assert data == open(os.environ["ROOT"] + "/loader.0", "rb").read()
PY
  server_alive || fail "server died"
}

# ---- protocol behaviour seen through raw packets ----------------------------------

t_retransmitted_rrq_is_one_transfer() {
  port=$(ROOT=$ROOT py "$TPORT" <<'PY'
import os, sys, tftplib
p = tftplib.Peer(int(sys.argv[1]))
req = tftplib.rrq("sub/kernel", {"blksize": 1468, "tsize": 0, "windowsize": 8})
p.send(req); p.send(req)                 # a client retransmitting its RRQ
first, tid = p.recv()
p.send(req)                              # ... and once more after the answer started
data, oack, tid2 = tftplib.fetch(p, first=first, addr=tid)
assert data == open(os.environ["ROOT"] + "/sub/kernel", "rb").read(), "content differs"
assert oack == {"blksize": "1468", "tsize": str(len(data)), "windowsize": "8"}, oack
late, addr = p.recv(0.5)
strays = [a for a, _ in p.strays] + ([addr] if late else [])
assert not [a for a in strays if a != tid], "packets from a second TID: %r" % strays
print(p.port)
PY
)
  log_has "127.0.0.1:$port RRQ \"sub/kernel\" .* done"
  n=$(grep -c "127.0.0.1:$port RRQ" "$LOG")
  expect_eq "transfers logged for that client" "$n" 1
}
t_unknown_tid_gets_error_5_and_transfer_goes_on() {
  ROOT=$ROOT py "$TPORT" <<'PY'
import os, sys, struct, tftplib
port = int(sys.argv[1])
a = tftplib.Peer(port)
a.send(tftplib.rrq("loader.0", {"blksize": 512}))
first, tid = a.recv()
assert first["op"] == 6, first
b = tftplib.Peer(port)                   # another port sends into the transfer
b.ack(0, tid)
r, src = b.recv()
assert r and r["op"] == 5 and r["code"] == 5, r
assert src == tid
data, _, _ = tftplib.fetch(a, first=first, addr=tid)
assert data == open(os.environ["ROOT"] + "/loader.0", "rb").read()
PY
}
t_ovmf_size_probe_error_8_then_real_request() {
  port=$(ROOT=$ROOT py "$TPORT" <<'PY'
import os, sys, time, tftplib
port = int(sys.argv[1])
size = os.path.getsize(os.environ["ROOT"] + "/sub/kernel")
p = tftplib.Peer(port)
p.send(tftplib.rrq("sub/kernel", {"tsize": 0, "blksize": 1468, "windowsize": 4}))
oack, tid = p.recv()
assert oack["op"] == 6 and oack["opts"] == {"tsize": str(size), "blksize": "1468", "windowsize": "4"}, oack
p.error(8, "", tid)                      # OVMF: size known, abort
data, oack2, tid2 = tftplib.fetch(p, "sub/kernel", {"blksize": 1468, "windowsize": 4})  # same port, at once
assert oack2 == {"blksize": "1468", "windowsize": "4"}, oack2
assert len(data) == size and tid2 != tid
print(p.port)
PY
)
  # the ERROR 8 and the new request race on two sockets: either ends the probe at once
  log_has "127.0.0.1:$port RRQ \"sub/kernel\" bytes=0 .*(client aborted \(ERROR 8\)|superseded by a new request)"
  log_has "127.0.0.1:$port RRQ \"sub/kernel\" bytes=$((10*1024*1024)) blksize=1468 window=4 .* done"
}
t_fixture_requests_get_only_requested_options() {
  # every real client's RRQ from the fixtures, replayed: the OACK carries exactly
  # the options asked for (PXELINUX aborts on any other), tsize is the real size,
  # blksize/windowsize within the caps; shim's optional revocations_* are missing
  python3 - "$FIXTURES" "$ROOT" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))["tftp_rrq"]
for v in d.values():
    raw = bytes.fromhex(v["raw"]); name = raw[2:].split(b"\0")[0].decode().lstrip("/")
    if "revocations" in name: continue
    path = os.path.join(sys.argv[2], name)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f: f.write(os.urandom(3000 + len(name)))
PY
  PYTHONPATH=$WORK python3 - "$FIXTURES" "$TPORT" "$ROOT" <<'PY'
import json, os, sys, tftplib
d = json.load(open(sys.argv[1]))["tftp_rrq"]; port = int(sys.argv[2]); root = sys.argv[3]
for key, v in d.items():
    raw = bytes.fromhex(v["raw"]); name = raw[2:].split(b"\0")[0].decode().lstrip("/")
    p = tftplib.Peer(port); p.send(raw)
    r, tid = p.recv()
    assert r is not None, key
    if "revocations" in name:
        assert r["op"] == 5 and r["code"] == 1, (key, r); continue
    assert r["op"] == 6, (key, r)
    asked = {k.lower(): int(x) for k, x in v["opts"].items()}
    got = {k: int(x) for k, x in r["opts"].items()}
    assert set(got) == set(asked), (key, got, asked)
    if "tsize" in got: assert got["tsize"] == os.path.getsize(os.path.join(root, name)), (key, got)
    if "blksize" in got: assert got["blksize"] == min(asked["blksize"], 8192), (key, got)
    if "windowsize" in got: assert got["windowsize"] == min(asked["windowsize"], 64), (key, got)
    data, _, _ = tftplib.fetch(p, first=r, addr=tid)
    assert data == open(os.path.join(root, name), "rb").read(), key
print(len(d), "fixture requests replayed")
PY
}

# ---- load and loss ---------------------------------------------------------------

t_lossy_reordering_path_completes() {
  # Its own server, with a 50 ms first timeout (the knob; 200 ms by default),
  # stopped before the relay: a transfer whose final ACK the relay dropped goes on
  # resending to the relay's ports (a client may still need the last block), and
  # must not spray DATA at ports the kernel hands to the next test's clients.
  aux_server lossy --tftp-root "$ROOT" --threads 2 --tftp-timeout 50 --tftp-retries 4
  "$HERE/udp_relay.py" --server "127.0.0.1:$AUX_PORT" --drop 0.05 --reorder 0.05 --seed 4 \
    >"$WORK/relay.port" 2>"$WORK/relay.err" &
  rpid=$!
  trap 'kill $rpid $AUX_PID 2>/dev/null || true' EXIT
  for i in $(seq 1 50); do [ -s "$WORK/relay.port" ] && break; sleep 0.1; done
  rp=$(head -n1 "$WORK/relay.port")
  [ -n "$rp" ] || fail "relay did not start"
  timeout 60 atftp --option "blksize 1468" --option "windowsize 16" -g -r mid.img -l "$WORK/l1" 127.0.0.1 "$rp" \
    >"$WORK/l1.out" 2>&1 & a=$!
  timeout 60 curl -sf --tftp-blksize 1468 "tftp://127.0.0.1:$rp/mid.img" -o "$WORK/l2" & c=$!
  (cd "$WORK" && timeout 60 tftp 127.0.0.1 "$rp" -m binary -c get loader.0 l3 >/dev/null) & h=$!
  wait $a || fail "atftp through the relay: $(grep -v 'wrong block' "$WORK/l1.out" | tail -n3)"
  wait $c || fail "curl through the relay"
  wait $h || fail "tftp-hpa through the relay"
  kill -TERM $AUX_PID; sleep 0.3; kill -TERM $AUX_PID 2>/dev/null || true  # the second: end them now
  wait $AUX_PID || fail "server exit status $?"
  kill $rpid; wait $rpid 2>/dev/null || true
  same "$WORK/l1" "$ROOT/mid.img"
  same "$WORK/l2" "$ROOT/mid.img"
  same "$WORK/l3" "$ROOT/loader.0"
  no_sanitizer_reports "$WORK/lossy.log"
  dropped=$(sed -n 's/.*dropped \([0-9]*\).*/\1/p' "$WORK/relay.err")
  [ "${dropped:-0}" -gt 20 ] || fail "the relay dropped too little to prove anything: $(cat "$WORK/relay.err")"
  resent=$(grep -c 'retransmits=[1-9]' "$WORK/lossy.access" || true)
  [ "$resent" -ge 1 ] || fail "no transfer needed a retransmission: $(cat "$WORK/lossy.access")"
  echo "$(cat "$WORK/relay.err")"
}
t_thirty_concurrent_clients() {
  pids=()
  for i in $(seq 1 30); do
    case $((i % 4)) in
      0) timeout 60 atftp --option "blksize 1468" --option "windowsize 16" -g -r sub/kernel -l "$WORK/cc$i" \
           127.0.0.1 "$TPORT" >"$WORK/cc$i.out" 2>&1 & ;;
      1) timeout 60 curl -sf --tftp-blksize 1468 "tftp://127.0.0.1:$TPORT/sub/kernel" -o "$WORK/cc$i" & ;;
      2) timeout 60 busybox tftp -b 1468 -g -r sub/kernel -l "$WORK/cc$i" 127.0.0.1 "$TPORT" 2>/dev/null & ;;
      3) (cd "$WORK" && timeout 60 tftp 127.0.0.1 "$TPORT" -m binary -c get loader.0 "cc$i" >/dev/null) & ;;
    esac
    pids+=($!)
  done
  for i in $(seq 1 30); do
    wait "${pids[$((i-1))]}" || fail "client $i failed: $(tail -n3 "$WORK/cc$i.out" 2>/dev/null)"
  done
  for i in $(seq 1 30); do
    if [ $((i % 4)) -eq 3 ]; then same "$WORK/cc$i" "$ROOT/loader.0"; else same "$WORK/cc$i" "$ROOT/sub/kernel"; fi
  done
  rm -f "$WORK"/cc*
}
t_max_transfers_queues_not_refuses() {
  aux_server queue --tftp-root "$ROOT" --threads 1 --max-transfers 2
  trap 'kill $AUX_PID 2>/dev/null || true' EXIT
  pids=()
  for i in $(seq 1 12); do
    timeout 60 atftp --option "blksize 1468" --option "windowsize 16" -g -r sub/kernel -l "$WORK/q$i" \
      127.0.0.1 "$AUX_PORT" >"$WORK/q$i.out" 2>&1 & pids+=($!)
  done
  for i in $(seq 1 12); do
    wait "${pids[$((i-1))]}" || fail "queued client $i failed: $(tail -n3 "$WORK/q$i.out")"
  done
  for i in $(seq 1 12); do same "$WORK/q$i" "$ROOT/sub/kernel"; done
  rm -f "$WORK"/q[0-9]*
  kill -TERM $AUX_PID; wait $AUX_PID || fail "exit status $?"
  no_sanitizer_reports "$WORK/queue.log"
  n=$(grep -c 'RRQ "sub/kernel" .* done' "$WORK/queue.access")
  expect_eq "transfers done" "$n" 12
  ! grep -q busy "$WORK/queue.access" || fail "a request was refused as busy"
}
t_write_requests_when_allowed() {
  mkdir -p "$WORK/wroot/in"
  aux_server write --tftp-root "$WORK/wroot" --tftp-allow-write --threads 1
  trap 'kill $AUX_PID 2>/dev/null || true' EXIT
  head -c 300000 /dev/urandom >"$WORK/w1"
  (cd "$WORK" && timeout 20 tftp 127.0.0.1 "$AUX_PORT" -m binary -c put w1 in/w1)
  same "$WORK/wroot/in/w1" "$WORK/w1"
  timeout 20 atftp --option "blksize 1468" -p -l "$WORK/w1" -r w2 127.0.0.1 "$AUX_PORT"
  same "$WORK/wroot/w2" "$WORK/w1"
  printf 'line one\nline two\r\n' >"$WORK/w3"
  (cd "$WORK" && timeout 20 tftp 127.0.0.1 "$AUX_PORT" -c put w3 w3)                 # netascii
  same "$WORK/wroot/w3" "$WORK/w3"
  out=$(cd "$WORK" && timeout 20 tftp 127.0.0.1 "$AUX_PORT" -m binary -c put w1 ../escaped 2>&1)
  echo "$out" | grep -q "Error code 2" || fail "traversal WRQ: $out"
  [ ! -e "$WORK/escaped" ] || fail "written outside the root"
  left=$(ls -A "$WORK/wroot" "$WORK/wroot/in" | grep -c tftp-upload || true)
  expect_eq "temporary files left" "$left" 0
  kill -TERM $AUX_PID; wait $AUX_PID || fail "exit status $?"
  no_sanitizer_reports "$WORK/write.log"
}
t_thousand_concurrent_transfers_none_refused() {
  # 1000 transfers at once (a loader and a 58 KiB file; lock-step, then OVMF's
  # windowsize 4): every one completes with the right checksum, none is refused
  # as busy, however the workers queue or pace them.
  local lg=${LOADGEN:-$(dirname "$BOOTSTORM")/bootstorm-load}
  [ -x "$lg" ] || fail "no bootstorm-load at $lg"
  aux_server thousand --tftp-root "$ROOT" --threads 2 --quiet
  trap 'kill $AUX_PID 2>/dev/null || true' EXIT
  local w
  for w in 1 4; do
    timeout 120 "$lg" tftp --port "$AUX_PORT" --file loader.0 --file exact1468 --clients 1000 --transfers 1000 \
      --windowsize "$w" --tree "$ROOT" --verify=crc32c --progress no --json "$WORK/k$w.json" >"$WORK/k$w.out" 2>&1 ||
      fail "windowsize $w: $(tail -n4 "$WORK/k$w.out")"
    expect_eq "windowsize $w: transfers ok" "$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["ok"])' "$WORK/k$w.json")" 1000
  done
  kill -TERM $AUX_PID; wait $AUX_PID || fail "exit status $?"
  no_sanitizer_reports "$WORK/thousand.log"
  ! grep -q busy "$WORK/thousand.log" || fail "a request was refused as busy"
}
t_stop_drain_is_bounded() {
  # SIGTERM: a live transfer still finishes; one whose client went silent (no ACK
  # after the OACK's) ends at the drain's deadline, not after its retries (10 s).
  aux_server drain --tftp-root "$ROOT" --threads 1
  trap 'kill $AUX_PID 2>/dev/null || true' EXIT
  rm -f "$WORK/drain.ready" "$WORK/drain.go"
  AUX_PORT=$AUX_PORT WORK=$WORK ROOT=$ROOT py >"$WORK/drain.py.out" 2>&1 <<'PY' &
import os, sys, time, tftplib
port, work = int(os.environ["AUX_PORT"]), os.environ["WORK"]
gone = tftplib.Peer(port)                       # asks, accepts the OACK, then says nothing more
gone.send(tftplib.rrq("sub/kernel", {"blksize": 1468, "windowsize": 8}))
first, tid = gone.recv()
assert first["op"] == 6, first
gone.ack(0, tid)
live = tftplib.Peer(port)
live.send(tftplib.rrq("loader.0", {"blksize": 1432}))
lfirst, ltid = live.recv()
assert lfirst["op"] == 6, lfirst
open(work + "/drain.ready", "w").close()
for _ in range(100):                            # the server is told to stop now
    if os.path.exists(work + "/drain.go"):
        break
    time.sleep(0.05)
data, _, _ = tftplib.fetch(live, first=lfirst, addr=ltid)
assert data == open(os.environ["ROOT"] + "/loader.0", "rb").read(), "live transfer: content differs"
print("live transfer done")
PY
  local ppid=$! i
  for i in $(seq 1 100); do [ -e "$WORK/drain.ready" ] && break; sleep 0.05; done
  [ -e "$WORK/drain.ready" ] || fail "client not ready: $(cat "$WORK/drain.py.out")"
  local t0; t0=$(date +%s%N)
  kill -TERM $AUX_PID
  touch "$WORK/drain.go"
  wait $ppid || fail "live transfer during the drain: $(tail -n3 "$WORK/drain.py.out")"
  for i in $(seq 1 100); do kill -0 $AUX_PID 2>/dev/null || break; sleep 0.05; done
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  ! kill -0 $AUX_PID 2>/dev/null || fail "still running ${ms} ms after SIGTERM"
  wait $AUX_PID || fail "exit status $?"
  [ "$ms" -lt 4000 ] || fail "stop took ${ms} ms"
  grep -q 'RRQ "loader.0" .* done' "$WORK/drain.access" || fail "live transfer not logged done: $(cat "$WORK/drain.access")"
  grep -q 'RRQ "sub/kernel" .* server stopping' "$WORK/drain.access" || fail "abandoned transfer: $(cat "$WORK/drain.access")"
  no_sanitizer_reports "$WORK/drain.log"
  echo "stopped in ${ms} ms"
}
t_zz_graceful_stop() {
  kill -TERM "$SERVER_PID"
  for i in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$SERVER_PID" 2>/dev/null || fail "server still running"
  grep -q "stopped" "$WORK/server.log" || fail "no stop line"
  no_sanitizer_reports "$WORK/server.log"
  SERVER_PID=""
}
export ROOT
run_suite tftp
