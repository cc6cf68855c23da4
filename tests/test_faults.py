"""Each fault kind, shown through the asyncore API on the fake network, plus
plans as data, traces, and strict replay. Virtual time throughout."""

from __future__ import annotations

import errno
import json
import socket

import pytest

import simnet
from simnet.examples.echo import EchoClient, EchoServer
from simnet.fakesock import FakeNetwork
from simnet.faults import FaultPlan, PlanError, Rule
from simnet.traces.trace import Trace, TraceError


# -- helpers ----------------------------------------------------------------

class Sink(simnet.dispatcher):
    """Server side: collects everything; records handle_close calls."""

    def __init__(self, sock, map, log):
        super().__init__(sock, map=map)
        self.data = bytearray()
        self.log = log
        self.closes = 0

    def writable(self):
        return False

    def handle_read(self):
        self.data += self.recv(65536)

    def handle_close(self):
        self.closes += 1
        self.log.append("sink closed")
        self.close()


class Listener(simnet.dispatcher):
    def __init__(self, addr, map, log, handler=Sink):
        super().__init__(map=map)
        self.log = log
        self.handler = handler
        self.conns = []
        self.create_socket()
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)
        self.accept_nones = 0

    def handle_accept(self):
        pair = self.accept()
        if pair is None:
            self.accept_nones += 1
            return
        self.conns.append(self.handler(pair[0], self._map, self.log))


class Sender(simnet.dispatcher_with_send):
    """Client: sends a payload once connected, records callbacks."""

    def __init__(self, addr, payload, map, log):
        super().__init__(map=map)
        self.payload = payload
        self.log = log
        self.closes = 0
        self.errors = []
        self.create_socket()
        self.connect(addr)

    def handle_connect(self):
        self.log.append("connected")
        self.send(self.payload)

    def handle_read(self):
        self.recv(100)

    def handle_close(self):
        self.closes += 1
        self.log.append("sender closed")
        self.close()

    def handle_error(self):
        self.errors.append(simnet.compact_traceback()[2])
        self.handle_close()


def _payload(n):
    return bytes(i % 251 for i in range(n))


# -- plans as data ------------------------------------------------------------

def test_plan_round_trips_through_json_and_reads_as_english():
    plan = FaultPlan([Rule("partial_send", max_bytes=1),
                      Rule("eagain", op="recv", where={"probability": 0.25, "port": 25}),
                      Rule("disconnect", mode="fin", after_bytes=100, where={"conn": 2})])
    again = FaultPlan.from_json(plan.to_json())
    assert again == plan
    assert plan.describe().splitlines() == [
        "1. send() accepts at most 1 byte",
        "2. recv() fails with a spurious BlockingIOError (EAGAIN) on port 25, with probability 0.25",
        "3. the connection is closed (FIN) after 100 bytes sent on the 2nd connection",
    ]


@pytest.mark.parametrize("data, words", [
    ([{"fault": "jam"}], "rule 1: unknown fault 'jam'"),
    ([{"fault": ["x"]}], r"rule 1: unknown fault \['x'\]"),
    ([{"fault": "short_read", "max_bytes": -2}], r"rule 1 \(short_read\): field 'max_bytes' must be >= 1"),
    ([{"fault": "eagain"}, {"fault": "eagain", "where": {"probability": 1.5}}],
     r"rule 2 \(eagain\): field 'where.probability' must be a number in \[0, 1\]"),
    ([{"fault": "partial_send", "size": 3}], "rule 1 \\(partial_send\\): unknown field 'size'"),
    ([{"fault": "eagain", "where": {"host": "x"}}], "rule 1 \\(eagain\\): unknown field 'host' in 'where'"),
    ([{"max_bytes": 1}], "rule 1: missing field 'fault'"),
])
def test_invalid_plans_are_rejected_naming_rule_and_field(data, words):
    with pytest.raises(PlanError, match=words):
        FaultPlan.from_json(json.dumps(data))


