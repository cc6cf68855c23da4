"""Fixtures of the differential suite."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from .harness import run_each, run_everywhere


@pytest.fixture(params=[False, True], ids=["select", "poll"])
def use_poll(request):
    """Run the test with ``loop(use_poll=False)`` (select) and ``True`` (poll)."""
    return request.param


class Differential:
    """A scenario runner bound to one loop flavour (the set-up every
    differential test repeated): ``everywhere(scenario, **params)`` runs it
    on every target and asserts equal recordings; ``each`` returns them all."""

    def __init__(self, use_poll: bool) -> None:
        self.use_poll = use_poll

    def everywhere(self, scenario: Callable[..., None], **params: Any) -> dict[str, list[tuple]]:
        return run_everywhere(scenario, use_poll=self.use_poll, **params)

    def each(self, scenario: Callable[..., None], **params: Any) -> dict[str, dict[str, list[tuple]]]:
        return run_each(scenario, use_poll=self.use_poll, **params)

    def __repr__(self) -> str:
        return f"Differential(use_poll={self.use_poll})"


@pytest.fixture
def differential(use_poll) -> Differential:
    """Run scenarios on every target with this test's ``use_poll`` (select,
    then poll): ``differential.everywhere(scenario, **params)``."""
    return Differential(use_poll)
