"""``os.sendfile`` and ``socket.sendfile`` on fake sockets inside ``net.patch()``.

What is checked:

* a small FTP server of our own (asynchat control channel, passive data
  connections) that sends files with ``os.sendfile`` on non-blocking sockets,
  driven by ``ftplib`` (``retrbinary``), delivers the exact bytes on the fake
  network (twice: same bytes, same virtual time) and on real loopback;
* ``os.sendfile`` never claims more than it sent: on a full send buffer a
  non-blocking socket gets ``BlockingIOError`` with the file untouched, a
  partial send reports the partial count, a fake socket as the *source* is
  EINVAL (as Linux says for a socket), and ``offset=None`` moves the file
  position by what was sent;
* ``socket.sendfile`` on a fake socket sends a file (and falls back to
  ``send()`` for a non-regular file).
"""

from __future__ import annotations

import errno
import ftplib
import hashlib
import io
import os
import socket
import sys
import threading

import pytest

import simnet
from simnet.fakesock import FakeNetwork
from simnet.fakesock.sendfile import REAL_SENDFILE


class PassiveListener(simnet.dispatcher):
    """The passive data port of one transfer: accepts one connection."""

    def __init__(self, control, host):
        super().__init__(map=control._map)
        self.control = control
        self.create_socket()
        self.bind((host, 0))
        self.listen(1)
        self.sock = None

    def handle_accepted(self, sock, addr):
        self.sock = sock
        self.close()
        self.control.maybe_start()


class SendfileConn(simnet.dispatcher):
    """A data connection sending one file with os.sendfile."""

    def __init__(self, sock, control, path):
        super().__init__(sock, map=control._map)
        self.control = control
        self.file = open(path, "rb")
        self.size = os.fstat(self.file.fileno()).st_size
        self.offset = 0

    def readable(self):
        return False

    def handle_write(self):
        try:
            sent = os.sendfile(self.socket.fileno(), self.file.fileno(), self.offset, 65536)
        except BlockingIOError:
            return
        self.offset += sent
        if sent == 0 or self.offset >= self.size:
            self.file.close()
            self.close()
            self.control.push(b"226 Transfer complete.\r\n")


class FTPControl(simnet.async_chat):
    def __init__(self, sock, root, map):
        super().__init__(sock, map=map)
        self.root = root
        self.set_terminator(b"\r\n")
        self.buf = []
        self.listener = None
        self.path = None
        self.push(b"220 sendfile FTP ready\r\n")

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def maybe_start(self):
        if self.listener is not None and self.listener.sock is not None and self.path is not None:
            SendfileConn(self.listener.sock, self, self.path)
            self.listener = self.path = None

    def found_terminator(self):
        line = b"".join(self.buf).decode()
        self.buf = []
        cmd, _, arg = line.partition(" ")
        cmd = cmd.upper()
        if cmd == "USER":
            self.push(b"331 Password required.\r\n")
        elif cmd == "PASS":
            self.push(b"230 Logged in.\r\n")
        elif cmd == "TYPE":
            self.push(b"200 Type set.\r\n")
        elif cmd == "PASV":
            host = self.socket.getsockname()[0]
            self.listener = PassiveListener(self, host)
            port = self.listener.socket.getsockname()[1]
            self.push(f"227 Entering Passive Mode ({host.replace('.', ',')},{port >> 8},{port & 255}).\r\n".encode())
        elif cmd == "RETR":
            self.path = os.path.join(self.root, os.path.basename(arg))
            self.push(b"150 Opening data connection.\r\n")
            self.maybe_start()
        elif cmd == "QUIT":
            self.push(b"221 Bye.\r\n")
            self.close_when_done()
        else:
            self.push(b"502 Not implemented.\r\n")


class FTPServer(simnet.dispatcher):
    def __init__(self, address, root, map=None):
        super().__init__(map=map)
        self.root = root
        self.create_socket()
        self.set_reuse_addr()
        self.bind(address)
        self.listen(5)

    def handle_accepted(self, sock, addr):
        FTPControl(sock, self.root, self._map)


def _files(tmp_path):
    blobs = {"small.bin": b"hello sendfile\n", "big.bin": bytes(range(256)) * 3000}
    for name, blob in blobs.items():
        (tmp_path / name).write_bytes(blob)
    return blobs


def _download(host, port, names):
    out = {}
    with ftplib.FTP() as ftp:
        ftp.connect(host, port, timeout=30)
        ftp.login()
        for name in names:
            chunks = []
            ftp.retrbinary(f"RETR {name}", chunks.append)
            out[name] = b"".join(chunks)
    return out


def test_an_ftp_server_sending_with_os_sendfile_serves_ftplib_on_the_fake_network(tmp_path):
    blobs = _files(tmp_path)
    runs = []
    for _ in range(2):
        with FakeNetwork(seed=21) as net, net.patch():
            FTPServer(("127.0.0.1", 2121), str(tmp_path))
            got = _download("127.0.0.1", 2121, sorted(blobs))
            runs.append(({k: hashlib.sha256(v).hexdigest() for k, v in got.items()}, net.time()))
            simnet.close_all()
    assert runs[0][0] == {k: hashlib.sha256(v).hexdigest() for k, v in blobs.items()}
    assert runs[1] == runs[0]


