"""The one commit path: execute a block's transactions, stage the state tree, commit.

``Chain`` is a store with its state tree, its record cache, the rulebook and the last
block. ``execute`` runs a block's decoded transactions on the last committed state and
stages the tree (nothing is written); ``commit`` is the only code that applies the tree,
writes the block in one synced batch (``BlockStore.commit_block``) and moves the record
cache. Its three users:

- the node (``node.app.ledger_app.LedgerApp``), which adds the consensus concerns: the
  mempool, the signature verdicts, an execution remembered per proposal, notices, halts;
- ``node.app.certified.HistoryWriter``, which signs the blocks itself (audit histories,
  the demo devnet's month, many tests);
- ``relance-bench ledger`` (``tools.bench.cli``), through ``HistoryWriter``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node.app.version import RULEBOOK
from node.consensus.app_interface import LastBlock
from node.consensus.types import Block, Certificate, Validator, ValidatorSet
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import BlockExecutor, TxOutcome
from node.ledger.genesis import initial_state
from node.ledger.protocols import Rulebook
from node.ledger.state import ROLE_PREFIXES, RecordCache
from node.protocol.errors import AppInvariantBroken
from node.protocol.genesis import Genesis, GenesisValidator
from node.protocol.state_tree import StagedUpdate, StateTree
from node.store.blockstore import BlockStore, StoreError


def to_validator_set(entries: Sequence[r.Validator | GenesisValidator]) -> ValidatorSet:
    """The consensus view of the ledger's (or the genesis file's) validators."""
    return ValidatorSet(tuple(Validator(v.public_key, v.power, v.name) for v in entries))


@dataclass(frozen=True, slots=True)
class Execution:
    """A block executed on the last committed state, ready to commit if decided."""

    outcomes: tuple[TxOutcome, ...]
    writes: dict[bytes, bytes | None]
    changes: dict[bytes, r.Record | None]  # the same changes, decoded (for the record cache)
    staged: StagedUpdate
    next_validators: ValidatorSet  # the set in force at the following height

    @property
    def all_ok(self) -> bool:
        return all(o.result == Result.OK for o in self.outcomes)

    @property
    def tx_ids(self) -> list[bytes]:
        return [o.tx_id for o in self.outcomes if o.tx_id is not None]


def open_state(store: BlockStore, genesis: Genesis) -> StateTree:
    """The state tree of ``store``: on a new store, the genesis state, written with its
    root; else the stored state, checked against the root recorded at its height."""
    if store.height() == 0 and store.state_root(0) is None:
        items = initial_state(genesis)
        tree = StateTree.from_items(items.items())
        store.write_genesis_state(items, tree.root())
        return tree
    tree = StateTree.from_items(store.state_items())
    if store.state_root(store.height()) != tree.root():
        raise StoreError("the stored state does not match its recorded root: run an audit")
    return tree


def read_last_block(store: BlockStore, genesis: Genesis) -> LastBlock:
    height = store.height()
    if height == 0:
        return LastBlock(0, genesis.genesis_hash, genesis.genesis_time_ms)
    raw = store.block(height)
    if raw is None:
        raise StoreError(f"block {height} is missing from the store")
    header = Block.decode(raw).header
    return LastBlock(height, header.hash(), header.time_ms)


class Chain:
    """A store, its state tree, its record cache and its last block."""

    def __init__(self, store: BlockStore, genesis: Genesis, rulebook: Rulebook = RULEBOOK) -> None:
        self.store = store
        self.genesis = genesis
        self.rulebook = rulebook  # the protocols this software runs, with their rules
        self.tree = open_state(store, genesis)
        self.records = RecordCache()  # decoded committed state, shared by every execution
        # Role keys answered from memory: whatever the store holds at open (a new
        # chain's genesis, a restored backup, a state-synced store), then each commit.
        self.records.index(store, ROLE_PREFIXES)
        self.last = read_last_block(store, genesis)

    def executor(self, height: int, time_ms: int) -> BlockExecutor:
        """An executor for block ``height`` at ``time_ms`` on the committed state (for
        a block filled one transaction at a time; ``staged`` finishes it)."""
        return BlockExecutor(self.store, time_ms, height, self.records, rulebook=self.rulebook)

    def execute(
        self,
        height: int,
        time_ms: int,
        decoded: Sequence[t.SignedTx | Result],
        verdicts: Sequence[bool],
    ) -> Execution:
        """Execute a block's transactions (``verdicts``: their signatures, checked by the
        caller); nothing is written. An undecodable transaction or a bad signature ends
        the execution there: the block is invalid."""
        executor = self.executor(height, time_ms)
        outcomes = []
        for signed, ok in zip(decoded, verdicts, strict=True):
            if isinstance(signed, Result) or not ok:
                outcomes.append(_refused(signed))
                break
            outcomes.append(executor.execute_decoded(signed, signature_checked=True))
        return self.staged(executor, height, outcomes)

    def staged(
        self, executor: BlockExecutor, height: int, outcomes: Sequence[TxOutcome]
    ) -> Execution:
        """The execution of block ``height`` by ``executor``, with the tree staged."""
        writes = executor.writes()
        following = to_validator_set(executor.validators_at(height + 1))
        return Execution(
            tuple(outcomes), writes, executor.changes(), self.tree.stage(writes), following
        )

    def commit(self, block: Block, certificate: Certificate, execution: Execution) -> None:
        """Apply ``execution`` (of ``block``) to the tree and write the block, its
        certificate and its state changes in one synced batch."""
        header = block.header
        if header.height != self.last.height + 1:
            raise StoreError(f"block {header.height} does not follow {self.last.height}")
        if not execution.all_ok or execution.staged.root != header.state_root:
            raise AppInvariantBroken(f"a certified block {header.height} does not execute here")
        self.tree.apply(execution.staged)
        self.store.commit_block(
            header.height,
            block.encode(),
            certificate.encode(),
            header.state_root,
            execution.writes,
            execution.tx_ids,
        )
        self.records.commit(execution.changes)
        self.last = LastBlock(header.height, header.hash(), header.time_ms)


def _refused(signed: t.SignedTx | Result) -> TxOutcome:
    if isinstance(signed, Result):
        return TxOutcome(signed, None, None, None)
    return TxOutcome(Result.BAD_SIGNATURE, None, None, None)
