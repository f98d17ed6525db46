"""One live node with the test world for the whole API test session, and Debian's
chromium driven by Playwright for the browser tests (one per test module)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.api.harness import LiveNode
from tests.api.world import World, seed


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    node = LiveNode(Path(tmp_path_factory.mktemp("api-node")))
    try:
        yield seed(node)
    finally:
        node.close()


CHROMIUM = "/usr/bin/chromium"  # Debian's (make system-deps): Playwright downloads no browser
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), "chromium is installed by 'make test' (Debian's package)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
