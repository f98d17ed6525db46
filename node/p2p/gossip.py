"""What nodes say to each other besides consensus: frames, and transactions gossiped.

A message between nodes is the msgpack ``[channel, data]``: on ``CONSENSUS``,
``data`` is one consensus message (bytes) for the driver; on ``TXS``, a list
of transactions, in the order their sender admitted them.

Both directions batch. Going out, ``GossipOutbox`` gathers the transactions
admitted during one turn of the event loop (an API batch, a gossiped batch)
and sends them to every peer in as few frames as the caps allow, instead of
one encrypted frame per transaction and peer. Coming in, ``GossipAdmission``
drops at once the copies its node already holds (every peer relays every
transaction), checks a batch's signatures on the verifier's workers, then
admits its transactions in arrival order.

Imports only the codec and the limits: the node wires these to its peers and
its ledger.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Sequence

from node.protocol import codec, limits


class Channel(enum.IntEnum):
    CONSENSUS = 1
    TXS = 3  # (2 carried one transaction a frame, before frames held several)


def consensus_frame(message: bytes) -> bytes:
    return codec.encode([int(Channel.CONSENSUS), message])


def txs_frame(txs: Sequence[bytes]) -> bytes:
    return codec.encode([int(Channel.TXS), list(txs)])


def read_frame(payload: bytes) -> tuple[Channel, list[bytes]] | None:
    """The frame's channel and its items (the one consensus message, or the
    transactions); None for anything malformed or over the caps."""
    try:
        channel, data = codec.as_list(codec.decode(payload, limits.FRAME_BYTES_MAX), 2)
    except codec.DecodeError:
        return None
    if channel == Channel.CONSENSUS and isinstance(data, bytes):
        return Channel.CONSENSUS, [data]
    if (
        channel == Channel.TXS
        and isinstance(data, list)
        and 0 < len(data) <= limits.GOSSIP_FRAME_TXS_MAX
        and all(isinstance(tx, bytes) for tx in data)
    ):
        return Channel.TXS, data  # type: ignore[return-value]  # every item is bytes
    return None


class GossipOutbox:
    """Admitted transactions leaving for the peers, several to a frame.

    ``push`` queues one; on the loop's next turn every queued transaction goes
    out, in order, in frames of at most ``limits.GOSSIP_FRAME_TXS_MAX``
    transactions and ``limits.GOSSIP_FRAME_BYTES_MAX`` bytes of them.
    """

    def __init__(self, broadcast: Callable[[bytes], object]) -> None:
        self._broadcast = broadcast
        self._pending: list[bytes] = []
        self._scheduled = False

    def push(self, data: bytes) -> None:
        self._pending.append(data)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        pending, self._pending, self._scheduled = self._pending, [], False
        batch: list[bytes] = []
        size = 0
        for data in pending:
            full = len(batch) >= limits.GOSSIP_FRAME_TXS_MAX
            if batch and (full or size + len(data) > limits.GOSSIP_FRAME_BYTES_MAX):
                self._broadcast(txs_frame(batch))
                batch, size = [], 0
            batch.append(data)
            size += len(data)
        if batch:
            self._broadcast(txs_frame(batch))


class GossipAdmission:
    """Transactions gossiped by peers, admitted in arrival order in batches.

    A transaction ``known`` to the node (pending in its mempool, or committed from
    it lately) is dropped on arrival: each peer relays each transaction, so most
    arrivals are such copies, and decoding them again would be wasted.
    Each batch's signatures are checked on the verifier's workers first
    (``verify_ahead``), so the loop thread only decodes and executes them.
    At most ``limits.MEMPOOL_TXS_MAX`` wait; beyond, new ones are dropped (the
    mempool could not take them either, and their senders' nodes keep them).
    """

    def __init__(
        self,
        known: Callable[[bytes], bool],
        verify_ahead: Callable[[Sequence[bytes]], Awaitable[None]],
        admit: Callable[[bytes], None],
    ) -> None:
        self._known = known
        self._verify_ahead = verify_ahead
        self._admit = admit
        self._waiting: asyncio.Queue[bytes] = asyncio.Queue(limits.MEMPOOL_TXS_MAX)
        self.dropped = 0

    def push(self, data: bytes) -> None:
        if self._known(data):
            return
        try:
            self._waiting.put_nowait(data)
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        while True:
            batch = [await self._waiting.get()]
            while not self._waiting.empty() and len(batch) < limits.GOSSIP_ADMISSION_BATCH_TXS_MAX:
                batch.append(self._waiting.get_nowait())
            await self._verify_ahead(batch)
            for data in batch:
                self._admit(data)
