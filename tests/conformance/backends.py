"""Backends for the conformance suite: where the sockets under test come from.

A *backend* hands the tests sockets and a few ready-made situations (a
listener, a connected TCP pair, an address nobody listens on) and knows how to
let in-flight packets arrive (``settle``) and how to ask for readiness
(``readiness``/``select``). The tests never touch the ``socket`` constructor
or ``select.select`` directly, so the same tests run against:

* ``RealBackend`` -- kernel sockets on loopback (127.0.0.1, ::1, AF_UNIX paths
  in a private temporary directory);
* a future ``FakeBackend`` -- sockets of ``simnet.fakesock.FakeNetwork(seed=...)``:
  ``socket()`` is ``net.socket(family, type, proto)``, ``settle()`` delivers
  what is in flight (see "Settling" below), ``select()`` is ``net.select``. Add it to
  ``BACKENDS`` at the bottom of this file and every test runs on it too.

Interface (``Backend``)
-----------------------
``socket(family, type, proto)``   a new socket, closed by ``close_all``
``track(obj)``                    register a socket made elsewhere (``accept()``)
``listener(family, backlog, ...)``  listening TCP/Unix socket on loopback
``tcp_pair(family, ...)``         ``(client, server)``: connected stream pair,
                                  non-blocking unless ``blocking=True``;
                                  TCP_NODELAY on both ends (see below)
``udp_socket(family, ...)``       UDP socket bound to an ephemeral loopback port
``refused_addr(family, type)``    an address where nobody listens (reserved for
                                  the backend's lifetime, so no race with
                                  other processes)
``unix_path(name)``               a fresh AF_UNIX path
``settle()``                      deliver everything in flight
``readiness(sock)``               ``select`` with zero timeout, as a string of
                                  ``"r"``, ``"w"``, ``"x"`` (``""``: nothing)
``close_all()``                   close every socket the backend handed out

Settling on real loopback
-------------------------
Verified on this kernel (6.x, 2 CPUs, also with both CPUs busy): with
TCP_NODELAY set, loopback delivery is *synchronous*. When ``send``,
``close``, ``shutdown`` or a non-blocking ``connect`` returns, the peer's
kernel state already reflects it (data queued, FIN seen, RST processed,
three-way handshake finished): the loopback driver hands the packet to the
receive path in softirq context on the same CPU before the system call
returns. Checked with 5000 pairs x 10 random exchanges plus a FIN or RST
each (every recv right after the send found all the data, every EOF/RST was
already visible), and with 5000 Hypothesis op sequences each run twice
(identical outcomes; see test_ops.py).
Without TCP_NODELAY this is *false*: Nagle holds a small segment while an
earlier small one is unacknowledged and the peer delays its ACK (~40 ms), so
a peer ``recv`` right after ``send`` often raised EAGAIN or returned part of
the data. Hence ``tcp_pair`` sets TCP_NODELAY and ``RealBackend.settle()``
does nothing. Tests still call ``settle()`` wherever a simulated network would
need to move packets, and assert readiness only after it.

What ``settle()`` must mean on a simulated network: deliver everything that
is in flight *now* (and what that triggers: the ACK to a SYN, the RST that
answers data sent to a closed socket, ICMP port-unreachable), but do not
advance the clock to fire retransmission or keep-alive timers. On Linux a
connect whose SYN was dropped by a full backlog is retried after 1 s; the
backlog tests rely on it still being in progress after ``settle()``.

Verified Linux facts (Python 3.11, Linux 6.x, loopback)
--------------------------------------------------------
Notation: ``Exc(ERRNO)`` = that exact exception class with that errno;
``OSError(X)`` = plain OSError (no subclass exists for X). rw = select()
readable/writable; "x" (exceptional) was never reported in any state below.

TCP connect
  non-blocking connect_ex to a listener ......... EINPROGRESS (never 0, even on
                                                  loopback); handshake is already
                                                  done on return: writable, SO_ERROR 0
  connect_ex again after that ................... 0 (!), and EISCONN after that
  connect() on connected socket ................. OSError(EISCONN)
  non-blocking connect_ex to a closed port ...... EINPROGRESS; then rw = "rw",
                                                  SO_ERROR ECONNREFUSED (read once,
                                                  then 0); still "rw" afterwards
  ... then first op instead of SO_ERROR ......... recv or send raises
                                                  ConnectionRefusedError(ECONNREFUSED)
                                                  once; then recv b'', send EPIPE
  ... connect_ex again, SO_ERROR not read ....... ECONNREFUSED
  ... connect_ex again, SO_ERROR read ........... ECONNABORTED (!)
  ... and once more ............................. EINPROGRESS (a new attempt)
  blocking connect to a closed port ............. ConnectionRefusedError(ECONNREFUSED)
  port bound but not listening .................. refuses like a closed port
  listen(n) full (n+1 unaccepted connections) ... further SYNs are dropped: the
                                                  connect stays in progress (rw
                                                  = ""), connect_ex again ->
                                                  EALREADY, send/recv -> EAGAIN,
                                                  getpeername -> ENOTCONN
  listen backlog n .............................. exactly n+1 connections complete
                                                  before accept (n = 0, 1, 2, 5)
  connect() on a listening socket ............... OSError(EISCONN)
  shutdown() on a listening socket .............. no error; it stops listening:
                                                  rw "rw", accept -> OSError(EINVAL)
TCP unconnected socket (fresh)
  select ........................................ "rw" (!: EPOLLHUP -> readable)
  recv(n>0) ..................................... OSError(ENOTCONN)
  send / sendall / send(b'') .................... BrokenPipeError(EPIPE) (not ENOTCONN)
  getpeername ................................... OSError(ENOTCONN)
  getsockname ................................... ('0.0.0.0', 0)
  shutdown(any) ................................. OSError(ENOTCONN) -- but the
                                                  shutdown flags are set anyway:
                                                  after SHUT_RD/RDWR, recv -> b''
  accept on non-listening ....................... OSError(EINVAL)
  bind twice / bind connected ................... OSError(EINVAL)
  listen on connected ........................... OSError(EINVAL)
  listen() without bind ......................... auto-binds 0.0.0.0:<ephemeral>
TCP data
  recv on non-blocking, no data ................. BlockingIOError(EAGAIN)
  recv(MSG_DONTWAIT) on a blocking socket ....... BlockingIOError(EAGAIN)
  recv/accept with settimeout(t), nothing ....... TimeoutError, errno None,
                                                  args ('timed out',)
  accept on non-blocking, empty queue ........... BlockingIOError(EAGAIN)
  recv(n) ....................................... all queued bytes up to n; no
                                                  message boundaries (sends coalesce)
  recv(0) ....................................... b'' always, no system call
                                                  (CPython), even on a closed socket
  recv_into(buf, n) / MSG_PEEK .................. count / data left queued
  accepted socket ............................... blocking (timeout None) even
                                                  if the listener is non-blocking
TCP orderly close (peer closed with nothing unread -> FIN)
  recv .......................................... queued data, then b'' forever;
                                                  MSG_PEEK b''; rw "rw"
  getpeername ................................... still works (CLOSE_WAIT)
  first send .................................... succeeds (returns n); the peer
                                                  answers with RST
  then SO_ERROR ................................. EPIPE (32), not ECONNRESET
  then send ..................................... BrokenPipeError(EPIPE), forever
  then recv ..................................... b'' (never raises)
  then getpeername .............................. OSError(ENOTCONN)
  send(b'') after FIN ........................... 0
TCP abortive close (RST)
  close() with unread data in receive buffer .... RST instead of FIN
  SO_LINGER (1, 0) then close() ................. RST
  peer: rw ...................................... "rw"
  peer: recv .................................... bytes that arrived before the RST
                                                  first, then ConnectionResetError
                                                  (ECONNRESET) once, then b''
  peer: send as first op after RST .............. ConnectionResetError(ECONNRESET),
                                                  then BrokenPipeError(EPIPE)
  peer: SO_ERROR as first op .................... ECONNRESET (104), then recv b''
  peer: getpeername ............................. OSError(ENOTCONN)
  RST before accept ............................. accept still returns the
                                                  connection; recv -> ECONNRESET
  listener closed with unaccepted connections ... clients get RST: ECONNRESET
TCP half-close
  shutdown(SHUT_WR) ............................. peer recv b''; peer can still
                                                  send and we receive it; our send
                                                  -> BrokenPipeError(EPIPE); our rw
                                                  "w"; shutdown again: no error
  both sides SHUT_WR ............................ both read b''; connection gone:
                                                  getpeername and shutdown
                                                  -> OSError(ENOTCONN) on both
  shutdown(SHUT_RD) ............................. recv: queued data, then b''; the
                                                  peer notices nothing; data sent
                                                  later is still received and
                                                  readable (!); our send works
  shutdown(SHUT_RDWR), then peer sends .......... peer's send succeeds, we answer
                                                  with RST: our recv ->
                                                  ConnectionResetError(ECONNRESET),
                                                  peer's next send -> EPIPE
TCP closed socket object (after close())
  fileno() ...................................... -1
  send, recv(n>0), recv_into, sendall, accept,
  connect, bind, listen, shutdown, getsockname,
  getpeername, getsockopt, setsockopt,
  setblocking ................................... OSError(EBADF)
  connect_ex .................................... returns EBADF (9), no exception
  close() again ................................. no error
  select([closed]) .............................. ValueError (fd -1)
TCP buffers
  setsockopt SO_SNDBUF/SO_RCVBUF v .............. getsockopt reports 2*v; set them
                                                  before connect/listen (the window
                                                  scale is fixed at SYN time; set
                                                  later, a drained receiver may
                                                  leave the sender stuck unwritable)
  non-blocking send into full buffers ........... partial count (< len) then
                                                  BlockingIOError(EAGAIN); not
                                                  writable while full; writable again
                                                  once the peer has drained it
  sendall on full non-blocking .................. BlockingIOError(EAGAIN)
  sendall on full with settimeout ............... TimeoutError (errno None)
bind
  address in use (bound or listening) ........... OSError(EADDRINUSE) unless BOTH
                                                  sockets set SO_REUSEADDR and the
                                                  first one is not listening
  127.0.0.1:p while 0.0.0.0:p listens ........... OSError(EADDRINUSE)
  127.0.0.2:p while 127.0.0.1:p listens ......... ok
  UDP and TCP ................................... separate port spaces
  listener closed, never accepted ............... port free at once
  port held by an accepted connection ........... EADDRINUSE; ok with SO_REUSEADDR
                                                  on listener and new socket
  port in TIME_WAIT ............................. EADDRINUSE unless SO_REUSEADDR
                                                  was on the old listener AND is on
                                                  the new socket
UDP
  recvfrom / recv, nothing queued ............... BlockingIOError(EAGAIN)
  rw fresh / with datagram ...................... "w" / "rw"
  boundaries .................................... one recv = one datagram; b''
                                                  datagrams are delivered
  recv(n) smaller than the datagram ............. first n bytes, rest discarded
  recv(0) ....................................... b'' without consuming (no syscall)
  recvfrom(0) ................................... (b'', addr) and consumes it
  sendto 65507 / 65508 bytes (IPv4) ............. ok / OSError(EMSGSIZE)
  sendto 65527 / 65528 bytes (IPv6) ............. ok / OSError(EMSGSIZE)
  send() unconnected ............................ OSError(EDESTADDRREQ)
  getpeername unconnected ....................... OSError(ENOTCONN)
  sendto from an unbound socket ................. auto-binds
  unconnected sendto a closed port .............. no error ever reported
  connected, send to a closed port .............. send ok; ICMP error queued:
                                                  rw "rw"; next recv OR send raises
                                                  ConnectionRefusedError(ECONNREFUSED)
                                                  once (that send is not sent);
                                                  SO_ERROR 111 if read first
  connected socket .............................. receives only from its peer;
                                                  sendto another address still works
  shutdown unconnected .......................... OSError(ENOTCONN)
  shutdown(SHUT_WR) connected, then send ........ BrokenPipeError(EPIPE)
AF_UNIX stream
  non-blocking connect to a listener ............ 0 at once (not EINPROGRESS)
  connect to missing path ....................... FileNotFoundError(ENOENT)
  connect to bound, non-listening path .......... ConnectionRefusedError(ECONNREFUSED)
  ... to the path of a closed listener .......... same (the file stays) ; bind to it
                                                  -> OSError(EADDRINUSE)
  listen(n) full, non-blocking connect .......... n+1 connect; then
                                                  BlockingIOError(EAGAIN) (not
                                                  EINPROGRESS)
  accept address / unbound getsockname .......... ''
  abstract name (leading NUL) ................... free again when its socket closes;
                                                  nobody holds it: connect/sendto
                                                  ConnectionRefusedError(ECONNREFUSED)
  bind('') ...................................... autobind: an abstract name of 5 hex
                                                  digits; a no-op on a bound socket
  names as returned ............................. a path as str, an abstract name as
                                                  bytes, whichever type was given
                                                  (test_unix_names.py)
  peer closed ................................... recv b''; send ->
                                                  BrokenPipeError(EPIPE) at once
                                                  (no first send succeeds)
  peer closed with our data unread .............. ECONNRESET once after our queued
                                                  data, then b'', send EPIPE
  peer SHUT_RD, then we send .................... BrokenPipeError(EPIPE) (TCP: ok)
  unconnected: send / recv / shutdown ........... OSError(ENOTCONN) / OSError(EINVAL) /
                                                  no error (all differ from TCP);
                                                  rw "rw" like TCP
AF_UNIX datagram (test_queues.py, profiles.py "unix-dgram")
  connect/sendto: missing path / closed socket's
  path / stream socket's path / a socket
  connected to another one ...................... ENOENT / ECONNREFUSED / EPROTOTYPE /
                                                  EPERM
  send unconnected .............................. OSError(ENOTCONN) (UDP: EDESTADDRREQ)
  connected, peer closed: send .................. ConnectionRefusedError once, then
                                                  ENOTCONN (disconnected)
  receiver queue > 10 (max_dgram_qlen) .......... EAGAIN (blocking: waits); SO_SNDBUF
                                                  (unread datagrams' memory) is checked
                                                  before anything else
More, each with its test module: poll HUP (test_poll_hup.py), addresses of
wildcard/127.0.0.2 connects (test_addresses.py), 4-tuple ports and TIME_WAIT
(test_ports.py), buffer sizes and queue limits (test_queues.py), close() with
live makefile() objects (test_makefile.py).
Not asserted (CPython quirk): UDP ``recv(n, MSG_TRUNC)`` with a datagram
longer than n returns a bytes object of the datagram's full length whose
bytes past n are uninitialised memory.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import socket
import struct
import tempfile
from typing import Any, Iterable

__all__ = ["Backend", "RealBackend", "BACKENDS", "LINGER_RST", "open_socket_fds", "errno_name"]

#: ``setsockopt(SOL_SOCKET, SO_LINGER, LINGER_RST)`` makes close() send RST.
LINGER_RST = struct.pack("ii", 1, 0)

Sockopt = tuple[int, int, Any]

# Module-level aliases: inside the class bodies below, ``socket`` names the
# method, so default arguments use these.
AF_INET, AF_INET6, AF_UNIX = socket.AF_INET, socket.AF_INET6, socket.AF_UNIX
SOCK_STREAM, SOCK_DGRAM = socket.SOCK_STREAM, socket.SOCK_DGRAM
#: what asyncore.poll2 asks poll() for a readable and writable channel
POLL_DEFAULT = select.POLLIN | select.POLLPRI | select.POLLOUT


class Backend:
    """Interface every backend implements; see the module docstring."""

    name = "abstract"
    #: True if packets arrive before the sending call returns (settle() is a
    #: no-op). Tests that check this property run only where it is claimed.
    synchronous_delivery = False

    # -- making sockets ------------------------------------------------
    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM,
               proto: int = 0) -> Any:
        raise NotImplementedError

    def track(self, obj: Any) -> Any:
        """Register a socket (or an ``accept()`` result) for ``close_all``; return it."""
        raise NotImplementedError

    def socketpair(self, type: int = SOCK_STREAM) -> tuple[Any, Any]:
        """``socket.socketpair(AF_UNIX, type)`` on this backend, both tracked."""
        raise NotImplementedError

    def supports(self, family: int) -> bool:
        return True

    def loopback(self, family: int) -> str:
        return {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}[family]

    def ephemeral_port_range(self) -> tuple[int, int]:
        raise NotImplementedError

    def unix_path(self, name: str) -> str:
        raise NotImplementedError

    def bind_addr(self, family: int, port: int = 0) -> Any:
        """Loopback address with ``port`` (0: ephemeral); a fresh path for AF_UNIX."""
        if family == socket.AF_UNIX:
            return self.unix_path("sock")
        return (self.loopback(family), port)

    def listener(self, family: int = AF_INET, backlog: int = 5, *,
                 blocking: bool = False, sockopts: Iterable[Sockopt] = (),
                 address: Any = None) -> Any:
        """A listening stream socket on loopback (or a Unix path)."""
        lst = self.socket(family, socket.SOCK_STREAM)
        for opt in sockopts:
            lst.setsockopt(*opt)
        lst.bind(address if address is not None else self.bind_addr(family))
        lst.listen(backlog)
        lst.setblocking(blocking)
        return lst

    def tcp_pair(self, family: int = AF_INET, *, blocking: bool = False,
                 sockopts: Iterable[Sockopt] = (), nodelay: bool = True) -> tuple[Any, Any]:
        """A connected stream pair ``(client, server)`` (TCP, or AF_UNIX).

        ``sockopts`` are applied to the client before ``connect`` and to the
        listener before ``listen`` (the accepted socket inherits them).
        TCP_NODELAY is set on both TCP ends after the connection is made.
        Both ends are non-blocking unless ``blocking`` is true.
        """
        opts = list(sockopts)
        lst = self.listener(family, 1, blocking=True, sockopts=opts)
        try:
            cli = self.socket(family, socket.SOCK_STREAM)
            for opt in opts:
                cli.setsockopt(*opt)
            cli.connect(lst.getsockname())
            srv, _ = self.track(lst.accept())
        finally:
            lst.close()
        for end in (cli, srv):
            if nodelay and family != socket.AF_UNIX:
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            end.setblocking(blocking)
        return cli, srv

    def udp_socket(self, family: int = AF_INET, *, blocking: bool = False,
                   bind: bool = True) -> Any:
        sock = self.socket(family, socket.SOCK_DGRAM)
        if bind:
            sock.bind(self.bind_addr(family))
        sock.setblocking(blocking)
        return sock

    def refused_addr(self, family: int = AF_INET,
                     type: int = SOCK_STREAM) -> Any:
        """An address where a connect is refused / a datagram bounces.

        TCP: a port held by a bound, non-listening socket (the kernel answers
        SYN with RST exactly as for a free port). UDP: a port held by a socket
        connected elsewhere (it accepts nobody else's datagrams, so they draw
        ICMP port-unreachable). AF_UNIX: a path bound but not listening.
        """
        if family == socket.AF_UNIX:
            holder = self.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            holder.bind(self.unix_path("refused"))
            return holder.getsockname()
        holder = self.socket(family, type)
        holder.bind(self.bind_addr(family))
        if type == socket.SOCK_DGRAM:
            holder.connect((self.loopback(family), 9))
        return holder.getsockname()[:2]

    # -- time and readiness ----------------------------------------------
    def settle(self) -> None:
        """Let everything in flight (data, FIN, RST, SYN/ACK, ICMP) arrive."""
        raise NotImplementedError

    def select(self, r: list, w: list, x: list, timeout: float | None) -> tuple[list, list, list]:
        raise NotImplementedError

    def readiness(self, sock: Any) -> str:
        """What ``select`` reports for ``sock`` right now: subset of ``"rwx"``."""
        r, w, x = self.select([sock], [sock], [sock], 0)
        return ("r" if r else "") + ("w" if w else "") + ("x" if x else "")

    def poll_flags(self, sock: Any, events: int = POLL_DEFAULT) -> str:
        """What ``poll()`` reports for ``sock`` right now (zero timeout), as
        names joined by ``|`` in the order IN, PRI, OUT, ERR, HUP, NVAL."""
        pollster = self.make_poll()
        pollster.register(sock, events)
        got = pollster.poll(0)
        bits = got[0][1] if got else 0
        return "|".join(name for name in ("IN", "PRI", "OUT", "ERR", "HUP", "NVAL")
                        if bits & getattr(select, "POLL" + name))

    def make_poll(self) -> Any:
        """A ``select.poll()`` object of the backend."""
        raise NotImplementedError

    def wait_writable(self, socks: list, timeout: float = 2.0) -> list:
        """Sockets of ``socks`` that become writable within ``timeout``."""
        return self.select([], list(socks), [], timeout)[1]

    def close_all(self) -> None:
        raise NotImplementedError


def open_socket_fds() -> set[int]:
    """File descriptors of this process that are sockets (Linux /proc)."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                fds.add(int(name))
        except OSError:  # the fd of the listdir itself, already gone
            pass
    return fds


