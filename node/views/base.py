"""What a derived view is, and what it is fed: pure, no I/O.

A derived view (the history index, the analytics fold, the event feed, the
commit waiters, the settlement watcher) folds committed blocks, one at a time
and in order, into data of its own. It never sees a block before it is
committed and stored, and nothing it does reaches consensus: the runner
(``node.views.runner``) feeds it from the store, on its own task.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from node.consensus.types import Block
from node.ledger import parties
from node.ledger import tx as t
from node.protocol.errors import ViewError


@dataclass(frozen=True, slots=True)
class FedBlock:
    """A committed block and its transactions, decoded once for every view."""

    block: Block
    txs: tuple[t.SignedTx, ...]

    @property
    def height(self) -> int:
        return self.block.header.height

    @property
    def time_ms(self) -> int:
        return self.block.header.time_ms


def as_accounts(
    txs: tuple[t.SignedTx, ...], get: Callable[[bytes], bytes | None]
) -> tuple[t.SignedTx, ...]:
    """The transactions as the accounts they act for (``parties.as_account``), a moved-to
    key's account read from the state by ``get`` (``parties.signs_for``)."""
    return tuple(
        parties.as_account(signed, lambda key: parties.signs_for(key, get)) for signed in txs
    )


class DerivedView(Protocol):
    """One derived view. ``apply`` gets the block after ``height()``, never another."""

    @property
    def name(self) -> str: ...

    def height(self) -> int:
        """The last block folded in (0: none)."""
        ...

    def apply(self, fed: FedBlock) -> None:
        """Fold one committed block in; raising marks the view failed."""
        ...

    def reset(self) -> None:
        """Forget what was folded: ``height()`` afterwards says where the runner restarts
        (0 for a view rebuilt from the blocks; the tip for a live feed)."""
        ...


class TxError(ViewError, RuntimeError):
    """A view failed on one transaction: its id is logged and shown with the failure."""

    def __init__(self, tx_id: bytes, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.tx_id = tx_id


@contextmanager
def blame(tx_id: bytes) -> Iterator[None]:
    """Name ``tx_id`` in any error raised inside (a view's per-transaction step)."""
    try:
        yield
    except TxError:
        raise
    except Exception as exc:
        raise TxError(tx_id, exc) from exc


class ViewState(enum.StrEnum):
    SERVING = "serving"  # at most ``limits.VIEW_LAG_BLOCKS_MAX`` blocks behind the chain
    LAGGING = "lagging"  # further behind than that: not served until it catches up
    REBUILDING = "rebuilding"  # started from scratch (start-up or rebuild), not yet at the tip
    FAILED = "failed"  # raised: stopped at the block it failed on, until rebuilt


@dataclass(frozen=True, slots=True)
class ViewStatus:
    """One view as health, metrics and ``relance-node views status`` show it."""

    name: str
    state: ViewState
    height: int
    lag: int
    failures: int  # since the node started
    error: str | None = None  # the last failure: "at block H, tx ID: message"
    failed_height: int | None = None
    failed_tx: str | None = None  # hex

    @property
    def serving(self) -> bool:
        return self.state is ViewState.SERVING
