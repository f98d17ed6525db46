"""Voucher status for the commune that issued them: what the node knows per allocation.

The node does not know serial numbers or delivery channels: the voucher book
(``wallets/book.py``) is the commune's, sealed on its own machine. The node
knows, per campaign, which keys the commune allocated to, how much, which it
reissued (``reissue`` moved a lost voucher's balance to a new key) and what
each key has left. ``relance-wallet issuer vouchers`` joins this with the
book's serials and channels; the commune dashboard shows it per key.

Status rules (``status``, the one definition), in this order:

- ``reissued``: the key was the lost side of a ``reissue`` (its balance moved);
- ``used``: nothing left;
- ``expired``: the campaign is closed or past its last valid day, with money left;
- ``untouched``: the balance is what was allocated (or more: refunds);
- ``partly_used``: some of it spent.

``allocated_cents`` is what the key received from the commune: its allocations,
and for a replacement what ``reissue`` moved to it (the lost key's allocation
less what it had spent). After ``close_campaign`` (which returns every balance
to the budget) the balance shown is what was left at closing: received less
spent, from the ledger's per-shop spending counters.

Per-voucher data is the issuing commune's only: the route and the page refuse
any other reader.
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Final, Protocol
from weakref import WeakKeyDictionary

from aiohttp import web

from node.api import models as m
from node.api.access import Role, Viewer, Viewers, require
from node.api.chain_reads import ChainReads
from node.api.inputs import decode_cursor, encode_cursor
from node.api.problems import ApiError
from node.api.view_gate import ViewGate
from node.app.ledger_app import LedgerApp
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.state import View
from node.protocol import limits
from node.protocol.crypto import PUBLIC_KEY_BYTES


class Status(enum.StrEnum):
    UNTOUCHED = "untouched"
    PARTLY_USED = "partly_used"
    USED = "used"
    REISSUED = "reissued"
    EXPIRED = "expired"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
_KINDS = frozenset({t.Kind.ALLOCATE, t.Kind.REISSUE})


def status(
    allocated_cents: int, balance_cents: int, reissued: bool, campaign: r.Campaign, now_ms: int
) -> Status:
    """The status of one allocated key (see the module's rules)."""
    if reissued:
        return Status.REISSUED
    if balance_cents <= 0:
        return Status.USED
    if campaign.closed or now_ms >= campaign.valid_until_ms:
        return Status.EXPIRED
    if balance_cents >= allocated_cents:
        return Status.UNTOUCHED
    return Status.PARTLY_USED


@dataclass(frozen=True, slots=True)
class Report:
    items: list[m.VoucherState]  # in key order
    counts: dict[str, int]  # every status, zeros included
    complete: bool  # False: a cap was reached, some allocations are missing


class VoucherReads(Protocol):
    """What the voucher status reads of the API (the route's and the page's parts have it)."""

    @property
    def ledger(self) -> LedgerApp: ...

    @property
    def gate(self) -> ViewGate: ...

    @property
    def reads(self) -> ChainReads: ...

    @property
    def viewers(self) -> Viewers: ...


def report(api: VoucherReads, code: str, campaign: r.Campaign) -> Report:
    """Every key the campaign's issuer allocated to, with its status (bounded: at most
    ``VOUCHERS_STATUS_SCAN_TXS_MAX`` allocations and reissues, read among at most
    ``VOUCHERS_STATUS_INDEX_ENTRIES_MAX`` entries of the issuer's history).

    Kept per node, campaign and height (``_cache``): the pages of one report and its CSV
    read the history once per block."""
    height = api.ledger.last_block().height
    cache = _cache.setdefault(api.reads, OrderedDict())  # one per application
    found = cache.get((code, height))
    if found is None:
        found = _report(api, code, campaign)
        cache[(code, height)] = found
        while len(cache) > _CACHED_REPORTS:
            cache.popitem(last=False)
    return found


_CACHED_REPORTS: Final = 4
_cache: WeakKeyDictionary[ChainReads, OrderedDict[tuple[str, int], Report]] = WeakKeyDictionary()


def _report(api: VoucherReads, code: str, campaign: r.Campaign) -> Report:
    allocated: dict[bytes, int] = {}
    reissues: list[tuple[bytes, bytes]] = []  # (lost, replacement), newest first
    complete = True
    before: tuple[int, int] | None = None
    scanned, entries = 0, limits.VOUCHERS_STATUS_INDEX_ENTRIES_MAX
    while True:
        want = min(limits.HTTP_PAGE_ITEMS_MAX, limits.VOUCHERS_STATUS_SCAN_TXS_MAX - scanned)
        budget = min(limits.HTTP_SCAN_ITEMS_MAX, entries)
        refs, before = api.gate.index.history(campaign.issuer, before, _KINDS, want, budget)
        entries -= budget
        for ref in refs:
            payload = api.reads.signed_at(ref.height, ref.index)[0].tx.payload
            if isinstance(payload, t.Allocate) and payload.campaign == code:
                for a in payload.allocations:
                    allocated[a.holder] = allocated.get(a.holder, 0) + a.amount_cents
            elif isinstance(payload, t.Reissue) and payload.campaign == code:
                reissues.append((payload.lost, payload.replacement))
        scanned += len(refs)
        if before is None:
            break
        too_many = len(allocated) > limits.VOUCHERS_STATUS_MAX
        if scanned >= limits.VOUCHERS_STATUS_SCAN_TXS_MAX or entries <= 0 or too_many:
            complete = False
            break
    store = api.ledger.store
    received = dict(allocated)
    lost: dict[bytes, bytes] = {}
    for old, new in reversed(reissues):  # oldest first: a replacement may be lost in turn
        lost[old] = new
        moved = max(0, received.get(old, 0) - spent(store, old, code))
        received[new] = received.get(new, 0) + moved
    keys = sorted(received)
    if len(keys) > limits.VOUCHERS_STATUS_MAX:
        keys, complete = keys[: limits.VOUCHERS_STATUS_MAX], False
    now = api.ledger.last_block().time_ms
    items: list[m.VoucherState] = []
    counts: Counter[str] = Counter({s: 0 for s in STATUSES})
    for key in keys:
        if campaign.closed:  # closing returned every balance: what was left is what was not spent
            left = max(0, received[key] - spent(store, key, code))
        else:
            raw = store.get(r.holder_key(key))
            left = 0 if raw is None else r.Holder.decode(raw).balance(code)
        state = status(received[key], left, key in lost, campaign, now)
        counts[state.value] += 1
        replaced_by = lost.get(key)
        items.append(
            m.VoucherState(
                holder=key.hex(),
                allocated_cents=received[key],
                balance_cents=left,
                status=state.value,
                replaced_by=None if replaced_by is None else replaced_by.hex(),
            )
        )
    return Report(items, dict(counts), complete)


def spent(view: View, holder: bytes, code: str) -> int:
    """What ``holder`` spent in campaign ``code``, net of refunds (the ledger's per-shop
    counters, kept after the campaign closes)."""
    prefix = r.spent_at_key(holder, b"", "")
    suffix = code.encode()
    total = 0
    for key, raw in view.iter_prefix(prefix):
        if key[len(prefix) + PUBLIC_KEY_BYTES :] == suffix:
            total += r.Counter.decode(raw).value
    return total


def issuer_campaign(api: VoucherReads, viewer: Viewer, code: str) -> r.Campaign:
    """The campaign ``code`` if ``viewer`` issued it; 404 otherwise (the same answer
    for another commune's campaign: its existence is public, its vouchers are not)."""
    if not 0 < len(code) <= limits.CODE_CHARS_MAX:
        raise ApiError(400, "a campaign code is 1 to 32 characters", slug="bad-code")
    raw = api.ledger.store.get(r.campaign_key(code))
    campaign = None if raw is None else r.Campaign.decode(raw)
    if campaign is None or viewer.role is not Role.ISSUER or campaign.issuer != viewer.key:
        raise ApiError(404, "no campaign of yours has this code", slug="not-your-campaign")
    return campaign


def parse_status(text: str | None) -> str | None:
    if text is None or text == "":
        return None
    if text not in STATUSES:
        raise ApiError(400, f"status is one of {', '.join(STATUSES)}", slug="bad-status")
    return text


def parse_limit(text: str | None) -> int:
    """``?limit=``: 1 to ``VOUCHERS_PER_PAGE`` (the default), ASCII digits only."""
    most = limits.VOUCHERS_PER_PAGE
    if text is None:
        return most
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and 1 <= int(text) <= most):
        raise ApiError(400, f"limit is 1 to {most}", slug="bad-limit")
    return int(text)


def page_of(
    found: Report, code: str, wanted: str | None, cursor: str | None, limit: int
) -> m.VoucherStatusPage:
    """A page of ``found`` (only ``wanted`` statuses), after the key in ``cursor``."""
    after = b"" if cursor is None else decode_cursor(cursor, 32)
    chosen: list[m.VoucherState] = []
    next_cursor = None
    for item in found.items:
        if bytes.fromhex(item.holder) <= after or (wanted and item.status != wanted):
            continue
        if len(chosen) == limit:
            next_cursor = encode_cursor(bytes.fromhex(chosen[-1].holder))
            break
        chosen.append(item)
    return m.VoucherStatusPage(code, found.counts, found.complete, chosen, next_cursor)


async def vouchers(api: VoucherReads, request: web.Request) -> object:
    viewer = require(api.viewers.of(request))
    code = request.match_info["code"]
    campaign = issuer_campaign(api, viewer, code)
    wanted = parse_status(request.query.get("status"))
    limit = parse_limit(request.query.get("limit"))
    found = report(api, code, campaign)
    return page_of(found, code, wanted, request.query.get("cursor"), limit)
