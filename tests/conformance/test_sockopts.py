"""Socket options: setsockopt/getsockopt on the fake network against real sockets.

The reference is what this machine's kernel does (measured, not modelled
here): every case below runs on real sockets and on ``FakeNetwork`` sockets,
and the two outcome lists must be equal. A case is one fresh socket of one
kind (tcp4, tcp6, udp4, udp6, unix stream, unix datagram), one
``setsockopt`` (an int, bytes of several lengths, the ``(None, optlen)``
form, or nothing), then ``getsockopt`` in every form: the int form and
``buflen`` 0, 1, 2, 3, 4, 8, 16 and 1024. Further cases look at sockets
after ``bind``, ``listen`` and ``connect`` (SO_ACCEPTCONN, TCP_MAXSEG once
connected, SO_SNDBUF autotuned on a connection unless the program set it,
IPV6_V6ONLY after bind), and a Hypothesis test runs random sequences of
sets and gets on one socket. CPython's own argument errors (TypeError for a
str value, OverflowError, the 4-argument form) are part of the outcomes.

Run ``python -m tests.conformance.test_sockopts`` to print the differences.

The last tests pin what options do to other calls: SO_REUSEPORT in bind,
SO_RCVTIMEO/SO_SNDTIMEO on blocking calls (EAGAIN).

Not compared (the fake does not model them): TCP_MAXSEG of a connection whose
*peer* set TCP_MAXSEG before connecting (the fake takes the socket's own
setting, or its listener's, less the 12 bytes of timestamps; a peer's is
ignored); IPV6_V6ONLY set on a TCP socket whose connection has ended (this
kernel then allows it; the fake says EINVAL as for any socket with an
address); the Linux (not gVisor) values of the quirks this kernel has (e.g. a
negative SO_LINGER time reads back as -1752346657, an accepted IPv4 socket's
IP_MULTICAST_TTL is its listener's IP_TTL): the fake matches this machine.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from typing import Any, Callable, Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .backends import FakeBackend, RealBackend

S = socket
_g = getattr

#: socket kinds: name -> (family, type)
KINDS = {
    "tcp4": (S.AF_INET, S.SOCK_STREAM), "tcp6": (S.AF_INET6, S.SOCK_STREAM),
    "udp4": (S.AF_INET, S.SOCK_DGRAM), "udp6": (S.AF_INET6, S.SOCK_DGRAM),
    "unix": (S.AF_UNIX, S.SOCK_STREAM), "unixd": (S.AF_UNIX, S.SOCK_DGRAM),
}

#: (name, level, optname): the options compared, plus unknown ones
OPTIONS: list[tuple[str, int, int]] = [
    (n, S.SOL_SOCKET, _g(S, n)) for n in (
        "SO_REUSEADDR", "SO_REUSEPORT", "SO_KEEPALIVE", "SO_RCVBUF", "SO_SNDBUF", "SO_ERROR",
        "SO_TYPE", "SO_BROADCAST", "SO_LINGER", "SO_RCVLOWAT", "SO_SNDLOWAT", "SO_ACCEPTCONN",
        "SO_DOMAIN", "SO_PROTOCOL", "SO_OOBINLINE", "SO_RCVTIMEO", "SO_SNDTIMEO", "SO_PRIORITY",
        "SO_DONTROUTE")
] + [
    (n, S.IPPROTO_TCP, _g(S, n)) for n in (
        "TCP_NODELAY", "TCP_MAXSEG", "TCP_CORK", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT",
        "TCP_QUICKACK", "TCP_USER_TIMEOUT", "TCP_FASTOPEN")
] + [
    (n, S.IPPROTO_IP, _g(S, n)) for n in ("IP_TOS", "IP_TTL", "IP_MULTICAST_TTL", "IP_MULTICAST_LOOP")
] + [
    (n, S.IPPROTO_IPV6, _g(S, n)) for n in ("IPV6_V6ONLY", "IPV6_UNICAST_HOPS", "IPV6_TCLASS")
] + [
    ("SOL_SOCKET/9999", S.SOL_SOCKET, 9999), ("TCP/9999", S.IPPROTO_TCP, 9999),
    ("IP/9999", S.IPPROTO_IP, 9999), ("IPV6/9999", S.IPPROTO_IPV6, 9999),
    ("UDP/1", S.IPPROTO_UDP, 1), ("level999/1", 999, 1),
]

_NONE = object()  # "no setsockopt"

#: values given to setsockopt: ints, bytes of several lengths, (None, optlen)
VALUES: list[Any] = [
    _NONE, 0, 1, 5, 87, 88, 255, 256, 536, 3000, 4096, 32767, 65536, 1 << 20, 2**31 - 1, -1, -2**31,
    b"", b"\x01", b"\x05\x00", b"\x05\x00\x00\x00", b"\x05\x00\x00\x00\x07\x00\x00\x00",
    b"\x05" + b"\x00" * 15, struct.pack("ii", 1, -1), struct.pack("qq", 1, 500000),
    struct.pack("qq", -1, 0), struct.pack("qq", 0, 1000000), b"\x01" * 20,
    (None, 0), (None, 1), (None, 4), (None, 8), (None, 16),
]

#: getsockopt forms: None (no buflen), or a buflen
GET_FORMS: list[Any] = [None, 0, 1, 2, 3, 4, 8, 16, 1024]


def outcome(fn: Callable[..., Any], *args: Any) -> Any:
    """A comparable record of one call: its value, or the exception's class,
    errno and (when it has no errno) its message."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - every exception is an outcome
        code = getattr(exc, "errno", None)
        return (type(exc).__name__, code if code is not None else str(exc))


