"""The fused loop pass on the fake network keeps its verdict on a map between passes.

``simnet.asyncore.poll``/``poll2`` remember that a map holds only the current
fake network's sockets (``_state.fast_map``) instead of checking every key on
every pass. These tests change the map, and its sockets, in the ways a
program can -- through the dispatcher, behind its back, from another network
-- and check that each pass still does what the full lookup (and the kernel)
does: the same errors, the same handlers, the same replaceable globals.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest

import simnet.asyncore as asyncore
from simnet import _state
from simnet.fakesock import FakeNetwork

POLLS = [pytest.param(asyncore.poll, id="poll"), pytest.param(asyncore.poll2, id="poll2")]


class Reader(asyncore.dispatcher):
    """Reads whatever arrives; never writable."""

    def __init__(self, sock: Any, map: dict) -> None:
        super().__init__(sock, map)
        self.got = b""
        self.closed_by_loop = False

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        self.got += self.recv(100)

    def handle_close(self) -> None:
        self.closed_by_loop = True
        self.close()

    def handle_error(self) -> None:
        raise


def connected(make: Any, listen_addr: tuple, keep: list | None = None) -> tuple[Any, Any]:
    """(client socket, accepted socket), connected over *make*'s sockets; the
    listener is closed, or appended to *keep*."""
    lst = make()
    lst.bind(listen_addr)
    lst.listen(1)
    cli = make()
    cli.connect(lst.getsockname())
    srv, _ = lst.accept()
    if keep is None:
        lst.close()
    else:
        keep.append(lst)
    return cli, srv


def test_a_pass_remembers_the_map_and_forgets_it_when_a_channel_comes_or_goes():
    with FakeNetwork(seed=1) as net:
        m: dict = {}
        cli, srv = connected(net.socket, ("127.0.0.1", 80))
        reader = Reader(srv, m)
        asyncore.poll(0.0, m)
        assert _state.fast_map is m and _state.fast_net is net
        other_cli, other_srv = connected(net.socket, ("127.0.0.1", 81))
        second = Reader(other_srv, m)  # add_channel
        assert _state.fast_map is None
        asyncore.poll(0.0, m)
        assert _state.fast_map is m
        second.close()  # del_channel
        assert _state.fast_map is None
        cli.send(b"hello")
        asyncore.poll(0.0, m)
        assert reader.got == b"hello"
        for s in (cli, other_cli):
            s.close()
        reader.close()


@pytest.mark.parametrize("poll", POLLS)
def test_a_real_channel_added_after_the_verdict_is_a_mixing_error(poll):
    m: dict = {}
    real_cli, real_srv = connected(socket.socket, ("127.0.0.1", 0))
    try:
        with FakeNetwork(seed=1) as net:
            cli, srv = connected(net.socket, ("127.0.0.1", 80))
            Reader(srv, m)
            poll(0.0, m)
            poll(0.0, m)  # the verdict is kept
            Reader(real_srv, m)
            with pytest.raises(ValueError, match="mixes real and fake sockets"):
                poll(0.0, m)
            asyncore.close_all(m)
            cli.close()
    finally:
        real_cli.close()
        real_srv.close()


@pytest.mark.parametrize("poll", POLLS)
def test_a_real_fd_put_in_the_map_behind_the_dispatchers_back_is_a_mixing_error(poll):
    m: dict = {}
    real_cli, real_srv = connected(socket.socket, ("127.0.0.1", 0))
    try:
        with FakeNetwork(seed=1) as net:
            cli, srv = connected(net.socket, ("127.0.0.1", 80))
            fake = Reader(srv, m)
            poll(0.0, m)
            assert _state.fast_map is m
            # no add_channel: the map is changed directly
            m[real_srv.fileno()] = asyncore.dispatcher(real_srv, map={})
            with pytest.raises(ValueError, match="mixes real and fake sockets"):
                poll(0.0, m)
            del m[real_srv.fileno()]
            fake.close()
            cli.close()
    finally:
        real_cli.close()
        real_srv.close()


def closed_behind_the_back(poll: Any, make: Any, addr: tuple) -> tuple[str, Any]:
    """Poll a map whose channel's socket was closed directly (not through the
    dispatcher, so the channel stays in the map under its old number): what
    the pass does, as ``(outcome, detail)``."""
    m: dict = {}
    cli, srv = connected(make, addr)
    reader = Reader(srv, m)
    poll(0.0, m)
    srv.close()  # the file number is released; the map still holds it
    try:
        poll(0.0, m)
    except OSError as exc:
        outcome = ("raised", exc.errno)
    else:
        outcome = ("handled", reader.closed_by_loop)
    m.clear()
    cli.close()
    return outcome


@pytest.mark.parametrize("poll", POLLS)
def test_a_socket_closed_behind_the_dispatchers_back_fails_as_on_the_kernel(poll):
    kernel = closed_behind_the_back(poll, socket.socket, ("127.0.0.1", 0))
    with FakeNetwork(seed=1) as net:
        fake = closed_behind_the_back(poll, net.socket, ("127.0.0.1", 80))
    # select(): EBADF; poll(): POLLNVAL, which readwrite() turns into handle_close
    assert kernel == (("raised", errno.EBADF) if poll is asyncore.poll else ("handled", True))
    assert fake == kernel


@pytest.mark.parametrize("poll", POLLS)
def test_a_map_of_another_fake_network_is_waited_on_by_that_network(poll):
    """Every fake network numbers its sockets the same way: a map of network
    A's sockets, polled while B (with the same numbers open, one of them
    readable) is current, must still be read from A's sockets."""
    with FakeNetwork(seed=1) as a:
        ma: dict = {}
        a_cli, a_srv = connected(a.socket, ("127.0.0.1", 80))
        a_reader = Reader(a_srv, ma)
        poll(0.0, ma)  # A's verdict on ma
        with FakeNetwork(seed=2) as b:
            # (nothing of B's is closed here, so A's verdict is not reset)
            b_lst: list = []
            b_cli, b_srv = connected(b.socket, ("127.0.0.1", 80), keep=b_lst)
            assert b_srv.fileno() == a_srv.fileno()
            b_cli.send(b"for b")  # B's socket of that number is readable; A's is not
            poll(0.0, ma)
            assert a_reader.got == b""
            a_cli.send(b"for a")
            poll(0.0, ma)
            assert a_reader.got == b"for a"
            mb: dict = {}
            b_reader = Reader(b_srv, mb)
            poll(0.0, mb)
            assert b_reader.got == b"for b"
            b_reader.close()
            b_cli.close()
        a_reader.close()
        a_cli.close()


