"""Fixtures of the conformance suite.

``backend`` is parametrised over :data:`.backends.BACKENDS`: every test runs
once per backend (test ids ``[real]``, later ``[fake]``). After each test the
backend closes every socket it handed out, and the fixture fails the test if
the process holds a socket file descriptor it did not hold before: the suite
must not leak sockets. A watchdog dumps all stacks and exits if one test runs
longer than ``WATCHDOG_SECONDS``: a blocking call that never returns would
otherwise hang the run (every wait in the suite is bounded, so this only
fires on a broken backend).
"""

from __future__ import annotations

import faulthandler
import socket
import sys

import pytest

from .backends import BACKENDS, Backend, open_socket_fds

WATCHDOG_SECONDS = 60


@pytest.fixture(params=BACKENDS, ids=lambda cls: cls.name)
def backend(request: pytest.FixtureRequest):
    before = open_socket_fds()
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=sys.__stderr__)
    b: Backend = request.param()
    try:
        yield b
    finally:
        b.close_all()
        faulthandler.cancel_dump_traceback_later()
    leaked = open_socket_fds() - before
    assert not leaked, f"sockets left open by the test: fds {sorted(leaked)}"


@pytest.fixture(params=[socket.AF_INET, socket.AF_INET6], ids=["v4", "v6"])
def inet(request: pytest.FixtureRequest, backend: Backend) -> int:
    """An IP family the backend supports (IPv6 skipped where unavailable)."""
    if not backend.supports(request.param):
        pytest.skip("IPv6 loopback unavailable")
    return request.param