def do_set(sock: Any, level: int, opt: int, value: Any) -> Any:
    if value is _NONE:
        return "-"
    if isinstance(value, tuple):
        return outcome(sock.setsockopt, level, opt, *value)
    return outcome(sock.setsockopt, level, opt, value)


def do_gets(sock: Any, level: int, opt: int) -> list[Any]:
    return [outcome(sock.getsockopt, level, opt) if form is None
            else outcome(sock.getsockopt, level, opt, form) for form in GET_FORMS]


def fresh_cases(backend: Any, kind: str) -> list[Any]:
    """Every option x value on a fresh socket of ``kind``."""
    fam, typ = KINDS[kind]
    out = []
    for name, level, opt in OPTIONS:
        for value in VALUES:
            sock = backend.socket(fam, typ)
            try:
                out.append(((kind, name, _show(value)), do_set(sock, level, opt, value),
                            do_gets(sock, level, opt)))
            finally:
                sock.close()
    return out


def _show(value: Any) -> Any:
    return "-" if value is _NONE else value


def state_sockets(backend: Any, kind: str) -> Iterable[tuple[str, Any]]:
    """Sockets of ``kind`` in the states where option values change."""
    fam, typ = KINDS[kind]
    if typ == S.SOCK_STREAM:
        yield "listening", backend.listener(fam)
        cli, srv = backend.tcp_pair(fam, nodelay=False)
        yield "client", cli
        yield "accepted", srv
        # options set on the client before connect and the listener before
        # listen: a TCP socket made by accept() has its listener's
        opts = [o for o in INHERITED if fam != S.AF_UNIX or o[0] == S.SOL_SOCKET]
        cli, srv = backend.tcp_pair(fam, nodelay=False, sockopts=opts)
        yield "client with options", cli
        yield "accepted with options", srv
        if fam != S.AF_UNIX:
            bound = backend.socket(fam, typ)
            bound.bind(backend.bind_addr(fam))
            yield "bound", bound
    else:
        sock = backend.socket(fam, typ)
        sock.bind(backend.bind_addr(fam))
        yield "bound", sock
        if fam != S.AF_UNIX:
            peer = backend.udp_socket(fam)
            sock.connect(peer.getsockname())
            yield "connected", sock


