"""`simnet explore` as a user meets it: their own scenario module in the
directory they run from, the console script exactly as installed, findings
that are bugs, tidy output, and one-line errors for bad input.

Every command runs in a subprocess from a temporary directory holding the
user's module, with PYTHONPATH pointing at this source tree only: the
scenario must be found in the current directory as ``python -m`` would.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TREE = Path(__file__).resolve().parents[1]
APPS = Path(__file__).resolve().parent / "explore_apps"


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(TREE)
    env.pop("COLUMNS", None)
    env.update(extra)
    return env


def simnet(cwd: Path, *args: str, env: dict[str, str] | None = None,
           timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user types it."""
    exe = shutil.which("simnet")
    assert exe, "the simnet console script is not installed"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True,
                          env=env or _env(), timeout=timeout)


@pytest.fixture(autouse=True)
def _oneshot_importable(monkeypatch, tmp_path_factory):
    """kv_oneshot (kv_retry without its retries) importable in this process too."""
    where = tmp_path_factory.mktemp("oneshot")
    shutil.copy(APPS / "kv_retry.py", where / "kv_retry.py")
    (where / "kv_oneshot.py").write_text(ONE_SHOT)
    monkeypatch.syspath_prepend(str(where))


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A directory holding the user's own program and scenario (kv_retry.py)."""
    shutil.copy(APPS / "kv_retry.py", tmp_path / "kv_retry.py")
    return tmp_path


# -- findings are bugs ----------------------------------------------------------------

