"""The ``simnet`` command (also ``python -m simnet``), built on click.

Commands:

``simnet demo``
    Runs an example dispatcher program (:mod:`simnet.examples.demo`) on the
    fake network under a fault mix -- or, with ``--real``, on loopback
    sockets -- prints its timeline and a summary, and writes its trace.
``simnet trace show FILE`` / ``simnet trace html FILE -o OUT.html``
    A trace's timeline in the terminal, or as a self-contained HTML page with
    a message sequence diagram.
``simnet replay FILE``
    Reruns a recorded scenario strictly; exit status 1 when it diverges.

Bad input -- a missing or corrupt trace, an invalid fault plan, an unknown
example, a bad option -- gets a one-line error and exit status 2, never a
traceback (:class:`SimnetGroup`). The commands are a thin layer: the trace
analysis behind the timeline and the diagram (:class:`TraceView`) and the
renderers (:func:`timeline_rows`, :func:`summary_lines`,
:func:`render_html`) live in :mod:`simnet.traces`.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from typing import Any, Sequence

import click

from simnet import __version__
from simnet.examples import demo as demos
from simnet.faults import FaultPlan, PlanError
from simnet.traces.replay import ReplayDivergence, load_scenario, record, replay as run_replay
from simnet.traces.trace import Trace, TraceError
from simnet.traces.html import render_html
from simnet.traces.views import (DEFAULT_KINDS, KINDS, TraceView, arrows_ok, header_lines,
                                 summary_lines, summary_text, timeline_lines, timeline_rows)

__all__ = ["main", "cli", "TraceView", "timeline_rows", "summary_lines", "render_html",
           "InputError", "SimnetGroup"]

DEFAULT_TRACE_PATH = "simnet-demo.jsonl"


# -- errors -------------------------------------------------------------------------

class InputError(click.ClickException):
    """Bad input -- a file, a fault plan, an example: a one-line error and
    exit status 2. It names the command that was running when it was made."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))
        ctx = click.get_current_context(silent=True)
        self.command_path = ctx.command_path if ctx is not None else "simnet"


def _one_line(text: str) -> str:
    """*text* on one line: its lines joined with ``"; "``."""
    parts = [part.strip() for part in str(text).strip().splitlines() if part.strip()]
    return "; ".join(parts)


class SimnetGroup(click.Group):
    """The command group; its :meth:`main` turns every click error into one
    line on stderr (``simnet demo: error: ...``) with the error's exit
    status (2 for usage and input errors), never a usage block or a
    traceback."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Run the command line; return (or, standalone, exit with) its status."""
        code = self._run(args, prog_name or "simnet", complete_var, extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, args: Sequence[str] | None, prog_name: str, complete_var: str | None,
             extra: dict[str, Any]) -> int:
        help_error = getattr(click.exceptions, "NoArgsIsHelpError", ())
        if os.environ.get("NO_COLOR") and "color" not in extra:
            extra["color"] = False  # https://no-color.org: no colour, even on a terminal
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except help_error as exc:  # a group called without a command: its help
            exc.show()
            return 2
        except click.UsageError as exc:
            path = exc.ctx.command_path if exc.ctx is not None else prog_name
            hint = f" (see '{path} --help')" if exc.ctx is not None else ""
            click.echo(f"{path}: error: {_one_line(exc.format_message())}{hint}", err=True)
            return exc.exit_code
        except click.ClickException as exc:
            where = getattr(exc, "command_path", None) or prog_name
            click.echo(f"{where}: error: {_one_line(exc.format_message())}", err=True)
            return exc.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            return 1
        # (a closed stdout pipe, as in `simnet trace show ... | head`, is
        # click's: it exits with status 1 quietly)
        return rv if isinstance(rv, int) else 0


# -- reading and printing traces ---------------------------------------------------------

def load_view(path: str) -> TraceView:
    """Load and analyse the trace at *path*; bad input is an :class:`InputError`."""
    try:
        trace = Trace.load(path)
        return TraceView(trace, path)
    except TraceError as exc:
        raise InputError(str(exc)) from None


def echo_timeline(view: TraceView, rows: list[tuple[float, str, str, str]],
                  limit: int | None = None) -> None:
    """Print *rows* (at most *limit*) as aligned, coloured lines."""
    for line in timeline_lines(view, rows, limit, style=click.style, fancy=arrows_ok()):
        click.echo(line)


def echo_summary(lines: list[tuple[str, str]]) -> None:
    """Print a summary from :func:`summary_lines`."""
    for line in summary_text(lines, style=click.style, fancy=arrows_ok()):
        click.echo(line)


