"""A write-only channel on an AF_UNIX stream whose peer closed.

Linux reports POLLHUP for a Unix stream once its peer closed (both
directions are shut), so ``poll2``'s ``readwrite()`` calls ``handle_close``
right after ``handle_write``; the channel does not get ``handle_write``
forever. Same callbacks on the stdlib, simnet on real sockets, and simnet on
the fake network.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

from .harness import Recording, run_everywhere


def scenario_write_only_unix_client(env, rec, path):
    ac = env.asyncore

    class Server(Recording, ac.dispatcher):
        def handle_accepted(self, sock, addr):
            self.log.add("handle_accepted")
            sock.close()  # the peer of the client goes away at once

    class WriteOnly(Recording, ac.dispatcher):
        def readable(self):
            return False

        def writable(self):
            return True

        def handle_connect(self):
            self.log.add("handle_connect")

        def handle_write(self):
            self.log.add("handle_write")

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    if os.path.exists(path):
        os.unlink(path)
    server = Server(map=env.map)
    server.log = rec.log("server")
    server.create_socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(5)
    client = WriteOnly(map=env.map)
    client.log = rec.log("client")
    client.create_socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    env.run_until(lambda: server.log.events and not env.in_map(client) or
                  len(client.log.events) > 20, "the client to be closed")
    server.close()


def test_poll2_closes_a_write_only_unix_channel_whose_peer_closed():
    tmp = tempfile.mkdtemp(prefix="simnet-hup-")
    try:
        rec = run_everywhere(scenario_write_only_unix_client, use_poll=True,
                             path=os.path.join(tmp, "srv"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert rec["server"] == [("handle_accepted",)]
    events = [e[0] for e in rec["client"]]
    assert events[-1] == "handle_close"
    assert events.count("handle_close") == 1 and len(events) <= 4
