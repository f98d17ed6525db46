"""Blocks: headers, certified blocks, validator eras."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from node.api import models as m
from node.api import views
from node.api.access import Role, require
from node.api.chain_reads import ChainRouteParts
from node.api.inputs import decode_cursor, encode_cursor, parse_height, parse_limit
from node.api.operation import (
    CURSOR,
    LIMIT,
    Operation,
    Routes,
    path_param,
    pick,
    query_param,
)
from node.api.problems import ApiError
from node.ledger import records as r
from node.protocol import limits
from node.protocol.errors import ApiInvariantBroken


async def blocks(api: ChainRouteParts, request: web.Request) -> object:
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
        block = api.reads.block(height)
        if block is None:
            break
        items.append(views.header(block.header, len(block.txs)))
        height -= 1
    next_cursor = encode_cursor((height + 1).to_bytes(8, "big")) if height >= 1 else None
    return m.BlockPage(items, next_cursor)


async def block(api: ChainRouteParts, request: web.Request) -> object:
    height = parse_height(request.match_info["height"])
    found = api.reads.block(height) if height >= 1 else None
    certificate = api.reads.certificate(height) if found is not None else None
    if found is None or certificate is None:
        raise ApiError(404, f"no block at height {height}")
    return views.block(found, certificate)


def _require_auditor(api: ChainRouteParts, request: web.Request) -> None:
    viewer = require(api.viewers.of(request))
    if viewer.role not in (Role.AUDITOR, Role.BANK):
        raise ApiError(403, "whole blocks hold everyone's transactions: auditors and the bank only")


async def certified_block(api: ChainRouteParts, request: web.Request) -> object:
    height = parse_height(request.match_info["height"])
    _require_auditor(api, request)
    raw_block = api.ledger.store.block(height) if height >= 1 else None
    raw_certificate = api.ledger.store.certificate(height) if height >= 1 else None
    if raw_block is None or raw_certificate is None:
        raise ApiError(404, f"no block at height {height}")
    return m.CertifiedBlock(height, raw_block.hex(), raw_certificate.hex())


async def certified_blocks(api: ChainRouteParts, request: web.Request) -> object:
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
            raise ApiInvariantBroken(f"committed block {height} is missing from the store")
        size += len(raw_block) + len(raw_certificate)
        if items and size > limits.HTTP_CERTIFIED_RANGE_BYTES_MAX:
            break
        items.append(m.CertifiedBlock(height, raw_block.hex(), raw_certificate.hex()))
        height += 1
    return m.CertifiedBlockRange(items, height if height <= top else None)


def _base(api: ChainRouteParts) -> int:
    return api.ledger.store.base_height()


def _before_base(api: ChainRouteParts, what: str) -> ApiError:
    """A node started from another's state (state sync) holds no block before it."""
    return ApiError(
        404,
        f"this node started from the state of height {_base(api)} (state sync) and does "
        f"not hold {what}: ask a node that holds the chain from genesis",
        slug="before-state-sync",
    )


async def validator_eras(api: ChainRouteParts, request: web.Request) -> object:
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
            found, certificate = api.reads.block(first - 1), api.reads.certificate(first - 1)
            if (found is None or certificate is None) and first - 1 < _base(api):
                raise _before_base(api, f"the block before the validator set of {first}")
            if found is None or certificate is None:
                raise ApiInvariantBroken(f"no certified block before the validator set of {first}")
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


OPERATIONS: Final[tuple[Operation[ChainRouteParts], ...]] = (
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
            query_param("from", {"type": "integer", "minimum": 1}, "the first height (default 1)"),
            query_param(
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
        params=(path_param("height", {"type": "integer", "minimum": 1}, "block height"),),
        errors=(400, 404),
    ),
    Operation(
        "GET",
        "/v1/blocks/{height}/certified",
        certified_block,
        "A block's exact bytes and certificate, for audits",
        "blocks",
        m.CertifiedBlock,
        params=(path_param("height", {"type": "integer", "minimum": 1}, "block height"),),
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
)


ROUTES: Final = Routes(pick(ChainRouteParts), OPERATIONS)
