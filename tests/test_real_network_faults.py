"""Fault plans on kernel sockets (loopback only), through the asyncore API,
and a real run's I/O pattern replayed on the fake network."""

from __future__ import annotations

import errno
import os

import pytest

import simnet
from simnet import Rule
from simnet.faults import PlanError
from simnet.fakesock import FakeNetwork
from simnet.real import RealNetwork, plan_from_trace
from simnet.trace import Trace
from test_faults import LineCollector, Listener, Sender, _payload


def run_until(cond, m, what, passes=20000):
    """Single loop passes until cond(); bounded."""
    for _ in range(passes):
        if cond():
            return
        if not m:
            break
        simnet.loop(timeout=0.05, map=m, count=1)
    assert cond(), f"gave up waiting for {what}"


@pytest.fixture
def chan():
    m = {}
    yield m
    simnet.close_all(m, ignore_all=True)


def test_dispatcher_with_send_finishes_under_one_byte_partial_sends(chan):
    data = _payload(8 * 1024)
    with RealNetwork(faults=[Rule("partial_send", max_bytes=1, where={"side": "client"})]) as net:
        lst = Listener(("127.0.0.1", 0), chan, [])
        Sender(lst.socket.getsockname(), data, chan, [])
        run_until(lambda: lst.conns and bytes(lst.conns[0].data) == data, chan, "the data")
        assert net.faults.fired[0] == len(data) - 1  # every send cut but the last (1 byte)


def test_a_mebibyte_under_random_partial_sends(chan):
    data = _payload(1 << 20)
    with RealNetwork(faults=[Rule("partial_send", where={"side": "client"})], seed=3):
        lst = Listener(("127.0.0.1", 0), chan, [])
        Sender(lst.socket.getsockname(), data, chan, [])
        run_until(lambda: lst.conns and len(lst.conns[0].data) == len(data), chan, "1 MiB")
        assert bytes(lst.conns[0].data) == data


def test_async_chat_reassembles_terminators_split_by_one_byte_reads(chan):
    with RealNetwork(faults=[Rule("short_read", max_bytes=1, where={"side": "server"})]) as net:
        lst = Listener(("127.0.0.1", 0), chan, [], handler=LineCollector)
        Sender(lst.socket.getsockname(), b"HELO a\r\nMAIL FROM:<x>\r\nQUIT\r\n", chan, [])
        run_until(lambda: lst.conns and len(lst.conns[0].lines) == 3, chan, "three lines")
        assert lst.conns[0].lines == [b"HELO a", b"MAIL FROM:<x>", b"QUIT"]
        assert net.faults.fired[0] == 28  # 29 bytes at once: every read cut but the last


def test_rst_disconnect_calls_handle_close_exactly_once_on_each_side(chan):
    plan = [Rule("disconnect", mode="rst", after_bytes=1000, where={"side": "client"})]
    with RealNetwork(faults=plan):
        lst = Listener(("127.0.0.1", 0), chan, [])
        client = Sender(lst.socket.getsockname(), _payload(5000), chan, [])
        run_until(lambda: client.closes and lst.conns and lst.conns[0].closes, chan, "both closes")
        for _ in range(20):
            simnet.loop(timeout=0.01, map=chan, count=1)
        assert client.closes == 1 and lst.conns[0].closes == 1
        assert len(lst.conns[0].data) == 1000  # cut at exactly 1000 bytes


def test_accept_returns_none_on_a_spurious_eagain(chan):
    with RealNetwork(faults=[Rule("eagain", op="accept", where={"call": 1})]):
        lst = Listener(("127.0.0.1", 0), chan, [])
        Sender(lst.socket.getsockname(), b"x", chan, [])
        run_until(lambda: bool(lst.conns), chan, "the accept")
        assert lst.accept_nones == 1


def test_refuse_is_a_real_econnrefused(chan):
    with RealNetwork(faults=[Rule("refuse")]):
        lst = Listener(("127.0.0.1", 0), chan, [])
        client = Sender(lst.socket.getsockname(), b"x", chan, [])
        run_until(lambda: client.closes == 1, chan, "the refusal")
        assert f"[Errno {errno.ECONNREFUSED}]" in str(client.errors[0])
        assert not lst.conns


