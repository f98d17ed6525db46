"""Proofs checked the way a client holding only the genesis would: the header's hash, the
commit certificate against the genesis validators, then the Merkle path to the root."""

from __future__ import annotations

from node.client.lightclient import genesis_validator_set
from node.consensus.types import Certificate, Header, ValidatorSet, verify_certificate
from node.ledger import records as r
from node.protocol.merkle import InclusionProof, leaf_hash, tx_leaf, verify_inclusion
from node.protocol.state_tree import decode_proof, verify_state_proof
from tests.api.world import CAMPAIGN, World


def checked_anchor(world: World, anchor: dict[str, object]) -> Header:
    """The anchor's header, after checking it the way an auditor does."""
    genesis = world.node.genesis
    header = Header.decode(bytes.fromhex(str(anchor["header_bytes"])))
    certificate = Certificate.decode(bytes.fromhex(str(anchor["certificate_bytes"])))
    validators = ValidatorSet.decode(bytes.fromhex(str(anchor["validator_set_bytes"])))
    assert validators == genesis_validator_set(genesis)  # trust comes from the genesis file
    assert header.validators_hash == validators.hash()
    assert header.hash().hex() == anchor["block_hash"] == certificate.block_hash.hex()
    assert certificate.height == header.height == anchor["height"]
    assert verify_certificate(certificate, genesis.chain_id, validators)
    assert header.state_root.hex() == anchor["state_root"]
    return header


def test_a_balance_proof_checks_against_a_certified_header(world: World) -> None:
    doc = world.node.get(f"/v1/proofs/accounts/{world.alice.pk.hex()}").json()
    header = checked_anchor(world, doc["anchor"])  # type: ignore[arg-type]
    key, value = bytes.fromhex(str(doc["key"])), bytes.fromhex(str(doc["value"]))
    assert key == r.holder_key(world.alice.pk)
    assert r.Holder.decode(value).balance(CAMPAIGN) == 3_766
    proof = decode_proof(bytes.fromhex(str(doc["proof"])))
    assert verify_state_proof(header.state_root, key, value, proof)
    assert not verify_state_proof(header.state_root, key, value + b"\x00", proof)


def test_campaign_payout_and_absence_proofs(world: World) -> None:
    node = world.node
    campaign = node.get(f"/v1/proofs/campaigns/{CAMPAIGN}").json()
    header = checked_anchor(world, campaign["anchor"])  # type: ignore[arg-type]
    value = bytes.fromhex(str(campaign["value"]))
    assert r.Campaign.decode(value).funded_cents == 1_000_000
    assert campaign["record"]["funded_cents"] == 1_000_000  # type: ignore[index]
    proof = decode_proof(bytes.fromhex(str(campaign["proof"])))
    assert verify_state_proof(header.state_root, r.campaign_key(CAMPAIGN), value, proof)

    payout = node.get(f"/v1/proofs/payouts/{world.bob_payout_id.hex()}").json()
    header = checked_anchor(world, payout["anchor"])  # type: ignore[arg-type]
    value = bytes.fromhex(str(payout["value"]))
    assert r.Payout.decode(value).bank_reference == "VIR-0001"
    proof = decode_proof(bytes.fromhex(str(payout["proof"])))
    assert verify_state_proof(header.state_root, r.payout_key(world.bob_payout_id), value, proof)

    missing = node.get("/v1/proofs/campaigns/never-created").json()
    assert missing["value"] is None and missing["record"] is None
    header = checked_anchor(world, missing["anchor"])  # type: ignore[arg-type]
    proof = decode_proof(bytes.fromhex(str(missing["proof"])))
    assert verify_state_proof(header.state_root, r.campaign_key("never-created"), None, proof)


def test_a_transaction_inclusion_proof(world: World) -> None:
    node = world.node
    path = f"/v1/proofs/transactions/{world.alice_pay_id.hex()}"
    public = node.get(path).json()
    assert "tx" not in public  # the transaction's content stays with its parties
    doc = node.get(path, node.token(world.alice.signer)).json()
    header = checked_anchor(world, doc["anchor"])  # type: ignore[arg-type]
    leaf = tx_leaf(bytes.fromhex(str(doc["tx"])))
    assert leaf_hash(leaf).hex() == doc["leaf_hash"] == public["leaf_hash"]
    siblings = doc["siblings"]
    assert isinstance(siblings, list)
    proof = InclusionProof(
        int(doc["index"]), int(doc["size"]), tuple(bytes.fromhex(s) for s in siblings)
    )  # type: ignore[call-overload]
    assert verify_inclusion(header.tx_root, leaf, proof)
    assert not verify_inclusion(header.tx_root, leaf + b"x", proof)
    assert node.get(f"/v1/proofs/transactions/{'34' * 32}").status == 404
