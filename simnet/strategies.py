"""Hypothesis strategies for fault plans, built to shrink well.

Use them to search for the fault plan that breaks a protocol, and let
Hypothesis shrink the plan to the one or two rules that matter::

    from hypothesis import given
    from simnet.strategies import fault_plans

    @given(plan=fault_plans(faults=["partial_send", "short_read", "eagain"]))
    def test_protocol_survives(plan):
        with FakeNetwork(seed=1, faults=plan) as net:
            ...

Shrinking order: fewer rules first; among faults, the order of
:data:`SIMPLEST_FIRST`; parameters toward their simplest value (1 byte,
"rst", zero delay); *where* clauses omitted first. So a failing plan tends to
shrink to a single ``Rule("partial_send", max_bytes=1)``-like rule.

**Transient by default.** The generated plans never break the network for
good (see :func:`breaks_for_good`): a fault that could stop every connection
from working -- a refused connect, a reset, a spurious EAGAIN, a lost
datagram -- always carries a bound (``limit``, a ``window``, one ``conn`` or
one ``call``, by kind), and shrinking keeps it; a partition always heals.
So a program that retries gets through every plan, and a failure under one
is a bug. ``permanent=True`` also draws unbounded rules (every connect
refused, forever), for testing that a program gives up cleanly.

Importing this module needs Hypothesis (``pip install 'simnet[explore]'``);
simnet itself never imports it.
"""

from __future__ import annotations

from typing import Any, Sequence

try:
    from hypothesis import strategies as st
except ImportError:  # one line naming what to install, not a bare ModuleNotFoundError
    raise ModuleNotFoundError("simnet.strategies needs Hypothesis, which is not installed: "
                              "pip install 'simnet[explore]'", name="hypothesis") from None

from simnet.faults import FAULTS, FaultPlan, Rule

__all__ = ["rules", "fault_plans", "SIMPLEST_FIRST", "breaks_for_good", "FOREVER_SURVIVABLE"]

#: Fault kinds in the order Hypothesis shrinks toward (first = simplest).
SIMPLEST_FIRST = [
    "partial_send", "short_read", "eagain", "disconnect", "refuse", "connect_timeout",
    "unreachable", "backlog_overflow", "latency", "eintr", "partition",
    "udp_loss", "udp_duplicate", "udp_reorder",
]


#: Faults a program survives however often they fire: each still lets data
#: through (at least one byte per call, or after a finite delay).
FOREVER_SURVIVABLE = frozenset({"partial_send", "short_read", "latency", "udp_duplicate",
                                "udp_reorder"})

#: fault -> the *where* keys that make it transient, simplest first. ``limit``
#: bounds how often a rule fires, a ``window`` until when (windows are
#: finite); ``conn`` confines a connection-level fault to one connection
#: (the program's next connection is spared); ``call`` confines a spurious
#: EAGAIN to one call per socket (the retry on the same socket succeeds).
#: ``probability`` alone is no bound: a rule that refuses 9 connects in 10
#: forever still defeats any program with a finite retry budget. ``eagain``
#: and ``eintr`` take no window: a program spinning on them advances no
#: virtual time, so it would never reach the window's end.
BOUNDS: dict[str, tuple[str, ...]] = {
    "eagain": ("limit", "call"),
    "eintr": ("limit",),
    "disconnect": ("limit", "conn"),
    "refuse": ("limit", "window", "conn"),
    "connect_timeout": ("limit", "window", "conn"),
    "unreachable": ("limit", "window", "conn"),
    "backlog_overflow": ("limit", "window", "conn"),
    "udp_loss": ("limit", "window"),
}


def breaks_for_good(rule: Rule) -> bool:
    """Whether *rule* can keep the network from working forever: it may fire
    on every operation it acts on, for ever, and each firing stops data (a
    refused connect, a reset connection, a spurious EAGAIN, a lost datagram,
    a partition that never heals). No program survives such a rule, so a
    failure under it is not a bug. A rule is transient when its fault lets
    data through anyway (:data:`FOREVER_SURVIVABLE`), when a partition has an
    ``end``, or when its *where* holds one of the bounds :data:`BOUNDS` lists
    for its kind."""
    if rule.fault in FOREVER_SURVIVABLE:
        return False
    if rule.fault == "partition":
        return rule.params["end"] is None
    return not any(key in rule.where for key in BOUNDS.get(rule.fault, ("limit", "window")))


