"""Name and address resolution: ``socket.getaddrinfo`` inside ``net.patch()``
and the host part of a fake socket's address, against this machine's glibc.

Every case here is answered by the real ``socket`` module in the same test
and must come out the same on the fake network: the result list, or the
exception's type and arguments. Only inputs whose real answer does not
depend on the machine's ``/etc/hosts`` are compared (numeric hosts, ``None``,
``''``); names are checked against the fake network's own host table below.
"""

from __future__ import annotations

import itertools
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simnet.fakesock import FakeNetwork


def _outcome(call, *args):
    try:
        return call(*args)
    except Exception as exc:  # the comparison is of the exception itself
        return (type(exc).__name__, exc.args)


def _both(calls):
    """[(args, real outcome, fake outcome)] for getaddrinfo(*args)."""
    real = [_outcome(socket.getaddrinfo, *args) for args in calls]
    with FakeNetwork(seed=1) as net, net.patch():
        fake = [_outcome(socket.getaddrinfo, *args) for args in calls]
    return [(a, r, f) for a, r, f in zip(calls, real, fake)]


#: hosts glibc answers without a name lookup: numbers, None, '' and texts
#: it parses as addresses (an IPv6 literal with a bad scope included)
HOSTS = [None, "", "*", "127.0.0.1", "::1", "::", "0.0.0.0", "127.1", "0x7f.1", "0177.0.0.1",
         "2130706433", "0", "1.2.3", "1.2.3.4", "::ffff:127.0.0.1", "::FFFF:7f00:1",
         "fe80::1%lo", "fe80::1%1", "::1%lo", "fe80::1%nope", b"127.0.0.1", "1..2", ".1.2.3"]
#: not numbers: a real lookup would ask the machine's resolver (DNS, slow
#: and machine-dependent), so real sockets are asked with AI_NUMERICHOST only
NOT_NUMBERS = ["08.1.1.1", "1.2.3.4.5", "4294967296", "256.1.1.1", "127.0.0.1 ", " 127.0.0.1",
               "[::1]", "1.2.3.", "0x", "nonexistent.invalid"]
PORTS = [80, None, 0, "80", b"80", "", "*", b"", " 80", "+80", "-80", "80 ", "0x50", "http", "ftp",
         "nope", -1, 65536, 2**31, 99999999999, "99999999999", True, 1.5, 2**70]
FAMILIES = [0, socket.AF_INET, socket.AF_INET6, socket.AF_UNIX, 999, -1]
TYPES = [0, socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET, 99,
         socket.SOCK_STREAM | socket.SOCK_NONBLOCK, -1]
PROTOS = [0, socket.IPPROTO_TCP, socket.IPPROTO_UDP, 99, -1]
FLAGS = [0, socket.AI_PASSIVE, socket.AI_CANONNAME, socket.AI_NUMERICHOST, socket.AI_NUMERICSERV,
         socket.AI_V4MAPPED, socket.AI_PASSIVE | socket.AI_CANONNAME, 0x10000000, -1]


def _mismatches(calls):
    return [f"getaddrinfo{args!r}:\n  real {r!r}\n  fake {f!r}"
            for args, r, f in _both(calls) if r != f]


def test_getaddrinfo_hosts_families_and_flags_as_glibc():
    calls = [(h, 80, fam, t, 0, fl) for h, fam, t, fl in
             itertools.product(HOSTS, FAMILIES[:4], [0, socket.SOCK_STREAM], FLAGS)]
    calls += [(h, 80, fam, t, 0, socket.AI_NUMERICHOST) for h, fam, t in
              itertools.product(NOT_NUMBERS, FAMILIES[:4], [0, socket.SOCK_STREAM])]
    assert len(calls) > 1000
    assert _mismatches(calls) == []


def test_getaddrinfo_names_that_are_not_numbers_are_looked_up_in_the_network_table():
    with FakeNetwork(seed=1) as net, net.patch():
        for host in NOT_NUMBERS:
            with pytest.raises(socket.gaierror) as info:
                socket.getaddrinfo(host, 80)
            assert info.value.args == (socket.EAI_NONAME, "Name or service not known"), host


def test_getaddrinfo_services_as_glibc_and_cpython():
    calls = [(h, p, fam, t) for h, p, fam, t in
             itertools.product([None, "127.0.0.1", "::1"], PORTS, [0, socket.AF_INET6],
                               [0, socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW])]
    calls += [("127.0.0.1", p, 0, 0, 0, socket.AI_NUMERICSERV) for p in PORTS]
    assert _mismatches(calls) == []


