"""AF_UNIX names on Linux: filesystem paths and abstract names, on both backends.

Pinned facts (table in ``backends.py``): an abstract name (leading NUL) is
free again when its socket closes (a path stays behind); connecting or
sending to an abstract name nobody holds is ECONNREFUSED (a missing path:
ENOENT); ``bind("")`` autobinds to an abstract name of five hex digits, and
is a no-op on a bound socket; names come back as CPython reports them (a
path as str, an abstract name as bytes), whichever type they were given in.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import socket

from .harness import expect_error

UNIX = socket.AF_UNIX
_count = itertools.count()


def _abstract(tag: str) -> bytes:
    """A fresh abstract name (unique per process: the real namespace is shared)."""
    return f"\0simnet-conformance-{os.getpid()}-{next(_count)}-{tag}".encode()


def test_an_abstract_name_is_free_again_once_its_socket_closes(backend):
    name = _abstract("free")
    first = backend.socket(UNIX)
    first.bind(name)
    first.listen(1)
    other = backend.socket(UNIX)
    expect_error(OSError, errno.EADDRINUSE, other.bind, name)
    first.close()
    backend.settle()
    cli = backend.socket(UNIX)
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, cli.connect, name)
    other.bind(name)  # no stale file: the name is free
    assert other.getsockname() == name


def test_a_path_stays_behind_its_socket(backend):
    path = backend.unix_path("stays")
    first = backend.socket(UNIX)
    first.bind(path)
    first.close()
    expect_error(OSError, errno.EADDRINUSE, backend.socket(UNIX).bind, path)


def test_an_abstract_name_nobody_holds_refuses(backend):
    name = _abstract("nobody")
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, backend.socket(UNIX).connect, name)
    dg = backend.socket(UNIX, socket.SOCK_DGRAM)
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, dg.sendto, b"x", name)
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, dg.connect, name)
    # a missing path is another matter
    expect_error(FileNotFoundError, errno.ENOENT, dg.sendto, b"x", backend.unix_path("missing"))


def test_bind_empty_autobinds_to_an_abstract_name(backend):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        sock = backend.socket(UNIX, kind)
        sock.bind("")
        name = sock.getsockname()
        assert isinstance(name, bytes) and re.fullmatch(rb"\0[0-9a-f]{5}", name), name
        sock.bind(b"")  # bound already: nothing changes
        assert sock.getsockname() == name
        expect_error(OSError, errno.EINVAL, sock.bind, backend.unix_path("after-auto"))
    server = backend.socket(UNIX)
    server.bind("")
    server.listen(1)
    cli = backend.socket(UNIX)
    cli.connect(server.getsockname())
    backend.settle()
    conn, addr = backend.track(server.accept())
    assert addr == "" and conn.getsockname() == server.getsockname()
    assert cli.getpeername() == server.getsockname()


def test_bind_empty_on_a_bound_socket_keeps_its_path(backend):
    path = backend.unix_path("kept")
    sock = backend.socket(UNIX)
    sock.bind(path)
    sock.bind("")
    assert sock.getsockname() == path


def test_names_come_back_as_cpython_reports_them(backend):
    path = backend.unix_path("typed")
    lst = backend.socket(UNIX)
    lst.bind(os.fsencode(path))  # bytes in, str out: it is a path
    assert lst.getsockname() == path
    lst.listen(1)
    cli = backend.socket(UNIX)
    cli.connect(path)  # the str spelling names the same socket
    assert cli.getpeername() == path
    abstract = backend.socket(UNIX, socket.SOCK_DGRAM)
    name = _abstract("typed")
    abstract.bind(name.decode())  # str in, bytes out: it is an abstract name
    assert abstract.getsockname() == name
    sender = backend.socket(UNIX, socket.SOCK_DGRAM)
    sender.bind("")
    sender.sendto(b"hi", name)
    backend.settle()
    assert abstract.recvfrom(10) == (b"hi", sender.getsockname())
