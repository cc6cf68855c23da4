"""Dispatcher details: __repr__, accept() returning None, send() returning 0
when the kernel buffers are full -- and the corner cases where simnet once
differed from the stdlib (see the bottom)."""

import errno
import socket

import pytest

from .harness import (Recording, assert_same, normalize, pattern, run_each,
                      start_listener)

# ---------------------------------------------------------------------------
# __repr__ and accept() -> None


def scenario_repr_and_accept(env, rec):
    ac, chat = env.asyncore, env.asynchat
    log = rec.log("reprs")

    def show(label, obj):
        text = repr(obj)
        log.add(label, normalize(text), text.endswith(" at %#x>" % id(obj)))

    class Idle(ac.dispatcher):
        """Asks the loop for nothing, so passes only wait."""

        def readable(self):
            return False

        def writable(self):
            return False

    show("dispatcher()", ac.dispatcher(map=env.map))
    show("dispatcher_with_send()", ac.dispatcher_with_send(map=env.map))
    show("async_chat()", chat.async_chat(map=env.map))
    listener = Idle(map=env.map)
    show("subclass, no socket", listener)
    listener.create_socket()
    show("with a socket", listener)
    listener.bind(env.listen_address())
    show("bound", listener)
    listener.listen(5)
    show("listening", listener)
    log.add("accept() with nothing pending", listener.accept())

    never_bound = Idle(map=env.map)
    never_bound.create_socket()
    never_bound.listen(5)
    show("listening, bind() never called", never_bound)

    client = Idle(map=env.map)
    client.create_socket()
    client.connect(listener.socket.getsockname())
    show("connecting", client)
    accepted = []

    def accept_one():
        pair = listener.accept()
        if pair is not None:
            accepted.append(pair)
        return bool(accepted)

    env.run_until(accept_one, "the connection to be accepted")
    sock, addr = accepted[0]
    # a fake network's socket has another class but the same API
    kind = "socket" if type(sock).__name__ in ("socket", "FakeSocket") else type(sock).__name__
    log.add("accept() returned", kind, normalize(repr(addr)))
    server_side = Idle(sock, map=env.map)
    show("built from an accepted socket", server_side)
    client.close()
    show("closed after connect()", client)

    odd = Idle(map=env.map)
    odd.addr = "/run/some.sock"
    show("str addr", odd)
    odd.addr = ("::1", 8080, 0, 0)
    odd.connected = True
    show("connected, 4-tuple addr", odd)
    odd.addr = ("host", "port")
    show("connected, port not a number", odd)


def test_repr_and_accept_none(differential):
    """__repr__ is '<module.Class [listening|connected] [host:port] at 0x<id>>'
    (the id part is exactly %#x of id(); masked here, like ports): 'listening'
    needs accepting *and* an address; an address that does not format as
    host:port is shown with repr(). accept() with nothing pending returns
    None; with a pending connection, (socket, address)."""
    rec = differential.everywhere(scenario_repr_and_accept)
    idle = f"{__name__}.scenario_repr_and_accept.<locals>.Idle"
    assert rec["reprs"] == [
        ("dispatcher()", "<asyncore.dispatcher at 0xID>", True),
        ("dispatcher_with_send()", "<asyncore.dispatcher_with_send at 0xID>", True),
        ("async_chat()", "<asynchat.async_chat at 0xID>", True),
        ("subclass, no socket", f"<{idle} at 0xID>", True),
        ("with a socket", f"<{idle} at 0xID>", True),
        ("bound", f"<{idle} HOST:PORT at 0xID>", True),
        ("listening", f"<{idle} listening HOST:PORT at 0xID>", True),
        ("accept() with nothing pending", None),
        ("listening, bind() never called", f"<{idle} at 0xID>", True),
        ("connecting", f"<{idle} HOST:PORT at 0xID>", True),
        ("accept() returned", "socket", "('HOST', PORT)"),
        ("built from an accepted socket", f"<{idle} connected HOST:PORT at 0xID>", True),
        ("closed after connect()", f"<{idle} HOST:PORT at 0xID>", True),
        ("str addr", f"<{idle} '/run/some.sock' at 0xID>", True),
        ("connected, 4-tuple addr", f"<{idle} connected ('::1', 8080, 0, 0) at 0xID>", True),
        ("connected, port not a number", f"<{idle} connected ('host', 'port') at 0xID>", True),
    ]


