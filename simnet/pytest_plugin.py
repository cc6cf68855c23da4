"""simnet's pytest plugin: network fixtures, seeds, fault plans, replayable failures.

Installed with simnet (entry point ``pytest11``), so the fixtures just appear:

``fake_net``
    A fresh :class:`~simnet.fakesock.FakeNetwork`, entered for the test (so
    dispatchers create fake sockets), tracing, seeded from the test's id.
``real_net``
    The real network (a :class:`~simnet.real.RealNetwork`), entered for the
    test; a test that leaves a socket or file descriptor open fails, naming it.
``net``
    The same test once on each: ids ``fake`` and ``real`` (see
    ``--simnet-backend`` and the marker's ``backends``). Both networks have
    ``net.run(until=..., timeout=...)``, so the body is written once.
``tls_ca``, ``tls_server_context``, ``tls_client_context``
    A trustme certificate authority, a server context with a certificate for
    ``localhost``/``127.0.0.1``/``mail.example``, and a client context that
    trusts it -- for :mod:`simnet.tls` on either network.

Per-test settings come from a marker::

    @pytest.mark.simnet(seed=7, faults=[Rule("short_read", max_bytes=1)], latency=0.05)
    def test_chat(fake_net): ...

    @pytest.mark.simnet(backends=["fake"])     # a `net` test on the fake network only
    def test_fake_only(net): ...

Options (and ini settings, which the options override): ``--simnet-seed N``
(``simnet_seed``; default: derived from the test id, the same on every run,
machine and xdist worker), ``--simnet-seeds K`` (``simnet_seeds``: run each
fake-network test under K seeds), ``--simnet-backend fake|real|both``
(``simnet_backend``), ``--simnet-trace-dir DIR`` (``simnet_trace_dir``: write
the traces of failing tests there), ``--simnet-trace-all`` (of all tests),
``--simnet-install`` (``simnet_install = true``: register simnet's modules as
``asyncore``/``asynchat`` for the session, before test modules are
imported), ``--simnet-replay FILE`` (rerun the test a trace recorded, with its
seed and plan, and check it event by event).

A failing test's report gets a ``simnet`` section: the seed, the fault plan
in plain words, the end of the timeline as ``simnet trace show`` prints it,
the trace file, how to draw it, and the command line that replays the
failure -- which runs as printed, from the directory pytest ran in.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import re
import shlex
import sys
import zlib
from typing import Any, Callable, Iterator

import pytest

from simnet.faults import FaultPlan, PlanError
from simnet.traces.trace import check_network

MARKER_KEYS = ("seed", "faults", "latency", "bandwidth", "sndbuf", "rcvbuf", "shuffle",
               "start_time", "pass_cost", "backends", "patch", "virtual_time")
_NETWORK_KEYS = ("latency", "bandwidth", "sndbuf", "rcvbuf", "shuffle", "start_time", "pass_cost")
_BACKENDS = ("fake", "real", "both")
#: at most this many seeds per test (a larger K is a typo, not a plan)
MAX_SEEDS = 100_000
#: timeline rows a failure report shows (the trace file has them all)
REPORT_ROWS = 20

_CONF = pytest.StashKey["_Settings"]()
_RUN = pytest.StashKey["_Run"]()
_MARK = pytest.StashKey[dict]()

_SIMNET_DIR = os.path.dirname(os.path.abspath(__file__))
_EXAMPLES_DIR = os.path.join(_SIMNET_DIR, "examples")


# -- settings: options and ini ----------------------------------------------------------

def _whole(text: Any, least: int) -> int:
    """*text* as a whole number >= *least*; ValueError naming the value."""
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise ValueError(f"invalid value {text!r} (expected a whole number >= {least})")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"invalid value {text!r} (expected a whole number >= {least})") from None
    if value < least:
        raise ValueError(f"invalid value {text!r} (expected a whole number >= {least})")
    return value


def _seed_value(text: Any) -> int:
    return _whole(text, 0)


def _seeds_value(text: Any) -> int:
    value = _whole(text, 1)
    if value > MAX_SEEDS:
        raise ValueError(f"invalid value {text!r} (expected at most {MAX_SEEDS} seeds per test)")
    return value


def _shard_value(text: Any) -> tuple[int, int]:
    from simnet.distributed import parse_shard

    return parse_shard(text)


def _backend_value(text: Any) -> str:
    if text not in _BACKENDS:
        raise ValueError(f"invalid value {text!r} (expected one of {', '.join(_BACKENDS)})")
    return str(text)


def _bool_value(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"invalid value {text!r} (expected true or false)")


def _argtype(check: Callable[[Any], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` that reports *check*'s message, not its name."""
    def convert(text: str) -> Any:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = check.__name__.strip("_")
    return convert


