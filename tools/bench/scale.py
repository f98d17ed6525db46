"""``relance-bench scale``: allocate many holders to a devnet through its HTTP API.

The command writes a devnet (``node.devnet.network``, 4 validators by default), starts
its validator processes, signs a campaign's set-up (merchant, campaign, as many
funds as the genesis ``amount_max_cents`` needs) and its allocate transactions
(``ALLOCATIONS_PER_TX_MAX`` holders each unless ``--per-tx`` says fewer), then
posts the allocations in batches of ``--batch`` transactions, each transaction its own
``POST /v1/transactions?wait=true`` (one allocate transaction is about half the
API's body limit in hex), to the nodes in turn; the next batch goes once every
transaction of the batch is in a block. It prints the time to allocate every
holder, the allocations per second over the first and the last tenth of them,
and each validator's resident memory after (``VmRSS``) and at its peak
(``VmHWM``), read from ``/proc``.

Bounded: the allocations stop after ``--timeout`` seconds (the figures then
say how many holders were allocated, ``"complete": false``); every validator
is stopped by its own process id (``Supervisor.stop``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
import click

from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, Supervisor, write_devnet
from node.ledger import tx as t
from node.protocol import limits
from node.protocol.crypto import PublicKey, Signer, digest
from node.protocol.genesis import Genesis
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from tools.bench.cluster import CALL_TIMEOUT_S, _post, _wait_ready
from tools.faults.cluster import free_base_port

HOLDERS_MAX: Final = 2_000_000
HOLDER_CENTS: Final = 100
CAMPAIGN: Final = "scale"
RETRY_PAUSE_S: Final = 0.5  # a batch not all in a block is posted again (same bytes) after this
EDGE_SHARE: Final = 10  # the start and the end rates: over the first and last tenth of holders


@dataclass(frozen=True, slots=True)
class NodeMemory:
    name: str
    rss_mb: float  # resident now (VmRSS)
    peak_mb: float  # resident at its peak (VmHWM)


@dataclass(frozen=True, slots=True)
class ScaleFigures:
    nodes: int
    holders: int  # asked for
    allocated: int  # in a block before ``--timeout`` (all of them unless it ran out of time)
    transactions: int  # allocate transactions
    batch: int
    sign_s: float  # building and signing them, before the clock starts
    setup_s: float  # merchant, campaign, funds
    allocate_s: float  # the first allocation posted to the last one in a block
    per_s: float
    start_per_s: float  # over the first tenth of the holders
    end_per_s: float  # over the last tenth
    memory: tuple[NodeMemory, ...]


def memory_of(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of process ``pid`` in MB, from ``/proc/<pid>/status``."""
    fields: dict[str, float] = {}
    text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(rest.split()[0]) / 1024  # kB
    return fields["VmRSS"], fields["VmHWM"]


