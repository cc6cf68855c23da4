"""Fault plans and traces on kernel sockets (simnet.real.faulty), through the
asyncore API on loopback; a real run's I/O pattern replayed on the fake
network; and plan_from_trace on hand-made traces.

(This file absorbed tests/test_real_network_faults.py: its tests are the
``*_variant`` ones and the few below that had no counterpart here.)

Every loop is bounded (a number of single passes, each waiting at most a
short timeout), nothing sleeps, and the ``chan`` fixture closes every channel
and fails a test that leaves a file descriptor open.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time

import pytest

import simnet
from simnet.fakesock import FakeNetwork
from simnet.faults import FaultPlan, PlanError, Rule
from simnet.real import EpollPoller, FaultySocket, RealNetwork, plan_from_trace
from simnet.traces.trace import Trace

LOOPBACK = ("127.0.0.1", 0)


def payload(n: int) -> bytes:
    """n bytes that are not all alike (so reordering would show)."""
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


def open_fds() -> set[int]:
    return set(int(name) for name in os.listdir("/proc/self/fd"))


@pytest.fixture
def chan():
    """A channel map; at teardown every channel is closed and no descriptor
    may be left open."""
    before = open_fds()
    m: dict = {}
    yield m
    simnet.close_all(m, ignore_all=True)
    # the listdir of /proc/self/fd itself opens one transiently
    leaked = {fd for fd in open_fds() - before if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not leaked, f"descriptors left open: {sorted(leaked)}"


def run(m, cond, what, passes=4000, timeout=0.05, poller=None, seconds=15.0):
    """Single loop passes until cond() holds; fails after *passes* passes or
    *seconds* of wall time, whichever comes first."""
    deadline = time.monotonic() + seconds
    for _ in range(passes):
        if cond() or not m or time.monotonic() > deadline:
            break
        simnet.loop(timeout=timeout, map=m, count=1, poller=poller)
    assert cond(), f"gave up waiting for {what}"


# -- channels ---------------------------------------------------------------------

class Sink(simnet.dispatcher):
    """Accepted side: collects what arrives; counts handle_close."""

    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.data = bytearray()
        self.closes = 0

    def writable(self):
        return False

    def handle_read(self):
        self.data += self.recv(65536)

    def handle_close(self):
        self.closes += 1
        self.close()


class Lines(simnet.async_chat):
    """Accepted side: CRLF-terminated lines."""

    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.set_terminator(b"\r\n")
        self.buf = []
        self.lines = []
        self.closes = 0

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        self.lines.append(b"".join(self.buf))
        self.buf = []

    def handle_close(self):
        self.closes += 1
        self.close()


class Echo(simnet.dispatcher_with_send):
    """Accepted side: sends back what arrives (asyncore's recv() lets EAGAIN
    through: a robust channel retries on the next pass)."""

    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.closes = 0
        self.eagains = 0

    def handle_read(self):
        try:
            data = self.recv(65536)
        except BlockingIOError:
            self.eagains += 1
            return
        if data:
            self.send(data)

    def handle_close(self):
        self.closes += 1
        self.close()


class Listener(simnet.dispatcher):
    """Listens on an ephemeral loopback port; records accept() results."""

    def __init__(self, map, handler=Sink, family=socket.AF_INET):
        super().__init__(map=map)
        self.handler = handler
        self.conns = []
        self.accepts = []  # None or the accepted pair, per handle_accept
        self.passes = 0
        self.create_socket(family, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(("::1", 0) if family == socket.AF_INET6 else LOOPBACK)
        self.listen(5)

    @property
    def address(self):
        return self.socket.getsockname()

    def readable(self):
        self.passes += 1  # asked once per loop pass
        return True

    def handle_accept(self):
        pair = self.accept()
        self.accepts.append((self.passes, pair is not None))
        if pair is not None:
            self.conns.append(self.handler(pair[0], self._map))


class Sender(simnet.dispatcher_with_send):
    """Client: connects, sends *data* once connected, records its callbacks."""

    def __init__(self, address, data, map, family=socket.AF_INET):
        super().__init__(map=map)
        self.events = []
        self.errors = []
        self.received = bytearray()
        self.closes = 0
        self.data = data
        self.create_socket(family, socket.SOCK_STREAM)
        self.connect(address)

    def handle_connect(self):
        self.events.append("connect")
        if self.data:
            self.send(self.data)

    def handle_read(self):
        self.received += self.recv(65536)

    def handle_error(self):
        import sys

        self.errors.append(sys.exc_info()[1])
        self.events.append("error")
        self.handle_close()

    def handle_close(self):
        self.closes += 1
        self.events.append("close")
        self.close()


# -- the network as a value ---------------------------------------------------------

def test_without_faults_or_trace_sockets_are_plain_kernel_sockets():
    for net in (RealNetwork(), RealNetwork(faults=FaultPlan()), RealNetwork(faults=[])):
        with net:
            sock = net.socket()
            try:
                assert type(sock) is socket.socket
            finally:
                sock.close()
        assert net.trace is None


def test_a_faulty_socket_has_the_socket_api(chan):
    with RealNetwork(trace=True) as net:
        lst = net.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli = net.socket()
        opened = [lst, cli]
        try:
            assert isinstance(lst, FaultySocket)
            assert lst.family == socket.AF_INET and lst.type == socket.SOCK_STREAM
            assert lst.proto == 0 and lst.network is net
            lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            assert lst.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
            lst.bind(LOOPBACK)
            lst.listen(5)
            cli.settimeout(2.0)
            assert cli.gettimeout() == 2.0
            cli.connect(lst.getsockname())
            srv, addr = lst.accept()
            opened.append(srv)
            assert isinstance(srv, FaultySocket) and addr == cli.getsockname()
            assert srv.getpeername() == cli.getsockname()
            srv.settimeout(2.0)
            cli.sendall(b"hello world")
            buf = bytearray(5)
            assert srv.recv_into(buf) == 5 and buf == b"hello"
            assert srv.recvfrom(100) == (b" world", None)
            assert cli.sendto(b"x", srv.getsockname()) == 1
            assert srv.recv(0) == b""
            assert srv.recv(10) == b"x"
            assert srv.get_inheritable() is False  # forwarded to the kernel socket
            assert "FaultySocket" in repr(srv) and "conn=1 side=server" in repr(srv)
            assert srv.fileno() >= 0
            cli.shutdown(socket.SHUT_WR)
            assert srv.recv(10) == b""
            srv.close()
            assert srv.fileno() == -1
        finally:
            for sock in opened:
                sock.close()
    kinds = [e[1] for e in net.trace.events]
    assert kinds.count("socket") == 3 and kinds.count("close") == 3
    assert ["shutdown", "recv"] == kinds[kinds.index("shutdown"):kinds.index("shutdown") + 2]


# -- partial sends and short reads ---------------------------------------------------------

def test_dispatcher_with_send_finishes_under_one_byte_partial_sends(chan):
    # 16 KiB, not 1 MiB: one byte per loop pass, and dispatcher_with_send
    # copies its whole buffer after each send (quadratic), so 1 MiB would
    # take minutes. The mebibyte runs under random partial sends below.
    data = payload(16 * 1024)
    with RealNetwork(faults=[Rule("partial_send", max_bytes=1, where={"side": "client"})]) as net:
        lst = Listener(chan)
        Sender(lst.address, data, chan)
        run(chan, lambda: lst.conns and len(lst.conns[0].data) == len(data), "16 KiB",
            passes=len(data) * 3)
        assert bytes(lst.conns[0].data) == data
        assert net.faults.fired[0] == len(data) - 1  # every send cut but the last (1 byte)


def test_a_mebibyte_under_random_partial_sends(chan):
    data = payload(1 << 20)
    with RealNetwork(faults=[Rule("partial_send", where={"side": "client"})], seed=5) as net:
        lst = Listener(chan)
        Sender(lst.address, data, chan)
        run(chan, lambda: lst.conns and len(lst.conns[0].data) == len(data), "1 MiB")
        assert bytes(lst.conns[0].data) == data
        assert net.faults.fired[0] > 1


def test_dispatcher_with_send_finishes_under_one_byte_partial_sends_variant(chan):
    data = payload(8 * 1024)
    with RealNetwork(faults=[Rule("partial_send", max_bytes=1, where={"side": "client"})]) as net:
        lst = Listener(chan)
        Sender(lst.address, data, chan)
        run(chan, lambda: lst.conns and bytes(lst.conns[0].data) == data, "the data",
            passes=len(data) * 3)
        assert net.faults.fired[0] == len(data) - 1  # every send cut but the last (1 byte)


def test_a_mebibyte_under_random_partial_sends_variant(chan):
    data = payload(1 << 20)
    with RealNetwork(faults=[Rule("partial_send", where={"side": "client"})], seed=3):
        lst = Listener(chan)
        Sender(lst.address, data, chan)
        run(chan, lambda: lst.conns and len(lst.conns[0].data) == len(data), "1 MiB")
        assert bytes(lst.conns[0].data) == data


def test_async_chat_reassembles_terminators_split_by_one_byte_reads(chan):
    text = b"HELO a\r\nMAIL FROM:<x>\r\n\r\nQUIT\r\n"
    with RealNetwork(faults=[Rule("short_read", max_bytes=1, where={"side": "server"})]) as net:
        lst = Listener(chan, handler=Lines)
        Sender(lst.address, text, chan)
        run(chan, lambda: lst.conns and len(lst.conns[0].lines) == 4, "four lines")
        assert lst.conns[0].lines == [b"HELO a", b"MAIL FROM:<x>", b"", b"QUIT"]
        # one write delivers the text at once: every read is cut but the last (1 byte)
        assert net.faults.fired[0] == len(text) - 1


def test_async_chat_reassembles_terminators_split_by_one_byte_reads_variant(chan):
    with RealNetwork(faults=[Rule("short_read", max_bytes=1, where={"side": "server"})]) as net:
        lst = Listener(chan, handler=Lines)
        Sender(lst.address, b"HELO a\r\nMAIL FROM:<x>\r\nQUIT\r\n", chan)
        run(chan, lambda: lst.conns and len(lst.conns[0].lines) == 3, "three lines")
        assert lst.conns[0].lines == [b"HELO a", b"MAIL FROM:<x>", b"QUIT"]
        assert net.faults.fired[0] == 28  # 29 bytes at once: every read cut but the last


def test_short_reads_of_random_size_deliver_everything(chan):
    data = payload(50000)
    with RealNetwork(faults=[Rule("short_read", where={"side": "server"})], seed=2):
        lst = Listener(chan)
        Sender(lst.address, data, chan)
        run(chan, lambda: lst.conns and len(lst.conns[0].data) == len(data), "the data")
        assert bytes(lst.conns[0].data) == data


# -- disconnects -------------------------------------------------------------------------

def test_rst_calls_handle_close_exactly_once_on_each_side(chan):
    plan = [Rule("disconnect", mode="rst", after_bytes=1000, where={"side": "client"})]
    with RealNetwork(faults=plan, trace=True) as net:
        lst = Listener(chan)
        client = Sender(lst.address, payload(5000), chan)
        fd = client.socket.fileno()
        run(chan, lambda: client.closes and lst.conns and lst.conns[0].closes, "both closes")
        for _ in range(10):  # nothing more happens
            simnet.loop(timeout=0.01, map=chan, count=1)
        server = lst.conns[0]
        assert client.closes == 1 and server.closes == 1
        assert client.events == ["connect", "close"] and not client.errors
        assert bytes(server.data) == payload(1000)  # cut at exactly 1000 bytes
    events = net.trace.normalised()
    sfd = next(e[3] for e in events if e[1] == "accept")
    # the reset side reported the wrapper's ECONNRESET on the fd the loop knew...
    assert [fd, "ECONNRESET"] in [[e[2], e[4]] for e in events if e[1] == "send"]
    # ...and the peer's kernel really got the RST
    assert ["ECONNRESET"] == [e[4] for e in events if e[1] == "recv" and e[2] == sfd
                              and isinstance(e[4], str)]
    assert [e[3:] for e in events if e[1] == "fault"] == [[1, "data", 1]]


def test_rst_disconnect_calls_handle_close_exactly_once_on_each_side_variant(chan):
    plan = [Rule("disconnect", mode="rst", after_bytes=1000, where={"side": "client"})]
    with RealNetwork(faults=plan):
        lst = Listener(chan)
        client = Sender(lst.address, payload(5000), chan)
        run(chan, lambda: client.closes and lst.conns and lst.conns[0].closes, "both closes")
        for _ in range(20):
            simnet.loop(timeout=0.01, map=chan, count=1)
        assert client.closes == 1 and lst.conns[0].closes == 1
        assert len(lst.conns[0].data) == 1000  # cut at exactly 1000 bytes


def test_the_reset_wrapper_acts_as_a_reset_socket():
    with RealNetwork(faults=[Rule("disconnect", mode="rst", where={"side": "client"})]) as net:
        lst = net.socket()
        cli = net.socket()
        try:
            lst.bind(LOOPBACK)
            lst.listen(1)
            cli.connect(lst.getsockname())
            srv, _ = lst.accept()
            try:
                fd = cli.fileno()
                assert cli.send(b"abc") == 3  # the first data operation: RST after it
                assert cli.fileno() == fd and cli.family == socket.AF_INET
                with pytest.raises(ConnectionResetError):
                    cli.recv(10)
                assert cli.recv(10) == b""
                with pytest.raises(BrokenPipeError):
                    cli.send(b"x")
                with pytest.raises(OSError) as info:
                    cli.getpeername()
                assert info.value.errno == errno.ENOTCONN
                assert srv.recv(10) == b"abc"
                with pytest.raises(ConnectionResetError):
                    srv.recv(10)
                assert cli.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            finally:
                srv.close()
        finally:
            cli.close()
            lst.close()


def test_a_reset_socket_still_delivers_what_had_arrived():
    # the rule's side names the server: the server's socket is aborted, with
    # five unread bytes, which it still reads before ECONNRESET
    plan = [Rule("disconnect", mode="rst", side="server", after_bytes=5,
                 where={"side": "client"})]
    with RealNetwork(faults=plan) as net:
        lst, cli = net.socket(), net.socket()
        opened = [lst, cli]
        try:
            lst.bind(LOOPBACK)
            lst.listen(1)
            cli.connect(lst.getsockname())
            srv, _ = lst.accept()
            opened.append(srv)
            assert cli.send(b"0123456789") == 5  # cut to fit the rule
            buf = bytearray(10)
            assert srv.recv_into(buf) == 5 and buf[:5] == b"01234"
            with pytest.raises(ConnectionResetError):
                srv.recv_into(buf)
            assert srv.recv_into(buf) == 0
            with pytest.raises(ConnectionResetError):
                cli.recv(10)  # the kernel's: a real RST arrived
        finally:
            for sock in opened:
                sock.close()


@pytest.mark.parametrize("poller", ["poll", "epoll"])
def test_rst_under_poll_and_epoll_closes_both_sides(chan, poller):
    # poll-style pollers report the reset socket's hang-up too, which (as in
    # the stdlib) may call handle_close again after the read did
    plan = [Rule("disconnect", mode="rst", after_bytes=300, where={"side": "client"})]
    with RealNetwork(faults=plan):
        lst = Listener(chan)
        client = Sender(lst.address, payload(2000), chan)
        if poller == "epoll":
            # one poller for every pass: its kernel registrations outlive the
            # swap of the descriptor, and it must register the fd again
            with EpollPoller(chan) as ep:
                for _ in range(200):
                    if client.closes and lst.conns and lst.conns[0].closes:
                        break
                    ep.poll(0.05)
        else:
            run(chan, lambda: client.closes and lst.conns and lst.conns[0].closes, "closes",
                poller=poller)
        assert client.closes >= 1 and lst.conns[0].closes >= 1
        assert len(lst.conns[0].data) == 300
        assert list(chan) == [lst._fileno]


def test_rst_on_the_server_side_by_the_rule_side_parameter(chan):
    plan = [Rule("disconnect", mode="rst", side="server", after_bytes=10,
                 where={"side": "client"})]
    with RealNetwork(faults=plan):
        lst = Listener(chan)
        client = Sender(lst.address, payload(100), chan)
        run(chan, lambda: client.closes and lst.conns and lst.conns[0].closes, "both closes")
        assert client.closes == 1 and lst.conns[0].closes == 1
        assert len(lst.conns[0].data) == 10


def test_fin_disconnect_ends_the_stream_at_the_peer(chan):
    plan = [Rule("disconnect", mode="fin", after_bytes=700, where={"side": "client"})]
    with RealNetwork(faults=plan):
        lst = Listener(chan)
        client = Sender(lst.address, payload(3000), chan)
        run(chan, lambda: lst.conns and lst.conns[0].closes, "the server's close")
        assert bytes(lst.conns[0].data) == payload(700)
        run(chan, lambda: client.closes, "the client's close")
        assert client.closes == 1 and lst.conns[0].closes == 1


def test_disconnect_at_a_time_wakes_the_loop(chan):
    plan = [Rule("disconnect", mode="rst", at=0.2, where={"side": "server"})]
    with RealNetwork(faults=plan) as net:
        lst = Listener(chan)
        client = Sender(lst.address, b"", chan)
        run(chan, lambda: lst.conns, "the accept")
        started = time.monotonic()
        # one long wait: the timed disconnect bounds it
        run(chan, lambda: client.closes and lst.conns[0].closes, "both closes", timeout=10)
        assert time.monotonic() - started < 5
        assert net.elapsed() >= 0.2
        assert client.closes == 1 and lst.conns[0].closes == 1
        assert net.faults.fired == [1]


# -- accept, connect, wait ----------------------------------------------------------------

def test_accept_returns_none_on_a_spurious_eagain_then_accepts_next_pass(chan):
    with RealNetwork(faults=[Rule("eagain", op="accept", where={"call": 1})], trace=True) as net:
        lst = Listener(chan)
        Sender(lst.address, b"x", chan)
        run(chan, lambda: lst.conns, "the accept")
        (p1, ok1), (p2, ok2) = lst.accepts
        assert (ok1, ok2) == (False, True) and p2 == p1 + 1
    accepts = [e for e in net.trace.events if e[1] == "accept"]
    assert accepts[0][3] == "EAGAIN" and isinstance(accepts[1][3], int)


def test_accept_returns_none_on_a_spurious_eagain_variant(chan):
    with RealNetwork(faults=[Rule("eagain", op="accept", where={"call": 1})]):
        lst = Listener(chan)
        Sender(lst.address, b"x", chan)
        run(chan, lambda: bool(lst.conns), "the accept")
        assert [ok for _, ok in lst.accepts].count(False) == 1


def test_refuse_gives_the_callbacks_of_a_real_refused_connect(chan):
    # the reference: a real refused connect (a port bound by nobody listening)
    dead = socket.socket()
    dead.bind(LOOPBACK)
    try:
        plain = Sender(dead.getsockname(), b"", chan)
        run(chan, lambda: plain.closes, "the plain refusal")
    finally:
        dead.close()
    with RealNetwork(faults=[Rule("refuse")]) as net:
        lst = Listener(chan)
        client = Sender(lst.address, b"", chan)
        run(chan, lambda: client.closes, "the refusal")
        for _ in range(5):
            simnet.loop(timeout=0.01, map=chan, count=1)
        assert client.events == plain.events == ["error", "close"]
        assert isinstance(client.errors[0], ConnectionRefusedError)
        assert client.errors[0].errno == errno.ECONNREFUSED == plain.errors[0].errno
        assert str(client.errors[0]) == str(plain.errors[0])
        assert not lst.conns and net.faults.fired == [1]


def test_refuse_is_a_real_econnrefused_variant(chan):
    with RealNetwork(faults=[Rule("refuse")]):
        lst = Listener(chan)
        client = Sender(lst.address, b"x", chan)
        run(chan, lambda: client.closes == 1, "the refusal")
        assert f"[Errno {errno.ECONNREFUSED}]" in str(client.errors[0])
        assert not lst.conns


def test_refuse_with_a_blocking_connect_raises_connection_refused():
    with RealNetwork(faults=[Rule("refuse", where={"conn": 2})]) as net:
        lst = net.socket()
        a, b = net.socket(), net.socket()
        try:
            lst.bind(LOOPBACK)
            lst.listen(2)
            a.settimeout(2)
            b.settimeout(2)
            a.connect(lst.getsockname())  # conn 1: fine
            with pytest.raises(ConnectionRefusedError):
                b.connect(lst.getsockname())  # conn 2: refused
        finally:
            for s in (a, b, lst):
                s.close()


def test_spurious_eagain_on_connect_still_connects(chan):
    with RealNetwork(faults=[Rule("eagain", op="connect")], trace=True) as net:
        lst = Listener(chan)
        client = Sender(lst.address, b"hi", chan)
        run(chan, lambda: lst.conns and bytes(lst.conns[0].data) == b"hi", "the data")
        assert client.events == ["connect"]
    connects = [e for e in net.trace.events if e[1] == "connect"]
    assert connects[0][4] == errno.EAGAIN


@pytest.mark.parametrize("op", ["send", "recv"])
def test_spurious_eagain_on_data_calls(chan, op):
    side = "client" if op == "send" else "server"
    plan = [Rule("eagain", op=op, where={"side": side, "call": 1}),
            Rule("eagain", op=op, where={"side": side, "call": 3})]
    with RealNetwork(faults=plan) as net:
        lst = Listener(chan, handler=Echo)
        client = Sender(lst.address, b"ping", chan)
        run(chan, lambda: bytes(client.received) == b"ping", "the echo")
        assert net.faults.fired[0] == 1
        if op == "recv":
            assert lst.conns[0].eagains == 1  # asyncore's dispatcher.send() absorbs EAGAIN


def test_a_spurious_recv_eagain_reaches_handle_error_of_a_naive_channel(chan):
    # asyncore's dispatcher.recv() does not absorb EAGAIN (the stdlib's neither)
    with RealNetwork(faults=[Rule("eagain", op="recv", where={"side": "client"})]):
        lst = Listener(chan, handler=Echo)
        client = Sender(lst.address, b"ping", chan)
        run(chan, lambda: client.closes, "the client's close")
        assert client.events == ["connect", "error", "close"]
        assert isinstance(client.errors[0], BlockingIOError)


@pytest.mark.parametrize("poller", ["select", "poll", "epoll"])
def test_eintr_wakes_the_wait_early_and_never_raises_pep_475(chan, poller):
    # a signal whose handler returns: the wait returns at once, empty, with no
    # InterruptedError (Python >= 3.5 retries EINTR itself)
    with RealNetwork(faults=[Rule("eintr", where={"limit": 1})]) as net:
        lst = Listener(chan)
        start = time.monotonic()
        simnet.loop(timeout=30, map=chan, count=1, poller=poller)
        assert time.monotonic() - start < 15  # not the 30 s wait
        assert net.faults.fired == [1]
        simnet.loop(timeout=0.01, map=chan, count=1, poller=poller)  # the limit is spent
        Sender(lst.address, b"x", chan)
        run(chan, lambda: lst.conns and lst.conns[0].data == b"x", "the data", poller=poller)
        assert net.faults.fired == [1]


@pytest.mark.parametrize("poller", ["select", "poll", "epoll"])
def test_eintr_with_a_raising_handler_raises_its_exception_out_of_loop(chan, poller):
    with RealNetwork(faults=[Rule("eintr", exception="InterruptedError", where={"limit": 1})]) as net:
        lst = Listener(chan)
        with pytest.raises(InterruptedError):
            simnet.loop(timeout=0.01, map=chan, count=1, poller=poller)
        simnet.loop(timeout=0.01, map=chan, count=1, poller=poller)  # once only
        Sender(lst.address, b"x", chan)
        run(chan, lambda: lst.conns and lst.conns[0].data == b"x", "the data", poller=poller)
        assert net.faults.fired == [1]


def test_eintr_raises_only_what_the_plan_says_a_handler_raises(chan):
    # a handler raising a BaseException that is not an Exception
    with RealNetwork(faults=[Rule("eintr", exception="KeyboardInterrupt", where={"limit": 1})]) as net:
        Listener(chan)
        with pytest.raises(KeyboardInterrupt):
            simnet.loop(timeout=0.01, map=chan, count=1)
        simnet.loop(timeout=0.01, map=chan, count=1)
        assert net.faults.fired == [1]


# -- connection numbers -------------------------------------------------------------------

def test_connections_are_numbered_at_connect_and_paired_at_accept(chan):
    with RealNetwork(trace=True) as net:
        lst = Listener(chan)
        clients = [Sender(lst.address, b"", chan) for _ in range(3)]
        assert [c.socket._conn for c in clients] == [1, 2, 3]
        outsider = socket.create_connection(lst.address)  # not made by the network
        try:
            run(chan, lambda: len(lst.conns) == 4, "four accepts")
            by_peer = {s.socket.getpeername(): (s.socket._conn, s.socket._side)
                       for s in lst.conns}
            for c in clients:
                assert by_peer[c.socket.getsockname()] == (c.socket._conn, "server")
            assert by_peer[outsider.getsockname()] == (4, "server")
        finally:
            outsider.close()
    conns = [tuple(e[3:]) for e in net.trace.events if e[1] == "conn"]
    assert sorted(conns) == [(1, "client"), (1, "server"), (2, "client"), (2, "server"),
                             (3, "client"), (3, "server"), (4, "server")]


def test_rules_match_connection_side_and_call(chan):
    plan = [Rule("partial_send", max_bytes=2, where={"conn": 2, "side": "client", "call": 1})]
    with RealNetwork(faults=plan, trace=True) as net:
        lst = Listener(chan)
        a = Sender(lst.address, b"aaaa", chan)
        b = Sender(lst.address, b"bbbb", chan)
        run(chan, lambda: len(lst.conns) == 2 and all(len(c.data) == 4 for c in lst.conns),
            "both payloads")
    sends = {}
    for e in net.trace.events:
        if e[1] == "send" and e[3]:  # (dispatcher_with_send also sends b"")
            sends.setdefault(e[2], []).append((e[3], e[4]))
    assert sends[a.socket._fd] == [(4, 4)]
    assert sends[b.socket._fd] == [(4, 2), (2, 2)]
    assert net.faults.fired == [1]


def test_a_v6_connection_is_paired(chan):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with RealNetwork(trace=True):
        try:
            lst = Listener(chan, family=socket.AF_INET6)
        except OSError:
            pytest.skip("no ::1")
        client = Sender(lst.address[:2], b"v6", chan, family=socket.AF_INET6)
        run(chan, lambda: lst.conns and lst.conns[0].data == b"v6", "the data")
        assert lst.conns[0].socket._conn == client.socket._conn == 1


# -- plans that cannot apply -----------------------------------------------------------------

@pytest.mark.parametrize("rule", [
    Rule("latency", latency=0.1), Rule("partition", a="10.0.0.1", b="10.0.0.2"),
    Rule("udp_loss"), Rule("udp_duplicate"), Rule("udp_reorder"), Rule("connect_timeout"),
    Rule("unreachable"), Rule("backlog_overflow")])
def test_faults_kernel_sockets_cannot_show_are_refused(rule):
    with pytest.raises(PlanError) as info:
        RealNetwork(faults=[Rule("short_read"), rule])
    text = str(info.value)
    assert text.startswith(f"rule 2 ({rule.fault}): cannot be applied to kernel sockets")
    assert "simnet.fakesock.FakeNetwork" in text


@pytest.mark.parametrize("rule", [Rule("latency", latency=0.1), Rule("partition", a="a", b="b"),
                                  Rule("udp_loss"), Rule("connect_timeout")])
def test_faults_kernel_sockets_cannot_show_are_refused_variant(rule):
    # a plan of that one rule: the error names it as rule 1
    with pytest.raises(PlanError, match=r"rule 1 \(\w+\)"):
        RealNetwork(faults=[Rule("short_read"), rule][1:])


def test_a_rule_added_later_is_checked_too():
    net = RealNetwork(faults=[Rule("short_read")])
    with pytest.raises(PlanError, match=r"rule 2 \(latency\).*FakeNetwork"):
        net.faults.add("latency", latency=0.5)
    assert len(net.faults.plan) == 1
    net.faults.add("eintr")
    assert len(net.faults.plan) == 2


def test_json_plans_are_taken():
    net = RealNetwork(faults='[{"fault": "partial_send", "max_bytes": 3}]')
    assert net.faults.plan.rules == [Rule("partial_send", max_bytes=3)]
    with pytest.raises(PlanError, match="rule 1 \\(udp_loss\\)"):
        RealNetwork(faults='[{"fault": "udp_loss"}]')


# -- tracing -----------------------------------------------------------------------------------

ARITY = {"socket": 5, "bind": 4, "listen": 4, "connect": 5, "accept": 6, "send": 6, "recv": 6,
         "shutdown": 4, "close": 3, "ready": 5, "fault": 6, "conn": 5}


def check_well_formed(events):
    """Every event has its kind's fields; times never go back."""
    last = 0.0
    numbered = set()
    for ev in events:
        t, kind, fd = ev[0], ev[1], ev[2]
        assert isinstance(t, float) and t >= last, ev
        last = t
        assert kind in ARITY and len(ev) == ARITY[kind], ev
        assert isinstance(fd, int)
        if kind == "conn":
            assert ev[4] in ("client", "server") and ev[3] >= 1
            numbered.add(fd)
        if kind in ("send", "recv"):
            assert fd in numbered, f"{kind} before the socket got its connection number"
            assert isinstance(ev[3], int) and (isinstance(ev[4], int) or ev[4].startswith("E"))
        if kind == "ready":
            assert fd == -1 and isinstance(ev[3], list) and isinstance(ev[4], list)


