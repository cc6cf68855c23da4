"""Recording what socket calls do, for explicit and differential tests.

* :func:`outcome` runs one call and returns a comparable, printable record:
  ``("ok", value)`` or ``("raise", "ExceptionClass", "ERRNO_NAME")``.
* :func:`expect_error` asserts that a call raises *exactly* a given exception
  class (not a subclass, not a parent) with a given errno.
* :func:`run_ops` interprets a list of operations on a fresh TCP pair and
  returns the list of outcomes. The expected results are not modelled
  anywhere: the real backend's outcomes are the reference, and another
  backend is correct when it produces the same list for the same ops.

Operations (``side`` is ``"c"`` for the connecting end, ``"s"`` for the
accepted end)::

    ("send", side, n)        send n bytes (a run of one letter per op)
    ("recv", side, n)        recv(n)
    ("peek", side, n)        recv(n, MSG_PEEK)
    ("shutdown", side, how)  shutdown(how), how in SHUT_RD/SHUT_WR/SHUT_RDWR
    ("close", side)          close()
    ("abort", side)          SO_LINGER (1, 0), then close(): RST
    ("settle",)              backend.settle()
    ("ready", side)          readiness as select() reports it, e.g. "rw"
    ("error", side)          getsockopt(SO_ERROR), as an errno name or 0
    ("peer", side)           getpeername(), normalised to "connected"

Normalisation: nothing timing- or run-dependent is recorded. Ports differ
between runs, so ``peer`` records only success or the error; received bytes
are recorded as a run-length summary such as ``"120:A100B20"`` (length, then
runs of the letters the sends used), which is exact because every send uses
a single letter.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Sequence

import pytest

from .backends import LINGER_RST, Backend, errno_name

__all__ = ["outcome", "expect_error", "run_ops", "summarise", "Outcome", "Op"]

Outcome = tuple
Op = tuple


def outcome(fn: Callable[..., Any], *args: Any) -> Outcome:
    """Call ``fn(*args)``; return ``("ok", result)`` or ``("raise", cls, errno_name)``.

    ``ValueError`` (what ``select`` raises for a closed socket) is recorded
    too, with errno ``None``; other exceptions propagate.
    """
    try:
        value = fn(*args)
    except OSError as exc:
        return ("raise", type(exc).__name__, errno_name(exc.errno))
    except ValueError:
        return ("raise", "ValueError", None)
    return ("ok", value)


def expect_error(exc_type: type[BaseException], err: int | None,
                 fn: Callable[..., Any], *args: Any) -> BaseException:
    """Assert ``fn(*args)`` raises exactly ``exc_type`` with errno ``err``; return it."""
    want = f"{exc_type.__name__}({errno_name(err)})"
    call = f"{getattr(fn, '__name__', fn)}{args!r}"
    try:
        value = fn(*args)
    except Exception as exc:
        got = f"{type(exc).__name__}({errno_name(getattr(exc, 'errno', None))})"
        if got != want:
            pytest.fail(f"{call}: expected {want}, got {got}: {exc!r}", pytrace=False)
        return exc
    pytest.fail(f"{call}: expected {want}, got return value {value!r}", pytrace=False)


def summarise(data: bytes) -> str:
    """``b"AAAB"`` -> ``"4:A3B1"``: length, then runs of equal bytes."""
    parts = []
    i = 0
    while i < len(data):
        j = i
        while j < len(data) and data[j] == data[i]:
            j += 1
        parts.append(f"{chr(data[i])}{j - i}")
        i = j
    return f"{len(data)}:" + "".join(parts)


def _letter(index: int) -> bytes:
    return bytes([ord("A") + index % 26])


_SHUT = {socket.SHUT_RD: "SHUT_RD", socket.SHUT_WR: "SHUT_WR", socket.SHUT_RDWR: "SHUT_RDWR"}


def _apply(backend: Backend, ends: dict[str, Any], index: int, op: Op) -> Outcome:
    kind = op[0]
    if kind == "settle":
        return outcome(backend.settle)
    sock = ends[op[1]]
    if kind == "send":
        return outcome(sock.send, _letter(index) * op[2])
    if kind in ("recv", "peek"):
        flags = socket.MSG_PEEK if kind == "peek" else 0
        res = outcome(sock.recv, op[2], flags)
        return ("ok", summarise(res[1])) if res[0] == "ok" else res
    if kind == "shutdown":
        return outcome(sock.shutdown, op[2])
    if kind == "close":
        return outcome(sock.close)
    if kind == "abort":
        res = outcome(sock.setsockopt, socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        closed = outcome(sock.close)
        return res if res[0] != "ok" else closed
    if kind == "ready":
        return outcome(backend.readiness, sock)
    if kind == "error":
        res = outcome(sock.getsockopt, socket.SOL_SOCKET, socket.SO_ERROR)
        return ("ok", errno_name(res[1]) if res[1] else 0) if res[0] == "ok" else res
    if kind == "peer":
        res = outcome(sock.getpeername)
        return ("ok", "connected") if res[0] == "ok" else res
    raise ValueError(f"unknown op {op!r}")


def run_ops(backend: Backend, ops: Sequence[Op], family: int = socket.AF_INET) -> list[Outcome]:
    """Apply ``ops`` to a fresh non-blocking TCP pair of ``backend``; return the outcomes.

    The pair is made with :meth:`Backend.tcp_pair` (TCP_NODELAY on both
    ends). Sockets are left for ``backend.close_all()``.
    """
    client, server = backend.tcp_pair(family)
    ends = {"c": client, "s": server}
    return [_apply(backend, ends, i, op) for i, op in enumerate(ops)]


def describe_op(op: Op) -> str:
    """Readable form of an op for failure messages."""
    if op[0] == "shutdown":
        return f"shutdown({op[1]}, {_SHUT.get(op[2], op[2])})"
    return "(" + ", ".join(map(str, op)) + ")"
