from __future__ import annotations

import pytest

from node.p2p.backoff import BackoffPolicy, compute_delay_s

POLICY = BackoffPolicy(initial_s=0.1, max_s=2.0, multiplier=2.0, jitter_fraction=0.5)


def test_delay_doubles_until_the_cap() -> None:
    delays = [compute_delay_s(POLICY, attempt, 0.0) for attempt in range(8)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0])


def test_jitter_only_shortens_and_stays_within_its_fraction() -> None:
    for attempt in range(10):
        ceiling_s = compute_delay_s(POLICY, attempt, 0.0)
        for unit_random in (0.0, 0.25, 0.5, 0.999999):
            delay_s = compute_delay_s(POLICY, attempt, unit_random)
            assert ceiling_s * 0.5 <= delay_s <= ceiling_s <= POLICY.max_s


def test_huge_attempt_numbers_stay_capped() -> None:
    assert compute_delay_s(POLICY, 10**6, 0.0) == POLICY.max_s


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0.0},
        {"initial_s": 3.0, "max_s": 2.0},
        {"multiplier": 0.5},
        {"multiplier": 1000.0},
        {"jitter_fraction": 1.5},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)


def test_out_of_range_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        compute_delay_s(POLICY, -1, 0.0)
    with pytest.raises(ValueError):
        compute_delay_s(POLICY, 0, 1.0)
