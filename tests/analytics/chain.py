"""A chain of real blocks for the derived views' tests, executed by the real ledger.

``Chain`` wraps the ledger tests' ``World``: each ``commit`` signs a block of
transactions, applies it through the ledger's executor and, when every
transaction applies, keeps it as a consensus ``Block`` (the headers carry the
height, the block time and the state root; the hashes the views never read are
zero) and hands it to the listeners, as the node hands each finalised block to
its views. A block with a rejected transaction is not committed and leaves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from node.consensus.types import Block, Header
from node.ledger import tx as t
from node.protocol.crypto import Signer
from tests.ledger.world import CHAIN_ID, World

HOUR_MS = 3_600_000
_ZERO = bytes(32)


@dataclass
class Chain:
    world: World = field(default_factory=World)
    blocks: list[Block] = field(default_factory=list)
    listeners: list[Callable[[Block], None]] = field(default_factory=list)

    def commit(self, *steps: tuple[Signer, t.Payload], step_ms: int = HOUR_MS) -> bool:
        """One block of ``steps`` at the current time, then the clock moves on by
        ``step_ms``; False (nothing committed) if a transaction is rejected."""
        world = self.world
        txs = world.sign_block(*steps)
        outcome = world.apply(*txs)
        if not outcome.all_ok:
            return False
        header = Header(
            CHAIN_ID, world.height, world.time_ms, _ZERO, _ZERO, world.root(), _ZERO, _ZERO, _ZERO
        )
        block = Block(header, tuple(txs))
        self.blocks.append(block)
        world.time_ms += step_ms
        for listener in self.listeners:
            listener(block)
        return True

    def do(self, who: Signer, payload: t.Payload, step_ms: int = HOUR_MS) -> t.SignedTx:
        """Commit one transaction that must apply; the transaction (its id names a payout)."""
        assert self.commit((who, payload), step_ms=step_ms), f"{payload} was rejected"
        return self.last_txs()[0]

    def last_txs(self) -> list[t.SignedTx]:
        out = []
        for data in self.blocks[-1].txs:
            signed = t.decode_tx(data, CHAIN_ID)
            assert isinstance(signed, t.SignedTx)
            out.append(signed)
        return out
