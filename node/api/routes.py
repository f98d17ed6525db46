"""The ``/v1`` routes: one table of operations, the handlers, and the OpenAPI document
built from that same table and the models the handlers return."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from aiohttp import web

from node.api import inputs, views, voucher_status
from node.api import models as m
from node.api.access import SESSION_COOKIE, Role, Viewer, require
from node.api.core import (
    Api,
    client_of,
    decode_cursor,
    encode_cursor,
    parse_height,
    parse_id,
    parse_key,
    parse_kinds,
    parse_limit,
)
from node.api.feeds import EVENTS
from node.api.problems import PROBLEM_CONTENT_TYPE, ApiError
from node.api.schema import JsonSchema, schema_of, to_json
from node.api.stream import Refusal
from node.app import version
from node.consensus.mempool import Admission
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import limits
from node.protocol.merkle import leaf_hash, prove_many, tx_leaf
from node.protocol.merkle import prove as merkle_prove
from node.protocol.state_tree import encode_proof
from node.views.history_index import TxRef

Handler = Callable[[Api, web.Request], Awaitable[object]]
SSE_CONTENT_TYPE: Final = "text/event-stream"
STREAM_RETRY_AFTER_S: Final = 5


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: Literal["path", "query"]
    schema: JsonSchema
    description: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    method: Literal["GET", "POST"]
    path: str
    handler: Handler
    summary: str
    tag: str
    ok: type | None  # the model of the success response
    params: tuple[Param, ...] = ()
    body: type | None = None
    errors: tuple[int, ...] = ()
    auth: Literal["none", "optional", "required"] = "none"
    ok_status: int = 200
    also_ok: tuple[int, ...] = ()
    content_type: str = "application/json"
    description: str = ""
    extra_responses: dict[int, str] = field(default_factory=dict)


def _q(name: str, schema: JsonSchema, description: str) -> Param:
    return Param(name, "query", schema, description)


def _p(name: str, schema: JsonSchema, description: str) -> Param:
    return Param(name, "path", schema, description, required=True)


HEX32: Final[JsonSchema] = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
CURSOR = _q("cursor", {"type": "string", "maxLength": 344}, "next_cursor of the previous page")
LIMIT = _q(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": limits.HTTP_PAGE_ITEMS_MAX},
    f"items per page (default 50, at most {limits.HTTP_PAGE_ITEMS_MAX})",
)
KIND = _q(
    "kind",
    {"type": "string", "enum": [k.name.lower() for k in t.Kind]},
    "only transactions of this kind (repeat for several)",
)
CAMPAIGN_Q = _q("campaign", {"type": "string", "maxLength": 32}, "only this campaign")


def json_response(model: object, status: int = 200) -> web.Response:
    return web.json_response(to_json(model), status=status)


# --- status ----------------------------------------------------------------------------


async def health(api: Api, request: web.Request) -> object:
    views = [
        m.ViewHealth(v.name, v.state.value, v.height, v.lag, v.failures, v.error)
        for v in api.views.runner.statuses()
    ]
    degraded = [v.name for v in views if v.state != "serving"]
    return m.Health(True, "degraded" if degraded else "ok", degraded, views)


async def status(api: Api, request: web.Request) -> object:
    ledger, last = api.ledger, api.ledger.last_block()
    return m.Status(
        chain_id=api.chain_id,
        genesis_hash=ledger.genesis.genesis_hash.hex(),
        node_key=api.status.node_key.hex(),
        moniker=api.status.moniker,
        validator=api.status.validator,
        height=last.height,
        block_hash=last.block_hash.hex(),
        block_time_ms=last.time_ms,
        state_root=ledger.tree.root().hex(),
        consensus_height=api.status.consensus_height(),
        mempool_txs=len(ledger.mempool),
        mempool_bytes=ledger.mempool.size_bytes,
        peers=api.status.peers(),
        validators=[
            m.ValidatorView(v.name, v.public_key.hex(), v.power)
            for v in ledger.validator_set(last.height + 1).validators
        ],
        software_version=version.SOFTWARE_VERSION,
        protocol_version=version.PROTOCOL_VERSION,
        upgrade=_scheduled_upgrade(api),
    )


def _scheduled_upgrade(api: Api) -> m.ScheduledUpgrade | None:
    raw = api.ledger.store.get(r.upgrade_key())
    if raw is None:
        return None
    u = r.Upgrade.decode(raw)
    return m.ScheduledUpgrade(u.protocol, u.software, u.height, u.protocol in api.ledger.protocols)


async def session(api: Api, request: web.Request) -> object:
    viewer = require(api.viewer(request))
    return m.Session(viewer.key.hex(), viewer.role.value, viewer.scope.value)


# --- submitting -------------------------------------------------------------------------


async def submit(api: Api, request: web.Request) -> object:
    """Body: JSON ``{"tx": hex}`` or ``{"txs": [hex, ...]}``; ``?wait=true`` waits."""
    body = inputs.read_json(await request.read())
    if not isinstance(body, dict) or set(body) - {"tx", "txs"} or len(body) != 1:
        raise ApiError(400, 'expected {"tx": hex} or {"txs": [hex, ...]}', slug="bad-body")
    wait = _flag(request, "wait")
    batch = "txs" in body
    items = body["txs"] if batch else [body["tx"]]
    if not isinstance(items, list) or not 1 <= len(items) <= limits.HTTP_SUBMIT_BATCH_TXS_MAX:
        raise ApiError(
            400, f"between 1 and {limits.HTTP_SUBMIT_BATCH_TXS_MAX} transactions", slug="bad-body"
        )
    datas = [_hex_tx(item) for item in items]
    await api.ledger.verify_ahead([d for d in datas if d is not None])
    admitted = [_admit(api, data) for data in datas]
    if wait:
        admitted = list(await asyncio.gather(*(_wait(api, a) for a in admitted)))
    if batch:
        return m.SubmitBatch(admitted)
    only = admitted[0]
    if only.accepted:
        return json_response(only, 200 if wait or only.height is not None else 202)
    if only.result == "MEMPOOL_FULL":
        raise ApiError(
            503,
            "the mempool is full: retry later",
            slug="mempool-full",
            tx_id=only.tx_id,
            headers={"Retry-After": "1"},
        )
    code = Result[only.result]
    raise ApiError(
        422,
        only.message or code.message,
        result=code,
        tx_id=only.tx_id,
        available_cents=only.available_cents,
    )


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(400, f"{name} is true or false", slug="bad-flag")
    return value in ("true", "1")


def _hex_tx(item: object) -> bytes | None:
    """A transaction's bytes from its hex, or None."""
    if not isinstance(item, str) or len(item) > 2 * limits.TX_BYTES_MAX:
        return None
    try:
        return bytes.fromhex(item)
    except ValueError:
        return None


