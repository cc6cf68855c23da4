"""Issue 15, points 1 and 2: every fault x where-key combination either applies
exactly as ``describe()`` words it or is rejected when the plan is made; fired
counts are exact (the summary, ``net.faults.fired`` and the trace's fault
events agree, and never exceed ``limit``).

The Hypothesis test runs a small scenario on the fake network (two TCP echo
servers on two hosts, three clients, one of them late; a UDP stream; a timer
that wakes the loop) under plans that always hold the combination under test
plus up to two random rules, and checks each fault event of the trace against
the rule's where-clause. ``SIMNET_COMBO_EXAMPLES`` raises the examples per
combination (default 6).
"""

from __future__ import annotations

import os
import re
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simnet
from simnet.fakesock import FakeNetwork
from simnet.fakesock.network import Deadlock, SimulationTimeout
from simnet.faults import FAULTS, WHERE_KEYS, FaultPlan, PlanError, Rule, where_keys

EXAMPLES = int(os.environ.get("SIMNET_COMBO_EXAMPLES", "6"))

# -- the scenario ---------------------------------------------------------------------

PORTS = (7000, 7001, 9000)
ADDRS = ("127.0.0.1", "10.0.0.2", "far", "local", "localhost")
PAYLOAD = [b"hello\n", b"x" * 300, b"bye\n"]


class Handler(simnet.dispatcher_with_send):
    def __init__(self, sock, map):
        super().__init__(sock, map=map)

    def handle_read(self):
        data = self.recv(512)
        if data:
            self.send(data)

    def handle_close(self):
        self.close()

    def handle_error(self):
        self.close()


class Server(simnet.dispatcher):
    def __init__(self, addr, map):
        super().__init__(map=map)
        self.create_socket()
        self.set_reuse_addr()
        self.bind(addr)
        self.listen(5)

    def handle_accepted(self, sock, addr):
        Handler(sock, self._map)

    def handle_error(self):
        self.close()


class Client(simnet.dispatcher_with_send):
    def __init__(self, addr, map):
        super().__init__(map=map)
        self.expected = b"".join(PAYLOAD)
        self.received = b""
        self.over = False
        self.create_socket()
        self.connect(addr)

    def handle_connect(self):
        for part in PAYLOAD:
            self.send(part)

    def handle_read(self):
        self.received += self.recv(512)
        if len(self.received) >= len(self.expected):
            self.over = True
            self.close()

    def handle_close(self):
        self.over = True
        self.close()

    def handle_error(self):
        self.over = True
        self.close()


class UdpSink(simnet.dispatcher):
    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.got = []

    def writable(self):
        return False

    def handle_read(self):
        self.got.append(self.socket.recvfrom(100)[0])

    def handle_error(self):
        self.close()


def scenario(plan: FaultPlan, seed: int) -> FakeNetwork:
    """Run the scenario under *plan*; returns the (closed) traced network."""
    net = FakeNetwork(seed=seed, faults=plan, trace=True)
    net.misplaced = []  # rules that fired on a socket their place keys do not name
    traced = net.faults.on_fire

    def on_fire(i, rule, op, conn, fd):
        # the place keys hold for the socket the rule acted on (send, recv, data)
        sock = net._fds.get(fd) if fd is not None else None
        if op in ("send", "recv", "data") and sock is not None:
            w = rule.where
            local, peer = sock._laddr, sock._raddr
            for key, ok in (("port", lambda: w["port"] in (local[1], peer[1])),
                            ("peer", lambda: net.faults._addr_matches(w["peer"], peer)),
                            ("local", lambda: net.faults._addr_matches(w["local"], local)),
                            ("side", lambda: w["side"] == sock._side),
                            ("conn", lambda: w["conn"] == sock._conn)):
                if key in w and not ok():
                    net.misplaced.append((rule, key, op, local, peer))
        traced(i, rule, op, conn, fd)

    net.faults.on_fire = on_fire
    with net:
        net.add_host("far", "10.0.0.2")
        m: dict = {}
        clients: list[Client] = []
        try:
            Server(("127.0.0.1", 7000), m)
            Server(("10.0.0.2", 7001), m)
            clients.append(Client(("127.0.0.1", 7000), m))
            clients.append(Client(("10.0.0.2", 7001), m))
            simnet.call_later(2.0, lambda: clients.append(Client(("127.0.0.1", 7000), m)))
            rx = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rx.bind(("127.0.0.1", 9000))
            sink = UdpSink(rx, m)
            tx = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tx.bind(("10.0.0.2", 0))
            for k in range(6):
                net.schedule(0.5 * k, tx.sendto, b"d%d" % k, ("127.0.0.1", 9000))
            simnet.call_later(1.0, lambda: None)  # a timer: the loop waits for it
            net.run(until=lambda: len(clients) == 3 and all(c.over for c in clients)
                    and len(sink.got) >= 6, map=m, timeout=40)
        except (Deadlock, SimulationTimeout, OSError, KeyboardInterrupt, SystemExit,
                ArithmeticError):
            pass  # a plan may well break the scenario: counts must agree all the same
        finally:
            simnet.close_all(m)
    return net


