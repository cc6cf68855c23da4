"""Op sequences on UDP sockets: recorded outcomes, compared across backends.

Two bound UDP sockets ``a`` and ``b`` on 127.0.0.1 and a dead address
(``backend.refused_addr`` for datagrams). Hypothesis draws sequences of
sendto/send/recv/recvfrom/connect/close/settle/readiness/SO_ERROR; each
outcome is recorded with addresses named by role ("a", "b", "dead"), never
by port, so the real kernel's recording is the reference for every backend.
"""

from __future__ import annotations

import socket
from typing import Any
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .backends import BACKENDS, Backend, RealBackend

SOCKS = st.sampled_from(["a", "b"])
TARGETS = st.sampled_from(["a", "b", "dead"])
SIZES = st.integers(0, 2000)

OPS = st.one_of(
    st.tuples(st.just("sendto"), SOCKS, TARGETS, SIZES),
    st.tuples(st.just("send"), SOCKS, SIZES),
    st.tuples(st.just("recv"), SOCKS, st.integers(1, 3000)),
    st.tuples(st.just("recvfrom"), SOCKS, st.integers(0, 3000)),
    st.tuples(st.just("connect"), SOCKS, TARGETS),
    st.tuples(st.just("settle")),
    st.tuples(st.just("ready"), SOCKS),
    st.tuples(st.just("error"), SOCKS),
    st.tuples(st.just("close"), SOCKS),
)
SEQUENCES = st.lists(OPS, max_size=20)
SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _payload(n: int) -> bytes:
    return bytes((i * 7 + n) % 251 for i in range(n))


def run_udp_ops(backend: Backend, ops: list) -> list:
    socks = {"a": backend.udp_socket(), "b": backend.udp_socket()}
    for s in socks.values():
        s.setblocking(False)
    addrs = {"a": socks["a"].getsockname(), "b": socks["b"].getsockname(),
             "dead": backend.refused_addr(socket.AF_INET, socket.SOCK_DGRAM)}
    names = {addr: name for name, addr in addrs.items()}
    return [datagram_op(backend, socks, addrs, names, op) for op in ops]


def datagram_op(backend: Backend, socks: dict, addrs: dict, names: dict, op: tuple,
                unnamed: Any = lambda src: "?") -> tuple:
    """The outcome of one datagram op (sendto/send/recv/recvfrom/connect/
    settle/ready/error/close) on the sockets *socks*; a source address that
    is none of *names*' is shown as ``unnamed(src)``. Shared with the UDP and
    unix-dgram profiles of :mod:`.profiles`."""
    kind, *args = op
    try:
        if kind == "sendto":
            result = socks[args[0]].sendto(_payload(args[2]), addrs[args[1]])
        elif kind == "send":
            result = socks[args[0]].send(_payload(args[1]))
        elif kind == "recv":
            data = socks[args[0]].recv(args[1])
            result = (len(data), zlib.crc32(data))
        elif kind == "recvfrom":
            data, src = socks[args[0]].recvfrom(args[1])
            name = names.get(src)
            result = (len(data), zlib.crc32(data), unnamed(src) if name is None else name)
        elif kind == "connect":
            result = socks[args[0]].connect_ex(addrs[args[1]])
        elif kind == "settle":
            result = backend.settle()
        elif kind == "ready":
            result = backend.readiness(socks[args[0]])
        elif kind == "error":
            result = socks[args[0]].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        else:
            result = socks[args[0]].close()
        return ("ok", result)
    except OSError as exc:
        return ("raise", type(exc).__name__, exc.errno)
    except ValueError as exc:
        return ("raise", "ValueError", str(exc)[:20])


def record(backend_cls: type[Backend], ops: list) -> list:
    backend = backend_cls()
    try:
        return run_udp_ops(backend, ops)
    finally:
        backend.close_all()


@SETTINGS
@given(ops=SEQUENCES)
def test_udp_recording_is_deterministic(ops):
    assert record(RealBackend, ops) == record(RealBackend, ops)


@pytest.mark.parametrize("backend_cls", BACKENDS, ids=lambda cls: cls.name)
@SETTINGS
@given(ops=SEQUENCES)
def test_udp_backend_matches_real(backend_cls, ops):
    reference = record(RealBackend, ops)
    got = record(backend_cls, ops)
    assert got == reference, "\n" + "\n".join(
        f"{'  ' if r == g else '!!'} {op!r:40} {r!r:40} {g!r}" for op, r, g in zip(ops, reference, got))


def test_udp_known_sequence():
    """A datagram to a connected peer and a refused one, on every backend."""
    ops = [("connect", "a", "dead"), ("send", "a", 5), ("settle",), ("ready", "a"),
           ("recv", "a", 10), ("sendto", "b", "a", 3), ("settle",), ("recvfrom", "a", 10)]
    for cls in BACKENDS:
        got = record(cls, ops)
        assert got[0] == ("ok", 0) and got[1] == ("ok", 5)
        assert got[3] == ("ok", "rw")
        assert got[4] == ("raise", "ConnectionRefusedError", 111)
        # a is connected to "dead": b's datagram is not for it
        assert got[7] == ("raise", "BlockingIOError", 11), cls.name
