"""TCP connection set-up on Linux: connect, accept, listen backlog, addresses.

Facts pinned here (see the table in ``backends.py``): a non-blocking connect
always reports EINPROGRESS, even on loopback; a refusal surfaces through
SO_ERROR (or the first recv/send), a blocking connect raises
ConnectionRefusedError; ``listen(n)`` lets n+1 connections complete before
accept and silently drops further SYNs; repeated connect calls go EALREADY,
0, EISCONN or ECONNABORTED depending on the state.
"""

from __future__ import annotations

import errno
import socket

import pytest

from .backends import LINGER_RST
from .harness import expect_error

SOL, SO_ERROR = socket.SOL_SOCKET, socket.SO_ERROR


def so_error(sock: socket.socket) -> int:
    return sock.getsockopt(SOL, SO_ERROR)


# -- successful connect ---------------------------------------------------

def test_nonblocking_connect_reports_einprogress_then_completes(backend, inet):
    lst = backend.listener(inet)
    cli = backend.socket(inet)
    cli.setblocking(False)
    assert cli.connect_ex(lst.getsockname()) == errno.EINPROGRESS
    backend.settle()
    assert backend.readiness(cli) == "w"
    assert so_error(cli) == 0
    assert backend.readiness(lst) == "r"
    conn, addr = backend.track(lst.accept())
    assert addr == cli.getsockname()
    assert cli.getpeername() == lst.getsockname()


def test_nonblocking_connect_raises_blockingioerror_via_connect(backend):
    lst = backend.listener()
    cli = backend.socket()
    cli.setblocking(False)
    expect_error(BlockingIOError, errno.EINPROGRESS, cli.connect, lst.getsockname())


def test_connect_ex_after_completion_returns_0_once_then_eisconn(backend):
    lst = backend.listener()
    cli = backend.socket()
    cli.setblocking(False)
    assert cli.connect_ex(lst.getsockname()) == errno.EINPROGRESS
    backend.settle()
    # The first connect after an EINPROGRESS one reports the completion ...
    assert cli.connect_ex(lst.getsockname()) == 0
    # ... and only then is the socket "already connected".
    assert cli.connect_ex(lst.getsockname()) == errno.EISCONN
    expect_error(OSError, errno.EISCONN, cli.connect, lst.getsockname())


def test_blocking_connect_twice_raises_eisconn(backend, inet):
    lst = backend.listener(inet)
    cli = backend.socket(inet)
    cli.connect(lst.getsockname())
    expect_error(OSError, errno.EISCONN, cli.connect, lst.getsockname())
    assert cli.connect_ex(lst.getsockname()) == errno.EISCONN


def test_accept_addresses_and_ephemeral_port(backend, inet):
    lst = backend.listener(inet)
    host, lport = lst.getsockname()[:2]
    lo, hi = backend.ephemeral_port_range()
    assert host == backend.loopback(inet)
    assert lo <= lport <= hi
    cli = backend.socket(inet)
    cli.connect(lst.getsockname())
    chost, cport = cli.getsockname()[:2]
    assert chost == backend.loopback(inet) and lo <= cport <= hi
    conn, addr = backend.track(lst.accept())
    assert addr == cli.getsockname() == conn.getpeername()
    assert conn.getsockname() == lst.getsockname() == cli.getpeername()
    if inet == socket.AF_INET6:
        assert len(addr) == 4 and addr[2:] == (0, 0)  # flowinfo, scope_id


def test_accepted_socket_is_blocking_even_if_listener_is_not(backend):
    lst = backend.listener(blocking=False)
    cli = backend.socket()
    cli.connect(lst.getsockname())
    conn, _ = backend.track(lst.accept())
    assert lst.getblocking() is False
    assert conn.getblocking() is True and conn.gettimeout() is None


def test_accept_on_empty_queue(backend):
    lst = backend.listener(blocking=False)
    expect_error(BlockingIOError, errno.EAGAIN, lst.accept)
    assert backend.readiness(lst) == ""


def test_accept_with_timeout_raises_timeouterror(backend):
    lst = backend.listener()
    lst.settimeout(0.02)
    exc = expect_error(TimeoutError, None, lst.accept)
    assert exc.args == ("timed out",)


def test_listen_without_bind_autobinds_wildcard(backend):
    lst = backend.socket()
    lst.listen(1)
    host, port = lst.getsockname()
    lo, hi = backend.ephemeral_port_range()
    assert host == "0.0.0.0" and lo <= port <= hi


def test_connect_on_listening_socket_raises_eisconn(backend):
    lst = backend.listener()
    other = backend.listener()
    expect_error(OSError, errno.EISCONN, lst.connect, other.getsockname())
    assert lst.connect_ex(other.getsockname()) == errno.EISCONN


