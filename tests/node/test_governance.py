"""Validator-set governance on a real devnet: more than 2/3 of the validators
sign a change; it takes effect at the height it names; certificates after it
are checked against the new set by validators and by a syncing observer; a
removed validator can be stopped without stopping the chain."""

from __future__ import annotations

from node.crypto import Signer
from node.devnet import DevnetNode, Supervisor
from node.genesis import parse
from node.ledger import tx as t
from tests.node.conftest import node_height
from tests.node.netutil import eventually, get_json, post_json


def _node_key(node: DevnetNode) -> Signer:
    return Signer(bytes.fromhex((node.home / "node_key").read_text(encoding="ascii").strip()))


def _validator_keys(node: DevnetNode) -> set[str]:
    validators = get_json(node.api_url + "/v1/status")["validators"]
    assert isinstance(validators, list)
    return {str(v["public_key"]) for v in validators}


def test_a_validator_change_takes_effect_at_its_height(
    devnet: tuple[list[DevnetNode], Supervisor],
) -> None:
    nodes, supervisor = devnet
    genesis = parse((nodes[0].home / "genesis.toml").read_text(encoding="utf-8"))
    keys = [_node_key(n) for n in nodes]
    eventually(lambda: node_height(nodes[0]) >= 2 or None, 60, "first blocks")

    # Replace validator 3 by the observer (node 4).
    entries = tuple(
        t.ValidatorEntry(k.public_key, 1, n.name, "commune")
        for k, n in zip(keys, nodes, strict=True)
        if k is not keys[3]
    )
    effective = node_height(nodes[0]) + 6
    change = t.ChangeValidators(entries, effective, ())
    approvals = tuple(t.approve(change, k, genesis.chain_id) for k in keys[:3])
    change = t.ChangeValidators(entries, effective, approvals)
    data = t.Tx(genesis.chain_id, keys[0].public_key, 0, change).sign(keys[0]).encode()
    status, body = post_json(nodes[1].api_url + "/v1/transactions?wait=true", {"tx": data.hex()})
    assert status == 200, body

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
