"""One payout reference hash: the wallet's unsalted form is ``node.settlement.refhash``'s."""

from __future__ import annotations

import pytest

from node.settlement import refhash
from wallets.commands.merchant import payout_ref_hash
from wallets.exits import WalletError

PRINTED = " be68 5390 0754 7034 "
COMPACT = "BE68539007547034"


def test_the_wallet_hash_is_the_bank_legacy_form() -> None:
    assert refhash.compact(PRINTED) == COMPACT
    ledger_hash = payout_ref_hash(PRINTED)
    assert ledger_hash == refhash.ref_hash(COMPACT, b"")
    assert refhash.matches(ledger_hash, refhash.parse_iban(PRINTED).iban, b"")
    assert not refhash.matches(ledger_hash, refhash.parse_iban(PRINTED).iban, b"\x01" * 16)


def test_the_wallet_has_no_hash_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bytes]] = []

    def spy(iban_compact: str, salt: bytes) -> bytes:
        seen.append((iban_compact, salt))
        return b"\x42" * 32

    monkeypatch.setattr(refhash, "ref_hash", spy)
    assert payout_ref_hash(PRINTED) == b"\x42" * 32
    assert seen == [(COMPACT, b"")]


def test_an_empty_reference_is_refused() -> None:
    with pytest.raises(WalletError, match="empty"):
        payout_ref_hash(" \t ")
