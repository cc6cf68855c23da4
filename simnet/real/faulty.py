"""Fault plans and tracing on kernel sockets.

``RealNetwork(faults=..., trace=...)`` hands out :class:`FaultySocket`
wrappers around ordinary kernel sockets. A wrapper makes the kernel show the
faults a real socket can show, for real:

==============  ==============================================================
partial_send    ``send()`` passes at most ``max_bytes`` to the kernel (None: a
                random 1..len, from the network's seeded RNG)
short_read      ``recv()`` asks the kernel for at most ``max_bytes`` (None: a
                random part of what is buffered, measured with FIONREAD)
eagain          ``recv``/``send``/``accept`` raise BlockingIOError(EAGAIN)
                without calling the kernel; ``connect`` really starts the
                connection but reports EAGAIN (asyncore: in progress). On a
                blocking or timeout-mode socket (which never shows EAGAIN)
                the call waits for readiness and retries, as CPython's
                ``sock_call`` does, until the socket's timeout
eintr           a signal during the loop's wait (``net.select``, the poll
                object's ``poll``, ``EpollPoller``): as on Python >= 3.5 (PEP
                475) no EINTR reaches the program; the wait returns at once,
                maybe empty, or raises the rule's ``exception``
disconnect      ``rst``: SO_LINGER(1, 0) and the kernel socket is closed, so
                the peer gets a real RST (see *Resets* below); ``fin``:
                ``shutdown(SHUT_WR)`` on the kernel socket. ``after_bytes``
                counts bytes sent on the socket (the send that reaches it is
                cut to fit); ``at`` is seconds since the network was made;
                neither: the first matching data operation
refuse          the connect goes to a loopback address that is bound but not
                listening, so ECONNREFUSED, readiness and SO_ERROR are the
                kernel's own
==============  ==============================================================

Every other fault (latency, partitions, UDP faults, connect timeouts ...)
needs a simulated network: :func:`check_real_plan` refuses it with a
:class:`~simnet.faults.PlanError` naming the rule.

Matching context (what ``FaultEngine.match`` is given), the same as on the
fake network: ``conn`` is the n-th connection made through the network
(from 1), numbered when ``connect()`` starts it; an accepted socket takes the
number of its client when the client is a wrapper of the same network
(paired by address: the client's local address and the port it connected
to), else a new number. ``side`` is ``"client"`` or ``"server"``. ``call`` is
the k-th call of the operation on the socket, from 1, counting calls that
raise (``recv(0)``, which never reaches the kernel, is not counted; a
connect is counted once per connection attempt). ``local``/``peer`` are the
socket's addresses, looked up only when a rule asks for a port or address.

Resets
------
An RST must close the kernel socket (that is what sends it, with
SO_LINGER 0) while the loop's map still holds the file number. The wrapper
makes a placeholder -- one end of a fresh ``socketpair()`` whose other end is
closed at once -- and ``os.dup2()``\\ s it over the socket's descriptor. The
swap is atomic: the old kernel socket loses its last reference and is closed
(the RST goes out), and the same descriptor number now refers to a socket
that is always readable and writable and reports a hang-up, as a reset TCP
socket does. Afterwards the wrapper behaves like a reset socket: the first
``recv``/``send`` (or ``SO_ERROR``) reports ECONNRESET, later ``recv`` calls
return ``b""`` and ``send`` raises EPIPE, ``getpeername`` raises ENOTCONN.
Epoll registrations die with the old socket; :class:`~simnet.real.EpollPoller`
notices the swap (:data:`swaps`) and registers the descriptor again.

Tracing
-------
With ``trace``, the network records the events of :mod:`simnet.traces.trace`
(``socket``, ``bind``, ``listen``, ``connect``, ``accept``, ``send``,
``recv``, ``shutdown``, ``close``, ``ready``, ``fault``) with times in
seconds since the network was made, plus ``conn`` events
``[t, "conn", fd, conn, side]`` when a socket gets its connection number (at
connect, before the ``connect`` event; at accept, after the accepted
socket's ``socket`` event and before the ``accept`` event). ``ready`` from
``net.select`` is ``[t, "ready", -1, readable, writable]``; from a poll
object, as on the fake network, ``[t, "ready", -1, fds, [[fd, flags], ...]]``.
Payloads are recorded as bytes and digested to CRC-32 when the trace is
written. Datagram ``sendto``/``recvfrom`` are not recorded (as on the fake
network). :func:`plan_from_trace` turns a recording into a plan that makes
the fake network repeat the run's I/O pattern.
"""

from __future__ import annotations

import errno
import functools
import heapq
import itertools
import os
import random
import socket as _socket
import struct
import time
import weakref
from typing import Any, Callable

try:  # POSIX: how many bytes a socket has buffered (short_read without max_bytes)
    from fcntl import ioctl as _ioctl
    from termios import FIONREAD as _FIONREAD
except ImportError:  # pragma: no cover
    _ioctl = None
    _FIONREAD = 0

from simnet._sockbase import SocketIdentity
from simnet.faults import (FaultEngine, FaultPlan, PlanError, Rule, disconnect_at_once,
                           disconnect_targets_peer)
from simnet.traces.trace import Trace, error_name

__all__ = ["FaultySocket", "RealSession", "REAL_FAULTS", "check_real_plan", "plan_from_trace"]

#: The faults a kernel socket can be made to show.
REAL_FAULTS = frozenset({"partial_send", "short_read", "eagain", "eintr", "disconnect", "refuse"})