def _admit(api: Api, data: bytes | None) -> m.SubmitResult:
    if data is None:
        return _rejected(api, _refusal(None, Result.MALFORMED))
    decoded = api.ledger.decoded.decode(data)
    if not isinstance(decoded, Result):
        location = api.ledger.store.tx_location(decoded.tx_id)
        if location is not None:  # idempotent: already in a block
            return m.SubmitResult(True, decoded.tx_id.hex(), "OK", 0, location[0])
    added = api.ledger.mempool.add(data, api.ledger.check)
    verdict = added.verdict
    tx_id = None if verdict.tx_id is None else verdict.tx_id.hex()
    if added.admission == Admission.FULL:
        full = "the node's queue of waiting transactions is full: try again in a few seconds"
        return m.SubmitResult(False, tx_id, "MEMPOOL_FULL", -1, None, full)
    if added.admission == Admission.REJECTED:
        refused = _refusal(tx_id, Result(verdict.code))
        if refused.code == Result.INSUFFICIENT_FUNDS and not isinstance(decoded, Result):
            explained = views.shortfall(api.ledger.admitted_state(), decoded)
            if explained is not None:
                refused = replace(refused, message=explained[0], available_cents=explained[1])
        return _rejected(api, refused)
    if added.admission == Admission.ADMITTED:
        api.status.gossip_tx(data)
    return m.SubmitResult(True, tx_id, "OK", 0, None)


def _refusal(tx_id: str | None, code: Result) -> m.SubmitResult:
    return m.SubmitResult(False, tx_id, code.name, int(code), None, code.message)


def _rejected(api: Api, result: m.SubmitResult) -> m.SubmitResult:
    if api.metrics is not None:
        api.metrics.observe_rejection(result.result)
    return result


async def _wait(api: Api, result: m.SubmitResult) -> m.SubmitResult:
    if not result.accepted or result.height is not None or result.tx_id is None:
        return result
    tx_id = bytes.fromhex(result.tx_id)
    location = api.ledger.store.tx_location(tx_id)
    if location is not None:
        return m.SubmitResult(True, result.tx_id, "OK", 0, location[0])
    future = api.waiters.wait(tx_id)
    if future is None:
        return result
    try:
        async with asyncio.timeout(limits.HTTP_COMMIT_WAIT_MAX_MS / 1000):
            height = await future
    except TimeoutError:
        api.waiters.forget(tx_id, future)
        return result
    return m.SubmitResult(True, result.tx_id, "OK", 0, height)


