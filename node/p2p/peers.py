"""The peer manager: keeps one authenticated link to each configured peer.

Owns the listening socket, the dial loops (capped exponential backoff with
jitter; randomness and sleep are inputs), the tie-break between two links
to the same peer, the bounded per-peer send queues and the per-peer
counters. Payloads are opaque bytes both ways.

Delivery: every received frame is handed to one synchronous callback,
``on_message(peer_key, payload)``, called from the link's reader task in
arrival order. It must not block (a typical consumer does ``put_nowait`` on
its own bounded queue); if it raises, the error is logged with its
traceback and that link is closed. Sends are best effort: a message
to a peer without a live link, the oldest message of a full queue, and
whatever is still queued when a link dies are dropped and counted.

Tie-break: both sides dial each other. Of two links to the same peer, the
one dialed by the lower public key (bytewise) wins on both sides; of two
links dialed by the same side, the newer wins (the older one is stale).
The higher key dials only while disconnected; the lower key also dials
while connected over a link the higher key dialed, so every pair settles on
the link the lower key dialed whenever that one can be made.

Inbound connections before their handshake ends (issue 15, finding 5): slots
are counted per remote address, with slots kept for the configured peers'
addresses (``admission``); the peer's hello must come within
``hello_timeout_s``; refusals are logged in full once, then summarised once
per interval.

Log lines about one peer pass its key (``peer``, hex) and ``address`` as
structured fields (``extra=``; ``node.run.logs`` writes them as JSON keys).

May import the pure leaves and the rest of ``node.p2p`` only.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Final

from node.p2p.admission import (
    HandshakeSlots,
    RefusalLog,
    Slot,
    SlotRefusal,
    address_of,
    is_ip_literal,
)
from node.p2p.backoff import BackoffPolicy, compute_delay_s
from node.p2p.handshake import (
    HANDSHAKE_TIMEOUT_S,
    HandshakeFailure,
    Session,
    accept_handshake,
    dial_handshake,
)
from node.p2p.link import PAYLOAD_BYTES_MAX, CloseReason, Link, frame_bytes_for
from node.protocol.crypto import PUBLIC_KEY_BYTES, PublicKey, Signer
from node.protocol.limits import (
    CHAIN_ID_CHARS_MAX,
    P2P_HELLO_TIMEOUT_S,
    P2P_PEER_ADDRESSES_PER_HOST_MAX,
    P2P_PEER_RESOLVE_TIMEOUT_S,
    P2P_REFUSAL_LOG_INTERVAL_S,
    PEER_SEND_QUEUE_MAX,
)

logger = logging.getLogger(__name__)

DEFAULT_BACKOFF: Final = BackoffPolicy()

OnMessage = Callable[[PublicKey, bytes], None]
Sleep = Callable[[float], Awaitable[None]]
UnitRandom = Callable[[], float]


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A peer to dial: its node key, and where it listens."""

    public_key: PublicKey
    host: str
    port: int

    def __post_init__(self) -> None:
        if len(self.public_key) != PUBLIC_KEY_BYTES:
            raise ValueError("a node public key is 32 bytes")
        if not self.host:
            raise ValueError("a peer needs a host")
        if not 1 <= self.port <= 65535:
            raise ValueError("a peer port is within [1, 65535]")


@dataclass(frozen=True, slots=True)
class PeerManagerConfig:
    """Node-local network settings. ``listen_port`` 0 takes any free port.

    ``peers`` are dialed and accepted; ``accept_from`` are only accepted
    (observers). An entry with our own key is ignored.
    """

    chain_id: str
    listen_port: int
    peers: tuple[PeerAddress, ...] = ()
    accept_from: frozenset[PublicKey] = frozenset()
    listen_host: str = "127.0.0.1"
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S
    hello_timeout_s: float = P2P_HELLO_TIMEOUT_S
    refusal_log_interval_s: float = P2P_REFUSAL_LOG_INTERVAL_S
    send_queue_max: int = PEER_SEND_QUEUE_MAX
    backoff: BackoffPolicy = DEFAULT_BACKOFF

    def __post_init__(self) -> None:
        if not 0 < len(self.chain_id.encode()) <= CHAIN_ID_CHARS_MAX:
            raise ValueError(f"chain id must be 1 to {CHAIN_ID_CHARS_MAX} bytes")
        if not 0 <= self.listen_port <= 65535:
            raise ValueError("listen port is within [0, 65535]")
        if self.handshake_timeout_s <= 0:
            raise ValueError("handshake timeout must be positive")
        if not 0 < self.hello_timeout_s <= self.handshake_timeout_s:
            raise ValueError("hello timeout must be positive and at most the handshake timeout")
        if self.refusal_log_interval_s <= 0:
            raise ValueError("refusal log interval must be positive")
        if not 1 <= self.send_queue_max <= PEER_SEND_QUEUE_MAX:
            raise ValueError(f"send queue cap is within [1, {PEER_SEND_QUEUE_MAX}]")
        keys = [peer.public_key for peer in self.peers]
        if len(set(keys)) != len(keys):
            raise ValueError("a peer key appears twice")
        if any(len(key) != PUBLIC_KEY_BYTES for key in self.accept_from):
            raise ValueError("a node public key is 32 bytes")


