"""The bank's private side without a node: IBANs and their salted hash, the journal,
pain.001 files (validated against the XSD here, independently of the writer),
statement imports and every mismatch they must report."""

from __future__ import annotations

from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from node.settlement import banksim, camt, pain001, refhash
from node.settlement.journal import (
    EscrowRow,
    FileState,
    Journal,
    MerchantRow,
    NewPayout,
    PayoutState,
    Schedule,
    SettleTxState,
    TransferPlan,
    TransferState,
    open_journal,
)
from node.settlement.money import parse_decimal, to_decimal
from node.settlement.reconcile import import_statement
from node.settlement.service import is_due

ISSUER = b"I" * 32
OTHER_ISSUER = b"J" * 32
ESCROW = EscrowRow(ISSUER, "Ville de Namur - escrow", "BE68539007547034", "")
MERCHANTS = {
    b"A" * 32: ("Boulangerie Élise", "BE28001123456020"),
    b"B" * 32: ("Librairie & Co <Namur>", "DE89370400440532013000"),
}


def _journal(tmp_path: Path) -> Journal:
    journal = open_journal(tmp_path / "settlement")
    journal.set_escrow(ESCROW)
    for key, (_, iban) in MERCHANTS.items():
        account = refhash.parse_iban(iban)
        salt = bytes(range(16))
        journal.register_merchant(
            MerchantRow(
                key, account.iban, account.bic, salt,
                refhash.ref_hash(account.iban, salt), Schedule.IMMEDIATE, 0,
            )
        )  # fmt: skip
    return journal


def _payouts(journal: Journal, height: int, amounts: dict[bytes, list[int]]) -> list[bytes]:
    opened = []
    for merchant, cents_list in amounts.items():
        for n, cents in enumerate(cents_list):
            opened.append(
                NewPayout(bytes([height, n]) + merchant[:30], merchant, ISSUER, cents, 0, height)
            )
    journal.ingest_block(height, opened, [])
    return [p.payout_id for p in opened]


def _file(journal: Journal, ids: list[bytes]) -> int:
    rows = [journal.payout(i) for i in ids]
    plans = []
    for merchant, (name, iban) in MERCHANTS.items():
        mine = tuple(r.payout_id for r in rows if r is not None and r.merchant == merchant)
        if mine:
            account = refhash.parse_iban(iban)
            plans.append(TransferPlan(merchant, name, account.iban, account.bic, mine))
    file_id = journal.assign_file(ESCROW, 1_750_000_000_000, "2025-06-15", plans)
    file = journal.files(FileState.ASSIGNED)[0]
    built = pain001.build(file, journal.transfers_of_file(file_id))
    journal.store_built(file_id, built.msg_id, built.xml)
    return file_id


def _xml(journal: Journal, file_id: int) -> bytes:
    file = next(f for f in journal.files(*FileState) if f.file_id == file_id)
    assert file.xml is not None
    return file.xml


def test_ibans_are_validated_and_only_a_salted_hash_leaves_the_bank() -> None:
    account = refhash.parse_iban("be68 5390 0754 7034")
    assert account.iban == "BE68539007547034"
    assert account.masked == "BE68 **** **** 7034"
    for bad in ("BE68539007547035", "XX00", "BE68 5390 0754 70", "US12345678901234567890", ""):
        with pytest.raises(refhash.IbanError):
            refhash.parse_iban(bad)
    salt = b"\x01" * 16
    salted = refhash.ref_hash(account.iban, salt)
    assert salted != refhash.ref_hash(account.iban, b"\x02" * 16)
    assert refhash.matches(salted, account.iban, salt)
    assert not refhash.matches(salted, "BE28001123456020", salt)
    assert account.iban.encode() not in salted


