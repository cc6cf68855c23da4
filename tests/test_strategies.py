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
