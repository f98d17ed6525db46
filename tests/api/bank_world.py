"""The bank's world for its dashboard tests: the API test world plus a settlement
journal in every state the dashboard shows (``tests/api/test_bank_page.py`` and
``tests/api/test_bank_browser.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from node.api.bank_page import SOURCE
from node.ledger import tx as t
from node.settlement.journal import (
    EscrowRow,
    Journal,
    NewPayout,
    TransferPlan,
    TransferRow,
    open_journal,
)
from tests.api.harness import LiveNode
from tests.api.world import CAMPAIGN, World, seed

ESCROW_IBAN = "BE68539007547034"
SHOP_IBAN = "BE28001123456020"
HOSTILE = '<script>alert("x")</script>'
FORMULA = '=HYPERLINK("http://evil.example","AC04")'  # a bank's free-text return reason


@dataclass
class BankWorld:
    world: World
    journal: Journal
    ids: dict[str, bytes]

    @property
    def node(self) -> LiveNode:
        return self.world.node


def fill(journal: Journal, world: World) -> dict[str, bytes]:
    """Journal rows for each state the page groups: the payouts' own ids need not be on
    the ledger (the page reads the journal), their merchants and communes are."""
    namur = world.namur.pk
    escrow = EscrowRow(namur, "Ville de Namur", ESCROW_IBAN, "")
    journal.set_escrow(escrow)
    bakery, brasserie = world.bakery.pk, world.brasserie.pk
    start = world.node.genesis.genesis_time_ms
    ids = {name: bytes([n + 1]) * 32 for n, name in enumerate(
        ("waiting", "written", "rejected", "failed", "confirmed", "formula"))}  # fmt: skip
    shop = {name: bakery if n % 2 else brasserie for n, name in enumerate(ids)}
    journal.ingest_block(
        3,
        [NewPayout(ids[name], shop[name], namur, 1_000 * (n + 1), start + n * 60_000, 3)
         for n, name in enumerate(ids)],
        [],
    )  # fmt: skip

    def file_of(*names: str) -> int:
        plans = [TransferPlan(shop[name], "shop", SHOP_IBAN, "", (ids[name],)) for name in names]
        return journal.assign_file(escrow, start, "2026-03-02", plans)

    written = file_of("written", "rejected", "confirmed", "formula")
    journal.store_built(written, "MSG-1", b"<xml/>")
    journal.mark_written(written, "pain001-0000001.xml")
    failed = file_of("failed")
    journal.mark_failed(failed, f"sepaxml refused the file: {HOSTILE}")
    transfers = {tr.transfer_id: tr for tr in journal.transfers_of_file(written)}

    def transfer_of(name: str) -> TransferRow:
        payout = journal.payout(ids[name])
        assert payout is not None and payout.transfer_id is not None
        return transfers[payout.transfer_id]

    rejected_tr, formula_tr, confirmed_tr = map(transfer_of, ("rejected", "formula", "confirmed"))
    report = {"confirmed": ["x"], "rejected": [["y", "AC04"]], "mismatches": []}
    journal.apply_import("aa" * 32, "CAMT-054-0001", "camt.054", start + 3_600_000,
                         [(confirmed_tr.transfer_id, "2026-03-02")],
                         [(rejected_tr.transfer_id, "AC04"), (formula_tr.transfer_id, FORMULA)],
                         json.dumps(report))  # fmt: skip
    bad = {"confirmed": [], "rejected": [], "mismatches": [{"code": "unknown-reference"}]}
    journal.apply_import("bb" * 32, "CAMT-053-0002", "camt.053", start + 7_200_000, [], [],
                         json.dumps(bad))  # fmt: skip
    return ids


@contextmanager
def bank_world(root: Path) -> Iterator[BankWorld]:
    """A live node with the API test world, a withdrawal, and a settlement journal with a
    payout in each state, a written and a failed file and two statements imported."""
    (root / "node").mkdir()
    node = LiveNode(root / "node")
    try:
        world = seed(node)
        node.commit(world.bank.sign(world.chain, t.Withdraw(CAMPAIGN, 12_345, "RET-2026-0007")))
        journal = node.run(lambda: open_journal(root / "settlement"))  # the node's thread
        ids = node.run(lambda: fill(journal, world))
        node.app[SOURCE].journal = journal
        yield BankWorld(world, journal, ids)
        node.app[SOURCE].journal = None
        node.run(journal.close)
    finally:
        node.close()
