"""What every simnet socket decides the same way, on any network.

:class:`SocketIdentity` is the base of both socket classes simnet makes --
``simnet.fakesock.FakeSocket`` (the fake network) and
``simnet.real.FaultySocket`` (a kernel socket under a fault plan) -- and
answers the identity properties of ``socket.socket`` from the attributes
``_family``, ``_type`` (without SOCK_NONBLOCK/SOCK_CLOEXEC) and ``_proto``
that each sets when made. It imports nothing from simnet, so either network
can use it without an import circle.
"""

from __future__ import annotations

import socket as _socket

__all__ = ["SocketIdentity"]


class SocketIdentity:
    """``family``, ``type`` and ``proto`` as ``socket.socket`` reports them
    (the enums ``AddressFamily`` and ``SocketKind``; ``proto`` an int)."""

    __slots__ = ()
    _family: int
    _type: int
    _proto: int

    @property
    def family(self) -> _socket.AddressFamily:
        return _socket.AddressFamily(self._family)

    @property
    def type(self) -> _socket.SocketKind:
        return _socket.SocketKind(self._type)

    @property
    def proto(self) -> int:
        return self._proto
