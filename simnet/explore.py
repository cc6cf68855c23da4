"""Fault exploration: run a scenario under many seeds and random fault plans.

A *scenario* is a module-level function ``scenario(net)`` that runs a
dispatcher program on the fake network and raises (an ``AssertionError``,
say) when the program misbehaves. :func:`explore` runs it on seeds 0 ..
``seeds`` - 1, each under a random fault plan drawn from that seed
(:mod:`simnet.plangen`), in parallel on ``jobs`` processes, and shrinks
each distinct failure once to the simplest plan and seed that still fail.
Every distinct failure is returned with its plan, its seed, how often it was
seen and a trace file whose replay reproduces it::

    from simnet.explore import explore
    for failure in explore("myproto.tests:scenario", seeds=500, jobs=2):
        print(failure.describe())

From the command line: ``simnet explore myproto.tests:scenario --seeds 500 -j 2``.
Nothing beyond simnet is needed (the generator and shrinker are simnet's
own: Hypothesis' engine cost more per example than the scenarios did).

**A finding is a bug.** The plans drawn are *transient*
(:func:`simnet.strategies.breaks_for_good` is false for every rule, and
shrinking keeps it so): a fault that could stop the network from working --
a refused connect, a reset, a spurious EAGAIN, a lost datagram -- always
stops after a few firings, after a time window, or on one connection or one
call; a partition always heals. A program that retries gets through every
plan, so a failure under one is the program's. ``permanent=True`` also
draws rules that break the network for good.

The unit of work is :func:`run_chunk` -- a plain function that runs a range
of seeds and returns the failures it found, by :func:`failure_key`, as
plain data -- so another scheduler can run the chunks
(``explore(..., map_chunks=...)``); :func:`shrink_failure` then shrinks
the smallest failing seed of each key, with its trace as bytes.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import logging
import multiprocessing
import os
import random
import re
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from simnet.faults import FAULTS, FaultPlan
from simnet.traces.replay import load_scenario, scenario_name

__all__ = ["explore", "Failure", "run_chunk", "shrink_failure", "trace_failure", "ChunkResult",
           "Found", "chunks", "failure_key",
           "DEFAULT_FAULTS"]

#: Seeds one task runs (a unit of progress and of parallelism; big enough
#: that handing a task to a worker costs little beside its runs).
CHUNK = 100

#: Trace files written per distinct failure: its shrunk run, and up to two
#: runs as found (the smallest failing seeds).
TRACES_PER_FAILURE = 3

#: Lines of the program's own output kept with each failure.
OUTPUT_LINES_KEPT = 20

#: Fault kinds drawn unless asked for: all -- but ``eintr`` only where the
#: fake network models it as Python >= 3.5 programs see it (PEP 475: an
#: early, empty wake-up; its ``exception`` parameter marks that model). An
#: older model raised ``InterruptedError`` out of the loop's wait, which no
#: program survives. Name it in ``faults`` to draw it anyway.
DEFAULT_FAULTS: tuple[str, ...] = tuple(
    k for k in FAULTS if k != "eintr" or "exception" in FAULTS["eintr"])


# -- results --------------------------------------------------------------------------

@dataclass
class Found:
    """One failing run: its key, error, seed and plan, how many runs of its
    chunk failed alike (*count*), and -- once traced -- its trace as bytes
    and the program's output (plain data: it crosses process and machine
    boundaries)."""

    key: str
    error: str
    seed: int
    plan: list[dict[str, Any]]
    count: int = 1
    trace: bytes | None = None
    output: list[str] = field(default_factory=list)


@dataclass
class ChunkResult:
    """What :func:`run_chunk` returns: *runs* seeds were run; *failures*
    holds, per key, the smallest failing seeds (unshrunk); *seen* counts
    every failure by key; *output* counts the program's own output lines
    (masked to their shape) over all the runs."""

    first: int
    runs: int
    failures: list[Found] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    output: dict[str, int] = field(default_factory=dict)
    output_lines: int = 0


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
    output: list[str] = field(default_factory=list, repr=False)
    other_traces: list[str] = field(default_factory=list, repr=False)
    trace: bytes | None = field(default=None, repr=False)
    #: up to two runs of this failure as they were found (unshrunk), traced
    variants: list[Found] = field(default_factory=list, repr=False)

    @property
    def replay_command(self) -> str:
        import shlex

        return f"simnet replay {shlex.quote(self.trace_path)}" if self.trace_path else ""

    def describe(self) -> str:
        lines = [self.error.splitlines()[0] if self.error else "(no message)",
                 f"  seed: {self.seed}",
                 "  plan: " + self.plan.describe().replace("\n", "\n        "),
                 f"  plan (JSON): {self.plan.to_json()}"]
        from simnet.plangen import breaks_for_good

        broken = [i for i, rule in enumerate(self.plan, 1) if breaks_for_good(rule)]
        if broken:
            lines.append(f"  (rule {', '.join(map(str, broken))} breaks the network for good: "
                         "no program survives it; drawn because of --permanent)")
        if self.count > 1:
            lines.append(f"  seen in {self.count} runs")
        if self.output:
            lines.append(f"  program output in this run ({len(self.output)} line(s)): "
                         + _shorten(self.output[0], 100))
        if self.trace_path:
            lines.append(f"  replay: {self.replay_command}")
        if self.other_traces:
            lines.append(f"  as found (unshrunk): {', '.join(self.other_traces)}")
        return "\n".join(lines)


def failure_key(exc: BaseException) -> str:
    """What makes two failures the same: the exception type and the first
    line of its message with every number masked (so "got 1 of 43 bytes" and
    "got 7 of 43 bytes" are one failure)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: " + re.sub(r"0x[0-9a-fA-F]+|\d+", "N", first)


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _shorten(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


# -- capturing the program's output ---------------------------------------------------

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


class _Capture:
    """Collects what the program prints -- stdout, stderr, log records that
    reach the root logger, asyncore's ``log_info`` -- instead of letting
    every run write to the terminal."""

    def __init__(self) -> None:
        self.shapes: collections.Counter[str] = collections.Counter()
        self.lines = 0
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        root = logging.getLogger()
        saved = root.handlers[:]
        root.handlers[:] = [self.handler]
        try:
            with contextlib.redirect_stdout(self.buffer), contextlib.redirect_stderr(self.buffer):
                yield
        finally:
            root.handlers[:] = saved

    def take(self, count: bool = True) -> list[str]:
        """The lines written since the last call; counted (by shape) if *count*."""
        text = self.buffer.getvalue()
        if not text:
            return []
        self.buffer.seek(0)
        self.buffer.truncate()
        # (memory addresses -- "<Client at 0x7f...>" -- masked: the same run
        # gives the same lines, and the same trace bytes, in any process)
        lines = [_ADDRESS.sub("0x?", line) for line in text.splitlines() if line.strip()]
        if not count:
            return lines
        self.lines += len(lines)
        for line in lines:
            shape = _shorten(re.sub(r"(0x\?)|\d+", lambda m: m.group(1) or "N", line), 120)
            if shape in self.shapes or len(self.shapes) < 50:
                self.shapes[shape] += 1
        return lines


# -- one chunk ------------------------------------------------------------------------

_SCENARIOS: dict[str, Callable[..., Any]] = {}


class ScenarioExit(Exception):
    """A scenario called ``sys.exit()``: a failure like any other (in a pool
    worker, a ``SystemExit`` would end the worker and lose its task)."""


def _scenario(name: str) -> Callable[..., Any]:
    fn = _SCENARIOS.get(name)
    if fn is None:
        original = load_scenario(name)

        def fn(net: Any) -> Any:
            try:
                return original(net)
            except SystemExit as exc:
                raise ScenarioExit(f"the scenario called sys.exit({exc.code!r})") from None

        _SCENARIOS[name] = fn
    return fn


def chunks(seeds: int, size: int = CHUNK) -> list[tuple[int, int]]:
    """The ``(first, count)`` tasks that cover seeds 0 .. *seeds* - 1."""
    return [(first, min(size, seeds - first)) for first in range(0, seeds, size)]


def _kinds(faults: Sequence[str] | None) -> list[str]:
    return list(DEFAULT_FAULTS if faults is None else faults)


def _run_once(fn: Callable[..., Any], capture: _Capture, plan: FaultPlan, seed: int,
              count_output: bool) -> tuple[BaseException | None, list[str]]:
    """One run (inside ``capture.active()``): its exception, and its output."""
    from simnet.fakesock import FakeNetwork

    error = None
    try:
        with FakeNetwork(seed=seed, faults=plan) as net:
            fn(net)
    except Exception as exc:  # noqa: BLE001 -- any failure of the scenario is a finding
        error = exc
    return error, capture.take(count=count_output)


def run_chunk(scenario: str, first: int, count: int, *, faults: Sequence[str] | None = None,
              max_rules: int = 3, permanent: bool = False) -> ChunkResult:
    """Run seeds *first* .. *first* + *count* - 1 of the search of *scenario*
    (a ``"module:function"`` name) and return what failed, by key.

    Seed *k* runs the scenario on ``FakeNetwork(seed=k)`` under the plan
    :func:`simnet.plangen.random_plan` draws from a ``random.Random`` seeded
    by *k*: the same seed gives the same run in any process, and the result
    depends on (*first*, *count*) alone -- not on which process runs it or on
    what ran before. For each :func:`failure_key` the chunk returns its
    :data:`TRACES_PER_FAILURE` smallest failing seeds as :class:`Found`
    (unshrunk, no trace) and counts them all; :func:`shrink_failure` makes
    the smallest one small. The program's output is captured and counted,
    never printed.
    """
    from simnet.plangen import random_plan

    fn = _scenario(scenario)
    kinds = _kinds(faults)
    result = ChunkResult(first=first, runs=0)
    capture = _Capture()
    kept: dict[str, int] = {}
    with capture.active():  # once for the chunk: per run it would cost as much as a run
        for seed in range(first, first + count):
            plan = random_plan(random.Random(f"simnet-explore:{seed}"), kinds,
                               max_rules=max_rules, permanent=permanent)
            error, output = _run_once(fn, capture, plan, seed, True)
            result.runs += 1
            if error is None:
                continue
            key = failure_key(error)
            result.seen[key] = result.seen.get(key, 0) + 1
            if kept.get(key, 0) < TRACES_PER_FAILURE:
                kept[key] = kept.get(key, 0) + 1
                result.failures.append(Found(key=key, error=_error_text(error), seed=seed,
                                             plan=plan.to_list(),
                                             output=output[:OUTPUT_LINES_KEPT]))
    for f in result.failures:
        f.count = result.seen[f.key]
    result.output = dict(capture.shapes)
    result.output_lines = capture.lines
    return result


def _traced(fn: Callable[..., Any], scenario: str, plan: FaultPlan, seed: int,
            capture: _Capture) -> tuple[bytes, BaseException | None, list[str]]:
    from simnet.traces.replay import _run

    with capture.active():
        trace, error = _run(fn, seed, plan, {}, scenario)
    out = capture.take(count=False)
    trace.header["output"] = out[:OUTPUT_LINES_KEPT]
    return ("\n".join(trace.lines()) + "\n").encode("utf-8"), error, out


def shrink_failure(scenario: str, found: Found, *, faults: Sequence[str] | None = None,
                   permanent: bool = False, max_rules: int = 3) -> Found:
    """*found* shrunk (:func:`simnet.plangen.shrink`) to the simplest plan
    and seed that fail with the same key, with the trace of that run. A
    plain function: deterministic, and its result is plain data."""
    from simnet.plangen import shrink

    fn = _scenario(scenario)
    capture = _Capture()

    def still_fails(plan: FaultPlan, seed: int) -> bool:
        error, _ = _run_once(fn, capture, plan, seed, False)
        return error is not None and failure_key(error) == found.key

    with capture.active():
        small, seed, _ = shrink(FaultPlan(found.plan), found.seed, still_fails,
                                faults=_kinds(faults), permanent=permanent)
    data, error, out = _traced(fn, scenario, small, seed, capture)
    if error is None or failure_key(error) != found.key:  # a scenario that is not deterministic
        small, seed = FaultPlan(found.plan), found.seed
        data, error, out = _traced(fn, scenario, small, seed, capture)
    return Found(key=found.key, error=_error_text(error) if error is not None else found.error,
                 seed=seed, plan=small.to_list(), count=found.count, trace=data,
                 output=out[:OUTPUT_LINES_KEPT])


def trace_failure(scenario: str, found: Found) -> Found:
    """*found* as it was found (unshrunk), with the trace of its run."""
    data, _, out = _traced(_scenario(scenario), scenario, FaultPlan(found.plan), found.seed,
                           _Capture())
    return Found(key=found.key, error=found.error, seed=found.seed, plan=found.plan,
                 count=found.count, trace=data, output=out[:OUTPUT_LINES_KEPT])


# -- the whole search -----------------------------------------------------------------

def _pool_map(jobs: int) -> Callable[[Callable[[int, int], ChunkResult], list[tuple[int, int]]],
                                     Iterable[ChunkResult]]:
    def run(task_fn: Callable[[int, int], ChunkResult],
            tasks: list[tuple[int, int]]) -> Iterator[ChunkResult]:
        if jobs == 1 or len(tasks) == 1:
            for first, count in tasks:
                yield task_fn(first, count)
            return
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        with ctx.Pool(min(jobs, len(tasks))) as pool:
            yield from pool.imap_unordered(_call_task, [(task_fn, t) for t in tasks])
    return run


def _call_task(args: tuple[Callable[[int, int], ChunkResult], tuple[int, int]]) -> ChunkResult:
    task_fn, (first, count) = args
    return task_fn(first, count)


class _Task:
    """``run_chunk`` with the search's settings bound (picklable)."""

    def __init__(self, scenario: str, **settings: Any) -> None:
        self.scenario = scenario
        self.settings = settings

    def __call__(self, first: int, count: int) -> ChunkResult:
        return run_chunk(self.scenario, first, count, **self.settings)

    def __repr__(self) -> str:
        return f"run_chunk({self.scenario!r}, **{self.settings!r})"


def check_trace_dir(path: str) -> str:
    """Make *path* (a directory for traces) and check that files can be
    written in it; ``ValueError`` naming it otherwise."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"trace_dir must be a directory path, got {path!r}")
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".simnet-probe-", delete=True)
        probe.close()
    except FileExistsError:
        raise ValueError(f"trace dir {path!r} is a file, not a directory") from None
    except OSError as exc:
        raise ValueError(f"trace dir {path!r} is not writable: {exc.strerror or exc}") from None
    return path


def explore(scenario: str | Callable[..., Any], *, seeds: int = 100, jobs: int = 1,
            faults: Sequence[str] | None = None, max_rules: int = 3, stop: bool = False,
            trace_dir: str | None = None, permanent: bool = False,
            progress: Callable[[int, int, int], None] | None = None,
            map_chunks: Callable[..., Iterable[ChunkResult]] | None = None,
            stats: dict[str, Any] | None = None,
            scheduler: Any = None, shard: str | tuple[int, int] | None = None) -> list[Failure]:
    """Run *scenario* on seeds 0 .. *seeds* - 1, each under a random plan;
    return the distinct failures, each shrunk, smallest plan first.

    *scenario* is a function or its ``"module:function"`` name (workers
    import it by name). *jobs* processes share the work (0: one per core).
    *faults* restricts the fault kinds drawn (default :data:`DEFAULT_FAULTS`);
    *max_rules* bounds plan size; *permanent* also draws rules that break the
    network for good. *stop* ends the run at the first chunk with a failure.
    *trace_dir* receives, per failure, the trace of its shrunk run and of up
    to two runs as found (default: a new temporary directory, made only when
    there is a failure). *progress*, if given, is called as
    ``progress(done, total, failures)`` as work completes. *map_chunks*, if
    given, runs the chunks instead of the local pool: ``map_chunks(task,
    [(first, count), ...])`` yields each ``task(first, count)`` (a
    :class:`ChunkResult`), in any order. *stats*, if given, receives
    ``runs`` and the program's output counts.

    *scheduler* (``"tcp://HOST:PORT"`` or a ``distributed.Client``) runs the
    chunks, and the shrinking of each distinct failure, on a Dask cluster
    instead (see :mod:`simnet.distributed`). *shard* ``"I/N"`` (or
    ``(I, N)``) runs seeds (I-1)*seeds .. I*seeds - 1 instead: N runs with
    shards 1/N .. N/N cover N times the seeds with no overlap.

    The result does not depend on *jobs*, *map_chunks*, *scheduler* or the
    order chunks finish in (without *stop*): each failure is the one of its
    smallest failing seed, shrunk the same way wherever it is shrunk.
    """
    name = scenario if isinstance(scenario, str) else scenario_name(scenario)
    load_scenario(name)  # fail early, with a clear message, on a bad name
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive int, got {seeds!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ValueError(f"jobs must be an int >= 0 (0: one per core), got {jobs!r}")
    if isinstance(max_rules, bool) or not isinstance(max_rules, int) or not 1 <= max_rules <= 10:
        raise ValueError(f"max_rules must be an int in 1..10, got {max_rules!r}")
    if not isinstance(permanent, bool):
        raise ValueError(f"permanent must be True or False, got {permanent!r}")
    if faults is not None:
        if isinstance(faults, str):
            raise ValueError(f"faults must be a list of fault kinds, got the string {faults!r}")
        faults = list(faults)
        unknown = [f for f in faults if f not in FAULTS]
        if unknown or not faults:
            raise ValueError(f"unknown fault kind(s) {', '.join(map(repr, unknown)) or 'none given'}; "
                             f"known: {', '.join(FAULTS)}")
    if trace_dir is not None:
        trace_dir = check_trace_dir(trace_dir)
    jobs = jobs or os.cpu_count() or 1
    settings = {"faults": faults, "max_rules": max_rules, "permanent": permanent}
    task = _Task(name, **settings)
    tasks = chunks(seeds)
    if shard is not None:  # the I-th block of *seeds* seeds
        from simnet.distributed import parse_shard

        shard_i, _ = parse_shard(shard)
        tasks = [(first + (shard_i - 1) * seeds, count) for first, count in tasks]
    if scheduler is not None:
        from simnet import distributed

        if map_chunks is not None:
            raise ValueError("give scheduler or map_chunks, not both")
        if jobs != 1:
            raise ValueError(f"jobs={jobs!r} is for local runs; with a scheduler the cluster's "
                             "workers set the parallelism")
        map_chunks = distributed.map_chunks(scheduler)
    runner = map_chunks or _pool_map(jobs)
    examples: dict[str, list[Found]] = {}
    seen: collections.Counter[str] = collections.Counter()
    output: collections.Counter[str] = collections.Counter()
    lines = 0
    done = 0
    results = runner(task, tasks)
    try:
        for chunk in results:
            done += chunk.runs
            seen.update(chunk.seen)
            output.update(chunk.output)
            lines += chunk.output_lines
            for f in chunk.failures:
                kept = examples.setdefault(f.key, [])
                kept.append(f)
                kept.sort(key=lambda e: e.seed)
                del kept[TRACES_PER_FAILURE:]
            if progress is not None:
                progress(done, seeds, len(examples))
            if stop and examples:
                break
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
    failures = []
    shrink = functools.partial(shrink_failure, name, **settings)
    if scheduler is not None and examples:  # each on a worker, results in order
        shrunk_all = distributed.call_each(scheduler, shrink, [(kept[0],) for kept in examples.values()])
    else:
        shrunk_all = [shrink(kept[0]) for kept in examples.values()]
    for (key, kept), shrunk in zip(examples.items(), shrunk_all):
        as_found = [trace_failure(name, e) for e in kept[:TRACES_PER_FAILURE - 1]]
        failures.append(Failure(name, shrunk.seed, FaultPlan(shrunk.plan), shrunk.error,
                                count=seen[key], key=key, output=shrunk.output,
                                trace=shrunk.trace, variants=as_found))
    failures.sort(key=lambda f: (len(f.plan), min(e.seed for e in examples[f.key]), f.key))
    if failures:
        _write_traces(failures, trace_dir or tempfile.mkdtemp(prefix="simnet-explore-"))
    if stats is not None:
        stats.update(runs=done, output_lines=lines, output=dict(output.most_common()))
    return failures


def _write_traces(failures: list[Failure], trace_dir: str) -> None:
    """Per failure: ``failure-N.jsonl`` (shrunk) and ``failure-N-seedS.jsonl``
    for up to two runs as they were found."""
    os.makedirs(trace_dir, exist_ok=True)
    for i, failure in enumerate(failures, 1):
        failure.trace_path = os.path.join(trace_dir, f"failure-{i}.jsonl")
        with open(failure.trace_path, "wb") as out:
            out.write(failure.trace or b"")
        failure.other_traces = []
        for example in failure.variants:
            path = os.path.join(trace_dir, f"failure-{i}-seed{example.seed}.jsonl")
            with open(path, "wb") as out:
                out.write(example.trace or b"")
            failure.other_traces.append(path)
