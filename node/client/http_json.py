"""JSON over HTTP to a node's API, for the node's own command-line tools, and the one
way every client of ours (wallet, audit, tools) waits out a node's "too many requests".

One request, one JSON object back; a problem document (4xx, 5xx) is returned
like any answer, for the caller to read its ``result``. The wallet has its own
client (``wallets.client``) with exit codes; it opens its requests with ``urlopen``.

``urlopen`` asks again when the node answers 429, or 503 with ``Retry-After``: after the
delay the node gives (or a doubling backoff when it gives none), each wait capped, and a
bounded number of times; then the last answer stands.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Final

RETRIES_MAX: Final = 8  # "too many requests" answers waited out before the last one stands
RETRY_WAIT_MAX_S: Final = 10.0  # the longest one wait, whatever the node asks
RETRY_BACKOFF_FIRST_S: Final = 0.5  # without Retry-After: 0.5, 1, 2, 4 ... seconds
ANSWER_BYTES_MAX: Final = 16 * 1024 * 1024  # ``request_json`` reads no more of an answer


def urlopen(
    request: urllib.request.Request,
    timeout_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> http.client.HTTPResponse:
    """``urllib.request.urlopen``, honouring 429 / 503 + ``Retry-After`` (bounded)."""
    for attempt in range(RETRIES_MAX + 1):
        try:
            response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=timeout_s)
            return response
        except urllib.error.HTTPError as error:
            wait_s = retry_wait_s(error, attempt)
            if wait_s is None or attempt == RETRIES_MAX:
                raise
            error.close()
            sleep(wait_s)  # the node asked us to wait
    raise AssertionError("unreachable: the loop returns or raises")


def retry_wait_s(error: urllib.error.HTTPError, attempt: int) -> float | None:
    """How long to wait before asking again, or None when this answer is final."""
    given = _seconds(error.headers.get("Retry-After") if error.headers else None)
    if error.code == 503 and given is None:
        return None  # down, not busy
    if error.code not in (429, 503):
        return None
    backoff_s = RETRY_BACKOFF_FIRST_S * (1 << attempt)  # asked again and again: wait longer
    return min(RETRY_WAIT_MAX_S, max(given or 0.0, backoff_s))


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


class Unreachable(RuntimeError):
    """The node did not answer, or answered something that is not a JSON object."""


def request_json(url: str, payload: object | None, timeout_s: float) -> dict[str, object]:
    """GET ``url`` (POST ``payload`` as JSON when given); the answer's JSON object."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, method="GET" if data is None else "POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urlopen(request, timeout_s) as response:
            body = json.loads(_capped(response.read(ANSWER_BYTES_MAX + 1)))
    except urllib.error.HTTPError as error:
        try:
            body = json.loads(_capped(error.read(ANSWER_BYTES_MAX + 1)) or b"{}")
        except (ValueError, RecursionError):
            raise Unreachable(f"{url}: HTTP {error.code}") from None
    except (urllib.error.URLError, TimeoutError, ValueError, RecursionError) as error:
        # ValueError: not JSON, not UTF-8, a huge integer; RecursionError: nested too deep
        raise Unreachable(f"{url}: {error}") from None
    if not isinstance(body, dict):
        raise Unreachable(f"{url}: the answer is not a JSON object")
    return body


def _capped(raw: bytes) -> bytes:
    if len(raw) > ANSWER_BYTES_MAX:
        raise ValueError(f"the answer is larger than {ANSWER_BYTES_MAX} bytes")
    return raw
