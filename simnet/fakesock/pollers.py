"""Pollers for fake sockets: ``select.poll``, ``select.epoll``, ``selectors`` and ``socketpair``.

Inside ``net.patch()`` the ``select`` module's ``poll`` and ``epoll`` are the
classes of this module, and the stdlib selectors that wrap them
(``selectors.PollSelector``, ``selectors.EpollSelector`` and so
``DefaultSelector``) build on them. They behave as Linux's do, seen through
CPython 3.11:

* ``poll``: the event mask is a C ``unsigned short``; ``modify`` of an fd
  that was never registered raises ``FileNotFoundError`` (ENOENT),
  ``unregister`` raises ``KeyError``; timeouts are milliseconds (``None`` or
  negative: no limit); a registered fd that was closed is reported with
  ``POLLNVAL``; ``POLLERR``/``POLLHUP`` are reported whether asked or not.
* ``epoll``: ``register`` twice raises ``FileExistsError`` (EEXIST);
  ``modify``/``unregister`` of an unregistered fd ``FileNotFoundError``
  (ENOENT); registering a descriptor that is not open ``OSError`` (EBADF);
  closing a registered socket drops it from the set silently (a new socket
  that reuses its number is not registered); level-triggered by default,
  ``EPOLLET`` reports a socket again only after something happened to it
  (data arrived, data left, the peer closed, a connection was queued...),
  ``EPOLLONESHOT`` disables it after one report until ``modify``; timeouts are
  seconds, rounded up to whole milliseconds; ``close``, ``closed``,
  ``fileno`` (a real epoll descriptor, so numbers never clash) and
  ``fromfd``.

Both are *hybrid*: a real descriptor registered on them is served by a real
kernel poller underneath, so code inside the patch that polls real pipes or
sockets keeps working. One poller mixing real and fake descriptors cannot be
waited on (the fake network cannot wait on the kernel): ``poll()`` raises a
``ValueError`` saying so.

What cannot be covered: a program that took the *real* ``select.epoll`` or
``select.poll`` before the patch (``from select import epoll`` at import
time, a selector made before entering the patch) hands fake sockets to the
kernel. The kernel answers ``EBADF`` (epoll) or ``POLLNVAL`` (poll); import
such modules, and make their selectors, inside the patch.
"""

from __future__ import annotations

import errno
import weakref
import select as _select
import socket as _socket
from typing import Any, Callable

from simnet import _state
from simnet.fakesock.args import pytime_ns

__all__ = ["poll", "epoll", "socketpair", "active_network", "install", "uninstall"]

_POLLIN = 0x001
_POLLPRI = 0x002
_POLLOUT = 0x004
_POLLERR = 0x008
_POLLHUP = 0x010
_POLLNVAL = 0x020
_POLLRDNORM = 0x040
_POLLWRNORM = 0x100
_POLLRDHUP = 0x2000
_EPOLLEXCLUSIVE = 1 << 28
_EPOLLONESHOT = 1 << 30
_EPOLLET = 1 << 31

#: The stdlib's own objects, saved at import (the patch swaps them).
REAL_POLL = _select.poll
REAL_EPOLL = getattr(_select, "epoll", None)
REAL_SOCKETPAIR = _socket.socketpair

#: Networks whose patch is active, innermost last.
_active: list[Any] = []


def active_network() -> Any:
    """The network of the innermost active ``net.patch()``, or None."""
    return _active[-1] if _active else None


def _fdnum(obj: Any) -> int:
    """The file number of *obj* (an int or an object with ``fileno()``), as CPython checks it."""
    if isinstance(obj, int) and not isinstance(obj, bool):
        fd = obj
    elif isinstance(obj, bool):
        fd = int(obj)
    else:
        try:
            meth = obj.fileno
        except AttributeError:
            raise TypeError("argument must be an int, or have a fileno() method.") from None
        fd = meth()
        if not isinstance(fd, int):
            raise TypeError("fileno() returned a non-integer")
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return fd


def _is_fake(fd: int) -> bool:
    return fd >= _state.FAKE_FD_BASE


def _net_for(poller_net: Any, fd: int, call: str) -> Any:
    """The network that owns fake descriptor *fd*."""
    if poller_net is not None and not poller_net.closed:
        return poller_net
    net = active_network()
    if net is None:
        raise ValueError(f"{call}: fd {fd} is a fake socket's, but no net.patch() is active "
                         "(a fake poller waits on the network whose patch made it)")
    return net


