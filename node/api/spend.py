"""Where a voucher may be spent: the shops of the citizen's page, searchable and paged.

A shop accepts a campaign's voucher when ``accepts`` says so: registered by the
campaign's issuer, and eligible under the ledger's own rule (active, zone in
the campaign's zones, category in its categories: ``node.ledger.rules.eligibility``,
the rule a payment is checked against), and for a region's campaign at a
commune's shop, that commune's consent (``node.ledger.rules.consent_allows``).

The ledger's merchant record has no street address: a shop is shown with its
name, its zone and its category, which is all the commune registers.

Reads only public data (the merchant directory is public too); the page never
carries a holder's key in a link, only the filters and a page number.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from node.ledger import records as r
from node.ledger.codes import Result
from node.ledger.rules import consent_allows, eligibility
from node.ledger.state import View
from node.protocol import limits


def accepts(view: View, campaign: r.Campaign, merchant: r.Merchant) -> bool:
    """The one filter: ``merchant`` takes vouchers of ``campaign`` (a region's campaign
    at a commune's shop: where that commune consents, ``rules.consent_allows``)."""
    if eligibility(campaign, merchant) != Result.OK:
        return False
    if merchant.issuer == campaign.issuer:
        return True
    raw = view.get(r.consent_key(campaign.issuer, merchant.issuer))
    return consent_allows(None if raw is None else r.Consent.decode(raw), campaign, merchant)


@dataclass(frozen=True, slots=True)
class Shop:
    key: str  # hex, for the merchant's own page of the public directory
    name: str
    category: str
    zone: str
    campaigns: tuple[str, ...]  # the reader's campaigns this shop accepts


@dataclass(frozen=True, slots=True)
class Shops:
    items: list[Shop]
    total: int  # shops matching the filters (within the scan cap)
    page: int
    pages: int
    categories: list[str]  # of every accepting shop, for the filter
    zones: list[str]
    truncated: bool  # the scan cap was reached: some shops may be missing


def fold(text: str) -> str:
    """Text for a search: lower case, without accents (``Crème`` finds ``creme``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def where_to_spend(
    view: View,
    campaigns: dict[str, r.Campaign],
    *,
    search: str = "",
    category: str = "",
    zone: str = "",
    near: str = "",
    page: int = 1,
) -> Shops:
    """A page of the shops that accept any of ``campaigns`` (the reader's live ones).

    Filters: ``search`` in the name (accents and case ignored), ``category`` a
    prefix of the shop's NACE code, ``zone`` exact. Sorted by category then name;
    shops of the zone ``near`` first. Reads at most ``limits.UI_SHOPS_SCAN_MAX``
    merchant records.
    """
    needle = fold(search.strip())[: limits.NAME_CHARS_MAX]
    prefix = r.merchant_key(b"")
    matched: list[Shop] = []
    categories: set[str] = set()
    zones: set[str] = set()
    truncated = False
    for scanned, (key, raw) in enumerate(view.iter_prefix(prefix), start=1):
        if scanned > limits.UI_SHOPS_SCAN_MAX:
            truncated = True
            break
        merchant = r.Merchant.decode(raw)
        taken = tuple(code for code, c in sorted(campaigns.items()) if accepts(view, c, merchant))
        if not taken:
            continue
        categories.add(merchant.category)
        zones.add(merchant.zone)
        if needle and needle not in fold(merchant.name):
            continue
        if category and not merchant.category.startswith(category):
            continue
        if zone and merchant.zone != zone:
            continue
        hexkey = key[len(prefix) :].hex()
        matched.append(Shop(hexkey, merchant.name, merchant.category, merchant.zone, taken))
    matched.sort(key=lambda s: (s.zone != near if near else False, s.category, fold(s.name), s.key))
    per_page = limits.UI_SHOPS_PER_PAGE
    pages = max(1, -(-len(matched) // per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return Shops(
        matched[start : start + per_page],
        len(matched),
        page,
        pages,
        sorted(categories),
        sorted(zones),
        truncated,
    )
