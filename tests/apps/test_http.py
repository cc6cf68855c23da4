"""The keep-alive HTTP server (``httpd.py``) driven by ``http.client`` and ``urllib.request``."""

from __future__ import annotations

import http.client
import urllib.request

import pytest

from .conftest import VARIANTS, Backend
from .httpd import BIG, HELLO, HTTPServer

POSTED = bytes(range(256)) * 200  # 51,200 bytes


def keep_alive_session(backend: Backend) -> None:
    """Four requests on one ``http.client`` connection: three kept alive,
    the last answered with ``Connection: close`` and a 200 kB body."""
    channels: dict = {}
    with backend.network():
        server = HTTPServer(("127.0.0.1", 0), channels)
        host, port = server.address[:2]
        with backend.serving(channels):
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/hello")
            first = conn.getresponse()
            assert (first.status, first.read()) == (200, HELLO)
            sock = conn.sock
            conn.request("POST", "/echo", body=POSTED)
            second = conn.getresponse()
            assert (second.status, second.read()) == (200, POSTED[::-1])
            conn.request("GET", "/big")
            third = conn.getresponse()
            assert third.getheader("Content-Length") == str(len(BIG))
            assert third.read() == BIG
            assert conn.sock is sock, "the connection was not kept alive"
            conn.request("GET", "/last")
            last = conn.getresponse()
            # http.client closes its socket as soon as it sees Connection: close;
            # the body (all but the first few kB still in the socket) is read through
            # the response's file, after that close
            assert last.will_close and conn.sock is None
            assert last.read() == BIG
            last.close()
            conn.close()
        backend.run_until(lambda: len(channels) == 1, channels)
        server.close()
        backend.assert_the_mix_acted()
        assert [(n, m, p) for n, m, p, _ in server.log] == [
            (0, "GET", "/hello"), (0, "POST", "/echo"), (0, "GET", "/big"), (0, "GET", "/last")]
        assert server.log[1][3] == len(POSTED)


def urllib_session(backend: Backend) -> None:
    """``urllib.request.urlopen`` closes its socket right after getresponse()
    and then reads the body through the response."""
    channels: dict = {}
    with backend.network():
        server = HTTPServer(("127.0.0.1", 0), channels)
        host, port = server.address[:2]
        base = f"http://{host}:{port}"
        with backend.serving(channels):
            with urllib.request.urlopen(base + "/big", timeout=10) as response:
                assert response.status == 200
                assert response.read() == BIG
            with urllib.request.urlopen(base + "/echo", data=b"dlrow ,olleh", timeout=10) as response:
                assert response.read() == b"hello, world"
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(base + "/nothing", timeout=10)
            assert missing.value.code == 404
            assert missing.value.read() == b"no such page: /nothing\n"
            missing.value.close()
        backend.run_until(lambda: len(channels) == 1, channels)
        server.close()
        backend.assert_the_mix_acted()
        # urllib sends Connection: close: one connection per request
        assert [(n, m, p) for n, m, p, _ in server.log] == [
            (0, "GET", "/big"), (1, "POST", "/echo"), (2, "GET", "/nothing")]


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_http_client_keep_alive_and_connection_close(backend: Backend) -> None:
    keep_alive_session(backend)


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_urllib_request_reads_after_closing_the_socket(backend: Backend) -> None:
    urllib_session(backend)
