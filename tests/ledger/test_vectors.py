"""Golden vectors: the files in ``tests/vectors/`` are what the code produces, byte for byte.

Two independent checks for each file: the generator (``tools.make_vectors``)
reproduces it exactly, and this module re-derives its content through the
test ``World`` (its own genesis and keys) and the public ledger API.

``RELANCE_WRITE_VECTORS=1 pytest tests/ledger/test_vectors.py`` (or
``python -m tools.make_vectors``) rewrites the files; see
``tests/vectors/README.md``: a change to them is a protocol change.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import merkle
from node.protocol.crypto import digest
from node.protocol.state_tree import decode_proof, encode_proof, verify_state_proof
from tests.ledger.invariants import check_invariants
from tests.ledger.world import CHAIN_ID, World, signer
from tools import make_vectors

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


@pytest.fixture(scope="module")
def files() -> dict[str, Any]:
    if os.environ.get("RELANCE_WRITE_VECTORS") == "1":
        make_vectors.write(VECTORS)
    return {name: json.loads((VECTORS / name).read_text("utf-8")) for name in make_vectors.FILES}


@pytest.mark.parametrize("name", make_vectors.FILES)
def test_generator_reproduces_the_file(name: str) -> None:
    text = make_vectors.rendered()[name]
    on_disk = (VECTORS / name).read_text("utf-8")
    assert text == on_disk, (
        f"{name} differs from what the code produces: a protocol change? "
        "If intended, regenerate with `python -m tools.make_vectors`."
    )


def test_tool_and_world_share_keys_and_genesis() -> None:
    w = World()
    assert make_vectors.genesis() == w.genesis
    assert make_vectors.CHAIN_ID == CHAIN_ID
    for name in ("bank", "namur", "liege", "alice", "bakery", "voucher", "charleroi"):
        assert make_vectors.pk(name) == signer(name).public_key
    assert tuple(make_vectors.pk(f"validator{n}") for n in range(4)) == tuple(
        v.public_key for v in w.validators
    )


# --- encodings ----------------------------------------------------------------------------


def test_one_encoding_per_kind(files: dict[str, Any]) -> None:
    vectors = files["encodings.json"]["vectors"]
    assert [v["kind_number"] for v in vectors] == [int(k) for k in t.Kind]
    assert [v["kind"] for v in vectors] == [k.name.lower() for k in t.Kind]


@pytest.mark.parametrize("index", range(len(t.Kind)), ids=[k.name.lower() for k in t.Kind])
def test_encoding_vector(files: dict[str, Any], index: int) -> None:
    v = files["encodings.json"]["vectors"][index]
    body, wire = bytes.fromhex(v["body"]), bytes.fromhex(v["wire"])
    signature, tx_id = bytes.fromhex(v["signature"]), bytes.fromhex(v["tx_id"])

    decoded = t.decode_tx(wire, files["encodings.json"]["chain_id"])
    assert isinstance(decoded, t.SignedTx)
    assert (decoded.body, decoded.signature, decoded.tx_id) == (body, signature, tx_id)
    assert digest(body) == tx_id
    assert merkle.tx_leaf(wire).hex() == v["leaf"]
    items = decoded.tx.items()
    if items is not None:  # a list kind: the body commits to [count, root of the items]
        committed = t.decode_committed(body, signature, files["encodings.json"]["chain_id"])
        assert isinstance(committed, t.CommittedTx)
        assert committed.item_count == len(items)
        assert committed.items_root == merkle.root([t.encode_item(i) for i in items])
    assert int(decoded.tx.payload.KIND) == v["kind_number"]
    assert decoded.tx.sender.hex() == v["sender"]
    assert decoded.tx.sequence == v["sequence"]
    assert decoded.signature_ok()
    # Re-encoding the decoded transaction and signing it again with the test key
    # (Ed25519 is deterministic) gives the very same bytes.
    resigned = decoded.tx.sign(signer(v["signer"]))
    assert (resigned.body, resigned.signature, resigned.encode()) == (body, signature, wire)
    # On the wrong chain the same bytes are refused, before any signature check.
    assert t.decode_tx(wire, "relance-other") == Result.WRONG_CHAIN


# --- transitions ---------------------------------------------------------------------------


def test_transitions_replay_on_the_test_world(files: dict[str, Any]) -> None:
    data = files["transitions.json"]
    w = World()
    assert data["chain_id"] == CHAIN_ID
    assert data["genesis_hash"] == w.genesis.genesis_hash.hex()
    assert data["genesis_root"] == w.root().hex()
    for step in data["steps"]:
        where = f"step {step['step']} ({step['label']})"
        assert w.root().hex() == step["pre_root"], where
        assert w.next_height == step["height"], where
        w.time_ms = step["time_ms"]
        outcome = w.apply(bytes.fromhex(step["tx"]))
        (result,) = outcome.outcomes
        assert result.result.name == step["result"], where
        assert (None if result.tx_id is None else result.tx_id.hex()) == step["tx_id"], where
        assert w.root().hex() == step["post_root"], where
        if result.result == Result.OK:
            check_invariants(w.view.items())
        else:
            assert step["pre_root"] == step["post_root"], where


def test_transitions_cover_the_story(files: dict[str, Any]) -> None:
    steps = files["transitions.json"]["steps"]
    kinds = set()
    for step in steps:
        decoded = t.decode_tx(bytes.fromhex(step["tx"]), CHAIN_ID)
        if step["result"] == "OK":
            assert isinstance(decoded, t.SignedTx)
            kinds.add(decoded.tx.payload.KIND)
    assert {
        t.Kind.REGISTER_MERCHANT, t.Kind.CREATE_CAMPAIGN, t.Kind.FUND, t.Kind.ALLOCATE,
        t.Kind.PAY, t.Kind.PAY_AUTHORIZED, t.Kind.SWEEP, t.Kind.REFUND, t.Kind.TRANSFER,
        t.Kind.REDEEM, t.Kind.SETTLE, t.Kind.CLOSE_CAMPAIGN, t.Kind.WITHDRAW,
        t.Kind.EVIDENCE, t.Kind.ADMIT_ISSUER, t.Kind.CHANGE_VALIDATORS, t.Kind.RETURN_PAYOUT,
    } <= kinds  # fmt: skip
    rejected = {step["result"] for step in steps} - {"OK"}
    assert len(rejected) >= 10
    assert rejected <= {code.name for code in Result}
    assert {
        "EVIDENCE_KNOWN", "EVIDENCE_INVALID", "INSUFFICIENT_APPROVALS", "INVALID_HEIGHT",
        "VALIDATOR_CHANGE_PENDING", "NOT_AUTHORIZED", "PAYOUT_RETURNED",
    } <= rejected  # fmt: skip
    # Heights: a rejected step does not commit, so the next one runs at the same height.
    for before, after in itertools.pairwise(steps):
        grew = 1 if before["result"] == "OK" else 0
        assert after["height"] == before["height"] + grew, after["label"]


def test_transitions_end_with_the_new_validator_set(files: dict[str, Any]) -> None:
    w = World()
    for step in files["transitions.json"]["steps"]:
        w.time_ms = step["time_ms"]
        w.apply(bytes.fromhex(step["tx"]))
    record = w.validators_record()
    keys = [v.public_key for v in record.current]
    assert keys == [signer(f"validator{n}").public_key for n in (0, 1, 2, 4)]
    assert (record.pending, record.pending_height) == ((), 0)
    for name, zones in (("charleroi", ("CH-1", "CH-2")), ("mons", ("MO-1",))):
        issuer = w.issuer(signer(name).public_key)
        assert issuer is not None and issuer.zones == zones
    evidence = [k for k in w.view.items() if k[:1] == r.Prefix.EVIDENCE.value]
    assert len(evidence) == 4
    check_invariants(w.view.items())


def test_transitions_end_with_empty_escrow(files: dict[str, Any]) -> None:
    w = World()
    for step in files["transitions.json"]["steps"]:
        w.time_ms = step["time_ms"]
        w.apply(bytes.fromhex(step["tx"]))
    issuer = w.issuer(w.namur)
    assert issuer is not None
    assert (issuer.escrow_cents, issuer.pending_cents) == (0, 0)


def test_state_proofs_verify_against_the_last_root(files: dict[str, Any]) -> None:
    """Protocol 3: proofs of presence and absence, as the light client checks them."""
    data = files["transitions.json"]
    w = World()
    for step in data["steps"]:
        w.time_ms = step["time_ms"]
        w.apply(bytes.fromhex(step["tx"]))
    root = bytes.fromhex(data["steps"][-1]["post_root"])
    assert w.root() == root
    proofs = data["proofs"]
    assert {p["value"] is None for p in proofs} == {True, False}
    for vector in proofs:
        key, raw = bytes.fromhex(vector["key"]), bytes.fromhex(vector["proof"])
        value = None if vector["value"] is None else bytes.fromhex(vector["value"])
        assert w.view.items().get(key) == value
        proof = decode_proof(raw)
        assert encode_proof(w.tree.prove(key)) == raw
        assert verify_state_proof(root, key, value, proof)
        assert not verify_state_proof(root, key, b"forged", proof)
