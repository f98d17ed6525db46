"""Amounts, times and names as people type and read them.

Amounts are typed in euros (``12``, ``12.5``, ``12,50``) and become integer
cents without floats; they print the Belgian way (``1 234,50 €``). Times are
ISO 8601 dates or date-times (Brussels time unless an offset is given) or offsets
from now (``now``, ``+90d``, ``-1h``, ``+30m``, ``+10s``); a date, or a number of
days, given as an end means the end of that day in Brussels. Names are put in NFC
form and trimmed, then checked against the ledger's rule (``node.text.names``) before
anything is signed.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Final

from node.protocol import limits
from node.text import fmt
from node.text.names import name_problem
from wallets.exits import Exit, WalletError

_EUROS: Final = re.compile(r"(\d{1,10})(?:[.,](\d{1,2}))?")
_OFFSET: Final = re.compile(r"([+-])(\d{1,6})([smhd])")
_UNIT_MS: Final = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_MONTHS_FR: Final = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def parse_euros(text: str) -> int:
    """``"12,50"`` -> 1250. Rejects zero, negatives, more than two decimals and huge amounts."""
    match = _EUROS.fullmatch(text.strip().replace(" ", "").removesuffix("€"))
    if match is None:
        raise WalletError(Exit.USAGE, f"not an amount in euros: {text!r} (e.g. 12,50)")
    whole, fraction = match.group(1), (match.group(2) or "0")
    cents = int(whole) * 100 + int(fraction.ljust(2, "0"))
    if not 0 < cents <= limits.AMOUNT_MAX_CENTS:
        raise WalletError(Exit.USAGE, f"an amount must be above 0 and at most 1 000 000 €: {text}")
    return cents


def parse_name(text: str, what: str) -> str:
    """A name as the ledger will accept it: NFC, trimmed, or a usage error saying why not."""
    name = unicodedata.normalize("NFC", text).strip()
    problem = name_problem(name)
    if problem is not None:
        raise WalletError(Exit.USAGE, f"{what}: {problem}: {text!r}")
    return name


def format_euros(cents: int) -> str:
    """1234550 -> ``"12 345,50 €"`` (Belgian style, narrow no-break space for thousands)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    grouped = f"{whole:,}".replace(",", "\u202f")
    return f"{sign}{grouped},{rest:02d}\u00a0€"


def parse_time_ms(text: str, now_ms: int, end_of_day: bool = False) -> int:
    """A time typed by a person, as milliseconds since the epoch. Dates and times
    without an offset are Brussels time. As an end (``end_of_day``), a date or a
    whole number of days from now (``+90d``) means the end of that Brussels day:
    the voucher works all of it (``node.text.fmt.last_valid_day`` prints that day)."""
    value = text.strip()
    if value == "now":
        return now_ms
    offset = _OFFSET.fullmatch(value)
    if offset is not None:
        sign = 1 if offset.group(1) == "+" else -1
        instant_ms = now_ms + sign * int(offset.group(2)) * _UNIT_MS[offset.group(3)]
        if end_of_day and offset.group(3) == "d":
            return fmt.day_start_ms(fmt.local_day(instant_ms) + timedelta(days=1))
        return instant_ms
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise WalletError(
            Exit.USAGE, f"not a time: {text!r} (e.g. 2026-03-31, 2026-03-31T18:00+01:00, +90d)"
        ) from None
    if len(value) == 10:  # a bare date: the day in Brussels, and as an end the whole of it
        return fmt.day_start_ms(parsed.date() + timedelta(days=1 if end_of_day else 0))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=fmt.BRUSSELS)
    return int(parsed.timestamp() * 1000)


def format_time(ms: int) -> str:
    """ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_date_fr(day: date) -> str:
    """``"31 mars 2026"``, ``"1er avril 2026"``."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {_MONTHS_FR[day.month - 1]} {day.year}"


def format_last_day(valid_until_ms: int) -> str:
    """A campaign's last valid day, as the wallet prints it (``31/03/2026``, the
    dashboards' format; one rule: ``node.text.fmt.last_valid_day``)."""
    return fmt.last_day(valid_until_ms)
