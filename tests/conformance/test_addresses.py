"""Which addresses a connection has (Linux 6.x, loopback).

Pinned facts:

* TCP connect to ``('0.0.0.0', port)`` -- what ``getsockname()`` of a server
  bound to ``''`` returns, a common test pattern -- or to ``('', port)``
  goes to 127.0.0.1: both ends see 127.0.0.1 as their own and the peer's
  address, whether the listener is bound to ``''``, ``0.0.0.0`` or
  ``127.0.0.1``. A listener on 127.0.0.2 is not reached that way (refused).
  IPv6 ``::`` goes to ``::1``.
* Connect to 127.0.0.2: the client's address is 127.0.0.1 (the loopback
  interface's address), the accepted socket's own address 127.0.0.2.
* A socket bound to the wildcard address gets the route's source address at
  connect (TCP and UDP): ``getsockname()`` says 127.0.0.1 afterwards.
* UDP ``connect()`` to a wildcard address: the peer is 127.0.0.1 and the
  local address 127.0.0.1; ``sendto(('0.0.0.0', port))`` delivers to
  127.0.0.1, and an unconnected sender stays bound to ``0.0.0.0``.
"""

from __future__ import annotations

import errno
import socket

import pytest

from .harness import expect_error

AF_INET, AF_INET6 = socket.AF_INET, socket.AF_INET6


def _connect(backend, listen_ip, connect_ip, family=AF_INET):
    lst = backend.socket(family)
    lst.bind((listen_ip, 0))
    lst.listen(5)
    port = lst.getsockname()[1]
    cli = backend.socket(family)
    cli.connect((connect_ip, port))
    srv, addr = backend.track(lst.accept())
    return cli, srv, addr, port


@pytest.mark.parametrize("listen_ip", ["", "0.0.0.0", "127.0.0.1"])
@pytest.mark.parametrize("connect_ip", ["0.0.0.0", ""])
def test_connect_to_wildcard_goes_to_loopback(backend, listen_ip, connect_ip):
    cli, srv, addr, port = _connect(backend, listen_ip, connect_ip)
    assert cli.getpeername() == ("127.0.0.1", port)
    assert cli.getsockname()[0] == "127.0.0.1"
    assert srv.getsockname() == ("127.0.0.1", port)
    assert srv.getpeername() == addr == cli.getsockname()


def test_connect_to_getsockname_of_server_bound_to_all(backend):
    lst = backend.socket()
    lst.bind(("", 0))
    lst.listen(5)
    assert lst.getsockname()[0] == "0.0.0.0"
    cli = backend.socket()
    cli.connect(lst.getsockname())
    srv, addr = backend.track(lst.accept())
    assert addr[0] == srv.getsockname()[0] == cli.getsockname()[0] == "127.0.0.1"


def test_wildcard_does_not_reach_a_listener_on_another_loopback_address(backend):
    lst = backend.socket()
    lst.bind(("127.0.0.2", 0))
    lst.listen(5)
    cli = backend.socket()
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, cli.connect,
                 ("0.0.0.0", lst.getsockname()[1]))


@pytest.mark.parametrize("listen_ip", ["", "127.0.0.2"])
def test_connect_to_127_0_0_2_comes_from_127_0_0_1(backend, listen_ip):
    cli, srv, addr, port = _connect(backend, listen_ip, "127.0.0.2")
    assert cli.getsockname()[0] == "127.0.0.1"
    assert cli.getpeername() == ("127.0.0.2", port)
    assert srv.getsockname() == ("127.0.0.2", port)
    assert srv.getpeername() == addr == cli.getsockname()


def test_ipv6_wildcard_goes_to_loopback(backend):
    if not backend.supports(AF_INET6):
        pytest.skip("IPv6 loopback unavailable")
    cli, srv, addr, port = _connect(backend, "::", "::", AF_INET6)
    assert cli.getpeername()[:2] == ("::1", port)
    assert cli.getsockname()[0] == srv.getsockname()[0] == addr[0] == "::1"


def test_tcp_bound_to_wildcard_gets_source_address_at_connect(backend):
    lst = backend.listener()
    cli = backend.socket()
    cli.bind(("0.0.0.0", 0))
    port = cli.getsockname()[1]
    cli.connect(lst.getsockname())
    assert cli.getsockname() == ("127.0.0.1", port)


@pytest.mark.parametrize("connect_ip", ["0.0.0.0", "", "127.0.0.1"])
def test_udp_connect_to_wildcard(backend, connect_ip):
    rcv = backend.udp_socket()
    port = rcv.getsockname()[1]
    snd = backend.socket(AF_INET, socket.SOCK_DGRAM)
    assert snd.connect_ex((connect_ip, port)) == 0
    assert snd.getpeername() == ("127.0.0.1", port)
    assert snd.getsockname()[0] == "127.0.0.1"
    snd.send(b"x")
    backend.settle()
    assert rcv.recvfrom(10) == (b"x", snd.getsockname())


def test_udp_connect_sets_the_source_of_a_wildcard_bound_socket(backend):
    snd = backend.socket(AF_INET, socket.SOCK_DGRAM)
    snd.bind(("", 0))
    port = snd.getsockname()[1]
    assert snd.getsockname() == ("0.0.0.0", port)
    snd.connect(("127.0.0.2", 9))
    assert snd.getsockname() == ("127.0.0.1", port)
    assert snd.getpeername() == ("127.0.0.2", 9)


def test_udp_sendto_wildcard_delivers_to_loopback(backend):
    rcv = backend.udp_socket()
    snd = backend.socket(AF_INET, socket.SOCK_DGRAM)
    snd.sendto(b"hi", ("0.0.0.0", rcv.getsockname()[1]))
    backend.settle()
    assert snd.getsockname()[0] == "0.0.0.0"  # unconnected: stays on the wildcard
    assert rcv.recvfrom(10) == (b"hi", ("127.0.0.1", snd.getsockname()[1]))
