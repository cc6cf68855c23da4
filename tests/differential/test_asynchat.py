"""async_chat: terminators, producers, large pushes, close_when_done.

Chunking is controlled where it matters: the client sends one piece, then
the driver runs the loop until the server has received exactly the bytes
sent so far (and the client every acknowledgement), so the state recorded at
those points (``ac_in_buffer``, ``terminator``) does not depend on timing.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import Recording, pattern, run_everywhere, start_listener, summary

# ---------------------------------------------------------------------------
# 7. terminators

#: (bytes the client sends in one push, what the step exercises)
TERMINATOR_STEPS = [
    (b"HELLO\r\n", "a bytes terminator"),
    (b"A\r\nB\r\n\r\n", "three records in one send, the last one empty"),
    (b"split-term\r", "the first byte of the terminator ends a send ..."),
    (b"\nafter", "... its second byte starts the next"),
    (b"\r\n", "the terminator alone"),
    (b"LEN 10\r\n", "found_terminator switches to an int terminator"),
    (b"abc", "3 of the 10 bytes: the count goes down to 7"),
    (b"defghijNEXT\r\n", "the rest of the count, then a line, in one send"),
    (b"MULTI\r\n", "found_terminator switches to a 5-byte terminator"),
    (b"line1\r\nline2\r\n", "holds \\r\\n; the trailing \\r\\n may start the terminator"),
    (b".\r", "4 of the 5 terminator bytes are buffered"),
    (b"\n", "the 5th completes it"),
    (b"RAW\r\n", "found_terminator switches to None"),
    (b"raw\r\n.\r\n bytes", "with None, terminators are just data"),
]


def scenario_terminators(env, rec, *, in_buffer_size):
    chat = env.asynchat

    class ProtocolServer(Recording, chat.async_chat):
        """Line protocol: ``LEN n`` reads n bytes, ``MULTI`` reads up to
        ``\\r\\n.\\r\\n``, ``RAW`` collects everything; each record is
        acknowledged with ``ack <length>\\n``."""

        ac_in_buffer_size = in_buffer_size

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("server-conn")
            self.received = 0
            self.pushed = 0
            self.set_terminator(b"\r\n")

        def set_terminator(self, term):
            super().set_terminator(term)
            self.mode = term  # an int terminator counts down to 0; remember what was set

        def recv(self, buffer_size):
            data = super().recv(buffer_size)
            self.received += len(data)
            return data

        def collect_incoming_data(self, data):
            self._collect_incoming_data(data)

        def found_terminator(self):
            record = self._get_data()
            self.log.add("found_terminator", self.mode, record)
            if self.mode != b"\r\n":
                self.set_terminator(b"\r\n")
            elif record.startswith(b"LEN "):
                self.set_terminator(int(record[4:]))
            elif record == b"MULTI":
                self.set_terminator(b"\r\n.\r\n")
            elif record == b"RAW":
                self.set_terminator(None)
            ack = b"ack %d\n" % len(record)
            self.pushed += len(ack)
            self.push(ack)

        def handle_close(self):
            self.log.add("handle_close", {"collected": self._get_data(), "ac_in_buffer": self.ac_in_buffer})
            self.close()

    class Client(Recording, chat.async_chat):
        def __init__(self, address):
            super().__init__(map=env.map)
            self.log = rec.log("client")
            self.received = 0
            self.pushed = 0
            self.set_terminator(b"\n")
            self.create_socket()
            self.connect(address)

        def recv(self, buffer_size):
            data = super().recv(buffer_size)
            self.received += len(data)
            return data

        def handle_connect(self):
            self.log.add("handle_connect")

        def collect_incoming_data(self, data):
            self._collect_incoming_data(data)

        def found_terminator(self):
            self.log.add("found_terminator", self._get_data())

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    listener = start_listener(env, rec, ProtocolServer)
    client = Client(listener.address)
    env.run_until(lambda: client.connected and listener.handlers, "the connection")
    server = listener.handlers[0]
    for data, _ in TERMINATOR_STEPS:
        client.push(data)
        client.pushed += len(data)
        env.run_until(lambda: server.received == client.pushed and client.received == server.pushed,
                      "the step %r to be processed and acknowledged" % data)
        server.log.add("after", data, {"ac_in_buffer": server.ac_in_buffer,
                                       "terminator": server.get_terminator()})
    client.log.add("close()")
    client.close()
    env.run_until(lambda: not env.in_map(server), "the server to see end of stream")
    listener.close()


@pytest.mark.parametrize("in_buffer_size", [65536, 3], ids=["in64k", "in3"])
def test_terminators(differential, in_buffer_size):
    """Bytes terminators (incl. a 2- and a 5-byte one split across sends and
    an empty record), an int terminator (counting down across reads, and
    followed by more data in the same read), None, and changing the
    terminator inside found_terminator. With ac_in_buffer_size=3 the reader
    itself splits every terminator; the records and the state between steps
    are the same."""
    rec = differential.everywhere(scenario_terminators, in_buffer_size=in_buffer_size)
    crlf, multi = b"\r\n", b"\r\n.\r\n"

    def after(step, buffered, terminator):
        return ("after", step, {"ac_in_buffer": buffered, "terminator": terminator})

    found = [
        ("found_terminator", crlf, b"HELLO"),
        after(b"HELLO\r\n", b"", crlf),
        ("found_terminator", crlf, b"A"),
        ("found_terminator", crlf, b"B"),
        ("found_terminator", crlf, b""),
        after(b"A\r\nB\r\n\r\n", b"", crlf),
        after(b"split-term\r", b"\r", crlf),
        ("found_terminator", crlf, b"split-term"),
        after(b"\nafter", b"", crlf),
        ("found_terminator", crlf, b"after"),
        after(b"\r\n", b"", crlf),
        ("found_terminator", crlf, b"LEN 10"),
        after(b"LEN 10\r\n", b"", 10),
        after(b"abc", b"", 7),
        ("found_terminator", 10, b"abcdefghij"),
        ("found_terminator", crlf, b"NEXT"),
        after(b"defghijNEXT\r\n", b"", crlf),
        ("found_terminator", crlf, b"MULTI"),
        after(b"MULTI\r\n", b"", multi),
        after(b"line1\r\nline2\r\n", b"\r\n", multi),
        after(b".\r", b"\r\n.\r", multi),
        ("found_terminator", multi, b"line1\r\nline2"),
        after(b"\n", b"", crlf),
        ("found_terminator", crlf, b"RAW"),
        after(b"RAW\r\n", b"", None),
        after(b"raw\r\n.\r\n bytes", b"", None),
    ]
    assert rec["server-conn"] == found + [
        ("handle_close", {"collected": b"raw\r\n.\r\n bytes", "ac_in_buffer": b""})]
    acks = [("found_terminator", b"ack %d" % len(e[2])) for e in found if e[0] == "found_terminator"]
    assert rec["client"] == [("handle_connect",), *acks, ("close()",)]
    assert rec["listener"] == [("handle_accepted",)]


# ---------------------------------------------------------------------------
# terminators, property-based: any terminator plan, any chunking


def scenario_random_terminators(env, rec, *, plan, pieces, in_buffer_size):
    chat = env.asynchat

    class Chat(Recording, chat.async_chat):
        ac_in_buffer_size = in_buffer_size

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("chat")
            self.plan = list(plan)
            self.received = 0
            self.set_terminator(self.plan.pop(0))

        def set_terminator(self, term):
            super().set_terminator(term)
            self.mode = term

        def recv(self, buffer_size):
            data = super().recv(buffer_size)
            self.received += len(data)
            return data

        def collect_incoming_data(self, data):
            self._collect_incoming_data(data)

        def found_terminator(self):
            self.log.add("found_terminator", self.mode, self._get_data())
            self.set_terminator(self.plan.pop(0) if self.plan else None)

    sender, receiver = env.tcp_pair()
    channel = Chat(receiver)
    sent = 0
    for piece in pieces:
        sender.sendall(piece)
        sent += len(piece)
        env.run_until(lambda: channel.received == sent, "the piece to be read")
        channel.log.add("after", piece, {"ac_in_buffer": channel.ac_in_buffer,
                                         "terminator": channel.get_terminator()})
    channel.log.add("end", {"collected": channel._get_data(), "ac_in_buffer": channel.ac_in_buffer})


ALPHABET = b"ab\r\n."
_terminator = st.one_of(
    st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=3).map(bytes),
    st.integers(min_value=0, max_value=8),
    st.none(),
)


@st.composite
def _stream_and_cuts(draw):
    stream = bytes(draw(st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=40)))
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=len(stream)), max_size=6)) | {len(stream)})
    return [stream[a:b] for a, b in zip([0] + cuts, cuts)]


@pytest.mark.parametrize("use_poll", [False, True], ids=["select", "poll"])
@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(plan=st.lists(_terminator, min_size=1, max_size=6), pieces=_stream_and_cuts(),
       in_buffer_size=st.sampled_from([1, 2, 3, 65536]))
def test_random_terminators(use_poll, plan, pieces, in_buffer_size):
    """Generated terminator plans (bytes of 1-3 bytes from a small alphabet,
    byte counts incl. 0, None; the next one set inside found_terminator) and
    generated chunkings of a generated stream: both implementations make
    the same found_terminator calls and leave the same state after each
    piece; and the records, with their terminators, add up to the stream."""
    # (no ``differential`` fixture here: Hypothesis refuses function-scoped
    # fixtures, so this test parametrizes use_poll itself)
    rec = run_everywhere(scenario_random_terminators, use_poll=use_poll,
                         plan=plan, pieces=pieces, in_buffer_size=in_buffer_size)
    events = rec["chat"]
    rebuilt = b""
    for event in events:
        if event[0] == "found_terminator":
            _, mode, record = event
            if isinstance(mode, int):
                assert mode > 0 and len(record) == mode
                rebuilt += record
            else:
                rebuilt += record + mode
    end = events[-1]
    assert end[0] == "end"
    rebuilt += end[1]["collected"] + end[1]["ac_in_buffer"]
    assert rebuilt == b"".join(pieces)
    assert [e[1] for e in events if e[0] == "after"] == pieces


# ---------------------------------------------------------------------------
# 8. producers and large pushes


class ListProducer:
    """A producer (anything with ``more()``) over a list of chunks; records
    the length of every chunk it hands out, b'' (exhausted) included."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.handed_out = []

    def more(self):
        chunk = self.chunks.pop(0) if self.chunks else b""
        self.handed_out.append(len(chunk))
        return chunk


