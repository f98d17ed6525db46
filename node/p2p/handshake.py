"""The link handshake: ephemeral X25519, then both node keys sign the transcript.

Owns the bytes exchanged before a ``Link`` exists, and the decision to
accept the peer. Wire format, in order:

1. Both sides send ``HELLO_MAGIC || ephemeral X25519 public key`` (40 bytes).
2. Both derive two directional ChaCha20-Poly1305 keys with libsodium's
   ``crypto_kx`` (BLAKE2b over the shared secret and both ephemeral keys),
   the dialer in the client role.
3. The dialer sends its auth frame; the acceptor checks it and only then
   sends its own; the dialer checks that. An auth frame is the first
   encrypted frame of its direction (see ``link``) and holds
   ``[1, "auth", chain_id, node_public_key, signature]`` (canonical msgpack).
   The signature is the node key's, in ``Domain.HANDSHAKE`` on the chain id,
   over ``[1, "handshake", role, transcript_hash]`` where role is 1 for the
   dialer and 2 for the acceptor, and ``transcript_hash`` is the SHA-256 of
   ``TRANSCRIPT_TAG || dialer ephemeral key || acceptor ephemeral key``.

A peer is accepted only with the same chain id, a valid signature, a key the
caller allows and, for the dialer, exactly the key it meant to reach. Any
failure, or the timeout, closes the connection and logs the reason (through
the caller's ``RefusalLog`` when it gives one: an acceptor faces strangers).
The acceptor may also give a shorter timeout for the peer's hello, the first
message, which a real peer sends at once: an idle connection is then dropped
early (``HELLO_TIMEOUT``).

May import the pure leaves (``node.protocol.crypto``, ``node.protocol.codec``,
``node.protocol.limits``),
``link`` and ``admission``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import nacl.bindings
import nacl.exceptions

from node.p2p.admission import RefusalLog, address_of
from node.p2p.link import CipherState, CloseReason, Link
from node.protocol import codec
from node.protocol.crypto import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Domain,
    PublicKey,
    Signer,
    digest,
    verify,
)
from node.protocol.limits import P2P_HANDSHAKE_TIMEOUT_S

logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S: Final = P2P_HANDSHAKE_TIMEOUT_S  # the default
HELLO_MAGIC: Final = b"RLNCp2p1"
EPHEMERAL_KEY_BYTES: Final = nacl.bindings.crypto_kx_PUBLIC_KEY_BYTES
HELLO_BYTES: Final = len(HELLO_MAGIC) + EPHEMERAL_KEY_BYTES
TRANSCRIPT_TAG: Final = b"relance/p2p/transcript/v1"
AUTH_FRAME_BYTES_MAX: Final = 1024
VERSION: Final = 1

# The caller's allow-list: a fixed set of node keys, or a predicate over one.
Allowed = Callable[[PublicKey], bool] | frozenset[PublicKey]


class Role(enum.Enum):
    DIALER = 1
    ACCEPTOR = 2


class HandshakeFailure(enum.Enum):
    """Why a handshake was refused. Stable numbered codes."""

    TIMEOUT = 1
    PEER_CLOSED = 2
    BAD_HELLO = 3
    BAD_KEY_EXCHANGE = 4
    MALFORMED_AUTH = 5
    WRONG_CHAIN_ID = 6
    BAD_SIGNATURE = 7
    UNKNOWN_KEY = 8
    UNEXPECTED_KEY = 9
    SELF_CONNECTION = 10
    HELLO_TIMEOUT = 11


class _Refused(Exception):
    def __init__(self, failure: HandshakeFailure, detail: str = "") -> None:
        super().__init__(failure.name)
        self.failure = failure
        self.detail = detail


async def dial_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    signer: Signer,
    chain_id: str,
    allowed: Allowed,
    expected_key: PublicKey,
    timeout_s: float = HANDSHAKE_TIMEOUT_S,
) -> Session | HandshakeFailure:
    """Run the dialer's side on a fresh connection; the session or why it was refused."""
    context = _Context(signer, chain_id, allowed, expected_key, Role.DIALER, None, None)
    return await _run(reader, writer, context, timeout_s)


