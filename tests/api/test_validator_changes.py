"""Proofs across validator changes: ``/v1/validators`` lists every set since genesis
with the certified header that handed over to it, the light client follows them from
the genesis file alone, and ``relance-wallet verify`` checks answers given after the
changes. A node that hides a change, or shows a set the certified headers do not name,
is caught.

The chain here: the genesis validator alone; then A, B and C (approved by it); then
B, C and D (approved by A, B and C). Alice pays after the second change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.client.lightclient import (
    CertifiedHeader,
    Handover,
    NodeLied,
    follow_validator_changes,
    verify_holder,
)
from node.consensus.types import Certificate, Header, ValidatorSet
from node.ledger import tx as t
from node.protocol.crypto import Signer
from node.protocol.genesis import render
from node.protocol.state_tree import StateProof, decode_proof
from tests.api.harness import VALIDATOR, Account, LiveNode, key
from tests.api.world import CAMPAIGN, World, seed
from tools.audit.history import certify
from wallets.cli import main

A, B, C, D = (key(f"validator-{name}") for name in "abcd")


@dataclass
class Changed:
    world: World
    firsts: tuple[int, int]  # the first heights of the second and third sets
    genesis_file: Path

    @property
    def node(self) -> LiveNode:
        return self.world.node


def _change(node: LiveNode, sender: Account, approvers: list[Signer], new: list[Signer]) -> int:
    """Commit a change to ``new`` (power 1 each); its first height."""
    chain = node.genesis.chain_id
    entries = tuple(
        t.ValidatorEntry(s.public_key, 1, f"v{i}", "commune") for i, s in enumerate(new)
    )
    effective = node.run(lambda: node.ledger.last_block().height) + 1 + 2
    unsigned = t.ChangeValidators(entries, effective, ())
    approvals = tuple(t.approve(unsigned, s, chain) for s in approvers)
    node.commit(sender.sign(chain, replace(unsigned, approvals=approvals)))
    while node.run(lambda: node.ledger.last_block().height) < effective:
        node.run(node.make_block)
    return effective


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Changed]:
    root = Path(tmp_path_factory.mktemp("validator-changes"))
    node = LiveNode(root)
    try:
        world = seed(node)
        node.signers.update({s.public_key: s for s in (A, B, C, D)})
        first = _change(node, Account(VALIDATOR), [VALIDATOR], [A, B, C])
        second = _change(node, Account(A), [A, B, C], [B, C, D])
        chain = node.genesis.chain_id
        node.commit(world.alice.sign(chain, t.Pay(CAMPAIGN, world.bakery.pk, 66, "after")))
        genesis_file = root / "genesis.toml"
        genesis_file.write_text(render(node.genesis), encoding="utf-8")
        yield Changed(world, (first, second), genesis_file)
    finally:
        node.close()


def _eras(node: LiveNode, limit: int = 100) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = ""
    while True:
        page = node.get(f"/v1/validators?limit={limit}{cursor}").json()
        items += page["items"]  # type: ignore[arg-type]
        if page["next_cursor"] is None:
            return items
        cursor = f"&cursor={page['next_cursor']}"


def _handovers(eras: list[dict[str, object]]) -> list[Handover]:
    out = []
    for era in eras[1:]:
        before = era["handover"]
        assert isinstance(before, dict)
        out.append(
            Handover(
                int(era["first_height"]),  # type: ignore[call-overload]
                ValidatorSet.decode(bytes.fromhex(str(era["validator_set_bytes"]))),
                CertifiedHeader(
                    Header.decode(bytes.fromhex(before["header_bytes"])),
                    Certificate.decode(bytes.fromhex(before["certificate_bytes"])),
                ),
            )
        )
    return out


def _alice_proven(changed: Changed) -> tuple[CertifiedHeader, bytes, StateProof]:
    """Alice's holder record as the node proves it: anchor, value and proof."""
    doc = changed.node.get(f"/v1/proofs/accounts/{changed.world.alice.pk.hex()}").json()
    anchor = doc["anchor"]
    assert isinstance(anchor, dict)
    certified = CertifiedHeader(
        Header.decode(bytes.fromhex(anchor["header_bytes"])),
        Certificate.decode(bytes.fromhex(anchor["certificate_bytes"])),
    )
    value = bytes.fromhex(str(doc["value"]))
    return certified, value, decode_proof(bytes.fromhex(str(doc["proof"])))


def _keys(validators: ValidatorSet) -> set[bytes]:
    return {v.public_key for v in validators.validators}


