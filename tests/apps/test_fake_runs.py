"""Every program of the suite on the fake network: deterministic (in this
process and in another one, with another hash seed), surviving the fault mix
under many seeds, recorded and replayed with ``simnet.record``/``replay``,
and run through the pytest plugin's ``fake_net`` fixture."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import simnet

from .conftest import Backend, fault_mix, fingerprint, recorded_run

ROOT = Path(__file__).resolve().parents[2]

#: name -> (module, session function, keyword arguments)
SESSIONS: dict[str, tuple[str, str, dict]] = {
    "http-keep-alive": ("test_http", "keep_alive_session", {}),
    "http-urllib": ("test_http", "urllib_session", {}),
    "ftp": ("test_ftp", "ftp_session", {}),
    "ftp-ipv6": ("test_ftp", "ftp_session", {"host": "::1"}),
    "smtp": ("test_smtp", "smtp_session", {}),
    "smtp-any-address": ("test_smtp", "smtp_session", {"bind": ""}),
    "smtp-blocking": ("test_smtp", "smtp_session", {"timeout": None}),
    "kv-socket-keys": ("test_kvstore", "kv_session", {}),
    "kv-busy-poll": ("test_kvstore", "kv_session", {"key_by_socket": False, "timeout": 0.0}),
    "kv-poll": ("test_kvstore", "kv_session", {"key_by_socket": False, "use_poll": True}),
}
#: the seed of the determinism checks, and how many seeds the sweep tries
SEED = 11
SWEEP = 20


def session_of(name: str):
    module, function, kwargs = SESSIONS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), function), kwargs


def fingerprints(names: list[str], seed: int) -> dict[str, str]:
    """The fingerprint of each named session's run with *seed* (used in
    the child process too)."""
    result = {}
    for name in names:
        session, kwargs = session_of(name)
        result[name] = fingerprint(recorded_run(session, seed, **kwargs))
    return result


@pytest.mark.parametrize("name", list(SESSIONS))
def test_same_seed_same_outcome_time_and_trace(name: str) -> None:
    session, kwargs = session_of(name)
    first = recorded_run(session, SEED, **kwargs)
    second = recorded_run(session, SEED, **kwargs)
    assert first[0] == second[0]
    assert first[1] == second[1]
    assert first[2] == second[2]
    assert len(first[2]) > 10  # the run did something


def test_same_seed_same_trace_in_another_process() -> None:
    """A child process with another PYTHONHASHSEED computes the same
    fingerprints: nothing in a run depends on hashing or object ids."""
    here = fingerprints(list(SESSIONS), SEED)
    code = (f"import json, sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]; "
            f"from {__package__}.test_fake_runs import fingerprints; "
            f"print(json.dumps(fingerprints({list(SESSIONS)!r}, {SEED})))")
    env = dict(os.environ, PYTHONHASHSEED="4321" if os.environ.get("PYTHONHASHSEED") != "4321" else "1234")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env=env, cwd=ROOT)
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.strip().splitlines()[-1]) == here


@pytest.mark.parametrize("name", list(SESSIONS))
def test_survives_the_fault_mix_under_many_seeds(name: str) -> None:
    """The fault mix under seeds 1..SWEEP: a correct program survives all."""
    session, kwargs = session_of(name)
    failed = {}
    for seed in range(1, SWEEP + 1):
        outcome, _, _ = recorded_run(session, seed, **kwargs)
        if outcome != "ok":
            failed[seed] = outcome[:200]
    assert failed == {}


# -- record and replay -------------------------------------------------------------
# simnet.record()/replay() take a scenario by its module-level name.

def _scenario(name: str, net) -> None:
    session, kwargs = session_of(name)
    session(Backend("fake-faults", net=net), **kwargs)


def scenario_http_keep_alive(net) -> None:
    _scenario("http-keep-alive", net)


def scenario_ftp(net) -> None:
    _scenario("ftp", net)


def scenario_smtp(net) -> None:
    _scenario("smtp", net)


def scenario_kv_socket_keys(net) -> None:
    _scenario("kv-socket-keys", net)


SCENARIOS = {"http-keep-alive": (scenario_http_keep_alive, 1), "ftp": (scenario_ftp, 1),
             "smtp": (scenario_smtp, 1), "kv-socket-keys": (scenario_kv_socket_keys, 4)}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_recorded_run_replays_event_for_event(name: str, tmp_path: Path) -> None:
    """simnet.record() writes the run (success or failure) to a file;
    simnet.replay() reruns it from the file alone and matches every event
    and the outcome."""
    scenario, client_conn = SCENARIOS[name]
    path = tmp_path / f"{name}.jsonl"
    try:
        events = len(simnet.record(scenario, path, seed=SEED, faults=fault_mix(True, client_conn)).events)
    except Exception:  # a run that fails (today) is recorded too, and must replay alike
        events = None
    result = simnet.replay(path)
    if events is None:
        assert result.failure is not None and result.events > 10
    else:
        assert result.failure is None and result.events == events


# -- the pytest plugin -------------------------------------------------------------

@pytest.mark.simnet(faults=fault_mix())
def test_smtp_session_on_the_plugins_fake_net(fake_net) -> None:
    """What a user of the plugin writes: the ``fake_net`` fixture with the
    fault mix from the marker, and the program's session on it."""
    from .test_smtp import smtp_session

    smtp_session(Backend("fake-faults", net=fake_net))
    assert fake_net.trace is not None and len(fake_net.trace.events) > 100
