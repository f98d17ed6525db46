"""What the API reads of the chain: blocks (a small cache of decoded ones), certificates,
the transaction at a position, who may read it, and pages of history (through the history
index, so a history read answers 503 while that view is not serving)."""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from node.api import models as m
from node.api import views
from node.api.access import Viewer, Viewers
from node.api.inputs import decode_cursor, encode_cursor
from node.api.problems import ApiError
from node.api.view_gate import ViewGate
from node.app.ledger_app import LedgerApp
from node.consensus.types import Block, Certificate
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import limits
from node.protocol.errors import ApiInvariantBroken
from node.store.blockstore import BlockStore
from node.views.history_index import TxRef

_POSITION = struct.Struct(">QI")


class ChainReads:
    """Reads of the committed chain in ``store`` (of the chain ``chain_id``)."""

    def __init__(self, store: BlockStore, chain_id: str, gate: ViewGate) -> None:
        self.store = store
        self.chain_id = chain_id
        self._gate = gate
        self._blocks: OrderedDict[int, Block] = OrderedDict()

    # --- blocks ----------------------------------------------------------------------

    def block(self, height: int) -> Block | None:
        cached = self._blocks.get(height)
        if cached is not None:
            self._blocks.move_to_end(height)
            return cached
        raw = self.store.block(height)
        if raw is None:
            return None
        block = Block.decode(raw)
        self._blocks[height] = block
        while len(self._blocks) > limits.HTTP_BLOCKS_CACHED_MAX:
            self._blocks.popitem(last=False)
        return block

    def certificate(self, height: int) -> Certificate | None:
        raw = self.store.certificate(height)
        return None if raw is None else Certificate.decode(raw)

    def signed_at(self, height: int, index: int) -> tuple[t.SignedTx, Block]:
        block = self.block(height)
        if block is None or index >= len(block.txs):
            raise ApiInvariantBroken(f"the index points at a missing transaction {height}/{index}")
        signed = t.decode_tx(block.txs[index], self.chain_id)
        if isinstance(signed, Result):
            raise ApiInvariantBroken(f"a committed transaction does not decode at {height}/{index}")
        return signed, block

    # --- history --------------------------------------------------------------------------

    def may_read(self, viewer: Viewer | None, height: int, index: int) -> bool:
        if viewer is None:
            return False
        if viewer.reads_all:
            return True
        return self._gate.index.is_party(viewer.key, height, index)

    def transaction(self, ref: TxRef, viewer: Viewer | None) -> m.Transaction:
        signed, block = self.signed_at(ref.height, ref.index)
        return views.transaction(
            signed, ref.height, ref.index, block.header.time_ms, viewer, self.store
        )

    def history(
        self,
        viewer: Viewer,
        account: bytes | None,
        kinds: frozenset[t.Kind],
        campaign: str | None,
        cursor: str | None,
        limit: int,
    ) -> m.TransactionPage:
        """A page of ``account``'s history (None: every transaction) that ``viewer`` may read."""
        before: tuple[int, int] | None = None
        if cursor is not None:
            raw = decode_cursor(cursor)
            if len(raw) != _POSITION.size:
                raise ApiError(400, "the cursor is not one this node gave", slug="bad-cursor")
            before = _POSITION.unpack(raw)
        filter_party = account is not None and not (viewer.reads_all or viewer.key == account)
        items: list[m.Transaction] = []
        budget = limits.HTTP_SCAN_ITEMS_MAX
        while budget > 0 and len(items) < limit:
            index = self._gate.index
            refs, before = index.history(account, before, kinds, limit - len(items), budget)
            budget -= max(1, len(refs))
            for ref in refs:
                if filter_party and not index.is_party(viewer.key, ref.height, ref.index):
                    continue
                item = self.transaction(ref, viewer)
                if campaign is not None and item.campaign != campaign:
                    continue
                items.append(item)
            if before is None:
                break
        next_cursor = None if before is None else encode_cursor(_POSITION.pack(*before))
        return m.TransactionPage(items, next_cursor)


@dataclass(frozen=True, slots=True)
class ChainRouteParts:
    """What the block, proof and transaction routes read of the API: the ledger, the
    chain's blocks and history, and who asks."""

    ledger: LedgerApp
    reads: ChainReads
    viewers: Viewers