# --- transactions ---------------------------------------------------------------------------


async def transaction(api: Api, request: web.Request) -> object:
    tx_id = parse_id(request.match_info["tx_id"], "transaction id")
    viewer = api.viewer(request)
    location = api.ledger.store.tx_location(tx_id)
    if location is None:
        if tx_id in api.ledger.mempool:
            return m.Receipt(tx_id.hex(), "pending", None, None)
        raise ApiError(404, "no committed or pending transaction has this id")
    height, index = location
    shown = None
    if api.may_read(viewer, height, index):
        shown = api.transaction(TxRef(height, index, t.Kind.PAY), viewer)
    return m.Receipt(tx_id.hex(), "committed", height, index, shown)


async def transactions(api: Api, request: web.Request) -> object:
    viewer = require(api.viewer(request))
    account = None if viewer.reads_all else viewer.key
    return api.history(
        viewer,
        account,
        parse_kinds(request),
        request.query.get("campaign"),
        request.query.get("cursor"),
        parse_limit(request),
    )


async def account_history(api: Api, request: web.Request) -> object:
    key = parse_key(request.match_info["key"])
    viewer = require(api.viewer(request))
    if not viewer.may_read_history_of(key):
        raise ApiError(403, "an account's history is readable by itself, its issuers and auditors")
    return api.history(
        viewer,
        key,
        parse_kinds(request),
        request.query.get("campaign"),
        request.query.get("cursor"),
        parse_limit(request),
    )


# --- accounts, campaigns, merchants -------------------------------------------------------------


async def account(api: Api, request: web.Request) -> object:
    return views.account(api.ledger.store, parse_key(request.match_info["key"]))


def _campaigns(api: Api) -> list[tuple[str, r.Campaign]]:
    prefix = r.campaign_key("")
    return [
        (key[len(prefix) :].decode(), r.Campaign.decode(raw))
        for key, raw in api.ledger.store.iter_prefix(prefix)
    ]


async def campaigns(api: Api, request: web.Request) -> object:
    limit = parse_limit(request)
    after = _cursor_text(request)
    issuer = request.query.get("issuer")
    issuer_key = None if issuer is None else parse_key(issuer, "issuer")
    now = api.ledger.last_block().time_ms
    items: list[m.Campaign] = []
    last: str | None = None
    for code, c in _campaigns(api):
        if after is not None and code <= after:
            continue
        if issuer_key is not None and c.issuer != issuer_key:
            continue
        if len(items) == limit:
            return m.CampaignPage(items, encode_cursor(last.encode()) if last else None)
        items.append(views.campaign(code, c, now))
        last = code
    return m.CampaignPage(items, None)


def _cursor_text(request: web.Request) -> str | None:
    cursor = request.query.get("cursor")
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor).decode()
    except UnicodeDecodeError:
        raise ApiError(400, "the cursor is not one this node gave", slug="bad-cursor") from None


async def campaign(api: Api, request: web.Request) -> object:
    code = request.match_info["code"]
    if not 0 < len(code) <= limits.CODE_CHARS_MAX:
        raise ApiError(400, "a campaign code is 1 to 32 characters", slug="bad-code")
    raw = api.ledger.store.get(r.campaign_key(code))
    if raw is None:
        raise ApiError(404, "no campaign has this code", result=None)
    return views.campaign(code, r.Campaign.decode(raw), api.ledger.last_block().time_ms)


async def merchants(api: Api, request: web.Request) -> object:
    limit = parse_limit(request)
    cursor = request.query.get("cursor")
    after = None if cursor is None else decode_cursor(cursor)
    zone, category = request.query.get("zone"), request.query.get("category")
    campaign_code = request.query.get("campaign")
    issuer = request.query.get("issuer")
    issuer_key = None if issuer is None else parse_key(issuer, "issuer")
    now = api.ledger.last_block().time_ms
    open_campaigns = [(c, x) for c, x in _campaigns(api) if x.is_active(now)]
    prefix = r.merchant_key(b"")
    items: list[m.DirectoryEntry] = []
    scanned = 0
    last: bytes | None = None
    for key, raw in api.ledger.store.iter_prefix(prefix):
        merchant_pk = key[len(prefix) :]
        if after is not None and merchant_pk <= after:
            continue
        scanned += 1
        if scanned > limits.HTTP_SCAN_ITEMS_MAX or len(items) == limit:
            return m.DirectoryPage(items, None if last is None else encode_cursor(last))
        last = merchant_pk
        merchant = r.Merchant.decode(raw)
        if not merchant.active or (zone is not None and merchant.zone != zone):
            continue
        if category is not None and not merchant.category.startswith(category):
            continue
        if issuer_key is not None and merchant.issuer != issuer_key:
            continue
        entry = views.directory_entry(api.ledger.store, merchant_pk, merchant, open_campaigns, now)
        if campaign_code is not None and campaign_code not in entry.campaigns:
            continue
        items.append(entry)
    return m.DirectoryPage(items, None)