_INI = {
    # name: (help, option dest, check)
    "simnet_backend": ("which networks the `net` fixture uses: fake, real or both",
                       "simnet_backend", _backend_value),
    "simnet_seed": ("seed of every fake network (default: derived from each test's id)",
                    "simnet_seed", _seed_value),
    "simnet_seeds": ("run each fake-network test under this many seeds", "simnet_seeds",
                     _seeds_value),
    "simnet_trace_dir": ("write the traces of failing fake-network tests into this directory",
                         "simnet_trace_dir", str),
    "simnet_trace_all": ("with a trace dir: write the traces of all tests (true/false)",
                         "simnet_trace_all", _bool_value),
    "simnet_install": ("register simnet's modules as asyncore/asynchat for the session "
                       "(true/false)", "simnet_install", _bool_value),
    "simnet_virtual_time": ("fake_net tests run inside net.patch(time=True): the socket, select "
                            "and time modules are the fake network's (true/false)",
                            "simnet_virtual_time", _bool_value),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simnet", "simnet: simulated networks and fault injection")
    group.addoption("--simnet-seed", type=_argtype(_seed_value), default=None, metavar="N",
                    help="seed of every fake network (default: derived from each test's id)")
    group.addoption("--simnet-seeds", type=_argtype(_seeds_value), default=None, metavar="K",
                    help="run each fake-network test under K seeds")
    group.addoption("--simnet-shard", type=_argtype(_shard_value), default=None, metavar="I/N",
                    help="with --simnet-seeds K: run the I-th of N disjoint slices of K seeds "
                         "(a CI matrix of N jobs runs N*K seeds per test, none twice)")
    group.addoption("--simnet-backend", choices=_BACKENDS, default=None,
                    help="which networks the `net` fixture runs a test on (default: both)")
    group.addoption("--simnet-trace-dir", default=None, metavar="DIR",
                    help="write the trace of each failing fake-network test into DIR")
    group.addoption("--simnet-trace-all", action="store_true", default=None,
                    help="with --simnet-trace-dir: write the traces of all tests")
    group.addoption("--simnet-install", action="store_true", default=None,
                    help="register simnet's modules as `asyncore` and `asynchat` for the "
                         "session (simnet.install()), before test modules are imported")
    group.addoption("--simnet-virtual-time", action="store_true", default=None,
                    help="run fake_net tests inside net.patch(time=True): socket, select and "
                         "time read the fake network and its virtual clock")
    group.addoption("--simnet-replay", default=None, metavar="FILE",
                    help="rerun the test this trace recorded with its seed and faults, "
                         "and check that it does the same, event by event")
    for name, (help_text, _, _) in _INI.items():
        parser.addini(name, help_text, default=None)


class _Settings:
    """The plugin's settings for the session: options over ini over defaults."""

    def __init__(self, config: pytest.Config) -> None:
        self.backend: str = self._get(config, "simnet_backend", "both")
        self.seed: int | None = self._get(config, "simnet_seed", None)
        self.seeds: int = self._get(config, "simnet_seeds", 1)
        #: (I, N) of --simnet-shard: this run takes the I-th of N blocks of seeds
        self.shard: tuple[int, int] | None = config.getoption("simnet_shard")
        self.trace_all: bool = self._get(config, "simnet_trace_all", False)
        self.install: bool = self._get(config, "simnet_install", False)
        self.virtual_time: bool = self._get(config, "simnet_virtual_time", False)
        for option in ("simnet_trace_dir", "simnet_replay"):
            if config.getoption(option) == "":
                raise pytest.UsageError(f"--{option.replace('_', '-')}: invalid value '' "
                                        f"(expected a path)")
        trace_dir = config.getoption("simnet_trace_dir")
        base = str(config.invocation_params.dir)  # an option: from where pytest runs
        if trace_dir is None:
            trace_dir = self._get(config, "simnet_trace_dir", None)
            # an ini setting: from the ini file's directory, as pytest's own paths
            base = str(config.inipath.parent if config.inipath else config.rootpath)
        self.trace_dir: str | None = None
        if trace_dir:
            self.trace_dir = _check_trace_dir(base, trace_dir)
        self.replay_path: str | None = config.getoption("simnet_replay")
        self.replay: Any = None
        self.replay_test: str | None = None
        if self.replay_path:
            self.replay, self.replay_test = _load_replay(self.replay_path)
        #: (test id, message) of each replay made, for the terminal summary
        self.replayed: list[tuple[str, str]] = []

    @staticmethod
    def _get(config: pytest.Config, name: str, default: Any) -> Any:
        _, dest, check = _INI[name]
        value = config.getoption(dest)
        if value is not None:
            return value
        raw = config.getini(name)
        if raw is None or raw == "" or raw == []:
            return default
        if isinstance(raw, list):
            raw = " ".join(raw)
        try:
            return check(raw.strip() if isinstance(raw, str) else raw)
        except ValueError as exc:
            raise pytest.UsageError(f"ini setting {name}: {exc}") from None


def _check_trace_dir(base: str, path: str) -> str:
    """The trace directory (relative to *base*), absolute; a usage error if
    traces cannot be written there."""
    full = os.path.normpath(os.path.join(base, os.path.expanduser(path)))
    probe = full
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    problem = None
    if not os.path.isdir(probe):
        problem = f"{probe!r} is not a directory"
    elif not os.access(probe, os.W_OK | os.X_OK):
        problem = f"{probe!r} is not writable"
    if problem:
        raise pytest.UsageError(f"--simnet-trace-dir {path!r}: cannot write traces there "
                                f"({problem})")
    return full


def _load_replay(path: str) -> tuple[Any, str]:
    from simnet.traces.trace import Trace, TraceError

    try:
        trace = Trace.load(path)
    except TraceError as exc:
        raise pytest.UsageError(f"--simnet-replay: {exc}") from None
    header = trace.header
    test = header.get("test")
    if test is None and isinstance(header.get("scenario"), str) and "::" in header["scenario"]:
        test = header["scenario"]  # traces of earlier versions named the test there
    if not isinstance(test, str) or not test:
        raise pytest.UsageError(
            f"--simnet-replay {path}: the trace names no pytest test (it was recorded by "
            f"simnet.record() or `simnet demo`); replay it with: simnet replay {shlex.quote(path)}")
    if header.get("backend", "fake") != "fake":
        raise pytest.UsageError(f"--simnet-replay {path}: recorded on the "
                                f"{header.get('backend')} network; only fake-network traces replay")
    try:
        FaultPlan(header.get("faults") or [])
    except (PlanError, TypeError, ValueError, RecursionError) as exc:
        raise pytest.UsageError(f"--simnet-replay {path}: the header's fault plan: {exc}") from None
    return trace, test


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    """``--simnet-install``/``simnet_install``: install simnet's modules before
    any conftest or test module imports ``asyncore``."""
    flag = getattr(early_config.known_args_namespace, "simnet_install", None)
    if flag is None:
        raw = early_config.getini("simnet_install")
        try:
            flag = _bool_value(raw) if raw not in (None, "") else False
        except ValueError:
            return  # reported as a usage error by pytest_configure
    if flag:
        import simnet

        simnet.install()
        early_config.stash[_INSTALLED] = True


_INSTALLED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "simnet(seed=None, faults=None, latency=..., bandwidth=..., sndbuf=..., rcvbuf=..., "
        "shuffle=..., start_time=..., pass_cost=..., backends=..., patch=False, "
        "virtual_time=False): settings "
        "of the test's fake network, the networks a `net` test runs on, and whether the "
        "socket (and time) modules are the fake network's (net.patch())")
    settings = _Settings(config)
    config.stash[_CONF] = settings
    if settings.install and not config.stash.get(_INSTALLED, False):
        import simnet

        simnet.install()
        config.stash[_INSTALLED] = True


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_INSTALLED, False):
        import simnet

        simnet.uninstall()
        config.stash[_INSTALLED] = False


