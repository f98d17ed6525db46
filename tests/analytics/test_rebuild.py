"""The index rebuilt from the stored blocks equals the one maintained block by block."""

from __future__ import annotations

from functools import partial

from node.analytics.index import AnalyticsIndex
from node.consensus.types import Block
from tests.analytics.conftest import History
from tests.analytics.test_aggregates import index_of
from tests.api.harness import NAMUR


def test_rebuilt_from_scratch_equals_incremental(history: History) -> None:
    node = history.node

    def rebuild() -> AnalyticsIndex:
        fresh = AnalyticsIndex(node.genesis)
        store = node.ledger.store
        blocks = (Block.decode(store.block(h) or b"") for h in range(1, store.height() + 1))
        assert fresh.catch_up(blocks) == store.height()
        return fresh

    live = index_of(history)
    fresh = node.run(rebuild)
    assert live.height() == fresh.height() == node.ledger.last_block().height > 100
    assert node.run(live.snapshot) == fresh.snapshot()
    for k in (1, 5):
        live_report = node.run(partial(live.report, NAMUR.public_key, k))
        assert live_report == fresh.report(NAMUR.public_key, k)


def test_a_block_out_of_order_is_refused(history: History) -> None:
    node = history.node
    fresh = AnalyticsIndex(node.genesis)
    raw = node.run(lambda: node.ledger.store.block(2))
    assert raw is not None
    try:
        fresh.add_block(Block.decode(raw))
    except RuntimeError as error:
        assert "cannot take block 2" in str(error)
    else:
        raise AssertionError("a gap in the blocks was accepted")
