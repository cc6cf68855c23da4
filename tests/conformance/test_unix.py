"""AF_UNIX stream sockets on Linux: where they differ from TCP.

Pinned facts (table in ``backends.py``): a non-blocking connect completes
at once (returns 0); connecting to a missing path is FileNotFoundError, to
a path nobody listens on ConnectionRefusedError; a full backlog makes a
non-blocking connect fail with EAGAIN; after the peer closes, send fails with
EPIPE immediately (no "first send succeeds" as in TCP); a peer closing with
our data unread makes our recv raise ECONNRESET once; unconnected sockets
fail with different errnos than TCP.
"""

from __future__ import annotations

import errno
import os
import socket

from .harness import expect_error

UNIX = socket.AF_UNIX


def test_connect_is_immediate_and_names_are_paths(backend):
    lst = backend.listener(UNIX)
    path = lst.getsockname()
    cli = backend.socket(UNIX)
    cli.setblocking(False)
    assert cli.connect_ex(path) == 0
    assert backend.readiness(cli) == "w"
    assert cli.getpeername() == path
    assert cli.getsockname() == ""  # unbound client: empty name
    backend.settle()
    assert backend.readiness(lst) == "r"
    conn, addr = backend.track(lst.accept())
    assert addr == ""
    assert conn.getsockname() == path and conn.getpeername() == ""


def test_stream_data_and_eof(backend):
    cli, srv = backend.tcp_pair(UNIX)
    assert backend.readiness(cli) == backend.readiness(srv) == "w"
    expect_error(BlockingIOError, errno.EAGAIN, srv.recv, 1)
    cli.send(b"hi")
    cli.send(b"there")
    backend.settle()
    assert srv.recv(100) == b"hithere"  # a stream: sends coalesce
    cli.close()
    backend.settle()
    assert backend.readiness(srv) == "rw"
    assert srv.recv(1) == b""
    # Unlike TCP, the very first send after the peer closed fails.
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"x")
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"x")
    assert srv.recv(1) == b""


def test_close_with_unread_data_resets_peer(backend):
    cli, srv = backend.tcp_pair(UNIX)
    srv.send(b"unread")
    cli.send(b"for-srv")
    backend.settle()
    cli.close()
    backend.settle()
    assert backend.readiness(srv) == "rw"
    assert srv.recv(100) == b"for-srv"
    expect_error(ConnectionResetError, errno.ECONNRESET, srv.recv, 1)
    assert srv.recv(1) == b""
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"x")


def test_shutdown_wr_half_close(backend):
    cli, srv = backend.tcp_pair(UNIX)
    cli.shutdown(socket.SHUT_WR)
    backend.settle()
    assert srv.recv(1) == b""
    expect_error(BrokenPipeError, errno.EPIPE, cli.send, b"x")
    assert srv.send(b"back") == 4
    backend.settle()
    assert cli.recv(10) == b"back"


def test_peer_shutdown_rd_makes_send_fail(backend):
    cli, srv = backend.tcp_pair(UNIX)
    cli.shutdown(socket.SHUT_RD)
    backend.settle()
    assert cli.recv(1) == b""
    assert backend.readiness(srv) == "w"
    expect_error(BrokenPipeError, errno.EPIPE, srv.send, b"x")  # TCP would accept it


def test_connect_to_missing_and_unlistened_paths(backend):
    missing = backend.unix_path("missing")
    expect_error(FileNotFoundError, errno.ENOENT, backend.socket(UNIX).connect, missing)
    assert backend.socket(UNIX).connect_ex(missing) == errno.ENOENT
    refused = backend.refused_addr(UNIX)
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED,
                 backend.socket(UNIX).connect, refused)


def test_closed_listener_leaves_a_stale_path(backend):
    lst = backend.listener(UNIX)
    path = lst.getsockname()
    lst.close()
    if backend.name == "real":
        assert os.path.exists(path)  # close() does not unlink the file
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, backend.socket(UNIX).connect, path)
    expect_error(OSError, errno.EADDRINUSE, backend.socket(UNIX).bind, path)


def test_full_backlog_nonblocking_connect_is_eagain(backend):
    lst = backend.listener(UNIX, backlog=1)
    results = []
    for _ in range(4):
        cli = backend.socket(UNIX)
        cli.setblocking(False)
        results.append(cli.connect_ex(lst.getsockname()))
    assert results == [0, 0, errno.EAGAIN, errno.EAGAIN]


def test_unconnected_socket(backend):
    sock = backend.socket(UNIX)
    expect_error(OSError, errno.ENOTCONN, sock.send, b"x")
    expect_error(OSError, errno.EINVAL, sock.recv, 1)
    expect_error(OSError, errno.ENOTCONN, sock.getpeername)
    assert sock.getsockname() == ""
    sock.shutdown(socket.SHUT_RDWR)  # no error, unlike TCP


def test_bind_existing_path(backend):
    lst = backend.listener(UNIX)
    expect_error(OSError, errno.EADDRINUSE, backend.socket(UNIX).bind, lst.getsockname())
