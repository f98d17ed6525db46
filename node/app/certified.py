"""Certified blocks written straight into a store, without running consensus.

``HistoryWriter`` commits blocks the way ``node.app.ledger_app.LedgerApp.finalize_block``
does (execute, stage the state tree, one synced LevelDB batch per block) and
signs each block's commit certificate with the given validator keys, so the
store it leaves is a real node's data directory. The audit tests and benchmark
(``tools.audit.history``) write their histories with it, and the demo devnet
(``node.devnet.demo_history``) its month of town life, signed with the devnet's own
validator keys, before the nodes start on that store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from node.client.lightclient import genesis_validator_set
from node.consensus.types import Block, Certificate, Header, VoteKind, vote_signing_body
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import BlockExecutor
from node.ledger.genesis import initial_state
from node.protocol import merkle
from node.protocol.crypto import Domain, Signer
from node.protocol.genesis import Genesis
from node.protocol.state_tree import StateTree
from node.store.blockstore import BlockStore

BLOCK_STEP_MS: Final = 1_000


def certify(
    chain_id: str, height: int, round: int, block_hash: bytes, signers: Sequence[Signer]
) -> Certificate:
    """A commit certificate: the signers' precommits for ``block_hash``."""
    pairs = sorted(
        (
            s.public_key,
            s.sign(
                Domain.VOTE,
                chain_id,
                vote_signing_body(VoteKind.PRECOMMIT, height, round, block_hash, s.public_key),
            ),
        )
        for s in signers
    )
    return Certificate(height, round, block_hash, tuple(pairs))


class HistoryWriter:
    """Writes certified blocks into a new data directory."""

    def __init__(self, path: Path, genesis: Genesis, validators: Sequence[Signer]) -> None:
        self.genesis = genesis
        self.validators = list(validators)
        self.store = BlockStore.open(path, genesis.genesis_hash, create=True)
        items = initial_state(genesis)
        self.tree = StateTree.from_items(items.items())
        self.store.write_genesis_state(items, self.tree.root())
        self.validator_set = genesis_validator_set(genesis)
        self.height = 0
        self.time_ms = genesis.genesis_time_ms
        self.previous_hash: bytes = genesis.genesis_hash

    def close(self) -> None:
        self.store.close()

    def commit(
        self,
        txs: Sequence[bytes],
        step_ms: int = BLOCK_STEP_MS,
        verified: bool = False,
    ) -> Block:
        """Execute and commit one block signed by every validator; every tx must apply.

        ``verified`` skips signature checks (the caller signed the transactions).
        """
        time_ms = self.time_ms + step_ms
        executor = BlockExecutor(self.store, time_ms)
        decoded = [t.decode_tx(data, self.genesis.chain_id) for data in txs]
        tx_ids = []
        for index, signed in enumerate(decoded):
            if isinstance(signed, Result):
                raise ValueError(f"transaction {index} does not decode: {signed.name}")
            outcome = executor.execute_decoded(signed, signature_checked=verified)
            if outcome.result != Result.OK:
                raise ValueError(
                    f"transaction {index} ({signed.tx.payload.KIND.name}) "
                    f"is rejected: {outcome.result.name}"
                )
            tx_ids.append(signed.tx_id)
        return self._commit_executed(time_ms, executor, txs, tx_ids)

    def _commit_executed(
        self, time_ms: int, executor: BlockExecutor, txs: Sequence[bytes], tx_ids: Sequence[bytes]
    ) -> Block:
        writes = executor.writes()
        staged = self.tree.stage(writes)
        height = self.height + 1
        header = Header(
            chain_id=self.genesis.chain_id,
            height=height,
            time_ms=time_ms,
            previous_block_hash=self.previous_hash,
            tx_root=merkle.tx_root(txs),
            state_root=staged.root,
            validators_hash=self.validator_set.hash(),
            next_validators_hash=self.validator_set.hash(),
            proposer=self.validator_set.proposer(height, 0).public_key,
        )
        block = Block(header, tuple(txs))
        cert = certify(self.genesis.chain_id, height, 0, block.hash(), self.validators)
        self.tree.apply(staged)
        self.store.commit_block(
            height, block.encode(), cert.encode(), staged.root, writes, list(tx_ids)
        )
        self.height, self.time_ms, self.previous_hash = height, time_ms, block.hash()
        return block

    def open_block(self, time_ms: int) -> BlockDraft:
        """A block at ``time_ms`` (after the last) to which transactions are added one by
        one; those the ledger refuses are left out. ``seal`` commits it."""
        if time_ms <= self.time_ms:
            raise ValueError("a block's time comes after the previous block's")
        return BlockDraft(self, time_ms, BlockExecutor(self.store, time_ms))

    def seal(self, draft: BlockDraft) -> Block:
        return self._commit_executed(draft.time_ms, draft.executor, draft.txs, draft.tx_ids)


class BlockDraft:
    """A block being filled (see ``HistoryWriter.open_block``)."""

    def __init__(self, writer: HistoryWriter, time_ms: int, executor: BlockExecutor) -> None:
        self.writer, self.time_ms, self.executor = writer, time_ms, executor
        self.txs: list[bytes] = []
        self.tx_ids: list[bytes] = []

    def add(self, signed: t.SignedTx) -> Result:
        """Execute ``signed`` (signed by the caller: its signature is not checked again);
        it goes into the block if the ledger accepts it."""
        outcome = self.executor.execute_decoded(signed, signature_checked=True)
        if outcome.result == Result.OK:
            self.txs.append(signed.encode())
            self.tx_ids.append(signed.tx_id)
        return outcome.result
