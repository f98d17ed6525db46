"""Micro-benchmark of the state tree (not a test): ``python -m tools.bench.state_tree``.

Measures ``from_items`` for a few tree sizes and stage + apply of a block's
worth of writes to random keys (two thirds updates, one third inserts), the
shape of a block of payments. Seeded, so runs compare.

Imports only ``node.protocol.state_tree``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence

from node.protocol.state_tree import StateTree

KEY_BYTES = 40
VALUE_BYTES = 48


def _items(rng: random.Random, count: int) -> list[tuple[bytes, bytes]]:
    return [(rng.randbytes(KEY_BYTES), rng.randbytes(VALUE_BYTES)) for _ in range(count)]


def bench_build(rng: random.Random, count: int) -> tuple[StateTree, list[bytes], float]:
    items = _items(rng, count)
    start = time.perf_counter()
    tree = StateTree.from_items(items)
    elapsed = time.perf_counter() - start
    return tree, [key for key, _ in items], elapsed


def bench_blocks(
    rng: random.Random, tree: StateTree, keys: Sequence[bytes], writes: int, blocks: int
) -> tuple[list[float], list[float]]:
    """Seconds of stage and of apply of ``writes`` writes, one sample per block."""
    stage_s: list[float] = []
    apply_s: list[float] = []
    for _ in range(blocks):
        batch: dict[bytes, bytes | None] = {
            key: rng.randbytes(VALUE_BYTES) for key in rng.sample(keys, writes * 2 // 3)
        }
        batch.update(
            (rng.randbytes(KEY_BYTES), rng.randbytes(VALUE_BYTES)) for _ in range(writes // 3)
        )
        start = time.perf_counter()
        staged = tree.stage(batch)
        staged_at = time.perf_counter()
        tree.apply(staged)
        stage_s.append(staged_at - start)
        apply_s.append(time.perf_counter() - staged_at)
    return stage_s, apply_s


def _report(name: str, samples: Sequence[float], writes: int) -> str:
    median_s = statistics.median(samples)
    return (
        f"{name} median {median_s * 1e3:6.2f} ms ({median_s / writes * 1e6:5.2f} us/write), "
        f"best {min(samples) * 1e3:6.2f} ms"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--writes", type=int, default=3_000)
    parser.add_argument("--blocks", type=int, default=30)
    args = parser.parse_args(argv)
    rng = random.Random(7)
    for size in args.sizes:
        tree, keys, build_s = bench_build(rng, size)
        print(f"entries={size:,}: from_items {build_s:.2f} s")
        stage_s, apply_s = bench_blocks(rng, tree, keys, args.writes, args.blocks)
        total_s = [a + b for a, b in zip(stage_s, apply_s, strict=True)]
        print(f"  {args.writes} writes per block, {args.blocks} blocks:")
        print("  " + _report("stage        ", stage_s, args.writes))
        print("  " + _report("apply        ", apply_s, args.writes))
        print("  " + _report("stage + apply", total_s, args.writes))


if __name__ == "__main__":
    main()
