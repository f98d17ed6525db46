"""The driver: signatures are checked before ``step``, own votes seen on the network, the loop.

The last test runs four drivers as asyncio tasks over the fake network and
clock (``asyncio.run`` bounded by ``asyncio.timeout``; time only moves when
every queue is empty).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

import pytest

from node.consensus.driver import NextHeight
from node.consensus.messages import StatusMessage, VoteMessage, encode_message
from node.consensus.signer import GuardedSigner, SignRefused, SignStep
from node.consensus.tendermint import Step
from node.consensus.types import Vote, VoteKind, vote_signing_body
from node.protocol import limits
from node.protocol.crypto import Domain, Signer, digest
from tests.consensus.sim import (
    CHAIN_ID,
    SIM_CONFIG,
    START_MS,
    Setup,
    Simulation,
    check_safety,
)

SOME_BLOCK = digest(b"some block")


def quiet_simulation(seed: int) -> Simulation:
    """Four nodes whose network never delivers: we hand messages to node 0 ourselves."""
    sim = Simulation(Setup(seed=seed))
    sim.network.nodes.clear()  # broadcasts go nowhere
    return sim


def vote_by(
    key: Signer, height: int = 1, round: int = 0, kind: VoteKind = VoteKind.PREVOTE
) -> Vote:
    body = vote_signing_body(kind, height, round, SOME_BLOCK, key.public_key)
    return Vote(
        kind, height, round, SOME_BLOCK, key.public_key, key.sign(Domain.VOTE, CHAIN_ID, body)
    )


def deliver(sim: Simulation, vote: Vote) -> None:
    sim.nodes[0].receive(encode_message(VoteMessage(vote)))


def logged_votes(sim: Simulation) -> int:
    return sum(len(v) for v in sim.nodes[0].driver.state.votes.values())


def test_a_well_signed_vote_reaches_the_state_machine() -> None:
    sim = quiet_simulation(21)
    deliver(sim, vote_by(sim.keys[2]))
    assert logged_votes(sim) == 1


def test_bad_signatures_unknown_validators_and_garbage_never_reach_it() -> None:
    sim = quiet_simulation(22)
    good = vote_by(sim.keys[2])
    forged = Vote(good.kind, good.height, good.round, None, good.validator, good.signature)
    deliver(sim, forged)  # the signature is over another value
    deliver(sim, vote_by(Signer(digest(b"a stranger"))))
    other_chain = Vote(
        good.kind,
        good.height,
        good.round,
        SOME_BLOCK,
        good.validator,
        sim.keys[2].sign(Domain.VOTE, "another-chain", good.signing_body()),
    )
    deliver(sim, other_chain)
    for garbage in (b"", b"\x93\x01\x09\x00", b"\xc1", encode_message(VoteMessage(good))[:-1]):
        sim.nodes[0].receive(garbage)
    assert logged_votes(sim) == 0


def test_a_full_queue_drops_network_messages_but_keeps_room_for_timers() -> None:
    sim = quiet_simulation(23)
    driver = sim.nodes[0].driver
    data = encode_message(StatusMessage(1))
    accepted = 0
    while driver.submit(data):
        accepted += 1
    assert 0 < accepted < limits.CONSENSUS_QUEUE_MAX
    assert driver.queued == accepted
    driver.drain()
    assert driver.queued == 0


def test_our_own_vote_from_the_network_moves_the_signer_forward() -> None:
    sim = quiet_simulation(24)
    node = sim.nodes[0]
    twin = vote_by(node.key, height=40, round=2, kind=VoteKind.PRECOMMIT)  # a restored twin's
    deliver(sim, twin)
    record = node.records.load()
    assert record is not None and record.position == (40, 2, SignStep.PRECOMMIT)
    signer = GuardedSigner(node.key, CHAIN_ID, node.records)  # as after a restart
    for height, round in [(40, 2), (12, 0), (1, 0)]:
        try:
            signer.sign_vote(VoteKind.PRECOMMIT, height, round, SOME_BLOCK)
        except SignRefused:
            continue
        raise AssertionError(f"signed at {height}/{round} below an observed vote")


def test_a_restart_within_a_height_keeps_the_lock() -> None:
    sim = quiet_simulation(28)
    node = sim.nodes[0]
    GuardedSigner(node.key, CHAIN_ID, node.records).sign_vote(
        VoteKind.PRECOMMIT, 1, 0, SOME_BLOCK
    )  # what the process signed before it crashed
    node.crash()
    node.restart()
    state = node.driver.state
    assert (state.height, state.locked_round, state.locked_hash) == (1, 0, SOME_BLOCK)
    assert state.round == 1  # it signed in round 0 already: it resumes in round 1


def test_a_forged_own_vote_does_not_move_the_signer() -> None:
    sim = quiet_simulation(25)
    node = sim.nodes[0]
    before = node.records.load()
    genuine = vote_by(node.key, height=40)
    forged = Vote(genuine.kind, 40, 0, None, genuine.validator, genuine.signature)
    deliver(sim, forged)
    assert node.records.load() == before


def test_the_proposer_proposes_and_prevotes_its_block_at_once() -> None:
    sim = quiet_simulation(26)
    state = sim.nodes[1].driver.state  # validators[(1 + 0) % 4] proposes height 1, round 0
    assert state.step is Step.PREVOTE
    (proposal,) = state.proposals[0]
    assert proposal.proposer == sim.keys[1].public_key
    assert state.blocks[proposal.block_hash].valid
    assert logged_votes(sim) == 0 and len(state.votes[(VoteKind.PREVOTE, 0)]) == 1


@pytest.mark.parametrize("work_waiting", [False, True])
def test_the_pause_after_a_decision_is_skipped_when_transactions_wait(
    work_waiting: bool,
) -> None:
    """``commit_ms`` lets transactions gather; with some already waiting the next height
    starts at once. Either way the chain stays safe and live, under message delays."""
    seed = 29
    sim = Simulation(Setup(seed=seed, work_waiting=work_waiting))
    pauses: list[int] = []
    for node in sim.nodes:
        plain = node.call_later

        def recording(
            delay_ms: int,
            callback: Callable[[], None],
            plain: Callable[[int, Callable[[], None]], None] = plain,
        ) -> None:
            if isinstance(callback, partial) and isinstance(callback.args[0], NextHeight):
                pauses.append(delay_ms)
            plain(delay_ms, callback)

        node.call_later = recording  # type: ignore[method-assign]  # the node's clock
    assert sim.run_until_height(8, range(4), START_MS + 60_000), f"seed={seed}: stalled"
    check_safety(sim, range(4))
    assert pauses and set(pauses) == ({0} if work_waiting else {SIM_CONFIG.commit_ms})


def test_drivers_as_asyncio_tasks_on_the_fake_clock() -> None:
    seed = 27
    sim = Simulation(Setup(seed=seed, inline=False))
    drivers = [node.driver for node in sim.nodes]

    async def settle(tasks: list[asyncio.Task[None]]) -> None:
        while any(d.queued for d in drivers):
            for task in tasks:
                if task.done():
                    task.result()  # a crashed driver fails the test here
            await asyncio.sleep(0)

    async def main() -> None:
        tasks = [asyncio.create_task(d.run()) for d in drivers]
        try:
            async with asyncio.timeout(30):
                while min(sim.heights(range(4))) < 6:
                    await settle(tasks)
                    assert sim.scheduler.step(), f"seed={seed}: nothing left to run"
                    assert sim.scheduler.now_ms < START_MS + 60_000, f"seed={seed}: too slow"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    check_safety(sim, range(4))
