"""Finding 7: one anonymous client cannot take every event-stream slot.

A client (as ``node.api.ratelimit.client_of`` names it) holds at most
``limits.HTTP_STREAM_SUBSCRIBERS_PER_CLIENT_MAX`` streams; the next gets 429 with
Retry-After, while another client still connects, and a slot is given back when a
stream closes.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from node.api.server import API_KEY
from node.protocol import limits
from tests.api.world import World


@contextmanager
def open_stream(world: World, forwarded_for: str) -> Iterator[http.client.HTTPResponse]:
    connection = http.client.HTTPConnection("127.0.0.1", world.node.port, timeout=20)
    try:
        connection.request("GET", "/v1/stream", headers={"X-Forwarded-For": forwarded_for})
        response = connection.getresponse()
        if response.status == 200:
            assert response.readline() == b": relance stream\n"  # subscribed
        yield response
    finally:
        connection.close()


def open_count(world: World, client: str) -> int:
    hub = world.node.app[API_KEY].gate.hub
    return world.node.run(lambda: hub.open_by(client))


def test_one_client_cannot_take_every_stream_slot(secure_world: World) -> None:
    world = secure_world
    api = world.node.app[API_KEY]
    cap = limits.HTTP_STREAM_SUBSCRIBERS_PER_CLIENT_MAX
    assert cap < limits.HTTP_STREAM_SUBSCRIBERS_MAX
    # Behind a trusted proxy, clients are told apart by X-Forwarded-For.
    world.node.run(lambda: object.__setattr__(api.config, "trust_forwarded_for", True))
    try:
        with ExitStack() as streams:
            for _ in range(cap):
                assert streams.enter_context(open_stream(world, "203.0.113.7")).status == 200
            assert open_count(world, "203.0.113.7") == cap
            with open_stream(world, "203.0.113.7") as refused:
                assert refused.status == 429
                assert refused.getheader("Retry-After") is not None
                assert refused.getheader("Content-Type", "").startswith("application/problem+json")
                assert b"too-many-streams-from-client" in refused.read()
            with open_stream(world, "198.51.100.9") as other:
                assert other.status == 200  # another client still connects
        # Closed streams give their slots back (seen at the next event or keep-alive).
        world.node.run(world.node.make_block)
        deadline = time.monotonic() + 10
        while open_count(world, "203.0.113.7") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open_count(world, "203.0.113.7") == 0
        with open_stream(world, "203.0.113.7") as again:
            assert again.status == 200
    finally:
        world.node.run(lambda: object.__setattr__(api.config, "trust_forwarded_for", False))
