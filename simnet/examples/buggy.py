"""A planted bug for `simnet explore` to find: a client that assumes one
``send()`` sends the whole message. Run::

    simnet explore simnet.examples.buggy:scenario --seeds 50
"""

from __future__ import annotations

import simnet

MESSAGE = b"HELLO, this is one whole protocol message\r\n"


class Collector(simnet.dispatcher):
    def __init__(self, sock, map, box):
        super().__init__(sock, map=map)
        self.box = box

    def writable(self):
        return False

    def handle_read(self):
        try:
            self.box.append(self.recv(4096))
        except BlockingIOError:
            pass


class Server(simnet.dispatcher):
    def __init__(self, map, box):
        super().__init__(map=map)
        self.box = box
        self.create_socket()
        self.bind(("127.0.0.1", 4000))
        self.listen(5)

    def handle_accepted(self, sock, addr):
        Collector(sock, self._map, self.box)


class NaiveClient(simnet.dispatcher):
    """The bug: ignores how much ``send()`` took."""

    def __init__(self, map):
        super().__init__(map=map)
        self.create_socket()
        self.connect(("127.0.0.1", 4000))

    def writable(self):
        return not self.connected

    def handle_connect(self):
        self.send(MESSAGE)

    def handle_read(self):
        self.recv(100)


def deliver(net, client_cls=NaiveClient) -> bytes:
    """Run a server and a *client_cls* on *net*; return what the server got."""
    m, box = {}, []
    Server(m, box)
    client_cls(m)
    try:
        net.run(until=lambda: b"".join(box) == MESSAGE, map=m, timeout=60)
    except Exception:  # a deadlock or a timeout: judge by what arrived
        pass
    simnet.close_all(m)
    return b"".join(box)


def scenario(net):
    """The message must arrive whole."""
    got = deliver(net)
    assert got == MESSAGE, f"the server got {len(got)} of {len(MESSAGE)} bytes"
