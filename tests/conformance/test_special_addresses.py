"""Special addresses: the limited broadcast address and IPv4-mapped IPv6 ones.

Pinned facts (this machine's kernel, loopback):

Broadcast, ``255.255.255.255`` (``'<broadcast>'``):

* TCP ``connect`` -> ``OSError(ENETUNREACH)`` at once (blocking or not, with
  or without SO_BROADCAST; ``connect_ex`` returns it).
* UDP ``connect``/``sendto`` without SO_BROADCAST -> ``PermissionError(EACCES)``
  (the socket is bound to an ephemeral port all the same). Only the
  destination address is checked: a socket connected with SO_BROADCAST keeps
  sending after the option is cleared.
* With SO_BROADCAST the datagram is looped back to every socket on that port
  bound to ``0.0.0.0`` or ``255.255.255.255``, and to a dual-stack IPv6 socket
  on ``::`` (which sees an IPv4-mapped source), not to one bound to 127.0.0.1.
  It leaves from the host's own address (the default route's, neither
  127.0.0.1 nor 0.0.0.0: on the fake network its host's first IPv4 address)
  unless the sender is bound to one; a UDP socket connected to the broadcast
  address has that address as its own.
* ``bind(('255.255.255.255', 0))`` works for TCP and UDP.

IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``) on an AF_INET6 socket:

* ``bind`` to a mapped local address works (getsockname shows it; also
  ``::ffff:0.0.0.0``); a non-local one is EADDRNOTAVAIL; with IPV6_V6ONLY, EINVAL.
* TCP ``connect``/UDP ``connect``/``sendto`` to a mapped address reach the
  IPv4 socket on that address; the IPv6 side sees mapped addresses
  (getsockname, getpeername, recvfrom), the IPv4 side plain IPv4 ones. An
  unbound UDP sender stays on ``::``; a connected one gets the mapped source.
* With IPV6_V6ONLY, or bound to an IPv6 address (``::1``): ENETUNREACH. A
  socket bound to a mapped address cannot reach IPv6 (EAFNOSUPPORT).
"""

from __future__ import annotations

import errno
import socket

import pytest

from .harness import expect_error

AF_INET, AF_INET6 = socket.AF_INET, socket.AF_INET6
SOCK_STREAM, SOCK_DGRAM = socket.SOCK_STREAM, socket.SOCK_DGRAM
SOL_SOCKET, SO_BROADCAST, SO_REUSEADDR = socket.SOL_SOCKET, socket.SO_BROADCAST, socket.SO_REUSEADDR
IPPROTO_IPV6, IPV6_V6ONLY = socket.IPPROTO_IPV6, socket.IPV6_V6ONLY
BCAST = "255.255.255.255"
MAPPED = "::ffff:127.0.0.1"


def _udp(backend, family=AF_INET, bind=None, broadcast=False, reuse=False):
    sock = backend.socket(family, SOCK_DGRAM)
    if broadcast:
        sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1)
    if reuse:
        sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    if bind is not None:
        sock.bind(bind)
    sock.setblocking(False)
    return sock


def _host_ip(backend) -> str:
    """The address a broadcast leaves from (the host's own, by the route)."""
    probe = _udp(backend, broadcast=True)
    try:
        probe.connect((BCAST, 9))
    except OSError as exc:  # a machine with loopback only has no route for it
        probe.close()
        pytest.skip(f"no route to 255.255.255.255 here: {exc}")
    ip = probe.getsockname()[0]
    probe.close()
    return ip


# -- broadcast ----------------------------------------------------------------------
@pytest.mark.parametrize("host", [BCAST, "<broadcast>"])
@pytest.mark.parametrize("so_broadcast", [0, 1])
def test_tcp_connect_to_broadcast_is_unreachable(backend, host, so_broadcast):
    for blocking in (True, False):
        sock = backend.socket()
        sock.setsockopt(SOL_SOCKET, SO_BROADCAST, so_broadcast)
        sock.setblocking(blocking)
        expect_error(OSError, errno.ENETUNREACH, sock.connect, (host, 80))
        assert sock.connect_ex((host, 80)) == errno.ENETUNREACH
        sock.close()


