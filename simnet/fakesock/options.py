"""Socket options of fake sockets: ``setsockopt``/``getsockopt`` as the kernel does them.

A table-driven model of what this machine's kernel does with socket options
(measured on real loopback sockets; pinned by
``tests/conformance/test_sockopts.py``, which compares real and fake over
every option x socket kind x value x ``getsockopt`` form). Three layers:

* CPython's argument handling (:func:`parse_set_args`, :func:`parse_get_args`):
  an int value becomes a 4-byte native int, a bytes-like value its bytes,
  ``(None, optlen)`` a NULL buffer of that length; TypeError/OverflowError
  and "getsockopt buflen out of range" exactly as ``socket.socket`` raises
  them, before the kernel (EBADF) is asked.
* The level: which levels a socket kind answers, and the errno otherwise
  (:func:`_level_error`): ENOPROTOOPT (92) for an unknown option,
  EOPNOTSUPP (95) for another protocol's level on get (and on any Unix socket).
* The option (:data:`SPECS`): the shortest buffer it takes (EINVAL below it;
  EFAULT for a NULL buffer), how the value is checked and stored, its
  default, how ``getsockopt`` formats it for a given buffer length.

Stored values live in the socket's ``_opts`` dict keyed by ``(level,
optname)``: flags as 0/1, SO_LINGER as ``(onoff, seconds)``,
SO_RCVTIMEO/SO_SNDTIMEO as ``(sec, usec)``. SO_SNDBUF/SO_RCVBUF live in
``_sndbuf``/``_rcvbuf`` (a key in ``_opts`` marks them set by the program:
SOCK_SNDBUF_LOCK, no autotuning); setting them resizes a live connection.
A negative SO_RCVTIMEO/SO_SNDTIMEO is kept as ``(0, 0, "at once")`` (it
reads 0 but blocking calls give up at once); TCP_QUICKACK remembers the state
it was set in (listen() and a new connection turn it back on).

Where options act elsewhere: :func:`blocking_timeout` (SO_RCVTIMEO and
SO_SNDTIMEO, read by ``FakeSocket._wait`` and a blocking connect),
:func:`inherit` (accept), SO_REUSEADDR/SO_REUSEPORT in
``_connections._bind_conflict``, IPV6_V6ONLY in ``_connections._dual_stack``
and bind, SO_BROADCAST in ``FakeSocket._unroutable``, SO_LINGER in close.
Not modelled: SO_RCVLOWAT's effect on TCP readiness, keep-alive probes
(SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT), TCP_USER_TIMEOUT, Nagle
(TCP_NODELAY, TCP_CORK): they are stored and read back only.
"""

from __future__ import annotations

import errno
import operator
import socket as _socket
import struct
from dataclasses import dataclass
from typing import Any, Callable

from simnet.fakesock import args as _args

SOL_SOCKET, IPPROTO_TCP, IPPROTO_IP = _socket.SOL_SOCKET, _socket.IPPROTO_TCP, _socket.IPPROTO_IP
IPPROTO_IPV6, IPPROTO_UDP = _socket.IPPROTO_IPV6, _socket.IPPROTO_UDP
AF_INET, AF_INET6, AF_UNIX = _socket.AF_INET, _socket.AF_INET6, _socket.AF_UNIX
SOCK_STREAM, SOCK_DGRAM = _socket.SOCK_STREAM, _socket.SOCK_DGRAM

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
#: net.core.rmem_max / wmem_max: the largest SO_RCVBUF/SO_SNDBUF request (then doubled)
BUF_MAX = 4194304
#: the smallest SO_RCVBUF / SO_SNDBUF (SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF)
MIN_RCVBUF, MIN_SNDBUF = 2304, 4608
#: SO_RCVLOWAT of a TCP socket is capped at tcp_rmem[2] / 2
TCP_RCVLOWAT_MAX = 16777216
#: TCP_MAXSEG before a connection (the kernel's default MSS) and the range a program may set
TCP_DEFAULT_MSS, TCP_MIN_MSS, TCP_MAX_MSS = 536, 88, 32767
#: TCP_MAXSEG of a loopback connection: the connecting end's (by family),
#: the accepted end's; a TCP_MAXSEG set before the connection gives that less
#: the 12 bytes of the timestamp option
TCP_CLIENT_MSS = {AF_INET: 32741, AF_INET6: 32732}
TCP_ACCEPTED_MSS = 32768
TCP_TIMESTAMP_LEN = 12
#: what this kernel reads back as the l_linger of a negative SO_LINGER time
NEGATIVE_LINGER = -1752346657


