"""The authenticated ledger state: a sparse Merkle tree over the key-value map, pure.

Owns the state root that every block header commits to, its incremental
update (stage the writes of a proposed block, apply the one that is decided)
and the proofs of presence or absence that a client checks against a root.

The shape is protocol (3); docs/protocol.md says why this design:

- a key's *path* is ``sha256(key)``: 256 bits that no one can steer, so no
  one can crowd a part of the tree by grinding keys.
- a binary tree of depth 256 indexed by the path, with *compressed leaves*
  (as in Diem's and Aptos' Jellyfish Merkle tree): a subtree that holds one
  entry is that entry's leaf, placed at the shallowest depth where its path
  prefix is alone; an empty subtree is ``EMPTY_HASH`` (32 zero bytes).
- leaf: ``sha256(0x04 || path || sha256(value))``.
- inner node: ``sha256(0x05 || left || right)``; the root is the node at
  depth 0 (``EMPTY_HASH`` when the map is empty).
- a proof is the sibling hashes from the root down to where the key's path
  ends (an empty subtree, or a leaf: the key's own, or another key's whose
  path shares the prefix) and that leaf. One format for presence and absence;
  about ``log2(n)`` siblings, ``EMPTY_HASH`` ones left out on the wire.

Storage is one dict from a position (``(1 << depth) | prefix``: the root is 1,
the children of ``p`` are ``2p`` and ``2p + 1``) to its entry: an inner node
holds its hash preimage (``0x05``, left, right: 65 bytes), a leaf
``path || value hash`` (64 bytes). Nothing is stored below a leaf or an empty
position. Staging a block's writes is one batch: the writes are sorted by
path and the touched positions are rehashed once each, bottom up, into a
change set; applying swaps the changes in. Entries are immutable bytes, so
staged updates share the tree safely.

Imports only ``node.crypto`` and ``node.codec``; no I/O.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final

from node import codec
from node.crypto import HASH_BYTES, Digest

KEY_BYTES_MAX: Final = 1024
PATH_BITS: Final = 256
PROOF_VERSION: Final = 2
# A proof holds at most 256 siblings and one leaf: about 8.3 KiB.
PROOF_BYTES_MAX: Final = 16 * 1024
EMPTY_HASH: Final = bytes(HASH_BYTES)

_LEAF_TAG: Final = b"\x04"
_NODE_TAG: Final = b"\x05"
_LEAF_BYTES: Final = 2 * HASH_BYTES  # path || value hash
_NODE_BYTES: Final = 1 + 2 * HASH_BYTES  # 0x05 || left || right
# The same function as ``crypto.digest``, unwrapped for the hot loops.
_sha256: Final = hashlib.sha256
_from_bytes: Final = int.from_bytes

# A subtree as the batch update sees it: (kind, hash, leaf entry, position
# where that leaf entry is stored now, 0 when it is new or moved).
_EMPTY: Final = 0
_LEAF: Final = 1
_INNER: Final = 2
_KEPT: Final = 3  # an untouched, non-empty child: a leaf or an inner node, looked up if needed
_Sub = tuple[int, bytes, bytes, int]
_EMPTY_SUB: Final[_Sub] = (_EMPTY, EMPTY_HASH, b"", 0)


def empty_root() -> Digest:
    """The root of a tree with no entries."""
    return Digest(EMPTY_HASH)


def path_of(key: bytes) -> bytes:
    """Where ``key`` lives: the 256 bits of ``sha256(key)``."""
    _check_key(key)
    return _sha256(key).digest()


def _check_key(key: bytes) -> None:
    if type(key) is not bytes or not 0 < len(key) <= KEY_BYTES_MAX:
        raise ValueError(f"a key is 1..{KEY_BYTES_MAX} bytes")


def _leaf_sub(entry: bytes, stored_at: int) -> _Sub:
    return (_LEAF, _sha256(_LEAF_TAG + entry).digest(), entry, stored_at)


@dataclass(frozen=True, slots=True, eq=False)
class StagedUpdate:
    """The state after a set of writes, computed but not yet made current.

    Valid only against the tree and version it was staged from. Its private
    change set is handed to the tree on ``apply`` and never mutated.
    """

    root: Digest
    _origin: object = field(repr=False)
    _base_version: int = field(repr=False)
    _size: int = field(repr=False)
    _changes: dict[int, bytes | None] = field(repr=False)


@dataclass(frozen=True, slots=True)
class StateProof:
    """Presence or absence of one key under a root.

    ``siblings[d]`` is the hash beside the key's path at depth ``d + 1``, from
    the root down (``EMPTY_HASH`` for an empty subtree). ``leaf`` is the
    ``(path, value hash)`` found where the path ends, None for an empty
    subtree: the key's own leaf shows presence, another's (whose path shares
    the first ``len(siblings)`` bits) or None shows absence.
    """

    siblings: tuple[bytes, ...]
    leaf: tuple[bytes, bytes] | None


class _Batch:
    """One batch update of a tree: sorted writes in, change set out."""

    __slots__ = ("changes", "delta", "nodes", "paths", "pints", "vhs")

    def __init__(
        self,
        nodes: Mapping[int, bytes],
        pints: list[int],
        paths: list[bytes],
        vhs: list[bytes | None],
    ) -> None:
        self.nodes = nodes
        self.pints = pints  # sorted paths as integers
        self.paths = paths
        self.vhs = vhs  # None deletes
        self.changes: dict[int, bytes | None] = {}
        self.delta = 0

    def update(self, position: int, depth: int, lo: int, hi: int) -> _Sub:
        """The subtree at ``position`` after the writes ``lo:hi`` (all below it)."""
        entry = self.nodes.get(position)
        if entry is None or len(entry) == _LEAF_BYTES:
            return self._replace(position, depth, lo, hi, entry)
        pints = self.pints
        right = position << 1 | 1
        boundary = (right ^ (1 << (depth + 1))) << (PATH_BITS - 1 - depth)
        split = bisect_left(pints, boundary, lo, hi)
        if lo < split:
            left_sub = self.update(right - 1, depth + 1, lo, split)
        else:
            left_hash = entry[1:33]
            left_sub = _EMPTY_SUB if left_hash == EMPTY_HASH else (_KEPT, left_hash, b"", 0)
        if split < hi:
            right_sub = self.update(right, depth + 1, split, hi)
        else:
            right_hash = entry[33:]
            right_sub = _EMPTY_SUB if right_hash == EMPTY_HASH else (_KEPT, right_hash, b"", 0)
        sub = self._join(position, left_sub, right_sub)
        if sub[0] != _INNER:
            self.changes[position] = None
        return sub

    def _replace(self, position: int, depth: int, lo: int, hi: int, leaf: bytes | None) -> _Sub:
        """Rebuild an empty or one-leaf subtree with the writes ``lo:hi``."""
        pints, paths, vhs = self.pints, self.paths, self.vhs
        new_pints: list[int] = []
        new_paths: list[bytes] = []
        new_vhs: list[bytes | None] = []
        kept = leaf
        for index in range(lo, hi):
            path, vh = paths[index], vhs[index]
            if kept is not None and path == kept[:HASH_BYTES]:
                kept = None  # overwritten or deleted
            if vh is not None:
                new_pints.append(pints[index])
                new_paths.append(path)
                new_vhs.append(vh)
        if leaf is not None:
            self.changes[position] = None
            self.delta -= 1
            if kept is not None:
                at = bisect_left(new_paths, kept[:HASH_BYTES])
                new_pints.insert(at, _from_bytes(kept[:HASH_BYTES], "big"))
                new_paths.insert(at, kept[:HASH_BYTES])
                new_vhs.insert(at, kept[HASH_BYTES:])
        self.delta += len(new_paths)
        return self.build(position, depth, new_pints, new_paths, new_vhs, 0, len(new_paths))

    def build(
        self,
        position: int,
        depth: int,
        pints: list[int],
        paths: list[bytes],
        vhs: list[bytes | None],
        lo: int,
        hi: int,
    ) -> _Sub:
        """A new subtree holding the leaves ``lo:hi`` (sorted, values present)."""
        if hi - lo == 1:
            vh = vhs[lo]
            assert vh is not None
            return _leaf_sub(paths[lo] + vh, 0)
        if lo == hi:
            return _EMPTY_SUB
        right = position << 1 | 1
        boundary = (right ^ (1 << (depth + 1))) << (PATH_BITS - 1 - depth)
        split = bisect_left(pints, boundary, lo, hi)
        left_sub = self.build(right - 1, depth + 1, pints, paths, vhs, lo, split)
        right_sub = self.build(right, depth + 1, pints, paths, vhs, split, hi)
        return self._join(position, left_sub, right_sub)

    def _join(self, position: int, left: _Sub, right: _Sub) -> _Sub:
        """The node at ``position`` over two subtrees, recording what to store."""
        changes = self.changes
        left_kind, right_kind = left[0], right[0]
        if _EMPTY in (left_kind, right_kind):
            other = right if left_kind == _EMPTY else left
            if other[0] == _KEPT:  # is the untouched child a leaf that must move up?
                at = position << 1 | (left_kind == _EMPTY)
                entry = self.nodes[at]
                if len(entry) == _LEAF_BYTES:
                    other = (_LEAF, other[1], entry, at)
            if other[0] == _EMPTY or other[0] == _LEAF:  # empty, or one leaf that moves up here
                if other[3]:
                    changes[other[3]] = None
                return other if other[0] == _EMPTY else (_LEAF, other[1], other[2], 0)
        preimage = b"".join((_NODE_TAG, left[1], right[1]))
        changes[position] = preimage
        if left_kind == _LEAF and not left[3]:
            changes[position << 1] = left[2]
        if right_kind == _LEAF and not right[3]:
            changes[position << 1 | 1] = right[2]
        return (_INNER, _sha256(preimage).digest(), b"", 0)


class StateTree:
    """The ledger state as key -> value hash, with its root kept current."""

    __slots__ = ("_nodes", "_origin", "_root", "_size", "_version")

    def __init__(self) -> None:
        self._nodes: dict[int, bytes] = {}
        self._root = Digest(EMPTY_HASH)
        self._size = 0
        self._version = 0
        self._origin = object()

    @classmethod
    def from_items(cls, items: Iterable[tuple[bytes, bytes]]) -> StateTree:
        """A tree holding ``items`` (unique keys, non-empty values)."""
        tree = cls()
        rows: list[tuple[int, bytes, bytes]] = []
        sha256 = _sha256
        for key, value in items:
            if type(key) is not bytes or not 0 < len(key) <= KEY_BYTES_MAX:
                raise ValueError(f"a key is 1..{KEY_BYTES_MAX} bytes")
            if type(value) is not bytes or not value:
                raise ValueError("a value is non-empty bytes")
            path = sha256(key).digest()
            rows.append((_from_bytes(path, "big"), path, sha256(value).digest()))
        rows.sort()
        pints = [row[0] for row in rows]
        if any(a == b for a, b in pairwise(pints)):
            raise ValueError("duplicate key in items")
        paths = [row[1] for row in rows]
        vhs: list[bytes | None] = [row[2] for row in rows]
        del rows
        tree.apply(tree._stage_sorted(pints, paths, vhs))
        return tree

    def __len__(self) -> int:
        return self._size

    def root(self) -> Digest:
        return self._root

    def stage(self, writes: Mapping[bytes, bytes | None]) -> StagedUpdate:
        """The state after ``writes`` (None deletes), leaving the tree unchanged."""
        rows: list[tuple[int, bytes, bytes | None]] = []
        sha256 = _sha256
        for key, value in writes.items():
            if type(key) is not bytes or not 0 < len(key) <= KEY_BYTES_MAX:
                raise ValueError(f"a key is 1..{KEY_BYTES_MAX} bytes")
            if value is None:
                vh = None
            elif type(value) is bytes and value:
                vh = sha256(value).digest()
            else:
                raise ValueError("a value is non-empty bytes (write None to delete)")
            path = sha256(key).digest()
            rows.append((_from_bytes(path, "big"), path, vh))
        rows.sort(key=_first)
        return self._stage_sorted(
            [row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows]
        )

    def _stage_sorted(
        self, pints: list[int], paths: list[bytes], vhs: list[bytes | None]
    ) -> StagedUpdate:
        if not pints:
            return StagedUpdate(self._root, self._origin, self._version, self._size, {})
        batch = _Batch(self._nodes, pints, paths, vhs)
        sub = batch.update(1, 0, 0, len(pints))
        if sub[0] == _LEAF and sub[3] != 1:
            batch.changes[1] = sub[2]
        return StagedUpdate(
            Digest(sub[1]), self._origin, self._version, self._size + batch.delta, batch.changes
        )

    def apply(self, staged: StagedUpdate) -> Digest:
        """Make ``staged`` current. Raises ValueError if the tree changed since."""
        if staged._origin is not self._origin or staged._base_version != self._version:
            raise ValueError("stale staged update: the tree changed since it was staged")
        nodes = self._nodes
        for position, entry in staged._changes.items():
            if entry is None:
                nodes.pop(position, None)
            else:
                nodes[position] = entry
        self._root = staged.root
        self._size = staged._size
        self._version += 1
        return self._root

    def update(self, writes: Mapping[bytes, bytes | None]) -> Digest:
        """Stage and apply ``writes`` at once."""
        return self.apply(self.stage(writes))

    def prove(self, key: bytes) -> StateProof:
        """Proof of ``key``'s value, or of its absence, against ``root()``."""
        path = path_of(key)
        bits = _from_bytes(path, "big")
        nodes = self._nodes
        siblings: list[bytes] = []
        position, depth = 1, 0
        entry = nodes.get(1)
        while entry is not None and len(entry) == _NODE_BYTES:
            if (bits >> (PATH_BITS - 1 - depth)) & 1:
                siblings.append(entry[1:33])
                position = position << 1 | 1
            else:
                siblings.append(entry[33:])
                position <<= 1
            depth += 1
            entry = nodes.get(position)
        leaf = None if entry is None else (entry[:HASH_BYTES], entry[HASH_BYTES:])
        return StateProof(tuple(siblings), leaf)


