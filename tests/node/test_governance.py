"""Governance on a real devnet, driven by ``relance-node governance`` as operators do
(propose on one home, approve on others, submit): a commune is admitted; more than 2/3
of the validators sign a validator change (too few approvals are refused); it takes
effect at the height it names; certificates after it are checked against the new set
by validators and by a syncing observer; a removed validator can be stopped without
stopping the chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.devnet.network import DevnetNode, Supervisor
from node.protocol.crypto import Signer, digest
from node.run.cli import main
from tests.node.conftest import node_height
from tests.node.netutil import eventually, get_json


def _node_key(node: DevnetNode) -> Signer:
    return Signer(bytes.fromhex((node.home / "node_key").read_text(encoding="ascii").strip()))


def key_of(name: str) -> str:
    return Signer(digest(name.encode())).public_key.hex()


def _validator_keys(node: DevnetNode) -> set[str]:
    validators = get_json(node.api_url + "/v1/status")["validators"]
    assert isinstance(validators, list)
    return {str(v["public_key"]) for v in validators}


def _governance(*args: str) -> str:
    """``relance-node governance ...`` as an operator runs it; its output."""
    result = CliRunner().invoke(main, ["governance", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_a_validator_change_takes_effect_at_its_height(
    devnet: tuple[list[DevnetNode], Supervisor], tmp_path: Path
) -> None:
    nodes, supervisor = devnet
    keys = [_node_key(n) for n in nodes]
    eventually(lambda: node_height(nodes[0]) >= 2 or None, 60, "first blocks")

    # A commune is admitted: proposed by validator 0, approved by 1 and 2 on their own
    # homes, submitted by 2. Three approvals of four are more than 2/3.
    dinant = key_of("dinant")
    admit = tmp_path / "admit.json"
    _governance("propose-issuer", "--home", str(nodes[0].home), "--issuer", dinant,
                "--name", "Ville de Dinant", "--territory", "Dinant", "--zone", "DIN-1",
                "--out", str(admit))  # fmt: skip
    for node in nodes[1:3]:
        _governance("approve", "--yes", "--home", str(node.home), str(admit))
    assert "approvals: 3" in _governance("show", str(admit))
    assert "in block" in _governance("submit", "--home", str(nodes[2].home), str(admit))
    account = get_json(f"{nodes[3].api_url}/v1/accounts/{dinant}")
    assert account["role"] == "issuer" and account["name"] == "Ville de Dinant"

    # Replace validator 3 by the observer (node 4), effective six blocks from now.
    change = tmp_path / "change.json"
    members = [f"--validator={n.name},commune,{k.public_key.hex()},1"
               for k, n in zip(keys, nodes, strict=True) if k is not keys[3]]  # fmt: skip
    _governance("propose-validators", "--home", str(nodes[0].home), "--in-blocks", "6",
                *members, "--out", str(change))  # fmt: skip
    effective = json.loads(change.read_text(encoding="utf-8"))["effective_height"]
    # Too few approvals yet (one of four): the ledger refuses, with its code.
    early = CliRunner().invoke(main, ["governance", "submit", "--home", str(nodes[0].home),
                                      str(change)])  # fmt: skip
    assert early.exit_code == 1 and "INSUFFICIENT_APPROVALS" in early.output
    for node in nodes[1:3]:
        _governance("approve", "--yes", "--home", str(node.home), str(change))
    # The node key's own sequence counter: validator 0 has not sent anything yet.
    assert "in block" in _governance("submit", "--home", str(nodes[0].home), str(change))

    before = _validator_keys(nodes[0])
    assert keys[3].public_key.hex() in before
    eventually(lambda: node_height(nodes[0]) >= effective + 2 or None, 90, "the change height")
    after = _validator_keys(nodes[0])
    assert keys[3].public_key.hex() not in after
    assert keys[4].public_key.hex() in after

    # The removed validator can go; the new set (0, 1, 2 and the former observer) goes on.
    supervisor.stop_one(3)
    base = node_height(nodes[0])
    eventually(lambda: node_height(nodes[0]) >= base + 3 or None, 90, "progress with the new set")
    eventually(lambda: node_height(nodes[4]) >= base + 3 or None, 90, "the new validator follows")

    # With validator 2 stopped too, only 0, 1 and the former observer remain: 3 of 4
    # is a quorum only if the former observer now votes.
    supervisor.stop_one(2)
    base = node_height(nodes[0])
    eventually(
        lambda: node_height(nodes[0]) >= base + 3 or None, 90, "progress needs node 4's votes"
    )
    supervisor.restart_one(2)

    # Everyone still agrees, across the change.
    eventually(lambda: node_height(nodes[2]) >= base + 3 or None, 90, "validator 2 catches up")
    top = min(node_height(n) for i, n in enumerate(nodes) if i != 3)
    for height in range(1, top + 1):
        seen = {
            get_json(f"{n.api_url}/v1/blocks/{height}")["hash"]
            for i, n in enumerate(nodes)
            if i != 3
        }
        assert len(seen) == 1, f"disagreement at height {height}"
