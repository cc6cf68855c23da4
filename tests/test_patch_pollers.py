"""``net.patch()`` pollers: ``select.poll``, ``select.epoll``, ``selectors`` and ``socketpair``.

What is checked:

* the same sequence of poll/epoll calls (level- and edge-triggered, EPOLLONESHOT,
  maxevents, RDHUP/RDNORM, register/modify/unregister errors, a closed socket
  leaving the epoll set, POLLNVAL, closed epoll objects) gives the same answers
  on fake sockets inside the patch as on real ``socket.socketpair()`` sockets;
* a ``selectors`` echo server of our own (``DefaultSelector``) answers a blocking
  client's 1 MiB, on the fake network (single-threaded, the server driven by
  ``net.add_pump``; twice, same result and virtual time) and on real loopback
  (the server in a thread);
* a ``socketpair()`` waker in an asyncore map of fake sockets;
* the replacements are classes, selectors made inside the patch use them,
  and mixing real and fake descriptors in one poller is a clear ValueError.
"""

from __future__ import annotations

import hashlib
import math
import select
import selectors
import socket
import sys
import threading

import pytest

import simnet
from simnet.fakesock import Deadlock, FakeNetwork
from simnet.fakesock.pollers import REAL_EPOLL, REAL_POLL


def epoll_and_poll_calls():
    """Runs the same calls on whatever select/socket currently are; returns a log."""
    log = []
    def rec(label, fn):
        try:
            r = fn()
        except Exception as e:
            r = (type(e).__name__, getattr(e, "errno", None))
        log.append((label, r))
    a, b = socket.socketpair()
    a.setblocking(False); b.setblocking(False)
    names = {a.fileno(): "a", b.fileno(): "b"}
    ep = select.epoll()
    def p(t=0, n=-1):
        return sorted((names.get(fd, fd), ev) for fd, ev in ep.poll(t, n))
    rec("reg a ET", lambda: ep.register(a, select.EPOLLIN | select.EPOLLET))
    rec("empty", p)
    b.send(b"x")
    rec("after x", p); rec("again", p)
    b.send(b"y")
    rec("after y (new wakeup)", p)
    # edge-triggered writer: woken again when the peer reads (a Unix stream)
    rec("reg b OUT ET", lambda: ep.register(b, select.EPOLLOUT | select.EPOLLET))
    rec("b writable once", p)
    b.send(b"z")
    rec("b sent: no wakeup for a writer", p)
    a.send(b"q")
    rec("data for b: not an OUT wakeup", p)
    rec("b reads", lambda: b.recv(10))
    rec("a read nothing yet", p)
    rec("a reads", lambda: a.recv(1))
    rec("peer read: writer woken", p)
    rec("unregister b OUT ET", lambda: ep.unregister(b))
    rec("reg twice", lambda: ep.register(a))
    rec("modify unreg", lambda: ep.modify(b, select.EPOLLIN))
    rec("unregister unreg", lambda: ep.unregister(b))
    rec("reg b oneshot", lambda: ep.register(b, select.EPOLLOUT | select.EPOLLONESHOT))
    rec("oneshot 1", p); rec("oneshot 2", p)
    rec("rearm", lambda: ep.modify(b, select.EPOLLOUT)); rec("LT 1", p); rec("LT 2", p)
    rec("maxevents 1", lambda: len(ep.poll(0, 1)))
    rec("maxevents 0", lambda: ep.poll(0, 0))
    rec("recv", lambda: a.recv(10))
    rec("modify a LT IN|RDHUP", lambda: ep.modify(a, select.EPOLLIN | select.EPOLLRDHUP))
    rec("a drained", p)
    b.shutdown(socket.SHUT_WR)
    rec("peer shut wr", p)
    rec("recv eof", lambda: a.recv(10))
    rec("unregister b", lambda: ep.unregister(b))
    a.close()
    rec("a closed: dropped", p)
    rec("unregister closed a", lambda: ep.unregister(a))
    c, d = socket.socketpair()
    rec("reuse", lambda: (c.fileno() == names and 0) or ep.register(c, select.EPOLLOUT))
    names[c.fileno()] = "c"
    rec("c", p)
    rec("bad timeout", lambda: ep.poll("x"))
    rec("nan", lambda: ep.poll(float("nan")))
    rec("neg fd", lambda: ep.register(-1))
    rec("closed fileno", lambda: ep.fileno() > 0)
    ep.close()
    rec("closed", lambda: ep.closed)
    rec("poll closed", lambda: ep.poll(0))
    rec("close twice", lambda: ep.close())
    # poll
    po = select.poll()
    names2 = {c.fileno(): "c", d.fileno(): "d"}
    def q(t=0):
        return sorted((names2.get(fd, fd), ev) for fd, ev in po.poll(t))
    rec("p reg c", lambda: po.register(c, select.POLLIN))
    rec("p reg d", lambda: po.register(d))
    rec("p empty-ish", q)
    d.send(b"hello")
    rec("p data", q)
    rec("p unreg unknown", lambda: po.unregister(999))
    rec("p modify unknown", lambda: po.modify(999, 1))
    rec("p mask too big", lambda: po.register(c, 1 << 17))
    rec("p mask neg", lambda: po.register(c, -1))
    rec("p rdnorm", lambda: po.register(c, select.POLLRDNORM))
    rec("p rdnorm poll", q)
    c.recv(10)
    po.unregister(d)
    c.close()
    rec("p closed -> NVAL", q)
    d.close()
    rec("p both closed", q)
    rec("p bad timeout", lambda: po.poll("x"))
    b.close()
    return log


