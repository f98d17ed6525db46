"""The bank's dashboard in a real browser (Debian's chromium, driven by Playwright): the
login lands on it, it fits a phone and a desktop (screenshots in docs/screenshots/ for
the README), the CSV downloads, and axe-core (pinned by package-lock.json, installed by
the Makefile) finds no serious or critical accessibility violation."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.api import test_browser
from tests.api.axe import assert_no_serious_violation
from tests.api.bank_world import BankWorld, bank_world
from tests.api.screens import SCREENSHOTS
from tests.api.test_browser import WAIT_MS

# Chromium driven by Playwright (and the npm test packages): slow, skipped by make test-fast.
pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BankWorld]:
    with bank_world(Path(tmp_path_factory.mktemp("bank-browser"))) as world:
        yield world


browser = test_browser.browser  # the same Chromium fixture, launched once for this module


def _bank_page(browser: Browser, bank: BankWorld, viewport: dict[str, int], lang: str) -> Page:
    context = browser.new_context(
        viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE,
        locale="fr-BE" if lang == "fr" else "en-GB", accept_downloads=True,
        bypass_csp=True,  # only so that the test can inject axe-core; the page sets its CSP
    )  # fmt: skip
    page = context.new_page()
    token = bank.node.token(bank.world.bank.signer)
    page.goto(f"{bank.node.url}/ui/login?token={token}&lang={lang}")
    page.wait_for_url(f"{bank.node.url}/ui/bank")
    expect(page.locator("body")).to_have_attribute("data-stream", "open", timeout=WAIT_MS)
    return page


@pytest.mark.parametrize(("name", "viewport", "lang"), [("phone", PHONE, "fr"),
                                                        ("desktop", DESKTOP, "en")])  # fmt: skip
def test_the_bank_dashboard_fits_and_passes_axe(
    browser: Browser, bank: BankWorld, name: str, viewport: dict[str, int], lang: str
) -> None:
    page = _bank_page(browser, bank, viewport, lang)
    try:
        heading = "Tableau de bord de la banque" if lang == "fr" else "Bank dashboard"
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.locator('[data-testid="reason"]').first).to_have_text("AC04")
        expect(page.locator('tr[data-state="failed"]')).to_be_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a {name} screen"
        assert_no_serious_violation(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"bank-{name}.png"), full_page=name == "desktop")
    finally:
        page.context.close()


def test_the_csv_downloads_from_the_dashboard(browser: Browser, bank: BankWorld) -> None:
    page = _bank_page(browser, bank, DESKTOP, "en")
    try:
        with page.expect_download() as download:
            page.get_by_role("link", name="Export the payouts as CSV").click()
        path = download.value.path()
        rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
        assert {bytes.fromhex(r["payout_id"]) for r in rows} == set(bank.ids.values())
    finally:
        page.context.close()
