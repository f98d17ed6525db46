"""One in-process node with the API tests' world and the bank's settlement routes, for the
security suite (its own node: the suite spends login links and opens streams)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from node.api import settlement_routes
from node.api.routes import Operation
from node.settlement.journal import Journal
from node.settlement.service import SettlementService
from tests.api.harness import LiveNode
from tests.api.world import World, seed


def settlement_operations(node: LiveNode) -> Sequence[Operation]:
    """The bank's routes over a real, empty settlement journal (no service running:
    the routes read the journal only)."""
    journal = Journal.open(node.root / "bank" / "journal.sqlite")
    journal.create_schema()
    return settlement_routes.operations(cast(SettlementService, SimpleNamespace(journal=journal)))


@pytest.fixture(scope="session")
def secure_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    node = LiveNode(
        Path(tmp_path_factory.mktemp("security-node")), extra_operations=settlement_operations
    )
    try:
        yield seed(node)
    finally:
        node.close()
