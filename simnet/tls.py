r"""TLS for dispatcher programs, on real sockets and on the fake network alike.

The TLS engine is :class:`ssl.SSLObject` over two :class:`ssl.MemoryBIO`\ s
(``SSLContext.wrap_bio``); simnet moves the ciphertext between those buffers
and the channel's plain non-blocking socket itself. Nothing here needs a
kernel socket, so a :class:`~simnet.fakesock.FakeNetwork` socket (which
``ssl.wrap_socket`` cannot take) gets exactly the same TLS as a real one, and
faults such as one-byte partial sends hit the TLS records.

Three ready-made classes, one per asyncore/asynchat base:

* :class:`TLSDispatcher` -- ``dispatcher`` with TLS;
* :class:`TLSDispatcherWithSend` -- ``dispatcher_with_send`` with TLS;
* :class:`TLSChat` -- ``async_chat`` with TLS.

They take three keyword arguments besides ``sock`` and ``map``: *context* (an
:class:`ssl.SSLContext`; ``None`` leaves the channel in plaintext until
:meth:`~TLSMixin.start_tls`), *server_side* and *server_hostname* (a client's
default is the host it ``connect()``\ s to). An echo server and a client::

    import ssl, simnet
    from simnet.tls import TLSChat, TLSDispatcherWithSend

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain("cert.pem", "key.pem")
    client_ctx = ssl.create_default_context(cafile="ca.pem")

    class EchoHandler(TLSChat):                       # one per accepted connection
        def __init__(self, sock, map=None):
            super().__init__(sock, map, context=server_ctx, server_side=True)
            self.set_terminator(b"\n")
            self.line = []
        def collect_incoming_data(self, data):
            self.line.append(data)
        def found_terminator(self):
            self.push(b"".join(self.line) + b"\n")   # queued until the handshake is done
            self.line = []

    class Server(simnet.dispatcher):                  # the listener itself is plain
        def __init__(self, addr):
            super().__init__()
            self.create_socket()
            self.set_reuse_addr()
            self.bind(addr)
            self.listen(5)
        def handle_accepted(self, sock, addr):
            EchoHandler(sock)

    class Client(TLSDispatcherWithSend):
        def __init__(self, addr):
            super().__init__(context=client_ctx, server_hostname="localhost")
            self.create_socket()
            self.connect(addr)
        def handle_connect(self):                     # called once TLS is up
            self.send(b"hello\n")
        def handle_read(self):
            print(self.recv(8192))                    # plaintext
            self.close()                              # sends close_notify, then closes

Callbacks, in asyncore's style:

* a client's ``handle_connect()`` runs when the TLS handshake has completed,
  not when TCP connects; every channel (client or server side) also gets
  :meth:`~TLSMixin.handle_tls_ready` then, whose default calls
  ``handle_connect()`` on a channel that went through ``connect()``;
* ``recv()``/``send()`` carry plaintext with asyncore's semantics: ``send``
  returns the bytes it took (0 when it would block -- during the handshake,
  or while too much ciphertext waits for the socket), ``recv`` returns
  ``b""`` and calls ``handle_close()`` at the end of the stream (the peer's
  ``close_notify``, a TCP FIN without one -- a "ragged" EOF -- or a reset);
* a handshake that fails (``ssl.SSLCertVerificationError`` for a wrong host
  name or an untrusted CA, ``ssl.SSLError`` for the alert the peer sent back)
  is raised inside the loop, so it reaches ``handle_error()`` like any other
  handler exception; a peer that hangs up mid-handshake (``SSLEOFError``) is
  ``handle_close()``;
* :meth:`~TLSMixin.unwrap` starts the TLS shutdown (``close_notify``); when
  both sides have sent theirs, :meth:`~TLSMixin.handle_unwrapped` runs and
  the channel carries plaintext from then on. ``close()`` on an established
  session sends ``close_notify`` (best effort) before closing the socket.

Readiness is the part hand-written asyncore TLS code usually gets wrong. The
channel decrypts everything the socket delivered and hands it to
``handle_read()`` until the application has taken it all (or stops being
``readable()``), and it reports ``writable()`` while decrypted bytes wait for
a readable application, because the socket will not become readable again
for bytes that already left it -- the classic stall with bytes stuck in the
SSL buffer. Ciphertext the socket did not take stays buffered and makes the
channel ``writable()`` until it is out. A subclass may override
``readable()``/``writable()`` as with any dispatcher: the TLS needs are
combined with the override automatically (see :class:`TLSMixin`).
"""

