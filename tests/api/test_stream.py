"""The server-sent-event stream: committed blocks for all, transactions only for their readers."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager

from node.ledger import tx as t
from tests.api.world import LIEGE_CAMPAIGN, World

Event = tuple[str, dict[str, object]]


@contextmanager
def stream(world: World, token: str | None) -> Iterator[Iterator[Event]]:
    connection = http.client.HTTPConnection("127.0.0.1", world.node.port, timeout=20)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    connection.request("GET", "/v1/stream", headers=headers)
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    assert response.readline() == b": relance stream\n"  # subscribed from here on
    response.readline()

    def events() -> Iterator[Event]:
        name, data = "", ""
        while True:
            line = response.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif line == "" and name:
                yield name, json.loads(data)
                name, data = "", ""

    try:
        yield events()
    finally:
        connection.close()


def test_a_reader_gets_its_own_transactions_only(world: World) -> None:
    node, chain = world.node, world.chain
    with stream(world, node.token(world.dave.signer)) as events:
        foreign = world.supplier.sign(chain, t.Redeem(world.namur.pk, 100))
        first = node.commit(foreign)
        own = world.dave.sign(chain, t.Pay(LIEGE_CAMPAIGN, world.liege_shop.pk, 100, "livre"))
        second = node.commit(own)
        seen = []
        for name, data in events:
            seen.append((name, data.get("height"), data.get("tx_id")))
            if name == "tx":
                break
    assert seen == [
        ("block", first, None),
        ("block", second, None),
        ("tx", second, own.tx_id.hex()),
    ]


def test_an_anonymous_reader_gets_block_headers_only(world: World) -> None:
    node, chain = world.node, world.chain
    with stream(world, None) as events:
        paid = node.commit(
            world.dave.sign(chain, t.Pay(LIEGE_CAMPAIGN, world.liege_shop.pk, 1, ""))
        )
        empty = node.run(node.make_block).header.height
        seen = []
        for name, data in events:
            seen.append((name, data.get("height")))
            if data.get("height") == empty:
                break
    assert seen == [("block", paid), ("block", empty)]


def test_an_auditor_reads_every_transaction(world: World) -> None:
    node, chain = world.node, world.chain
    with stream(world, node.token(world.auditor.signer)) as events:
        paid = world.dave.sign(chain, t.Pay(LIEGE_CAMPAIGN, world.liege_shop.pk, 2, ""))
        node.commit(paid)
        kinds = []
        for name, data in events:
            kinds.append(name)
            if name == "tx":
                assert data["tx_id"] == paid.tx_id.hex() and data["kind"] == "pay"
                break
    assert kinds == ["block", "tx"]