def edge_rates(marks: Sequence[tuple[float, int]], holders: int) -> tuple[float, float]:
    """Allocations/s over the first and the last tenth of ``holders`` (those allocated).

    ``marks`` are (seconds since the first post, holders allocated by then), in
    order, the first one ``(0.0, 0)``. Each edge spans the whole batches that
    cover its tenth (at least one batch).
    """
    share = max(1, holders // EDGE_SHARE)
    first = next(m for m in marks[1:] if m[1] >= share)
    start = first[1] / first[0] if first[0] > 0 else 0.0
    last_from = next(m for m in reversed(marks[:-1]) if m[1] <= holders - share)
    end_span = marks[-1][0] - last_from[0]
    end = (marks[-1][1] - last_from[1]) / end_span if end_span > 0 else 0.0
    return start, end


def _signed_setup(
    genesis: Genesis, issuer: Signer, bank: Signer, holders: int, per_tx: int
) -> tuple[list[bytes], list[bytes]]:
    """The set-up transactions and the allocate ones, signed."""
    chain, zone, now = genesis.chain_id, genesis.issuers[0].zones[0], genesis.genesis_time_ms
    shop = Signer(digest(b"bench-scale:shop"))
    seq = 0
    setup = [
        t.Tx(
            chain,
            issuer.public_key,
            seq,
            t.RegisterMerchant(shop.public_key, "Shop", "47.11", zone, digest(b"r"), False),
        )
    ]
    seq += 1
    day = 86_400_000
    campaign = t.CreateCampaign(CAMPAIGN, "Scale", (), (), now - day, now + 30 * day, HOLDER_CENTS)
    setup.append(t.Tx(chain, issuer.public_key, seq, campaign))
    seq += 1
    total, amount_max = HOLDER_CENTS * holders, genesis.limits.amount_max_cents
    for n, start in enumerate(range(0, total, amount_max)):
        fund = t.Fund(CAMPAIGN, min(amount_max, total - start), f"DEP-SCALE-{n}")
        setup.append(t.Tx(chain, bank.public_key, n, fund))
    signer = {issuer.public_key: issuer, bank.public_key: bank}
    allocate = []
    for start in range(0, holders, per_tx):
        batch = tuple(
            t.Allocation(PublicKey(digest(b"bench-scale:holder:%d" % i)), HOLDER_CENTS, zone)
            for i in range(start, min(holders, start + per_tx))
        )
        allocate.append(t.Tx(chain, issuer.public_key, seq, t.Allocate(CAMPAIGN, batch)))
        seq += 1
    return (
        [tx.sign(signer[tx.sender]).encode() for tx in setup],
        [tx.sign(issuer).encode() for tx in allocate],
    )


async def _commit(
    session: aiohttp.ClientSession, urls: Sequence[str], txs: Sequence[bytes], deadline: float
) -> None:
    """Post each of ``txs`` on its own (``?wait=true``), to the nodes in turn, until every
    one is in a block; again with the same bytes for those that are not (idempotent)."""
    pending = list(txs)
    while pending:
        answers = await asyncio.gather(
            *(_post(session, urls[i % len(urls)], [data]) for i, data in enumerate(pending))
        )
        pending = [d for d, heights in zip(pending, answers, strict=True) if heights[0] is None]
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} transactions not in a block in time")
            await asyncio.sleep(RETRY_PAUSE_S)  # the mempool was full or a wait timed out


