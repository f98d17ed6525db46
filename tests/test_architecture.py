"""The import boundaries of STYLE.md, and every console script's help."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(BIN))
    assert lint_imports is not None, "import-linter is a dev dependency"
    done = subprocess.run(
        [lint_imports], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.lower().replace("0 broken", "")


@pytest.mark.parametrize(
    "script", ["relance-node", "relance-wallet", "relance-audit", "relance-bench"]
)
def test_every_console_script_has_help(script: str) -> None:
    path = shutil.which(script, path=str(BIN))
    assert path is not None, f"{script} is not installed"
    done = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    assert "Commands:" in done.stdout
