"""Transient fault plans: which rules break the network for good, and a fast
generator and shrinker of plans that never do (no Hypothesis needed).

``simnet explore`` draws one plan per seed with :func:`random_plan` and
shrinks a failing one with :func:`shrink`; :mod:`simnet.strategies` offers
the same plans as Hypothesis strategies for property tests. Both follow one
rule, :func:`breaks_for_good`: a fault that could stop the network from
working -- a refused connect, a reset, a spurious EAGAIN, a lost datagram --
carries a bound (:data:`BOUNDS`), and a partition heals. So a program that
retries gets through every plan drawn, and a failure under one is a bug.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterator, Sequence

from simnet import faults as _faults
from simnet.faults import FAULTS, FaultPlan, PlanError, Rule

__all__ = ["SIMPLEST_FIRST", "FOREVER_SURVIVABLE", "BOUNDS", "WHERE_FOR", "breaks_for_good",
           "random_plan", "shrink"]

#: Fault kinds in the order shrinking goes toward (first = simplest).
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
#: finite); ``call`` confines a spurious EAGAIN to one call per socket (the
#: retry on the same socket succeeds). ``conn`` is a place, not a bound (the
#: plan validator words such a rule as "... on the 2nd connection, forever").
#: ``probability`` alone is no bound either: a rule that refuses 9 connects
#: in 10 forever still defeats any program with a finite retry budget.
#: ``eagain`` and ``eintr`` take no window as their bound: a program spinning
#: on them may advance no virtual time, and so never reach the window's end.
BOUNDS: dict[str, tuple[str, ...]] = {
    "eagain": ("limit", "call"),
    "eintr": ("limit",),
    "disconnect": ("limit",),
    "refuse": ("limit", "window"),
    "connect_timeout": ("limit", "window"),
    "unreachable": ("limit", "window"),
    "backlog_overflow": ("limit", "window"),
    "udp_loss": ("limit", "window"),
}

#: fault -> the *where* keys drawn for it: those that mean something for
#: its operation (a connect has no "k-th call" worth drawing, a link no side).
#: ``disconnect`` takes no ``call`` (the plan validator rejects it); its
#: ``window`` is decided at the send that reaches ``after_bytes``.
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


def breaks_for_good(rule: Rule) -> bool:
    """Whether *rule* can keep the network from working forever: it may fire
    on every operation it acts on, for ever, and each firing stops data (a
    refused connect, a reset connection, a spurious EAGAIN, a lost datagram,
    a partition that never heals). No program survives such a rule, so a
    failure under it is not a bug. A rule is transient when its fault lets
    data through anyway (:data:`FOREVER_SURVIVABLE`), when a partition has an
    ``end``, or when its *where* holds one of the bounds :data:`BOUNDS` lists
    for its kind."""
    own = getattr(rule, "breaks_network", None)  # the plan validator's word, where it has one
    if callable(own) and own() is not None:
        return True
    if rule.fault in FOREVER_SURVIVABLE:
        return False
    if rule.fault == "partition":
        return rule.params["end"] is None
    return not any(key in rule.where for key in BOUNDS.get(rule.fault, ("limit", "window")))


# -- the values drawn, simplest first ------------------------------------------------

def param_choices(fault: str, *, max_bytes: int = 64, hosts: Sequence[str] = (),
                  permanent: bool = False) -> dict[str, list[Any]]:
    """Each parameter of *fault* and the values drawn for it, simplest first."""
    if fault in ("partial_send", "short_read"):
        return {"max_bytes": list(range(1, max_bytes + 1)) + [None]}
    if fault == "eagain":
        return {"op": ["send", "recv", "accept", "connect"]}
    if fault == "disconnect":
        return {"mode": ["rst", "fin"], "side": [None, "client", "server"],
                "after_bytes": [None] + list(range(0, 4 * max_bytes + 1))}
    if fault == "latency":
        return {"latency": [0.0, 0.001, 0.01, 0.1, 1.0], "jitter": [0.0, 0.001, 0.01, 0.1]}
    if fault == "partition":
        hs = list(hosts) or ["local", "localhost"]
        return {"a": hs, "b": hs, "start": [0.0, 0.1, 1.0],
                "end": [0.5, 5.0, 10.0] + ([30.0, None] if permanent else [])}
    if fault == "udp_reorder":
        return {"delay": [0.01, 0.1, 1.0]}
    return {}


def allowed_where(fault: str, params: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The *where* keys drawn for *fault* with *params*: :data:`WHERE_FOR`,
    less any the plan validator rejects for them (``simnet.faults.where_keys``,
    where it exists)."""
    base = WHERE_FOR.get(fault, ())
    validator = getattr(_faults, "where_keys", None)
    if validator is None:
        return base
    try:
        accepted = set(validator(fault, **(params or {})))
    except Exception:  # noqa: BLE001 -- an older or different validator: ours stands
        return base
    return tuple(k for k in base if k in accepted)


