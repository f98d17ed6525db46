"""The peer manager over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from node.p2p.handshake import HandshakeFailure, Session, accept_handshake, dial_handshake
from node.p2p.link import PREFIX_BYTES, CloseReason
from node.p2p.peers import (
    LinkOrigin,
    PeerAddress,
    PeerManager,
    PeerManagerConfig,
    SendResult,
    is_preferred,
)
from node.protocol.crypto import PublicKey, Signer
from node.protocol.limits import CHAIN_ID_CHARS_MAX, FRAME_BYTES_MAX
from tests.p2p.relay import TamperingRelay
from tests.p2p.support import (
    CHAIN_ID,
    FAST_BACKOFF,
    HOST,
    Inbox,
    free_port,
    is_connected,
    is_disconnected,
    make_config,
    make_signer,
    wait_settled,
)

TEST_TIMEOUT_S = 10


async def dial_raw(signer: Signer, manager: PeerManager, chain_id: str = CHAIN_ID) -> Session:
    reader, writer = await asyncio.open_connection(HOST, manager.listen_port)
    allowed = frozenset({manager.public_key})
    result = await dial_handshake(
        reader, writer, signer, chain_id, allowed, manager.public_key, timeout_s=2.0
    )
    assert isinstance(result, Session)
    return result


def test_two_managers_exchange_messages_both_ways_in_order() -> None:
    async def scenario() -> None:
        a, b = make_signer(1), make_signer(2)
        port_a, port_b = free_port(), free_port()
        inbox_a, inbox_b = Inbox(), Inbox()
        manager_a = PeerManager(a, make_config(port_a, [(b, port_b)]), inbox_a)
        manager_b = PeerManager(b, make_config(port_b, [(a, port_a)]), inbox_b)
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager_a.start()
                await manager_b.start()
                await wait_settled([manager_a, manager_b])
                for n in range(50):
                    assert manager_a.send(b.public_key, b"a%d" % n) is SendResult.QUEUED
                    assert manager_b.send(a.public_key, b"b%d" % n) is SendResult.QUEUED
                await inbox_a.wait_for_count(50)
                await inbox_b.wait_for_count(50)
        finally:
            await manager_a.close()
            await manager_b.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert inbox_b.payloads_from(a.public_key) == [b"a%d" % n for n in range(50)]
        assert inbox_a.payloads_from(b.public_key) == [b"b%d" % n for n in range(50)]
        stats = manager_a.stats(b.public_key)
        assert stats.messages_sent == stats.messages_received == 50
        assert stats.bytes_sent > 0 and stats.bytes_received > 0
        assert stats.messages_dropped == 0
        assert manager_a.connected_peers() == frozenset()

    asyncio.run(scenario())


def test_four_managers_form_a_full_mesh_and_broadcast_reaches_all() -> None:
    async def scenario() -> None:
        signers = [make_signer(n) for n in (5, 6, 7, 8)]
        ports = [free_port() for _ in signers]
        inboxes = [Inbox() for _ in signers]
        managers = [
            PeerManager(
                signer,
                make_config(
                    port, [(s, p) for s, p in zip(signers, ports, strict=True) if s is not signer]
                ),
                inbox,
            )
            for signer, port, inbox in zip(signers, ports, inboxes, strict=True)
        ]
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                for manager in managers:
                    await manager.start()
                await wait_settled(managers)
                for index, manager in enumerate(managers):
                    assert len(manager.connected_peers()) == 3
                    assert manager.broadcast(b"from %d" % index) == 3
                for inbox in inboxes:
                    await inbox.wait_for_count(3)
        finally:
            for manager in managers:
                await manager.close()
        for index, inbox in enumerate(inboxes):
            senders = {key for key, _ in inbox.items}
            assert senders == {s.public_key for s in signers} - {signers[index].public_key}
            expected = {b"from %d" % n for n in range(4) if n != index}
            assert {payload for _, payload in inbox.items} == expected

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("dialer_number", "chain_id", "reason"),
    [(3, CHAIN_ID, "unknown_key"), (2, "another-chain", "wrong_chain_id")],
    ids=["unknown-key", "wrong-chain-id"],
)
def test_manager_refuses_unknown_keys_and_other_chains(
    dialer_number: int, chain_id: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        manager = PeerManager(make_signer(1), make_config(0, accept_from=[make_signer(2)]), Inbox())
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager.start()
                reader, writer = await asyncio.open_connection(HOST, manager.listen_port)
                result = await dial_handshake(
                    reader,
                    writer,
                    make_signer(dialer_number),
                    chain_id,
                    frozenset({manager.public_key}),
                    manager.public_key,
                )
                assert result is HandshakeFailure.PEER_CLOSED
                assert manager.connected_peers() == frozenset()
        finally:
            await manager.close()

    asyncio.run(scenario())
    assert f"refused: {reason}" in caplog.text


def test_dialer_disconnects_from_a_node_with_an_unexpected_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        dialer, expected, impostor = make_signer(1), make_signer(2), make_signer(3)
        closed: asyncio.Queue[CloseReason] = asyncio.Queue(1)

        async def impostor_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            allowed = frozenset({dialer.public_key})
            result = await accept_handshake(reader, writer, impostor, CHAIN_ID, allowed)
            assert isinstance(result, Session)  # the impostor itself has no objection
            reason = await result.link.receive()
            assert isinstance(reason, CloseReason)
            await result.link.close()
            if closed.empty():
                closed.put_nowait(reason)

        server = await asyncio.start_server(impostor_side, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        manager = PeerManager(dialer, make_config(0, [(expected, port)]), Inbox())
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager.start()
                assert await closed.get() in (CloseReason.PEER_CLOSED, CloseReason.IO_ERROR)
                assert manager.connected_peers() == frozenset()
        finally:
            await manager.close()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
    assert "refused: unexpected_key" in caplog.text


def test_tampered_ciphertext_through_a_relay_closes_the_link(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        a, b = make_signer(1), make_signer(2)
        inbox_b = Inbox()
        manager_b = PeerManager(b, make_config(0, accept_from=[a]), inbox_b)
        await manager_b.start()
        relay = TamperingRelay(manager_b.listen_port, tamper_frame=1)
        relay_port = await relay.start()
        manager_a = PeerManager(a, make_config(0, [(b, relay_port)]), Inbox())
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager_a.start()
                await manager_a.wait_until(is_connected(manager_a, b.public_key))
                await manager_b.wait_until(is_connected(manager_b, a.public_key))
                sent = manager_a.send(b.public_key, b"tampered on the way")
                assert sent is SendResult.QUEUED
                await manager_b.wait_until(is_disconnected(manager_b, a.public_key))
                await manager_a.wait_until(is_disconnected(manager_a, b.public_key))
                assert relay.tampered.is_set()
                assert inbox_b.items == []
                # The relay leaves later connections alone: the dialer reconnects.
                await manager_a.wait_until(is_connected(manager_a, b.public_key))
                await manager_b.wait_until(is_connected(manager_b, a.public_key))
                assert manager_a.send(b.public_key, b"intact") is SendResult.QUEUED
                await inbox_b.wait_for_count(1)
        finally:
            await manager_a.close()
            await manager_b.close()
            await relay.close()
        assert inbox_b.items == [(a.public_key, b"intact")]

    asyncio.run(scenario())
    assert "closed: decrypt_failed" in caplog.text


def test_oversized_length_prefix_closes_the_link(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        a, b = make_signer(1), make_signer(2)
        manager = PeerManager(b, make_config(0, accept_from=[a]), Inbox())
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager.start()
                reader, writer = await asyncio.open_connection(HOST, manager.listen_port)
                allowed = frozenset({b.public_key})
                session = await dial_handshake(reader, writer, a, CHAIN_ID, allowed, b.public_key)
                assert isinstance(session, Session)
                await manager.wait_until(is_connected(manager, a.public_key))
                # A length prefix only, no body: the manager must not wait for it.
                writer.write((FRAME_BYTES_MAX + 1).to_bytes(PREFIX_BYTES, "big"))
                await manager.wait_until(is_disconnected(manager, a.public_key))
                assert isinstance(await session.link.receive(), CloseReason)
                await session.link.close()
        finally:
            await manager.close()

    asyncio.run(scenario())
    assert "closed: frame_too_large" in caplog.text


def test_restarted_peer_is_redialed_within_the_backoff_bound() -> None:
    async def scenario() -> None:
        a, b = make_signer(1), make_signer(2)
        port_b = free_port()
        delays_s: list[float] = []

        async def recording_sleep(delay_s: float) -> None:
            delays_s.append(delay_s)
            await asyncio.sleep(delay_s)

        inbox_a, inbox_b = Inbox(), Inbox()
        manager_a = PeerManager(a, make_config(0, [(b, port_b)]), inbox_a, sleep=recording_sleep)
        # b never dials: only a's dial loop can bring the link back.
        manager_b = PeerManager(b, make_config(port_b, accept_from=[a]), inbox_b)
        restarted = PeerManager(b, make_config(port_b, accept_from=[a]), inbox_b)
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager_a.start()
                await manager_b.start()
                await manager_a.wait_until(is_connected(manager_a, b.public_key))
                manager_b.send(a.public_key, b"before")
                await inbox_a.wait_for_count(1)
                await manager_b.close()
                await manager_a.wait_until(is_disconnected(manager_a, b.public_key))
                await restarted.start()
            bound_s = FAST_BACKOFF.max_s + 1.0  # one backoff sleep plus a dial on loopback
            async with asyncio.timeout(bound_s):
                await manager_a.wait_until(is_connected(manager_a, b.public_key))
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await restarted.wait_until(is_connected(restarted, a.public_key))
                manager_a.send(b.public_key, b"after")
                restarted.send(a.public_key, b"after")
                await inbox_a.wait_for_count(2)
                await inbox_b.wait_for_count(1)
        finally:
            await manager_a.close()
            await manager_b.close()
            await restarted.close()
        assert inbox_a.payloads_from(b.public_key) == [b"before", b"after"]
        assert inbox_b.payloads_from(a.public_key) == [b"after"]
        assert delays_s and max(delays_s) <= FAST_BACKOFF.max_s

    asyncio.run(scenario())


async def dial_without_reading(signer: Signer, manager: PeerManager) -> Session:
    """Connect with a tiny receive buffer, and then never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (HOST, manager.listen_port))
    reader, writer = await asyncio.open_connection(sock=sock)
    allowed = frozenset({manager.public_key})
    result = await dial_handshake(reader, writer, signer, CHAIN_ID, allowed, manager.public_key)
    assert isinstance(result, Session)
    return result


