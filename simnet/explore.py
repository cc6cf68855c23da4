"""Fault exploration: run a scenario under many seeds and random fault plans.

A *scenario* is a module-level function ``scenario(net)`` that runs a
dispatcher program on the fake network and raises (an ``AssertionError``,
say) when the program misbehaves. :func:`explore` runs it under ``seeds``
random (seed, fault plan) pairs drawn by Hypothesis, in parallel on ``jobs``
processes; Hypothesis shrinks each failure to the smallest plan that still
fails. Every distinct failure is returned with its plan, its seed and a trace
file whose replay reproduces it::

    from simnet.explore import explore
    for failure in explore("myproto.tests:scenario", seeds=500, jobs=2):
        print(failure.describe())

From the command line: ``simnet explore myproto.tests:scenario --seeds 500 -j 2``.
Runs beyond one machine go through pytest-xdist instead:
``pytest -n auto --simnet-seeds 500``.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from simnet.faults import FaultPlan
from simnet.replay import load_scenario, scenario_name

__all__ = ["explore", "Failure"]

#: Examples one worker task runs (a unit of progress and of parallelism).
CHUNK = 10


@dataclass
class Failure:
    """A distinct failure found by :func:`explore`, shrunk."""

    scenario: str
    seed: int
    plan: FaultPlan
    error: str
    trace_path: str | None = None
    count: int = 1
    key: str = field(default="", repr=False)

    @property
    def replay_command(self) -> str:
        return f"simnet replay {self.trace_path}" if self.trace_path else ""

    def describe(self) -> str:
        lines = [f"{self.error}",
                 f"  seed: {self.seed}",
                 "  plan: " + self.plan.describe().replace("\n", "\n        "),
                 f"  plan (JSON): {self.plan.to_json()}"]
        if self.trace_path:
            lines.append(f"  replay: {self.replay_command}")
        if self.count > 1:
            lines.append(f"  seen {self.count} times")
        return "\n".join(lines)


def _failure_key(error: str) -> str:
    # the same failure with other numbers in its message is the same failure
    return re.sub(r"\d+", "N", error.splitlines()[0] if error else "")


def _run_chunk(args: tuple) -> tuple[int, list[dict[str, Any]]]:
    """Worker: one Hypothesis search of CHUNK examples; returns failures found."""
    name, chunk_index, examples, faults, max_rules, trace_dir = args
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from simnet.fakesock import FakeNetwork
    from simnet.strategies import fault_plans

    scenario = load_scenario(name)
    last: dict[str, Any] = {}

    @hypothesis_seed(chunk_index)
    @settings(max_examples=examples, database=None, deadline=None, derandomize=False,
              phases=[Phase.generate, Phase.shrink], report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(plan=fault_plans(faults=faults, max_rules=max_rules), seed=st.integers(0, 2 ** 32 - 1))
    def prop(plan: FaultPlan, seed: int) -> None:
        last["plan"], last["seed"] = plan, seed
        with FakeNetwork(seed=seed, faults=plan) as net:
            scenario(net)

    try:
        prop()
    except Exception as exc:  # noqa: BLE001 -- any failure of the scenario is a finding
        # (str(exc) leaves out the notes Hypothesis adds to the exception)
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        plan, seed = last["plan"], last["seed"]
        path = None
        if trace_dir:
            from simnet.replay import record

            path = os.path.join(trace_dir, f"failure-{chunk_index}-seed{seed}.jsonl")
            try:
                record(scenario, path, seed=seed, faults=plan)
            except Exception:  # noqa: BLE001 -- expected: it fails again, and the trace is written
                pass
        return chunk_index, [{"seed": seed, "plan": plan.to_list(), "error": error, "trace": path}]
    return chunk_index, []


def explore(scenario: str | Callable[..., Any], *, seeds: int = 100, jobs: int = 1,
            faults: Sequence[str] | None = None, max_rules: int = 3, stop: bool = False,
            trace_dir: str | None = None,
            progress: Callable[[int, int, int], None] | None = None) -> list[Failure]:
    """Run *scenario* under *seeds* random (seed, plan) pairs; return the
    distinct failures, each shrunk.

    *scenario* is a function or its ``"module:function"`` name (workers
    import it by name). *jobs* processes share the work (0: one per core).
    *faults* restricts the fault kinds drawn; *max_rules* bounds plan size.
    *stop* ends the run at the first failure. *trace_dir* receives a trace of
    each failure (default: a new temporary directory). *progress*, if given,
    is called as ``progress(done, total, failures)`` as work completes.
    """
    name = scenario if isinstance(scenario, str) else scenario_name(scenario)
    load_scenario(name)  # fail early, with a clear message, on a bad name
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive int, got {seeds!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ValueError(f"jobs must be an int >= 0 (0: one per core), got {jobs!r}")
    if faults is not None:
        from simnet.faults import FAULTS

        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault kind(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
        faults = list(faults)
    if trace_dir is None:
        trace_dir = tempfile.mkdtemp(prefix="simnet-explore-")
    os.makedirs(trace_dir, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    tasks = []
    remaining = seeds
    index = 0
    while remaining > 0:
        n = min(CHUNK, remaining)
        tasks.append((name, index, n, faults, max_rules, trace_dir))
        remaining -= n
        index += 1
    found: dict[str, Failure] = {}
    done = 0

    def results() -> Iterator[tuple[int, list[dict[str, Any]]]]:
        if jobs == 1:
            for task in tasks:
                yield _run_chunk(task)
            return
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        with ctx.Pool(jobs) as pool:
            yield from pool.imap_unordered(_run_chunk, tasks)

    for index, failures in results():
        done += tasks[index][2]
        for f in failures:
            key = _failure_key(f["error"])
            if key in found:
                found[key].count += 1
                # keep the smaller plan
                if len(f["plan"]) < len(found[key].plan):
                    found[key] = Failure(name, f["seed"], FaultPlan(f["plan"]), f["error"],
                                         f["trace"], found[key].count, key)
                continue
            found[key] = Failure(name, f["seed"], FaultPlan(f["plan"]), f["error"], f["trace"], 1, key)
        if progress is not None:
            progress(done, seeds, len(found))
        if stop and found:
            break
    return sorted(found.values(), key=lambda f: (len(f.plan), f.key))