def pytest_report_header(config: pytest.Config) -> list[str]:
    s = config.stash.get(_CONF, None)
    if s is None:
        return []
    if s.replay is not None:
        seeds = f"replaying {s.replay_path} (test {s.replay_test}, seed {s.replay.header.get('seed')})"
    elif s.seeds > 1:
        base = f"from {s.seed}" if s.seed is not None else "from each test's id"
        seeds = f"{s.seeds} seeds per fake-network test, counting up {base}"
    elif s.seed is not None:
        seeds = f"seed {s.seed} for every fake network"
    else:
        seeds = "seeds derived from each test's id"
    bits = [seeds, f"net: {'fake and real' if s.backend == 'both' else s.backend}"]
    if s.trace_dir:
        bits.append(f"traces of {'all' if s.trace_all else 'failing'} tests in {s.trace_dir}")
    if config.stash.get(_INSTALLED, False):
        bits.append("asyncore/asynchat are simnet's (installed)")
    return ["simnet: " + "; ".join(bits)]


def seed_for(nodeid: str) -> int:
    """The default seed of a test: a CRC of its id, stable everywhere."""
    return zlib.crc32(nodeid.encode("utf-8"))


def _base_nodeid(nodeid: str) -> str:
    return re.sub(r"\[.*\]$", "", nodeid)


def _id_seed(nodeid: str) -> int | None:
    """N of a ``seedN`` part in a test id's parameters, if any."""
    match = re.search(r"\[(.*)\]$", nodeid)
    if match is None:
        return None
    found = re.search(r"(?:^|-)seed(\d+)(?:-|$)", match.group(1))
    return int(found.group(1)) if found else None


# -- the marker -------------------------------------------------------------------------

