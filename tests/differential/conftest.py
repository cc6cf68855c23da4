"""Fixtures of the differential suite."""

import pytest


@pytest.fixture(params=[False, True], ids=["select", "poll"])
def use_poll(request):
    """Run the test with ``loop(use_poll=False)`` (select) and ``True`` (poll)."""
    return request.param
