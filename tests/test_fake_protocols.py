"""The fake socket's protocol modules (simnet.fakesock.tcp, simnet.fakesock.dgram):
state made per role, readiness flags that follow the state, no calls back
into the facade, and what a connection costs the garbage collector."""

from __future__ import annotations

import ast
import gc
import pathlib
import select
import socket

from hypothesis import given, settings
from hypothesis import strategies as st

import simnet.fakesock.dgram as dgram_mod
import simnet.fakesock.tcp as tcp_mod
import simnet.fakesock.unixnames as unixnames_mod
from simnet.fakesock import FakeNetwork
from simnet.fakesock.dgram import DatagramQueue
from simnet.fakesock.pollers import socketpair
from simnet.fakesock.tcp import Listener, StreamEnd
from simnet.faults import FaultPlan, Rule

S = socket.SOL_SOCKET


def _tcp_pair(net):
    lst = net.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    cli = net.socket()
    cli.connect(lst.getsockname())
    srv, _ = lst.accept()
    return lst, cli, srv


def test_protocol_state_is_made_per_role():
    with FakeNetwork(seed=1) as net:
        fresh = net.socket()
        assert fresh._listener is None and fresh._dq is None and fresh._end is None
        lst, cli, srv = _tcp_pair(net)
        assert isinstance(lst._listener, Listener) and lst._dq is None and lst._end is None
        for s in (cli, srv):
            assert isinstance(s._end, StreamEnd)
            assert s._listener is None and s._dq is None
        udp = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        assert isinstance(udp._dq, DatagramQueue) and udp._listener is None and udp._end is None
        # the older private names still answer, for their readers
        assert lst._accept_q is lst._listener.queue and list(cli._accept_q) == []
        assert udp._dgrams is udp._dq.items and list(cli._dgrams) == []


def test_a_listener_keeps_its_state_across_shutdown_and_listen_again():
    with FakeNetwork(seed=1) as net:
        lst, cli, srv = _tcp_pair(net)
        listener = lst._listener
        lst.shutdown(socket.SHUT_RD)  # Linux: stops listening
        assert lst.getsockopt(S, socket.SO_ACCEPTCONN) == 0
        lst.listen(3)
        assert lst._listener is listener and listener.backlog == 3


def _reference_mask(end):
    """StreamEnd.poll_mask spelled out from the state (Linux tcp_poll /
    unix_poll), without the flags or the fast path."""
    IN, OUT, ERR, HUP = select.POLLIN, select.POLLOUT, select.POLLERR, select.POLLHUP
    if end.reset:
        return IN | OUT | HUP | (ERR if end.err else 0)
    mask = 0
    if end.rbuf or end.fin_rcvd or end.rd_shut:
        mask |= IN
    if end.wr_shut or end.scap - len(end.sq) > 0:
        mask |= OUT
    if (end.fin_rcvd or end.rd_shut) and end.wr_shut:
        mask |= HUP
    elif end.unix:
        peer = end.peer
        gone = peer is None or peer.detached
        if (end.fin_rcvd or end.rd_shut or gone) and (end.wr_shut or gone or peer.rd_shut):
            mask |= HUP | IN
    return mask | (ERR if end.err else 0)


def _flags_hold(socks):
    for s in socks:
        e = s._end
        if e is None:
            continue
        for end in (e, e.peer):
            if end is None:
                continue
            assert end.r_event == bool(end.fin_rcvd or end.rd_shut or end.reset or end.err), end
            assert end.w_event == bool(end.wr_shut or end.reset or end.err), end
            assert end.readable() == bool(end.rbuf or end.fin_rcvd or end.rd_shut or end.reset
                                          or end.err)
            assert end.poll_mask() == _reference_mask(end), end


_OPS = st.lists(st.tuples(st.sampled_from(["send", "recv", "shut_rd", "shut_wr", "shut_rdwr",
                                           "close", "linger0", "so_error", "settle"]),
                          st.sampled_from([0, 1]), st.integers(1, 3000)),
                max_size=14)


@settings(max_examples=150, deadline=None)
@given(ops=_OPS, kind=st.sampled_from(["tcp", "unix", "socketpair"]),
       latency=st.sampled_from([0.0, 0.01]),
       disconnect=st.sampled_from([None, "rst", "fin"]))
