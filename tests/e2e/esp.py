#!/usr/bin/env python3
"""tests/e2e/esp.py OUT SIZE_MB DEST=SRC...: writes a FAT16 file system image (no
partition table: a "superfloppy", which UEFI firmware mounts whole) holding the files
given, e.g.  esp.py disk.img 16 EFI/BOOT/BOOTX64.EFI=grubx64.efi boot/grub/grub.cfg=cfg

It is the local disk of the UEFI install-once check (case 5): OVMF's boot manager
finds \\EFI\\BOOT\\BOOTX64.EFI on it (the removable-media path, UEFI 2.x §3.5.1.1), and
so can a network GRUB that chainloads the local disk.  Written here, in a few lines of
Python, so the suite needs no mtools/dosfstools.  Long names get VFAT LFN entries.
"""
import os
import struct
import sys
import time

SECTOR = 512
SPC = 4                 # sectors per cluster (2 KiB)
ROOT_ENTRIES = 512
RESERVED = 1
NFATS = 2


class Dir:
    def __init__(self):
        self.entries = {}  # name -> Dir or bytes


def short_name(name, taken):
    """An 8.3 name: the name itself when it is one (upper case), else NAME~N.EXT."""
    base, dot, ext = name.rpartition(".") if "." in name[1:] else (name, "", "")
    ok = lambda s, n: 0 < len(s) <= n and all(c.isalnum() or c in "_-~" for c in s)
    if name == name.upper() and ok(base, 8) and (not ext or ok(ext, 3)):
        return (base.ljust(8) + ext.ljust(3)).encode()
    clean = lambda s: "".join(c for c in s.upper() if c.isalnum())
    b, e = clean(base) or "X", clean(ext)[:3]
    for i in range(1, 1000):
        tail = "~%d" % i
        sn = (b[:8 - len(tail)] + tail).ljust(8) + e.ljust(3)
        if sn.encode() not in taken:
            return sn.encode()
    raise SystemExit("esp.py: too many similar names: %s" % name)


def sn_text(sn):
    base, ext = sn[:8].decode().rstrip(), sn[8:].decode().rstrip()
    return base + ("." + ext if ext else "")


def lfn_entries(name, sn):
    """VFAT long-name entries for name, last part first, as they precede the 8.3 entry."""
    csum = 0
    for c in sn:
        csum = (((csum & 1) << 7) + (csum >> 1) + c) & 0xFF
    u = name.encode("utf-16-le") + b"\0\0"
    u += b"\xff" * (-len(u) % 26)
    parts = [u[i:i + 26] for i in range(0, len(u), 26)]
    out = []
    for n, p in enumerate(parts, 1):
        seq = n | (0x40 if n == len(parts) else 0)
        out.append(struct.pack("<B10sBBB12sH4s", seq, p[0:10], 0x0F, 0, csum, p[10:22], 0, p[22:26]))
    return list(reversed(out))


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    out, size_mb = sys.argv[1], int(sys.argv[2])
    root = Dir()
    for spec in sys.argv[3:]:
        dest, _, src = spec.partition("=")
        d = root
        parts = [p for p in dest.split("/") if p]
        for p in parts[:-1]:
            d = d.entries.setdefault(p, Dir())
        d.entries[parts[-1]] = open(src, "rb").read()

    total = size_mb * 1024 * 1024 // SECTOR
    root_secs = ROOT_ENTRIES * 32 // SECTOR
    fat_secs = 1
    while True:  # the FAT must hold every cluster the rest of the disk has
        clusters = (total - RESERVED - root_secs - NFATS * fat_secs) // SPC
        if (clusters + 2) * 2 <= fat_secs * SECTOR:
            break
        fat_secs += 1
    if not 4085 <= clusters < 65525:
        raise SystemExit("esp.py: %d MB gives %d clusters, not FAT16" % (size_mb, clusters))
    data_start = RESERVED + NFATS * fat_secs + root_secs
    fat = [0xFFF8, 0xFFFF] + [0] * clusters
    data = bytearray()
    nxt = [2]

    def alloc(blob):
        n = max(1, -(-len(blob) // (SPC * SECTOR)))
        first = nxt[0]
        if first + n - 2 > clusters:
            raise SystemExit("esp.py: the files do not fit in %d MB" % size_mb)
        for i in range(n):
            fat[first + i] = first + i + 1 if i < n - 1 else 0xFFFF
        nxt[0] += n
        data.extend(blob.ljust(n * SPC * SECTOR, b"\0"))
        return first

    stamp = time.localtime()
    fdate = ((stamp.tm_year - 1980) << 9) | (stamp.tm_mon << 5) | stamp.tm_mday
    ftime = (stamp.tm_hour << 11) | (stamp.tm_min << 5) | (stamp.tm_sec // 2)

    def entry(sn, attr, cluster, size):
        return struct.pack("<11sBBBHHHHHHHI", sn, attr, 0, 0, ftime, fdate, fdate, 0, ftime, fdate, cluster, size)

    def table(d, self_cluster, parent_cluster):
        """Directory entries of d (subdirectories and files allocated first)."""
        ents, taken = [], set()
        if self_cluster is not None:
            ents.append(entry(b".          ", 0x10, self_cluster, 0))
            ents.append(entry(b"..         ", 0x10, parent_cluster, 0))
        for name, v in sorted(d.entries.items()):
            sn = short_name(name, taken)
            taken.add(sn)
            if isinstance(v, Dir):
                # a directory's cluster is known before its contents: reserve, then fill
                first = alloc(b"")
                body = table(v, first, self_cluster or 0)
                if len(body) > SPC * SECTOR:
                    raise SystemExit("esp.py: directory %s too large" % name)
                off = (first - 2) * SPC * SECTOR
                data[off:off + len(body)] = body
                ents += lfn_entries(name, sn) if sn_text(sn) != name else []
                ents.append(entry(sn, 0x10, first, 0))
            else:
                first = alloc(v) if v else 0
                ents += lfn_entries(name, sn) if sn_text(sn) != name else []
                ents.append(entry(sn, 0x20, first, len(v)))
        return b"".join(ents)

    root_body = table(root, None, None)
    if len(root_body) > ROOT_ENTRIES * 32:
        raise SystemExit("esp.py: root directory too large")

    bpb = struct.pack("<3s8sHBHBHHBHHHII", b"\xEB\x3C\x90", b"BOOTSTRM", SECTOR, SPC, RESERVED, NFATS,
                      ROOT_ENTRIES, total if total < 65536 else 0, 0xF8, fat_secs, 32, 64, 0,
                      0 if total < 65536 else total)
    bpb += struct.pack("<BBBI11s8s", 0x80, 0, 0x29, 0x0B0075E2, b"BOOTSTORM  ", b"FAT16   ")
    boot = bpb.ljust(510, b"\0") + b"\x55\xAA"
    fat_bytes = struct.pack("<%dH" % len(fat), *fat).ljust(fat_secs * SECTOR, b"\0")
    with open(out, "wb") as f:
        f.write(boot)
        for _ in range(NFATS):
            f.write(fat_bytes)
        f.write(root_body.ljust(root_secs * SECTOR, b"\0"))
        f.write(data)
        f.truncate(total * SECTOR)
    assert data_start * SECTOR + len(data) <= total * SECTOR
    return 0


if __name__ == "__main__":
    sys.exit(main())
