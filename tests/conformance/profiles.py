"""Op-sequence profiles: random programs run on real loopback and on another backend.

A *profile* is a vocabulary of socket operations on a small fixed set of
sockets, a Hypothesis strategy drawing sequences of them, and an
interpreter that applies a sequence on a backend and records each
operation's outcome (``("ok", value)`` or ``("raise", class, errno)``) with
nothing run-dependent in it (ports and paths are named by role, bytes
summarised). The real kernel's recording is the reference; a backend
diverges when it records anything else for the same sequence.

Profiles (``PROFILES``):

``tcp``          the TCP pair vocabulary of :mod:`.harness` (send, recv, peek,
                 shutdown, close, abort, settle, readiness, SO_ERROR, getpeername)
``unix-stream``  the same on an AF_UNIX stream pair
``makefile``     a TCP pair whose client also reads and writes through
                 ``makefile()`` objects; ``close()`` with files alive
``timeout``      a TCP pair and a listener in timeout mode (``settimeout``):
                 calls that would block wait, then raise TimeoutError
``udp``          two bound UDP sockets and a dead address (see test_udp_ops)
                 plus bursts that hit the receive-queue limit
``unix-dgram``   two bound AF_UNIX datagram sockets, a dead path and a
                 missing one; bursts that hit Linux's flow control

``tests/conformance/test_profiles.py`` runs a few examples of each in the
suite; ``python -m tests.conformance.run_ops`` runs thousands.
"""

from __future__ import annotations

import io
import socket
from dataclasses import dataclass
from typing import Any, Callable

from hypothesis import strategies as st

from . import test_ops, test_udp_ops
from .backends import LINGER_RST, Backend, errno_name
from .harness import outcome, run_ops, summarise

#: The timeout of the timeout-mode profile, in seconds (real seconds on the
#: real backend: every wait that runs out costs this much).
TIMEOUT = 0.002


def _letter(i: int) -> bytes:
    return bytes([ord("A") + i % 26])


def _rec(fn: Callable[..., Any], *args: Any) -> tuple:
    """Like :func:`.harness.outcome`, with bytes summarised, TimeoutError and
    io.UnsupportedOperation named, and any other exception recorded by class."""
    try:
        value = fn(*args)
    except TimeoutError as exc:
        return ("raise", type(exc).__name__, errno_name(exc.errno))
    except OSError as exc:
        return ("raise", type(exc).__name__, errno_name(exc.errno))
    except (ValueError, TypeError) as exc:
        return ("raise", type(exc).__name__, str(exc)[:40])
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, (bytes, bytearray)):
        return ("ok", summarise(bytes(value)))
    return ("ok", value)


# ---------------------------------------------------------------------------
# tcp / unix-stream: the harness vocabulary

def _run_stream(family: int) -> Callable[[Backend, list], list]:
    def run(backend: Backend, ops: list) -> list:
        return run_ops(backend, ops, family)
    return run


# ---------------------------------------------------------------------------
# makefile

SIDES = st.sampled_from(["c", "s"])
FILES = st.integers(0, 2)
MAKEFILE_OPS = st.one_of(
    st.tuples(st.just("mk"), st.sampled_from(["rb", "wb", "rwb", "r", "w"]),
              st.sampled_from([-1, 0, 8])),
    st.tuples(st.just("fread"), FILES, st.integers(-1, 40)),
    st.tuples(st.just("freadline"), FILES),
    st.tuples(st.just("fwrite"), FILES, st.integers(1, 30)),
    st.tuples(st.just("fflush"), FILES),
    st.tuples(st.just("fclose"), FILES),
    st.tuples(st.just("send"), SIDES, st.integers(1, 30)),
    st.tuples(st.just("sendline"), SIDES, st.integers(0, 20)),
    st.tuples(st.just("recv"), SIDES, st.integers(1, 60)),
    st.tuples(st.just("close"), SIDES),
    st.tuples(st.just("shutdown"), SIDES, st.sampled_from([socket.SHUT_RD, socket.SHUT_WR,
                                                           socket.SHUT_RDWR])),
    st.tuples(st.just("fileno"), SIDES),
    st.tuples(st.just("ready"), SIDES),
    st.tuples(st.just("settle")),
)


