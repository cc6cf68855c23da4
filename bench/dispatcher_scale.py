"""100,000 dispatchers connected and accepted on one fake network.

N client dispatchers (``create_socket``, ``bind``, ``connect``, non-blocking)
and listening dispatchers (as on Linux, one source address has ~28,000
ephemeral ports and a backlog is capped at 4096: a source address per 20,000
clients, a listener per 4,000), whose ``handle_accept`` accepts until the backlog is
empty (the usual pattern for accept storms; the stdlib's default accepts one
per pass), each accepted socket wrapped in a handler dispatcher. The loop
(``net.run(poller="poll")``) runs until every client saw ``handle_connect``
and the server accepted all N. Runs in a fresh child process and reports wall
time (building the dispatchers, running the loop), loop passes, and peak RSS
per connection (two dispatchers and two fake sockets each). With
``--profile`` the child runs under cProfile and prints the top functions.

``--gc off`` / ``--gc freeze`` show what the cyclic garbage collector costs:
most of the time at this scale (see bench/PROFILE.md).

Target (issue 12): N = 100,000 in < 10 s.

    python bench/dispatcher_scale.py [-N 100000] [--profile] [--gc on|off|freeze]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import cProfile, json, pstats, resource, sys, time
import simnet
from simnet.fakesock import FakeNetwork

import gc
n, profile, gc_mode = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
if gc_mode == "off":
    gc.disable()
state = {"connected": 0, "accepted": 0, "passes": 0}


class Handler(simnet.dispatcher):
    def writable(self):
        return False

    def handle_error(self):
        raise


class Server(simnet.dispatcher):
    def writable(self):
        return False

    def handle_accept(self):
        while True:
            pair = self.accept()
            if pair is None:
                return
            Handler(pair[0], map=self._map)
            state["accepted"] += 1

    def handle_error(self):
        raise


class Client(simnet.dispatcher):
    def readable(self):
        return False

    def writable(self):
        return not self.connected

    def handle_connect(self):
        state["connected"] += 1

    def handle_write(self):
        pass

    def handle_error(self):
        raise


base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
prof = cProfile.Profile() if profile else None
with FakeNetwork(seed=0) as net:
    m = {}
    if prof: prof.enable()
    t0 = time.perf_counter()
    # As on Linux: one source address has ~28,000 ephemeral ports, and a
    # listen backlog is capped (somaxconn 4096): so a source address per
    # 20,000 clients and a listener per 4,000.
    ports = [80 + i for i in range((n + 3_999) // 4_000)]
    for port in ports:
        server = Server(map=m)
        server.create_socket()
        server.bind(("127.0.0.1", port))
        server.listen(4096)
    for i in range(n):
        c = Client(map=m)
        c.create_socket()
        c.bind((f"127.0.{i // 20_000}.2", 0))
        c.connect(("127.0.0.1", ports[i % len(ports)]))
    if gc_mode == "freeze":
        gc.freeze()  # what exists now is never scanned again
    t1 = time.perf_counter()

    def done():
        state["passes"] += 1
        return state["connected"] == n and state["accepted"] == n

    net.run(until=done, map=m, poller="poll", timeout=3600)
    t2 = time.perf_counter()
    if prof: prof.disable()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    channels = len(m)
    simnet.close_all(m)
if prof:
    pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
print(json.dumps({"n": n, "build_s": t1 - t0, "loop_s": t2 - t1, "passes": state["passes"] - 1,
                  "channels": channels, "peak_rss_kib": peak, "baseline_rss_kib": base}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-N", "--dispatchers", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--gc", choices=("on", "off", "freeze"), default="on",
                        help="the cyclic garbage collector: on (default), off for the whole "
                             "run, or gc.freeze() once the dispatchers are built")
    args = parser.parse_args(argv)
    if args.dispatchers < 1:
        parser.error("-N must be >= 1")
    out = subprocess.run([sys.executable, "-c", CHILD, str(args.dispatchers),
                          "1" if args.profile else "0", args.gc], capture_output=True, text=True, timeout=1200)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return 1
    if args.profile:
        print(out.stderr)
    r = json.loads(out.stdout)
    total = r["build_s"] + r["loop_s"]
    per_conn = (r["peak_rss_kib"] - r["baseline_rss_kib"]) * 1024 / r["n"]
    print(f"{r['n']:,} client dispatchers connected and accepted ({r['channels']:,} channels): "
          f"build {r['build_s']:.1f} s + loop {r['loop_s']:.1f} s ({r['passes']} passes) = "
          f"{total:.1f} s wall{' under cProfile' if args.profile else ''}, gc {args.gc}; peak RSS "
          f"{r['peak_rss_kib'] / 1024:.0f} MiB, {per_conn / 1024:.1f} KiB per connection "
          f"(2 dispatchers + 2 fake sockets)")
    ok = total < 10 or r["n"] != 100_000
    print(f"target: 100,000 in < 10 s -> {'ok' if total < 10 else 'ABOVE'} (absolute time on a "
          f"shared machine)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
