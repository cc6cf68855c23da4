"""Reprs of dispatchers read as the stdlib's (issue 9 item 7).

CPython prints ``<module.qualname [state] [addr] at 0x...>`` with the class's
``__module__``. After ``simnet.install()`` simnet's modules *are*
``asyncore``/``asynchat``, so the reprs say so; without it they name
``simnet.asyncore`` (the module the class really lives in).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import simnet
import stdlib_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _test_asyncore_file() -> str | None:
    """CPython 3.11's Lib/test/test_asyncore.py: None means the running
    interpreter's own (up to 3.11); on 3.12+, which dropped it with asyncore,
    an installed 3.11's (the test skips when there is none)."""
    if stdlib_reference.IN_STDLIB:
        return None
    directory = stdlib_reference.reference_dir("test/test_asyncore.py")
    if directory is None:
        pytest.skip(stdlib_reference.SKIP_REASON.replace("asyncore/asynchat", "test_asyncore.py"))
    return os.path.join(directory, "test", "test_asyncore.py")


def test_cpython_test_asyncore_test_repr_passes_after_install():
    """Runs CPython 3.11's own Lib/test/test_asyncore.py ``test_repr`` (and the
    other DispatcherTests) against simnet, installed as ``asyncore``; on
    3.12+ the file is an installed 3.11's, run on the running interpreter's
    ``test.support`` (which still has every helper it uses)."""
    code = textwrap.dedent("""
        import importlib.util, sys, unittest, warnings
        import simnet
        simnet.install()
        warnings.simplefilter("ignore", DeprecationWarning)
        if len(sys.argv) > 1:  # 3.12+: load 3.11's file as test.test_asyncore
            import test
            spec = importlib.util.spec_from_file_location("test.test_asyncore", sys.argv[1])
            test_asyncore = importlib.util.module_from_spec(spec)
            sys.modules["test.test_asyncore"] = test.test_asyncore = test_asyncore
            spec.loader.exec_module(test_asyncore)
        else:
            from test import test_asyncore
        assert test_asyncore.asyncore is simnet.asyncore, test_asyncore.asyncore
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(test_asyncore.DispatcherTests)
        names = [t.id() for t in suite]
        assert "test.test_asyncore.DispatcherTests.test_repr" in names, names
        result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
        sys.exit(0 if result.wasSuccessful() else 1)
    """)
    path = _test_asyncore_file()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code] + ([path] if path else []),
                          capture_output=True, text=True, timeout=120, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "test_repr (test.test_asyncore.DispatcherTests.test_repr) ... ok" in out


def test_repr_names_the_module_the_program_imported():
    d = simnet.asyncore.dispatcher()
    chat = simnet.asynchat.async_chat()
    assert repr(d) == "<simnet.asyncore.dispatcher at %#x>" % id(d)
    assert repr(chat) == "<simnet.asynchat.async_chat at %#x>" % id(chat)
    simnet.install()
    try:
        assert repr(d) == "<asyncore.dispatcher at %#x>" % id(d)
        assert repr(chat) == "<asynchat.async_chat at %#x>" % id(chat)

        class Mine(simnet.dispatcher):
            pass

        mine = Mine()
        # a program's own subclass keeps its own module, as in CPython
        assert repr(mine) == "<%s.%s at %#x>" % (__name__, Mine.__qualname__, id(mine))
    finally:
        simnet.uninstall()
    assert repr(d) == "<simnet.asyncore.dispatcher at %#x>" % id(d)
