"""Derived views off the commit path, in-process: the runner, the API over it, the control.

Process tests (a real devnet, the production entry point) are in
``tests/node/test_views_process.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from click.testing import CliRunner

from node.analytics.index import AnalyticsIndex
from node.api.operation import Operation, Routes, pick
from node.api.problems import ApiError
from node.api.routes.settlement import SettlementParts
from node.api.server import API_KEY
from node.consensus.types import Block, Header
from node.ledger import records as r
from node.ledger import tx as t
from node.protocol.crypto import Signer, digest
from node.run.cli import main as node_cli
from node.run.daemon import reading_view
from node.views import control
from node.views.base import FedBlock, ViewState, ViewStatus, as_accounts, blame
from node.views.runner import BlockFeed, ViewRunner
from tests.api.harness import LiveNode
from tests.api.world import CAMPAIGN, World, seed
from tools.faults.node import hooks_from_environment

CHAIN = "views-test"
BAD_TX = bytes(range(32))


class Store:
    """Blocks only (what the feed reads), and a state that holds nothing."""

    def __init__(self) -> None:
        self.blocks: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        return None

    def height(self) -> int:
        return len(self.blocks)

    def block(self, height: int) -> bytes | None:
        return self.blocks[height - 1] if 1 <= height <= len(self.blocks) else None

    def add(self, count: int) -> None:
        for _ in range(count):
            h = len(self.blocks) + 1
            header = Header(CHAIN, h, 1_000 * h, bytes(32), bytes(32), bytes(32), bytes(32),
                            bytes(32), bytes(32))  # fmt: skip
            self.blocks.append(Block(header, ()).encode())


@dataclass
class Counting:
    """A view that records the heights it folds; raises (about ``BAD_TX``) at ``fail_at``."""

    name: str
    fail_at: int | None = None
    applied: list[int] = field(default_factory=list)
    resets: int = 0

    def height(self) -> int:
        return self.applied[-1] if self.applied else 0

    def apply(self, fed: FedBlock) -> None:
        if fed.height == self.fail_at:
            with blame(BAD_TX):
                raise RuntimeError("a merchant spent more than its lots")
        self.applied.append(fed.height)

    def reset(self) -> None:
        self.applied.clear()
        self.resets += 1


def run(coroutine_fn: object) -> None:
    asyncio.run(coroutine_fn)  # type: ignore[arg-type]


def test_a_raising_view_fails_alone_logged_once_and_a_rebuild_brings_it_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store()
    store.add(5)
    bad, good = Counting("bad", fail_at=3), Counting("good")
    failures: list[str] = []

    async def scenario() -> None:
        runner = ViewRunner(BlockFeed(store, CHAIN), [bad, good], on_failure=failures.append)
        runner.start()
        await runner.settled()
        status = runner.status("bad")
        assert (status.state, status.height, status.failed_height) == (ViewState.FAILED, 2, 3)
        assert status.failed_tx == BAD_TX.hex()
        assert (
            status.error is not None and f"at block 3, transaction {BAD_TX.hex()}" in status.error
        )
        assert "spent more than its lots" in status.error
        assert runner.status("good") == ViewStatus("good", ViewState.SERVING, 5, 0, 0)

        store.add(3)  # the chain goes on; the good view follows, the failed one stays
        runner.notify(Block.decode(store.blocks[-1]), ())
        await runner.settled()
        assert good.applied == [1, 2, 3, 4, 5, 6, 7, 8]
        assert bad.applied == [1, 2]
        assert runner.lags() == [("bad", 6), ("good", 0)]
        assert failures == ["bad"]

        bad.fail_at = None  # the bug is fixed: the rebuild replays it from the blocks
        runner.rebuild("bad")
        assert runner.status("bad").state is ViewState.REBUILDING
        await runner.settled()
        assert bad.resets == 1 and bad.applied == [1, 2, 3, 4, 5, 6, 7, 8]
        assert runner.status("bad") == ViewStatus("bad", ViewState.SERVING, 8, 0, 1)
        await runner.close()

    with caplog.at_level(logging.ERROR, logger="node.views.runner"):
        run(scenario())
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1
    assert "view bad FAILED at block 3" in logged[0].getMessage()
    assert BAD_TX.hex() in logged[0].getMessage()


def test_a_view_too_far_behind_is_lagging_until_it_catches_up() -> None:
    store = Store()
    store.add(10)
    view = Counting("slow", applied=[1])

    async def scenario() -> None:
        runner = ViewRunner(BlockFeed(store, CHAIN), [view], lag_max=3)
        assert runner.status("slow").state is ViewState.LAGGING
        assert runner.status("slow").lag == 9
        runner.start()
        await runner.settled()
        assert runner.status("slow") == ViewStatus("slow", ViewState.SERVING, 10, 0, 0)
        await runner.close()

    run(scenario())


def test_a_view_yields_to_the_loop_between_blocks() -> None:
    """Catching up 50 blocks does not hold the loop: another task runs in between."""
    store = Store()
    store.add(50)
    view = Counting("big")
    ticks: list[int] = []

    async def other() -> None:
        while True:
            ticks.append(view.height())
            await asyncio.sleep(0)

    async def scenario() -> None:
        runner = ViewRunner(BlockFeed(store, CHAIN), [view])
        ticker = asyncio.create_task(other())
        runner.start()
        await runner.settled()
        ticker.cancel()
        await runner.close()

    run(scenario())
    assert len({t for t in ticks if 0 < t < 50}) >= 40


# --- the API over the views (a live in-process node) ---------------------------------------


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A node whose analytics view raises at block 4 (through the test entry point's hooks)."""
    hooks = hooks_from_environment({"RELANCE_TEST_VIEW_RAISE": "analytics@4"})
    node = LiveNode(Path(tmp_path_factory.mktemp("views-node")), hooks=hooks)
    try:
        yield seed(node)
    finally:
        node.close()