from __future__ import annotations

import errno
import functools
import ssl
from typing import Any

from simnet import asynchat, asyncore
from simnet.asyncore import _DISCONNECTED

__all__ = ["TLSSocket", "TLSMixin", "TLSDispatcher", "TLSDispatcherWithSend", "TLSChat"]

#: :attr:`TLSSocket.state` values.
CONNECTING = "connecting"  # TCP not connected yet; no TLS session
HANDSHAKE = "handshake"    # handshake in progress
OPEN = "open"              # established: plaintext in, ciphertext out
CLOSING = "closing"        # unwrap() sent close_notify; waiting for the peer's
PLAIN = "plain"            # unwrapped: the socket carries plaintext again
FAILED = "failed"          # a TLS error ended the session
CLOSED = "closed"          # close() was called

_MAX_RECORD = 16384  # plaintext bytes in one TLS record


def _would_block() -> BlockingIOError:
    return BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")


def _is_disconnect(exc: OSError) -> bool:
    """An error that means the connection is gone (closed, not reported).
    SSL errors are never that: their errno is an SSL error code."""
    return not isinstance(exc, ssl.SSLError) and exc.errno in _DISCONNECTED


class TLSSocket:
    """A TLS session over a plain non-blocking socket, used as a socket.

    A TLS channel's ``self.socket`` is one of these: ``send()`` and
    ``recv()`` take and return plaintext, raising ``BlockingIOError`` (EAGAIN)
    when they cannot proceed, so ``dispatcher.send``/``recv`` keep their
    asyncore semantics unchanged; every other socket method and attribute
    (``fileno``, ``getpeername``, ``getsockopt``, ``shutdown`` ...) is the
    underlying socket's, which is also :attr:`raw`.

    The channel drives it from its events (:meth:`pull`, :meth:`flush`,
    :meth:`handshake_step`). Useful from application code:

    * :attr:`state` -- ``"connecting"``, ``"handshake"``, ``"open"``,
      ``"closing"``, ``"plain"``, ``"failed"`` or ``"closed"``;
    * :meth:`getpeercert`, :meth:`version`, :meth:`cipher`,
      :meth:`selected_alpn_protocol`, :attr:`ssl_object`;
    * :attr:`close_notify_received` -- True when the stream ended with the
      peer's ``close_notify`` (False at a ragged EOF: possible truncation);
    * :attr:`failure` -- the exception that ended the session, if any.
    """

    #: bytes asked of the socket in one ``recv``, and of the SSL object in one ``read``
    read_size = 65536
    #: ``send()`` would block while this much ciphertext waits for the socket
    write_limit = 65536

    def __init__(self, raw: Any, context: ssl.SSLContext, server_side: bool = False,
                 server_hostname: str | None = None) -> None:
        if not isinstance(context, ssl.SSLContext):
            raise TypeError(f"context must be an ssl.SSLContext, got {type(context).__name__}")
        self.raw = raw
        self.context = context
        self.server_side = bool(server_side)
        self.server_hostname = server_hostname
        self.state = CONNECTING
        self.ssl_object: ssl.SSLObject | None = None
        self._in: ssl.MemoryBIO | None = None
        self._out: ssl.MemoryBIO | None = None
        self._wdata = b""       # ciphertext (or, unwrapped, nothing) waiting for the socket ...
        self._woff = 0          # ... from this offset
        self._plain = bytearray()  # decrypted bytes the application has not read
        self._after = bytearray()  # plaintext that followed the peer's close_notify
        self.sock_eof = False   # the socket reached end of stream (or was reset)
        self.reset = False      # ... by a reset
        self.eof = False        # the stream the application reads has ended
        self.eof_told = False   # recv() has returned b"" for it
        self.close_notify_received = False
        self.unwrapped = False  # unwrap completed; handle_unwrapped() not yet called
        self.raw_ok = False     # STARTTLS server: plaintext still goes out raw until the ClientHello
        self.failure: BaseException | None = None

    # -- the socket face ---------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name == "raw":  # not set yet: do not recurse
            raise AttributeError(name)
        return getattr(self.raw, name)

    def __repr__(self) -> str:
        extra = f" {self.version()}" if self.state in (OPEN, CLOSING) else ""
        return f"<TLSSocket {self.state}{extra} fd={self.fileno()} server_side={self.server_side}>"

    def fileno(self) -> int:
        return self.raw.fileno()

    def send(self, data: Any, flags: int = 0) -> int:
        """Encrypt and send up to one record of plaintext; return how much was taken.

        ``BlockingIOError`` when nothing can be taken now: during the
        handshake, while ``unwrap()`` is in progress, or while
        :attr:`write_limit` bytes of ciphertext wait for the socket.
        """
        st = self.state
        if st == OPEN:
            self.flush()
            if len(self._wdata) - self._woff >= self.write_limit:
                raise _would_block()
            view = memoryview(data).cast("B")[:_MAX_RECORD]
            if not len(view):
                return 0
            n = self.ssl_object.write(view)
            self.flush()
            return n
        if st == PLAIN or (st == HANDSHAKE and self.raw_ok):
            return self.raw.send(data, flags)
        if st in (CONNECTING, HANDSHAKE, CLOSING):
            raise _would_block()
        if st == FAILED:
            raise BrokenPipeError(errno.EPIPE, "the TLS session failed")
        raise OSError(errno.EBADF, "Bad file descriptor")

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Up to *bufsize* bytes of plaintext; ``b""`` at the end of the
        stream; ``BlockingIOError`` when none is available yet."""
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if not self._plain and not self.eof and not self.unwrapped and self.state in (OPEN, CLOSING, PLAIN):
            self.pull()
        if self._plain:
            data = bytes(self._plain[:bufsize])
            del self._plain[:bufsize]
            return data
        if self.eof and not self.unwrapped and not self._after:
            self.eof_told = True
            return b""
        if self.state == CONNECTING:
            return self.raw.recv(bufsize, flags)  # no TLS yet (a socket that never connected)
        if self.state == FAILED:
            return b""
        if self.state == CLOSED:
            raise OSError(errno.EBADF, "Bad file descriptor")
        raise _would_block()

    def close(self) -> None:
        """Send ``close_notify`` if the session is established (best effort,
        without waiting), then close the socket."""
        if self.state == CLOSED:
            return
        if self.state == OPEN and not self.sock_eof:
            try:
                self.ssl_object.unwrap()
            except ssl.SSLError:
                pass
            try:
                self.flush()
            except OSError:
                pass
        self.state = CLOSED
        self.raw.close()

    def pending(self) -> int:
        """Decrypted bytes waiting to be read."""
        return len(self._plain)

    # -- session information -------------------------------------------------------------
    def getpeercert(self, binary_form: bool = False) -> Any:
        return None if self.ssl_object is None else self.ssl_object.getpeercert(binary_form)

    def version(self) -> str | None:
        return None if self.ssl_object is None else self.ssl_object.version()

    def cipher(self) -> Any:
        return None if self.ssl_object is None else self.ssl_object.cipher()

    def selected_alpn_protocol(self) -> str | None:
        return None if self.ssl_object is None else self.ssl_object.selected_alpn_protocol()

    @property
    def pending_output(self) -> int:
        """Bytes that wait for the socket to take them."""
        return len(self._wdata) - self._woff + (self._out.pending if self._out is not None else 0)

    # -- driving it ------------------------------------------------------------------------
    def begin(self, server_hostname: str | None) -> None:
        """Create the TLS session (the TCP connection is up)."""
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        if server_hostname is not None and not self.server_side:
            self.server_hostname = server_hostname
        self.ssl_object = self.context.wrap_bio(
            self._in, self._out, server_side=self.server_side,
            server_hostname=None if self.server_side else self.server_hostname)
        self.state = HANDSHAKE

    def handshake_step(self) -> bool:
        """Advance the handshake with what has arrived; True once it is complete.

        A TLS failure marks the session failed, sends the alert (best effort)
        and raises; disconnect errors of the socket propagate.
        """
        try:
            self.ssl_object.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            self.flush()
            return False
        except ssl.SSLError as exc:
            self._fail(exc)
            raise
        self.state = OPEN
        self.raw_ok = False
        if self._in.pending or self.sock_eof:
            self._decrypt()  # application data that came with the last flight
        self.flush()
        return True

    def pull(self) -> None:
        """One ``recv`` from the socket; decrypt what it brought.

        Would-block is nothing; a reset is an end of stream. Decrypted bytes go
        to the read buffer; the peer's ``close_notify`` ends the stream (or,
        after :meth:`start_unwrap`, completes the unwrap).
        """
        st = self.state
        if st in (CONNECTING, FAILED, CLOSED) or self.sock_eof:
            return
        try:
            data = self.raw.recv(self.read_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if not _is_disconnect(exc):
                raise
            data = b""
            self.reset = True
        if st == PLAIN:
            if data:
                self._plain += data
            else:
                self.sock_eof = self.eof = True
            return
        if data:
            self._in.write(data)
            self.raw_ok = False
        else:
            self.sock_eof = True
            self._in.write_eof()
        if st in (OPEN, CLOSING):
            self._decrypt()
            if self._out.pending:
                self.flush()  # what reading produced: a KeyUpdate answer, close_notify

    def flush(self) -> None:
        """Send buffered ciphertext until the socket stops taking it.
        Disconnect errors propagate."""
        out = self._out
        if out is not None and out.pending:
            self._wdata = self._wdata[self._woff:] + out.read()
            self._woff = 0
        raw = self.raw
        while self._woff < len(self._wdata):
            data = self._wdata if not self._woff else memoryview(self._wdata)[self._woff:]
            try:
                n = raw.send(data)
            except (BlockingIOError, InterruptedError):
                return
            if not n:
                return
            self._woff += n
        self._wdata = b""
        self._woff = 0

    def start_unwrap(self) -> None:
        """Send ``close_notify``; the unwrap completes when the peer's arrives."""
        if self.state != OPEN:
            raise ValueError(f"unwrap() needs an established TLS session (this one is {self.state})")
        self.state = CLOSING
        self._try_unwrap()
        self.flush()

    # -- internals -------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        self.state = FAILED
        self.failure = exc
        try:
            self.flush()  # the alert, so that the peer learns why
        except OSError:
            pass

    def _decrypt(self) -> None:
        obj = self.ssl_object
        plain = self._plain
        while True:
            try:
                chunk = obj.read(self.read_size)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except ssl.SSLZeroReturnError:
                chunk = b""
            except ssl.SSLEOFError:
                self.eof = True  # a ragged EOF: the socket ended without close_notify
                break
            except ssl.SSLError as exc:
                self._fail(exc)
                raise
            if chunk:
                plain += chunk
                continue
            # the peer's close_notify
            self.close_notify_received = True
            if self.state == CLOSING:
                self._try_unwrap()
            else:
                self.eof = True
            break

    def _try_unwrap(self) -> None:
        try:
            self.ssl_object.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except ssl.SSLError as exc:
            self._fail(exc)
            raise
        # both close_notify alerts are through: what follows is plaintext
        out = self._out
        if out.pending:
            self._wdata = self._wdata[self._woff:] + out.read()
            self._woff = 0
        self._after += self._in.read()
        self.state = PLAIN
        self.unwrapped = True
        self.eof = self.sock_eof  # the TLS stream's end is not the socket's
        self.eof_told = False

    def _unwrap_notified(self) -> None:
        self.unwrapped = False
        self._plain += self._after
        self._after = bytearray()


