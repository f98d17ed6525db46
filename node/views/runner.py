"""Runs the derived views: one asyncio task each, fed committed blocks from the store.

The commit path only calls ``notify`` (keeps the block it just stored, already
decoded, and sets one event per view: no work, no exception). Each view's task
then reads the blocks above its height from that small cache every view shares,
or from the store (decoded there) when it is further behind, and applies them one
by one, yielding to the loop between two blocks, so consensus never waits for
a view and never sees its errors.

A view that raises is marked failed: logged once (its name, the height, the
transaction id when the error is about one), counted in
``relance_view_failures_total{view}``, and stopped at that block; the others
go on. ``rebuild`` resets a view (failed or not) and replays it from the
blocks. A view more than ``limits.VIEW_LAG_BLOCKS_MAX`` blocks behind the
chain is "lagging": still advancing, but not served (its routes answer 503)
until it is back within the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from node.consensus.types import Block
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import limits
from node.views.base import DerivedView, FedBlock, TxError, ViewState, ViewStatus

logger = logging.getLogger(__name__)


class BlockSource(Protocol):
    """The block store as the views read it."""

    def height(self) -> int: ...

    def block(self, height: int) -> bytes | None: ...


FailureCounter = Callable[[str], None]
"""Told the view's name at each failure (``NodeMetrics.observe_view_failure``)."""


class BlockFeed:
    """Committed blocks from the store, decoded, the last few cached for every view."""

    def __init__(
        self, store: BlockSource, chain_id: str, cached_max: int = limits.VIEW_BLOCKS_CACHED_MAX
    ) -> None:
        self._store = store
        self._chain_id = chain_id
        self._cached_max = cached_max
        self._cache: OrderedDict[int, FedBlock] = OrderedDict()

    def height(self) -> int:
        return self._store.height()

    def offer(self, fed: FedBlock) -> None:
        """The block just stored, decoded by the ledger (so no view decodes it again)."""
        self._keep(fed)

    def _keep(self, fed: FedBlock) -> None:
        self._cache[fed.height] = fed
        while len(self._cache) > self._cached_max:
            self._cache.popitem(last=False)

    def get(self, height: int) -> FedBlock:
        known = self._cache.get(height)
        if known is not None:
            return known
        raw = self._store.block(height)
        if raw is None:
            raise RuntimeError(f"block {height} is missing from the store")
        block = Block.decode(raw)
        txs = []
        for data in block.txs:
            signed = t.decode_tx(data, self._chain_id)
            if isinstance(signed, Result):
                raise RuntimeError(f"a committed transaction does not decode at {height}")
            txs.append(signed)
        fed = FedBlock(block, tuple(txs))
        self._keep(fed)
        return fed

    def blocks_after(self, height: int) -> Iterator[FedBlock]:
        """Every stored block above ``height``, in order (a synchronous catch-up)."""
        for h in range(height + 1, self.height() + 1):
            yield self.get(h)


@dataclass
class _Slot:
    view: DerivedView
    state: ViewState
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    rebuild_asked: bool = False
    failures: int = 0
    error: str | None = None
    failed_height: int | None = None
    failed_tx: str | None = None
    task: asyncio.Task[None] | None = None


