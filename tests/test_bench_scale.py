"""`relance-bench scale` allocates holders to a devnet through the API and reports time and
memory (behaviour at a tiny size: the figures themselves go in notes)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from tools.bench import scale as bench_scale
from tools.bench.scale import edge_rates, memory_of


def test_scale_bench_allocates_every_holder_and_reports_time_and_memory() -> None:
    """One validator, 40 holders in 4 transactions of 10, posted 2 at a time (about 10 s)."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench.cli", "scale", "--holders", "40", "--nodes", "1",
         "--per-tx", "10", "--batch", "2", "--timeout", "120"],
        check=False, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["bench"] == "scale" and figures["complete"] is True
    assert figures["allocated"] == 40
    assert (figures["holders"], figures["transactions"], figures["batch"]) == (40, 4, 2)
    assert figures["allocate_s"] > 0
    assert figures["per_s"] == pytest.approx(40 / figures["allocate_s"], rel=0.01)
    assert figures["start_per_s"] > 0 and figures["end_per_s"] > 0
    rss, peak = figures["rss_mb"], figures["peak_rss_mb"]
    assert len(rss) == len(peak) == 1 and 10 < rss[0] <= peak[0]
    assert any(line.startswith("resident memory:") for line in lines)


def test_edge_rates_cover_the_first_and_the_last_tenth() -> None:
    # 100 holders, 10 a batch: the first batch took 2 s, the last 5 s.
    marks = [(0.0, 0), (2.0, 10)] + [(2.0 + k, 10 + 10 * k) for k in range(1, 9)] + [(15.0, 100)]
    assert edge_rates(marks, 100) == (5.0, 2.0)


def test_edge_rates_span_a_whole_batch_when_it_is_more_than_a_tenth() -> None:
    assert edge_rates([(0.0, 0), (4.0, 60), (10.0, 100)], 100) == (15.0, 40 / 6)


def test_memory_of_reads_the_resident_and_peak_memory_of_a_process() -> None:
    rss, peak = memory_of(os.getpid())
    assert 10 < rss <= peak


def test_allocating_stops_at_the_deadline_and_says_how_far_it_got(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch still waiting for its block when the time is up ends the allocations; the
    marks hold the batches that were in a block (the run reports them, not a traceback)."""
    calls: list[int] = []

    async def commit(_session: object, _urls: object, txs: list[bytes], _deadline: float) -> None:
        calls.append(len(txs))
        if len(calls) == 4:  # the set-up's one transaction, two batches, then a stuck one
            await asyncio.sleep(30)

    monkeypatch.setattr(bench_scale, "_commit", commit)
    deadline = time.monotonic() + 1.0
    txs = [b"tx%d" % i for i in range(8)]
    setup_s, marks = asyncio.run(
        bench_scale._allocate(["http://x"], [b"setup"], txs, 2, [10] * 8, deadline)
    )
    assert calls == [1, 2, 2, 2]
    assert [holders for _, holders in marks] == [0, 20, 40]
    assert setup_s >= 0 and time.monotonic() < deadline + 5