class LinkOrigin(enum.Enum):
    DIALED = 1  # we dialed it
    ACCEPTED = 2  # the peer dialed it


class SendResult(enum.Enum):
    """What ``send`` did with one payload. Stable numbered codes."""

    QUEUED = 1
    QUEUED_DROPPED_OLDEST = 2
    DROPPED_NOT_CONNECTED = 3
    DROPPED_UNKNOWN_PEER = 4


@dataclass(frozen=True, slots=True)
class PeerStats:
    """A snapshot of one peer's link and counters (wire bytes, after the handshake).

    ``messages_sent`` counts frames handed to the transport.
    """

    public_key: PublicKey
    origin: LinkOrigin | None  # None: not connected
    queue_length: int
    bytes_sent: int
    bytes_received: int
    messages_sent: int
    messages_received: int
    messages_dropped: int


def about(peer: bytes, where: str) -> dict[str, object]:
    """The structured fields of a log line about ``peer``; ``where``: an address or a
    link label (``key@address``)."""
    return {"peer": peer.hex(), "address": where.rpartition("@")[2]}


def is_preferred(new_dialer: PublicKey, current_dialer: PublicKey) -> bool:
    """True when a new link dialed by ``new_dialer`` replaces the current one."""
    if new_dialer == current_dialer:
        return True  # the dialer redialed: it considers the current link dead
    return new_dialer < current_dialer


class _SendQueue:
    """A bounded FIFO of payloads that drops its oldest entry when full."""

    __slots__ = ("_items", "_max_items", "_nonempty")

    def __init__(self, max_items: int) -> None:
        self._items: collections.deque[bytes] = collections.deque()
        self._max_items = max_items
        self._nonempty = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, payload: bytes) -> bool:
        """Append; True when the oldest entry was dropped to make room."""
        full = len(self._items) >= self._max_items
        if full:
            self._items.popleft()
        self._items.append(payload)
        self._nonempty.set()
        return full

    async def wait_nonempty(self) -> None:
        await self._nonempty.wait()

    def pop(self) -> bytes:
        payload = self._items.popleft()
        if not self._items:
            self._nonempty.clear()
        return payload

    def clear(self) -> int:
        """Empty the queue; how many entries were discarded."""
        count = len(self._items)
        self._items.clear()
        self._nonempty.clear()
        return count


@dataclass(slots=True)
class _Counters:
    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    messages_dropped: int = 0


@dataclass(frozen=True, slots=True)
class _Active:
    link: Link
    dialer: PublicKey
    origin: LinkOrigin
    task: asyncio.Task[None]


class _Peer:
    """Everything the manager keeps about one allowed peer key."""

    __slots__ = ("active", "counters", "key", "queue")

    def __init__(self, key: PublicKey, queue_max: int) -> None:
        self.key = key
        self.queue = _SendQueue(queue_max)
        self.counters = _Counters()
        self.active: _Active | None = None  # None: not connected

    def is_serving(self, link: Link) -> bool:
        return self.active is not None and self.active.link is link

    def stats(self) -> PeerStats:
        counters = self.counters
        return PeerStats(
            public_key=self.key,
            origin=None if self.active is None else self.active.origin,
            queue_length=len(self.queue),
            bytes_sent=counters.bytes_sent,
            bytes_received=counters.bytes_received,
            messages_sent=counters.messages_sent,
            messages_received=counters.messages_received,
            messages_dropped=counters.messages_dropped,
        )


