"""The bank's private store: one SQLite file under the bank node's home, never replicated.

Tables: ``merchants`` (IBAN, salt, schedule), ``escrow_accounts`` (each
issuer's escrow account at the bank, the debtor of its pain.001 files),
``payouts`` (the journal), ``files`` (pain.001 files, with their exact bytes),
``transfers`` (one credit transfer per merchant per file, named by its
end-to-end id), ``settle_txs`` (settle transactions, journaled before they
are submitted), ``return_txs`` (``return_payout`` transactions, one payout
each, journaled before they are submitted) and ``imports`` (bank statements
already imported).

A payout moves ``seen -> in_file -> confirmed -> settle_submitted -> settled``;
a transfer the bank rejected moves its payouts ``in_file -> rejected ->
return_submitted -> returned``: each is returned on the ledger to the
merchant's balance, with the bank's return reason. A file moves
``assigned -> built -> written``, or ``assigned -> failed`` when it cannot be
made a valid pain.001 (the reason is kept in ``files.failure``): its transfers
are ``failed`` and its payouts ``held`` until the bank releases the file
(``relance-node settlement release``), which puts them back to ``seen``.
Every transition is one SQLite transaction in WAL mode with
``synchronous=FULL``: fsynced when it returns, so a SIGKILL at any instant
leaves the journal at a transition boundary. Nothing here reads the ledger;
``node.settlement.service`` does.
"""

from __future__ import annotations

import contextlib
import enum
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from node.protocol.errors import SettlementError

