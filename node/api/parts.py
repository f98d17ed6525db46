"""The API's composition: its parts, each with one job, built once by ``create_app``.

``ApiParts`` names them; a route module or a page takes the parts it reads when it is
registered, never the whole:

- ``ledger``: the ledger adapter (state, mempool, checks); ``status``: what the daemon
  says of itself (``NodeStatus``); ``config``: node-local API settings (``ApiConfig``);
- ``viewers``: who a request speaks for (``node.api.access.Viewers``), with the dashboard
  ``logins`` and the ``creds`` they check against;
- ``gate``: the derived views, each read only while serving (``node.api.view_gate``);
- ``reads``: blocks, certificates, transactions and history (``node.api.chain_reads``);
- ``waiters``: commit waiters (``node.api.feeds``); ``limiter``: the per-client rate
  limit (``node.api.ratelimit``); ``metrics``: the node's metrics, when enabled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from node.api.access import Credentials, Viewers
from node.api.chain_reads import ChainReads
from node.api.feeds import CommitWaiters
from node.api.logins import Logins
from node.api.metrics import NodeMetrics
from node.api.ratelimit import RateLimiter
from node.api.view_gate import ApiViews, ViewGate
from node.app.ledger_app import LedgerApp
from node.protocol import limits


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


@dataclass(frozen=True, eq=False, slots=True, weakref_slot=True)
class ApiParts:
    """The API's parts (see the module docstring). One per application: compared and
    hashed by identity, weakly referenced by the caches kept per application."""

    ledger: LedgerApp
    chain_id: str
    status: NodeStatus
    config: ApiConfig
    metrics: NodeMetrics | None
    logins: Logins
    creds: Credentials
    viewers: Viewers
    gate: ViewGate
    reads: ChainReads
    waiters: CommitWaiters
    limiter: RateLimiter

    @classmethod
    def build(
        cls,
        ledger: LedgerApp,
        status: NodeStatus,
        views: ApiViews,
        config: ApiConfig,
        metrics: NodeMetrics | None,
    ) -> ApiParts:
        chain_id = ledger.genesis.chain_id
        logins = Logins(ledger.store, config.clock_ms)
        creds = Credentials(chain_id, status.node_key, logins)
        gate = ViewGate(views)
        return cls(
            ledger=ledger,
            chain_id=chain_id,
            status=status,
            config=config,
            metrics=metrics,
            logins=logins,
            creds=creds,
            viewers=Viewers(
                creds, ledger.store, lambda: ledger.last_block().height + 1, config.clock_ms
            ),
            gate=gate,
            reads=ChainReads(ledger.store, chain_id, gate),
            waiters=views.waiters,
            limiter=RateLimiter(config.requests_per_s, config.burst_requests, config.clock_ms),
        )
