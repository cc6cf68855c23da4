"""Progress on the fake network: what counts, what idle passes cost, when a
blocking call or the loop may give up, and spurious EAGAIN on blocking
sockets (issue 9 items 1 and 2, issue 15 point 4).

Everything on the fake network runs in virtual time. The tests that also run
on real loopback use a server thread with bounded loops and timeouts.
"""

from __future__ import annotations

import http.client
import math
import smtplib
import socket
import sys
import threading

import pytest

import simnet
from simnet import Rule
from simnet.examples.smtp import SMTPServer
from simnet.fakesock import Deadlock, FakeNetwork, SimulationTimeout
from simnet.fakesock.network import PASS_COST, STALL_LIMIT
from simnet.real import RealNetwork


# -- an HTTP/1.1 keep-alive server that flips a flag in a pass of its own ----------

class KeepAliveChannel(simnet.async_chat):
    """Reads one request at a time: while ``responding`` it is not readable;
    the pass after the response has left, ``handle_write`` finds the fifo
    empty and flips the flag back -- a pass that moves no byte."""

    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.set_terminator(b"\r\n\r\n")
        self.request = []
        self.responding = False
        self.served = 0

    def readable(self):
        return not self.responding and super().readable()

    def writable(self):
        return self.responding or super().writable()

    def handle_write(self):
        if self.responding and not self.producer_fifo:
            self.responding = False  # the flag flip: no I/O at all
            return
        super().handle_write()

    def collect_incoming_data(self, data):
        self.request.append(data)

    def found_terminator(self):
        head = b"".join(self.request).decode("latin-1")
        self.request = []
        self.served += 1
        path = head.split(" ")[1]
        body = f"response {self.served} to {path}".encode()
        self.responding = True
        self.push(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n"
                  % len(body) + body)


class KeepAliveServer(simnet.dispatcher):
    def __init__(self, addr, map):
        super().__init__(map=map)
        self.create_socket()
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)
        self.channels = []

    def handle_accepted(self, sock, addr):
        self.channels.append(KeepAliveChannel(sock, self._map))


@pytest.mark.parametrize("timeout", [10, None])
def test_keep_alive_server_that_flips_a_flag_answers_the_second_request(timeout):
    """Regression: block() gave up after one pass that moved no bytes (with a
    timeout: jumped to the deadline, TimeoutError on the second request)."""
    with FakeNetwork(seed=1) as net, net.patch():
        m = {}
        server = KeepAliveServer(("127.0.0.1", 8080), m)
        conn = http.client.HTTPConnection("127.0.0.1", 8080, timeout=timeout)
        bodies = []
        for path in ("/one", "/two"):
            conn.request("GET", path)
            resp = conn.getresponse()
            bodies.append(resp.read())
        conn.close()
        assert bodies == [b"response 1 to /one", b"response 2 to /two"]
        assert [c.served for c in server.channels] == [2]  # one connection, two requests
        assert net.time() < 1.0  # the flag flips cost idle passes, not the timeout
        simnet.close_all(m)


# -- smtplib under spurious EAGAIN on the server's sends, on both networks ----------

EAGAIN_ON_SERVER_SENDS = [Rule("eagain", op="send", where={"side": "server", "probability": 0.5})]
MESSAGE = "Subject: hi\r\n\r\nhello under spurious EAGAIN\r\n"


def _smtp_session(host, port):
    with smtplib.SMTP(host, port, timeout=30) as client:
        assert client.ehlo("client.example")[0] == 250
        assert client.sendmail("alice@example.org", ["bob@example.org"], MESSAGE) == {}
        assert client.noop()[0] == 250


def test_smtplib_survives_eagain_on_the_server_sends_on_the_fake_network():
    """Regression: a false Deadlock (a pass whose only event was an EAGAIN
    counted as no progress)."""
    for seed in range(5):
        with FakeNetwork(seed=seed, faults=EAGAIN_ON_SERVER_SENDS) as net, net.patch():
            m = {}
            server = SMTPServer(("127.0.0.1", 25), m)
            _smtp_session("127.0.0.1", 25)
            assert server.messages == [("alice@example.org", ["bob@example.org"],
                                        b"Subject: hi\r\n\r\nhello under spurious EAGAIN")]
            assert net.faults.fired[0] > 0
            simnet.close_all(m)


