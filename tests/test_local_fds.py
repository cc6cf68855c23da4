"""Pipes and files in a fake network's loop (``simnet.fakesock.local``).

A program written for asyncore may keep a descriptor that is not a socket in
its map next to its sockets: a self-pipe that wakes the loop, a
``file_dispatcher`` on a pipe. On loopback that just works; on the fake
network it must too. The program below is written as a user would, with
``simnet.asyncore`` as its asyncore and nothing else from simnet.
"""

from __future__ import annotations

import os
import select
import socket
import threading

import pytest

import simnet.asyncore as asyncore
from simnet import _state
from simnet.fakesock import Deadlock, FakeNetwork, local


class PipeReader(asyncore.file_dispatcher):
    def __init__(self, fd: int, log: list, map: dict) -> None:
        super().__init__(fd, map=map)
        self.log = log

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        self.log.append(("pipe", self.recv(100)))


class Echo(asyncore.dispatcher_with_send):
    def handle_read(self) -> None:
        data = self.recv(100)
        if data:
            self.send(data)


class Server(asyncore.dispatcher):
    def __init__(self, map: dict) -> None:
        super().__init__(map=map)
        self.channels = map
        self.create_socket()
        self.set_reuse_addr()
        self.bind(("127.0.0.1", 0))
        self.listen(5)

    def handle_accepted(self, sock: socket.socket, addr: object) -> None:
        Echo(sock, map=self.channels)


class Client(asyncore.dispatcher):
    """Sends hello; on the echo, tells the pipe and closes."""

    def __init__(self, address: object, log: list, wake_fd: int, map: dict) -> None:
        super().__init__(map=map)
        self.log, self.wake_fd, self.out = log, wake_fd, b"hello"
        self.create_socket()
        self.connect(address)

    def handle_connect(self) -> None:
        pass

    def writable(self) -> bool:
        return bool(self.out)

    def handle_write(self) -> None:
        self.out = self.out[self.send(self.out):]

    def handle_read(self) -> None:
        self.log.append(("sock", self.recv(100)))
        os.write(self.wake_fd, b"x")
        self.close()


def self_pipe_program(use_poll: bool) -> list:
    channels: dict = {}
    log: list = []
    r, w = os.pipe()
    try:
        PipeReader(r, log, channels)
        server = Server(channels)
        Client(server.socket.getsockname(), log, w, channels)
        for _ in range(50):
            asyncore.loop(timeout=0.1, map=channels, count=1, use_poll=use_poll)
            if len(log) == 2:
                break
    finally:
        asyncore.close_all(map=channels)
        os.close(w)
    return log


@pytest.mark.parametrize("use_poll", [False, True], ids=["select", "poll"])
def test_a_pipe_and_sockets_in_one_map_work_as_on_loopback(use_poll: bool) -> None:
    real = self_pipe_program(use_poll)
    with FakeNetwork(seed=1):
        fake = self_pipe_program(use_poll)
    assert real == fake == [("sock", b"hello"), ("pipe", b"x")]


@pytest.mark.parametrize("use_poll", [False, True], ids=["select", "poll"])
def test_a_thread_writing_a_pipe_wakes_an_idle_fake_loop(use_poll: bool) -> None:
    """Nothing can happen on the network (a server nobody connects to) and
    the pass has no timeout: only the pipe can end the wait, so the pass
    waits for it in real time. The virtual clock does not move."""
    channels: dict = {}
    log: list = []
    r, w = os.pipe()
    writer = threading.Timer(0.05, os.write, (w, b"wake"))
    try:
        with FakeNetwork(seed=1) as net:
            PipeReader(r, log, channels)
            Server(channels)
            writer.start()
            asyncore.loop(timeout=None, map=channels, count=1, use_poll=use_poll)
            assert log == [("pipe", b"wake")]
            assert net.time() == 0.0
    finally:
        writer.join(10)
        asyncore.close_all(map=channels)
        os.close(w)


def test_a_pipe_nobody_writes_ends_in_deadlock_after_the_bounded_real_wait(monkeypatch) -> None:
    monkeypatch.setattr(local, "LOCAL_WAIT_LIMIT", 0.01)
    channels: dict = {}
    r, w = os.pipe()
    try:
        with FakeNetwork(seed=1):
            PipeReader(r, [], channels)
            Server(channels)
            with pytest.raises(Deadlock):
                asyncore.loop(timeout=None, map=channels, count=1)
    finally:
        asyncore.close_all(map=channels)
        os.close(w)


def test_a_pipe_with_pending_network_work_does_not_wait_in_real_time(monkeypatch) -> None:
    """With data in flight the pass waits in virtual time as usual (a real
    wait would be an error: the network can go on by itself)."""
    def refuse(*args: object) -> None:
        raise AssertionError("waited in real time while the network had work")

    channels: dict = {}
    log: list = []
    r, w = os.pipe()
    try:
        with FakeNetwork(seed=1, latency=0.5) as net:
            PipeReader(r, log, channels)
            server = Server(channels)
            Client(server.socket.getsockname(), log, w, channels)
            real_select = local._real_select

            def no_real_wait(rl: list, wl: list, xl: list, timeout: float) -> tuple:
                if timeout:
                    refuse()
                return real_select(rl, wl, xl, 0)

            monkeypatch.setattr(local, "_real_select", no_real_wait)
            net.run(until=lambda: len(log) == 2, map=channels, timeout=10)
        assert log == [("sock", b"hello"), ("pipe", b"x")]
        assert net.time() == pytest.approx(2.0)  # connect, data and echo: 4 x 0.5 s
    finally:
        asyncore.close_all(map=channels)
        os.close(w)


def test_a_real_socket_still_cannot_share_a_map_with_fake_ones() -> None:
    channels: dict = {}
    real = socket.socket()
    try:
        with FakeNetwork(seed=1):
            Server(channels)
            channels[real.fileno()] = asyncore.dispatcher(real, map={})
            with pytest.raises(ValueError, match="mixes real and fake sockets"):
                asyncore.loop(timeout=0.1, map=channels, count=1)
    finally:
        asyncore.close_all(map=channels)
        real.close()


def test_local_descriptors_stay_out_of_the_trace() -> None:
    """The pipe's number differs between runs (here: more descriptors are
    open the second time); the trace is the same, byte for byte."""
    traces = []
    events = []
    extra = []
    try:
        for _ in range(2):
            with FakeNetwork(seed=5, trace=True) as net:
                self_pipe_program(use_poll=False)
            traces.append(list(net.trace.lines()))
            events.append(net.trace.events)
            extra.append(os.pipe())
    finally:
        for pair in extra:
            for fd in pair:
                os.close(fd)
    assert traces[0] == traces[1]
    ready = [e for e in events[0] if e[1] == "ready"]
    assert ready
    assert all(fd >= _state.FAKE_FD_BASE for e in ready for fd in [*e[3], *e[4]])


def test_select_select_in_patch_takes_a_pipe_next_to_fake_sockets() -> None:
    """A program's own ``select.select`` inside ``net.patch()``."""
    r, w = os.pipe()
    try:
        with FakeNetwork(seed=1) as net, net.patch():
            a, b = socket.socketpair()
            with a, b:
                assert select.select([a, r], [], [], 0) == ([], [], [])
                os.write(w, b"!")
                assert select.select([a, r], [], [], 1.0) == ([r], [], [])
                b.send(b"?")
                assert select.select([a, r], [], [], 1.0) == ([a, r], [], [])
                assert _state.is_local_fd(r) and not _state.is_local_fd(a)
    finally:
        os.close(r)
        os.close(w)
