"""Tests of the epoll poller: ``simnet.EpollPoller`` and ``loop(poller="epoll")``.

What is checked:

* a map of 10,000 channels works (``select()`` refuses it, as the stdlib does);
* registrations persist: a pass where no predicate changed tells the kernel
  nothing, a predicate flip is exactly one modification, channels that leave
  the map are dropped, and a new socket that reuses a closed one's fd number
  is registered again;
* the callbacks are those of ``poll2`` (``loop(use_poll=True)``).

Every test uses a private map, bounded loops (``count=``, timeouts of 0 or a
few hundredths of a second) and no sleeps; the ``harness`` fixture closes
every socket it handed out.
"""

from __future__ import annotations

import os
import socket
import warnings

import pytest

import simnet
from simnet import EpollPoller

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None


# ---------------------------------------------------------------------------
# helpers


class Probe(simnet.dispatcher):
    """A channel on one end of a socket pair whose predicates are plain
    attributes (``want_read``/``want_write``) and whose callbacks go to a
    shared log as ``(name, event, ...)`` tuples."""

    def __init__(self, sock, map, name, log, read=True, write=False):
        super().__init__(sock, map)
        self.name = name
        self.log = log
        self.want_read = read
        self.want_write = write

    def readable(self):
        return self.want_read

    def writable(self):
        return self.want_write

    def handle_read(self):
        data = self.recv(65536)
        if data:
            self.log.append((self.name, "read", data))

    def handle_write(self):
        self.log.append((self.name, "write"))

    def handle_expt(self):
        self.log.append((self.name, "expt"))

    def handle_close(self):
        self.log.append((self.name, "close"))
        self.close()

    def handle_error(self):
        # let a handler's exception fail the test instead of closing quietly
        raise


class Harness:
    """Private map, shared callback log, and every socket made by a test, so
    teardown can close all of them."""

    def __init__(self):
        self.map = {}
        self.log = []
        self.sockets = []
        self.pollers = []

    def pair(self):
        """A connected ``socket.socketpair()``, closed at teardown."""
        a, b = socket.socketpair()
        self.sockets += [a, b]
        return a, b

    def probe(self, name, **predicates):
        """A :class:`Probe` in the private map; returns ``(probe, peer socket)``."""
        mine, peer = self.pair()
        return Probe(mine, self.map, name, self.log, **predicates), peer

    def poller(self):
        """An :class:`EpollPoller` on the private map, closed at teardown."""
        poller = EpollPoller(self.map)
        self.pollers.append(poller)
        return poller

    def track(self, sock):
        """Close *sock* at teardown too."""
        self.sockets.append(sock)
        return sock

    def events(self, name):
        """The logged callbacks of channel *name*."""
        return [e[1:] for e in self.log if e[0] == name]

    def cleanup(self):
        for poller in self.pollers:
            poller.close()
        simnet.close_all(map=self.map, ignore_all=True)
        for s in self.sockets:
            s.close()


@pytest.fixture
def harness():
    h = Harness()
    try:
        yield h
    finally:
        h.cleanup()


def _open_fds():
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - not Linux
        return 64


@pytest.fixture
def fd_limit():
    """``fd_limit(n)`` makes room for *n* more descriptors (RLIMIT_NOFILE soft
    limit, restored afterwards); it skips the test if the hard limit is too low."""
    if resource is None:  # pragma: no cover
        pytest.skip("no resource module: cannot raise RLIMIT_NOFILE")
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)

    def need(n):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = _open_fds() + n + 64
        if soft != resource.RLIM_INFINITY and soft >= want:
            return
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"needs about {want} file descriptors; the RLIMIT_NOFILE hard limit "
                        f"is {hard} (raise it with ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    yield need
    resource.setrlimit(resource.RLIMIT_NOFILE, saved)


def _stdlib_asyncore():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import asyncore
        except ImportError:
            return None
    return None if asyncore is simnet.asyncore else asyncore


# ---------------------------------------------------------------------------
# a very large map