@pytest.mark.parametrize("poller", ["select", "poll"])
def test_a_traced_echo_run_is_well_formed_and_round_trips(chan, tmp_path, poller):
    message = payload(3000)
    plan = [Rule("partial_send", max_bytes=700, where={"side": "server"})]
    with RealNetwork(faults=plan, trace=True, seed=9) as net:
        lst = Listener(chan, handler=Echo)
        client = Sender(lst.address, message, chan)
        run(chan, lambda: bytes(client.received) == message, "the echo", poller=poller)
        client.close()
        run(chan, lambda: lst.conns[0].closes, "the server's close", poller=poller)
    trace = net.trace
    assert trace.header["backend"] == "real" and trace.header["seed"] == 9
    assert trace.header["faults"] == FaultPlan(plan).to_list()
    assert trace.header["network"] == {}
    check_well_formed(trace.events)
    kinds = {e[1] for e in trace.events}
    assert {"socket", "bind", "listen", "conn", "connect", "accept", "send", "recv", "ready",
            "fault", "close"} <= kinds
    csock, ssock = client.socket._fd, lst.conns[0].socket._fd
    sent = sum(e[4] for e in trace.events if e[1] == "send" and e[2] == csock)
    echoed = sum(e[4] for e in trace.events if e[1] == "send" and e[2] == ssock)
    assert sent == echoed == len(message)
    assert all(e[4] <= 700 for e in trace.events if e[1] == "send" and e[2] == ssock)

    path = trace.write(tmp_path / "real.jsonl")
    loaded = Trace.load(path)
    assert loaded.header == trace.header
    assert loaded.events == trace.normalised()
    check_well_formed(loaded.events)
    assert plan_from_trace(loaded) == plan_from_trace(trace)


