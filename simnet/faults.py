"""Fault plans: the faults real networks produce once a month, as data.

A :class:`FaultPlan` is a list of :class:`Rule`. Each rule says *what* goes
wrong (``fault`` and its parameters) and *where* (``where``: which sockets,
connections, calls and times, with a probability). Plans are plain data:
JSON round-trips them, Hypothesis shrinks them (``simnet.strategies``), and
``describe()`` reads as English::

    from simnet.faults import FaultPlan, Rule

    plan = FaultPlan([
        Rule("partial_send", max_bytes=1),                      # every send takes 1 byte
        Rule("eagain", op="recv", where={"probability": 0.2}),  # spurious EAGAIN
        Rule("disconnect", mode="rst", after_bytes=1000, where={"conn": 2}),
    ])
    print(plan.describe())
    with FakeNetwork(seed=7, faults=plan) as net:
        ...

Faults, with their parameters (``None``: drawn from the network's RNG):

==================  ========================================================
``partial_send``    ``send`` accepts at most ``max_bytes`` (None: 1..len)
``short_read``      ``recv`` returns at most ``max_bytes`` (None: 1..n)
``eagain``          ``op`` (recv/send/accept/connect) raises BlockingIOError
                    (EAGAIN) although the socket is ready
``eintr``           a signal during the loop's wait (select/poll). As on
                    Python >= 3.5 (PEP 475) no EINTR reaches the program: the
                    wait wakes early, at the next event on the network, maybe
                    with nothing ready; or, with ``exception`` (a built-in
                    exception's name, e.g. ``"KeyboardInterrupt"``), the
                    handler's exception propagates from the wait
``disconnect``      ``mode`` rst or fin, from ``side``; ``after_bytes``: in
                    the send by which one end reaches that many bytes (cut
                    to land on it; 0: its first send); ``at``: at that time
                    (a connection made later: when made); neither: at a
                    send/recv that moves data. A connection is cut once.
``refuse``          ``connect`` gets ECONNREFUSED (TCP and Unix sockets)
``connect_timeout`` a TCP ``connect`` gets ETIMEDOUT (after the SYN retries)
``unreachable``     a TCP ``connect`` gets EHOSTUNREACH
``backlog_overflow`` the listener drops the SYN, as when its queue is full
``latency``         links get ``latency`` + up to ``jitter`` seconds, and
                    ``bandwidth`` bytes/s
``partition``       hosts ``a`` and ``b`` cannot reach each other from
                    ``start`` until ``end`` (None: never healed); TCP
                    segments are held and delivered on heal
``udp_loss``        datagrams are dropped
``udp_duplicate``   datagrams arrive twice
``udp_reorder``     datagrams are delayed by up to ``delay`` seconds
==================  ========================================================

*Where* keys (all optional; a rule with none applies everywhere):
``port`` (either end's port), ``peer`` and ``local`` (an address or host
name), ``conn`` (the n-th connection made on the network, from 1), ``side``
(``client``: sockets that connected, ``server``: sockets from accept),
``window`` (``[start, end]`` in network time), ``call`` (the k-th call of the
operation on one socket, from 1), ``probability`` (0..1, drawn from the
network's seeded RNG) and ``limit`` (fire at most that many times). Each
fault takes only the keys that mean something for it (:func:`where_keys`,
:data:`WHERE_FOR`: e.g. ``eintr`` takes ``window``, ``probability`` and
``limit``; a partition none); any other key is a :class:`PlanError` naming
the rule and the key.

How rules combine: for each operation the rules that act on it are tried in
order, and the first whose *where* holds is the rule for that operation
(later ones are not tried; a probability is drawn only when everything else
holds). A rule *fires* -- and counts in ``fired``, the summary and the
trace's ``fault`` events -- each time it changes what the program sees: a
send or read cut shorter than it would have been, an EAGAIN, a live
connection cut, a wait woken early. ``limit: n`` allows n of those.

Plans are checked as a whole too: :meth:`FaultPlan.unbounded` (and
:meth:`Rule.breaks_network`) names rules that make the network unusable for
good; :meth:`FaultPlan.warnings` names rules that can never fire, shadowed by
an earlier rule; :meth:`FaultPlan.describe` ends with a ``warning:`` line
for each.
"""

from __future__ import annotations

import builtins
import errno
import json
import math
import os
import reprlib
from typing import Any, Iterable, Iterator, Mapping

__all__ = ["Rule", "FaultPlan", "PlanError", "FAULTS", "WHERE_KEYS", "WHERE_FOR", "where_keys"]


class PlanError(ValueError):
    """An invalid rule or plan; the message names the rule and the field."""


_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6


def _show(value: Any) -> str:
    """A short, safe repr for error messages (deeply nested or huge values
    are cut, a hostile ``__repr__`` does not escape)."""
    try:
        return _repr.repr(value)
    except Exception:  # noqa: BLE001 - a value's own __repr__ failed
        return f"<{type(value).__name__} object>"


