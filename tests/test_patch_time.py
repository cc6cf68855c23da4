"""``net.patch(time=True)``: the program's clocks and ``time.sleep`` are virtual.

What is checked:

* a server of our own with a 300 s idle timeout measured by ``time.monotonic()``
  (a ``selectors`` loop driven by ``net.add_pump``) drops an idle client at
  virtual t = 300 (asserted on the virtual clock; it takes milliseconds), twice
  with the same outcome;
* ``time.sleep(10)`` in a blocking client runs the simulation: an asyncore
  server answers during the sleep, and the answer is there when it ends;
* the clocks: ``time.time()`` is a fixed epoch plus virtual time,
  ``datetime.datetime.now()``/``date.today()`` follow it, ``_ns`` variants agree,
  the real functions come back after the patch, ``time.sleep`` rejects what
  CPython rejects, and ``time`` is off by default.
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import inspect
import math
import selectors
import socket
import sys
import time

import pytest

import simnet
from simnet.fakesock import FakeNetwork
from simnet.fakesock.clock import VIRTUAL_EPOCH


class IdleTimeoutServer:
    """A selectors server that closes connections idle for IDLE seconds."""

    IDLE = 300.0

    def __init__(self, address):
        self.sel = selectors.DefaultSelector()
        self.lsock = socket.socket()
        self.lsock.bind(address)
        self.lsock.listen()
        self.lsock.setblocking(False)
        self.sel.register(self.lsock, selectors.EVENT_READ)
        self.last_seen = {}
        self.closed_at = []

    def step(self):
        now = time.monotonic()
        timeout = min((t + self.IDLE - now for t in self.last_seen.values()), default=None)
        for key, _ in self.sel.select(None if timeout is None else max(timeout, 0)):
            if key.fileobj is self.lsock:
                conn, _ = self.lsock.accept()
                conn.setblocking(False)
                self.sel.register(conn, selectors.EVENT_READ)
                self.last_seen[conn] = time.monotonic()
            elif key.fileobj.recv(4096):
                self.last_seen[key.fileobj] = time.monotonic()
        now = time.monotonic()
        for conn, seen in list(self.last_seen.items()):
            if now - seen >= self.IDLE:
                self.sel.unregister(conn)
                conn.close()
                del self.last_seen[conn]
                self.closed_at.append(now)


def _idle_timeout_run(seed):
    with FakeNetwork(seed=seed) as net, net.patch(time=True):
        server = IdleTimeoutServer(("127.0.0.1", 2525))
        net.add_pump(server.step)
        client = socket.create_connection(("127.0.0.1", 2525))
        client.sendall(b"hello")
        assert client.recv(100) == b""  # blocks until the server drops us
        client.close()
        return server.closed_at, net.time()


def test_an_idle_timeout_of_300_seconds_fires_at_virtual_300():
    closed_at, now = _idle_timeout_run(4)
    assert closed_at == [pytest.approx(300.0, abs=0.002)]
    assert now == pytest.approx(300.0, abs=0.002)
    assert _idle_timeout_run(4) == (closed_at, now)  # deterministic


class Answer(simnet.dispatcher):
    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.answered_at = None

    def writable(self):
        return False

    def handle_read(self):
        if self.recv(100):
            self.send(b"pong")
            self.answered_at = time.monotonic()


class Server(simnet.dispatcher):
    def handle_accepted(self, sock, addr):
        self.channel = Answer(sock, self._map)


def _sleep_run(seed):
    with FakeNetwork(seed=seed) as net, net.patch(time=True):
        server = Server()
        server.create_socket()
        server.bind(("127.0.0.1", 8000))
        server.listen(5)
        client = socket.create_connection(("127.0.0.1", 8000))
        client.sendall(b"ping")
        t0 = time.monotonic()
        time.sleep(10)
        slept = time.monotonic() - t0
        client.setblocking(False)
        got = client.recv(100)  # already there: the server answered during the sleep
        answered = server.channel.answered_at
        client.close()
        simnet.close_all()
        return got, slept, answered, net.time()


def test_time_sleep_in_a_client_runs_the_server_meanwhile():
    got, slept, answered, now = _sleep_run(9)
    assert got == b"pong"
    assert slept == 10.0 and now == pytest.approx(10.0)
    assert answered is not None and answered < 10.0
    assert _sleep_run(9) == (got, slept, answered, now)


def test_the_clocks_read_virtual_time_and_come_back():
    real_time, real_sleep = time.time, time.sleep
    with FakeNetwork(seed=0, start_time=5.0) as net, net.patch(time=True):
        assert time.monotonic() == time.perf_counter() == 5.0
        assert time.time() == VIRTUAL_EPOCH + 5.0
        assert time.monotonic_ns() == time.perf_counter_ns() == 5_000_000_000
        assert time.time_ns() == int(VIRTUAL_EPOCH + 5) * 10**9
        time.sleep(2.5)
        assert net.time() == 7.5
        assert datetime.datetime.now() == datetime.datetime.fromtimestamp(VIRTUAL_EPOCH + 7.5)
        assert datetime.datetime.now(datetime.timezone.utc).year == 2026
        assert datetime.date.today() == datetime.date.fromtimestamp(VIRTUAL_EPOCH + 7.5)
        real_dt = datetime.datetime(2020, 1, 1)
        assert isinstance(real_dt, datetime.datetime)
        with pytest.raises(ValueError, match="non-negative"):
            time.sleep(-1)
        with pytest.raises(ValueError, match="NaN"):
            time.sleep(float("nan"))
        with pytest.raises(TypeError, match="'str' object"):
            time.sleep("1")
    assert time.time is real_time and time.sleep is real_sleep
    assert datetime.datetime.now().year >= 2024


class _MinusOne:
    """A number by __float__ only: time.sleep refuses it."""

    def __float__(self):
        return -1.0

    def __repr__(self) -> str:
        return "_MinusOne()"


class _MinusTwo:
    def __index__(self):
        return -2

    def __repr__(self) -> str:
        return "_MinusTwo()"


#: Arguments the real time.sleep refuses (so the reference never sleeps).
BAD_SLEEPS = [math.inf, -math.inf, math.nan, -1, -0.5, -1e-10, "1", b"1", None, [1], 2 ** 63, 2 ** 64,
              -2 ** 64, 10 ** 30, 9223372037, -9223372037, 1e300, 9.3e9, 9.2e18, _MinusOne(),
              _MinusTwo(), fractions.Fraction(-1, 2), -True, decimal.Decimal(-1)]


def _sleep_outcomes():
    out = []
    for value in BAD_SLEEPS:
        try:
            time.sleep(value)
            got = ("ok",)
        except Exception as exc:  # noqa: BLE001 -- the outcome is the point
            got = (type(exc).__name__, str(exc))
        out.append((repr(value), got))
    return out


def test_virtual_sleep_refuses_what_time_sleep_refuses():
    """Checked as CPython converts it (64-bit nanoseconds; ``__index__``, not
    ``__float__``), the messages naming the running version's C type."""
    real = _sleep_outcomes()
    assert all(got[0] != "ok" for _, got in real)
    with FakeNetwork(seed=0) as net, net.patch(time=True):
        fake = _sleep_outcomes()
        assert net.time() == 0.0
    assert fake == real
    too_large = "timestamp too large to convert to C " + ("PyTime_t" if sys.version_info >= (3, 13) else "_PyTime_t")
    assert dict(real)[repr(2 ** 64)] == ("OverflowError", too_large)