async def merchant(api: Api, request: web.Request) -> object:
    key = parse_key(request.match_info["key"], "merchant")
    raw = api.ledger.store.get(r.merchant_key(key))
    if raw is None:
        raise ApiError(404, "no merchant is registered with this key")
    now = api.ledger.last_block().time_ms
    return views.directory_entry(
        api.ledger.store, key, r.Merchant.decode(raw), _campaigns(api), now
    )


# --- payouts -----------------------------------------------------------------------------------


async def payouts(api: Api, request: web.Request) -> object:
    viewer = require(api.viewer(request))
    if viewer.role is Role.HOLDER:
        raise ApiError(403, "payouts are read by merchants, issuers, the bank and auditors")
    limit = parse_limit(request)
    cursor = request.query.get("cursor")
    after = None if cursor is None else decode_cursor(cursor)
    settled = request.query.get("settled")
    if settled not in (None, "true", "false"):
        raise ApiError(400, "settled is true or false", slug="bad-flag")
    merchant_q = request.query.get("merchant")
    merchant_key = None if merchant_q is None else parse_key(merchant_q, "merchant")
    prefix = r.payout_key(b"")
    items: list[m.Payout] = []
    scanned = 0
    last: bytes | None = None
    for key, raw in api.ledger.store.iter_prefix(prefix):
        payout_id = key[len(prefix) :]
        if after is not None and payout_id <= after:
            continue
        scanned += 1
        if scanned > limits.HTTP_SCAN_ITEMS_MAX or len(items) == limit:
            return m.PayoutPage(items, None if last is None else encode_cursor(last))
        last = payout_id
        p = r.Payout.decode(raw)
        if not views.may_read_payout(viewer, p):
            continue
        if settled is not None and p.settled != (settled == "true"):
            continue
        if merchant_key is not None and p.merchant != merchant_key:
            continue
        items.append(views.payout(payout_id, p))
    return m.PayoutPage(items, None)


async def payout(api: Api, request: web.Request) -> object:
    payout_id = parse_id(request.match_info["payout_id"], "payout id")
    viewer = require(api.viewer(request))
    raw = api.ledger.store.get(r.payout_key(payout_id))
    if raw is None:
        raise ApiError(404, "no payout has this id")
    p = r.Payout.decode(raw)
    if not views.may_read_payout(viewer, p):
        raise ApiError(403, "a payout is read by its merchant, its issuer, the bank and auditors")
    return views.payout(payout_id, p)


# --- blocks ------------------------------------------------------------------------------------


async def blocks(api: Api, request: web.Request) -> object:
    limit = parse_limit(request, 20)
    top = api.ledger.last_block().height
    cursor = request.query.get("cursor")
    if cursor is not None:
        raw = decode_cursor(cursor)
        if len(raw) != 8:
            raise ApiError(400, "the cursor is not one this node gave", slug="bad-cursor")
        top = min(top, int.from_bytes(raw, "big") - 1)
    items: list[m.BlockHeader] = []
    height = top
    while height >= 1 and len(items) < limit:
        block = api.block(height)
        if block is None:
            break
        items.append(views.header(block.header, len(block.txs)))
        height -= 1
    next_cursor = encode_cursor((height + 1).to_bytes(8, "big")) if height >= 1 else None
    return m.BlockPage(items, next_cursor)


async def block(api: Api, request: web.Request) -> object:
    height = parse_height(request.match_info["height"])
    found = api.block(height) if height >= 1 else None
    certificate = api.certificate(height) if found is not None else None
    if found is None or certificate is None:
        raise ApiError(404, f"no block at height {height}")
    return views.block(found, certificate)


def _require_auditor(api: Api, request: web.Request) -> None:
    viewer = require(api.viewer(request))
    if viewer.role not in (Role.AUDITOR, Role.BANK):
        raise ApiError(403, "whole blocks hold everyone's transactions: auditors and the bank only")


