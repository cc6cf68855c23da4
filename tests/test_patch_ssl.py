"""The standard ``ssl`` module on fake sockets inside ``net.patch()``.

Servers here are written as users write them with the plain ``ssl`` module:
asyncore/asynchat channels that wrap their sockets with
``SSLContext.wrap_socket(..., server_side=True, do_handshake_on_connect=False)``
and drive the handshake on non-blocking sockets. Clients are the unmodified
stdlib ones. Certificates come from ``trustme`` (RSA keys, so handshake sizes
are the same in every run) and are verified for real.

What is checked:

* ``smtplib.SMTP.starttls()`` upgrades a session and a message goes through;
* ``http.client.HTTPSConnection`` makes 3 keep-alive requests on one connection;
* a wrong hostname raises ``ssl.SSLCertVerificationError`` in the client while
  the server keeps serving the next client;
* ``ftplib.FTP_TLS`` (AUTH TLS, PROT P, a TLS data connection closed with
  close_notify both ways, ``unwrap``) downloads a file;
* each on the fake network twice (same results, same virtual time, same trace)
  and on real loopback (the server loop in a thread);
* the wrapped fake socket is an ``ssl.SSLSocket``; ``do_handshake_on_connect``
  both ways, ``pending``, ``unwrap`` back to plaintext, ``sendfile`` (the
  ``send()`` fallback), and data sent right behind the last handshake message
  is not stalled (the socket still polls readable);
* faults act on the ciphertext: one-byte partial sends and 3-byte short reads
  are survived, a reset in the handshake reaches the client.
"""

from __future__ import annotations

import ftplib
import http.client
import select
import smtplib
import socket
import ssl
import threading

import pytest

trustme = pytest.importorskip("trustme")

import simnet  # noqa: E402
from simnet.fakesock import FakeNetwork  # noqa: E402

CA = trustme.CA(key_type=trustme.KeyType.RSA)
CERT = CA.issue_cert("localhost", key_type=trustme.KeyType.RSA)  # not valid for 127.0.0.1


def server_context():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    CERT.configure_cert(ctx)
    return ctx


def client_context():
    ctx = ssl.create_default_context()
    CA.configure_trust(ctx)
    return ctx


class TLSChannelMixin:
    """Plain-ssl TLS for an asynchat channel, the classic way."""

    handshaking = False

    def start_tls(self, ctx):
        self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.handshaking = True

    def _handshake(self):
        try:
            self.socket.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (ssl.SSLError, OSError) as exc:
            self.server.failures.append(type(exc).__name__)
            self.close()
            return
        self.handshaking = False

    def handle_read_event(self):
        if self.handshaking:
            self._handshake()
        else:
            super().handle_read_event()

    def handle_write_event(self):
        if self.handshaking:
            self._handshake()
        else:
            super().handle_write_event()

    def readable(self):
        return True if self.handshaking else super().readable()

    def writable(self):
        return False if self.handshaking else super().writable()

    def recv(self, n):
        try:
            return super().recv(n)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError from None

    def send(self, data):
        try:
            return super().send(data)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return 0


class SMTPChannel(TLSChannelMixin, simnet.async_chat):
    def __init__(self, sock, server):
        super().__init__(sock, map=server._map)
        self.server = server
        self.set_terminator(b"\r\n")
        self.buf = []
        self.in_data = False
        self.push(b"220 localhost ESMTP\r\n")

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        line = b"".join(self.buf).decode()
        self.buf = []
        if self.in_data:
            if line == ".":
                self.in_data = False
                self.server.messages.append(self.message)
                self.push(b"250 OK queued\r\n")
            else:
                self.message.append(line)
            return
        cmd = line[:4].upper()
        tls = isinstance(self.socket, ssl.SSLSocket)
        if cmd == "EHLO":
            self.push(b"250-localhost\r\n" + (b"" if tls else b"250-STARTTLS\r\n") + b"250 8BITMIME\r\n")
        elif cmd == "STAR":
            self.push(b"220 Ready to start TLS\r\n")
            self.initiate_send()
            assert not self.producer_fifo
            self.start_tls(self.server.ctx)
        elif cmd in ("MAIL", "RCPT"):
            self.push(b"250 OK\r\n")
        elif cmd == "DATA":
            self.in_data = True
            self.message = []
            self.push(b"354 go ahead\r\n")
        elif cmd == "QUIT":
            self.push(b"221 bye\r\n")
            self.close_when_done()
        else:
            self.push(b"502 what?\r\n")


