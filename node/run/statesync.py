"""State sync: start an observer from another node's state at a recent height.

Instead of replaying every block since genesis, a new observer downloads the
state of a recent height ``H`` from any node (``GET /v1/state/items``, paged
over one frozen state: ``node.api.routes.state``) and checks it without trusting
that node: the certified header of ``H`` (``GET /v1/blocks/{H}/certified``) must
carry the signatures of more than 2/3 of the validator set in force at ``H``,
followed from the genesis file through every validator change (``GET
/v1/validators``, ``node.client.lightclient.follow_validator_changes``), and the items
must rebuild that header's state root (``node.protocol.state_tree.StateTree.from_items``).
Then the store starts at ``H`` (``BlockStore.write_synced_state``): it holds block
``H`` and its certificate, and the node follows from ``H + 1`` as any observer.

What a synced node does not have: the blocks before ``H``. Its derived views
(history, events, analytics) start at ``H``: what happened before is not in them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from node.client.http_json import urlopen
from node.client.lightclient import (
    CertifiedHeader,
    Handover,
    NodeLied,
    follow_validator_changes,
    handover_from_json,
    verify_header,
)
from node.consensus.types import Block, Certificate
from node.protocol import limits
from node.protocol.codec import DecodeError
from node.protocol.genesis import Genesis
from node.protocol.state_tree import StateTree
from node.store.blockstore import BlockStore

HTTP_TIMEOUT_S: Final = 60.0

Fetch = Callable[[str], dict[str, object]]
"""GET a path of the source node's API (``/v1/...``); its JSON object, or ``SyncError``."""


class SyncError(RuntimeError):
    """The source did not answer, or its state does not verify; the message says which."""


@dataclass(frozen=True, slots=True)
class SyncedState:
    """A state checked against a certified header: what the store starts from."""

    height: int
    items: list[tuple[bytes, bytes]]
    state_root: bytes
    block: bytes
    certificate: bytes


def http_fetch(base_url: str, token: str) -> Fetch:
    """GETs of ``base_url``'s API with ``token`` (an auditor's or the bank's)."""
    base = base_url.rstrip("/")

    def fetch(path: str) -> dict[str, object]:
        url = base + path
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urlopen(request, HTTP_TIMEOUT_S) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise SyncError(f"{url}: HTTP {error.code}: {_detail(error)}") from None
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            raise SyncError(f"{url}: {error}") from None
        if not isinstance(body, dict):
            raise SyncError(f"{url}: the answer is not a JSON object")
        return body

    return fetch


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read() or b"{}")
    except ValueError:
        return "no detail"
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail) if detail else "no detail"


def fetch_state(genesis: Genesis, fetch: Fetch) -> SyncedState:
    """The source's state at its current height, checked against the certified header."""
    try:
        height, claimed_root, items = _state_pages(fetch)
        block_bytes, certificate_bytes = _certified(fetch, height)
        block, certificate = Block.decode(block_bytes), Certificate.decode(certificate_bytes)
        validators_at = follow_validator_changes(genesis, _handovers(fetch))
        header = verify_header(genesis, CertifiedHeader(block.header, certificate), validators_at)
    except NodeLied as lie:
        raise SyncError(f"the source's answers do not verify: {lie.reason}") from None
    except (KeyError, TypeError, ValueError, DecodeError) as exc:
        raise SyncError(f"the source's answer is not well formed: {exc}") from None
    if header.height != height:
        raise SyncError(f"the certified block is of height {header.height}, not {height}")
    try:
        tree = StateTree.from_items(items)
    except ValueError as exc:
        raise SyncError(f"the source's state is not a valid state: {exc}") from None
    if tree.root() != header.state_root or claimed_root != header.state_root:
        raise SyncError(
            f"the state the source sent does not rebuild the certified state root of "
            f"height {height}: it is tampered or broken; sync from another node"
        )
    return SyncedState(height, items, header.state_root, block_bytes, certificate_bytes)


def write_state(store: BlockStore, synced: SyncedState) -> None:
    """Start ``store`` (new and empty) at the synced height."""
    store.write_synced_state(
        synced.height, synced.items, synced.state_root, synced.block, synced.certificate
    )


def _state_pages(fetch: Fetch) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    page = fetch("/v1/state/items")
    height, root = _int(page["height"]), bytes.fromhex(str(page["state_root"]))
    items: list[tuple[bytes, bytes]] = []
    while True:
        if _int(page["height"]) != height or bytes.fromhex(str(page["state_root"])) != root:
            raise SyncError("the source changed the height of its state between pages")
        entries = page["items"]
        if not isinstance(entries, list):
            raise TypeError("items is not a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise TypeError("an item is not an object")
            key, value = bytes.fromhex(str(entry["key"])), bytes.fromhex(str(entry["value"]))
            if items and key <= items[-1][0]:
                raise SyncError("the source's state items are not in key order")
            items.append((key, value))
        if len(items) > limits.STATE_SYNC_ITEMS_MAX:
            raise SyncError(f"the state has more than {limits.STATE_SYNC_ITEMS_MAX} entries")
        after = page.get("next_after")
        if after is None:
            return height, root, items
        if not entries or not isinstance(after, str):
            raise TypeError("a page without items, or a bad next_after")
        page = fetch(f"/v1/state/items?height={height}&after={after}")


def _certified(fetch: Fetch, height: int) -> tuple[bytes, bytes]:
    answer = fetch(f"/v1/blocks/{height}/certified")
    return bytes.fromhex(str(answer["block"])), bytes.fromhex(str(answer["certificate"]))


def _handovers(fetch: Fetch) -> list[Handover]:
    """Every validator change after genesis, as the source shows it (checked by the caller)."""
    handovers: list[Handover] = []
    cursor: str | None = None
    for _ in range(limits.LIGHT_CLIENT_ERA_PAGES_MAX):
        page = fetch("/v1/validators" + (f"?cursor={cursor}" if cursor else ""))
        entries, following = page["items"], page.get("next_cursor")
        if not isinstance(entries, list) or not (following is None or isinstance(following, str)):
            raise TypeError("not a page of validator sets")
        handovers += [handover_from_json(entry) for entry in entries if entry["first_height"] != 1]
        cursor = following
        if cursor is None:
            return handovers
    raise SyncError(f"more than {limits.LIGHT_CLIENT_ERA_PAGES_MAX} pages of validator sets")


def _int(value: object) -> int:
    if type(value) is not int or value < 1:
        raise TypeError("a height is a positive integer")
    return value
