"""Run one scripted scenario on several asyncore/asynchat implementations and
compare what the callbacks did.

Vocabulary
----------
*Target*
    An implementation to test: a pair of modules (``asyncore``, ``asynchat``)
    plus the network its sockets live on. :data:`TARGETS` lists them; the
    first one is the reference the others must match. Adding a target (for
    instance simnet on a fake in-memory network) is one more entry::

        Target("simnet-fake", _simnet_modules, lambda: FakeNetwork(seed=1))

    ``network`` is called once per run and entered as a context manager
    around the scenario; the value it yields must offer
    ``socket(family, type)`` (raw sockets for the scenario's own use) and may
    set ``host`` (the address to listen on; default ``"127.0.0.1"``).

*Scenario*
    A function ``scenario(env, rec, **params)`` written once against
    ``env.asyncore`` / ``env.asynchat``. It builds its dispatchers in the
    private map ``env.map``, drives the loop only through
    :meth:`Env.run_until` / :meth:`Env.run` (always bounded), and writes what
    happens into channel logs obtained from ``rec``.

*Recording*
    ``{role: [event, ...]}``: one list per channel, keyed by a stable role
    name ("client-3", "server-conn-for-client-3", ...), never by port or fd.
    Received bytes are aggregated (consecutive reads merge into one ``data``
    event), so the way the kernel chunks a stream does not show; the order of
    events *between* channels is not recorded, since it depends on timing.

:func:`run_everywhere` runs a scenario on every target, asserts that all
recordings equal the reference one, and returns it so that the test can
check the expected sequence as well.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import pprint
import re
import socket
import sys
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, ContextManager

from simnet.fakesock import FakeNetwork

try:  # tests/ is on sys.path when pytest collects (rootdir-relative imports)
    import stdlib_reference
except ImportError:  # imported as tests.differential.harness
    from tests import stdlib_reference

# ---------------------------------------------------------------------------
# targets


def _stdlib_modules() -> tuple[ModuleType, ModuleType]:
    """CPython 3.11's ``asyncore``/``asynchat``: this interpreter's stdlib up to
    3.11; on 3.12+ (which removed them) an installed 3.11's, loaded by path
    (see ``tests/stdlib_reference.py``). No copy on the machine: the test skips."""
    pair = stdlib_reference.modules()
    if pair is None:
        import pytest

        pytest.skip(stdlib_reference.SKIP_REASON)
    asyncore, asynchat = pair
    # simnet.install() would have put simnet's modules under these names.
    if asyncore.__name__ != "asyncore" or asynchat.asyncore is not asyncore:
        raise RuntimeError(
            "'import asyncore' does not give the stdlib module (was simnet.install() "
            "called?); the differential tests need the real stdlib as reference"
        )
    return asyncore, asynchat


def _simnet_modules() -> tuple[ModuleType, ModuleType]:
    from simnet import asynchat, asyncore

    return asyncore, asynchat


class Loopback:
    """The kernel's loopback interface, the network of the real-socket targets.

    Entering it changes nothing: dispatchers create kernel sockets as usual.
    """

    host = "127.0.0.1"

    def __enter__(self) -> Loopback:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM) -> socket.socket:
        return socket.socket(family, type)

    def __repr__(self) -> str:
        return "<Loopback 127.0.0.1>"


@dataclass(frozen=True)
class Target:
    """One implementation under test.

    name
        Shown in test output and difference reports.
    modules
        Returns the ``(asyncore, asynchat)`` pair; called once per run.
    network
        Returns a fresh network context manager for one run (see the module
        docstring for what its value must offer).
    pass_timeout
        The ``timeout`` of each loop pass: the longest a pass waits when no
        channel is ready.
    """

    name: str
    modules: Callable[[], tuple[ModuleType, ModuleType]]
    network: Callable[[], ContextManager[Any]]
    pass_timeout: float = 0.02

    def __str__(self) -> str:
        return self.name


#: The implementations every scenario runs on; the first is the reference.
TARGETS: list[Target] = [
    Target("stdlib", _stdlib_modules, Loopback),
    Target("simnet", _simnet_modules, Loopback),
    Target("simnet-fake", _simnet_modules, lambda: FakeNetwork(seed=1)),
]

# ---------------------------------------------------------------------------
# recording


def summary(data: bytes) -> Any:
    """How received bytes appear in a recording: short payloads verbatim,
    long ones as their length and a digest (keeps difference reports short)."""
    data = bytes(data)
    if len(data) <= 64:
        return data
    return "<%d bytes sha256:%s>" % (len(data), hashlib.sha256(data).hexdigest()[:16])


def pattern(n: int, seed: int = 0) -> bytes:
    """*n* bytes of a non-repeating-looking, reproducible payload."""
    out = bytearray()
    counter = seed
    while len(out) < n:
        out += hashlib.sha256(b"%d" % counter).digest()
        counter += 1
    return bytes(out[:n])


class ChannelLog:
    """The events of one channel (or of the scenario's driver).

    ``name`` may be left ``None`` at creation and set later; with
    ``name_prefix`` it is set automatically from the first bytes the channel
    receives: ``name_prefix + <bytes before the first ":">``. That is how a
    server-side connection is told apart from its siblings: by which client
    talks to it, not by its port.
    """

    def __init__(self, name: str | None = None, name_prefix: str | None = None) -> None:
        self.name = name
        self.name_prefix = name_prefix
        self.events: list[tuple] = []
        self.received = b""

    def add(self, *event: Any) -> None:
        """Record one event: a tuple whose first item names it."""
        self.events.append(event)

    def data(self, chunk: bytes, label: str = "data") -> None:
        """Record received bytes; merges with an immediately preceding
        ``label`` event so that chunk boundaries do not show."""
        if not chunk:
            return
        self.received += chunk
        last = self.events[-1] if self.events else None
        if last is not None and last[0] == label and isinstance(last[1], bytearray):
            last[1].extend(chunk)
        else:
            self.events.append((label, bytearray(chunk)))
        if self.name is None and self.name_prefix is not None and b":" in self.received:
            who = self.received.split(b":", 1)[0].decode("ascii", "replace")
            self.name = self.name_prefix + who

    def rendered(self) -> list[tuple]:
        return [
            tuple(summary(x) if isinstance(x, bytearray) else x for x in event)
            for event in self.events
        ]

    def __repr__(self) -> str:
        return f"<ChannelLog {self.name!r} {len(self.events)} events>"


class Recorder:
    """All channel logs of one run."""

    def __init__(self) -> None:
        self.logs: list[ChannelLog] = []

    def log(self, name: str | None = None, *, name_prefix: str | None = None) -> ChannelLog:
        log = ChannelLog(name, name_prefix)
        self.logs.append(log)
        return log

    def result(self) -> dict[str, list[tuple]]:
        out: dict[str, list[tuple]] = {}
        for log in self.logs:
            if log.name is None:
                raise AssertionError(f"a channel log was never named; its events: {log.rendered()!r}")
            if log.name in out:
                raise AssertionError(f"two channel logs are named {log.name!r}")
            out[log.name] = log.rendered()
        return dict(sorted(out.items()))

    def snapshot(self) -> str:
        """The logs so far, for failure messages (unnamed logs included)."""
        return pprint.pformat({log.name or f"<unnamed #{i}>": log.rendered()
                               for i, log in enumerate(self.logs)}, width=100)


# Long module names of the loaded targets -> the stdlib's names, so that
# "<simnet.asyncore.dispatcher ...>" and "<asyncore.dispatcher ...>" compare equal.
_module_aliases: dict[str, str] = {}

_ID = re.compile(r" at 0x[0-9a-f]+>")
_BROKEN_REPR_ID = re.compile(r"failed for object at [0-9a-f]+>")
_HOST_PORT = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}:\d+")
_ADDR_TUPLE = re.compile(r"\('\d{1,3}(?:\.\d{1,3}){3}', \d+\)")
_TB_FRAME = re.compile(r"\[([^|\[\]]*)\|([^|\[\]]*)\|(\d+)\]")


def normalize(text: str) -> str:
    """Mask what legitimately differs between runs and implementations:
    object ids, ports, and file paths / line numbers in ``compact_traceback``
    output (a frame ``[path|func|line]`` becomes ``[basename|func]``); and
    map the targets' module names to the stdlib's."""
    text = _ID.sub(" at 0xID>", text)
    text = _BROKEN_REPR_ID.sub("failed for object at ID>", text)
    text = _HOST_PORT.sub("HOST:PORT", text)
    text = _ADDR_TUPLE.sub("('HOST', PORT)", text)
    text = _TB_FRAME.sub(lambda m: "[%s|%s]" % (os.path.basename(m[1]), m[2]), text)
    for long, short in _module_aliases.items():
        text = re.sub(r"(?<![\w.])" + re.escape(long) + r"\.", short + ".", text)
    return text


class Recording:
    """Mixin for a scenario's dispatcher classes, listed *before* the target's
    base class: ``class Client(Recording, env.asyncore.dispatcher)``.

    The instance must have a ``log`` (:class:`ChannelLog`). ``log_info`` output
    (every type, including the ``warning`` ones asyncore would drop) is
    recorded instead of printed, and ``handle_error`` is recorded -- with the
    exception being handled -- before the target's own ``handle_error`` runs.
    """

    log: ChannelLog

    def log_info(self, message: Any, type: str = "info") -> None:
        self.log.add("log_info", type, normalize(str(message)))

    def handle_error(self) -> None:
        t, v, _ = sys.exc_info()
        self.log.add("handle_error", t.__name__ if t else None, normalize(str(v)))
        super().handle_error()  # type: ignore[misc]


def event_names(events: list[tuple]) -> list[str]:
    """The first item of each event: the shape of a channel's history."""
    return [e[0] for e in events]


# ---------------------------------------------------------------------------
# one run


class Env:
    """What a scenario gets for one run on one target."""

    #: cap on loop passes for one :meth:`run_until`
    max_passes = 5000
    #: cap on wall-clock seconds for one :meth:`run_until`
    max_seconds = 10.0

    def __init__(self, target: Target, net: Any, use_poll: bool, rec: Recorder) -> None:
        self.target = target
        self.net = net
        self.asyncore, self.asynchat = target.modules()
        for mod, short in ((self.asyncore, "asyncore"), (self.asynchat, "asynchat")):
            if mod.__name__ != short:
                _module_aliases[mod.__name__] = short
        self.use_poll = use_poll
        self.rec = rec
        #: the private channel map of this run (the global socket_map is never used)
        self.map: dict[int, Any] = {}
        self.host: str = getattr(net, "host", "127.0.0.1")
        self._sockets: list[Any] = []

    # -- sockets ---------------------------------------------------------
    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM) -> Any:
        """A raw socket on the target's network, closed at teardown."""
        sock = self.net.socket(family, type)
        self._sockets.append(sock)
        return sock

    def listen_address(self) -> tuple[str, int]:
        """Where servers bind: the target's host, any free port."""
        return (self.host, 0)

    def refused_address(self) -> tuple[str, int]:
        """An address nobody listens on: a port bound by a socket that never
        listens and stays open until teardown, so nothing else can take it."""
        sock = self.socket()
        sock.bind((self.host, 0))
        return sock.getsockname()

    def tcp_pair(self) -> tuple[Any, Any]:
        """A connected pair of raw, blocking stream sockets on the target's
        network: ``(client, server side)``; both closed at teardown."""
        listener = self.socket()
        listener.bind(self.listen_address())
        listener.listen(1)
        client = self.socket()
        client.connect(listener.getsockname())
        server, _ = listener.accept()
        self._sockets.append(server)
        listener.close()
        return client, server

    def in_map(self, channel: Any) -> bool:
        return any(obj is channel for obj in self.map.values())

    # -- the loop --------------------------------------------------------
    def run(self, passes: int) -> None:
        """Run at most *passes* loop passes (fewer if the map empties)."""
        self.asyncore.loop(timeout=self.target.pass_timeout, use_poll=self.use_poll,
                           map=self.map, count=passes)

    def run_until(self, cond: Callable[[], bool], what: str = "the condition") -> int:
        """Run single loop passes until ``cond()`` holds; returns the number
        of passes. Fails if the map empties first or a cap is reached."""
        deadline = time.monotonic() + self.max_seconds
        passes = 0
        while not cond():
            if not self.map:
                raise AssertionError(f"[{self.target.name}] the map emptied before {what}; "
                                     f"recorded so far:\n{self.rec.snapshot()}")
            if passes >= self.max_passes or time.monotonic() > deadline:
                raise AssertionError(
                    f"[{self.target.name}] gave up waiting for {what} after {passes} passes "
                    f"({len(self.map)} channels in the map: {list(self.map.values())}); "
                    f"recorded so far:\n{self.rec.snapshot()}"
                )
            self.run(1)
            passes += 1
        return passes

    def close(self) -> None:
        """Close every channel of the private map and every raw socket."""
        self.asyncore.close_all(self.map, ignore_all=True)
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass


