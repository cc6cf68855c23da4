"""The connection machinery of FakeNetwork: binding rules, the TCP handshake
(with SYN retries against a full accept queue), UDP routing. The protocol
state it creates and feeds lives in :mod:`simnet.fakesock.tcp` (connection
ends, listeners) and :mod:`simnet.fakesock.dgram` (datagram queues)."""

from __future__ import annotations

import errno
import ipaddress
import socket as _socket
from typing import Any, Callable

from simnet.fakesock.tcp import SYN_RETRIES, TCP_SNDBUF_CONNECTED, StreamEnd


_V6ONLY = getattr(_socket, "IPV6_V6ONLY", 26)


def _dual_stack(sock: Any) -> bool:
    """Does this AF_INET6 socket take IPv4 too (IPV6_V6ONLY off)?"""
    return not sock._opts.get((_socket.IPPROTO_IPV6, _V6ONLY), 0)


_SO_REUSEPORT = (_socket.SOL_SOCKET, getattr(_socket, "SO_REUSEPORT", 15))


def _reuseport(sock: Any, other: Any) -> bool:
    """Both sockets set SO_REUSEPORT: they may share a port, listeners too."""
    return bool(sock._opts.get(_SO_REUSEPORT) and other._opts.get(_SO_REUSEPORT))


def _wild(family: int) -> str:
    return "0.0.0.0" if family == _socket.AF_INET else "::"


#: the limited broadcast address (``'<broadcast>'``)
BROADCAST = "255.255.255.255"


def mapped_v4(ip: str) -> str | None:
    """The IPv4 address inside an IPv4-mapped IPv6 address in the form
    :func:`canonical_v6` gives (``::ffff:a.b.c.d``), else None."""
    if ip.startswith("::ffff:") and "." in ip:
        return ip[7:]
    return None


_canonical: dict[str, str] = {}


def canonical_v6(ip: str) -> str:
    """An IPv6 address as Linux prints it: IPv4-mapped ones as ``::ffff:a.b.c.d``
    (any spelling); no ``%scope`` (CPython takes the scope id from the
    address tuple)."""
    if "." not in ip and "%" not in ip and "f" not in ip and "F" not in ip:
        return ip  # (nothing to change: the common case, without parsing)
    done = _canonical.get(ip)
    if done is not None:
        return done
    text = ip.split("%", 1)[0]
    try:
        v4 = ipaddress.IPv6Address(text).ipv4_mapped
    except ValueError:
        v4 = None
    done = text if v4 is None else "::ffff:" + str(v4)
    if len(_canonical) < 4096:
        _canonical[ip] = done
    return done


def _as_family(addr: tuple, family: int) -> tuple:
    """*addr* (ip, port) as a socket of *family* sees it (IPv4 <-> mapped)."""
    ip = addr[0]
    if family == _socket.AF_INET6:
        return addr if ":" in ip else ("::ffff:" + ip, addr[1])
    v4 = mapped_v4(ip)
    return addr if v4 is None else (v4, addr[1])


