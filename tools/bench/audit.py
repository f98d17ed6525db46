"""``relance-bench audit``: audited transactions per second against raw PyNaCl on every core.

Writes a certified history of pre-signed payments (``tools.audit.history``),
then audits it from its data directory exactly as ``relance-audit verify``
does, with transaction signatures verified ahead of re-execution in worker
processes (``node.app.sigverify.ProcessVerifier``: threads contend for the GIL
with decoding and re-execution). It measures, in the same run, bare PyNaCl
verifications per second with one thread per core over the same signed
messages (before and after the audit, averaged). ``ratio`` is the first rate
over the second.

It also says where the auditing process's time went (``phase_us``: its
microseconds per transaction by phase, signature waits apart) and the ratio
that work allows at best (``ceiling``): the signatures need one
verification's time per transaction on some core and the auditing process
``m`` more (its work in units of one verification on one core), so ``cores``
cores audit at most ``cores / (1 + m)`` verifications' time worth, a ratio of
at most ``1 / (1 + m)``; and the auditing process, one thread, at most
``1 / (cores * m)``. The state roots are computed in a process of their own
(``tools.audit.chain.StateRoots``): its CPU time a transaction (``phase_us``
``state_root_process``), ``s`` verifications, adds to the work shared by the
cores, ``1 / (1 + m + s)``, and bounds that process alone, ``1 / (cores * s)``.
``ceiling`` is the smallest; ``ceiling_decode_state`` the same bound if
decoding and the state root were all there was to do.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol.crypto import Digest, Domain, Signer, signing_bytes, verify_raw
from node.protocol.errors import ToolInvariantBroken
from node.run import heap
from tools.audit.chain import Auditor, AuditResult
from tools.audit.history import (
    CHAIN_ID,
    DAY_MS,
    T0_MS,
    Actors,
    HistoryWriter,
    fixed_key,
    fixture_genesis,
)
from tools.audit.sources import DataDirSource

CAMPAIGN = "bench"
POT_CENTS = 20_000


@dataclass(frozen=True, slots=True)
class AuditFigures:
    transactions: int
    blocks: int
    workers: int
    seconds: float
    tx_per_s: float
    verify_per_s: float
    ratio: float
    phase_us: dict[str, float]  # the auditing process's microseconds per transaction
    ceiling: float  # the best ratio the auditing process's work allows
    ceiling_decode_state: float  # the same if decoding and the state root were all it did


def _history(path: Path, transactions: int, block_size: int, holders: int) -> list[bytes]:
    genesis, actors = fixture_genesis()
    writer = HistoryWriter(path, genesis, actors.validators)
    issuer = actors.issuers[0]
    zone = genesis.issuers[0].zones[0]
    shops = [fixed_key(f"bench-shop{i}") for i in range(50)]
    people = [fixed_key(f"bench-holder{i}") for i in range(holders)]
    ref = Digest(bytes(32))
    writer.commit(
        [
            actors.tx(
                issuer,
                t.RegisterMerchant(s.public_key, f"Shop {i}", "47.11", zone, ref, i % 2 == 0),
            )
            for i, s in enumerate(shops)
        ]
        + [
            actors.tx(
                issuer,
                t.CreateCampaign(CAMPAIGN, "Bench", (), (), T0_MS, T0_MS + 365 * DAY_MS, POT_CENTS),
            ),
        ]
        + [
            actors.tx(actors.bank, t.Fund(CAMPAIGN, POT_CENTS * 5_000, f"bench-deposit-{i}"))
            for i in range(-(-holders // 5_000))
        ],
        verified=True,
    )
    for start in range(0, holders, 5_000):
        batch = tuple(
            t.Allocation(p.public_key, POT_CENTS, zone) for p in people[start : start + 5_000]
        )
        writer.commit([actors.tx(issuer, t.Allocate(CAMPAIGN, batch))], verified=True)
    payments = _payments(actors, people, shops, transactions)
    for i in range(0, len(payments), block_size):
        writer.commit(payments[i : i + block_size], verified=True)
    writer.close()
    return payments


def _payments(
    actors: Actors, people: Sequence[Signer], shops: Sequence[Signer], n: int
) -> list[bytes]:
    out = []
    for k in range(n):
        holder = people[k % len(people)]
        shop = shops[(k * 7919) % len(shops)]
        pay = t.Pay(CAMPAIGN, shop.public_key, 100 + k % 500, "")
        out.append(actors.tx(holder, pay))
    return out


def raw_verify_rate(txs: Sequence[bytes], workers: int) -> float:
    """Bare PyNaCl verifications per second, ``workers`` threads in parallel."""
    triples = []
    for data in txs:
        signed = t.decode_tx(data, CHAIN_ID)
        if isinstance(signed, Result):
            raise ToolInvariantBroken("benchmark transaction does not decode")
        message = signing_bytes(Domain.TX, CHAIN_ID, signed.body)
        triples.append((message, bytes(signed.tx.sender), signed.signature))
    size = -(-len(triples) // workers)
    parts = [triples[i : i + size] for i in range(0, len(triples), size)]

    def run(part: list[tuple[bytes, bytes, bytes]]) -> None:
        for message, key, signature in part:
            if not verify_raw(message, key, signature):
                raise ToolInvariantBroken("benchmark signature does not verify")

    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        list(pool.map(run, parts))
        return len(triples) / (time.perf_counter() - start)


def run_audit(transactions: int, block_size: int, holders: int, workers: int) -> AuditFigures:
    with tempfile.TemporaryDirectory(prefix="relance-bench-audit-") as tmp:
        path = Path(tmp) / "data"
        payments = _history(path, transactions, block_size, holders)
        genesis, _ = fixture_genesis()
        sample = payments[: min(len(payments), 10_000)]
        before = raw_verify_rate(sample, cores())
        source = DataDirSource(path, genesis.genesis_hash)
        try:
            heap.freeze_loaded()  # as `relance-audit` does
            auditor = Auditor(genesis, source, source, workers=workers, processes=True)
            result = auditor.run()
        finally:
            source.close()
        after = raw_verify_rate(sample, cores())
    if not result.ok:
        raise ToolInvariantBroken(f"the benchmark history does not audit: {result.divergence}")
    verify_per_s = (before + after) / 2
    tx_per_s = result.transactions / result.seconds
    phase_us = {k: 1e6 * v / result.transactions for k, v in result.phase_seconds.items()}
    phase_us["state_root_process"] = 1e6 * result.state_root_process_seconds / result.transactions
    return AuditFigures(
        result.transactions,
        result.heights_checked,
        workers,
        result.seconds,
        tx_per_s,
        verify_per_s,
        tx_per_s / verify_per_s,
        phase_us,
        ceiling(result, verify_per_s, ("fetch_decode", "execute", "state_tree", "cross_checks")),
        ceiling(result, verify_per_s, ("fetch_decode", "state_tree")),
    )


def ceiling(result: AuditResult, verify_per_s: float, phases: Sequence[str]) -> float:
    """The best ratio if the auditing process did only ``phases`` (see the module doc)."""
    m = work_in_verifications(result, verify_per_s, phases)
    one_verification_s = cores() / verify_per_s
    s = result.state_root_process_seconds / result.transactions / one_verification_s
    # All cores share the work; the auditing process, and the state roots' process,
    # are each one thread on one of them.
    return min(1 / (1 + m + s), 1 / (cores() * max(m, s)))


def work_in_verifications(result: AuditResult, verify_per_s: float, phases: Sequence[str]) -> float:
    """The auditing process's time a transaction in ``phases``, in verifications on one core."""
    one_verification_s = cores() / verify_per_s
    return sum(result.phase_seconds[p] for p in phases) / result.transactions / one_verification_s


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
