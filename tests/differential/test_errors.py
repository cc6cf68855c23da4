"""Exceptions raised in handlers: handle_error (10) and ExitNow & co (11)."""

import builtins

import pytest

from .harness import Recording, event_names, start_listener

# ---------------------------------------------------------------------------
# 10. handle_error


def scenario_handler_raises(env, rec, *, where):
    ac, chat = env.asyncore, env.asynchat

    class RaisingReader(Recording, ac.dispatcher):
        """Server side: raises ValueError once the whole request is in."""

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("server-conn")

        def writable(self):
            return False

        def handle_read(self):
            self.log.data(self.recv(100))
            if self.log.received.endswith(b"boom\n"):
                raise ValueError("boom in handle_read")

        def handle_close(self):
            self.log.add("handle_close", {"in map": env.in_map(self)})
            self.close()

    class BrokenRepr(RaisingReader):
        def __repr__(self):
            raise RuntimeError("no repr today")

    class RaisingChat(Recording, chat.async_chat):
        """Server side: async_chat whose found_terminator raises KeyError."""

        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("server-conn")
            self.set_terminator(b"\n")

        def collect_incoming_data(self, data):
            self._collect_incoming_data(data)

        def found_terminator(self):
            record = self._get_data()
            self.log.add("found_terminator", record)
            raise KeyError(record)

        def handle_close(self):
            self.log.add("handle_close", {"in map": env.in_map(self)})
            self.close()

    class QuietReader(RaisingReader):
        """Server side for the handle_connect case: never raises."""

        def handle_read(self):
            self.log.data(self.recv(100))

    class Client(Recording, ac.dispatcher_with_send):
        def handle_connect(self):
            self.log.add("handle_connect")
            if where == "handle_connect":
                raise RuntimeError("boom in handle_connect")
            self.send(b"client-0:boom\n")

        def handle_read(self):
            self.log.data(self.recv(100))

        def handle_close(self):
            self.log.add("handle_close", {"connected": self.connected, "connecting": self.connecting})
            self.close()

    handler = {"handle_read": RaisingReader, "broken-repr": BrokenRepr,
               "found_terminator": RaisingChat, "handle_connect": QuietReader}[where]
    listener = start_listener(env, rec, handler)
    client = Client(map=env.map)
    client.log = rec.log("client")
    client.create_socket()
    client.connect(listener.address)
    env.run_until(lambda: listener.handlers and not env.in_map(listener.handlers[0])
                  and not env.in_map(client), "both ends to close")
    rec.log("driver").add("left in the map", len(env.map))
    listener.close()


@pytest.mark.parametrize("where", ["handle_read", "broken-repr", "found_terminator", "handle_connect"])
def test_handler_raises(differential, where):
    """An exception in a handler (handle_read; the same with a __repr__ that
    fails too; async_chat's found_terminator; a client's handle_connect)
    goes to handle_error, which logs it through log_info('error') -- the
    channel's repr, the exception, and the frames of compact_traceback --
    then calls handle_close; the channel leaves the map. A client whose
    handle_connect raised is closed still 'connecting', never 'connected'."""
    rec = differential.everywhere(scenario_handler_raises, where=where)
    dispatch = "readwrite" if differential.use_poll else "read"
    local = f"{__name__}.scenario_handler_raises.<locals>"
    if where == "handle_connect":
        raiser = "client"
        expected_error = ("handle_error", "RuntimeError", "boom in handle_connect")
        dispatch = "readwrite" if differential.use_poll else "write"
        frames = (f"[asyncore.py|{dispatch}] [asyncore.py|handle_write_event] "
                  "[asyncore.py|handle_connect_event] [test_errors.py|handle_connect]")
        who = f"<{local}.Client HOST:PORT at 0xID>"
        exc = "<class 'RuntimeError'>:boom in handle_connect"
    else:
        raiser = "server-conn"
        if where == "found_terminator":
            expected_error = ("handle_error", "KeyError", "b'client-0:boom'")
            frames = (f"[asyncore.py|{dispatch}] [asyncore.py|handle_read_event] "
                      "[asynchat.py|handle_read] [test_errors.py|found_terminator]")
            who = f"<{local}.RaisingChat connected HOST:PORT at 0xID>"
            exc = "<class 'KeyError'>:b'client-0:boom'"
        else:
            expected_error = ("handle_error", "ValueError", "boom in handle_read")
            frames = (f"[asyncore.py|{dispatch}] [asyncore.py|handle_read_event] "
                      "[test_errors.py|handle_read]")
            who = (f"<{local}.RaisingReader connected HOST:PORT at 0xID>" if where == "handle_read"
                   else "<__repr__(self) failed for object at ID>")
            exc = "<class 'ValueError'>:boom in handle_read"
    message = f"uncaptured python exception, closing channel {who} ({exc} {frames})"
    error_part = [expected_error, ("log_info", "error", message)]

    if raiser == "client":
        assert rec["client"] == [("handle_connect",), *error_part,
                                 ("handle_close", {"connected": False, "connecting": True})]
        assert rec["server-conn"] == [("handle_close", {"in map": True})]
    else:
        assert rec["client"] == [("handle_connect",),
                                 ("handle_close", {"connected": True, "connecting": False})]
        before = ([("found_terminator", b"client-0:boom")] if where == "found_terminator"
                  else [("data", b"client-0:boom\n")])
        assert rec["server-conn"] == [*before, *error_part, ("handle_close", {"in map": True})]
    assert rec["driver"] == [("left in the map", 1)]  # only the listener


