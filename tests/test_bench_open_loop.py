"""The open-loop sender of `relance-bench cluster --rate`: it keeps its schedule whatever
the answers do, and measures latency from the scheduled send time (no coordinated
omission)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tools.bench.open_loop import percentile_ms, run_open_loop

TXS = [i.to_bytes(4, "big") for i in range(400)]


def test_the_sender_keeps_the_asked_rate_and_batches() -> None:
    batches: list[Sequence[bytes]] = []

    async def instant(number: int, batch: Sequence[bytes]) -> list[int | None]:
        batches.append(batch)
        return [1] * len(batch)

    figures = asyncio.run(run_open_loop(TXS[:200], 400.0, instant, drain_s=5))
    assert [tx for batch in batches for tx in batch] == TXS[:200]  # in order, each once
    assert 10 < len(batches) < 200  # about one batch a tick, not one post a transaction
    assert figures.asked_tx_per_s == 400.0
    assert figures.sent_tx_per_s == pytest.approx(400.0, rel=0.2)
    assert (figures.submitted, figures.committed, figures.failed) == (200, 200, 0)
    assert figures.p99_ms < 1000


def test_latency_runs_from_the_scheduled_time_not_the_send() -> None:
    """One connection, 100 ms a post: later batches wait behind earlier ones. A closed
    loop would say 100 ms; the schedule says how late the last payments really were."""
    answered_s = 0.1

    async def slow(number: int, batch: Sequence[bytes]) -> list[int | None]:
        await asyncio.sleep(answered_s)
        return [7] * len(batch)

    figures = asyncio.run(run_open_loop(TXS[:30], 100.0, slow, drain_s=10, in_flight_max=1))
    assert figures.committed == 30
    assert figures.sent_tx_per_s == pytest.approx(100.0, rel=0.25)  # the schedule held
    assert figures.p50_ms > 2 * 1000 * answered_s
    assert figures.p99_ms > 6 * 1000 * answered_s  # about 14 batches queued behind one another


def test_refused_and_unanswered_payments_are_failures() -> None:
    async def half(number: int, batch: Sequence[bytes]) -> list[int | None]:
        return [None if tx[-1] % 2 else 3 for tx in batch]

    figures = asyncio.run(run_open_loop(TXS[:40], 200.0, half, drain_s=5))
    assert (figures.committed, figures.failed) == (20, 20)

    async def never(number: int, batch: Sequence[bytes]) -> list[int | None]:
        await asyncio.sleep(60)
        return [1] * len(batch)

    figures = asyncio.run(run_open_loop(TXS[:10], 100.0, never, drain_s=0.2))
    assert (figures.committed, figures.failed) == (0, 10)
    assert figures.p99_ms == 0.0


def test_a_rate_is_above_zero() -> None:
    async def instant(number: int, batch: Sequence[bytes]) -> list[int | None]:
        return [1] * len(batch)

    with pytest.raises(ValueError, match="above 0"):
        asyncio.run(run_open_loop(TXS, 0.0, instant, drain_s=1))


def test_percentiles_are_nearest_rank() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1 .. 100 ms
    assert percentile_ms(values, 0.50) == pytest.approx(50.0)
    assert percentile_ms(values, 0.90) == pytest.approx(90.0)
    assert percentile_ms(values, 0.99) == pytest.approx(99.0)
    assert percentile_ms([0.25], 0.99) == 250.0
    assert percentile_ms([], 0.5) == 0.0