SIMPLE_DATA = pattern(3000, seed=1)
CUSTOM_CHUNKS = [b"a", b"b" * 100, b"c" * 33]
LARGE_DATA = pattern(204_800, seed=2)


def scenario_producers(env, rec, *, kind):
    chat = env.asynchat

    class CountingSimpleProducer(chat.simple_producer):
        def __init__(self, data, buffer_size):
            super().__init__(data, buffer_size)
            self.handed_out = []

        def more(self):
            chunk = super().more()
            self.handed_out.append(len(chunk))
            return chunk

    class Server(Recording, chat.async_chat):
        # 'custom' sends chunks longer than the output slice
        ac_out_buffer_size = 16 if kind == "custom" else 65536
        producer = None
        snapshot = False

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("server-conn")
            self.set_terminator(b"\n")

        def collect_incoming_data(self, data):
            self._collect_incoming_data(data)

        def initiate_send(self):
            if self.snapshot:
                self.snapshot = False
                self.log.add("producer_fifo when push() starts sending",
                             [len(x) if isinstance(x, bytes) else repr(x) for x in self.producer_fifo])
            super().initiate_send()

        def found_terminator(self):
            self.log.add("request", self._get_data())
            if kind == "simple":
                self.producer = CountingSimpleProducer(SIMPLE_DATA, buffer_size=64)
                self.push_with_producer(self.producer)
            elif kind == "custom":
                self.producer = ListProducer(CUSTOM_CHUNKS)
                self.push(b"header\n")
                self.push_with_producer(self.producer)
                self.push(b"trailer\n")
            else:
                self.snapshot = True
                self.push(LARGE_DATA)
            self.close_when_done()

        def handle_close(self):
            self.log.add("handle_close", {
                "chunks handed out": self.producer.handed_out if self.producer else None,
                "left in producer_fifo": len(self.producer_fifo),
            })
            self.close()

    class Client(Recording, chat.async_chat):
        """Terminator None: every byte goes to collect_incoming_data."""

        def handle_connect(self):
            self.log.add("handle_connect")
            self.push(b"GET\n")

        def collect_incoming_data(self, data):
            self.log.data(data)

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    listener = start_listener(env, rec, Server)
    client = Client(map=env.map)
    client.log = rec.log("client")
    client.set_terminator(None)
    client.create_socket()
    client.connect(listener.address)
    env.run_until(lambda: not env.in_map(client) and not env.in_map(listener.handlers[0]),
                  "both ends to close")
    listener.close()


