"""A seeded, in-process network of consensus drivers on a discrete-event clock.

Everything random draws from one ``random.Random(seed)``, keys derive from
the seed, and events run in (simulated time, sequence) order: a failing run
replays exactly from its seed. No sleeps, no threads, no event loop (the
drivers are drained synchronously after each event).

Pieces: ``Scheduler`` (the fake clock), ``Network`` (per-message delay, drop,
duplicate — hence reorder — and timed partitions, with a global
stabilisation time), ``CounterApp`` (a trivial application whose state root
chains the digests of every transaction so far), ``SimNode`` (one validator:
app, signer record, driver; can crash and restart), and the checks every
scenario ends with (agreement, validity, certificates).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from node.consensus.app_interface import LastBlock, PreparedBlock
from node.consensus.driver import Driver, DriverConfig, Transport
from node.consensus.messages import Message, VoteMessage, decode_message
from node.consensus.signer import FileRecordStore, GuardedSigner, RecordStore, SignRecord
from node.consensus.tendermint import ConsensusConfig
from node.consensus.types import (
    Block,
    Certificate,
    CertifiedBlock,
    Validator,
    ValidatorSet,
    Vote,
    verify_certificate,
    verify_certified_block,
)
from node.protocol import crypto
from node.protocol.crypto import digest

CHAIN_ID = "relance-sim"
START_MS = 1_700_000_000_000
GENESIS_TIME_MS = START_MS - 1_000
GENESIS_ROOT = digest(b"counter-genesis")
GENESIS_HASH = digest(b"genesis:" + CHAIN_ID.encode())
EVENTS_MAX = 2_000_000

SIM_CONFIG = DriverConfig(
    consensus=ConsensusConfig(
        propose_ms=300,
        propose_delta_ms=100,
        prevote_ms=150,
        prevote_delta_ms=50,
        precommit_ms=150,
        precommit_delta_ms=50,
        time_drift_max_ms=500,
    ),
    commit_ms=20,
    gossip_interval_ms=400,
)


# --- the clock -------------------------------------------------------------------


class Scheduler:
    """A discrete-event clock: callbacks run in (time, insertion) order."""

    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._events = 0

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (self.now_ms + delay_ms, next(self._sequence), callback))

    def step(self) -> bool:
        """Run the next event; False when there is none."""
        if not self._heap:
            return False
        at_ms, _, callback = heapq.heappop(self._heap)
        self.now_ms = at_ms
        self._events += 1
        if self._events > EVENTS_MAX:
            raise RuntimeError("runaway simulation")
        callback()
        return True

    def run_until(self, end_ms: int, done: Callable[[], bool] = lambda: False) -> bool:
        """Run events up to ``end_ms`` or until ``done()``; return ``done()``."""
        while self._heap and self._heap[0][0] <= end_ms:
            self.step()
            if done():
                return True
        self.now_ms = max(self.now_ms, end_ms)
        return done()


# --- the application -------------------------------------------------------------


def execute(root: bytes, txs: Iterable[bytes]) -> bytes:
    """The counter app's state transition: the root chains every transaction."""
    for tx in txs:
        root = digest(root + tx)
    return root


def is_bad(tx: bytes) -> bool:
    return tx.startswith(b"bad")


TxMaker = Callable[[int], tuple[bytes, ...]]


class CounterApp:
    """The test application. A transaction starting with ``bad`` never applies."""

    def __init__(
        self, validator_set: ValidatorSet, tx_maker: TxMaker, now_ms: Callable[[], int]
    ) -> None:
        self.validator_set_ = validator_set
        self.tx_maker = tx_maker
        self.now_ms = now_ms
        self.chain: list[CertifiedBlock] = []
        self.finalized_at_ms: list[int] = []
        self.root: bytes = GENESIS_ROOT
        self.violations: list[str] = []

    @property
    def height(self) -> int:
        return len(self.chain)

    def check_tx(self, tx: bytes) -> bool:
        return not is_bad(tx)

    def prepare_proposal(
        self, height: int, time_ms: int, previous_block_hash: bytes
    ) -> PreparedBlock:
        txs = self.tx_maker(height)
        return PreparedBlock(txs, execute(self.root, txs), self.validator_set_.hash())

    def process_proposal(self, block: Block) -> bool:
        header = block.header
        return (
            header.height == self.height + 1
            and not any(is_bad(tx) for tx in block.txs)
            and header.state_root == execute(self.root, block.txs)
            and header.next_validators_hash == self.validator_set_.hash()
        )

    def finalize_block(self, block: Block, certificate: Certificate) -> None:
        if not self.process_proposal(block):
            self.violations.append(f"finalised an invalid block at height {block.header.height}")
        self.chain.append(CertifiedBlock(block, certificate))
        self.finalized_at_ms.append(self.now_ms())
        self.root = block.header.state_root

    def last_block(self) -> LastBlock:
        if not self.chain:
            return LastBlock(0, GENESIS_HASH, GENESIS_TIME_MS)
        header = self.chain[-1].block.header
        return LastBlock(header.height, header.hash(), header.time_ms)

    def validator_set(self, height: int) -> ValidatorSet:
        return self.validator_set_

    def certified_block(self, height: int) -> CertifiedBlock | None:
        return self.chain[height - 1] if 1 <= height <= len(self.chain) else None