def test_a_correct_program_that_retries_gets_no_finding_over_1000_seeds(user_dir):
    out = simnet(user_dir, "explore", "kv_retry:scenario", "--seeds", "1000", "-j", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no failure in 1000 runs of kv_retry:scenario" in out.stdout
    assert not list(user_dir.glob("*.jsonl"))


ONE_SHOT = textwrap.dedent('''
    import kv_retry

    class OneShot(kv_retry.Putter):
        def failed(self, attempt):
            pass  # the bug: gives up after its first attempt

    def scenario(net):
        kv_retry.Putter = OneShot
        kv_retry.scenario(net)
''')


def test_the_same_program_without_its_retries_is_found_out(user_dir):
    (user_dir / "kv_oneshot.py").write_text(ONE_SHOT)
    out = simnet(user_dir, "explore", "kv_oneshot:scenario", "--seeds", "300", "-j", "2")
    assert out.returncode == 1, out.stdout + out.stderr
    plans = re.findall(r"plan \(JSON\): (.*)", out.stdout)
    assert plans and all(plan.count('"fault"') == 1 for plan in plans)  # one rule each
    assert "breaks the network for good" not in out.stdout  # and each a transient one


def test_permanent_faults_are_drawn_only_when_asked_and_marked_and_replay_runs_as_printed(user_dir):
    out = simnet(user_dir, "explore", "kv_retry:scenario", "--seeds", "100", "--permanent",
                 "--trace-dir", "traces")
    assert out.returncode == 1, out.stdout + out.stderr
    # every finding is marked: each has a rule no program survives (the program is fine)
    found = int(re.search(r"(\d+) distinct failure", out.stdout).group(1))
    assert found >= 1
    assert out.stdout.count("breaks the network for good: no program survives it") == found
    command = re.search(r"replay: (simnet replay \S+)", out.stdout).group(1)
    again = simnet(user_dir, *shlex.split(command)[1:])
    assert again.returncode == 0, again.stdout + again.stderr
    assert "identical" in again.stdout and "the recorded failure reproduced" in again.stdout


def test_the_planted_bug_is_found_shrunk_to_one_transient_rule_with_a_few_traces(tmp_path):
    out = simnet(tmp_path, "explore", "simnet.examples.buggy:scenario", "--seeds", "400", "-j", "2",
                 "--trace-dir", "traces")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 distinct failure(s) in 400 runs" in out.stdout
    assert "AssertionError: the server got" in out.stdout
    plan = re.search(r"plan \(JSON\): (.*)", out.stdout).group(1)
    assert plan.count('"fault"') == 1
    seen = int(re.search(r"seen in (\d+) runs", out.stdout).group(1))
    files = sorted(p.name for p in (tmp_path / "traces").iterdir())
    # a few traces per distinct failure, not one per occurrence
    assert seen > 3 and 1 <= len(files) <= 3, (seen, files)
    assert "breaks the network for good" not in out.stdout


# -- output ---------------------------------------------------------------------------

NOISY = textwrap.dedent('''
    import logging
    import simnet

    log = logging.getLogger("noisy")

    class Client(simnet.dispatcher):
        def __init__(self, map):
            super().__init__(map=map)
            self.create_socket()
            self.connect(("127.0.0.1", 9))   # nobody listens: handle_error prints

        def handle_connect(self):
            pass

    def scenario(net):
        logging.basicConfig()
        log.warning("starting a run")
        print("a line on stdout")
        m = {}
        Client(m)
        try:
            net.run(map=m, timeout=5)
        finally:
            simnet.close_all(m)
''')


def test_the_programs_own_output_is_captured_and_counted_not_printed_per_run(tmp_path):
    (tmp_path / "noisy.py").write_text(NOISY)
    out = simnet(tmp_path, "explore", "noisy:scenario", "--seeds", "60", "--faults", "short_read")
    assert out.returncode == 0, out.stdout + out.stderr
    every_line = (out.stdout + out.stderr).splitlines()
    assert not [line for line in every_line if line.startswith("error: uncaptured python exception")]
    assert not [line for line in every_line
                if line in ("a line on stdout", "WARNING:noisy:starting a run")]
    count = int(re.search(r"the program wrote (\d+) line\(s\) of output over 60 runs", out.stdout).group(1))
    assert count == 3 * 60  # a warning, a print and asyncore's log_info line per run
    assert "(60x): " in out.stdout


def test_no_trace_directory_is_left_behind_when_nothing_failed(user_dir, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = simnet(user_dir, "explore", "kv_retry:scenario", "--seeds", "30", env=_env(TMPDIR=str(tmp)))
    assert out.returncode == 0, out.stdout + out.stderr
    assert list(tmp.iterdir()) == []


def test_progress_is_reported_on_a_non_tty_too(tmp_path):
    out = simnet(tmp_path, "explore", "simnet.examples.buggy:scenario", "--seeds", "400",
                 "--faults", "short_read", "--progress-every", "0")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("exploring: ")]
    assert len(lines) >= 4, out.stderr  # one per chunk of 100 runs, and the last
    assert lines[-1].startswith("exploring: 400/400 runs, 0 distinct failures")


# -- what to install ------------------------------------------------------------------

BLOCK_HYPOTHESIS = textwrap.dedent('''
    import sys

    class _NoHypothesis:
        def find_spec(self, name, path=None, target=None):
            if name == "hypothesis" or name.startswith("hypothesis."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoHypothesis())
''')


def test_without_hypothesis_explore_still_works_and_strategies_say_what_to_install(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_HYPOTHESIS)
    env = _env(PYTHONPATH=f"{site}{os.pathsep}{TREE}")
    check = subprocess.run([sys.executable, "-c", "import hypothesis"], capture_output=True,
                           text=True, env=env, timeout=60)
    assert check.returncode == 1 and "No module named 'hypothesis'" in check.stderr  # hidden
    # `pip install simnet` is all `simnet explore` needs
    out = simnet(tmp_path, "explore", "simnet.examples.buggy:scenario", "--seeds", "100", env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 distinct failure(s) in 100 runs" in out.stdout
    # the Hypothesis strategies, for one's own property tests, say what to install in one line
    lib = subprocess.run([sys.executable, "-c", "import simnet.strategies"], cwd=tmp_path,
                         capture_output=True, text=True, env=env, timeout=60)
    assert lib.returncode == 1
    assert lib.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: simnet.strategies needs Hypothesis, which is not installed: "
        "pip install hypothesis")


# -- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["kv_retry"], "MODULE:FUNCTION"),
    ([":scenario"], "MODULE:FUNCTION"),
    (["kv_retry:"], "MODULE:FUNCTION"),
    (["kv_retry:scenario:x"], "MODULE:FUNCTION"),
    (["kv retry:scenario"], "'kv retry:scenario'"),
    (["kv_retry:nothing"], "has no scenario 'nothing'"),
    (["no_such_module:scenario"], "cannot import scenario module 'no_such_module'"),
    (["broken:scenario"], "cannot import scenario module 'broken': NameError"),
    (["kv_retry:scenario", "--seeds", "0"], "'--seeds': 0"),
    (["kv_retry:scenario", "--seeds", "-5"], "'--seeds': -5"),
    (["kv_retry:scenario", "--seeds", "lots"], "'--seeds': 'lots'"),
    (["kv_retry:scenario", "--seeds", "1e3"], "'--seeds': '1e3'"),
    (["kv_retry:scenario", "-j", "-1"], "-j"),
    (["kv_retry:scenario", "-j", "100000"], "100000"),
    (["kv_retry:scenario", "-j", "two"], "'two'"),
    (["kv_retry:scenario", "--faults", "jam"], "--faults: unknown fault kind(s) jam"),
    (["kv_retry:scenario", "--faults", ""], "--faults: unknown fault kind(s) ''"),
    (["kv_retry:scenario", "--faults", "refuse,"], "--faults: unknown fault kind(s) ''"),
    (["kv_retry:scenario", "--progress-every", "nan"], "'nan'"),
    (["kv_retry:scenario", "--progress-every", "inf"], "'inf'"),
    (["kv_retry:scenario", "--max-rules", "0"], "--max-rules"),
    (["kv_retry:scenario", "--trace-dir", "a_file"], "--trace-dir: trace dir 'a_file' is a file"),
    (["kv_retry:scenario", "--trace-dir", "a_file/sub"], "--trace-dir: trace dir 'a_file/sub' is not writable"),
])
def test_bad_input_is_one_line_naming_the_field_and_value_exit_2(user_dir, args, words):
    (user_dir / "a_file").write_text("not a directory\n")
    (user_dir / "broken.py").write_text("undefined_name + 1\n")
    out = simnet(user_dir, "explore", *args, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("simnet explore: error:"), err
    assert words in err, err


# -- the unit of work, and the Python API -------------------------------------------------

def test_run_chunk_is_deterministic_plain_data_and_shards_add_up():
    import pickle

    from simnet.explore import chunks, run_chunk, shrink_failure

    name = "simnet.examples.buggy:scenario"
    a = run_chunk(name, 0, 60)
    b = run_chunk(name, 0, 60)
    assert pickle.loads(pickle.dumps(a)) == a == b  # same seeds, same everything
    assert a.runs == 60 and len(a.seen) == 1
    (key,) = a.seen
    assert [f.seed for f in a.failures] == sorted(f.seed for f in a.failures)
    assert 1 <= len(a.failures) <= 3 and all(f.key == key for f in a.failures)
    # two shards count what one chunk counts, and find the same smallest seed
    left, right = run_chunk(name, 0, 30), run_chunk(name, 30, 30)
    assert left.seen.get(key, 0) + right.seen.get(key, 0) == a.seen[key]
    assert min(f.seed for f in left.failures + right.failures) == a.failures[0].seed
    shrunk = shrink_failure(name, a.failures[0])
    assert shrunk == shrink_failure(name, a.failures[0]) and shrunk.trace
    assert len(shrunk.plan) == 1
    assert chunks(60, 25) == [(0, 25), (25, 25), (50, 10)]


def test_the_result_is_the_same_whatever_runs_the_chunks_and_in_what_order(tmp_path):
    from simnet.explore import explore

    def backwards(task, tasks):
        for first, count in reversed(tasks):
            yield task(first, count)

    runs = {}
    for label, kwargs in {"j1": {"jobs": 1}, "j2": {"jobs": 2},
                          "backwards": {"map_chunks": backwards}}.items():
        out = tmp_path / label
        failures = explore("kv_oneshot:scenario", seeds=150, trace_dir=str(out), **kwargs)
        runs[label] = ([(f.key, f.seed, f.plan.to_json(), f.count) for f in failures],
                       {p.name: p.read_bytes() for p in out.iterdir()})
    assert runs["j1"][0] and runs["j1"] == runs["j2"] == runs["backwards"]


@pytest.mark.parametrize("kwargs, words", [
    ({"seeds": 0}, "seeds must be a positive int, got 0"),
    ({"seeds": float("nan")}, "seeds must be a positive int, got nan"),
    ({"seeds": True}, "seeds must be a positive int, got True"),
    ({"jobs": -1}, "jobs must be an int >= 0"),
    ({"max_rules": 0}, "max_rules must be an int in 1..10, got 0"),
    ({"faults": "refuse"}, "faults must be a list of fault kinds, got the string 'refuse'"),
    ({"faults": ["jam"]}, "unknown fault kind(s) 'jam'"),
    ({"permanent": "yes"}, "permanent must be True or False, got 'yes'"),
])
def test_explore_api_rejects_bad_arguments_naming_them(kwargs, words):
    from simnet.explore import explore

    with pytest.raises(ValueError) as info:
        explore("simnet.examples.buggy:scenario", **kwargs)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_scenario_that_calls_sys_exit_is_a_finding_not_a_lost_worker(tmp_path):
    (tmp_path / "exits.py").write_text(textwrap.dedent('''
        import sys

        def scenario(net):
            if net.seed % 3 == 0:
                sys.exit(3)
    '''))
    out = simnet(tmp_path, "explore", "exits:scenario", "--seeds", "300", "-j", "2")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "ScenarioExit: the scenario called sys.exit(3)" in out.stdout
    assert "seen in 100 runs" in out.stdout