def test_send_queue_stays_capped_and_counts_drops_when_the_peer_does_not_read() -> None:
    async def scenario() -> None:
        a, b = make_signer(1), make_signer(2)
        cap, total, payload = 8, 400, bytes(64 * 1024)
        manager = PeerManager(b, make_config(0, accept_from=[a], send_queue_max=cap), Inbox())
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager.start()
                session = await dial_without_reading(a, manager)
                await manager.wait_until(is_connected(manager, a.public_key))
                for _ in range(total):
                    manager.send(a.public_key, payload)
                    assert manager.stats(a.public_key).queue_length <= cap
                    await asyncio.sleep(0)  # let the writer task run
                stats = manager.stats(a.public_key)
                await session.link.close()
        finally:
            await manager.close()
        assert stats.queue_length == cap
        assert stats.messages_dropped > 0
        assert 0 < stats.messages_sent < total - cap
        assert stats.messages_sent + stats.queue_length + stats.messages_dropped == total

    asyncio.run(scenario())


def test_sending_to_a_disconnected_or_unknown_peer_is_dropped_and_counted() -> None:
    async def scenario() -> None:
        a, b = make_signer(1), make_signer(2)
        manager = PeerManager(a, make_config(0, accept_from=[b]), Inbox())
        try:
            await manager.start()
            assert manager.send(b.public_key, b"x") is SendResult.DROPPED_NOT_CONNECTED
            assert manager.send(make_signer(9).public_key, b"x") is SendResult.DROPPED_UNKNOWN_PEER
            assert manager.broadcast(b"x") == 0
            assert manager.stats(b.public_key).messages_dropped == 1
            with pytest.raises(ValueError):
                manager.send(b.public_key, bytes(FRAME_BYTES_MAX))
        finally:
            await manager.close()

    asyncio.run(scenario())


