"""A line-based chat room on ``async_chat``, and a client that joins it.

The protocol is one line per message (terminator ``b"\\n"``):

* the client sends ``NICK <name>``; the server answers ``OK <name>`` and
  tells the others ``* <name> joined``;
* once ``room_size`` people are in, the server sends everyone ``START``;
* ``MSG <text>`` is relayed to everyone else as ``<name>: <text>``;
* ``QUIT`` gets ``BYE``, and the server closes the session when the reply
  has gone out (``close_when_done``).

A client sends its lines after ``START`` and quits once it has read every
line the others send, so a run always ends the same way whatever the
network does to the bytes in between -- which makes it a good subject for
fault injection. Plain asyncore/asynchat code: it runs unchanged on real
sockets or on a simnet fake network.

``events`` collects a readable timeline, ``(who, what)`` pairs, as in
:mod:`simnet.examples.echo`.
"""

from __future__ import annotations

import simnet


class ChatSession(simnet.async_chat):
    """The server's side of one member's connection."""

    def __init__(self, server: ChatServer, sock, map) -> None:
        super().__init__(sock, map=map)
        self.server = server
        self.nick: str | None = None
        self.buffer: list[bytes] = []
        self.set_terminator(b"\n")

    def collect_incoming_data(self, data: bytes) -> None:
        self.buffer.append(data)

    def found_terminator(self) -> None:
        line = b"".join(self.buffer).decode("utf-8", "replace")
        self.buffer = []
        command, _, arg = line.partition(" ")
        if command == "NICK" and self.nick is None and arg:
            self.server.join(self, arg)
        elif command == "MSG" and self.nick is not None:
            self.server.relay(self, arg)
        elif command == "QUIT":
            self.server.leave(self)
            self.push(b"BYE\n")
            self.close_when_done()
        else:
            self.push(b"ERR " + line.encode("utf-8", "replace")[:40] + b"\n")

    def handle_close(self) -> None:
        self.server.leave(self)
        self.close()


class ChatServer(simnet.dispatcher):
    """A chat room on *addr* that starts once *room_size* members have joined."""

    def __init__(self, addr=("127.0.0.1", 0), map=None, *, room_size: int = 3,
                 events: list | None = None) -> None:
        super().__init__(map=map)
        self.room_size = room_size
        self.events = [] if events is None else events
        self.members: list[ChatSession] = []
        self.started = False
        self.relayed = 0
        self.create_socket()
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)
        self.address = self.socket.getsockname()
        self.events.append(("server", f"chat room open on {self.address[0]}:{self.address[1]}"))

    def handle_accepted(self, sock, addr) -> None:
        ChatSession(self, sock, self._map)

    def join(self, session: ChatSession, nick: str) -> None:
        """Admit *session* as *nick*; start the room when it is full."""
        session.nick = nick
        session.push(f"OK {nick}\n".encode())
        self._broadcast(f"* {nick} joined\n", but=session)
        self.members.append(session)
        self.events.append(("server", f"{nick} joined ({len(self.members)}/{self.room_size})"))
        if not self.started and len(self.members) >= self.room_size:
            self.started = True
            self.events.append(("server", "room full: START"))
            self._broadcast("START\n")

    def relay(self, session: ChatSession, text: str) -> None:
        """Send *text* from *session* to every other member."""
        self.relayed += 1
        self._broadcast(f"{session.nick}: {text}\n", but=session)

    def leave(self, session: ChatSession) -> None:
        if session in self.members:
            self.members.remove(session)
            self.events.append(("server", f"{session.nick} left"))

    def _broadcast(self, line: str, but: ChatSession | None = None) -> None:
        data = line.encode("utf-8")
        for member in self.members:
            if member is not but:
                member.push(data)


class ChatClient(simnet.async_chat):
    """Joins as *nick*, says *lines* after START, quits once it has heard
    *expect* lines from the others, and closes when the server says BYE."""

    def __init__(self, addr, nick: str, lines, expect: int, map=None,
                 events: list | None = None) -> None:
        super().__init__(map=map)
        self.nick = nick
        self.lines = list(lines)
        self.expect = expect
        self.events = [] if events is None else events
        self.heard: list[str] = []
        self.buffer: list[bytes] = []
        self.done = False
        self.quitting = False
        self.set_terminator(b"\n")
        self.create_socket()
        self.connect(addr)

    def handle_connect(self) -> None:
        self.events.append((self.nick, "connected; NICK " + self.nick))
        self.push(f"NICK {self.nick}\n".encode())

    def collect_incoming_data(self, data: bytes) -> None:
        self.buffer.append(data)

    def found_terminator(self) -> None:
        line = b"".join(self.buffer).decode("utf-8", "replace")
        self.buffer = []
        if line == "START":
            self.events.append((self.nick, f"START: saying {len(self.lines)} line(s)"))
            for text in self.lines:
                self.push(f"MSG {text}\n".encode())
        elif line == "BYE":
            self.events.append((self.nick, "BYE: closing"))
            self.done = True
            self.close()
            return
        elif ": " in line and not line.startswith("* "):
            self.heard.append(line)
            self.events.append((self.nick, f"heard {line!r}"))
        else:
            return
        if len(self.heard) >= self.expect and not self.quitting:
            self.quitting = True
            self.events.append((self.nick, "heard everyone: QUIT"))
            self.push(b"QUIT\n")

    def handle_close(self) -> None:
        if not self.done:
            self.events.append((self.nick, "server closed the connection"))
        self.close()
