"""The API's state and its reads of the node: one object, built once by ``create_app``.

Holds the ledger adapter, the derived views the node's composition root built
(``ApiViews``: the history index, the analytics fold, the commit waiters, the
event hub, and the runner that says whether each is serving), the rate
limiter, the dashboard logins (``node.api.logins``), the metrics and a small
cache of decoded blocks. A route that reads a view goes through ``require_view``
(or the ``index`` and ``analytics`` properties): a view that is failed,
rebuilding or too far behind answers 503.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from node.analytics.index import AnalyticsIndex
from node.api import inputs, views
from node.api import models as m
from node.api.access import Credentials, Viewer, authenticate
from node.api.logins import Logins
from node.api.metrics import NodeMetrics
from node.api.problems import ApiError
from node.api.stream import Hub
from node.app.ledger_app import LedgerApp
from node.consensus.types import Block, Certificate
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import limits
from node.protocol.crypto import PUBLIC_KEY_BYTES, PublicKey
from node.views.analytics import ANALYTICS
from node.views.base import ViewState
from node.views.history import HISTORY
from node.views.history_index import HistoryIndex, TxRef
from node.views.runner import ViewRunner

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


def client_of(request: web.Request, config: ApiConfig) -> str:
    """Who is asking, for per-client caps: the peer address, or the last address of
    ``X-Forwarded-For`` when the node sits behind a proxy it trusts (the one that proxy
    appended; those before it are whatever the client wrote). One client per IPv4
    address and per IPv6 /64 (what one subscriber is routed), IPv4-mapped as IPv4."""
    if config.trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return _client_address(last)
    return _client_address(request.remote or "unknown")


def _client_address(text: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text[: limits.ADDRESS_CHARS_MAX]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def served_over_tls(request: web.Request, config: ApiConfig) -> bool:
    """Whether the client reached us over TLS: directly, or through a trusted proxy
    that says so (``X-Forwarded-Proto: https``)."""
    if request.secure:
        return True
    if config.trust_forwarded_for:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False


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

    def committed(self, height: int, tx_ids: list[bytes]) -> None:
        for tx_id in tx_ids:
            for future in self._waiting.pop(tx_id, []):
                self._count -= 1
                if not future.done():
                    future.set_result(height)


_UNAVAILABLE: Final = {
    ViewState.FAILED: "failed; the node's operator rebuilds it with 'relance-node views rebuild'",
    ViewState.REBUILDING: "rebuilding from the blocks",
    ViewState.LAGGING: "catching up with the chain",
}


@dataclass(frozen=True, slots=True)
class ApiViews:
    """The derived views the API reads, built and run by the node (``node.run.daemon``)."""

    runner: ViewRunner
    index: HistoryIndex
    analytics: AnalyticsIndex
    hub: Hub
    waiters: CommitWaiters


def encode_cursor(raw: bytes) -> str:
    return inputs.b64url(raw)


def decode_cursor(text: str, max_bytes: int = 256) -> bytes:
    raw = inputs.unb64url(text) if len(text) <= 2 * max_bytes else None
    if not raw or len(raw) > max_bytes:
        raise ApiError(400, "the cursor is not one this node gave", slug="bad-cursor")
    return raw


def parse_key(text: str, what: str = "account") -> PublicKey:
    raw = inputs.parse_hex(text, PUBLIC_KEY_BYTES)
    if raw is None:
        raise ApiError(400, f"an {what} key is 32 bytes in lowercase hex", slug="bad-key")
    return PublicKey(raw)


def parse_id(text: str, what: str) -> bytes:
    raw = inputs.parse_hex(text, 32)
    if raw is None:
        raise ApiError(400, f"a {what} is 64 lowercase hex digits", slug="bad-id")
    return raw


def parse_limit(request: web.Request, default: int = 50) -> int:
    text = request.query.get("limit")
    if text is None:
        return default
    top = limits.HTTP_PAGE_ITEMS_MAX
    return inputs.parse_uint(text, 1, top, f"limit is 1 to {top}", "bad-limit")


def parse_height(text: str, what: str = "a height") -> int:
    top = limits.HEIGHT_MAX
    return inputs.parse_uint(text, 0, top, f"{what} is an integer from 0 to {top}", "bad-height")


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
        views: ApiViews,
        config: ApiConfig,
        metrics: NodeMetrics | None,
    ) -> None:
        self.ledger = ledger
        self.status = status
        self.views = views
        self.config = config
        self.metrics = metrics
        self.logins = Logins(ledger.store, config.clock_ms)
        self.creds = Credentials(ledger.genesis.chain_id, status.node_key, self.logins)
        self.waiters = views.waiters
        self.limiter = RateLimiter(config.requests_per_s, config.burst_requests, config.clock_ms)
        self._blocks: OrderedDict[int, Block] = OrderedDict()

    @property
    def chain_id(self) -> str:
        return self.ledger.genesis.chain_id

    def now_ms(self) -> int:
        return self.config.clock_ms()

    # --- derived views ------------------------------------------------------------------

    def require_view(self, name: str) -> None:
        """503 (problem+json, Retry-After) unless the view ``name`` is serving."""
        if name not in self.views.runner.names:
            raise ApiError(503, f"this node does not run the {name} view", slug="view-absent")
        state = self.views.runner.status(name).state
        if state is ViewState.SERVING:
            return
        raise ApiError(
            503,
            f"the {name} view is {state.value}: {_UNAVAILABLE[state]}",
            slug=f"view-{state.value}",
            headers={"Retry-After": str(limits.VIEW_RETRY_AFTER_S)},
        )

    @property
    def index(self) -> HistoryIndex:
        """The history index, if its view is serving (else 503)."""
        self.require_view(HISTORY)
        return self.views.index

    @property
    def analytics(self) -> AnalyticsIndex:
        """The analytics fold, if its view is serving (else 503)."""
        self.require_view(ANALYTICS)
        return self.views.analytics

    @property
    def hub(self) -> Hub:
        return self.views.hub

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