#: Why each other fault cannot be shown by a kernel socket.
_WHY_NOT = {
    "latency": "the kernel delivers loopback traffic at once",
    "partition": "hosts cannot be cut off from each other on one machine's loopback",
    "udp_loss": "loopback does not lose datagrams",
    "udp_duplicate": "loopback does not duplicate datagrams",
    "udp_reorder": "loopback does not reorder datagrams",
    "connect_timeout": "a loopback connect is answered at once",
    "unreachable": "loopback is always reachable",
    "backlog_overflow": "the kernel's accept queue cannot be made to drop a SYN on demand",
}

#: How many descriptors have been swapped for a reset placeholder in this
#: process (see *Resets*); pollers that keep kernel registrations compare it.
swaps = 0

_EAGAIN_TEXT = os.strerror(errno.EAGAIN)
_IN_PROGRESS = (0, errno.EINPROGRESS, errno.EALREADY, errno.EAGAIN, errno.EWOULDBLOCK,
                errno.EISCONN)
_PAYLOAD_LIMIT = 1 << 26  # digest recorded payloads beyond 64 MiB
_monotonic = time.monotonic


def check_real_plan(plan: FaultPlan) -> None:
    """Raise :class:`PlanError` for the first rule kernel sockets cannot show,
    naming its number and fault and pointing at the fake network."""
    for number, rule in enumerate(plan, 1):
        if rule.fault not in REAL_FAULTS:
            raise PlanError(
                f"rule {number} ({rule.fault}): cannot be applied to kernel sockets "
                f"({_WHY_NOT.get(rule.fault, 'no kernel socket shows it')}); "
                f"use simnet.fakesock.FakeNetwork for this fault (real sockets take "
                f"{', '.join(sorted(REAL_FAULTS))})")


@functools.lru_cache(maxsize=256)
def _addresses_of(name: str) -> tuple[str, ...]:
    """The IP addresses a host name in a rule's ``peer``/``local`` stands for."""
    try:
        infos = _socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        return ()
    return tuple(sorted({info[4][0] for info in infos}))


def _plain_ip(ip: Any) -> Any:
    """``"::ffff:127.0.0.1"`` -> ``"127.0.0.1"`` (a v4 client of a v6 listener)."""
    if isinstance(ip, str) and ip.startswith("::ffff:") and "." in ip:
        return ip[7:]
    return ip


def _unix_key(address: Any) -> Any:
    return ("unix", os.fsencode(address) if isinstance(address, str) else bytes(address))


def _blocking_error() -> BlockingIOError:
    return BlockingIOError(errno.EAGAIN, _EAGAIN_TEXT)


_MSG_DONTWAIT = int(getattr(_socket, "MSG_DONTWAIT", 0x40))


def _wait_ready(ksock: Any, writing: bool, deadline: float | None) -> None:
    """What CPython's ``sock_call`` does before retrying a call that failed
    with EAGAIN on a blocking or timeout-mode socket: wait until the kernel
    socket is ready (or the deadline passes: ``TimeoutError``)."""
    import select as _select

    fd = ksock.fileno()
    if fd < 0:
        return  # the plan closed the kernel socket (a reset): the call reports it
    if deadline is None:
        ms = -1
    else:
        left = deadline - _monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        ms = max(1, int(left * 1000 + 0.999))
    poller = _select.poll()
    poller.register(fd, _select.POLLOUT if writing else _select.POLLIN)
    if not poller.poll(ms) and deadline is not None:
        raise TimeoutError("timed out")


