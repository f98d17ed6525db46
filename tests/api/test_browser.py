"""The dashboards in a real browser (Debian's chromium, driven by Playwright): log in with
a wallet token, see a payment made through the API appear live on the merchant's and the
commune's pages, filter, export CSV, and a holder's balance."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from node.ledger import tx as t
from node.text.fmt import money
from tests.api.harness import LiveNode
from tests.api.world import CAMPAIGN, World

# Chromium driven by Playwright (and the npm test packages): slow, skipped by make test-fast.
pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), "chromium is installed by 'make test' (Debian's package)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def logged_in(browser: Browser, node: LiveNode, token: str, path: str) -> Page:
    page = browser.new_context(accept_downloads=True, locale="fr-BE").new_page()
    page.goto(f"{node.url}/ui/login")
    page.get_by_label("Jeton d'accès").fill(token)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{node.url}{path}")
    expect(page.locator("body")).to_have_attribute("data-stream", "open", timeout=WAIT_MS)
    return page


def test_a_payment_appears_live_and_the_commune_filters_and_exports(
    world: World, browser: Browser
) -> None:
    node = world.node
    merchant = logged_in(browser, node, node.token(world.bakery.signer), "/ui/merchant")
    commune = logged_in(browser, node, node.token(world.namur.signer), "/ui/commune")
    expect(merchant.get_by_role("heading", level=1)).to_have_text("Boulangerie du Marché")
    expect(merchant.get_by_text("croissants")).to_have_count(0)

    paid = world.carol.sign(world.chain, t.Pay(CAMPAIGN, world.bakery.pk, 275, "croissants"))
    response = node.post_json("/v1/transactions?wait=true", {"tx": paid.encode().hex()})
    assert response.status == 200, response.body

    for page in (merchant, commune):  # no reload: the stream brings it
        row = page.locator(f'tr[data-tx="{paid.tx_id.hex()}"]')
        expect(row).to_be_visible(timeout=WAIT_MS)
        expect(row).to_contain_text("croissants")
        expect(row).to_contain_text(money(275))
    spent = node.get(f"/v1/campaigns/{CAMPAIGN}").json()["spent_cents"]
    expect(commune.locator(f'tr[data-campaign="{CAMPAIGN}"] [data-testid="spent"]')).to_have_text(
        money(int(str(spent)))
    )

    commune.get_by_label("Type").select_option("transfer")
    commune.get_by_role("button", name="Filtrer").click()
    commune.wait_for_url("**/ui/commune?kind=transfer**")
    kinds = commune.locator("table.history tbody tr td:nth-child(2)").all_inner_texts()
    assert kinds and set(kinds) == {"Transfert"}

    with commune.expect_download() as download:
        commune.get_by_role("link", name="Exporter en CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    token = node.token(world.namur.signer)
    ledger = node.get("/v1/transactions?kind=transfer&limit=500", token).json()["items"]
    assert isinstance(ledger, list) and ledger
    assert [(r["tx_id"], r["amount_cents"]) for r in rows] == [
        (i["tx_id"], str(i["amount_cents"])) for i in ledger
    ]


def test_a_holder_sees_its_balance_in_english(world: World, browser: Browser) -> None:
    node = world.node
    page = logged_in(browser, node, node.token(world.alice.signer), "/ui/holder")
    page.goto(f"{node.url}/ui/holder?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    tile = page.locator(f'[data-campaign="{CAMPAIGN}"] [data-testid="balance"]')
    expect(tile).to_have_text(money(3_766))  # 37,66 € in Belgian format in both languages
    expect(page.get_by_role("heading", name="History")).to_be_visible()
