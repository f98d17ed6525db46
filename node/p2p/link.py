"""One encrypted, framed link over an asyncio stream pair.

Owns the wire format after the handshake: each frame is a 4-byte big-endian
length, then a ChaCha20-Poly1305-IETF ciphertext of that many bytes (the
16-byte tag included). The nonce is a per-direction 96-bit big-endian
counter that starts at zero and is never reused: the link closes itself
before the counter would wrap. A frame longer than the cap is refused from
its length prefix alone (its body is never read), and any frame that fails
to decrypt closes the link. Payloads are opaque bytes.

May import the pure leaves (``node.protocol.limits``) and PyNaCl only.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from typing import Final

import nacl.bindings
import nacl.exceptions

from node.protocol.limits import FRAME_BYTES_MAX

logger = logging.getLogger(__name__)

PREFIX_BYTES: Final = 4
TAG_BYTES: Final = nacl.bindings.crypto_aead_chacha20poly1305_ietf_ABYTES
KEY_BYTES: Final = nacl.bindings.crypto_aead_chacha20poly1305_ietf_KEYBYTES
NONCE_BYTES: Final = nacl.bindings.crypto_aead_chacha20poly1305_ietf_NPUBBYTES
NONCE_LIMIT: Final = 2 ** (8 * NONCE_BYTES) - 1  # counters stay strictly below this
PAYLOAD_BYTES_MAX: Final = FRAME_BYTES_MAX - TAG_BYTES


class CloseReason(enum.Enum):
    """Why a link stopped. Stable numbered codes (logged, later exported)."""

    PEER_CLOSED = 1
    IO_ERROR = 2
    FRAME_TOO_LARGE = 3
    FRAME_TOO_SMALL = 4
    DECRYPT_FAILED = 5
    NONCE_EXHAUSTED = 6
    LOCAL_CLOSE = 7


_PROTOCOL_VIOLATIONS: Final = frozenset(
    {CloseReason.FRAME_TOO_LARGE, CloseReason.FRAME_TOO_SMALL, CloseReason.DECRYPT_FAILED}
)


def nonce_for(counter: int) -> bytes:
    """The 96-bit nonce for frame number ``counter`` of one direction."""
    return counter.to_bytes(NONCE_BYTES, "big")


def frame_bytes_for(payload_bytes: int) -> int:
    """Bytes on the wire for one payload of ``payload_bytes``."""
    return PREFIX_BYTES + payload_bytes + TAG_BYTES


class CipherState:
    """One direction's key and frame counter. Sealing or opening advances it."""

    __slots__ = ("_counter", "_key", "_limit")

    def __init__(self, key: bytes, *, counter: int = 0, limit: int = NONCE_LIMIT) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a ChaCha20-Poly1305 key is 32 bytes")
        if not 0 <= counter <= limit <= NONCE_LIMIT:
            raise ValueError("counter out of range")
        self._key = key
        self._counter = counter
        self._limit = limit

    @property
    def counter(self) -> int:
        """The number of the next frame (the next nonce to use)."""
        return self._counter

    def is_exhausted(self) -> bool:
        return self._counter >= self._limit

    def seal(self, plaintext: bytes) -> bytes | None:
        """Encrypt the next frame; None once the nonce space is used up."""
        if self.is_exhausted():
            return None
        nonce = nonce_for(self._counter)
        self._counter += 1
        return nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
            plaintext, None, nonce, self._key
        )

    def open(self, ciphertext: bytes) -> bytes | None:
        """Decrypt the next frame; None if it is not authentic (or no nonce is left)."""
        if self.is_exhausted():
            return None
        nonce = nonce_for(self._counter)
        try:
            plaintext = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
                ciphertext, None, nonce, self._key
            )
        except nacl.exceptions.CryptoError:
            return None
        self._counter += 1
        return plaintext


class Link:
    """An authenticated link: frames payloads out, and back in, in order.

    Call ``send`` from one task at a time and ``receive`` from one task at a
    time. Any failure closes the transport; ``close`` is idempotent.
    """

    __slots__ = ("_closed", "_label", "_reader", "_receiving", "_sending", "_writer")

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sending: CipherState,
        receiving: CipherState,
        label: str,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._sending = sending
        self._receiving = receiving
        self._label = label
        self._closed = False

    @property
    def label(self) -> str:
        return self._label

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def send(self, payload: bytes) -> CloseReason | None:
        """Write one frame and wait for the transport buffer to drain."""
        if len(payload) > PAYLOAD_BYTES_MAX:
            raise ValueError("payload larger than a frame")
        if self._closed:
            return CloseReason.LOCAL_CLOSE
        ciphertext = self._sending.seal(payload)
        if ciphertext is None:
            return self._fail(CloseReason.NONCE_EXHAUSTED)
        self._writer.write(len(ciphertext).to_bytes(PREFIX_BYTES, "big") + ciphertext)
        try:
            await self._writer.drain()
        except OSError:
            return self._fail(CloseReason.IO_ERROR)
        return None

    async def receive(self, max_bytes: int = FRAME_BYTES_MAX) -> bytes | CloseReason:
        """Read one frame of at most ``max_bytes`` of ciphertext and decrypt it."""
        if self._closed:
            return CloseReason.LOCAL_CLOSE
        header = await self._read_exactly(PREFIX_BYTES)
        if isinstance(header, CloseReason):
            return self._fail(header)
        length = int.from_bytes(header, "big")
        if length > max_bytes:
            return self._fail(CloseReason.FRAME_TOO_LARGE)
        if length < TAG_BYTES:
            return self._fail(CloseReason.FRAME_TOO_SMALL)
        body = await self._read_exactly(length)
        if isinstance(body, CloseReason):
            return self._fail(body)
        plaintext = self._receiving.open(body)
        if plaintext is None:
            reason = (
                CloseReason.NONCE_EXHAUSTED
                if self._receiving.is_exhausted()
                else CloseReason.DECRYPT_FAILED
            )
            return self._fail(reason)
        return plaintext

    async def _read_exactly(self, count: int) -> bytes | CloseReason:
        try:
            return await self._reader.readexactly(count)
        except asyncio.IncompleteReadError:
            return CloseReason.PEER_CLOSED
        except OSError:
            return CloseReason.IO_ERROR

    def _fail(self, reason: CloseReason) -> CloseReason:
        if not self._closed:
            level = logging.WARNING if reason in _PROTOCOL_VIOLATIONS else logging.INFO
            logger.log(level, "link %s closed: %s", self._label, reason.name.lower())
        self.abort()
        return reason

    def abort(self) -> None:
        """Close the transport now, discarding unsent bytes."""
        self._closed = True
        self._writer.transport.abort()

    async def close(self) -> None:
        """Abort the transport and wait until it is gone."""
        self.abort()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
