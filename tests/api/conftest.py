"""One live node with the test world for the whole API test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.harness import LiveNode
from tests.api.world import World, seed


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    node = LiveNode(Path(tmp_path_factory.mktemp("api-node")))
    try:
        yield seed(node)
    finally:
        node.close()