def test_invalid_json_plan_is_rejected():
    with pytest.raises(PlanError, match="not valid JSON"):
        FaultPlan.from_json("[{")
    with pytest.raises(PlanError, match="JSON list of rules"):
        FaultPlan.from_json('{"fault": "eagain"}')


# -- each fault through the asyncore API ----------------------------------------

def test_dispatcher_with_send_finishes_under_one_byte_partial_sends():
    data = _payload(16 * 1024)
    with FakeNetwork(seed=1, faults=[Rule("partial_send", max_bytes=1)]) as net:
        m, log = {}, []
        lst = Listener(("127.0.0.1", 80), m, log)
        client = Sender(("127.0.0.1", 80), data, m, log)
        net.run(until=lambda: lst.conns and bytes(lst.conns[0].data) == data, map=m, timeout=60)
        assert not client.out_buffer
        # every byte went out one at a time: each send was cut but the last (1 byte)
        assert net.faults.fired[0] == len(data) - 1
        simnet.close_all(m)


def test_dispatcher_with_send_finishes_a_mebibyte_under_random_partial_sends():
    data = _payload(1 << 20)
    with FakeNetwork(seed=2, faults=[Rule("partial_send")]) as net:
        m, log = {}, []
        lst = Listener(("127.0.0.1", 80), m, log)
        Sender(("127.0.0.1", 80), data, m, log)
        net.run(until=lambda: lst.conns and len(lst.conns[0].data) == len(data), map=m, timeout=600)
        assert bytes(lst.conns[0].data) == data
        assert net.faults.fired[0] > 16
        simnet.close_all(m)


class LineCollector(simnet.async_chat):
    def __init__(self, sock, map, log):
        super().__init__(sock, map=map)
        self.set_terminator(b"\r\n")
        self.lines = []
        self.buf = []
        self.log = log

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        self.lines.append(b"".join(self.buf))
        self.buf = []


def test_async_chat_reassembles_terminators_split_by_one_byte_reads():
    with FakeNetwork(seed=3, faults=[Rule("short_read", max_bytes=1, where={"side": "server"})]) as net:
        m, log = {}, []
        lst = Listener(("127.0.0.1", 25), m, log, handler=LineCollector)
        Sender(("127.0.0.1", 25), b"HELO a\r\nMAIL FROM:<x>\r\nQUIT\r\n", m, log)
        net.run(until=lambda: lst.conns and len(lst.conns[0].lines) == 3, map=m, timeout=60)
        assert lst.conns[0].lines == [b"HELO a", b"MAIL FROM:<x>", b"QUIT"]
        # one byte per read: 29 bytes arrive together, each read is cut but the last
        assert net.faults.fired[0] == 28
        simnet.close_all(m)


def test_rst_disconnect_calls_handle_close_exactly_once_on_each_side():
    plan = [Rule("disconnect", mode="rst", after_bytes=1000, where={"side": "client"})]
    with FakeNetwork(seed=4, faults=plan) as net:
        m, log = {}, []
        lst = Listener(("127.0.0.1", 80), m, log)
        client = Sender(("127.0.0.1", 80), _payload(5000), m, log)
        net.run(until=lambda: not m or (client.closes and lst.conns and lst.conns[0].closes),
                map=m, timeout=10)
        net.run(until=lambda: False if m.keys() - {lst._fileno} else True, map=m, timeout=10)
        assert client.closes == 1 and lst.conns[0].closes == 1
        assert len(lst.conns[0].data) <= 1000
        simnet.close_all(m)


def test_fin_disconnect_at_a_time_closes_the_connection():
    plan = [Rule("disconnect", mode="fin", at=5.0, side="server")]
    with FakeNetwork(seed=5, faults=plan) as net:
        m, log = {}, []
        Listener(("127.0.0.1", 80), m, log)
        client = Sender(("127.0.0.1", 80), b"hi", m, log)
        net.run(until=lambda: client.closes == 1, map=m, timeout=60)
        assert net.time() == pytest.approx(5.0)
        simnet.close_all(m)


