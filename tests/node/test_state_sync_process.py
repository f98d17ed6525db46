"""State sync on real processes: an observer starts from another node's state.

Four validators run and commit some history (merchants, a campaign, its funding).
A new observer home is synced from validator 0 (``relance-node sync``): the state
of a recent height, checked against the genesis and that height's certified header.
Started, it follows new blocks from there, and its state root at each height
equals the validators'. A source that tampers with one state entry (or claims a
state root of its own) is refused, and the home stays unsynced.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final

import pytest
from click.testing import CliRunner

from node.api.tokens import make_token
from node.ledger import tx as t
from node.protocol.crypto import Signer
from node.run import config, statesync
from node.run.cli import main as node_cli
from node.store.blockstore import BlockStore
from tests.node.netutil import get_json
from tools.faults.cluster import Cluster, ClusterSpec
from tools.faults.governance import submit_waiting

OBSERVER: Final = 4
TTL_MS: Final = 3_600_000
WAIT_S: Final = 120.0


def _history(cluster: Cluster) -> None:
    chain = cluster.genesis.chain_id
    issuer, bank = cluster.keys["issuer0"], cluster.keys["bank"]
    zone = cluster.genesis.issuers[0].zones[0]
    now = time.time_ns() // 1_000_000
    payloads: list[tuple[Signer, int, t.Payload]] = [
        (issuer, 0, t.RegisterMerchant(Signer.generate().public_key, "Boulangerie", "10.71",
                                       zone, bytes(32), False)),
        (issuer, 1, t.RegisterMerchant(Signer.generate().public_key, "Librairie", "47.61",
                                       zone, bytes(32), True)),
        (issuer, 2, t.CreateCampaign("SYNC", "Relance", (zone,), (), now, now + 86_400_000,
                                     50_00)),
        (bank, 0, t.Fund("SYNC", 1_000_00, "DEP-SYNC-1")),
    ]  # fmt: skip
    for who, sequence, payload in payloads:
        data = t.Tx(chain, who.public_key, sequence, payload).sign(who).encode()
        answer = submit_waiting(cluster.url(0), data)
        assert answer.get("accepted") is True, answer


def _problem(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, str(json.load(error).get("detail"))


def _root(cluster: Cluster, index: int, height: int) -> str:
    return str(get_json(f"{cluster.url(index)}/v1/blocks/{height}")["state_root"])


@pytest.mark.slow
def test_an_observer_synced_from_a_node_follows_with_the_same_state(tmp_path: Path) -> None:
    spec = ClusterSpec(validators=4, observers=1, journal=False)
    with Cluster.create(tmp_path / "net", spec) as cluster:
        for index in range(4):
            cluster.procs.start(index)
        cluster.wait_heights(range(4), 2, WAIT_S)
        _history(cluster)
        now = time.time_ns() // 1_000_000
        token = make_token(cluster.keys["auditor"], cluster.genesis.chain_id,
                           cluster.node_keys[0], now, TTL_MS)  # fmt: skip
        home = cluster.nodes[OBSERVER].home

        # A source that changes one entry, or the root it claims, is refused.
        honest = statesync.http_fetch(cluster.url(0), token)

        def tampered(path: str) -> dict[str, object]:
            answer = honest(path)
            if path.startswith("/v1/state/items"):
                items = answer["items"]
                assert isinstance(items, list) and items
                items[-1] = {**items[-1], "value": items[-1]["value"][:-2] + "00"}
            return answer

        def other_root(path: str) -> dict[str, object]:
            answer = honest(path)
            if path.startswith("/v1/state/items"):
                answer["state_root"] = "11" * 32
            return answer

        for liar in (tampered, other_root):
            with pytest.raises(statesync.SyncError, match="does not rebuild the certified"):
                statesync.fetch_state(cluster.genesis, liar)
        sync = ["sync", "--home", str(home), "--from", cluster.url(0), "--token"]
        refused = CliRunner().invoke(node_cli, [*sync, "not-a-token"])
        assert refused.exit_code == 1 and "HTTP 401" in refused.output, refused.output
        store = BlockStore.open(home / config.DATA_DIR, cluster.genesis.genesis_hash, False)
        try:
            assert store.height() == 0
        finally:
            store.close()

        # The honest sync, then the observer follows.
        done = CliRunner().invoke(node_cli, [*sync, token])
        assert done.exit_code == 0, done.output
        synced = int(done.output.split("synced to height ")[1].split()[0])
        assert synced >= 2
        store = BlockStore.open(home / config.DATA_DIR, cluster.genesis.genesis_hash, False)
        try:
            assert (store.height(), store.base_height()) == (synced, synced)
            assert store.block(synced - 1) is None  # nothing before the synced height
        finally:
            store.close()
        cluster.procs.start(OBSERVER)
        top = cluster.top(range(4))
        cluster.wait_heights([OBSERVER], top + 3, WAIT_S)
        for height in (synced, top + 1, top + 3):
            roots = {_root(cluster, i, height) for i in (0, 1, 2, 3, OBSERVER)}
            assert len(roots) == 1, (height, roots)
        assert cluster.procs.crashed() == []

        # Its history starts at the synced height; it runs no analytics (they need every
        # block from genesis), and says so; it says it holds no block before its start.
        health = get_json(cluster.url(OBSERVER) + "/v1/health")
        assert health["degraded"] == [], health
        views = {v["name"]: v for v in health["views"]}  # type: ignore[attr-defined]
        assert "analytics" not in views
        assert views["history"]["state"] == "serving" and views["history"]["height"] > synced
        mine = make_token(cluster.keys["auditor"], cluster.genesis.chain_id,
                          cluster.node_keys[OBSERVER], now, TTL_MS)  # fmt: skip
        issuer = cluster.keys["issuer0"].public_key.hex()
        zones = f"{cluster.url(OBSERVER)}/v1/analytics/zones?issuer={issuer}"
        status, detail = _problem(zones, mine)
        assert status == 503 and "does not run the analytics view" in detail
        status, detail = _problem(f"{cluster.url(OBSERVER)}/v1/blocks/certified?from=1", mine)
        assert status == 404 and f"from the state of height {synced}" in detail