def test_smtplib_survives_eagain_on_the_server_sends_on_real_loopback():
    m = {}
    stop = threading.Event()
    with RealNetwork(faults=EAGAIN_ON_SERVER_SENDS, seed=3) as net:
        server = SMTPServer(("127.0.0.1", 0), m)
        port = server.address[1]

        def serve():
            for _ in range(20000):  # bounded: 20000 passes of at most 10 ms
                if stop.is_set():
                    return
                simnet.loop(timeout=0.01, map=m, count=1)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            _smtp_session("127.0.0.1", port)
        finally:
            stop.set()
            thread.join(10)
        assert server.messages == [("alice@example.org", ["bob@example.org"],
                                    b"Subject: hi\r\n\r\nhello under spurious EAGAIN")]
        assert net.faults.fired[0] > 0
        simnet.close_all(m, ignore_all=True)


# -- busy polling ------------------------------------------------------------------

class Pinger(simnet.dispatcher_with_send):
    def __init__(self, addr, map):
        super().__init__(map=map)
        self.create_socket()
        self.connect(addr)
        self.got = b""

    def handle_connect(self):
        self.send(b"ping")

    def handle_read(self):
        self.got += self.recv(100)


class Echo(simnet.dispatcher_with_send):
    def handle_read(self):
        self.send(self.recv(100))


class EchoListener(simnet.dispatcher):
    def __init__(self, addr, map):
        super().__init__(map=map)
        self.create_socket()
        self.bind(addr)
        self.listen(5)

    def handle_accepted(self, sock, addr):
        Echo(sock, map=self._map)


def test_a_busy_poll_loop_with_timeout_zero_sees_data_in_flight():
    """``while not done: poll(0)`` waiting for a reply 4 x 50 ms away: each
    pass that changes nothing costs pass_cost, so the reply arrives (the
    clock used to stand still: an endless loop)."""
    with FakeNetwork(seed=0, latency=0.05) as net:
        m = {}
        EchoListener(("127.0.0.1", 7), m)
        client = Pinger(("127.0.0.1", 7), m)
        for passes in range(1, 100001):
            simnet.poll(0.0, m)
            if client.got == b"ping":
                break
        assert client.got == b"ping"
        assert 0.2 <= net.time() <= 0.2 + PASS_COST
        assert passes <= 0.2 / PASS_COST + 10  # one idle pass per pass_cost
        simnet.close_all(m)


class Spinner(simnet.dispatcher):
    """Always writable; does its work only on the n-th write event (a program
    that polls some other condition on every pass)."""

    def __init__(self, sock, map, n):
        super().__init__(sock, map=map)
        self.n = n
        self.calls = 0

    def handle_write(self):
        self.calls += 1
        if self.calls == self.n:
            self.send(b"done")

    def readable(self):
        return False


def _pair(net):
    lst = net.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    a = net.socket()
    a.connect(lst.getsockname())
    b, _ = lst.accept()
    lst.close()
    return a, b


def test_run_lets_a_program_spin_as_long_as_it_needs():
    """Regression: run() raised Deadlock after 1,000 passes without I/O."""
    with FakeNetwork(seed=0) as net:
        m = {}
        a, b = _pair(net)
        spinner = Spinner(a, m, 3000)
        net.run(until=lambda: spinner.calls >= 3000, map=m, timeout=60)
        assert b.recv(10) == b"done"
        assert net.time() == pytest.approx(2999 * PASS_COST)  # idle passes only
        simnet.close_all(m)
        b.close()


def test_idle_passes_cost_pass_cost_and_working_passes_nothing():
    with FakeNetwork(seed=0, pass_cost=0.01) as net:
        m = {}
        a, b = _pair(net)
        spinner = Spinner(a, m, 10 ** 9)
        for _ in range(11):
            simnet.poll(1.0, m)
        # the first pass follows no pass; each of the ten others was idle
        assert net.time() == pytest.approx(0.1)
        simnet.close_all(m)
        b.close()
    with FakeNetwork(seed=0, latency=0.1) as net:
        m = {}
        EchoListener(("127.0.0.1", 7), m)
        client = Pinger(("127.0.0.1", 7), m)
        took = net.run(until=lambda: client.got == b"ping", map=m, timeout=10)
        assert took == 0.4  # SYN, SYN-ACK, ping, echo: exactly, no pass cost
        simnet.close_all(m)
    with FakeNetwork(seed=0, pass_cost=0) as net:
        assert net.pass_cost == 0.0