def where_choices(fault: str, *, ports: Sequence[int] | None = None,
                  conns: int | None = 3, params: dict[str, Any] | None = None) -> dict[str, list[Any]]:
    """The *where* keys drawn for *fault* (with *params*) and their values,
    simplest first."""
    keys: dict[str, list[Any]] = {
        "side": ["client", "server"],
        "call": [1, 2, 3, 4, 5],
        "limit": [1, 2, 3, 4, 5],
        "probability": [0.5, 0.25, 0.1, 0.9],
        "conn": list(range(1, max(1, conns or 1) + 1)),
        "window": [[0.0, 1.0], [0.0, 5.0], [1.0, 10.0]],
    }
    if ports:
        keys["port"] = list(ports)
    allowed = allowed_where(fault, params)
    return {k: v for k, v in keys.items() if k in allowed}


def _make(fault: str, params: dict[str, Any], where: dict[str, Any]) -> Rule | None:
    try:
        return Rule(fault, where=where, **params)
    except PlanError:
        return None


def _kinds(faults: Sequence[str] | None) -> list[str]:
    kinds = list(SIMPLEST_FIRST if faults is None else faults)
    unknown = [k for k in kinds if k not in FAULTS]
    if unknown or not kinds:
        raise ValueError(f"unknown fault kind(s) {', '.join(map(repr, unknown)) or 'none given'}; "
                         f"known: {', '.join(FAULTS)}")
    return sorted(set(kinds), key=lambda k: SIMPLEST_FIRST.index(k) if k in SIMPLEST_FIRST else 99)


def random_rule(rng: random.Random, fault: str, *, permanent: bool = False,
                **choices: Any) -> Rule:
    """One rule of kind *fault* drawn with *rng*; transient unless *permanent*."""
    pc = param_choices(fault, max_bytes=choices.get("max_bytes", 64),
                       hosts=choices.get("hosts", ()), permanent=permanent)
    for _ in range(1000):
        params = {name: rng.choice(values) for name, values in pc.items()}
        wc = where_choices(fault, ports=choices.get("ports"), conns=choices.get("conns", 3),
                           params=params)
        where = {k: rng.choice(v) for k, v in wc.items() if rng.random() < 0.25}
        bounds = [b for b in BOUNDS.get(fault, ()) if b in wc]
        if bounds and not permanent and not any(b in where for b in bounds):
            bound = rng.choice(bounds)
            where[bound] = rng.choice(wc[bound])
        rule = _make(fault, params, where)
        if rule is not None and (permanent or not breaks_for_good(rule)):
            return rule
    raise ValueError(f"cannot draw a valid transient {fault!r} rule (leave {fault!r} out of faults)")


def random_plan(rng: random.Random, faults: Sequence[str] | None = None, *, max_rules: int = 3,
                permanent: bool = False, **choices: Any) -> FaultPlan:
    """A plan of 0..*max_rules* rules of the kinds *faults* (default: all),
    drawn with *rng* (so a seeded ``random.Random`` gives the same plan in
    any process). Transient (no rule :func:`breaks_for_good`) unless
    *permanent*. *choices*: ``max_bytes``, ``hosts``, ``ports``, ``conns``
    as :func:`simnet.strategies.rules` takes them."""
    kinds = _kinds(faults)
    n = rng.randint(0, max_rules)
    return FaultPlan([random_rule(rng, rng.choice(kinds), permanent=permanent, **choices)
                      for _ in range(n)])


# -- shrinking ------------------------------------------------------------------------

def _index(values: list[Any], value: Any) -> int:
    try:
        return values.index(value)
    except ValueError:
        return len(values)


def _rule_measure(rule: Rule, permanent: bool, choices: dict[str, Any]) -> tuple[int, int, int]:
    pc = param_choices(rule.fault, max_bytes=choices.get("max_bytes", 64),
                       hosts=choices.get("hosts", ()), permanent=True)
    wc = where_choices(rule.fault, ports=choices.get("ports"), conns=choices.get("conns", 3))
    kind = SIMPLEST_FIRST.index(rule.fault) if rule.fault in SIMPLEST_FIRST else 99
    values = sum(_index(pc.get(k, []), v) for k, v in rule.params.items())
    values += sum(_index(wc.get(k, []), v) for k, v in rule.where.items())
    return kind, len(rule.where), values