class _Err(Exception):
    """An errno the kernel returns (turned into OSError by the facade)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def oserror(code: int) -> OSError:
    """The exception CPython raises for errno *code*."""
    import os

    return OSError(code, os.strerror(code))


# -- CPython's argument handling ---------------------------------------------------
def _c_int(value: Any) -> int:
    """A C ``int`` argument as CPython's "i" format converts it."""
    return _args.c_int(value)


def parse_set_args(args: tuple) -> tuple[int, int, bytes | None, int]:
    """``socket.setsockopt(*args)``'s arguments as the kernel gets them:
    ``(level, optname, buffer or None for NULL, optlen)``."""
    if len(args) not in (3, 4):
        raise TypeError(f"setsockopt() takes exactly 3 arguments ({len(args)} given)")
    level, optname = _c_int(args[0]), _c_int(args[1])
    if len(args) == 4:
        if args[2] is not None:
            raise TypeError("setsockopt() takes exactly 3 arguments (4 given)")
        try:
            n = operator.index(args[3])
        except TypeError:
            raise TypeError("setsockopt() takes exactly 3 arguments (4 given)") from None
        return level, optname, None, n & 0xFFFFFFFF  # "I": no overflow check
    value = args[2]
    # CPython tries "iii" first (any __index__ object in int range), then "iiy*"
    try:
        return level, optname, struct.pack("i", _args.c_int(value)), 4
    except (TypeError, OverflowError):
        pass
    buf = bytes(_args.read_buffer(value))
    return level, optname, buf, len(buf)


def parse_get_args(args: tuple) -> tuple[int, int, int]:
    """``socket.getsockopt(*args)``'s arguments: ``(level, optname, buflen)``
    (buflen 0: the int form)."""
    if len(args) < 2:
        raise TypeError(f"getsockopt() takes at least 2 arguments ({len(args)} given)")
    if len(args) > 3:
        raise TypeError(f"getsockopt() takes at most 3 arguments ({len(args)} given)")
    level, optname = _c_int(args[0]), _c_int(args[1])
    buflen = _c_int(args[2]) if len(args) == 3 else 0
    if buflen != 0 and not 0 < buflen <= 1024:
        raise OSError("getsockopt buflen out of range")
    return level, optname, buflen


# -- the option table -----------------------------------------------------------------
def _i32(buf: bytes) -> int:
    return struct.unpack("i", buf[:4])[0]


def _flag(sock: Any, v: int) -> int:
    return int(v != 0)


def _range(lo: int, hi: int, minus_one: int | None = None) -> Callable[[Any, int], int]:
    def check(sock: Any, v: int) -> int:
        if v == -1 and minus_one is not None:
            return minus_one
        if not lo <= v <= hi:
            raise _Err(errno.EINVAL)
        return v
    return check


def _any(sock: Any, v: int) -> int:
    return v


def _rcvlowat(sock: Any, v: int) -> int:
    if v < 0:
        v = _INT_MAX
    v = v or 1
    if sock._type == SOCK_STREAM and sock._family != AF_UNIX:
        if _SO_RCVBUF in sock._opts:
            v = min(v, sock._rcvbuf >> 1)  # at most half the program's receive buffer
        else:
            v = min(v, TCP_RCVLOWAT_MAX)
            if 2 * v > sock._rcvbuf:  # else the receive buffer grows to hold it
                sock._rcvbuf = 2 * v
                if sock._end is not None:
                    sock._end.rcap = sock._rcvbuf
    return v


def _tos(sock: Any, v: int) -> int:
    v &= 0xFF
    if sock._type == SOCK_STREAM:
        v &= 0xFC  # TCP keeps the ECN bits for itself
    if v != sock._opts.get((IPPROTO_IP, _socket.IP_TOS), 0):
        # a new TOS sets SO_PRIORITY (rt_tos2priority)
        own(sock)[(SOL_SOCKET, _SO_PRIORITY)] = _TOS2PRIO[(v & 0x1E) >> 1]
    return v


_SO_PRIORITY = getattr(_socket, "SO_PRIORITY", 12)
#: ip_tos2prio: the SO_PRIORITY a TOS value gives
_TOS2PRIO = (0, 0, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4)


