"""Account key rotation on a devnet of four validator processes (``rotate_key``, kind 23).

Namur's wallet creates a campaign with Namur's key. Validator 0 proposes moving Namur's
signing key to a new key four blocks ahead (``relance-node governance
propose-key-rotation``, as in docs/operating.md), validators 1 and 2 approve, validator
0 submits. From the height on, every node refuses Namur's old key and the wallet,
signing with the new key, creates a campaign that is Namur's; ``relance-wallet verify
signing-key`` proves the new key against the genesis file alone; the audit of the
chain passes. Cost: about 15 s on two idle cores (``slow``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pytest
from click.testing import CliRunner

from node.protocol.crypto import Signer, digest
from node.run import config
from node.run.cli import main as node_cli
from tests.node.netutil import get_json
from tests.wallet.support import Cli, cli_env
from tools.audit.chain import Auditor
from tools.audit.sources import DataDirSource
from tools.faults.cluster import Cluster, ClusterSpec

WAIT_S: Final = 120.0


def _governance(*args: str) -> str:
    done = CliRunner().invoke(node_cli, ["governance", *args])
    assert done.exit_code == 0, done.output
    return done.output


def _campaign(key: str, code: str, zone: str) -> list[str]:
    return ["issuer", "create-campaign", "--key", key, code, "--name", "Chèques relance",
            "--zone", zone, "--until", "+30d", "--max-per-holder", "50", "--yes"]  # fmt: skip


def _verified(wallet: Cli, genesis_file: str, account: str) -> dict[str, object]:
    done = wallet.ok("--json", "verify", "signing-key", "--genesis", genesis_file, account)
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


@pytest.mark.slow
def test_governance_moves_an_issuer_s_key_and_the_wallet_signs_with_the_new_one(
    tmp_path: Path,
) -> None:
    spec = ClusterSpec(validators=4, journal=False)
    with Cluster.create(tmp_path / "net", spec) as cluster:
        cluster.start()
        cluster.wait_heights(range(4), 2, WAIT_S)
        old, new = cluster.keys["issuer0"], Signer(digest(b"rotation-test:namur-next"))
        zone = cluster.genesis.issuers[0].zones[0]
        homes = [str(node.home) for node in cluster.nodes]
        wallet = Cli(cli_env(tmp_path / "wallet", cluster.url(1)))
        wallet.ok("key", "import", "namur", "--seed-hex", old.seed.hex())
        wallet.ok("key", "import", "namur-next", "--seed-hex", new.seed.hex())
        wallet.ok(*_campaign("namur", "ROT-OLD", zone))

        proposal = str(tmp_path / "rotate.json")
        _governance("propose-key-rotation", "--home", homes[0], "--account",
                    old.public_key.hex(), "--new-key", new.public_key.hex(),
                    "--in-blocks", "4", "--out", proposal)  # fmt: skip
        for home in homes[1:3]:
            _governance("approve", "--home", home, proposal, "--yes")
        _governance("submit", "--home", homes[0], proposal)
        at = int(json.loads(Path(proposal).read_text(encoding="utf-8"))["height"])
        moved = get_json(f"{cluster.url(2)}/v1/accounts/{new.public_key.hex()}")
        assert (moved["signs_for"], moved["role"]) == (old.public_key.hex(), "issuer")

        cluster.wait_heights(range(4), at, WAIT_S)
        refused = wallet(*_campaign("namur", "ROT-REFUSED", zone))
        assert refused.exit_code != 0
        assert "KEY_ROTATED" in refused.output or "no longer signs" in refused.output
        wallet.ok(*_campaign("namur-next", "ROT-NEW", zone))
        # The light client, trusting the genesis file only: the proven signing key.
        genesis_file = str(cluster.nodes[0].home / config.GENESIS_FILE)
        proven = _verified(wallet, genesis_file, old.public_key.hex())
        assert (proven["verified"], proven["moved"]) == (True, True)
        assert (proven["signing_key"], proven["from_height"]) == (new.public_key.hex(), at)
        assert proven["previous_key"] == old.public_key.hex()
        bank = cluster.keys["bank"].public_key.hex()
        unmoved = _verified(wallet, genesis_file, bank)
        assert (unmoved["moved"], unmoved["signing_key"]) == (False, bank)
        for index in range(4):
            made = get_json(f"{cluster.url(index)}/v1/campaigns/ROT-NEW")
            assert made["issuer"] == old.public_key.hex()  # Namur's, signed by the new key
        top = cluster.top()
        cluster.wait_heights(range(4), top, WAIT_S)
        hashes = {str(get_json(f"{cluster.url(i)}/v1/blocks/{top}")["hash"]) for i in range(4)}
        assert len(hashes) == 1
        assert cluster.procs.crashed() == []

    data = cluster.nodes[0].home / config.DATA_DIR
    source = DataDirSource(data, cluster.genesis.genesis_hash)
    try:
        audited = Auditor(cluster.genesis, source, source).run()
        assert audited.ok, audited.divergence
        assert audited.heights_checked >= top and audited.stored_state_checked
    finally:
        source.close()
