"""Off-suite runner of the op-sequence profiles: many sequences, counts, divergences.

Usage (from the repository root)::

    python -m tests.conformance.run_ops --profile tcp --examples 5000 --seed 1
    python -m tests.conformance.run_ops --profile all --examples 5000 --seed 1

For each profile it draws ``--examples`` sequences (Hypothesis, generation
only: no shrinking, a fixed ``--seed``), records each on the real loopback
backend and on the fake network, and prints how many sequences and ops ran
and how many diverged. A divergence is confirmed by recording the real side
a second time (a sequence whose real recording is not reproducible is
counted as "unstable", not as a divergence). The first ``--show``
divergences are printed side by side. Exit status 1 if any diverged.
"""

from __future__ import annotations

import argparse
import sys
import time

from hypothesis import HealthCheck, Phase, given, seed, settings

from .backends import FakeBackend, RealBackend
from .profiles import PROFILES, Profile, diff_lines


def run_profile(profile: Profile, examples: int, rng_seed: int, show: int) -> dict:
    stats = {"sequences": 0, "ops": 0, "diverged": 0, "unstable": 0, "shown": []}

    @seed(rng_seed)
    @settings(max_examples=examples, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(ops=profile.sequences)
    def check(ops):
        stats["sequences"] += 1
        stats["ops"] += len(ops)
        reference = profile.record(RealBackend, ops)
        got = profile.record(FakeBackend, ops)
        if got == reference:
            return
        if profile.record(RealBackend, ops) != reference:
            stats["unstable"] += 1
            return
        stats["diverged"] += 1
        if len(stats["shown"]) < show:
            stats["shown"].append(diff_lines(ops, reference, got))

    check()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.run_ops",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="all",
                        help=f"one of {', '.join(PROFILES)}, or 'all'")
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show", type=int, default=3, help="divergences to print per profile")
    args = parser.parse_args(argv)
    if args.profile != "all" and args.profile not in PROFILES:
        parser.error(f"--profile: unknown profile {args.profile!r}; "
                     f"choose from {', '.join(PROFILES)} or 'all'")
    if args.examples < 1:
        parser.error(f"--examples must be >= 1, got {args.examples}")
    names = list(PROFILES) if args.profile == "all" else [args.profile]
    failed = False
    for name in names:
        t0 = time.monotonic()
        stats = run_profile(PROFILES[name], args.examples, args.seed, args.show)
        took = time.monotonic() - t0
        print(f"profile {name}: {stats['sequences']} sequences, {stats['ops']} ops, "
              f"{stats['diverged']} diverged, {stats['unstable']} unstable on real "
              f"(seed {args.seed}, {took:.0f} s)", flush=True)
        for text in stats["shown"]:
            print(text, "\n", flush=True)
        failed = failed or bool(stats["diverged"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