def test_einval_misuse(backend):
    lst = backend.listener()
    cli, _ = backend.tcp_pair()
    expect_error(OSError, errno.EINVAL, lst.bind, backend.bind_addr(socket.AF_INET))
    expect_error(OSError, errno.EINVAL, cli.bind, backend.bind_addr(socket.AF_INET))
    expect_error(OSError, errno.EINVAL, cli.listen, 1)
    expect_error(OSError, errno.EINVAL, cli.accept)
    fresh = backend.socket()
    fresh.setblocking(False)
    expect_error(OSError, errno.EINVAL, fresh.accept)
    lst.listen(7)  # listen() again on a listener just changes the backlog


# -- refused connect ------------------------------------------------------

def test_blocking_connect_refused(backend, inet):
    cli = backend.socket(inet)
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, cli.connect,
                 backend.refused_addr(inet))


def test_nonblocking_connect_refused_reported_by_so_error(backend, inet):
    cli = backend.socket(inet)
    cli.setblocking(False)
    assert cli.connect_ex(backend.refused_addr(inet)) == errno.EINPROGRESS
    backend.settle()
    assert backend.readiness(cli) == "rw"
    assert so_error(cli) == errno.ECONNREFUSED
    assert so_error(cli) == 0  # reading SO_ERROR clears it
    assert backend.readiness(cli) == "rw"
    assert cli.recv(1) == b""
    expect_error(BrokenPipeError, errno.EPIPE, cli.send, b"x")
    expect_error(OSError, errno.ENOTCONN, cli.getpeername)


@pytest.mark.parametrize("first", ["recv", "send"])
def test_refused_error_goes_to_first_recv_or_send(backend, first):
    cli = backend.socket()
    cli.setblocking(False)
    assert cli.connect_ex(backend.refused_addr()) == errno.EINPROGRESS
    backend.settle()
    op = (lambda: cli.recv(1)) if first == "recv" else (lambda: cli.send(b"x"))
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, op)
    assert so_error(cli) == 0
    assert cli.recv(1) == b""
    expect_error(BrokenPipeError, errno.EPIPE, cli.send, b"x")


def test_connect_ex_again_after_refusal(backend):
    addr = backend.refused_addr()
    # SO_ERROR not read: the second connect reports the refusal itself.
    a = backend.socket()
    a.setblocking(False)
    assert a.connect_ex(addr) == errno.EINPROGRESS
    backend.settle()
    assert a.connect_ex(addr) == errno.ECONNREFUSED
    assert a.connect_ex(addr) == errno.EINPROGRESS  # a brand-new attempt
    # SO_ERROR read first: the second connect says ECONNABORTED.
    b = backend.socket()
    b.setblocking(False)
    assert b.connect_ex(addr) == errno.EINPROGRESS
    backend.settle()
    assert so_error(b) == errno.ECONNREFUSED
    assert b.connect_ex(addr) == errno.ECONNABORTED
    assert b.connect_ex(addr) == errno.EINPROGRESS
    backend.settle()
    assert so_error(b) == errno.ECONNREFUSED



def test_connect_again_after_a_refused_timeout_mode_connect(backend, inet):
    """A timeout-mode socket is non-blocking in the kernel: CPython's connect
    got EINPROGRESS, waited, and read the refusal from SO_ERROR, so the
    kernel's socket is still connecting and the next connect says
    ECONNABORTED; the one after is a brand-new attempt (refused again). A
    blocking socket's failed connect leaves it unconnected: every retry is
    a new attempt."""
    addr = backend.refused_addr(inet)
    cli = backend.socket(inet)
    cli.settimeout(5.0)
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, cli.connect, addr)
    assert so_error(cli) == 0
    assert cli.recv(1) == b""
    expect_error(BrokenPipeError, errno.EPIPE, cli.send, b"x")
    assert cli.connect_ex(addr) == errno.ECONNABORTED
    assert cli.connect_ex(addr) == errno.ECONNREFUSED
    expect_error(ConnectionAbortedError, errno.ECONNABORTED, cli.connect, addr)
    blocking = backend.socket(inet)
    blocking.settimeout(None)
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, blocking.connect, addr)
    assert blocking.connect_ex(addr) == errno.ECONNREFUSED
    assert blocking.connect_ex(addr) == errno.ECONNREFUSED


# -- listen backlog -------------------------------------------------------

@pytest.mark.parametrize("backlog", [0, 1, 2, 5])
def test_listen_backlog_completes_n_plus_one(backend, backlog):
    lst = backend.listener(backlog=backlog)
    clients = []
    for _ in range(backlog + 3):
        cli = backend.socket()
        cli.setblocking(False)
        assert cli.connect_ex(lst.getsockname()) == errno.EINPROGRESS
        clients.append(cli)
    backend.settle()
    done, stuck = clients[:backlog + 1], clients[backlog + 1:]
    assert [backend.readiness(c) for c in done] == ["w"] * len(done)
    # Further SYNs were dropped: those connects stay in progress (until the
    # SYN is retransmitted, a second later; settle() never waits for that).
    assert [backend.readiness(c) for c in stuck] == [""] * len(stuck)
    for cli in stuck:
        assert so_error(cli) == 0
        assert cli.connect_ex(lst.getsockname()) == errno.EALREADY
        expect_error(BlockingIOError, errno.EAGAIN, cli.send, b"x")
        expect_error(BlockingIOError, errno.EAGAIN, cli.recv, 1)
        expect_error(OSError, errno.ENOTCONN, cli.getpeername)
    assert backend.readiness(lst) == "r"
    accepted = []
    while True:
        try:
            accepted.append(backend.track(lst.accept()))
        except BlockingIOError:
            break
    assert len(accepted) == backlog + 1


