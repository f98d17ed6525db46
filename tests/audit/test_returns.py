"""Payouts the bank returned (a rejected transfer): the audit follows them.

A returned payout is closed: its amount is back in the merchant's balance, it
counts neither as pending nor as settled, and no change may touch it again.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from node.ledger import records as r
from node.ledger import tx as t
from node.protocol.crypto import Digest, digest
from tests.audit.conftest import History
from tests.audit.conftest import audit as run_audit
from tools.audit.books import Books, BooksError
from tools.audit.history import T0_MS, HistoryWriter, fixed_key, fixture_genesis
from tools.audit.report import reconcile, render_markdown, to_json


@pytest.fixture
def returned_history(tmp_path: Path) -> History:
    """Two auto-redeem payments; the bank returns one, settles the other, then the
    merchant redeems the returned units anew and the bank settles that payout."""
    genesis, a = fixture_genesis()
    w = HistoryWriter(tmp_path / "data", genesis, a.validators)
    namur = a.issuers[0]
    bakery, holder = fixed_key("shop0"), fixed_key("holder0")
    ref = digest(b"payout reference")
    w.commit(
        [
            a.tx(namur, t.RegisterMerchant(
                bakery.public_key, "Boulangerie", "47.24", "NAM-CENTRE", ref, True)),
            a.tx(namur, t.CreateCampaign(
                "c", "Relance", (), (), T0_MS, T0_MS + 86_400_000, 10_000)),
        ]
    )  # fmt: skip
    w.commit([a.tx(a.bank, t.Fund("c", 50_000, "DEP-1"))])
    w.commit(
        [a.tx(namur, t.Allocate("c", (t.Allocation(holder.public_key, 5_000, "NAM-CENTRE"),)))]
    )
    first = a.tx(holder, t.Pay("c", bakery.public_key, 1_200, "pain"))
    second = a.tx(holder, t.Pay("c", bakery.public_key, 800, "croissants"))
    w.commit([first, second])
    ids = [t.decode_tx(data, genesis.chain_id) for data in (first, second)]
    returned, settled = (Digest(s.tx_id) for s in ids if isinstance(s, t.SignedTx))
    w.commit(
        [
            a.tx(a.bank, t.ReturnPayout(returned, "AC04", "RLF0000001T00001")),
            a.tx(a.bank, t.Settle((t.Settlement(settled, "RLF0000001T00002"),))),
        ]
    )
    again = a.tx(bakery, t.Redeem(namur.public_key, 1_200))
    w.commit([again])
    again_id = t.decode_tx(again, genesis.chain_id)
    assert isinstance(again_id, t.SignedTx)
    w.commit([a.tx(a.bank, t.Settle((t.Settlement(again_id.tx_id, "RLF0000002T00001"),)))])
    w.close()
    return History(genesis, a, tmp_path / "data", tmp_path / "genesis.toml")


def test_a_history_with_a_returned_payout_audits_and_reconciles(
    returned_history: History,
) -> None:
    result = run_audit(returned_history)
    assert result.ok, result.divergence
    books = result.books
    assert (books.payouts_opened, books.payouts_settled, books.payouts_returned) == (3, 2, 1)
    namur = returned_history.actors.issuers[0].public_key
    tally = books.issuer_tallies[namur]
    assert (tally.redeemed, tally.settled, tally.returned) == (2_000, 2_000, 1_200)
    assert books.unsettled[namur] == 0
    assert all(c.ok for c in reconcile(books)), [c for c in reconcile(books) if not c.ok]
    report = to_json(result)
    assert report["ok"] is True and report["payouts_returned"] == 1
    [issuer] = [i for i in report["issuers"] if i["name"] == "Ville de Namur"]  # type: ignore[attr-defined]
    assert issuer["returned"] == 1_200 and issuer["pending"] == 0
    assert "Returned by the bank" in render_markdown(result)


def _payout(returned_reason: str = "", reference: str = "") -> r.Payout:
    return r.Payout(
        fixed_key("shop0").public_key, fixed_key("namur").public_key, 1_200, T0_MS,
        reference, T0_MS + 1 if reference else 0, returned_reason,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        (None, _payout("AC04"), "opened already settled or returned"),
        (_payout("AC04"), _payout("AC04", "VIR-1"), "both settled and returned"),
        (
            _payout("AC04"),
            replace(_payout("AC04"), returned_reason="AC01"),
            "after it was returned",
        ),
        (_payout("AC04"), replace(_payout("AC04"), settled_ms=5), "reference and time disagree"),
    ],
    ids=["opened-returned", "returned-then-settled", "reason-changed", "forged-time"],
)
def test_the_books_refuse_a_change_to_a_returned_payout(
    before: r.Payout | None, after: r.Payout, message: str
) -> None:
    books = Books()
    key = r.payout_key(digest(b"payout"))
    raw_before = None if before is None else before.encode()
    with pytest.raises(BooksError, match=message):
        books.apply({key: after.encode()}, lambda _key: raw_before)
