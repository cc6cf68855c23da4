"""Echo round-trip benchmark: ``simnet.asyncore`` against the stdlib ``asyncore``.

One process, one channel map per run: an echo server (a listening dispatcher
that accepts, and one echo handler per connection) and C clients, each doing
M round trips of B bytes (send B bytes, wait until all B came back, repeat).
The same workload -- written once, against a module parameter -- runs on the
stdlib ``asyncore`` and on ``simnet.asyncore``.

Shared machines are noisy, so the two contenders are interleaved (stdlib,
simnet, stdlib, simnet, ... for R repetitions) and what is reported is the
ratio of each adjacent pair's rates, simnet / stdlib: median, min and max.
Absolute rates are printed for orientation only.

Run it::

    python bench/echo.py                      # the default suite, a table
    python bench/echo.py --poller poll --clients 100 --trips 200
    python bench/echo.py --poller epoll --idle 1000 --clients 10
    python bench/echo.py --poller epoll --idle 1000 --profile   # cProfile both

Cases of the suite (``--suite``):

* ``select``: ``loop(use_poll=False)`` for both, C=1 and C=100, B=64;
* ``poll``: ``loop(use_poll=True)`` for both, C=1 and C=100;
* ``epoll``: simnet ``loop(poller="epoll")`` against stdlib
  ``loop(use_poll=True)``, with 1,000 idle channels (connected sockets that
  are readable, not writable, and never receive anything) beside 10 active
  echo clients.

Backends (``--backend``, listed in :data:`BACKENDS`):

* ``real`` (the default): both contenders on kernel sockets on 127.0.0.1;
  idle channels are ``socket.socketpair()`` ends.
* ``fake``: the stdlib on real loopback against ``simnet.asyncore`` on a
  ``FakeNetwork`` (virtual time; idle channels are connected fake sockets),
  so the ratio says how much faster a test runs on the fake network than the
  same test on kernel sockets. ``--suite`` then runs :func:`fake_suite`.

A backend is a small class (see :class:`Backend`) that says which modules
compete, which address the server binds, how idle channels are made and what
to enter around a run; another backend is one more subclass registered in
:data:`BACKENDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import io
import os
import pstats
import socket
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

#: Seconds a pass may wait when nothing is ready (a healthy run never waits that long).
PASS_TIMEOUT = 0.5
#: Passes per ``loop()`` call; between calls the watchdog checks the deadline.
PASSES_PER_CALL = 20_000
#: A run that takes longer than this is declared hung.
RUN_DEADLINE = 120.0
#: Spread of the ratio when both contenders are the same module (an A/A run
#: on a 2-core machine: about +-1%); a median this close below target is noted.
NOISE = 0.02


# ---------------------------------------------------------------------------
# cases


@dataclass(frozen=True)
class Case:
    """One benchmark configuration.

    *poller* is ``"select"``, ``"poll"`` or ``"epoll"``; for ``"epoll"`` the
    stdlib (which has no epoll) runs ``use_poll=True``. *target* is the
    simnet/stdlib ratio the case should reach (median).
    """

    poller: str
    clients: int
    trips: int
    size: int = 64
    idle: int = 0
    target: float = 1.0

    @property
    def label(self) -> str:
        text = f"{self.poller:<6} C={self.clients:<4} B={self.size}"
        if self.idle:
            text += f" idle={self.idle}"
        return text

    @property
    def round_trips(self) -> int:
        """Round trips of one run."""
        return self.clients * self.trips


def default_suite() -> list[Case]:
    """The cases of ``--suite``, sized for well under two minutes on 2 cores."""
    return [
        Case("select", clients=1, trips=60_000),
        Case("select", clients=100, trips=800),
        Case("poll", clients=1, trips=60_000),
        Case("poll", clients=100, trips=800),
        Case("epoll", clients=10, trips=600, idle=1000, target=2.0),
    ]


def fake_suite() -> list[Case]:
    """The cases of ``--backend fake --suite``: the fake network against the
    stdlib on real loopback (target: 3x at C=100, B=64)."""
    return [
        Case("select", clients=100, trips=800, target=3.0),
        Case("poll", clients=100, trips=800, target=3.0),
    ]


# ---------------------------------------------------------------------------
# backends


@dataclass
class Contender:
    """An implementation under test: a module with asyncore's API, and the
    keyword arguments its ``loop()`` gets for a given case."""

    name: str
    module: Any
    loop_kwargs: Callable[[Case], dict[str, Any]]
    #: context entered around each of this contender's runs (None: the backend's)
    session: Callable[[], Any] | None = None


def _stdlib_loop_kwargs(case: Case) -> dict[str, Any]:
    # the stdlib has select and poll only; epoll is measured against poll
    return {"use_poll": case.poller != "select"}


def _simnet_loop_kwargs(case: Case) -> dict[str, Any]:
    if case.poller == "epoll":
        return {"poller": "epoll"}
    # select and poll are called exactly as the stdlib is: a drop-in
    return {"use_poll": case.poller == "poll"}


@functools.lru_cache(maxsize=None)
def import_stdlib_asyncore() -> Any:
    """The stdlib ``asyncore`` (3.11 and older; on 3.12+ an installed 3.11's,
    loaded by path), its DeprecationWarning hushed.

    Looked up by file so that a ``simnet.install()`` elsewhere in the process
    cannot hand us simnet's module under the stdlib's name.
    """
    import importlib.util
    import sysconfig

    path = os.path.join(sysconfig.get_paths()["stdlib"], "asyncore.py")
    if not os.path.exists(path):
        # 3.12+: the tests' reference, 3.11's module loaded by path from an
        # installed 3.11 (tests/stdlib_reference.py; nothing is copied)
        tests = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
        sys.path.insert(0, tests)
        try:
            import stdlib_reference
        finally:
            sys.path.remove(tests)
        found = stdlib_reference.modules()
        if found is None:
            raise SystemExit(f"no stdlib asyncore at {path} (Python {sys.version.split()[0]}; "
                             f"it was removed in 3.12) and {stdlib_reference.SKIP_REASON}: "
                             "nothing to compare against")
        return found[0]
    existing = sys.modules.get("asyncore")
    if existing is not None and getattr(existing, "__file__", None) == path:
        return existing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        spec = importlib.util.spec_from_file_location("_stdlib_asyncore", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


class Backend:
    """Where the workload runs. Subclass it to add a backend.

    A backend names the contenders (two: the first is the baseline of the
    ratio, the second the candidate -- for a simulated network, e.g. simnet on
    real sockets against simnet on the fake one),
    the address the echo server binds, how idle channels' sockets are made,
    and a context entered around each run (a simulated network would be
    entered there, so ``create_socket()`` makes its sockets).
    """

    name = "?"

    def contenders(self) -> list[Contender]:
        raise NotImplementedError

    def listen_address(self) -> Any:
        raise NotImplementedError

    def idle_sockets(self, n: int) -> tuple[list[Any], list[Any]]:
        """Make *n* connected sockets for idle channels.

        Returns ``(ends, peers)``: *ends* go into the map; *peers* are the
        other ends, kept open (and silent) by the caller, closed after the run.
        """
        raise NotImplementedError

    def fds_needed(self, case: Case) -> int:
        """File descriptors one run of *case* holds at once (0: none real)."""
        return 0

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Context entered around each run."""
        yield

    def tune_socket(self, sock: Any) -> None:
        """Per-connection socket options (both ends of each echo connection)."""