def _check_marker(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The marker's settings checked and normalised; ValueError naming the bad one."""
    out = dict(kwargs)
    if "seed" in out and out["seed"] is not None:
        seed = out["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a whole number >= 0 or None, got {seed!r}")
    try:
        check_network({k: v for k, v in out.items() if k in _NETWORK_KEYS})
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if "faults" in out:
        try:
            out["faults"] = FaultPlan.coerce(out["faults"])
        except (PlanError, TypeError, ValueError, RecursionError) as exc:
            raise ValueError(f"faults: {exc}") from None
    for key in ("patch", "virtual_time"):
        if key in out and not isinstance(out[key], bool):
            raise ValueError(f"{key} must be True or False, got {out[key]!r}")
    if "backends" in out:
        raw = out["backends"]
        names = [raw] if isinstance(raw, str) else raw
        if (not isinstance(names, (list, tuple)) or not names
                or any(n not in _BACKENDS for n in names)):
            raise ValueError(f"backends must be 'fake', 'real', 'both' or a list of them, "
                             f"got {raw!r}")
        chosen = set()
        for n in names:
            chosen |= {"fake", "real"} if n == "both" else {n}
        out["backends"] = [b for b in ("fake", "real") if b in chosen]
    return out


def _read_marker(node: Any, nodeid: str) -> dict[str, Any]:
    """The merged ``@pytest.mark.simnet`` settings of *node* (closest wins);
    a usage error naming the test, the argument and the value."""
    settings: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers("simnet"))):
        if mark.args:
            raise pytest.UsageError(f"{nodeid}: @pytest.mark.simnet takes keyword "
                                    f"arguments only, got {mark.args!r}")
        unknown = sorted(set(mark.kwargs) - set(MARKER_KEYS))
        if unknown:
            raise pytest.UsageError(
                f"{nodeid}: unknown @pytest.mark.simnet argument(s) {', '.join(unknown)} "
                f"(known: {', '.join(MARKER_KEYS)})")
        settings.update(mark.kwargs)
    try:
        return _check_marker(settings)
    except ValueError as exc:
        raise pytest.UsageError(f"{nodeid}: @pytest.mark.simnet: {exc}") from None


def _marker_settings(item: Any) -> dict[str, Any]:
    cached = item.stash.get(_MARK, None)
    if cached is None:
        cached = item.stash[_MARK] = _read_marker(item, item.nodeid)
    return dict(cached)


def _real_refusal(plan: FaultPlan | None) -> str | None:
    """Why the real network cannot run *plan* (None: it can)."""
    if not plan:
        return None
    from simnet.real import check_real_plan

    try:
        check_real_plan(plan)
    except PlanError as exc:
        return str(exc)
    return None


# -- collection -----------------------------------------------------------------------

def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    s: _Settings = config.stash[_CONF]
    names = metafunc.fixturenames
    uses_net = "net" in names
    if not (uses_net or "fake_net" in names):
        return
    definition = metafunc.definition
    try:
        marker = _read_marker(definition, definition.nodeid)
    except pytest.UsageError:
        marker = {}  # pytest_collection_modifyitems reports it, in one line
    base_id = definition.nodeid
    seeds: list[int] | None = None
    key = _replay_key(s)
    if key is not None and _test_key(definition.path, base_id) == (key[0], _base_nodeid(key[1])):
        wanted = _id_seed(s.replay_test or "")
        if wanted is not None:
            seeds = [wanted]
    elif s.seeds > 1 or s.shard is not None:
        base = s.seed if s.seed is not None else seed_for(base_id)
        if s.shard is not None:  # shard I/N: the I-th block of K seeds
            base += (s.shard[0] - 1) * s.seeds
        seeds = [base + i for i in range(s.seeds)]
    if not uses_net:
        if seeds is not None:
            metafunc.parametrize("simnet_seed", seeds, indirect=True,
                                 ids=[f"seed{n}" for n in seeds])
        return
    # `net`: fake (under each seed) and real (once), as the option and marker allow
    allowed = ["fake", "real"] if s.backend == "both" else [s.backend]
    wanted_backends = marker.get("backends", ["fake", "real"])
    params = []
    for kind in ("fake", "real"):
        if kind not in wanted_backends:
            continue
        marks: list[Any] = []
        if kind not in allowed:
            if any(b in allowed for b in wanted_backends):
                continue  # the option leaves it out; another network runs the test
            marks.append(pytest.mark.skip(
                reason=f"the marker asks for {'/'.join(wanted_backends)}, the session runs "
                       f"{s.backend} only (--simnet-backend / simnet_backend)"))
        if kind == "real":
            why = _real_refusal(marker.get("faults"))
            if why:
                marks.append(pytest.mark.skip(reason=f"the real network cannot run this "
                                                     f"test's fault plan: {why}"))
        if kind == "fake" and seeds is not None:
            params += [pytest.param("fake", n, marks=marks, id=f"fake-seed{n}") for n in seeds]
        else:
            params.append(pytest.param(kind, None, marks=marks, id=kind))
    metafunc.parametrize(("net", "simnet_seed"), params, indirect=True)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    for item in items:
        _marker_settings(item)  # fails collection on a bad marker
    s: _Settings = config.stash[_CONF]
    if s.replay is not None and items and not any(_is_replayed(i) for i in items):
        rootdir = s.replay.header.get("rootdir") or str(config.rootpath)
        path, sep, rest = (s.replay_test or "").partition("::")
        local = os.path.relpath(os.path.join(rootdir, path), str(config.invocation_params.dir))
        raise pytest.UsageError(
            f"--simnet-replay {s.replay_path}: the trace is of test {s.replay_test}, which is "
            f"not among the selected tests; run: pytest {shlex.quote(local + sep + rest)} "
            f"--simnet-replay={shlex.quote(s.replay_path or '')}")


