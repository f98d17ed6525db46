"""Open-loop load: transactions sent on a fixed schedule, whatever the answers do.

Transaction ``i`` is due at ``start + i / rate``. Every ``tick_s`` (or at the next
due time when the rate is low) the sender posts, as one batch, every transaction
that has fallen due, without waiting for earlier batches to be answered: a slow
answer does not slow the schedule down. A transaction's latency runs from its
*scheduled* time to the answer that says it is in a block, so the time it spent
waiting in the sender (for its batch, or for one of the ``in_flight_max``
connections) counts: coordinated omission is not hidden. Batches still unanswered
``drain_s`` after the last send are cancelled and counted as failed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

TICK_S: Final = 0.02  # batches per second at most: 50
IN_FLIGHT_MAX: Final = 64  # batches posted and not yet answered
RATE_MAX: Final = 1_000_000.0  # tx/s: far above what one machine commits

# post(batch number, transactions) -> for each transaction its height, None if not in a block
Post = Callable[[int, Sequence[bytes]], Awaitable[list[int | None]]]


@dataclass(frozen=True, slots=True)
class RateFigures:
    asked_tx_per_s: float
    sent_tx_per_s: float  # what the sender achieved: transactions / seconds to the last send
    committed_tx_per_s: float  # committed / the same seconds
    submitted: int
    committed: int
    failed: int  # not in a block, refused, or unanswered in time
    p50_ms: float
    p90_ms: float
    p99_ms: float
    lag_max_ms: float  # the sender's worst delay behind its schedule (its own slowness)
    seconds: float

    def as_json(self) -> dict[str, float | int]:
        return {
            "asked_tx_per_s": round(self.asked_tx_per_s, 1),
            "sent_tx_per_s": round(self.sent_tx_per_s, 1),
            "committed_tx_per_s": round(self.committed_tx_per_s, 1),
            "submitted": self.submitted,
            "committed": self.committed,
            "failed": self.failed,
            "p50_ms": round(self.p50_ms, 1),
            "p90_ms": round(self.p90_ms, 1),
            "p99_ms": round(self.p99_ms, 1),
            "lag_max_ms": round(self.lag_max_ms, 1),
            "seconds": round(self.seconds, 2),
        }


def percentile_ms(sorted_s: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ascending seconds, in milliseconds (0 if empty)."""
    if not sorted_s:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_s)))
    return 1000 * sorted_s[min(rank, len(sorted_s)) - 1]


@dataclass
class _Tally:
    latencies_s: list[float]
    committed: int = 0
    failed: int = 0
    lag_max_s: float = 0.0


async def run_open_loop(
    txs: Sequence[bytes],
    rate: float,
    post: Post,
    *,
    drain_s: float,
    in_flight_max: int = IN_FLIGHT_MAX,
    tick_s: float = TICK_S,
) -> RateFigures:
    """Send ``txs`` at ``rate`` per second through ``post``; the figures of the run."""
    if not 0 < rate <= RATE_MAX:
        raise ValueError(f"a rate is above 0 and at most {RATE_MAX:,.0f} tx/s")
    tally = _Tally([])
    gate = asyncio.Semaphore(in_flight_max)
    start = time.monotonic()

    async def send(number: int, first: int, batch: Sequence[bytes]) -> None:
        async with gate:
            heights = await post(number, batch)
        answered = time.monotonic()
        for i, height in enumerate(heights):
            if height is None:
                tally.failed += 1
            else:
                tally.committed += 1
                tally.latencies_s.append(answered - (start + (first + i) / rate))

    tasks: list[asyncio.Task[None]] = []
    sent = 0
    last_send = start
    while sent < len(txs):
        now = time.monotonic()
        due = min(len(txs), math.floor((now - start) * rate) + 1)
        if due > sent:
            tally.lag_max_s = max(tally.lag_max_s, now - (start + sent / rate) - tick_s)
            tasks.append(asyncio.create_task(send(len(tasks), sent, txs[sent:due])))
            sent, last_send = due, now
        if sent < len(txs):
            await asyncio.sleep(max(start + sent / rate - time.monotonic(), tick_s))
    seconds = last_send - start + 1 / rate  # n transactions fill n slots of 1 / rate
    await _drain(tasks, drain_s)
    return _figures(txs, rate, tally, seconds)


async def _drain(tasks: list[asyncio.Task[None]], drain_s: float) -> None:
    """Wait up to ``drain_s`` for the answers; what is left is cancelled and failed."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=drain_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _figures(txs: Sequence[bytes], rate: float, tally: _Tally, seconds: float) -> RateFigures:
    latencies = sorted(tally.latencies_s)
    unanswered = len(txs) - tally.committed - tally.failed
    return RateFigures(
        asked_tx_per_s=rate,
        sent_tx_per_s=len(txs) / seconds,
        committed_tx_per_s=tally.committed / seconds,
        submitted=len(txs),
        committed=tally.committed,
        failed=tally.failed + unanswered,
        p50_ms=percentile_ms(latencies, 0.50),
        p90_ms=percentile_ms(latencies, 0.90),
        p99_ms=percentile_ms(latencies, 0.99),
        lag_max_ms=1000 * max(tally.lag_max_s, 0.0),
        seconds=seconds,
    )
