"""The validator's guarded signer: never signs two different things at one height/round/step.

Owns the "last signed" record (height, round, step, hash of the signed bytes,
and the lock at that height: the round and value of the last non-nil
precommit, which a restarted node must not forget) and its file. The
record reaches the disk (write to a temporary file, fsync, rename, fsync the
directory) BEFORE a signature is returned, so a crash at any instant and a
restart never lead to a conflicting vote. It refuses any
height/round/step regression and any different payload at the same point;
the identical payload signs again (Ed25519 is deterministic: same signature).

``observe_own_vote`` moves the record forward when our own key's vote shows
up on the network beyond it (a data directory restored from a backup, or a
second instance with our key): from then on nothing at or below that point
is signed.

This module does I/O (one small file); it is kept apart for that reason.
May import ``node.protocol.codec``, ``node.protocol.crypto`` and ``node.consensus.types``.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Protocol

from node.consensus.types import (
    FRESH,
    NIL_ROUND,
    ROUND_MAX,
    Block,
    Lock,
    Proposal,
    RecordKind,
    Resume,
    Vote,
    VoteKind,
    as_hash_or_nil,
    make_record,
    open_record,
)
from node.protocol import codec, crypto, limits
from node.protocol.codec import DecodeError, Value
from node.protocol.statements import proposal_signing_body, vote_signing_body

RECORD_BYTES_MAX: Final = 128


class SignStep(enum.IntEnum):
    """Steps in the order they are signed within a round."""

    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


def sign_step_of(kind: VoteKind) -> SignStep:
    return SignStep.PREVOTE if kind is VoteKind.PREVOTE else SignStep.PRECOMMIT


class SignRefused(Exception):
    """Signing would regress or conflict with what this key already signed."""


class SignerStateError(RuntimeError):
    """The record file is unreadable: refuse to run rather than sign blindly."""


@dataclass(frozen=True, slots=True)
class SignRecord:
    """The highest point signed, and our lock at that height.

    ``payload_hash`` None: seen on the network, sign nothing at this point.
    ``lock``: the round and value of our last non-nil precommit at ``height``;
    a restarted node must keep it (forgetting a lock is as bad as a double vote).
    """

    height: int
    round: int
    step: SignStep
    payload_hash: bytes | None
    lock: Lock | None = None

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.height, self.round, self.step.value)

    def encode(self) -> bytes:
        lock_round = NIL_ROUND if self.lock is None else self.lock.round
        lock_hash = None if self.lock is None else self.lock.block_hash
        value = make_record(
            RecordKind.SIGN_STATE,
            self.height,
            self.round,
            self.step.value,
            self.payload_hash,
            lock_round,
            lock_hash,
        )
        return codec.encode(value)

    @classmethod
    def decode(cls, data: bytes) -> SignRecord:
        value: Value = codec.decode(data, RECORD_BYTES_MAX)
        height, round, step, payload_hash, lock_round, lock_hash = open_record(
            value, RecordKind.SIGN_STATE, 6
        )
        return cls(
            height=codec.as_int(height, 0, limits.HEIGHT_MAX),
            round=codec.as_int(round, 0, ROUND_MAX),
            step=SignStep(codec.as_int(step, SignStep.PROPOSE.value, SignStep.PRECOMMIT.value)),
            payload_hash=as_hash_or_nil(payload_hash),
            lock=_as_lock(lock_round, lock_hash),
        )


def _as_lock(lock_round: Value, lock_hash: Value) -> Lock | None:
    round = codec.as_int(lock_round, NIL_ROUND, ROUND_MAX)
    block_hash = as_hash_or_nil(lock_hash)
    if (round == NIL_ROUND) != (block_hash is None):
        raise DecodeError("a lock has both a round and a value, or neither")
    return None if block_hash is None else Lock(round, block_hash)


class RecordStore(Protocol):
    def load(self) -> SignRecord | None: ...

    def save(self, record: SignRecord) -> None:
        """Durable when it returns."""
        ...


class FileRecordStore:
    """The record in one small file, replaced atomically and durably."""

    __slots__ = ("_path",)

    def __init__(self, path: Path) -> None:
        self._path = path

    def load(self) -> SignRecord | None:
        if not self._path.exists():
            return None
        data = self._path.read_bytes()
        try:
            return SignRecord.decode(data)
        except DecodeError as exc:
            raise SignerStateError(f"{self._path}: unreadable signer state: {exc}") from None

    def save(self, record: SignRecord) -> None:
        write_durably(self._path, record.encode())


def write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically; durable when it returns."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class FileLockedBlockStore:
    """The block last precommitted, in one file (``driver.LockedBlockStore``)."""

    __slots__ = ("_path",)

    def __init__(self, path: Path) -> None:
        self._path = path

    def save(self, block: Block) -> None:
        write_durably(self._path, block.encode())

    def load(self) -> Block | None:
        if not self._path.exists():
            return None
        try:
            return Block.decode(self._path.read_bytes())
        except (DecodeError, ValueError):
            return None  # an unreadable copy only costs the chance to re-propose it


class GuardedSigner:
    """A validator key behind the double-sign guard. One per process; not thread-safe."""

    __slots__ = ("_chain_id", "_key", "_record", "_store")

    def __init__(self, key: crypto.Signer, chain_id: str, store: RecordStore) -> None:
        self._key = key
        self._chain_id = chain_id
        self._store = store
        self._record = store.load()

    @property
    def public_key(self) -> bytes:
        return self._key.public_key

    @property
    def last_signed(self) -> SignRecord | None:
        return self._record

    def locked_at(self, height: int) -> Lock | None:
        """Our lock at ``height`` as recorded before signing (None: not locked there)."""
        record = self._record
        return record.lock if record is not None and record.height == height else None

    def resume_at(self, height: int) -> Resume:
        """After a restart at ``height``: the round after the last we signed in, and our lock."""
        record = self._record
        if record is None or record.height != height:
            return FRESH
        return Resume(record.round + 1, record.lock)

    def sign_proposal(
        self, height: int, round: int, block_hash: bytes, valid_round: int
    ) -> Proposal:
        body = proposal_signing_body(height, round, block_hash, valid_round, self.public_key)
        position = SignRecord(height, round, SignStep.PROPOSE, None)
        signature = self._sign(crypto.Domain.PROPOSAL, position, body, self.locked_at(height))
        return Proposal(height, round, block_hash, valid_round, self.public_key, signature)

    def sign_vote(self, kind: VoteKind, height: int, round: int, block_hash: bytes | None) -> Vote:
        body = vote_signing_body(kind, height, round, block_hash, self.public_key)
        position = SignRecord(height, round, sign_step_of(kind), None)
        lock = self.locked_at(height)
        if kind is VoteKind.PRECOMMIT and block_hash is not None:
            lock = Lock(round, block_hash)  # line 36: a non-nil precommit is a lock
        signature = self._sign(crypto.Domain.VOTE, position, body, lock)
        return Vote(kind, height, round, block_hash, self.public_key, signature)

    def observe_own_vote(self, height: int, round: int, step: SignStep) -> None:
        """Our key signed at this point elsewhere: never sign at or below it."""
        observed = SignRecord(height, round, step, None, self.locked_at(height))
        if self._record is not None and observed.position <= self._record.position:
            return
        self._store.save(observed)
        self._record = observed

    def _sign(
        self, domain: crypto.Domain, position: SignRecord, body: bytes, lock: Lock | None
    ) -> bytes:
        message = crypto.signing_bytes(domain, self._chain_id, body)
        wanted = replace(position, payload_hash=crypto.digest(message), lock=lock)
        self._authorize(wanted)
        return self._key.sign(domain, self._chain_id, body)

    def _authorize(self, wanted: SignRecord) -> None:
        """Record ``wanted`` durably, or raise ``SignRefused``."""
        last = self._record
        if last is not None:
            if wanted.position < last.position:
                raise SignRefused(f"regression: {wanted.position} < {last.position}")
            if wanted.position == last.position:
                if wanted.payload_hash != last.payload_hash:
                    raise SignRefused(f"a different payload at {wanted.position}")
                return  # the same payload again: the same signature
        self._store.save(wanted)
        self._record = wanted
