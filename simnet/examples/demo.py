"""The programs ``simnet demo`` runs, as replayable scenarios.

Each example is a small dispatcher program -- :mod:`echo
<simnet.examples.echo>`, :mod:`chat <simnet.examples.chat>` (an
``async_chat`` line protocol with three members) or :mod:`smtp
<simnet.examples.smtp>` (the ``async_chat`` SMTP server, driven by the
non-blocking client of :mod:`simnet.examples.mailer`). Each runs

* on the fake network, through a module-level *scenario* function
  (:func:`echo`, :func:`chat`, :func:`smtp`), so that
  ``simnet.record(scenario, ...)`` names it in the trace header and
  ``simnet.replay(path)`` can import it again; or
* on real loopback sockets (:func:`run_real`), recorded by a
  :class:`TracingRealNetwork` into a trace of the same format (backend
  ``"real"``, wall-clock times; it cannot be replayed).

Besides the socket events, a scenario leaves what the program itself said
in the trace header, under ``"demo"``: the example's name, ``labels``
(``"ip:port"`` -> a name for the socket bound there), ``notes`` (``[event
index, time, who, what]``: each callback's remark, placed among the events),
whether it succeeded (``ok``, ``result``) and the fault summary. Replay
compares events only, so the header is free for this.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import io
import re
import socket as _socket
import time as _time
import zlib
from typing import Any, Callable

import simnet
from simnet.examples.chat import ChatClient, ChatServer
from simnet.examples.echo import EchoClient, EchoServer
from simnet.examples.mailer import SMTPClient
from simnet.examples.smtp import SMTPChannel, SMTPServer
from simnet.real import RealNetwork
from simnet.traces.trace import Trace, error_name

__all__ = ["EXAMPLES", "DEFAULT_SEED", "DEFAULT_FAULTS", "SCENARIOS", "echo", "chat", "smtp",
           "run_real", "TracingRealNetwork"]

#: example name -> one-line description
EXAMPLES: dict[str, str] = {
    "echo": "an asyncore echo server and a client that sends three lines",
    "chat": "an async_chat chat room and three members who talk and leave",
    "smtp": "the async_chat SMTP server and a non-blocking client delivering one message",
    "http": "the asyncore docs' HTTP client fetching a page from an async_chat server",
}

DEFAULT_SEED = 1

#: The fault mix a demo runs under unless told otherwise: slow, jittery links,
#: sends that take only part of the data, reads that return only part of what
#: is buffered, and a couple of spurious EAGAINs. The programs survive all of
#: it -- which is the point.
DEFAULT_FAULTS: list[dict[str, Any]] = [
    {"fault": "latency", "latency": 0.01, "jitter": 0.005},
    {"fault": "eagain", "op": "send", "where": {"probability": 0.2, "limit": 2}},
    {"fault": "eagain", "op": "accept", "where": {"limit": 1}},
    {"fault": "partial_send", "where": {"probability": 0.4}},
    {"fault": "short_read", "where": {"probability": 0.4}},
]

#: Where each example listens on the fake network (port 0 on real sockets).
FAKE_ADDRESSES = {"echo": ("127.0.0.1", 7000), "chat": ("127.0.0.1", 6667),
                  "smtp": ("127.0.0.1", 25), "http": ("127.0.0.1", 80)}

#: Virtual (fake network) or wall-clock (real) seconds a demo may take.
TIME_LIMIT = {"fake": 600.0, "real": 10.0}


class Notes(list):
    """The ``events`` list the examples append ``(who, what)`` to, which
    stamps each entry as ``[event index, time, who, what]``."""

    def __init__(self, clock: Callable[[], float], position: Callable[[], int]) -> None:
        super().__init__()
        self._clock = clock
        self._position = position

    def append(self, item: Any) -> None:
        who, what = item
        super().append([self._position(), round(self._clock(), 9), str(who), str(what)])


class Program:
    """A built example: *outcome()* gives ``(ok, text)``, *labels* names the
    sockets by address. It has finished when only listeners are left in
    its map (:func:`finished`)."""

    def __init__(self, outcome: Callable[[], tuple[bool, str]], labels: dict[str, str]) -> None:
        self.outcome = outcome
        self.labels = labels


def finished(channels: dict) -> bool:
    """True once every connection in *channels* is closed (listeners stay)."""
    return all(getattr(ch, "accepting", False) for ch in channels.values())


_UNCAPTURED = re.compile(r"uncaptured python exception, closing channel <(?:[\w.]+\.)?(\w+)[^>]*> "
                         r"\(<class '(?:[\w.]+\.)?(\w+)'>:(.*?) \[")


class _NoteStream(io.TextIOBase):
    """Stands in for stdout while an example runs: what asyncore prints
    (``log_info``, ``handle_error``'s report) becomes notes by ``asyncore``."""

    def __init__(self, notes: Notes) -> None:
        self._notes = notes
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self._notes.append(("asyncore", _shorten(line.strip())))
        return len(text)


def _shorten(line: str) -> str:
    """handle_error's one-line report without the compact traceback."""
    found = _UNCAPTURED.search(line)
    if found is None:
        return line
    channel, error, message = found.groups()
    return f"{channel} raised {error}: {message.strip()}; channel closed"


def _addr(sockname: Any) -> str:
    return f"{sockname[0]}:{sockname[1]}"


def _build_echo(addr: Any, channels: dict, notes: Notes) -> Program:
    """The echo server and one client sending three lines."""
    lines = [b"hello, simnet\n", b"the same program, on a fake network\n", b"bye\n"]
    server = EchoServer(addr, map=channels, events=notes)
    client = EchoClient(server.address, lines, map=channels, events=notes)
    labels = {_addr(server.address): "server", _addr(client.socket.getsockname()): "client"}

    def outcome() -> tuple[bool, str]:
        if client.received == client.expected:
            return True, f"every byte echoed ({len(client.expected)} bytes)"
        return False, f"echoed {len(client.received)} of {len(client.expected)} bytes"

    return Program(outcome, labels)


CHAT_MEMBERS = {
    "alice": ["hi all", "anyone tried simnet?"],
    "bob": ["hello alice"],
    "carol": ["it replays bit for bit", "bye!"],
}


def _build_chat(addr: Any, channels: dict, notes: Notes) -> Program:
    """The chat room and three members; each quits once it heard the others."""
    total = sum(len(said) for said in CHAT_MEMBERS.values())
    server = ChatServer(addr, map=channels, room_size=len(CHAT_MEMBERS), events=notes)
    labels = {_addr(server.address): "server"}
    clients = []
    for nick, said in CHAT_MEMBERS.items():
        client = ChatClient(server.address, nick, said, expect=total - len(said),
                            map=channels, events=notes)
        labels[_addr(client.socket.getsockname())] = nick
        clients.append(client)

    def outcome() -> tuple[bool, str]:
        heard = sum(len(c.heard) for c in clients)
        want = sum(c.expect for c in clients)
        if all(c.done for c in clients) and heard == want:
            return True, f"{len(clients)} members, {server.relayed} messages, every line heard"
        return False, f"{heard} of {want} lines heard; {sum(c.done for c in clients)} members left"

    return Program(outcome, labels)


class _NotingChannel(SMTPChannel):
    """The example's SMTP session, unchanged, reporting commands and replies."""

    def reply(self, text: str) -> None:
        self.server.notes.append(("server", f"reply {text}"))
        super().reply(text)


class _NotingServer(SMTPServer):
    """The example's SMTP server with its sessions reporting to *notes*."""

    def __init__(self, addr: Any, map: dict, notes: Notes) -> None:
        self.notes = notes
        super().__init__(addr, map=map)
        notes.append(("server", f"SMTP server on {self.address[0]}:{self.address[1]}"))

    def handle_accepted(self, sock: Any, addr: Any) -> None:
        self.notes.append(("server", "accepted a session"))
        _NotingChannel(self, sock, self._map)


MAIL = (b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hello\r\n\r\n"
        b"Sent through simnet.\r\n.A line starting with a dot.\r\n")


def _build_smtp(addr: Any, channels: dict, notes: Notes) -> Program:
    """The SMTP server and one client delivering :data:`MAIL`."""
    server = _NotingServer(addr, channels, notes)
    client = SMTPClient(server.address, "alice@example.org", ["bob@example.org"], MAIL,
                        map=channels, events=notes)
    labels = {_addr(server.address): "server", _addr(client.socket.getsockname()): "client"}

    def outcome() -> tuple[bool, str]:
        if client.result == "sent" and len(server.messages) == 1:
            return True, f"message delivered ({len(server.messages[0][2])} bytes)"
        return False, f"not delivered: {client.result or 'no result'}"

    return Program(outcome, labels)


def _build_http(addr: Any, channels: dict, notes: Notes) -> Program:
    """The asyncore docs' HTTP client and a server for it."""
    from simnet.examples.http import PAGE, HTTPClient, HTTPServer

    server = HTTPServer(addr, map=channels, events=notes)
    client = HTTPClient(server.address[0], server.address[1], "/", map=channels, events=notes)
    labels = {_addr(server.address): "server", _addr(client.socket.getsockname()): "client"}

    def outcome() -> tuple[bool, str]:
        if client.body == PAGE and client.response.startswith(b"HTTP/1.0 200 OK"):
            return True, f"page fetched ({len(client.response)} bytes)"
        return False, f"got {len(client.response)} bytes, not the page"

    return Program(outcome, labels)


BUILDERS: dict[str, Callable[[Any, dict, Notes], Program]] = {
    "echo": _build_echo, "chat": _build_chat, "smtp": _build_smtp, "http": _build_http,
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _run_fake(name: str, net: Any) -> None:
    """Run example *name* on the fake network *net*, leaving its notes and
    outcome in the trace header (if *net* records one)."""
    from simnet.fakesock import Deadlock, SimulationTimeout

    trace = net.trace
    notes = Notes(net.time, (lambda: len(trace.events)) if trace is not None else (lambda: 0))
    channels: dict = {}
    program = None
    error = None
    with contextlib.redirect_stdout(_NoteStream(notes)):
        try:
            program = BUILDERS[name](FAKE_ADDRESSES[name], channels, notes)
            net.run(until=lambda: finished(channels), timeout=TIME_LIMIT["fake"], map=channels)
        except (Deadlock, SimulationTimeout) as exc:
            error = _first_line(exc)
        except Exception as exc:  # a fault the program does not survive (EINTR out of select ...)
            error = f"the loop raised {_first_line(exc)}"
        finally:
            simnet.close_all(channels)
    ok, text = program.outcome() if program is not None else (False, "")
    if error is not None:
        ok, text = False, f"{text}; {error}" if text else error
    if trace is not None:
        trace.header["demo"] = {
            "example": name, "ok": ok, "result": text, "notes": list(notes),
            "labels": program.labels if program is not None else {},
            "fault_summary": net.faults.summary(), "virtual_time": net.time(),
        }


def echo(net: Any) -> None:
    """Scenario: the echo example on fake network *net*."""
    _run_fake("echo", net)


def chat(net: Any) -> None:
    """Scenario: the chat example on fake network *net*."""
    _run_fake("chat", net)


def smtp(net: Any) -> None:
    """Scenario: the SMTP example on fake network *net*."""
    _run_fake("smtp", net)


#: example name -> its module-level scenario function
def http(net: Any) -> None:
    """Scenario: the HTTP example on fake network *net*."""
    _run_fake("http", net)


SCENARIOS: dict[str, Callable[[Any], None]] = {"echo": echo, "chat": chat, "smtp": smtp, "http": http}


# -- real sockets ---------------------------------------------------------------

#: connect results that leave a socket connecting or connected
_CONNECTING = {0, _errno.EINPROGRESS, _errno.EALREADY, _errno.EAGAIN, _errno.EISCONN}


class _TracedSocket(_socket.socket):
    """A kernel socket that records its operations in a trace, in the
    format of the fake network's (see :mod:`simnet.traces.trace`)."""

    __slots__ = ("_sn_net", "_sn_fd", "_sn_conn", "_sn_busy")

    def _sn_attach(self, net: TracingRealNetwork) -> None:
        self._sn_net = net
        self._sn_fd = self.fileno()
        self._sn_conn = None
        self._sn_busy = False  # connecting or connected: a connect starts nothing new
        net.record("socket", self._sn_fd, int(self.family), int(self.type))

    def bind(self, address: Any) -> None:
        super().bind(address)
        self._sn_net.record("bind", self._sn_fd, list(self.getsockname()))

    def listen(self, *backlog: int) -> None:
        super().listen(*backlog)
        self._sn_net.record("listen", self._sn_fd, backlog[0] if backlog else None)

    def connect_ex(self, address: Any) -> int:
        code = super().connect_ex(address)
        if not self._sn_busy:
            # numbered as the fake network numbers connections: every attempt counts
            self._sn_conn = self._sn_net.new_conn(self.getsockname())
        self._sn_busy = code in _CONNECTING
        self._sn_net.record("connect", self._sn_fd, list(address), code)
        return code

    def connect(self, address: Any) -> None:
        code = self.connect_ex(address)
        if code:
            raise OSError(code, _errno.errorcode.get(code, str(code)))

    def accept(self) -> tuple[Any, Any]:
        try:
            fd, addr = self._accept()
        except OSError as exc:
            self._sn_net.record("accept", self._sn_fd, error_name(exc), None, None)
            raise
        sock = _TracedSocket(self.family, self.type, self.proto, fileno=fd)
        sock._sn_attach(self._sn_net)
        sock._sn_conn = self._sn_net.conn_of(addr)
        self._sn_net.record("accept", self._sn_fd, fd, list(addr), sock._sn_conn)
        return sock, addr

    def send(self, data: Any, flags: int = 0) -> int:
        size = len(memoryview(data).cast("B"))
        try:
            n = super().send(data, flags)
        except OSError as exc:
            self._sn_net.record("send", self._sn_fd, size, error_name(exc), 0)
            raise
        self._sn_net.record("send", self._sn_fd, size, n,
                            zlib.crc32(bytes(memoryview(data).cast("B")[:n])))
        return n

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        try:
            data = super().recv(bufsize, flags)
        except OSError as exc:
            self._sn_net.record("recv", self._sn_fd, bufsize, error_name(exc), 0)
            raise
        self._sn_net.record("recv", self._sn_fd, bufsize, len(data), zlib.crc32(data))
        return data

    def shutdown(self, how: int) -> None:
        super().shutdown(how)
        self._sn_net.record("shutdown", self._sn_fd, int(how))

    def close(self) -> None:
        if getattr(self, "_sn_fd", None) is not None:
            self._sn_net.record("close", self._sn_fd)
            self._sn_fd = None
        super().close()


class TracingRealNetwork(RealNetwork):
    """Real loopback sockets that record a trace (backend ``"real"``; times
    are seconds since the network was made). The trace shows and renders
    like a fake network's, but cannot be replayed."""

    def __init__(self) -> None:
        super().__init__()
        self.trace = Trace({"backend": "real", "seed": None, "faults": [], "network": {},
                            "scenario": None})
        self._t0 = _time.monotonic()
        self._conns: dict[tuple, int] = {}

    def elapsed(self) -> float:
        """Wall-clock seconds since the network was made."""
        return _time.monotonic() - self._t0

    def record(self, kind: str, fd: int, *fields: Any) -> None:
        """Append the event ``[elapsed, kind, fd, *fields]``."""
        self.trace.record(round(self.elapsed(), 6), kind, fd, *fields)

    def new_conn(self, local: Any) -> int:
        """Number a connection started from address *local* (from 1)."""
        number = len(self._conns) + 1
        self._conns[tuple(local)[:2]] = number
        return number

    def conn_of(self, peer: Any) -> int | None:
        """The number of the connection a client started from *peer*."""
        return self._conns.get(tuple(peer)[:2])

    def socket(self, family: int = -1, type: int = -1, proto: int = -1) -> Any:
        sock = _TracedSocket(_socket.AF_INET if family == -1 else family,
                             _socket.SOCK_STREAM if type == -1 else type,
                             0 if proto == -1 else proto)
        sock._sn_attach(self)
        return sock

    def select(self, r: list[int], w: list[int], x: list[int],
               timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        rr, wr, xr = super().select(r, w, x, timeout)
        self.record("ready", -1, list(rr), list(wr))
        return rr, wr, xr


def run_real(name: str, time_limit: float | None = None) -> Trace:
    """Run example *name* on real loopback sockets (any free port); return
    its trace, with the ``"demo"`` header entry the scenarios leave."""
    if name not in BUILDERS:
        raise ValueError(f"unknown example {name!r} (known: {', '.join(BUILDERS)})")
    limit = TIME_LIMIT["real"] if time_limit is None else time_limit
    net = TracingRealNetwork()
    trace = net.trace
    trace.header["scenario"] = scenario_name_of(name)
    notes = Notes(net.elapsed, lambda: len(trace.events))
    channels: dict = {}
    with net, contextlib.redirect_stdout(_NoteStream(notes)):
        program = BUILDERS[name](("127.0.0.1", 0), channels, notes)
        try:
            while not finished(channels) and net.elapsed() < limit:
                simnet.loop(timeout=0.05, map=channels, count=1)
            ok, text = program.outcome()
            if not ok and net.elapsed() >= limit:
                text += f"; gave up after {limit:g} s"
        finally:
            simnet.close_all(channels)
    trace.header["demo"] = {"example": name, "ok": ok, "result": text, "notes": list(notes),
                            "labels": program.labels, "fault_summary": "no faults (real sockets)",
                            "virtual_time": None}
    return trace


def scenario_name_of(name: str) -> str:
    """``module:function`` of example *name*'s scenario."""
    return f"{__name__}:{SCENARIOS[name].__name__}"