class RealBackend(Backend):
    """Kernel sockets over loopback ``127.0.0.1``: stdlib against simnet."""

    name = "real"

    @functools.lru_cache(maxsize=None)
    def contenders(self) -> list[Contender]:
        import simnet.asyncore as simnet_asyncore

        return [
            Contender("stdlib", import_stdlib_asyncore(), _stdlib_loop_kwargs),
            Contender("simnet", simnet_asyncore, _simnet_loop_kwargs),
        ]

    def listen_address(self) -> Any:
        return ("127.0.0.1", 0)

    def idle_sockets(self, n: int) -> tuple[list[Any], list[Any]]:
        ends: list[Any] = []
        peers: list[Any] = []
        try:
            for _ in range(n):
                a, b = socket.socketpair()
                ends.append(a)
                peers.append(b)
        except BaseException:
            for s in ends + peers:
                s.close()
            raise
        return ends, peers

    def fds_needed(self, case: Case) -> int:
        # idle pairs, both ends of each echo connection, the listener, slack
        return 2 * case.idle + 2 * case.clients + 1 + 64

    def tune_socket(self, sock: Any) -> None:
        # small ping-pong messages: keep Nagle out of the measurement
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class FakeBackend(RealBackend):
    """The stdlib on real loopback against simnet on a fake network.

    The same workload, unchanged: on the fake network ``create_socket()``
    makes fake sockets and the loop waits in virtual time, so the ratio says
    how much faster a test on the fake network runs than the same test on
    real sockets.
    """

    name = "fake"

    @functools.lru_cache(maxsize=None)
    def contenders(self) -> list[Contender]:
        import simnet.asyncore as simnet_asyncore
        from simnet.fakesock import FakeNetwork

        return [
            Contender("stdlib", import_stdlib_asyncore(), _stdlib_loop_kwargs),
            Contender("simnet-fake", simnet_asyncore, _simnet_loop_kwargs,
                      session=lambda: FakeNetwork(seed=1)),
        ]

    def idle_sockets(self, n: int) -> tuple[list[Any], list[Any]]:
        from simnet import network

        net = network.current_network()
        if net is None or not net.is_fake:
            return super().idle_sockets(n)
        ends: list[Any] = []
        peers: list[Any] = []
        listener = net.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(n)
        for _ in range(n):
            a = net.socket()
            a.connect(listener.getsockname())
            ends.append(a)
            peers.append(listener.accept()[0])
        listener.close()
        return ends, peers


