"""The commune statement as the node now computes it off its loop: the store read in
one snapshot (``gather``), folded from that plain data (in a worker process), then
reconciled with the bank's journal; equal, to the byte, to the statement read from
the store directly."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.settlement import statement
from node.store.blockstore import BlockStore
from tests.analytics.test_every_view import ChainStore
from tests.analytics.test_regional import _chain as regional_chain
from tests.ledger.world import CHAIN_ID
from tools.audit.history import T0_MS, demo_history


@pytest.mark.parametrize(("from_ms", "to_ms"), [(0, 2**62), (T0_MS + 4_500, T0_MS + 9_500)])
def test_gathered_statement_equals_the_one_read_from_the_store(
    tmp_path: Path, from_ms: int, to_ms: int
) -> None:
    genesis, actors, _ = demo_history(tmp_path / "data")
    store = BlockStore.open(tmp_path / "data", genesis.genesis_hash, create=False)
    try:
        issuer = actors.issuers[0].public_key
        chain = genesis.chain_id
        direct = statement.compute(store, chain, None, issuer, None, from_ms, to_ms)
        snapshot = store.read_snapshot()
        try:
            gathered = statement.gather(snapshot, issuer, 1 << 30)
        finally:
            snapshot.close()
        shipped = pickle.loads(pickle.dumps(gathered))  # what a worker process receives
        folded = pickle.loads(
            pickle.dumps(statement.fold(shipped, chain, issuer, None, from_ms, to_ms))
        )
        offloaded = statement.reconcile(folded, None)
    finally:
        store.close()
    assert direct.campaigns and direct.payouts  # a statement with content
    assert offloaded == direct
    assert statement.to_csv(offloaded) == statement.to_csv(direct)


def test_a_history_past_the_cap_is_refused(tmp_path: Path) -> None:
    genesis, actors, _ = demo_history(tmp_path / "data")
    store = BlockStore.open(tmp_path / "data", genesis.genesis_hash, create=False)
    try:
        with pytest.raises(statement.TooLarge):
            statement.gather(store, actors.issuers[0].public_key, 1_000)
    finally:
        store.close()


def test_a_snapshot_does_not_see_what_commits_after_it(tmp_path: Path) -> None:
    genesis, _, _ = demo_history(tmp_path / "data")
    store = BlockStore.open(tmp_path / "data", genesis.genesis_hash, create=False)
    try:
        top = store.height()
        before = [store.block(h) for h in range(1, top + 1)]
        snapshot = store.read_snapshot()
        store.commit_block(top + 1, b"block", b"cert", b"root", {b"k": b"v"}, [])
        assert (snapshot.height(), snapshot.get(b"k"), snapshot.block(top + 1)) == (top, None, None)
        assert list(snapshot.blocks(1, top + 1)) == before
        assert list(store.blocks(1, top + 1)) == [*before, b"block"]
        snapshot.close()
    finally:
        store.close()


class _ChainBlocks(ChainStore):
    """The regional story's chain, read as ``gather`` reads a store snapshot."""

    def blocks(self, first: int, last: int) -> Iterator[bytes]:
        for height in range(first, last + 1):
            raw = self.block(height)
            if raw is not None:
                yield raw


def test_the_gathered_statement_keeps_the_regional_lines_and_the_regions_names() -> None:
    chain = regional_chain()
    store = _ChainBlocks(chain)
    namur = chain.world.namur.public_key
    direct = statement.compute(store, CHAIN_ID, None, namur, None, 0, 2**62)
    gathered = pickle.loads(pickle.dumps(statement.gather(store, namur, 1 << 30)))  # type: ignore[arg-type]
    folded = statement.fold(gathered, CHAIN_ID, namur, None, 0, 2**62)
    offloaded = statement.reconcile(pickle.loads(pickle.dumps(folded)), None)
    assert [(g.region_name, g.name, g.paid_cents) for g in direct.regional] == [
        ("Wallonie", "Boulangerie", 5_010)
    ]
    assert offloaded == direct