def test_the_node_lists_every_set_with_its_handover(changed: Changed) -> None:
    eras = _eras(changed.node)
    assert [e["first_height"] for e in eras] == [1, *changed.firsts]
    assert "handover" not in eras[0]  # the genesis set: none
    for era in eras[1:]:
        handover = era["handover"]
        assert isinstance(handover, dict)
        assert handover["height"] == int(era["first_height"]) - 1  # type: ignore[call-overload]
    sets = [ValidatorSet.decode(bytes.fromhex(str(e["validator_set_bytes"]))) for e in eras]
    assert [_keys(s) for s in sets] == [
        {VALIDATOR.public_key},
        {A.public_key, B.public_key, C.public_key},
        {B.public_key, C.public_key, D.public_key},
    ]
    # One a page: the cursors walk the same list.
    assert _eras(changed.node, limit=1) == eras


def test_the_light_client_follows_the_changes_from_genesis(changed: Changed) -> None:
    genesis = changed.node.genesis
    at = follow_validator_changes(genesis, _handovers(_eras(changed.node)))
    first, second = changed.firsts
    assert _keys(at(first - 1)) == {VALIDATOR.public_key}
    assert _keys(at(first)) == _keys(at(second - 1)) == {A.public_key, B.public_key, C.public_key}
    assert _keys(at(second)) == _keys(at(second + 50)) == {B.public_key, C.public_key, D.public_key}

    # Alice's balance, proven after both changes: it verifies only with the changes followed.
    anchor, value, proof = _alice_proven(changed)
    assert anchor.header.height > second
    holder = verify_holder(genesis, anchor, changed.world.alice.pk, value, proof, at)
    assert holder.balance(CAMPAIGN) == 3_766 - 66
    with pytest.raises(NodeLied, match="other than the one in force"):
        verify_holder(genesis, anchor, changed.world.alice.pk, value, proof)


def test_a_hidden_change_is_caught(changed: Changed) -> None:
    genesis = changed.node.genesis
    handovers = _handovers(_eras(changed.node))
    anchor, value, proof = _alice_proven(changed)
    at = follow_validator_changes(genesis, handovers[:1])  # the last change hidden
    with pytest.raises(NodeLied, match="validator change hidden"):
        verify_holder(genesis, anchor, changed.world.alice.pk, value, proof, at)


def test_handovers_that_do_not_follow_are_lies(changed: Changed) -> None:
    genesis = changed.node.genesis
    first, second = _handovers(_eras(changed.node))
    other = ValidatorSet(first.validators.validators[:2])  # a set no header names
    cases = {
        "does not name": [first, replace(second, validators=other)],
        "out of order": [first, first],
        "is not the header of height": [
            first,
            replace(second, first_height=second.first_height + 1),
        ],
    }
    for reason, handovers in cases.items():
        with pytest.raises(NodeLied, match=reason):
            follow_validator_changes(genesis, handovers)

    # The incoming set certifying its own handover: not the set in force before it.
    forged = certify(
        genesis.chain_id,
        second.before.header.height,
        0,
        second.before.header.hash(),
        [B, C, D],
    )
    with pytest.raises(NodeLied, match="certificate"):
        follow_validator_changes(
            genesis, [first, replace(second, before=replace(second.before, certificate=forged))]
        )


def test_the_wallet_verifies_after_the_changes(changed: Changed) -> None:
    alice = changed.world.alice.pk.hex()
    result = CliRunner().invoke(
        main,
        [
            "--node",
            changed.node.url,
            "verify",
            "balance",
            "--genesis",
            str(changed.genesis_file),
            alice,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["balances"] == [{"campaign": CAMPAIGN, "cents": 3_766 - 66}]
    assert found["height"] > changed.firsts[1]

    genesis = str(changed.genesis_file)
    result = CliRunner().invoke(
        main, ["--node", changed.node.url, "verify", "campaign", "--genesis", genesis, CAMPAIGN]
    )
    assert result.exit_code == 0, result.output
    assert "VERIFIED against the validators in force" in result.output
    assert f"campaign: {CAMPAIGN}" in result.output


def test_a_node_key_shows_its_own_sequence(changed: Changed) -> None:
    """Governance and evidence count apart from an account's sequence: the tools read it."""
    node = changed.node

    def node_sequence(key: bytes) -> object:
        return node.get(f"/v1/accounts/{key.hex()}").json().get("node_sequence")

    assert node_sequence(VALIDATOR.public_key) == 1  # it sent the first change
    assert node_sequence(A.public_key) == 1  # and A the second
    assert node_sequence(D.public_key) == 0  # a validator that has sent nothing
    assert node_sequence(changed.world.alice.pk) is None  # not a validator
