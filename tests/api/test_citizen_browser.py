"""The citizen's page and the commune's voucher status in Debian's Chromium (Playwright):
a real letter's balance link on a phone, the shops search, a phone screenshot for the
README, and axe-core finds no serious or critical accessibility violation."""

from __future__ import annotations

from typing import Final

import pytest
from playwright.sync_api import Browser, Page, expect

from node.ledger import records as r
from node.text.fmt import money
from tests.api import test_browser
from tests.api.axe import assert_no_serious_violation
from tests.api.screens import SCREENSHOTS
from tests.api.world import CAMPAIGN, World
from wallets.letters import CampaignText, balance_link
from wallets.voucher import Voucher

# Chromium driven by Playwright (and the npm test packages): slow, skipped by make test-fast.
pytestmark = pytest.mark.slow

PHONE: Final = {"width": 390, "height": 844}


browser = test_browser.browser  # the same Chromium, launched once for this module


def phone(browser: Browser, locale: str = "fr-BE") -> Page:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale=locale,
        bypass_csp=True,  # only so that the test may inject axe-core; the page sends its CSP
    )  # fmt: skip
    return context.new_page()


def letter_link(world: World) -> str:
    """The balance link exactly as ``issuer letters`` prints it for the world's voucher."""
    raw = world.node.ledger.store.get(r.campaign_key(CAMPAIGN))
    assert raw is not None
    campaign = r.Campaign.decode(raw)
    text = CampaignText(CAMPAIGN, campaign.name, "Ville de Namur", campaign.zones,
                        campaign.categories, campaign.valid_from_ms, campaign.valid_until_ms,
                        world.chain, world.node.url)  # fmt: skip
    voucher = Voucher(world.chain.upper(), world.voucher.signer.seed)
    return balance_link(text, voucher)


def test_a_letters_link_on_a_phone_shows_balance_and_where_to_spend(
    world: World, browser: Browser
) -> None:
    raw = world.node.ledger.store.get(r.holder_key(world.voucher.pk))
    assert raw is not None
    left = r.Holder.decode(raw).balance(CAMPAIGN)
    page = phone(browser)
    page.goto(letter_link(world))
    page.wait_for_url(f"{world.node.url}/ui/holder")
    expect(page.get_by_test_id("balance")).to_have_text(money(left))
    expect(page.get_by_role("heading", name="Où dépenser")).to_be_visible()
    shops = page.get_by_test_id("shop")
    expect(shops).to_have_count(2)
    expect(shops.first).to_contain_text("Boulangerie du Marché")
    assert_no_serious_violation(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "citizen.png"), full_page=True)
    # No horizontal scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_label("Nom du commerce").fill("brasserie")
    page.get_by_role("button", name="Chercher").click()
    page.wait_for_url("**/ui/holder?q=brasserie**")
    expect(shops).to_have_count(1)
    expect(shops.first).to_contain_text("Brasserie de la Place")
    page.get_by_label("Nom du commerce").fill("")
    page.get_by_label("Catégorie").select_option("47.24")
    page.get_by_role("button", name="Chercher").click()
    page.wait_for_url("**category=47.24**")
    expect(shops).to_have_count(1)
    expect(shops.first).to_contain_text("Boulangerie du Marché")
    page.context.close()


def test_the_citizen_page_in_english_has_no_serious_violation(
    world: World, browser: Browser
) -> None:
    page = phone(browser, "en-GB")
    page.goto(letter_link(world) + "?lang=en")
    page.wait_for_url(f"{world.node.url}/ui/holder")
    expect(page.get_by_role("heading", name="Where to spend")).to_be_visible()
    assert_no_serious_violation(page)
    page.context.close()


def test_the_communes_voucher_status_page_in_a_browser(world: World, browser: Browser) -> None:
    page = phone(browser)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{world.node.url}/ui/login")
    page.get_by_label("Jeton d'accès").fill(world.node.token(world.namur.signer))
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{world.node.url}/ui/commune")
    page.get_by_test_id("vouchers-link").click()
    page.wait_for_url(f"{world.node.url}/ui/commune/vouchers")
    expect(page.get_by_role("heading", level=1)).to_have_text("État des chèques")
    expect(page.locator("table.vouchers tbody tr")).not_to_have_count(0)
    page.get_by_label("État", exact=True).select_option("untouched")
    page.get_by_role("button", name="Chercher").click()
    page.wait_for_url("**status=untouched**")
    statuses = page.locator("table.vouchers tbody tr td:nth-child(2)").all_inner_texts()
    assert statuses and set(statuses) == {"Intact"}
    assert_no_serious_violation(page)
    page.screenshot(path=str(SCREENSHOTS / "commune-vouchers.png"), full_page=True)
    page.context.close()