#: ``--backend`` choices.
BACKENDS: dict[str, type[Backend]] = {"real": RealBackend, "fake": FakeBackend}


# ---------------------------------------------------------------------------
# the workload, written once against an asyncore-like module


class BenchError(RuntimeError):
    """A run failed (a handler raised, or the watchdog fired)."""


@dataclass
class Stats:
    """What one run's channels report back."""

    clients: int
    done: int = 0
    round_trips: int = 0
    idle_reads: int = 0
    error: str | None = None


_classes: dict[int, tuple[type, type, type, type]] = {}


def channel_classes(mod: Any) -> tuple[type, type, type, type]:
    """The benchmark's dispatcher classes for module *mod* (built once per module):
    ``(Server, EchoHandler, Client, Idle)``."""
    key = id(mod)
    if key in _classes:
        return _classes[key]

    def fail(self: Any) -> None:
        # A handler raised: remember why and leave the loop at once (the
        # default handle_error would close the channel and the run would hang).
        _, t, v, info = mod.compact_traceback()
        self.stats.error = f"{type(self).__name__}: {t.__name__}: {v} {info}"
        raise mod.ExitNow(self.stats.error)

    class EchoHandler(mod.dispatcher_with_send):
        """Server side of one connection: sends back whatever it reads."""

        def __init__(self, sock: Any, map: dict, stats: Stats) -> None:
            mod.dispatcher_with_send.__init__(self, sock, map)
            self.stats = stats

        def handle_read(self) -> None:
            data = self.recv(65536)
            if data:
                self.send(data)

        def handle_close(self) -> None:
            self.close()

        handle_error = fail

    class Server(mod.dispatcher):
        """The listening channel: one :class:`EchoHandler` per connection."""

        def __init__(self, backend: Backend, map: dict, stats: Stats) -> None:
            mod.dispatcher.__init__(self, map=map)
            self.backend = backend
            self.stats = stats
            self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
            self.set_reuse_addr()
            self.bind(backend.listen_address())
            self.listen(1024)
            self.address = self.socket.getsockname()

        def writable(self) -> bool:
            return False

        def handle_accepted(self, sock: Any, addr: Any) -> None:
            handler = EchoHandler(sock, self._map, self.stats)  # in the map: closed with it
            self.backend.tune_socket(handler.socket)

        handle_error = fail

    class Client(mod.dispatcher):
        """Does *trips* round trips of *payload*, then closes; the last client
        to finish ends the run with ExitNow."""

        def __init__(self, backend: Backend, address: Any, payload: bytes, trips: int,
                     map: dict, stats: Stats) -> None:
            mod.dispatcher.__init__(self, map=map)
            self.stats = stats
            self.payload = payload
            self.left = trips
            self.got = 0
            self.out = b""
            self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
            backend.tune_socket(self.socket)
            self.connect(address)

        def writable(self) -> bool:
            return not self.connected or bool(self.out)

        def _send(self, data: bytes) -> None:
            data = self.out + data if self.out else data
            sent = self.send(data)
            self.out = data[sent:]

        def handle_connect(self) -> None:
            self._send(self.payload)

        def handle_write(self) -> None:
            if self.out:
                self._send(b"")

        def handle_read(self) -> None:
            data = self.recv(65536)
            self.got += len(data)
            if self.got < len(self.payload):
                return
            if self.got > len(self.payload):
                raise AssertionError(f"echoed {self.got} bytes for {len(self.payload)}")
            self.got = 0
            stats = self.stats
            stats.round_trips += 1
            self.left -= 1
            if self.left:
                self._send(self.payload)
                return
            self.close()
            stats.done += 1
            if stats.done == stats.clients:
                raise mod.ExitNow("all clients done")

        def handle_close(self) -> None:
            raise ConnectionError("the server closed a connection early")

        handle_error = fail

    class Idle(mod.dispatcher):
        """A connected channel that waits to read and never gets anything."""

        def __init__(self, sock: Any, map: dict, stats: Stats) -> None:
            mod.dispatcher.__init__(self, sock, map)
            self.stats = stats

        def readable(self) -> bool:
            return True

        def writable(self) -> bool:
            return False

        def handle_read(self) -> None:
            self.stats.idle_reads += 1
            self.recv(4096)

        def handle_close(self) -> None:
            self.close()

        handle_error = fail

    _classes[key] = (Server, EchoHandler, Client, Idle)
    return _classes[key]


