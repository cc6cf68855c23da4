"""simnet: asyncore and asynchat, back and testable.

The same dispatcher program runs on real sockets or on a deterministic
in-memory network. The whole asyncore/asynchat API is here::

    import simnet as asyncore            # or: simnet.install(); import asyncore

    class Echo(simnet.dispatcher_with_send):
        def handle_read(self):
            self.send(self.recv(8192))

Beyond the stdlib: timers (:func:`call_later`, :func:`call_at`),
``loop(poller="epoll")`` for very large maps, and :func:`install` for apps on
Python 3.12+, where the stdlib modules are gone.
"""

from __future__ import annotations

import sys
from collections import deque

from simnet import asynchat, asyncore
from simnet.asynchat import async_chat, find_prefix_at_end, simple_producer
from simnet.asyncore import (
    ExitNow,
    close_all,
    compact_traceback,
    dispatcher,
    dispatcher_with_send,
    loop,
    poll,
    poll2,
    poll3,
    read,
    readwrite,
    socket_map,
    write,
)
from simnet.network import Network, current_network
from simnet.real import EpollPoller, RealNetwork
from simnet.faults import FaultPlan, PlanError, Rule
from simnet.timers import TimerHandle, call_at, call_later, clock
from simnet.traces.trace import Trace, TraceError
# The old module names, aliases of simnet.traces.trace/.replay. Imported here,
# before the function ``replay`` is bound below, so that a later
# ``import simnet.replay`` finds the module loaded and leaves the attribute
# ``simnet.replay`` (the function) alone.
import simnet.trace  # noqa: E402,F401
import simnet.replay  # noqa: E402,F401
from simnet.traces.replay import ReplayDivergence, record, replay

if hasattr(asyncore, "file_dispatcher"):
    from simnet.asyncore import file_dispatcher, file_wrapper  # noqa: F401

_exception = asyncore._exception

__version__ = "0.1.0"

__all__ = [
    "asyncore", "asynchat",
    # asyncore
    "dispatcher", "dispatcher_with_send", "file_dispatcher", "file_wrapper",
    "loop", "poll", "poll2", "poll3", "read", "write", "readwrite",
    "ExitNow", "compact_traceback", "close_all", "socket_map",
    # asynchat
    "async_chat", "simple_producer", "fifo", "find_prefix_at_end",
    # simnet
    "install", "uninstall", "call_later", "call_at", "clock", "TimerHandle",
    "Network", "RealNetwork", "EpollPoller", "current_network",
    "FaultPlan", "Rule", "PlanError", "Trace", "TraceError",
    "record", "replay", "ReplayDivergence",
]


class fifo:
    """The producer queue of Python 2's asynchat (gone from 3.x's), for old apps.

    ``pop()`` returns ``(1, item)``, or ``(0, None)`` when empty.
    """

    def __init__(self, list=None):
        self.list = deque(list) if list else deque()

    def __len__(self) -> int:
        return len(self.list)

    def __repr__(self) -> str:
        return f"<fifo of {len(self.list)}>"

    def is_empty(self) -> bool:
        return not self.list

    def first(self):
        return self.list[0]

    def push(self, data) -> None:
        self.list.append(data)

    def pop(self):
        if self.list:
            return (1, self.list.popleft())
        return (0, None)


_saved: dict[str, object] = {}


def install() -> None:
    """Register simnet's drop-in modules as ``asyncore`` and ``asynchat``.

    For applications on Python 3.12+, where the stdlib modules no longer
    exist: after ``simnet.install()``, a plain ``import asyncore`` (or
    ``asynchat``) anywhere in the process gets ``simnet.asyncore`` (or
    ``simnet.asynchat``). On Python 3.11 it *replaces* the stdlib modules in
    ``sys.modules`` -- modules that already imported the stdlib ones keep
    them, so call it before importing the application. :func:`uninstall`
    puts back whatever was there before. Calling it twice is harmless.
    """
    for name, mod in (("asyncore", asyncore), ("asynchat", asynchat)):
        if sys.modules.get(name) is not mod:
            _saved.setdefault(name, sys.modules.get(name))
            sys.modules[name] = mod


def uninstall() -> None:
    """Undo :func:`install`: restore the modules registered before it."""
    for name in ("asyncore", "asynchat"):
        if name in _saved:
            previous = _saved.pop(name)
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
