"""An SMTP client on ``async_chat``: sends one message, non-blocking.

The counterpart of :mod:`simnet.examples.smtp`'s server for programs that
cannot block (``smtplib`` can, and runs on a fake network inside
``net.patch()``). It walks the session one reply at a time -- greeting,
EHLO, MAIL, RCPT, DATA, the message, QUIT -- and stops at the first reply
that is not the expected one. Plain asynchat code: real sockets or a fake
network, unchanged.

``events`` collects a readable timeline, ``(who, what)`` pairs, as in
:mod:`simnet.examples.echo`.
"""

from __future__ import annotations

import simnet


class SMTPClient(simnet.async_chat):
    """Delivers *message* (bytes, CRLF line ends) from *sender* to *recipients*.

    ``result`` is None while it runs, then ``"sent"`` or the reply that
    stopped it.
    """

    def __init__(self, addr, sender: str, recipients, message: bytes, map=None,
                 events: list | None = None, *, helo: str = "client.example") -> None:
        super().__init__(map=map)
        self.events = [] if events is None else events
        self.result: str | None = None
        self.replies: list[str] = []
        self._lines: list[bytes] = []
        # (command to send once the expected reply code arrives, expected code)
        self._script: list[tuple[bytes | None, str]] = [(f"EHLO {helo}".encode(), "220")]
        self._script.append((f"MAIL FROM:<{sender}>".encode(), "250"))
        for rcpt in recipients:
            self._script.append((f"RCPT TO:<{rcpt}>".encode(), "250"))
        self._script.append((b"DATA", "250"))
        self._script.append((_dot_stuff(message) + b"\r\n.", "354"))
        self._script.append((b"QUIT", "250"))
        self._script.append((None, "221"))
        self.set_terminator(b"\r\n")
        self.create_socket()
        self.connect(addr)

    def handle_connect(self) -> None:
        self.events.append(("client", "connected"))

    def collect_incoming_data(self, data: bytes) -> None:
        self._lines.append(data)

    def found_terminator(self) -> None:
        line = b"".join(self._lines).decode("ascii", "replace")
        self._lines = []
        if len(line) > 3 and line[3] == "-":
            return  # a continuation line of a multi-line reply
        self.replies.append(line)
        if not self._script:
            return
        command, expected = self._script.pop(0)
        if not line.startswith(expected):
            self.result = line
            self.events.append(("client", f"unexpected reply {line!r}; giving up"))
            self.push(b"QUIT\r\n")
            self.close_when_done()
            return
        if command is None:
            self.result = "sent"
            self.events.append(("client", f"{line}: done"))
            self.close()
            return
        shown = command.decode("ascii", "replace")
        if b"\r\n" in command:
            shown = f"<message, {len(command) - 3} bytes> ."
        self.events.append(("client", f"got {line[:3]}, sending {shown}"))
        self.push(command + b"\r\n")

    def handle_close(self) -> None:
        if self.result is None:
            self.result = "connection closed early"
            self.events.append(("client", "server closed the connection early"))
        self.close()


def _dot_stuff(message: bytes) -> bytes:
    """*message* with CRLF line ends and leading dots doubled (RFC 5321 4.5.2)."""
    text = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    lines = [b"." + ln if ln.startswith(b".") else ln for ln in text.split(b"\r\n")]
    return b"\r\n".join(lines)
