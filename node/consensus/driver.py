"""The consensus driver: one asyncio task, one bounded queue, ``tendermint.step`` in the middle.

Owns a node's consensus loop. Every input — a message from the network, a
fired timer, a gossip tick, the start of the next height — goes through one
queue (``limits.CONSENSUS_QUEUE_MAX``) and is handled to the end before the
next. The driver decodes messages (canonical msgpack), checks signatures and
membership (nothing unsigned or from an unknown validator reaches ``step``),
asks the application for blocks and verdicts, signs through the guarded
signer, broadcasts, schedules timeouts, finalises decided blocks and starts
the next height: ``commit_ms`` after the decision, or at once when the node
says transactions wait for a block (``work_waiting``; the pause only lets
transactions gather, and is not a consensus timeout). Gossip: every tick it
re-sends its own messages of the current height (links may lose them),
relays the prevotes that justify its valid value (their sender may have
crashed), says which height it waits for, and sends the certified blocks a
lagging peer misses. Handling is synchronous;
``run`` only waits on the queue, and ``drain`` lets a simulation process the
queue without an event loop.

May import ``node.protocol.limits``, ``node.protocol.codec``, ``node.protocol.crypto``,
``node.protocol.merkle``
and ``node.consensus``; reaches the network, the clock and the application
only through the protocols below and in ``app_interface``.

Every log line passes ``height`` (and ``round`` where there is one) as
structured fields (``extra=``; ``node.run.logs`` writes them as JSON keys).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Final, Protocol, assert_never

from node.consensus import tendermint
from node.consensus.app_interface import ConsensusApplication
from node.consensus.messages import (
    CommitMessage,
    Message,
    ProposalMessage,
    StatusMessage,
    VoteMessage,
    decode_message,
    encode_message,
)
from node.consensus.signer import SignRefused, SignStep, sign_step_of
from node.consensus.tendermint import (
    BlockBuilt,
    CommitReceived,
    ConflictingProposals,
    ConsensusConfig,
    Decide,
    Effect,
    Equivocation,
    Event,
    HeightContext,
    ProposalReceived,
    RequestBlock,
    ScheduleTimeout,
    SendProposal,
    SendVote,
    StartHeight,
    TimeoutFired,
    VoteReceived,
)
from node.consensus.types import (
    Block,
    CertifiedBlock,
    Header,
    Proposal,
    Resume,
    Vote,
    VoteKind,
    is_proposal_signed,
    is_vote_signed,
    verify_certified_block,
)
from node.protocol import limits, merkle
from node.protocol.codec import DecodeError
from node.protocol.crypto import Digest, digest
from node.protocol.errors import ConsensusInvariantBroken

logger = logging.getLogger(__name__)

TIMER_RESERVE: Final = 256  # queue slots network messages may not take: timers always fit
FUTURE_MESSAGES_MAX: Final = 1_024  # messages of coming heights, kept until we get there
SEEN_MAX: Final = 8_192  # digests of handled messages of this height (duplicates are dropped)
OWN_MESSAGES_MAX: Final = 96  # our signed messages of this height, re-sent each tick
CATCHUP_BLOCKS_PER_TICK: Final = 8  # also how far ahead certified blocks are kept
EVIDENCE_MAX: Final = 256
LOCAL_EVENTS_MAX: Final = 1_024  # events one input may cause (own votes, own proposal)


class Transport(Protocol):
    def broadcast(self, data: bytes) -> None:
        """Send ``data`` to every peer (not back to us). May drop; must not block."""
        ...


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time, Unix milliseconds (block times come from it)."""
        ...

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> None: ...


class ConsensusSigner(Protocol):
    """``signer.GuardedSigner``'s face. The sign methods raise ``SignRefused``."""

    @property
    def public_key(self) -> bytes: ...

    def sign_proposal(
        self, height: int, round: int, block_hash: bytes, valid_round: int
    ) -> Proposal: ...

    def sign_vote(
        self, kind: VoteKind, height: int, round: int, block_hash: bytes | None
    ) -> Vote: ...

    def observe_own_vote(self, height: int, round: int, step: SignStep) -> None: ...

    def resume_at(self, height: int) -> Resume: ...