async def certified_block(api: Api, request: web.Request) -> object:
    height = parse_height(request.match_info["height"])
    _require_auditor(api, request)
    raw_block = api.ledger.store.block(height) if height >= 1 else None
    raw_certificate = api.ledger.store.certificate(height) if height >= 1 else None
    if raw_block is None or raw_certificate is None:
        raise ApiError(404, f"no block at height {height}")
    return m.CertifiedBlock(height, raw_block.hex(), raw_certificate.hex())


async def certified_blocks(api: Api, request: web.Request) -> object:
    """Certified blocks from ``from`` on, as many as ``limit`` and the byte cap allow (at
    least one): an audit downloads a long history in few requests, within its rate."""
    first = parse_height(request.query.get("from", "1"), "from")
    limit = parse_limit(request, limits.HTTP_CERTIFIED_RANGE_BLOCKS_MAX)
    _require_auditor(api, request)
    top = api.ledger.last_block().height
    if not 1 <= first <= top:
        raise ApiError(404, f"no block at height {first} (the last is {top})")
    if first < _base(api):
        raise _before_base(api, f"block {first}")
    items: list[m.CertifiedBlock] = []
    size = 0
    height = first
    while height <= top and len(items) < min(limit, limits.HTTP_CERTIFIED_RANGE_BLOCKS_MAX):
        raw_block, raw_certificate = (
            api.ledger.store.block(height),
            api.ledger.store.certificate(height),
        )
        if raw_block is None or raw_certificate is None:
            raise RuntimeError(f"committed block {height} is missing from the store")
        size += len(raw_block) + len(raw_certificate)
        if items and size > limits.HTTP_CERTIFIED_RANGE_BYTES_MAX:
            break
        items.append(m.CertifiedBlock(height, raw_block.hex(), raw_certificate.hex()))
        height += 1
    return m.CertifiedBlockRange(items, height if height <= top else None)


def _base(api: Api) -> int:
    return api.ledger.store.base_height()


def _before_base(api: Api, what: str) -> ApiError:
    """A node started from another's state (state sync) holds no block before it."""
    return ApiError(
        404,
        f"this node started from the state of height {_base(api)} (state sync) and does "
        f"not hold {what}: ask a node that holds the chain from genesis",
        slug="before-state-sync",
    )


async def validator_eras(api: Api, request: web.Request) -> object:
    """Every validator set since genesis, oldest first, each with its handover: what a
    light client needs to follow validator changes from the genesis file."""
    limit = parse_limit(request, 100)
    after = 0
    cursor = request.query.get("cursor")
    if cursor is not None:
        raw = decode_cursor(cursor)
        if len(raw) != 8:
            raise ApiError(400, "the cursor is not one this node gave", slug="bad-cursor")
        after = int.from_bytes(raw, "big")
    firsts = [
        first
        for key, _ in api.ledger.store.iter_prefix(r.validator_history_prefix())
        if (first := int.from_bytes(key[1:], "big")) > after
    ]
    items = []
    for first in sorted(firsts)[:limit]:
        validator_set = api.ledger.validator_set(first)
        handover = None
        if first > 1:
            found, certificate = api.block(first - 1), api.certificate(first - 1)
            if (found is None or certificate is None) and first - 1 < _base(api):
                raise _before_base(api, f"the block before the validator set of {first}")
            if found is None or certificate is None:
                raise RuntimeError(f"no certified block before the validator set of {first}")
            handover = m.Handover(
                first - 1, found.header.encode().hex(), certificate.encode().hex()
            )
        validators = [
            m.ValidatorView(v.name, v.public_key.hex(), v.power) for v in validator_set.validators
        ]
        items.append(m.ValidatorEra(first, validators, validator_set.encode().hex(), handover))
    more = len(firsts) > limit
    next_cursor = encode_cursor(items[-1].first_height.to_bytes(8, "big")) if more else None
    return m.ValidatorEraPage(items, next_cursor)


# --- proofs --------------------------------------------------------------------------------------


def _anchor(api: Api, height: int) -> m.Anchor:
    found, certificate = api.block(height), api.certificate(height)
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


def _state_proof(api: Api, key: bytes, decode: Callable[[bytes], object]) -> m.StateProof:
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


async def prove_account(api: Api, request: web.Request) -> object:
    key = parse_key(request.match_info["key"])
    store = api.ledger.store
    if store.get(r.merchant_key(key)) is not None:
        return _state_proof(api, r.merchant_key(key), r.Merchant.decode)
    return _state_proof(api, r.holder_key(key), r.Holder.decode)


