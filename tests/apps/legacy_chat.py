"""An unmodified asyncore/asynchat program, as found in the wild.

It imports the stdlib module names only. Run it as a script: it serves one
line-based client on loopback, prints the transcript and exits 0 on success.
"""
import asynchat
import asyncore
import socket
import sys


class LineHandler(asynchat.async_chat):
    def __init__(self, sock, map):
        asynchat.async_chat.__init__(self, sock, map)
        self.set_terminator(b"\r\n")
        self.buffer = []

    def collect_incoming_data(self, data):
        self.buffer.append(data)

    def found_terminator(self):
        line = b"".join(self.buffer)
        self.buffer = []
        if line == b"QUIT":
            self.push(b"221 bye\r\n")
            self.close_when_done()
        else:
            self.push(b"250 " + line.upper() + b"\r\n")


class Server(asyncore.dispatcher):
    def __init__(self, map):
        asyncore.dispatcher.__init__(self, map=map)
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(("127.0.0.1", 0))
        self.listen(5)

    def handle_accept(self):
        pair = self.accept()
        if pair is not None:
            LineHandler(pair[0], self._map)


class Client(asynchat.async_chat):
    def __init__(self, addr, map):
        asynchat.async_chat.__init__(self, map=map)
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.connect(addr)
        self.set_terminator(b"\r\n")
        self.replies = []
        self.buffer = []
        self.push(b"hello\r\nworld\r\nQUIT\r\n")

    def collect_incoming_data(self, data):
        self.buffer.append(data)

    def found_terminator(self):
        self.replies.append(b"".join(self.buffer).decode())
        self.buffer = []

    def handle_close(self):
        self.close()


def main():
    channels = {}
    server = Server(channels)
    client = Client(server.socket.getsockname(), channels)
    passes = 0
    while client.socket is not None and client._fileno is not None and passes < 500:
        asyncore.loop(timeout=0.05, map=channels, count=1)
        passes += 1
    server.close()
    asyncore.close_all(channels)
    print("asyncore module:", asyncore.__name__, getattr(asyncore, "__file__", "?"))
    print("replies:", client.replies)
    return 0 if client.replies == ["250 HELLO", "250 WORLD", "221 bye"] else 1


if __name__ == "__main__":
    sys.exit(main())
