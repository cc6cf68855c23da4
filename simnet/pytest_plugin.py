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
    ``--simnet-backend``).
``tls_ca``, ``tls_server_context``, ``tls_client_context``
    A trustme certificate authority, a server context with a certificate for
    ``localhost``/``127.0.0.1``/``mail.example``, and a client context that
    trusts it -- for :mod:`simnet.tls` on either network.

Per-test settings come from a marker::

    @pytest.mark.simnet(seed=7, faults=[Rule("short_read", max_bytes=1)], latency=0.05)
    def test_chat(fake_net): ...

Options: ``--simnet-seed N`` (default: derived from the test id, the same on
every run, machine and xdist worker), ``--simnet-seeds K`` (run each
fake-network test under K seeds), ``--simnet-backend fake|real|both``,
``--simnet-trace-dir DIR`` (write the traces of failing tests there),
``--simnet-trace-all`` (of all tests), ``--simnet-replay FILE`` (rerun a test
with a recorded trace's seed and plan, and check it event by event).

A failing test's report gets a ``simnet`` section: the seed, the fault plan
in plain words, the last events of the trace, the trace file and the command
line that replays the failure.
"""

from __future__ import annotations

import os
import re
import shlex
import zlib
from typing import Any, Iterator

import pytest

from simnet.faults import FaultPlan, PlanError

MARKER_KEYS = ("seed", "faults", "latency", "bandwidth", "sndbuf", "rcvbuf", "shuffle", "start_time",
               "pass_cost")
_NETWORK_KEYS = ("latency", "bandwidth", "sndbuf", "rcvbuf", "shuffle", "start_time", "pass_cost")
_STATE = pytest.StashKey[dict]()
_RUN = pytest.StashKey["_Run"]()


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise ValueError(f"expected a number >= 0, got {value}")
    return value


def _pos_int(text: str) -> int:
    value = _nonneg_int(text)
    if value < 1:
        raise ValueError(f"expected a number >= 1, got {value}")
    return value


def _shard(text: str) -> tuple[int, int]:
    import argparse

    from simnet.distributed import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simnet", "simnet: simulated networks and fault injection")
    group.addoption("--simnet-seed", type=_nonneg_int, default=None, metavar="N",
                    help="seed of every fake network (default: derived from each test's id)")
    group.addoption("--simnet-seeds", type=_pos_int, default=1, metavar="K",
                    help="run each fake-network test under K seeds")
    group.addoption("--simnet-shard", type=_shard, default=None, metavar="I/N",
                    help="with --simnet-seeds K: run the I-th of N disjoint slices of K seeds "
                         "(a CI matrix of N jobs runs N*K seeds per test, none twice)")
    group.addoption("--simnet-backend", choices=("fake", "real", "both"), default="both",
                    help="which networks the `net` fixture runs a test on (default: both)")
    group.addoption("--simnet-trace-dir", default=None, metavar="DIR",
                    help="write the trace of each failing fake-network test into DIR")
    group.addoption("--simnet-trace-all", action="store_true",
                    help="with --simnet-trace-dir: write the traces of all tests")
    group.addoption("--simnet-replay", default=None, metavar="FILE",
                    help="rerun the selected test with this trace's seed and faults, "
                         "and check that it does the same, event by event")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "simnet(seed=None, faults=None, latency=..., bandwidth=..., sndbuf=..., rcvbuf=..., "
        "shuffle=..., start_time=..., pass_cost=...): settings of the test's fake network")
    replay = config.getoption("--simnet-replay")
    state: dict[str, Any] = {"replay": None}
    if replay:
        from simnet.trace import Trace, TraceError

        try:
            state["replay"] = Trace.load(replay)
        except TraceError as exc:
            raise pytest.UsageError(f"--simnet-replay: {exc}") from None
    config.stash[_STATE] = state


def seed_for(nodeid: str) -> int:
    """The default seed of a test: a CRC of its id, stable everywhere."""
    return zlib.crc32(nodeid.encode("utf-8"))


def _base_nodeid(nodeid: str) -> str:
    return re.sub(r"\[.*\]$", "", nodeid)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    if "net" in metafunc.fixturenames:
        backend = config.getoption("--simnet-backend")
        backends = ["fake", "real"] if backend == "both" else [backend]
        metafunc.parametrize("net", backends, indirect=True, ids=backends)
    seeds = config.getoption("--simnet-seeds")
    shard = config.getoption("--simnet-shard")
    if (seeds > 1 or shard) and ("fake_net" in metafunc.fixturenames or "net" in metafunc.fixturenames):
        base = config.getoption("--simnet-seed")
        if base is None:
            base = seed_for(_base_nodeid(metafunc.definition.nodeid))
        if shard:  # shard I/N: the I-th block of K seeds
            base += (shard[0] - 1) * seeds
        metafunc.parametrize("simnet_seed", [base + i for i in range(seeds)],
                             indirect=True, ids=[f"seed{base + i}" for i in range(seeds)])


def _marker_settings(item: pytest.Item) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers("simnet"))):
        if mark.args:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.simnet takes keyword "
                                    f"arguments only, got {mark.args!r}")
        unknown = sorted(set(mark.kwargs) - set(MARKER_KEYS))
        if unknown:
            raise pytest.UsageError(
                f"{item.nodeid}: unknown @pytest.mark.simnet argument(s) {', '.join(unknown)} "
                f"(known: {', '.join(MARKER_KEYS)})")
        settings.update(mark.kwargs)
    if "faults" in settings:
        try:
            settings["faults"] = FaultPlan.coerce(settings["faults"])
        except (PlanError, TypeError) as exc:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.simnet(faults=...): {exc}") from None
    return settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        settings = _marker_settings(item)  # fails collection on a bad marker
        if settings:
            try:
                from simnet.fakesock import FakeNetwork

                FakeNetwork(**{k: v for k, v in settings.items() if k != "seed"},
                            seed=settings.get("seed", 0)).close()
            except (TypeError, ValueError) as exc:
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.simnet: {exc}") from None


@pytest.fixture
def simnet_seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's fake network (see ``--simnet-seed``)."""
    if hasattr(request, "param"):
        return int(request.param)
    replay = request.config.stash[_STATE]["replay"]
    if replay is not None:
        return int(replay.header.get("seed", 0))
    marked = _marker_settings(request.node).get("seed")
    if marked is not None:
        return int(marked)
    option = request.config.getoption("--simnet-seed")
    if option is not None:
        return option
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


class _Run:
    """What the plugin knows of one test's network, for the report."""

    def __init__(self, kind: str, net: Any, seed: int | None) -> None:
        self.kind = kind
        self.net = net
        self.seed = seed
        self.trace_path: str | None = None


def _start_fake(request: pytest.FixtureRequest, seed: int) -> Any:
    from simnet.fakesock import FakeNetwork

    settings = _marker_settings(request.node)
    replay = request.config.stash[_STATE]["replay"]
    if replay is not None:
        header = replay.header
        settings["faults"] = FaultPlan(header.get("faults") or [])
        settings.update({k: v for k, v in (header.get("network") or {}).items() if k in _NETWORK_KEYS})
    settings.pop("seed", None)
    net = FakeNetwork(seed=seed, trace=True, **settings)
    assert net.trace is not None
    net.trace.header["scenario"] = request.node.nodeid
    return net


def _finish_fake(request: pytest.FixtureRequest, net: Any, run: _Run) -> None:
    import simnet

    for m in [simnet.socket_map] + list(net._maps):
        for fd in [fd for fd in m if fd >= simnet._state.FAKE_FD_BASE]:
            m.pop(fd, None)
    replay = request.config.stash[_STATE]["replay"]
    if replay is not None and net.trace is not None:
        from simnet.replay import compare

        compare(replay.normalised(), net.trace.normalised(), request.config.getoption("--simnet-replay"))


@pytest.fixture
def fake_net(request: pytest.FixtureRequest, simnet_seed: int) -> Iterator[Any]:
    """A fresh FakeNetwork, entered for the test, tracing; closed at teardown
    with every channel it served taken out of the maps."""
    net = _start_fake(request, simnet_seed)
    run = _Run("fake", net, simnet_seed)
    request.node.stash[_RUN] = run
    with net:
        yield net
        _finish_fake(request, net, run)


@pytest.fixture
def real_net(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The real network, entered for the test. Fails a test that leaves a
    socket or file descriptor open, naming it."""
    import simnet
    from simnet.real import RealNetwork

    settings = _marker_settings(request.node)
    before = _open_fds()
    kwargs = {"faults": settings["faults"]} if settings.get("faults") else {}
    net = RealNetwork(**kwargs)
    request.node.stash[_RUN] = _Run("real", net, None)
    with net:
        yield net
    simnet.close_all(ignore_all=True)
    simnet._state.real_timers.clear()
    leaked = {fd: t for fd, t in _open_fds().items() if fd not in before}
    if leaked:
        names = "; ".join(_describe_fd(fd, t) for fd, t in sorted(leaked.items()))
        for fd in leaked:
            try:
                os.close(fd)
            except OSError:
                pass
        pytest.fail(f"the test left {len(leaked)} file descriptor(s) open: {names}", pytrace=False)


@pytest.fixture
def net(request: pytest.FixtureRequest, simnet_seed: int) -> Iterator[Any]:
    """The test runs once on each network: ``fake`` and ``real``."""
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


def _trace_path(config: pytest.Config, nodeid: str, seed: int | None) -> str:
    directory = config.getoption("--simnet-trace-dir")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]
    return os.path.join(directory, f"{safe}-seed{seed}.jsonl")


def _replay_command(config: pytest.Config, item: pytest.Item, run: _Run) -> str:
    parts = ["pytest", item.nodeid]
    if run.trace_path:
        parts += ["--simnet-replay", run.trace_path]
    else:
        parts += ["--simnet-seed", str(run.seed)]
    return " ".join(shlex.quote(p) for p in parts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    run = item.stash.get(_RUN, None)
    if run is None or report.when not in ("call", "teardown"):
        return
    config = item.config
    failed = report.failed
    if run.kind != "fake":
        if failed and report.when == "call":
            report.sections.append(("simnet", "network: real (kernel sockets)"))
        return
    net = run.net
    if report.when == "teardown" or not (failed or config.getoption("--simnet-trace-all")):
        return
    if config.getoption("--simnet-trace-dir") and net.trace is not None and run.trace_path is None:
        run.trace_path = net.trace.write(_trace_path(config, item.nodeid, run.seed))
    if not failed:
        return
    lines = [f"seed: {run.seed}",
             "faults: " + net.faults.plan.describe().replace("\n", "\n        ")]
    if net.faults.plan:
        lines.append("fired: " + ", ".join(str(n) for n in net.faults.fired))
    lines.append(f"virtual time: {net.time():.6f}s")
    if net.trace is not None:
        events = net.trace.events[-12:]
        lines.append(f"last {len(events)} of {len(net.trace.events)} events:")
        for ev in events:
            shown = [(f"<{len(x)} bytes>" if isinstance(x, bytes) else x) for x in ev]
            lines.append("  " + " ".join(str(x) for x in shown))
    lines.append(f"trace: {run.trace_path or '(not written; add --simnet-trace-dir DIR)'}")
    lines.append(f"replay: {_replay_command(config, item, run)}")
    report.sections.append(("simnet", "\n".join(lines)))
