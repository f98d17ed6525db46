"""The bank's dashboard (``/ui/bank``): where the bank's login lands; escrow per commune
and campaign from the ledger; payouts waiting, in a file, settled and returned (with the
ISO reason), pain.001 files (a failed one with why), statements imported and
withdrawals from the settlement journal; its CSV export, escaped."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.api.bank_page import SOURCE
from node.settlement.journal import PayoutState
from tests.api.bank_world import FORMULA, HOSTILE, BankWorld, bank_world
from tests.api.world import CAMPAIGN


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BankWorld]:
    with bank_world(Path(tmp_path_factory.mktemp("bank-page"))) as world:
        yield world


def _get(bank: BankWorld, path: str, who: str = "bank", lang: str = "fr") -> tuple[int, str]:
    """``path`` as ``who`` sees it, logged in the dashboards' own way: a token exchanged
    once at /ui/login for the cookie the node sets."""
    token = bank.node.token(getattr(bank.world, who).signer)
    login = bank.node.http("GET", f"/ui/login?token={token}")
    assert login.status == 303, login.body
    lines = login.headers["set-cookie"].split("\n")
    cookie = next(c.split(";")[0] for c in lines if '=""' not in c.split(";")[0])
    answer = bank.node.http("GET", path, headers={"Cookie": f"{cookie}; relance_lang={lang}"})
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
    assert groups == {"waiting": 1 + 2, "in_file": 1 + 2, "returned": 1 + 2}  # tile + rows
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
    assert by_id[bank.ids["formula"]]["return_reason"] == "'" + FORMULA  # text, not a formula
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