#: options set before a connection in the state cases
INHERITED: list[tuple[int, int, Any]] = [
    (S.SOL_SOCKET, S.SO_KEEPALIVE, 1), (S.SOL_SOCKET, S.SO_PRIORITY, 5),
    (S.SOL_SOCKET, S.SO_RCVBUF, 5000), (S.SOL_SOCKET, S.SO_SNDBUF, 5000),
    (S.SOL_SOCKET, S.SO_LINGER, struct.pack("ii", 1, 3)), (S.SOL_SOCKET, S.SO_RCVLOWAT, 7),
    (S.SOL_SOCKET, S.SO_OOBINLINE, 1), (S.SOL_SOCKET, S.SO_BROADCAST, 1),
    (S.SOL_SOCKET, S.SO_DONTROUTE, 1), (S.SOL_SOCKET, S.SO_REUSEADDR, 1),
    (S.SOL_SOCKET, S.SO_RCVTIMEO, struct.pack("qq", 3, 0)),
    (S.IPPROTO_TCP, S.TCP_NODELAY, 1), (S.IPPROTO_TCP, S.TCP_CORK, 1),
    (S.IPPROTO_TCP, S.TCP_KEEPIDLE, 100), (S.IPPROTO_TCP, S.TCP_KEEPINTVL, 20),
    (S.IPPROTO_TCP, S.TCP_KEEPCNT, 4), (S.IPPROTO_TCP, S.TCP_QUICKACK, 0),
    (S.IPPROTO_TCP, S.TCP_USER_TIMEOUT, 1000), (S.IPPROTO_TCP, S.TCP_MAXSEG, 1000),
    (S.IPPROTO_IP, S.IP_TOS, 0x20), (S.IPPROTO_IP, S.IP_TTL, 9),
]

#: values set in the state cases (bufs and MSS change after connect)
STATE_VALUES: list[Any] = [_NONE, 0, 1, 88, 536, 3000, 1 << 20, -1, b"\x05\x00\x00\x00"]


def state_cases(backend: Any, kind: str) -> list[Any]:
    """Gets in every form of every option, and a few sets, in each state."""
    out = []
    for state, sock in state_sockets(backend, kind):
        for name, level, opt in OPTIONS:
            out.append(((kind, state, name), do_gets(sock, level, opt)))
        for name, level, opt in OPTIONS:
            if name in ("SO_ERROR",):
                continue
            for value in STATE_VALUES:
                out.append(((kind, state, name, _show(value)), do_set(sock, level, opt, value),
                            do_gets(sock, level, opt)))
    return out


def api_cases(backend: Any) -> list[Any]:
    """CPython's argument handling around the kernel call."""
    sock = backend.socket()
    sol, reuse = S.SOL_SOCKET, S.SO_REUSEADDR
    calls: list[tuple] = [
        ("set", sol, reuse, "x"), ("set", sol, reuse, 1.5), ("set", sol, reuse, 2**31),
        ("set", sol, reuse, 2**32), ("set", sol, reuse, -2**31 - 1), ("set", sol, reuse, True),
        ("set", sol, reuse, bytearray(b"\x01\x00\x00\x00")), ("set", sol, reuse, memoryview(b"\0\0\0\0")),
        ("set", sol, reuse, 1, 4), ("set", sol, reuse, 1, None), ("set", sol, reuse, None),
        ("set", sol, reuse, None, -1), ("set", sol, reuse, None, 2**31), ("set", sol, reuse, None, 2**32),
        ("set", sol, reuse, None, "x"), ("set", sol, reuse), ("set", sol), ("set", "a", reuse, 1),
        ("set", sol, "b", 1), ("set", 2**31, reuse, 1), ("set", -2**31 - 1, reuse, 1),
        ("set", sol, 2**31, 1), ("set", sol, reuse, b"x" * 1025),
        ("get", "a", reuse), ("get", sol, reuse, "x"), ("get", sol), ("get", sol, reuse, None),
        ("get", sol, reuse, 2**40), ("get", 2**40, reuse), ("get", sol, reuse, -1),
        ("get", sol, reuse, 1025), ("get", sol, reuse, 1, 2), ("get", sol, 9999, 1025),
    ]
    out = [(call, _api_call(sock, call)) for call in calls]
    sock.close()
    # closed: argument errors first, then EBADF
    out += [(("closed",) + call, _api_call(sock, call)) for call in
            [("set", sol, reuse, 1), ("set", sol, reuse, "x"), ("set", sol, 9999, 1),
             ("get", sol, reuse), ("get", sol, reuse, 1025), ("get", sol, 9999)]]
    return out


def _api_call(sock: Any, call: tuple) -> Any:
    fn = sock.setsockopt if call[0] == "set" else sock.getsockopt
    return outcome(fn, *call[1:])