@pytest.mark.parametrize("kind", ["simple", "custom", "large"])
def test_producers(differential, kind):
    """simple: push_with_producer(simple_producer(3000 bytes, buffer_size=64))
    -- more() hands out 46 x 64 bytes, the 56-byte rest, then b''.
    custom: push / a producer class of our own / push, with
    ac_out_buffer_size=16 so its 100-byte chunk is sent in slices; order is
    kept. large: push() of 200 KiB > ac_out_buffer_size (64 KiB) is queued
    as 64 KiB slices. Each ends with close_when_done(): the client reads all
    of it, then end of stream."""
    rec = differential.everywhere(scenario_producers, kind=kind)
    if kind == "simple":
        body, handed_out, fifo = SIMPLE_DATA, [64] * 46 + [56, 0], []
    elif kind == "custom":
        body, handed_out, fifo = b"header\n" + b"".join(CUSTOM_CHUNKS) + b"trailer\n", [1, 100, 33, 0], []
    else:
        body, handed_out = LARGE_DATA, None
        fifo = [("producer_fifo when push() starts sending", [65536, 65536, 65536, 8192])]
    assert rec == {
        "client": [("handle_connect",), ("data", summary(body)), ("handle_close",)],
        "listener": [("handle_accepted",)],
        "server-conn": [
            ("request", b"GET"),
            *fifo,
            ("handle_close", {"chunks handed out": handed_out, "left in producer_fifo": 0}),
        ],
    }


