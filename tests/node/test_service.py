"""The systemd unit: ``systemd-analyze verify`` accepts it, it is hardened, and its command
starts a node that stops cleanly on the unit's stop signal within its stop timeout."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from node.app.upgrades import HALT_EXIT_CODE
from node.run.config import Timeouts
from tests.node.netutil import eventually, free_base_port, get_json

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "configs" / "systemd" / "relance-node.service"
ENV_FILE = ROOT / "configs" / "systemd" / "relance-node.env"
INSTALLED_BIN = "/opt/relance/venv/bin/relance-node"
INSTALLED_ENV = "/etc/relance/relance-node.env"
BIN = Path(sys.executable).parent / "relance-node"


def _settings(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit or environment file, values in order."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def _local_copy(tmp_path: Path) -> Path:
    """The unit as installed here: the venv's relance-node and a copy of the env file."""
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_BIN in text and INSTALLED_ENV in text
    shutil.copy(ENV_FILE, tmp_path / "relance-node.env")
    local = tmp_path / "relance-node.service"
    local.write_text(
        text.replace(INSTALLED_BIN, str(BIN)).replace(INSTALLED_ENV, str(tmp_path / ENV_FILE.name)),
        encoding="utf-8",
    )
    return local


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is installed by 'make test' (Debian's systemd)"
    return subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )


def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    done = _verify(_local_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == ""
    broken = tmp_path / "relance-node.service"
    broken.write_text(broken.read_text().replace(str(BIN), str(tmp_path / "nothing")))
    assert _verify(broken).returncode != 0, "verify checks the command it starts"


def test_the_unit_is_hardened() -> None:
    unit = _settings(UNIT.read_text(encoding="utf-8"))
    one = {key: values[-1] for key, values in unit.items()}
    assert one["User"] == one["Group"] == "relance"
    assert one["StateDirectory"] == "relance" and one["ReadWritePaths"] == "/var/lib/relance"
    assert one["ProtectSystem"] == "strict" and one["ProtectHome"] == "yes"
    for flag in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "RestrictSUIDSGID"):
        assert one[flag] == "yes", flag
    assert one["CapabilityBoundingSet"] == "" and one["AmbientCapabilities"] == ""
    # Not restarted: a broken home (2), an upgrade this release does not know (4).
    assert one["Restart"] == "on-failure" and one["RestartPreventExitStatus"] == "2 4"
    assert str(HALT_EXIT_CODE) in one["RestartPreventExitStatus"].split()
    assert 1 <= int(one["RestartSec"].removesuffix("s")) <= 30
    assert one["KillSignal"] == "SIGTERM" and one["KillMode"] == "mixed"
    t = Timeouts()
    a_round_s = (t.propose_ms + t.prevote_ms + t.precommit_ms + t.commit_ms) / 1000
    assert int(one["TimeoutStopSec"].removesuffix("s")) >= 10 * a_round_s
    hooks = {"RELANCE_TEST_BYZANTINE", "RELANCE_TEST_JOURNAL", "RELANCE_TEST_SETTLEMENT_CRASH"}
    assert hooks <= set(one["UnsetEnvironment"].split())
    assert not hooks & set(_settings(ENV_FILE.read_text(encoding="utf-8")))


@pytest.mark.slow
def test_the_units_command_runs_a_node_that_stops_cleanly_on_its_kill_signal(
    tmp_path: Path,
) -> None:
    unit = _settings(_local_copy(tmp_path).read_text(encoding="utf-8"))
    env = {k: v[-1] for k, v in _settings(ENV_FILE.read_text(encoding="utf-8")).items()}
    home = tmp_path / "home"
    env["RELANCE_HOME"] = str(home)  # the env file's /var/lib/relance/home, here
    base = free_base_port(2)
    init = [str(BIN), "init", "--home", str(home), "--p2p-port", str(base)]
    init += ["--api-port", str(base + 1)]
    assert subprocess.run(init, capture_output=True, timeout=60, check=False).returncode == 0
    command = [
        word.replace("${RELANCE_HOME}", env["RELANCE_HOME"]).replace(
            "${RELANCE_LOG_FORMAT}", env["RELANCE_LOG_FORMAT"]
        )
        for word in shlex.split(unit["ExecStart"][-1])
    ]
    assert "$" not in " ".join(command), "the env file sets every variable ExecStart uses"
    stop_s = int(unit["TimeoutStopSec"][-1].removesuffix("s"))
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_TEST_")}
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env
    )
    try:
        eventually(
            lambda: get_json(f"http://127.0.0.1:{base + 1}/v1/status")["height"] or None,
            60,
            "a block",
        )
        process.send_signal(getattr(signal, unit["KillSignal"][-1]))
        _, err = process.communicate(timeout=stop_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0, err.decode()
    lines = [json.loads(line) for line in err.decode().splitlines()]  # the env file: json
    assert any("stopped at height" in line["message"] for line in lines), lines
