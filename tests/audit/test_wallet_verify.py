"""``relance-wallet verify`` against a test node speaking the API's proof shapes
(``/v1/proofs/...``: value, proof, anchor with header and certificate bytes),
honest or lying. The node runs in a thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from click.testing import CliRunner

from node.client.lightclient import genesis_validator_set
from node.ledger import records as r
from node.ledger import tx as t
from tests.audit.conftest import History
from tests.audit.test_lightclient import Lie, Node
from wallets.cli import main


def _anchor(answer: dict[str, object]) -> dict[str, object]:
    return {"header_bytes": answer["header"], "certificate_bytes": answer["certificate"]}


def _app(node: Node) -> web.Application:
    async def state(request: web.Request, key: bytes) -> web.Response:
        answer = node.state(key)
        return web.json_response(
            {
                "key": key.hex(),
                "value": answer["value"],
                "proof": answer["proof"],
                "anchor": _anchor(answer),
            }
        )

    async def account(request: web.Request) -> web.Response:
        return await state(request, r.holder_key(bytes.fromhex(request.match_info["key"])))

    async def payout(request: web.Request) -> web.Response:
        return await state(request, r.payout_key(bytes.fromhex(request.match_info["id"])))

    async def transaction(request: web.Request) -> web.Response:
        tx_id = bytes.fromhex(request.match_info["id"])
        for height, block in node.blocks.items():
            for index, data in enumerate(block.txs):
                signed = t.decode_tx(data, node.history.genesis.chain_id)
                if not isinstance(signed, t.Result) and signed.tx_id == tx_id:
                    answer = node.transaction(height, index)
                    return web.json_response({**answer, "anchor": _anchor(answer)})
        raise web.HTTPNotFound()

    async def validators(request: web.Request) -> web.Response:
        """The demo history has had no validator change: the genesis set alone."""
        genesis_set = genesis_validator_set(node.history.genesis).encode().hex()
        era = {"first_height": 1, "validator_set_bytes": genesis_set, "handover": None}
        return web.json_response({"items": [era], "next_cursor": None})

    app = web.Application()
    app.add_routes(
        [
            web.get("/v1/validators", validators),
            web.get("/v1/proofs/accounts/{key}", account),
            web.get("/v1/proofs/payouts/{id}", payout),
            web.get("/v1/proofs/transactions/{id}", transaction),
        ]
    )
    return app


@pytest.fixture
def serve() -> Iterator[object]:
    """Start a node's app in a thread; yields a function that returns its URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    def start(node: Node) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]

        async def up() -> None:
            runner = web.AppRunner(_app(node))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)

        asyncio.run_coroutine_threadsafe(up(), loop).result(10)
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _wallet(url: str, history: History, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["--node", url, "verify", args[0], "--genesis", str(history.genesis_file), *args[1:]]
    )
    return result.exit_code, result.output


def test_honest_answers_verify(history: History, serve: object) -> None:
    node = Node(history)
    url = serve(node)  # type: ignore[operator]
    holder = history.actors.holders[5].public_key.hex()
    code, out = _wallet(url, history, "balance", holder, "--json")
    assert code == 0, out
    assert json.loads(out)["balances"] == [{"campaign": "liege-2026", "cents": 6_000}]

    payout_id = next(k for k in node.items if k[:1] == r.Prefix.PAYOUT.value)[1:].hex()
    code, out = _wallet(url, history, "payout", payout_id)
    assert code == 0 and "VERIFIED" in out and "settled: yes" in out

    signed = t.decode_tx(node.blocks[8].txs[2], history.genesis.chain_id)
    assert not isinstance(signed, t.Result)
    code, out = _wallet(url, history, "tx", signed.tx_id.hex(), "--json")
    assert code == 0, out
    assert json.loads(out)["kind"] == "pay"


@pytest.mark.parametrize("lie", [Lie.BALANCE, Lie.CONSISTENT_TREE, Lie.OWN_CERTIFICATE])
def test_a_lying_node_is_named(history: History, serve: object, lie: Lie) -> None:
    url = serve(Node(history, lie))  # type: ignore[operator]
    holder = history.actors.holders[5].public_key.hex()
    code, out = _wallet(url, history, "balance", holder)
    assert code == 3
    assert "THE NODE LIED" in out


def test_a_node_lying_about_a_transaction_s_place(history: History, serve: object) -> None:
    node = Node(history, Lie.WRONG_INDEX)
    url = serve(node)  # type: ignore[operator]
    signed = t.decode_tx(node.blocks[8].txs[2], history.genesis.chain_id)
    assert not isinstance(signed, t.Result)
    code, out = _wallet(url, history, "tx", signed.tx_id.hex())
    assert code == 3 and "not in the certified block" in out
