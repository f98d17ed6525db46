"""One certified history (``tools.audit.history.demo_history``), written once per session.

Each test gets its own copy of the data directory, to tamper with as it likes.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import plyvel
import pytest

from node.consensus.types import Block, Certificate
from node.protocol.genesis import Genesis, render
from tools.audit.chain import Auditor, AuditResult
from tools.audit.history import Actors, demo_history
from tools.audit.sources import DataDirSource


@dataclass(frozen=True)
class History:
    genesis: Genesis
    actors: Actors
    data: Path  # a private copy
    genesis_file: Path


@pytest.fixture(scope="session")
def _pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Genesis, Actors, Path]:
    root = tmp_path_factory.mktemp("audit-history")
    genesis, actors, _ = demo_history(root / "data")
    return genesis, actors, root / "data"


@pytest.fixture
def history(_pristine: tuple[Genesis, Actors, Path], tmp_path: Path) -> History:
    genesis, actors, data = _pristine
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    genesis_file = tmp_path / "genesis.toml"
    genesis_file.write_text(render(genesis), encoding="utf-8")
    return History(genesis, actors, copy, genesis_file)


def height_key(table: bytes, height: int) -> bytes:
    return table + struct.pack(">Q", height)


def edit(path: Path, change: Callable[[plyvel.DB], None]) -> None:
    db = plyvel.DB(str(path))
    try:
        change(db)
    finally:
        db.close()


def read_block(path: Path, height: int) -> tuple[Block, Certificate]:
    db = plyvel.DB(str(path))
    try:
        block = Block.decode(db.get(height_key(b"b/", height)))
        cert = Certificate.decode(db.get(height_key(b"c/", height)))
    finally:
        db.close()
    return block, cert


def audit(history: History, processes: bool = False) -> AuditResult:
    source = DataDirSource(history.data, history.genesis.genesis_hash)
    try:
        return Auditor(history.genesis, source, source, workers=2, processes=processes).run()
    finally:
        source.close()
