"""Foreign loops on the fake network: an asyncore program driven by its own epoll loop.

Some asyncore applications bring their own loop (an IOLoop over ``select.epoll``
calling ``asyncore.readwrite``). Inside ``net.patch()`` such a loop runs on
fake sockets unmodified; ``net.add_pump`` drives it while a blocking client
waits; ``net.run()`` drives pumps too.

What is checked:

* an echo server and client (dispatchers in a private map) driven by a
  user-written edge-free epoll loop exchange 200 KiB on the fake network (twice:
  same bytes and virtual time) and on real loopback;
* the same loop as a pump answers a blocking ``socket.create_connection``
  client; pumps are never re-entered, can be removed, and bad pumps are refused;
* ``net.run(until=...)`` calls the pumps on every pass.
"""

from __future__ import annotations

import select
import socket

import pytest

import simnet
from simnet.fakesock import FakeNetwork


class EpollLoop:
    """A small IOLoop: asyncore channels of *map* polled with select.epoll."""

    def __init__(self, map):
        self.map = map
        self.ep = select.epoll()
        self.masks = {}

    def step(self, timeout=0.0):
        for fd, obj in list(self.map.items()):
            mask = 0
            if obj.readable():
                mask |= select.EPOLLIN | select.EPOLLPRI
            if obj.writable() and not obj.accepting:
                mask |= select.EPOLLOUT
            if fd not in self.masks:
                self.ep.register(fd, mask)
            elif self.masks[fd] != mask:
                self.ep.modify(fd, mask)
            self.masks[fd] = mask
        for fd in list(self.masks):
            if fd not in self.map:
                del self.masks[fd]
                try:
                    self.ep.unregister(fd)
                except (OSError, ValueError):
                    pass  # closed: the kernel dropped it already
        for fd, events in self.ep.poll(timeout):
            obj = self.map.get(fd)
            if obj is not None:
                simnet.readwrite(obj, events)

    def close(self):
        self.ep.close()


class EchoHandler(simnet.dispatcher_with_send):
    def handle_read(self):
        data = self.recv(65536)
        if data:
            self.send(data)


class EchoServer(simnet.dispatcher):
    def __init__(self, address, map):
        super().__init__(map=map)
        self.create_socket()
        self.set_reuse_addr()
        self.bind(address)
        self.listen(5)

    def handle_accepted(self, sock, addr):
        EchoHandler(sock, map=self._map)


class EchoClient(simnet.dispatcher):
    def __init__(self, address, payload, map):
        super().__init__(map=map)
        self.create_socket()
        self.connect(address)
        self.out = payload
        self.want = len(payload)
        self.got = bytearray()
        self.done = False

    def writable(self):
        return bool(self.out)

    def handle_connect(self):
        pass

    def handle_write(self):
        self.out = self.out[self.send(self.out[:65536]):]

    def handle_read(self):
        self.got += self.recv(65536)
        if len(self.got) >= self.want:
            self.done = True
            self.close()


PAYLOAD = bytes(range(200)) * 1024


def _exchange(address):
    m = {}
    server = EchoServer(address, m)
    client = EchoClient(server.socket.getsockname(), PAYLOAD, m)
    loop = EpollLoop(m)
    passes = 0
    while not client.done and passes < 10_000:
        loop.step(1.0)
        passes += 1
    loop.close()
    simnet.close_all(m)
    return bytes(client.got)


def test_an_asyncore_program_driven_by_its_own_epoll_loop_on_the_fake_network():
    results = []
    for _ in range(2):
        with FakeNetwork(seed=11) as net, net.patch():
            got = _exchange(("127.0.0.1", 7000))
            results.append((got == PAYLOAD, net.time()))
    assert results[0] == (True, results[0][1])
    assert results[1] == results[0]


def test_an_asyncore_program_driven_by_its_own_epoll_loop_on_loopback():
    assert _exchange(("127.0.0.1", 0)) == PAYLOAD


def test_the_epoll_loop_as_a_pump_answers_a_blocking_client():
    with FakeNetwork(seed=3) as net, net.patch():
        m = {}
        EchoServer(("127.0.0.1", 7000), m)
        loop = EpollLoop(m)
        net.add_pump(loop.step)
        with socket.create_connection(("127.0.0.1", 7000), timeout=5) as c:
            c.sendall(b"x" * 100_000)
            got = b""
            while len(got) < 100_000:
                got += c.recv(65536)
        assert got == b"x" * 100_000
        net.remove_pump(loop.step)
        loop.close()
        simnet.close_all(m)


def test_pumps_are_not_reentered_and_are_checked():
    with FakeNetwork(seed=1) as net, net.patch():
        a, b = socket.socketpair()
        depth = []
        calls = []

        def step():
            calls.append(len(depth))
            depth.append(1)
            try:
                if len(calls) == 1:
                    b.send(b"!")
                # a blocking call inside a step runs the simulation, never the pumps
                b.settimeout(0.25)
                with pytest.raises(TimeoutError):
                    b.recv(1)
            finally:
                depth.pop()

        assert net.add_pump(step) is step
        with pytest.raises(ValueError, match="already a pump"):
            net.add_pump(step)
        with pytest.raises(TypeError, match="step must be callable"):
            net.add_pump(42)
        a.settimeout(5)
        assert a.recv(1) == b"!"
        assert calls == [0]  # called once, never from inside itself
        assert net.time() == pytest.approx(0.25)
        net.remove_pump(step)
        with pytest.raises(ValueError, match="is not a pump"):
            net.remove_pump(step)
        a.close()
        b.close()


def test_run_drives_the_pumps():
    with FakeNetwork(seed=1) as net, net.patch():
        server_map, client_map = {}, {}
        EchoServer(("127.0.0.1", 7000), server_map)
        loop = EpollLoop(server_map)
        net.add_pump(loop.step)
        client = EchoClient(("127.0.0.1", 7000), b"hi" * 1000, client_map)
        net.run(until=lambda: client.done, map=client_map, timeout=10)
        assert bytes(client.got) == b"hi" * 1000
        net.remove_pump(loop.step)
        loop.close()
        simnet.close_all(server_map)
