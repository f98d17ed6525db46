"""A small synchronous client of a node's HTTP API (``/v1``).

The wallet talks to nodes only through this. Every failure becomes a
``WalletError``: the ledger's refusal (exit 1, with its result code), a node
that cannot be reached or answers nonsense (exit 3), a route this node does
not offer (exit 8).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from node.client.http_json import TxReceipt, Unreachable, call
from node.ledger.tx import NO_ADDRESS, Address, SignedTx
from wallets.exits import Exit, WalletError

TIMEOUT_S: Final = 45.0  # the node waits at most 30 s for a block
RESPONSE_BYTES_MAX: Final = 8 * 1024 * 1024
BATCH_TXS_MAX: Final = 1_000  # the node's cap on one batch
PAGE_ITEMS_MAX: Final = 100_000  # what one listing command reads at most

Json = dict[str, object]


@dataclass(frozen=True, slots=True)
class Submitted:
    tx_id: str
    height: int | None  # None: accepted, not yet in a block


@dataclass(frozen=True, slots=True)
class Refused:
    tx_id: str | None
    result: str


@dataclass(frozen=True, slots=True)
class Balance:
    key: str  # a campaign code (holder) or an issuer key (merchant)
    cents: int


@dataclass(frozen=True, slots=True)
class Account:
    public_key: str
    role: str
    sequence: int
    balances: tuple[Balance, ...]
    raw: Json

    @property
    def profile(self) -> Json:
        """A merchant's record (name, category, zone, issuer, auto_redeem, active), whether
        the node nests it under ``merchant`` or not."""
        nested = self.raw.get("merchant")
        return nested if isinstance(nested, dict) else self.raw

    @property
    def address(self) -> Address:
        """A merchant's registered address (``NO_ADDRESS`` if none): an update the
        merchant signs must carry it unchanged, or the ledger refuses it."""
        found = self.profile.get("address")
        if not isinstance(found, dict):
            return NO_ADDRESS
        return Address(
            str(found.get("street", "")), str(found.get("postcode", "")), str(found.get("town", ""))
        )


class NodeClient:
    def __init__(self, url: str, timeout_s: float = TIMEOUT_S) -> None:
        if not url.startswith(("http://", "https://")):
            raise WalletError(
                Exit.USAGE, f"the node URL must start with http:// or https://: {url}"
            )
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._chain_id: str | None = None
        self._headers: dict[str, str] = {}

    def authenticate(self, token: str | None = None, balance_code: str | None = None) -> None:
        """Send an API token (``Authorization: Bearer``) or a voucher's balance code (cookie)."""
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        if balance_code is not None:
            self._headers["Cookie"] = f"relance_balance={balance_code}"

    def node_key(self) -> bytes:
        """The node's public key, which API tokens are bound to."""
        key = self.status().get("node_key")
        try:
            raw = bytes.fromhex(key) if isinstance(key, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise WalletError(
                Exit.UNSUPPORTED, f"{self.url} does not publish a node key for tokens"
            )
        return raw

    # --- reads -----------------------------------------------------------------------

    def status(self) -> Json:
        return self.get("/v1/status")

    def chain_id(self) -> str:
        if self._chain_id is None:
            chain = self.status().get("chain_id")
            if not isinstance(chain, str):
                raise WalletError(Exit.UNREACHABLE, f"{self.url} did not say its chain id")
            self._chain_id = chain
        return self._chain_id

    def account(self, public_key: bytes) -> Account:
        key = public_key.hex()
        body = self.get(f"/v1/accounts/{key}")
        role, sequence = body.get("role"), body.get("sequence")
        if not isinstance(role, str) or not isinstance(sequence, int):
            raise WalletError(Exit.UNREACHABLE, "the node's account answer is not understood")
        balances = []
        rows = body.get("balances", [])
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict):
                name = row.get("campaign", row.get("issuer"))
                cents = row.get("cents")
                if isinstance(name, str) and isinstance(cents, int):
                    balances.append(Balance(name, cents))
        return Account(key, role, sequence, tuple(balances), body)

    def campaign(self, code: str) -> Json | None:
        """The campaign's rules and totals, or None when this node offers no campaign route."""
        try:
            return self.get(f"/v1/campaigns/{urllib.parse.quote(code, safe='')}")
        except WalletError as error:
            if error.code == Exit.UNSUPPORTED:
                return None
            raise

    def pages(self, path: str, items_max: int = PAGE_ITEMS_MAX) -> list[Json]:
        """Every item of a paginated list (``items`` and ``next_cursor``), up to a cap."""
        out: list[Json] = []
        cursor: str | None = None
        separator = "&" if "?" in path else "?"
        while len(out) < items_max:
            query = "" if cursor is None else f"{separator}cursor={urllib.parse.quote(cursor)}"
            body = self.get(path + query)
            items = body.get("items")
            if not isinstance(items, list):
                raise WalletError(Exit.UNREACHABLE, "the node's list answer is not understood")
            out += [item for item in items if isinstance(item, dict)]
            next_cursor = body.get("next_cursor")
            if not isinstance(next_cursor, str) or not next_cursor or not items:
                break
            cursor = next_cursor
        return out[:items_max]

    def transaction(self, tx_id: str) -> TxReceipt:
        """Where the node says ``tx_id`` is; ``WalletError(USAGE)`` when it never saw it."""
        path = f"/v1/transactions/{urllib.parse.quote(tx_id, safe='')}"
        try:
            return TxReceipt.of_json(self.get(path), self.url + path)
        except Unreachable as error:
            raise WalletError(Exit.UNREACHABLE, str(error)) from None

    # --- writes ----------------------------------------------------------------------

    def submit(self, signed: SignedTx, wait: bool = True) -> Submitted:
        """Submit one transaction; raise ``WalletError(REJECTED)`` with its code if refused."""
        path = "/v1/transactions" + ("?wait=true" if wait else "")
        status, body = self._request("POST", path, {"tx": signed.encode().hex()})
        if status in (200, 202):
            height = body.get("height")
            return Submitted(str(body.get("tx_id")), height if isinstance(height, int) else None)
        raise self._error(status, body)

    def submit_batch(self, signed: Sequence[SignedTx]) -> list[Submitted | Refused]:
        """Admit a batch without waiting; each item accepted or refused with its code."""
        if len(signed) > BATCH_TXS_MAX:
            raise ValueError("batch too large")
        status, body = self._request(
            "POST", "/v1/transactions", {"txs": [s.encode().hex() for s in signed]}
        )
        results = body.get("results")
        if status != 200 or not isinstance(results, list) or len(results) != len(signed):
            raise self._error(status, body)
        out: list[Submitted | Refused] = []
        for item, tx in zip(results, signed, strict=True):
            if isinstance(item, dict) and item.get("accepted"):
                height = item.get("height")
                out.append(Submitted(tx.tx_id.hex(), height if isinstance(height, int) else None))
            else:
                result = item.get("result") if isinstance(item, dict) else None
                out.append(Refused(tx.tx_id.hex(), str(result or "UNKNOWN")))
        return out

    # --- plumbing ----------------------------------------------------------------------

    def get(self, path: str) -> Json:
        status, body = self._request("GET", path, None)
        if status == 200:
            return body
        raise self._error(status, body)

    def _error(self, status: int, body: Json) -> WalletError:
        result = body.get("result")
        detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
        if status == 422 and isinstance(result, str):
            return WalletError(Exit.REJECTED, detail, result)
        if status in (401, 403):
            slug = str(body.get("type", "")).rsplit("/", 1)[-1] or "NOT_AUTHORIZED"
            return WalletError(Exit.REJECTED, detail, slug.upper().replace("-", "_"))
        no_route = "type" not in body or body.get("detail") == "no such route"
        if status in (404, 405) and no_route:
            return WalletError(Exit.UNSUPPORTED, f"{self.url} does not offer this yet")
        if status == 404:
            return WalletError(Exit.USAGE, f"not found: {detail}")
        if 400 <= status < 500:
            return WalletError(Exit.USAGE, f"the node refused the request: {detail}")
        return WalletError(Exit.UNREACHABLE, f"the node failed (HTTP {status}): {detail}")

    def _request(self, method: str, path: str, payload: Json | None) -> tuple[int, Json]:
        """One request (``node.client.http_json.call``: a node that says "too many requests" or
        "busy" is asked again after the delay it gives, a bounded number of times)."""
        try:
            answer = call(
                self.url + path,
                method=method,
                payload=payload,
                headers=self._headers,
                timeout_s=self.timeout_s,
                limit=RESPONSE_BYTES_MAX,
            )
            return answer.status, answer.json() if answer.status == 200 else answer.problem()
        except Unreachable as error:
            raise WalletError(Exit.UNREACHABLE, f"node unreachable at {error}") from None
