"""Sockets (objects with ``fileno()``) where file numbers are expected: the
fake network's ``select``/``poll`` and the loop's choice of network."""

from __future__ import annotations

import select
import socket

import pytest

from simnet import _state, asyncore
from simnet.fakesock import FakeNetwork


def test_fake_select_returns_the_objects_given():
    with FakeNetwork(seed=1, trace=True) as net:
        a = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        b = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b.sendto(b"x", a.getsockname())
        r, w, x = net.select([a, b.fileno()], [a], [a], 0)
        assert r == [a] and w == [a] and x == []
        assert r[0] is a
        ready = [e for e in net.trace.events if e[1] == "ready"][-1]
        assert ready[3] == [a.fileno()]  # the trace holds numbers, not objects


def test_fake_poll_registers_objects_like_select_poll():
    with FakeNetwork(seed=1) as net:
        a = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed = net.socket()
        closed.close()
        real = select.poll()
        for pollster in (net.poll(), real):
            with pytest.raises(TypeError, match="fileno"):
                pollster.register("x")
            with pytest.raises(ValueError, match=r"negative integer \(-1\)"):
                pollster.register(closed)
            with pytest.raises(KeyError):
                pollster.unregister(12345)
        fake = net.poll()
        fake.register(a, select.POLLOUT)
        assert fake.poll(0) == [(a.fileno(), select.POLLOUT)]  # numbers, as select.poll
        fake.modify(a, select.POLLIN)
        assert fake.poll(0) == []
        fake.unregister(a)


def test_map_keyed_by_fake_sockets_finds_its_network():
    with FakeNetwork(seed=1) as net:
        s = net.socket()
        d = asyncore.dispatcher(s, map={})
        assert _state.network_for_map({s: d}) is net
        with FakeNetwork(seed=2) as other:
            assert _state.network_for_map({s: d}) is net
            t = other.socket()
            with pytest.raises(ValueError, match="two networks"):
                _state.network_for_map({s: d, t: asyncore.dispatcher(t, map={})})


def test_map_mixing_real_and_fake_socket_keys_is_refused():
    real = socket.socket()
    try:
        with FakeNetwork(seed=1) as net:
            s = net.socket()
            m = {s: asyncore.dispatcher(s, map={}), real: object()}
            with pytest.raises(ValueError, match="mixes real and fake sockets"):
                _state.network_for_map(m)
            assert _state.network_for_map({real: object()}) is None
    finally:
        real.close()
