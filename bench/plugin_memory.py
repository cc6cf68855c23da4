"""Memory the pytest plugin retains per test.

Writes a throwaway test module of N ``fake_net`` tests, each moving B bytes
through an echo server and back (the trace records every send and recv),
runs pytest on it in a fresh child process, and prints the child's resident
memory before the first test and after the last (both after a garbage
collection and ``malloc_trim``), and the Python memory still allocated at
the end (tracemalloc, from the first test on), each in all and per test. A plugin that keeps only what a
failing test's report needs retains next to nothing per passing test.
Usage::

    python bench/plugin_memory.py [--tests N] [--mbytes MB] [--fail K]

``--fail K`` makes the first K tests fail after moving their bytes (their
reports are kept, as pytest keeps every report).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap

TESTS = '''
import pytest
import simnet

SIZE = {size}
FAIL = {fail}


class Echo(simnet.dispatcher_with_send):
    def handle_read(self):
        self.send(self.recv(65536))


class Server(simnet.dispatcher):
    def __init__(self):
        super().__init__()
        self.create_socket()
        self.set_reuse_addr()
        self.bind(("127.0.0.1", 7000))
        self.listen(5)

    def handle_accepted(self, sock, addr):
        Echo(sock)


class Client(simnet.dispatcher_with_send):
    def __init__(self, data):
        super().__init__()
        self.got = 0
        self.create_socket()
        self.connect(("127.0.0.1", 7000))
        self.send(data)

    def handle_read(self):
        self.got += len(self.recv(65536))


@pytest.mark.parametrize("n", range({tests}))
def test_move(fake_net, n):
    Server()
    client = Client(b"x" * SIZE)
    fake_net.run(until=lambda: client.got == SIZE, timeout=600)
    assert n >= FAIL, "planted failure"
'''

CONFTEST = '''
import ctypes, gc, json, os, tracemalloc

def _trim():
    # give freed heap memory back to the system, so RSS shows what is held
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass

def _rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0

def pytest_collection_finish(session):
    gc.collect()
    _trim()
    session.config._simnet_rss_start = _rss()
    tracemalloc.start()
    session.config._simnet_py_start = tracemalloc.get_traced_memory()[0]

def pytest_sessionfinish(session):
    gc.collect()
    py = tracemalloc.get_traced_memory()[0]
    _trim()
    with open(os.environ["SIMNET_BENCH_OUT"], "w") as f:
        json.dump({{"start": session.config._simnet_rss_start, "end": _rss(),
                   "py": py - session.config._simnet_py_start}}, f)
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--mbytes", type=float, default=4.0)
    parser.add_argument("--fail", type=int, default=0)
    args = parser.parse_args()
    size = int(args.mbytes * 1024 * 1024)
    import json

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "test_memory.py"), "w") as f:
            f.write(TESTS.format(size=size, tests=args.tests, fail=args.fail))
        with open(os.path.join(tmp, "conftest.py"), "w") as f:
            f.write(textwrap.dedent(CONFTEST.format()))
        out = os.path.join(tmp, "out.json")
        env = dict(os.environ, SIMNET_BENCH_OUT=out)
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-p", "no:randomly", tmp], cwd=tmp, env=env,
                              capture_output=True, text=True)
        tail = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
        with open(out) as f:
            rss = json.load(f)
    mb = 1024 * 1024
    grown = rss["end"] - rss["start"]
    print(f"{args.tests} tests moving {args.mbytes:g} MB each ({args.fail} failing): {tail[0]}")
    print(f"RSS before the first test: {rss['start'] / mb:.1f} MB")
    print(f"RSS after the last test:   {rss['end'] / mb:.1f} MB")
    print(f"retained (RSS): {grown / mb:.1f} MB in all, {grown / args.tests / 1024:.0f} KB per test")
    py = rss["py"]
    print(f"retained (Python objects, tracemalloc): {py / mb:.2f} MB in all, "
          f"{py / args.tests / 1024:.1f} KB per test")


if __name__ == "__main__":
    main()
