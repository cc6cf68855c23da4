"""Timeout-mode sockets (``settimeout(T)``, T > 0), as CPython 3.11 drives them on Linux.

CPython keeps a timeout-mode socket non-blocking in the kernel. Each call
(``sock_call_ex``) first waits for readiness with the time left (``poll``),
then makes the call; EAGAIN after a positive ``poll`` is a false positive and
loops back to the wait; when the time runs out: ``TimeoutError('timed out')``.
Consequences checked here on both backends (verified on Linux 6.x loopback):

* a call that cannot complete waits the whole timeout, then ``TimeoutError``;
  one that can (data, EOF, RST, room, a pending connection, an error) returns
  or raises at once;
* ``sendall`` shares one deadline among all its sends;
* ``MSG_DONTWAIT`` does not make a timeout-mode ``recv`` fail fast (the wait
  comes before the call); it does on a blocking socket;
* ``connect`` waits only after EINPROGRESS: a second ``connect`` on a socket
  still connecting raises ``BlockingIOError(EALREADY)`` at once, and an
  AF_UNIX connect to a full backlog raises ``BlockingIOError(EAGAIN)`` at once
  (``connect_ex``: 11), where a blocking socket would wait;
* ``makefile()`` reads and writes time out the same way, and a file object
  that timed out refuses further reads.

Also: ``settimeout`` accepts and rejects exactly what CPython does, with its
exception types and messages (NaN, infinities, out of range, non-numbers) and
its rounding up to whole nanoseconds.
"""

from __future__ import annotations

import errno
import math
import socket
import struct
import sys
import time

import pytest

T = 0.3  # every timeout in this file (virtual seconds on the fake network)


def _clock(backend):
    net = getattr(backend, "net", None)
    return net.time() if net is not None else time.monotonic()


def outcome(backend, fn):
    """``(result or exception, errno, message, when)``; *when* is "now" or "T"
    (returned after the whole timeout). On the fake network both are exact."""
    t0 = _clock(backend)
    try:
        value = fn()
        res = ("ok", value)
    except OSError as exc:
        res = (type(exc).__name__, exc.errno, "" if exc.errno else str(exc))
    elapsed = _clock(backend) - t0
    if getattr(backend, "net", None) is not None:
        assert elapsed in (0.0, pytest.approx(T)), elapsed
    if elapsed < T / 2:
        when = "now"
    else:
        assert elapsed < T + 2.0, elapsed
        when = "T"
    return res + (when,)


TIMED_OUT = ("TimeoutError", None, "timed out", "T")


def pair(backend, family=socket.AF_INET):
    c, s = backend.tcp_pair(family)
    c.settimeout(T)
    s.settimeout(T)
    return c, s


def full_backlog(backend):
    """A listener with backlog 0 whose queue is full: a further SYN is dropped."""
    lst = backend.listener(backlog=0)
    for _ in range(3):
        c = backend.socket()
        c.setblocking(False)
        c.connect_ex(lst.getsockname())
    backend.settle()
    return lst


# -- reading -----------------------------------------------------------------------------

def test_recv_waits_the_timeout_then_raises(backend):
    c, s = pair(backend)
    assert outcome(backend, lambda: s.recv(10)) == TIMED_OUT
    c.send(b"z")
    backend.settle()
    assert outcome(backend, lambda: s.recv(10)) == ("ok", b"z", "now")


def test_recv_returns_at_once_what_is_there(backend):
    c, s = pair(backend)
    c.send(b"hi")
    backend.settle()
    assert outcome(backend, lambda: s.recv(1, socket.MSG_PEEK)) == ("ok", b"h", "now")
    assert outcome(backend, lambda: s.recv(10)) == ("ok", b"hi", "now")
    assert outcome(backend, lambda: s.recv(0)) == ("ok", b"", "now")
    c.close()
    backend.settle()
    assert outcome(backend, lambda: s.recv(10)) == ("ok", b"", "now")


def test_reset_and_shutdown_are_reported_at_once(backend):
    c, s = pair(backend)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    backend.settle()
    assert outcome(backend, lambda: s.recv(10)) == ("ConnectionResetError", errno.ECONNRESET, "", "now")
    assert outcome(backend, lambda: s.recv(10)) == ("ok", b"", "now")
    assert outcome(backend, lambda: s.send(b"x")) == ("BrokenPipeError", errno.EPIPE, "", "now")
    c2, s2 = pair(backend)
    s2.shutdown(socket.SHUT_RD)
    assert outcome(backend, lambda: s2.recv(10)) == ("ok", b"", "now")


def test_recv_variants_time_out_alike(backend):
    c, s = pair(backend)
    buf = bytearray(10)
    assert outcome(backend, lambda: s.recv_into(buf)) == TIMED_OUT
    assert outcome(backend, lambda: s.recvfrom(10)) == TIMED_OUT
    assert outcome(backend, lambda: s.recv(10, socket.MSG_PEEK)) == TIMED_OUT


