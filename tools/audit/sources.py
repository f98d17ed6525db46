"""Where an audit reads a history: a node's data directory, or nodes' HTTP API.

``DataDirSource`` opens a node's LevelDB. LevelDB allows one process at a
time: a running node holds the lock, so audit a stopped node's data, or a
copy of it (``cp -r``), or ask the node over HTTP. ``--copy`` makes the copy.

``HttpSource`` downloads certified blocks from one or more nodes. It needs
the API to serve the exact block and certificate bytes: many heights at a time
(``GET /v1/blocks/certified?from=H&limit=N`` → ``{"items": [{"height", "block",
"certificate"}], "next_from"}``), so that a long history fits in an auditor's
rate budget, or else one height at a time (``GET /v1/blocks/{height}/certified``,
older nodes); a node that serves neither is reported as such. A node that
answers "too many requests" (429, ``Retry-After``) is asked again after the
delay it gives, with backoff, a bounded number of times (``node.client.http_json``). That route
reads
everyone's transactions, so nodes serve it to auditors and the bank only: the
source signs one short-lived API token per node (``node.api.tokens``, bound
to the node's key from ``/v1/status``) with the auditor's key and sends it as
``Authorization: Bearer <token>``, renewed before it expires. With several
nodes, each height is asked of them in turn, and the next one answers when
one fails; the audit trusts none of them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from node.api import tokens
from node.client.http_json import urlopen
from node.protocol import limits
from node.protocol.crypto import PUBLIC_KEY_BYTES, Signer
from node.store.blockstore import BlockStore, StoreError

HTTP_TIMEOUT_S: Final = 30.0
RESPONSE_BYTES_MAX: Final = 4 * limits.BLOCK_BYTES_MAX
TOKEN_TTL_MS: Final = min(600_000, limits.API_TOKEN_TTL_MAX_MS)
TOKEN_RENEW_MS: Final = TOKEN_TTL_MS // 2  # a token older than this is replaced
RANGE_BLOCKS: Final = limits.HTTP_CERTIFIED_RANGE_BLOCKS_MAX  # heights asked for at once


class SourceError(RuntimeError):
    """The history cannot be read; the message says why and what to do."""


class WrongChainError(SourceError):
    """A node runs another chain: never skipped over, always reported."""


class _NoRangeRoute(SourceError):
    """The node does not serve certified blocks in ranges (an older node)."""


class DataDirSource:
    """A node's data directory: blocks, certificates, recorded roots, state, tx index."""

    def __init__(self, path: Path, genesis_hash: bytes, copy: bool = False) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if not (path / "CURRENT").exists():
            raise SourceError(f"{path} is not a node's data directory (no LevelDB CURRENT file)")
        if copy:
            self._tmp = tempfile.TemporaryDirectory(prefix="relance-audit-")
            target = Path(self._tmp.name) / "data"
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("LOCK"))
            path = target
        try:
            self.store = BlockStore.open(path, genesis_hash, create=False)
        except StoreError as exc:
            hint = ""
            if "lock" in str(exc).lower():
                hint = (
                    " — a running node holds its LevelDB lock: stop it, audit a copy "
                    "(--copy), or audit over HTTP (--node)"
                )
            self.close()
            raise SourceError(f"{exc}{hint}") from None

    def close(self) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            store.close()
            self.store = None  # type: ignore[assignment]  # closed: never used again
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def top_height(self) -> int:
        return self.store.height()

    def block_bytes(self, height: int) -> bytes | None:
        return self.store.block(height)

    def certificate_bytes(self, height: int) -> bytes | None:
        return self.store.certificate(height)

    def recorded_root(self, height: int) -> bytes | None:
        return self.store.state_root(height)

    def state_items(self) -> Iterator[tuple[bytes, bytes]]:
        return self.store.state_items()

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        return self.store.tx_location(tx_id)


@dataclass(slots=True)
class _Node:
    url: str
    node_key: bytes
    token: str = ""
    token_issued_ms: int = -1
    serves_ranges: bool = True


