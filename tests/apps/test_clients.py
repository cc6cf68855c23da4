"""Client programs a user would bring, against small dispatcher servers
(``small_servers.py``): each runs on the four networks of the suite with one
body of assertions (see ``conftest.py``)."""

from __future__ import annotations

import hashlib
import http.client
import os
import poplib
import select
import selectors
import socket
import tempfile

import pytest

from .conftest import VARIANTS, Backend
from .small_servers import (MAILS, ChunkedHTTP, Closer, DigestHandler, Listener, POP3Channel,
                            ProducerChannel, UDPUpper, chunked_body)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def expected_digest(data: bytes) -> bytes:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode()


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
@pytest.mark.parametrize("family, timeout", [(socket.AF_INET, 5), (socket.AF_INET, None),
                                             (socket.AF_UNIX, 5)], ids=["tcp", "tcp-blocking", "unix"])
def test_sendall_a_mebibyte_shutdown_then_read_to_eof(backend: Backend, family, timeout, tmp_path) -> None:
    """``create_connection(timeout=...)`` (or a blocking AF_UNIX client),
    ``sendall`` of 1 MiB, ``shutdown(SHUT_WR)``, read to EOF in 7-byte recvs:
    the server's digest of every byte, then b"" again."""
    channels: dict = {}
    with backend.network():
        addr = str(tmp_path / "s") if family == socket.AF_UNIX else ("127.0.0.1", 0)
        server = Listener(addr, channels, DigestHandler, family)
        where = server.socket.getsockname()
        with backend.serving(channels):
            if family == socket.AF_UNIX:
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.settimeout(timeout)
                client.connect(where)
            else:
                client = socket.create_connection(where, timeout=timeout)
            client.sendall(PAYLOAD)
            client.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := client.recv(7):
                chunks.append(chunk)
            again = client.recv(10)
            client.close()
        backend.run_until(lambda: len(channels) == 1, channels)
        server.close()
    assert b"".join(chunks) == expected_digest(PAYLOAD)
    assert again == b""


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_udp_client_with_timeout_and_retries(backend: Backend) -> None:
    """A UDP client with ``settimeout(0.2)`` retries each request once: the
    server drops the first copy of each; every answer comes from the server."""
    channels: dict = {}
    got = []
    with backend.network():
        server = UDPUpper(channels)
        where = server.socket.getsockname()
        with backend.serving(channels):
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.settimeout(0.2)
            for i in range(5):
                for tries in range(1, 10):
                    client.sendto(f"req{i}".encode(), where)
                    try:
                        data, sender = client.recvfrom(100)
                    except socket.timeout:
                        continue
                    got.append((data, sender == where, tries))
                    break
            client.close()
        server.close()
    assert got == [(f"REQ{i}".encode(), True, 2) for i in range(5)]
    if backend.fake:
        assert backend.elapsed() >= 1.0  # five timeouts of 0.2 s, in virtual time


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_producers_read_with_makefile_readline(backend: Backend) -> None:
    """async_chat with push, simple_producer, a file producer and
    close_when_done; the client reads lines with ``makefile('rb')``."""
    channels: dict = {}
    with backend.network():
        server = Listener(("127.0.0.1", 0), channels, ProducerChannel)
        where = server.socket.getsockname()
        with backend.serving(channels):
            client = socket.create_connection(where, timeout=5)
            f = client.makefile("rb")
            client.sendall(b"ECHO hi\n")
            echoed = f.readline()
            client.sendall(b"LINES 500\nFILE 100000\n")
            lines = list(iter(f.readline, b".\r\n"))
            big = f.readline()
            client.sendall(b"QUIT\n")
            bye, eof = f.readline(), f.readline()
            f.close()
            client.close()
        backend.run_until(lambda: len(channels) == 1, channels)
        server.close()
    assert echoed == b"hi\r\n"
    assert lines == [b"line %d\r\n" % i for i in range(500)]
    assert big == b"x" * 100000 + b"\r\n"
    assert (bye, eof) == (b"BYE\r\n", b"")


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_server_closes_from_handle_write_mid_stream(backend: Backend) -> None:
    """The client reads to EOF: what the server sent before closing (5,000
    bytes in 1,000-byte sends, fewer bytes per send under partial sends)."""
    channels: dict = {}
    with backend.network():
        server = Listener(("127.0.0.1", 0), channels, Closer)
        where = server.socket.getsockname()
        with backend.serving(channels):
            client = socket.create_connection(where, timeout=5)
            total = 0
            while chunk := client.recv(4096):
                total += len(chunk)
            client.close()
        backend.run_until(lambda: len(channels) == 1, channels)
        server.close()
    assert 5000 <= total < 6000


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_poplib_session(backend: Backend) -> None:
    """``poplib.POP3`` against an async_chat POP3 server: welcome, USER/PASS,
    STAT, LIST, two RETRs (dot-unstuffed; one 30 KB), DELE, QUIT."""
    channels: dict = {}
    with backend.network():
        server = Listener(("127.0.0.1", 0), channels, POP3Channel)
        host, port = server.socket.getsockname()
        with backend.serving(channels):
            pop = poplib.POP3(host, port, timeout=5)
            welcome = pop.getwelcome()
            pop.user("u")
            pop.pass_("p")
            stat = pop.stat()
            listing = pop.list()
            first, second = pop.retr(1), pop.retr(2)
            pop.dele(1)
            bye = pop.quit()
        backend.run_until(lambda: len(channels) == 1, channels)
        server.close()
    assert welcome == b"+OK POP3 ready"
    assert stat == (2, sum(map(len, MAILS)))
    assert listing[1] == [b"1 %d" % len(MAILS[0]), b"2 %d" % len(MAILS[1])]
    assert first[1] == MAILS[0].split(b"\r\n")[:-1]
    assert second[1] == MAILS[1].split(b"\r\n")[:-1]
    assert bye == b"+OK bye"


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_http_client_reads_chunked_responses(backend: Backend) -> None:
    """``http.client`` on one keep-alive connection: three chunked responses
    (3 chunks, 200 chunks, none) with a trailer."""
    channels: dict = {}
    with backend.network():
        server = Listener(("127.0.0.1", 0), channels, ChunkedHTTP)
        host, port = server.socket.getsockname()
        with backend.serving(channels):
            conn = http.client.HTTPConnection(host, port, timeout=5)
            answers = []
            for n in (3, 200, 0):
                conn.request("GET", f"/{n}")
                response = conn.getresponse()
                answers.append((response.status, response.chunked, response.read()))
            conn.close()
        backend.run_until(lambda: len(channels) == 1, channels)
        server.close()
    assert answers == [(200, True, chunked_body(n)) for n in (3, 200, 0)]


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_sendfile_then_recv_into(backend: Backend) -> None:
    """``socket.sendfile`` of a 300,000-byte temp file, then ``recv_into``
    a small buffer to EOF."""
    channels: dict = {}
    data = hashlib.sha256(b"seed").digest() * 9375
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        f.seek(0)
        with backend.network():
            server = Listener(("127.0.0.1", 0), channels, DigestHandler)
            where = server.socket.getsockname()
            with backend.serving(channels):
                client = socket.create_connection(where, timeout=5)
                sent = client.sendfile(f)
                client.shutdown(socket.SHUT_WR)
                buf, got = bytearray(100), b""
                while n := client.recv_into(buf):
                    got += bytes(buf[:n])
                client.close()
            backend.run_until(lambda: len(channels) == 1, channels)
            server.close()
    assert sent == len(data)
    assert got == expected_digest(data)


