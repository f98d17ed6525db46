"""Protocol 2: per-party lists committed by a Merkle root of their items.

The committed body of ``allocate`` and ``settle`` holds ``[count, items_root]``; the
wire form carries the items beside it (``[body, signature, items]``) and decoding
recomputes the root. A block commits to ``node.protocol.merkle.tx_leaf`` of each transaction.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import codec, merkle
from node.protocol.crypto import Digest, digest
from tests.ledger.world import CHAIN_ID, signer

HOLDERS = [signer(f"holder{n}").public_key for n in range(7)]


def _allocate(count: int = 7) -> t.SignedTx:
    allocations = tuple(t.Allocation(h, 100 + n, f"NA-{n % 2 + 1}") for n, h in enumerate(HOLDERS))
    payload = t.Allocate("NAM-2026", allocations[:count])
    return t.Tx(CHAIN_ID, signer("namur").public_key, 3, payload).sign(signer("namur"))


def _settle() -> t.SignedTx:
    payload = t.Settle(
        tuple(t.Settlement(Digest(digest(bytes([n]))), f"VIR-{n}") for n in range(3))
    )
    return t.Tx(CHAIN_ID, signer("bank").public_key, 9, payload).sign(signer("bank"))


def _pay() -> t.SignedTx:
    payload = t.Pay("NAM-2026", signer("bakery").public_key, 5, "x")
    return t.Tx(CHAIN_ID, signer("alice").public_key, 0, payload).sign(signer("alice"))


def _wire(body: bytes, signature: bytes, *rest: codec.Value) -> bytes:
    return codec.encode([body, signature, *rest])


@pytest.mark.parametrize("make", [_allocate, _settle], ids=["allocate", "settle"])
def test_the_body_commits_to_the_count_and_root_of_the_items(
    make: Callable[[], t.SignedTx],
) -> None:
    signed = make()
    items = signed.tx.items()
    assert items is not None
    body = codec.decode(signed.body, t.limits.TX_BYTES_MAX)
    assert isinstance(body, list)
    assert body[:2] == [t.VERSION, int(signed.tx.payload.KIND)]
    encoded = [t.encode_item(i) for i in items]
    assert [len(items), merkle.root(encoded)] in body  # the list itself is not in the body
    assert not any(i in signed.body for i in encoded)
    assert signed.tx_id == digest(signed.body) and signed.signature_ok()
    wire = signed.encode()
    decoded = t.decode_tx(wire, CHAIN_ID)
    assert isinstance(decoded, t.SignedTx)
    assert decoded == signed and decoded.encode() == wire  # the round trip is exact
    assert codec.decode(wire, t.limits.TX_BYTES_MAX) == [
        signed.body,
        signed.signature,
        [codec.decode(i, 100) for i in encoded],
    ]


def test_a_kind_without_a_list_keeps_the_two_element_wire_form() -> None:
    pay = t.Tx(
        CHAIN_ID,
        signer("alice").public_key,
        0,
        t.Pay("NAM-2026", signer("bakery").public_key, 5, "x"),
    ).sign(signer("alice"))
    assert pay.tx.items() is None and pay.items_digest() is None
    assert pay.encode() == codec.encode([pay.body, pay.signature])
    assert merkle.tx_leaf(pay.encode()) == pay.encode()
    # Items attached to a kind that has none: refused.
    assert t.decode_tx(_wire(pay.body, pay.signature, []), CHAIN_ID) == Result.MALFORMED


def test_items_that_do_not_match_the_committed_root_are_refused() -> None:
    signed = _allocate()
    items = codec.decode(signed.encode(), t.limits.TX_BYTES_MAX)[2]  # type: ignore[index]
    assert isinstance(items, list)
    changed = [*items[:3], [HOLDERS[3], 999_999, "NA-2"], *items[4:]]
    swapped = [items[1], items[0], *items[2:]]
    cases = {
        "an amount changed": changed,
        "two items swapped": swapped,
        "one item dropped": items[:-1],
        "one item added": [*items, items[0]],
        "no items at all": [],
    }
    for name, detached in cases.items():
        got = t.decode_tx(_wire(signed.body, signed.signature, detached), CHAIN_ID)
        assert got == Result.MALFORMED, name
    # The items left out of the wire form, or not a list.
    assert t.decode_tx(codec.encode([signed.body, signed.signature]), CHAIN_ID) == Result.MALFORMED
    bad = _wire(signed.body, signed.signature, b"items")
    assert t.decode_tx(bad, CHAIN_ID) == Result.MALFORMED


def test_a_body_committing_to_more_items_than_allowed_is_refused() -> None:
    signed = _allocate(1)
    body = codec.decode(signed.body, t.limits.TX_BYTES_MAX)
    assert isinstance(body, list)
    too_many = t.limits.ALLOCATIONS_PER_TX_MAX + 1
    body[6] = [too_many, body[6][1]]  # type: ignore[index]
    raw = codec.encode(body)
    assert t.decode_committed(raw, signed.signature, CHAIN_ID) == Result.MALFORMED


def test_the_committed_body_proves_each_item_alone() -> None:
    signed = _allocate()
    items = [t.encode_item(i) for i in signed.tx.items() or ()]
    committed = t.decode_committed(signed.body, signed.signature, CHAIN_ID)
    assert isinstance(committed, t.CommittedTx)
    assert (committed.tx_id, committed.kind, committed.item_count) == (
        signed.tx_id, t.Kind.ALLOCATE, len(items),
    )  # fmt: skip
    assert committed.signature_ok()
    for n, item in enumerate(items):
        proof = merkle.prove(items, n)
        assert committed.item(item, proof) == signed.tx.items()[n]  # type: ignore[index]
        with pytest.raises(codec.DecodeError):
            committed.item(items[(n + 1) % len(items)], proof)
        with pytest.raises(codec.DecodeError):
            committed.item(item, merkle.InclusionProof(n, len(items) + 1, proof.siblings))
    # Another chain, and a kind without a list, are not list transactions here.
    assert t.decode_committed(signed.body, signed.signature, "other") == Result.WRONG_CHAIN
    pay = t.Tx(
        CHAIN_ID, signer("alice").public_key, 0, t.Pay("N", signer("bakery").public_key, 5, "")
    ).sign(signer("alice"))
    assert t.decode_committed(pay.body, pay.signature, CHAIN_ID) == Result.MALFORMED


def test_the_block_leaf_binds_every_byte_and_is_one_to_one() -> None:
    signed = _allocate()
    wire = signed.encode()
    leaf = merkle.tx_leaf(wire)
    items_digest = signed.items_digest()
    assert items_digest is not None
    assert leaf == merkle.detached_leaf(signed.body, signed.signature, items_digest)
    assert leaf != wire and len(leaf) < len(wire)
    # The leaf of an envelope is none of the wire forms a byzantine proposer could put
    # in its place: the body without items, or the leaf's own bytes sent as a transaction.
    stripped = codec.encode([signed.body, signed.signature])
    assert merkle.tx_leaf(stripped) == stripped != leaf
    assert merkle.tx_leaf(leaf) != leaf
    # Other items under the same body give another leaf, so another block root.
    other = _wire(signed.body, signed.signature, [])
    assert merkle.tx_leaf(other) != leaf
    assert merkle.tx_root([wire]) != merkle.tx_root([other])
    # Bytes that are not an envelope are their own leaf.
    for opaque in (b"\x93\x01\x02\x03", b"\x93", b"\x93\xc4\x00\xc4\x00\xc0", b"junk"):
        assert merkle.tx_leaf(opaque) == opaque
    assert merkle.tx_root([b"a", b"b"]) == merkle.root([b"a", b"b"])


def test_the_previous_protocol_is_refused_by_its_version() -> None:
    """Protocol 1 bodies carried the lists whole: version 1 is refused, never misread."""
    signed = _allocate()
    body = codec.decode(signed.body, t.limits.TX_BYTES_MAX)
    assert isinstance(body, list)
    items = codec.decode(signed.encode(), t.limits.TX_BYTES_MAX)[2]  # type: ignore[index]
    old = codec.encode([1, *body[1:6], items])
    wire = codec.encode([old, signer("namur").sign(t.Domain.TX, CHAIN_ID, old)])
    assert t.decode_tx(wire, CHAIN_ID) == Result.UNSUPPORTED_VERSION


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 100])
def test_proofs_of_many_items_are_the_single_proofs(size: int) -> None:
    leaves = [bytes([n % 256, n // 256]) for n in range(size)]
    indexes = sorted({0, size // 3, size // 2, size - 1})
    assert merkle.prove_many(leaves, indexes) == [merkle.prove(leaves, n) for n in indexes]
    with pytest.raises(IndexError):
        merkle.prove_many(leaves, [size])
