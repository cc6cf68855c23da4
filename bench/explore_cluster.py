"""Scenarios per second of ``simnet explore``: locally (``-j 2``) and through
a Dask scheduler with two workers on this machine, and the overhead per task.

Starts a ``dask scheduler`` and two ``dask worker --nthreads 1`` processes on
127.0.0.1 (dashboards off, ports picked by the OS), waits for them, then runs
the same search both ways (``--repeat`` times each, interleaved, the fastest
counting) and checks the two results are equal. Usage::

    python bench/explore_cluster.py [--seeds 2000] [--repeat 2] [--scenario MODULE:FUNCTION]

Prints, for each way: wall seconds, scenarios per second; then the overhead
per task: (cluster seconds - local seconds) / tasks, where a task is one
chunk of ``simnet.explore.CHUNK`` seeds -- what a Dask round trip (submit,
schedule, ship the result and traces back) costs on top of a local pool.
Cluster start-up is not counted. Also measures the bare Dask round trip of
a no-op task on the same cluster, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _dask(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("dask")
    return ([str(script)] if script.exists() else [sys.executable, "-m", "dask"]) + list(args)


def _noop(x: int) -> int:
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2000)
    parser.add_argument("--scenario", default="simnet.examples.buggy:scenario")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each, interleaved; the fastest counts (the machine is shared)")
    args = parser.parse_args()

    from distributed import Client

    from simnet.explore import CHUNK, explore

    base = Path(tempfile.mkdtemp(prefix="simnet-bench-"))
    info = base / "scheduler.json"
    procs = [subprocess.Popen(_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                    "--scheduler-file", str(info)),
                              cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not (info.exists() and info.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)
        address = json.loads(info.read_text())["address"]
        for i in range(2):
            procs.append(subprocess.Popen(
                _dask("worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard",
                      "--local-directory", str(base / f"w{i}")),
                cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, set_as_default=False, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            tasks = -(-args.seeds // CHUNK)
            # warm both: imports on the workers, the local pool's fork
            explore(args.scenario, seeds=CHUNK * 4, scheduler=client, trace_dir=str(base / "warm1"))
            explore(args.scenario, seeds=CHUNK * 4, jobs=2, trace_dir=str(base / "warm2"))

            local_s = remote_s = float("inf")
            for r in range(args.repeat):
                t = time.perf_counter()
                local = explore(args.scenario, seeds=args.seeds, jobs=2, trace_dir=str(base / f"local{r}"))
                local_s = min(local_s, time.perf_counter() - t)

                t = time.perf_counter()
                remote = explore(args.scenario, seeds=args.seeds, scheduler=client,
                                 trace_dir=str(base / f"remote{r}"))
                remote_s = min(remote_s, time.perf_counter() - t)

            n = 400
            t = time.perf_counter()
            client.gather(client.map(_noop, range(n), pure=False))
            noop_ms = (time.perf_counter() - t) / n * 1000

        same = ([(f.key, f.seed, f.plan.to_list(), f.count) for f in local]
                == [(f.key, f.seed, f.plan.to_list(), f.count) for f in remote])
        print(f"seeds {args.seeds}, tasks {tasks} of {CHUNK} seeds, scenario {args.scenario}")
        print(f"local -j 2:          {local_s:7.2f} s  {args.seeds / local_s:8.0f} scenarios/s")
        print(f"scheduler, 2 workers:{remote_s:7.2f} s  {args.seeds / remote_s:8.0f} scenarios/s")
        print(f"overhead per task:   {(remote_s - local_s) / tasks * 1000:7.2f} ms "
              f"(ratio {remote_s / local_s:.2f}x); bare Dask round trip of a no-op task "
              f"(2 workers): {noop_ms:.2f} ms")
        print(f"results equal: {same}")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