async def prove_campaign(api: Api, request: web.Request) -> object:
    code = request.match_info["code"]
    if not 0 < len(code) <= limits.CODE_CHARS_MAX:
        raise ApiError(400, "a campaign code is 1 to 32 characters", slug="bad-code")
    return _state_proof(api, r.campaign_key(code), r.Campaign.decode)


async def prove_payout(api: Api, request: web.Request) -> object:
    payout_id = parse_id(request.match_info["payout_id"], "payout id")
    return _state_proof(api, r.payout_key(payout_id), r.Payout.decode)


async def prove_transaction(api: Api, request: web.Request) -> object:
    tx_id = parse_id(request.match_info["tx_id"], "transaction id")
    location = api.ledger.store.tx_location(tx_id)
    if location is None:
        raise ApiError(404, "no committed transaction has this id")
    height, index = location
    found = api.block(height)
    if found is None:
        raise RuntimeError(f"the store locates {tx_id.hex()} in a missing block")
    leaves = [tx_leaf(tx) for tx in found.txs]
    proof = merkle_prove(leaves, index)
    viewer = api.viewer(request)
    whole: str | None = None
    partial: _Partial | None = None
    if api.may_read(viewer, height, index):
        signed, _ = api.signed_at(height, index)
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


# --- the stream -------------------------------------------------------------------------------


async def stream(api: Api, request: web.Request) -> object:
    api.require_view(EVENTS)
    viewer: Viewer | None = api.viewer(request)
    subscriber = api.hub.subscribe(viewer, client_of(request, api.config))
    if subscriber is Refusal.CLIENT_FULL:  # others may still connect
        raise ApiError(
            429,
            f"at most {limits.HTTP_STREAM_SUBSCRIBERS_PER_CLIENT_MAX} open streams a client: "
            "close one first",
            slug="too-many-streams-from-client",
            headers={"Retry-After": str(STREAM_RETRY_AFTER_S)},
        )
    if isinstance(subscriber, Refusal):
        raise ApiError(
            503,
            "too many open streams: retry later",
            slug="too-many-streams",
            headers={"Retry-After": str(STREAM_RETRY_AFTER_S)},
        )
    response = web.StreamResponse(
        headers={"Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-store"}
    )
    try:
        await response.prepare(request)
        await response.write(b": relance stream\n\n")
        sequence = 0
        while True:
            try:
                async with asyncio.timeout(limits.HTTP_STREAM_KEEPALIVE_S):
                    event = await subscriber.queue.get()
            except TimeoutError:  # a comment line: finds closed connections, keeps proxies open
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                break
            sequence += 1
            await response.write(event.encode(str(sequence)))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        api.hub.unsubscribe(subscriber)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


# --- the table -----------------------------------------------------------------------------------

