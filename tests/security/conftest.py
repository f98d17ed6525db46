"""Fixtures of the security suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.harness import LiveNode


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LiveNode]:
    """A one-validator node in-process (``tests.api.harness``), closed after the test."""
    (tmp_path / "node").mkdir()
    live = LiveNode(tmp_path / "node")
    try:
        yield live
    finally:
        live.close()
