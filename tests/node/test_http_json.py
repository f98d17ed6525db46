"""``node.client.http_json.urlopen``: a node's "too many requests" waited out, bounded."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import pytest

from node.client.http_json import RETRIES_MAX, RETRY_WAIT_MAX_S, urlopen
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
