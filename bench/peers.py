"""Echo ping-pong on simnet's fake network next to its peers, in one run.

The same workload as ``bench/echo.py`` (C clients, each doing M round trips
of B bytes against an echo server), three ways, interleaved per repetition:

* **stdlib**: CPython's ``asyncore`` on real loopback sockets -- the baseline;
* **simnet-fake**: ``simnet.asyncore`` on a :class:`~simnet.fakesock.FakeNetwork`
  (the very dispatcher classes ``bench/echo.py`` runs);
* **twisted-iosim**: Twisted protocols over ``twisted.test.iosim``'s
  ``FakeTransport`` pairs, moved by one ``IOPump.pump()`` per connection per
  pass -- the in-memory transport Twisted's own tests use, the fastest peer
  on record. Skipped, with a message, when Twisted is not installed
  (``pip install simnet[bench]``).

Reported: each one's rate (round trips/s, medians) and its ratio to the stdlib
run of the same repetition (median [min - max]). The fake network's target
(issue 12) is >= 3x the stdlib at C=1 and C=100, B=64.

    python bench/peers.py [-R 5] [--scale 0.2] [-C 100 -M 800]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import echo  # noqa: E402  (bench/echo.py: the workload and its harness)

TARGET = 3.0


# ---------------------------------------------------------------------------
# Twisted's in-memory transport


def twisted_runner() -> Callable[[echo.Case], echo.RunResult] | str:
    """A function running a case on Twisted's iosim, or why there is none."""
    try:
        from twisted.internet.protocol import Protocol
        from twisted.test import iosim
    except ImportError as exc:
        return f"Twisted is not installed ({exc}); pip install 'simnet[bench]' to add this column"

    class EchoServer(Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(data)

    class PingClient(Protocol):
        def __init__(self, payload: bytes, trips: int, stats: echo.Stats) -> None:
            self.payload = payload
            self.left = trips
            self.got = 0
            self.stats = stats

        def connectionMade(self) -> None:
            self.transport.write(self.payload)

        def dataReceived(self, data: bytes) -> None:
            self.got += len(data)
            if self.got < len(self.payload):
                return
            if self.got > len(self.payload):
                raise AssertionError(f"echoed {self.got} bytes for {len(self.payload)}")
            self.got = 0
            self.stats.round_trips += 1
            self.left -= 1
            if self.left:
                self.transport.write(self.payload)
            else:
                self.stats.done += 1

    def run(case: echo.Case) -> echo.RunResult:
        stats = echo.Stats(clients=case.clients)
        payload = b"x" * case.size
        pumps = []
        for _ in range(case.clients):
            server, client = EchoServer(), PingClient(payload, case.trips, stats)
            pumps.append(iosim.connect(server, iosim.makeFakeServer(server),
                                       client, iosim.makeFakeClient(client), greet=False))
        gc.collect()
        deadline = time.perf_counter() + echo.RUN_DEADLINE
        start = time.perf_counter()
        passes = 0
        while stats.done < case.clients:
            for pump in pumps:
                pump.pump()
            passes += 1
            if not passes % 10_000 and time.perf_counter() > deadline:
                raise echo.BenchError(f"twisted-iosim: still going after {echo.RUN_DEADLINE}s")
        elapsed = time.perf_counter() - start
        if stats.round_trips != case.round_trips:
            raise echo.BenchError(f"twisted-iosim: {stats.round_trips} round trips, "
                                  f"expected {case.round_trips}")
        return echo.RunResult(stats.round_trips, elapsed)

    return run


# ---------------------------------------------------------------------------


def cases(scale: float, clients: int | None, trips: int | None, size: int) -> list[echo.Case]:
    if clients is not None:
        total = 60_000 if clients == 1 else 80_000
        t = trips if trips is not None else max(1, total // clients)
        chosen = [echo.Case("select", clients, t, size, target=TARGET)]
    else:
        chosen = [echo.Case("select", 1, 40_000, size, target=TARGET),
                  echo.Case("select", 100, 600, size, target=TARGET)]
    return [echo.Case(c.poller, c.clients, max(1, round(c.trips * scale)), c.size,
                      target=c.target) for c in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-R", "--repeat", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every case's round trips (0.1 for a smoke run)")
    parser.add_argument("-C", "--clients", type=int, help="one case with C clients")
    parser.add_argument("-M", "--trips", type=int, help="round trips per client (with -C)")
    parser.add_argument("-B", "--size", type=int, default=64)
    args = parser.parse_args(argv)
    if args.repeat < 1 or not args.scale > 0 or args.size < 1 or (
            args.clients is not None and args.clients < 1) or (args.trips is not None and args.trips < 1):
        parser.error("-R, -C, -M, -B must be >= 1 and --scale > 0")
    if args.trips is not None and args.clients is None:
        parser.error("-M needs -C")
    backend = echo.FakeBackend()
    stdlib, fake = backend.contenders()
    twisted = twisted_runner()
    runners: dict[str, Callable[[echo.Case], echo.RunResult]] = {
        "stdlib": lambda case: echo.run_echo(backend, stdlib, case),
        "simnet-fake": lambda case: echo.run_echo(backend, fake, case),
    }
    if callable(twisted):
        runners["twisted-iosim"] = twisted
    else:
        print(f"twisted-iosim column skipped: {twisted}")
    started = time.perf_counter()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.1f} (a shared machine: read the ratios, not the rates); "
          f"{args.repeat} interleaved repetitions; ratio = rate / stdlib's rate in the same repetition")
    names = list(runners)
    head = f"{'case':<20}" + "".join(f"{n + ' rt/s':>19}" for n in names) + "".join(
        f"{n + '/stdlib':>32}" for n in names[1:])
    print(head)
    print("-" * len(head))
    ok = True
    for case in cases(args.scale, args.clients, args.trips, args.size):
        warm = echo.Case(case.poller, case.clients, max(1, case.trips // 10), case.size)
        rates: dict[str, list[float]] = {n: [] for n in names}
        ratios: dict[str, list[float]] = {n: [] for n in names[1:]}
        with echo.fd_limit(backend.fds_needed(case)):
            for run in runners.values():
                run(warm)
            for _ in range(args.repeat):
                got = {n: runners[n](case).rate for n in names}
                for n in names:
                    rates[n].append(got[n])
                for n in names[1:]:
                    ratios[n].append(got[n] / got["stdlib"])
        med = statistics.median
        row = f"{f'C={case.clients} B={case.size}':<20}" + "".join(f"{med(rates[n]):19.0f}" for n in names)
        for n in names[1:]:
            rs = ratios[n]
            row += f"{med(rs):>11.2f}x [{min(rs):.2f} - {max(rs):.2f}]".rjust(32)
        fake_ratio = med(ratios["simnet-fake"])
        ok &= fake_ratio >= TARGET
        print(row)
    print(f"target: simnet-fake >= {TARGET}x stdlib at every case -> {'ok' if ok else 'BELOW'} "
          f"({time.perf_counter() - started:.0f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
