"""Connection life cycles with plain dispatchers: echo, refused connect, the
peer closing or resetting, half-close, many clients, an accept storm.

Each ``scenario_*`` function is written once against ``env.asyncore`` /
``env.asynchat`` and runs on every target of ``harness.TARGETS``; each test
asserts that all targets recorded the same callbacks *and* that the
recording is the one expected.
"""

import errno
import socket

import pytest

from .harness import Recording, event_names, pattern, start_listener, summary

# ---------------------------------------------------------------------------
# 1. echo


def scenario_echo(env, rec, *, size):
    ac = env.asyncore

    class EchoHandler(Recording, ac.dispatcher_with_send):
        """Server side: sends back whatever arrives."""

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log(name_prefix="server-conn-for-")

        def handle_read(self):
            data = self.recv(8192)
            self.log.data(data)
            if data:
                self.send(data)

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    class EchoClient(Recording, ac.dispatcher_with_send):
        """Sends its message on connect; closes once all of it came back."""

        def __init__(self, name, message, address):
            super().__init__(map=env.map)
            self.log = rec.log(name)
            self.message = message
            self.create_socket()
            self.connect(address)

        def handle_connect(self):
            self.log.add("handle_connect")
            self.send(self.message)

        def handle_read(self):
            self.log.data(self.recv(8192))
            if len(self.log.received) == len(self.message):
                self.log.add("all echoed: close()")
                self.close()

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    listener = start_listener(env, rec, EchoHandler)
    client = EchoClient("client-0", b"client-0:" + pattern(size), listener.address)
    env.run_until(
        lambda: not env.in_map(client) and listener.handlers and not env.in_map(listener.handlers[0]),
        "both ends to close",
    )
    listener.close()


@pytest.mark.parametrize("size", [16, 300_000], ids=["16B", "300kB"])
def test_echo(differential, size):
    """A dispatcher_with_send client sends a message (small, or larger than
    the 64 KiB slice dispatcher_with_send hands to one send()), the server
    echoes it with dispatcher_with_send, the client closes once it has it all,
    and the server gets handle_close from the end of stream."""
    rec = differential.everywhere(scenario_echo, size=size)
    message = b"client-0:" + pattern(size)
    assert rec == {
        "client-0": [("handle_connect",), ("data", summary(message)), ("all echoed: close()",)],
        "listener": [("handle_accepted",)],
        "server-conn-for-client-0": [("data", summary(message)), ("handle_close",)],
    }


# ---------------------------------------------------------------------------
# 2. connect refused


def scenario_connect_refused(env, rec):
    ac = env.asyncore

    class Client(Recording, ac.dispatcher):
        def handle_connect(self):
            self.log.add("handle_connect")

        def handle_read(self):
            self.log.add("handle_read")

        def handle_write(self):
            self.log.add("handle_write")

        def handle_expt(self):
            self.log.add("handle_expt")

        def handle_close(self):
            self.log.add("handle_close", {"connected": self.connected, "connecting": self.connecting})
            self.close()

    client = Client(map=env.map)
    client.log = rec.log("client")
    client.create_socket()
    try:
        client.connect(env.refused_address())
    except OSError as exc:
        client.log.add("connect() raised", type(exc).__name__, errno.errorcode.get(exc.errno))
        client.close()
    else:
        client.log.add("connect() returned",
                       {"connected": client.connected, "connecting": client.connecting})
    env.run_until(lambda: not env.in_map(client), "the client to leave the map")


def test_connect_refused(differential):
    """Connecting to a port nobody listens on: on Linux the non-blocking
    connect() returns (EINPROGRESS) and the refusal comes back through the
    loop -- a read event whose handle_connect_event raises
    ConnectionRefusedError, which goes to handle_error (logged), then
    handle_close, still 'connecting'. handle_connect, handle_read,
    handle_write and handle_expt are never called."""
    rec = differential.everywhere(scenario_connect_refused)
    events = rec["client"]
    assert event_names(events) == ["connect() returned", "handle_error", "log_info", "handle_close"]
    assert events[0][1] == {"connected": False, "connecting": True}
    assert events[1] == ("handle_error", "ConnectionRefusedError",
                         "[Errno %d] %s" % (errno.ECONNREFUSED, "Connection refused"))
    kind, level, message = events[2]
    dispatch = "readwrite" if differential.use_poll else "read"
    assert level == "error"
    assert message.startswith(
        "uncaptured python exception, closing channel "
        f"<{__name__}.scenario_connect_refused.<locals>.Client HOST:PORT at 0xID> "
        "(<class 'ConnectionRefusedError'>:[Errno 111] Connection refused "
    )
    assert message.endswith(
        f"[asyncore.py|{dispatch}] [asyncore.py|handle_read_event] "
        "[asyncore.py|handle_connect_event])"
    )
    assert events[3] == ("handle_close", {"connected": False, "connecting": True})


