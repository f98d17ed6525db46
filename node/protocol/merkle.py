"""Binary Merkle trees over ordered lists (RFC 6962 shape), pure.

Used for the transaction root of a block (``tx_root``: one leaf per
transaction, see ``tx_leaf``) and for any other ordered list the protocol
commits to (the items of a list transaction). Leaf and inner nodes carry
different prefixes so a leaf can never pose as a node.

Imports only ``node.protocol.codec`` and ``node.protocol.crypto``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node.protocol import codec
from node.protocol.crypto import Digest, digest

_LEAF = b"\x00"
_NODE = b"\x01"
EMPTY_ROOT = digest(b"")


def leaf_hash(leaf: bytes) -> Digest:
    return digest(_LEAF + leaf)


def node_hash(left: bytes, right: bytes) -> Digest:
    return digest(_NODE + left + right)


def tx_leaf(tx: bytes) -> bytes:
    """The bytes a block commits to for one transaction's wire bytes ``tx``.

    A transaction is opaque here except for one generic shape, the *detachable
    envelope*: the canonical three-element array ``[committed, signature,
    detached]`` (two byte strings and a list). The list carries data that the
    committed part binds by a hash of its own (a list transaction's items, see
    ``node.ledger.tx``), so a reader who may not see it can still be shown the
    rest. Its leaf is ``detached_leaf(committed, signature, sha256(detached))``:
    the digest of the detached bytes keeps the leaf bound to every byte of the
    transaction (one certified header, one block content). Any other bytes are
    their own leaf. An envelope's leaf has the envelope's shape with a one-item
    list of 32 bytes, and is never itself the leaf of the wire bytes it spells
    (those would be an envelope too, with another leaf), so the map is one-to-one.
    """
    if tx[:1] != b"\x93":  # not a three-element array: the common case, no parsing
        return tx
    try:
        value = codec.decode(tx, len(tx))
    except codec.DecodeError:
        return tx
    if not (
        isinstance(value, list)
        and isinstance(value[0], bytes)
        and isinstance(value[1], bytes)
        and isinstance(value[2], list)
    ):
        return tx
    return detached_leaf(value[0], value[1], digest(codec.encode(value[2])))


def detached_leaf(committed: bytes, signature: bytes, detached_digest: bytes) -> bytes:
    """The leaf of an envelope, from what a reader of part of it is shown."""
    return codec.encode([committed, signature, [detached_digest]])


def tx_root(txs: Sequence[bytes]) -> Digest:
    """A block's transaction root: the Merkle root of its transactions' leaves."""
    return root([tx_leaf(tx) for tx in txs])


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


def prove_many(leaves: Sequence[bytes], indexes: Sequence[int]) -> list[InclusionProof]:
    """``prove`` for several leaves of one list, each subtree hashed once (O(n + k log n))."""
    hashes = [leaf_hash(leaf) for leaf in leaves]
    memo: dict[tuple[int, int], bytes] = {}

    def subtree(low: int, high: int) -> bytes:
        found = memo.get((low, high))
        if found is None:
            if high - low == 1:
                found = hashes[low]
            else:
                k = _split(high - low)
                found = node_hash(subtree(low, low + k), subtree(low + k, high))
            memo[(low, high)] = found
        return found

    out = []
    for index in indexes:
        if not 0 <= index < len(leaves):
            raise IndexError("leaf index out of range")
        path: list[bytes] = []
        low, high = 0, len(leaves)
        while high - low > 1:
            k = _split(high - low)
            if index < low + k:
                path.append(subtree(low + k, high))
                high = low + k
            else:
                path.append(subtree(low, low + k))
                low = low + k
        path.reverse()  # leaf first
        out.append(InclusionProof(index=index, size=len(leaves), siblings=tuple(path)))
    return out


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
