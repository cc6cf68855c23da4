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

Run it::

    python bench/fake_connects.py
    python bench/fake_connects.py --connections 100000 --window 2000
"""

from __future__ import annotations

import argparse
import sys
import time

from simnet.fakesock import FakeNetwork


def run(connections: int, window: int, latency: float) -> tuple[float, float, int]:
    """Return (us per connect at the start, at the end, distinct ports used)."""
    with FakeNetwork(seed=1, latency=latency) as net:
        lst = net.socket()
        lst.bind(("127.0.0.1", 8080))
        lst.listen(128)
        ports = set()
        marks = {}
        t0 = time.perf_counter()
        for i in range(connections):
            if i == window:
                marks["start"] = (time.perf_counter() - t0) / window
            if i == connections - window:
                t_end = time.perf_counter()
            cli = net.socket()
            cli.connect(("127.0.0.1", 8080))
            srv, _ = lst.accept()
            ports.add(cli.getsockname()[1])
            cli.close()
            srv.close()
        marks["end"] = (time.perf_counter() - t_end) / window
        lst.close()
    return marks["start"] * 1e6, marks["end"] * 1e6, len(ports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=1000,
                        help="connections averaged at the start and at the end")
    parser.add_argument("--latency", type=float, default=0.0005,
                        help="one-way link latency in virtual seconds")
    args = parser.parse_args(argv)
    if args.connections < 2 * args.window or args.window < 1:
        parser.error("--connections must be at least twice --window (and --window >= 1)")
    start, end, ports = run(args.connections, args.window, args.latency)
    print(f"connections: {args.connections} to one server from 127.0.0.1 "
          f"({ports} distinct local ports)")
    print(f"start: {start:.1f} us per connect (first {args.window})")
    print(f"end:   {end:.1f} us per connect (last {args.window})")
    print(f"ratio end/start: {end / start:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