# -- livelocks -----------------------------------------------------------------------

class Reader(simnet.async_chat):
    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.set_terminator(b"\n")
        self.lines = []
        self.data = []

    def collect_incoming_data(self, data):
        self.data.append(data)

    def found_terminator(self):
        self.lines.append(b"".join(self.data))
        self.data = []


def _livelock(net, m):
    """A server channel with a line buffered that every recv answers with a
    spurious EAGAIN (the plan's rule 1): ready on every pass, forever."""
    a, b = _pair(net)
    reader = Reader(b, m)
    a.sendall(b"hello\n")
    return a, reader


def test_a_livelocked_program_is_rescued_by_its_own_watchdog_at_virtual_30s():
    plan = [Rule("eagain", op="recv", where={"side": "server"})]
    with FakeNetwork(seed=0, faults=plan) as net:
        m = {}
        a, reader = _livelock(net, m)
        fired_at = []

        def watchdog():
            fired_at.append(net.time())
            reader.close()

        simnet.call_later(30.0, watchdog)
        net.run(until=lambda: bool(fired_at), map=m, timeout=120)
        assert fired_at and 30.0 <= fired_at[0] <= 30.0 + PASS_COST
        assert reader.lines == []
        assert net.faults.fired[0] >= STALL_LIMIT  # it did spin, and the clock moved
        a.close()


def test_a_livelock_with_nothing_pending_is_a_deadlock_naming_the_rule():
    plan = [Rule("eagain", op="recv", where={"side": "server"})]
    with FakeNetwork(seed=0, faults=plan) as net:
        m = {}
        a, reader = _livelock(net, m)
        with pytest.raises(Deadlock) as info:
            simnet.loop(timeout=30.0, map=m)  # the program's own loop: no deadline at all
        text = str(info.value)
        assert "livelock" in text and f"{STALL_LIMIT} passes" in text
        assert "fault rules that fired during those passes:\n  1. " in text
        assert net.time() == pytest.approx((STALL_LIMIT - 1) * PASS_COST)
        simnet.close_all(m)
        a.close()


@pytest.mark.parametrize("timeout", [60, 10 ** 6])
def test_a_livelock_under_run_is_fast_forwarded_to_its_deadline_and_named(timeout):
    plan = [Rule("eagain", op="recv", where={"side": "server"})]
    with FakeNetwork(seed=0, faults=plan) as net:
        m = {}
        a, reader = _livelock(net, m)
        with pytest.raises(SimulationTimeout) as info:
            net.run(until=lambda: bool(reader.lines), map=m, timeout=timeout)
        text = str(info.value)
        assert f"within {timeout} virtual seconds" in text and "livelock" in text
        assert "fault rules that fired during those passes:\n  1. " in text
        assert net.time() == timeout
        simnet.close_all(m)
        a.close()


def test_run_until_a_time_is_reached_by_a_spinning_program():
    """until() may watch the clock: the spin's fast-forward stops at run()'s
    deadline, and a condition on time holds as on a real machine."""
    with FakeNetwork(seed=0) as net:
        m = {}
        a, b = _pair(net)
        Spinner(a, m, 10 ** 9)
        net.run(until=lambda: net.time() >= 20.0, map=m, timeout=20.0)
        assert net.time() == 20.0
        simnet.close_all(m)
        b.close()


def test_a_limited_rule_ends_the_livelock_by_itself():
    plan = [Rule("eagain", op="recv", where={"side": "server", "limit": STALL_LIMIT + 50})]
    with FakeNetwork(seed=0, faults=plan) as net:
        m = {}
        a, reader = _livelock(net, m)
        net.run(until=lambda: bool(reader.lines), map=m, timeout=10 ** 6)
        assert reader.lines == [b"hello"]
        assert net.faults.fired[0] == STALL_LIMIT + 50
        simnet.close_all(m)
        a.close()


def test_a_rule_window_ends_the_livelock_at_its_end():
    plan = [Rule("eagain", op="recv", where={"side": "server", "window": [0, 100]})]
    with FakeNetwork(seed=0, faults=plan) as net:
        m = {}
        a, reader = _livelock(net, m)
        net.run(until=lambda: bool(reader.lines), map=m, timeout=1000)
        assert reader.lines == [b"hello"]
        assert 100.0 < net.time() < 100.0 + 2 * PASS_COST
        simnet.close_all(m)
        a.close()