class _Connections:
    """Mixin: binding rules, the TCP handshake, UDP delivery."""

    def _bind_conflict(self, sock: Any, family: int, ip: str, port: int) -> bool:
        reuse = sock._reuse()
        wild = _wild(family)
        ips = self._ports.get((family, sock._type, port), {})
        candidates = [wild, ip] if ip != wild else list(ips)
        for bip in candidates:
            for other in self._bound.get((family, sock._type, bip, port), ()):
                if not (reuse and other._reuse() and other._state != "listening") \
                        and not _reuseport(sock, other):
                    return True
        # A dual-stack IPv6 socket on :: (IPV6_V6ONLY off, Linux's default)
        # holds the port for IPv4 too, and is refused a port IPv4 holds.
        others: list = []
        if family == _socket.AF_INET:
            others = [o for o in self._bound.get((_socket.AF_INET6, sock._type, "::", port), ())
                      if _dual_stack(o)]
        elif family == _socket.AF_INET6 and ip == "::" and _dual_stack(sock):
            for bip in self._ports.get((_socket.AF_INET, sock._type, port), {}):
                others += self._bound.get((_socket.AF_INET, sock._type, bip, port), ())
        for other in others:
            if not (reuse and other._reuse() and other._state != "listening") \
                    and not _reuseport(sock, other):
                return True
        if sock._type == _socket.SOCK_STREAM:
            # TIME_WAIT: reusable only if both the new socket and the old one
            # had SO_REUSEADDR
            waiting = self._time_wait.get((family, port), {})
            for bip, (expiry, old_reuse) in waiting.items():
                if expiry > self._now and (bip == ip or bip == wild or ip == wild) \
                        and not (reuse and old_reuse):
                    return True
        return False

    def _unbind(self, sock: Any) -> None:
        key = sock._bound_key
        if key is None:
            return
        sock._bound_key = None
        if sock._tuple is not None:
            t, shared = sock._tuple
            sock._tuple = None
            if self._conn_tuples.get(t) is sock:
                del self._conn_tuples[t]
        else:
            shared = False
        if shared:
            skey = (key[0], key[3])
            left = self._shared[skey] - 1
            if left:
                self._shared[skey] = left
            else:
                del self._shared[skey]
        if key[0] == "unix":
            # a path stays, stale, as the file stays on disk: connect() gets
            # ECONNREFUSED and bind() EADDRINUSE until net.unlink(path); an
            # abstract name is free again
            self._unix.release(key[1], sock)
            return
        self._drop_binding(key, sock)
        listeners = self._listening.get(key)
        if listeners and sock in listeners:
            listeners.remove(sock)
            if not listeners:
                del self._listening[key]

    def _forget_end(self, end: Any) -> None:
        """A connection end is finished (hook for traces; nothing to free)."""

    def _find(self, family: int, ip: str, port: int, type_: int, state: str | None) -> Any:
        index = self._listening if state == "listening" else self._bound
        for key in ((family, type_, ip, port), (family, type_, _wild(family), port)):
            for sock in reversed(index.get(key, ())):
                if sock._type == type_ and not sock._closed and (state is None or sock._state == state):
                    return sock
        return None

    def _send_syn(self, sock: Any, key: tuple, token: int, attempt: int, lat: float) -> None:
        self.schedule(lat, self._syn_arrives, sock, key, token, attempt, lat)

    def _syn_arrives(self, sock: Any, key: tuple, token: int, attempt: int, lat: float) -> None:
        if sock._connect_token != token or sock._closed or sock._state != "connecting":
            return
        ip, port = key
        if not self.is_local_ip(ip):
            listener = None
            answer = "silence"
        else:
            v4 = mapped_v4(ip) if sock._family == _socket.AF_INET6 else None
            if v4 is not None:
                # an IPv6 client of an IPv4-mapped address: an IPv4 listener
                # takes it (or an IPv6 one on that mapped address or on ::)
                listener = self._find(_socket.AF_INET, v4, port, sock._type, "listening")
                if listener is None:
                    listener = self._find(sock._family, ip, port, sock._type, "listening")
            else:
                listener = self._find(sock._family, ip, port, sock._type, "listening")
            if listener is None and (sock._family == _socket.AF_INET or v4 is not None):
                listener = self._dual_stack_listener(port, sock._type)
            if listener is None:
                answer = "rst"
            elif listener._queue_full():
                answer = "silence"  # the SYN is dropped; the client retries
            else:
                answer = "accept"
            if self._partitions and self._partition_delay(sock._laddr, key, self._now) != self._now:
                answer = "silence"  # cut off: the SYN is lost
            if answer == "accept" and self._faulty:
                rule = self.faults.match("syn", conn=sock._conn, side="server", local=key,
                                         peer=sock._laddr, fd=listener._fd)
                if rule is not None:
                    answer = "silence"  # backlog_overflow: dropped as if the queue were full
        if answer == "accept":
            self._establish(sock, listener, lat, key)
        elif answer == "rst":
            self._after(lat, self._connect_failed, sock, token, errno.ECONNREFUSED)
        elif attempt < len(SYN_RETRIES) - 1:
            delay = SYN_RETRIES[attempt]
            self.schedule(max(delay - lat, 0.0), self._send_syn, sock, key, token, attempt + 1, lat)
        else:
            self.schedule(max(SYN_RETRIES[attempt] - lat, 0.0), self._connect_failed,
                          sock, token, errno.ETIMEDOUT)

    def _after(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        # Handshake steps always go through the event queue, even with no
        # latency: as on Linux loopback, a non-blocking connect() returns
        # EINPROGRESS and the socket is still connecting until the next wait.
        self.schedule(delay, fn, *args)

    def _connect_failed(self, sock: Any, token: int, code: int) -> None:
        if sock._connect_token != token or sock._closed or sock._state != "connecting":
            return
        sock._state = "refused"
        sock._err = code
        self.activity += 1

    def _dual_stack_listener(self, port: int, type_: int) -> Any:
        """An AF_INET6 listener on ``::`` port *port* that also takes IPv4
        connections (IPV6_V6ONLY off, Linux's default), or None."""
        for sock in reversed(self._listening.get((_socket.AF_INET6, type_, "::", port), ())):
            if not sock._closed and sock._state == "listening" and _dual_stack(sock):
                return sock
        return None

    def _establish(self, client: Any, listener: Any, lat: float | None, key: Any,
                   sync: bool = False) -> None:
        cid = client._conn if client._conn is not None else self.new_conn_id()
        unix = client._family == _socket.AF_UNIX
        if unix:
            c_laddr = client._laddr if client._laddr is not None else ""
            s_laddr = listener._laddr
            lat, bw, jitter = 0.0, None, 0.0
        else:
            c_laddr = client._laddr
            s_laddr = key
            lat, bw, jitter = self._link3(c_laddr[0], key[0], count=True)
        if client._family != _socket.AF_UNIX:
            # Linux autotunes SO_SNDBUF of an established connection unless the
            # program fixed it (on loopback: TCP_SNDBUF_CONNECTED)
            if not client._snd_locked:
                client._sndbuf = TCP_SNDBUF_CONNECTED
            s_snd = listener._sndbuf if listener._snd_locked else TCP_SNDBUF_CONNECTED
        else:
            # a Unix socket made by accept() has the default buffers, not its listener's
            s_snd, s_rcv = listener._default_buffers(self, listener._family, listener._type)
        c_end = StreamEnd(self, client, c_laddr, key, cid, client._rcvbuf, client._sndbuf, lat, bw,
                          unix)
        s_raddr = c_laddr
        if listener._family != client._family:
            # an IPv4 client of a dual-stack IPv6 listener: the server side sees
            # IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), as on Linux; an IPv6
            # client of an IPv4-mapped address: the IPv4 server sees IPv4 ones
            s_laddr = _as_family(s_laddr, listener._family)
            s_raddr = _as_family(c_laddr, listener._family)
        s_end = StreamEnd(self, None, s_laddr, s_raddr, cid, s_rcv if unix else listener._rcvbuf,
                          s_snd, lat, bw, unix)
        c_end.peer, s_end.peer = s_end, c_end
        s_end.side = "server"
        c_end.jitter = s_end.jitter = jitter
        listener._listener.push(s_end)
        self.activity += 1
        token = client._connect_token

        def complete() -> None:
            if client._closed or client._connect_token != token:
                s_end.send_rst()
                return
            client._end = c_end
            client._state = "connected"
            self.activity += 1
            if self._disconnects:
                self._schedule_timed_disconnects(c_end, client)

        if sync:
            complete()  # Unix sockets connect within connect()
        else:
            self._after(lat, complete)

    def _send_datagram(self, sock: Any, payload: bytes, key: Any) -> None:
        """Route a UDP datagram from *sock* to *key* (a Unix datagram goes
        straight to its path's socket: ``FakeSocket._send_unix_datagram``)."""
        ip, port = key
        lat, bw, _ = self._link3(sock._laddr[0], ip, count=True)
        src = sock._laddr
        if src[0] in (_wild(sock._family), BROADCAST, "::ffff:0.0.0.0"):
            # (bound to a wildcard or the broadcast address: the route's source)
            src = (self.source_ip(ip, sock._family), src[1])
        delay = lat + (len(payload) / bw if bw else 0.0)

        copies = 1
        if self._partitions:
            arrival = self._partition_delay(src, key, self._now + delay)
            if arrival != self._now + delay:
                return  # datagrams are not held: lost across a partition
        if self._faulty:
            rule = self.faults.match("datagram", local=src, peer=key, fd=sock._fd)
            if rule is not None:
                if rule.fault == "udp_loss":
                    return
                if rule.fault == "udp_duplicate":
                    copies = 2
                else:
                    delay += self.rng.random() * rule.params["delay"]

        def arrive() -> None:
            family = sock._family
            if family == _socket.AF_INET6 and ip.startswith("::ffff:"):
                if ip == "::ffff:" + BROADCAST:
                    self._broadcast(sock, payload, src, port, copies)
                    return
                dest = self._udp_dest_other(family, ip, port)
            elif ip == BROADCAST:
                self._broadcast(sock, payload, src, port, copies)
                return
            else:
                dest = self._find(family, ip, port, _socket.SOCK_DGRAM, None)
                if dest is None and family == _socket.AF_INET:
                    dest = self._udp_dest_other(family, ip, port)
            dsrc = src if dest is None or dest._family == family else _as_family(src, dest._family)
            if dest is not None and dest._raddr is not None and dest._raddr != dsrc:
                dest = None  # connected elsewhere: no socket takes it (port unreachable)
            if dest is not None:
                for _ in range(copies):
                    dest._accept_datagram(payload, dsrc)
            elif sock._raddr == key and not sock._closed:
                # ICMP port unreachable: only a connected socket hears of it
                sock._err = errno.ECONNREFUSED
                self.activity += 1

        if delay:
            self.schedule(delay, arrive)
        else:
            arrive()  # loopback delivers a datagram within sendto()

    def _udp_dest_other(self, family: int, ip: str, port: int) -> Any:
        """The UDP socket a datagram reaches across the families: to an
        IPv4-mapped address from an IPv6 socket, the IPv4 socket there (or
        an IPv6 one on that mapped address or a dual-stack one on ::); from
        an IPv4 socket that no IPv4 socket takes, a dual-stack IPv6 one."""
        dgram = _socket.SOCK_DGRAM
        if family == _socket.AF_INET6:
            dest = self._find(_socket.AF_INET, ip[7:], port, dgram, None)
            if dest is not None:
                return dest
            v6 = ip
        else:
            v6 = "::ffff:" + ip
        dest = self._find(_socket.AF_INET6, v6, port, dgram, None)
        if dest is not None and dest._laddr[0] == "::" and not _dual_stack(dest):
            dest = None
        return dest

    def _broadcast(self, sock: Any, payload: bytes, src: tuple, port: int, copies: int) -> None:
        """A datagram to 255.255.255.255: Linux loops it back to every socket
        on *port* bound to 0.0.0.0 or 255.255.255.255 (and dual-stack IPv6
        sockets on ::), not to sockets bound to a unicast address or
        connected elsewhere."""
        dgram = _socket.SOCK_DGRAM
        found = [*self._bound.get((_socket.AF_INET, dgram, "0.0.0.0", port), ()),
                 *self._bound.get((_socket.AF_INET, dgram, BROADCAST, port), ()),
                 *(o for o in self._bound.get((_socket.AF_INET6, dgram, "::", port), ())
                   if _dual_stack(o))]
        for dest in found:
            dsrc = _as_family(src, dest._family)
            if dest._closed or dest._raddr is not None and dest._raddr != dsrc:
                continue
            for _ in range(copies):
                dest._accept_datagram(payload, dsrc)
