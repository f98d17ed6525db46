"""The analytics page in a real browser: heatmap, flow matrix, multiplier, hidden cells, CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from node.analytics.report import long_rows
from tests.analytics.conftest import History
from tests.analytics.test_aggregates import index_of
from tests.api.harness import NAMUR
from tests.api.screens import SCREENSHOTS
from tests.api.test_browser import WAIT_MS, logged_in

# Chromium driven by Playwright (and the npm test packages): slow, skipped by make test-fast.
pytestmark = pytest.mark.slow


def test_the_commune_sees_its_analytics_and_exports_them(
    history: History, browser: Browser
) -> None:
    node = history.node
    page = logged_in(browser, node, node.token(NAMUR), "/ui/commune")
    page.goto(f"{node.url}/ui/commune/analytics")
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        "Analyse des flux commerciaux", timeout=WAIT_MS
    )
    heat = page.locator('[data-testid="heatmap"] rect[data-testid^="heat-"]')
    expect(heat).to_have_count(7 * 24)
    hidden = page.locator('[data-testid="heatmap"] rect[fill="url(#hidden)"]')
    assert hidden.count() > 0  # thin night hours are hidden, not drawn
    expect(page.locator('[data-testid="flow-matrix"] rect')).to_have_count(4)
    report = index_of(history).report(NAMUR.public_key, 5)
    lm3 = report.multiplier.lm3_milli
    assert lm3 is not None
    expect(page.get_by_test_id("lm3")).to_have_text(f"{lm3 // 1000},{lm3 % 1000:03d}")
    expect(page.locator('[data-testid="multiplier"] rect')).to_have_count(3)
    expect(page.get_by_test_id("flows-table")).to_contain_text("NAM-1")

    with page.expect_download() as download:
        page.get_by_role("link", name="Exporter (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == len(long_rows(report))
    assert any(r["suppressed"] == "true" and r["value"] == "" for r in rows)

    page.goto(f"{node.url}/ui/commune/analytics?lang=en")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Commercial flow analytics")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "analytics-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the analytics page is {overflow}px wider than a phone"
    page.screenshot(path=str(SCREENSHOTS / "analytics-phone.png"), full_page=True)


def test_a_merchant_may_not_read_analytics(history: History) -> None:
    node = history.node
    shop = history.town.shops[0].signer
    assert node.get("/v1/analytics/flows", node.token(shop)).status == 403
    assert node.get("/v1/analytics/flows").status == 401