def _first(row: tuple[int, bytes, bytes | None]) -> int:
    return row[0]


# --- proofs ---------------------------------------------------------------


def verify_state_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    """True when ``proof`` shows ``key`` holds ``value`` (None: is absent) under ``root``.

    Never raises: anything malformed is simply not a proof.
    """
    if not (_is_digest(root) and _is_key(key) and _is_value_or_none(value)):
        return False
    if not (isinstance(proof, StateProof) and _is_well_formed(proof)):
        return False
    path = _sha256(key).digest()
    bits = _from_bytes(path, "big")
    depth = len(proof.siblings)
    if proof.leaf is None:
        if value is not None:
            return False
        node = EMPTY_HASH
    else:
        leaf_path, value_hash = proof.leaf
        if leaf_path == path:
            if value is None or _sha256(value).digest() != value_hash:
                return False
        elif value is not None or (_from_bytes(leaf_path, "big") ^ bits) >> (PATH_BITS - depth):
            return False  # a value is claimed, or the other leaf is not on this path
        node = _sha256(b"".join((_LEAF_TAG, leaf_path, value_hash))).digest()
    for at in range(depth - 1, -1, -1):
        sibling = proof.siblings[at]
        if (bits >> (PATH_BITS - 1 - at)) & 1:
            node = _sha256(b"".join((_NODE_TAG, sibling, node))).digest()
        else:
            node = _sha256(b"".join((_NODE_TAG, node, sibling))).digest()
    return node == root


