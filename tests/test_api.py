"""The drop-in modules' surface: names, install(), monkeypatching, misuse errors.

Where behaviour is compared with the stdlib, the stdlib modules (Python 3.11;
on 3.12+ an installed 3.11's, see stdlib_reference.py) are imported here, in
tests only; simnet itself never imports them.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path

import pytest

import simnet
import simnet.asynchat as sasynchat
import simnet.asyncore as sasyncore
import stdlib_reference

ROOT = Path(__file__).resolve().parent.parent

# 3.11's modules; on 3.12+ (which removed them) loaded from an installed 3.11, if any
std_asyncore, std_asynchat = stdlib_reference.modules() or (None, None)

needs_stdlib = pytest.mark.skipif(std_asyncore is None, reason=stdlib_reference.SKIP_REASON)


def _public(mod: types.ModuleType) -> set[str]:
    return {name for name in vars(mod) if not name.startswith("_")}


@needs_stdlib
@pytest.mark.parametrize("ours, theirs", [(sasyncore, "asyncore"), (sasynchat, "asynchat")])
def test_drop_in_modules_have_exactly_the_stdlib_public_names(ours, theirs):
    std = std_asyncore if theirs == "asyncore" else std_asynchat
    assert _public(ours) == _public(std)


@needs_stdlib
def test_private_helpers_apps_reach_for_exist():
    for name in ("_exception", "_DISCONNECTED", "_strerror", "_reraised_exceptions"):
        assert hasattr(sasyncore, name), name
    assert sasyncore._DISCONNECTED == std_asyncore._DISCONNECTED
    assert sasyncore.dispatcher.ignore_log_types == std_asyncore.dispatcher.ignore_log_types


def test_package_reexports_the_same_objects():
    assert simnet.dispatcher is sasyncore.dispatcher
    assert simnet.socket_map is sasyncore.socket_map
    assert simnet.async_chat is sasynchat.async_chat
    assert sasynchat.asyncore is sasyncore
    assert issubclass(simnet.async_chat, simnet.dispatcher)
    for name in simnet.__all__:
        assert hasattr(simnet, name), name


def test_simnet_never_imports_the_stdlib_modules():
    """Import simnet and run a loop with the stdlib modules made unimportable:
    any run-time import of them would fail."""
    code = (
        "import sys; sys.modules['asyncore'] = None; sys.modules['asynchat'] = None\n"
        "import simnet, simnet.asyncore, simnet.asynchat\n"
        "m = {}\n"
        "d = simnet.dispatcher(map=m); d.create_socket(); d.bind(('127.0.0.1', 0)); d.listen(1)\n"
        "simnet.loop(0, map=m, count=1); simnet.loop(0, map=m, count=1, use_poll=True)\n"
        "simnet.loop(0, map=m, count=1, poller='epoll'); d.close()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_importing_simnet_emits_no_deprecation_warning():
    code = ("import warnings; warnings.simplefilter('error')\n"
            "import simnet, simnet.asyncore, simnet.asynchat; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


# -- install() -----------------------------------------------------------------

def test_install_registers_and_uninstall_restores():
    before = (sys.modules.get("asyncore"), sys.modules.get("asynchat"))
    try:
        simnet.install()
        simnet.install()  # twice is harmless
        import asynchat
        import asyncore

        assert asyncore is sasyncore and asynchat is sasynchat
    finally:
        simnet.uninstall()
    assert (sys.modules.get("asyncore"), sys.modules.get("asynchat")) == before


def _run_legacy_app(python: str) -> subprocess.CompletedProcess:
    code = (
        "import runpy, sys, simnet\n"
        "simnet.install()\n"
        f"sys.argv = [{str(ROOT / 'tests/apps/legacy_chat.py')!r}]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([python, "-W", "error::DeprecationWarning", "-c", code],
                          capture_output=True, text=True, timeout=120, env=env)


def test_unmodified_asyncore_program_runs_after_install():
    """tests/apps/legacy_chat.py only does `import asyncore, asynchat`."""
    out = _run_legacy_app(sys.executable)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "replies: ['250 HELLO', '250 WORLD', '221 bye']" in out.stdout
    assert "simnet/asyncore.py" in out.stdout  # it ran on simnet, not the stdlib


def _python_312_plus() -> str | None:
    """A Python 3.12+ interpreter on this machine (where asyncore is gone), if any."""
    for name in ("python3.13", "python3.12"):
        path = shutil.which(name)
        if path and subprocess.run([path, "-c", "1"], capture_output=True).returncode == 0:
            return path
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(pyenv.glob("3.1[2-9]*/bin/python3"), reverse=True):
        return str(candidate)
    return None


def test_unmodified_program_runs_on_python_312_plus_where_asyncore_is_gone():
    python = _python_312_plus()
    if python is None:
        pytest.skip("no Python >= 3.12 interpreter on this machine")
    gone = subprocess.run([python, "-c", "import asyncore"], capture_output=True, text=True)
    assert gone.returncode != 0 and "ModuleNotFoundError" in gone.stderr
    out = _run_legacy_app(python)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "replies: ['250 HELLO', '250 WORLD', '221 bye']" in out.stdout


# -- monkeypatching module attributes, as existing test suites do ----------------

class _FakeSocketModule:
    """Stands in for the socket module in ``asyncore.socket``."""

    AF_INET = socket.AF_INET
    SOCK_STREAM = socket.SOCK_STREAM
    SOL_SOCKET = socket.SOL_SOCKET
    SO_ERROR = socket.SO_ERROR
    SO_REUSEADDR = socket.SO_REUSEADDR

    def __init__(self):
        self.made = []

    def socket(self, family, type):
        sock = _StubSocket(family, type)
        self.made.append(sock)
        return sock


class _StubSocket:
    def __init__(self, family, type):
        self.family, self.type, self.blocking = family, type, True

    def setblocking(self, flag):
        self.blocking = flag

    def fileno(self):
        return 4242

    def close(self):
        pass


def test_patching_asyncore_socket_changes_create_socket(monkeypatch):
    fake = _FakeSocketModule()
    monkeypatch.setattr(sasyncore, "socket", fake)
    m = {}
    d = simnet.dispatcher(map=m)
    d.create_socket()
    assert fake.made == [d.socket]
    assert d.socket.blocking is False and m == {4242: d}
    d.del_channel()


def test_patching_asyncore_select_and_time_changes_the_wait(monkeypatch):
    import select as select_mod

    calls = []

    class FakeSelect:
        POLLIN, POLLPRI, POLLOUT = select_mod.POLLIN, select_mod.POLLPRI, select_mod.POLLOUT
        POLLERR, POLLHUP, POLLNVAL = select_mod.POLLERR, select_mod.POLLHUP, select_mod.POLLNVAL

        @staticmethod
        def select(r, w, e, timeout):
            calls.append(("select", list(r), list(w), timeout))
            return [], [], []

    monkeypatch.setattr(sasyncore, "select", FakeSelect)
    monkeypatch.setattr(sasyncore, "time", types.SimpleNamespace(sleep=lambda t: calls.append(("sleep", t))))
    m = {}
    d = simnet.dispatcher(map=m)
    d.create_socket()
    fd = d._fileno
    try:
        simnet.poll(1.5, m)
        d.readable = lambda: False
        d.writable = lambda: False
        simnet.poll(2.5, m)
    finally:
        d.close()
    assert calls == [("select", [fd], [fd], 1.5), ("sleep", 2.5)]


# -- misuse raises what the stdlib raises ------------------------------------------

def _misuse_cases(mods):
    """(name, callable) pairs of misuse; each raises in the stdlib."""
    core, chat = mods

    class Chat(chat.async_chat):
        def collect_incoming_data(self, data):
            pass

        def found_terminator(self):
            pass

    def no_socket_send():
        core.dispatcher(map={}).send(b"x")

    def no_socket_listen():
        core.dispatcher(map={}).listen(5)

    def push_str():
        Chat(map={}).push("text")

    def negative_terminator():
        Chat(map={}).set_terminator(-1)

    def compact_traceback_outside_except():
        core.compact_traceback()

    def bind_bad_address():
        m = {}
        d = core.dispatcher(map=m)
        d.create_socket()
        try:
            d.bind(("127.0.0.1", "not-a-port"))
        finally:
            d.close()

    def connect_refused_unix():
        m = {}
        d = core.dispatcher(map=m)
        d.create_socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            d.connect("/nonexistent/simnet-test-socket")
        finally:
            d.close()

    def closed_socket_to_dispatcher():
        s = socket.socket()
        s.close()
        core.dispatcher(s, map={})

    def default_collect_incoming_data():
        chat.async_chat(map={}).collect_incoming_data(b"x")

    def default_found_terminator():
        chat.async_chat(map={}).found_terminator()

    def loop_bad_timeout():
        m = {}
        d = core.dispatcher(map=m)
        d.create_socket()
        try:
            core.loop("soon", map=m, count=1)
        finally:
            d.close()

    def file_wrapper_other_option():
        r, w = os.pipe()
        try:
            f = core.file_wrapper(r)
            try:
                f.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            finally:
                f.close()
        finally:
            os.close(r)
            os.close(w)

    return [(f.__name__, f) for f in (
        no_socket_send, no_socket_listen, push_str, negative_terminator,
        compact_traceback_outside_except, bind_bad_address, connect_refused_unix,
        closed_socket_to_dispatcher, default_collect_incoming_data,
        default_found_terminator, loop_bad_timeout, file_wrapper_other_option)]


def _outcome(fn):
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 -- we record what was raised
        return type(exc), getattr(exc, "errno", None)
    return None


@needs_stdlib
@pytest.mark.parametrize("case", [name for name, _ in _misuse_cases((sasyncore, sasynchat))])
def test_misuse_raises_the_same_exception_as_the_stdlib(case):
    ours = dict(_misuse_cases((sasyncore, sasynchat)))[case]
    theirs = dict(_misuse_cases((std_asyncore, std_asynchat)))[case]
    expected = _outcome(theirs)
    assert expected is not None, f"{case} should raise on the stdlib"
    assert _outcome(ours) == expected


def test_closed_socket_given_to_dispatcher_stays_out_of_the_map():
    s = socket.socket()
    s.close()
    m = {}
    with pytest.raises(OSError) as info:
        simnet.dispatcher(s, map=m)
    assert info.value.errno == errno.EBADF
    assert m == {}


def test_loop_rejects_an_unknown_poller_naming_the_choices():
    with pytest.raises(ValueError, match="'select', 'poll', 'epoll'"):
        simnet.loop(map={}, poller="kqueue")


# -- fifo (Python 2's asynchat.fifo, for old apps) -----------------------------

def test_fifo_behaves_like_python2s():
    f = simnet.fifo([b"a"])
    f.push(b"b")
    assert len(f) == 2 and not f.is_empty() and f.first() == b"a"
    assert f.pop() == (1, b"a") and f.pop() == (1, b"b")
    assert f.pop() == (0, None) and f.is_empty()
    assert "fifo" not in vars(sasynchat)  # the drop-in keeps 3.11's names only
