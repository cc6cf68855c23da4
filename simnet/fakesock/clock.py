"""Virtual clocks for ``net.patch(time=True)``.

Inside the patch the ``time`` module's clocks read the network's virtual
clock and ``time.sleep`` runs the simulation:

==========================  =====================================================
``time.monotonic()``        ``net.time()`` (``_ns``: the same in integer nanoseconds)
``time.perf_counter()``     ``net.time()``
``time.time()``             :data:`VIRTUAL_EPOCH` ``+ net.time()`` (fixed, so runs
                            compare equal; ``datetime.date.today()`` follows it)
``datetime.datetime.now()`` ``datetime.fromtimestamp(time.time(), tz)`` (also
                            ``utcnow()``, ``today()``)
``time.sleep(s)``           runs the simulation for *s* virtual seconds: servers,
                            timers and pumps run meanwhile (``sleep(0)`` is one
                            pass)
==========================  =====================================================

Rules: code that took the functions before the patch (``from time import
monotonic`` at import time) keeps the real clocks -- import it inside the
patch, or call through the module (``time.monotonic()``). ``time.process_time``
and ``time.thread_time`` are CPU clocks and stay real.
"""

from __future__ import annotations

import datetime as _datetime
import time as _time
import warnings
from typing import Any

from simnet._pyversion import UTCNOW_DEPRECATED, UTCNOW_WARNING
from simnet.fakesock.args import pytime_ns

__all__ = ["VIRTUAL_EPOCH", "install", "uninstall"]

#: What ``time.time()`` reads at virtual time 0: 2026-01-01T00:00:00Z. Fixed,
#: so that a program's timestamps are the same in every run.
VIRTUAL_EPOCH = 1_767_225_600.0

_NAMES = ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "sleep")

REAL_DATETIME = _datetime.datetime

_saved: list[dict] = []


def _never() -> bool:
    return False


def _sleep_seconds(secs: Any) -> float:
    """Check ``time.sleep``'s argument as CPython does: a float, or an integer
    (``__index__``; not ``__float__``), within 64-bit nanoseconds (rounded
    away from zero), then not negative."""
    ns = pytime_ns(secs)
    if ns < 0:
        raise ValueError("sleep length must be non-negative")
    # the seconds as given (an integer's nanoseconds are exact)
    return float(secs) if isinstance(secs, float) else float(ns // 1_000_000_000)


class _DatetimeMeta(type):
    """Keeps ``isinstance(x, datetime.datetime)`` true for real datetimes
    while ``datetime.datetime`` is the virtual-clock subclass."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, REAL_DATETIME)

    def __subclasscheck__(cls, sub: Any) -> bool:
        return issubclass(sub, REAL_DATETIME)


class VirtualDatetime(REAL_DATETIME, metaclass=_DatetimeMeta):
    """``datetime.datetime`` inside ``net.patch(time=True)``: ``now()``,
    ``utcnow()`` and ``today()`` read the virtual clock."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return cls.fromtimestamp(_time.time(), tz)

    @classmethod
    def utcnow(cls) -> Any:
        if UTCNOW_DEPRECATED:  # 3.12+: CPython's warning, at the caller
            warnings.warn(UTCNOW_WARNING, DeprecationWarning, stacklevel=2)
        # (utcfromtimestamp would warn too on 3.12+, from here)
        return cls.fromtimestamp(_time.time(), _datetime.timezone.utc).replace(tzinfo=None)

    @classmethod
    def today(cls) -> Any:
        return cls.fromtimestamp(_time.time())


VirtualDatetime.__name__ = VirtualDatetime.__qualname__ = "datetime"
VirtualDatetime.__module__ = "datetime"


def install(net: Any) -> None:
    """Point the ``time`` module's clocks and ``sleep`` (and
    ``datetime.datetime.now``) at *net*'s virtual clock."""
    saved = {name: getattr(_time, name) for name in _NAMES}
    saved["datetime"] = _datetime.datetime
    _saved.append(saved)

    def monotonic() -> float:
        return net._now

    def monotonic_ns() -> int:
        return round(net._now * 1e9)

    def time() -> float:
        return VIRTUAL_EPOCH + net._now

    def time_ns() -> int:
        return int(VIRTUAL_EPOCH) * 1_000_000_000 + round(net._now * 1e9)

    def sleep(secs: Any) -> None:
        seconds = _sleep_seconds(secs)
        if net.closed:
            raise RuntimeError(f"time.sleep({secs!r}) inside net.patch(time=True) after {net!r} "
                               "was closed: the virtual clock has stopped")
        if net._pumping or seconds == 0:
            # inside a pump step (the world is paused), or one pass
            net.sleep(seconds)
            return
        try:
            net.block(_never, seconds, "time.sleep()")
        except TimeoutError:
            pass

    monotonic.__doc__ = "Virtual seconds of the fake network (net.time())."
    monotonic_ns.__doc__ = "time.monotonic() in integer nanoseconds."
    time.__doc__ = f"VIRTUAL_EPOCH ({VIRTUAL_EPOCH:.0f}) + net.time()."
    time_ns.__doc__ = "time.time() in integer nanoseconds."
    sleep.__doc__ = "Run the fake network's simulation for *secs* virtual seconds."
    _time.monotonic = monotonic
    _time.monotonic_ns = monotonic_ns
    _time.perf_counter = monotonic
    _time.perf_counter_ns = monotonic_ns
    _time.time = time
    _time.time_ns = time_ns
    _time.sleep = sleep
    _datetime.datetime = VirtualDatetime  # type: ignore[misc]


def uninstall(net: Any) -> None:
    """Undo the matching :func:`install`."""
    saved = _saved.pop()
    for name in _NAMES:
        setattr(_time, name, saved[name])
    _datetime.datetime = saved["datetime"]  # type: ignore[misc]