class HTTPSChannel(TLSChannelMixin, simnet.async_chat):
    def __init__(self, sock, server):
        super().__init__(sock, map=server._map)
        self.server = server
        self.set_terminator(b"\r\n\r\n")
        self.buf = []
        self.start_tls(server.ctx)

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        request = b"".join(self.buf).decode()
        self.buf = []
        path = request.split()[1]
        self.server.requests.append(path)
        body = f"you asked for {path}\n".encode()
        self.push(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s"
                  % (len(body), body))


class Server(simnet.dispatcher):
    def __init__(self, address, channel, map):
        super().__init__(map=map)
        self.channel = channel
        self.ctx = server_context()
        self.messages = []
        self.requests = []
        self.failures = []
        self.accepted = 0
        self.create_socket()
        self.set_reuse_addr()
        self.bind(address)
        self.listen(5)
        self.port = self.socket.getsockname()[1]

    def handle_accepted(self, sock, addr):
        self.accepted += 1
        self.channel(sock, self)


def smtp_session(port):
    with smtplib.SMTP("localhost", port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        smtp.starttls(context=client_context())
        assert isinstance(smtp.sock, ssl.SSLSocket)
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        smtp.sendmail("a@example.org", ["b@example.org"], "Subject: hi\r\n\r\nover TLS\r\n")
        return smtp.sock.version()


def https_session(port):
    conn = http.client.HTTPSConnection("localhost", port, timeout=30, context=client_context())
    bodies = []
    socks = set()
    for path in ("/a", "/b", "/c"):
        conn.request("GET", path)
        resp = conn.getresponse()
        bodies.append((resp.status, resp.read()))
        socks.add(id(conn.sock))
    conn.close()
    bad = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=client_context())
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch|doesn't match"):
        bad.request("GET", "/wrong-host")
    bad.close()
    conn2 = http.client.HTTPSConnection("localhost", port, timeout=30, context=client_context())
    conn2.request("GET", "/after")
    after = conn2.getresponse().read()
    conn2.close()
    return bodies, len(socks), after


def _on_fake(seed, session, channel):
    with FakeNetwork(seed=seed, trace=True) as net, net.patch():
        m = {}
        server = Server(("127.0.0.1", 4465), channel, m)
        net.add_pump(lambda: simnet.poll(0.0, m))
        result = session(server.port)
        simnet.close_all(m)
        crcs = [list(ev) for ev in net.trace.events]
        return result, server, net.time(), crcs


def _on_loopback(session, channel):
    m = {}
    server = Server(("127.0.0.1", 0), channel, m)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            simnet.loop(timeout=0.05, map=m, count=1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = session(server.port)
    finally:
        stop.set()
        thread.join(5)
        simnet.close_all(m)
    return result, server


def test_smtplib_starttls_against_a_plain_ssl_server_on_the_fake_network():
    version, server, now, trace = _on_fake(1, smtp_session, SMTPChannel)
    assert version == "TLSv1.3"
    assert server.messages == [["Subject: hi", "", "over TLS"]]
    again = _on_fake(1, smtp_session, SMTPChannel)
    assert (again[0], again[2], again[3]) == (version, now, trace)  # same outcome, time, trace


def test_smtplib_starttls_against_a_plain_ssl_server_on_loopback():
    version, server = _on_loopback(smtp_session, SMTPChannel)
    assert version == "TLSv1.3"
    assert server.messages == [["Subject: hi", "", "over TLS"]]


def _check_https(result, server):
    bodies, connections, after = result
    assert bodies == [(200, b"you asked for /a\n"), (200, b"you asked for /b\n"),
                      (200, b"you asked for /c\n")]
    assert connections == 1  # keep-alive: one connection for the three
    assert after == b"you asked for /after\n"  # still serving after the bad client
    assert server.requests == ["/a", "/b", "/c", "/after"]
    assert server.accepted == 3 and len(server.failures) == 1


def test_https_keep_alive_and_a_wrong_hostname_on_the_fake_network():
    result, server, now, trace = _on_fake(2, https_session, HTTPSChannel)
    _check_https(result, server)
    again = _on_fake(2, https_session, HTTPSChannel)
    assert (again[0], again[2], again[3]) == (result, now, trace)


def test_https_keep_alive_and_a_wrong_hostname_on_loopback():
    _check_https(*_on_loopback(https_session, HTTPSChannel))


def _pair(net):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 443))
    srv.listen()
    c = socket.create_connection(("127.0.0.1", 443))
    s, _ = srv.accept()
    srv.close()
    return c, s


