"""Exports and reports computed off the node's loop, streamed, and refused (503 with
Retry-After) while the pool of heavy requests is full."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator

from node.analytics import report as rep
from node.api.dashboards import CSV_COLUMNS
from node.api.offload import OFFLOAD_KEY
from node.api.routes import analytics as analytics_routes
from node.api.routes.analytics import INDEX_KEY, csv_bytes, parquet_bytes
from node.protocol import limits
from node.text import fmt
from tests.analytics.conftest import History
from tests.api.harness import NAMUR, HttpResult, LiveNode


def _live_report(node: LiveNode) -> rep.Report:
    return node.run(lambda: node.app[INDEX_KEY].report(NAMUR.public_key, 5))


def test_exports_stream_the_same_bytes_as_the_whole_answer(history: History) -> None:
    node, token = history.node, history.node.token(NAMUR)
    report = _live_report(node)  # the node's own index, maintained block by block
    exported = node.get("/v1/analytics/export.csv", token)
    assert exported.status == 200
    assert exported.headers["transfer-encoding"] == "chunked"
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.body == csv_bytes(report)  # the old answer's bytes, built whole
    parquet = node.get("/v1/analytics/export.parquet", token)
    assert parquet.headers["transfer-encoding"] == "chunked"
    assert parquet.body == parquet_bytes(report)
    served = node.get("/v1/analytics/report", token).json()
    assert served["height"] == report.height


def _reference_rows(node: LiveNode, token: str) -> bytes:
    """transactions.csv as the node built it whole before it streamed, from the API."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    cursor = ""
    while True:
        page = node.get(f"/v1/transactions?limit=500{cursor}", token).json()
        for tx in page["items"]:  # type: ignore[attr-defined]
            writer.writerow([
                tx["tx_id"], tx["height"], tx["index"], fmt.iso(tx["time_ms"]), tx["kind"],
                tx["sender"], tx.get("holder") or "", tx.get("merchant") or "",
                tx.get("campaign") or "", "" if tx.get("amount_cents") is None
                else tx["amount_cents"], tx.get("memo") or "",
            ])  # fmt: skip
        if page["next_cursor"] is None:
            return out.getvalue().encode()
        cursor = f"&cursor={page['next_cursor']}"


def test_the_transactions_csv_streams_every_row(history: History) -> None:
    node, token = history.node, history.node.token(NAMUR)
    exported = node.http(
        "GET", "/ui/commune/transactions.csv", headers={"Authorization": f"Bearer {token}"}
    )
    assert exported.status == 200
    assert exported.headers["transfer-encoding"] == "chunked"
    assert exported.body == _reference_rows(node, token)
    assert exported.body.count(b"\r\n") > limits.HTTP_EXPORT_PAGE_ITEMS + 1  # several pages


@contextlib.contextmanager
def _pool_full(node: LiveNode) -> Iterator[None]:
    offload = node.app[OFFLOAD_KEY]
    stack = contextlib.AsyncExitStack()

    async def fill() -> None:
        for _ in range(offload.jobs_max):
            await stack.enter_async_context(offload.slot())

    node.call(fill())
    try:
        yield
    finally:
        node.call(stack.aclose())


def _refused(answer: HttpResult) -> None:
    assert answer.status == 503, answer.body
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["retry-after"] == str(limits.OFFLOAD_RETRY_AFTER_S)
    assert json.loads(answer.body)["type"].endswith("/busy")


def test_a_full_pool_answers_503_with_retry_after(history: History) -> None:
    node, token = history.node, history.node.token(NAMUR)
    # Computed and rendered before the pool fills (by this test: never by another's order).
    assert node.get("/v1/analytics/zones", token).status == 200
    assert node.get("/v1/analytics/export.csv", token).status == 200
    with _pool_full(node):  # what nobody asked yet must be computed: refused
        _refused(node.get("/v1/analytics/export.csv?k=7", token))
        _refused(node.get("/v1/analytics/export.parquet?k=8", token))
        _refused(node.get("/v1/analytics/zones?k=9", token))
        _refused(node.http("GET", "/ui/commune/transactions.csv?kind=refund",
                           headers={"Authorization": f"Bearer {token}"}))  # fmt: skip
        assert node.get("/v1/health").status == 200  # light routes are not held up
        assert node.get("/v1/analytics/zones", token).status == 200  # computed before
        assert node.get("/v1/analytics/export.csv", token).status == 200  # rendered before
    assert node.get("/v1/analytics/export.csv?k=7", token).status == 200
    assert node.get("/v1/analytics/zones?k=9", token).status == 200
    assert node.run(lambda: node.app[OFFLOAD_KEY].jobs) == 0


def test_a_worker_folds_only_the_blocks_it_has_not_seen(history: History) -> None:
    node = history.node
    blocks = node.run(lambda: tuple(node.store.blocks(1, node.store.height())))
    expected = _live_report(node)
    analytics_routes._worker_indexes.clear()
    half = len(blocks) // 2
    early = analytics_routes.report_in_worker(node.genesis, blocks[:half], NAMUR.public_key, 5)
    assert early.height == half
    kept = analytics_routes._worker_indexes[node.genesis.genesis_hash]
    assert analytics_routes.report_in_worker(node.genesis, blocks, NAMUR.public_key, 5) == expected
    assert analytics_routes._worker_indexes[node.genesis.genesis_hash] is kept  # not rebuilt
    shorter = analytics_routes.report_in_worker(node.genesis, blocks[:half], NAMUR.public_key, 5)
    assert shorter == early  # another chain's prefix (or a restart): a fresh index