def test_poll_and_epoll_answer_as_on_linux():
    real = epoll_and_poll_calls()
    with FakeNetwork(seed=3) as net, net.patch():
        fake = epoll_and_poll_calls()
    assert fake == real


# -- a selectors echo server, as a user would write it ---------------------------------
class SelectorsEchoServer:
    """Echoes every byte; closes a connection after echoing everything once the
    client has shut down its sending side."""

    def __init__(self, address):
        self.sel = selectors.DefaultSelector()
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(address)
        self.lsock.listen()
        self.lsock.setblocking(False)
        self.address = self.lsock.getsockname()
        self.sel.register(self.lsock, selectors.EVENT_READ, self._accept)
        self.pending = {}
        self.eof = set()

    def step(self, timeout=0):
        for key, mask in self.sel.select(timeout):
            key.data(key.fileobj, mask)

    def _accept(self, lsock, mask):
        conn, _ = lsock.accept()
        conn.setblocking(False)
        self.pending[conn] = bytearray()
        self.sel.register(conn, selectors.EVENT_READ, self._serve)

    def _serve(self, conn, mask):
        out = self.pending[conn]
        if mask & selectors.EVENT_READ:
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                data = None
            if data == b"":
                self.eof.add(conn)
            elif data:
                out += data
        if out and mask & selectors.EVENT_WRITE:
            try:
                del out[:conn.send(out)]
            except BlockingIOError:
                pass
        if conn in self.eof and not out:
            self.sel.unregister(conn)
            del self.pending[conn]
            conn.close()
            return
        events = (0 if conn in self.eof else selectors.EVENT_READ) | (selectors.EVENT_WRITE if out else 0)
        self.sel.modify(conn, events, self._serve)

    def close(self):
        for conn in list(self.pending):
            conn.close()
        self.sel.close()
        self.lsock.close()


def echo_client(address, payload, timeout=30):
    with socket.create_connection(address, timeout=timeout) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return bytes(got)
            got += chunk


PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def _fake_selectors_echo(seed):
    with FakeNetwork(seed=seed) as net, net.patch():
        server = SelectorsEchoServer(("127.0.0.1", 9000))
        assert isinstance(server.sel, selectors.EpollSelector)
        net.add_pump(server.step)
        got = echo_client(server.address, PAYLOAD)
        net.remove_pump(server.step)
        server.close()
        return hashlib.sha256(got).hexdigest(), net.time()


def test_selectors_echo_server_with_a_blocking_client_on_the_fake_network():
    first = _fake_selectors_echo(5)
    assert first[0] == hashlib.sha256(PAYLOAD).hexdigest()
    assert _fake_selectors_echo(5) == first  # deterministic: same bytes, same virtual time


