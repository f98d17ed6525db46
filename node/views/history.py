"""The history index (who is party to what, merchants' totals) as a derived view."""

from __future__ import annotations

from typing import Final

from node.ledger.state import BlockState, RecordCache, View
from node.views.base import FedBlock, blame
from node.views.history_index import Committed, HistoryIndex, parties

HISTORY: Final = "history"


class HistoryView:
    """Feeds ``HistoryIndex`` (its own LevelDB): kept across restarts, wiped by a rebuild.

    Parties are read from the committed state at the tip (``state``, with the node's
    record cache): the records they read (campaigns, merchants, payouts) are never
    removed, and their issuers never change.

    On a store started from another node's state at ``base`` (state sync), the index
    starts after block ``base``: the history before it is not on this node.
    """

    name: Final = HISTORY

    def __init__(
        self, index: HistoryIndex, state: View, records: RecordCache | None, base: int = 0
    ) -> None:
        self.index = index
        self._state = state
        self._records = records
        self._base = base
        if base and index.height() == 0:
            index.start_at(base)

    def height(self) -> int:
        return self.index.height()

    def apply(self, fed: FedBlock) -> None:
        state = BlockState(self._state, self._records)
        committed = []
        for signed in fed.txs:
            with blame(signed.tx_id):
                committed.append(Committed(signed, parties(signed, state)))
        self.index.add_block(fed.height, committed)

    def reset(self) -> None:
        self.index.wipe()
        if self._base:
            self.index.start_at(self._base)