def _test_key(path: Any, nodeid: str) -> tuple[str, str]:
    """A test by its file's absolute path and its name within it (pytest's
    node ids depend on the rootdir, which the arguments can move)."""
    return os.path.normpath(os.path.abspath(str(path))), nodeid.partition("::")[2]


def _replay_key(s: _Settings) -> tuple[str, str] | None:
    if s.replay is None or not s.replay_test:
        return None
    rootdir = s.replay.header.get("rootdir") or os.getcwd()
    return _test_key(os.path.join(rootdir, s.replay_test.partition("::")[0]), s.replay_test)


def _is_replayed(item: Any) -> bool:
    s: _Settings = item.config.stash[_CONF]
    key = _replay_key(s)
    return key is not None and _test_key(item.path, item.nodeid) == key


# -- fixtures -------------------------------------------------------------------------

@pytest.fixture
def simnet_seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's fake network (see ``--simnet-seed``)."""
    param = getattr(request, "param", None)
    if param is not None:
        return int(param)
    s: _Settings = request.config.stash[_CONF]
    if _is_replayed(request.node):
        return int(s.replay.header.get("seed", 0))
    marked = _marker_settings(request.node).get("seed")
    if marked is not None:
        return int(marked)
    if s.seed is not None:
        return s.seed
    return seed_for(_base_nodeid(request.node.nodeid))


def _open_fds() -> dict[int, str]:
    fds = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:  # not Linux: no leak check
        return fds
    for name in names:
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return fds


def _describe_fd(fd: int, target: str) -> str:
    if target.startswith("socket:"):
        import socket

        try:
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            return f"fd {fd} ({target})"
        try:
            try:
                peer = s.getpeername()
            except OSError:
                peer = None
            text = f"fd {fd}: socket {s.getsockname()!r}" + (f" -> {peer!r}" if peer else "")
        finally:
            s.close()
        return text
    return f"fd {fd} -> {target}"


def _owners(fds: set[int]) -> dict[int, list[Any]]:
    """The live Python objects that own each of *fds* (sockets, files, epoll
    objects), outermost first (a text file before its buffer and raw file)."""
    import select
    import socket

    kinds: tuple[type, ...] = (socket.socket, io.IOBase)
    if hasattr(select, "epoll"):
        kinds += (select.epoll,)
    found: dict[int, list[Any]] = {}
    seen: set[int] = set()

    def consider(obj: Any) -> None:
        if id(obj) in seen or not isinstance(obj, kinds):
            return
        seen.add(id(obj))
        try:
            fd = obj.fileno()
        except (OSError, ValueError, AttributeError):
            return
        if isinstance(fd, int) and fd in fds:
            found.setdefault(fd, []).append(obj)

    for obj in gc.get_objects():
        consider(obj)
        if type(obj) in (dict, list, tuple) or hasattr(obj, "__dict__"):
            for ref in gc.get_referents(obj):  # untracked owners (epoll objects)
                if not gc.is_tracked(ref):
                    consider(ref)

    def depth(obj: Any) -> int:
        if isinstance(obj, io.TextIOBase):
            return 0
        if isinstance(obj, io.BufferedIOBase):
            return 1
        if isinstance(obj, io.RawIOBase):
            return 2
        return 3

    for owners in found.values():
        owners.sort(key=depth)
    return found


def _close_leaks(leaked: dict[int, str]) -> list[str]:
    """Describe each leaked fd and close it through the object that owns it;
    a descriptor no Python object owns is left open (closing it behind its
    owner's back would later close whatever then has that number)."""
    described = {fd: _describe_fd(fd, target) for fd, target in leaked.items()}
    owners = _owners(set(leaked))
    out = []
    for fd in sorted(leaked):
        objs = owners.get(fd)
        if not objs:
            out.append(f"{described[fd]} (no Python object owns it: left open)")
            continue
        try:
            objs[0].close()
            how = f"closed through its {type(objs[0]).__module__}.{type(objs[0]).__qualname__}"
        except Exception as exc:  # noqa: BLE001 -- report, never break the session
            how = f"closing its {type(objs[0]).__qualname__} failed: {exc}"
        out.append(f"{described[fd]} ({how})")
    return out


class _Run:
    """What the plugin knows of one test's network while the test runs; the
    network and its trace are dropped after teardown (point: memory)."""

    def __init__(self, kind: str, net: Any, seed: int | None) -> None:
        self.kind = kind
        self.net = net
        self.seed = seed
        self.trace_path: str | None = None
        self.replay_error: BaseException | None = None
        self.replay_note: str | None = None


def _start_fake(request: pytest.FixtureRequest, seed: int) -> Any:
    from simnet.fakesock import FakeNetwork

    settings = _marker_settings(request.node)
    for key in ("backends", "patch", "virtual_time"):
        settings.pop(key, None)
    s: _Settings = request.config.stash[_CONF]
    if _is_replayed(request.node):
        header = s.replay.header
        settings["faults"] = FaultPlan(header.get("faults") or [])
        settings.update({k: v for k, v in (header.get("network") or {}).items() if k in _NETWORK_KEYS})
    settings.pop("seed", None)
    net = FakeNetwork(seed=seed, trace=True, **settings)
    assert net.trace is not None
    header = net.trace.header
    header["test"] = request.node.nodeid
    header["rootdir"] = str(request.config.rootpath)
    return net


