"""UDP on Linux loopback: datagrams, truncation, size limits, ICMP errors.

Pinned facts (table in ``backends.py``): one recv returns one datagram
(empty datagrams included) and a short buffer truncates it, discarding the
rest; 65507 bytes is the IPv4 maximum (65527 for IPv6), one more is
EMSGSIZE; an unconnected socket never hears about ICMP port-unreachable, a
connected one reports it once as ConnectionRefusedError, on the next recv or
send (which then sends nothing).
"""

from __future__ import annotations

import errno
import socket

import pytest

from .harness import expect_error


def test_empty_socket(backend, inet):
    sock = backend.udp_socket(inet)
    assert backend.readiness(sock) == "w"
    expect_error(BlockingIOError, errno.EAGAIN, sock.recvfrom, 10)
    expect_error(BlockingIOError, errno.EAGAIN, sock.recv, 10)
    expect_error(BlockingIOError, errno.EAGAIN, sock.recvfrom_into, bytearray(10))


def test_sendto_recvfrom_preserves_boundaries(backend, inet):
    a, b = backend.udp_socket(inet), backend.udp_socket(inet)
    dest = b.getsockname()
    assert a.sendto(b"one", dest) == 3
    assert a.sendto(b"two-two", dest) == 7
    assert a.sendto(b"", dest) == 0
    assert a.sendto(b"three", dest) == 5
    backend.settle()
    assert backend.readiness(b) == "rw"
    assert b.recvfrom(100) == (b"one", a.getsockname())
    assert b.recv(100) == b"two-two"
    assert b.recvfrom(100) == (b"", a.getsockname())  # empty datagrams exist
    assert b.recv(100) == b"three"
    expect_error(BlockingIOError, errno.EAGAIN, b.recv, 100)
    assert backend.readiness(b) == "w"


def test_short_buffer_truncates_and_discards_the_rest(backend):
    a, b = backend.udp_socket(), backend.udp_socket()
    for payload in (b"abcdef", b"ghijkl", b"mnopqr"):
        a.sendto(payload, b.getsockname())
    backend.settle()
    assert b.recv(3) == b"abc"
    buf = bytearray(2)
    assert b.recvfrom_into(buf) == (2, a.getsockname())
    assert bytes(buf) == b"gh"
    assert b.recv(2, socket.MSG_PEEK) == b"mn"  # peeking keeps the datagram
    assert b.recv(100) == b"mnopqr"
    expect_error(BlockingIOError, errno.EAGAIN, b.recv, 100)


def test_recv_zero_does_not_consume_but_recvfrom_zero_does(backend):
    a, b = backend.udp_socket(), backend.udp_socket()
    a.sendto(b"abcdef", b.getsockname())
    a.sendto(b"second", b.getsockname())
    backend.settle()
    assert b.recv(0) == b""  # CPython returns early, no system call
    assert b.recvfrom(0) == (b"", a.getsockname())  # consumed "abcdef"
    assert b.recv(100) == b"second"


@pytest.mark.parametrize("family,limit", [(socket.AF_INET, 65507), (socket.AF_INET6, 65527)],
                         ids=["v4", "v6"])
def test_maximum_datagram_size(backend, family, limit):
    if not backend.supports(family):
        pytest.skip("IPv6 loopback unavailable")
    a, b = backend.udp_socket(family), backend.udp_socket(family)
    dest = b.getsockname()
    expect_error(OSError, errno.EMSGSIZE, a.sendto, b"x" * (limit + 1), dest)
    assert a.sendto(b"x" * limit, dest) == limit
    backend.settle()
    assert len(b.recv(limit + 100)) == limit


def test_unconnected_send_and_getpeername(backend):
    sock = backend.udp_socket()
    expect_error(OSError, errno.EDESTADDRREQ, sock.send, b"x")
    expect_error(OSError, errno.ENOTCONN, sock.getpeername)
    expect_error(OSError, errno.ENOTCONN, sock.shutdown, socket.SHUT_RDWR)


def test_unbound_sendto_autobinds(backend):
    b = backend.udp_socket()
    a = backend.udp_socket(bind=False)
    assert a.getsockname() == ("0.0.0.0", 0)
    a.sendto(b"x", b.getsockname())
    host, port = a.getsockname()
    assert host == "0.0.0.0" and port != 0
    backend.settle()
    assert b.recvfrom(10) == (b"x", ("127.0.0.1", port))


def test_unconnected_sendto_closed_port_reports_nothing(backend):
    sock = backend.udp_socket()
    dead = backend.refused_addr(socket.AF_INET, socket.SOCK_DGRAM)
    assert sock.sendto(b"x", dead) == 1
    backend.settle()
    assert backend.readiness(sock) == "w"
    expect_error(BlockingIOError, errno.EAGAIN, sock.recvfrom, 10)
    assert sock.sendto(b"x", dead) == 1
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def test_connected_send_to_closed_port_then_recv_refused(backend, inet):
    sock = backend.udp_socket(inet)
    sock.connect(backend.refused_addr(inet, socket.SOCK_DGRAM))
    assert sock.send(b"x") == 1
    backend.settle()
    assert backend.readiness(sock) == "rw"  # the pending error reads as readable
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, sock.recv, 10)
    assert backend.readiness(sock) == "w"
    expect_error(BlockingIOError, errno.EAGAIN, sock.recv, 10)  # reported once


def test_connected_refusal_goes_to_next_send(backend):
    sock = backend.udp_socket()
    sock.connect(backend.refused_addr(socket.AF_INET, socket.SOCK_DGRAM))
    assert sock.send(b"x") == 1
    backend.settle()
    # The error is reported by this send, which therefore sends nothing ...
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, sock.send, b"y")
    backend.settle()
    expect_error(BlockingIOError, errno.EAGAIN, sock.recv, 10)
    # ... and the next one goes out and bounces again.
    assert sock.send(b"z") == 1
    backend.settle()
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
    expect_error(BlockingIOError, errno.EAGAIN, sock.recv, 10)


def test_connected_socket_filters_sources(backend):
    peer, other = backend.udp_socket(), backend.udp_socket()
    sock = backend.udp_socket()
    sock.connect(peer.getsockname())
    assert sock.getpeername() == peer.getsockname()
    other.sendto(b"from-other", sock.getsockname())
    peer.sendto(b"from-peer", sock.getsockname())
    backend.settle()
    assert sock.recv(100) == b"from-peer"
    expect_error(BlockingIOError, errno.EAGAIN, sock.recv, 100)
    assert sock.sendto(b"anyway", other.getsockname()) == 6  # sendto still allowed
    backend.settle()
    assert other.recv(100) == b"anyway"


def test_connected_shutdown_wr_then_send_is_epipe(backend):
    peer = backend.udp_socket()
    sock = backend.udp_socket()
    sock.connect(peer.getsockname())
    sock.shutdown(socket.SHUT_WR)
    expect_error(BrokenPipeError, errno.EPIPE, sock.send, b"x")
