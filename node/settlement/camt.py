"""Bank statements in: ISO 20022 camt.053 (statement) and camt.054 (debit/credit
notification), any version (namespaces are matched by local name), and the
devnet's confirmation CSV. Parsed with lxml, entities and network disabled.

What counts: booked entries (``Sts`` = ``BOOK``). A debit (``DBIT``) with an
end-to-end id confirms a transfer; a credit (``CRDT``) carrying return
information (``RtrInf/Rsn/Cd``, e.g. ``AC04`` closed account, ``AC01`` wrong
IBAN) is the transfer coming back: the transfer is rejected.

The CSV has the header ``end_to_end_id,amount,currency,status,reason,booking_date``;
``amount`` is in euros with a dot (``12.34``), ``status`` is ``BOOKED`` or
``REJECTED`` (then ``reason`` is the ISO return reason code).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from typing import Final

from lxml import etree

from node.protocol.errors import SettlementError
from node.settlement.money import parse_decimal

STATEMENT_BYTES_MAX: Final = 32 * 1024 * 1024
ENTRIES_MAX: Final = 100_000
CSV_HEADER: Final = ("end_to_end_id", "amount", "currency", "status", "reason", "booking_date")


class StatementError(SettlementError, ValueError):
    """The file is not a statement this importer reads; the message says why."""


@dataclass(frozen=True, slots=True)
class Entry:
    end_to_end_id: str
    amount_cents: int
    currency: str
    returned: bool  # a credit carrying return information: the transfer came back
    reason: str  # the return reason code, "" for a plain debit
    booking_date: str  # ISO date, "" when the statement does not say


@dataclass(frozen=True, slots=True)
class Statement:
    kind: str  # "camt.053", "camt.054" or "csv"
    statement_id: str
    account_iban: str  # the account the statement is about; "" when not said (CSV)
    to_date: str  # last day covered (ISO date), "" when unknown
    entries: tuple[Entry, ...]
    sha256: str


def parse(data: bytes) -> Statement:
    if len(data) > STATEMENT_BYTES_MAX:
        raise StatementError(f"a statement is at most {STATEMENT_BYTES_MAX} bytes")
    sha = hashlib.sha256(data).hexdigest()
    if data.lstrip()[:1] == b"<":
        return _parse_camt(data, sha)
    return _parse_csv(data, sha)


# --- camt -----------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True
    )


def _text(element: etree._Element | None, path: str) -> str:
    if element is None:
        return ""
    found = element.find(path)
    if found is None or found.text is None:
        return ""
    return found.text.strip()


def _parse_camt(data: bytes, sha: str) -> Statement:
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise StatementError(f"not XML: {exc}") from None
    namespace = etree.QName(root).namespace or ""
    if ":camt.053." in namespace:
        kind, report = "camt.053", root.find("{*}BkToCstmrStmt/{*}Stmt")
    elif ":camt.054." in namespace:
        kind, report = "camt.054", root.find("{*}BkToCstmrDbtCdtNtfctn/{*}Ntfctn")
    else:
        raise StatementError(f"not a camt.053 or camt.054 document: {namespace or 'no namespace'}")
    if report is None:
        raise StatementError(f"a {kind} document without a statement")
    msg_id = _text(root, ".//{*}GrpHdr/{*}MsgId")
    entries: list[Entry] = []
    for ntry in report.iterfind("{*}Ntry"):
        entries.extend(_entries(ntry))
        if len(entries) > ENTRIES_MAX:
            raise StatementError(f"more than {ENTRIES_MAX} entries")
    to_date = _text(report, "{*}FrToDt/{*}ToDtTm")[:10]
    if not to_date and entries:
        to_date = max(e.booking_date for e in entries)
    return Statement(
        kind=kind,
        statement_id=f"{msg_id}/{_text(report, '{*}Id')}",
        account_iban=_text(report, "{*}Acct/{*}Id/{*}IBAN"),
        to_date=to_date,
        entries=tuple(entries),
        sha256=sha,
    )


def _entries(ntry: etree._Element) -> list[Entry]:
    status = _text(ntry, "{*}Sts") or _text(ntry, "{*}Sts/{*}Cd")
    if status != "BOOK":
        return []
    credit = _text(ntry, "{*}CdtDbtInd") == "CRDT"
    booked = _text(ntry, "{*}BookgDt/{*}Dt") or _text(ntry, "{*}BookgDt/{*}DtTm")[:10]
    amount_element = ntry.find("{*}Amt")
    details = list(ntry.iterfind("{*}NtryDtls/{*}TxDtls"))
    out = []
    for tx in details:
        reference = _text(tx, "{*}Refs/{*}EndToEndId")
        if not reference or reference == "NOTPROVIDED":
            continue
        amount = tx.find("{*}AmtDtls/{*}TxAmt/{*}Amt")
        if amount is None:
            amount = tx.find("{*}Amt")
        if amount is None and len(details) == 1:
            amount = amount_element
        if amount is None or amount.text is None:
            raise StatementError(f"entry {reference} has no amount")
        reason = _text(tx, "{*}RtrInf/{*}Rsn/{*}Cd")
        if credit and not reason:
            continue  # an incoming payment (a deposit): not a transfer of ours
        out.append(
            Entry(
                end_to_end_id=reference,
                amount_cents=_cents(amount.text),
                currency=amount.get("Ccy", ""),
                returned=credit,
                reason=reason,
                booking_date=booked,
            )
        )
    return out


def _cents(text: str) -> int:
    try:
        return parse_decimal(text)
    except ValueError as exc:
        raise StatementError(str(exc)) from None


# --- CSV ------------------------------------------------------------------------------------


def _parse_csv(data: bytes, sha: str) -> Statement:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StatementError("a confirmation CSV is UTF-8") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(c.strip() for c in rows[0]) != CSV_HEADER:
        raise StatementError(f"a confirmation CSV starts with the header {','.join(CSV_HEADER)}")
    entries = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_HEADER):
            raise StatementError(f"line {n}: {len(CSV_HEADER)} columns expected")
        reference, amount, currency, status, reason, booked = (c.strip() for c in row)
        if status not in ("BOOKED", "REJECTED"):
            raise StatementError(f"line {n}: status is BOOKED or REJECTED")
        entries.append(
            Entry(reference, _cents(amount), currency, status == "REJECTED", reason, booked)
        )
        if len(entries) > ENTRIES_MAX:
            raise StatementError(f"more than {ENTRIES_MAX} entries")
    to_date = max((e.booking_date for e in entries), default="")
    return Statement("csv", sha[:16], "", to_date, tuple(entries), sha)
