"""Where an audit reads a history: a node's data directory, or nodes' HTTP API.

``DataDirSource`` opens a node's LevelDB. LevelDB allows one process at a
time: a running node holds the lock, so audit a stopped node's data, or a
copy of it (``cp -r``), or ask the node over HTTP. ``--copy`` makes the copy.

``HttpSource`` downloads certified blocks from one or more nodes. It needs
the API to serve each height's exact block and certificate bytes
(``GET /v1/blocks/{height}/certified`` → ``{"block": hex, "certificate":
hex}``); a node that does not is reported as such. With several nodes, each
height is asked of them in turn; the audit trusts none of them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from node import limits
from node.store.blockstore import BlockStore, StoreError

HTTP_TIMEOUT_S: Final = 30.0
RESPONSE_BYTES_MAX: Final = 4 * limits.BLOCK_BYTES_MAX


class SourceError(RuntimeError):
    """The history cannot be read; the message says why and what to do."""


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


class HttpSource:
    """Certified blocks downloaded from nodes' API (trusting none of them)."""

    def __init__(self, urls: Sequence[str], genesis_hash: bytes) -> None:
        if not urls:
            raise SourceError("at least one node URL is needed")
        self.urls = [u.rstrip("/") for u in urls]
        self._cache: dict[int, tuple[bytes, bytes]] = {}
        heights = []
        for url in self.urls:
            status = self._json(f"{url}/v1/status")
            if status.get("genesis_hash") != genesis_hash.hex():
                raise SourceError(f"{url} runs another chain (genesis hash differs)")
            height = status.get("height")
            if not isinstance(height, int):
                raise SourceError(f"{url}/v1/status has no height")
            heights.append(height)
        self._top = max(heights)

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
        """One height's bytes, from the first node (in turn) that serves them."""
        cached = self._cache.pop(height, None)
        if cached is not None:
            return cached
        errors = []
        for shift in range(len(self.urls)):
            url = self.urls[(height + shift) % len(self.urls)]
            try:
                body = self._json(f"{url}/v1/blocks/{height}/certified")
                block, cert = body.get("block"), body.get("certificate")
                if not isinstance(block, str) or not isinstance(cert, str):
                    raise SourceError(f"{url}: block {height} without hex bytes")
                pair = (bytes.fromhex(block), bytes.fromhex(cert))
            except (SourceError, ValueError) as exc:
                errors.append(str(exc))
                continue
            self._cache[height] = pair  # the certificate is asked for next
            return pair
        raise SourceError(f"no node serves block {height}: " + "; ".join(errors))

    @staticmethod
    def _json(url: str) -> dict[str, object]:
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
                raw = response.read(RESPONSE_BYTES_MAX + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and url.endswith("/certified"):
                raise SourceError(
                    f"{url}: 404 — this node does not serve certified block bytes "
                    "(needs GET /v1/blocks/{height}/certified)"
                ) from None
            raise SourceError(f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SourceError(f"{url}: {exc}") from None
        if len(raw) > RESPONSE_BYTES_MAX:
            raise SourceError(f"{url}: answer larger than {RESPONSE_BYTES_MAX} bytes")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SourceError(f"{url}: answer is not JSON") from None
        if not isinstance(body, dict):
            raise SourceError(f"{url}: answer is not a JSON object")
        return body
