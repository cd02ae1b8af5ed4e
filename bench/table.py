#!/usr/bin/env python3
"""bench/table.py KIND RESULTS.tsv — side-by-side Markdown table with ratios.

Each TSV line: server, row, server_cpu_us, count, rate, MB/s, p99_ms, spread[, FAILED=n].
bootstorm is compared with the best of the other servers in each row: rate
ratio (higher is better) and CPU-per-unit ratio (lower is better)."""
import sys
from collections import OrderedDict

kind, path = sys.argv[1], sys.argv[2]
rows = OrderedDict()
rss = {}
servers = []
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if len(f) < 3:
        continue
    if f[1] == "RSS":
        rss[f[0]] = int(f[2]); continue
    s, row, cpu = f[0], f[1], int(f[2])
    if s not in servers:
        servers.append(s)
    n, rate, mbps, p99, spread = int(f[3]), float(f[4]), float(f[5]), float(f[6]), f[7]
    note = " ".join(x for x in f[8:] if x)
    per_req = cpu / n if n else float("nan")
    per_gb = (cpu / 1e6) / (mbps * (n / rate if rate else 0) / 1e3) if mbps and rate else float("nan")
    rows.setdefault(row, {})[s] = dict(rate=rate, mbps=mbps, p99=p99, spread=spread, per_req=per_req,
                                       per_gb=per_gb, note=note)

unit = {"http": "req/s", "tftp": "transfers/s"}.get(kind, "/s")
print("| row | server | %s | MB/s | p99 ms | finish spread | server CPU µs/req | server CPU s/GB | notes |" % unit)
print("|---|---|---:|---:|---:|---:|---:|---:|---|")
for row, by in rows.items():
    for s in servers:
        if s not in by:
            continue
        r = by[s]
        print("| %s | %s | %.0f | %.1f | %.2f | %s | %.1f | %.2f | %s |" % (
            row, s, r["rate"], r["mbps"], r["p99"], r["spread"], r["per_req"], r["per_gb"], r["note"]))
print()
if "bootstorm" in servers and len(servers) > 1:
    print("| row | vs | rate ratio (bootstorm / best other) | CPU per request ratio (bootstorm / that server) |")
    print("|---|---|---:|---:|")
    for row, by in rows.items():
        others = [s for s in by if s != "bootstorm"]
        if "bootstorm" not in by or not others:
            continue
        best = max(others, key=lambda s: by[s]["rate"])
        b, o = by["bootstorm"], by[best]
        print("| %s | %s | %.2f | %.2f |" % (row, best, b["rate"] / o["rate"] if o["rate"] else float("nan"),
                                           b["per_req"] / o["per_req"] if o["per_req"] else float("nan")))
    print()
if rss:
    print("Peak RSS at the end (KiB): " + ", ".join("%s %d" % kv for kv in rss.items()))
