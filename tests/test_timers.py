"""Timers: call_later/call_at, run by poll()/poll2()/loop() in deadline order.

The clock is real here (time.monotonic); tests never wait on it except for
one short timer, and check what the loop *asks* the kernel for (the timeout
passed to select/poll) by patching ``simnet.asyncore.select``, as apps' own
test suites patch ``asyncore.select``.
"""

from __future__ import annotations

import math
import select as real_select
import socket

import pytest

import simnet
import simnet.asyncore as sasyncore
from simnet import _state
from simnet.timers import TimerQueue


class Idle(simnet.dispatcher):
    """A channel that waits for nothing (neither readable nor writable)."""

    def readable(self):
        return False

    def writable(self):
        return False


@pytest.fixture
def idle_map():
    m = {}
    a, b = socket.socketpair()
    Idle(a, map=m)
    yield m
    simnet.close_all(m)
    b.close()


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_timers_run_in_deadline_order_ties_in_scheduling_order():
    clock = _Clock()
    q = TimerQueue(clock)
    ran = []
    q.call_at(101.0, ran.append, "b1")
    q.call_at(100.5, ran.append, "a")
    q.call_at(101.0, ran.append, "b2")
    q.call_later(1.0, ran.append, "b3")  # also 101.0, scheduled last
    q.call_at(102.0, ran.append, "c")
    clock.now = 101.0
    assert q.run_due() == 4
    assert ran == ["a", "b1", "b2", "b3"]
    assert len(q) == 1 and q.next_deadline() == 102.0


def test_cancel_takes_a_timer_back_and_reports_whether_it_was_pending():
    clock = _Clock()
    q = TimerQueue(clock)
    ran = []
    h = q.call_later(1, ran.append, "x")
    keep = q.call_later(2, ran.append, "y")
    assert h.pending and h.cancel() is True and h.cancel() is False
    assert "cancelled" in repr(h) and len(q) == 1
    clock.now = 200
    q.run_due()
    assert ran == ["y"] and not keep.pending and keep.cancel() is False


def test_timer_scheduled_by_a_timer_runs_on_the_next_pass_not_this_one():
    clock = _Clock()
    q = TimerQueue(clock)
    ran = []

    def rearm():
        ran.append("tick")
        q.call_later(0, rearm)

    q.call_later(0, rearm)
    assert q.run_due() == 1 and q.run_due() == 1
    assert ran == ["tick", "tick"]


def test_exception_in_a_timer_propagates_and_the_rest_still_run_later():
    clock = _Clock()
    q = TimerQueue(clock)
    ran = []

    def boom():
        raise RuntimeError("timer failed")

    q.call_later(0, boom)
    q.call_later(0, ran.append, "after")
    with pytest.raises(RuntimeError, match="timer failed"):
        q.run_due()
    assert ran == [] and len(q) == 1
    q.run_due()
    assert ran == ["after"]


def test_heavy_cancellation_does_not_grow_the_heap_forever():
    q = TimerQueue(_Clock())
    for _ in range(1000):
        q.call_later(10, print).cancel()
    assert len(q) == 0 and q._stored() < 200


def test_cancelling_many_timers_then_running_runs_the_rest_in_order():
    # Enough timers to take the bulk path (one sort) and to compact the
    # cancelled ones away; deadlines repeat, so ties are checked too.
    clock = _Clock()
    q = TimerQueue(clock)
    ran = []
    handles = [q.call_at(100.0 + (i * 7919) % 50, ran.append, i) for i in range(5000)]
    for i, h in enumerate(handles):
        if i % 4:
            assert h.cancel() is True
    assert len(q) == 1250 and q._stored() < 2600  # compacted on the way
    clock.now = 200.0
    assert q.run_due() == 1250
    expected = sorted(range(0, 5000, 4), key=lambda i: (100.0 + (i * 7919) % 50, i))
    assert ran == expected
    assert len(q) == 0 and q.next_deadline() is None and not q._heap


def test_ties_keep_scheduling_order_across_bulk_and_incremental_scheduling():
    clock = _Clock()
    q = TimerQueue(clock)
    ran = []
    for i in range(1000):  # bulk: merged by one sort
        q.call_at(101.0 + i % 3, ran.append, ("bulk", i))
    assert q.next_deadline() == 101.0
    for i in range(10):  # a few more: kept apart from the sorted list
        q.call_at(101.0 + i % 3, ran.append, ("late", i))
    assert q.next_deadline() == 101.0
    clock.now = 101.0
    q.run_due()
    assert ran == [("bulk", i) for i in range(0, 1000, 3)] + [("late", i) for i in range(0, 10, 3)]
    clock.now = 103.0
    q.run_due()
    assert ran[334 + 4:] == ([("bulk", i) for i in range(1, 1000, 3)] + [("late", i) for i in range(1, 10, 3)]
                             + [("bulk", i) for i in range(2, 1000, 3)] + [("late", i) for i in range(2, 10, 3)])