# -- checking a run against its plan ----------------------------------------------------

def check_run(plan: FaultPlan, net: FakeNetwork) -> int:
    """Check every fault event of the trace against its rule; return how many."""
    events = net.trace.events
    counts = [0] * len(plan.rules)
    side_of: dict[int, str] = {}
    sent_by: dict[int, int] = {}
    calls: dict[tuple[int, str], int] = {}
    pending_sends: list[tuple[int, Rule, int]] = []  # (fd, rule, bytes sent before the cut)
    pending_partial: dict[int, int] = {}
    faults = 0
    for ev in events:
        t, kind, fd = ev[0], ev[1], ev[2]
        if kind in ("close", "socket"):  # the number may be reused: forget what it did
            side_of.pop(fd, None)
            sent_by.pop(fd, None)
            for op in ("send", "recv", "accept"):
                calls.pop((fd, op), None)
        elif kind == "conn":
            side_of[fd] = ev[4]
        elif kind in ("send", "recv", "accept"):
            result = ev[3] if kind == "accept" else ev[4]
            if result != "EBADF":  # a call on a closed socket is no call of the socket's
                calls[(fd, kind)] = calls.get((fd, kind), 0) + 1
            if kind == "send":
                got = ev[4]
                for item in [p for p in pending_sends if p[0] == fd]:
                    _, rule, before = item
                    # the cut lands exactly on the mark: "after n bytes sent" (before this
                    # send, or after its bytes; a FIN by the other end lets the send go on)
                    assert rule.after_bytes in (before, before + (got if isinstance(got, int) else 0)), \
                        (rule, ev)
                    pending_sends.remove(item)
                if fd in pending_partial:
                    # a partial send counted only when it cut the data
                    assert isinstance(got, int) and got < ev[3], ev
                    del pending_partial[fd]
                if isinstance(got, int):
                    sent_by[fd] = sent_by.get(fd, 0) + got
        elif kind == "fault":
            faults += 1
            rule_no, op, conn = ev[3], ev[4], ev[5]
            rule = plan.rules[rule_no - 1]
            counts[rule_no - 1] += 1
            w = rule.where
            if "limit" in w:
                assert counts[rule_no - 1] <= w["limit"], (rule, ev)
            if "window" in w:
                assert w["window"][0] <= t <= w["window"][1], (rule, ev)
            if "conn" in w and conn is not None:
                assert conn == w["conn"], (rule, ev)
            if "side" in w and fd in side_of:
                assert side_of[fd] == w["side"], (rule, ev)
            if "call" in w and op in ("send", "recv", "accept"):
                assert calls.get((fd, op), 0) + 1 == w["call"], (rule, ev)
            if rule.fault == "disconnect" and rule.after_bytes is not None:
                pending_sends.append((fd, rule, sent_by.get(fd, 0)))
            if rule.fault == "disconnect" and rule.at is not None:
                assert t >= rule.at, (rule, ev)
            if rule.fault == "partial_send":
                pending_partial[fd] = rule_no
    assert counts == net.faults.fired, (counts, net.faults.fired)
    assert net.misplaced == []
    for i, rule in enumerate(plan.rules):
        if rule.where.get("probability") == 0.0:
            assert counts[i] == 0, rule
    for i, rule in enumerate(plan.rules):
        if "limit" in rule.where:
            assert net.faults.fired[i] <= rule.where["limit"]
    summary = net.faults.summary().splitlines()
    for i, line in enumerate(summary):
        assert re.search(rf": fired {net.faults.fired[i]} time\(s\)$", line), line
    return faults


