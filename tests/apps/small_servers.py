"""Small dispatcher servers for the client programs of ``test_clients.py``.

Each is what a user would write with asyncore/asynchat (not a copy of the
other apps): a digest server that reads to EOF and answers with a SHA-256,
a UDP upper-casing server that drops the first copy of every request, an
asynchat line server answering with producers, a dispatcher that closes
from ``handle_write`` mid-stream, and a POP3 server. EAGAINs are handled as
asyncore programs must (``dispatcher.send`` returns 0; ``recv`` raises).
"""

from __future__ import annotations

import hashlib
import io
import socket

import simnet.asynchat as asynchat
import simnet.asyncore as asyncore


class Listener(asyncore.dispatcher):
    """Accepts connections and makes ``handler(sock, map)`` for each."""

    def __init__(self, addr, map, handler, family=socket.AF_INET):
        super().__init__(map=map)
        self.create_socket(family, socket.SOCK_STREAM)
        if family != socket.AF_UNIX:
            self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)
        self.handler = handler

    def handle_accepted(self, sock, addr):
        self.handler(sock, self._map)


class DigestHandler(asyncore.dispatcher):
    """Reads to EOF, then sends ``"<bytes> <sha256>\\n"`` and closes."""

    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.digest = hashlib.sha256()
        self.count = 0
        self.out = b""
        self.eof = False

    def readable(self):
        return not self.eof

    def handle_read(self):
        try:
            data = self.recv(65536)
        except BlockingIOError:
            return
        if data:
            self.digest.update(data)
            self.count += len(data)

    def handle_close(self):  # the peer's EOF (recv returned b"")
        if not self.eof:
            self.eof = True
            self.out = f"{self.count} {self.digest.hexdigest()}\n".encode()
        if not self.out:
            self.close()

    def writable(self):
        return bool(self.out)

    def handle_write(self):
        self.out = self.out[self.send(self.out):]
        if not self.out:
            self.close()


class UDPUpper(asyncore.dispatcher):
    """Answers each datagram upper-cased; drops the first copy of each."""

    def __init__(self, map):
        super().__init__(map=map)
        self.create_socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.bind(("127.0.0.1", 0))
        self.seen: dict[bytes, int] = {}
        self.out: list = []

    def writable(self):
        return bool(self.out)

    def handle_read(self):
        try:
            data, addr = self.socket.recvfrom(2048)
        except BlockingIOError:
            return
        self.seen[data] = self.seen.get(data, 0) + 1
        if self.seen[data] > 1:
            self.out.append((data.upper(), addr))

    def handle_write(self):
        data, addr = self.out[0]
        try:
            self.socket.sendto(data, addr)
        except BlockingIOError:
            return
        self.out.pop(0)


class ProducerChannel(asynchat.async_chat):
    """``ECHO text``; ``LINES n`` (a simple_producer, then ``.``); ``FILE n``
    (n x's from a file-like producer); ``QUIT`` (``BYE``, close when done)."""

    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.set_terminator(b"\n")
        self.buf: list[bytes] = []

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        line = b"".join(self.buf).decode()
        self.buf = []
        cmd, _, arg = line.partition(" ")
        if cmd == "ECHO":
            self.push(arg.encode() + b"\r\n")
        elif cmd == "LINES":
            text = b"".join(b"line %d\r\n" % i for i in range(int(arg)))
            self.push_with_producer(asynchat.simple_producer(text, buffer_size=100))
            self.push(b".\r\n")
        elif cmd == "FILE":
            self.push_with_producer(FileProducer(io.BytesIO(b"x" * int(arg) + b"\r\n")))
        elif cmd == "QUIT":
            self.push(b"BYE\r\n")
            self.close_when_done()


class FileProducer:
    """A producer reading a file in 333-byte pieces."""

    def __init__(self, f):
        self.f = f

    def more(self):
        return self.f.read(333)


class Closer(asyncore.dispatcher):
    """Sends 1,000-byte pieces and closes from handle_write after 5,000."""

    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.sent = 0

    def handle_read(self):
        try:
            self.recv(100)
        except BlockingIOError:
            pass

    def writable(self):
        return True

    def handle_write(self):
        self.sent += self.send(b"z" * 1000)
        if self.sent >= 5000:
            self.close()


MAILS = [b"Subject: one\r\n\r\nbody one\r\n.dot line\r\n",
         b"Subject: two\r\n\r\n" + b"long line\r\n" * 3000]


class POP3Channel(asynchat.async_chat):
    """A POP3 server (USER/PASS/STAT/LIST/RETR/DELE/QUIT) over :data:`MAILS`,
    RETR bodies dot-stuffed and sent through a simple_producer."""

    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.set_terminator(b"\r\n")
        self.buf: list[bytes] = []
        self.deleted: set[int] = set()
        self.push(b"+OK POP3 ready\r\n")

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        line = b"".join(self.buf).decode()
        self.buf = []
        cmd, _, arg = line.partition(" ")
        cmd = cmd.upper()
        if cmd in ("USER", "PASS"):
            self.push(b"+OK\r\n")
        elif cmd == "STAT":
            self.push(b"+OK %d %d\r\n" % (len(MAILS), sum(map(len, MAILS))))
        elif cmd == "LIST":
            self.push(b"+OK\r\n" + b"".join(b"%d %d\r\n" % (i + 1, len(m)) for i, m in enumerate(MAILS))
                      + b".\r\n")
        elif cmd == "RETR":
            lines = MAILS[int(arg) - 1].split(b"\r\n")[:-1]
            body = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)
            self.push(b"+OK\r\n")
            self.push_with_producer(asynchat.simple_producer(body + b".\r\n", 512))
        elif cmd == "DELE":
            self.deleted.add(int(arg))
            self.push(b"+OK\r\n")
        elif cmd == "QUIT":
            self.push(b"+OK bye\r\n")
            self.close_when_done()
        else:
            self.push(b"-ERR\r\n")


class ChunkedHTTP(asynchat.async_chat):
    """``GET /n`` -> a chunked response of n chunks (chunk i: ``"i,"`` i+1
    times) with a trailer; keep-alive."""

    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.set_terminator(b"\r\n\r\n")
        self.buf: list[bytes] = []

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        request = b"".join(self.buf)
        self.buf = []
        n = int(request.split(b" ")[1][1:])
        self.push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
        for i in range(n):
            chunk = (b"%d," % i) * (i + 1)
            self.push(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.push(b"0\r\nX-Trailer: t\r\n\r\n")


def chunked_body(n: int) -> bytes:
    return b"".join((b"%d," % i) * (i + 1) for i in range(n))
