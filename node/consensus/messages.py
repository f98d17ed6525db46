"""The consensus wire messages: a proposal with its block, a vote, a certified block, a status.

Owns their canonical encoding (one msgpack record per message, at most
``limits.FRAME_BYTES_MAX`` bytes) and nothing else: signatures are checked by
the driver, rules by ``tendermint``.

May import ``node.protocol.limits``, ``node.protocol.codec`` and ``node.consensus.types``.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.consensus.types import (
    Block,
    Certificate,
    CertifiedBlock,
    Proposal,
    RecordKind,
    Vote,
    make_record,
    open_record,
)
from node.protocol import codec, limits
from node.protocol.codec import DecodeError


@dataclass(frozen=True, slots=True)
class ProposalMessage:
    proposal: Proposal
    block: Block


@dataclass(frozen=True, slots=True)
class VoteMessage:
    vote: Vote


@dataclass(frozen=True, slots=True)
class CommitMessage:
    """A decided block and its certificate, for a peer that lags behind."""

    certified: CertifiedBlock


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """Unsigned: the height a node waits to decide. Peers ahead answer with certified blocks."""

    height: int


Message = ProposalMessage | VoteMessage | CommitMessage | StatusMessage


def encode_message(message: Message) -> bytes:
    match message:
        case ProposalMessage(proposal, block):
            value = make_record(RecordKind.PROPOSAL_MESSAGE, proposal.to_value(), block.to_value())
        case VoteMessage(vote):
            value = make_record(RecordKind.VOTE_MESSAGE, vote.to_value())
        case CommitMessage(certified):
            value = make_record(
                RecordKind.COMMIT_MESSAGE,
                certified.block.to_value(),
                certified.certificate.to_value(),
            )
        case StatusMessage(height):
            value = make_record(RecordKind.STATUS_MESSAGE, height)
    return codec.encode(value)


def decode_message(data: bytes) -> Message:
    """Decode one message strictly. Raises ``DecodeError`` on anything else."""
    value = codec.decode(data, limits.FRAME_BYTES_MAX)
    if not isinstance(value, list) or len(value) < 2:
        raise DecodeError("expected a message record")
    kind = value[1]
    if kind == RecordKind.PROPOSAL_MESSAGE.value:
        proposal, block = open_record(value, RecordKind.PROPOSAL_MESSAGE, 2)
        return ProposalMessage(Proposal.from_value(proposal), Block.from_value(block))
    if kind == RecordKind.VOTE_MESSAGE.value:
        (vote,) = open_record(value, RecordKind.VOTE_MESSAGE, 1)
        return VoteMessage(Vote.from_value(vote))
    if kind == RecordKind.COMMIT_MESSAGE.value:
        block, certificate = open_record(value, RecordKind.COMMIT_MESSAGE, 2)
        return CommitMessage(_certified(block, certificate))
    if kind == RecordKind.STATUS_MESSAGE.value:
        (height,) = open_record(value, RecordKind.STATUS_MESSAGE, 1)
        return StatusMessage(codec.as_int(height, 1, limits.HEIGHT_MAX))
    raise DecodeError("unknown message kind")


def _certified(block: codec.Value, certificate: codec.Value) -> CertifiedBlock:
    decoded_block = Block.from_value(block)
    decoded_certificate = Certificate.from_value(certificate)
    try:
        return CertifiedBlock(decoded_block, decoded_certificate)
    except ValueError as exc:
        raise DecodeError(str(exc)) from None
