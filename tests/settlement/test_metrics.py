"""Settlement metrics: how long the oldest filed payout has waited to close on the ledger."""

from __future__ import annotations

from pathlib import Path

from node.api.metrics import NodeMetrics, SettlementSources
from node.settlement import banksim, camt
from node.settlement.journal import PayoutState
from node.settlement.reconcile import import_statement
from tests.settlement.test_files import _file, _journal, _payouts, _xml

FILED_MS = 1_750_000_000_000  # the block time test_files._file files at


def test_the_oldest_open_file_ages_until_its_payouts_close_on_the_ledger(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    [held] = _payouts(journal, 1, {b"A" * 32: [300]})
    assert journal.oldest_in_flight_ms() is None, "a payout in no file waits on its schedule"
    ids = _payouts(journal, 2, {b"A" * 32: [1_000], b"B" * 32: [700]})
    file_id = _file(journal, ids)
    assert journal.oldest_in_flight_ms() == FILED_MS
    now = {"ms": FILED_MS + 90_000}
    metrics = NodeMetrics()
    metrics.attach_settlement(
        SettlementSources(
            journal.oldest_in_flight_ms,
            lambda: {s.value: journal.counts()[f"{s.value}_count"] for s in PayoutState},
            lambda: now["ms"],
        )
    )
    text = metrics.render().decode()
    assert "relance_settlement_oldest_pending_age_seconds 90.0" in text
    assert 'relance_settlement_payouts{state="in_file"} 2.0' in text
    assert 'relance_settlement_payouts{state="seen"} 1.0' in text
    # The bank confirms A's transfer and rejects B's: both still open on the ledger.
    transfers = {t.merchant: t for t in journal.transfers_of_file(file_id)}
    rejected = transfers[b"B" * 32].end_to_end_id
    [answer] = banksim.statements([_xml(journal, file_id)], "2025-06-16", "csv", {rejected: "AC04"})
    assert import_statement(journal, camt.parse(answer), 1).ok
    assert journal.oldest_in_flight_ms() == FILED_MS
    # The ledger settles A's payout and returns B's: nothing filed is open any more.
    a_id, b_id = ids
    journal.ingest_block(3, [], [(a_id, transfers[b"A" * 32].end_to_end_id, b"s" * 32)])
    assert journal.oldest_in_flight_ms() == FILED_MS
    journal.ingest_block(4, [], [], [(b_id, "AC04", b"r" * 32)])
    assert journal.oldest_in_flight_ms() is None
    now["ms"] += 3_600_000
    assert "relance_settlement_oldest_pending_age_seconds 0.0" in metrics.render().decode()
    row = journal.payout(held)
    assert row is not None and row.state is PayoutState.SEEN
    journal.close()


def test_a_node_without_settlement_exports_no_settlement_metric() -> None:
    assert "relance_settlement" not in NodeMetrics().render().decode()
