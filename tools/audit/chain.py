"""The independent audit of a whole history, from the genesis file alone.

``audit`` replays a chain height by height from a ``BlockSource`` (a node's
data directory, or blocks downloaded from nodes) and checks, in this order
for each height: the block and certificate decode canonically; the header
chain (chain id, height, previous block hash, strictly increasing time,
validator hashes of the validator set in force, a known proposer); the
block within the genesis file's limits (transactions, bytes); the
commit certificate (its height and block hash, every signature, distinct
known validators, more than 2/3 of the voting power); the transaction root;
every transaction's signature; re-execution of every transaction with the
ledger (which also enforces sequences and every campaign rule); independent
cross-checks (each sender's sequence counts up by one; each payment's
campaign window and merchant eligibility; payouts opened once, then settled
or returned at most once, with unchanged amounts, the bank reference of the
settling transaction or the reason of the returning one; no holder above a
campaign's cap); the state root after the block; and the money invariant
of every touched issuer. It stops at the first divergence, named by height,
transaction index and id, and what differs. At the end, a data directory's
current state and recorded roots are compared with the re-executed ones.

Signatures (transactions and certificates) are verified a few blocks ahead
on a thread pool, one thread per core: libsodium releases the GIL. With
``processes=True`` transaction signatures go to worker processes instead
(``node.app.sigverify.ProcessVerifier``), free of the GIL that decoding and
re-execution hold; certificate votes, a handful per block, stay on threads.
With ``processes=True`` the state tree also lives in a process of its own
(``StateRoots``): each block's writes go to it as bytes and its root is
checked up to ``ROOTS_AHEAD`` blocks later, while the replay executes the
next ones; a divergence found at a later height waits for the earlier roots,
so the first divergence is still the one reported, with the counts before it.

Imports the node's pure modules and the ledger; never its daemon or API.
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, Protocol

from node.app.commit import to_validator_set
from node.app.sigverify import ProcessVerifier, exit_with_parent
from node.app.version import RULEBOOK
from node.client.lightclient import genesis_validator_set
from node.consensus.types import (
    Block,
    Certificate,
    Header,
    ValidatorSet,
    VoteKind,
    vote_signing_body,
)
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import ACCOUNT_KINDS, BlockExecutor, principal_of
from node.ledger.genesis import initial_state
from node.ledger.protocols import Rulebook, UnknownProtocol
from node.ledger.state import BlockState, RecordCache
from node.protocol import merkle
from node.protocol.codec import DecodeError
from node.protocol.crypto import Domain, signing_bytes, verify_raw
from node.protocol.errors import ToolInvariantBroken
from node.protocol.genesis import Genesis
from node.protocol.state_tree import StateTree
from node.run import heap
from tools.audit.books import Books, BooksError, CampaignTally, describe_key

LOOKAHEAD_BLOCKS: Final = 4  # blocks decoded and verifying ahead of execution
CHUNK_MIN: Final = 64  # signatures per pool task, at least
# Where the auditing process's time goes (``AuditResult.phase_seconds``):
PHASES: Final = (
    "fetch_decode",  # read blocks and certificates, decode them, transaction roots
    "signature_wait",  # waiting for signature verdicts from the workers
    "execute",  # the ledger's re-execution, its writes and decoded records
    "state_tree",  # the state root after each block
    "cross_checks",  # header, certificate, sequences, payment rules, books, stored state
)


# --- where blocks come from -----------------------------------------------------------


class BlockSource(Protocol):
    """Certified blocks by height; the bytes exactly as stored or served."""

    def top_height(self) -> int: ...

    def block_bytes(self, height: int) -> bytes | None: ...

    def certificate_bytes(self, height: int) -> bytes | None: ...


class StoredState(Protocol):
    """What a data directory adds: its recorded roots, state and transaction index."""

    def recorded_root(self, height: int) -> bytes | None: ...

    def state_items(self) -> Iterator[tuple[bytes, bytes]]: ...

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None: ...


# --- the validator set in force ---------------------------------------------------------


class ValidatorSchedule:
    """The validator set in force at each height.

    Genesis fixes the set from height 1. Governance (``change_validators``,
    not yet in the protocol) will ``schedule`` a new set from a later height;
    the audit and the light client ask ``at(height)`` and nothing else.
    """

    def __init__(self, genesis: Genesis) -> None:
        self._starts: list[int] = [1]
        self._sets: list[ValidatorSet] = [genesis_validator_set(genesis)]

    def schedule(self, from_height: int, validator_set: ValidatorSet) -> None:
        if from_height <= self._starts[-1]:
            raise ValueError("validator changes are scheduled in height order")
        self._starts.append(from_height)
        self._sets.append(validator_set)

    def at(self, height: int) -> ValidatorSet:
        if height < 1:
            raise ValueError("heights start at 1")
        return self._sets[bisect.bisect_right(self._starts, height) - 1]


# --- findings ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first thing that does not check, and where."""

    height: int
    check: str  # a stable name: "certificate", "tx_signature", "state_root", ...
    message: str
    tx_index: int | None = None
    tx_id: str | None = None
    expected: str | None = None
    found: str | None = None

    def describe(self) -> str:
        where = f"height {self.height}"
        if self.tx_index is not None:
            where += f", transaction {self.tx_index}"
        if self.tx_id is not None:
            where += f" (id {self.tx_id})"
        text = f"{where}: [{self.check}] {self.message}"
        if self.expected is not None or self.found is not None:
            text += f"\n  expected: {self.expected}\n  found:    {self.found}"
        return text


