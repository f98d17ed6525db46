"""Certified blocks written straight into a store, without running consensus.

``HistoryWriter`` commits blocks through the node's own commit path
(``node.app.commit.Chain``, as ``node.app.ledger_app.LedgerApp.finalize_block``:
execute, stage the state tree, one synced LevelDB batch per block) and signs each
block's commit certificate with the given validator keys, so the store it leaves is a
real node's data directory. The audit tests and benchmark (``tools.audit.history``)
write their histories with it, ``relance-bench ledger`` its blocks, and the demo devnet
(``node.devnet.demo_history``) its month of town life, signed with the devnet's own
validator keys, before the nodes start on that store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from node.app.commit import Chain, Execution
from node.client.lightclient import genesis_validator_set
from node.consensus.types import Block, Certificate, Header, VoteKind, vote_signing_body
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import BlockExecutor, TxOutcome
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
    """Writes certified blocks into a new data directory, through ``node.app.commit``."""

    def __init__(self, path: Path, genesis: Genesis, validators: Sequence[Signer]) -> None:
        self.genesis = genesis
        self.validators = list(validators)
        self.chain = Chain(BlockStore.open(path, genesis.genesis_hash, create=True), genesis)
        self.validator_set = genesis_validator_set(genesis)

    @property
    def store(self) -> BlockStore:
        return self.chain.store

    @property
    def tree(self) -> StateTree:
        return self.chain.tree

    @property
    def height(self) -> int:
        return self.chain.last.height

    @property
    def time_ms(self) -> int:
        return self.chain.last.time_ms

    @property
    def previous_hash(self) -> bytes:
        return self.chain.last.block_hash

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
        decoded = []
        for index, data in enumerate(txs):
            signed = t.decode_tx(data, self.genesis.chain_id)
            if isinstance(signed, Result):
                raise ValueError(f"transaction {index} does not decode: {signed.name}")
            decoded.append(signed)
        verdicts = [verified or signed.signature_ok() for signed in decoded]
        time_ms = self.time_ms + step_ms
        execution = self.chain.execute(self.height + 1, time_ms, decoded, verdicts)
        for index, (signed, outcome) in enumerate(zip(decoded, execution.outcomes, strict=False)):
            if outcome.result != Result.OK:
                raise ValueError(
                    f"transaction {index} ({signed.tx.payload.KIND.name}) "
                    f"is rejected: {outcome.result.name}"
                )
        return self.write(time_ms, txs, execution)

    def write(self, time_ms: int, txs: Sequence[bytes], execution: Execution) -> Block:
        """Commit the block of ``txs`` at ``time_ms`` whose ``execution`` the caller ran
        (``chain.execute``), signed by every validator."""
        height = self.height + 1
        header = Header(
            chain_id=self.genesis.chain_id,
            height=height,
            time_ms=time_ms,
            previous_block_hash=self.previous_hash,
            tx_root=merkle.tx_root(txs),
            state_root=execution.staged.root,
            validators_hash=self.validator_set.hash(),
            next_validators_hash=execution.next_validators.hash(),
            proposer=self.validator_set.proposer(height, 0).public_key,
        )
        block = Block(header, tuple(txs))
        cert = certify(self.genesis.chain_id, height, 0, block.hash(), self.validators)
        self.chain.commit(block, cert, execution)
        self.validator_set = execution.next_validators
        return block

    def open_block(self, time_ms: int) -> BlockDraft:
        """A block at ``time_ms`` (after the last) to which transactions are added one by
        one; those the ledger refuses are left out. ``seal`` commits it."""
        if time_ms <= self.time_ms:
            raise ValueError("a block's time comes after the previous block's")
        return BlockDraft(self, time_ms, self.chain.executor(self.height + 1, time_ms))

    def seal(self, draft: BlockDraft) -> Block:
        execution = self.chain.staged(draft.executor, self.height + 1, draft.outcomes)
        return self.write(draft.time_ms, draft.txs, execution)


class BlockDraft:
    """A block being filled (see ``HistoryWriter.open_block``)."""

    def __init__(self, writer: HistoryWriter, time_ms: int, executor: BlockExecutor) -> None:
        self.writer, self.time_ms, self.executor = writer, time_ms, executor
        self.txs: list[bytes] = []
        self.outcomes: list[TxOutcome] = []

    def add(self, signed: t.SignedTx) -> Result:
        """Execute ``signed`` (signed by the caller: its signature is not checked again);
        it goes into the block if the ledger accepts it."""
        outcome = self.executor.execute_decoded(signed, signature_checked=True)
        if outcome.result == Result.OK:
            self.txs.append(signed.encode())
            self.outcomes.append(outcome)
        return outcome.result