class ViewRunner:
    """Owns the views' tasks and states. One per node; start on the node's loop."""

    def __init__(
        self,
        feed: BlockFeed,
        views: Sequence[DerivedView],
        on_failure: FailureCounter | None = None,
        lag_max: int = limits.VIEW_LAG_BLOCKS_MAX,
    ) -> None:
        names = [v.name for v in views]
        if len(set(names)) != len(names):
            raise ValueError(f"two views share a name: {names}")
        self.feed = feed
        self._on_failure = on_failure
        self._lag_max = lag_max
        self._slots = {v.name: _Slot(v, ViewState.SERVING) for v in views}
        for slot in self._slots.values():
            self._update(slot)
            if slot.view.height() == 0 and feed.height() > 0:
                slot.state = ViewState.REBUILDING  # a fresh view replays the whole chain
        self._progress = asyncio.Event()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._slots)

    def view(self, name: str) -> DerivedView:
        return self._slots[name].view

    # --- control ---------------------------------------------------------------------------

    def start(self) -> None:
        """One task per view (call on the running loop); each catches up at once."""
        top = self.feed.height()
        for name, slot in self._slots.items():
            if slot.task is None:
                if slot.view.height() < top:
                    logger.info(
                        "view %s: folding blocks %d to %d", name, slot.view.height() + 1, top
                    )
                slot.task = asyncio.create_task(self._follow(slot), name=f"view-{name}")
                slot.wake.set()

    async def close(self) -> None:
        tasks = [s.task for s in self._slots.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for slot in self._slots.values():
            slot.task = None

    def notify(self, block: Block, txs: tuple[t.SignedTx, ...]) -> None:
        """A block was committed and stored: keep it, wake every view. Does no work."""
        if len(txs) == len(block.txs):
            self.feed.offer(FedBlock(block, txs))
        for slot in self._slots.values():
            slot.wake.set()

    def rebuild(self, name: str) -> None:
        """Reset ``name`` and replay it from the blocks, on its own task (KeyError: no view)."""
        slot = self._slots[name]
        slot.rebuild_asked = True
        slot.state = ViewState.REBUILDING
        slot.wake.set()
        logger.warning("view %s: rebuild asked", name)

    # --- reading ---------------------------------------------------------------------------

    def status(self, name: str) -> ViewStatus:
        slot = self._slots[name]
        return ViewStatus(
            name=name,
            state=self._refreshed(slot),
            height=slot.view.height(),
            lag=max(0, self.feed.height() - slot.view.height()),
            failures=slot.failures,
            error=slot.error,
            failed_height=slot.failed_height,
            failed_tx=slot.failed_tx,
        )

    def statuses(self) -> list[ViewStatus]:
        return [self.status(name) for name in self._slots]

    def lags(self) -> list[tuple[str, int]]:
        top = self.feed.height()
        return [(n, max(0, top - s.view.height())) for n, s in self._slots.items()]

    async def settled(self) -> None:
        """Until every view that is not failed has reached the stored tip (tests, tools)."""
        while True:
            progress = self._progress
            if all(
                s.state is ViewState.FAILED or s.view.height() >= self.feed.height()
                for s in self._slots.values()
            ):
                return
            await progress.wait()

    # --- the tasks --------------------------------------------------------------------------

    async def _follow(self, slot: _Slot) -> None:
        while True:
            await slot.wake.wait()
            slot.wake.clear()
            if slot.rebuild_asked:
                slot.rebuild_asked = False
                self._reset(slot)
            while slot.state is not ViewState.FAILED and not slot.rebuild_asked:
                height = slot.view.height() + 1
                if height > self.feed.height():
                    break
                try:
                    slot.view.apply(self.feed.get(height))
                except Exception as exc:
                    self._fail(slot, height, exc)
                    break
                self._update(slot)
                self._signal()
                await asyncio.sleep(0)  # a view never holds the loop for more than a block
            self._update(slot)
            self._signal()

    def _reset(self, slot: _Slot) -> None:
        slot.error = slot.failed_height = slot.failed_tx = None
        slot.state = ViewState.REBUILDING
        try:
            slot.view.reset()
        except Exception as exc:
            self._fail(slot, slot.view.height(), exc)
            return
        logger.info(
            "view %s: rebuilding from block %d to %d",
            slot.view.name,
            slot.view.height() + 1,
            self.feed.height(),
        )

    def _fail(self, slot: _Slot, height: int, exc: Exception) -> None:
        tx_id = exc.tx_id.hex() if isinstance(exc, TxError) else None
        where = f"at block {height}" + ("" if tx_id is None else f", transaction {tx_id}")
        message = f"{where}: {exc}"
        slot.state = ViewState.FAILED
        slot.failures += 1
        slot.error = message[: limits.VIEW_ERROR_CHARS_MAX]
        slot.failed_height = height
        slot.failed_tx = tx_id
        logger.error(
            "view %s FAILED %s; it stops there, consensus and the other views go on "
            "('relance-node views rebuild %s' replays it)",
            slot.view.name,
            message,
            slot.view.name,
            exc_info=exc,
        )
        if self._on_failure is not None:
            with contextlib.suppress(Exception):
                self._on_failure(slot.view.name)

    def _refreshed(self, slot: _Slot) -> ViewState:
        self._update(slot)
        return slot.state

    def _update(self, slot: _Slot) -> None:
        if slot.state is ViewState.FAILED:
            return
        lag = self.feed.height() - slot.view.height()
        if slot.state is ViewState.REBUILDING:
            if lag <= 0 and not slot.rebuild_asked:
                slot.state = ViewState.SERVING
                logger.info("view %s: serving at block %d", slot.view.name, slot.view.height())
            return
        slot.state = ViewState.SERVING if lag <= self._lag_max else ViewState.LAGGING

    def _signal(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()
