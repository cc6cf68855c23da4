"""The AF_UNIX namespace of a fake network: filesystem paths and abstract names.

Linux has two kinds of names for Unix sockets, with different lifetimes:

* a **filesystem path**: ``bind()`` makes a socket file, which stays when the
  socket closes. A stale path refuses ``connect()`` (ECONNREFUSED) and
  ``bind()`` (EADDRINUSE) until it is unlinked (``net.unlink(path)``, what
  ``os.unlink`` does for a real one); a missing path is ENOENT.
* an **abstract name** (its first byte is NUL): no file; the name is free
  again as soon as its socket closes, and connecting to a name nobody holds
  is ECONNREFUSED. ``bind("")`` *autobinds*: the kernel picks an abstract
  name of five hex digits (here from a counter, so that runs repeat).

A name is kept in the form CPython reports it in (``getsockname``,
``accept``, ``recvfrom``): a path as ``str`` (file-system decoded, whether it
was given as str or bytes), an abstract name as ``bytes``; so the two
spellings of one name are one name, as in the kernel.

:class:`UnixNames` holds who is bound to which name; it never calls the
sockets it holds (the facade asks it and raises the errors).
"""

from __future__ import annotations

import errno
import os
from typing import Any


def canonical(name: str | bytes | bytearray) -> str | bytes:
    """*name* as CPython reports an AF_UNIX address: an abstract name
    (leading NUL) as bytes, a path (or ``""``) as str."""
    raw = os.fsencode(name) if isinstance(name, str) else bytes(name)
    if raw[:1] == b"\0":
        return raw
    return os.fsdecode(raw)


class Unnamed:
    """The address of one socket of a ``socketpair()``: no name at all (it
    reads as ``''`` from ``getsockname``/``getpeername`` and as None as a
    datagram's source), but a key its peer reaches it by, freed on close like
    an abstract name."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unnamed>"


def is_abstract(name: Any) -> bool:
    """Is canonical *name* an abstract name (not a file)? (An unnamed
    socketpair address counts as one: it goes with its socket.)"""
    return isinstance(name, (bytes, Unnamed))


class UnixNames:
    """Who is bound to which AF_UNIX name. A path whose socket closed stays,
    stale (None), until :meth:`unlink`; an abstract name goes with its socket."""

    __slots__ = ("_bound", "_auto")

    def __init__(self) -> None:
        self._bound: dict[str | bytes, Any] = {}
        self._auto = 0  # the next autobind name's number

    def __repr__(self) -> str:
        return f"<UnixNames {len(self._bound)} names>"

    def get(self, name: Any) -> Any:
        """The open socket bound to *name*, or None (no such name, or a stale path)."""
        return self._bound.get(name)

    def find(self, name: Any) -> tuple[int, Any]:
        """``(0, socket)`` for a name held by a socket, else ``(errno, None)``:
        ENOENT for a missing path, ECONNREFUSED for a stale path or an
        abstract name nobody holds."""
        sock = self._bound.get(name)
        if sock is not None:
            return 0, sock
        if name in self._bound or is_abstract(name):
            return errno.ECONNREFUSED, None
        return errno.ENOENT, None

    def bind(self, name: Any, sock: Any) -> int:
        """Bind *sock* to *name*: 0, or EADDRINUSE (held, or a stale path)."""
        if name in self._bound:
            return errno.EADDRINUSE
        self._bound[name] = sock
        return 0

    def autobind(self, sock: Any) -> bytes:
        """Bind *sock* to a free abstract name of five hex digits (Linux
        ``unix_autobind``); the name."""
        while True:
            name = b"\0%05x" % (self._auto & 0xFFFFF)
            self._auto += 1
            if name not in self._bound:
                self._bound[name] = sock
                return name

    def release(self, name: Any, sock: Any) -> None:
        """*sock*, bound to *name*, closed: an abstract name is free again, a
        path stays behind, stale."""
        if self._bound.get(name) is sock:
            if is_abstract(name):
                del self._bound[name]
            else:
                self._bound[name] = None

    def unlink(self, path: Any) -> Any:
        """Remove the file of *path*; the socket still bound to it, or None.
        Raises FileNotFoundError for a path that is not there (an abstract
        name is never a file)."""
        if is_abstract(path) or path not in self._bound:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return self._bound.pop(path)
