"""``ssl`` on fake sockets: ``SSLContext.wrap_socket`` inside ``net.patch()``.

``context.wrap_socket(fake_sock, ...)`` returns a :class:`FakeSSLSocket`, a
subclass of :class:`ssl.SSLSocket` (``isinstance`` checks pass) that does real
TLS -- the ``ssl`` module's own engine, ``SSLContext.wrap_bio`` over two
``MemoryBIO``\\ s, with real certificate verification -- over the fake
connection. The stdlib code paths of ``SSLSocket`` (``read``, ``send``,
``sendall``, ``recv_into``, ``do_handshake``, ``unwrap``, ``pending``,
``getpeercert``, ``sendfile``'s ``send()`` fallback, ``makefile``...) run
unchanged on top of it; only the part that talks to the kernel is replaced.

* Blocking, timeout and non-blocking modes are the fake socket's: a blocking
  handshake runs the simulation; a non-blocking one raises
  ``SSLWantReadError``/``SSLWantWriteError`` as a real one does.
* Ciphertext is read one TLS record at a time (header, then body), never
  further: application data that arrives with the last handshake message
  stays in the socket, so the socket still polls readable.
* Faults act on the ciphertext underneath (partial sends, resets mid-handshake).
* Traces record the *plaintext* (``send``/``recv`` events with sizes and
  CRC-32 of the plaintext); ciphertext, which is random in every run, is not
  recorded, so traces of TLS runs compare equal.
"""

from __future__ import annotations

import _socket as _csocket
import contextlib
import errno
import socket as _socket
import ssl
from typing import Any, Callable, Iterator

__all__ = ["FakeSSLSocket", "install", "uninstall"]

REAL_WRAP_SOCKET = ssl.SSLContext.wrap_socket

#: Bytes of record overhead reserved per 16 KiB of plaintext when a
#: non-blocking send must fit the socket's free send buffer.
_OVERHEAD = 128

_saved: list[Any] = []


@contextlib.contextmanager
def _untraced(net: Any) -> Iterator[None]:
    """Ciphertext is random per run: keep it out of the trace."""
    tr = net._tr
    net._tr = None
    try:
        yield
    finally:
        net._tr = tr


