"""An echo server and a client that sends lines and checks the echoes.

Plain asyncore code: it only uses the dispatcher API, so it runs unchanged on
real sockets (``python -m simnet.examples.echo``) or on a simnet fake network.

``events`` collects a readable timeline, ``(who, what)`` pairs, for the demo.
"""

from __future__ import annotations

import simnet as asyncore


class EchoHandler(asyncore.dispatcher_with_send):
    """Server side of one connection: sends back whatever arrives."""

    def __init__(self, sock, map, events):
        super().__init__(sock, map=map)
        self.events = events

    def handle_read(self):
        data = self.recv(8192)
        if data:
            self.events.append(("server", f"echo {len(data)} bytes"))
            self.send(data)

    def handle_close(self):
        self.events.append(("server", "peer closed; closing"))
        self.close()


class EchoServer(asyncore.dispatcher):
    """Listens on *addr* (port 0: any free port) and starts an EchoHandler per client."""

    def __init__(self, addr=("127.0.0.1", 0), map=None, events=None):
        super().__init__(map=map)
        self.events = [] if events is None else events
        self.create_socket()
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)
        self.address = self.socket.getsockname()
        self.events.append(("server", f"listening on {self.address[0]}:{self.address[1]}"))

    def handle_accepted(self, sock, addr):
        self.events.append(("server", "accepted a connection"))
        EchoHandler(sock, self._map, self.events)


class EchoClient(asyncore.dispatcher_with_send):
    """Connects, sends *lines*, and closes once every byte has come back."""

    def __init__(self, addr, lines, map=None, events=None):
        super().__init__(map=map)
        self.events = [] if events is None else events
        self.expected = b"".join(lines)
        self.lines = list(lines)
        self.received = b""
        self.create_socket()
        self.connect(addr)

    def handle_connect(self):
        self.events.append(("client", "connected"))
        for line in self.lines:
            self.send(line)
        self.events.append(("client", f"sent {len(self.expected)} bytes"))

    def handle_read(self):
        data = self.recv(8192)
        self.received += data
        if data:
            self.events.append(("client", f"received {len(data)} bytes"))
        if len(self.received) >= len(self.expected):
            self.events.append(("client", "all echoed; closing"))
            self.close()

    def handle_close(self):
        self.events.append(("client", "server closed"))
        self.close()


def run(lines=(b"hello\n", b"simnet\n"), timeout=0.05, max_passes=200):
    """Run one client against one server on real loopback; return the events."""
    channels: dict = {}
    events: list = []
    server = EchoServer(map=channels, events=events)
    client = EchoClient(server.address, lines, map=channels, events=events)
    try:
        passes = 0
        while client.socket is not None and client._fileno is not None and passes < max_passes:
            asyncore.loop(timeout=timeout, map=channels, count=1)
            passes += 1
    finally:
        asyncore.close_all(channels)
    return events, client.received == client.expected


if __name__ == "__main__":
    evs, ok = run()
    for who, what in evs:
        print(f"{who:>7}  {what}")
    print("ok" if ok else "FAILED")
