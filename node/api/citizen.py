"""The citizen's page (``/ui/holder``, reached from a letter's ``/b/<code>`` or an app
login): balances, last valid day, history with shop names, and where to spend.

Everything here is read for the viewer's own key: the filters in the page's links
are a search text, a category, a zone and a page number, never another key, so a
balance code gives no route to anyone else's data.
"""

from __future__ import annotations

from aiohttp import web

from node.api.access import Viewer
from node.api.page_parts import PageParts
from node.api.spend import Shops, where_to_spend
from node.ledger import records as r
from node.ledger import tx as t
from node.protocol import limits

_ZONE_KINDS = frozenset({t.Kind.ALLOCATE, t.Kind.REISSUE})
_ALLOCATIONS_SCANNED = 20  # the newest allocations of a key read to find its zone
_REISSUES_FOLLOWED = 4  # a replacement's zone is its lost voucher's, this far back


def live_campaigns(api: PageParts, holder: bytes) -> dict[str, r.Campaign]:
    """The campaigns ``holder`` has money in and may still spend."""
    raw = api.ledger.store.get(r.holder_key(holder))
    if raw is None:
        return {}
    now = api.ledger.last_block().time_ms
    found = {}
    for code, cents in r.Holder.decode(raw).balances:
        campaign_raw = api.ledger.store.get(r.campaign_key(code))
        if cents > 0 and campaign_raw is not None:
            campaign = r.Campaign.decode(campaign_raw)
            if campaign.is_active(now):
                found[code] = campaign
    return found


def home_zone(api: PageParts, holder: bytes, depth: int = 0) -> str:
    """The zone the commune allocated ``holder`` in (its newest allocation; for a
    replacement key, its lost voucher's), or ''."""
    refs, _ = api.gate.index.history(
        holder, None, _ZONE_KINDS, _ALLOCATIONS_SCANNED, _ALLOCATIONS_SCANNED
    )
    for ref in refs:
        payload = api.reads.signed_at(ref.height, ref.index)[0].tx.payload
        if isinstance(payload, t.Allocate):
            for allocation in payload.allocations:
                if allocation.holder == holder:
                    return allocation.zone
        elif isinstance(payload, t.Reissue) and payload.replacement == holder:
            return home_zone(api, payload.lost, depth + 1) if depth < _REISSUES_FOLLOWED else ""
    return ""


def _text(request: web.Request, name: str) -> str:
    return request.query.get(name, "").strip()[: limits.UI_SEARCH_CHARS_MAX]


def shops_for(api: PageParts, request: web.Request, viewer: Viewer) -> tuple[Shops, dict[str, str]]:
    """The page of shops for the viewer's live campaigns, and the filters it applied."""
    page_text = request.query.get("page", "1")
    page = (
        int(page_text) if page_text.isascii() and page_text.isdigit() and len(page_text) <= 6 else 1
    )
    filters = {"q": _text(request, "q"), "category": _text(request, "category")}
    filters["zone"] = _text(request, "zone")
    near = home_zone(api, viewer.key)
    shops = where_to_spend(
        api.ledger.store,
        live_campaigns(api, viewer.key),
        search=filters["q"],
        category=filters["category"],
        zone=filters["zone"],
        near=near,
        page=page,
    )
    return shops, {**filters, "near": near}
