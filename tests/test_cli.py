"""The `simnet` command: demo, trace show/html, replay, and its errors.

Everything runs in-process through click's CliRunner (fake-network runs
take milliseconds), except one test that runs the installed console script.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import sysconfig

import pytest
from click.testing import CliRunner

import simnet
from simnet.cli import TraceView, cli, main
from simnet.examples import demo as demos
from simnet.traces.trace import Trace

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _runner() -> CliRunner:
    # click >= 8.2 keeps stderr apart by default; older ones need mix_stderr=False
    if "mix_stderr" in inspect.signature(CliRunner).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()


def run(*args: str, color: bool = False):
    return _runner().invoke(cli, list(args), color=color, catch_exceptions=False)


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "\n" not in err, err
    assert "Traceback" not in result.stdout + result.stderr
    assert err.startswith("simnet"), err
    assert "error:" in err, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture
def demo_trace(tmp_path):
    """A demo trace of the echo example under the default fault mix."""
    path = tmp_path / "echo.jsonl"
    result = run("demo", "--trace", str(path))
    assert result.exit_code == 0, result.stderr
    return path


# -- demo ------------------------------------------------------------------------------

def test_demo_defaults_run_echo_on_the_fake_network_and_write_the_trace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("demo")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "demo 'echo'" in out and "fake network, seed 1" in out
    # the plan in English, a timeline with socket operations, faults and callbacks
    assert "links have 10 ms latency" in out
    assert "connect 127.0.0.1:7000" in out and "accept conn 1" in out
    assert "⚡ fault" in out or "!! fault" in out
    assert "» connected" in out or "> connected" in out
    # the summary
    assert "ok: every byte echoed (54 bytes)" in out
    assert "client → server#1: 54 bytes sent, 54 read; back: 54 sent, 54 read" in out
    assert "fired" in out and "s virtual" in out and "s wall" in out
    assert "simnet-demo.jsonl" in out
    trace = Trace.load(tmp_path / "simnet-demo.jsonl")
    assert trace.header["scenario"] == "simnet.examples.demo:echo"
    assert trace.header["seed"] == demos.DEFAULT_SEED
    assert trace.header["faults"] == simnet.FaultPlan(demos.DEFAULT_FAULTS).to_list()
    assert ANSI.search(out) is None  # not a terminal: no colour


@pytest.mark.parametrize("example", ["echo", "chat", "smtp", "http"])
def test_each_example_survives_the_default_faults_and_replays_identically(tmp_path, example):
    path = tmp_path / f"{example}.jsonl"
    result = run("demo", "--example", example, "--trace", str(path), "--seed", "11")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "result" in result.stdout and "ok:" in result.stdout
    events = len(Trace.load(path).events)
    replayed = run("replay", str(path))
    assert replayed.exit_code == 0, replayed.stdout
    assert f"identical, {events} events" in replayed.stdout


def test_the_fault_summary_is_the_networks_own(demo_trace):
    view = TraceView(Trace.load(demo_trace))
    assert "\n".join(view.fault_summary()) == view.demo["fault_summary"]
    assert sum(view.fired.values()) > 0


def test_same_seed_same_trace_other_seed_other_trace(tmp_path):
    paths = [tmp_path / f"{n}.jsonl" for n in range(3)]
    for path, seed in zip(paths, ("4", "4", "5")):
        assert run("demo", "--example", "chat", "--seed", seed, "--trace", str(path)).exit_code == 0
    assert paths[0].read_text() == paths[1].read_text()
    assert paths[0].read_text() != paths[2].read_text()


def test_demo_takes_a_plan_as_json_or_from_a_file(tmp_path):
    plan = '[{"fault": "short_read", "max_bytes": 1}]'
    result = run("demo", "--faults", plan, "--trace", str(tmp_path / "a.jsonl"))
    assert result.exit_code == 0
    # the server's reads of the 54 bytes are cut to 1 byte 53 times (the last is 1 byte anyway);
    # the client's reads of 1-byte echoes are not cut, so they do not count
    assert "recv() returns at most 1 byte: fired 53 time" in result.stdout
    (tmp_path / "plan.json").write_text('{"rules": [{"fault": "partial_send", "max_bytes": 3}]}')
    result = run("demo", "--faults", f"@{tmp_path / 'plan.json'}", "--trace", str(tmp_path / "b.jsonl"))
    assert result.exit_code == 0
    assert "send() accepts at most 3 bytes: fired" in result.stdout
    assert "send 3 of 14 bytes (partial)" in result.stdout
    result = run("demo", "--faults", "[]", "--trace", str(tmp_path / "c.jsonl"))
    assert result.exit_code == 0 and "faults: none" in result.stdout


def test_a_plan_the_program_does_not_survive_fails_with_status_1_and_still_replays(tmp_path):
    path = tmp_path / "refused.jsonl"
    result = run("demo", "--faults", '[{"fault": "refuse"}]', "--trace", str(path))
    assert result.exit_code == 1
    assert "FAILED" in result.stdout
    assert "ECONNREFUSED" in result.stdout
    assert run("replay", str(path)).exit_code == 0


def test_demo_on_real_sockets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("demo", "--real", "--example", "smtp")
    assert result.exit_code == 0, result.stdout
    assert "real loopback sockets" in result.stdout
    assert "ok: message delivered" in result.stdout
    assert "wall (real sockets)" in result.stdout
    assert not os.listdir(tmp_path)  # no trace unless asked for
    result = run("demo", "--real", "--trace", "real.jsonl")
    assert result.exit_code == 0
    assert Trace.load(tmp_path / "real.jsonl").header["backend"] == "real"
    assert run("trace", "show", "real.jsonl").exit_code == 0
    assert_one_line_error(run("replay", "real.jsonl"), "real network")


def test_colour_only_when_asked_for_a_terminal(tmp_path):
    path = str(tmp_path / "t.jsonl")
    assert ANSI.search(run("demo", "--trace", path).stdout) is None
    assert ANSI.search(run("demo", "--trace", path, color=True).stdout) is not None


def test_no_color_in_the_environment_turns_colour_off(tmp_path):
    path = str(tmp_path / "t.jsonl")
    coloured = _runner().invoke(cli, ["demo", "--trace", path], color=True, env={"NO_COLOR": "1"})
    assert coloured.exit_code == 0
    assert ANSI.search(coloured.stdout) is None
    shown = _runner().invoke(cli, ["trace", "show", path], color=True, env={"NO_COLOR": "1"})
    assert ANSI.search(shown.stdout) is None and "time (s)" in shown.stdout


def test_trace_html_creates_the_output_directories(demo_trace, tmp_path):
    out = tmp_path / "reports" / "today" / "run.html"
    result = run("trace", "html", str(demo_trace), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")


def _shell(command: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=str(cwd), capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("plan, status", [(None, 0), ('[{"fault": "refuse"}]', 1)])
def test_the_commands_demo_prints_run_as_printed(tmp_path, plan, status):
    args = [sys.executable, "-m", "simnet", "demo", "--trace", "out/my run.jsonl"]
    if plan:
        args += ["--faults", plan]
    done = subprocess.run(args, cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == status, done.stdout + done.stderr
    printed = re.search(r"next\s+(.*)", done.stdout).group(1)
    commands = [c.strip() for c in printed.split("·")]
    assert [c.split()[:2] for c in commands] == [["simnet", "trace"], ["simnet", "replay"]]
    html = _shell(commands[0], tmp_path)
    assert html.returncode == 0, html.stderr
    assert (tmp_path / "out" / "my run.html").exists()
    again = _shell(commands[1], tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "identical" in again.stdout   # the same run, event by event (the failure included)


# -- trace show / html --------------------------------------------------------------------

def test_trace_show_prints_the_timeline_and_summary(demo_trace):
    result = run("trace", "show", str(demo_trace))
    assert result.exit_code == 0
    out = result.stdout
    assert "scenario simnet.examples.demo:echo" in out
    assert "send 14 bytes" in out and "recv" in out and "summary" in out
    assert "ready:" not in out  # not by default


def test_trace_show_filters(demo_trace):
    out = run("trace", "show", str(demo_trace), "--kind", "send,recv").stdout
    lines = [ln for ln in out.splitlines() if re.match(r"\s+\d+\.\d{6}\s", ln)]
    assert lines and all(" send " in ln or " recv " in ln for ln in lines)
    out = run("trace", "show", str(demo_trace), "--kind", "all", "--limit", "3").stdout
    lines = [ln for ln in out.splitlines() if re.match(r"\s+\d+\.\d{6}\s", ln)]
    assert len(lines) == 3 and "more (raise --limit" in out
    out = run("trace", "show", str(demo_trace), "--conn", "1", "--kind", "accept,fault").stdout
    assert "accept conn 1" in out and "listen" not in out


def test_trace_html_is_self_contained_with_a_sequence_diagram(demo_trace, tmp_path):
    out = tmp_path / "page.html"
    result = run("trace", "html", str(demo_trace), "-o", str(out))
    assert result.exit_code == 0 and str(out) in result.stdout
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</svg>" in page
    assert "<style>" in page
    for external in ("<script", "<link", "<img", "src=", "@import", "url(http"):
        assert external not in page, external
    # the only URL is the SVG namespace
    assert set(re.findall(r"https?://[^\"' )]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert "seed" in page and "simnet.examples.demo:echo" in page
    assert "links have 10 ms latency, up to 5 ms jitter" in page  # the plan in English
    assert 'marker-end="url(#ah-data)"' in page  # arrows for the bytes
    assert "accept conn 1" in page
    # default output path, and stdout
    assert run("trace", "html", str(demo_trace)).exit_code == 0
    assert demo_trace.with_suffix(".html").exists()
    assert "<svg" in run("trace", "html", str(demo_trace), "-o", "-").stdout


def test_the_view_pairs_every_byte_read_with_a_send(tmp_path):
    path = tmp_path / "chat.jsonl"
    assert run("demo", "--example", "chat", "--trace", str(path)).exit_code == 0
    view = TraceView(Trace.load(path))
    assert sorted(view.conns) == [1, 2, 3]
    for pair in view.conns.values():
        client, server = pair["client"], pair["server"]
        assert client.label in demos.CHAT_MEMBERS
        for src, dst in ((client, server), (server, client)):
            carried = sum(m.nbytes for m in view.messages
                          if m.kind == "data" and m.src is src and m.dst is dst)
            assert carried == dst.received == src.sent
    assert sum(1 for m in view.messages if m.kind == "connect") == 3


# -- replay -------------------------------------------------------------------------------

def test_replay_reports_a_divergence_with_status_1(demo_trace, tmp_path):
    lines = demo_trace.read_text().splitlines()
    index = next(i for i, ln in enumerate(lines[1:-1]) if '"send"' in ln)
    event = json.loads(lines[index + 1])
    event[3] += 1  # offered one byte more than the program did
    lines[index + 1] = json.dumps(event)
    changed = tmp_path / "changed.jsonl"
    changed.write_text("\n".join(lines) + "\n")
    result = run("replay", str(changed))
    assert result.exit_code == 1
    assert "diverged" in result.stdout
    assert f"replay diverged at event {index}" in result.stdout


# -- bad input: one line, status 2 ------------------------------------------------------------

def _truncated(tmp_path, demo_trace):
    path = tmp_path / "truncated.jsonl"
    path.write_text("\n".join(demo_trace.read_text().splitlines()[:5]) + "\n")
    return path


def _write(path, text):
    path.write_text(text)
    return path


def _header_only(tmp_path, **header):
    path = tmp_path / "custom.jsonl"
    head = {"simnet_trace": 1, "backend": "fake", "seed": 1, "faults": [], "network": {}}
    head.update(header)
    path.write_text(json.dumps(head) + "\n" + json.dumps({"end": 0}) + "\n")
    return path


BAD = {
    "unknown example": (["demo", "--example", "gopher"], ["--example", "gopher"]),
    "unknown fault": (["demo", "--faults", '[{"fault": "gremlins"}]'], ["unknown fault 'gremlins'"]),
    "bad plan field": (["demo", "--faults", '[{"fault": "eagain", "op": "read"}]'],
                       ["rule 1 (eagain)", "op"]),
    "plan not JSON": (["demo", "--faults", "[{"], ["not valid JSON"]),
    "plan file missing": (["demo", "--faults", "@/nonexistent/plan.json"], ["cannot read fault plan file"]),
    "negative seed": (["demo", "--seed", "-3"], ["--seed"]),
    "seed not a number": (["demo", "--seed", "many"], ["--seed"]),
    "faults on real": (["demo", "--real", "--faults", "[]"], ["--faults"]),
    "seed on real": (["demo", "--real", "--seed", "2"], ["--seed"]),
    "unknown option": (["demo", "--colour"], ["--colour"]),
    "unknown command": (["explode"], ["explode"]),
    "show missing": (["trace", "show", "/nonexistent/t.jsonl"], ["no such trace file"]),
    "html missing": (["trace", "html", "/nonexistent/t.jsonl"], ["no such trace file"]),
    "replay missing": (["replay", "/nonexistent/t.jsonl"], ["no such trace file"]),
    "show a directory": (["trace", "show", "/"], ["is a directory"]),
    "bad kind": (["trace", "show", "@demo", "--kind", "send,teleport"], ["teleport"]),
    "conn 0": (["trace", "show", "@demo", "--conn", "0"], ["--conn"]),
    "no such conn": (["trace", "show", "@demo", "--conn", "9"], ["no connection 9"]),
    "limit 0": (["trace", "show", "@demo", "--limit", "0"], ["--limit"]),
    "show truncated": (["trace", "show", "@truncated"], ["truncated trace"]),
    "replay truncated": (["replay", "@truncated"], ["truncated trace"]),
    "not JSON": (["trace", "show", "@pyproject"], ["header is not JSON"]),
    "not a trace": (["trace", "show", "@json"], ["not a simnet trace"]),
    "no scenario": (["replay", "@noscenario"], ["names no scenario"]),
    "scenario gone": (["replay", "@gone"], ["cannot replay", "no_such_module"]),
    "bad plan in header": (["trace", "html", "@badplan"], ["fault plan is invalid"]),
    "html to a directory": (["trace", "html", "@demo", "-o", "/"], ["cannot write"]),
    "plan with a list as fault": (["demo", "--faults", '[{"fault": ["x"]}]'], ["--faults"]),
    "plan nested deep": (["demo", "--faults", "[" * 100_000 + "]" * 100_000], ["--faults"]),
    "network is a list": (["trace", "show", "@netlist"], ["header field 'network'", "[1, 2]"]),
    "version true": (["trace", "show", "@vtrue"], ["header field 'simnet_trace'", "True"]),
    "seed a string": (["replay", "@seedstr"], ["header field 'seed'", "'7'"]),
    "NaN latency in a header": (["replay", "@nan"], ["header field 'network'", "latency", "nan"]),
    "events nested deep": (["trace", "html", "@deep"], ["nested too deeply"]),
    "a plugin trace": (["replay", "@plugin"], ["recorded by the pytest plugin",
                                               "--simnet-replay="]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_status_2(case, demo_trace, tmp_path):
    args, needles = BAD[case]
    files = {
        "@demo": lambda: demo_trace,
        "@truncated": lambda: _truncated(tmp_path, demo_trace),
        "@pyproject": lambda: os.path.join(os.path.dirname(__file__), "..", "pyproject.toml"),
        "@json": lambda: _write(tmp_path / "x.json", '{"rules": []}\n'),
        "@noscenario": lambda: _header_only(tmp_path),
        "@gone": lambda: _header_only(tmp_path, scenario="no_such_module:scenario"),
        "@badplan": lambda: _header_only(tmp_path, faults=[{"fault": "gremlins"}]),
        "@netlist": lambda: _header_only(tmp_path, network=[1, 2]),
        "@vtrue": lambda: _header_only(tmp_path, simnet_trace=True),
        "@seedstr": lambda: _header_only(tmp_path, seed="7", scenario="simnet.examples.demo:echo"),
        "@nan": lambda: _header_only(tmp_path, network={"latency": float("nan")},
                                     scenario="simnet.examples.demo:echo"),
        "@deep": lambda: _write(tmp_path / "deep.jsonl", '{"simnet_trace": 1}\n'
                                + "[" * 100_000 + "]" * 100_000 + '\n{"end": 1}\n'),
        "@plugin": lambda: _header_only(tmp_path, test="tests/test_x.py::test_y[seed3]",
                                        rootdir=str(tmp_path)),
    }
    args = [str(files[a]()) if a in files else a for a in args]
    assert_one_line_error(run(*args), *needles)


def test_no_command_prints_help_and_exits_2():
    result = run()
    assert result.exit_code == 2
    assert "demo" in result.stderr and "replay" in result.stderr and "trace" in result.stderr


def test_version_and_main():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"simnet {simnet.__version__}"
    assert main(["--version"]) == 0
    assert main(["demo", "--example", "nope"]) == 2


# -- the installed console script --------------------------------------------------------------

def test_the_installed_console_script(tmp_path):
    script = os.path.join(sysconfig.get_path("scripts"), "simnet")
    if not os.path.exists(script):
        pytest.skip("the simnet console script is not installed (pip install -e .)")
    path = tmp_path / "smtp.jsonl"
    done = subprocess.run([script, "demo", "--example", "smtp", "--trace", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "message delivered" in done.stdout and "\x1b[" not in done.stdout
    bad = subprocess.run([sys.executable, "-m", "simnet", "replay", str(tmp_path / "none.jsonl")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "no such trace file" in bad.stderr


# -- explore -------------------------------------------------------------------

def test_explore_finds_the_planted_bug_shrinks_it_and_its_replay_reproduces(tmp_path):
    result = _runner().invoke(cli, ["explore", "simnet.examples.buggy:scenario", "--seeds", "20",
                                 "--faults", "partial_send,short_read,latency",
                                 "--trace-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "1 distinct failure(s)" in out
    assert "AssertionError: the server got" in out
    assert "plan: 1. send() accepts" in out  # shrunk to the one rule that matters
    command = re.search(r"replay: (simnet replay \S+)", out).group(1)
    again = _runner().invoke(cli, command.split()[1:])
    assert again.exit_code == 0, again.output
    assert "the recorded failure reproduced: AssertionError: the server got" in again.output


def test_explore_with_nothing_to_find_exits_0(tmp_path):
    result = _runner().invoke(cli, ["explore", "simnet.examples.buggy:scenario", "--seeds", "10",
                                 "--faults", "short_read,latency", "--trace-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "no failure in 10 runs" in result.output


def test_explore_runs_in_parallel(tmp_path):
    result = _runner().invoke(cli, ["explore", "simnet.examples.buggy:scenario", "--seeds", "20", "-j", "2",
                                 "--faults", "partial_send", "--stop", "--trace-dir", str(tmp_path)])
    assert result.exit_code == 1 and "distinct failure" in result.output


@pytest.mark.parametrize("args, words", [
    (["explore", "nosuch.module:fn"], "cannot import scenario module 'nosuch.module'"),
    (["explore", "simnet.examples.buggy:nothing"], "has no scenario 'nothing'"),
    (["explore", "simnet.examples.buggy:scenario", "--seeds", "0"], "--seeds"),
    (["explore", "simnet.examples.buggy:scenario", "--faults", "jam"], "unknown fault kind(s) jam"),
])
def test_explore_bad_input_is_one_line_and_exit_2(args, words):
    out = subprocess.run([sys.executable, "-m", "simnet", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert words in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
