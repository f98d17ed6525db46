"""``HttpSource`` against small stand-in nodes: tokens, renewal, fall-back.

Each stand-in serves ``/v1/status`` and ``/v1/blocks/{h}/certified`` (not the
ranges of newer nodes: the source falls back to one height at a time) from a
certified history and checks the Bearer token as a node does (bound to its
own key). One of them fails every block; the audit goes to the next node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import pytest

from node.api import tokens
from node.protocol.crypto import Signer
from tests.audit.conftest import History
from tests.node.netutil import stand_in
from tools.audit.chain import Auditor
from tools.audit.sources import TOKEN_RENEW_MS, DataDirSource, HttpSource, SourceError


class _Node:
    def __init__(self, history: History, store: DataDirSource, broken: bool) -> None:
        self.history = history
        self.store = store
        self.broken = broken
        self.key = Signer(bytes([len(history.genesis.chain_id)] * 32)).public_key
        self.tokens_seen: list[str] = []
        self.now_ms = 0


@contextmanager
def _serve(node: _Node) -> Iterator[str]:
    genesis = node.history.genesis

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet in tests
            pass

        def _send(self, code: int, body: object) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            if self.path == "/v1/status":
                self._send(
                    200,
                    {
                        "genesis_hash": genesis.genesis_hash.hex(),
                        "chain_id": genesis.chain_id,
                        "height": node.store.top_height(),
                        "node_key": node.key.hex(),
                    },
                )
                return
            if self.path.startswith("/v1/blocks/certified?"):
                self._send(404, {"title": "Not Found", "detail": "no such route"})
                return  # an older node: one height at a time
            header = self.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                self._send(401, {"title": "token required"})
                return
            token = header.removeprefix("Bearer ")
            account = tokens.check_token(token, genesis.chain_id, node.key, node.now_ms)
            if isinstance(account, tokens.TokenProblem):
                self._send(401, {"title": account.value})
                return
            node.tokens_seen.append(token)
            if node.broken:
                self._send(500, {"title": "broken"})
                return
            height = int(self.path.split("/")[3])
            block = node.store.block_bytes(height)
            cert = node.store.certificate_bytes(height)
            assert block is not None and cert is not None
            self._send(200, {"height": height, "block": block.hex(), "certificate": cert.hex()})

    with stand_in(Handler) as url:
        yield url


def test_tokens_are_sent_renewed_and_a_failing_node_is_skipped(history: History) -> None:
    store = DataDirSource(history.data, history.genesis.genesis_hash)
    broken, good = _Node(history, store, broken=True), _Node(history, store, broken=False)
    auditor_key = history.actors.auditor
    clock = {"now_ms": 1_000_000}

    def clock_ms() -> int:
        clock["now_ms"] += TOKEN_RENEW_MS // 8  # a token lasts a few requests
        broken.now_ms = good.now_ms = clock["now_ms"]
        return clock["now_ms"]

    try:
        with _serve(broken) as broken_url, _serve(good) as good_url:
            source = HttpSource(
                [broken_url, good_url], history.genesis.genesis_hash, auditor_key, clock_ms
            )
            result = Auditor(history.genesis, source, None, workers=2).run()
            assert result.ok, result.divergence
            assert result.heights_checked == 12
            assert len(set(good.tokens_seen)) > 1  # renewed on the way
            assert broken.tokens_seen  # asked first for every other height, then skipped

            anonymous = HttpSource([good_url], history.genesis.genesis_hash)
            with pytest.raises(SourceError, match=r"401.*--key"):
                anonymous.block_bytes(1)
    finally:
        store.close()
