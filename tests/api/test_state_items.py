"""``GET /v1/state/items``: the committed state, paged over one frozen height (state sync).

The pages of one height hold every state entry once, in key order, and rebuild the
certified header's state root; a height the node no longer serves answers 410;
only auditors and the bank read it; a malformed ``after`` is named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from node.consensus.types import Block, Certificate
from node.protocol.state_tree import StateTree
from node.run import statesync
from tests.api.world import World


def _pages(world: World, token: str, limit: int) -> tuple[int, str, list[tuple[bytes, bytes]]]:
    node = world.node
    page = node.get(f"/v1/state/items?limit={limit}", token).json()
    height, root = page["height"], page["state_root"]
    assert isinstance(height, int) and isinstance(root, str)
    items: list[tuple[bytes, bytes]] = []
    pages = 0
    while True:
        pages += 1
        assert (page["height"], page["state_root"]) == (height, root)
        entries = page["items"]
        assert isinstance(entries, list) and len(entries) <= limit
        items += [(bytes.fromhex(e["key"]), bytes.fromhex(e["value"])) for e in entries]
        after = page["next_after"]
        if after is None:
            break
        page = node.get(f"/v1/state/items?height={height}&after={after}&limit={limit}",
                        token).json()  # fmt: skip
    assert pages > 1
    return height, root, items


def test_the_pages_rebuild_the_certified_state_root(world: World) -> None:
    token = world.node.token(world.auditor.signer)
    height, root, items = _pages(world, token, 7)
    keys = [k for k, _ in items]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert dict(items) == dict(world.node.ledger.store.state_items())
    raw = world.node.ledger.store.block(height)
    assert raw is not None
    header = Block.decode(raw).header
    assert StateTree.from_items(items).root() == header.state_root
    assert root == header.state_root.hex()
    # The bank may read it too.
    bank = world.node.token(world.bank.signer)
    assert world.node.get("/v1/state/items?limit=1", bank).status == 200


def test_a_height_no_longer_served_is_gone(world: World) -> None:
    token = world.node.token(world.auditor.signer)
    top = world.node.get("/v1/state/items?limit=1", token).json()["height"]
    assert isinstance(top, int) and top > 1
    old = world.node.get(f"/v1/state/items?height={top - 1}&after=00", token)
    assert old.status == 410
    assert old.content_type == "application/problem+json"
    assert "start again" in str(old.json()["detail"])


def test_only_auditors_and_the_bank_and_inputs_are_checked(world: World) -> None:
    node = world.node
    assert node.get("/v1/state/items").status == 401
    holder = node.get("/v1/state/items", node.token(world.alice.signer))
    assert holder.status == 403
    token = node.token(world.auditor.signer)
    for query in ("after=zz&height=1", "after=abc&height=1", "after=00", "limit=0",
                  "after=" + "00" * 257 + "&height=1"):  # fmt: skip
        answer = node.get(f"/v1/state/items?{query}", token)
        assert answer.status == 400, (query, answer.json())


def _fetch(world: World) -> statesync.Fetch:
    token = world.node.token(world.auditor.signer)

    def fetch(path: str) -> dict[str, object]:
        answer = world.node.get(path, token)
        assert answer.status == 200, answer.json()
        return answer.json()

    return fetch


def test_state_sync_takes_an_honest_state_and_refuses_a_tampered_one(world: World) -> None:
    honest = _fetch(world)
    synced = statesync.fetch_state(world.node.genesis, honest)
    assert dict(synced.items) == dict(world.node.ledger.store.state_items())
    assert synced.state_root == world.node.ledger.store.state_root(synced.height)

    def edited(change: Callable[[str, dict[str, object]], None]) -> statesync.Fetch:
        def fetch(path: str) -> dict[str, object]:
            answer = honest(path)
            change(path, answer)
            return answer

        return fetch

    def dropped(path: str, answer: dict[str, object]) -> None:
        if path.startswith("/v1/state/items"):
            answer["items"] = answer["items"][1:]  # type: ignore[index]

    def reordered(path: str, answer: dict[str, object]) -> None:
        if path.startswith("/v1/state/items"):
            answer["items"] = list(reversed(answer["items"]))  # type: ignore[call-overload]

    def forged(path: str, answer: dict[str, object]) -> None:
        if path.endswith("/certified"):
            cert = Certificate.decode(bytes.fromhex(str(answer["certificate"])))
            signatures = tuple((k, bytes(64)) for k, _ in cert.signatures)
            answer["certificate"] = replace(cert, signatures=signatures).encode().hex()

    cases = {
        "does not rebuild the certified state root": dropped,
        "not in key order": reordered,
        "do not verify": forged,
    }
    for message, change in cases.items():
        with pytest.raises(statesync.SyncError, match=message):
            statesync.fetch_state(world.node.genesis, edited(change))
