"""Seeded simulations: 4 and 7 validators, faulty networks and faulty validators.

Each scenario ends with ``check_safety`` (agreement, validity, certificates)
and a termination check after the network stabilises. Every assertion
message carries the seed; ``Simulation(Setup(seed=...))`` replays it.
"""

from __future__ import annotations

import enum
import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.consensus.messages import ProposalMessage
from node.consensus.tendermint import ConflictingProposals, Equivocation
from node.consensus.types import VoteKind
from tests.consensus.byzantine import DoublePrevoter, TwoBlockProposer
from tests.consensus.sim import (
    START_MS,
    Crash,
    LinkPolicy,
    Partition,
    Setup,
    Simulation,
    bad_txs,
    check_safety,
    is_bad,
)

SECOND = 1_000
LOSSY = LinkPolicy(drop=0.3, duplicate=0.3, delay_min_ms=1, delay_max_ms=300)
STABLE = LinkPolicy(drop=0.02, duplicate=0.05, delay_min_ms=1, delay_max_ms=40)


def assert_reaches(sim: Simulation, height: int, nodes: list[int], deadline_ms: int) -> None:
    reached = sim.run_until_height(height, nodes, deadline_ms)
    heights = sim.heights(nodes)
    assert reached, f"seed={sim.seed}: nodes {nodes} at heights {heights}, wanted {height}"


def certificate_rounds(sim: Simulation, node: int) -> dict[int, int]:
    return {c.block.header.height: c.certificate.round for c in sim.nodes[node].app.chain}


@pytest.mark.parametrize(("n", "seed"), [(4, 1), (4, 2), (7, 3), (7, 4)])
def test_all_honest_with_random_delays(n: int, seed: int) -> None:
    sim = Simulation(Setup(seed=seed, n=n, after_gst=LinkPolicy(delay_max_ms=120)))
    assert_reaches(sim, 12, list(range(n)), START_MS + 60 * SECOND)
    check_safety(sim, range(n))


@pytest.mark.parametrize("seed", [5, 6])
def test_crashed_proposer_costs_a_round_then_catches_up(seed: int) -> None:
    # validators[(height + round) % 4]: node 1 proposes round 0 of heights 1, 5, 9, ...
    sim = Simulation(Setup(seed=seed, crashed_at_start=frozenset({1})))
    live = [0, 2, 3]
    assert_reaches(sim, 9, live, START_MS + 60 * SECOND)
    rounds = certificate_rounds(sim, 0)
    assert all(rounds[h] >= 1 for h in (1, 5, 9)), f"seed={seed}: rounds {rounds}"
    sim.nodes[1].restart()
    assert_reaches(
        sim, max(sim.heights(live)) + 3, [0, 1, 2, 3], sim.scheduler.now_ms + 30 * SECOND
    )
    check_safety(sim, range(4))


def test_crash_and_restart_mid_height_with_durable_signer(tmp_path: Path) -> None:
    seed = 7
    crashes = [
        Crash(2, START_MS + 700, START_MS + 3 * SECOND),
        Crash(2, START_MS + 5_300, START_MS + 6_100),
    ]
    sim = Simulation(Setup(seed=seed, crashes=crashes, record_dir=tmp_path))
    assert_reaches(sim, 25, [0, 1, 2, 3], START_MS + 60 * SECOND)
    check_safety(sim, range(4))
    assert (tmp_path / "node2.sign").exists()


@pytest.mark.parametrize("seed", [8, 9])
def test_two_two_partition_blocks_then_heals(seed: int) -> None:
    start, end = START_MS + 1 * SECOND, START_MS + 9 * SECOND
    halves = (frozenset({0, 1}), frozenset({2, 3}))
    sim = Simulation(Setup(seed=seed, partitions=[Partition(start, end, halves)]))
    sim.scheduler.run_until(start - 1)
    # A height under way may still end (its precommits crossed before the cut); no later one.
    under_way = max(node.driver.height for node in sim.nodes)
    sim.scheduler.run_until(end - 1)
    heights = sim.heights(range(4))
    assert max(heights) <= under_way, f"seed={seed}: progress during the partition {heights}"
    late = [t for node in sim.nodes for t in node.app.finalized_at_ms if t >= start + SECOND]
    assert not late, f"seed={seed}: decisions deep into the partition at {late}"
    assert_reaches(sim, max(heights) + 3, [0, 1, 2, 3], end + 30 * SECOND)
    check_safety(sim, range(4))


