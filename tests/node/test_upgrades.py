"""Protocol upgrades as the node meets them (``node.app.upgrades``, ``node.app.ledger_app``).

Governance schedules protocol ``tx2.block2`` for height 3 in block 1. A node whose
software does not know it finalises block 2, then stops (``ApplicationHalt``, with
the release to install); started again on the same store, it still refuses: it
neither votes for block 3 nor proposes one. A node that knows the protocol goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.app.ledger_app import LedgerApp
from node.app.sigverify import SignatureVerifier
from node.app.upgrades import halt_reason
from node.app.version import KNOWN_PROTOCOLS, PROTOCOL_VERSION
from node.consensus.app_interface import ApplicationHalt
from node.consensus.mempool import Mempool
from node.consensus.types import Block, Certificate
from node.ledger import records as r
from node.ledger import tx as t
from node.run.hooks import NO_HOOKS
from node.store.blockstore import BlockStore
from tests.api.harness import proposed_block
from tests.ledger.world import World
from tools.faults.node import ENV_NEXT_PROTOCOL, hooks_from_environment

NEXT = "tx2.block2"
RELEASE = "0.9.0"
AT = 3  # the first height under the new protocol


def test_the_reason_names_the_protocol_the_height_and_the_release() -> None:
    scheduled = r.Upgrade(NEXT, RELEASE, AT)
    assert halt_reason(None, 7, KNOWN_PROTOCOLS) is None
    assert halt_reason(scheduled, AT - 2, KNOWN_PROTOCOLS) is None  # not yet the last block
    assert halt_reason(scheduled, AT - 1, KNOWN_PROTOCOLS | {NEXT}) is None  # known here
    assert halt_reason(r.Upgrade(PROTOCOL_VERSION, RELEASE, AT), AT - 1, KNOWN_PROTOCOLS) is None
    reason = halt_reason(scheduled, AT - 1, KNOWN_PROTOCOLS)
    assert reason is not None
    assert f"protocol {NEXT} at height {AT}" in reason
    assert f"stopped after block {AT - 1}" in reason
    assert f"Install relance {RELEASE} or later" in reason
    assert halt_reason(scheduled, AT + 5, KNOWN_PROTOCOLS) is not None  # past it: still no


class Node:
    """A ledger app on its own store, fed blocks as consensus would."""

    def __init__(self, w: World, path: Path, protocols: frozenset[str]) -> None:
        self.w = w
        self.store = BlockStore.open(path, w.genesis.genesis_hash, True)
        self.verifier = SignatureVerifier(1)
        self.app = LedgerApp(w.genesis, self.store, Mempool(), self.verifier, protocols)

    def close(self) -> None:
        self.verifier.close()
        self.store.close()

    def block(self, *txs: bytes) -> Block:
        for data in txs:
            assert self.app.submit(data).code == 0
        block = proposed_block(self.app, self.app.last_block().time_ms + 1_000)
        assert len(block.txs) == len(txs)
        return block

    def finalize(self, block: Block) -> None:
        # The application does not check certificates (consensus does): any shape will do.
        signatures = tuple(sorted((bytes(v.public_key), bytes(64)) for v in self.w.validators))
        certificate = Certificate(block.header.height, 0, block.hash(), signatures)
        self.app.finalize_block(block, certificate)


def _schedule(w: World) -> bytes:
    v0 = w.validators[0]
    bare = t.ScheduleUpgrade(NEXT, RELEASE, AT, ())
    approvals = tuple(t.approve(bare, v, w.genesis.chain_id) for v in w.validators[:3])
    payload = t.ScheduleUpgrade(NEXT, RELEASE, AT, approvals)
    return t.Tx(w.genesis.chain_id, v0.public_key, 0, payload).sign(v0).encode()


@pytest.fixture
def world() -> Iterator[World]:
    yield World()


def test_a_node_that_does_not_know_the_protocol_stops_before_its_height(
    world: World, tmp_path: Path
) -> None:
    node = Node(world, tmp_path / "db", KNOWN_PROTOCOLS)
    try:
        node.finalize(node.block(_schedule(world)))
        assert node.app.halt_reason() is None
        second = node.block()
        with pytest.raises(ApplicationHalt, match=f"Install relance {RELEASE}"):
            node.finalize(second)
        assert node.store.height() == AT - 1  # the last block is durable before the stop
    finally:
        node.close()

    restarted = Node(world, tmp_path / "db", KNOWN_PROTOCOLS)
    try:
        assert restarted.app.halt_reason() is not None
        last = restarted.app.last_block()
        with pytest.raises(ApplicationHalt):
            restarted.app.prepare_proposal(AT, last.time_ms + 1_000, last.block_hash)
    finally:
        restarted.close()

    # The same store under software that knows the protocol: block 3 is proposed, and
    # the old software refuses to vote for it.
    upgraded = Node(world, tmp_path / "db", KNOWN_PROTOCOLS | {NEXT})
    try:
        third = upgraded.block()
    finally:
        upgraded.close()
    old = Node(world, tmp_path / "db", KNOWN_PROTOCOLS)
    try:
        assert not old.app.process_proposal(third)
    finally:
        old.close()


def test_a_node_that_knows_the_protocol_runs_past_its_height(world: World, tmp_path: Path) -> None:
    node = Node(world, tmp_path / "db", KNOWN_PROTOCOLS | {NEXT})
    try:
        node.finalize(node.block(_schedule(world)))
        node.finalize(node.block())
        third = node.block()
        assert node.app.process_proposal(third)
        node.finalize(third)
        assert node.store.height() == AT
        assert node.app.halt_reason() is None
    finally:
        node.close()


def test_only_the_test_entry_point_knows_a_next_protocol() -> None:
    assert NO_HOOKS.protocols == KNOWN_PROTOCOLS == frozenset({PROTOCOL_VERSION})
    assert hooks_from_environment({}).protocols == KNOWN_PROTOCOLS
    upgraded = hooks_from_environment({ENV_NEXT_PROTOCOL: NEXT})
    assert upgraded.protocols == KNOWN_PROTOCOLS | {NEXT}
