"""The history index: which committed transactions each account is party to.

Derived data, rebuildable from the blocks at any time, kept in its own
LevelDB next to the block store (so the block store's layout and its one
batch per block stay untouched). Each block is indexed in one synced batch
that also records the indexed height; at start-up the index catches up from
its height to the store's, so a crash between the two stores loses nothing.

Layout (keys start with a one-byte table name and a slash):

- ``m/height``                            the last indexed height
- ``m/version``                           the layout's version (u32); another is rebuilt
- ``a/<account 32><height u64><index u32>`` -> kind (u8): a tx the account is party to
- ``g/<height u64><index u32>``           -> kind (u8): every tx (the auditor's feed)
- ``t/<merchant 32><r|f>``                -> cents (u64): all payments a merchant
  received (``r``: pay, pay_authorized) and all it refunded (``f``)

"Party" is the privacy rule of the design, computed once here: the sender,
the accounts whose balances the transaction moves, and the issuer of every
campaign and merchant it touches (an issuer reads its campaigns and its
merchants). The bank is party to what it signs and to every payout.

Imports the ledger (to read transactions and records) and plyvel.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Final

import plyvel

from node.consensus.types import Block
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.state import BlockState, RecordCache, View
from node.protocol import limits
from node.protocol.crypto import PublicKey

_HEIGHT: Final = b"m/height"
_VERSION: Final = b"m/version"
_ACCOUNT: Final = b"a/"
_GLOBAL: Final = b"g/"
_TOTAL: Final = b"t/"
_POSITION: Final = struct.Struct(">QI")
_U64: Final = struct.Struct(">Q")
LAYOUT_VERSION: Final = 2  # 2: merchants' totals


@dataclass(frozen=True, slots=True)
class MerchantTotals:
    """Everything a merchant was paid by holders, and everything it refunded, in cents."""

    received_cents: int
    refunded_cents: int


def _money(signed: t.SignedTx) -> tuple[bytes, int] | None:
    """The merchant total a transaction adds to, and by how much."""
    p = signed.tx.payload
    if isinstance(p, t.Pay):
        return _TOTAL + p.merchant + b"r", p.amount_cents
    if isinstance(p, t.PayAuthorized):
        return _TOTAL + signed.tx.sender + b"r", p.amount_cents
    if isinstance(p, t.Refund):
        return _TOTAL + signed.tx.sender + b"f", p.amount_cents
    return None


@dataclass(frozen=True, slots=True, order=True)
class TxRef:
    """Where a committed transaction sits, and its kind."""

    height: int
    index: int
    kind: t.Kind

    @property
    def position(self) -> tuple[int, int]:
        return (self.height, self.index)


# --- parties -------------------------------------------------------------------------


def parties(signed: t.SignedTx, state: BlockState) -> frozenset[PublicKey]:
    """Every account that may read ``signed`` besides auditors (see the module docstring).

    ``state`` reads the state after the transaction's block (records never vanish:
    campaigns, merchants and payouts are kept for ever).
    """
    tx, p = signed.tx, signed.tx.payload
    found: set[bytes] = {tx.sender}
    campaign: str | None = None
    merchants: list[bytes] = []
    match p:
        case t.RegisterMerchant() | t.UpdateMerchant() | t.SuspendMerchant():
            merchants.append(p.merchant)
        case t.CreateCampaign() | t.Fund() | t.CloseCampaign() | t.Withdraw():
            campaign = p.campaign
        case t.Allocate():
            campaign = p.campaign
            found.update(a.holder for a in p.allocations)
        case t.Pay():
            campaign = p.campaign
            merchants.append(p.merchant)
        case t.PayAuthorized():
            campaign = p.authorization.campaign
            found.add(p.authorization.holder)
            merchants.append(tx.sender)
        case t.Sweep():
            campaign = p.campaign
            found.add(p.to)
        case t.Refund():
            campaign = p.campaign
            found.add(p.holder)
            merchants.append(tx.sender)
        case t.Reissue():
            campaign = p.campaign
            found.update((p.lost, p.replacement))
        case t.Transfer():
            merchants += (tx.sender, p.to)
            found.add(p.issuer)
        case t.Redeem():
            merchants.append(tx.sender)
            found.add(p.issuer)
        case t.Settle():
            for settlement in p.settlements:
                payout = state.payout(settlement.payout_id)
                if payout is not None:
                    found.update((payout.merchant, payout.issuer))
        case t.ReturnPayout():
            payout = state.payout(p.payout_id)
            if payout is not None:
                found.update((payout.merchant, payout.issuer))
        case t.ConsentZones():
            found.add(p.region)  # the region sees the communes' consents in its history
    if campaign is not None:
        record = state.campaign(campaign)
        if record is not None:
            found.add(record.issuer)
    for merchant in merchants:
        found.add(merchant)
        shop = state.merchant(merchant)
        if shop is not None:
            found.add(shop.issuer)
    return frozenset(PublicKey(key) for key in found)


Decode = Callable[[bytes], "t.SignedTx | Result"]


@dataclass(frozen=True, slots=True)
class Committed:
    """One committed transaction, decoded, and the accounts party to it."""

    signed: t.SignedTx
    readers: frozenset[PublicKey]


def read_block(
    block: Block, decode: Decode, view: View, records: RecordCache | None = None
) -> list[Committed]:
    """Decode a committed block's transactions and find their parties, in order.

    ``view`` is the committed state at or after the block (``records``: its record
    cache, when there is one). The node passes its memo of decoded transactions
    and its record cache, so a block just executed is neither decoded nor read again.
    """
    state = BlockState(view, records)
    out = []
    for data in block.txs:
        signed = decode(data)
        if isinstance(signed, Result):
            height = block.header.height
            raise RuntimeError(f"a committed transaction does not decode at {height}")
        out.append(Committed(signed, parties(signed, state)))
    return out


# --- the index -------------------------------------------------------------------------


class HistoryIndex:
    """The index's own LevelDB. One writer (the node's loop)."""

    def __init__(self, db: plyvel.DB, path: Path | None = None) -> None:
        self._db = db
        self._path = path

    @classmethod
    def open(cls, path: Path) -> HistoryIndex:
        path.mkdir(parents=True, exist_ok=True)
        index = cls(plyvel.DB(str(path), create_if_missing=True), path)
        if index._db.get(_VERSION) != struct.pack(">I", LAYOUT_VERSION):
            # Another layout (or a new index): start again; the node re-indexes its blocks.
            index._delete_all()
        return index

    def wipe(self) -> None:
        """Forget everything (height 0): the node re-indexes its blocks (a rebuild).

        On a running node: the database's files are removed at once (``destroy_db``),
        not key by key, so the wipe takes no longer than a few file deletions."""
        if self._path is None:
            self._delete_all()
            return
        self._db.close()
        plyvel.destroy_db(str(self._path))
        self._db = plyvel.DB(str(self._path), create_if_missing=True)
        self._delete_all()

    def _delete_all(self) -> None:
        """Delete key by key, then write an empty index (height 0, this layout).
        The version goes first, so a crash halfway through starts the wipe again."""
        db = self._db
        db.delete(_VERSION, sync=True)
        while True:
            keys = list(islice(db.iterator(include_value=False), limits.INDEX_WIPE_BATCH_KEYS))
            if not keys:
                break
            with db.write_batch(transaction=True) as batch:
                for key in keys:
                    batch.delete(key)
        with db.write_batch(transaction=True, sync=True) as batch:
            batch.put(_HEIGHT, _U64.pack(0))
            batch.put(_VERSION, struct.pack(">I", LAYOUT_VERSION))

    def close(self) -> None:
        self._db.close()

    def start_at(self, height: int) -> None:
        """An empty index begins after block ``height``: a store started from another
        node's state there (state sync) holds no block before it to index."""
        with self._db.iterator(prefix=_GLOBAL, include_value=False) as entries:
            indexed = next(entries, None) is not None
        if self.height() != 0 or indexed:
            raise RuntimeError("only an empty index starts at a later height")
        self._db.put(_HEIGHT, _U64.pack(height), sync=True)

    def height(self) -> int:
        raw = self._db.get(_HEIGHT)
        return 0 if raw is None else int(_U64.unpack(raw)[0])

    def add_block(self, height: int, txs: Sequence[Committed]) -> None:
        """Index one committed block (its height must follow the indexed one)."""
        if height != self.height() + 1:
            raise RuntimeError(f"index at {self.height()} cannot take block {height}")
        totals: dict[bytes, int] = {}
        # All or nothing: the totals are running sums, so half a block must never land.
        with self._db.write_batch(transaction=True, sync=True) as batch:
            for index, committed in enumerate(txs):
                position = _POSITION.pack(height, index)
                kind = bytes([int(committed.signed.tx.payload.KIND)])
                batch.put(_GLOBAL + position, kind)
                for account in committed.readers:
                    batch.put(_ACCOUNT + account + position, kind)
                money = _money(committed.signed)
                if money is not None:
                    key, cents = money
                    if key not in totals:
                        totals[key] = self._total(key)
                    totals[key] += cents
            for key, cents in totals.items():
                batch.put(key, _U64.pack(cents))
            batch.put(_HEIGHT, _U64.pack(height))

    def merchant_totals(self, merchant: bytes) -> MerchantTotals:
        return MerchantTotals(
            self._total(_TOTAL + merchant + b"r"), self._total(_TOTAL + merchant + b"f")
        )

    def _total(self, key: bytes) -> int:
        raw = self._db.get(key)
        return 0 if raw is None else int(_U64.unpack(raw)[0])

    def catch_up(self, blocks: Iterable[Block], chain_id: str, view: View) -> int:
        """Index ``blocks`` (those above the indexed height, in order); returns how many."""
        count = 0
        for block in blocks:
            txs = read_block(block, lambda data: t.decode_tx(data, chain_id), view)
            self.add_block(block.header.height, txs)
            count += 1
        return count

    def history(
        self,
        account: bytes | None,
        before: tuple[int, int] | None,
        kinds: frozenset[t.Kind],
        limit: int,
        scan_max: int,
    ) -> tuple[list[TxRef], tuple[int, int] | None]:
        """Newest first: up to ``limit`` refs strictly before ``before`` (None: the top),
        of ``kinds`` (empty: all), for ``account`` (None: every transaction).

        Returns the refs and the cursor to continue from (None: the end).
        Reads at most ``scan_max`` entries.
        """
        prefix = _GLOBAL if account is None else _ACCOUNT + account
        stop = prefix + (b"\xff" * 12 if before is None else _POSITION.pack(*before))
        out: list[TxRef] = []
        last: tuple[int, int] | None = None
        for scanned, (key, value) in enumerate(self._iterate(prefix, stop), start=1):
            height, index = _POSITION.unpack(key[len(prefix) :])
            last = (height, index)
            kind = t.Kind(value[0])
            if not kinds or kind in kinds:
                out.append(TxRef(height, index, kind))
                if len(out) >= limit:
                    return out, last
            if scanned >= scan_max:
                return out, last
        return out, None

    def raw_history(self, account: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """The newest ``limit`` entries of ``account``'s history as stored (newest first),
        read without Python code per entry (a reading thread leaves the interpreter to the
        node's loop); ``parse_history`` makes them refs."""
        entries: Iterator[tuple[bytes, bytes]] = self._db.iterator(
            prefix=_ACCOUNT + account, reverse=True
        )
        return list(islice(entries, limit))

    def is_party(self, account: bytes, height: int, index: int) -> bool:
        return self._db.get(_ACCOUNT + account + _POSITION.pack(height, index)) is not None

    def _iterate(self, prefix: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        iterator: Iterator[tuple[bytes, bytes]] = self._db.iterator(
            start=prefix, stop=stop, reverse=True
        )
        return iterator


def parse_history(
    account: bytes, entries: Sequence[tuple[bytes, bytes]], kinds: frozenset[t.Kind]
) -> list[TxRef]:
    """``raw_history``'s entries as refs, of ``kinds`` only (empty: all)."""
    start = len(_ACCOUNT) + len(account)
    refs = []
    for key, value in entries:
        kind = t.Kind(value[0])
        if not kinds or kind in kinds:
            height, index = _POSITION.unpack(key[start:])
            refs.append(TxRef(height, index, kind))
    return refs
