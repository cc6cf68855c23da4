"""The real network: kernel sockets, ``select``/``poll``/``epoll``, ``ssl``.

By default the dispatcher layer talks to the kernel directly through the
drop-in module's own ``socket``/``select``/``time`` globals (so that tests
which monkeypatch ``asyncore.socket`` keep working). :class:`RealNetwork` is
the same network as a value: entered with ``with RealNetwork():`` it becomes
current, which is how fault plans and traces attach to real sockets.
"""

from __future__ import annotations

from typing import Any

from simnet import _state
from simnet.network import Network
from simnet.real.epoll import EpollPoller
from simnet.timers import TimerQueue

__all__ = ["RealNetwork", "EpollPoller"]


class RealNetwork(Network):
    """Kernel sockets on the monotonic clock.

    Sockets, waiting and sleeping go through ``simnet.asyncore``'s module
    globals at call time, so a monkeypatched ``asyncore.socket`` or
    ``asyncore.select`` applies here too. Timers are shared with the default
    real network.
    """

    is_fake = False

    def __init__(self) -> None:
        self.timers: TimerQueue = _state.real_timers

    def __repr__(self) -> str:
        return f"<RealNetwork timers={len(self.timers)}>"

    @staticmethod
    def _mod() -> Any:
        from simnet import asyncore

        return asyncore

    def socket(self, family: int = -1, type: int = -1, proto: int = -1) -> Any:
        mod = self._mod().socket
        if family == -1:
            family = mod.AF_INET
        if type == -1:
            type = mod.SOCK_STREAM
        return mod.socket(family, type, proto if proto != -1 else 0)

    def select(self, r: list[int], w: list[int], x: list[int],
               timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        return self._mod().select.select(r, w, x, timeout)

    def poll(self) -> Any:
        return self._mod().select.poll()

    def sleep(self, seconds: float) -> None:
        self._mod().time.sleep(seconds)