def echo_header(view: TraceView, title: str) -> None:
    """Print what a trace is: backend, scenario, seed and the plan in English."""
    for line in header_lines(view, title, style=click.style):
        click.echo(line)


# -- the commands ------------------------------------------------------------------------

class FaultPlanType(click.ParamType):
    """``--faults``: a JSON fault plan, or ``@FILE`` holding one."""

    name = "JSON|@FILE"

    def convert(self, value: Any, param: Any, ctx: Any) -> FaultPlan:
        if isinstance(value, FaultPlan):
            return value
        text = str(value)
        if text.startswith("@"):
            path = text[1:]
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError as exc:
                self.fail(f"cannot read fault plan file {path!r}: {exc.strerror or exc}", param, ctx)
            except UnicodeDecodeError:
                self.fail(f"fault plan file {path!r} is not UTF-8 text", param, ctx)
        try:
            return FaultPlan.from_json(text)
        except PlanError as exc:
            self.fail(str(exc), param, ctx)
        except RecursionError:
            self.fail("the fault plan is nested too deeply", param, ctx)
        except (TypeError, ValueError) as exc:  # a plan the checks let through
            self.fail(f"not a valid fault plan ({type(exc).__name__}: {exc})", param, ctx)


def _parse_kinds(ctx: Any, param: Any, value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    kinds = {k.strip() for k in value.split(",") if k.strip()}
    if "all" in kinds:
        return frozenset(KINDS)
    unknown = sorted(kinds - set(KINDS))
    if unknown or not kinds:
        raise click.BadParameter(f"unknown kind {', '.join(map(repr, unknown)) or repr(value)} "
                                 f"(known: {', '.join(KINDS)}, all)", ctx=ctx, param=param)
    return frozenset(kinds)


@click.group("simnet", cls=SimnetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="simnet", message="%(prog)s %(version)s")
def cli() -> None:
    """asyncore/asynchat on real sockets or a deterministic fake network.

    Start with `simnet demo`: an example program under injected faults,
    its timeline, and a trace you can show, render and replay.
    """


@cli.command(short_help="Run an example program under faults and show its timeline.")
@click.option("--seed", type=click.IntRange(min=0), default=None, metavar="N",
              help="Seed of the fake network (default 1): same seed, same run.")
@click.option("--faults", "plan", type=FaultPlanType(), default=None,
              help="The fault plan, as JSON or @FILE (default: a mix of latency, partial "
                   "sends, short reads and spurious EAGAINs; '[]' for none).")
@click.option("--example", type=click.Choice(list(demos.EXAMPLES)), default="echo",
              show_default=True, help="Which example program to run.")
@click.option("--trace", "trace_path", default=None, metavar="PATH",
              help=f"Where to write the trace (default {DEFAULT_TRACE_PATH}; "
                   "with --real, only if given).")
@click.option("--real", is_flag=True, help="Run on real loopback sockets instead (no faults).")
def demo(seed: int | None, plan: FaultPlan | None, example: str, trace_path: str | None,
         real: bool) -> None:
    """Run an example program and show what happened.

    By default the example runs on the fake network, in virtual time, under
    a mix of faults; the timeline shows every socket operation, each fault
    that fired and the program's own remarks, and the trace it writes
    replays with `simnet replay`.
    """
    if real and seed is not None:
        raise click.UsageError("--seed applies to the fake network; drop it or drop --real")
    if real and plan is not None:
        raise click.UsageError("--faults applies to the fake network; real sockets get no faults")
    started = time.perf_counter()
    if real:
        trace = demos.run_real(example)
    else:
        seed = demos.DEFAULT_SEED if seed is None else seed
        plan = FaultPlan(demos.DEFAULT_FAULTS) if plan is None else plan
        trace = record(demos.SCENARIOS[example], None, seed=seed, faults=plan)
    wall = time.perf_counter() - started
    if trace_path is None and not real:
        trace_path = DEFAULT_TRACE_PATH
    if trace_path is not None:
        try:
            trace.write(trace_path)
        except OSError as exc:
            raise InputError(f"cannot write the trace to {trace_path!r}: "
                             f"{exc.strerror or exc}") from None
    view = TraceView(trace, trace_path or "demo")
    where = "real loopback sockets" if real else "the fake network"
    echo_header(view, f"simnet {__version__} demo '{example}': {demos.EXAMPLES[example]}, on {where}")
    echo_timeline(view, timeline_rows(view, DEFAULT_KINDS))
    click.echo()
    lines = summary_lines(view, wall=wall)
    if real:
        lines = [(h, t) for h, t in lines if h != "faults fired"]
    if trace_path is not None:
        quoted = shlex.quote(trace_path)
        lines.append(("trace", trace_path))
        lines.append(("next", f"simnet trace html {quoted}" + (
            f"  ·  simnet replay {quoted}" if not real else "  (real sockets: no replay)")))
    echo_summary(lines)
    if not view.demo.get("ok"):
        click.get_current_context().exit(1)


@cli.group()
def trace() -> None:
    """Look at a trace file: its timeline, or an HTML sequence diagram."""


@trace.command("show", short_help="Print a trace's timeline.")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--conn", type=click.IntRange(min=1), default=None, metavar="N",
              help="Only the n-th connection's events.")
