"""The fake network: dispatchers, blocking stdlib clients, virtual time,
determinism, scale, and clear errors. Everything runs in virtual time."""

from __future__ import annotations

import errno
import os
import select
import smtplib
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import simnet
from simnet.examples.echo import EchoClient, EchoServer
from simnet.examples.smtp import SMTPServer
from simnet.fakesock import Deadlock, FakeNetwork, SimulationTimeout


def test_echo_dispatchers_run_on_the_fake_network():
    with FakeNetwork(seed=3) as net:
        m = {}
        server = EchoServer(("127.0.0.1", 7000), map=m)
        client = EchoClient(("127.0.0.1", 7000), [b"one\n", b"two\n"], map=m)
        net.run(until=lambda: client.received == client.expected, map=m, timeout=5)
        assert client.received == b"one\ntwo\n"
        assert server.socket.fileno() >= simnet._state.FAKE_FD_BASE
        simnet.close_all(m)


def test_latency_is_paid_in_virtual_time():
    with FakeNetwork(seed=0, latency=0.25) as net:
        m = {}
        EchoServer(("127.0.0.1", 7000), map=m)
        client = EchoClient(("127.0.0.1", 7000), [b"ping"], map=m)
        took = net.run(until=lambda: client.received == b"ping", map=m, timeout=10)
        # SYN, SYN-ACK (connected), then data there and back: 4 one-way trips
        assert took == pytest.approx(1.0)
        simnet.close_all(m)


def test_bandwidth_limits_delivery():
    with FakeNetwork(seed=0, bandwidth=1000.0) as net:
        a, b = _pair(net)
        a.sendall(b"x" * 500)
        start = net.time()
        assert b.recv(1000) == b"x" * 500  # blocking: runs the simulation
        assert net.time() - start == pytest.approx(0.5)
        a.close()
        b.close()


