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
of examples and returns the distinct failures it found, deduplicated by
:func:`failure_key`, shrunk, with their traces as bytes -- so another
scheduler can run the chunks (``explore(..., map_chunks=...)``).
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import logging
import multiprocessing
import os
import random
import re
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterable, Iterator, Sequence

from simnet.faults import FAULTS, FaultPlan
from simnet.replay import load_scenario, scenario_name

__all__ = ["explore", "Failure", "run_chunk", "ChunkResult", "Found", "chunks", "failure_key",
           "DEFAULT_FAULTS"]

#: Examples one task runs (a unit of progress and of parallelism).
CHUNK = 25

#: Trace files written per distinct failure (its shrunk runs, smallest plan first).
TRACES_PER_FAILURE = 3

#: Lines of the program's own output kept with each failure.
OUTPUT_LINES_KEPT = 20

#: Fault kinds drawn unless asked for: all but ``eintr``, which the fake
#: network still raises out of the loop's wait as ``InterruptedError``
#: (issue 15.3) where a Python >= 3.5 program never sees it (PEP 475) -- no
#: program survives that. Name it in ``faults`` to draw it anyway.
DEFAULT_FAULTS: tuple[str, ...] = tuple(k for k in FAULTS if k != "eintr")


# -- results --------------------------------------------------------------------------

@dataclass
class Found:
    """A distinct failure as one chunk found it: shrunk, with its trace as
    bytes (plain data, so it crosses process and machine boundaries)."""

    key: str
    error: str
    seed: int
    plan: list[dict[str, Any]]
    count: int = 1
    trace: bytes | None = None
    output: list[str] = field(default_factory=list)


@dataclass
class ChunkResult:
    """What :func:`run_chunk` returns: *runs* examples were run (shrinking
    not counted); *failures* are the new distinct failures, shrunk; *seen*
    counts every failure by key (new or not); *output* counts the program's
    own output lines (masked to their shape) over all the runs."""

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
            lines.append(f"  other traces of it: {', '.join(self.other_traces)}")
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
        lines = [line for line in text.splitlines() if line.strip()]
        if not count:
            return lines
        self.lines += len(lines)
        for line in lines:
            shape = _shorten(re.sub(r"0x[0-9a-fA-F]+|\d+", "N", line), 120)
            if shape in self.shapes or len(self.shapes) < 50:
                self.shapes[shape] += 1
        return lines


# -- one chunk ------------------------------------------------------------------------

#: (session, keys this process has shrunk in it): a pool worker runs many
#: chunks of one search, and shrinks each distinct failure once
_SHRUNK: tuple[str, set[str]] = ("", set())
_SCENARIOS: dict[str, Callable[..., Any]] = {}


def chunks(seeds: int, size: int = CHUNK) -> list[tuple[int, int]]:
    """The ``(first, count)`` tasks that cover *seeds* examples."""
    return [(first, min(size, seeds - first)) for first in range(0, seeds, size)]


def run_chunk(scenario: str, first: int, count: int, *, faults: Sequence[str] | None = None,
              max_rules: int = 3, permanent: bool = False,
              known: Collection[str] = (), session: str = "") -> ChunkResult:
    """Run seeds *first* .. *first* + *count* - 1 of the search of *scenario*
    (a ``"module:function"`` name) and return what failed.

    Seed *k* runs the scenario on ``FakeNetwork(seed=k)`` under the plan
    :func:`simnet.plangen.random_plan` draws from a ``random.Random`` seeded
    by *k*: the same seed gives the same run in any process. A failure whose
    :func:`failure_key` is new -- not in *known*, not shrunk by this process
    in the same non-empty *session* before -- is shrunk
    (:func:`simnet.plangen.shrink`) to its simplest plan and seed, rerun with
    a trace, and returned as a :class:`Found`; the others are only counted.
    The program's output is captured, never printed.
    """
    global _SHRUNK
    from simnet.fakesock import FakeNetwork
    from simnet.plangen import random_plan, shrink
    from simnet.replay import _run

    fn = _SCENARIOS.get(scenario)
    if fn is None:
        fn = _SCENARIOS[scenario] = load_scenario(scenario)
    kinds = list(DEFAULT_FAULTS if faults is None else faults)
    if not session or _SHRUNK[0] != session:
        _SHRUNK = (session, set())
    shrunk = _SHRUNK[1]
    skip = set(known) | shrunk
    result = ChunkResult(first=first, runs=0)
    capture = _Capture()

    def run(plan: FaultPlan, seed: int, count_output: bool) -> tuple[BaseException | None, list[str]]:
        error = None
        with capture.active():
            try:
                with FakeNetwork(seed=seed, faults=plan) as net:
                    fn(net)
            except Exception as exc:  # noqa: BLE001 -- any failure of the scenario is a finding
                error = exc
        return error, capture.take(count=count_output)

    for seed in range(first, first + count):
        plan = random_plan(random.Random(f"simnet-explore:{seed}"), kinds, max_rules=max_rules,
                           permanent=permanent)
        error, _ = run(plan, seed, True)
        result.runs += 1
        if error is None:
            continue
        key = failure_key(error)
        result.seen[key] = result.seen.get(key, 0) + 1
        if key in skip:
            continue  # known: counted, not shrunk again
        skip.add(key)
        if session:
            shrunk.add(key)

        def still_fails(p: FaultPlan, s: int) -> bool:
            e, _ = run(p, s, False)
            return e is not None and failure_key(e) == key

        small, small_seed, _ = shrink(plan, seed, still_fails, faults=kinds, permanent=permanent)
        with capture.active():
            trace, final = _run(fn, small_seed, small, {}, scenario)
        out = capture.take(count=False)
        trace.header["output"] = out[:OUTPUT_LINES_KEPT]
        if final is None or failure_key(final) != key:  # cannot happen in a deterministic scenario
            small, small_seed, final = plan, seed, error
            with capture.active():
                trace, _ = _run(fn, seed, plan, {}, scenario)
            out = capture.take(count=False)
        result.failures.append(Found(
            key=key, error=_error_text(final), seed=small_seed, plan=small.to_list(), count=1,
            trace=("\n".join(trace.lines()) + "\n").encode("utf-8"),
            output=out[:OUTPUT_LINES_KEPT]))
    for f in result.failures:
        f.count = result.seen.get(f.key, 1)
    result.output = dict(capture.shapes)
    result.output_lines = capture.lines
    return result


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