def test_ten_thousand_channels_in_one_map(harness, fd_limit):
    """5,000 socket pairs, both ends channels of one map: the epoll loop
    delivers reads to exactly the channels whose peer wrote, fds above
    FD_SETSIZE included; select() refuses the map with ValueError."""
    pairs = 5_000
    fd_limit(2 * pairs)
    probes = []
    for i in range(pairs):
        a, b = harness.pair()
        probes.append(Probe(a, harness.map, f"a{i}", harness.log))
        probes.append(Probe(b, harness.map, f"b{i}", harness.log))
    assert len(harness.map) == 2 * pairs
    assert max(harness.map) >= 10_000 > 1024

    # write into every 37th channel's peer: the ends of a pair are each other's peer
    by_name = {p.name: p for p in probes}
    chosen = probes[::37] + [probes[-1]]
    expected = set()
    for p in chosen:
        peer_name = ("b" if p.name[0] == "a" else "a") + p.name[1:]
        by_name[peer_name].socket.send(p.name.encode())
        expected.add((p.name, "read", p.name.encode()))
    assert max(p.socket.fileno() for p in chosen) > 1024

    simnet.loop(timeout=0.0, poller="epoll", map=harness.map, count=3)

    assert set(harness.log) == expected
    assert len(harness.log) == len(expected)  # each exactly once
    assert len(harness.map) == 2 * pairs

    with pytest.raises(ValueError):
        simnet.loop(timeout=0.0, poller="select", map=harness.map, count=1)
    stdlib = _stdlib_asyncore()
    if stdlib is not None:  # the stdlib fails the same way on the same map
        with pytest.raises(ValueError):
            stdlib.loop(timeout=0.0, use_poll=False, map=harness.map, count=1)


def test_one_pass_delivers_every_ready_channel_like_poll2(harness, fd_limit):
    """With more than 1023 channels ready, one epoll pass handles all of them,
    as one poll2 pass does."""
    n = 1_500
    fd_limit(2 * n)
    for i in range(n):
        _, peer = harness.probe(f"p{i}")
        peer.send(b"x")
    poller = harness.poller()
    poller.poll(0.0)
    assert len(harness.log) == n


# ---------------------------------------------------------------------------
# persistent registrations


def test_pass_without_changes_leaves_counters_alone(harness):
    """After the first pass, passes where no predicate changed -- with or
    without events -- neither register nor modify anything."""
    quiet, _ = harness.probe("quiet")
    talker, talker_peer = harness.probe("talker")
    writer, _ = harness.probe("writer", read=True, write=True)
    harness.probe("neither", read=False, write=False)
    poller = harness.poller()

    poller.poll(0.0)
    # "neither" wants nothing: like poll2, it is not registered at all
    assert poller.registrations == 3
    assert poller.modifications == 0

    for round_ in range(3):
        talker_peer.send(b"hi %d" % round_)
        harness.log.clear()
        poller.poll(0.0)
        assert sorted(harness.log) == [("talker", "read", b"hi %d" % round_), ("writer", "write")]
        assert (poller.registrations, poller.modifications) == (3, 0)

    harness.log.clear()
    poller.poll(0.0)
    assert harness.log == [("writer", "write")]
    assert (poller.registrations, poller.modifications) == (3, 0)
    assert quiet in harness.map.values()


def test_writable_flip_is_exactly_one_modification(harness):
    """A channel whose writable() turns True costs one modification, and
    turning it back costs one more; nothing else moves."""
    flip, _ = harness.probe("flip")
    harness.probe("other")
    poller = harness.poller()
    poller.poll(0.0)
    assert (poller.registrations, poller.modifications) == (2, 0)

    flip.want_write = True
    poller.poll(0.0)
    assert harness.log == [("flip", "write")]
    assert (poller.registrations, poller.modifications) == (2, 1)

    poller.poll(0.0)  # still writable: no change
    assert harness.log == [("flip", "write")] * 2
    assert (poller.registrations, poller.modifications) == (2, 1)

    flip.want_write = False
    poller.poll(0.0)
    assert harness.log == [("flip", "write")] * 2
    assert (poller.registrations, poller.modifications) == (2, 2)

    poller.poll(0.0)
    assert (poller.registrations, poller.modifications) == (2, 2)


def test_channel_removed_from_map_is_dropped(harness):
    """A channel taken out of the map (socket still open and readable) gets
    no callbacks and is forgotten: putting it back registers it again."""
    gone, gone_peer = harness.probe("gone")
    harness.probe("stays")
    closed, _ = harness.probe("closed")
    poller = harness.poller()
    poller.poll(0.0)
    assert poller.registrations == 3

    gone.del_channel()
    gone._fileno = gone.socket.fileno()  # del_channel() forgets it; add_channel() needs it
    closed.close()
    gone_peer.send(b"while away")
    poller.poll(0.0)
    poller.poll(0.0)
    assert harness.log == []
    assert (poller.registrations, poller.modifications) == (3, 0)

    gone.add_channel()
    poller.poll(0.0)
    assert poller.registrations == 4  # registered anew: it had been dropped
    assert poller.modifications == 0
    assert harness.log == [("gone", "read", b"while away")]