class RealSession:
    """What a :class:`~simnet.real.RealNetwork` with faults or a trace keeps:
    the fault engine, the recording, connection numbers, the pairing of
    clients with accepted sockets, timed disconnects and the refusing
    addresses. One per network; the wrappers talk to it directly."""

    def __init__(self, network: Any, plan: FaultPlan, trace: Any, seed: int) -> None:
        check_real_plan(plan)
        self.network = network
        self.seed = seed
        self.rng = random.Random(seed)
        self.start = _monotonic()
        self.faults = FaultEngine(plan, self.rng, self.elapsed, hosts=_addresses_of)
        self.faults.on_fire = self._fired
        self.faults.on_change = self._plan_changed
        self.trace: Trace | None = None
        if trace is True:
            self.trace = Trace({"backend": "real", "seed": seed, "faults": plan.to_list(),
                                "network": {}})
        elif isinstance(trace, Trace):
            self.trace = trace
            for key, value in (("backend", "real"), ("seed", seed),
                               ("faults", plan.to_list()), ("network", {})):
                trace.header.setdefault(key, value)
        elif trace is not None and trace is not False:
            raise TypeError(f"trace must be None, True or a Trace; got {type(trace).__name__}")
        #: the trace's flat recording area (None: not tracing)
        self.flat: list[Any] | None = self.trace.flat if self.trace is not None else None
        self.payload = 0
        self.conns = 0
        self._pending: dict[Any, list[FaultySocket]] = {}
        self._timed: list[tuple[float, int, FaultySocket, Rule]] = []
        self._seq = itertools.count()
        self._signal: int | None = None  # an eintr rule whose signal cut the current wait
        self._decided: set[tuple[Any, int]] = set()  # (conn, rule id): timed disconnects decided
        self._dead: dict[int, _socket.socket] = {}
        self._live: weakref.WeakSet[FaultySocket] = weakref.WeakSet()
        self._index()

    # -- the plan ------------------------------------------------------------------
    def _index(self) -> None:
        """Precompute which operations have rules (checked on every call)."""
        faults = self.faults
        has = faults.has
        self.on_send = has("send")
        self.on_recv = has("recv")
        self.on_accept = has("accept")
        self.on_connect = has("connect")
        self.on_wait = has("wait")
        self.on_data = has("data")
        #: send/recv need nothing but the kernel call (and the recording)
        self.plain_send = not (self.on_send or self.on_data)
        self.plain_recv = not (self.on_recv or self.on_data)
        self.timed_rules = [r for r in faults.plan if r.fault == "disconnect"
                            and r.params["at"] is not None]
        self.addr_ops = {r.acts_on for r in faults.plan
                         if {"port", "peer", "local"} & set(r.where)}
        for sock in list(getattr(self, "_live", ())):
            self.adopt(sock)

    def adopt(self, sock: FaultySocket) -> None:
        """Set a wrapper's direct-path flags from the plan (and remember it
        while it lives, to update them if the plan changes)."""
        self._live.add(sock)
        sock._plain_send = self.plain_send and not sock._reset
        sock._plain_recv = self.plain_recv and not sock._reset

    def _plan_changed(self) -> None:
        # a rule added while running (net.faults.add): refuse what cannot
        # apply here, as the constructor does
        plan = self.faults.plan
        try:
            check_real_plan(plan)
        except PlanError:
            plan.rules.pop()
            self.faults.reindex()
            raise
        self._index()
        self.network._plan_changed()

    # -- clock and recording ------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since the network was made (the clock of ``at`` and ``window``)."""
        return _monotonic() - self.start

    def record(self, kind: str, fd: int, *fields: Any) -> None:
        """Append the event ``(t, kind, fd, *fields)`` if tracing."""
        flat = self.flat
        if flat is not None:
            flat += (len(fields) + 3, _monotonic() - self.start, kind, fd) + fields

    def record_io(self, kind: str, fd: int, asked: int, got: Any, data: Any) -> None:
        """Record a send or recv: ``(t, kind, fd, asked, got, payload)``."""
        flat = self.flat
        if flat is not None:
            flat += (6, _monotonic() - self.start, kind, fd, asked, got, data)
            if type(got) is int:
                self.payload += got

    def bound_payload(self) -> None:
        """Digest the recorded payloads once they pass 64 MiB (called once
        per loop pass), so a long traced run keeps CRCs, not data."""
        if self.payload > _PAYLOAD_LIMIT:
            self.trace.digest_flat()  # type: ignore[union-attr]
            self.payload = 0

    def _fired(self, index: int, rule: Rule, op: str, conn: Any, fd: Any) -> None:
        if self.flat is not None:
            self.record("fault", -1 if fd is None else fd, index + 1, op, conn)

    # -- connections ----------------------------------------------------------------
    def new_conn(self) -> int:
        self.conns += 1
        return self.conns

    def note_client(self, sock: FaultySocket, address: Any) -> None:
        """Remember a connecting wrapper so that the accepted end can be paired."""
        try:
            if sock._family == _socket.AF_UNIX:
                key = _unix_key(address)
            else:
                local = sock._sock.getsockname()
                key = (_plain_ip(local[0]), local[1], address[1])
        except (OSError, TypeError, IndexError, ValueError):
            return
        sock._key = key
        self._pending.setdefault(key, []).append(sock)

    def client_of(self, ksock: _socket.socket, addr: Any) -> FaultySocket | None:
        """The connecting wrapper at the other end of an accepted socket, if ours."""
        if not self._pending:
            return None
        try:
            if ksock.family == _socket.AF_UNIX:
                key = _unix_key(ksock.getsockname())
            else:
                key = (_plain_ip(addr[0]), addr[1], ksock.getsockname()[1])
        except (OSError, TypeError, IndexError, ValueError):
            return None
        waiting = self._pending.get(key)
        if not waiting:
            return None
        client = waiting.pop(0)
        if not waiting:
            del self._pending[key]
        client._key = None
        return client

    def forget(self, sock: FaultySocket) -> None:
        """A wrapper closed: drop it from the pairing table."""
        key = sock._key
        if key is not None:
            waiting = self._pending.get(key)
            if waiting and sock in waiting:
                waiting.remove(sock)
                if not waiting:
                    del self._pending[key]
            sock._key = None

    def dead_address(self, family: int) -> Any:
        """A loopback address where a connect is refused by the kernel: bound
        by a socket of this session that never listens."""
        sock = self._dead.get(family)
        if sock is None:
            sock = _socket.socket(family, _socket.SOCK_STREAM)
            try:
                if family == _socket.AF_INET6:
                    sock.bind(("::1", 0))
                elif family == _socket.AF_UNIX:
                    # the abstract namespace: no file to clean up
                    sock.bind(f"\0simnet-refuse-{os.getpid()}-{id(self):x}")
                else:
                    sock.bind(("127.0.0.1", 0))
            except OSError:
                sock.close()
                raise
            self._dead[family] = sock
        return sock.getsockname()

    def close(self) -> None:
        """Release the refusing sockets (the session stays usable)."""
        dead, self._dead = self._dead, {}
        for sock in dead.values():
            sock.close()

    # -- timed disconnects ------------------------------------------------------------
    def arm(self, sock: FaultySocket) -> None:
        """Schedule the ``at`` disconnect rules for a newly connected wrapper;
        whether a rule matches the socket is decided when it is due."""
        for rule in self.timed_rules:
            heapq.heappush(self._timed, (self.start + rule.params["at"], next(self._seq),
                                         sock, rule))

    def fire_due(self) -> None:
        """Apply the timed disconnects that are due."""
        timed = self._timed
        now = _monotonic()
        while timed and timed[0][0] <= now:
            _, _, sock, rule = heapq.heappop(timed)
            if sock._closed or sock._cut:
                continue
            # decided once per connection, on the first end whose places match
            # (as on the fake network): one probability draw, one count
            key = (sock._conn, id(rule))
            i = self.faults.index(rule)
            if key in self._decided or i is None or not sock._can_cut(rule):
                continue
            local, peer = sock._addrs() if "data" in self.addr_ops else (None, None)
            if not self.faults.places_match(i, sock._conn, sock._side, local, peer):
                continue
            self._decided.add(key)
            sock._disconnect_if(lambda r, rule=rule: r is rule)

    def _bound(self, timeout: float | None) -> float | None:
        """*timeout* (seconds, None: forever) cut to the next timed disconnect."""
        if not self._timed:
            return timeout
        left = max(0.0, self._timed[0][0] - _monotonic())
        return left if timeout is None or timeout < 0 or left < timeout else timeout

    def wait_begin(self, timeout: float | None) -> float | None:
        """Before the loop waits: an eintr rule's signal, due disconnects;
        returns the timeout.

        Since PEP 475 no wait fails with EINTR: a rule naming an exception
        raises it (its handler's); otherwise the signal wakes the wait early
        -- it returns at once with what is ready, maybe nothing -- and counts
        if nothing was (see :meth:`wait_end`)."""
        self._signal = None
        if self.on_wait:
            would_block = timeout is None or timeout < 0 or timeout > 0
            self._signal = self.faults.signal(would_block)
            if self._signal is not None:
                timeout = 0.0
        if self._timed:
            self.fire_due()
            timeout = self._bound(timeout)
        return timeout

    def wait_end(self, ready: bool = True) -> None:
        """After the loop waited (*ready*: something was): an early wake-up
        counts if it returned nothing; the disconnects that fell due."""
        if self._signal is not None:
            if not ready and self.faults.holds(self._signal):
                self.faults.fire(self._signal, "wait")
            self._signal = None
        if self._timed:
            self.fire_due()

    def select(self, select: Callable[..., Any], r: list[int], w: list[int], x: list[int],
               timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        """``select(r, w, x, timeout)`` with the plan's wait faults, recorded."""
        if self.on_wait or self._timed:
            timeout = self.wait_begin(timeout)
        rr, wr, xr = select(r, w, x, timeout)
        if self.on_wait or self._timed:
            self.wait_end(bool(rr or wr or xr))
        flat = self.flat
        if flat is not None:
            flat += (5, _monotonic() - self.start, "ready", -1, rr, wr)
            if self.payload > _PAYLOAD_LIMIT:
                self.bound_payload()
        return rr, wr, xr


class FaultyPoll:
    """A ``select.poll()`` object with the plan's wait faults, recorded."""

    __slots__ = ("_poll", "_session")

    def __init__(self, poll: Any, session: RealSession) -> None:
        self._poll = poll
        self._session = session

    def register(self, fd: Any, eventmask: int = 7) -> None:
        self._poll.register(fd, eventmask)

    def modify(self, fd: Any, eventmask: int) -> None:
        self._poll.modify(fd, eventmask)

    def unregister(self, fd: Any) -> None:
        self._poll.unregister(fd)

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        """Wait up to *timeout* milliseconds (None or negative: no limit)."""
        st = self._session
        seconds = None if timeout is None or timeout < 0 else timeout / 1000.0
        bounded = st.wait_begin(seconds)
        if bounded is not None and bounded != seconds:
            timeout = max(0, int(bounded * 1000 + 0.999))
        results = self._poll.poll(timeout)
        st.wait_end(bool(results))
        flat = st.flat
        if flat is not None:
            flat += (5, _monotonic() - st.start, "ready", -1, [fd for fd, _ in results],
                     [[fd, ev] for fd, ev in results])
            st.bound_payload()
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._poll, name)


