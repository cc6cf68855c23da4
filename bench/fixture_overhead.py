"""What the ``fake_net`` fixture costs an empty test, in a 1,000-test session.

Writes two test files into a temporary directory (its own rootdir, so no
conftest of this repository is involved): N empty tests taking ``fake_net``,
and N empty tests taking no fixture. Each is run as a fresh
``python -m pytest -q -p no:cacheprovider`` session (the plugin is loaded
from its entry point, as in a user's project), interleaved R times, and the
wall times compared:

* **session ratio**: wall time of the fake_net session / the plain session
  (the target of issue 12: at most 2x, with N = 1,000);
* **per-test ratio**: marginal cost of one more test, from sessions of N and
  N/5 tests ((T(N) - T(N/5)) / (0.8 N)), fake_net / plain -- start-up and
  collection of the interpreter and pytest cancel out.

``--profile`` instead runs the fake_net session in this process under
cProfile and prints where its time goes.

    python bench/fixture_overhead.py [-N 1000] [-R 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time

FAKE = "def test_{i}(fake_net):\n    pass\n\n\n"
PLAIN = "def test_{i}():\n    pass\n\n\n"


def write_tests(d: str, n: int) -> dict[str, str]:
    paths = {}
    for kind, body in (("fake", FAKE), ("plain", PLAIN)):
        for count in (n, max(1, n // 5)):
            path = os.path.join(d, f"test_{kind}_{count}.py")
            with open(path, "w") as f:
                f.write("".join(body.format(i=i) for i in range(count)))
            paths[f"{kind}{count}"] = path
    with open(os.path.join(d, "pytest.ini"), "w") as f:
        f.write("[pytest]\n")
    return paths


def session(d: str, path: str, expect: int) -> float:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path],
                         cwd=d, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if out.returncode != 0 or f"{expect} passed" not in out.stdout:
        raise SystemExit(f"session {path} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-N", "--tests", type=int, default=1000)
    parser.add_argument("-R", "--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the fake_net session in this process instead")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    if args.tests < 5 or args.repeat < 1:
        parser.error("-N must be >= 5 and -R >= 1")
    n, small = args.tests, args.tests // 5
    with tempfile.TemporaryDirectory() as d:
        paths = write_tests(d, n)
        if args.profile:
            import pytest

            os.chdir(d)
            prof = cProfile.Profile()
            prof.enable()
            pytest.main(["-q", "-p", "no:cacheprovider", paths[f"fake{n}"]])
            prof.disable()
            out = io.StringIO()
            st = pstats.Stats(prof, stream=out)
            st.sort_stats("cumulative").print_stats(args.top)
            st.sort_stats("tottime").print_stats(args.top)
            print(out.getvalue())
            return 0
        times: dict[str, list[float]] = {k: [] for k in paths}
        for _ in range(args.repeat):
            for key, path in paths.items():
                times[key].append(session(d, path, n if key.endswith(str(n)) else small))
    med = statistics.median
    ratios = [f / p for f, p in zip(times[f"fake{n}"], times[f"plain{n}"])]
    marg = {k: [(a - b) / (n - small) for a, b in zip(times[f"{k}{n}"], times[f"{k}{small}"])]
            for k in ("fake", "plain")}
    per_test = med(marg["fake"]) / med(marg["plain"])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.1f} (a shared machine: read the ratios); {args.repeat} "
          f"interleaved repetitions")
    print(f"  {n} empty tests, plain session: {med(times[f'plain{n}']):.2f} s; fake_net session: "
          f"{med(times[f'fake{n}']):.2f} s")
    print(f"  session ratio fake_net/plain: {med(ratios):.2f}x [{min(ratios):.2f} - {max(ratios):.2f}]"
          f"  target <= 2x {'ok' if med(ratios) <= 2 else 'ABOVE'}")
    print(f"  per test (marginal, from {n} and {small} tests): plain {med(marg['plain']) * 1e3:.2f} ms, "
          f"fake_net {med(marg['fake']) * 1e3:.2f} ms -> {per_test:.2f}x")
    return 0 if med(ratios) <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
