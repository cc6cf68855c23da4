"""Stream connections (TCP and Unix stream) as sans-I/O state machines.

Two pieces of protocol state, each made only for the sockets that play the
role:

* :class:`StreamEnd` -- one end of a connection: the receive buffer and the
  send queue, FIN, RST, half-close, the pending error (SO_ERROR) and the
  readiness that follows from them. ``send`` appends to the sender's queue
  (bounded by SO_SNDBUF); the queue drains into the peer's receive buffer
  (bounded by SO_RCVBUF) after the link's latency, so backpressure makes
  partial sends on its own. A FIN follows the last byte; a RST (``close``
  with unread data, or SO_LINGER 0) discards everything and reaches the peer
  as ECONNRESET.
* :class:`Listener` -- a listening socket's backlog and accept queue (the
  ends of connections the handshake completed and nobody accepted yet).

Neither ever calls the socket facade (:class:`~simnet.fakesock.FakeSocket`):
the facade asks questions (``readable()``, ``read_result()``,
``send_result()``, ``poll_mask()``), takes or queues bytes, and turns the
errno codes it gets back into exceptions and waits. An end does use its
network as the medium: segments travel as scheduled events
(``net.schedule``), partitions delay them, and ``net.activity`` counts every
change so that the scheduler can tell progress.
"""

from __future__ import annotations

import errno
from collections import deque
from typing import Any

#: Linux: a connect whose SYNs go unanswered fails after 6 retries (~127 s).
SYN_RETRIES = (1, 2, 4, 8, 16, 32, 64)
#: How long an actively closed connection's local address stays in TIME_WAIT.
TIME_WAIT = 60.0

#: Linux defaults (measured on 6.x): a TCP socket starts with tcp_wmem[1] /
#: tcp_rmem[1]; once connected, the kernel autotunes SO_SNDBUF (on loopback,
#: MSS 65483, it reads 3,939,840 and a non-blocking send of ~3.9 MB is taken
#: whole).
TCP_SNDBUF, TCP_RCVBUF = 16384, 131072
TCP_SNDBUF_CONNECTED = 3939840

_POLLIN, _POLLOUT, _POLLERR, _POLLHUP = 0x001, 0x004, 0x008, 0x010