def test_a_batch_put_back_after_an_exception_still_runs_in_deadline_order():
    clock = _Clock()
    q = TimerQueue(clock)
    ran = []
    q.call_at(300.0, ran.append, "future")  # keeps the sorted list non-empty

    def early_then_boom():
        q.call_at(95.0, ran.append, "scheduled in the past")  # before the rest of the batch
        q.call_at(100.0, ran.append, "tie, scheduled last")
        raise RuntimeError("boom")

    q.call_at(99.0, early_then_boom)
    q.call_at(99.5, ran.append, "put back 1")
    q.call_at(100.0, ran.append, "put back 2")
    with pytest.raises(RuntimeError, match="boom"):
        q.run_due()
    assert ran == [] and len(q) == 5 and q.next_deadline() == 95.0
    q.run_due()
    assert ran == ["scheduled in the past", "put back 1", "put back 2", "tie, scheduled last"]
    clock.now = 300.0
    for _ in range(100):  # and a bulk merge afterwards keeps (deadline, order) too
        q.call_at(300.0, ran.append, "bulk")
    q.run_due()
    assert ran[4:] == ["future"] + ["bulk"] * 100


@pytest.mark.parametrize("seed", range(12))
def test_queue_matches_a_sorted_list_model_under_random_operations(seed):
    """Schedule (bulk and one by one, with ties), cancel, re-arm from callbacks,
    raise from callbacks, advance the clock: the runs, ``len()`` and
    ``next_deadline()`` always match a plain list sorted by (deadline, order)."""
    import random

    rnd = random.Random(seed)
    clock = _Clock()
    q = TimerQueue(clock)
    model = []  # [when, seq, handle] pending, in any order
    ran = []
    seq = [0]

    def fire(tag, rearm, boom):
        ran.append(tag)
        if rearm:
            schedule(clock.now + rnd.choice([0.0, 0.5, 1.0]), False, False)
        if boom:
            raise ValueError(tag)

    def schedule(when, rearm, boom):
        tag = seq[0]
        seq[0] += 1
        h = q.call_at(when, fire, tag, rearm, boom)
        model.append([when, tag, h])

    for _ in range(300):
        op = rnd.random()
        if op < 0.3:
            for _ in range(rnd.choice([1, 1, 2, 5, 200])):
                schedule(clock.now + rnd.choice([0.0, 0.5, 1.0, 1.5, rnd.random() * 5]),
                         rnd.random() < 0.2, rnd.random() < 0.02)
        elif op < 0.5 and model:
            for _ in range(rnd.choice([1, 3, 100])):
                if model:
                    entry = model.pop(rnd.randrange(len(model)))
                    assert entry[2].cancel() is True
        else:
            clock.now += rnd.choice([0.0, 0.25, 0.5, 1.0, 3.0])
            due = sorted((e for e in model if e[0] <= clock.now), key=lambda e: (e[0], e[1]))
            before = len(ran)
            try:
                q.run_due()
            except ValueError as exc:
                tag = int(str(exc))
                cut = [e[1] for e in due].index(tag) + 1
                due = due[:cut]
            assert ran[before:before + len(due)] == [e[1] for e in due]
            ran_now = set(ran[before:before + len(due)])
            model[:] = [e for e in model if e[1] not in ran_now]
            # re-armed timers scheduled during the batch are in the model already
            assert all(e[2].pending for e in model)
        assert len(q) == len(model)
        expect = min(((e[0], e[1]) for e in model), default=(None,))[0]
        assert q.next_deadline() == expect


