"""One commit path (``node.app.commit``) for the node, ``HistoryWriter`` and the bench.

The node replays a written history to the same stored bytes; the bench's blocks are
certified blocks an audit accepts; the chain refuses a block its execution does not
match, writing nothing; and no other code in the node or the tools writes a block.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from node.app.certified import HistoryWriter
from node.app.commit import Chain
from node.app.ledger_app import LedgerApp
from node.app.sigverify import SignatureVerifier
from node.consensus.mempool import Mempool
from node.consensus.types import Block, Certificate
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.state import ROLE_PREFIXES
from node.protocol import limits
from node.protocol.errors import AppInvariantBroken
from node.store.blockstore import BlockStore
from tests.node.test_backup import records as stored_records
from tools.audit.chain import Auditor
from tools.audit.history import demo_history
from tools.audit.sources import DataDirSource
from tools.bench import cli as bench

ROOT = Path(__file__).resolve().parents[2]


def _audit(path: Path, writer: HistoryWriter) -> None:
    source = DataDirSource(path, writer.genesis.genesis_hash)
    try:
        result = Auditor(writer.genesis, source, source, workers=1).run()
    finally:
        source.close()
    assert result.ok, result.divergence
    assert result.heights_checked == writer.height and result.stored_state_checked


def test_the_node_replays_a_written_history_to_the_same_stored_bytes(tmp_path: Path) -> None:
    """Every kind of transaction, written by ``HistoryWriter``, then proposed to and
    finalised by a node on an empty store: both stores hold the same bytes."""
    genesis, _, writer = demo_history(tmp_path / "written")
    written = BlockStore.open(tmp_path / "written", genesis.genesis_hash, create=False)
    try:
        top = written.height()
        certified = [
            (
                Block.decode(written.block(h) or b""),
                Certificate.decode(written.certificate(h) or b""),
            )
            for h in range(1, top + 1)
        ]
        last_root = written.state_root(top)
    finally:
        written.close()
    store = BlockStore.open(tmp_path / "node", genesis.genesis_hash, create=True)
    verifier = SignatureVerifier(1)
    try:
        app = LedgerApp(genesis, store, Mempool(), verifier)
        for block, certificate in certified:
            assert app.process_proposal(block)
            app.finalize_block(block, certificate)
        assert app.last_block().height == top == writer.height
        assert app.tree.root() == last_root
    finally:
        verifier.close()
        store.close()
    assert stored_records(tmp_path / "node") == stored_records(tmp_path / "written")


def test_a_chain_opened_on_a_store_indexes_the_role_keys_it_holds(tmp_path: Path) -> None:
    """Whatever wrote the store (blocks, a restored backup, state sync), the role keys
    are indexed from it when the chain opens, and kept by each commit after."""
    genesis, actors, _ = demo_history(tmp_path / "written")
    store = BlockStore.open(tmp_path / "written", genesis.genesis_hash, create=False)
    try:
        records = Chain(store, genesis).records
        for prefix in ROLE_PREFIXES:
            assert records.indexed_keys(prefix) == {k for k, _ in store.iter_prefix(prefix)}
        shop = actors.merchants[0].public_key
        assert records.indexed_keys(r.merchant_key(b"")) >= {r.merchant_key(shop)}
        assert records.known_absent(r.merchant_key(actors.holders[0].public_key))
    finally:
        store.close()


def test_the_bench_writes_certified_blocks_an_audit_accepts(tmp_path: Path) -> None:
    writer, people, shops, _ = bench._setup(tmp_path / "db", 40, 3, 6)
    try:
        payments = bench._payments(people, shops, 12)
        assert bench._commit(writer, payments[:6]) == [Result.OK] * 6  # verified inline
        decoded = bench._decoded(payments[6:])
        verdicts = [True] * 6  # as checked ahead, elsewhere
        assert bench._commit(writer, payments[6:], verdicts, decoded) == [Result.OK] * 6
        top = writer.height
        block = Block.decode(writer.store.block(top) or b"")
        assert block.txs == tuple(payments[6:])
        assert block.header.state_root == writer.tree.root()
        assert Certificate.decode(writer.store.certificate(top) or b"").block_hash == block.hash()
    finally:
        writer.close()
    _audit(tmp_path / "db", writer)


def test_the_bench_writes_nothing_of_a_block_with_a_bad_signature(tmp_path: Path) -> None:
    writer, people, shops, _ = bench._setup(tmp_path / "db", 10, 2, 3)
    try:
        payments = bench._payments(people, shops, 3)
        height, root = writer.height, writer.tree.root()
        results = bench._commit(writer, payments, [True, False, True], bench._decoded(payments))
        assert results == [Result.OK, Result.BAD_SIGNATURE]  # the block ends at the bad one
        assert (writer.height, writer.tree.root()) == (height, root)
        assert bench._commit(writer, payments) == [Result.OK] * 3
    finally:
        writer.close()


def test_the_bench_sets_up_more_merchants_than_a_block_holds(tmp_path: Path) -> None:
    writer, _, _, _ = bench._setup(tmp_path / "db", 1, limits.BLOCK_TXS_MAX + 1, 1)
    try:
        first = Block.decode(writer.store.block(1) or b"")
        second = Block.decode(writer.store.block(2) or b"")
    finally:
        writer.close()
    assert len(first.txs) == limits.BLOCK_TXS_MAX  # the merchants, then the rest
    assert len(second.txs) == 1 + 1 + 1  # the last merchant, the campaign, its funding


def test_the_chain_refuses_a_block_its_execution_does_not_match(tmp_path: Path) -> None:
    genesis, _, _ = demo_history(tmp_path / "written")
    written = BlockStore.open(tmp_path / "written", genesis.genesis_hash, create=False)
    try:
        first = Block.decode(written.block(1) or b"")
        certificate = Certificate.decode(written.certificate(1) or b"")
    finally:
        written.close()
    store = BlockStore.open(tmp_path / "node", genesis.genesis_hash, create=True)
    try:
        chain = Chain(store, genesis)
        genesis_root = chain.tree.root()
        decoded = [t.decode_tx(data, genesis.chain_id) for data in first.txs[:-1]]
        short = chain.execute(1, first.header.time_ms, decoded, [True] * len(decoded))
        assert short.all_ok and short.staged.root != first.header.state_root
        with pytest.raises(AppInvariantBroken):
            chain.commit(first, certificate, short)
        assert (store.height(), chain.tree.root(), chain.last.height) == (0, genesis_root, 0)
        whole = [t.decode_tx(data, genesis.chain_id) for data in first.txs]
        chain.commit(
            first, certificate, chain.execute(1, first.header.time_ms, whole, [True] * len(whole))
        )
        assert (store.height(), chain.tree.root()) == (1, first.header.state_root)
    finally:
        store.close()


def test_only_the_commit_path_writes_blocks_and_the_genesis_state() -> None:
    writers = re.compile(r"\.(commit_block|write_genesis_state)\(")
    found = sorted(
        str(path.relative_to(ROOT))
        for folder in ("node", "tools", "devnet")
        if (ROOT / folder).is_dir()
        for path in (ROOT / folder).rglob("*.py")
        if writers.search(path.read_text(encoding="utf-8"))
    )
    assert found == ["node/app/commit.py"]