async def _allocate(
    urls: Sequence[str],
    setup: Sequence[bytes],
    allocate: Sequence[bytes],
    batch: int,
    sizes: Sequence[int],
    deadline: float,
) -> tuple[float, list[tuple[float, int]]]:
    """Commit the set-up, then the allocations batch by batch until ``deadline``:
    (set-up seconds, marks of (seconds, holders allocated) after each batch)."""
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        began = time.monotonic()
        for data in setup:  # in order: the campaign before its funds
            try:
                await asyncio.wait_for(_commit(session, urls, [data], deadline), _left(deadline))
            except TimeoutError:
                raise click.ClickException("the set-up was not in a block in time") from None
        setup_s = time.monotonic() - began
        marks = [(0.0, 0)]
        done = 0
        began = time.monotonic()
        for at in range(0, len(allocate), batch):
            work = _commit(session, urls, allocate[at : at + batch], deadline)
            try:
                await asyncio.wait_for(work, _left(deadline))
            except TimeoutError:
                break  # out of time: the figures say how far it got
            done += sum(sizes[at : at + batch])
            marks.append((time.monotonic() - began, done))
    return setup_s, marks


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def run_scale(
    holders: int, nodes: int, batch: int, per_tx: int, timeout_s: float, keep: bool
) -> ScaleFigures:
    deadline = time.monotonic() + timeout_s
    root = Path(tempfile.mkdtemp(prefix="relance-bench-scale-"))
    devnet = write_devnet(root, nodes, free_base_port(2 * nodes, 1), time.time_ns() // 1_000_000)
    supervisor = Supervisor(devnet)
    try:
        genesis = parse_genesis((devnet[0].home / config.GENESIS_FILE).read_text("utf-8"))
        keys = load_keys(root / DEMO_KEYS_FILE)
        began = time.monotonic()
        setup, allocate = _signed_setup(genesis, keys["issuer0"], keys["bank"], holders, per_tx)
        sign_s = time.monotonic() - began
        sizes = [min(per_tx, holders - at) for at in range(0, holders, per_tx)]
        supervisor.start()
        urls = [n.api_url for n in devnet]
        _wait_ready(urls, supervisor)
        setup_s, marks = asyncio.run(_allocate(urls, setup, allocate, batch, sizes, deadline))
        memory = tuple(
            NodeMemory(node.name, *memory_of(supervisor.pid(i))) for i, node in enumerate(devnet)
        )
    finally:
        supervisor.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    allocate_s, allocated = marks[-1]
    start, end = edge_rates(marks, allocated) if allocated else (0.0, 0.0)
    return ScaleFigures(
        nodes,
        holders,
        allocated,
        len(allocate),
        batch,
        sign_s,
        setup_s,
        allocate_s,
        allocated / allocate_s if allocate_s > 0 else 0.0,
        start,
        end,
        memory,
    )


@click.command(help="Allocate many holders to a devnet through the HTTP API; time and memory.")
@click.option(
    "--holders",
    default=1_000_000,
    show_default=True,
    type=click.IntRange(1, HOLDERS_MAX),
    help="Holders to allocate.",
)
@click.option(
    "--nodes",
    default=4,
    show_default=True,
    type=click.IntRange(1, 4),
    help="Validators of the devnet, each its own process.",
)
@click.option(
    "--batch",
    default=4,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Allocate transactions posted at once; the next batch goes when all are in a block.",
)
@click.option(
    "--per-tx",
    default=limits.ALLOCATIONS_PER_TX_MAX,
    show_default=True,
    type=click.IntRange(1, limits.ALLOCATIONS_PER_TX_MAX),
    help="Holders a transaction allocates.",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=900.0,
    show_default=True,
    type=click.FloatRange(min=10),
    help="Seconds before the whole run stops.",
)
@click.option("--keep", is_flag=True, help="Keep the devnet directory.")
def scale(holders: int, nodes: int, batch: int, per_tx: int, timeout_s: float, keep: bool) -> None:
    """Example: relance-bench scale --holders 1000000"""
    f = run_scale(holders, nodes, batch, per_tx, timeout_s, keep)
    click.echo(f"validators:           {f.nodes} on this machine")
    click.echo(
        f"holders:              {f.holders:,} in {f.transactions} allocate transactions, "
        f"{f.batch} a batch"
    )
    click.echo(f"signing, set-up:      {f.sign_s:.1f} s, {f.setup_s:.1f} s (before the clock)")
    if f.allocated < f.holders:
        click.echo(f"stopped at --timeout: {f.allocated:,} of {f.holders:,} holders allocated")
    click.echo(f"allocated in:         {f.allocate_s:.1f} s ({f.per_s:,.0f} allocations/s)")
    click.echo(
        f"allocations/s:        {f.start_per_s:,.0f} over the first tenth, "
        f"{f.end_per_s:,.0f} over the last"
    )
    for m in f.memory:
        click.echo(
            f"resident memory:      {m.name}: {m.rss_mb:,.0f} MB after, "
            f"{m.peak_mb:,.0f} MB at its peak"
        )
    click.echo(
        json.dumps(
            {
                "bench": "scale",
                "nodes": f.nodes,
                "holders": f.holders,
                "allocated": f.allocated,
                "complete": f.allocated == f.holders,
                "transactions": f.transactions,
                "batch": f.batch,
                "sign_s": round(f.sign_s, 2),
                "setup_s": round(f.setup_s, 2),
                "allocate_s": round(f.allocate_s, 2),
                "per_s": round(f.per_s, 1),
                "start_per_s": round(f.start_per_s, 1),
                "end_per_s": round(f.end_per_s, 1),
                "rss_mb": [round(m.rss_mb, 1) for m in f.memory],
                "peak_rss_mb": [round(m.peak_mb, 1) for m in f.memory],
            }
        )
    )