def test_accept_returns_none_on_spurious_eagain_then_accepts():
    plan = [Rule("eagain", op="accept", where={"call": 1})]
    with FakeNetwork(seed=6, faults=plan) as net:
        m, log = {}, []
        lst = Listener(("127.0.0.1", 80), m, log)
        Sender(("127.0.0.1", 80), b"x", m, log)
        net.run(until=lambda: bool(lst.conns), map=m, timeout=10)
        assert lst.accept_nones == 1 and len(lst.conns) == 1
        simnet.close_all(m)


def test_spurious_eagain_on_send_is_survived_by_dispatcher_with_send():
    data = _payload(3000)
    with FakeNetwork(seed=7, faults=[Rule("eagain", op="send", where={"limit": 3})]) as net:
        m, log = {}, []
        lst = Listener(("127.0.0.1", 80), m, log)
        Sender(("127.0.0.1", 80), data, m, log)
        net.run(until=lambda: lst.conns and bytes(lst.conns[0].data) == data, map=m, timeout=60)
        simnet.close_all(m)
    assert net.faults.fired == [3]


def test_spurious_eagain_on_recv_is_survived_by_async_chat():
    plan = [Rule("eagain", op="recv", where={"side": "server", "limit": 3})]
    with FakeNetwork(seed=7, faults=plan) as net:
        m, log = {}, []
        lst = Listener(("127.0.0.1", 25), m, log, handler=LineCollector)
        Sender(("127.0.0.1", 25), b"one\r\ntwo\r\n", m, log)
        net.run(until=lambda: lst.conns and lst.conns[0].lines == [b"one", b"two"], map=m, timeout=60)
        simnet.close_all(m)
    assert net.faults.fired == [3]


def test_spurious_eagain_on_recv_reaches_handle_error_in_a_plain_dispatcher():
    """The hazard asyncore users meet on real networks: dispatcher.recv does
    not catch EAGAIN, so a plain dispatcher's handle_read fails and the
    channel is closed through handle_error -- exactly as in CPython."""
    plan = [Rule("eagain", op="recv", where={"side": "server", "limit": 1})]
    with FakeNetwork(seed=7, faults=plan) as net:
        m, log = {}, []
        lst = Listener(("127.0.0.1", 80), m, log)
        Sender(("127.0.0.1", 80), b"data", m, log)
        errors = []
        net.run(until=lambda: bool(lst.conns), map=m, timeout=10)
        lst.conns[0].handle_error = lambda: (errors.append(simnet.compact_traceback()[1]),
                                             lst.conns[0].handle_close())
        net.run(until=lambda: bool(errors), map=m, timeout=10)
        assert errors == [BlockingIOError] and lst.conns[0].closes == 1
        simnet.close_all(m)


@pytest.mark.parametrize("fault, code, at", [
    ("refuse", errno.ECONNREFUSED, 0.0),
    ("unreachable", errno.EHOSTUNREACH, 0.0),
    ("connect_timeout", errno.ETIMEDOUT, 127.0),
])
def test_connect_faults_reach_handle_error_with_the_errno(fault, code, at):
    with FakeNetwork(seed=8, faults=[Rule(fault)]) as net:
        m, log = {}, []
        Listener(("127.0.0.1", 80), m, log)
        client = Sender(("127.0.0.1", 80), b"x", m, log)
        net.run(until=lambda: client.closes == 1, map=m, timeout=300)
        assert client.errors and f"[Errno {code}]" in str(client.errors[0])
        assert net.time() == pytest.approx(at)
        simnet.close_all(m)


def test_spurious_eagain_on_connect_still_connects():
    with FakeNetwork(seed=9, faults=[Rule("eagain", op="connect")]) as net:
        m, log = {}, []
        lst = Listener(("127.0.0.1", 80), m, log)
        Sender(("127.0.0.1", 80), b"x", m, log)
        net.run(until=lambda: lst.conns and lst.conns[0].data == b"x", map=m, timeout=10)
        assert net.faults.fired == [1]
        simnet.close_all(m)


