"""Fault plans and traces on kernel sockets.

:class:`FaultySocket` wraps a real socket and applies the rules that make
sense for one: partial sends, short reads, spurious EAGAIN, RST and FIN
disconnects, refused connects, and (in the loop's wait) EINTR. A trace of
the run records what the kernel actually did (the sizes send() took, the
chunks recv() returned, the EAGAINs), and :func:`plan_from_trace` turns it
into a plan that makes the fake network reproduce that I/O pattern.
"""

from __future__ import annotations

import errno
import os
import random
import socket as _socket
import struct
import time
from typing import Any

from simnet.faults import FaultEngine, FaultPlan, PlanError, Rule
from simnet.trace import Trace

__all__ = ["FaultySocket", "REAL_FAULTS", "check_real_plan", "plan_from_trace"]

#: The faults a kernel socket can be made to show.
REAL_FAULTS = frozenset({"partial_send", "short_read", "eagain", "eintr", "disconnect", "refuse"})


def check_real_plan(plan: FaultPlan) -> None:
    """Refuse rules that cannot apply to kernel sockets, naming them."""
    for i, rule in enumerate(plan, 1):
        if rule.fault not in REAL_FAULTS:
            raise PlanError(f"rule {i} ({rule.fault}): cannot be applied to kernel sockets "
                            f"(real sockets take {', '.join(sorted(REAL_FAULTS))}); "
                            "use simnet.fakesock.FakeNetwork for it")
        if rule.fault == "disconnect" and rule.params["at"] is not None:
            raise PlanError(f"rule {i} (disconnect): 'at' needs the fake network's clock; "
                            "use after_bytes on real sockets")
        if "window" in rule.where:
            raise PlanError(f"rule {i} ({rule.fault}): 'where.window' needs the fake network's "
                            "clock; use call or limit on real sockets")


_monotonic = time.monotonic


