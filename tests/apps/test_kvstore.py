"""A server and clients whose socket map is keyed by socket objects (``kvstore.py``)."""

from __future__ import annotations

import socket
import time

import pytest

import simnet.asyncore as asyncore

from .conftest import REAL_TIMEOUT, VARIANTS, Backend
from .kvstore import KVClient, KVServer

#: loop passes the application may take on the fake network
MAX_PASSES = 5_000


def big_value(i: int) -> str:
    return "".join(f"{i}:{n:06d};" for n in range(12_000))  # ~120 kB


def requests_of(i: int) -> list[bytes]:
    return [f"SET k{i} v{i}".encode(), f"GET k{i}".encode(), f"SET big{i} {big_value(i)}".encode(),
            f"GET big{i}".encode(), f"DEL k{i}".encode(), f"GET k{i}".encode(), b"NOPE", b"QUIT"]


def replies_of(i: int) -> list[str]:
    return ["OK", f"VALUE v{i}", "OK", f"VALUE {big_value(i)}", "DELETED 1", "MISSING",
            "ERROR unknown command", "BYE"]


def drive(backend: Backend, done, channels: dict, timeout: float = 0.05, use_poll: bool = False) -> None:
    """The application's own loop: ``asyncore.loop`` and ``asyncore.poll``
    (with *use_poll*: ``loop(use_poll=True)`` and ``poll2``) on the map, each
    waiting at most *timeout* (0: busy polling). Bounded by
    :data:`MAX_PASSES` on the fake network, by wall time on real sockets
    (where a busy loop may spin many thousand times while TCP holds back a
    small segment)."""
    deadline = time.monotonic() + REAL_TIMEOUT
    n = 0
    while not done():
        if backend.fake:
            assert n < MAX_PASSES, f"not done after {MAX_PASSES} passes: {channels!r}"
        else:
            assert time.monotonic() < deadline, f"not done within {REAL_TIMEOUT} s: {channels!r}"
        if n % 2:
            (asyncore.poll2 if use_poll else asyncore.poll)(timeout, channels)
        else:
            asyncore.loop(timeout=timeout, map=channels, use_poll=use_poll, count=1)
        n += 1


def kv_session(backend: Backend, key_by_socket: bool = True, timeout: float = 0.05,
               use_poll: bool = False) -> None:
    """Three asyncore clients at once in the server's map (keyed by socket
    objects, or by file numbers), driven by the application's loop (passes
    waiting at most *timeout*; ``poll()`` instead of ``select()`` with
    *use_poll*), then an unmodified blocking socket client while the
    server's loop runs."""
    channels: dict = {}
    with backend.network(client_conn=4):  # after the three asyncore clients
        server = KVServer(("127.0.0.1", 0), channels, key_by_socket)
        assert channels == {server.map_key(): server}
        clients = [KVClient(server.address, requests_of(i), channels, key_by_socket) for i in range(3)]
        assert all(channels[c.map_key()] is c for c in clients)
        drive(backend, lambda: all(c.done for c in clients) and len(channels) == 1, channels, timeout, use_poll)
        for i, client in enumerate(clients):
            assert client.replies == replies_of(i), f"client {i}"
        assert server.accepted == 3
        with backend.serving(channels, use_poll):
            with socket.create_connection(server.address, timeout=10) as sock:
                reader = sock.makefile("rb")
                sock.sendall(b"GET big1\nCLIENTS\nSET k1 again\nGET k1\nQUIT\n")
                lines = [reader.readline() for _ in range(5)]
                assert lines == [f"VALUE {big_value(1)}\n".encode(), b"CLIENTS 1\n", b"OK\n",
                                 b"VALUE again\n", b"BYE\n"]
                assert reader.readline() == b""  # the server closed after BYE
                reader.close()
        drive(backend, lambda: len(channels) == 1, channels, timeout, use_poll)
        assert server.accepted == 4
        server.close()
        backend.assert_the_mix_acted()
        assert channels == {}


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_socket_keyed_map_served_by_loop_and_poll(backend: Backend) -> None:
    kv_session(backend)


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_busy_polling_program_with_a_file_number_map(backend: Backend) -> None:
    """The same program with an ordinary map, polling with timeout 0 (as
    programs that do other work between passes do): on a real network time
    passes while it spins, and the data arrives."""
    kv_session(backend, key_by_socket=False, timeout=0.0)


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_poll_program_with_a_file_number_map(backend: Backend) -> None:
    """The same program with an ordinary map, on ``select.poll``
    (``loop(use_poll=True)``, ``poll2``; the stdlib's poll2 cannot serve a
    map keyed by sockets)."""
    kv_session(backend, key_by_socket=False, use_poll=True)