@click.option("--kind", "kinds", callback=_parse_kinds, default=None, metavar="K1,K2,...",
              help=f"Only these kinds ({', '.join(KINDS)}; 'all'). Default: all but ready and socket.")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Show at most N lines.")
def trace_show(file: str, conn: int | None, kinds: frozenset[str] | None,
               limit: int | None) -> None:
    """Print the timeline of trace FILE."""
    view = load_view(file)
    if conn is not None and conn not in view.conns:
        known = ", ".join(map(str, sorted(view.conns))) or "none"
        raise InputError(f"{file} has no connection {conn} (connections: {known})")
    echo_header(view, f"trace {file}")
    echo_timeline(view, timeline_rows(view, kinds or DEFAULT_KINDS, conn), limit)
    if conn is None and kinds is None:
        click.echo()
        echo_summary(summary_lines(view))


@trace.command("html", short_help="Write a trace as an HTML message sequence diagram.")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("-o", "--output", default=None, metavar="OUT.html",
              help="Where to write the page (default: FILE with .html; '-' for stdout).")
@click.option("--limit", type=click.IntRange(min=1), default=2000, show_default=True,
              metavar="N", help="At most N rows in the diagram (the table has every event).")
def trace_html(file: str, output: str | None, limit: int) -> None:
    """Write trace FILE as a self-contained HTML page with a message sequence
    diagram: sockets as lifelines, bytes as arrows, faults marked."""
    view = load_view(file)
    page = render_html(view, f"simnet trace: {os.path.basename(file)}", limit)
    if output == "-":
        click.echo(page, nl=False)
        return
    if output is None:
        output = os.path.splitext(file)[0] + ".html"
    try:
        parent = os.path.dirname(output)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        raise InputError(f"cannot write {output!r}: {exc.strerror or exc}") from None
    click.echo(f"wrote {output} ({len(view.events)} events, {len(view.sockets)} sockets)")


def _pytest_replay_command(header: dict[str, Any], test: str, file: str) -> str:
    """The pytest command that replays a plugin trace, from the current directory."""
    test_id = test
    rootdir = header.get("rootdir")
    if isinstance(rootdir, str) and rootdir:
        path, sep, rest = test.partition("::")
        test_id = os.path.relpath(os.path.join(rootdir, path)) + sep + rest
    return f"pytest {shlex.quote(test_id)} --simnet-replay={shlex.quote(file)}"


@cli.command(short_help="Rerun a trace's scenario and check it event by event.")
@click.argument("file", type=click.Path(dir_okay=True))
def replay(file: str) -> None:
    """Rerun the scenario recorded in trace FILE and check it event by event.

    Exit status 0: identical; 1: it diverged (the first difference is shown).
    """
    try:
        header = Trace.load(file).header
    except TraceError as exc:
        raise InputError(str(exc)) from None
    if header.get("backend", "fake") != "fake":
        raise InputError(f"{file}: recorded on the {header.get('backend')} network; "
                         "only fake-network traces can be replayed")
    test = header.get("test")
    if test is None and "::" in str(header.get("scenario") or ""):
        test = header["scenario"]  # plugin traces of earlier versions
    if test:
        raise InputError(f"{file}: recorded by the pytest plugin (test {test}); replay it "
                         f"with: {_pytest_replay_command(header, str(test), file)}")
    if not header.get("scenario"):
        raise InputError(f"{file}: the header names no scenario, so there is nothing to "
                         "rerun (record it with simnet.record())")
    try:
        scenario = lookup_scenario(header["scenario"])
        FaultPlan(header.get("faults") or [])
    except (PlanError, ValueError, TypeError, RecursionError) as exc:
        raise InputError(f"{file}: cannot replay: {exc}") from None
    try:
        result = run_replay(file, scenario=scenario)
    except ReplayDivergence as exc:
        click.echo(click.style("diverged", fg="red", bold=True) + f": {file}")
        click.echo(str(exc))
        click.get_current_context().exit(1)
    except TraceError as exc:
        raise InputError(str(exc)) from None
    except Exception as exc:  # the scenario itself failed
        click.echo(f"simnet replay: error: the scenario raised {type(exc).__name__}: "
                   f"{_one_line(str(exc))}", err=True)
        click.get_current_context().exit(1)
    h = result.trace.header
    click.echo(click.style("identical", fg="green", bold=True)
               + f", {result.events} events ({file}: {h.get('scenario')}, seed {h.get('seed')})")
    if result.failure:
        click.echo(f"the recorded failure reproduced: {result.failure}")