@pytest.mark.parametrize("host", [BCAST, "<broadcast>"])
def test_udp_to_broadcast_needs_so_broadcast(backend, host):
    sock = _udp(backend)
    expect_error(PermissionError, errno.EACCES, sock.sendto, b"x", (host, 9))
    ip, port = sock.getsockname()
    assert ip == "0.0.0.0" and port != 0  # bound all the same
    expect_error(PermissionError, errno.EACCES, sock.connect, (host, 9))
    other = _udp(backend)
    expect_error(PermissionError, errno.EACCES, other.connect, (host, 9))
    assert other.getsockname()[0] == "0.0.0.0"


@pytest.mark.parametrize("type_", [SOCK_STREAM, SOCK_DGRAM])
def test_bind_to_broadcast_address(backend, type_):
    sock = backend.socket(AF_INET, type_)
    sock.bind((BCAST, 0))
    ip, port = sock.getsockname()
    assert ip == BCAST and port != 0


@pytest.mark.parametrize("sender_ip", [None, "127.0.0.1"])
def test_broadcast_reaches_sockets_on_any_and_broadcast_address(backend, sender_ip):
    any_ = _udp(backend, bind=("0.0.0.0", 0), reuse=True)
    port = any_.getsockname()[1]
    bcast = _udp(backend, bind=(BCAST, port), reuse=True)
    lo = _udp(backend, bind=("127.0.0.1", port), reuse=True)
    sender = _udp(backend, bind=(sender_ip, 0) if sender_ip else None, broadcast=True)
    assert sender.sendto(b"hi", (BCAST, port)) == 2
    assert sender.sendto(b"marker", ("127.0.0.1", port)) == 6  # unicast: one socket
    backend.settle()
    src = (sender_ip or _host_ip(backend), sender.getsockname()[1])
    assert src[0] not in ("0.0.0.0", BCAST)
    if sender_ip is None:
        assert src[0] != "127.0.0.1" and sender.getsockname()[0] == "0.0.0.0"
    assert any_.recvfrom(10) == (b"hi", src)
    assert bcast.recvfrom(10) == (b"hi", src)
    # the socket on 127.0.0.1 gets the unicast marker (the most specific
    # binding) and no broadcast before or after it
    assert lo.recvfrom(10) == (b"marker", sender.getsockname() if sender_ip else
                               ("127.0.0.1", src[1]))
    for sock in (lo, any_, bcast):
        with pytest.raises(BlockingIOError):
            sock.recvfrom(10)


def test_connected_broadcast_socket_sends_from_host_address(backend):
    recv = _udp(backend, bind=("0.0.0.0", 0))
    port = recv.getsockname()[1]
    sender = _udp(backend, broadcast=True)
    sender.connect((BCAST, port))
    ip, sport = sender.getsockname()
    assert ip not in ("0.0.0.0", "127.0.0.1", BCAST)
    assert sender.getpeername() == (BCAST, port)
    assert sender.send(b"one") == 3
    sender.setsockopt(SOL_SOCKET, SO_BROADCAST, 0)
    assert sender.send(b"two") == 3  # checked at connect only
    backend.settle()
    assert recv.recvfrom(10) == (b"one", (ip, sport))
    assert recv.recvfrom(10) == (b"two", (ip, sport))


def test_dual_stack_ipv6_socket_gets_ipv4_broadcast(backend):
    recv = _udp(backend, AF_INET6, bind=("::", 0))
    port = recv.getsockname()[1]
    sender = _udp(backend, broadcast=True)
    sender.sendto(b"b", (BCAST, port))
    sender.sendto(b"u", ("127.0.0.1", port))
    backend.settle()
    sport = sender.getsockname()[1]
    assert recv.recvfrom(10) == (b"b", ("::ffff:" + _host_ip(backend), sport, 0, 0))
    assert recv.recvfrom(10) == (b"u", ("::ffff:127.0.0.1", sport, 0, 0))


def test_mapped_broadcast_from_ipv6_socket(backend):
    udp = _udp(backend, AF_INET6)
    expect_error(PermissionError, errno.EACCES, udp.sendto, b"x", ("::ffff:" + BCAST, 9))
    tcp = backend.socket(AF_INET6)
    expect_error(OSError, errno.ENETUNREACH, tcp.connect, ("::ffff:" + BCAST, 9))