# ---------------------------------------------------------------------------
# 3. the peer closes mid-stream


def scenario_peer_closes_mid_stream(env, rec, *, announced, sent):
    ac = env.asyncore

    class CuttingServer(Recording, ac.dispatcher_with_send):
        """Reads a request line, announces *announced* bytes, sends only
        *sent* of them, and closes once those have left its buffer."""

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log(name_prefix="server-conn-for-")
            self.replying = False

        def handle_read(self):
            self.log.data(self.recv(8192))
            if self.log.received.endswith(b"\n") and not self.replying:
                self.replying = True
                self.log.add("reply", {"announced": announced, "sent": sent})
                self.send(b"length=%d\n" % announced + pattern(sent))
                self.close_if_flushed()

        def handle_write(self):
            self.initiate_send()
            self.close_if_flushed()

        def close_if_flushed(self):
            if self.replying and not self.out_buffer:
                self.log.add("close() mid-stream")
                self.close()

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    class Client(Recording, ac.dispatcher_with_send):
        def handle_connect(self):
            self.log.add("handle_connect")
            self.send(b"client-0:GET\n")

        def handle_read(self):
            self.log.data(self.recv(4096))

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    listener = start_listener(env, rec, CuttingServer)
    client = Client(map=env.map)
    client.log = rec.log("client-0")
    client.create_socket()
    client.connect(listener.address)
    env.run_until(lambda: not env.in_map(client), "the client to close")
    listener.close()


@pytest.mark.parametrize("sent", [10, 200_000], ids=["10B", "200kB"])
def test_peer_closes_mid_stream(differential, sent):
    """The server announces 1 MB, sends only part of it and closes. The
    client reads everything that was sent, then gets handle_close exactly
    once (from recv() returning end of stream)."""
    rec = differential.everywhere(scenario_peer_closes_mid_stream, announced=1_000_000, sent=sent)
    assert rec == {
        "client-0": [
            ("handle_connect",),
            ("data", summary(b"length=1000000\n" + pattern(sent))),
            ("handle_close",),
        ],
        "listener": [("handle_accepted",)],
        "server-conn-for-client-0": [
            ("data", b"client-0:GET\n"),
            ("reply", {"announced": 1_000_000, "sent": sent}),
            ("close() mid-stream",),
        ],
    }


# ---------------------------------------------------------------------------
# 4. half-close


def scenario_half_close(env, rec, *, size):
    ac = env.asyncore

    class Server(Recording, ac.dispatcher):
        """Reads to end of stream; on handle_close (the EOF) replies with the
        byte count but keeps its socket open -- the driver closes it."""

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log(name_prefix="server-conn-for-")
            self.saw_eof = False

        def readable(self):
            return not self.saw_eof

        def writable(self):
            return False

        def handle_read(self):
            self.log.data(self.recv(8192))

        def handle_close(self):
            self.saw_eof = True
            reply = b"got %d bytes\n" % len(self.log.received)
            sent = self.send(reply)
            self.log.add("handle_close", "replied" if sent == len(reply) else sent)

    class Client(Recording, ac.dispatcher_with_send):
        """Sends its message, then shuts its sending side down."""

        shut = False

        def handle_connect(self):
            self.log.add("handle_connect")
            self.send(message)
            self.shutdown_if_flushed()

        def handle_write(self):
            # (the write event that completes the connect also lands here,
            # after handle_connect has already shut the socket down)
            if self.out_buffer:
                self.initiate_send()
                self.shutdown_if_flushed()

        def shutdown_if_flushed(self):
            if not self.shut and not self.out_buffer:
                self.shut = True
                self.socket.shutdown(socket.SHUT_WR)
                self.log.add("shutdown(SHUT_WR)")

        def handle_read(self):
            self.log.data(self.recv(8192))

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    message = b"client-0:" + pattern(size)
    reply = b"got %d bytes\n" % len(message)
    listener = start_listener(env, rec, Server)
    client = Client(map=env.map)
    client.log = rec.log("client-0")
    client.create_socket()
    client.connect(listener.address)
    env.run_until(lambda: client.log.received == reply, "the reply")
    server = listener.handlers[0]
    server.log.add("close() by the driver")
    server.close()
    env.run_until(lambda: not env.in_map(client), "the client to close")
    listener.close()


