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
import math
import operator
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
    """Pending :class:`TimerHandle` s, taken in order of (deadline, scheduling order).

    Each network owns one, with its own clock. Scheduling is thread-safe, so a
    thread may schedule on a loop running elsewhere.

    Layout, chosen by profiling a million timers (``bench/timers.py``): a
    binary heap of ``(when, seq, handle)`` tuples costs ~log2(n) tuple
    comparisons per pop, scattered over memory; a list kept *sorted* costs
    nothing to pop from its end. So timers live in three places:

    * ``_heap``: handles sorted by (deadline, scheduling order), latest first,
      so the next one is ``_heap[-1]``. Sorting uses ``list.sort`` with the
      deadline as key (stable, so ties keep scheduling order), a C loop over
      floats. The name is kept: the loops test ``if timers._heap`` to learn
      whether any timer is stored, and it is non-empty whenever the other two
      places are (the invariant every method keeps).
    * ``_new``: handles scheduled since the queue was last looked at, in
      scheduling order; scheduling is an append.
    * ``_small``: a heap of ``(when, seq, handle)`` for the few timers
      scheduled since the last sort, when sorting everything again would
      cost more than it saves (a timeout re-armed on every read).

    Looking at the queue first settles ``_new``: into ``_small`` when it is
    small next to ``_heap``, else everything is merged into ``_heap`` by one
    sort. Cancelled handles stay where they are until they reach the front
    or cancelled ones make up half the queue (then all are dropped at once).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._heap: list[TimerHandle] = []
        self._new: list[TimerHandle] = []
        self._small: list[tuple[float, int, TimerHandle]] = []
        self._next_seq = 0
        self._lock = threading.Lock()
        self._cancelled = 0
        # True when _small may hold a handle scheduled before one of _heap's
        # with the same deadline (after an exception put a batch back): the
        # next merge then sorts on (deadline, seq) instead of deadline alone.
        self._mixed = False
        #: called with each handle just before it runs (a network's trace hook)
        self.on_run: Callable[[TimerHandle], None] | None = None

    def __len__(self) -> int:
        """Number of pending (not cancelled) timers."""
        return len(self._heap) + len(self._new) + len(self._small) - self._cancelled

    def __repr__(self) -> str:
        return f"<TimerQueue pending={len(self)} next={self.next_deadline()}>"

    def _stored(self) -> int:
        """Handles held, cancelled ones included."""
        return len(self._heap) + len(self._new) + len(self._small)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` once the clock reaches *when*."""
        if when.__class__ is not float or when - when != 0.0:  # not a finite float
            when = _check_time(when, "when")
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        with self._lock:
            seq = self._next_seq
            self._next_seq = seq + 1
            handle = TimerHandle(when, seq, callback, args, self)
            if self._heap:
                self._new.append(handle)
            else:  # nothing stored: a list of one is sorted
                self._heap.append(handle)
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` after *delay* seconds (``delay >= 0``)."""
        if delay.__class__ is not float or delay - delay != 0.0:
            delay = _check_time(delay, "delay")
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay!r}; "
                             "use call_at() for an absolute deadline")
        when = self.clock() + delay
        if when.__class__ is not float or when - when != 0.0:
            when = _check_time(when, "when")
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        # call_at's body, inlined: this is the scheduling hot path
        with self._lock:
            seq = self._next_seq
            self._next_seq = seq + 1
            handle = TimerHandle(when, seq, callback, args, self)
            if self._heap:
                self._new.append(handle)
            else:
                self._heap.append(handle)
        return handle

    # -- internals; callers hold self._lock ------------------------------------
    def _settle(self) -> None:
        """Move ``_new`` into ``_small`` (few) or merge everything into ``_heap``."""
        new = self._new
        small = self._small
        if len(new) + len(small) > max(_MERGE_MIN, len(self._heap) >> 3):
            self._merge()
            return
        push = heapq.heappush
        for handle in new:
            push(small, (handle.when, handle._seq, handle))
        new.clear()

    def _merge(self) -> None:
        """Sort every stored handle into ``_heap`` (in place: loops hold the list)."""
        heap = self._heap
        heap.reverse()  # earliest first: ties in scheduling order, for the stable sort
        small = self._small
        if small:
            small.sort()  # (when, seq): seq is unique, handles are never compared
            heap.extend([entry[2] for entry in small])
            small.clear()
        new = self._new
        if new:
            heap.extend(new)
            new.clear()
        heap.sort(key=_when_seq if self._mixed else _when)
        heap.reverse()
        self._mixed = False

    def _front(self) -> TimerHandle | None:
        """The next live handle (dropping cancelled ones met on the way), or None."""
        heap = self._heap
        small = self._small
        while heap:
            handle = heap[-1]
            if small:
                entry = small[0]
                if entry[0] < handle.when or (entry[0] == handle.when and entry[1] < handle._seq):
                    handle = entry[2]
                    if handle.cancelled:
                        heapq.heappop(small)
                        self._cancelled -= 1
                        continue
                    return handle
            if handle.cancelled:
                heap.pop()
                self._cancelled -= 1
                if not heap and (small or self._new):
                    self._merge()
                continue
            return handle
        return None

    def _remove_front(self, handle: TimerHandle) -> None:
        """Take out *handle*, which :meth:`_front` just returned."""
        small = self._small
        if small and small[0][2] is handle:
            heapq.heappop(small)
            return
        heap = self._heap
        heap.pop()
        if not heap and (small or self._new):
            self._merge()

    def _cancelled_one(self) -> None:
        with self._lock:
            self._cancelled += 1
            # Compact when cancelled entries dominate, so cancel-heavy programs
            # (a timeout re-armed on every read) do not grow the queue forever.
            if self._cancelled > 64 and self._cancelled * 2 > self._stored():
                self._compact()

    def _compact(self) -> None:
        """Drop every cancelled handle (filtering keeps each place's order)."""
        heap = self._heap
        heap[:] = [h for h in heap if not h.cancelled]  # in place, as in _merge
        self._new[:] = [h for h in self._new if not h.cancelled]
        small = self._small
        small[:] = [e for e in small if not e[2].cancelled]
        heapq.heapify(small)
        self._cancelled = 0
        if not heap and (small or self._new):
            self._merge()

    # -- the loop's interface ----------------------------------------------------
    def next_deadline(self) -> float | None:
        """Deadline of the earliest pending timer, or None."""
        heap = self._heap
        if not heap:
            return None
        if not self._new and not self._small:
            handle = heap[-1]
            if not handle.cancelled:
                return handle.when
        with self._lock:
            if self._new:
                self._settle()
            handle = self._front()
            return None if handle is None else handle.when

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
        small = self._small
        if heap[-1].when > now and not self._new and (not small or small[0][0] > now):
            return 0
        due: list[TimerHandle] = []
        with self._lock:
            if self._new:
                self._settle()
            if small:
                front = self._front
                remove = self._remove_front
                while True:
                    handle = front()
                    if handle is None or handle.when > now:
                        break
                    remove(handle)
                    handle._queue = None
                    due.append(handle)
            else:  # the usual case: everything is in the sorted list
                while heap:
                    handle = heap[-1]
                    if handle.when > now:
                        break
                    heap.pop()
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
                self._put_back(due[i + 1:])
                raise
        return len(due)

    def _put_back(self, handles: list[TimerHandle]) -> None:
        with self._lock:
            for handle in handles:
                handle._queue = self
                if self._heap:
                    heapq.heappush(self._small, (handle.when, handle._seq, handle))
                    self._mixed = True
                else:
                    self._heap.append(handle)

    def clear(self) -> None:
        """Cancel every pending timer."""
        with self._lock:
            for handle in self._heap:
                handle.cancelled = True
                handle._queue = None
            for handle in self._new:
                handle.cancelled = True
                handle._queue = None
            for entry in self._small:
                entry[2].cancelled = True
                entry[2]._queue = None
            self._heap.clear()
            self._new.clear()
            self._small.clear()
            self._cancelled = 0
            self._mixed = False


_MERGE_MIN = 64
_when = operator.attrgetter("when")
_when_seq = operator.attrgetter("when", "_seq")


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
    net = _state.current
    return (real_timers if net is None else net.timers).call_later(delay, callback, *args)


def call_at(when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
    """Run ``callback(*args)`` when the current network's clock reaches *when*.

    *when* is on the scale of :func:`clock` (``time.monotonic()`` on the real
    network, virtual seconds on a fake one).
    """
    return _queue().call_at(when, callback, *args)


def clock() -> float:
    """The current network's clock: ``time.monotonic()`` or virtual time."""
    return _queue().clock()
