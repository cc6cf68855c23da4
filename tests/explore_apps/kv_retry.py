"""A user's own program that does networking right, and its explore scenario.

A key-value server on ``async_chat`` and a client that stores one value.
The client survives what a real network does: it retries a refused, reset,
unreachable or timed-out connection with exponential backoff (a fresh
connection each time), gives each attempt a deadline that grows with the
backoff, lets ``async_chat`` carry a partial send over to the next write
event, and treats the request as idempotent (a ``PUT`` that is repeated after
a lost reply does no harm). So no transient fault plan can make it fail::

    simnet explore kv_retry:scenario --seeds 1000 -j 2

Nothing here comes from simnet.examples: it is written the way a user would
write it, on the public API only.
"""

from __future__ import annotations

import simnet

ADDR = ("127.0.0.1", 7000)
KEY, VALUE = b"greeting", b"hello there, this value takes a few segments " * 3


class KVSession(simnet.async_chat):
    """Server side of one connection: ``PUT key value\\n`` -> ``OK key\\n``."""

    def __init__(self, sock, map, store):
        super().__init__(sock, map=map)
        self.store = store
        self.buffer = []
        self.set_terminator(b"\n")

    def collect_incoming_data(self, data):
        self.buffer.append(data)

    def found_terminator(self):
        line, self.buffer = b"".join(self.buffer), []
        verb, _, rest = line.partition(b" ")
        key, _, value = rest.partition(b" ")
        if verb == b"PUT" and key:
            self.store[key] = value
            self.push(b"OK " + key + b"\n")
        else:
            self.push(b"ERR\n")


class KVServer(simnet.dispatcher):
    def __init__(self, map, store):
        super().__init__(map=map)
        self.store = store
        self.create_socket()
        self.set_reuse_addr()
        self.bind(ADDR)
        self.listen(16)

    def handle_accepted(self, sock, addr):
        KVSession(sock, self._map, self.store)


class Attempt(simnet.async_chat):
    """One connection attempt of :class:`Putter`."""

    def __init__(self, owner, map):
        super().__init__(map=map)
        self.owner = owner
        self.buffer = []
        self.set_terminator(b"\n")
        self.create_socket()
        self.connect(ADDR)
        self.push(b"PUT " + KEY + b" " + VALUE + b"\n")

    def collect_incoming_data(self, data):
        self.buffer.append(data)

    def found_terminator(self):
        line, self.buffer = b"".join(self.buffer), []
        if line == b"OK " + KEY:
            self.owner.succeeded(self)

    def handle_close(self):
        self.close()
        self.owner.failed(self)

    def handle_error(self):
        # a refused/unreachable connect or any socket error: this attempt is over
        self.close()
        self.owner.failed(self)


class Putter:
    """Stores KEY=VALUE on the server, retrying with backoff until it is acknowledged."""

    def __init__(self, map):
        self.map = map
        self.tries = 0
        self.done = False
        self.attempt = None
        self.deadline = None
        self.retry = None
        self.start()

    def start(self):
        self.retry = None
        self.tries += 1
        self.attempt = Attempt(self, self.map)
        # an attempt that hears nothing (a dropped SYN, a stalled peer) is abandoned
        self.deadline = simnet.call_later(min(5.0 * 2 ** (self.tries - 1), 60.0), self.abandon,
                                          self.attempt)

    def abandon(self, attempt):
        if attempt is self.attempt:
            attempt.close()
            self.failed(attempt)

    def succeeded(self, attempt):
        self.done = True
        self.deadline.cancel()
        attempt.close()

    def failed(self, attempt):
        if self.done or attempt is not self.attempt or self.retry is not None:
            return
        self.attempt = None
        self.deadline.cancel()
        backoff = min(0.05 * 2 ** self.tries, 5.0)
        self.retry = simnet.call_later(backoff, self.start)


def scenario(net):
    """The value must be stored and acknowledged, whatever transient faults happen."""
    channels, store = {}, {}
    KVServer(channels, store)
    putter = Putter(channels)
    try:
        net.run(until=lambda: putter.done, map=channels, timeout=900)
    finally:
        if putter.retry is not None:
            putter.retry.cancel()
        if putter.deadline is not None:
            putter.deadline.cancel()
        simnet.close_all(channels)
    assert store.get(KEY) == VALUE, f"the server stored {store.get(KEY)!r}"