class LockedBlockStore(Protocol):
    """Keeps the block a validator last precommitted, across a crash.

    A validator locked on a block that nobody else holds can re-propose it after
    a restart of the whole network (otherwise that height could stall for good).
    """

    def save(self, block: Block) -> None:
        """Durable when it returns."""
        ...

    def load(self) -> Block | None: ...


class LoopClock:
    """The production clock: wall time and timers on the running asyncio loop."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_later(delay_ms / 1_000, callback)


@dataclass(frozen=True, slots=True)
class DriverConfig:
    consensus: ConsensusConfig = field(default_factory=ConsensusConfig)
    commit_ms: int = limits.TIMEOUT_COMMIT_MS  # pause after a decision before the next height
    gossip_interval_ms: int = max(limits.GOSSIP_INTERVAL_MIN_MS, limits.TIMEOUT_PROPOSE_MS)

    def __post_init__(self) -> None:
        if self.commit_ms < 0 or self.gossip_interval_ms <= 0:
            raise ValueError("commit_ms >= 0 and gossip_interval_ms > 0")


@dataclass(frozen=True, slots=True)
class Inbound:
    data: bytes


@dataclass(frozen=True, slots=True)
class GossipTick:
    pass


@dataclass(frozen=True, slots=True)
class NextHeight:
    height: int


QueueItem = Inbound | TimeoutFired | GossipTick | NextHeight
Evidence = Equivocation | ConflictingProposals


def at(height: int, round: int) -> dict[str, object]:
    """The structured fields of a consensus log line (``extra=``)."""
    return {"height": height, "round": round}


class Driver:
    """One node's consensus loop: build it, then ``await run()`` (or ``start()``, ``drain()``)."""

    def __init__(
        self,
        *,
        chain_id: str,
        config: DriverConfig,
        signer: ConsensusSigner,
        app: ConsensusApplication,
        transport: Transport,
        clock: Clock,
        on_evidence: Callable[[Evidence], None] | None = None,
        locked_blocks: LockedBlockStore | None = None,
        work_waiting: Callable[[], bool] | None = None,
    ) -> None:
        self._chain_id = chain_id
        self._config = config
        self._signer = signer
        self._app = app
        self._transport = transport
        self._clock = clock
        self._on_evidence = on_evidence  # e.g. turn it into an evidence transaction
        self._locked_blocks = locked_blocks
        self._work_waiting = work_waiting  # e.g. "the mempool is not empty"
        self._queue: asyncio.Queue[QueueItem] = asyncio.Queue(maxsize=limits.CONSENSUS_QUEUE_MAX)
        context = self._next_context()
        resume = signer.resume_at(context.height)  # a restart within a height: later round, lock
        self._recovered = self._recover_locked_block(context.height, resume)
        self._state, self._initial_effects = tendermint.start(
            config.consensus, chain_id, signer.public_key, context, resume
        )
        self._started = False
        self._own_messages: deque[bytes] = deque(maxlen=OWN_MESSAGES_MAX)
        self._seen: set[Digest] = set()
        self._future: dict[Digest, bytes] = {}
        self._verdicts: dict[Digest, bool] = {}
        self._lagging_height: int | None = None
        self.evidence: deque[Evidence] = deque(maxlen=EVIDENCE_MAX)

    # --- the outside ------------------------------------------------------------

    @property
    def state(self) -> tendermint.State:
        return self._state

    @property
    def height(self) -> int:
        return self._state.height

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def submit(self, data: bytes) -> bool:
        """A message from the network. False (dropped) when the queue is full."""
        if self._queue.qsize() >= limits.CONSENSUS_QUEUE_MAX - TIMER_RESERVE:
            return False
        self._queue.put_nowait(Inbound(data))
        return True

    def start(self) -> None:
        """Carry out the first height's opening effects and start the gossip ticks."""
        if self._started:
            return
        self._started = True
        state = self._state
        logger.info(
            "consensus starts at height %d round %d",
            state.height,
            state.round,
            extra=at(state.height, state.round),
        )
        self._carry_out(deque(), self._initial_effects)
        self._schedule(self._config.gossip_interval_ms, GossipTick())

    def drain(self) -> int:
        """Handle every queued input now; return how many. For simulations and tests."""
        handled = 0
        while not self._queue.empty():
            self._handle(self._queue.get_nowait())
            handled += 1
        return handled

    async def run(self) -> None:
        self.start()
        while True:
            self._handle(await self._queue.get())

    # --- the loop ---------------------------------------------------------------

    def _handle(self, item: QueueItem) -> None:
        match item:
            case Inbound(data):
                self._on_data(data)
            case TimeoutFired():
                self._feed(item)
            case GossipTick():
                self._on_gossip_tick()
            case NextHeight(height):
                self._on_next_height(height)
            case _:
                assert_never(item)

    def _schedule(self, delay_ms: int, item: QueueItem) -> None:
        self._clock.call_later(delay_ms, partial(self._queue.put_nowait, item))

    def _feed(self, event: Event) -> None:
        self._carry_out(deque([event]), ())

    def _carry_out(self, pending: deque[Event], effects: Iterable[Effect]) -> None:
        """Carry out ``effects``, then step through ``pending`` and what our own effects add."""
        for effect in effects:
            self._perform(effect, pending)
        for _ in range(LOCAL_EVENTS_MAX):
            if not pending:
                return
            self._state, more = tendermint.step(self._state, pending.popleft())
            for effect in more:
                self._perform(effect, pending)
        raise ConsensusInvariantBroken("one input caused too many local events")  # broken invariant

    def _perform(self, effect: Effect, pending: deque[Event]) -> None:
        match effect:
            case SendProposal():
                self._send_proposal(effect, pending)
            case SendVote():
                self._send_vote(effect, pending)
            case ScheduleTimeout(height, round, step, delay_ms):
                self._schedule(delay_ms, TimeoutFired(height, round, step))
            case RequestBlock():
                pending.append(self._build_block(effect))
            case Decide(block, certificate):
                self._log_decision(certificate.height, certificate.round, block.hash())
                self._app.finalize_block(block, certificate)
                self._schedule(self._commit_pause_ms(), NextHeight(block.header.height + 1))
            case Equivocation() | ConflictingProposals():
                self._log_evidence(effect)
                self.evidence.append(effect)
                if self._on_evidence is not None:
                    self._on_evidence(effect)
            case _:
                assert_never(effect)

    def _commit_pause_ms(self) -> int:
        """``commit_ms`` lets transactions gather for the next block; none is needed when
        some already wait (asked after the block is finalised, so not those it held)."""
        if self._work_waiting is not None and self._work_waiting():
            return 0
        return self._config.commit_ms

    def _log_evidence(self, evidence: Evidence) -> None:
        first = evidence.first
        signer = first.validator if isinstance(first, Vote) else first.proposer
        logger.warning(
            "evidence: %s by %s at height %d round %d",
            type(evidence).__name__,
            signer.hex()[:16],
            first.height,
            first.round,
            extra=at(first.height, first.round) | {"validator": signer.hex()},
        )

    def _log_decision(self, height: int, round: int, block_hash: bytes) -> None:
        """A block decided in a later round says a proposer or the network was slow."""
        logger.log(
            logging.INFO if round > 0 else logging.DEBUG,
            "height %d decided in round %d: block %s",
            height,
            round,
            block_hash.hex()[:16],
            extra=at(height, round),
        )

    # --- our own messages ---------------------------------------------------------

    def _send_proposal(self, effect: SendProposal, pending: deque[Event]) -> None:
        block_hash = effect.block.hash()
        try:
            proposal = self._signer.sign_proposal(
                effect.height, effect.round, block_hash, effect.valid_round
            )
        except SignRefused as exc:
            logger.warning(
                "not proposing at height %d round %d: %s",
                effect.height,
                effect.round,
                exc,
                extra=at(effect.height, effect.round),
            )
            return
        self._send(ProposalMessage(proposal, effect.block))
        valid = self._verdicts.get(block_hash, False)
        pending.append(ProposalReceived(proposal, effect.block, valid, self._clock.now_ms()))

    def _send_vote(self, effect: SendVote, pending: deque[Event]) -> None:
        if effect.kind == VoteKind.PRECOMMIT and effect.block_hash is not None:
            self._keep_locked_block(effect.block_hash)
        try:
            vote = self._signer.sign_vote(
                effect.kind, effect.height, effect.round, effect.block_hash
            )
        except SignRefused as exc:
            logger.warning(
                "not voting at height %d round %d: %s",
                effect.height,
                effect.round,
                exc,
                extra=at(effect.height, effect.round),
            )
            return
        self._send(VoteMessage(vote))
        pending.append(VoteReceived(vote))

    def _keep_locked_block(self, block_hash: bytes) -> None:
        """Persist the block we are about to lock on, before the precommit is signed."""
        if self._locked_blocks is None:
            return
        entry = self._state.blocks.get(block_hash)
        if entry is not None:
            self._locked_blocks.save(entry.block)

    def _send(self, message: Message) -> None:
        data = encode_message(message)
        self._own_messages.append(data)
        self._transport.broadcast(data)

    def _recover_locked_block(self, height: int, resume: Resume) -> Block | None:
        """The block we were locked on before a restart within ``height``, if kept."""
        if self._locked_blocks is None or resume.lock is None:
            return None
        block = self._locked_blocks.load()
        if block is None or block.header.height != height:
            return None
        return block if block.hash() == resume.lock.block_hash else None

    def _build_block(self, request: RequestBlock) -> BlockBuilt:
        """getValue(): the application picks and executes; we stamp time and roots.

        After a restart within a height, the block we were locked on is proposed
        again instead (safe: our lock binds our own votes to it anyway)."""
        recovered = self._recovered
        if (
            recovered is not None
            and recovered.header.height == request.height
            and self._app.process_proposal(recovered)
        ):
            self._verdicts[recovered.hash()] = True
            return BlockBuilt(request.height, request.round, recovered)
        time_ms = tendermint.compute_block_time_ms(self._clock.now_ms(), request.previous_time_ms)
        prepared = self._app.prepare_proposal(request.height, time_ms, request.previous_block_hash)
        header = Header(
            chain_id=self._chain_id,
            height=request.height,
            time_ms=time_ms,
            previous_block_hash=request.previous_block_hash,
            tx_root=merkle.tx_root(prepared.txs),
            state_root=prepared.state_root,
            validators_hash=self._state.context.validator_set.hash(),
            next_validators_hash=prepared.next_validators_hash,
            proposer=self._signer.public_key,
        )
        block = Block(header, prepared.txs)
        self._verdicts[block.hash()] = True  # executed by the application just now
        return BlockBuilt(request.height, request.round, block)

    # --- heights ------------------------------------------------------------------

    def _next_context(self) -> HeightContext:
        last = self._app.last_block()
        height = last.height + 1
        return HeightContext(height, self._app.validator_set(height), last.block_hash, last.time_ms)

    def _on_next_height(self, height: int) -> None:
        if not self._state.decided or height != self.height + 1:
            return
        context = self._next_context()
        if context.height != height:
            raise ConsensusInvariantBroken("the application did not finalise the decided block")
        self._own_messages.clear()
        self._seen.clear()
        self._verdicts.clear()
        future, self._future = self._future, {}
        self._feed(StartHeight(context))
        for data in future.values():
            self._on_data(data)

    # --- messages from the network ---------------------------------------------

    def _on_data(self, data: bytes) -> None:
        try:
            message = decode_message(data)
        except DecodeError:
            logger.debug(
                "dropped an undecodable consensus message", extra=at(self.height, self._state.round)
            )
            return
        match message:
            case VoteMessage(vote):
                self._on_vote(vote, data)
            case ProposalMessage(proposal, block):
                self._on_proposal(proposal, block, data)
            case CommitMessage(certified):
                self._on_commit(certified, data)
            case StatusMessage(height):
                self._note_sender_height(height)
            case _:
                assert_never(message)

    def _is_current(self, height: int, data: bytes, horizon: int = 1) -> bool:
        """Sort a message by height: a lagging peer's, a coming height's (kept), or this one's."""
        if height < self.height:
            return False
        if height > self.height + horizon:
            return False
        if height > self.height:
            if len(self._future) < FUTURE_MESSAGES_MAX:
                self._future.setdefault(digest(data), data)
            return False
        key = digest(data)
        if key in self._seen:
            return False
        if len(self._seen) >= SEEN_MAX:
            self._seen.clear()
        self._seen.add(key)
        return True

    def _note_sender_height(self, height: int) -> None:
        """A peer works on ``height``: below ours, it lags (certified blocks will help)."""
        if height < self.height:
            lowest = self._lagging_height
            self._lagging_height = height if lowest is None else min(lowest, height)

    def _on_vote(self, vote: Vote, data: bytes) -> None:
        if vote.validator == self._signer.public_key:
            self._observe_own(vote.height, vote.round, sign_step_of(vote.kind), vote)
        self._note_sender_height(vote.height)
        if not self._is_current(vote.height, data):
            return
        if not self._state.context.validator_set.contains(vote.validator):
            return
        if not is_vote_signed(vote, self._chain_id):
            return
        self._feed(VoteReceived(vote))

    def _on_proposal(self, proposal: Proposal, block: Block, data: bytes) -> None:
        if proposal.proposer == self._signer.public_key:
            self._observe_own(proposal.height, proposal.round, SignStep.PROPOSE, proposal)
        self._note_sender_height(proposal.height)
        if not self._is_current(proposal.height, data):
            return
        expected = self._state.context.validator_set.proposer(proposal.height, proposal.round)
        if proposal.proposer != expected.public_key:
            return
        if block.hash() != proposal.block_hash or not is_proposal_signed(proposal, self._chain_id):
            return
        valid = self._verdict(block)
        if valid is not None:
            self._feed(ProposalReceived(proposal, block, valid, self._clock.now_ms()))

    def _on_commit(self, certified: CertifiedBlock, data: bytes) -> None:
        """Catching up: decide from the certificate, and start the next height without pause."""
        block = certified.block
        height = block.header.height
        if not self._is_current(height, data, CATCHUP_BLOCKS_PER_TICK) or self._state.decided:
            return
        context = self._state.context
        if not verify_certified_block(certified, self._chain_id, context.validator_set):
            return
        valid = self._verdict(block, capped=False)
        self._feed(CommitReceived(block, certified.certificate, bool(valid)))
        if self._state.decided:
            self._on_next_height(height + 1)

    def _observe_own(
        self, height: int, round: int, step: SignStep, signed: Vote | Proposal
    ) -> None:
        """Our key's message from the network (restored backup? twin?): never sign below it."""
        is_signed = (
            is_vote_signed(signed, self._chain_id)
            if isinstance(signed, Vote)
            else is_proposal_signed(signed, self._chain_id)
        )
        if is_signed:
            self._signer.observe_own_vote(height, round, step)

    def _verdict(self, block: Block, *, capped: bool = True) -> bool | None:
        """The application's verdict, once per block and height; None past the cap."""
        block_hash = block.hash()
        if block_hash in self._verdicts:
            return self._verdicts[block_hash]
        if capped and len(self._verdicts) >= tendermint.BLOCKS_PER_HEIGHT_MAX:
            return None
        structure = tendermint.check_block_structure(self._chain_id, self._state.context, block)
        valid = structure is tendermint.BlockVerdict.VALID and self._app.process_proposal(block)
        self._verdicts[block_hash] = valid
        return valid

    # --- gossip -------------------------------------------------------------------

    def _on_gossip_tick(self) -> None:
        for data in list(self._own_messages):
            self._transport.broadcast(data)
        for vote in tendermint.justification(self._state):
            if vote.validator != self._signer.public_key:
                self._transport.broadcast(encode_message(VoteMessage(vote)))
        waiting_for = self.height + 1 if self._state.decided else self.height
        self._transport.broadcast(encode_message(StatusMessage(waiting_for)))
        self._send_catchup()
        self._schedule(self._config.gossip_interval_ms, GossipTick())

    def _send_catchup(self) -> None:
        """Certified blocks from the lowest height a peer showed us, a few per tick."""
        start, self._lagging_height = self._lagging_height, None
        if start is None:
            return
        for height in range(max(start, 1), min(start + CATCHUP_BLOCKS_PER_TICK, self.height)):
            certified = self._app.certified_block(height)
            if certified is None:
                return
            self._transport.broadcast(encode_message(CommitMessage(certified)))
