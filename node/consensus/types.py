"""Consensus records and their one canonical encoding.

Owns: validators and validator sets (quorum, round-skip and proposer rules),
block headers and blocks, proposals, votes, commit certificates, and the pure
check of a certificate. Every record is a msgpack array
``[version, kind, fields...]`` (``node.protocol.codec``): ``decode(encode(x)) == x``
and any non-canonical input is rejected with ``DecodeError``. A record's id
is ``digest`` of its encoding; a block's hash is the digest of its header.

Transactions are opaque bytes here.

May import the pure leaves ``node.protocol.limits``, ``node.protocol.codec``,
``node.protocol.crypto``,
``node.protocol.merkle``. No I/O.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from node.protocol import codec, limits, statements
from node.protocol.codec import DecodeError, Value
from node.protocol.crypto import (
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Digest,
    Domain,
    digest,
    verify,
)
from node.protocol.statements import proposal_signing_body as proposal_signing_body
from node.protocol.statements import vote_signing_body as vote_signing_body

VERSION: Final = 1

# Caps of consensus records that node.protocol.limits does not hold yet (they belong there).
CHAIN_ID_CHARS_MAX: Final = limits.CHAIN_ID_CHARS_MAX
ROUND_MAX: Final = statements.ROUND_MAX  # growing timeouts make it unreachable in practice
TIME_MS_MAX: Final = 2**62
POWER_MAX: Final = 2**40
VOTE_BYTES_MAX: Final = 256
PROPOSAL_BYTES_MAX: Final = 256
HEADER_BYTES_MAX: Final = 1024
VALIDATOR_SET_BYTES_MAX: Final = 64 + limits.VALIDATORS_MAX * (64 + 4 * limits.NAME_CHARS_MAX)
CERTIFICATE_BYTES_MAX: Final = 128 + limits.VALIDATORS_MAX * 112
BLOCK_RECORD_BYTES_MAX: Final = limits.BLOCK_BYTES_MAX + 32 * 1024  # txs + framing + header

NIL_ROUND: Final = -1  # "no round": the valid round of a fresh proposal


class RecordKind(enum.IntEnum):
    """The ``kind`` slot of every consensus record. Part of the protocol: never renumber."""

    VALIDATOR = 1
    VALIDATOR_SET = 2
    HEADER = 3
    BLOCK = 4
    PROPOSAL = 5
    VOTE = 6
    CERTIFICATE = 7
    PROPOSAL_MESSAGE = 8
    VOTE_MESSAGE = 9
    COMMIT_MESSAGE = 10
    SIGN_STATE = 11
    STATUS_MESSAGE = 12


class VoteKind(enum.IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


# --- record helpers ----------------------------------------------------------


def make_record(kind: RecordKind, *fields: Value) -> list[Value]:
    return [VERSION, kind.value, *fields]


def open_record(value: Value, kind: RecordKind, field_count: int) -> list[Value]:
    """The fields of a ``[version, kind, fields...]`` record, after checking the frame."""
    items = codec.as_list(value, field_count + 2)
    codec.as_int(items[0], VERSION, VERSION)
    if codec.as_int(items[1], 0, 255) != kind.value:
        raise DecodeError(f"expected a {kind.name} record")
    return items[2:]


def as_sequence(value: Value, count_max: int) -> list[Value]:
    if not isinstance(value, list) or len(value) > count_max:
        raise DecodeError(f"expected a list of at most {count_max}")
    return value


def as_blob(value: Value, bytes_max: int) -> bytes:
    if not isinstance(value, bytes) or not 1 <= len(value) <= bytes_max:
        raise DecodeError(f"expected 1 to {bytes_max} bytes")
    return value


def as_hash_or_nil(value: Value) -> bytes | None:
    return None if value is None else codec.as_bytes(value, HASH_BYTES)


def _require(condition: bool, message: str) -> None:
    """Construction-time check: a record is born valid or not at all."""
    if not condition:
        raise ValueError(message)


def _is_bytes(value: object, length: int) -> bool:
    return isinstance(value, bytes) and len(value) == length


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _decode(data: bytes, bytes_max: int) -> Value:
    return codec.decode(data, bytes_max)


# --- validators ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Validator:
    public_key: bytes
    power: int
    name: str

    def __post_init__(self) -> None:
        _require(_is_bytes(self.public_key, PUBLIC_KEY_BYTES), "a validator key is 32 bytes")
        _require(_is_int(self.power, 1, POWER_MAX), "validator power out of range")
        _require(isinstance(self.name, str), "a validator name is a string")
        _require(len(self.name) <= limits.NAME_CHARS_MAX, "validator name too long")

    def to_value(self) -> list[Value]:
        return make_record(RecordKind.VALIDATOR, self.public_key, self.power, self.name)

    @classmethod
    def from_value(cls, value: Value) -> Validator:
        key, power, name = open_record(value, RecordKind.VALIDATOR, 3)
        return cls(
            public_key=codec.as_bytes(key, PUBLIC_KEY_BYTES),
            power=codec.as_int(power, 1, POWER_MAX),
            name=codec.as_str(name, limits.NAME_CHARS_MAX),
        )


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """The validators of one height, in a fixed order (the proposer rotation follows it)."""

    validators: tuple[Validator, ...]
    _powers: Mapping[bytes, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _require(1 <= len(self.validators) <= limits.VALIDATORS_MAX, "1 to 64 validators")
        powers = {v.public_key: v.power for v in self.validators}
        _require(len(powers) == len(self.validators), "validator keys must be distinct")
        object.__setattr__(self, "_powers", powers)

    @property
    def total_power(self) -> int:
        return sum(v.power for v in self.validators)

    @property
    def quorum_power(self) -> int:
        """The smallest power strictly above 2/3 of the total (2f + 1 when n = 3f + 1)."""
        return self.total_power * 2 // 3 + 1

    @property
    def skip_power(self) -> int:
        """The smallest power strictly above 1/3 of the total (f + 1): at least one honest."""
        return self.total_power // 3 + 1

    def power_of(self, public_key: bytes) -> int:
        """The voting power of ``public_key``; 0 when it is not a validator."""
        return self._powers.get(public_key, 0)

    def contains(self, public_key: bytes) -> bool:
        return public_key in self._powers

    def proposer(self, height: int, round: int) -> Validator:
        """Round-robin by index, unweighted: ``validators[(height + round) % n]``.

        Every validator proposes in turn whatever its power; a round change moves
        to the next one, so a crashed proposer costs one round per height.
        """
        return self.validators[(height + round) % len(self.validators)]

    def hash(self) -> Digest:
        return digest(self.encode())

    def to_value(self) -> list[Value]:
        validators: list[Value] = [v.to_value() for v in self.validators]
        return make_record(RecordKind.VALIDATOR_SET, validators)

    @classmethod
    def from_value(cls, value: Value) -> ValidatorSet:
        (items,) = open_record(value, RecordKind.VALIDATOR_SET, 1)
        validators = tuple(
            Validator.from_value(v) for v in as_sequence(items, limits.VALIDATORS_MAX)
        )
        try:
            return cls(validators)
        except ValueError as exc:
            raise DecodeError(str(exc)) from None

    def encode(self) -> bytes:
        return codec.encode(self.to_value())

    @classmethod
    def decode(cls, data: bytes) -> ValidatorSet:
        return cls.from_value(_decode(data, VALIDATOR_SET_BYTES_MAX))


# --- blocks ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """What a block commits to. ``state_root`` is the application's root after its txs."""

    chain_id: str
    height: int
    time_ms: int
    previous_block_hash: bytes
    tx_root: bytes
    state_root: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    proposer: bytes

    def __post_init__(self) -> None:
        _require(isinstance(self.chain_id, str), "a chain id is a string")
        _require(1 <= len(self.chain_id) <= CHAIN_ID_CHARS_MAX, "chain id length")
        _require(_is_int(self.height, 1, limits.HEIGHT_MAX), "height out of range")
        _require(_is_int(self.time_ms, 0, TIME_MS_MAX), "time out of range")
        for hashed in (
            self.previous_block_hash,
            self.tx_root,
            self.state_root,
            self.validators_hash,
            self.next_validators_hash,
        ):
            _require(_is_bytes(hashed, HASH_BYTES), "a hash is 32 bytes")
        _require(_is_bytes(self.proposer, PUBLIC_KEY_BYTES), "a proposer key is 32 bytes")

    def hash(self) -> Digest:
        return digest(self.encode())

    def to_value(self) -> list[Value]:
        return make_record(
            RecordKind.HEADER,
            self.chain_id,
            self.height,
            self.time_ms,
            self.previous_block_hash,
            self.tx_root,
            self.state_root,
            self.validators_hash,
            self.next_validators_hash,
            self.proposer,
        )

    @classmethod
    def from_value(cls, value: Value) -> Header:
        chain, height, time_ms, previous, txs, state, vals, next_vals, proposer = open_record(
            value, RecordKind.HEADER, 9
        )
        return cls(
            chain_id=_as_chain_id(chain),
            height=codec.as_int(height, 1, limits.HEIGHT_MAX),
            time_ms=codec.as_int(time_ms, 0, TIME_MS_MAX),
            previous_block_hash=codec.as_bytes(previous, HASH_BYTES),
            tx_root=codec.as_bytes(txs, HASH_BYTES),
            state_root=codec.as_bytes(state, HASH_BYTES),
            validators_hash=codec.as_bytes(vals, HASH_BYTES),
            next_validators_hash=codec.as_bytes(next_vals, HASH_BYTES),
            proposer=codec.as_bytes(proposer, PUBLIC_KEY_BYTES),
        )

    def encode(self) -> bytes:
        return codec.encode(self.to_value())

    @classmethod
    def decode(cls, data: bytes) -> Header:
        return cls.from_value(_decode(data, HEADER_BYTES_MAX))


