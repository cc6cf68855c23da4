"""FakeSocket: the socket API over the simulated network, with Linux semantics.

Errors are the kernel's, as Python raises them: ``BlockingIOError`` (EAGAIN)
when a non-blocking call would block, ``ConnectionRefusedError``,
``ConnectionResetError``, ``BrokenPipeError`` (EPIPE), ``OSError`` with
ENOTCONN, EISCONN, EALREADY, EINVAL, EADDRINUSE, EBADF ... where Linux gives
them. ``tests/conformance`` checks the same operation sequences against real
loopback sockets.

TCP model: each connection has two ends. ``send`` appends to the sender's
send queue (bounded by SO_SNDBUF); the queue drains into the peer's receive
buffer (bounded by SO_RCVBUF) after the link's latency, so backpressure makes
partial sends on its own. A FIN follows the last byte; a RST (``close`` with
unread data, or SO_LINGER 0) discards everything and reaches the peer as
ECONNRESET.
"""

from __future__ import annotations

import errno
import math
import operator
import socket as _socket
import struct
from collections import deque
from typing import Any

from simnet._pyversion import PYTIME_OVERFLOW, SETBLOCKING_TAKES_TRUTH
from simnet._sockbase import SocketIdentity

_POLLIN, _POLLOUT, _POLLERR, _POLLHUP = 0x001, 0x004, 0x008, 0x010
_MSG_PEEK = int(_socket.MSG_PEEK)
_MSG_DONTWAIT = int(getattr(_socket, "MSG_DONTWAIT", 0x40))

AF_INET, AF_INET6, AF_UNIX = _socket.AF_INET, _socket.AF_INET6, _socket.AF_UNIX
SOCK_STREAM, SOCK_DGRAM = _socket.SOCK_STREAM, _socket.SOCK_DGRAM
_TYPE_MASK = ~(getattr(_socket, "SOCK_NONBLOCK", 0) | getattr(_socket, "SOCK_CLOEXEC", 0))

#: Linux: a connect whose SYNs go unanswered fails after 6 retries (~127 s).
SYN_RETRIES = (1, 2, 4, 8, 16, 32, 64)
#: How long an actively closed connection's local address stays in TIME_WAIT.
TIME_WAIT = 60.0
#: Largest UDP payload over IPv4 / IPv6.
MAX_UDP = {AF_INET: 65507, AF_INET6: 65527}
SOMAXCONN = getattr(_socket, "SOMAXCONN", 4096)

_MIN_SNDBUF, _MIN_RCVBUF = 4608, 2304
_SO_SNDBUF = (_socket.SOL_SOCKET, _socket.SO_SNDBUF)

#: Linux defaults (measured on 6.x): a TCP socket starts with tcp_wmem[1] /
#: tcp_rmem[1]; once connected, the kernel autotunes SO_SNDBUF (on loopback,
#: MSS 65483, it reads 3,939,840 and a non-blocking send of ~3.9 MB is taken
#: whole). Other sockets get wmem_default / rmem_default.
TCP_SNDBUF, TCP_RCVBUF = 16384, 131072
TCP_SNDBUF_CONNECTED = 3939840
DEFAULT_BUF = 212992
#: net.unix.max_dgram_qlen: a Unix datagram socket's queue is full beyond it
#: (11 datagrams wait; the 12th sender gets EAGAIN, or waits).
UNIX_DGRAM_QLEN = 10

# What one datagram costs a queue (skb truesize), measured on Linux 6.x
# loopback: (largest payload, cost) steps, then payload + 832 (UDP). A UDP
# receive queue takes a datagram while the charged total stays <= SO_RCVBUF
# (212,992: 256 small datagrams). Unix datagrams are charged to the sender's
# SO_SNDBUF until read (278 small ones for a socketpair).
_UDP4_COST = ((197, 832), (645, 1280), (1669, 2304), (3717, 4352), (7813, 8448), (16004, 16640))
_UDP6_COST = ((184, 832), (632, 1280), (1656, 2304), (3704, 4352), (7800, 8448), (15991, 16640))
_UNIX_COST = ((192, 768), (704, 1280), (1728, 2304), (3776, 4352), (7872, 8448), (16064, 16640))


