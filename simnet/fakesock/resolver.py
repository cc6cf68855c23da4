"""Name and address resolution on the fake network, as glibc and CPython do it.

Two entry points, both pure functions of the network's host table (a dict
from lower-case name to the addresses given to ``FakeNetwork.add_host``):

:func:`getaddrinfo`
    ``socket.getaddrinfo`` inside ``net.patch()``: glibc's rules for hosts
    (numeric forms that ``inet_aton`` accepts, such as ``127.1`` and
    ``0x7f.1``; ``None`` meaning the loopback or, with ``AI_PASSIVE``, the
    wildcard address; ``''`` being no name at all), for services (decimal
    strings as ``strtoul`` reads them, truncated to 16 bits; names from the
    services database, per protocol), for socket types and protocols, flags
    (``AI_NUMERICHOST``, ``AI_NUMERICSERV``, ``AI_CANONNAME``,
    ``AI_V4MAPPED``), and the same ``gaierror`` codes and messages.
:func:`socket_address`
    The IP text a fake socket's ``bind``/``connect``/``sendto`` uses for a
    host, as CPython's ``setipaddr`` finds it: ``''`` is the wildcard,
    ``'<broadcast>'`` is 255.255.255.255 (IPv4 only), and anything else goes
    through :func:`getaddrinfo` for the socket's family, so an IPv4 literal
    given to an IPv6 socket is ``EAI_ADDRFAMILY``, as on Linux.

Everything here was checked against this machine's glibc through the real
``socket`` module (``tests/conformance/test_resolver.py``), except where a
real answer depends on the machine's ``/etc/hosts``: names resolve from the
fake network's own table, in the order their addresses were added. Not
modelled: glibc's IDNA2008 conversion (``AI_IDN``) of non-ASCII names given
as bytes, beyond refusing bytes that are not UTF-8 (``EAI_IDN_ENCODE``).
"""

from __future__ import annotations

import socket as _socket
import sys
from typing import Any

from simnet.fakesock import args as _args

# glibc's codes and messages (gai_strerror)
EAI_BADFLAGS = -1
EAI_NONAME = -2
EAI_FAMILY = -6
EAI_SOCKTYPE = -7
EAI_SERVICE = -8
EAI_ADDRFAMILY = -9
EAI_IDN_ENCODE = -105
_MESSAGES = {
    EAI_BADFLAGS: "Bad value for ai_flags",
    EAI_NONAME: "Name or service not known",
    EAI_FAMILY: "ai_family not supported",
    EAI_SOCKTYPE: "ai_socktype not supported",
    EAI_SERVICE: "Servname not supported for ai_socktype",
    EAI_ADDRFAMILY: "Address family for hostname not supported",
    EAI_IDN_ENCODE: "Parameter string not correctly encoded",
}
AI_IDN = 0x40

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
SOCK_STREAM = _socket.SOCK_STREAM
SOCK_DGRAM = _socket.SOCK_DGRAM
SOCK_RAW = _socket.SOCK_RAW
SOCK_SEQPACKET = _socket.SOCK_SEQPACKET
AI_PASSIVE = _socket.AI_PASSIVE
AI_CANONNAME = _socket.AI_CANONNAME
AI_NUMERICHOST = _socket.AI_NUMERICHOST
AI_V4MAPPED = _socket.AI_V4MAPPED
AI_NUMERICSERV = _socket.AI_NUMERICSERV
#: every flag glibc accepts (the AI_* flags, the IDN ones included)
_FLAGS_KNOWN = 0x7FF

#: (socket type, protocol, services-database protocol name) as glibc lists
#: them; the first three are what a type of 0 returns
_TYPEPROTO = (
    (SOCK_STREAM, _socket.IPPROTO_TCP, "tcp"),
    (SOCK_DGRAM, _socket.IPPROTO_UDP, "udp"),
    (SOCK_RAW, 0, None),
    (SOCK_SEQPACKET, 132, "sctp"),  # IPPROTO_SCTP
    (SOCK_STREAM, 132, "sctp"),
    (SOCK_DGRAM, 136, "udplite"),  # IPPROTO_UDPLITE
)
_DEFAULT_TYPES = _TYPEPROTO[:3]
_KNOWN_TYPES = {t for t, _, _ in _TYPEPROTO}

_INT_MAX = 2**31 - 1


def gaierror(code: int) -> _socket.gaierror:
    """The ``socket.gaierror`` glibc's *code* becomes in CPython."""
    return _socket.gaierror(code, _MESSAGES[code])


def _int_arg(value: Any) -> int:
    """An ``int`` argument as CPython's ``"i"`` format reads it."""
    if isinstance(value, float) or not hasattr(value, "__index__"):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    value = value.__index__()
    if value > _INT_MAX:
        raise OverflowError("signed integer is greater than maximum")
    if value < -_INT_MAX - 1:
        raise OverflowError("signed integer is less than minimum")
    return value