# -- IPv4-mapped IPv6 addresses -------------------------------------------------------
@pytest.mark.parametrize("type_", [SOCK_STREAM, SOCK_DGRAM])
def test_bind_ipv4_mapped_address(backend, type_):
    for ip in (MAPPED, "::ffff:127.0.0.2", "::ffff:0.0.0.0", "::FFFF:127.0.0.1"):
        sock = backend.socket(AF_INET6, type_)
        sock.bind((ip, 0))
        got_ip, port, flow, scope = sock.getsockname()
        assert (got_ip, flow, scope) == (ip.lower(), 0, 0) and port != 0
        sock.close()
    sock = backend.socket(AF_INET6, type_)
    expect_error(OSError, errno.EADDRNOTAVAIL, sock.bind, ("::ffff:203.0.113.7", 0))
    sock.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1)
    expect_error(OSError, errno.EINVAL, sock.bind, (MAPPED, 0))
    assert sock.getsockname() == ("::", 0, 0, 0)


@pytest.mark.parametrize("bind_mapped", [False, True])
def test_tcp_connect_to_mapped_address_reaches_ipv4_listener(backend, bind_mapped):
    lst = backend.listener(AF_INET)
    port = lst.getsockname()[1]
    cli = backend.socket(AF_INET6)
    if bind_mapped:
        cli.bind((MAPPED, 0))
    cli.connect((MAPPED, port))
    cport = cli.getsockname()[1]
    assert cli.getsockname() == (MAPPED, cport, 0, 0)
    assert cli.getpeername() == (MAPPED, port, 0, 0)
    lst.setblocking(True)
    srv, addr = backend.track(lst.accept())
    assert addr == ("127.0.0.1", cport) == srv.getpeername()
    assert srv.getsockname() == ("127.0.0.1", port)
    srv.sendall(b"hello")
    cli.sendall(b"there")
    backend.settle()
    assert cli.recv(10) == b"hello"
    assert srv.recv(10) == b"there"


def test_tcp_mapped_connect_refused_as_linux_does(backend):
    lst = backend.listener(AF_INET)
    port = lst.getsockname()[1]
    for blocking in (True, False):
        v6only = backend.socket(AF_INET6)
        v6only.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1)
        v6only.setblocking(blocking)
        expect_error(OSError, errno.ENETUNREACH, v6only.connect, (MAPPED, port))
    bound6 = backend.socket(AF_INET6)
    bound6.bind(("::1", 0))
    expect_error(OSError, errno.ENETUNREACH, bound6.connect, (MAPPED, port))
    bound4 = backend.socket(AF_INET6)
    bound4.bind((MAPPED, 0))
    expect_error(OSError, errno.EAFNOSUPPORT, bound4.connect, ("::1", port))
    nobody = backend.refused_addr(AF_INET)
    cli = backend.socket(AF_INET6)
    expect_error(ConnectionRefusedError, errno.ECONNREFUSED, cli.connect,
                 ("::ffff:" + nobody[0], nobody[1]))


def test_udp_sendto_mapped_address_and_reply(backend):
    recv = _udp(backend, bind=("127.0.0.1", 0))
    rport = recv.getsockname()[1]
    sender = _udp(backend, AF_INET6)
    assert sender.sendto(b"a", (MAPPED, rport)) == 1
    ip, sport, _, _ = sender.getsockname()
    assert ip == "::"  # an unconnected sender stays on the wildcard
    backend.settle()
    assert recv.recvfrom(10) == (b"a", ("127.0.0.1", sport))
    recv.sendto(b"b", ("127.0.0.1", sport))
    backend.settle()
    assert sender.recvfrom(10) == (b"b", (MAPPED, rport, 0, 0))


def test_udp_connect_mapped_address(backend):
    recv = _udp(backend, bind=("127.0.0.1", 0))
    rport = recv.getsockname()[1]
    sender = _udp(backend, AF_INET6)
    sender.connect((MAPPED, rport))
    sport = sender.getsockname()[1]
    assert sender.getsockname() == (MAPPED, sport, 0, 0)
    assert sender.getpeername() == (MAPPED, rport, 0, 0)
    assert sender.send(b"c") == 1
    backend.settle()
    assert recv.recvfrom(10) == (b"c", ("127.0.0.1", sport))
    recv.sendto(b"d", ("127.0.0.1", sport))
    backend.settle()
    assert sender.recvfrom(10) == (b"d", (MAPPED, rport, 0, 0))