# -- strategies -------------------------------------------------------------------------

def _where_value(key: str) -> st.SearchStrategy:
    return {
        "port": st.sampled_from(PORTS),
        "peer": st.sampled_from(ADDRS),
        "local": st.sampled_from(ADDRS),
        "conn": st.integers(1, 4),
        "side": st.sampled_from(["client", "server"]),
        "window": st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.0]),
                            st.sampled_from([0.0, 0.75, 3.0, 60.0])).filter(
            lambda w: w[0] <= w[1]).map(list),
        "call": st.integers(1, 4),
        "probability": st.sampled_from([0.0, 0.3, 0.7, 1.0]),
        "limit": st.integers(1, 4),
    }[key]


def _params(fault: str) -> st.SearchStrategy[dict]:
    if fault in ("partial_send", "short_read"):
        return st.fixed_dictionaries({"max_bytes": st.sampled_from([1, 7, 200, None])})
    if fault == "disconnect":
        return st.fixed_dictionaries({
            "mode": st.sampled_from(["rst", "fin"]),
            "side": st.sampled_from([None, "client", "server"]),
        }).flatmap(lambda p: st.one_of(
            st.just(p), st.integers(0, 400).map(lambda n: {**p, "after_bytes": n}),
            st.sampled_from([0.0, 0.5, 2.5]).map(lambda t: {**p, "at": t})))
    if fault == "eintr":
        return st.fixed_dictionaries({"exception": st.sampled_from([None, None, "InterruptedError",
                                                                    "KeyboardInterrupt"])})
    if fault == "latency":
        return st.fixed_dictionaries({"latency": st.sampled_from([0.0, 0.01, 0.2]),
                                      "jitter": st.sampled_from([0.0, 0.05])})
    if fault == "partition":
        return st.fixed_dictionaries({
            "a": st.just("local"), "b": st.sampled_from(["far", "localhost"]),
            "start": st.sampled_from([0.0, 0.5]), "end": st.sampled_from([None, 1.0, 3.0])})
    if fault == "udp_reorder":
        return st.fixed_dictionaries({"delay": st.sampled_from([0.01, 0.5])})
    return st.just({})


def any_rule() -> st.SearchStrategy[Rule]:
    def build(fault: str, params: dict) -> st.SearchStrategy[Rule]:
        keys = where_keys(fault, **params)
        where = st.fixed_dictionaries({}, optional={k: _where_value(k) for k in keys})
        return where.map(lambda w: Rule(fault, where=w, **params))

    return st.sampled_from(sorted(FAULTS)).flatmap(
        lambda f: (_params(f) if f != "eagain" else
                   st.sampled_from(["send", "recv", "accept", "connect"]).map(lambda o: {"op": o}))
        .flatmap(lambda p, f=f: build(f, p)))


def _combos() -> list[tuple[str, dict, str | None]]:
    out = []
    for fault in sorted(FAULTS):
        variants = [{"op": op} for op in ("send", "recv", "accept", "connect")] if fault == "eagain" else [{}]
        for fixed in variants:
            keys = where_keys(fault, **fixed)
            for key in keys or (None,):
                out.append((fault, fixed, key))
    return out


COMBOS = _combos()


def _combo_rule(fault: str, fixed: dict, key: str | None) -> st.SearchStrategy[Rule]:
    params = st.just(fixed) if fixed else _params(fault)

    def build(p: dict) -> st.SearchStrategy[Rule]:
        keys = where_keys(fault, **p)
        required = {key: _where_value(key)} if key is not None else {}
        optional = {k: _where_value(k) for k in keys if k != key}
        return st.fixed_dictionaries(required, optional=optional).map(
            lambda w: Rule(fault, where=w, **p))

    return params.flatmap(build)


@pytest.mark.parametrize("fault, fixed, key", COMBOS,
                         ids=[f"{f}{'-' + x['op'] if x else ''}-{k}" for f, x, k in COMBOS])
def test_every_valid_combination_fires_exactly_as_counted(fault, fixed, key):
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(rule=_combo_rule(fault, fixed, key), others=st.lists(any_rule(), max_size=2),
           first=st.booleans(), seed=st.integers(0, 3))
    def run(rule, others, first, seed):
        rules = [rule] + others if first else others + [rule]
        plan = FaultPlan(rules)
        net = scenario(plan, seed)
        check_run(plan, net)

    run()


