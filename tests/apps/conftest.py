"""The networks every program of the apps suite runs on.

The ``backend`` fixture is parametrised over :data:`VARIANTS`:

``fake``
    :class:`~simnet.fakesock.FakeNetwork` (tracing) with ``net.patch()``: the
    stdlib client's blocking calls run the simulation, single-threaded.
``fake-faults``
    the same under :func:`fault_mix`: latency, partial sends, short reads,
    spurious EAGAIN on both sides' sends and recvs, one on accept.
``real``
    kernel sockets on loopback: the server's dispatchers run in a thread
    while the client makes its blocking calls (with timeouts) in the test.
``real-faults``
    :class:`~simnet.real.RealNetwork` under the same mix minus latency (the
    rules kernel sockets can show); the client's connections are made on
    that network too (``socket.create_connection`` is pointed at it), so the
    rules act on both sides.

Every variant passes: a program that works on loopback works on the fake
network, with and without the fault mix (issue 9). A difference between the
networks is a simnet bug, never an expected failure.

A test gets a :class:`Backend` and uses it the same way on all four::

    with backend.network():
        server = HTTPServer(("127.0.0.1", 0), channels)
        with backend.serving(channels):
            ...   # the stdlib client, unmodified
        backend.run_until(lambda: ..., channels)   # let the server finish
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import socket
import sys
import threading
import time
from typing import Any, Callable, Iterator

import pytest

import simnet.asyncore as asyncore
from simnet.fakesock import FakeNetwork
from simnet.faults import Rule
from simnet.real import RealNetwork

VARIANTS = ("fake", "fake-faults", "real", "real-faults")

#: seconds a real-socket test may wait for the server to finish
REAL_TIMEOUT = 10.0
#: virtual seconds the fake network may run to let the server finish
FAKE_TIMEOUT = 120.0
#: wall seconds after which a test of this suite is taken to hang: the stacks
#: are dumped and the run ends (bounds the clients that use blocking sockets
#: without a timeout, on real loopback)
WATCHDOG_SECONDS = 60


def fault_mix(fake: bool = True, client_conn: int = 1) -> list[Rule]:
    """The standard fault mix (cf. ``simnet demo``'s): slow, jittery links
    (fake network only), sends that take part of the data, reads that return
    part of what is buffered, and spurious EAGAINs on both sides' sends and
    recvs and on one accept. Transient: a correct program survives it.

    First in the plan (rules are tried in order, the first that fires
    wins): one sure EAGAIN on the first send and on the first recv of
    connection *client_conn*'s client end -- the blocking stdlib client's
    connection -- so that the mix surely reaches the blocking client (its
    random EAGAINs might all fall on other sockets)."""
    rules = [
        Rule("eagain", op="send", where={"side": "client", "conn": client_conn, "limit": 1}),
        Rule("eagain", op="recv", where={"side": "client", "conn": client_conn, "limit": 1}),
        Rule("partial_send", where={"probability": 0.4}),
        Rule("short_read", where={"probability": 0.4}),
        Rule("eagain", op="send", where={"side": "server", "probability": 0.2, "limit": 3}),
        Rule("eagain", op="recv", where={"side": "server", "probability": 0.2, "limit": 3}),
        Rule("eagain", op="send", where={"side": "client", "probability": 0.2, "limit": 3}),
        Rule("eagain", op="recv", where={"side": "client", "probability": 0.2, "limit": 3}),
        Rule("eagain", op="accept", where={"limit": 1}),
    ]
    if fake:
        rules.insert(0, Rule("latency", latency=0.01, jitter=0.005))
    return rules


class Backend:
    """One network variant; see the module docstring."""

    name: str
    fake: bool
    faults: bool

    def __init__(self, name: str, seed: int = 1, net: FakeNetwork | None = None) -> None:
        self.name = name
        self.fake = name.startswith("fake")
        self.faults = name.endswith("faults")
        self.seed = seed
        #: a fake network made (and entered) by someone else -- simnet.record()
        #: or replay() -- to run on instead of a new one
        self.given = net
        self.net: Any = None

    def __repr__(self) -> str:
        return f"<Backend {self.name} seed={self.seed}>"

    def plan(self, client_conn: int = 1) -> list[Rule]:
        return fault_mix(self.fake, client_conn) if self.faults else []

    @contextlib.contextmanager
    def network(self, client_conn: int = 1) -> Iterator[Backend]:
        """Enter the network; dispatchers and client sockets made inside use
        it. *client_conn*: the number of the blocking stdlib client's
        connection (connections are numbered from 1 as they are made)."""
        plan = self.plan(client_conn)
        if self.given is not None:
            with self.given.patch():
                self.net = self.given
                yield self
        elif self.fake:
            with FakeNetwork(seed=self.seed, faults=plan, trace=True) as net, net.patch():
                self.net = net
                yield self
        else:
            with RealNetwork(faults=plan, seed=self.seed) as net:
                self.net = net
                with (client_connections_on(net) if self.faults else contextlib.nullcontext()):
                    yield self

    @contextlib.contextmanager
    def serving(self, channels: dict, use_poll: bool = False) -> Iterator[None]:
        """While inside, the dispatchers of *channels* serve the client.

        Fake network: a blocking call of the client runs them (nothing to
        do). Real network: a thread runs ``asyncore.loop`` on *channels*
        (with *use_poll*, on ``poll``) until the block ends."""
        if self.fake:
            yield
            return
        stop = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            try:
                while not stop.is_set():
                    asyncore.loop(timeout=0.01, map=channels, use_poll=use_poll, count=1)
            except BaseException as exc:  # reported in the test's thread
                errors.append(exc)

        thread = threading.Thread(target=serve, name=f"apps-server-{self.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(REAL_TIMEOUT)
        assert not thread.is_alive(), "the server thread did not stop"
        if errors:
            raise errors[0]

    def run_until(self, done: Callable[[], bool], channels: dict) -> None:
        """Run the loop on *channels* (in this thread) until ``done()``."""
        if self.fake:
            self.net.run(until=done, timeout=FAKE_TIMEOUT, map=channels)
            return
        deadline = time.monotonic() + REAL_TIMEOUT
        while not done():
            assert time.monotonic() < deadline, f"not done within {REAL_TIMEOUT} s: {channels!r}"
            asyncore.loop(timeout=0.01, map=channels, count=1)

    def assert_the_mix_acted(self) -> None:
        """Under faults: the sure EAGAINs reached the blocking client, and
        partial sends and short reads happened (a test under the mix must
        not pass because the mix missed it)."""
        if not self.faults:
            return
        engine = self.net.faults
        acted: dict[str, int] = {}
        for rule, count in zip(engine.plan.rules, engine.fired):
            key = rule.fault if "conn" not in rule.where else \
                f"{rule.fault} {rule.params['op']} on the client's connection"
            acted[key] = acted.get(key, 0) + count
        assert acted["eagain send on the client's connection"] == 1, acted
        assert acted["eagain recv on the client's connection"] == 1, acted
        assert acted["partial_send"] > 0 and acted["short_read"] > 0, acted

    def elapsed(self) -> float:
        """The fake network's virtual time (None on real sockets)."""
        return self.net.time() if self.fake else None


@contextlib.contextmanager
def client_connections_on(net: RealNetwork) -> Iterator[None]:
    """Point ``socket.create_connection`` -- what ``http.client``, ``ftplib``
    and ``smtplib`` connect with -- at *net*, so that its fault plan acts on
    the client's sockets too. The client code is not touched."""
    original = socket.create_connection

    def create_connection(address: Any, timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,
                          source_address: Any = None, **kwargs: Any) -> Any:
        host, port = address
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = net.socket(family, kind, proto)
            try:
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error if error is not None else OSError(f"getaddrinfo({host!r}) returned nothing")

    socket.create_connection = create_connection
    try:
        yield
    finally:
        socket.create_connection = original


def recorded_run(session: Callable[..., None], seed: int, **kwargs: Any) -> tuple[str, float, list]:
    """Run ``session(backend, **kwargs)`` on the fake network under the
    fault mix with *seed*; return (outcome, virtual time, trace events). The
    outcome is ``"ok"`` or the type of the exception the session ended
    with: a deterministic failure is still deterministic."""
    backend = Backend("fake-faults", seed=seed)
    try:
        session(backend, **kwargs)
        outcome = "ok"
    except Exception as exc:
        # the exception's type: pytest rewrites assertion messages in-process
        # only, and messages hold object addresses
        outcome = type(exc).__name__
    return outcome, backend.net.time(), backend.net.trace.events


def fingerprint(run: tuple[str, float, list]) -> str:
    """A digest of a :func:`recorded_run` result (outcome, exact time, every event)."""
    return hashlib.sha256(repr(run).encode()).hexdigest()


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=sys.__stderr__)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    """The variant the test is parametrised with (``variant``), as a Backend."""
    return Backend(request.param)
