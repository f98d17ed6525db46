"""The framed link: nonces, replay, wrap, tampering, oversized frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nacl.bindings

from node.p2p.link import (
    NONCE_BYTES,
    NONCE_LIMIT,
    PAYLOAD_BYTES_MAX,
    PREFIX_BYTES,
    TAG_BYTES,
    CipherState,
    CloseReason,
    Link,
    frame_bytes_for,
    nonce_for,
)
from node.protocol.limits import FRAME_BYTES_MAX
from tests.p2p.support import HOST

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))


def test_frames_of_one_direction_never_reuse_a_nonce() -> None:
    state = CipherState(KEY_A)
    frames = [state.seal(b"the same payload") for _ in range(2000)]
    assert state.counter == 2000
    assert len({frame for frame in frames}) == 2000  # same plaintext, fresh nonce each time
    for counter, frame in enumerate(frames):
        assert frame is not None
        plaintext = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
            frame, None, nonce_for(counter), KEY_A
        )
        assert plaintext == b"the same payload"
    assert len({nonce_for(counter) for counter in range(2000)}) == 2000


def test_nonce_is_a_96_bit_big_endian_counter() -> None:
    assert nonce_for(0) == bytes(NONCE_BYTES)
    assert nonce_for(1) == bytes(NONCE_BYTES - 1) + b"\x01"
    assert nonce_for(NONCE_LIMIT) == b"\xff" * NONCE_BYTES


def test_receiving_side_refuses_a_replayed_frame() -> None:
    sending, receiving = CipherState(KEY_A), CipherState(KEY_A)
    first = sending.seal(b"one")
    assert first is not None
    assert receiving.open(first) == b"one"
    assert receiving.open(first) is None
    assert receiving.counter == 1


def test_a_failed_open_does_not_advance_the_counter() -> None:
    sending, receiving = CipherState(KEY_A), CipherState(KEY_A)
    frame = sending.seal(b"one")
    assert frame is not None
    assert receiving.open(frame[:-1] + bytes([frame[-1] ^ 1])) is None
    assert receiving.counter == 0


def test_cipher_state_stops_before_the_counter_wraps() -> None:
    state = CipherState(KEY_A, counter=NONCE_LIMIT - 2)
    assert state.seal(b"x") is not None
    assert state.seal(b"x") is not None
    assert state.is_exhausted()
    assert state.seal(b"x") is None
    assert state.counter == NONCE_LIMIT


def test_frame_size_accounts_for_prefix_and_tag() -> None:
    assert frame_bytes_for(10) == PREFIX_BYTES + 10 + TAG_BYTES
    assert frame_bytes_for(PAYLOAD_BYTES_MAX) == PREFIX_BYTES + FRAME_BYTES_MAX


@asynccontextmanager
async def raw_pair(
    sending: CipherState,
) -> AsyncIterator[tuple[Link, asyncio.StreamReader, asyncio.StreamWriter]]:
    """A link whose far end is a bare stream pair (to inspect and forge bytes)."""
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue(1)

    def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait((reader, writer))

    server = await asyncio.start_server(on_connection, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(HOST, port)
    far_reader, far_writer = await accepted.get()
    link = Link(reader, writer, sending, CipherState(KEY_B), "test")
    try:
        yield link, far_reader, far_writer
    finally:
        await link.close()
        far_writer.close()
        await far_writer.wait_closed()
        server.close()
        await server.wait_closed()


def test_link_frames_are_length_prefixed_ciphertexts_with_counter_nonces() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5), raw_pair(CipherState(KEY_A)) as (link, far, _):
            for counter in range(3):
                payload = b"payload %d" % counter
                assert await link.send(payload) is None
                length = int.from_bytes(await far.readexactly(PREFIX_BYTES), "big")
                assert length == len(payload) + TAG_BYTES
                frame = await far.readexactly(length)
                plaintext = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
                    frame, None, nonce_for(counter), KEY_A
                )
                assert plaintext == payload

    asyncio.run(scenario())


def test_link_closes_before_its_nonce_wraps() -> None:
    async def scenario() -> None:
        sending = CipherState(KEY_A, counter=0, limit=2)
        async with asyncio.timeout(5), raw_pair(sending) as (link, _, _):
            assert await link.send(b"one") is None
            assert await link.send(b"two") is None
            assert await link.send(b"three") is CloseReason.NONCE_EXHAUSTED
            assert link.is_closed

    asyncio.run(scenario())


def test_tampered_frame_closes_the_link() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5), raw_pair(CipherState(KEY_A)) as (link, _, far_writer):
            forged = CipherState(KEY_B).seal(b"hello")
            assert forged is not None
            tampered = forged[:3] + bytes([forged[3] ^ 0x40]) + forged[4:]
            far_writer.write(len(tampered).to_bytes(PREFIX_BYTES, "big") + tampered)
            assert await link.receive() is CloseReason.DECRYPT_FAILED
            assert link.is_closed

    asyncio.run(scenario())


def test_oversized_length_prefix_closes_the_link_without_reading_the_body() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5), raw_pair(CipherState(KEY_A)) as (link, _, far_writer):
            # Only the prefix is sent: a link that tried to read the body would hang.
            far_writer.write((FRAME_BYTES_MAX + 1).to_bytes(PREFIX_BYTES, "big"))
            assert await link.receive() is CloseReason.FRAME_TOO_LARGE
            assert link.is_closed

    asyncio.run(scenario())


def test_a_frame_shorter_than_its_tag_closes_the_link() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5), raw_pair(CipherState(KEY_A)) as (link, _, far_writer):
            far_writer.write((TAG_BYTES - 1).to_bytes(PREFIX_BYTES, "big"))
            assert await link.receive() is CloseReason.FRAME_TOO_SMALL

    asyncio.run(scenario())


def test_peer_closing_is_reported() -> None:
    async def scenario() -> None:
        async with asyncio.timeout(5), raw_pair(CipherState(KEY_A)) as (link, _, far_writer):
            far_writer.close()
            assert await link.receive() is CloseReason.PEER_CLOSED

    asyncio.run(scenario())
