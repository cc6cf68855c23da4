"""The table of known simnet bugs names tests that exist."""

from __future__ import annotations

import importlib

from .conftest import VARIANTS
from .known_bugs import KNOWN_BUGS
from .test_fake_runs import SESSIONS


def test_every_known_bug_entry_names_a_test_of_this_suite() -> None:
    for key, bugs in KNOWN_BUGS.items():
        path, _, rest = key.partition("::")
        function, _, param = rest.partition("[")
        module = importlib.import_module(f"{__package__}.{path.removesuffix('.py')}")
        assert callable(getattr(module, function, None)), f"{key}: no such test"
        if param:
            assert param.endswith("]") and param[:-1] in (*VARIANTS, *SESSIONS), f"{key}: no such variant"
        assert bugs and all(isinstance(bug, str) and bug for bug in bugs), key
