"""Importing a bank statement: match its entries to the transfers we sent.

Each transfer (end-to-end id) waiting for the bank is confirmed by exactly one
booked debit of exactly its amount in euros, or rejected by a return. Anything
else is a mismatch, reported with a stable code and applied to nothing:

- ``UNKNOWN_REFERENCE``  an entry whose end-to-end id we never sent;
- ``AMOUNT_MISMATCH``    an entry whose amount differs from the transfer's;
- ``DUPLICATE_ENTRY``    a second entry for one transfer (in this statement or
  after an earlier import closed it);
- ``MISSING_ENTRY``      a transfer of the statement's account, due on or before
  the last day a camt.053 statement covers, that it does not mention;
- ``WRONG_ACCOUNT`` / ``WRONG_CURRENCY``  the entry is not about our escrow
  account in euros.

Importing the same file twice changes nothing (it is recognised by its SHA-256).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from node.settlement.camt import Entry, Statement
from node.settlement.journal import FileState, Journal, TransferRow, TransferState
from node.settlement.pain001 import CURRENCY


@dataclass(frozen=True, slots=True)
class Mismatch:
    code: str
    end_to_end_id: str
    expected_cents: int | None
    found_cents: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    statement_id: str
    kind: str
    sha256: str
    entries: int
    confirmed: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    already_imported: bool = False

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_json(self) -> str:
        body = asdict(self)
        body["ok"] = self.ok
        return json.dumps(body, sort_keys=True)


def import_statement(journal: Journal, statement: Statement, now_ms: int) -> ImportReport:
    """Match ``statement`` against the journal and record the outcome (one transition)."""
    earlier = journal.already_imported(statement.sha256)
    if earlier is not None:
        previous = json.loads(earlier)
        return ImportReport(
            statement.statement_id,
            statement.kind,
            statement.sha256,
            len(statement.entries),
            confirmed=[],
            rejected=[],
            mismatches=[Mismatch(**m) for m in previous["mismatches"]],
            already_imported=True,
        )
    report = match(journal, statement)
    confirmed: list[tuple[int, str]] = []
    rejected: list[tuple[int, str]] = []
    for reference in report.confirmed:
        transfer = journal.transfer_by_reference(reference)
        if transfer is not None:
            booked = next(e.booking_date for e in statement.entries if e.end_to_end_id == reference)
            confirmed.append((transfer.transfer_id, booked))
    for reference, reason in report.rejected:
        transfer = journal.transfer_by_reference(reference)
        if transfer is not None:
            rejected.append((transfer.transfer_id, reason))
    journal.apply_import(
        statement.sha256,
        statement.statement_id,
        statement.kind,
        now_ms,
        confirmed,
        rejected,
        report.to_json(),
    )
    return report


def match(journal: Journal, statement: Statement) -> ImportReport:
    """What importing ``statement`` would do (reads only)."""
    report = ImportReport(
        statement.statement_id, statement.kind, statement.sha256, len(statement.entries)
    )
    by_reference: dict[str, list[Entry]] = defaultdict(list)
    for entry in statement.entries:
        by_reference[entry.end_to_end_id].append(entry)
    debtors = {f.file_id: f.debtor_iban for f in journal.files(*FileState)}
    for reference, entries in by_reference.items():
        transfer = journal.transfer_by_reference(reference)
        if transfer is None:
            for entry in entries:
                report.mismatches.append(
                    Mismatch(
                        "UNKNOWN_REFERENCE",
                        reference,
                        None,
                        entry.amount_cents,
                        "no transfer of ours has this end-to-end id",
                    )
                )
            continue
        problem = _entry_problem(transfer, entries, statement, debtors.get(transfer.file_id, ""))
        if problem is not None:
            report.mismatches.append(problem)
            continue
        returns = [e for e in entries if e.returned]
        if returns:
            report.rejected.append((reference, returns[0].reason or "RETURNED"))
        else:
            report.confirmed.append(reference)
    report.mismatches.extend(_missing(journal, statement, set(by_reference)))
    return report


def _entry_problem(
    transfer: TransferRow, entries: list[Entry], statement: Statement, debtor_iban: str
) -> Mismatch | None:
    reference = transfer.end_to_end_id
    debits = [e for e in entries if not e.returned]
    returns = [e for e in entries if e.returned]
    if statement.account_iban and statement.account_iban != debtor_iban:
        return Mismatch(
            "WRONG_ACCOUNT",
            reference,
            transfer.amount_cents,
            None,
            f"the statement is about {statement.account_iban}, not this transfer's escrow account",
        )
    for entry in entries:
        if entry.currency and entry.currency != CURRENCY:
            return Mismatch(
                "WRONG_CURRENCY",
                reference,
                transfer.amount_cents,
                entry.amount_cents,
                f"booked in {entry.currency}",
            )
        if entry.amount_cents != transfer.amount_cents:
            return Mismatch(
                "AMOUNT_MISMATCH",
                reference,
                transfer.amount_cents,
                entry.amount_cents,
                "the bank booked another amount than the file asked",
            )
    if transfer.state is not TransferState.SENT:
        return Mismatch(
            "DUPLICATE_ENTRY",
            reference,
            transfer.amount_cents,
            entries[0].amount_cents,
            f"the transfer was already {transfer.state.value} by an earlier statement",
        )
    if len(debits) > 1 or len(returns) > 1:
        return Mismatch(
            "DUPLICATE_ENTRY",
            reference,
            transfer.amount_cents,
            sum(e.amount_cents for e in entries),
            f"{len(entries)} entries for one transfer",
        )
    return None


def _missing(journal: Journal, statement: Statement, mentioned: set[str]) -> list[Mismatch]:
    """Only an account statement (camt.053) lists every booking of its period; camt.054
    notifications and the devnet CSV may each cover a part of it."""
    if statement.kind != "camt.053" or not statement.to_date:
        return []
    files = {f.file_id: f for f in journal.files(*FileState)}
    out = []
    for transfer in journal.transfers(TransferState.SENT):
        if transfer.end_to_end_id in mentioned:
            continue
        file = files.get(transfer.file_id)
        if file is None or file.execution_date > statement.to_date:
            continue
        if statement.account_iban and file.debtor_iban != statement.account_iban:
            continue
        out.append(
            Mismatch(
                "MISSING_ENTRY",
                transfer.end_to_end_id,
                transfer.amount_cents,
                None,
                f"due {file.execution_date} in file {file.file_id}, not in the statement",
            )
        )
    return out