SCHEMA_VERSION: Final = 2  # 2: files.failure (a file that could not be built)
FAILURE_CHARS_MAX: Final = 500
BUSY_TIMEOUT_MS: Final = 10_000
FILE_NAME: Final = "bank.sqlite"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS merchants (
    merchant BLOB PRIMARY KEY, iban TEXT NOT NULL, bic TEXT NOT NULL, salt BLOB NOT NULL,
    ref_hash BLOB NOT NULL, schedule TEXT NOT NULL, registered_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS escrow_accounts (
    issuer BLOB PRIMARY KEY, name TEXT NOT NULL, iban TEXT NOT NULL, bic TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    file_id INTEGER PRIMARY KEY AUTOINCREMENT, issuer BLOB NOT NULL,
    created_ms INTEGER NOT NULL, execution_date TEXT NOT NULL, state TEXT NOT NULL,
    debtor_name TEXT NOT NULL, debtor_iban TEXT NOT NULL, debtor_bic TEXT NOT NULL,
    transfers INTEGER NOT NULL DEFAULT 0, total_cents INTEGER NOT NULL DEFAULT 0,
    msg_id TEXT, xml BLOB, name TEXT, failure TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id INTEGER PRIMARY KEY AUTOINCREMENT, file_id INTEGER NOT NULL,
    merchant BLOB NOT NULL, issuer BLOB NOT NULL, creditor_name TEXT NOT NULL,
    iban TEXT NOT NULL, bic TEXT NOT NULL, amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    end_to_end_id TEXT NOT NULL UNIQUE, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
    booked TEXT NOT NULL DEFAULT '', import_id INTEGER);
CREATE TABLE IF NOT EXISTS payouts (
    payout_id BLOB PRIMARY KEY, merchant BLOB NOT NULL, issuer BLOB NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0), created_ms INTEGER NOT NULL,
    height INTEGER NOT NULL, state TEXT NOT NULL, transfer_id INTEGER, settle_tx BLOB,
    reference TEXT NOT NULL DEFAULT '', settled_height INTEGER NOT NULL DEFAULT 0,
    outside INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS payouts_state ON payouts (state);
CREATE TABLE IF NOT EXISTS settle_txs (
    tx_id BLOB PRIMARY KEY, data BLOB NOT NULL, sequence INTEGER NOT NULL,
    state TEXT NOT NULL, height INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS return_txs (
    tx_id BLOB PRIMARY KEY, payout_id BLOB NOT NULL, data BLOB NOT NULL,
    sequence INTEGER NOT NULL, reason TEXT NOT NULL, state TEXT NOT NULL,
    height INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS return_txs_state ON return_txs (state);
CREATE TABLE IF NOT EXISTS imports (
    import_id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 TEXT NOT NULL UNIQUE,
    statement_id TEXT NOT NULL, kind TEXT NOT NULL, imported_ms INTEGER NOT NULL,
    report TEXT NOT NULL);
"""


class PayoutState(enum.StrEnum):
    SEEN = "seen"
    IN_FILE = "in_file"
    CONFIRMED = "confirmed"
    SETTLE_SUBMITTED = "settle_submitted"
    SETTLED = "settled"
    REJECTED = "rejected"  # the bank rejected its transfer: to be returned on the ledger
    RETURN_SUBMITTED = "return_submitted"
    RETURNED = "returned"  # back in the merchant's balance on the ledger
    HELD = "held"  # its file could not be built: waits for the bank to release it


IN_FLIGHT: Final = (  # filed, not yet settled or returned on the ledger
    PayoutState.IN_FILE,
    PayoutState.CONFIRMED,
    PayoutState.SETTLE_SUBMITTED,
    PayoutState.REJECTED,
    PayoutState.RETURN_SUBMITTED,
)


class FileState(enum.StrEnum):
    ASSIGNED = "assigned"
    BUILT = "built"
    WRITTEN = "written"
    FAILED = "failed"  # could not be made a valid pain.001; ``failure`` says why


class TransferState(enum.StrEnum):
    SENT = "sent"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    FAILED = "failed"  # its file could not be built: never sent


class SettleTxState(enum.StrEnum):
    """Of a journaled bank transaction (``settle`` or ``return_payout``)."""

    PENDING = "pending"
    COMMITTED = "committed"
    ABANDONED = "abandoned"


class Schedule(enum.StrEnum):
    IMMEDIATE = "immediate"
    DAILY = "daily"
    WEEKLY = "weekly"


class JournalError(SettlementError, RuntimeError):
    """A transition that the journal's state does not allow (a bug, or two writers)."""


@dataclass(frozen=True, slots=True)
class MerchantRow:
    merchant: bytes
    iban: str
    bic: str
    salt: bytes
    ref_hash: bytes
    schedule: Schedule
    registered_ms: int


@dataclass(frozen=True, slots=True)
class EscrowRow:
    issuer: bytes
    name: str
    iban: str
    bic: str


@dataclass(frozen=True, slots=True)
class PayoutRow:
    payout_id: bytes
    merchant: bytes
    issuer: bytes
    amount_cents: int
    created_ms: int
    height: int
    state: PayoutState
    transfer_id: int | None
    settle_tx: bytes | None
    reference: str
    outside: bool


@dataclass(frozen=True, slots=True)
class NewPayout:
    payout_id: bytes
    merchant: bytes
    issuer: bytes
    amount_cents: int
    created_ms: int
    height: int


@dataclass(frozen=True, slots=True)
class FileRow:
    file_id: int
    issuer: bytes
    created_ms: int
    execution_date: str
    state: FileState
    debtor_name: str
    debtor_iban: str
    debtor_bic: str
    transfers: int
    total_cents: int
    msg_id: str | None
    xml: bytes | None
    name: str | None
    failure: str = ""


@dataclass(frozen=True, slots=True)
class TransferRow:
    transfer_id: int
    file_id: int
    merchant: bytes
    issuer: bytes
    creditor_name: str
    iban: str
    bic: str
    amount_cents: int
    end_to_end_id: str
    state: TransferState
    reason: str
    booked: str


@dataclass(frozen=True, slots=True)
class TransferPlan:
    """One credit transfer to make: a merchant's due payouts of one issuer."""

    merchant: bytes
    creditor_name: str
    iban: str
    bic: str
    payout_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SettleTxRow:
    tx_id: bytes
    data: bytes
    sequence: int
    state: SettleTxState


@dataclass(frozen=True, slots=True)
class ReturnTxRow:
    tx_id: bytes
    payout_id: bytes
    data: bytes
    sequence: int
    reason: str
    state: SettleTxState


@dataclass(frozen=True, slots=True)
class PayoutLine:
    """A payout as the bank's dashboard lists it: with its transfer, if any, and the
    reason the bank gave when it rejected the transfer."""

    payout_id: bytes
    merchant: bytes
    issuer: bytes
    amount_cents: int
    created_ms: int
    state: PayoutState
    file_id: int | None
    end_to_end_id: str
    reason: str  # the return reason (ISO 20022 code, or the bank's words) of a rejection


@dataclass(frozen=True, slots=True)
class ImportRow:
    import_id: int
    statement_id: str
    kind: str
    imported_ms: int
    report: str  # the import's JSON report (``node.settlement.reconcile.ImportReport``)


def end_to_end_id(file_id: int, n: int) -> str:
    """The transfer's end-to-end id (ISO 20022 Max35Text), also its ledger bank reference."""
    return f"RLF{file_id:07d}T{n:05d}"


class Journal:
    """The bank's private store (see the module docstring). One per process."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @staticmethod
    def open(path: Path) -> Journal:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys=ON")
        return Journal(db)

    def create_schema(self) -> None:
        self._db.executescript(_SCHEMA)
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if int(row[0]) == 1:  # schema 1 had no files.failure
                db.execute("ALTER TABLE files ADD COLUMN failure TEXT NOT NULL DEFAULT ''")
                db.execute("UPDATE meta SET value = 2 WHERE key = 'schema_version'")
                row = (2,)
            if int(row[0]) != SCHEMA_VERSION:
                raise JournalError(f"the bank store has schema {row[0]}, not {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transition: BEGIN IMMEDIATE ... COMMIT (fsynced), or ROLLBACK on error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- meta ---------------------------------------------------------------------------

    def ingested_height(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'ingested_height'").fetchone()
        return 0 if row is None else int(row[0])

    # --- merchants and escrow accounts -----------------------------------------------------

    def register_merchant(self, row: MerchantRow) -> None:
        """Store (or replace) a merchant's IBAN. Payouts of a rejected transfer are not
        held for it: they are returned to the merchant's balance on the ledger."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO merchants VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (merchant) DO "
                "UPDATE SET iban = excluded.iban, bic = excluded.bic, salt = excluded.salt, "
                "ref_hash = excluded.ref_hash, schedule = excluded.schedule, "
                "registered_ms = excluded.registered_ms",
                (
                    row.merchant,
                    row.iban,
                    row.bic,
                    row.salt,
                    row.ref_hash,
                    row.schedule.value,
                    row.registered_ms,
                ),
            )

    def merchant(self, merchant: bytes) -> MerchantRow | None:
        row = self._db.execute(
            "SELECT merchant, iban, bic, salt, ref_hash, schedule, registered_ms "
            "FROM merchants WHERE merchant = ?",
            (merchant,),
        ).fetchone()
        if row is None:
            return None
        return MerchantRow(row[0], row[1], row[2], row[3], row[4], Schedule(row[5]), row[6])

    def set_schedule(self, merchant: bytes, schedule: Schedule) -> bool:
        with self._tx() as db:
            changed = db.execute(
                "UPDATE merchants SET schedule = ? WHERE merchant = ?", (schedule.value, merchant)
            ).rowcount
        return changed == 1

    def set_escrow(self, row: EscrowRow) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO escrow_accounts VALUES (?, ?, ?, ?)",
                (row.issuer, row.name, row.iban, row.bic),
            )

    def escrow(self, issuer: bytes) -> EscrowRow | None:
        row = self._db.execute(
            "SELECT issuer, name, iban, bic FROM escrow_accounts WHERE issuer = ?", (issuer,)
        ).fetchone()
        return None if row is None else EscrowRow(row[0], row[1], row[2], row[3])

    # --- following the ledger ----------------------------------------------------------------

    def ingest_block(
        self,
        height: int,
        opened: Sequence[NewPayout],
        settled: Sequence[tuple[bytes, str, bytes]],
        returned: Sequence[tuple[bytes, str, bytes]] = (),
    ) -> None:
        """Record a finalised block: payouts it opened, (payout id, reference, settle tx
        id) it settled and (payout id, reason, return tx id) it returned. Idempotent;
        moves the watermark to ``height``."""
        with self._tx() as db:
            if height <= self._ingested(db):
                return
            for p in opened:
                db.execute(
                    "INSERT OR IGNORE INTO payouts (payout_id, merchant, issuer, amount_cents, "
                    "created_ms, height, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        p.payout_id,
                        p.merchant,
                        p.issuer,
                        p.amount_cents,
                        p.created_ms,
                        p.height,
                        PayoutState.SEEN.value,
                    ),
                )
            for payout_id, reference, tx_id in settled:
                self._mark_settled(db, payout_id, reference, tx_id, height)
            for payout_id, reason, tx_id in returned:
                self._mark_returned(db, payout_id, reason, tx_id, height)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('ingested_height', ?)", (height,))

    @staticmethod
    def _ingested(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = 'ingested_height'").fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def _mark_settled(
        db: sqlite3.Connection, payout_id: bytes, reference: str, tx_id: bytes, height: int
    ) -> None:
        row = db.execute(
            "SELECT state, settle_tx FROM payouts WHERE payout_id = ?", (payout_id,)
        ).fetchone()
        if row is None or row[0] == PayoutState.SETTLED.value:
            return
        ours = row[1] == tx_id
        db.execute(
            "UPDATE payouts SET state = ?, reference = ?, settled_height = ?, outside = ? "
            "WHERE payout_id = ?",
            (PayoutState.SETTLED.value, reference, height, 0 if ours else 1, payout_id),
        )
        db.execute(
            "UPDATE settle_txs SET state = ?, height = ? WHERE tx_id = ?",
            (SettleTxState.COMMITTED.value, height, tx_id),
        )

    @staticmethod
    def _mark_returned(
        db: sqlite3.Connection, payout_id: bytes, reason: str, tx_id: bytes, height: int
    ) -> None:
        """The ledger returned the payout (``reference`` keeps the return reason)."""
        row = db.execute("SELECT state FROM payouts WHERE payout_id = ?", (payout_id,)).fetchone()
        if row is None or row[0] == PayoutState.RETURNED.value:
            return
        ours = db.execute(
            "SELECT 1 FROM return_txs WHERE tx_id = ? AND payout_id = ?", (tx_id, payout_id)
        ).fetchone()
        db.execute(
            "UPDATE payouts SET state = ?, reference = ?, settled_height = ?, outside = ? "
            "WHERE payout_id = ?",
            (PayoutState.RETURNED.value, reason, height, 0 if ours else 1, payout_id),
        )
        db.execute(
            "UPDATE return_txs SET state = ?, height = ? WHERE tx_id = ?",
            (SettleTxState.COMMITTED.value, height, tx_id),
        )
        db.execute(
            "UPDATE return_txs SET state = ? WHERE payout_id = ? AND state = ?",
            (SettleTxState.ABANDONED.value, payout_id, SettleTxState.PENDING.value),
        )

    # --- payouts -----------------------------------------------------------------------------

    def payouts(self, *states: PayoutState) -> list[PayoutRow]:
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            "SELECT payout_id, merchant, issuer, amount_cents, created_ms, height, state, "
            f"transfer_id, settle_tx, reference, outside FROM payouts WHERE state IN ({marks}) "
            "ORDER BY height, payout_id",
            [s.value for s in states],
        ).fetchall()
        return [_payout(row) for row in rows]

    def payout(self, payout_id: bytes) -> PayoutRow | None:
        row = self._db.execute(
            "SELECT payout_id, merchant, issuer, amount_cents, created_ms, height, state, "
            "transfer_id, settle_tx, reference, outside FROM payouts WHERE payout_id = ?",
            (payout_id,),
        ).fetchone()
        return None if row is None else _payout(row)

    def all_payouts(self) -> list[PayoutRow]:
        return self.payouts(*PayoutState)

    def counts(self) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT state, COUNT(*), COALESCE(SUM(amount_cents), 0) FROM payouts GROUP BY state"
        ).fetchall()
        out = {f"{s.value}_count": 0 for s in PayoutState}
        out.update({f"{s.value}_cents": 0 for s in PayoutState})
        for state, count, cents in rows:
            out[f"{state}_count"] = int(count)
            out[f"{state}_cents"] = int(cents)
        return out

    def oldest_in_flight_ms(self) -> int | None:
        """Block time of the oldest file that still has a payout neither settled nor returned
        on the ledger (sent to the bank, confirmed or rejected by it, or its ledger
        transaction pending); None when every filed payout is closed. Payouts not yet in a
        file wait on their merchant's schedule, IBAN or escrow account, not on settlement."""
        marks = ",".join("?" * len(IN_FLIGHT))
        row = self._db.execute(
            "SELECT MIN(f.created_ms) FROM payouts p "
            "JOIN transfers t ON t.transfer_id = p.transfer_id "
            f"JOIN files f ON f.file_id = t.file_id WHERE p.state IN ({marks})",
            [state.value for state in IN_FLIGHT],
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def payout_lines(self, states: Sequence[PayoutState], limit: int) -> list[PayoutLine]:
        """The newest ``limit`` payouts in ``states``, newest first, with their transfer."""
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            "SELECT p.payout_id, p.merchant, p.issuer, p.amount_cents, p.created_ms, p.state, "
            "t.file_id, COALESCE(t.end_to_end_id, ''), COALESCE((SELECT r.reason FROM "
            "return_txs r WHERE r.payout_id = p.payout_id AND r.state != 'abandoned' "
            "ORDER BY r.height DESC LIMIT 1), t.reason, '') FROM payouts p "
            "LEFT JOIN transfers t ON t.transfer_id = p.transfer_id "
            f"WHERE p.state IN ({marks}) ORDER BY p.height DESC, p.payout_id LIMIT ?",
            [*(s.value for s in states), limit],
        ).fetchall()
        return [
            PayoutLine(
                bytes(row[0]),
                bytes(row[1]),
                bytes(row[2]),
                int(row[3]),
                int(row[4]),
                PayoutState(row[5]),
                row[6],
                str(row[7]),
                str(row[8]),
            )
            for row in rows
        ]

    def imports(self, limit: int) -> list[ImportRow]:
        """The newest ``limit`` statements imported, newest first."""
        rows = self._db.execute(
            "SELECT import_id, statement_id, kind, imported_ms, report FROM imports "
            "ORDER BY import_id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [ImportRow(int(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4])) for r in rows]

    def recent_files(self, limit: int) -> list[FileRow]:
        """The newest ``limit`` files, newest first, without their bytes."""
        return self._files("NULL", "ORDER BY file_id DESC LIMIT ?", [limit])

    # --- files and transfers -------------------------------------------------------------------

    def assign_file(
        self,
        escrow: EscrowRow,
        created_ms: int,
        execution_date: str,
        plans: Sequence[TransferPlan],
    ) -> int:
        """Put due payouts into a new file, one transfer per plan (state ``assigned``)."""
        if not plans:
            raise JournalError("a file needs at least one transfer")
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO files (issuer, created_ms, execution_date, state, debtor_name, "
                "debtor_iban, debtor_bic) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    escrow.issuer,
                    created_ms,
                    execution_date,
                    FileState.ASSIGNED.value,
                    escrow.name,
                    escrow.iban,
                    escrow.bic,
                ),
            )
            file_id = cursor.lastrowid
            if file_id is None:
                raise JournalError("no file id")
            total = 0
            for n, plan in enumerate(plans, start=1):
                amount = self._take_payouts(db, plan, escrow.issuer)
                transfer = db.execute(
                    "INSERT INTO transfers (file_id, merchant, issuer, creditor_name, iban, bic, "
                    "amount_cents, end_to_end_id, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        file_id,
                        plan.merchant,
                        escrow.issuer,
                        plan.creditor_name,
                        plan.iban,
                        plan.bic,
                        amount,
                        end_to_end_id(file_id, n),
                        TransferState.SENT.value,
                    ),
                ).lastrowid
                marks = ",".join("?" * len(plan.payout_ids))
                db.execute(
                    f"UPDATE payouts SET state = ?, transfer_id = ?, attempts = attempts + 1 "
                    f"WHERE payout_id IN ({marks})",
                    [PayoutState.IN_FILE.value, transfer, *plan.payout_ids],
                )
                total += amount
            db.execute(
                "UPDATE files SET transfers = ?, total_cents = ? WHERE file_id = ?",
                (len(plans), total, file_id),
            )
        return file_id

    @staticmethod
    def _take_payouts(db: sqlite3.Connection, plan: TransferPlan, issuer: bytes) -> int:
        amount = 0
        for payout_id in plan.payout_ids:
            row = db.execute(
                "SELECT state, merchant, issuer, amount_cents FROM payouts WHERE payout_id = ?",
                (payout_id,),
            ).fetchone()
            if row is None or row[0] != PayoutState.SEEN.value:
                raise JournalError(f"payout {payout_id.hex()} is not waiting for a file")
            if row[1] != plan.merchant or row[2] != issuer:
                raise JournalError(f"payout {payout_id.hex()} is not this transfer's")
            amount += int(row[3])
        return amount

    def files(self, *states: FileState) -> list[FileRow]:
        marks = ",".join("?" * len(states))
        return self._files(
            "xml", f"WHERE state IN ({marks}) ORDER BY file_id", [s.value for s in states]
        )

    def _files(self, xml: str, where: str, args: list[object]) -> list[FileRow]:
        rows = self._db.execute(
            "SELECT file_id, issuer, created_ms, execution_date, state, debtor_name, debtor_iban, "
            f"debtor_bic, transfers, total_cents, msg_id, {xml}, name, failure FROM files {where}",
            args,
        ).fetchall()
        return [
            FileRow(
                file_id=row[0],
                issuer=bytes(row[1]),
                created_ms=row[2],
                execution_date=row[3],
                state=FileState(row[4]),
                debtor_name=row[5],
                debtor_iban=row[6],
                debtor_bic=row[7],
                transfers=row[8],
                total_cents=row[9],
                msg_id=row[10],
                xml=None if row[11] is None else bytes(row[11]),
                name=row[12],
                failure=row[13],
            )
            for row in rows
        ]

    def transfers_of_file(self, file_id: int) -> list[TransferRow]:
        return self._transfers("WHERE file_id = ? ORDER BY transfer_id", (file_id,))

    def transfer(self, transfer_id: int) -> TransferRow | None:
        rows = self._transfers("WHERE transfer_id = ?", (transfer_id,))
        return rows[0] if rows else None

    def transfer_by_reference(self, end_to_end_id: str) -> TransferRow | None:
        rows = self._transfers("WHERE end_to_end_id = ?", (end_to_end_id,))
        return rows[0] if rows else None

    def transfers(self, *states: TransferState) -> list[TransferRow]:
        marks = ",".join("?" * len(states))
        return self._transfers(
            f"WHERE state IN ({marks}) ORDER BY transfer_id", tuple(s.value for s in states)
        )

    def _transfers(self, where: str, args: tuple[object, ...]) -> list[TransferRow]:
        rows = self._db.execute(
            "SELECT transfer_id, file_id, merchant, issuer, creditor_name, iban, bic, "
            f"amount_cents, end_to_end_id, state, reason, booked FROM transfers {where}",
            args,
        ).fetchall()
        return [
            TransferRow(
                transfer_id=row[0],
                file_id=row[1],
                merchant=bytes(row[2]),
                issuer=bytes(row[3]),
                creditor_name=row[4],
                iban=row[5],
                bic=row[6],
                amount_cents=row[7],
                end_to_end_id=row[8],
                state=TransferState(row[9]),
                reason=row[10],
                booked=row[11],
            )
            for row in rows
        ]

    def store_built(self, file_id: int, msg_id: str, xml: bytes) -> None:
        with self._tx() as db:
            changed = db.execute(
                "UPDATE files SET state = ?, msg_id = ?, xml = ? WHERE file_id = ? AND state = ?",
                (FileState.BUILT.value, msg_id, xml, file_id, FileState.ASSIGNED.value),
            ).rowcount
            if changed != 1:
                raise JournalError(f"file {file_id} is not waiting to be built")

    def mark_written(self, file_id: int, name: str) -> None:
        with self._tx() as db:
            changed = db.execute(
                "UPDATE files SET state = ?, name = ? WHERE file_id = ? AND state = ?",
                (FileState.WRITTEN.value, name, file_id, FileState.BUILT.value),
            ).rowcount
            if changed != 1:
                raise JournalError(f"file {file_id} is not waiting to be written")

    def mark_failed(self, file_id: int, reason: str) -> None:
        """The file cannot be made valid pain.001: it is ``failed`` with ``reason``, its
        transfers ``failed`` (never sent) and its payouts ``held``. One transition."""
        with self._tx() as db:
            changed = db.execute(
                "UPDATE files SET state = ?, failure = ? WHERE file_id = ? AND state = ?",
                (
                    FileState.FAILED.value,
                    reason[:FAILURE_CHARS_MAX],
                    file_id,
                    FileState.ASSIGNED.value,
                ),
            ).rowcount
            if changed != 1:
                raise JournalError(f"file {file_id} is not waiting to be built")
            db.execute(
                "UPDATE payouts SET state = ? WHERE state = ? AND transfer_id IN "
                "(SELECT transfer_id FROM transfers WHERE file_id = ?)",
                (PayoutState.HELD.value, PayoutState.IN_FILE.value, file_id),
            )
            db.execute(
                "UPDATE transfers SET state = ? WHERE file_id = ? AND state = ?",
                (TransferState.FAILED.value, file_id, TransferState.SENT.value),
            )

    def release_file(self, file_id: int) -> int:
        """The bank fixed what made the file fail: its held payouts wait for a new file
        (``seen``). Returns how many were released."""
        with self._tx() as db:
            row = db.execute("SELECT state FROM files WHERE file_id = ?", (file_id,)).fetchone()
            if row is None or row[0] != FileState.FAILED.value:
                raise JournalError(f"file {file_id} has not failed")
            return db.execute(
                "UPDATE payouts SET state = ?, transfer_id = NULL WHERE state = ? AND "
                "transfer_id IN (SELECT transfer_id FROM transfers WHERE file_id = ?)",
                (PayoutState.SEEN.value, PayoutState.HELD.value, file_id),
            ).rowcount

    # --- confirmations ---------------------------------------------------------------------------

    def already_imported(self, sha256: str) -> str | None:
        row = self._db.execute("SELECT report FROM imports WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else str(row[0])

    def apply_import(
        self,
        sha256: str,
        statement_id: str,
        kind: str,
        now_ms: int,
        confirmed: Sequence[tuple[int, str]],
        rejected: Sequence[tuple[int, str]],
        report: str,
    ) -> int:
        """Record an imported statement: transfers confirmed (id, booking date) and
        rejected (id, reason), their payouts moved along, and the report. One transition."""
        with self._tx() as db:
            import_id = db.execute(
                "INSERT INTO imports (sha256, statement_id, kind, imported_ms, report) "
                "VALUES (?, ?, ?, ?, ?)",
                (sha256, statement_id, kind, now_ms, report),
            ).lastrowid
            for transfer_id, booked in confirmed:
                self._close_transfer(
                    db, transfer_id, TransferState.CONFIRMED, "", booked, import_id
                )
            for transfer_id, reason in rejected:
                self._close_transfer(db, transfer_id, TransferState.REJECTED, reason, "", import_id)
        return 0 if import_id is None else import_id

    @staticmethod
    def _close_transfer(
        db: sqlite3.Connection,
        transfer_id: int,
        state: TransferState,
        reason: str,
        booked: str,
        import_id: int | None,
    ) -> None:
        changed = db.execute(
            "UPDATE transfers SET state = ?, reason = ?, booked = ?, import_id = ? "
            "WHERE transfer_id = ? AND state = ?",
            (state.value, reason, booked, import_id, transfer_id, TransferState.SENT.value),
        ).rowcount
        if changed != 1:
            raise JournalError(f"transfer {transfer_id} is not waiting for the bank")
        to = PayoutState.CONFIRMED if state is TransferState.CONFIRMED else PayoutState.REJECTED
        db.execute(
            "UPDATE payouts SET state = ? WHERE transfer_id = ? AND state = ?",
            (to.value, transfer_id, PayoutState.IN_FILE.value),
        )

    # --- settle transactions -------------------------------------------------------------------

    def record_settle_tx(
        self, tx_id: bytes, data: bytes, sequence: int, payout_ids: Sequence[bytes]
    ) -> None:
        """Journal a signed settle transaction before it is submitted."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO settle_txs (tx_id, data, sequence, state) VALUES (?, ?, ?, ?)",
                (tx_id, data, sequence, SettleTxState.PENDING.value),
            )
            for payout_id in payout_ids:
                changed = db.execute(
                    "UPDATE payouts SET state = ?, settle_tx = ? WHERE payout_id = ? AND state = ?",
                    (
                        PayoutState.SETTLE_SUBMITTED.value,
                        tx_id,
                        payout_id,
                        PayoutState.CONFIRMED.value,
                    ),
                ).rowcount
                if changed != 1:
                    raise JournalError(f"payout {payout_id.hex()} is not confirmed")

    def record_return_tx(
        self, tx_id: bytes, data: bytes, sequence: int, payout_id: bytes, reason: str
    ) -> None:
        """Journal a signed ``return_payout`` transaction before it is submitted."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO return_txs (tx_id, payout_id, data, sequence, reason, state) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (tx_id, payout_id, data, sequence, reason, SettleTxState.PENDING.value),
            )
            changed = db.execute(
                "UPDATE payouts SET state = ? WHERE payout_id = ? AND state = ?",
                (PayoutState.RETURN_SUBMITTED.value, payout_id, PayoutState.REJECTED.value),
            ).rowcount
            if changed != 1:
                raise JournalError(f"payout {payout_id.hex()} is not waiting to be returned")

    def return_txs(self, state: SettleTxState) -> list[ReturnTxRow]:
        rows = self._db.execute(
            "SELECT tx_id, payout_id, data, sequence, reason, state FROM return_txs "
            "WHERE state = ? ORDER BY sequence",
            (state.value,),
        ).fetchall()
        return [
            ReturnTxRow(
                bytes(row[0]), bytes(row[1]), bytes(row[2]), row[3], row[4], SettleTxState(row[5])
            )
            for row in rows
        ]

    def abandon_return_tx(self, tx_id: bytes) -> None:
        """A return transaction that can never commit: its payout waits for a new one."""
        with self._tx() as db:
            row = db.execute(
                "SELECT payout_id FROM return_txs WHERE tx_id = ? AND state = ?",
                (tx_id, SettleTxState.PENDING.value),
            ).fetchone()
            if row is None:
                return
            db.execute(
                "UPDATE return_txs SET state = ? WHERE tx_id = ?",
                (SettleTxState.ABANDONED.value, tx_id),
            )
            db.execute(
                "UPDATE payouts SET state = ? WHERE payout_id = ? AND state = ?",
                (PayoutState.REJECTED.value, row[0], PayoutState.RETURN_SUBMITTED.value),
            )

    def mark_returned_from_ledger(self, payout_id: bytes, reason: str, height: int) -> None:
        """Reconciliation: the ledger says this payout was returned."""
        with self._tx() as db:
            row = db.execute(
                "SELECT tx_id FROM return_txs WHERE payout_id = ? AND state = ?",
                (payout_id, SettleTxState.PENDING.value),
            ).fetchone()
            tx_id = b"" if row is None else bytes(row[0])
            self._mark_returned(db, payout_id, reason, tx_id, height)

    def settle_txs(self, state: SettleTxState) -> list[SettleTxRow]:
        rows = self._db.execute(
            "SELECT tx_id, data, sequence, state FROM settle_txs WHERE state = ? ORDER BY sequence",
            (state.value,),
        ).fetchall()
        return [SettleTxRow(row[0], row[1], row[2], SettleTxState(row[3])) for row in rows]

    def abandon_settle_tx(self, tx_id: bytes) -> None:
        """A settle transaction that can never commit: its payouts wait for a new one."""
        with self._tx() as db:
            db.execute(
                "UPDATE settle_txs SET state = ? WHERE tx_id = ? AND state = ?",
                (SettleTxState.ABANDONED.value, tx_id, SettleTxState.PENDING.value),
            )
            db.execute(
                "UPDATE payouts SET state = ?, settle_tx = NULL WHERE settle_tx = ? AND state = ?",
                (PayoutState.CONFIRMED.value, tx_id, PayoutState.SETTLE_SUBMITTED.value),
            )

    def mark_settled_from_ledger(self, payout_id: bytes, reference: str, height: int) -> None:
        """Reconciliation: the ledger says this payout is settled."""
        with self._tx() as db:
            row = db.execute(
                "SELECT settle_tx FROM payouts WHERE payout_id = ?", (payout_id,)
            ).fetchone()
            tx_id = b"" if row is None or row[0] is None else bytes(row[0])
            self._mark_settled(db, payout_id, reference, tx_id, height)


_Row = tuple[bytes, bytes, bytes, int, int, int, str, int | None, bytes | None, str, int]


def _payout(row: _Row) -> PayoutRow:
    return PayoutRow(
        payout_id=bytes(row[0]),
        merchant=bytes(row[1]),
        issuer=bytes(row[2]),
        amount_cents=int(row[3]),
        created_ms=int(row[4]),
        height=int(row[5]),
        state=PayoutState(row[6]),
        transfer_id=row[7],
        settle_tx=None if row[8] is None else bytes(row[8]),
        reference=row[9],
        outside=bool(row[10]),
    )


def open_journal(settlement_dir: Path) -> Journal:
    """Open (creating if needed) the journal under a settlement directory."""
    journal = Journal.open(settlement_dir / FILE_NAME)
    journal.create_schema()
    return journal
