"""Readiness as ``select()`` reports it, state by state (Linux loopback).

Each case builds one socket state and checks ``backend.readiness(sock)``:
the letters ``r``/``w``/``x`` for readable, writable, exceptional. Linux
never reported "x" in any of these states (no urgent data is involved).

Surprises worth knowing: an unconnected or merely bound TCP (or Unix)
socket selects *readable and writable* (it reports EPOLLHUP, and select
folds HUP into "readable"); a connect stuck in SYN_SENT is neither; any error
or EOF makes a socket readable; a socket whose send buffer is full and has
nothing to read is neither.
"""

from __future__ import annotations

import errno
import socket

import pytest

from .backends import LINGER_RST

UNIX = socket.AF_UNIX


def tcp_unconnected(b):
    return b.socket()


def tcp_bound(b):
    sock = b.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def listening_idle(b):
    return b.listener()


def listening_pending(b):
    lst = b.listener()
    b.socket().connect(lst.getsockname())
    return lst


def listening_shut_down(b):
    lst = b.listener()
    lst.shutdown(socket.SHUT_RDWR)  # allowed on a listener; it stops listening
    return lst


def connected_fresh(b):
    return b.tcp_pair()[0]


def connected_with_data(b):
    cli, srv = b.tcp_pair()
    srv.send(b"x")
    return cli


def after_peer_fin(b):
    cli, srv = b.tcp_pair()
    srv.close()
    return cli


def after_peer_rst(b):
    cli, srv = b.tcp_pair()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    srv.close()
    return cli


def after_fin_then_send_drew_rst(b):
    cli, srv = b.tcp_pair()
    srv.close()
    b.settle()
    cli.send(b"x")
    return cli


def after_own_shut_wr(b):
    cli, _ = b.tcp_pair()
    cli.shutdown(socket.SHUT_WR)
    return cli


def after_own_shut_rd(b):
    cli, _ = b.tcp_pair()
    cli.shutdown(socket.SHUT_RD)
    return cli


def after_both_shut_wr(b):
    cli, srv = b.tcp_pair()
    cli.shutdown(socket.SHUT_WR)
    b.settle()
    srv.shutdown(socket.SHUT_WR)
    return cli


def connect_in_progress(b):
    lst = b.listener(backlog=0)
    first = b.socket()
    first.connect(lst.getsockname())  # fills the accept queue (backlog 0 -> 1)
    cli = b.socket()
    cli.setblocking(False)
    assert cli.connect_ex(lst.getsockname()) == errno.EINPROGRESS
    return cli


def connect_refused(b):
    cli = b.socket()
    cli.setblocking(False)
    cli.connect_ex(b.refused_addr())
    return cli


def connect_refused_error_read(b):
    cli = connect_refused(b)
    b.settle()
    assert cli.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
    return cli


def send_buffer_full(b):
    opts = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096),
            (socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)]
    cli, _ = b.tcp_pair(sockopts=opts)
    for _ in range(1000):
        try:
            cli.send(b"a" * 10_000)
        except BlockingIOError:
            return cli
    raise AssertionError("send never blocked")


def udp_fresh(b):
    return b.udp_socket()


def udp_with_datagram(b):
    sock = b.udp_socket()
    b.udp_socket().sendto(b"x", sock.getsockname())
    return sock


def udp_icmp_error_pending(b):
    sock = b.udp_socket()
    sock.connect(b.refused_addr(socket.AF_INET, socket.SOCK_DGRAM))
    sock.send(b"x")
    return sock


def unix_unconnected(b):
    return b.socket(UNIX)


def unix_listening_pending(b):
    lst = b.listener(UNIX)
    b.socket(UNIX).connect(lst.getsockname())
    return lst


def unix_connected(b):
    return b.tcp_pair(UNIX)[0]


def unix_after_peer_close(b):
    cli, srv = b.tcp_pair(UNIX)
    srv.close()
    return cli


CASES = [
    (tcp_unconnected, "rw"),
    (tcp_bound, "rw"),
    (listening_idle, ""),
    (listening_pending, "r"),
    (listening_shut_down, "rw"),
    (connected_fresh, "w"),
    (connected_with_data, "rw"),
    (after_peer_fin, "rw"),
    (after_peer_rst, "rw"),
    (after_fin_then_send_drew_rst, "rw"),
    (after_own_shut_wr, "w"),
    (after_own_shut_rd, "rw"),
    (after_both_shut_wr, "rw"),
    (connect_in_progress, ""),
    (connect_refused, "rw"),
    (connect_refused_error_read, "rw"),
    (send_buffer_full, ""),
    (udp_fresh, "w"),
    (udp_with_datagram, "rw"),
    (udp_icmp_error_pending, "rw"),
    (unix_unconnected, "rw"),
    (unix_listening_pending, "r"),
    (unix_connected, "w"),
    (unix_after_peer_close, "rw"),
]


@pytest.mark.parametrize("build,expected", CASES, ids=[f.__name__ for f, _ in CASES])
def test_select_readiness(backend, build, expected):
    sock = build(backend)
    backend.settle()
    assert backend.readiness(sock) == expected


def test_listener_after_shutdown_refuses_accept(backend):
    lst = listening_shut_down(backend)
    with pytest.raises(OSError) as info:
        lst.accept()
    assert type(info.value) is OSError and info.value.errno == errno.EINVAL


def test_readiness_is_immediate_on_synchronous_backends(backend):
    """Only for backends claiming synchronous delivery: no settle() needed."""
    if not backend.synchronous_delivery:
        pytest.skip("backend delivers on settle()")
    for _ in range(200):
        cli, srv = backend.tcp_pair()
        cli.send(b"ping")
        assert backend.readiness(srv) == "rw"
        assert srv.recv(10) == b"ping"
        srv.send(b"pong" * 100)
        assert cli.recv(1000) == b"pong" * 100
        cli.close()
        assert srv.recv(10) == b""
        srv.close()