def test_a_failed_view_degrades_health_answers_503_and_the_rest_serves(failing: World) -> None:
    node, top = failing.node, failing.node.ledger.last_block().height
    assert top >= 6  # the chain went on past the failure
    health = node.get("/v1/health").json()
    assert (health["ok"], health["status"], health["degraded"]) == (True, "degraded", ["analytics"])
    listed: list[dict[str, object]] = health["views"]  # type: ignore[assignment]
    views = {v["name"]: v for v in listed}
    assert views["analytics"]["state"] == "failed" and views["analytics"]["height"] == 3
    assert "at block 4" in str(views["analytics"]["error"])
    assert all(views[n]["state"] == "serving" for n in ("commits", "events", "history"))

    token = node.token(failing.namur.signer)
    for path in ("/v1/analytics/zones", "/v1/analytics/export.csv", "/ui/commune/analytics"):
        answer = node.get(path, token=token)
        assert answer.status == 503, path
        assert answer.content_type == "application/problem+json"
        assert answer.headers["retry-after"] == "5"
        problem = answer.json()
        assert str(problem["type"]).endswith("/view-failed")
        assert "the analytics view is failed" in str(problem["detail"])

    alice = node.get(f"/v1/accounts/{failing.alice.pk.hex()}/transactions",
                     token=node.token(failing.alice.signer))  # fmt: skip
    assert alice.status == 200 and alice.json()["items"]

    metrics = node.get("/metrics").body.decode()
    assert 'relance_view_failures_total{view="analytics"} 1.0' in metrics
    assert f'relance_view_lag_blocks{{view="analytics"}} {float(top - 3)}' in metrics
    assert 'relance_view_lag_blocks{view="history"} 0.0' in metrics


def test_a_rebuild_serves_the_view_again_equal_to_a_replay(failing: World) -> None:
    node = failing.node
    node.run(lambda: node.views.runner.rebuild("analytics"))
    node.settle_views()
    assert node.get("/v1/health").json()["status"] == "ok"
    answer = node.get("/v1/analytics/zones", token=node.token(failing.namur.signer))
    assert answer.status == 200
    replayed = AnalyticsIndex(node.genesis)
    replayed.catch_up(
        Block.decode(node.store.block(h) or b"") for h in range(1, node.store.height() + 1)
    )
    assert node.run(node.views.analytics.snapshot) == replayed.snapshot()


def test_a_raising_commit_notice_never_reaches_consensus(failing: World) -> None:
    node = failing.node

    def broken(block: Block, txs: object) -> None:
        raise RuntimeError("a notice that raises")

    node.run(lambda: node.ledger.commit_notices.insert(0, broken))
    try:
        pay = t.Pay(CAMPAIGN, failing.bakery.signer.public_key, 100, "views")
        height = node.commit(failing.carol.sign(failing.chain, pay))
    finally:
        node.run(lambda: node.ledger.commit_notices.remove(broken))
    assert node.ledger.last_block().height == height
    path = f"/v1/accounts/{failing.carol.pk.hex()}/transactions"
    items = node.get(path, token=node.token(failing.carol.signer)).json()["items"]
    assert (
        isinstance(items, list) and items[0]["height"] == height
    )  # the next notice (the views) still ran


# --- relance-node views, through the home's files ---------------------------------------------