def test_a_given_trace_is_recorded_into():
    given = Trace({"scenario": "mine"})
    with RealNetwork(trace=given) as net:
        sock = net.socket()
        sock.close()
    assert net.trace is given
    assert given.header["scenario"] == "mine" and given.header["backend"] == "real"
    assert [e[1] for e in given.events] == ["socket", "close"]


def test_a_traced_real_run_is_well_formed_and_round_trips_variant(chan, tmp_path):
    # ...and strict replay refuses a trace recorded on kernel sockets
    with RealNetwork(trace=True) as net:
        lst = Listener(chan)
        Sender(lst.address, b"hello", chan)
        run(chan, lambda: lst.conns and bytes(lst.conns[0].data) == b"hello", "hello")
    path = net.trace.write(tmp_path / "real.jsonl")
    loaded = Trace.load(path)
    kinds = [e[1] for e in loaded.events]
    assert loaded.header["backend"] == "real"
    assert {"socket", "conn", "connect", "accept", "send", "recv"} <= set(kinds)
    with pytest.raises(simnet.TraceError, match="recorded on the real network"):
        simnet.replay(path)


def test_plan_from_a_real_recording_repeats_its_chunking(chan):
    plan = [Rule("partial_send", where={"side": "client"}),
            Rule("short_read", where={"side": "server"})]
    with RealNetwork(faults=plan, trace=True, seed=4) as net:
        lst = Listener(chan)
        Sender(lst.address, payload(20000), chan)
        run(chan, lambda: lst.conns and len(lst.conns[0].data) == 20000, "the data")
    derived = plan_from_trace(net.trace)
    short = [e for e in net.trace.events if e[1] in ("send", "recv")
             and isinstance(e[4], int) and 0 < e[4] < e[3]]
    eagain = [e for e in net.trace.events if e[1] in ("send", "recv") and e[4] == "EAGAIN"]
    assert len(derived) == len(short) + len(eagain) and len(short) > 2
    assert {r.fault for r in derived} >= {"partial_send", "short_read"}
    for rule in derived:
        assert set(rule.where) == {"conn", "side", "call"} and rule.where["conn"] == 1


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
    lst = Listener(m)
    Sender(lst.address, payload(20000), m)
    return lst