def host_text(host: Any, what: str = "getaddrinfo() argument 1") -> str:
    """A host argument as the text CPython hands to the C library: ``str``
    goes through the ``idna`` codec (so an empty label raises its
    ``UnicodeError``), ``bytes`` is taken as is."""
    if isinstance(host, str):
        text = host.encode("idna").decode("ascii")
    elif isinstance(host, bytes):
        text = host.decode("latin-1")
    else:
        raise TypeError(f"{what} must be string or None")
    return text.partition("\0")[0]  # the C library sees a C string


def ipv4_text(host: str) -> str | None:
    """The dotted quad for *host* when ``inet_aton`` accepts all of it (the
    forms ``a``, ``a.b``, ``a.b.c``, ``a.b.c.d``, each part decimal, octal
    with a leading 0, or hex with 0x), else None."""
    if not host or not host.isascii() or any(c.isspace() for c in host):
        return None
    try:
        return _socket.inet_ntoa(_socket.inet_aton(host))
    except OSError:
        return None


def ipv6_text(host: str) -> tuple[str, int | None] | None:
    """``(canonical text, scope id)`` for an IPv6 literal, else None. The
    scope id is 0 without a ``%scope``; for a link-local address ``lo`` or a
    number; None when glibc would refuse the scope (checked after the
    family, as glibc does)."""
    if ":" not in host:
        return None
    address, _, scope = host.partition("%")
    try:
        packed = _socket.inet_pton(AF_INET6, address)
    except (OSError, ValueError):
        return None
    scope_id = 0
    if scope:
        link_local = packed[0] == 0xFE and packed[1] & 0xC0 == 0x80
        if link_local and scope.isascii() and scope.isdigit():
            scope_id = int(scope)
        elif link_local and scope == "lo":
            scope_id = 1
        else:
            return _socket.inet_ntop(AF_INET6, packed), None
    return _socket.inet_ntop(AF_INET6, packed), scope_id


def _port(service: Any, flags: int) -> tuple[int | None, bool]:
    """``(port, numeric)`` for *service* (None: no service, port 0)."""
    if service is None:
        return None, True
    if type(service) is int:  # CPython: PyLong_CheckExact
        if not -(2**63) <= service < 2**63 and sys.version_info < (3, 12):
            # 3.11 formats the number as a C long; 3.12 on formats any int
            raise OverflowError("Python int too large to convert to C long")
        text = str(service)
    elif isinstance(service, (str, bytes)):
        text = service if isinstance(service, str) else service.decode("latin-1")
        text = text.partition("\0")[0]  # a C string
    else:
        raise OSError("Int or String expected")
    if text == "":
        return None, True  # glibc: an empty service is no service
    # strtoul(): leading blanks and a sign, then decimal digits to the end
    # (anything not wholly read is a name)
    body = text.lstrip(" \t\n\v\f\r")
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body.isascii() and body.isdigit():
        value = int(body)
        if value >= 2**64:  # strtoul() saturates at ULONG_MAX
            value = 2**64 - 1
        value = (sign * value) % 2**64 & 0xFFFFFFFF
        if value >= 2**31:
            # glibc keeps the number in an int, and a negative one means "a
            # name": looked up (and not found) after the type checks
            return -1, False
        return value & 0xFFFF, True
    if flags & AI_NUMERICSERV:
        raise gaierror(EAI_NONAME)
    return -1, False


def _types(type_: int, proto: int) -> list[tuple]:
    """The (type, protocol, database name) entries a request asks for."""
    if type_ and type_ not in _KNOWN_TYPES:
        raise gaierror(EAI_SOCKTYPE)
    if not type_ and not proto:
        return list(_DEFAULT_TYPES)
    found = [tp for tp in _TYPEPROTO
             if (not type_ or tp[0] == type_) and (not proto or tp[1] == proto)]
    if type_ and not proto:
        found = found[:1]
    if not found:
        if type_ == SOCK_RAW or not type_:
            return [(SOCK_RAW, proto, None)]
        raise gaierror(EAI_SOCKTYPE)
    return found


def _with_service(entries: list[tuple], service: Any, port: int | None, numeric: bool,
                  type_: int) -> list[tuple]:
    """``(type, protocol, port)`` for each entry that carries *service*
    (read by :func:`_port` as *port*, *numeric*)."""
    if port is None:
        return [(t, p, 0) for t, p, _ in entries]
    out = []
    for t, p, dbname in entries:
        if dbname is None:
            # raw sockets have no ports: only a numeric service with no
            # type asked for lists them (as glibc does)
            if numeric and not type_ and p == 0:
                out.append((t, p, port))
            continue
        if numeric:
            out.append((t, p, port))
            continue
        name = (service.decode("latin-1") if isinstance(service, bytes)
                else str(service)).partition("\0")[0]
        try:
            out.append((t, p, _socket.getservbyname(name, dbname)))
        except OSError:  # not in the services database for this protocol
            continue
    if not out:
        raise gaierror(EAI_SERVICE)
    return out