class _Stop(Exception):
    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.describe())
        self.divergence = divergence


@dataclass
class AuditResult:
    chain_id: str
    genesis_hash: str
    top_height: int
    heights_checked: int = 0
    transactions: int = 0
    signatures_verified: int = 0
    certificates: int = 0
    payments_rule_checked: int = 0
    payments_rule_by_execution_only: int = 0
    evidence: int = 0
    seconds: float = 0.0
    last_block_hash: str = ""
    state_root: str = ""
    divergence: Divergence | None = None
    stored_state_checked: bool = False
    kinds: dict[str, int] = field(default_factory=dict)
    books: Books = field(default_factory=Books)
    phase_seconds: dict[str, float] = field(default_factory=dict)  # of PHASES
    state_root_process_seconds: float = 0.0  # CPU time of the state roots' own process

    @property
    def ok(self) -> bool:
        return self.divergence is None


# --- signatures on every core ---------------------------------------------------------


_Triple = tuple[bytes, bytes, bytes]  # message, public key, signature


def _verify_all(triples: Sequence[_Triple]) -> list[bool]:
    return [verify_raw(m, k, s) for m, k, s in triples]


class SignaturePool:
    """Verifies batches of signatures ahead of execution; results in order.

    Threads by default (``workers`` of them); with ``processes``, transaction
    signatures go to ``workers`` worker processes and only certificate votes
    stay on the threads.
    """

    def __init__(self, workers: int | None = None, processes: bool = False) -> None:
        self.workers = workers or max(1, len(os.sched_getaffinity(0)))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="audit-verify")
        self._processes = ProcessVerifier(self.workers) if processes else None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._processes is not None:
            self._processes.close()

    def submit(self, triples: Sequence[_Triple]) -> list[Future[list[bool]]]:
        size = max(CHUNK_MIN, -(-len(triples) // self.workers))
        return [
            self._pool.submit(_verify_all, triples[i : i + size])
            for i in range(0, len(triples), size)
        ]

    def submit_block(
        self, votes: Sequence[_Triple], txs: Sequence[t.SignedTx], chain_id: str
    ) -> list[Future[list[bool]]]:
        """Certificate votes, then transactions: the futures' results concatenate in order."""
        if self._processes is not None:
            return self.submit(votes) + self._processes.submit(txs)
        triples = list(votes)
        for signed in txs:
            triples.append(
                (
                    signing_bytes(Domain.TX, chain_id, signed.body),
                    signed.tx.sender,
                    signed.signature,
                )
            )
        return self.submit(triples)


# --- state roots, in a process of their own --------------------------------------------

ROOTS_AHEAD: Final = 4  # blocks executed before the oldest pending state root must be in

_WORKER_TREE: list[StateTree] = []  # in a state-root worker process: its one tree
_WORKER_BLOCKS = [0]  # and the blocks it applied


def _start_tree_worker(items: dict[bytes, bytes]) -> None:
    exit_with_parent()
    _WORKER_TREE.append(StateTree.from_items(items.items()))
    heap.freeze_loaded()  # the tree is long-lived: never walked by the collector again


def _tree_root() -> bytes:
    return bytes(_WORKER_TREE[0].root())


def _tree_update(writes: dict[bytes, bytes | None]) -> tuple[bytes, float]:
    """In the worker: the root after ``writes``, and the CPU time it took."""
    start = time.thread_time()
    root = bytes(_WORKER_TREE[0].update(writes))
    _WORKER_BLOCKS[0] += 1
    heap.after_block(_WORKER_BLOCKS[0])  # as a node does: its replaced containers frozen anew
    return root, time.thread_time() - start


class StateRoots:
    """The re-executed state's tree: each block's writes in, its state root out.

    In process (``processes=False``) a root is computed when asked. With
    ``processes``, a worker process of its own holds the tree (the writes
    travel as bytes) and computes each block's root while the replay executes
    the next blocks: the futures resolve in height order, one worker applying
    the writes in the order they were sent.
    """

    def __init__(self, items: dict[bytes, bytes], processes: bool) -> None:
        self._tree: StateTree | None = None
        self._pool: ProcessPoolExecutor | None = None
        if processes:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                1, mp_context=context, initializer=_start_tree_worker, initargs=(items,)
            )
            self._genesis = self._pool.submit(_tree_root).result()
        else:
            self._tree = StateTree.from_items(items.items())
            self._genesis = bytes(self._tree.root())
        self.last = self._genesis
        self.worker_seconds = 0.0  # the worker's CPU time on the roots checked so far

    def genesis_root(self) -> bytes:
        return self._genesis

    def submit(self, writes: dict[bytes, bytes | None]) -> Future[tuple[bytes, float]]:
        """The state root after ``writes`` (applied after every earlier submission),
        and the worker's CPU seconds for it (0 in process: the replay's own time)."""
        if self._pool is not None:
            return self._pool.submit(_tree_update, writes)
        if self._tree is None:
            raise ToolInvariantBroken("state roots without a tree")
        out: Future[tuple[bytes, float]] = Future()
        out.set_result((bytes(self._tree.update(writes)), 0.0))
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


# An AuditResult's counts when a height's root is handed over: those a root that differs
# reports, as if it had been checked then.
_COUNTED: Final = (
    "heights_checked",
    "transactions",
    "signatures_verified",
    "certificates",
    "payments_rule_checked",
    "payments_rule_by_execution_only",
    "kinds",
)
_Counts = tuple[object, ...]


def _counts(result: AuditResult) -> _Counts:
    return tuple(
        dict(result.kinds) if name == "kinds" else getattr(result, name) for name in _COUNTED
    )


@dataclass(frozen=True, slots=True)
class _PendingRoot:
    """A block executed, its state root still being computed; the counts before it."""

    height: int
    certified: bytes
    root: Future[tuple[bytes, float]]
    before: _Counts
    previous_hash: bytes


# --- one height, prepared ahead ------------------------------------------------------


@dataclass
class _Prepared:
    height: int
    block: Block | None = None
    certificate: Certificate | None = None
    problem: Divergence | None = None
    decoded: list[t.SignedTx | Result] = field(default_factory=list)
    tx_root: bytes = b""
    verdicts: list[Future[list[bool]]] = field(default_factory=list)

    def results(self) -> list[bool]:
        return [ok for part in self.verdicts for ok in part.result()]


def _prepare(source: BlockSource, chain_id: str, height: int, pool: SignaturePool) -> _Prepared:
    """Fetch and decode one height, and start verifying its signatures."""
    out = _Prepared(height)
    raw_block = source.block_bytes(height)
    if raw_block is None:
        out.problem = Divergence(height, "block_missing", "the source has no block here")
        return out
    raw_cert = source.certificate_bytes(height)
    if raw_cert is None:
        out.problem = Divergence(height, "certificate_missing", "the block has no certificate")
        return out
    try:
        out.block = Block.decode(raw_block)
    except (DecodeError, ValueError) as exc:
        out.problem = Divergence(height, "block_decode", f"the block does not decode: {exc}")
        return out
    try:
        out.certificate = Certificate.decode(raw_cert)
    except (DecodeError, ValueError) as exc:
        out.problem = Divergence(height, "certificate_decode", f"does not decode: {exc}")
        return out
    cert = out.certificate
    triples: list[_Triple] = [
        (
            signing_bytes(
                Domain.VOTE,
                chain_id,
                vote_signing_body(VoteKind.PRECOMMIT, cert.height, cert.round, cert.block_hash, k),
            ),
            k,
            s,
        )
        for k, s in cert.signatures
    ]
    out.decoded = [t.decode_tx(data, chain_id) for data in out.block.txs]
    txs = [d for d in out.decoded if not isinstance(d, Result)]
    out.tx_root = merkle.tx_root(out.block.txs)
    out.verdicts = pool.submit_block(triples, txs, chain_id)
    return out


# --- the audit ------------------------------------------------------------------------


class _AuditView:
    """The re-executed state, as the ledger's ``View``."""

    def __init__(self, items: dict[bytes, bytes]) -> None:
        self.items = items

    def get(self, key: bytes) -> bytes | None:
        return self.items.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self.items if k.startswith(prefix)):
            yield key, self.items[key]