def test_nothing_ready_and_nothing_pending_is_still_an_immediate_deadlock():
    with FakeNetwork(seed=0) as net:
        a, b = _pair(net)
        with pytest.raises(Deadlock, match="blocking recv"):
            b.recv(10)
        assert net.time() == 0.0
        b.settimeout(5)
        with pytest.raises(TimeoutError, match="timed out"):
            b.recv(10)
        assert net.time() == 5.0
        a.close()
        b.close()


# -- spurious EAGAIN never leaks out of a blocking socket (fake network) ---------------

@pytest.mark.parametrize("timeout", [None, 5.0])
@pytest.mark.parametrize("op", ["recv", "send", "accept"])
def test_eagain_on_a_blocking_socket_costs_a_retry_and_never_surfaces(op, timeout):
    plan = [Rule("eagain", op=op, where={"limit": 3})]
    with FakeNetwork(seed=0, faults=plan) as net:
        lst = net.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        lst.settimeout(timeout)
        a = net.socket()
        a.settimeout(timeout)
        a.connect(lst.getsockname())
        b, _ = lst.accept()
        b.settimeout(timeout)
        assert a.send(b"abc") == 3
        assert b.recv(10) == b"abc"
        assert net.faults.fired[0] == 3  # each retry is another call, and counted
        assert net.time() == pytest.approx(3 * PASS_COST)  # three idle retries
        for s in (a, b, lst):
            s.close()


def test_eagain_still_surfaces_on_non_blocking_sockets_and_msg_dontwait():
    plan = [Rule("eagain", op="recv")]
    with FakeNetwork(seed=0, faults=plan) as net:
        a, b = _pair(net)
        a.sendall(b"abc")
        with pytest.raises(BlockingIOError):
            b.recv(10, socket.MSG_DONTWAIT)
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            b.recv(10)
        a.close()
        b.close()


def test_endless_eagain_on_a_timeout_socket_times_out_at_its_deadline():
    plan = [Rule("eagain", op="recv")]
    with FakeNetwork(seed=0, faults=plan) as net:
        a, b = _pair(net)
        a.sendall(b"abc")
        b.settimeout(2.0)
        with pytest.raises(TimeoutError, match="timed out"):
            b.recv(10)
        assert net.time() == pytest.approx(2.0)


def test_endless_eagain_on_a_blocking_socket_is_a_deadlock_naming_the_rule():
    plan = [Rule("eagain", op="recv")]
    with FakeNetwork(seed=0, faults=plan) as net:
        a, b = _pair(net)
        a.sendall(b"abc")
        with pytest.raises(Deadlock) as info:
            b.recv(10)
        assert "livelock" in str(info.value) and "1. " in str(info.value)


def test_a_blocking_client_survives_the_plans_a_dispatcher_survives():
    """smtplib (blocking, no timeout) with spurious EAGAIN on both sides."""
    plan = [Rule("eagain", op="recv", where={"probability": 0.3}),
            Rule("eagain", op="send", where={"probability": 0.3}),
            Rule("partial_send", where={"probability": 0.3})]
    for seed in range(5):
        with FakeNetwork(seed=seed, faults=plan) as net, net.patch():
            m = {}
            server = SMTPServer(("127.0.0.1", 25), m)
            with smtplib.SMTP("127.0.0.1", 25) as client:
                client.ehlo("x")
                assert client.sendmail("a@example.org", ["b@example.org"], MESSAGE) == {}
            assert len(server.messages) == 1
            assert net.faults.fired[0] and net.faults.fired[1]
            simnet.close_all(m)


# -- spurious EAGAIN on blocking real sockets ---------------------------------------------

def _real_pair(net):
    lst = net.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    a = net.socket()
    a.settimeout(5)
    a.connect(lst.getsockname())
    b, _ = lst.accept()
    lst.close()
    return a, b


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_eagain_on_a_blocking_real_socket_is_retried_not_raised(timeout):
    plan = [Rule("eagain", op="recv", where={"limit": 3}),
            Rule("eagain", op="send", where={"limit": 2})]
    with RealNetwork(faults=plan) as net:
        a, b = _real_pair(net)
        a.settimeout(timeout)
        b.settimeout(timeout)
        assert a.send(b"abc") == 3
        assert b.recv(10) == b"abc"
        assert net.faults.fired == [3, 2]
        a.close()
        b.close()


