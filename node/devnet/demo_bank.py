"""The bank of the demo's month: some shops are paid by the bank's settlement service.

In each town, the first ``SHOPS_PER_TOWN`` auto-redeeming shops of the centre
register an IBAN with the bank (``MerchantRow`` in the service's journal) and
name it on the ledger (the shop's own ``update_merchant`` with the salted hash,
its address sent back unchanged). From then on the demo does not settle their
payouts itself: the bank's node's ``node.settlement.service.SettlementService``
does, while the month is written, over the history's store:

- it follows each block as it would in the node (payouts opened, settled, returned);
- on the daily schedule it writes one pain.001 per day per commune's escrow
  account into the outbox (``<bank home>/settlement/outbox``);
- on weekdays at ``STATEMENT_HOUR`` the bank's answer to the files sent since the
  last one (``node.settlement.banksim``, camt.054) is imported
  (``node.settlement.reconcile``), which confirms the transfers;
- the service then posts its ``settle`` transaction (the end-to-end ids as bank
  references), which goes into the next block; once in the month the bank
  returns one transfer (``RETURN_REASON``, account closed) and the service posts a
  ``return_payout``: the payout's units go back to the shop.

So the bank's page has something true in every section: files written, imports,
payouts in a file, settled and returned. The live demo (``node.devnet.demo``) keeps out of
these shops' payouts too: the bank's node goes on writing their daily files.

The service is the node's own code; what stands in for the node is ``_HistoryNode``:
the history's store, its last block time, and a "mempool" whose transactions the
history puts at the head of its next block.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, cast

from schwifty import IBAN

from node.app.certified import HistoryWriter
from node.app.ledger_app import LedgerApp
from node.consensus.mempool import Verdict
from node.devnet.town.model import Shop
from node.devnet.town.rhythm import Move, Rhythm
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol.crypto import Digest, digest
from node.protocol.errors import NodeRunError
from node.settlement import banksim, camt, refhash
from node.settlement.journal import FileState, MerchantRow, Schedule, open_journal
from node.settlement.reconcile import import_statement
from node.settlement.service import SettlementService, read_settings
from node.store.blockstore import BlockStore

SHOPS_PER_TOWN: Final = 2
STATEMENT_HOUR: Final = 15  # Brussels time, weekdays: the bank's camt.054 of the day
RETURN_REASON: Final = "AC04"  # ISO 20022: closed account
RETURN_FROM_STATEMENT: Final = 2  # the bank returns one transfer of its second statement
BANK_CODE: Final = "363"  # the shops' bank, for their (generated, valid) Belgian IBANs


@dataclass(frozen=True, slots=True)
class _LastBlock:
    time_ms: int


class _HistoryNode:
    """What ``SettlementService`` reads of its node, over the history being written."""

    def __init__(self, writer: HistoryWriter) -> None:
        self.writer = writer
        self.genesis = writer.genesis
        self.mempool: dict[bytes, bytes] = {}  # submitted, for the next block

    @property
    def store(self) -> BlockStore:
        return self.writer.store

    def last_block(self) -> _LastBlock:
        return _LastBlock(self.writer.time_ms)

    def submit(self, data: bytes) -> Verdict:
        signed = t.decode_tx(data, self.genesis.chain_id)
        if isinstance(signed, Result):
            return Verdict(None, signed)
        self.mempool[signed.tx_id] = data
        return Verdict(signed.tx_id, Result.OK)


def shop_iban(n: int) -> refhash.Account:
    """The ``n``-th demo shop's account: a valid Belgian IBAN (and the BIC of its bank)."""
    return refhash.parse_iban(
        str(IBAN.generate("BE", bank_code=BANK_CODE, account_code=f"{n:07d}"))
    )


class DemoBank:
    """The settlement service run over the history (see the module docstring)."""

    def __init__(self, bank_home: Path, writer: HistoryWriter, shops: set[bytes]) -> None:
        """``shops``: the set the demo reads (``Demo.paid_by_files``), filled here."""
        self.node = _HistoryNode(writer)
        settings = read_settings(bank_home)
        self.journal = open_journal(settings.directory)
        self.service = SettlementService(
            cast(LedgerApp, self.node), self.journal, settings, lambda data: None
        )
        self.service.start()
        self.shops = shops  # paid by files: the demo does not settle them
        self.sent: set[int] = set()  # files the bank has answered
        self.statements = 0

    def close(self) -> None:
        self.journal.close()

    def register_ibans(self, towns: list[Rhythm], time_ms: int) -> list[tuple[Rhythm, Move]]:
        """Each town's first auto-redeeming shops of the centre register an IBAN with the
        bank; their own updates that name it on the ledger (for the next block)."""
        moves = []
        for town in towns:
            chosen = [s for s in town.joined if not s.keeps_units][:SHOPS_PER_TOWN]
            for shop in chosen:
                account = shop_iban(len(self.shops) + 1)
                salt = digest(b"demo-salt:" + shop.signer.public_key)[: refhash.SALT_BYTES]
                ref = refhash.ref_hash(account.iban, salt)
                self.journal.register_merchant(
                    MerchantRow(
                        shop.signer.public_key,
                        account.iban,
                        account.bic,
                        salt,
                        ref,
                        Schedule.DAILY,
                        time_ms,
                    )
                )
                self.shops.add(shop.signer.public_key)
                moves.append((town, Move(shop.signer, _naming(shop, ref))))
        return moves

    def after_block(self) -> None:
        """The service's step after a sealed block (files, settle and return transactions)."""
        self.service.step()

    def bank_sequence(self) -> int:
        """The bank's next sequence as the last sealed block left it."""
        raw = self.node.store.get(r.bank_key(self.service.bank))
        return 0 if raw is None else r.Bank.decode(raw).sequence

    def pending(self) -> list[t.SignedTx]:
        """What the service submitted since the last block, for the head of the next one."""
        out = []
        for data in self.node.mempool.values():
            signed = t.decode_tx(data, self.node.genesis.chain_id)
            if isinstance(signed, t.SignedTx):
                out.append(signed)
        self.node.mempool.clear()
        return out

    def statement(self, time_ms: int) -> int:
        """The bank's camt.054 for the files written since its last one, imported now;
        the number of entries it brought."""
        files = [f for f in self.journal.files(FileState.WRITTEN) if f.file_id not in self.sent]
        if not files:
            return 0
        self.statements += 1
        booked = datetime.fromtimestamp(time_ms / 1000, UTC).date().isoformat()
        reject = {}
        if self.statements == RETURN_FROM_STATEMENT:
            first = self.journal.transfers_of_file(files[0].file_id)[0]
            reject[first.end_to_end_id] = RETURN_REASON
        answers = banksim.statements([f.xml or b"" for f in files], booked, "camt.054", reject)
        entries = 0
        for answer in answers:
            report = import_statement(self.journal, camt.parse(answer), time_ms)
            if not report.ok:
                raise NodeRunError(f"the demo bank's statement does not match: {report.to_json()}")
            entries += report.entries
        self.sent.update(f.file_id for f in files)
        return entries


def _naming(shop: Shop, ref: bytes) -> t.UpdateMerchant:
    """The shop's own update naming its IBAN's hash: every other field as registered."""
    return t.UpdateMerchant(
        shop.signer.public_key,
        shop.name,
        shop.category,
        shop.zone,
        Digest(ref),
        not shop.keeps_units,
        shop.address,
    )
