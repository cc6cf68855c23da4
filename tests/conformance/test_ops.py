"""Op sequences on a TCP pair: recorded outcomes, compared across runs and backends.

Hypothesis draws random sequences of operations (see :mod:`.harness` for
the vocabulary: send/recv/peek from either end, shutdown, close, abort via
SO_LINGER (1, 0), settle, readiness, SO_ERROR, getpeername) and
:func:`.harness.run_ops` records the outcome of each. No model of the
expected results is written down: the real kernel is the reference.

* ``test_recording_is_deterministic`` runs each sequence twice on the real
  backend and requires identical outcomes. This proves the recording holds
  nothing timing- or run-dependent (port numbers are normalised away, data
  stays far below buffer limits so no send is ever partial), so it can serve
  as the reference.
* ``test_backend_matches_real`` runs each sequence on every backend in
  ``BACKENDS`` and compares with the real backend. With only the real
  backend this is the same check again; with a fake backend it is the
  differential test.
* ``test_known_sequences`` spells out a few sequences with their outcomes,
  for reading and for backends that cannot consult a kernel.

Sizes are bounded: at most 25 ops, sends of at most 1500 bytes (< 38 KB in
total, under the ~64 KB initial loopback window), so every send completes
in full on Linux and the outcome never depends on buffer autotuning.
"""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .backends import BACKENDS, Backend, RealBackend
from .harness import describe_op, run_ops

SIDES = st.sampled_from(["c", "s"])

# Op kinds, data ops weighted up so that most sequences move data before both
# ends are closed (after which everything is EBADF).
KINDS = ["send"] * 4 + ["recv"] * 4 + [
    "peek", "shutdown", "close", "abort", "settle", "ready", "error", "peer"]
ARGS = {
    "send": lambda: st.tuples(SIDES, st.integers(1, 1500)),
    "recv": lambda: st.tuples(SIDES, st.integers(1, 3000)),
    "peek": lambda: st.tuples(SIDES, st.integers(1, 3000)),
    "shutdown": lambda: st.tuples(
        SIDES, st.sampled_from([socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR])),
    "settle": lambda: st.just(()),
}


def _op(kind: str):
    args = ARGS.get(kind, lambda: st.tuples(SIDES))()
    return args.map(lambda a: (kind, *a))


OPS = st.sampled_from(KINDS).flatmap(_op)
SEQUENCES = st.lists(OPS, max_size=25)

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    database=None,  # write nothing outside tests/conformance
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def record(backend_cls: type[Backend], ops) -> list:
    backend = backend_cls()
    try:
        return run_ops(backend, ops)
    finally:
        backend.close_all()


def diff(ops, expected: list, got: list) -> str:
    lines = [f"   {'op':28} {'expected (reference)':48} got"]
    for op, want, have in zip(ops, expected, got):
        mark = "  " if want == have else "!!"
        lines.append(f"{mark} {describe_op(op):28} {want!r:48} {have!r}")
    return "\n".join(lines)


@SETTINGS
@given(ops=SEQUENCES)
def test_recording_is_deterministic(ops):
    first = record(RealBackend, ops)
    second = record(RealBackend, ops)
    assert first == second, "\n" + diff(ops, first, second)


@pytest.mark.parametrize("backend_cls", BACKENDS, ids=lambda cls: cls.name)
@SETTINGS
@given(ops=SEQUENCES)
def test_backend_matches_real(backend_cls, ops):
    reference = record(RealBackend, ops)
    got = record(backend_cls, ops)
    assert got == reference, "\n" + diff(ops, reference, got)


OK = "ok"
SHUT_WR = socket.SHUT_WR
KNOWN = {
    "fin-then-eof-and-epipe": (
        [("close", "c"), ("settle",), ("ready", "s"), ("recv", "s", 10),
         ("send", "s", 3), ("settle",), ("send", "s", 3), ("recv", "s", 10), ("peer", "s")],
        [(OK, None), (OK, None), (OK, "rw"), (OK, "0:"),
         (OK, 3), (OK, None), ("raise", "BrokenPipeError", "EPIPE"), (OK, "0:"),
         ("raise", "OSError", "ENOTCONN")],
    ),
    "unread-data-close-is-rst": (
        [("send", "s", 5), ("settle",), ("close", "c"), ("settle",), ("error", "s"),
         ("recv", "s", 10), ("send", "s", 1)],
        [(OK, 5), (OK, None), (OK, None), (OK, None), (OK, "ECONNRESET"),
         (OK, "0:"), ("raise", "BrokenPipeError", "EPIPE")],
    ),
    "abort-after-data": (
        [("send", "c", 4), ("abort", "c"), ("settle",), ("recv", "s", 100),
         ("recv", "s", 100), ("recv", "s", 100)],
        [(OK, 4), (OK, None), (OK, None), (OK, "4:A4"),
         ("raise", "ConnectionResetError", "ECONNRESET"), (OK, "0:")],
    ),
    "half-close": (
        [("shutdown", "c", SHUT_WR), ("settle",), ("recv", "s", 10), ("send", "c", 1),
         ("send", "s", 2), ("settle",), ("recv", "c", 10), ("ready", "c")],
        [(OK, None), (OK, None), (OK, "0:"), ("raise", "BrokenPipeError", "EPIPE"),
         (OK, 2), (OK, None), (OK, "2:E2"), (OK, "w")],
    ),
    "coalescing-and-peek": (
        [("send", "c", 2), ("send", "c", 3), ("settle",), ("peek", "s", 4),
         ("recv", "s", 100), ("recv", "s", 1)],
        [(OK, 2), (OK, 3), (OK, None), (OK, "4:A2B2"),
         (OK, "5:A2B3"), ("raise", "BlockingIOError", "EAGAIN")],
    ),
    "rst-after-both-fins": (
        # the RST of a close with unread data reaches a socket whose
        # connection both FINs closed already: nothing to report
        [("send", "c", 3), ("settle",), ("shutdown", "c", SHUT_WR), ("settle",),
         ("shutdown", "s", SHUT_WR), ("settle",), ("close", "s"), ("settle",),
         ("error", "c"), ("ready", "c"), ("recv", "c", 10)],
        [(OK, 3), (OK, None), (OK, None), (OK, None), (OK, None), (OK, None), (OK, None),
         (OK, None), (OK, 0), (OK, "rw"), (OK, "0:")],
    ),
    "closed-socket": (
        [("close", "c"), ("send", "c", 1), ("recv", "c", 1), ("ready", "c"),
         ("close", "c"), ("peer", "c")],
        [(OK, None), ("raise", "OSError", "EBADF"), ("raise", "OSError", "EBADF"),
         ("raise", "ValueError", None), (OK, None), ("raise", "OSError", "EBADF")],
    ),
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_known_sequences(backend, name):
    ops, expected = KNOWN[name]
    got = run_ops(backend, ops)
    assert got == expected, "\n" + diff(ops, expected, got)
