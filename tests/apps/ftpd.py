"""An FTP server with a passive data channel, on asyncore/asynchat, as a legacy application writes it.

The control connection is an ``async_chat`` line protocol; each transfer
gets a passive data channel: ``PASV`` (IPv4) or ``EPSV`` (any family) opens a
listener on the control connection's local address, the client connects to
it (the server copes with either order of that connection and the transfer
command), and the server sends ``150``, moves the data and replies ``226``
once the data connection is closed. Commands: USER, PASS, SYST, PWD, TYPE, PASV, EPSV,
NLST, LIST, RETR, STOR, NOOP, QUIT -- enough for ``ftplib``'s ``login``,
``nlst``, ``dir``, ``retrbinary``, ``retrlines``, ``storbinary`` and ``quit``.
Files live in memory, in ``server.files``.
"""

import socket

import simnet.asynchat as asynchat
import simnet.asyncore as asyncore


class DataChannel(asynchat.async_chat):
    """One passive data connection: sends a payload, or receives until EOF."""

    def __init__(self, control, sock, map):
        asynchat.async_chat.__init__(self, sock, map)
        self.control = control
        self.received = []
        self.done = False
        self.set_terminator(None)  # no framing: collect everything

    def collect_incoming_data(self, data):
        self.received.append(data)

    def found_terminator(self):  # never called without a terminator
        pass

    def send_payload(self, payload):
        self.push(payload)
        self.close_when_done()

    def handle_close(self):
        # after close_when_done (sent), or at EOF from the client (received)
        self.close()
        if not self.done:
            self.done = True
            self.control.transfer_done(b"".join(self.received))


class DataListener(asyncore.dispatcher):
    """Waits for the one data connection of a passive transfer."""

    def __init__(self, control, map):
        asyncore.dispatcher.__init__(self, map=map)
        self.control = control
        local = control.socket.getsockname()
        self.create_socket(control.socket.family, socket.SOCK_STREAM)
        self.bind((local[0], 0))
        self.listen(1)
        self.port = self.socket.getsockname()[1]

    def handle_accepted(self, sock, addr):
        self.close()
        self.control.data_connected(DataChannel(self.control, sock, self._map))


