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
    assert len(q) == 0 and len(q._heap) < 200


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