def run_on(target: Target, scenario: Callable[..., None], *, use_poll: bool = False,
           **params: Any) -> dict[str, list[tuple]]:
    """Run *scenario* once on *target*; return its recording."""
    rec = Recorder()
    with target.network() as net:
        env = Env(target, net, use_poll, rec)
        global_map_before = dict(env.asyncore.socket_map)
        try:
            scenario(env, rec, **params)
        except BaseException as exc:
            exc.add_note(f"(scenario {scenario.__name__} on target {target.name}, "
                         f"use_poll={use_poll}, params={params})")
            raise
        finally:
            env.close()
        if dict(env.asyncore.socket_map) != global_map_before:
            raise AssertionError(f"[{target.name}] {scenario.__name__} touched the global socket_map")
    return rec.result()


def run_each(scenario: Callable[..., None], *, use_poll: bool = False,
             targets: list[Target] | None = None, **params: Any) -> dict[str, dict[str, list[tuple]]]:
    """Run *scenario* on every target: ``{target name: recording}``."""
    return {t.name: run_on(t, scenario, use_poll=use_poll, **params)
            for t in (TARGETS if targets is None else targets)}


def describe_difference(ref_name: str, ref: Any, name: str, got: Any) -> str:
    ref_text = pprint.pformat(ref, width=100).splitlines()
    got_text = pprint.pformat(got, width=100).splitlines()
    diff = "\n".join(difflib.unified_diff(ref_text, got_text, ref_name, name, lineterm=""))
    return f"recording of {name!r} differs from the reference {ref_name!r}:\n{diff}"


