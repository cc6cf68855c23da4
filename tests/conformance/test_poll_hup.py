"""What ``poll()`` reports after shutdowns and closes (Linux 6.x, loopback).

Pinned facts (``poll`` asked for IN|PRI|OUT; ``select`` readability follows
IN/HUP/ERR):

=============================  ================  ================
situation                      TCP               AF_UNIX stream
=============================  ================  ================
peer closed                    IN|OUT            IN|OUT|HUP
peer SHUT_WR                   IN|OUT            IN|OUT
peer SHUT_RD                   OUT               OUT
peer SHUT_RDWR                 IN|OUT            IN|OUT|HUP
own SHUT_WR                    OUT               OUT
own SHUT_RD                    IN|OUT            IN|OUT
own SHUT_WR + peer SHUT_WR     IN|OUT|HUP        IN|OUT|HUP
own SHUT_RD + peer SHUT_RD     IN|OUT            IN|OUT|HUP
peer closed, our data unread   IN|OUT|ERR|HUP    IN|OUT|ERR|HUP
=============================  ================  ================

AF_UNIX counts the peer's shutdowns as its own (unix_shutdown mirrors them),
so a Unix stream whose peer closed reports HUP, and an asyncore channel that
only writes gets ``handle_close`` from ``poll2`` instead of ``handle_write``
forever.
"""

from __future__ import annotations

import select
import socket

import pytest

RD, WR, RDWR = socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR

CASES = {
    "peer closed": (lambda a, b: b.close(), "IN|OUT", "IN|OUT|HUP"),
    "peer SHUT_WR": (lambda a, b: b.shutdown(WR), "IN|OUT", "IN|OUT"),
    "peer SHUT_RD": (lambda a, b: b.shutdown(RD), "OUT", "OUT"),
    "peer SHUT_RDWR": (lambda a, b: b.shutdown(RDWR), "IN|OUT", "IN|OUT|HUP"),
    "own SHUT_WR": (lambda a, b: a.shutdown(WR), "OUT", "OUT"),
    "own SHUT_RD": (lambda a, b: a.shutdown(RD), "IN|OUT", "IN|OUT"),
    "both SHUT_WR": (lambda a, b: (a.shutdown(WR), b.shutdown(WR)), "IN|OUT|HUP", "IN|OUT|HUP"),
    "both SHUT_RD": (lambda a, b: (a.shutdown(RD), b.shutdown(RD)), "IN|OUT", "IN|OUT|HUP"),
    "peer closed, ours unread": (lambda a, b: (a.send(b"x"), b.close()),
                                 "IN|OUT|ERR|HUP", "IN|OUT|ERR|HUP"),
}


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_UNIX], ids=["tcp", "unix"])
@pytest.mark.parametrize("case", list(CASES))
def test_poll_flags_after_shutdown_and_close(backend, family, case):
    act, tcp_flags, unix_flags = CASES[case]
    a, b = backend.tcp_pair(family)
    act(a, b)
    backend.settle()
    assert backend.poll_flags(a) == (unix_flags if family == socket.AF_UNIX else tcp_flags)


def test_unix_write_only_channel_gets_handle_close(backend):
    """poll2's readwrite(): POLLHUP -> handle_close for a channel that only writes."""
    a, b = backend.tcp_pair(socket.AF_UNIX)
    b.close()
    backend.settle()
    pollster = backend.make_poll()
    pollster.register(a, select.POLLOUT)  # asks for writability only
    (fd, flags), = pollster.poll(0)
    assert fd == a.fileno() and flags == select.POLLOUT | select.POLLHUP  # HUP always reported