class RealBackend(Backend):
    """Kernel sockets on loopback; ``settle()`` is a no-op (delivery is synchronous)."""

    name = "real"
    synchronous_delivery = True

    def __init__(self) -> None:
        self._socks: list[socket.socket] = []
        self._tmpdir: str | None = None
        self._paths = 0

    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM,
               proto: int = 0) -> socket.socket:
        return self.track(socket.socket(family, type, proto))

    def socketpair(self, type: int = SOCK_STREAM) -> tuple[Any, Any]:
        a, b = socket.socketpair(socket.AF_UNIX, type)
        return self.track(a), self.track(b)

    def track(self, obj: Any) -> Any:
        if isinstance(obj, tuple):  # accept() result
            self._socks.append(obj[0])
        else:
            self._socks.append(obj)
        return obj

    def supports(self, family: int) -> bool:
        if family != socket.AF_INET6:
            return True
        if not socket.has_ipv6:
            return False
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
                probe.bind(("::1", 0))
        except OSError:
            return False
        return True

    def ephemeral_port_range(self) -> tuple[int, int]:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
        return int(lo), int(hi)

    def unix_path(self, name: str) -> str:
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="simnet-conf-")
        self._paths += 1
        return os.path.join(self._tmpdir, f"{name}{self._paths}")

    def settle(self) -> None:
        # Loopback delivery is synchronous once TCP_NODELAY is set (see the
        # module docstring): nothing is ever in flight when we get here.
        return None

    def select(self, r: list, w: list, x: list, timeout: float | None) -> tuple[list, list, list]:
        return select.select(r, w, x, timeout)

    def make_poll(self) -> Any:
        return select.poll()

    def close_all(self) -> None:
        socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __repr__(self) -> str:
        return f"<RealBackend {len(self._socks)} sockets>"


