"""The mempool: transactions waiting for a block, as opaque bytes.

Bounded by count and bytes, deduplicated by transaction id, admitted only
through the application's check (which sees the committed state plus every
transaction already admitted, so one sender can queue sequence n, n+1, ...),
except the very bytes of a pending transaction, which are a duplicate without
a check (gossip brings each transaction from every peer: one execution each,
not one per copy), and the bytes of a transaction committed lately (from
this mempool), which a peer's late copy brings back: ``COMMITTED`` without a
check (``limits.MEMPOOL_COMMITTED_KEPT_MAX`` digests kept). Re-checked after
each committed block, reaped in arrival order within the
block caps. The application's verdict is an integer code: 0 admits.

Imports only ``node.protocol.limits`` and ``node.protocol.crypto``; knows nothing of vouchers.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from node.protocol import limits
from node.protocol.crypto import Digest, digest


@dataclass(frozen=True, slots=True)
class Verdict:
    """The application's answer about one transaction."""

    tx_id: bytes | None  # None when the bytes could not even be decoded
    code: int  # 0 admits; anything else is the application's result code


Checker = Callable[[bytes], Verdict]


class Admission(enum.Enum):
    ADMITTED = "admitted"
    DUPLICATE = "duplicate"
    COMMITTED = "committed"  # its bytes were in a block lately: nothing to do
    FULL = "full"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class AddResult:
    admission: Admission
    verdict: Verdict


class Mempool:
    """Pending transactions in arrival order."""

    def __init__(
        self,
        max_txs: int = limits.MEMPOOL_TXS_MAX,
        max_bytes: int = limits.MEMPOOL_BYTES_MAX,
    ) -> None:
        self._max_txs = max_txs
        self._max_bytes = max_bytes
        self._txs: OrderedDict[bytes, bytes] = OrderedDict()
        self._ids: dict[bytes, bytes] = {}  # a pending transaction's bytes -> its id
        self._committed: OrderedDict[Digest, bytes] = OrderedDict()  # digest(bytes) -> id
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._txs)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._txs

    def add(self, tx: bytes, check: Checker) -> AddResult:
        """Admit ``tx`` if the checker accepts it and there is room.

        The bytes of a pending transaction are a duplicate at once: checking them
        again would only execute them a second time against a state that holds them."""
        known = self._known(tx)
        if known is not None:
            return known
        verdict = check(tx)
        if verdict.tx_id is not None and verdict.tx_id in self._txs:
            return AddResult(Admission.DUPLICATE, verdict)
        if verdict.code != 0 or verdict.tx_id is None:
            return AddResult(Admission.REJECTED, verdict)
        if len(self._txs) >= self._max_txs or self._bytes + len(tx) > self._max_bytes:
            return AddResult(Admission.FULL, verdict)
        self._txs[verdict.tx_id] = tx
        self._ids[tx] = verdict.tx_id
        self._bytes += len(tx)
        return AddResult(Admission.ADMITTED, verdict)

    def knows(self, tx: bytes) -> bool:
        """True for the bytes of a pending or lately committed transaction: ``add``
        would not check them (gossip drops such copies before any other work)."""
        return self._known(tx) is not None

    def _known(self, tx: bytes) -> AddResult | None:
        pending_id = self._ids.get(tx)
        if pending_id is not None:
            return AddResult(Admission.DUPLICATE, Verdict(pending_id, 0))
        committed_id = self._committed.get(digest(tx)) if self._committed else None
        if committed_id is not None:
            return AddResult(Admission.COMMITTED, Verdict(committed_id, 0))
        return None

    def reap(self, max_txs: int, max_bytes: int) -> list[bytes]:
        """The oldest transactions that fit in a block; they stay until committed."""
        out: list[bytes] = []
        size = 0
        for tx in self._txs.values():
            if len(out) >= max_txs or size + len(tx) > max_bytes:
                break
            out.append(tx)
            size += len(tx)
        return out

    def remove_committed(self, tx_ids: Iterable[bytes]) -> None:
        """Drop the transactions of a committed block; remember the bytes of those held."""
        committed = self._committed
        for tx_id in tx_ids:
            tx = self._txs.pop(tx_id, None)
            if tx is not None:
                self._ids.pop(tx, None)
                self._bytes -= len(tx)
                committed[digest(tx)] = tx_id
        while len(committed) > limits.MEMPOOL_COMMITTED_KEPT_MAX:
            committed.popitem(last=False)

    def recheck(self, check: Checker) -> list[bytes]:
        """Re-run the check on every pending transaction, in order, after a commit.

        ``check`` must start from the new committed state. Returns the ids dropped.
        """
        dropped: list[bytes] = []
        kept: OrderedDict[bytes, bytes] = OrderedDict()
        size = 0
        for tx_id, tx in self._txs.items():
            verdict = check(tx)
            if verdict.code == 0 and verdict.tx_id == tx_id:
                kept[tx_id] = tx
                size += len(tx)
            else:
                dropped.append(tx_id)
        self._txs = kept
        self._ids = {tx: tx_id for tx_id, tx in kept.items()}
        self._bytes = size
        return dropped

    def get(self, tx_id: bytes) -> bytes | None:
        return self._txs.get(tx_id)