def test_money_and_schedules() -> None:
    assert [to_decimal(c) for c in (0, 5, 100, 123456)] == ["0.00", "0.05", "1.00", "1234.56"]
    assert [parse_decimal(t) for t in ("0.05", "12", "12.3", "1234.56")] == [5, 1200, 1230, 123456]
    for bad in ("-1.00", "1e3", "1,00", "1.234", ""):
        with pytest.raises(ValueError):
            parse_decimal(bad)
    day = 86_400_000
    monday = 1_749_427_200_000  # 2025-06-09T00:00Z, a Monday
    assert is_due(Schedule.IMMEDIATE, monday, monday, day)
    assert not is_due(Schedule.DAILY, monday + 1, monday + day - 1, day)
    assert is_due(Schedule.DAILY, monday + day - 1, monday + day, day)
    assert not is_due(Schedule.WEEKLY, monday, monday + 7 * day - 1, day)
    assert is_due(Schedule.WEEKLY, monday + 6 * day, monday + 7 * day, day)


def test_every_pain001_validates_against_the_xsd(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    ids = _payouts(journal, 1, {b"A" * 32: [1_234, 5], b"B" * 32: [99_999]})
    file_id = _file(journal, ids)
    xml = _xml(journal, file_id)
    schema = xmlschema.XMLSchema(pain001.xsd_path())
    schema.validate(xml.decode())  # raises on any error
    root = etree.fromstring(xml)
    ns = {"p": pain001.NAMESPACE}
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=ns) == "2"
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=ns) == "1012.38"
    amounts = sorted(e.text or "" for e in root.iterfind(".//p:InstdAmt", namespaces=ns))
    assert amounts == ["12.39", "999.99"]
    debtor = root.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=ns)
    assert debtor == ESCROW.iban
    # A tampered file fails the same XSD (the writer refuses such a file too).
    broken = xml.replace(b"<IBAN>BE68", b"<IBAN>be68")
    with pytest.raises(pain001.Pain001Error):
        pain001.validate(broken)
    # Each payout is in exactly one transfer; the file's sum is the payouts' sum.
    rows = journal.payouts(PayoutState.IN_FILE)
    assert sorted(r.payout_id for r in rows) == sorted(ids)
    assert sum(t.amount_cents for t in journal.transfers_of_file(file_id)) == 1_234 + 5 + 99_999


@pytest.mark.parametrize("kind", ["camt.054", "camt.053", "csv"])
def test_statements_confirm_and_reject_transfers(tmp_path: Path, kind: str) -> None:
    journal = _journal(tmp_path)
    ids = _payouts(journal, 1, {b"A" * 32: [1_000, 250], b"B" * 32: [700]})
    file_id = _file(journal, ids)
    transfers = journal.transfers_of_file(file_id)
    rejected = transfers[1].end_to_end_id
    [answer] = banksim.statements([_xml(journal, file_id)], "2025-06-16", kind, {rejected: "AC04"})
    statement = camt.parse(answer)
    assert statement.kind == kind
    report = import_statement(journal, statement, 1)
    assert report.ok, report
    assert report.confirmed == [transfers[0].end_to_end_id]
    assert report.rejected == [(rejected, "AC04")]
    states = {r.merchant: r.state for r in journal.all_payouts()}
    assert states == {b"A" * 32: PayoutState.CONFIRMED, b"B" * 32: PayoutState.REJECTED}
    # Importing the same file again changes nothing.
    again = import_statement(journal, camt.parse(answer), 2)
    assert again.already_imported and again.ok and not again.confirmed
    # A new IBAN does not hold the rejected payout back for another file: it is returned.
    account = refhash.parse_iban("BE17001123456121")
    journal.register_merchant(
        MerchantRow(b"B" * 32, account.iban, account.bic, b"", refhash.ref_hash(account.iban, b""),
                    Schedule.DAILY, 5)
    )  # fmt: skip
    assert journal.payouts(PayoutState.SEEN) == []
    [payout] = journal.payouts(PayoutState.REJECTED)
    transfer = journal.transfer(payout.transfer_id or 0)
    assert transfer is not None and transfer.reason == "AC04"


