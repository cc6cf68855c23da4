"""FakeNetwork buffer configuration: Linux loopback defaults, small buffers on request."""

from __future__ import annotations

import socket

import pytest

from simnet.fakesock import FakeNetwork
from simnet.fakesock.sockets import TCP_SNDBUF_CONNECTED

S = socket.SOL_SOCKET


def _pair(net):
    lst = net.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    cli = net.socket()
    cli.connect(lst.getsockname())
    srv, _ = lst.accept()
    cli.setblocking(False)
    return cli, srv


def test_default_is_linux_loopback_autotuning():
    with FakeNetwork(seed=1) as net:
        assert net.socket().getsockopt(S, socket.SO_SNDBUF) == 16384
        cli, srv = _pair(net)
        assert cli.getsockopt(S, socket.SO_SNDBUF) == TCP_SNDBUF_CONNECTED
        assert srv.getsockopt(S, socket.SO_SNDBUF) == TCP_SNDBUF_CONNECTED
        assert cli.send(b"x" * 200_000) == 200_000
        assert net.config()["sndbuf"] is None


def test_small_buffers_on_request():
    with FakeNetwork(seed=1, sndbuf=16384, rcvbuf=16384) as net:
        cli, srv = _pair(net)
        assert cli.getsockopt(S, socket.SO_SNDBUF) == 16384  # fixed: no autotuning
        assert cli.getsockopt(S, socket.SO_RCVBUF) == 16384
        assert cli.send(b"x" * 200_000) == 16384
        assert net.config()["sndbuf"] == 16384


def test_setsockopt_fixes_the_size():
    with FakeNetwork(seed=1) as net:
        lst = net.socket()
        lst.setsockopt(S, socket.SO_SNDBUF, 8192)
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        cli = net.socket()
        cli.setsockopt(S, socket.SO_SNDBUF, 8192)
        cli.connect(lst.getsockname())
        srv, _ = lst.accept()
        assert cli.getsockopt(S, socket.SO_SNDBUF) == srv.getsockopt(S, socket.SO_SNDBUF) == 16384


@pytest.mark.parametrize("value, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                          (True, TypeError), ("16k", TypeError)])
def test_bad_buffer_size_names_the_field(value, error):
    with pytest.raises(error, match=rf"sndbuf must be a positive int \(bytes\) or None, got {value!r}"):
        FakeNetwork(sndbuf=value)
