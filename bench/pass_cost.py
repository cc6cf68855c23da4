"""Where one loop pass goes: the pieces of ``poll()`` timed alone, fake vs kernel.

A map like the echo benchmark's at C=1 -- a listening server, a client and
the server's handler for it (three channels) -- with 64 bytes waiting in the
handler's socket, so every pass has one channel ready. The pieces are timed
one by one (``timeit``, best of R, interleaved), on simnet's fake network and
on the stdlib over real loopback:

* ``scan``: asking each channel ``readable()``/``writable()`` and building
  the r/w/e lists (the same Python loop in both);
* ``network_for_map``: simnet's lookup of the network that owns the map (the
  stdlib has none; simnet on the default real network skips it too);
* ``select``: the fake ``FakeNetwork.select`` vs ``select.select`` with the
  same lists (one fd ready, timeout 0);
* ``poll pass``: a whole ``poll(0.0, map)`` whose read handler does nothing
  (so the state, and so every pass, stays the same); ``poll2 pass`` the same
  with ``poll2``;
* ``send+recv``: ``sock.send(64 B)`` then the peer's ``recv(65536)``.

    python bench/pass_cost.py [-R 5] [-n 20000]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import timeit
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import echo  # noqa: E402


def build(mod: Any, fake: bool) -> tuple[dict, Any, Any, Any]:
    """(map, client socket, handler socket, network or None) in the steady state."""
    class Quiet(mod.dispatcher):
        def handle_read(self) -> None:  # leave the data there: every pass alike
            pass

        def writable(self) -> bool:
            return False

        def handle_error(self) -> None:
            raise

    class Listener(mod.dispatcher):
        def writable(self) -> bool:
            return False

        def handle_error(self) -> None:
            raise

    m: dict = {}
    net = None
    if fake:
        from simnet.fakesock import FakeNetwork

        net = FakeNetwork(seed=1)
        net.__enter__()
        lst = net.socket()
        lst.bind(("127.0.0.1", 80))
    else:
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    cli = net.socket() if fake else socket.socket()
    cli.connect(lst.getsockname())
    srv = lst.accept()[0]
    for s in (lst, cli, srv):
        s.setblocking(False)
    Listener(lst, m).accepting = True
    Quiet(cli, m)
    Quiet(srv, m)
    cli.send(b"x" * 64)
    if net is not None:
        net.block(lambda: bool(srv._end.rbuf), 1.0, "settle")
    else:
        import select
        select.select([srv], [], [], 1.0)
    return m, cli, srv, net


def scan(m: dict) -> tuple[list, list, list]:
    r, w, e = [], [], []
    for fd, obj in list(m.items()):
        is_r = obj.readable()
        is_w = obj.writable()
        if is_r:
            r.append(fd)
        if is_w and not obj.accepting:
            w.append(fd)
        if is_r or is_w:
            e.append(fd)
    return r, w, e


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-R", "--repeat", type=int, default=5)
    parser.add_argument("-n", "--number", type=int, default=20000)
    args = parser.parse_args(argv)
    import select

    import simnet.asyncore as sim
    from simnet import _state

    std = echo.import_stdlib_asyncore()
    fm, fcli, fsrv, net = build(sim, fake=True)
    keep = net.timers.call_later(3600, lambda: None)  # not a deadlock: see bench/idle.py
    rm, rcli, rsrv, _ = build(std, fake=False)
    fr, fw, fe = scan(fm)
    rr, rw, re_ = scan(rm)
    assert net.select(fr, fw, fe, 0.0)[0] and select.select(rr, rw, re_, 0.0)[0]
    payload = b"y" * 64
    fcli_sock, rcli_sock = fcli, rcli

    def fsr() -> None:
        fcli_sock.send(payload)
        fsrv.recv(65536)

    def rsr() -> None:
        rcli_sock.send(payload)
        rsrv.recv(65536)

    # The state never changes from one call to the next, so the fake network
    # would count each pass as an idle one (and end the run as a livelock):
    # forget the last pass's mark first, as any pass that did work would.
    def fselect() -> Any:
        net._mark = None
        return net.select(fr, fw, fe, 0.0)

    def fpoll() -> None:
        net._mark = None
        sim.poll(0.0, fm)

    def fpoll2() -> None:
        net._mark = None
        sim.poll2(0.0, fm)

    pieces = [
        ("scan (readable/writable x3)", lambda: scan(fm), lambda: scan(rm)),
        ("network_for_map", lambda: _state.network_for_map(fm), None),
        ("select, 1 of 3 ready", fselect, lambda: select.select(rr, rw, re_, 0.0)),
        ("poll(0.0, map) pass", fpoll, lambda: std.poll(0.0, rm)),
        ("poll2(0.0, map) pass", fpoll2, lambda: std.poll2(0.0, rm)),
        ("send 64 B + peer recv", fsr, rsr),
    ]
    best: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for name, f, r in pieces:
            for side, fn in (("fake", f), ("real", r)):
                if fn is None:
                    continue
                t = timeit.timeit(fn, number=args.number) / args.number
                key = f"{name}|{side}"
                best[key] = min(best.get(key, t), t)
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f} (shared "
          f"machine); best of {args.repeat} x {args.number} calls; microseconds per call")
    print(f"{'piece':<30}{'simnet fake':>12}{'stdlib real':>12}{'fake/real':>11}")
    for name, f, r in pieces:
        fk = best[f"{name}|fake"] * 1e6
        if r is None:
            print(f"{name:<30}{fk:12.2f}{'-':>12}{'-':>11}")
        else:
            rl = best[f"{name}|real"] * 1e6
            print(f"{name:<30}{fk:12.2f}{rl:12.2f}{fk / rl:10.2f}x")
    keep.cancel()
    sim.close_all(fm)
    std.close_all(rm)
    net.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
