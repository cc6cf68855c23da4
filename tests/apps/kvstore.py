"""A key-value server and client whose socket map is keyed by socket objects.

Some real asyncore applications keep ``{sock: dispatcher}`` instead of
``{fd: dispatcher}`` (they override ``add_channel``/``del_channel``, and look
channels up by socket); the stdlib's ``asyncore.loop``/``poll`` (select)
accept that, since ``select.select`` takes anything with ``fileno()``.

Protocol, one line each way: ``SET key value`` -> ``OK``, ``GET key`` ->
``VALUE value`` or ``MISSING``, ``DEL key`` -> ``DELETED n``, ``CLIENTS`` ->
the number of connected clients (counted from the map), ``QUIT`` -> ``BYE``
and the server closes. Both ends are plain dispatchers with their own output
buffers: partial sends, EAGAIN on send (``dispatcher.send`` returns 0) and on
recv (caught in ``handle_read``) are handled as asyncore programs must.
"""

import socket

import simnet.asyncore as asyncore


class SocketKeyed:
    """Mix-in: register the channel in its map under its socket object
    (under its file number, as asyncore does, when ``key_by_socket`` is
    false: the application has a switch for it)."""

    key_by_socket = True

    def map_key(self):
        return self.socket if self.key_by_socket else self._fileno

    def add_channel(self, map=None):
        if map is None:
            map = self._map
        map[self.map_key()] = self

    def del_channel(self, map=None):
        if map is None:
            map = self._map
        map.pop(self.map_key(), None)
        self._fileno = None


class LineDispatcher(SocketKeyed, asyncore.dispatcher):
    """A dispatcher with an output buffer and line input."""

    def __init__(self, sock=None, map=None, key_by_socket=True):
        self.key_by_socket = key_by_socket
        asyncore.dispatcher.__init__(self, sock, map)
        self.outbuf = b""
        self.inbuf = b""
        self.closing = False

    def write_line(self, line):
        self.outbuf += line + b"\n"

    def writable(self):
        return bool(self.outbuf) or not self.connected

    def handle_write(self):
        sent = self.send(self.outbuf[:65536])  # 0 on EAGAIN
        self.outbuf = self.outbuf[sent:]
        if self.closing and not self.outbuf:
            self.close()

    def handle_read(self):
        try:
            data = self.recv(65536)
        except BlockingIOError:
            return
        self.inbuf += data
        while b"\n" in self.inbuf and self.socket is not None:
            line, _, self.inbuf = self.inbuf.partition(b"\n")
            self.handle_line(line)

    def handle_close(self):
        self.close()


class KVChannel(LineDispatcher):
    """The server's end of one client connection."""

    def __init__(self, server, sock, map):
        LineDispatcher.__init__(self, sock, map, server.key_by_socket)
        self.server = server
        assert map[self.map_key()] is self

    def handle_line(self, line):
        command, _, rest = line.decode().partition(" ")
        store = self.server.store
        self.server.log.append(command)
        if command == "SET":
            key, _, value = rest.partition(" ")
            store[key] = value
            self.write_line(b"OK")
        elif command == "GET":
            value = store.get(rest)
            self.write_line(b"MISSING" if value is None else ("VALUE " + value).encode())
        elif command == "DEL":
            self.write_line(b"DELETED %d" % (store.pop(rest, None) is not None))
        elif command == "CLIENTS":
            count = sum(isinstance(ch, KVChannel) for ch in self._map.values())
            self.write_line(b"CLIENTS %d" % count)
        elif command == "QUIT":
            self.write_line(b"BYE")
            self.closing = True
        else:
            self.write_line(b"ERROR unknown command")


class KVServer(SocketKeyed, asyncore.dispatcher):
    def __init__(self, addr, map, key_by_socket=True):
        self.key_by_socket = key_by_socket
        asyncore.dispatcher.__init__(self, map=map)
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(16)
        self.address = self.socket.getsockname()
        self.store = {}
        self.log = []
        self.accepted = 0

    def handle_accepted(self, sock, addr):
        self.accepted += 1
        KVChannel(self, sock, self._map)


class KVClient(LineDispatcher):
    """Sends *requests* (lines) one at a time, collecting the replies; closes after the last."""

    def __init__(self, addr, requests, map, key_by_socket=True):
        LineDispatcher.__init__(self, map=map, key_by_socket=key_by_socket)
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.connect(addr)
        self.requests = list(requests)
        self.replies = []
        self.done = False
        self.write_line(self.requests[0])

    def handle_connect(self):
        pass

    def handle_line(self, line):
        self.replies.append(line.decode())
        if len(self.replies) < len(self.requests):
            self.write_line(self.requests[len(self.replies)])
        else:
            self.done = True
            self.close()

    def handle_close(self):
        self.done = True
        self.close()