def test_the_combinations_cover_every_fault_and_where_key():
    covered = {(f, k) for f, _, k in COMBOS}
    assert {f for f, _ in covered} == set(FAULTS)
    # every where key is used by some fault
    assert {k for _, k in covered if k} == set(WHERE_KEYS)
    assert len([c for c in COMBOS if c[2] is not None]) == 112  # reported in the issue note


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("key", WHERE_KEYS)
def test_every_other_combination_is_rejected_naming_rule_and_key(fault, key):
    ops = ("send", "recv", "accept", "connect") if fault == "eagain" else (None,)
    values = {"port": 7000, "peer": "127.0.0.1", "local": "127.0.0.1", "conn": 1,
              "side": "client", "window": [0, 1], "call": 1, "probability": 0.5, "limit": 1}
    base = {"a": "local", "b": "far"} if fault == "partition" else {}
    for op in ops:
        params = dict(base, **({"op": op} if op else {}))
        data = [{"fault": "short_read"}, dict(params, fault=fault, where={key: values[key]})]
        if key in where_keys(fault, **params):
            FaultPlan(data)  # accepted
        else:
            with pytest.raises(PlanError, match=rf"^rule 2 \({fault}\): field 'where\.{key}' does not apply"):
                FaultPlan(data)


# -- point 1: the repro -------------------------------------------------------------------

def _echo_at(t0: float, plan):
    """An echo exchange on raw fake sockets that starts at t0; returns
    (what the client saw, net)."""
    net = FakeNetwork(seed=1, faults=plan, trace=True)
    with net:
        srv = net.socket()
        srv.bind(("127.0.0.1", 7000))
        srv.listen(1)
        net.sleep(t0)
        cli = net.socket()
        cli.connect(("127.0.0.1", 7000))
        conn, _ = srv.accept()
        try:
            cli.sendall(b"ping")
            got = conn.recv(10)
            conn.sendall(got)
            seen = cli.recv(10)
        except OSError as exc:
            seen = exc
    return seen, net


def test_issue_15_repro_after_bytes_disconnect_outside_its_window_does_nothing():
    rule = {"fault": "disconnect", "mode": "rst", "after_bytes": 0, "where": {"window": [0, 1], "limit": 1}}
    seen, net = _echo_at(5.0, [rule])
    assert seen == b"ping"
    assert net.faults.summary().endswith("fired 0 time(s)")
    assert net.faults.fired == [0]


def test_after_bytes_disconnect_inside_its_window_cuts_the_first_send_once():
    rule = {"fault": "disconnect", "mode": "rst", "after_bytes": 0, "where": {"window": [0, 1], "limit": 1}}
    seen, net = _echo_at(0.5, [rule])
    assert isinstance(seen, ConnectionResetError)
    assert net.faults.fired == [1]
    faults = [e for e in net.trace.events if e[1] == "fault"]
    assert len(faults) == 1 and faults[0][0] == 0.5 and faults[0][3:] == (1, "data", 1)
    assert net.faults.summary().endswith("fired 1 time(s)")


def test_after_bytes_limit_runs_out_after_one_connection():
    plan = [Rule("disconnect", mode="rst", after_bytes=2, where={"limit": 1})]
    with FakeNetwork(seed=1, faults=plan) as net:
        srv = net.socket()
        srv.bind(("127.0.0.1", 7000))
        srv.listen(2)
        results = []
        for _ in range(2):
            cli = net.socket()
            cli.connect(("127.0.0.1", 7000))
            conn, _ = srv.accept()
            results.append(cli.send(b"abcdef"))  # cut to the 2 bytes before the mark
            try:
                cli.send(b"gh")
                results.append("sent")
            except OSError as exc:
                results.append(type(exc).__name__)
        assert results == [2, "ConnectionResetError", 6, "sent"]
        assert net.faults.fired == [1]