@dataclass
class RunResult:
    """Outcome of one run: round trips completed in *seconds* of wall time."""

    round_trips: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.round_trips / self.seconds


def run_echo(backend: Backend, contender: Contender, case: Case,
             profiler: cProfile.Profile | None = None) -> RunResult:
    """Run *case* once on *contender*'s module; every socket is closed on return.

    Timing covers the loop only (from the first pass to the last client's
    last echo), connection set-up included; building the map is not timed.
    """
    mod = contender.module
    Server, _EchoHandler, Client, Idle = channel_classes(mod)
    kwargs = contender.loop_kwargs(case)
    stats = Stats(clients=case.clients)
    channels: dict[int, Any] = {}
    peers: list[Any] = []
    payload = b"x" * case.size
    with (contender.session() if contender.session is not None else backend.session()):
        try:
            if case.idle:
                ends, peers = backend.idle_sockets(case.idle)
                try:
                    for s in ends:
                        Idle(s, channels, stats)
                except BaseException:
                    for s in ends:
                        s.close()
                    raise
            server = Server(backend, channels, stats)
            for _ in range(case.clients):
                Client(backend, server.address, payload, case.trips, channels, stats)
            gc.collect()
            deadline = time.perf_counter() + RUN_DEADLINE
            if profiler is not None:
                profiler.enable()
            start = time.perf_counter()
            try:
                while True:
                    mod.loop(timeout=PASS_TIMEOUT, map=channels, count=PASSES_PER_CALL, **kwargs)
                    if not channels:
                        raise BenchError("the map emptied before the clients were done")
                    if time.perf_counter() > deadline:
                        raise BenchError(f"run still going after {RUN_DEADLINE}s: "
                                         f"{stats.done}/{case.clients} clients done")
            except mod.ExitNow:
                pass
            elapsed = time.perf_counter() - start
            if profiler is not None:
                profiler.disable()
        finally:
            mod.close_all(map=channels, ignore_all=True)
            for s in peers:
                s.close()
    if stats.error:
        raise BenchError(f"{contender.name}: {stats.error}")
    if stats.idle_reads:
        raise BenchError(f"{contender.name}: idle channels were read {stats.idle_reads} times")
    if stats.round_trips != case.round_trips:
        raise BenchError(f"{contender.name}: {stats.round_trips} round trips, "
                         f"expected {case.round_trips}")
    return RunResult(stats.round_trips, elapsed)