def measure(plan: FaultPlan, seed: int, permanent: bool = False,
            **choices: Any) -> tuple[Any, ...]:
    """How complex a (plan, seed) pair is; shrinking only ever lowers it."""
    per_rule = [_rule_measure(r, permanent, choices) for r in plan]
    return (len(plan), sum(m[0] for m in per_rule), sum(m[1] for m in per_rule),
            sum(m[2] for m in per_rule), seed)


def _simpler_rules(rule: Rule, kinds: list[str], permanent: bool,
                   choices: dict[str, Any]) -> Iterator[Rule]:
    fault, params, where = rule.fault, dict(rule.params), dict(rule.where)
    pc = param_choices(fault, max_bytes=choices.get("max_bytes", 64),
                       hosts=choices.get("hosts", ()), permanent=permanent)
    wc = where_choices(fault, ports=choices.get("ports"), conns=choices.get("conns", 3),
                       params=params)
    # a simpler kind, in its simplest form
    for other in kinds:
        if other == fault:
            break
        opc = param_choices(other, max_bytes=choices.get("max_bytes", 64),
                            hosts=choices.get("hosts", ()), permanent=permanent)
        oparams = {k: v[0] for k, v in opc.items()}
        owc = where_choices(other, ports=choices.get("ports"), conns=choices.get("conns", 3),
                            params=oparams)
        bounds = [b for b in BOUNDS.get(other, ()) if b in owc]
        w = {} if permanent or not bounds else {bounds[0]: owc[bounds[0]][0]}
        made = _make(other, oparams, w)
        if made is not None:
            yield made
    # fewer where keys; then each where value and parameter toward its simplest
    for key in list(where):
        made = _make(fault, params, {k: v for k, v in where.items() if k != key})
        if made is not None:
            yield made
    for key, value in where.items():
        values = wc.get(key, [])
        i = _index(values, value)
        for j in sorted({0, i // 2, i - 1}):
            if 0 <= j < i:
                made = _make(fault, params, {**where, key: values[j]})
                if made is not None:
                    yield made
    for name, value in params.items():
        values = pc.get(name, [])
        i = _index(values, value)
        for j in sorted({0, i // 2, i - 1}):
            if 0 <= j < i:
                made = _make(fault, {**params, name: values[j]}, where)
                if made is not None:
                    yield made


def shrink(plan: FaultPlan, seed: int, fails: Callable[[FaultPlan, int], bool], *,
           faults: Sequence[str] | None = None, permanent: bool = False, budget: int = 300,
           **choices: Any) -> tuple[FaultPlan, int, int]:
    """The simplest (plan, seed) found that still *fails*, starting from a
    failing pair: rules removed, kinds simplified, where keys dropped (never
    the last bound, unless *permanent*), values toward their simplest, the
    seed toward 0; each step lowers :func:`measure`. At most *budget* runs.
    Returns (plan, seed, runs)."""
    kinds = _kinds(faults)
    current, cur_seed = plan, seed
    cur_measure = measure(current, cur_seed, permanent, **choices)
    runs = 0
    improved = True
    while improved and runs < budget:
        improved = False
        for cand, cand_seed in _candidates(current, cur_seed, kinds, permanent, choices):
            if not permanent and any(breaks_for_good(r) for r in cand):
                continue
            m = measure(cand, cand_seed, permanent, **choices)
            if m >= cur_measure:
                continue
            runs += 1
            if fails(cand, cand_seed):
                current, cur_seed, cur_measure = cand, cand_seed, m
                improved = True
                break
            if runs >= budget:
                break
    return current, cur_seed, runs


def _candidates(plan: FaultPlan, seed: int, kinds: list[str], permanent: bool,
                choices: dict[str, Any]) -> Iterator[tuple[FaultPlan, int]]:
    rules = list(plan)
    for i in range(len(rules)):
        yield FaultPlan(rules[:i] + rules[i + 1:]), seed
    for i, rule in enumerate(rules):
        for simpler in _simpler_rules(rule, kinds, permanent, choices):
            yield FaultPlan(rules[:i] + [simpler] + rules[i + 1:]), seed
    for s in sorted({0, seed // 2, seed - 1}):
        if 0 <= s < seed:
            yield plan, s
