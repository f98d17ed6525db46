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

Storage is not protocol; it is chosen for memory (a node holds a million
holders in memory). The tree is cut at a *bucket depth* ``K`` that follows the
size (two to four entries a bucket when laid out, ``K`` grows when the mean
passes eight): below ``K`` nothing is stored but each bucket's entries
(``path || value hash``, 64 bytes each, sorted, in one bytes object) and
those few subtrees are rehashed when written; above ``K`` a dict holds each
inner node's hash preimage (``0x05 || left || right``, 65 bytes) or, where a
subtree holds a single entry, that entry (``path || value hash``, 64 bytes). Staging
a block's writes is one batch: the touched buckets are rebuilt (one pass over
each bucket's sorted entries), each bucket's root climbs alone to where its
path meets another touched bucket's, and only those meeting points (and the
rare empty or one-leaf subtrees) are rehashed level by level, bottom up, into
change sets that ``apply`` installs. Every node is hashed once, as before; the
Python around each hash is what this layout keeps small. Entries are immutable
bytes, so staged updates share the tree.

Imports only ``node.protocol.crypto`` and ``node.protocol.codec``; no I/O.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final

from node.protocol import codec
from node.protocol.crypto import HASH_BYTES, Digest

KEY_BYTES_MAX: Final = 1024
PATH_BITS: Final = 256
PROOF_VERSION: Final = 2
# A proof holds at most 256 siblings and one leaf: about 8.3 KiB.
PROOF_BYTES_MAX: Final = 16 * 1024
EMPTY_HASH: Final = bytes(HASH_BYTES)

_LEAF_TAG: Final = b"\x04"
_NODE_TAG: Final = b"\x05"
_ENTRY: Final = 2 * HASH_BYTES  # path || value hash, in a bucket
_INNER_BYTES: Final = 1 + 2 * HASH_BYTES  # 0x05 || left || right: its hash preimage
# Bucket depth: laid out for 2..4 entries a bucket, deepened when the mean passes
# 8 (a bucket of m entries costs about 2m hashes and calls per write). Measured at
# 1,000,000 entries: 227 MB resident at 8 a bucket, 280 MB at 4, 416 MB at 2; 16 %
# more time per write at 8 than at 2.
BUCKET_DEPTH_MIN: Final = 4
BUCKET_DEPTH_MAX: Final = 26
_LAYOUT_MEAN: Final = 4
_RELAYOUT_MEAN: Final = 8
# The same function as ``crypto.digest``, unwrapped for the hot loops.
_sha256: Final = hashlib.sha256
_from_bytes: Final = int.from_bytes

# A subtree's summary: (kind, hash, path || value hash when a leaf).
_EMPTY: Final = 0
_LEAF: Final = 1
_INNER: Final = 2
_KEPT: Final = 3  # untouched and not empty: a leaf or an inner node, looked up if needed
_Sub = tuple[int, bytes, bytes]
_EMPTY_SUB: Final[_Sub] = (_EMPTY, EMPTY_HASH, b"")


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