def test_the_same_ftp_server_on_loopback(tmp_path):
    blobs = _files(tmp_path)
    m = {}
    server = FTPServer(("127.0.0.1", 0), str(tmp_path), map=m)
    port = server.socket.getsockname()[1]
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            simnet.loop(timeout=0.05, map=m, count=1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        got = _download("127.0.0.1", port, sorted(blobs))
    finally:
        stop.set()
        thread.join(5)
        simnet.close_all(m)
    assert got == blobs


def test_os_sendfile_reports_exactly_what_it_sent(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 500_000)
    with FakeNetwork(seed=1, sndbuf=16384, rcvbuf=65536) as net, net.patch(), open(path, "rb") as f:
        a, b = socket.socketpair()
        a.setblocking(False)
        fd = f.fileno()
        total = 0
        with pytest.raises(BlockingIOError):
            while True:
                sent = os.sendfile(a.fileno(), fd, total, 100_000)
                assert sent > 0
                total += sent
        assert 0 < total < 500_000
        got = b""
        while len(got) < total:
            got += b.recv(1 << 20)
        assert got == b"x" * total  # what it said it sent arrived, nothing more
        with pytest.raises(OSError) as info:
            os.sendfile(b.fileno(), a.fileno(), 0, 10)
        assert info.value.errno == errno.EINVAL
        f.seek(0)
        b.setblocking(False)
        sent = os.sendfile(a.fileno(), fd, None, 1000)
        assert sent == 1000 and f.tell() == 1000  # offset None: the file position moves
        assert os.sendfile(a.fileno(), fd, 0, 0) == 0
        a.close()
        b.close()
    assert os.sendfile is REAL_SENDFILE  # restored after the patch


def test_socket_sendfile_on_a_fake_socket(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 1000)
    with FakeNetwork(seed=1) as net, net.patch(), open(path, "rb") as f:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 9))
        srv.listen()
        c = socket.create_connection(("127.0.0.1", 9))
        s, _ = srv.accept()
        assert c.sendfile(f, offset=256, count=1024) == 1024
        assert f.tell() == 256 + 1024
        assert s.recv(4096) == bytes(range(256)) * 4
        assert c.sendfile(io.BytesIO(b"not a file")) == 10  # the send() fallback
        assert s.recv(100) == b"not a file"
        for sock in (c, s, srv):
            sock.close()


class _Two:
    def __index__(self):
        return 2

    def __repr__(self) -> str:
        return "_Two()"


# os.sendfile's offset and count as CPython converts them: count (a C ssize_t)
# first, then offset (a C long); bools and __index__ objects are integers
SENDFILE_ARGS = [(0, 2 ** 63), (0, -2 ** 64), (2 ** 63, 1), (-2 ** 64, 1), ("x", "y"),
                 (2 ** 63, "y"), ("x", 2 ** 63), (2 ** 63, -1), (1.5, 1), (0, 1.5),
                 (True, 1), (0, True), (_Two(), _Two()), (0, -1), (-1, 1), (None, 2)]


def _sendfile_outcomes(make_pair, path):
    """What os.sendfile and socket.sendfile do with each argument pair (and
    the bytes that arrived), on the sockets *make_pair* returns."""
    a, b = make_pair()
    b.setblocking(False)
    out = []
    try:
        with open(path, "rb") as f:
            calls = [
                ("os", lambda offset, count: os.sendfile(a.fileno(), f.fileno(), offset, count)),
                # 3.13 hands os.sendfile at most 1 GiB a call, so a count of
                # 2**63 is no OverflowError there (it is on 3.11 and 3.12)
                ("socket", lambda offset, count: a.sendfile(f, offset, count)),
            ]
            for name, call in calls:
                for offset, count in SENDFILE_ARGS + [(0, 2 ** 64)]:
                    if name == "socket" and not (isinstance(count, int) and count > 2 ** 62):
                        continue
                    try:
                        got = ("ok", call(offset, count))
                    except Exception as exc:  # noqa: BLE001 -- the outcome is the point
                        got = (type(exc).__name__, str(exc))
                    received = b""
                    try:
                        while True:
                            chunk = b.recv(65536)
                            if not chunk:
                                break
                            received += chunk
                    except BlockingIOError:
                        pass
                    out.append((name, repr(offset), repr(count), got, len(received)))
    finally:
        a.close()
        b.close()
    return out


def test_sendfile_takes_and_rejects_what_cpython_does(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    real = _sendfile_outcomes(socket.socketpair, path)
    with FakeNetwork(seed=1) as net, net.patch():
        fake = _sendfile_outcomes(socket.socketpair, path)
    assert fake == real
    by_call = {(name, offset, count): got for name, offset, count, got, _ in real}
    assert by_call[("os", "True", "1")] == ("ok", 1)
    assert by_call[("os", "'x'", "9223372036854775808")] == (
        "OverflowError", "Python int too large to convert to C ssize_t")
    huge = by_call[("socket", "0", "9223372036854775808")]
    if sys.version_info >= (3, 13):
        assert huge == ("ok", 10)
    else:
        assert huge == ("OverflowError", "Python int too large to convert to C ssize_t")