def _utcnow_and_warnings():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = datetime.datetime.utcnow()  # (the line the warning must name)
    return value, [(w.category, str(w.message), w.filename, w.lineno) for w in caught]


def test_utcnow_reads_virtual_time_and_warns_as_cpython_does():
    """3.12+ deprecates ``datetime.utcnow()``: the virtual one gives the
    same DeprecationWarning, naming the caller's line (not simnet's)."""
    real_value, real_warnings = _utcnow_and_warnings()
    with FakeNetwork(seed=0, start_time=5.0) as net, net.patch(time=True):
        value, fake_warnings = _utcnow_and_warnings()
    assert value == datetime.datetime(2026, 1, 1, 0, 0, 5)  # VIRTUAL_EPOCH + 5 s, in UTC
    assert abs(real_value - datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)).total_seconds() < 60
    assert fake_warnings == real_warnings
    if sys.version_info >= (3, 12):
        assert [w[0] for w in real_warnings] == [DeprecationWarning]
        assert real_warnings[0][2] == __file__
    else:
        assert real_warnings == []


def test_time_is_off_by_default_and_checked():
    real_monotonic = time.monotonic
    with FakeNetwork(seed=0) as net:
        with net.patch():
            assert time.monotonic is real_monotonic
        with pytest.raises(TypeError, match="time must be True or False, got 'yes'"):
            with net.patch(time="yes"):
                pass


def test_a_busy_loop_with_zero_timeouts_sees_its_clock_advance():
    if "pass_cost" not in inspect.signature(FakeNetwork).parameters:
        pytest.skip("needs the idle-pass cost of the fake network (FakeNetwork(pass_cost=...))")
    with FakeNetwork(seed=0) as net, net.patch(time=True):
        a, b = socket.socketpair()
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ)
        deadline = time.monotonic() + 5
        passes = 0
        while time.monotonic() < deadline:
            assert sel.select(0) == []
            passes += 1
        assert net.time() >= 5 and passes > 1
        sel.close()
        a.close()
        b.close()
