"""What every simnet socket decides the same way, on any network.

:class:`SocketIdentity` is the base of both socket classes simnet makes --
``simnet.fakesock.FakeSocket`` (the fake network) and
``simnet.real.FaultySocket`` (a kernel socket under a fault plan) -- and
answers the identity properties of ``socket.socket`` from the attributes
``_family``, ``_type`` (without SOCK_NONBLOCK/SOCK_CLOEXEC) and ``_proto``
that each sets when made, and makes ``makefile()`` file objects as CPython
does (counted in ``_io_refs``, so ``close()`` keeps the descriptor while a
file is open). It imports nothing from simnet, so either network
can use it without an import circle.
"""

from __future__ import annotations

import io
import socket as _socket
from typing import Any

__all__ = ["SocketIdentity"]


class SocketIdentity:
    """``family``, ``type`` and ``proto`` as ``socket.socket`` reports them
    (the enums ``AddressFamily`` and ``SocketKind``; ``proto`` an int)."""

    __slots__ = ()
    _family: int
    _type: int
    _proto: int
    _io_refs: int

    @property
    def family(self) -> _socket.AddressFamily:
        return _socket.AddressFamily(self._family)

    @property
    def type(self) -> _socket.SocketKind:
        return _socket.SocketKind(self._type)

    @property
    def proto(self) -> int:
        return self._proto

    def makefile(self, mode: str = "r", buffering: int | None = None, *,
                 encoding: str | None = None, errors: str | None = None,
                 newline: str | None = None) -> Any:
        """A file object over the socket, as ``socket.socket.makefile`` gives.

        Reads and writes go through this object's ``recv_into``/``send`` (so
        through a fault plan and a trace where there is one). As in CPython,
        ``close()`` keeps the descriptor open until every file made here is
        closed too (``_io_refs``)."""
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
        writing = "w" in mode
        reading = "r" in mode or not writing
        binary = "b" in mode
        raw = _socket.SocketIO(self, ("r" if reading else "") + ("w" if writing else ""))  # type: ignore[arg-type]
        self._io_refs += 1
        if buffering is None or buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        if reading and writing:
            buffer: Any = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        text = io.TextIOWrapper(buffer, encoding, errors, newline)
        text.mode = mode  # type: ignore[misc]
        return text
