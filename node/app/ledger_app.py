"""The one adapter between consensus and the voucher ledger.

Consensus sees opaque transactions and blocks; the ledger sees payloads and
state. The application layer (``node.app``) is the only one that imports both.
This module executes proposals (immediate execution: a header carries the state
root after its own transactions) and persists decided blocks in one synced batch,
both through ``node.app.commit.Chain`` (the one commit path, shared with
``node.app.certified.HistoryWriter`` and the bench), remembers each proposal's
execution until one is decided, and admits transactions to the mempool through the
ledger's checks, against the committed state plus what is already admitted.

Signatures are verified on a thread pool ahead of execution and remembered,
so a transaction checked when it entered the mempool is not checked again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence

from node.app.commit import Chain, Execution, to_validator_set
from node.app.sigverify import SignatureVerifier
from node.app.upgrades import halt_reason
from node.app.version import RULEBOOK
from node.consensus.app_interface import ApplicationHalt, LastBlock, PreparedBlock
from node.consensus.mempool import Mempool, Verdict
from node.consensus.types import Block, Certificate, CertifiedBlock, ValidatorSet
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import BlockExecutor, TxOutcome
from node.ledger.protocols import Rulebook
from node.ledger.state import BlockState, RecordCache
from node.protocol import limits
from node.protocol.crypto import Digest, Signer
from node.protocol.genesis import Genesis
from node.protocol.merkle import tx_root as merkle_tx_root
from node.protocol.state_tree import StateTree
from node.store.blockstore import BlockStore, StoreError

logger = logging.getLogger(__name__)

EXECUTIONS_KEPT = 8  # executed proposals remembered until one is decided

CommitNotice = Callable[[Block, tuple[t.SignedTx, ...]], None]
"""Told of every finalised block (and its transactions, decoded) once it is stored. It
must do no work (the derived views' runner keeps the block and sets an event:
``node.views.runner.ViewRunner.notify``); whatever it raises is logged and dropped,
never seen by consensus."""


SETS_KEPT = 1_024  # validator sets of recent heights, for peers' certified blocks


class DecodedTxs:
    """Transactions decoded once on their way through this node, by their bytes.

    A transaction is decoded when its signature is checked ahead, at admission, at
    every recheck of the mempool after a commit, in a proposal and when its block
    executes; decoding is a pure function of the bytes, so the first decode serves
    every later step. Only successes are kept, oldest out first beyond
    ``limits.DECODED_TXS_MAX`` transactions or ``limits.DECODED_TX_BYTES_MAX`` bytes;
    a committed block's transactions leave.
    """

    def __init__(
        self,
        chain_id: str,
        count_max: int = limits.DECODED_TXS_MAX,
        bytes_max: int = limits.DECODED_TX_BYTES_MAX,
    ) -> None:
        self.chain_id = chain_id
        self._txs: OrderedDict[bytes, t.SignedTx] = OrderedDict()
        self._bytes = 0
        self._count_max = count_max
        self._bytes_max = bytes_max

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, data: bytes) -> bool:
        return data in self._txs

    def decode(self, data: bytes) -> t.SignedTx | Result:
        known = self._txs.get(data)
        if known is not None:
            return known
        decoded = t.decode_tx(data, self.chain_id)
        if isinstance(decoded, Result):
            return decoded
        self._txs[data] = decoded
        self._bytes += len(data)
        while len(self._txs) > self._count_max or self._bytes > self._bytes_max:
            oldest, _ = self._txs.popitem(last=False)
            self._bytes -= len(oldest)
        return decoded

    def forget(self, datas: Sequence[bytes]) -> None:
        for data in datas:
            if self._txs.pop(data, None) is not None:
                self._bytes -= len(data)


class LedgerApp:
    """Implements ``node.consensus.app_interface.Application`` over the ledger and store."""

    def __init__(
        self,
        genesis: Genesis,
        store: BlockStore,
        mempool: Mempool,
        verifier: SignatureVerifier,
        rulebook: Rulebook = RULEBOOK,
    ) -> None:
        self.genesis = genesis
        self.rulebook = rulebook  # the protocols this software runs, with their rules
        self.store = store
        self.mempool = mempool
        self._verifier = verifier
        self.decoded = DecodedTxs(genesis.chain_id)
        self.chain = Chain(store, genesis, rulebook)  # the one commit path
        self._sets: OrderedDict[int, ValidatorSet] = OrderedDict()
        self._remember_sets()
        self._executions: OrderedDict[Digest, Execution] = OrderedDict()
        # Our last proposal's execution, by what fixes it (height, time, parent, txs): the
        # block carrying it is finalised without executing it again.
        self._proposed: tuple[tuple[int, int, bytes, tuple[bytes, ...]], Execution] | None = None
        self._checker = self._new_checker()
        self.commit_notices: list[CommitNotice] = []

    @property
    def tree(self) -> StateTree:
        return self.chain.tree

    @property
    def records(self) -> RecordCache:
        """The decoded committed state, shared by every execution."""
        return self.chain.records

    @property
    def _last(self) -> LastBlock:
        return self.chain.last

    # --- mempool ----------------------------------------------------------------------

    def check(self, data: bytes) -> Verdict:
        """Admission check against committed state plus the admitted transactions."""
        if len(data) > self.genesis.limits.tx_bytes_max:
            return Verdict(None, int(Result.TOO_LARGE))
        decoded = self.decoded.decode(data)
        if isinstance(decoded, Result):
            return Verdict(None, int(decoded))
        known = self._verifier.is_known_good(decoded)
        if not known:
            ok = decoded.signature_ok()
            if not ok:
                return Verdict(decoded.tx_id, int(Result.BAD_SIGNATURE))
            self._verifier.remember([decoded], [True])
        outcome = self._checker.execute_decoded(decoded, signature_checked=True)
        return Verdict(decoded.tx_id, int(outcome.result))

    async def verify_ahead(self, datas: Sequence[bytes]) -> None:
        """Check the signatures of ``datas`` on the verifier's workers, off this thread.

        Call before admitting them: ``check`` then finds the good ones known and
        does not verify them again on the loop thread (a bad one is verified
        again there, and rejected). Undecodable bytes are left to ``check``.
        """
        decoded = [self.decoded.decode(data) for data in datas]
        todo = [
            d for d in decoded if not isinstance(d, Result) and not self._verifier.is_known_good(d)
        ]
        if todo:
            verdicts = await asyncio.wrap_future(self._verifier.submit(todo))
            self._verifier.remember(todo, verdicts)

    def report_evidence(
        self,
        statements: tuple[tuple[bytes, bytes], tuple[bytes, bytes]],
        node_key: Signer,
    ) -> Verdict:
        """Turn two conflicting signed statements into an evidence transaction
        signed by this node's key, and admit it to the mempool."""
        (first, first_sig), (second, second_sig) = statements
        sequence = self._checker.sequence_of(t.Kind.EVIDENCE, node_key.public_key)
        if isinstance(sequence, Result):
            return Verdict(None, int(sequence))
        payload = t.Evidence(first, first_sig, second, second_sig)
        tx = t.Tx(self.genesis.chain_id, node_key.public_key, sequence, payload)
        return self.submit(tx.sign(node_key).encode())

    def admitted_state(self) -> BlockState:
        """Committed state plus the admitted transactions: what ``check`` judged against
        (read only, on this thread, e.g. to explain a refusal)."""
        return self._checker.state()

    def check_tx(self, tx: bytes) -> bool:
        return self.check(tx).code == 0

    def submit(self, data: bytes) -> Verdict:
        """Admit one transaction to the mempool; the verdict says why not."""
        added = self.mempool.add(data, self.check)
        return added.verdict

    # --- consensus ----------------------------------------------------------------------

    def halt_reason(self) -> str | None:
        """Why this node must not go past its last block: governance scheduled, for the
        next height, a protocol this software does not know (``node.app.upgrades``)."""
        raw = self.store.get(r.upgrade_key())
        upgrade = None if raw is None else r.Upgrade.decode(raw)
        return halt_reason(upgrade, self._last.height, self.rulebook.known())

    def last_block(self) -> LastBlock:
        return self._last

    def validator_set(self, height: int) -> ValidatorSet:
        """The set in force at ``height``: for the next heights from the ledger's
        current record (with a scheduled change), for past ones from its history."""
        known = self._sets.get(height)
        if known is not None:
            return known
        if height > self._last.height:
            record = r.Validators.decode(self._raw(r.validators_key()))
            return to_validator_set(record.at(height))
        eras = [
            (int.from_bytes(key[1:], "big"), value)
            for key, value in self.store.iter_prefix(r.validator_history_prefix())
        ]
        _, raw = max((e for e in eras if e[0] <= height), default=eras[0])
        return to_validator_set(r.ValidatorEra.decode(raw).validators)

    def _remember_sets(self) -> None:
        for height in (self._last.height + 1, self._last.height + 2):
            self._sets[height] = self.validator_set(height)
        while len(self._sets) > SETS_KEPT:
            self._sets.popitem(last=False)

    def _raw(self, key: bytes) -> bytes:
        value = self.store.get(key)
        if value is None:
            raise StoreError(f"the state lacks {key!r}")
        return value

    def _new_checker(self) -> BlockExecutor:
        """Admission checks run as if in the next block (under the rules of the protocol
        in force there); a node stopping before a protocol it does not know checks, for
        the moments before it exits, under its last block's rules."""
        height = self._last.height + (0 if self.halt_reason() is not None else 1)
        return self.chain.executor(height, self._last.time_ms)

    def prepare_proposal(
        self, height: int, time_ms: int, previous_block_hash: bytes
    ) -> PreparedBlock:
        reason = self.halt_reason()
        if reason is not None:
            raise ApplicationHalt(reason)  # never propose under rules we do not know
        limits = self.genesis.limits
        candidates = self.mempool.reap(limits.block_txs_max, limits.block_bytes_max)
        decoded = [self.decoded.decode(data) for data in candidates]
        verdicts = self._verify(decoded)
        executor = self.chain.executor(height, time_ms)
        chosen: list[bytes] = []
        outcomes: list[TxOutcome] = []
        for data, signed, ok in zip(candidates, decoded, verdicts, strict=True):
            if not ok:
                continue
            outcome = executor.execute_decoded(signed, signature_checked=True)
            if outcome.result == Result.OK:
                chosen.append(data)
                outcomes.append(outcome)
        execution = self.chain.staged(executor, height, outcomes)
        self._proposed = ((height, time_ms, previous_block_hash, tuple(chosen)), execution)
        return PreparedBlock(tuple(chosen), execution.staged.root, execution.next_validators.hash())

    def process_proposal(self, block: Block) -> bool:
        header = block.header
        if header.height != self._last.height + 1:
            return False
        if self.halt_reason() is not None:
            return False  # the rules of this height are unknown here: never vote for it
        if header.previous_block_hash != self._last.block_hash:
            return False
        if header.tx_root != merkle_tx_root(block.txs):
            return False
        if self.genesis.limits.block_excess(block.txs) is not None:
            return False
        if header.validators_hash != self.validator_set(header.height).hash():
            return False
        execution = self._execute(block)
        return (
            execution.all_ok
            and execution.staged.root == header.state_root
            and execution.next_validators.hash() == header.next_validators_hash
        )

    def finalize_block(self, block: Block, certificate: Certificate) -> None:
        header = block.header
        execution = self._execute(block)
        self.chain.commit(block, certificate, execution)  # raises unless it follows and matches
        self._remember_sets()
        self._executions.clear()
        self._proposed = None
        self.mempool.remove_committed(execution.tx_ids)
        self._checker = self._new_checker()
        self.mempool.recheck(self.check)
        txs = tuple(s for s in map(self.decoded.decode, block.txs) if isinstance(s, t.SignedTx))
        self.decoded.forget(block.txs)
        for notice in self.commit_notices:
            try:
                notice(block, txs)
            except Exception:  # a notice never stops consensus
                logger.exception("a commit notice failed at block %d", header.height)
        reason = self.halt_reason()
        if reason is not None:
            raise ApplicationHalt(reason)  # the block is durable; the node stops here

    def certified_block(self, height: int) -> CertifiedBlock | None:
        raw_block = self.store.block(height)
        raw_cert = self.store.certificate(height)
        if raw_block is None or raw_cert is None:
            return None
        return CertifiedBlock(Block.decode(raw_block), Certificate.decode(raw_cert))

    # --- execution --------------------------------------------------------------------

    def _execute(self, block: Block) -> Execution:
        key = block.hash()
        cached = self._executions.get(key)
        if cached is not None:
            return cached
        header = block.header
        fixed_by = (header.height, header.time_ms, header.previous_block_hash, tuple(block.txs))
        if self._proposed is not None and self._proposed[0] == fixed_by:
            execution = self._proposed[1]  # our own proposal: executed by prepare_proposal
        else:
            decoded = [self.decoded.decode(data) for data in block.txs]
            execution = self.chain.execute(
                header.height, header.time_ms, decoded, self._verify(decoded)
            )
        self._executions[key] = execution
        while len(self._executions) > EXECUTIONS_KEPT:
            self._executions.popitem(last=False)
        return execution

    def _verify(self, decoded: Sequence[t.SignedTx | Result]) -> list[bool]:
        signed = [d for d in decoded if not isinstance(d, Result)]
        todo = [s for s in signed if not self._verifier.is_known_good(s)]
        verdicts = self._verifier.verify(todo) if todo else []
        self._verifier.remember(todo, verdicts)
        bad = {id(s) for s, ok in zip(todo, verdicts, strict=True) if not ok}
        return [not isinstance(d, Result) and id(d) not in bad for d in decoded]
