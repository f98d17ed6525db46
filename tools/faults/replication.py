"""Issue 3's replication scenarios on real node processes, on the fault harness.

Each runs on a fresh 4-validator cluster (``cluster``) with the client
workload (``workload``) going, is bounded in time, and ends with the same
final checks as the fault scenarios (``scenarios._final_checks``): agreement
of block hash and state root at every height on every node, chain integrity,
conservation, every acknowledged transaction in the chain exactly once, no
double signing, a clean exit, a full audit of each data directory.

- ``mixed-workload`` (must-show 1): fund, allocate, pay, transfer, redeem and
  settle, each sender's transactions submitted to different nodes;
- ``all-killed`` (3): every validator SIGKILLed at once during load, restarted;
- ``stop-one-then-two`` (4): three go on; with two stopped nothing commits;
  restarted, all converge;
- ``late-observer`` (5): an observer started once the chain is at some height
  syncs from height 0 and serves the validators' state root.

Must-show 2 (one validator killed and restarted again and again) is the
``repeated-kills`` scenario of ``tools.faults.scenarios``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Final

import aiohttp

from node.client.http_json import NodeStatus, Unreachable, node_status
from node.devnet.network import HOST, init_home
from node.ledger import tx as t
from node.protocol.crypto import Digest, PublicKey, Signer, digest
from node.run import config
from tools.faults import checkers as ck
from tools.faults.cluster import Cluster, ClusterError, ClusterSpec, free_base_port
from tools.faults.procs import NodeProcesses
from tools.faults.scenarios import (
    IN_FLIGHT_S,
    PROGRESS_BOUND_S,
    SETUP_BOUND_S,
    Report,
    Run,
    _final_checks,
)
from tools.faults.workload import Call, Outcome, Workload, WorkloadSpec

HOLD_S: Final = 6.0  # how long two stopped validators must show no commit
MIXED_HOLDERS: Final = 12
MIXED_POT_CENTS: Final = 4_000
LATE_HEIGHT: Final = 8  # the observer starts once every validator is past this
HTTP_TIMEOUT_S: Final = 2.0


# --- a late, non-voting observer -----------------------------------------------------------


@dataclass
class Observer:
    home: Path
    api_url: str
    procs: NodeProcesses

    def status(self) -> NodeStatus | None:
        if not self.procs.is_running(0):
            return None
        try:
            return node_status(self.api_url, HTTP_TIMEOUT_S)
        except Unreachable:
            return None


def add_observer(cluster: Cluster) -> Observer:
    """An observer home dialling every validator directly; validators accept its key.

    The validators' configs are rewritten, so call this before ``cluster.start``.
    """
    taken = {p for n in cluster.nodes for p in (n.p2p_port, n.api_port)}
    seed = cluster.spec.seed
    base = free_base_port(2, seed)
    while base in taken or base + 1 in taken:
        seed += 1
        base = free_base_port(2, seed)
    key = Signer.generate()
    peers = tuple(
        config.PeerAddress(PublicKey(cluster.node_keys[i]), HOST, node.p2p_port)
        for i, node in enumerate(cluster.nodes)
    )
    settings = config.NodeConfig(
        moniker="Observateur tardif",
        validator=False,
        p2p_host=HOST,
        p2p_port=base,
        api_host=HOST,
        api_port=base + 1,
        peers=peers,
        timeouts=config.Timeouts(propose_ms=1_000, commit_ms=300),
    )
    home = cluster.root / "observer"
    init_home(home, settings, cluster.genesis, key)
    for node in cluster.nodes:
        path = node.home / config.CONFIG_FILE
        current = config.parse(path.read_text(encoding="utf-8"))
        accepted = replace(current, accept_from=(*current.accept_from, key.public_key))
        path.write_text(config.render(accepted), encoding="utf-8")
    return Observer(home, f"http://{HOST}:{base + 1}", NodeProcesses([home], [{}]))


class ReplicationRun(Run):
    """A ``Run`` that may also hold a late observer."""

    def __init__(
        self,
        cluster: Cluster,
        workload: Workload,
        report: Report,
        seed: int,
        duration_s: float,
        observer: Observer | None,
    ) -> None:
        super().__init__(cluster, workload, report, seed, duration_s)
        self.observer = observer


# --- 1. a mixed workload --------------------------------------------------------------------


@dataclass
class MixedLoad:
    """Lanes, one per sender kind, each sender's calls spread over the nodes.

    bank: one more Fund, then Settle batches of the payouts seen so far;
    issuer: an Allocate of that funding to fresh holders;
    holders: payments to both merchants (the second redeems automatically);
    merchant 0: Transfer to merchant 1 and Redeem, in turn.
    Every call goes into the workload's history, so the final checks cover it.
    """

    workload: Workload
    keys: dict[str, Signer]
    seed: int
    deadline: float = 0.0
    funded: asyncio.Event = field(default_factory=asyncio.Event)
    allocated: asyncio.Event = field(default_factory=asyncio.Event)
    payouts: list[Digest] = field(default_factory=list)
    committed: dict[str, int] = field(default_factory=dict)

    @property
    def campaign(self) -> str:
        return f"faults-{self.seed}"[:32]

    def holders(self) -> list[Signer]:
        return [
            Signer(digest(f"mixed:{self.seed}:holder:{i}".encode())) for i in range(MIXED_HOLDERS)
        ]

    def merchants(self) -> list[Signer]:  # the workload's two (same derivation)
        return [Signer(digest(f"faults:{self.seed}:shop:{i}".encode())) for i in range(2)]

    async def run(self, duration_s: float) -> dict[str, int]:
        self.deadline = time.monotonic() + duration_s
        timeout = aiohttp.ClientTimeout(total=self.workload.spec.call_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(
                self._bank(session),
                self._issuer(session),
                self._holders(session),
                self._merchant(session),
            )
        return self.committed

    def _over(self) -> bool:
        return time.monotonic() > self.deadline

    async def _send(
        self, session: aiohttp.ClientSession, lane: int, who: Signer, seq: int, p: t.Payload
    ) -> Call:
        w = self.workload
        signed = t.Tx(w.genesis.chain_id, who.public_key, seq, p).sign(who)
        call = w._record(100 + lane, p.KIND.name.lower(), signed)
        await w._submit(session, call, random.Random(f"{self.seed}:{lane}:{seq}"))
        if call.outcome is Outcome.OK:
            self.committed[call.kind] = self.committed.get(call.kind, 0) + 1
        return call

    async def _bank(self, session: aiohttp.ClientSession) -> None:
        bank = self.keys["bank"]
        fund = t.Fund(self.campaign, MIXED_HOLDERS * MIXED_POT_CENTS, f"DEP-MIX-{self.seed}")
        call = await self._send(session, 0, bank, 1, fund)  # sequence 0 funded the set-up
        if call.outcome is not Outcome.OK:
            return
        self.funded.set()
        sequence = 2
        while not self._over():
            await asyncio.sleep(1.5)
            batch, self.payouts = self.payouts[:20], self.payouts[20:]
            if not batch:
                continue
            settle = t.Settle(tuple(t.Settlement(p, f"SEPA-{p.hex()[:16]}") for p in batch))
            call = await self._send(session, 0, bank, sequence, settle)
            if call.outcome is Outcome.OK:
                sequence += 1
            elif call.outcome is Outcome.FAILED:
                continue  # refused before admission: the sequence is still free
            else:
                return  # the next sequence is unknown

    async def _issuer(self, session: aiohttp.ClientSession) -> None:
        await asyncio.wait_for(self.funded.wait(), self.deadline - time.monotonic() + 30)
        zone = self.workload.genesis.issuers[0].zones[0]
        allocations = tuple(
            t.Allocation(h.public_key, MIXED_POT_CENTS, zone) for h in self.holders()
        )
        issuer = self.keys["issuer0"]
        call = await self._send(session, 1, issuer, 4, t.Allocate(self.campaign, allocations))
        if call.outcome is Outcome.OK:
            self.allocated.set()

    async def _holders(self, session: aiohttp.ClientSession) -> None:
        try:
            await asyncio.wait_for(self.allocated.wait(), self.deadline - time.monotonic() + 30)
        except TimeoutError:
            return
        shops = self.merchants()
        for holder in self.holders():
            for sequence in range(MIXED_POT_CENTS // 300):
                if self._over():
                    return
                shop = shops[sequence % 2]
                pay = t.Pay(self.campaign, shop.public_key, 300, "mixte")
                call = await self._send(session, 2, holder, sequence, pay)
                if call.outcome is not Outcome.OK:
                    break
                if sequence % 2 == 1:  # the second merchant redeems automatically
                    self.payouts.append(Digest(call.tx_id))

    async def _merchant(self, session: aiohttp.ClientSession) -> None:
        shop, other = self.merchants()
        issuer_key = self.workload.genesis.issuers[0].public_key
        sequence = 0
        while not self._over():
            await asyncio.sleep(0.5)
            payload: t.Payload = (
                t.Transfer(other.public_key, issuer_key, 100, "stock")
                if sequence % 2 == 0
                else t.Redeem(issuer_key, 100)
            )
            call = await self._send(session, 3, shop, sequence, payload)
            if call.outcome is Outcome.OK:
                sequence += 1
                if isinstance(payload, t.Redeem):
                    self.payouts.append(Digest(call.tx_id))
            elif call.outcome is not Outcome.FAILED:
                return  # the next sequence is unknown


def mixed_workload(run: ReplicationRun) -> None:
    """4 validators, fund/allocate/pay/transfer/redeem/settle sent to different nodes."""
    c = run.cluster
    run.warm_up()
    load = MixedLoad(run.workload, c.keys, c.spec.seed)
    committed = c.loop.call(load.run(run.duration_s), run.duration_s + 60)
    run.figure("mixed_committed_by_kind", committed)
    kinds = {"fund", "allocate", "pay", "transfer", "redeem", "settle"}
    run.check(
        "every-kind-committed",
        kinds <= set(committed),
        f"committed during the mixed run: {committed}",
    )
    nodes_used = {a.node for call in run.workload.history.calls for a in call.attempts}
    run.check("submitted-to-every-node", nodes_used == set(range(c.size)), f"nodes {nodes_used}")
    run.progress(list(range(c.size)), 2, "progress-after-mixed")


# --- 3. every validator killed at once ----------------------------------------------------


def all_killed(run: ReplicationRun) -> None:
    """Every validator SIGKILLed at once during load, then restarted: no acknowledged loss."""
    c = run.cluster
    run.warm_up()
    time.sleep(run.rng.uniform(1.0, 3.0))  # into the load, at some point of some height
    before = c.read_heights()
    for i in range(c.size):
        c.procs.kill(i)
    run.figure("heights_at_kill", before)
    time.sleep(run.rng.uniform(0.5, 2.0))
    for i in range(c.size):
        c.procs.restart(i)
    for i in range(c.size):
        c.wait_for(partial(c.status, i), PROGRESS_BOUND_S, f"node {i} back")
    after = c.read_heights()
    run.check(
        "nothing-committed-undone",
        all(after[i] >= before[i] for i in range(c.size)),
        f"heights at the kill {before}, after restart {after}",
    )
    run.progress(list(range(c.size)), 3, "progress-after-all-restarted")


# --- 4. one stopped, then two ----------------------------------------------------------------


def stop_one_then_two(run: ReplicationRun) -> None:
    """One validator stopped: three go on; two stopped: nothing commits; restarted: converge."""
    c = run.cluster
    run.warm_up()
    first, second = run.rng.sample(range(c.size), 2)
    run.figure("stopped", [first, second])
    c.procs.terminate(first)
    three = [i for i in range(c.size) if i != first]
    run.progress(three, 3, "three-go-on")
    c.procs.terminate(second)
    two = [i for i in three if i != second]
    time.sleep(IN_FLIGHT_S)  # a block whose last precommit was already delivered may land
    during = c.read_heights(two)
    time.sleep(HOLD_S)  # rounds time out without a quorum
    after = c.read_heights(two)
    run.check(
        "two-stopped-nothing-commits",
        during == after,
        f"heights {during} held for {HOLD_S:.0f} s" if during == after else f"{during} -> {after}",
    )
    c.procs.restart(first)
    c.procs.restart(second)
    run.progress(list(range(c.size)), 3, "all-converge-after-restart")


# --- 5. an observer started late --------------------------------------------------------------


def late_observer(run: ReplicationRun) -> None:
    """An observer started at height > 8 syncs from 0 and serves the validators' state root."""
    c, observer = run.cluster, run.observer
    if observer is None:
        raise ClusterError("late-observer needs an observer")
    run.warm_up(LATE_HEIGHT)
    started_at = c.top()
    observer.procs.start(0)
    run.figure("observer_started_at_height", started_at)
    began = time.monotonic()

    def synced() -> int | None:
        status = observer.status()
        return status.height if status and status.height >= started_at else None

    c.wait_for(synced, PROGRESS_BOUND_S, f"the observer at height {started_at}")
    run.figure("observer_sync_s", round(time.monotonic() - began, 2))
    # Stop the load so the chain goes quiet, then compare roots at one height.
    run.stop_workload()
    matched = c.wait_for(lambda: _same_root(run, observer), PROGRESS_BOUND_S, "one state root")
    run.check("observer-serves-same-state-root", True, matched)
    observer.procs.stop_all()

    def observer_agrees(chains: list[ck.NodeChain], _: ck.Signed) -> list[ck.Finding]:
        mine = ck.read_chain(c.size, observer.home, c.genesis)
        return [
            ck.check_chain_integrity(mine, c.genesis),
            replace(ck.check_agreement([*chains, mine]), check="agreement-with-observer"),
            replace(ck.check_conservation(mine), check="conservation[observer]"),
        ]

    run.final_checks.append(observer_agrees)