def test_selectors_echo_server_with_a_blocking_client_on_loopback():
    server = SelectorsEchoServer(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            server.step(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        got = echo_client(server.address, PAYLOAD, timeout=10)
    finally:
        stop.set()
        thread.join(5)
        server.close()
    assert got == PAYLOAD


def test_selectors_made_inside_the_patch_use_the_fake_pollers():
    with FakeNetwork(seed=1) as net, net.patch():
        a, b = socket.socketpair()
        for cls in (selectors.DefaultSelector, selectors.EpollSelector,
                    selectors.PollSelector, selectors.SelectSelector):
            with cls() as sel:
                sel.register(a, selectors.EVENT_READ, "a")
                assert sel.select(0) == []
                b.send(b"!")
                [(key, events)] = sel.select(1.0)
                assert (key.data, events) == ("a", selectors.EVENT_READ)
                assert a.recv(10) == b"!"
                assert sel.select(2.5) == []
        assert net.time() == pytest.approx(4 * 2.5, abs=0.01)  # the waits were virtual (idle passes may cost a little)
        a.close()
        b.close()
    assert select.epoll is REAL_EPOLL and select.poll is REAL_POLL  # restored
    assert selectors.EpollSelector._selector_cls is REAL_EPOLL


def test_the_replacements_are_classes_and_can_be_subclassed():
    with FakeNetwork(seed=1) as net, net.patch():
        assert isinstance(select.epoll, type) and isinstance(select.poll, type)

        class CountingEpoll(select.epoll):
            polls = 0

            def poll(self, timeout=None, maxevents=-1):
                CountingEpoll.polls += 1
                return super().poll(timeout, maxevents)

        a, b = socket.socketpair()
        with CountingEpoll() as ep:
            ep.register(a, select.EPOLLIN)
            b.send(b"x")
            assert ep.poll(0) == [(a.fileno(), select.EPOLLIN)]
            assert ep.poll(0) == [(a.fileno(), select.EPOLLIN)]  # level-triggered
        assert ep.closed
        assert CountingEpoll.polls == 2
        a.close()
        b.close()


def test_a_poller_given_real_and_fake_descriptors_says_it_cannot_wait_on_both():
    real_a, real_b = socket.socketpair()
    try:
        with FakeNetwork(seed=1) as net, net.patch():
            fake_a, fake_b = socket.socketpair()
            ep = select.epoll()
            ep.register(real_a, select.EPOLLOUT)
            assert ep.poll(0) == [(real_a.fileno(), select.EPOLLOUT)]  # real only: the kernel
            ep.register(fake_a, select.EPOLLOUT)
            with pytest.raises(ValueError, match="both real and fake"):
                ep.poll(0)
            po = select.poll()
            po.register(real_a)
            po.register(fake_a)
            with pytest.raises(ValueError, match="both real and fake"):
                po.poll(0)
            ep.close()
            fake_a.close()
            fake_b.close()
    finally:
        real_a.close()
        real_b.close()


def test_socketpair_is_fake_and_linux_like():
    with FakeNetwork(seed=1) as net, net.patch():
        a, b = socket.socketpair()
        assert a.family == socket.AF_UNIX and a.type == socket.SOCK_STREAM
        assert a.getsockname() == "" and a.getpeername() == ""
        b.sendall(b"ping")
        assert a.recv(4) == b"ping"
        with pytest.raises(OSError) as info:
            socket.socketpair(socket.AF_INET)
        assert info.value.errno == 95  # EOPNOTSUPP, as Linux says
        with pytest.raises(OSError, match="only stream and datagram pairs"):
            socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        c, d = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)  # simulated since
        with c, d:
            assert c.network is net and c.type == socket.SOCK_DGRAM
        a.close()
        b.close()


class Waker(simnet.dispatcher):
    """The read end of a socketpair: another part of the program wakes the loop."""

    def __init__(self, map):
        self.wsock, rsock = socket.socketpair()
        super().__init__(rsock, map=map)
        self.wakeups = 0

    def wake(self):
        self.wsock.send(b"\0")

    def writable(self):
        return False

    def handle_read(self):
        self.wakeups += len(self.recv(64))


def test_a_socketpair_waker_in_a_map_of_fake_sockets():
    m = {}
    with FakeNetwork(seed=2) as net, net.patch():
        server = simnet.dispatcher(map=m)
        server.create_socket()
        server.bind(("127.0.0.1", 8000))
        server.listen(5)
        waker = Waker(m)
        net.schedule(3.0, waker.wake)
        net.run(until=lambda: waker.wakeups == 1, map=m, timeout=10)
        assert net.time() == pytest.approx(3.0)
        waker.wsock.close()
        simnet.close_all(m)


def test_what_cannot_be_served_says_so():
    early = selectors.DefaultSelector()  # made before the patch: a kernel epoll
    try:
        with FakeNetwork(seed=1) as net, net.patch():
            a, b = socket.socketpair()
            with pytest.raises(ValueError, match="made before net.patch"):
                early.register(a, selectors.EVENT_READ)
            with pytest.raises(OSError, match="fake socket's number"):
                socket.socket(fileno=a.fileno())
            with pytest.raises(OSError, match="cannot be duplicated"):
                socket.fromfd(a.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
            a.close()
            b.close()
    finally:
        early.close()


def test_timeouts_are_milliseconds_for_poll_and_seconds_for_epoll():
    with FakeNetwork(seed=1) as net, net.patch():
        a, b = socket.socketpair()
        po = select.poll()
        po.register(a, select.POLLIN)
        assert po.poll(1500) == []
        assert net.time() == pytest.approx(1.5, abs=0.01)
        ep = select.epoll()
        ep.register(a, select.EPOLLIN)
        assert ep.poll(2.0) == []
        assert net.time() == pytest.approx(3.5, abs=0.01)
        assert ep.poll(0.0001) == []  # rounded up to a whole millisecond, as CPython does
        assert net.time() == pytest.approx(3.501, abs=0.0011)
        net.schedule(1.0, b.send, b"x")
        assert ep.poll(-1) == [(a.fileno(), select.EPOLLIN)]  # negative: no limit
        assert po.poll(None) == [(a.fileno(), select.POLLIN)]
        ep.close()
        a.close()
        b.close()


class _One:
    def __index__(self):
        return 1

    def __repr__(self) -> str:
        return "_One()"


class _Half:
    """A number by __float__ only: poll and epoll refuse it."""

    def __float__(self):
        return 0.5

    def __repr__(self) -> str:
        return "_Half()"


POLL_TIMEOUTS = ["x", 1.5, -1, 0, True, _One(), _Half(), 2 ** 31 - 1, 2 ** 31, -2 ** 31 - 1,
                 2 ** 63, 2 ** 64, -2 ** 64, math.nan, math.inf, -math.inf, 1e300, -1e300,
                 9.2e9, 9.3e9, 9.3e18, 0.0001, -0.5]


def _timeout_outcomes():
    """What poll.poll(v) and epoll.poll(v) do with each value, a socket ready
    at once (so that a valid timeout never waits)."""
    s = socket.socket()
    out = []
    try:
        for value in POLL_TIMEOUTS:
            po = select.poll()
            po.register(s, select.POLLOUT)
            ep = select.epoll()
            ep.register(s, select.EPOLLOUT)
            for name, call in (("poll", po.poll), ("epoll", ep.poll)):
                try:
                    call(value)
                    got = ("ok",)
                except Exception as exc:  # noqa: BLE001 -- the outcome is the point
                    got = (type(exc).__name__, str(exc))
                out.append((name, repr(value), got))
            ep.close()
    finally:
        s.close()
    return out


def test_poll_and_epoll_check_their_timeout_as_cpython_does():
    """Conversion as CPython's (milliseconds or seconds to 64-bit nanoseconds,
    then a C int of milliseconds); the messages name the running version's
    C type (``PyTime_t`` on 3.13, ``_PyTime_t`` before)."""
    real = _timeout_outcomes()
    with FakeNetwork(seed=1) as net, net.patch():
        fake = _timeout_outcomes()
        assert net.time() < 1.0  # nothing waited (passes cost 1 ms of virtual time each)
    assert fake == real
    by_call = {(name, value): got for name, value, got in real}
    too_large = "timestamp too large to convert to C " + ("PyTime_t" if sys.version_info >= (3, 13) else "_PyTime_t")
    assert by_call[("poll", repr(-2 ** 64))] == ("OverflowError", too_large)
    assert by_call[("epoll", repr(-2 ** 31 - 1))] == ("OverflowError", "timeout is too large")
    assert by_call[("epoll", "_Half()")] == ("TypeError", "timeout must be an integer or None")


def tcp_edge_triggered_calls(port):
    """Edge-triggered epoll on a TCP connection; returns what each poll said."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen()
    a = socket.create_connection(lsock.getsockname())
    b, _ = lsock.accept()
    names = {a.fileno(): "a", b.fileno(): "b"}
    ep = select.epoll()
    out = []

    def p():
        out.append(sorted((names[fd], ev) for fd, ev in ep.poll(0.01)))

    ep.register(b, select.EPOLLOUT | select.EPOLLET)
    ep.register(a, select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET)
    p()
    b.send(b"x" * 10)
    p()  # a: data; b: no wake-up for a TCP writer
    a.recv(100)
    p()  # the peer read: still no wake-up (Linux wakes a TCP writer only after a full buffer)
    b.shutdown(socket.SHUT_WR)
    p()  # a: the FIN
    a.close()
    p()  # a left the set; b sees nothing new until the RST of a write
    ep.close()
    b.close()
    lsock.close()
    return out


def test_edge_triggered_epoll_on_tcp_answers_as_on_linux():
    real = tcp_edge_triggered_calls(0)
    with FakeNetwork(seed=3) as net, net.patch():
        fake = tcp_edge_triggered_calls(8080)
    assert fake == real


def test_select_on_nothing_is_a_virtual_sleep():
    with FakeNetwork(seed=1) as net, net.patch():
        assert select.select([], [], [], 2.5) == ([], [], [])
        assert net.time() == pytest.approx(2.5)
        with pytest.raises(Deadlock):
            select.select([], [], [])  # nothing could ever wake it


def test_a_socketpair_waker_in_a_map_of_real_sockets():
    m = {}
    waker = Waker(m)  # outside the patch: a real socketpair, the same code
    try:
        waker.wake()
        for _ in range(100):
            simnet.loop(timeout=0.05, map=m, count=1)
            if waker.wakeups:
                break
        assert waker.wakeups == 1
    finally:
        waker.wsock.close()
        simnet.close_all(m)
