"""An HTTP/1.1 keep-alive server on ``async_chat``, as a legacy application writes it.

* requests: a request line and headers up to the blank line (the ``\\r\\n\\r\\n``
  terminator), then a ``Content-Length`` body (a numeric terminator);
* keep-alive by default for HTTP/1.1; ``Connection: close`` from the client
  is honoured, and routes may close on their own (``/last``);
* a response is pushed in two steps: the status line and headers first, the
  body in a separate push once the headers have left the output queue
  (``handle_write``), and the channel reads the next request only once the
  whole response is sent -- a pass that moves no bytes but flips the
  channel's state, as many real servers have.

Routes: ``GET /hello`` (a short text), ``GET /big`` (:data:`BIG`, 200 kB),
``POST /echo`` (the request body, reversed), ``GET /last`` (:data:`BIG`
with ``Connection: close``), anything else 404.
"""

import socket

import simnet.asynchat as asynchat
import simnet.asyncore as asyncore

HELLO = b"hello, keep-alive world\n"
#: a body much larger than any read buffer, so that most of it arrives after the headers
BIG = b"".join(b"line %06d of a big body, padded to be a little longer\n" % i for i in range(3700))


class HTTPChannel(asynchat.async_chat):
    """One client connection: a sequence of requests and responses."""

    def __init__(self, server, sock, map):
        asynchat.async_chat.__init__(self, sock, map)
        self.server = server
        self.number = len(server.connections)
        self.requests = []  # (method, path) of each request served
        self.ibuffer = []
        self.head = None  # the parsed request line and headers while a body is read
        self.queued = []  # requests that arrived while a response was going out
        self.responding = False  # a response is being sent: read nothing new
        self.body = None  # the response body, pushed once the headers are sent
        self.closing = False
        self.set_terminator(b"\r\n\r\n")

    # -- input ---------------------------------------------------------------------
    def readable(self):
        return not self.responding

    def collect_incoming_data(self, data):
        self.ibuffer.append(data)

    def found_terminator(self):
        data = b"".join(self.ibuffer)
        self.ibuffer = []
        if self.head is None:
            lines = data.decode("latin-1").split("\r\n")
            method, path, version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.head = (method, path, version, headers)
            length = int(headers.get("content-length", "0"))
            if length > 0:
                self.set_terminator(length)
                return
            data = b""
        request = self.head + (data,)
        self.head = None
        self.set_terminator(b"\r\n\r\n")
        if self.responding:
            self.queued.append(request)
        else:
            self.respond(*request)

    # -- output --------------------------------------------------------------------
    def respond(self, method, path, version, headers, body):
        self.requests.append((method, path))
        self.server.log.append((self.number, method, path, len(body)))
        close = (headers.get("connection", "").lower() == "close"
                 or (version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive"))
        if method == "GET" and path == "/hello":
            status, payload = "200 OK", HELLO
        elif method == "GET" and path == "/big":
            status, payload = "200 OK", BIG
        elif method == "GET" and path == "/last":
            status, payload, close = "200 OK", BIG, True
        elif method == "POST" and path == "/echo":
            status, payload = "200 OK", body[::-1]
        else:
            status, payload = "404 Not Found", b"no such page: " + path.encode("latin-1") + b"\n"
        lines = ["HTTP/1.1 " + status, "Content-Type: text/plain",
                 "Content-Length: %d" % len(payload)]
        if close:
            lines.append("Connection: close")
        self.responding = True
        self.closing = close
        self.body = payload
        self.push(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))

    def writable(self):
        return bool(self.producer_fifo) or self.responding or not self.connected

    def handle_write(self):
        if self.producer_fifo or not self.connected:
            self.initiate_send()
        elif self.body is not None:
            body, self.body = self.body, None
            self.push(body)
        elif self.closing:
            self.close()
        else:
            # the response has left: read the next request
            self.responding = False
            if self.queued:
                self.respond(*self.queued.pop(0))

    def handle_close(self):
        self.close()


class HTTPServer(asyncore.dispatcher):
    """Listens on *addr*; ``log`` holds (connection, method, path, body size)."""

    def __init__(self, addr, map):
        asyncore.dispatcher.__init__(self, map=map)
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)
        self.address = self.socket.getsockname()
        self.connections = []
        self.log = []

    def handle_accepted(self, sock, addr):
        self.connections.append(HTTPChannel(self, sock, self._map))