def events_of(sock: Any) -> int:
    """Everything Linux's poll would say about fake socket *sock* now
    (``tcp_poll``): the ``_poll_mask`` bits plus RDNORM, WRNORM and RDHUP."""
    mask = sock._poll_mask()
    if mask & _POLLIN:
        mask |= _POLLRDNORM
    if mask & _POLLOUT:
        mask |= _POLLWRNORM
    end = sock._end
    if end is not None:
        if end.fin_rcvd or end.rd_shut or end.reset:
            mask |= _POLLRDHUP
    elif sock._state == "refused" or sock._shut & 1:
        mask |= _POLLRDHUP
    return mask


_IN_SIDE = _POLLIN | _POLLPRI | _POLLRDNORM | 0x080 | _POLLRDHUP


def _wakeups(sock: Any, mask: int) -> tuple:
    """A value that changes whenever Linux would wake an epoll waiter
    interested in *mask* for *sock* (edge-triggered registrations are
    reported again on such a wake-up): state changes for every waiter (a FIN
    either way, shutdown, reset, an error), data or a connection arriving for
    the reading side, the peer reading from a Unix stream for the writing
    side (Linux's unix_write_space; a TCP writer is woken only after a full
    buffer, which changes the events themselves). Checked against Linux by
    tests/test_patch_pollers.py."""
    end = sock._end
    if end is not None:
        # state changes (a FIN either way, shutdown, reset, an error) wake
        # every waiter (sk_state_change has no event key)
        wake: tuple = (end.reset, end.err, sock._state, end.fin_rcvd, end.wr_shut, end.rd_shut)
        if mask & _IN_SIDE:
            wake += (end.bytes_in,)
        if mask & (_POLLOUT | _POLLWRNORM) and sock._family == _socket.AF_UNIX:
            peer = end.peer
            wake += (None if peer is None else peer.bytes_in - len(peer.rbuf),)
        return wake
    listener, dq = sock._listener, sock._dq
    return (len(listener.queue) if listener is not None else 0, sock._calls["accept"],
            len(dq) if dq is not None else 0, dq.charged if dq is not None else 0,
            sock._calls["recv"], sock._err, sock._state)


