"""The node's live feeds as derived views: commit waiters, the event stream, block metrics.

Built and owned by the node's composition root (``node.run.daemon.build_views``),
run by ``node.views.runner`` like every derived view. A live feed does not
replay history: it starts at the stored tip, and a rebuild moves it there again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from node.api import views
from node.api.metrics import NodeMetrics
from node.api.schema import to_json
from node.api.stream import Event, Hub
from node.ledger.parties import parties
from node.ledger.state import BlockState, RecordCache, View
from node.protocol import limits
from node.views.base import FedBlock, blame

EVENTS: Final = "events"
COMMITS: Final = "commits"
METRICS: Final = "metrics"


class CommitWaiters:
    """Futures resolved when a transaction id is finalised (bounded); ``CommitsView``
    resolves them."""

    def __init__(self) -> None:
        self._waiting: dict[bytes, list[asyncio.Future[int]]] = {}
        self._count = 0

    def wait(self, tx_id: bytes) -> asyncio.Future[int] | None:
        if self._count >= limits.MEMPOOL_TXS_MAX:
            return None
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tx_id, []).append(future)
        self._count += 1
        return future

    def forget(self, tx_id: bytes, future: asyncio.Future[int]) -> None:
        waiting = self._waiting.get(tx_id)
        if waiting is not None and future in waiting:
            waiting.remove(future)
            self._count -= 1
            if not waiting:
                del self._waiting[tx_id]

    def committed(self, height: int, tx_ids: list[bytes]) -> None:
        for tx_id in tx_ids:
            for future in self._waiting.pop(tx_id, []):
                self._count -= 1
                if not future.done():
                    future.set_result(height)


class _LiveFeed:
    def __init__(self, tip: Callable[[], int]) -> None:
        self._tip = tip
        self._height = tip()

    def height(self) -> int:
        return self._height

    def reset(self) -> None:
        self._height = self._tip()


class EventsView(_LiveFeed):
    """Publishes each block and its transactions (to their readers) on the hub."""

    name: Final = EVENTS

    def __init__(
        self, hub: Hub, state: View, records: RecordCache | None, tip: Callable[[], int]
    ) -> None:
        super().__init__(tip)
        self.hub = hub
        self._state = state
        self._records = records

    def apply(self, fed: FedBlock) -> None:
        block, height = fed.block, fed.height
        state = BlockState(self._state, self._records)
        header = views.header(block.header, len(block.txs))
        self.hub.publish(Event("block", to_json(header), None))
        for index, signed in enumerate(fed.txs):
            with blame(signed.tx_id):
                readers = parties(signed, state)
            public = {
                "tx_id": signed.tx_id.hex(),
                "height": height,
                "index": index,
                "kind": signed.tx.payload.KIND.name.lower(),
            }
            self.hub.publish(Event("tx", public, readers))
        self._height = height


class MetricsView(_LiveFeed):
    """Counts each block in the node's metrics (height, rounds, interval, kinds)."""

    name: Final = METRICS

    def __init__(
        self,
        metrics: NodeMetrics,
        tip: Callable[[], int],
        certificate_round: Callable[[int], int],
    ) -> None:
        super().__init__(tip)
        self._metrics = metrics
        self._round = certificate_round

    def apply(self, fed: FedBlock) -> None:
        self._metrics.observe_block(
            fed.height,
            fed.time_ms,
            self._round(fed.height),
            [s.tx.payload.KIND.name.lower() for s in fed.txs],
        )
        self._height = fed.height


class CommitsView(_LiveFeed):
    """Wakes ``POST /v1/transactions?wait=true`` when its transaction is in a block."""

    name: Final = COMMITS

    def __init__(self, waiters: CommitWaiters, tip: Callable[[], int]) -> None:
        super().__init__(tip)
        self.waiters = waiters

    def apply(self, fed: FedBlock) -> None:
        self.waiters.committed(fed.height, [s.tx_id for s in fed.txs])
        self._height = fed.height
