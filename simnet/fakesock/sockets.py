"""FakeSocket: the socket API over the simulated network, with Linux semantics.

Errors are the kernel's, as Python raises them: ``BlockingIOError`` (EAGAIN)
when a non-blocking call would block, ``ConnectionRefusedError``,
``ConnectionResetError``, ``BrokenPipeError`` (EPIPE), ``OSError`` with
ENOTCONN, EISCONN, EALREADY, EINVAL, EADDRINUSE, EBADF ... where Linux gives
them. ``tests/conformance`` checks the same operation sequences against real
loopback sockets.

This module is the facade: the socket API, options, argument checking,
blocking and timeout-mode waiting (CPython's ``sock_call``), fault hooks and
trace records. The protocols it drives are sans-I/O state machines that never
call back into it: stream connections and listeners in
:mod:`simnet.fakesock.tcp`, datagram queues in :mod:`simnet.fakesock.dgram`;
the network-level parts (addresses and ports, the handshake, routing) are
:class:`~simnet.fakesock.FakeNetwork`'s.
"""

from __future__ import annotations

import errno
import operator
import struct
import socket as _socket
from types import MappingProxyType
from typing import Any

from simnet._pyversion import SETBLOCKING_TAKES_TRUTH
from simnet._sockbase import SocketIdentity
from simnet.fakesock import args as _args
from simnet.fakesock import options as _options
from simnet.fakesock._connections import BROADCAST, _dual_stack, canonical_v6, mapped_v4
from simnet.fakesock.dgram import MAX_UDP, UNIX_DGRAM_QLEN, DatagramQueue, dgram_cost  # noqa: F401
from simnet.fakesock.unixnames import Unnamed, canonical as _unix_name
from simnet.fakesock.tcp import (SYN_RETRIES, TCP_RCVBUF, TCP_SNDBUF,  # noqa: F401
                                 TCP_SNDBUF_CONNECTED, TIME_WAIT, Listener, StreamEnd)

# (names from before the protocols moved out, kept for their users; the
# constants above are importable from here too)
_End = StreamEnd
_dgram_cost = dgram_cost

_POLLIN, _POLLOUT, _POLLERR, _POLLHUP = 0x001, 0x004, 0x008, 0x010
_MSG_PEEK = int(_socket.MSG_PEEK)
_MSG_DONTWAIT = int(getattr(_socket, "MSG_DONTWAIT", 0x40))
_MSG_TRUNC = int(_socket.MSG_TRUNC)
_MSG_OOB = int(_socket.MSG_OOB)
_MSG_ERRQUEUE = int(getattr(_socket, "MSG_ERRQUEUE", 0x2000))
_MSG_FASTOPEN = int(getattr(_socket, "MSG_FASTOPEN", 0x20000000))
_RECV_SPECIAL = _MSG_OOB | _MSG_ERRQUEUE
_SCM_RIGHTS = int(getattr(_socket, "SCM_RIGHTS", 1))
_SCM_CREDENTIALS = int(getattr(_socket, "SCM_CREDENTIALS", 2))
_SO_MARK = int(getattr(_socket, "SO_MARK", 36))
_ZERO = 0  # (the fast paths take flags ``is _ZERO``: an int 0, nothing else)
_SSIZE_MAX = _args.SSIZE_MAX

AF_INET, AF_INET6, AF_UNIX = _socket.AF_INET, _socket.AF_INET6, _socket.AF_UNIX
SOCK_STREAM, SOCK_DGRAM = _socket.SOCK_STREAM, _socket.SOCK_DGRAM
_TYPE_MASK = ~(getattr(_socket, "SOCK_NONBLOCK", 0) | getattr(_socket, "SOCK_CLOEXEC", 0))

SOMAXCONN = getattr(_socket, "SOMAXCONN", 4096)

_SO_SNDBUF = (_socket.SOL_SOCKET, _socket.SO_SNDBUF)

# What a socket reads until it writes its own (see FakeSocket._set_opt/_count)
_NO_OPTS: Any = MappingProxyType({})
_NO_CALLS: Any = MappingProxyType({"send": 0, "recv": 0, "accept": 0, "connect": 0})

#: Linux default buffers of a socket other than TCP (wmem_default /
#: rmem_default; TCP's are in simnet.fakesock.tcp).
DEFAULT_BUF = 212992


def _scoped(ip: str) -> str | None:
    """"link-local" or "multicast" for an IPv6 address that needs a scope id."""
    low = ip[:4].lower()
    if low[:2] == "ff":
        return "multicast"
    if low[:3] in ("fe8", "fe9", "fea", "feb"):
        return "link-local"
    return None


def _scope_id(address: Any) -> int:
    """The scope id of an AF_INET6 address tuple (0 if it has none)."""
    return address[3] if isinstance(address, tuple) and len(address) > 3 else 0


