"""Maps keyed by socket objects instead of file numbers.

Real applications build ``{sock: dispatcher}`` maps and hand them to
``asyncore.poll()`` / ``loop()``: ``select.select`` takes any object with a
``fileno()`` method and returns the same objects, so ``map.get(obj)`` finds
the channel and the program works. ``poll2()`` registers the objects too, but
``select.poll`` reports plain file numbers, which are not keys of such a map:
the stdlib dispatches nothing (the program spins). simnet must do the same,
on real sockets and on the fake network (where it once raised TypeError).
"""

from __future__ import annotations

import pytest

from .harness import Recording, run_everywhere


def scenario_socket_keyed(env, rec, poller, passes):
    ac = env.asyncore
    smap: dict = {}

    class Handler(Recording, ac.dispatcher):
        def writable(self):
            return False

        def handle_read(self):
            data = self.recv(100)
            self.log.data(data)
            if data:
                self.send(data.upper())

        def handle_close(self):
            self.log.add("handle_close")
            smap.pop(self.socket, None)
            self.close()

    class Server(Recording, ac.dispatcher):
        def handle_accepted(self, sock, addr):
            self.log.add("handle_accepted")
            handler = Handler(sock, map=env.map)
            handler.log = rec.log("server-conn")
            smap[sock] = handler

    class Client(Recording, ac.dispatcher):
        got = b""

        def writable(self):
            return not self.connected

        def handle_connect(self):
            self.log.add("handle_connect")
            self.send(b"hello")

        def handle_write(self):
            pass

        def handle_read(self):
            data = self.recv(100)
            self.log.data(data)
            self.got += data
            if self.got == b"HELLO":
                smap.pop(self.socket)
                self.close()
                self.log.add("closed")

    server = Server(map=env.map)
    server.log = rec.log("server")
    server.create_socket()
    server.set_reuse_addr()
    server.bind(env.listen_address())
    server.listen(5)
    smap[server.socket] = server
    client = Client(map=env.map)
    client.log = rec.log("client")
    client.create_socket()
    client.connect(server.socket.getsockname())
    smap[client.socket] = client
    one_pass = ac.poll if poller == "select" else ac.poll2
    n = 0
    while n < passes and not (client.got == b"HELLO" and len(smap) == 1):
        one_pass(env.target.pass_timeout, smap)
        n += 1
    rec.log("result").add("map left", sorted(type(v).__name__ for v in smap.values()))


def test_select_poll_serves_socket_keyed_map():
    rec = run_everywhere(scenario_socket_keyed, poller="select", passes=200)
    assert rec["client"] == [("handle_connect",), ("data", b"HELLO"), ("closed",)]
    assert rec["server-conn"] == [("data", b"hello"), ("handle_close",)]
    assert rec["result"] == [("map left", ["Server"])]


@pytest.mark.parametrize("passes", [5, 20])
def test_poll2_dispatches_nothing_for_socket_keys(passes):
    # select.poll reports file numbers; map.get(number) finds nothing
    rec = run_everywhere(scenario_socket_keyed, poller="poll", passes=passes)
    assert rec["client"] == [] and rec["server"] == []
    assert rec["result"] == [("map left", ["Client", "Server"])]