class PeerManager:
    """Accepts and dials links to the configured peers; see the module docstring."""

    def __init__(
        self,
        signer: Signer,
        config: PeerManagerConfig,
        on_message: OnMessage,
        *,
        sleep: Sleep = asyncio.sleep,
        unit_random: UnitRandom = random.random,
    ) -> None:
        self._signer = signer
        self._config = config
        self._on_message = on_message
        self._sleep = sleep
        self._unit_random = unit_random
        own = signer.public_key
        self._dial_targets = tuple(p for p in config.peers if p.public_key != own)
        keys = {p.public_key for p in self._dial_targets} | (config.accept_from - {own})
        self._allowed = frozenset(keys)
        self._peers = {key: _Peer(key, config.send_queue_max) for key in sorted(keys)}
        self._tasks: set[asyncio.Task[None]] = set()
        self._links: set[Link] = set()  # adopted, not yet known to be closed
        self._pending: set[asyncio.StreamWriter] = set()  # inbound, handshake running
        self._slots = HandshakeSlots()
        self._slots.add_configured(p.host for p in self._dial_targets if is_ip_literal(p.host))
        self._refusals = RefusalLog(logger, config.refusal_log_interval_s)
        self._server: asyncio.Server | None = None  # None until started
        self._closing = False
        self._changed = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Listen, then start one dial loop per configured peer."""
        if self._server is not None or self._closing:
            raise RuntimeError("a peer manager starts once")
        self._server = await asyncio.start_server(
            self._on_connection, self._config.listen_host, self._config.listen_port
        )
        logger.info("listening on %s:%d", self._config.listen_host, self.listen_port)
        for address in self._dial_targets:
            if not is_ip_literal(address.host):
                self._spawn(self._resolve(address))
            self._spawn(self._dial_loop(address))

    async def close(self) -> None:
        """Stop listening and dialing, close every link, end every task."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for writer in self._pending:
            writer.transport.abort()
        while self._tasks:
            tasks = tuple(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for link in tuple(self._links):
            await link.close()
        self._links.clear()
        if self._server is not None:
            await self._server.wait_closed()
        self._refusals.close()

    # --- reading state ------------------------------------------------------

    @property
    def public_key(self) -> PublicKey:
        return self._signer.public_key

    @property
    def listen_port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def connected_peers(self) -> frozenset[PublicKey]:
        return frozenset(key for key, peer in self._peers.items() if peer.active is not None)

    def stats(self, peer_key: PublicKey) -> PeerStats:
        return self._peers[peer_key].stats()

    def all_stats(self) -> tuple[PeerStats, ...]:
        return tuple(peer.stats() for peer in self._peers.values())

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, re-checking it after each link change."""
        while True:
            changed = self._changed
            if predicate():
                return
            await changed.wait()

    # --- sending ------------------------------------------------------------

    def send(self, peer_key: PublicKey, payload: bytes) -> SendResult:
        """Queue one payload for one peer (never blocks)."""
        if len(payload) > PAYLOAD_BYTES_MAX:
            raise ValueError("payload larger than a frame")
        peer = self._peers.get(peer_key)
        if peer is None:
            return SendResult.DROPPED_UNKNOWN_PEER
        if peer.active is None:
            peer.counters.messages_dropped += 1
            return SendResult.DROPPED_NOT_CONNECTED
        if peer.queue.push(payload):
            peer.counters.messages_dropped += 1
            return SendResult.QUEUED_DROPPED_OLDEST
        return SendResult.QUEUED

    def broadcast(self, payload: bytes) -> int:
        """Queue one payload for every connected peer; how many it was queued for."""
        results = [self.send(key, payload) for key in self.connected_peers()]
        return sum(r in (SendResult.QUEUED, SendResult.QUEUED_DROPPED_OLDEST) for r in results)

    # --- tasks --------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._on_task_done)
        return task

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("peer manager task failed", exc_info=task.exception())

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # --- accepting and dialing ----------------------------------------------

    async def _resolve(self, address: PeerAddress) -> None:
        """Keep handshake slots for the addresses a configured peer's host name has."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(P2P_PEER_RESOLVE_TIMEOUT_S):
                infos = await loop.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as error:
            logger.warning(
                "peer host %s not resolved (%s): no slots kept",
                address.host,
                error,
                extra=about(address.public_key, address.host),
            )
            return
        found = sorted({str(info[4][0]) for info in infos})
        self._slots.add_configured(found[:P2P_PEER_ADDRESSES_PER_HOST_MAX])  # one peer

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.transport.abort()
            return
        peername = writer.get_extra_info("peername")
        slot = self._slots.take(address_of(peername))
        if isinstance(slot, SlotRefusal):
            writer.transport.abort()
            reason = slot.name.lower()
            label = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else "unknown"
            line = f"inbound connection from {label} refused: {reason}"
            self._refusals.refused(reason, address_of(peername), line)
            return
        self._pending.add(writer)
        self._spawn(self._accept(reader, writer, slot))

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slot: Slot
    ) -> None:
        try:
            result = await accept_handshake(
                reader,
                writer,
                self._signer,
                self._config.chain_id,
                self._allowed,
                self._config.handshake_timeout_s,
                hello_timeout_s=self._config.hello_timeout_s,
                refusals=self._refusals,
            )
        finally:
            self._pending.discard(writer)
            self._slots.release(slot)
        if isinstance(result, Session):
            self._slots.learn(result.peer_key, slot.address)
            self._adopt(result, LinkOrigin.ACCEPTED)

    async def _dial_loop(self, address: PeerAddress) -> None:
        peer = self._peers[address.public_key]
        failures = 0
        while True:
            await self.wait_until(lambda: self._should_dial(peer))
            received_before = peer.counters.messages_received
            if await self._dial_once(address):
                await self.wait_until(lambda: self._should_dial(peer))
                if peer.counters.messages_received > received_before:
                    failures = 0  # the link was useful: start the backoff over
            delay_s = compute_delay_s(self._config.backoff, failures, self._unit_random())
            failures += 1
            await self._sleep(delay_s)

    def _should_dial(self, peer: _Peer) -> bool:
        """Dial when not connected, or when our own link would win the tie-break."""
        active = peer.active
        return active is None or self.public_key < active.dialer

    async def _dial_once(self, address: PeerAddress) -> bool:
        """One dial and handshake; True if the link was adopted."""
        try:
            async with asyncio.timeout(self._config.handshake_timeout_s):
                reader, writer = await asyncio.open_connection(address.host, address.port)
        except (OSError, TimeoutError) as error:
            logger.debug(
                "dial %s:%d failed: %s",
                address.host,
                address.port,
                error,
                extra=about(address.public_key, f"{address.host}:{address.port}"),
            )
            return False
        result = await dial_handshake(
            reader,
            writer,
            self._signer,
            self._config.chain_id,
            self._allowed,
            address.public_key,
            self._config.handshake_timeout_s,
        )
        if isinstance(result, HandshakeFailure):
            return False
        self._slots.learn(result.peer_key, address_of(writer.get_extra_info("peername")))
        return self._adopt(result, LinkOrigin.DIALED)

    # --- links --------------------------------------------------------------

    def _adopt(self, session: Session, origin: LinkOrigin) -> bool:
        """Install a fresh link unless a preferred one is already live."""
        link = session.link
        peer = self._peers[session.peer_key]  # the handshake checked the allow-list
        dialer = self.public_key if origin is LinkOrigin.DIALED else session.peer_key
        current = peer.active
        fields = about(session.peer_key, link.label)
        if self._closing or (current is not None and not is_preferred(dialer, current.dialer)):
            logger.info("link %s dropped: a preferred link is live", link.label, extra=fields)
            link.abort()
            return False
        self._links.add(link)
        task = self._spawn(self._serve(peer, link))
        peer.active = _Active(link, dialer, origin, task)
        if current is not None:
            logger.info("link %s replaces %s", link.label, current.link.label, extra=fields)
            current.task.cancel()
            current.link.abort()
        else:
            logger.info("connected to %s (%s)", link.label, origin.name.lower(), extra=fields)
        self._notify()
        return True

    async def _serve(self, peer: _Peer, link: Link) -> None:
        writer = self._spawn(self._write_loop(peer, link))
        try:
            await self._read_loop(peer, link)
        except Exception:
            logger.exception(
                "link %s closed: its reader failed", link.label, extra=about(peer.key, link.label)
            )
        finally:
            self._release(peer, link)
            writer.cancel()
            await asyncio.wait({writer})
            await link.close()
            self._links.discard(link)

    async def _read_loop(self, peer: _Peer, link: Link) -> None:
        while True:
            payload = await link.receive()
            if isinstance(payload, CloseReason) or not peer.is_serving(link):
                return
            peer.counters.bytes_received += frame_bytes_for(len(payload))
            peer.counters.messages_received += 1
            self._on_message(peer.key, payload)

    async def _write_loop(self, peer: _Peer, link: Link) -> None:
        while True:
            await peer.queue.wait_nonempty()
            if not peer.is_serving(link):
                return  # replaced: leave the queue to the new link
            payload = peer.queue.pop()
            peer.counters.bytes_sent += frame_bytes_for(len(payload))
            peer.counters.messages_sent += 1
            if await link.send(payload) is not None:
                return

    def _release(self, peer: _Peer, link: Link) -> None:
        """The link is over: forget it, and drop what was queued for it."""
        link.abort()
        if not peer.is_serving(link):
            return
        peer.active = None
        peer.counters.messages_dropped += peer.queue.clear()
        logger.info("disconnected from %s", link.label, extra=about(peer.key, link.label))
        self._notify()