class StreamEnd:
    """One end of a simulated TCP (or Unix stream) connection.

    The attributes are read directly by the hot paths (the fused poll pass,
    ``FakeNetwork.select``, the facade's send/recv fast paths): ``rbuf``
    (received, unread), ``sq`` and ``scap`` (send queue and SO_SNDBUF),
    ``rcap`` (SO_RCVBUF), ``fin_rcvd``, ``rd_shut``, ``wr_shut``,
    ``fin_sent``, ``reset``, ``err`` (SO_ERROR), ``detached`` (the socket is
    closed; the end finishes sending). Readiness is kept up to date where the
    state changes, in two flags: ``r_event`` (FIN received, shut for reading,
    reset, or an error: readable even with nothing buffered) and ``w_event``
    (shut for writing, reset, or an error: writable even with a full send
    queue); so readable is ``rbuf or r_event`` and writable is
    ``w_event or len(sq) < scap``. Whatever changes ``fin_rcvd``,
    ``rd_shut``, ``wr_shut``, ``reset`` or ``err`` calls :meth:`_changed`.
    ``sock`` is the socket that owns the
    end (None while it waits in an accept queue, and once closed), kept for
    the network's bookkeeping (fault reports name its fd); the end itself
    never calls it."""

    __slots__ = ("net", "sock", "peer", "conn_id", "laddr", "raddr", "rbuf", "rcap",
                 "sq", "scap", "inflight", "fin_rcvd", "rd_shut", "wr_shut", "fin_sent",
                 "err", "reset", "detached", "link_free", "lat", "bw", "bytes_in", "bytes_out",
                 "direct", "jitter", "sent", "side", "arrival", "unix", "r_event", "w_event")

    def __init__(self, net: Any, sock: Any, laddr: Any, raddr: Any, conn_id: int,
                 rcap: int, scap: int, lat: float, bw: float | None, unix: bool = False) -> None:
        self.net = net
        self.sock = sock
        self.peer: StreamEnd | None = None
        self.conn_id = conn_id
        self.laddr = laddr
        self.raddr = raddr
        self.rbuf = bytearray()
        self.rcap = rcap
        self.sq = bytearray()
        self.scap = scap
        self.inflight = 0
        self.fin_rcvd = False
        self.rd_shut = False
        self.wr_shut = False
        self.fin_sent = False
        self.err = 0
        self.reset = False
        self.detached = False  # the socket is closed; the end finishes sending
        self.link_free = 0.0
        self.lat = lat
        self.bw = bw
        self.jitter = 0.0
        self.direct = lat == 0 and bw is None and not net._timed_links  # delivery within send()
        self.sent = 0  # bytes taken by send() on this end
        self.side = "client"
        self.arrival = 0.0  # when the last segment sent reaches the peer
        self.bytes_in = 0
        self.bytes_out = 0
        self.unix = unix  # a Unix stream (its errors and poll bits differ from TCP's)
        self.r_event = False  # fin_rcvd or rd_shut or reset or err (see the class doc)
        self.w_event = False  # wr_shut or reset or err

    def _changed(self) -> None:
        """Recompute the readiness flags after a state change."""
        self.r_event = self.fin_rcvd or self.rd_shut or self.reset or bool(self.err)
        self.w_event = self.wr_shut or self.reset or bool(self.err)

    def __repr__(self) -> str:
        return f"<StreamEnd {self.describe()}>"

    # -- questions the facade asks ---------------------------------------------
    def readable(self) -> bool:
        """In select()'s readable list (data, EOF, shut for reading, reset, error)?"""
        return bool(self.rbuf) or self.r_event

    def writable(self) -> bool:
        """In select()'s writable list (room to queue, shut, reset, error)?"""
        return self.w_event or len(self.sq) < self.scap

    def poll_mask(self) -> int:
        """What Linux's ``tcp_poll`` (``unix_poll`` for a Unix stream) says."""
        if not (self.r_event or self.w_event) and not (
                self.unix and (self.peer is None or self.peer.detached)):
            # the usual case, nothing shut, reset or failed: data and room only
            return (_POLLIN if self.rbuf else 0) | (_POLLOUT if len(self.sq) < self.scap else 0)
        if self.reset:
            mask = _POLLIN | _POLLOUT | _POLLHUP
            if self.err:
                mask |= _POLLERR
            return mask
        mask = 0
        if self.rbuf or self.fin_rcvd or self.rd_shut:
            mask |= _POLLIN
        if self.wr_shut or self.scap - len(self.sq) > 0:
            mask |= _POLLOUT
        if (self.fin_rcvd or self.rd_shut) and self.wr_shut:
            mask |= _POLLHUP
        elif self.unix:
            # Linux unix_poll: HUP once both directions are shut, counting the
            # peer's shutdowns (its SHUT_RD shuts our sending; its close, both)
            peer = self.peer
            gone = peer is None or peer.detached
            if (self.fin_rcvd or self.rd_shut or gone) and (self.wr_shut or gone or peer.rd_shut):
                mask |= _POLLHUP | _POLLIN
        if self.err:
            mask |= _POLLERR
        return mask

    def take_error(self) -> int:
        """SO_ERROR: the pending error, cleared by reading it (0: none)."""
        code = self.err
        if code:
            self.err = 0
            self._changed()
        return code

    def read_result(self) -> int:
        """With nothing buffered: 0 for end of file, an errno to raise (the
        pending error, consumed), or -1 when a read would wait."""
        if self.fin_rcvd and not (self.err and self.unix):
            return 0  # (Unix reports a pending error before the EOF)
        if self.err:
            return self.take_error()
        if self.rd_shut or self.reset:
            return 0
        return -1

    def send_result(self) -> int:
        """Can a send queue bytes now? 0: yes; an errno to raise (a pending
        TCP error, consumed; EPIPE); -1: the send queue is full (wait)."""
        if self.err and not self.unix:  # (Unix send never reports it: EPIPE below)
            return self.take_error()
        if self.wr_shut or self.reset:
            return errno.EPIPE
        if self.unix:
            peer = self.peer
            if peer is None or peer.rd_shut or peer.detached:
                # a Unix peer that closed or shut reading: EPIPE at once
                return errno.EPIPE
        return 0 if self.scap - len(self.sq) > 0 else -1

    def over(self) -> bool:
        """The connection has ended: reset, or both directions closed."""
        return self.reset or (self.fin_rcvd and self.fin_sent)

    # -- moving bytes ----------------------------------------------------------
    def take(self, bufsize: int, peek: bool = False) -> bytes:
        """Up to *bufsize* received bytes (left in place when *peek*); taking
        them opens the window, so the peer sends what it has queued."""
        data = bytes(self.rbuf[:bufsize])
        if not peek:
            del self.rbuf[:bufsize]
            peer = self.peer
            if peer is not None:
                peer.transmit()
        return data

    def write(self, view: Any, n: int) -> None:
        """Queue the first *n* bytes of *view* (the caller checked the room)."""
        self.sq += view[:n]
        self.sent += n
        self.transmit()

    def shutdown(self, rd: bool, wr: bool) -> None:
        """``shutdown()``: stop reading and/or writing (a FIN follows the queue)."""
        if rd:
            self.rd_shut = True
            self._changed()
        if wr and not self.wr_shut:
            self.wr_shut = True
            self._changed()
            self.transmit()

    def transmit(self) -> None:
        """Move queued bytes (then the FIN) toward the peer as its window allows."""
        peer = self.peer
        if peer is None or self.reset or (not self.sq and (self.fin_sent or not self.wr_shut)):
            return
        room = peer.rcap - len(peer.rbuf) - self.inflight
        n = min(len(self.sq), room)
        if n > 0:
            chunk = bytes(self.sq[:n])
            del self.sq[:n]
            self.bytes_out += n
            self._ship(self._deliver, chunk, n)
        if not self.sq and self.wr_shut and not self.fin_sent:
            self.fin_sent = True
            self._ship(self._deliver_fin, None, 0)

    def _ship(self, fn: Any, chunk: Any, n: int) -> None:
        net = self.net
        if self.direct:
            fn(chunk)
            return
        start = max(net._now, self.link_free)
        done = start + (n / self.bw if self.bw else 0.0)
        self.link_free = done
        arrive = done + self.lat
        if self.jitter:
            arrive += net.rng.random() * self.jitter
        peer = self.peer
        if net._partitions and peer is not None:
            arrive = net._partition_delay(self.laddr, peer.laddr, arrive)
            if arrive is None:
                return  # cut off for good: the segment never arrives
        # segments of one connection arrive in order
        if arrive < self.arrival:
            arrive = self.arrival
        self.arrival = arrive
        self.inflight += n
        net.schedule(arrive - net._now, fn, chunk)

    def _deliver(self, chunk: bytes) -> None:
        if not self.direct:
            self.inflight -= len(chunk)
        peer = self.peer
        if peer is None or self.reset:
            return
        if peer.detached or (peer.rd_shut and peer.wr_shut):
            # data for a closed socket, or one shut both ways: Linux answers with
            # a RST (and a socket still open reports the reset itself)
            if not peer.detached:
                peer.err = errno.ECONNRESET
                peer._changed()
            peer.send_rst()
            return
        peer.rbuf += chunk
        peer.bytes_in += len(chunk)
        self.net.activity += 1

    def _deliver_fin(self, _: Any) -> None:
        peer = self.peer
        if peer is None or self.reset:
            return
        peer.fin_rcvd = True
        peer._changed()
        self.net.activity += 1
        if peer.detached and peer.fin_sent:
            peer.finish()

    # -- teardown --------------------------------------------------------------
    def close(self) -> None:
        """The socket closed without aborting: shut both ways (a FIN follows
        whatever is queued); the end lives on until the connection is over."""
        self.rd_shut = True
        self._changed()
        if not self.wr_shut:
            self.wr_shut = True
            self._changed()
            self.transmit()
        if self.fin_sent and self.fin_rcvd:
            self.net._forget_end(self)

    def send_rst(self) -> None:
        """Abort: discard both queues and reset the peer (ECONNRESET)."""
        peer = self.peer
        self.sq.clear()
        self.reset = True
        self._changed()
        self.peer = None
        if peer is not None and not peer.reset:
            if self.direct:
                peer.receive_rst()
            else:
                # after whatever is still in flight on this connection
                when = max(self.net._now + self.lat, self.arrival)
                self.net.schedule(when - self.net._now, peer.receive_rst)
        self.finish()

    def receive_rst(self) -> None:
        if self.reset:
            return
        self.reset = True
        self.peer = None
        self.sq.clear()
        # in CLOSE_WAIT (the peer's FIN already seen) Linux reports EPIPE;
        # a Unix peer closing with our data unread is always ECONNRESET
        # (an end not held by an open socket counts as TCP here)
        unix = self.unix and self.sock is not None
        if self.fin_rcvd and self.fin_sent and not unix:
            pass  # both FINs exchanged: the connection is closed already, nothing to report
        else:
            self.err = errno.EPIPE if self.fin_rcvd and not unix else errno.ECONNRESET
        self._changed()
        self.net.activity += 1
        if self.detached:
            self.finish()

    def finish(self) -> None:
        """The connection is over for this end: release what it holds."""
        if self.detached:
            self.net._forget_end(self)

    def describe(self) -> str:
        state = "RESET" if self.reset else (
            "CLOSED" if self.fin_rcvd and self.wr_shut else
            "FIN_RCVD" if self.fin_rcvd else "WR_SHUT" if self.wr_shut else "ESTABLISHED")
        return (f"conn#{self.conn_id} {state} unread={len(self.rbuf)} unsent={len(self.sq)} "
                f"in={self.bytes_in} out={self.bytes_out}")


class Listener:
    """A listening socket's protocol state: the backlog and the accept queue
    of established connections (their server ends) nobody accepted yet.
    Made by the first ``listen()``; only listeners have one."""

    __slots__ = ("backlog", "queue")

    def __init__(self, backlog: int) -> None:
        self.backlog = backlog
        self.queue: deque[StreamEnd] = deque()

    def __repr__(self) -> str:
        return f"<Listener backlog={self.backlog} queued={len(self.queue)}>"

    def full(self) -> bool:
        """Linux keeps backlog + 1 connections in the accept queue; a SYN
        beyond that is dropped (the client retries)."""
        return len(self.queue) > self.backlog

    def push(self, end: StreamEnd) -> None:
        """The handshake completed: *end* waits to be accepted."""
        self.queue.append(end)

    def pop(self) -> StreamEnd:
        return self.queue.popleft()

    def abort(self) -> None:
        """Stop listening: the connections nobody accepted are reset."""
        for pending in list(self.queue):
            pending.detached = True
            pending.send_rst()
        self.queue.clear()
