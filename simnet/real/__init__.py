"""The real network: kernel sockets, ``select``/``poll``/``epoll``, ``ssl``.

By default the dispatcher layer talks to the kernel directly through the
drop-in module's own ``socket``/``select``/``time`` globals (so that tests
which monkeypatch ``asyncore.socket`` keep working). :class:`RealNetwork` is
the same network as a value: entered with ``with RealNetwork():`` it becomes
current, which is how fault plans and traces attach to real sockets
(:mod:`simnet.real.faulty`).
"""

from __future__ import annotations

import math
import time as _time
from typing import Any, Callable

from simnet import _state
from simnet.faults import FaultPlan
from simnet.network import Network
from simnet.real.epoll import EpollPoller
from simnet.real.faulty import (REAL_FAULTS, FaultyPoll, FaultySocket, RealSession,
                                check_real_plan, plan_from_trace)
from simnet import asyncore
from simnet import timers as _timers
from simnet.timers import TimerQueue


__all__ = ["RealNetwork", "EpollPoller", "FaultySocket", "plan_from_trace", "REAL_FAULTS",
           "check_real_plan"]


class RealNetwork(Network):
    """Kernel sockets on the monotonic clock.

    Sockets, waiting and sleeping go through ``simnet.asyncore``'s module
    globals at call time, so a monkeypatched ``asyncore.socket`` or
    ``asyncore.select`` applies here too. Timers are shared with the default
    real network.

    *faults* (anything ``FaultPlan.coerce`` takes) applies the rules kernel
    sockets can show -- partial_send, short_read, eagain, eintr, disconnect,
    refuse -- and refuses the others with a :class:`~simnet.faults.PlanError`
    naming the rule; *trace* (None, True for a new :class:`~simnet.traces.trace.Trace`,
    or a Trace to record into) records the run in ``net.trace``; *seed*
    seeds ``net.rng``, which draws probabilities and unbounded sizes. With
    rules or a trace, :meth:`socket` returns
    :class:`~simnet.real.faulty.FaultySocket` wrappers; without, plain
    kernel sockets, exactly as the default network::

        with RealNetwork(faults=[Rule("partial_send", max_bytes=1)], trace=True) as net:
            ...   # dispatchers created here send one byte at a time
        plan = plan_from_trace(net.trace)   # that chunking, for a FakeNetwork

    The loop's waits apply the plan (EINTR, timed disconnects) and are
    recorded when the map is waited on by this network, i.e. while it is
    current.
    """

    is_fake = False

    def __init__(self, faults: Any = None, trace: Any = None, seed: int = 0) -> None:
        self.timers: TimerQueue = _timers.real_timers
        self.seed = seed
        self._session = RealSession(self, FaultPlan.coerce(faults), trace, seed)
        #: the plan at work (``faults.plan``, ``faults.fired``, ``faults.add``)
        self.faults = self._session.faults
        #: the recording, or None
        self.trace = self._session.trace
        #: the seeded random source of the plan
        self.rng = self._session.rng
        self._plan_changed()

    def _plan_changed(self) -> None:
        # wrap new sockets when there is a rule or a recording
        self._wrap = bool(self.faults.plan) or self.trace is not None

    def __repr__(self) -> str:
        tracing = " tracing" if self.trace is not None else ""
        return f"<RealNetwork faults={len(self.faults.plan)}{tracing} timers={len(self.timers)}>"

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.close()

    def close(self) -> None:
        """Release what the plan holds (the sockets that refuse connects)."""
        self._session.close()

    def elapsed(self) -> float:
        """Seconds since the network was made (the clock of trace times and
        of ``at``/``window`` in rules)."""
        return self._session.elapsed()

    @staticmethod
    def _mod() -> Any:
        # simnet.asyncore, whose socket/select/time globals are read at call
        # time (tests monkeypatch them)
        return asyncore

    def socket(self, family: int = -1, type: int = -1, proto: int = -1) -> Any:
        mod = self._mod().socket
        if family == -1:
            family = mod.AF_INET
        if type == -1:
            type = mod.SOCK_STREAM
        sock = mod.socket(family, type, proto if proto != -1 else 0)
        return FaultySocket(sock, self._session) if self._wrap else sock

    def select(self, r: list[int], w: list[int], x: list[int],
               timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        if self._wrap:
            return self._session.select(self._mod().select.select, r, w, x, timeout)
        return self._mod().select.select(r, w, x, timeout)

    def poll(self) -> Any:
        poll = self._mod().select.poll()
        return FaultyPoll(poll, self._session) if self._wrap else poll

    def sleep(self, seconds: float) -> None:
        self._mod().time.sleep(seconds)
        if self._wrap:
            self._session.wait_end()

    #: how often (seconds) :meth:`run` re-checks its condition while the
    #: loop waits: a condition may change outside the loop's callbacks
    TICK = 0.05

    def run(self, until: Callable[[], bool] | None = None, timeout: float = 60.0,
            map: dict | None = None, *, poller: str = "select") -> float:
        """Run the loop on *map* until ``until()`` holds (default: the map is empty).

        The driving API of :meth:`simnet.fakesock.FakeNetwork.run` on kernel
        sockets, so that a test body written once runs on either network
        (the ``net`` fixture): *timeout* is in wall-clock seconds here, and
        the loop passes use this network while it is current (its faults
        and trace apply). Returns the seconds it took; raises
        :class:`~simnet.fakesock.SimulationTimeout` when *timeout* seconds
        pass first. Due timers (``simnet.call_later``) run, also while the
        map is empty.
        """
        # lazy: the real network needs nothing else from simnet.fakesock
        from simnet.fakesock.network import SimulationTimeout

        if until is not None and not callable(until):
            raise TypeError(f"until must be a callable returning bool, or None; got {until!r}")
        if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                or not math.isfinite(timeout) or timeout < 0):
            raise ValueError(f"timeout must be a finite number of seconds >= 0, got {timeout!r}")
        if map is None:
            map = asyncore.socket_map
        poll_fun = {"select": asyncore.poll, "poll": asyncore.poll2}.get(poller)  # type: ignore[arg-type]
        if poll_fun is None:
            raise ValueError(f"poller must be 'select' or 'poll', got {poller!r}")
        done = until if until is not None else (lambda: not map)
        start = _time.monotonic()
        deadline = start + timeout
        while not done():
            left = deadline - _time.monotonic()
            if left <= 0:
                raise SimulationTimeout(
                    f"run(): the condition did not hold within {timeout} seconds "
                    f"(real network, {len(map)} channel(s) in the map)")
            wait = min(left, self.TICK)
            if map:
                poll_fun(wait, map)
            else:  # nothing to watch: wait for the next timer (or the tick)
                nxt = self.timers.next_deadline()
                if nxt is not None:
                    wait = max(0.0, min(wait, nxt - self.timers.clock()))
                self.sleep(wait)
                self.timers.run_due()
        return _time.monotonic() - start


# simnet.asyncore uses these through _state's hooks: it cannot import this
# package, which imports it (run() and EpollPoller drive its loop).
_state.make_real_network = RealNetwork
_state.make_epoll_poller = EpollPoller
