"""``close()`` while ``makefile()`` objects are alive (CPython 3.11 on Linux).

Pinned facts: ``socket.close()`` only marks the Python object closed while a
file made by ``makefile()`` is open; the descriptor stays open until the last
such file closes. Until then the file keeps reading and writing, and the
socket itself still works (``fileno()`` returns the number, ``recv``,
``getpeername`` and ``select`` work; ``repr`` says ``[closed]``).
``http.client`` (a body read after the headers of a ``Connection: close``
response) and ``urllib.request`` (closes the socket right after
``getresponse()``) rely on it. ``makefile()`` on a socket closed already
gives a file whose reads fail with EBADF, and closing that file must not
touch the descriptor number, which a newer socket may own by then.
"""

from __future__ import annotations

import errno

from .harness import expect_error


def test_file_outlives_close(backend):
    cli, srv = backend.tcp_pair(blocking=True)
    fd = cli.fileno()
    reader = cli.makefile("rb")
    cli.close()
    assert "[closed]" in repr(cli) and "laddr" not in repr(cli)
    assert cli.fileno() == fd  # still open: the file holds it
    srv.sendall(b"status line\r\n")
    backend.settle()
    assert reader.readline() == b"status line\r\n"
    # the socket object itself still works, as the descriptor is open
    srv.sendall(b"xyz")
    backend.settle()
    assert cli.recv(3) == b"xyz"
    assert cli.getpeername() == srv.getsockname()
    assert backend.readiness(cli) == "w"
    srv.sendall(b"body")
    srv.close()
    backend.settle()
    assert reader.read() == b"body"
    reader.close()
    assert cli.fileno() == -1
    expect_error(OSError, errno.EBADF, cli.recv, 1)
    expect_error(OSError, errno.EBADF, cli.getpeername)


def test_descriptor_released_by_last_file(backend):
    cli, srv = backend.tcp_pair(blocking=True)
    fd = cli.fileno()
    r = cli.makefile("rb")
    w = cli.makefile("wb")
    cli.close()
    w.write(b"ping")
    w.flush()
    backend.settle()
    assert srv.recv(10) == b"ping"
    w.close()
    assert cli.fileno() == fd  # one file still open
    r.close()
    assert cli.fileno() == -1
    backend.settle()
    assert srv.recv(10) == b""  # the peer sees the FIN only now


def test_close_twice_with_file_open(backend):
    cli, srv = backend.tcp_pair(blocking=True)
    f = cli.makefile("rb")
    cli.close()
    cli.close()
    assert cli.fileno() != -1
    srv.sendall(b"a\n")
    backend.settle()
    assert f.readline() == b"a\n"
    f.close()
    assert cli.fileno() == -1


def test_makefile_on_closed_socket_leaves_new_owner_alone(backend):
    old = backend.socket()
    old.close()
    newer = backend.udp_socket()  # may reuse the descriptor number
    name = newer.getsockname()
    f = old.makefile("rb")
    expect_error(OSError, errno.EBADF, f.read, 1)
    f.close()
    # the descriptor number was not released a second time
    assert newer.getsockname() == name
    assert newer.fileno() != -1
    third = backend.udp_socket()
    assert third.fileno() != newer.fileno()
