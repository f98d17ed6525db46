"""What the real-process node tests share: a devnet of 4 validators and 1 observer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.devnet.network import DevnetNode, Supervisor, write_devnet
from tests.node.netutil import eventually, free_base_port, get_json


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[tuple[list[DevnetNode], Supervisor]]:
    """4 validators and an observer (index 4), each its own process, all answering."""
    nodes = write_devnet(
        tmp_path / "net", 4, free_base_port(10), time.time_ns() // 1_000_000, observers=1
    )
    supervisor = Supervisor(nodes)
    supervisor.start()
    try:
        for node in nodes:
            eventually(lambda n=node: get_json(n.api_url + "/v1/health"), 30, f"{node.name} up")
        yield nodes, supervisor
    finally:
        supervisor.stop()


def node_height(node: DevnetNode) -> int:
    """The node's committed height, from its API."""
    value = get_json(node.api_url + "/v1/status")["height"]
    assert isinstance(value, int)
    return value