def test_tie_break_prefers_the_link_dialed_by_the_lower_key() -> None:
    low, high = make_signer(1).public_key, make_signer(2).public_key
    lower, higher = sorted([low, high])
    assert is_preferred(lower, higher)
    assert not is_preferred(higher, lower)
    assert is_preferred(lower, lower)  # the same dialer redialed: the newer link wins
    assert is_preferred(higher, higher)


def test_simultaneous_dials_leave_exactly_one_link_per_pair() -> None:
    async def scenario() -> None:
        a, b = make_signer(1), make_signer(2)
        port_a, port_b = free_port(), free_port()
        manager_a = PeerManager(a, make_config(port_a, [(b, port_b)]), Inbox())
        manager_b = PeerManager(b, make_config(port_b, [(a, port_a)]), Inbox())
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager_a.start()
                await manager_b.start()
                await wait_settled([manager_a, manager_b])
                lower = a if a.public_key < b.public_key else b
                dialer, acceptor = (manager_a, manager_b) if lower is a else (manager_b, manager_a)
                assert dialer.stats(acceptor.public_key).origin is LinkOrigin.DIALED
                assert acceptor.stats(dialer.public_key).origin is LinkOrigin.ACCEPTED
        finally:
            await manager_a.close()
            await manager_b.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"chain_id": ""},
        {"chain_id": "c" * (CHAIN_ID_CHARS_MAX + 1)},  # no genesis names such a chain
        {"listen_port": 70000},
        {"handshake_timeout_s": 0.0},
        {"hello_timeout_s": 0.0},
        {"hello_timeout_s": 6.0},  # longer than the whole handshake
        {"refusal_log_interval_s": 0.0},
        {"send_queue_max": 0},
        {"send_queue_max": 10**9},
        {"peers": (PeerAddress(make_signer(1).public_key, HOST, 1),) * 2},
    ],
)
def test_invalid_configs_are_refused(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"chain_id": CHAIN_ID, "listen_port": 0}
    PeerManagerConfig(**base | {"chain_id": "c" * CHAIN_ID_CHARS_MAX})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PeerManagerConfig(**(base | kwargs))  # type: ignore[arg-type]