def _timeout_ms(timeout: Any, unit_ns: int) -> int | None:
    """A poll/epoll timeout checked and converted as CPython does (*unit_ns*:
    nanoseconds per unit, 10**6 for poll's milliseconds, 10**9 for epoll's
    seconds): whole milliseconds rounded away from zero, None for 'no limit'
    (None or negative). Errors: NaN ValueError; a float out of the 64-bit
    nanosecond range "timestamp out of range for platform time_t", an int
    "timestamp too large to convert to C (_)PyTime_t"; beyond a C int of
    milliseconds "timeout is too large"; not a number TypeError."""
    if timeout is None:
        return None
    ns = pytime_ns(timeout, unit_ns, "timeout must be an integer or None")
    ms = -(-ns // 1_000_000) if ns >= 0 else ns // 1_000_000
    if not -(1 << 31) <= ms < (1 << 31):
        raise OverflowError("timeout is too large")
    return None if ms < 0 else ms


def serve_while_waiting(net: Any, fds: Any, seconds: float | None, ready: Callable[[], bool],
                        what: str) -> bool:
    """A program's own wait (``select.select``, ``poll``, ``epoll``, a
    selector) on fake sockets is a blocking call: like a blocking socket
    call, it runs the simulation -- the dispatcher maps this network serves,
    foreign loop steps, timers -- until *ready()* or *seconds* pass, as the
    server in another thread would on real loopback while the program waits.

    Only when the wait is not part of a loop pass (no pump step running) and
    none of the waited file numbers *fds* belongs to a served map (a program
    that polls a map's own sockets runs that map itself). Returns True when
    it waited (the caller then answers with a zero timeout), False when the
    caller waits as before."""
    if net._pumping or seconds == 0 or net.closed:
        return False
    from simnet import asyncore

    maps = [asyncore.socket_map] + list(net._maps)
    if not any(m for m in maps) and not net._pumps:
        return False
    waited = set(fds)
    for m in maps:
        for key in list(m):
            fd = key if isinstance(key, int) else getattr(key, "_fd", None)
            if fd in waited:
                return False
    try:
        net.block(ready, seconds, what)
    except TimeoutError:
        pass
    return True


def _network_poll(net: Any, ms: float | None, results: Callable[[], list],
                  fds: Any = None, what: str = "poll()") -> list:
    """Wait as the network's own ``poll()`` does (EINTR faults, idle-pass
    accounting, tracing), with *results* as the readiness answer.

    Inside a pump step (``net.add_pump``) the world is paused while the step
    runs, so the poll does not wait: it answers what is ready now, and when
    the step asked for a timeout, the network wakes the loop again when that
    timeout would have ended (an event at that virtual time), as the real
    loop would have woken up."""
    if net._pumping and ms != 0:
        if ms is not None and ms > 0:
            _wake_at(net, net._now + ms / 1000.0)
        ms = 0
    if fds is not None and serve_while_waiting(
            net, fds, None if ms is None or ms < 0 else ms / 1000.0,
            lambda: bool(results()), what):
        ms = 0
    waiter = _waiter_class()(net)
    waiter._answer = results
    return waiter.poll(ms)


_WAITER: Any = None


def _waiter_class() -> Any:
    """``network._FakePoll`` whose readiness answer is a given function."""
    global _WAITER
    if _WAITER is None:
        from simnet.fakesock.network import _FakePoll

        class _Waiter(_FakePoll):
            _answer: Callable[[], list]

            def _results(self) -> list[tuple[int, int]]:
                return self._answer()

        _WAITER = _Waiter
    return _WAITER


def _wake_at(net: Any, when: float) -> None:
    """Make sure something happens on *net* at virtual time *when* (once)."""
    pending = net.__dict__.setdefault("_pump_wakeups", set())
    if when in pending:
        return
    pending.add(when)
    net.schedule(when - net._now, pending.discard, when)


def _mixed(call: str, net: Any) -> ValueError:
    return ValueError(f"{call} was given both real and fake descriptors; fake sockets are "
                      f"waited on by their network ({net!r}) and real ones by the kernel, "
                      "so one poller cannot wait on both (use a fake socketpair() for wake-ups)")


class poll:
    """``select.poll()`` inside ``net.patch()``: fake sockets wait on the network.

    A poller made inside the patch keeps its network; real descriptors
    registered on it are polled by a real ``select.poll`` underneath.
    """

    def __init__(self) -> None:
        self._net = active_network()
        self._masks: dict[int, int] = {}
        self._real: Any = None

    def __repr__(self) -> str:
        return f"<simnet poll fds={sorted(self._masks)} network={self._net!r}>"

    def register(self, fd: Any, eventmask: int = _POLLIN | _POLLPRI | _POLLOUT) -> None:
        """Watch *fd* for *eventmask* (a C unsigned short); registering again modifies it."""
        fd = _fdnum(fd)
        eventmask = _ushort(eventmask)
        if not _is_fake(fd):
            if self._real is None:
                self._real = REAL_POLL()
            self._real.register(fd, eventmask)
        self._masks[fd] = eventmask

    def modify(self, fd: Any, eventmask: int) -> None:
        """Change the mask of a registered *fd*; ENOENT when it is not registered."""
        fd = _fdnum(fd)
        mask = _ushort(eventmask)
        if fd not in self._masks:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        if not _is_fake(fd):
            self._real.modify(fd, mask)
        self._masks[fd] = mask

    def unregister(self, fd: Any) -> None:
        """Stop watching *fd*; KeyError when it is not registered."""
        fd = _fdnum(fd)
        if fd not in self._masks:
            raise KeyError(fd)
        if not _is_fake(fd):
            self._real.unregister(fd)
        del self._masks[fd]

    def _results(self, net: Any) -> list[tuple[int, int]]:
        out = []
        fds = net._fds
        for fd, mask in self._masks.items():
            sock = fds.get(fd)
            if sock is None:
                out.append((fd, _POLLNVAL))
                continue
            ev = events_of(sock) & (mask | _POLLERR | _POLLHUP)
            if ev:
                out.append((fd, ev))
        return out

    def poll(self, timeout: Any = None) -> list[tuple[int, int]]:
        """Wait up to *timeout* milliseconds (None or negative: no limit);
        a list of ``(fd, events)``."""
        ms = _timeout_ms(timeout, 1_000_000)
        fake = [fd for fd in self._masks if _is_fake(fd)]
        if fake and len(fake) != len(self._masks):
            raise _mixed("poll.poll()", self._net)
        if not fake and self._masks:
            return self._real.poll(timeout)
        if not fake and self._net is None:
            return REAL_POLL().poll(timeout)
        net = _net_for(self._net, fake[0] if fake else -1, "poll.poll()")
        return _network_poll(net, ms, lambda: self._results(net), list(self._masks), "poll.poll()")


def _ushort(eventmask: Any) -> int:
    if isinstance(eventmask, bool) or not isinstance(eventmask, int):
        if hasattr(eventmask, "__index__"):
            eventmask = eventmask.__index__()
        else:
            raise TypeError(f"'{type(eventmask).__name__}' object cannot be interpreted as an integer")
    if eventmask < 0:
        raise ValueError("value must be positive")
    if eventmask > 0xFFFF:
        raise OverflowError("Python int too large for C unsigned short")
    return eventmask



class _Reg:
    """One fake socket registered on an epoll set."""

    __slots__ = ("sock", "mask", "seen", "disabled")

    def __init__(self, sock: Any, mask: int) -> None:
        self.sock = sock
        self.mask = mask
        self.seen: Any = None  # wake-up state at the last edge-triggered report
        self.disabled = False  # EPOLLONESHOT fired

    def __repr__(self) -> str:
        return f"<_Reg fd={self.sock._fd} mask={self.mask:#x}{' disabled' if self.disabled else ''}>"


class _EpollSet:
    """The kernel side of one epoll descriptor (shared by ``fromfd`` wrappers)."""

    def __init__(self, net: Any) -> None:
        self.net = net
        self.regs: dict[int, _Reg] = {}

    def live(self, fd: int) -> _Reg | None:
        """The registration of *fd*, if its socket is still open (a closed
        socket leaves every epoll set, as the kernel's does)."""
        reg = self.regs.get(fd)
        if reg is None:
            return None
        if self.net._fds.get(fd) is not reg.sock:
            del self.regs[fd]
            return None
        return reg

    def collect(self, limit: int, commit: bool = False) -> list[tuple[int, int]]:
        """The events epoll_wait would return now (at most *limit*)."""
        out: list[tuple[int, int]] = []
        for fd in list(self.regs):
            reg = self.live(fd)
            if reg is None or reg.disabled:
                continue
            # (the flag bits ET/ONESHOT/EXCLUSIVE are never reported)
            ev = events_of(reg.sock) & (reg.mask | _POLLERR | _POLLHUP) & 0xFFFF
            if not ev:
                continue
            if reg.mask & _EPOLLET and (ev, _wakeups(reg.sock, reg.mask)) == reg.seen:
                continue
            out.append((fd, ev))
            if len(out) >= limit:
                break
        return out

    def commit(self, reported: list[int]) -> None:
        """*reported* were returned by epoll_wait: edge-triggered ones wait for
        the next wake-up, one-shot ones are disabled, and all go to the back
        of the ready list (Linux re-queues level-triggered items at the tail)."""
        for fd in reported:
            reg = self.regs.get(fd)
            if reg is None:
                continue
            if reg.mask & _EPOLLET:
                ev = events_of(reg.sock) & (reg.mask | _POLLERR | _POLLHUP) & 0xFFFF
                reg.seen = (ev, _wakeups(reg.sock, reg.mask))
            if reg.mask & _EPOLLONESHOT:
                reg.disabled = True
            self.regs[fd] = self.regs.pop(fd)


#: epoll descriptor number -> its fake registrations (for fromfd)
_sets: dict[int, _EpollSet] = {}


def _forget(fd: int, epset: _EpollSet) -> None:
    if _sets.get(fd) is epset:
        del _sets[fd]


def _remember(obj: Any, fd: int, epset: _EpollSet) -> None:
    _sets[fd] = epset
    weakref.finalize(obj, _forget, fd, epset)  # an epoll dropped without close()


def _uint(eventmask: Any) -> int:
    if isinstance(eventmask, bool) or not isinstance(eventmask, int):
        if hasattr(eventmask, "__index__"):
            eventmask = eventmask.__index__()
        else:
            raise TypeError(f"'{type(eventmask).__name__}' object cannot be interpreted as an integer")
    return eventmask & 0xFFFFFFFF


class epoll:
    """``select.epoll`` inside ``net.patch()``: fake sockets wait on the network.

    ``epoll(sizehint=-1, flags=0)``; a real epoll descriptor underneath gives
    ``fileno()``, serves real descriptors and makes ``fromfd`` work.
    """

    def __init__(self, sizehint: int = -1, flags: int = 0) -> None:
        if REAL_EPOLL is None:  # pragma: no cover - Linux only
            raise OSError(errno.ENOSYS, "epoll is not available on this platform")
        self._real = REAL_EPOLL(sizehint, flags)
        self._set = _EpollSet(active_network())
        self._real_fds: dict[int, int] = {}
        _remember(self, self._real.fileno(), self._set)

    @classmethod
    def fromfd(cls, fd: int) -> epoll:
        """An epoll object that owns descriptor *fd*. When *fd* is the
        descriptor of a fake epoll of this process, the two share its
        registrations (as two objects on one kernel epoll do); a duplicate
        (``os.dup``) is not recognised and starts with no fake registrations."""
        self = cls.__new__(cls)
        self._real = REAL_EPOLL.fromfd(fd)
        shared = _sets.get(fd)
        self._set = shared if shared is not None else _EpollSet(active_network())
        self._real_fds = {}
        _remember(self, fd, self._set)
        return self

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._real.fileno()}"
        return f"<simnet epoll {state} fake_fds={sorted(self._set.regs)} network={self._set.net!r}>"

    def __enter__(self) -> epoll:
        self._check()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once ``close()`` has been called."""
        return self._real.closed

    def close(self) -> None:
        """Close the epoll descriptor (further calls raise ValueError)."""
        if not self._real.closed:
            fd = self._real.fileno()
            if _sets.get(fd) is self._set:
                del _sets[fd]
            self._set.regs.clear()
        self._real.close()

    def fileno(self) -> int:
        """The (real) epoll descriptor's number."""
        return self._real.fileno()

    def _check(self) -> None:
        if self._real.closed:
            raise ValueError("I/O operation on closed epoll object")

    def register(self, fd: Any, eventmask: int = _POLLIN | _POLLPRI | _POLLOUT) -> None:
        """Add *fd* with *eventmask*; FileExistsError (EEXIST) when it is in the set."""
        self._check()
        fd = _fdnum(fd)
        if not _is_fake(fd):
            self._real.register(fd, eventmask)
            self._real_fds[fd] = eventmask
            return
        mask = _uint(eventmask)
        net = _net_for(self._set.net, fd, "epoll.register()")
        if self._set.net is None:
            self._set.net = net
        sock = net._fds.get(fd)
        if sock is None:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if self._set.live(fd) is not None:
            raise FileExistsError(errno.EEXIST, "File exists")
        if mask & _EPOLLEXCLUSIVE and mask & ~(_EPOLLEXCLUSIVE | _EPOLLET | 0x201F | _POLLRDNORM
                                              | _POLLWRNORM | 0x80 | 0x200 | (1 << 29)):
            raise OSError(errno.EINVAL, "Invalid argument")
        if mask & _EPOLLEXCLUSIVE and mask & _EPOLLONESHOT:
            raise OSError(errno.EINVAL, "Invalid argument")
        self._set.regs[fd] = _Reg(sock, mask)

    def modify(self, fd: Any, eventmask: int) -> None:
        """Change *fd*'s mask (and re-arm EPOLLONESHOT); ENOENT when it is not in the set."""
        self._check()
        fd = _fdnum(fd)
        if not _is_fake(fd):
            self._real.modify(fd, eventmask)
            return
        mask = _uint(eventmask)
        net = _net_for(self._set.net, fd, "epoll.modify()")
        if net._fds.get(fd) is None:
            raise OSError(errno.EBADF, "Bad file descriptor")
        reg = self._set.live(fd)
        if reg is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        if mask & _EPOLLEXCLUSIVE or reg.mask & _EPOLLEXCLUSIVE:
            raise OSError(errno.EINVAL, "Invalid argument")
        reg.mask = mask
        reg.seen = None
        reg.disabled = False

    def unregister(self, fd: Any) -> None:
        """Remove *fd*; ENOENT when it is not in the set."""
        self._check()
        fd = _fdnum(fd)
        if not _is_fake(fd):
            self._real.unregister(fd)
            self._real_fds.pop(fd, None)
            return
        net = _net_for(self._set.net, fd, "epoll.unregister()")
        if net._fds.get(fd) is None:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if self._set.live(fd) is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        del self._set.regs[fd]

    def poll(self, timeout: Any = None, maxevents: int = -1) -> list[tuple[int, int]]:
        """Wait up to *timeout* seconds (None or negative: no limit) for events;
        at most *maxevents* ``(fd, events)`` pairs."""
        self._check()
        ms = _timeout_ms(timeout, 1_000_000_000)
        if isinstance(maxevents, bool) or not isinstance(maxevents, int):
            raise TypeError(f"'{type(maxevents).__name__}' object cannot be interpreted as an integer")
        if maxevents == -1:
            limit = 1023  # FD_SETSIZE - 1, as CPython
        elif maxevents <= 0:
            raise ValueError(f"maxevents must be greater than 0, got {maxevents}")
        else:
            limit = maxevents
        regs = self._set.regs
        for fd in list(regs):
            self._set.live(fd)
        net = self._set.net
        has_real = bool(self._real_fds)
        if regs and has_real:
            has_real = self._prune_real()
        if regs and has_real:
            raise _mixed("epoll.poll()", net)
        if not regs and (has_real or net is None):
            return self._real.poll(timeout, maxevents)
        if net is None or net.closed:
            net = _net_for(None, -1, "epoll.poll()")
        results = _network_poll(net, ms, lambda: self._set.collect(limit, False), list(regs),
                                "epoll.poll()")
        self._set.commit([fd for fd, _ in results])
        return results

    def _prune_real(self) -> bool:
        """Forget real descriptors the kernel dropped (closed); any left?"""
        for fd, mask in list(self._real_fds.items()):
            try:
                self._real.modify(fd, mask)
            except OSError:
                del self._real_fds[fd]
        return bool(self._real_fds)


