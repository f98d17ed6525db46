"""Every page a person opens, in French and English, in Debian's Chromium (Playwright):
axe-core finds no serious or critical accessibility violation on the login page, the
commune's dashboard and analytics, the shop's page, the holder's page (app login and a
letter's balance link) and the auditor's page; and the screenshots of each role's page,
at a desktop and a phone size, that the README shows (tests/api/screens.py; the analytics
page's are taken on a month of town history by tests/analytics/test_browser_analytics.py)."""

from __future__ import annotations

from typing import Final

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.api import test_browser
from tests.api.axe import assert_no_serious_violation
from tests.api.screens import SCREENSHOTS
from tests.api.test_citizen_browser import letter_link
from tests.api.world import World

# Chromium driven by Playwright (and the npm test packages): slow, skipped by make test-fast.
pytestmark = pytest.mark.slow

PHONE: Final[ViewportSize] = {"width": 390, "height": 844}
DESKTOP: Final[ViewportSize] = {"width": 1280, "height": 900}
LOCALES: Final = {"fr": "fr-BE", "en": "en-GB"}

browser = test_browser.browser  # the same Chromium, launched once for this module


def _page(browser: Browser, lang: str, viewport: ViewportSize = DESKTOP) -> Page:
    phone = viewport == PHONE
    context = browser.new_context(
        viewport=viewport, is_mobile=phone, has_touch=phone, locale=LOCALES[lang],
        device_scale_factor=2 if phone else 1,
        bypass_csp=True,  # only so that the test may inject axe-core; the page sends its CSP
    )  # fmt: skip
    # No live stream: these pages are only looked at, and the node counts a client's open
    # streams (HTTP_STREAM_SUBSCRIBERS_PER_CLIENT_MAX) until it next writes to a closed one,
    # so dozens of short-lived pages would leave the live tests that follow a 429.
    context.route("**/v1/stream", lambda route: route.abort())
    return context.new_page()


def _account(world: World, role: str) -> tuple[str, str]:
    """The token of the world's account for a role, and the page its login lands on."""
    node = world.node
    return {
        "commune": (node.token(world.namur.signer), "/ui/commune"),
        "merchant": (node.token(world.bakery.signer), "/ui/merchant"),
        "holder": (node.token(world.alice.signer), "/ui/holder"),
        "auditor": (node.token(world.auditor.signer), "/ui/auditor"),
    }[role]


def _logged_in(
    browser: Browser, world: World, role: str, lang: str, viewport: ViewportSize
) -> Page:
    token, home = _account(world, role)
    page = _page(browser, lang, viewport)
    page.goto(f"{world.node.url}/ui/login?lang={lang}")
    page.locator("#token").fill(token)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{world.node.url}{home}")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    return page


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_login_page_and_a_failed_login(world: World, browser: Browser, lang: str) -> None:
    page = _page(browser, lang, PHONE)
    try:
        page.goto(f"{world.node.url}/ui/login?lang={lang}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert_no_serious_violation(page)
        page.locator("#token").fill("not-a-token")
        page.locator("form button[type=submit]").click()
        expect(page.locator("[role=alert], .error").first).to_be_visible()
        assert_no_serious_violation(page)  # the error shown
    finally:
        page.context.close()


PAGES: Final = [
    ("commune", "/ui/commune"),
    ("commune", "/ui/commune/analytics"),
    ("merchant", "/ui/merchant"),
    ("holder", "/ui/holder"),
    ("auditor", "/ui/auditor"),
]


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize(("role", "path"), PAGES)
def test_each_roles_page_has_no_serious_violation(
    world: World, browser: Browser, role: str, path: str, lang: str
) -> None:
    for viewport in (DESKTOP, PHONE):
        page = _logged_in(browser, world, role, lang, viewport)
        try:
            if page.url != f"{world.node.url}{path}":
                page.goto(f"{world.node.url}{path}")
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            assert_no_serious_violation(page)
        finally:
            page.context.close()


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_letters_balance_page_has_no_serious_violation(
    world: World, browser: Browser, lang: str
) -> None:
    page = _page(browser, lang, PHONE)
    try:
        page.goto(letter_link(world) + f"?lang={lang}")
        page.wait_for_url(f"{world.node.url}/ui/holder")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert_no_serious_violation(page)
    finally:
        page.context.close()


SHOTS: Final = [
    ("commune", "/ui/commune", "commune"),
    ("merchant", "/ui/merchant", "merchant"),
    ("auditor", "/ui/auditor", "auditor"),
]


@pytest.mark.parametrize(("role", "path", "name"), SHOTS)
def test_each_roles_page_screenshots_at_desktop_and_phone_size(
    world: World, browser: Browser, role: str, path: str, name: str
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = _logged_in(browser, world, role, "fr", viewport)
        try:
            if page.url != f"{world.node.url}{path}":
                page.goto(f"{world.node.url}{path}")
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than a {size} screen"
        finally:
            page.context.close()


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_page_refused_to_a_role_has_no_serious_violation(
    world: World, browser: Browser, lang: str
) -> None:
    page = _logged_in(browser, world, "merchant", lang, PHONE)
    try:
        response = page.goto(f"{world.node.url}/ui/commune")
        assert response is not None and response.status == 403
        assert_no_serious_violation(page)
    finally:
        page.context.close()
