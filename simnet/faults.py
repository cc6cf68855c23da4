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
``eintr``           the loop's wait (select/poll) raises InterruptedError
``disconnect``      ``mode`` rst or fin, from ``side``, ``after_bytes`` sent
                    on the connection or ``at`` a time (neither: at once)
``refuse``          ``connect`` gets ECONNREFUSED
``connect_timeout`` ``connect`` gets ETIMEDOUT (after the SYN retries)
``unreachable``     ``connect`` gets EHOSTUNREACH
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
network's seeded RNG) and ``limit`` (fire at most that many times).
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Iterator, Mapping

__all__ = ["Rule", "FaultPlan", "PlanError", "FAULTS", "WHERE_KEYS"]


class PlanError(ValueError):
    """An invalid rule or plan; the message names the rule and the field."""


# fault -> {parameter: (kind, default)}; kinds checked by _check_param
FAULTS: dict[str, dict[str, tuple[str, Any]]] = {
    "partial_send": {"max_bytes": ("size?", None)},
    "short_read": {"max_bytes": ("size?", None)},
    "eagain": {"op": ("op", "recv")},
    "eintr": {},
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


def _check_param(rule_no: int | None, fault: str, name: str, kind: str, value: Any) -> Any:
    where = f"rule {rule_no} ({fault})" if rule_no is not None else f"rule ({fault})"
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
            raise PlanError(f"{where}: field {name!r} must be an int, got {value!r}")
        low = 1 if kind == "size" else 0
        if value < low:
            raise PlanError(f"{where}: field {name!r} must be >= {low}, got {value!r}")
        return value
    if kind in ("time", "rate"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PlanError(f"{where}: field {name!r} must be a finite number, got {value!r}")
        if value < 0 or (kind == "rate" and value == 0):
            raise PlanError(f"{where}: field {name!r} must be {'> 0' if kind == 'rate' else '>= 0'}, got {value!r}")
        return float(value) if kind == "time" else value
    if kind == "op":
        if value not in _OPS:
            raise PlanError(f"{where}: field {name!r} must be one of {', '.join(_OPS)}; got {value!r}")
        return value
    if kind == "mode":
        if value not in ("rst", "fin"):
            raise PlanError(f"{where}: field {name!r} must be 'rst' or 'fin', got {value!r}")
        return value
    if kind == "side":
        if value not in ("client", "server"):
            raise PlanError(f"{where}: field {name!r} must be 'client' or 'server', got {value!r}")
        return value
    if kind == "host":
        if not isinstance(value, str) or not value:
            raise PlanError(f"{where}: field {name!r} must be a host name or address, got {value!r}")
        return value
    raise AssertionError(kind)  # pragma: no cover


def _check_where(rule_no: int | None, fault: str, where: Mapping[str, Any]) -> dict[str, Any]:
    label = f"rule {rule_no} ({fault})" if rule_no is not None else f"rule ({fault})"
    if not isinstance(where, Mapping):
        raise PlanError(f"{label}: 'where' must be a mapping, got {type(where).__name__}")
    out: dict[str, Any] = {}
    for key, value in where.items():
        if key not in WHERE_KEYS:
            raise PlanError(f"{label}: unknown field {key!r} in 'where' "
                            f"(known: {', '.join(WHERE_KEYS)})")
        if key in ("port", "conn", "call", "limit"):
            low = 0 if key == "port" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (key == "port" and value > 65535):
                rng = "0..65535" if key == "port" else f">= {low}"
                raise PlanError(f"{label}: field 'where.{key}' must be an int {rng}, got {value!r}")
        elif key in ("peer", "local"):
            if not isinstance(value, str) or not value:
                raise PlanError(f"{label}: field 'where.{key}' must be an address or host name, got {value!r}")
        elif key == "side":
            if value not in ("client", "server"):
                raise PlanError(f"{label}: field 'where.side' must be 'client' or 'server', got {value!r}")
        elif key == "window":
            if (not isinstance(value, (list, tuple)) or len(value) != 2
                    or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
                    or value[0] > value[1]):
                raise PlanError(f"{label}: field 'where.window' must be [start, end] with start <= end, got {value!r}")
            value = [float(value[0]), float(value[1])]
        elif key == "probability":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise PlanError(f"{label}: field 'where.probability' must be a number in [0, 1], got {value!r}")
            value = float(value)
        out[key] = value
    return out


class Rule:
    """One fault and where it applies. ``Rule("short_read", max_bytes=3)``.

    Raises :class:`PlanError` naming the field for an unknown fault, an
    unknown parameter or a bad value.
    """

    __slots__ = ("fault", "params", "where")

    fault: str
    params: Mapping[str, Any]
    where: Mapping[str, Any]

    def __init__(self, fault: str, *, where: Mapping[str, Any] | None = None,
                 _rule_no: int | None = None, **params: Any) -> None:
        if fault not in FAULTS:
            raise PlanError(f"rule {_rule_no if _rule_no is not None else ''}: unknown fault {fault!r} "
                            f"(known: {', '.join(FAULTS)})".replace("rule : ", "rule: "))
        spec = FAULTS[fault]
        checked: dict[str, Any] = {}
        for name, value in params.items():
            if name not in spec:
                label = f"rule {_rule_no} ({fault})" if _rule_no is not None else f"rule ({fault})"
                known = ", ".join(spec) or "none"
                raise PlanError(f"{label}: unknown field {name!r} (its fields: {known}; "
                                f"'where' for {', '.join(WHERE_KEYS)})")
            checked[name] = _check_param(_rule_no, fault, name, spec[name][0], value)
        for name, (kind, default) in spec.items():
            if name not in checked:
                checked[name] = _check_param(_rule_no, fault, name, kind, default)
        object.__setattr__(self, "fault", fault)
        object.__setattr__(self, "params", checked)
        object.__setattr__(self, "where", _check_where(_rule_no, fault, where or {}))

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
        if not isinstance(data, Mapping):
            raise PlanError(f"rule {rule_no}: must be an object, got {type(data).__name__}")
        if "fault" not in data:
            raise PlanError(f"rule {rule_no}: missing field 'fault' (known: {', '.join(FAULTS)})")
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
            what = "the loop's wait is interrupted (InterruptedError)"
        elif f == "disconnect":
            how = "reset (RST)" if p["mode"] == "rst" else "closed (FIN)"
            who = f" by the {p['side']}" if p["side"] else ""
            when = (f" after {_bytes(p['after_bytes'])} sent" if p["after_bytes"] is not None
                    else f" at t={p['at']:g}s" if p["at"] is not None else "")
            what = f"the connection is {how}{who}{when}"
        elif f == "refuse":
            what = "connect() is refused (ECONNREFUSED)"
        elif f == "connect_timeout":
            what = "connect() times out (ETIMEDOUT)"
        elif f == "unreachable":
            what = "connect() finds the host unreachable (EHOSTUNREACH)"
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
        for i, rule in enumerate(rules, 1):
            if isinstance(rule, Rule):
                self.rules.append(rule)
            elif isinstance(rule, Mapping):
                self.rules.append(Rule.from_dict(rule, i))
            else:
                raise PlanError(f"rule {i}: expected a Rule or a mapping, got {type(rule).__name__}")

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
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"fault plan is not valid JSON: {exc}") from None
        if isinstance(data, Mapping) and "rules" in data:
            extra = set(data) - {"rules"}
            if extra:
                raise PlanError(f"fault plan: unknown field {sorted(extra)[0]!r} (only 'rules')")
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
        """The plan in English, one rule per line."""
        if not self.rules:
            return "no faults"
        return "\n".join(f"{i}. {r.describe()}" for i, r in enumerate(self.rules, 1))


class FaultEngine:
    """Applies a plan on one network: matches operations against the rules.

    The network calls :meth:`match` at each operation a rule could act on;
    the first rule whose *where* matches fires (a probability is drawn from
    the network's seeded RNG only once every other condition holds, so the
    draws, and the run, depend on the seed alone). ``fired`` counts firings
    per rule; ``on_fire`` (if set) is told of each.
    """

    def __init__(self, plan: FaultPlan, rng: Any, clock: Any, hosts: Any = None) -> None:
        self.plan = plan
        self.rng = rng
        self.clock = clock
        self.hosts = hosts  # callable: name -> list of addresses (or None)
        self.fired = [0] * len(plan.rules)
        self.on_fire: Any = None
        self.on_change: Any = None
        self._by_op: dict[str, list[tuple[int, Rule]]] = {}
        self.reindex()

    def reindex(self) -> None:
        self._by_op = {}
        while len(self.fired) < len(self.plan.rules):
            self.fired.append(0)
        for i, rule in enumerate(self.plan.rules):
            self._by_op.setdefault(rule.acts_on, []).append((i, rule))

    def add(self, rule: Rule | Mapping[str, Any] | str, **params: Any) -> Rule:
        """Add a rule to the running plan."""
        added = self.plan.add(rule, **params)
        self.reindex()
        if self.on_change is not None:
            self.on_change()
        return added

    def has(self, op: str) -> bool:
        return op in self._by_op

    def _addr_matches(self, want: str, addr: Any) -> bool:
        if addr is None:
            return False
        ip = addr[0] if isinstance(addr, tuple) else addr
        if ip == want:
            return True
        if self.hosts is not None:
            return ip in self.hosts(want)
        return False

    def _places_match(self, i: int, w: Mapping[str, Any], conn: int | None, side: str | None,
                      local: Any, peer: Any) -> bool:
        """The where-clauses that depend on the socket alone (and the limit)."""
        if "limit" in w and self.fired[i] >= w["limit"]:
            return False
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

    def match(self, op: str, *, conn: int | None = None, side: str | None = None,
              local: Any = None, peer: Any = None, call: int | None = None,
              fd: int | None = None, accept: Any = None) -> Rule | None:
        """The rule that fires for this operation, or None. *accept*, if
        given, is a further condition on the rule (checked before any draw)."""
        rules = self._by_op.get(op)
        if not rules:
            return None
        for i, rule in rules:
            if accept is not None and not accept(rule):
                continue
            w = rule.where
            if w:
                if not self._places_match(i, w, conn, side, local, peer):
                    continue
                if "call" in w and w["call"] != call:
                    continue
                if "window" in w:
                    now = self.clock()
                    if not w["window"][0] <= now <= w["window"][1]:
                        continue
                if "probability" in w and self.rng.random() >= w["probability"]:
                    continue
            self.fired[i] += 1
            if self.on_fire is not None:
                self.on_fire(i, rule, op, conn, fd)
            return rule
        return None

    def budget(self, *, conn: int | None, side: str | None, local: Any, peer: Any,
               sent: int) -> int | None:
        """Bytes a socket may still send before an ``after_bytes`` disconnect
        rule that could match it cuts the connection (None: no such rule).
        Looks only, without drawing or counting."""
        best = None
        for i, rule in self._by_op.get("data", ()):
            after = rule.params["after_bytes"]
            if after is None or rule.params["at"] is not None:
                continue
            if not self._places_match(i, rule.where, conn, side, local, peer):
                continue
            left = max(0, after - sent)
            best = left if best is None else min(best, left)
        return best

    def size(self, rule: Rule, available: int) -> int:
        """How many bytes a partial_send/short_read lets through of *available*."""
        if available <= 1:
            return available
        limit = rule.params.get("max_bytes")
        if limit is None:
            return self.rng.randint(1, available)
        return min(limit, available)

    def summary(self) -> str:
        """Each rule with how often it fired."""
        return "\n".join(f"{i}. {r.describe()}: fired {self.fired[i - 1]} time(s)"
                         for i, r in enumerate(self.plan.rules, 1)) or "no faults"
