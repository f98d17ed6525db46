"""The wallet compares enums, not strings: a batch outcome's result is the node's
``Result`` (``node.ledger.codes``), a book entry's status a ``BookStatus``."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.ledger.codes import Result
from wallets.book import BookStatus, Household, VoucherBook
from wallets.context import BatchOutcome
from wallets.exits import WalletError


def test_an_outcome_s_result_is_the_node_s_enum() -> None:
    assert BatchOutcome("a", "ab", "OK", 3).code is Result.OK
    assert BatchOutcome("a", None, "BAD_SEQUENCE", None).code is Result.BAD_SEQUENCE
    assert BatchOutcome("a", None, "UNKNOWN", None).code is None  # a name we do not know
    assert BatchOutcome("a", None, "ok", None).code is None  # names are exact


def _book(tmp_path: Path) -> VoucherBook:
    return VoucherBook(tmp_path / "book", "chain", "camp", "a passphrase of some length")


def test_the_book_keeps_its_statuses_as_enums_across_a_save(tmp_path: Path) -> None:
    book = _book(tmp_path)
    home = Household(1, "r1", 500, "Z", "post", "Ann", ("1 rue", "5000 Namur"), "", b"")
    entry = book.add(home)
    assert entry.status is BookStatus.NEW
    book.update(entry, status=BookStatus.ALLOCATED)
    book.save()
    again = _book(tmp_path)
    assert [e.status for e in again.entries] == [BookStatus.ALLOCATED]
    assert again.entries[0].status is BookStatus.ALLOCATED


def test_a_book_with_an_unknown_status_is_damaged(tmp_path: Path) -> None:
    book = _book(tmp_path)
    entry = book.add(Household(1, "r1", 500, "Z", "post", "Ann", ("1 rue",), "", b""))
    book.update(entry, status="misplaced")
    book.save()
    with pytest.raises(WalletError, match="damaged"):
        _book(tmp_path)
