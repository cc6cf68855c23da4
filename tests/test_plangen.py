"""simnet.plangen: explore's own generator and shrinker of transient plans."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from simnet.faults import FaultPlan, Rule
from simnet.plangen import SIMPLEST_FIRST, breaks_for_good, random_plan, shrink


def test_random_plans_are_valid_transient_and_cover_every_kind():
    kinds = set()
    for k in range(3000):
        plan = random_plan(random.Random(k), max_rules=3)
        assert len(plan) <= 3
        assert FaultPlan.from_json(plan.to_json()) == plan
        assert not [r for r in plan if breaks_for_good(r)], plan.describe()
        kinds.update(r.fault for r in plan)
    assert kinds == set(SIMPLEST_FIRST)


def test_permanent_draws_rules_that_break_the_network_for_good():
    broken = [r for k in range(500) for r in random_plan(random.Random(k), ["refuse"], permanent=True)
              if breaks_for_good(r)]
    assert broken


def test_the_same_seed_draws_the_same_plan_in_another_process():
    here = [random_plan(random.Random(f"simnet-explore:{k}")).to_json() for k in range(20)]
    code = ("import random; from simnet.plangen import random_plan; "
            "print('\\n'.join(random_plan(random.Random(f'simnet-explore:{k}')).to_json() for k in range(20)))")
    env = dict(os.environ, PYTHONHASHSEED="12345")  # string seeds must not depend on hash()
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=env, timeout=60).stdout.splitlines()
    assert there == here


def test_shrink_removes_rules_simplifies_values_keeps_the_bound_and_lowers_the_seed():
    plan = FaultPlan([
        Rule("latency", latency=0.1),
        Rule("refuse", where={"window": [1.0, 10.0], "probability": 0.25, "port": 80}),
        Rule("partial_send", max_bytes=17, where={"side": "client"}),
    ])

    def fails(p: FaultPlan, seed: int) -> bool:  # "fails" while some connect may be refused
        return any(r.fault == "refuse" for r in p)

    small, seed, runs = shrink(plan, 12345, fails, ports=[80])
    assert small.rules == [Rule("refuse", where={"limit": 1})] or small.rules == [
        Rule("refuse", where={"window": [0.0, 1.0]})]
    assert seed == 0 and 0 < runs <= 300
    unbounded, _, _ = shrink(plan, 5, fails, ports=[80], permanent=True)
    assert unbounded.rules == [Rule("refuse")]


def test_shrink_moves_to_a_simpler_kind_when_that_still_fails():
    plan = FaultPlan([Rule("eagain", op="send", where={"call": 3})])
    small, _, _ = shrink(plan, 0, lambda p, s: len(p) == 1)
    assert small.rules == [Rule("partial_send", max_bytes=1)]


def test_shrink_respects_its_budget():
    plan = FaultPlan([Rule("partial_send", max_bytes=60), Rule("short_read", max_bytes=60)])
    calls = []

    def fails(p: FaultPlan, s: int) -> bool:  # nothing simpler fails: every candidate is tried
        calls.append(1)
        return False

    small, seed, runs = shrink(plan, 10 ** 9, fails, budget=7)
    assert len(calls) == runs == 7 and small is plan and seed == 10 ** 9


@pytest.mark.parametrize("faults", [["jam"], []])
def test_unknown_or_no_kinds_are_a_clear_error(faults):
    with pytest.raises(ValueError, match="unknown fault kind"):
        random_plan(random.Random(0), faults)