def _is_multicast4(ip: str) -> bool:
    """Is *ip* an IPv4 multicast group (224.0.0.0/4)?"""
    head = ip.split(".", 1)[0]
    return head.isdigit() and 224 <= int(head) <= 239


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
    ns = _args.pytime_ns(value)
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
    # Protocol state, made per role: a listener's backlog and accept queue
    # (by listen()), a datagram socket's queue (at creation); a connected
    # stream's state is its StreamEnd, ``_end``.
    _listener: Listener | None = None
    _dq: DatagramQueue | None = None
    #: options set (setsockopt, or inherited from the listener): a dict of
    #: the socket's own once one is set
    _opts: Any = _NO_OPTS
    #: calls per operation, counted for fault rules (``call=``): a dict of the
    #: socket's own once a call is counted
    _calls: Any = _NO_CALLS
    _bind_ip: str | None = None  # the address bind() was given (IPV6_V6ONLY reads it)

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
        self._family = int(family)  # (a plain int: the address keys made from it need no GC tracking)
        self._type = base
        self._proto = proto
        self._timeout = _socket.getdefaulttimeout()
        if getattr(_socket, "SOCK_NONBLOCK", 0) and type & _socket.SOCK_NONBLOCK:
            self._timeout = 0.0
        self._closed = False  # the descriptor is released (the kernel socket is gone)
        self._pyclosed = False  # close() was called (CPython's socket._closed)
        self._io_refs = 0
        self._sndbuf, self._rcvbuf = self._default_buffers(net, family, base)
        self._state = "new"  # new, listening, connecting, connected, refused
        self._laddr: Any = None
        self._bound_key: Any = None
        self._raddr: Any = None
        self._end: StreamEnd | None = None
        self._err = 0  # SO_ERROR of a socket without a connection end
        # connecting
        self._connect_token = 0
        if base == SOCK_DGRAM:
            self._dq = DatagramQueue(family)
        # fault matching: connection number, side, calls per operation
        self._conn: int | None = None
        self._side: str | None = None
        self._announced = True  # a completed connect was reported by connect()
        self._shut = 0  # shutdown() on an unconnected socket still takes effect
        self._call_deadline: float | None = None  # sendall's deadline, across its sends
        self._fd = net._alloc_fd(self)
        if net._tr is not None:
            net._tr += (5, net._now, "socket", self._fd, int(family), int(base))

    # -- basic properties ---------------------------------------------------------
    # family, type, proto: from SocketIdentity (simnet/_sockbase.py)

    @property
    def _accept_q(self) -> Any:
        """The accept queue (empty unless listening)."""
        return self._listener.queue if self._listener is not None else ()

    @property
    def _dgrams(self) -> Any:
        """The queued datagrams, ``(payload, source, sender)`` (empty unless datagram)."""
        return self._dq.items if self._dq is not None else ()

    @property
    def _wmem(self) -> int:
        """Truesize of this Unix datagram socket's datagrams waiting in queues."""
        return self._dq.wmem if self._dq is not None else 0

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
            what = f"LISTEN backlog={self._listener.backlog} queued={len(self._listener.queue)}"
        elif self._dq is not None:
            what = f"UDP queued={len(self._dq)}"
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
    def setblocking(self, flag: bool, /) -> None:
        if SETBLOCKING_TAKES_TRUTH:  # 3.12+: any object, by its truth value
            block = bool(flag)
        else:
            try:
                block = operator.index(flag)
            except TypeError:
                raise TypeError(f"'{_args.tpname(flag)}' object cannot be interpreted as an integer") from None
            if not -(1 << 63) <= block < (1 << 63):
                raise OverflowError("Python int too large to convert to C long")
        # CPython sets the mode first, then fails on a closed socket
        self._timeout = None if block else 0.0
        self._check()

    def getblocking(self) -> bool:
        return self._timeout != 0.0  # CPython: no descriptor needed

    def settimeout(self, value: float | None, /) -> None:
        # CPython checks the value, sets it, then fails on a closed socket
        self._timeout = _parse_timeout(value)
        self._check()

    def gettimeout(self) -> float | None:
        return self._timeout

    def _check(self) -> None:
        if self._closed:
            raise _oserror(errno.EBADF)

    def _count(self, op: str) -> int:
        """Count a call of *op* (for fault rules); its number."""
        calls = self._calls
        if calls is _NO_CALLS:
            calls = self._calls = dict(_NO_CALLS)
        calls[op] += 1
        return calls[op]

    def _set_opt(self, key: tuple[int, int], value: Any) -> None:
        opts = self._opts
        if opts is _NO_OPTS:
            opts = self._opts = {}
        opts[key] = value

    def _fault(self, op: str) -> Any:
        """Count this call of *op*; return the fault rule that fires, if any."""
        call = self._count(op)
        return self.network.faults.match(op, conn=self._conn, side=self._side, local=self._laddr,
                                         peer=self._raddr, call=call, fd=self._fd)

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
            timeout = _options.blocking_timeout(self, what) if self._timeout is None else None
            if timeout is not None:
                # a blocking socket with SO_RCVTIMEO / SO_SNDTIMEO: the kernel
                # gives up with EAGAIN
                if timeout == 0.0:
                    raise _blocking()
                try:
                    self.network.block(ready, timeout, what)
                except TimeoutError:
                    raise _blocking() from None
                return
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
            # (a path as str, an abstract name as bytes, as CPython reports them)
            return _unix_name(_args.unix_address(address))
        host, port, flowinfo, _ = _args.inet_address(address, "AF_INET" if fam == AF_INET else "AF_INET6",
                                                     what)
        ip = self.network.resolve(host, fam)  # (host: converted by idna_converter already)
        _args.check_port(port, flowinfo, what)
        if fam == AF_INET6 and ("." in ip or "%" in ip or "f" in ip or "F" in ip):
            ip = canonical_v6(ip)  # ::ffff:a.b.c.d, as Linux prints it
        return (ip, port)

    def _unroutable(self, key: Any, address: Any = None, sending: bool = False) -> int:
        """The errno of a connect or sendto to *key* that cannot go (0: it
        can), as Linux decides: an IPv4-mapped destination needs a dual-stack
        socket not bound to an IPv6 address (ENETUNREACH), a socket bound to
        an IPv4-mapped address reaches IPv4 only (EAFNOSUPPORT); TCP cannot
        connect to 255.255.255.255 (ENETUNREACH), UDP may send there only
        with SO_BROADCAST (EACCES); TCP cannot connect to a multicast group
        (ENETUNREACH). An IPv6 link-local or multicast address needs a scope
        id (the 4-tuple's; without one a connect is EINVAL -- ENETUNREACH for
        TCP to multicast -- and a sendto goes nowhere); with one, this network
        has no route there (ENETUNREACH). A sendto to port 0 is EINVAL
        (*sending*: a sendto, not a connect)."""
        ip = key[0]
        if self._family == AF_INET and ip != BROADCAST and key[1] and (
                self._type == SOCK_DGRAM or ip[0] not in "2"):
            return 0  # (the common case, at once)
        if self._family == AF_INET6:
            if key[1] and ip[0] not in "fF" and not ip.startswith("::ffff:") and (
                    self._laddr is None or not self._laddr[0].startswith("::ffff:")):
                return 0  # (the common case, at once)
            v4 = mapped_v4(ip)
            lip = self._laddr[0] if self._laddr is not None else "::"
            lv4 = mapped_v4(lip)
            if v4 is None:
                if lv4 is not None:
                    return errno.EAFNOSUPPORT
                scoped = _scoped(ip)
                if scoped is not None:
                    if _scope_id(address):
                        return errno.ENETUNREACH
                    if sending:
                        return 0
                    if scoped == "multicast" and self._type == SOCK_STREAM:
                        return errno.ENETUNREACH
                    return errno.EINVAL
                return errno.EINVAL if sending and key[1] == 0 else 0
            if not _dual_stack(self) or (lip != "::" and lv4 is None):
                return errno.ENETUNREACH
            ip = v4
        if ip == BROADCAST:
            if self._type == SOCK_STREAM:
                return errno.ENETUNREACH
            if not self._opts.get((_socket.SOL_SOCKET, _socket.SO_BROADCAST), 0):
                return errno.EACCES
        elif self._type == SOCK_STREAM and _is_multicast4(ip):
            return errno.ENETUNREACH
        return errno.EINVAL if sending and key[1] == 0 else 0

    def _dest(self, key: Any) -> Any:
        """Where a connect or sendto to *key* goes: Linux sends to a wildcard
        address (``0.0.0.0``, ``''``, ``::``) on the loopback interface."""
        if self._family == AF_INET and key[0] == "0.0.0.0":
            return ("127.0.0.1", key[1])
        if self._family == AF_INET6 and key[0] == "::":
            if self._laddr is not None and mapped_v4(self._laddr[0]) is not None:
                return ("::ffff:127.0.0.1", key[1])  # bound to IPv4: IPv4's loopback
            return ("::1", key[1])
        return key

    def _set_source(self, dest_ip: str) -> None:
        """Bound to a wildcard address: connect() fixes the local address to
        the route's source (Linux rehashes the socket under it)."""
        laddr = self._laddr
        if laddr is None or laddr[0] not in ("0.0.0.0", "::", "::ffff:0.0.0.0") and not (
                laddr[0] == BROADCAST and self._type == SOCK_STREAM):
            # (TCP takes the route's source when bound to 255.255.255.255;
            # UDP keeps that name and sends from the route's source)
            return
        net = self.network
        if self._bound_key is not None:
            net._drop_binding(self._bound_key, self)
        self._register(net.source_ip(dest_ip, self._family), laddr[1])

    def _sockname(self, key: Any) -> Any:
        if self._family == AF_INET6 and key is not None and not isinstance(key, (str, bytes)):
            return (key[0], key[1], 0, 0)
        if key.__class__ is Unnamed:
            return ""  # a socketpair() end: no name
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

    def bind(self, address: Any, /) -> None:
        key = self._parse(address, "bind")  # (CPython parses before it looks at the descriptor)
        self._check()
        self._trace("bind", self._fd, key)
        net = self.network
        if self._family == AF_UNIX and key == "":
            # Linux autobinds to an abstract name (a bound socket keeps its name)
            if self._laddr is None:
                self._laddr = net._unix.autobind(self)
                self._bound_key = ("unix", self._laddr)
            return
        if self._laddr is not None:
            raise _oserror(errno.EINVAL)
        if self._family == AF_UNIX:
            code = net._unix.bind(key, self)
            if code:
                raise _oserror(code)
            self._laddr = key
            self._bound_key = ("unix", key)
            return
        ip, port = key
        v4 = mapped_v4(ip) if self._family == AF_INET6 else None
        if v4 is not None and not _dual_stack(self):
            raise _oserror(errno.EINVAL)  # IPV6_V6ONLY: no IPv4-mapped address
        scoped = _scoped(ip) if self._family == AF_INET6 and v4 is None else None
        if scoped is not None:
            # an IPv6 link-local or multicast address: EINVAL without a scope
            # id; a link-local one is not this host's (EADDRNOTAVAIL; ENODEV
            # for a scope id that names no interface: only 1, loopback, does)
            scope = _scope_id(address)
            if scoped == "link-local":
                raise _oserror(errno.EINVAL if not scope else
                               errno.EADDRNOTAVAIL if scope == 1 else errno.ENODEV)
            if not scope or self._type == SOCK_STREAM:
                raise _oserror(errno.EINVAL)
        elif not net.is_local_ip(ip) and (v4 or ip) != BROADCAST and not _is_multicast4(v4 or ip):
            raise _oserror(errno.EADDRNOTAVAIL)
        if port == 0:
            port = net.ephemeral_port(self._family, ip, self._type)
        elif net._bind_conflict(self, self._family, ip, port):
            raise _oserror(errno.EADDRINUSE)
        self._register(ip, port)
        self._bind_ip = ip

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
    def setsockopt(self, *args: Any) -> None:
        """``setsockopt(level, optname, value)`` or ``(level, optname, None,
        optlen)``: as the kernel does it (see :mod:`simnet.fakesock.options`)."""
        level, optname, buf, optlen = _options.parse_set_args(args)
        self._check()
        _options.set_option(self, level, optname, buf, optlen)

    def getsockopt(self, *args: Any) -> Any:
        """``getsockopt(level, optname[, buflen])``: an int without buflen
        (or with 0), else the bytes the kernel writes (at most buflen)."""
        level, optname, buflen = _options.parse_get_args(args)
        self._check()
        return _options.get_option(self, level, optname, buflen)

    def _take_error(self) -> int:
        """SO_ERROR: the pending error, cleared by reading it."""
        if self._end is not None and self._end.err:
            return self._end.take_error()
        value, self._err = self._err, 0
        return value

    def _reuse(self) -> bool:
        return bool(self._opts.get((_socket.SOL_SOCKET, _socket.SO_REUSEADDR), 0))

    # -- TCP: listen / accept / connect -------------------------------------------
    def listen(self, backlog: int = min(SOMAXCONN, 128), /) -> None:
        backlog = _args.c_int(backlog)
        self._check()
        if self._type != SOCK_STREAM:
            raise _oserror(errno.EOPNOTSUPP)
        if self._state not in ("new", "listening"):
            raise _oserror(errno.EINVAL)
        if self._laddr is None:
            if self._family == AF_UNIX:
                raise _oserror(errno.EINVAL)
            self._autobind()
        backlog = min(max(backlog, 0), SOMAXCONN)
        if self._listener is None:
            self._listener = Listener(backlog)
        else:
            self._listener.backlog = backlog
        if self._state != "listening" and self._bound_key[0] != "unix":
            self.network._listening.setdefault(self._bound_key, []).append(self)
        self._state = "listening"
        self._trace("listen", self._fd, backlog)
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
        self._listener.abort()
        net.activity += 1

    def _queue_full(self) -> bool:
        """A listener's accept queue is full (see Listener.full)."""
        return self._listener.full()

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
        listener = self._listener
        if not listener.queue:
            self._wait(lambda: bool(listener.queue) or self._closed, "accept()", deadline=deadline)
            self._check()
        end = listener.pop()
        sock = FakeSocket(self.network, self._family, self._type, self._proto)
        sock._state = "connected"
        sock._end = end
        end.sock = sock
        sock._laddr = end.laddr
        sock._raddr = end.raddr
        sock._sndbuf = end.scap
        if _SO_SNDBUF in self._opts:
            sock._set_opt(_SO_SNDBUF, self._opts[_SO_SNDBUF])  # SOCK_SNDBUF_LOCK is inherited
        sock._rcvbuf = end.rcap
        sock._conn = end.conn_id
        sock._side = "server"
        sock._trace("conn", sock._fd, sock._conn, "server")
        if self._family != AF_UNIX:
            sock._bound_key = (self._family, self._type, end.laddr[0], end.laddr[1])
            self.network._add_binding(sock._bound_key, sock)
            _options.inherit(sock, self)  # a TCP socket has its listener's options
        self.network.activity += 1
        return sock, self._sockname(end.raddr) if end.raddr is not None else ""

    def connect(self, address: Any, /) -> None:
        code = self._connect(address, "connect")
        self._trace("connect", self._fd, address, "timeout" if code == -1 else code)
        if code == -1:
            raise TimeoutError("timed out")
        if code:
            raise _oserror(code)

    def connect_ex(self, address: Any, /) -> int:
        if self._closed:
            self._parse(address, "connect_ex")  # (the address is checked first)
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
        key = self._parse(address, what)
        self._check()
        if key == "":
            return errno.EINVAL  # (an AF_UNIX address of no name)
        started = False
        net = self.network
        if self._family != AF_UNIX:
            key = self._dest(key)
        if self._type == SOCK_DGRAM:
            if self._family != AF_UNIX:
                self._autobind(key[0])
                code = self._unroutable(key, address)
                if code:
                    return code
                self._set_source(key[0])
            else:
                code, dest = net._unix.find(key)
                if code:
                    return code  # (a missing path, a closed socket's, a free abstract name)
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
            return errno.EINVAL if self._family == AF_UNIX else errno.EISCONN
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
            code = self._unroutable(key, address) if self._family != AF_UNIX else 0
            if code:
                return code
            spurious = self._start_connect(key)
            if spurious:
                return errno.EAGAIN
            started = True
        if self._state == "connecting":
            if self._timeout == 0.0:
                self._announced = False
                return errno.EINPROGRESS
            sndtimeo = _options.blocking_timeout(self, "connect()") if self._timeout is None else None
            if sndtimeo == 0.0 and started:
                self._announced = False
                return errno.EINPROGRESS  # (a later connect looks again)
            try:
                net.block(lambda: self._state != "connecting",
                          self._timeout if sndtimeo is None else sndtimeo, f"{what}()")
            except TimeoutError:
                if sndtimeo is not None:
                    self._announced = False
                    return errno.EINPROGRESS  # SO_SNDTIMEO ran out: it goes on in the background
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
            call = self._count("connect")
            found = net.faults.pick("connect", conn=self._conn, side=self._side, local=self._laddr,
                                    peer=key, call=call)
            rule = found[1] if found is not None else None
        if self._family == AF_UNIX:
            code, listener = net._unix.find(key)
            if code == errno.ENOENT:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory")
            # (listener None: a stale path, or an abstract name nobody holds)
            if listener is not None and listener._type != self._type:
                raise _oserror(errno.EPROTOTYPE)  # a datagram socket's path
            if listener is None or listener._state != "listening":
                raise ConnectionRefusedError(errno.ECONNREFUSED, _strerror(errno.ECONNREFUSED))
            if net._faulty:
                # only refuse and eagain apply to a Unix-socket connect (no SYN to time out)
                call = self._count("connect")
                found = net.faults.pick("connect", conn=self._conn, side=self._side,
                                        local=self._laddr, peer=key, call=call,
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
    def send(self, data: Any, flags: int = 0, /) -> int:
        end = self._end
        net = self.network
        if (end is not None and type(data) is bytes and flags is _ZERO and not self._closed and data
                and not net._faulty):
            peer = end.peer
            # (w_event: wr_shut, reset or an error)
            if (peer is not None and end.direct and not end.sq and not end.w_event
                    and not peer.detached and not peer.rd_shut):
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
        data = _args.read_buffer(data)  # ("y*|i:send", before any state check)
        flags = _args.c_int(flags)
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
        if flags:
            self._send_flags(flags)
        if self._type == SOCK_DGRAM:
            if self._raddr is None:
                if self._family == AF_UNIX:
                    dq = self._dq
                    if dq.wmem >= self._sndbuf:  # Linux allocates before it looks
                        self._wait(lambda: dq.wmem < self._sndbuf, "send()")
                    raise _oserror(errno.ENOTCONN)
                raise _oserror(errno.EDESTADDRREQ)
            if self._family == AF_UNIX and self.network._unix.get(self._raddr) is None \
                    and self._dq.wmem < self._sndbuf:
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
            code = end.send_result()
            if not code:
                break
            if code > 0:
                raise _oserror(code)
            self._wait(lambda: end.scap > len(end.sq) or end.reset or bool(end.err), "send()", flags,
                       deadline)
        whole = min(len(view), end.scap - len(end.sq))
        n, rule, cut = net.faults.shape_send(rule, whole, conn=self._conn, side=self._side,
                                             local=self._laddr, peer=self._raddr, sent=end.sent,
                                             cutting=bool(net._disconnects))
        if cut is not None and cut[1] == 0:
            # at the mark already: the disconnect acts now
            net._disconnect(end, cut[0])
            cut = None
            if end.err:
                raise _oserror(end.take_error())
            if end.wr_shut or end.reset:
                raise BrokenPipeError(errno.EPIPE, _strerror(errno.EPIPE))
        if n < whole and rule is not None and rule.fault == "partial_send":
            net.faults.fire(net.faults.index(rule), "send", self._conn, self._fd)
        end.write(view, n)
        net.activity += 1
        if cut is not None:
            net._disconnect(end, cut[0])
        elif net._disconnects:
            net._maybe_disconnect(end, self)
        return n

    def sendall(self, data: Any, flags: int = 0, /) -> None:
        view = memoryview(_args.read_buffer(data))  # ("y*|i:sendall")
        flags = _args.c_int(flags)
        total = len(view)
        sent = 0
        # CPython: the timeout bounds the whole sendall, not each send
        deadline = self._deadline()
        try:
            while True:  # (at least one send, as CPython does: b"" too)
                if deadline is not None and self.network._now >= deadline:
                    raise TimeoutError("timed out")
                self._call_deadline = deadline
                sent += self.send(view[sent:], flags)
                if sent >= total:
                    break
        finally:
            self._call_deadline = None
        return None

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """``socket.socket.sendfile``: a regular file goes by ``os.sendfile``
        on the fake network, anything else by ``send()``."""
        from simnet.fakesock.sendfile import sock_sendfile

        return sock_sendfile(self, file, offset, count)

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        end = self._end
        net = self.network
        if end is not None and end.rbuf and flags is _ZERO and not self._closed \
                and type(bufsize) is int and 0 < bufsize <= _SSIZE_MAX and not net._faulty:
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
        bufsize = _args.c_ssize(bufsize)  # ("n|i:recv", before any state check)
        flags = _args.c_int(flags)
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if bufsize == 0:
            return b""  # CPython returns at once, without a system call
        return self._recv_traced(bufsize, flags)

    def _recv_traced(self, bufsize: int, flags: int) -> bytes:
        """A stream recv's system call, traced (recvfrom and recvmsg make it
        for a size of 0 too)."""
        try:
            data = self._recv(bufsize, flags)
        except OSError as exc:
            self._trace("recv", self._fd, bufsize, _ename(exc), 0)
            raise
        if self.network._tr is not None:
            self._trace("recv", self._fd, bufsize, len(data), data)
        return data

    def _recv(self, bufsize: int, flags: int) -> bytes:
        self._check()
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if flags & _RECV_SPECIAL:
            self._recv_flags(flags, "recv()")
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
                data = end.take(bufsize, peek)
                if not peek:
                    net.activity += 1
                    if net._disconnects:
                        net._maybe_disconnect(end, self)
                return data
            code = end.read_result()
            if code == 0:
                return b""
            if code > 0:
                raise _oserror(code)
            self._wait(end.readable, "recv()", flags, deadline)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = _args.write_buffer(buffer, "recv_into")  # ("w*|ni:recv_into")
        nbytes = _args.c_ssize(nbytes)
        flags = _args.c_int(flags)
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        if nbytes == 0 or nbytes > len(view):
            if nbytes > len(view):
                raise ValueError("buffer too small for requested bytes")
            nbytes = len(view)
        data = self.recv(nbytes, flags)
        if len(data) > nbytes:  # MSG_TRUNC on a datagram: its whole length
            view[:nbytes] = data[:nbytes]
            return len(data)
        view[:len(data)] = data
        return len(data)

    def _send_flags(self, flags: int) -> None:
        """The errors Linux gives a send with *flags* it refuses: MSG_OOB on a
        datagram socket (EOPNOTSUPP); MSG_FASTOPEN on a TCP socket that is
        connected (EISCONN, but once 0 after a non-blocking connect, as a
        second connect() would) or has no address to connect to (EINVAL)."""
        if self._type == SOCK_DGRAM:
            if flags & _MSG_OOB:
                raise _oserror(errno.EOPNOTSUPP)
        elif flags & _MSG_FASTOPEN and self._family != AF_UNIX:
            if self._state == "connected":
                if not self._announced:
                    # the kernel's socket is still "connecting" after a
                    # non-blocking connect: its connect step says 0 now (and
                    # the socket is connected for the next one)
                    self._announced = True
                    return
                raise _oserror(errno.EISCONN)
            if self._state == "new":
                raise _oserror(errno.EINVAL)

    def _recv_flags(self, flags: int, what: str) -> None:
        """What Linux does with MSG_ERRQUEUE (the error queue, always empty
        here: EAGAIN at once; CPython's timeout mode waits out its timeout)
        and MSG_OOB on TCP (no urgent data is ever pending: EINVAL) or a Unix
        datagram socket (EOPNOTSUPP)."""
        if self._family == AF_UNIX:
            if flags & _MSG_OOB and self._type == SOCK_DGRAM:
                raise _oserror(errno.EOPNOTSUPP)
            return
        if flags & _MSG_ERRQUEUE:
            if self._timeout is not None and self._timeout > 0.0:
                self.network.block(lambda: self._closed, self._timeout, what)
                self._check()
            raise _blocking()
        if flags & _MSG_OOB and self._type == SOCK_STREAM:
            raise _oserror(errno.EINVAL)

    def shutdown(self, how: int, /) -> None:
        how = _args.c_int_direct(how)
        self._check()
        self._trace("shutdown", self._fd, how)
        if how not in (_socket.SHUT_RD, _socket.SHUT_WR, _socket.SHUT_RDWR):
            raise _oserror(errno.EINVAL)
        rd = how in (_socket.SHUT_RD, _socket.SHUT_RDWR)
        wr = how in (_socket.SHUT_WR, _socket.SHUT_RDWR)
        if self._type == SOCK_DGRAM:
            if self._raddr is None and self._family != AF_UNIX:
                raise _oserror(errno.ENOTCONN)  # (Unix shutdown never complains)
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
        end.shutdown(rd, wr)
        self.network.activity += 1

    # -- datagrams -----------------------------------------------------------------
    def sendto(self, *args: Any) -> int:
        """``sendto(data[, flags], address)``."""
        count = len(args)
        if count == 2:
            data, address = args
            flags = 0
        elif count == 3:
            data, flags, address = args
        else:
            raise TypeError(f"sendto() takes 2 or 3 arguments ({count} given)")
        payload = bytes(_args.read_buffer(data))  # ("y*iO:sendto", then the address)
        flags = _args.c_int(flags)
        key = self._parse(address, "sendto")
        self._check()
        if self._type == SOCK_STREAM:
            if self._family == AF_UNIX:
                # a Unix stream takes no address: EISCONN once connected
                raise _oserror(errno.EISCONN if self._state == "connected" else errno.EOPNOTSUPP)
            if self._state == "connected":
                return self.send(payload, flags)  # (a connected TCP socket ignores the address)
            raise _oserror(errno.EPIPE)
        if key == "":
            raise _oserror(errno.EINVAL)  # (an AF_UNIX address of no name)
        if flags:
            self._send_flags(flags)
        if self._family != AF_UNIX:
            key = self._dest(key)
            code = self._unroutable(key, address, sending=True)
            if code:
                self._autobind(key[0])
                raise _oserror(code)
        return self._sendto(payload, key)

    def _sendto(self, payload: bytes, key: Any) -> int:
        net = self.network
        if self._shut & 2:
            raise BrokenPipeError(errno.EPIPE, _strerror(errno.EPIPE))
        if self._err and self._raddr is not None:
            # a pending ICMP error is reported by this send, which sends nothing
            code, self._err = self._err, 0
            raise _oserror(code)
        if self._family == AF_UNIX:
            self._send_unix_datagram(payload, key)
            return len(payload)
        if len(payload) > MAX_UDP[self._family]:
            raise _oserror(errno.EMSGSIZE)
        self._autobind(key[0])
        net._send_datagram(self, payload, key)
        return len(payload)

    def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]:
        bufsize = _args.c_ssize(bufsize)  # ("n|i:recvfrom")
        flags = _args.c_int(flags)
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        self._check()
        if flags & _RECV_SPECIAL:
            self._recv_flags(flags, "recvfrom()")
        if self._type == SOCK_STREAM:
            return self._recv_traced(bufsize, flags), None
        return self._recvfrom(bufsize, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        view = _args.write_buffer(buffer, "recvfrom_into")  # ("w*|ni:recvfrom_into")
        nbytes = _args.c_ssize(nbytes)
        flags = _args.c_int(flags)
        if nbytes < 0:
            raise ValueError("negative buffersize in recvfrom_into")
        if nbytes == 0:
            nbytes = len(view)
        elif nbytes > len(view):
            raise ValueError("nbytes is greater than the length of the buffer")
        data, addr = self.recvfrom(nbytes, flags)
        if len(data) > nbytes:  # MSG_TRUNC on a datagram: its whole length
            view[:nbytes] = data[:nbytes]
            return len(data), addr
        view[:len(data)] = data
        return len(data), addr

    # -- sendmsg / recvmsg ---------------------------------------------------------
    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None, /) -> int:
        """``sendmsg()``: the buffers go as one ``send`` (or ``sendto`` with
        *address*). Ancillary data an IP socket's kernel ignores is ignored
        (SCM_RIGHTS and credentials; on TCP any level but SOL_SOCKET), and an
        unknown SOL_SOCKET type is EINVAL; the rest (file descriptors over
        AF_UNIX, IP-level items on UDP) is not simulated: an ``OSError``
        (EOPNOTSUPP) says so."""
        flags = _args.c_int(flags)  # ("O|OiO:sendmsg"; then the address, buffers, ancdata)
        if address is not None:
            self._parse(address, "sendmsg")
        chunks = [bytes(_args.read_buffer(b))
                  for b in _args.sequence(buffers, "sendmsg() argument 1 must be an iterable")]
        items = [_args.ancillary_item(item)
                 for item in _args.sequence(ancdata, "sendmsg() argument 2 must be an iterable")]
        if flags < 0:
            raise _oserror(errno.EINVAL)  # (MSG_CMSG_COMPAT: refused before the descriptor)
        self._check()
        code = self._ancillary_verdict(items) if items else 0
        if code > 0 and self._family == AF_UNIX or code and (
                self._state == "connected" or self._type == SOCK_DGRAM and (
                address is not None or self._raddr is not None)):
            # (otherwise the send's own error comes first, as on Linux)
            if code > 0:
                raise _oserror(code)
            raise OSError(errno.EOPNOTSUPP, "sendmsg(): ancillary data (file descriptors, "
                          "credentials) is not simulated on the fake network")
        payload = b"".join(chunks)
        if address is not None:
            return self.sendto(payload, flags, address)
        return self.send(payload, flags)

    def _ancillary_verdict(self, items: list) -> int:
        """What sendmsg's ancillary *items* come to: 0 (the kernel ignores
        them), an errno, or -1 (not simulated)."""
        verdict = 0
        if self._family == AF_UNIX:
            # (Linux reads them first: only SOL_SOCKET items count)
            for level, kind, data in items:
                if level != _socket.SOL_SOCKET:
                    continue
                if kind == _SCM_RIGHTS:
                    whole = len(data) - len(data) % 4  # (as many descriptors as fit)
                    if not whole:
                        continue
                    for (fd,) in struct.iter_unpack("i", bytes(data[:whole])):
                        if not self._open_fd(fd):
                            return errno.EBADF
                elif kind != _SCM_CREDENTIALS or len(data) != 12:  # (a struct ucred)
                    return errno.EINVAL
                verdict = -1
            return verdict
        for level, kind, data in items:
            if level == _socket.SOL_SOCKET:
                if kind in (_SCM_RIGHTS, _SCM_CREDENTIALS):
                    continue  # (meaningful on AF_UNIX only)
                if kind == _SO_MARK and len(data) == 4:
                    continue  # (the packets' firewall mark: nothing here reads it)
                return errno.EINVAL
            if self._type == SOCK_DGRAM and level == (
                    _socket.IPPROTO_IP if self._family == AF_INET else _socket.IPPROTO_IPV6):
                verdict = verdict or -1  # (an IP-level item: the rest are ignored)
        return verdict

    def _open_fd(self, fd: int) -> bool:
        """Is *fd* a descriptor this process could pass: a fake socket's or
        an open real one?"""
        if fd in self.network._fds:
            return True
        import os

        try:
            os.fstat(fd)
        except (OSError, OverflowError):
            return False
        return True

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /) -> tuple:
        """``recvmsg()``: ``(data, [], msg_flags, address)``; ``msg_flags``
        has MSG_TRUNC when a datagram was longer than *bufsize*."""
        bufsize = _args.c_ssize(bufsize)  # ("n|ni:recvmsg")
        ancbufsize = _args.c_ssize(ancbufsize)
        flags = _args.c_int(flags)
        if bufsize < 0:
            raise ValueError("negative buffer size in recvmsg()")
        if not 0 <= ancbufsize <= _args.INT_MAX:
            raise ValueError("invalid ancillary data buffer length")
        if flags < 0:
            raise _oserror(errno.EINVAL)  # (MSG_CMSG_COMPAT: refused before the descriptor)
        self._check()
        if flags & _RECV_SPECIAL:
            self._recv_flags(flags, "recvmsg()")
        if self._type == SOCK_STREAM:
            return self._recv_traced(bufsize, flags & ~_MSG_TRUNC), [], 0, None
        data, src, full = self._recvfrom_full(bufsize, flags)
        return data, [], _MSG_TRUNC if full > bufsize else 0, src

    def recvmsg_into(self, buffers: Any, ancbufsize: int = 0, flags: int = 0, /) -> tuple:
        """``recvmsg_into()``: the data spread over *buffers* in order;
        ``(nbytes, [], msg_flags, address)``."""
        ancbufsize = _args.c_ssize(ancbufsize)  # ("O|ni:recvmsg_into", then the buffers)
        flags = _args.c_int(flags)
        views = []
        for b in _args.sequence(buffers, "recvmsg_into() argument 1 must be an iterable"):
            try:
                views.append(_args.write_buffer(b, "recvmsg_into"))
            except TypeError:
                raise TypeError("recvmsg_into() argument 1 must be an iterable of single-segment "
                                "read-write buffers") from None
        data, anc, msg_flags, address = self.recvmsg(sum(len(v) for v in views), ancbufsize, flags)
        at = 0
        for v in views:
            part = data[at:at + len(v)]
            v[:len(part)] = part
            at += len(part)
        return len(data), anc, msg_flags, address

    def _recvfrom(self, bufsize: int, flags: int) -> tuple[bytes, Any]:
        data, src, full = self._recvfrom_full(bufsize, flags)
        if flags & _MSG_TRUNC and full > len(data):
            # Linux returns the datagram's real length, and CPython sizes the
            # bytes object to it: the tail was never written (zeros here)
            data += bytes(full - len(data))
        return data, src

    def _recvfrom_full(self, bufsize: int, flags: int) -> tuple[bytes, Any, int]:
        """The next datagram: ``(its first *bufsize* bytes, its source as
        ``recvfrom`` reports it, its whole length)``."""
        deadline = self._deadline()
        dq = self._dq
        while True:
            if self._err:
                # a pending ICMP error comes before queued datagrams, as on Linux
                code, self._err = self._err, 0
                raise _oserror(code)
            if dq.items:
                peek = bool(flags & _MSG_PEEK)
                data, src = dq.take(peek)
                if not peek:
                    self.network.activity += 1
                # an unnamed sender (unbound, or a socketpair end): None
                return (data[:bufsize], None if src.__class__ is Unnamed else self._sockname(src),
                        len(data))
            self._wait(lambda: bool(dq.items) or bool(self._err), "recvfrom()", flags, deadline)

    def _accept_datagram(self, data: bytes, src: Any, sender: Any = None) -> None:
        """A datagram from *src* (*sender*: the sending Unix socket) arrives."""
        if self._closed:
            return
        if self._raddr is not None and src != self._raddr:
            return  # a connected UDP socket takes its peer's datagrams only
        if self._dq.offer(data, src, self._rcvbuf, sender._dq if sender is not None else None):
            self.network.activity += 1

    def _send_unix_datagram(self, payload: bytes, key: Any) -> None:
        """A Unix datagram to the socket bound to path *key*: Linux's checks
        in order, waiting (or EAGAIN) while flow control holds it back."""
        net = self.network
        dq = self._dq
        if dq.wmem >= self._sndbuf:
            # Linux allocates the datagram (against SO_SNDBUF) before it
            # looks up the destination
            self._wait(lambda: dq.wmem < self._sndbuf, "sendto()")
        code, dest = net._unix.find(key)
        if code:
            # a missing path; a closed socket's path, an abstract name nobody holds
            raise _oserror(code)
        if dest._type != self._type:
            raise _oserror(errno.EPROTOTYPE)
        if dest._raddr is not None and dest._raddr != self._laddr:
            raise PermissionError(errno.EPERM, _strerror(errno.EPERM))  # connected elsewhere
        if self._unix_dgram_blocked(dest):
            # Linux flow control: EAGAIN for a non-blocking sender, else wait
            self._wait(lambda: dest._closed or not self._unix_dgram_blocked(dest), "sendto()")
            if dest._closed:
                raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        dest._accept_datagram(payload, self._laddr, self)

    def _unix_dgram_disconnected(self, old: Any) -> None:
        """Linux unix_dgram_disconnected: a Unix datagram socket leaving its
        peer *old* (reconnecting, or finding it dead) loses its queued
        datagrams; a live *old* connected back to it then gets ECONNRESET."""
        if not self._dq.items:
            return
        self._dq.drop_all()
        if old is not None and not old._closed and old._raddr is not None \
                and old._raddr == self._laddr:
            old._err = errno.ECONNRESET
        self.network.activity += 1

    def _unix_dgram_blocked(self, dest: Any) -> bool:
        """Would a Unix datagram from this socket to *dest* wait (Linux:
        sndbuf used up, or the receiver's queue full unless it is connected
        back to us)?"""
        takes_ours = dest is self or (dest._raddr is not None and dest._raddr == self._laddr)
        return self._dq.send_blocked(self._sndbuf, dest._dq, takes_ours)

    # -- readiness -------------------------------------------------------------------
    def _sel_r(self) -> bool:
        """In select()'s readable list? (fast path of _poll_mask & (IN|HUP|ERR))"""
        end = self._end
        if end is not None and not self._closed:
            return bool(end.rbuf) or end.r_event
        if self._state == "listening" and not self._closed:
            return bool(self._listener.queue)  # (a listener's whole poll mask)
        return bool(self._poll_mask() & (_POLLIN | _POLLHUP | _POLLERR))

    def _sel_w(self) -> bool:
        """In select()'s writable list? (fast path of _poll_mask & (OUT|ERR))"""
        end = self._end
        if end is not None and not self._closed:
            return end.w_event or len(end.sq) < end.scap
        return bool(self._poll_mask() & (_POLLOUT | _POLLERR))

    def _poll_mask(self) -> int:
        """What ``poll()`` would report for this socket now (Linux tcp_poll)."""
        end = self._end
        if end is not None and not self._closed:
            return end.poll_mask()  # a connected stream (only those have an end)
        if self._closed:
            return 0
        state = self._state
        if state == "listening":
            return _POLLIN if self._listener.queue else 0
        dq = self._dq
        if dq is not None:
            mask = _POLLOUT
            if self._family == AF_UNIX:
                # unix_dgram_poll: writable while a quarter of SO_SNDBUF is free
                # and, when connected, the peer's queue has room
                peer = self.network._unix.get(self._raddr) if self._raddr is not None else None
                if not dq.poll_writable(self._sndbuf) or (
                        peer is not None and peer is not self and peer._dq.over_qlen()
                        and peer._raddr != self._laddr):
                    mask = 0
            if dq.items:
                mask |= _POLLIN
            if self._err:
                mask |= _POLLERR
            return mask
        if state == "connecting":
            return 0
        # never connected, or a connect that failed
        mask = _POLLOUT | _POLLHUP
        if state == "refused" or self._shut & 1:
            mask |= _POLLIN
        if self._err:
            mask |= _POLLERR | _POLLIN
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
                end.close()
        if self._state == "listening":
            self._listener.abort()  # connections nobody accepted are reset
        if self._state == "connecting":
            self._connect_token += 1
        if self._family == AF_UNIX and self._dq is not None and self._dq.items:
            # unread datagrams are freed: their senders get the memory back
            self._dq.drop_all()
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

    _inheritable = False

    def get_inheritable(self) -> bool:
        """The close-on-exec flag's opposite, as on a real socket (False
        unless set; nothing is ever executed on the fake network)."""
        if self._closed:
            raise _oserror(errno.EBADF)
        return self._inheritable

    def set_inheritable(self, inheritable: Any) -> None:
        value = _args.c_int_direct(inheritable)  # (os.set_inheritable's C int)
        if self._closed:
            raise _oserror(errno.EBADF)
        self._inheritable = bool(value)

    def dup(self) -> FakeSocket:
        raise OSError(errno.EOPNOTSUPP, "fake sockets cannot be duplicated")

    # -- files -----------------------------------------------------------------------
    def _decref_socketios(self) -> None:
        """A ``makefile()`` object closed (called by ``socket.SocketIO.close``)."""
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._pyclosed:
            self.close()