def test_a_real_recording_replays_on_the_fake_network_with_the_same_chunking(chan):
    real_plan = [Rule("partial_send", where={"side": "client"}), Rule("short_read", where={"side": "server"})]
    with RealNetwork(faults=real_plan, trace=True, seed=11) as real:
        lst = _exchange(chan)
        run(chan, lambda: lst.conns and len(lst.conns[0].data) == 20000, "20000 bytes")
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
    assert bytes(lst2.conns[0].data) == payload(20000)


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


# -- plan_from_trace on hand-made traces -------------------------------------------------------

def hand_trace(*events):
    return Trace({"backend": "real", "seed": 0, "faults": [], "network": {}}, list(events))


def test_plan_from_trace_partial_sends_short_reads_and_eagain():
    trace = hand_trace(
        [0.0, "socket", 5, 2, 1], [0.0, "conn", 5, 1, "client"],
        [0.0, "connect", 5, ["127.0.0.1", 80], 115],
        [0.0, "socket", 6, 2, 1], [0.0, "conn", 6, 1, "server"],
        [0.1, "send", 5, 100, 100, 0],         # client send 1: all taken
        [0.1, "send", 5, 100, 40, 0],          # client send 2: partial
        [0.1, "send", 5, 60, "EAGAIN", 0],     # client send 3: EAGAIN
        [0.1, "send", 5, 60, 60, 0],           # client send 4
        [0.2, "recv", 6, 8192, 100, 0],        # server recv 1: short
        [0.2, "recv", 6, 8192, "EAGAIN", 0],   # server recv 2
        [0.2, "recv", 6, 4, 4, 0],             # server recv 3: all asked
        [0.2, "recv", 6, 8192, 0, 0],          # server recv 4: end of stream
        [0.2, "recv", 6, 10, "ECONNRESET", 0],  # other errors: nothing
    )
    assert plan_from_trace(trace).rules == [
        Rule("partial_send", max_bytes=40, where={"conn": 1, "side": "client", "call": 2}),
        Rule("eagain", op="send", where={"conn": 1, "side": "client", "call": 3}),
        Rule("short_read", max_bytes=100, where={"conn": 1, "side": "server", "call": 1}),
        Rule("eagain", op="recv", where={"conn": 1, "side": "server", "call": 2}),
    ]