def _maxseg(sock: Any, v: int) -> int | None:
    if v != 0 and not TCP_MIN_MSS <= v <= TCP_MAX_MSS:
        raise _Err(errno.EINVAL)
    if v == 0 or sock._end is not None:
        return None  # 0: leave it; once connected the MSS is the connection's
    return v


def _fastopen(sock: Any, v: int) -> int:
    if v < 0 or sock._end is not None:  # (not once connected)
        raise _Err(errno.EINVAL)
    return min(v, 4096)  # the queue length is capped


def _tclass(sock: Any, v: int) -> int:
    v = _range(0, 255, 0)(sock, v)
    if sock._type == SOCK_STREAM:
        v &= 0xFC  # TCP keeps the ECN bits for itself
    return v


def _v6only(sock: Any, v: int) -> int:
    if sock._laddr is not None:
        raise _Err(errno.EINVAL)  # too late once the socket has an address
    return int(v != 0)


def _bound_v6(sock: Any) -> str | None:
    """The IPv6 address a socket was bound to by bind() (an accepted
    socket's own address); None if it has none, or got one by connect or
    sendto."""
    if sock._side == "server" and sock._laddr is not None:
        return sock._laddr[0]
    return sock._bind_ip


def _multicast_ttl(sock: Any, v: int) -> int:
    if sock._type == SOCK_STREAM:
        raise _Err(errno.EINVAL)  # not for TCP sockets here
    return _range(0, 255, 1)(sock, v)


@dataclass(frozen=True)
class Spec:
    """One option: where it exists, its buffer size, default, check and format.

    ``kinds``: the socket kinds that have it ("tcp", "udp", "unix", "unixd");
    ``size``: the value's size (4, 8 for SO_LINGER, 16 for a timeval), also
    the shortest buffer set takes; ``byte_ok``: an IP-level option that takes a
    1-3 byte buffer as one byte (and answers a short get with one byte);
    ``empty``: the value an empty buffer sets (None: EINVAL);
    ``null_zero``: a NULL buffer reads as zeros (IPv6 level) instead of EFAULT;
    ``check``: int -> stored value (None: keep), raising _Err;
    ``readonly``: set gives ENOPROTOOPT.
    """

    name: str
    level: int
    optname: int
    kinds: frozenset
    default: Any = 0
    check: Callable[[Any, int], Any] | None = _flag
    size: int = 4
    byte_ok: bool = False
    empty: int | None = None
    null_zero: bool = False
    readonly: bool = False


_ALL = frozenset({"tcp", "udp", "unix", "unixd"})
_TCP = frozenset({"tcp"})
_UDP = frozenset({"udp"})
_INET = frozenset({"tcp", "udp"})


def _c(name: str, default: int | None = None) -> int | None:
    return getattr(_socket, name, default)