def _finish_fake(net: Any, run: _Run) -> None:
    import simnet

    for m in [simnet.socket_map] + list(net._maps):
        for fd in [fd for fd in m if fd >= simnet._state.FAKE_FD_BASE]:
            m.pop(fd, None)
    if run.replay_error is not None:
        error, run.replay_error = run.replay_error, None
        raise error


@pytest.fixture
def fake_net(request: pytest.FixtureRequest, simnet_seed: int) -> Iterator[Any]:
    """A fresh FakeNetwork, entered for the test, tracing; closed at teardown
    with every channel it served taken out of the maps."""
    __tracebackhide__ = True
    net = _start_fake(request, simnet_seed)
    run = _Run("fake", net, simnet_seed)
    request.node.stash[_RUN] = run
    patch = _patch_of(request, net)
    with net:
        if patch is None:
            yield net
        else:
            with patch:
                yield net
        _finish_fake(net, run)


def _patch_of(request: pytest.FixtureRequest, net: Any) -> Any:
    """``net.patch(...)`` when the marker (``patch=True``, ``virtual_time=True``)
    or the session (``simnet_virtual_time``) asks for it, else None."""
    __tracebackhide__ = True
    marker = _marker_settings(request.node)
    s: _Settings = request.config.stash[_CONF]
    virtual_time = marker.get("virtual_time", s.virtual_time)
    if not (virtual_time or marker.get("patch")):
        return None
    if not virtual_time:
        return net.patch()
    try:
        return net.patch(time=True)
    except TypeError:
        pytest.fail("virtual_time: this simnet's FakeNetwork.patch() has no virtual clocks "
                    "(time=True)", pytrace=False)


