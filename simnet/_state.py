"""Process-wide state of the network seam: which network is current.

The dispatcher layer (``simnet.asyncore``) asks this module two questions:

* which network makes new sockets (``current``: ``None`` means the default
  real network, reached through the drop-in module's own ``socket`` and
  ``select`` globals so that monkeypatching ``asyncore.socket`` keeps working);
* which network waits for the sockets of a given map (:func:`network_for_map`).

Fake sockets get file numbers at or above :data:`FAKE_FD_BASE`, far above any
file descriptor the kernel hands out (``fs.nr_open`` is capped below 2**30),
so a map's owner can be told from its keys without touching the sockets.

This is the bottom layer: at run time it imports nothing from simnet
(``simnet.network``, ``simnet.timers`` and everything above import it; the
imports below are for type checkers only). The other networks reach
``simnet.asyncore`` through the hooks at the end of this module, which
``simnet.real`` fills in when it is imported.
"""

from __future__ import annotations

import os as _os
import stat as _stat
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover -- type-only: no import at run time
    from simnet.network import Network

#: Smallest file number a fake socket can have. Real descriptors never reach it.
FAKE_FD_BASE = 2_000_000_000

#: The network that ``create_socket`` and ``call_later`` use; ``None`` is the
#: default real network.
current: Network | None = None

#: How many fake sockets are open in this process (maintained by simnet.fakesock);
#: while it is 0, every map is a real one and the loop takes its fast path.
fake_sockets_open = 0

#: True while the loop can take its fast path: no network entered and no fake
#: socket open. Kept up to date by push/pop and refresh().
simple = True

#: A map that the fused pass (``simnet.asyncore.poll``/``poll2``) found to
#: hold only sockets of the fake network :data:`fast_net` (its keys are all
#: open file numbers of that network and its first channel's socket is that
#: network's), so the next pass need not look again. Anything that can change
#: the verdict sets it back to None: a channel added to or taken out of a map
#: (``dispatcher.add_channel``/``del_channel``) and a fake socket's file number
#: released. A map changed behind the dispatcher's back is still caught: a key
#: that is not an open file number of the network sends the pass back to the
#: full lookup.
fast_map: dict[Any, Any] | None = None
fast_net: Network | None = None
fast_len = 0  # len(fast_map) then (poll2 checks it: a key added behind the back)

_stack: list[Network | None] = []
_lock = threading.Lock()

#: Hooks set by ``simnet.real`` when it is imported (``simnet/__init__``
#: always imports it): ``make_real_network()`` makes the default real network
#: as a value, ``make_epoll_poller(map)`` an ``EpollPoller``. They let
#: ``simnet.asyncore`` use them without importing ``simnet.real``, which
#: imports ``simnet.asyncore`` (``RealNetwork.run`` and ``EpollPoller`` drive
#: its loop): the imports run one way, real -> asyncore -> _state.
make_real_network: Any = None
make_epoll_poller: Any = None


def push(net: Network) -> None:
    """Make *net* current (used by ``Network.__enter__``)."""
    global current
    with _lock:
        _stack.append(current)
        current = net
        refresh()


def pop(net: Network) -> None:
    """Undo the matching :func:`push`; networks must be left in reverse order."""
    global current
    with _lock:
        if current is not net:
            raise RuntimeError(
                f"{net!r} is not the current network ({current!r} is); "
                "leave nested networks in the reverse order you entered them"
            )
        current = _stack.pop()
        refresh()


def refresh() -> None:
    """Recompute :data:`simple` (call after changing current or fake_sockets_open)."""
    global simple
    simple = current is None and not fake_sockets_open


def network_for_map(map: dict[Any, Any]) -> Network | None:
    """Return the network that owns the sockets of *map* (``None``: default real).

    A map of real sockets is waited on by the current real network (one with
    faults or tracing) or, when none is entered, by the default one. A map of
    fake sockets is waited on by the fake network that made them. Keys are
    file numbers, or objects with a ``fileno()`` method (a socket), as
    ``select.select`` accepts. Raises ``ValueError`` when the map mixes real
    and fake sockets, or holds fake sockets of two networks: one loop can only
    wait on one network.
    """
    net = current
    real_net = net if net is not None and not net.is_fake else None
    if not fake_sockets_open or not map:
        return real_net  # no fake socket exists: every fd is real
    keys = map.keys()
    try:
        high = max(keys)
        low = min(keys)
    except TypeError:  # keys that are sockets (or other objects with fileno())
        return _for_object_keys(map, real_net)
    if not isinstance(high, int) or not isinstance(low, int):
        return _for_object_keys(map, real_net)
    if high < FAKE_FD_BASE:
        return real_net
    if low >= FAKE_FD_BASE:
        # all fake: usually every one belongs to the current network
        if net is not None and net.is_fake and keys <= net._fds.keys() and _owned(map, net):
            return net
        return _single_owner(map)
    return _mixed(map)


