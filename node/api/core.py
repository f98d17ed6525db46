"""The API's state and its reads of the node: one object, built once by ``create_app``.

Holds the ledger adapter, the history index, the commit waiters, the event
hub, the rate limiter, the metrics and a small cache of decoded blocks. Every
read happens on the node's event loop between two blocks, so the store, the
state tree and the index agree with each other.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import web

from node import limits
from node.api import models as m
from node.api import views
from node.api.access import Credentials, Viewer, authenticate
from node.api.problems import ApiError
from node.api.schema import to_json
from node.api.stream import Event, Hub
from node.app import LedgerApp
from node.consensus.types import Block, Certificate
from node.crypto import PUBLIC_KEY_BYTES, PublicKey
from node.indexes import HistoryIndex, TxRef, read_block
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import TxOutcome
from node.metrics import NodeMetrics

_POSITION = struct.Struct(">QI")

logger = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What the daemon tells the API about itself."""

    moniker: str
    validator: bool
    node_key: bytes
    consensus_height: Callable[[], int]
    peers: Callable[[], int]
    gossip_tx: Callable[[bytes], None]  # hand an admitted transaction to the peers


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Node-local API settings. CORS is off unless origins are listed."""

    requests_per_s: float = limits.HTTP_REQUESTS_PER_CLIENT_PER_S_MAX
    burst_requests: int = limits.HTTP_BURST_REQUESTS_MAX
    trust_forwarded_for: bool = False  # only behind a reverse proxy that sets it
    cors_origins: tuple[str, ...] = ()
    clock_ms: Callable[[], int] = field(default=wall_clock_ms)


class RateLimiter:
    """A token bucket per client, bounded in clients (the least recent is forgotten)."""

    def __init__(self, per_s: float, burst: int, clock_ms: Callable[[], int]) -> None:
        self._per_ms = per_s / 1000
        self._burst = float(burst)
        self._clock_ms = clock_ms
        self._buckets: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def allow(self, client: str) -> bool:
        now = self._clock_ms()
        tokens, last = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + max(0, now - last) * self._per_ms)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > limits.HTTP_RATE_CLIENTS_MAX:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after_s(self) -> int:
        return max(1, int(1 / self._per_ms / 1000) if self._per_ms > 0 else 1)


class CommitWaiters:
    """Futures resolved when a transaction id is finalised (bounded)."""

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

    def on_block(self, block: Block, outcomes: tuple[TxOutcome, ...]) -> None:
        for outcome in outcomes:
            if outcome.tx_id is None:
                continue
            for future in self._waiting.pop(outcome.tx_id, []):
                self._count -= 1
                if not future.done():
                    future.set_result(block.header.height)


def encode_cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, max_bytes: int = 256) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ApiError(400, "the cursor is not one this node gave", slug="bad-cursor") from None
    if not raw or len(raw) > max_bytes:
        raise ApiError(400, "the cursor is not one this node gave", slug="bad-cursor")
    return raw


def parse_key(text: str, what: str = "account") -> PublicKey:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ApiError(400, f"an {what} key is 32 bytes in lowercase hex", slug="bad-key")
    return PublicKey(raw)


def parse_id(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ApiError(400, f"a {what} is 64 hex digits", slug="bad-id")
    return raw


def parse_limit(request: web.Request, default: int = 50) -> int:
    text = request.query.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= limits.HTTP_PAGE_ITEMS_MAX:
        raise ApiError(400, f"limit is 1 to {limits.HTTP_PAGE_ITEMS_MAX}", slug="bad-limit")
    return int(text)


def parse_height(text: str, what: str = "a height") -> int:
    if not text.isdigit() or len(text) > 19:
        raise ApiError(400, f"{what} is a positive integer", slug="bad-height")
    return int(text)


def parse_kinds(request: web.Request) -> frozenset[t.Kind]:
    names = [n for value in request.query.getall("kind", []) for n in value.split(",") if n]
    try:
        return frozenset(t.Kind[name.upper()] for name in names)
    except KeyError:
        raise ApiError(
            400, "kind is one of the transaction kinds, lowercase", slug="bad-kind"
        ) from None


class Api:
    """The API's state (see the module docstring)."""

    def __init__(
        self,
        ledger: LedgerApp,
        status: NodeStatus,
        index: HistoryIndex,
        config: ApiConfig,
        metrics: NodeMetrics | None,
    ) -> None:
        self.ledger = ledger
        self.status = status
        self.index = index
        self.config = config
        self.metrics = metrics
        self.creds = Credentials(ledger.genesis.chain_id, status.node_key)
        self.waiters = CommitWaiters()
        self.hub = Hub(None if metrics is None else metrics.stream_subscribers.set)
        self.limiter = RateLimiter(config.requests_per_s, config.burst_requests, config.clock_ms)
        self.used_logins: OrderedDict[bytes, int] = OrderedDict()
        self._blocks: OrderedDict[int, Block] = OrderedDict()

    @property
    def chain_id(self) -> str:
        return self.ledger.genesis.chain_id

    def now_ms(self) -> int:
        return self.config.clock_ms()

    def viewer(self, request: web.Request) -> Viewer | None:
        return authenticate(request, self.creds, self.ledger.store, self.now_ms())

    # --- blocks ----------------------------------------------------------------------

    def block(self, height: int) -> Block | None:
        cached = self._blocks.get(height)
        if cached is not None:
            self._blocks.move_to_end(height)
            return cached
        raw = self.ledger.store.block(height)
        if raw is None:
            return None
        block = Block.decode(raw)
        self._blocks[height] = block
        while len(self._blocks) > limits.HTTP_BLOCKS_CACHED_MAX:
            self._blocks.popitem(last=False)
        return block

    def certificate(self, height: int) -> Certificate | None:
        raw = self.ledger.store.certificate(height)
        return None if raw is None else Certificate.decode(raw)

    def signed_at(self, height: int, index: int) -> tuple[t.SignedTx, Block]:
        block = self.block(height)
        if block is None or index >= len(block.txs):
            raise RuntimeError(f"the index points at a missing transaction {height}/{index}")
        signed = t.decode_tx(block.txs[index], self.chain_id)
        if isinstance(signed, Result):
            raise RuntimeError(f"a committed transaction does not decode at {height}/{index}")
        return signed, block

    # --- history --------------------------------------------------------------------------

    def may_read(self, viewer: Viewer | None, height: int, index: int) -> bool:
        if viewer is None:
            return False
        if viewer.reads_all:
            return True
        return self.index.is_party(viewer.key, height, index)

    def transaction(self, ref: TxRef, viewer: Viewer | None) -> m.Transaction:
        signed, block = self.signed_at(ref.height, ref.index)
        return views.transaction(
            signed, ref.height, ref.index, block.header.time_ms, viewer, self.ledger.store
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
            refs, before = self.index.history(account, before, kinds, limit - len(items), budget)
            budget -= max(1, len(refs))
            for ref in refs:
                if filter_party and not self.index.is_party(viewer.key, ref.height, ref.index):
                    continue
                item = self.transaction(ref, viewer)
                if campaign is not None and item.campaign != campaign:
                    continue
                items.append(item)
            if before is None:
                break
        next_cursor = None if before is None else encode_cursor(_POSITION.pack(*before))
        return m.TransactionPage(items, next_cursor)

    # --- commits ---------------------------------------------------------------------------

    def on_block(self, block: Block, outcomes: tuple[TxOutcome, ...]) -> None:
        """After each finalised block: index it, wake waiters, stream it, count it."""
        ledger, height = self.ledger, block.header.height
        committed = read_block(block, ledger.decoded.decode, ledger.store, ledger.records)
        if self.index.height() == height - 1:
            self.index.add_block(height, committed)
        elif self.index.height() < height:
            self.catch_up_index()  # behind by more than this block (should not happen)
        self.waiters.on_block(block, outcomes)
        header = views.header(block.header, len(block.txs))
        self.hub.publish(Event("block", _jsonable(header), None))
        for index, tx in enumerate(committed):
            public = {
                "tx_id": tx.signed.tx_id.hex(),
                "height": height,
                "index": index,
                "kind": tx.signed.tx.payload.KIND.name.lower(),
            }
            self.hub.publish(Event("tx", public, tx.readers))
        if self.metrics is not None:
            certificate = self.certificate(block.header.height)
            self.metrics.observe_block(
                block.header.height,
                block.header.time_ms,
                0 if certificate is None else certificate.round,
                [o.kind.name.lower() for o in outcomes if o.kind is not None],
            )

    def catch_up_index(self) -> int:
        indexed, top = self.index.height(), self.ledger.store.height()
        if top > indexed:
            logger.info("history index: indexing blocks %d to %d", indexed + 1, top)
        return self.index.catch_up(self._blocks_after(indexed), self.chain_id, self.ledger.store)

    def _blocks_after(self, height: int) -> Iterator[Block]:
        top = self.ledger.store.height()
        for h in range(height + 1, top + 1):
            raw = self.ledger.store.block(h)
            if raw is None:
                raise RuntimeError(f"block {h} is missing from the store")
            yield Block.decode(raw)


def _jsonable(model: object) -> object:
    return to_json(model)