def _name(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code is None:
        return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
    return errno.errorcode.get(code, f"E{code}")


class FaultySocket:
    """A kernel socket with a fault plan (and a trace). Everything not
    overridden here goes to the wrapped socket."""

    def __init__(self, sock: _socket.socket, net: Any, conn: int | None = None,
                 side: str | None = None) -> None:
        self._sock = sock
        self.network = net
        self._conn = conn
        self._side = side
        self._calls = {"send": 0, "recv": 0, "accept": 0, "connect": 0}
        self._sent = 0
        self._reset = 0  # 1: reset, error not yet reported; 2: reported
        self._fd = sock.fileno()
        # the direct path (a trace, no plan) reads these without lookups
        self._flat = net.trace.flat if net.trace is not None and not net.faults.plan else None
        self._t0 = net._start
        self._ksend = sock.send
        self._krecv = sock.recv
        net._trace("socket", self._fd, int(sock.family), int(sock.type))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        return f"<FaultySocket conn={self._conn} side={self._side} {self._sock!r}>"

    def fileno(self) -> int:
        return self._sock.fileno()

    def _addr(self, which: str) -> Any:
        try:
            return getattr(self._sock, which)()
        except OSError:
            return None

    def _fault(self, op: str) -> Rule | None:
        self._calls[op] += 1
        faults = self.network.faults
        if not faults.has(op):
            return None  # no rule can act here: skip the address look-ups
        return faults.match(op, conn=self._conn, side=self._side,
                            local=self._addr("getsockname"), peer=self._addr("getpeername"),
                            call=self._calls[op], fd=self._fd)

    # -- connections -----------------------------------------------------------
    def _set_conn(self, conn: int, side: str) -> None:
        self._conn, self._side = conn, side
        self.network._trace("conn", self._fd, conn, side)

    def connect_ex(self, address: Any) -> int:
        net = self.network
        self._set_conn(net._new_conn(self), "client")
        rule = self._fault("connect")
        if rule is not None and rule.fault == "refuse":
            code = self._sock.connect_ex(net._dead_address(self._sock.family))
        else:
            code = self._sock.connect_ex(address)
            if rule is not None and rule.fault == "eagain" and code == errno.EINPROGRESS:
                code = errno.EAGAIN
        net._note_client(self)
        net._trace("connect", self._fd, address, code)
        return code

    def connect(self, address: Any) -> None:
        code = self.connect_ex(address)
        if code not in (0, errno.EISCONN):
            raise OSError(code, os.strerror(code))

    def accept(self) -> tuple[FaultySocket, Any]:
        rule = self._fault("accept")
        if rule is not None and rule.fault == "eagain":
            self.network._trace("accept", self._fd, "EAGAIN", None, None)
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        try:
            sock, addr = self._sock.accept()
        except OSError as exc:
            self.network._trace("accept", self._fd, _name(exc), None, None)
            raise
        wrapped = FaultySocket(sock, self.network)
        wrapped._set_conn(self.network._conn_for_accepted(sock), "server")
        self.network._trace("accept", self._fd, wrapped._fd, addr, wrapped._conn)
        return wrapped, addr

    # -- data ----------------------------------------------------------------------
    def send(self, data: Any, flags: int = 0) -> int:
        flat = self._flat
        if flat is not None and not self._reset and type(data) is bytes:
            # trace only: one kernel call, one record
            try:
                taken = self._ksend(data, flags)
            except OSError as exc:
                self.network._trace("send", self._fd, len(data), _name(exc), 0)
                raise
            self._sent += taken
            flat += (6, _monotonic() - self._t0, "send", self._fd, len(data), taken,
                     data if taken == len(data) else data[:taken])
            return taken
        net = self.network
        faults = net.faults
        view = memoryview(data).cast("B")
        try:
            if self._reset:
                raise self._reset_error()
            rule = self._fault("send")
            if rule is not None and rule.fault == "eagain":
                raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
            n = len(view)
            if rule is not None and rule.fault == "partial_send":
                n = faults.size(rule, n)
            if faults.has("data"):
                left = faults.budget(conn=self._conn, side=self._side,
                                     local=self._addr("getsockname"),
                                     peer=self._addr("getpeername"), sent=self._sent)
                if left is not None and left < n:
                    n = left
            taken = self._sock.send(view[:n], flags) if n or not len(view) else 0
        except OSError as exc:
            net._trace("send", self._fd, len(view), _name(exc), 0)
            raise
        self._sent += taken
        net._trace("send", self._fd, len(view), taken, bytes(view[:taken]))
        self._maybe_disconnect()
        return taken

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        sent = 0
        while sent < len(view):
            sent += self.send(view[sent:], flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        flat = self._flat
        if flat is not None and not self._reset:
            # trace only: one kernel call, one record
            try:
                data = self._krecv(bufsize, flags)
            except OSError as exc:
                self.network._trace("recv", self._fd, bufsize, _name(exc), 0)
                raise
            flat += (6, _monotonic() - self._t0, "recv", self._fd, bufsize, len(data), data)
            return data
        net = self.network
        asked = bufsize  # the trace records what the program asked for
        try:
            if self._reset:
                if self._reset == 1:
                    raise self._reset_error()
                data = b""
            else:
                rule = self._fault("recv")
                if rule is not None and rule.fault == "eagain":
                    raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
                if rule is not None and rule.fault == "short_read" and bufsize > 1:
                    limit = rule.params["max_bytes"]
                    bufsize = min(bufsize, limit if limit is not None else net.rng.randint(1, bufsize))
                data = self._sock.recv(bufsize, flags)
        except OSError as exc:
            net._trace("recv", self._fd, asked, _name(exc), 0)
            raise
        net._trace("recv", self._fd, asked, len(data), data)
        if data:
            self._maybe_disconnect()
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view), flags)
        view[:len(data)] = data
        return len(data)

    def _reset_error(self) -> OSError:
        first = self._reset == 1
        self._reset = 2
        if first:
            return ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        return BrokenPipeError(errno.EPIPE, "Broken pipe")

    # -- disconnects -------------------------------------------------------------
    def _maybe_disconnect(self) -> None:
        net = self.network
        if not net.faults.has("data"):
            return
        sent = self._sent
        rule = net.faults.match(
            "data", conn=self._conn, side=self._side, local=self._addr("getsockname"),
            peer=self._addr("getpeername"), fd=self._fd,
            accept=lambda r: r.params["after_bytes"] is None or sent >= r.params["after_bytes"])
        if rule is not None:
            self.disconnect(rule.params["mode"])

    def disconnect(self, mode: str = "rst") -> None:
        """Cut the kernel connection: ``"rst"`` aborts it (the peer gets a real
        RST; this socket then reports ECONNRESET once), ``"fin"`` shuts the
        sending side (the peer reads end of stream)."""
        if mode == "fin":
            try:
                self._sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if self._reset:
            return
        fd = self._sock.fileno()
        self._sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Keep the fd number valid for the loop: dup2 a placeholder (readable
        # at end of stream, like a reset socket) over it; replacing the last
        # reference closes the kernel socket, which sends the RST.
        placeholder, other = _socket.socketpair()
        other.close()
        os.dup2(placeholder.fileno(), fd)
        placeholder.close()
        self._sock.detach()
        self._sock = _socket.socket(fileno=fd)
        self._sock.setblocking(False)
        self._ksend, self._krecv = self._sock.send, self._sock.recv
        self._reset = 1

    def close(self) -> None:
        self.network._trace("close", self._fd)
        self._sock.close()


class _RealFaults:
    """The state a RealNetwork with faults or a trace keeps (mixed in)."""

    def _init_faults(self, faults: Any, trace: Any, seed: int) -> None:
        plan = FaultPlan.coerce(faults)
        check_real_plan(plan)
        self.rng = random.Random(seed)
        self._start = time.monotonic()
        self.faults = FaultEngine(plan, self.rng, self.time_since_start)
        self.faults.on_fire = self._fault_fired
        self.trace = None
        if trace is not None and trace is not False:
            self.trace = trace if isinstance(trace, Trace) else Trace(
                {"backend": "real", "seed": seed, "faults": plan.to_list(), "network": {}})
        self._conns = 0
        self._by_addr: dict[Any, int] = {}
        self._dead: dict[int, _socket.socket] = {}

    def time_since_start(self) -> float:
        return time.monotonic() - self._start

    def _trace(self, kind: str, fd: int, *fields: Any) -> None:
        if self.trace is not None:
            self.trace.record(time.monotonic() - self._start, kind, fd, *fields)

    def _fault_fired(self, index: int, rule: Rule, op: str, conn: Any, fd: Any) -> None:
        self._trace("fault", -1 if fd is None else fd, index + 1, op, conn)

    def _new_conn(self, sock: FaultySocket) -> int:
        self._conns += 1
        return self._conns

    def _note_client(self, sock: FaultySocket) -> None:
        addr = sock._addr("getsockname")
        if addr is not None:
            self._by_addr[tuple(addr)] = sock._conn

    def _conn_for_accepted(self, sock: _socket.socket) -> int:
        """An accepted socket gets its client's number when the client is
        ours (same process, same network), else a new one."""
        try:
            peer = tuple(sock.getpeername())
        except OSError:
            peer = None
        if peer in self._by_addr:
            return self._by_addr.pop(peer)
        self._conns += 1
        return self._conns

    def _dead_address(self, family: int) -> Any:
        """A loopback address where a connect is refused for real: a port
        bound by a socket that never listens (kept for the network's life)."""
        if family not in self._dead:
            host = "::1" if family == _socket.AF_INET6 else "127.0.0.1"
            s = _socket.socket(family, _socket.SOCK_STREAM)
            s.bind((host, 0))
            self._dead[family] = s
        return self._dead[family].getsockname()

    def _close_faults(self) -> None:
        for s in self._dead.values():
            s.close()
        self._dead.clear()


def plan_from_trace(trace: Trace) -> FaultPlan:
    """A plan that makes the fake network repeat a real run's I/O pattern.

    For each socket (by connection number and side) and each call: a send
    that took fewer bytes than offered becomes ``partial_send``, a recv that
    returned fewer bytes than asked becomes ``short_read``, an EAGAIN from
    send, recv or accept becomes ``eagain`` -- each with
    ``where={"conn": c, "side": s, "call": k}``.
    """
    who: dict[int, tuple[Any, Any]] = {}
    calls: dict[tuple[int, str], int] = {}
    rules: list[Rule] = []
    for ev in trace.events:
        kind, fd = ev[1], ev[2]
        if kind == "conn":
            who[fd] = (ev[3], ev[4])
            calls.pop((fd, "send"), None)
            calls.pop((fd, "recv"), None)
            continue
        if kind not in ("send", "recv", "accept"):
            continue
        k = calls[(fd, kind)] = calls.get((fd, kind), 0) + 1
        conn, side = who.get(fd, (None, None))
        where: dict[str, Any] = {"call": k}
        if conn is not None:
            where.update(conn=conn, side=side)
        if kind == "accept":
            if ev[3] == "EAGAIN":
                rules.append(Rule("eagain", op="accept", where={"call": k}))
            continue
        asked, got = ev[3], ev[4]
        if got == "EAGAIN":
            rules.append(Rule("eagain", op=kind, where=where))
        elif isinstance(got, int) and 0 < got < asked:
            rules.append(Rule("partial_send" if kind == "send" else "short_read", max_bytes=got,
                              where=where))
    return FaultPlan(rules)
