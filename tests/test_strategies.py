"""simnet.strategies: valid plans that round-trip through JSON, and shrink."""

import pytest
from hypothesis import HealthCheck, find, given, settings

from simnet.faults import FAULTS, FaultPlan, Rule
from simnet.strategies import SIMPLEST_FIRST, fault_plans, rules


@settings(max_examples=200, deadline=None, database=None)
@given(fault_plans(max_rules=4, ports=[25, 80]))
def test_generated_plans_are_valid_and_round_trip(plan):
    assert isinstance(plan, FaultPlan) and len(plan) <= 4
    assert FaultPlan.from_json(plan.to_json()) == plan
    for rule in plan:
        assert plan.describe()  # every rule has words
        assert Rule.from_dict(rule.to_dict()) == rule


@settings(max_examples=100, deadline=None, database=None)
@given(rules(faults=["short_read", "latency"]))
def test_restricted_to_the_named_faults(rule):
    assert rule.fault in ("short_read", "latency")


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_kind_can_be_generated(fault):
    rule = find(rules(faults=[fault]), lambda r: True, settings=settings(database=None))
    assert rule.fault == fault


def test_unknown_fault_names_are_a_clear_error():
    with pytest.raises(ValueError, match="unknown fault kind.*'jam'"):
        rules(faults=["short_read", "jam"])
    with pytest.raises(ValueError, match="min_rules <= max_rules"):
        fault_plans(min_rules=3, max_rules=1)


def test_shrinks_to_a_single_simplest_rule():
    plan = find(fault_plans(max_rules=4),
                lambda p: any(r.fault == "partial_send" for r in p),
                settings=settings(database=None, max_examples=500))
    assert plan.rules == [Rule("partial_send", max_bytes=1)]
    assert SIMPLEST_FIRST[0] == "partial_send"


# -- transient by default (issue 15 point 5; issue 11 point 4) ---------------------------

from simnet.strategies import BOUNDS, FOREVER_SURVIVABLE, breaks_for_good  # noqa: E402


@pytest.mark.parametrize("rule, breaks", [
    (Rule("refuse"), True),
    (Rule("refuse", where={"probability": 0.9}), True),   # probability alone is no bound
    (Rule("refuse", where={"limit": 3}), False),
    (Rule("refuse", where={"window": [0, 5]}), False),
    (Rule("refuse", where={"conn": 1}), True),   # a place, not a bound
    (Rule("refuse", where={"side": "client", "port": 80}), True),
    (Rule("eagain", op="send"), True),
    (Rule("eagain", op="send", where={"call": 1}), False),
    (Rule("eagain", op="recv", where={"conn": 2}), True),  # that connection stalls for good
    (Rule("disconnect", mode="rst"), True),
    (Rule("disconnect", mode="rst", after_bytes=10), True),  # every connection, after 10 bytes
    (Rule("disconnect", mode="fin", where={"conn": 2}), True),
    (Rule("disconnect", mode="fin", where={"limit": 2}), False),
    (Rule("backlog_overflow"), True),
    (Rule("udp_loss"), True),
    (Rule("udp_loss", where={"limit": 2}), False),
    (Rule("partition", a="local", b="localhost"), True),
    (Rule("partition", a="local", b="localhost", end=5.0), False),
    (Rule("partial_send", max_bytes=1), False),
    (Rule("short_read"), False),
    (Rule("latency", latency=1.0), False),
    (Rule("udp_reorder"), False),
])
def test_breaks_for_good_names_the_rules_no_program_survives(rule, breaks):
    assert breaks_for_good(rule) is breaks


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(fault_plans(max_rules=4, ports=[25, 80]))
def test_generated_plans_never_break_the_network_for_good(plan):
    assert not [r for r in plan if breaks_for_good(r)], plan.describe()


@pytest.mark.parametrize("fault", sorted(set(FAULTS) - FOREVER_SURVIVABLE))
def test_shrinking_keeps_the_bound_and_permanent_true_drops_it(fault):
    shrunk = find(rules(faults=[fault]), lambda r: True, settings=settings(database=None))
    assert not breaks_for_good(shrunk)
    if fault in BOUNDS:
        assert dict(shrunk.where) == {BOUNDS[fault][0]: 1}  # the simplest bound: fires once
    unbounded = find(rules(faults=[fault], permanent=True), lambda r: True,
                     settings=settings(database=None))
    assert breaks_for_good(unbounded) and not unbounded.where


def test_a_search_for_an_unbounded_rule_finds_one_only_when_asked():
    settings_ = settings(database=None, max_examples=300)
    from hypothesis.errors import NoSuchExample

    with pytest.raises(NoSuchExample):
        find(fault_plans(), lambda p: any(breaks_for_good(r) for r in p), settings=settings_)
    plan = find(fault_plans(permanent=True), lambda p: any(breaks_for_good(r) for r in p),
                settings=settings_)
    assert len(plan) == 1


def test_permanent_must_be_a_bool():
    with pytest.raises(ValueError, match="permanent must be True or False, got 'yes'"):
        rules(permanent="yes")
