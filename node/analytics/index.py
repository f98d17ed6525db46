"""The analytics index: the fold's state, kept in memory, rebuilt from the blocks.

Derived data only, never part of consensus: at start-up the node replays its
stored blocks into a fresh index, then adds each finalised block. Rebuilding
from scratch and maintaining incrementally give equal states
(``snapshot``), which the tests check. Reports are computed on demand from
the events and cached per (issuer, k) until the next block.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Final

from node.analytics import report
from node.analytics.tracker import Tracker
from node.consensus.types import Block
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol.errors import ViewInvariantBroken
from node.protocol.genesis import Genesis
from node.views.base import blame

REPORTS_CACHED_MAX: Final = 32

Snapshot = tuple[object, ...]


class AnalyticsIndex:
    def __init__(self, genesis: Genesis) -> None:
        self.chain_id = genesis.chain_id
        self._issuers = tuple((i.public_key, i.zones) for i in genesis.issuers)
        self.tracker = Tracker(self._issuers)
        self._height = 0
        self._reports: OrderedDict[tuple[bytes, int], report.Report] = OrderedDict()

    def reset(self) -> None:
        """Back to the genesis state (height 0), to be rebuilt from the blocks."""
        self.tracker = Tracker(self._issuers)
        self._height = 0
        self._reports.clear()

    def height(self) -> int:
        return self._height

    def add_block(
        self, block: Block, decode: Callable[[bytes], t.SignedTx | Result] | None = None
    ) -> None:
        """Fold one finalised block (its height must follow the indexed one); ``decode``
        (the node's memo of decoded transactions) saves decoding them again."""
        height = block.header.height
        txs = []
        for data in block.txs:
            signed = t.decode_tx(data, self.chain_id) if decode is None else decode(data)
            if isinstance(signed, Result):
                raise ViewInvariantBroken(f"a committed transaction does not decode at {height}")
            txs.append(signed)
        self.add_decoded(height, block.header.time_ms, txs)

    def add_decoded(self, height: int, time_ms: int, txs: Iterable[t.SignedTx]) -> None:
        """Fold one finalised block's decoded transactions; an error names its transaction."""
        if height != self._height + 1:
            raise ViewInvariantBroken(f"analytics at {self._height} cannot take block {height}")
        self._reports.clear()
        for signed in txs:
            with blame(signed.tx_id):
                self.tracker.apply(signed, time_ms)
        self._height = height

    def catch_up(self, blocks: Iterable[Block]) -> int:
        count = 0
        for block in blocks:
            self.add_block(block)
            count += 1
        return count

    def knows_issuer(self, issuer: bytes) -> bool:
        return bytes(issuer) in self.tracker.histories

    def report(self, issuer: bytes, k: int) -> report.Report:
        """The protected report of ``issuer`` (a known issuer) at the indexed height."""
        key = (bytes(issuer), k)
        cached = self._reports.get(key)
        if cached is not None:
            self._reports.move_to_end(key)
            return cached
        built = report.build(self.tracker.histories[bytes(issuer)], issuer, k, self._height)
        self._reports[key] = built
        while len(self._reports) > REPORTS_CACHED_MAX:
            self._reports.popitem(last=False)
        return built

    def snapshot(self) -> Snapshot:
        """The whole state as plain comparable values (for the rebuild check)."""
        tr = self.tracker
        histories = tuple(
            (
                key,
                h.zones,
                tuple(sorted(h.campaigns.items())),
                tuple(h.events),
                tuple(
                    sorted(
                        (
                            code,
                            p.allocated_cents,
                            p.closed,
                            tuple(sorted((holder, repr(pot)) for holder, pot in p.items())),
                        )
                        for code, p in h.pots.items()
                    )
                ),
            )
            for key, h in sorted(tr.histories.items())
        )
        lots = tuple(
            (key, tuple(repr(lot) for lot in queue))
            for key, queue in sorted(tr.lots.items())
            if queue
        )
        pending = tuple(sorted((key, repr(p)) for key, p in tr.pending.items()))
        return (
            self._height,
            histories,
            tuple(sorted(tr.merchants.items())),
            tuple(sorted(tr.campaign_issuer.items())),
            lots,
            pending,
        )
