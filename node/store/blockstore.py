"""The node's LevelDB: committed blocks, certificates, state and indexes.

Layout (every key starts with a one-byte table name and a slash):

- ``m/height``            the last committed height (u64, big-endian)
- ``m/genesis``           the genesis hash this store was created for
- ``m/format``            the store's format (u32): ``FORMAT`` of the code that created it
- ``m/base``              the first height held, for a store started from another
                          node's state (state sync, ``node.run.statesync``): it holds the
                          block, certificate and root of that height and every block
                          after, none before; absent for a store that starts at genesis
- ``s/<state key>``       ledger state, exactly the map the state tree commits to
- ``b/<height>``          block bytes;  ``c/<height>`` its commit certificate
- ``r/<height>``          the state root after that block
- ``x/<tx id>``           where a transaction sits: height (u64) and index (u32)
- ``l/<key>``             node-local records outside consensus, never read by the
                          ledger nor hashed into the state (the API's used login
                          links and dashboard sessions)

Each block is one synced write batch, so after a crash at any instant the
store is at a block boundary. Holds bytes only: no domain rules.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import plyvel

_HEIGHT: Final = b"m/height"
_GENESIS: Final = b"m/genesis"
_STATE: Final = b"s/"
_BLOCK: Final = b"b/"
_CERT: Final = b"c/"
_ROOT: Final = b"r/"
_TX: Final = b"x/"
_LOCAL: Final = b"l/"
_FORMAT: Final = b"m/format"
_BASE: Final = b"m/base"
FORMAT: Final = 3
"""The store's format. 3: protocol 3, state roots of the sparse Merkle tree
(``node.protocol.state_tree``). 2: blocks of transaction protocol 2 (list transactions
commit their items by a Merkle root, see ``node.ledger.tx``); a store without
the key is of format 1. Another format is refused at open: its blocks or roots
would be misread, not converted."""
# LevelDB tuning. A bloom filter answers most reads of absent keys (a first
# payment to a merchant, a new holder) without touching a table file; the
# block cache keeps the hot part of the state decoded in memory; a larger
# write buffer means fewer compactions competing with the ledger for a core.
BLOOM_FILTER_BITS: Final = 10
BLOCK_CACHE_BYTES: Final = 64 << 20
WRITE_BUFFER_BYTES: Final = 16 << 20


class StoreError(RuntimeError):
    """The data directory is missing, corrupt, or belongs to another chain."""


def _h(height: int) -> bytes:
    return struct.pack(">Q", height)


class StateSnapshot:
    """The committed state as of one block, frozen (a LevelDB snapshot): its pages stay
    consistent while later blocks are committed. ``close`` releases it."""

    def __init__(self, snapshot: plyvel.Snapshot, height: int, root: bytes) -> None:
        self._snapshot = snapshot
        self.height = height
        self.root = root

    def items(self, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` state entries in key order, past ``after`` when given."""
        start = len(_STATE)
        found: list[tuple[bytes, bytes]] = []
        iterator = (
            self._snapshot.iterator(prefix=_STATE)
            if after is None
            else self._snapshot.iterator(start=_STATE + after, include_start=False)
        )
        with iterator as entries:
            for key, value in entries:
                if not key.startswith(_STATE) or len(found) >= limit:
                    break
                found.append((key[start:], value))
        return found

    def close(self) -> None:
        self._snapshot.close()