@pytest.mark.parametrize("size", [100, 150_000], ids=["100B", "150kB"])
def test_half_close(differential, size):
    """The client sends, then shutdown(SHUT_WR). The server receives all the
    data, then end of stream -> handle_close; the connection still carries
    its reply the other way. When the server finally closes, the client gets
    handle_close -- once with select, but *twice* with poll: its recv() sees
    end of stream (first call), then the same readwrite() pass handles the
    POLLHUP of a socket shut down both ways (second call). That is the
    stdlib's behaviour, and simnet must reproduce it."""
    rec = differential.everywhere(scenario_half_close, size=size)
    message = b"client-0:" + pattern(size)
    closes = [("handle_close",)] * (2 if differential.use_poll else 1)
    assert rec == {
        "client-0": [
            ("handle_connect",),
            ("shutdown(SHUT_WR)",),
            ("data", b"got %d bytes\n" % len(message)),
            *closes,
        ],
        "listener": [("handle_accepted",)],
        "server-conn-for-client-0": [
            ("data", summary(message)),
            ("handle_close", "replied"),
            ("close() by the driver",),
        ],
    }


# ---------------------------------------------------------------------------
# 5. many clients / 6. accept storm


def _line_server_and_clients(env, rec, *, clients, reply):
    """Shared by the many-clients and accept-storm scenarios: an async_chat
    server answering one line per connection (optionally with a reply line),
    then close_when_done(); dispatcher_with_send clients that send
    ``client-N:hello`` on connect and read until end of stream. All clients
    connect before the loop first runs."""
    ac, chat = env.asyncore, env.asynchat

    class LineServer(Recording, chat.async_chat):
        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log()
            self.set_terminator(b"\n")

        def collect_incoming_data(self, data):
            self._collect_incoming_data(data)

        def found_terminator(self):
            line = self._get_data()
            self.log.name = "server-conn-for-" + line.split(b":", 1)[0].decode()
            self.log.add("found_terminator", line)
            if reply:
                self.push(b"reply-to-" + line + b"\n")
            self.close_when_done()

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    class Client(Recording, ac.dispatcher_with_send):
        def __init__(self, n, address):
            super().__init__(map=env.map)
            self.log = rec.log("client-%02d" % n)
            self.line = b"client-%02d:hello\n" % n
            self.create_socket()
            self.connect(address)

        def handle_connect(self):
            self.log.add("handle_connect")
            self.send(self.line)

        def handle_read(self):
            self.log.data(self.recv(8192))

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    listener = start_listener(env, rec, LineServer)
    return listener, [Client(n, listener.address) for n in range(clients)]


def scenario_many_clients(env, rec, *, clients):
    listener, all_clients = _line_server_and_clients(env, rec, clients=clients, reply=True)
    env.run_until(
        lambda: len(listener.handlers) == clients
        and not any(env.in_map(c) for c in all_clients + listener.handlers),
        "every client and server connection to close",
    )
    listener.close()


def test_many_clients(differential):
    """20 clients, one loop: each sends a request line, the async_chat server
    pushes a reply and close_when_done(). Every client sees connect, its own
    reply, then handle_close; every server connection one line then
    handle_close; the listener 20 handle_accepted."""
    n = 20
    rec = differential.everywhere(scenario_many_clients, clients=n)
    expected = {"listener": [("handle_accepted",)] * n}
    for i in range(n):
        line = b"client-%02d:hello" % i
        expected["client-%02d" % i] = [
            ("handle_connect",), ("data", b"reply-to-" + line + b"\n"), ("handle_close",)]
        expected["server-conn-for-client-%02d" % i] = [("found_terminator", line), ("handle_close",)]
    assert rec == dict(sorted(expected.items()))


