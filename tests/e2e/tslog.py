#!/usr/bin/env python3
"""tests/e2e/tslog.py: timestamps what a process writes, for the e2e stage tables.

  tslog.py lines OUT          stdin lines -> OUT as "EPOCH line" (bootstorm's access log)
  tslog.py raw OUT            stdin bytes -> OUT unchanged, and OUT.idx gets one
                              "EPOCH END_OFFSET" line per chunk read (a serial console)
  tslog.py find OUT REGEX [N] prints the EPOCH at which the N-th (default 1st) match of
                              REGEX (bytes, Python syntax; terminal escapes are ignored)
                              was complete in a raw OUT;
                              exit status 1 and no output when it is not there (yet)
  tslog.py text OUT           a raw OUT with terminal escapes and line drawing stripped

Every write is flushed at once, so a reader polling OUT sees what the writer has seen.
"""
import bisect
import os
import re
import sys
import time


def lines(out):
    with open(out, "ab", buffering=0) as f:
        buf = b""
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            now = time.time()
            buf += chunk
            *full, buf = buf.split(b"\n")
            if full:
                f.write(b"".join(b"%.3f %s\n" % (now, l) for l in full))
        if buf:
            f.write(b"%.3f %s\n" % (time.time(), buf))


def raw(out):
    off = 0
    with open(out, "ab", buffering=0) as f, open(out + ".idx", "a", buffering=1) as idx:
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            f.write(chunk)
            off += len(chunk)
            idx.write("%.3f %d\n" % (time.time(), off))


ESC = re.compile(rb"\x1b(\[[0-9;?=]*[A-Za-z]|[()][0-9A-B]|[=>78])")


def strip(data):
    """data without terminal escapes, and (clean_start, raw_start) per kept segment:
    SeaBIOS' serial console puts cursor moves even inside words ("PX\\e[25;02HELINUX")."""
    parts, segs, pos, clean = [], [], 0, 0
    for m in ESC.finditer(data):
        if m.start() > pos:
            parts.append(data[pos:m.start()])
            segs.append((clean, pos))
            clean += m.start() - pos
        pos = m.end()
    parts.append(data[pos:])
    segs.append((clean, pos))
    return b"".join(parts), segs


def find(out, regex, nth):
    try:
        data = open(out, "rb").read()
        marks = [l.split() for l in open(out + ".idx")]
    except FileNotFoundError:
        return 1
    text, segs = strip(data)
    starts = [s[0] for s in segs]
    n = 0
    for m in re.finditer(regex.encode(), text):
        n += 1
        if n < nth:
            continue
        # the time its last byte was written: the whole text was on the screen then
        last = max(m.end() - 1, m.start())
        i = bisect.bisect_right(starts, last) - 1
        raw_at = segs[i][1] + (last - segs[i][0])
        for t, end in marks:
            if int(end) > raw_at:
                print(t)
                return 0
        return 1
    return 1


def text(out):
    data = strip(open(out, "rb").read())[0]
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    sys.stdout.buffer.write(re.sub(rb"[ \t]{3,}", b"  ", data))


def main(argv):
    if len(argv) >= 3 and argv[1] == "lines":
        lines(argv[2])
    elif len(argv) >= 3 and argv[1] == "raw":
        raw(argv[2])
    elif len(argv) in (4, 5) and argv[1] == "find":
        return find(argv[2], argv[3], int(argv[4]) if len(argv) == 5 else 1)
    elif len(argv) == 3 and argv[1] == "text":
        text(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        sys.exit(130)
