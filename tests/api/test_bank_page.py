"""The bank's dashboard (``/ui/bank``): where the bank's login lands; escrow per commune
and campaign from the ledger; payouts waiting, in a file, settled and returned (with the
ISO reason), pain.001 files (a failed one with why), statements imported and
withdrawals from the settlement journal; its CSV export, escaped."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.api.bank_page import SOURCE
from node.ledger import tx as t
from node.settlement.journal import (
    EscrowRow,
    Journal,
    NewPayout,
    PayoutState,
    TransferPlan,
    open_journal,
)
from tests.api.harness import LiveNode
from tests.api.world import CAMPAIGN, World, seed

ESCROW_IBAN = "BE68539007547034"
SHOP_IBAN = "BE28001123456020"
HOSTILE = '<script>alert("x")</script>'


@dataclass
class BankWorld:
    world: World
    journal: Journal
    ids: dict[str, bytes]

    @property
    def node(self) -> LiveNode:
        return self.world.node


def _fill(journal: Journal, world: World) -> dict[str, bytes]:
    """Journal rows for each state the page groups: the payouts' own ids need not be on
    the ledger (the page reads the journal), their merchants and communes are."""
    namur = world.namur.pk
    escrow = EscrowRow(namur, "Ville de Namur", ESCROW_IBAN, "")
    journal.set_escrow(escrow)
    bakery, brasserie = world.bakery.pk, world.brasserie.pk
    start = world.node.genesis.genesis_time_ms
    ids = {name: bytes([n + 1]) * 32 for n, name in enumerate(
        ("waiting", "written", "rejected", "failed", "confirmed"))}  # fmt: skip
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

    written = file_of("written", "rejected", "confirmed")
    journal.store_built(written, "MSG-1", b"<xml/>")
    journal.mark_written(written, "pain001-0000001.xml")
    failed = file_of("failed")
    journal.mark_failed(failed, f"sepaxml refused the file: {HOSTILE}")
    transfers = {tr.end_to_end_id: tr for tr in journal.transfers_of_file(written)}
    rejected_tr = next(
        tr for tr in transfers.values() if journal.payouts_of_transfer(tr.transfer_id)[0].payout_id
        == ids["rejected"]
    )  # fmt: skip
    confirmed_tr = next(
        tr for tr in transfers.values() if journal.payouts_of_transfer(tr.transfer_id)[0].payout_id
        == ids["confirmed"]
    )  # fmt: skip
    report = {"confirmed": ["x"], "rejected": [["y", "AC04"]], "mismatches": []}
    journal.apply_import("aa" * 32, "CAMT-054-0001", "camt.054", start + 3_600_000,
                         [(confirmed_tr.transfer_id, "2026-03-02")],
                         [(rejected_tr.transfer_id, "AC04")], json.dumps(report))  # fmt: skip
    bad = {"confirmed": [], "rejected": [], "mismatches": [{"code": "unknown-reference"}]}
    journal.apply_import("bb" * 32, "CAMT-053-0002", "camt.053", start + 7_200_000, [], [],
                         json.dumps(bad))  # fmt: skip
    return ids


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BankWorld]:
    root = Path(tmp_path_factory.mktemp("bank-page"))
    (root / "node").mkdir()
    node = LiveNode(root / "node")
    try:
        world = seed(node)
        node.commit(world.bank.sign(world.chain, t.Withdraw(CAMPAIGN, 12_345, "RET-2026-0007")))
        journal = node.run(lambda: open_journal(root / "settlement"))  # the node's thread
        ids = node.run(lambda: _fill(journal, world))
        node.app[SOURCE].journal = journal
        yield BankWorld(world, journal, ids)
        node.app[SOURCE].journal = None
        node.run(journal.close)
    finally:
        node.close()


def _get(bank: BankWorld, path: str, who: str = "bank", lang: str = "fr") -> tuple[int, str]:
    signer = getattr(bank.world, who).signer
    token = bank.node.token(signer)
    answer = bank.node.http(
        "GET", path, headers={"Cookie": f"relance_token={token}; relance_lang={lang}"}
    )
    return answer.status, answer.body.decode()


def test_the_banks_login_lands_on_its_dashboard(bank: BankWorld) -> None:
    token = bank.node.token(bank.world.bank.signer)
    landed = bank.node.http("GET", f"/ui/login?token={token}")
    assert landed.status == 303 and landed.headers["location"] == "/ui/bank"
    assert _get(bank, "/ui/bank")[0] == 200
    for other in ("namur", "auditor", "bakery", "alice"):
        assert _get(bank, "/ui/bank", other)[0] == 403
        assert _get(bank, "/ui/bank/payouts.csv", other)[0] == 403
    assert 'name="token"' in bank.node.http("GET", "/ui/bank").body.decode()  # log in first


def test_the_dashboard_shows_escrow_payouts_files_imports_and_withdrawals(
    bank: BankWorld,
) -> None:
    status, html = _get(bank, "/ui/bank", lang="en")
    assert status == 200
    assert 'data-commune="Ville de Namur"' in html and f'data-campaign="{CAMPAIGN}"' in html
    assert "123,45\u00a0€" in html and "RET-2026-0007" in html  # the withdrawal
    groups = {g: html.count(f'data-group="{g}"') for g in ("waiting", "in_file", "returned")}
    assert groups == {"waiting": 1 + 2, "in_file": 1 + 2, "returned": 1 + 1}  # tile + rows
    assert 'data-group="settled"' in html  # its tile, with no payout yet
    assert '<span class="badge wait" data-testid="reason">AC04</span>' in html
    assert 'data-state="written"' in html and "pain001-0000001.xml" in html
    assert 'data-state="failed"' in html and "Failed" in html
    assert HOSTILE not in html and "&lt;script&gt;" in html  # the failure reason, as text
    assert "CAMT-054-0001" in html and "Matched" in html
    assert "CAMT-053-0002" in html and "Mismatches, nothing applied" in html
    assert "Boulangerie du Marché" in html and "Brasserie de la Place" in html
    french = _get(bank, "/ui/bank")[1]
    assert "Fichiers pain.001" in french and "Relevés importés" in french


def test_the_csv_has_every_payout_with_its_state_and_reason(bank: BankWorld) -> None:
    status, text = _get(bank, "/ui/bank/payouts.csv")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    by_id = {bytes.fromhex(row["payout_id"]): row for row in rows}
    assert set(by_id) == set(bank.ids.values())
    rejected = by_id[bank.ids["rejected"]]
    assert (rejected["state"], rejected["group"], rejected["return_reason"]) == (
        "rejected", "returned", "AC04")  # fmt: skip
    assert by_id[bank.ids["failed"]]["state"] == PayoutState.HELD.value
    assert by_id[bank.ids["waiting"]]["file_id"] == ""
    assert by_id[bank.ids["confirmed"]]["amount_eur"] == "50.00"
    assert {row["commune"] for row in rows} == {"Ville de Namur"}
    journal_total = bank.node.run(lambda: sum(p.amount_cents for p in bank.journal.all_payouts()))
    assert sum(int(row["amount_cents"]) for row in rows) == journal_total


def test_without_the_journal_the_page_shows_the_ledger_and_says_where_the_rest_is(
    bank: BankWorld,
) -> None:
    journal = bank.node.app[SOURCE].journal
    bank.node.app[SOURCE].journal = None
    try:
        status, html = _get(bank, "/ui/bank", lang="en")
        assert status == 200 and 'data-testid="no-journal"' in html
        assert 'data-commune="Ville de Namur"' in html and "RET-2026-0007" in html
        assert 'data-testid="files"' not in html
        status, text = _get(bank, "/ui/bank/payouts.csv")
        assert status == 200 and text.strip().count("\n") == 0  # the header only
    finally:
        bank.node.app[SOURCE].journal = journal