KEY_P = _p("key", HEX32, "an account's public key, hex")
OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/v1/health",
        health,
        "Liveness, and the state of each derived view",
        "node",
        m.Health,
    ),
    Operation("GET", "/v1/status", status, "Chain and node status", "node", m.Status),
    Operation(
        "GET",
        "/v1/session",
        session,
        "Who the token speaks for",
        "access",
        m.Session,
        errors=(401,),
        auth="required",
    ),
    Operation(
        "POST",
        "/v1/transactions",
        submit,
        "Submit one signed transaction or a batch",
        "transactions",
        m.SubmitResult,
        params=(
            _q(
                "wait",
                {"type": "string", "enum": ["true", "false", "1", "0"]},
                "wait until the transaction is in a block (bounded)",
            ),
        ),
        body=m.SubmitRequest,
        errors=(400, 413, 415, 422, 503),
        also_ok=(202,),
        description="Idempotent by transaction id: a transaction already in a block or in "
        "the mempool is accepted again. A batch answers 200 with one result per item; a "
        "single rejected transaction answers 422 with the ledger's result code.",
        extra_responses={200: "SubmitResult or, for a batch, SubmitBatch"},
    ),
    Operation(
        "GET",
        "/v1/transactions",
        transactions,
        "Committed transactions the reader may see",
        "transactions",
        m.TransactionPage,
        params=(KIND, CAMPAIGN_Q, CURSOR, LIMIT),
        errors=(400, 401),
        auth="required",
    ),
    Operation(
        "GET",
        "/v1/transactions/{tx_id}",
        transaction,
        "Where a transaction is",
        "transactions",
        m.Receipt,
        params=(_p("tx_id", HEX32, "transaction id (hash of the unsigned body)"),),
        errors=(400, 401, 404),
        auth="optional",
    ),
    Operation(
        "GET",
        "/v1/accounts/{key}",
        account,
        "An account's role, sequence and balances",
        "accounts",
        m.Account,
        params=(KEY_P,),
        errors=(400,),
    ),
    Operation(
        "GET",
        "/v1/accounts/{key}/transactions",
        account_history,
        "An account's history",
        "accounts",
        m.TransactionPage,
        params=(KEY_P, KIND, CAMPAIGN_Q, CURSOR, LIMIT),
        errors=(400, 401, 403),
        auth="required",
    ),
    Operation(
        "GET",
        "/v1/campaigns",
        campaigns,
        "Campaigns with rules and running totals",
        "campaigns",
        m.CampaignPage,
        params=(_q("issuer", HEX32, "only this issuer's campaigns"), CURSOR, LIMIT),
        errors=(400,),
    ),
    Operation(
        "GET",
        "/v1/campaigns/{code}",
        campaign,
        "One campaign",
        "campaigns",
        m.Campaign,
        params=(_p("code", {"type": "string", "minLength": 1, "maxLength": 32}, "campaign code"),),
        errors=(400, 404),
    ),
    Operation(
        "GET",
        "/v1/campaigns/{code}/vouchers",
        voucher_status.vouchers,
        "Voucher status per allocated key (the issuing commune only)",
        "campaigns",
        m.VoucherStatusPage,
        params=(
            _p("code", {"type": "string", "minLength": 1, "maxLength": 32}, "campaign code"),
            _q("status", {"type": "string", "enum": list(voucher_status.STATUSES)}, "only this"),
            CURSOR,
            _q(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": limits.VOUCHERS_PER_PAGE},
                "items per page",
            ),
        ),
        errors=(400, 401, 404),
        auth="required",
        description="What the node knows per allocation: the key, what it was allocated, "
        "what it has left and its status (node/api/voucher_status.py). Serials and delivery "
        "channels are in the commune's voucher book, not on the node: `relance-wallet issuer "
        "vouchers` joins the two. Another commune's campaign answers 404.",
    ),
    Operation(
        "GET",
        "/v1/merchants",
        merchants,
        "The public merchant directory",
        "merchants",
        m.DirectoryPage,
        params=(
            _q("zone", {"type": "string", "maxLength": 32}, "only this zone"),
            _q("category", {"type": "string", "maxLength": 32}, "NACE code prefix"),
            _q("campaign", {"type": "string", "maxLength": 32}, "only merchants accepting it"),
            _q("issuer", HEX32, "only this issuer's merchants"),
            CURSOR,
            LIMIT,
        ),
        errors=(400,),
    ),
    Operation(
        "GET",
        "/v1/merchants/{key}",
        merchant,
        "One merchant of the directory",
        "merchants",
        m.DirectoryEntry,
        params=(KEY_P,),
        errors=(400, 404),
    ),
    Operation(
        "GET",
        "/v1/payouts",
        payouts,
        "Payouts the reader may see",
        "payouts",
        m.PayoutPage,
        params=(
            _q("settled", {"type": "string", "enum": ["true", "false"]}, "settled or pending"),
            _q("merchant", HEX32, "only this merchant's payouts"),
            CURSOR,
            LIMIT,
        ),
        errors=(400, 401, 403),
        auth="required",
    ),
    Operation(
        "GET",
        "/v1/payouts/{payout_id}",
        payout,
        "One payout",
        "payouts",
        m.Payout,
        params=(_p("payout_id", HEX32, "payout id (the paying transaction's id)"),),
        errors=(400, 401, 403, 404),
        auth="required",
    ),
    Operation(
        "GET",
        "/v1/blocks",
        blocks,
        "Block headers, newest first",
        "blocks",
        m.BlockPage,
        params=(CURSOR, LIMIT),
        errors=(400,),
    ),
    Operation(  # before /v1/blocks/{height}, which would take "certified" for a height
        "GET",
        "/v1/blocks/certified",
        certified_blocks,
        "Consecutive blocks' exact bytes and certificates, for audits",
        "blocks",
        m.CertifiedBlockRange,
        params=(
            _q("from", {"type": "integer", "minimum": 1}, "the first height (default 1)"),
            _q(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": limits.HTTP_PAGE_ITEMS_MAX},
                f"blocks at most (at most {limits.HTTP_CERTIFIED_RANGE_BLOCKS_MAX} are sent, "
                f"and {limits.HTTP_CERTIFIED_RANGE_BYTES_MAX} bytes of blocks unless one is "
                "larger)",
            ),
        ),
        errors=(400, 401, 403, 404),
        auth="required",
        description=(
            "Oldest first, from `from`; `next_from` is the height to ask next (null after the "
            "last committed block). Auditors and the bank only."
        ),
    ),
    Operation(
        "GET",
        "/v1/blocks/{height}",
        block,
        "A block's header and commit certificate",
        "blocks",
        m.Block,
        params=(_p("height", {"type": "integer", "minimum": 1}, "block height"),),
        errors=(400, 404),
    ),
    Operation(
        "GET",
        "/v1/blocks/{height}/certified",
        certified_block,
        "A block's exact bytes and certificate, for audits",
        "blocks",
        m.CertifiedBlock,
        params=(_p("height", {"type": "integer", "minimum": 1}, "block height"),),
        errors=(400, 401, 403, 404),
        auth="required",
    ),
    Operation(
        "GET",
        "/v1/validators",
        validator_eras,
        "Every validator set since genesis, with the certified header that handed over to it",
        "blocks",
        m.ValidatorEraPage,
        params=(CURSOR, LIMIT),
        errors=(400,),
        description=(
            "Oldest first. A light client starts from the genesis file's set and, for each "
            "later set, checks the handover header's certificate against the set before and "
            "its next_validators_hash against this set."
        ),
    ),
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
        "/v1/proofs/campaigns/{code}",
        prove_campaign,
        "Proof of a campaign's totals",
        "proofs",
        m.StateProof,
        params=(_p("code", {"type": "string", "minLength": 1, "maxLength": 32}, "campaign code"),),
        errors=(400, 503),
    ),
    Operation(
        "GET",
        "/v1/proofs/payouts/{payout_id}",
        prove_payout,
        "Proof of a payout",
        "proofs",
        m.StateProof,
        params=(_p("payout_id", HEX32, "payout id"),),
        errors=(400, 503),
    ),
    Operation(
        "GET",
        "/v1/proofs/transactions/{tx_id}",
        prove_transaction,
        "Proof of a transaction's inclusion in a block",
        "proofs",
        m.InclusionProof,
        params=(_p("tx_id", HEX32, "transaction id"),),
        errors=(400, 401, 404, 503),
        auth="optional",
    ),
    Operation(
        "GET",
        "/v1/stream",
        stream,
        "Server-sent events: committed blocks and transactions",
        "transactions",
        None,
        errors=(401, 503),
        auth="optional",
        content_type=SSE_CONTENT_TYPE,
        description="Events 'block' (public header) and 'tx' ({tx_id, height, index, kind}), "
        "the latter only for transactions the reader may see. A reader that falls "
        f"{limits.HTTP_STREAM_QUEUE_EVENTS_MAX} events behind is disconnected.",
    ),
)