async def accept_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    signer: Signer,
    chain_id: str,
    allowed: Allowed,
    timeout_s: float = HANDSHAKE_TIMEOUT_S,
    *,
    hello_timeout_s: float | None = None,
    refusals: RefusalLog | None = None,
) -> Session | HandshakeFailure:
    """Run the acceptor's side on a fresh connection; the session or why it was refused.

    ``hello_timeout_s``: the dialer's hello must arrive this soon (None: the
    whole timeout). ``refusals``: where refusals are logged (None: each one).
    """
    context = _Context(signer, chain_id, allowed, None, Role.ACCEPTOR, hello_timeout_s, refusals)
    return await _run(reader, writer, context, timeout_s)


@dataclass(frozen=True, slots=True)
class Session:
    """An accepted handshake: the link, and the authenticated key at its far end."""

    link: Link
    peer_key: PublicKey


@dataclass(frozen=True, slots=True)
class _Context:
    signer: Signer
    chain_id: str
    allowed: Allowed
    expected_key: PublicKey | None  # None for the acceptor
    role: Role
    hello_timeout_s: float | None
    refusals: RefusalLog | None


async def _run(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: _Context,
    timeout_s: float,
) -> Session | HandshakeFailure:
    address = _address_of(writer)
    detail = ""
    try:
        async with asyncio.timeout(timeout_s):
            return await _exchange(reader, writer, context, address)
    except _Refused as refused:
        failure, detail = refused.failure, refused.detail
    except TimeoutError:
        failure = HandshakeFailure.TIMEOUT
    except (OSError, asyncio.IncompleteReadError):
        failure = HandshakeFailure.PEER_CLOSED
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
    writer.transport.abort()
    line = f"handshake as {context.role.name.lower()} with {address} refused: "
    line += failure.name.lower() + detail
    if context.refusals is None:
        logger.warning("%s", line)
    else:
        context.refusals.refused(failure.name.lower(), address_of(_peername(writer)), line)
    return failure


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: _Context,
    address: str,
) -> Session:
    public, secret = nacl.bindings.crypto_kx_keypair()
    writer.write(HELLO_MAGIC + public)
    hello = await _read_hello(reader, context.hello_timeout_s)
    peer_public = _parse_hello(hello, public)
    if context.role is Role.DIALER:
        transcript = compute_transcript_hash(public, peer_public)
        sending, receiving = _client_keys(public, secret, peer_public)
    else:
        transcript = compute_transcript_hash(peer_public, public)
        sending, receiving = _server_keys(public, secret, peer_public)
    states = (CipherState(sending), CipherState(receiving))
    unauthenticated = Link(reader, writer, *states, address)
    if context.role is Role.DIALER:
        await _send_auth(unauthenticated, context, transcript)
        peer_key = await _receive_auth(unauthenticated, context, transcript)
    else:
        peer_key = await _receive_auth(unauthenticated, context, transcript)
        await _send_auth(unauthenticated, context, transcript)
    label = f"{peer_key.hex()[:16]}@{address}"
    logger.info("handshake as %s: linked to %s", context.role.name.lower(), label)
    return Session(Link(reader, writer, *states, label), peer_key)


async def _read_hello(reader: asyncio.StreamReader, timeout_s: float | None) -> bytes:
    if timeout_s is None:
        return await reader.readexactly(HELLO_BYTES)
    try:
        async with asyncio.timeout(timeout_s):
            return await reader.readexactly(HELLO_BYTES)
    except TimeoutError:
        raise _Refused(HandshakeFailure.HELLO_TIMEOUT) from None


def compute_transcript_hash(dialer_ephemeral: bytes, acceptor_ephemeral: bytes) -> bytes:
    return digest(TRANSCRIPT_TAG + dialer_ephemeral + acceptor_ephemeral)


def compute_signed_body(role: Role, transcript_hash: bytes) -> bytes:
    return codec.encode([VERSION, "handshake", role.value, transcript_hash])


def _parse_hello(hello: bytes, own_public: bytes) -> bytes:
    if not hello.startswith(HELLO_MAGIC):
        raise _Refused(HandshakeFailure.BAD_HELLO)
    peer_public = hello[len(HELLO_MAGIC) :]
    if peer_public == own_public:
        raise _Refused(HandshakeFailure.BAD_HELLO)  # a reflected hello
    return peer_public