def test_eagain_on_a_real_socket_with_a_timeout_ends_in_timeout_error():
    with RealNetwork(faults=[Rule("eagain", op="recv")]) as net:
        a, b = _real_pair(net)
        a.sendall(b"abc")
        b.settimeout(0.2)
        with pytest.raises(TimeoutError, match="timed out"):
            b.recv(10)
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            b.recv(10)
        a.close()
        b.close()


def test_real_accept_on_a_blocking_listener_retries_eagain():
    with RealNetwork(faults=[Rule("eagain", op="accept", where={"limit": 2})]) as net:
        lst = net.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        lst.settimeout(5)
        a = net.socket()
        a.connect(lst.getsockname())
        b, _ = lst.accept()
        assert net.faults.fired == [2]
        for s in (a, b, lst):
            s.close()


# -- numbers are checked ----------------------------------------------------------------

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"latency": NAN}, ValueError, "latency must be a finite number, got nan"),
    ({"latency": INF}, ValueError, "latency must be a finite number, got inf"),
    ({"latency": "1"}, TypeError, "latency must be a number"),
    ({"bandwidth": NAN}, ValueError, "bandwidth must be a finite number, got nan"),
    ({"bandwidth": INF}, ValueError, "bandwidth must be a finite number, got inf"),
    ({"bandwidth": -5}, ValueError, "bandwidth must be a number > 0, got -5"),
    ({"start_time": NAN}, ValueError, "start_time must be a finite number, got nan"),
    ({"start_time": -INF}, ValueError, "start_time must be a finite number, got -inf"),
    ({"pass_cost": NAN}, ValueError, "pass_cost must be a finite number, got nan"),
    ({"pass_cost": -0.1}, ValueError, "pass_cost must be a number >= 0, got -0.1"),
    ({"sndbuf": 1.5}, TypeError, r"sndbuf must be a positive int \(bytes\) or None, got 1.5"),
    ({"rcvbuf": "4096"}, TypeError, "rcvbuf must be a positive int"),
    ({"rcvbuf": True}, TypeError, "rcvbuf must be a positive int"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be True or False, got 'yes'"),
])
def test_network_numbers_are_checked(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        FakeNetwork(**kwargs)


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"latency": NAN}, ValueError, r"link\(\): latency must be a finite number, got nan"),
    ({"latency": INF}, ValueError, r"link\(\): latency must be a finite number, got inf"),
    ({"latency": -1}, ValueError, r"link\(\): latency must be a number >= 0, got -1"),
    ({"bandwidth": NAN}, ValueError, r"link\(\): bandwidth must be a finite number, got nan"),
    ({"bandwidth": 0}, ValueError, r"link\(\): bandwidth must be a number > 0, got 0"),
    ({"latency": "fast"}, TypeError, r"link\(\): latency must be a number"),
])
def test_link_numbers_are_checked(kwargs, exc, words):
    with FakeNetwork() as net:
        with pytest.raises(exc, match=words):
            net.link("10.0.0.1", "10.0.0.2", **kwargs)
        net.link("10.0.0.1", "10.0.0.2", latency=0.5, bandwidth=1000)


@pytest.mark.parametrize("timeout, exc, words", [
    (NAN, ValueError, r"run\(\): timeout must be a finite number of virtual seconds >= 0, got nan"),
    (INF, ValueError, r"run\(\): timeout must be a finite number of virtual seconds >= 0, got inf"),
    (-1, ValueError, r"run\(\): timeout must be .* got -1"),
    ("10", TypeError, r"run\(\): timeout must be a number of virtual seconds, got '10'"),
])
def test_run_timeout_is_checked(timeout, exc, words):
    with FakeNetwork() as net:
        with pytest.raises(exc, match=words):
            net.run(timeout=timeout, map={})


@pytest.mark.parametrize("seconds, exc, words", [
    (NAN, ValueError, r"sleep\(\): seconds must be a finite number, got nan"),
    (INF, ValueError, r"sleep\(\): seconds must be a finite number, got inf"),
    (-1, ValueError, "sleep length must be non-negative, got -1"),
    ("1", TypeError, r"sleep\(\): seconds must be a number, got '1'"),
])
def test_sleep_is_checked(seconds, exc, words):
    with FakeNetwork() as net:
        with pytest.raises(exc, match=words):
            net.sleep(seconds)
        assert net.time() == 0.0


