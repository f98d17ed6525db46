"""How the wallet reads a node's answers, against a scripted HTTP server on 127.0.0.1:
problem documents become exit codes; a transaction accepted but not yet in a block is
exit 6; a route the node does not offer is exit 8."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from node.client.http_json import TxStatus
from node.protocol.crypto import Signer
from tests.wallet.support import PASSPHRASE, Cli, cli_env
from wallets.book import BookStatus, Household, VoucherBook
from wallets.client import NodeClient
from wallets.commands.issuer import _not_yet_allocated
from wallets.exits import Exit, WalletError
from wallets.keystore import Keystore

Answer = tuple[int, str, str]  # status, content type, body
PROBLEM = "application/problem+json"


class Script:
    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {}

    def on(self, method: str, path: str, status: int, body: object, kind: str = "") -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        content = kind or ("application/json" if status < 400 else PROBLEM)
        self.answers[(method, path)] = (status, content, text)


@pytest.fixture
def node() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            status, content, text = script.answers.get(
                (method, path), (404, PROBLEM, json.dumps({"type": "x/not-found",
                                                           "detail": "no such route"}))
            )  # fmt: skip
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._answer("POST")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _code(client: NodeClient, path: str) -> tuple[Exit, str | None]:
    with pytest.raises(WalletError) as error:
        client.get(path)
    return error.value.code, error.value.result


def test_answers_map_to_exit_codes(node: tuple[str, Script]) -> None:
    url, script = node
    client = NodeClient(url)
    script.on("GET", "/a", 422, {"type": "t/x", "result": "INSUFFICIENT_FUNDS", "detail": "low"})
    script.on("GET", "/b", 404, "404: Not Found", "text/plain")
    script.on("GET", "/c", 404, {"type": "t/not-found", "detail": "no campaign has this code"})
    script.on("GET", "/d", 500, {"type": "t/x", "detail": "boom"})
    script.on("GET", "/e", 200, "<html>", "text/html")
    script.on("GET", "/f", 401, {"type": "t/token-expired", "detail": "the token has expired"})
    assert _code(client, "/a") == (Exit.REJECTED, "INSUFFICIENT_FUNDS")
    assert _code(client, "/b") == (Exit.UNSUPPORTED, None)
    assert _code(client, "/nowhere") == (Exit.UNSUPPORTED, None)
    assert _code(client, "/c") == (Exit.USAGE, None)
    assert _code(client, "/d") == (Exit.UNREACHABLE, None)
    assert _code(client, "/e") == (Exit.UNREACHABLE, None)
    assert _code(client, "/f") == (Exit.REJECTED, "TOKEN_EXPIRED")
    assert client.campaign("X") is None  # no campaign route: the caller falls back


def test_accepted_but_not_in_a_block_is_exit_6_and_a_missing_route_exit_8(
    node: tuple[str, Script], tmp_path: Path
) -> None:
    url, script = node
    cli = Cli(cli_env(tmp_path / "home", url))
    alice = Signer.generate()
    Keystore(tmp_path / "home" / "keys").add("alice", alice, PASSPHRASE)
    shop = Signer.generate().public_key.hex()
    script.on("GET", "/v1/status", 200, {"chain_id": "relance-test", "node_key": "00" * 32})
    account = {"role": "holder", "sequence": 0, "balances": [{"campaign": "C", "cents": 500}]}
    script.on("GET", f"/v1/accounts/{alice.public_key.hex()}", 200, account)
    script.on("GET", f"/v1/accounts/{shop}", 200, {"role": "merchant", "sequence": 0,
                                                  "name": "Shop", "balances": []})  # fmt: skip
    script.on("POST", "/v1/transactions", 200, {"accepted": True, "tx_id": "ab" * 32,
                                                "result": "OK", "height": None})  # fmt: skip
    pending = cli("--yes", "holder", "pay", "--key", "alice", shop, "1")
    assert pending.exit_code == Exit.PENDING
    assert "ab" * 32 in pending.stderr
    missing = cli("--json", "merchant", "payouts", "--key", "alice")
    assert missing.exit_code == Exit.UNSUPPORTED
    assert json.loads(missing.stdout)["error"] == "unsupported"


def test_a_transaction_s_status_is_an_enum_and_an_unknown_one_is_refused(
    node: tuple[str, Script],
) -> None:
    url, script = node
    client = NodeClient(url)
    base = {"tx_id": "ab" * 32, "height": None, "index": None}
    script.on("GET", f"/v1/transactions/{'ab' * 32}", 200, {**base, "status": "pending"})
    script.on("GET", f"/v1/transactions/{'cd' * 32}", 200,
              {**base, "status": "committed", "height": 7, "index": 2})  # fmt: skip
    script.on("GET", f"/v1/transactions/{'ef' * 32}", 200, {**base, "status": "lost"})
    script.on("GET", f"/v1/transactions/{'01' * 32}", 200, {"tx_id": "01" * 32})
    assert client.transaction("ab" * 32).status is TxStatus.PENDING
    committed = client.transaction("cd" * 32)
    assert (committed.status, committed.height, committed.index) == (TxStatus.COMMITTED, 7, 2)
    for unknown in ("ef" * 32, "01" * 32):  # never read as committed
        with pytest.raises(WalletError) as error:
            client.transaction(unknown)
        assert error.value.code is Exit.UNREACHABLE


def test_a_rerun_allocates_again_only_what_the_node_never_committed(
    node: tuple[str, Script], tmp_path: Path
) -> None:
    url, script = node
    client = NodeClient(url)
    book = VoucherBook(tmp_path / "book", "chain", "camp", "a passphrase of some length")
    home = Household(1, "r1", 500, "Z", "post", "Ann", ("1 rue",), "", b"")
    done, lost, fresh = (book.add(replace(home, line=n, row_id=f"r{n}")) for n in (1, 2, 3))
    done = book.update(done, tx_id="cd" * 32)
    lost = book.update(lost, tx_id="99" * 32)  # the node never saw it: 404
    base = {"tx_id": "cd" * 32, "height": 7, "index": 0}
    script.on("GET", f"/v1/transactions/{'cd' * 32}", 200, {**base, "status": "committed"})
    script.on("GET", f"/v1/transactions/{'99' * 32}", 404,
              {"type": "t/not-found", "detail": "no committed or pending transaction"})  # fmt: skip
    todo = _not_yet_allocated(client, book, [done, lost, fresh])
    assert [e.serial for e in todo] == [lost.serial, fresh.serial]
    assert book.find(done.serial).status is BookStatus.ALLOCATED
    script.on("GET", f"/v1/transactions/{'cd' * 32}", 200, {**base, "status": "pending"})
    with pytest.raises(WalletError) as error:
        _not_yet_allocated(client, book, [book.update(fresh, tx_id="cd" * 32)])
    assert error.value.code is Exit.PENDING
