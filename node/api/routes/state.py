"""``GET /v1/state/items``: a node's committed state at one height, paged, for state sync.

A new observer (``relance-node sync``, ``node.run.statesync``) downloads the state of a
recent height from another node instead of replaying every block since genesis.
The first page freezes the state at the node's current height (a LevelDB snapshot,
``BlockStore.snapshot``) and names that height and its state root; the next pages
ask for the same ``height`` with ``after`` (the last key received), so every page
is of the same state while blocks keep being committed. A node keeps a few frozen
states (``limits.STATE_SYNC_SNAPSHOTS_KEPT``), each released after
``limits.STATE_SYNC_SNAPSHOT_TTL_MS`` unused; a height it no longer serves answers
410: start again. The client checks the items against the certified header of the
height (its state root), so the node serving them is not trusted.

The state holds every account's balances: auditors and the bank only, as whole blocks.
"""

from __future__ import annotations

import re
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from node.api.access import Role, Viewers, require
from node.api.inputs import parse_height
from node.api.operation import Operation, Param, Routes
from node.api.parts import ApiConfig, ApiParts
from node.api.problems import ApiError
from node.app.ledger_app import LedgerApp
from node.protocol import limits
from node.store.blockstore import BlockStore, StateSnapshot


@dataclass(frozen=True, slots=True)
class StateParts:
    """What the state routes read of the API."""

    ledger: LedgerApp
    config: ApiConfig
    viewers: Viewers
    snapshots: Snapshots


KEY_BYTES_MAX: Final = 256  # a state key is a prefix byte and at most a few keys and codes
_HEX: Final = re.compile(r"(?:[0-9a-f]{2})+")


@dataclass(frozen=True, slots=True)
class StateItem:
    key: str  # hex
    value: str  # hex


@dataclass(frozen=True, slots=True)
class StatePage:
    """Entries of the state after block ``height``, in key order; pass ``next_after`` as
    ``after`` (with the same ``height``) for the next page; null after the last."""

    height: int
    state_root: str
    items: list[StateItem]
    next_after: str | None


class Snapshots:
    """The frozen states one node serves pages of, newest last."""

    def __init__(self, store: BlockStore) -> None:
        self._store = store
        self._kept: OrderedDict[int, tuple[StateSnapshot, int]] = OrderedDict()

    def at(self, height: int | None, now_ms: int) -> StateSnapshot:
        """The state of ``height`` (None: the current height, frozen now)."""
        self._expire(now_ms)
        if height is not None and height in self._kept:
            snapshot, _ = self._kept.pop(height)
            self._kept[height] = (snapshot, now_ms)
            return snapshot
        current = self._store.height()
        if height is not None and height != current:
            raise ApiError(
                410,
                f"this node no longer serves the state of height {height} (it is at "
                f"{current}): start again without a height",
                slug="state-moved-on",
            )
        snapshot = self._store.snapshot()
        if height is not None and snapshot.height != height:
            snapshot.close()
            raise ApiError(410, "a block was just committed: start again", slug="state-moved-on")
        known = self._kept.pop(snapshot.height, None)
        if known is not None:
            known[0].close()
        self._kept[snapshot.height] = (snapshot, now_ms)
        while len(self._kept) > limits.STATE_SYNC_SNAPSHOTS_KEPT:
            _, (oldest, _) = self._kept.popitem(last=False)
            oldest.close()
        return snapshot

    def _expire(self, now_ms: int) -> None:
        for height, (snapshot, used_ms) in list(self._kept.items()):
            if now_ms - used_ms > limits.STATE_SYNC_SNAPSHOT_TTL_MS:
                del self._kept[height]
                snapshot.close()

    def close(self) -> None:
        for snapshot, _ in self._kept.values():
            snapshot.close()
        self._kept.clear()


_SNAPSHOTS: weakref.WeakKeyDictionary[ApiParts, Snapshots] = weakref.WeakKeyDictionary()


def snapshots(api: ApiParts) -> Snapshots:
    """The snapshots kept for one application (the server closes them at its cleanup)."""
    found = _SNAPSHOTS.get(api)
    if found is None:
        found = _SNAPSHOTS[api] = Snapshots(api.ledger.store)
    return found


def _after(text: str | None) -> bytes | None:
    if text is None:
        return None
    if len(text) > 2 * KEY_BYTES_MAX or _HEX.fullmatch(text) is None:
        raise ApiError(400, "after is a state key in lowercase hex", slug="bad-after")
    return bytes.fromhex(text)


async def state_items(api: StateParts, request: web.Request) -> object:
    viewer = require(api.viewers.of(request))
    if viewer.role not in (Role.AUDITOR, Role.BANK):
        raise ApiError(403, "the state holds every account: auditors and the bank only")
    text = request.query.get("height")
    height = None if text is None else parse_height(text)
    after = _after(request.query.get("after"))
    if after is not None and height is None:
        raise ApiError(400, "after goes with the height of the first page", slug="bad-after")
    limit = min(
        _limit(request.query.get("limit")),
        limits.STATE_SYNC_PAGE_ITEMS_MAX,
    )
    snapshot = api.snapshots.at(height, api.config.clock_ms())
    found = snapshot.items(after, limit + 1)
    items: list[StateItem] = []
    size = 0
    for key, value in found[:limit]:
        size += len(key) + len(value)
        if items and size > limits.STATE_SYNC_PAGE_BYTES_MAX:
            break
        items.append(StateItem(key.hex(), value.hex()))
    more = len(items) < len(found)
    next_after = items[-1].key if more and items else None
    return StatePage(snapshot.height, snapshot.root.hex(), items, next_after)


def _limit(text: str | None) -> int:
    if text is None:
        return limits.STATE_SYNC_PAGE_ITEMS_MAX
    if not text.isascii() or not text.isdigit() or len(text) > 6 or int(text) < 1:
        raise ApiError(400, "limit is a positive integer", slug="bad-limit")
    return int(text)


STATE_OPERATIONS: Final[tuple[Operation[StateParts], ...]] = (
    Operation(
        "GET",
        "/v1/state/items",
        state_items,
        "The committed state at one height, paged, for state sync",
        "blocks",
        StatePage,
        params=(
            Param(
                "height",
                "query",
                {"type": "integer", "minimum": 1},
                "the height of the first page's answer (absent on the first page)",
            ),
            Param(
                "after",
                "query",
                {"type": "string", "pattern": "^([0-9a-f]{2})+$", "maxLength": 2 * KEY_BYTES_MAX},
                "next_after of the previous page",
            ),
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1},
                f"entries at most (at most {limits.STATE_SYNC_PAGE_ITEMS_MAX} are sent)",
            ),
        ),
        errors=(400, 401, 403, 410),
        auth="required",
        description=(
            "The first page (no height) freezes the state at the node's current height and "
            "names it with its state root; ask the next pages with that height and after. "
            "Check the items against the certified header of the height "
            "(GET /v1/blocks/{height}): they must rebuild its state root. 410: the node no "
            "longer serves that height, start again. Auditors and the bank only."
        ),
    ),
)


def _parts(api: ApiParts) -> StateParts:
    return StateParts(api.ledger, api.config, api.viewers, snapshots(api))


ROUTES: Final = Routes(_parts, STATE_OPERATIONS)
