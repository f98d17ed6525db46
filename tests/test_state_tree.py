"""The state tree (protocol 3): a sparse Merkle tree keyed by sha256, checked against a model."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import random
import zlib
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.protocol import codec
from node.protocol.state_tree import (
    EMPTY_HASH,
    KEY_BYTES_MAX,
    PROOF_BYTES_MAX,
    StateProof,
    StateTree,
    decode_proof,
    empty_root,
    encode_proof,
    path_of,
    verify_state_proof,
)


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_root(items: Mapping[bytes, bytes]) -> bytes:
    """The root as docs/protocol.md defines it, written the plainest way."""
    leaves = sorted((int.from_bytes(_h(k), "big"), _h(k), _h(v)) for k, v in items.items())

    def subtree(depth: int, rows: list[tuple[int, bytes, bytes]]) -> bytes:
        if not rows:
            return EMPTY_HASH
        if len(rows) == 1:
            return _h(b"\x04" + rows[0][1] + rows[0][2])
        left = [row for row in rows if not (row[0] >> (255 - depth)) & 1]
        right = [row for row in rows if (row[0] >> (255 - depth)) & 1]
        return _h(b"\x05" + subtree(depth + 1, left) + subtree(depth + 1, right))

    return subtree(0, leaves)


def _apply(model: dict[bytes, bytes], writes: Mapping[bytes, bytes | None]) -> None:
    for key, value in writes.items():
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value


def test_golden_roots_are_frozen() -> None:
    """A change here is a protocol change (see tests/vectors/README.md)."""
    assert StateTree().root() == empty_root() == bytes(32)
    one = StateTree.from_items([(b"k", b"v")])
    assert one.root() == _h(b"\x04" + _h(b"k") + _h(b"v"))
    tree = StateTree.from_items((b"key%d" % n, b"value%d" % n) for n in range(100))
    assert tree.root() == reference_root(dict((b"key%d" % n, b"value%d" % n) for n in range(100)))
    assert tree.root().hex() == ("fb0bfe9be5fd8f5ca3f600811f79a0070f8e7d1d6f72230e7867bd2904d4ab94")


# --- properties against a dict model ------------------------------------------

small_keys = st.binary(min_size=1, max_size=3)
values = st.binary(min_size=1, max_size=8)
contents = st.dictionaries(small_keys, values, max_size=40)
write_sets = st.dictionaries(small_keys, st.none() | values, max_size=25)


@settings(max_examples=150, deadline=None)
@given(contents, st.randoms(use_true_random=False))
def test_root_is_a_function_of_content_not_of_insertion_order(
    content: dict[bytes, bytes], rng: random.Random
) -> None:
    items = list(content.items())
    rng.shuffle(items)
    one_by_one = StateTree()
    for key, value in items:
        one_by_one.update({key: value})
    assert StateTree.from_items(items).root() == one_by_one.root() == reference_root(content)
    assert len(one_by_one) == len(content)


@settings(max_examples=150, deadline=None)
@given(contents, st.lists(write_sets, max_size=6))
def test_a_batch_equals_its_writes_one_by_one_and_the_model(
    content: dict[bytes, bytes], batches: list[dict[bytes, bytes | None]]
) -> None:
    model = dict(content)
    batched = StateTree.from_items(content.items())
    single = StateTree.from_items(content.items())
    for writes in batches:
        batched.update(writes)
        for key, value in writes.items():
            single.update({key: value})
        _apply(model, writes)
        assert batched.root() == single.root() == reference_root(model)
        assert len(batched) == len(single) == len(model)
    # Nothing stale is left behind: the layout is that of a tree built from scratch.
    fresh = StateTree.from_items(model.items(), bucket_depth=batched.bucket_depth)
    assert (batched._top, batched._buckets) == (fresh._top, fresh._buckets)


@settings(max_examples=60, deadline=None)
@given(contents, st.integers(4, 12))
def test_the_storage_layout_does_not_change_the_root(
    content: dict[bytes, bytes], depth: int
) -> None:
    tree = StateTree.from_items(content.items(), bucket_depth=depth)
    assert tree.root() == reference_root(content)
    for key in list(content)[:5]:
        assert verify_state_proof(tree.root(), key, content[key], tree.prove(key))


def test_a_growing_tree_deepens_its_buckets_and_keeps_its_root() -> None:
    tree = StateTree()
    model: dict[bytes, bytes] = {}
    for block in range(12):
        writes = {b"grow/%d" % n: b"v%d" % block for n in range(block * 150, block * 150 + 150)}
        writes.update({b"grow/%d" % n: None for n in range(0, block * 150, 7)})
        tree.update(writes)
        _apply(model, writes)
        assert tree.root() == reference_root(model)
    assert tree.bucket_depth > 4 and len(tree) == len(model)
    fresh = StateTree.from_items(model.items(), bucket_depth=tree.bucket_depth)
    assert (tree._top, tree._buckets) == (fresh._top, fresh._buckets)


@pytest.mark.parametrize("depth", [9, 11, 13])
def test_sparse_batches_in_a_deep_layout_match_a_fresh_build(depth: int) -> None:
    """Few writes a block in many buckets, as at a million holders: each bucket's
    root climbs alone until its path meets another touched one; next to empty
    buckets and one-leaf subtrees (above the buckets at depth 13) it stops there."""
    rng = random.Random(depth)
    model = {rng.randbytes(12): rng.randbytes(5) for _ in range(2_000)}
    tree = StateTree.from_items(model.items(), bucket_depth=depth)
    for block in range(40):
        keys = list(model)
        writes: dict[bytes, bytes | None] = {}
        for _ in range(rng.choice([1, 2, 3, 25])):
            roll = rng.random()
            if roll < 0.3:
                writes[rng.choice(keys)] = None
            elif roll < 0.7:
                writes[rng.choice(keys)] = rng.randbytes(5)
            else:
                writes[rng.randbytes(12)] = rng.randbytes(5)
        staged = tree.stage(writes)
        _apply(model, writes)
        if block % 8 == 0:
            assert staged.root == reference_root(model)
        tree.apply(staged)
        assert tree.bucket_depth == depth and len(tree) == len(model)
        fresh = StateTree.from_items(model.items(), bucket_depth=depth)
        assert tree.root() == fresh.root()
        assert (tree._top, tree._buckets) == (fresh._top, fresh._buckets)
    for key in [*list(model)[:20], b"absent"]:
        proof = tree.prove(key)
        assert verify_state_proof(tree.root(), key, model.get(key), proof)


@settings(max_examples=100, deadline=None)
@given(contents, small_keys)
def test_every_key_has_a_verifying_proof_of_presence_or_absence(
    content: dict[bytes, bytes], key: bytes
) -> None:
    tree = StateTree.from_items(content.items())
    value = content.get(key)
    proof = decode_proof(encode_proof(tree.prove(key)))
    assert verify_state_proof(tree.root(), key, value, proof)
    assert not verify_state_proof(tree.root(), key, (value or b"") + b"x", proof)
    if value is not None:
        assert not verify_state_proof(tree.root(), key, None, proof)


def test_deleting_everything_returns_to_the_empty_tree() -> None:
    items = {b"k%d" % n: b"v" for n in range(300)}
    tree = StateTree.from_items(items.items())
    tree.update(dict.fromkeys(list(items)[:150]))
    assert tree.root() == reference_root(dict(list(items.items())[150:]))
    tree.update(dict.fromkeys(items))
    assert tree.root() == empty_root() and len(tree) == 0
    assert tree._top == {} and tree._buckets == {}


def test_stage_does_not_change_the_tree_and_competing_stages_share_a_base() -> None:
    tree = StateTree.from_items((b"k%d" % n, b"v") for n in range(50))
    before, top, buckets = tree.root(), dict(tree._top), dict(tree._buckets)
    a = tree.stage({b"k1": b"a", b"new": b"x"})
    b = tree.stage({b"k1": None, b"k2": b"b"})
    assert tree.root() == before and (tree._top, tree._buckets) == (top, buckets)
    assert a.root != b.root
    assert tree.apply(b) == b.root
    with pytest.raises(ValueError, match="stale"):
        tree.apply(a)
    with pytest.raises(ValueError, match="stale"):
        StateTree().apply(StateTree().stage({b"k": b"v"}))


def test_writing_none_for_an_absent_key_and_empty_writes_are_no_ops() -> None:
    tree = StateTree.from_items([(b"a", b"1"), (b"b", b"2")])
    root = tree.root()
    assert tree.update({b"zzz": None}) == root
    assert tree.update({}) == root
    assert len(tree) == 2


@pytest.mark.parametrize(
    "writes",
    [{b"": b"v"}, {b"k" * (KEY_BYTES_MAX + 1): b"v"}, {b"k": b""}, {"k": b"v"}, {b"k": "v"}],
)
def test_bad_writes_raise_and_change_nothing(writes: dict[bytes, bytes | None]) -> None:
    tree = StateTree.from_items([(b"a", b"1")])
    root = tree.root()
    with pytest.raises(ValueError):
        tree.update(writes)
    assert tree.root() == root


def test_bad_construction_raises() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        StateTree.from_items([(b"a", b"1"), (b"a", b"2")])
    with pytest.raises(ValueError):
        StateTree.from_items([(b"a", b"")])


# --- proofs -------------------------------------------------------------------


def _tree(n: int) -> tuple[StateTree, dict[bytes, bytes]]:
    items = {b"holder/%d" % i: b"balance %d" % i for i in range(n)}
    return StateTree.from_items(items.items()), items


def test_proofs_grow_with_log_n() -> None:
    for n in (1_000, 20_000):
        tree, items = _tree(n)
        depths = [len(tree.prove(key).siblings) for key in list(items)[:300]]
        # Random paths: the mean depth is about log2(n) + 1.3, and none is far beyond.
        assert sum(depths) / len(depths) < math.log2(n) + 3
        assert max(depths) < 2 * math.log2(n) + 8
    proof = encode_proof(tree.prove(b"holder/7"))
    assert len(proof) < 24 * 32 + 100


def test_placement_is_sha256_so_ground_keys_do_not_crowd() -> None:
    """Keys that all share a crc32 bucket (what the old tree let anyone grind for) spread."""
    ground = [k for k in (b"g%d" % n for n in range(400_000)) if zlib.crc32(k) & 0xFFF == 0][:60]
    assert len(ground) == 60
    tree = StateTree.from_items((k, b"v") for k in ground)
    assert max(len(tree.prove(k).siblings) for k in ground) < 20
    assert path_of(b"k") == _h(b"k")


def test_absence_in_an_empty_subtree_and_beside_another_leaf() -> None:
    tree, _ = _tree(200)
    kinds = set()
    for n in range(200):
        key = b"absent/%d" % n
        proof = tree.prove(key)
        kinds.add(proof.leaf is None)
        assert verify_state_proof(tree.root(), key, None, proof)
        assert not verify_state_proof(tree.root(), key, b"v", proof)
    assert kinds == {True, False}
    empty = StateTree()
    assert verify_state_proof(empty.root(), b"k", None, empty.prove(b"k"))
    assert empty.prove(b"k") == StateProof((), None)


def _flip(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def test_tampered_proofs_fail() -> None:
    tree, items = _tree(500)
    root = tree.root()
    key = b"holder/3"
    value = items[key]
    proof = tree.prove(key)
    assert verify_state_proof(root, key, value, proof)
    assert proof.leaf is not None
    for at in range(len(proof.siblings)):
        siblings = list(proof.siblings)
        siblings[at] = _flip(siblings[at]) if siblings[at] != EMPTY_HASH else b"\x01" * 32
        bad = dataclasses.replace(proof, siblings=tuple(siblings))
        assert not verify_state_proof(root, key, value, bad)
    assert not verify_state_proof(root, key, value, dataclasses.replace(proof, leaf=None))
    path, value_hash = proof.leaf
    for leaf in ((_flip(path), value_hash), (path, _flip(value_hash))):
        assert not verify_state_proof(root, key, value, dataclasses.replace(proof, leaf=leaf))
    assert not verify_state_proof(root, key, value, dataclasses.replace(proof, siblings=()))
    shorter = dataclasses.replace(proof, siblings=proof.siblings[:-1])
    assert not verify_state_proof(root, key, value, shorter)
    assert not verify_state_proof(_flip(root), key, value, proof)
    # Another key's proof of presence is no proof of absence of this key.
    other = tree.prove(b"holder/4")
    assert not verify_state_proof(root, key, None, other)
    assert not verify_state_proof(root, b"holder/4", value, proof)


def test_a_proof_of_a_present_key_cannot_be_passed_off_as_absence() -> None:
    tree, items = _tree(100)
    for key in list(items)[:50]:
        proof = tree.prove(key)
        assert not verify_state_proof(tree.root(), key, None, proof)
        assert not verify_state_proof(tree.root(), key, None, dataclasses.replace(proof, leaf=None))


def test_proof_encoding_roundtrips_and_has_the_protocol_shape() -> None:
    tree, _ = _tree(300)
    for key in (b"holder/1", b"absent"):
        proof = tree.prove(key)
        raw = encode_proof(proof)
        assert decode_proof(raw) == proof
        version, depth, bitmap, present, leaf = codec.decode(raw, PROOF_BYTES_MAX)  # type: ignore[misc]
        assert (version, depth) == (2, len(proof.siblings))
        assert isinstance(bitmap, bytes) and len(bitmap) == (depth + 7) // 8
        assert present == [s for s in proof.siblings if s != EMPTY_HASH]
        assert leaf == ([] if proof.leaf is None else list(proof.leaf))


@pytest.mark.parametrize(
    "value",
    [
        [1, 0, b"", [], []],  # the version of the bucket tree
        [2, 257, b"\x00" * 33, [], []],  # deeper than a path
        [2, 3, b"\xe0", [b"\x01" * 32], []],  # bitmap says three, one given
        [2, 3, b"\x81", [b"\x01" * 32, b"\x02" * 32], []],  # padding bit set
        [2, 1, b"\x80", [bytes(32)], []],  # an empty sibling spelled out
        [2, 1, b"\x80\x00", [b"\x01" * 32], []],  # bitmap too long
        [2, 0, b"", [], [b"\x01" * 32]],  # a leaf of one part
        [2, 0, b"", [], [b"\x01" * 31, b"\x01" * 32]],  # a short path
        [2, 0, b"", [], [b"\x01" * 32, b"\x01" * 32, b"\x01" * 32]],
        [2, 0, b"", [], [], 0],  # one field too many
    ],
)
def test_decode_rejects_malformed_proofs(value: codec.Value) -> None:
    with pytest.raises(codec.DecodeError):
        decode_proof(codec.encode(value))


def test_decode_rejects_oversized_input() -> None:
    with pytest.raises(codec.DecodeError):
        decode_proof(b"\x00" * (PROOF_BYTES_MAX + 1))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_decode_of_garbage_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(codec.DecodeError):
        decode_proof(data)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=40),
    st.binary(max_size=40),
    st.none() | st.binary(max_size=5),
    st.lists(st.binary(min_size=30, max_size=33), max_size=5),
    st.none() | st.tuples(st.binary(min_size=31, max_size=33), st.binary(min_size=32, max_size=32)),
)
def test_verify_never_raises(
    root: bytes,
    key: bytes,
    value: bytes | None,
    siblings: list[bytes],
    leaf: tuple[bytes, bytes] | None,
) -> None:
    proof = StateProof(tuple(siblings), leaf)
    assert verify_state_proof(root, key, value, proof) in (True, False)
    assert verify_state_proof(root, key, value, "not a proof") is False  # type: ignore[arg-type]