def honest_txs(name: str) -> TxMaker:
    return lambda height: (f"tx:{name}:{height}".encode(), f"n:{height}".encode())


def bad_txs(name: str) -> TxMaker:
    return lambda height: (f"bad:{name}:{height}".encode(),)


class MemoryRecordStore:
    """The signer record without a disk (the simulation's 'disk' survives crashes)."""

    def __init__(self) -> None:
        self.record: SignRecord | None = None

    def load(self) -> SignRecord | None:
        return self.record

    def save(self, record: SignRecord) -> None:
        self.record = record


# --- the network -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    drop: float = 0.0
    duplicate: float = 0.0
    delay_min_ms: int = 1
    delay_max_ms: int = 30


@dataclass(frozen=True, slots=True)
class Partition:
    start_ms: int
    end_ms: int
    groups: tuple[frozenset[int], ...]

    def separates(self, a: int, b: int, now_ms: int) -> bool:
        if not self.start_ms <= now_ms < self.end_ms:
            return False
        return not any(a in group and b in group for group in self.groups)


@dataclass(frozen=True, slots=True)
class Sent:
    at_ms: int
    sender: int
    message: Message


class Network:
    def __init__(
        self,
        scheduler: Scheduler,
        rng: random.Random,
        before_gst: LinkPolicy,
        after_gst: LinkPolicy,
        gst_ms: int,
    ) -> None:
        self.scheduler = scheduler
        self.rng = rng
        self.before_gst = before_gst
        self.after_gst = after_gst
        self.gst_ms = gst_ms
        self.nodes: list[SimNode] = []
        self.partitions: list[Partition] = []
        self.log: list[Sent] = []

    def broadcast(self, sender: int, data: bytes) -> None:
        self.log.append(Sent(self.scheduler.now_ms, sender, decode_message(data)))
        for receiver in range(len(self.nodes)):
            if receiver != sender:
                self.send(sender, receiver, data)

    def send(self, sender: int, receiver: int, data: bytes) -> None:
        policy = self.before_gst if self.scheduler.now_ms < self.gst_ms else self.after_gst
        if self.rng.random() < policy.drop:
            return
        copies = 2 if self.rng.random() < policy.duplicate else 1
        for _ in range(copies):
            delay_ms = self.rng.randint(policy.delay_min_ms, policy.delay_max_ms)
            self.scheduler.call_later(delay_ms, partial(self._deliver, sender, receiver, data))

    def _deliver(self, sender: int, receiver: int, data: bytes) -> None:
        now_ms = self.scheduler.now_ms
        if any(p.separates(sender, receiver, now_ms) for p in self.partitions):
            return
        self.nodes[receiver].receive(data)


class SimTransport:
    def __init__(self, network: Network, index: int) -> None:
        self.network = network
        self.index = index

    def broadcast(self, data: bytes) -> None:
        self.network.broadcast(self.index, data)


# --- nodes -----------------------------------------------------------------------


class MemoryLockedBlockStore:
    """The block last precommitted, surviving a simulated crash (like a file would)."""

    def __init__(self) -> None:
        self.block: Block | None = None

    def save(self, block: Block) -> None:
        self.block = block

    def load(self) -> Block | None:
        return self.block


class SimNode:
    """One validator: its app, signer record and locked block survive a crash; its
    driver does not."""

    def __init__(
        self,
        sim: Simulation,
        index: int,
        key: crypto.Signer,
        tx_maker: TxMaker,
        transport: Transport,
        records: RecordStore,
        *,
        alive: bool,
        inline: bool,
        work_waiting: bool = False,
    ) -> None:
        self.sim = sim
        self.index = index
        self.key = key
        self.transport = transport
        self.app = CounterApp(sim.validator_set, tx_maker, lambda: sim.scheduler.now_ms)
        self.records = records
        self.locked_blocks = MemoryLockedBlockStore()
        self.inline = inline
        self.work_waiting = work_waiting
        self.alive = alive
        self.epoch = 0
        self.driver = self._build()

    # the node's Clock
    def now_ms(self) -> int:
        return self.sim.scheduler.now_ms

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> None:
        self.sim.scheduler.call_later(delay_ms, partial(self._fire, self.epoch, callback))

    def _fire(self, epoch: int, callback: Callable[[], None]) -> None:
        if self.alive and epoch == self.epoch:
            callback()
            if self.inline:
                self.driver.drain()

    def receive(self, data: bytes) -> None:
        if self.alive:
            self.driver.submit(data)
            if self.inline:
                self.driver.drain()

    def crash(self) -> None:
        self.alive = False
        self.epoch += 1

    def restart(self) -> None:
        """A new process on the same data: the app and signer record as they were."""
        self.alive = True
        self.epoch += 1
        self.driver = self._build()
        self.boot()

    def _build(self) -> Driver:
        return Driver(
            chain_id=CHAIN_ID,
            config=SIM_CONFIG,
            signer=GuardedSigner(self.key, CHAIN_ID, self.records),
            app=self.app,
            transport=self.transport,
            clock=self,
            locked_blocks=self.locked_blocks,
            work_waiting=(lambda: True) if self.work_waiting else None,
        )

    def boot(self) -> None:
        self.driver.start()
        self.driver.drain()


