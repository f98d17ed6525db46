"""Signature checks on every core, ahead of execution.

Ed25519 verification dominates the cost of a transaction; libsodium releases
the GIL, so a small thread pool verifies a block's (or the mempool's)
transactions in parallel while the one ledger thread executes. Results are
remembered in a bounded cache keyed by the transaction's wire bytes hash, so
a transaction verified when it entered the mempool is not verified again
when its block is executed.

Imports the ledger's transaction decoding only (no state).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

from node.ledger.tx import SignedTx
from node.protocol import limits
from node.protocol.crypto import Domain, signing_bytes, verify_raw


class SignatureVerifier:
    """A pool of verifiers and a cache of good signatures.

    Threads by default; with ``processes``, worker processes (one per other
    core unless ``workers`` says), so that checks never take the interpreter
    lock from the thread that runs the ledger: the node's choice.
    """

    def __init__(
        self,
        workers: int | None = None,
        cache_max: int = 2 * limits.MEMPOOL_TXS_MAX,
        processes: bool = False,
    ) -> None:
        cores = len(os.sched_getaffinity(0))
        self.workers = workers or (max(1, cores - 1) if processes else max(1, cores))
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sigverify")
        self._processes = ProcessVerifier(self.workers) if processes else None
        self._good: OrderedDict[bytes, None] = OrderedDict()
        self._cache_max = cache_max

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._processes is not None:
            self._processes.close()

    def is_known_good(self, signed: SignedTx) -> bool:
        return self._key(signed) in self._good

    def submit(self, txs: Sequence[SignedTx]) -> Future[list[bool]]:
        """Verify ``txs`` in the background, split over the pool; results in order."""
        if self._processes is not None:
            known = [self.is_known_good(s) for s in txs]
            todo = [s for s, k in zip(txs, known, strict=True) if not k]
            parts = self._processes.submit(todo) if todo else []

            def merge(verdicts: list[bool]) -> list[bool]:
                checked = iter(verdicts)
                return [True if k else next(checked) for k in known]

            return _gathered(parts, merge)
        size = max(1, -(-len(txs) // self.workers))
        return _gathered(
            [self._pool.submit(self._verify, txs[i : i + size]) for i in range(0, len(txs), size)],
            lambda verdicts: verdicts,
        )

    def verify(self, txs: Sequence[SignedTx]) -> list[bool]:
        return self.submit(txs).result()

    def _verify(self, txs: Sequence[SignedTx]) -> list[bool]:
        out = []
        for signed in txs:
            key = self._key(signed)
            ok = key in self._good or signed.signature_ok()
            out.append(ok)
        return out

    def remember(self, txs: Sequence[SignedTx], verdicts: Sequence[bool]) -> None:
        """Record good signatures (called from the ledger thread)."""
        for signed, ok in zip(txs, verdicts, strict=True):
            if ok:
                key = self._key(signed)
                self._good[key] = None
                self._good.move_to_end(key)
        while len(self._good) > self._cache_max:
            self._good.popitem(last=False)

    @staticmethod
    def _key(signed: SignedTx) -> bytes:
        return signed.tx_id + signed.signature  # 96 bytes: cheaper than hashing them


def _gathered(
    parts: Sequence[Future[list[bool]]], finish: Callable[[list[bool]], list[bool]]
) -> Future[list[bool]]:
    """One future for the concatenated results of ``parts``, passed through ``finish``."""
    result: Future[list[bool]] = Future()

    def gather(_: object) -> None:
        if all(p.done() for p in parts) and not result.done():
            try:
                result.set_result(finish([ok for p in parts for ok in p.result()]))
            except BaseException as exc:  # handed to the waiter
                result.set_exception(exc)

    if not parts:
        result.set_result(finish([]))
    for part in parts:
        part.add_done_callback(gather)
    return result


PARENT_POLL_S = 0.5  # how often a worker process looks whether its parent is still alive


def exit_with_parent() -> None:
    """In a new worker process: end it when the process that started it dies.

    A node SIGKILLed (a crash, a fault test) must not leave its verifiers
    running: nothing would ever stop them.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _verify_triples(triples: Sequence[tuple[bytes, bytes, bytes]]) -> tuple[list[bool], float]:
    """In a worker process: bare verifications of (message, public key, signature),
    and the CPU time they took on that worker's core."""
    start = time.thread_time()
    verdicts = [verify_raw(message, key, signature) for message, key, signature in triples]
    return verdicts, time.thread_time() - start


class ProcessVerifier:
    """Signature checks in worker processes, free of the GIL of the ledger process.

    Threads share the interpreter lock with the ledger thread, which hands it over
    only every few milliseconds; separate processes verify at full speed on the
    other cores. Each batch ships (message, key, signature) triples.

    The workers also time their bare verifications (CPU time of their core), so
    a benchmark learns the verification rate of one core *while* the workload
    runs, under the same machine conditions: ``rate``.
    """

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=exit_with_parent
        )
        self._pool.submit(_verify_triples, []).result()  # start the workers now
        self._lock = threading.Lock()
        self._verified = 0
        self._cpu_seconds = 0.0

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def rate(self) -> float | None:
        """Bare verifications per CPU-second of one worker core so far (None: none yet)."""
        with self._lock:
            if self._verified == 0 or self._cpu_seconds <= 0:
                return None
            return self._verified / self._cpu_seconds

    def submit(self, txs: Sequence[SignedTx]) -> list[Future[list[bool]]]:
        """Verify ``txs`` split over the workers; the futures' results concatenate in order."""
        triples = [
            (signing_bytes(Domain.TX, s.tx.chain_id, s.body), bytes(s.tx.sender), s.signature)
            for s in txs
        ]
        size = max(1, -(-len(triples) // self.workers))
        return [
            self._verdicts(self._pool.submit(_verify_triples, triples[i : i + size]))
            for i in range(0, len(triples), size)
        ]

    def _verdicts(self, timed: Future[tuple[list[bool], float]]) -> Future[list[bool]]:
        """The verdicts of a worker's batch, its timing added to ``rate``."""
        out: Future[list[bool]] = Future()

        def done(_: object) -> None:
            try:
                verdicts, seconds = timed.result()
            except BaseException as exc:  # handed to the waiter (cancelled included)
                out.set_exception(exc)
                return
            with self._lock:
                self._verified += len(verdicts)
                self._cpu_seconds += seconds
            out.set_result(verdicts)

        timed.add_done_callback(done)
        return out
