"""The README's fake-network examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
          if "FakeNetwork" in b]


def test_readme_has_fake_network_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index):
    namespace: dict = {}
    exec(compile(BLOCKS[index], f"README.md example {index}", "exec"), namespace)
    import inspect

    for name, value in list(namespace.items()):
        # examples that take pytest fixtures are run by test_plugin's pytester tests
        if name.startswith("test_") and callable(value) and not inspect.signature(value).parameters:
            value()
