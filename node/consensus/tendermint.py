"""Tendermint BFT as a pure step function: ``step(state, event) -> (state, effects)``.

Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon,
Milosevic, arXiv:1807.04938); ``line NN`` comments point into it. Owns the
consensus state of one height (round, step, locked and valid round/value,
the message log, the "first time" guards), the upon rules, the timeout
schedule, and the block checks that need no application (chain, height,
parent, validators, transaction root, block time).

Pure: no I/O, no clock (time arrives inside events), no randomness, no
asyncio. The state is a frozen dataclass; its mappings are never mutated,
each step builds new ones. Signatures are checked by the driver before an
event gets here; votes are counted by voting power per distinct validator.

Local choices around the paper's rules (the rules themselves are as written):
- getValue() belongs to the application: starting a round as proposer emits
  ``RequestBlock`` and the driver answers with ``BlockBuilt``.
- The proposer schedules ``TimeoutPropose`` too; it is a no-op once its own
  proposal arrived, and covers a proposer whose signer refuses (restart).
- A node restarted within a height resumes in the round after the last it
  signed in, with its lock (``start(resume=...)``; the signer records both),
  not its valid value.
- Deciding ends the height (``Decide``). The driver finalises the block and
  feeds ``StartHeight`` with the next validator set.
- ``CommitReceived``: a verified certificate for a block of this height
  decides it at once (how a node that missed precommits catches up).
- Votes are counted as the paper counts messages: an equivocating validator's
  votes for two values both count (each for its own value; once for "any").
  Keeping only the first would let one equivocation stall a height: a lock
  seen by one honest node could never be justified to the others. The second
  value is reported as ``Equivocation``.
- Memory is bounded: messages more than ``ROUNDS_AHEAD_MAX`` rounds ahead
  are ignored; at most ``VALUES_PER_VOTER_MAX`` values per validator and
  slot, ``PROPOSALS_PER_ROUND_MAX`` proposals a round and
  ``BLOCKS_PER_HEIGHT_MAX`` blocks a height are kept (a validator that signs
  more conflicting votes than that is reported and may cost liveness, never
  safety).

May import ``node.protocol.merkle`` and ``node.consensus.types``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Final, assert_never

from node.consensus.types import (
    FRESH,
    NIL_ROUND,
    Block,
    Certificate,
    Proposal,
    Resume,
    ValidatorSet,
    Vote,
    VoteKind,
    verify_certificate,
)
from node.protocol import limits, merkle

ROUNDS_AHEAD_MAX: Final = 64
PROPOSALS_PER_ROUND_MAX: Final = 2  # the first, and one conflicting one kept as evidence
VALUES_PER_VOTER_MAX: Final = 3  # distinct values one validator's votes count for in a slot
BLOCKS_PER_HEIGHT_MAX: Final = 16
RULE_FIRINGS_MAX: Final = 64  # per event; the rules settle in far fewer


class Step(enum.IntEnum):
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


@dataclass(frozen=True, slots=True)
class ConsensusConfig:
    """Timeouts grow linearly with the round: ``base + round * delta`` (milliseconds)."""

    propose_ms: int = limits.TIMEOUT_PROPOSE_MS
    propose_delta_ms: int = limits.TIMEOUT_PROPOSE_DELTA_MS
    prevote_ms: int = limits.TIMEOUT_PREVOTE_MS
    prevote_delta_ms: int = limits.TIMEOUT_PREVOTE_DELTA_MS
    precommit_ms: int = limits.TIMEOUT_PRECOMMIT_MS
    precommit_delta_ms: int = limits.TIMEOUT_PRECOMMIT_DELTA_MS
    time_drift_max_ms: int = limits.TIME_DRIFT_MAX_MS  # how far ahead a proposed block may be

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{f.name} must be a non-negative integer")
        if min(self.propose_ms, self.prevote_ms) <= 0:
            raise ValueError("timeouts must be positive")
        if self.precommit_ms <= 0:
            raise ValueError("timeouts must be positive")

    def timeout_propose_ms(self, round: int) -> int:
        return self.propose_ms + round * self.propose_delta_ms

    def timeout_prevote_ms(self, round: int) -> int:
        return self.prevote_ms + round * self.prevote_delta_ms

    def timeout_precommit_ms(self, round: int) -> int:
        return self.precommit_ms + round * self.precommit_delta_ms

    def timeout_ms(self, step: Step, round: int) -> int:
        if step is Step.PROPOSE:
            return self.timeout_propose_ms(round)
        if step is Step.PREVOTE:
            return self.timeout_prevote_ms(round)
        return self.timeout_precommit_ms(round)


@dataclass(frozen=True, slots=True)
class HeightContext:
    """What a height is built on: its validators and the previous block."""

    height: int
    validator_set: ValidatorSet
    previous_block_hash: bytes
    previous_time_ms: int


# --- block checks (pure) -------------------------------------------------------


class BlockVerdict(enum.Enum):
    """Why consensus alone finds a block invalid. Stable names: they reach logs and metrics."""

    VALID = "valid"
    WRONG_CHAIN = "wrong_chain"
    WRONG_HEIGHT = "wrong_height"
    WRONG_PARENT = "wrong_parent"
    WRONG_VALIDATORS = "wrong_validators"
    UNKNOWN_PROPOSER = "unknown_proposer"
    TIME_NOT_AFTER_PARENT = "time_not_after_parent"
    TIME_TOO_FAR_AHEAD = "time_too_far_ahead"
    WRONG_TX_ROOT = "wrong_tx_root"


def check_block_structure(chain_id: str, context: HeightContext, block: Block) -> BlockVerdict:
    """The checks every node makes alike, whatever its clock."""
    header = block.header
    if header.chain_id != chain_id:
        return BlockVerdict.WRONG_CHAIN
    if header.height != context.height:
        return BlockVerdict.WRONG_HEIGHT
    if header.previous_block_hash != context.previous_block_hash:
        return BlockVerdict.WRONG_PARENT
    if header.validators_hash != context.validator_set.hash():
        return BlockVerdict.WRONG_VALIDATORS
    if not context.validator_set.contains(header.proposer):
        return BlockVerdict.UNKNOWN_PROPOSER
    if header.time_ms <= context.previous_time_ms:
        return BlockVerdict.TIME_NOT_AFTER_PARENT
    if header.tx_root != merkle.tx_root(block.txs):
        return BlockVerdict.WRONG_TX_ROOT
    return BlockVerdict.VALID


def check_proposed_block(
    chain_id: str, context: HeightContext, block: Block, now_ms: int, drift_max_ms: int
) -> BlockVerdict:
    """``check_block_structure``, and the block time is at most ``drift_max_ms`` ahead of ours."""
    verdict = check_block_structure(chain_id, context, block)
    if verdict is not BlockVerdict.VALID:
        return verdict
    if block.header.time_ms > now_ms + drift_max_ms:
        return BlockVerdict.TIME_TOO_FAR_AHEAD
    return BlockVerdict.VALID


def compute_block_time_ms(now_ms: int, previous_time_ms: int) -> int:
    """The time a proposer stamps: its clock, but always after the previous block."""
    return max(now_ms, previous_time_ms + 1)


# --- events --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartHeight:
    context: HeightContext


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    """A signed proposal from its round's proposer, its block, the application's verdict."""

    proposal: Proposal
    block: Block
    app_valid: bool
    received_ms: int


@dataclass(frozen=True, slots=True)
class VoteReceived:
    """A vote whose signature the driver checked (ours included)."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    height: int
    round: int
    step: Step


