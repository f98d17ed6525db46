"""Euro amounts as text, without floats (pure): ``1234`` cents is ``"12.34"``."""

from __future__ import annotations

import re
from typing import Final

_DECIMAL: Final = re.compile(r"(0|[1-9][0-9]{0,15})(?:\.([0-9]{1,2}))?")


def to_decimal(cents: int) -> str:
    if cents < 0:
        return "-" + to_decimal(-cents)
    return f"{cents // 100}.{cents % 100:02d}"


def parse_decimal(text: str) -> int:
    """``"12.34"`` -> 1234; raises ``ValueError`` for anything else (signs, exponents, commas)."""
    match = _DECIMAL.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an amount in euros: {text!r}")
    whole, fraction = match.group(1), match.group(2) or "0"
    return int(whole) * 100 + int(fraction.ljust(2, "0"))
