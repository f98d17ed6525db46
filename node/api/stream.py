"""The server-sent-events stream of committed blocks and transactions.

Each subscriber has a bounded queue (``limits.HTTP_STREAM_QUEUE_EVENTS_MAX``);
a reader too slow to keep up is disconnected rather than letting memory grow,
and it resumes from the history endpoints. Each committed transaction is
offered to a subscriber only if the subscriber may read it (auditor, or a
party to it); block headers are public.

Open streams are capped in all (``limits.HTTP_STREAM_SUBSCRIBERS_MAX``) and per
client (``limits.HTTP_STREAM_SUBSCRIBERS_PER_CLIENT_MAX``, the client as
``node.api.ratelimit.client_of`` names it), so one client cannot hold every slot.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from node.api.access import Viewer
from node.protocol import limits


@dataclass(frozen=True, slots=True)
class Event:
    name: str  # "block" or "tx"
    data: object  # JSON-ready
    readers: frozenset[bytes] | None  # None: public

    def encode(self, event_id: str) -> bytes:
        return f"id: {event_id}\nevent: {self.name}\ndata: {json.dumps(self.data)}\n\n".encode()


class Refusal(enum.Enum):
    """Why a stream is not opened."""

    FULL = "every stream slot of the node is taken"
    CLIENT_FULL = "this client already holds as many streams as one client may"


@dataclass(eq=False)
class Subscriber:
    viewer: Viewer | None
    client: str = ""
    queue: asyncio.Queue[Event | None] = field(
        default_factory=lambda: asyncio.Queue(limits.HTTP_STREAM_QUEUE_EVENTS_MAX)
    )

    def may_read(self, event: Event) -> bool:
        if event.readers is None:
            return True
        viewer = self.viewer
        return viewer is not None and (viewer.reads_all or viewer.key in event.readers)


class Hub:
    """Fans committed events out to subscribers (on the node's loop only)."""

    def __init__(self, on_count: Callable[[int], None] | None = None) -> None:
        self._subscribers: set[Subscriber] = set()
        self._per_client: Counter[str] = Counter()
        self._on_count = on_count

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self, viewer: Viewer | None, client: str = "") -> Subscriber | Refusal:
        """A new subscriber, or why not. ``client`` is who asks over HTTP
        (``ratelimit.client_of``); in-process readers share the client ``""``."""
        if self._per_client[client] >= limits.HTTP_STREAM_SUBSCRIBERS_PER_CLIENT_MAX:
            return Refusal.CLIENT_FULL
        if len(self._subscribers) >= limits.HTTP_STREAM_SUBSCRIBERS_MAX:
            return Refusal.FULL
        subscriber = Subscriber(viewer, client)
        self._subscribers.add(subscriber)
        self._per_client[client] += 1
        self._count()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._drop(subscriber)
        self._count()

    def open_by(self, client: str) -> int:
        return self._per_client[client]

    def _drop(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
            self._per_client[subscriber.client] -= 1
            if self._per_client[subscriber.client] <= 0:
                del self._per_client[subscriber.client]

    def publish(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            if not subscriber.may_read(event):
                continue
            try:
                subscriber.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._drop(subscriber)
                _close(subscriber)
        self._count()

    def close_all(self) -> None:
        for subscriber in self._subscribers:
            _close(subscriber)
        self._subscribers.clear()
        self._per_client.clear()
        self._count()

    def _count(self) -> None:
        if self._on_count is not None:
            self._on_count(len(self._subscribers))


def _close(subscriber: Subscriber) -> None:
    """Wake the reader with the end marker (dropping one event if the queue is full)."""
    if subscriber.queue.full():
        subscriber.queue.get_nowait()
    subscriber.queue.put_nowait(None)
