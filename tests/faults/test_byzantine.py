"""The test-only byzantine switches and journal, without processes: off unless asked;
what each switch sends is signed by the node key and conflicts as described; the raw
transactions are what the ledger decodes and refuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from node.consensus.app_interface import LastBlock, PreparedBlock
from node.consensus.messages import (
    ProposalMessage,
    VoteMessage,
    decode_message,
    encode_message,
)
from node.consensus.signer import FileRecordStore, GuardedSigner
from node.consensus.types import (
    NIL_ROUND,
    Block,
    Certificate,
    CertifiedBlock,
    Header,
    Validator,
    ValidatorSet,
    VoteKind,
    is_proposal_signed,
    is_vote_signed,
)
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import BlockExecutor
from node.ledger.genesis import initial_state
from node.ledger.state import DictView
from node.protocol import merkle
from node.protocol.crypto import Signer, digest
from tools.audit.history import fixture_genesis
from tools.faults import byzantine as byz
from tools.faults.checkers import read_journals

CHAIN = "relance-test"
KEY = Signer(digest(b"byzantine node"))
ROOT = digest(b"state root")


@dataclass
class FakeApp:
    """Just enough of the consensus application for the switches."""

    committed: list[Block] = field(default_factory=list)
    mempool: tuple[bytes, ...] = (b"tx-a", b"tx-b")

    def prepare_proposal(self, height: int, time_ms: int, previous: bytes) -> PreparedBlock:
        root = digest(b"%d:%d" % (height, time_ms))
        return PreparedBlock(self.mempool, root, digest(b"validators"))

    def process_proposal(self, block: Block) -> bool:
        return True

    def finalize_block(self, block: Block, certificate: Certificate) -> None:
        self.committed.append(block)

    def last_block(self) -> LastBlock:
        return LastBlock(len(self.committed), digest(b"last"), 1)

    def validator_set(self, height: int) -> ValidatorSet:
        return ValidatorSet((Validator(KEY.public_key, 1, "byz"),))

    def certified_block(self, height: int) -> CertifiedBlock | None:
        if not 1 <= height <= len(self.committed):
            return None
        block = self.committed[height - 1]
        cert = Certificate(height, 0, block.hash(), ((KEY.public_key, bytes(64)),))
        return CertifiedBlock(block, cert)


@dataclass
class Recorder:
    broadcast_log: list[bytes] = field(default_factory=list)
    sent: list[tuple[bytes, bytes]] = field(default_factory=list)

    def broadcast(self, data: bytes) -> None:
        self.broadcast_log.append(data)

    def send_to(self, peer: bytes, data: bytes) -> None:
        self.sent.append((peer, data))


def _block(height: int, txs: tuple[bytes, ...], time_ms: int = 1_000) -> Block:
    header = Header(
        CHAIN, height, time_ms, digest(b"prev"), merkle.root(txs), ROOT,
        digest(b"validators"), digest(b"validators"), KEY.public_key,
    )  # fmt: skip
    return Block(header, txs)


def _guarded(tmp_path: Path) -> GuardedSigner:
    return GuardedSigner(KEY, CHAIN, FileRecordStore(tmp_path / "sign_state"))


def test_nothing_is_instrumented_unless_the_environment_asks() -> None:
    assert byz.from_environment({}, KEY, CHAIN) is None
    assert byz.from_environment({"OTHER": "x"}, KEY, CHAIN) is None


def test_switches_parse_and_unknown_ones_are_refused() -> None:
    parsed = byz.parse_switches("double-prevote, double-propose,invalid-block:replay")
    assert parsed == byz.Switches(True, True, byz.InvalidKind.REPLAY)
    with pytest.raises(byz.SwitchError):
        byz.parse_switches("double-precommit")
    with pytest.raises(byz.SwitchError):
        byz.parse_switches("invalid-block:free-money")


def test_crafted_payments_are_what_the_ledger_decodes_and_refuses() -> None:
    genesis, _ = fixture_genesis()
    chain = genesis.chain_id
    maker = byz.InvalidTxMaker(byz.InvalidKind.MIXED, KEY, chain)
    app = FakeApp()
    kinds = [maker.make(app, 5) for _ in range(3)]
    assert [k for k, _ in kinds] == [
        byz.InvalidKind.OVERSPEND,
        byz.InvalidKind.BAD_SIGNATURE,
        byz.InvalidKind.BAD_SIGNATURE,  # replay: no committed transaction yet
    ]
    overspend = t.decode_tx(kinds[0][1], chain)
    assert isinstance(overspend, t.SignedTx) and overspend.signature_ok()
    assert isinstance(overspend.tx.payload, t.Pay) and overspend.tx.sequence == 0
    assert overspend.tx.payload.amount_cents == byz.OVERSPEND_CENTS
    bad = t.decode_tx(kinds[1][1], chain)
    assert isinstance(bad, t.SignedTx) and not bad.signature_ok()
    assert bad.tx_id == overspend.tx_id  # the same body, a corrupted signature

    executor = BlockExecutor(DictView(initial_state(genesis)), genesis.genesis_time_ms + 1)
    assert executor.execute(kinds[0][1]).result == Result.INSUFFICIENT_FUNDS
    assert executor.execute(kinds[1][1]).result == Result.BAD_SIGNATURE

    app.committed.append(_block(1, (kinds[0][1],)))
    replay = byz.InvalidTxMaker(byz.InvalidKind.REPLAY, KEY, chain).make(app, 6)
    assert replay == (byz.InvalidKind.REPLAY, kinds[0][1])


def test_an_invalid_block_app_puts_the_bad_transaction_first(tmp_path: Path) -> None:
    journal = byz.Journal(tmp_path / "journal")
    maker = byz.InvalidTxMaker(byz.InvalidKind.OVERSPEND, KEY, CHAIN)
    app = byz.InvalidBlockApp(FakeApp(), maker, journal)
    prepared = app.prepare_proposal(3, 2_000, digest(b"prev"))
    journal.close()
    assert prepared.txs[1:] == FakeApp().mempool
    assert t.decode_tx(prepared.txs[0], CHAIN) != Result.MALFORMED
    assert (tmp_path / "journal").read_text().startswith("byz-invalid 3 overspend ")


def test_a_double_prevoter_sends_a_second_signed_prevote_for_another_value(
    tmp_path: Path,
) -> None:
    inner, signer = Recorder(), _guarded(tmp_path)
    transport = byz.EquivocatingTransport(
        inner, key=KEY, chain_id=CHAIN, app=FakeApp(), send_to=inner.send_to,
        peer_keys=lambda: [b"p" * 32], switches=byz.Switches(double_prevote=True), journal=None,
    )  # fmt: skip
    block_hash = digest(b"block")
    vote = signer.sign_vote(VoteKind.PREVOTE, 7, 0, block_hash)
    transport.broadcast(encode_message(VoteMessage(vote)))
    transport.broadcast(encode_message(VoteMessage(vote)))  # a gossip tick: the same twin
    messages = [decode_message(d) for d in inner.broadcast_log]
    assert len(messages) == 4 and messages[1] == messages[3]
    twin = messages[1]
    assert isinstance(twin, VoteMessage) and twin.vote.block_hash is None
    assert (twin.vote.height, twin.vote.round, twin.vote.kind) == (7, 0, VoteKind.PREVOTE)
    assert is_vote_signed(twin.vote, CHAIN)
    precommit = signer.sign_vote(VoteKind.PRECOMMIT, 7, 0, block_hash)
    transport.broadcast(encode_message(VoteMessage(precommit)))
    assert len(inner.broadcast_log) == 5  # precommits are left alone


def test_a_double_proposer_splits_two_valid_blocks_among_its_peers(tmp_path: Path) -> None:
    inner, signer = Recorder(), _guarded(tmp_path)
    peers = [bytes([n]) * 32 for n in (3, 1, 2)]
    transport = byz.EquivocatingTransport(
        inner, key=KEY, chain_id=CHAIN, app=FakeApp(), send_to=inner.send_to,
        peer_keys=lambda: peers, switches=byz.Switches(double_propose=True), journal=None,
    )  # fmt: skip
    block = _block(4, FakeApp().mempool)
    proposal = signer.sign_proposal(4, 1, block.hash(), NIL_ROUND)
    data = encode_message(ProposalMessage(proposal, block))
    transport.broadcast(data)
    first, second, third = sorted(peers)
    got = {(peer, data_ == data) for peer, data_ in inner.sent}
    assert got == {(first, True), (second, True), (third, False), (first, False)}
    other = decode_message(next(d for p, d in inner.sent if p == third))
    assert isinstance(other, ProposalMessage)
    assert other.block.header.time_ms == block.header.time_ms + 1
    assert other.block.hash() != block.hash() and other.proposal.block_hash == other.block.hash()
    assert (other.proposal.height, other.proposal.round) == (4, 1)
    assert is_proposal_signed(other.proposal, CHAIN)
    assert inner.broadcast_log == []


def test_the_journal_records_signatures_and_received_messages_that_verify(
    tmp_path: Path,
) -> None:
    journal = byz.Journal(tmp_path / "journal")
    signer = byz.JournalingSigner(_guarded(tmp_path), journal)
    own = signer.sign_vote(VoteKind.PREVOTE, 2, 0, None)
    other = Signer(digest(b"peer"))
    seen = GuardedSigner(other, CHAIN, FileRecordStore(tmp_path / "peer_state")).sign_vote(
        VoteKind.PREVOTE, 2, 0, digest(b"x")
    )
    journal.observe(encode_message(VoteMessage(seen)))
    journal.observe(encode_message(VoteMessage(seen)))  # distinct messages only
    journal.observe(b"garbage")
    journal.close()
    lines = (tmp_path / "journal").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["own-vote", "seen-vote"]
    signed = read_journals([tmp_path / "journal"], CHAIN)
    assert signed.entries == 2 and signed.unverified == 0
    assert signed.own_prevotes[(KEY.public_key, 2, 0)] == {None}
    assert signed.votes[(other.public_key, 2, 0, VoteKind.PREVOTE)] == {digest(b"x")}
    assert own.validator == KEY.public_key
