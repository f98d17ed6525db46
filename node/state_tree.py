"""The authenticated ledger state: a Merkle commitment over the key-value map, pure.

Owns the state root that every block header commits to, its incremental
update (stage the writes of a proposed block, apply the one that is decided)
and the proofs of inclusion or absence that a client checks against a root.

The shape is protocol; never change it:

- ``16**levels`` buckets; key ``k`` lives in bucket ``crc32(k) % 16**levels``.
  Placement only balances the tree: security comes from hashing contents.
- bucket hash: ``sha256(0x02 || u16be(len(k)) || k || sha256(v) || ...)``
  over the bucket's entries in key order (an empty bucket: ``sha256(0x02)``).
- inner node: ``sha256(0x03 || child_0 || ... || child_15)``; the root is the
  single node on top.
- a proof carries the key's whole bucket, so one format shows presence and
  absence alike, plus the 15 sibling hashes of each level from the bottom up.

Storage is sparse, so an empty tree costs nothing at any depth: a dict of
non-empty buckets (key -> value hash), and per height a dict from the
position of each non-empty inner node to its preimage (``0x03`` and the 16
child hashes, 513 contiguous bytes). Staging copies only the buckets and
preimages it touches; applying swaps them in. Nothing held by the tree is
ever mutated in place, so staged updates share it safely.

Imports only ``node.crypto``, ``node.codec`` and ``node.limits``; no I/O.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

from node import codec
from node.crypto import HASH_BYTES, Digest
from node.limits import STATE_TREE_LEVELS

KEY_BYTES_MAX: Final = 1024
LEVELS_MIN: Final = 1
LEVELS_MAX: Final = 7
ARITY: Final = 16
SIBLINGS: Final = ARITY - 1
PROOF_VERSION: Final = 1
# Belongs in node.limits (not this module's file to edit). A bucket holds a
# handful of entries when keys are spread, so 1 MiB is a very wide margin.
PROOF_BYTES_MAX: Final = 1024 * 1024

_BUCKET_TAG: Final = b"\x02"
_NODE_TAG: Final = b"\x03"
_U16: Final = tuple(n.to_bytes(2, "big") for n in range(KEY_BYTES_MAX + 1))
# The same function as ``crypto.digest``, unwrapped for the hot loops.
_sha256: Final = hashlib.sha256
_crc32: Final = zlib.crc32
_T = TypeVar("_T")
_NO_ENTRIES: Final[dict[bytes, bytes]] = {}  # shared: never mutated


def _empty_hashes() -> tuple[bytes, ...]:
    """Hash of an empty subtree of each height (0: an empty bucket)."""
    hashes = [_sha256(_BUCKET_TAG).digest()]
    for _ in range(LEVELS_MAX):
        hashes.append(_sha256(_NODE_TAG + hashes[-1] * ARITY).digest())
    return tuple(hashes)


EMPTY_HASHES: Final = _empty_hashes()
# Preimage of an empty node at each height (index 0 unused: buckets have none).
_EMPTY_PREIMAGES: Final = (b"", *(_NODE_TAG + h * ARITY for h in EMPTY_HASHES[:LEVELS_MAX]))


def empty_root(levels: int = STATE_TREE_LEVELS) -> Digest:
    """The root of a tree with no entries."""
    _check_levels(levels)
    return Digest(EMPTY_HASHES[levels])


def bucket_of(key: bytes, levels: int = STATE_TREE_LEVELS) -> int:
    """The bucket index of ``key`` in a tree of ``levels`` levels."""
    return _crc32(key) & (_bucket_count(levels) - 1)


def _bucket_count(levels: int) -> int:
    return 1 << (4 * levels)


def _check_levels(levels: int) -> None:
    if type(levels) is not int or not LEVELS_MIN <= levels <= LEVELS_MAX:
        raise ValueError(f"levels must be an integer in {LEVELS_MIN}..{LEVELS_MAX}")


def _check_key(key: bytes) -> None:
    if type(key) is not bytes or not 0 < len(key) <= KEY_BYTES_MAX:
        raise ValueError(f"a key is 1..{KEY_BYTES_MAX} bytes")


def _hash_buckets(
    buckets: Mapping[int, Mapping[bytes, bytes]],
    current: Mapping[int, Mapping[bytes, bytes]],
    size: int,
) -> tuple[dict[int, bytes], tuple[int, ...], int]:
    """Hashes of the new ``buckets``, those now empty, and the new entry count."""
    hashes: dict[int, bytes] = {}
    emptied: list[int] = []
    u16, sha256 = _U16, _sha256
    for index, entries in buckets.items():
        size += len(entries) - len(current.get(index, _NO_ENTRIES))
        if not entries:
            hashes[index] = EMPTY_HASHES[0]
            emptied.append(index)
            continue
        if len(entries) == 1:  # the common case: spread keys, one per bucket
            for key, value_hash in entries.items():
                hashes[index] = sha256(
                    b"".join((_BUCKET_TAG, u16[len(key)], key, value_hash))
                ).digest()
            continue
        parts = [_BUCKET_TAG]
        for key in sorted(entries):
            parts += (u16[len(key)], key, entries[key])
        hashes[index] = sha256(b"".join(parts)).digest()
    return hashes, tuple(emptied), size


@dataclass(frozen=True, slots=True, eq=False)
class _LevelChange:
    """New preimages of the touched nodes of one height, and those now empty."""

    preimages: dict[int, bytearray]
    emptied: tuple[int, ...]


@dataclass(frozen=True, slots=True, eq=False)
class StagedUpdate:
    """The state after a set of writes, computed but not yet made current.

    Valid only against the tree and version it was staged from. Its private
    containers are handed to the tree on ``apply`` and never mutated.
    """

    root: Digest
    _origin: object = field(repr=False)
    _base_version: int = field(repr=False)
    _size: int = field(repr=False)
    _buckets: dict[int, dict[bytes, bytes]] = field(repr=False)
    _emptied: tuple[int, ...] = field(repr=False)
    _heights: tuple[_LevelChange, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class StateProof:
    """Inclusion or absence of one key: its whole bucket, and the path to the root.

    ``entries`` are the bucket's ``(key, sha256(value))`` in key order;
    ``siblings[i]`` are the 15 other child hashes of the node at height
    ``i + 1`` on the path, in position order.
    """

    levels: int
    bucket: int
    entries: tuple[tuple[bytes, bytes], ...]
    siblings: tuple[tuple[bytes, ...], ...]


class StateTree:
    """The ledger state as key -> value hash, with its root kept current."""

    __slots__ = ("_buckets", "_levels", "_mask", "_nodes", "_origin", "_root", "_size", "_version")

    def __init__(self, levels: int = STATE_TREE_LEVELS) -> None:
        _check_levels(levels)
        self._levels = levels
        self._mask = _bucket_count(levels) - 1
        self._buckets: dict[int, dict[bytes, bytes]] = {}
        # _nodes[h - 1]: position at height h -> its preimage 0x03 || 16 child hashes.
        self._nodes: list[dict[int, bytearray]] = [{} for _ in range(levels)]
        self._root = Digest(EMPTY_HASHES[levels])
        self._size = 0
        self._version = 0
        self._origin = object()

    @classmethod
    def from_items(
        cls, items: Iterable[tuple[bytes, bytes]], levels: int = STATE_TREE_LEVELS
    ) -> StateTree:
        """A tree holding ``items`` (unique keys, non-empty values)."""
        tree = cls(levels)
        buckets: dict[int, dict[bytes, bytes]] = {}
        mask, sha256, crc32 = tree._mask, _sha256, _crc32
        for key, value in items:
            if type(key) is not bytes or not 0 < len(key) <= KEY_BYTES_MAX:
                raise ValueError(f"a key is 1..{KEY_BYTES_MAX} bytes")
            if type(value) is not bytes or not value:
                raise ValueError("a value is non-empty bytes")
            index = crc32(key) & mask
            entries = buckets.get(index)
            if entries is None:
                entries = buckets[index] = {}
            elif key in entries:
                raise ValueError("duplicate key in items")
            entries[key] = sha256(value).digest()
        tree.apply(tree._stage_buckets(buckets))
        return tree

    @property
    def levels(self) -> int:
        return self._levels

    def __len__(self) -> int:
        return self._size

    def root(self) -> Digest:
        return self._root

    def stage(self, writes: Mapping[bytes, bytes | None]) -> StagedUpdate:
        """The state after ``writes`` (None deletes), leaving the tree unchanged."""
        # Hot path of every block: checks and hashing are inlined on purpose.
        buckets: dict[int, dict[bytes, bytes]] = {}
        current, mask, sha256, crc32 = self._buckets, self._mask, _sha256, _crc32
        for key, value in writes.items():
            if type(key) is not bytes or not 0 < len(key) <= KEY_BYTES_MAX:
                raise ValueError(f"a key is 1..{KEY_BYTES_MAX} bytes")
            index = crc32(key) & mask
            entries = buckets.get(index)
            if entries is None:
                entries = buckets[index] = current.get(index, _NO_ENTRIES).copy()
            if value is None:
                entries.pop(key, None)
            elif type(value) is bytes and value:
                entries[key] = sha256(value).digest()
            else:
                raise ValueError("a value is non-empty bytes (write None to delete)")
        return self._stage_buckets(buckets)

    def apply(self, staged: StagedUpdate) -> Digest:
        """Make ``staged`` current. Raises ValueError if the tree changed since."""
        if staged._origin is not self._origin or staged._base_version != self._version:
            raise ValueError("stale staged update: the tree changed since it was staged")
        _swap_in(self._buckets, staged._buckets, staged._emptied)
        for nodes, change in zip(self._nodes, staged._heights, strict=True):
            _swap_in(nodes, change.preimages, change.emptied)
        self._root = staged.root
        self._size = staged._size
        self._version += 1
        return self._root

    def update(self, writes: Mapping[bytes, bytes | None]) -> Digest:
        """Stage and apply ``writes`` at once."""
        return self.apply(self.stage(writes))

    def prove(self, key: bytes) -> StateProof:
        """Proof of ``key``'s value, or of its absence, against ``root()``."""
        _check_key(key)
        index = _crc32(key) & self._mask
        entries = tuple(sorted(self._buckets.get(index, _NO_ENTRIES).items()))
        siblings: list[tuple[bytes, ...]] = []
        position = index
        for height, nodes in enumerate(self._nodes, start=1):
            parent, slot = position >> 4, position & 15
            preimage = nodes.get(parent, _EMPTY_PREIMAGES[height])
            siblings.append(_siblings(preimage, slot))
            position = parent
        return StateProof(self._levels, index, entries, tuple(siblings))

    def _stage_buckets(self, buckets: dict[int, dict[bytes, bytes]]) -> StagedUpdate:
        """Rehash the given new bucket contents and every node above them."""
        dirty, emptied, size = _hash_buckets(buckets, self._buckets, self._size)
        changes: list[_LevelChange] = []
        below = emptied
        for height, nodes in enumerate(self._nodes, start=1):
            change, dirty = _rehash_height(nodes, dirty, below, height)
            changes.append(change)
            below = change.emptied
        root = Digest(dirty[0]) if dirty else self._root
        return StagedUpdate(
            root, self._origin, self._version, size, buckets, emptied, tuple(changes)
        )