# fault -> {parameter: (kind, default)}; kinds checked by _check_param
FAULTS: dict[str, dict[str, tuple[str, Any]]] = {
    "partial_send": {"max_bytes": ("size?", None)},
    "short_read": {"max_bytes": ("size?", None)},
    "eagain": {"op": ("op", "recv")},
    "eintr": {"exception": ("exception?", None)},
    "disconnect": {"mode": ("mode", "rst"), "side": ("side?", None),
                   "after_bytes": ("count?", None), "at": ("time?", None)},
    "refuse": {},
    "connect_timeout": {},
    "unreachable": {},
    "backlog_overflow": {},
    "latency": {"latency": ("time", 0.0), "jitter": ("time", 0.0), "bandwidth": ("rate?", None)},
    "partition": {"a": ("host", None), "b": ("host", None), "start": ("time", 0.0),
                  "end": ("time?", None)},
    "udp_loss": {},
    "udp_duplicate": {},
    "udp_reorder": {"delay": ("time", 0.1)},
}

#: which operations each fault acts on (for matching and for real sockets)
FAULT_OPS: dict[str, str] = {
    "partial_send": "send", "short_read": "recv", "eagain": "*", "eintr": "wait",
    "disconnect": "data", "refuse": "connect", "connect_timeout": "connect",
    "unreachable": "connect", "backlog_overflow": "syn", "latency": "link",
    "partition": "partition", "udp_loss": "datagram", "udp_duplicate": "datagram",
    "udp_reorder": "datagram",
}

WHERE_KEYS = ("port", "peer", "local", "conn", "side", "window", "call", "probability", "limit")
_OPS = ("recv", "send", "accept", "connect")

#: The ``where`` keys each fault accepts; any other key is a :class:`PlanError`
#: (it could never mean what :meth:`Rule.describe` would say). ``eagain``
#: depends on its ``op``: see :func:`where_keys`.
WHERE_FOR: dict[str, tuple[str, ...]] = {
    "partial_send": WHERE_KEYS,
    "short_read": WHERE_KEYS,
    "eagain": WHERE_KEYS,
    "eintr": ("window", "probability", "limit"),
    "disconnect": ("port", "peer", "local", "conn", "side", "window", "probability", "limit"),
    "refuse": ("port", "peer", "conn", "side", "window", "call", "probability", "limit"),
    "connect_timeout": ("port", "peer", "conn", "side", "window", "call", "probability", "limit"),
    "unreachable": ("port", "peer", "conn", "side", "window", "call", "probability", "limit"),
    "backlog_overflow": ("port", "peer", "local", "conn", "window", "probability", "limit"),
    "latency": ("peer", "local"),
    "partition": (),
    "udp_loss": ("port", "peer", "local", "window", "probability", "limit"),
    "udp_duplicate": ("port", "peer", "local", "window", "probability", "limit"),
    "udp_reorder": ("port", "peer", "local", "window", "probability", "limit"),
}
_EAGAIN_WHERE = {
    "accept": ("port", "local", "window", "call", "probability", "limit"),
    "connect": ("port", "peer", "conn", "side", "window", "call", "probability", "limit"),
}

#: why a where key cannot apply to a fault (for the error message)
_WHY_NOT_WHERE: dict[str, str] = {
    "eintr": "the loop's wait belongs to no socket, connection or call",
    "disconnect": "a disconnect acts on a connection's data, not on one numbered call",
    "connect": ("a connect fault acts when connect() starts, before it has chosen the "
                "socket's local address"),
    "backlog_overflow": "the listener drops a connection request; it has no side and no call",
    "latency": "a link's latency is set per pair of hosts, for the whole run",
    "partition": "a partition names its hosts and times in 'a', 'b', 'start' and 'end'",
    "udp": "a datagram belongs to no connection, side or numbered call",
    "accept": "accept() acts on the listening socket, which has no connection, side or peer",
}


def where_keys(fault: str, **params: Any) -> tuple[str, ...]:
    """The ``where`` keys *fault* accepts (with *params*, e.g. ``op`` for eagain)."""
    if fault == "eagain":
        return _EAGAIN_WHERE.get(params.get("op", "recv"), WHERE_KEYS)
    return WHERE_FOR[fault]


def _why_not(fault: str, params: Mapping[str, Any]) -> str:
    if fault == "eagain":
        return _WHY_NOT_WHERE["accept" if params.get("op") == "accept" else "connect"]
    if fault in ("refuse", "connect_timeout", "unreachable"):
        return _WHY_NOT_WHERE["connect"]
    if fault.startswith("udp_"):
        return _WHY_NOT_WHERE["udp"]
    return _WHY_NOT_WHERE.get(fault, "it cannot apply")