# ---------------------------------------------------------------------------
# file descriptor limit


@contextlib.contextmanager
def fd_limit(needed: int) -> Iterator[None]:
    """Make sure RLIMIT_NOFILE allows *needed* more descriptors than are open
    now; restore the old soft limit on exit."""
    if resource is None or needed <= 0:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = open_fd_count() + needed
    if soft != resource.RLIM_INFINITY and soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            raise SystemExit(f"need about {want} file descriptors but the hard limit "
                             f"(RLIMIT_NOFILE) is {hard}; raise it (ulimit -Hn) or use "
                             "fewer --idle/--clients")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    else:
        yield


def open_fd_count() -> int:
    """How many file descriptors this process has open (0 if unknown)."""
    for d in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(d))
        except OSError:
            continue
    return 0


# ---------------------------------------------------------------------------
# measuring


@dataclass
class CaseResult:
    """Interleaved runs of one case: rates per contender, ratio per repetition."""

    case: Case
    names: list[str]
    rates: dict[str, list[float]] = field(default_factory=dict)
    ratios: list[float] = field(default_factory=list)

    def median_rate(self, name: str) -> float:
        return statistics.median(self.rates[name])

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)


def measure(backend: Backend, case: Case, repeat: int, verbose: bool = False) -> CaseResult:
    """Warm up, then run the contenders alternately *repeat* times.

    The ratio of each repetition is candidate rate / baseline rate of the two
    adjacent runs (the baseline is the backend's first contender).
    """
    contenders = backend.contenders()
    base, cand = contenders[0], contenders[1]
    result = CaseResult(case, [c.name for c in contenders],
                        {c.name: [] for c in contenders})
    warm = Case(case.poller, case.clients, max(1, case.trips // 10), case.size,
                case.idle, case.target)
    with fd_limit(backend.fds_needed(case)):
        for c in contenders:
            run_echo(backend, c, warm)
        for i in range(repeat):
            runs = {c.name: run_echo(backend, c, case) for c in contenders}
            for name, run in runs.items():
                result.rates[name].append(run.rate)
            ratio = runs[cand.name].rate / runs[base.name].rate
            result.ratios.append(ratio)
            if verbose:
                parts = "  ".join(f"{n} {r.rate:9.0f}/s" for n, r in runs.items())
                print(f"    {case.label}  rep {i + 1}/{repeat}: {parts}  ratio {ratio:.3f}",
                      file=sys.stderr)
    return result


def print_table(results: list[CaseResult], backend: Backend) -> None:
    """The result table: median rates, median [min-max] ratio, target."""
    names = results[0].names
    head = (f"{'case':<30}" + "".join(f"{n + ' rt/s':>14}" for n in names)
            + f"  {names[1]}/{names[0]} median [min - max]   target")
    print(f"backend: {backend.name}, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus; rates are medians, ratio per interleaved pair")
    print(head)
    print("-" * len(head))
    for r in results:
        rates = "".join(f"{r.median_rate(n):14.0f}" for n in names)
        if r.median_ratio >= r.case.target:
            ok = "ok"
        elif r.median_ratio >= r.case.target * (1 - NOISE):
            ok = f"below, within {NOISE:.0%}"
        else:
            ok = "BELOW"
        print(f"{r.case.label:<30}{rates}  {r.median_ratio:6.3f}x "
              f"[{min(r.ratios):.3f} - {max(r.ratios):.3f}]{'':7}>= {r.case.target:.1f}x {ok}")


def profile_case(backend: Backend, case: Case, top: int) -> None:
    """cProfile one run of *case* per contender; print the top functions by
    own time and by cumulative time."""
    with fd_limit(backend.fds_needed(case)):
        for c in backend.contenders():
            run_echo(backend, c, case)  # warm-up
            prof = cProfile.Profile()
            res = run_echo(backend, c, case, profiler=prof)
            out = io.StringIO()
            st = pstats.Stats(prof, stream=out)
            st.sort_stats("tottime").print_stats(top)
            st.sort_stats("cumulative").print_stats(top)
            print(f"===== {c.name}: {case.label}, {res.round_trips} round trips "
                  f"in {res.seconds:.3f}s under cProfile =====")
            print(out.getvalue())


# ---------------------------------------------------------------------------
# command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Echo round trips per second: simnet.asyncore vs the stdlib asyncore, "
                    "interleaved runs, median ratio. Without case options, runs the suite.")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="real",
                        help="where the workload runs (default: real loopback sockets)")
    parser.add_argument("--suite", action="store_true",
                        help="run every case of the suite and print a table (the default "
                             "when no case option is given)")
    parser.add_argument("--poller", choices=("select", "poll", "epoll"),
                        help="one case: the loop's poller (epoll: simnet poller='epoll' "
                             "against stdlib use_poll=True)")
    parser.add_argument("--clients", "-C", type=int, metavar="C", help="echo clients (one case)")
    parser.add_argument("--trips", "-M", type=int, metavar="M", help="round trips per client")
    parser.add_argument("--size", "-B", type=int, metavar="B", help="bytes per message (default 64)")
    parser.add_argument("--idle", type=int, metavar="N",
                        help="idle channels beside the active ones (default 0; "
                             "1000 for --poller epoll)")
    parser.add_argument("--repeat", "-R", type=int, default=7, metavar="R",
                        help="interleaved repetitions per case (default 7)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every case's round trips (default 1.0; 0.1 for a smoke run)")
    parser.add_argument("--profile", action="store_true",
                        help="instead of timing, cProfile one run of each contender per case")
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every repetition")
    return parser