def _nonblocking_client(where, wait) -> bytes:
    """A non-blocking client that waits with *wait(sock, "r"|"w")*: sends
    500,000 bytes, shuts down its side, reads the reply to EOF."""
    client = socket.create_connection(where, timeout=5)
    client.setblocking(False)
    view = memoryview(b"q" * 500000)
    while view:
        assert wait(client, "w")
        try:
            view = view[client.send(view):]
        except BlockingIOError:
            pass
    client.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        assert wait(client, "r"), "nothing to read within 5 s"
        try:
            chunk = client.recv(1000)
        except BlockingIOError:
            continue
        if not chunk:
            break
        got += chunk
    client.close()
    return got


def _selector_wait():
    sel = selectors.DefaultSelector()

    def wait(sock, mode):
        events = selectors.EVENT_READ if mode == "r" else selectors.EVENT_WRITE
        if sock in sel.get_map() or any(k.fileobj is sock for k in sel.get_map().values()):
            sel.modify(sock, events)
        else:
            sel.register(sock, events)
        return bool(sel.select(5))
    return wait


def _select_wait():
    def wait(sock, mode):
        r, w, _ = select.select([sock] if mode == "r" else [], [sock] if mode == "w" else [], [], 5)
        return bool(r or w)
    return wait


def _poll_wait():
    def wait(sock, mode):
        p = select.poll()
        p.register(sock, select.POLLIN if mode == "r" else select.POLLOUT)
        return bool(p.poll(5000))
    return wait


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
@pytest.mark.parametrize("waiter", [_selector_wait, _select_wait, _poll_wait],
                         ids=["selectors", "select", "poll"])
def test_nonblocking_client_waiting_in_its_own_poller(backend: Backend, waiter) -> None:
    """The client's own wait (a selector, ``select.select``, ``select.poll``)
    is a blocking call: on the fake network it runs the server's
    dispatchers, as the server thread does on real loopback (before the
    fix, the wait ran out its 5 virtual seconds with the server unserved)."""
    channels: dict = {}
    with backend.network():
        server = Listener(("127.0.0.1", 0), channels, DigestHandler)
        where = server.socket.getsockname()
        with backend.serving(channels):
            got = _nonblocking_client(where, waiter())
        backend.run_until(lambda: len(channels) == 1, channels)
        server.close()
    assert got == expected_digest(b"q" * 500000)
    if backend.fake:
        assert backend.elapsed() < 5.0