def _is_digest(value: object) -> bool:
    return type(value) is bytes and len(value) == HASH_BYTES


def _is_key(value: object) -> bool:
    return type(value) is bytes and 0 < len(value) <= KEY_BYTES_MAX


def _is_value_or_none(value: object) -> bool:
    return value is None or (type(value) is bytes and len(value) > 0)


def _is_well_formed(proof: StateProof) -> bool:
    """Types and sizes only; the content is checked against the root."""
    siblings, leaf = proof.siblings, proof.leaf
    if type(siblings) is not tuple or len(siblings) > PATH_BITS:
        return False
    if not all(_is_digest(s) for s in siblings):
        return False
    if leaf is None:
        return True
    return type(leaf) is tuple and len(leaf) == 2 and all(_is_digest(h) for h in leaf)


def encode_proof(proof: StateProof) -> bytes:
    """Canonical bytes: ``[2, depth, bitmap, [non-empty siblings], [] | [path, vh]]``.

    Bit ``d`` of ``bitmap`` (most significant first, ``ceil(depth / 8)``
    bytes, zero padding) is set when ``siblings[d]`` is not ``EMPTY_HASH``.
    """
    depth = len(proof.siblings)
    bits = 0
    present: list[codec.Value] = []
    for sibling in proof.siblings:
        bits <<= 1
        if sibling != EMPTY_HASH:
            bits |= 1
            present.append(sibling)
    width = (depth + 7) // 8
    bitmap = (bits << (8 * width - depth)).to_bytes(width, "big")
    leaf: list[codec.Value] = [] if proof.leaf is None else list(proof.leaf)
    return codec.encode([PROOF_VERSION, depth, bitmap, present, leaf])