def cases_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Case]:
    """The suite, or the one case described by the options."""
    single = any(v is not None for v in (args.poller, args.clients, args.trips, args.size, args.idle))
    if args.suite or not single:
        if single:
            parser.error("--suite does not combine with --poller/--clients/--trips/--size/--idle")
        cases = default_suite() if args.backend == "real" else fake_suite()
    else:
        poller = args.poller or "select"
        clients = args.clients if args.clients is not None else (10 if poller == "epoll" else 1)
        idle = args.idle if args.idle is not None else (1000 if poller == "epoll" else 0)
        if args.trips is not None:
            trips = args.trips
        else:
            # about as many round trips per run as the suite's cases of that kind
            if idle:
                total = 6_000 * 1_000 // max(idle, 1_000)
            else:
                total = 60_000 if clients == 1 else 80_000
            trips = max(1, total // clients)
        cases = [Case(poller, clients, trips, args.size or 64, idle,
                      2.0 if poller == "epoll" else 1.0)]
    for c in cases:
        if c.clients < 1 or c.trips < 1 or c.size < 1 or c.idle < 0:
            parser.error("--clients, --trips and --size must be >= 1, --idle >= 0")
        if c.poller == "select" and 2 * (c.idle + c.clients) + 16 > 1000:
            parser.error("select() stops at FD_SETSIZE (1024 descriptors): use fewer "
                         "--clients/--idle, or --poller poll/epoll")
    if args.scale != 1.0:
        cases = [Case(c.poller, c.clients, max(1, round(c.trips * args.scale)), c.size, c.idle,
                      c.target) for c in cases]
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    cases = cases_from_args(args, parser)
    backend = BACKENDS[args.backend]()
    fds_before = open_fd_count()
    if args.profile:
        for case in cases:
            profile_case(backend, case, args.top)
        return 0
    started = time.perf_counter()
    results = []
    for case in cases:
        if args.verbose:
            print(f"  running {case.label} ({case.round_trips} round trips x "
                  f"{len(backend.contenders())} x {args.repeat})", file=sys.stderr)
        results.append(measure(backend, case, args.repeat, args.verbose))
    print_table(results, backend)
    leaked = open_fd_count() - fds_before
    print(f"({time.perf_counter() - started:.1f}s; {args.repeat} interleaved repetitions per case"
          + (f"; WARNING: {leaked} file descriptors leaked" if leaked > 0 else "") + ")")
    return 0 if all(r.median_ratio >= r.case.target for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
