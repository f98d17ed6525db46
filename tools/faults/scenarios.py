"""The fault scenarios of issue 4, each bounded in time and stopping by itself.

A scenario runs on a fresh 4-validator cluster (``cluster``) with the client
workload (``workload``) going, injects its faults, asserts what must hold
while they last (``Run.check``), then every node is stopped and the final
checks run over the stores, journals, workload history and logs
(``checkers``), and each node's data directory is audited from the genesis
file alone (``tools.audit.chain``). ``run_scenario`` returns a ``Report``:
figures, findings, duration; ``python -m tools.faults run NAME`` prints it.

Waiting is on conditions over the live processes (heights over HTTP), each
with a bound; the only fixed waits are the fault windows themselves (how
long a node stays paused, a split lasts, links misbehave).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final

from tools.faults import checkers as ck
from tools.faults.cluster import Cluster, ClusterError, ClusterSpec
from tools.faults.proxy import CALM, Fault
from tools.faults.workload import Workload, WorkloadSpec

PROGRESS_BOUND_S: Final = 30.0  # once a quorum is connected and calm, 3 heights within this
WORKLOAD_MAX_S: Final = 150.0  # the workload stops by itself after this, whatever happens
WORKLOAD_GRACE_S: Final = 25.0  # for the calls in flight when it is asked to stop
SETUP_BOUND_S: Final = 70.0
IN_FLIGHT_S: Final = 2.0  # after a cut, for messages already delivered to be handled
ISOLATION_S: Final = 9.0  # longer than a client's call timeout: calls to it end unknown
SPLIT_S: Final = 8.0


@dataclass
class Report:
    scenario: str
    seed: int
    seconds: float = 0.0
    figures: dict[str, object] = field(default_factory=dict)
    findings: list[ck.Finding] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.findings) and all(f.ok for f in self.findings)

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"{self.scenario} (seed {self.seed}): {verdict} in {self.seconds:.1f} s"]
        lines += [f"  {'ok  ' if f.ok else 'FAIL'} {f.check}: {f.detail}" for f in self.findings]
        lines += [f"  figure {k} = {v}" for k, v in self.figures.items()]
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "passed": self.passed,
            "seconds": round(self.seconds, 2),
            "figures": self.figures,
            "findings": [{"check": f.check, "ok": f.ok, "detail": f.detail} for f in self.findings],
            "error": self.error,
        }


FinalCheck = Callable[[list[ck.NodeChain], ck.Signed], list[ck.Finding]]


class Run:
    """What a scenario body works with: the cluster, the workload, the report."""

    def __init__(
        self, cluster: Cluster, workload: Workload, report: Report, seed: int, duration_s: float
    ) -> None:
        self.duration_s = duration_s
        self.cluster = cluster
        self.workload = workload
        self.report = report
        self.rng = random.Random(f"scenario:{seed}")
        self.final_checks: list[FinalCheck] = []
        self._workload_future: concurrent.futures.Future[None] | None = None

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.report.findings.append(ck.Finding(name, ok, detail))

    def figure(self, name: str, value: object) -> None:
        self.report.figures[name] = value

    def start_workload(self) -> None:
        limit_s = WORKLOAD_MAX_S + self.duration_s
        self._workload_future = self.cluster.loop.spawn(self.workload.run(limit_s))

    def stop_workload(self) -> None:
        future = self._workload_future
        if future is None:
            return
        self.workload.stop(self.cluster.loop.loop)
        try:
            future.result(WORKLOAD_GRACE_S)
        except concurrent.futures.TimeoutError:
            future.cancel()  # calls still in flight stay "invoked": counted as unknown
        self._workload_future = None

    def progress(self, indices: list[int], advance: int, name: str) -> float:
        """Bounded progress: every node of ``indices`` ``advance`` heights past their top."""
        return self.progress_to(indices, self.cluster.top(indices) + advance, name)

    def progress_to(self, indices: list[int], target: int, name: str) -> float:
        """Bounded progress: every node of ``indices`` at ``target`` within the bound."""
        try:
            seconds = self.cluster.wait_heights(indices, target, PROGRESS_BOUND_S)
        except ClusterError as exc:
            self.check(name, False, str(exc))
            return PROGRESS_BOUND_S
        self.check(name, True, f"nodes {indices} reached height {target} in {seconds:.1f} s")
        self.figure(f"{name}_s", round(seconds, 2))
        return seconds

    def warm_up(self, height: int = 3) -> None:
        self.cluster.wait_heights(list(range(self.cluster.size)), height, PROGRESS_BOUND_S)


# --- the scenarios ----------------------------------------------------------------------------


def paused_proposer(run: Run) -> None:
    """The proposer of a coming height is SIGSTOPped past its timeout, then SIGCONTed."""
    c = run.cluster
    run.warm_up()
    victim = run.rng.randrange(c.size)
    others = [i for i in range(c.size) if i != victim]
    c.procs.pause(victim)
    paused_at = time.monotonic()
    # Heights from top + 2 on start after the pause: the first the victim proposes at round 0.
    height = next(h for h in itertools.count(c.top(others) + 2) if c.proposer(h) == victim)
    run.figure("paused_node", victim)
    run.figure("paused_height", height)
    run.progress_to(others, height + 1, "progress-without-paused-proposer")
    time.sleep(max(0.0, 4.0 - (time.monotonic() - paused_at)))  # paused >= 4 timeouts
    run.figure("paused_s", round(time.monotonic() - paused_at, 2))
    c.procs.resume(victim)
    catch_up = c.wait_heights([victim], c.top(others), PROGRESS_BOUND_S)
    run.check("resumed-catches-up", True, f"node {victim} caught up in {catch_up:.1f} s")
    run.figure("catch_up_s", round(catch_up, 2))
    run.progress(list(range(c.size)), 3, "progress-after-resume")

    victim_key = c.node_keys[victim]

    def round_change(chains: list[ck.NodeChain], _: ck.Signed) -> list[ck.Finding]:
        row = chains[0].blocks[height - 1]
        changed = row.certificate.round >= 1 and row.header.proposer != victim_key
        later = sum(1 for b in chains[0].blocks if b.certificate.round > 0)
        run.figure("heights_decided_after_round_0", later)
        return [
            ck.Finding(
                "round-change",
                changed,
                f"height {height} decided in round {row.certificate.round} "
                f"by node {c.node_keys.index(row.header.proposer)}",
            )
        ]

    run.final_checks.append(round_change)


def isolated_validator(run: Run) -> None:
    """One validator cut off by the proxies: the others go on, it commits nothing, then heals."""
    c = run.cluster
    run.warm_up()
    victim = run.rng.randrange(c.size)
    others = [i for i in range(c.size) if i != victim]
    run.figure("isolated_node", victim)
    c.isolate(victim)
    isolated_at = time.monotonic()
    time.sleep(IN_FLIGHT_S)  # a block whose last precommit was already delivered may land
    alone = c.read_height(victim)
    run.progress(others, 4, "majority-progress-while-isolated")
    time.sleep(max(0.0, ISOLATION_S - (time.monotonic() - isolated_at)))  # calls to it time out
    after = c.read_height(victim)
    run.figure("isolated_s", round(time.monotonic() - isolated_at, 2))
    run.check(
        "isolated-commits-nothing",
        after == alone,
        f"node {victim} stayed at height {alone} (now {after}) "
        f"while the others reached {c.top(others)}",
    )
    c.heal()
    catch_up = c.wait_heights([victim], c.top(others), PROGRESS_BOUND_S)
    run.check("isolated-catches-up", True, f"node {victim} caught up in {catch_up:.1f} s")
    run.figure("catch_up_s", round(catch_up, 2))
    run.progress(list(range(c.size)), 3, "progress-after-heal")


def split_two_two(run: Run) -> None:
    """A 2/2 partition: no side has a quorum, so nothing commits; progress once healed."""
    c = run.cluster
    run.warm_up()
    order = list(range(c.size))
    run.rng.shuffle(order)
    sides = (sorted(order[:2]), sorted(order[2:]))
    run.figure("sides", sides)
    c.partition(*sides)
    time.sleep(IN_FLIGHT_S)  # a block whose last precommit was already delivered may land
    during = c.read_heights()
    time.sleep(SPLIT_S)  # the split lasts: rounds time out on both sides, calls time out
    after = c.read_heights()
    run.figure("split_heights", during)
    run.check(
        "nothing-committed-during-split",
        during == after,
        f"heights {during} held for {SPLIT_S:.0f} s of split"
        if during == after
        else f"{during} -> {after}",
    )
    c.heal()
    run.progress(list(range(c.size)), 3, "progress-after-heal")


def flaky_links(run: Run) -> None:
    """Slow, lossy, duplicating and reordering links, and links flapping; then calm."""
    c = run.cluster
    run.warm_up()
    before = c.top()
    chaos_s, period_s = 15.0, 1.0
    end = time.monotonic() + chaos_s
    while time.monotonic() < end:
        for src, dst in c.directions():
            c.set_fault(src, dst, _random_fault(run.rng) if run.rng.random() < 0.6 else CALM)
        if run.rng.random() < 0.5:
            a, b = run.rng.sample(range(c.size), 2)
            c.cut(a, b)  # this pair flaps: down for this period
        time.sleep(period_s)  # the fault pattern holds for one period
    during = c.top()
    c.heal()
    totals = c.net.totals()
    run.figure("chaos_s", chaos_s)
    run.figure("heights_during_chaos", during - before)
    run.figure(
        "frames",
        {
            "seen": totals.units,
            "dropped": totals.dropped,
            "duplicated": totals.duplicated,
            "reordered": totals.reordered,
            "delayed": totals.delayed,
            "cut": totals.cut,
        },
    )
    run.figure("link_resets", sum(_count(c.log(i), "decrypt_failed") for i in range(c.size)))
    run.progress(list(range(c.size)), 3, "progress-once-calm")


def _random_fault(rng: random.Random) -> Fault:
    return Fault(
        delay_ms=rng.uniform(10, 150),
        jitter_ms=rng.uniform(0, 60),
        drop=rng.choice((0.0, 0.0, 0.02, 0.05)),
        duplicate=rng.choice((0.0, 0.0, 0.02, 0.05)),
        reorder=rng.choice((0.0, 0.0, 0.02, 0.05)),
    )


def _count(path: Path, needle: str) -> int:
    if not path.exists():
        return 0
    return path.read_text(encoding="utf-8", errors="replace").count(needle)


def kill_during_submit(run: Run) -> None:
    """One signed payment sent to all nodes at once, the receiving node SIGKILLed, the client
    retrying: applied exactly once, every time."""
    c, w = run.cluster, run.workload
    run.warm_up()
    rounds = max(3, int(run.duration_s // 5))
    retried = 0
    for n in range(rounds):
        victim = n % c.size
        signed = w.signed_payment(100 + n, f"everywhere-{n}")
        future = c.loop.spawn(w.submit_everywhere(signed, list(range(c.size))))
        time.sleep(run.rng.uniform(0.0, 0.3))  # the kill lands before, during or after admission
        c.procs.kill(victim)
        call = future.result(w.spec.call_timeout_s + 5)
        survivors = [i for i in range(c.size) if i != victim]
        if call.outcome.value != "ok":
            retried += 1
            call = c.loop.call(w.retry(call, survivors * 2), 4 * w.spec.call_timeout_s)
        run.check(
            f"everywhere-{n}-acknowledged",
            call.outcome.value == "ok",
            f"node {victim} killed; tx {call.tx_id.hex()[:12]} -> {call.outcome.value} "
            f"at height {call.height} after {len(call.attempts)} calls",
        )
        c.procs.restart(victim)
        c.wait_heights([victim], c.top(survivors), PROGRESS_BOUND_S)
        told = c.loop.call(w.heights_told(call.data, list(range(c.size))), 30)
        run.check(
            f"everywhere-{n}-resubmitted-idempotent",
            told == [call.height] * c.size,
            f"the same bytes sent again to every node: heights {told}",
        )
    run.figure("payments_sent_everywhere", rounds)
    run.figure("needed_a_retry", retried)
    run.progress(list(range(c.size)), 3, "progress-after-kills")


def repeated_kills(run: Run) -> None:
    """Nodes SIGKILLed and restarted over and over (one down at a time), the workload going."""
    c = run.cluster
    run.warm_up()
    end = time.monotonic() + run.duration_s
    kills = 0
    while time.monotonic() < end:
        victim = run.rng.randrange(c.size)
        c.procs.kill(victim)
        kills += 1
        time.sleep(run.rng.uniform(0.5, 3.0))  # how long the node stays down
        c.procs.restart(victim)
        c.wait_for(partial(c.status, victim), PROGRESS_BOUND_S, f"node {victim} back")
        time.sleep(run.rng.uniform(0.5, 2.0))  # up for a while before the next kill
    run.figure("kills", kills)
    run.figure("killed_for_s", run.duration_s)
    run.progress(list(range(c.size)), 3, "progress-after-kills")


BYZANTINE: Final = 3


def equivocating_validator(run: Run) -> None:
    """Node 3 double-prevotes and double-proposes with its raw key: no fork, evidence."""
    c = run.cluster
    run.warm_up()
    honest = c.honest
    run.progress(honest, 12, "progress-with-equivocator")
    key = c.node_keys[BYZANTINE]

    def evidence(chains: list[ck.NodeChain], signed: ck.Signed) -> list[ck.Finding]:
        votes, proposals = ck.equivocations(signed, key)
        logged = {i: ck.logged_evidence(c.log(i), key) for i in honest}
        on_ledger = max(ck.ledger_evidence(chain, key) for chain in chains)
        run.figure("equivocations_seen", {"vote_slots": votes, "proposal_slots": proposals})
        run.figure("evidence_logged_by_node", logged)
        run.figure("evidence_records_on_ledger", on_ledger)
        return [
            ck.Finding(
                "equivocation-observed",
                votes > 0 and proposals > 0,
                f"journals hold {votes} double-prevote and {proposals} double-proposal slots "
                f"signed by node {BYZANTINE}",
            ),
            ck.Finding(
                "evidence-detected",
                sum(logged.values()) > 0,
                f"honest nodes reported evidence naming node {BYZANTINE}: {logged}",
            ),
            ck.Finding(
                "evidence-committed",
                on_ledger > 0,
                f"{on_ledger} evidence records against node {BYZANTINE} in the final state",
            ),
        ]

    run.final_checks.append(evidence)


def invalid_proposer(run: Run) -> None:
    """Node 3 proposes blocks holding an overspend, a bad signature or a replay, in turn."""
    c = run.cluster
    run.warm_up()
    run.progress(c.honest, 14, "progress-with-invalid-proposer")
    key = c.node_keys[BYZANTINE]
    honest_keys = {c.node_keys[i]: f"node{i}" for i in c.honest}

    def never_committed(chains: list[ck.NodeChain], signed: ck.Signed) -> list[ck.Finding]:
        findings = ck.check_prevote_nil(signed, key, honest_keys, chains[0])
        kinds = set(signed.invalid_proposed)
        run.figure("invalid_blocks_proposed", dict(signed.invalid_proposed))
        wanted = {"overspend", "bad-signature", "replay"}
        findings.append(
            ck.Finding(
                "every-invalid-kind-offered",
                wanted <= kinds,
                f"offered {sorted(kinds)} (wanted {sorted(wanted)})",
            )
        )
        return findings

    run.final_checks.append(never_committed)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    body: Callable[[Run], None]
    byzantine: dict[int, str] = field(default_factory=dict)
    duration_s: float = 0.0  # for scenarios whose length is a parameter (--duration)

    @property
    def summary(self) -> str:
        doc = self.body.__doc__ or ""
        return doc.strip().splitlines()[0] if doc.strip() else self.name


SCENARIOS: Final = {
    s.name: s
    for s in (
        Scenario("paused-proposer", paused_proposer),
        Scenario("isolated-validator", isolated_validator),
        Scenario("split-two-two", split_two_two),
        Scenario("flaky-links", flaky_links),
        Scenario(
            "equivocating-validator",
            equivocating_validator,
            {BYZANTINE: "double-prevote,double-propose"},
        ),
        Scenario("invalid-proposer", invalid_proposer, {BYZANTINE: "invalid-block:mixed"}),
        Scenario("kill-during-submit", kill_during_submit, duration_s=20.0),
        Scenario("repeated-kills", repeated_kills, duration_s=20.0),
    )
}


# --- the runner ----------------------------------------------------------------------------


def run_scenario(
    name: str, workdir: Path, seed: int = 1, duration_s: float | None = None
) -> Report:
    """Run one scenario in ``workdir/name`` (which must not exist yet); its report."""
    scenario = SCENARIOS[name]
    started = time.monotonic()
    spec = ClusterSpec(seed=seed, byzantine=scenario.byzantine)
    cluster = Cluster.create(workdir / name, spec)
    return run_on_cluster(
        cluster, name, seed, started, duration_s or scenario.duration_s, scenario.body
    )


def run_on_cluster(
    cluster: Cluster,
    name: str,
    seed: int,
    started: float,
    duration_s: float,
    body: Callable[[Run], None],
) -> Report:
    """Start ``cluster``, set up and run the workload, play ``body``, stop every node, run
    every check; the report, also written to ``report.json`` in the cluster's folder."""
    report = Report(name, seed)
    workload = Workload(
        [cluster.url(i) for i in range(cluster.size)],
        cluster.genesis,
        cluster.keys,
        seed,
        WorkloadSpec(),
    )
    run = Run(cluster, workload, report, seed, duration_s)
    try:
        try:
            cluster.start()
            cluster.loop.call(workload.setup(), SETUP_BOUND_S)
            run.start_workload()
            body(run)
        except Exception as exc:  # the report says what went wrong; the checks still run
            report.error = f"{type(exc).__name__}: {exc}"
            report.figures["traceback"] = traceback.format_exc(limit=6)
        finally:
            run.stop_workload()
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
        cluster.close()
        report.seconds = time.monotonic() - started
        (cluster.root / "report.json").write_text(
            json.dumps(report.to_json(), indent=2), encoding="utf-8"
        )
    return report