# --- OpenAPI ------------------------------------------------------------------------------------


def openapi_document(version: str, extra: tuple[Operation, ...] = ()) -> JsonSchema:
    components: dict[str, JsonSchema] = {}
    problem_ref = schema_of(m.Problem, components)
    paths: dict[str, dict[str, object]] = {}
    for op in (*OPERATIONS, *extra):
        responses: dict[str, object] = {}
        for code in (op.ok_status, *op.also_ok):
            content = {op.content_type: {"schema": _ok_schema(op, components)}}
            responses[str(code)] = {"description": op.summary, "content": content}
        for code in (*op.errors, 429):
            responses[str(code)] = {
                "description": "a problem document (RFC 9457)",
                "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_ref}},
            }
        operation: dict[str, object] = {
            "operationId": op.handler.__name__,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required,
                    "description": p.description,
                    "schema": p.schema,
                }
                for p in op.params
            ],
            "responses": responses,
        }
        if op.description:
            operation["description"] = op.description
        if op.auth == "required":
            operation["security"] = [{"token": []}, {"cookie": []}]
        elif op.auth == "optional":
            operation["security"] = [{}, {"token": []}, {"cookie": []}]
        if op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of(op.body, components)}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Relance node API",
            "version": version,
            "description": "A Relance validator or observer node. Amounts are integer euro "
            "cents, times Unix milliseconds of block time, keys and ids lowercase hex. "
            "History is private: send an API token made by `relance-wallet login`.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "bearerFormat": "relance-api-token"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
        },
    }


def _ok_schema(op: Operation, components: dict[str, JsonSchema]) -> JsonSchema:
    if op.ok is None:
        return {"type": "string"}
    schema = schema_of(op.ok, components)
    if op.handler is submit:
        return {"anyOf": [schema, schema_of(m.SubmitBatch, components)]}
    return schema