def test_plan_from_trace_counts_calls_per_socket_and_restarts_on_fd_reuse():
    trace = hand_trace(
        [0, "socket", 5, 2, 1], [0, "conn", 5, 1, "client"],
        [0, "send", 5, 10, 10, 0], [0, "send", 5, 10, 3, 0],
        [0, "socket", 7, 2, 1], [0, "conn", 7, 2, "client"],
        [0, "send", 7, 10, 4, 0],
        [0, "close", 5],
        [0, "socket", 5, 2, 1], [0, "conn", 5, 3, "client"],   # fd 5 again: a new socket
        [0, "send", 5, 10, 9, 0],
    )
    assert [(r.where["conn"], r.where["call"], r.max_bytes) for r in plan_from_trace(trace)] == [
        (1, 2, 3), (2, 1, 4), (3, 1, 9)]


def test_plan_from_trace_accept_and_connect_eagain():
    trace = hand_trace(
        [0, "socket", 3, 2, 1], [0, "bind", 3, ["127.0.0.1", 8025]], [0, "listen", 3, 5],
        [0, "socket", 9, 2, 1], [0, "bind", 9, ["127.0.0.1", 0]], [0, "listen", 9, 5],
        [0, "socket", 4, 2, 1], [0, "conn", 4, 1, "client"],
        [0, "connect", 4, ["127.0.0.1", 8025], 11],
        [0, "accept", 3, "EAGAIN", None, None],
        [0, "socket", 5, 2, 1], [0, "conn", 5, 1, "server"],
        [0, "accept", 3, 5, ["127.0.0.1", 40000], 1],
        [0, "accept", 9, "EAGAIN", None, None],
        [0, "accept", 9, "EAGAIN", None, None],
    )
    assert plan_from_trace(trace).rules == [
        Rule("eagain", op="connect", where={"conn": 1, "side": "client", "call": 1}),
        Rule("eagain", op="accept", where={"call": 1, "port": 8025}),
        Rule("eagain", op="accept", where={"call": 1}),
        Rule("eagain", op="accept", where={"call": 2}),
    ]