def test_the_node_takes_rebuild_requests_and_writes_its_status(tmp_path: Path) -> None:
    (tmp_path / "genesis.toml").write_text("", encoding="utf-8")
    cli = CliRunner()
    asked = cli.invoke(node_cli, ["views", "rebuild", "analytics", "--home", str(tmp_path)])
    assert asked.exit_code == 0, asked.output
    assert "not running; it rebuilds the view at its next start" in asked.output
    unknown = cli.invoke(node_cli, ["views", "rebuild", "ledger", "--home", str(tmp_path)])
    assert unknown.exit_code == 2 and "no view is called 'ledger'" in unknown.output

    rebuilt: list[str] = []
    statuses = [ViewStatus("analytics", ViewState.FAILED, 3, 4, 1, "at block 4: boom", 4)]

    async def node_side() -> None:
        task = asyncio.create_task(
            control.serve_control(
                tmp_path, ("history", "analytics"), rebuilt.append, lambda: statuses, poll_s=0.01
            )
        )
        while control.read_status(tmp_path) is None:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(node_side())
    assert rebuilt == ["analytics"]
    assert list(control.requests_dir(tmp_path).iterdir()) == []
    document = control.read_status(tmp_path)
    assert document is not None and document["pid"] == os.getpid()

    shown = cli.invoke(node_cli, ["views", "status", "--home", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "node running" in shown.output
    assert "analytics" in shown.output and "failed" in shown.output
    assert "at block 4: boom" in shown.output
    as_json = json.loads(
        cli.invoke(node_cli, ["views", "status", "--json", "--home", str(tmp_path)]).output
    )
    assert as_json["running"] is True and as_json["views"][0]["state"] == "failed"


def test_no_node_module_reads_a_test_switch() -> None:
    root = Path(__file__).resolve().parents[2] / "node"
    readers = [p for p in root.rglob("*.py") if "RELANCE_TEST_" in p.read_text(encoding="utf-8")]
    assert readers == []


def test_the_settlement_journal_reads_answer_503_while_its_watcher_is_not_serving(
    failing: World,
) -> None:
    async def summary(parts: SettlementParts, request: web.Request) -> object:
        return "read"

    async def iban(parts: SettlementParts, request: web.Request) -> object:
        return "read"

    routes = reading_view(
        Routes(
            pick(SettlementParts),
            (
                Operation("GET", "/v1/settlement/summary", summary, "s", "settlement", None),
                Operation("GET", "/v1/settlement/iban", iban, "i", "settlement", None),
            ),
        )
    )
    ops = routes.operations
    assert ops[0].handler.__name__ == "summary" and 503 in ops[0].errors
    assert ops[1].handler is iban  # the bank's own registry reads no view
    parts = routes.parts(failing.node.app[API_KEY])
    request = make_mocked_request("GET", "/v1/settlement/summary")
    with pytest.raises(ApiError) as raised:
        failing.node.call(ops[0].handler(parts, request))  # type: ignore[arg-type]
    assert raised.value.status == 503  # this node runs no settlement watcher at all
    assert raised.value.detail == "this node does not run the settlement view"


def test_the_history_index_rebuilt_on_a_running_node_is_the_same(
    failing: World, caplog: pytest.LogCaptureFixture
) -> None:
    node = failing.node
    path = f"/v1/accounts/{failing.alice.pk.hex()}/transactions"
    token = node.token(failing.alice.signer)
    before = node.get(path, token=token).json()
    totals = node.run(lambda: node.views.index.merchant_totals(failing.bakery.pk))
    assert totals.received_cents > 0
    api = node.app[API_KEY]

    def ask() -> str:
        node.views.runner.rebuild("history")
        try:
            api.gate.require("history")
        except ApiError as error:
            return error.detail
        return "served"

    with caplog.at_level(logging.INFO, logger="node.views.runner"):
        assert node.run(ask) == "the history view is rebuilding: rebuilding from the blocks"
        node.settle_views()
    top = node.ledger.last_block().height
    assert f"view history: rebuilding from block 1 to {top}" in caplog.text
    assert node.get(path, token=token).json() == before
    assert node.run(lambda: node.views.index.merchant_totals(failing.bakery.pk)) == totals
    assert node.get("/v1/health").json()["status"] == "ok"


def test_a_failed_event_feed_closes_the_stream_route_not_the_block_metrics(
    tmp_path: Path,
) -> None:
    hooks = hooks_from_environment({"RELANCE_TEST_VIEW_RAISE": "events@2"})
    node = LiveNode(tmp_path, hooks=hooks)
    try:
        seed(node)
        answer = node.get("/v1/stream")
        assert answer.status == 503
        assert "the events view is failed" in str(answer.json()["detail"])
        top = node.ledger.last_block().height
        assert f"relance_height {float(top)}" in node.get("/metrics").body.decode()
    finally:
        node.close()


def test_a_transaction_signed_by_a_moved_to_key_is_folded_as_its_account_s() -> None:
    """``as_accounts``: after ``rotate_key``, an issuer's transaction signed by the new key
    is its account's for every view; a holder's kind is never resolved."""
    account, moved = Signer(digest(b"namur")), Signer(digest(b"namur-next"))
    state = {r.delegate_key(moved.public_key): r.Delegate(account.public_key).encode()}
    create = t.CreateCampaign("NEW", "New", (), (), 0, 1, 100)
    pay = t.Pay("NEW", account.public_key, 1, "")
    signed = tuple(
        t.Tx(CHAIN, who.public_key, 0, payload).sign(who)
        for who, payload in ((moved, create), (moved, pay), (account, create))
    )
    folded = as_accounts(signed, state.get)
    assert folded[0].tx.sender == account.public_key
    assert (folded[0].tx_id, folded[0].signature) == (signed[0].tx_id, signed[0].signature)
    assert folded[1] is signed[1] and folded[2] is signed[2]