def _specs() -> list[Spec]:
    so = [
        Spec("SO_REUSEADDR", SOL_SOCKET, _socket.SO_REUSEADDR, _ALL),
        Spec("SO_KEEPALIVE", SOL_SOCKET, _socket.SO_KEEPALIVE, _ALL),
        Spec("SO_BROADCAST", SOL_SOCKET, _socket.SO_BROADCAST, _ALL),
        Spec("SO_OOBINLINE", SOL_SOCKET, _socket.SO_OOBINLINE, _ALL),
        Spec("SO_DONTROUTE", SOL_SOCKET, _socket.SO_DONTROUTE, _ALL),
        Spec("SO_SNDBUF", SOL_SOCKET, _socket.SO_SNDBUF, _ALL, check=None),
        Spec("SO_RCVBUF", SOL_SOCKET, _socket.SO_RCVBUF, _ALL, check=None),
        Spec("SO_LINGER", SOL_SOCKET, _socket.SO_LINGER, _ALL, (0, 0), check=None, size=8),
        Spec("SO_ERROR", SOL_SOCKET, _socket.SO_ERROR, _ALL, readonly=True),
        Spec("SO_TYPE", SOL_SOCKET, _socket.SO_TYPE, _ALL, readonly=True),
    ]
    for name, kw in [("SO_REUSEPORT", {}), ("SO_RCVLOWAT", {"default": 1, "check": _rcvlowat}),
                     ("SO_SNDLOWAT", {"default": 1, "readonly": True}),
                     ("SO_PRIORITY", {"check": _any}),
                     ("SO_ACCEPTCONN", {"readonly": True}), ("SO_DOMAIN", {"readonly": True}),
                     ("SO_PROTOCOL", {"readonly": True})]:
        if hasattr(_socket, name):
            so.append(Spec(name, SOL_SOCKET, getattr(_socket, name), _ALL, **kw))
    for name in ("SO_RCVTIMEO", "SO_SNDTIMEO"):
        if hasattr(_socket, name):
            so.append(Spec(name, SOL_SOCKET, getattr(_socket, name), _ALL, (0, 0), check=None, size=16))
    tcp = [
        ("TCP_NODELAY", 0, _flag), ("TCP_CORK", 0, _flag), ("TCP_QUICKACK", 1, _flag),
        ("TCP_MAXSEG", TCP_DEFAULT_MSS, _maxseg),
        ("TCP_KEEPIDLE", 7200, _range(1, 32767)), ("TCP_KEEPINTVL", 75, _range(1, 32767)),
        ("TCP_KEEPCNT", 9, _range(1, 127)), ("TCP_USER_TIMEOUT", 0, _range(0, _INT_MAX)),
        ("TCP_FASTOPEN", 0, _fastopen),
    ]
    out = so + [Spec(n, IPPROTO_TCP, getattr(_socket, n), _TCP, d, c)
                for n, d, c in tcp if hasattr(_socket, n)]
    out += [
        Spec("IP_TOS", IPPROTO_IP, _socket.IP_TOS, _INET, 0, _tos, byte_ok=True, empty=0),
        Spec("IP_TTL", IPPROTO_IP, _socket.IP_TTL, _INET, 64, _range(1, 255, 64), byte_ok=True),
        Spec("IP_MULTICAST_TTL", IPPROTO_IP, _socket.IP_MULTICAST_TTL, _INET, 1, _multicast_ttl,
             byte_ok=True),
        Spec("IP_MULTICAST_LOOP", IPPROTO_IP, _socket.IP_MULTICAST_LOOP, _INET, 1, _flag,
             byte_ok=True),
    ]
    v6 = [("IPV6_V6ONLY", 0, _v6only), ("IPV6_UNICAST_HOPS", 64, _range(0, 255, 64)),
          ("IPV6_TCLASS", 0, _tclass)]
    out += [Spec(n, IPPROTO_IPV6, getattr(_socket, n), _INET, d, c, null_zero=True)
            for n, d, c in v6 if hasattr(_socket, n)]
    out.append(Spec("UDP_CORK", IPPROTO_UDP, _c("UDP_CORK", 1), _UDP))
    return out


#: (level, optname) -> Spec
SPECS: dict[tuple[int, int], Spec] = {(s.level, s.optname): s for s in _specs()}

_SO_SNDBUF = (SOL_SOCKET, _socket.SO_SNDBUF)
_SO_RCVBUF = (SOL_SOCKET, _socket.SO_RCVBUF)


def _kind(sock: Any) -> str:
    if sock._family == AF_UNIX:
        return "unix" if sock._type == SOCK_STREAM else "unixd"
    return "tcp" if sock._type == SOCK_STREAM else "udp"


def _level_ok(sock: Any, level: int) -> bool:
    """Does this socket kind answer options of *level* at all?"""
    if level == SOL_SOCKET:
        return True
    if sock._family == AF_UNIX:
        return False
    if level == IPPROTO_IP:
        return True
    if level == IPPROTO_IPV6:
        return sock._family == AF_INET6
    if level == IPPROTO_TCP:
        return sock._type == SOCK_STREAM
    if level == IPPROTO_UDP:
        return sock._type == SOCK_DGRAM
    return False


def _level_error(sock: Any, get: bool) -> int:
    """The errno for a level this socket does not answer: EOPNOTSUPP on a
    Unix socket; ENOPROTOOPT to set; on get, ENOPROTOOPT from an IPv6
    socket and EOPNOTSUPP from an IPv4 one."""
    if sock._family == AF_UNIX:
        return errno.EOPNOTSUPP
    if not get or sock._family == AF_INET6:
        return errno.ENOPROTOOPT
    return errno.EOPNOTSUPP


def _spec(sock: Any, level: int, optname: int, get: bool) -> Spec | None:
    """The option's Spec; None for an unknown option of an answered level
    (its error depends on the buffer); raises _Err for an unanswered level."""
    if not _level_ok(sock, level):
        raise _Err(_level_error(sock, get))
    spec = SPECS.get((level, optname))
    if spec is not None and _kind(sock) not in spec.kinds:
        spec = None
    return spec


