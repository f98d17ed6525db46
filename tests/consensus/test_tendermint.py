"""The pure step function, rule by rule (line numbers of Algorithm 1, arXiv:1807.04938).

Node 0 of four validators of power 1 is under test unless said otherwise;
``proposer(1, r)`` is validator ``(1 + r) % 4``. Quorum is 3, round skip 2.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    State,
    Step,
    TimeoutFired,
    VoteReceived,
    compute_block_time_ms,
    start,
    step,
)
from node.consensus.types import (
    Block,
    Certificate,
    Header,
    Lock,
    Proposal,
    Resume,
    Validator,
    ValidatorSet,
    Vote,
    VoteKind,
    proposal_signing_body,
    verify_certificate,
    vote_signing_body,
)
from node.protocol import merkle
from node.protocol.crypto import Domain, Signer, digest

CHAIN = "relance-test"
KEYS = [Signer(digest(f"tendermint-key-{i}".encode())) for i in range(5)]
VS = ValidatorSet(tuple(Validator(k.public_key, 1, f"v{i}") for i, k in enumerate(KEYS[:4])))
CONFIG = ConsensusConfig(
    propose_ms=1_000,
    propose_delta_ms=100,
    prevote_ms=500,
    prevote_delta_ms=50,
    precommit_ms=500,
    precommit_delta_ms=50,
    time_drift_max_ms=1_000,
)
PREVIOUS = digest(b"genesis")
CONTEXT = HeightContext(1, VS, PREVIOUS, 10_000)
NOW = 20_000
PREVOTE, PRECOMMIT = VoteKind.PREVOTE, VoteKind.PRECOMMIT


def make_block(
    tag: bytes = b"a",
    *,
    time_ms: int = NOW,
    previous: bytes = PREVIOUS,
    tx_root: bytes | None = None,
    validators_hash: bytes | None = None,
) -> Block:
    txs = (b"tx-" + tag,)
    header = Header(
        chain_id=CHAIN,
        height=1,
        time_ms=time_ms,
        previous_block_hash=previous,
        tx_root=merkle.tx_root(txs) if tx_root is None else tx_root,
        state_root=digest(b"state-" + tag),
        validators_hash=VS.hash() if validators_hash is None else validators_hash,
        next_validators_hash=VS.hash(),
        proposer=KEYS[1].public_key,
    )
    return Block(header, txs)


A, B = make_block(b"a"), make_block(b"b")


def proposed(
    block: Block, round: int = 0, valid_round: int = -1, *, valid: bool = True, by: int = -1
) -> ProposalReceived:
    signer = KEYS[(1 + round) % 4 if by < 0 else by]
    body = proposal_signing_body(1, round, block.hash(), valid_round, signer.public_key)
    signature = signer.sign(Domain.PROPOSAL, CHAIN, body)
    proposal = Proposal(1, round, block.hash(), valid_round, signer.public_key, signature)
    return ProposalReceived(proposal, block, valid, NOW)


def signed_vote(kind: VoteKind, voter: int, round: int, block: Block | None) -> Vote:
    block_hash = None if block is None else block.hash()
    key = KEYS[voter]
    body = vote_signing_body(kind, 1, round, block_hash, key.public_key)
    signature = key.sign(Domain.VOTE, CHAIN, body)
    return Vote(kind, 1, round, block_hash, key.public_key, signature)


def voted(kind: VoteKind, voters: Iterable[int], round: int, block: Block | None) -> list[Event]:
    return [VoteReceived(signed_vote(kind, v, round, block)) for v in voters]


def node(index: int = 0) -> State:
    return start(CONFIG, CHAIN, KEYS[index].public_key, CONTEXT)[0]


def feed(state: State, *events: Event) -> tuple[State, list[Effect]]:
    effects: list[Effect] = []
    for event in events:
        state, more = step(state, event)
        effects.extend(more)
    return state, effects


def vote_effect(kind: VoteKind, round: int, block: Block | None) -> SendVote:
    return SendVote(kind, 1, round, None if block is None else block.hash())


def test_start_as_a_validator_waits_for_the_proposal() -> None:
    state, effects = start(CONFIG, CHAIN, KEYS[0].public_key, CONTEXT)
    assert effects == (ScheduleTimeout(1, 0, Step.PROPOSE, 1_000),)
    assert (state.round, state.step, state.locked_round, state.valid_round) == (
        0,
        Step.PROPOSE,
        -1,
        -1,
    )


def test_start_as_proposer_asks_for_a_block_then_proposes_it_once() -> None:
    state, opening = start(CONFIG, CHAIN, KEYS[1].public_key, CONTEXT)
    assert opening == (
        RequestBlock(1, 0, PREVIOUS, 10_000),
        ScheduleTimeout(1, 0, Step.PROPOSE, 1_000),
    )
    state, effects = feed(state, BlockBuilt(1, 0, A))
    assert effects == [SendProposal(1, 0, A, -1)]
    assert feed(state, BlockBuilt(1, 0, B))[1] == []


def test_block_time_is_after_the_previous_block() -> None:
    assert compute_block_time_ms(5_000, 10_000) == 10_001
    assert compute_block_time_ms(12_000, 10_000) == 12_000


def test_timeouts_grow_with_the_round() -> None:
    assert [CONFIG.timeout_propose_ms(r) for r in range(3)] == [1_000, 1_100, 1_200]
    assert CONFIG.timeout_prevote_ms(4) == CONFIG.timeout_ms(Step.PREVOTE, 4) == 700
    assert CONFIG.timeout_precommit_ms(2) == 600
    with pytest.raises(ValueError):
        ConsensusConfig(prevote_ms=0)


def test_line_22_prevote_for_a_valid_proposal() -> None:
    state, effects = feed(node(), proposed(A))
    assert effects == [vote_effect(PREVOTE, 0, A)]
    assert state.step is Step.PREVOTE


@pytest.mark.parametrize(
    "event",
    [
        proposed(A, valid=False),  # the application says no
        proposed(make_block(time_ms=10_000)),  # not after the previous block
        proposed(make_block(time_ms=NOW + 1_001)),  # too far ahead of our clock
        proposed(make_block(previous=digest(b"elsewhere"))),
        proposed(make_block(tx_root=digest(b"not the txs"))),
        proposed(make_block(validators_hash=digest(b"other validators"))),
    ],
)
def test_line_22_prevote_nil_for_an_invalid_proposal(event: ProposalReceived) -> None:
    _, effects = feed(node(), event)
    assert effects == [vote_effect(PREVOTE, 0, None)]


def test_a_proposal_from_the_wrong_proposer_is_ignored() -> None:
    state, effects = feed(node(), proposed(A, by=2))
    assert effects == [] and state.step is Step.PROPOSE and not state.proposals


def test_line_57_timeout_propose_prevotes_nil_and_stale_timeouts_do_nothing() -> None:
    state, effects = feed(
        node(), TimeoutFired(1, 1, Step.PROPOSE), TimeoutFired(2, 0, Step.PROPOSE)
    )
    assert effects == []
    state, effects = feed(state, TimeoutFired(1, 0, Step.PROPOSE))
    assert effects == [vote_effect(PREVOTE, 0, None)]
    assert feed(state, TimeoutFired(1, 0, Step.PROPOSE))[1] == []


def test_line_34_prevote_timeout_once_on_any_two_thirds() -> None:
    state, _ = feed(node(), proposed(A))
    state, effects = feed(state, *voted(PREVOTE, [1], 0, A), *voted(PREVOTE, [2], 0, None))
    assert effects == []
    state, effects = feed(state, *voted(PREVOTE, [3], 0, B))
    assert effects == [ScheduleTimeout(1, 0, Step.PREVOTE, 500)]
    assert feed(state, *voted(PREVOTE, [0], 0, A))[1] == []
    state, effects = feed(state, TimeoutFired(1, 0, Step.PREVOTE))  # line 61
    assert effects == [vote_effect(PRECOMMIT, 0, None)]


def test_line_36_lock_and_precommit_on_two_thirds_prevotes() -> None:
    state, _ = feed(node(), proposed(A))
    state, effects = feed(state, *voted(PREVOTE, [0, 1, 2], 0, A))
    assert vote_effect(PRECOMMIT, 0, A) in effects
    assert (state.locked_round, state.locked_hash) == (0, A.hash())
    assert (state.valid_round, state.valid_hash) == (0, A.hash())
    assert state.step is Step.PRECOMMIT


def test_line_36_after_precommitting_nil_only_the_valid_value_moves() -> None:
    state, _ = feed(node(), proposed(A), *voted(PREVOTE, [1, 2], 0, None))
    state, _ = feed(state, *voted(PREVOTE, [3], 0, A), TimeoutFired(1, 0, Step.PREVOTE))
    assert state.step is Step.PRECOMMIT
    state, effects = feed(state, *voted(PREVOTE, [0, 1], 0, A))  # a late quorum for A
    assert not any(isinstance(e, SendVote) for e in effects)
    assert (state.locked_round, state.valid_round, state.valid_hash) == (-1, 0, A.hash())


def test_line_44_precommit_nil_on_two_thirds_nil_prevotes() -> None:
    state, _ = feed(node(), proposed(A))
    state, effects = feed(state, *voted(PREVOTE, [1, 2, 3], 0, None))
    assert vote_effect(PRECOMMIT, 0, None) in effects


def test_line_47_and_65_precommit_timeout_then_next_round() -> None:
    state, _ = feed(node(), proposed(A))
    state, effects = feed(state, *voted(PRECOMMIT, [1, 2], 0, None), *voted(PRECOMMIT, [3], 0, A))
    assert effects == [ScheduleTimeout(1, 0, Step.PRECOMMIT, 500)]
    state, effects = feed(state, TimeoutFired(1, 0, Step.PRECOMMIT))
    assert state.round == 1 and state.step is Step.PROPOSE
    assert effects == [ScheduleTimeout(1, 1, Step.PROPOSE, 1_100)]


@pytest.mark.parametrize("proposal_first", [True, False])
def test_line_49_decide_with_a_certificate(proposal_first: bool) -> None:
    precommits = voted(PRECOMMIT, [1, 2, 3], 0, A)
    events = [proposed(A), *precommits] if proposal_first else [*precommits, proposed(A)]
    state, effects = feed(node(), *events)
    decisions = [e for e in effects if isinstance(e, Decide)]
    assert len(decisions) == 1 and decisions[0].block == A
    certificate = decisions[0].certificate
    assert (certificate.height, certificate.round, certificate.block_hash) == (1, 0, A.hash())
    assert verify_certificate(certificate, CHAIN, VS)
    assert state.decided
    assert feed(state, *voted(PREVOTE, [1], 1, B), TimeoutFired(1, 0, Step.PRECOMMIT))[1] == []


def test_line_49_never_decides_an_invalid_block() -> None:
    state, effects = feed(node(), proposed(A, valid=False), *voted(PRECOMMIT, [1, 2, 3], 0, A))
    assert not any(isinstance(e, Decide) for e in effects) and not state.decided


def locked_on_a() -> State:
    state, _ = feed(node(), proposed(A), *voted(PREVOTE, [0, 1, 2], 0, A))
    state, _ = feed(state, *voted(PRECOMMIT, [1, 2], 0, None), *voted(PRECOMMIT, [0], 0, A))
    state, _ = feed(state, TimeoutFired(1, 0, Step.PRECOMMIT))
    assert (state.round, state.locked_hash) == (1, A.hash())
    return state


def test_line_22_a_locked_node_prevotes_nil_for_another_value() -> None:
    _, effects = feed(locked_on_a(), proposed(B, round=1))
    assert effects == [vote_effect(PREVOTE, 1, None)]


def test_line_28_a_newer_valid_round_unlocks() -> None:
    state, _ = feed(locked_on_a(), *voted(PRECOMMIT, [1, 2, 3], 1, None))
    state, _ = feed(state, TimeoutFired(1, 1, Step.PRECOMMIT))
    assert state.round == 2
    state, effects = feed(state, proposed(B, round=2, valid_round=1))
    assert effects == []  # no 2f + 1 prevotes for B in round 1 yet
    state, effects = feed(state, *voted(PREVOTE, [1, 2, 3], 1, B))
    assert vote_effect(PREVOTE, 2, B) in effects


def test_line_28_a_valid_round_older_than_the_lock_does_not_unlock() -> None:
    state, _ = feed(
        node(), *voted(PRECOMMIT, [1, 2, 3], 0, None), TimeoutFired(1, 0, Step.PRECOMMIT)
    )
    state, _ = feed(state, proposed(A, round=1), *voted(PREVOTE, [0, 1, 2], 1, A))
    assert (state.locked_round, state.locked_hash) == (1, A.hash())
    state, _ = feed(
        state, *voted(PRECOMMIT, [1, 2, 3], 1, None), TimeoutFired(1, 1, Step.PRECOMMIT)
    )
    state, effects = feed(state, *voted(PREVOTE, [1, 2, 3], 0, B), proposed(B, 2, valid_round=0))
    assert state.round == 2
    assert effects == [vote_effect(PREVOTE, 2, None)]


def test_line_28_the_locked_value_comes_back() -> None:
    _, effects = feed(locked_on_a(), proposed(A, round=1, valid_round=0))
    assert effects == [vote_effect(PREVOTE, 1, A)]


def test_a_restarted_node_keeps_the_lock_the_signer_recorded() -> None:
    state, _ = start(CONFIG, CHAIN, KEYS[0].public_key, CONTEXT, Resume(0, Lock(0, A.hash())))
    assert (state.locked_round, state.locked_hash, state.valid_hash) == (0, A.hash(), None)
    _, effects = feed(state, proposed(B))
    assert effects == [vote_effect(PREVOTE, 0, None)]
    _, effects = feed(state, proposed(A))
    assert effects == [vote_effect(PREVOTE, 0, A)]


def test_start_round_proposes_the_valid_value() -> None:
    # node 0 proposes round 3 of height 1; it saw A win the prevotes of round 0
    state, _ = feed(node(0), proposed(A), *voted(PREVOTE, [0, 1, 2], 0, A))
    state, effects = feed(state, *voted(PREVOTE, [1, 2], 3, None))  # f + 1 in round 3
    assert state.round == 3
    assert SendProposal(1, 3, A, 0) in effects
    assert ScheduleTimeout(1, 3, Step.PROPOSE, 1_300) in effects
    assert not any(isinstance(e, RequestBlock) for e in effects)


def test_line_55_skip_to_a_round_where_f_plus_one_are() -> None:
    state, effects = feed(node(), *voted(PREVOTE, [1], 5, None))
    assert effects == [] and state.round == 0
    state, effects = feed(state, *voted(PRECOMMIT, [2], 5, None))
    assert state.round == 5 and effects == [ScheduleTimeout(1, 5, Step.PROPOSE, 1_500)]


def test_equivocation_is_reported_once_and_both_values_count() -> None:
    state, _ = feed(node(), proposed(A))
    state, effects = feed(state, *voted(PREVOTE, [2], 0, None), *voted(PREVOTE, [2], 0, A))
    assert len(effects) == 1 and isinstance(effects[0], Equivocation)
    assert effects[0].first.block_hash is None and effects[0].second.block_hash == A.hash()
    state, effects = feed(state, *voted(PREVOTE, [2], 0, B), *voted(PREVOTE, [2], 0, A))
    assert effects == []  # a third value is kept but not reported again; a duplicate is ignored
    state, effects = feed(state, *voted(PREVOTE, [0, 1], 0, A))
    assert vote_effect(PRECOMMIT, 0, A) in effects  # validator 2's A vote counts


def test_conflicting_proposals_are_reported_once() -> None:
    other = make_block(b"other")
    state, effects = feed(node(), proposed(A), proposed(other), proposed(B), proposed(A))
    conflicts = [e for e in effects if isinstance(e, ConflictingProposals)]
    assert len(conflicts) == 1 and conflicts[0].first.block_hash == A.hash()
    assert len(state.proposals[0]) == 2


def commit_of(block: Block, voters: Iterable[int]) -> Certificate:
    votes = [signed_vote(PRECOMMIT, v, 0, block) for v in voters]
    return Certificate(1, 0, block.hash(), tuple(sorted((v.validator, v.signature) for v in votes)))


def test_a_certified_block_decides_directly() -> None:
    state, effects = feed(node(), CommitReceived(A, commit_of(A, [1, 2, 3]), True))
    assert effects == [Decide(A, commit_of(A, [1, 2, 3]))] and state.decided
    for event in [
        CommitReceived(A, commit_of(A, [1, 2]), True),  # not enough power
        CommitReceived(A, commit_of(A, [1, 2, 3]), False),  # the application disagrees
        CommitReceived(B, commit_of(A, [1, 2, 3]), True),  # another block
    ]:
        assert feed(node(), event)[1] == []


def test_start_height_resets_everything() -> None:
    state = locked_on_a()
    context = HeightContext(2, VS, A.hash(), NOW)
    state, effects = feed(state, StartHeight(context))
    assert (state.height, state.round, state.locked_round, state.valid_hash) == (2, 0, -1, None)
    assert not state.votes and not state.proposals and not state.decided
    assert effects == [ScheduleTimeout(2, 0, Step.PROPOSE, 1_000)]  # proposer(2, 0) is 3
    assert feed(state, StartHeight(CONTEXT))[1] == []


def test_an_observer_follows_but_never_votes() -> None:
    observer = start(CONFIG, CHAIN, KEYS[4].public_key, CONTEXT)[0]
    state, effects = feed(observer, proposed(A), *voted(PREVOTE, [1, 2, 3], 0, A))
    assert not any(isinstance(e, SendVote) for e in effects)
    state, effects = feed(state, *voted(PRECOMMIT, [1, 2, 3], 0, A))
    assert any(isinstance(e, Decide) for e in effects)


# --- properties ----------------------------------------------------------------

EVENTS: list[Event] = [
    proposed(A),
    proposed(B),
    proposed(A, valid=False),
    proposed(A, round=1, valid_round=0),
    proposed(B, round=2, valid_round=1),
    *[TimeoutFired(1, r, s) for r in range(3) for s in Step],
    *[
        VoteReceived(signed_vote(kind, voter, round, block))
        for kind in VoteKind
        for voter in range(4)
        for round in range(3)
        for block in (A, B, None)
    ],
]


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.sampled_from(EVENTS), max_size=60))
def test_any_event_sequence_keeps_the_invariants(events: list[Event]) -> None:
    state = node()
    decisions: list[Decide] = []
    for event in events:
        before = copy.deepcopy(state)
        state_after, effects = step(state, event)
        assert state == before  # step never mutates its input
        assert step(before, event) == (state_after, effects)  # and is deterministic
        state = state_after
        decisions.extend(e for e in effects if isinstance(e, Decide))
        assert state.locked_round <= state.valid_round <= state.round
        assert (state.locked_hash is None) == (state.locked_round == -1)
    assert len(decisions) <= 1
    for decision in decisions:
        assert verify_certificate(decision.certificate, CHAIN, VS)
        assert decision.certificate.block_hash == decision.block.hash()