def test_udp_mapped_address_refused_as_linux_does(backend):
    recv = _udp(backend, bind=("127.0.0.1", 0))
    rport = recv.getsockname()[1]
    v6only = _udp(backend, AF_INET6)
    v6only.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1)
    expect_error(OSError, errno.ENETUNREACH, v6only.sendto, b"x", (MAPPED, rport))
    expect_error(OSError, errno.ENETUNREACH, v6only.connect, (MAPPED, rport))
    bound6 = _udp(backend, AF_INET6, bind=("::1", 0))
    expect_error(OSError, errno.ENETUNREACH, bound6.sendto, b"x", (MAPPED, rport))
    bound4 = _udp(backend, AF_INET6, bind=(MAPPED, 0))
    expect_error(OSError, errno.EAFNOSUPPORT, bound4.sendto, b"x", ("::1", rport))
    assert bound4.sendto(b"z", (MAPPED, rport)) == 1
    backend.settle()
    assert recv.recvfrom(10) == (b"z", ("127.0.0.1", bound4.getsockname()[1]))
    with pytest.raises(BlockingIOError):
        recv.recvfrom(10)  # nothing from the refused ones


# -- the product, real against fake ------------------------------------------------------
#: (addresses of the socket's own family only: which text resolves to what
#: in the other family is the resolver's business, see test_resolver)
_BINDS = {AF_INET: [None, "", "127.0.0.1", BCAST],
          AF_INET6: [None, "", "::1", "::", MAPPED, "::ffff:0.0.0.0"]}
_DESTS = {AF_INET: ["v4", "bcast", "any4"],
          AF_INET6: ["v6", "mapped", "mapped-bcast", "any6"]}


def _normalise(value, host):
    """Ports out, the host's own address as HOST (it differs between backends)."""
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return (value[0].replace(host, "HOST"),) + tuple("p" for _ in value[1:2])
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bytes):
        return (value[0], _normalise(value[1], host))
    return value


def _try(fn, *args):
    try:
        return fn(*args)
    except OSError as exc:
        return (type(exc).__name__, exc.errno)


def address_cases(backend) -> list:
    """bind (or not) x IPV6_V6ONLY x destination (SO_BROADCAST for a
    broadcast one) x connect or sendto, for TCP and UDP on IPv4 and IPv6: what each call says, the
    addresses the socket then has, and which receiver got a datagram."""
    host = _host_ip(backend)
    out = []
    for family in (AF_INET, AF_INET6):
        for type_ in (SOCK_STREAM, SOCK_DGRAM):
            for bind in _BINDS[family]:
                for v6only in ((0, 1) if family == AF_INET6 else (0,)):
                    for dest in _DESTS[family]:
                        for op in ("connect",) if type_ == SOCK_STREAM else ("sendto", "connect"):
                            out.append(((family, type_, bind, v6only, dest, op),
                                        _one(backend, family, type_, bind, v6only, dest, op, host)))
    return out


