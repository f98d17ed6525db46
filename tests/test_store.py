"""LevelDB store: one synced batch per block, reopen, determinism, crash consistency."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import plyvel
import pytest

from node.ledger import tx as t
from node.ledger.execute import execute_block
from node.ledger.genesis import initial_state
from node.protocol.state_tree import StateTree
from node.store.blockstore import FORMAT, BlockStore, StoreError
from tests.ledger.world import CHAIN_ID, DAY_MS, T0_MS, World, holder_keys, signer
from tools.audit.cli import check_state_root


def _scripted_blocks(world: World, blocks: int) -> list[list[bytes]]:
    """A deterministic history: set-up, then blocks of payments."""
    shop = signer("shop")
    w = world
    history: list[list[bytes]] = []

    def block(*payloads: tuple[object, t.Payload]) -> None:
        txs = [w.sign(who, p) for who, p in payloads]  # type: ignore[arg-type]
        outcome = w.apply(*txs)
        assert outcome.all_ok, [o.result for o in outcome.outcomes]
        history.append(txs)

    people = holder_keys(20)
    block((w.namur, t.RegisterMerchant(shop.public_key, "Shop", "47.11", "NA-1", bytes(32), False)))
    block((w.namur, t.CreateCampaign("c1", "Campaign", (), (), T0_MS, T0_MS + DAY_MS, 10_000)))
    block((w.bank, t.Fund("c1", 500_000, "ref-1")))
    allocs = tuple(t.Allocation(h.public_key, 10_000, "NA-2") for h in people)
    block((w.namur, t.Allocate("c1", allocs)))
    for n in range(blocks):
        block(*((h, t.Pay("c1", shop.public_key, 1 + n % 7, "")) for h in people[: 1 + n % 20]))
    return history


def _commit_history(
    store: BlockStore, world: World, history: list[list[bytes]], announce: bool = False
) -> list[bytes]:
    items = initial_state(world.genesis)
    tree = StateTree.from_items(items.items())
    store.write_genesis_state(items, tree.root())
    roots = []
    time_ms = T0_MS
    for height, txs in enumerate(history, start=1):
        outcome = execute_block(store, time_ms, txs, height=height)
        assert outcome.all_ok
        root = tree.update(outcome.writes)
        ids = [o.tx_id for o in outcome.outcomes if o.tx_id is not None]
        store.commit_block(height, b"block", b"cert", root, outcome.writes, ids)
        roots.append(root)
        if announce:
            print(height, flush=True)
    return roots


def test_same_blocks_in_two_fresh_stores_give_identical_roots(tmp_path: Path) -> None:
    world = World()
    history = _scripted_blocks(World(), 12)
    stores = [BlockStore.open(tmp_path / n, world.genesis.genesis_hash, True) for n in "ab"]
    roots = [_commit_history(s, world, history) for s in stores]
    assert roots[0] == roots[1]
    assert list(stores[0].state_items()) == list(stores[1].state_items())
    for s in stores:
        s.close()


def test_reopening_gives_the_same_root(tmp_path: Path) -> None:
    world = World()
    history = _scripted_blocks(World(), 6)
    store = BlockStore.open(tmp_path / "db", world.genesis.genesis_hash, True)
    roots = _commit_history(store, world, history)
    store.close()
    reopened = BlockStore.open(tmp_path / "db", world.genesis.genesis_hash, False)
    assert reopened.height() == len(history)
    assert reopened.state_root(len(history)) == roots[-1]
    assert check_state_root(reopened)["ok"] is True
    assert reopened.tx_location(t.decode_tx(history[-1][0], CHAIN_ID).tx_id) == (  # type: ignore[union-attr]
        len(history),
        0,
    )
    reopened.close()


def test_a_validator_change_through_the_store(tmp_path: Path) -> None:
    """A change scheduled in block 1 is in force from block 3, also after a reopen: the
    store serves as the executor's view and the World replays to the same roots."""
    world = World()
    v = world.validators
    newcomer = signer("validator4")
    entries = tuple(
        t.ValidatorEntry(k.public_key, 1, f"n{i}", "commune")
        for i, k in enumerate((v[0], v[1], v[2], newcomer))
    )
    bare = t.ChangeValidators(entries, 3, ())
    payload = t.ChangeValidators(entries, 3, tuple(t.approve(bare, k, CHAIN_ID) for k in v[:3]))
    history = [[world.sign(v[0], payload)], [], []]
    store = BlockStore.open(tmp_path / "db", world.genesis.genesis_hash, True)
    roots = _commit_history(store, world, history[:2])
    store.close()
    store = BlockStore.open(tmp_path / "db", world.genesis.genesis_hash, False)
    outcome = execute_block(store, T0_MS, history[2], height=3)
    assert outcome.all_ok and outcome.writes  # an empty block that starts the new set
    items = dict(store.state_items())
    tree = StateTree.from_items(items.items())
    root = tree.update(outcome.writes)
    store.commit_block(3, b"block", b"cert", root, outcome.writes, [])
    roots.append(root)
    store.close()
    for txs, expected in zip(history, roots, strict=True):
        assert world.apply(*txs).all_ok
        assert world.root() == expected
    record = world.validators_record()
    assert [x.public_key for x in record.current] == [e.public_key for e in entries]


