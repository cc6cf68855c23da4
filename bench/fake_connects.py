"""Connect cost on the fake network: many connections, one server, one client address.

N connections (default 50,000) are made one after another from 127.0.0.1 to
one listening socket on the fake network: blocking ``connect()``, ``accept()``,
then the client closes first (its 4-tuple goes to TIME_WAIT, as on Linux) and
the server side closes. 50,000 is more than the 28,232 ephemeral ports, so
the run only completes if ports come back: on Linux loopback a TIME_WAIT
4-tuple is reusable after 1 s (``tcp_tw_reuse=2``), and each connect takes
virtual time (``--latency``, one way), so the second pass over the range
finds them reusable.

What it reports: wall-clock microseconds per connect (the whole cycle above)
over the first and the last ``--window`` connections, and their ratio
(end / start). Port allocation is amortised O(1), so the ratio stays near 1
(the requirement: under 2).

With ``--keep-open --servers 2`` every connection stays open, spread over two
listening ports of the same server address: 50,000 open connections from one
client address need each local port twice (4-tuples differ by the server
port), as Linux allows; with one server port, connect fails with
EADDRNOTAVAIL after 28,232 (as on Linux). The heap then grows by ~100,000
sockets, and CPython's cyclic garbage collector's full passes over it land in
whichever window they fall; ``--no-gc`` disables the collector during the run
to measure simnet's own per-connect cost.

Run it::

    python bench/fake_connects.py
    python bench/fake_connects.py --connections 100000 --window 2000
    python bench/fake_connects.py --keep-open --servers 2 --no-gc
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

from simnet.fakesock import FakeNetwork


def run(connections: int, window: int, latency: float, keep_open: bool = False,
        servers: int = 1) -> tuple[float, float, int]:
    """Return (us per connect at the start, at the end, distinct ports used)."""
    with FakeNetwork(seed=1, latency=latency) as net:
        listeners = []
        for k in range(servers):
            lst = net.socket()
            lst.bind(("127.0.0.1", 8080 + k))
            lst.listen(128)
            listeners.append(lst)
        kept = []
        ports = set()
        marks = {}
        t0 = time.perf_counter()
        for i in range(connections):
            if i == window:
                marks["start"] = (time.perf_counter() - t0) / window
            if i == connections - window:
                t_end = time.perf_counter()
            k = i % servers
            cli = net.socket()
            try:
                cli.connect(("127.0.0.1", 8080 + k))
            except OSError as exc:
                raise SystemExit(f"connect #{i + 1} failed: {exc} (Linux fails there too: "
                                 f"{len(ports)} local ports for one destination)") from None
            srv, _ = listeners[k].accept()
            ports.add(cli.getsockname()[1])
            if keep_open:
                kept += (cli, srv)
            else:
                cli.close()
                srv.close()
        marks["end"] = (time.perf_counter() - t_end) / window
    return marks["start"] * 1e6, marks["end"] * 1e6, len(ports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=1000,
                        help="connections averaged at the start and at the end")
    parser.add_argument("--latency", type=float, default=0.0005,
                        help="one-way link latency in virtual seconds")
    parser.add_argument("--keep-open", action="store_true",
                        help="keep every connection open (no TIME_WAIT involved)")
    parser.add_argument("--servers", type=int, default=1,
                        help="listening ports on the server address, used round robin")
    parser.add_argument("--no-gc", action="store_true",
                        help="disable the cyclic garbage collector during the run")
    args = parser.parse_args(argv)
    if args.connections < 2 * args.window or args.window < 1:
        parser.error("--connections must be at least twice --window (and --window >= 1)")
    if args.servers < 1:
        parser.error("--servers must be >= 1")
    if args.no_gc:
        gc.disable()
    try:
        start, end, ports = run(args.connections, args.window, args.latency, args.keep_open,
                                args.servers)
    finally:
        gc.enable()
    print(f"connections: {args.connections} to 127.0.0.1 ({args.servers} port(s)) from "
          f"127.0.0.1, {'kept open' if args.keep_open else 'each closed'} "
          f"({ports} distinct local ports){', cyclic GC off' if args.no_gc else ''}")
    print(f"start: {start:.1f} us per connect (first {args.window})")
    print(f"end:   {end:.1f} us per connect (last {args.window})")
    print(f"ratio end/start: {end / start:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
