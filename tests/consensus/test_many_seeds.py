"""The seeded simulation over 1,000 seeds: lossy, reordering links and crashes, then calm.

Each seed draws its own network before a global stabilisation time (GST):
drop, duplicate and delay (hence reorder) rates, and one or two crashes with
restarts, starting before GST. Once GST has passed and every crashed node is
back, the network is calm and every node must finish two more heights (past
the highest one decided so far) within a bound. Every run ends with ``check_safety``
(agreement, validity, linked chains, certificates that verify).

Runs are kept short (a few heights) so the whole file stays under 90 s
on a loaded two-core machine (about 65 s measured at a load average of 4.5).
A failure prints its seed and the command that replays only that seed:
``RELANCE_SIM_SEED=<n> pytest <this file>``.
``RELANCE_SIM_SEED_BASE`` shifts the range to explore other seeds.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence

import pytest

from tests.consensus.sim import START_MS, Crash, LinkPolicy, Setup, Simulation, check_safety

SEEDS_COUNT = 1_000
SECOND_MS = 1_000
GST_MIN_MS = 300
GST_MAX_MS = 1_500
DOWN_MIN_MS = 100
DOWN_MAX_MS = 1_000
HEIGHTS_AFTER_CALM = 2
CALM_BOUND_MS = 20 * SECOND_MS
NODES = 4
BATCH = 100  # seeds per test: every failing seed of a batch is listed, not only the first

REPLAY_SEED = os.environ.get("RELANCE_SIM_SEED")
SEED_BASE = int(os.environ.get("RELANCE_SIM_SEED_BASE", "0"))
SEEDS = [int(REPLAY_SEED)] if REPLAY_SEED else list(range(SEED_BASE, SEED_BASE + SEEDS_COUNT))


def replay_command(seed: int) -> str:
    return f"RELANCE_SIM_SEED={seed} .venv/bin/pytest tests/consensus/test_many_seeds.py"


def compute_setup(seed: int) -> Setup:
    """The seed's network: noisy until GST, calm after; one or two crashes starting before it."""
    rng = random.Random(seed)
    gst_ms = START_MS + rng.randint(GST_MIN_MS, GST_MAX_MS)
    before = LinkPolicy(
        drop=rng.uniform(0.0, 0.3),
        duplicate=rng.uniform(0.0, 0.3),
        delay_min_ms=1,
        delay_max_ms=rng.randint(10, 400),
    )
    after = LinkPolicy(
        drop=rng.uniform(0.0, 0.03),
        duplicate=rng.uniform(0.0, 0.05),
        delay_min_ms=1,
        delay_max_ms=rng.randint(5, 40),
    )
    crashes = []
    for _ in range(rng.randint(1, 2)):
        down_ms = rng.randint(DOWN_MIN_MS, DOWN_MAX_MS)
        at_ms = rng.randint(START_MS, gst_ms - down_ms) if gst_ms - down_ms > START_MS else START_MS
        crashes.append(Crash(rng.randrange(NODES), at_ms, at_ms + down_ms))
    return Setup(
        seed=seed, n=NODES, before_gst=before, after_gst=after, gst_ms=gst_ms, crashes=crashes
    )


def run_seed(seed: int) -> None:
    setup = compute_setup(seed)
    sim = Simulation(setup)
    calm_ms = max([setup.gst_ms, *(crash.back_ms for crash in setup.crashes)])
    sim.scheduler.run_until(calm_ms)
    target = max(sim.heights(range(NODES))) + HEIGHTS_AFTER_CALM
    reached = sim.run_until_height(target, range(NODES), calm_ms + CALM_BOUND_MS)
    heights = sim.heights(range(NODES))
    assert reached, f"seed={seed}: heights {heights} after calm, wanted {target}"
    check_safety(sim, range(NODES))


def failures(seeds: Sequence[int]) -> list[str]:
    """Every seed of ``seeds`` that fails, each with its message and the command replaying it."""
    found = []
    for seed in seeds:
        try:
            run_seed(seed)
        except AssertionError as failure:
            found.append(f"seed={seed} failed: {failure}\n  replay: {replay_command(seed)}")
    return found


@pytest.mark.parametrize("batch", range(0, len(SEEDS), BATCH), ids=lambda start: f"from{start}")
def test_seeds_are_safe_and_live_after_gst(batch: int) -> None:
    seeds = SEEDS[batch : batch + BATCH]
    failed = failures(seeds)
    assert not failed, f"{len(failed)} of {len(seeds)} seeds failed:\n" + "\n".join(failed)