@pytest.mark.parametrize(("n", "seed"), [(4, 10), (7, 11)])
def test_lossy_duplicating_reordering_links(n: int, seed: int) -> None:
    gst = START_MS + 6 * SECOND
    sim = Simulation(Setup(seed=seed, n=n, before_gst=LOSSY, after_gst=STABLE, gst_ms=gst))
    assert_reaches(sim, 10, list(range(n)), gst + 40 * SECOND)
    check_safety(sim, range(n))


def test_seven_validators_two_crashed() -> None:
    sim = Simulation(Setup(seed=12, n=7, crashed_at_start=frozenset({2, 5}), after_gst=STABLE))
    live = [0, 1, 3, 4, 6]
    assert_reaches(sim, 10, live, START_MS + 60 * SECOND)
    check_safety(sim, live)


def test_double_prevotes_are_reported_and_do_not_fork() -> None:
    seed = 13
    sim = Simulation(Setup(seed=seed, transports={3: DoublePrevoter}, after_gst=STABLE))
    honest = [0, 1, 2]
    assert_reaches(sim, 10, honest, START_MS + 60 * SECOND)
    check_safety(sim, [*honest, 3])
    offender = sim.keys[3].public_key
    reported = [
        e
        for i in honest
        for e in sim.nodes[i].driver.evidence
        if isinstance(e, Equivocation) and e.first.validator == offender
    ]
    assert reported, f"seed={seed}: no equivocation reported"
    for evidence in reported:
        first, second = evidence.first, evidence.second
        assert first.kind is second.kind is VoteKind.PREVOTE, f"seed={seed}"
        assert (first.height, first.round) == (second.height, second.round), f"seed={seed}"
        assert first.block_hash != second.block_hash, f"seed={seed}"


def test_proposer_sending_two_blocks_in_one_round() -> None:
    seed = 14
    sim = Simulation(Setup(seed=seed, transports={2: TwoBlockProposer}, after_gst=STABLE))
    honest = [0, 1, 3]
    assert_reaches(sim, 12, honest, START_MS + 60 * SECOND)
    check_safety(sim, honest)
    transport = sim.nodes[2].transport
    assert isinstance(transport, TwoBlockProposer) and transport.equivocations > 0
    witnessed = [e for e in sim.nodes[0].driver.evidence if isinstance(e, ConflictingProposals)]
    assert witnessed, f"seed={seed}: node 0 saw both blocks but reported nothing"
    assert all(e.first.proposer == sim.keys[2].public_key for e in witnessed), f"seed={seed}"


def test_proposal_invalid_for_the_app_is_never_decided() -> None:
    seed = 15
    sim = Simulation(Setup(seed=seed, tx_makers={1: bad_txs("v1")}, after_gst=STABLE))
    honest = [0, 2, 3]
    assert_reaches(sim, 10, honest, START_MS + 60 * SECOND)
    check_safety(sim, honest)
    for i in honest:
        txs = [tx for c in sim.nodes[i].app.chain for tx in c.block.txs]
        assert not any(is_bad(tx) for tx in txs), f"seed={seed}: node {i} decided a bad tx"
    bad_blocks = {
        sent.message.proposal.block_hash
        for sent in sim.network.log
        if isinstance(sent.message, ProposalMessage) and any(map(is_bad, sent.message.block.txs))
    }
    assert bad_blocks, f"seed={seed}: node 1 never proposed"
    prevotes_for_bad = [
        (sender, vote)
        for sender, vote in sim.votes_sent()
        if sender in honest and vote.block_hash in bad_blocks
    ]
    assert not prevotes_for_bad, f"seed={seed}: honest votes for an invalid block"
    rounds = certificate_rounds(sim, 0)
    assert all(rounds[h] >= 1 for h in (1, 5, 9)), f"seed={seed}: rounds {rounds}"


