"""Tampering with a node's data directory: each change is caught, at the right place.

The history (``tools.audit.history.demo_history``) is 12 certified blocks;
block 8 holds three payments, the first two by the same holder.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import plyvel
import pytest

from node.consensus.types import Block, Header
from node.ledger import records as r
from node.ledger import tx as t
from node.protocol import codec, merkle
from node.protocol.crypto import digest
from node.protocol.genesis import Genesis, ProtocolLimits
from tests.audit.conftest import History, audit, edit, height_key, read_block
from tools.audit import chain
from tools.audit.chain import PHASES, Auditor, AuditResult, StateRoots
from tools.audit.history import HistoryWriter, certify, fixed_key, fixture_genesis
from tools.audit.sources import DataDirSource


def _put_block(history: History, block: Block, cert_bytes: bytes | None = None) -> None:
    h = block.header.height

    def change(db: plyvel.DB) -> None:
        db.put(height_key(b"b/", h), block.encode())
        if cert_bytes is not None:
            db.put(height_key(b"c/", h), cert_bytes)

    edit(history.data, change)


def _with_txs(block: Block, txs: list[bytes]) -> Block:
    return Block(block.header, tuple(txs))


def test_the_untouched_history_passes(history: History) -> None:
    result = audit(history)
    assert result.ok, result.divergence
    assert result.heights_checked == 12
    assert result.transactions == 30
    assert result.stored_state_checked
    assert result.books.payouts_settled == result.books.payouts_opened == 7
    assert result.payments_rule_checked == 7


def test_the_audit_says_where_its_time_went(history: History) -> None:
    result = audit(history, processes=True)
    assert result.ok, result.divergence
    assert set(result.phase_seconds) == set(PHASES)
    assert all(s >= 0 for s in result.phase_seconds.values())
    # Every phase that has work in this history was charged, and laps never overlap.
    for phase in ("fetch_decode", "execute", "state_tree", "cross_checks"):
        assert result.phase_seconds[phase] > 0, phase
    assert sum(result.phase_seconds.values()) <= result.seconds
    assert result.state_root_process_seconds > 0  # the state tree's own process
    assert audit(history).state_root_process_seconds == 0  # none: in the replay's thread


def test_a_changed_amount_in_a_stored_transaction(history: History) -> None:
    block, _ = read_block(history.data, 5)
    body, signature = codec.as_list(codec.decode(block.txs[1], 1 << 20), 2)
    assert isinstance(body, bytes)
    items = codec.as_list(codec.decode(body, 1 << 20), 9)
    assert items[7] == 4_000
    items[7] = 40_000
    altered_body = codec.encode(items)
    altered = codec.encode([altered_body, signature])
    _put_block(history, _with_txs(block, [block.txs[0], altered, block.txs[2]]))

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.tx_index, d.check) == (5, 1, "tx_signature")
    assert d.tx_id == digest(altered_body).hex()


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_flipped_signature_byte(history: History, processes: bool) -> None:
    assert audit(history, processes).ok
    block, _ = read_block(history.data, 8)
    signed = t.decode_tx(block.txs[2], history.genesis.chain_id)
    assert not isinstance(signed, t.Result)
    flipped = bytearray(signed.signature)
    flipped[10] ^= 0x01
    forged = codec.encode([signed.body, bytes(flipped)])
    _put_block(history, _with_txs(block, [*block.txs[:2], forged]))

    d = audit(history, processes).divergence
    assert d is not None
    assert (d.height, d.tx_index, d.check) == (8, 2, "tx_signature")
    assert d.tx_id == signed.tx_id.hex()


def test_a_forged_certificate_signature(history: History) -> None:
    block, cert = read_block(history.data, 6)
    pairs = list(cert.signatures)
    key, _ = pairs[1]
    pairs[1] = (key, bytes(64 - 1) + b"\x01")
    forged = type(cert)(cert.height, cert.round, cert.block_hash, tuple(pairs))
    _put_block(history, block, forged.encode())

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.check) == (6, "certificate")
    assert "does not verify" in d.message
    assert d.found == key.hex()


def test_a_short_certificate(history: History) -> None:
    block, cert = read_block(history.data, 6)
    short = type(cert)(cert.height, cert.round, cert.block_hash, cert.signatures[:2])
    _put_block(history, block, short.encode())

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.check) == (6, "certificate")
    assert "2 of 4" in d.message
    assert d.expected == ">= 3"


def test_a_certificate_for_another_block(history: History) -> None:
    _, cert5 = read_block(history.data, 5)
    block6, _ = read_block(history.data, 6)
    _put_block(history, block6, cert5.encode())

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.check) == (6, "certificate")
    assert "another height" in d.message


def test_a_changed_state_value(history: History) -> None:
    holder = history.actors.holders[5].public_key
    key = b"s/" + r.holder_key(holder)

    def change(db: plyvel.DB) -> None:
        record = r.Holder.decode(db.get(key))
        code, cents = record.balances[0]
        db.put(key, r.Holder(record.sequence, ((code, cents + 100_000),)).encode())

    edit(history.data, change)

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.check) == (12, "stored_state")
    assert f"holder {holder.hex()[:16]}" in d.message


def test_two_transactions_swapped(history: History) -> None:
    block, _ = read_block(history.data, 8)
    first, second, third = block.txs
    _put_block(history, _with_txs(block, [third, second, first]))
    moved = t.decode_tx(third, history.genesis.chain_id)
    assert not isinstance(moved, t.Result)

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.tx_index, d.check) == (8, 0, "tx_order")
    assert d.tx_id == moved.tx_id.hex()
    assert "height 8, transaction 2" in d.message


def test_two_transactions_of_one_sender_swapped(history: History) -> None:
    block, _ = read_block(history.data, 8)
    first, second, third = block.txs
    _put_block(history, _with_txs(block, [second, first, third]))

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.tx_index, d.check) == (8, 0, "tx_order")


def test_a_block_dropped_and_the_rest_renumbered(history: History) -> None:
    def change(db: plyvel.DB) -> None:
        for h in range(7, 12):
            for table in (b"b/", b"c/", b"r/"):
                db.put(height_key(table, h), db.get(height_key(table, h + 1)))
        for table in (b"b/", b"c/", b"r/"):
            db.delete(height_key(table, 12))
        db.put(b"m/height", (11).to_bytes(8, "big"))

    edit(history.data, change)

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.check) == (7, "header_height")


def test_a_block_missing(history: History) -> None:
    edit(history.data, lambda db: db.delete(height_key(b"b/", 7)))

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.check) == (7, "block_missing")


def test_a_block_replaced_by_one_signed_by_fewer_than_two_thirds(history: History) -> None:
    block, _ = read_block(history.data, 9)
    previous, _ = read_block(history.data, 8)
    # A valid-looking block 9: right parent, time and roots, but no settlements.
    header = block.header
    fake = Block(
        Header(
            header.chain_id,
            9,
            header.time_ms,
            previous.hash(),
            merkle.root([]),
            previous.header.state_root,
            header.validators_hash,
            header.next_validators_hash,
            header.proposer,
        ),
        (),
    )
    signers = history.actors.validators[:2]
    cert = certify(history.genesis.chain_id, 9, 0, fake.hash(), signers)
    _put_block(history, fake, cert.encode())

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.check) == (9, "certificate")
    assert "2 of 4" in d.message


def test_a_block_signed_by_an_outsider(history: History) -> None:
    block, _ = read_block(history.data, 9)
    outsider = type(history.actors.bank)(digest(b"not a validator"))
    signers = [*history.actors.validators[:2], outsider]
    cert = certify(history.genesis.chain_id, 9, 0, block.hash(), signers)
    _put_block(history, block, cert.encode())

    d = audit(history).divergence
    assert d is not None
    assert (d.height, d.check) == (9, "certificate")
    assert "not a validator" in d.message


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_recorded_state_root_changed(history: History, processes: bool) -> None:
    edit(history.data, lambda db: db.put(height_key(b"r/", 4), bytes(32)))

    result = audit(history, processes)
    d = result.divergence
    assert d is not None
    assert (d.height, d.check) == (4, "stored_state_root")
    assert result.heights_checked == 3


class _LateRoots(StateRoots):
    """State roots that are never ready before the audit waits for them, as when
    their process lags the replay by several blocks."""

    def submit(self, writes: dict[bytes, bytes | None]) -> Future[tuple[bytes, float]]:
        return _Late(super().submit(writes).result())


class _Late(Future[tuple[bytes, float]]):
    def __init__(self, root: tuple[bytes, float]) -> None:
        super().__init__()
        self._root = root

    def done(self) -> bool:
        return False

    def result(self, timeout: float | None = None) -> tuple[bytes, float]:
        return self._root


@pytest.mark.parametrize("mode", ["threads", "processes", "late_roots"])
def test_a_certified_state_root_forged(
    history: History, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block 4 re-certified by every validator with another state root: found at 4,
    with the same counts, even when block 5 (which no longer follows it) is
    checked before block 4's root is in."""
    block, _ = read_block(history.data, 4)
    fake = Block(replace(block.header, state_root=bytes(32)), block.txs)
    cert = certify(history.genesis.chain_id, 4, 0, fake.hash(), history.actors.validators)
    _put_block(history, fake, cert.encode())
    reference = audit(history)  # each root computed in the replay's thread, when handed over
    if mode == "late_roots":
        monkeypatch.setattr(chain, "StateRoots", _LateRoots)

    result = audit(history, processes=mode == "processes")
    d = result.divergence
    assert d is not None
    assert (d.height, d.check) == (4, "state_root")
    assert d.message == "re-execution does not reproduce the certified state root"
    assert d.expected == bytes(32).hex()
    assert d.found == block.header.state_root.hex()
    assert result.heights_checked == 3
    assert result.last_block_hash == read_block(history.data, 3)[0].hash().hex()
    assert result.state_root == block.header.state_root.hex()
    counts = ("transactions", "signatures_verified", "certificates", "kinds")
    assert [getattr(result, c) for c in counts] == [getattr(reference, c) for c in counts]