def _as_chain_id(value: Value) -> str:
    chain_id = codec.as_str(value, CHAIN_ID_CHARS_MAX)
    if not chain_id:
        raise DecodeError("empty chain id")
    return chain_id


@dataclass(frozen=True, slots=True)
class Block:
    """A header and its transactions (opaque bytes). ``tx_root`` is checked by consensus."""

    header: Header
    txs: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _require(len(self.txs) <= limits.BLOCK_TXS_MAX, "too many transactions")
        _require(
            all(isinstance(tx, bytes) and 1 <= len(tx) <= limits.TX_BYTES_MAX for tx in self.txs),
            "a transaction is 1 to TX_BYTES_MAX bytes",
        )
        _require(sum(len(tx) for tx in self.txs) <= limits.BLOCK_BYTES_MAX, "block too large")

    def hash(self) -> Digest:
        """The block hash: ``digest(encode(header))``."""
        return self.header.hash()

    def to_value(self) -> list[Value]:
        txs: list[Value] = [*self.txs]
        return make_record(RecordKind.BLOCK, self.header.to_value(), txs)

    @classmethod
    def from_value(cls, value: Value) -> Block:
        header, txs = open_record(value, RecordKind.BLOCK, 2)
        items = as_sequence(txs, limits.BLOCK_TXS_MAX)
        try:
            return cls(
                header=Header.from_value(header),
                txs=tuple(as_blob(tx, limits.TX_BYTES_MAX) for tx in items),
            )
        except DecodeError:
            raise
        except ValueError as exc:
            raise DecodeError(str(exc)) from None

    def encode(self) -> bytes:
        return codec.encode(self.to_value())

    @classmethod
    def decode(cls, data: bytes) -> Block:
        return cls.from_value(_decode(data, BLOCK_RECORD_BYTES_MAX))


