"""TCP data transfer and teardown on Linux: EOF, RST, half-close, dead sockets.

Pinned facts (table in ``backends.py``): an orderly close (FIN) reads as
b''; the first send to a closed peer succeeds and draws an RST, after which
sends fail with EPIPE (not ECONNRESET, because the socket had seen the FIN);
close() with unread data (or SO_LINGER (1, 0)) sends RST, which the peer
reports exactly once as ECONNRESET (after any data that arrived first); Linux
SHUT_RD does not stop data arriving; unconnected and closed sockets fail with
ENOTCONN/EPIPE and EBADF.
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


# -- plain data -------------------------------------------------------------

def test_recv_without_data(backend):
    cli, srv = backend.tcp_pair()
    expect_error(BlockingIOError, errno.EAGAIN, srv.recv, 10)
    expect_error(BlockingIOError, errno.EAGAIN, srv.recv_into, bytearray(10))
    srv.setblocking(True)
    expect_error(BlockingIOError, errno.EAGAIN, srv.recv, 10, socket.MSG_DONTWAIT)


def test_recv_with_timeout_raises_timeouterror(backend):
    cli, srv = backend.tcp_pair()
    srv.settimeout(0.02)
    exc = expect_error(TimeoutError, None, srv.recv, 10)
    assert exc.args == ("timed out",)


def test_stream_has_no_message_boundaries(backend, inet):
    cli, srv = backend.tcp_pair(inet)
    assert cli.send(b"hello") == 5
    assert cli.send(b" world") == 6
    backend.settle()
    assert srv.recv(3) == b"hel"
    assert srv.recv(100) == b"lo world"  # everything queued, up to the size
    expect_error(BlockingIOError, errno.EAGAIN, srv.recv, 100)


def test_msg_peek_leaves_data_queued(backend):
    cli, srv = backend.tcp_pair()
    cli.send(b"abcdef")
    backend.settle()
    assert srv.recv(4, socket.MSG_PEEK) == b"abcd"
    assert srv.recv(100, socket.MSG_PEEK) == b"abcdef"
    assert srv.recv(100) == b"abcdef"
    expect_error(BlockingIOError, errno.EAGAIN, srv.recv, 3, socket.MSG_PEEK)


def test_recv_into(backend):
    cli, srv = backend.tcp_pair()
    cli.send(b"abcdef")
    backend.settle()
    buf = bytearray(10)
    assert srv.recv_into(buf, 4) == 4
    assert bytes(buf) == b"abcd" + bytes(6)
    assert srv.recv_into(buf) == 2
    assert bytes(buf[:2]) == b"ef"


def test_recv_zero_is_empty_without_a_system_call(backend):
    cli, srv = backend.tcp_pair()
    assert srv.recv(0) == b""  # no data queued, yet no EAGAIN
    cli.send(b"x")
    backend.settle()
    assert srv.recv(0) == b""
    assert srv.recv(10) == b"x"  # recv(0) consumed nothing
    cli.close()
    assert cli.recv(0) == b""  # even on a closed socket


def test_send_empty_bytes(backend):
    cli, srv = backend.tcp_pair()
    assert cli.send(b"") == 0
    backend.settle()
    expect_error(BlockingIOError, errno.EAGAIN, srv.recv, 1)


def test_blocking_sendall_and_recv(backend):
    cli, srv = backend.tcp_pair(blocking=True)
    payload = bytes(range(256)) * 256  # 64 KiB fits in loopback buffers
    assert cli.sendall(payload) is None
    backend.settle()
    got = b""
    while len(got) < len(payload):
        got += srv.recv(len(payload))
    assert got == payload


# -- orderly close (FIN) ----------------------------------------------------

def test_recv_after_peer_close_is_eof(backend, inet):
    cli, srv = backend.tcp_pair(inet)
    cli_name = cli.getsockname()
    cli.send(b"last words")
    cli.close()
    backend.settle()
    assert backend.readiness(srv) == "rw"
    assert srv.recv(4) == b"last"
    assert srv.recv(100) == b" words"
    assert srv.recv(100) == b""
    assert srv.recv(100) == b""
    assert srv.recv(100, socket.MSG_PEEK) == b""
    assert srv.getpeername() == cli_name  # still known in CLOSE_WAIT
    assert so_error(srv) == 0


def test_send_after_peer_close_first_succeeds_then_epipe(backend, inet):
    cli, srv = backend.tcp_pair(inet)
    cli.close()
    backend.settle()
    assert srv.send(b"abc") == 3  # accepted locally; the dead peer answers RST
    backend.settle()
    assert backend.readiness(srv) == "rw"
    # In CLOSE_WAIT an RST sets EPIPE, not ECONNRESET.
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"abc")
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"abc")
    assert srv.recv(1) == b""
    expect_error(OSError, errno.ENOTCONN, srv.getpeername)


def test_after_fin_and_rst_recv_does_not_raise_and_so_error_is_epipe(backend):
    cli, srv = backend.tcp_pair()
    cli.close()
    backend.settle()
    srv.send(b"abc")
    backend.settle()
    assert srv.recv(1) == b""  # FIN seen: recv reports EOF, not the error
    assert so_error(srv) == errno.EPIPE
    assert so_error(srv) == 0
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"x")


def test_send_empty_after_peer_close(backend):
    cli, srv = backend.tcp_pair()
    cli.close()
    backend.settle()
    assert srv.send(b"") == 0
    assert srv.send(b"") == 0  # sends nothing, so no RST either
    assert srv.recv(1) == b""


# -- abortive close (RST) ---------------------------------------------------

def test_close_with_unread_data_sends_rst(backend, inet):
    cli, srv = backend.tcp_pair(inet)
    srv.send(b"never read")
    backend.settle()
    cli.close()  # unread data in cli's receive buffer -> RST, not FIN
    backend.settle()
    assert backend.readiness(srv) == "rw"
    expect_error(ConnectionResetError, errno.ECONNRESET, srv.recv, 10)
    assert srv.recv(10) == b""  # the error is reported once
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"x")
    expect_error(OSError, errno.ENOTCONN, srv.getpeername)


def test_rst_reported_once_to_whichever_call_comes_first(backend):
    cli, srv = backend.tcp_pair()
    srv.send(b"z")
    backend.settle()
    cli.close()
    backend.settle()
    expect_error(ConnectionResetError, errno.ECONNRESET, srv.send, b"x")
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"x")
    assert srv.recv(1) == b""


def test_rst_pending_in_so_error(backend):
    cli, srv = backend.tcp_pair()
    srv.send(b"z")
    backend.settle()
    cli.close()
    backend.settle()
    assert so_error(srv) == errno.ECONNRESET
    assert srv.recv(1) == b""


def test_data_received_before_rst_is_still_readable(backend):
    cli, srv = backend.tcp_pair()
    srv.send(b"unread")
    cli.send(b"queued-for-srv")
    backend.settle()
    cli.close()
    backend.settle()
    assert srv.recv(5) == b"queue"
    assert srv.recv(100) == b"d-for-srv"
    expect_error(ConnectionResetError, errno.ECONNRESET, srv.recv, 100)
    assert srv.recv(100) == b""


def test_so_linger_zero_close_sends_rst(backend, inet):
    cli, srv = backend.tcp_pair(inet)
    cli.send(b"data")
    backend.settle()
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    cli.close()
    backend.settle()
    assert backend.readiness(srv) == "rw"
    assert srv.recv(100) == b"data"
    expect_error(ConnectionResetError, errno.ECONNRESET, srv.recv, 100)
    assert srv.recv(100) == b""
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"x")


# -- half-close -------------------------------------------------------------

def test_shutdown_wr_half_close(backend, inet):
    cli, srv = backend.tcp_pair(inet)
    cli.shutdown(socket.SHUT_WR)
    backend.settle()
    assert backend.readiness(srv) == "rw"
    assert srv.recv(10) == b""
    assert backend.readiness(cli) == "w"
    expect_error(BrokenPipeError, errno.EPIPE, cli.send, b"x")
    assert srv.send(b"back") == 4  # the other direction still works
    backend.settle()
    assert cli.recv(10) == b"back"
    expect_error(BlockingIOError, errno.EAGAIN, cli.recv, 10)
    cli.shutdown(socket.SHUT_WR)  # again: no error
    cli.shutdown(socket.SHUT_RDWR)
    assert cli.getpeername() == srv.getsockname()


def test_both_sides_shut_wr_ends_the_connection(backend):
    cli, srv = backend.tcp_pair()
    cli.shutdown(socket.SHUT_WR)
    backend.settle()
    srv.shutdown(socket.SHUT_WR)
    backend.settle()
    assert cli.recv(1) == b"" and srv.recv(1) == b""
    assert backend.readiness(cli) == backend.readiness(srv) == "rw"
    for end in (cli, srv):
        expect_error(OSError, errno.ENOTCONN, end.getpeername)
        expect_error(OSError, errno.ENOTCONN, end.shutdown, socket.SHUT_RDWR)
        expect_error(BrokenPipeError, errno.EPIPE, end.send, b"x")


def test_shutdown_rd_does_not_stop_incoming_data(backend):
    cli, srv = backend.tcp_pair()
    srv.send(b"before")
    backend.settle()
    cli.shutdown(socket.SHUT_RD)
    backend.settle()
    assert backend.readiness(cli) == "rw"
    assert cli.recv(100) == b"before"
    assert cli.recv(100) == b""
    assert backend.readiness(srv) == "w"  # the peer is told nothing
    assert srv.send(b"after") == 5
    backend.settle()
    assert cli.recv(100) == b"after"  # Linux still queues it
    assert cli.send(b"x") == 1
    backend.settle()
    assert srv.recv(10) == b"x"


def test_data_after_shutdown_rdwr_draws_rst(backend):
    cli, srv = backend.tcp_pair()
    cli.shutdown(socket.SHUT_RDWR)
    backend.settle()
    assert srv.recv(1) == b""
    assert srv.send(b"x") == 1  # arrives at a socket that shut reading: RST
    backend.settle()
    expect_error(ConnectionResetError, errno.ECONNRESET, cli.recv, 1)
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"x")


# -- unconnected sockets ----------------------------------------------------

@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "nonblocking"])
def test_unconnected_socket(backend, inet, blocking):
    sock = backend.socket(inet)
    sock.setblocking(blocking)
    assert backend.readiness(sock) == "rw"
    expect_error(OSError, errno.ENOTCONN, sock.recv, 1)
    expect_error(BrokenPipeError, errno.EPIPE, sock.send, b"x")
    expect_error(BrokenPipeError, errno.EPIPE, sock.send, b"")
    expect_error(BrokenPipeError, errno.EPIPE, sock.sendall, b"x")
    expect_error(OSError, errno.ENOTCONN, sock.getpeername)
    wildcard = ("0.0.0.0", 0) if inet == socket.AF_INET else ("::", 0, 0, 0)
    assert sock.getsockname() == wildcard
    assert so_error(sock) == 0


@pytest.mark.parametrize("how", [socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR],
                         ids=["SHUT_RD", "SHUT_WR", "SHUT_RDWR"])
def test_shutdown_unconnected_raises_enotconn_but_takes_effect(backend, how):
    sock = backend.socket()
    expect_error(OSError, errno.ENOTCONN, sock.shutdown, how)
    if how == socket.SHUT_WR:
        expect_error(OSError, errno.ENOTCONN, sock.recv, 1)
    else:
        assert sock.recv(1) == b""  # the read side was shut after all
    expect_error(BrokenPipeError, errno.EPIPE, sock.send, b"x")


# -- closed socket objects --------------------------------------------------

def test_operations_on_closed_socket(backend):
    cli, srv = backend.tcp_pair()
    addr = srv.getsockname()
    cli.close()
    assert cli.fileno() == -1
    calls = [
        (cli.send, b"x"), (cli.send, b""), (cli.sendall, b"x"), (cli.recv, 1),
        (cli.recv_into, bytearray(1)), (cli.accept,), (cli.connect, addr),
        (cli.bind, ("127.0.0.1", 0)), (cli.listen, 1), (cli.shutdown, socket.SHUT_RDWR),
        (cli.getsockname,), (cli.getpeername,), (cli.getsockopt, SOL, SO_ERROR),
        (cli.setsockopt, SOL, socket.SO_REUSEADDR, 1), (cli.setblocking, False),
    ]
    for call in calls:
        expect_error(OSError, errno.EBADF, *call)
    assert cli.connect_ex(addr) == errno.EBADF  # returned, not raised
    assert cli.recv(0) == b""
    cli.close()  # closing twice is fine
    with pytest.raises(ValueError):
        backend.readiness(cli)  # select() refuses fd -1