def _params(fault: str, max_bytes: int, hosts: Sequence[str],
            permanent: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    if fault in ("partial_send", "short_read"):
        # 1 is the simplest value, None (a random size each time) the last
        return st.fixed_dictionaries({"max_bytes": st.integers(1, max_bytes + 1).map(
            lambda n: None if n == max_bytes + 1 else n)})
    if fault == "eagain":
        return st.fixed_dictionaries({"op": st.sampled_from(["send", "recv", "accept", "connect"])})
    if fault == "disconnect":
        return st.fixed_dictionaries({
            "mode": st.sampled_from(["rst", "fin"]),
            "side": st.one_of(st.none(), st.sampled_from(["client", "server"])),
            "after_bytes": st.one_of(st.none(), st.integers(0, 4 * max_bytes)),
        })
    if fault == "latency":
        return st.fixed_dictionaries({
            "latency": st.sampled_from([0.0, 0.001, 0.01, 0.1, 1.0]),
            "jitter": st.sampled_from([0.0, 0.001, 0.01, 0.1]),
        })
    if fault == "partition":
        hs = list(hosts) or ["local", "localhost"]
        return st.fixed_dictionaries({
            "a": st.sampled_from(hs), "b": st.sampled_from(hs),
            "start": st.sampled_from([0.0, 0.1, 1.0]),
            "end": (st.one_of(st.sampled_from([0.5, 5.0, 30.0]), st.none()) if permanent
                    else st.sampled_from([0.5, 5.0, 10.0])),
        }).filter(lambda p: p["end"] is None or p["end"] > p["start"])
    if fault == "udp_reorder":
        return st.fixed_dictionaries({"delay": st.sampled_from([0.01, 0.1, 1.0])})
    return st.just({})


#: fault -> the *where* keys drawn for it: those that mean something for
#: its operation (a connect has no "k-th call" worth drawing, a link no side).
WHERE_FOR: dict[str, tuple[str, ...]] = {
    "partial_send": ("side", "call", "limit", "probability", "conn", "window", "port"),
    "short_read": ("side", "call", "limit", "probability", "conn", "window", "port"),
    "eagain": ("side", "call", "limit", "probability", "conn", "window", "port"),
    "eintr": ("limit", "probability", "window"),
    "disconnect": ("side", "limit", "probability", "conn", "window", "port"),
    "refuse": ("limit", "probability", "conn", "window", "port"),
    "connect_timeout": ("limit", "probability", "conn", "window", "port"),
    "unreachable": ("limit", "probability", "conn", "window", "port"),
    "backlog_overflow": ("limit", "probability", "conn", "window", "port"),
    "latency": (),
    "partition": (),
    "udp_loss": ("limit", "probability", "window", "port"),
    "udp_duplicate": ("limit", "probability", "window", "port"),
    "udp_reorder": ("limit", "probability", "window", "port"),
}


def _where_keys(fault: str, ports: Sequence[int] | None,
                conns: int | None) -> dict[str, st.SearchStrategy[Any]]:
    keys: dict[str, st.SearchStrategy[Any]] = {
        "side": st.sampled_from(["client", "server"]),
        "call": st.integers(1, 5),
        "limit": st.integers(1, 5),
        "probability": st.sampled_from([0.5, 0.25, 0.1, 0.9]),
        "conn": st.integers(1, max(1, conns or 1)),
        "window": st.sampled_from([(0.0, 1.0), (0.0, 5.0), (1.0, 10.0)]).map(list),
    }
    if ports:
        keys["port"] = st.sampled_from(list(ports))
    allowed = WHERE_FOR.get(fault, tuple(keys))
    return {k: v for k, v in keys.items() if k in allowed}


def _where(fault: str, ports: Sequence[int] | None, conns: int | None,
           permanent: bool) -> st.SearchStrategy[dict[str, Any]]:
    keys = _where_keys(fault, ports, conns)
    if permanent or not BOUNDS.get(fault):
        return st.fixed_dictionaries({}, optional=keys)
    # one bound is required (so shrinking cannot remove it); the rest optional
    return st.one_of([
        st.fixed_dictionaries({bound: keys[bound]},
                              optional={k: v for k, v in keys.items() if k != bound})
        for bound in BOUNDS[fault]])


def rules(faults: Sequence[str] | None = None, *, ports: Sequence[int] | None = None,
          conns: int | None = 3, max_bytes: int = 64, hosts: Sequence[str] = (),
          permanent: bool = False) -> st.SearchStrategy[Rule]:
    """Valid :class:`~simnet.faults.Rule` objects.

    *faults* restricts the kinds (default: all); *ports* and *conns* bound
    the where-clauses; *max_bytes* bounds sizes; *hosts* names the hosts a
    partition may cut (default: ``local`` and ``localhost``). Every rule is
    transient (:func:`breaks_for_good` is false) unless *permanent* is true.
    """
    if not isinstance(permanent, bool):
        raise ValueError(f"permanent must be True or False, got {permanent!r}")
    kinds = list(SIMPLEST_FIRST if faults is None else faults)
    unknown = [k for k in kinds if k not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(FAULTS)}")
    if not kinds:
        raise ValueError("faults must name at least one fault kind (or be None for all)")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be an int >= 1, got {max_bytes!r}")
    ordered = sorted(kinds, key=lambda k: SIMPLEST_FIRST.index(k) if k in SIMPLEST_FIRST else 99)

    def build(fault: str) -> st.SearchStrategy[Rule]:
        return st.builds(lambda p, w: Rule(fault, where=w, **p),
                         _params(fault, max_bytes, hosts, permanent),
                         _where(fault, ports, conns, permanent))

    return st.one_of([build(k) for k in ordered])


def fault_plans(faults: Sequence[str] | None = None, *, min_rules: int = 0, max_rules: int = 3,
                **rule_kwargs: Any) -> st.SearchStrategy[FaultPlan]:
    """:class:`~simnet.faults.FaultPlan` objects of *min_rules* to *max_rules*
    rules drawn from :func:`rules` (which takes the other arguments,
    *permanent* among them: by default no rule breaks the network for good)."""
    if not 0 <= min_rules <= max_rules:
        raise ValueError(f"need 0 <= min_rules <= max_rules, got {min_rules}, {max_rules}")
    return st.lists(rules(faults, **rule_kwargs), min_size=min_rules, max_size=max_rules).map(FaultPlan)
