"""Issue 15 points 5 and 6, and the plan side of issue 11's "Bad input": every
malformed plan is one PlanError naming the rule, the field and the value;
unbounded and shadowed rules are named by describe() and the API."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simnet.faults import FAULTS, WHERE_KEYS, FaultPlan, PlanError, Rule

NAN, INF = float("nan"), float("inf")


def _deep(n: int) -> list:
    """A list nested *n* deep, built without recursion."""
    value: list = []
    for _ in range(n):
        value = [value]
    return value


BAD = [
    ([{"fault": ["x"]}], r"^rule 1: unknown fault \['x'\]"),
    ([{"fault": {"a": 1}}], r"^rule 1: unknown fault \{'a': 1\}"),
    ([{"fault": "eagain", "where": []}], r"^rule 1 \(eagain\): field 'where' must be a mapping.*got \[\]"),
    ([{"fault": "eagain", "where": "port"}], r"field 'where' must be a mapping.*got 'port'"),
    ([{"fault": "latency", "latency": NAN}], r"^rule 1 \(latency\): field 'latency' must be a finite number, got nan"),
    ([{"fault": "latency", "jitter": INF}], r"field 'jitter' must be a finite number, got inf"),
    ([{"fault": "latency", "bandwidth": NAN}], r"field 'bandwidth' must be a finite number, got nan"),
    ([{"fault": "latency", "bandwidth": -INF}], r"field 'bandwidth' must be a finite number, got -inf"),
    ([{"fault": "udp_reorder", "delay": INF}], r"field 'delay' must be a finite number, got inf"),
    ([{"fault": "disconnect", "at": NAN}], r"field 'at' must be a finite number, got nan"),
    ([{"fault": "partition", "a": "x", "b": "y", "start": INF}], r"field 'start' must be a finite"),
    ([{"fault": "partition", "a": "x", "b": "y", "end": NAN}], r"field 'end' must be a finite"),
    ([{"fault": "partition", "a": "x", "b": "y", "start": 5, "end": 1}],
     r"^rule 1 \(partition\): field 'end' must be after 'start' \(got start=5.0, end=1.0\)"),
    ([{"fault": "partition", "a": "x", "b": "y", "start": 2, "end": 2}], r"field 'end' must be after 'start'"),
    ([{"fault": "eagain", "where": {"window": [0, NAN]}}], r"field 'where.window' must be .*got \[0, nan\]"),
    ([{"fault": "eagain", "where": {"window": [NAN, 1]}}], r"field 'where.window'.*got \[nan, 1\]"),
    ([{"fault": "eagain", "where": {"window": [-1, 2]}}], r"field 'where.window'.*got \[-1, 2\]"),
    ([{"fault": "eagain", "where": {"window": [3, 1]}}], r"field 'where.window'.*got \[3, 1\]"),
    ([{"fault": "eagain", "where": {"window": [0, INF]}}], r"field 'where.window'.*got \[0, inf\]"),
    ([{"fault": "eagain", "where": {"window": [0]}}], r"field 'where.window'.*got \[0\]"),
    ([{"fault": "eagain", "where": {"window": "0-1"}}], r"field 'where.window'.*got '0-1'"),
    ([{"fault": "eagain", "where": {"window": [True, 2]}}], r"field 'where.window'.*got \[True, 2\]"),
    ([{"fault": "eagain", "where": {"probability": NAN}}], r"field 'where.probability'.*got nan"),
    ([{"fault": "eagain", "where": {"probability": True}}], r"field 'where.probability'.*got True"),
    ([{"fault": "eagain", "where": {"port": True}}], r"field 'where.port' must be an int 0..65535, got True"),
    ([{"fault": "eagain", "where": {"port": 10 ** 100}}], r"field 'where.port' must be an int 0..65535"),
    ([{"fault": "eagain", "where": {"limit": False}}], r"field 'where.limit' must be an int >= 1, got False"),
    ([{"fault": "eagain", "where": {"limit": 1.5}}], r"field 'where.limit' must be an int >= 1, got 1.5"),
    ([{"fault": "eagain", "where": {"conn": 0}}], r"field 'where.conn' must be an int >= 1, got 0"),
    ([{"fault": "eagain", "where": {"peer": ""}}], r"field 'where.peer' must be an address or host name"),
    ([{"fault": "eagain", "where": {"side": ["client"]}}], r"field 'where.side'.*got \['client'\]"),
    ([{"fault": "partial_send", "max_bytes": True}], r"field 'max_bytes' must be an int, got True"),
    ([{"fault": "disconnect", "after_bytes": False}], r"field 'after_bytes' must be an int, got False"),
    ([{"fault": "latency", "latency": True}], r"field 'latency' must be a finite number, got True"),
    ([{"fault": "disconnect", "at": True}], r"field 'at' must be a finite number, got True"),
    ([{"fault": "disconnect", "mode": ["rst"]}], r"field 'mode' must be one of 'rst', 'fin'; got \['rst'\]"),
    ([{"fault": "eagain", "op": {"x": 1}}], r"field 'op' must be one of"),
    ([{"fault": "disconnect", "after_bytes": 3, "at": 1.0}],
     r"^rule 1 \(disconnect\): fields 'after_bytes' and 'at' exclude each other"),
    ([{"fault": "eintr", "exception": "NoSuchError"}], r"field 'exception' must name a built-in exception"),
    ([{"fault": "eintr", "exception": "len"}], r"field 'exception' must name a built-in exception.*'len'"),
    ([{"fault": "eintr", "exception": 5}], r"field 'exception' must name a built-in exception.*5"),
    ([{"fault": "eagain", "where": {"limit": 1}}, {"fault": "eintr", "where": {"port": 80}}],
     r"^rule 2 \(eintr\): field 'where.port' does not apply to eintr"),
    ([{"fault": "partition", "a": "x", "b": "y", "where": {"limit": 1}}],
     r"^rule 1 \(partition\): field 'where.limit' does not apply to partition.*it takes no 'where' keys"),
    ([{"fault": "eagain", "where": {"port": _deep(100_000)}}], r"field 'where.port' must be an int.*\[\[\[\["),
    ([{"fault": "eagain", "where": {1: 2}}], r"unknown field 1 in 'where'"),
    ([{"fault": "eagain", 1: 2}], r"^rule 1: field names must be strings, got 1"),
    ([5], r"^rule 1: must be an object with a 'fault' field \(or a Rule\), got 5"),
    ([_deep(100_000)], r"^rule 1: must be an object"),
]


@pytest.mark.parametrize("data, words", BAD, ids=[str(i) for i in range(len(BAD))])
def test_malformed_rules_are_one_plan_error_naming_rule_field_and_value(data, words):
    with pytest.raises(PlanError, match=words) as info:
        FaultPlan(data)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def _as_json(data):
    """*data* as JSON text if it survives the trip unchanged (else None)."""
    try:
        text = json.dumps(data)  # NaN and Infinity are what Python's json writes
    except (ValueError, TypeError, RecursionError):
        return None
    return text if repr(json.loads(text)) == repr(data) else None


JSON_BAD = [(_as_json(d), w) for d, w in BAD if _as_json(d) is not None]


@pytest.mark.parametrize("text, words", JSON_BAD, ids=[str(i) for i in range(len(JSON_BAD))])
def test_the_same_errors_come_from_json_text(text, words):
    with pytest.raises(PlanError, match=words):
        FaultPlan.from_json(text)


@pytest.mark.parametrize("text, words", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('[{"fault": "eagain", "where": {"port": ' + "[" * 100_000 + "]" * 100_000 + "}}]", "nested too deeply"),
    ('[{"fault": "latency", "latency": NaN}]', "field 'latency' must be a finite number, got nan"),
    ('[{"fault": "latency", "latency": 1e999}]', "field 'latency' must be a finite number, got inf"),
    ('[{"fault": "eagain", "where": {"window": [0, Infinity]}}]', r"field 'where.window'"),
    (b"\xff\xfe[", "not valid JSON"),
    ("[{", "not valid JSON"),
    ('{"rules": 5}', "JSON list of rules"),
    ('{"rules": [], "x": 1}', "unknown field 'x'"),
    ('"eagain"', "JSON list of rules"),
    ("5", "JSON list of rules"),
], ids=lambda v: v[:40] if isinstance(v, str) else repr(v)[:40])
def test_malformed_json_plans_are_one_plan_error(text, words):
    with pytest.raises(PlanError, match=words):
        FaultPlan.from_json(text)


@pytest.mark.parametrize("value", [5, "eagain", {"fault": "eagain"}, 1.5, None.__class__])
def test_a_plan_that_is_not_a_list_is_a_plan_error(value):
    with pytest.raises(PlanError, match="fault plan must be a list of rules"):
        FaultPlan(value)


def test_from_json_of_something_that_is_not_text_is_a_plan_error():
    with pytest.raises(PlanError, match="must be JSON text, got 5"):
        FaultPlan.from_json(5)


def test_a_hostile_repr_does_not_escape_the_error():
    class Weird:
        def __repr__(self):
            raise RuntimeError("no")

    with pytest.raises(PlanError, match=r"field 'max_bytes' must be an int, got <Weird (instance|object)"):
        FaultPlan([{"fault": "short_read", "max_bytes": Weird()}])


# -- random input: a plan or a PlanError, nothing else ---------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8) | st.sampled_from(sorted(FAULTS) + list(WHERE_KEYS) + ["rst", "fin", "send"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.sampled_from(
        ["fault", "where", "max_bytes", "op", "mode", "side", "after_bytes", "at", "latency",
         "jitter", "bandwidth", "a", "b", "start", "end", "delay", "exception"] + list(WHERE_KEYS)),
        inner, max_size=5),
    max_leaves=20)

_field = st.sampled_from(sorted({k for spec in FAULTS.values() for k in spec}))
_plan_like = st.lists(
    st.fixed_dictionaries({"fault": st.sampled_from(sorted(FAULTS)) | _json},
                          optional={"where": st.dictionaries(st.sampled_from(WHERE_KEYS) | st.text(max_size=4),
                                                             _json, max_size=4) | _json}).flatmap(
        lambda d: st.dictionaries(_field, _json, max_size=3).map(lambda extra: {**extra, **d})),
    max_size=4)


def _accepts_or_plan_error(load) -> None:
    try:
        plan = load()
    except PlanError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    # a valid plan: it reads, round-trips and analyses without error
    plan.describe()
    plan.unbounded()
    plan.warnings()
    assert FaultPlan.from_json(plan.to_json()) == plan
    for rule in plan:
        for value in rule.params.values():
            assert not (isinstance(value, float) and not math.isfinite(value))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=_json | _plan_like)
def test_random_json_is_a_plan_or_a_plan_error(data):
    _accepts_or_plan_error(lambda: FaultPlan.from_json(json.dumps(data)))
    if isinstance(data, list):
        _accepts_or_plan_error(lambda: FaultPlan(data))


# -- point 5: plans that break the network for good -----------------------------------------

@pytest.mark.parametrize("rule, words", [
    (Rule("eagain", op="send"), "every send() fails with EAGAIN, forever"),
    (Rule("eagain", op="recv", where={"conn": 2}), "every recv() fails with EAGAIN on the 2nd connection, forever"),
    (Rule("refuse"), "every connect() fails with ECONNREFUSED, forever"),
    (Rule("connect_timeout", where={"port": 80}), "every connect() fails with ETIMEDOUT on port 80, forever"),
    (Rule("unreachable", where={"probability": 1.0}), "every connect() fails with EHOSTUNREACH, forever"),
    (Rule("backlog_overflow"), "every connection request is dropped (connects time out), forever"),
    (Rule("udp_loss"), "every datagram is lost, forever"),
    (Rule("eintr", exception="KeyboardInterrupt"), "every wait of the loop raises KeyboardInterrupt, forever"),
    (Rule("disconnect"), "every connection is cut at its first send or recv that moves data, forever"),
    (Rule("disconnect", after_bytes=0), "every connection is cut at its first send, forever"),
    (Rule("disconnect", at=5.0), "every connection alive at t=5s or made later is cut, forever"),
    (Rule("partition", a="a", b="b", start=1.0), "a and b stay cut off from each other from t=1s on"),
])
def test_rules_that_break_the_network_for_good_say_why(rule, words):
    assert rule.breaks_network() == words
    plan = FaultPlan([Rule("short_read"), rule])
    assert plan.unbounded() == [(2, words)]
    assert f"warning: rule 2 breaks the network for good: {words}" in plan.describe().splitlines()


@pytest.mark.parametrize("rule", [
    Rule("eagain", op="send", where={"limit": 5}),
    Rule("eagain", op="send", where={"probability": 0.5}),
    Rule("eagain", op="send", where={"window": [0, 10]}),
    Rule("eagain", op="send", where={"call": 1}),
    Rule("refuse", where={"limit": 1}),
    Rule("partition", a="a", b="b", end=3.0),
    Rule("disconnect", after_bytes=1000),
    Rule("partial_send", max_bytes=1),
    Rule("short_read", max_bytes=1),
    Rule("eintr"),
    Rule("latency", latency=1.0),
    Rule("udp_duplicate"),
    Rule("udp_reorder"),
])
def test_bounded_or_harmless_rules_do_not_break_the_network(rule):
    assert rule.breaks_network() is None
    assert FaultPlan([rule]).unbounded() == []
    assert "warning" not in FaultPlan([rule]).describe()


# -- point 6: shadowed rules ----------------------------------------------------------------

@pytest.mark.parametrize("rules, warning", [
    ([Rule("partial_send", max_bytes=1), Rule("eagain", op="send")],
     "rule 2 (eagain) can never fire: rule 1 (partial_send) matches every send() it would"),
    ([Rule("eagain", op="recv", where={"port": 80}), Rule("short_read", where={"port": 80, "limit": 3})],
     "rule 2 (short_read) can never fire: rule 1 (eagain) matches every recv() it would"),
    ([Rule("refuse", where={"window": [0, 10]}), Rule("unreachable", where={"window": [1, 2]})],
     "rule 2 (unreachable) can never fire: rule 1 (refuse) matches every connect() it would"),
    ([Rule("udp_loss"), Rule("udp_duplicate", where={"port": 53})],
     "rule 2 (udp_duplicate) can never fire: rule 1 (udp_loss) matches every datagram it would"),
    ([Rule("eintr"), Rule("eintr", exception="KeyboardInterrupt")],
     "rule 2 (eintr) can never fire: rule 1 (eintr) matches every wait of the loop it would"),
    ([Rule("disconnect", at=5.0, where={"window": [0, 4]})],
     "rule 1 (disconnect) can never fire: it acts at t=5s, after its window ends (t=4s)"),
    ([Rule("refuse", where={"side": "server"})],
     "rule 1 (refuse) can never fire: connect() is called on connecting (client) sockets only"),
])
def test_shadowed_rules_are_warned_about(rules, warning):
    plan = FaultPlan(rules)
    assert any(w.startswith(warning) for w in plan.warnings()), plan.warnings()
    assert any(line.startswith("warning: " + warning) for line in plan.describe().splitlines())


@pytest.mark.parametrize("rules", [
    [Rule("partial_send", max_bytes=1, where={"probability": 0.5}), Rule("eagain", op="send")],
    [Rule("partial_send", max_bytes=1, where={"limit": 3}), Rule("eagain", op="send")],
    [Rule("partial_send", where={"port": 80}), Rule("eagain", op="send")],
    [Rule("eagain", op="recv"), Rule("eagain", op="send")],
    [Rule("refuse", where={"window": [1, 2]}), Rule("refuse", where={"window": [0, 10]})],
    [Rule("unreachable"), Rule("refuse")],  # unreachable is TCP only: a Unix connect is refused
    [Rule("disconnect", after_bytes=10), Rule("disconnect", after_bytes=20)],
])
def test_rules_that_can_still_fire_are_not_warned_about(rules):
    assert FaultPlan(rules).warnings() == []


def test_shadowed_rule_really_never_fires():
    plan = [Rule("partial_send", max_bytes=1), Rule("eagain", op="send")]
    from simnet.fakesock import FakeNetwork

    with FakeNetwork(seed=1, faults=plan) as net:
        srv = net.socket()
        srv.bind(("127.0.0.1", 80))
        srv.listen(1)
        cli = net.socket()
        cli.connect(("127.0.0.1", 80))
        srv.accept()
        for _ in range(20):
            cli.send(b"abc")
        assert net.faults.fired == [20, 0]


def test_the_readme_plans_raise_no_warning():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("### Faults, traces and replay"):readme.index("### pytest")]
    plans = re.findall(r"plan = (\[.*?\])[ \t]*(?:#[^\n]*)?\n\s*with", section, re.S)
    assert plans, "the README's faults section shows a plan"
    for body in plans:
        plan = FaultPlan(eval(body, {"Rule": Rule}))  # noqa: S307 - our own README
        assert plan.warnings() == [] and plan.unbounded() == [], plan.describe()