# ---------------------------------------------------------------------------
# send() returning 0 on EWOULDBLOCK


TAIL = pattern(200_000, seed=3)


def scenario_backpressure(env, rec):
    ac = env.asyncore

    class Sink(Recording, ac.dispatcher):
        """Server side that reads only once the driver allows it."""

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("server-conn")
            self.reading = False
            self.total = 0

        def readable(self):
            return self.reading

        def writable(self):
            return False

        def handle_read(self):
            self.total += len(self.recv(65536))

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    class Client(Recording, ac.dispatcher_with_send):
        def handle_connect(self):
            self.log.add("handle_connect")

        def handle_read(self):
            self.log.data(self.recv(100))

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    def small_rcvbuf(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    listener = start_listener(env, rec, Sink, before_listen=small_rcvbuf)
    client = Client(map=env.map)
    client.log = rec.log("client")
    client.create_socket()
    client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.connect(listener.address)
    env.run_until(lambda: client.connected and listener.handlers, "the connection")
    sink = listener.handlers[0]

    # dispatcher.send() (unbuffered) until the kernel takes nothing more
    results = []
    chunk = pattern(65536)
    for _ in range(10_000):
        results.append(ac.dispatcher.send(client, chunk))
        if results[-1] == 0:
            break
    accepted = sum(results)
    client.log.add("dispatcher.send() until it returns 0", {
        "several sends took bytes first": len(results) > 1 and all(n > 0 for n in results[:-1]),
        "last": results[-1],
        "still connected": client.connected,
    })
    # dispatcher_with_send.send() keeps what the kernel refuses
    client.send(TAIL)
    client.log.add("out_buffer kept bytes", 0 < len(client.out_buffer) <= len(TAIL))
    # now the sink reads, and the loop flushes out_buffer
    sink.reading = True
    env.run_until(lambda: sink.total == accepted + len(TAIL) and not client.out_buffer,
                  "every byte to arrive")
    client.log.add("every byte arrived", sink.total == accepted + len(TAIL))
    client.log.add("close()")
    client.close()
    env.run_until(lambda: not env.in_map(sink), "the sink to see end of stream")
    listener.close()


def test_send_returns_zero_when_buffers_are_full(differential):
    """With the peer not reading (small SO_SNDBUF / SO_RCVBUF), repeated
    dispatcher.send() calls take bytes until the kernel refuses: then send()
    returns 0 (EWOULDBLOCK) -- no exception, no handle_close, the channel
    stays connected. dispatcher_with_send keeps the refused bytes in
    out_buffer and the loop delivers them all once the peer reads."""
    rec = differential.everywhere(scenario_backpressure)
    assert rec["client"] == [
        ("handle_connect",),
        ("dispatcher.send() until it returns 0",
         {"several sends took bytes first": True, "last": 0, "still connected": True}),
        ("out_buffer kept bytes", True),
        ("every byte arrived", True),
        ("close()",),
    ]
    assert rec["server-conn"] == [("handle_close",)]


# ---------------------------------------------------------------------------
# Corner cases where simnet once differed from the stdlib
#
# Each has two tests: one pins the stdlib's (reference) recording, so the
# expectation itself is checked; one asserts that every target matches it --
# except use_encoding with a str-returning recv(), a stdlib bug simnet fixes
# on purpose (documented in the README).


def scenario_handle_close_raises_during_recv(env, rec):
    ac = env.asyncore

    class Server(Recording, ac.dispatcher):
        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("server-conn")

        def writable(self):
            return False

    class Client(Recording, ac.dispatcher):
        """Its first handle_close fails with a disconnect error (as, say, a
        flush of a farewell message to a peer that is gone would)."""

        calls = 0

        def writable(self):
            return not self.connected

        def handle_connect(self):
            self.log.add("handle_connect")

        def handle_write(self):
            pass

        def handle_read(self):
            self.log.add("handle_read")
            self.log.add("recv returned", self.recv(100))

        def handle_close(self):
            self.calls += 1
            self.log.add("handle_close", self.calls)
            if self.calls == 1:
                raise ConnectionResetError(errno.ECONNRESET, "peer gone while saying goodbye")
            self.close()

    listener = start_listener(env, rec, Server)
    client = Client(map=env.map)
    client.log = rec.log("client")
    client.create_socket()
    client.connect(listener.address)
    env.run_until(lambda: client.connected and listener.handlers, "the connection")
    listener.handlers[0].close()
    env.run_until(lambda: not env.in_map(client), "the client to close")
    listener.close()


STDLIB_HANDLE_CLOSE_RAISES = [
    ("handle_connect",),
    ("handle_read",),
    ("handle_close", 1),
    ("handle_close", 2),
    ("recv returned", b""),
]


def test_handle_close_raising_during_recv__stdlib(differential):
    """Reference: when recv() reads end of stream, the stdlib calls
    handle_close *inside* recv's try block; a disconnect OSError
    (ECONNRESET here) raised by that handle_close is caught by recv itself,
    which calls handle_close again and returns b'' -- handle_read carries on,
    and handle_error is never called (select and poll alike)."""
    rec = differential.each(scenario_handle_close_raises_during_recv)["stdlib"]
    assert rec["client"] == STDLIB_HANDLE_CLOSE_RAISES


def test_handle_close_raising_during_recv__same_everywhere(differential):
    """simnet matches the stdlib recording above: recv() absorbs a
    disconnect error raised by its own handle_close."""
    assert_same(differential.each(scenario_handle_close_raises_during_recv))


def scenario_push_str(env, rec):
    log = rec.log("push")
    channel = env.asynchat.async_chat(map=env.map)
    try:
        channel.push("text, not bytes")
    except TypeError as exc:
        log.add("TypeError", normalize(repr(exc.args)), normalize(str(exc)))
    else:
        log.add("no error")


def test_push_str__stdlib():
    """Reference: async_chat.push(str) raises TypeError whose args are the
    *unformatted* message and the type, as two items (the stdlib passes them
    to TypeError like a logging call)."""
    rec = run_each(scenario_push_str)["stdlib"]
    args = "('data argument must be byte-ish (%r)', <class 'str'>)"
    assert rec == {"push": [("TypeError", args, args)]}


def test_push_str__same_everywhere():
    """simnet raises the stdlib's TypeError, args and all."""
    assert_same(run_each(scenario_push_str))


class _DecodingSocket:
    """Wraps a socket so that recv() returns str, as some old socket-like
    objects did; everything else goes to the wrapped socket."""

    def __init__(self, sock):
        self._sock = sock

    def recv(self, buffer_size):
        return self._sock.recv(buffer_size).decode("latin-1")

    def __getattr__(self, name):
        return getattr(self._sock, name)


def scenario_use_encoding(env, rec):
    chat = env.asynchat

    class Chat(Recording, chat.async_chat):
        use_encoding = 1

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("chat")
            self.set_terminator("\n")  # str: encoded because use_encoding is set
            self.log.add("terminator", self.get_terminator())

        def collect_incoming_data(self, data):
            self._collect_incoming_data(data)

        def found_terminator(self):
            self.log.add("found_terminator", self._get_data())

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    sender, receiver = env.tcp_pair()
    channel = Chat(receiver)
    channel.socket = _DecodingSocket(receiver)
    sender.sendall(b"hello\nworld\n")
    sender.close()
    env.run_until(lambda: not env.in_map(channel), "the channel to close")


def test_use_encoding_with_str_recv__stdlib(differential):
    """Reference: with use_encoding set and a socket whose recv() returns
    str, the stdlib's handle_read fails (it calls bytes(str, encoding) on
    the *type* str -- a stdlib bug), so handle_error then handle_close."""
    rec = differential.each(scenario_use_encoding)["stdlib"]
    events = rec["chat"]
    assert events[0] == ("terminator", b"\n")
    assert events[1] == ("handle_error", "TypeError", "encoding without a string argument")
    assert events[2][:2] == ("log_info", "error")
    assert events[3:] == [("handle_close",)]


def test_use_encoding_with_str_recv__simnet_fixes_the_stdlib_bug(differential):
    """A documented, deliberate difference: simnet encodes the received str
    (the stdlib passes the *type* str to bytes() and always fails), so the
    records arrive: found_terminator(b'hello'), found_terminator(b'world'),
    then handle_close."""
    rec = differential.each(scenario_use_encoding)
    ours = [r for name, r in rec.items() if name != "stdlib"]
    assert ours, "no simnet target ran"
    for r in ours:
        assert r["chat"] == [("terminator", b"\n"), ("found_terminator", b"hello"),
                             ("found_terminator", b"world"), ("handle_close",)]
