"""``net.patch()``: point the ``socket`` module at a fake network.

Inside the context, ``socket.socket`` makes fake sockets and name lookups
resolve the network's hosts, so unmodified stdlib clients (``smtplib``,
``ftplib``, ``poplib``, ``http.client``) run on the simulation. Their
blocking calls run it, single-threaded.
"""

from __future__ import annotations

import contextlib
import socket as _socket
from typing import Any, Iterator

_PATCHED = ("socket", "getaddrinfo", "gethostbyname", "gethostbyname_ex", "getfqdn")


def _port_number(port: Any) -> int:
    if port is None:
        return 0
    if isinstance(port, int):
        return port
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        try:
            return _socket.getservbyname(port)
        except OSError:
            raise _socket.gaierror(_socket.EAI_SERVICE, "Servname not supported for ai_socktype") from None
    raise TypeError(f"getaddrinfo() argument 2 must be integer or string, not {type(port).__name__}")


@contextlib.contextmanager
def patch_socket_module(net: Any) -> Iterator[Any]:
    """Patch the ``socket`` module's constructors and resolvers to use *net*."""
    saved = {name: getattr(_socket, name) for name in _PATCHED}

    def fake_socket(family: int = -1, type: int = -1, proto: int = -1, fileno: Any = None) -> Any:
        return net.socket(family, type, proto, fileno)

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list:
        portno = _port_number(port)
        families = [family] if family else [_socket.AF_INET, _socket.AF_INET6]
        types = [type] if type else [_socket.SOCK_STREAM, _socket.SOCK_DGRAM, _socket.SOCK_RAW]
        results = []
        for fam in families:
            if fam not in (_socket.AF_INET, _socket.AF_INET6):
                continue
            if host is None:
                ip = ("0.0.0.0" if fam == _socket.AF_INET else "::") if flags & _socket.AI_PASSIVE \
                    else ("127.0.0.1" if fam == _socket.AF_INET else "::1")
            else:
                try:
                    ip = net.resolve(host, fam)
                except _socket.gaierror:
                    if family:
                        raise
                    continue
                if fam == _socket.AF_INET6 and ip.startswith("::ffff:"):
                    continue
            addr = (ip, portno) if fam == _socket.AF_INET else (ip, portno, 0, 0)
            for kind in types:
                p = {_socket.SOCK_STREAM: _socket.IPPROTO_TCP,
                     _socket.SOCK_DGRAM: _socket.IPPROTO_UDP}.get(kind, 0)
                results.append((_socket.AddressFamily(fam), _socket.SocketKind(kind), p, "", addr))
        if not results:
            raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
        return results

    def gethostbyname(name: str) -> str:
        return net.resolve(name, _socket.AF_INET)

    def gethostbyname_ex(name: str) -> tuple[str, list, list]:
        return name, [], [net.resolve(name, _socket.AF_INET)]

    def getfqdn(name: str = "") -> str:
        return name or "localhost"

    _socket.socket = fake_socket  # type: ignore[assignment,misc]
    _socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    _socket.gethostbyname = gethostbyname  # type: ignore[assignment]
    _socket.gethostbyname_ex = gethostbyname_ex  # type: ignore[assignment]
    _socket.getfqdn = getfqdn  # type: ignore[assignment]
    try:
        yield net
    finally:
        for name, value in saved.items():
            setattr(_socket, name, value)
