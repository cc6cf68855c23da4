"""A small SMTP server on ``async_chat``: the classic asynchat use.

It speaks enough of RFC 5321 for ``smtplib`` (EHLO/HELO, MAIL, RCPT, DATA,
RSET, NOOP, QUIT) and keeps delivered messages in ``server.messages``. An idle
connection is dropped after ``idle_timeout`` seconds (a timer), with a 421
reply, as real servers do. Plain asyncore/asynchat code: it runs on real
sockets or, unchanged, on a simnet fake network.
"""

from __future__ import annotations

import simnet


class SMTPChannel(simnet.async_chat):
    """One SMTP session."""

    def __init__(self, server: SMTPServer, sock, map) -> None:
        super().__init__(sock, map=map)
        self.server = server
        self.set_terminator(b"\r\n")
        self.lines: list[bytes] = []
        self.in_data = False
        self.mail_from: str | None = None
        self.rcpt_to: list[str] = []
        self.idle = None
        self.reply(f"220 {server.hostname} simnet example SMTP ready")

    def reply(self, text: str) -> None:
        self.push(text.encode("ascii") + b"\r\n")
        self._arm_idle_timer()

    def _arm_idle_timer(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        if self.server.idle_timeout is not None:
            self.idle = simnet.call_later(self.server.idle_timeout, self._idle_expired)

    def _idle_expired(self) -> None:
        self.idle = None
        self.server.log.append("idle timeout")
        self.push(b"421 idle for too long, closing\r\n")
        self.close_when_done()

    def collect_incoming_data(self, data: bytes) -> None:
        self.lines.append(data)

    def found_terminator(self) -> None:
        line = b"".join(self.lines)
        self.lines = []
        if self.in_data:
            self._end_data(line)
            return
        command, _, arg = line.decode("ascii", "replace").partition(" ")
        command = command.upper()
        self.server.log.append(command)
        handler = getattr(self, "smtp_" + command, None)
        if handler is None:
            self.reply("500 command not recognised")
        else:
            handler(arg.strip())

    def _end_data(self, body: bytes) -> None:
        self.in_data = False
        self.set_terminator(b"\r\n")
        text = body.replace(b"\r\n..", b"\r\n.")
        self.server.messages.append((self.mail_from, list(self.rcpt_to), text))
        self.mail_from, self.rcpt_to = None, []
        self.reply("250 OK: queued")

    def smtp_HELO(self, arg: str) -> None:
        self.reply(f"250 {self.server.hostname}")

    def smtp_EHLO(self, arg: str) -> None:
        self.push(f"250-{self.server.hostname}\r\n".encode())
        self.reply("250 HELP")

    def smtp_NOOP(self, arg: str) -> None:
        self.reply("250 OK")

    def smtp_RSET(self, arg: str) -> None:
        self.mail_from, self.rcpt_to = None, []
        self.reply("250 OK")

    def smtp_MAIL(self, arg: str) -> None:
        if not arg.upper().startswith("FROM:"):
            self.reply("501 syntax: MAIL FROM:<address>")
            return
        self.mail_from = arg[5:].strip().strip("<>")
        self.reply("250 OK")

    def smtp_RCPT(self, arg: str) -> None:
        if self.mail_from is None:
            self.reply("503 need MAIL first")
            return
        self.rcpt_to.append(arg[3:].strip().strip("<>"))
        self.reply("250 OK")

    def smtp_DATA(self, arg: str) -> None:
        if not self.rcpt_to:
            self.reply("503 need RCPT first")
            return
        self.in_data = True
        self.set_terminator(b"\r\n.\r\n")
        self.reply("354 end data with <CR><LF>.<CR><LF>")

    def smtp_QUIT(self, arg: str) -> None:
        self.reply("221 bye")
        if self.idle is not None:
            self.idle.cancel()
        self.close_when_done()

    def handle_close(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        self.close()


class SMTPServer(simnet.dispatcher):
    """Accepts SMTP sessions on *addr*; ``messages`` holds what was delivered."""

    def __init__(self, addr=("127.0.0.1", 0), map=None, *, hostname="mail.example",
                 idle_timeout: float | None = 300.0) -> None:
        super().__init__(map=map)
        self.hostname = hostname
        self.idle_timeout = idle_timeout
        self.messages: list[tuple[str | None, list[str], bytes]] = []
        self.log: list[str] = []
        self.create_socket()
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)
        self.address = self.socket.getsockname()

    def handle_accepted(self, sock, addr) -> None:
        SMTPChannel(self, sock, self._map)
