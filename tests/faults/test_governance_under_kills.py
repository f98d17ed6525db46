"""Issue 4, must show 8: a validator added and another removed during repeated kills.

``tools.faults.governance`` runs it on real processes (4 validators and an
observer, every link through a proxy); the report holds every finding: the
validator set named by each header and the signers of each certificate follow
the governance transaction, and agreement, integrity, conservation, history,
no double sign and the audit hold on every node. ``RELANCE_FAULTS_SEED``
replays another seed (the kill decisions; the processes' timing does not).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.faults.governance import NAME, run_governance

SEED = int(os.environ.get("RELANCE_FAULTS_SEED", "1"))
BOUND_S = 120.0


@pytest.mark.slow
def test_validator_change_under_repeated_kills(tmp_path: Path) -> None:
    report = run_governance(tmp_path, SEED)
    assert report.passed, f"{report.summary()}\nnodes' homes: {tmp_path / NAME}"
    names = {finding.check for finding in report.findings}
    assert {f"validator-sets[node{i}]" for i in range(5)} <= names, report.summary()
    assert report.seconds < BOUND_S, report.summary()
