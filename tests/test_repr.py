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

import simnet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cpython_test_asyncore_test_repr_passes_after_install():
    """Runs CPython 3.11's own Lib/test/test_asyncore.py ``test_repr`` (and the
    other DispatcherTests) against simnet, installed as ``asyncore``."""
    code = textwrap.dedent("""
        import sys, unittest, warnings
        import simnet
        simnet.install()
        warnings.simplefilter("ignore", DeprecationWarning)
        from test import test_asyncore
        assert test_asyncore.asyncore is simnet.asyncore, test_asyncore.asyncore
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(test_asyncore.DispatcherTests)
        names = [t.id() for t in suite]
        assert "test.test_asyncore.DispatcherTests.test_repr" in names, names
        result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
        sys.exit(0 if result.wasSuccessful() else 1)
    """)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
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
