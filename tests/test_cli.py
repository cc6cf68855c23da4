"""The `simnet` command: the README's main job and its argument errors."""

import subprocess
import sys

from simnet.cli import main


def test_demo_runs_the_echo_example_and_reports_success(capsys):
    assert main(["demo", "--lines", "2"]) == 0
    out = capsys.readouterr().out
    assert "accepted a connection" in out
    assert "received" in out
    assert "result: every byte echoed" in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().err


def test_bad_argument_is_a_one_line_error_with_exit_2():
    out = subprocess.run([sys.executable, "-m", "simnet", "demo", "--lines", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--lines must be at least 1" in out.stderr
    assert "Traceback" not in out.stderr
