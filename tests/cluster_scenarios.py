"""Scenarios for tests/test_distributed.py, imported by name on Dask workers
(the tests start the workers with this directory on PYTHONPATH).

Each is simnet.examples.buggy's scenario behind a *gate*: when the
environment variable SIMNET_TEST_GATE names a directory (it does on the test
cluster's workers, never in the test process), the scenario can hold the
worker process that runs it, so a test can kill that worker, or press
Ctrl-C, while a chunk is running. Held or not, each run does exactly what
buggy.scenario does, so a cluster run and a local run must agree.
"""

from __future__ import annotations

import os
import time

from simnet.examples import buggy

#: The longest a held scenario waits for the test to act (then it fails loudly).
HOLD_LIMIT = 60.0


def _gate() -> str | None:
    return os.environ.get("SIMNET_TEST_GATE") or None


def _hold(flag: str, release: str | None) -> None:
    """Write this process's pid into *flag* (the test waits for it), then wait
    until *release* exists (or forever, if None: the test kills us)."""
    with open(flag + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.replace(flag + ".tmp", flag)
    deadline = time.monotonic() + HOLD_LIMIT
    while time.monotonic() < deadline:
        if release is not None and os.path.exists(release):
            return
        time.sleep(0.01)
    raise RuntimeError(f"held for {HOLD_LIMIT} s and nobody acted on {flag}")


def _first(path: str) -> bool:
    """True for the one caller, in any process, that creates *path*."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def killed_once(net) -> None:
    """The first run of this scenario on any worker holds its worker until the
    test kills it; every other run (the resubmitted chunk's too) goes on."""
    gate = _gate()
    if gate is not None and _first(os.path.join(gate, "killed_once.claim")):
        _hold(os.path.join(gate, "killed_once.pid"), None)
    buggy.scenario(net)


def held_per_worker(net) -> None:
    """The first run on each worker process holds it until the test creates
    ``release`` in the gate directory; so both workers are busy at once."""
    gate = _gate()
    if gate is not None and _first(os.path.join(gate, f"held.{os.getpid()}.claim")):
        _hold(os.path.join(gate, f"held.{os.getpid()}.pid"), os.path.join(gate, "release"))
    buggy.scenario(net)


def where(net) -> None:
    """Leaves a mark naming the process that ran it, then runs buggy's scenario."""
    gate = _gate()
    if gate is not None:
        mark = os.path.join(gate, f"ran.{os.getpid()}")
        if not os.path.exists(mark):
            open(mark, "w").close()
    buggy.scenario(net)