def _dgram_cost(family: int, n: int) -> int:
    """The kernel memory (skb truesize) a datagram of *n* bytes is charged."""
    table = _UNIX_COST if family == AF_UNIX else _UDP6_COST if family == AF_INET6 else _UDP4_COST
    if family == AF_UNIX:
        # unix_dgram_sendmsg: past SKB_MAX_ALLOC (16,064) the tail goes to pages
        paged = 0 if n <= 16064 else min(-(-(n - 16064) // 4096) * 4096, 17 * 4096)
        head = 512
        while head < n - paged + 320:
            head *= 2
        return head + 256 + paged
    for limit, cost in table:
        if n <= limit:
            return cost
    return n + 832

_KNOWN_OPTS = {
    (_socket.SOL_SOCKET, _socket.SO_REUSEADDR), (_socket.SOL_SOCKET, _socket.SO_KEEPALIVE),
    (_socket.SOL_SOCKET, _socket.SO_BROADCAST), (_socket.SOL_SOCKET, _socket.SO_SNDBUF),
    (_socket.SOL_SOCKET, _socket.SO_RCVBUF), (_socket.SOL_SOCKET, _socket.SO_LINGER),
    (_socket.SOL_SOCKET, _socket.SO_OOBINLINE),
    (_socket.IPPROTO_TCP, _socket.TCP_NODELAY),
}
for _name in ("SO_REUSEPORT", "SO_RCVLOWAT", "SO_SNDLOWAT", "SO_PRIORITY"):
    if hasattr(_socket, _name):
        _KNOWN_OPTS.add((_socket.SOL_SOCKET, getattr(_socket, _name)))
for _name in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_QUICKACK", "TCP_USER_TIMEOUT"):
    if hasattr(_socket, _name):
        _KNOWN_OPTS.add((_socket.IPPROTO_TCP, getattr(_socket, _name)))
for _name in ("IPV6_V6ONLY",):
    if hasattr(_socket, _name):
        _KNOWN_OPTS.add((_socket.IPPROTO_IPV6, getattr(_socket, _name)))


def _oserror(code: int) -> OSError:
    """The exception Python raises for errno *code* (its OSError subclass)."""
    return OSError(code, _strerror(code))


def _strerror(code: int) -> str:
    import os

    return os.strerror(code)


def _blocking() -> BlockingIOError:
    return BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")


def _parse_timeout(value: Any) -> float | None:
    """A timeout as CPython's ``socket.settimeout`` takes it: None, or a
    number of seconds >= 0, rounded up to whole nanoseconds; with CPython's
    exact errors (NaN: ValueError, out of range: OverflowError, negative:
    ValueError, not a number: TypeError)."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("Invalid value NaN (not a number)")
        ns = value * 1e9
        if not -9223372036854775808.0 <= ns < 9223372036854775808.0:
            raise OverflowError("timestamp out of range for platform time_t")
        ns = math.ceil(ns) if ns >= 0.0 else math.floor(ns)
    else:
        try:
            sec = operator.index(value)
        except TypeError:
            raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer") from None
        ns = sec * 1_000_000_000
        if not -(1 << 63) <= sec < (1 << 63) or not -(1 << 63) <= ns < (1 << 63):
            raise OverflowError(PYTIME_OVERFLOW)
    if ns < 0:
        raise ValueError("Timeout value out of range")
    if ns % 1_000_000_000 == 0:
        return float(ns // 1_000_000_000)
    return ns / 1e9


def _ename(exc: BaseException) -> str:
    """How a trace names an error: the errno name, or "timeout"."""
    code = getattr(exc, "errno", None)
    if code is None:
        return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
    return errno.errorcode.get(code, f"E{code}")


def _len(data: Any) -> int:
    try:
        return len(memoryview(data).cast("B"))
    except TypeError:
        return -1


class _End:
    """One end of a simulated TCP (or Unix stream) connection."""

    __slots__ = ("net", "sock", "peer", "conn_id", "laddr", "raddr", "rbuf", "rcap",
                 "sq", "scap", "inflight", "fin_rcvd", "rd_shut", "wr_shut", "fin_sent",
                 "err", "reset", "detached", "link_free", "lat", "bw", "bytes_in", "bytes_out",
                 "direct", "jitter", "sent", "side", "arrival")

    def __init__(self, net: Any, sock: Any, laddr: Any, raddr: Any, conn_id: int,
                 rcap: int, scap: int, lat: float, bw: float | None) -> None:
        self.net = net
        self.sock = sock
        self.peer: _End | None = None
        self.conn_id = conn_id
        self.laddr = laddr
        self.raddr = raddr
        self.rbuf = bytearray()
        self.rcap = rcap
        self.sq = bytearray()
        self.scap = scap
        self.inflight = 0
        self.fin_rcvd = False
        self.rd_shut = False
        self.wr_shut = False
        self.fin_sent = False
        self.err = 0
        self.reset = False
        self.detached = False  # the socket is closed; the end finishes sending
        self.link_free = 0.0
        self.lat = lat
        self.bw = bw
        self.jitter = 0.0
        self.direct = lat == 0 and bw is None and not net._timed_links  # delivery within send()
        self.sent = 0  # bytes taken by send() on this end
        self.side = "client"
        self.arrival = 0.0  # when the last segment sent reaches the peer
        self.bytes_in = 0
        self.bytes_out = 0

    # -- sending -------------------------------------------------------------
    def transmit(self) -> None:
        """Move queued bytes (then the FIN) toward the peer as its window allows."""
        peer = self.peer
        if peer is None or self.reset or (not self.sq and (self.fin_sent or not self.wr_shut)):
            return
        room = peer.rcap - len(peer.rbuf) - self.inflight
        n = min(len(self.sq), room)
        if n > 0:
            chunk = bytes(self.sq[:n])
            del self.sq[:n]
            self.bytes_out += n
            self._ship(self._deliver, chunk, n)
        if not self.sq and self.wr_shut and not self.fin_sent:
            self.fin_sent = True
            self._ship(self._deliver_fin, None, 0)

    def _ship(self, fn: Any, chunk: Any, n: int) -> None:
        net = self.net
        if self.direct:
            fn(chunk)
            return
        start = max(net._now, self.link_free)
        done = start + (n / self.bw if self.bw else 0.0)
        self.link_free = done
        arrive = done + self.lat
        if self.jitter:
            arrive += net.rng.random() * self.jitter
        peer = self.peer
        if net._partitions and peer is not None:
            arrive = net._partition_delay(self.laddr, peer.laddr, arrive)
            if arrive is None:
                return  # cut off for good: the segment never arrives
        # segments of one connection arrive in order
        if arrive < self.arrival:
            arrive = self.arrival
        self.arrival = arrive
        self.inflight += n
        net.schedule(arrive - net._now, fn, chunk)

    def _deliver(self, chunk: bytes) -> None:
        if not self.direct:
            self.inflight -= len(chunk)
        peer = self.peer
        if peer is None or self.reset:
            return
        if peer.detached or (peer.rd_shut and peer.wr_shut):
            # data for a closed socket, or one shut both ways: Linux answers with
            # a RST (and a socket still open reports the reset itself)
            if not peer.detached:
                peer.err = errno.ECONNRESET
            peer.send_rst()
            return
        peer.rbuf += chunk
        peer.bytes_in += len(chunk)
        self.net.activity += 1

    def _deliver_fin(self, _: Any) -> None:
        peer = self.peer
        if peer is None or self.reset:
            return
        peer.fin_rcvd = True
        self.net.activity += 1
        if peer.detached and peer.fin_sent:
            peer.finish()

    # -- teardown ------------------------------------------------------------
    def send_rst(self) -> None:
        """Abort: discard both queues and reset the peer (ECONNRESET)."""
        peer = self.peer
        self.sq.clear()
        self.reset = True
        self.peer = None
        if peer is not None and not peer.reset:
            if self.direct:
                peer.receive_rst()
            else:
                # after whatever is still in flight on this connection
                when = max(self.net._now + self.lat, self.arrival)
                self.net.schedule(when - self.net._now, peer.receive_rst)
        self.finish()

    def receive_rst(self) -> None:
        if self.reset:
            return
        self.reset = True
        self.peer = None
        self.sq.clear()
        # in CLOSE_WAIT (the peer's FIN already seen) Linux reports EPIPE;
        # a Unix peer closing with our data unread is always ECONNRESET
        unix = self.sock is not None and self.sock._family == AF_UNIX
        if self.fin_rcvd and self.fin_sent and not unix:
            pass  # both FINs exchanged: the connection is closed already, nothing to report
        else:
            self.err = errno.EPIPE if self.fin_rcvd and not unix else errno.ECONNRESET
        self.net.activity += 1
        if self.detached:
            self.finish()

    def over(self) -> bool:
        """The connection has ended: reset, or both directions closed."""
        return self.reset or (self.fin_rcvd and self.fin_sent)

    def finish(self) -> None:
        """The connection is over for this end: release what it holds."""
        if self.detached:
            self.net._forget_end(self)

    def describe(self) -> str:
        state = "RESET" if self.reset else (
            "CLOSED" if self.fin_rcvd and self.wr_shut else
            "FIN_RCVD" if self.fin_rcvd else "WR_SHUT" if self.wr_shut else "ESTABLISHED")
        return (f"conn#{self.conn_id} {state} unread={len(self.rbuf)} unsent={len(self.sq)} "
                f"in={self.bytes_in} out={self.bytes_out}")


class FakeSocket(SocketIdentity):
    """A socket on a :class:`~simnet.fakesock.FakeNetwork`; made by ``net.socket()``.

    It has the methods and errors of ``socket.socket`` (see the module
    docstring). Blocking calls run the simulation until they can complete;
    timeouts are in virtual seconds. A timeout-mode socket behaves as
    CPython's ``sock_call`` drives a non-blocking kernel socket: it waits
    for readiness (the whole call shares one deadline, ``sendall``
    included), then calls. A spurious EAGAIN from a fault rule reaches only
    non-blocking callers; a blocking or timeout-mode call retries instead
    (each retry is another call of the operation, and costs an idle pass).
    """

    # Class-level defaults, set on an instance only when they change: a
    # FakeSocket has ~30 attributes already, and CPython 3.11 stops sharing
    # instance-dict keys past 30 (each socket's dict then doubles in size).
    #: ((family, local ip, local port, remote ip, remote port), bound by
    #: connect()?) of a TCP connect; a connect()-bound port may serve other
    #: destinations too
    _tuple: Any = None
    #: Unix datagrams this socket sent that still wait in a queue (charged bytes)
    _wmem = 0

    @staticmethod
    def _default_buffers(net: Any, family: int, base: int) -> tuple[int, int]:
        """SO_SNDBUF, SO_RCVBUF of a new socket: the network's settings if
        given, else what Linux gives (see TCP_SNDBUF and DEFAULT_BUF)."""
        tcp = base == SOCK_STREAM and family != AF_UNIX
        snd = net.sndbuf if net.sndbuf is not None else (TCP_SNDBUF if tcp else DEFAULT_BUF)
        rcv = net.rcvbuf if net.rcvbuf is not None else (TCP_RCVBUF if tcp else DEFAULT_BUF)
        return snd, rcv

    @property
    def _snd_locked(self) -> bool:
        """SO_SNDBUF is fixed (setsockopt, inherited from the listener, or
        FakeNetwork(sndbuf=...)): the kernel does not autotune it."""
        return self.network.sndbuf is not None or _SO_SNDBUF in self._opts

    def __init__(self, net: Any, family: int, type: int, proto: int = 0) -> None:
        if family not in (AF_INET, AF_INET6, AF_UNIX):
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        base = type & _TYPE_MASK
        if base not in (SOCK_STREAM, SOCK_DGRAM):
            raise OSError(errno.ESOCKTNOSUPPORT if base > 0 else errno.EINVAL,
                          "Socket type not supported")
        self.network = net
        self._family = family
        self._type = base
        self._proto = proto
        self._timeout = _socket.getdefaulttimeout()
        if getattr(_socket, "SOCK_NONBLOCK", 0) and type & _socket.SOCK_NONBLOCK:
            self._timeout = 0.0
        self._closed = False  # the descriptor is released (the kernel socket is gone)
        self._pyclosed = False  # close() was called (CPython's socket._closed)
        self._io_refs = 0
        self._opts: dict[tuple[int, int], Any] = {}
        self._sndbuf, self._rcvbuf = self._default_buffers(net, family, base)
        self._state = "new"  # new, listening, connecting, connected, refused
        self._laddr: Any = None
        self._bound_key: Any = None
        self._raddr: Any = None
        self._end: _End | None = None
        self._err = 0  # SO_ERROR of a socket without a connection end
        # listening
        self._backlog = 0
        self._accept_q: deque[_End] = deque()
        # connecting
        self._connect_token = 0
        # datagrams
        self._dgrams: deque[tuple[bytes, Any]] = deque()
        self._dgram_bytes = 0
        # fault matching: connection number, side, calls per operation
        self._conn: int | None = None
        self._side: str | None = None
        self._calls = {"send": 0, "recv": 0, "accept": 0, "connect": 0}
        self._announced = True  # a completed connect was reported by connect()
        self._shut = 0  # shutdown() on an unconnected socket still takes effect
        self._call_deadline: float | None = None  # sendall's deadline, across its sends
        self._fd = net._alloc_fd(self)
        if net._tr is not None:
            net._tr += (5, net._now, "socket", self._fd, int(family), int(base))

    # -- basic properties ---------------------------------------------------------
    # family, type, proto: from SocketIdentity (simnet/_sockbase.py)

    @property
    def timeout(self) -> float | None:
        return self._timeout

    def fileno(self) -> int:
        return -1 if self._closed else self._fd

    def __repr__(self) -> str:
        closed = " [closed]" if self._pyclosed or self._closed else ""
        parts = [f"<simnet.FakeSocket{closed} fd={self.fileno()}", f"family={self.family.name}",
                 f"type={self.type.name}", f"proto={self._proto}"]
        if not (self._closed or self._pyclosed):  # CPython: no addresses once close() ran
            if self._laddr is not None:
                parts.append(f"laddr={self._laddr!r}")
            if self._raddr is not None and self._state == "connected":
                parts.append(f"raddr={self._raddr!r}")
        return ", ".join(parts) + ">"

    def _describe(self) -> str:
        what = self._state
        if self._end is not None:
            what = self._end.describe()
        elif self._state == "listening":
            what = f"LISTEN backlog={self._backlog} queued={len(self._accept_q)}"
        elif self._type == SOCK_DGRAM:
            what = f"UDP queued={len(self._dgrams)}"
        mode = "non-blocking" if self._timeout == 0 else (
            "blocking" if self._timeout is None else f"timeout={self._timeout}")
        return f"fd={self._fd} {self.family.name}/{self.type.name} {mode} laddr={self._laddr!r} raddr={self._raddr!r} {what}"

    def __enter__(self) -> FakeSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> None:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    # -- blocking mode -----------------------------------------------------------------
    def setblocking(self, flag: bool) -> None:
        if SETBLOCKING_TAKES_TRUTH:  # 3.12+: any object, by its truth value
            block = bool(flag)
        else:
            try:
                block = operator.index(flag)
            except TypeError:
                raise TypeError(f"'{type(flag).__name__}' object cannot be interpreted as an integer") from None
            if not -(1 << 63) <= block < (1 << 63):
                raise OverflowError("Python int too large to convert to C long")
        # CPython sets the mode first, then fails on a closed socket
        self._timeout = None if block else 0.0
        self._check()

    def getblocking(self) -> bool:
        return self._timeout != 0.0  # CPython: no descriptor needed

    def settimeout(self, value: float | None) -> None:
        # CPython checks the value, sets it, then fails on a closed socket
        self._timeout = _parse_timeout(value)
        self._check()

    def gettimeout(self) -> float | None:
        return self._timeout

    def _check(self) -> None:
        if self._closed:
            raise _oserror(errno.EBADF)

    def _fault(self, op: str) -> Any:
        """Count this call of *op*; return the fault rule that fires, if any."""
        self._calls[op] += 1
        return self.network.faults.match(op, conn=self._conn, side=self._side, local=self._laddr,
                                         peer=self._raddr, call=self._calls[op], fd=self._fd)

    def _trace(self, *event: Any) -> None:
        tr = self.network._tr
        if tr is not None:
            tr += (len(event) + 1, self.network._now) + event

    def _wait(self, ready: Any, what: str, flags: int = 0, deadline: float | None = None) -> None:
        """Block (run the simulation) until ready(), honouring the timeout
        (and MSG_DONTWAIT in *flags*). *deadline* is the call's deadline
        when it has one already (CPython computes it once per call)."""
        if self._timeout == 0.0 or (flags & _MSG_DONTWAIT and self._timeout is None):
            # (with a timeout, CPython waits for readiness before the call, so
            # MSG_DONTWAIT only matters to a blocking socket)
            raise _blocking()
        if deadline is None:
            self.network.block(ready, self._timeout, what)
        else:
            self.network.block(ready, max(0.0, deadline - self.network._now), what)

    def _deadline(self) -> float | None:
        """The virtual time at which a call starting now times out (None: never)."""
        if self._timeout is None or self._timeout == 0.0:
            return None
        return self.network._now + self._timeout

    def _retry_eagain(self, op: str, rule: Any, what: str, flags: int = 0,
                      deadline: float | None = None) -> Any:
        """A fault rule said EAGAIN. A non-blocking socket (or MSG_DONTWAIT)
        sees it; a blocking or timeout-mode one never does -- the kernel
        blocks, CPython's ``sock_call`` waits and calls again -- so there it
        costs a retry (another pass of the simulation) and the call goes on,
        until the socket's deadline (TimeoutError). The rule counts as fired
        each time. Returns the rule that applies to the call that got through."""
        if self._timeout == 0.0 or (flags & _MSG_DONTWAIT and self._timeout is None):
            raise _blocking()
        net = self.network
        if deadline is None:
            deadline = self._deadline()
        while rule is not None and rule.fault == "eagain":
            net.retry(deadline, what)
            self._check()
            rule = self._fault(op)
        return rule

    # -- addresses -------------------------------------------------------------------
    def _parse(self, address: Any, what: str) -> Any:
        """Validate *address* as the kernel and CPython do; return the key form."""
        fam = self._family
        if fam == AF_UNIX:
            if isinstance(address, (bytes, bytearray)):
                return bytes(address)
            if isinstance(address, str):
                return address
            raise TypeError(f"{what}(): AF_UNIX address must be str or bytes, not {type(address).__name__}")
        if not isinstance(address, tuple):
            kind = "AF_INET" if fam == AF_INET else "AF_INET6"
            raise TypeError(f"{what}(): {kind} address must be tuple, not {type(address).__name__}")
        if fam == AF_INET and len(address) != 2 or fam == AF_INET6 and not 2 <= len(address) <= 4:
            raise TypeError(f"{what}(): AF_INET{'6' if fam == AF_INET6 else ''} address must be a pair (host, port)")
        host, port = address[0], address[1]
        if not isinstance(port, int) or isinstance(port, bool):
            raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
        if not 0 <= port <= 65535:
            raise OverflowError(f"{what}(): port must be 0-65535.")
        ip = self.network.resolve(host, fam)
        return (ip, port)

    def _dest(self, key: Any) -> Any:
        """Where a connect or sendto to *key* goes: Linux sends to a wildcard
        address (``0.0.0.0``, ``''``, ``::``) on the loopback interface."""
        if self._family == AF_INET and key[0] == "0.0.0.0":
            return ("127.0.0.1", key[1])
        if self._family == AF_INET6 and key[0] == "::":
            return ("::1", key[1])
        return key

    def _set_source(self, dest_ip: str) -> None:
        """Bound to a wildcard address: connect() fixes the local address to
        the route's source (Linux rehashes the socket under it)."""
        laddr = self._laddr
        if laddr is None or laddr[0] not in ("0.0.0.0", "::"):
            return
        net = self.network
        if self._bound_key is not None:
            net._drop_binding(self._bound_key, self)
        self._register(net.source_ip(dest_ip, self._family), laddr[1])

    def _sockname(self, key: Any) -> Any:
        if self._family == AF_INET6 and key is not None and not isinstance(key, (str, bytes)):
            return (key[0], key[1], 0, 0)
        return key

    def getsockname(self) -> Any:
        self._check()
        if self._laddr is None:
            if self._family == AF_UNIX:
                return ""
            return ("0.0.0.0", 0) if self._family == AF_INET else ("::", 0, 0, 0)
        return self._sockname(self._laddr)

    def getpeername(self) -> Any:
        self._check()
        end = self._end
        if self._state != "connected" or self._raddr is None or (
                end is not None and end.over() and self._family != AF_UNIX):
            raise _oserror(errno.ENOTCONN)  # (a Unix socket keeps its dead peer's name)
        return self._sockname(self._raddr)

    def bind(self, address: Any) -> None:
        self._check()
        key = self._parse(address, "bind")
        self._trace("bind", self._fd, key)
        if self._laddr is not None:
            raise _oserror(errno.EINVAL)
        net = self.network
        if self._family == AF_UNIX:
            if key in ("", b""):
                raise _oserror(errno.EINVAL)
            if key in net._unix:
                raise _oserror(errno.EADDRINUSE)
            net._unix[key] = self
            self._laddr = key
            self._bound_key = ("unix", key)
            return
        ip, port = key
        if not net.is_local_ip(ip):
            raise _oserror(errno.EADDRNOTAVAIL)
        if port == 0:
            port = net.ephemeral_port(self._family, ip, self._type)
        elif net._bind_conflict(self, self._family, ip, port):
            raise _oserror(errno.EADDRINUSE)
        self._register(ip, port)

    def _register(self, ip: str, port: int) -> None:
        self._laddr = (ip, port)
        self._bound_key = (self._family, self._type, ip, port)
        self.network._add_binding(self._bound_key, self)

    def _autobind(self, dest_ip: str | None = None) -> None:
        if self._laddr is not None:
            return
        net = self.network
        if self._family == AF_UNIX:
            return
        if dest_ip and self._type == SOCK_STREAM:
            ip = net.source_ip(dest_ip, self._family)
        else:
            # UDP binds the wildcard; each datagram leaves from the route's address
            ip = "0.0.0.0" if self._family == AF_INET else "::"
        self._register(ip, net.ephemeral_port(self._family, ip, self._type))

    # -- options ---------------------------------------------------------------
    def setsockopt(self, level: int, optname: int, value: Any, optlen: Any = None) -> None:
        self._check()
        if (level, optname) not in _KNOWN_OPTS:
            raise _oserror(errno.ENOPROTOOPT)
        if level == _socket.SOL_SOCKET and optname == _socket.SO_SNDBUF:
            # (kept in _opts, which makes _snd_locked true: SOCK_SNDBUF_LOCK)
            self._sndbuf = max(_MIN_SNDBUF, int(value) * 2)
            if self._end is not None:
                self._end.scap = self._sndbuf
        elif level == _socket.SOL_SOCKET and optname == _socket.SO_RCVBUF:
            self._rcvbuf = max(_MIN_RCVBUF, int(value) * 2)
            if self._end is not None:
                self._end.rcap = self._rcvbuf
        elif level == _socket.SOL_SOCKET and optname == _socket.SO_LINGER:
            if not isinstance(value, (bytes, bytearray)) or len(value) != 8:
                raise _oserror(errno.EINVAL)
            value = struct.unpack("ii", value)
        elif not isinstance(value, (bytes, bytearray)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("a bytes-like object is required, not '%s'" % type(value).__name__)
            value = int(value)
        self._opts[(level, optname)] = value

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        self._check()
        sol = _socket.SOL_SOCKET
        if (level, optname) == (sol, _socket.SO_ERROR):
            if self._end is not None and self._end.err:
                value, self._end.err = self._end.err, 0
            else:
                value, self._err = self._err, 0
        elif (level, optname) == (sol, _socket.SO_TYPE):
            value = self._type
        elif (level, optname) == (sol, _socket.SO_ACCEPTCONN):
            value = int(self._state == "listening")
        elif (level, optname) == (sol, _socket.SO_SNDBUF):
            value = self._sndbuf
        elif (level, optname) == (sol, _socket.SO_RCVBUF):
            value = self._rcvbuf
        elif (level, optname) == (sol, _socket.SO_LINGER):
            onoff, linger = self._opts.get((level, optname), (0, 0))
            packed = struct.pack("ii", onoff, linger)
            return packed[:buflen] if buflen else onoff
        elif (level, optname) in _KNOWN_OPTS:
            value = self._opts.get((level, optname), 0)
            if isinstance(value, (bytes, bytearray)):
                return bytes(value)[:buflen] if buflen else int.from_bytes(bytes(value)[:4], "little")
        else:
            raise _oserror(errno.ENOPROTOOPT)
        if buflen:
            return struct.pack("i", value)[:buflen]
        return value

    def _reuse(self) -> bool:
        return bool(self._opts.get((_socket.SOL_SOCKET, _socket.SO_REUSEADDR), 0))

    # -- TCP: listen / accept / connect -------------------------------------------
    def listen(self, backlog: int = min(SOMAXCONN, 128)) -> None:
        self._check()
        if self._type != SOCK_STREAM:
            raise _oserror(errno.EOPNOTSUPP)
        if self._state not in ("new", "listening"):
            raise _oserror(errno.EINVAL)
        if self._laddr is None:
            if self._family == AF_UNIX:
                raise _oserror(errno.EINVAL)
            self._autobind()
        self._backlog = min(max(int(backlog), 0), SOMAXCONN)
        if self._state != "listening" and self._bound_key[0] != "unix":
            self.network._listening.setdefault(self._bound_key, []).append(self)
        self._state = "listening"
        self._trace("listen", self._fd, self._backlog)
        self.network.activity += 1

    def _stop_listening(self) -> None:
        self._state = "new"
        self._shut |= 1
        net = self.network
        listeners = net._listening.get(self._bound_key)
        if listeners and self in listeners:
            listeners.remove(self)
            if not listeners:
                del net._listening[self._bound_key]
        for pending in list(self._accept_q):
            pending.detached = True
            pending.send_rst()
        self._accept_q.clear()
        net.activity += 1

    def _queue_full(self) -> bool:
        # Linux keeps backlog + 1 connections in the accept queue
        return len(self._accept_q) > self._backlog

    def accept(self) -> tuple[FakeSocket, Any]:
        try:
            sock, addr = self._accept()
        except OSError as exc:
            self._trace("accept", self._fd, _ename(exc), None, None)
            raise
        self._trace("accept", self._fd, sock._fd, addr, sock._conn)
        return sock, addr

    def _accept(self) -> tuple[FakeSocket, Any]:
        self._check()
        if self._state != "listening":
            raise _oserror(errno.EINVAL)
        deadline = self._deadline()
        if self.network._faulty:
            rule = self._fault("accept")
            if rule is not None and rule.fault == "eagain":
                self._retry_eagain("accept", rule, "accept()", deadline=deadline)
        if not self._accept_q:
            self._wait(lambda: bool(self._accept_q) or self._closed, "accept()", deadline=deadline)
            self._check()
        end = self._accept_q.popleft()
        sock = FakeSocket(self.network, self._family, self._type, self._proto)
        sock._state = "connected"
        sock._end = end
        end.sock = sock
        sock._laddr = end.laddr
        sock._raddr = end.raddr
        sock._sndbuf = end.scap
        if _SO_SNDBUF in self._opts:
            sock._opts[_SO_SNDBUF] = self._opts[_SO_SNDBUF]  # SOCK_SNDBUF_LOCK is inherited
        sock._rcvbuf = end.rcap
        sock._conn = end.conn_id
        sock._side = "server"
        sock._trace("conn", sock._fd, sock._conn, "server")
        if self._family != AF_UNIX:
            sock._bound_key = (self._family, self._type, end.laddr[0], end.laddr[1])
            self.network._add_binding(sock._bound_key, sock)
            sock._opts[(_socket.SOL_SOCKET, _socket.SO_REUSEADDR)] = int(self._reuse())
        self.network.activity += 1
        return sock, self._sockname(end.raddr) if end.raddr is not None else ""

    def connect(self, address: Any) -> None:
        code = self._connect(address, "connect")
        self._trace("connect", self._fd, address, "timeout" if code == -1 else code)
        if code == -1:
            raise TimeoutError("timed out")
        if code:
            raise _oserror(code)

    def connect_ex(self, address: Any) -> int:
        if self._closed:
            return errno.EBADF  # returned, not raised, as CPython does
        try:
            code = self._connect(address, "connect_ex")
        except OSError as exc:
            if exc.errno is None or isinstance(exc, _socket.gaierror):
                raise
            code = exc.errno
        code = errno.EWOULDBLOCK if code == -1 else code
        self._trace("connect", self._fd, address, code)
        return code

    def _connect(self, address: Any, what: str) -> int:
        self._check()
        key = self._parse(address, what)
        net = self.network
        if self._family != AF_UNIX:
            key = self._dest(key)
        if self._type == SOCK_DGRAM:
            if self._family != AF_UNIX:
                self._autobind(key[0])
                self._set_source(key[0])
            else:
                if key not in net._unix:
                    return errno.ENOENT
                dest = net._unix[key]
                if dest is None:
                    return errno.ECONNREFUSED  # the path of a closed socket
                if dest._type != self._type:
                    return errno.EPROTOTYPE
                if dest._raddr is not None and dest._raddr != self._laddr:
                    return errno.EPERM  # unix_may_send: it is connected to another socket
                if self._raddr is not None and self._raddr != key:
                    old = net._unix.get(self._raddr)
                    self._raddr = key  # (set first: Linux checks the old peer's peer after)
                    self._unix_dgram_disconnected(old)
            self._raddr = key
            self._state = "connected"
            return 0
        if self._state == "connected":
            if not self._announced:
                # the first connect after a non-blocking one completed says 0
                self._announced = True
                return 0
            return errno.EISCONN
        if self._state == "listening":
            return errno.EISCONN
        if self._state == "refused":
            # an unread error is reported now; a read one leaves ECONNABORTED
            code, self._err = self._err, 0
            self._state = "new"
            return code or errno.ECONNABORTED
        if self._state == "connecting":
            if self._timeout is not None:
                # a timeout-mode socket is non-blocking in the kernel: CPython
                # waits only after EINPROGRESS, so EALREADY comes out at once
                return errno.EALREADY
        else:
            spurious = self._start_connect(key)
            if spurious:
                return errno.EAGAIN
        if self._state == "connecting":
            if self._timeout == 0.0:
                self._announced = False
                return errno.EINPROGRESS
            try:
                net.block(lambda: self._state != "connecting", self._timeout, f"{what}()")
            except TimeoutError:
                return -1
        if self._state == "connected":
            # a timeout-mode TCP socket is non-blocking in the kernel: its
            # connect said EINPROGRESS and CPython read the outcome from
            # SO_ERROR, so the kernel still has a 0 to say to the next connect
            self._announced = self._timeout is None or self._family == AF_UNIX
            return 0
        code, self._err = self._err, 0
        # a timeout-mode socket is non-blocking in the kernel: CPython read the
        # failure from SO_ERROR, and the kernel's socket is still "connecting",
        # so the next connect says ECONNABORTED (as after a non-blocking one)
        self._state = "refused" if self._timeout is not None else "new"
        return code or errno.ECONNREFUSED

    def _start_connect(self, key: Any) -> bool:
        """Start connecting; True when a fault says EAGAIN (it still goes ahead)."""
        net = self.network
        self._err = 0
        self._conn = net.new_conn_id()
        self._side = "client"
        self._trace("conn", self._fd, self._conn, "client")
        rule = found = None
        if net._faulty and self._family != AF_UNIX:
            # counted below: a failure at once, an EAGAIN if the caller sees it
            # (a non-blocking socket)
            self._raddr = key
            self._calls["connect"] += 1
            found = net.faults.pick("connect", conn=self._conn, side=self._side, local=self._laddr,
                                    peer=key, call=self._calls["connect"])
            rule = found[1] if found is not None else None
        if self._family == AF_UNIX:
            if key not in net._unix:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory")
            listener = net._unix[key]  # None: a stale path (its socket closed)
            if listener is not None and listener._type != self._type:
                raise _oserror(errno.EPROTOTYPE)  # a datagram socket's path
            if listener is None or listener._state != "listening":
                raise ConnectionRefusedError(errno.ECONNREFUSED, _strerror(errno.ECONNREFUSED))
            if net._faulty:
                # only refuse and eagain apply to a Unix-socket connect (no SYN to time out)
                self._calls["connect"] += 1
                found = net.faults.pick("connect", conn=self._conn, side=self._side,
                                        local=self._laddr, peer=key, call=self._calls["connect"],
                                        accept=lambda r: r.fault in ("refuse", "eagain"))
                rule = found[1] if found is not None else None
                if rule is not None and rule.fault == "refuse":
                    net.faults.fire(found[0], "connect", self._conn, self._fd)
                    raise ConnectionRefusedError(errno.ECONNREFUSED, _strerror(errno.ECONNREFUSED))
            if listener._queue_full():
                if self._timeout is not None:
                    # Linux says EAGAIN to a non-blocking fd (timeout mode
                    # included: CPython waits only after EINPROGRESS)
                    raise _blocking()
                net.block(lambda: not listener._queue_full() or listener._state != "listening",
                          self._timeout, "connect()")
            self._raddr = key
            net._establish(self, listener, None, key, sync=True)
            # a spurious EAGAIN: connected, but a non-blocking caller is told EAGAIN
            if found is not None and self._timeout == 0.0:
                net.faults.fire(found[0], "connect", self._conn, self._fd)
                self._announced = False  # the next connect() says 0
                return True
            return False
        ip, port = key
        shared = False
        if self._laddr is None:
            # Linux picks a port that makes a unique 4-tuple: ports are shared
            # between destinations
            src = net.source_ip(ip, self._family)
            self._register(src, net.connect_port(self._family, src, key))
            pkey = (self._family, self._laddr[1])
            net._shared[pkey] = net._shared.get(pkey, 0) + 1
            shared = True
        else:
            self._set_source(ip)
            if net._conn_tuples.get((self._family, *self._laddr, *key), self) is not self:
                raise _oserror(errno.EADDRNOTAVAIL)  # that 4-tuple is in use
            if self._tuple is not None:
                shared = self._tuple[1]
                if net._conn_tuples.get(self._tuple[0]) is self:
                    del net._conn_tuples[self._tuple[0]]  # an earlier attempt's
        t = (self._family, *self._laddr, *key)
        self._tuple = (t, shared)
        net._conn_tuples[t] = self
        self._raddr = key
        self._state = "connecting"
        self._connect_token += 1
        token = self._connect_token
        lat, _ = net._link(self._laddr[0], ip)
        net.activity += 1
        if found is not None and found[1].fault != "eagain":
            code = {"refuse": errno.ECONNREFUSED, "unreachable": errno.EHOSTUNREACH,
                    "connect_timeout": errno.ETIMEDOUT}[found[1].fault]
            delay = float(sum(SYN_RETRIES)) if code == errno.ETIMEDOUT else 2 * lat
            # counted now: the connect's fate is sealed (and its limit spent)
            net.faults.fire(found[0], "connect", self._conn, self._fd)
            net.schedule(delay, net._connect_failed, self, token, code)
            return False
        net._send_syn(self, key, token, 0, lat)
        if found is not None and self._timeout == 0.0:
            net.faults.fire(found[0], "connect", self._conn, self._fd)
            return True
        return False

    # -- stream I/O -----------------------------------------------------------------------
    def send(self, data: Any, flags: int = 0) -> int:
        end = self._end
        net = self.network
        if (end is not None and type(data) is bytes and not flags and not self._closed and data
                and not net._faulty):
            peer = end.peer
            if (peer is not None and end.direct and not end.sq and not end.err
                    and not end.wr_shut and not peer.detached and not peer.rd_shut):
                # fast path: nothing queued on a zero-latency link; the bytes go
                # straight to the peer's receive buffer as far as it has room
                n = len(data)
                if n > end.scap:
                    n = end.scap
                free = peer.rcap - len(peer.rbuf)
                if free >= n:
                    peer.rbuf += data if n == len(data) else data[:n]
                    moved = n
                else:
                    moved = free if free > 0 else 0
                    if moved:
                        peer.rbuf += data[:moved]
                    end.sq += data[moved:n]
                peer.bytes_in += moved
                end.bytes_out += moved
                end.sent += n
                net.activity += 1
                if net._tr is not None:
                    net._tr += (6, net._now, "send", self._fd, len(data), n,
                                data if n == len(data) else data[:n])
                    net._tr_bytes += n
                return n
        try:
            n = self._send(data, flags)
        except OSError as exc:
            self._trace("send", self._fd, _len(data), _ename(exc), 0)
            raise
        if net._tr is not None:
            self._trace("send", self._fd, _len(data), n, bytes(memoryview(data).cast("B")[:n]))
        return n

    def _send(self, data: Any, flags: int) -> int:
        self._check()
        view = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
        if self._type == SOCK_DGRAM:
            if self._raddr is None:
                if self._family == AF_UNIX:
                    if self._wmem >= self._sndbuf:  # Linux allocates before it looks
                        self._wait(lambda: self._wmem < self._sndbuf, "send()")
                    raise _oserror(errno.ENOTCONN)
                raise _oserror(errno.EDESTADDRREQ)
            if self._family == AF_UNIX and self.network._unix.get(self._raddr) is None \
                    and self._wmem < self._sndbuf:
                # send() finds its peer dead: ECONNREFUSED, and it is disconnected
                # (the next send: ENOTCONN); sendto() the path only looks it up
                self._raddr = None
                self._state = "new"
                self._unix_dgram_disconnected(None)
                raise ConnectionRefusedError(errno.ECONNREFUSED, _strerror(errno.ECONNREFUSED))
            return self._sendto(bytes(view), self._raddr)
        net = self.network
        deadline = self._call_deadline if self._call_deadline is not None else self._deadline()
        rule = self._fault("send") if net._faulty else None
        if rule is not None and rule.fault == "eagain":
            rule = self._retry_eagain("send", rule, "send()", flags, deadline)
        if self._state == "connecting":
            self._wait(lambda: self._state != "connecting", "send()", flags, deadline)
        end = self._end
        if end is None:
            if self._err:
                code, self._err = self._err, 0
                raise _oserror(code)
            if self._family == AF_UNIX and self._state != "refused":
                raise _oserror(errno.ENOTCONN)
            raise _oserror(errno.EPIPE)
        while True:
            if end.err and self._family != AF_UNIX:  # (Unix send never reports it: EPIPE below)
                code, end.err = end.err, 0
                raise _oserror(code)
            if end.wr_shut or end.reset:
                raise BrokenPipeError(errno.EPIPE, _strerror(errno.EPIPE))
            if self._family == AF_UNIX and (end.peer is None or end.peer.rd_shut or end.peer.detached):
                # a Unix peer that closed or shut reading: EPIPE at once
                raise BrokenPipeError(errno.EPIPE, _strerror(errno.EPIPE))
            space = end.scap - len(end.sq)
            if space > 0:
                break
            self._wait(lambda: end.scap > len(end.sq) or end.reset or bool(end.err), "send()", flags,
                       deadline)
        whole = min(len(view), space)
        n, rule, cut = net.faults.shape_send(rule, whole, conn=self._conn, side=self._side,
                                             local=self._laddr, peer=self._raddr, sent=end.sent,
                                             cutting=bool(net._disconnects))
        if cut is not None and cut[1] == 0:
            # at the mark already: the disconnect acts now
            net._disconnect(end, cut[0])
            cut = None
            if end.err:
                code, end.err = end.err, 0
                raise _oserror(code)
            if end.wr_shut or end.reset:
                raise BrokenPipeError(errno.EPIPE, _strerror(errno.EPIPE))
        if n < whole and rule is not None and rule.fault == "partial_send":
            net.faults.fire(net.faults.index(rule), "send", self._conn, self._fd)
        end.sq += view[:n]
        end.sent += n
        end.transmit()
        net.activity += 1
        if cut is not None:
            net._disconnect(end, cut[0])
        elif net._disconnects:
            net._maybe_disconnect(end, self)
        return n

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        total = len(view)
        sent = 0
        # CPython: the timeout bounds the whole sendall, not each send
        deadline = self._deadline()
        try:
            while sent < total:
                if deadline is not None and self.network._now >= deadline:
                    raise TimeoutError("timed out")
                self._call_deadline = deadline
                sent += self.send(view[sent:], flags)
        finally:
            self._call_deadline = None
        return None

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """``socket.socket.sendfile``: a regular file goes by ``os.sendfile``
        on the fake network, anything else by ``send()``."""
        from simnet.fakesock.sendfile import sock_sendfile

        return sock_sendfile(self, file, offset, count)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if bufsize == 0 and type(bufsize) is int:
            return b""  # CPython returns at once, without a system call
        end = self._end
        net = self.network
        if end is not None and end.rbuf and not flags and not self._closed \
                and type(bufsize) is int and bufsize > 0 and not net._faulty:
            # fast path: a connected stream with data buffered
            rbuf = end.rbuf
            data = bytes(rbuf[:bufsize])
            del rbuf[:bufsize]
            peer = end.peer
            if peer is not None and peer.sq:
                peer.transmit()  # the window opened
            net.activity += 1
            if net._tr is not None:
                net._tr += (6, net._now, "recv", self._fd, bufsize, len(data), data)
                net._tr_bytes += len(data)
            return data
        try:
            data = self._recv(bufsize, flags)
        except OSError as exc:
            self._trace("recv", self._fd, bufsize, _ename(exc), 0)
            raise
        if net._tr is not None:
            self._trace("recv", self._fd, bufsize, len(data), data)
        return data

    def _recv(self, bufsize: int, flags: int) -> bytes:
        self._check()
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if self._type == SOCK_DGRAM:
            return self._recvfrom(bufsize, flags)[0]
        net = self.network
        deadline = self._deadline()
        rule = self._fault("recv") if net._faulty else None
        if rule is not None and rule.fault == "eagain":
            rule = self._retry_eagain("recv", rule, "recv()", flags, deadline)
        peek = bool(flags & _MSG_PEEK)
        if self._state == "connecting":
            if bufsize == 0 and self._timeout == 0.0:
                raise _blocking()
            self._wait(lambda: self._state != "connecting", "recv()", flags, deadline)
        end = self._end
        if end is None:
            if self._err:
                code, self._err = self._err, 0
                raise _oserror(code)
            if self._state == "refused" or self._shut & 1:
                return b""
            raise _oserror(errno.EINVAL if self._family == AF_UNIX else errno.ENOTCONN)
        while True:
            if end.rbuf:
                if rule is not None and rule.fault == "short_read":
                    bufsize = net.faults.size(rule, min(bufsize, len(end.rbuf)), conn=self._conn,
                                              fd=self._fd)
                data = bytes(end.rbuf[:bufsize])
                if not peek:
                    del end.rbuf[:bufsize]
                    peer = end.peer
                    if peer is not None:
                        peer.transmit()  # the window opened
                    net.activity += 1
                    if net._disconnects:
                        net._maybe_disconnect(end, self)
                return data
            if end.fin_rcvd and not (end.err and self._family == AF_UNIX):
                return b""  # (Unix reports a pending error before the EOF)
            if end.err:
                code, end.err = end.err, 0
                raise _oserror(code)
            if end.rd_shut or end.reset:
                return b""
            self._wait(lambda: bool(end.rbuf) or end.fin_rcvd or bool(end.err) or end.reset or end.rd_shut,
                       "recv()", flags, deadline)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        if nbytes == 0 or nbytes > len(view):
            if nbytes > len(view):
                raise ValueError("buffer too small for requested bytes")
            nbytes = len(view)
        data = self.recv(nbytes, flags)
        view[:len(data)] = data
        return len(data)

    def shutdown(self, how: int) -> None:
        self._check()
        self._trace("shutdown", self._fd, how)
        if how not in (_socket.SHUT_RD, _socket.SHUT_WR, _socket.SHUT_RDWR):
            raise _oserror(errno.EINVAL)
        rd = how in (_socket.SHUT_RD, _socket.SHUT_RDWR)
        wr = how in (_socket.SHUT_WR, _socket.SHUT_RDWR)
        if self._type == SOCK_DGRAM:
            if self._raddr is None:
                raise _oserror(errno.ENOTCONN)
            self._shut |= (1 if rd else 0) | (2 if wr else 0)
            return
        if self._state == "listening":
            if rd:
                self._stop_listening()  # Linux: a listener shut for reading stops listening
            return
        end = self._end
        if end is None:
            self._shut |= (1 if rd else 0) | (2 if wr else 0)
            if self._family == AF_UNIX:
                return  # Unix sockets take it without complaint
            raise _oserror(errno.ENOTCONN)  # ... TCP complains, but it takes effect
        if end.over() and self._family != AF_UNIX:  # Unix shutdown never complains
            raise _oserror(errno.ENOTCONN)
        if how in (_socket.SHUT_RD, _socket.SHUT_RDWR):
            end.rd_shut = True
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR) and not end.wr_shut:
            end.wr_shut = True
            end.transmit()
        self.network.activity += 1

    # -- datagrams -----------------------------------------------------------------
    def sendto(self, data: Any, flags_or_addr: Any, addr: Any = None) -> int:
        self._check()
        address = flags_or_addr if addr is None else addr
        payload = bytes(memoryview(data).cast("B"))
        if self._type == SOCK_STREAM:
            if self._state == "connected":
                return self.send(payload)
            raise _oserror(errno.EPIPE if self._family != AF_UNIX else errno.ENOTCONN)
        key = self._parse(address, "sendto")
        if self._family != AF_UNIX:
            key = self._dest(key)
        return self._sendto(payload, key)

    def _sendto(self, payload: bytes, key: Any) -> int:
        net = self.network
        if self._shut & 2:
            raise BrokenPipeError(errno.EPIPE, _strerror(errno.EPIPE))
        if self._err and self._raddr is not None:
            # a pending ICMP error is reported by this send, which sends nothing
            code, self._err = self._err, 0
            raise _oserror(code)
        if self._family != AF_UNIX:
            if len(payload) > MAX_UDP[self._family]:
                raise _oserror(errno.EMSGSIZE)
            self._autobind(key[0])
        net._send_datagram(self, payload, key)
        return len(payload)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        self._check()
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        if self._type == SOCK_STREAM:
            data = self.recv(bufsize, flags)
            return data, None
        return self._recvfrom(bufsize, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        view = memoryview(buffer).cast("B")
        nbytes = nbytes or len(view)
        data, addr = self.recvfrom(nbytes, flags)
        view[:len(data)] = data
        return len(data), addr

    def _recvfrom(self, bufsize: int, flags: int) -> tuple[bytes, Any]:
        deadline = self._deadline()
        while True:
            if self._err:
                # a pending ICMP error comes before queued datagrams, as on Linux
                code, self._err = self._err, 0
                raise _oserror(code)
            if self._dgrams:
                data, src = self._dgrams[0] if flags & _MSG_PEEK else self._dgrams.popleft()
                if not flags & _MSG_PEEK:
                    cost = _dgram_cost(self._family, len(data))
                    self._dgram_bytes -= cost
                    if self._family == AF_UNIX:
                        self._uncharge(self._dgram_owners.popleft(), cost)
                    self.network.activity += 1
                return data[:bufsize], self._sockname(src)
            self._wait(lambda: bool(self._dgrams) or bool(self._err), "recvfrom()", flags, deadline)

    def _accept_datagram(self, data: bytes, src: Any, sender: Any = None) -> None:
        if self._closed:
            return
        if self._raddr is not None and src != self._raddr:
            return  # a connected UDP socket takes its peer's datagrams only
        cost = _dgram_cost(self._family, len(data))
        if self._family == AF_UNIX:
            # flow-controlled by the sender (see _unix_dgram_blocked), never dropped
            if not hasattr(self, "_dgram_owners"):
                self._dgram_owners: deque[Any] = deque()
            self._dgram_owners.append(sender)
            if sender is not None:
                sender._wmem += cost
        elif self._dgram_bytes + cost > self._rcvbuf:
            return  # receive queue full (skb truesize against SO_RCVBUF): dropped
        self._dgrams.append((data, src))
        self._dgram_bytes += cost
        self.network.activity += 1

    def _unix_dgram_disconnected(self, old: Any) -> None:
        """Linux unix_dgram_disconnected: a Unix datagram socket leaving its
        peer *old* (reconnecting, or finding it dead) loses its queued
        datagrams; a live *old* connected back to it then gets ECONNRESET."""
        if not self._dgrams:
            return
        for (data, _), owner in zip(self._dgrams, self._dgram_owners):
            self._uncharge(owner, _dgram_cost(AF_UNIX, len(data)))
        self._dgrams.clear()
        self._dgram_owners.clear()
        self._dgram_bytes = 0
        if old is not None and not old._closed and old._raddr is not None \
                and old._raddr == self._laddr:
            old._err = errno.ECONNRESET
        self.network.activity += 1

    @staticmethod
    def _uncharge(sender: Any, cost: int) -> None:
        if sender is not None:
            sender._wmem -= cost
            sender.network.activity += 1  # the sender may be writable again

    def _unix_dgram_blocked(self, dest: Any) -> bool:
        """Would a Unix datagram from this socket to *dest* wait (Linux:
        sndbuf used up, or the receiver's queue full unless it is connected
        back to us)?"""
        if self._wmem >= self._sndbuf:
            return True
        return (dest is not self and len(dest._dgrams) > UNIX_DGRAM_QLEN
                and (dest._raddr is None or dest._raddr != self._laddr))

    # -- readiness -------------------------------------------------------------------
    def _sel_r(self) -> bool:
        """In select()'s readable list? (fast path of _poll_mask & (IN|HUP|ERR))"""
        end = self._end
        if end is not None and not self._closed:
            return bool(end.rbuf) or end.fin_rcvd or end.rd_shut or end.reset or bool(end.err)
        return bool(self._poll_mask() & (_POLLIN | _POLLHUP | _POLLERR))

    def _sel_w(self) -> bool:
        """In select()'s writable list? (fast path of _poll_mask & (OUT|ERR))"""
        end = self._end
        if end is not None and not self._closed:
            return end.wr_shut or end.reset or len(end.sq) < end.scap or bool(end.err)
        return bool(self._poll_mask() & (_POLLOUT | _POLLERR))

    def _poll_mask(self) -> int:
        """What ``poll()`` would report for this socket now (Linux tcp_poll)."""
        if self._closed:
            return 0
        if self._type == SOCK_DGRAM:
            mask = _POLLOUT
            if self._family == AF_UNIX:
                # unix_dgram_poll: writable while a quarter of SO_SNDBUF is free
                # and, when connected, the peer's queue has room
                peer = self.network._unix.get(self._raddr) if self._raddr is not None else None
                if self._wmem * 4 > self._sndbuf or (
                        peer is not None and peer is not self and len(peer._dgrams) > UNIX_DGRAM_QLEN
                        and peer._raddr != self._laddr):
                    mask = 0
            if self._dgrams:
                mask |= _POLLIN
            if self._err:
                mask |= _POLLERR
            return mask
        state = self._state
        if state == "listening":
            return _POLLIN if self._accept_q else 0
        if state == "connecting":
            return 0
        end = self._end
        if end is None:
            # never connected, or a connect that failed
            mask = _POLLOUT | _POLLHUP
            if self._state == "refused" or self._shut & 1:
                mask |= _POLLIN
            if self._err:
                mask |= _POLLERR | _POLLIN
            return mask
        mask = 0
        if end.reset:
            mask = _POLLIN | _POLLOUT | _POLLHUP
            if end.err:
                mask |= _POLLERR
            return mask
        if end.rbuf or end.fin_rcvd or end.rd_shut:
            mask |= _POLLIN
        if end.wr_shut or end.scap - len(end.sq) > 0:
            mask |= _POLLOUT
        if (end.fin_rcvd or end.rd_shut) and end.wr_shut:
            mask |= _POLLHUP
        elif self._family == AF_UNIX:
            # Linux unix_poll: HUP once both directions are shut, counting the
            # peer's shutdowns (its SHUT_RD shuts our sending; its close, both)
            peer = end.peer
            gone = peer is None or peer.detached
            if (end.fin_rcvd or end.rd_shut or gone) and (end.wr_shut or gone or peer.rd_shut):
                mask |= _POLLHUP | _POLLIN
        if end.err:
            mask |= _POLLERR
        return mask

    # -- closing -----------------------------------------------------------------------
    def close(self) -> None:
        """Close the socket, as ``socket.socket.close`` does: the descriptor is
        released once no ``makefile()`` object uses it any more (until then
        the socket keeps working, for those file objects and for direct calls)."""
        if self._closed:
            return
        if not self._pyclosed:
            self._trace("close", self._fd)
            self._pyclosed = True
        if self._io_refs <= 0:
            self._real_close()

    def _real_close(self) -> None:
        if self._closed:
            return  # released already (e.g. a makefile() made after close())
        self._closed = self._pyclosed = True
        net = self.network
        end = self._end
        if end is not None:
            end.sock = None
            end.detached = True
            linger = self._opts.get((_socket.SOL_SOCKET, _socket.SO_LINGER), (0, 0))
            if self._family == AF_UNIX:
                linger = (0, 0)  # Unix sockets ignore SO_LINGER
            if end.reset:
                net._forget_end(end)
            elif end.rbuf or (linger[0] and linger[1] == 0):
                end.send_rst()  # unread data or SO_LINGER 0: abort
            else:
                if not end.fin_rcvd and self._family != AF_UNIX:
                    net._time_wait.setdefault((self._family, end.laddr[1]), {})[end.laddr[0]] = (
                        net._now + TIME_WAIT, self._reuse())
                    if end.raddr is not None:
                        net._note_time_wait((self._family, *end.laddr, *end.raddr))
                end.rd_shut = True
                if not end.wr_shut:
                    end.wr_shut = True
                    end.transmit()
                if end.fin_sent and end.fin_rcvd:
                    net._forget_end(end)
        if self._state == "listening":
            # connections nobody accepted are reset
            for pending in list(self._accept_q):
                pending.detached = True
                pending.send_rst()
            self._accept_q.clear()
        if self._state == "connecting":
            self._connect_token += 1
        if self._family == AF_UNIX and self._type == SOCK_DGRAM and self._dgrams:
            # unread datagrams are freed: their senders get the memory back
            for (data, _), owner in zip(self._dgrams, self._dgram_owners):
                self._uncharge(owner, _dgram_cost(AF_UNIX, len(data)))
            self._dgrams.clear()
            self._dgram_owners.clear()
        self._state = "closed"
        net._unbind(self)
        net._release_fd(self._fd)
        net.activity += 1

    def _abort(self) -> None:
        """Close without ceremony (the network itself is closing)."""
        self._io_refs = 0
        if self._closed:
            return
        self._closed = self._pyclosed = True
        self.network._unbind(self)
        self.network._release_fd(self._fd)

    def detach(self) -> int:
        raise OSError(errno.EOPNOTSUPP, "a fake socket has no kernel file descriptor to detach")

    def dup(self) -> FakeSocket:
        raise OSError(errno.EOPNOTSUPP, "fake sockets cannot be duplicated")

    # -- files -----------------------------------------------------------------------
    def _decref_socketios(self) -> None:
        """A ``makefile()`` object closed (called by ``socket.SocketIO.close``)."""
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._pyclosed:
            self.close()

