"""The server-sent event stream of committed blocks and transactions."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from node.api.access import Viewer, Viewers
from node.api.feeds import EVENTS
from node.api.operation import (
    SSE_CONTENT_TYPE,
    Operation,
    Routes,
    pick,
)
from node.api.parts import ApiConfig
from node.api.problems import ApiError
from node.api.ratelimit import client_of
from node.api.stream import Refusal
from node.api.view_gate import ViewGate
from node.protocol import limits


@dataclass(frozen=True, slots=True)
class StreamParts:
    """What the event stream read of the API."""

    config: ApiConfig
    gate: ViewGate
    viewers: Viewers


STREAM_RETRY_AFTER_S: Final = 5


async def stream(api: StreamParts, request: web.Request) -> object:
    api.gate.require(EVENTS)
    viewer: Viewer | None = api.viewers.of(request)
    subscriber = api.gate.hub.subscribe(viewer, client_of(request, api.config.trust_forwarded_for))
    if subscriber is Refusal.CLIENT_FULL:  # others may still connect
        raise ApiError(
            429,
            f"at most {limits.HTTP_STREAM_SUBSCRIBERS_PER_CLIENT_MAX} open streams a client: "
            "close one first",
            slug="too-many-streams-from-client",
            headers={"Retry-After": str(STREAM_RETRY_AFTER_S)},
        )
    if isinstance(subscriber, Refusal):
        raise ApiError(
            503,
            "too many open streams: retry later",
            slug="too-many-streams",
            headers={"Retry-After": str(STREAM_RETRY_AFTER_S)},
        )
    response = web.StreamResponse(
        headers={"Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-store"}
    )
    try:
        await response.prepare(request)
        await response.write(b": relance stream\n\n")
        sequence = 0
        while True:
            try:
                async with asyncio.timeout(limits.HTTP_STREAM_KEEPALIVE_S):
                    event = await subscriber.queue.get()
            except TimeoutError:  # a comment line: finds closed connections, keeps proxies open
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                break
            sequence += 1
            await response.write(event.encode(str(sequence)))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        api.gate.hub.unsubscribe(subscriber)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


OPERATIONS: Final[tuple[Operation[StreamParts], ...]] = (
    Operation(
        "GET",
        "/v1/stream",
        stream,
        "Server-sent events: committed blocks and transactions",
        "transactions",
        None,
        errors=(401, 503),
        auth="optional",
        content_type=SSE_CONTENT_TYPE,
        description="Events 'block' (public header) and 'tx' ({tx_id, height, index, kind}), "
        "the latter only for transactions the reader may see. A reader that falls "
        f"{limits.HTTP_STREAM_QUEUE_EVENTS_MAX} events behind is disconnected.",
    ),
)


ROUTES: Final = Routes(pick(StreamParts), OPERATIONS)
