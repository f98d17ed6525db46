"""Hashing and domain-separated Ed25519 signatures.

Every signed message is ``tag || u8(len(chain_id)) || chain_id || body``.
Each kind of signed thing (transaction, spending authorization, vote,
proposal, API token, link handshake) has its own tag, so a signature made
for one can never be replayed as another, nor on another chain.
Verification goes through libsodium (PyNaCl), which rejects malleable
signatures and small-order public keys.

Imports nothing of the project.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Final, NewType

import nacl.bindings
import nacl.exceptions
import nacl.signing

PUBLIC_KEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64
HASH_BYTES: Final = 32
SEED_BYTES: Final = 32

PublicKey = NewType("PublicKey", bytes)
Digest = NewType("Digest", bytes)


class Domain(enum.Enum):
    """Signing domains. The tag bytes are part of the protocol: never change one."""

    TX = b"relance/tx/v1"
    AUTHORIZATION = b"relance/authorization/v1"
    PROPOSAL = b"relance/proposal/v1"
    VOTE = b"relance/vote/v1"
    API_TOKEN = b"relance/api-token/v1"
    HANDSHAKE = b"relance/handshake/v1"
    GOVERNANCE = b"relance/governance/v1"
    MEMBERSHIP = b"relance/membership/v1"  # an organisation's genesis membership file


def digest(data: bytes) -> Digest:
    """The one hash function of the protocol (SHA-256)."""
    return Digest(hashlib.sha256(data).digest())


def signing_bytes(domain: Domain, chain_id: str, body: bytes) -> bytes:
    chain = chain_id.encode()
    if len(chain) > 255:
        raise ValueError("chain id too long")
    return domain.value + b"\x00" + bytes([len(chain)]) + chain + body


class Signer:
    """An Ed25519 private key. Holds the seed; never serialised by itself."""

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._key = nacl.signing.SigningKey(seed)
        self.public_key = PublicKey(bytes(self._key.verify_key))

    @classmethod
    def generate(cls) -> Signer:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, domain: Domain, chain_id: str, body: bytes) -> bytes:
        return self._key.sign(signing_bytes(domain, chain_id, body)).signature


def verify(domain: Domain, chain_id: str, body: bytes, public_key: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s over ``body`` in ``domain`` on ``chain_id``."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    message = signing_bytes(domain, chain_id, body)
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def verify_raw(message: bytes, public_key: bytes, signature: bytes) -> bool:
    """A bare PyNaCl verification, the unit the benchmarks compare against."""
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True
