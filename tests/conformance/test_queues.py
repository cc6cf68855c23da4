"""Buffer sizes and queue limits a program can see (Linux 6.x, loopback).

Pinned facts (measured on this kernel; see ``backends.py`` for the others):

* TCP: a new socket reads SO_SNDBUF 16,384 and SO_RCVBUF 131,072
  (tcp_wmem[1], tcp_rmem[1]); once connected, the kernel autotunes SO_SNDBUF
  (on loopback it reads ~3.9 MB, at most tcp_wmem[2] = 4 MB) and a
  non-blocking send of 200,000 bytes is taken whole. A program that sets
  SO_SNDBUF keeps its size (2 * v).
* AF_UNIX stream: SO_SNDBUF 212,992; a 200,000-byte send is taken whole.
* UDP: SO_RCVBUF 212,992. The receive queue is charged each datagram's
  kernel memory (skb truesize: 832 bytes up to 197 bytes of payload, more
  for larger ones), and a datagram is dropped when it would not fit: 256
  small datagrams wait, 92 of 1,000 bytes, 3 of 65,507; with SO_RCVBUF 4096
  (8,192) 9 small ones.
* AF_UNIX datagram: flow control instead of drops. A receiver whose queue
  holds more than net.unix.max_dgram_qlen (10) datagrams makes further
  senders wait: a non-blocking sender gets BlockingIOError(EAGAIN) on the
  12th; a connected sender is not writable then (an unconnected one still
  is), and becomes writable when one datagram is read. A socket the
  receiver is connected to is exempt from that limit; its SO_SNDBUF (memory
  of its datagrams not yet read) stops it after 278 small ones. Large
  datagrams hit SO_SNDBUF first (4 of 50,000 bytes).
"""

from __future__ import annotations

import errno
import socket

import pytest

from .harness import expect_error

S = socket.SOL_SOCKET
AF_UNIX, SOCK_DGRAM = socket.AF_UNIX, socket.SOCK_DGRAM


def test_tcp_buffer_sizes_before_and_after_connect(backend):
    fresh = backend.socket()
    assert fresh.getsockopt(S, socket.SO_SNDBUF) == 16384
    assert fresh.getsockopt(S, socket.SO_RCVBUF) == 131072
    cli, srv = backend.tcp_pair()
    for end in (cli, srv):
        assert 2_000_000 < end.getsockopt(S, socket.SO_SNDBUF) <= 4 * 1024 * 1024
        assert end.getsockopt(S, socket.SO_RCVBUF) == 131072


def test_tcp_set_sndbuf_is_kept_after_connect(backend):
    cli, srv = backend.tcp_pair(sockopts=[(S, socket.SO_SNDBUF, 8192)])
    assert cli.getsockopt(S, socket.SO_SNDBUF) == 16384
    assert srv.getsockopt(S, socket.SO_SNDBUF) == 16384  # inherited from the listener


@pytest.mark.parametrize("family", [socket.AF_INET, AF_UNIX], ids=["tcp", "unix"])
def test_large_nonblocking_send_is_taken_whole(backend, family):
    cli, srv = backend.tcp_pair(family)
    assert cli.send(b"x" * 200_000) == 200_000


def test_unix_and_udp_default_buffers(backend):
    for kind in ((AF_UNIX, socket.SOCK_STREAM), (AF_UNIX, SOCK_DGRAM), (socket.AF_INET, SOCK_DGRAM)):
        sock = backend.socket(*kind)
        assert sock.getsockopt(S, socket.SO_SNDBUF) == 212992, kind
        assert sock.getsockopt(S, socket.SO_RCVBUF) == 212992, kind


def _udp_queued(backend, size, count, rcvbuf=None):
    rcv = backend.udp_socket()
    if rcvbuf is not None:
        rcv.setsockopt(S, socket.SO_RCVBUF, rcvbuf)
    snd = backend.udp_socket()
    for _ in range(count):
        assert snd.sendto(b"d" * size, rcv.getsockname()) == size  # never an error
    backend.settle()
    got = 0
    while True:
        try:
            data = rcv.recv(70000)
        except BlockingIOError:
            return got
        assert len(data) == size
        got += 1


@pytest.mark.parametrize("size,sent,queued", [
    (0, 300, 256), (100, 300, 256), (197, 300, 256), (198, 300, 166), (1000, 200, 92),
    (1400, 200, 92), (8000, 50, 12), (65507, 10, 3)])
def test_udp_receive_queue_limit(backend, size, sent, queued):
    assert _udp_queued(backend, size, sent) == queued


def test_udp_receive_queue_limit_with_small_rcvbuf(backend):
    assert _udp_queued(backend, 10, 50, rcvbuf=4096) == 9
    assert _udp_queued(backend, 1000, 50, rcvbuf=4096) == 3


def _unix_dgram_pair(backend, connect_back=False):
    rcv = backend.socket(AF_UNIX, SOCK_DGRAM)
    rcv.bind(backend.unix_path("rcv"))
    snd = backend.socket(AF_UNIX, SOCK_DGRAM)
    snd.bind(backend.unix_path("snd"))
    snd.connect(rcv.getsockname())
    if connect_back:
        rcv.connect(snd.getsockname())
    snd.setblocking(False)
    rcv.setblocking(False)
    return snd, rcv


def _fill(sock, data):
    n = 0
    while True:
        try:
            sock.send(data)
        except BlockingIOError:
            return n
        n += 1


def test_unix_dgram_flow_control(backend):
    snd, rcv = _unix_dgram_pair(backend)
    assert _fill(snd, b"m") == 11
    assert backend.readiness(snd) == ""  # connected: not writable while the peer is full
    other = backend.socket(AF_UNIX, SOCK_DGRAM)
    other.setblocking(False)
    assert backend.readiness(other) == "w"  # unconnected: writable...
    expect_error(BlockingIOError, errno.EAGAIN, other.sendto, b"o", rcv.getsockname())  # ...yet EAGAIN
    assert rcv.recv(10) == b"m"
    backend.settle()
    assert backend.readiness(snd) == "w"
    snd.send(b"n")
    expect_error(BlockingIOError, errno.EAGAIN, snd.send, b"n")


def test_unix_dgram_blocking_sender_waits(backend):
    snd, rcv = _unix_dgram_pair(backend)
    assert _fill(snd, b"m") == 11
    snd.settimeout(0.05)
    with pytest.raises(TimeoutError):
        snd.send(b"late")


def test_unix_dgram_connected_back_is_limited_by_sndbuf(backend):
    snd, rcv = _unix_dgram_pair(backend, connect_back=True)
    assert _fill(snd, b"m") == 278


def test_unix_dgram_large_datagrams_hit_sndbuf(backend):
    snd, rcv = _unix_dgram_pair(backend)
    assert _fill(snd, b"L" * 50_000) == 4
    assert rcv.recv(60_000) == b"L" * 50_000
    backend.settle()
    assert snd.send(b"L" * 50_000) == 50_000
