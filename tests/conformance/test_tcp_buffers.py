"""Bounded TCP buffers on Linux: partial sends, EAGAIN, writability.

Only qualitative behaviour is asserted; exact byte counts depend on kernel
tuning (tcp_wmem, tcp_rmem, skb overhead, window scaling). What holds:

* ``setsockopt(SO_SNDBUF/SO_RCVBUF, v)`` reads back as ``2 * v`` (Linux
  doubles it for bookkeeping overhead);
* with small buffers (set *before* connect/listen, so the window is sized at
  SYN time), a non-blocking ``send`` of a big chunk returns a partial count,
  later sends raise ``BlockingIOError(EAGAIN)``, and the socket is not
  writable; the total accepted is bounded;
* once the receiver has drained everything, the sender is writable again and
  ``send`` accepts data;
* ``sendall`` on a full non-blocking socket raises BlockingIOError(EAGAIN);
  with ``settimeout(t)`` it raises TimeoutError (errno None).
"""

from __future__ import annotations

import errno
import socket

import pytest

from .harness import expect_error

SMALL = 4096
CHUNK = 10_000


def small_pair(backend, **kw):
    opts = [(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL),
            (socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)]
    return backend.tcp_pair(sockopts=opts, **kw)


def fill(sock: socket.socket) -> list:
    """Send CHUNK-sized sends until EAGAIN; return the counts (bounded loop)."""
    counts = []
    for _ in range(1000):
        try:
            counts.append(sock.send(b"a" * CHUNK))
        except BlockingIOError as exc:
            assert exc.errno == errno.EAGAIN
            return counts
    raise AssertionError(f"send never blocked: {sum(counts)} bytes accepted")


def drain(sock: socket.socket) -> int:
    total = 0
    while True:
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return total
        if not data:
            return total
        total += len(data)


def test_buffer_sizes_read_back_doubled(backend):
    cli, srv = small_pair(backend)
    assert cli.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * SMALL
    assert cli.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * SMALL
    # The accepted socket inherited the listener's settings.
    assert srv.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * SMALL


def test_full_buffers_partial_send_then_eagain(backend):
    cli, srv = small_pair(backend)
    counts = fill(cli)
    backend.settle()
    assert counts, "the first send must accept something"
    assert any(n < CHUNK for n in counts), f"no partial send: {counts}"
    total = sum(counts)
    assert total < 256 * 1024, "small buffers must bound what is accepted"
    assert backend.readiness(cli) == ""  # full, and nothing to read
    assert backend.readiness(srv) == "rw"
    expect_error(BlockingIOError, errno.EAGAIN, cli.send, b"a")
    # Drain the receiver; whatever was still in the sender's queue follows.
    received = 0
    for _ in range(100):
        received += drain(srv)
        backend.settle()
        if received == total:
            break
    assert received == total
    assert backend.readiness(cli) == "w"
    assert cli.send(b"b" * 10) == 10


def test_sendall_on_full_nonblocking_socket(backend):
    cli, srv = small_pair(backend)
    fill(cli)
    expect_error(BlockingIOError, errno.EAGAIN, cli.sendall, b"a" * CHUNK)


def test_sendall_on_full_socket_with_timeout(backend):
    cli, srv = small_pair(backend)
    cli.settimeout(0.02)
    exc = expect_error(TimeoutError, None, cli.sendall, b"a" * (1 << 20))
    assert exc.args == ("timed out",)


@pytest.mark.parametrize("size", [1 << 20, 8 << 20])
def test_big_nonblocking_send_is_partial(backend, size):
    cli, srv = small_pair(backend)
    sent = cli.send(b"x" * size)
    assert 0 < sent < size