def differences(real: list, fake: list) -> list[str]:
    assert len(real) == len(fake)
    return [f"{r[0]}: real {r[1:]!r} fake {f[1:]!r}" for r, f in zip(real, fake) if r != f]


def _both(fn: Callable[[Any], list]) -> tuple[list, list]:
    results = []
    for cls in (RealBackend, FakeBackend):
        backend = cls()
        try:
            results.append(fn(backend))
        finally:
            backend.close_all()
    return results[0], results[1]


def _assert_same(fn: Callable[[Any], list]) -> None:
    real, fake = _both(fn)
    diffs = differences(real, fake)
    assert not diffs, f"{len(diffs)} of {len(real)} cases differ:\n" + "\n".join(diffs[:40])


@pytest.mark.parametrize("kind", list(KINDS))
def test_fresh_socket_options_match_real(kind):
    """Every option x value x get form on a fresh socket: as the kernel does."""
    _assert_same(lambda b: fresh_cases(b, kind))


@pytest.mark.parametrize("kind", list(KINDS))
def test_options_after_bind_listen_connect_match_real(kind):
    """SO_ACCEPTCONN on a listener, TCP_MAXSEG and the autotuned SO_SNDBUF on
    connected ends, IPV6_V6ONLY after bind, ...: as the kernel does."""
    _assert_same(lambda b: state_cases(b, kind))


def test_argument_errors_match_cpython():
    """TypeError/OverflowError for bad arguments, the 4-argument form, buflen
    range, EBADF after close only once the arguments parse."""
    _assert_same(api_cases)


# -- random sequences on one socket ------------------------------------------------
_SEQ_OPTIONS = [o for o in OPTIONS if o[0] != "SO_ERROR"]
_op = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(_SEQ_OPTIONS), st.sampled_from(VALUES[1:])),
    st.tuples(st.just("get"), st.sampled_from(OPTIONS), st.sampled_from(GET_FORMS)),
    st.tuples(st.sampled_from(["bind", "listen", "connect"]), st.just(None), st.just(None)),
)


def _run_sequence(backend: Any, kind: str, ops: list) -> list:
    """Run *ops* on one socket of *kind*; ``bind``/``listen``/``connect``
    (to a loopback peer) are recorded as success or the error only."""
    fam, typ = KINDS[kind]
    sock = backend.socket(fam, typ)
    out = []
    for what, option, arg in ops:
        if what == "bind":
            out.append(outcome(lambda: sock.bind(backend.bind_addr(fam)) and None))
        elif what == "listen":
            out.append(outcome(sock.listen, 5))
        elif what == "connect":
            if typ == S.SOCK_STREAM:
                peer = backend.listener(fam).getsockname()
            elif fam == S.AF_UNIX:
                peer = backend.socket(fam, typ)
                peer.bind(backend.unix_path("peer"))
                peer = peer.getsockname()
            else:
                peer = backend.udp_socket(fam).getsockname()
            out.append(outcome(sock.connect, peer))
        elif what == "set":
            out.append(do_set(sock, option[1], option[2], arg))
        elif arg is None:
            out.append(outcome(sock.getsockopt, option[1], option[2]))
        else:
            out.append(outcome(sock.getsockopt, option[1], option[2], arg))
    sock.close()
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(list(KINDS)), ops=st.lists(_op, min_size=1, max_size=25))
def test_random_option_sequences_match_real(kind, ops):
    """Any sequence of sets and gets on one socket reads back as on Linux."""
    real, fake = _both(lambda b: _run_sequence(b, kind, ops))
    assert real == fake


if __name__ == "__main__":  # print the differences
    total = n = 0
    for kind in KINDS:
        for fn in (fresh_cases, state_cases):
            real, fake = _both(lambda b: fn(b, kind))
            d = differences(real, fake)
            total += len(real)
            n += len(d)
            for line in d[: int(sys.argv[1]) if len(sys.argv) > 1 else 30]:
                print(line[:400])
    real, fake = _both(api_cases)
    d = differences(real, fake)
    total += len(real)
    n += len(d)
    print("\n".join(d))
    print(f"{n} of {total} cases differ")


# -- options that change what other calls do ------------------------------------------
def _timeval(seconds: float) -> bytes:
    return struct.pack("qq", int(seconds), int(seconds % 1 * 1e6))


