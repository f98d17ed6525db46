"""Binary Merkle trees over ordered lists (RFC 6962 shape), pure.

Used for the transaction root of a block (leaves are transaction ids) and
for any other ordered list the protocol commits to. Leaf and inner nodes
carry different prefixes so a leaf can never pose as a node.

Imports only ``node.crypto``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node.crypto import Digest, digest

_LEAF = b"\x00"
_NODE = b"\x01"
EMPTY_ROOT = digest(b"")


def leaf_hash(leaf: bytes) -> Digest:
    return digest(_LEAF + leaf)


def node_hash(left: bytes, right: bytes) -> Digest:
    return digest(_NODE + left + right)


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: Sequence[bytes]) -> Digest:
    """The Merkle root of ``leaves``, in order."""
    if not leaves:
        return EMPTY_ROOT
    level = [leaf_hash(leaf) for leaf in leaves]
    return _root_of_hashes(level)


def _root_of_hashes(hashes: Sequence[bytes]) -> Digest:
    if len(hashes) == 1:
        return Digest(hashes[0])
    k = _split(len(hashes))
    return node_hash(_root_of_hashes(hashes[:k]), _root_of_hashes(hashes[k:]))


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Sibling hashes from the leaf up, for leaf ``index`` of ``size`` leaves."""

    index: int
    size: int
    siblings: tuple[bytes, ...]


def prove(leaves: Sequence[bytes], index: int) -> InclusionProof:
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index out of range")
    hashes = [leaf_hash(leaf) for leaf in leaves]
    path: list[bytes] = []
    _path(hashes, index, path)
    return InclusionProof(index=index, size=len(leaves), siblings=tuple(path))


def _path(hashes: Sequence[bytes], index: int, out: list[bytes]) -> None:
    if len(hashes) == 1:
        return
    k = _split(len(hashes))
    if index < k:
        _path(hashes[:k], index, out)
        out.append(_root_of_hashes(hashes[k:]))
    else:
        _path(hashes[k:], index - k, out)
        out.append(_root_of_hashes(hashes[:k]))


def verify_inclusion(expected_root: bytes, leaf: bytes, proof: InclusionProof) -> bool:
    """True when ``leaf`` sits at ``proof.index`` of a list whose root is ``expected_root``."""
    if not 0 <= proof.index < proof.size:
        return False
    computed = _climb(leaf_hash(leaf), proof.index, proof.size, list(proof.siblings))
    return computed is not None and computed == expected_root


def _climb(node: bytes, index: int, size: int, siblings: list[bytes]) -> bytes | None:
    """Rebuild the root top-down-consistent with ``_path`` (siblings listed leaf first)."""
    if size == 1:
        return node if not siblings else None
    if not siblings:
        return None
    k = _split(size)
    top = siblings.pop()
    if index < k:
        below = _climb(node, index, k, siblings)
        return None if below is None else node_hash(below, top)
    below = _climb(node, index - k, size - k, siblings)
    return None if below is None else node_hash(top, below)
