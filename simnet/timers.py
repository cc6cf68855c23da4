"""Timers for dispatcher programs: ``call_later`` and ``call_at``.

asyncore never had timers; its users kept asking for them. simnet's timers are
run by ``loop()``/``poll()`` of the network they were scheduled on, in order of
deadline (ties in the order they were scheduled), and the loop never waits past
the next deadline. On the real network the clock is ``time.monotonic()``; on a
fake network it is the network's virtual clock, so a 60-second timer fires
without a second of wall time passing.

Example::

    import simnet

    class Client(simnet.dispatcher):
        ...

    handle = simnet.call_later(5.0, print, "five seconds later")
    handle.cancel()          # changed our mind

A timer's exception propagates out of ``poll()``/``loop()`` (timers belong to
no channel, so there is no ``handle_error`` to call); ``ExitNow`` raised from a
timer therefore ends the loop, as it does from a handler.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from typing import Any, Callable

from simnet import _state

__all__ = ["TimerHandle", "TimerQueue", "call_later", "call_at", "clock"]


class TimerHandle:
    """A scheduled call; returned by :func:`call_later` and :func:`call_at`.

    ``when`` is the deadline on the clock of the network it was scheduled on.
    """

    __slots__ = ("when", "callback", "args", "cancelled", "_queue", "_seq")

    def __init__(self, when: float, seq: int, callback: Callable[..., Any],
                 args: tuple, queue: TimerQueue) -> None:
        self.when = when
        self._seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False
        self._queue: TimerQueue | None = queue

    def cancel(self) -> bool:
        """Cancel the call. Returns True if it was pending, False if it had
        already run or been cancelled (cancelling twice is harmless)."""
        if self.cancelled or self._queue is None:
            return False
        self.cancelled = True
        self._queue._cancelled_one()
        self._queue = None
        return True

    @property
    def pending(self) -> bool:
        """True until the call runs or is cancelled."""
        return self._queue is not None

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else ("pending" if self.pending else "done")
        name = getattr(self.callback, "__qualname__", None) or repr(self.callback)
        return f"<TimerHandle {name} when={self.when:.6f} #{self._seq} {state}>"


def _check_time(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
    return value


class TimerQueue:
    """A heap of :class:`TimerHandle` ordered by (deadline, scheduling order).

    Each network owns one, with its own clock. Scheduling is thread-safe, so a
    thread may schedule on a loop running elsewhere.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._cancelled = 0
        #: called with each handle just before it runs (a network's trace hook)
        self.on_run: Callable[[TimerHandle], None] | None = None

    def __len__(self) -> int:
        """Number of pending (not cancelled) timers."""
        return len(self._heap) - self._cancelled

    def __repr__(self) -> str:
        return f"<TimerQueue pending={len(self)} next={self.next_deadline()}>"

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` once the clock reaches *when*."""
        when = _check_time(when, "when")
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        with self._lock:
            seq = next(self._seq)
            handle = TimerHandle(when, seq, callback, args, self)
            heapq.heappush(self._heap, (when, seq, handle))
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` after *delay* seconds (``delay >= 0``)."""
        delay = _check_time(delay, "delay")
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay!r}; "
                             "use call_at() for an absolute deadline")
        return self.call_at(self.clock() + delay, callback, *args)

    def _cancelled_one(self) -> None:
        with self._lock:
            self._cancelled += 1
            # Compact when cancelled entries dominate, so cancel-heavy programs
            # (a timeout re-armed on every read) do not grow the heap forever.
            if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                # in place: the loop holds on to this list between checks
                self._heap[:] = [e for e in self._heap if not e[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def next_deadline(self) -> float | None:
        """Deadline of the earliest pending timer, or None."""
        heap = self._heap
        with self._lock:
            while heap and heap[0][2].cancelled:
                heapq.heappop(heap)
                self._cancelled -= 1
            return heap[0][0] if heap else None

    def bound(self, timeout: float | None) -> tuple[float | None, bool]:
        """Clamp a wait of *timeout* seconds (None: forever) to the next deadline.

        Returns ``(timeout, clamped)``; *clamped* is True when a timer set it.
        """
        deadline = self.next_deadline()
        if deadline is None:
            return timeout, False
        remaining = max(0.0, deadline - self.clock())
        if timeout is None or remaining < timeout:
            return remaining, True
        return timeout, False

    def run_due(self) -> int:
        """Run every timer that is due now; return how many ran.

        Timers scheduled by these callbacks run on a later pass, never in this
        one, so a timer that re-arms itself with delay 0 cannot starve I/O.
        """
        heap = self._heap
        if not heap:
            return 0
        now = self.clock()
        due: list[TimerHandle] = []
        with self._lock:
            while heap and heap[0][0] <= now:
                handle = heapq.heappop(heap)[2]
                if handle.cancelled:
                    self._cancelled -= 1
                    continue
                handle._queue = None
                due.append(handle)
        on_run = self.on_run
        for i, handle in enumerate(due):
            try:
                if on_run is not None:
                    on_run(handle)
                handle.callback(*handle.args)
            except BaseException:
                # The rest of this batch is still due: put it back so the next
                # pass runs it, then let the exception out of the loop.
                with self._lock:
                    for later in due[i + 1:]:
                        later._queue = self
                        heapq.heappush(heap, (later.when, later._seq, later))
                raise
        return len(due)

    def clear(self) -> None:
        """Cancel every pending timer."""
        with self._lock:
            for _, _, handle in self._heap:
                handle.cancelled = True
                handle._queue = None
            self._heap.clear()
            self._cancelled = 0


#: Timers of the default real network (monotonic clock). They live here, not
#: in ``_state``, so that ``_state`` needs nothing from this module.
real_timers = TimerQueue(time.monotonic)


def _queue() -> TimerQueue:
    net = _state.current
    return real_timers if net is None else net.timers


def call_later(delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
    """Run ``callback(*args)`` after *delay* seconds of the current network's clock.

    The loop (``simnet.loop``/``poll``/``poll2``) that waits on that network runs
    it. Returns a :class:`TimerHandle` whose ``cancel()`` takes it back.

    >>> import simnet
    >>> h = simnet.call_later(0.5, print, "tick")
    >>> h.cancel()
    True
    """
    return _queue().call_later(delay, callback, *args)


def call_at(when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
    """Run ``callback(*args)`` when the current network's clock reaches *when*.

    *when* is on the scale of :func:`clock` (``time.monotonic()`` on the real
    network, virtual seconds on a fake one).
    """
    return _queue().call_at(when, callback, *args)


def clock() -> float:
    """The current network's clock: ``time.monotonic()`` or virtual time."""
    return _queue().clock()
