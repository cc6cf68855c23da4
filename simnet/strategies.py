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

Importing this module needs Hypothesis (``pip install simnet[test]``);
simnet itself never imports it.
"""

from __future__ import annotations

from typing import Any, Sequence

from hypothesis import strategies as st

from simnet.faults import FAULTS, FaultPlan, Rule, where_keys

__all__ = ["rules", "fault_plans", "SIMPLEST_FIRST"]

#: Fault kinds in the order Hypothesis shrinks toward (first = simplest).
SIMPLEST_FIRST = [
    "partial_send", "short_read", "eagain", "disconnect", "refuse", "connect_timeout",
    "unreachable", "backlog_overflow", "latency", "eintr", "partition",
    "udp_loss", "udp_duplicate", "udp_reorder",
]


def _params(fault: str, max_bytes: int, hosts: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
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
            "end": st.one_of(st.sampled_from([0.5, 5.0, 30.0]), st.none()),
        }).filter(lambda p: p["end"] is None or p["end"] > p["start"])
    if fault == "udp_reorder":
        return st.fixed_dictionaries({"delay": st.sampled_from([0.01, 0.1, 1.0])})
    return st.just({})


def _where(ports: Sequence[int] | None, conns: int,
           allowed: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    keys: dict[str, st.SearchStrategy[Any]] = {
        "side": st.sampled_from(["client", "server"]),
        "call": st.integers(1, 5),
        "limit": st.integers(1, 5),
        "probability": st.sampled_from([0.5, 0.25, 0.1, 0.9]),
        "conn": st.integers(1, max(1, conns or 1)),
        "window": st.sampled_from([(0.0, 1.0), (0.0, 10.0), (1.0, 60.0)]).map(list),
    }
    if ports:
        keys["port"] = st.sampled_from(list(ports))
    # only the keys the fault accepts (simnet.faults.where_keys)
    return st.fixed_dictionaries({}, optional={k: v for k, v in keys.items() if k in allowed})


def rules(faults: Sequence[str] | None = None, *, ports: Sequence[int] | None = None,
          conns: int | None = 3, max_bytes: int = 64, hosts: Sequence[str] = ()) -> st.SearchStrategy[Rule]:
    """Valid :class:`~simnet.faults.Rule` objects.

    *faults* restricts the kinds (default: all); *ports* and *conns* bound
    the where-clauses; *max_bytes* bounds sizes; *hosts* names the hosts a
    partition may cut (default: ``local`` and ``localhost``).
    """
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
        return _params(fault, max_bytes, hosts).flatmap(
            lambda p: _where(ports, conns, where_keys(fault, **p)).map(
                lambda w: Rule(fault, where=w, **p)))

    return st.one_of([build(k) for k in ordered])


def fault_plans(faults: Sequence[str] | None = None, *, min_rules: int = 0, max_rules: int = 3,
                **rule_kwargs: Any) -> st.SearchStrategy[FaultPlan]:
    """:class:`~simnet.faults.FaultPlan` objects of *min_rules* to *max_rules*
    rules drawn from :func:`rules` (which takes the other arguments)."""
    if not 0 <= min_rules <= max_rules:
        raise ValueError(f"need 0 <= min_rules <= max_rules, got {min_rules}, {max_rules}")
    return st.lists(rules(faults, **rule_kwargs), min_size=min_rules, max_size=max_rules).map(FaultPlan)
