"""simnet.tls: TLS for dispatcher programs, on the fake network and on loopback.

Fake-network tests run in virtual time (milliseconds of real time, faults
included); real-network tests use 127.0.0.1, run a bounded number of loop
passes under a deadline, and the ``real_net`` fixture fails any test that
leaves a file descriptor open.
"""

from __future__ import annotations

import socket
import ssl
import sys
import time
from types import SimpleNamespace

import pytest

trustme = pytest.importorskip("trustme")

import simnet  # noqa: E402
from simnet import Rule  # noqa: E402
from simnet.fakesock import Deadlock, FakeNetwork, SimulationTimeout  # noqa: E402
from simnet.tls import TLSChat, TLSDispatcher, TLSDispatcherWithSend, TLSSocket  # noqa: E402


# -- certificates and contexts -------------------------------------------------------

@pytest.fixture(scope="module")
def pki():
    ca = trustme.CA()
    return SimpleNamespace(ca=ca, other_ca=trustme.CA(),
                           localhost=ca.issue_cert("localhost"),
                           mail=ca.issue_cert("mail.example"))


def server_context(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    return ctx


def client_context(ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(ctx)
    return ctx


# -- running the loop on either network ----------------------------------------------

def run_until(net, cond, m, *, timeout=30.0, poller="select"):
    """Run the loop on map *m* until ``cond()``: in virtual time on a fake
    network, else at most 2000 passes of at most 50 ms, within 10 seconds."""
    if net.is_fake:
        net.run(until=cond, map=m, timeout=timeout, poller=poller)
        return
    deadline = time.monotonic() + 10.0
    for _ in range(2000):
        if cond():
            return
        if time.monotonic() > deadline:
            break
        simnet.loop(timeout=0.05, map=m, count=1, poller=poller)
    assert cond(), "the condition did not hold within the pass/time budget"


# -- channels ------------------------------------------------------------------------

class Listener(simnet.dispatcher):
    """A plain listener: the accepted sockets get TLS in their handler."""

    def __init__(self, m, factory):
        super().__init__(map=m)
        self.factory = factory
        self.handlers = []
        self.create_socket()
        self.set_reuse_addr()
        self.bind(("127.0.0.1", 0))
        self.listen(5)
        self.address = self.socket.getsockname()

    def handle_accepted(self, sock, addr):
        self.handlers.append(self.factory(sock, self._map))


class Recorder:
    """Callback bookkeeping shared by the test channels."""

    def _init_record(self):
        self.events = []
        self.errors = []
        self.closes = 0

    def handle_tls_ready(self):
        self.events.append("tls ready")
        super().handle_tls_ready()

    def handle_unwrapped(self):
        self.events.append("unwrapped")

    def handle_close(self):
        self.closes += 1
        self.events.append("close")
        self.close()

    def handle_error(self):
        self.errors.append(sys.exc_info()[1])
        self.events.append("error")
        self.close()


class LineEcho(Recorder, TLSChat):
    """Server side: echoes each line; may push a greeting before the handshake."""

    def __init__(self, sock, m, context, greeting=b""):
        self._init_record()
        super().__init__(sock, m, context=context, server_side=True)
        self.set_terminator(b"\n")
        self.buf = []
        self.lines = []
        if greeting:
            self.push(greeting)  # queued: sent once the session is up

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        line = b"".join(self.buf)
        self.buf = []
        self.lines.append(line)
        self.push(line + b"\n")


class Client(Recorder, TLSDispatcherWithSend):
    """Connects, sends *payload* once TLS is up, collects what comes back."""

    def __init__(self, addr, m, context, hostname="localhost", payload=b"", read_size=8192):
        self._init_record()
        super().__init__(map=m, context=context, server_hostname=hostname)
        self.payload = payload
        self.read_size = read_size
        self.received = bytearray()
        self.create_socket()
        self.connect(addr)

    def handle_connect(self):
        self.events.append("connect")
        if self.payload:
            self.send(self.payload)

    def handle_read(self):
        self.received += self.recv(self.read_size)


def lines(n, width=40):
    return b"".join(b"%05d " % i + b"x" * width + b"\n" for i in range(n))


def close_and_check(m):
    simnet.close_all(m)
    assert not m


# -- echo ----------------------------------------------------------------------------

@pytest.mark.parametrize("poller", ["select", "poll"])
def test_echo_on_both_networks(net, pki, poller):
    m = {}
    sctx, cctx = server_context(pki.localhost), client_context(pki.ca)
    payload = lines(500)  # ~23 KB: several records each way
    lst = Listener(m, lambda sock, m: LineEcho(sock, m, sctx, greeting=b"hello\n"))
    client = Client(lst.address, m, cctx, payload=payload)
    try:
        expected = b"hello\n" + payload
        run_until(net, lambda: len(client.received) >= len(expected), m, poller=poller)
        assert bytes(client.received) == expected
        assert client.events == ["tls ready", "connect"] and not client.errors
        server = lst.handlers[0]
        assert server.events == ["tls ready"]
        assert client.socket.version() == server.socket.version() == "TLSv1.3"
        assert client.socket.getpeercert()["subjectAltName"] == (("DNS", "localhost"),)
        # a close() sends close_notify: the server sees a clean end of stream
        client.close()
        run_until(net, lambda: server.closes, m, poller=poller)
        assert server.socket.close_notify_received and not server.errors
        assert server.events == ["tls ready", "close"]
    finally:
        close_and_check(m)


@pytest.mark.parametrize("poller", ["select", "poll", "epoll"])
def test_echo_on_loopback(real_net, pki, poller):
    m = {}
    lst = Listener(m, lambda sock, m: LineEcho(sock, m, server_context(pki.localhost)))
    payload = lines(2000)  # ~90 KB: more than the ciphertext write limit
    client = Client(lst.address, m, client_context(pki.ca), payload=payload)
    try:
        run_until(real_net, lambda: len(client.received) >= len(payload), m, poller=poller)
        assert bytes(client.received) == payload
        assert lst.handlers[0].lines == payload.split(b"\n")[:-1]
        assert not client.errors and not lst.handlers[0].errors
    finally:
        close_and_check(m)


PLANS = {
    "1-byte partial sends + EAGAIN": [Rule("partial_send", max_bytes=1),
                                      Rule("eagain", op="send", where={"probability": 0.3})],
    "random partial sends": [Rule("partial_send"), Rule("eagain", op="send", where={"probability": 0.5})],
    "1-byte reads + EAGAIN": [Rule("short_read", max_bytes=1),
                              Rule("eagain", op="recv", where={"probability": 0.3})],
    "latency and jitter": [Rule("latency", latency=0.01, jitter=0.02, bandwidth=100_000),
                           Rule("short_read")],
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("plan", list(PLANS), ids=list(PLANS))
def test_echo_under_faults(pki, plan, seed):
    payload = lines(60)  # ~2.8 KB; the handshake is ~3 KB more
    with FakeNetwork(seed=seed, faults=PLANS[plan]) as net:
        m = {}
        lst = Listener(m, lambda sock, m: LineEcho(sock, m, server_context(pki.localhost),
                                                   greeting=b"hello\n"))
        client = Client(lst.address, m, client_context(pki.ca), payload=payload, read_size=7)
        expected = b"hello\n" + payload
        net.run(until=lambda: len(client.received) >= len(expected), map=m, timeout=120)
        assert bytes(client.received) == expected
        assert not client.errors and not lst.handlers[0].errors
        assert sum(net.faults.fired) > 0
        server = lst.handlers[0]
        client.close()
        net.run(until=lambda: server.closes, map=m, timeout=60)
        assert not server.errors
        close_and_check(m)


# -- handshake failures ------------------------------------------------------------------

def _failed_handshake(net, pki, cctx, hostname, server_cert):
    m = {}
    lst = Listener(m, lambda sock, m: LineEcho(sock, m, server_context(server_cert)))
    client = Client(lst.address, m, cctx, hostname=hostname, payload=b"secret\n")
    try:
        run_until(net, lambda: client.errors and lst.handlers and
                  (lst.handlers[0].errors or lst.handlers[0].closes), m)
        server = lst.handlers[0]
        assert "connect" not in client.events and "tls ready" not in client.events
        assert "tls ready" not in server.events and not server.lines
        assert client.socket.state == "closed" and client.socket.failure is client.errors[0]
        run_until(net, lambda: not m.keys() - {lst._fileno}, m)  # both channels closed
        return client.errors, server
    finally:
        close_and_check(m)


def server_saw_alert(net, server, alert):
    """The client's alert reached the server, whose handle_error got it as an
    SSLError. (Under faults that delay or split the server's flight, the client
    may fail and close with part of it unread: its kernel then resets the
    connection, which discards the alert -- the server sees a close.)"""
    if server.errors or not (net.is_fake and net.faults.plan):
        assert len(server.errors) == 1 and isinstance(server.errors[0], ssl.SSLError)
        assert alert in str(server.errors[0])
    else:
        assert server.closes == 1


def test_handshake_fails_on_wrong_hostname(net, pki):
    errors, server = _failed_handshake(net, pki, client_context(pki.ca), "mail.example", pki.localhost)
    assert len(errors) == 1 and type(errors[0]) is ssl.SSLCertVerificationError
    assert "Hostname mismatch" in errors[0].verify_message
    server_saw_alert(net, server, "BAD_CERTIFICATE")


def test_handshake_fails_on_untrusted_ca(net, pki):
    errors, server = _failed_handshake(net, pki, client_context(pki.other_ca), "localhost", pki.localhost)
    assert len(errors) == 1 and type(errors[0]) is ssl.SSLCertVerificationError
    assert errors[0].verify_code == 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    server_saw_alert(net, server, "UNKNOWN_CA")


def test_right_certificate_for_another_name(net, pki):
    """The server_hostname decides: mail.example's certificate, asked for as mail.example."""
    m = {}
    lst = Listener(m, lambda sock, m: LineEcho(sock, m, server_context(pki.mail)))
    client = Client(lst.address, m, client_context(pki.ca), hostname="mail.example", payload=b"hi\n")
    try:
        run_until(net, lambda: bytes(client.received) == b"hi\n", m)
        assert client.socket.server_hostname == "mail.example"
    finally:
        close_and_check(m)


class HangUp(simnet.dispatcher):
    """Accepted side that closes the connection at once (no TLS at all)."""

    def __init__(self, sock, m):
        super().__init__(sock, m)
        self.close()


def test_peer_hanging_up_mid_handshake_is_a_close_not_an_error(net, pki):
    m = {}
    lst = Listener(m, HangUp)
    client = Client(lst.address, m, client_context(pki.ca))
    try:
        run_until(net, lambda: client.closes, m)
        assert client.events == ["close"] and not client.errors
    finally:
        close_and_check(m)


# -- plaintext buffered inside the TLS layer ----------------------------------------------

class Burst(Recorder, TLSDispatcher):
    """Server side: once TLS is up, sends two records back to back, then
    stays silent with the connection open (nothing else will make the
    client's socket readable)."""

    def __init__(self, sock, m, context):
        self._init_record()
        super().__init__(sock, m, context=context, server_side=True)

    def handle_tls_ready(self):
        super().handle_tls_ready()
        assert self.send(b"A" * 10) == 10  # one TLS record ...
        assert self.send(b"B" * 10) == 10  # ... and another, right behind it

    def writable(self):
        return False

    def handle_read(self):
        self.recv(100)


class SmallReader(Client):
    def handle_read(self):
        self.received += self.recv(3)
        self.left_in_tls.append(self.socket.pending())


def test_plaintext_buffered_in_the_tls_layer_is_delivered(net, pki):
    m = {}
    lst = Listener(m, lambda sock, m: Burst(sock, m, server_context(pki.localhost)))
    client = SmallReader(lst.address, m, client_context(pki.ca), read_size=3)
    client.left_in_tls = []
    try:
        run_until(net, lambda: len(client.received) >= 20, m)
        assert bytes(client.received) == b"A" * 10 + b"B" * 10
        # the scenario happened: both records arrived before the first read
        # (17 bytes were left decrypted after it), and no read event came in between
        assert client.left_in_tls[0] == 17
        assert client.left_in_tls == [17, 14, 11, 8, 5, 2, 0]
    finally:
        close_and_check(m)


class NaiveTLSClient(simnet.dispatcher):
    """The classic asyncore TLS bug, written down on purpose: one
    ``SSLObject.read(3)`` per read event. Decrypted bytes left in the SSL
    object wait for a read event that never comes."""

    def __init__(self, addr, m, context):
        super().__init__(map=m)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.established = False
        self.received = b""
        self.create_socket()
        self.connect(addr)

    def _flush(self):
        data = self.outgoing.read()
        while data:
            data = data[self.socket.send(data):]  # the fake network takes it all: no faults

    def handle_connect(self):
        self._step()

    def _step(self):
        try:
            self.tls.do_handshake()
            self.established = True
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def writable(self):
        return not self.connected

    def handle_read(self):
        self.incoming.write(self.socket.recv(65536))
        if not self.established:
            self._step()
            return
        try:
            self.received += self.tls.read(3)
        except ssl.SSLWantReadError:
            pass


def test_a_naive_implementation_stalls_on_the_same_scenario(pki):
    """Shows that the test above is a trap: the naive client stalls with
    bytes decrypted and buffered in its SSL object."""
    with FakeNetwork(seed=1) as net:
        m = {}
        lst = Listener(m, lambda sock, m: Burst(sock, m, server_context(pki.localhost)))
        client = NaiveTLSClient(lst.address, m, client_context(pki.ca))
        with pytest.raises((Deadlock, SimulationTimeout)):
            net.run(until=lambda: len(client.received) >= 20, map=m, timeout=10)
        assert client.received == b"AAA"
        assert client.tls.pending() == 7  # the rest of record 1 sits in the SSL object ...
        close_and_check(m)


class TinyChat(Recorder, TLSChat):
    """async_chat reading three bytes at a time, line by line."""

    ac_in_buffer_size = 3

    def __init__(self, addr, m, context):
        self._init_record()
        super().__init__(map=m, context=context, server_hostname="localhost")
        self.set_terminator(b"\n")
        self.buf = []
        self.lines = []
        self.create_socket()
        self.connect(addr)

    def handle_connect(self):
        self.push(b"one\ntwo\nthree\n")

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        self.lines.append(b"".join(self.buf))
        self.buf = []


def test_async_chat_with_a_small_read_buffer_gets_every_line(net, pki):
    m = {}
    lst = Listener(m, lambda sock, m: LineEcho(sock, m, server_context(pki.localhost),
                                               greeting=b"g1\ng2\n"))
    client = TinyChat(lst.address, m, client_context(pki.ca))
    try:
        run_until(net, lambda: len(client.lines) >= 5, m)
        assert client.lines == [b"g1", b"g2", b"one", b"two", b"three"]
    finally:
        close_and_check(m)


def test_end_of_stream_behind_buffered_plaintext_is_delivered_last(net, pki):
    """The server sends data, close_notify and FIN together; the client reads
    two bytes at a time and still gets every byte, then one handle_close."""

    class SayAndClose(LineEcho):
        def found_terminator(self):
            super().found_terminator()
            self.push(b"goodbye, and thanks for all the fish\n")
            self.close_when_done()

    m = {}
    lst = Listener(m, lambda sock, m: SayAndClose(sock, m, server_context(pki.localhost)))
    client = Client(lst.address, m, client_context(pki.ca), payload=b"bye\n", read_size=2)
    try:
        run_until(net, lambda: client.closes, m)
        assert bytes(client.received) == b"bye\ngoodbye, and thanks for all the fish\n"
        assert client.closes == 1 and not client.errors
        assert client.socket.close_notify_received
    finally:
        close_and_check(m)


# -- end of stream, resets -------------------------------------------------------------------

class FinWithoutCloseNotify(LineEcho):
    """Answers, then shuts TCP down for writing without a TLS close_notify."""

    def found_terminator(self):
        super().found_terminator()
        self.socket.flush()
        self.socket.raw.shutdown(socket.SHUT_WR)


def test_ragged_eof_is_a_close_not_an_error(net, pki):
    m = {}
    lst = Listener(m, lambda sock, m: FinWithoutCloseNotify(sock, m, server_context(pki.localhost)))
    client = Client(lst.address, m, client_context(pki.ca), payload=b"ping\n")
    try:
        run_until(net, lambda: client.closes, m)
        assert bytes(client.received) == b"ping\n"
        assert not client.errors and client.closes == 1
        assert not client.socket.close_notify_received  # possible truncation, detectable
    finally:
        close_and_check(m)


def test_reset_mid_stream_is_a_close(pki):
    plan = [Rule("disconnect", mode="rst", after_bytes=6000, where={"side": "server"})]
    with FakeNetwork(seed=5, faults=plan) as net:
        m = {}
        lst = Listener(m, lambda sock, m: LineEcho(sock, m, server_context(pki.localhost)))
        client = Client(lst.address, m, client_context(pki.ca), payload=lines(400))
        net.run(until=lambda: client.closes and lst.handlers[0].closes, map=m, timeout=30)
        assert client.closes == 1 and lst.handlers[0].closes == 1
        assert not client.errors and not lst.handlers[0].errors
        assert net.faults.fired[0] == 1
        assert len(client.received) < len(lines(400))  # a reset discards unread data
        close_and_check(m)


# -- unwrap (close_notify) -------------------------------------------------------------------------

class UnwrapServer(LineEcho):
    """Echoes; answers the client's close_notify with its own (unwrap) and
    goes on in plaintext, prefixing its answers with 'plain: '."""

    def handle_close(self):
        if self.socket.state == "open" and self.socket.close_notify_received:
            self.events.append("peer unwrapped")
            self.unwrap_when_done()  # after the echoes still queued
            return
        super().handle_close()

    def found_terminator(self):
        line = b"".join(self.buf)
        self.buf = []
        self.lines.append(line)
        prefix = b"plain: " if self.socket.state == "plain" else b""
        self.push(prefix + line + b"\n")


class UnwrapClient(Recorder, TLSChat):
    def __init__(self, addr, m, context):
        self._init_record()
        super().__init__(map=m, context=context, server_hostname="localhost")
        self.set_terminator(b"\n")
        self.buf = []
        self.create_socket()
        self.connect(addr)

    def handle_connect(self):
        self.push(b"over TLS\n")

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        line = b"".join(self.buf)
        self.buf = []
        self.events.append(line)
        if line == b"over TLS":
            self.unwrap()
            # sent in the clear once the unwrap completes; until then send() takes nothing
            self.push(b"in the clear\n")
            assert self.producer_fifo


def test_unwrap_then_plaintext(net, pki):
    m = {}
    lst = Listener(m, lambda sock, m: UnwrapServer(sock, m, server_context(pki.localhost)))
    client = UnwrapClient(lst.address, m, client_context(pki.ca))
    try:
        run_until(net, lambda: b"plain: in the clear" in client.events, m)
        server = lst.handlers[0]
        assert client.events == ["tls ready", b"over TLS", "unwrapped", b"plain: in the clear"]
        assert server.events == ["tls ready", "peer unwrapped", "unwrapped"]
        assert server.lines == [b"over TLS", b"in the clear"]
        assert client.socket.state == server.socket.state == "plain"
        assert not client.errors and not server.errors
        if net.is_fake:
            # on the wire: the first line was encrypted, the second was not
            wire = b"".join(ev[-1] for ev in net.trace.events
                            if ev[1] == "send" and ev[2] == client._fileno and type(ev[-1]) is bytes)
            assert b"over TLS" not in wire and wire.endswith(b"in the clear\n")
        client.close()
        run_until(net, lambda: server.closes, m)
    finally:
        close_and_check(m)


def test_unwrap_when_done_then_close(net, pki):
    """TLSChat.unwrap_when_done(): the queued data goes out first, then
    close_notify; the client closes once the unwrap completes."""

    class Client2(UnwrapClient):
        def handle_connect(self):
            self.push(b"a\n")
            self.push(b"b" * 50000 + b"\n")
            self.unwrap_when_done()

        def found_terminator(self):
            self.events.append(len(b"".join(self.buf)))
            self.buf = []

        def handle_unwrapped(self):
            super().handle_unwrapped()
            self.close()

    m = {}
    lst = Listener(m, lambda sock, m: UnwrapServer(sock, m, server_context(pki.localhost)))
    client = Client2(lst.address, m, client_context(pki.ca))
    try:
        run_until(net, lambda: lst.handlers and lst.handlers[0].closes, m)
        assert client.events == ["tls ready", 1, 50000, "unwrapped"]
        assert lst.handlers[0].events == ["tls ready", "peer unwrapped", "unwrapped", "close"]
        assert lst.handlers[0].lines == [b"a", b"b" * 50000]
    finally:
        close_and_check(m)


def test_unwrap_without_a_session_is_an_error(pki):
    with FakeNetwork(seed=1):
        m = {}
        ch = TLSDispatcher(map=m, context=client_context(pki.ca))
        ch.create_socket()
        with pytest.raises(ValueError, match="established"):
            ch.unwrap()
        with pytest.raises(ValueError, match="without TLS"):
            simnet_plain = TLSDispatcher(map=m)
            simnet_plain.create_socket()
            simnet_plain.unwrap()
        close_and_check(m)


# -- readable()/writable() overrides, send() semantics -------------------------------------------

class QuietReader(Recorder, TLSDispatcher):
    """Never writable by its own account; reads everything."""

    def __init__(self, addr, m, context):
        self._init_record()
        super().__init__(map=m, context=context, server_hostname="localhost")
        self.received = b""
        self.create_socket()
        self.connect(addr)

    def handle_connect(self):
        self.events.append("connect")

    def readable(self):
        return True

    def writable(self):
        return False

    def handle_read(self):
        self.received += self.recv(8192)


def test_writable_override_cannot_stall_the_handshake(pki):
    """With one-byte sends the ClientHello needs hundreds of write events;
    the channel's own writable() says False throughout."""
    assert QuietReader.writable._tls_app is QuietReader.__dict__["writable"]._tls_app
    with FakeNetwork(seed=2, faults=[Rule("partial_send", max_bytes=1)]) as net:
        m = {}
        lst = Listener(m, lambda sock, m: LineEcho(sock, m, server_context(pki.localhost),
                                                   greeting=b"x" * 3000 + b"\n"))
        client = QuietReader(lst.address, m, client_context(pki.ca))
        net.run(until=lambda: len(client.received) >= 3001, map=m, timeout=60)
        assert client.received == b"x" * 3000 + b"\n"
        assert client.events == ["tls ready", "connect"]
        assert net.faults.fired[0] > 3000
        close_and_check(m)


def test_send_takes_nothing_before_the_handshake_and_a_record_at_most_after(pki):
    class Sender(Recorder, TLSDispatcher):
        def __init__(self, addr, m, context):
            self._init_record()
            super().__init__(map=m, context=context, server_hostname="localhost")
            self.create_socket()
            self.connect(addr)
            self.sent_early = self.send(b"too early")

        def handle_connect(self):
            self.sent = self.send(b"z" * 100000)

        def writable(self):
            return False

        def handle_read(self):
            self.recv(10)

    with FakeNetwork(seed=3) as net:
        m = {}
        lst = Listener(m, lambda sock, m: LineEcho(sock, m, server_context(pki.localhost)))
        client = Sender(lst.address, m, client_context(pki.ca))
        assert client.sent_early == 0
        net.run(until=lambda: hasattr(client, "sent"), map=m, timeout=10)
        assert client.sent == 16384
        assert isinstance(client.socket, TLSSocket) and client.socket.state == "open"
        close_and_check(m)


# -- STARTTLS ---------------------------------------------------------------------------------

class StartTLSServer(Recorder, TLSChat):
    """A line protocol that starts in plaintext; STARTTLS upgrades it."""

    def __init__(self, sock, m, context):
        self._init_record()
        super().__init__(sock, m)  # no context: plaintext
        self.context = context
        self.set_terminator(b"\r\n")
        self.buf = []

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        line = b"".join(self.buf)
        self.buf = []
        if line == b"STARTTLS":
            self.push(b"220 go ahead\r\n")  # goes out in the clear ...
            self.start_tls(self.context, server_side=True)  # ... though TLS starts now
            return
        secure = isinstance(self.socket, TLSSocket) and self.socket.state == "open"
        self.push((b"secure " if secure else b"plain ") + line + b"\r\n")


class StartTLSClient(Recorder, TLSChat):
    def __init__(self, addr, m, context):
        self._init_record()
        super().__init__(map=m)
        self.context = context
        self.set_terminator(b"\r\n")
        self.buf = []
        self.create_socket()
        self.connect(addr)

    def handle_connect(self):
        self.events.append("connect")
        self.push(b"HELLO\r\n")

    def handle_tls_ready(self):
        super().handle_tls_ready()
        self.push(b"SECRET\r\n")

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def found_terminator(self):
        line = b"".join(self.buf)
        self.buf = []
        self.events.append(line)
        if line == b"plain HELLO":
            self.push(b"STARTTLS\r\n")
        elif line == b"220 go ahead":
            self.start_tls(self.context, server_hostname="localhost")


@pytest.mark.parametrize("plan", [[], [Rule("partial_send", max_bytes=1)], [Rule("short_read", max_bytes=1)]],
                         ids=["clean", "1-byte sends", "1-byte reads"])
def test_starttls(pki, plan):
    with FakeNetwork(seed=4, faults=plan) as net:
        m = {}
        lst = Listener(m, lambda sock, m: StartTLSServer(sock, m, server_context(pki.localhost)))
        client = StartTLSClient(lst.address, m, client_context(pki.ca))
        net.run(until=lambda: b"secure SECRET" in client.events, map=m, timeout=60)
        assert client.events == ["connect", b"plain HELLO", b"220 go ahead", "tls ready", b"secure SECRET"]
        assert lst.handlers[0].events == ["tls ready"]
        assert not client.errors and not lst.handlers[0].errors
        close_and_check(m)


# -- odds and ends ------------------------------------------------------------------------------

def test_server_hostname_defaults_to_the_host_connected_to(net, pki):
    m = {}
    lst = Listener(m, lambda sock, m: LineEcho(sock, m, server_context(pki.localhost)))
    client = Client(("localhost", lst.address[1]), m, client_context(pki.ca), hostname=None,
                    payload=b"hi\n")
    try:
        run_until(net, lambda: bytes(client.received) == b"hi\n", m)
        assert client.socket.server_hostname == "localhost"
    finally:
        close_and_check(m)


def test_refused_connect_goes_to_handle_error_as_in_asyncore(net, pki):
    m = {}
    probe = Listener(m, lambda sock, m: None)
    port = probe.address[1]
    probe.close()  # nobody listens there now
    client = Client(("127.0.0.1", port), m, client_context(pki.ca))
    try:
        run_until(net, lambda: client.errors, m)
        assert type(client.errors[0]) is ConnectionRefusedError
        assert client.events == ["error"]  # and Recorder.handle_error closed it
    finally:
        close_and_check(m)


def test_module_docstring_example_runs(pki, tmp_path, monkeypatch, capsys):
    import re

    import simnet.tls

    code = re.search(r"echo server and a client::\n\n(.*?)\n\n[A-Z]", simnet.tls.__doc__, re.S).group(1)
    code = "\n".join(line[4:] for line in code.splitlines())
    monkeypatch.chdir(tmp_path)
    pki.localhost.cert_chain_pems[0].write_to_path("cert.pem")
    pki.localhost.private_key_pem.write_to_path("key.pem")
    pki.ca.cert_pem.write_to_path("ca.pem")
    with FakeNetwork(seed=1) as net:
        namespace = {}
        exec(compile(code, "simnet.tls docstring", "exec"), namespace)
        namespace["Server"](("127.0.0.1", 4433))
        client = namespace["Client"](("127.0.0.1", 4433))
        net.run(until=lambda: client.socket.state == "closed", timeout=10)
        assert capsys.readouterr().out == "b'hello\\n'\n"


def test_accepted_socket_already_reset_is_closed_not_spun_on(net, pki):
    """dispatcher.__init__ finds no peer (ENOTCONN): TLS never starts, and the
    channel behaves as a plain asyncore one would -- recv() sees the end, and
    handle_close() runs."""
    import struct

    m = {}
    lsock = net.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(5)
        c = net.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.connect(lsock.getsockname())
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST
        if net.is_fake:
            net.settle()
        sock, _ = lsock.accept()
        handler = LineEcho(sock, m, server_context(pki.localhost))
        assert not handler.connected and handler.socket.state == "connecting"
        run_until(net, lambda: handler.closes, m)
        assert handler.closes == 1 and not handler.errors and not m
    finally:
        lsock.close()
        close_and_check(m)
