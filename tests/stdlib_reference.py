"""CPython 3.11's ``asyncore``/``asynchat``: the reference simnet's drop-ins are
compared with, on whatever Python runs the tests.

Up to 3.11 they are the running interpreter's own stdlib modules. Python 3.12
removed them, so there they are *loaded by path* from a CPython 3.11 installed
on the machine (pyenv, ``/usr/lib``, ``/usr/local/lib``, or the directory named
by ``$SIMNET_REFERENCE_STDLIB``). Nothing is copied into this repository: the
installed files are executed where they are.

They are pure Python and use nothing 3.12/3.13 removed; the one obstacle is
their first line of work, ``warnings._deprecated(__name__, ..., remove=(3, 12))``,
which on 3.12+ raises ``RuntimeError`` ("slated for removal") instead of
warning. While they load, ``warnings._deprecated`` is a no-op (3.11 would only
have issued the DeprecationWarning the test suite ignores anyway).

When no copy is found, :func:`modules` returns ``None`` and tests skip with
:data:`SKIP_REASON`.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
import warnings
from types import ModuleType

#: True where the running interpreter still has the modules (3.11 and older).
IN_STDLIB = sys.version_info < (3, 12)

#: The variable naming a directory holding 3.11's asyncore.py and asynchat.py.
ENV_VAR = "SIMNET_REFERENCE_STDLIB"

_cache: dict[str, tuple[ModuleType, ModuleType] | None] = {}


def _version_key(directory: str) -> tuple[int, ...]:
    """Sort key: the patch version in a pyenv path (``.../3.11.7/lib/...``)."""
    for part in directory.split(os.sep):
        if part.startswith("3.11."):
            try:
                return tuple(int(x) for x in part.split("."))
            except ValueError:
                pass
    return (0,)


def candidate_dirs() -> list[str]:
    """Where a CPython 3.11 stdlib may be installed, best first: the
    running interpreter's own (up to 3.11), ``$SIMNET_REFERENCE_STDLIB``,
    pyenv's 3.11.x (newest first), then the system's."""
    found = []
    if IN_STDLIB:
        import sysconfig

        found.append(sysconfig.get_paths()["stdlib"])
    if os.environ.get(ENV_VAR):
        found.append(os.environ[ENV_VAR])
    pyenv = os.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv")
    found += sorted(glob.glob(os.path.join(pyenv, "versions", "3.11*", "lib", "python3.11")),
                    key=_version_key, reverse=True)
    found += ["/usr/local/lib/python3.11", "/usr/lib/python3.11"]
    return found


def reference_dir(*also: str) -> str | None:
    """The first candidate directory holding asyncore.py and asynchat.py (and
    the files *also* names, relative to it, e.g. ``test/test_asyncore.py``)."""
    for directory in candidate_dirs():
        if all(os.path.isfile(os.path.join(directory, name)) for name in ("asyncore.py", "asynchat.py") + also):
            return directory
    return None


def _exec(name: str, directory: str) -> ModuleType:
    path = os.path.join(directory, f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_by_path(directory: str) -> tuple[ModuleType, ModuleType]:
    """Execute *directory*'s asyncore.py and asynchat.py as modules named
    ``asyncore``/``asynchat`` (their reprs then read as the stdlib's), the
    latter's ``import asyncore`` given the former; ``sys.modules`` is left as
    it was (a ``simnet.install()`` elsewhere stays in force)."""
    saved = {name: sys.modules.get(name) for name in ("asyncore", "asynchat")}
    deprecated = warnings._deprecated  # type: ignore[attr-defined]
    warnings._deprecated = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    try:
        core = _exec("asyncore", directory)
        sys.modules["asyncore"] = core
        chat = _exec("asynchat", directory)
    finally:
        warnings._deprecated = deprecated  # type: ignore[attr-defined]
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    assert chat.asyncore is core
    return core, chat


def modules() -> tuple[ModuleType, ModuleType] | None:
    """``(asyncore, asynchat)`` of CPython 3.11 (or older, when that runs the
    tests), or ``None`` when this machine has no copy. Loaded once per process."""
    if "pair" not in _cache:
        if IN_STDLIB:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    import asynchat
                    import asyncore
                except ImportError:  # pragma: no cover -- a Python built without them
                    _cache["pair"] = None
                else:
                    _cache["pair"] = (asyncore, asynchat)
        else:
            directory = reference_dir()
            _cache["pair"] = None if directory is None else _load_by_path(directory)
    return _cache["pair"]


#: Why reference tests skip when :func:`modules` is ``None``.
SKIP_REASON = (f"the reference is CPython 3.11's asyncore/asynchat: Python "
               f"{sys.version_info[0]}.{sys.version_info[1]} has none (removed in 3.12) and no "
               f"Python 3.11 stdlib was found (pyenv, /usr/lib, /usr/local/lib or ${ENV_VAR})")
