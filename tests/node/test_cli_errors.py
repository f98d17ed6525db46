"""``relance-node`` says clearly what is wrong with a home, a port or a genesis."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from node.run import config
from tests.node.netutil import free_base_port
from wallets.context import DEFAULT_NODE

BIN = Path(sys.executable).parent


def _node(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("relance-node", path=str(BIN))
    assert path is not None
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60, check=False)


def test_start_without_a_home_says_to_run_init(tmp_path: Path) -> None:
    done = _node("start", "--home", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert "relance-node init" in done.stderr


def test_a_home_with_a_broken_config_names_the_problem(tmp_path: Path) -> None:
    assert _node("init", "--home", str(tmp_path / "h")).returncode == 0
    (tmp_path / "h" / "config.toml").write_text("moniker = [", encoding="utf-8")
    done = _node("start", "--home", str(tmp_path / "h"))
    assert done.returncode == 2
    assert "not TOML" in done.stderr


def test_a_home_without_its_key_names_the_file(tmp_path: Path) -> None:
    assert _node("init", "--home", str(tmp_path / "h")).returncode == 0
    (tmp_path / "h" / "node_key").unlink()
    done = _node("start", "--home", str(tmp_path / "h"))
    assert done.returncode == 2
    assert "node_key" in done.stderr


def test_a_genesis_that_does_not_match_the_store_is_refused(tmp_path: Path) -> None:
    assert _node("init", "--home", str(tmp_path / "a")).returncode == 0
    time.sleep(1.1)  # the solo chain id carries the second: make a different genesis
    assert _node("init", "--home", str(tmp_path / "b")).returncode == 0
    shutil.copy(tmp_path / "b" / "genesis.toml", tmp_path / "a" / "genesis.toml")
    done = _node("start", "--home", str(tmp_path / "a"))
    assert done.returncode == 2
    assert "was made for genesis" in done.stderr


def test_a_busy_api_port_is_reported(tmp_path: Path) -> None:
    base = free_base_port(2)
    assert (
        _node(
            "init",
            "--home",
            str(tmp_path / "h"),
            "--p2p-port",
            str(base),
            "--api-port",
            str(base + 1),
        ).returncode
        == 0
    )
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 1))
        squatter.listen()
        done = _node("start", "--home", str(tmp_path / "h"))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{base + 1}" in done.stderr


def test_init_refuses_a_non_empty_home(tmp_path: Path) -> None:
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "x").write_text("x", encoding="utf-8")
    done = _node("init", "--home", str(tmp_path / "h"))
    assert done.returncode == 2
    assert "not empty" in done.stderr


def test_devnet_refuses_a_busy_port(tmp_path: Path) -> None:
    base = free_base_port(8)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 3))
        done = _node(
            "devnet", "--home", str(tmp_path / "n"), "--base-port", str(base), "--no-start"
        )
    assert done.returncode == 2
    assert f"port {base + 3}" in done.stderr


def test_devnet_no_start_writes_homes_and_prints_addresses(tmp_path: Path) -> None:
    base = free_base_port(8)
    done = _node("devnet", "--home", str(tmp_path / "n"), "--base-port", str(base), "--no-start")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("API http://127.0.0.1:") == 4
    for i in range(4):
        assert (tmp_path / "n" / f"node{i}" / "genesis.toml").exists()
        assert (tmp_path / "n" / f"node{i}" / "node_key").stat().st_mode & 0o777 == 0o600


def test_the_wallet_finds_a_node_made_with_the_defaults(tmp_path: Path) -> None:
    """``relance-node init`` then ``start``: the wallet reaches it without --node."""
    assert _node("init", "--home", str(tmp_path / "h")).returncode == 0
    settings = config.parse((tmp_path / "h" / "config.toml").read_text(encoding="utf-8"))
    assert f"http://127.0.0.1:{settings.api_port}" == DEFAULT_NODE
