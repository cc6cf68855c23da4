"""`simnet explore` on a Dask cluster (issue 14), and --shard.

The cluster tests start a real ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 (ports picked by the OS, dashboards off, one thread
per worker), shared by the module and always torn down, and compare what
runs through them with a local run over the same seeds: the same failures,
shrunk plans, seeds, counts and trace files, byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from simnet.cli import cli
from simnet.explore import chunks, explore

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
BUGGY = "simnet.examples.buggy:scenario"
#: Bound on any one wait for the cluster (start-up, a run, a teardown).
LIMIT = 60.0
#: Bound on the whole module's use of the cluster: then its processes are killed.
WATCHDOG = 300.0


def _summary(failures):
    return [[f.key, f.error, f.seed, f.plan.to_list(), f.count,
             os.path.basename(f.trace_path) if f.trace_path else None] for f in failures]


LOCAL_RUN = """
import json, os, sys
from simnet.explore import explore
failures = explore(sys.argv[1], seeds=int(sys.argv[2]), trace_dir=sys.argv[3])
print(json.dumps([[f.key, f.error, f.seed, f.plan.to_list(), f.count,
                   os.path.basename(f.trace_path) if f.trace_path else None] for f in failures]))
"""


def _local_run(name, seeds, trace_dir):
    """A local run's summary, in a fresh process as a user would run it (in
    this one, pytest may rewrite the scenario's asserts, and so its message)."""
    done = subprocess.run([sys.executable, "-c", LOCAL_RUN, name, str(seeds), str(trace_dir)],
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=LIMIT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir())}


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE)]
                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


def _wait_for(condition, what, procs=()):
    deadline = time.monotonic() + LIMIT
    while not condition():
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{what}: {proc.args!r} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {LIMIT} s waiting for {what}")
        time.sleep(0.02)


# -- the extra is missing ---------------------------------------------------------------

def test_scheduler_without_the_extra_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # hide the package: import fails
    result = CliRunner().invoke(cli, ["explore", BUGGY, "--seeds", "10",
                                      "--scheduler", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "pip install 'simnet[distributed]'" in lines[0]
    assert lines[0].startswith("simnet explore: error: --scheduler:")


def test_explore_api_without_the_extra_raises_naming_it(monkeypatch, tmp_path):
    from simnet.distributed import MissingExtra

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingExtra, match=r"simnet\[distributed\]"):
        explore(BUGGY, seeds=10, scheduler="tcp://127.0.0.1:8786", trace_dir=str(tmp_path))


# -- shards (no extra needed) -----------------------------------------------------------

def _found_seeds(failures):
    return sorted(e.seed for f in failures for e in f.variants)


def test_shards_are_disjoint_and_together_equal_one_run_of_all_their_seeds(tmp_path):
    stats = [{}, {}, {}]
    whole = explore(BUGGY, seeds=40, trace_dir=str(tmp_path / "whole"), stats=stats[0])
    parts = [explore(BUGGY, seeds=20, shard=f"{i}/2", trace_dir=str(tmp_path / f"part{i}"),
                     stats=stats[i]) for i in (1, 2)]
    assert [s["runs"] for s in stats] == [40, 20, 20]
    one, two = _found_seeds(parts[0]), _found_seeds(parts[1])
    assert one and two
    assert all(s < 20 for s in one) and all(20 <= s < 40 for s in two)  # disjoint slices
    # together they are the whole run: every failure counted once, the smallest seeds found
    counts = {}
    for f in parts[0] + parts[1]:
        counts[f.key] = counts.get(f.key, 0) + f.count
    assert counts == {f.key: f.count for f in whole}
    for f in whole:
        union = sorted(e.seed for p in parts for g in p if g.key == f.key for e in g.variants)
        assert [e.seed for e in f.variants] == union[:len(f.variants)]


def test_shard_cli_runs_its_slice(tmp_path):
    result = CliRunner().invoke(cli, ["explore", BUGGY, "--seeds", "10", "--shard", "3/3",
                                      "--trace-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    seeds = [int(m) for m in re.findall(r"failure-\d+-seed(\d+)\.jsonl", " ".join(os.listdir(tmp_path)))]
    assert seeds and all(20 <= s < 30 for s in seeds), os.listdir(tmp_path)


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1", "a/b", "1/2/3", "-1/2", "", "\u00b9/2", "1.0/2"])
def test_bad_shard_is_one_line_and_exit_2(shard):
    result = CliRunner().invoke(cli, ["explore", BUGGY, "--seeds", "10", "--shard", shard])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("simnet explore: error: --shard:"), result.output
    assert repr(shard) in lines[0] or shard in lines[0]


@pytest.mark.parametrize("shard", [(0, 1), (2, 1), "x", (1.0, 2), (True, 2), [1, 2]])
def test_bad_shard_in_the_api_is_a_valueerror_naming_it(shard, tmp_path):
    with pytest.raises(ValueError, match="shard"):
        explore(BUGGY, seeds=10, shard=shard, trace_dir=str(tmp_path))


SEED_TEST = """
def test_seed(fake_net, simnet_seed):
    print("SEED", simnet_seed)
"""


def _plugin_seeds(result):
    return sorted(int(seed) for seed in re.findall(r"SEED (\d+)", result.stdout.str()))


def test_plugin_shards_split_the_seeds_into_disjoint_blocks(pytester):
    pytester.makepyfile(SEED_TEST)
    shards = []
    for i in (1, 2, 3):
        result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--simnet-seed", "100",
                                    "--simnet-seeds", "4", "--simnet-shard", f"{i}/3")
        result.assert_outcomes(passed=4)
        shards.append(_plugin_seeds(result))
    assert shards == [[100, 101, 102, 103], [104, 105, 106, 107], [108, 109, 110, 111]]
    # without --simnet-seed the blocks start at the test's own default seed
    from simnet.pytest_plugin import seed_for

    base = seed_for("test_plugin_shards_split_the_seeds_into_disjoint_blocks.py::test_seed")
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--simnet-seeds", "2",
                                "--simnet-shard", "2/2")
    assert _plugin_seeds(result) == [base + 2, base + 3]
    # one seed per job: shard I/N runs seed base + I - 1
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--simnet-seed", "7",
                                "--simnet-shard", "3/4")
    assert _plugin_seeds(result) == [9]