_SESSIONS = itertools.count(1)


def explore(scenario: str | Callable[..., Any], *, seeds: int = 100, jobs: int = 1,
            faults: Sequence[str] | None = None, max_rules: int = 3, stop: bool = False,
            trace_dir: str | None = None, permanent: bool = False,
            progress: Callable[[int, int, int], None] | None = None,
            map_chunks: Callable[..., Iterable[ChunkResult]] | None = None,
            stats: dict[str, Any] | None = None) -> list[Failure]:
    """Run *scenario* under *seeds* random (seed, plan) pairs; return the
    distinct failures, each shrunk, smallest plan first.

    *scenario* is a function or its ``"module:function"`` name (workers
    import it by name). *jobs* processes share the work (0: one per core).
    *faults* restricts the fault kinds drawn (default :data:`DEFAULT_FAULTS`);
    *max_rules* bounds plan size; *permanent* also draws rules that break the
    network for good. *stop* ends the run at the first failure. *trace_dir*
    receives up to :data:`TRACES_PER_FAILURE` traces of each failure (default:
    a new temporary directory, made only when there is a failure).
    *progress*, if given, is called as ``progress(done, total, failures)`` as
    work completes. *map_chunks*, if given, runs the chunks instead of the
    local pool: ``map_chunks(task, [(first, count), ...])`` yields each
    ``task(first, count)`` (a :class:`ChunkResult`), in any order. *stats*,
    if given, receives ``runs`` and the program's output counts.
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
    tasks = chunks(seeds)
    task = _Task(name, faults=faults, max_rules=max_rules, permanent=permanent,
                 session=f"{os.getpid()}-{next(_SESSIONS)}")
    runner = map_chunks or _pool_map(jobs)
    found: dict[str, Failure] = {}
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
                _merge(found, name, f)
            for key, failure in found.items():
                failure.count = seen.get(key, failure.count)
            if progress is not None:
                progress(done, seeds, len(found))
            if stop and found:
                break
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
    failures = sorted(found.values(), key=lambda f: (len(f.plan), f.key))
    if failures:
        _write_traces(failures, trace_dir or tempfile.mkdtemp(prefix="simnet-explore-"))
    if stats is not None:
        stats.update(runs=done, output_lines=lines, output=dict(output.most_common()))
    return failures


def _merge(found: dict[str, Failure], name: str, f: Found) -> None:
    """Add a chunk's failure: the smallest plan (then seed) leads; up to
    TRACES_PER_FAILURE shrunk variants are kept for their traces."""
    plan = FaultPlan(f.plan)
    current = found.get(f.key)
    if current is None:
        found[f.key] = Failure(name, f.seed, plan, f.error, count=f.count, key=f.key,
                               output=f.output, trace=f.trace, variants=[f])
        return
    current.variants.append(f)
    current.variants.sort(key=lambda v: (len(v.plan), len(FaultPlan(v.plan).to_json()), v.seed))
    del current.variants[TRACES_PER_FAILURE:]
    best = current.variants[0]
    current.seed, current.plan, current.error = best.seed, FaultPlan(best.plan), best.error
    current.output, current.trace = best.output, best.trace


def _write_traces(failures: list[Failure], trace_dir: str) -> None:
    os.makedirs(trace_dir, exist_ok=True)
    for i, failure in enumerate(failures, 1):
        paths = []
        for j, variant in enumerate(failure.variants):
            if variant.trace is None:
                continue
            path = os.path.join(trace_dir, f"failure-{i}.jsonl" if j == 0
                                else f"failure-{i}-{j + 1}.jsonl")
            with open(path, "wb") as out:
                out.write(variant.trace)
            paths.append(path)
        if paths:
            failure.trace_path, failure.other_traces = paths[0], paths[1:]