def bucket_depth_for(size: int) -> int:
    """The bucket depth a tree of ``size`` entries is laid out with (storage, not protocol)."""
    depth = max(1, size // _LAYOUT_MEAN).bit_length()
    return min(BUCKET_DEPTH_MAX, max(BUCKET_DEPTH_MIN, depth))


def _subtree(depth: int, entries: list[bytes]) -> _Sub:
    """The summary of the subtree at ``depth`` holding ``entries`` (sorted path || vh).

    One pass over the sorted entries with a stack, no recursion: adjacent sorted
    paths part at the first bit where they differ, and a run of entries closes
    into one node when the next parting is shallower than its own. An inner node
    at depth ``d`` whose parent is shallower than ``d - 1`` is padded up with
    empty siblings; a leaf sits where it is alone and needs no padding.
    """
    count = len(entries)
    if not count:
        return _EMPTY_SUB
    sha256, leaf_tag = _sha256, _LEAF_TAG
    if count == 1:
        return (_LEAF, sha256(leaf_tag + entries[0]).digest(), entries[0])
    tag, from_bytes = _NODE_TAG, _from_bytes
    if count == 2:  # the commonest bucket: no stack
        first, second = entries
        bits = from_bytes(first[:HASH_BYTES], "big")
        split = PATH_BITS - (bits ^ from_bytes(second[:HASH_BYTES], "big")).bit_length()
        node = sha256(
            tag + sha256(leaf_tag + first).digest() + sha256(leaf_tag + second).digest()
        ).digest()
        return (_INNER, _padded(node, bits, split, depth), b"")
    # The subtree being closed (hash, depth of its node, -1 for a leaf; a path in
    # it as an int; the parting to its left) and, on a stack, those to its left.
    stack: list[tuple[int, bytes, int, int]] = []
    first = entries[0]
    bits = from_bytes(first[:HASH_BYTES], "big")
    node, node_depth, node_bits, left = sha256(leaf_tag + first).digest(), -1, bits, -1
    previous = bits
    for at in range(1, count + 1):
        if at < count:
            entry = entries[at]
            bits = from_bytes(entry[:HASH_BYTES], "big")
            parting = PATH_BITS - (previous ^ bits).bit_length()
            previous = bits
        else:
            parting = -1  # close everything
        while left > parting:  # ``node`` joins its left neighbour under their node at ``left``
            other_left, other, other_depth, other_bits = stack.pop()
            if node_depth > left + 1:  # an inner node below a gap: pad it to ``left + 1``
                node = _padded(node, node_bits, node_depth, left + 1)
            if other_depth > left + 1:
                other = _padded(other, other_bits, other_depth, left + 1)
            node = sha256(tag + other + node).digest()
            node_depth, node_bits, left = left, other_bits, other_left
        if at < count:
            stack.append((left, node, node_depth, node_bits))
            node, node_depth, node_bits, left = (
                sha256(leaf_tag + entry).digest(),
                -1,
                bits,
                parting,
            )
    return (_INNER, _padded(node, node_bits, node_depth, depth), b"")


def _padded(node: bytes, bits: int, node_depth: int, depth: int) -> bytes:
    """The hash at ``depth`` above the inner node ``node`` at ``node_depth`` on path
    ``bits``, every subtree beside it empty."""
    sha256, tag, empty = _sha256, _NODE_TAG, EMPTY_HASH
    for level in range(node_depth - 1, depth - 1, -1):
        if (bits >> (PATH_BITS - 1 - level)) & 1:
            node = sha256(tag + empty + node).digest()
        else:
            node = sha256(tag + node + empty).digest()
    return node


def _split_entries(blob: bytes) -> list[bytes]:
    return [blob[at : at + _ENTRY] for at in range(0, len(blob), _ENTRY)]


@dataclass(frozen=True, slots=True, eq=False)
class StagedUpdate:
    """The state after a set of writes, computed but not yet made current.

    Valid only against the tree and version it was staged from. Its private
    change sets are handed to the tree on ``apply`` and never mutated.
    """

    root: Digest
    _origin: object = field(repr=False)
    _base_version: int = field(repr=False)
    _size: int = field(repr=False)
    _buckets: dict[int, bytes] = field(repr=False)  # b"": now empty
    _top: dict[int, bytes | None] = field(repr=False)  # None: now absent


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


class StateTree:
    """The ledger state as key -> value hash, with its root kept current."""

    __slots__ = ("_buckets", "_depth", "_origin", "_root", "_size", "_top", "_version")

    def __init__(self, bucket_depth: int = BUCKET_DEPTH_MIN) -> None:
        if type(bucket_depth) is not int or not (
            BUCKET_DEPTH_MIN <= bucket_depth <= BUCKET_DEPTH_MAX
        ):
            raise ValueError(f"bucket_depth is {BUCKET_DEPTH_MIN}..{BUCKET_DEPTH_MAX}")
        self._depth = bucket_depth
        self._buckets: dict[int, bytes] = {}  # prefix of K bits -> sorted entries
        self._top: dict[int, bytes] = {}  # position above K -> 65 (inner) or 64 (leaf) bytes
        self._root = Digest(EMPTY_HASH)
        self._size = 0
        self._version = 0
        self._origin = object()

    @classmethod
    def from_items(
        cls, items: Iterable[tuple[bytes, bytes]], bucket_depth: int | None = None
    ) -> StateTree:
        """A tree holding ``items`` (unique keys, non-empty values).

        ``bucket_depth`` chooses the storage layout (tests); the root does not
        depend on it.
        """
        entries: list[bytes] = []
        sha256 = _sha256
        for key, value in items:
            if type(key) is not bytes or not 0 < len(key) <= KEY_BYTES_MAX:
                raise ValueError(f"a key is 1..{KEY_BYTES_MAX} bytes")
            if type(value) is not bytes or not value:
                raise ValueError("a value is non-empty bytes")
            entries.append(sha256(key).digest() + sha256(value).digest())
        entries.sort()
        if any(a[:HASH_BYTES] == b[:HASH_BYTES] for a, b in pairwise(entries)):
            raise ValueError("duplicate key in items")
        depth = bucket_depth_for(len(entries)) if bucket_depth is None else bucket_depth
        tree = cls(depth)
        blob = b"".join(entries)
        del entries  # freed before the tree's own objects are made (memory, not speed)
        tree._load(blob)
        return tree

    def _load(self, blob: bytes) -> None:
        """Lay out ``blob`` (sorted path || vh entries, the whole content) afresh.

        Works from one bytes object, not an object an entry, and drops the old
        layout first: the tree's many small objects are then allocated where
        nothing else lives, and the process's memory after a (re)load is the
        tree's own.
        """
        self._buckets, self._top = {}, {}
        self._root, self._size = Digest(EMPTY_HASH), 0
        cut = 64 - self._depth
        buckets: dict[int, bytes] = {}
        start, current = 0, -1
        for at in range(0, len(blob), _ENTRY):
            prefix = _from_bytes(blob[at : at + 8], "big") >> cut
            if prefix != current:
                if at > start:
                    buckets[current] = blob[start:at]
                start, current = at, prefix
        if len(blob) > start:
            buckets[current] = blob[start:]
        staged = self._stage_buckets(buckets, len(blob) // _ENTRY)
        self._buckets = buckets
        self._top = {p: entry for p, entry in staged._top.items() if entry is not None}
        self._root, self._size = staged.root, staged._size

    @property
    def bucket_depth(self) -> int:
        return self._depth

    def __len__(self) -> int:
        return self._size

    def root(self) -> Digest:
        return self._root

    def stage(self, writes: Mapping[bytes, bytes | None]) -> StagedUpdate:
        """The state after ``writes`` (None deletes), leaving the tree unchanged."""
        # Hot path of every block: checks and hashing are inlined on purpose.
        by_bucket: dict[int, dict[bytes, bytes | None]] = {}
        cut = 64 - self._depth
        sha256 = _sha256
        for key, value in writes.items():
            if type(key) is not bytes or not 0 < len(key) <= KEY_BYTES_MAX:
                raise ValueError(f"a key is 1..{KEY_BYTES_MAX} bytes")
            if value is None:
                value_hash = None
            elif type(value) is bytes and value:
                value_hash = sha256(value).digest()
            else:
                raise ValueError("a value is non-empty bytes (write None to delete)")
            path = sha256(key).digest()
            prefix = _from_bytes(path[:8], "big") >> cut
            bucket_writes = by_bucket.get(prefix)
            if bucket_writes is None:
                bucket_writes = by_bucket[prefix] = {}
            bucket_writes[path] = value_hash
        current = self._buckets
        buckets: dict[int, bytes] = {}
        sorted_entries: dict[int, list[bytes]] = {}
        delta = 0
        for prefix, bucket_writes in by_bucket.items():
            blob = current.get(prefix, b"")
            if len(bucket_writes) == 1:  # the common case in a large tree: no dict, no sort
                ((path, value_hash),) = bucket_writes.items()
                joined = [blob[at : at + _ENTRY] for at in range(0, len(blob), _ENTRY)]
                at = bisect_left(joined, path)  # a path sorts before its own entry
                found = at < len(joined) and joined[at].startswith(path)
                if value_hash is not None:
                    if found:
                        joined[at] = path + value_hash
                    else:
                        joined.insert(at, path + value_hash)
                        delta += 1
                elif found:
                    del joined[at]
                    delta -= 1
                sorted_entries[prefix] = joined
                buckets[prefix] = b"".join(joined)
                continue
            entries = {
                blob[at : at + HASH_BYTES]: blob[at + HASH_BYTES : at + _ENTRY]
                for at in range(0, len(blob), _ENTRY)
            }
            before = len(entries)
            for path, value_hash in bucket_writes.items():
                if value_hash is None:
                    entries.pop(path, None)
                else:
                    entries[path] = value_hash
            delta += len(entries) - before
            joined = [path + entries[path] for path in sorted(entries)]
            sorted_entries[prefix] = joined
            buckets[prefix] = b"".join(joined)
        return self._stage_buckets(buckets, self._size + delta, sorted_entries)

    def _stage_buckets(
        self,
        buckets: dict[int, bytes],
        size: int,
        sorted_entries: Mapping[int, list[bytes]] | None = None,
    ) -> StagedUpdate:
        """Rehash the given new bucket contents and every node above them
        (``sorted_entries``: the same contents already split into entries).

        A bucket whose subtree is inner first climbs alone (``_climb_buckets``).
        Then each level's touched subtrees are kept as ``inner`` (position ->
        hash, the common case) and ``odd`` (position -> summary of an empty
        subtree or a single leaf, which may move up), and ``_level_up`` hashes
        their parents.
        """
        top: dict[int, bytes | None] = {}
        inner, odd, climbed = self._climb_buckets(buckets, sorted_entries, top)
        for level in range(self._depth - 1, -1, -1):
            arrived = climbed.get(level + 1)
            if arrived is not None:
                inner.update(arrived)
            if inner or odd:
                inner, odd = self._level_up(level, inner, odd, top)
        if 0 in climbed:
            inner.update(climbed[0])
        if 1 in inner:
            root = inner[1]
        elif 1 in odd:
            root = odd[1][1]
        else:
            root = self._root
        return StagedUpdate(Digest(root), self._origin, self._version, size, buckets, top)

    def _climb_buckets(
        self,
        buckets: dict[int, bytes],
        sorted_entries: Mapping[int, list[bytes]] | None,
        top: dict[int, bytes | None],
    ) -> tuple[dict[int, bytes], dict[int, _Sub], dict[int, dict[int, bytes]]]:
        """Hash each bucket's subtree; an inner one climbs alone while its parent's
        stored preimage is an inner node and the sibling is untouched: up to just
        below where its path meets the nearest other touched bucket's (its
        neighbours in sorted order). Returns the inner and the odd bucket roots
        that did not climb, and those that did by the depth where they stopped.
        The level loop then only sees where touched paths meet, and the odd cases.
        """
        depth, top_now = self._depth, self._top
        base = 1 << depth
        inner: dict[int, bytes] = {}
        odd: dict[int, _Sub] = {}
        climbed: dict[int, dict[int, bytes]] = {}
        prefixes = sorted(buckets)
        meets = [depth - (a ^ b).bit_length() for a, b in pairwise(prefixes)]
        meets.append(-1)
        sha256, tag = _sha256, _NODE_TAG
        meet_left = -1
        for index, prefix in enumerate(prefixes):
            meet_right = meets[index]
            sub = _subtree(
                depth,
                _split_entries(buckets[prefix])
                if sorted_entries is None
                else sorted_entries[prefix],
            )
            position = base | prefix
            if sub[0] != _INNER:
                odd[position] = sub
                meet_left = meet_right
                continue
            node = sub[1]
            level = depth - 1
            stop = max(meet_left, meet_right)  # the parent stays below this depth
            while level > stop:
                entry = top_now.get(position >> 1)
                if entry is None or len(entry) != _INNER_BYTES:
                    break
                preimage = entry[:33] + node if position & 1 else tag + node + entry[33:]
                position >>= 1
                top[position] = preimage
                node = sha256(preimage).digest()
                level -= 1
            if level == depth - 1:
                inner[position] = node
            else:
                climbed.setdefault(level + 1, {})[position] = node
            meet_left = meet_right
        return inner, odd, climbed

    def _level_up(
        self,
        level: int,
        inner: dict[int, bytes],
        odd: dict[int, _Sub],
        top: dict[int, bytes | None],
    ) -> tuple[dict[int, bytes], dict[int, _Sub]]:
        """The touched nodes at ``level`` from the touched ones below it.

        A parent with no odd child whose untouched child, if any, is read from
        its stored preimage is hashed at once; the others go through ``_join``.
        """
        top_now = self._top
        sha256, tag = _sha256, _NODE_TAG
        up_inner: dict[int, bytes] = {}
        up_odd: dict[int, _Sub] = {}
        parents = {position >> 1 for position in inner}
        if odd:
            parents.update(position >> 1 for position in odd)
        for parent in parents:
            left_pos = parent << 1
            left = inner.get(left_pos)
            right = inner.get(left_pos | 1)
            if left is None or right is None:
                entry = top_now.get(parent)
                if (
                    entry is None
                    or len(entry) != _INNER_BYTES
                    or (odd and (left_pos in odd or left_pos | 1 in odd))
                ):
                    sub = self._join(parent, level, inner, odd, top)
                    if sub[0] == _INNER:
                        up_inner[parent] = sub[1]
                    else:
                        up_odd[parent] = sub
                    continue
                # An untouched child next to a touched inner one: the parent stays inner.
                if left is None:
                    left = entry[1:33]
                if right is None:
                    right = entry[33:]
            preimage = tag + left + right
            top[parent] = preimage
            up_inner[parent] = sha256(preimage).digest()
        return up_inner, up_odd

    def _join(
        self,
        parent: int,
        level: int,
        inner: Mapping[int, bytes],
        odd: Mapping[int, _Sub],
        top: dict[int, bytes | None],
    ) -> _Sub:
        """The summary of ``parent`` (at ``level``) from its children, recording its
        stored form in ``top``: the general case, where a child is empty, a leaf, or
        untouched below a parent that stored no preimage."""
        depth = self._depth
        left_pos = parent << 1
        subs: list[_Sub] = []
        for position in (left_pos, left_pos | 1):
            child_hash = inner.get(position)
            if child_hash is not None:
                subs.append((_INNER, child_hash, b""))
            else:
                found = odd.get(position)
                if found is None:
                    found = self._child(self._top.get(parent), position & 1, position, level)
                subs.append(found)
        left, right = subs
        left_kind, right_kind = left[0], right[0]
        if _EMPTY not in (left_kind, right_kind):
            preimage = b"".join((_NODE_TAG, left[1], right[1]))
            top[parent] = preimage
            if level + 1 < depth:  # a one-entry child above the buckets keeps its leaf
                if left_kind == _LEAF:
                    top[left_pos] = left[2]
                if right_kind == _LEAF:
                    top[left_pos | 1] = right[2]
            return (_INNER, _sha256(preimage).digest(), b"")
        other = right if left_kind == _EMPTY else left
        if other[0] == _KEPT:
            other = self._resolve(other, left_pos | (left_kind == _EMPTY), level + 1)
        if other[0] == _INNER:
            preimage = b"".join((_NODE_TAG, left[1], right[1]))
            top[parent] = preimage
            return (_INNER, _sha256(preimage).digest(), b"")
        # empty, or one leaf that moves up to here
        top[parent] = other[2] if other[0] == _LEAF else None
        if level + 1 < depth:
            top[left_pos] = None
            top[left_pos | 1] = None
        return other

    def _child(self, parent_entry: bytes | None, side: int, position: int, level: int) -> _Sub:
        """An untouched child of the node at ``level`` whose stored entry is ``parent_entry``."""
        if parent_entry is None:
            return self._below_nothing(position, level + 1)
        if len(parent_entry) == _INNER_BYTES:
            child_hash = parent_entry[33:] if side else parent_entry[1:33]
            return _EMPTY_SUB if child_hash == EMPTY_HASH else (_KEPT, child_hash, b"")
        # The parent was one leaf: it is on this side or the other.
        on_this_side = (parent_entry[level >> 3] >> (7 - (level & 7))) & 1 == side
        if not on_this_side:
            return _EMPTY_SUB
        return (_LEAF, _sha256(_LEAF_TAG + parent_entry).digest(), parent_entry)

    def _below_nothing(self, position: int, depth: int) -> _Sub:
        """An untouched child whose parent stores nothing: empty, or the one leaf
        of the nearest stored ancestor when that is a leaf on this child's path."""
        top = self._top
        ancestor = position >> 1
        while ancestor and ancestor not in top:
            ancestor >>= 1
        if not ancestor:
            return _EMPTY_SUB
        entry = top[ancestor]
        if len(entry) == _INNER_BYTES:
            return _EMPTY_SUB
        if _from_bytes(entry[:HASH_BYTES], "big") >> (PATH_BITS - depth) != position ^ (1 << depth):
            return _EMPTY_SUB
        return (_LEAF, _sha256(_LEAF_TAG + entry).digest(), entry)

    def _resolve(self, sub: _Sub, position: int, depth: int) -> _Sub:
        """Whether an untouched, non-empty child is one leaf (it may move up)."""
        if depth < self._depth:
            entry = self._top[position]
            if len(entry) == _INNER_BYTES:
                return (_INNER, sub[1], b"")
            return (_LEAF, sub[1], entry)
        blob = self._buckets[position ^ (1 << depth)]
        if len(blob) == _ENTRY:
            return (_LEAF, sub[1], blob)
        return (_INNER, sub[1], b"")

    def _swap_top(self, changes: Mapping[int, bytes | None]) -> None:
        top = self._top
        top.update(changes)  # type: ignore[arg-type]  # the Nones are removed at once
        gone = [position for position, entry in changes.items() if entry is None]
        for position in gone:
            del top[position]

    def apply(self, staged: StagedUpdate) -> Digest:
        """Make ``staged`` current. Raises ValueError if the tree changed since."""
        if staged._origin is not self._origin or staged._base_version != self._version:
            raise ValueError("stale staged update: the tree changed since it was staged")
        buckets = self._buckets
        for prefix, blob in staged._buckets.items():
            if blob:
                buckets[prefix] = blob
            else:
                buckets.pop(prefix, None)
        self._swap_top(staged._top)
        self._root = staged.root
        self._size = staged._size
        self._version += 1
        if self._size > _RELAYOUT_MEAN << self._depth and self._depth < BUCKET_DEPTH_MAX:
            self._relayout()
        return self._root

    def _relayout(self) -> None:
        """Deepen the buckets as the tree grows (the root does not change)."""
        root = self._root
        buckets = self._buckets  # each sorted, and their prefixes order them
        blob = b"".join([buckets[prefix] for prefix in sorted(buckets)])
        del buckets
        self._depth = bucket_depth_for(len(blob) // _ENTRY)
        self._load(blob)
        if self._root != root:  # pragma: no cover - a bug, not an input
            raise AssertionError("re-laying out the state tree changed its root")

    def update(self, writes: Mapping[bytes, bytes | None]) -> Digest:
        """Stage and apply ``writes`` at once."""
        return self.apply(self.stage(writes))

    def prove(self, key: bytes) -> StateProof:
        """Proof of ``key``'s value, or of its absence, against ``root()``."""
        path = path_of(key)
        bits = _from_bytes(path, "big")
        top, depth = self._top, self._depth
        siblings: list[bytes] = []
        position = 1
        for level in range(depth):
            entry = top.get(position)
            if entry is None:
                return StateProof(tuple(siblings), None)
            if len(entry) != _INNER_BYTES:
                return StateProof(tuple(siblings), (entry[:HASH_BYTES], entry[HASH_BYTES:]))
            bit = (bits >> (PATH_BITS - 1 - level)) & 1
            siblings.append(entry[1:33] if bit else entry[33:])
            position = position << 1 | bit
        entries = _split_entries(self._buckets.get(position ^ (1 << depth), b""))
        level = depth
        while len(entries) > 1:
            byte, mask = level >> 3, 0x80 >> (level & 7)
            mine = [e for e in entries if bool(e[byte] & mask) == bool(path[byte] & mask)]
            others = [e for e in entries if bool(e[byte] & mask) != bool(path[byte] & mask)]
            siblings.append(_subtree(level + 1, others)[1])
            entries = mine
            level += 1
        if not entries:
            return StateProof(tuple(siblings), None)
        return StateProof(tuple(siblings), (entries[0][:HASH_BYTES], entries[0][HASH_BYTES:]))


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
