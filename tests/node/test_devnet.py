"""A real 4-validator devnet on 127.0.0.1: each validator its own process.

Transactions submitted to different nodes are committed by all; every node
holds the same blocks and state roots; a validator stopped with SIGTERM
exits cleanly, the others go on, and after a restart it catches up. A
fifth, non-voting observer node syncs every block (verifying each commit
certificate) and agrees with the validators.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request

import pytest

from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, DevnetNode, Supervisor
from node.ledger import tx as t
from node.protocol.crypto import Signer, digest
from node.protocol.genesis import parse
from tests.node.conftest import node_height
from tests.node.netutil import eventually, get_json, post_json

DAY_MS = 86_400_000


def _committed(node: DevnetNode, tx_id: str) -> bool | None:
    receipt = get_json(f"{node.api_url}/v1/transactions/{tx_id}")
    return True if receipt["status"] == "committed" else None


def _submit(node: DevnetNode, chain: str, who: Signer, seq: int, payload: t.Payload) -> str:
    data = t.Tx(chain, who.public_key, seq, payload).sign(who).encode()
    status, body = post_json(node.api_url + "/v1/transactions?wait=true", {"tx": data.hex()})
    assert status == 200, body
    assert body["height"] is not None, body
    return str(body["tx_id"])


@pytest.mark.slow
def test_four_validators_agree_and_a_restarted_one_catches_up(
    devnet: tuple[list[DevnetNode], Supervisor],
) -> None:
    nodes, supervisor = devnet
    genesis = parse((nodes[0].home / "genesis.toml").read_text(encoding="utf-8"))
    keys = load_keys(nodes[0].home.parent / DEMO_KEYS_FILE)
    chain, issuer, bank = genesis.chain_id, keys["issuer0"], keys["bank"]
    zone = genesis.issuers[0].zones[0]
    shop, holder = Signer(digest(b"shop")), Signer(digest(b"holder"))
    now = genesis.genesis_time_ms

    eventually(lambda: all(node_height(n) >= 2 for n in nodes) or None, 60, "first blocks")
    _submit(nodes[1], chain, issuer, 0, t.RegisterMerchant(
        shop.public_key, "Shop", "47.11", zone, bytes(32), False))  # fmt: skip
    _submit(nodes[2], chain, issuer, 1, t.CreateCampaign(
        "c", "Campaign", (), (), now - DAY_MS, now + DAY_MS, 10_000))  # fmt: skip
    _submit(nodes[3], chain, bank, 0, t.Fund("c", 100_000, "dep-1"))
    _submit(
        nodes[0], chain, issuer, 2, t.Allocate("c", (t.Allocation(holder.public_key, 5_000, zone),))
    )
    pay_id = _submit(nodes[1], chain, holder, 0, t.Pay("c", shop.public_key, 1_234, "bread"))

    for node in nodes:  # every node sees the payment and the balances
        eventually(lambda n=node: _committed(n, pay_id), 30, "tx")
        account = get_json(f"{node.api_url}/v1/accounts/{holder.public_key.hex()}")
        assert account["balances"] == [{"campaign": "c", "cents": 5_000 - 1_234}]

    # SIGTERM one validator: it exits cleanly; the other three keep committing.
    stopped = nodes[3]
    supervisor.stop_one(3)
    assert supervisor.exit_code(3) == 0
    base = node_height(nodes[0])
    eventually(lambda: node_height(nodes[0]) >= base + 3 or None, 60, "progress with 3 of 4")
    # The others' metrics say which validator they lost, and that a quorum is still reachable.
    gone = genesis.validators[3]
    link = (
        f'relance_validator_connected{{key="{gone.public_key.hex()[:16]}",validator="{gone.name}"}}'
    )
    power = eventually(
        lambda: ((m := _samples(nodes[0]))[link] == "0.0" and m) or None, 30, "link to 3 down"
    )
    assert (
        power["relance_voting_power_validators"] == "4.0"
        and power["relance_voting_power_own"] == "1.0"
    )
    assert power["relance_voting_power_reachable"] == "3.0"
    _submit(nodes[0], chain, holder, 1, t.Pay("c", shop.public_key, 100, "coffee"))

    # Restart it: it syncs the blocks it missed and rejoins.
    supervisor.restart_one(3)
    target = node_height(nodes[0])
    eventually(lambda: node_height(stopped) >= target or None, 90, "catch-up after restart")

    eventually(lambda: _samples(nodes[0])["relance_voting_power_reachable"] == "4.0" or None, 30,
               "all 4 reachable again")  # fmt: skip
    observer = nodes[4]
    assert get_json(observer.api_url + "/v1/status")["validator"] is False
    assert _samples(observer)["relance_voting_power_own"] == "0.0"
    eventually(lambda: node_height(observer) >= target or None, 60, "observer sync")

    # Agreement: same block hash and state root at every height on every node.
    top = min(node_height(n) for n in nodes)
    for height in range(1, top + 1):
        seen = {
            (b["hash"], b["state_root"])
            for b in (get_json(f"{n.api_url}/v1/blocks/{height}") for n in nodes)
        }
        assert len(seen) == 1, f"nodes disagree at height {height}: {seen}"

    # A real validator's metrics: promtool accepts them, and they count real work.
    with urllib.request.urlopen(nodes[0].api_url + "/metrics", timeout=10) as response:
        text = response.read()
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is installed by 'make test' (Debian's prometheus)"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    samples = dict(
        line.rsplit(" ", 1) for line in text.decode().splitlines() if not line.startswith("#")
    )
    assert float(samples["relance_peers"]) >= 1
    assert float(samples["relance_signer_state_writes_total"]) > 0
    assert float(samples["relance_p2p_sent_bytes_total"]) > 0
    assert float(samples['relance_transactions_committed_total{kind="pay"}']) >= 2


def _samples(node: DevnetNode) -> dict[str, str]:
    """The node's /metrics samples: series (with labels) to value."""
    with urllib.request.urlopen(node.api_url + "/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    return dict(line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
