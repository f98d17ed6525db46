"""``heap.freeze_loaded``: the loaded state is frozen out of the collector's walks."""

from __future__ import annotations

import gc

from node.run import heap


def test_freeze_loaded_freezes_the_survivors_and_collects_the_young_less_often() -> None:
    thresholds = gc.get_threshold()
    try:
        gc.unfreeze()
        state = [{"n": i} for i in range(1_000)]  # tracked containers that outlive the call
        heap.freeze_loaded()
        assert gc.get_freeze_count() >= len(state)
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)
        gc.unfreeze()
        heap.after_block(heap.FREEZE_EVERY_BLOCKS - 1)  # not yet
        assert gc.get_freeze_count() == 0
        heap.after_block(heap.FREEZE_EVERY_BLOCKS)
        assert gc.get_freeze_count() >= len(state)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
