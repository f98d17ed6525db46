"""The history index rebuilds from the blocks alone; the rate limiter is a bounded token
bucket on an injected clock."""

from __future__ import annotations

from pathlib import Path

from node.api.ratelimit import RateLimiter
from node.consensus.types import Block
from node.protocol import limits
from node.views.history_index import HistoryIndex
from tests.api.world import World


def test_the_index_is_rebuilt_from_the_blocks(world: World, tmp_path: Path) -> None:
    node = world.node

    def rebuild() -> tuple[list[object], list[object]]:
        store = node.ledger.store
        blocks = (Block.decode(store.block(h) or b"") for h in range(1, store.height() + 1))
        fresh = HistoryIndex.open(tmp_path / "rebuilt")
        try:
            assert fresh.catch_up(blocks, node.genesis.chain_id, store) == store.height()
            assert fresh.height() == node.index.height() == store.height()
            accounts = [None, world.alice.pk, world.namur.pk, world.bakery.pk, world.bank.pk]
            ours = [node.index.history(a, None, frozenset(), 500, 10_000) for a in accounts]
            theirs = [fresh.history(a, None, frozenset(), 500, 10_000) for a in accounts]
            return list(ours), list(theirs)
        finally:
            fresh.close()

    ours, theirs = node.run(rebuild)
    assert ours == theirs
    assert ours[0][0]  # type: ignore[index]


def test_the_rate_limiter_refills_at_its_rate_and_forgets_old_clients() -> None:
    now = [0]
    limiter = RateLimiter(per_s=2.0, burst=3, clock_ms=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another client has its own bucket
    now[0] += 499
    assert not limiter.allow("a")
    now[0] += 1  # half a second at 2 a second: one more request
    assert limiter.allow("a") and not limiter.allow("a")
    for n in range(limits.HTTP_RATE_CLIENTS_MAX + 10):
        limiter.allow(f"client-{n}")
    assert len(limiter._buckets) == limits.HTTP_RATE_CLIENTS_MAX