class Silent(simnet.dispatcher):
    """Readable, never writable, and nothing ever arrives."""

    def writable(self):
        return False


@pytest.mark.parametrize("timeout", [0.0, 30.0])
def test_a_plain_loop_that_can_never_see_anything_ends_in_deadlock(timeout):
    """Outside net.run(), a loop whose passes change nothing and have nothing
    pending is stopped too (it would never return on a real network): busy
    (timeout 0: idle passes, then the livelock report) or waiting (timeout
    30: each pass waits 30 virtual seconds)."""
    with FakeNetwork(seed=0) as net:
        m = {}
        a, b = _pair(net)
        Silent(b, m)
        with pytest.raises(Deadlock, match=f"{STALL_LIMIT} passes"):
            simnet.loop(timeout=timeout, map=m)
        simnet.close_all(m)
        a.close()


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_eagain_on_a_blocking_connect_never_surfaces_nor_counts(timeout):
    # A blocking (or timeout-mode) TCP connect never returns EAGAIN on Linux:
    # the kernel just goes on with the handshake, so the rule changes nothing
    # the program sees and is not counted (tests/test_fault_combinations.py).
    with FakeNetwork(seed=0, faults=[Rule("eagain", op="connect")]) as net:
        lst = net.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        c = net.socket()
        c.settimeout(timeout)
        assert c.connect(lst.getsockname()) is None
        assert c.getpeername() == lst.getsockname()
        assert net.faults.fired == [0]
        c.close()
        lst.close()


# -- pass_cost in traces and markers -------------------------------------------------------

def test_a_non_default_pass_cost_is_recorded_in_the_trace_header():
    with FakeNetwork(seed=0, trace=True) as net:
        assert "pass_cost" not in net.trace.header["network"]  # default: headers as before
    with FakeNetwork(seed=0, pass_cost=0.25, trace=True) as net:
        assert net.trace.header["network"]["pass_cost"] == 0.25


pytest_plugins = ["pytester"]