def test_msg_dontwait_waits_on_a_timeout_socket_but_not_on_a_blocking_one(backend):
    c, s = pair(backend)
    assert outcome(backend, lambda: s.recv(10, socket.MSG_DONTWAIT)) == TIMED_OUT
    c.send(b"q")
    backend.settle()
    assert outcome(backend, lambda: s.recv(10, socket.MSG_DONTWAIT)) == ("ok", b"q", "now")
    s.settimeout(None)
    assert outcome(backend, lambda: s.recv(10, socket.MSG_DONTWAIT)) == (
        "BlockingIOError", errno.EAGAIN, "", "now")


def test_unconnected_socket_fails_at_once(backend):
    c = backend.socket()
    c.settimeout(T)
    assert outcome(backend, lambda: c.recv(10)) == ("OSError", errno.ENOTCONN, "", "now")
    assert outcome(backend, lambda: c.send(b"x")) == ("BrokenPipeError", errno.EPIPE, "", "now")


def test_udp_recvfrom_times_out(backend):
    u = backend.udp_socket()
    u.settimeout(T)
    assert outcome(backend, lambda: u.recvfrom(10)) == TIMED_OUT


def test_unix_stream_recv_times_out(backend):
    c, s = pair(backend, socket.AF_UNIX)
    assert outcome(backend, lambda: s.recv(10)) == TIMED_OUT


# -- writing -------------------------------------------------------------------------------

def test_send_with_room_returns_at_once(backend):
    c, s = pair(backend)
    assert outcome(backend, lambda: c.send(b"x" * 100)) == ("ok", 100, "now")
    assert outcome(backend, lambda: c.send(b"x", socket.MSG_DONTWAIT)) == ("ok", 1, "now")
    c.shutdown(socket.SHUT_WR)
    assert outcome(backend, lambda: c.send(b"x")) == ("BrokenPipeError", errno.EPIPE, "", "now")


def test_send_on_a_full_buffer_times_out(backend):
    c, s = pair(backend)
    c.setblocking(False)
    with pytest.raises(BlockingIOError):
        for _ in range(100000):
            c.send(b"x" * 65536)
    c.settimeout(T)
    assert outcome(backend, lambda: c.send(b"x")) == TIMED_OUT


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_UNIX], ids=["tcp", "unix"])
def test_sendall_times_out_once_for_the_whole_call(backend, family):
    c, s = pair(backend, family)
    assert outcome(backend, lambda: c.sendall(b"x" * (64 << 20))) == TIMED_OUT


def test_makefile_reads_and_writes_time_out(backend):
    c, s = pair(backend)
    c.send(b"abc\nde")
    backend.settle()
    rf = s.makefile("rb")
    assert outcome(backend, rf.readline) == ("ok", b"abc\n", "now")
    assert outcome(backend, rf.readline) == TIMED_OUT
    assert outcome(backend, rf.readline) == ("OSError", None, "cannot read from timed out object", "now")
    rf.close()
    wf = c.makefile("wb")

    def write():
        wf.write(b"x" * (64 << 20))
        wf.flush()

    assert outcome(backend, write) == TIMED_OUT
    wf.close()  # what the timed-out write left is not flushed again: no error


# -- accepting and connecting ----------------------------------------------------------------

def test_accept_times_out_or_takes_a_pending_connection_at_once(backend):
    lst = backend.listener()
    lst.settimeout(T)
    assert outcome(backend, lambda: backend.track(lst.accept())) == TIMED_OUT
    c = backend.socket()
    c.connect(lst.getsockname())
    backend.settle()
    res = outcome(backend, lambda: backend.track(lst.accept()))
    assert res[0] == "ok" and res[-1] == "now"
    bound = backend.socket()
    bound.bind(backend.bind_addr(socket.AF_INET))
    bound.settimeout(T)
    assert outcome(backend, bound.accept) == ("OSError", errno.EINVAL, "", "now")


def test_connect_succeeds_or_is_refused_at_once(backend):
    lst = backend.listener()
    c = backend.socket()
    c.settimeout(T)
    assert outcome(backend, lambda: c.connect(lst.getsockname())) == ("ok", None, "now")
    refused = backend.refused_addr()
    c2 = backend.socket()
    c2.settimeout(T)
    assert outcome(backend, lambda: c2.connect(refused)) == (
        "ConnectionRefusedError", errno.ECONNREFUSED, "", "now")
    c3 = backend.socket()
    c3.settimeout(T)
    assert outcome(backend, lambda: c3.connect_ex(refused)) == ("ok", errno.ECONNREFUSED, "now")