def test_backlog_overflow_drops_the_syn_and_the_client_retries():
    with FakeNetwork(seed=10, faults=[Rule("backlog_overflow", where={"limit": 2})]) as net:
        m, log = {}, []
        lst = Listener(("127.0.0.1", 80), m, log)
        Sender(("127.0.0.1", 80), b"x", m, log)
        net.run(until=lambda: bool(lst.conns), map=m, timeout=10)
        assert net.time() == pytest.approx(3.0)  # SYN retries at 1 s and 2 s later
        simnet.close_all(m)


@pytest.mark.parametrize("poller", ["select", "poll"])
def test_eintr_wakes_the_wait_early_without_raising_pep_475(poller):
    # a signal whose handler returns: no InterruptedError reaches the program;
    # the wait wakes at the next event on the network, with nothing ready
    with FakeNetwork(seed=11, faults=[Rule("eintr", where={"limit": 1})]) as net:
        m, log = {}, []
        Listener(("127.0.0.1", 80), m, log)
        net.schedule(0.25, lambda: None)  # something happens at t=0.25 that readies nothing
        simnet.loop(timeout=1, map=m, count=1, use_poll=poller == "poll")
        assert net.time() == pytest.approx(0.25) and net.faults.fired == [1]
        simnet.loop(timeout=1, map=m, count=1, use_poll=poller == "poll")  # limit spent: full wait
        assert net.time() == pytest.approx(1.25) and net.faults.fired == [1]
        simnet.close_all(m)


@pytest.mark.parametrize("poller", ["select", "poll"])
def test_eintr_on_every_wait_never_raises_and_the_echo_completes(poller):
    # an unbounded eintr rule: every wait that would block is woken early,
    # yet net.run() raises nothing and time still moves (latency events)
    with FakeNetwork(seed=11, latency=0.01, faults=[Rule("eintr")]) as net:
        m = {}
        server = EchoServer(("127.0.0.1", 7000), map=m)
        client = EchoClient(server.address, [b"hello\n", b"world\n"], map=m)
        for k in range(4):  # events between the packets that ready nothing
            net.schedule(0.005 + 0.01 * k, lambda: None)
        net.run(until=lambda: client.received == client.expected, map=m, timeout=10, poller=poller)
        assert net.faults.fired == [4]  # each woke a wait early, with nothing ready
        assert net.time() == pytest.approx(0.04)  # connect + echo round trips, unchanged
        simnet.close_all(m)


def test_eintr_window_bounds_the_early_wake_up_itself():
    # picked at the wait's start (t=0) but the next event is at t=2: outside
    # the window [0, 1], so the wait is not woken early
    with FakeNetwork(seed=11, faults=[Rule("eintr", where={"window": [0, 1]})]) as net:
        m, log = {}, []
        Listener(("127.0.0.1", 80), m, log)
        net.schedule(2.0, lambda: None)
        simnet.loop(timeout=5, map=m, count=1)
        assert net.time() == pytest.approx(5.0) and net.faults.fired == [0]
        simnet.close_all(m)


@pytest.mark.parametrize("poller", ["select", "poll"])
def test_eintr_with_a_raising_handler_raises_its_exception(poller):
    plan = [Rule("eintr", exception="KeyboardInterrupt", where={"limit": 1})]
    with FakeNetwork(seed=11, faults=plan) as net:
        m, log = {}, []
        Listener(("127.0.0.1", 80), m, log)
        with pytest.raises(KeyboardInterrupt):
            simnet.loop(timeout=1, map=m, count=1, use_poll=poller == "poll")
        simnet.loop(timeout=1, map=m, count=1, use_poll=poller == "poll")
        assert net.time() == pytest.approx(1.0) and net.faults.fired == [1]
        simnet.close_all(m)


