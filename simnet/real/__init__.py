"""The real network: kernel sockets, ``select``/``poll``/``epoll``, ``ssl``.

By default the dispatcher layer talks to the kernel directly through the
drop-in module's own ``socket``/``select``/``time`` globals (so that tests
which monkeypatch ``asyncore.socket`` keep working). :class:`RealNetwork` is
the same network as a value: entered with ``with RealNetwork():`` it becomes
current, which is how fault plans and traces attach to real sockets.
"""

from __future__ import annotations

import errno
from typing import Any

from simnet import _state
from simnet.network import Network
from simnet.real.epoll import EpollPoller
from simnet.real.faults import REAL_FAULTS, FaultySocket, _RealFaults, plan_from_trace
from simnet.timers import TimerQueue

__all__ = ["RealNetwork", "EpollPoller", "FaultySocket", "plan_from_trace", "REAL_FAULTS"]


class RealNetwork(_RealFaults, Network):
    """Kernel sockets on the monotonic clock.

    Sockets, waiting and sleeping go through ``simnet.asyncore``'s module
    globals at call time, so a monkeypatched ``asyncore.socket`` or
    ``asyncore.select`` applies here too. Timers are shared with the default
    real network.

    *faults* (a plan, as for FakeNetwork) applies the rules kernel sockets
    can show -- partial_send, short_read, eagain, eintr, disconnect (after
    bytes), refuse -- and refuses the others with a PlanError; *trace*
    (True or a Trace) records the run in ``net.trace``; *seed* seeds the
    draws of probabilities. With either, ``socket()`` returns
    :class:`FaultySocket` wrappers::

        with RealNetwork(faults=[Rule("partial_send", max_bytes=1)], trace=True) as net:
            ...   # dispatchers created here send one byte at a time
        plan = plan_from_trace(net.trace)   # replays that chunking on a FakeNetwork
    """

    is_fake = False

    def __init__(self, faults: Any = None, trace: Any = None, seed: int = 0) -> None:
        self.timers: TimerQueue = _state.real_timers
        self._init_faults(faults, trace, seed)
        self._wrap = bool(self.faults.plan) or self.trace is not None

    def __repr__(self) -> str:
        return f"<RealNetwork faults={len(self.faults.plan)} timers={len(self.timers)}>"

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._close_faults()

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
        sock = mod.socket(family, type, proto if proto != -1 else 0)
        return FaultySocket(sock, self) if self._wrap else sock

    def _eintr(self) -> None:
        if self.faults.plan and self.faults.match("wait") is not None:
            raise InterruptedError(errno.EINTR, "Interrupted system call")

    def select(self, r: list[int], w: list[int], x: list[int],
               timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        self._eintr()
        return self._mod().select.select(r, w, x, timeout)

    def poll(self) -> Any:
        self._eintr()
        return self._mod().select.poll()

    def sleep(self, seconds: float) -> None:
        self._mod().time.sleep(seconds)