# -- set ------------------------------------------------------------------------------
def set_option(sock: Any, level: int, optname: int, buf: bytes | None, optlen: int) -> None:
    """The kernel's setsockopt on *sock* (a FakeSocket); raises OSError."""
    try:
        _set(sock, level, optname, buf, optlen)
    except _Err as exc:
        raise oserror(exc.code) from None


def _set(sock: Any, level: int, optname: int, buf: bytes | None, optlen: int) -> None:
    spec = _spec(sock, level, optname, get=False)
    slen = optlen if optlen < 2**31 else -1  # (the kernel's int optlen)
    if spec is None:
        if level in (IPPROTO_IP, IPPROTO_IPV6, IPPROTO_UDP) or level not in (SOL_SOCKET, IPPROTO_TCP):
            raise _Err(errno.ENOPROTOOPT)
        _need(buf, slen, 4, False)
        raise _Err(errno.ENOPROTOOPT)
    if spec.byte_ok:
        if slen == 0 and spec.empty is not None:
            _store(sock, spec, spec.empty)
            return
        if slen <= 0:
            raise _Err(errno.EINVAL)
        if buf is None:
            raise _Err(errno.EFAULT)
        v = _i32(buf) if slen >= 4 else buf[0]
        _store(sock, spec, spec.check(sock, v))
        return
    data = _need(buf, slen, spec.size, spec.null_zero)
    if spec.readonly:
        raise _Err(errno.ENOPROTOOPT)
    key = (spec.level, spec.optname)
    if spec.size == 8:  # SO_LINGER
        onoff, linger = struct.unpack("ii", data[:8])
        own(sock)[key] = (int(onoff != 0), linger if linger >= 0 else NEGATIVE_LINGER)
    elif spec.size == 16:  # SO_RCVTIMEO / SO_SNDTIMEO
        sec, usec = struct.unpack("qq", data[:16])
        if not 0 <= usec < 1000000:
            raise _Err(errno.EDOM)
        # a negative time reads back as 0 but makes blocking calls give up at once
        own(sock)[key] = (sec, usec) if sec >= 0 else (0, 0, "at once")
    elif key == _SO_SNDBUF or key == _SO_RCVBUF:
        _set_buffer(sock, key, _i32(data))
    elif spec.name == "SO_REUSEPORT" and sock._family == AF_UNIX and _i32(data):
        raise _Err(errno.EOPNOTSUPP)  # Unix sockets have no port to share
    else:
        _store(sock, spec, spec.check(sock, _i32(data)))


def own(sock: Any) -> dict:
    """The socket's own ``_opts`` dict, made on the first write (a socket
    may share a read-only empty mapping until it sets an option)."""
    opts = sock._opts
    if type(opts) is not dict:
        opts = sock._opts = {}
    return opts


def _need(buf: bytes | None, slen: int, size: int, null_zero: bool) -> bytes:
    """The first *size* bytes the kernel copies in: EINVAL for less than an
    int, EFAULT for a NULL buffer (zeros where the level reads NULL so), then
    EINVAL for less than *size*."""
    if slen < 4:
        raise _Err(errno.EINVAL)
    if buf is None:
        if not null_zero:
            raise _Err(errno.EFAULT)
        buf = bytes(slen)
    if slen < size:
        raise _Err(errno.EINVAL)
    return buf


def _store(sock: Any, spec: Spec, value: Any) -> None:
    if value is not None:
        opts = own(sock)
        opts[(spec.level, spec.optname)] = value
        if spec.name == "TCP_QUICKACK":
            opts[_QUICKACK_SET] = sock._state


#: (in ``_opts``) the socket state in which TCP_QUICKACK was last set
_QUICKACK_SET = ("simnet", "quickack set in state")


def _set_buffer(sock: Any, key: tuple[int, int], v: int) -> None:
    """SO_SNDBUF / SO_RCVBUF: the request (unsigned, at most BUF_MAX) doubled,
    at least the minimum; marks the size as the program's (no autotuning)."""
    size = min(v & 0xFFFFFFFF, BUF_MAX) * 2
    end = sock._end
    if key == _SO_SNDBUF:
        sock._sndbuf = max(size, MIN_SNDBUF)
        if end is not None:
            end.scap = sock._sndbuf
    else:
        sock._rcvbuf = max(size, MIN_RCVBUF)
        if end is not None:
            end.rcap = sock._rcvbuf
    own(sock)[key] = size


