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

With ``--rate R`` the load is open-loop instead (``tools.bench.open_loop``):
payments are sent on a fixed schedule of ``R`` per second, whatever the answers
do, and each payment's latency runs from its scheduled send time to the answer
that says it is in a block. ``--rate auto`` first saturates the cluster with the
lanes for ``duration`` seconds, then sends at half the rate it committed for
another ``duration`` (each holder going on with its next pre-signed payment):
the p50/p90/p99 at half the saturated rate.

The ceiling is min(2, nodes) cores x PyNaCl verifications/s (measured before and
after the load, averaged) / nodes: every node verifies every transaction once
(4 nodes: 2 cores x verifications / 4). Every process is stopped by its own id;
the generator stops by itself.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import aiohttp
import click

from node.client.http_json import NodeStatus, Unreachable, node_status
from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, Supervisor, node_homes, write_devnet
from node.ledger import tx as t
from node.protocol.crypto import Domain, Signer, digest, signing_bytes, verify_raw
from node.protocol.errors import ToolInvariantBroken
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from tools.bench.open_loop import (
    IN_FLIGHT_MAX,
    RATE_MAX,
    RateFigures,
    percentile_ms,
    run_open_loop,
)
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
AUTO: Final = "auto"  # --rate auto: saturate, then half the saturated rate


@dataclass(frozen=True, slots=True)
class SaturatedFigures:
    """The closed-loop phase: ``lanes`` batches in flight, each sent when the last is in."""

    duration_s: float
    committed: int
    submitted: int
    tx_per_s: float
    p50_ms: float
    p99_ms: float
    heights: int


@dataclass(frozen=True, slots=True)
class ClusterFigures:
    nodes: int
    saturated: SaturatedFigures | None  # None with a fixed --rate
    at_rate: RateFigures | None  # None without --rate
    verify_per_s: float
    ceiling_tx_per_s: float
    presign_s: float
    setup_s: float

    @property
    def ratio(self) -> float | None:
        """The saturated rate over the ceiling."""
        return None if self.saturated is None else self.saturated.tx_per_s / self.ceiling_tx_per_s


def ceiling(nodes: int, verify_per_s: float) -> float:
    """Committed tx/s if verification were all: every node verifies every transaction."""
    return min(CEILING_CORES, nodes) * verify_per_s / nodes


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
            raise ToolInvariantBroken("benchmark signature does not verify")
    return samples / (time.perf_counter() - start)