def _same_root(run: ReplicationRun, observer: Observer) -> str | None:
    """``/v1/status`` of the observer and every validator at one height, one root; or None."""
    c = run.cluster
    statuses = [observer.status(), *(c.status(i) for i in range(c.size))]
    if any(s is None for s in statuses):
        return None
    seen = {(s.height, s.state_root) for s in statuses if s is not None}
    if len(seen) != 1:
        return None
    height, root = seen.pop()
    return f"observer and {c.size} validators at height {height}, state root {str(root)[:16]}"


# --- the runner ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replication:
    name: str
    body: Callable[[ReplicationRun], None]
    duration_s: float = 0.0
    observer: bool = False


REPLICATION: Final = {
    s.name: s
    for s in (
        Replication("mixed-workload", mixed_workload, duration_s=15.0),
        Replication("all-killed", all_killed),
        Replication("stop-one-then-two", stop_one_then_two),
        Replication("late-observer", late_observer, observer=True),
    )
}
REPEATED_KILLS: Final = "repeated-kills"  # must-show 2, in tools.faults.scenarios


def run_replication(
    name: str, workdir: Path, seed: int = 1, duration_s: float | None = None
) -> Report:
    """Run one replication scenario in ``workdir/name``; its report (as ``run_scenario``)."""
    scenario = REPLICATION[name]
    report = Report(name, seed)
    started = time.monotonic()
    cluster = Cluster.create(workdir / name, ClusterSpec(seed=seed))
    observer = add_observer(cluster) if scenario.observer else None
    workload = Workload(
        [cluster.url(i) for i in range(cluster.size)],
        cluster.genesis,
        cluster.keys,
        seed,
        WorkloadSpec(),
    )
    run = ReplicationRun(
        cluster, workload, report, seed, duration_s or scenario.duration_s, observer
    )
    try:
        try:
            cluster.start()
            cluster.loop.call(workload.setup(), SETUP_BOUND_S)
            run.start_workload()
            scenario.body(run)
        except Exception as exc:  # the report says what went wrong; the checks still run
            report.error = f"{type(exc).__name__}: {exc}"
            report.figures["traceback"] = traceback.format_exc(limit=6)
        finally:
            run.stop_workload()
            if observer is not None:
                observer.procs.stop_all()
            codes = cluster.stop_nodes()
        report.findings.append(
            ck.Finding(
                "clean-exit",
                all(code == 0 for code in codes.values()),
                f"exit codes after SIGTERM: {codes}",
            )
        )
        _final_checks(run)
    finally:
        if observer is not None:
            observer.procs.stop_all()
        cluster.close()
        report.seconds = time.monotonic() - started
        (workdir / name / "report.json").write_text(
            json.dumps(report.to_json(), indent=2), encoding="utf-8"
        )
    return report
