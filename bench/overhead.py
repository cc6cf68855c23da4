"""Overhead of tracing and of an empty fault plan, on the echo workload.

Runs the ``bench/echo.py`` workload on the fake network three ways, in one
process, interleaved: plain, with ``trace=True``, and with an empty
``FaultPlan``; prints each one's time as a ratio to the plain run (median of
the interleaved pairs, with min and max). Targets: tracing <= 1.3x, an empty
plan <= 1.05x. Real sockets: with ``--backend real``, the same with
``RealNetwork(trace=True)`` / ``RealNetwork(faults=FaultPlan())`` against
plain kernel sockets (needs RealNetwork's fault support).

    python bench/overhead.py [-C 100] [-M 400] [-R 7] [--backend fake|real]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import echo  # noqa: E402  (bench/echo.py: the workload)


def contenders(backend_name: str) -> list[echo.Contender]:
    import simnet.asyncore as mod
    from simnet.faults import FaultPlan

    kwargs = echo._simnet_loop_kwargs
    if backend_name == "fake":
        from simnet.fakesock import FakeNetwork

        return [
            echo.Contender("plain", mod, kwargs, session=lambda: FakeNetwork(seed=1)),
            echo.Contender("trace", mod, kwargs, session=lambda: FakeNetwork(seed=1, trace=True)),
            echo.Contender("empty plan", mod, kwargs,
                           session=lambda: FakeNetwork(seed=1, faults=FaultPlan())),
        ]
    from simnet.real import RealNetwork

    return [
        echo.Contender("plain", mod, kwargs),
        echo.Contender("trace", mod, kwargs, session=lambda: RealNetwork(trace=True)),
        echo.Contender("empty plan", mod, kwargs, session=lambda: RealNetwork(faults=FaultPlan())),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["fake", "real"], default="fake")
    parser.add_argument("-C", "--clients", type=int, default=100)
    parser.add_argument("-M", "--trips", type=int, default=400)
    parser.add_argument("-R", "--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.trips < 1 or args.repeat < 1:
        parser.error("-C, -M and -R must be >= 1")
    backend = echo.BACKENDS[args.backend]()
    case = echo.Case("select", clients=args.clients, trips=args.trips)
    cs = contenders(args.backend)
    warm = echo.Case("select", clients=args.clients, trips=max(1, args.trips // 10))
    times: dict[str, list[float]] = {c.name: [] for c in cs}
    ratios: dict[str, list[float]] = {c.name: [] for c in cs[1:]}
    with echo.fd_limit(backend.fds_needed(case)):
        for c in cs:
            echo.run_echo(backend, c, warm)
        for _ in range(args.repeat):
            runs = {c.name: echo.run_echo(backend, c, case) for c in cs}
            for name, run in runs.items():
                times[name].append(run.seconds)
            for c in cs[1:]:
                ratios[c.name].append(runs[c.name].seconds / runs["plain"].seconds)
    targets = {"trace": 1.3, "empty plan": 1.05}
    print(f"backend: {args.backend}, echo C={args.clients} x {args.trips} round trips, "
          f"{args.repeat} interleaved repetitions; time ratio to the plain run")
    ok = True
    for name, rs in ratios.items():
        med = statistics.median(rs)
        good = med <= targets[name]
        ok &= good
        print(f"  {name:<11} {med:6.3f}x [{min(rs):.3f} - {max(rs):.3f}]  target <= {targets[name]}x "
              f"{'ok' if good else 'ABOVE'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
