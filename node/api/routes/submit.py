"""Submitting signed transactions, one or a batch, and waiting for their block."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Final

from aiohttp import web

from node.api import inputs, views
from node.api import models as m
from node.api.feeds import CommitWaiters
from node.api.metrics import NodeMetrics
from node.api.operation import (
    Operation,
    Routes,
    json_response,
    pick,
    query_param,
)
from node.api.parts import NodeStatus
from node.api.problems import ApiError
from node.app.ledger_app import LedgerApp
from node.consensus.mempool import Admission
from node.ledger.codes import Result
from node.protocol import limits


@dataclass(frozen=True, slots=True)
class SubmitParts:
    """What the submission routes read of the API."""

    ledger: LedgerApp
    status: NodeStatus
    metrics: NodeMetrics | None
    waiters: CommitWaiters


async def submit(api: SubmitParts, request: web.Request) -> object:
    """Body: JSON ``{"tx": hex}`` or ``{"txs": [hex, ...]}``; ``?wait=true`` waits."""
    body = inputs.read_json(await request.read())
    if not isinstance(body, dict) or set(body) - {"tx", "txs"} or len(body) != 1:
        raise ApiError(400, 'expected {"tx": hex} or {"txs": [hex, ...]}', slug="bad-body")
    wait = _flag(request, "wait")
    batch = "txs" in body
    items = body["txs"] if batch else [body["tx"]]
    if not isinstance(items, list) or not 1 <= len(items) <= limits.HTTP_SUBMIT_BATCH_TXS_MAX:
        raise ApiError(
            400, f"between 1 and {limits.HTTP_SUBMIT_BATCH_TXS_MAX} transactions", slug="bad-body"
        )
    datas = [_hex_tx(item) for item in items]
    await api.ledger.verify_ahead([d for d in datas if d is not None])
    admitted = [_admit(api, data) for data in datas]
    if wait:
        admitted = list(await asyncio.gather(*(_wait(api, a) for a in admitted)))
    if batch:
        return m.SubmitBatch(admitted)
    only = admitted[0]
    if only.accepted:
        return json_response(only, 200 if wait or only.height is not None else 202)
    if only.result == "MEMPOOL_FULL":
        raise ApiError(
            503,
            "the mempool is full: retry later",
            slug="mempool-full",
            tx_id=only.tx_id,
            headers={"Retry-After": "1"},
        )
    code = Result[only.result]
    raise ApiError(
        422,
        only.message or code.message,
        result=code,
        tx_id=only.tx_id,
        available_cents=only.available_cents,
    )


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(400, f"{name} is true or false", slug="bad-flag")
    return value in ("true", "1")


def _hex_tx(item: object) -> bytes | None:
    """A transaction's bytes from its hex, or None."""
    if not isinstance(item, str) or len(item) > 2 * limits.TX_BYTES_MAX:
        return None
    try:
        return bytes.fromhex(item)
    except ValueError:
        return None


def _admit(api: SubmitParts, data: bytes | None) -> m.SubmitResult:
    if data is None:
        return _rejected(api, _refusal(None, Result.MALFORMED))
    decoded = api.ledger.decoded.decode(data)
    if not isinstance(decoded, Result):
        location = api.ledger.store.tx_location(decoded.tx_id)
        if location is not None:  # idempotent: already in a block
            return m.SubmitResult(True, decoded.tx_id.hex(), "OK", 0, location[0])
    added = api.ledger.mempool.add(data, api.ledger.check)
    verdict = added.verdict
    tx_id = None if verdict.tx_id is None else verdict.tx_id.hex()
    if added.admission == Admission.FULL:
        full = "the node's queue of waiting transactions is full: try again in a few seconds"
        return m.SubmitResult(False, tx_id, "MEMPOOL_FULL", -1, None, full)
    if added.admission == Admission.REJECTED:
        refused = _refusal(tx_id, Result(verdict.code))
        if refused.code == Result.INSUFFICIENT_FUNDS and not isinstance(decoded, Result):
            explained = views.shortfall(api.ledger.admitted_state(), decoded)
            if explained is not None:
                refused = replace(refused, message=explained[0], available_cents=explained[1])
        return _rejected(api, refused)
    if added.admission == Admission.ADMITTED:
        api.status.gossip_tx(data)
    return m.SubmitResult(True, tx_id, "OK", 0, None)


def _refusal(tx_id: str | None, code: Result) -> m.SubmitResult:
    return m.SubmitResult(False, tx_id, code.name, int(code), None, code.message)


def _rejected(api: SubmitParts, result: m.SubmitResult) -> m.SubmitResult:
    if api.metrics is not None:
        api.metrics.observe_rejection(result.result)
    return result


async def _wait(api: SubmitParts, result: m.SubmitResult) -> m.SubmitResult:
    if not result.accepted or result.height is not None or result.tx_id is None:
        return result
    tx_id = bytes.fromhex(result.tx_id)
    location = api.ledger.store.tx_location(tx_id)
    if location is not None:
        return m.SubmitResult(True, result.tx_id, "OK", 0, location[0])
    future = api.waiters.wait(tx_id)
    if future is None:
        return result
    try:
        async with asyncio.timeout(limits.HTTP_COMMIT_WAIT_MAX_MS / 1000):
            height = await future
    except TimeoutError:
        api.waiters.forget(tx_id, future)
        return result
    return m.SubmitResult(True, result.tx_id, "OK", 0, height)


OPERATIONS: Final[tuple[Operation[SubmitParts], ...]] = (
    Operation(
        "POST",
        "/v1/transactions",
        submit,
        "Submit one signed transaction or a batch",
        "transactions",
        m.SubmitResult,
        params=(
            query_param(
                "wait",
                {"type": "string", "enum": ["true", "false", "1", "0"]},
                "wait until the transaction is in a block (bounded)",
            ),
        ),
        body=m.SubmitRequest,
        errors=(400, 413, 415, 422, 503),
        also_ok=(202,),
        description="Idempotent by transaction id: a transaction already in a block or in "
        "the mempool is accepted again. A batch answers 200 with one result per item; a "
        "single rejected transaction answers 422 with the ledger's result code.",
        extra_responses={200: "SubmitResult or, for a batch, SubmitBatch"},
        ok_alternative=m.SubmitBatch,
    ),
)


ROUTES: Final = Routes(pick(SubmitParts), OPERATIONS)