def test_a_rejected_payout_is_returned_once_through_the_journal(tmp_path: Path) -> None:
    """rejected -> return_submitted -> returned; an abandoned return goes back to rejected."""
    journal = _journal(tmp_path)
    [payout_id] = _payouts(journal, 1, {b"B" * 32: [700]})
    file_id = _file(journal, [payout_id])
    [transfer] = journal.transfers_of_file(file_id)
    [answer] = banksim.statements(
        [_xml(journal, file_id)], "2025-06-16", "csv", {transfer.end_to_end_id: "AC01"}
    )
    assert import_statement(journal, camt.parse(answer), 1).ok
    journal.record_return_tx(b"t" * 32, b"tx-1", 4, payout_id, "AC01")
    with pytest.raises(RuntimeError):  # one return in flight per payout
        journal.record_return_tx(b"u" * 32, b"tx-2", 5, payout_id, "AC01")
    assert journal.payout(payout_id).state is PayoutState.RETURN_SUBMITTED  # type: ignore[union-attr]
    journal.abandon_return_tx(b"t" * 32)  # its sequence was used by another bank transaction
    assert journal.payout(payout_id).state is PayoutState.REJECTED  # type: ignore[union-attr]
    journal.record_return_tx(b"v" * 32, b"tx-3", 5, payout_id, "AC01")
    journal.ingest_block(2, [], [], [(payout_id, "AC01", b"v" * 32)])
    row = journal.payout(payout_id)
    assert row is not None and row.state is PayoutState.RETURNED and not row.outside
    assert row.reference == "AC01"
    assert [r.tx_id for r in journal.return_txs(SettleTxState.COMMITTED)] == [b"v" * 32]
    assert [r.tx_id for r in journal.return_txs(SettleTxState.ABANDONED)] == [b"t" * 32]
    # Ingesting the block again, or a later one naming it, changes nothing.
    journal.ingest_block(2, [], [], [(payout_id, "AC01", b"w" * 32)])
    journal.ingest_block(3, [], [], [(payout_id, "AC04", b"w" * 32)])
    assert journal.payout(payout_id) == row
    counts = journal.counts()
    assert (counts["returned_count"], counts["returned_cents"]) == (1, 700)
    journal.close()


def _tamper_csv(answer: bytes, edit: str) -> bytes:
    lines = answer.decode().splitlines()
    if edit == "duplicated":
        lines.append(lines[1])
    elif edit == "altered":
        cells = lines[1].split(",")
        cells[1] = to_decimal(parse_decimal(cells[1]) + 1)
        lines[1] = ",".join(cells)
    elif edit == "unknown":
        lines.append(lines[1].replace("RLF", "XXF"))
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        ("missing", "MISSING_ENTRY"),
        ("duplicated", "DUPLICATE_ENTRY"),
        ("altered", "AMOUNT_MISMATCH"),
        ("unknown", "UNKNOWN_REFERENCE"),
    ],
)
def test_a_statement_mismatch_is_reported_and_not_applied(
    tmp_path: Path, edit: str, code: str
) -> None:
    journal = _journal(tmp_path)
    ids = _payouts(journal, 1, {b"A" * 32: [1_000], b"B" * 32: [700]})
    file_id = _file(journal, ids)
    kind = "camt.053" if edit == "missing" else "csv"
    [answer] = banksim.statements([_xml(journal, file_id)], "2025-06-16", kind)
    first = journal.transfers_of_file(file_id)[0].end_to_end_id
    if edit == "missing":  # the end-of-day statement lacks the first booking
        start, end = answer.index(b"<Ntry>"), answer.index(b"</Ntry>") + len(b"</Ntry>")
        tampered = answer[:start] + answer[end:]
    else:
        tampered = _tamper_csv(answer, edit)
    report = import_statement(journal, camt.parse(tampered), 1)
    assert not report.ok
    assert [(m.code, m.end_to_end_id) for m in report.mismatches] == [(code, first)] or (
        code == "UNKNOWN_REFERENCE" and report.mismatches[0].code == code
    )
    transfer = journal.transfer_by_reference(first)
    assert transfer is not None
    if code == "UNKNOWN_REFERENCE":
        assert transfer.state is TransferState.CONFIRMED  # the genuine entry still counts
    else:
        assert transfer.state is TransferState.SENT  # nothing applied to the mismatching one
    second = journal.transfers_of_file(file_id)[1]
    assert second.state is TransferState.CONFIRMED


