"""Accounts, campaigns and merchants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from node.api import models as m
from node.api import views, voucher_status
from node.api.access import Viewers
from node.api.chain_reads import ChainReads
from node.api.inputs import decode_cursor, encode_cursor, parse_key, parse_limit
from node.api.operation import (
    CURSOR,
    HEX32,
    KEY_P,
    LIMIT,
    Operation,
    Routes,
    path_param,
    pick,
    query_param,
)
from node.api.problems import ApiError
from node.api.view_gate import ViewGate
from node.app.ledger_app import LedgerApp
from node.ledger import records as r
from node.protocol import limits


@dataclass(frozen=True, slots=True)
class AccountsParts:
    """What the account routes read of the API (the voucher status: all four)."""

    ledger: LedgerApp
    gate: ViewGate
    reads: ChainReads
    viewers: Viewers


async def account(api: AccountsParts, request: web.Request) -> object:
    return views.account(api.ledger.store, parse_key(request.match_info["key"]))


def _campaigns(api: AccountsParts) -> list[tuple[str, r.Campaign]]:
    prefix = r.campaign_key("")
    return [
        (key[len(prefix) :].decode(), r.Campaign.decode(raw))
        for key, raw in api.ledger.store.iter_prefix(prefix)
    ]


async def campaigns(api: AccountsParts, request: web.Request) -> object:
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


async def campaign(api: AccountsParts, request: web.Request) -> object:
    code = request.match_info["code"]
    if not 0 < len(code) <= limits.CODE_CHARS_MAX:
        raise ApiError(400, "a campaign code is 1 to 32 characters", slug="bad-code")
    raw = api.ledger.store.get(r.campaign_key(code))
    if raw is None:
        raise ApiError(404, "no campaign has this code", result=None)
    return views.campaign(code, r.Campaign.decode(raw), api.ledger.last_block().time_ms)


async def merchants(api: AccountsParts, request: web.Request) -> object:
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


async def merchant(api: AccountsParts, request: web.Request) -> object:
    key = parse_key(request.match_info["key"], "merchant")
    raw = api.ledger.store.get(r.merchant_key(key))
    if raw is None:
        raise ApiError(404, "no merchant is registered with this key")
    now = api.ledger.last_block().time_ms
    return views.directory_entry(
        api.ledger.store, key, r.Merchant.decode(raw), _campaigns(api), now
    )


OPERATIONS: Final[tuple[Operation[AccountsParts], ...]] = (
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
        "/v1/campaigns",
        campaigns,
        "Campaigns with rules and running totals",
        "campaigns",
        m.CampaignPage,
        params=(query_param("issuer", HEX32, "only this issuer's campaigns"), CURSOR, LIMIT),
        errors=(400,),
    ),
    Operation(
        "GET",
        "/v1/campaigns/{code}",
        campaign,
        "One campaign",
        "campaigns",
        m.Campaign,
        params=(
            path_param(
                "code", {"type": "string", "minLength": 1, "maxLength": 32}, "campaign code"
            ),
        ),
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
            path_param(
                "code", {"type": "string", "minLength": 1, "maxLength": 32}, "campaign code"
            ),
            query_param(
                "status", {"type": "string", "enum": list(voucher_status.STATUSES)}, "only this"
            ),
            CURSOR,
            query_param(
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
            query_param("zone", {"type": "string", "maxLength": 32}, "only this zone"),
            query_param("category", {"type": "string", "maxLength": 32}, "NACE code prefix"),
            query_param(
                "campaign", {"type": "string", "maxLength": 32}, "only merchants accepting it"
            ),
            query_param("issuer", HEX32, "only this issuer's merchants"),
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
)


ROUTES: Final = Routes(pick(AccountsParts), OPERATIONS)
