"""The light client: check a node's answer against the genesis file, without trusting the node.

A node answers with a value, a proof and the certified header it is proven
against. The light client checks, in order: the header is of this chain; its
commit certificate is for this header and carries more than 2/3 of the
voting power of the validator set in force at its height (from genesis, or
from ``validators_at`` once validator changes exist); and the proof ties the
value to the header's root — the state root for a balance, campaign or
payout (``node.protocol.state_tree`` proof of presence or absence), the transaction
root for a transaction (``node.protocol.merkle`` inclusion proof). Any failure raises
``NodeLied`` with the reason: the node is lying or broken, and nothing it
said may be used.

Validator changes are followed from the genesis set, one handover at a time
(``follow_validator_changes``): for each later set, the node shows the
certified header of the block before its first height, whose
``next_validators_hash`` names it. That header is checked against the set
already known, so each set is vouched for by more than 2/3 of the one before.
A node that hides a change cannot make an answer after it verify: its header
names a set the client does not hold. What stays assumed, as for any light
client that does not read every header: a set that has left office never
gathers more than 2/3 of its power to sign a forged history after it.

Pure: no I/O. Imports the pure leaves, the consensus records and the
ledger's record decoders.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from node.consensus.types import (
    Certificate,
    Header,
    Validator,
    ValidatorSet,
    verify_certificate,
)
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import merkle
from node.protocol.codec import DecodeError
from node.protocol.genesis import Genesis
from node.protocol.state_tree import StateProof, verify_state_proof

ValidatorsAt = Callable[[int], ValidatorSet]
_R = TypeVar("_R")


class NodeLied(ValueError):
    """The node's answer does not verify against the genesis file; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CertifiedHeader:
    """A header and the commit certificate a node presents with it."""

    header: Header
    certificate: Certificate


@dataclass(frozen=True, slots=True)
class Handover:
    """A validator set in force from ``first_height``, as a node shows it, and the
    certified header of the block before, whose ``next_validators_hash`` names it."""

    first_height: int
    validators: ValidatorSet
    before: CertifiedHeader


def handover_from_json(entry: object) -> Handover:
    """One later validator set of ``GET /v1/validators`` (not the genesis one); raises
    ``TypeError``, ``KeyError``, ``ValueError`` or ``DecodeError`` when malformed."""
    if not isinstance(entry, dict) or not isinstance(entry["first_height"], int):
        raise TypeError("not a validator set")
    before = entry["handover"]
    if not isinstance(before, dict):
        raise TypeError("a later validator set without its handover")
    return Handover(
        entry["first_height"],
        ValidatorSet.decode(bytes.fromhex(str(entry["validator_set_bytes"]))),
        anchor_from_json(before),
    )


def anchor_from_json(value: object) -> CertifiedHeader:
    """A certified header as the API shows it (``header_bytes``, ``certificate_bytes``)."""
    if not isinstance(value, dict):
        raise ValueError("no anchor")
    return CertifiedHeader(
        Header.decode(bytes.fromhex(str(value["header_bytes"]))),
        Certificate.decode(bytes.fromhex(str(value["certificate_bytes"]))),
    )


def genesis_validator_set(genesis: Genesis) -> ValidatorSet:
    return ValidatorSet(tuple(Validator(v.public_key, v.power, v.name) for v in genesis.validators))


def genesis_validators(genesis: Genesis) -> ValidatorsAt:
    """The validator set of every height, while the chain has had no validator change."""
    validator_set = genesis_validator_set(genesis)
    return lambda _height: validator_set


def follow_validator_changes(genesis: Genesis, handovers: Sequence[Handover]) -> ValidatorsAt:
    """The set in force at every height, from the genesis set through ``handovers``.

    ``handovers`` are the changes after genesis, oldest first. Each must be
    vouched for by the set before it (see the module doc); any that is not
    raises ``NodeLied``.
    """
    firsts, sets = [1], [genesis_validator_set(genesis)]

    def at(height: int) -> ValidatorSet:
        return sets[bisect.bisect_right(firsts, height) - 1]

    for handover in handovers:
        first = handover.first_height
        if first <= firsts[-1]:
            raise NodeLied(
                f"validator changes out of order: a set from height {first} "
                f"after one from height {firsts[-1]}"
            )
        before = handover.before
        if before.header.height != first - 1:
            raise NodeLied(
                f"the handover to the validator set of height {first} is not "
                f"the header of height {first - 1}"
            )
        header = verify_header(genesis, before, at)
        if header.next_validators_hash != handover.validators.hash():
            raise NodeLied(
                f"the certified header of height {first - 1} does not name the "
                f"validator set shown from height {first}"
            )
        firsts.append(first)
        sets.append(handover.validators)
    return at


def verify_header(
    genesis: Genesis, anchor: CertifiedHeader, validators_at: ValidatorsAt | None = None
) -> Header:
    """The header, once its certificate proves that the validators decided it."""
    header, cert = anchor.header, anchor.certificate
    if header.chain_id != genesis.chain_id:
        raise NodeLied(f"the header is of chain {header.chain_id!r}, not {genesis.chain_id!r}")
    if cert.height != header.height or cert.block_hash != header.hash():
        raise NodeLied("the certificate is not for this header")
    validators = (validators_at or genesis_validators(genesis))(header.height)
    if header.validators_hash != validators.hash():
        raise NodeLied(
            f"the header of height {header.height} names a validator set other than "
            "the one in force (a validator change hidden, or a forged header)"
        )
    if not verify_certificate(cert, genesis.chain_id, validators):
        raise NodeLied("the certificate does not carry valid signatures of more than 2/3")
    return header


