"""The mempool: caps, deduplication, admission through the ledger, recheck, reaping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from node.app.ledger_app import LedgerApp
from node.app.sigverify import SignatureVerifier
from node.consensus.app_interface import PreparedBlock
from node.consensus.mempool import Admission, Mempool, Verdict
from node.consensus.types import Block, Certificate, Header
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import limits
from node.protocol.crypto import Signer, digest
from node.protocol.genesis import Genesis, ProtocolLimits
from node.protocol.merkle import tx_root as merkle_tx_root
from node.store.blockstore import BlockStore
from tests.ledger.world import DAY_MS, T0_MS, World, holder_keys, signer


def _ok(tx: bytes) -> Verdict:
    return Verdict(digest(tx), 0)


@contextmanager
def _ledger_app(tmp_path: Path, genesis: Genesis) -> Iterator[LedgerApp]:
    """A ledger app on a new store under ``tmp_path``, with one signature worker."""
    store = BlockStore.open(tmp_path / "db", genesis.genesis_hash, True)
    verifier = SignatureVerifier(1)
    try:
        yield LedgerApp(genesis, store, Mempool(), verifier)
    finally:
        verifier.close()
        store.close()


def test_caps_by_count_and_bytes() -> None:
    pool = Mempool(max_txs=3, max_bytes=10_000)
    results = [pool.add(bytes([i]) * 10, _ok).admission for i in range(5)]
    assert results == [Admission.ADMITTED] * 3 + [Admission.FULL] * 2
    small = Mempool(max_txs=100, max_bytes=25)
    results = [small.add(bytes([i]) * 10, _ok).admission for i in range(3)]
    assert results == [Admission.ADMITTED, Admission.ADMITTED, Admission.FULL]
    assert small.size_bytes == 20


def test_duplicates_are_recognised_and_rejections_keep_their_code() -> None:
    pool = Mempool()
    assert pool.add(b"a", _ok).admission == Admission.ADMITTED
    assert pool.add(b"a", _ok).admission == Admission.DUPLICATE
    bad = pool.add(b"b", lambda tx: Verdict(digest(tx), int(Result.BAD_SEQUENCE)))
    assert bad.admission == Admission.REJECTED
    assert bad.verdict.code == Result.BAD_SEQUENCE
    assert len(pool) == 1


def test_pending_bytes_are_a_duplicate_without_a_second_check() -> None:
    """Gossip brings each transaction from every peer: a copy is not executed again."""
    checked: list[bytes] = []

    def counting(tx: bytes) -> Verdict:
        checked.append(tx)
        return _ok(tx)

    pool = Mempool()
    assert pool.add(b"a", counting).admission == Admission.ADMITTED
    again = pool.add(b"a", counting)
    assert again.admission == Admission.DUPLICATE
    assert again.verdict == Verdict(digest(b"a"), 0)
    assert checked == [b"a"]
    # Once dropped by a recheck, the same bytes are checked afresh.
    assert pool.recheck(lambda tx: Verdict(digest(tx), int(Result.BAD_SEQUENCE))) == [digest(b"a")]
    rejected = pool.add(b"a", lambda tx: Verdict(digest(tx), int(Result.BAD_SEQUENCE)))
    assert rejected.admission == Admission.REJECTED
    assert pool.add(b"a", counting).admission == Admission.ADMITTED
    assert checked == [b"a", b"a"]
    assert (len(pool), pool.size_bytes) == (1, 1)


def test_a_late_copy_of_a_committed_transaction_is_not_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A peer's copy that arrives after the block: no execution, no rejection to count."""
    monkeypatch.setattr(limits, "MEMPOOL_COMMITTED_KEPT_MAX", 2)
    checked: list[bytes] = []

    def counting(tx: bytes) -> Verdict:
        checked.append(tx)
        return _ok(tx)

    pool = Mempool()
    for tx in (b"a", b"b", b"c"):
        pool.add(tx, counting)
    pool.remove_committed([digest(b"a"), digest(b"b"), digest(b"c")])
    assert len(pool) == 0
    late = pool.add(b"c", counting)
    assert late.admission == Admission.COMMITTED
    assert late.verdict == Verdict(digest(b"c"), 0)
    assert pool.add(b"b", counting).admission == Admission.COMMITTED
    assert checked == [b"a", b"b", b"c"]
    # Only the latest MEMPOOL_COMMITTED_KEPT_MAX are remembered: the oldest is checked.
    assert pool.add(b"a", counting).admission == Admission.ADMITTED
    assert checked == [b"a", b"b", b"c", b"a"]


def test_reap_respects_block_caps_in_arrival_order() -> None:
    pool = Mempool()
    for i in range(10):
        pool.add(bytes([i]) * 10, _ok)
    assert pool.reap(3, 10_000) == [bytes([i]) * 10 for i in range(3)]
    assert pool.reap(100, 25) == [bytes([0]) * 10, bytes([1]) * 10]
    assert len(pool) == 10  # reaping does not remove