def test_latency_and_jitter_rule_delay_the_echo():
    plan = [Rule("latency", latency=0.1, jitter=0.05)]
    with FakeNetwork(seed=12, faults=plan) as net:
        m = {}
        EchoServer(("127.0.0.1", 7000), map=m)
        client = EchoClient(("127.0.0.1", 7000), [b"a" * 10, b"b" * 10], map=m)
        took = net.run(until=lambda: client.received == client.expected, map=m, timeout=10)
        assert 0.4 <= took <= 0.6 and client.received == b"a" * 10 + b"b" * 10
        simnet.close_all(m)


def test_partition_holds_segments_until_it_heals():
    plan = [Rule("partition", a="local", b="mail.example", start=0.0, end=30.0)]
    with FakeNetwork(seed=13, faults=plan) as net:
        net.add_host("mail.example", "10.0.0.25")
        m = {}
        EchoServer(("10.0.0.25", 7), map=m)
        client = EchoClient(("10.0.0.25", 7), [b"ping"], map=m)
        took = net.run(until=lambda: client.received == b"ping", map=m, timeout=120)
        assert took >= 30.0  # the SYN got through only after the heal
        simnet.close_all(m)


def test_unhealed_partition_ends_in_connect_timeout():
    plan = [Rule("partition", a="local", b="mail.example")]
    with FakeNetwork(seed=14, faults=plan) as net:
        net.add_host("mail.example", "10.0.0.25")
        s = net.socket()
        with pytest.raises(TimeoutError):
            s.connect(("10.0.0.25", 25))
        assert net.time() == pytest.approx(127.0)
        s.close()


@pytest.mark.parametrize("fault, expect", [("udp_loss", 0), ("udp_duplicate", 2)])
def test_udp_loss_and_duplication(fault, expect):
    with FakeNetwork(seed=15, faults=[Rule(fault)]) as net:
        a = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b.bind(("127.0.0.1", 53))
        b.setblocking(False)
        a.sendto(b"q", ("127.0.0.1", 53))
        net.sleep(1)
        got = 0
        while True:
            try:
                b.recv(10)
                got += 1
            except BlockingIOError:
                break
        assert got == expect
        a.close()
        b.close()


def test_udp_reorder_delays_some_datagrams():
    with FakeNetwork(seed=16, faults=[Rule("udp_reorder", delay=0.5)]) as net:
        a = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b.bind(("127.0.0.1", 53))
        for i in range(20):
            a.sendto(bytes([i]), ("127.0.0.1", 53))
        net.sleep(1)
        b.setblocking(False)
        order = [b.recv(1)[0] for _ in range(20)]
        assert sorted(order) == list(range(20)) and order != list(range(20))
        a.close()
        b.close()


def test_rules_added_while_running_take_effect():
    with FakeNetwork(seed=17) as net:
        net.faults.add("short_read", max_bytes=2)
        a, b = _pair(net)
        a.send(b"abcdef")
        assert b.recv(100) == b"ab"
        a.close()
        b.close()


def _pair(net):
    listener = net.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    c = net.socket()
    c.connect(listener.getsockname())
    s, _ = listener.accept()
    listener.close()
    return c, s


def test_same_seed_same_faults_fire():
    def run(seed):
        plan = [Rule("partial_send"), Rule("eagain", op="send", where={"probability": 0.3})]
        with FakeNetwork(seed=seed, faults=plan) as net:
            m, log = {}, []
            lst = Listener(("127.0.0.1", 80), m, log)
            Sender(("127.0.0.1", 80), _payload(20000), m, log)
            net.run(until=lambda: lst.conns and len(lst.conns[0].data) == 20000, map=m, timeout=60)
            simnet.close_all(m)
            return list(net.faults.fired), net.time()
    assert run(5) == run(5)
    assert run(5) != run(6)


# -- traces and replay -------------------------------------------------------

BUGGY = {"on": False}


def echo_scenario(net):
    """A scenario for record/replay: echo two lines under 3-byte short reads."""
    m = {}
    EchoServer(("127.0.0.1", 7000), map=m)
    lines = [b"hello\n", b"simnet\n"] if not BUGGY["on"] else [b"hello\n", b"SIMNET\n"]
    client = EchoClient(("127.0.0.1", 7000), lines, map=m)
    net.run(until=lambda: client.received == client.expected, map=m, timeout=30)
    simnet.close_all(m)


