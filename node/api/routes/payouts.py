"""Payouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from node.api import models as m
from node.api import views
from node.api.access import Role, Viewers, require
from node.api.inputs import decode_cursor, encode_cursor, parse_id, parse_key, parse_limit
from node.api.operation import (
    CURSOR,
    HEX32,
    LIMIT,
    Operation,
    Routes,
    path_param,
    pick,
    query_param,
)
from node.api.problems import ApiError
from node.app.ledger_app import LedgerApp
from node.ledger import records as r
from node.protocol import limits


@dataclass(frozen=True, slots=True)
class PayoutsParts:
    """What the payout routes read of the API."""

    ledger: LedgerApp
    viewers: Viewers


async def payouts(api: PayoutsParts, request: web.Request) -> object:
    viewer = require(api.viewers.of(request))
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


async def payout(api: PayoutsParts, request: web.Request) -> object:
    payout_id = parse_id(request.match_info["payout_id"], "payout id")
    viewer = require(api.viewers.of(request))
    raw = api.ledger.store.get(r.payout_key(payout_id))
    if raw is None:
        raise ApiError(404, "no payout has this id")
    p = r.Payout.decode(raw)
    if not views.may_read_payout(viewer, p):
        raise ApiError(403, "a payout is read by its merchant, its issuer, the bank and auditors")
    return views.payout(payout_id, p)


OPERATIONS: Final[tuple[Operation[PayoutsParts], ...]] = (
    Operation(
        "GET",
        "/v1/payouts",
        payouts,
        "Payouts the reader may see",
        "payouts",
        m.PayoutPage,
        params=(
            query_param(
                "settled", {"type": "string", "enum": ["true", "false"]}, "settled or pending"
            ),
            query_param("merchant", HEX32, "only this merchant's payouts"),
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
        params=(path_param("payout_id", HEX32, "payout id (the paying transaction's id)"),),
        errors=(400, 401, 403, 404),
        auth="required",
    ),
)


ROUTES: Final = Routes(pick(PayoutsParts), OPERATIONS)