def _compose(kind: str, app: Any) -> Any:
    """Wrap an application's ``readable``/``writable`` so that the TLS layer's
    needs are combined with it."""
    if kind == "readable":
        def readable(self: Any) -> bool:
            return self._tls_readable(app)
        fn = readable
    else:
        def writable(self: Any) -> bool:
            return self._tls_writable(app)
        fn = writable
    functools.update_wrapper(fn, app)
    fn._tls_app = app
    return fn


class TLSMixin:
    """TLS for a dispatcher class: put it first among the bases.

    ``class MyChannel(TLSMixin, simnet.async_chat)`` is what :class:`TLSChat`
    is. The mixin takes over ``self.socket`` (a :class:`TLSSocket`), the
    dispatcher's events (``handle_read_event``, ``handle_write_event``,
    ``handle_connect_event``) and ``set_socket``; the application keeps the
    ``handle_*`` callbacks, ``send``/``recv`` and ``readable``/``writable``.

    ``readable()``/``writable()`` overrides need no care: when a subclass
    (or a base after the mixin) defines them, the class is given a version
    that asks the TLS layer first -- the handshake and the shutdown read and
    write whatever the application says, and unsent ciphertext or undelivered
    plaintext keeps the channel ``writable()`` -- and the application's
    answer otherwise, so a ``writable()`` that says "only when my buffer has
    data" can neither stall the handshake nor leave a partial record behind.
    """

    _tls: TLSSocket | None = None
    _tls_config: tuple | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for kind in ("readable", "writable"):
            fn = getattr(cls, kind, None)
            if fn is not None and getattr(fn, "_tls_app", None) is None:
                setattr(cls, kind, _compose(kind, fn))

    def __init__(self, sock: Any = None, map: Any = None, *, context: ssl.SSLContext | None = None,
                 server_side: bool = False, server_hostname: str | None = None, **kwargs: Any) -> None:
        if context is not None and not isinstance(context, ssl.SSLContext):
            raise TypeError(f"context must be an ssl.SSLContext or None, got {type(context).__name__}")
        self._tls = None
        self._tls_config = None if context is None else (context, server_side, server_hostname)
        self._tls_connect_callback = False
        super().__init__(sock, map, **kwargs)
        if self._tls is not None and self.connected:
            self._tls_begin()

    # -- public API --------------------------------------------------------------------------
    def handle_tls_ready(self) -> None:
        """The handshake has completed. The default calls ``handle_connect()``
        on a channel that connected with ``connect()`` (not on accepted
        channels, nor after :meth:`start_tls`)."""
        if self._tls_connect_callback:
            self._tls_connect_callback = False
            self.handle_connect()

    def handle_unwrapped(self) -> None:
        """Both ``close_notify`` alerts are through (after :meth:`unwrap`): the
        channel now carries plaintext. Plaintext the peer sent after its
        ``close_notify`` is delivered after this call. The default does
        nothing; close here for a graceful TLS close."""

    def unwrap(self) -> None:
        """Start the TLS shutdown: send ``close_notify`` now; when the peer's
        arrives, :meth:`handle_unwrapped` runs and the channel is plaintext.

        Application data the peer sends before its ``close_notify`` is still
        delivered. Plaintext ``send()`` returns 0 until the unwrap completes
        (so queued output waits and then goes out in the clear). Calling it
        after the peer's ``close_notify`` (e.g. from ``handle_close()``)
        completes at once, and :meth:`handle_unwrapped` follows from the loop.
        """
        tls = self._tls
        if tls is None:
            raise ValueError("unwrap() on a channel without TLS")
        try:
            tls.start_unwrap()
        except OSError as exc:
            if _is_disconnect(exc):
                self.handle_close()
                return
            raise

    def start_tls(self, context: ssl.SSLContext, *, server_side: bool = False,
                  server_hostname: str | None = None) -> None:
        """Upgrade a plaintext channel to TLS (STARTTLS), or re-secure an
        unwrapped one. The handshake starts at once if the socket is connected.

        Server side: output queued before the call (the "go ahead" reply)
        still goes out in plaintext, until the client's first TLS bytes
        arrive. Client side: call it when your plaintext output is sent. Any
        bytes already read past the command belong to the application.
        """
        tls = self._tls
        if tls is not None:
            if tls.state != PLAIN:
                raise ValueError(f"start_tls(): TLS is already in use (state {tls.state})")
            if tls._plain or tls._after or tls.unwrapped:
                raise ValueError("start_tls(): plaintext received after the unwrap is still unread")
            raw = tls.raw
        else:
            raw = self.socket
        new = TLSSocket(raw, context, server_side, server_hostname)
        new.raw_ok = bool(server_side)
        if tls is not None:
            new.sock_eof = tls.sock_eof
        self._tls_config = (context, server_side, server_hostname)
        self._tls = new
        self.socket = new
        if self.connected:
            self._tls_begin()

    # -- the dispatcher's socket and events --------------------------------------------------
    def set_socket(self, sock: Any, map: Any = None) -> None:
        if self._tls_config is not None and not isinstance(sock, TLSSocket):
            sock = TLSSocket(sock, *self._tls_config)
        if isinstance(sock, TLSSocket):
            self._tls = sock
        super().set_socket(sock, map)

    def handle_connect_event(self) -> None:
        tls = self._tls
        if tls is None:
            return super().handle_connect_event()
        sock_mod = asyncore.socket  # read at call time, as asyncore does
        err = self.socket.getsockopt(sock_mod.SOL_SOCKET, sock_mod.SO_ERROR)
        if err != 0:
            raise OSError(err, asyncore._strerror(err))
        self.connected = True
        self.connecting = False
        self._tls_connect_callback = True
        self._tls_begin()

    def handle_read_event(self) -> None:
        tls = self._tls
        if tls is None or self.accepting:
            return super().handle_read_event()
        if tls.state == CONNECTING:
            if self.connecting:
                self.handle_connect_event()
                return
            return super().handle_read_event()  # never connected: as asyncore (recv() sees EOF)
        self._tls_event(tls, True)

    def handle_write_event(self) -> None:
        tls = self._tls
        if tls is None or self.accepting:
            return super().handle_write_event()
        if tls.state == CONNECTING:
            if self.connecting:
                self.handle_connect_event()
                return
            return super().handle_write_event()  # never connected: as asyncore
        self._tls_event(tls, False)

    # -- readiness ---------------------------------------------------------------------------
    def _app_readable(self) -> bool:
        app = getattr(type(self).readable, "_tls_app", None)
        return True if app is None else app(self)

    def _app_writable(self) -> bool:
        app = getattr(type(self).writable, "_tls_app", None)
        return True if app is None else app(self)

    def _tls_readable(self, app: Any) -> bool:
        tls = self._tls
        if tls is None or self.accepting:
            return app(self)
        st = tls.state
        if st == CONNECTING:
            return app(self)
        if st in (HANDSHAKE, CLOSING):
            return not tls.sock_eof
        if st in (OPEN, PLAIN):
            return not tls.sock_eof and app(self)
        return False

    def _tls_writable(self, app: Any) -> bool:
        tls = self._tls
        if tls is None or self.accepting:
            return app(self)
        st = tls.state
        if st == CONNECTING:
            return True if self.connecting else app(self)
        if tls.pending_output:
            return True
        if st == HANDSHAKE:
            return tls.raw_ok and app(self)
        if st in (OPEN, CLOSING, PLAIN):
            if tls.unwrapped:
                return True
            if (tls._plain or (tls.eof and not tls.eof_told)) and self._app_readable():
                return True  # bytes the socket will not announce again
            return st != CLOSING and app(self)
        return False

    # -- the engine ---------------------------------------------------------------------------
    def _tls_begin(self) -> None:
        tls = self._tls
        hostname = tls.server_hostname
        if hostname is None and not tls.server_side:
            addr = self.addr
            if isinstance(addr, tuple) and addr and isinstance(addr[0], str):
                hostname = addr[0]
        tls.begin(hostname)
        if self._tls_handshake(tls):
            self._tls_deliver(tls)

    def _tls_handshake(self, tls: TLSSocket) -> bool:
        """One handshake step; True when the session is up (and still open)."""
        try:
            done = tls.handshake_step()
        except ssl.SSLEOFError:
            self.handle_close()  # the peer hung up mid-handshake
            return False
        except OSError as exc:
            if _is_disconnect(exc):
                self.handle_close()
                return False
            raise  # a TLS failure: handle_error() gets it
        if not done:
            return False
        self.handle_tls_ready()
        return self._tls is tls and tls.state in (OPEN, CLOSING, PLAIN)

    def _tls_event(self, tls: TLSSocket, reading: bool) -> None:
        try:
            if reading:
                tls.pull()
            else:
                tls.flush()
        except OSError as exc:
            if _is_disconnect(exc):
                self.handle_close()
                return
            raise
        if tls.state == HANDSHAKE:
            if not reading:
                if tls.raw_ok and self._app_writable():
                    self.handle_write()  # STARTTLS: the plaintext reply
                return
            if not self._tls_handshake(tls):
                return
        self._tls_deliver(tls)
        if (not reading and self._tls is tls and tls.state in (OPEN, PLAIN)
                and self._app_writable()):
            self.handle_write()

    def _tls_deliver(self, tls: TLSSocket) -> None:
        """Hand buffered plaintext (and then the end of the stream) to
        ``handle_read()`` until it is all taken, the application stops being
        readable, or a call takes nothing."""
        while self._tls is tls and tls.state in (OPEN, CLOSING, PLAIN):
            if tls._plain:
                if not self._app_readable():
                    return
                before = len(tls._plain)
                self.handle_read()
                if len(tls._plain) >= before:
                    return
            elif tls.unwrapped:
                tls._unwrap_notified()
                self.handle_unwrapped()
            elif tls.eof and not tls.eof_told:
                if not self._app_readable():
                    return
                self.handle_read()  # recv() returns b"" and calls handle_close()
                if tls.eof and not tls.eof_told:
                    return
            else:
                return