def test_threads_scheduling_while_the_loop_runs_lose_and_reorder_nothing():
    import threading

    clock = _Clock()
    q = TimerQueue(clock)
    ran = []
    handles = []
    go = threading.Barrier(5)

    def scheduler(k):
        go.wait()
        for i in range(3000):
            handles.append(q.call_at(100.0 + (i % 7), ran.append, (k, i)))

    threads = [threading.Thread(target=scheduler, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    go.wait()
    while any(t.is_alive() for t in threads):  # the loop, meanwhile: peeks and runs
        q.next_deadline()
        q.run_due()
    for t in threads:
        t.join(timeout=10)
    assert len(q) + len(ran) == 12000
    early = len(ran)
    clock.now = 200.0
    q.run_due()
    assert len(ran) == 12000 and len(set(ran)) == 12000 and len(q) == 0
    key = {h.args[0]: (h.when, h._seq) for h in handles}
    assert len({k[1] for k in key.values()}) == 12000  # every handle its own place in line
    keys = [key[tag] for tag in ran]
    # while the threads ran, the clock stood at 100: only those timers ran, in
    # scheduling order; the rest ran in (deadline, scheduling order)
    assert all(k[0] == 100.0 for k in keys[:early]) and keys[:early] == sorted(keys[:early])
    assert keys[early:] == sorted(keys[early:])


@pytest.mark.parametrize("args, exc, words", [
    (("soon", print), TypeError, "number of seconds"),
    ((True, print), TypeError, "number of seconds"),
    ((-1, print), ValueError, ">= 0"),
    ((math.nan, print), ValueError, "finite"),
    ((math.inf, print), ValueError, "finite"),
    ((1, "not callable"), TypeError, "callable"),
])
def test_call_later_rejects_bad_arguments_with_a_clear_message(args, exc, words):
    with pytest.raises(exc, match=words):
        simnet.call_later(*args)
    assert len(simnet.timers.real_timers) == 0


def _spy_select(monkeypatch):
    """Patch simnet.asyncore.select so the timeouts the loop asks for are recorded."""
    seen = []

    class Spy:
        def __getattr__(self, name):
            return getattr(real_select, name)

        def select(self, r, w, e, timeout):
            seen.append(("select", timeout))
            return real_select.select(r, w, e, timeout)

        def poll(self):
            inner = real_select.poll()

            class P:
                register = inner.register

                def poll(self, timeout=None):
                    seen.append(("poll", timeout))
                    return inner.poll(timeout)

            return P()

    monkeypatch.setattr(sasyncore, "select", Spy())
    return seen


def test_select_loop_waits_no_longer_than_the_next_deadline(monkeypatch):
    seen = _spy_select(monkeypatch)
    m = {}
    a, b = socket.socketpair()
    ch = simnet.dispatcher(a, map=m)
    ch.writable = lambda: False
    fired = []
    simnet.call_later(0.05, fired.append, "t")
    try:
        simnet.loop(timeout=30.0, map=m, count=1)
        # the wait was bounded by the timer, not the 30 s loop timeout
        assert seen[0][0] == "select" and 0 <= seen[0][1] <= 0.05
        for _ in range(100):
            if fired:
                break
            simnet.loop(timeout=30.0, map=m, count=1)
        assert fired == ["t"]
        assert all(t <= 0.05 for _, t in seen)
    finally:
        simnet.close_all(m)
        b.close()


def test_poll_loop_rounds_a_timer_wait_up_to_whole_milliseconds(monkeypatch):
    seen = _spy_select(monkeypatch)
    m = {}
    a, b = socket.socketpair()
    ch = simnet.dispatcher(a, map=m)
    ch.writable = lambda: False
    h = simnet.call_later(0.0204, print)
    try:
        simnet.loop(timeout=30.0, map=m, count=1, use_poll=True)
    finally:
        h.cancel()
        simnet.close_all(m)
        b.close()
    kind, ms = seen[0]
    assert kind == "poll" and isinstance(ms, int) and 1 <= ms <= 21


def test_poll_without_timers_keeps_the_stdlib_millisecond_conversion(monkeypatch):
    seen = _spy_select(monkeypatch)
    m = {}
    a, b = socket.socketpair()
    ch = simnet.dispatcher(a, map=m)
    ch.writable = lambda: False
    try:
        simnet.poll2(0.0015, m)
        b.send(b"x")  # make it readable, so a blocking poll(None) returns at once
        simnet.poll2(None, m)
    finally:
        simnet.close_all(m)
        b.close()
    assert seen == [("poll", 1), ("poll", None)]


def test_idle_map_sleeps_only_until_the_timer(idle_map, monkeypatch):
    slept = []
    monkeypatch.setattr(sasyncore, "time", type("T", (), {"sleep": staticmethod(slept.append)}))
    fired = []
    simnet.call_later(0.0, fired.append, 1)
    simnet.poll(60.0, idle_map)
    assert len(slept) == 1 and slept[0] <= 0.001
    assert fired == [1]


def test_due_timers_run_even_when_the_map_is_empty():
    fired = []
    simnet.call_later(0, fired.append, "x")
    simnet.poll(0.0, {})
    simnet.poll2(0.0, {})
    assert fired == ["x"]


def test_exitnow_from_a_timer_ends_the_loop(idle_map):
    simnet.call_later(0, _raise_exitnow)
    with pytest.raises(simnet.ExitNow):
        simnet.loop(timeout=0.01, map=idle_map, count=5)


def _raise_exitnow():
    raise simnet.ExitNow()


def test_epoll_poller_runs_timers_and_bounds_its_wait(idle_map):
    fired = []
    simnet.call_later(0.01, fired.append, "e")
    for _ in range(200):
        simnet.loop(timeout=5.0, map=idle_map, count=1, poller="epoll")
        if fired:
            break
    assert fired == ["e"]


def test_clock_is_monotonic_on_the_real_network():
    import time

    before = time.monotonic()
    assert before <= simnet.clock() <= time.monotonic()
