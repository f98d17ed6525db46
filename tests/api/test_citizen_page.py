"""The citizen's page: balances, history with shop names, and where to spend."""

from __future__ import annotations

import re

import pytest

from node.api.spend import accepts, fold, where_to_spend
from node.api.tokens import make_balance_code
from node.ledger import records as r
from node.ledger.state import DictView
from node.protocol import limits
from node.protocol.crypto import PublicKey, digest
from tests.api.harness import LiveNode
from tests.api.test_dashboards import cookie, page
from tests.api.world import World

HEX_KEY = re.compile(r"[0-9a-f]{64}")


def open_letter(world: World) -> str:
    """The cookie a letter's balance link sets, for the world's paper voucher."""
    code = make_balance_code(world.voucher.signer, world.chain, world.campaign_end_ms)
    opened = world.node.http("GET", f"/b/{code}")
    assert opened.status == 303
    return cookie(opened)


def letter_page(node: LiveNode, jar: str, query: str = "", lang: str = "fr") -> str:
    response = node.http(
        "GET", f"/ui/holder{query}", headers={"Cookie": f"{jar}; relance_lang={lang}"}
    )
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    return response.body.decode()


def shop_names(html: str) -> list[str]:
    return re.findall(r'<span class="shop-name">([^<]*)</span>', html)


def test_a_letter_shows_the_shops_that_take_its_voucher_and_no_others(world: World) -> None:
    html = letter_page(world.node, open_letter(world))
    # Bakery (47.24) and brasserie (56.10) are Namur's and in the campaign's categories;
    # the wholesaler (46.39) is not in them, the Liège bookshop is another commune's.
    assert shop_names(html) == ["Boulangerie du Marché", "Brasserie de la Place"]
    assert "Où dépenser" in html and "Valable jusqu" in html
    english = letter_page(world.node, open_letter(world), lang="en")
    assert "Where to spend" in english and "Valid through" in english
    # Categories in words (NACE divisions), with the code.
    assert "commerce de détail (47.24)" in html and "restauration et cafés (56.10)" in html
    assert "retail (47.24)" in english


def test_the_shops_are_searchable_and_filtered_by_category_and_zone(world: World) -> None:
    jar = open_letter(world)
    assert shop_names(letter_page(world.node, jar, "?q=marche")) == ["Boulangerie du Marché"]
    assert shop_names(letter_page(world.node, jar, "?q=BRASSERIE")) == ["Brasserie de la Place"]
    assert shop_names(letter_page(world.node, jar, "?category=56")) == ["Brasserie de la Place"]
    assert shop_names(letter_page(world.node, jar, "?zone=NAM-1")) == ["Boulangerie du Marché"]
    nothing = letter_page(world.node, jar, "?q=%3Cscript%3E")
    assert shop_names(nothing) == [] and "<script>" not in nothing and "&lt;script&gt;" in nothing


def test_the_shops_are_paged_and_links_carry_no_key(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "UI_SHOPS_PER_PAGE", 1)
    jar = open_letter(world)
    first = letter_page(world.node, jar)
    assert shop_names(first) == ["Boulangerie du Marché"] and "Page 1 / 2" in first
    second = letter_page(world.node, jar, "?page=2")
    assert shop_names(second) == ["Brasserie de la Place"]
    assert shop_names(letter_page(world.node, jar, "?page=99")) == ["Brasserie de la Place"]
    for html in (first, second):
        for link in re.findall(r'href="([^"]*)"', html):
            assert not HEX_KEY.search(link), link


def test_a_balance_code_reaches_nothing_of_another_citizen(world: World) -> None:
    jar = open_letter(world)
    others = [world.alice, world.bob, world.carol, world.dave]
    html = letter_page(world.node, jar)
    for other in others:
        assert other.pk.hex() not in html
        # Asking for another key in the query changes nothing: the page is the code's.
        asked = letter_page(world.node, jar, f"?holder={other.pk.hex()}&account={other.pk.hex()}")
        assert other.pk.hex() not in asked
        api = world.node.http("GET", f"/v1/accounts/{other.pk.hex()}/transactions",
                              headers={"Cookie": jar})  # fmt: skip
        assert api.status == 403
    assert world.voucher.pk.hex() in html  # its own key only
    assert world.node.http("GET", "/ui/merchant", headers={"Cookie": jar}).status == 403


