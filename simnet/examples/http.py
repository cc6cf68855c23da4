"""The asyncore documentation's HTTP client, and a small server for it.

``HTTPClient`` is the classic example from CPython's asyncore docs, in
simnet: it connects, sends a ``GET`` request from ``handle_write`` (keeping
whatever ``send()`` did not take) and collects the response until the server
closes. ``HTTPServer`` is an ``async_chat`` server that answers each request
with a small page and closes, as HTTP/1.0 does. Plain asyncore code: it runs
on real sockets or on a simnet fake network.
"""

from __future__ import annotations

import simnet

PAGE = b"<html><body><h1>simnet</h1><p>served by an async_chat server</p></body></html>\n"


class HTTPClient(simnet.dispatcher):
    """Fetches *path* from *host*:*port*; ``response`` holds the raw reply."""

    def __init__(self, host, port, path="/", map=None, events=None):
        super().__init__(map=map)
        self.events = [] if events is None else events
        self.create_socket()
        self.connect((host, port))
        self.buffer = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("ascii")
        self.response = b""
        self.done = False

    def handle_connect(self):
        self.events.append(("client", "connected"))

    def handle_close(self):
        self.events.append(("client", f"server closed; got {len(self.response)} bytes"))
        self.done = True
        self.close()

    def handle_read(self):
        data = self.recv(8192)
        if data:
            self.response += data
            self.events.append(("client", f"received {len(data)} bytes"))

    def writable(self):
        return len(self.buffer) > 0

    def handle_write(self):
        sent = self.send(self.buffer)
        self.buffer = self.buffer[sent:]
        self.events.append(("client", f"sent {sent} bytes of the request"))

    @property
    def body(self) -> bytes:
        return self.response.partition(b"\r\n\r\n")[2]


class HTTPChannel(simnet.async_chat):
    """One request: read the head up to the blank line, answer, close."""

    def __init__(self, sock, map, events):
        super().__init__(sock, map=map)
        self.events = events
        self.set_terminator(b"\r\n\r\n")
        self.head = []

    def collect_incoming_data(self, data):
        self.head.append(data)

    def found_terminator(self):
        request_line = b"".join(self.head).split(b"\r\n", 1)[0].decode("latin-1")
        self.events.append(("server", f"request: {request_line}"))
        status = b"200 OK" if request_line.startswith("GET ") else b"405 Method Not Allowed"
        self.push(b"HTTP/1.0 " + status + b"\r\nContent-Type: text/html\r\nContent-Length: "
                  + str(len(PAGE)).encode() + b"\r\n\r\n" + PAGE)
        self.close_when_done()


class HTTPServer(simnet.dispatcher):
    """Serves :data:`PAGE` to every GET on *addr*."""

    def __init__(self, addr=("127.0.0.1", 0), map=None, events=None):
        super().__init__(map=map)
        self.events = [] if events is None else events
        self.create_socket()
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)
        self.address = self.socket.getsockname()

    def handle_accepted(self, sock, addr):
        HTTPChannel(sock, self._map, self.events)