def test_admission_sees_queued_sequences_and_recheck_drops_what_a_block_spent(
    tmp_path: Path,
) -> None:
    w = World()
    with _ledger_app(tmp_path, w.genesis) as app:
        shop = signer("shop")
        (h,) = holder_keys(1)
        chain = w.genesis.chain_id

        def tx(who: Signer, seq: int, p: t.Payload) -> bytes:
            return t.Tx(chain, who.public_key, seq, p).sign(who).encode()

        setup = [
            tx(
                w.namur,
                0,
                t.RegisterMerchant(shop.public_key, "S", "47.11", "NA-1", bytes(32), False),
            ),
            tx(w.namur, 1, t.CreateCampaign("c", "C", (), (), T0_MS, T0_MS + DAY_MS, 1_000)),
            tx(w.bank, 0, t.Fund("c", 5_000, "r")),
            tx(w.namur, 2, t.Allocate("c", (t.Allocation(h.public_key, 1_000, "NA-1"),))),
        ]
        # Sequences 0, 1, 2 of one issuer are all admitted: each sees the previous.
        for data in setup:
            assert app.submit(data).code == 0, Result(app.submit(data).code)
        assert len(app.mempool) == 4
        skipped = tx(w.namur, 9, t.CloseCampaign("c"))
        assert app.submit(skipped).code == Result.BAD_SEQUENCE
        pay_all = tx(h, 0, t.Pay("c", shop.public_key, 1_000, ""))
        assert app.submit(pay_all).code == 0
        # The same holder's second spend of the same money is refused at admission.
        assert app.submit(tx(h, 1, t.Pay("c", shop.public_key, 1, ""))).code == (
            Result.INSUFFICIENT_FUNDS
        )


def test_a_genesis_s_lower_limits_bind_admission_and_proposals(tmp_path: Path) -> None:
    w = World()
    lowered = replace(w.genesis, limits=ProtocolLimits(tx_bytes_max=1_024, block_txs_max=2))
    with _ledger_app(tmp_path, lowered) as app:
        chain = w.genesis.chain_id

        def tx(who: Signer, seq: int, p: t.Payload) -> bytes:
            return t.Tx(chain, who.public_key, seq, p).sign(who).encode()

        shops = [signer(f"shop{i}") for i in range(3)]
        register = [
            tx(w.namur, i, t.RegisterMerchant(s.public_key, "S", "47.11", "NA-1", bytes(32), False))
            for i, s in enumerate(shops)
        ]
        for data in register:
            assert app.submit(data).code == 0
        # Over the genesis's 1 024 bytes, though well under the node's own cap.
        people = holder_keys(40)
        big = tx(
            w.namur,
            3,
            t.Allocate("c", tuple(t.Allocation(h.public_key, 1, "NA-1") for h in people)),
        )
        assert 1_024 < len(big) <= limits.TX_BYTES_MAX
        assert app.submit(big).code == Result.TOO_LARGE

        # A block of the three registrations: proposed under the default limits, it is
        # refused under the genesis's limit of two, and the same block passes without it.
        last = app.last_block()
        app.genesis = replace(lowered, limits=ProtocolLimits())
        prepared = app.prepare_proposal(1, last.time_ms + 1_000, last.block_hash)
        assert len(prepared.txs) == 3
        block = _first_block(app, last.time_ms + 1_000, prepared)
        assert app.process_proposal(block)
        app.genesis = lowered
        assert not app.process_proposal(block)
        assert len(app.prepare_proposal(1, last.time_ms + 1_000, last.block_hash).txs) == 2


def _first_block(app: LedgerApp, time_ms: int, prepared: PreparedBlock) -> Block:
    """Block 1 at ``time_ms`` carrying ``prepared``, as its round-0 proposer would make it."""
    validators = app.validator_set(1)
    header = Header(
        chain_id=app.genesis.chain_id,
        height=1,
        time_ms=time_ms,
        previous_block_hash=app.last_block().block_hash,
        tx_root=merkle_tx_root(prepared.txs),
        state_root=prepared.state_root,
        validators_hash=validators.hash(),
        next_validators_hash=prepared.next_validators_hash,
        proposer=validators.proposer(1, 0).public_key,
    )
    return Block(header, prepared.txs)


def test_a_proposer_finalises_its_own_proposal_without_executing_it_again(
    tmp_path: Path,
) -> None:
    w = World()
    with _ledger_app(tmp_path, w.genesis) as app:
        executed: list[int] = []
        execute = app.chain.execute

        def counting(height: int, *rest: object) -> object:
            executed.append(height)
            return execute(height, *rest)  # type: ignore[arg-type]

        app.chain.execute = counting  # type: ignore[method-assign]
        chain = w.genesis.chain_id
        shops = [signer(f"shop{i}") for i in range(3)]
        for i, s in enumerate(shops):
            payload = t.RegisterMerchant(s.public_key, "S", "47.11", "NA-1", bytes(32), False)
            assert app.submit(t.Tx(chain, w.namur.public_key, i, payload).sign(w.namur).encode())
        when = app.last_block().time_ms + 1_000
        prepared = app.prepare_proposal(1, when, app.last_block().block_hash)
        assert len(prepared.txs) == 3
        # Another proposer's block at another time is executed here...
        other = _first_block(app, when + 1, prepared)
        assert app.process_proposal(other)
        assert executed == [1]
        # ...ours is not: its execution is the one prepare_proposal made.
        ours = _first_block(app, when, prepared)
        assert app.process_proposal(ours)
        app.finalize_block(ours, Certificate(1, 0, ours.hash(), ((bytes(32), bytes(64)),)))
        assert executed == [1]
        assert app.last_block().block_hash == ours.hash()
        assert app.store.state_root(1) == prepared.state_root