def scenario_accept_storm(env, rec, *, clients):
    driver = rec.log("driver")
    listener, all_clients = _line_server_and_clients(env, rec, clients=clients, reply=False)
    # Every connect() has been issued; the loop has not run yet.
    driver.add("connecting before the first pass",
               sum(c.connecting and not c.connected for c in all_clients))
    env.run_until(lambda: len(listener.handlers) == clients, "every connection to be accepted")
    # Nothing is pending any more: accept() must say so with None ...
    driver.add("accept() with nothing pending", listener.accept())
    # ... and a spurious read event on the listener must not call handle_accepted.
    listener.handle_read_event()
    driver.add("spurious read event on the listener: handlers", len(listener.handlers))
    env.run_until(lambda: not any(env.in_map(c) for c in all_clients + listener.handlers),
                  "every connection to close")
    listener.close()


def test_accept_storm(differential):
    """50 clients connect before the loop runs (a backlog of 128 holds them
    all). Each gets its own handle_accepted; afterwards accept() with nothing
    pending returns None, and a spurious read event on the listener
    (handle_accept -> accept() is None) does not call handle_accepted."""
    n = 50
    rec = differential.everywhere(scenario_accept_storm, clients=n)
    assert rec["listener"] == [("handle_accepted",)] * n
    assert rec["driver"] == [
        ("connecting before the first pass", n),
        ("accept() with nothing pending", None),
        ("spurious read event on the listener: handlers", n),
    ]
    for i in range(n):
        assert rec["client-%02d" % i] == [("handle_connect",), ("handle_close",)]
        assert rec["server-conn-for-client-%02d" % i] == [
            ("found_terminator", b"client-%02d:hello" % i), ("handle_close",)]
    assert len(rec) == 2 + 2 * n


# ---------------------------------------------------------------------------
# recv() on a closed or reset peer


def scenario_recv_after_peer_close(env, rec, *, how):
    ac = env.asyncore

    class Server(Recording, ac.dispatcher):
        """Never reads: it only notes that the client's bytes have arrived
        (and then stops asking), so that closing it sends a reset."""

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("server-conn")
            self.data_pending = False

        def readable(self):
            return not self.data_pending

        def writable(self):
            return False

        def handle_read(self):
            self.data_pending = True
            self.log.add("readable")

    class Client(Recording, ac.dispatcher):
        in_recv = False

        def writable(self):
            return not self.connected

        def handle_connect(self):
            self.log.add("handle_connect")
            if how == "reset":
                self.log.add("send", self.send(b"never read"))

        def handle_write(self):
            pass

        def handle_read(self):
            self.log.add("handle_read")
            self.in_recv = True
            try:
                data = self.recv(100)
            finally:
                self.in_recv = False
            self.log.add("recv returned", data)

        def handle_close(self):
            self.log.add("handle_close", "inside recv" if self.in_recv else "from the loop")
            self.close()

    listener = start_listener(env, rec, Server)
    client = Client(map=env.map)
    client.log = rec.log("client")
    client.create_socket()
    client.connect(listener.address)
    if how == "close":
        env.run_until(lambda: client.connected and listener.handlers, "the connection")
    else:
        env.run_until(lambda: client.connected and listener.handlers
                      and listener.handlers[0].data_pending, "the client's bytes to arrive")
    server = listener.handlers[0]
    server.log.add("close() by the driver")
    server.close()
    env.run_until(lambda: not env.in_map(client), "the client to close")
    listener.close()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_recv_after_peer_close(differential, how):
    """The peer closes ('close': end of stream; 'reset': it closes with
    unread data, so the kernel sends RST and recv() fails with ECONNRESET).
    Either way recv() calls handle_close and returns b'' to handle_read,
    which carries on. After a reset, poll also reports POLLHUP|POLLERR in
    the same pass, so readwrite() calls handle_close a second time."""
    rec = differential.everywhere(scenario_recv_after_peer_close, how=how)
    client = [("handle_connect",)]
    if how == "reset":
        client.append(("send", len(b"never read")))
    client += [("handle_read",), ("handle_close", "inside recv"), ("recv returned", b"")]
    if how == "reset" and differential.use_poll:
        client.append(("handle_close", "from the loop"))
    server = [("readable",)] if how == "reset" else []
    assert rec == {
        "client": client,
        "listener": [("handle_accepted",)],
        "server-conn": server + [("close() by the driver",)],
    }