def test_camt_amount_altered_and_a_second_statement_duplicating_an_entry(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    ids = _payouts(journal, 1, {b"A" * 32: [1_000], b"B" * 32: [700]})
    file_id = _file(journal, ids)
    [answer] = banksim.statements([_xml(journal, file_id)], "2025-06-16", "camt.053")
    assert import_statement(journal, camt.parse(answer), 1).ok
    # The bank sends the booking again in another statement: a duplicate, not a 2nd payment.
    twice = answer.replace(b"<Id>", b"<Id>2", 1)
    report = import_statement(journal, camt.parse(twice), 2)
    assert {m.code for m in report.mismatches} == {"DUPLICATE_ENTRY"}
    assert len(report.mismatches) == 2 and not report.confirmed
    # An altered amount in camt (a fresh journal): reported, transfer left open.
    other = _journal(tmp_path / "other")
    other_ids = _payouts(other, 1, {b"A" * 32: [1_000]})
    other_file = _file(other, other_ids)
    [camt054] = banksim.statements([_xml(other, other_file)], "2025-06-16", "camt.054")
    altered = camt054.replace(b">10.00<", b">10.01<")
    report = import_statement(other, camt.parse(altered), 1)
    assert [(m.code, m.expected_cents, m.found_cents) for m in report.mismatches] == [
        ("AMOUNT_MISMATCH", 1_000, 1_001)
    ]
    wrong_account = camt054.replace(ESCROW.iban.encode(), b"BE28001123456020")
    report = import_statement(other, camt.parse(wrong_account), 2)
    assert [m.code for m in report.mismatches] == ["WRONG_ACCOUNT"]


def test_statement_parser_refuses_what_it_cannot_read() -> None:
    for data in (b"<x/>", b"not,a,statement\n", b"<Document xmlns='urn:x'/>", b"<a"):
        with pytest.raises(camt.StatementError):
            camt.parse(data)
    entity = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02">'
        b"<BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>&e;</MsgId></GrpHdr><Ntfctn><Id>1</Id>"
        b"</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    )
    parsed = camt.parse(entity)
    assert "root:" not in parsed.statement_id  # external entities are never resolved


def test_the_journal_refuses_a_payout_in_two_files(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    ids = _payouts(journal, 1, {b"A" * 32: [1_000]})
    _file(journal, ids)
    account = refhash.parse_iban(MERCHANTS[b"A" * 32][1])
    plan = TransferPlan(b"A" * 32, "x", account.iban, account.bic, (ids[0],))
    with pytest.raises(RuntimeError):
        journal.assign_file(ESCROW, 2, "2025-06-16", [plan])
    assert len(journal.files(*FileState)) == 1  # the refused file left nothing behind
    journal.close()


def test_a_bank_store_of_schema_1_gains_the_failure_column(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    file_id = _file(journal, _payouts(journal, 1, {b"A" * 32: [100]}))
    db = journal._db  # the test makes the store of the version before
    db.execute("ALTER TABLE files DROP COLUMN failure")
    db.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    journal.close()
    reopened = open_journal(tmp_path / "settlement")
    try:
        [file] = reopened.files(*FileState)
        assert (file.file_id, file.state, file.failure) == (file_id, FileState.BUILT, "")
        version = reopened._db.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        assert version == (2,)
    finally:
        reopened.close()
