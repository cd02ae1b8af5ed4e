#!/usr/bin/env python3
"""tests/e2e/capture.py IFACE OUT: records the boot protocol's control traffic on IFACE.

Runs inside the test's network namespace (root: an AF_PACKET socket) until killed, and
writes, flushed per packet:
  OUT       one decoded line per packet: "EPOCH DHCP|TFTP ..." (the wire truth the e2e
            stage checks use: e.g. that the installer's ACK carries option 6)
  OUT.pcap  the same packets for Wireshark
Kept: every DHCP/BOOTP packet (UDP 67, 68, 4011), the TFTP packets that are not
DATA or ACK (RRQ, WRQ, ERROR, OACK): a 41 MB initrd would otherwise fill the disk, and
IPv6 router solicitations and advertisements (ICMPv6 133, 134: the firmware's IPv6
autoconfiguration wait and bootstorm's --ipv6-ra answers).
"""
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
MSG = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK", 7: "RELEASE", 8: "INFORM"}
TFTP_OP = {1: "RRQ", 2: "WRQ", 3: "DATA", 4: "ACK", 5: "ERROR", 6: "OACK"}


def ip(b):
    return socket.inet_ntoa(b)


def mac(b):
    return ":".join("%02x" % x for x in b)


def printable(b):
    return b.decode("latin-1") if all(32 <= x < 127 for x in b) else b.hex()


def dhcp_options(opts):
    """RFC 2132 options as (code, bytes), stopping at END; tolerant of junk."""
    out, i = [], 0
    while i < len(opts):
        code = opts[i]
        if code == 0:
            i += 1
            continue
        if code == 255 or i + 1 >= len(opts):
            break
        n = opts[i + 1]
        out.append((code, opts[i + 2:i + 2 + n]))
        i += 2 + n
    return out


def fmt_option(code, v):
    if code in (1, 3, 6, 28, 50, 54) and len(v) % 4 == 0 and v:
        return "+".join(ip(v[i:i + 4]) for i in range(0, len(v), 4))
    if code in (51, 58, 59) and len(v) == 4:
        return str(struct.unpack("!I", v)[0])
    if code == 53 and len(v) == 1:
        return MSG.get(v[0], str(v[0]))
    if code in (57,) and len(v) == 2:
        return str(struct.unpack("!H", v)[0])
    if code == 93 and len(v) >= 2:
        return ",".join(str(struct.unpack("!H", v[i:i + 2])[0]) for i in range(0, len(v) - 1, 2))
    if code == 55:
        return ",".join(str(x) for x in v)
    if code in (12, 15, 60, 66, 67, 77):
        return printable(v)
    return v.hex()


def decode_dhcp(p):
    if len(p) < 240 or p[236:240] != b"\x63\x82\x53\x63":
        return "BOOTP short or without magic cookie (%d bytes)" % len(p)
    op, htype, hlen = p[0], p[1], p[2]
    xid, secs, flags = struct.unpack("!IHH", p[4:12])
    opts = dhcp_options(p[240:])
    t = dict(opts).get(53, b"")
    kind = MSG.get(t[0], "?") if t else "BOOTP"
    head = "DHCP %s op=%d xid=%08x chaddr=%s secs=%d flags=%s ciaddr=%s yiaddr=%s siaddr=%s giaddr=%s" % (
        kind, op, xid, mac(p[28:28 + min(hlen, 16)]), secs, "B" if flags & 0x8000 else "-",
        ip(p[12:16]), ip(p[16:20]), ip(p[20:24]), ip(p[24:28]))
    sname = p[44:108].split(b"\0")[0]
    fname = p[108:236].split(b"\0")[0]
    if sname:
        head += " sname=%s" % printable(sname)
    if fname:
        head += " file=%s" % printable(fname)
    return head + " opts " + " ".join("%d=%s" % (c, fmt_option(c, v)) for c, v in opts)


def decode_tftp(p):
    if len(p) < 2:
        return None
    op = struct.unpack("!H", p[:2])[0]
    if op in (3, 4):
        return None
    if op in (1, 2, 6):
        parts = p[2:].split(b"\0")
        return "TFTP %s %s" % (TFTP_OP[op], " ".join(printable(x) for x in parts if x))
    if op == 5 and len(p) >= 4:
        return "TFTP ERROR %d %s" % (struct.unpack("!H", p[2:4])[0], printable(p[4:].split(b"\0")[0]))
    return "TFTP op=%d (%d bytes)" % (op, len(p))


def decode_ndp(frame):
    """An ICMPv6 RS or RA right after the IPv6 header (NDP uses no extension headers)."""
    if len(frame) < 14 + 40 + 8 or frame[20] != 58 or frame[54] not in (133, 134):
        return None
    src = socket.inet_ntop(socket.AF_INET6, frame[22:38])
    dst = socket.inet_ntop(socket.AF_INET6, frame[38:54])
    icmp = frame[54:]
    if icmp[0] == 133:
        text = "NDP RS hop=%d" % frame[21]
    else:
        if len(icmp) < 16:
            return None
        text = "NDP RA hop=%d flags=%02x lifetime=%d" % (frame[21], icmp[5], struct.unpack("!H", icmp[6:8])[0])
    return src, dst, text


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    ifname, out = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    log = open(out, "a", buffering=1)
    pcap = open(out + ".pcap", "wb", buffering=0)
    pcap.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    while True:
        frame, addr = s.recvfrom(65535)
        now = time.time()
        where = "out" if addr[2] == socket.PACKET_OUTGOING else "in"
        if frame[12:14] == b"\x86\xdd":
            ndp = decode_ndp(frame)
            if ndp:
                log.write("%.3f %s %s -> %s eth %s -> %s %s\n" % (now, where, ndp[0], ndp[1], mac(frame[6:12]),
                                                                mac(frame[0:6]), ndp[2]))
                sec = int(now)
                pcap.write(struct.pack("<IIII", sec, int((now - sec) * 1e6), len(frame), len(frame)) + frame)
            continue
        if len(frame) < 42 or frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 15) * 4
        if frame[23] != 17 or len(frame) < 14 + ihl + 8:
            continue
        u = 14 + ihl
        sport, dport = struct.unpack("!HH", frame[u:u + 4])
        payload = frame[u + 8:]
        src, dst = ip(frame[26:30]), ip(frame[30:34])
        if {sport, dport} & {67, 68, 4011}:
            text = decode_dhcp(payload)
        elif dport == 69 or (len(payload) >= 2 and payload[:2] in (b"\0\5", b"\0\6")
                             and not {sport, dport} & {53, 5353}):
            text = decode_tftp(payload)
        else:
            continue
        if text is None:
            continue
        log.write("%.3f %s %s:%d -> %s:%d eth %s -> %s %s\n" % (now, where, src, sport, dst, dport,
                                                              mac(frame[6:12]), mac(frame[0:6]), text))
        sec = int(now)
        pcap.write(struct.pack("<IIII", sec, int((now - sec) * 1e6), len(frame), len(frame)) + frame)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