def test_a_failing_callback_closes_the_link_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(peer_key: PublicKey, payload: bytes) -> None:
        raise RuntimeError("consumer bug")

    async def scenario() -> None:
        a, b = make_signer(1), make_signer(2)
        manager = PeerManager(b, make_config(0, accept_from=[a]), explode)
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager.start()
                session = await dial_raw(a, manager)
                await manager.wait_until(is_connected(manager, a.public_key))
                assert await session.link.send(b"boom") is None
                await manager.wait_until(is_disconnected(manager, a.public_key))
                await session.link.close()
        finally:
            await manager.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(scenario())
    assert "its reader failed" in caplog.text
    assert "consumer bug" in caplog.text


def test_log_lines_about_a_peer_carry_its_key_and_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="node.p2p.peers")
    a, b = make_signer(1), make_signer(2)

    async def scenario() -> None:
        manager = PeerManager(b, make_config(0, accept_from=[a]), Inbox())
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await manager.start()
                session = await dial_raw(a, manager)
                await manager.wait_until(is_connected(manager, a.public_key))
                await session.link.close()
                await manager.wait_until(is_disconnected(manager, a.public_key))
        finally:
            await manager.close()

    asyncio.run(scenario())
    about_a = [r for r in caplog.records if r.getMessage().startswith(("connected", "disconn"))]
    assert len(about_a) == 2, [r.getMessage() for r in caplog.records]
    for record in about_a:
        assert record.__dict__["peer"] == a.public_key.hex()
        assert record.__dict__["address"].startswith(f"{HOST}:")
