"""Datagram sockets (UDP and Unix datagram) as a sans-I/O state machine.

A :class:`DatagramQueue` is the protocol state of one datagram socket (only
datagram sockets have one): its receive queue, charged in kernel memory
(skb truesize, :func:`dgram_cost`) as Linux charges it, and for a Unix
datagram socket the memory its own sent datagrams still hold in other
sockets' queues (``wmem``, against its SO_SNDBUF: Unix datagrams are
flow-controlled by the sender, never dropped). A UDP queue drops a datagram
that would take it past SO_RCVBUF.

The queue never calls its socket: the facade (:class:`~simnet.fakesock.FakeSocket`)
filters by address, offers datagrams, takes them, and asks whether a sender
must wait; routing (links, partitions, faults, ICMP errors) is the network's.
"""

from __future__ import annotations

import socket as _socket
from collections import deque
from typing import Any

AF_INET6, AF_UNIX = _socket.AF_INET6, _socket.AF_UNIX

#: Largest UDP payload over IPv4 / IPv6.
MAX_UDP = {_socket.AF_INET: 65507, AF_INET6: 65527}
#: net.unix.max_dgram_qlen: a Unix datagram socket's queue is full beyond it
#: (11 datagrams wait; the 12th sender gets EAGAIN, or waits).
UNIX_DGRAM_QLEN = 10

# What one datagram costs a queue (skb truesize), measured on Linux 6.x
# loopback: (largest payload, cost) steps, then payload + 832 (UDP). A UDP
# receive queue takes a datagram while the charged total stays <= SO_RCVBUF
# (212,992: 256 small datagrams). Unix datagrams are charged to the sender's
# SO_SNDBUF until read (278 small ones for a socketpair).
_UDP4_COST = ((197, 832), (645, 1280), (1669, 2304), (3717, 4352), (7813, 8448), (16004, 16640))
_UDP6_COST = ((184, 832), (632, 1280), (1656, 2304), (3704, 4352), (7800, 8448), (15991, 16640))
_UNIX_COST = ((192, 768), (704, 1280), (1728, 2304), (3776, 4352), (7872, 8448), (16064, 16640))


def dgram_cost(family: int, n: int) -> int:
    """The kernel memory (skb truesize) a datagram of *n* bytes is charged."""
    if family == AF_UNIX:
        # unix_dgram_sendmsg: past SKB_MAX_ALLOC (16,064) the tail goes to pages
        paged = 0 if n <= 16064 else min(-(-(n - 16064) // 4096) * 4096, 17 * 4096)
        head = 512
        while head < n - paged + 320:
            head *= 2
        return head + 256 + paged
    for limit, cost in (_UDP6_COST if family == AF_INET6 else _UDP4_COST):
        if n <= limit:
            return cost
    return n + 832


class DatagramQueue:
    """The receive queue of one datagram socket, and (Unix) what its sent
    datagrams are charged. ``items`` holds ``(payload, source address,
    sender's queue or None)``; ``charged`` is the queue's truesize total;
    ``wmem`` the truesize of this socket's datagrams waiting in queues."""

    __slots__ = ("family", "items", "charged", "wmem")

    def __init__(self, family: int) -> None:
        self.family = family
        self.items: deque[tuple[bytes, Any, DatagramQueue | None]] = deque()
        self.charged = 0
        self.wmem = 0

    def __repr__(self) -> str:
        return f"<DatagramQueue queued={len(self.items)} charged={self.charged} wmem={self.wmem}>"

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, data: bytes, src: Any, rcvbuf: int, sender: DatagramQueue | None = None) -> bool:
        """A datagram arrives; False if a full UDP queue drops it (a Unix
        queue takes it: its sender waited for room before sending)."""
        cost = dgram_cost(self.family, len(data))
        if self.family == AF_UNIX:
            if sender is not None:
                sender.wmem += cost
        elif self.charged + cost > rcvbuf:
            return False  # receive queue full (skb truesize against SO_RCVBUF): dropped
        self.items.append((data, src, sender))
        self.charged += cost
        return True

    def take(self, peek: bool = False) -> tuple[bytes, Any]:
        """The first datagram and its source (left queued when *peek*);
        reading it gives its sender the memory back."""
        if peek:
            data, src, _ = self.items[0]
            return data, src
        data, src, sender = self.items.popleft()
        cost = dgram_cost(self.family, len(data))
        self.charged -= cost
        if sender is not None:
            sender.wmem -= cost
        return data, src

    def drop_all(self) -> None:
        """Free every queued datagram (their senders get the memory back)."""
        for data, _, sender in self.items:
            if sender is not None:
                sender.wmem -= dgram_cost(self.family, len(data))
        self.items.clear()
        self.charged = 0

    def over_qlen(self) -> bool:
        """A Unix datagram queue past ``net.unix.max_dgram_qlen``."""
        return len(self.items) > UNIX_DGRAM_QLEN

    def send_blocked(self, sndbuf: int, dest: DatagramQueue, dest_takes_ours: bool) -> bool:
        """Would a Unix datagram from this socket to the socket of *dest*
        wait? Yes when SO_SNDBUF is used up, or the receiver's queue is full
        (unless *dest_takes_ours*: it is this socket, or connected back to it)."""
        return self.wmem >= sndbuf or (not dest_takes_ours and dest.over_qlen())

    def poll_writable(self, sndbuf: int) -> bool:
        """unix_dgram_poll: writable while a quarter of SO_SNDBUF is free."""
        return self.wmem * 4 <= sndbuf
