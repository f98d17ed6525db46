"""A validator-set change under repeated kills (issue 4, must show 8).

Four validators and one observer (node 4), every link through a proxy. While
one node at a time is SIGKILLed and restarted (the repeated-kills scenario),
validators 0, 1 and 2 sign a ``ChangeValidators`` that adds the observer and
removes validator 3 from ``effective_height`` on. Validator 3 is no longer
killed once the change is in force; the new validator is. At the end, from
the stopped nodes' stores: every header names the set in force at its height
(the genesis set before ``effective_height``, the new one from it on), every
certificate verifies against that set, signers after the change include the
new validator and never the removed one; and the usual checks (agreement,
integrity, conservation, history, no double sign, audit) run over all five.

Uses the harness's ``Cluster``, ``Run``, ``Report`` and final checks; only
the cluster's making differs (an observer behind proxies too).

    python -m tools.faults.governance --seed 7 --dir /tmp/governance
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

import click

from node.client.http_json import urlopen
from node.consensus.types import Validator, ValidatorSet, verify_certificate
from node.ledger import tx as t
from node.protocol.crypto import Signer
from node.protocol.genesis import Genesis
from node.run import config
from tools.faults import checkers as ck
from tools.faults.cluster import Cluster, ClusterSpec
from tools.faults.scenarios import (
    PROGRESS_BOUND_S,
    Report,
    Run,
    run_on_cluster,
)

NAME: Final = "governance-under-kills"
VALIDATORS: Final = 4
OBSERVER: Final = 4
REMOVED: Final = 3
APPROVERS: Final = (0, 1, 2)  # 3 of 4 equal powers: more than 2/3
EFFECTIVE_AHEAD: Final = 10  # blocks between the submission and the change
AFTER_CHANGE: Final = 4  # heights the new set must decide before the kills stop
KILLS_UNDER_NEW_SET: Final = 2  # kills with the new set in force before the kills stop
DURATION_S: Final = 20.0
KILLING_MAX_S: Final = 90.0  # the kill loop stops by then, whatever the heights
HTTP_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Change:
    """The governance transaction sent, and the two sets it separates."""

    chain_id: str
    old: ValidatorSet
    new: ValidatorSet
    effective_height: int
    data: bytes


# --- the cluster: Cluster.create with one observer; its nodes' keys --------------------------


def node_signer(home: Path) -> Signer:
    return Signer(bytes.fromhex((home / config.NODE_KEY_FILE).read_text(encoding="ascii").strip()))


# --- the change -----------------------------------------------------------------------------


def compute_change(cluster: Cluster, effective_height: int) -> Change:
    """The observer in, validator 3 out, approved by validators 0, 1 and 2, sent by node 0."""
    genesis = cluster.genesis
    signers = [node_signer(node.home) for node in cluster.nodes]
    kept = [v for v in genesis.validators if v.public_key != cluster.node_keys[REMOVED]]
    entries = (
        *(t.ValidatorEntry(v.public_key, v.power, v.name, v.role) for v in kept),
        t.ValidatorEntry(signers[OBSERVER].public_key, 1, "Observateur promu", "commune"),
    )
    unsigned = t.ChangeValidators(entries, effective_height, ())
    approvals = tuple(t.approve(unsigned, signers[i], genesis.chain_id) for i in APPROVERS)
    change = t.ChangeValidators(entries, effective_height, approvals)
    sender = signers[APPROVERS[0]]
    data = t.Tx(genesis.chain_id, sender.public_key, 0, change).sign(sender).encode()
    return Change(
        genesis.chain_id,
        genesis_set(genesis),
        ValidatorSet(tuple(Validator(e.public_key, e.power, e.name) for e in entries)),
        effective_height,
        data,
    )


def genesis_set(genesis: Genesis) -> ValidatorSet:
    return ValidatorSet(tuple(Validator(v.public_key, v.power, v.name) for v in genesis.validators))


def submit_waiting(url: str, data: bytes) -> dict[str, object]:
    """POST the transaction and wait for its block; the API's answer (or the HTTP error's)."""
    request = urllib.request.Request(
        url + "/v1/transactions?wait=true",
        data=json.dumps({"tx": data.hex()}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urlopen(request, HTTP_TIMEOUT_S) as response:
            answer: dict[str, object] = json.load(response)
            return answer
    except urllib.error.HTTPError as error:
        failed: dict[str, object] = json.load(error)
        failed["http_status"] = error.code
        return failed
    except (OSError, ValueError) as error:
        return {"accepted": False, "error": f"{type(error).__name__}: {error}"}


def send_change(run: Run, change: Change, down: int) -> int | None:
    """Send the change to each live node in turn until one says where it was committed."""
    c = run.cluster
    answers = []
    for index in (i for i in range(VALIDATORS) if i != down):
        answer = submit_waiting(c.url(index), change.data)
        answers.append(answer)
        height = answer.get("height")
        if answer.get("accepted") is True and isinstance(height, int):
            run.check(
                "change-committed",
                height <= change.effective_height - 2,
                f"sent to node {index} while node {down} was down; committed at height {height}, "
                f"effective from {change.effective_height}",
            )
            return height
    run.check("change-committed", False, f"answers: {answers}")
    return None


# --- the scenario body ----------------------------------------------------------------------


def is_in_force(run: Run, effective_height: int | None) -> bool:
    return effective_height is not None and run.cluster.top() >= effective_height


def killable(in_force: bool) -> list[int]:
    """The validators that may be killed now: the old set, then (once in force) the new one."""
    if in_force:
        return [i for i in range(VALIDATORS + 1) if i != REMOVED]
    return list(range(VALIDATORS))


def governance_under_kills(run: Run) -> None:
    """Repeated kills (one node down at a time) while the observer replaces validator 3."""
    c = run.cluster
    run.warm_up()
    change: Change | None = None
    started = time.monotonic()
    kills: dict[int, int] = {}
    kills_under_new_set = 0
    while time.monotonic() - started < KILLING_MAX_S:
        effective = None if change is None else change.effective_height
        past_change = effective is not None and c.top() >= effective + AFTER_CHANGE
        enough = past_change and kills_under_new_set >= KILLS_UNDER_NEW_SET
        if enough and time.monotonic() - started >= run.duration_s:
            break
        in_force = is_in_force(run, effective)
        victim = run.rng.choice(killable(in_force))
        c.procs.kill(victim)
        kills[victim] = kills.get(victim, 0) + 1
        kills_under_new_set += in_force
        down_at = time.monotonic()
        if change is None:
            change = compute_change(c, c.top() + EFFECTIVE_AHEAD)
            run.figure("change_sent_while_down", victim)
            run.figure("effective_height", change.effective_height)
            run.figure("change_height", send_change(run, change, victim))
        time.sleep(max(0.0, run.rng.uniform(0.5, 2.5) - (time.monotonic() - down_at)))
        c.procs.restart(victim)
        c.wait_for(partial(c.status, victim), PROGRESS_BOUND_S, f"node {victim} back")
        time.sleep(run.rng.uniform(0.5, 1.5))  # up for a while before the next kill
    run.figure("kills_by_node", dict(sorted(kills.items())))
    run.figure("kills_under_new_set", kills_under_new_set)
    run.figure("killed_for_s", round(time.monotonic() - started, 1))
    if change is None:
        run.check("change-sent", False, "the kill loop ended before the change was sent")
        return
    new_set = [i for i in range(VALIDATORS + 1) if i != REMOVED]
    run.progress(new_set, 3, "progress-with-new-set")
    run.final_checks.append(partial(check_sets, change, c.node_keys))


# --- the final check over the stores ----------------------------------------------------------


def check_sets(
    change: Change, node_keys: list[bytes], chains: list[ck.NodeChain], _: ck.Signed
) -> list[ck.Finding]:
    """Each header's set, each certificate and the signers follow the governance transaction."""
    added, removed = node_keys[OBSERVER], node_keys[REMOVED]
    findings = []
    for chain in chains:
        problems: list[str] = []
        signed_by_added = 0
        for row in chain.blocks:
            in_force = change.new if row.height >= change.effective_height else change.old
            following = change.new if row.height + 1 >= change.effective_height else change.old
            if row.header.validators_hash != in_force.hash():
                problems.append(f"height {row.height}: validators_hash is not the set in force")
            if row.header.next_validators_hash != following.hash():
                problems.append(f"height {row.height}: next_validators_hash is not the next set")
            if not verify_certificate(row.certificate, change.chain_id, in_force):
                problems.append(f"height {row.height}: certificate fails against the set in force")
            signers = {key for key, _ in row.certificate.signatures}
            if row.height >= change.effective_height:
                signed_by_added += added in signers
                if removed in signers:
                    problems.append(f"height {row.height}: signed by the removed validator")
        after = max(0, chain.top - change.effective_height + 1)
        findings.append(
            ck.Finding(
                f"validator-sets[node{chain.index}]",
                not problems and after > 0 and signed_by_added > 0,
                "; ".join(problems[:3])
                or f"{chain.top} headers name the set in force; {after} heights under the new set, "
                f"{signed_by_added} certificates signed by the new validator, none by the removed",
            )
        )
    return findings


# --- the runner --------------------------------------------------------------------------------


def run_governance(workdir: Path, seed: int = 1, duration_s: float | None = None) -> Report:
    """The scenario in ``workdir/NAME`` (which must not exist yet); its report."""
    started = time.monotonic()
    cluster = Cluster.create(workdir / NAME, ClusterSpec(observers=1, seed=seed))
    duration = DURATION_S if duration_s is None else duration_s
    return run_on_cluster(cluster, NAME, seed, started, duration, governance_under_kills)


@click.command(help="A validator-set change under repeated kills; prints the report.")
@click.option("--seed", type=int, default=1, show_default=True, help="Kills and workload seed.")
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the nodes' homes go (default: a new temporary directory, kept).",
)
@click.option("--duration", type=click.FloatRange(min=1), help="Seconds of kills, at least.")
def main(seed: int, workdir: Path | None, duration: float | None) -> None:
    root = workdir or Path(tempfile.mkdtemp(prefix="relance-governance-"))
    root.mkdir(parents=True, exist_ok=True)
    report = run_governance(root, seed, duration)
    click.echo(f"{report.summary()}\nhomes, logs and report under {root / NAME}")
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
