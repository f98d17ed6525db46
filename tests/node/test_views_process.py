"""Derived views with real node processes.

1. Every validator's analytics view is made to raise at a chosen height (the
   test entry point ``python -m tools.faults.node``): the chain keeps committing
   on all four nodes at the block interval it had before, the other views keep
   answering, health says degraded naming the view, its routes answer 503
   naming it, and ``relance-node views rebuild`` brings it back on a running node.
2. The production entry point (``relance-node start``) ignores every test
   switch in its environment; the test entry point honours them.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.api.tokens import make_token
from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, write_devnet
from node.run.cli import main as node_cli
from tests.node.netutil import eventually, free_base_port, get_json
from tools.faults.cluster import Cluster, ClusterSpec
from tools.faults.node import (
    ENV_BYZANTINE,
    ENV_JOURNAL,
    ENV_SETTLEMENT_CRASH,
    ENV_VIEW_RAISE,
)

FAIL_AT = 10  # the height at which every node's analytics view raises
AFTER = 10  # blocks watched after it
TTL_MS = 3_600_000


def http(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def block_times(url: str, first: int, last: int) -> list[int]:
    return [int(get_json(f"{url}/v1/blocks/{h}")["time_ms"]) for h in range(first, last + 1)]  # type: ignore[call-overload]


def intervals(times: list[int]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(times)]


def health(url: str) -> dict[str, object]:
    return get_json(url + "/v1/health")


def view_state(url: str, name: str) -> dict[str, object]:
    views: list[dict[str, object]] = health(url)["views"]  # type: ignore[assignment]
    return next(v for v in views if v["name"] == name)


@pytest.mark.slow
def test_a_raising_view_never_slows_the_chain_and_a_rebuild_brings_it_back(
    tmp_path: Path,
) -> None:
    spec = ClusterSpec(
        validators=4,
        seed=11,
        journal=False,
        env={i: {ENV_VIEW_RAISE: f"analytics@{FAIL_AT}"} for i in range(4)},
    )
    with Cluster.create(tmp_path, spec) as cluster:
        cluster.start()
        cluster.wait_heights(range(4), FAIL_AT + AFTER, 240)
        urls = [cluster.url(i) for i in range(4)]

        # The chain went on, at its usual pace: block intervals after the failure
        # against those before it (block times, the consensus clock; same run).
        times = block_times(urls[0], 3, FAIL_AT + AFTER)
        before = intervals(times[: FAIL_AT - 3 + 1])
        after = intervals(times[FAIL_AT - 3 :])
        assert statistics.median(after) <= 1.5 * statistics.median(before), (before, after)
        assert cluster.procs.crashed() == []

        # Every node: degraded, naming the view, stopped just before the block it failed on.
        for url in urls:
            said = health(url)
            assert (said["ok"], said["status"], said["degraded"]) == (
                True,
                "degraded",
                ["analytics"],
            )
            failed = view_state(url, "analytics")
            assert failed["state"] == "failed" and failed["height"] == FAIL_AT - 1
            assert f"at block {FAIL_AT}" in str(failed["error"])
            for other in ("commits", "metrics", "events", "history"):
                assert view_state(url, other)["state"] == "serving"

        keys = load_keys(tmp_path / DEMO_KEYS_FILE)
        issuer, auditor = keys["issuer0"], keys["auditor"]
        chain = cluster.genesis.chain_id

        def token(who: object, index: int) -> str:
            now = time.time_ns() // 1_000_000
            return make_token(who, chain, cluster.node_keys[index], now, TTL_MS)  # type: ignore[arg-type]

        # Its routes answer 503 naming it; the other views' routes answer.
        status, headers, body = http(urls[0] + "/v1/analytics/zones", token(issuer, 0))
        assert status == 503 and headers["Retry-After"] == "5"
        assert headers["Content-Type"].startswith("application/problem+json")
        assert "the analytics view is failed" in json.loads(body)["detail"]
        status, _, body = http(urls[1] + "/v1/transactions?limit=5", token(auditor, 1))
        assert status == 200, body

        # Metrics: the failure counted, the lag growing on a node still failed.
        _, _, metrics = http(urls[1] + "/metrics")
        text = metrics.decode()
        assert 'relance_view_failures_total{view="analytics"} 1.0' in text
        lag = next(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith('relance_view_lag_blocks{view="analytics"}')
        )
        assert lag >= AFTER

        # `views status` shows it; `views rebuild` on the running node brings it back.
        home0 = str(cluster.nodes[0].home)
        shown = subprocess.run(
            [sys.executable, "-m", "node.run.cli", "views", "status", "--home", home0],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert "node running" in shown.stdout and f"at block {FAIL_AT}" in shown.stdout
        rebuilt = subprocess.run(
            [sys.executable, "-m", "node.run.cli", "views", "rebuild", "analytics",
             "--home", home0],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert "analytics: rebuilt, serving" in rebuilt.stdout
        assert health(urls[0])["status"] == "ok"
        status, _, _ = http(urls[0] + "/v1/analytics/zones", token(issuer, 0))
        assert status == 200
        assert health(urls[1])["degraded"] == ["analytics"]  # rebuilt where asked only

        top = cluster.top()
        cluster.wait_heights(range(4), top + 3, 120)
        assert cluster.procs.crashed() == []


# --- the production entry point ignores test switches ------------------------------------------


def _start(home: Path, module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (home / "node.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, "start", "--home", str(home)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def _height(url: str) -> int | None:
    height = get_json(url + "/v1/status")["height"]
    return height if isinstance(height, int) else None


def test_relance_node_start_ignores_every_test_switch(tmp_path: Path) -> None:
    node = write_devnet(tmp_path, 1, free_base_port(2), time.time_ns() // 1_000_000)[0]
    keys = load_keys(tmp_path / DEMO_KEYS_FILE)
    seed = tmp_path / "bank.seed"
    seed.write_text(keys["bank"].seed.hex(), encoding="ascii")
    init = CliRunner().invoke(
        node_cli, ["settlement", "init", "--home", str(node.home), "--bank-key", str(seed)]
    )
    assert init.exit_code == 0, init.output
    journal = tmp_path / "consensus-journal.log"
    switches = {
        ENV_BYZANTINE: "double-prevote,invalid-block:overspend",
        ENV_JOURNAL: str(journal),
        ENV_SETTLEMENT_CRASH: "file-assigned",
        ENV_VIEW_RAISE: "history@2,analytics@2,events@3,commits@3,metrics@2,settlement@2",
    }

    proc = _start(node.home, "node.run.cli", switches)
    try:
        eventually(lambda: (_height(node.api_url) or 0) >= 6 or None, 90, "blocks")
        said = health(node.api_url)
        assert (said["status"], said["degraded"]) == ("ok", [])
        views: list[dict[str, object]] = said["views"]  # type: ignore[assignment]
        assert {v["name"] for v in views} == {
            "commits", "metrics", "events", "history", "analytics", "settlement",
        }  # fmt: skip
        assert all(v["state"] == "serving" and v["failures"] == 0 for v in views)
        assert proc.poll() is None
        last = _height(node.api_url) or 0
    finally:
        assert _stop(proc) == 0
    log = (node.home / "node.log").read_text(encoding="utf-8")
    assert "BYZANTINE" not in log and "made to raise" not in log
    assert not journal.exists()

    # The same switches through the test entry point do take effect (byzantine aside:
    # a lone byzantine validator would only stall its chain).
    at = last + 3
    switches = {ENV_JOURNAL: str(journal), ENV_VIEW_RAISE: f"history@{at}"}
    proc = _start(node.home, "tools.faults.node", switches)
    try:
        eventually(lambda: (_height(node.api_url) or 0) >= at + 2 or None, 90, "blocks")
        eventually(lambda: health(node.api_url)["degraded"] == ["history"] or None, 30, "failed")
    finally:
        assert _stop(proc) == 0
    assert journal.exists() and journal.stat().st_size > 0
