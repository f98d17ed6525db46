"""JSON over HTTP to a node's API, for the node's own command-line tools.

One request, one JSON object back; a problem document (4xx, 5xx) is returned
like any answer, for the caller to read its ``result``. The wallet has its own
client (``wallets.client``) with retries and exit codes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request


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
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            body = json.loads(error.read() or b"{}")
        except json.JSONDecodeError:
            raise Unreachable(f"{url}: HTTP {error.code}") from None
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as error:
        raise Unreachable(f"{url}: {error}") from None
    if not isinstance(body, dict):
        raise Unreachable(f"{url}: the answer is not a JSON object")
    return body
