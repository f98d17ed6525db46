"""What the dashboards read of the API (``node.api.dashboards`` and the pages beside it:
bank, counter, commune vouchers, citizen): picked from ``ApiParts`` once by the server."""

from __future__ import annotations

from dataclasses import dataclass

from node.api.access import Viewers
from node.api.chain_reads import ChainReads
from node.api.logins import Logins
from node.api.parts import ApiConfig, NodeStatus
from node.api.view_gate import ViewGate
from node.app.ledger_app import LedgerApp


@dataclass(frozen=True, slots=True)
class PageParts:
    """The pages' parts: the ledger, who asks (``viewers``, dashboard ``logins``), the
    derived views (``gate``) and chain reads, the node's ``status`` and API ``config``."""

    ledger: LedgerApp
    chain_id: str
    status: NodeStatus
    config: ApiConfig
    logins: Logins
    viewers: Viewers
    gate: ViewGate
    reads: ChainReads
