"""``os.sendfile`` and ``socket.sendfile`` on fake sockets.

Inside ``net.patch()`` ``os.sendfile(out_fd, in_fd, offset, count)`` with a
fake socket as *out_fd* reads the file (``os.pread``, or ``os.read`` and the
file position when *offset* is None) and sends through the fake socket, with
the socket's semantics: a blocking socket waits (running the simulation), a
socket with a timeout or a non-blocking one raises ``BlockingIOError``
when its send buffer is full, as the kernel's ``O_NONBLOCK`` descriptor does;
faults, traces and byte counts are those of ``send()``. It returns what was
actually sent, never more. A fake socket as *in_fd* is ``EINVAL``, as Linux
says for a socket source. Real descriptors go to the real ``os.sendfile``.

``FakeSocket.sendfile`` is ``socket.socket.sendfile``: the sendfile path for a
regular file, ``send()`` for anything else (the stdlib's fallback).
"""

from __future__ import annotations

import errno
import io
import operator
import os
import socket as _socket
from typing import Any

from simnet import _state
from simnet._pyversion import SENDFILE_BLOCKS_CAPPED

__all__ = ["fake_sendfile", "sock_sendfile", "install", "uninstall", "REAL_SENDFILE"]

REAL_SENDFILE = getattr(os, "sendfile", None)
#: The stdlib socket class (net.patch() replaces ``socket.socket`` with a factory).
_STD_SOCKET = _socket.socket

#: Most bytes one call reads from the file (a partial send, as the kernel may do).
CHUNK = 1 << 20

_MSG_DONTWAIT = int(getattr(_socket, "MSG_DONTWAIT", 0x40))

_saved: list[Any] = []


def _fake_sock(net: Any, fd: int) -> Any:
    sock = net._fds.get(fd) if net is not None else None
    if sock is None or sock._closed:
        raise OSError(errno.EBADF, "Bad file descriptor")
    return sock


def _c_integer(value: Any, ctype: str) -> int:
    """*value* as CPython converts an argument to a 64-bit C integer: any
    ``__index__`` (bools too), else TypeError; OverflowError out of range."""
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer") from None
    if not -(1 << 63) <= number < (1 << 63):
        raise OverflowError(f"Python int too large to convert to C {ctype}")
    return number


def fake_sendfile(sock: Any, in_fd: int, offset: int | None, count: int, *,
                  blocking: bool | None = None) -> int:
    """``os.sendfile`` from descriptor *in_fd* to fake socket *sock*; returns bytes sent.

    *blocking*: wait for room as a blocking descriptor does (default: when the
    socket has no timeout, as the kernel descriptor's O_NONBLOCK flag says)."""
    # as CPython converts them: count (a C ssize_t) first, then offset (a C long)
    count = _c_integer(count, "ssize_t")
    if offset is not None:
        offset = _c_integer(offset, "long")
    if count < 0 or (offset is not None and offset < 0):
        raise OSError(errno.EINVAL, "Invalid argument")
    if in_fd >= _state.FAKE_FD_BASE:
        raise OSError(errno.EINVAL, "Invalid argument")  # a socket is no sendfile source
    sock._check()
    if count == 0:
        return 0
    n = min(count, CHUNK)
    data = os.pread(in_fd, n, offset) if offset is not None else os.read(in_fd, n)
    if not data:
        return 0
    if blocking is None:
        blocking = sock._timeout is None
    try:
        sent = sock.send(data) if blocking else sock.send(data, _MSG_DONTWAIT)
    except BaseException:
        if offset is None:
            os.lseek(in_fd, -len(data), os.SEEK_CUR)
        raise
    if offset is None and sent < len(data):
        os.lseek(in_fd, sent - len(data), os.SEEK_CUR)  # the file position moves by what was sent
    return sent


def sock_sendfile(sock: Any, file: Any, offset: int = 0, count: int | None = None) -> int:
    """``socket.socket.sendfile`` for a fake socket (same checks, same fallback)."""
    std = _STD_SOCKET
    std._check_sendfile_params(sock, file, offset, count)  # type: ignore[attr-defined]
    try:
        fileno = file.fileno()
        fsize = os.fstat(fileno).st_size
    except (AttributeError, io.UnsupportedOperation, OSError):
        return _send_fallback(sock, file, offset, count)
    if not fsize:
        return 0
    if sock.gettimeout() == 0:
        raise ValueError("non-blocking sockets are not supported")
    total = 0
    try:
        while True:
            if count:
                blocksize = count - total
                if SENDFILE_BLOCKS_CAPPED:  # 3.13: at most 1 GiB a call, as without a count
                    blocksize = min(blocksize, 2 ** 30)
                if blocksize <= 0:
                    break
            else:
                blocksize = min(fsize, 2 ** 30)
            sent = fake_sendfile(sock, fileno, offset, blocksize, blocking=True)
            if sent == 0:
                break  # end of the file
            offset += sent
            total += sent
        return total
    finally:
        if total > 0 and hasattr(file, "seek"):
            file.seek(offset)


def _send_fallback(sock: Any, file: Any, offset: int, count: int | None) -> int:
    """What ``socket.sendfile`` does without ``os.sendfile``: read, ``send()``."""
    if sock.gettimeout() == 0:
        raise ValueError("non-blocking sockets are not supported")
    if offset:
        file.seek(offset)
    total = 0
    try:
        while not count or total < count:
            block = file.read(min(count - total, 8192) if count else 8192)
            if not block:
                break
            sock.sendall(block)
            total += len(block)
        return total
    finally:
        if total > 0 and hasattr(file, "seek"):
            file.seek(offset + total)


def install(net: Any) -> None:
    """Make ``os.sendfile`` serve fake sockets of *net* (real ones as before)."""
    real = os.sendfile if hasattr(os, "sendfile") else None
    _saved.append(real)
    if real is None:  # pragma: no cover - no os.sendfile on this platform
        return

    def sendfile(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        if out_fd >= _state.FAKE_FD_BASE:
            return fake_sendfile(_fake_sock(net, out_fd), in_fd, offset, count)
        if in_fd >= _state.FAKE_FD_BASE:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(out_fd, in_fd, offset, count)

    sendfile.__doc__ = "os.sendfile inside net.patch(): fake sockets send through the fake network."
    os.sendfile = sendfile


def uninstall(net: Any) -> None:
    """Undo the matching :func:`install`."""
    real = _saved.pop()
    if real is not None:
        os.sendfile = real
