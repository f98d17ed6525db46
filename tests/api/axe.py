"""The browser tests' one accessibility check: axe-core (pinned by package-lock.json,
installed by ``npm ci``) run on the page as it is, keeping the serious and critical
violations. The page's own CSP refuses injected scripts, so the browser context that
calls this is made with ``bypass_csp=True`` (only the test injects; the page keeps its
CSP)."""

from __future__ import annotations

from typing import Final

from playwright.sync_api import Page

from tools import frontend

SERIOUS: Final = (
    "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
    ".map(v => v.id + ' (' + v.impact + '): '"
    " + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))"
)


def serious_violations(page: Page) -> list[str]:
    """The serious and critical violations axe-core finds on the page, one line each
    (rule, impact, the first three elements); injects axe-core once per document."""
    assert frontend.AXE.exists(), "axe-core is installed by 'make test' (npm ci, package-lock.json)"
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(content=frontend.AXE.read_text(encoding="utf-8"))
    found: list[str] = page.evaluate(SERIOUS)
    return found


def assert_no_serious_violation(page: Page) -> None:
    found = serious_violations(page)
    assert found == [], f"{page.url}:\n" + "\n".join(found)