def _label(rule_no: int | None, fault: str) -> str:
    return f"rule {rule_no} ({fault})" if rule_no is not None else f"rule ({fault})"


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _check_param(rule_no: int | None, fault: str, name: str, kind: str, value: Any) -> Any:
    where = _label(rule_no, fault)
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None:
        if optional:
            return None
        if kind == "host":
            raise PlanError(f"{where}: field {name!r} is required (a host name or address)")
        raise PlanError(f"{where}: field {name!r} must not be None")
    if kind in ("size", "count"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise PlanError(f"{where}: field {name!r} must be an int, got {_show(value)}")
        low = 1 if kind == "size" else 0
        if value < low:
            raise PlanError(f"{where}: field {name!r} must be >= {low}, got {_show(value)}")
        return value
    if kind in ("time", "rate"):
        if not _number(value) or not math.isfinite(value):
            raise PlanError(f"{where}: field {name!r} must be a finite number, got {_show(value)}")
        if value < 0 or (kind == "rate" and value == 0):
            raise PlanError(f"{where}: field {name!r} must be {'> 0' if kind == 'rate' else '>= 0'}, "
                            f"got {_show(value)}")
        return float(value) if kind == "time" else value
    if kind in ("op", "mode", "side"):
        choices = {"op": _OPS, "mode": ("rst", "fin"), "side": ("client", "server")}[kind]
        if not isinstance(value, str) or value not in choices:
            raise PlanError(f"{where}: field {name!r} must be one of "
                            f"{', '.join(map(repr, choices))}; got {_show(value)}")
        return value
    if kind == "host":
        if not isinstance(value, str) or not value:
            raise PlanError(f"{where}: field {name!r} must be a host name or address, got {_show(value)}")
        return value
    if kind == "exception":
        cls = getattr(builtins, value, None) if isinstance(value, str) else None
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise PlanError(f"{where}: field {name!r} must name a built-in exception class "
                            f"(e.g. 'KeyboardInterrupt'), got {_show(value)}")
        return value
    raise AssertionError(kind)  # pragma: no cover


def _check_where(rule_no: int | None, fault: str, where: Any,
                 params: Mapping[str, Any]) -> dict[str, Any]:
    label = _label(rule_no, fault)
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise PlanError(f"{label}: field 'where' must be a mapping (an object), got {_show(where)}")
    allowed = where_keys(fault, **params)
    out: dict[str, Any] = {}
    for key, value in where.items():
        if key not in WHERE_KEYS:
            raise PlanError(f"{label}: unknown field {_show(key)} in 'where' "
                            f"(known: {', '.join(WHERE_KEYS)})")
        if key not in allowed:
            takes = ", ".join(allowed) if allowed else "no 'where' keys"
            raise PlanError(f"{label}: field 'where.{key}' does not apply to {fault} "
                            f"({_why_not(fault, params)}); it takes {takes}")
        if key in ("port", "conn", "call", "limit"):
            low = 0 if key == "port" else 1
            if (isinstance(value, bool) or not isinstance(value, int) or value < low
                    or (key == "port" and value > 65535)):
                rng = "0..65535" if key == "port" else f">= {low}"
                raise PlanError(f"{label}: field 'where.{key}' must be an int {rng}, got {_show(value)}")
        elif key in ("peer", "local"):
            if not isinstance(value, str) or not value:
                raise PlanError(f"{label}: field 'where.{key}' must be an address or host name, "
                                f"got {_show(value)}")
        elif key == "side":
            if not isinstance(value, str) or value not in ("client", "server"):
                raise PlanError(f"{label}: field 'where.side' must be 'client' or 'server', "
                                f"got {_show(value)}")
        elif key == "window":
            if (not isinstance(value, (list, tuple)) or len(value) != 2
                    or not all(_number(v) and math.isfinite(v) for v in value)
                    or not 0 <= value[0] <= value[1]):
                raise PlanError(f"{label}: field 'where.window' must be [start, end], finite "
                                f"numbers with 0 <= start <= end, got {_show(value)}")
            value = [float(value[0]), float(value[1])]
        elif key == "probability":
            if not _number(value) or not 0 <= value <= 1:
                raise PlanError(f"{label}: field 'where.probability' must be a number in [0, 1], "
                                f"got {_show(value)}")
            value = float(value)
        out[key] = value
    return out


def _check_rule(rule_no: int | None, fault: str, params: Mapping[str, Any]) -> None:
    """Checks across a rule's fields."""
    label = _label(rule_no, fault)
    if fault == "disconnect" and params["after_bytes"] is not None and params["at"] is not None:
        raise PlanError(f"{label}: fields 'after_bytes' and 'at' exclude each other "
                        f"(got after_bytes={params['after_bytes']!r}, at={params['at']!r})")
    if fault == "partition" and params["end"] is not None and params["end"] <= params["start"]:
        raise PlanError(f"{label}: field 'end' must be after 'start' "
                        f"(got start={params['start']!r}, end={params['end']!r})")


class Rule:
    """One fault and where it applies. ``Rule("short_read", max_bytes=3)``.

    Raises :class:`PlanError` naming the rule, the field and the value for an
    unknown fault, an unknown parameter, a bad value (NaN and infinities
    included) or a ``where`` key the fault does not take (:func:`where_keys`).
    """

    __slots__ = ("fault", "params", "where")

    fault: str
    params: Mapping[str, Any]
    where: Mapping[str, Any]

    def __init__(self, fault: str, *, where: Mapping[str, Any] | None = None,
                 _rule_no: int | None = None, **params: Any) -> None:
        if not isinstance(fault, str) or fault not in FAULTS:
            where = f"rule {_rule_no}" if _rule_no is not None else "rule"
            raise PlanError(f"{where}: unknown fault {_show(fault)} "
                            f"(field 'fault'; known: {', '.join(FAULTS)})")
        spec = FAULTS[fault]
        checked: dict[str, Any] = {}
        for name, value in params.items():
            if name not in spec:
                label = _label(_rule_no, fault)
                known = ", ".join(spec) or "none"
                raise PlanError(f"{label}: unknown field {_show(name)} (its fields: {known}; "
                                f"'where' for {', '.join(WHERE_KEYS)})")
            checked[name] = _check_param(_rule_no, fault, name, spec[name][0], value)
        for name, (kind, default) in spec.items():
            if name not in checked:
                checked[name] = _check_param(_rule_no, fault, name, kind, default)
        _check_rule(_rule_no, fault, checked)
        object.__setattr__(self, "fault", fault)
        object.__setattr__(self, "params", checked)
        object.__setattr__(self, "where", _check_where(_rule_no, fault, where, checked))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("rules are immutable; make a new Rule")

    def __getattr__(self, name: str) -> Any:
        # parameters read as attributes: rule.max_bytes
        try:
            return object.__getattribute__(self, "params")[name]
        except (KeyError, AttributeError):
            raise AttributeError(name) from None

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        args = [repr(self.fault)] + [f"{k}={v!r}" for k, v in self.params.items()
                                     if v != FAULTS[self.fault][k][1]]
        if self.where:
            args.append(f"where={dict(self.where)!r}")
        return f"Rule({', '.join(args)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"fault": ..., <params>, "where": {...}}``."""
        out: dict[str, Any] = {"fault": self.fault}
        out.update(self.params)
        if self.where:
            out["where"] = dict(self.where)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], rule_no: int | None = None) -> Rule:
        """A rule from its JSON form; :class:`PlanError` names the rule and field."""
        if not isinstance(data, Mapping):
            raise PlanError(f"rule {rule_no}: must be an object with a 'fault' field, got {_show(data)}")
        if "fault" not in data:
            raise PlanError(f"rule {rule_no}: missing field 'fault' (known: {', '.join(FAULTS)})")
        for key in data:
            if not isinstance(key, str):
                raise PlanError(f"rule {rule_no}: field names must be strings, got {_show(key)}")
        params = {k: v for k, v in data.items() if k not in ("fault", "where")}
        return cls(data["fault"], where=data.get("where"), _rule_no=rule_no, **params)

    @property
    def acts_on(self) -> str:
        """The operation this rule acts on (send, recv, accept, connect, wait ...)."""
        kind = FAULT_OPS[self.fault]
        return self.params["op"] if kind == "*" else kind

    def describe(self) -> str:
        """The rule in English."""
        p = self.params
        f = self.fault
        if f == "partial_send":
            what = ("send() accepts a random part of the data" if p["max_bytes"] is None
                    else f"send() accepts at most {_bytes(p['max_bytes'])}")
        elif f == "short_read":
            what = ("recv() returns a random part of what is buffered" if p["max_bytes"] is None
                    else f"recv() returns at most {_bytes(p['max_bytes'])}")
        elif f == "eagain":
            what = f"{p['op']}() fails with a spurious BlockingIOError (EAGAIN)"
        elif f == "eintr":
            what = ("a signal interrupts the loop's wait, which returns early, possibly with "
                    "nothing ready" if p["exception"] is None else
                    f"a signal interrupts the loop's wait and its handler raises {p['exception']}")
        elif f == "disconnect":
            how = "reset (RST)" if p["mode"] == "rst" else "closed (FIN)"
            who = f" by the {p['side']}" if p["side"] else ""
            when = (f" after {_bytes(p['after_bytes'])} sent" if p["after_bytes"] is not None
                    else f" at t={p['at']:g}s (a connection made later: when made)"
                    if p["at"] is not None else " at a send() or recv() that moves data")
            what = f"the connection is {how}{who}{when}"
        elif f == "refuse":
            what = "connect() is refused (ECONNREFUSED)"
        elif f == "connect_timeout":
            what = "a TCP connect() times out (ETIMEDOUT)"
        elif f == "unreachable":
            what = "a TCP connect() finds the host unreachable (EHOSTUNREACH)"
        elif f == "backlog_overflow":
            what = "the listener drops the connection request (accept queue full)"
        elif f == "latency":
            parts = [f"{p['latency'] * 1000:g} ms latency"]
            if p["jitter"]:
                parts.append(f"up to {p['jitter'] * 1000:g} ms jitter")
            if p["bandwidth"]:
                parts.append(f"{p['bandwidth']:g} bytes/s")
            what = "links have " + ", ".join(parts)
        elif f == "partition":
            until = f"until t={p['end']:g}s" if p["end"] is not None else "for good"
            what = f"{p['a']} and {p['b']} are cut off from each other from t={p['start']:g}s {until}"
        elif f == "udp_loss":
            what = "UDP datagrams are lost"
        elif f == "udp_duplicate":
            what = "UDP datagrams arrive twice"
        else:
            what = f"UDP datagrams are delayed by up to {p['delay'] * 1000:g} ms (reordered)"
        return what + _describe_where(self.where)

    def breaks_network(self) -> str | None:
        """Why this rule makes the network unusable for good -- it applies
        forever, with certainty, to every operation of its kind (within its
        places: port, peer, local, conn, side) -- or None if it does not.

        A ``limit``, a ``call``, a ``window`` or a ``probability`` below 1
        bounds a rule; so does a partition that heals (``end``).
        """
        p = self.params
        f = self.fault
        if f == "partition":
            if p["end"] is None:
                return f"{p['a']} and {p['b']} stay cut off from each other from t={p['start']:g}s on"
            return None
        w = self.where
        if "limit" in w or "call" in w or "window" in w or w.get("probability", 1.0) < 1:
            return None
        if f == "eagain":
            why = f"every {p['op']}() fails with EAGAIN"
        elif f in ("refuse", "connect_timeout", "unreachable"):
            code = {"refuse": "ECONNREFUSED", "connect_timeout": "ETIMEDOUT",
                    "unreachable": "EHOSTUNREACH"}[f]
            why = f"every connect() fails with {code}"
        elif f == "backlog_overflow":
            why = "every connection request is dropped (connects time out)"
        elif f == "udp_loss":
            why = "every datagram is lost"
        elif f == "eintr" and p["exception"] is not None:
            why = f"every wait of the loop raises {p['exception']}"
        elif f == "disconnect" and p["at"] is not None:
            why = f"every connection alive at t={p['at']:g}s or made later is cut"
        elif f == "disconnect" and p["after_bytes"] == 0:
            why = "every connection is cut at its first send"
        elif f == "disconnect" and p["after_bytes"] is None:
            why = "every connection is cut at its first send or recv that moves data"
        else:
            return None
        scope = _describe_where({k: v for k, v in w.items() if k != "probability"})
        return f"{why}{scope}, forever"


