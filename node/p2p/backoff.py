"""Reconnection delays: capped exponential backoff with jitter.

Owns ``BackoffPolicy`` and the pure function computing one delay. The
randomness is an input (a number in [0, 1)), so tests replay exactly.

Imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MULTIPLIER_MAX: Final = 16.0
ATTEMPT_EXPONENT_MAX: Final = 64  # past this the cap applies anyway; avoids float overflow


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delay before attempt n (from 0): ``min(max_s, initial_s * multiplier**n)``,
    shortened by up to ``jitter_fraction`` of itself at random."""

    initial_s: float = 0.1
    max_s: float = 10.0
    multiplier: float = 2.0
    jitter_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        if not 1 <= self.multiplier <= MULTIPLIER_MAX:
            raise ValueError(f"backoff multiplier must be within [1, {MULTIPLIER_MAX}]")
        if not 0 <= self.jitter_fraction <= 1:
            raise ValueError("jitter_fraction must be within [0, 1]")


def compute_delay_s(policy: BackoffPolicy, attempt: int, unit_random: float) -> float:
    """The delay before retry number ``attempt``; ``unit_random`` is drawn from [0, 1)."""
    if attempt < 0 or not 0 <= unit_random < 1:
        raise ValueError("attempt must be >= 0 and unit_random within [0, 1)")
    exponent = min(attempt, ATTEMPT_EXPONENT_MAX)
    ceiling_s = min(policy.max_s, policy.initial_s * policy.multiplier**exponent)
    return ceiling_s * (1 - policy.jitter_fraction * unit_random)