def test_eintr_raises_only_what_the_plan_says_a_handler_raises(chan):
    with RealNetwork(faults=[Rule("eintr", exception="KeyboardInterrupt", where={"limit": 1})]) as net:
        Listener(("127.0.0.1", 0), chan, [])
        with pytest.raises(KeyboardInterrupt):
            simnet.loop(timeout=0.01, map=chan, count=1)
        simnet.loop(timeout=0.01, map=chan, count=1)
        assert net.faults.fired == [1]


@pytest.mark.parametrize("rule", [Rule("latency", latency=0.1), Rule("partition", a="a", b="b"),
                                  Rule("udp_loss"), Rule("connect_timeout")])
def test_faults_kernel_sockets_cannot_show_are_refused(rule):
    with pytest.raises(PlanError, match=r"rule 1 \(\w+\)"):
        RealNetwork(faults=[Rule("short_read"), rule][1:])


def test_a_traced_real_run_is_well_formed_and_round_trips(chan, tmp_path):
    with RealNetwork(trace=True) as net:
        lst = Listener(("127.0.0.1", 0), chan, [])
        Sender(lst.socket.getsockname(), b"hello", chan, [])
        run_until(lambda: lst.conns and bytes(lst.conns[0].data) == b"hello", chan, "hello")
    path = net.trace.write(tmp_path / "real.jsonl")
    loaded = Trace.load(path)
    kinds = [e[1] for e in loaded.events]
    assert loaded.header["backend"] == "real"
    assert {"socket", "conn", "connect", "accept", "send", "recv"} <= set(kinds)
    with pytest.raises(simnet.TraceError, match="recorded on the real network"):
        simnet.replay(path)


def _chunking(trace):
    """(conn, side, op, asked, got) of every send/recv, in order."""
    who, out = {}, []
    for ev in trace.normalised():
        if ev[1] == "conn":
            who[ev[2]] = (ev[3], ev[4])
        elif ev[1] in ("send", "recv") and ev[2] in who:
            out.append((*who[ev[2]], ev[1], ev[3], ev[4]))
    return out


def _exchange(m):
    lst = Listener(("127.0.0.1", 0), m, [])
    Sender(lst.socket.getsockname(), _payload(20000), m, [])
    return lst


def test_a_real_recording_replays_on_the_fake_network_with_the_same_chunking(chan):
    real_plan = [Rule("partial_send", where={"side": "client"}), Rule("short_read", where={"side": "server"})]
    with RealNetwork(faults=real_plan, trace=True, seed=11) as real:
        lst = _exchange(chan)
        run_until(lambda: lst.conns and len(lst.conns[0].data) == 20000, chan, "20000 bytes")
    simnet.close_all(chan)
    recorded = _chunking(real.trace)
    plan = plan_from_trace(real.trace)
    assert len(plan) >= 4 and all(r.where.get("call") for r in plan)

    with FakeNetwork(seed=0, faults=plan, trace=True) as fake:
        m = {}
        lst2 = _exchange(m)
        fake.run(until=lambda: lst2.conns and len(lst2.conns[0].data) == 20000, map=m, timeout=60)
        simnet.close_all(m)
    replayed = _chunking(fake.trace)
    # every send and recv of the real run, with the same sizes asked and got
    assert replayed[:len(recorded)] == recorded
    assert bytes(lst2.conns[0].data) == _payload(20000)


def test_makefile_reads_go_through_the_plan_and_keep_the_descriptor_after_close():
    """A file from makefile() reads through the wrapper (short_read acts on
    it, the trace has the recvs) and, as in CPython, close() keeps the
    descriptor until the file is closed too (what http.client does for a
    Connection: close response)."""
    with RealNetwork(faults=[Rule("short_read", max_bytes=3, where={"side": "client"})],
                     trace=True) as net:
        listener = net.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = net.socket()
        client.settimeout(10)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
        server.sendall(b"first line\r\n")
        reader = client.makefile("rb")
        assert reader.readline() == b"first line\r\n"
        fd = client.fileno()
        client.close()
        server.sendall(b"sent after close\r\n")
        assert reader.readline() == b"sent after close\r\n"
        reads = [e for e in net.trace.events if e[1] == "recv" and e[2] == fd]
        assert reads and all(e[4] <= 3 for e in reads), reads
        assert sum(e[4] for e in reads) == len(b"first line\r\nsent after close\r\n")
        reader.close()
        with pytest.raises(OSError) as gone:
            os.fstat(fd)  # the descriptor is closed now (not reused in between)
        assert gone.value.errno == errno.EBADF
        server.close()
        listener.close()
