"""Project-wide test set-up: every test must leave simnet's global state clean."""

import pytest

import simnet
from simnet import _state


@pytest.fixture(autouse=True)
def _simnet_clean_state():
    """Fail a test that leaves channels in the global map, timers pending, or a
    network entered; and clean up after it so the next test starts fresh."""
    yield
    problems = []
    if simnet.socket_map:
        problems.append(f"channels left in simnet.socket_map: {sorted(simnet.socket_map.values(), key=repr)!r}")
        simnet.close_all(ignore_all=True)
    if len(simnet.timers.real_timers):
        problems.append(f"{len(simnet.timers.real_timers)} timer(s) left pending on the real network")
        simnet.timers.real_timers.clear()
    if _state.current is not None:
        problems.append(f"network still entered: {_state.current!r}")
        _state.current = None
        _state._stack.clear()
        _state.refresh()
    if problems:
        pytest.fail("test left simnet state behind: " + "; ".join(problems), pytrace=False)