# ---------------------------------------------------------------------------
# 11. ExitNow (and the other exceptions loop() lets through)


def scenario_exit_now(env, rec, *, exc_name):
    ac = env.asyncore
    exc_type = ac.ExitNow if exc_name == "ExitNow" else getattr(builtins, exc_name)

    class Server(Recording, ac.dispatcher):
        def __init__(self, sock):
            super().__init__(sock, map=env.map)
            self.log = rec.log("server-conn")

        def writable(self):
            return False

        def handle_read(self):
            self.log.data(self.recv(100))
            if self.log.received.endswith(b"exit\n"):
                self.log.add("raise", exc_name)
                raise exc_type("leave the loop")

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    class Client(Recording, ac.dispatcher_with_send):
        def handle_connect(self):
            self.log.add("handle_connect")
            self.send(b"exit\n")

        def handle_read(self):
            self.log.data(self.recv(100))

        def handle_close(self):
            self.log.add("handle_close")
            self.close()

    driver = rec.log("driver")
    listener = start_listener(env, rec, Server)
    client = Client(map=env.map)
    client.log = rec.log("client")
    client.create_socket()
    client.connect(listener.address)
    try:
        env.run_until(lambda: listener.handlers and ("raise", exc_name) in listener.handlers[0].log.events,
                      "the handler to raise")
    except exc_type as exc:
        driver.add("loop() raised", type(exc).__name__, str(exc), type(exc) is exc_type)
    else:
        driver.add("loop() returned normally")
    server = listener.handlers[0]
    driver.add("after the exception", {"server in map": env.in_map(server),
                                       "server connected": server.connected})
    # The loop can be entered again; the channel was left alone.
    server.close()
    env.run_until(lambda: not env.in_map(client), "the client to close")
    listener.close()


@pytest.mark.parametrize("exc_name", ["ExitNow", "SystemExit", "KeyboardInterrupt"])
def test_exit_now_propagates(differential, exc_name):
    """ExitNow raised in a handler (also SystemExit and KeyboardInterrupt)
    propagates out of loop() unchanged: handle_error and handle_close are
    not called and the channel stays in the map, connected."""
    rec = differential.everywhere(scenario_exit_now, exc_name=exc_name)
    assert rec["driver"] == [
        ("loop() raised", exc_name, "leave the loop", True),
        ("after the exception", {"server in map": True, "server connected": True}),
    ]
    assert rec["server-conn"] == [("data", b"exit\n"), ("raise", exc_name)]
    assert "handle_error" not in event_names(rec["server-conn"])
    assert rec["client"] == [("handle_connect",), ("handle_close",)]
