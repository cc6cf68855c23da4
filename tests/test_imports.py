"""The package's import structure (issue 13, point 3).

Every module imports on its own in a fresh interpreter, and the imports run
one way: the module-level imports between simnet's modules form no circle,
the bottom layer (``_state``) imports nothing from simnet at run time, and
the drop-in ``simnet.asyncore`` never imports the networks built on it
(``simnet.real`` reaches it the other way, and fills in ``_state``'s hooks).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "simnet"


def _module_names() -> dict[str, Path]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = _module_names()
#: Modules that need an optional extra to import.
OPTIONAL = {"simnet.distributed": "dask"}


def _imports(name: str, *, lazy: bool) -> set[str]:
    """The simnet modules *name* imports: at module level (class bodies,
    ``if``/``try``/``with`` blocks included; ``if TYPE_CHECKING:`` blocks
    excluded) or, with *lazy*, also inside functions."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if lazy:
                    visit(node.body)
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == "simnet")
                continue
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                if base.split(".")[0] != "simnet":
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in MODULES else base)
                continue
            for field in ("body", "orelse", "finalbody"):
                visit(getattr(node, field, None) or [])
            for handler in getattr(node, "handlers", None) or []:
                visit(handler.body)

    visit(ast.parse(path.read_text()).body)
    # the package facade (simnet/__init__) imports everything: not an edge
    return {m for m in found if m in MODULES and m not in (name, "simnet")}


def _circles(lazy: bool) -> list[list[str]]:
    graph = {m: _imports(m, lazy=lazy) for m in MODULES if m != "simnet"}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return circles


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_alone_in_a_fresh_interpreter(module):
    extra = OPTIONAL.get(module)
    if extra is not None:
        pytest.importorskip(extra)
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, f"import {module} failed:\n{done.stderr}"


def test_module_level_imports_form_no_circle():
    assert _circles(lazy=False) == []


def test_state_is_the_bottom_layer():
    # (its Network type comes in under TYPE_CHECKING only)
    assert _imports("simnet._state", lazy=True) == set()


def test_timers_and_network_depend_one_way():
    assert _imports("simnet.timers", lazy=True) == {"simnet._state"}
    assert _imports("simnet.network", lazy=True) == {"simnet._state", "simnet.timers"}


def test_the_drop_in_asyncore_imports_only_the_bottom_layers():
    # simnet.real imports simnet.asyncore (RealNetwork.run and EpollPoller
    # drive its loop); asyncore reaches them through _state's hooks
    assert _imports("simnet.asyncore", lazy=True) <= {"simnet._state", "simnet.timers"}
    for module in ("simnet.real", "simnet.real.epoll"):
        assert "simnet.asyncore" in _imports(module, lazy=False)


def test_no_circle_among_asyncore_real_and_epoll_even_through_lazy_imports():
    involved = {"simnet.asyncore", "simnet.real", "simnet.real.epoll", "simnet._state",
                "simnet.network", "simnet.timers"}
    for circle in _circles(lazy=True):
        assert not involved & set(circle), circle


def test_the_real_network_fills_in_the_hooks_of_the_drop_in_module():
    code = ("import simnet.asyncore, simnet._state as s, simnet.real as r;"
            "assert s.make_real_network is r.RealNetwork;"
            "assert s.make_epoll_poller is r.EpollPoller;"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_trace_modules_have_one_home_and_the_old_names_alias_them():
    """Issue 13.1: the trace format and replay live in ``simnet.traces``; the
    old names are the same module objects (so a monkeypatch through either
    reaches both), and ``simnet.replay`` stays the function after
    ``import simnet.replay``."""
    code = (
        "import simnet.replay, simnet.trace, simnet\n"
        "import simnet.traces.trace as t, simnet.traces.replay as r\n"
        "assert simnet.trace is t and __import__('sys').modules['simnet.replay'] is r\n"
        "assert callable(simnet.replay) and simnet.replay is r.replay\n"
        "from simnet.trace import Trace; assert Trace is t.Trace\n"
        "import simnet.traces as p; assert p.TraceView.__module__ == 'simnet.traces.views'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert not (PACKAGE / "trace.py").read_text().count("def ")
    assert not (PACKAGE / "replay.py").read_text().count("def ")
