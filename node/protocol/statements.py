"""What validators sign, shared by consensus (which signs) and the ledger
(which judges evidence of double signing).

A vote's signed body is ``[1, 6, vote_kind, height, round, block_hash|nil,
validator]`` under ``Domain.VOTE``; a proposal's is ``[1, 5, height, round,
block_hash, valid_round, proposer]`` under ``Domain.PROPOSAL``. Two different
bodies signed by one validator for the same height, round and step are
equivocation.

Pure leaf: imports only ``node.protocol.codec`` and ``node.protocol.crypto``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from node.protocol import codec
from node.protocol.codec import DecodeError
from node.protocol.crypto import HASH_BYTES, PUBLIC_KEY_BYTES, Domain, verify

VERSION: Final = 1
PROPOSAL_RECORD: Final = 5
VOTE_RECORD: Final = 6
STATEMENT_BYTES_MAX: Final = 256
_BIG: Final = 2**62
ROUND_MAX: Final = 2**20  # consensus never signs a later round (node.consensus.types.ROUND_MAX)


class Step(enum.IntEnum):
    """The step a statement belongs to (votes use their vote kind's number)."""

    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2


def proposal_signing_body(
    height: int, round: int, block_hash: bytes, valid_round: int, proposer: bytes
) -> bytes:
    """The bytes a proposer signs (with ``Domain.PROPOSAL`` and the chain id)."""
    return codec.encode(
        [VERSION, PROPOSAL_RECORD, height, round, block_hash, valid_round, proposer]
    )


def vote_signing_body(
    kind: int, height: int, round: int, block_hash: bytes | None, validator: bytes
) -> bytes:
    """The bytes a validator signs (with ``Domain.VOTE`` and the chain id). nil is ``None``."""
    return codec.encode([VERSION, VOTE_RECORD, int(kind), height, round, block_hash, validator])


@dataclass(frozen=True, slots=True)
class Statement:
    """One signed consensus statement, parsed from its signing body."""

    step: Step
    height: int
    round: int
    block_hash: bytes | None
    signer: bytes

    @property
    def domain(self) -> Domain:
        return Domain.PROPOSAL if self.step == Step.PROPOSE else Domain.VOTE


def parse_statement(body: bytes) -> Statement:
    """Parse a vote's or proposal's signing body; raises ``DecodeError``."""
    items = codec.decode(body, STATEMENT_BYTES_MAX)
    if not isinstance(items, list) or len(items) != 7 or items[0] != VERSION:
        raise DecodeError("not a consensus statement")
    if items[1] == VOTE_RECORD:
        kind = codec.as_int(items[2], Step.PREVOTE, Step.PRECOMMIT)
        block = items[5]
        return Statement(
            step=Step(kind),
            height=codec.as_int(items[3], 1, _BIG),
            round=codec.as_int(items[4], 0, ROUND_MAX),
            block_hash=None if block is None else codec.as_bytes(block, HASH_BYTES),
            signer=codec.as_bytes(items[6], PUBLIC_KEY_BYTES),
        )
    if items[1] == PROPOSAL_RECORD:
        codec.as_int(items[5], -1, _BIG)
        return Statement(
            step=Step.PROPOSE,
            height=codec.as_int(items[2], 1, _BIG),
            round=codec.as_int(items[3], 0, ROUND_MAX),
            block_hash=codec.as_bytes(items[4], HASH_BYTES),
            signer=codec.as_bytes(items[6], PUBLIC_KEY_BYTES),
        )
    raise DecodeError("not a consensus statement")


def is_equivocation(
    chain_id: str, first: bytes, first_signature: bytes, second: bytes, second_signature: bytes
) -> Statement | None:
    """The first statement when the two are a proven double signature, else None."""
    try:
        a, b = parse_statement(first), parse_statement(second)
    except DecodeError:
        return None
    same_slot = (a.step, a.height, a.round, a.signer) == (b.step, b.height, b.round, b.signer)
    if not same_slot or first == second or a.block_hash == b.block_hash:
        return None
    if not verify(a.domain, chain_id, first, a.signer, first_signature):
        return None
    if not verify(b.domain, chain_id, second, b.signer, second_signature):
        return None
    return a