def _bytes(n: int) -> str:
    return f"{n} byte" + ("" if n == 1 else "s")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _describe_where(where: Mapping[str, Any]) -> str:
    parts = []
    if "conn" in where:
        parts.append(f"on the {_ordinal(where['conn'])} connection")
    if "port" in where:
        parts.append(f"on port {where['port']}")
    if "peer" in where:
        parts.append(f"talking to {where['peer']}")
    if "local" in where:
        parts.append(f"on {where['local']}")
    if "side" in where:
        parts.append("on connecting sockets" if where["side"] == "client" else "on accepted sockets")
    if "call" in where:
        parts.append(f"on the {_ordinal(where['call'])} call")
    if "window" in where:
        parts.append(f"between t={where['window'][0]:g}s and t={where['window'][1]:g}s")
    if "probability" in where:
        parts.append(f"with probability {where['probability']:g}")
    if "limit" in where:
        parts.append(f"at most {where['limit']} time" + ("" if where["limit"] == 1 else "s"))
    return (" " + ", ".join(parts)) if parts else ""


class FaultPlan:
    """An ordered list of rules; the first rule that matches an operation acts.

    ``FaultPlan.from_json(text)`` / ``plan.to_json()`` round-trip it.
    """

    def __init__(self, rules: Iterable[Rule | Mapping[str, Any]] = ()) -> None:
        self.rules: list[Rule] = []
        if isinstance(rules, (str, bytes, Mapping)) or not isinstance(rules, Iterable):
            raise PlanError(f"fault plan must be a list of rules, got {_show(rules)}")
        for i, rule in enumerate(rules, 1):
            if isinstance(rule, Rule):
                self.rules.append(rule)
            elif isinstance(rule, Mapping):
                self.rules.append(Rule.from_dict(rule, i))
            else:
                raise PlanError(f"rule {i}: must be an object with a 'fault' field (or a Rule), "
                                f"got {_show(rule)}")

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FaultPlan) and self.rules == other.rules

    def __repr__(self) -> str:
        return f"FaultPlan({self.rules!r})"

    def add(self, rule: Rule | Mapping[str, Any] | str, **params: Any) -> Rule:
        """Append a rule: a Rule, a mapping, or ``add("short_read", max_bytes=1)``."""
        if isinstance(rule, str):
            rule = Rule(rule, **params)
        elif isinstance(rule, Mapping):
            rule = Rule.from_dict(rule, len(self.rules) + 1)
        elif not isinstance(rule, Rule):
            raise TypeError(f"add() takes a Rule, a mapping or a fault name, got {type(rule).__name__}")
        self.rules.append(rule)
        return rule

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rules]

    def to_json(self) -> str:
        return json.dumps(self.to_list(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> FaultPlan:
        """Load a plan; :class:`PlanError` names the rule and field at fault."""
        if not isinstance(text, (str, bytes, bytearray)):
            raise PlanError(f"fault plan must be JSON text, got {_show(text)}")
        try:
            data = json.loads(text)
        except RecursionError:
            raise PlanError("fault plan is nested too deeply to be a plan "
                            "(a plan is a list of flat rule objects)") from None
        except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
            raise PlanError(f"fault plan is not valid JSON: {exc}") from None
        if isinstance(data, Mapping) and "rules" in data:
            extra = sorted(set(data) - {"rules"})
            if extra:
                raise PlanError(f"fault plan: unknown field {_show(extra[0])} (only 'rules')")
            data = data["rules"]
        if not isinstance(data, list):
            raise PlanError("fault plan must be a JSON list of rules (or {\"rules\": [...]})")
        return cls(data)

    @classmethod
    def coerce(cls, value: Any) -> FaultPlan:
        """A FaultPlan from a plan, a list of rules/mappings, JSON text, or None."""
        if value is None:
            return cls()
        if isinstance(value, FaultPlan):
            return value
        if isinstance(value, Rule):
            return cls([value])
        if isinstance(value, (str, bytes)):
            return cls.from_json(value)
        if isinstance(value, (list, tuple)):
            return cls(value)
        raise TypeError(f"faults must be a FaultPlan, a list of rules, or JSON text; got {type(value).__name__}")

    def describe(self) -> str:
        """The plan in English, one rule per line, then a ``warning:`` line for
        each rule that breaks the network for good (:meth:`unbounded`) or can
        never fire (:meth:`warnings`)."""
        if not self.rules:
            return "no faults"
        lines = [f"{i}. {r.describe()}" for i, r in enumerate(self.rules, 1)]
        lines += [f"warning: rule {i} breaks the network for good: {why}" for i, why in self.unbounded()]
        lines += [f"warning: {text}" for text in self.warnings()]
        return "\n".join(lines)

    def unbounded(self) -> list[tuple[int, str]]:
        """``(rule number from 1, reason)`` for each rule that makes the
        network unusable for good (see :meth:`Rule.breaks_network`)."""
        out = []
        for i, rule in enumerate(self.rules, 1):
            why = rule.breaks_network()
            if why is not None:
                out.append((i, why))
        return out

    def warnings(self) -> list[str]:
        """Rules that can never fire: shadowed by an earlier rule that always
        matches first (the first matching rule wins), or timed outside their
        own window. One sentence each, naming the rules."""
        out = []
        for j, b in enumerate(self.rules):
            for i, a in enumerate(self.rules[:j]):
                if _shadows(a, b):
                    out.append(f"rule {j + 1} ({b.fault}) can never fire: rule {i + 1} ({a.fault}) "
                               f"matches every {_OP_WORDS.get(b.acts_on, b.acts_on)} it would, "
                               f"and the first matching rule wins")
                    break
            else:
                at = b.params.get("at") if b.fault == "disconnect" else None
                if b.acts_on == "connect" and b.where.get("side") == "server":
                    out.append(f"rule {j + 1} ({b.fault}) can never fire: connect() is called on "
                               f"connecting (client) sockets only, and it names side 'server'")
                if at is not None and "window" in b.where and b.where["window"][1] < at:
                    out.append(f"rule {j + 1} ({b.fault}) can never fire: it acts at t={at:g}s, "
                               f"after its window ends (t={b.where['window'][1]:g}s)")
        return out


_OP_WORDS = {"send": "send()", "recv": "recv()", "accept": "accept()", "connect": "connect()",
             "wait": "wait of the loop", "data": "connection", "syn": "connection request",
             "link": "link", "datagram": "datagram"}


def _shadows(a: Rule, b: Rule) -> bool:
    """Whether rule *a*, earlier in a plan, matches every operation that the
    later rule *b* would match (so *b* never gets one)."""
    if a.acts_on != b.acts_on or a.fault == "partition" or b.fault == "partition":
        return False
    wa, wb = a.where, b.where
    if "limit" in wa or wa.get("probability", 1.0) < 1:
        return False
    for key, value in wa.items():
        if key not in wb:
            return False
        if key == "window":
            if not (value[0] <= wb["window"][0] and wb["window"][1] <= value[1]):
                return False
        elif key != "probability" and wb[key] != value:
            return False
    if a.fault == "disconnect":
        # each trigger (after n bytes, at a time, at once) is decided on its own
        return (a.params["after_bytes"], a.params["at"]) == (b.params["after_bytes"], b.params["at"])
    if a.fault in ("connect_timeout", "unreachable"):
        # TCP only: a Unix-socket connect passes them by
        return b.fault in ("connect_timeout", "unreachable")
    return True


def disconnect_at_once(rule: Rule) -> bool:
    """Whether a disconnect *rule* acts as soon as its places match (it
    names neither ``after_bytes`` nor ``at``): checked after each data call."""
    p = rule.params
    return p["at"] is None and p["after_bytes"] is None


def disconnect_targets_peer(rule: Rule, side: str | None) -> bool:
    """Whether a disconnect *rule* met at the end on *side* acts on the other
    end (its ``side`` parameter names that one), if there is one."""
    wanted = rule.params["side"]
    return wanted is not None and wanted != side


class FaultEngine:
    """Applies a plan on one network: matches operations against the rules.

    The network calls :meth:`match` (or :meth:`pick`, then :meth:`fire`) at
    each operation a rule could act on; the first rule whose *where* matches
    is the one for that operation (a probability is drawn from the network's
    seeded RNG only once every other condition holds, so the draws, and the
    run, depend on the seed alone). ``fired`` counts, per rule, the times it
    changed what the program sees -- a partial send that cut the data, a
    disconnect that cut a live connection -- never more than its ``limit``;
    ``on_fire`` (if set) is told of each.
    """

    #: faults whose match does not count by itself: they count in :meth:`size`
    #: when they cut the data
    SIZE_FAULTS = frozenset({"partial_send", "short_read"})

    def __init__(self, plan: FaultPlan, rng: Any, clock: Any, hosts: Any = None) -> None:
        self.plan = plan
        self.rng = rng
        self.clock = clock
        self.hosts = hosts  # callable: name -> list of addresses (or None)
        self.fired = [0] * len(plan.rules)
        self.on_fire: Any = None
        self.on_change: Any = None
        #: connections a disconnect rule has cut (a connection is cut once)
        self.cut_conns: set[Any] = set()
        self._by_op: dict[str, list[tuple[int, Rule]]] = {}
        self._index_of: dict[int, int] = {}
        self.reindex()

    def reindex(self) -> None:
        rules = self.plan.rules
        seen: set[int] = set()
        for k, rule in enumerate(rules):
            if id(rule) in seen:
                # the same Rule object twice: fired counts are per position
                rule = rules[k] = Rule.from_dict(rule.to_dict(), k + 1)
            seen.add(id(rule))
        self._by_op = {}
        while len(self.fired) < len(rules):
            self.fired.append(0)
        for i, rule in enumerate(rules):
            self._by_op.setdefault(rule.acts_on, []).append((i, rule))
        self._index_of = {id(rule): i for i, rule in enumerate(rules)}

    def add(self, rule: Rule | Mapping[str, Any] | str, **params: Any) -> Rule:
        """Add a rule to the running plan."""
        added = self.plan.add(rule, **params)
        self.reindex()
        if self.on_change is not None:
            self.on_change()
        return self.plan.rules[-1] if self.plan.rules else added

    def has(self, op: str) -> bool:
        return op in self._by_op

    def index(self, rule: Rule) -> int | None:
        """The position (from 0) of *rule* in the plan (None: not in it)."""
        return self._index_of.get(id(rule))

    def _addr_matches(self, want: str, addr: Any) -> bool:
        if addr is None:
            return False
        ip = addr[0] if isinstance(addr, tuple) else addr
        if ip == want:
            return True
        if self.hosts is not None:
            return ip in self.hosts(want)
        return False

    def places_match(self, i: int, conn: int | None, side: str | None,
                     local: Any, peer: Any) -> bool:
        """Whether rule *i*'s place keys (conn, side, port, peer, local) hold."""
        w = self.plan.rules[i].where
        if "conn" in w and w["conn"] != conn:
            return False
        if "side" in w and w["side"] != side:
            return False
        if "port" in w and not ((isinstance(local, tuple) and local[1] == w["port"])
                                or (isinstance(peer, tuple) and peer[1] == w["port"])):
            return False
        if "peer" in w and not self._addr_matches(w["peer"], peer):
            return False
        if "local" in w and not self._addr_matches(w["local"], local):
            return False
        return True

    def pick(self, op: str, *, conn: int | None = None, side: str | None = None,
             local: Any = None, peer: Any = None, call: int | None = None,
             accept: Any = None) -> tuple[int, Rule] | None:
        """The first rule for this operation whose *where* holds, with its
        index, or None; draws its probability, counts nothing (see
        :meth:`fire`). *accept*, if given, is a further condition on the rule
        (checked before any draw)."""
        rules = self._by_op.get(op)
        if not rules:
            return None
        fired = self.fired
        for i, rule in rules:
            if accept is not None and not accept(rule):
                continue
            w = rule.where
            if w:
                if "limit" in w and fired[i] >= w["limit"]:
                    continue
                if not self.places_match(i, conn, side, local, peer):
                    continue
                if "call" in w and w["call"] != call:
                    continue
                if "window" in w:
                    now = self.clock()
                    if not w["window"][0] <= now <= w["window"][1]:
                        continue
                if "probability" in w and self.rng.random() >= w["probability"]:
                    continue
            return i, rule
        return None

    def holds(self, i: int) -> bool:
        """Whether rule *i*'s limit and window still allow it now (for a rule
        picked earlier that acts later)."""
        w = self.plan.rules[i].where
        if "limit" in w and self.fired[i] >= w["limit"]:
            return False
        return "window" not in w or w["window"][0] <= self.clock() <= w["window"][1]

    def fire(self, i: int, op: str | None = None, conn: int | None = None,
             fd: int | None = None) -> bool:
        """Count rule *i* as having changed what the program sees (and tell
        ``on_fire``); False, counting nothing, if its limit ran out since it
        was picked."""
        rule = self.plan.rules[i]
        limit = rule.where.get("limit")
        if limit is not None and self.fired[i] >= limit:
            return False
        self.fired[i] += 1
        if self.on_fire is not None:
            self.on_fire(i, rule, op if op is not None else rule.acts_on, conn, fd)
        return True

    def match(self, op: str, *, conn: int | None = None, side: str | None = None,
              local: Any = None, peer: Any = None, call: int | None = None,
              fd: int | None = None, accept: Any = None) -> Rule | None:
        """The rule for this operation, or None; counted at once, except a
        partial_send/short_read, which counts in :meth:`size` if it cuts."""
        found = self.pick(op, conn=conn, side=side, local=local, peer=peer, call=call,
                          accept=accept)
        if found is None:
            return None
        i, rule = found
        if rule.fault not in self.SIZE_FAULTS:
            self.fire(i, op, conn, fd)
        return rule

    def cut(self, *, conn: int | None, side: str | None, local: Any, peer: Any,
            sent: int, n: int) -> tuple[Rule, int] | None:
        """For a send of *n* bytes (n > 0) by a socket whose end has sent
        *sent* bytes: the ``after_bytes`` disconnect rule that cuts the
        connection in this send, and how many of the *n* bytes go out first.
        A rule is decided once per end, by the send that reaches its mark
        (``after_bytes: 0``: the first send); its probability is drawn then.
        Counts nothing: the network counts the disconnect when it applies."""
        if conn in self.cut_conns:
            return None

        def reaches(rule: Rule) -> bool:
            p = rule.params
            after = p["after_bytes"]
            if after is None or p["at"] is not None:
                return False
            return sent < after <= sent + n if after else sent == 0

        found = self.pick("data", conn=conn, side=side, local=local, peer=peer, accept=reaches)
        if found is None:
            return None
        rule = found[1]
        return rule, rule.params["after_bytes"] - sent

    def shape_send(self, rule: Rule | None, n: int, *, conn: int | None, side: str | None,
                   local: Any, peer: Any, sent: int, cutting: bool) -> tuple[int, Rule | None,
                                                                             tuple[Rule, int] | None]:
        """How a send of *n* bytes (all the socket can take now) goes under
        the plan, the same on every network: ``(n, rule, cut)``.

        *rule* is the send's matched rule (None: none); a partial_send takes
        fewer bytes (counted only by :meth:`fire` once the send is made).
        With *cutting* (the socket's stream can still be cut), an
        ``after_bytes`` disconnect that this send reaches is *cut* =
        ``(rule, k)`` (see :meth:`cut`): the caller disconnects before the
        send if k is 0, else after it; a cut shorter than the partial send
        takes its place (the rule returned is then None: it shows nothing).
        """
        if rule is not None and rule.fault == "partial_send":
            n = self.size(rule, n, commit=False)
        cut = None
        if cutting and n:
            # a disconnect "after k bytes" cuts the stream at exactly k bytes
            cut = self.cut(conn=conn, side=side, local=local, peer=peer, sent=sent, n=n)
            if cut is not None and 0 < cut[1] < n:
                n = cut[1]
                rule = None  # cut shorter by the disconnect: the partial send shows nothing
        return n, rule, cut

    def budget(self, *, conn: int | None, side: str | None, local: Any, peer: Any,
               sent: int) -> int | None:
        """Bytes a socket may still send before an ``after_bytes`` disconnect
        rule that could match it now cuts the connection (None: no such
        rule). Looks only, without drawing or counting: probabilities are
        drawn by :meth:`cut`, which a sender should use instead."""
        best = None
        if conn in self.cut_conns:
            return None
        now = self.clock()
        for i, rule in self._by_op.get("data", ()):
            after = rule.params["after_bytes"]
            if after is None or rule.params["at"] is not None or after < sent:
                continue
            w = rule.where
            if "limit" in w and self.fired[i] >= w["limit"]:
                continue
            if "window" in w and not w["window"][0] <= now <= w["window"][1]:
                continue
            if not self.places_match(i, conn, side, local, peer):
                continue
            left = after - sent
            best = left if best is None else min(best, left)
        return best

    def size(self, rule: Rule, available: int, *, conn: int | None = None,
             fd: int | None = None, commit: bool = True) -> int:
        """How many bytes a partial_send/short_read lets through of
        *available*; counts the rule when that is fewer (and its limit has
        not run out meanwhile: then all of *available* goes through).
        *commit* false: count nothing yet; the caller calls :meth:`fire`
        if the cut reaches the program after all."""
        if available <= 1:
            return available
        limit = rule.params.get("max_bytes")
        n = self.rng.randint(1, available) if limit is None else min(limit, available)
        if n < available:
            i = self.index(rule)
            if i is not None and not commit:
                return n if self.holds_limit(i) else available
            if i is not None and not self.fire(i, rule.acts_on, conn, fd):
                return available
        return n

    def holds_limit(self, i: int) -> bool:
        """Whether rule *i* may still fire under its ``limit``."""
        limit = self.plan.rules[i].where.get("limit")
        return limit is None or self.fired[i] < limit

    def signal(self, would_block: bool) -> int | None:
        """A wait of the loop is starting: an ``eintr`` rule's signal. Raises
        the exception its handler raises (if the rule names one), or returns
        the index of the rule whose signal cuts this wait short -- the
        network counts it (:meth:`fire`) if the wait indeed returns early --
        or None. A wait that would not block (*would_block* false: something
        is ready, or a zero timeout) is not cut short. The network checks
        :meth:`holds` again when the wait wakes, so that the early wake-up
        itself falls within the rule's window."""
        found = self.pick("wait")
        if found is None:
            return None
        i, rule = found
        name = rule.params["exception"]
        if name is not None:
            if self.fire(i, "wait"):
                cls = getattr(builtins, name)
                if issubclass(cls, OSError):
                    raise cls(errno.EINTR, os.strerror(errno.EINTR))
                raise cls()
            return None
        return i if would_block else None

    def summary(self) -> str:
        """Each rule with how often it fired."""
        return "\n".join(f"{i}. {r.describe()}: fired {self.fired[i - 1]} time(s)"
                         for i, r in enumerate(self.plan.rules, 1)) or "no faults"