Progress = Callable[[int], None]


class _Laps:
    """The auditing process's time by phase: each lap charges the time since the last."""

    __slots__ = ("_last", "seconds")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] += now - self._last
        self._last = now


class Auditor:
    """Replays a chain from genesis; one instance audits one history once."""

    def __init__(
        self,
        genesis: Genesis,
        source: BlockSource,
        stored: StoredState | None = None,
        schedule: ValidatorSchedule | None = None,
        workers: int | None = None,
        processes: bool = False,
        rulebook: Rulebook = RULEBOOK,
    ) -> None:
        self.genesis = genesis
        self.processes = processes
        self.rulebook = rulebook  # each block replays under the protocol in force at its height
        self.source = source
        self.stored = stored
        self.schedule = schedule or ValidatorSchedule(genesis)
        self.workers = workers
        items = initial_state(genesis)
        self.view = _AuditView(dict(items))
        self.records = RecordCache()  # decoded records of the replayed state
        self._genesis_items = items
        self.roots: StateRoots | None = None  # started by run()
        self._pending: deque[_PendingRoot] = deque()
        self.books = Books.from_state(items)
        self.sequences: dict[bytes, int] = {}
        self.previous_hash: bytes = genesis.genesis_hash
        self.previous_time_ms = genesis.genesis_time_ms
        self.laps = _Laps()

    def run(self, to_height: int | None = None, progress: Progress | None = None) -> AuditResult:
        top = self.source.top_height()
        if to_height is not None:
            top = min(top, to_height)
        result = AuditResult(self.genesis.chain_id, self.genesis.genesis_hash.hex(), top)
        result.books = self.books
        pool = SignaturePool(self.workers, self.processes)  # worker start-up is not timed
        self.roots = roots = StateRoots(self._genesis_items, self.processes)
        start = time.perf_counter()
        self.laps = laps = _Laps()
        try:
            self._check_genesis_root()
            self._replay(top, pool, result, progress)
            if self.stored is not None and to_height is None:
                self._check_stored_state(top)
                result.stored_state_checked = True
        except _Stop as stop:
            result.divergence = stop.divergence
        finally:
            laps.lap("cross_checks")
            pool.close()
            roots.close()
            result.seconds = time.perf_counter() - start
            result.phase_seconds = laps.seconds
            result.state_root_process_seconds = roots.worker_seconds
        result.last_block_hash = self.previous_hash.hex()
        result.state_root = roots.last.hex()
        return result

    # --- replay -------------------------------------------------------------------

    def _replay(
        self, top: int, pool: SignaturePool, result: AuditResult, progress: Progress | None
    ) -> None:
        chain_id = self.genesis.chain_id
        ahead: deque[_Prepared] = deque()
        next_height = 1
        lap = self.laps.lap
        for height in range(1, top + 1):
            lap("cross_checks")
            while next_height <= top and len(ahead) < LOOKAHEAD_BLOCKS:
                ahead.append(_prepare(self.source, chain_id, next_height, pool))
                next_height += 1
            lap("fetch_decode")
            prepared = ahead.popleft()
            if prepared.height != height:
                raise ToolInvariantBroken("audit pipeline out of order")
            try:
                self._check_height(prepared, result)
            except _Stop:
                self._check_pending_roots(result, 0)  # an earlier height's root comes first
                raise
            result.heights_checked = height
            if progress is not None:
                progress(1)
        self._check_pending_roots(result, 0)

    def _check_height(self, p: _Prepared, result: AuditResult) -> None:
        if p.problem is not None:
            raise _Stop(p.problem)
        block, cert = p.block, p.certificate
        if block is None or cert is None:
            raise ToolInvariantBroken("prepared block without block or certificate")
        header = block.header
        validators = self.schedule.at(p.height)
        self._check_header(p.height, header, validators)
        excess = self.genesis.limits.block_excess(block.txs)
        if excess is not None:
            raise _Stop(Divergence(p.height, "block_limits", f"the block holds {excess}"))
        self.laps.lap("cross_checks")
        verdicts = p.results()
        self.laps.lap("signature_wait")
        n_cert = len(cert.signatures)
        self._check_certificate(p.height, header, cert, validators, verdicts[:n_cert])
        result.certificates += 1
        tx_verdicts = iter(verdicts[n_cert:])
        signature_ok = [False if isinstance(d, Result) else next(tx_verdicts) for d in p.decoded]
        result.signatures_verified += len(verdicts)
        if p.tx_root != header.tx_root:
            self._explain_tx_root(p, header, signature_ok)
        self._execute(p, header, signature_ok, result)
        result.transactions += len(block.txs)
        self.previous_hash = header.hash()
        self.previous_time_ms = header.time_ms

    def _check_header(self, height: int, header: Header, validators: ValidatorSet) -> None:
        def stop(check: str, message: str, expected: object, found: object) -> None:
            raise _Stop(Divergence(height, check, message, None, None, _s(expected), _s(found)))

        if header.chain_id != self.genesis.chain_id:
            stop(
                "header_chain_id",
                "the block is of another chain",
                self.genesis.chain_id,
                header.chain_id,
            )
        if header.height != height:
            stop(
                "header_height", "the block stored here is of another height", height, header.height
            )
        if header.previous_block_hash != self.previous_hash:
            stop(
                "header_previous_hash",
                "the block does not follow the previous one",
                self.previous_hash,
                header.previous_block_hash,
            )
        if header.time_ms <= self.previous_time_ms:
            stop(
                "header_time",
                "block time is not after the previous block's",
                f"> {self.previous_time_ms}",
                header.time_ms,
            )
        if header.validators_hash != validators.hash():
            stop(
                "header_validators",
                "validators hash is not the set in force",
                validators.hash(),
                header.validators_hash,
            )
        if not validators.contains(header.proposer):
            stop(
                "header_proposer", "the proposer is not a validator", "a validator", header.proposer
            )

    def _check_certificate(
        self,
        height: int,
        header: Header,
        cert: Certificate,
        validators: ValidatorSet,
        verdicts: Sequence[bool],
    ) -> None:
        def stop(message: str, expected: object = None, found: object = None) -> None:
            raise _Stop(
                Divergence(height, "certificate", message, None, None, _s(expected), _s(found))
            )

        if cert.height != height:
            stop("the certificate is for another height", height, cert.height)
        if cert.block_hash != header.hash():
            stop("the certificate is for another block", header.hash(), cert.block_hash)
        power = 0
        for (key, _), ok in zip(cert.signatures, verdicts, strict=True):
            key_power = validators.power_of(key)
            if key_power == 0:
                stop("a signature is by a key that is not a validator here", None, key)
            if not ok:
                name = next(v.name for v in validators.validators if v.public_key == key)
                stop(f"the precommit signature of validator {name!r} does not verify", None, key)
            power += key_power
        if power < validators.quorum_power:
            stop(
                f"signatures carry {power} of {validators.total_power} voting power: "
                "not more than 2/3",
                f">= {validators.quorum_power}",
                power,
            )

    def _explain_tx_root(self, p: _Prepared, header: Header, signature_ok: Sequence[bool]) -> None:
        """The transactions do not match the certified root: name the one that differs."""
        base = "the block's transactions are not those the certified header commits to"
        expected, found = header.tx_root.hex(), p.tx_root.hex()
        for index, (signed, ok) in enumerate(zip(p.decoded, signature_ok, strict=True)):
            if isinstance(signed, Result):
                raise _Stop(
                    Divergence(
                        p.height,
                        "tx_decode",
                        f"{base}; this one does not decode ({signed.name})",
                        index,
                        None,
                        expected,
                        found,
                    )
                )
            tx_id = signed.tx_id.hex()
            if not ok:
                raise _Stop(
                    Divergence(
                        p.height,
                        "tx_signature",
                        f"{base}; this one's signature does not verify (altered bytes)",
                        index,
                        tx_id,
                        expected,
                        found,
                    )
                )
            if self.stored is not None:
                where = self.stored.tx_location(signed.tx_id)
                if where != (p.height, index):
                    raise _Stop(
                        Divergence(
                            p.height,
                            "tx_order",
                            f"{base}; the node's own index "
                            f"places this transaction at {_place(where)}",
                            index,
                            tx_id,
                            expected,
                            found,
                        )
                    )
        raise _Stop(
            Divergence(
                p.height,
                "tx_root",
                f"{base} (transactions changed, reordered, added or removed)",
                None,
                None,
                expected,
                found,
            )
        )

    def _follow_validator_changes(
        self, height: int, header: Header, executor: BlockExecutor
    ) -> None:
        """The set for the next height comes from the re-executed state (governance);
        the header must commit to it."""
        following = to_validator_set(executor.validators_at(height + 1))
        if following.hash() != self.schedule.at(height + 1).hash():
            self.schedule.schedule(height + 1, following)
        if header.next_validators_hash != following.hash():
            raise _Stop(
                Divergence(
                    height,
                    "header_next_validators",
                    "next validators hash is not the next set",
                    None,
                    None,
                    following.hash().hex(),
                    header.next_validators_hash.hex(),
                )
            )

    def _execute(
        self, p: _Prepared, header: Header, signature_ok: Sequence[bool], result: AuditResult
    ) -> None:
        try:
            executor = BlockExecutor(
                self.view, header.time_ms, header.height, self.records, rulebook=self.rulebook
            )
        except UnknownProtocol as exc:
            raise _Stop(Divergence(p.height, "protocol", str(exc))) from None
        self._merchants_seen: dict[bytes, r.Merchant] = {}
        block_merchant_changes: set[bytes] = set()
        settlements: dict[bytes, str] = {}
        returns: dict[bytes, str] = {}  # payout id -> the return reason
        pays: list[tuple[bytes, str]] = []
        lap = self.laps.lap
        for index, (signed, ok) in enumerate(zip(p.decoded, signature_ok, strict=True)):
            if isinstance(signed, Result):
                raise _Stop(
                    Divergence(p.height, "tx_decode", f"does not decode: {signed.name}", index)
                )
            tx_id = signed.tx_id.hex()
            if not ok:
                raise _Stop(
                    Divergence(
                        p.height, "tx_signature", "the signature does not verify", index, tx_id
                    )
                )
            self._check_sequence(p.height, index, signed)
            self._check_payment_rules(
                p.height, index, signed, header.time_ms, block_merchant_changes, result
            )
            lap("cross_checks")
            outcome = executor.execute_decoded(signed, signature_checked=True)
            lap("execute")
            if outcome.result != Result.OK:
                raise _Stop(
                    Divergence(
                        p.height,
                        "tx_execution",
                        f"re-execution rejects it: "
                        f"{outcome.result.name} ({outcome.result.message})",
                        index,
                        tx_id,
                        "OK",
                        outcome.result.name,
                    )
                )
            self._tally(signed, settlements, returns, pays, block_merchant_changes, result)
        lap("cross_checks")
        writes, changes = executor.writes(), executor.changes()
        lap("execute")
        self._follow_validator_changes(p.height, header, executor)
        self._check_books(p.height, writes, changes, settlements, returns, pays)
        lap("cross_checks")
        for key, value in writes.items():
            if value is None:
                self.view.items.pop(key, None)
            else:
                self.view.items[key] = value
        self.records.commit(changes)
        lap("execute")
        if self.roots is None:
            raise ToolInvariantBroken("the audit's state roots are not started")
        root = self.roots.submit(writes)
        self._pending.append(
            _PendingRoot(p.height, header.state_root, root, _counts(result), self.previous_hash)
        )
        self._check_pending_roots(result, ROOTS_AHEAD)
        lap("state_tree")

    def _check_pending_roots(self, result: AuditResult, keep: int) -> None:
        """Check the pending state roots in height order, those already computed and
        then waiting for the oldest until at most ``keep`` are pending.

        A root that differs stops the audit at its height, with the counts and
        the last block hash as they were when its writes were handed over (the
        books may already hold the blocks executed after it).
        """
        pending = self._pending
        while pending and (len(pending) > keep or pending[0].root.done()):
            p = pending.popleft()
            root, seconds = p.root.result()
            if self.roots is not None:
                self.roots.last = root
                self.roots.worker_seconds += seconds
            try:
                self._check_roots(p.height, p.certified, root)
            except _Stop:
                pending.clear()
                for name, value in zip(_COUNTED, p.before, strict=True):
                    setattr(result, name, value)
                self.previous_hash = p.previous_hash
                raise

    def _check_roots(self, height: int, certified: bytes, root: bytes) -> None:
        """The re-executed state root is the certified one, and the one the node recorded."""
        if root != certified:
            raise _Stop(
                Divergence(
                    height,
                    "state_root",
                    "re-execution does not reproduce the certified state root",
                    None,
                    None,
                    certified.hex(),
                    root.hex(),
                )
            )
        if self.stored is not None:
            recorded = self.stored.recorded_root(height)
            if recorded != root:
                raise _Stop(
                    Divergence(
                        height,
                        "stored_state_root",
                        "the node's recorded state root differs from the certified one",
                        None,
                        None,
                        root.hex(),
                        _s(recorded),
                    )
                )

    def _check_sequence(self, height: int, index: int, signed: t.SignedTx) -> None:
        sender = signed.tx.sender
        if signed.tx.payload.KIND in ACCOUNT_KINDS:  # a key rotated by governance: its account's
            state = BlockState(self.view, self.records)
            principal = principal_of(state, signed.tx.payload.KIND, sender, height)
            sender = sender if isinstance(principal, Result) else principal
        expected = self.sequences.get(sender, 0)
        if signed.tx.sequence != expected:
            raise _Stop(
                Divergence(
                    height,
                    "tx_sequence",
                    "the sender's sequence does not count up by one",
                    index,
                    signed.tx_id.hex(),
                    str(expected),
                    str(signed.tx.sequence),
                )
            )
        self.sequences[sender] = expected + 1

    def _check_payment_rules(
        self,
        height: int,
        index: int,
        signed: t.SignedTx,
        time_ms: int,
        changed_merchants: set[bytes],
        result: AuditResult,
    ) -> None:
        """A payment's campaign is open at block time and the merchant eligible.

        Checked on the state before the block; a merchant changed earlier in
        the same block is left to re-execution (which checks every payment).
        """
        payload = signed.tx.payload
        if isinstance(payload, t.Pay):
            code, merchant_pk = payload.campaign, payload.merchant
        elif isinstance(payload, t.PayAuthorized):
            code, merchant_pk = payload.authorization.campaign, signed.tx.sender
        else:
            return
        campaign = self.books.campaigns.get(code)
        merchant = self._merchant_before_block(merchant_pk)
        if campaign is None or merchant is None or merchant_pk in changed_merchants:
            result.payments_rule_by_execution_only += 1
            return
        problem = None
        if not campaign.valid_from_ms <= time_ms < campaign.valid_until_ms or campaign.closed:
            problem = f"campaign {code} is not open at block time {time_ms}"
        elif not merchant.active:
            problem = "the merchant is suspended"
        elif merchant.zone not in campaign.zones:
            problem = f"merchant zone {merchant.zone} is outside campaign {code}"
        elif campaign.categories and not any(
            merchant.category.startswith(c) for c in campaign.categories
        ):
            problem = f"merchant category {merchant.category} is outside campaign {code}"
        if problem is not None:
            raise _Stop(Divergence(height, "payment_rules", problem, index, signed.tx_id.hex()))
        result.payments_rule_checked += 1

    def _merchant_before_block(self, pk: bytes) -> r.Merchant | None:
        found = self._merchants_seen.get(pk)
        if found is None:
            raw = self.view.get(r.merchant_key(pk))
            if raw is None:
                return None
            found = self._merchants_seen[pk] = r.Merchant.decode(raw)
        return found

    def _tally(
        self,
        signed: t.SignedTx,
        settlements: dict[bytes, str],
        returns: dict[bytes, str],
        pays: list[tuple[bytes, str]],
        changed_merchants: set[bytes],
        result: AuditResult,
    ) -> None:
        p = signed.tx.payload
        name = p.KIND.name.lower()
        result.kinds[name] = result.kinds.get(name, 0) + 1
        if isinstance(p, (t.RegisterMerchant, t.UpdateMerchant, t.SuspendMerchant)):
            changed_merchants.add(p.merchant)
        elif isinstance(p, t.CreateCampaign):
            pass  # the tally starts when the campaign record appears
        elif isinstance(p, t.Fund):
            self._campaign_tally(p.campaign).funded += p.amount_cents
        elif isinstance(p, t.Withdraw):
            self._campaign_tally(p.campaign).withdrawn += p.amount_cents
        elif isinstance(p, t.Allocate):
            tally = self._campaign_tally(p.campaign)
            tally.allocated += sum(a.amount_cents for a in p.allocations)
        elif isinstance(p, t.Pay):
            self._campaign_tally(p.campaign).spent += p.amount_cents
            pays.append((signed.tx_id, p.campaign))
        elif isinstance(p, t.PayAuthorized):
            self._campaign_tally(p.authorization.campaign).spent += p.amount_cents
            pays.append((signed.tx_id, p.authorization.campaign))
        elif isinstance(p, t.Refund):
            self._campaign_tally(p.campaign).refunded += p.amount_cents
        elif isinstance(p, t.Settle):
            for s in p.settlements:
                settlements[s.payout_id] = s.bank_reference
        elif isinstance(p, t.ReturnPayout):
            returns[p.payout_id] = p.reason

    def _campaign_tally(self, code: str) -> CampaignTally:
        tally = self.books.campaign_tallies.get(code)
        if tally is None:
            # A campaign created in this very block gets its issuer with the writes.
            campaign = self.books.campaigns.get(code)
            tally = CampaignTally(b"" if campaign is None else campaign.issuer)
            self.books.campaign_tallies[code] = tally
        return tally

    def _check_books(
        self,
        height: int,
        writes: dict[bytes, bytes | None],
        changes: dict[bytes, r.Record | None],
        settlements: dict[bytes, str],
        returns: dict[bytes, str],
        pays: list[tuple[bytes, str]],
    ) -> None:
        books = self.books

        def payout(payout_id: bytes) -> r.Payout | None:
            """The payout this block wrote (decoded by re-execution), or None."""
            key = r.payout_key(payout_id)
            found = changes.get(key)
            if isinstance(found, r.Payout):
                return found
            raw = writes.get(key)
            return None if raw is None else r.Payout.decode(raw)

        try:
            issuers, campaigns = books.apply(writes, self.view.get, changes)
            for code in campaigns:
                tally = books.campaign_tallies[code]
                if not tally.issuer:
                    tally.issuer = books.campaigns[code].issuer
            for payout_id, code in pays:
                opened = payout(payout_id)
                if opened is not None:  # auto-redeem: the payment opened a payout
                    books.direct_payouts[payout_id] = code
                    books.campaign_tallies[code].redeemed_direct += opened.amount_cents
            for payout_id, reference in settlements.items():
                settled = payout(payout_id)
                if settled is None or settled.bank_reference != reference:
                    raise BooksError(
                        f"payout {payout_id.hex()[:16]} does not carry the reference "
                        f"{reference!r} of the transaction that settled it"
                    )
            for payout_id, reason in returns.items():
                returned = payout(payout_id)
                if returned is None or returned.returned_reason != reason:
                    raise BooksError(
                        f"payout {payout_id.hex()[:16]} does not carry the reason "
                        f"{reason!r} of the transaction that returned it"
                    )
            books.check(issuers, campaigns)
        except BooksError as exc:
            raise _Stop(Divergence(height, "books", str(exc))) from None

    # --- genesis and the stored state ----------------------------------------------

    def _check_genesis_root(self) -> None:
        if self.stored is None:
            return
        genesis_root = self.roots.genesis_root() if self.roots is not None else None
        recorded = self.stored.recorded_root(0)
        if recorded is not None and recorded != genesis_root:
            raise _Stop(
                Divergence(
                    0,
                    "stored_state_root",
                    "the node's genesis state root is not the genesis file's",
                    None,
                    None,
                    _s(genesis_root),
                    recorded.hex(),
                )
            )

    def _check_stored_state(self, height: int) -> None:
        """The node's current state is exactly the re-executed one, key by key."""
        if self.stored is None:
            return
        mine = self.view.items
        seen = 0
        for key, value in self.stored.state_items():
            seen += 1
            expected = mine.get(key)
            if expected != value:
                what = "holds a record the history never wrote" if expected is None else "differs"
                raise _Stop(
                    Divergence(
                        height,
                        "stored_state",
                        f"the node's current state {describe_key(key)} {what}",
                        None,
                        None,
                        _s(expected),
                        _s(value),
                    )
                )
        if seen != len(mine):
            stored_keys = {k for k, _ in self.stored.state_items()}
            missing = sorted(k for k in mine if k not in stored_keys)[0]
            raise _Stop(
                Divergence(
                    height,
                    "stored_state",
                    f"the node's current state lacks {describe_key(missing)}",
                    None,
                    None,
                    mine[missing].hex(),
                    None,
                )
            )


def _s(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _place(where: tuple[int, int] | None) -> str:
    if where is None:
        return "nowhere (not indexed)"
    return f"height {where[0]}, transaction {where[1]}"
