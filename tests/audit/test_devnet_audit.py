"""The audit of a real 4-validator devnet: demo traffic, one validator stopped and
restarted (it catches up by block sync), then every node stopped and its data
directory audited from the genesis file alone. Every node's history passes,
and they agree block for block.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.devnet import demo as demo_module
from node.devnet.network import DEMO_KEYS_FILE, Supervisor, write_devnet
from node.protocol.genesis import parse
from tests.node.netutil import eventually, free_base_port, get_json
from tools.audit.cli import main

TRANSACTIONS_WANTED = 40


def _height(url: str) -> int:
    height = get_json(url + "/v1/status")["height"]
    assert isinstance(height, int)
    return height


async def _traffic(demo: demo_module.Demo, now_ms: int, supervisor: Supervisor) -> None:
    """Demo traffic until TRANSACTIONS_WANTED are committed; one validator restarts midway."""
    stop = asyncio.Event()
    task = asyncio.create_task(demo_module.run_demo(demo, stop, now_ms))
    restarted = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            done = sum(a.sequence or 0 for a in demo.accounts.values())
            if done >= TRANSACTIONS_WANTED // 2 and not restarted:
                supervisor.stop_one(3)
                supervisor.restart_one(3)
                restarted = True
            if done >= TRANSACTIONS_WANTED and restarted:
                return
            if task.done():
                task.result()
                raise AssertionError("the demo stopped early")
            await asyncio.sleep(0.5)  # real processes: their progress is all there is to wait on
        raise AssertionError("the demo did not commit enough transactions in time")
    finally:
        stop.set()
        await task


@pytest.mark.slow
def test_every_node_s_history_passes_the_audit(tmp_path: Path) -> None:
    now_ms = time.time_ns() // 1_000_000
    nodes = write_devnet(tmp_path / "net", 4, free_base_port(8), now_ms)
    genesis_file = nodes[0].home / "genesis.toml"
    genesis = parse(genesis_file.read_text(encoding="utf-8"))
    supervisor = Supervisor(nodes)
    supervisor.start()
    try:
        for node in nodes:
            eventually(lambda n=node: get_json(n.api_url + "/v1/health"), 30, f"{node.name} up")
        keys = demo_module.load_keys(tmp_path / "net" / DEMO_KEYS_FILE)
        demo = demo_module.Demo(genesis, [n.api_url for n in nodes], keys)
        asyncio.run(_traffic(demo, now_ms, supervisor))
        target = _height(nodes[0].api_url)
        eventually(lambda: _height(nodes[3].api_url) >= target or None, 90, "catch-up")
    finally:
        supervisor.stop()

    runner = CliRunner()
    reports = []
    for node in nodes:
        args = ["verify", "--genesis", str(genesis_file), "--data", str(node.home / "data")]
        result = runner.invoke(main, [*args, "--json", "--quiet"])
        report = json.loads(result.stdout)
        assert result.exit_code == 0, report["divergence"]
        assert report["ok"] and report["stored_state_checked"]
        reports.append(report)
    assert sum(reports[0]["kinds"].values()) >= TRANSACTIONS_WANTED
    assert reports[0]["kinds"].get("pay", 0) > 0

    common = min(r["heights_checked"] for r in reports)
    hashes = set()
    for node in nodes:
        args = ["verify", "--genesis", str(genesis_file), "--data", str(node.home / "data")]
        result = runner.invoke(main, [*args, "--json", "--quiet", "--to-height", str(common)])
        assert result.exit_code == 0
        report = json.loads(result.stdout)
        hashes.add((report["last_block_hash"], report["state_root"]))
    assert len(hashes) == 1, "the nodes' histories differ"