@pytest.fixture
def real_net(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The real network, entered for the test. Fails a test that leaves a
    socket or file descriptor open, naming it (and closes it through the
    object that owns it)."""
    __tracebackhide__ = True
    import simnet
    from simnet.real import RealNetwork

    settings = _marker_settings(request.node)
    why = _real_refusal(settings.get("faults"))
    if why:
        pytest.fail(f"@pytest.mark.simnet(faults=...): {why}", pytrace=False)
    before = _open_fds()
    kwargs = {"faults": settings["faults"]} if settings.get("faults") else {}
    net = RealNetwork(**kwargs)
    request.node.stash[_RUN] = _Run("real", net, None)
    with net:
        yield net
    simnet.close_all(ignore_all=True)
    simnet.timers.real_timers.clear()
    leaked = {fd: t for fd, t in _open_fds().items() if fd not in before}
    if leaked:
        names = "; ".join(_close_leaks(leaked))
        pytest.fail(f"the test left {len(leaked)} file descriptor(s) open: {names}", pytrace=False)


@pytest.fixture
def net(request: pytest.FixtureRequest, simnet_seed: int) -> Iterator[Any]:
    """The test runs once on each network: ``fake`` and ``real``. Both have
    ``run(until=..., timeout=...)``, ``time()`` and ``faults``."""
    kind = getattr(request, "param", "fake")
    yield request.getfixturevalue("fake_net" if kind == "fake" else "real_net")


@pytest.fixture(scope="session")
def tls_ca() -> Any:
    """A throwaway certificate authority (``trustme.CA``), for the session."""
    trustme = pytest.importorskip("trustme", reason="the TLS fixtures need trustme")
    return trustme.CA()


@pytest.fixture
def tls_server_context(tls_ca: Any) -> Any:
    """A server ``ssl.SSLContext`` with a certificate for ``localhost``,
    ``127.0.0.1`` and ``mail.example``, issued by ``tls_ca``."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ca.issue_cert("localhost", "127.0.0.1", "mail.example").configure_cert(ctx)
    return ctx


@pytest.fixture
def tls_client_context(tls_ca: Any) -> Any:
    """A client ``ssl.SSLContext`` that trusts ``tls_ca`` (and checks hostnames)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls_ca.configure_trust(ctx)
    return ctx


# -- reports --------------------------------------------------------------------------

def _trace_file_name(nodeid: str, seed: int | None) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]
    if _id_seed(nodeid) is None:  # the id names the seed already under --simnet-seeds
        safe += f"-seed{seed}"
    return safe + ".jsonl"


def _shown_path(config: pytest.Config, path: str) -> str:
    """*path* as the user would type it from the directory pytest ran in."""
    rel = os.path.relpath(path, str(config.invocation_params.dir))
    return path if rel.startswith(os.pardir) else rel


def _local_test_id(config: pytest.Config, nodeid: str) -> str:
    """*nodeid* (relative to the rootdir) as a path from the directory pytest
    ran in, so that the printed command runs as printed there."""
    file_part, sep, rest = nodeid.partition("::")
    full = os.path.join(str(config.rootpath), file_part)
    rel = os.path.relpath(full, str(config.invocation_params.dir))
    return rel + sep + rest


def _replay_command(config: pytest.Config, item: pytest.Item, run: _Run) -> str:
    s: _Settings = config.stash[_CONF]
    parts = ["pytest", _local_test_id(config, item.nodeid)]
    if run.trace_path:
        # `=`: pytest places its rootdir before plugins' options are known, and
        # takes a separate value for a path argument
        parts += ["--simnet-replay=" + _shown_path(config, run.trace_path)]
    else:
        if _id_seed(item.nodeid) is not None:
            # the [seedN] id exists only with the same seeds
            if s.seed is not None:
                parts += ["--simnet-seed", str(s.seed)]
            parts += ["--simnet-seeds", str(s.seeds)]
        else:
            parts += ["--simnet-seed", str(run.seed)]
    return " ".join(shlex.quote(p) for p in parts)


def _is_simnet_frame(entry: Any) -> bool:
    path = str(entry.path)
    return path.startswith(_SIMNET_DIR + os.sep) and not path.startswith(_EXAMPLES_DIR + os.sep)


def _hide_simnet_frames(item: pytest.Item) -> None:
    """Leave simnet's own frames out of the item's failure tracebacks, as
    ``__tracebackhide__`` would (``--full-trace`` keeps them): pytest's own
    filter runs first, then this one drops the entries in simnet's modules
    (not in its examples, which are application code)."""
    original = getattr(item, "_traceback_filter", None)
    if original is None or getattr(original, "_simnet", False):
        return

    def traceback_filter(excinfo: Any) -> Any:
        traceback = original(excinfo)
        try:
            kept = traceback.filter(lambda entry: not _is_simnet_frame(entry))
        except Exception:  # noqa: BLE001 -- a cosmetic step must never break a report
            return traceback
        return kept if len(kept) else traceback

    traceback_filter._simnet = True  # type: ignore[attr-defined]
    item._traceback_filter = traceback_filter  # type: ignore[attr-defined]


def _foreign_channels() -> list[str]:
    """What lives outside the current fake network: channels in the stdlib
    asyncore's map (an application that imported it instead of simnet's) and
    real sockets in simnet's map."""
    import simnet
    from simnet import asyncore as ours

    found = []
    std = sys.modules.get("asyncore")
    if std is not None and std is not ours:
        where = os.path.dirname(os.path.abspath(getattr(std, "__file__", "") or ""))
        channels = getattr(std, "socket_map", None) or {}
        # only with channels: another test module may import the stdlib one on purpose
        if where != _SIMNET_DIR and channels:
            fds = ", ".join(str(fd) for fd in list(channels)[:5])
            found.append(f"the application imported the standard library's asyncore "
                         f"({getattr(std, '__file__', '?')}), not simnet's: its socket_map "
                         f"holds {len(channels)} channel(s) on real sockets (fds {fds}) that "
                         f"the fake network never sees")
    real = [fd for fd in simnet.socket_map if fd < simnet._state.FAKE_FD_BASE]
    if real:
        found.append(f"simnet.socket_map holds {len(real)} real socket(s) (fds "
                     f"{', '.join(map(str, real[:5]))}) made outside the fake network; make "
                     f"them with create_socket() while fake_net is current, or run code that "
                     f"calls socket.socket() under @pytest.mark.simnet(patch=True)")
    return found


_INSTALL_HINT = ("call simnet.install() before the application is imported (e.g. at the top of "
                 "conftest.py), or set `simnet_install = true` in the pytest ini file (or pass "
                 "--simnet-install)")


def _missing_module_hint(excinfo: Any) -> str | None:
    """The hint for an application whose ``import asyncore``/``import asynchat``
    failed: Python 3.12 removed them from the standard library, and simnet's
    modules take their place once installed."""
    exc = getattr(excinfo, "value", None)
    seen: set[int] = set()
    # pytest turns a test module's ImportError into a CollectError raised from it
    while exc is not None and id(exc) not in seen and not isinstance(exc, ModuleNotFoundError):
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    if not isinstance(exc, ModuleNotFoundError) or exc.name not in ("asyncore", "asynchat"):
        return None
    return (f"hint: the application imports {exc.name}, which is not in this Python's standard "
            f"library (Python 3.12 removed asyncore and asynchat): simnet provides it. "
            + _INSTALL_HINT[0].upper() + _INSTALL_HINT[1:])


def pytest_exception_interact(node: Any, call: pytest.CallInfo, report: Any) -> None:
    """A collection error from an application importing asyncore/asynchat
    where they do not exist (3.12+): say how to get simnet's."""
    if isinstance(report, pytest.CollectReport):
        hint = _missing_module_hint(call.excinfo)
        if hint:
            report.sections.append(("simnet", hint))