def _status(url: str) -> NodeStatus | None:
    try:
        return node_status(url, 2)
    except Unreachable:
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
    duration_s: float,
    holders: int,
    lanes: int,
    rounds: int,
    keep: bool,
    rate: float | str | None = None,
    nodes: int = NODES,
) -> ClusterFigures:
    """``rate``: None (lanes at full speed), tx/s (open-loop only) or ``AUTO``."""
    root = Path(tempfile.mkdtemp(prefix="relance-bench-cluster-"))
    devnet = write_devnet(root, nodes, free_base_port(2 * nodes, 1), time.time_ns() // 1_000_000)
    supervisor = Supervisor(devnet)
    out = root / "load.json"
    phases = 2 if rate == AUTO else 1
    try:
        supervisor.start()
        _wait_ready([n.api_url for n in devnet], supervisor)
        verify_before = verify_rate()
        command = [
            sys.executable,
            "-m",
            "tools.bench.cluster",
            str(root),
            str(out),
            "--duration",
            str(duration_s),
            "--holders",
            str(holders),
            "--lanes",
            str(lanes),
            "--rounds",
            str(rounds),
        ] + ([] if rate is None else ["--rate", str(rate)])
        _run_loader(command, phases * (duration_s + CALL_TIMEOUT_S) + LOADER_GRACE_S)
        verify_after = verify_rate()
        load = json.loads(out.read_text(encoding="utf-8"))
    finally:
        supervisor.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    verify_per_s = (verify_before + verify_after) / 2
    saturated = None if load["saturated"] is None else SaturatedFigures(**load["saturated"])
    at_rate = None if load["rate"] is None else RateFigures(**load["rate"])
    return ClusterFigures(
        nodes,
        saturated,
        at_rate,
        verify_per_s,
        ceiling(nodes, verify_per_s),
        load["presign_s"],
        load["setup_s"],
    )


def _run_loader(command: list[str], timeout_s: float) -> None:
    loader = subprocess.Popen(command)
    try:
        loader.wait(timeout_s)
    except subprocess.TimeoutExpired:
        loader.kill()  # its own pid
        loader.wait()
        raise click.ClickException("the load generator did not stop in time") from None
    if loader.returncode != 0:
        raise click.ClickException(f"the load generator failed ({loader.returncode})")


# --- the generator (a separate process) ---------------------------------------------------------


@dataclass
class Lane:
    holders: list[int]  # indices into the pre-signed rows
    latencies_s: list[float]
    committed: int = 0
    submitted: int = 0
    next_round: int = 0  # the kept holders' next pre-signed payment


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
                raise ToolInvariantBroken(
                    f"{len(pending)} set-up transactions not committed in time"
                )
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
        lane.next_round = r + 1
        kept = []
        for holder, height in zip(lane.holders, heights, strict=True):
            if height is not None:
                lane.committed += 1
                lane.latencies_s.append(seconds)
                kept.append(holder)  # a holder whose payment is not known to be in drops out
        lane.holders = kept


def _height(url: str) -> int:
    status = _status(url)
    return 0 if status is None else status.height


@dataclass(frozen=True, slots=True)
class _Bench:
    """The devnet as the generator sees it, and what it signs with."""

    urls: list[str]
    chain: str
    issuer: Signer
    bank: Signer
    zone: str
    genesis_ms: int
    shops: list[Signer]
    people: list[Signer]


def _bench(root: Path, holders: int) -> _Bench:
    nodes = node_homes(root)
    genesis = parse_genesis((nodes[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
    keys = load_keys(root / DEMO_KEYS_FILE)
    return _Bench(
        [n.api_url for n in nodes],
        genesis.chain_id,
        keys["issuer0"],
        keys["bank"],
        genesis.issuers[0].zones[0],
        genesis.genesis_time_ms,
        [Signer(digest(f"bench-cluster:shop:{i}".encode())) for i in range(MERCHANTS)],
        [Signer(digest(f"bench-cluster:holder:{i}".encode())) for i in range(holders)],
    )


def _setup_txs(b: _Bench, rounds: int) -> list[bytes]:
    """Merchants, a campaign funded and allocated: a pot of ``rounds`` payments each."""
    code, pot, day = "bench", AMOUNT_CENTS * rounds, 86_400_000
    payloads: list[tuple[Signer, int, t.Payload]] = [
        (
            b.issuer,
            i,
            t.RegisterMerchant(s.public_key, f"Shop {i}", "47.11", b.zone, digest(b"r"), False),
        )
        for i, s in enumerate(b.shops)
    ]
    payloads.append(
        (
            b.issuer,
            MERCHANTS,
            t.CreateCampaign(
                code, "Bench", (), (), b.genesis_ms - day, b.genesis_ms + 30 * day, pot
            ),
        )
    )
    payloads.append((b.bank, 0, t.Fund(code, len(b.people) * pot, "DEP-BENCH")))
    for n, start in enumerate(range(0, len(b.people), ALLOCATION_CHUNK)):
        chunk = b.people[start : start + ALLOCATION_CHUNK]
        allocations = tuple(t.Allocation(p.public_key, pot, b.zone) for p in chunk)
        payloads.append((b.issuer, MERCHANTS + 1 + n, t.Allocate(code, allocations)))
    return [t.Tx(b.chain, who.public_key, seq, p).sign(who).encode() for who, seq, p in payloads]


def _presign(b: _Bench, rounds: int) -> list[list[bytes]]:
    """Each holder's payments, sequences 0 .. rounds - 1, to the shops in turn."""
    return [
        [
            t.Tx(
                b.chain,
                p.public_key,
                r,
                t.Pay("bench", b.shops[(h + r) % MERCHANTS].public_key, AMOUNT_CENTS, ""),
            )
            .sign(p)
            .encode()
            for r in range(rounds)
        ]
        for h, p in enumerate(b.people)
    ]


def generate(
    root: Path, duration_s: float, holders: int, lanes: int, rounds: int, rate: str | None = None
) -> dict[str, object]:
    """``rate``: None (lanes at full speed), a number of tx/s (open-loop), or ``AUTO``."""
    b = _bench(root, holders)
    began = time.monotonic()
    asyncio.run(_setup(b.urls, _setup_txs(b, rounds)))
    setup_s = time.monotonic() - began
    began = time.monotonic()
    signed = _presign(b, rounds)
    presign_s = time.monotonic() - began
    next_rounds = {h: 0 for h in range(holders)}
    saturated = None
    if rate is None or rate == AUTO:
        saturated, next_rounds = _saturate(b.urls, signed, lanes, duration_s)
    at_rate = None
    if rate is not None:
        tx_per_s = saturated.tx_per_s / 2 if saturated is not None else float(rate)
        queue = _open_loop_queue(signed, next_rounds, tx_per_s, duration_s)
        at_rate = asyncio.run(_open_loop(b.urls, queue, tx_per_s))
    return {
        "saturated": None if saturated is None else asdict(saturated),
        "rate": None if at_rate is None else asdict(at_rate),
        "presign_s": presign_s,
        "setup_s": setup_s,
    }


def _saturate(
    urls: list[str], signed: list[list[bytes]], lanes: int, duration_s: float
) -> tuple[SaturatedFigures, dict[int, int]]:
    """The lanes at full speed; each kept holder's next pre-signed payment after them."""
    first = _height(urls[0])
    all_lanes = [Lane(list(range(i, len(signed), lanes)), []) for i in range(lanes)]
    began = time.monotonic()
    asyncio.run(_load(urls, all_lanes, signed, began + duration_s))
    seconds = time.monotonic() - began
    latencies = sorted(s for lane in all_lanes for s in lane.latencies_s)
    committed = sum(lane.committed for lane in all_lanes)
    figures = SaturatedFigures(
        duration_s=seconds,
        committed=committed,
        submitted=sum(lane.submitted for lane in all_lanes),
        tx_per_s=committed / seconds,
        p50_ms=percentile_ms(latencies, 0.50),
        p99_ms=percentile_ms(latencies, 0.99),
        heights=_height(urls[0]) - first,
    )
    return figures, {h: lane.next_round for lane in all_lanes for h in lane.holders}


def _open_loop_queue(
    signed: list[list[bytes]], next_rounds: dict[int, int], rate: float, duration_s: float
) -> list[bytes]:
    """``rate x duration`` payments, holder after holder, each holder in its own order."""
    wanted = math.ceil(rate * duration_s)
    rounds = len(signed[0]) if signed else 0
    queue = [
        signed[h][r + k]
        for k in range(rounds)
        for h, r in sorted(next_rounds.items())
        if r + k < rounds
    ]
    if len(queue) < wanted:
        raise ToolInvariantBroken(
            f"{len(queue)} pre-signed payments left, {wanted} wanted at {rate:,.1f} tx/s: "
            "raise --rounds or --holders"
        )
    return queue[:wanted]


async def _open_loop(urls: Sequence[str], queue: list[bytes], rate: float) -> RateFigures:
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT_MAX)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def post(number: int, batch: Sequence[bytes]) -> list[int | None]:
            return await _post(session, urls[number % len(urls)], batch)

        return await run_open_loop(queue, rate, post, drain_s=CALL_TIMEOUT_S)


async def _load(
    urls: Sequence[str], lanes: list[Lane], signed: list[list[bytes]], deadline: float
) -> None:
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=len(lanes) + 4)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(
            *(_lane(session, urls, lane, i, signed, deadline) for i, lane in enumerate(lanes))
        )


def _rate_text(text: str | None) -> str | None:
    """``--rate``: ``auto`` or a number of tx/s above 0."""
    if text is None or text == AUTO:
        return text
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= RATE_MAX:
        raise click.BadParameter(f"'auto' or tx/s above 0 and at most {RATE_MAX:,.0f}")
    return text


@click.command(help="The load generator of relance-bench cluster (run by it).")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--duration", type=float, default=60.0)
@click.option("--holders", type=int, default=2_000)
@click.option("--lanes", type=int, default=8)
@click.option("--rounds", type=int, default=40)
@click.option("--rate", callback=lambda _c, _p, v: _rate_text(v))
def generator(
    root: Path,
    out: Path,
    duration: float,
    holders: int,
    lanes: int,
    rounds: int,
    rate: str | None,
) -> None:
    figures = generate(root, duration, holders, lanes, rounds, rate)
    out.write_text(json.dumps(figures), encoding="utf-8")


# --- the command --------------------------------------------------------------------------------


@click.command(help="4 validators on this machine, payments through the HTTP API.")
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds of load (of each phase with --rate auto).",
)
@click.option("--holders", default=2_000, show_default=True, help="Distinct payers.")
@click.option("--lanes", default=8, show_default=True, help="Concurrent batches in flight.")
@click.option("--rounds", default=40, show_default=True, help="Pre-signed payments per holder.")
@click.option(
    "--rate",
    metavar="TX_PER_S|auto",
    callback=lambda _c, _p, v: _rate_text(v),
    help="Open-loop: payments sent on a fixed schedule, latency from the scheduled "
    "time. 'auto': the lanes at full speed first, then half their rate.",
)
@click.option(
    "--nodes",
    type=click.IntRange(1, NODES),
    default=NODES,
    show_default=True,
    help="Validators (fewer for a quick check).",
)
@click.option("--keep", is_flag=True, help="Keep the devnet directory.")
def cluster(
    duration: float,
    holders: int,
    lanes: int,
    rounds: int,
    rate: str | None,
    nodes: int,
    keep: bool,
) -> None:
    """Example: relance-bench cluster --duration 60 --rate auto"""
    if rate not in (None, AUTO) and math.ceil(float(rate) * duration) > holders * rounds:
        raise click.BadParameter(
            f"{holders * rounds} pre-signed payments (--holders x --rounds) do not last "
            f"{duration:g} s at {rate} tx/s",
            param_hint="--rate",
        )
    f = run_cluster(duration, holders, lanes, rounds, keep, rate, nodes)
    _echo_figures(f)
    click.echo(json.dumps(figures_json(f, rate)))


def _echo_figures(f: ClusterFigures) -> None:
    cores = min(CEILING_CORES, f.nodes)
    lines = [
        f"validators:           {f.nodes} on this machine ({cores}-core ceiling)",
        f"set-up, pre-signing:  {f.setup_s:.1f} s, {f.presign_s:.1f} s (before the load)",
    ]
    if (s := f.saturated) is not None:
        lines += [
            f"saturated load:       {s.duration_s:.1f} s, {s.submitted} submitted, "
            f"{s.committed} committed in {s.heights} blocks",
            f"committed:            {s.tx_per_s:,.1f} tx/s",
            f"submit-to-commit:     p50 {s.p50_ms:,.0f} ms, p99 {s.p99_ms:,.0f} ms",
        ]
    if (r := f.at_rate) is not None:
        lines += [
            f"open loop:            asked {r.asked_tx_per_s:,.1f} tx/s, sent "
            f"{r.sent_tx_per_s:,.1f}, committed {r.committed_tx_per_s:,.1f} tx/s, "
            f"{r.failed} failed",
            f"from scheduled send:  p50 {r.p50_ms:,.0f} ms, p90 {r.p90_ms:,.0f} ms, "
            f"p99 {r.p99_ms:,.0f} ms (sender lag at most {r.lag_max_ms:,.0f} ms)",
        ]
    lines += [
        f"PyNaCl verify:        {f.verify_per_s:,.0f} verifications/s on one core",
        f"ceiling:              {f.ceiling_tx_per_s:,.0f} tx/s "
        f"({cores} x verify / {f.nodes} nodes)",
    ]
    if f.ratio is not None:
        lines.append(f"ratio:                {f.ratio:.3f}")
    for line in lines:
        click.echo(line)


def figures_json(f: ClusterFigures, rate: str | None) -> dict[str, object]:
    """The bench's last line: the saturated figures, and ``rate`` for the open loop."""
    out: dict[str, object] = {
        "bench": "cluster",
        "nodes": f.nodes,
        "verify_per_s": round(f.verify_per_s, 1),
        "ceiling_tx_per_s": round(f.ceiling_tx_per_s, 1),
        "rate_mode": "none" if rate is None else "auto" if rate == AUTO else "fixed",
    }
    if f.saturated is not None and f.ratio is not None:
        s = f.saturated
        out.update(
            duration_s=round(s.duration_s, 2),
            committed=s.committed,
            tx_per_s=round(s.tx_per_s, 1),
            p50_ms=round(s.p50_ms, 1),
            p99_ms=round(s.p99_ms, 1),
            ratio=round(f.ratio, 4),
        )
    if f.at_rate is not None:
        out["rate"] = f.at_rate.as_json()
    return out


if __name__ == "__main__":
    generator()