class FaultySocket(SocketIdentity):
    """A kernel socket under a fault plan (and a trace).

    It has the socket methods a dispatcher program uses -- ``accept`` returns
    wrapped sockets -- and forwards anything else to the kernel socket
    (``wrapper._sock``). See the module docstring for what each fault does.
    """

    __slots__ = ("_sock", "_st", "network", "_fd", "_family", "_type", "_proto", "_stream",
                 "_conn", "_side", "_n_send", "_n_recv", "_n_accept", "_n_connect", "_sent",
                 "_reset", "_cut", "_closed", "_peer", "_key", "_laddr", "_raddr",
                 "_attempt_over", "_swap", "_left", "_ksend", "_krecv", "_plain_send",
                 "_plain_recv", "_flat", "_t0", "_io_refs", "__weakref__")

    def __init__(self, sock: _socket.socket, session: RealSession) -> None:
        self._sock = sock
        self._st = session
        #: the RealNetwork that made this socket
        self.network = session.network
        self._fd = sock.fileno()
        self._family = int(sock.family)
        self._type = int(sock.type)
        self._proto = sock.proto
        self._stream = self._type == _socket.SOCK_STREAM
        self._conn: int | None = None
        self._side: str | None = None
        self._n_send = self._n_recv = self._n_accept = self._n_connect = 0
        self._sent = 0
        self._reset = 0  # 1: reset, not yet reported; 2: reported
        self._cut = False  # a disconnect fault acted on this socket
        self._closed = False
        self._peer: FaultySocket | None = None  # the other end, when ours
        self._key: Any = None  # pairing key while waiting to be accepted
        self._laddr: Any = None
        self._raddr: Any = None
        self._attempt_over = False
        self._swap = 0
        self._left: bytearray | None = None  # data received before a reset
        # the direct paths of send/recv (no rule can act; kept up to date
        # by the session when the plan changes, and by a reset)
        self._ksend = sock.send
        self._krecv = sock.recv
        self._flat = session.flat
        self._t0 = session.start
        self._plain_send = self._plain_recv = False
        self._io_refs = 0  # open makefile() objects: they keep the descriptor
        session.adopt(self)
        session.record("socket", self._fd, self._family, self._type)

    # -- plumbing ----------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name == "_sock":  # not set yet: do not recurse
            raise AttributeError(name)
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        state = " [closed]" if self._closed else " [reset]" if self._reset else ""
        where = f" conn={self._conn} side={self._side}" if self._conn is not None else ""
        return f"<FaultySocket{state} fd={self._fd}{where} wrapping {self._sock!r}>"

    def __enter__(self) -> FaultySocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # family, type, proto: from SocketIdentity (simnet/_sockbase.py)

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def settimeout(self, value: float | None) -> None:
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._sock.gettimeout()

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        if self._reset and level == _socket.SOL_SOCKET and optname == _socket.SO_ERROR:
            # the pending error of a reset socket, reported once
            code = errno.ECONNRESET if self._reset == 1 else 0
            self._reset = 2
            return code if buflen is None else struct.pack("i", code)[:buflen]
        if buflen is None:
            return self._sock.getsockopt(level, optname)
        return self._sock.getsockopt(level, optname, buflen)

    def setsockopt(self, level: int, optname: int, value: Any, optlen: Any = None) -> None:
        if optlen is None:
            self._sock.setsockopt(level, optname, value)
        else:
            self._sock.setsockopt(level, optname, value, optlen)

    def getsockname(self) -> Any:
        if self._reset:
            if self._laddr is not None:
                return self._laddr
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        return self._sock.getsockname()

    def getpeername(self) -> Any:
        if self._reset:
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        return self._sock.getpeername()

    def _addrs(self) -> tuple[Any, Any]:
        """(local, peer) for matching; cached once both are known."""
        if self._raddr is None:
            try:
                self._laddr = self._sock.getsockname()
            except OSError:
                pass
            try:
                self._raddr = self._sock.getpeername()
            except OSError:
                pass
        return self._laddr, self._raddr

    def _match(self, op: str, call: int | None, peer: Any = None) -> Rule | None:
        """The rule that fires for this call of *op* (addresses are looked up
        only when a rule of *op* names a port or an address; *peer* overrides
        the looked-up peer, for a connect)."""
        st = self._st
        local = raddr = None
        if op in st.addr_ops:
            local, raddr = self._addrs()
            if peer is not None:
                raddr = peer
        return st.faults.match(op, conn=self._conn, side=self._side, local=local, peer=raddr,
                               call=call, fd=self._fd)

    # -- setting up ------------------------------------------------------------------
    def bind(self, address: Any) -> None:
        self._st.record("bind", self._fd, address)
        self._sock.bind(address)

    def listen(self, backlog: int = _socket.SOMAXCONN) -> None:
        self._sock.listen(backlog)
        self._st.record("listen", self._fd, min(max(int(backlog), 0), _socket.SOMAXCONN))

    def accept(self) -> tuple[FaultySocket, Any]:
        """Accept a connection; the new socket is wrapped, numbered and paired."""
        st = self._st
        self._n_accept += 1
        if st.on_accept:
            rule = self._match("accept", self._n_accept)
            if rule is not None and rule.fault == "eagain":
                if self._sock.gettimeout() == 0.0:
                    st.record("accept", self._fd, "EAGAIN", None, None)
                    raise _blocking_error()
                self._retry_eagain("accept", rule, False)
        try:
            ksock, addr = self._sock.accept()
        except OSError as exc:
            st.record("accept", self._fd, error_name(exc), None, None)
            raise
        wrapped = FaultySocket(ksock, st)
        client = st.client_of(ksock, addr)
        if client is not None:
            wrapped._conn = client._conn
            wrapped._peer, client._peer = client, wrapped
        else:
            wrapped._conn = st.new_conn()
        wrapped._side = "server"
        st.record("conn", wrapped._fd, wrapped._conn, "server")
        st.record("accept", self._fd, wrapped._fd, addr, wrapped._conn)
        if st.timed_rules:
            st.arm(wrapped)
        return wrapped, addr

    def connect(self, address: Any) -> None:
        code = self._connect(address, True)
        if code:
            raise OSError(code, os.strerror(code))

    def connect_ex(self, address: Any) -> int:
        return self._connect(address, False)

    def _connect(self, address: Any, raising: bool) -> int:
        st = self._st
        ksock = self._sock
        rule = None
        attempt = False
        if self._stream and not self._reset and (self._conn is None or self._attempt_over):
            # a new connection: numbered now, as on the fake network
            attempt = True
            self._attempt_over = False
            self._conn = st.new_conn()
            self._side = "client"
            self._peer = None
            st.record("conn", self._fd, self._conn, "client")
            self._n_connect += 1
            if st.on_connect:
                self._raddr = None  # looked up again once connected
                rule = self._match("connect", self._n_connect,
                                   peer=address if isinstance(address, tuple) else None)
        refused = rule is not None and rule.fault == "refuse"
        target = st.dead_address(self._family) if refused else address
        blocking = ksock.gettimeout() != 0.0
        try:
            if raising and blocking:
                ksock.connect(target)  # the kernel's own blocking, timeouts included
                code = 0
            else:
                code = ksock.connect_ex(target)
        except OSError as exc:
            if exc.errno is None and not isinstance(exc, TimeoutError):
                raise  # gaierror and the like: no connect happened
            self._attempt_over = True
            st.record("connect", self._fd, address,
                      "timeout" if exc.errno is None else exc.errno)
            raise
        if rule is not None and rule.fault == "eagain" and not blocking \
                and code in (0, errno.EINPROGRESS):
            code = errno.EAGAIN  # the connection is really under way
        if code not in _IN_PROGRESS:
            self._attempt_over = True
        elif attempt and not refused:
            st.note_client(self, address)
            if st.timed_rules:
                st.arm(self)
        st.record("connect", self._fd, address, code)
        return code

    # -- data --------------------------------------------------------------------------
    def send(self, data: Any, flags: int = 0) -> int:
        self._n_send += 1
        if self._plain_send and type(data) is bytes:
            # no rule can act on it: one kernel call (and one record)
            try:
                taken = self._ksend(data, flags)
            except OSError as exc:
                self._st.record_io("send", self._fd, len(data), error_name(exc), 0)
                raise
            self._sent += taken
            flat = self._flat
            if flat is not None:
                n = len(data)
                flat += (6, _monotonic() - self._t0, "send", self._fd, n, taken,
                         data if taken == n else data[:taken])
                self._st.payload += taken
            return taken
        return self._send(data, lambda chunk: self._sock.send(chunk, flags), flags)

    def _send(self, data: Any, kernel: Callable[[Any], int], flags: int = 0) -> int:
        """A send under the plan: EAGAIN, partial sends, the after_bytes cut."""
        st = self._st
        view = memoryview(data).cast("B")
        size = len(view)
        try:
            rule = self._match("send", self._n_send) if st.on_send and self._stream else None
            if rule is not None and rule.fault == "eagain":
                timeout = self._sock.gettimeout()
                if timeout == 0.0 or (flags & _MSG_DONTWAIT and timeout is None):
                    raise _blocking_error()
                rule = self._retry_eagain("send", rule, True)
            if self._reset:
                raise self._reset_error(True)
            cutting = st.on_data and self._stream and not self._cut
            local, peer = (self._addrs() if cutting and size and "data" in st.addr_ops
                           else (None, None))
            n, rule, cut = st.faults.shape_send(rule, size, conn=self._conn, side=self._side,
                                                local=local, peer=peer, sent=self._sent,
                                                cutting=cutting)
            if cut is not None and cut[1] == 0:
                # at the mark already: the disconnect acts now
                self._apply_disconnect(cut[0])
                cut = None
                if self._reset:
                    raise self._reset_error(True)
            if n < size and rule is not None and rule.fault == "partial_send":
                st.faults.fire(st.faults.index(rule), "send", self._conn, self._fd)
            taken = kernel(view[:n]) if n < size else kernel(data)
        except OSError as exc:
            st.record_io("send", self._fd, size, error_name(exc), 0)
            raise
        self._sent += taken
        if st.flat is not None:
            st.record_io("send", self._fd, size, taken, bytes(view[:taken]))
        if cut is not None:
            if taken == n:
                self._apply_disconnect(cut[0])
            # else: the kernel took less; the mark is reached by a later send
        elif st.on_data and self._stream:
            self._check_disconnect()
        return taken

    def _retry_eagain(self, op: str, rule: Rule, writing: bool) -> Rule | None:
        """A rule said EAGAIN to a blocking or timeout-mode socket, which never
        shows EAGAIN: as CPython's ``sock_call`` does, wait until the kernel
        socket is ready and call again (each retry is another call of *op*,
        matched and counted again), until the socket's timeout runs out
        (``TimeoutError``). Returns the rule for the call that got through."""
        timeout = self._sock.gettimeout()
        deadline = None if timeout is None else _monotonic() + timeout
        while rule is not None and rule.fault == "eagain":
            _wait_ready(self._sock, writing, deadline)
            if op == "recv":
                self._n_recv += 1
                rule = self._match("recv", self._n_recv)
            elif op == "send":
                self._n_send += 1
                rule = self._match("send", self._n_send)
            else:
                self._n_accept += 1
                rule = self._match("accept", self._n_accept)
        return rule

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send everything, one :meth:`send` (faults included) at a time.

        In timeout mode the whole call has one deadline, as CPython's
        ``sendall`` has: each send waits only for what is left of it, and
        ``TimeoutError`` ends the call when it passes."""
        view = memoryview(data).cast("B")
        done = 0
        timeout = self._sock.gettimeout()
        if not timeout:  # blocking (None) or non-blocking (0.0): no deadline
            while done < len(view):
                done += self.send(view[done:], flags)
            return
        deadline = _monotonic() + timeout
        try:
            while done < len(view):
                left = deadline - _monotonic()
                if left <= 0:
                    raise TimeoutError("timed out")
                self._sock.settimeout(left)
                done += self.send(view[done:], flags)
        finally:
            self._sock.settimeout(timeout)

    def sendto(self, data: Any, flags_or_addr: Any, addr: Any = None) -> int:
        if not self._stream:
            # datagrams: no faults, not recorded (as on the fake network)
            if addr is None:
                return self._sock.sendto(data, flags_or_addr)
            return self._sock.sendto(data, flags_or_addr, addr)
        if addr is None:
            return self.send(data)
        return self.send(data, flags_or_addr)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self._plain_recv and bufsize:
            # no rule can act on it: one kernel call (and one record)
            self._n_recv += 1
            try:
                data = self._krecv(bufsize, flags)
            except OSError as exc:
                self._st.record_io("recv", self._fd, bufsize, error_name(exc), 0)
                raise
            flat = self._flat
            if flat is not None:
                n = len(data)
                flat += (6, _monotonic() - self._t0, "recv", self._fd, bufsize, n, data)
                self._st.payload += n
            return data
        if bufsize == 0 and type(bufsize) is int:
            return self._sock.recv(0, flags)  # no system call: not counted
        self._n_recv += 1
        return self._recv(bufsize, lambda n: self._sock.recv(n, flags), b"", None, flags)

    def _recv(self, asked: int, kernel: Callable[[int], Any], eof: Any,
              view: memoryview | None = None, flags: int = 0) -> Any:
        """A recv under the plan: EAGAIN, short reads, the reset state.

        *kernel* takes the size to ask for and returns bytes, or a count of
        bytes written into *view* (recv_into); *eof* is what end of stream
        returns (``b""`` or 0)."""
        st = self._st
        try:
            rule = self._match("recv", self._n_recv) if st.on_recv and self._stream else None
            if rule is not None and rule.fault == "eagain":
                timeout = self._sock.gettimeout()
                if timeout == 0.0 or (flags & _MSG_DONTWAIT and timeout is None):
                    raise _blocking_error()
                rule = self._retry_eagain("recv", rule, False)
            n = asked
            if self._reset:
                left = self._left
                if not left:
                    error = self._reset_error(False)
                    if error is not None:
                        raise error
                    st.record_io("recv", self._fd, asked, 0, b"")
                    return eof
                # what had arrived before the reset is still delivered first
                if rule is not None and rule.fault == "short_read":
                    n = st.faults.size(rule, min(asked, len(left)), conn=self._conn, fd=self._fd)
                chunk = bytes(left[:n])
                del left[:n]
                if view is None:
                    got = chunk
                else:
                    view[:len(chunk)] = chunk
                    got = len(chunk)
            else:
                if rule is not None and rule.fault == "short_read":
                    n = self._short(rule, asked)
                got = kernel(n)
        except OSError as exc:
            st.record_io("recv", self._fd, asked, error_name(exc), 0)
            raise
        if view is None:
            count = len(got)
            if st.flat is not None:
                st.record_io("recv", self._fd, asked, count, got)
        else:
            count = got
            if st.flat is not None:
                st.record_io("recv", self._fd, asked, count, bytes(view[:count]))
        if count and st.on_data and self._stream:
            self._check_disconnect()
        return got

    def _short(self, rule: Rule, asked: int) -> int:
        """How much a short_read lets the kernel return: ``max_bytes``, or a
        random part of what is buffered (counted when that is less than the
        kernel would return)."""
        buffered = asked
        if _ioctl is not None:
            try:
                buffered = struct.unpack("i", _ioctl(self._sock.fileno(), _FIONREAD,
                                                     b"\0\0\0\0"))[0]
            except OSError:
                pass
        if buffered <= 0:
            return asked  # nothing buffered: let the kernel say so
        return self._st.faults.size(rule, min(asked, buffered), conn=self._conn, fd=self._fd)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        if nbytes > len(view):
            raise ValueError("buffer too small for requested bytes")
        asked = nbytes or len(view)
        if asked == 0:
            return self._sock.recv_into(view, 0, flags)  # not counted, as recv(0)
        self._n_recv += 1
        return self._recv(asked, lambda n: self._sock.recv_into(view, n, flags), 0, view, flags)

    def _decref_socketios(self) -> None:
        # a file object made by makefile() was closed (called by SocketIO)
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed and self._io_refs <= 0:
            self._sock.close()

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        if not self._stream:
            return self._sock.recvfrom(bufsize, flags)  # datagrams: as sendto
        return self.recv(bufsize, flags), None

    # -- resets and disconnects --------------------------------------------------------
    def _reset_error(self, sending: bool) -> OSError | None:
        """What an operation on a reset socket raises: ECONNRESET once, then
        EPIPE for a send; None for a recv (end of stream)."""
        if self._reset == 1:
            self._reset = 2
            return ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
        if sending:
            return BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
        return None

    def _can_cut(self, rule: Rule) -> bool:
        """Whether this socket can apply *rule* (a ``side`` naming the other
        end needs that end to be ours, except for an RST, which resets both
        ends whoever sends it)."""
        if not disconnect_targets_peer(rule, self._side) or rule.params["mode"] == "rst":
            return True
        peer = self._peer
        return peer is not None and not peer._closed

    def _check_disconnect(self) -> None:
        """After a data operation: the untimed disconnect rules that match."""
        if self._cut:
            return

        def ready(rule: Rule) -> bool:
            # "at once" rules; an after_bytes rule acts in the send reaching its mark
            return disconnect_at_once(rule) and self._can_cut(rule)

        self._disconnect_if(ready)

    def _disconnect_if(self, accept: Callable[[Rule], bool]) -> None:
        st = self._st
        local = peer = None
        if "data" in st.addr_ops:
            local, peer = self._addrs()
        found = st.faults.pick("data", conn=self._conn, side=self._side, local=local,
                               peer=peer, accept=accept)
        if found is not None:
            self._apply_disconnect(found[1])

    def _apply_disconnect(self, rule: Rule) -> None:
        """Cut this socket's connection as *rule* says; counted only if the
        connection is still up and no disconnect rule has cut it yet."""
        if self._cut or self._closed:
            return
        st = self._st
        i = st.faults.index(rule)
        if i is None or not st.faults.fire(i, "data", self._conn, self._fd):
            return
        target = self
        if disconnect_targets_peer(rule, self._side) and self._peer is not None \
                and not self._peer._closed:
            target = self._peer
        if rule.params["mode"] == "rst":
            target.abort()
        else:
            target.finish()

    def finish(self) -> None:
        """A FIN disconnect: ``shutdown(SHUT_WR)`` on the kernel socket."""
        self._cut = True
        peer = self._peer
        if peer is not None:
            peer._cut = True  # a connection is cut once
        if self._reset or self._closed:
            return
        try:
            self._sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass  # not connected (any more): nothing to close

    def abort(self) -> None:
        """An RST disconnect: the peer gets a real RST, the descriptor stays
        valid (see the module docstring), and this wrapper reports
        ECONNRESET once, then acts as a reset socket."""
        global swaps
        self._cut = True
        peer = self._peer
        if peer is not None:
            peer._cut = True  # the connection is over: nothing left to cut
        if self._reset or self._closed:
            return
        sock = self._sock
        fd = sock.fileno()
        if self._laddr is None:
            try:
                self._laddr = sock.getsockname()
            except OSError:
                pass
        timeout = sock.gettimeout()
        inheritable = sock.get_inheritable()
        # (a timeout-mode socket would wait for readiness despite MSG_DONTWAIT;
        # this one is about to be closed, so it need not block any more)
        sock.setblocking(False)
        # Closing discards what the kernel has buffered for reading; a reset
        # socket would still deliver it first, so keep it for recv().
        left = bytearray()
        while True:
            try:
                chunk = sock.recv(1 << 16, _socket.MSG_DONTWAIT)
            except OSError:
                break
            if not chunk:
                break
            left += chunk
        self._left = left
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # e.g. already reset by the peer: closing sends nothing then
        keep, gone = _socket.socketpair()
        gone.close()
        try:
            # atomically: fd now names the placeholder, and the kernel socket,
            # losing its last reference, is closed (SO_LINGER 0: RST)
            os.dup2(keep.fileno(), fd, inheritable=inheritable)
        finally:
            keep.close()
        sock.detach()
        self._sock = _socket.socket(fileno=fd)
        self._sock.settimeout(timeout)
        self._ksend, self._krecv = self._sock.send, self._sock.recv
        self._plain_send = self._plain_recv = False
        self._reset = 1
        swaps += 1
        self._swap = swaps

    def shutdown(self, how: int) -> None:
        self._st.record("shutdown", self._fd, how)
        if self._reset:
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        self._sock.shutdown(how)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            st = self._st
            st.record("close", self._fd)
            st.forget(self)
            peer = self._peer
            if peer is not None:
                peer._peer = None
                self._peer = None
        if self._io_refs <= 0:
            self._sock.close()


def plan_from_trace(trace: Trace) -> FaultPlan:
    """A plan that makes the fake network repeat a real run's I/O pattern.

    Sockets are told apart by their ``conn`` events (connection number and
    side); calls are counted per socket and operation, every recorded call
    included, as the networks count them. For each call:

    * a ``send`` that took fewer bytes than offered becomes
      ``Rule("partial_send", max_bytes=taken, where={"conn": c, "side": s, "call": k})``;
    * a ``recv`` that returned fewer (but more than 0) bytes than asked becomes
      ``Rule("short_read", max_bytes=returned, where=...)``;
    * an EAGAIN from ``send``/``recv`` becomes ``Rule("eagain", op=..., where=...)``,
      from a ``connect`` (the k-th connection attempt of the socket) likewise,
      and from ``accept`` ``Rule("eagain", op="accept", where={"call": k})`` --
      with ``"port"`` too when the listener was bound to a fixed port, since a
      listening socket has no connection number.

    Sends and receives of sockets that never got a connection number (UDP)
    are left out. A file number reused after ``close`` (or a new ``socket``
    event) starts a new socket.
    """
    who: dict[int, tuple[int, str]] = {}
    calls: dict[int, dict[str, int]] = {}
    ports: dict[int, int] = {}
    rules: list[Rule] = []
    eagain = ("EAGAIN", "EWOULDBLOCK", errno.EAGAIN, errno.EWOULDBLOCK)

    for ev in trace.events:
        kind, fd = ev[1], ev[2]
        if kind in ("socket", "close"):
            who.pop(fd, None)
            calls.pop(fd, None)
            ports.pop(fd, None)
            continue
        if kind == "bind":
            address = ev[3]
            if isinstance(address, (list, tuple)) and len(address) >= 2 \
                    and isinstance(address[1], int) and address[1]:
                ports[fd] = address[1]
            continue
        if kind == "conn":
            who[fd] = (ev[3], ev[4])
            if ev[4] == "client":
                count = calls.setdefault(fd, {})
                count["connect"] = count.get("connect", 0) + 1
            continue
        if kind == "connect":
            if ev[4] in eagain and fd in who:
                conn, side = who[fd]
                rules.append(Rule("eagain", op="connect", where={
                    "conn": conn, "side": side, "call": calls.get(fd, {}).get("connect", 1)}))
            continue
        if kind not in ("send", "recv", "accept"):
            continue
        count = calls.setdefault(fd, {})
        k = count[kind] = count.get(kind, 0) + 1
        if kind == "accept":
            if ev[3] in eagain:
                where: dict[str, Any] = {"call": k}
                if fd in ports:
                    where["port"] = ports[fd]
                rules.append(Rule("eagain", op="accept", where=where))
            continue
        if fd not in who:
            continue
        conn, side = who[fd]
        where = {"conn": conn, "side": side, "call": k}
        asked, got = ev[3], ev[4]
        if got in eagain:
            rules.append(Rule("eagain", op=kind, where=where))
        elif type(got) is int and 0 < got < asked:
            fault = "partial_send" if kind == "send" else "short_read"
            rules.append(Rule(fault, max_bytes=got, where=where))
    return FaultPlan(rules)