# --- proposals and votes -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    height: int
    round: int
    block_hash: bytes
    valid_round: int
    proposer: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _require(_is_int(self.height, 1, limits.HEIGHT_MAX), "height out of range")
        _require(_is_int(self.round, 0, ROUND_MAX), "round out of range")
        _require(_is_bytes(self.block_hash, HASH_BYTES), "a block hash is 32 bytes")
        _require(_is_int(self.valid_round, NIL_ROUND, ROUND_MAX), "valid round out of range")
        _require(_is_bytes(self.proposer, PUBLIC_KEY_BYTES), "a proposer key is 32 bytes")
        _require(_is_bytes(self.signature, SIGNATURE_BYTES), "a signature is 64 bytes")

    def signing_body(self) -> bytes:
        return proposal_signing_body(
            self.height, self.round, self.block_hash, self.valid_round, self.proposer
        )

    def to_value(self) -> list[Value]:
        return make_record(
            RecordKind.PROPOSAL,
            self.height,
            self.round,
            self.block_hash,
            self.valid_round,
            self.proposer,
            self.signature,
        )

    @classmethod
    def from_value(cls, value: Value) -> Proposal:
        height, round, block_hash, valid_round, proposer, signature = open_record(
            value, RecordKind.PROPOSAL, 6
        )
        return cls(
            height=codec.as_int(height, 1, limits.HEIGHT_MAX),
            round=codec.as_int(round, 0, ROUND_MAX),
            block_hash=codec.as_bytes(block_hash, HASH_BYTES),
            valid_round=codec.as_int(valid_round, NIL_ROUND, ROUND_MAX),
            proposer=codec.as_bytes(proposer, PUBLIC_KEY_BYTES),
            signature=codec.as_bytes(signature, SIGNATURE_BYTES),
        )

    def encode(self) -> bytes:
        return codec.encode(self.to_value())

    @classmethod
    def decode(cls, data: bytes) -> Proposal:
        return cls.from_value(_decode(data, PROPOSAL_BYTES_MAX))

    def id(self) -> Digest:
        return digest(self.encode())