def test_an_app_login_sees_its_history_with_shop_names(world: World) -> None:
    html = page(world.node, "/ui/holder", world.node.token(world.alice.signer)).body.decode()
    assert "Boulangerie du Marché" in html  # alice paid the bakery: named, not a key
    assert shop_names(html) == ["Boulangerie du Marché", "Brasserie de la Place"]


# --- the filter and the sort, on records -------------------------------------------------


def _merchant(issuer: bytes, name: str, category: str, zone: str, active: bool = True) -> bytes:
    record = r.Merchant(PublicKey(issuer), name, category, zone, digest(b"iban"), False, active,
                        0, ())  # fmt: skip
    return record.encode()


def _campaign(issuer: bytes) -> r.Campaign:
    return r.Campaign(PublicKey(issuer), "Relance", ("Z1", "Z2"), ("47", "56"), 0, 10**13,
                      5_000, False, 0, 0, 0, 0, 0, 0, 0, 0)  # fmt: skip


def test_accepts_is_the_ledgers_eligibility_for_the_campaigns_own_issuer() -> None:
    mine, other = b"\x01" * 32, b"\x02" * 32
    campaign = _campaign(mine)
    ok = r.Merchant.decode(_merchant(mine, "A", "47.11", "Z1"))
    empty = DictView({})
    assert accepts(empty, campaign, ok)
    assert not accepts(empty, campaign, r.Merchant.decode(_merchant(other, "A", "47.11", "Z1")))
    assert not accepts(empty, campaign, r.Merchant.decode(_merchant(mine, "A", "47.11", "Z9")))
    assert not accepts(empty, campaign, r.Merchant.decode(_merchant(mine, "A", "46.11", "Z1")))
    assert not accepts(
        empty, campaign, r.Merchant.decode(_merchant(mine, "A", "47.11", "Z1", False))
    )


def test_a_regional_campaign_is_accepted_where_the_shops_commune_consents() -> None:
    region, commune = b"\x01" * 32, b"\x02" * 32
    campaign = _campaign(region)  # zones Z1 and Z2
    shop = r.Merchant.decode(_merchant(commune, "A", "47.11", "Z1"))
    elsewhere = r.Merchant.decode(_merchant(commune, "B", "47.11", "Z2"))
    consent = DictView({r.consent_key(region, commune): r.Consent(("Z1",)).encode()})
    assert accepts(consent, campaign, shop)
    assert not accepts(consent, campaign, elsewhere)  # Z2 not consented
    assert not accepts(DictView({}), campaign, shop)  # no consent
    view = DictView({r.merchant_key(bytes([10]) * 32): _merchant(commune, "A", "47.11", "Z1"),
                     r.consent_key(region, commune): r.Consent(("Z1",)).encode()})  # fmt: skip
    assert [s.name for s in where_to_spend(view, {"R": campaign}).items] == ["A"]


def test_shops_sort_by_the_holders_zone_then_category_then_name() -> None:
    issuer = b"\x01" * 32
    view = DictView({
        r.merchant_key(bytes([10]) * 32): _merchant(issuer, "Épicerie", "47.11", "Z1"),
        r.merchant_key(bytes([11]) * 32): _merchant(issuer, "café", "56.30", "Z2"),
        r.merchant_key(bytes([12]) * 32): _merchant(issuer, "Boucherie", "47.22", "Z2"),
        r.merchant_key(bytes([13]) * 32): _merchant(issuer, "Atelier", "47.11", "Z1"),
    })  # fmt: skip
    campaigns = {"C": _campaign(issuer)}
    names = [s.name for s in where_to_spend(view, campaigns).items]
    assert names == ["Atelier", "Épicerie", "Boucherie", "café"]
    near = [s.name for s in where_to_spend(view, campaigns, near="Z2").items]
    assert near == ["Boucherie", "café", "Atelier", "Épicerie"]
    found = where_to_spend(view, campaigns, search="epic")
    assert [s.name for s in found.items] == ["Épicerie"] and found.total == 1
    assert found.categories == ["47.11", "47.22", "56.30"] and found.zones == ["Z1", "Z2"]
    assert where_to_spend(view, {}).total == 0
    assert fold("Crème Brûlée") == "creme brulee"


def test_the_scan_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = b"\x01" * 32
    view = DictView({
        r.merchant_key(bytes([n]) * 32): _merchant(issuer, f"S{n}", "47.11", "Z1")
        for n in range(5)
    })  # fmt: skip
    monkeypatch.setattr(limits, "UI_SHOPS_SCAN_MAX", 3)
    found = where_to_spend(view, {"C": _campaign(issuer)})
    assert found.total == 3 and found.truncated
