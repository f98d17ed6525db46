"""The ``/v1`` route table. Each resource's module holds its handlers and its
operations; ``analytics``, ``state`` and ``settlement`` (the bank's node only) are
added by the server. The OpenAPI document (``node.api.openapi``) is built from the
same operations (``node.api.operation``)."""

from __future__ import annotations

from typing import Final

from node.api.operation import Operation
from node.api.routes import accounts, blocks, payouts, proofs, status, stream, submit, transactions

OPERATIONS: Final[tuple[Operation, ...]] = (
    *status.OPERATIONS,
    *submit.OPERATIONS,
    *transactions.OPERATIONS,
    *accounts.OPERATIONS,
    *payouts.OPERATIONS,
    *blocks.OPERATIONS,
    *proofs.OPERATIONS,
    *stream.OPERATIONS,
)
