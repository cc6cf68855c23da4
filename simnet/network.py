"""The network seam: what the dispatcher layer needs from a network.

A dispatcher program talks to *a network*; simnet makes the network a value
you can choose. Every network offers the same small surface:

* ``socket(family, type, proto)`` makes a socket;
* ``select(r, w, x, timeout)`` and ``poll()`` (a ``select.poll``-like object)
  wait for readiness of the network's file numbers;
* ``sleep(seconds)`` waits with nothing to watch, ``time()`` tells its clock;
* ``timers`` is its :class:`~simnet.timers.TimerQueue`.

``with network:`` makes it current: ``dispatcher.create_socket()`` and
``simnet.call_later()`` then use it. Maps of its sockets are waited on by it.
"""

from __future__ import annotations

from typing import Any

from simnet import _state
from simnet.timers import TimerQueue

__all__ = ["Network", "current_network"]


class Network:
    """Base class of :class:`simnet.real.RealNetwork` and ``simnet.fakesock.FakeNetwork``."""

    #: True for simulated networks (their sockets have fds >= FAKE_FD_BASE).
    is_fake = False
    timers: TimerQueue

    def socket(self, family: int = -1, type: int = -1, proto: int = -1) -> Any:
        raise NotImplementedError

    def select(self, r: list[int], w: list[int], x: list[int],
               timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        raise NotImplementedError

    def poll(self) -> Any:
        """A new poll object (``register``/``modify``/``unregister``/``poll(ms)``)."""
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def time(self) -> float:
        return self.timers.clock()

    # -- being current -------------------------------------------------
    def __enter__(self) -> Network:
        _state.push(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _state.pop(self)


def current_network() -> Network | None:
    """The network new sockets and timers go to (``None``: the default real one)."""
    return _state.current