class BlockStore:
    """One LevelDB database. Not thread-safe; one writer (the node's loop).

    ``read_snapshot`` gives a read-only store frozen at one instant, which any thread may
    read while the loop commits blocks (LevelDB snapshots are consistent and safe to
    share); its writing methods are not to be used."""

    def __init__(self, db: plyvel.DB) -> None:
        self._db = db

    @classmethod
    def open(cls, path: Path, genesis_hash: bytes, create: bool) -> BlockStore:
        """Open (or with ``create``, create) the store for ``genesis_hash``."""
        if not create and not (path / "CURRENT").exists():
            raise StoreError(f"no store at {path}: run 'relance-node init' first")
        try:
            db = plyvel.DB(
                str(path),
                create_if_missing=create,
                bloom_filter_bits=BLOOM_FILTER_BITS,
                lru_cache_size=BLOCK_CACHE_BYTES,
                write_buffer_size=WRITE_BUFFER_BYTES,
            )
        except plyvel.Error as exc:
            raise StoreError(f"cannot open the store at {path}: {exc}") from None
        store = cls(db)
        found = db.get(_GENESIS)
        if found is None:
            with db.write_batch(sync=True) as batch:
                batch.put(_GENESIS, genesis_hash)
                batch.put(_HEIGHT, _h(0))
                batch.put(_FORMAT, struct.pack(">I", FORMAT))
        elif found != genesis_hash:
            db.close()
            raise StoreError(
                f"the store at {path} was made for genesis {found.hex()[:16]}…, "
                f"not {genesis_hash.hex()[:16]}…"
            )
        raw = db.get(_FORMAT)
        made = 1 if raw is None or len(raw) != 4 else struct.unpack(">I", raw)[0]
        if made != FORMAT:
            db.close()
            raise StoreError(
                f"the store at {path} is of format {made}, written by another version of "
                f"Relance; this one reads format {FORMAT} only (the transaction protocol "
                "changed): make a new home with 'relance-node init' or a new devnet"
            )
        return store

    def close(self) -> None:
        self._db.close()

    def read_snapshot(self) -> BlockStore:
        """The store as it is now, for reading only (from any thread); ``close`` it after."""
        return BlockStore(self._db.snapshot())

    # --- reading ----------------------------------------------------------------

    def height(self) -> int:
        raw = self._db.get(_HEIGHT)
        if raw is None:
            raise StoreError("the store has no height record")
        return int(struct.unpack(">Q", raw)[0])

    def get(self, key: bytes) -> bytes | None:
        """Committed ledger state (the ledger's ``View``)."""
        value: bytes | None = self._db.get(_STATE + key)
        return value

    def iter_prefix(
        self, prefix: bytes, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """State entries under ``prefix`` in key order; with ``after``, those past that key."""
        start = len(_STATE)
        if after is None:
            for key, value in self._db.iterator(prefix=_STATE + prefix):
                yield key[start:], value
            return
        within = _STATE + prefix
        for key, value in self._db.iterator(start=_STATE + after, include_start=False):
            if not key.startswith(within):
                return
            yield key[start:], value

    def state_items(self) -> Iterator[tuple[bytes, bytes]]:
        return self.iter_prefix(b"")

    def base_height(self) -> int:
        """0 for a store from genesis; ``H`` for one started from the state at ``H`` (state
        sync): it holds block ``H`` and those after, none before."""
        raw = self._db.get(_BASE)
        return 0 if raw is None else int(struct.unpack(">Q", raw)[0])

    def snapshot(self) -> StateSnapshot:
        """The committed state and its height and root, frozen for paging through it."""
        snapshot = self._db.snapshot()
        raw_height = snapshot.get(_HEIGHT)
        if raw_height is None:
            snapshot.close()
            raise StoreError("the store has no height record")
        height = int(struct.unpack(">Q", raw_height)[0])
        root = snapshot.get(_ROOT + _h(height))
        if root is None:
            snapshot.close()
            raise StoreError(f"the store has no state root at height {height}")
        return StateSnapshot(snapshot, height, root)

    def block(self, height: int) -> bytes | None:
        value: bytes | None = self._db.get(_BLOCK + _h(height))
        return value

    def blocks(self, first: int, last: int) -> Iterator[bytes]:
        """The bytes of blocks ``first`` to ``last`` in height order: LevelDB's own
        iterator, so that ``tuple(store.blocks(...))`` reads them without Python code
        (a reading thread then leaves the interpreter to the node's loop)."""
        stop = _BLOCK + _h(last + 1)
        found: Iterator[bytes] = self._db.iterator(
            start=_BLOCK + _h(first), stop=stop, include_key=False
        )
        return found

    def certificate(self, height: int) -> bytes | None:
        value: bytes | None = self._db.get(_CERT + _h(height))
        return value

    def state_root(self, height: int) -> bytes | None:
        value: bytes | None = self._db.get(_ROOT + _h(height))
        return value

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        raw = self._db.get(_TX + tx_id)
        if raw is None:
            return None
        height, index = struct.unpack(">QI", raw)
        return int(height), int(index)

    def local_get(self, key: bytes) -> bytes | None:
        """A node-local record (the ``l/`` table, outside the ledger's state)."""
        value: bytes | None = self._db.get(_LOCAL + key)
        return value

    def local_items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Node-local records under ``prefix``, in key order."""
        start = len(_LOCAL)
        for key, value in self._db.iterator(prefix=_LOCAL + prefix):
            yield key[start:], value

    @contextmanager
    def records_snapshot(self) -> Iterator[tuple[int, Iterator[tuple[bytes, bytes]]]]:
        """Every record as of one instant (a LevelDB snapshot), with the height then: a
        consistent copy while blocks go on being committed (``node.run.backup``)."""
        snapshot = self._db.snapshot()
        try:
            raw = snapshot.get(_HEIGHT)
            if raw is None:
                raise StoreError("the store has no height record")
            yield int(struct.unpack(">Q", raw)[0]), snapshot.iterator()
        finally:
            snapshot.close()

    @classmethod
    def load_records(
        cls, path: Path, records: Iterable[tuple[bytes, bytes]], batch_records: int
    ) -> None:
        """Create a new store at ``path`` holding ``records`` (from ``snapshot``); synced."""
        try:
            db = plyvel.DB(str(path), create_if_missing=True, error_if_exists=True)
        except plyvel.Error as exc:
            raise StoreError(f"cannot create a store at {path}: {exc}") from None
        try:
            pending = 0
            batch = db.write_batch(sync=True)
            for key, value in records:
                batch.put(key, value)
                pending += 1
                if pending >= batch_records:
                    batch.write()
                    batch, pending = db.write_batch(sync=True), 0
            batch.write()
        finally:
            db.close()

    # --- writing ----------------------------------------------------------------

    def local_write(self, puts: Mapping[bytes, bytes], deletes: Sequence[bytes] = ()) -> None:
        """Write and delete node-local records in one synced batch."""
        with self._db.write_batch(sync=True) as batch:
            for key in deletes:
                batch.delete(_LOCAL + key)
            for key, value in puts.items():
                batch.put(_LOCAL + key, value)

    def write_genesis_state(self, items: Mapping[bytes, bytes], root: bytes) -> None:
        """Write the height-0 state once, in one synced batch."""
        if self.height() != 0 or self.state_root(0) is not None:
            raise StoreError("genesis state is already written")
        with self._db.write_batch(sync=True) as batch:
            for key, value in items.items():
                batch.put(_STATE + key, value)
            batch.put(_ROOT + _h(0), root)

    def write_synced_state(
        self,
        height: int,
        items: Iterable[tuple[bytes, bytes]],
        state_root: bytes,
        block: bytes,
        certificate: bytes,
    ) -> None:
        """Start this new, empty store at ``height`` with a state checked elsewhere against
        the certified ``block`` (state sync): one synced batch, blocks follow from
        ``height + 1``. Nothing before ``height`` is held (``base_height``)."""
        if height < 1 or self.height() != 0 or self.state_root(0) is not None:
            raise StoreError("state sync needs a new, empty store")
        with self._db.write_batch(sync=True) as batch:
            for key, value in items:
                batch.put(_STATE + key, value)
            batch.put(_BLOCK + _h(height), block)
            batch.put(_CERT + _h(height), certificate)
            batch.put(_ROOT + _h(height), state_root)
            batch.put(_BASE, _h(height))
            batch.put(_HEIGHT, _h(height))

    def commit_block(
        self,
        height: int,
        block: bytes,
        certificate: bytes,
        state_root: bytes,
        writes: Mapping[bytes, bytes | None],
        tx_ids: Sequence[bytes],
    ) -> None:
        """Persist one block and its effects atomically and durably."""
        if height != self.height() + 1:
            raise StoreError(f"block {height} does not follow {self.height()}")
        with self._db.write_batch(sync=True) as batch:
            for key, value in writes.items():
                if value is None:
                    batch.delete(_STATE + key)
                else:
                    batch.put(_STATE + key, value)
            for index, tx_id in enumerate(tx_ids):
                batch.put(_TX + tx_id, struct.pack(">QI", height, index))
            batch.put(_BLOCK + _h(height), block)
            batch.put(_CERT + _h(height), certificate)
            batch.put(_ROOT + _h(height), state_root)
            batch.put(_HEIGHT, _h(height))