class TLSDispatcher(TLSMixin, asyncore.dispatcher):
    """``asyncore.dispatcher`` with TLS (see the module documentation).

    ``TLSDispatcher(sock=None, map=None, *, context=None, server_side=False,
    server_hostname=None)``.
    """


class TLSDispatcherWithSend(TLSMixin, asyncore.dispatcher_with_send):
    """``asyncore.dispatcher_with_send`` with TLS: ``send()`` queues plaintext,
    which the loop encrypts and sends once the handshake is done."""


class _UnwrapWhenDone:
    """A producer that calls ``unwrap()`` when ``initiate_send`` reaches it."""

    def __init__(self, channel: TLSMixin) -> None:
        self.channel = channel

    def more(self) -> bytes:
        channel, self.channel = self.channel, None
        if channel is not None and channel._tls is not None and channel._tls.state == OPEN:
            channel.unwrap()
        return b""


class TLSChat(TLSMixin, asynchat.async_chat):
    """``asynchat.async_chat`` with TLS. ``push()`` before the handshake is
    done queues the data; it is sent encrypted once the session is up."""

    def unwrap_when_done(self) -> None:
        """Call :meth:`unwrap` once everything pushed so far has been sent.
        Data pushed afterwards goes out in plaintext, after the unwrap."""
        self.producer_fifo.append(_UnwrapWhenDone(self))
