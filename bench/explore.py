"""``simnet explore`` throughput: scenarios per second, and what explore's own
machinery costs beside the scenario runs themselves.

For each scenario (the planted bug ``simnet.examples.buggy:scenario`` and the
chat demo ``simnet.examples.demo:chat``) and each ``-j`` (1 and 2) it times
``explore(scenario, seeds=N, jobs=J)`` end to end and reports runs/s. Then,
in one process, it splits the ``-j 1`` time into:

* **runs**: the scenario itself, run on the same (seed, plan) pairs, with
  nothing around it (its output sent to /dev/null);
* **generation**: drawing the N plans (:func:`simnet.plangen.random_plan`);
* **capture**: redirecting the program's output around each run;
* **pool start**: starting a 2-process pool and running one empty task on
  each (what ``-j 2`` pays before its first chunk);
* **the rest** of explore's time: shrinking each distinct failure once,
  recording its trace, merging, writing trace files.

A control comes first: two CPU-bound loops on a 2-process pool against the
same loops one after the other. On a shared machine the second core is
often busy, and then ``-j 2`` cannot beat ``-j 1`` however little explore's
machinery costs; the control says how much parallelism there was to gain.

The claim checked: no part of explore's machinery costs more than the runs.
Shared machines are noisy; each figure is the best of R repetitions.

Run it::

    python bench/explore.py                 # N=1000, R=3
    python bench/explore.py --seeds 300 --repeat 1
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simnet import explore as ex  # noqa: E402
from simnet.fakesock import FakeNetwork  # noqa: E402
from simnet.traces.replay import load_scenario  # noqa: E402

SCENARIOS = ["simnet.examples.buggy:scenario", "simnet.examples.demo:chat"]


def best(repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def draw(n: int) -> list[tuple[int, Any]]:
    """The (seed, plan) pairs explore runs for seeds 0 .. N-1."""
    import random

    from simnet.plangen import random_plan

    return [(k, random_plan(random.Random(f"simnet-explore:{k}"), ex.DEFAULT_FAULTS))
            for k in range(n)]


def run_bare(fn: Callable[..., Any], pairs: list[tuple[int, Any]], capture: bool = False) -> None:
    cap = ex._Capture() if capture else None
    if cap is None:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), \
                contextlib.redirect_stderr(null):
            for seed, plan in pairs:
                _one(fn, seed, plan)
        return
    with cap.active():  # as explore does it: once around a chunk, a take() per run
        for seed, plan in pairs:
            _one(fn, seed, plan)
            cap.take()


def _one(fn: Callable[..., Any], seed: int, plan: Any) -> None:
    try:
        with FakeNetwork(seed=seed, faults=plan) as net:
            fn(net)
    except Exception:  # noqa: BLE001 -- failures are runs too
        pass


def _noop(_: int) -> int:
    return 0


def pool_start() -> None:
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with ctx.Pool(2) as pool:
        pool.map(_noop, [0, 1])


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def parallel_control(repeat: int, n: int = 5_000_000) -> float:
    """How much faster two CPU-bound loops finish on a 2-process pool than
    one after the other (2.0 on two free cores): what ``-j 2`` can gain on
    this machine right now, whatever explore does."""
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with ctx.Pool(2) as pool:
        pool.map(_noop, [0, 1])  # started
        serial = best(repeat, lambda: (_burn(n), _burn(n)))
        parallel = best(repeat, lambda: pool.map(_burn, [n, n]))
    return serial / parallel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, r = args.seeds, args.repeat
    print(f"explore throughput, N={n} seeds, best of {r}, cpus={os.cpu_count()}, load average "
          f"{os.getloadavg()[0]:.1f}; control: two CPU loops on a 2-process pool run "
          f"{parallel_control(r):.2f}x faster than one after the other (2.00 = two free "
          "cores; -j 2 cannot gain more)")
    print(f"{'scenario':34} {'-j':>3} {'runs/s':>8} {'wall s':>7} {'failures':>8}")
    for name in SCENARIOS:
        for jobs in (1, 2):
            found: list[Any] = []

            def whole() -> None:
                with tempfile.TemporaryDirectory() as d:
                    found[:] = ex.explore(name, seeds=n, jobs=jobs, trace_dir=d)
            t = best(r, whole)
            print(f"{name:34} {jobs:>3} {n / t:>8.0f} {t:>7.2f} {len(found):>8}")
    print()
    print("where the -j 1 time goes (seconds; share of explore's wall time)")
    print(f"{'scenario':34} {'explore':>8} {'runs':>8} {'generate':>9} {'capture':>8} "
          f"{'rest':>8} {'pool(-j2)':>9}")
    t_pool = best(r, pool_start)
    for name in SCENARIOS:
        fn = load_scenario(name)
        pairs = draw(n)

        def whole1() -> None:
            with tempfile.TemporaryDirectory() as d:
                ex.explore(name, seeds=n, jobs=1, trace_dir=d)
        t_all = best(r, whole1)
        t_runs = best(r, lambda: run_bare(fn, pairs))
        t_cap = best(r, lambda: run_bare(fn, pairs, capture=True)) - t_runs
        t_gen = best(r, lambda: draw(n))
        rest = t_all - t_runs - max(t_cap, 0.0) - t_gen
        print(f"{name:34} {t_all:>8.2f} {t_runs:>8.2f} {t_gen:>9.2f} {max(t_cap, 0):>8.2f} "
              f"{rest:>8.2f} {t_pool:>9.2f}")
        share = {"generate": t_gen, "capture": t_cap, "rest": rest, "pool start": t_pool}
        worst = max(share, key=lambda k: share[k])
        verdict = "ok" if share[worst] <= t_runs else "MACHINERY COSTS MORE THAN THE RUNS"
        print(f"{'':34} largest machinery part: {worst} = {share[worst] / t_runs:.2f}x the runs: {verdict}")


if __name__ == "__main__":
    main()