@pytest.mark.parametrize("poll", POLLS)
def test_replaced_module_globals_are_called_on_the_fake_network(poll, monkeypatch):
    """As with the stdlib module, a test may replace ``asyncore.read``/``write``
    (``readwrite`` for poll2): the fused pass calls them by name."""
    calls: list = []
    with FakeNetwork(seed=1) as net:
        m: dict = {}
        cli, srv = connected(net.socket, ("127.0.0.1", 80))
        reader = Reader(srv, m)
        poll(0.0, m)
        cli.send(b"x")
        if poll is asyncore.poll:
            monkeypatch.setattr(asyncore, "read", lambda obj: calls.append(("read", obj)))
        else:
            monkeypatch.setattr(asyncore, "readwrite",
                                lambda obj, flags: calls.append(("readwrite", obj)))
        poll(0.0, m)
        assert calls == [("read" if poll is asyncore.poll else "readwrite", reader)]
        assert reader.got == b""
        reader.close()
        cli.close()


def test_the_kept_verdict_does_not_keep_a_closed_network_alive():
    import gc
    import weakref

    with FakeNetwork(seed=1, trace=True) as net:
        m: dict = {}
        cli, srv = connected(net.socket, ("127.0.0.1", 80))
        Reader(srv, m)
        asyncore.poll(0.0, m)
        assert _state.fast_net is net
    ref = weakref.ref(net)
    del net, cli, srv, m
    gc.collect()
    assert ref() is None
