"""AF_UNIX datagram sockets: who may send to whom, and what a peer change does.

Pinned facts (Linux 6.x): connect/sendto a missing path -> ENOENT, a closed
socket's path -> ECONNREFUSED, a stream socket's path -> EPROTOTYPE, a socket
connected to another socket -> PermissionError(EPERM). ``send()`` on an
unconnected socket -> ENOTCONN. A connected socket whose peer closed: the
next ``send()`` raises ConnectionRefusedError and disconnects it (then
ENOTCONN). Leaving a peer (reconnecting elsewhere, or finding it dead)
discards the datagrams queued for us, and a live old peer connected back to
us gets SO_ERROR ECONNRESET (Linux unix_dgram_disconnected).
"""

from __future__ import annotations

import errno
import socket

from .harness import expect_error

AF_UNIX, SOCK_DGRAM = socket.AF_UNIX, socket.SOCK_DGRAM


def _bound(backend, name):
    sock = backend.socket(AF_UNIX, SOCK_DGRAM)
    sock.bind(backend.unix_path(name))
    sock.setblocking(False)
    return sock


def test_destination_errors(backend):
    a = _bound(backend, "a")
    stream = backend.listener(AF_UNIX)
    dead = _bound(backend, "dead")
    dead_path = dead.getsockname()
    dead.close()
    other, peer = _bound(backend, "other"), _bound(backend, "peer")
    other.connect(peer.getsockname())
    missing = backend.unix_path("missing")
    assert a.connect_ex(missing) == errno.ENOENT
    assert a.connect_ex(dead_path) == errno.ECONNREFUSED
    assert a.connect_ex(stream.getsockname()) == errno.EPROTOTYPE
    assert a.connect_ex(other.getsockname()) == errno.EPERM
    expect_error(FileNotFoundError, errno.ENOENT, a.sendto, b"x", missing)
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, a.sendto, b"x", dead_path)
    expect_error(OSError, errno.EPROTOTYPE, a.sendto, b"x", stream.getsockname())
    expect_error(PermissionError, errno.EPERM, a.sendto, b"x", other.getsockname())
    expect_error(OSError, errno.ENOTCONN, a.send, b"x")


def test_dead_peer_disconnects_and_discards_the_queue(backend):
    a, b = _bound(backend, "a"), _bound(backend, "b")
    a.connect(b.getsockname())
    b.connect(a.getsockname())
    b.send(b"for-a")
    b.close()
    backend.settle()
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, a.send, b"x")
    expect_error(BlockingIOError, errno.EAGAIN, a.recv, 10)  # b's datagram is gone
    expect_error(OSError, errno.ENOTCONN, a.send, b"x")
    expect_error(OSError, errno.ENOTCONN, a.getpeername)


def test_reconnect_discards_the_queue_and_resets_the_old_peer(backend):
    a, b, c = _bound(backend, "a"), _bound(backend, "b"), _bound(backend, "c")
    a.connect(b.getsockname())
    b.connect(a.getsockname())
    b.send(b"to-a")
    a.send(b"to-b")
    a.connect(c.getsockname())
    expect_error(BlockingIOError, errno.EAGAIN, a.recv, 10)
    assert b.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET
    assert b.recv(10) == b"to-b"
    expect_error(PermissionError, errno.EPERM, b.send, b"x")  # a is c's now