def test_ssl_socket_api_on_a_fake_socket(tmp_path):
    with FakeNetwork(seed=3) as net, net.patch():
        c, s = _pair(net)
        s.setblocking(False)
        ss = server_context().wrap_socket(s, server_side=True, do_handshake_on_connect=False)
        assert isinstance(ss, ssl.SSLSocket) and ss.fileno() == s.fileno()
        with pytest.raises(ssl.SSLWantReadError):
            ss.do_handshake()  # non-blocking, nothing from the client yet
        ctx = client_context()
        # TLS 1.2: the server's last handshake message and its first data arrive together
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        cs = ctx.wrap_socket(c, server_hostname="localhost", do_handshake_on_connect=False)
        assert cs.version() is None  # no handshake yet
        state = {}

        def server_step():
            try:
                if not state.get("up"):
                    ss.do_handshake()
                    state["up"] = True
                    ss.send(b"right behind the handshake")
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass

        net.add_pump(server_step)
        cs.do_handshake()
        assert cs.version() == "TLSv1.2" and cs.getpeercert()["subject"]
        assert state["up"]  # the server finished and sent its data before the client read
        net.remove_pump(server_step)
        # the application data is still in the socket, so the socket polls readable
        assert select.select([cs], [], [], 0)[0] == [cs]
        assert cs.recv(5) == b"right"
        assert cs.pending() == len(b" behind the handshake")
        assert cs.recv(100) == b" behind the handshake"
        path = tmp_path / "f.txt"
        path.write_bytes(b"file over tls" * 100)
        with open(path, "rb") as f:
            assert cs.sendfile(f) == 1300
        got = b""
        while len(got) < 1300:
            try:
                got += ss.recv(4096)
            except ssl.SSLWantReadError:
                net.sleep(0.001)
        assert got == b"file over tls" * 100
        cs.close()
        ss.close()


def test_unwrap_returns_to_plaintext():
    with FakeNetwork(seed=4) as net, net.patch():
        c, s = _pair(net)
        ss = server_context().wrap_socket(s, server_side=True, do_handshake_on_connect=False)
        s.setblocking(False)
        steps = []

        def server_step():
            try:
                if not steps:
                    ss.do_handshake()
                    steps.append("up")
                elif steps == ["up"]:
                    plain = ss.unwrap()
                    steps.append(plain)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass

        net.add_pump(server_step)
        cs = client_context().wrap_socket(c, server_hostname="localhost")
        plain = cs.unwrap()
        assert plain is c and isinstance(steps[1], type(s))
        net.remove_pump(server_step)
        plain.sendall(b"in the clear")
        s.setblocking(True)
        assert s.recv(100) == b"in the clear"
        c.close()
        s.close()


def test_faults_act_on_the_ciphertext_underneath():
    from simnet import Rule

    # one-byte partial sends and short reads of ciphertext: TLS still gets through
    plan = [Rule("partial_send", max_bytes=1), Rule("short_read", max_bytes=3)]
    with FakeNetwork(seed=5, faults=plan) as net, net.patch():
        m = {}
        server = Server(("127.0.0.1", 4465), HTTPSChannel, m)
        net.add_pump(lambda: simnet.poll(0.0, m))
        conn = http.client.HTTPSConnection("localhost", server.port, timeout=30, context=client_context())
        conn.request("GET", "/slow")
        assert conn.getresponse().read() == b"you asked for /slow\n"
        conn.close()
        assert min(net.faults.fired) > 10  # both rules fired, on the ciphertext
        simnet.close_all(m)
    # a reset in the middle of the handshake: the client sees the connection die
    plan = [Rule("disconnect", mode="rst", after_bytes=100, where={"side": "server"})]
    with FakeNetwork(seed=5, faults=plan) as net, net.patch():
        m = {}
        server = Server(("127.0.0.1", 4465), HTTPSChannel, m)
        net.add_pump(lambda: simnet.poll(0.0, m))
        conn = http.client.HTTPSConnection("localhost", server.port, timeout=30, context=client_context())
        with pytest.raises((ConnectionResetError, ssl.SSLError)):
            conn.request("GET", "/reset")
        conn.close()
        simnet.close_all(m)


# -- ftplib.FTP_TLS against an FTPS server on the plain ssl module ------------------------
class FTPSData(simnet.dispatcher):
    """One TLS data connection: handshake, send the file, close_notify both ways."""

    def __init__(self, sock, control, payload):
        super().__init__(sock, map=control._map)
        self.control = control
        self.out = payload
        self.socket = control.server.ctx.wrap_socket(self.socket, server_side=True,
                                                     do_handshake_on_connect=False)
        self.phase = "handshake"

    def readable(self):
        return True

    def writable(self):
        return self.phase != "unwrap"

    def _step(self):
        try:
            if self.phase == "handshake":
                self.socket.do_handshake()
                self.phase = "send"
            if self.phase == "send":
                while self.out:
                    self.out = self.out[self.socket.send(self.out[:16384]):]
                self.phase = "unwrap"
            if self.phase == "unwrap":
                self.socket.unwrap()
                self.close()
                self.control.push(b"226 Transfer complete.\r\n")
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass

    def handle_read(self):
        self._step()

    def handle_write(self):
        self._step()


