"""``node.client.http_json``: the one HTTP client; a node's "too many requests" waited out,
bounded; typed answers; a hostile or oversized answer refused."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler

import pytest

from node.client.http_json import (
    RETRIES_MAX,
    RETRY_WAIT_MAX_S,
    NodeStatus,
    TxAnswer,
    Unreachable,
    call,
    node_status,
    submit_tx,
    urlopen,
)
from tests.node.netutil import stand_in


@contextmanager
def _busy_node(refusals: int, retry_after: str | None) -> Iterator[tuple[str, list[int]]]:
    """Answers 429 (with ``retry_after``) ``refusals`` times, then 200."""
    seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet in tests
            pass

        def do_GET(self) -> None:
            seen.append(1)
            busy = len(seen) <= refusals
            self.send_response(429 if busy else 200)
            if busy and retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    with stand_in(Handler) as url:
        yield url + "/", seen


def test_retry_after_is_honoured_then_the_answer_comes() -> None:
    waits: list[float] = []
    with (
        _busy_node(3, "2") as (url, seen),
        urlopen(urllib.request.Request(url), 5.0, waits.append) as response,
    ):
        assert response.status == 200
    assert len(seen) == 4
    assert waits == [2.0, 2.0, 2.0]  # the node's delay (the backoff is shorter so far)


def test_without_retry_after_the_wait_doubles_up_to_a_cap_and_gives_up() -> None:
    waits: list[float] = []
    with _busy_node(100, None) as (url, seen), pytest.raises(urllib.error.HTTPError) as refused:
        urlopen(urllib.request.Request(url), 5.0, waits.append)
    refused.value.close()
    assert refused.value.code == 429
    assert len(seen) == RETRIES_MAX + 1
    assert waits[:3] == [0.5, 1.0, 2.0] and max(waits) == RETRY_WAIT_MAX_S


# --- ``call`` and its typed answers: what every client of ours reads ---------------------


def _answering(
    status: int, body: bytes, seen: list[tuple[str, str, bytes]] | None = None
) -> AbstractContextManager[str]:
    """A stand-in node answering every request with ``status`` and ``body``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if seen is not None:
                sent = self.rfile.read(length)
                seen.append((self.command, self.headers.get("Authorization") or "", sent))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    return stand_in(Handler)


def test_a_problem_document_is_an_answer_with_its_status_and_detail() -> None:
    problem = b'{"title": "Unprocessable", "detail": "no such campaign", "result": "NO_CAMPAIGN"}'
    with _answering(422, problem) as url:
        answer = call(url + "/v1/x", timeout_s=5.0)
    assert (answer.status, answer.ok) == (422, False)
    assert answer.detail() == "no such campaign"
    assert answer.problem()["result"] == "NO_CAMPAIGN"


def test_a_payload_is_posted_as_json_with_the_caller_s_headers() -> None:
    seen: list[tuple[str, str, bytes]] = []
    with _answering(200, b'{"ok": true}', seen) as url:
        answer = call(url, payload={"a": 1}, headers={"Authorization": "Bearer t"}, timeout_s=5.0)
    assert answer.json() == {"ok": True}
    assert seen == [("POST", "Bearer t", b'{"a": 1}')]


@pytest.mark.parametrize(
    "body", [b"[" * 100_000 + b"]" * 100_000, b'{"n": ' + b"9" * 5_000 + b"}", b"[1]", b"\xff"]
)
def test_a_hostile_or_odd_body_is_unreachable_never_a_traceback(body: bytes) -> None:
    with _answering(200, body) as url:
        answer = call(url, timeout_s=5.0)
    with pytest.raises(Unreachable):
        answer.json()
    assert answer.problem() == {} and answer.detail() == "HTTP 200"


def test_an_answer_over_the_caller_s_cap_is_unreachable() -> None:
    with _answering(500, b"x" * 101) as url:
        with pytest.raises(Unreachable, match="larger than 100 bytes"):
            call(url, timeout_s=5.0, limit=100)
        assert call(url, timeout_s=5.0, limit=101).body == b"x" * 101


def test_no_node_is_unreachable() -> None:
    with _answering(200, b"{}") as url:
        pass  # the server is gone: nobody listens on its port now
    with pytest.raises(Unreachable, match=url.split("//")[1]):
        call(url, timeout_s=5.0)


def test_a_busy_node_is_waited_out_by_call_too() -> None:
    waits: list[float] = []
    with _busy_node(2, "1") as (url, seen):
        answer = call(url, timeout_s=5.0, sleep=waits.append)
    assert answer.status == 200 and waits == [1.0, 1.0] and len(seen) == 3


def test_the_status_is_typed_and_a_wrong_one_refused() -> None:
    status = b'{"chain_id": "c", "height": 7, "block_hash": "ab", "state_root": "cd", "x": 1}'
    with _answering(200, status) as url:
        assert node_status(url, 5.0) == NodeStatus("c", 7, "ab", "cd")
    wrong = b'{"chain_id": "c", "height": "7"}'
    with _answering(200, wrong) as url, pytest.raises(Unreachable, match="not a node's status"):
        node_status(url, 5.0)
    with _answering(503, status) as url, pytest.raises(Unreachable, match="HTTP 503"):
        node_status(url, 5.0)


def test_a_transaction_s_answer_is_typed_accepted_or_refused() -> None:
    seen: list[tuple[str, str, bytes]] = []
    with _answering(200, b'{"accepted": true, "height": 4, "tx_id": "ab"}', seen) as url:
        assert submit_tx(url, b"\x01\x02", 5.0) == TxAnswer(200, True, 4, None, "HTTP 200")
    assert seen == [("POST", "", b'{"tx": "0102"}')]
    refused = b'{"accepted": false, "result": "BAD_SEQUENCE", "detail": "sequence 3"}'
    with _answering(422, refused) as url:
        said = submit_tx(url, b"\x01", 5.0, wait=False)
    assert said == TxAnswer(422, False, None, "BAD_SEQUENCE", "sequence 3")
