"""``relance-bench cluster``: 4 validators on this machine, load through the HTTP API.

The parent writes a devnet (``node.devnet.network``), starts its 4 validator
processes, measures bare PyNaCl verifications per second on one core, and
starts the load generator as a separate process (``python -m
tools.bench.cluster``). The generator registers merchants, creates, funds and
allocates a campaign to many holders, pre-signs every payment (``rounds``
per holder, sequences 0, 1, ...), then for ``duration`` seconds runs
``lanes`` concurrent lanes: each posts a batch holding the next payment of
each of its holders, ``?wait=true``, to the nodes in turn, and posts the next
batch once the answer says every payment is in a block. A payment's
submit-to-commit latency is its batch's round trip (an upper bound: the
batch answers when its last payment is in a block).

The ceiling is 2 cores x PyNaCl verifications/s (measured before and after
the load, averaged) / 4 nodes: every node verifies every transaction once.
Every process is stopped by its own id; the generator stops by itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
import click

from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, Supervisor, node_homes, write_devnet
from node.ledger import tx as t
from node.protocol.crypto import Domain, Signer, digest, signing_bytes, verify_raw
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from tools.faults.cluster import free_base_port

NODES: Final = 4
CEILING_CORES: Final = 2  # the ceiling: 2 cores x verifications/s / 4 nodes
MERCHANTS: Final = 4
AMOUNT_CENTS: Final = 100
ALLOCATION_CHUNK: Final = 2_000
READY_TIMEOUT_S: Final = 60.0
SETUP_TIMEOUT_S: Final = 120.0
CALL_TIMEOUT_S: Final = 35.0  # above the API's 30 s commit wait
LOADER_GRACE_S: Final = 300.0  # set-up and pre-signing, on top of the duration
VERIFY_SAMPLES: Final = 5_000


@dataclass(frozen=True, slots=True)
class ClusterFigures:
    duration_s: float
    committed: int
    submitted: int
    tx_per_s: float
    p50_ms: float
    p99_ms: float
    verify_per_s: float
    ceiling_tx_per_s: float
    ratio: float
    heights: int
    presign_s: float
    setup_s: float


# --- the parent: devnet, verify rate, the generator process ------------------------------------


def verify_rate(samples: int = VERIFY_SAMPLES) -> float:
    """Bare PyNaCl verifications per second on this thread, over payment-sized messages."""
    signer = Signer(digest(b"relance-bench:cluster-verify"))
    triples = []
    for i in range(samples):
        body = digest(i.to_bytes(8, "big")) * 5
        message = signing_bytes(Domain.TX, "bench", body)
        triples.append((message, signer.public_key, signer.sign(Domain.TX, "bench", body)))
    start = time.perf_counter()
    for message, key, signature in triples:
        if not verify_raw(message, key, signature):
            raise RuntimeError("benchmark signature does not verify")
    return samples / (time.perf_counter() - start)


def _status(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url + "/v1/status", timeout=2) as response:
            body: dict[str, object] = json.load(response)
            return body
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _wait_ready(urls: Sequence[str], supervisor: Supervisor) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    for url in urls:
        while _status(url) is None:
            if supervisor.exited():
                raise click.ClickException(f"a validator exited: {supervisor.exited()}")
            if time.monotonic() > deadline:
                raise click.ClickException(f"{url} did not answer in {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.2)  # processes starting: nothing to wait on but time


def run_cluster(
    duration_s: float, holders: int, lanes: int, rounds: int, keep: bool
) -> ClusterFigures:
    root = Path(tempfile.mkdtemp(prefix="relance-bench-cluster-"))
    nodes = write_devnet(root, NODES, free_base_port(2 * NODES, 1), time.time_ns() // 1_000_000)
    supervisor = Supervisor(nodes)
    out = root / "load.json"
    try:
        supervisor.start()
        _wait_ready([n.api_url for n in nodes], supervisor)
        verify_before = verify_rate()
        command = [
            sys.executable, "-m", "tools.bench.cluster", str(root), str(out),
            "--duration", str(duration_s), "--holders", str(holders),
            "--lanes", str(lanes), "--rounds", str(rounds),
        ]  # fmt: skip
        loader = subprocess.Popen(command)
        try:
            loader.wait(duration_s + LOADER_GRACE_S)
        except subprocess.TimeoutExpired:
            loader.kill()  # its own pid
            loader.wait()
            raise click.ClickException("the load generator did not stop in time") from None
        if loader.returncode != 0:
            raise click.ClickException(f"the load generator failed ({loader.returncode})")
        verify_after = verify_rate()
        load: dict[str, float] = json.loads(out.read_text(encoding="utf-8"))
    finally:
        supervisor.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    verify_per_s = (verify_before + verify_after) / 2
    ceiling = CEILING_CORES * verify_per_s / NODES
    tx_per_s = load["committed"] / load["seconds"]
    return ClusterFigures(
        load["seconds"], int(load["committed"]), int(load["submitted"]), tx_per_s,
        load["p50_ms"], load["p99_ms"], verify_per_s, ceiling, tx_per_s / ceiling,
        int(load["heights"]), load["presign_s"], load["setup_s"],
    )  # fmt: skip


# --- the generator (a separate process) ---------------------------------------------------------


@dataclass
class Lane:
    holders: list[int]  # indices into the pre-signed rows
    latencies_s: list[float]
    committed: int = 0
    submitted: int = 0


async def _post(session: aiohttp.ClientSession, url: str, txs: Sequence[bytes]) -> list[int | None]:
    """Heights told for each transaction of the batch (None: not in a block)."""
    body = {"txs": [data.hex() for data in txs]}
    try:
        async with session.post(url + "/v1/transactions?wait=true", json=body) as response:
            answer = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return [None] * len(txs)
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list) or len(results) != len(txs):
        return [None] * len(txs)
    heights = [r.get("height") if isinstance(r, dict) else None for r in results]
    return [h if isinstance(h, int) else None for h in heights]


async def _setup(urls: Sequence[str], txs: list[bytes]) -> None:
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        pending = txs
        while pending:
            heights = await _post(session, urls[0], pending)
            pending = [d for d, h in zip(pending, heights, strict=True) if h is None]
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} set-up transactions not committed in time")
            if pending:
                await asyncio.sleep(0.5)  # again, same bytes (idempotent by id)


async def _lane(
    session: aiohttp.ClientSession,
    urls: Sequence[str],
    lane: Lane,
    number: int,
    signed: list[list[bytes]],
    deadline: float,
) -> None:
    for r in range(len(signed[0])):
        if time.monotonic() > deadline or not lane.holders:
            return
        batch = [signed[h][r] for h in lane.holders]
        started = time.monotonic()
        heights = await _post(session, urls[(number + r) % len(urls)], batch)
        seconds = time.monotonic() - started
        lane.submitted += len(batch)
        kept = []
        for holder, height in zip(lane.holders, heights, strict=True):
            if height is not None:
                lane.committed += 1
                lane.latencies_s.append(seconds)
                kept.append(holder)  # a holder whose payment is not known to be in drops out
        lane.holders = kept


def _height(url: str) -> int:
    status = _status(url)
    height = status.get("height") if status else None
    return height if isinstance(height, int) else 0


def generate(
    root: Path, duration_s: float, holders: int, lanes: int, rounds: int
) -> dict[str, float]:
    nodes = node_homes(root)
    urls = [n.api_url for n in nodes]
    genesis = parse_genesis((nodes[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
    keys = load_keys(root / DEMO_KEYS_FILE)
    chain, issuer, bank = genesis.chain_id, keys["issuer0"], keys["bank"]
    zone = genesis.issuers[0].zones[0]
    code, pot = "bench", AMOUNT_CENTS * rounds
    shops = [Signer(digest(f"bench-cluster:shop:{i}".encode())) for i in range(MERCHANTS)]
    people = [Signer(digest(f"bench-cluster:holder:{i}".encode())) for i in range(holders)]
    payloads: list[tuple[Signer, int, t.Payload]] = [
        (
            issuer,
            i,
            t.RegisterMerchant(s.public_key, f"Shop {i}", "47.11", zone, digest(b"r"), False),
        )
        for i, s in enumerate(shops)
    ]
    day = 86_400_000
    payloads.append((issuer, MERCHANTS, t.CreateCampaign(
        code, "Bench", (), (), genesis.genesis_time_ms - day, genesis.genesis_time_ms + 30 * day,
        pot)))  # fmt: skip
    payloads.append((bank, 0, t.Fund(code, holders * pot, "DEP-BENCH")))
    for n, start in enumerate(range(0, holders, ALLOCATION_CHUNK)):
        chunk = people[start : start + ALLOCATION_CHUNK]
        allocations = tuple(t.Allocation(p.public_key, pot, zone) for p in chunk)
        payloads.append((issuer, MERCHANTS + 1 + n, t.Allocate(code, allocations)))
    setup = [t.Tx(chain, who.public_key, seq, p).sign(who).encode() for who, seq, p in payloads]
    began = time.monotonic()
    asyncio.run(_setup(urls, setup))
    setup_s = time.monotonic() - began
    began = time.monotonic()
    signed = [
        [
            t.Tx(chain, p.public_key, r, t.Pay(code, shops[(h + r) % MERCHANTS].public_key,
                                               AMOUNT_CENTS, "")).sign(p).encode()
            for r in range(rounds)
        ]
        for h, p in enumerate(people)
    ]  # fmt: skip
    presign_s = time.monotonic() - began
    first = _height(urls[0])
    all_lanes = [Lane(list(range(i, holders, lanes)), []) for i in range(lanes)]
    began = time.monotonic()
    asyncio.run(_load(urls, all_lanes, signed, began + duration_s))
    seconds = time.monotonic() - began
    latencies = sorted(s for lane in all_lanes for s in lane.latencies_s)
    return {
        "seconds": seconds,
        "committed": sum(lane.committed for lane in all_lanes),
        "submitted": sum(lane.submitted for lane in all_lanes),
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else 0.0,
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)]
        if latencies
        else 0.0,
        "heights": _height(urls[0]) - first,
        "presign_s": presign_s,
        "setup_s": setup_s,
    }


async def _load(
    urls: Sequence[str], lanes: list[Lane], signed: list[list[bytes]], deadline: float
) -> None:
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=len(lanes) + 4)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(
            *(_lane(session, urls, lane, i, signed, deadline) for i, lane in enumerate(lanes))
        )


@click.command(help="The load generator of relance-bench cluster (run by it).")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--duration", type=float, default=60.0)
@click.option("--holders", type=int, default=2_000)
@click.option("--lanes", type=int, default=8)
@click.option("--rounds", type=int, default=40)
def generator(
    root: Path, out: Path, duration: float, holders: int, lanes: int, rounds: int
) -> None:
    figures = generate(root, duration, holders, lanes, rounds)
    out.write_text(json.dumps(figures), encoding="utf-8")


# --- the command --------------------------------------------------------------------------------


@click.command(help="4 validators on this machine, payments through the HTTP API.")
@click.option("--duration", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds of load.")  # fmt: skip
@click.option("--holders", default=2_000, show_default=True, help="Distinct payers.")
@click.option("--lanes", default=8, show_default=True, help="Concurrent batches in flight.")
@click.option("--rounds", default=40, show_default=True, help="Pre-signed payments per holder.")
@click.option("--keep", is_flag=True, help="Keep the devnet directory.")
def cluster(duration: float, holders: int, lanes: int, rounds: int, keep: bool) -> None:
    """Example: relance-bench cluster --duration 60"""
    f = run_cluster(duration, holders, lanes, rounds, keep)
    click.echo(f"validators:           {NODES} on this machine ({CEILING_CORES}-core ceiling)")
    click.echo(f"load:                 {f.duration_s:.1f} s, {f.submitted} submitted, "
               f"{f.committed} committed in {f.heights} blocks")  # fmt: skip
    click.echo(f"set-up, pre-signing:  {f.setup_s:.1f} s, {f.presign_s:.1f} s (before the load)")
    click.echo(f"committed:            {f.tx_per_s:,.1f} tx/s")
    click.echo(f"submit-to-commit:     p50 {f.p50_ms:,.0f} ms, p99 {f.p99_ms:,.0f} ms")
    click.echo(f"PyNaCl verify:        {f.verify_per_s:,.0f} verifications/s on one core")
    click.echo(f"ceiling:              {f.ceiling_tx_per_s:,.0f} tx/s "
               f"({CEILING_CORES} x verify / {NODES} nodes)")  # fmt: skip
    click.echo(f"ratio:                {f.ratio:.3f}")
    click.echo(
        json.dumps(
            {
                "bench": "cluster",
                "nodes": NODES,
                "duration_s": round(f.duration_s, 2),
                "committed": f.committed,
                "tx_per_s": round(f.tx_per_s, 1),
                "p50_ms": round(f.p50_ms, 1),
                "p99_ms": round(f.p99_ms, 1),
                "verify_per_s": round(f.verify_per_s, 1),
                "ceiling_tx_per_s": round(f.ceiling_tx_per_s, 1),
                "ratio": round(f.ratio, 4),
            }
        )
    )


if __name__ == "__main__":
    generator()