def decode_proof(data: bytes) -> StateProof:
    """The proof in ``data``. Raises codec.DecodeError on anything malformed."""
    version, depth_v, bitmap_v, present_v, leaf_v = codec.as_list(
        codec.decode(data, PROOF_BYTES_MAX), 5
    )
    codec.as_int(version, PROOF_VERSION, PROOF_VERSION)
    depth = codec.as_int(depth_v, 0, PATH_BITS)
    width = (depth + 7) // 8
    bitmap = codec.as_bytes(bitmap_v, width)
    bits = _from_bytes(bitmap, "big")
    padding = 8 * width - depth
    if bits & ((1 << padding) - 1):
        raise codec.DecodeError("the bitmap's padding is not zero")
    bits >>= padding
    if not isinstance(present_v, list) or len(present_v) != bits.bit_count():
        raise codec.DecodeError("the siblings do not match the bitmap")
    present = iter(present_v)
    siblings: list[bytes] = []
    for at in range(depth):
        if (bits >> (depth - 1 - at)) & 1:
            sibling = codec.as_bytes(next(present), HASH_BYTES)
            if sibling == EMPTY_HASH:
                raise codec.DecodeError("an empty sibling belongs in the bitmap")
            siblings.append(sibling)
        else:
            siblings.append(EMPTY_HASH)
    if not isinstance(leaf_v, list) or len(leaf_v) not in (0, 2):
        raise codec.DecodeError("expected a leaf of [] or [path, value hash]")
    leaf = None
    if leaf_v:
        leaf = (codec.as_bytes(leaf_v[0], HASH_BYTES), codec.as_bytes(leaf_v[1], HASH_BYTES))
    return StateProof(tuple(siblings), leaf)