def test_marker_takes_pass_cost_and_rejects_nan_numbers_at_collection(pytester):
    pytester.makepyfile('''
        import pytest, simnet
        @pytest.mark.simnet(pass_cost=0.5)
        def test_cost(fake_net):
            assert fake_net.pass_cost == 0.5
            simnet.poll(0.0, {})
    ''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makepyfile(test_bad='''
        import pytest
        @pytest.mark.simnet(latency=float("nan"))
        def test_x(fake_net):
            pass
    ''')
    result = pytester.runpytest("test_bad.py", "-p", "no:cacheprovider")
    assert result.ret != 0
    assert "latency must be a finite number >= 0, got nan" in result.stderr.str() + result.stdout.str()


def test_a_livelock_and_its_rescue_replay_event_for_event():
    """Idle passes, the fast-forward and the watchdog are deterministic."""
    def run():
        plan = [Rule("eagain", op="recv", where={"side": "server", "probability": 0.999})]
        with FakeNetwork(seed=4, faults=plan, trace=True) as net:
            m = {}
            a, reader = _livelock(net, m)
            simnet.call_later(30.0, reader.close)
            net.run(until=lambda: not m or bool(reader.lines), map=m, timeout=120)
            a.close()
            return list(net.trace.lines()), net.time(), reader.lines

    first, second = run(), run()
    assert first == second
    assert len(first[0]) > 10


# -- property: a blocking client survives every plan a dispatcher client survives ----------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from simnet.examples.mailer import SMTPClient  # noqa: E402
from simnet.strategies import fault_plans  # noqa: E402


def _dispatcher_client_survives(plan, seed):
    with FakeNetwork(seed=seed, faults=plan) as net:
        m = {}
        SMTPServer(("127.0.0.1", 25), m, idle_timeout=None)
        client = SMTPClient(("127.0.0.1", 25), "a@example.org", ["b@example.org"],
                            b"Subject: x\r\n\r\nhello", m)
        try:
            net.run(until=lambda: client.result is not None, map=m, timeout=600)
        except (Deadlock, SimulationTimeout):
            return False
        finally:
            simnet.close_all(m)
        return client.result == "sent"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=fault_plans(["partial_send", "short_read", "eagain"], max_rules=3),
       seed=st.integers(0, 3), timeout=st.sampled_from([None, 600.0]))
def test_a_blocking_client_survives_every_plan_a_dispatcher_client_survives(plan, seed, timeout):
    if not _dispatcher_client_survives(plan, seed):
        return  # e.g. EAGAIN on every recv: nobody survives that
    with FakeNetwork(seed=seed, faults=plan) as net, net.patch():
        m = {}
        server = SMTPServer(("127.0.0.1", 25), m, idle_timeout=None)
        with smtplib.SMTP("127.0.0.1", 25, timeout=timeout) as client:
            client.ehlo("client.example")
            assert client.sendmail("a@example.org", ["b@example.org"], "Subject: x\r\n\r\nhello") == {}
        assert len(server.messages) == 1
        simnet.close_all(m)


class _Two:
    def __index__(self):
        return 2


#: 3.13 names the C type ``PyTime_t`` (made public), 3.11 and 3.12 ``_PyTime_t``.
TOO_LARGE = "timestamp too large to convert to C " + ("PyTime_t" if sys.version_info >= (3, 13) else "_PyTime_t")

WAIT_TIMEOUTS = [
    # value, select.select's outcome, poll().poll's outcome (CPython 3.11-3.13, Linux)
    (math.nan, ("ValueError", "Invalid value NaN (not a number)"),
     ("ValueError", "Invalid value NaN (not a number)")),
    (math.inf, ("OverflowError", "timestamp out of range for platform time_t"),
     ("OverflowError", "timestamp out of range for platform time_t")),
    (1e300, ("OverflowError", "timestamp out of range for platform time_t"),
     ("OverflowError", "timestamp out of range for platform time_t")),
    (2 ** 64, ("OverflowError", TOO_LARGE), ("OverflowError", TOO_LARGE)),
    (2 ** 31, ("ok",), ("OverflowError", "timeout is too large")),
    (-1, ("ValueError", "timeout must be non-negative"), ("ok",)),  # poll: negative = forever
    (-0.5, ("ValueError", "timeout must be non-negative"), ("ok",)),
    ("1", ("TypeError", "timeout must be a float or None"),
     ("TypeError", "timeout must be an integer or None")),
    (_Two(), ("ok",), ("ok",)),
    (True, ("ok",), ("ok",)),
    (0.5, ("ok",), ("ok",)),
]


def _outcome(fn):
    try:
        fn()
    except Exception as exc:
        return (type(exc).__name__, str(exc))
    return ("ok",)


@pytest.mark.parametrize("value, by_select, by_poll", WAIT_TIMEOUTS,
                         ids=[type(v).__name__ if isinstance(v, _Two) else repr(v)
                              for v, _, _ in WAIT_TIMEOUTS])
def test_select_and_poll_check_their_timeout_as_cpython_does(value, by_select, by_poll):
    import select as _select

    real = socket.socket()
    try:
        # the reference: the real calls, with a socket that is ready at once
        # (writable), so that a valid timeout never waits
        assert _outcome(lambda: _select.select([], [real], [], value)) == by_select
        p = _select.poll()
        p.register(real, _select.POLLOUT)
        assert _outcome(lambda: p.poll(value)) == by_poll
    finally:
        real.close()
    with FakeNetwork() as net:
        s = net.socket()
        assert _outcome(lambda: net.select([], [s.fileno()], [], value)) == by_select
        fp = net.poll()
        fp.register(s.fileno(), 0x004)
        assert _outcome(lambda: fp.poll(value)) == by_poll


def test_idle_passes_stop_at_the_deadline_exactly():
    with FakeNetwork(seed=0, pass_cost=0.3) as net:
        m = {}
        a, b = _pair(net)
        Spinner(a, m, 10 ** 9)
        with pytest.raises(SimulationTimeout):
            net.run(until=lambda: False, map=m, timeout=1.0)
        assert net.time() == 1.0  # not 1.2: the last idle pass stops at the deadline
        simnet.close_all(m)
        b.close()


def test_run_on_a_map_of_kernel_sockets_says_so_instead_of_spinning():
    # a channel made outside the fake network (a kernel socket): its waits are
    # real, so no virtual time passes; run() must say why, not spin forever
    import socket as real_socket

    import simnet

    with FakeNetwork(seed=0) as net:
        m: dict = {}
        chan = simnet.dispatcher(real_socket.socket(), map=m)
        try:
            with pytest.raises(ValueError, match="not on <FakeNetwork.* but on the real network"):
                net.run(until=lambda: False, timeout=1, map=m)
        finally:
            chan.close()