def random_setup(seed: int) -> tuple[Setup, int]:
    """A random network (maybe a crash, maybe a partition before GST) from ``seed``, and its GST."""
    rng = random.Random(seed)
    gst = START_MS + rng.randint(0, 8 * SECOND)
    before = LinkPolicy(
        drop=rng.uniform(0, 0.4),
        duplicate=rng.uniform(0, 0.3),
        delay_min_ms=1,
        delay_max_ms=rng.randint(10, 600),
    )
    after = LinkPolicy(
        drop=rng.uniform(0, 0.05),
        duplicate=rng.uniform(0, 0.1),
        delay_min_ms=1,
        delay_max_ms=rng.randint(5, 60),
    )
    crashes = []
    if rng.random() < 0.4:
        at = START_MS + rng.randint(0, 6 * SECOND)
        crashes.append(Crash(rng.randrange(4), at, at + rng.randint(100, 4 * SECOND)))
    partitions = []
    if rng.random() < 0.3:
        cut = rng.randint(START_MS, gst)
        side = frozenset(rng.sample(range(4), rng.randint(1, 2)))
        partitions.append(Partition(cut, rng.randint(cut, gst), (side, frozenset(range(4)) - side)))
    setup = Setup(
        seed=seed,
        before_gst=before,
        after_gst=after,
        gst_ms=gst,
        crashes=crashes,
        partitions=partitions,
    )
    return setup, gst


@settings(
    max_examples=24,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_random_networks_are_safe_and_live(seed: int) -> None:
    setup, gst = random_setup(seed)
    sim = Simulation(setup)
    assert_reaches(sim, 6, [0, 1, 2, 3], gst + 40 * SECOND)
    check_safety(sim, range(4))


class Fault(enum.Enum):
    DOUBLE_PREVOTES = "double_prevotes"
    TWO_BLOCKS = "two_blocks"
    INVALID_BLOCKS = "invalid_blocks"
    SEVEN_WITH_TWO_CRASHES = "seven_with_two_crashes"


def with_fault(setup: Setup, fault: Fault) -> tuple[Setup, list[int]]:
    """The random network of ``setup`` plus a faulty validator; returns it and the honest nodes."""
    no_crash = replace(setup, crashes=[])
    if fault is Fault.DOUBLE_PREVOTES:
        return replace(no_crash, transports={3: DoublePrevoter}), [0, 1, 2]
    if fault is Fault.TWO_BLOCKS:
        return replace(no_crash, transports={2: TwoBlockProposer}), [0, 1, 3]
    if fault is Fault.INVALID_BLOCKS:
        return replace(no_crash, tx_makers={1: bad_txs("v1")}), [0, 2, 3]
    crashes = [Crash(c.node + 3, c.at_ms, c.back_ms) for c in setup.crashes]
    crashes.append(Crash(1, START_MS + 500, START_MS + 5 * SECOND))
    seven = replace(setup, n=7, crashes=crashes, partitions=[])
    return seven, list(range(7))


@settings(
    max_examples=16,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), fault=st.sampled_from(Fault))
def test_random_networks_with_a_faulty_validator(seed: int, fault: Fault) -> None:
    base, gst = random_setup(seed)
    setup, honest = with_fault(base, fault)
    sim = Simulation(setup)
    assert_reaches(sim, 6, honest, gst + 40 * SECOND)
    check_safety(sim, honest)
    decided = [tx for i in honest for c in sim.nodes[i].app.chain for tx in c.block.txs]
    assert not any(is_bad(tx) for tx in decided), f"seed={seed} fault={fault}"
