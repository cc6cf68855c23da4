"""The reference the comparison tests use: CPython 3.11's asyncore/asynchat on
any Python (tests/stdlib_reference.py), and the skip when there is none."""

from __future__ import annotations

import os
import sys
import warnings

import pytest

import simnet
import stdlib_reference
from differential import harness


def test_the_reference_is_311s_modules_not_simnets():
    pair = stdlib_reference.modules()
    if pair is None:
        pytest.skip(stdlib_reference.SKIP_REASON)
    asyncore, asynchat = pair
    assert (asyncore.__name__, asynchat.__name__) == ("asyncore", "asynchat")
    assert asynchat.asyncore is asyncore
    assert asyncore is not simnet.asyncore and asynchat is not simnet.asynchat
    assert os.path.basename(asyncore.__file__) == "asyncore.py"
    if sys.version_info >= (3, 12):
        assert os.sep + "python3.11" + os.sep in asyncore.__file__
    # its dispatcher reads as the stdlib's, which the differential reports rely on
    d = asyncore.dispatcher(map={})
    assert repr(d) == "<asyncore.dispatcher at %#x>" % id(d)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="3.11 imports its own modules")
def test_loading_by_path_leaves_the_process_as_it_was():
    """On 3.12+, with simnet installed as asyncore: loading 3.11's files
    keeps simnet's modules in sys.modules and warnings._deprecated as it was
    (it refuses asyncore on 3.12+, so it is muted while they load)."""
    directory = stdlib_reference.reference_dir()
    if directory is None:
        pytest.skip(stdlib_reference.SKIP_REASON)
    deprecated = warnings._deprecated  # type: ignore[attr-defined]
    simnet.install()
    try:
        core, chat = stdlib_reference._load_by_path(directory)
        assert sys.modules["asyncore"] is simnet.asyncore
        assert sys.modules["asynchat"] is simnet.asynchat
    finally:
        simnet.uninstall()
    assert "asyncore" not in sys.modules and "asynchat" not in sys.modules
    assert warnings._deprecated is deprecated  # type: ignore[attr-defined]
    assert chat.asyncore is core and core.__file__ == os.path.join(directory, "asyncore.py")
    with pytest.raises(RuntimeError, match="slated for removal"):
        warnings._deprecated("asyncore", remove=(3, 12))  # type: ignore[attr-defined]


def test_the_directory_named_by_the_variable_is_searched(tmp_path, monkeypatch):
    for name in ("asyncore.py", "asynchat.py"):
        (tmp_path / name).write_text("")
    monkeypatch.setenv(stdlib_reference.ENV_VAR, str(tmp_path))
    found = stdlib_reference.reference_dir()
    if sys.version_info >= (3, 12):
        assert found == str(tmp_path)
    else:  # the interpreter's own stdlib comes first
        assert found == os.path.dirname(os.__file__)
    assert stdlib_reference.reference_dir("test/none_such.py") != str(tmp_path)


def test_without_a_reference_the_differential_tests_skip_saying_why(monkeypatch):
    monkeypatch.setitem(stdlib_reference._cache, "pair", None)
    with pytest.raises(pytest.skip.Exception) as info:
        harness._stdlib_modules()
    assert "CPython 3.11's asyncore/asynchat" in str(info.value)
    assert "removed in 3.12" in str(info.value) and stdlib_reference.ENV_VAR in str(info.value)