def test_connect_to_a_full_backlog_times_out_then_says_ealready(backend):
    lst = full_backlog(backend)
    c = backend.socket()
    c.settimeout(T)
    assert outcome(backend, lambda: c.connect(lst.getsockname())) == TIMED_OUT
    # still connecting: the kernel says EALREADY to the non-blocking fd, and
    # CPython waits only after EINPROGRESS
    assert outcome(backend, lambda: c.connect(lst.getsockname())) == (
        "BlockingIOError", errno.EALREADY, "", "now")
    assert outcome(backend, lambda: c.connect_ex(lst.getsockname())) == ("ok", errno.EALREADY, "now")
    c2 = backend.socket()
    c2.settimeout(T)
    assert outcome(backend, lambda: c2.connect_ex(lst.getsockname())) == ("ok", errno.EWOULDBLOCK, "T")


def test_io_on_a_socket_still_connecting_times_out(backend):
    lst = full_backlog(backend)
    c = backend.socket()
    c.setblocking(False)
    assert c.connect_ex(lst.getsockname()) == errno.EINPROGRESS
    c.settimeout(T)
    assert outcome(backend, lambda: c.recv(10)) == TIMED_OUT
    assert outcome(backend, lambda: c.send(b"x")) == TIMED_OUT


def test_unix_connect_to_a_full_backlog_says_eagain_at_once(backend):
    path = backend.unix_path("full")
    lst = backend.socket(socket.AF_UNIX)
    lst.bind(path)
    lst.listen(0)
    for _ in range(3):
        c = backend.socket(socket.AF_UNIX)
        c.setblocking(False)
        try:
            c.connect(path)
        except BlockingIOError:
            pass
    c = backend.socket(socket.AF_UNIX)
    c.settimeout(T)
    assert outcome(backend, lambda: c.connect(path)) == ("BlockingIOError", errno.EAGAIN, "", "now")
    assert outcome(backend, lambda: c.connect_ex(path)) == ("ok", errno.EAGAIN, "now")


# -- settimeout's arguments ----------------------------------------------------------------------

#: CPython names the C type of its timeouts in this OverflowError: 3.13 made
#: ``_PyTime_t`` public as ``PyTime_t`` (measured on 3.11.7, 3.12.1, 3.13.0).
TOO_LARGE = "timestamp too large to convert to C " + ("PyTime_t" if sys.version_info >= (3, 13) else "_PyTime_t")


class _Index:
    def __index__(self):
        return 2

    def __repr__(self) -> str:  # a stable test id (pytest-xdist compares them)
        return "_Index()"


SETTIMEOUT_CASES = [
    # value, what CPython does on Linux: ("ok", gettimeout()) or (exception, message)
    (None, ("ok", None)),
    (0, ("ok", 0.0)),
    (5, ("ok", 5.0)),
    (True, ("ok", 1.0)),
    (_Index(), ("ok", 2.0)),
    (-0.0, ("ok", 0.0)),
    (0.1, ("ok", 0.1)),
    (1 / 3, ("ok", 0.333333334)),  # rounded up to whole nanoseconds
    (1e-300, ("ok", 1e-09)),
    (9.2e9, ("ok", 9.2e9)),
    (9223372036, ("ok", 9223372036.0)),
    (math.nan, ("ValueError", "Invalid value NaN (not a number)")),
    (math.inf, ("OverflowError", "timestamp out of range for platform time_t")),
    (-math.inf, ("OverflowError", "timestamp out of range for platform time_t")),
    (1e300, ("OverflowError", "timestamp out of range for platform time_t")),
    (9.3e9, ("OverflowError", "timestamp out of range for platform time_t")),
    (9223372037, ("OverflowError", TOO_LARGE)),
    (2 ** 64, ("OverflowError", TOO_LARGE)),
    (-1, ("ValueError", "Timeout value out of range")),
    (-0.5, ("ValueError", "Timeout value out of range")),
    ("1", ("TypeError", "'str' object cannot be interpreted as an integer")),
    (b"1", ("TypeError", "'bytes' object cannot be interpreted as an integer")),
    ([1], ("TypeError", "'list' object cannot be interpreted as an integer")),
]


@pytest.mark.parametrize("value, expected", SETTIMEOUT_CASES, ids=[repr(v) for v, _ in SETTIMEOUT_CASES])
def test_settimeout_takes_and_rejects_what_cpython_does(backend, value, expected):
    s = backend.socket()
    s.settimeout(7.0)
    try:
        s.settimeout(value)
    except Exception as exc:
        got = (type(exc).__name__, str(exc))
        assert s.gettimeout() == 7.0  # unchanged
    else:
        got = ("ok", s.gettimeout())
    assert got == expected