def test_a_store_refuses_another_genesis_and_a_missing_directory(tmp_path: Path) -> None:
    store = BlockStore.open(tmp_path / "db", b"a" * 32, True)
    store.close()
    with pytest.raises(StoreError, match="was made for genesis"):
        BlockStore.open(tmp_path / "db", b"b" * 32, False)
    with pytest.raises(StoreError, match="relance-node init"):
        BlockStore.open(tmp_path / "nothing", b"a" * 32, False)


def test_a_store_of_the_protocol_before_item_roots_is_refused_clearly(tmp_path: Path) -> None:
    """A home made before protocol 2 (no ``m/format``: format 1) holds blocks whose list
    transactions would be misread: opening it says so instead of running on them."""
    store = BlockStore.open(tmp_path / "db", b"a" * 32, True)
    store.close()
    db = plyvel.DB(str(tmp_path / "db"))
    db.delete(b"m/format")  # as every store written before the format existed
    db.close()
    with pytest.raises(StoreError, match=r"format 1.*reads format 3 only.*relance-node init"):
        BlockStore.open(tmp_path / "db", b"a" * 32, False)
    # Format 2 (protocol 2) committed its states to the bucket tree: roots would not match.
    db = plyvel.DB(str(tmp_path / "db"))
    db.put(b"m/format", struct.pack(">I", 2))
    db.close()
    with pytest.raises(StoreError, match=r"format 2.*reads format 3 only.*relance-node init"):
        BlockStore.open(tmp_path / "db", b"a" * 32, False)
    db = plyvel.DB(str(tmp_path / "db"))
    db.put(b"m/format", struct.pack(">I", FORMAT + 1))
    db.close()
    with pytest.raises(StoreError, match=f"format {FORMAT + 1}"):
        BlockStore.open(tmp_path / "db", b"a" * 32, False)


def test_blocks_must_follow_each_other(tmp_path: Path) -> None:
    store = BlockStore.open(tmp_path / "db", b"a" * 32, True)
    with pytest.raises(StoreError, match="does not follow"):
        store.commit_block(2, b"", b"", b"r" * 32, {}, [])
    store.close()


def test_a_snapshot_pages_one_height_while_blocks_are_committed(tmp_path: Path) -> None:
    store = BlockStore.open(tmp_path / "db", b"a" * 32, True)
    try:
        store.write_genesis_state({b"k1": b"one", b"k2": b"two", b"k3": b"three"}, b"r" * 32)
        snapshot = store.snapshot()
        assert (snapshot.height, snapshot.root) == (0, b"r" * 32)
        first = snapshot.items(None, 2)
        assert first == [(b"k1", b"one"), (b"k2", b"two")]
        store.commit_block(1, b"block", b"cert", b"s" * 32, {b"k3": None, b"k4": b"four"}, [])
        assert snapshot.items(first[-1][0], 10) == [(b"k3", b"three")]  # still height 0
        snapshot.close()
        later = store.snapshot()
        assert later.height == 1 and later.root == b"s" * 32
        assert later.items(None, 10) == [(b"k1", b"one"), (b"k2", b"two"), (b"k4", b"four")]
        later.close()
    finally:
        store.close()


def test_a_synced_store_starts_at_its_height_and_only_when_new(tmp_path: Path) -> None:
    store = BlockStore.open(tmp_path / "db", b"a" * 32, True)
    try:
        assert store.base_height() == 0
        with pytest.raises(StoreError, match="new, empty store"):
            store.write_synced_state(0, [], b"r" * 32, b"b", b"c")
        store.write_synced_state(7, [(b"k", b"v")], b"r" * 32, b"block7", b"cert7")
        assert (store.height(), store.base_height()) == (7, 7)
        assert (store.block(7), store.certificate(7), store.state_root(7)) == (
            b"block7", b"cert7", b"r" * 32,
        )  # fmt: skip
        assert store.block(6) is None and list(store.state_items()) == [(b"k", b"v")]
        with pytest.raises(StoreError, match="new, empty store"):
            store.write_synced_state(9, [], b"r" * 32, b"b", b"c")
        store.commit_block(8, b"block8", b"cert8", b"s" * 32, {b"k": b"w"}, [])
        assert store.height() == 8
    finally:
        store.close()
    genesis = BlockStore.open(tmp_path / "other", b"a" * 32, True)
    try:
        genesis.write_genesis_state({b"k": b"v"}, b"r" * 32)
        with pytest.raises(StoreError, match="new, empty store"):
            genesis.write_synced_state(3, [], b"r" * 32, b"b", b"c")
    finally:
        genesis.close()


_WRITER = """
import sys
from pathlib import Path
from tests.test_store import _scripted_blocks, _commit_history
from tests.ledger.world import World
from node.store.blockstore import BlockStore
world = World()
history = _scripted_blocks(World(), 300)
store = BlockStore.open(Path(sys.argv[1]), world.genesis.genesis_hash, True)
_commit_history(store, world, history, announce=True)
print("done", flush=True)
"""


@pytest.mark.parametrize("kill_after", [3, 41, 170])
def test_sigkill_while_writing_leaves_the_store_at_a_block_boundary(
    tmp_path: Path, kill_after: int
) -> None:
    db = tmp_path / "db"
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db)],
        cwd=root,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if int(line) >= kill_after:
                break
        proc.send_signal(signal.SIGKILL)  # it is writing the next blocks right now
    finally:
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    world = World()
    store = BlockStore.open(db, world.genesis.genesis_hash, False)
    report = check_state_root(store)
    store.close()
    assert report["ok"] is True, report
    assert isinstance(report["height"], int)
    assert kill_after <= report["height"] < 304, "the kill must land before the last block"