def _timeline(net: Any, trace_path: str | None, config: pytest.Config) -> list[str]:
    """The end of the run's timeline, as ``simnet trace show`` prints it."""
    from simnet.traces.trace import TraceError
    from simnet.traces.views import DEFAULT_KINDS, TraceView, timeline_lines, timeline_rows

    try:
        view = TraceView(net.trace, "trace")
        rows = timeline_rows(view, DEFAULT_KINDS)
    except (TraceError, ValueError, TypeError, KeyError, IndexError) as exc:
        return [f"timeline: not shown ({exc})"]
    if not rows:
        return ["timeline: no socket operation"]
    shown = rows[-REPORT_ROWS:]
    where = (f"simnet trace show {shlex.quote(_shown_path(config, trace_path))}"
             if trace_path else "add --simnet-trace-dir DIR to keep the trace")
    if len(shown) < len(rows):
        head = f"timeline, last {len(shown)} of {len(rows)} rows ({where} prints them all):"
    else:
        head = f"timeline, {len(rows)} rows:"
    return [head] + timeline_lines(view, shown, style=lambda text, **_: text, fancy=False)


def _check_replay(item: pytest.Item, run: _Run, report: pytest.TestReport) -> None:
    from simnet.traces.replay import ReplayDivergence, compare

    s: _Settings = item.config.stash[_CONF]
    expected = s.replay.normalised()
    try:
        compare(expected, run.net.trace.normalised(), s.replay_path)
    except ReplayDivergence as exc:
        run.replay_error = exc
        run.replay_note = f"DIVERGED from {s.replay_path}: {str(exc).splitlines()[0]}"
        s.replayed.append((item.nodeid, run.replay_note))
        return
    recorded = s.replay.header.get("outcome")
    now = _outcome(report)
    note = f"identical to {s.replay_path}, event by event ({len(expected)} events)"
    if recorded and recorded != "passed":
        note += ("; the recorded failure reproduced" if now == recorded
                 else f"; recorded outcome: {recorded}; now: {now}")
    run.replay_note = note
    s.replayed.append((item.nodeid, "replay " + note))


def _outcome(report: pytest.TestReport) -> str:
    if not report.failed:
        return "passed"
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None) or str(report.longrepr)
    return (message.strip().splitlines() or ["failed"])[0][:200]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    run = item.stash.get(_RUN, None)
    if (call.excinfo is not None and not item.config.getoption("fulltrace", False)
            and any(n in getattr(item, "fixturenames", ()) for n in ("fake_net", "real_net", "net"))):
        _hide_simnet_frames(item)
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        hint = _missing_module_hint(call.excinfo)
        if hint:  # an import inside a test or fixture
            report.sections.append(("simnet", hint))
    if run is None:
        return
    if report.when == "teardown":
        run.net = None  # passing or failing: the report has what it needs
        del item.stash[_RUN]
        return
    if report.when != "call":
        return
    config = item.config
    s: _Settings = config.stash[_CONF]
    failed = report.failed
    if run.kind != "fake":
        if failed:
            report.sections.append(("simnet", "network: real (kernel sockets)"))
        return
    net = run.net
    if _is_replayed(item) and net.trace is not None:
        _check_replay(item, run, report)
    if not (failed or s.trace_all):
        return
    if s.trace_dir and net.trace is not None and run.trace_path is None:
        net.trace.header["outcome"] = _outcome(report)
        target = os.path.join(s.trace_dir, _trace_file_name(item.nodeid, run.seed))
        try:
            run.trace_path = net.trace.write(target)
        except OSError as exc:
            run.trace_path = None
            report.sections.append(("simnet", f"trace: not written to {target} "
                                              f"({exc.strerror or exc})"))
    if not failed:
        return
    lines = []
    foreign = _foreign_channels()
    if foreign:
        hint = "hint: " + "; ".join(foreign)
        if "standard library's asyncore" in hint:
            hint += ". Use simnet's modules: " + _INSTALL_HINT
        lines.append(hint)
    lines += [f"seed: {run.seed}",
              "faults: " + net.faults.plan.describe().replace("\n", "\n        ")]
    if net.faults.plan:
        lines.append("fired: " + ", ".join(str(n) for n in net.faults.fired))
    lines.append(f"virtual time: {net.time():.6f}s")
    if net.trace is not None:
        lines += _timeline(net, run.trace_path, config)
    if run.trace_path:
        shown = _shown_path(config, run.trace_path)
        lines.append(f"trace: {shown}")
        html = os.path.splitext(shown)[0] + ".html"
        lines.append(f"diagram: simnet trace html {shlex.quote(shown)} -o {shlex.quote(html)}")
    else:
        lines.append("trace: (not written; add --simnet-trace-dir DIR, then `simnet trace html` "
                     "draws it)")
    if run.replay_note:
        lines.append(f"replay: {run.replay_note}")
    else:
        lines.append(f"replay: {_replay_command(config, item, run)}")
    report.sections.append(("simnet", "\n".join(lines)))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    s = config.stash.get(_CONF, None)
    if s is None or not s.replayed:
        return
    for nodeid, note in s.replayed:
        terminalreporter.write_line(f"simnet: {nodeid}: {note}")
