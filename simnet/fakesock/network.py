"""FakeNetwork: a deterministic in-memory network with virtual time.

Everything that happens on it is a function of the seed and the program:
one ``random.Random(seed)`` makes every random choice, a virtual clock jumps
from event to event (idle time is skipped, never slept), and ready channels
are reported in the order the caller listed them (or in a seeded shuffle).
"""

from __future__ import annotations

import errno
import functools
import heapq
import ipaddress
import itertools
import math
import operator
import os
import random
import socket as _socket
import zlib
from typing import Any, Callable, Iterable

from simnet import _state
from simnet.fakesock import args as _args, local, resolver
from simnet.fakesock._connections import _Connections
from simnet.fakesock.unixnames import UnixNames, canonical
from simnet.faults import FaultEngine, FaultPlan, disconnect_at_once, disconnect_targets_peer
from simnet.network import Network
from simnet.timers import TimerHandle, TimerQueue
from simnet.traces.trace import Trace

__all__ = ["FakeNetwork", "Deadlock", "SimulationTimeout", "Host"]

_POLLIN = 0x001
_POLLPRI = 0x002
_POLLOUT = 0x004
_POLLERR = 0x008
_POLLHUP = 0x010
_POLLNVAL = 0x020
#: poll bits that put a socket in select()'s readable / writable list
_SELECT_R = _POLLIN | _POLLHUP | _POLLERR
_SELECT_W = _POLLOUT | _POLLERR

#: Linux's default ephemeral port range (net.ipv4.ip_local_port_range).
EPHEMERAL_PORTS = (32768, 60999)

#: How many idle passes in a row (see :class:`FakeNetwork`, *pass_cost*) the
#: loop may spin before the network calls it a livelock: the clock then jumps
#: straight to the next thing that can change anything (an in-flight event, a
#: timer, the deadline of a blocking call), and when there is none the network
#: raises :class:`Deadlock` naming the livelock.
STALL_LIMIT = 10000

#: Default virtual cost of one idle pass of the loop, in seconds.
PASS_COST = 0.001


def _check_number(name: str, value: Any, *, minimum: float = 0.0, strict: bool = False,
                  none: bool = False) -> Any:
    """*value* as a float if it is a finite number >= *minimum* (> if *strict*);
    otherwise a TypeError/ValueError naming *name* and the value."""
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number{' or None' if none else ''}, "
                        f"got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be a number {'>' if strict else '>='} {minimum:g}, "
                         f"got {value!r}")
    return float(value)


def _never() -> bool:
    return False


def _wait_timeout(value: Any, unit_ns: int, kind: str) -> Any:
    """A select/poll timeout checked as CPython checks it (*unit_ns*:
    nanoseconds per unit of *value*; *kind* names what a TypeError says is
    allowed); the value as a float or an int."""
    _args.pytime_ns(value, unit_ns, f"timeout must be {kind} or None")
    return value if isinstance(value, float) else operator.index(value)


@functools.lru_cache(maxsize=4096)
def _ip_facts(text: str) -> tuple[str, int, bool]:
    """``(canonical text, version, is_loopback)`` of the IP address *text*
    (a str); ValueError if it is not one. Cached: connect() asks on every
    connection and every network adds the same default hosts, and parsing
    with ``ipaddress`` costs microseconds."""
    ip = ipaddress.ip_address(text)
    return str(ip), ip.version, ip.is_loopback


def _loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"


class Deadlock(RuntimeError):
    """Nothing is ready and nothing will ever happen: on a real network the
    program would block forever. The message lists every socket's state."""


class SimulationTimeout(AssertionError):
    """``net.run(until=...)`` reached its virtual deadline before the condition held."""


class Host:
    """A named machine on the fake network, with one or more addresses."""

    def __init__(self, name: str, addresses: Iterable[str]) -> None:
        self.name = name
        self.addresses = list(addresses)

    def __repr__(self) -> str:
        return f"<Host {self.name} {' '.join(self.addresses)}>"