def _rehash_height(
    nodes: Mapping[int, bytearray],
    dirty: Mapping[int, bytes],
    emptied_below: Sequence[int],
    height: int,
) -> tuple[_LevelChange, dict[int, bytes]]:
    """New preimages and hashes of the nodes at ``height`` above ``dirty`` children."""
    preimages: dict[int, bytearray] = {}
    empty_preimage = _EMPTY_PREIMAGES[height]
    for position, child_hash in dirty.items():
        parent = position >> 4
        preimage = preimages.get(parent)
        if preimage is None:
            preimage = preimages[parent] = bytearray(nodes.get(parent, empty_preimage))
        offset = 1 + (position & 15) * HASH_BYTES
        preimage[offset : offset + HASH_BYTES] = child_hash
    hashes = {parent: _sha256(preimage).digest() for parent, preimage in preimages.items()}
    empty_self = EMPTY_HASHES[height]
    emptied = tuple(p for p in {c >> 4 for c in emptied_below} if hashes[p] == empty_self)
    return _LevelChange(preimages, emptied), hashes


def _siblings(preimage: bytes | bytearray, slot: int) -> tuple[bytes, ...]:
    """The child hashes in a node's preimage, but the one at ``slot``."""
    offsets = (1 + i * HASH_BYTES for i in range(ARITY) if i != slot)
    return tuple(bytes(preimage[at : at + HASH_BYTES]) for at in offsets)