def test_at_disconnect_is_decided_when_due_not_when_the_connection_is_made():
    # made at t=0, due at t=2: the window [1, 3] holds then, so it fires
    plan = [Rule("disconnect", mode="rst", at=2.0, where={"window": [1, 3]})]
    with FakeNetwork(seed=1, faults=plan) as net:
        srv = net.socket()
        srv.bind(("127.0.0.1", 7000))
        srv.listen(1)
        cli = net.socket()
        cli.connect(("127.0.0.1", 7000))
        conn, _ = srv.accept()
        net.sleep(1.5)
        assert cli.send(b"x") == 1
        net.sleep(1.0)
        with pytest.raises(ConnectionResetError):
            cli.send(b"y")
        assert net.faults.fired == [1]  # once per connection, not once per end


def test_a_connection_is_cut_once_even_when_two_rules_match():
    plan = [Rule("disconnect", mode="fin", side="client", at=1.0),
            Rule("disconnect", mode="fin", side="server", at=1.0)]
    assert FaultPlan(plan).warnings() == [
        "rule 2 (disconnect) can never fire: rule 1 (disconnect) matches every connection it "
        "would, and the first matching rule wins"]
    with FakeNetwork(seed=1, faults=plan) as net:
        srv = net.socket()
        srv.bind(("127.0.0.1", 7000))
        srv.listen(1)
        cli = net.socket()
        cli.connect(("127.0.0.1", 7000))
        srv.accept()
        net.sleep(2)
        assert net.faults.fired == [1, 0]


def test_partial_send_that_cuts_nothing_does_not_count_nor_spend_its_limit():
    plan = [Rule("partial_send", max_bytes=4, where={"limit": 1})]
    with FakeNetwork(seed=1, faults=plan) as net:
        srv = net.socket()
        srv.bind(("127.0.0.1", 7000))
        srv.listen(1)
        cli = net.socket()
        cli.connect(("127.0.0.1", 7000))
        srv.accept()
        assert cli.send(b"abc") == 3  # 3 <= 4: unchanged, not counted
        assert net.faults.fired == [0]
        assert cli.send(b"abcdefgh") == 4  # cut: counted, the limit is spent
        assert cli.send(b"abcdefgh") == 8
        assert net.faults.fired == [1]


def test_latency_counts_once_per_connection_and_per_datagram():
    plan = [Rule("latency", latency=0.1)]
    with FakeNetwork(seed=1, faults=plan) as net:
        srv = net.socket()
        srv.bind(("127.0.0.1", 7000))
        srv.listen(1)
        cli = net.socket()
        cli.connect(("127.0.0.1", 7000))
        srv.accept()
        cli.sendall(b"x" * 10)
        assert net.faults.fired == [1]
        u = net.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"d", ("127.0.0.1", 9))
        u.sendto(b"d", ("127.0.0.1", 9))
        assert net.faults.fired == [3]


def test_latency_rule_that_changes_nothing_does_not_count():
    with FakeNetwork(seed=1, latency=0.1, faults=[Rule("latency", latency=0.1)]) as net:
        srv = net.socket()
        srv.bind(("127.0.0.1", 7000))
        srv.listen(1)
        cli = net.socket()
        cli.connect(("127.0.0.1", 7000))
        srv.accept()
        assert net.faults.fired == [0]


def test_unix_socket_connect_is_refused_and_eagain_connects(tmp_path):
    path = str(tmp_path / "s")
    plan = [Rule("refuse", where={"limit": 1}), Rule("connect_timeout"),
            Rule("eagain", op="connect", where={"limit": 1})]
    with FakeNetwork(seed=1, faults=plan) as net:
        srv = net.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(2)
        a = net.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with pytest.raises(ConnectionRefusedError):
            a.connect(path)
        b = net.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        b.setblocking(False)
        assert b.connect_ex(path) == socket.errno.EAGAIN  # a spurious EAGAIN ...
        assert b.connect_ex(path) == 0  # ... but connected (as on the real network)
        c = net.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)  # connect_timeout is TCP only: a Unix connect passes it by
        assert net.faults.fired == [1, 0, 1]


def test_eagain_on_a_blocking_connect_shows_nothing_counts_nothing_spends_no_limit():
    plan = [Rule("eagain", op="connect", where={"limit": 1})]
    with FakeNetwork(seed=1, faults=plan) as net:
        srv = net.socket()
        srv.bind(("127.0.0.1", 7000))
        srv.listen(2)
        a = net.socket()
        a.connect(("127.0.0.1", 7000))  # blocking: the kernel would just wait
        assert net.faults.fired == [0]
        b = net.socket()
        b.setblocking(False)
        assert b.connect_ex(("127.0.0.1", 7000)) == socket.errno.EAGAIN
        assert net.faults.fired == [1]


