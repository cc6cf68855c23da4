"""Local ports of TCP connections (Linux 6.x, loopback, ``tcp_tw_reuse=2``).

Pinned facts:

* A connection is identified by its 4-tuple: two sockets bound to the same
  local port (both with SO_REUSEADDR) can connect to two different
  destinations; to the same destination the second connect fails with
  EADDRNOTAVAIL.
* So connect() (an unbound socket) shares ports between destinations: the
  28,232 ephemeral ports (32768-60999) limit the connections to *one*
  destination, not the connections in all.
* TIME_WAIT: a client that closed first leaves its 4-tuple in TIME_WAIT. A
  socket explicitly bound to that port (SO_REUSEADDR) may connect to the same
  destination at once (timestamps on, loopback). An unbound connect() skips
  such a port for 1 s (``tcp_tw_reuse_delay``), then may reuse it.

The range is shrunk for the fake network's port-exhaustion tests (the real
kernel's range cannot be changed from a test).
"""

from __future__ import annotations

import errno
import socket

import pytest

from .harness import expect_error

REUSE = (socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def _bound_client(backend, port=0):
    sock = backend.socket()
    sock.setsockopt(*REUSE)
    sock.bind(("127.0.0.1", port))
    return sock


def test_one_local_port_two_destinations(backend):
    a = backend.listener()
    b = backend.listener()
    first = _bound_client(backend)
    port = first.getsockname()[1]
    second = _bound_client(backend, port)
    first.connect(a.getsockname())
    second.connect(b.getsockname())
    assert first.getsockname() == second.getsockname() == ("127.0.0.1", port)
    third = _bound_client(backend, port)
    expect_error(OSError, errno.EADDRNOTAVAIL, third.connect, a.getsockname())


def test_bound_port_in_time_wait_reused_at_once(backend):
    lst = backend.listener(sockopts=[REUSE])
    cli = _bound_client(backend)
    port = cli.getsockname()[1]
    cli.connect(lst.getsockname())
    srv, _ = backend.track(lst.accept())
    cli.close()  # active close: the client's 4-tuple goes to TIME_WAIT
    backend.settle()
    srv.close()
    backend.settle()
    again = _bound_client(backend, port)
    again.connect(lst.getsockname())
    assert again.getsockname() == ("127.0.0.1", port)


@pytest.fixture
def small_range(backend, monkeypatch):
    if backend.name == "real":
        pytest.skip("the kernel's port range cannot be shrunk from a test")
    from simnet.fakesock import network

    monkeypatch.setattr(network, "EPHEMERAL_PORTS", (40000, 40009))
    return range(40000, 40010)


def test_connect_shares_ports_between_destinations(backend, small_range):
    a = backend.listener(backlog=16, address=("127.0.0.1", 1000))
    b = backend.listener(backlog=16, address=("127.0.0.1", 1001))
    to_a = [backend.socket() for _ in small_range]
    for sock in to_a:
        sock.connect(a.getsockname())
    assert sorted(s.getsockname()[1] for s in to_a) == list(small_range)
    to_b = [backend.socket() for _ in small_range]
    for sock in to_b:
        sock.connect(b.getsockname())  # the same ports again: other 4-tuples
    assert sorted(s.getsockname()[1] for s in to_b) == list(small_range)
    expect_error(OSError, errno.EADDRNOTAVAIL, backend.socket().connect, a.getsockname())


def test_time_wait_blocks_connect_for_one_second(backend, small_range):
    net = backend.net
    lst = backend.listener(address=("127.0.0.1", 1000), blocking=True)
    for _ in small_range:
        cli = backend.socket()
        cli.connect(lst.getsockname())
        srv, _ = backend.track(lst.accept())
        cli.close()  # client first: TIME_WAIT on the client's 4-tuple
        net.settle()
        srv.close()
    net.settle()
    expect_error(OSError, errno.EADDRNOTAVAIL, backend.socket().connect, lst.getsockname())
    net.sleep(1.0)
    late = backend.socket()
    late.connect(lst.getsockname())
    assert late.getsockname()[1] in small_range