@pytest.mark.parametrize("value", ["0/3", "4/3", "x", "1/"])
def test_plugin_bad_shard_is_a_usage_error_naming_the_option(pytester, value):
    pytester.makepyfile(SEED_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "--simnet-shard", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "argument --simnet-shard: shard must be I/N" in result.stderr.str()


# -- bad scheduler values ---------------------------------------------------------------

@pytest.mark.parametrize("scheduler", ["127.0.0.1:8786", "tcp://", 8786])
def test_bad_scheduler_address_is_a_valueerror_naming_it(scheduler, tmp_path):
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="scheduler must be a Dask scheduler address"):
        explore(BUGGY, seeds=10, scheduler=scheduler, trace_dir=str(tmp_path))


def test_unreachable_scheduler_is_one_line_and_exit_2(monkeypatch, tmp_path):
    pytest.importorskip("distributed")
    import socket

    import simnet.distributed

    monkeypatch.setattr(simnet.distributed, "CONNECT_TIMEOUT", 1)
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        address = "tcp://127.0.0.1:%d" % s.getsockname()[1]
        result = CliRunner().invoke(cli, ["explore", BUGGY, "--seeds", "10",
                                          "--scheduler", address, "--trace-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(
        f"simnet explore: error: --scheduler: cannot reach the Dask scheduler at {address}: ")


def test_jobs_with_a_scheduler_is_refused():
    pytest.importorskip("distributed")
    result = CliRunner().invoke(cli, ["explore", BUGGY, "-j", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "-j/--jobs is for local runs" in result.output


# -- a real cluster -----------------------------------------------------------------------

def _dask(*args):
    script = Path(sys.executable).with_name("dask")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "dask"]
    return head + list(args)


class Cluster:
    """A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.gate = base / "gate"
        self.gate.mkdir()
        self.procs: list[subprocess.Popen] = []
        self.address = ""

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.base / f"{name}.log", "wb")
        proc = subprocess.Popen(args, cwd=self.base, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT,
                                env=_env(SIMNET_TEST_GATE=str(self.gate), DASK_CONFIG=str(self.base)))
        log.close()
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        info = self.base / "scheduler.json"
        scheduler = self._spawn("scheduler", _dask("scheduler", "--host", "127.0.0.1", "--port", "0",
                                                   "--no-dashboard", "--scheduler-file", str(info)))
        _wait_for(lambda: info.exists() and info.stat().st_size > 0, "the scheduler file", [scheduler])
        self.address = json.loads(info.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:")
        for i in range(2):
            self._spawn(f"worker{i}", _dask("worker", self.address, "--host", "127.0.0.1",
                                            "--nthreads", "1", "--no-dashboard", "--name", f"w{i}",
                                            "--local-directory", str(self.base / f"w{i}")))
        with self.client() as client:
            client.wait_for_workers(2, timeout=LIMIT)

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=LIMIT, set_as_default=False)

    def simnet_tasks(self) -> list[str]:
        """The explore tasks the scheduler still holds, from any run."""
        with self.client() as client:
            return client.run_on_scheduler(
                lambda dask_scheduler: sorted(str(k) for k in dask_scheduler.tasks
                                              if "simnet-explore" in str(k)))

    def shrinks(self) -> set[str]:
        """The shrink tasks the scheduler has seen finish, from any run."""
        with self.client() as client:
            return set(client.run_on_scheduler(lambda dask_scheduler: sorted(
                {str(entry[0]) for entry in dask_scheduler.transition_log
                 if "simnet-explore-shrink" in str(entry[0]) and entry[2] == "memory"})))

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.base.glob("*.log")))

    def kill(self) -> None:
        """The watchdog's last resort: a hung test gets a dead cluster, and fails."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("distributed", reason="the cluster tests need simnet[distributed]")
    import threading

    c = Cluster(tmp_path_factory.mktemp("dask"))
    watchdog = threading.Timer(WATCHDOG, c.kill)  # bounds the module's time on the cluster
    watchdog.daemon = True
    watchdog.start()
    try:
        c.start()
        yield c
    finally:
        watchdog.cancel()
        c.stop()


def _simnet(*args, timeout=LIMIT):
    return subprocess.run([sys.executable, "-m", "simnet", *args], capture_output=True, text=True,
                          env=_env(), cwd=ROOT, timeout=timeout)


def test_explore_through_two_workers_equals_a_local_run(cluster, tmp_path):
    local = _local_run(BUGGY, 60, tmp_path / "local")
    shrinks_before = cluster.shrinks()
    seen = []
    remote = explore(BUGGY, seeds=60, trace_dir=str(tmp_path / "remote"), scheduler=cluster.address,
                     progress=lambda *args: seen.append(args))
    assert _summary(remote) == local
    assert remote[0].plan.to_list() == [{"fault": "partial_send", "max_bytes": 1}]
    assert _files(tmp_path / "remote") == _files(tmp_path / "local")  # every trace, byte for byte
    assert len(_files(tmp_path / "local")) == 3  # the shrunk run and two as found
    # progress: once per task, in runs done out of the total, with failures so far
    assert len(seen) == len(chunks(60)) and seen[-1] == (60, 60, 1)
    # the distinct failure was shrunk on a worker: one shrink task ran on the cluster
    assert len(cluster.shrinks() - shrinks_before) == 1
    _wait_for(lambda: cluster.simnet_tasks() == [], "nothing left behind on the scheduler")


def test_chunks_run_on_both_workers_and_the_result_does_not_depend_on_it(cluster, tmp_path):
    name = "cluster_scenarios:where"
    local = _local_run(name, 80, tmp_path / "local")
    remote = explore(name, seeds=80, trace_dir=str(tmp_path / "remote"), scheduler=cluster.address)
    ran = {p.name for p in cluster.gate.glob("ran.*")}
    assert len(ran) == 2, ran  # both worker processes ran chunks (the caller never did: no gate)
    assert _summary(remote) == local
    assert _files(tmp_path / "remote") == _files(tmp_path / "local")


def _simnet_on_a_terminal(*args):
    """Run simnet with its stderr on a pseudo-terminal (so the progress bar
    draws); return (exit status, stdout, what the terminal showed)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "simnet", *args], stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL, env=_env(), cwd=ROOT)
    os.close(slave)
    shown = b""
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
        out = proc.stdout.read().decode()
        proc.wait(timeout=LIMIT)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, shown.decode(errors="replace")


def test_explore_command_with_scheduler_prints_what_a_local_run_prints(cluster, tmp_path):
    local = _simnet("explore", BUGGY, "--seeds", "30", "--trace-dir", str(tmp_path / "local"))
    code, out, terminal = _simnet_on_a_terminal("explore", BUGGY, "--seeds", "30", "--trace-dir",
                                                str(tmp_path / "remote"), "--scheduler", cluster.address)
    assert local.returncode == code == 1, terminal
    assert out.replace(str(tmp_path / "remote"), "DIR") == local.stdout.replace(str(tmp_path / "local"), "DIR")
    assert "1 distinct failure(s) in 30 runs" in out
    # progress on the caller's terminal: tasks done of the total, failures so far
    n = len(chunks(30))
    assert f"exploring on {cluster.address} (1 failure, {n}/{n} tasks)" in terminal, terminal
    assert "30/30" in terminal
    assert _files(tmp_path / "remote") == _files(tmp_path / "local")
    # and a trace that came back from a worker replays
    replay = _simnet("replay", str(tmp_path / "remote" / "failure-1.jsonl"))
    assert replay.returncode == 0 and replay.stdout.startswith("identical"), replay.stdout


def test_a_scenario_the_workers_cannot_import_is_one_line_naming_it(cluster, tmp_path, monkeypatch):
    (tmp_path / "only_here.py").write_text("from simnet.examples.buggy import scenario\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # importable here, not on the workers
    with pytest.raises(ValueError, match=r"^on a Dask worker: cannot import scenario module 'only_here'"):
        explore("only_here:scenario", seeds=20, scheduler=cluster.address, trace_dir=str(tmp_path / "t"))
    _wait_for(lambda: cluster.simnet_tasks() == [], "the scheduler to drop the failed run")


def test_stop_cancels_the_remaining_tasks_of_a_users_client(cluster, tmp_path):
    with cluster.client() as client:
        found = explore(BUGGY, seeds=500, stop=True, scheduler=client, trace_dir=str(tmp_path))
        assert len(found) == 1 and found[0].count < 50
        assert client.status == "running"  # the user's client is left open
        _wait_for(lambda: cluster.simnet_tasks() == [], "the scheduler to drop the cancelled tasks")


def test_ctrl_c_cancels_the_remaining_tasks(cluster, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "simnet", "explore", "cluster_scenarios:held_per_worker",
                             "--seeds", "300", "--scheduler", cluster.address,
                             "--trace-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        # both workers are busy with their first chunk, the other chunks wait on the scheduler
        _wait_for(lambda: len(list(cluster.gate.glob("held.*.pid"))) == 2, "both workers held", [proc])
        assert len(cluster.simnet_tasks()) == len(chunks(300)) > 2
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=LIMIT)
    finally:
        (cluster.gate / "release").touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1 and "Aborted!" in err, err
    assert "Traceback" not in err
    _wait_for(lambda: cluster.simnet_tasks() == [], "the scheduler to drop the cancelled tasks")


def test_a_worker_killed_mid_task_has_its_chunk_rerun(cluster, tmp_path):
    name = "cluster_scenarios:killed_once"
    proc = subprocess.Popen([sys.executable, "-m", "simnet", "explore", name, "--seeds", "40",
                             "--scheduler", cluster.address, "--trace-dir", str(tmp_path / "remote")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        flag = cluster.gate / "killed_once.pid"
        _wait_for(flag.exists, "a worker to start the held chunk", [proc])
        pid = int(flag.read_text())
        assert pid != proc.pid
        os.kill(pid, signal.SIGKILL)  # the worker process, mid-task
        out, err = proc.communicate(timeout=LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err + cluster.logs()
    local = _simnet("explore", name, "--seeds", "40", "--trace-dir", str(tmp_path / "local"))
    # all 40 seeds ran -- the killed chunk's too, on another worker -- with the local result
    assert f"in 40 runs of {name}" in out
    assert out.replace(str(tmp_path / "remote"), "DIR") == local.stdout.replace(str(tmp_path / "local"), "DIR")
    assert _files(tmp_path / "remote") == _files(tmp_path / "local")
