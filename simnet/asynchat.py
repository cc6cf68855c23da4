r"""Drop-in replacement for CPython 3.11's ``asynchat`` (removed in 3.12).

:class:`async_chat` is a dispatcher for command/response protocols (SMTP,
FTP, POP3, chat): it reads until the current *terminator* -- a byte string
such as ``b"\r\n"``, a byte count, or ``None`` for "everything" -- and calls
``found_terminator()``; ``push()`` queues output that the loop sends as the
socket accepts it.

Same public names and behaviour as the stdlib module; it is built on
``simnet.asyncore``, so it runs on real sockets or on a fake network.

(PYTEST_DONT_REWRITE: pytest, which loads simnet as a plugin, leaves this
module as it is, so its namespace stays exactly the stdlib's.)
"""

from collections import deque

from simnet import asyncore


class async_chat(asyncore.dispatcher):
    """An abstract channel for terminator-delimited protocols.

    Subclasses implement ``collect_incoming_data(data)`` and
    ``found_terminator()``. For example, a line-echo server channel::

        class Echo(simnet.async_chat):
            def __init__(self, sock):
                super().__init__(sock)
                self.buf = []
                self.set_terminator(b"\\n")
            def collect_incoming_data(self, data):
                self.buf.append(data)
            def found_terminator(self):
                self.push(b"".join(self.buf) + b"\\n")
                self.buf = []
    """

    # overridable defaults
    ac_in_buffer_size = 65536
    ac_out_buffer_size = 65536

    # str data is an application bug unless encoding is asked for explicitly
    use_encoding = 0
    encoding = "latin-1"

    def __init__(self, sock=None, map=None):
        #: bytes received but not yet matched against the terminator
        self.ac_in_buffer = b""
        #: pieces gathered by the default _collect_incoming_data helper
        self.incoming = []
        #: queued output: bytes-like objects, producers, and None (= close)
        self.producer_fifo = deque()
        asyncore.dispatcher.__init__(self, sock, map)

    def collect_incoming_data(self, data):
        raise NotImplementedError("must be implemented in subclass")

    def _collect_incoming_data(self, data):
        self.incoming.append(data)

    def _get_data(self):
        data = b"".join(self.incoming)
        del self.incoming[:]
        return data

    def found_terminator(self):
        raise NotImplementedError("must be implemented in subclass")

    def set_terminator(self, term):
        """Set the input delimiter: a byte string of any length, a number of
        bytes (``>= 0``), or ``None`` (pass everything to collect_incoming_data)."""
        if isinstance(term, str) and self.use_encoding:
            term = bytes(term, self.encoding)
        elif isinstance(term, int) and term < 0:
            raise ValueError("the number of received bytes must be positive")
        self.terminator = term

    def get_terminator(self):
        return self.terminator

    def handle_read(self):
        try:
            data = self.recv(self.ac_in_buffer_size)
        except BlockingIOError:
            return
        except OSError:
            self.handle_error()
            return

        if isinstance(data, str) and self.use_encoding:
            # Deliberate fix: the stdlib calls bytes(str, ...) here (the type,
            # not the data) and always fails with TypeError.
            data = bytes(data, self.encoding)
        self.ac_in_buffer = self.ac_in_buffer + data

        # One recv may hold several records; the terminator may change in
        # found_terminator(), so it is read again for each one.
        while self.ac_in_buffer:
            buffered = len(self.ac_in_buffer)
            terminator = self.get_terminator()
            if not terminator:
                # None (or 0 / b""): everything goes to the collector
                self.collect_incoming_data(self.ac_in_buffer)
                self.ac_in_buffer = b""
            elif isinstance(terminator, int):
                # a byte count
                if buffered < terminator:
                    self.collect_incoming_data(self.ac_in_buffer)
                    self.ac_in_buffer = b""
                    self.terminator = self.terminator - buffered
                else:
                    self.collect_incoming_data(self.ac_in_buffer[:terminator])
                    self.ac_in_buffer = self.ac_in_buffer[terminator:]
                    self.terminator = 0
                    self.found_terminator()
            else:
                # a delimiter: found whole; or a prefix of it ends the buffer
                # (keep that prefix for the next read); or neither.
                index = self.ac_in_buffer.find(terminator)
                if index != -1:
                    if index > 0:
                        # an empty record is not reported to the collector
                        self.collect_incoming_data(self.ac_in_buffer[:index])
                    self.ac_in_buffer = self.ac_in_buffer[index + len(terminator):]
                    self.found_terminator()
                    continue
                partial = find_prefix_at_end(self.ac_in_buffer, terminator)
                if partial:
                    if partial != buffered:
                        self.collect_incoming_data(self.ac_in_buffer[:-partial])
                        self.ac_in_buffer = self.ac_in_buffer[-partial:]
                    break
                self.collect_incoming_data(self.ac_in_buffer)
                self.ac_in_buffer = b""

    def handle_write(self):
        self.initiate_send()

    def handle_close(self):
        self.close()

    def push(self, data):
        """Queue *data* (bytes-like) for sending and start sending it."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            # the stdlib's exact exception: the message unformatted, the type as
            # a second argument (code that inspects exc.args sees the same)
            raise TypeError("data argument must be byte-ish (%r)", type(data))
        size = self.ac_out_buffer_size
        if len(data) > size:
            for i in range(0, len(data), size):
                self.producer_fifo.append(data[i:i + size])
        else:
            self.producer_fifo.append(data)
        self.initiate_send()

    def push_with_producer(self, producer):
        """Queue a producer: an object whose ``more()`` returns the next chunk
        of bytes, and ``b""`` when it is exhausted."""
        self.producer_fifo.append(producer)
        self.initiate_send()

    def readable(self):
        "predicate for inclusion in the readable for select()"
        # Always readable: limiting reads by buffer size would break the
        # guarantee of set_terminator().
        return 1

    def writable(self):
        "predicate for inclusion in the writable for select()"
        return self.producer_fifo or (not self.connected)

    def close_when_done(self):
        "automatically close this channel once the outgoing queue is empty"
        self.producer_fifo.append(None)

    def initiate_send(self):
        """Send from the head of the output queue: at most one send() call."""
        while self.producer_fifo and self.connected:
            first = self.producer_fifo[0]
            if not first:
                # an empty chunk is dropped; None means "close now"
                del self.producer_fifo[0]
                if first is None:
                    self.handle_close()
                    return

            size = self.ac_out_buffer_size
            try:
                data = first[:size]
            except TypeError:
                # a producer: replace it by its next chunk, or drop it when done
                data = first.more()
                if data:
                    self.producer_fifo.appendleft(data)
                else:
                    del self.producer_fifo[0]
                continue

            if isinstance(data, str) and self.use_encoding:
                data = bytes(data, self.encoding)

            try:
                num_sent = self.send(data)
            except OSError:
                self.handle_error()
                return

            if num_sent:
                if num_sent < len(data) or size < len(first):
                    self.producer_fifo[0] = first[num_sent:]
                else:
                    del self.producer_fifo[0]
            # one send per call, whatever it sent
            return

    def discard_buffers(self):
        """Drop all buffered input and queued output (emergencies only)."""
        self.ac_in_buffer = b""
        del self.incoming[:]
        self.producer_fifo.clear()


class simple_producer:
    """A producer over a byte string, yielding *buffer_size* bytes at a time."""

    def __init__(self, data, buffer_size=512):
        self.data = data
        self.buffer_size = buffer_size

    def more(self):
        if len(self.data) > self.buffer_size:
            chunk = self.data[:self.buffer_size]
            self.data = self.data[self.buffer_size:]
            return chunk
        chunk = self.data
        self.data = b""
        return chunk


def find_prefix_at_end(haystack, needle):
    """Length of the longest proper prefix of *needle* that ends *haystack*.

    ``find_prefix_at_end(b"qwerty\\r", b"\\r\\n") == 1``; 0 when none does.
    (The caller has already checked that *needle* itself is not in *haystack*.)
    """
    n = len(needle) - 1
    while n and not haystack.endswith(needle[:n]):
        n -= 1
    return n