def _key_owner(key: Any, obj: Any) -> tuple[bool, Any]:
    """``(is_fake, owning network or None)`` for one map entry."""
    if isinstance(key, int) and not isinstance(key, bool):
        if key < FAKE_FD_BASE:
            return False, None
        return True, getattr(getattr(obj, "socket", None), "network", None)
    owner = getattr(key, "network", None)
    if owner is not None and getattr(owner, "is_fake", False):
        return True, owner  # a fake socket (open or closed)
    try:
        fd = key.fileno()
    except Exception:  # noqa: BLE001 - select() reports a bad key itself
        return False, None
    if isinstance(fd, int) and fd >= FAKE_FD_BASE:
        return True, getattr(getattr(obj, "socket", None), "network", None)
    return False, None


def _for_object_keys(map: dict[Any, Any], real_net: Network | None) -> Network | None:
    verdicts = [_key_owner(key, obj) for key, obj in map.items()]
    owners = [sock_net for is_fake, sock_net in verdicts if is_fake]
    if not owners:
        return real_net
    owner = _one_owner(owners)  # (two networks, or none known: an error first)
    if len(owners) < len(verdicts):
        return _mixed(map)
    return owner


def is_local_fd(key: Any) -> bool:
    """Is *key* (a number, or an object with ``fileno()``) an open kernel
    descriptor that is not a socket: a pipe, a file, a terminal? A fake
    network's loop polls such descriptors for real, next to its sockets
    (:mod:`simnet.fakesock.local`)."""
    if isinstance(key, int) and not isinstance(key, bool):
        fd = key
    else:
        try:
            fd = key.fileno()
        except Exception:  # noqa: BLE001 - not a descriptor at all
            return False
        if not isinstance(fd, int):
            return False
    if fd < 0 or fd >= FAKE_FD_BASE:
        return False
    try:
        return not _stat.S_ISSOCK(_os.fstat(fd).st_mode)
    except OSError:
        return False


def _mixed(map: dict[Any, Any]) -> Network:
    """The fake network of a map that also holds kernel descriptors: allowed
    when they are all local (pipes, files), a ``ValueError`` when one is a
    real socket."""
    fake = _single_owner({k: o for k, o in map.items() if _key_owner(k, o)[0]})
    real_entry = next(((k, o) for k, o in map.items()
                       if not _key_owner(k, o)[0] and not is_local_fd(k)), None)
    if real_entry is None:
        return fake
    raise ValueError(
        f"the map mixes real and fake sockets (real fd {real_entry[0]!r}: {real_entry[1]!r}; "
        f"fake sockets of {fake!r}); one loop can wait on one network only: create "
        "every channel inside the same network, or keep separate maps"
    )


def _owned(map: dict[int, Any], net: Network) -> bool:
    # Spot-check one channel: a fake fd number alone does not say which
    # network made it (every network numbers its sockets the same way).
    fd, obj = next(iter(map.items()))
    return getattr(getattr(obj, "socket", None), "network", net) is net


def _single_owner(map: dict[int, Any]) -> Network:
    return _one_owner([_key_owner(key, obj)[1] for key, obj in map.items()])


def _one_owner(owners: list[Any]) -> Network:
    """The one network that made the fake sockets whose owners are *owners*
    (None: a key whose socket is gone); ValueError for two, or for none."""
    owner: Network | None = None
    for sock_net in owners:
        if sock_net is None:
            continue
        if owner is None:
            owner = sock_net
        elif sock_net is not owner:
            raise ValueError(
                f"the map holds fake sockets of two networks ({owner!r} and {sock_net!r}); "
                "one loop can wait on one network only: keep a separate map per network"
            )
    if owner is None:
        raise ValueError("the map holds fake file numbers but no fake sockets; was a "
                         "channel's socket replaced or closed outside simnet?")
    return owner