def _receivers(backend, type_):
    """An IPv4 receiver on 0.0.0.0 and an IPv6 one on ::1, on one port (a
    few tries: on real loopback another socket may hold that port on ::1)."""
    for _ in range(20):
        if type_ == SOCK_STREAM:
            r4 = backend.listener(AF_INET, address=("0.0.0.0", 0))
        else:
            r4 = _udp(backend, bind=("0.0.0.0", 0))
        port = r4.getsockname()[1]
        try:
            if type_ == SOCK_STREAM:
                r6 = backend.listener(AF_INET6, address=("::1", port))
            else:
                r6 = _udp(backend, AF_INET6, bind=("::1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            r4.close()
            continue
        return r4, r6, port
    pytest.fail("no port free on both 0.0.0.0 and ::1 in 20 tries")


def _one(backend, family, type_, bind, v6only, dest, op, host):
    r4, r6, port = _receivers(backend, type_)
    addr = {"v4": ("127.0.0.1", port), "v6": ("::1", port), "mapped": (MAPPED, port),
            "bcast": (BCAST, port), "mapped-bcast": ("::ffff:" + BCAST, port),
            "any4": ("0.0.0.0", port), "any6": ("::", port)}[dest]
    sock = backend.socket(family, type_)
    res = []
    if family == AF_INET6:
        sock.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, v6only)
    sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1 if dest.endswith("bcast") else 0)
    if bind is not None:
        res.append(_try(sock.bind, (bind, 0)))
    if type_ == SOCK_STREAM:
        sock.setblocking(True)
        sock.settimeout(2)
        res.append(_try(sock.connect, addr))
    else:
        sock.setblocking(False)
        if op == "connect":
            res.append(_try(sock.connect, addr))
            res.append(_try(sock.send, b"d"))
        else:
            res.append(_try(sock.sendto, b"d", addr))
        backend.settle()
        for r in (r4, r6):
            got = _try(r.recvfrom, 10)
            res.append(_normalise(got, host) if isinstance(got, tuple) else got)
    res.append(_normalise(_try(sock.getsockname), host))
    res.append(_normalise(_try(sock.getpeername), host))
    for s in (sock, r4, r6):
        s.close()
    return res


def test_special_address_product_matches_real():
    """Every combination above gives what this machine's kernel gives."""
    from .backends import FakeBackend, RealBackend

    results = []
    for cls in (RealBackend, FakeBackend):
        backend = cls()
        try:
            results.append(address_cases(backend))
        finally:
            backend.close_all()
    real, fake = results
    diffs = [f"{r[0]}: real {r[1]} fake {f[1]}" for r, f in zip(real, fake) if r != f]
    assert not diffs, f"{len(diffs)} of {len(real)} differ:\n" + "\n".join(diffs[:30])


# -- multicast, link-local, port 0 ------------------------------------------------------
_SPECIAL = [
    (AF_INET, ("224.0.0.1", 9)), (AF_INET, ("239.1.2.3", 9)), (AF_INET, ("127.0.0.1", 0)),
    (AF_INET, ("0.0.0.0", 0)), (AF_INET6, ("::1", 0)), (AF_INET6, ("ff02::1", 9)),
    (AF_INET6, ("ff02::1", 9, 0, 1)), (AF_INET6, ("fe80::1", 9)), (AF_INET6, ("fe80::1", 9, 0, 1)),
    (AF_INET6, ("fe80::1", 9, 0, 77)), (AF_INET6, ("fe80::1%lo", 9)),
]


def special_cases(backend) -> list:
    """Non-blocking connect, bind (and the name it gives) and sendto for
    multicast groups, IPv6 link-local addresses with and without a scope id
    (CPython takes it from the tuple, not from ``%lo``) and port 0."""
    out = []
    for family, addr in _SPECIAL:
        for type_ in (SOCK_STREAM, SOCK_DGRAM):
            sock = backend.socket(family, type_)
            sock.setblocking(False)
            connected = _try(sock.connect, addr)
            sock.close()
            sock = backend.socket(family, type_)
            bound = _try(sock.bind, addr[:1] + (0,) + addr[2:])
            name = sock.getsockname()[0]
            sock.close()
            sock = backend.socket(family, SOCK_DGRAM)
            sent = _try(sock.sendto, b"x", addr)
            sock.close()
            out.append(((family, type_, addr), connected, bound, name, sent))
    return out


def test_multicast_link_local_and_port_zero_match_real():
    """TCP to a multicast group: ENETUNREACH; binding one works (IPv6: UDP
    with a scope id only); link-local without a scope id: EINVAL (a sendto
    goes nowhere), with one: ENETUNREACH (bind: EADDRNOTAVAIL, or ENODEV for
    an interface that does not exist); sendto port 0: EINVAL."""
    from .backends import FakeBackend, RealBackend

    results = []
    for cls in (RealBackend, FakeBackend):
        backend = cls()
        try:
            results.append(special_cases(backend))
        finally:
            backend.close_all()
    real, fake = results
    diffs = [f"{r[0]}: real {r[1:]} fake {f[1:]}" for r, f in zip(real, fake) if r != f]
    assert not diffs, f"{len(diffs)} of {len(real)} differ:\n" + "\n".join(diffs)
