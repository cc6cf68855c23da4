"""Local descriptors in a fake network's loop: pipes, files, terminals.

A dispatcher program often keeps a descriptor that is not a network socket
in its map next to its sockets: the read end of a self-pipe that wakes the
loop, a ``file_dispatcher`` on a pipe to a child process, a log file. Such a
descriptor is not part of any network, so on the fake network it stays the
real, local thing it is, and a pass of the loop asks about it the real
kernel, without waiting:

* every pass polls the local descriptors with a zero timeout;
* when one is ready, the fake sockets are polled without waiting too, and
  both answers are returned together, in the order the caller gave;
* otherwise the pass waits as usual, in virtual time, on the fake sockets,
  and looks at the local descriptors again when the wait ends;
* when that wait would raise :class:`~simnet.fakesock.network.Deadlock`
  (nothing on the network can ever happen), only a local descriptor can end
  it -- a thread writing to a pipe, say: the pass waits for the local
  descriptors in real time, up to :data:`LOCAL_WAIT_LIMIT` seconds (or the
  pass's own timeout, if shorter), and raises the ``Deadlock`` if none
  became ready.

A real *socket* is part of the real network and still cannot share a map
with fake ones (``ValueError``): one loop waits on one network. Local
descriptors never appear in traces (their numbers differ between
processes), so the trace of a run stays the same byte for byte.
"""

from __future__ import annotations

import select as _select
from typing import Any, Callable

from simnet import _state

#: the kernel's select and poll, kept before any ``net.patch()`` replaces them
_real_select = _select.select
_real_poll = _select.poll

#: longest real wait for a local descriptor when the fake network is idle for good
LOCAL_WAIT_LIMIT = 5.0


is_local = _state.is_local_fd


def split(items: list) -> tuple[list, list]:
    """``(local, other)``: *items* parted by :func:`is_local`."""
    local = [o for o in items if is_local(o)]
    if not local:
        return [], items
    ids = {id(o) for o in local}
    return local, [o for o in items if id(o) not in ids]


def _real_wait_limit(timeout: float | None) -> float:
    return LOCAL_WAIT_LIMIT if timeout is None else min(timeout, LOCAL_WAIT_LIMIT)


def _deadlock() -> type:
    from simnet.fakesock.network import Deadlock  # (network imports this module)

    return Deadlock


def select(net: Any, r: list, w: list, x: list, timeout: float | None,
           fake_select: Callable[..., tuple[list, list, list]]) -> tuple[list, list, list]:
    """``select`` over fake sockets and local descriptors (module docstring);
    *fake_select* is the network's own select for the fake part."""
    lr, fr = split(r)
    lw, fw = split(w)
    lx, fx = split(x)

    def local_now(wait: float) -> tuple[list, list, list]:
        return _real_select(lr, lw, lx, wait)

    got = local_now(0)
    if any(got):
        fake = fake_select(fr, fw, fx, 0.0)
    else:
        try:
            fake = fake_select(fr, fw, fx, timeout)
        except _deadlock():
            # nothing on the network can ever happen: only a local
            # descriptor can end this wait (a thread writing a pipe)
            got = local_now(_real_wait_limit(timeout))
            if not any(got):
                raise
            fake = ([], [], [])
        else:
            got = local_now(0)
    return tuple(_merge(given, ready_local, ready_fake)  # type: ignore[return-value]
                 for given, ready_local, ready_fake in zip((r, w, x), got, fake))


def _merge(given: list, a: list, b: list) -> list:
    """The objects of *given* that are in *a* or *b*, in *given*'s order (as
    the kernel's select answers)."""
    if not a:
        return list(b)
    ready = {id(o) for o in a} | {id(o) for o in b}
    return [o for o in given if id(o) in ready]


class LocalPoll:
    """The local descriptors registered with a fake ``poll()`` object: a
    kernel ``poll`` object of their own."""

    def __init__(self) -> None:
        self.fds: dict[int, int] = {}

    def poll(self, wait_ms: int) -> list[tuple[int, int]]:
        p = _real_poll()
        for fd, mask in self.fds.items():
            p.register(fd, mask)
        return p.poll(wait_ms)


def poll(local: LocalPoll, timeout_s: float | None,
         fake_poll: Callable[[float | None], list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """One ``poll()`` over fake sockets (*fake_poll*, taking seconds) and the
    local descriptors of *local* (module docstring)."""
    got = local.poll(0)
    if got:
        return fake_poll(0.0) + got
    try:
        fake = fake_poll(timeout_s)
    except _deadlock():
        got = local.poll(int(_real_wait_limit(timeout_s) * 1000))
        if not got:
            raise
        return got
    return fake + local.poll(0)
