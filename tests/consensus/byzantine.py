"""Faulty validators for the simulations: transports that sign what an honest node never would.

Each wraps the node's honest driver output and adds the fault with the raw
key (bypassing the guarded signer), so the faulty node otherwise follows the
protocol.
"""

from __future__ import annotations

from dataclasses import replace

from node.consensus.messages import ProposalMessage, VoteMessage, decode_message, encode_message
from node.consensus.types import (
    NIL_ROUND,
    Block,
    Proposal,
    Vote,
    VoteKind,
    proposal_signing_body,
    vote_signing_body,
)
from node.protocol import merkle
from node.protocol.crypto import Domain, digest
from tests.consensus.sim import CHAIN_ID, SimTransport, Simulation, execute

PHANTOM_HASH = digest(b"a block nobody proposed")


class DoublePrevoter:
    """Every prevote goes out twice: as decided, and for another value (nil or a phantom)."""

    def __init__(self, sim: Simulation, index: int) -> None:
        self.inner = SimTransport(sim.network, index)
        self.key = sim.keys[index]

    def broadcast(self, data: bytes) -> None:
        self.inner.broadcast(data)
        message = decode_message(data)
        if isinstance(message, VoteMessage) and message.vote.kind is VoteKind.PREVOTE:
            vote = message.vote
            other = PHANTOM_HASH if vote.block_hash is None else None
            body = vote_signing_body(
                VoteKind.PREVOTE, vote.height, vote.round, other, vote.validator
            )
            signature = self.key.sign(Domain.VOTE, CHAIN_ID, body)
            twin = Vote(VoteKind.PREVOTE, vote.height, vote.round, other, vote.validator, signature)
            self.inner.broadcast(encode_message(VoteMessage(twin)))


class TwoBlockProposer:
    """Proposes block A to some peers and a different valid block B to the others.

    The first honest peer gets both (it holds the evidence); the last gets only B.
    """

    def __init__(self, sim: Simulation, index: int) -> None:
        self.sim = sim
        self.index = index
        self.inner = SimTransport(sim.network, index)
        self.key = sim.keys[index]
        self.equivocations = 0

    def broadcast(self, data: bytes) -> None:
        message = decode_message(data)
        if not isinstance(message, ProposalMessage) or message.proposal.valid_round != NIL_ROUND:
            self.inner.broadcast(data)
            return
        self.equivocations += 1
        other = encode_message(self._other(message))
        peers = [i for i in range(len(self.sim.nodes)) if i != self.index]
        network = self.sim.network
        for peer in peers[:-1]:
            network.send(self.index, peer, data)
        network.send(self.index, peers[-1], other)
        network.send(self.index, peers[0], other)

    def _other(self, message: ProposalMessage) -> ProposalMessage:
        block, proposal = message.block, message.proposal
        txs = (f"alt:{block.header.height}:{proposal.round}".encode(),)
        root = execute(self.sim.nodes[self.index].app.root, txs)
        header = replace(block.header, tx_root=merkle.tx_root(txs), state_root=root)
        other = Block(header, txs)
        body = proposal_signing_body(
            proposal.height, proposal.round, other.hash(), NIL_ROUND, proposal.proposer
        )
        signature = self.key.sign(Domain.PROPOSAL, CHAIN_ID, body)
        return ProposalMessage(
            Proposal(
                proposal.height,
                proposal.round,
                other.hash(),
                NIL_ROUND,
                proposal.proposer,
                signature,
            ),
            other,
        )