def _audit_dir(path: Path, genesis: Genesis) -> AuditResult:
    source = DataDirSource(path, genesis.genesis_hash)
    try:
        return Auditor(genesis, source, source).run()
    finally:
        source.close()


def test_a_block_over_the_genesis_limits(tmp_path: Path) -> None:
    """Certified by every validator and valid transaction by transaction, a block still
    may not hold more than the genesis file allows."""
    genesis, actors = fixture_genesis()
    genesis = replace(genesis, limits=ProtocolLimits(block_txs_max=2))
    writer = HistoryWriter(tmp_path / "data", genesis, actors.validators)
    zone = genesis.issuers[0].zones[0]
    shops = [fixed_key(f"limits-shop{i}") for i in range(3)]
    registrations = [
        actors.tx(
            actors.issuers[0],
            t.RegisterMerchant(s.public_key, f"Shop {i}", "47.11", zone, digest(b"iban"), False),
        )
        for i, s in enumerate(shops)
    ]
    writer.commit(registrations[:2])
    writer.commit(registrations[2:])
    writer.close()
    result = _audit_dir(tmp_path / "data", genesis)
    assert result.ok, result.divergence

    writer = HistoryWriter(tmp_path / "over", genesis, actors.validators)
    writer.commit(registrations)
    writer.close()
    result = _audit_dir(tmp_path / "over", genesis)
    assert result.divergence is not None
    assert (result.divergence.height, result.divergence.check) == (1, "block_limits")
    assert "3 transactions, more than 2" in result.divergence.describe()