def _pair(net, family=socket.AF_INET):
    listener = net.socket(family, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
    listener.listen(1)
    client = net.socket(family, socket.SOCK_STREAM)
    client.connect(listener.getsockname()[:2])
    server, _ = listener.accept()
    listener.close()
    return client, server


def test_timers_use_virtual_time():
    with FakeNetwork(seed=0, start_time=100.0) as net:
        fired = []
        simnet.call_later(60.0, lambda: fired.append(net.time()))
        net.run(until=lambda: bool(fired), map={}, timeout=120)
        assert fired == [160.0]
        assert simnet.clock() == 160.0


def test_stdlib_smtplib_drives_a_dispatcher_server_single_threaded():
    with FakeNetwork(seed=11) as net, net.patch():
        net.add_host("mail.example", "10.0.0.25")
        server = SMTPServer(("10.0.0.25", 25))
        with smtplib.SMTP("mail.example", 25, timeout=30) as client:
            code, _ = client.ehlo("client.example")
            assert code == 250
            refused = client.sendmail("alice@example.org", ["bob@example.org"],
                                      "Subject: hi\r\n\r\nhello over a fake network\r\n")
            assert refused == {}
        assert server.messages == [("alice@example.org", ["bob@example.org"],
                                    b"Subject: hi\r\n\r\nhello over a fake network")]
        net.run(until=lambda: len(simnet.socket_map) == 1, timeout=5)
        server.close()


def test_sixty_second_protocol_timeout_takes_virtual_not_wall_time():
    """The server drops a silent client after 60 s; the client's blocking
    read (120 s timeout) sees the 421 and EOF at virtual t=60."""
    wall = time.monotonic()
    with FakeNetwork(seed=5) as net, net.patch():
        server = SMTPServer(("127.0.0.1", 25), idle_timeout=60.0)
        sock = socket.create_connection(("127.0.0.1", 25), timeout=120)
        greeting = sock.recv(1024)
        assert greeting.startswith(b"220 ")
        t0 = net.time()
        assert sock.recv(1024) == b"421 idle for too long, closing\r\n"
        assert net.time() - t0 == pytest.approx(60.0)
        assert sock.recv(1024) == b""
        sock.close()
        assert server.log == ["idle timeout"]
        server.close()
    # a guard, not a benchmark: no real sleeping happened (60 s virtual)
    assert time.monotonic() - wall < 10


def test_blocking_recv_times_out_at_the_virtual_deadline():
    with FakeNetwork(seed=0) as net:
        a, b = _pair(net)
        b.settimeout(2.5)
        with pytest.raises(socket.timeout, match="timed out"):
            b.recv(10)
        assert net.time() == pytest.approx(2.5)
        a.close()
        b.close()


def test_blocking_recv_that_can_never_complete_is_reported_as_deadlock():
    with FakeNetwork(seed=0) as net:
        a, b = _pair(net)
        with pytest.raises(Deadlock, match="blocking recv"):
            b.recv(10)
        a.close()
        b.close()


def test_run_reports_deadlock_with_socket_states():
    with FakeNetwork(seed=0) as net:
        m = {}

        class Waiter(simnet.dispatcher):
            def writable(self):
                return False

        a, b = _pair(net)
        Waiter(a, map=m)
        with pytest.raises(Deadlock) as info:
            net.run(until=lambda: False, map=m, timeout=10 ** 9)
        text = str(info.value)
        assert "ESTABLISHED" in text and "fd=" in text
        simnet.close_all(m)
        b.close()


def test_run_raises_simulation_timeout_with_the_seed():
    with FakeNetwork(seed=42) as net:
        simnet.call_later(1.0, lambda: simnet.call_later(1.0, print))
        with pytest.raises(SimulationTimeout, match="seed 42"):
            net.run(until=lambda: False, map={}, timeout=1.5)
        net.timers.clear()


def test_unknown_port_is_refused_never_a_hang():
    with FakeNetwork(seed=0) as net:
        s = net.socket()
        with pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", 9))
        s.setblocking(False)
        assert s.connect_ex(("127.0.0.1", 9)) == errno.EINPROGRESS
        r, w, _ = net.select([s.fileno()], [s.fileno()], [], 1.0)
        assert r and w
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        s.close()


def test_unreachable_address_times_out_after_syn_retries():
    with FakeNetwork(seed=0) as net:
        s = net.socket()
        with pytest.raises(TimeoutError) as info:
            s.connect(("192.0.2.1", 80))
        assert info.value.errno == errno.ETIMEDOUT
        assert net.time() == pytest.approx(127.0)
        s.close()


def test_closed_fake_socket_raises_ebadf_like_a_real_one():
    with FakeNetwork(seed=0) as net:
        s = net.socket()
        s.close()
        assert s.fileno() == -1
        for op in (lambda: s.recv(1), lambda: s.send(b"x"), lambda: s.bind(("127.0.0.1", 0)),
                   lambda: s.getsockname()):
            with pytest.raises(OSError) as info:
                op()
            assert info.value.errno == errno.EBADF


def test_fake_socket_in_the_real_select_is_a_value_error():
    with FakeNetwork(seed=0) as net:
        s = net.socket()
        with pytest.raises(ValueError):  # CPython's own check: fd out of range
            select.select([s], [], [], 0)
        s.close()


def test_patched_select_waits_on_the_fake_network_and_rejects_a_mix():
    with FakeNetwork(seed=0) as net, net.patch():
        a, b = _pair(net)
        assert select.select([b], [], [], 2.0) == ([], [], [])
        assert net.time() == pytest.approx(2.0)  # the wait was virtual
        a.send(b"x")
        assert select.select([b], [b], [], 2.0) == ([b], [b], [])
        # (inside the patch socket.socketpair() makes fake sockets: take the real one)
        from simnet.fakesock.pollers import REAL_SOCKETPAIR
        real_a, real_b = REAL_SOCKETPAIR()
        try:
            with pytest.raises(ValueError, match="both real and fake sockets"):
                select.select([b, real_a], [], [], 0)
            assert select.select([real_a], [real_a], [], 0)[1] == [real_a]  # real ones still work
        finally:
            real_a.close()
            real_b.close()
        a.close()
        b.close()


def test_map_mixing_real_and_fake_sockets_is_a_clear_value_error():
    m = {}
    real = simnet.dispatcher(map=m)
    real.create_socket()
    try:
        with FakeNetwork(seed=0):
            fake = simnet.dispatcher(map=m)
            fake.create_socket()
            try:
                with pytest.raises(ValueError, match="mixes real and fake sockets"):
                    simnet.poll(0, m)
                with pytest.raises(ValueError, match="mixes real and fake sockets"):
                    simnet.poll2(0, m)
            finally:
                fake.close()
    finally:
        real.close()


def test_fake_fd_numbers_never_collide_with_real_ones():
    with FakeNetwork(seed=0) as net:
        socks = [net.socket() for _ in range(5)]
        real = socket.socket()
        try:
            assert all(s.fileno() >= simnet._state.FAKE_FD_BASE for s in socks)
            assert real.fileno() < simnet._state.FAKE_FD_BASE
            assert len({s.fileno() for s in socks}) == 5
            reused = socks[2].fileno()
            socks[2].close()
            again = net.socket()  # the lowest free number, as the kernel does
            assert again.fileno() == reused
            again.close()
        finally:
            real.close()
            for s in socks:
                s.close()


DETERMINISM_SCRIPT = textwrap.dedent("""
    import simnet
    from simnet.examples.echo import EchoClient, EchoServer
    from simnet.fakesock import FakeNetwork

    with FakeNetwork(seed=1234, latency=0.01, shuffle=True) as net:
        m, events = {}, []
        EchoServer(("127.0.0.1", 7000), map=m, events=events)
        clients = [EchoClient(("127.0.0.1", 7000), [b"x" * (i + 1), b"\\n"], map=m, events=events)
                   for i in range(8)]
        ports = [c.socket.getsockname()[1] for c in clients]
        jitter = [net.rng.random() for _ in range(3)]
        net.run(until=lambda: all(c.received == c.expected for c in clients), map=m, timeout=60)
        for who, what in events:
            print(f"{net.time():.6f} {who} {what}")
        print("ports", ports, "fds", sorted(m))
        print("jitter", jitter)
        simnet.close_all(m)
""")


def test_same_seed_same_trace_in_any_process_and_hash_seed():
    outs = []
    for hashseed in ("1", "98765"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        out = subprocess.run([sys.executable, "-c", DETERMINISM_SCRIPT], capture_output=True,
                             env=env, timeout=120)
        assert out.returncode == 0, out.stderr.decode()
        outs.append(out.stdout)
    assert outs[0] == outs[1]
    assert outs[0].count(b"received") >= 8


def test_shuffle_explores_other_interleavings_with_other_seeds():
    orders = set()
    for seed in range(6):
        with FakeNetwork(seed=seed, shuffle=True) as net:
            m, events = {}, []
            EchoServer(("127.0.0.1", 7000), map=m, events=events)
            # distinct sizes, so the timeline tells the clients apart
            clients = [EchoClient(("127.0.0.1", 7000), [b"x" * (i + 1)], map=m, events=events)
                       for i in range(4)]
            net.run(until=lambda: all(c.received == c.expected for c in clients), map=m, timeout=60)
            orders.add(tuple(e for e in events))
            simnet.close_all(m)
    assert len(orders) > 1


def test_ten_thousand_concurrent_connections():
    """10,000 open TCP connections (20,000 fake sockets) in one network,
    each carrying a byte both ways."""
    n = 10_000
    with FakeNetwork(seed=0, sndbuf=4608, rcvbuf=4608) as net:
        listener = net.socket()
        listener.bind(("127.0.0.1", 80))
        listener.listen(n)
        clients = []
        for _ in range(n):
            c = net.socket()
            c.setblocking(False)
            assert c.connect_ex(("127.0.0.1", 80)) == errno.EINPROGRESS
            clients.append(c)
        net.sleep(0)  # deliver the handshakes
        servers = [listener.accept()[0] for _ in range(n)]
        assert len(net.sockets) == 2 * n + 1
        for c in clients:
            c.send(b"q")
        for s in servers:
            assert s.recv(1) == b"q"
            s.send(b"a")
        assert all(c.recv(1) == b"a" for c in clients)
        assert len({c.getsockname() for c in clients}) == n
    assert simnet._state.fake_sockets_open == 0  # leaving the network closed them all


def test_network_context_closes_what_the_test_left_open():
    with FakeNetwork(seed=0) as net:
        net.socket()
        net.socket(socket.AF_INET, socket.SOCK_DGRAM)
    assert net.sockets == [] and simnet._state.fake_sockets_open == 0
    with pytest.raises(ValueError, match="closed"):
        net.socket()


@pytest.mark.parametrize("kwargs, words", [
    ({"seed": "7"}, "seed must be an int"),
    ({"latency": -1}, "latency must be a number >= 0"),
    ({"bandwidth": 0}, "bandwidth must be"),
    ({"sndbuf": 0}, "sndbuf must be a positive int"),
])
def test_bad_network_arguments_say_what_to_do(kwargs, words):
    with pytest.raises((TypeError, ValueError), match=words):
        FakeNetwork(**kwargs)


def test_run_rejects_bad_arguments():
    with FakeNetwork(seed=0) as net:
        with pytest.raises(TypeError, match="until must be a callable"):
            net.run(until=True)
        with pytest.raises(ValueError, match="timeout must be"):
            net.run(timeout=-1)
        with pytest.raises(ValueError, match="poller must be"):
            net.run(poller="epoll2")


def test_udp_on_the_fake_network():
    with FakeNetwork(seed=0) as net:
        a = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b.bind(("127.0.0.1", 5353))
        a.sendto(b"hello world", ("127.0.0.1", 5353))
        a.sendto(b"second", ("127.0.0.1", 5353))
        data, addr = b.recvfrom(5)
        # truncated, the rest dropped; an unbound sender's datagrams leave from
        # 127.0.0.1 while its own name stays the wildcard, as on Linux
        assert data == b"hello" and addr == ("127.0.0.1", a.getsockname()[1])
        assert a.getsockname()[0] == "0.0.0.0"
        assert b.recv(100) == b"second"
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            b.recv(10)
        with pytest.raises(OSError) as info:
            a.sendto(b"x" * 65508, ("127.0.0.1", 5353))
        assert info.value.errno == errno.EMSGSIZE
        a.connect(("127.0.0.1", 9999))
        a.send(b"nobody")
        with pytest.raises(ConnectionRefusedError):
            a.recv(10)
        a.close()
        b.close()


def test_unix_stream_sockets():
    with FakeNetwork(seed=0) as net:
        srv = net.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind("/tmp/simnet.sock")
        srv.listen(1)
        c = net.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        assert c.connect_ex("/tmp/simnet.sock") == 0  # Unix connects at once
        conn, addr = srv.accept()
        assert addr == "" and c.getpeername() == "/tmp/simnet.sock"
        c.send(b"over unix")
        assert conn.recv(100) == b"over unix"
        nobody = net.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with pytest.raises(FileNotFoundError):
            nobody.connect("/tmp/nobody.sock")
        for s in (srv, c, conn, nobody):
            s.close()


def test_leaving_the_network_takes_its_channels_out_of_the_maps():
    m = {}
    with FakeNetwork(seed=0):
        server = EchoServer(("127.0.0.1", 7000))           # default map
        client = EchoClient(("127.0.0.1", 7000), [b"x"], map=m)
        assert server in simnet.socket_map.values() and client in m.values()
    assert not any(obj is server for obj in simnet.socket_map.values())
    assert m == {}
