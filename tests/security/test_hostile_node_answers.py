"""A hostile node (a byzantine validator, or whoever answers at its address) cannot crash
our clients with what it answers: JSON nested deeper than the interpreter recurses, a
5,000-digit integer or (for the node's own tools) an oversized body is the client's
"unreachable" error, never a traceback. For the audit that matters most: one such
node among several would otherwise stop the audit the honest nodes can serve."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from node.client import http_json
from tests.node.netutil import stand_in
from tools.audit.sources import HttpSource, SourceError
from wallets.client import NodeClient
from wallets.exits import Exit, WalletError
from wallets.settlement import _chosen_schedule, _refused

ANSWERS = {
    "/deep": b"[" * 100_000 + b"]" * 100_000,
    "/huge": b'{"height": ' + b"9" * 5_000 + b"}",
}
OVERSIZE = b'{"pad": "' + b"x" * http_json.ANSWER_BYTES_MAX + b'"}'  # valid JSON, too long


class _Hostile(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        kind = "/" + self.path.split("/")[1]
        body = OVERSIZE if kind == "/oversize" else ANSWERS.get(kind, b"")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            return  # the client stopped reading: what it should do past its cap

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    with stand_in(_Hostile) as url:
        yield url


@pytest.mark.parametrize("kind", ["/deep", "/huge"])
def test_the_audit_takes_a_hostile_answer_as_a_node_that_does_not_serve(
    hostile: str, kind: str
) -> None:
    with pytest.raises(SourceError, match="no node answers"):
        HttpSource([hostile + kind], bytes(32))


@pytest.mark.parametrize("kind", ["/deep", "/huge"])
def test_the_wallet_says_the_node_answered_no_json(hostile: str, kind: str) -> None:
    with pytest.raises(WalletError) as raised:
        NodeClient(hostile + kind, timeout_s=30).status()
    assert raised.value.code is Exit.UNREACHABLE


@pytest.mark.parametrize("kind", ["/deep", "/huge", "/oversize"])
def test_the_node_s_own_tools_say_the_node_is_unreachable(hostile: str, kind: str) -> None:
    with pytest.raises(http_json.Unreachable):
        http_json.request_json(hostile + kind + "/v1/status", None, 30)


@pytest.mark.parametrize("kind", ["/deep", "/huge"])
def test_the_wallet_reads_a_hostile_bank_answer_as_no_detail(kind: str) -> None:
    answer = ANSWERS[kind]
    assert _chosen_schedule(answer) == "?"
    refused = _refused(500, answer)
    assert str(refused.message) == "HTTP 500" and refused.code is Exit.UNREACHABLE
