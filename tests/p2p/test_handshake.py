"""The handshake: who is accepted, who is refused, and why."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest

from node.p2p.handshake import (
    HELLO_BYTES,
    Allowed,
    HandshakeFailure,
    Session,
    accept_handshake,
    dial_handshake,
)
from node.p2p.link import CloseReason
from node.protocol.crypto import Domain, PublicKey, Signer
from tests.p2p.support import CHAIN_ID, HOST, make_signer

DIALER = make_signer(1)
ACCEPTOR = make_signer(2)
STRANGER = make_signer(3)

Result = Session | HandshakeFailure


class ForgingSigner(Signer):
    """Signs the wrong bytes: its signatures never verify."""

    def sign(self, domain: Domain, chain_id: str, body: bytes) -> bytes:
        return super().sign(domain, chain_id, body + b"forged")


@dataclass(frozen=True, slots=True)
class Side:
    signer: Signer
    chain_id: str = CHAIN_ID
    allowed: Allowed | None = None  # None: allow the other side only


async def run_pair(dialer: Side, acceptor: Side, expected_key: PublicKey) -> tuple[Result, Result]:
    accepted: asyncio.Queue[Result] = asyncio.Queue(1)

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        allowed = acceptor.allowed or frozenset({dialer.signer.public_key})
        result = await accept_handshake(reader, writer, acceptor.signer, acceptor.chain_id, allowed)
        accepted.put_nowait(result)

    server = await asyncio.start_server(on_connection, HOST, 0)
    try:
        reader, writer = await asyncio.open_connection(HOST, server.sockets[0].getsockname()[1])
        allowed = dialer.allowed or frozenset({expected_key})
        dialed = await dial_handshake(
            reader, writer, dialer.signer, dialer.chain_id, allowed, expected_key
        )
        return dialed, await accepted.get()
    finally:
        server.close()
        await server.wait_closed()


async def close_all(*results: Result) -> None:
    for result in results:
        if isinstance(result, Session):
            await result.link.close()


def test_both_sides_authenticate_and_talk() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5):
            dialed, accepted = await run_pair(Side(DIALER), Side(ACCEPTOR), ACCEPTOR.public_key)
            assert isinstance(dialed, Session) and isinstance(accepted, Session)
            assert dialed.peer_key == ACCEPTOR.public_key
            assert accepted.peer_key == DIALER.public_key
            assert await dialed.link.send(b"ping") is None
            assert await accepted.link.receive() == b"ping"
            assert await accepted.link.send(b"pong") is None
            assert await dialed.link.receive() == b"pong"
            await close_all(dialed, accepted)

    asyncio.run(scenario())


def test_allowed_set_may_be_a_predicate() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5):
            acceptor = Side(ACCEPTOR, allowed=lambda key: key == DIALER.public_key)
            dialed, accepted = await run_pair(Side(DIALER), acceptor, ACCEPTOR.public_key)
            assert isinstance(dialed, Session) and isinstance(accepted, Session)
            await close_all(dialed, accepted)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("dialer", "acceptor", "acceptor_failure"),
    [
        (Side(DIALER, chain_id="another-chain"), Side(ACCEPTOR), HandshakeFailure.WRONG_CHAIN_ID),
        # Longer than limits.CHAIN_ID_CHARS_MAX: never ours, so the same answer at any length.
        (Side(DIALER, chain_id="c" * 49), Side(ACCEPTOR), HandshakeFailure.WRONG_CHAIN_ID),
        (Side(DIALER, chain_id="c" * 255), Side(ACCEPTOR), HandshakeFailure.WRONG_CHAIN_ID),
        (
            Side(STRANGER),
            Side(ACCEPTOR, allowed=frozenset({DIALER.public_key})),
            HandshakeFailure.UNKNOWN_KEY,
        ),
        (Side(ForgingSigner(DIALER.seed)), Side(ACCEPTOR), HandshakeFailure.BAD_SIGNATURE),
        (Side(ACCEPTOR), Side(ACCEPTOR, allowed=lambda _: True), HandshakeFailure.SELF_CONNECTION),
    ],
    ids=[
        "wrong-chain-id",
        "chain-id-49-chars",
        "chain-id-255-chars",
        "unknown-key",
        "bad-signature",
        "self-connection",
    ],
)
def test_acceptor_refuses_and_dialer_sees_the_link_closed(
    dialer: Side,
    acceptor: Side,
    acceptor_failure: HandshakeFailure,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5):
            dialed, accepted = await run_pair(dialer, acceptor, ACCEPTOR.public_key)
            assert accepted is acceptor_failure
            assert dialed is HandshakeFailure.PEER_CLOSED
            await close_all(dialed, accepted)

    asyncio.run(scenario())
    assert f"refused: {acceptor_failure.name.lower()}" in caplog.text


def test_dialer_refuses_a_node_with_another_key(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5):
            dialer = Side(DIALER, allowed=frozenset({ACCEPTOR.public_key, STRANGER.public_key}))
            dialed, accepted = await run_pair(dialer, Side(ACCEPTOR), STRANGER.public_key)
            assert dialed is HandshakeFailure.UNEXPECTED_KEY
            assert isinstance(accepted, Session)
            assert isinstance(await accepted.link.receive(), CloseReason)
            await close_all(dialed, accepted)

    asyncio.run(scenario())
    assert "refused: unexpected_key" in caplog.text


async def accept_raw(data: bytes, hello_timeout_s: float | None = None) -> Result:
    """Run an acceptor against a client that sends ``data`` then waits."""
    accepted: asyncio.Queue[Result] = asyncio.Queue(1)

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        allowed = frozenset({DIALER.public_key})
        result = await accept_handshake(
            reader, writer, ACCEPTOR, CHAIN_ID, allowed, 0.2, hello_timeout_s=hello_timeout_s
        )
        accepted.put_nowait(result)

    server = await asyncio.start_server(on_connection, HOST, 0)
    _, writer = await asyncio.open_connection(HOST, server.sockets[0].getsockname()[1])
    try:
        writer.write(data)
        return await accepted.get()
    finally:
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()


def test_silent_peer_times_out(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5):
            assert await accept_raw(b"") is HandshakeFailure.TIMEOUT

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    assert "refused: timeout" in caplog.text


def test_an_idle_connection_is_dropped_at_the_hello_timeout() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5):
            started = asyncio.get_running_loop().time()
            assert await accept_raw(b"", hello_timeout_s=0.05) is HandshakeFailure.HELLO_TIMEOUT
            assert asyncio.get_running_loop().time() - started < 0.2  # before the whole timeout
            half_hello = b"RLNCp2p1"  # a hello that stalls counts as none
            assert await accept_raw(half_hello, 0.05) is HandshakeFailure.HELLO_TIMEOUT

    asyncio.run(scenario())


def test_garbage_hello_is_refused() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5):
            assert await accept_raw(b"x" * HELLO_BYTES) is HandshakeFailure.BAD_HELLO

    asyncio.run(scenario())


def test_small_order_ephemeral_key_is_refused() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5):
            hello = b"RLNCp2p1" + bytes(32)  # the all-zero point
            assert await accept_raw(hello) is HandshakeFailure.BAD_KEY_EXCHANGE

    asyncio.run(scenario())
