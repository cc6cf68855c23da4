"""A poller that keeps its registrations between passes (epoll on Linux).

``select()`` stops at FD_SETSIZE (1024) and ``poll()`` is handed every fd on
every pass; :class:`EpollPoller` registers each channel once and, on each pass,
tells the kernel only what changed. It still asks every channel's
``readable()``/``writable()`` on every pass, as asyncore's contract requires,
and delivers events with the same ``readwrite()`` as ``poll2``, so callbacks
are those of ``loop(use_poll=True)``.

Use it through ``simnet.loop(poller="epoll")``, or drive it yourself::

    with EpollPoller(map) as poller:
        while map:
            poller.poll(timeout=1.0)
"""

from __future__ import annotations

import errno
import math
import select
import selectors
from typing import Any

from simnet import _state
from simnet import asyncore as _asyncore
from simnet import timers as _timers
from simnet.real import faulty as _faulty

__all__ = ["EpollPoller"]

_IN = select.POLLIN | select.POLLPRI
_OUT = select.POLLOUT


class _SelectorsEpoll:
    """``select.epoll``'s register/modify/unregister/poll on top of ``selectors``,
    for systems without epoll (kqueue on BSD and macOS)."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()

    @staticmethod
    def _events(flags: int) -> int:
        ev = 0
        if flags & _IN:
            ev |= selectors.EVENT_READ
        if flags & _OUT:
            ev |= selectors.EVENT_WRITE
        return ev

    def register(self, fd: int, flags: int) -> None:
        self._sel.register(fd, self._events(flags))

    def modify(self, fd: int, flags: int) -> None:
        self._sel.modify(fd, self._events(flags))

    def unregister(self, fd: int) -> None:
        self._sel.unregister(fd)

    def poll(self, timeout: float = -1, maxevents: int = -1) -> list[tuple[int, int]]:
        out = []
        for key, ev in self._sel.select(None if timeout is None or timeout < 0 else timeout):
            flags = 0
            if ev & selectors.EVENT_READ:
                flags |= select.POLLIN
            if ev & selectors.EVENT_WRITE:
                flags |= select.POLLOUT
            out.append((key.fd, flags))
        return out

    def close(self) -> None:
        self._sel.close()


class EpollPoller:
    """Waits on one channel map with persistent registrations.

    *map* is the channel map (default: ``simnet.socket_map``). The counters
    ``registrations`` and ``modifications`` tell how many times the kernel was
    told about a channel; on a pass where no channel's predicates changed, they
    do not move.
    """

    def __init__(self, map: dict[int, Any] | None = None) -> None:
        self.map = _asyncore.socket_map if map is None else map
        self._ep: Any = select.epoll() if hasattr(select, "epoll") else _SelectorsEpoll()
        # fd -> (socket object, flags): the socket object tells a new socket
        # that reused a closed one's fd (the kernel dropped the old one).
        self._reg: dict[int, tuple[Any, int]] = {}
        # fds the kernel will not watch (regular files: EPERM): always ready
        self._always: dict[int, int] = {}
        self.registrations = 0
        self.modifications = 0
        self.closed = False
        # descriptors swapped for a reset placeholder (simnet.real.faulty)
        # lose their kernel registration; this is how many swaps were seen
        self._swaps = _faulty.swaps

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._reg)} registered"
        return f"<EpollPoller {state} of {len(self.map)} channels>"

    def __enter__(self) -> EpollPoller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the epoll object (the channels stay open)."""
        if not self.closed:
            self.closed = True
            self._ep.close()
            self._reg.clear()

    def _drop(self, fd: int) -> None:
        del self._reg[fd]
        self._always.pop(fd, None)
        try:
            self._ep.unregister(fd)
        except (OSError, KeyError, ValueError):
            pass  # closed already: the kernel forgot it

    def poll(self, timeout: float | None = 0.0, map: dict[int, Any] | None = None) -> None:
        """One pass: sync registrations, wait up to *timeout* seconds (bounded
        by the next timer), dispatch events, run due timers."""
        if self.closed:
            raise ValueError("this EpollPoller is closed; make a new one")
        if map is None:
            map = self.map
        elif map is not self.map:
            raise ValueError("an EpollPoller serves the map it was made for; "
                             "make one per map")
        session = None
        if not _state.simple:
            net = _state.network_for_map(map)
            if net is not None and net.is_fake:
                # fake sockets: the fake network's poll has the same semantics
                _asyncore.poll2(timeout, map)
                return
            if net is not None and getattr(net, "_wrap", False):
                session = net._session  # a RealNetwork with faults or a trace
        if not map:
            _asyncore.poll2(timeout, map)
            return
        reg = self._reg
        if self._swaps != _faulty.swaps:
            self._forget_swapped()
        ep = self._ep
        ready: list[tuple[int, int]] = []
        seen = 0
        for fd, obj in list(map.items()):
            flags = 0
            if obj.readable():
                flags = _IN
            if obj.writable() and not obj.accepting:
                flags |= _OUT
            old = reg.get(fd)
            if old is not None:
                seen += 1
                sock = obj.socket
                if old[0] is sock:
                    if old[1] != flags:
                        self._change(fd, sock, old[1], flags)
                    continue
                # same fd, new socket: the kernel dropped the old registration
                self._drop(fd)
                seen -= 1
            if flags and self._add(fd, obj.socket, flags, ready):
                seen += 1
        if len(reg) > seen:  # channels that left the map
            for fd in [fd for fd in reg if fd not in map]:
                self._drop(fd)
        timers = _timers.real_timers if _state.current is None else _state.current.timers
        if timers._heap:
            timeout = timers.bound(timeout)[0]
        if self._always or ready:
            timeout = 0.0
        if session is not None:
            timeout = session.wait_begin(timeout)  # EINTR, timed disconnects
        if timeout is None:
            timeout = -1
        elif timeout > 0:
            # epoll rounds down to milliseconds; round up so the loop does not
            # spin through the last fraction of one
            timeout = math.ceil(timeout * 1000) / 1000
        # one pass delivers every ready channel, as poll2 does (epoll's
        # default would stop at 1023)
        events = ep.poll(timeout, max(len(reg), 1))
        if session is not None:
            session.wait_end(bool(events))
            flat = session.flat
            if flat is not None:
                flat += (5, session.elapsed(), "ready", -1, [fd for fd, _ in events],
                         [[fd, ev] for fd, ev in events])
                session.bound_payload()
        for fd, flags in self._always.items():
            if fd in map:
                ready.append((fd, flags))
        get = map.get
        readwrite = _asyncore.readwrite
        for fd, flags in events:
            obj = get(fd)
            if obj is not None:
                readwrite(obj, flags)
        for fd, flags in ready:
            obj = get(fd)
            if obj is not None:
                readwrite(obj, flags)
        if timers._heap:
            timers.run_due()

    def _forget_swapped(self) -> None:
        """Drop the registrations of descriptors swapped since the last pass
        (a FaultySocket's RST: the kernel forgot the old socket, and the same
        fd number, now a placeholder, must be registered again)."""
        seen = self._swaps
        self._swaps = _faulty.swaps
        for fd, (sock, _) in list(self._reg.items()):
            if getattr(sock, "_swap", 0) > seen:
                self._drop(fd)

    def _add(self, fd: int, sock: Any, flags: int, ready: list[tuple[int, int]]) -> bool:
        """Register a channel; False when its fd is closed (reported as POLLNVAL)."""
        self._always.pop(fd, None)
        try:
            self._ep.register(fd, flags)
        except OSError as err:
            if err.errno == errno.EPERM:
                # a regular file: always ready, as poll() reports it
                self._always[fd] = flags & (_IN | _OUT)
            elif err.errno == errno.EEXIST:
                self._ep.modify(fd, flags)
            elif err.errno == errno.EBADF:
                # a closed fd left in the map: poll() would say POLLNVAL
                ready.append((fd, select.POLLNVAL))
                return False
            else:
                raise
        self._reg[fd] = (sock, flags)
        self.registrations += 1
        return True

    def _change(self, fd: int, sock: Any, old: int, flags: int) -> None:
        if fd in self._always:
            self._always[fd] = flags & (_IN | _OUT)
            self._reg[fd] = (sock, flags)
            return
        if flags:
            if old:
                try:
                    self._ep.modify(fd, flags)
                except OSError as err:
                    if err.errno != errno.ENOENT:
                        raise
                    self._ep.register(fd, flags)
            else:
                self._ep.register(fd, flags)
        else:
            # poll2 does not register a channel that wants nothing, so it
            # never hears its hang-up; neither do we
            try:
                self._ep.unregister(fd)
            except (OSError, KeyError):
                pass
        self._reg[fd] = (sock, flags)
        self.modifications += 1
