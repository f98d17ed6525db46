"""Amounts and times as people type and read them."""

from __future__ import annotations

from datetime import date

import pytest

from node.ledger.tx import NO_ADDRESS, Address
from wallets.exits import WalletError
from wallets.units import (
    format_address,
    format_date_fr,
    format_euros,
    parse_address,
    parse_euros,
    parse_time_ms,
)

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "cents"),
    [("12", 1200), ("12,5", 1250), ("12.50", 1250), ("0,01", 1), ("1 000,00 €", 100_000)],
)
def test_euros_parse_to_cents_without_floats(text: str, cents: int) -> None:
    assert parse_euros(text) == cents


@pytest.mark.parametrize("text", ["", "0", "-1", "1,234", "abc", "1e3", "10000000,01"])
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(WalletError):
        parse_euros(text)


def test_euros_print_the_belgian_way() -> None:
    assert format_euros(123_456_78) == "123\u202f456,78\u00a0€"
    assert format_euros(5) == "0,05\u00a0€"


def test_times() -> None:
    assert parse_time_ms("now", NOW) == NOW
    assert parse_time_ms("+90d", NOW) == NOW + 90 * 86_400_000
    assert parse_time_ms("-1h", NOW) == NOW - 3_600_000
    brussels_midnight = NOW - 3_600_000  # dates are Brussels days (UTC+1 in winter)
    assert parse_time_ms("2026-01-01", NOW) == brussels_midnight
    assert parse_time_ms("2026-01-01", NOW, end_of_day=True) == brussels_midnight + 86_400_000
    assert parse_time_ms("2026-01-01T01:00:00+01:00", NOW) == NOW
    assert format_date_fr(date(2026, 2, 1)) == "1er février 2026"
    with pytest.raises(WalletError):
        parse_time_ms("next tuesday", NOW)


def test_parse_address_normalises_and_refuses_what_the_ledger_would() -> None:
    assert parse_address(" Rue de l'Ange 3 ", "5000", "Lie\u0300ge", "x") == Address(
        "Rue de l'Ange 3", "5000", "Liège"
    )
    assert parse_address("", " ", "", "x") == NO_ADDRESS
    for parts in (("Rue 1", "", "Namur"), ("Rue\u202e 1", "5000", "Namur"),
                  ("Rue 1", "5" * 13, "Namur")):  # fmt: skip
        with pytest.raises(WalletError) as refused:
            parse_address(*parts, "--street")
        assert refused.value.message.startswith("--street: ")
    assert format_address(Address("Rue 1", "5000", "Namur")) == "Rue 1, 5000 Namur"
    assert format_address(NO_ADDRESS) == "-"
