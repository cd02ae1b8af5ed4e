#!/usr/bin/env python3
"""tests/integration/udp_relay.py — a lossy, reordering UDP relay for TFTP tests.

This kernel has no netem, so the lossy-path test puts this relay between a TFTP
client and the server:

    client ──> relay:PORT ──> server:SERVER_PORT (requests), server TID (the rest)
    client <── relay:PORT <── server (from whatever port the transfer uses)

For each client addr:port the relay opens one upstream socket.  Requests (RRQ,
WRQ) go to the server's request port; every other packet goes to the last
source port the server answered that client from (its transfer ID), so the
client sees one peer, relay:PORT, for the whole transfer.

Each datagram, in each direction, is dropped with probability --drop, or held
back --delay-ms with probability --reorder (so the datagrams behind it overtake
it), from a random.Random(--seed): the same seed gives the same decisions for the
same sequence of datagrams.

Thousands of clients at once: the relay waits with epoll (selectors), not
select() (whose FD_SETSIZE of 1024 broke it near a thousand transfers), raises
its descriptor limit to the hard limit, and closes an upstream socket once its
client has been silent for --idle-s (each transfer of a load client comes from a
new port: without that they would pile up).

Prints the relay's port on the first line of stdout, then runs until SIGTERM;
on exit prints "relay: forwarded N dropped N reordered N" to stderr.
"""
import argparse
import heapq
import random
import resource
import selectors
import signal
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True, help="HOST:PORT of the TFTP request socket")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (port 0: any)")
    ap.add_argument("--drop", type=float, default=0.05, help="share of datagrams dropped, each way")
    ap.add_argument("--reorder", type=float, default=0.05, help="share of datagrams held back, each way")
    ap.add_argument("--delay-ms", type=float, default=3.0, help="how long a held datagram waits")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--idle-s", type=float, default=30.0, help="close a client's upstream socket after this silence")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass

    shost, sport = args.server.rsplit(":", 1)
    server = (shost, int(sport))
    lhost, lport = args.listen.rsplit(":", 1)
    rng = random.Random(args.seed)

    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    front.bind((lhost, int(lport)))
    print(front.getsockname()[1], flush=True)
    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ)

    upstream = {}      # client addr -> [socket, server TID addr or None, last seen]
    by_sock = {}       # upstream socket -> client addr
    held = []          # heap of (due, seq, socket, payload, destination)
    seq = 0
    counts = {"forwarded": 0, "dropped": 0, "reordered": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    def forward(sock, data, dest):
        nonlocal seq
        r = rng.random()
        if r < args.drop:
            counts["dropped"] += 1
            return
        if r < args.drop + args.reorder:
            counts["reordered"] += 1
            seq += 1
            heapq.heappush(held, (time.monotonic() + args.delay_ms / 1000.0, seq, sock, data, dest))
            return
        counts["forwarded"] += 1
        try:
            sock.sendto(data, dest)
        except OSError:
            pass

    def expire(now):
        for client, entry in list(upstream.items()):
            if now - entry[2] > args.idle_s:
                sel.unregister(entry[0])
                del by_sock[entry[0]]
                entry[0].close()
                del upstream[client]

    last_expiry = time.monotonic()
    while not stop:
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, sock, data, dest = heapq.heappop(held)
            try:
                sock.sendto(data, dest)
            except OSError:
                pass
        if now - last_expiry > min(args.idle_s, 5.0):
            expire(now)
            last_expiry = now
        timeout = max(0.0, held[0][0] - now) if held else 0.5
        try:
            ready = sel.select(timeout)
        except InterruptedError:
            continue
        for key, _ in ready:
            sock = key.fileobj
            for _ in range(64):  # what is queued, up to a bound: fair to the other sockets
                try:
                    data, src = sock.recvfrom(70000, socket.MSG_DONTWAIT)  # sends stay blocking
                except OSError:
                    break
                if sock is front:
                    entry = upstream.get(src)
                    if entry is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                        up.bind((shost, 0))
                        entry = upstream[src] = [up, None, now]
                        by_sock[up] = src
                        sel.register(up, selectors.EVENT_READ)
                    entry[2] = now
                    opcode = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
                    dest = server if opcode in (1, 2) or entry[1] is None else entry[1]
                    forward(entry[0], data, dest)
                else:
                    client = by_sock[sock]
                    if src != server:
                        upstream[client][1] = src  # the transfer's TID
                    forward(front, data, client)
    print("relay: forwarded %(forwarded)d dropped %(dropped)d reordered %(reordered)d" % counts,
          file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