@pytest.mark.parametrize("type_", [S.SOCK_STREAM, S.SOCK_DGRAM])
def test_so_reuseport_lets_sockets_share_a_port(backend, type_):
    """Two sockets that both set SO_REUSEPORT bind (and listen on) one port;
    if only the first did, the second gets EADDRINUSE (SO_REUSEADDR alone
    shares a UDP port, not a TCP listener's)."""
    reuseport = (S.SOL_SOCKET, S.SO_REUSEPORT, 1)
    reuseaddr = (S.SOL_SOCKET, S.SO_REUSEADDR, 1)
    for first, second, shared in [([reuseport], [reuseport], True), ([reuseport], [], False),
                                  ([reuseaddr], [reuseaddr], type_ == S.SOCK_DGRAM)]:
        a, b = backend.socket(S.AF_INET, type_), backend.socket(S.AF_INET, type_)
        for opt in first:
            a.setsockopt(*opt)
        for opt in second:
            b.setsockopt(*opt)
        a.bind(("127.0.0.1", 0))
        if type_ == S.SOCK_STREAM:
            a.listen(5)
        if shared:
            b.bind(a.getsockname())
            if type_ == S.SOCK_STREAM:
                b.listen(5)
            assert b.getsockname() == a.getsockname()
        else:
            with pytest.raises(OSError) as info:
                b.bind(a.getsockname())
            assert type(info.value) is OSError and info.value.errno == errno.EADDRINUSE
        a.close()
        b.close()


def test_so_rcvtimeo_makes_blocking_receives_give_up(backend):
    """A blocking recv/recvfrom/accept with SO_RCVTIMEO raises
    BlockingIOError(EAGAIN) when it expires; a timeout set with settimeout()
    wins over it (TimeoutError)."""
    tv = _timeval(0.05)
    cli, _srv = backend.tcp_pair(S.AF_INET, blocking=True)
    cli.setsockopt(S.SOL_SOCKET, S.SO_RCVTIMEO, tv)
    with pytest.raises(BlockingIOError) as info:
        cli.recv(10)
    assert info.value.errno == errno.EAGAIN
    udp = backend.udp_socket(S.AF_INET, blocking=True)
    udp.setsockopt(S.SOL_SOCKET, S.SO_RCVTIMEO, tv)
    with pytest.raises(BlockingIOError):
        udp.recvfrom(10)
    lst = backend.listener(S.AF_INET, blocking=True)
    lst.setsockopt(S.SOL_SOCKET, S.SO_RCVTIMEO, tv)
    with pytest.raises(BlockingIOError):
        lst.accept()
    cli.settimeout(0.05)
    with pytest.raises(TimeoutError):
        cli.recv(10)


def test_so_sndtimeo_makes_a_blocked_send_give_up(backend):
    """A blocking send that finds no room waits SO_SNDTIMEO, then EAGAIN."""
    cli, _srv = backend.tcp_pair(S.AF_UNIX)
    chunk = b"x" * 4096
    for _ in range(10000):  # fill the buffers (bounded)
        try:
            cli.send(chunk)
        except BlockingIOError:
            break
    else:
        pytest.fail("the send buffer never filled")
    cli.setblocking(True)
    cli.setsockopt(S.SOL_SOCKET, S.SO_SNDTIMEO, _timeval(0.05))
    with pytest.raises(BlockingIOError) as info:
        cli.send(chunk)
    assert info.value.errno == errno.EAGAIN


def test_negative_sndtimeo_makes_blocking_connect_return_at_once(backend):
    """A negative SO_SNDTIMEO reads back as 0 but makes a blocking connect
    say EINPROGRESS at once (the handshake goes on; the next connect says 0)."""
    lst = backend.listener(S.AF_INET)
    cli = backend.socket(S.AF_INET)
    cli.setsockopt(S.SOL_SOCKET, S.SO_SNDTIMEO, struct.pack("qq", -1, 0))
    assert cli.getsockopt(S.SOL_SOCKET, S.SO_SNDTIMEO, 16) == bytes(16)
    with pytest.raises(BlockingIOError) as info:
        cli.connect(lst.getsockname())
    assert info.value.errno == errno.EINPROGRESS
    backend.settle()
    assert cli.connect(lst.getsockname()) is None
    assert cli.getpeername() == lst.getsockname()