def test_connect_again_after_a_timeout_mode_connect_says_0_once(backend):
    """The kernel's connect said EINPROGRESS and CPython read the outcome
    from SO_ERROR, so the kernel still has its "0" for the next connect; a
    blocking socket's connect already said 0, and an AF_UNIX connect is done
    at once."""
    lst = backend.listener()
    c = backend.socket()
    c.settimeout(T)
    assert outcome(backend, lambda: c.connect_ex(lst.getsockname())) == ("ok", 0, "now")
    assert outcome(backend, lambda: c.connect(lst.getsockname())) == ("ok", None, "now")
    assert outcome(backend, lambda: c.connect_ex(lst.getsockname())) == ("ok", errno.EISCONN, "now")
    b = backend.socket()
    b.settimeout(None)
    b.connect(lst.getsockname())
    assert outcome(backend, lambda: b.connect_ex(lst.getsockname())) == ("ok", errno.EISCONN, "now")
    path = backend.unix_path("again")
    ul = backend.socket(socket.AF_UNIX)
    ul.bind(path)
    ul.listen(1)
    u = backend.socket(socket.AF_UNIX)
    u.settimeout(T)
    u.connect(path)
    assert outcome(backend, lambda: u.connect_ex(path)) == ("ok", errno.EISCONN, "now")


class _NoTruth:
    """An object whose truth value cannot be taken."""

    def __bool__(self):
        raise ValueError("no truth value")

    def __repr__(self) -> str:
        return "_NoTruth()"


class _Empty:
    """Falsy by ``__len__``, not an integer."""

    def __len__(self):
        return 0

    def __repr__(self) -> str:
        return "_Empty()"


def _not_an_integer(name: str) -> tuple[str, str]:
    return ("TypeError", f"'{name}' object cannot be interpreted as an integer")


# value, what CPython 3.11 does (converts to a C long), what 3.12+ does (any
# object's truth value -- measured on 3.11.7, 3.12.1 and 3.13.0)
SETBLOCKING_CASES = [
    (True, ("ok", None), ("ok", None)),
    (False, ("ok", 0.0), ("ok", 0.0)),
    (2, ("ok", None), ("ok", None)),
    (-1, ("ok", None), ("ok", None)),
    (0, ("ok", 0.0), ("ok", 0.0)),
    (_Index(), ("ok", None), ("ok", None)),
    ("x", _not_an_integer("str"), ("ok", None)),
    ("", _not_an_integer("str"), ("ok", 0.0)),
    (2.5, _not_an_integer("float"), ("ok", None)),
    (0.0, _not_an_integer("float"), ("ok", 0.0)),
    (None, _not_an_integer("NoneType"), ("ok", 0.0)),
    ([], _not_an_integer("list"), ("ok", 0.0)),
    (_Empty(), _not_an_integer("_Empty"), ("ok", 0.0)),
    (_NoTruth(), _not_an_integer("_NoTruth"), ("ValueError", "no truth value")),
    (2 ** 64, ("OverflowError", "Python int too large to convert to C long"), ("ok", None)),
]


@pytest.mark.parametrize("value, expected", [
    (value, on_311 if sys.version_info < (3, 12) else on_312) for value, on_311, on_312 in SETBLOCKING_CASES
], ids=repr)
def test_setblocking_takes_and_rejects_what_cpython_does(backend, value, expected):
    s = backend.socket()
    s.settimeout(7.0)
    try:
        s.setblocking(value)
    except Exception as exc:
        got = (type(exc).__name__, str(exc))
        assert s.gettimeout() == 7.0
    else:
        got = ("ok", s.gettimeout())
    assert got == expected


def test_setblocking_checks_its_argument_before_the_descriptor(backend):
    """A value setblocking() refuses is refused on a closed socket too, the
    mode unchanged: TypeError on 3.11, what ``__bool__`` raised on 3.12+."""
    s = backend.socket()
    s.settimeout(7.0)
    s.close()
    expected = TypeError if sys.version_info < (3, 12) else ValueError
    with pytest.raises(expected):
        s.setblocking(_NoTruth())
    assert s.gettimeout() == 7.0


def test_blocking_mode_of_a_closed_socket(backend):
    """CPython sets the mode, then fails on the closed descriptor; it
    checks the value first; getblocking/gettimeout need no descriptor."""
    s = backend.socket()
    s.close()
    with pytest.raises(OSError) as info:
        s.settimeout(1)
    assert info.value.errno == errno.EBADF
    assert s.gettimeout() == 1.0 and s.getblocking() is True
    with pytest.raises(OSError) as info:
        s.setblocking(False)
    assert info.value.errno == errno.EBADF
    assert s.gettimeout() == 0.0 and s.getblocking() is False
    with pytest.raises(ValueError, match="Invalid value NaN"):
        s.settimeout(math.nan)