# -- the same on real sockets (loopback) ---------------------------------------------------

def _real_echo(plan):
    from simnet.real import RealNetwork

    with RealNetwork(faults=plan) as net:
        srv = net.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        cli = net.socket()
        cli.settimeout(5)
        cli.connect(srv.getsockname())
        conn, _ = srv.accept()
        conn.settimeout(5)
        start = time.monotonic()
        try:
            cli.sendall(b"ping")
            conn.sendall(conn.recv(10))
            seen = cli.recv(10)
        except OSError as exc:
            seen = exc
            # the reset is at once: no wait for the 5 s timeout (a timeout-mode
            # socket once waited for readiness while the RST was being set up)
            assert time.monotonic() - start < 2.5
        finally:
            for s in (cli, conn, srv):
                s.close()
        return seen, list(net.faults.fired)


def test_real_after_bytes_disconnect_outside_its_window_does_nothing():
    # window [0, 0]: only the very instant the network was made, long past
    rule = {"fault": "disconnect", "mode": "rst", "after_bytes": 0, "where": {"window": [0, 0], "limit": 1}}
    assert _real_echo([rule]) == (b"ping", [0])


def test_real_after_bytes_disconnect_inside_its_window_cuts_the_first_send_once():
    rule = {"fault": "disconnect", "mode": "rst", "after_bytes": 0, "where": {"window": [0, 60], "limit": 1}}
    seen, fired = _real_echo([rule])
    assert isinstance(seen, ConnectionResetError) and fired == [1]


# -- fired counts on real sockets ---------------------------------------------------------

def _real_rule() -> st.SearchStrategy[Rule]:
    def build(fault: str, params: dict) -> st.SearchStrategy[Rule]:
        keys = [k for k in where_keys(fault, **params) if k not in ("window", "port", "peer", "local")]
        values = {"conn": st.integers(1, 3), "side": st.sampled_from(["client", "server"]),
                  "call": st.integers(1, 4), "probability": st.sampled_from([0.0, 0.5, 1.0]),
                  "limit": st.integers(1, 3)}
        return st.fixed_dictionaries({}, optional={k: values[k] for k in keys}).map(
            lambda w: Rule(fault, where=w, **params))

    params = {
        "partial_send": st.sampled_from([1, 5, None]).map(lambda n: {"max_bytes": n}),
        "short_read": st.sampled_from([1, 5, None]).map(lambda n: {"max_bytes": n}),
        "eagain": st.sampled_from(["send", "recv", "accept", "connect"]).map(lambda o: {"op": o}),
        "eintr": st.just({}),
        "disconnect": st.fixed_dictionaries({"mode": st.sampled_from(["rst", "fin"])}).flatmap(
            lambda p: st.one_of(st.just(p), st.integers(0, 300).map(lambda n: {**p, "after_bytes": n}))),
        "refuse": st.just({}),
    }
    return st.sampled_from(sorted(params)).flatmap(
        lambda f: params[f].flatmap(lambda p, f=f: build(f, p)))


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(rules=st.lists(_real_rule(), min_size=1, max_size=3))
def test_real_fired_counts_equal_the_trace_and_respect_limits(rules):
    from simnet.real import RealNetwork

    plan = FaultPlan(rules)
    m: dict = {}
    with RealNetwork(faults=plan, trace=True, seed=1) as net:
        try:
            server = Server(("127.0.0.1", 0), m)
            addr = server.socket.getsockname()
            clients = [Client(addr, m) for _ in range(2)]
            for _ in range(300):  # bounded passes, each at most 10 ms
                if all(c.over for c in clients):
                    break
                simnet.loop(timeout=0.01, map=m, count=1)
        except OSError:
            pass
        finally:
            simnet.close_all(m, ignore_all=True)
        counts = [0] * len(plan.rules)
        for ev in net.trace.events:
            if ev[1] == "fault":
                counts[ev[3] - 1] += 1
        assert counts == net.faults.fired
        for i, rule in enumerate(plan.rules):
            if "limit" in rule.where:
                assert counts[i] <= rule.where["limit"]
            if rule.where.get("probability") == 0.0:
                assert counts[i] == 0