def run_makefile(backend: Backend, ops: list) -> list:
    """The client end ``c`` may get up to 3 files (``mk``); the file ops
    address them by creation index (an op on a file not made yet records
    ``("skip",)``). Both ends stay non-blocking."""
    cli, srv = backend.tcp_pair()
    ends = {"c": cli, "s": srv}
    files: list[Any] = []
    out: list = []
    try:
        for i, op in enumerate(ops):
            kind = op[0]
            if kind == "mk":
                buffering = None if op[2] == -1 else op[2]
                res = _rec(cli.makefile, op[1], buffering)
                if res[0] == "ok":
                    files.append(res[1])
                    res = ("ok", type(res[1]).__name__)
                out.append(res)
            elif kind.startswith("f") and kind != "fileno":
                if op[1] >= len(files):
                    out.append(("skip",))
                    continue
                f = files[op[1]]
                if kind == "fread":
                    out.append(_rec(f.read, op[2]))
                elif kind == "freadline":
                    out.append(_rec(f.readline))
                elif kind == "fwrite":
                    data = _letter(i) * op[2]
                    text = isinstance(f, io.TextIOBase)
                    out.append(_rec(f.write, data.decode() if text else data))
                elif kind == "fflush":
                    out.append(_rec(f.flush))
                else:
                    out.append(_rec(f.close))
            elif kind == "settle":
                out.append(_rec(backend.settle))
            else:
                sock = ends[op[1]]
                if kind == "send":
                    out.append(_rec(sock.send, _letter(i) * op[2]))
                elif kind == "sendline":
                    out.append(_rec(sock.send, _letter(i) * op[2] + b"\n"))
                elif kind == "recv":
                    out.append(_rec(sock.recv, op[2]))
                elif kind == "close":
                    out.append(_rec(sock.close))
                elif kind == "shutdown":
                    out.append(_rec(sock.shutdown, op[2]))
                elif kind == "fileno":
                    out.append(("ok", sock.fileno() == -1))
                else:
                    out.append(outcome(backend.readiness, sock))
    finally:
        for f in files:
            try:
                f.close()
            except (OSError, ValueError):
                pass
    return out


# ---------------------------------------------------------------------------
# timeout mode

TIMEOUT_OPS = st.one_of(
    st.tuples(st.just("send"), SIDES, st.integers(1, 1500)),
    st.tuples(st.just("sendall"), SIDES, st.integers(1, 1500)),
    st.tuples(st.just("recv"), SIDES, st.integers(1, 3000)),
    st.tuples(st.just("recv"), SIDES, st.integers(1, 3000)),
    st.tuples(st.just("peek"), SIDES, st.integers(1, 3000)),
    st.tuples(st.just("shutdown"), SIDES, st.sampled_from([socket.SHUT_RD, socket.SHUT_WR,
                                                           socket.SHUT_RDWR])),
    st.tuples(st.just("close"), SIDES),
    st.tuples(st.just("abort"), SIDES),
    st.tuples(st.just("ready"), SIDES),
    st.tuples(st.just("error"), SIDES),
    st.tuples(st.just("settle")),
    st.tuples(st.just("dial")),
    st.tuples(st.just("accept")),
    st.tuples(st.just("refused")),
    st.tuples(st.just("mode"), SIDES, st.sampled_from(["timeout", "blocking-nonblocking"])),
)


