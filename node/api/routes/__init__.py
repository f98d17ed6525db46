"""The ``/v1`` route table. Each resource's module holds its handlers and its
operations; ``analytics``, ``state`` and ``settlement`` (the bank's node only) are
added by the server. Each module's ``ROUTES`` names the parts of the API its handlers read
(``node.api.operation.Routes``). The OpenAPI document (``node.api.openapi``) is built
from the same operations."""

from __future__ import annotations

from typing import Any, Final

from node.api.operation import AnyRoutes, Operation
from node.api.routes import accounts, blocks, payouts, proofs, status, stream, submit, transactions

ROUTES: Final[tuple[AnyRoutes, ...]] = (
    status.ROUTES,
    submit.ROUTES,
    transactions.ROUTES,
    accounts.ROUTES,
    payouts.ROUTES,
    blocks.ROUTES,
    proofs.ROUTES,
    stream.ROUTES,
)
OPERATIONS: Final[tuple[Operation[Any], ...]] = tuple(
    op for routes in ROUTES for op in routes.operations
)