class FakeBackend(Backend):
    """simnet's fake network; ``settle()`` delivers what is due now without
    moving the virtual clock (so SYN retransmissions stay pending)."""

    name = "fake"
    synchronous_delivery = False

    def __init__(self) -> None:
        from simnet.fakesock import FakeNetwork

        self.net = FakeNetwork(seed=1)
        self._socks: list[Any] = []
        self._paths = 0

    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> Any:
        return self.track(self.net.socket(family, type, proto))

    def socketpair(self, type: int = SOCK_STREAM) -> tuple[Any, Any]:
        from simnet.fakesock.pollers import socketpair

        a, b = socketpair(self.net, socket.AF_UNIX, type)
        return self.track(a), self.track(b)

    def track(self, obj: Any) -> Any:
        self._socks.append(obj[0] if isinstance(obj, tuple) else obj)
        return obj

    def ephemeral_port_range(self) -> tuple[int, int]:
        from simnet.fakesock.network import EPHEMERAL_PORTS

        return EPHEMERAL_PORTS

    def unix_path(self, name: str) -> str:
        self._paths += 1
        return f"/simnet-conformance/{name}{self._paths}"

    def settle(self) -> None:
        self.net.settle()

    def select(self, r: list, w: list, x: list, timeout: float | None) -> tuple[list, list, list]:
        def fd(o: Any) -> int:
            return o if isinstance(o, int) else o.fileno()

        by_fd = {fd(o): o for o in [*r, *w, *x]}
        rr, ww, xx = self.net.select([fd(o) for o in r], [fd(o) for o in w], [fd(o) for o in x], timeout)
        return [by_fd[f] for f in rr], [by_fd[f] for f in ww], [by_fd[f] for f in xx]

    def make_poll(self) -> Any:
        return self.net.poll()

    def close_all(self) -> None:
        socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()
        self.net.close()

    def __repr__(self) -> str:
        return f"<FakeBackend {self.net!r}>"


#: Backends the suite runs on.
BACKENDS: list[type[Backend]] = [RealBackend, FakeBackend]


def errno_name(code: int | None) -> str | None:
    """``errno.ECONNRESET`` -> ``"ECONNRESET"`` (None stays None)."""
    if code is None:
        return None
    return errno.errorcode.get(code, str(code))