def _swap_in(store: dict[int, _T], changed: Mapping[int, _T], emptied: Iterable[int]) -> None:
    """Install ``changed``, then drop the positions that became empty."""
    store.update(changed)
    for position in emptied:
        del store[position]


# --- proofs ---------------------------------------------------------------


def verify_state_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    """True when ``proof`` shows ``key`` holds ``value`` (None: is absent) under ``root``.

    Never raises: anything malformed is simply not a proof.
    """
    if not (_is_digest(root) and _is_key(key) and _is_value_or_none(value)):
        return False
    if not (isinstance(proof, StateProof) and _is_well_formed(proof)):
        return False
    if bucket_of(key, proof.levels) != proof.bucket:
        return False
    found = _entry_value_hash(proof, key)
    if found is None:  # the entries are not a valid bucket
        return False
    expected = b"" if value is None else _sha256(value).digest()
    if found != expected:
        return False
    return _climb(_sorted_entries_hash(proof.entries), proof) == root


def _is_digest(value: object) -> bool:
    return type(value) is bytes and len(value) == HASH_BYTES


def _is_key(value: object) -> bool:
    return type(value) is bytes and 0 < len(value) <= KEY_BYTES_MAX


def _is_value_or_none(value: object) -> bool:
    return value is None or (type(value) is bytes and len(value) > 0)


