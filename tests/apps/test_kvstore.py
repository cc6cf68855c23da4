"""A server and clients whose socket map is keyed by socket objects (``kvstore.py``)."""

from __future__ import annotations

import socket

import pytest

import simnet.asyncore as asyncore

from .conftest import BUG_EAGAIN, BUG_SOCKET_KEYS, Backend, recorded_run, variant_params
from .kvstore import KVClient, KVServer

#: loop passes the asyncore clients may take (each waits at most 0.05 s)
MAX_PASSES = 20_000


def big_value(i: int) -> str:
    return "".join(f"{i}:{n:06d};" for n in range(12_000))  # ~120 kB


def requests_of(i: int) -> list[bytes]:
    return [f"SET k{i} v{i}".encode(), f"GET k{i}".encode(), f"SET big{i} {big_value(i)}".encode(),
            f"GET big{i}".encode(), f"DEL k{i}".encode(), f"GET k{i}".encode(), b"NOPE", b"QUIT"]


def replies_of(i: int) -> list[str]:
    return ["OK", f"VALUE v{i}", "OK", f"VALUE {big_value(i)}", "DELETED 1", "MISSING",
            "ERROR unknown command", "BYE"]


def drive(done, channels: dict) -> None:
    """The application's own loop: ``asyncore.loop`` and ``asyncore.poll``
    on the socket-keyed map, bounded."""
    for n in range(MAX_PASSES):
        if done():
            return
        if n % 2:
            asyncore.poll(0.05, channels)
        else:
            asyncore.loop(timeout=0.05, map=channels, count=1)
    assert done(), f"not done after {MAX_PASSES} passes: {channels!r}"


def kv_session(backend: Backend) -> None:
    """Three asyncore clients at once in the server's map, then an
    unmodified blocking socket client while the server's loop runs."""
    channels: dict = {}
    with backend.network():
        server = KVServer(("127.0.0.1", 0), channels)
        assert channels == {server.socket: server}
        clients = [KVClient(server.address, requests_of(i), channels) for i in range(3)]
        assert all(channels[c.socket] is c for c in clients)
        drive(lambda: all(c.done for c in clients) and len(channels) == 1, channels)
        for i, client in enumerate(clients):
            assert client.replies == replies_of(i), f"client {i}"
        assert server.accepted == 3
        backend.eagain_for_the_blocking_client()
        with backend.serving(channels):
            with socket.create_connection(server.address, timeout=10) as sock:
                reader = sock.makefile("rb")
                sock.sendall(b"GET big1\nCLIENTS\nSET k1 again\nGET k1\nQUIT\n")
                lines = [reader.readline() for _ in range(5)]
                assert lines == [f"VALUE {big_value(1)}\n".encode(), b"CLIENTS 1\n", b"OK\n",
                                 b"VALUE again\n", b"BYE\n"]
                assert reader.readline() == b""  # the server closed after BYE
                reader.close()
        drive(lambda: len(channels) == 1, channels)
        assert server.accepted == 4
        server.close()
        assert channels == {}


@pytest.mark.parametrize("backend", variant_params({
    "fake": (BUG_SOCKET_KEYS,), "fake-faults": (BUG_SOCKET_KEYS, BUG_EAGAIN), "real-faults": (BUG_EAGAIN,),
}), indirect=True)
def test_socket_keyed_map_served_by_loop_and_poll(backend: Backend) -> None:
    kv_session(backend)


def test_kvstore_fake_runs_are_deterministic() -> None:
    """Same seed, same plan: the same outcome, virtual time and trace."""
    first = recorded_run(kv_session, seed=9)
    second = recorded_run(kv_session, seed=9)
    assert first == second
    assert len(first[2]) > 3