class HttpSource:
    """Certified blocks downloaded from nodes' API (trusting none of them).

    ``signer`` is an auditor's (or the bank's) key: it signs the API tokens the
    certified-block route requires. ``clock_ms`` is the wall clock, an input.
    """

    def __init__(
        self,
        urls: Sequence[str],
        genesis_hash: bytes,
        signer: Signer | None = None,
        clock_ms: Callable[[], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not urls:
            raise SourceError("at least one node URL is needed")
        self.signer = signer
        self.clock_ms = clock_ms or _wall_clock_ms
        self.sleep = sleep  # waits out a node's Retry-After
        self._cache: dict[int, tuple[bytes, bytes]] = {}
        self.nodes: list[_Node] = []
        heights = []
        errors = []
        for raw_url in urls:
            url = raw_url.rstrip("/")
            try:
                node, height, chain_id = self._introduce(url, genesis_hash)
            except WrongChainError:
                raise
            except SourceError as exc:
                errors.append(str(exc))  # unreachable: the others may answer
                continue
            self.chain_id = chain_id
            self.nodes.append(node)
            heights.append(height)
        if not self.nodes:
            raise SourceError("no node answers: " + "; ".join(errors))
        self._top = max(heights)

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def _introduce(self, url: str, genesis_hash: bytes) -> tuple[_Node, int, str]:
        status = self._json(f"{url}/v1/status")
        if status.get("genesis_hash") != genesis_hash.hex():
            raise WrongChainError(f"{url} runs another chain (genesis hash differs)")
        height, chain_id, node_key = (
            status.get("height"),
            status.get("chain_id"),
            status.get("node_key"),
        )
        if not isinstance(height, int):
            raise SourceError(f"{url}/v1/status has no height")
        if not isinstance(chain_id, str):
            raise SourceError(f"{url}/v1/status has no chain_id")
        try:
            key = bytes.fromhex(node_key) if isinstance(node_key, str) else b""
        except ValueError:
            key = b""
        if len(key) != PUBLIC_KEY_BYTES:
            raise SourceError(f"{url}/v1/status has no node_key of 32 bytes")
        return _Node(url, key), height, chain_id

    def close(self) -> None:
        self._cache.clear()

    def top_height(self) -> int:
        return self._top

    def block_bytes(self, height: int) -> bytes | None:
        block, cert = self._certified(height)
        self._cache[height] = (block, cert)
        return block

    def certificate_bytes(self, height: int) -> bytes | None:
        return self._certified(height)[1]

    def _certified(self, height: int) -> tuple[bytes, bytes]:
        """One height's bytes, from the first node (in turn) that serves them; the
        heights after it that came in the same answer are kept for the next calls."""
        cached = self._cache.pop(height, None)
        if cached is not None:
            return cached
        for old in [h for h in self._cache if h < height]:
            del self._cache[old]  # never asked for: the cache stays one range at most
        errors = []
        turn = height // RANGE_BLOCKS
        for shift in range(len(self.nodes)):
            node = self.nodes[(turn + shift) % len(self.nodes)]
            try:
                pairs = self._download(node, height)
            except (SourceError, ValueError) as exc:
                errors.append(str(exc))
                continue
            self._cache.update(pairs)  # the certificate is asked for next, then the heights after
            return pairs[height]
        raise SourceError(f"no node serves block {height}: " + "; ".join(errors))

    def _download(self, node: _Node, height: int) -> dict[int, tuple[bytes, bytes]]:
        """``height``'s bytes and, when the node serves ranges, those of the heights after."""
        if node.serves_ranges:
            try:
                return self._range(node, height)
            except _NoRangeRoute:
                node.serves_ranges = False
        url = f"{node.url}/v1/blocks/{height}/certified"
        return {height: _pair(url, height, self._json(url, self._authorization(node)))}

    def _range(self, node: _Node, height: int) -> dict[int, tuple[bytes, bytes]]:
        limit = min(RANGE_BLOCKS, max(1, self._top - height + 1))
        url = f"{node.url}/v1/blocks/certified?from={height}&limit={limit}"
        items = self._json(url, self._authorization(node)).get("items")
        if not isinstance(items, list) or not items:
            raise SourceError(f"{url}: no blocks in the answer")
        pairs = {}
        for expected, item in enumerate(items, start=height):
            if not isinstance(item, dict):
                raise SourceError(f"{url}: an item is not an object")
            pairs[expected] = _pair(url, expected, item)
        return pairs

    def _authorization(self, node: _Node) -> dict[str, str]:
        """The Bearer header for ``node``: a fresh token when the last one is old."""
        if self.signer is None:
            return {}
        now_ms = self.clock_ms()
        if not node.token or now_ms - node.token_issued_ms >= TOKEN_RENEW_MS:
            node.token = tokens.make_token(
                self.signer, self.chain_id, node.node_key, now_ms, TOKEN_TTL_MS
            )
            node.token_issued_ms = now_ms
        return {"Authorization": f"Bearer {node.token}"}

    def _json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, object]:
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with urlopen(request, HTTP_TIMEOUT_S, self.sleep) as response:
                raw = response.read(RESPONSE_BYTES_MAX + 1)
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 404, 405) and "/v1/blocks/certified?" in url:
                # an older node: no such route, or "certified" read as a height
                raise _NoRangeRoute(url) from None
            if exc.code == 429:
                raise SourceError(
                    f"{url}: HTTP 429 — the node still says too many requests after "
                    "waiting out its Retry-After"
                ) from None
            if exc.code == 404 and url.endswith("/certified"):
                raise SourceError(
                    f"{url}: 404 — this node does not serve certified block bytes "
                    "(needs GET /v1/blocks/{height}/certified)"
                ) from None
            if exc.code in (401, 403) and url.endswith("/certified"):
                raise SourceError(
                    f"{url}: HTTP {exc.code} — whole blocks are for auditors and the bank: "
                    "give --key NAME, an auditor's key"
                ) from None
            raise SourceError(f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SourceError(f"{url}: {exc}") from None
        if len(raw) > RESPONSE_BYTES_MAX:
            raise SourceError(f"{url}: answer larger than {RESPONSE_BYTES_MAX} bytes")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # also a huge integer, or JSON nested deeper
            # than the interpreter recurses: one hostile node never stops the audit
            raise SourceError(f"{url}: answer is not JSON") from None
        if not isinstance(body, dict):
            raise SourceError(f"{url}: answer is not a JSON object")
        return body


def _pair(url: str, height: int, item: dict[str, object]) -> tuple[bytes, bytes]:
    """A block's and its certificate's bytes from an answer's hex."""
    block, cert = item.get("block"), item.get("certificate")
    if item.get("height", height) != height:
        raise SourceError(f"{url}: block {item.get('height')} where {height} was expected")
    if not isinstance(block, str) or not isinstance(cert, str):
        raise SourceError(f"{url}: block {height} without hex bytes")
    return bytes.fromhex(block), bytes.fromhex(cert)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000