class _Engine:
    """What ``SSLSocket._sslobj`` is for a kernel socket: the TLS engine
    (an :class:`ssl.SSLObject`) moving ciphertext over the fake socket."""

    def __init__(self, raw: Any, context: ssl.SSLContext, server_side: bool,
                 server_hostname: Any, session: Any) -> None:
        self._raw = raw
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_side=server_side,
                                     server_hostname=server_hostname, session=session)
        self._unsent = bytearray()  # ciphertext the socket did not take yet
        self._hdr = bytearray()  # the current record's header, as far as read
        self._body = 0  # bytes of the current record's body still to read

    def __getattr__(self, name: str) -> Any:
        # cipher(), version(), getpeercert(), session, context ... are the SSLObject's
        return getattr(self._obj, name)

    def __repr__(self) -> str:
        return f"<simnet TLS engine over {self._raw!r}>"

    # -- moving ciphertext ----------------------------------------------------------
    def _flush(self) -> None:
        """Send the ciphertext the engine produced, as far as the socket takes it."""
        out = self._out.read()
        if out:
            self._unsent += out
        raw = self._raw
        with _untraced(raw.network):
            while self._unsent:
                try:
                    n = raw.send(self._unsent)
                except BlockingIOError:
                    return
                del self._unsent[:n]

    def _fill(self) -> bool:
        """Read the rest of the current TLS record part (header or body) into
        the engine; False when a non-blocking socket has nothing."""
        if len(self._hdr) < 5:
            want = 5 - len(self._hdr)
        else:
            want = self._body
        raw = self._raw
        try:
            with _untraced(raw.network):
                data = raw.recv(want)
        except BlockingIOError:
            return False
        if not data:
            self._in.write_eof()
            return True
        self._in.write(data)
        if len(self._hdr) < 5:
            self._hdr += data
            if len(self._hdr) == 5:
                self._body = int.from_bytes(self._hdr[3:5], "big")
                if not self._body:
                    self._hdr.clear()
        else:
            self._body -= len(data)
            if not self._body:
                self._hdr.clear()
        return True

    def _io(self, op: Callable[..., Any], *args: Any) -> Any:
        while True:
            try:
                result = op(*args)
            except ssl.SSLWantReadError:
                self._flush()
                if self._unsent and self._raw._timeout == 0:
                    raise ssl.SSLWantWriteError(ssl.SSL_ERROR_WANT_WRITE,
                                                "The operation did not complete (write)") from None
                if not self._fill():
                    raise
                continue
            except ssl.SSLError:
                self._flush()  # the alert goes to the peer, as OpenSSL sends it
                raise
            self._flush()
            return result

    # -- what SSLSocket calls -----------------------------------------------------------
    def do_handshake(self) -> None:
        self._io(self._obj.do_handshake)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        raw = self._raw
        if buffer is None:
            data = self._io(self._obj.read, len)
            raw._trace("recv", raw._fd, len, _size(data), bytes(data))
            return data
        n = self._io(self._obj.read, len, buffer)
        raw._trace("recv", raw._fd, len, n, bytes(memoryview(buffer)[:n]))
        return n

    def write(self, data: Any) -> int:
        raw = self._raw
        view = memoryview(data).cast("B")
        if raw._timeout == 0:
            # non-blocking: take only what the socket's send buffer can carry
            self._flush()
            if self._unsent:
                raise ssl.SSLWantWriteError(ssl.SSL_ERROR_WANT_WRITE,
                                            "The operation did not complete (write)")
            end = raw._end
            if end is not None and not end.reset and not end.wr_shut:
                room = end.scap - len(end.sq)
                room -= _OVERHEAD * (1 + room // 16384)
                if room <= 0:
                    raise ssl.SSLWantWriteError(ssl.SSL_ERROR_WANT_WRITE,
                                                "The operation did not complete (write)")
                view = view[:room]
        n = self._io(self._obj.write, view)
        raw._trace("send", raw._fd, len(view), n, bytes(view[:n]))
        return n

    def shutdown(self) -> Any:
        self._io(self._obj.unwrap)
        return self._raw

    def pending(self) -> int:
        return self._obj.pending()


def _size(data: Any) -> int:
    return len(data)


class FakeSSLSocket(ssl.SSLSocket):
    """An :class:`ssl.SSLSocket` over a fake socket (made by
    ``SSLContext.wrap_socket`` inside ``net.patch()``)."""

    _raw: Any

    @classmethod
    def _create_fake(cls, context: ssl.SSLContext, raw: Any, server_side: bool = False,
                     do_handshake_on_connect: bool = True, suppress_ragged_eofs: bool = True,
                     server_hostname: Any = None, session: Any = None) -> FakeSSLSocket:
        if raw.type != _socket.SOCK_STREAM:
            raise NotImplementedError("only stream sockets are supported")
        if server_side:
            if server_hostname:
                raise ValueError("server_hostname can only be specified in server mode")
            if session is not None:
                raise ValueError("session can only be specified in client mode")
        if context.check_hostname and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")
        raw._check()
        self = _csocket.socket.__new__(cls)  # no kernel descriptor behind it
        self._io_refs = 0
        self._closed = False
        self._raw = raw
        self._context = context
        self._session = session
        self._sslobj = None
        self.server_side = server_side
        self.server_hostname = context._encode_hostname(server_hostname)  # type: ignore[attr-defined]
        self.do_handshake_on_connect = do_handshake_on_connect
        self.suppress_ragged_eofs = suppress_ragged_eofs
        try:
            raw.getpeername()
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                raise
            connected = False
        else:
            connected = True
        self._connected = connected
        if connected:
            try:
                self._sslobj = self._engine()
                if do_handshake_on_connect:
                    if raw.gettimeout() == 0.0:
                        raise ValueError("do_handshake_on_connect should not be specified "
                                         "for non-blocking sockets")
                    self.do_handshake()
            except (OSError, ValueError):
                self.close()
                raise
        return self

    def _engine(self) -> _Engine:
        return _Engine(self._raw, self._context, self.server_side, self.server_hostname, self._session)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("unwrapped" if self._sslobj is None else "TLS")
        return f"<simnet.FakeSSLSocket {state} over {self._raw!r}>"

    # -- what the kernel socket would answer: the fake socket's ---------------------------
    @property
    def family(self) -> _socket.AddressFamily:  # type: ignore[override]
        return self._raw.family

    @property
    def type(self) -> _socket.SocketKind:  # type: ignore[override]
        return self._raw.type

    @property
    def proto(self) -> int:  # type: ignore[override]
        return self._raw.proto

    @property
    def timeout(self) -> float | None:  # type: ignore[override]
        return self._raw.gettimeout()

    @property
    def network(self) -> Any:
        """The fake network underneath."""
        return self._raw.network

    def fileno(self) -> int:
        return -1 if self._closed else self._raw.fileno()

    def gettimeout(self) -> float | None:
        return self._raw.gettimeout()

    def settimeout(self, value: float | None) -> None:
        self._raw.settimeout(value)

    def setblocking(self, flag: bool) -> None:
        self._raw.setblocking(flag)

    def getblocking(self) -> bool:
        return self._raw.getblocking()

    def getsockname(self) -> Any:
        return self._raw.getsockname()

    def getpeername(self) -> Any:
        return self._raw.getpeername()

    def setsockopt(self, *args: Any) -> None:
        self._raw.setsockopt(*args)

    def getsockopt(self, *args: Any) -> Any:
        return self._raw.getsockopt(*args)

    def bind(self, address: Any) -> None:
        self._raw.bind(address)

    def listen(self, *args: Any) -> None:
        self._raw.listen(*args)

    def detach(self) -> int:
        raise OSError(errno.EOPNOTSUPP, "a fake TLS socket has no kernel descriptor to detach")

    # -- plaintext I/O once unwrapped: the fake socket's --------------------------------
    def send(self, data: Any, flags: int = 0) -> int:
        if self._sslobj is None:
            self._checkClosed()
            return self._raw.send(data, flags)
        return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        if self._sslobj is None:
            self._checkClosed()
            return self._raw.sendall(data, flags)
        return super().sendall(data, flags)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        if self._sslobj is None:
            self._checkClosed()
            return self._raw.recv(buflen, flags)
        return super().recv(buflen, flags)

    def recv_into(self, buffer: Any, nbytes: Any = None, flags: int = 0) -> int:
        if self._sslobj is None:
            self._checkClosed()
            return self._raw.recv_into(buffer, nbytes or 0, flags)
        return super().recv_into(buffer, nbytes, flags)

    def shutdown(self, how: int) -> None:
        self._checkClosed()
        self._sslobj = None
        self._raw.shutdown(how)

    def _real_close(self) -> None:
        self._sslobj = None
        self._raw.close()

    # -- connecting and accepting ---------------------------------------------------------
    def _real_connect(self, addr: Any, connect_ex: bool) -> Any:
        if self.server_side:
            raise ValueError("can't connect in server-side mode")
        if self._connected or self._sslobj is not None:
            raise ValueError("attempt to connect already-connected SSLSocket!")
        self._sslobj = self._engine()
        try:
            if connect_ex:
                rc = self._raw.connect_ex(addr)
            else:
                rc = None
                self._raw.connect(addr)
            if not rc:
                self._connected = True
                if self.do_handshake_on_connect:
                    self.do_handshake()
            return rc
        except (OSError, ValueError):
            self._sslobj = None
            raise

    def accept(self) -> tuple[FakeSSLSocket, Any]:
        newsock, addr = self._raw.accept()
        wrapped = type(self)._create_fake(self.context, newsock, server_side=True,
                                          do_handshake_on_connect=self.do_handshake_on_connect,
                                          suppress_ragged_eofs=self.suppress_ragged_eofs)
        return wrapped, addr


def install(net: Any) -> None:
    """Route ``SSLContext.wrap_socket`` of fake sockets to :class:`FakeSSLSocket`."""
    from simnet.fakesock.sockets import FakeSocket

    saved = ssl.SSLContext.__dict__.get("wrap_socket")
    _saved.append(saved)

    def wrap_socket(self: ssl.SSLContext, sock: Any, server_side: bool = False,
                    do_handshake_on_connect: bool = True, suppress_ragged_eofs: bool = True,
                    server_hostname: Any = None, session: Any = None) -> Any:
        if isinstance(sock, FakeSocket):
            return FakeSSLSocket._create_fake(self, sock, server_side, do_handshake_on_connect,
                                              suppress_ragged_eofs, server_hostname, session)
        if isinstance(sock, FakeSSLSocket):
            raise ValueError(f"wrap_socket(): {sock!r} is a TLS socket already")
        return saved(self, sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                     server_hostname, session)

    wrap_socket.__doc__ = saved.__doc__
    ssl.SSLContext.wrap_socket = wrap_socket  # type: ignore[method-assign]


def uninstall(net: Any) -> None:
    """Undo the matching :func:`install`."""
    ssl.SSLContext.wrap_socket = _saved.pop()  # type: ignore[method-assign]
