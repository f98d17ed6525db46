"""``relance-bench``: measured figures, each against a limit from the same run.

``relance-bench ledger`` pre-signs payments spread over many holders and
merchants (``--holders`` up to 10,000,000: the set-up keeps the genesis
limits, funding in several transactions and allocating 5,000 holders per
transaction), then applies them through the node's real path — decode, verify,
apply, state root, transaction root, a certified block in one synced LevelDB write
(``node.app.commit``, through ``node.app.certified.HistoryWriter``) —
and compares the rate with bare PyNaCl verifications on the same core. Its
last line is one JSON object, with the set-up time, the bytes of a state
proof of a holder at that size and the process's peak resident memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from node.app.certified import BLOCK_STEP_MS, HistoryWriter
from node.app.sigverify import ProcessVerifier, SignatureVerifier
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import codec, limits
from node.protocol.crypto import Domain, PublicKey, Signer, digest, signing_bytes, verify_raw
from node.protocol.errors import ToolInvariantBroken
from node.protocol.genesis import (
    Genesis,
    GenesisAccount,
    GenesisIssuer,
    GenesisValidator,
    ProtocolLimits,
)
from node.protocol.state_tree import encode_proof
from node.run import heap
from tools.bench.audit import cores, run_audit
from tools.bench.cluster import cluster
from tools.bench.scale import scale

CHAIN_ID = "relance-bench"
T0_MS = 1_767_225_600_000
CAMPAIGN = "bench"
LOOKAHEAD_BLOCKS = 2  # blocks whose signatures are being checked ahead of execution
SAMPLE_PER_BLOCK = 250  # bare verifications timed on the ledger's thread after each block
ZONES = ("Z-1", "Z-2", "Z-3", "Z-4")
HOLDERS_MAX = 10_000_000
HOLDER_CENTS = 10_000  # allocated to each holder; a payment spends 100..599
ALLOCATE_TXS_PER_BLOCK = 8  # 8 x 5,000 allocations: well inside block_bytes_max


def _key(name: str) -> Signer:
    return Signer(digest(b"relance-bench:" + name.encode()))


@dataclass(frozen=True, slots=True)
class LedgerFigures:
    transactions: int
    block_size: int
    seconds: float
    tx_per_s: float
    verify_per_s: float  # sampled between blocks, on the ledger's thread
    verify_alone_per_s: float  # before and after the run
    verify_worker_per_s: float | None  # the worker process, during the run (CPU time)
    ratio: float
    holders: int
    setup_s: float  # genesis to the last allocation committed
    proof_bytes: int  # the largest state proof of a sample of holders, encoded
    peak_rss_mb: float  # the process's peak resident memory


def _commit(
    writer: HistoryWriter,
    txs: Sequence[bytes],
    verified: Sequence[bool] | None = None,
    decoded: Sequence[t.SignedTx] | None = None,
) -> list[Result]:
    """Execute, root and durably write one certified block, through the node's commit
    path (``node.app.commit``); return each transaction's code (nothing is written
    unless every one applies).

    ``verified`` holds the signature verdicts computed ahead (elsewhere), for the
    ``decoded`` transactions; without them each transaction is decoded and its
    signature verified inline, on this thread.
    """
    if verified is None or decoded is None:
        decoded = _decoded(txs)
        verified = [signed.signature_ok() for signed in decoded]
    time_ms = writer.time_ms + BLOCK_STEP_MS
    execution = writer.chain.execute(writer.height + 1, time_ms, decoded, verified)
    if execution.all_ok:
        writer.write(time_ms, txs, execution)
    return [o.result for o in execution.outcomes]


def _setup(
    home: Path, holders: int, merchants: int, payers: int
) -> tuple[HistoryWriter, list[Signer], list[Signer], Signer]:
    """A chain with ``holders`` allocated; the first ``payers`` of them can sign.

    The others only need a public key on the ledger, so they get a hashed one
    (the ledger never checks a holder key is a curve point before it signs).
    """
    bank, commune = _key("bank"), _key("commune")
    genesis = Genesis(
        chain_id=CHAIN_ID,
        genesis_time_ms=T0_MS,
        limits=ProtocolLimits(),
        bank=GenesisAccount("Bench bank", bank.public_key),
        validators=(GenesisValidator("v0", "bank", _key("v0").public_key, 1),),
        issuers=(GenesisIssuer("Bench", "Bench town", commune.public_key, ZONES),),
        auditors=(),
    )
    chain = HistoryWriter(home, genesis, [_key("v0")])
    shops = [_key(f"merchant{i}") for i in range(merchants)]
    people = [_key(f"holder{i}") for i in range(payers)]
    seq = iter(range(10**9))
    register = [
        t.Tx(
            CHAIN_ID,
            commune.public_key,
            next(seq),
            t.RegisterMerchant(
                m.public_key, f"Shop {i}", "47.11", ZONES[i % 4], digest(b"iban"), i % 2 == 0
            ),
        )
        .sign(commune)
        .encode()
        for i, m in enumerate(shops)
    ]
    campaign = t.CreateCampaign(CAMPAIGN, "Bench", (), (), T0_MS, T0_MS + 10**12, 10**6)
    setup = [t.Tx(CHAIN_ID, commune.public_key, next(seq), campaign).sign(commune).encode()]
    # One fund moves at most the genesis amount_max_cents: fund in as many as needed.
    total, most = HOLDER_CENTS * holders, genesis.limits.amount_max_cents
    for n, start in enumerate(range(0, total, most)):
        fund = t.Fund(CAMPAIGN, min(most, total - start), f"bench-fund-{n}")
        setup.append(t.Tx(CHAIN_ID, bank.public_key, n, fund).sign(bank).encode())
    _commit_all(chain, register + setup)
    per_tx = limits.ALLOCATIONS_PER_TX_MAX
    block: list[bytes] = []
    for start in range(0, holders, per_tx):
        batch = tuple(
            t.Allocation(_holder_key(people, i), HOLDER_CENTS, ZONES[i % 4])
            for i in range(start, min(holders, start + per_tx))
        )
        alloc = t.Tx(CHAIN_ID, commune.public_key, next(seq), t.Allocate(CAMPAIGN, batch))
        block.append(alloc.sign(commune).encode())
        if len(block) == ALLOCATE_TXS_PER_BLOCK:
            _commit_all(chain, block)
            block = []
    if block:
        _commit_all(chain, block)
    return chain, people, shops, commune


def _holder_key(people: Sequence[Signer], index: int) -> PublicKey:
    if index < len(people):
        return people[index].public_key
    return PublicKey(digest(b"relance-bench-holder:%d" % index))


def _proof_bytes(chain: HistoryWriter, people: Sequence[Signer]) -> int:
    """The largest encoded state proof of up to 200 holders."""
    return max(
        len(encode_proof(chain.tree.prove(r.holder_key(p.public_key)))) for p in people[:200]
    )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _commit_all(chain: HistoryWriter, txs: Sequence[bytes]) -> None:
    """Commit ``txs`` in as few blocks as the genesis limits allow."""
    caps = chain.genesis.limits
    block: list[bytes] = []
    size = 0
    for data in txs:
        if block and (len(block) == caps.block_txs_max or size + len(data) > caps.block_bytes_max):
            _check_all(_commit(chain, block))
            block, size = [], 0
        block.append(data)
        size += len(data)
    if block:
        _check_all(_commit(chain, block))


def _payments(people: Sequence[Signer], shops: Sequence[Signer], count: int) -> list[bytes]:
    sequences = [0] * len(people)
    out = []
    for n in range(count):
        h = n % len(people)
        m = (n * 7919) % len(shops)
        pay = t.Pay(CAMPAIGN, shops[m].public_key, 100 + n % 500, "")
        tx = t.Tx(CHAIN_ID, people[h].public_key, sequences[h], pay)
        sequences[h] += 1
        out.append(tx.sign(people[h]).encode())
    return out


def _triples(txs: Sequence[bytes]) -> list[tuple[bytes, bytes, bytes]]:
    """(signed message, public key, signature) of each transaction."""
    triples = []
    for data in txs:
        body, signature = codec.as_list(codec.decode(data, 1 << 20), 2)
        if not isinstance(body, bytes) or not isinstance(signature, bytes):
            raise ToolInvariantBroken("bad benchmark transaction")
        sender = codec.as_list(codec.decode(body, 1 << 20), 9)[3]
        if not isinstance(sender, bytes):
            raise ToolInvariantBroken("bad benchmark transaction")
        triples.append((signing_bytes(Domain.TX, CHAIN_ID, body), sender, signature))
    return triples


class _VerifySampler:
    """Bare PyNaCl verifications on the ledger's own thread, timed apart.

    On a shared host the speed of a core drifts by +-20 % within seconds, so a
    rate measured only before and after the run can miss the conditions the
    run met. The sampler verifies ``SAMPLE_PER_BLOCK`` signatures between
    blocks (that time is not counted as the ledger's), which measures the
    limit on the same core, in the same conditions, as the ledger.
    """

    def __init__(self, triples: Sequence[tuple[bytes, bytes, bytes]]) -> None:
        self._triples = triples
        self._next = 0
        self.count = 0
        self.seconds = 0.0

    def sample(self, count: int) -> float:
        """Verify ``count`` signatures; return the seconds it took."""
        triples, n = self._triples, len(self._triples)
        batch = [triples[(self._next + i) % n] for i in range(count)]
        self._next = (self._next + count) % n
        start = time.perf_counter()
        for message, key, signature in batch:
            if not verify_raw(message, key, signature):
                raise ToolInvariantBroken("benchmark signature does not verify")
        took = time.perf_counter() - start
        self.count += count
        self.seconds += took
        return took

    def rate(self) -> float:
        return self.count / self.seconds


def run_ledger(
    transactions: int, block_size: int, holders: int, merchants: int, mode: str, workers: int
) -> LedgerFigures:
    """Apply ``transactions`` payments with signatures checked ``mode``-wise:
    ``inline`` on the ledger thread, or ahead of execution by ``workers``
    ``threads`` or ``processes`` (the node checks them at mempool admission)."""
    if not 1 <= holders <= HOLDERS_MAX:
        raise ValueError(f"holders must be 1..{HOLDERS_MAX:,}")
    with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
        set_up = time.perf_counter()
        payers = min(holders, transactions)  # each payment from a different holder when it can
        chain, people, shops, _ = _setup(Path(tmp) / "db", holders, merchants, payers)
        setup_s = time.perf_counter() - set_up
        proof_bytes = _proof_bytes(chain, people)
        txs = _payments(people, shops, transactions)
        blocks = [txs[i : i + block_size] for i in range(0, len(txs), block_size)]
        sample = _triples(txs[: min(len(txs), 5000)])
        alone = _VerifySampler(sample)
        alone.sample(len(sample))
        between = _VerifySampler(sample)
        processes = ProcessVerifier(workers) if mode == "processes" else None
        heap.freeze_loaded()  # as the node does once its state is loaded
        try:
            start = time.perf_counter()
            if mode == "inline":
                for block in blocks:
                    _check_all(_commit(chain, block))
                    start += between.sample(SAMPLE_PER_BLOCK)
            else:
                start += _pipelined(chain, blocks, workers, processes, between)
            seconds = time.perf_counter() - start
            worker = None if processes is None else processes.rate()
        finally:
            if processes is not None:
                processes.close()
        alone.sample(len(sample))
        chain.close()
    tx_per_s = transactions / seconds
    verify_per_s = between.rate()
    return LedgerFigures(
        transactions,
        block_size,
        seconds,
        tx_per_s,
        verify_per_s,
        alone.rate(),
        worker,
        tx_per_s / verify_per_s,
        holders,
        setup_s,
        proof_bytes,
        _peak_rss_mb(),
    )


def _pipelined(
    chain: HistoryWriter,
    blocks: Sequence[Sequence[bytes]],
    workers: int,
    processes: ProcessVerifier | None,
    sampler: _VerifySampler,
) -> float:
    """The node's path: signatures of block k+1 verify elsewhere while block k executes.

    Returns the seconds spent sampling verifications between blocks."""
    threads = SignatureVerifier(workers) if processes is None else None

    def submit(block: Sequence[bytes]) -> tuple[list[t.SignedTx], Callable[[], list[bool]]]:
        decoded = _decoded(block)
        if processes is not None:
            parts = processes.submit(decoded)
            return decoded, lambda: [ok for part in parts for ok in part.result()]
        assert threads is not None
        return decoded, threads.submit(decoded).result

    sampling = 0.0
    try:
        # Two blocks in flight: the verifier never waits for us to decode the next one.
        pending = deque(submit(b) for b in blocks[:LOOKAHEAD_BLOCKS])
        for k, block in enumerate(blocks):
            decoded, result = pending.popleft()
            verdicts = result()
            if k + LOOKAHEAD_BLOCKS < len(blocks):
                pending.append(submit(blocks[k + LOOKAHEAD_BLOCKS]))
            _check_all(_commit(chain, block, verdicts, decoded))
            sampling += sampler.sample(SAMPLE_PER_BLOCK)
    finally:
        if threads is not None:
            threads.close()
    return sampling


def _decoded(block: Sequence[bytes]) -> list[t.SignedTx]:
    out = []
    for data in block:
        decoded = t.decode_tx(data, CHAIN_ID)
        if isinstance(decoded, Result):
            raise ToolInvariantBroken(f"benchmark transaction does not decode: {decoded.name}")
        out.append(decoded)
    return out


def _check_all(results: Sequence[Result]) -> None:
    if any(r != Result.OK for r in results):
        raise ToolInvariantBroken(f"benchmark block rejected: {results}")


@contextlib.contextmanager
def _one_core(pin: bool) -> Iterator[None]:
    """Run the body on one core (when ``pin``), then give the process its cores back."""
    if not pin or not hasattr(os, "sched_setaffinity"):
        yield
        return
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cores)


@click.group(help="Benchmarks. Each prints figures and, last, one JSON object.")
def main() -> None:
    pass


@main.command(help="Apply pre-signed payments through the real commit path.")
@click.option("--transactions", "-n", default=20_000, show_default=True, help="Payments.")
@click.option(
    "--block-size",
    "-b",
    default=1_000,
    show_default=True,
    type=click.IntRange(1, limits.BLOCK_TXS_MAX),
    help="Txs per block.",
)
@click.option(
    "--holders",
    default=5_000,
    show_default=True,
    type=click.IntRange(1, HOLDERS_MAX),
    help="Allocated holders; payments come from the first ones, each from a different "
    "holder while there are holders.",
)
@click.option("--merchants", default=200, show_default=True, help="Distinct merchants.")
@click.option(
    "--verify",
    "mode",
    type=click.Choice(["processes", "threads", "inline"]),
    default="processes",
    show_default=True,
    help="Where signatures are checked: ahead of execution in worker processes (as the "
    "node does at mempool admission), in threads, or inline on the ledger thread.",
)
@click.option("--workers", default=-1, show_default=True, help="-1: one per other core.")
def ledger(
    transactions: int, block_size: int, holders: int, merchants: int, mode: str, workers: int
) -> None:
    """Example: relance-bench ledger -n 20000 -b 1000"""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    count = max(1, cores - 1) if workers < 0 else workers
    with _one_core(mode == "inline"):
        figures = run_ledger(transactions, block_size, holders, merchants, mode, count)
    where = "inline, one core" if mode == "inline" else f"{count} worker {mode}"
    click.echo(f"transactions:         {figures.transactions} in blocks of {figures.block_size}")
    click.echo(f"signature checks:     {where} ({cores} cores)")
    click.echo(f"applied:              {figures.tx_per_s:,.0f} tx/s ({figures.seconds:.2f} s)")
    worker = figures.verify_worker_per_s
    click.echo(
        f"PyNaCl verify:        {figures.verify_per_s:,.0f} verifications/s on the ledger's "
        f"core, sampled between blocks"
    )
    click.echo(
        f"                      ({figures.verify_alone_per_s:,.0f}/s alone before and after"
        + ("" if worker is None else f"; the worker verified {worker:,.0f}/s of CPU time")
        + ")"
    )
    click.echo(f"ratio:                {figures.ratio:.3f}")
    click.echo(
        f"state:                {figures.holders:,} holders set up in {figures.setup_s:.1f} s; "
        f"a holder's state proof: {figures.proof_bytes} bytes at most"
    )
    click.echo(f"peak memory:          {figures.peak_rss_mb:,.0f} MB resident")
    click.echo(
        json.dumps(
            {
                "bench": "ledger",
                "transactions": figures.transactions,
                "block_size": figures.block_size,
                "verify": mode,
                "workers": count if mode != "inline" else 0,
                "tx_per_s": round(figures.tx_per_s, 1),
                "verify_per_s": round(figures.verify_per_s, 1),
                "verify_alone_per_s": round(figures.verify_alone_per_s, 1),
                "verify_worker_per_s": None if worker is None else round(worker, 1),
                "ratio": round(figures.ratio, 4),
                "holders": figures.holders,
                "setup_s": round(figures.setup_s, 2),
                "proof_bytes": figures.proof_bytes,
                "peak_rss_mb": round(figures.peak_rss_mb, 1),
            }
        )
    )


@main.command(help="Audit a certified history of payments; compare with raw PyNaCl on every core.")
@click.option("--transactions", "-n", default=20_000, show_default=True, help="Payments.")
@click.option("--block-size", "-b", default=1_000, show_default=True, help="Txs per block.")
@click.option("--holders", default=5_000, show_default=True, help="Distinct payers.")
@click.option("--workers", default=0, help="Signature worker processes (0: one per other core).")
def audit(transactions: int, block_size: int, holders: int, workers: int) -> None:
    """Example: relance-bench audit -n 20000 -b 1000"""
    processes = workers or max(1, cores() - 1)
    figures = run_audit(transactions, block_size, holders, processes)
    click.echo(f"transactions:         {figures.transactions} in {figures.blocks} blocks")
    click.echo(f"signature workers:    {processes} processes on {cores()} cores")
    click.echo(f"audited:              {figures.tx_per_s:,.0f} tx/s ({figures.seconds:.2f} s)")
    click.echo(
        f"PyNaCl verify:        {figures.verify_per_s:,.0f} verifications/s, "
        f"one thread on each of the {cores()} cores"
    )
    click.echo(f"ratio:                {figures.ratio:.3f}")
    phases = ", ".join(f"{k} {v:.1f}" for k, v in figures.phase_us.items())
    click.echo(f"auditing process:     {phases} (us per transaction)")
    click.echo(
        f"ceiling:              {figures.ceiling:.3f} with the auditing process's work; "
        f"{figures.ceiling_decode_state:.3f} if it only decoded and computed state roots"
    )
    click.echo(
        json.dumps(
            {
                "bench": "audit",
                "transactions": figures.transactions,
                "blocks": figures.blocks,
                "workers": processes,
                "cores": cores(),
                "tx_per_s": round(figures.tx_per_s, 1),
                "verify_per_s": round(figures.verify_per_s, 1),
                "ratio": round(figures.ratio, 4),
                "phase_us": {k: round(v, 1) for k, v in figures.phase_us.items()},
                "ceiling": round(figures.ceiling, 4),
                "ceiling_decode_state": round(figures.ceiling_decode_state, 4),
            }
        )
    )


main.add_command(cluster)  # relance-bench cluster: tools/bench/cluster.py
main.add_command(scale)  # relance-bench scale: tools/bench/scale.py


if __name__ == "__main__":
    main()