# -- get ------------------------------------------------------------------------------
def get_option(sock: Any, level: int, optname: int, buflen: int) -> Any:
    """The kernel's getsockopt on *sock*, formatted as CPython returns it:
    an int for buflen 0, else the bytes the kernel wrote."""
    try:
        data = _get(sock, level, optname, buflen or 4)
    except _Err as exc:
        raise oserror(exc.code) from None
    if buflen == 0:
        return struct.unpack("i", data[:4].ljust(4, b"\0"))[0]
    return data


def _get(sock: Any, level: int, optname: int, length: int) -> bytes:
    spec = _spec(sock, level, optname, get=True)
    if spec is None:
        raise _Err(errno.ENOPROTOOPT)
    value = _value(sock, spec)
    if spec.size == 8:
        return struct.pack("ii", *value)[:length]
    if spec.size == 16:
        return struct.pack("qq", *value[:2])[:length]
    if spec.byte_ok and length < 4 and 0 <= value <= 255:
        return bytes([value])
    return struct.pack("i", value)[:length]


def _value(sock: Any, spec: Spec) -> Any:
    key = (spec.level, spec.optname)
    name = spec.name
    if name == "SO_ERROR":
        return sock._take_error()
    if name == "SO_TYPE":
        return sock._type
    if name == "SO_DOMAIN":
        return sock._family
    if name == "SO_PROTOCOL":
        if sock._family == AF_UNIX:
            return 0
        return _socket.IPPROTO_TCP if sock._type == SOCK_STREAM else _socket.IPPROTO_UDP
    if name == "SO_ACCEPTCONN":
        return int(sock._state == "listening")
    if name == "SO_SNDBUF":
        return sock._sndbuf
    if name == "SO_RCVBUF":
        return sock._rcvbuf
    if name == "IPV6_V6ONLY" and key not in sock._opts:
        # bound to one IPv6 address (not ::, not IPv4-mapped): IPv6 only
        ip = _bound_v6(sock)
        return int(ip is not None and ip != "::" and not ip.lower().startswith("::ffff:"))
    if name == "TCP_MAXSEG" and sock._end is not None:
        if key in sock._opts:
            return sock._opts[key] - TCP_TIMESTAMP_LEN
        return TCP_ACCEPTED_MSS if sock._side == "server" else TCP_CLIENT_MSS[sock._family]
    if name == "IP_MULTICAST_TTL" and sock._side == "server" and sock._family == AF_INET \
            and key not in sock._opts:
        return 64  # (an accepted IPv4 socket: its listener's IP_TTL, see inherit)
    if name == "TCP_QUICKACK" and sock._state in ("connected", "listening") \
            and sock._opts.get(_QUICKACK_SET) != sock._state:
        return 1  # listen() and an established connection turn it back on
    return sock._opts.get(key, spec.default)



def inherit(sock: Any, listener: Any) -> None:
    """A TCP socket made by accept() starts with its listener's options (its
    IP_MULTICAST_TTL, on this kernel, with the listener's IP_TTL)."""
    if not listener._opts:
        return  # (nothing set: no dict of its own either)
    opts = own(sock)
    opts.update(listener._opts)
    opts.pop(_QUICKACK_SET, None)
    if sock._family == AF_INET:
        opts[(IPPROTO_IP, _socket.IP_MULTICAST_TTL)] = \
            listener._opts.get((IPPROTO_IP, _socket.IP_TTL), 64)


_RCVTIMEO = (SOL_SOCKET, getattr(_socket, "SO_RCVTIMEO", 20))
_SNDTIMEO = (SOL_SOCKET, getattr(_socket, "SO_SNDTIMEO", 21))


def blocking_timeout(sock: Any, what: str) -> float | None:
    """How long a blocking call *what* ("recv()", "send()", "connect()", ...)
    waits before EAGAIN (a connect: EINPROGRESS): SO_RCVTIMEO for receiving
    and accept, SO_SNDTIMEO for sending and connect (None: for ever; 0.0:
    not at all, after a negative time was set)."""
    opts = sock._opts
    if not opts:
        return None
    tv = opts.get(_SNDTIMEO if what.startswith(("send", "connect")) else _RCVTIMEO)
    if not tv:
        return None
    if len(tv) == 3:
        return 0.0
    return (tv[0] + tv[1] / 1e6) or None
