"""The one HTTP client of the wallet, the node's command-line tools and the test tools:
JSON over HTTP to a node's API, with typed answers.

``call`` sends one request and gives back an ``Answer`` (status and body) for every status
the node answers, 2xx or a problem document alike; it raises ``Unreachable`` only when there
is no answer to read: the node did not answer, or answered more than the caller's cap.
``Answer.json`` reads the body as a JSON object and refuses a hostile one (not JSON, nested
deeper than the interpreter recurses, a 5,000-digit integer) as ``Unreachable``, never a
traceback. ``node_status`` reads ``/v1/status`` into a ``NodeStatus``.

Every request asks again when the node answers 429, or 503 with ``Retry-After``: after the
delay the node gives (or a doubling backoff when it gives none), each wait capped, and a
bounded number of times; then the last answer stands.
"""

from __future__ import annotations

import enum
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from node.protocol.errors import NodeRunError

RETRIES_MAX: Final = 8  # "too many requests" answers waited out before the last one stands
RETRY_WAIT_MAX_S: Final = 10.0  # the longest one wait, whatever the node asks
RETRY_BACKOFF_FIRST_S: Final = 0.5  # without Retry-After: 0.5, 1, 2, 4 ... seconds
ANSWER_BYTES_MAX: Final = 16 * 1024 * 1024  # no more of an answer is read unless asked

Sleep = Callable[[float], None]


class Unreachable(NodeRunError, RuntimeError):
    """The node did not answer, or answered something that is not a JSON object."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer of a node: its HTTP status and its body (at most the caller's cap)."""

    url: str
    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> dict[str, object]:
        """The body as a JSON object; ``Unreachable`` when it is not one."""
        try:
            body = json.loads(self.body)
        except (ValueError, RecursionError):
            # ValueError: not JSON, not UTF-8, a huge integer; RecursionError: nested too deep
            raise Unreachable(f"{self.url}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise Unreachable(f"{self.url}: the answer is not a JSON object")
        return body

    def problem(self) -> dict[str, object]:
        """The body as a JSON object, or an empty one: what an error answer says, if anything."""
        try:
            return self.json()
        except Unreachable:
            return {}

    def detail(self) -> str:
        """The problem document's ``detail`` (or ``title``), else ``HTTP <status>``."""
        problem = self.problem()
        said = problem.get("detail") or problem.get("title")
        return str(said) if said else f"HTTP {self.status}"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What the tools read of ``/v1/status``."""

    chain_id: str
    height: int
    block_hash: str
    state_root: str

    @classmethod
    def of(cls, answer: Answer) -> NodeStatus:
        body = answer.json()
        chain_id, height = body.get("chain_id"), body.get("height")
        block_hash, state_root = body.get("block_hash"), body.get("state_root")
        if not (
            isinstance(chain_id, str)
            and isinstance(height, int)
            and isinstance(block_hash, str)
            and isinstance(state_root, str)
        ):
            raise Unreachable(f"{answer.url}: the answer is not a node's status")
        return cls(chain_id, height, block_hash, state_root)


@dataclass(frozen=True, slots=True)
class TxAnswer:
    """What the node said of one transaction posted to ``/v1/transactions``."""

    status: int  # HTTP
    accepted: bool
    height: int | None  # the block it is in, when the node waited for it
    result: str | None  # the ledger's result code, when refused
    detail: str

    @classmethod
    def of(cls, answer: Answer) -> TxAnswer:
        body = answer.problem()
        accepted, height, result = body.get("accepted"), body.get("height"), body.get("result")
        return cls(
            answer.status,
            accepted is True,
            height if isinstance(height, int) else None,
            result if isinstance(result, str) else None,
            answer.detail(),
        )


class TxStatus(enum.Enum):
    """Where the node says a transaction is (``GET /v1/transactions/{id}``)."""

    PENDING = "pending"  # admitted to its mempool, not yet in a block
    COMMITTED = "committed"  # in a block


@dataclass(frozen=True, slots=True)
class TxReceipt:
    """What the node said of one transaction it knows (``GET /v1/transactions/{id}``)."""

    tx_id: str
    status: TxStatus
    height: int | None  # the block it is in, once committed
    index: int | None

    @classmethod
    def of_json(cls, body: Mapping[str, object], url: str) -> TxReceipt:
        """The receipt in ``body``; ``Unreachable`` when it is not one (an unknown status
        is never read as committed)."""
        tx_id, status = body.get("tx_id"), body.get("status")
        height, index = body.get("height"), body.get("index")
        known = {s.value: s for s in TxStatus}
        if not isinstance(tx_id, str) or not isinstance(status, str) or status not in known:
            raise Unreachable(f"{url}: the answer is not a transaction's receipt")
        return cls(
            tx_id,
            known[status],
            height if isinstance(height, int) else None,
            index if isinstance(index, int) else None,
        )


def submit_tx(base_url: str, data: bytes, timeout_s: float, wait: bool = True) -> TxAnswer:
    """POST a signed transaction (waiting for its block when ``wait``); what the node said."""
    url = base_url.rstrip("/") + "/v1/transactions" + ("?wait=true" if wait else "")
    return TxAnswer.of(call(url, payload={"tx": data.hex()}, timeout_s=timeout_s))


def call(
    url: str,
    *,
    timeout_s: float,
    method: str | None = None,
    payload: object | None = None,
    headers: Mapping[str, str] | None = None,
    limit: int = ANSWER_BYTES_MAX,
    sleep: Sleep = time.sleep,
) -> Answer:
    """One request (GET, or POST of ``payload`` as JSON); the node's answer, whatever its
    status. ``Unreachable`` when it does not answer, or answers more than ``limit`` bytes."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method or ("GET" if data is None else "POST"),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            **(headers or {}),
        },
    )
    try:
        with urlopen(request, timeout_s, sleep) as response:
            return Answer(url, response.status, _capped(url, response.read(limit + 1), limit))
    except urllib.error.HTTPError as error:
        with error:
            return Answer(url, error.code, _capped(url, error.read(limit + 1), limit))
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise Unreachable(f"{url}: {reason}") from None


def node_status(base_url: str, timeout_s: float) -> NodeStatus:
    """``/v1/status`` of the node at ``base_url``; ``Unreachable`` when it does not serve it."""
    answer = call(base_url.rstrip("/") + "/v1/status", timeout_s=timeout_s)
    if not answer.ok:
        raise Unreachable(f"{answer.url}: HTTP {answer.status}")
    return NodeStatus.of(answer)


def request_json(url: str, payload: object | None, timeout_s: float) -> dict[str, object]:
    """GET ``url`` (POST ``payload`` as JSON when given); the answer's JSON object (a problem
    document too: the caller reads its ``result``)."""
    answer = call(url, payload=payload, timeout_s=timeout_s)
    if answer.ok:
        return answer.json()
    if not answer.body:
        return {}
    try:
        return answer.json()
    except Unreachable:
        raise Unreachable(f"{url}: HTTP {answer.status}") from None


def urlopen(
    request: urllib.request.Request,
    timeout_s: float,
    sleep: Sleep = time.sleep,
) -> http.client.HTTPResponse:
    """``urllib.request.urlopen``, honouring 429 / 503 + ``Retry-After`` (bounded): the
    transport under ``call``; callers use ``call``."""
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


def _capped(url: str, raw: bytes, limit: int) -> bytes:
    if len(raw) > limit:
        raise Unreachable(f"{url}: the answer is larger than {limit} bytes")
    return raw