class FTPControl(asynchat.async_chat):
    """One FTP session on the control connection."""

    def __init__(self, server, sock, map):
        asynchat.async_chat.__init__(self, sock, map)
        self.server = server
        self.set_terminator(b"\r\n")
        self.ibuffer = []
        self.user = None
        self.logged_in = False
        self.type = "A"
        self.listener = None
        self.data = None
        self.pending = None  # (command, argument) waiting for its data connection
        self.transfer = None  # the command whose data is moving
        self.reply("220 simnet apps FTP server ready")

    def reply(self, line):
        self.server.log.append(("reply", line))
        self.push(line.encode("utf-8") + b"\r\n")

    def collect_incoming_data(self, data):
        self.ibuffer.append(data)

    def found_terminator(self):
        line = b"".join(self.ibuffer).decode("utf-8")
        self.ibuffer = []
        command, _, arg = line.partition(" ")
        command = command.upper()
        self.server.log.append(("command", command, arg if command != "PASS" else "***"))
        handler = getattr(self, "ftp_" + command, None)
        if handler is None:
            self.reply("502 Command not implemented")
        elif not self.logged_in and command not in ("USER", "PASS", "QUIT", "SYST"):
            self.reply("530 Please log in with USER and PASS")
        else:
            handler(arg)

    # -- session ---------------------------------------------------------------------
    def ftp_USER(self, arg):
        self.user = arg
        self.logged_in = False
        self.reply("331 Password required for " + arg)

    def ftp_PASS(self, arg):
        if self.user is not None and self.server.users.get(self.user) == arg:
            self.logged_in = True
            self.reply("230 User " + self.user + " logged in")
        else:
            self.reply("530 Login incorrect")

    def ftp_SYST(self, arg):
        self.reply("215 UNIX Type: L8")

    def ftp_PWD(self, arg):
        self.reply('257 "/" is the current directory')

    def ftp_NOOP(self, arg):
        self.reply("200 NOOP ok")

    def ftp_TYPE(self, arg):
        if arg.upper() in ("A", "I", "L 8"):
            self.type = "I" if arg.upper() != "A" else "A"
            self.reply("200 Type set to " + self.type)
        else:
            self.reply("504 Type not supported: " + arg)

    def ftp_QUIT(self, arg):
        self.reply("221 Goodbye")
        self.close_when_done()

    # -- passive mode ----------------------------------------------------------------
    def _listen(self):
        if self.listener is not None:
            self.listener.close()
        if self.data is not None:
            self.data.close()
            self.data = None
        self.listener = DataListener(self, self._map)
        return self.listener

    def ftp_PASV(self, arg):
        if self.socket.family != socket.AF_INET:
            self.reply("522 PASV is IPv4 only, use EPSV")
            return
        listener = self._listen()
        host = self.socket.getsockname()[0].replace(".", ",")
        self.reply("227 Entering Passive Mode (%s,%d,%d)" % (host, listener.port >> 8, listener.port & 0xFF))

    def ftp_EPSV(self, arg):
        listener = self._listen()
        self.reply("229 Entering Extended Passive Mode (|||%d|)" % listener.port)

    def data_connected(self, channel):
        self.listener = None
        self.data = channel
        if self.pending is not None:
            command, arg = self.pending
            self.pending = None
            self.start_transfer(command, arg)

    def _transfer(self, command, arg):
        if self.data is None and self.listener is None:
            self.reply("425 Use PASV or EPSV first")
        elif self.data is None:
            self.pending = (command, arg)  # the client has not connected yet
        else:
            self.start_transfer(command, arg)

    def ftp_NLST(self, arg):
        self._transfer("NLST", arg)

    def ftp_LIST(self, arg):
        self._transfer("LIST", arg)

    def ftp_RETR(self, arg):
        if arg not in self.server.files:
            self.reply("550 No such file: " + arg)
            return
        self._transfer("RETR", arg)

    def ftp_STOR(self, arg):
        self._transfer("STOR", arg)

    def start_transfer(self, command, arg):
        self.transfer = (command, arg)
        files = self.server.files
        if command == "NLST":
            self.reply("150 Here comes the file list")
            self.data.send_payload(b"".join(name.encode() + b"\r\n" for name in sorted(files)))
        elif command == "LIST":
            self.reply("150 Here comes the directory listing")
            self.data.send_payload(b"".join(
                b"-rw-r--r--    1 ftp      ftp      %10d Jan 01  2026 %s\r\n" % (len(files[name]), name.encode())
                for name in sorted(files)))
        elif command == "RETR":
            self.reply("150 Opening %s mode data connection for %s (%d bytes)"
                       % ("BINARY" if self.type == "I" else "ASCII", arg, len(files[arg])))
            self.data.send_payload(files[arg])
        else:  # STOR: the data channel collects until the client closes it
            self.reply("150 Ok to send data")

    def transfer_done(self, received):
        if self.transfer is None:
            # the data connection closed before any command used it
            self.data = None
            return
        command, arg = self.transfer
        self.transfer = None
        self.data = None
        if command == "STOR":
            self.server.files[arg] = received
        self.reply("226 Transfer complete")

    def handle_close(self):
        if self.listener is not None:
            self.listener.close()
        if self.data is not None:
            self.data.close()
        self.close()


class FTPServer(asyncore.dispatcher):
    """Listens on *addr*; ``files`` maps names to contents, ``users`` names to passwords."""

    def __init__(self, addr, map, files, users):
        asyncore.dispatcher.__init__(self, map=map)
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.create_socket(family, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)
        self.address = self.socket.getsockname()
        self.files = dict(files)
        self.users = dict(users)
        self.log = []
        self.sessions = 0

    def handle_accepted(self, sock, addr):
        self.sessions += 1
        FTPControl(self, sock, self._map)