def run_timeout(backend: Backend, ops: list) -> list:
    """A TCP pair and a listener (backlog 2), all with ``settimeout(TIMEOUT)``.
    ``dial`` connects a new timeout-mode client to the listener, ``accept``
    accepts on it, ``refused`` connects to a dead address; ``mode`` switches
    an end between timeout mode and non-blocking."""
    cli, srv = backend.tcp_pair()
    lst = backend.listener(backlog=2)
    for s in (cli, srv, lst):
        s.settimeout(TIMEOUT)
    ends = {"c": cli, "s": srv}
    dead = backend.refused_addr()
    out: list = []
    for i, op in enumerate(ops):
        kind = op[0]
        if kind == "settle":
            out.append(_rec(backend.settle))
            continue
        if kind == "dial":
            new = backend.socket()
            new.settimeout(TIMEOUT)
            out.append(_rec(new.connect, lst.getsockname()))
            continue
        if kind == "accept":
            res = _rec(lst.accept)
            if res[0] == "ok":
                backend.track(res[1])
                res = ("ok", "accepted", res[1][0].gettimeout())
            out.append(res)
            continue
        if kind == "refused":
            new = backend.socket()
            new.settimeout(TIMEOUT)
            out.append(_rec(new.connect, dead))
            continue
        sock = ends[op[1]]
        if kind == "send":
            out.append(_rec(sock.send, _letter(i) * op[2]))
        elif kind == "sendall":
            out.append(_rec(sock.sendall, _letter(i) * op[2]))
        elif kind in ("recv", "peek"):
            out.append(_rec(sock.recv, op[2], socket.MSG_PEEK if kind == "peek" else 0))
        elif kind == "shutdown":
            out.append(_rec(sock.shutdown, op[2]))
        elif kind == "close":
            out.append(_rec(sock.close))
        elif kind == "abort":
            res = _rec(sock.setsockopt, socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            closed = _rec(sock.close)
            out.append(res if res[0] != "ok" else closed)
        elif kind == "ready":
            out.append(outcome(backend.readiness, sock))
        elif kind == "error":
            res = _rec(sock.getsockopt, socket.SOL_SOCKET, socket.SO_ERROR)
            out.append(("ok", errno_name(res[1]) if res[1] else 0) if res[0] == "ok" else res)
        else:
            out.append(_rec(sock.settimeout, TIMEOUT if op[2] == "timeout" else 0.0))
    return out


# ---------------------------------------------------------------------------
# udp (the test_udp_ops vocabulary plus bursts)

UDP_OPS = st.one_of(
    test_udp_ops.OPS,
    st.tuples(st.just("burst"), test_udp_ops.SOCKS, test_udp_ops.TARGETS,
              st.sampled_from([0, 100, 1000, 9000]), st.integers(1, 300)),
)


def run_udp(backend: Backend, ops: list) -> list:
    plain = [op for op in ops if op[0] != "burst"]
    if len(plain) == len(ops):
        return test_udp_ops.run_udp_ops(backend, ops)
    # bursts: run the sequence op by op so bursts interleave with the rest
    socks = {"a": backend.udp_socket(), "b": backend.udp_socket()}
    addrs = {"a": socks["a"].getsockname(), "b": socks["b"].getsockname(),
             "dead": backend.refused_addr(socket.AF_INET, socket.SOCK_DGRAM)}
    names = {addr: name for name, addr in addrs.items()}
    out = []
    for op in ops:
        if op[0] == "burst":
            sock, target, size, count = socks[op[1]], addrs[op[2]], op[3], op[4]
            sent = 0
            err = None
            for _ in range(count):
                try:
                    sock.sendto(b"u" * size, target)
                except OSError as exc:
                    err = (type(exc).__name__, exc.errno)
                    break
                sent += 1
            out.append(("burst", sent, err))
        else:
            out.append(test_udp_ops.datagram_op(backend, socks, addrs, names, op))
    return out


# ---------------------------------------------------------------------------
# unix-dgram

USOCKS = st.sampled_from(["a", "b"])
UTARGETS = st.sampled_from(["a", "b", "dead", "missing"])
UNIX_DGRAM_OPS = st.one_of(
    st.tuples(st.just("sendto"), USOCKS, UTARGETS, st.integers(0, 3000)),
    st.tuples(st.just("send"), USOCKS, st.integers(0, 3000)),
    st.tuples(st.just("recv"), USOCKS, st.integers(1, 4000)),
    st.tuples(st.just("recvfrom"), USOCKS, st.integers(0, 4000)),
    st.tuples(st.just("connect"), USOCKS, UTARGETS),
    st.tuples(st.just("burst"), USOCKS, UTARGETS, st.sampled_from([0, 100, 20000]),
              st.integers(1, 30)),
    st.tuples(st.just("ready"), USOCKS),
    st.tuples(st.just("error"), USOCKS),
    st.tuples(st.just("close"), USOCKS),
    st.tuples(st.just("settle")),
)


def run_unix_dgram(backend: Backend, ops: list) -> list:
    socks = {}
    for name in ("a", "b"):
        s = backend.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(backend.unix_path(name))
        s.setblocking(False)
        socks[name] = s
    gone = backend.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    gone.bind(backend.unix_path("dead"))
    addrs = {"a": socks["a"].getsockname(), "b": socks["b"].getsockname(),
             "dead": gone.getsockname(), "missing": backend.unix_path("missing")}
    gone.close()  # the path stays: ECONNREFUSED
    names = {addr: name for name, addr in addrs.items()}
    out: list = []
    for op in ops:
        if op[0] != "burst":
            out.append(test_udp_ops.datagram_op(backend, socks, addrs, names, op, unnamed=repr))
            continue
        sock, target, size, count = socks[op[1]], addrs[op[2]], op[3], op[4]
        sent = 0
        err = None
        for _ in range(count):
            try:
                sock.sendto(b"x" * size, target)
            except OSError as exc:
                err = (type(exc).__name__, exc.errno)
                break
            sent += 1
        out.append(("ok", (sent, err)))
    return out


# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    """One vocabulary: ``sequences`` (a Hypothesis strategy of op lists) and
    ``run(backend, ops) -> outcomes``."""

    name: str
    sequences: Any
    run: Callable[[Backend, list], list]

    def record(self, backend_cls: type[Backend], ops: list) -> list:
        backend = backend_cls()
        try:
            return self.run(backend, ops)
        finally:
            backend.close_all()


PROFILES: dict[str, Profile] = {p.name: p for p in [
    Profile("tcp", test_ops.SEQUENCES, _run_stream(socket.AF_INET)),
    Profile("unix-stream", test_ops.SEQUENCES, _run_stream(socket.AF_UNIX)),
    Profile("makefile", st.lists(MAKEFILE_OPS, max_size=25), run_makefile),
    Profile("timeout", st.lists(TIMEOUT_OPS, max_size=20), run_timeout),
    Profile("udp", st.lists(UDP_OPS, max_size=20), run_udp),
    Profile("unix-dgram", st.lists(UNIX_DGRAM_OPS, max_size=20), run_unix_dgram),
]}


def diff_lines(ops: list, reference: list, got: list) -> str:
    """Side by side: op, real outcome, other outcome (``!!`` marks a difference)."""
    lines = []
    for i in range(max(len(ops), len(reference), len(got))):
        op = ops[i] if i < len(ops) else "-"
        want = reference[i] if i < len(reference) else "-"
        have = got[i] if i < len(got) else "-"
        lines.append(f"{'  ' if want == have else '!!'} {op!r:44} {want!r:44} {have!r}")
    return "\n".join(lines)
