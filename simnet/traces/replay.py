"""Record a scenario on the fake network, and replay it strictly.

A *scenario* is a function that takes the network and runs a dispatcher
program on it::

    def echo_once(net):
        server = EchoServer(("127.0.0.1", 7000))
        client = EchoClient(("127.0.0.1", 7000), [b"hi"])
        net.run(until=lambda: client.received == b"hi")

    trace = simnet.record(echo_once, "echo.jsonl", seed=7, faults=[Rule("short_read", max_bytes=1)])
    simnet.replay("echo.jsonl")      # reruns echo_once from the file alone; raises on divergence

The trace's header names the scenario (``module:qualname``), the seed, the
fault plan and the network settings, so the file alone reruns it. Replay is
strict: the first event that differs raises :class:`ReplayDivergence` with
its index, the expected and the actual event, and the events around it.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Callable

from simnet.faults import FaultPlan
from simnet.traces.trace import Trace, TraceError

__all__ = ["record", "replay", "ReplayDivergence", "ReplayResult", "scenario_name", "load_scenario"]

_NETWORK_KEYS = ("latency", "bandwidth", "sndbuf", "rcvbuf", "shuffle", "start_time")


class ReplayDivergence(AssertionError):
    """A replay did not do what the trace says. ``index`` is the first event
    that differs (0-based), ``expected``/``actual`` the two events (None when
    one run ended first), ``context`` the events just before it."""

    def __init__(self, index: int, expected: Any, actual: Any, context: list[Any],
                 path: str | None = None) -> None:
        self.index = index
        self.expected = expected
        self.actual = actual
        self.context = context
        self.path = path
        lines = [f"replay diverged at event {index}" + (f" of {path}" if path else "") + ":"]
        for i, ev in enumerate(context, index - len(context)):
            lines.append(f"      {i}: {json.dumps(ev)}")
        lines.append(f"  expected {index}: {_show(expected, '(the run had ended)')}")
        lines.append(f"  actual   {index}: {_show(actual, '(the run ended here)')}")
        super().__init__("\n".join(lines))


def _show(event: Any, missing: str) -> str:
    if event is None:
        return missing
    return event if isinstance(event, str) else json.dumps(event)


class ReplayResult:
    """A replay that matched: the trace and how many events were checked."""

    def __init__(self, trace: Trace, events: int, failure: str | None = None) -> None:
        self.trace = trace
        self.events = events
        #: the recorded failure, reproduced (None: the scenario passed)
        self.failure = failure

    def __repr__(self) -> str:
        extra = f", failure reproduced: {self.failure}" if self.failure else ""
        return f"<ReplayResult identical, {self.events} events{extra}>"


def compare(expected: list[Any], actual: list[Any], path: str | None = None) -> None:
    """Raise :class:`ReplayDivergence` at the first event where two
    (normalised) event lists differ, or where one ends first."""
    for i, (want, got) in enumerate(zip(expected, actual)):
        if want != got:
            raise ReplayDivergence(i, want, got, expected[max(0, i - 3):i], path)
    if len(expected) != len(actual):
        i = min(len(expected), len(actual))
        raise ReplayDivergence(i, expected[i] if i < len(expected) else None,
                               actual[i] if i < len(actual) else None,
                               expected[max(0, i - 3):i], path)


def scenario_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a scenario function, as a trace header stores it."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        raise ValueError(f"{fn!r} cannot be found again by name (it is a lambda or a local "
                         "function): define the scenario at module level to record it")
    return f"{module}:{qualname}"


def load_scenario(name: str) -> Callable[..., Any]:
    """Import a scenario from its ``module:qualname``."""
    if not isinstance(name, str) or ":" not in name:
        raise ValueError(f"scenario must be 'module:function', got {name!r}")
    module_name, _, qualname = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import scenario module {module_name!r}: {exc}") from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no scenario {qualname!r}") from None
    if not callable(obj):
        raise ValueError(f"scenario {name!r} is not callable")
    return obj


def _run(scenario: Callable[..., Any], seed: int, faults: Any, network: dict[str, Any],
         name: str | None) -> tuple[Trace, BaseException | None]:
    """Run the scenario traced; return the trace and the exception it raised
    (the trace holds everything up to the failure)."""
    from simnet.fakesock import FakeNetwork

    net = FakeNetwork(seed=seed, faults=faults, trace=True, **network)
    assert net.trace is not None
    net.trace.header["scenario"] = name
    error: BaseException | None = None
    with net:
        try:
            scenario(net)
        except Exception as exc:  # noqa: BLE001 -- the outcome is part of the recording
            error = exc
    net.trace.header["outcome"] = _outcome(error)
    return net.trace, error


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def record(scenario: Callable[..., Any], path: str | os.PathLike[str] | None = None, *,
           seed: int = 0, faults: Any = None, **network: Any) -> Trace:
    """Run ``scenario(net)`` on a new traced FakeNetwork; write the trace to
    *path* (if given) and return it. *network* takes FakeNetwork's settings
    (latency, bandwidth, sndbuf, rcvbuf, shuffle, start_time)."""
    unknown = set(network) - set(_NETWORK_KEYS)
    if unknown:
        raise TypeError(f"record() got unknown network setting(s) {sorted(unknown)}; "
                        f"known: {', '.join(_NETWORK_KEYS)}")
    trace, error = _run(scenario, seed, faults, network, scenario_name(scenario))
    if path is not None:
        trace.write(path)
    if error is not None:
        raise error  # the trace is written first: the failure can be replayed
    return trace


def replay(source: str | os.PathLike[str] | Trace, *,
           scenario: Callable[..., Any] | None = None) -> ReplayResult:
    """Rerun a recorded scenario and check it event by event.

    *source* is a trace file or a :class:`Trace`. The scenario is imported
    by the name in the header unless *scenario* is given. The whole file is
    checked before anything runs (a truncated or corrupt trace raises
    :class:`~simnet.traces.trace.TraceError` with the line number). Raises
    :class:`ReplayDivergence` at the first event that differs.
    """
    path = None
    if isinstance(source, Trace):
        trace = source
    else:
        path = os.fspath(source)
        trace = Trace.load(path)
    header = trace.header
    if header.get("backend", "fake") != "fake":
        raise TraceError(f"{path or 'trace'}: recorded on the {header.get('backend')} network; "
                         "convert it with simnet.real.plan_from_trace() and run the scenario on "
                         "a FakeNetwork with that plan to repeat its I/O pattern")
    if scenario is None:
        name = header.get("scenario")
        if not name:
            raise ValueError(f"{path or 'trace'}: the header names no scenario; pass scenario=")
        scenario = load_scenario(name)
    plan = FaultPlan(header.get("faults") or [])
    network = {k: v for k, v in (header.get("network") or {}).items() if k in _NETWORK_KEYS}
    seed = header.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TraceError(f"{path or 'trace'}:1: seed must be an int, got {seed!r}")
    run, error = _run(scenario, seed, plan, network, header.get("scenario"))
    expected = trace.normalised()
    compare(expected, run.normalised(), path)
    recorded = header.get("outcome", "ok")
    outcome = _outcome(error)
    if recorded != outcome:
        raise ReplayDivergence(len(expected), f"outcome: {recorded}", f"outcome: {outcome}",
                               expected[-3:], path)
    return ReplayResult(trace, len(expected), None if error is None else outcome)
