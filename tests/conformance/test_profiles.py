"""Op-sequence profiles in the suite: a few sequences each, fake against real.

Every profile of :mod:`.profiles` (tcp, unix-stream, makefile, timeout, udp,
unix-dgram) draws sequences with Hypothesis and requires the fake network's
recording to equal the real kernel's. Few examples here keep the suite fast;
``python -m tests.conformance.run_ops --profile all --examples 5000`` runs
thousands (see that module).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .backends import FakeBackend, RealBackend
from .profiles import PROFILES, diff_lines

SETTINGS = settings(max_examples=15, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", sorted(PROFILES))
@SETTINGS
@given(data=st.data())
def test_profile_fake_matches_real(name, data):
    profile = PROFILES[name]
    ops = data.draw(profile.sequences, label="ops")
    reference = profile.record(RealBackend, ops)
    got = profile.record(FakeBackend, ops)
    assert got == reference, f"profile {name}:\n" + diff_lines(ops, reference, got)


def test_run_ops_cli_reports_counts(capsys):
    from .run_ops import main

    assert main(["--profile", "makefile", "--examples", "3", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("profile makefile: 3 sequences, ")
    assert " 0 diverged, 0 unstable on real (seed 7, " in out


def test_run_ops_cli_rejects_an_unknown_profile(capsys):
    from .run_ops import main

    with pytest.raises(SystemExit) as exc:
        main(["--profile", "nope"])
    assert exc.value.code == 2
    assert "--profile: unknown profile 'nope'" in capsys.readouterr().err