def _is_well_formed(proof: StateProof) -> bool:
    """Types and sizes only; the content is checked against the root."""
    levels, bucket = proof.levels, proof.bucket
    if type(levels) is not int or not LEVELS_MIN <= levels <= LEVELS_MAX:
        return False
    if type(bucket) is not int or not 0 <= bucket < _bucket_count(levels):
        return False
    if type(proof.entries) is not tuple or type(proof.siblings) is not tuple:
        return False
    if not all(type(e) is tuple and len(e) == 2 for e in proof.entries):
        return False
    if not all(_is_key(k) and _is_digest(vh) for k, vh in proof.entries):
        return False
    if len(proof.siblings) != levels:
        return False
    return all(
        type(level) is tuple and len(level) == SIBLINGS and all(_is_digest(h) for h in level)
        for level in proof.siblings
    )


def _entry_value_hash(proof: StateProof, key: bytes) -> bytes | None:
    """``key``'s value hash in the proof's bucket (b"" when absent).

    None when the entries are not strictly sorted or one belongs elsewhere.
    """
    found = b""
    previous = b""
    for entry_key, value_hash in proof.entries:
        if entry_key <= previous or bucket_of(entry_key, proof.levels) != proof.bucket:
            return None
        if entry_key == key:
            found = value_hash
        previous = entry_key
    return found


def _sorted_entries_hash(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    parts = [_BUCKET_TAG]
    for key, value_hash in entries:
        parts += (_U16[len(key)], key, value_hash)
    return _sha256(b"".join(parts)).digest()


def _climb(bucket_hash: bytes, proof: StateProof) -> bytes:
    node = bucket_hash
    position = proof.bucket
    for level in proof.siblings:
        slot = position & 15
        node = _sha256(_NODE_TAG + b"".join((*level[:slot], node, *level[slot:]))).digest()
        position >>= 4
    return node


def encode_proof(proof: StateProof) -> bytes:
    """Canonical bytes: ``[1, levels, bucket, [[key, vh], ...], [[s0..s14], ...]]``."""
    entries: list[codec.Value] = [[key, value_hash] for key, value_hash in proof.entries]
    siblings: list[codec.Value] = [list(level) for level in proof.siblings]
    return codec.encode([PROOF_VERSION, proof.levels, proof.bucket, entries, siblings])


def decode_proof(data: bytes) -> StateProof:
    """The proof in ``data``. Raises codec.DecodeError on anything malformed."""
    version, levels_v, bucket_v, entries_v, siblings_v = codec.as_list(
        codec.decode(data, PROOF_BYTES_MAX), 5
    )
    codec.as_int(version, PROOF_VERSION, PROOF_VERSION)
    levels = codec.as_int(levels_v, LEVELS_MIN, LEVELS_MAX)
    bucket = codec.as_int(bucket_v, 0, _bucket_count(levels) - 1)
    if not isinstance(entries_v, list):
        raise codec.DecodeError("expected a list of entries")
    entries = tuple(_decode_entry(entry) for entry in entries_v)
    siblings = tuple(
        tuple(codec.as_bytes(h, HASH_BYTES) for h in codec.as_list(level, SIBLINGS))
        for level in codec.as_list(siblings_v, levels)
    )
    return StateProof(levels, bucket, entries, siblings)


def _decode_entry(value: codec.Value) -> tuple[bytes, bytes]:
    key, value_hash = codec.as_list(value, 2)
    if not isinstance(key, bytes) or not 0 < len(key) <= KEY_BYTES_MAX:
        raise codec.DecodeError(f"expected a key of 1..{KEY_BYTES_MAX} bytes")
    return key, codec.as_bytes(value_hash, HASH_BYTES)
