"""Helpers shared by the p2p tests: keys, configs, an inbox, waiting for links."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence

from node.p2p.backoff import BackoffPolicy
from node.p2p.peers import LinkOrigin, PeerAddress, PeerManager, PeerManagerConfig
from node.protocol.crypto import PublicKey, Signer

CHAIN_ID = "relance-test"
HOST = "127.0.0.1"
FAST_BACKOFF = BackoffPolicy(initial_s=0.02, max_s=0.2, multiplier=2.0, jitter_fraction=0.5)


def make_signer(number: int) -> Signer:
    return Signer(bytes([number]) * 32)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def make_config(
    port: int,
    peers: Sequence[tuple[Signer, int]] = (),
    accept_from: Sequence[Signer] = (),
    send_queue_max: int = 64,
) -> PeerManagerConfig:
    return PeerManagerConfig(
        chain_id=CHAIN_ID,
        listen_port=port,
        peers=tuple(PeerAddress(signer.public_key, HOST, p) for signer, p in peers),
        accept_from=frozenset(signer.public_key for signer in accept_from),
        handshake_timeout_s=2.0,
        send_queue_max=send_queue_max,
        backoff=FAST_BACKOFF,
    )


class Inbox:
    """An ``on_message`` callback that records what arrives, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[PublicKey, bytes]] = []
        self._arrived = asyncio.Event()

    def __call__(self, peer_key: PublicKey, payload: bytes) -> None:
        self.items.append((peer_key, payload))
        self._arrived.set()

    async def wait_for_count(self, count: int) -> None:
        while len(self.items) < count:
            self._arrived.clear()
            await self._arrived.wait()

    def payloads_from(self, peer_key: PublicKey) -> list[bytes]:
        return [payload for key, payload in self.items if key == peer_key]


def has_origin(
    manager: PeerManager, peer_key: PublicKey, origin: LinkOrigin | None
) -> Callable[[], bool]:
    return lambda: manager.stats(peer_key).origin is origin


def is_connected(manager: PeerManager, peer_key: PublicKey) -> Callable[[], bool]:
    return lambda: peer_key in manager.connected_peers()


def is_disconnected(manager: PeerManager, peer_key: PublicKey) -> Callable[[], bool]:
    return lambda: peer_key not in manager.connected_peers()


async def wait_settled(managers: Sequence[PeerManager]) -> None:
    """Wait until every pair holds the link the tie-break keeps (lower key dials)."""
    for manager in managers:
        for other in managers:
            if other is manager:
                continue
            lower = manager.public_key < other.public_key
            origin = LinkOrigin.DIALED if lower else LinkOrigin.ACCEPTED
            await manager.wait_until(has_origin(manager, other.public_key, origin))
