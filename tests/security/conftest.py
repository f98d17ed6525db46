"""Fixtures of the security suite."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from node.api.operation import AnyRoutes
from node.api.routes.settlement import routes
from node.settlement.journal import Journal, Schedule
from node.settlement.service import SettlementService
from tests.api.harness import LiveNode
from tests.api.world import World, seed


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LiveNode]:
    """A one-validator node in-process (``tests.api.harness``), closed after the test."""
    (tmp_path / "node").mkdir()
    live = LiveNode(tmp_path / "node")
    try:
        yield live
    finally:
        live.close()


def settlement_routes(node: LiveNode) -> Sequence[AnyRoutes]:
    """The bank's routes over a real, empty settlement journal (no service running: the
    routes read the journal, and an IBAN registration writes it with the default schedule)."""
    journal = Journal.open(node.root / "bank" / "journal.sqlite")
    journal.create_schema()
    settings = SimpleNamespace(default_schedule=Schedule.DAILY)
    service = SimpleNamespace(journal=journal, settings=settings)
    return (routes(cast(SettlementService, service)),)


@pytest.fixture(scope="session")
def secure_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A node with the API tests' world (``tests/api/world.py``) and the bank's settlement
    routes, shared by the login, input, stream and fuzz tests (its own node: they spend
    login links and open streams)."""
    node = LiveNode(Path(tmp_path_factory.mktemp("security-node")), extra_routes=settlement_routes)
    try:
        yield seed(node)
    finally:
        node.close()