@dataclass(frozen=True, slots=True)
class Vote:
    kind: VoteKind
    height: int
    round: int
    block_hash: bytes | None  # None is a vote for nil
    validator: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _require(isinstance(self.kind, VoteKind), "a vote kind is a VoteKind")
        _require(_is_int(self.height, 1, limits.HEIGHT_MAX), "height out of range")
        _require(_is_int(self.round, 0, ROUND_MAX), "round out of range")
        _require(
            self.block_hash is None or _is_bytes(self.block_hash, HASH_BYTES),
            "a block hash is 32 bytes or nil",
        )
        _require(_is_bytes(self.validator, PUBLIC_KEY_BYTES), "a validator key is 32 bytes")
        _require(_is_bytes(self.signature, SIGNATURE_BYTES), "a signature is 64 bytes")

    def signing_body(self) -> bytes:
        return vote_signing_body(
            self.kind, self.height, self.round, self.block_hash, self.validator
        )

    def to_value(self) -> list[Value]:
        return make_record(
            RecordKind.VOTE,
            self.kind.value,
            self.height,
            self.round,
            self.block_hash,
            self.validator,
            self.signature,
        )

    @classmethod
    def from_value(cls, value: Value) -> Vote:
        kind, height, round, block_hash, validator, signature = open_record(
            value, RecordKind.VOTE, 6
        )
        return cls(
            kind=VoteKind(codec.as_int(kind, VoteKind.PREVOTE.value, VoteKind.PRECOMMIT.value)),
            height=codec.as_int(height, 1, limits.HEIGHT_MAX),
            round=codec.as_int(round, 0, ROUND_MAX),
            block_hash=as_hash_or_nil(block_hash),
            validator=codec.as_bytes(validator, PUBLIC_KEY_BYTES),
            signature=codec.as_bytes(signature, SIGNATURE_BYTES),
        )

    def encode(self) -> bytes:
        return codec.encode(self.to_value())

    @classmethod
    def decode(cls, data: bytes) -> Vote:
        return cls.from_value(_decode(data, VOTE_BYTES_MAX))

    def id(self) -> Digest:
        return digest(self.encode())


def is_proposal_signed(proposal: Proposal, chain_id: str) -> bool:
    """True when the proposal carries its proposer's signature for ``chain_id``."""
    return verify(
        Domain.PROPOSAL,
        chain_id,
        proposal.signing_body(),
        proposal.proposer,
        proposal.signature,
    )


def is_vote_signed(vote: Vote, chain_id: str) -> bool:
    """True when the vote carries its validator's signature for ``chain_id``."""
    return verify(Domain.VOTE, chain_id, vote.signing_body(), vote.validator, vote.signature)