def verify_state(
    genesis: Genesis,
    anchor: CertifiedHeader,
    key: bytes,
    value: bytes | None,
    proof: StateProof,
    validators_at: ValidatorsAt | None = None,
) -> Header:
    """``key`` holds ``value`` (None: nothing) in the state after the certified block."""
    header = verify_header(genesis, anchor, validators_at)
    if not verify_state_proof(header.state_root, key, value, proof):
        raise NodeLied("the value does not match the proof and the certified state root")
    return header


def verify_holder(
    genesis: Genesis,
    anchor: CertifiedHeader,
    holder: bytes,
    value: bytes | None,
    proof: StateProof,
    validators_at: ValidatorsAt | None = None,
) -> r.Holder:
    """A holder's balances and sequence (an absent record is an empty holder)."""
    verify_state(genesis, anchor, r.holder_key(holder), value, proof, validators_at)
    return r.EMPTY_HOLDER if value is None else _decode(r.Holder.decode, value)


def verify_merchant(
    genesis: Genesis,
    anchor: CertifiedHeader,
    merchant: bytes,
    value: bytes | None,
    proof: StateProof,
    validators_at: ValidatorsAt | None = None,
) -> r.Merchant | None:
    verify_state(genesis, anchor, r.merchant_key(merchant), value, proof, validators_at)
    return None if value is None else _decode(r.Merchant.decode, value)


def verify_campaign(
    genesis: Genesis,
    anchor: CertifiedHeader,
    code: str,
    value: bytes | None,
    proof: StateProof,
    validators_at: ValidatorsAt | None = None,
) -> r.Campaign | None:
    verify_state(genesis, anchor, r.campaign_key(code), value, proof, validators_at)
    return None if value is None else _decode(r.Campaign.decode, value)


def verify_payout(
    genesis: Genesis,
    anchor: CertifiedHeader,
    payout_id: bytes,
    value: bytes | None,
    proof: StateProof,
    validators_at: ValidatorsAt | None = None,
) -> r.Payout | None:
    verify_state(genesis, anchor, r.payout_key(payout_id), value, proof, validators_at)
    return None if value is None else _decode(r.Payout.decode, value)


@dataclass(frozen=True, slots=True)
class PartialTx:
    """What a reader of part of a list transaction is shown instead of its bytes."""

    body: bytes
    signature: bytes
    items_digest: bytes  # sha256 of the encoded item list (the block's leaf binds it)


def verify_transaction(
    genesis: Genesis,
    anchor: CertifiedHeader,
    tx_bytes: bytes,
    proof: merkle.InclusionProof,
    validators_at: ValidatorsAt | None = None,
) -> t.SignedTx:
    """The transaction sits at ``proof.index`` of the certified block."""
    header = verify_header(genesis, anchor, validators_at)
    if not merkle.verify_inclusion(header.tx_root, merkle.tx_leaf(tx_bytes), proof):
        raise NodeLied("the transaction is not in the certified block at the place claimed")
    signed = t.decode_tx(tx_bytes, genesis.chain_id)
    if isinstance(signed, Result):
        raise NodeLied(f"the certified transaction does not decode: {signed.name}")
    return signed


@dataclass(frozen=True, slots=True)
class ItemProof:
    """One item of a list transaction and its path under the body's items root."""

    data: bytes
    proof: merkle.InclusionProof


def verify_transaction_items(
    genesis: Genesis,
    anchor: CertifiedHeader,
    committed: PartialTx,
    proof: merkle.InclusionProof,
    items: Sequence[ItemProof],
    validators_at: ValidatorsAt | None = None,
) -> tuple[t.CommittedTx, list[tuple[int, t.Item]]]:
    """A list transaction shown in part: its committed body sits at ``proof.index``
    of the certified block, its sender signed it, and each item sits at its index of
    the committed list. The other items are seen only as hashes (``node.ledger.tx``)."""
    header = verify_header(genesis, anchor, validators_at)
    leaf = merkle.detached_leaf(committed.body, committed.signature, committed.items_digest)
    if not merkle.verify_inclusion(header.tx_root, leaf, proof):
        raise NodeLied("the transaction is not in the certified block at the place claimed")
    found = t.decode_committed(committed.body, committed.signature, genesis.chain_id)
    if isinstance(found, Result):
        raise NodeLied(f"the certified transaction body does not decode: {found.name}")
    if not found.signature_ok():
        raise NodeLied("the certified transaction's signature does not verify")
    out = []
    for shown in items:
        try:
            out.append((shown.proof.index, found.item(shown.data, shown.proof)))
        except DecodeError as exc:
            raise NodeLied(f"an item shown is not the transaction's: {exc}") from None
    return found, out


def verify_block_transactions(
    genesis: Genesis,
    anchor: CertifiedHeader,
    txs: Sequence[bytes],
    validators_at: ValidatorsAt | None = None,
) -> list[t.SignedTx]:
    """A block's whole transaction list, as a node shows it: none hidden, added or moved."""
    header = verify_header(genesis, anchor, validators_at)
    if merkle.tx_root(txs) != header.tx_root:
        raise NodeLied("the block's transactions are not the certified ones (hidden or altered)")
    out = []
    for data in txs:
        signed = t.decode_tx(data, genesis.chain_id)
        if isinstance(signed, Result):
            raise NodeLied(f"a certified transaction does not decode: {signed.name}")
        out.append(signed)
    return out


def _decode(decode: Callable[[bytes], _R], value: bytes) -> _R:
    try:
        return decode(value)
    except DecodeError as exc:
        raise NodeLied(f"the proven record does not decode: {exc}") from None