def socketpair(net: Any, family: Any = None, type: int = _socket.SOCK_STREAM, proto: int = 0) -> tuple:
    """``socket.socketpair()`` on *net*: two connected fake Unix stream (or
    datagram) sockets.

    As on Linux, both ends have the unnamed address ``''``; ``AF_INET`` and
    ``AF_INET6`` raise EOPNOTSUPP (only CPython's Windows emulation makes
    those), and ``SOCK_SEQPACKET`` pairs are not simulated (an error says so).
    """
    from simnet.fakesock.tcp import StreamEnd

    if family is None:
        family = _socket.AF_UNIX
    base = type & ~(getattr(_socket, "SOCK_NONBLOCK", 0) | getattr(_socket, "SOCK_CLOEXEC", 0))
    if family in (_socket.AF_INET, _socket.AF_INET6):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")
    if family != _socket.AF_UNIX:
        raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
    if base == _socket.SOCK_DGRAM:
        return _dgram_pair(net, family, type, proto)
    if base != _socket.SOCK_STREAM:
        raise OSError(errno.EOPNOTSUPP, f"socketpair(AF_UNIX, {_socket.SocketKind(base).name}): "
                      "only stream and datagram pairs are simulated on the fake network")
    a = net.socket(family, type, proto)
    b = net.socket(family, type, proto)
    cid = net.new_conn_id()
    ends = []
    for sock, side in ((a, "client"), (b, "server")):
        end = StreamEnd(net, sock, "", "", cid, sock._rcvbuf, sock._sndbuf, 0.0, None, unix=True)
        end.side = side
        sock._end = end
        sock._state = "connected"
        sock._laddr = ""
        sock._raddr = ""
        sock._conn = cid
        sock._side = side
        sock._trace("conn", sock._fd, cid, side)
        ends.append(end)
    ends[0].peer, ends[1].peer = ends[1], ends[0]
    net.activity += 1
    return a, b


