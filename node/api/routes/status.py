"""Health, status and who a token speaks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from node.api import models as m
from node.api.access import Viewers, require
from node.api.operation import (
    Operation,
    Routes,
    pick,
)
from node.api.parts import NodeStatus
from node.api.view_gate import ViewGate
from node.app import version
from node.app.ledger_app import LedgerApp
from node.ledger import records as r


@dataclass(frozen=True, slots=True)
class StatusParts:
    """What the node routes read of the API."""

    ledger: LedgerApp
    chain_id: str
    status: NodeStatus
    gate: ViewGate
    viewers: Viewers


async def health(api: StatusParts, request: web.Request) -> object:
    views = [
        m.ViewHealth(v.name, v.state.value, v.height, v.lag, v.failures, v.error)
        for v in api.gate.runner.statuses()
    ]
    degraded = [v.name for v in views if v.state != "serving"]
    return m.Health(True, "degraded" if degraded else "ok", degraded, views)


async def status(api: StatusParts, request: web.Request) -> object:
    ledger, last = api.ledger, api.ledger.last_block()
    return m.Status(
        chain_id=api.chain_id,
        genesis_hash=ledger.genesis.genesis_hash.hex(),
        node_key=api.status.node_key.hex(),
        moniker=api.status.moniker,
        validator=api.status.validator,
        height=last.height,
        block_hash=last.block_hash.hex(),
        block_time_ms=last.time_ms,
        state_root=ledger.tree.root().hex(),
        consensus_height=api.status.consensus_height(),
        mempool_txs=len(ledger.mempool),
        mempool_bytes=ledger.mempool.size_bytes,
        peers=api.status.peers(),
        validators=[
            m.ValidatorView(v.name, v.public_key.hex(), v.power)
            for v in ledger.validator_set(last.height + 1).validators
        ],
        software_version=version.SOFTWARE_VERSION,
        protocol_version=version.PROTOCOL_VERSION,
        upgrade=_scheduled_upgrade(api),
    )


def _scheduled_upgrade(api: StatusParts) -> m.ScheduledUpgrade | None:
    raw = api.ledger.store.get(r.upgrade_key())
    if raw is None:
        return None
    u = r.Upgrade.decode(raw)
    return m.ScheduledUpgrade(
        u.protocol, u.software, u.height, u.protocol in api.ledger.rulebook.known()
    )


async def session(api: StatusParts, request: web.Request) -> object:
    viewer = require(api.viewers.of(request))
    return m.Session(viewer.key.hex(), viewer.role.value, viewer.scope.value)


OPERATIONS: Final[tuple[Operation[StatusParts], ...]] = (
    Operation(
        "GET",
        "/v1/health",
        health,
        "Liveness, and the state of each derived view",
        "node",
        m.Health,
    ),
    Operation("GET", "/v1/status", status, "Chain and node status", "node", m.Status),
    Operation(
        "GET",
        "/v1/session",
        session,
        "Who the token speaks for",
        "access",
        m.Session,
        errors=(401,),
        auth="required",
    ),
)


ROUTES: Final = Routes(pick(StatusParts), OPERATIONS)