class FTPSPassive(simnet.dispatcher):
    def __init__(self, control):
        super().__init__(map=control._map)
        self.control = control
        self.create_socket()
        self.bind((control.socket.getsockname()[0], 0))
        self.listen(1)
        self.sock = None

    def handle_accepted(self, sock, addr):
        self.sock = sock
        self.close()
        self.control.maybe_start()


class FTPSControl(TLSChannelMixin, simnet.async_chat):
    FILES = {"data.bin": bytes(range(256)) * 400}

    def __init__(self, sock, server):
        super().__init__(sock, map=server._map)
        self.server = server
        self.set_terminator(b"\r\n")
        self.buf = []
        self.passive = None
        self.want = None
        self.push(b"220 FTPS ready\r\n")

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def maybe_start(self):
        if self.passive is not None and self.passive.sock is not None and self.want is not None:
            FTPSData(self.passive.sock, self, self.FILES[self.want])
            self.passive = self.want = None

    def found_terminator(self):
        line = b"".join(self.buf).decode()
        self.buf = []
        cmd, _, arg = line.partition(" ")
        cmd = cmd.upper()
        replies = {"USER": b"331 ok", "PASS": b"230 in", "PBSZ": b"200 PBSZ=0",
                   "PROT": b"200 Protection set to Private", "TYPE": b"200 ok"}
        if cmd in replies:
            self.push(replies[cmd] + b"\r\n")
        elif cmd == "AUTH":
            self.push(b"234 AUTH TLS successful\r\n")
            self.initiate_send()
            self.start_tls(self.server.ctx)
        elif cmd == "PASV":
            self.passive = FTPSPassive(self)
            host, port = self.passive.socket.getsockname()[:2]
            self.push(f"227 Entering Passive Mode ({host.replace('.', ',')},{port >> 8},{port & 255}).\r\n".encode())
        elif cmd == "RETR":
            self.want = arg
            self.push(b"150 Here it comes.\r\n")
            self.maybe_start()
        elif cmd == "QUIT":
            self.push(b"221 bye\r\n")
            self.close_when_done()
        else:
            self.push(b"502 no\r\n")


def ftps_session(port):
    with ftplib.FTP_TLS(context=client_context(), timeout=30) as ftp:
        ftp.connect("localhost", port)
        ftp.login()  # AUTH TLS first
        ftp.prot_p()
        chunks = []
        ftp.retrbinary("RETR data.bin", chunks.append)
        return b"".join(chunks)


def test_ftplib_ftp_tls_on_the_fake_network():
    got, server, now, trace = _on_fake(6, ftps_session, FTPSControl)
    assert got == FTPSControl.FILES["data.bin"]
    again = _on_fake(6, ftps_session, FTPSControl)
    assert (again[0], again[2], again[3]) == (got, now, trace)


def test_ftplib_ftp_tls_on_loopback():
    got, server = _on_loopback(ftps_session, FTPSControl)
    assert got == FTPSControl.FILES["data.bin"]


def test_wrapping_before_connect_and_a_wrapped_listener():
    with FakeNetwork(seed=7) as net, net.patch():
        listener = server_context().wrap_socket(socket.socket(), server_side=True,
                                                do_handshake_on_connect=False)
        listener.bind(("127.0.0.1", 4443))
        listener.listen()
        client = client_context().wrap_socket(socket.socket(), server_hostname="localhost",
                                              do_handshake_on_connect=False)
        client.connect(("127.0.0.1", 4443))  # TCP only: the handshake is the caller's
        conn, addr = listener.accept()  # wrapped as the listener says: no handshake yet
        assert isinstance(conn, ssl.SSLSocket) and conn.server_side and addr == client.getsockname()
        conn.setblocking(False)

        def server_step():
            try:
                conn.do_handshake()
            except ssl.SSLWantReadError:
                pass

        net.add_pump(server_step)
        client.do_handshake()
        net.remove_pump(server_step)
        client.sendall(b"ping")
        conn.setblocking(True)
        assert conn.recv(4) == b"ping"  # (TLS 1.3: the server's handshake ends in this read)
        assert conn.version() == client.version() == "TLSv1.3"
        with pytest.raises(ValueError, match="already-connected"):
            client.connect(("127.0.0.1", 4443))
        for s in (client, conn, listener):
            s.close()
