"""Peak memory of 10,000 concurrent connections on one fake network.

Runs the workload in a fresh child process (so the figure is its own peak
RSS, not this process's) and prints connections, sockets, peak RSS and the
virtual vs wall time it took. Usage::

    python bench/fake_scale.py [--connections N] [--bytes B]

Each connection carries B bytes each way (default 64) with every socket
kept open until the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import simnet
from simnet.fakesock import FakeNetwork

n, size = int(sys.argv[1]), int(sys.argv[2])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
wall = time.perf_counter()
with FakeNetwork(seed=0) as net:
    listener = net.socket()
    listener.bind(("127.0.0.1", 80))
    listener.listen(4096)
    clients, servers = [], []
    for _ in range(n):
        c = net.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", 80))
        clients.append(c)
    while len(servers) < n:
        servers.append(listener.accept()[0])   # blocking: runs the simulation
    payload = b"x" * size
    for c in clients:
        c.send(payload)
    for s in servers:
        assert s.recv(size) == payload
        s.send(payload)
    for c in clients:
        c.setblocking(True)
        assert c.recv(size) == payload
    open_sockets = len(net.sockets)
    virtual = net.time()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"connections": n, "sockets": open_sockets, "peak_rss_kib": peak,
                  "baseline_rss_kib": base, "virtual_s": virtual,
                  "wall_s": time.perf_counter() - wall}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--bytes", type=int, default=64)
    args = parser.parse_args(argv)
    if args.connections < 1 or args.bytes < 1:
        parser.error("--connections and --bytes must be >= 1")
    out = subprocess.run([sys.executable, "-c", CHILD, str(args.connections), str(args.bytes)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return 1
    r = json.loads(out.stdout)
    mib = r["peak_rss_kib"] / 1024
    print(f"{r['connections']} connections ({r['sockets']} fake sockets open at once): "
          f"peak RSS {mib:.0f} MiB (interpreter + simnet before the run: "
          f"{r['baseline_rss_kib'] / 1024:.0f} MiB); "
          f"{r['virtual_s']:.1f} virtual s in {r['wall_s']:.1f} wall s")
    limit = 1024
    print(f"target: under {limit} MiB -> {'ok' if mib < limit else 'ABOVE'}")
    return 0 if mib < limit else 1


if __name__ == "__main__":
    sys.exit(main())