@dataclass(frozen=True, slots=True)
class Lock:
    """A validator's lock within a height: the round and value of its last non-nil precommit."""

    round: int
    block_hash: bytes

    def __post_init__(self) -> None:
        _require(_is_int(self.round, 0, ROUND_MAX), "round out of range")
        _require(_is_bytes(self.block_hash, HASH_BYTES), "a block hash is 32 bytes")


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a node restarted within a height picks up: a round not signed in yet, its lock."""

    round: int
    lock: Lock | None

    def __post_init__(self) -> None:
        _require(_is_int(self.round, 0, ROUND_MAX), "round out of range")


FRESH: Final = Resume(0, None)


# --- certificates ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Certificate:
    """2f + 1 precommit signatures for one block: ``(validator key, signature)``, keys ascending."""

    height: int
    round: int
    block_hash: bytes
    signatures: tuple[tuple[bytes, bytes], ...]

    def __post_init__(self) -> None:
        _require(_is_int(self.height, 1, limits.HEIGHT_MAX), "height out of range")
        _require(_is_int(self.round, 0, ROUND_MAX), "round out of range")
        _require(_is_bytes(self.block_hash, HASH_BYTES), "a block hash is 32 bytes")
        _require(1 <= len(self.signatures) <= limits.VALIDATORS_MAX, "1 to 64 signatures")
        for key, signature in self.signatures:
            _require(_is_bytes(key, PUBLIC_KEY_BYTES), "a validator key is 32 bytes")
            _require(_is_bytes(signature, SIGNATURE_BYTES), "a signature is 64 bytes")
        keys = [key for key, _ in self.signatures]
        _require(
            all(a < b for a, b in itertools.pairwise(keys)),
            "signatures sorted by validator key, each key once",
        )

    def to_value(self) -> list[Value]:
        pairs: list[Value] = [[key, signature] for key, signature in self.signatures]
        return make_record(RecordKind.CERTIFICATE, self.height, self.round, self.block_hash, pairs)

    @classmethod
    def from_value(cls, value: Value) -> Certificate:
        height, round, block_hash, pairs = open_record(value, RecordKind.CERTIFICATE, 4)
        signatures = tuple(_as_signature_pair(p) for p in as_sequence(pairs, limits.VALIDATORS_MAX))
        try:
            return cls(
                height=codec.as_int(height, 1, limits.HEIGHT_MAX),
                round=codec.as_int(round, 0, ROUND_MAX),
                block_hash=codec.as_bytes(block_hash, HASH_BYTES),
                signatures=signatures,
            )
        except DecodeError:
            raise
        except ValueError as exc:
            raise DecodeError(str(exc)) from None

    def encode(self) -> bytes:
        return codec.encode(self.to_value())

    @classmethod
    def decode(cls, data: bytes) -> Certificate:
        return cls.from_value(_decode(data, CERTIFICATE_BYTES_MAX))

    def id(self) -> Digest:
        return digest(self.encode())


def _as_signature_pair(value: Value) -> tuple[bytes, bytes]:
    key, signature = codec.as_list(value, 2)
    return codec.as_bytes(key, PUBLIC_KEY_BYTES), codec.as_bytes(signature, SIGNATURE_BYTES)


def verify_certificate(cert: Certificate, chain_id: str, validator_set: ValidatorSet) -> bool:
    """True when ``cert`` holds precommits of distinct known validators with >= quorum power.

    Pure: anyone holding the validator set of ``cert.height`` can run it. The
    caller checks that ``cert.height`` and ``cert.block_hash`` are the block's.
    """
    keys = [key for key, _ in cert.signatures]
    if len(set(keys)) != len(keys):
        return False
    power = 0
    for key, signature in cert.signatures:
        key_power = validator_set.power_of(key)
        if key_power == 0:
            return False
        body = vote_signing_body(VoteKind.PRECOMMIT, cert.height, cert.round, cert.block_hash, key)
        if not verify(Domain.VOTE, chain_id, body, key, signature):
            return False
        power += key_power
    return power >= validator_set.quorum_power


@dataclass(frozen=True, slots=True)
class CertifiedBlock:
    """A decided block with the certificate that decided it (what block sync carries)."""

    block: Block
    certificate: Certificate

    def __post_init__(self) -> None:
        _require(self.certificate.height == self.block.header.height, "certificate height")
        _require(self.certificate.block_hash == self.block.hash(), "certificate block hash")


def verify_certified_block(
    certified: CertifiedBlock, chain_id: str, validator_set: ValidatorSet
) -> bool:
    """True when the block's chain id is ``chain_id`` and its certificate verifies."""
    return certified.block.header.chain_id == chain_id and verify_certificate(
        certified.certificate, chain_id, validator_set
    )


# The signed bodies live in the pure leaf ``node.protocol.statements`` (the ledger judges
# evidence with them); their record numbers must stay those of this module.
if (RecordKind.PROPOSAL, RecordKind.VOTE) != (5, 6):
    raise RuntimeError("consensus record numbers diverge from node.protocol.statements")