# -- connections that die before accept -----------------------------------

def test_listener_closed_with_unaccepted_connection_resets_client(backend):
    lst = backend.listener()
    cli = backend.socket()
    cli.connect(lst.getsockname())
    cli.setblocking(False)
    lst.close()
    backend.settle()
    assert backend.readiness(cli) == "rw"
    expect_error(ConnectionResetError, errno.ECONNRESET, cli.recv, 1)
    assert cli.recv(1) == b""
    expect_error(BrokenPipeError, errno.EPIPE, cli.send, b"x")


def test_client_reset_before_accept_is_still_accepted(backend):
    lst = backend.listener()
    cli = backend.socket()
    cli.connect(lst.getsockname())
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    cli.close()
    backend.settle()
    assert backend.readiness(lst) == "r"
    conn, _ = backend.track(lst.accept())
    conn.setblocking(False)
    assert backend.readiness(conn) == "rw"
    expect_error(ConnectionResetError, errno.ECONNRESET, conn.recv, 1)
    assert conn.recv(1) == b""
    expect_error(OSError, errno.ENOTCONN, conn.getpeername)


def test_client_data_and_fin_before_accept(backend):
    lst = backend.listener()
    cli = backend.socket()
    cli.connect(lst.getsockname())
    cli.sendall(b"early")
    cli.close()
    backend.settle()
    conn, addr = backend.track(lst.accept())
    conn.setblocking(False)
    assert conn.getpeername() == addr
    assert conn.recv(100) == b"early"
    assert conn.recv(100) == b""



def test_ipv4_client_reaches_a_dual_stack_ipv6_listener(backend):
    """``socket.create_server(("", port), family=AF_INET6, dualstack_ipv6=True)``
    (or any AF_INET6 listener on ``::`` without IPV6_V6ONLY): Linux accepts
    IPv4 connections on it, from ``::ffff:127.0.0.1``."""
    lst = backend.socket(socket.AF_INET6)
    lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    lst.bind(("::", 0))
    lst.listen(5)
    cli = backend.socket(socket.AF_INET)
    cli.settimeout(5.0)
    cli.connect(("127.0.0.1", lst.getsockname()[1]))
    conn, addr = backend.track(lst.accept())
    assert addr[0] == "::ffff:127.0.0.1" and addr[1] == cli.getsockname()[1]
    assert conn.getsockname()[:2] == ("::ffff:127.0.0.1", lst.getsockname()[1])


def test_a_v6only_ipv6_listener_refuses_ipv4_clients(backend):
    """With IPV6_V6ONLY set, a listener on ``::`` takes IPv6 only: an IPv4
    connect to its port is refused (nobody listens on IPv4)."""
    lst = backend.socket(socket.AF_INET6)
    lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    lst.bind(("::", 0))
    lst.listen(5)
    cli = backend.socket(socket.AF_INET)
    cli.settimeout(5.0)
    with pytest.raises(ConnectionRefusedError):
        cli.connect(("127.0.0.1", lst.getsockname()[1]))


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM], ids=["tcp", "udp"])
@pytest.mark.parametrize("first, second, refused", [
    ((socket.AF_INET6, "::", 0), (socket.AF_INET, "127.0.0.1", 0), True),
    ((socket.AF_INET6, "::", 0), (socket.AF_INET, "0.0.0.0", 0), True),
    ((socket.AF_INET6, "::", 1), (socket.AF_INET, "127.0.0.1", 0), False),
    ((socket.AF_INET, "127.0.0.1", 0), (socket.AF_INET6, "::", 0), True),
    ((socket.AF_INET, "127.0.0.1", 0), (socket.AF_INET6, "::", 1), False),
    ((socket.AF_INET, "0.0.0.0", 0), (socket.AF_INET6, "::", 0), True),
    ((socket.AF_INET6, "::1", 0), (socket.AF_INET, "127.0.0.1", 0), False),
], ids=["v6dual-v4", "v6dual-v4any", "v6only-v4", "v4-v6dual", "v4-v6only", "v4any-v6dual",
        "v6loop-v4"])
def test_a_dual_stack_bind_holds_the_port_for_both_families(backend, kind, first, second, refused):
    """An AF_INET6 socket bound to ``::`` without IPV6_V6ONLY and an AF_INET
    socket cannot hold the same port (EADDRINUSE either way round)."""
    def make(family, host, v6only, port):
        s = backend.socket(family, kind)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
        s.bind((host, port))
        return s

    a = make(*first, 0)
    port = a.getsockname()[1]
    if refused:
        with pytest.raises(OSError) as info:
            make(*second, port)
        assert info.value.errno == errno.EADDRINUSE
    else:
        assert make(*second, port).getsockname()[1] == port