TransportFactory = Callable[["Simulation", int], Transport]


@dataclass
class Setup:
    seed: int
    n: int = 4
    before_gst: LinkPolicy = field(default_factory=LinkPolicy)
    after_gst: LinkPolicy = field(default_factory=LinkPolicy)
    gst_ms: int = START_MS
    tx_makers: dict[int, TxMaker] = field(default_factory=dict)
    transports: dict[int, TransportFactory] = field(default_factory=dict)
    partitions: list[Partition] = field(default_factory=list)
    crashed_at_start: frozenset[int] = frozenset()
    crashes: list[Crash] = field(default_factory=list)
    record_dir: Path | None = None  # signer records in real files (else in memory)
    inline: bool = True  # drain drivers after each event (False: their own asyncio tasks)
    work_waiting: bool = False  # nodes say transactions always wait: no pause after a decision


@dataclass(frozen=True, slots=True)
class Crash:
    node: int
    at_ms: int
    back_ms: int


class Simulation:
    def __init__(self, setup: Setup) -> None:
        self.seed = setup.seed
        self.rng = random.Random(setup.seed)
        self.keys = [
            crypto.Signer(digest(f"sim-key:{setup.seed}:{i}".encode())) for i in range(setup.n)
        ]
        self.validator_set = ValidatorSet(
            tuple(Validator(k.public_key, 1, f"v{i}") for i, k in enumerate(self.keys))
        )
        self.scheduler = Scheduler(START_MS)
        self.network = Network(
            self.scheduler, self.rng, setup.before_gst, setup.after_gst, setup.gst_ms
        )
        self.network.partitions.extend(setup.partitions)
        self.nodes: list[SimNode] = []
        for i, key in enumerate(self.keys):
            factory = setup.transports.get(i, _plain_transport)
            tx_maker = setup.tx_makers.get(i, honest_txs(f"v{i}"))
            node = SimNode(
                self,
                i,
                key,
                tx_maker,
                factory(self, i),
                _records(setup.record_dir, i),
                alive=i not in setup.crashed_at_start,
                inline=setup.inline,
                work_waiting=setup.work_waiting,
            )
            self.nodes.append(node)
            self.network.nodes.append(node)
        for node in self.nodes:
            if node.alive:
                node.boot()
        for crash in setup.crashes:
            victim = self.nodes[crash.node]
            self.scheduler.call_later(crash.at_ms - START_MS, victim.crash)
            self.scheduler.call_later(crash.back_ms - START_MS, victim.restart)

    def heights(self, nodes: Iterable[int]) -> list[int]:
        return [self.nodes[i].app.height for i in nodes]

    def run_until_height(self, height: int, nodes: Iterable[int], deadline_ms: int) -> bool:
        chosen = list(nodes)
        return self.scheduler.run_until(deadline_ms, lambda: min(self.heights(chosen)) >= height)

    def votes_sent(self) -> list[tuple[int, Vote]]:
        return [
            (sent.sender, sent.message.vote)
            for sent in self.network.log
            if isinstance(sent.message, VoteMessage)
        ]


def _records(directory: Path | None, index: int) -> RecordStore:
    if directory is None:
        return MemoryRecordStore()
    return FileRecordStore(directory / f"node{index}.sign")


def _plain_transport(sim: Simulation, index: int) -> Transport:
    return SimTransport(sim.network, index)


# --- checks ----------------------------------------------------------------------


def check_safety(sim: Simulation, honest: Sequence[int]) -> None:
    """Agreement, validity, linked chains, certificates that verify; the seed in every message."""
    seed = sim.seed
    decided: dict[int, set[bytes]] = {}
    for i in honest:
        app = sim.nodes[i].app
        assert not app.violations, f"seed={seed}: node {i}: {app.violations}"
        replay = CounterApp(sim.validator_set, honest_txs("replay"), lambda: 0)
        for certified in app.chain:
            block = certified.block
            decided.setdefault(block.header.height, set()).add(block.hash())
            assert replay.process_proposal(block), f"seed={seed}: node {i} decided invalid {block}"
            previous = replay.last_block()
            assert block.header.previous_block_hash == previous.block_hash, f"seed={seed}"
            assert block.header.time_ms > previous.time_ms, f"seed={seed}: block time"
            assert verify_certificate(certified.certificate, CHAIN_ID, sim.validator_set), (
                f"seed={seed}: node {i} height {block.header.height}: bad certificate"
            )
            assert verify_certified_block(certified, CHAIN_ID, sim.validator_set), f"seed={seed}"
            replay.finalize_block(block, certified.certificate)
    forks = {h: hashes for h, hashes in decided.items() if len(hashes) > 1}
    assert not forks, f"seed={seed}: disagreement at heights {sorted(forks)}"