def _final_checks(run: Run) -> None:
    """Every check over the stopped nodes; one that cannot run is a failed finding, not a crash."""
    c, report = run.cluster, run.report
    genesis = c.genesis
    chains = [ck.read_chain(i, c.nodes[i].home, genesis) for i in range(c.size)]
    honest = [chains[i] for i in c.honest]
    longest = max(honest, key=lambda chain: chain.top)
    signed = ck.read_journals((c.journal(i) for i in range(c.size)), genesis.chain_id)
    honest_keys = {c.node_keys[i]: f"node{i}" for i in c.honest}
    checks: list[tuple[str, Callable[[], list[ck.Finding]]]] = [
        *(
            (f"integrity[node{ch.index}]", partial(_one, ck.check_chain_integrity, ch, genesis))
            for ch in chains
        ),
        ("agreement", partial(_one, ck.check_agreement, chains)),
        *(
            (f"conservation[node{ch.index}]", partial(_one, ck.check_conservation, ch))
            for ch in honest
        ),
        ("history", partial(ck.check_history, longest, run.workload.history, genesis)),
        ("no-honest-double-sign", partial(_one, ck.check_no_double_sign, signed, honest_keys)),
        *(
            (f"scenario-check-{n}", partial(check, chains, signed))
            for n, check in enumerate(run.final_checks)
        ),
        *(
            (f"audit[node{i}]", partial(_one, ck.check_audit, i, c.nodes[i].home, genesis))
            for i in range(c.size)
        ),
    ]
    for name, check in checks:
        try:
            report.findings += check()
        except Exception as exc:  # a check that cannot run fails, the others still run
            report.findings.append(ck.Finding(name, False, f"{type(exc).__name__}: {exc}"))
    history = run.workload.history
    latencies = history.latencies_s()
    report.figures["calls"] = history.counts()
    report.figures["height"] = longest.top
    if latencies:
        report.figures["ok_latency_s"] = {
            "p50": round(latencies[len(latencies) // 2], 2),
            "p99": round(latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)], 2),
            "max": round(latencies[-1], 2),
        }


def _one(check: Callable[..., ck.Finding], *args: object) -> list[ck.Finding]:
    return [check(*args)]
