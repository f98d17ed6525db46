"""Test-only instruments: byzantine switches and the consensus journal. Off unless asked.

Nothing here runs in a node started by ``relance-node start``: only the test
entry point ``python -m tools.faults.node`` reads these variables, and
``from_environment`` returns None unless one of them is set (the daemon then
wires the parts exactly as without this module):

``RELANCE_TEST_BYZANTINE`` — a comma-separated list of faults this validator
commits with its raw node key, bypassing the guarded signer:

- ``double-prevote``: every prevote goes out twice, as decided and for
  another value (nil, or a phantom block when the real one is nil);
- ``double-propose``: every fresh proposal goes out as two different valid
  blocks (the second stamped one millisecond later): the first to all peers
  but the last, the second to the last peer and to the first (who so holds
  both, and the evidence);
- ``invalid-block:<kind>``: every fresh block it proposes holds one invalid
  transaction, ``kind`` one of ``overspend`` (a payment from a key that holds
  nothing), ``bad-signature`` (the same payment, signature corrupted),
  ``replay`` (a transaction already in a block, its sequence spent; a bad
  signature while no block holds one yet) or ``mixed`` (the three in turn).

``RELANCE_TEST_JOURNAL`` — a file path: the node appends one line per
consensus signature it makes (``own-vote``, ``own-proposal``; faults:
``byz-vote``, ``byz-proposal``, ``byz-invalid``) before the signature leaves
the signer, and one per distinct vote or proposal it receives
(``seen-vote``, ``seen-proposal`` with the block header). Lines are
``tag hex...``; the checkers of ``tools.faults`` verify every signature
themselves, so the journal needs no trust, only completeness: every message
the node signs passes through the wrapped signer, and each line reaches the
kernel (line-buffered ``write``) before the signature is returned, so even
SIGKILL cannot lose a line for a message that was sent.

Transactions are crafted as raw canonical bytes (this package never knows
the ledger): a ``pay`` is ``[1, 7, chain_id, sender, sequence, campaign,
merchant, cents, memo]`` signed under ``Domain.TX``; a test checks that the
ledger decodes them as meant.

Imports ``node.protocol.codec``, ``node.protocol.crypto``, ``node.protocol.merkle`` and
``node.consensus`` only.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, TextIO

from node.consensus.app_interface import ConsensusApplication, LastBlock, PreparedBlock
from node.consensus.driver import ConsensusSigner, Transport
from node.consensus.messages import ProposalMessage, VoteMessage, decode_message, encode_message
from node.consensus.signer import SignStep
from node.consensus.types import (
    NIL_ROUND,
    Block,
    Certificate,
    CertifiedBlock,
    Proposal,
    Resume,
    ValidatorSet,
    Vote,
    VoteKind,
    proposal_signing_body,
    vote_signing_body,
)
from node.protocol import codec, merkle
from node.protocol.codec import DecodeError
from node.protocol.crypto import Digest, Domain, Signer, digest
from node.run.hooks import PeerKeys, SendTo

logger = logging.getLogger(__name__)

ENV_BYZANTINE: Final = "RELANCE_TEST_BYZANTINE"
ENV_JOURNAL: Final = "RELANCE_TEST_JOURNAL"
JOURNAL_LINES_MAX: Final = 2_000_000  # then the journal stops (and says so)
SEEN_MAX: Final = 100_000  # digests of journalled inbound messages (cleared when full)
TWINS_MAX: Final = 256  # faulty messages kept to re-send the same ones on gossip ticks
REPLAY_SEARCH_BLOCKS_MAX: Final = 64  # how far back a replayed transaction is looked for
PHANTOM_HASH: Final = digest(b"relance/test/a block nobody proposed")

PAY_KIND: Final = 7  # node.ledger.tx.Kind.PAY (protocol number)
TX_VERSION: Final = 2  # node.ledger.tx.VERSION (protocol 2)
OVERSPEND_CENTS: Final = 1_000_000


class InvalidKind(enum.Enum):
    OVERSPEND = "overspend"
    BAD_SIGNATURE = "bad-signature"
    REPLAY = "replay"
    MIXED = "mixed"


class SwitchError(ValueError):
    """The environment asks for a fault that does not exist."""


@dataclass(frozen=True, slots=True)
class Switches:
    double_prevote: bool = False
    double_propose: bool = False
    invalid_block: InvalidKind | None = None

    @property
    def any(self) -> bool:
        return self.double_prevote or self.double_propose or self.invalid_block is not None


def parse_switches(text: str) -> Switches:
    """``double-prevote,double-propose,invalid-block:<kind>`` (any subset)."""
    switches = Switches()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item == "double-prevote":
            switches = replace(switches, double_prevote=True)
        elif item == "double-propose":
            switches = replace(switches, double_propose=True)
        elif item.startswith("invalid-block:"):
            try:
                kind = InvalidKind(item.removeprefix("invalid-block:"))
            except ValueError:
                raise SwitchError(
                    f"{ENV_BYZANTINE}: unknown invalid block kind in {item!r}"
                ) from None
            switches = replace(switches, invalid_block=kind)
        else:
            raise SwitchError(f"{ENV_BYZANTINE}: unknown fault {item!r}")
    return switches


# --- the journal -------------------------------------------------------------------------


class Journal:
    """Append-only, line-buffered: each line is in the kernel when ``write`` returns."""

    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("a", encoding="ascii", buffering=1)
        self._lines = 0
        self._seen: set[Digest] = set()

    def write(self, tag: str, *fields: bytes | int | str) -> None:
        if self._lines >= JOURNAL_LINES_MAX:
            return
        self._lines += 1
        if self._lines == JOURNAL_LINES_MAX:
            logger.warning("journal full after %d lines: no more are written", self._lines)
        text = " ".join(f.hex() if isinstance(f, bytes) else str(f) for f in fields)
        self._file.write(f"{tag} {text}\n")

    def observe(self, data: bytes) -> None:
        """A consensus message from the network: journal each distinct vote and proposal."""
        try:
            message = decode_message(data)
        except DecodeError:
            return
        match message:
            case VoteMessage(vote):
                record = vote.encode()
                if self._first_time(record):
                    self.write("seen-vote", record)
            case ProposalMessage(proposal, block):
                record = proposal.encode()
                if self._first_time(record):
                    self.write("seen-proposal", record, block.header.encode())
            case _:
                return

    def _first_time(self, record: bytes) -> bool:
        key = digest(record)
        if key in self._seen:
            return False
        if len(self._seen) >= SEEN_MAX:
            self._seen.clear()
        self._seen.add(key)
        return True

    def close(self) -> None:
        self._file.close()


class JournalingSigner:
    """The guarded signer, journalling each signature before handing it out."""

    def __init__(self, inner: ConsensusSigner, journal: Journal) -> None:
        self._inner = inner
        self._journal = journal

    @property
    def public_key(self) -> bytes:
        return self._inner.public_key

    def sign_proposal(
        self, height: int, round: int, block_hash: bytes, valid_round: int
    ) -> Proposal:
        proposal = self._inner.sign_proposal(height, round, block_hash, valid_round)
        self._journal.write("own-proposal", proposal.encode())
        return proposal

    def sign_vote(self, kind: VoteKind, height: int, round: int, block_hash: bytes | None) -> Vote:
        vote = self._inner.sign_vote(kind, height, round, block_hash)
        self._journal.write("own-vote", vote.encode())
        return vote

    def observe_own_vote(self, height: int, round: int, step: SignStep) -> None:
        self._inner.observe_own_vote(height, round, step)

    def resume_at(self, height: int) -> Resume:
        return self._inner.resume_at(height)


# --- raw transactions --------------------------------------------------------------------


def overspend_key(node_key: Signer) -> Signer:
    """A key no ledger record knows (so it holds nothing), derived from the node key."""
    return Signer(digest(b"relance/test/overspend:" + node_key.seed))


def craft_pay(key: Signer, chain_id: str, sequence: int, cents: int, memo: str) -> bytes:
    """A canonical, signed ``pay`` from ``key`` (raw bytes: this package never knows the ledger)."""
    merchant = digest(b"relance/test/merchant")
    body = codec.encode(
        [TX_VERSION, PAY_KIND, chain_id, key.public_key, sequence, "test", merchant, cents, memo]
    )
    return codec.encode([body, key.sign(Domain.TX, chain_id, body)])


def corrupt_signature(tx: bytes) -> bytes:
    """The same transaction with one bit of its signature flipped."""
    body, signature = codec.as_list(codec.decode(tx, len(tx)), 2)
    if not isinstance(body, bytes) or not isinstance(signature, bytes):
        raise ValueError("not a transaction")
    return codec.encode([body, signature[:-1] + bytes([signature[-1] ^ 1])])


class InvalidTxMaker:
    """One invalid transaction per fresh proposal, of the kind asked (or the three in turn)."""

    def __init__(self, kind: InvalidKind, key: Signer, chain_id: str) -> None:
        self._kinds = (
            itertools.cycle((InvalidKind.OVERSPEND, InvalidKind.BAD_SIGNATURE, InvalidKind.REPLAY))
            if kind is InvalidKind.MIXED
            else itertools.repeat(kind)
        )
        self._key = overspend_key(key)
        self._chain_id = chain_id

    def make(self, app: ConsensusApplication, height: int) -> tuple[InvalidKind, bytes]:
        kind = next(self._kinds)
        overspend = craft_pay(self._key, self._chain_id, 0, OVERSPEND_CENTS, f"overspend@{height}")
        if kind is InvalidKind.OVERSPEND:
            return kind, overspend
        if kind is InvalidKind.REPLAY:
            replayed = _committed_tx(app)
            if replayed is not None:
                return kind, replayed
            logger.warning("byzantine: no committed transaction to replay yet: bad signature")
        return InvalidKind.BAD_SIGNATURE, corrupt_signature(overspend)


def _committed_tx(app: ConsensusApplication) -> bytes | None:
    top = app.last_block().height
    for height in range(top, max(0, top - REPLAY_SEARCH_BLOCKS_MAX), -1):
        certified = app.certified_block(height)
        if certified is not None and certified.block.txs:
            return certified.block.txs[0]
    return None


class InvalidBlockApp:
    """The application, except that each block we propose carries one invalid transaction."""

    def __init__(self, inner: ConsensusApplication, maker: InvalidTxMaker, journal: Journal | None):
        self._inner = inner
        self._maker = maker
        self._journal = journal

    def prepare_proposal(
        self, height: int, time_ms: int, previous_block_hash: bytes
    ) -> PreparedBlock:
        prepared = self._inner.prepare_proposal(height, time_ms, previous_block_hash)
        kind, bad = self._maker.make(self._inner, height)
        logger.warning(
            "byzantine: proposing an invalid block (%s) at height %d", kind.value, height
        )
        if self._journal is not None:
            self._journal.write("byz-invalid", height, kind.value, bad)
        return replace(prepared, txs=(bad, *prepared.txs))

    def process_proposal(self, block: Block) -> bool:
        return self._inner.process_proposal(block)

    def finalize_block(self, block: Block, certificate: Certificate) -> None:
        self._inner.finalize_block(block, certificate)

    def last_block(self) -> LastBlock:
        return self._inner.last_block()

    def validator_set(self, height: int) -> ValidatorSet:
        return self._inner.validator_set(height)

    def certified_block(self, height: int) -> CertifiedBlock | None:
        return self._inner.certified_block(height)


# --- equivocation ------------------------------------------------------------------------


class EquivocatingTransport:
    """Sends what the driver decided, plus conflicting messages signed with the raw key."""

    def __init__(
        self,
        inner: Transport,
        *,
        key: Signer,
        chain_id: str,
        app: ConsensusApplication,
        send_to: SendTo,
        peer_keys: PeerKeys,
        switches: Switches,
        journal: Journal | None,
    ) -> None:
        self._inner = inner
        self._key = key
        self._chain_id = chain_id
        self._app = app
        self._send_to = send_to
        self._peer_keys = peer_keys
        self._switches = switches
        self._journal = journal
        self._twins: dict[tuple[int, int, int], bytes] = {}  # (height, round, kind) -> message

    def broadcast(self, data: bytes) -> None:
        message = decode_message(data)  # our own driver's: it decodes
        if (
            self._switches.double_propose
            and isinstance(message, ProposalMessage)
            and message.proposal.valid_round == NIL_ROUND
        ):
            self._split(data, message)
            return
        self._inner.broadcast(data)
        if (
            self._switches.double_prevote
            and isinstance(message, VoteMessage)
            and message.vote.kind is VoteKind.PREVOTE
        ):
            vote = message.vote
            twin = self._twin((vote.height, vote.round, 0), lambda: self._other_prevote(vote))
            self._inner.broadcast(twin)

    def _split(self, data: bytes, message: ProposalMessage) -> None:
        peers = sorted(self._peer_keys())
        if len(peers) < 2:
            self._inner.broadcast(data)
            return
        proposal = message.proposal
        other = self._twin(
            (proposal.height, proposal.round, 1), lambda: self._other_proposal(message)
        )
        for peer in peers[:-1]:
            self._send_to(peer, data)
        self._send_to(peers[-1], other)
        self._send_to(peers[0], other)

    def _twin(self, slot: tuple[int, int, int], make: Callable[[], bytes]) -> bytes:
        found = self._twins.get(slot)
        if found is None:
            if len(self._twins) >= TWINS_MAX:
                self._twins.clear()
            found = self._twins[slot] = make()
        return found

    def _other_prevote(self, vote: Vote) -> bytes:
        other = PHANTOM_HASH if vote.block_hash is None else None
        body = vote_signing_body(VoteKind.PREVOTE, vote.height, vote.round, other, vote.validator)
        signature = self._key.sign(Domain.VOTE, self._chain_id, body)
        twin = Vote(VoteKind.PREVOTE, vote.height, vote.round, other, vote.validator, signature)
        logger.warning("byzantine: double prevote at height %d round %d", vote.height, vote.round)
        if self._journal is not None:
            self._journal.write("byz-vote", twin.encode())
        return encode_message(VoteMessage(twin))

    def _other_proposal(self, message: ProposalMessage) -> bytes:
        """A second valid block for the same height and round: same content, 1 ms later."""
        header, proposal = message.block.header, message.proposal
        time_ms = header.time_ms + 1
        prepared = self._app.prepare_proposal(header.height, time_ms, header.previous_block_hash)
        other = Block(
            replace(
                header,
                time_ms=time_ms,
                tx_root=merkle.tx_root(prepared.txs),
                state_root=prepared.state_root,
                next_validators_hash=prepared.next_validators_hash,
            ),
            prepared.txs,
        )
        body = proposal_signing_body(
            proposal.height, proposal.round, other.hash(), NIL_ROUND, proposal.proposer
        )
        signature = self._key.sign(Domain.PROPOSAL, self._chain_id, body)
        twin = Proposal(
            proposal.height, proposal.round, other.hash(), NIL_ROUND, proposal.proposer, signature
        )
        logger.warning(
            "byzantine: double proposal at height %d round %d", proposal.height, proposal.round
        )
        if self._journal is not None:
            self._journal.write("byz-proposal", twin.encode(), other.header.encode())
        return encode_message(ProposalMessage(twin, other))


# --- wiring --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instruments:
    """What the environment asked for; ``install`` wraps the driver's three collaborators."""

    key: Signer
    chain_id: str
    switches: Switches
    journal: Journal | None

    def observe(self, data: bytes) -> None:
        """A consensus message from the network (journalled when a journal is asked for)."""
        if self.journal is not None:
            self.journal.observe(data)

    def install(
        self,
        signer: ConsensusSigner,
        app: ConsensusApplication,
        transport: Transport,
        send_to: SendTo,
        peer_keys: PeerKeys,
    ) -> tuple[ConsensusSigner, ConsensusApplication, Transport]:
        if self.journal is not None:
            signer = JournalingSigner(signer, self.journal)
        honest_app = app
        if self.switches.invalid_block is not None:
            maker = InvalidTxMaker(self.switches.invalid_block, self.key, self.chain_id)
            app = InvalidBlockApp(app, maker, self.journal)
        if self.switches.double_prevote or self.switches.double_propose:
            transport = EquivocatingTransport(
                transport,
                key=self.key,
                chain_id=self.chain_id,
                app=honest_app,
                send_to=send_to,
                peer_keys=peer_keys,
                switches=self.switches,
                journal=self.journal,
            )
        return signer, app, transport

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def from_environment(environ: Mapping[str, str], key: Signer, chain_id: str) -> Instruments | None:
    """The instruments the environment asks for; None (the normal case) when it asks none."""
    switches = parse_switches(environ.get(ENV_BYZANTINE, ""))
    journal_path = environ.get(ENV_JOURNAL, "")
    if not switches.any and not journal_path:
        return None
    if switches.any:
        text = environ.get(ENV_BYZANTINE)
        logger.warning("%s=%s: this validator is BYZANTINE (tests only)", ENV_BYZANTINE, text)
    journal = Journal(Path(journal_path)) if journal_path else None
    return Instruments(key, chain_id, switches, journal)
