"""An SMTP server on ``async_chat``, as a legacy application writes it.

Commands are lines (terminator ``\\r\\n``); after ``DATA`` and its ``354``
reply the message runs up to the ``\\r\\n.\\r\\n`` terminator and is
un-dot-stuffed line by line. EHLO advertises ``SIZE`` (so ``smtplib`` sends
``MAIL FROM:<...> SIZE=n``), ``8BITMIME`` and ``HELP``; HELO, MAIL, RCPT,
DATA, RSET, NOOP and QUIT are understood. Recipients outside
``server.domains`` are refused with 550. Delivered messages are kept in
``server.messages`` as (sender, recipients, body).
"""

import re
import socket

import simnet.asynchat as asynchat
import simnet.asyncore as asyncore

MAX_SIZE = 10_000_000
_PATH = re.compile(r"^(FROM|TO):\s*<([^>]*)>(.*)$", re.IGNORECASE)


class SMTPSession(asynchat.async_chat):
    """One SMTP connection."""

    def __init__(self, server, sock, map):
        asynchat.async_chat.__init__(self, sock, map)
        self.server = server
        self.peer_ip = sock.getpeername()[0]
        server.peers.append((self.peer_ip, sock.getsockname()[0]))
        self.ibuffer = []
        self.greeted = None
        self.in_data = False
        self.reset()
        self.set_terminator(b"\r\n")
        self.reply("220 %s ESMTP simnet apps" % server.hostname)

    def reset(self):
        self.sender = None
        self.recipients = []

    def reply(self, line):
        self.push(line.encode("ascii") + b"\r\n")

    def collect_incoming_data(self, data):
        self.ibuffer.append(data)

    def found_terminator(self):
        data = b"".join(self.ibuffer)
        self.ibuffer = []
        if self.in_data:
            self.in_data = False
            self.set_terminator(b"\r\n")
            self.deliver(data)
            return
        command, _, arg = data.decode("ascii", "replace").partition(" ")
        command = command.upper()
        self.server.log.append(command)
        handler = getattr(self, "smtp_" + command, None)
        if handler is None:
            self.reply("500 5.5.2 command not recognised")
        else:
            handler(arg.strip())

    def deliver(self, data):
        lines = [line[1:] if line.startswith(b".") else line for line in data.split(b"\r\n")]
        self.server.messages.append((self.sender, list(self.recipients), b"\r\n".join(lines)))
        self.reset()
        self.reply("250 2.0.0 OK: queued as %d" % len(self.server.messages))

    def smtp_HELO(self, arg):
        if not arg:
            self.reply("501 5.5.4 HELO needs a domain")
            return
        self.greeted = arg
        self.reset()
        self.reply("250 %s" % self.server.hostname)

    def smtp_EHLO(self, arg):
        if not arg:
            self.reply("501 5.5.4 EHLO needs a domain")
            return
        self.greeted = arg
        self.reset()
        self.push(("250-%s greets %s [%s]\r\n250-SIZE %d\r\n250-8BITMIME\r\n250 HELP\r\n"
                   % (self.server.hostname, arg, self.peer_ip, MAX_SIZE)).encode("ascii"))

    def smtp_NOOP(self, arg):
        self.reply("250 2.0.0 OK")

    def smtp_RSET(self, arg):
        self.reset()
        self.reply("250 2.0.0 OK")

    def smtp_MAIL(self, arg):
        match = _PATH.match(arg)
        if self.greeted is None:
            self.reply("503 5.5.1 say HELO or EHLO first")
        elif match is None or match.group(1).upper() != "FROM":
            self.reply("501 5.5.4 syntax: MAIL FROM:<address>")
        elif self.sender is not None:
            self.reply("503 5.5.1 nested MAIL command")
        else:
            params = match.group(3).split()
            size = [int(p[5:]) for p in params if p.upper().startswith("SIZE=")]
            if size and size[0] > MAX_SIZE:
                self.reply("552 5.3.4 message too big")
                return
            self.sender = match.group(2)
            self.reply("250 2.1.0 OK")

    def smtp_RCPT(self, arg):
        match = _PATH.match(arg)
        if self.sender is None:
            self.reply("503 5.5.1 need MAIL first")
        elif match is None or match.group(1).upper() != "TO":
            self.reply("501 5.5.4 syntax: RCPT TO:<address>")
        elif match.group(2).rpartition("@")[2] not in self.server.domains:
            self.reply("550 5.1.1 <%s>: relay access denied" % match.group(2))
        else:
            self.recipients.append(match.group(2))
            self.reply("250 2.1.5 OK")

    def smtp_DATA(self, arg):
        if not self.recipients:
            self.reply("503 5.5.1 need RCPT first")
            return
        self.in_data = True
        self.set_terminator(b"\r\n.\r\n")
        self.reply("354 End data with <CR><LF>.<CR><LF>")

    def smtp_QUIT(self, arg):
        self.reply("221 2.0.0 Bye")
        self.close_when_done()


class SMTPServer(asyncore.dispatcher):
    """Accepts SMTP sessions on *addr* for mail to *domains*."""

    def __init__(self, addr, map, domains, hostname="mail.example"):
        asyncore.dispatcher.__init__(self, map=map)
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)
        self.address = self.socket.getsockname()
        self.domains = set(domains)
        self.hostname = hostname
        self.messages = []
        self.log = []
        self.peers = []  # (client address, server address) of each session

    def handle_accepted(self, sock, addr):
        SMTPSession(self, sock, self._map)