def test_plan_from_trace_ignores_sockets_without_a_connection_number():
    trace = hand_trace([0, "socket", 5, 2, 2], [0, "send", 5, 100, 10, 0],
                       [0, "recv", 5, 100, "EAGAIN", 0], [0, "ready", -1, [5], []])
    assert not plan_from_trace(trace)


def test_plan_from_trace_of_a_loaded_file(tmp_path):
    trace = hand_trace([0.0, "socket", 5, 2, 1], [0.0, "conn", 5, 2, "server"],
                       [0.5, "recv", 5, 4096, 1, b"x"])
    loaded = Trace.load(trace.write(tmp_path / "t.jsonl"))
    plan = plan_from_trace(loaded)
    assert plan.rules == [Rule("short_read", max_bytes=1,
                               where={"conn": 2, "side": "server", "call": 1})]
    assert FaultPlan.from_json(plan.to_json()) == plan


def test_sendall_in_timeout_mode_has_one_deadline_for_the_whole_call():
    """CPython's ``sendall`` gives the whole call the socket's timeout, not
    each send: a reader that drains a little at a time (so every single send
    completes well within the timeout) cannot stretch it. Under a partial
    send plan the faulty socket sends in many pieces; the call must still
    end at its deadline."""
    stop = threading.Event()
    with RealNetwork(faults=[Rule("partial_send", max_bytes=4096)]) as net:
        lst = net.socket()
        lst.bind(LOOPBACK)
        lst.listen(1)
        cli = net.socket()
        cli.connect(lst.getsockname())
        srv, _ = lst.accept()

        def drain() -> None:
            # a slow reader: 16 kB every 20 ms, until told to stop (bounded)
            for _ in range(5000):
                if stop.wait(0.02):
                    return
                try:
                    srv.recv(16384)
                except OSError:
                    return

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            cli.settimeout(0.5)
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                cli.sendall(b"x" * (64 << 20))  # 64 MB: minutes at the reader's pace
            assert time.monotonic() - start < 10.0
            assert cli.gettimeout() == 0.5  # the socket's timeout is left as it was
        finally:
            stop.set()
            reader.join(5)
            for s in (cli, srv, lst):
                s.close()