def _client_keys(public: bytes, secret: bytes, peer_public: bytes) -> tuple[bytes, bytes]:
    try:
        receiving, sending = nacl.bindings.crypto_kx_client_session_keys(
            public, secret, peer_public
        )
    except nacl.exceptions.CryptoError:
        raise _Refused(HandshakeFailure.BAD_KEY_EXCHANGE) from None
    return sending, receiving


def _server_keys(public: bytes, secret: bytes, peer_public: bytes) -> tuple[bytes, bytes]:
    try:
        receiving, sending = nacl.bindings.crypto_kx_server_session_keys(
            public, secret, peer_public
        )
    except nacl.exceptions.CryptoError:
        raise _Refused(HandshakeFailure.BAD_KEY_EXCHANGE) from None
    return sending, receiving


async def _send_auth(link: Link, context: _Context, transcript: bytes) -> None:
    body = compute_signed_body(context.role, transcript)
    signature = context.signer.sign(Domain.HANDSHAKE, context.chain_id, body)
    auth = codec.encode([VERSION, "auth", context.chain_id, context.signer.public_key, signature])
    if await link.send(auth) is not None:
        raise _Refused(HandshakeFailure.PEER_CLOSED)


async def _receive_auth(link: Link, context: _Context, transcript: bytes) -> PublicKey:
    frame = await link.receive(AUTH_FRAME_BYTES_MAX)
    if isinstance(frame, CloseReason):
        raise _Refused(
            HandshakeFailure.PEER_CLOSED
            if frame in (CloseReason.PEER_CLOSED, CloseReason.IO_ERROR)
            else HandshakeFailure.MALFORMED_AUTH
        )
    chain_id, peer_key, signature = _parse_auth(frame)
    peer_role = Role.ACCEPTOR if context.role is Role.DIALER else Role.DIALER
    _check_peer(context, chain_id, peer_key, signature, compute_signed_body(peer_role, transcript))
    return peer_key


def _parse_auth(frame: bytes) -> tuple[str, PublicKey, bytes]:
    try:
        fields = codec.as_list(codec.decode(frame, AUTH_FRAME_BYTES_MAX), 5)
        codec.as_int(fields[0], VERSION, VERSION)
        if fields[1] != "auth":
            raise codec.DecodeError("not an auth frame")
        # Bounded by the frame: a chain id longer than limits.CHAIN_ID_CHARS_MAX is never ours
        # and is refused WRONG_CHAIN_ID, as any other chain id.
        chain_id = codec.as_str(fields[2], AUTH_FRAME_BYTES_MAX)
        peer_key = PublicKey(codec.as_bytes(fields[3], PUBLIC_KEY_BYTES))
        signature = codec.as_bytes(fields[4], SIGNATURE_BYTES)
    except codec.DecodeError:
        raise _Refused(HandshakeFailure.MALFORMED_AUTH) from None
    return chain_id, peer_key, signature


def _check_peer(
    context: _Context, chain_id: str, peer_key: PublicKey, signature: bytes, body: bytes
) -> None:
    key = f" (peer key {peer_key.hex()})"
    if chain_id != context.chain_id:
        raise _Refused(HandshakeFailure.WRONG_CHAIN_ID, f" (peer chain id {chain_id!r})")
    if not verify(Domain.HANDSHAKE, chain_id, body, peer_key, signature):
        raise _Refused(HandshakeFailure.BAD_SIGNATURE, key)
    if peer_key == context.signer.public_key:
        raise _Refused(HandshakeFailure.SELF_CONNECTION)
    if context.expected_key is not None and peer_key != context.expected_key:
        expected = context.expected_key.hex()
        raise _Refused(HandshakeFailure.UNEXPECTED_KEY, f"{key[:-1]}, expected {expected})")
    if not is_allowed(context.allowed, peer_key):
        raise _Refused(HandshakeFailure.UNKNOWN_KEY, key)


def is_allowed(allowed: Allowed, peer_key: PublicKey) -> bool:
    if isinstance(allowed, frozenset):
        return peer_key in allowed
    return allowed(peer_key)


def _peername(writer: asyncio.StreamWriter) -> object:
    return writer.get_extra_info("peername")


def _address_of(writer: asyncio.StreamWriter) -> str:
    peer = _peername(writer)
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "unknown"
