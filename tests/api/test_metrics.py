"""/metrics: Prometheus text that promtool accepts, named by Prometheus conventions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from node.consensus import types as consensus_types
from node.ledger import tx as t
from tests.api.world import World

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = f"tx{t.VERSION}.block{consensus_types.VERSION}"
EXPECTED = (
    "relance_height",
    "relance_consensus_rounds_bucket",
    "relance_block_interval_seconds_bucket",
    'relance_transactions_committed_total{kind="pay"}',
    "relance_transactions_rejected_total",
    "relance_mempool_transactions",
    "relance_mempool_bytes",
    "relance_peers",
    "relance_p2p_sent_bytes_total",
    "relance_p2p_received_bytes_total",
    'relance_api_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/status"}',
    "relance_api_responses_total",
    "relance_signer_state_writes_total",
)


def test_promtool_accepts_the_metrics_of_a_live_node(world: World) -> None:
    node = world.node
    stale = t.Tx(world.chain, world.alice.pk, 0, t.Pay("x", world.bakery.pk, 1, ""))
    node.post_json("/v1/transactions", {"tx": stale.sign(world.alice.signer).encode().hex()})
    node.get("/v1/status")
    response = node.get("/metrics")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.body.decode()
    for name in EXPECTED:
        assert name in text, name
    assert 'relance_transactions_rejected_total{code="BAD_SEQUENCE"}' in text
    height = node.ledger.last_block().height
    assert f"relance_height {float(height)}" in text
    build = f'relance_build_info{{protocol="{PROTOCOL}",software="{metadata.version("relance")}"}}'
    assert f"{build} 1.0" in text, "relance_build_info names the versions /v1/status reports"
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is installed by 'make test' (Debian's prometheus)"
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=response.body,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_the_grafana_dashboard_uses_only_metrics_the_node_serves(world: World) -> None:
    served = {
        line.split(" ")[2]
        for line in world.node.get("/metrics").body.decode().splitlines()
        if line.startswith("# TYPE ")
    }
    dashboard = json.loads((ROOT / "configs" / "grafana-dashboard.json").read_text())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"relance_[a-z0-9_]+", target["expr"]))
    suffixes = ("_total", "_bucket", "_sum", "_count")
    bases = {next((n[: -len(s)] for s in suffixes if n.endswith(s)), n) for n in used}
    assert bases <= served | {n.removesuffix("_total") for n in served}, bases - served
    assert len(dashboard["panels"]) >= 10
    config = ROOT / "configs" / "prometheus.yml"
    promtool = shutil.which("promtool")
    assert promtool is not None
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
