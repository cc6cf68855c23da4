"""Hypothesis finds a planted protocol bug (simnet.examples.buggy: a client
that assumes send() sends everything) through random fault plans, and
shrinks the plan to the one rule that matters."""

from __future__ import annotations

from hypothesis import HealthCheck, find, given, settings

from simnet.examples.buggy import MESSAGE, NaiveClient, deliver
from simnet.fakesock import FakeNetwork
from simnet.strategies import fault_plans


class CarefulClient(NaiveClient):
    """The fix: keeps what send() did not take, for the next write event."""

    def __init__(self, map):
        self.pending = MESSAGE
        super().__init__(map)

    def writable(self):
        return (not self.connected) or bool(self.pending)

    def handle_connect(self):
        pass

    def handle_write(self):
        self.pending = self.pending[self.send(self.pending):]


def delivers(plan, client_cls=NaiveClient, seed=0) -> bool:
    """Does the whole message arrive under *plan*?"""
    with FakeNetwork(seed=seed, faults=plan) as net:
        return deliver(net, client_cls) == MESSAGE


DATA_FAULTS = ["partial_send", "short_read", "eagain", "latency"]


def test_hypothesis_finds_the_planted_bug_and_shrinks_it_to_one_rule():
    plan = find(fault_plans(faults=DATA_FAULTS, max_rules=4), lambda p: not delivers(p),
                settings=settings(max_examples=300, database=None, deadline=None))
    assert len(plan) == 1
    rule = plan.rules[0]
    # the minimal failing plan is a send that takes less than everything
    assert rule.fault in ("partial_send", "eagain")
    if rule.fault == "eagain":
        assert rule.params["op"] == "send"
    print("shrunk to:", plan.describe())


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(fault_plans(faults=["partial_send", "short_read", "latency"], max_rules=3))
def test_the_fixed_client_delivers_under_any_such_plan(plan):
    assert delivers(plan, CarefulClient)


def test_explore_finds_the_planted_bug_once_shrunk_to_one_transient_rule(tmp_path):
    from simnet.explore import explore
    from simnet.strategies import breaks_for_good

    failures = explore("simnet.examples.buggy:scenario", seeds=300, jobs=1, trace_dir=str(tmp_path))
    assert len(failures) == 1
    (failure,) = failures
    assert failure.error.startswith("AssertionError: the server got")
    assert len(failure.plan) == 1 and not breaks_for_good(failure.plan.rules[0])
    assert failure.plan.rules[0].fault in ("partial_send", "eagain")
    assert failure.count > 1
    assert failure.trace_path and 1 <= len(list(tmp_path.iterdir())) <= 3
