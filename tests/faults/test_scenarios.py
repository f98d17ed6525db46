"""The fault scenarios of issue 4 on real node processes (127.0.0.1 only), each bounded.

Every scenario ends with the same checks over every node's final state:
agreement (no fork), chain integrity, per-issuer conservation, no acknowledged
transaction lost, at most once per transaction and per (sender, sequence),
refused transactions never applied, no honest validator signing two different
votes for one height/round/step, a clean exit, and a full audit of each
node's data directory from the genesis file alone. ``tools.faults.scenarios``
says what each scenario adds; a failure prints the whole report and where
the nodes' logs and journals are.

``RELANCE_FAULTS_SEED`` replays another seed (the fault decisions and the
workload replay; the processes' timing does not).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tools.faults.__main__ import main
from tools.faults.scenarios import SCENARIOS, run_scenario

SEED = int(os.environ.get("RELANCE_FAULTS_SEED", "1"))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str, tmp_path: Path) -> None:
    report = run_scenario(name, tmp_path, SEED)
    assert report.passed, f"{report.summary()}\nnodes' homes: {tmp_path / name}"
    assert report.seconds < 120, report.summary()


def test_the_cli_lists_every_scenario() -> None:
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0
    assert all(name in result.output for name in SCENARIOS)