def assert_same(recordings: dict[str, Any]) -> Any:
    """Assert all recordings equal the first (the reference); return it."""
    (ref_name, ref), *others = recordings.items()
    for name, got in others:
        if got != ref:
            raise AssertionError(describe_difference(ref_name, ref, name, got))
    return ref


def run_everywhere(scenario: Callable[..., None], *, use_poll: bool = False,
                   targets: list[Target] | None = None, **params: Any) -> dict[str, list[tuple]]:
    """Run *scenario* on every target, assert the recordings are equal, and
    return the reference recording for the test's own expectations."""
    return assert_same(run_each(scenario, use_poll=use_poll, targets=targets, **params))


# ---------------------------------------------------------------------------
# building blocks shared by scenarios


def start_listener(env: Env, rec: Recorder, make_handler: Callable[[Any], Any], *,
                   name: str = "listener", backlog: int = 128,
                   before_listen: Callable[[Any], None] | None = None) -> Any:
    """A listening dispatcher of the target on ``env.listen_address()``.

    Each accepted socket is passed to ``make_handler(sock)``, whose result is
    appended to ``listener.handlers``; every ``handle_accepted`` is recorded
    in the log *name*. ``listener.address`` is where clients connect.
    """

    class Listener(Recording, env.asyncore.dispatcher):
        def handle_accepted(self, sock, addr):
            self.log.add("handle_accepted")
            self.handlers.append(make_handler(sock))

    listener = Listener(map=env.map)
    listener.log = rec.log(name)
    listener.handlers = []
    listener.create_socket()
    listener.set_reuse_addr()
    if before_listen is not None:
        before_listen(listener.socket)
    listener.bind(env.listen_address())
    listener.listen(backlog)
    listener.address = listener.socket.getsockname()
    return listener
