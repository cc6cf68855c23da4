"""The pytest plugin, tested with pytester: fixtures that appear on install,
the `net` parametrisation, options, seeds, failure reports and replay."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

ECHO_TEST = '''
import pytest
import simnet
from simnet import Rule
from simnet.examples.echo import EchoClient, EchoServer


def test_echo(fake_net, simnet_seed):
    print("SEED", simnet_seed)
    EchoServer(("127.0.0.1", 7000))
    client = EchoClient(("127.0.0.1", 7000), [b"hello\\n"])
    fake_net.run(until=lambda: client.received == b"hello\\n", timeout=10)
'''

FAILING_TEST = '''
import pytest
import simnet
from simnet import Rule
from simnet.examples.echo import EchoClient, EchoServer


class Naive(simnet.dispatcher):
    """Assumes send() sends everything: the planted bug."""
    def __init__(self, addr, data):
        super().__init__()
        self.data = data
        self.create_socket()
        self.connect(addr)
    def writable(self):
        return not self.connected
    def handle_connect(self):
        self.send(self.data)
    def handle_read(self):
        self.recv(100)


class Sink(simnet.dispatcher):
    got = b""
    def __init__(self):
        super().__init__()
        self.create_socket()
        self.bind(("127.0.0.1", 9000))
        self.listen(1)
    def handle_accepted(self, sock, addr):
        outer = self
        class Conn(simnet.dispatcher):
            def writable(self):
                return False
            def handle_read(self):
                Sink.got += self.recv(4096)
        Conn(sock)


@pytest.mark.simnet(faults=[Rule("partial_send", max_bytes=3)])
def test_naive_sender(fake_net):
    Sink()
    Naive(("127.0.0.1", 9000), b"0123456789")
    fake_net.run(until=lambda: len(Sink.got) >= 10, timeout=5)
'''


def test_fixtures_appear_without_a_conftest(pytester):
    pytester.makepyfile(ECHO_TEST)
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_net_runs_the_test_on_both_networks(pytester):
    pytester.makepyfile('''
        import simnet
        def test_kind(net):
            d = simnet.dispatcher()
            d.create_socket()
            print("FD", d.socket.fileno() >= simnet._state.FAKE_FD_BASE)
            d.close()
    ''')
    result = pytester.runpytest("-v", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_kind?fake? FD True", "PASSED", "*test_kind?real? FD False", "PASSED"])
    only = pytester.runpytest("-v", "--simnet-backend", "fake", "-p", "no:cacheprovider")
    only.assert_outcomes(passed=1)


def _seeds(result) -> list[str]:
    return re.findall(r"SEED (\d+)", result.stdout.str())


def test_default_seed_is_stable_across_runs_and_derived_from_the_test_id(pytester):
    pytester.makepyfile(ECHO_TEST)
    first = _seeds(pytester.runpytest("-s", "-p", "no:cacheprovider"))
    second = _seeds(pytester.runpytest("-s", "-p", "no:cacheprovider"))
    from simnet.pytest_plugin import seed_for

    assert first == second == [str(seed_for("test_default_seed_is_stable_across_runs_and_derived_from_the_test_id.py::test_echo"))]


def test_seed_option_and_seeds_option(pytester):
    pytester.makepyfile(ECHO_TEST)
    assert _seeds(pytester.runpytest("-s", "--simnet-seed", "42", "-p", "no:cacheprovider")) == ["42"]
    many = pytester.runpytest("-s", "-v", "--simnet-seed", "10", "--simnet-seeds", "3", "-p", "no:cacheprovider")
    many.assert_outcomes(passed=3)
    assert sorted(_seeds(many)) == ["10", "11", "12"]


def test_seeds_do_not_depend_on_the_xdist_worker(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(ECHO_TEST)
    serial = _seeds(pytester.runpytest("-s", "-p", "no:cacheprovider"))
    parallel = pytester.runpytest_subprocess("-s", "-n", "2", "-p", "no:cacheprovider")
    parallel.assert_outcomes(passed=1)
    # xdist captures worker output; the seed shows in the report of a failure
    pytester.makepyfile(test_fail='''
        def test_show(fake_net, simnet_seed):
            assert False, f"SEED {simnet_seed}"
    ''')
    a = pytester.runpytest("test_fail.py", "-p", "no:cacheprovider")
    b = pytester.runpytest_subprocess("test_fail.py", "-n", "2", "-p", "no:cacheprovider")
    assert _seeds(a)[:1] == _seeds(b)[:1] and _seeds(a)
    assert serial


@pytest.mark.parametrize("args, words", [
    (["--simnet-seed", "x"], "--simnet-seed: invalid"),
    (["--simnet-seeds", "0"], "--simnet-seeds: invalid"),
    (["--simnet-backend", "wifi"], "--simnet-backend: invalid choice"),
])
def test_invalid_option_values_fail_naming_the_option(pytester, args, words):
    pytester.makepyfile(ECHO_TEST)
    result = pytester.runpytest(*args)
    assert result.ret != 0
    assert words in result.stderr.str()


def test_unknown_marker_argument_fails_collection_naming_it(pytester):
    pytester.makepyfile('''
        import pytest
        @pytest.mark.simnet(sed=3)
        def test_x(fake_net):
            pass
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    assert "unknown @pytest.mark.simnet argument(s) sed" in result.stderr.str() + result.stdout.str()


def test_invalid_plan_in_marker_fails_collection(pytester):
    pytester.makepyfile('''
        import pytest
        @pytest.mark.simnet(faults=[{"fault": "short_read", "max_bytes": 0}])
        def test_x(fake_net):
            pass
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    assert "rule 1 (short_read): field 'max_bytes' must be >= 1" in result.stderr.str() + result.stdout.str()


def _run_as_printed(command: str, cwd) -> subprocess.CompletedProcess:
    """Run a command line exactly as the plugin printed it, in a shell, from *cwd*."""
    return subprocess.run(command, shell=True, cwd=str(cwd), capture_output=True, text=True,
                          timeout=300)


def test_failure_report_has_seed_plan_timeline_and_a_replay_command(pytester, tmp_path):
    pytester.makepyfile(FAILING_TEST)
    traces = tmp_path / "traces"
    result = pytester.runpytest("--simnet-trace-dir", str(traces), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "simnet" in out and "seed: " in out
    assert "faults: 1. send() accepts at most 3 bytes" in out
    # the timeline as `simnet trace show` prints it, not raw event tuples
    assert "time (s)  who" in out
    assert "client#1        !! fault 1: send() accepts at most 3 bytes" in out
    assert "client#1        send 3 of 10 bytes (partial)" in out
    # the simnet section (up to pytest's summary, which newer pytest versions
    # print with the exception's whole message) shows no raw fd numbers
    section = out.split("-- simnet --")[-1].split("short test summary info")[0]
    assert "timeline, " in section and "2000000004" not in section
    files = list(traces.glob("*.jsonl"))
    assert len(files) == 1 and f"trace: {files[0]}" in out
    assert f"diagram: simnet trace html {files[0]} -o {files[0].with_suffix('.html')}" in out
    command = re.search(r"replay: (.*)", out).group(1)
    assert "--simnet-replay" in command

    # the printed command reproduces the failure, and says the replay matched
    again = _run_as_printed(command, pytester.path)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "1 failed" in again.stdout and "Deadlock" in again.stdout
    assert "replay diverged" not in again.stdout
    assert "identical to" in again.stdout and "the recorded failure reproduced" in again.stdout
    # and the diagram command draws it
    diagram = re.search(r"diagram: (.*)", out).group(1)
    drawn = _run_as_printed(diagram, pytester.path)
    assert drawn.returncode == 0, drawn.stderr
    assert files[0].with_suffix(".html").read_text().startswith("<!DOCTYPE html>")


def test_replay_command_without_a_trace_runs_as_printed(pytester):
    pytester.makepyfile(FAILING_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    command = re.search(r"replay: (.*)", result.stdout.str()).group(1)
    assert "--simnet-seed " in command
    again = _run_as_printed(command, pytester.path)
    assert again.returncode == 1 and "1 failed" in again.stdout and "Deadlock" in again.stdout


def test_simnets_own_frames_are_hidden_from_the_traceback(pytester):
    pytester.makepyfile(FAILING_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "fake_net.run(until=" in out and "Deadlock" in out
    assert "simnet/fakesock/network.py" not in out and "simnet/asyncore.py" not in out
    full = pytester.runpytest("--full-trace", "-p", "no:cacheprovider")
    assert "simnet/fakesock/network.py" in full.stdout.str()


@pytest.mark.parametrize("with_traces", [False, True])
def test_replay_command_under_seeds_runs_as_printed(pytester, tmp_path, with_traces):
    pytester.makepyfile(FAILING_TEST)
    extra = ["--simnet-trace-dir", str(tmp_path / "traces")] if with_traces else []
    result = pytester.runpytest("--simnet-seeds", "2", *extra, "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    commands = re.findall(r"replay: (.*)", result.stdout.str())
    assert len(commands) == 2
    for command in commands:
        assert re.search(r"\[seed\d+\]", command), command
        again = _run_as_printed(command, pytester.path)
        assert again.returncode == 1, again.stdout + again.stderr
        assert "1 failed" in again.stdout, again.stdout + again.stderr
    if with_traces:
        for name in (p.name for p in (tmp_path / "traces").glob("*.jsonl")):
            assert len(re.findall(r"seed\d+", name)) == 1, name


def test_replay_command_runs_as_printed_from_a_subdirectory(pytester):
    pytester.makeini("[pytest]\n")
    sub = pytester.mkdir("sub")
    (sub / "test_sub.py").write_text(FAILING_TEST)
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_sub.py", "--simnet-trace-dir",
                           "traces", "-p", "no:cacheprovider"], cwd=str(sub),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    command = re.search(r"replay: (.*)", proc.stdout).group(1)
    assert command.startswith("pytest test_sub.py::test_naive_sender --simnet-replay=traces/")
    again = _run_as_printed(command, sub)
    assert again.returncode == 1 and "1 failed" in again.stdout, again.stdout + again.stderr
    assert "identical to" in again.stdout


def test_simnet_replay_on_a_plugin_trace_gives_the_pytest_command(pytester, tmp_path):
    pytester.makepyfile(test_naive=FAILING_TEST)
    traces = tmp_path / "traces"
    pytester.runpytest("--simnet-seeds", "2", "--simnet-trace-dir", str(traces), "-p", "no:cacheprovider")
    trace = sorted(traces.glob("*.jsonl"))[0]
    done = subprocess.run([sys.executable, "-m", "simnet", "replay", str(trace)], cwd=str(pytester.path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot import scenario module" not in done.stderr
    assert "recorded by the pytest plugin" in done.stderr
    command = done.stderr.split("replay it with: ", 1)[1].strip()
    assert command.startswith("pytest 'test_naive.py::test_naive_sender[seed")
    again = _run_as_printed(command, pytester.path)
    assert again.returncode == 1 and "1 failed" in again.stdout, again.stdout + again.stderr
    assert "identical to" in again.stdout


def test_replay_applies_to_the_traced_test_only(pytester, tmp_path):
    pytester.makepyfile(test_naive=FAILING_TEST)
    traces = tmp_path / "traces"
    pytester.runpytest("--simnet-trace-dir", str(traces), "-p", "no:cacheprovider")
    trace = next(traces.glob("*.jsonl"))
    pytester.makepyfile(test_other=ECHO_TEST)
    result = pytester.runpytest("--simnet-replay", str(trace), "-p", "no:cacheprovider")
    # the echo test runs as usual; the traced one reproduces its failure
    result.assert_outcomes(passed=1, failed=1)
    assert "replay diverged" not in result.stdout.str()


def test_replay_says_so_when_the_selection_lacks_the_traced_test(pytester, tmp_path):
    pytester.makepyfile(test_naive=FAILING_TEST)
    traces = tmp_path / "traces"
    pytester.runpytest("--simnet-trace-dir", str(traces), "-p", "no:cacheprovider")
    trace = next(traces.glob("*.jsonl"))
    pytester.makepyfile(test_other=ECHO_TEST)
    result = pytester.runpytest("test_other.py", "--simnet-replay", str(trace), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "the trace is of test test_naive.py::test_naive_sender" in err
    assert "not among the selected tests" in err
    command = err.split("; run: ", 1)[1].strip()
    again = _run_as_printed(command, pytester.path)
    assert again.returncode == 1 and "1 failed" in again.stdout and "identical to" in again.stdout


def test_replay_of_a_changed_test_fails_with_the_divergence(pytester, tmp_path):
    pytester.makepyfile(test_naive=FAILING_TEST)
    traces = tmp_path / "traces"
    pytester.runpytest("--simnet-trace-dir", str(traces), "-p", "no:cacheprovider")
    trace = next(traces.glob("*.jsonl"))
    pytester.makepyfile(test_naive=FAILING_TEST.replace('b"0123456789"', 'b"01234567"'))
    result = pytester.runpytest("--simnet-replay", str(trace), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, errors=1)  # the test fails; the replay check at teardown
    out = result.stdout.str()
    assert "replay diverged at event" in out and "DIVERGED from" in out


def test_missing_replay_file_is_a_usage_error(pytester, tmp_path):
    pytester.makepyfile(ECHO_TEST)
    result = pytester.runpytest("--simnet-replay", str(tmp_path / "none.jsonl"))
    assert result.ret != 0 and "no such trace file" in result.stderr.str()


def test_fd_leak_is_reported_naming_the_socket(pytester):
    pytester.makepyfile('''
        import socket
        LEAK = []
        def test_leaky(real_net):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            LEAK.append(s)
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*left 1 file descriptor(s) open: fd * socket ('127.0.0.1', *"])


def test_fake_net_cleans_channels_and_timers_after_a_failing_test(pytester):
    pytester.makepyfile('''
        import simnet
        def test_fails(fake_net):
            d = simnet.dispatcher()
            d.create_socket()
            simnet.call_later(10, print)
            assert False
        def test_next_is_clean():
            assert simnet.socket_map == {}
            assert simnet._state.current is None
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)


def test_the_readme_plugin_example_passes(pytester):
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "def test_on_both_networks(net)" in b)
    pytester.makepyfile(test_readme_example=block)
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)  # the fault test, and the `net` test on fake and real


def test_seeds_option_works_with_the_net_fixture(pytester):
    pytester.makepyfile('''
        def test_both(net, simnet_seed):
            print("SEED", simnet_seed)
    ''')
    result = pytester.runpytest("-v", "-s", "--simnet-seeds", "2", "--simnet-seed", "5",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)  # fake under two seeds; real once (a seed means nothing there)
    out = result.stdout.str()
    assert "test_both[fake-seed5]" in out and "test_both[fake-seed6]" in out
    assert out.count("test_both[real") == 1


def test_tls_fixtures_give_an_echo_over_tls_on_the_fake_network(pytester):
    pytester.makepyfile('''
        import simnet
        from simnet.tls import TLSDispatcherWithSend

        class Server(simnet.dispatcher):
            def __init__(self, ctx):
                super().__init__()
                self.ctx = ctx
                self.create_socket()
                self.bind(("127.0.0.1", 443))
                self.listen(5)
            def handle_accepted(self, sock, addr):
                Echo(sock, context=self.ctx, server_side=True)

        class Echo(TLSDispatcherWithSend):
            def handle_read(self):
                self.send(self.recv(1024))

        class Client(TLSDispatcherWithSend):
            got = b""
            def __init__(self, ctx):
                super().__init__(context=ctx, server_hostname="localhost")
                self.create_socket()
                self.connect(("127.0.0.1", 443))
            def handle_connect(self):
                self.send(b"over tls")
            def handle_read(self):
                Client.got += self.recv(1024)

        def test_tls_echo(fake_net, tls_server_context, tls_client_context):
            Server(tls_server_context)
            c = Client(tls_client_context)
            fake_net.run(until=lambda: Client.got == b"over tls", timeout=10)
            assert c.socket.version().startswith("TLS")
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_real_net_applies_the_markers_fault_plan(pytester):
    pytester.makepyfile('''
        import socket
        import pytest
        import simnet
        from simnet import Rule

        @pytest.mark.simnet(faults=[Rule("partial_send", max_bytes=1)])
        def test_one_byte_sends(real_net):
            lst = socket.socket()
            lst.bind(("127.0.0.1", 0))
            lst.listen(1)
            d = simnet.dispatcher()
            d.create_socket()
            d.connect(lst.getsockname())
            conn, _ = lst.accept()
            try:
                assert d.send(b"hello") == 1
            finally:
                d.close()
                conn.close()
                lst.close()

        @pytest.mark.simnet(faults=[Rule("latency", latency=0.1)])
        def test_latency_cannot_be_real(real_net):
            pass
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    assert "cannot be applied to kernel sockets" in result.stdout.str()


# -- memory -------------------------------------------------------------------------

def test_passing_tests_release_their_network_and_trace(pytester):
    pytester.makepyfile('''
        import gc
        import weakref
        import simnet

        NETS = []

        def test_moves_a_megabyte(fake_net):
            a, b = fake_net.socket(), fake_net.socket()
            a.bind(("127.0.0.1", 9000))
            a.listen(1)
            b.connect(("127.0.0.1", 9000))
            c, _ = a.accept()
            for _ in range(16):    # a megabyte, 64 KB at a time
                b.sendall(b"x" * 65536)
                got = 0
                while got < 65536:
                    got += len(c.recv(65536))
            NETS.append(weakref.ref(fake_net))
            NETS.append(weakref.ref(fake_net.trace))
            a.close()
            c.close()

        def test_later():
            gc.collect()
            assert [r() for r in NETS] == [None, None]
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


# -- the leak check -------------------------------------------------------------------

def test_leak_check_closes_through_the_owner_never_behind_its_back(pytester):
    pytester.makepyfile('''
        import gc
        import os
        import socket

        LEAK = []

        def test_leaky(real_net):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            LEAK.append(s)

        def test_innocent_later_test(tmp_path):
            # gets the leaked descriptor's number if the leak check freed it
            f = open(tmp_path / "data", "w")
            LEAK.clear()
            gc.collect()         # the socket object goes: it must not close f's descriptor
            f.write("still mine")
            f.flush()
            f.close()
            assert (tmp_path / "data").read_text() == "still mine"
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::ResourceWarning")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*left 1 file descriptor(s) open: fd * socket ('127.0.0.1', *"
                                 "(closed through its socket.socket)*"])


def test_leak_check_leaves_a_descriptor_no_object_owns_open(pytester):
    pytester.makepyfile('''
        import os
        FDS = []

        def test_raw_pipe(real_net):
            FDS.extend(os.pipe())

        def test_still_open():
            os.fstat(FDS[0])      # EBADF if the check closed it
            for fd in FDS:
                os.close(fd)
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    assert "no Python object owns it: left open" in result.stdout.str()


# -- one driving API for both networks ---------------------------------------------------

NET_ECHO = '''
import pytest
import simnet
from simnet import Rule
from simnet.fakesock import SimulationTimeout
from simnet.examples.echo import EchoClient, EchoServer


def test_echo_on_both(net):
    server = EchoServer(("127.0.0.1", 0))
    client = EchoClient(server.socket.getsockname(), [b"hello\\n"])
    took = net.run(until=lambda: client.received == b"hello\\n", timeout=10)
    assert took >= 0
    client.close()
    server.close()


def test_run_times_out_on_both(net):
    ticks = []

    def tick():
        ticks.append(net.time())
        simnet.call_later(0.05, tick)

    simnet.call_later(0.05, tick)
    with pytest.raises(SimulationTimeout, match="did not hold within 0.3"):
        net.run(until=lambda: False, timeout=0.3)
    assert len(ticks) >= 3


@pytest.mark.simnet(faults=[Rule("latency", latency=0.05)])
def test_latency_is_fake_only(net):
    server = EchoServer(("127.0.0.1", 0))
    client = EchoClient(server.socket.getsockname(), [b"x\\n"])
    net.run(until=lambda: client.received == b"x\\n", timeout=10)
    assert net.time() >= 0.1
'''


def test_net_tests_are_written_once_with_run(pytester):
    pytester.makepyfile(NET_ECHO)
    result = pytester.runpytest("-v", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, skipped=1)
    out = result.stdout.str()
    assert "test_echo_on_both[real] PASSED" in out and "test_run_times_out_on_both[real] PASSED" in out
    # the fake-only fault skips the real variant, saying why
    assert "test_latency_is_fake_only[fake] PASSED" in out
    assert "SKIPPED" in out and "the real network cannot run this test's fault plan" in out
    assert "rule 1 (latency): cannot be applied to kernel sockets" in out


def test_marker_chooses_the_networks_of_a_net_test(pytester):
    pytester.makepyfile('''
        import pytest

        @pytest.mark.simnet(backends=["fake"])
        def test_fake_only(net):
            assert net.is_fake

        @pytest.mark.simnet(backends="real")
        def test_real_only(net):
            assert not net.is_fake

        def test_both(net):
            pass
    ''')
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    assert "test_fake_only[fake]" in out and "test_fake_only[real]" not in out
    assert "test_real_only[real]" in out and "test_real_only[fake]" not in out
    only_fake = pytester.runpytest("-v", "-rs", "--simnet-backend", "fake", "-p", "no:cacheprovider")
    only_fake.assert_outcomes(passed=2, skipped=1)
    assert "the session runs fake only" in only_fake.stdout.str()


# -- the stdlib asyncore, and installing simnet's ------------------------------------------

STDLIB_APP = '''
import asyncore
import socket


class Server(asyncore.dispatcher):
    def __init__(self):
        super().__init__()
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.bind(("127.0.0.1", 0))
        self.listen(5)

    def handle_accepted(self, sock, addr):
        self.got = sock
'''

STDLIB_TEST = '''
import app


def test_app(fake_net):
    server = app.Server()     # a real listening socket, in the stdlib's map
    fake_net.run(until=lambda: hasattr(server, "got"), timeout=1)
'''


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 removed the stdlib asyncore: "
                    "the app's import fails (test_an_app_importing_the_removed_asyncore_is_given_the_fix)")
def test_an_app_on_the_stdlib_asyncore_is_named_and_the_fix_given(pytester):
    pytester.makepyfile(app=STDLIB_APP, test_app=STDLIB_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "hint: the application imported the standard library's asyncore" in out
    assert "1 channel(s) on real sockets" in out
    assert "simnet_install = true" in out and "--simnet-install" in out


#: On 3.11 the stdlib still has asyncore: a conftest hides it, as 3.12+ does
#: (unless --simnet-install put simnet's there).
HIDE_STDLIB = '''
import sys

if sys.version_info < (3, 12) and "asyncore" not in sys.modules:
    sys.modules["asyncore"] = sys.modules["asynchat"] = None
'''

APP_TEST_BODY = '''
    import simnet
    server = app.Server()  # simnet's dispatcher, on the fake network
    assert isinstance(server, simnet.dispatcher)
    assert server.socket.fileno() >= simnet._state.FAKE_FD_BASE
    server.close()
'''


@pytest.mark.parametrize("where", ["module", "test"])
def test_an_app_importing_the_removed_asyncore_is_given_the_fix(pytester, where):
    """3.12+: the application's ``import asyncore`` fails (at collection when
    the test module imports it, in the test when the test does); the report
    says simnet has the module and how to install it."""
    pytester.makeconftest(HIDE_STDLIB)
    pytester.makepyfile(app=STDLIB_APP)
    if where == "module":
        pytester.makepyfile(test_app="import app\n\ndef test_app(fake_net):" + APP_TEST_BODY)
    else:
        pytester.makepyfile(test_app="def test_app(fake_net):\n    import app\n" + APP_TEST_BODY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    if where == "module":
        result.assert_outcomes(errors=1)
    else:
        result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "ModuleNotFoundError" in out
    assert "hint: the application imports asyncore, which is not in this Python's standard library" in out
    assert "simnet provides it" in out and "simnet.install()" in out
    assert "simnet_install = true" in out and "--simnet-install" in out
    # and the fix given works
    fixed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--simnet-install")
    fixed.assert_outcomes(passed=1)


@pytest.mark.parametrize("how", ["flag", "ini"])
def test_install_option_gives_the_app_simnets_modules(pytester, how):
    pytester.makepyfile(app=STDLIB_APP, test_app='''
        import asyncore
        import simnet
        import app

        def test_app_runs_on_the_fake_network(fake_net):
            assert asyncore is simnet.asyncore
            server = app.Server()
            assert server.socket.fileno() >= simnet._state.FAKE_FD_BASE
            server.close()
    ''')
    args = ["-p", "no:cacheprovider"]
    if how == "flag":
        args.append("--simnet-install")
    else:
        pytester.makeini("[pytest]\nsimnet_install = true\n")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    assert "asyncore/asynchat are simnet's (installed)" in result.stdout.str()


# -- ini settings and the report header -------------------------------------------------------

def test_ini_settings_and_the_report_header(pytester, tmp_path):
    pytester.makepyfile(ECHO_TEST)
    pytester.makeini(f"[pytest]\nsimnet_seed = 40\nsimnet_seeds = 2\nsimnet_backend = fake\n"
                     f"simnet_trace_dir = {tmp_path / 'tr'}\nsimnet_trace_all = true\n")
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert sorted(_seeds(result)) == ["40", "41"]
    assert len(list((tmp_path / "tr").glob("*.jsonl"))) == 2
    result.stdout.fnmatch_lines(["simnet: 2 seeds per fake-network test, counting up from 40; "
                                 "net: fake; traces of all tests in *tr"])
    # the command line wins over the ini file
    one = pytester.runpytest("-s", "--simnet-seeds", "1", "--simnet-seed", "7", "-p", "no:cacheprovider")
    assert _seeds(one) == ["7"]
    one.stdout.fnmatch_lines(["simnet: seed 7 for every fake network; net: fake*"])


def test_default_report_header_says_the_seed_mode(pytester):
    pytester.makepyfile(ECHO_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["simnet: seeds derived from each test's id; net: fake and real"])


# -- bad input: one line naming the field and the value ---------------------------------------

@pytest.mark.parametrize("ini, words", [
    ("simnet_seeds = 0", "ini setting simnet_seeds: invalid value '0' (expected a whole number >= 1)"),
    ("simnet_seed = x", "ini setting simnet_seed: invalid value 'x' (expected a whole number >= 0)"),
    ("simnet_backend = wifi", "ini setting simnet_backend: invalid value 'wifi'"),
    ("simnet_install = perhaps", "ini setting simnet_install: invalid value 'perhaps' (expected true or false)"),
    ("simnet_trace_all = 2", "ini setting simnet_trace_all: invalid value '2'"),
])
def test_bad_ini_values_are_usage_errors(pytester, ini, words):
    pytester.makepyfile(ECHO_TEST)
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert words in err and "Traceback" not in err, err


@pytest.mark.parametrize("args, words", [
    (["--simnet-seed", "x"], "argument --simnet-seed: invalid value 'x' (expected a whole number >= 0)"),
    (["--simnet-seed", "-1"], "argument --simnet-seed: invalid value '-1'"),
    (["--simnet-seeds", "0"], "argument --simnet-seeds: invalid value '0' (expected a whole number >= 1)"),
    (["--simnet-seeds", "10000000000"], "argument --simnet-seeds: invalid value '10000000000' (expected at most"),
    (["--simnet-trace-dir", ""], "--simnet-trace-dir: invalid value '' (expected a path)"),
    (["--simnet-replay", ""], "--simnet-replay: invalid value '' (expected a path)"),
])
def test_option_errors_name_the_option_and_value_not_internals(pytester, args, words):
    pytester.makepyfile(ECHO_TEST)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert words in err, err
    assert "_nonneg_int" not in err and "_pos_int" not in err and "Traceback" not in err


@pytest.mark.parametrize("marker, words", [
    ("shuffle='yes'", "@pytest.mark.simnet: shuffle must be True or False, got 'yes'"),
    ("latency=float('nan')", "@pytest.mark.simnet: latency must be a finite number >= 0, got nan"),
    ("bandwidth=float('inf')", "@pytest.mark.simnet: bandwidth must be a finite number > 0, got inf"),
    ("sndbuf=0", "@pytest.mark.simnet: sndbuf must be a whole number of bytes >= 1 or None, got 0"),
    ("seed=-3", "@pytest.mark.simnet: seed must be a whole number >= 0 or None, got -3"),
    ("seed=True", "@pytest.mark.simnet: seed must be a whole number >= 0 or None, got True"),
    ("backends=['wifi']", "@pytest.mark.simnet: backends must be 'fake', 'real', 'both' or a list of them, got ['wifi']"),
    ("faults=[{'fault': ['x']}]", "@pytest.mark.simnet: faults:"),
    ("3", "@pytest.mark.simnet takes keyword arguments only"),
])
def test_bad_marker_values_fail_collection_naming_them(pytester, marker, words):
    pytester.makepyfile(f'''
        import pytest
        @pytest.mark.simnet({marker})
        def test_x(fake_net):
            pass
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert words in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err


def _trace_file(tmp_path, header: str, events=('[0.0, "close", 3]',), end: str | None = None):
    footer = [] if end == "" else ['{"end": %d}' % len(events)]
    lines = [header, *events, *footer]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("header, end, words", [
    ('{"simnet_trace": 1, "network": [1, 2], "test": "t.py::t"}', None,
     "header field 'network' must be an object, got [1, 2]"),
    ('{"simnet_trace": true, "test": "t.py::t"}', None,
     "header field 'simnet_trace' must be the format number 1, got True"),
    ('{"simnet_trace": 1, "seed": "7", "test": "t.py::t"}', None,
     "header field 'seed' must be a whole number, got '7'"),
    ('{"simnet_trace": 1, "test": "t.py::t"}', "", "truncated trace (no end marker"),
    ('{"simnet_trace": 1, "test": "t.py::t", "network": {"latency": NaN}}', None,
     "header field 'network': latency must be a finite number >= 0, got nan"),
    ('{"simnet_trace": 1, "test": "t.py::t", "faults": [{"fault": "nope"}]}', None,
     "the header's fault plan"),
    ('{"simnet_trace": 1, "scenario": "m:f"}', None, "the trace names no pytest test"),
    ('{"simnet_trace": 1', None, "header is not JSON"),
])
def test_bad_replay_traces_are_usage_errors(pytester, tmp_path, header, end, words):
    pytester.makepyfile(ECHO_TEST)
    path = _trace_file(tmp_path, header, end=end)
    result = pytester.runpytest(f"--simnet-replay={path}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert words in err and "Traceback" not in err and "INTERNALERROR" not in err, err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err


def test_an_unwritable_trace_dir_is_a_usage_error(pytester, tmp_path):
    pytester.makepyfile(FAILING_TEST)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = pytester.runpytest("--simnet-trace-dir", str(blocker / "traces"), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "INTERNALERROR" not in err + result.stdout.str()
    assert f"--simnet-trace-dir '{blocker / 'traces'}': cannot write traces there" in err
    assert "is not a directory" in err


def test_a_relative_trace_dir_in_the_ini_file_is_relative_to_the_ini_file(pytester):
    pytester.makeini("[pytest]\nsimnet_trace_dir = traces\n")
    sub = pytester.mkdir("sub")
    (sub / "test_sub.py").write_text(FAILING_TEST)
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_sub.py", "-p", "no:cacheprovider"],
                          cwd=str(sub), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert len(list((pytester.path / "traces").glob("*.jsonl"))) == 1
    command = re.search(r"replay: (.*)", proc.stdout).group(1)
    written = next((pytester.path / "traces").glob("*.jsonl"))
    assert command == f"pytest test_sub.py::test_naive_sender --simnet-replay={written}"
    again = _run_as_printed(command, sub)
    assert again.returncode == 1 and "identical to" in again.stdout, again.stdout + again.stderr


def test_marker_patch_puts_unmodified_clients_on_the_fake_network(pytester):
    pytester.makepyfile('''
        import socket
        import pytest
        import simnet

        @pytest.mark.simnet(patch=True)
        def test_create_connection(fake_net):
            server = fake_net.socket()
            server.bind(("127.0.0.1", 8025))
            server.listen(1)
            client = socket.create_connection(("127.0.0.1", 8025), timeout=5)
            assert client.fileno() >= simnet._state.FAKE_FD_BASE
            conn, _ = server.accept()
            client.sendall(b"hi")
            assert conn.recv(10) == b"hi"
            for s in (client, conn, server):
                s.close()

        def test_unpatched(fake_net):
            assert socket.socket is not None and "fake" not in repr(socket.socket).lower()
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_virtual_time_from_the_marker_or_the_ini_file(pytester):
    import inspect

    from simnet.fakesock import FakeNetwork

    if "time" not in inspect.signature(FakeNetwork.patch).parameters:
        pytest.skip("this simnet's FakeNetwork.patch() has no virtual clocks yet")
    pytester.makepyfile('''
        import time
        import pytest

        @pytest.mark.simnet(virtual_time=True)
        def test_sleep_is_virtual(fake_net):
            start = time.monotonic()
            time.sleep(3600)
            assert time.monotonic() - start == pytest.approx(3600)
            assert fake_net.time() >= 3600
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    pytester.makepyfile(test_virtual_time_from_the_marker_or_the_ini_file='''
        import time

        def test_ini_sleep_is_virtual(fake_net):
            time.sleep(60)
            assert fake_net.time() >= 60
    ''')
    pytester.makeini("[pytest]\nsimnet_virtual_time = true\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_real_sockets_in_simnets_map_during_a_fake_test_are_named(pytester):
    pytester.makepyfile('''
        import socket
        import simnet

        def test_mixed(fake_net):
            simnet.dispatcher(socket.socket())   # a kernel socket, not the fake network's
            fake_net.run(until=lambda: False, timeout=1)

        def test_cleanup():
            simnet.close_all(ignore_all=True)
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    assert "hint: " in result.stdout.str()
    assert "simnet.socket_map holds 1 real socket(s)" in result.stdout.str()