def test_readiness_flags_follow_every_state_change(ops, kind, latency, disconnect):
    """StreamEnd.r_event / w_event (what select() reads besides data and
    room) equal what fin_rcvd, rd_shut, wr_shut, reset and err say, and
    poll_mask() (with its fast path) what the state says, after every operation, on TCP and Unix streams, with and without latency and
    disconnect faults."""
    plan = FaultPlan([Rule("disconnect", mode=disconnect, after_bytes=500)]) if disconnect else None
    with FakeNetwork(seed=3, latency=latency, faults=plan, rcvbuf=4096, sndbuf=4096) as net:
        if kind == "socketpair":
            a, b = socketpair(net)
        elif kind == "unix":
            lst = net.socket(socket.AF_UNIX)
            lst.bind("/tmp/simnet-protocols.sock")
            lst.listen(1)
            a = net.socket(socket.AF_UNIX)
            a.connect("/tmp/simnet-protocols.sock")
            b, _ = lst.accept()
        else:
            _, a, b = _tcp_pair(net)
        socks = [a, b]
        for s in socks:
            s.setblocking(False)
        _flags_hold(socks)
        for op, who, n in ops:
            s = socks[who]
            try:
                if op == "send":
                    s.send(b"x" * n)
                elif op == "recv":
                    s.recv(n)
                elif op.startswith("shut"):
                    s.shutdown({"shut_rd": socket.SHUT_RD, "shut_wr": socket.SHUT_WR,
                                "shut_rdwr": socket.SHUT_RDWR}[op])
                elif op == "close":
                    s.close()
                elif op == "linger0":
                    s.setsockopt(S, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    s.close()
                elif op == "so_error":
                    s.getsockopt(S, socket.SO_ERROR)
                else:
                    net.settle()
            except OSError:
                pass
            _flags_hold(socks)
        net.settle()
        _flags_hold(socks)


def test_the_protocol_modules_never_import_the_facade():
    """Sans-I/O: tcp.py, dgram.py and unixnames.py import only the standard
    library (the facade drives them; they never call it)."""
    for mod in (tcp_mod, dgram_mod, unixnames_mod):
        tree = ast.parse(pathlib.Path(mod.__file__).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("simnet"), (mod.__name__, node.module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("simnet") for a in node.names), mod.__name__


def test_a_connection_costs_few_gc_tracked_objects():
    """A connected and accepted pair is two sockets and two ends (plus the
    client port's binding list), not the deques of roles it does not play:
    fewer objects for every full collection to walk (bench/dispatcher_scale.py)."""
    n = 300
    with FakeNetwork(seed=1) as net:
        lst = net.socket()
        lst.bind(("127.0.0.1", 80))
        lst.listen(4096)

        def connect(k):
            made = []
            for _ in range(k):
                c = net.socket()
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", 80))
                made.append(c)
            net.settle()
            return made + [lst.accept()[0] for _ in range(k)]

        keep = connect(5)
        gc.collect()
        before = len(gc.get_objects())
        keep += connect(n)
        gc.collect()
        per_connection = (len(gc.get_objects()) - before) / n
        assert per_connection <= 6, per_connection
        assert len(keep) == 2 * (n + 5)


def test_options_and_call_counts_are_made_on_first_use():
    """A socket reads the shared empty defaults until it sets an option or a
    fault rule counts one of its calls; an accepted socket still inherits
    SO_REUSEADDR and a fixed SO_SNDBUF from its listener, as on Linux."""
    with FakeNetwork(seed=1) as net:
        lst, cli, srv = _tcp_pair(net)
        assert srv.getsockopt(S, socket.SO_REUSEADDR) == 0
        assert "_opts" not in vars(srv) and "_calls" not in vars(cli)
        lst.setsockopt(S, socket.SO_REUSEADDR, 1)
        lst.setsockopt(S, socket.SO_SNDBUF, 8192)
        assert "_opts" in vars(lst)
        cli2 = net.socket()
        cli2.connect(lst.getsockname())
        srv2, _ = lst.accept()
        assert srv2.getsockopt(S, socket.SO_REUSEADDR) == 1
        assert srv2.getsockopt(S, socket.SO_SNDBUF) == 16384  # locked: not autotuned
    plan = FaultPlan([Rule("eagain", op="recv", where={"call": 2})])
    with FakeNetwork(seed=1, faults=plan) as net:
        _, cli, srv = _tcp_pair(net)
        srv.setblocking(False)
        cli.send(b"ab")
        assert srv.recv(1) == b"a"
        try:
            srv.recv(1)
        except BlockingIOError:
            pass
        else:
            raise AssertionError("the 2nd recv() should have failed with EAGAIN")
        assert srv.recv(1) == b"b"
        assert srv._calls["recv"] == 3 and cli._calls["send"] == 1
