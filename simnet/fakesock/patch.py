"""``net.patch()``: point the ``socket`` module at a fake network.

Inside the context, ``socket.socket`` makes fake sockets, name lookups
resolve the network's hosts, and ``select.select`` waits on the fake
network for fake sockets (a mix of real and fake is a ``ValueError``), so unmodified stdlib clients (``smtplib``,
``ftplib``, ``poplib``, ``http.client``) run on the simulation. Their
blocking calls run it, single-threaded.
"""

from __future__ import annotations

import contextlib
import errno
import select as _select
import socket as _socket
from typing import Any, Iterator

from simnet import _state
from simnet.fakesock import clock, fakessl, pollers, resolver, sendfile

_PATCHED = ("socket", "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostname", "getfqdn")


@contextlib.contextmanager
def patch_socket_module(net: Any, time: bool = False) -> Iterator[Any]:
    """Patch the ``socket`` module's constructors and resolvers, the pollers
    (and with *time*, the clocks) to use *net*."""
    if not isinstance(time, bool):
        raise TypeError(f"net.patch(): time must be True or False, got {time!r}")
    saved = {name: getattr(_socket, name) for name in _PATCHED}

    def fake_socket(family: int = -1, type: int = -1, proto: int = -1, fileno: Any = None) -> Any:
        if fileno is not None:
            # a socket around an existing kernel descriptor stays real; a fake
            # socket's number is no kernel descriptor
            if isinstance(fileno, int) and fileno >= _state.FAKE_FD_BASE:
                raise OSError(errno.EBADF, f"socket.socket(fileno={fileno}): that is a fake "
                              "socket's number, not a kernel descriptor; fake sockets cannot be "
                              "re-wrapped by number (pass the socket object itself)")
            return saved["socket"](family, type, proto, fileno)
        return net.socket(family, type, proto)

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list:
        return resolver.getaddrinfo(net._names, host, port, family, type, proto, flags)

    def gethostbyname(name: str) -> str:
        return net.resolve(name, _socket.AF_INET)

    def gethostbyname_ex(name: str) -> tuple[str, list, list]:
        return name, [], [net.resolve(name, _socket.AF_INET)]

    def gethostname() -> str:
        # the program runs on the network's host "local"; its name resolves
        return "local"

    def getfqdn(name: str = "") -> str:
        return name or "localhost"

    real_select = _select.select

    def _fd(obj: Any) -> int:
        return obj if isinstance(obj, int) else obj.fileno()

    def _any_ready(r: list, w: list) -> bool:
        socks = net._fds
        return (any((s := socks.get(_fd(o))) is not None and s._sel_r() for o in r)
                or any((s := socks.get(_fd(o))) is not None and s._sel_w() for o in w))

    def select(r: Any, w: Any, x: Any, timeout: float | None = None) -> tuple[list, list, list]:
        """select.select that waits on the fake network for fake sockets."""
        r, w, x = list(r), list(w), list(x)
        fds = [_fd(o) for o in r + w + x]
        fake = [fd >= _state.FAKE_FD_BASE for fd in fds]
        if not fds:
            # select([], [], [], t) is a sleep: in the program's world, a virtual one
            net.select([], [], [], timeout)
            return [], [], []
        if not any(fake):
            return real_select(r, w, x, timeout)
        local_fds = [fd for fd, f in zip(fds, fake) if not f]
        if local_fds and not all(map(_state.is_local_fd, local_fds)):
            raise ValueError("select() was given both real and fake sockets; a fake "
                             f"socket is waited on by its network ({net!r}) only")
        if local_fds:
            # pipes and files next to fake sockets are polled for real
            # (simnet.fakesock.local); one of them ready ends the wait too
            lr = [o for o in r if _fd(o) < _state.FAKE_FD_BASE]
            lw = [o for o in w if _fd(o) < _state.FAKE_FD_BASE]
            fr = [o for o in r if _fd(o) >= _state.FAKE_FD_BASE]
            fw = [o for o in w if _fd(o) >= _state.FAKE_FD_BASE]

            def ready() -> bool:
                return _any_ready(fr, fw) or any(real_select(lr, lw, [], 0)[:2])
        else:
            def ready() -> bool:
                return _any_ready(r, w)
        by_fd = {_fd(o): o for o in r + w + x}
        # (a timeout select.select would reject is left to net.select() to report)
        if ((timeout is None or (type(timeout) in (int, float) and 0 < timeout < 9.2e9))
                and pollers.serve_while_waiting(net, fds, timeout, ready, "select()")):
            timeout = 0.0
        rr, ww, xx = net.select([_fd(o) for o in r], [_fd(o) for o in w],
                                [_fd(o) for o in x], timeout)
        return [by_fd[fd] for fd in rr], [by_fd[fd] for fd in ww], [by_fd[fd] for fd in xx]

    saved_select = _select.select
    _select.select = select  # type: ignore[assignment]
    _socket.socket = fake_socket  # type: ignore[assignment,misc]
    _socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    _socket.gethostbyname = gethostbyname  # type: ignore[assignment]
    _socket.gethostbyname_ex = gethostbyname_ex  # type: ignore[assignment]
    _socket.getfqdn = getfqdn  # type: ignore[assignment]
    _socket.gethostname = gethostname  # type: ignore[assignment]
    pollers.install(net)
    sendfile.install(net)
    fakessl.install(net)
    if time:
        clock.install(net)
    try:
        yield net
    finally:
        if time:
            clock.uninstall(net)
        fakessl.uninstall(net)
        sendfile.uninstall(net)
        pollers.uninstall(net)
        for name, value in saved.items():
            setattr(_socket, name, value)
        _select.select = saved_select  # type: ignore[assignment]
