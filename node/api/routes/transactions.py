"""Transactions: one, a page of them, an account's history."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from node.api import models as m
from node.api.access import require
from node.api.chain_reads import ChainRouteParts
from node.api.inputs import parse_id, parse_key, parse_kinds, parse_limit
from node.api.operation import (
    CAMPAIGN_Q,
    CURSOR,
    HEX32,
    KEY_P,
    KIND,
    LIMIT,
    Operation,
    Routes,
    path_param,
    pick,
)
from node.api.problems import ApiError
from node.ledger import tx as t
from node.views.history_index import TxRef


async def transaction(api: ChainRouteParts, request: web.Request) -> object:
    tx_id = parse_id(request.match_info["tx_id"], "transaction id")
    viewer = api.viewers.of(request)
    location = api.ledger.store.tx_location(tx_id)
    if location is None:
        if tx_id in api.ledger.mempool:
            return m.Receipt(tx_id.hex(), "pending", None, None)
        raise ApiError(404, "no committed or pending transaction has this id")
    height, index = location
    shown = None
    if api.reads.may_read(viewer, height, index):
        shown = api.reads.transaction(TxRef(height, index, t.Kind.PAY), viewer)
    return m.Receipt(tx_id.hex(), "committed", height, index, shown)


async def transactions(api: ChainRouteParts, request: web.Request) -> object:
    viewer = require(api.viewers.of(request))
    account = None if viewer.reads_all else viewer.key
    return api.reads.history(
        viewer,
        account,
        parse_kinds(request),
        request.query.get("campaign"),
        request.query.get("cursor"),
        parse_limit(request),
    )


async def account_history(api: ChainRouteParts, request: web.Request) -> object:
    key = parse_key(request.match_info["key"])
    viewer = require(api.viewers.of(request))
    if not viewer.may_read_history_of(key):
        raise ApiError(403, "an account's history is readable by itself, its issuers and auditors")
    return api.reads.history(
        viewer,
        key,
        parse_kinds(request),
        request.query.get("campaign"),
        request.query.get("cursor"),
        parse_limit(request),
    )


OPERATIONS: Final[tuple[Operation[ChainRouteParts], ...]] = (
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
        params=(path_param("tx_id", HEX32, "transaction id (hash of the unsigned body)"),),
        errors=(400, 401, 404),
        auth="optional",
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
)


ROUTES: Final = Routes(pick(ChainRouteParts), OPERATIONS)