def lookup_scenario(name: str) -> Any:
    """The scenario function *name* (``module:function``) names, imported as
    ``python -m`` would: the current directory is searched first, so a
    user's own module next to them is found (a console script's
    ``sys.path`` lacks it). Used by ``explore`` and by ``replay`` on the
    traces it writes. Bad names and modules that fail to import are a
    one-line :class:`ValueError` naming the scenario."""
    cwd = os.getcwd()
    if not any(entry in ("", ".", cwd) for entry in sys.path):
        sys.path.insert(0, cwd)
    if not isinstance(name, str) or name.count(":") != 1 or not all(
            part and all(p.isidentifier() for p in part.split("."))
            for part in name.split(":")):
        raise ValueError(f"scenario must be MODULE:FUNCTION (dotted names), got {name!r}")
    try:
        return load_scenario(name)
    except ValueError:
        raise
    except Exception as exc:  # the module itself raised while importing
        raise ValueError(f"cannot import scenario module {name.partition(':')[0]!r}: "
                         f"{type(exc).__name__}: {_one_line(str(exc))}") from None


class _FiniteSeconds(click.ParamType):
    name = "seconds"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not number >= 0 or number == float("inf"):
            self.fail(f"{value!r} is not a finite number of seconds >= 0", param, ctx)
        return number


#: the most worker processes `explore -j` starts
MAX_JOBS = 256


class _Progress:
    """Explore's progress: a bar on a terminal; elsewhere (a CI log, a pipe)
    a line every *every* seconds and one at the end."""

    def __init__(self, total: int, every: float, stream: Any = None, where: str = "exploring",
                 tasks: int | None = None) -> None:
        self.total = total
        self.where = where
        self.tasks = tasks  # with a total of tasks (a cluster run), count them: one call each
        self.tasks_done = 0
        self.every = every
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = self.last = time.monotonic()
        self.done = 0
        self.failures = 0
        self.bar: Any = None
        if self.tty:
            self.bar = click.progressbar(length=total, label=where, file=self.stream,
                                         show_pos=True)
            self.bar.__enter__()

    def __call__(self, done: int, total: int, failures: int) -> None:
        step, self.done, self.failures = done - self.done, done, failures
        self.tasks_done += 1
        if self.bar is not None:
            self.bar.label = (f"{self.where} ({failures} failure{'s' if failures != 1 else ''}"
                              f"{self._tasks()})")
            self.bar.update(step)
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        rate = self.done / (now - self.start) if now > self.start else 0.0
        click.echo(f"{self.where}: {self.done}/{self.total} runs{self._tasks()}, {self.failures} "
                   f"distinct failure{'s' if self.failures != 1 else ''}, {rate:.0f} runs/s",
                   file=self.stream)

    def _tasks(self) -> str:
        return f", {self.tasks_done}/{self.tasks} tasks" if self.tasks else ""

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
        else:
            self._line(time.monotonic())


@cli.command(short_help="Search seeds and random fault plans for failures of a scenario.")
@click.argument("scenario", metavar="MODULE:FUNCTION")
@click.option("--seeds", type=click.IntRange(min=1), default=100, show_default=True,
              help="How many (seed, fault plan) pairs to try.")
@click.option("-j", "--jobs", type=click.IntRange(min=0, max=MAX_JOBS), default=1,
              show_default=True, help="Processes to run in parallel (0: one per core).")
@click.option("--faults", "kinds", default=None, metavar="KIND,...",
              help="Fault kinds to draw from (default: all but eintr).")
@click.option("--max-rules", type=click.IntRange(min=1, max=10), default=3, show_default=True,
              help="Largest plan tried.")
@click.option("--permanent", is_flag=True,
              help="Also draw faults that break the network for good (every connect "
                   "refused, forever): for programs that must give up cleanly.")
@click.option("--stop/--keep-going", default=False,
              help="Stop at the first failure, or search everything (default).")
@click.option("--trace-dir", default=None, metavar="DIR",
              help="Where the traces of failures go (default: a new temporary directory).")