@dataclass(frozen=True, slots=True)
class BlockBuilt:
    """The driver's answer to ``RequestBlock``."""

    height: int
    round: int
    block: Block


@dataclass(frozen=True, slots=True)
class CommitReceived:
    """A block of this height with a certificate, and the application's verdict on it."""

    block: Block
    certificate: Certificate
    app_valid: bool


Event = StartHeight | ProposalReceived | VoteReceived | TimeoutFired | BlockBuilt | CommitReceived


# --- effects -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendProposal:
    """Sign (through the signer) and broadcast a proposal of ``block``."""

    height: int
    round: int
    block: Block
    valid_round: int


@dataclass(frozen=True, slots=True)
class SendVote:
    """Sign (through the signer) and broadcast a vote; ``block_hash`` None is nil."""

    kind: VoteKind
    height: int
    round: int
    block_hash: bytes | None


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    height: int
    round: int
    step: Step
    delay_ms: int


@dataclass(frozen=True, slots=True)
class RequestBlock:
    """Build a block to propose (getValue); answer with ``BlockBuilt``."""

    height: int
    round: int
    previous_block_hash: bytes
    previous_time_ms: int


@dataclass(frozen=True, slots=True)
class Decide:
    block: Block
    certificate: Certificate


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Two different votes by one validator for the same height, round and kind."""

    first: Vote
    second: Vote


@dataclass(frozen=True, slots=True)
class ConflictingProposals:
    """Two different proposals by one proposer for the same height and round."""

    first: Proposal
    second: Proposal


Effect = (
    SendProposal
    | SendVote
    | ScheduleTimeout
    | RequestBlock
    | Decide
    | Equivocation
    | ConflictingProposals
)
Effects = tuple[Effect, ...]


# --- state ---------------------------------------------------------------------


class Guard(enum.Enum):
    """The "for the first time" conditions, one per rule and round."""

    PROPOSED = "proposed"  # we sent our proposal of this round
    PREVOTE_TIMEOUT = "prevote_timeout"  # line 34
    LOCK = "lock"  # line 36
    PRECOMMIT_TIMEOUT = "precommit_timeout"  # line 47
    CONFLICT_REPORTED = "conflict_reported"  # conflicting proposals reported


@dataclass(frozen=True, slots=True)
class BlockEntry:
    block: Block
    valid: bool  # valid(v): the application's verdict and check_proposed_block


VoteSlot = tuple[VoteKind, int]  # (kind, round)


@dataclass(frozen=True, slots=True)
class State:
    config: ConsensusConfig
    chain_id: str
    own_key: bytes
    context: HeightContext
    round: int
    step: Step
    locked_round: int
    locked_hash: bytes | None
    valid_round: int
    valid_hash: bytes | None
    decided: bool
    blocks: Mapping[bytes, BlockEntry]
    proposals: Mapping[int, tuple[Proposal, ...]]  # by round, in arrival order
    votes: Mapping[VoteSlot, Mapping[bytes, tuple[Vote, ...]]]  # slot, validator, its values
    guards: frozenset[tuple[Guard, int]]

    @property
    def height(self) -> int:
        return self.context.height


Fired = tuple[State, Effects]


def start(
    config: ConsensusConfig,
    chain_id: str,
    own_key: bytes,
    context: HeightContext,
    resume: Resume = FRESH,
) -> Fired:
    """The state of a node starting at ``context.height`` (line 10: upon start).

    A fresh height starts at round 0. After a restart within a height,
    ``resume`` (from the signer's record) gives a round the node has not signed
    in yet and its lock: lines 22 and 28 still honour it; the valid value is
    not kept. Starting in a later round is what a round skip does anyway.
    """
    lock = resume.lock
    state = State(
        config=config,
        chain_id=chain_id,
        own_key=own_key,
        context=context,
        round=0,
        step=Step.PROPOSE,
        locked_round=NIL_ROUND if lock is None else lock.round,
        locked_hash=None if lock is None else lock.block_hash,
        valid_round=NIL_ROUND,
        valid_hash=None,
        decided=False,
        blocks={},
        proposals={},
        votes={},
        guards=frozenset(),
    )
    state, effects = _start_round(state, resume.round)
    return _settle(state, effects)


def step(state: State, event: Event) -> Fired:
    """Apply one event; return the new state and the effects for the driver, in order."""
    match event:
        case StartHeight(context):
            if context.height <= state.height:
                return state, ()
            return start(state.config, state.chain_id, state.own_key, context)
        case ProposalReceived():
            state, effects = _receive_proposal(state, event)
        case VoteReceived(vote):
            state, effects = _receive_vote(state, vote)
        case TimeoutFired():
            state, effects = _on_timeout(state, event)
        case BlockBuilt():
            state, effects = _on_block_built(state, event)
        case CommitReceived():
            state, effects = _on_commit(state, event)
        case _:
            assert_never(event)
    return _settle(state, effects)


def justification(state: State) -> tuple[Vote, ...]:
    """The prevotes that made our valid value valid (2f + 1 for it in ``valid_round``).

    Line 28 lets others accept a re-proposal only once they hold these too. The
    paper assumes every message a correct node received reaches all others; a
    sender that crashes and forgets what it sent breaks that, so the driver
    relays these.
    """
    if state.valid_hash is None:
        return ()
    return tuple(_votes_for(state, VoteKind.PREVOTE, state.valid_round, state.valid_hash))


# --- intake --------------------------------------------------------------------


def _is_round_in_window(state: State, round: int) -> bool:
    return round <= state.round + ROUNDS_AHEAD_MAX


def _receive_vote(state: State, vote: Vote) -> Fired:
    """Log a vote; a second value from one validator is kept (it counts) and reported once."""
    if state.decided or vote.height != state.height or not _is_round_in_window(state, vote.round):
        return state, ()
    if not state.context.validator_set.contains(vote.validator):
        return state, ()
    slot = (vote.kind, vote.round)
    slot_votes = state.votes.get(slot, {})
    cast = slot_votes.get(vote.validator, ())
    if any(v.block_hash == vote.block_hash for v in cast) or len(cast) >= VALUES_PER_VOTER_MAX:
        return state, ()
    votes = {**state.votes, slot: {**slot_votes, vote.validator: (*cast, vote)}}
    state = replace(state, votes=votes)
    return state, (Equivocation(cast[0], vote),) if len(cast) == 1 else ()


def _receive_proposal(state: State, event: ProposalReceived) -> Fired:
    proposal, block = event.proposal, event.block
    if not _is_acceptable_proposal(state, proposal, block):
        return state, ()
    in_round = state.proposals.get(proposal.round, ())
    if any(_same_proposal(p, proposal) for p in in_round):
        return state, ()
    effects: Effects = ()
    if in_round and (Guard.CONFLICT_REPORTED, proposal.round) not in state.guards:
        state = _guard(state, Guard.CONFLICT_REPORTED, proposal.round)
        effects = (ConflictingProposals(in_round[0], proposal),)
    if len(in_round) >= PROPOSALS_PER_ROUND_MAX:
        return state, effects
    if proposal.block_hash not in state.blocks:
        if len(state.blocks) >= BLOCKS_PER_HEIGHT_MAX:
            return state, effects
        entry = BlockEntry(block, _is_valid_block(state, event))
        state = replace(state, blocks={**state.blocks, proposal.block_hash: entry})
    proposals = {**state.proposals, proposal.round: (*in_round, proposal)}
    return replace(state, proposals=proposals), effects


def _is_acceptable_proposal(state: State, proposal: Proposal, block: Block) -> bool:
    """From the round's proposer, for this height, about this block, with a sane valid round."""
    if state.decided or proposal.height != state.height:
        return False
    if not _is_round_in_window(state, proposal.round):
        return False
    expected = state.context.validator_set.proposer(proposal.height, proposal.round)
    if proposal.proposer != expected.public_key:
        return False
    if not NIL_ROUND <= proposal.valid_round < proposal.round:
        return False
    return block.hash() == proposal.block_hash


def _same_proposal(a: Proposal, b: Proposal) -> bool:
    return (a.block_hash, a.valid_round) == (b.block_hash, b.valid_round)


def _is_valid_block(state: State, event: ProposalReceived) -> bool:
    """valid(v): the application's verdict and the consensus checks, block time included."""
    verdict = check_proposed_block(
        state.chain_id,
        state.context,
        event.block,
        event.received_ms,
        state.config.time_drift_max_ms,
    )
    return event.app_valid and verdict is BlockVerdict.VALID


def _on_timeout(state: State, event: TimeoutFired) -> Fired:
    if state.decided or (event.height, event.round) != (state.height, state.round):
        return state, ()
    if event.step is Step.PROPOSE and state.step is Step.PROPOSE:  # line 57
        return _prevote(state, None)
    if event.step is Step.PREVOTE and state.step is Step.PREVOTE:  # line 61
        return _precommit(state, None)
    if event.step is Step.PRECOMMIT:  # line 65
        return _start_round(state, state.round + 1)
    return state, ()


def _on_block_built(state: State, event: BlockBuilt) -> Fired:
    if state.decided or (event.height, event.round) != (state.height, state.round):
        return state, ()
    if state.step is not Step.PROPOSE or not _is_own_proposer(state, state.round):
        return state, ()
    if (Guard.PROPOSED, state.round) in state.guards:
        return state, ()
    state = _guard(state, Guard.PROPOSED, state.round)
    return state, (SendProposal(state.height, state.round, event.block, NIL_ROUND),)


def _on_commit(state: State, event: CommitReceived) -> Fired:
    """Decide from a certificate: 2f + 1 precommits mean at least f + 1 honest ones."""
    block, cert = event.block, event.certificate
    if state.decided or block.header.height != state.height or not event.app_valid:
        return state, ()
    if cert.height != state.height or cert.block_hash != block.hash():
        return state, ()
    if check_block_structure(state.chain_id, state.context, block) is not BlockVerdict.VALID:
        return state, ()
    if not verify_certificate(cert, state.chain_id, state.context.validator_set):
        return state, ()
    return replace(state, decided=True), (Decide(block, cert),)


# --- the upon rules ------------------------------------------------------------

Rule = Callable[[State], Fired | None]


def _settle(state: State, effects: Iterable[Effect]) -> Fired:
    """Fire upon rules until none applies (each firing changes step, round or a guard)."""
    collected = list(effects)
    for _ in range(RULE_FIRINGS_MAX):
        fired = _fire_one(state)
        if fired is None:
            return state, tuple(collected)
        state, more = fired
        collected.extend(more)
    raise RuntimeError("upon rules did not settle")  # a broken invariant: crash


def _fire_one(state: State) -> Fired | None:
    if state.decided:
        return None
    for rule in _RULES:
        fired = rule(state)
        if fired is not None:
            return fired
    return None


def _upon_decision(state: State) -> Fired | None:
    """Line 49: a proposal of round r and 2f + 1 precommits for it in r; decide if valid."""
    for kind, round in state.votes:
        if kind is not VoteKind.PRECOMMIT:
            continue
        for proposal in state.proposals.get(round, ()):
            entry = state.blocks[proposal.block_hash]
            power = _power_for(state, VoteKind.PRECOMMIT, round, proposal.block_hash)
            if entry.valid and _is_quorum(state, power):
                return _decide(state, entry.block, round)
    return None


def _upon_round_skip(state: State) -> Fired | None:
    """Line 55: f + 1 (by power) validators are in a higher round: join the highest such."""
    rounds = {round for _, round in state.votes} | set(state.proposals)
    for round in sorted((r for r in rounds if r > state.round), reverse=True):
        if _sender_power(state, round) >= state.context.validator_set.skip_power:
            return _start_round(state, round)
    return None


def _upon_fresh_proposal(state: State) -> Fired | None:
    """Line 22: the round's proposal with no valid round, while in propose."""
    if state.step is not Step.PROPOSE:
        return None
    for proposal in state.proposals.get(state.round, ()):
        if proposal.valid_round != NIL_ROUND:
            continue
        entry = state.blocks[proposal.block_hash]
        unlocked = state.locked_round == NIL_ROUND or state.locked_hash == proposal.block_hash
        return _prevote(state, proposal.block_hash if entry.valid and unlocked else None)
    return None


def _upon_proposal_with_valid_round(state: State) -> Fired | None:
    """Line 28: a re-proposal backed by 2f + 1 prevotes of its valid round, while in propose."""
    if state.step is not Step.PROPOSE:
        return None
    for proposal in state.proposals.get(state.round, ()):
        valid_round = proposal.valid_round
        if not 0 <= valid_round < state.round:
            continue
        power = _power_for(state, VoteKind.PREVOTE, valid_round, proposal.block_hash)
        if not _is_quorum(state, power):
            continue
        entry = state.blocks[proposal.block_hash]
        unlocked = state.locked_round <= valid_round or state.locked_hash == proposal.block_hash
        return _prevote(state, proposal.block_hash if entry.valid and unlocked else None)
    return None


def _upon_prevote_quorum(state: State) -> Fired | None:
    """Line 34: 2f + 1 prevotes for anything, while in prevote, the first time."""
    if state.step is not Step.PREVOTE or (Guard.PREVOTE_TIMEOUT, state.round) in state.guards:
        return None
    if not _is_quorum(state, _power_any(state, VoteKind.PREVOTE, state.round)):
        return None
    timeout = _timeout(state, Step.PREVOTE)
    return _guard(state, Guard.PREVOTE_TIMEOUT, state.round), (timeout,)


def _upon_prevote_value_quorum(state: State) -> Fired | None:
    """Line 36: the proposal and 2f + 1 prevotes for it, valid, step >= prevote, first time."""
    if state.step < Step.PREVOTE or (Guard.LOCK, state.round) in state.guards:
        return None
    for proposal in state.proposals.get(state.round, ()):
        entry = state.blocks[proposal.block_hash]
        power = _power_for(state, VoteKind.PREVOTE, state.round, proposal.block_hash)
        if entry.valid and _is_quorum(state, power):
            return _lock(state, proposal.block_hash)
    return None


def _upon_prevote_nil_quorum(state: State) -> Fired | None:
    """Line 44: 2f + 1 prevotes for nil, while in prevote."""
    if state.step is not Step.PREVOTE:
        return None
    if not _is_quorum(state, _power_for(state, VoteKind.PREVOTE, state.round, None)):
        return None
    return _precommit(state, None)


def _upon_precommit_quorum(state: State) -> Fired | None:
    """Line 47: 2f + 1 precommits for anything, the first time."""
    if (Guard.PRECOMMIT_TIMEOUT, state.round) in state.guards:
        return None
    if not _is_quorum(state, _power_any(state, VoteKind.PRECOMMIT, state.round)):
        return None
    timeout = _timeout(state, Step.PRECOMMIT)
    return _guard(state, Guard.PRECOMMIT_TIMEOUT, state.round), (timeout,)


_RULES: Final[tuple[Rule, ...]] = (
    _upon_decision,
    _upon_round_skip,
    _upon_fresh_proposal,
    _upon_proposal_with_valid_round,
    _upon_prevote_quorum,
    _upon_prevote_value_quorum,
    _upon_prevote_nil_quorum,
    _upon_precommit_quorum,
)


# --- actions -------------------------------------------------------------------


def _start_round(state: State, round: int) -> Fired:
    """StartRound (line 11): propose the valid value if any, else ask for a block."""
    state = replace(state, round=round, step=Step.PROPOSE)
    effects: list[Effect] = []
    if _is_own_proposer(state, round):
        if state.valid_hash is not None:
            block = state.blocks[state.valid_hash].block
            effects.append(SendProposal(state.height, round, block, state.valid_round))
            state = _guard(state, Guard.PROPOSED, round)
        else:
            context = state.context
            request = RequestBlock(
                state.height, round, context.previous_block_hash, context.previous_time_ms
            )
            effects.append(request)
    effects.append(_timeout(state, Step.PROPOSE))
    return state, tuple(effects)


def _prevote(state: State, block_hash: bytes | None) -> Fired:
    state = replace(state, step=Step.PREVOTE)
    return state, _vote(state, VoteKind.PREVOTE, block_hash)


def _precommit(state: State, block_hash: bytes | None) -> Fired:
    state = replace(state, step=Step.PRECOMMIT)
    return state, _vote(state, VoteKind.PRECOMMIT, block_hash)


def _lock(state: State, block_hash: bytes) -> Fired:
    """Lines 37-43: lock and precommit if still in prevote; the value becomes valid anyway."""
    effects: Effects = ()
    if state.step is Step.PREVOTE:
        state = replace(state, locked_round=state.round, locked_hash=block_hash)
        state, effects = _precommit(state, block_hash)
    state = replace(state, valid_round=state.round, valid_hash=block_hash)
    return _guard(state, Guard.LOCK, state.round), effects


def _decide(state: State, block: Block, round: int) -> Fired:
    block_hash = block.hash()
    votes = _votes_for(state, VoteKind.PRECOMMIT, round, block_hash)
    signatures = tuple(sorted((v.validator, v.signature) for v in votes))
    certificate = Certificate(state.height, round, block_hash, signatures)
    return replace(state, decided=True), (Decide(block, certificate),)


def _vote(state: State, kind: VoteKind, block_hash: bytes | None) -> Effects:
    if not state.context.validator_set.contains(state.own_key):
        return ()  # an observer follows the rules but never votes
    return (SendVote(kind, state.height, state.round, block_hash),)


def _timeout(state: State, step: Step) -> ScheduleTimeout:
    delay_ms = state.config.timeout_ms(step, state.round)
    return ScheduleTimeout(state.height, state.round, step, delay_ms)


def _guard(state: State, guard: Guard, round: int) -> State:
    return replace(state, guards=state.guards | {(guard, round)})


# --- tallies -------------------------------------------------------------------


def _is_own_proposer(state: State, round: int) -> bool:
    return state.context.validator_set.proposer(state.height, round).public_key == state.own_key


def _is_quorum(state: State, power: int) -> bool:
    return power >= state.context.validator_set.quorum_power


def _votes_for(state: State, kind: VoteKind, round: int, block_hash: bytes | None) -> list[Vote]:
    """The votes for ``block_hash`` in a slot, at most one per validator."""
    cast = state.votes.get((kind, round), {}).values()
    return [v for values in cast for v in values if v.block_hash == block_hash]


def _power_for(state: State, kind: VoteKind, round: int, block_hash: bytes | None) -> int:
    powers = state.context.validator_set
    return sum(powers.power_of(v.validator) for v in _votes_for(state, kind, round, block_hash))


def _power_any(state: State, kind: VoteKind, round: int) -> int:
    votes = state.votes.get((kind, round), {})
    return sum(state.context.validator_set.power_of(key) for key in votes)


def _sender_power(state: State, round: int) -> int:
    """Power of the distinct validators with any message (proposal or vote) in ``round``."""
    senders = {p.proposer for p in state.proposals.get(round, ())}
    for kind in VoteKind:
        senders.update(state.votes.get((kind, round), {}))
    return sum(state.context.validator_set.power_of(key) for key in senders)
