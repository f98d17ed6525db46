"""Issue 15, finding 5: strangers holding idle connections cannot keep validators from
linking, and their refused connections do not flood the log.

Real sockets on 127.0.0.0/8 (all loopback on Linux): the attacker connects from source
addresses it binds to (127.0.0.1 and 127.0.1.x), a configured peer from 127.0.0.2, an
observer (``accept_from``: no address known) from 127.0.0.3. Every test ends by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import pytest

from node.p2p.admission import HandshakeSlots, Slot, SlotRefusal
from node.p2p.handshake import Session, dial_handshake
from node.p2p.peers import PeerAddress, PeerManager, PeerManagerConfig
from node.protocol.crypto import Signer
from node.protocol.limits import (
    P2P_HANDSHAKES_PENDING_MAX,
    P2P_HANDSHAKES_PER_ADDRESS_MAX,
    P2P_HANDSHAKES_PER_PEER_MAX,
)
from tests.p2p.support import CHAIN_ID, HOST, Inbox, free_port, make_signer

ATTACK_WARMUP_S = 0.3  # after each attacking connection opened once: the slots are taken
LINK_BOUND_S = 3.0  # the first dial links within this (it takes milliseconds when idle)
TEST_TIMEOUT_S = 20.0
RECONNECT_PAUSE_S = 0.2  # the attacker's pause after a refused connection (keeps CPU low)
PEER_ADDRESS = "127.0.0.2"
OBSERVER_ADDRESS = "127.0.0.3"


@dataclass
class Attack:
    """Idle connections from given source addresses, reopened as soon as they are closed."""

    port: int
    sources: tuple[str, ...]
    per_source: int
    opened: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for source in self.sources:
                for _ in range(self.per_source):
                    group.create_task(self._connection_loop(source, stop))

    async def _connection_loop(self, source: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    HOST, self.port, local_addr=(source, 0)
                )
            except OSError:
                await asyncio.sleep(RECONNECT_PAUSE_S)
                continue
            self.opened += 1
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(TEST_TIMEOUT_S):
                    stopped = asyncio.ensure_future(stop.wait())
                    closed = asyncio.ensure_future(reader.read())  # never sends; waits for EOF
                    await asyncio.wait({stopped, closed}, return_when=asyncio.FIRST_COMPLETED)
                    stopped.cancel()
                    closed.cancel()
            writer.transport.abort()
            await asyncio.sleep(RECONNECT_PAUSE_S)


async def link_from(source: str, signer: Signer, node: PeerManager) -> float:
    """Dial ``node`` once from ``source``; the seconds until the node holds the link."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection(HOST, node.listen_port, local_addr=(source, 0))
    allowed = frozenset({node.public_key})
    result = await dial_handshake(
        reader, writer, signer, CHAIN_ID, allowed, node.public_key, timeout_s=LINK_BOUND_S
    )
    assert isinstance(result, Session), f"the first dial from {source} was refused: {result}"
    async with asyncio.timeout(LINK_BOUND_S):
        await node.wait_until(lambda: signer.public_key in node.connected_peers())
    result.link.abort()
    return loop.time() - started


@pytest.mark.parametrize(
    ("sources", "per_source", "dialer"),
    [
        (("127.0.0.1",), 80, "observer"),
        ((*(f"127.0.1.{n}" for n in range(1, 21)), "127.0.0.1"), 6, "peer"),
    ],
    ids=["one-address-vs-observer", "many-addresses-vs-configured-peer"],
)
def test_idle_strangers_cannot_keep_a_validator_out(
    sources: tuple[str, ...], per_source: int, dialer: str, caplog: pytest.LogCaptureFixture
) -> None:
    node, peer, observer = make_signer(1), make_signer(2), make_signer(3)
    # The node dials its peer at 127.0.0.2 (nobody listens there: those dials fail and
    # back off); the peer links by dialing in from that address.
    config = PeerManagerConfig(
        chain_id=CHAIN_ID,
        listen_port=0,
        peers=(PeerAddress(peer.public_key, PEER_ADDRESS, free_port()),),
        accept_from=frozenset({observer.public_key}),
    )
    took: list[float] = []
    attack_opened: list[int] = []

    async def scenario() -> None:
        manager = PeerManager(node, config, Inbox())
        stop = asyncio.Event()
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager.start()
                attack = Attack(manager.listen_port, sources, per_source)
                attacking = asyncio.create_task(attack.run(stop))
                while attack.opened < len(sources) * per_source:  # every one connected once
                    await asyncio.sleep(0.02)
                await asyncio.sleep(ATTACK_WARMUP_S)
                signer, source = (
                    (peer, PEER_ADDRESS) if dialer == "peer" else (observer, OBSERVER_ADDRESS)
                )
                took.append(await link_from(source, signer, manager))
                await asyncio.sleep(1.0)  # the attack goes on; so do the refusals
                stop.set()
                await attacking
                attack_opened.append(attack.opened)
        finally:
            stop.set()
            await manager.close()

    with caplog.at_level(logging.INFO, logger="node.p2p"):
        asyncio.run(scenario())
    assert took[0] < LINK_BOUND_S
    refusals = [  # the node's lines about inbound connections (not the test's dialer)
        r.message
        for r in caplog.records
        if "inbound" in r.message or "handshake as acceptor" in r.message
    ]
    assert attack_opened[0] > 100  # most of them refused or dropped...
    assert len(refusals) <= 4, refusals  # ...in a few lines
    assert any("more inbound connections refused" in line for line in refusals)


def test_slots_are_counted_per_address_and_kept_for_peers() -> None:
    slots = HandshakeSlots()
    slots.add_configured(["127.0.0.2", "::ffff:10.0.0.9"])
    held = [slots.take("192.0.2.1") for _ in range(P2P_HANDSHAKES_PER_ADDRESS_MAX)]
    assert all(isinstance(slot, Slot) for slot in held)
    assert slots.take("192.0.2.1") is SlotRefusal.TOO_MANY_FROM_ADDRESS
    for n in range(P2P_HANDSHAKES_PENDING_MAX - P2P_HANDSHAKES_PER_ADDRESS_MAX):
        assert isinstance(slots.take(f"198.51.100.{n}"), Slot)
    assert slots.take("203.0.113.1") is SlotRefusal.TOO_MANY_PENDING  # the shared pool is full
    kept = [slots.take("10.0.0.9") for _ in range(P2P_HANDSHAKES_PER_PEER_MAX)]
    assert all(isinstance(slot, Slot) and slot.reserved for slot in kept)
    assert slots.take("10.0.0.9") is SlotRefusal.TOO_MANY_FROM_ADDRESS
    first = held[0]
    assert isinstance(first, Slot)
    slots.release(first)
    assert isinstance(slots.take("203.0.113.1"), Slot)  # a released slot is free again
    slots.learn(make_signer(5).public_key, "203.0.113.7")  # authenticated from there once
    assert isinstance(slots.take("203.0.113.7"), Slot)
    assert slots.pending == P2P_HANDSHAKES_PENDING_MAX + P2P_HANDSHAKES_PER_PEER_MAX + 1