def _dgram_pair(net: Any, family: int, type: int, proto: int) -> tuple:
    """Two Unix datagram sockets connected to each other, without names:
    each holds an :class:`~simnet.fakesock.unixnames.Unnamed` key its peer
    sends to. Closing one makes the other's sends ECONNREFUSED, as on Linux."""
    from simnet.fakesock.unixnames import Unnamed

    a = net.socket(family, type, proto)
    b = net.socket(family, type, proto)
    for sock in (a, b):
        key = Unnamed()
        net._unix.bind(key, sock)
        sock._laddr = key
        sock._bound_key = ("unix", key)
    a._raddr, b._raddr = b._laddr, a._laddr
    a._state = b._state = "connected"
    net.activity += 1
    return a, b


_saved: list[dict] = []


def _patched_select(r: Any, w: Any, x: Any, timeout: Any = None) -> Any:
    return _select.select(r, w, x, timeout)


def install(net: Any) -> None:
    """Make ``select.poll``/``select.epoll``/``socket.socketpair`` and the
    stdlib selectors use the fake pollers, for *net* (nesting allowed)."""
    import selectors

    saved = {
        "poll": _select.poll,
        "epoll": getattr(_select, "epoll", None),
        "socketpair": _socket.socketpair,
        "PollSelector": selectors.PollSelector.__dict__.get("_selector_cls"),
        "EpollSelector": (selectors.EpollSelector.__dict__.get("_selector_cls")
                          if hasattr(selectors, "EpollSelector") else None),
        "SelectSelector": selectors.SelectSelector.__dict__.get("_select"),
        "register": selectors._PollLikeSelector.__dict__["register"],  # type: ignore[attr-defined]
        "fromfd": _socket.fromfd,
    }
    _saved.append(saved)
    _active.append(net)

    def fake_socketpair(family: Any = None, type: int = _socket.SOCK_STREAM, proto: int = 0) -> tuple:
        return socketpair(net, family, type, proto)

    fake_socketpair.__doc__ = socketpair.__doc__
    _select.poll = poll  # type: ignore[assignment,misc]
    if REAL_EPOLL is not None:
        _select.epoll = epoll  # type: ignore[assignment,misc]
        selectors.EpollSelector._selector_cls = epoll  # type: ignore[attr-defined]
    selectors.PollSelector._selector_cls = poll  # type: ignore[attr-defined]
    if saved["SelectSelector"] is not None:
        # (the class took select.select at import: point it at the patched one)
        selectors.SelectSelector._select = staticmethod(_patched_select)  # type: ignore[attr-defined]
    _socket.socketpair = fake_socketpair  # type: ignore[assignment]
    real_register = saved["register"]
    real_fromfd = saved["fromfd"]

    def register(self: Any, fileobj: Any, events: int, data: Any = None) -> Any:
        fd = selectors._fileobj_to_fd(fileobj)  # type: ignore[attr-defined]
        if _is_fake(fd) and not isinstance(self._selector, (poll, epoll)):
            raise ValueError(
                f"{type(self).__name__}.register({fileobj!r}): this selector was made before "
                "net.patch() and polls the kernel, which knows nothing of fake sockets; "
                "make the selector inside the patch")
        return real_register(self, fileobj, events, data)

    def fromfd(fd: Any, family: Any, type: Any, proto: int = 0) -> Any:
        if isinstance(fd, int) and _is_fake(fd):
            raise OSError(errno.EOPNOTSUPP, f"socket.fromfd({fd}, ...): a fake socket cannot "
                          "be duplicated by number (use the socket object)")
        return real_fromfd(fd, family, type, proto)

    register.__doc__ = real_register.__doc__
    selectors._PollLikeSelector.register = register  # type: ignore[attr-defined]
    _socket.fromfd = fromfd


def uninstall(net: Any) -> None:
    """Undo the matching :func:`install`."""
    import selectors

    saved = _saved.pop()
    if _active and _active[-1] is net:
        _active.pop()
    else:
        _active.remove(net)
    _select.poll = saved["poll"]
    if saved["epoll"] is not None:
        _select.epoll = saved["epoll"]
        selectors.EpollSelector._selector_cls = saved["EpollSelector"]  # type: ignore[attr-defined]
    selectors.PollSelector._selector_cls = saved["PollSelector"]  # type: ignore[attr-defined]
    if saved["SelectSelector"] is not None:
        selectors.SelectSelector._select = saved["SelectSelector"]  # type: ignore[attr-defined]
    _socket.socketpair = saved["socketpair"]
    selectors._PollLikeSelector.register = saved["register"]  # type: ignore[attr-defined]
    _socket.fromfd = saved["fromfd"]
