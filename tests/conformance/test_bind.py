"""Binding on Linux: EADDRINUSE and SO_REUSEADDR, including TIME_WAIT.

Pinned facts (table in ``backends.py``):

* a second bind to a port that is bound or listening raises plain
  ``OSError(EADDRINUSE)`` -- unless *both* sockets set SO_REUSEADDR and the
  first one is not listening;
* a wildcard listener (0.0.0.0:p) blocks 127.0.0.1:p; 127.0.0.1:p and
  127.0.0.2:p do not conflict; TCP and UDP ports are separate;
* a listener that never accepted frees its port on close();
* a port held by an accepted connection, or by a connection in TIME_WAIT, can
  be bound again only if SO_REUSEADDR is on the new socket *and* was on the
  old listener (the accepted socket inherits it).
"""

from __future__ import annotations

import errno
import socket

import pytest

from .harness import expect_error

REUSE = (socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def bound(backend, reuse: bool, type: int = socket.SOCK_STREAM, addr=("127.0.0.1", 0)):
    sock = backend.socket(socket.AF_INET, type)
    if reuse:
        sock.setsockopt(*REUSE)
    sock.bind(addr)
    return sock


@pytest.mark.parametrize("first_reuse", [False, True], ids=["first-plain", "first-reuse"])
@pytest.mark.parametrize("second_reuse", [False, True], ids=["second-plain", "second-reuse"])
@pytest.mark.parametrize("listening", [False, True], ids=["bound", "listening"])
def test_bind_address_in_use(backend, first_reuse, second_reuse, listening):
    first = bound(backend, first_reuse)
    if listening:
        first.listen(1)
    second = backend.socket()
    if second_reuse:
        second.setsockopt(*REUSE)
    if first_reuse and second_reuse and not listening:
        second.bind(first.getsockname())
    else:
        expect_error(OSError, errno.EADDRINUSE, second.bind, first.getsockname())


def test_wildcard_listener_blocks_loopback_bind(backend):
    first = bound(backend, False, addr=("0.0.0.0", 0))
    first.listen(1)
    port = first.getsockname()[1]
    expect_error(OSError, errno.EADDRINUSE, backend.socket().bind, ("127.0.0.1", port))


def test_different_loopback_addresses_do_not_conflict(backend):
    first = bound(backend, False)
    first.listen(1)
    port = first.getsockname()[1]
    other = backend.socket()
    other.bind(("127.0.0.2", port))
    assert other.getsockname() == ("127.0.0.2", port)


def test_tcp_and_udp_ports_are_separate(backend):
    first = bound(backend, False)
    first.listen(1)
    udp = backend.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(first.getsockname())


def test_udp_bind_in_use_and_reuseaddr(backend):
    first = bound(backend, False, socket.SOCK_DGRAM)
    expect_error(OSError, errno.EADDRINUSE,
                 backend.socket(socket.AF_INET, socket.SOCK_DGRAM).bind, first.getsockname())
    shared = bound(backend, True, socket.SOCK_DGRAM)
    bound(backend, True, socket.SOCK_DGRAM, addr=shared.getsockname())


def test_closed_listener_frees_its_port(backend):
    lst = bound(backend, False)
    lst.listen(1)
    addr = lst.getsockname()
    lst.close()
    bound(backend, False, addr=addr)


@pytest.mark.parametrize("reuse", [False, True], ids=["plain", "reuseaddr"])
def test_port_held_by_accepted_connection(backend, reuse):
    lst = bound(backend, reuse)
    lst.listen(1)
    addr = lst.getsockname()
    cli = backend.socket()
    cli.connect(addr)
    backend.track(lst.accept())
    lst.close()
    new = backend.socket()
    if reuse:
        new.setsockopt(*REUSE)
        new.bind(addr)
        new.listen(1)
    else:
        expect_error(OSError, errno.EADDRINUSE, new.bind, addr)


@pytest.mark.parametrize("listener_reuse", [False, True], ids=["old-plain", "old-reuse"])
@pytest.mark.parametrize("new_reuse", [False, True], ids=["new-plain", "new-reuse"])
def test_port_in_time_wait(backend, listener_reuse, new_reuse):
    lst = bound(backend, listener_reuse)
    lst.listen(1)
    addr = lst.getsockname()
    cli = backend.socket()
    cli.connect(addr)
    conn, _ = backend.track(lst.accept())
    lst.close()
    conn.close()  # the server closes first: its end goes to TIME_WAIT
    backend.settle()
    assert cli.recv(1) == b""
    cli.close()
    backend.settle()
    new = backend.socket()
    if new_reuse:
        new.setsockopt(*REUSE)
    if listener_reuse and new_reuse:
        new.bind(addr)
    else:
        expect_error(OSError, errno.EADDRINUSE, new.bind, addr)
