"""Cost of a loop pass with nothing ready, per idle channel: fake vs kernel.

N idle channels (connected stream sockets whose dispatcher is readable, not
writable, and which never receive anything) in one map; one pass is
``poll(0.0, map)`` -- ask every channel ``readable()``/``writable()``, wait
(not at all), dispatch nothing. Interleaved in one process:

* **stdlib**: CPython's ``asyncore.poll`` over N real ``socketpair()`` ends
  (``select.select`` with N descriptors; the peers are moved above
  descriptor 1024 so that N=1,000 still fits select's FD_SETSIZE);
* **simnet-fake**: ``simnet.asyncore.poll`` over N fake TCP connections on a
  :class:`~simnet.fakesock.FakeNetwork`.

On the fake network a far-away timer is pending during the fake runs: a pass
with nothing ready *and nothing pending* is how the network detects a
deadlock (it raises after a thousand of them), and a program with idle
channels normally has a timeout armed. The stdlib runs have no timer. The
timer re-arms itself when it runs: since idle passes cost virtual time (a
FakeNetwork's *pass_cost*), a long run of them fast-forwards the clock to
the timer, as a real idle program's clock reaches its timeout; without a
next one the network would then report a livelock.

Reported per N: microseconds per pass and per channel for each, and the
ratio fake/stdlib (median [min - max] over the interleaved repetitions).
Target (issue 12): ratio <= 1 at N = 10, 100 and 1,000.

    python bench/idle.py [-N 10 100 1000] [-R 7] [--poller select|poll]
"""

from __future__ import annotations

import argparse
import fcntl
import gc
import os
import socket
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import echo  # noqa: E402  (bench/echo.py: stdlib import, fd limit)

#: channel visits per timed run (passes = VISITS // N, at least 200)
VISITS = 400_000


def idle_class(mod: Any) -> type:
    class Idle(mod.dispatcher):
        def readable(self) -> bool:
            return True

        def writable(self) -> bool:
            return False

        def handle_read(self) -> None:
            raise AssertionError("an idle channel was read")

        def handle_error(self) -> None:
            raise

    return Idle


def real_pairs(n: int) -> tuple[list[socket.socket], list[socket.socket]]:
    """*n* socketpairs whose map ends have low descriptors (peers moved up)."""
    ends, peers = [], []
    for _ in range(n):
        a, b = socket.socketpair()
        high = fcntl.fcntl(b.fileno(), fcntl.F_DUPFD, 1100)
        b.close()
        ends.append(a)
        peers.append(socket.socket(fileno=high))
    return ends, peers


def time_passes(poll: Any, channels: dict, passes: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(passes):
        poll(0.0, channels)
    return time.perf_counter() - start


def run_stdlib(n: int, passes: int, use_poll: bool) -> float:
    mod = echo.import_stdlib_asyncore()
    Idle = idle_class(mod)
    ends, peers = real_pairs(n)
    channels: dict = {}
    try:
        for s in ends:
            Idle(s, channels)
        return time_passes(mod.poll2 if use_poll else mod.poll, channels, passes)
    finally:
        mod.close_all(channels)
        for s in peers:
            s.close()


def run_fake(n: int, passes: int, use_poll: bool) -> float:
    import simnet.asyncore as mod
    from simnet.fakesock import FakeNetwork

    Idle = idle_class(mod)
    channels: dict = {}
    with FakeNetwork(seed=1) as net:
        ends, _peers = echo.FakeBackend().idle_sockets(n)
        for s in ends:
            Idle(s, channels)
        def rearm() -> None:  # see the module docstring
            nonlocal keep
            keep = net.timers.call_later(3600.0, rearm)

        keep = net.timers.call_later(3600.0, rearm)
        try:
            return time_passes(mod.poll2 if use_poll else mod.poll, channels, passes)
        finally:
            keep.cancel()
            mod.close_all(channels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-N", "--channels", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("-R", "--repeat", type=int, default=7)
    parser.add_argument("--poller", choices=("select", "poll"), default="select")
    args = parser.parse_args(argv)
    if args.repeat < 1 or any(n < 1 for n in args.channels):
        parser.error("-N and -R must be >= 1")
    if args.poller == "select" and max(args.channels) > 1000:
        parser.error("select() stops at FD_SETSIZE: -N at most 1000 (or --poller poll)")
    use_poll = args.poller == "poll"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.1f} (a shared machine: read the ratios); one pass = "
          f"{'poll2' if use_poll else 'poll'}(0.0, map) with nothing ready; "
          f"{args.repeat} interleaved repetitions")
    print(f"{'N':>6}{'stdlib us/pass':>16}{'fake us/pass':>14}{'stdlib ns/ch':>14}"
          f"{'fake ns/ch':>12}   fake/stdlib median [min - max]   target <= 1")
    ok = True
    with echo.fd_limit(3 * max(args.channels) + 1200):
        for n in args.channels:
            passes = max(200, VISITS // n)
            run_stdlib(n, passes // 10, use_poll)  # warm-up
            run_fake(n, passes // 10, use_poll)
            std, fake, ratios = [], [], []
            for _ in range(args.repeat):
                s = run_stdlib(n, passes, use_poll) / passes
                f = run_fake(n, passes, use_poll) / passes
                std.append(s)
                fake.append(f)
                ratios.append(f / s)
            med = statistics.median
            r = med(ratios)
            ok &= r <= 1.0
            print(f"{n:>6}{med(std) * 1e6:16.1f}{med(fake) * 1e6:14.1f}{med(std) * 1e9 / n:14.0f}"
                  f"{med(fake) * 1e9 / n:12.0f}   {r:6.2f}x [{min(ratios):.2f} - {max(ratios):.2f}]"
                  f"{'ok' if r <= 1.0 else 'ABOVE':>16}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