def test_recorded_trace_replays_identically(tmp_path):
    path = tmp_path / "echo.jsonl"
    trace = simnet.record(echo_scenario, path, seed=21, faults=[Rule("short_read", max_bytes=3)])
    assert trace.header["scenario"] == f"{__name__}:echo_scenario"
    kinds = {e[1] for e in trace.events}
    assert {"socket", "connect", "accept", "send", "recv", "ready", "fault", "close"} <= kinds
    loaded = Trace.load(path)
    assert loaded.header["seed"] == 21 and len(loaded) == len(trace)
    result = simnet.replay(path)
    assert result.events == len(trace)


def test_strict_replay_catches_a_changed_handler_at_the_right_event(tmp_path):
    path = tmp_path / "echo.jsonl"
    trace = simnet.record(echo_scenario, path, seed=21)
    # the first event that will differ: the client's send of the second line
    expected = trace.normalised()
    BUGGY["on"] = True
    try:
        with pytest.raises(simnet.ReplayDivergence) as info:
            simnet.replay(path)
    finally:
        BUGGY["on"] = False
    div = info.value
    assert div.expected == expected[div.index]
    assert div.expected[1] == "send" and div.actual[1] == "send"
    assert div.expected[:5] == div.actual[:5] and div.expected[5] != div.actual[5]  # same size, other bytes
    assert "replay diverged at event" in str(div) and len(div.context) == 3


@pytest.mark.parametrize("mangle, words", [
    (lambda lines: lines[:-1], "truncated trace"),
    (lambda lines: lines[:3] + ["[0.0, oops"] + lines[4:], ":4: corrupt event"),
    (lambda lines: ['{"hello": 1}'] + lines[1:], ":1: not a simnet trace"),
    (lambda lines: lines[:-1] + ['{"end": 2}'], "the end marker says 2 events"),
])
def test_truncated_or_corrupt_trace_is_an_error_with_a_line_number(tmp_path, mangle, words):
    path = tmp_path / "t.jsonl"
    simnet.record(echo_scenario, path, seed=1)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(mangle(lines)) + "\n")
    with pytest.raises(TraceError, match=words):
        simnet.replay(path)


def test_missing_trace_file_is_a_clear_error(tmp_path):
    with pytest.raises(TraceError, match="no such trace file"):
        simnet.replay(tmp_path / "nope.jsonl")


def test_record_refuses_a_local_scenario():
    def local(net):
        pass

    with pytest.raises(ValueError, match="module level"):
        simnet.record(local)


def test_trace_keeps_payloads_until_digested_and_digests_to_crc32():
    import zlib

    t = Trace({"seed": 1})
    t.record(0.0, "send", 5, 3, 3, b"abc")
    t.digest_flat()  # what a long traced run does to bound memory
    t.record(0.5, "recv", 6, 10, 3, b"xyz")
    events = t.events
    assert events[0] == (0.0, "send", 5, 3, 3, zlib.crc32(b"abc"))
    assert events[1][-1] == b"xyz"  # not yet digested: a reference, no copy
    assert t.normalised()[1] == [0.5, "recv", 6, 10, 3, zlib.crc32(b"xyz")]


def failing_scenario(net):
    """Fails when a send is cut short (planted: it does not handle partial sends)."""
    a, b = _pair(net)
    n = a.send(b"x" * 100)
    assert n == 100, f"sent only {n} of 100 bytes"


def test_a_failing_run_is_recorded_and_its_replay_reproduces_the_failure(tmp_path):
    path = tmp_path / "fail.jsonl"
    with pytest.raises(AssertionError, match="sent only 7 of 100"):
        simnet.record(failing_scenario, path, seed=3, faults=[Rule("partial_send", max_bytes=7)])
    assert Trace.load(path).header["outcome"] == "AssertionError: sent only 7 of 100 bytes"
    result = simnet.replay(path)
    assert result.failure == "AssertionError: sent only 7 of 100 bytes"
