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

Importing this module needs Hypothesis (``pip install hypothesis``); simnet
itself never imports it (``simnet explore`` draws the same transient plans
with :mod:`simnet.plangen`).
"""

from __future__ import annotations

from typing import Any, Sequence

try:
    from hypothesis import strategies as st
except ImportError:  # one line naming what to install, not a bare ModuleNotFoundError
    raise ModuleNotFoundError("simnet.strategies needs Hypothesis, which is not installed: "
                              "pip install hypothesis", name="hypothesis") from None

from simnet.faults import FAULTS, FaultPlan, Rule
from simnet.plangen import (BOUNDS, FOREVER_SURVIVABLE, SIMPLEST_FIRST, WHERE_FOR, breaks_for_good,
                            where_choices)

__all__ = ["rules", "fault_plans", "SIMPLEST_FIRST", "breaks_for_good", "FOREVER_SURVIVABLE",
           "BOUNDS", "WHERE_FOR"]

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


def _where_keys(fault: str, ports: Sequence[int] | None, conns: int | None,
                params: dict[str, Any]) -> dict[str, st.SearchStrategy[Any]]:
    # the values simnet.plangen draws, simplest first (so they shrink alike),
    # for the keys the plan validator accepts with these parameters
    return {k: st.sampled_from(v)
            for k, v in where_choices(fault, ports=ports, conns=conns, params=params).items()}


def _where(fault: str, ports: Sequence[int] | None, conns: int | None,
           permanent: bool, params: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    keys = _where_keys(fault, ports, conns, params)
    bounds = [b for b in BOUNDS.get(fault, ()) if b in keys]
    if permanent or not bounds:
        return st.fixed_dictionaries({}, optional=keys)
    # one bound is required (so shrinking cannot remove it); the rest optional
    return st.one_of([
        st.fixed_dictionaries({bound: keys[bound]},
                              optional={k: v for k, v in keys.items() if k != bound})
        for bound in bounds])


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
        return _params(fault, max_bytes, hosts, permanent).flatmap(
            lambda p: _where(fault, ports, conns, permanent, p).map(
                lambda w: Rule(fault, where=w, **p)))

    return st.one_of([build(k) for k in ordered])


def fault_plans(faults: Sequence[str] | None = None, *, min_rules: int = 0, max_rules: int = 3,
                **rule_kwargs: Any) -> st.SearchStrategy[FaultPlan]:
    """:class:`~simnet.faults.FaultPlan` objects of *min_rules* to *max_rules*
    rules drawn from :func:`rules` (which takes the other arguments,
    *permanent* among them: by default no rule breaks the network for good)."""
    if not 0 <= min_rules <= max_rules:
        raise ValueError(f"need 0 <= min_rules <= max_rules, got {min_rules}, {max_rules}")
    return st.lists(rules(faults, **rule_kwargs), min_size=min_rules, max_size=max_rules).map(FaultPlan)