@click.option("--progress-every", type=_FiniteSeconds(), default=5.0, show_default=True,
              metavar="SECONDS", help="When not on a terminal: a progress line this often.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run on the Dask cluster of this scheduler (needs simnet[distributed]).")
@click.option("--shard", default=None, metavar="I/N",
              help="Run the I-th of N disjoint slices of the seeds (a CI matrix of N jobs).")
def explore(scenario: str, seeds: int, jobs: int, kinds: str | None, max_rules: int,
            permanent: bool, stop: bool, trace_dir: str | None, progress_every: float,
            scheduler: str | None = None, shard: str | None = None) -> None:
    """Run MODULE:FUNCTION -- a function `scenario(net)` that raises when the
    program misbehaves -- under many seeds and random fault plans, on all
    the cores asked for. The plans are transient: every fault that could stop
    the network stops (after a few firings, a time window, one connection or
    one call), so a program that retries survives them and a failure is a
    bug. Each distinct failure is shrunk to its smallest plan and printed
    with its seed, how often it was seen and a replay command; a few traces
    of each are written. The program's own output is captured, and counted.

    Exit status 0: no failure found; 1: failures found; 2: bad input. For
    runs across machines, --scheduler tcp://HOST:PORT runs the search on a
    Dask cluster, and --shard I/N splits it over the jobs of a CI matrix.
    """
    from simnet import explore as explore_mod
    from simnet.distributed import ClusterError

    try:
        lookup_scenario(scenario)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    faults = [k.strip() for k in kinds.split(",")] if kinds is not None else None
    if faults is not None:
        from simnet.faults import FAULTS

        unknown = [k for k in faults if k not in FAULTS]
        if unknown or not faults:
            names = ", ".join(k or "''" for k in unknown)
            raise InputError(f"--faults: unknown fault kind(s) {names}; "
                             f"known: {', '.join(FAULTS)}")
    if trace_dir is not None:
        try:
            trace_dir = explore_mod.check_trace_dir(trace_dir)
        except ValueError as exc:
            raise InputError(f"--trace-dir: {exc}") from None
    client = _explore_cluster(scheduler, jobs, shard)  # None unless --scheduler
    if client is not None:
        bar = _Progress(seeds, progress_every, where=f"exploring on {scheduler}",
                        tasks=len(explore_mod.chunks(seeds)))
    else:
        bar = _Progress(seeds, progress_every)
    stats: dict[str, Any] = {}
    try:
        failures = explore_mod.explore(scenario, seeds=seeds, jobs=jobs, faults=faults,
                                       max_rules=max_rules, stop=stop, trace_dir=trace_dir,
                                       permanent=permanent, progress=bar, stats=stats,
                                       scheduler=client, shard=shard)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    except ClusterError as exc:  # the cluster could not run it
        raise InputError(str(exc)) from None
    finally:
        bar.close()
        if client is not None:
            client.close()
    runs = stats.get("runs", seeds)
    if stats.get("output_lines"):
        top = next(iter(stats["output"].items()), None)
        common = f"; most often ({top[1]}x): {top[0]}" if top else ""
        click.echo(f"the program wrote {stats['output_lines']} line(s) of output over {runs} "
                   f"runs (captured){common}")
    if not failures:
        click.echo(click.style("no failure", fg="green", bold=True) + f" in {runs} runs of {scenario}")
        return
    click.echo(click.style(f"{len(failures)} distinct failure(s)", fg="red", bold=True)
               + f" in {runs} runs of {scenario}:")
    for i, failure in enumerate(failures, 1):
        click.echo(f"\n{i}. " + failure.describe())
    click.get_current_context().exit(1)


def _explore_cluster(scheduler: str | None, jobs: int, shard: str | None) -> Any:
    """Check ``explore``'s --shard and --scheduler; a ``distributed.Client``
    connected to the scheduler, or None without --scheduler."""
    from simnet import distributed

    if shard is not None:
        try:
            distributed.parse_shard(shard)
        except ValueError as exc:
            raise InputError(f"--shard: {exc}") from None
    if scheduler is None:
        return None
    if jobs != 1:
        raise InputError("-j/--jobs is for local runs; with --scheduler the cluster's "
                         "workers set the parallelism")
    try:
        return distributed.connect(scheduler)[0]
    except (distributed.MissingExtra, distributed.ClusterError, ValueError) as exc:
        raise InputError(f"--scheduler: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """The ``simnet`` console script: run the command line, return the exit status."""
    return cli.main(args=argv, prog_name="simnet", standalone_mode=False)