def _addresses(names: dict[str, list[str]], host: str | None, family: int, flags: int
               ) -> tuple[list[tuple[int, str, int]], str]:
    """``([(family, ip, scope id), ...], canonical name)`` for *host*."""
    want = (AF_INET, AF_INET6) if family == 0 else (family,)
    if host is None:
        if flags & AI_PASSIVE:
            order = ((AF_INET, "0.0.0.0"), (AF_INET6, "::"))
        else:
            order = ((AF_INET6, "::1"), (AF_INET, "127.0.0.1"))
        return [(f, ip, 0) for f, ip in order if f in want], ""
    v4 = ipv4_text(host)
    if v4 is not None:
        if family == AF_INET6:
            if flags & AI_V4MAPPED:
                return [(AF_INET6, "::ffff:" + v4, 0)], host
            raise gaierror(EAI_ADDRFAMILY)
        return [(AF_INET, v4, 0)], host
    v6 = ipv6_text(host)
    if v6 is not None:
        ip, scope = v6
        if family == AF_INET:
            if ip.startswith("::ffff:") and "." in ip:
                return [(AF_INET, ip[7:], 0)], host
            raise gaierror(EAI_ADDRFAMILY)
        if scope is None:
            raise gaierror(EAI_NONAME)
        return [(AF_INET6, ip, scope)], host
    if flags & AI_NUMERICHOST or not host:
        raise gaierror(EAI_NONAME)
    listed = names.get(host.lower())
    if listed is None:
        raise gaierror(EAI_NONAME)
    found = [(AF_INET6 if ":" in ip else AF_INET, ip, 0) for ip in listed]
    chosen = [a for a in found if a[0] in want]
    if not chosen and family == AF_INET6 and flags & AI_V4MAPPED:
        chosen = [(AF_INET6, "::ffff:" + ip, 0) for f, ip, _ in found if f == AF_INET]
    if not chosen:
        # the hosts file has no address of that family for the name
        raise gaierror(EAI_NONAME)
    return chosen, host


def getaddrinfo(names: dict[str, list[str]], host: Any, port: Any, family: Any = 0,
                type: Any = 0, proto: Any = 0, flags: Any = 0) -> list[tuple]:
    """``socket.getaddrinfo`` over the host table *names*; see the module
    docstring."""
    family, type_, proto, flags = (_int_arg(family), _int_arg(type), _int_arg(proto),
                                   _int_arg(flags))
    text = None if host is None else host_text(host)
    if port is not None and port.__class__ is not int and not isinstance(port, (str, bytes)):
        raise OSError("Int or String expected")
    # glibc reads a lone "*" as no name / no service
    if text == "*":
        text = None
    if port in ("*", b"*"):
        port = None
    if text is None and port is None:
        raise gaierror(EAI_NONAME)
    if flags & ~_FLAGS_KNOWN or flags & AI_CANONNAME and text is None:
        raise gaierror(EAI_BADFLAGS)
    if family not in (0, AF_INET, AF_INET6):
        raise gaierror(EAI_FAMILY)
    portno, numeric = _port(port, flags)  # (AI_NUMERICSERV refuses a name first)
    entries = _types(type_, proto)
    services = _with_service(entries, port, portno, numeric, type_)
    if flags & AI_IDN and isinstance(host, bytes):
        try:
            host.partition(b"\0")[0].decode("utf-8")
        except UnicodeDecodeError:
            raise gaierror(EAI_IDN_ENCODE) from None
    addresses, canon = _addresses(names, text, family, flags)
    results = []
    for fam, ip, scope in addresses:
        addr = (ip, 0, 0, scope) if fam == AF_INET6 else (ip, 0)
        for t, p, portno in services:
            results.append((_socket.AddressFamily(fam), _socket.SocketKind(t), p,
                            canon if flags & AI_CANONNAME and not results else "",
                            (addr[0], portno, *addr[2:])))
    return results


def socket_address(names: dict[str, list[str]], host: Any, family: int) -> str:
    """The IP text a socket of *family* uses for *host* in an address tuple
    (CPython's ``setipaddr``); raises what a real socket raises."""
    text = _args.host(host)  # CPython's idna_converter
    if text == "":
        return "0.0.0.0" if family == AF_INET else "::"
    if text == "<broadcast>":
        if family != AF_INET:
            raise OSError("address family mismatched")
        return "255.255.255.255"
    return _addresses(names, text, family, 0)[0][0][1]
