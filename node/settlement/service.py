"""The settlement service: part of the bank's node when its home holds ``settlement.toml``.

The node runs it as a derived view (``SettlementWatcher``, named "settlement"):
it is fed each committed block from the store, off the commit path; at the
tip (and once at start) it runs one ``step``:

1. ingest the blocks it has not seen: payouts opened by ``pay`` (auto-redeem),
   ``pay_authorized`` and ``redeem``, payouts settled by ``settle`` and payouts
   returned by ``return_payout``;
2. follow its settle and return transactions: committed ones settle or return
   their payouts; one that can no longer commit (its sequence was used by
   another bank transaction) is abandoned and its payouts wait for a new one;
3. finish files left half-way by a crash (``assigned -> built -> written``); a
   file that cannot be made valid pain.001 is ``failed`` with its reason and its
   payouts ``held`` (``relance-node settlement release`` re-queues them): it never
   stops the other files, settlements or returns;
4. batch the payouts that are due on their merchant's schedule (``daily``
   unless the merchant chose otherwise or ``default_schedule`` says so: one file
   a day per escrow account) into one
   pain.001 file per issuer (one transfer per merchant), if the merchant's
   IBAN is registered with the bank and its salted hash is the one on the
   ledger, and the issuer's escrow account is known;
5. post one ``settle`` transaction for confirmed payouts (journaled first),
   with each transfer's end-to-end id as the bank reference;
6. post one ``return_payout`` transaction for a payout whose transfer the bank
   rejected (journaled first): the payout's units go back to the merchant's
   balance on the ledger, with the bank's ISO 20022 return reason (``AC04``
   closed account, ``AC01`` wrong IBAN; ``NARR`` when the statement gave none
   that is a code) and the transfer's end-to-end id as the bank reference.

One bank transaction (settle or return) is in flight at a time: they share the
bank's sequence.

Schedules use block time (the consensus clock): ``daily`` payouts are due at
the first block after the day (``day_ms``) in which they were opened ends,
``weekly`` at the first block of the next week (weeks start on Monday 00:00 UTC
when ``day_ms`` is a real day).

Crash safety: every transition is journaled (fsynced) before its effect, and
every effect is idempotent or checked against the ledger on the next step, so
the process may be killed at any instant. Tests inject ``crash`` (called at each
of ``CRASH_POINTS``) through the fault tooling's entry point (``tools.faults.node``);
a node started by ``relance-node start`` has none.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from node.app.ledger_app import LedgerApp
from node.consensus.mempool import Verdict
from node.consensus.types import Block
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.rules import is_code
from node.protocol import limits
from node.protocol.crypto import Digest, Signer
from node.protocol.errors import SettlementInvariantBroken
from node.settlement import pain001
from node.settlement.journal import (
    FileState,
    Journal,
    NewPayout,
    PayoutRow,
    PayoutState,
    Schedule,
    SettleTxState,
    TransferPlan,
    open_journal,
)
from node.settlement.refhash import matches
from node.text.settings import ConfigError, read_toml
from node.views.base import FedBlock

logger = logging.getLogger(__name__)

SETTINGS_FILE: Final = "settlement.toml"
KEY_FILE_CHARS_MAX: Final = 255  # bank_key_file, a path relative to the home
SETTLEMENT_DIR: Final = "settlement"
OUTBOX_DIR: Final = "outbox"
DAY_MS: Final = 86_400_000
WEEK_OFFSET_DAYS: Final = 4  # 1970-01-01 was a Thursday; weeks start on Mondays
TRANSFERS_PER_FILE_MAX: Final = 1_000
PAYOUT_KINDS: Final = frozenset({t.Kind.PAY, t.Kind.PAY_AUTHORIZED, t.Kind.REDEEM})
CRASH_POINTS: Final = (
    "file-assigned",
    "file-built",
    "file-on-disk",
    "file-written",
    "settle-recorded",
    "settle-submitted",
    "return-recorded",
    "return-submitted",
)
RETURN_REASON_UNKNOWN: Final = "NARR"  # ISO 20022: the reason is given as narrative only


class SettingsError(ConfigError):
    """``settlement.toml`` is not valid; the message names the key."""


@dataclass(frozen=True, slots=True)
class Settings:
    bank_key: Signer
    day_ms: int
    directory: Path  # the journal and the outbox live here
    # The schedule of a merchant that registers its IBAN without choosing one: ``daily``
    # (one pain.001 per day per debtor account), ``immediate`` or ``weekly``.
    default_schedule: Schedule = Schedule.DAILY

    @property
    def outbox(self) -> Path:
        return self.directory / OUTBOX_DIR


def read_settings(home: Path) -> Settings:
    """``home/settlement.toml``: ``bank_key_file`` (hex seed, relative to the home), an
    optional ``day_ms`` (the length of a "day" for schedules; tests shorten it) and an
    optional ``default_schedule`` (``daily`` unless set)."""
    doc = read_toml(home / SETTINGS_FILE, SettingsError)
    key_file = doc.text("bank_key_file", KEY_FILE_CHARS_MAX)
    day_ms = doc.integer("day_ms", 1_000, DAY_MS, DAY_MS)
    schedule = doc.choice("default_schedule", [s.value for s in Schedule], Schedule.DAILY.value)
    try:
        seed = bytes.fromhex((home / key_file).read_text(encoding="ascii").strip())
        key = Signer(seed)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{SETTINGS_FILE}: cannot read the bank key: {exc}") from None
    return Settings(key, day_ms, home / SETTLEMENT_DIR, Schedule(schedule))


def write_settings(
    home: Path,
    bank_key_file: str,
    day_ms: int = DAY_MS,
    default_schedule: Schedule = Schedule.DAILY,
) -> None:
    (home / SETTINGS_FILE).write_text(
        "# The bank's settlement service (issue 8): present only in the bank node's home.\n"
        f'bank_key_file = "{bank_key_file}"\n'
        f"day_ms = {day_ms}\n"
        "# Merchants that do not choose are paid daily: one pain.001 per day per debtor\n"
        "# (escrow) account. immediate: a file after each block that opens payouts.\n"
        f'default_schedule = "{default_schedule.value}"\n',
        encoding="utf-8",
    )


def is_due(schedule: Schedule, created_ms: int, now_ms: int, day_ms: int) -> bool:
    """Whether a payout opened at ``created_ms`` is due at block time ``now_ms``."""
    if schedule is Schedule.IMMEDIATE:
        return True
    if schedule is Schedule.DAILY:
        return now_ms // day_ms > created_ms // day_ms
    week, offset = 7 * day_ms, WEEK_OFFSET_DAYS * day_ms
    return (now_ms - offset) // week > (created_ms - offset) // week


def execution_date(time_ms: int) -> str:
    return datetime.datetime.fromtimestamp(time_ms / 1000, tz=datetime.UTC).date().isoformat()


CrashHook = Callable[[str], None]
"""Called at each of ``CRASH_POINTS`` (tests kill the process there); a no-op in a node."""

SETTLEMENT: Final = "settlement"  # the name of the service's view


def no_crash(point: str) -> None:
    return None


def due_payouts(
    journal: Journal, now_ms: int, day_ms: int
) -> dict[bytes, dict[bytes, list[PayoutRow]]]:
    """The payouts due at block time ``now_ms``, by issuer (one debtor account, so one
    file each) then merchant (one transfer each). Payouts of merchants without an IBAN
    wait. On the daily schedule every payout opened during a day falls due at the same
    block (the first after the day), so a day makes one file per debtor account."""
    due: dict[bytes, dict[bytes, list[PayoutRow]]] = defaultdict(lambda: defaultdict(list))
    for payout in journal.payouts(PayoutState.SEEN):
        registered = journal.merchant(payout.merchant)
        if registered is None:
            continue  # no IBAN yet: held
        if not is_due(registered.schedule, payout.created_ms, now_ms, day_ms):
            continue
        due[payout.issuer][payout.merchant].append(payout)
    return due


class SettlementService:
    """See the module docstring. Runs on the node's event loop."""

    def __init__(
        self,
        ledger: LedgerApp,
        journal: Journal,
        settings: Settings,
        gossip: Callable[[bytes], None],
        crash: CrashHook = no_crash,
    ) -> None:
        self.ledger = ledger
        self.journal = journal
        self.settings = settings
        self._gossip = gossip
        self._crash = crash
        self.bank = settings.bank_key.public_key

    def start(self) -> None:
        """Check the settings against the ledger (a wrong key stops the node's start).
        Recovery waits for the node's view runner (``SettlementWatcher``), so an error
        there marks the view failed instead of stopping the node."""
        params = r.Params.decode(self._raw(r.params_key()))
        if params.bank != self.bank:
            raise SettingsError("the settlement key is not the bank's key in genesis")
        self.settings.outbox.mkdir(parents=True, exist_ok=True)

    def recover(self) -> None:
        """Recover from any crash and catch up with the ledger, then one step."""
        self._ingest_to_tip()
        self._reconcile_with_ledger()
        self.step()

    def close(self) -> None:
        self.journal.close()

    def payout_counts(self) -> dict[str, int]:
        """Payouts by journal state (for the metrics)."""
        counts = self.journal.counts()
        return {state.value: counts[f"{state.value}_count"] for state in PayoutState}

    def step(self) -> None:
        self._ingest_to_tip()
        self._follow_settle_txs()
        self._finish_files()
        self._batch_due()
        self._submit_settlements()
        self._submit_returns()

    # --- 1. following the ledger ----------------------------------------------------------------

    def _raw(self, key: bytes) -> bytes:
        value = self.ledger.store.get(key)
        if value is None:
            raise SettlementInvariantBroken(f"the state lacks {key!r}")
        return value

    def _ingest_to_tip(self) -> None:
        store = self.ledger.store
        for height in range(self.journal.ingested_height() + 1, store.height() + 1):
            raw = store.block(height)
            if raw is None:
                raise SettlementInvariantBroken(f"block {height} is missing")
            self.ingest(height, Block.decode(raw))

    def ingest(self, height: int, block: Block) -> None:
        """Record the payouts block ``height`` opens, settles and returns (in order)."""
        chain_id = self.ledger.genesis.chain_id
        opened: list[NewPayout] = []
        settled: list[tuple[bytes, str, bytes]] = []
        returned: list[tuple[bytes, str, bytes]] = []
        for data in block.txs:
            signed = t.decode_tx(data, chain_id)
            if isinstance(signed, Result):
                raise SettlementInvariantBroken(
                    f"a committed transaction does not decode at {height}"
                )
            payload = signed.tx.payload
            if payload.KIND in PAYOUT_KINDS:
                raw = self.ledger.store.get(r.payout_key(signed.tx_id))
                if raw is not None:
                    p = r.Payout.decode(raw)
                    opened.append(
                        NewPayout(
                            signed.tx_id, p.merchant, p.issuer, p.amount_cents, p.created_ms, height
                        )
                    )
            elif isinstance(payload, t.Settle):
                settled.extend(
                    (s.payout_id, s.bank_reference, signed.tx_id) for s in payload.settlements
                )
            elif isinstance(payload, t.ReturnPayout):
                returned.append((payload.payout_id, payload.reason, signed.tx_id))
        self.journal.ingest_block(height, opened, settled, returned)

    def _reconcile_with_ledger(self) -> None:
        """At start: any payout the ledger shows settled (returned) is so in the journal too."""
        closed = (PayoutState.SETTLED, PayoutState.RETURNED)
        open_states = [s for s in PayoutState if s not in closed]
        for payout in self.journal.payouts(*open_states):
            raw = self.ledger.store.get(r.payout_key(payout.payout_id))
            if raw is None:
                raise SettlementInvariantBroken(
                    f"journal payout {payout.payout_id.hex()} is not on the ledger"
                )
            record = r.Payout.decode(raw)
            if record.settled:
                self.journal.mark_settled_from_ledger(
                    payout.payout_id, record.bank_reference, self.ledger.store.height()
                )
            elif record.returned:
                self.journal.mark_returned_from_ledger(
                    payout.payout_id, record.returned_reason, self.ledger.store.height()
                )

    # --- 2. settle transactions in flight --------------------------------------------------------

    def _bank_sequence(self) -> int:
        return r.Bank.decode(self._raw(r.bank_key(self.bank))).sequence

    def _follow_settle_txs(self) -> None:
        for pending in self.journal.settle_txs(SettleTxState.PENDING):
            if self.ledger.store.tx_location(pending.tx_id) is not None:
                continue  # ingested with its block
            if pending.sequence < self._bank_sequence():
                logger.warning("settle tx %s can no longer commit", pending.tx_id.hex()[:16])
                self.journal.abandon_settle_tx(pending.tx_id)
                self._reconcile_with_ledger()
                continue
            if pending.tx_id in self.ledger.mempool:
                continue
            verdict = self.ledger.submit(pending.data)
            self._after_submit(pending.tx_id, pending.data, verdict)
        for returning in self.journal.return_txs(SettleTxState.PENDING):
            if self.ledger.store.tx_location(returning.tx_id) is not None:
                continue  # ingested with its block
            if returning.sequence < self._bank_sequence():
                logger.warning("return tx %s can no longer commit", returning.tx_id.hex()[:16])
                self.journal.abandon_return_tx(returning.tx_id)
                self._reconcile_with_ledger()
                continue
            if returning.tx_id in self.ledger.mempool:
                continue
            verdict = self.ledger.submit(returning.data)
            self._after_submit(returning.tx_id, returning.data, verdict, returning=True)

    def _after_submit(
        self, tx_id: bytes, data: bytes, verdict: Verdict, returning: bool = False
    ) -> None:
        if verdict.code == Result.OK:
            self._gossip(data)
            return
        code = Result(verdict.code)
        what = "return" if returning else "settle"
        logger.warning("%s tx %s refused: %s", what, tx_id.hex()[:16], code.name)
        if code in (Result.PAYOUT_ALREADY_SETTLED, Result.UNKNOWN_PAYOUT, Result.PAYOUT_RETURNED):
            if returning:
                self.journal.abandon_return_tx(tx_id)
            else:
                self.journal.abandon_settle_tx(tx_id)
            self._reconcile_with_ledger()
        elif code is Result.BAD_SEQUENCE and tx_id not in self.ledger.mempool:
            pass  # another bank transaction holds this sequence: abandoned once it commits

    # --- 3, 4. files ------------------------------------------------------------------------

    def _finish_files(self) -> None:
        for file in self.journal.files(FileState.ASSIGNED):
            try:
                built = pain001.build(file, self.journal.transfers_of_file(file.file_id))
            except pain001.Pain001Error as exc:
                logger.error(
                    "settlement: file %d failed, its payouts are held: %s", file.file_id, exc
                )
                self.journal.mark_failed(file.file_id, str(exc))
                continue
            self.journal.store_built(file.file_id, built.msg_id, built.xml)
            self._crash("file-built")
        for file in self.journal.files(FileState.BUILT):
            if file.xml is None:
                raise SettlementInvariantBroken(f"built file {file.file_id} has no bytes")
            name = f"pain001-{file.file_id:07d}.xml"
            _write_durably(self.settings.outbox / name, file.xml)
            self._crash("file-on-disk")
            self.journal.mark_written(file.file_id, name)
            self._crash("file-written")
            logger.info(
                "settlement: wrote %s (%d transfers, %d cents)",
                name,
                file.transfers,
                file.total_cents,
            )

    def _batch_due(self) -> None:
        now_ms = self.ledger.last_block().time_ms
        due = due_payouts(self.journal, now_ms, self.settings.day_ms)
        for issuer, by_merchant in sorted(due.items()):
            escrow = self.journal.escrow(issuer)
            if escrow is None:
                continue  # the issuer's escrow account is not configured: held
            plans = [
                plan
                for merchant, payouts in sorted(by_merchant.items())
                if (plan := self._plan(merchant, payouts)) is not None
            ][:TRANSFERS_PER_FILE_MAX]
            if plans:
                self.journal.assign_file(escrow, now_ms, execution_date(now_ms), plans)
                self._crash("file-assigned")
        self._finish_files()

    def _plan(self, merchant: bytes, payouts: list[PayoutRow]) -> TransferPlan | None:
        registered = self.journal.merchant(merchant)
        raw = self.ledger.store.get(r.merchant_key(merchant))
        if registered is None or raw is None:
            return None
        record = r.Merchant.decode(raw)
        if not matches(record.payout_ref_hash, registered.iban, registered.salt):
            return None  # the ledger does not (yet) name this IBAN: held
        ids = []
        for payout in payouts:
            onchain = r.Payout.decode(self._raw(r.payout_key(payout.payout_id)))
            if onchain.settled or onchain.returned:
                raise SettlementInvariantBroken(
                    f"payout {payout.payout_id.hex()} closed behind the journal"
                )
            ids.append(payout.payout_id)
        return TransferPlan(merchant, record.name, registered.iban, registered.bic, tuple(ids))

    # --- 5. settling ------------------------------------------------------------------------

    def _in_flight(self) -> bool:
        """One bank transaction (settle or return) at a time: they share its sequence."""
        return bool(
            self.journal.settle_txs(SettleTxState.PENDING)
            or self.journal.return_txs(SettleTxState.PENDING)
        )

    def _submit_settlements(self) -> None:
        if self._in_flight():
            return
        confirmed = self.journal.payouts(PayoutState.CONFIRMED)[: limits.SETTLEMENTS_PER_TX_MAX]
        if not confirmed:
            return
        references: dict[int, str] = {}
        settlements = []
        for payout in confirmed:
            if payout.transfer_id is None:
                raise SettlementInvariantBroken(
                    f"confirmed payout {payout.payout_id.hex()} has no transfer"
                )
            if payout.transfer_id not in references:
                transfer = self.journal.transfer(payout.transfer_id)
                if transfer is None:
                    raise SettlementInvariantBroken(f"no transfer {payout.transfer_id}")
                references[payout.transfer_id] = transfer.end_to_end_id
            settlements.append(
                t.Settlement(Digest(payout.payout_id), references[payout.transfer_id])
            )
        sequence = self._bank_sequence()
        tx = t.Tx(self.ledger.genesis.chain_id, self.bank, sequence, t.Settle(tuple(settlements)))
        signed = tx.sign(self.settings.bank_key)
        data = signed.encode()
        self.journal.record_settle_tx(
            signed.tx_id, data, sequence, [s.payout_id for s in settlements]
        )
        self._crash("settle-recorded")
        verdict = self.ledger.submit(data)
        self._after_submit(signed.tx_id, data, verdict)
        self._crash("settle-submitted")

    # --- 6. returning -----------------------------------------------------------------------

    def _submit_returns(self) -> None:
        """The first payout of a rejected transfer goes back to the merchant's balance."""
        if self._in_flight():
            return
        rejected = self.journal.payouts(PayoutState.REJECTED)
        if not rejected:
            return
        payout = rejected[0]
        transfer = None if payout.transfer_id is None else self.journal.transfer(payout.transfer_id)
        if transfer is None:
            raise SettlementInvariantBroken(
                f"rejected payout {payout.payout_id.hex()} has no transfer"
            )
        reason = transfer.reason if is_code(transfer.reason) else RETURN_REASON_UNKNOWN
        payload = t.ReturnPayout(Digest(payout.payout_id), reason, transfer.end_to_end_id)
        sequence = self._bank_sequence()
        signed = t.Tx(self.ledger.genesis.chain_id, self.bank, sequence, payload).sign(
            self.settings.bank_key
        )
        data = signed.encode()
        self.journal.record_return_tx(signed.tx_id, data, sequence, payout.payout_id, reason)
        self._crash("return-recorded")
        verdict = self.ledger.submit(data)
        self._after_submit(signed.tx_id, data, verdict, returning=True)
        self._crash("return-submitted")


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class SettlementWatcher:
    """The service as a derived view: each committed block is ingested into the journal;
    at the tip the rest of a ``step`` runs (files, settle and return transactions).

    Fed its first block, it recovers first (``SettlementService.recover``). The journal
    is the bank's record, not derived data: a rebuild does not replay it from genesis but
    recovers again and resumes from its ingested height (after a failure, once fixed)."""

    name: Final = SETTLEMENT

    def __init__(self, service: SettlementService) -> None:
        self.service = service
        self._recovered = False

    def height(self) -> int:
        return self.service.journal.ingested_height()

    def apply(self, fed: FedBlock) -> None:
        if not self._recovered:
            self.service.recover()  # ingests up to the tip, this block included
            self._recovered = True
            return
        self.service.ingest(fed.height, fed.block)
        if fed.height >= self.service.ledger.store.height():
            self.service.step()

    def reset(self) -> None:
        self._recovered = False


def open_service(
    home: Path,
    ledger: LedgerApp,
    gossip: Callable[[bytes], None],
    crash: CrashHook = no_crash,
) -> SettlementService | None:
    """The bank node's settlement service, started; None unless ``settlement.toml`` exists."""
    if not (home / SETTINGS_FILE).exists():
        return None
    settings = read_settings(home)
    journal = open_journal(settings.directory)
    service = SettlementService(ledger, journal, settings, gossip, crash)
    try:
        service.start()
    except BaseException:
        journal.close()
        raise
    logger.info("settlement service on: journal %s", settings.directory)
    return service
