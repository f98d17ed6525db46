"""Proofs against a certified header: state entries and transaction inclusion."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from node.api import models as m
from node.api import views
from node.api.chain_reads import ChainRouteParts
from node.api.inputs import parse_id, parse_key
from node.api.operation import (
    HEX32,
    KEY_P,
    Operation,
    Routes,
    path_param,
    pick,
)
from node.api.problems import ApiError
from node.ledger import records as r
from node.ledger import tx as t
from node.protocol import limits
from node.protocol.errors import ApiInvariantBroken
from node.protocol.merkle import leaf_hash, prove_many, tx_leaf
from node.protocol.merkle import prove as merkle_prove
from node.protocol.state_tree import encode_proof


def _anchor(api: ChainRouteParts, height: int) -> m.Anchor:
    found, certificate = api.reads.block(height), api.reads.certificate(height)
    if found is None or certificate is None:
        raise ApiError(503, "no committed block to anchor a proof yet", slug="no-block-yet")
    h = found.header
    return m.Anchor(
        height=height,
        block_hash=h.hash().hex(),
        state_root=h.state_root.hex(),
        tx_root=h.tx_root.hex(),
        header_bytes=h.encode().hex(),
        certificate_bytes=certificate.encode().hex(),
        validator_set_bytes=api.ledger.validator_set(height).encode().hex(),
    )


def _state_proof(
    api: ChainRouteParts, key: bytes, decode: Callable[[bytes], object]
) -> m.StateProof:
    height = api.ledger.last_block().height
    anchor = _anchor(api, height)
    value = api.ledger.store.get(key)
    proof = api.ledger.tree.prove(key)
    return m.StateProof(
        key=key.hex(),
        value=None if value is None else value.hex(),
        record=None if value is None else views.record_fields(decode(value)),
        proof=encode_proof(proof).hex(),
        anchor=anchor,
    )


async def prove_account(api: ChainRouteParts, request: web.Request) -> object:
    key = parse_key(request.match_info["key"])
    store = api.ledger.store
    if store.get(r.merchant_key(key)) is not None:
        return _state_proof(api, r.merchant_key(key), r.Merchant.decode)
    return _state_proof(api, r.holder_key(key), r.Holder.decode)


async def prove_signing_key(api: ChainRouteParts, request: web.Request) -> object:
    key = parse_key(request.match_info["key"])
    return _state_proof(api, r.signing_key_key(key), r.SigningKey.decode)


async def prove_campaign(api: ChainRouteParts, request: web.Request) -> object:
    code = request.match_info["code"]
    if not 0 < len(code) <= limits.CODE_CHARS_MAX:
        raise ApiError(400, "a campaign code is 1 to 32 characters", slug="bad-code")
    return _state_proof(api, r.campaign_key(code), r.Campaign.decode)


async def prove_payout(api: ChainRouteParts, request: web.Request) -> object:
    payout_id = parse_id(request.match_info["payout_id"], "payout id")
    return _state_proof(api, r.payout_key(payout_id), r.Payout.decode)


async def prove_transaction(api: ChainRouteParts, request: web.Request) -> object:
    tx_id = parse_id(request.match_info["tx_id"], "transaction id")
    location = api.ledger.store.tx_location(tx_id)
    if location is None:
        raise ApiError(404, "no committed transaction has this id")
    height, index = location
    found = api.reads.block(height)
    if found is None:
        raise ApiInvariantBroken(f"the store locates {tx_id.hex()} in a missing block")
    leaves = [tx_leaf(tx) for tx in found.txs]
    proof = merkle_prove(leaves, index)
    viewer = api.viewers.of(request)
    whole: str | None = None
    partial: _Partial | None = None
    if api.reads.may_read(viewer, height, index):
        signed, _ = api.reads.signed_at(height, index)
        seen = views.visible_items(signed, viewer, api.ledger.store)
        if seen is None:
            whole = found.txs[index].hex()
        else:
            partial = _items_shown(signed, seen)
    return m.InclusionProof(
        tx_id=tx_id.hex(),
        index=index,
        size=proof.size,
        leaf_hash=leaf_hash(leaves[index]).hex(),
        siblings=[s.hex() for s in proof.siblings],
        anchor=_anchor(api, height),
        tx=whole,
        body=None if partial is None else partial.body,
        signature=None if partial is None else partial.signature,
        items_digest=None if partial is None else partial.items_digest,
        item_count=None if partial is None else partial.item_count,
        items=None if partial is None else partial.items,
    )


@dataclass(frozen=True, slots=True)
class _Partial:
    body: str
    signature: str
    items_digest: str
    item_count: int
    items: list[m.ItemProof]


def _items_shown(signed: t.SignedTx, seen: Sequence[int]) -> _Partial:
    """A list transaction for a reader of the items at ``seen`` only: the committed body,
    and those items with their paths; the other items never leave the node."""
    items = [t.encode_item(item) for item in signed.tx.items() or ()]
    return _Partial(
        body=signed.body.hex(),
        signature=signed.signature.hex(),
        items_digest=(signed.items_digest() or b"").hex(),
        item_count=len(items),
        items=[
            m.ItemProof(p.index, items[p.index].hex(), [s.hex() for s in p.siblings])
            for p in prove_many(items, seen)
        ],
    )


OPERATIONS: Final[tuple[Operation[ChainRouteParts], ...]] = (
    Operation(
        "GET",
        "/v1/proofs/accounts/{key}",
        prove_account,
        "Proof of an account's balances (holder or merchant record)",
        "proofs",
        m.StateProof,
        params=(KEY_P,),
        errors=(400, 503),
    ),
    Operation(
        "GET",
        "/v1/proofs/signing-keys/{key}",
        prove_signing_key,
        "Proof of the key that signs for an account (bank, issuer, auditor)",
        "proofs",
        m.StateProof,
        params=(KEY_P,),
        errors=(400, 503),
        description=(
            "Absent (value null): the account's own key signs for it. Present: governance "
            "moved it (rotate_key): key signs from height on, previous before."
        ),
    ),
    Operation(
        "GET",
        "/v1/proofs/campaigns/{code}",
        prove_campaign,
        "Proof of a campaign's totals",
        "proofs",
        m.StateProof,
        params=(
            path_param(
                "code", {"type": "string", "minLength": 1, "maxLength": 32}, "campaign code"
            ),
        ),
        errors=(400, 503),
    ),
    Operation(
        "GET",
        "/v1/proofs/payouts/{payout_id}",
        prove_payout,
        "Proof of a payout",
        "proofs",
        m.StateProof,
        params=(path_param("payout_id", HEX32, "payout id"),),
        errors=(400, 503),
    ),
    Operation(
        "GET",
        "/v1/proofs/transactions/{tx_id}",
        prove_transaction,
        "Proof of a transaction's inclusion in a block",
        "proofs",
        m.InclusionProof,
        params=(path_param("tx_id", HEX32, "transaction id"),),
        errors=(400, 401, 404, 503),
        auth="optional",
    ),
)


ROUTES: Final = Routes(pick(ChainRouteParts), OPERATIONS)
