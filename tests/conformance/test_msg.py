"""``sendmsg``/``recvmsg``, ``MSG_TRUNC``, datagram socket pairs, the inheritable flag.

Pinned facts (this machine's kernel, CPython 3.11):

* ``recvmsg(n)`` returns ``(data, [], msg_flags, address)``; a datagram
  longer than *n* is cut and ``msg_flags`` has ``MSG_TRUNC``; a stream's
  address is None.
* ``recv(n, MSG_TRUNC)`` on a datagram socket returns as many bytes as the
  datagram had (CPython sizes the bytes object to the kernel's count: past
  the first *n* bytes the content was never written, so only the length and
  the first *n* bytes are compared); ``recv_into(buf, n, MSG_TRUNC)``
  returns the whole length and writes *n* bytes.
* ``socketpair(AF_UNIX, SOCK_DGRAM)``: unnamed ends (``''``), connected to
  each other; a datagram's source is None; once one end closes, the other's
  ``send`` is ECONNREFUSED and then it is not connected (ENOTCONN).
"""

from __future__ import annotations

import errno
import socket

import pytest

from .harness import expect_error

MSG_TRUNC, MSG_PEEK = socket.MSG_TRUNC, socket.MSG_PEEK


def _dgram_pair(backend, kind):
    """(sender, receiver) of datagrams: UDP on loopback or a Unix pair."""
    if kind == "udp":
        a = backend.udp_socket()
        b = backend.udp_socket()
        a.connect(b.getsockname())
        return a, b
    a, b = backend.socketpair(socket.SOCK_DGRAM)
    b.setblocking(False)
    return a, b


@pytest.mark.parametrize("kind", ["udp", "unix"])
def test_recvmsg_reports_a_cut_datagram(backend, kind):
    a, b = _dgram_pair(backend, kind)
    a.sendmsg([b"hel", b"lo ", b"world"])
    backend.settle()
    data, anc, flags, addr = b.recvmsg(3)
    assert (data, anc, flags) == (b"hel", [], MSG_TRUNC)
    assert addr == (a.getsockname() if kind == "udp" else None)
    a.send(b"whole")
    backend.settle()
    assert b.recvmsg(100)[:3] == (b"whole", [], 0)
    a.send(b"spread out")
    backend.settle()
    bufs = [bytearray(4), bytearray(4)]
    n, anc, flags, _ = b.recvmsg_into(bufs)
    assert (n, anc, flags, bytes(bufs[0]), bytes(bufs[1])) == (8, [], MSG_TRUNC, b"spre", b"ad o")
    expect_error(BlockingIOError, errno.EAGAIN, b.recvmsg, 10)


@pytest.mark.parametrize("kind", ["udp", "unix"])
@pytest.mark.parametrize("flags", [MSG_TRUNC, MSG_TRUNC | MSG_PEEK])
def test_msg_trunc_returns_the_datagrams_length(backend, kind, flags):
    a, b = _dgram_pair(backend, kind)
    for _ in range(4):
        a.send(b"hello world")
    backend.settle()
    data = b.recv(3, flags)
    assert (len(data), data[:3]) == (11, b"hel")
    if flags & MSG_PEEK:
        b.recv(100)
    data, _ = b.recvfrom(5, flags)
    assert (len(data), data[:5]) == (11, b"hello")
    if flags & MSG_PEEK:
        b.recv(100)
    buf = bytearray(4)
    assert b.recv_into(buf, 4, flags) == 11
    assert bytes(buf) == b"hell"


def test_recvmsg_on_a_stream(backend):
    cli, srv = backend.tcp_pair()
    cli.sendmsg([b"ab", memoryview(b"cd")])
    backend.settle()
    assert srv.recvmsg(3) == (b"abc", [], 0, None)
    assert srv.recvmsg(10) == (b"d", [], 0, None)
    with pytest.raises(ValueError):
        srv.recvmsg(-1)


def test_unix_datagram_pair(backend):
    a, b = backend.socketpair(socket.SOCK_DGRAM)
    b.setblocking(False)
    assert (a.getsockname(), a.getpeername(), a.type, a.family) == (
        "", "", socket.SOCK_DGRAM, socket.AF_UNIX)
    a.send(b"x")
    b.send(b"yy")
    backend.settle()
    assert b.recvfrom(10) == (b"x", None)
    assert a.recv(10) == b"yy"
    b.close()
    backend.settle()
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, a.send, b"q")
    expect_error(OSError, errno.ENOTCONN, a.getpeername)
    expect_error(OSError, errno.ENOTCONN, a.send, b"q")


def test_a_datagram_pair_keeps_what_was_queued_when_the_sender_closes(backend):
    a, b = backend.socketpair(socket.SOCK_DGRAM)
    b.setblocking(False)
    a.send(b"1")
    a.close()
    backend.settle()
    assert b.recv(10) == b"1"
    expect_error(BlockingIOError, errno.EAGAIN, b.recv, 10)


def test_inheritable_flag(backend):
    sock = backend.socket()
    assert sock.get_inheritable() is False
    sock.set_inheritable(True)
    assert sock.get_inheritable() is True
    sock.set_inheritable(0)
    assert sock.get_inheritable() is False
    with pytest.raises(TypeError):
        sock.set_inheritable("x")
    sock.close()
    expect_error(OSError, errno.EBADF, sock.get_inheritable)
    expect_error(OSError, errno.EBADF, sock.set_inheritable, True)