# ---------------------------------------------------------------------------
# 9. close_when_done


def scenario_close_when_done(env, rec, *, pending):
    chat = env.asynchat

    class Server(Recording, chat.async_chat):
        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("server-conn")
            self.set_terminator(b"\n")

        def collect_incoming_data(self, data):
            self._collect_incoming_data(data)

        def found_terminator(self):
            self.log.add("request", self._get_data())
            if pending:
                self.push(LARGE_DATA)  # more than one send() can take
            self.close_when_done()
            self.log.add("close_when_done() returned", {"connected": self.connected})
            if pending:
                self.push(b"after the close marker\n")
                self.log.add("push() after close_when_done() returned", {"connected": self.connected})

        def handle_close(self):
            self.log.add("handle_close", {"left in producer_fifo": list(self.producer_fifo)})
            self.close()

    class Client(Recording, chat.async_chat):
        def handle_connect(self):
            self.log.add("handle_connect")
            self.push(b"GET\n")

        def collect_incoming_data(self, data):
            self.log.data(data)

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    listener = start_listener(env, rec, Server)
    client = Client(map=env.map)
    client.log = rec.log("client")
    client.set_terminator(None)
    client.create_socket()
    client.connect(listener.address)
    env.run_until(lambda: not env.in_map(client) and not env.in_map(listener.handlers[0]),
                  "both ends to close")
    listener.close()


@pytest.mark.parametrize("pending", [True, False], ids=["pending-output", "empty-queue"])
def test_close_when_done(differential, pending):
    """close_when_done() queues a close marker: the channel stays open until
    everything queued before it is sent (200 KiB here), then closes; data
    pushed *after* the marker is never sent and is still in producer_fifo at
    handle_close. With an empty queue it closes on the next write event, not
    inside close_when_done() itself."""
    rec = differential.everywhere(scenario_close_when_done, pending=pending)
    server = [("request", b"GET"), ("close_when_done() returned", {"connected": True})]
    if pending:
        server += [("push() after close_when_done() returned", {"connected": True}),
                   ("handle_close", {"left in producer_fifo": [b"after the close marker\n"]})]
        client = [("handle_connect",), ("data", summary(LARGE_DATA)), ("handle_close",)]
    else:
        server += [("handle_close", {"left in producer_fifo": []})]
        client = [("handle_connect",), ("handle_close",)]
    assert rec == {"client": client, "listener": [("handle_accepted",)], "server-conn": server}
