"""Signature checks ahead of execution (``node.app.sigverify``) and the daemon's
admission of gossiped transactions (``node.p2p.gossip.GossipAdmission``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from node.app.sigverify import ProcessVerifier, SignatureVerifier
from node.consensus.mempool import Mempool, Verdict
from node.ledger import tx as t
from node.p2p.gossip import GossipAdmission
from node.protocol import limits
from node.protocol.crypto import digest
from tests.ledger.world import CHAIN_ID, signer


def _payments(count: int) -> list[t.SignedTx]:
    payer, shop = signer("sig-payer"), signer("sig-shop")
    return [
        t.Tx(CHAIN_ID, payer.public_key, n, t.Pay("C", shop.public_key, 100 + n, "")).sign(payer)
        for n in range(count)
    ]


def _forged(signed: t.SignedTx) -> t.SignedTx:
    flipped = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
    return t.SignedTx(signed.tx, signed.body, flipped, signed.tx_id)


@pytest.mark.parametrize("processes", [False, True])
def test_verdicts_come_back_in_order_and_known_good_ones_are_not_sent_again(
    processes: bool,
) -> None:
    good = _payments(6)
    txs = [good[0], _forged(good[1]), good[2], good[3], _forged(good[4]), good[5]]
    verifier = SignatureVerifier(workers=2, processes=processes)
    try:
        assert verifier.verify(txs) == [True, False, True, True, False, True]
        verifier.remember(txs, [True, False, True, True, False, True])
        assert verifier.is_known_good(good[0]) and not verifier.is_known_good(txs[1])
        assert verifier.verify([good[0], good[2]]) == [True, True]  # from the cache
        assert verifier.verify([]) == []
    finally:
        verifier.close()


def test_worker_processes_report_their_own_verification_rate() -> None:
    verifier = ProcessVerifier(1)
    try:
        assert verifier.rate() is None
        parts = verifier.submit(_payments(40))
        assert [ok for part in parts for ok in part.result()] == [True] * 40
        rate = verifier.rate()
        assert rate is not None and rate > 0
    finally:
        verifier.close()


def _unknown(data: bytes) -> bool:
    return False


def test_gossiped_copies_the_node_holds_are_dropped_before_any_work() -> None:
    """Every peer relays every transaction: a copy of one the mempool holds (pending or
    committed from it lately) is neither decoded, nor checked, nor admitted again."""
    pool = Mempool()
    pool.add(b"pending", lambda tx: Verdict(digest(tx), 0))
    pool.add(b"committed", lambda tx: Verdict(digest(tx), 0))
    pool.remove_committed([digest(b"committed")])
    checked: list[bytes] = []
    admitted: list[bytes] = []

    async def verify_ahead(batch: Sequence[bytes]) -> None:
        checked.extend(batch)

    async def scenario() -> None:
        gossip = GossipAdmission(pool.knows, verify_ahead, admitted.append)
        for data in (b"pending", b"new", b"committed", b"pending"):
            gossip.push(data)
        task = asyncio.create_task(gossip.run())
        while not admitted:
            await asyncio.sleep(0)
        task.cancel()

    asyncio.run(scenario())
    assert checked == admitted == [b"new"]


def test_gossiped_transactions_are_checked_in_batches_then_admitted_in_arrival_order() -> None:
    checked: list[list[bytes]] = []
    admitted: list[bytes] = []

    async def verify_ahead(batch: Sequence[bytes]) -> None:
        assert not admitted or admitted[-1] < batch[0]  # a batch is checked before admission
        checked.append(list(batch))

    async def scenario() -> None:
        gossip = GossipAdmission(_unknown, verify_ahead, admitted.append)
        for n in range(1_200):
            gossip.push(n.to_bytes(4, "big"))
        task = asyncio.create_task(gossip.run())
        while len(admitted) < 1_200:
            await asyncio.sleep(0)
        task.cancel()
        assert gossip.dropped == 0

    asyncio.run(scenario())
    assert admitted == [n.to_bytes(4, "big") for n in range(1_200)]
    assert [len(b) for b in checked] == [500, 500, 200]
    assert all(len(b) <= limits.GOSSIP_ADMISSION_BATCH_TXS_MAX for b in checked)


def test_gossip_beyond_the_cap_is_dropped_and_counted() -> None:
    async def scenario() -> int:
        async def verify_ahead(batch: Sequence[bytes]) -> None:
            return None

        gossip = GossipAdmission(_unknown, verify_ahead, lambda data: None)
        for n in range(limits.MEMPOOL_TXS_MAX + 3):
            gossip.push(n.to_bytes(4, "big"))
        return gossip.dropped

    assert asyncio.run(scenario()) == 3


def test_worker_processes_end_when_their_node_is_killed(tmp_path: Path) -> None:
    script = (
        "import multiprocessing, sys, time\n"
        "from node.app.sigverify import SignatureVerifier\n"
        "if __name__ == '__main__':\n"
        "    v = SignatureVerifier(workers=2, processes=True)\n"
        "    print(' '.join(str(p.pid) for p in multiprocessing.active_children()), flush=True)\n"
        "    time.sleep(60)\n"
    )
    path = tmp_path / "node_like.py"
    path.write_text(script)
    with subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    ) as node:
        try:
            assert node.stdout is not None
            workers = [int(pid) for pid in node.stdout.readline().split()]
            assert workers and all(_alive(pid) for pid in workers)
        finally:
            node.kill()
            node.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker outlived its node"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # not our child: nothing to reap
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"
