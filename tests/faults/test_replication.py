"""Issue 3's replication must-shows on real node processes (127.0.0.1 only), each bounded.

Each scenario ends with the fault harness's final checks (agreement of block
hash and state root at every height on every node, integrity, conservation,
every acknowledged transaction exactly once, no double signing, a clean
exit, an audit of every data directory); ``tools.faults.replication`` says
what each adds. Must-show 2 (repeated kills of one validator) is the
``repeated-kills`` scenario in ``test_scenarios.py``.

``RELANCE_FAULTS_SEED`` replays another seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.faults.replication import REPEATED_KILLS, REPLICATION, run_replication
from tools.faults.scenarios import SCENARIOS

SEED = int(os.environ.get("RELANCE_FAULTS_SEED", "1"))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REPLICATION))
def test_replication(name: str, tmp_path: Path) -> None:
    report = run_replication(name, tmp_path, SEED)
    assert report.passed, f"{report.summary()}\nnodes' homes: {tmp_path / name}"
    assert report.seconds < 90, report.summary()


def test_repeated_kills_is_the_fault_scenario() -> None:
    assert REPEATED_KILLS in SCENARIOS
