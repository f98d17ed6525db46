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
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

from node import limits
from node.crypto import Domain, digest, signing_bytes, verify_raw
from node.ledger.tx import SignedTx


class SignatureVerifier:
    """A pool of verifying threads and a cache of good signatures."""

    def __init__(self, workers: int | None = None, cache_max: int = 2 * limits.MEMPOOL_TXS_MAX):
        self.workers = workers or max(1, len(os.sched_getaffinity(0)))
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sigverify")
        self._good: OrderedDict[bytes, None] = OrderedDict()
        self._cache_max = cache_max

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def is_known_good(self, signed: SignedTx) -> bool:
        return self._key(signed) in self._good

    def submit(self, txs: Sequence[SignedTx]) -> Future[list[bool]]:
        """Verify ``txs`` in the background, split over the pool; results in order."""
        size = max(1, -(-len(txs) // self.workers))
        parts = [
            self._pool.submit(self._verify, txs[i : i + size]) for i in range(0, len(txs), size)
        ]
        result: Future[list[bool]] = Future()

        def gather(_: object) -> None:
            if all(p.done() for p in parts) and not result.done():
                try:
                    result.set_result([ok for p in parts for ok in p.result()])
                except BaseException as exc:  # handed to the waiter
                    result.set_exception(exc)

        if not parts:
            result.set_result([])
        for part in parts:
            part.add_done_callback(gather)
        return result

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
        return digest(signed.tx_id + signed.signature)


def _verify_triples(triples: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """In a worker process: bare verifications of (message, public key, signature)."""
    return [verify_raw(message, key, signature) for message, key, signature in triples]


class ProcessVerifier:
    """Signature checks in worker processes, free of the GIL of the ledger process.

    Threads share the interpreter lock with the ledger thread, which hands it over
    only every few milliseconds; separate processes verify at full speed on the
    other cores. Each batch ships (message, key, signature) triples.
    """

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.workers = workers
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        self._pool.submit(_verify_triples, []).result()  # start the workers now

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, txs: Sequence[SignedTx]) -> list[Future[list[bool]]]:
        """Verify ``txs`` split over the workers; the futures' results concatenate in order."""
        triples = [
            (signing_bytes(Domain.TX, s.tx.chain_id, s.body), bytes(s.tx.sender), s.signature)
            for s in txs
        ]
        size = max(1, -(-len(triples) // self.workers))
        return [
            self._pool.submit(_verify_triples, triples[i : i + size])
            for i in range(0, len(triples), size)
        ]