def test_getaddrinfo_types_protocols_and_bad_arguments_as_glibc_and_cpython():
    calls = [("127.0.0.1", p, fam, t, pr) for p, fam, t, pr in
             itertools.product([80, None, "http"], FAMILIES, TYPES, PROTOS)]
    calls += [(1, 80), (bytearray(b"127.0.0.1"), 80), ("127.0.0.1", 80, 2**31),
              ("127.0.0.1", 80, 0, "1"), ("127.0.0.1", 80, 0, 0, 0, 1.0), (None, None)]
    assert _mismatches(calls) == []


@settings(max_examples=300, deadline=None)
@given(host=st.one_of(st.none(), st.text(alphabet="0123456789abcdefx.:%lo *", max_size=20),
                      st.binary(max_size=6)),
       port=st.one_of(st.none(), st.integers(-2**40, 2**40),
                      st.text(alphabet="0123456789+- x*\t", max_size=8),
                      st.sampled_from(["http", "ftp", "domain"])),
       family=st.sampled_from(FAMILIES), type_=st.sampled_from(TYPES),
       proto=st.sampled_from(PROTOS), flags=st.integers(0, 0x7FF) | st.sampled_from(FLAGS))
def test_getaddrinfo_random_numeric_input_as_glibc(host, port, family, type_, proto, flags):
    # AI_NUMERICHOST: a text that is no address is refused at once, never
    # looked up (the real resolver would ask DNS). glibc's IDN conversion
    # (AI_IDN and its companions, 0x3C0) of non-ASCII bytes follows libidn2's
    # IDNA2008 rules, which the fake does not model beyond refusing bytes
    # that are not UTF-8: such calls are compared without those flags.
    if isinstance(host, bytes) and not host.isascii():
        flags &= ~0x3C0
    call = (host, port, family, type_, proto, flags | socket.AI_NUMERICHOST)
    assert _mismatches([call]) == []


def test_names_resolve_from_the_network_table():
    with FakeNetwork(seed=1) as net, net.patch():
        net.add_host("db", "10.0.0.7")
        stream = socket.SOCK_STREAM
        assert socket.getaddrinfo("db", 5432, 0, stream) == [
            (socket.AF_INET, stream, 6, "", ("10.0.0.7", 5432))]
        assert socket.getaddrinfo("DB", 1, 0, stream, 0, socket.AI_CANONNAME)[0][3] == "DB"
        # localhost has both families, IPv4 first
        assert [ai[4][0] for ai in socket.getaddrinfo("localhost", 1, 0, stream)] == [
            "127.0.0.1", "::1"]
        # a name without an address of the family: the hosts file's "no such name"
        with pytest.raises(socket.gaierror) as info:
            socket.getaddrinfo("db", 1, socket.AF_INET6)
        assert info.value.args == (socket.EAI_NONAME, "Name or service not known")
        assert socket.getaddrinfo("db", 1, socket.AF_INET6, stream, 0, socket.AI_V4MAPPED)[0][4] \
            == ("::ffff:10.0.0.7", 1, 0, 0)
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("db", 1, 0, 0, 0, socket.AI_NUMERICHOST)
        # the program's own host name resolves (to the network's host "local")
        assert socket.gethostbyname(socket.gethostname()) == "10.0.0.1"


ADDRESS_HOSTS = {
    socket.AF_INET: ["127.1", "0x7f.1", "", "localhost", "::1", "127.0.0.1", b"127.0.0.1", "\u00e4" * 70,
                     bytearray(b"127.0.0.1"), "0", "2130706433", "127.0.1", "0177.0.0.1",
                     "::ffff:127.0.0.1", "1..2", 7],
    socket.AF_INET6: ["::1", "::", "", "127.0.0.1", "[::1]", "0:0:0:0:0:0:0:1",
                      "<broadcast>", "1.2.3.4", b"::1"],
}


def _address_outcomes():
    out = []
    for fam, hosts in ADDRESS_HOSTS.items():
        for host in hosts:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(fam, kind) as s:
                    s.setblocking(False)
                    connect = _outcome(s.connect, (host, 9))
                    if isinstance(connect, tuple) and connect[0] == "BlockingIOError":
                        connect = "in progress"
                with socket.socket(fam, kind) as s:
                    bind = _outcome(s.bind, (host, 0))
                    if not isinstance(bind, tuple):
                        bind = s.getsockname()[0]
                with socket.socket(fam, socket.SOCK_DGRAM) as s:
                    sendto = _outcome(s.sendto, b"x", (host, 9))
                out.append((fam, kind, host, connect, bind, sendto))
    return out


def test_socket_addresses_resolve_as_cpython_setipaddr():
    """A fake socket's connect/bind/sendto resolve their host the way CPython
    does on Linux: inet_aton forms, '' as the wildcard, an IPv4 literal on an
    IPv6 socket refused with EAI_ADDRFAMILY, and the same exception types."""
    real = _address_outcomes()
    with FakeNetwork(seed=1) as net, net.patch():
        fake = _address_outcomes()
    assert [f"{r}\n  fake {f[3:]}" for r, f in zip(real, fake) if r != f] == []