def test_new_socket_reusing_a_closed_fd_is_registered_again(harness):
    """A channel closed and replaced, between two passes, by a new socket
    with the same fd number and the same predicates: the kernel dropped the
    old registration, so the poller must register the new socket, and its
    events must arrive."""
    old, _ = harness.probe("old")
    harness.probe("other")
    poller = harness.poller()
    poller.poll(0.0)
    assert poller.registrations == 2
    fd = old.socket.fileno()

    old.close()
    reused = None
    for _ in range(16):  # the kernel hands out the lowest free fd: normally at once
        a, b = harness.pair()
        if fd in (a.fileno(), b.fileno()):
            reused, peer = (a, b) if a.fileno() == fd else (b, a)
            break
    if reused is None:  # pragma: no cover - some other thread took the fd
        pytest.skip(f"fd {fd} was not reused by the next sockets")
    new = Probe(reused, harness.map, "new", harness.log)
    assert harness.map[fd] is new

    poller.poll(0.0)
    assert (poller.registrations, poller.modifications) == (3, 0)
    assert harness.log == []

    peer.send(b"to the new socket")
    poller.poll(0.0)
    assert harness.log == [("new", "read", b"to the new socket")]
    poller.poll(0.0)
    assert (poller.registrations, poller.modifications) == (3, 0)


# ---------------------------------------------------------------------------
# same callbacks as poll2


class _Role:
    """Mixin for the scenario's channels: log to ``self.log`` under ``self.role``."""

    def note(self, *event):
        self.log.append((self.role,) + event)

    def handle_error(self):
        raise


class _Listener(_Role, simnet.dispatcher):
    def __init__(self, map, log, sockets):
        simnet.dispatcher.__init__(self, map=map)
        self.role, self.log, self.sockets = "listener", log, sockets
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        sockets.append(self.socket)
        self.bind(("127.0.0.1", 0))
        self.listen(5)

    def handle_accepted(self, sock, addr):
        self.sockets.append(sock)
        self.note("accepted")
        _Served(sock, self._map, self.log)
        self.note("close")
        self.close()


class _Served(_Role, simnet.dispatcher_with_send):
    def __init__(self, sock, map, log):
        simnet.dispatcher_with_send.__init__(self, sock, map)
        self.role, self.log = "served", log

    def handle_read(self):
        data = self.recv(100)
        if data:
            self.note("read", data)
            self.send(data)

    def handle_close(self):
        self.note("close")
        self.close()


class _Client(_Role, simnet.dispatcher):
    def __init__(self, address, map, log, sockets):
        simnet.dispatcher.__init__(self, map=map)
        self.role, self.log = "client", log
        self.out = b""
        self.got = b""
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        sockets.append(self.socket)
        self.connect(address)

    def writable(self):
        return not self.connected or bool(self.out)

    def handle_connect(self):
        self.note("connect")
        self.out = b"ping"

    def handle_write(self):
        self.note("write", self.out)
        self.out = self.out[self.send(self.out):]

    def handle_read(self):
        self.got += self.recv(100)
        if self.got == b"ping":
            self.note("read", self.got)
            self.note("close")
            self.close()


def _scenario(harness, **loop_kwargs):
    """Run a small program to completion and return its callback log:
    a TCP connect/accept/echo/close, a socket pair whose peer writes and
    then shuts down, and a channel that is writable once."""
    log = []
    listener = _Listener(harness.map, log, harness.sockets)
    _Client(listener.socket.getsockname(), harness.map, log, harness.sockets)
    a, b = harness.pair()
    Probe(a, harness.map, "pipe", log)
    b.send(b"hello")
    b.shutdown(socket.SHUT_WR)
    c, _ = harness.pair()
    once = Probe(c, harness.map, "once", log, read=False, write=True)
    once.handle_write = lambda: (log.append(("once", "write")), once.close())

    simnet.loop(timeout=0.05, map=harness.map, count=200, **loop_kwargs)
    assert harness.map == {}, f"scenario did not finish: {harness.map}"
    return log


def _per_channel(log):
    out = {}
    for role, *event in log:
        out.setdefault(role, []).append(tuple(event))
    return out


def test_epoll_gives_the_same_callbacks_as_poll2(harness):
    """The same program under ``loop(use_poll=True)`` and
    ``loop(poller="epoll")`` sees the same callbacks, channel by channel
    and in the same order."""
    with_poll2 = _scenario(harness, use_poll=True)
    with_epoll = _scenario(harness, poller="epoll")
    expected = {
        "listener": [("accepted",), ("close",)],
        "client": [("connect",), ("write", b"ping"), ("read", b"ping"), ("close",)],
        "served": [("read", b"ping"), ("close",)],
        "pipe": [("read", b"hello"), ("close",)],
        "once": [("write",)],
    }
    assert _per_channel(with_poll2) == expected
    assert _per_channel(with_epoll) == expected
    assert sorted(with_poll2) == sorted(with_epoll)
