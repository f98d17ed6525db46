"""A protocol upgrade agreed by governance, on four real validator processes.

Validators 0 and 1 run the "upgraded" software: the test entry point
(``python -m tools.faults.node``) with ``RELANCE_TEST_NEXT_PROTOCOL``, so they
know protocol ``tx2.next``, whose rules differ from today's: a memo holds 16
characters (``tools.faults.node.next_rules``); validators 2 and 3 run the release
of today. A payment with a 30-character memo is applied under today's rules;
governance (3 of 4 approvals) then schedules ``tx2.next`` a few blocks ahead:

- validators 2 and 3 stop cleanly after the block before the upgrade's height,
  exit 4, and their logs name the release to install;
- validators 0 and 1 alone hold half the power: no block at the upgrade's height
  (no fork, no block the old nodes would disagree with);
- validator 2 started again on the old software refuses at once, with the message;
- upgraded, it joins 0 and 1: more than 2/3 run the new protocol and the chain goes
  on past the height; validator 3 upgraded catches up, all on the same blocks;
- from the height on, every node refuses the same kind of payment (``INVALID_FIELD``)
  and takes one with a short memo;
- the audit of the chain replays each block under the protocol in force at its height
  and passes; an audit by the release of today stops at the height, saying it does
  not know the protocol in force there.

Cost: about a minute on two idle cores (``slow``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Final

import pytest

from node.app.upgrades import HALT_EXIT_CODE
from node.app.version import RULEBOOK
from node.client.http_json import TxAnswer
from node.ledger import tx as t
from node.ledger.protocols import UnknownProtocol
from node.run import config
from tests.node.netutil import get_json
from tools.audit.chain import Auditor
from tools.audit.sources import DataDirSource
from tools.faults.cluster import Cluster, ClusterSpec
from tools.faults.governance import node_signer, submit_waiting
from tools.faults.node import ENV_NEXT_PROTOCOL, NEXT_MEMO_CHARS_MAX, upgraded_rulebook
from tools.faults.workload import Workload, WorkloadSpec

NEXT: Final = "tx2.next"
RELEASE: Final = "0.9.0"
UPGRADED: Final = {ENV_NEXT_PROTOCOL: NEXT}
AHEAD: Final = 6  # blocks between the submission and the upgrade's height
WAIT_S: Final = 120.0
LONG_MEMO: Final = "pain, croissants et deux cafés"  # 30 characters: today's rules take it
SHORT_MEMO: Final = "pain"


def _wait_heights(cluster: Cluster, indices: list[int], at_least: int) -> None:
    """Until those nodes hold block ``at_least``, whoever else has exited."""
    deadline = time.monotonic() + WAIT_S
    while any((h or 0) < at_least for h in cluster.heights(indices).values()):
        assert time.monotonic() < deadline, f"nodes {indices} not at {at_least}"
        time.sleep(0.5)


def _block_hash(cluster: Cluster, index: int, height: int) -> str:
    return str(get_json(f"{cluster.url(index)}/v1/blocks/{height}")["hash"])


def _pay(cluster: Cluster, workload: Workload, memo: str, to: int) -> TxAnswer:
    answer = submit_waiting(cluster.url(to), workload.signed_payment(1_00, memo).encode())
    assert isinstance(answer, TxAnswer), answer  # else: why the node did not answer
    return answer


def _wait_stopped(cluster: Cluster, indices: tuple[int, ...]) -> None:
    """Until every node of ``indices`` has exited (``Cluster.wait_for`` stops at an exit)."""
    deadline = time.monotonic() + WAIT_S
    while any(cluster.procs.exit_code(i) is None for i in indices):
        assert time.monotonic() < deadline, f"nodes {indices} still running"
        time.sleep(0.2)


@pytest.mark.slow
def test_old_nodes_stop_before_an_unknown_protocol_and_upgraded_ones_go_on(
    tmp_path: Path,
) -> None:
    assert len(LONG_MEMO) > NEXT_MEMO_CHARS_MAX >= len(SHORT_MEMO)
    spec = ClusterSpec(validators=4, journal=False, env={0: UPGRADED, 1: UPGRADED})
    with Cluster.create(tmp_path / "net", spec) as cluster:
        cluster.start()
        cluster.wait_heights(range(4), 2, WAIT_S)
        urls = [cluster.url(i) for i in range(4)]
        workload = Workload(urls, cluster.genesis, cluster.keys, 1, WorkloadSpec(holders=8))
        asyncio.run(workload.setup())  # two shops, a campaign, its funds, eight holders
        before = _pay(cluster, workload, LONG_MEMO, 3)  # an old node: today's rules
        assert before.accepted, before
        signers = [node_signer(node.home) for node in cluster.nodes]
        chain_id = cluster.genesis.chain_id
        at = cluster.top() + AHEAD
        bare = t.ScheduleUpgrade(NEXT, RELEASE, at, ())
        approvals = tuple(t.approve(bare, signers[i], chain_id) for i in (0, 1, 2))
        upgrade = t.ScheduleUpgrade(NEXT, RELEASE, at, approvals)
        data = t.Tx(chain_id, signers[0].public_key, 0, upgrade).sign(signers[0]).encode()
        answer = submit_waiting(cluster.url(0), data)
        assert isinstance(answer, TxAnswer) and answer.accepted, answer
        assert before.height is not None and before.height < at
        for index, known in ((0, True), (3, False)):
            said = get_json(cluster.url(index) + "/v1/status")["upgrade"]
            assert said == {"protocol": NEXT, "software": RELEASE, "height": at, "known": known}

        # The old nodes stop after block at - 1, with the release to install.
        _wait_stopped(cluster, (2, 3))
        for index in (2, 3):
            assert cluster.procs.exit_code(index) == HALT_EXIT_CODE
            log = cluster.log(index).read_text(encoding="utf-8")
            assert f"switches to protocol {NEXT} at height {at}" in log
            assert f"Install relance {RELEASE} or later" in log
            assert f"stopped at height {at - 1}" in log

        # Half the power knows the protocol: no block at its height yet.
        time.sleep(5)
        assert cluster.read_heights([0, 1]) == {0: at - 1, 1: at - 1}

        # Started again on the old software: it refuses at once.
        cluster.procs.restart(2)
        _wait_stopped(cluster, (2,))
        assert cluster.procs.exit_code(2) == HALT_EXIT_CODE

        # Upgraded: three of four run the new protocol; the chain passes the height.
        cluster.procs.set_env(2, UPGRADED)
        cluster.procs.restart(2)
        _wait_heights(cluster, [0, 1, 2], at + 2)
        cluster.procs.set_env(3, UPGRADED)
        cluster.procs.restart(3)
        _wait_heights(cluster, [3], at + 2)
        hashes = {_block_hash(cluster, i, at) for i in range(4)}
        assert len(hashes) == 1

        # The new rules, the same on every node: a long memo is refused, a short one taken.
        for index in range(4):
            refused = _pay(cluster, workload, LONG_MEMO, index)
            assert refused.result == "INVALID_FIELD", (index, refused)
        after = _pay(cluster, workload, SHORT_MEMO, 2)
        assert after.accepted and after.height is not None, after
        top = after.height
        assert top >= at
        _wait_heights(cluster, [0, 1, 2, 3], top)
        assert len({_block_hash(cluster, i, top) for i in range(4)}) == 1
        assert cluster.procs.crashed() == []

    # The audit replays every block under the protocol in force at its height.
    data = cluster.nodes[0].home / config.DATA_DIR
    source = DataDirSource(data, cluster.genesis.genesis_hash)
    try:
        audited = Auditor(cluster.genesis, source, source, rulebook=upgraded_rulebook(NEXT)).run()
        assert audited.ok, audited.divergence
        assert audited.heights_checked >= top and audited.stored_state_checked
        # Today's release has no rules for tx2.next: its audit stops at the height, clearly.
        old = Auditor(cluster.genesis, source, rulebook=RULEBOOK).run()
        assert old.divergence is not None
        assert (old.divergence.height, old.divergence.check) == (at, "protocol")
        assert str(UnknownProtocol(NEXT, at, RULEBOOK.known())) == old.divergence.message
    finally:
        source.close()
