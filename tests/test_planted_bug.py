"""Hypothesis finds a planted protocol bug through random fault plans, and
shrinks the plan to the one rule that matters."""

from __future__ import annotations

from hypothesis import HealthCheck, find, given, settings

import simnet
from simnet.fakesock import Deadlock, FakeNetwork, SimulationTimeout
from simnet.strategies import fault_plans

MESSAGE = b"HELLO, this is one whole protocol message\r\n"


class Collector(simnet.dispatcher):
    """Server side: keeps what arrives."""

    def __init__(self, sock, map, box):
        super().__init__(sock, map=map)
        self.box = box

    def writable(self):
        return False

    def handle_read(self):
        try:
            self.box.append(self.recv(4096))
        except BlockingIOError:
            pass  # a spurious EAGAIN: nothing to read after all


class Server(simnet.dispatcher):
    def __init__(self, map, box):
        super().__init__(map=map)
        self.box = box
        self.create_socket()
        self.bind(("127.0.0.1", 4000))
        self.listen(5)

    def handle_accepted(self, sock, addr):
        Collector(sock, self._map, self.box)


class NaiveClient(simnet.dispatcher):
    """The planted bug: assumes one send() sends the whole message."""

    def __init__(self, map):
        super().__init__(map=map)
        self.create_socket()
        self.connect(("127.0.0.1", 4000))

    def writable(self):
        return not self.connected

    def handle_connect(self):
        self.send(MESSAGE)  # BUG: ignores how much was sent

    def handle_read(self):
        self.recv(100)

    def handle_error(self):
        self.handle_close()


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
        m, box = {}, []
        Server(m, box)
        client_cls(m)
        try:
            net.run(until=lambda: b"".join(box) == MESSAGE or len(m) < 2, map=m, timeout=300)
        except (Deadlock, SimulationTimeout):
            pass
        got = b"".join(box)
        simnet.close_all(m)
    return got == MESSAGE


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
