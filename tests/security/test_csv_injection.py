"""Issue 15, finding 3: no CSV the system writes holds a cell a spreadsheet would run.

A holder's memo (``=cmd|' /C calc'!A0``, ``@SUM(...)``) reaches the commune's
``transactions.csv``; merchant, campaign and commune names reach the settlement
statement's CSV. Text cells starting with ``= + - @``, a tab or a carriage return
get a leading ``'`` (OWASP); numbers, negative ones included, stay numbers.
"""

from __future__ import annotations

import csv
import io

import pytest

from node.ledger import tx as t
from node.protocol.crypto import Digest, digest
from node.settlement import statement as st
from node.text.escape import FORMULA_STARTS, csv_cell, csv_writer
from tests.api.harness import BANK, DAY_MS, NAMUR, Account, LiveNode, key
from tests.api.test_dashboards import page

FORMULAS = (
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    '+HYPERLINK("http://evil","x")',
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)


@pytest.mark.parametrize("text", FORMULAS)
def test_a_formula_becomes_text(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-1250, 0, 42, "-12.50", "+3", "-7", "12,50", "", "Café =1"])
def test_numbers_and_plain_text_stay_as_they_are(value: object) -> None:
    assert csv_cell(value) == value


def test_the_writer_neutralises_every_text_cell_and_keeps_numbers() -> None:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["=1+1", -1250, "-12.50", None, "@x"])
    assert out.getvalue() == "'=1+1,-1250,-12.50,,'@x\r\n"


def test_the_commune_transactions_csv_neutralises_holders_memos(node: LiveNode) -> None:
    chain = node.genesis.chain_id
    start = node.genesis.genesis_time_ms
    bank, namur = Account(BANK), Account(NAMUR)
    shop, holder = Account(key("shop")), Account(key("holder"))
    node.commit(
        namur.sign(chain, t.RegisterMerchant(shop.pk, "=HYPERLINK(\"x\")", "47.11", "NAM-1",
                                             Digest(digest(b"iban")), False)),
        namur.sign(chain, t.CreateCampaign("nam", "@Relance", (), (), start, start + DAY_MS,
                                           10_000)),
    )  # fmt: skip
    node.commit(bank.sign(chain, t.Fund("nam", 100_000, "D1")))
    node.commit(namur.sign(chain, t.Allocate("nam", (t.Allocation(holder.pk, 5_000, "NAM-1"),))))
    memos = [m for m in FORMULAS if m[0] not in "\t\r"]  # the ledger refuses control characters
    node.commit(*(holder.sign(chain, t.Pay("nam", shop.pk, 100 + n, memo))
                  for n, memo in enumerate(memos)))  # fmt: skip
    exported = page(node, "/ui/commune/transactions.csv", node.token(NAMUR))
    assert exported.status == 200 and exported.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.body.decode())))
    paid = [r for r in rows if r["kind"] == "pay"]
    assert sorted(r["memo"] for r in paid) == sorted("'" + m for m in memos)
    assert sorted(int(r["amount_cents"]) for r in paid) == [100, 101, 102, 103]
    for row in rows:
        assert not any(v.startswith(FORMULA_STARTS) for v in row.values()), row


def test_the_statement_csv_neutralises_names_and_keeps_amounts() -> None:
    merchant = st.MerchantLine("ab" * 32, "=cmd|' /C calc'!A0", 2, 250, 0)
    statement = st.CommuneStatement(
        issuer="cd" * 32,
        issuer_name="@SUM(A1:A9)",
        from_ms=0,
        to_ms=1,
        height=3,
        campaigns=[
            st.CampaignLine("nam", "+Relance", closing_unspent_cents=-1_250, merchants=[merchant])
        ],
        payouts=[st.PayoutLine("ab" * 32, "-Boulangerie", 1, 250)],
        bank=[],
        returns=[],
        settled_cents=0,
        bank_confirmed_cents=0,
        returned_cents=0,
        reconciled=True,
        differences=[],
    )
    rows = list(csv.DictReader(io.StringIO(st.to_csv(statement).decode())))
    names = {r["name"] for r in rows} - {""}
    assert names == {"'@SUM(A1:A9)", "'+Relance", "'=cmd|' /C calc'!A0", "'-Boulangerie"}
    closing = next(r for r in rows if r["item"] == "closing_unspent")
    assert (closing["cents"], closing["euros"]) == ("-1250", "-12.50")
    for row in rows:
        assert not any(v.startswith(FORMULA_STARTS) and v[1:2].isalpha() for v in row.values())
