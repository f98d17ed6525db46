"""A long chain audited from one node over HTTP, within a low rate limit.

The node (the real API on a real LevelDB store) lets a client make two requests a
second, three in a burst. Asked one block at a time, the audit was refused past the
burst (HTTP 429, "no node serves block 4"); it now asks for certified blocks a
hundred at a time (``GET /v1/blocks/certified``) and waits out the node's
``Retry-After`` when the burst is spent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.harness import AUDITOR, NAMUR, LiveNode
from tools.audit.chain import Auditor
from tools.audit.sources import HttpSource

BLOCKS = 250  # three ranges of a hundred: the third one is refused once, then waited for


def _long_chain(tmp_path: Path, rate: dict[str, object]) -> Iterator[LiveNode]:
    node = LiveNode(tmp_path, rate)
    try:
        node.run(lambda: [node.make_block() for _ in range(BLOCKS)])
        yield node
    finally:
        node.close()


@pytest.fixture
def slow_node(tmp_path: Path) -> Iterator[LiveNode]:
    yield from _long_chain(tmp_path, {"requests_per_s": 2.0, "burst_requests": 3})


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LiveNode]:
    yield from _long_chain(tmp_path, {})


def test_a_long_chain_is_audited_from_one_rate_limited_node(slow_node: LiveNode) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)  # the real node's bucket refills in real time

    source = HttpSource([slow_node.url], slow_node.genesis.genesis_hash, AUDITOR, sleep=sleep)
    result = Auditor(slow_node.genesis, source, None, workers=1).run()
    assert result.ok, result.divergence
    assert result.heights_checked == BLOCKS
    assert waits and all(1.0 <= w <= 10.0 for w in waits)  # the node's Retry-After, honoured


def test_the_range_route_is_capped_and_for_auditors_only(node: LiveNode) -> None:
    token = node.token(AUDITOR)
    answer = node.get("/v1/blocks/certified?from=240&limit=500", token).json()
    items = answer["items"]
    assert isinstance(items, list) and [i["height"] for i in items] == list(range(240, 251))
    assert answer["next_from"] is None
    first = node.get("/v1/blocks/certified?limit=500", token).json()
    assert isinstance(first["items"], list) and len(first["items"]) == 100
    assert first["next_from"] == 101
    assert node.get("/v1/blocks/certified?from=1").status == 401
    assert node.get("/v1/blocks/certified?from=251", token).status == 404
    assert node.get("/v1/blocks/certified?from=0", token).status == 404
    assert node.get("/v1/blocks/certified?from=x", token).status == 400
    holder = node.get("/v1/blocks/certified?from=1", node.token(NAMUR))
    assert holder.status == 403
