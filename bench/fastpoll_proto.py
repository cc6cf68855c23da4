"""A measured prototype of the fast path bench/PROFILE.md proposes: a fused
``poll()`` for maps whose channels are all sockets of the current fake network.

NOT wired into simnet: ``simnet/asyncore.py``'s ``poll()`` is being reworked
for fidelity on other branches, so this module only *monkeypatches* it, to
measure the gain and to run the test suite against it:

    python bench/fastpoll_proto.py                       # echo C=1 / C=100 ratios
    python -m pytest -p fastpoll_proto ...               # (bench/ on PYTHONPATH) suite on it

What it changes, and why it keeps asyncore's semantics: the stdlib pass asks
every channel ``readable()``/``writable()`` (building the r/w/e lists), then
``select()`` snapshots readiness, then dispatches. Here the snapshot is taken
in the same loop as the questions -- each channel's socket readiness is read
right after its predicates, before any handler runs, so every handler sees
the same snapshot select() would have given -- and the per-pass map lookup
(``network_for_map``) becomes a per-channel identity check (``net._fds[fd]
is obj.socket``). Whenever the pass cannot be fused (a socket of another
network or a real one, a fault plan, a shuffle, network events falling due,
nothing ready so the loop must wait), it finishes exactly as simnet's
``poll()`` does, reusing the lists it built (the predicates are never asked
twice).
"""

from __future__ import annotations

import os
import statistics
import sys

import simnet.asyncore as A
from simnet import _state

_orig_poll = A.poll
_read, _write, _exception = A.read, A.write, A._exception


def fast_poll(timeout=0.0, map=None):
    """``simnet.poll`` with the fused fast path (see the module docstring)."""
    if map is None:
        map = A.socket_map
    net = _state.current
    if not map or _state.simple or net is None or not net.is_fake or net._faulty or net.shuffle:
        return _orig_poll(timeout, map)
    fds = net._fds
    events = net._events
    fuse = not (events and events[0][0] <= net._now)
    r, w, e = [], [], []
    rr, wr = [], []
    for fd, obj in list(map.items()):
        is_r = obj.readable()
        is_w = obj.writable()
        if is_r:
            r.append(fd)
        if is_w and not obj.accepting:
            w.append(fd)
            want_w = True
        else:
            want_w = False
        if is_r or is_w:
            e.append(fd)
        if not fuse:
            continue
        s = fds.get(fd)
        if s is None or s is not getattr(obj, "socket", None):
            fuse = False  # not (only) this network's sockets: the ordinary path decides
            continue
        end = s._end
        if end is not None and not s._closed:
            if is_r and (end.rbuf or end.fin_rcvd or end.rd_shut or end.reset or end.err):
                rr.append(fd)
            if want_w and (end.wr_shut or end.reset or len(end.sq) < end.scap or end.err):
                wr.append(fd)
        else:
            if is_r and s._sel_r():
                rr.append(fd)
            if want_w and s._sel_w():
                wr.append(fd)
    if not fuse:
        owner = _state.network_for_map(map) or A._default_real()
    else:
        owner = net
    if owner.is_fake:
        owner._note_map(map)
    timers = owner.timers
    pending = timers._heap
    if fuse and (rr or wr):
        owner._stalled = 0
        tr = owner._tr
        if tr is not None:  # what FakeNetwork.select records
            tr += (5, owner._now, "ready", -1, rr, wr)
            if owner._tr_bytes > 1 << 26:
                owner.trace.digest_flat()
                owner._tr_bytes = 0
    else:
        if pending:
            timeout = timers.bound(timeout)[0]
        if not e:
            owner.sleep(timeout)
            if pending:
                timers.run_due()
            return
        if fuse and timeout == 0:
            # nothing ready and no wait: what FakeNetwork.select does then
            # (stall accounting), without computing readiness a second time
            owner._wait(0.0, _never)
            tr = owner._tr
            if tr is not None:
                tr += (5, owner._now, "ready", -1, [], [])
            if pending:
                timers.run_due()
            return
        rr, wr, _ = owner.select(r, w, e, timeout)
    for fd in rr:
        obj = map.get(fd)
        if obj is not None:
            _read(obj)
    for fd in wr:
        obj = map.get(fd)
        if obj is not None:
            _write(obj)
    if pending:
        timers.run_due()


def _never() -> bool:
    return False


def install() -> None:
    A.poll = fast_poll


def pytest_configure(config) -> None:  # as a pytest plugin (-p fastpoll_proto)
    install()


def main() -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import echo

    backend = echo.FakeBackend()
    std, fake = backend.contenders()
    print(f"load average {os.getloadavg()[0]:.1f} (shared machine); 5 interleaved repetitions; "
          "rate ratios, median [min - max]")
    for clients, trips in ((1, 30_000), (100, 400)):
        case = echo.Case("select", clients, trips)
        rates: dict[str, list[float]] = {"stdlib": [], "fake": [], "fused": []}
        for _ in range(5):
            rates["stdlib"].append(echo.run_echo(backend, std, case).rate)
            A.poll = _orig_poll
            rates["fake"].append(echo.run_echo(backend, fake, case).rate)
            A.poll = fast_poll
            rates["fused"].append(echo.run_echo(backend, fake, case).rate)
            A.poll = _orig_poll

        def ratio(a: str, b: str) -> str:
            rs = [x / y for x, y in zip(rates[a], rates[b])]
            return f"{statistics.median(rs):.2f}x [{min(rs):.2f} - {max(rs):.2f}]"

        print(f"C={clients:<4} fake/stdlib {ratio('fake', 'stdlib')}   fused/stdlib "
              f"{ratio('fused', 'stdlib')}   fused/fake {ratio('fused', 'fake')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