class FakeNetwork(_Connections, Network):
    """A simulated network: TCP, UDP and Unix sockets, virtual time, a seed.

    Use it as a context manager, which makes it the current network::

        with FakeNetwork(seed=7) as net:
            server = EchoServer(("127.0.0.1", 7))       # dispatcher code, unchanged
            client = EchoClient(("127.0.0.1", 7))
            net.run(until=lambda: client.done, timeout=30)

    Parameters:
        seed: seeds the one RNG every random choice is drawn from.
        latency: one-way delay of every link, in virtual seconds (default 0:
            delivery is immediate, as on Linux loopback).
        bandwidth: bytes per virtual second on every link (None: unlimited).
        sndbuf, rcvbuf: socket buffer sizes in bytes for every socket, fixed
            (as if set by ``setsockopt``). None (the default): what Linux
            loopback gives -- a TCP socket autotunes SO_SNDBUF to ~3.9 MB once
            connected, so partial sends come from fault rules, not from a small
            buffer; pass e.g. ``sndbuf=16384`` to get backpressure early.
        shuffle: serve ready channels in a seeded random order, to explore
            interleavings, instead of the order the loop listed them.
        start_time: the virtual clock's reading at creation.
        faults: a :class:`~simnet.faults.FaultPlan` (or a list of rules, or
            JSON text): the faults to inject. ``net.faults.add(...)`` adds
            rules while it runs.
        trace: record every operation: True keeps the :class:`~simnet.traces.trace.Trace`
            in ``net.trace``; a path also writes it there when the network closes.
        pass_cost: virtual seconds one *idle pass* costs (default 0.001).

    Progress and time. Virtual time moves only when something makes it move:
    a wait that finds nothing ready jumps the clock to the next in-flight
    event or timer, and passes of the loop that do real work (move bytes,
    change a connection's state, deliver an event, run a timer) cost no
    virtual time at all, so exact timings (a 0.2 s round trip takes exactly
    0.2 s) hold. A pass that changes none of these but does not wait either
    -- ``select``/``poll`` returned channels whose handlers then did nothing
    visible, a busy poll with timeout 0, a spurious EAGAIN retried by a
    blocking socket -- is an *idle pass*, and costs *pass_cost*: a program
    spinning in a livelock sees its clock advance as on a real machine, so
    its own timers (a watchdog, an idle timeout) fire. After
    :data:`STALL_LIMIT` idle passes in a row the network fast-forwards to
    the next thing that can change anything (an event, a timer, the
    deadline of a blocking call or of ``run()``, the end of a firing fault
    rule's window); when there is none it raises :class:`Deadlock` naming
    the livelock and the fault rules that kept firing (``run()`` reaching
    its deadline that way says so in its ``SimulationTimeout``). A blocking call gives up only when
    nothing at all can happen (``Deadlock``) or at its deadline
    (``TimeoutError``), never because one pass moved no bytes.
    """

    is_fake = True
    #: STALL_LIMIT, for the idle-pass accounting that ``simnet.asyncore``'s
    #: fused pass inlines (see :meth:`_spin`)
    _STALL_LIMIT = STALL_LIMIT

    def __init__(self, seed: int = 0, *, latency: float = 0.0,
                 bandwidth: float | None = None, sndbuf: int | None = None,
                 rcvbuf: int | None = None, shuffle: bool = False,
                 start_time: float = 0.0, faults: Any = None, trace: Any = None,
                 pass_cost: float = PASS_COST) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        latency = _check_number("latency", latency)
        start_time = _check_number("start_time", start_time)
        pass_cost = _check_number("pass_cost", pass_cost)
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        _check_number("bandwidth", bandwidth, strict=True, none=True)
        for name, value in (("sndbuf", sndbuf), ("rcvbuf", rcvbuf)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be a positive int (bytes) or None, got {value!r} "
                                f"({type(value).__name__})")
            if value < 1:
                raise ValueError(f"{name} must be a positive int (bytes) or None, got {value!r}")
        self.seed = seed
        self.rng = random.Random(seed)
        self.latency = latency
        self.bandwidth = bandwidth
        #: virtual seconds one idle pass of the loop costs (see the class doc)
        self.pass_cost = pass_cost
        self.sndbuf = sndbuf
        self.rcvbuf = rcvbuf
        self.shuffle = shuffle
        self._now = float(start_time)
        self._start = float(start_time)
        self.timers = TimerQueue(self.time)
        self._events: list[tuple[float, int, Callable[..., None], tuple]] = []
        self._seq = itertools.count()
        # sockets
        self._fds: dict[int, Any] = {}
        self._free_fds: list[int] = []
        self._next_fd = _state.FAKE_FD_BASE + 3
        self._conn_ids = itertools.count(1)
        self.activity = 0  # bumped by every state change; tells progress
        # addressing
        self.hosts: dict[str, Host] = {}
        self._names: dict[str, list[str]] = {}
        self._resolved: dict[tuple, str] = {}
        self._bound: dict[tuple, list[Any]] = {}  # (family, ip, port) -> sockets
        self._ports: dict[tuple, dict[str, int]] = {}  # (family, port) -> {ip: users}
        self._listening: dict[tuple, list[Any]] = {}  # (family, ip, port) -> listeners
        self._unix = UnixNames()  # AF_UNIX paths and abstract names -> socket
        self._time_wait: dict[tuple, dict[str, float]] = {}  # (family, port) -> {ip: expiry}
        # connect()'s port choice: 4-tuples in use, in TIME_WAIT, per-destination cursors
        self._conn_tuples: dict[tuple, Any] = {}  # (family, lip, lport, rip, rport) -> socket
        self._tw_tuples: dict[tuple, tuple[float, float]] = {}  # 4-tuple -> (closed at, expiry)
        self._shared: dict[tuple, int] = {}  # (family, port) -> sockets bound by connect()
        self._dest_cursor: dict[tuple, list[int]] = {}  # (family, lip, dest) -> [offset, next]
        self._links: dict[tuple[str, str], tuple[float, float | None]] = {}
        low, high = EPHEMERAL_PORTS
        self._port_cursor = self.rng.randrange(low, high + 1)
        self.add_host("localhost", "127.0.0.1", "::1")
        self._local = self.add_host("local", "10.0.0.1", "fd00::1")
        # faults and traces
        plan = FaultPlan.coerce(faults)
        self.faults = FaultEngine(plan, self.rng, self.time, self._host_addresses)
        self.faults.on_fire = self._fault_fired
        self.faults.on_change = self._faults_changed
        self._tr: list | None = None
        self._tr_bytes = 0  # payload bytes the trace holds undigested
        self.trace: Trace | None = None
        self.trace_path: str | None = None
        if trace is not None and trace is not False:
            self.trace = Trace({"backend": "fake", "seed": seed, "faults": plan.to_list(),
                                "network": self.config(), "scenario": None})
            self._tr = self.trace.flat
            if trace is not True:
                self.trace_path = os.fspath(trace)
        self.timers.on_run = self._timer_ran  # a timer run is progress
        self._faults_changed()
        # loop integration
        self._maps: list[dict] = []
        self._map_ids: set[int] = set()  # id() of each map in _maps
        self._pumping = 0
        self._running = 0  # inside run(): a wait that can never end is a deadlock
        # idle-pass accounting (see the class doc): the (activity, clock) seen
        # when the last wait returned without waiting, or None
        self._mark: tuple[int, float] | None = None
        self._spins = 0  # idle passes in a row
        self._streak = 0  # numbers each run of idle passes
        # fault rule index -> (streak, idle pass) of its last firing
        self._streak_rules: dict[int, tuple[int, int]] = {}
        self._block_deadline: float | None = None  # innermost blocking call's deadline
        self._blocking = 0  # inside block()/retry(): a blocking call is waiting
        self._run_deadline: float | None = None  # innermost run()'s deadline
        # channels select/poll reported ready (handler calls) while the maps
        # are pumped: what _block() compares around a _pump(), and counted
        # there only
        self._served = 0
        self.closed = False

    # -- faults and traces ---------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The network's settings, as a trace header records them."""
        config = {"latency": self.latency, "bandwidth": self.bandwidth, "sndbuf": self.sndbuf,
                  "rcvbuf": self.rcvbuf, "shuffle": self.shuffle, "start_time": self._start}
        if self.pass_cost != PASS_COST:
            config["pass_cost"] = self.pass_cost  # (absent: the default, as in older traces)
        return config

    def _faults_changed(self) -> None:
        engine = self.faults
        self._faulty = bool(engine.plan)
        self._disconnects = engine.has("data")
        self._partitions = [r for r in engine.plan if r.fault == "partition"]
        self._timed_links = engine.has("link") or bool(self._partitions)
        if self.trace is not None:
            self.trace.header["faults"] = engine.plan.to_list()

    def _host_addresses(self, name: str) -> list[str]:
        host = self.hosts.get(name)
        return host.addresses if host is not None else []

    def _fault_fired(self, index: int, rule: Any, op: str, conn: int | None, fd: int | None) -> None:
        self._streak_rules[index] = (self._streak, self._spins)
        if self._tr is not None:
            self._tr += (6, self._now, "fault", -1 if fd is None else fd, index + 1, op, conn)

    def _timer_ran(self, handle: TimerHandle) -> None:
        self.activity += 1
        if self._tr is None:
            return
        cb = handle.callback
        name = getattr(cb, "__qualname__", None) or type(cb).__name__
        self._tr += (4, self._now, "timer", -1, name)  # type: ignore[operator]

    def _in(self, addr: Any, who: str) -> bool:
        ip = addr[0] if isinstance(addr, tuple) else addr
        return ip == who or ip in self._host_addresses(who)

    def _partition_delay(self, src: Any, dst: Any, arrive: float) -> float | None:
        """When a segment sent from *src* to *dst* arriving at *arrive* really
        arrives: held until the partition heals (None: never)."""
        for rule in self._partitions:
            p = rule.params
            a, b = p["a"], p["b"]
            if not ((self._in(src, a) and self._in(dst, b)) or (self._in(src, b) and self._in(dst, a))):
                continue
            if p["start"] <= arrive and (p["end"] is None or arrive < p["end"]):
                i = self.faults.index(rule)
                if i is not None:
                    self.faults.fire(i, "partition")  # a segment held or lost
                if p["end"] is None:
                    return None
                arrive = p["end"]
        return arrive

    def _maybe_disconnect(self, end: Any, sock: Any) -> None:
        """After a send or recv that moved data: the disconnect rules that act
        "at once" (neither ``after_bytes`` nor ``at``)."""
        faults = self.faults
        if end.reset or sock._conn in faults.cut_conns:
            return
        found = faults.pick(
            "data", conn=sock._conn, side=sock._side, local=sock._laddr, peer=sock._raddr,
            accept=disconnect_at_once)
        if found is not None:
            self._disconnect(end, found[1])

    def _schedule_timed_disconnects(self, end: Any, sock: Any) -> None:
        """A connection was made: each ``at`` rule whose places match one of
        its ends (the client's first) falls due at its time (at once if that
        has passed); its window, limit and probability are decided then."""
        faults = self.faults
        for i, rule in enumerate(faults.plan.rules):
            if rule.fault != "disconnect" or rule.params["at"] is None:
                continue
            for e, side in ((end, "client"), (end.peer, "server")):
                if e is not None and faults.places_match(i, sock._conn, side, e.laddr, e.raddr):
                    self.schedule(max(0.0, rule.params["at"] - self._now),
                                  self._timed_disconnect, e, rule)
                    break

    def _timed_disconnect(self, end: Any, rule: Any) -> None:
        found = self.faults.pick("data", conn=end.conn_id, side=end.side, local=end.laddr,
                                 peer=end.raddr, accept=lambda r: r is rule)
        if found is not None:
            self._disconnect(end, rule)

    def _disconnect(self, end: Any, rule: Any) -> bool:
        """A disconnect fault: the connection is reset, or closed by one side.
        It counts (and acts) only on a connection still up that no disconnect
        rule has cut yet; True if it acted."""
        faults = self.faults
        conn = end.conn_id
        if conn in faults.cut_conns:
            return False
        target = end
        if disconnect_targets_peer(rule, end.side) and end.peer is not None:
            target = end.peer
        if rule.params["mode"] == "rst":
            live = any(e is not None and not e.reset and not e.detached for e in (target, target.peer))
        else:
            live = not (target.reset or target.detached or (target.rd_shut and target.wr_shut))
        if not live:
            return False
        i = faults.index(rule)
        fd = end.sock._fd if end.sock is not None else None
        if i is None or not faults.fire(i, "data", conn, fd):
            return False
        faults.cut_conns.add(conn)
        if rule.params["mode"] == "rst":
            peer = target.peer
            target.receive_rst()
            if peer is not None:
                peer.receive_rst()
        else:
            target.shutdown(True, True)
        self.activity += 1
        return True

    def _link3(self, a: str, b: str, count: bool = False) -> tuple[float, float | None, float]:
        """Latency, bandwidth and jitter from *a* to *b*; *count*: a latency
        rule that changes them counts as fired (once per connection made, once
        per datagram sent)."""
        lat, bw = self._links.get((a, b), (self.latency, self.bandwidth))
        if self._timed_links:
            found = self.faults.pick("link", local=(a, 0), peer=(b, 0))
            if found is not None:
                p = found[1].params
                link = p["latency"], (p["bandwidth"] if p["bandwidth"] else bw), p["jitter"]
                if count and link != (lat, bw, 0.0):
                    self.faults.fire(found[0], "link")
                return link
        return lat, bw, 0.0

    # -- identity --------------------------------------------------------
    def __repr__(self) -> str:
        return (f"<FakeNetwork seed={self.seed} t={self._now:.6f} "
                f"sockets={len(self._fds)} pending={len(self._events)}>")

    def __enter__(self) -> FakeNetwork:
        if self.closed:
            raise ValueError("this FakeNetwork is closed; make a new one")
        _state.push(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _state.pop(self)
        self.close()

    def close(self) -> None:
        """Close every socket still open, take their channels out of every map
        this network served (``socket_map`` included), cancel pending timers.

        Leaving the ``with`` block does this, so a test that fails half-way
        leaves nothing behind for the next one.
        """
        from simnet import asyncore

        for m in [asyncore.socket_map] + self._maps:
            for fd in [fd for fd, obj in m.items()
                       if (getattr(fd, "network", None) is self  # keyed by the socket
                           or type(fd) is int and fd >= _state.FAKE_FD_BASE
                           and getattr(getattr(obj, "socket", None), "network", None) is self)]:
                del m[fd]
        for sock in list(self._fds.values()):
            sock._abort()
        self.timers.clear()
        self._events.clear()
        self._maps.clear()
        self._map_ids.clear()
        if _state.fast_net is self:  # (the loop's kept verdict: let the network go)
            _state.fast_map = _state.fast_net = None
        self.closed = True
        if self.trace is not None and self.trace_path is not None:
            self.trace.write(self.trace_path)

    # -- clock and events ---------------------------------------------------
    def time(self) -> float:
        """Virtual seconds since the network started (plus start_time)."""
        return self._now

    def schedule(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        """Run the internal event ``fn(*args)`` after *delay* virtual seconds."""
        heapq.heappush(self._events, (self._now + delay, next(self._seq), fn, args))

    def _next_event_time(self) -> float | None:
        return self._events[0][0] if self._events else None

    def _advance(self, when: float) -> None:
        if when > self._now:
            self._now = when

    def _process_due(self) -> int:
        """Run the internal events due now; return how many ran."""
        ran = 0
        events = self._events
        while events and events[0][0] <= self._now:
            _, _, fn, args = heapq.heappop(events)
            fn(*args)
            ran += 1
        if ran:
            self.activity += 1
        return ran

    def settle(self) -> int:
        """Deliver everything due at the current virtual time, without moving
        the clock (a retransmission due later stays pending). Returns how many
        events ran."""
        ran = 0
        while True:
            n = self._process_due()
            if not n:
                return ran
            ran += n

    def sleep(self, seconds: float | None) -> None:
        """Advance virtual time by *seconds*, delivering what falls due.

        ``sleep(0)`` in a loop that changes nothing is an idle pass (it costs
        *pass_cost*, see the class doc), so a program that busy-waits for a
        timer or for data in flight still sees its clock move."""
        if seconds is None:
            raise TypeError("'NoneType' object cannot be interpreted as an integer")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"sleep(): seconds must be a number, got {seconds!r} "
                            f"({type(seconds).__name__})")
        if not math.isfinite(seconds):
            raise ValueError(f"sleep(): seconds must be a finite number, got {seconds!r}")
        if seconds < 0:
            raise ValueError(f"sleep length must be non-negative, got {seconds!r}")
        if self._pumping:
            self._wait_until(self._now + seconds, _never)
            return
        self._pass_start(seconds == 0)
        self._wait_until(self._now + seconds, _never)
        self._mark = (self.activity, self._now)

    def _wait_until(self, deadline: float, ready: Callable[[], bool]) -> bool:
        """Process events up to *deadline* or until *ready()*; True if ready."""
        while True:
            if ready():
                return True
            nxt = self._next_event_time()
            if nxt is None or nxt > deadline:
                self._advance(deadline)
                return ready()
            self._advance(nxt)
            self._process_due()

    # -- progress: idle passes -------------------------------------------------
    def _pass_start(self, at_once: bool) -> bool:
        """Account the pass that ended with this wait (select/poll/sleep, not
        inside a pump). If it changed nothing since the last wait, it was an
        idle pass: a wait that returns *at_once* (something ready, or timeout
        0) costs *pass_cost* (see :meth:`_spin`); one that waits pays with
        its own time, but a loop that only ever waits, with nothing pending,
        is stuck: :class:`Deadlock` after STALL_LIMIT such passes. Returns
        True when the clock moved (the caller looks at readiness again)."""
        if self._mark != (self.activity, self._now):
            if self._spins:
                self._end_streak()
            return False
        if at_once:
            self._spin()
            return True
        self._spins += 1
        if (self._spins >= STALL_LIMIT and self._next_event_time() is None
                and not len(self.timers)):
            report = self._deadlock_report(
                f"{STALL_LIMIT} passes of the loop in a row waited with nothing ready and "
                "nothing pending")
            self._end_streak()
            raise Deadlock(report)
        return False

    def _end_streak(self) -> None:
        """Something happened: the run of idle passes (if any) is over."""
        if self._spins:
            self._spins = 0
            self._streak += 1

    def _spin(self) -> None:
        """Account one idle pass (see the class doc): it costs *pass_cost*;
        after STALL_LIMIT in a row the clock jumps to the next thing that can
        change anything, and with nothing left, :class:`Deadlock`."""
        self._spins += 1
        cost = self.pass_cost
        # never past the deadline of the blocking call (else of run()) waiting
        limit = self._block_deadline if self._blocking else self._run_deadline
        if self._spins < STALL_LIMIT:
            if cost:
                target = self._now + cost
                if limit is not None and limit < target:
                    target = max(limit, self._now)
                events = self._events
                if events and events[0][0] <= target:
                    self._wait_until(target, _never)
                elif target > self._now:
                    self._now = target  # (what _wait_until does with no event due)
            return
        # a livelock: nothing the loop does changes anything
        target = self._next_change()
        if self._limited_rule_firing():
            # a fault rule that fires on every pass will run out of its limit
            # after so many passes, not after so much time: keep spinning
            step = self._now + cost
            self._wait_until(step if target is None else min(step, max(target, self._now)), _never)
            return
        if target is not None and target > self._now:
            self._wait_until(target, _never)
            return
        if target is not None and self._spins < 2 * STALL_LIMIT:
            # something is due now: the loop should run it
            self._wait_until(self._now + cost, _never)
            return
        report = self._livelock_report()
        self._end_streak()
        raise Deadlock(report)

    def _firing_rules(self) -> list[tuple[int, Any]]:
        """The fault rules that fired during the current run of idle passes."""
        streak = self._streak
        rules = self.faults.plan.rules
        return [(i, rules[i]) for i, (s, _) in sorted(self._streak_rules.items())
                if s == streak and i < len(rules)]

    def _limited_rule_firing(self) -> bool:
        """Is a rule with a ``limit`` among those firing (it will run out, or
        just did: the next pass may get through)?"""
        for i, rule in self._firing_rules():
            limit = rule.where.get("limit") if rule.where else None
            if limit is not None and (self.faults.fired[i] < limit
                                      or self._streak_rules[i][1] >= self._spins - 2):
                return True
        return False

    def _next_change(self) -> float | None:
        """The earliest time something pending can change anything: an
        in-flight event, a timer, the innermost blocking call's deadline, the
        end of the window of a fault rule that keeps firing."""
        # a blocking call's own deadline; else run()'s (a blocking call
        # cannot be cut short by run(), which looks at its deadline between passes)
        limit = self._block_deadline if self._blocking else self._run_deadline
        times = [t for t in (self._next_event_time(), self.timers.next_deadline(), limit)
                 if t is not None]
        for _, rule in self._firing_rules():
            window = rule.where.get("window") if rule.where else None
            if window is not None and window[1] >= self._now:
                times.append(math.nextafter(float(window[1]), math.inf))
        return min(times) if times else None

    def _livelock_report(self) -> str:
        lines = [f"livelock on {self!r}: {STALL_LIMIT} passes of the loop in a row changed "
                 "nothing (no bytes moved, no connection changed state, no event or timer ran) "
                 "and nothing is pending that could change that; on a real machine this "
                 "program would spin until a deadline, or forever."]
        firing = self._firing_rules()
        if firing:
            lines.append("fault rules that fired during those passes:")
            for i, rule in firing:
                lines.append(f"  {i + 1}. {rule.describe()}: fired {self.faults.fired[i]} time(s)")
        lines.append("sockets:")
        lines.extend(f"  {sock._describe()}" for sock in self.sockets)
        if not self._fds:
            lines.append("  (none open)")
        return "\n".join(lines)

    # -- links ---------------------------------------------------------------
    def link(self, a: str, b: str, *, latency: float | None = None,
             bandwidth: float | None = None) -> None:
        """Set the one-way latency and bandwidth between addresses *a* and *b*
        (both directions)."""
        for name, addr in (("a", a), ("b", b)):
            if not isinstance(addr, str) or not addr:
                raise TypeError(f"link(): {name} must be an address (a non-empty str), got {addr!r}")
        lat = self.latency if latency is None else _check_number("link(): latency", latency)
        _check_number("link(): bandwidth", bandwidth, strict=True, none=True)
        self._links[(a, b)] = self._links[(b, a)] = (lat, bandwidth)

    def _link(self, a: str, b: str) -> tuple[float, float | None]:
        lat, bw, _ = self._link3(a, b)
        return lat, bw

    # -- addressing ------------------------------------------------------------
    def add_host(self, name: str, *addresses: str) -> Host:
        """Add a machine called *name* with *addresses*; the name resolves to
        them inside ``net.patch()`` and in every fake socket's ``connect``."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"host name must be a non-empty str, got {name!r}")
        if name in self.hosts:
            raise ValueError(f"host {name!r} exists already")
        if not addresses:
            raise ValueError(f"give host {name!r} at least one address, e.g. add_host({name!r}, '10.0.0.2')")
        canon = []
        for addr in addresses:
            try:
                canon.append(_ip_facts(addr)[0] if type(addr) is str
                             else str(ipaddress.ip_address(addr)))
            except ValueError:
                raise ValueError(f"{addr!r} is not an IP address (host {name!r})") from None
        for other in self.hosts.values():
            clash = set(canon) & set(other.addresses)
            if clash:
                raise ValueError(f"address {sorted(clash)[0]} belongs to host {other.name!r} already")
        host = Host(name, canon)
        self.hosts[name] = host
        self._names[name.lower()] = canon
        self._resolved.clear()
        return host

    def resolve(self, host: Any, family: int) -> str:
        """The IP text a socket of *family* uses for *host* in an address
        (a name of this network, an IP literal, ``''`` for the wildcard);
        raises what a real socket raises (:func:`resolver.socket_address`)."""
        key = (host, family)
        try:
            cached = self._resolved.get(key)
        except TypeError:  # a bytearray
            return resolver.socket_address(self._names, host, family)
        if cached is not None:
            return cached
        ip = resolver.socket_address(self._names, host, family)
        if len(self._resolved) < 4096:
            self._resolved[key] = ip
        return ip

    def unlink(self, path: str | bytes) -> None:
        """Remove a Unix socket path left behind by a closed socket (what
        ``os.unlink`` does for a real one)."""
        sock = self._unix.unlink(canonical(path))
        if sock is not None:
            sock._bound_key = None

    def is_local_ip(self, ip: str) -> bool:
        """Is *ip* an address of some host of this network, a loopback
        address (all of 127.0.0.0/8) or a wildcard?"""
        if ip in ("0.0.0.0", "::") or ip.startswith("127.") or ip == "::1":
            return True
        if ip.startswith("::ffff:") and "." in ip:
            return self.is_local_ip(ip[7:])  # IPv4-mapped: the IPv4 address's
        return any(ip in h.addresses for h in self.hosts.values())

    def source_ip(self, dest_ip: str, family: int) -> str:
        """The address an unbound socket sends from to reach *dest_ip*
        (Linux: the loopback interface's 127.0.0.1 for all of 127.0.0.0/8;
        IPv4's, mapped, for an IPv4-mapped *dest_ip*)."""
        if family == _socket.AF_INET6 and dest_ip.startswith("::ffff:") and "." in dest_ip:
            return "::ffff:" + self.source_ip(dest_ip[7:], _socket.AF_INET)
        if (_ip_facts(dest_ip)[2] if type(dest_ip) is str
                else ipaddress.ip_address(dest_ip).is_loopback):
            return "127.0.0.1" if family == _socket.AF_INET else dest_ip
        if dest_ip in self._local.addresses:
            return dest_ip
        want = 4 if family == _socket.AF_INET else 6
        for ip in self._local.addresses:  # (canonical text: add_host made it)
            if _ip_facts(ip)[1] == want:
                return ip
        return dest_ip

    def ephemeral_port(self, family: int, ip: str, type_: int = _socket.SOCK_STREAM) -> int:
        """A free port in the ephemeral range (deterministic from the seed)."""
        low, high = EPHEMERAL_PORTS
        span = high - low + 1
        for _ in range(span):
            port = self._port_cursor
            self._port_cursor = low + (self._port_cursor - low + 1) % span
            if not self._port_taken(family, type_, ip, port):
                return port
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    def connect_port(self, family: int, ip: str, dest: tuple) -> int:
        """The local port a TCP connect() from *ip* to *dest* gets (Linux
        ``__inet_hash_connect``): any port of the ephemeral range that no
        ``bind()`` holds and that makes a 4-tuple not in use, so one port
        serves many destinations. Each destination has its own cursor (ports
        of one parity first, in steps of 2, as Linux prefers even ports for
        connect); a TIME_WAIT 4-tuple is reusable on loopback after 1 s
        (``tcp_tw_reuse=2``, ``tcp_tw_reuse_delay=1000``), elsewhere once it
        expires. Amortised O(1) per connect."""
        low, high = EPHEMERAL_PORTS
        span = high - low + 1
        half = span // 2
        ckey = (family, ip, dest)
        cursor = self._dest_cursor.get(ckey)
        if cursor is None:
            off = zlib.crc32(f"{self.seed}|{ip}|{dest[0]}|{dest[1]}".encode()) % span & ~1
            cursor = self._dest_cursor[ckey] = [off, 0]
        off, i = cursor
        tuples = self._conn_tuples
        tw = self._tw_tuples
        for step in range(span):
            k = (i + step) % span
            if span % 2:
                p = (off + 2 * k) % span
            elif k < half:
                p = (off + 2 * k) % span
            else:
                p = (off + 1 + 2 * (k - half)) % span
            port = low + p
            if self._port_bound(family, port):
                continue
            t = (family, ip, port, dest[0], dest[1])
            if t in tuples:
                continue
            closed = tw.get(t)
            if closed is not None:
                if self._now < closed[1] and not (
                        _loopback(ip) and _loopback(dest[0]) and self._now - closed[0] >= 1.0):
                    continue
                del tw[t]
            cursor[1] = (k + 1) % span
            return port
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    def _note_time_wait(self, t: tuple) -> None:
        """An actively closed connection's 4-tuple *t* enters TIME_WAIT."""
        from simnet.fakesock.tcp import TIME_WAIT

        tw = self._tw_tuples
        if len(tw) >= getattr(self, "_tw_purge_at", 65536):
            # forget the expired ones; the next purge waits until the table
            # doubles, so the cost stays amortised O(1) per close
            now = self._now
            for key in [k for k, (_, expiry) in tw.items() if expiry <= now]:
                del tw[key]
            self._tw_purge_at = max(65536, 2 * len(tw))
        tw[t] = (self._now, self._now + TIME_WAIT)

    def _port_bound(self, family: int, port: int) -> bool:
        """Does a ``bind()`` (not a connect) hold TCP *port*?"""
        ips = self._ports.get((family, _socket.SOCK_STREAM, port))
        if not ips:
            return False
        return sum(ips.values()) > self._shared.get((family, port), 0)

    def _port_taken(self, family: int, type_: int, ip: str, port: int) -> bool:
        ips = self._ports.get((family, type_, port))
        if not ips:
            return False
        wild = "0.0.0.0" if family == _socket.AF_INET else "::"
        return ip == wild or ip in ips or wild in ips

    def _add_binding(self, key: tuple, sock: Any) -> None:
        family, type_, ip, port = key
        self._bound.setdefault(key, []).append(sock)
        ips = self._ports.setdefault((family, type_, port), {})
        ips[ip] = ips.get(ip, 0) + 1

    def _drop_binding(self, key: tuple, sock: Any) -> None:
        socks = self._bound.get(key)
        if not socks or sock not in socks:
            return
        socks.remove(sock)
        if not socks:
            del self._bound[key]
        family, type_, ip, port = key
        ips = self._ports[(family, type_, port)]
        ips[ip] -= 1
        if not ips[ip]:
            del ips[ip]
            if not ips:
                del self._ports[(family, type_, port)]

    # -- sockets -------------------------------------------------------------
    def socket(self, family: int = -1, type: int = -1, proto: int = -1, fileno: Any = None) -> Any:
        """A new fake socket (the arguments of ``socket.socket``)."""
        from simnet.fakesock.sockets import FakeSocket

        if fileno is not None:
            raise ValueError("fake sockets cannot be made from a file descriptor")
        if self.closed:
            raise ValueError("this FakeNetwork is closed; make a new one")
        return FakeSocket(self, _socket.AF_INET if family == -1 else family,
                          _socket.SOCK_STREAM if type == -1 else type,
                          0 if proto == -1 else proto)

    def _alloc_fd(self, sock: Any) -> int:
        if self._free_fds:
            fd = heapq.heappop(self._free_fds)  # lowest free, as the kernel does
        else:
            fd = self._next_fd
            self._next_fd += 1
        self._fds[fd] = sock
        _state.fake_sockets_open += 1
        _state.refresh()
        return fd

    def _release_fd(self, fd: int) -> None:
        if self._fds.pop(fd, None) is not None:
            _state.fast_map = None  # a map holding fd may no longer be all open sockets
            heapq.heappush(self._free_fds, fd)
            _state.fake_sockets_open -= 1
            _state.refresh()

    def new_conn_id(self) -> int:
        return next(self._conn_ids)

    @property
    def sockets(self) -> list[Any]:
        """The open fake sockets, by file number."""
        return [self._fds[fd] for fd in sorted(self._fds)]

    # -- readiness -------------------------------------------------------------
    def _sock_for(self, fd: Any) -> Any:
        if not isinstance(fd, int):
            try:
                fd = fd.fileno()
            except AttributeError:
                raise TypeError("argument must be an int, or have a fileno() method.") from None
        sock = self._fds.get(fd)
        if sock is None:
            if fd < 0:
                raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
            if fd < _state.FAKE_FD_BASE:
                raise ValueError(
                    f"fd {fd} is a real file descriptor, but this loop waits on {self!r}: "
                    "a map cannot mix real and fake sockets")
            raise OSError(errno.EBADF, "Bad file descriptor")
        return sock

    def _order(self, items: list) -> list:
        if self.shuffle and len(items) > 1:
            items = list(items)
            self.rng.shuffle(items)
        return items

    def select(self, r: list, w: list, x: list, timeout: float | None) -> tuple[list, list, list]:
        """``select.select`` over this network's file numbers, in virtual time."""
        if timeout is not None and timeout.__class__ is not float:
            timeout = _wait_timeout(timeout, 1_000_000_000, "a float")
        elif timeout is not None and not 0.0 <= timeout < 9.2e9:
            timeout = _wait_timeout(timeout, 1_000_000_000, "a float")
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be non-negative")
        fds = self._fds
        try:
            rs = [fds[fd] for fd in r]
            ws = [fds[fd] for fd in w]
        except (KeyError, TypeError):
            if any(map(_state.is_local_fd, r)) or any(map(_state.is_local_fd, w)):
                # a pipe or a file next to the sockets: polled for real
                return local.select(self, r, w, x, timeout, self.select)
            # objects with fileno() (sockets): select.select returns the same objects
            rs = [self._sock_for(fd) for fd in r]
            ws = [self._sock_for(fd) for fd in w]
        for fd in x:
            if fd not in fds:
                if _state.is_local_fd(fd):
                    return local.select(self, r, w, x, timeout, self.select)
                self._sock_for(fd)
        if self._events:
            self._process_due()
        # (FakeSocket._sel_r/_sel_w inlined for connected streams: this runs
        # for every channel on every pass)
        rr = [fd for fd, s in zip(r, rs)
              if ((e := s._end) is not None and not s._closed
                  and (e.rbuf or e.r_event))
              or (e is None and s._sel_r())] if r else []
        wr = [fd for fd, s in zip(w, ws)
              if ((e := s._end) is not None and not s._closed
                  and (e.w_event or len(e.sq) < e.scap))
              or (e is None and s._sel_w())] if w else []
        # if the pass since the last wait changed nothing, it was an idle pass
        # (see the class doc)
        # (readiness is read again only if an event ran while the clock moved)
        before = self.activity
        if (not self._pumping and self._pass_start(bool(rr or wr) or timeout == 0)
                and self.activity != before):
            rr = [fd for fd, s in zip(r, rs) if s._sel_r()]
            wr = [fd for fd, s in zip(w, ws) if s._sel_w()]
        if self._faulty and (rr or wr or timeout == 0):
            self._signal_wait(0.0, lambda: True)  # an eintr rule's handler may raise
        if not (rr or wr) and timeout != 0:
            def ready() -> bool:
                return any(s._sel_r() for s in rs) or any(s._sel_w() for s in ws)

            if not (self._faulty and self._signal_wait(timeout, ready)):
                self._wait(timeout, ready)
            rr = [fd for fd, s in zip(r, rs) if s._sel_r()]
            wr = [fd for fd, s in zip(w, ws) if s._sel_w()]
        if self._pumping:
            if rr or wr:
                self._served += len(rr) + len(wr)
        else:
            self._mark = (self.activity, self._now)
        if self.shuffle:
            rr, wr = self._order(rr), self._order(wr)
        tr = self._tr
        if tr is not None:
            if any(type(x) is not int for x in rr) or any(type(x) is not int for x in wr):
                # objects given (sockets): the trace records their file numbers
                tr += (5, self._now, "ready", -1,
                       [x if type(x) is int else self._sock_for(x)._fd for x in rr],
                       [x if type(x) is int else self._sock_for(x)._fd for x in wr])
            else:
                tr += (5, self._now, "ready", -1, rr, wr)
            if self._tr_bytes > 1 << 26:
                # bound the payload bytes a long traced run keeps in memory
                self.trace.digest_flat()  # type: ignore[union-attr]
                self._tr_bytes = 0
        return rr, wr, []

    def poll(self) -> _FakePoll:
        """A ``select.poll``-like object over this network's file numbers."""
        return _FakePoll(self)

    def _wait(self, timeout: float | None, ready: Callable[[], bool]) -> None:
        """The waiting part of select/poll: until *ready()* or *timeout*
        (None: no limit); jumps the clock from event to event."""
        if timeout is not None and timeout < 0:
            timeout = None if timeout == -1 else 0.0
        self._process_due()
        if ready() or timeout == 0:
            return
        deadline = None if timeout is None else self._now + timeout
        if self._next_event_time() is None:
            if deadline is None:
                # simnet timers run in the loop, not inside a wait: only an
                # in-flight event could end this one
                raise Deadlock(self._deadlock_report("a wait with no timeout"))
            if self._running and not len(self.timers):
                raise Deadlock(self._deadlock_report(
                    "run(): no channel is ready and nothing is pending"))
        self._wait_until(float("inf") if deadline is None else deadline, ready)

    def _signal_wait(self, timeout: float | None, ready: Callable[[], bool]) -> bool:
        """An ``eintr`` rule's signal at a wait. Since PEP 475 no wait fails
        with EINTR: a handler's exception (if the rule names one) propagates;
        otherwise a wait that would block is woken at the next event on the
        network, even one that readies nothing -- an early, maybe empty,
        wake-up, counted when nothing is ready. True if the wait is over."""
        faults = self.faults
        if not faults.has("wait"):
            return False
        self._process_due()
        if timeout is not None and timeout < 0:
            timeout = None if timeout == -1 else 0.0
        i = faults.signal(timeout != 0 and not ready())
        if i is None:
            return False
        nxt = self._next_event_time()
        if nxt is None or (timeout is not None and nxt >= self._now + timeout):
            return False  # nothing happens before the wait ends: it ends as it would
        start = self._now
        self._advance(nxt)
        self._process_due()
        if ready():
            return True  # it would have woken here anyway
        if faults.holds(i) and faults.fire(i, "wait"):
            return True  # woken early, with nothing ready
        # outside the rule's window by now: the wait goes on
        self._wait(None if timeout is None else max(0.0, start + timeout - self._now), ready)
        return True

    def _deadlock_report(self, why: str) -> str:
        lines = [f"deadlock on {self!r}: {why}; on a real network this would block forever.",
                 "sockets:"]
        for sock in self.sockets:
            lines.append(f"  {sock._describe()}")
        if len(lines) == 2:
            lines.append("  (none open)")
        return "\n".join(lines)

    def describe(self) -> str:
        """Every open socket's state, one per line."""
        return "\n".join(s._describe() for s in self.sockets) or "(no sockets)"

    # -- running dispatcher programs -----------------------------------------------
    def _note_map(self, map: dict) -> None:
        # (a set of ids beside the list: every map in it is kept alive by the
        # list, so an id cannot be reused by another map while it is there)
        ident = id(map)
        if ident not in self._map_ids:
            self._map_ids.add(ident)
            self._maps.append(map)

    #: foreign loop steps (see add_pump), called by _pump() in order
    _pumps: tuple = ()

    def add_pump(self, step: Callable[[], Any]) -> Callable[[], Any]:
        """Drive a foreign event loop: call ``step()`` on every pass of the
        simulation -- while a blocking call on a fake socket waits, and on
        every pass of :meth:`run` -- so a server running its own loop (a
        ``selectors`` loop, an IOLoop's ``run_once``) answers a blocking
        client in the same thread.

        *step* must do one non-waiting pass (poll with timeout 0) and return;
        it is never re-entered (a blocking call inside it does not call the
        pumps again). Returns *step*, so it can be used as a decorator.
        """
        if not callable(step):
            raise TypeError(f"add_pump(): step must be callable, got {step!r}")
        if step in self._pumps:
            raise ValueError(f"add_pump(): {step!r} is already a pump of {self!r}")
        self._pumps = self._pumps + (step,)
        return step

    def remove_pump(self, step: Callable[[], Any]) -> None:
        """Stop calling *step* (added by :meth:`add_pump`); ValueError if it is not a pump."""
        if step not in self._pumps:
            raise ValueError(f"remove_pump(): {step!r} is not a pump of {self!r}")
        self._pumps = tuple(p for p in self._pumps if p != step)

    def _pump(self, maps: bool = True) -> None:
        """One non-waiting pass over each map this network's loop has served
        (plus the default map), so dispatchers answer a blocking caller, then
        one call of each foreign loop step (add_pump). Never re-entered."""
        if self._pumping:
            return
        from simnet import asyncore

        self._pumping += 1
        try:
            if maps:
                ms = [asyncore.socket_map] + [m for m in self._maps if m is not asyncore.socket_map]
                for m in ms:
                    if m and any(fd in self._fds or getattr(fd, "network", None) is self for fd in m):
                        asyncore.poll(0.0, m)
            for step in self._pumps:
                step()
            self.timers.run_due()
        finally:
            self._pumping -= 1

    def block(self, ready: Callable[[], bool], timeout: float | None, what: str) -> None:
        """Run the simulation until *ready()* or the virtual *timeout*.

        What a blocking call on a fake socket does: serve the maps (so a
        dispatcher server answers), deliver in-flight data, fire timers, and
        jump the clock to the next event when nothing else can happen.
        Progress is anything that can change what happens next: a channel
        served (a handler called), bytes moved, a state change, an event or
        a timer. A pass whose handlers changed nothing visible is an idle
        pass (it costs *pass_cost*, see the class doc). Raises
        ``TimeoutError`` ("timed out") at the deadline, and
        :class:`Deadlock` only when nothing at all can happen -- the same
        grace with and without a timeout.
        """
        deadline = None if timeout is None else self._now + timeout
        outer = self._block_deadline
        self._block_deadline = deadline
        self._blocking += 1
        try:
            self._block(ready, deadline, what)
        finally:
            self._blocking -= 1
            self._block_deadline = outer

    def _block(self, ready: Callable[[], bool], deadline: float | None, what: str) -> None:
        quiet = 0  # passes in a row in which nothing was ready and nothing pending
        while True:
            self._process_due()
            if ready():
                return
            if deadline is not None and self._now >= deadline:
                raise TimeoutError("timed out")
            before, served = self.activity, self._served
            self._pump()
            if ready():
                return
            if self.activity != before:
                quiet = 0
                self._end_streak()
                continue
            if self._served != served:
                # handlers ran but changed nothing visible (a flag flipped, a
                # spurious EAGAIN): an idle pass, never a reason to give up
                quiet = 0
                self._spin()
                continue
            # nothing in any map was ready: only an event or a timer can help
            self._end_streak()
            nxt = self._next_event_time()
            tnext = self.timers.next_deadline()
            if tnext is not None and (nxt is None or tnext < nxt):
                nxt = tnext
            if nxt is None or (deadline is not None and nxt > deadline):
                quiet += 1
                if quiet < 3:
                    continue  # a predicate may still change its mind
                if deadline is None:
                    raise Deadlock(self._deadlock_report(f"blocking {what} can never complete"))
                self._advance(deadline)
                self._process_due()
                if ready():
                    return
                raise TimeoutError("timed out")
            quiet = 0
            self._advance(nxt)
            self.timers.run_due()

    def retry(self, deadline: float | None, what: str) -> None:
        """One retry of a blocking call that got a spurious EAGAIN.

        The kernel (or CPython's ``sock_call`` for a socket with a timeout)
        waits and calls again; the caller never sees the EAGAIN. Here the
        retry serves the rest of the program for one pass and costs an idle
        pass when that changed nothing. Raises ``TimeoutError`` once the
        call's *deadline* has passed.
        """
        if deadline is not None and self._now >= deadline:
            raise TimeoutError("timed out")
        outer = self._block_deadline
        self._block_deadline = deadline
        self._blocking += 1
        try:
            before = self.activity
            self._process_due()
            self._pump()
            if self.activity == before:
                self._spin()
            else:
                self._end_streak()
        finally:
            self._blocking -= 1
            self._block_deadline = outer

    def run(self, until: Callable[[], bool] | None = None, timeout: float = 60.0,
            map: dict | None = None, *, poller: str = "select") -> float:
        """Run the loop on *map* until ``until()`` holds (default: the map is empty).

        Returns the virtual seconds it took. Raises :class:`SimulationTimeout`
        when *timeout* virtual seconds pass first, and :class:`Deadlock` when
        nothing is ready and nothing is pending (the report lists each
        socket's state), or when the program livelocks (see the class doc).
        """
        from simnet import asyncore

        if until is not None and not callable(until):
            raise TypeError(f"until must be a callable returning bool, or None; got {until!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"run(): timeout must be a number of virtual seconds, got {timeout!r}")
        if not math.isfinite(timeout) or timeout < 0:
            raise ValueError(f"run(): timeout must be a finite number of virtual seconds >= 0, "
                             f"got {timeout!r}")
        if map is None:
            map = asyncore.socket_map
        poll_fun = {"select": asyncore.poll, "poll": asyncore.poll2}.get(poller)
        if poll_fun is None:
            raise ValueError(f"poller must be 'select' or 'poll', got {poller!r}")
        start = self._now
        deadline = start + timeout
        done = until if until is not None else (lambda: not map)
        self._running += 1
        outer = self._run_deadline
        self._run_deadline = deadline
        try:
            return self._run(done, map, poll_fun, start, deadline, timeout)
        finally:
            self._running -= 1
            self._run_deadline = outer

    def _run(self, done: Callable[[], bool], map: dict, poll_fun: Callable[..., None],
             start: float, deadline: float, timeout: float) -> float:
        # Progress is accounted by the waits themselves (select/poll/sleep):
        # idle passes cost pass_cost, a livelock ends in a fast-forward or a
        # Deadlock; only foreign pumps (add_pump) need watching here.
        stall_mark = -1
        foreign_mark, foreign = None, 0
        while not done():
            if self._pumps:
                self._pump(maps=False)  # foreign loops (add_pump) run with this one
                if done():
                    break
            if self._now >= deadline:
                if self._spins >= STALL_LIMIT:
                    raise SimulationTimeout(
                        f"run(): the condition did not hold within {timeout} virtual seconds "
                        f"(seed {self.seed}); the clock was fast-forwarded to the deadline "
                        f"because the program livelocked.\n{self._livelock_report()}")
                raise SimulationTimeout(
                    f"run(): the condition did not hold within {timeout} virtual seconds "
                    f"(seed {self.seed}).\n{self.describe()}")
            if not map:
                if self._pumps and self.activity != stall_mark:
                    stall_mark = self.activity  # a pump made progress: pass again
                    continue
                # no channel: only timers and in-flight events can change
                # anything; jump to the earliest (two comparisons, no lists:
                # this is the whole pass of a timer-only program)
                events = self._events
                timers = self.timers
                nxt = timers.next_deadline()
                if events and (nxt is None or events[0][0] < nxt):
                    nxt = events[0][0]
                if nxt is None:
                    raise Deadlock(self._deadlock_report("run() has an empty map and nothing pending"))
                if nxt > deadline:
                    nxt = deadline
                if nxt > self._now:
                    self._now = nxt  # (_advance)
                if events and events[0][0] <= self._now:
                    self._process_due()
                timers.run_due()
                continue
            poll_fun(deadline - self._now, map)
            # A wait on this network always moves something: the clock (an
            # idle pass costs pass_cost) or the activity count. A pass that
            # moved neither waited elsewhere: the map's sockets are not this
            # network's (a kernel socket made outside it), so no virtual time
            # can ever pass for them.
            mark = (self.activity, self._now)
            if mark == foreign_mark:
                foreign += 1
                if foreign >= STALL_LIMIT:
                    self._foreign_map(map)
                    foreign = 0
            else:
                foreign_mark, foreign = mark, 0
        return self._now - start

    def _foreign_map(self, map: dict) -> None:
        """Raise: *map*, served by run(), is not waited on by this network."""
        try:
            owner = _state.network_for_map(map)
        except ValueError as exc:
            raise ValueError(f"run(): {exc}") from None
        if owner is self:
            return
        real = [f"{fd}: {obj!r}" for fd, obj in list(map.items())[:3]]
        raise ValueError(
            f"run(): the map's sockets are not on {self!r} but on "
            f"{'the real network' if owner is None else repr(owner)} ({'; '.join(real)}), "
            "so no virtual time passes for them: create every channel while this network "
            "is current (dispatcher.create_socket()), or inside net.patch() for code that "
            "calls socket.socket() itself")

    # -- unmodified blocking clients ---------------------------------------------------
    def patch(self, *, time: bool = False) -> Any:
        """A context in which the program's world is this network.

        Inside it ``socket.socket``, ``socket.create_connection``,
        ``socket.socketpair``, ``socket.getaddrinfo``, ``gethostbyname`` and
        ``getfqdn`` go to the fake network, and ``select.select``,
        ``select.poll``, ``select.epoll`` and the ``selectors`` wait on it, so
        stdlib clients (``smtplib``, ``ftplib``, ``poplib``, ``http.client``)
        and programs with their own loops run on it unmodified,
        single-threaded: their blocking calls run the simulation. With
        ``time=True`` the ``time`` module's clocks read the virtual clock and
        ``time.sleep`` runs the simulation (see :mod:`simnet.fakesock.clock`).
        """
        from simnet.fakesock.patch import patch_socket_module

        return patch_socket_module(self, time=time)


def _poll_fd(obj: Any) -> int:
    """The file number ``select.poll`` takes for *obj*: an int, or what its
    ``fileno()`` returns (the same errors as CPython for anything else)."""
    fd = obj
    if not isinstance(fd, int):
        fileno = getattr(obj, "fileno", None)
        if fileno is None:
            raise TypeError("argument must be an int, or have a fileno() method.")
        fd = fileno()
        if not isinstance(fd, int):
            raise TypeError("fileno() returned a non-integer")
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return int(fd)


class _FakePoll:
    """``select.poll()`` for fake file numbers."""

    def __init__(self, net: FakeNetwork) -> None:
        self._net = net
        self._fds: dict[int, int] = {}
        #: pipes and files registered too (polled for real: fakesock.local)
        self._local = local.LocalPoll()

    def _table(self, fd: int) -> dict[int, int]:
        if fd < _state.FAKE_FD_BASE and (fd in self._local.fds or _state.is_local_fd(fd)):
            return self._local.fds
        return self._fds

    def register(self, fd: Any, eventmask: int = _POLLIN | _POLLPRI | _POLLOUT) -> None:
        fd = _poll_fd(fd)
        self._table(fd)[fd] = eventmask

    def modify(self, fd: Any, eventmask: int) -> None:
        fd = _poll_fd(fd)
        table = self._table(fd)
        if fd not in table:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        table[fd] = eventmask

    def unregister(self, fd: Any) -> None:
        fd = _poll_fd(fd)
        table = self._table(fd)
        if fd not in table:
            raise KeyError(fd)
        del table[fd]

    def _results(self) -> list[tuple[int, int]]:
        out = []
        net = self._net
        for fd, mask in self._fds.items():
            sock = net._fds.get(fd)
            if sock is None:
                if fd < _state.FAKE_FD_BASE:
                    net._sock_for(fd)  # raises the mixing error
                out.append((fd, _POLLNVAL))
                continue
            end = sock._end  # (a connected stream's mask straight from its end)
            ev = (end.poll_mask() if end is not None and not sock._closed
                  else sock._poll_mask()) & (mask | _POLLERR | _POLLHUP)
            if ev:
                out.append((fd, ev))
        return out

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        """Wait up to *timeout* milliseconds (None or negative: no limit)."""
        if timeout is not None:
            timeout = _wait_timeout(timeout, 1_000_000, "an integer")
            if timeout >= 0 and math.ceil(timeout) > 2 ** 31 - 1:
                raise OverflowError("timeout is too large")
        if timeout is not None and timeout >= 0:
            seconds = timeout / 1000.0
        else:
            seconds = None
        if self._local.fds:
            return local.poll(self._local, seconds, self._poll)
        return self._poll(seconds)

    def _poll(self, seconds: float | None) -> list[tuple[int, int]]:
        net = self._net
        for fd in self._fds:
            if fd < _state.FAKE_FD_BASE:
                net._sock_for(fd)
        return self._poll(seconds)

    def _poll(self, seconds: float | None) -> list[tuple[int, int]]:
        """:meth:`poll` once *timeout* is checked and converted (None: no
        limit), and every registered number is a fake one (``asyncore.poll2``
        calls it straight, for a map it knows is the network's)."""
        net = self._net
        if net._events:
            net._process_due()
        results = self._results()
        # the pass before may have been idle (see FakeNetwork)
        # (readiness is read again only if an event ran while the clock moved)
        if not net._pumping:
            if net._mark == (net.activity, net._now):
                before = net.activity
                if net._pass_start(bool(results) or seconds == 0) and net.activity != before:
                    results = self._results()
            elif net._spins:
                net._end_streak()  # (what _pass_start does when the pass was not idle)
        if net._faulty and (results or seconds == 0):
            net._signal_wait(0.0, lambda: True)  # an eintr rule's handler may raise
        if not results and seconds != 0:
            def ready() -> bool:
                return bool(self._results())

            if not (net._faulty and net._signal_wait(seconds, ready)):
                net._wait(seconds, ready)
            results = self._results()
        if net._pumping:
            net._served += len(results)
        else:
            net._mark = (net.activity, net._now)
        if net.shuffle:
            results = net._order(results)
        if net._tr is not None:
            net._tr += (5, net._now, "ready", -1, [fd for fd, _ in results], [list(r) for r in results])
        return results

