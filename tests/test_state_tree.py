"""The authenticated state tree: roots, incremental updates, staging, proofs."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import zlib
from collections.abc import Mapping

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node import codec, crypto
from node.state_tree import (
    EMPTY_HASHES,
    KEY_BYTES_MAX,
    PROOF_BYTES_MAX,
    StateProof,
    StateTree,
    bucket_of,
    decode_proof,
    empty_root,
    encode_proof,
    verify_state_proof,
)

FAST = settings(max_examples=60, deadline=None)

# --- an independent, straightforward re-implementation of the protocol ------


def reference_root(items: Mapping[bytes, bytes], levels: int) -> bytes:
    """The root computed the slow, obvious way: every bucket, every node."""
    count = 16**levels
    buckets: list[list[tuple[bytes, bytes]]] = [[] for _ in range(count)]
    for key, value in items.items():
        buckets[zlib.crc32(key) % count].append((key, hashlib.sha256(value).digest()))
    layer = [
        hashlib.sha256(
            b"\x02" + b"".join(len(k).to_bytes(2, "big") + k + vh for k, vh in sorted(bucket))
        ).digest()
        for bucket in buckets
    ]
    while len(layer) > 1:
        layer = [
            hashlib.sha256(b"\x03" + b"".join(layer[i : i + 16])).digest()
            for i in range(0, len(layer), 16)
        ]
    return layer[0]


GOLDEN_ITEMS = {b"alice": b"100", b"bob": b"250", b"carol": b"7"}
GOLDEN_ROOT_LEVELS_1 = "1370d0a05335740d76a334f61d20641103b949436915fc46921879761080369d"
GOLDEN_ROOT_LEVELS_4 = "d7af5909c1fc9bc67bcac09dee599b8d582d3bf9344bdb1d8ad5195910113c3d"


def test_golden_vectors_are_frozen() -> None:
    for levels, expected in ((1, GOLDEN_ROOT_LEVELS_1), (4, GOLDEN_ROOT_LEVELS_4)):
        assert reference_root(GOLDEN_ITEMS, levels).hex() == expected
        assert StateTree.from_items(GOLDEN_ITEMS.items(), levels).root().hex() == expected


def test_empty_tree_costs_nothing_at_any_depth() -> None:
    assert EMPTY_HASHES[0] == crypto.digest(b"\x02")
    for levels in (1, 2, 3, 4):
        assert StateTree(levels).root() == reference_root({}, levels) == empty_root(levels)
    deep = StateTree(7)
    assert deep.root() == EMPTY_HASHES[7]
    assert deep.update({b"k": b"v"}) != EMPTY_HASHES[7]
    assert deep.update({b"k": None}) == EMPTY_HASHES[7]
    assert len(deep) == 0


# --- hypothesis strategies ---------------------------------------------------

keys = st.binary(min_size=1, max_size=6)
values = st.binary(min_size=1, max_size=8)
maps = st.dictionaries(keys, values, max_size=40)
levels_small = st.sampled_from([1, 2])
write_batches = st.lists(st.dictionaries(keys, st.none() | values, max_size=12), max_size=8)


@FAST
@given(maps, levels_small, st.randoms(use_true_random=False), maps)
def test_root_is_a_function_of_content(
    content: dict[bytes, bytes], levels: int, rng: random.Random, transient: dict[bytes, bytes]
) -> None:
    expected = reference_root(content, levels)
    assert StateTree.from_items(content.items(), levels).root() == expected
    assert StateTree(levels).update(content) == expected
    tree = StateTree(levels)
    extra = {k: v for k, v in transient.items() if k not in content}
    pairs = list(content.items()) + list(extra.items())
    rng.shuffle(pairs)
    for key, value in pairs:
        tree.update({key: value})
    deletions = list(extra)
    rng.shuffle(deletions)
    for key in deletions:
        tree.update({key: None})
    assert tree.root() == expected
    assert len(tree) == len(content)


@FAST
@given(maps, write_batches, levels_small)
def test_incremental_equals_from_scratch(
    start: dict[bytes, bytes], batches: list[dict[bytes, bytes | None]], levels: int
) -> None:
    tree = StateTree.from_items(start.items(), levels)
    model = dict(start)
    for batch in batches:
        for key, value in batch.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        root = tree.update(batch)
        assert root == tree.root() == StateTree.from_items(model.items(), levels).root()
        assert len(tree) == len(model)
    assert tree.root() == reference_root(model, levels)


def test_deleting_everything_returns_to_the_empty_tree() -> None:
    items = {i.to_bytes(4, "big"): b"v" for i in range(300)}
    tree = StateTree.from_items(items.items(), 2)
    tree.update(dict.fromkeys(items))
    assert tree.root() == empty_root(2)
    assert len(tree) == 0
    assert tree._buckets == {}  # sparse storage keeps no empty bucket
    assert all(nodes == {} for nodes in tree._nodes)  # nor any empty node


# --- staging -----------------------------------------------------------------


def test_stage_does_not_change_the_tree() -> None:
    tree = StateTree.from_items(GOLDEN_ITEMS.items())
    before = tree.root()
    staged = tree.stage({b"dave": b"1", b"alice": None})
    assert tree.root() == before
    assert len(tree) == 3
    assert staged.root == reference_root({b"bob": b"250", b"carol": b"7", b"dave": b"1"}, 4)
    assert tree.apply(staged) == staged.root == tree.root()
    assert len(tree) == 3


def test_competing_stages_from_one_base() -> None:
    tree = StateTree.from_items(GOLDEN_ITEMS.items(), 2)
    first = tree.stage({b"alice": b"99", b"erin": b"5"})
    second = tree.stage({b"bob": None})
    assert first.root == reference_root({**GOLDEN_ITEMS, b"alice": b"99", b"erin": b"5"}, 2)
    assert second.root == reference_root({b"alice": b"100", b"carol": b"7"}, 2)
    tree.apply(second)
    with pytest.raises(ValueError, match="stale"):
        tree.apply(first)
    with pytest.raises(ValueError, match="stale"):
        tree.apply(second)
    assert tree.root() == second.root


def test_apply_rejects_an_update_staged_on_another_tree() -> None:
    one = StateTree.from_items(GOLDEN_ITEMS.items())
    other = StateTree.from_items(GOLDEN_ITEMS.items())
    with pytest.raises(ValueError, match="stale"):
        other.apply(one.stage({b"x": b"1"}))


def test_writing_none_for_an_absent_key_is_a_no_op() -> None:
    tree = StateTree.from_items(GOLDEN_ITEMS.items())
    before = tree.root()
    assert tree.update({b"nobody": None}) == before
    assert tree.update({}) == before
    assert len(tree) == 3


@pytest.mark.parametrize(
    "writes",
    [
        {b"alice": b""},
        {b"": b"x"},
        {b"k" * (KEY_BYTES_MAX + 1): b"x"},
        {b"fine": b"1", b"bad": b""},
    ],
)
def test_bad_writes_raise_and_change_nothing(writes: dict[bytes, bytes | None]) -> None:
    tree = StateTree.from_items(GOLDEN_ITEMS.items())
    before = tree.root()
    with pytest.raises(ValueError):
        tree.update(writes)
    assert tree.root() == before
    assert len(tree) == 3


def test_bad_construction_raises() -> None:
    for levels in (0, 8):
        with pytest.raises(ValueError):
            StateTree(levels)
    with pytest.raises(ValueError, match="duplicate"):
        StateTree.from_items([(b"a", b"1"), (b"a", b"2")])
    with pytest.raises(ValueError):
        StateTree.from_items([(b"a", b"")])


# --- proofs ------------------------------------------------------------------


def _crowded_tree() -> tuple[StateTree, dict[bytes, bytes]]:
    """Levels=1 and 200 keys: every bucket holds several entries."""
    items = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(200)}
    return StateTree.from_items(items.items(), 1), items


def _sparse_tree() -> tuple[StateTree, dict[bytes, bytes]]:
    """Levels=4 and three keys: nearly every bucket is empty."""
    return StateTree.from_items(GOLDEN_ITEMS.items(), 4), dict(GOLDEN_ITEMS)


def test_proofs_of_present_keys_verify() -> None:
    for tree, items in (_crowded_tree(), _sparse_tree()):
        for key, value in items.items():
            proof = tree.prove(key)
            assert verify_state_proof(tree.root(), key, value, proof)
            assert not verify_state_proof(tree.root(), key, value + b"!", proof)
            assert not verify_state_proof(tree.root(), key, None, proof)


def test_proofs_of_absent_keys_verify_in_empty_and_full_buckets() -> None:
    crowded, _ = _crowded_tree()
    proof = crowded.prove(b"absent")
    assert proof.entries  # the bucket is not empty
    assert verify_state_proof(crowded.root(), b"absent", None, proof)
    assert not verify_state_proof(crowded.root(), b"absent", b"x", proof)
    sparse, _ = _sparse_tree()
    proof = sparse.prove(b"absent")
    assert proof.entries == ()
    assert verify_state_proof(sparse.root(), b"absent", None, proof)
    assert not verify_state_proof(sparse.root(), b"absent", b"x", proof)


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


def test_tampered_proofs_fail() -> None:
    tree, items = _crowded_tree()
    root = tree.root()
    key = next(k for k in items if len(tree.prove(k).entries) >= 3)
    value = items[key]
    proof = tree.prove(key)
    entries = proof.entries
    at = next(i for i, (k, _) in enumerate(entries) if k == key)
    other = (at + 1) % len(entries)
    stranger = next(k for k in (b"%d" % i for i in range(999)) if bucket_of(k, 1) != proof.bucket)
    neighbour = next(k for k in (b"%d" % i for i in range(999)) if bucket_of(k, 1) == proof.bucket)
    sibling = proof.siblings[0]
    bad_proofs = [
        dataclasses.replace(proof, siblings=((_flip(sibling[0]), *sibling[1:]),)),
        dataclasses.replace(proof, entries=entries[:other] + entries[other + 1 :]),
        dataclasses.replace(proof, entries=entries[:at] + entries[at + 1 :]),
        dataclasses.replace(
            proof,
            entries=(*entries[:other], (entries[other][0], b"\0" * 32), *entries[other + 1 :]),
        ),
        dataclasses.replace(proof, entries=tuple(sorted((*entries, (stranger, b"\0" * 32))))),
        dataclasses.replace(proof, entries=tuple(sorted((*entries, (neighbour, b"\0" * 32))))),
        dataclasses.replace(proof, entries=(entries[1], entries[0], *entries[2:])),
        dataclasses.replace(proof, entries=(entries[0], *entries)),
        dataclasses.replace(proof, bucket=(proof.bucket + 1) % 16),
        dataclasses.replace(proof, levels=2),
        dataclasses.replace(proof, siblings=(*proof.siblings, sibling)),
    ]
    assert verify_state_proof(root, key, value, proof)
    elsewhere = tree.prove(stranger)  # an honest proof, but of another bucket
    assert verify_state_proof(root, stranger, None, elsewhere)
    assert not verify_state_proof(root, key, None, elsewhere)
    for bad in bad_proofs:
        assert not verify_state_proof(root, key, value, bad)
    assert not verify_state_proof(_flip(root), key, value, proof)


def test_proofs_in_the_deepest_tree() -> None:
    tree = StateTree.from_items(GOLDEN_ITEMS.items(), 7)
    for key, value in [*GOLDEN_ITEMS.items(), (b"absent", None)]:
        proof = decode_proof(encode_proof(tree.prove(key)))
        assert len(proof.siblings) == 7
        assert verify_state_proof(tree.root(), key, value, proof)
        assert not verify_state_proof(tree.root(), key, b"other", proof)


def test_a_proof_is_bound_to_its_root_and_depth() -> None:
    tree = StateTree.from_items(GOLDEN_ITEMS.items(), 2)
    proof = tree.prove(b"bob")
    old_root = tree.root()
    tree.update({b"carol": b"8"})
    assert verify_state_proof(old_root, b"bob", b"250", proof)
    assert not verify_state_proof(tree.root(), b"bob", b"250", proof)
    deeper = StateTree.from_items(GOLDEN_ITEMS.items(), 3)
    assert not verify_state_proof(deeper.root(), b"bob", b"250", proof)


def test_proof_encoding_roundtrips_and_has_the_protocol_shape() -> None:
    tree, items = _crowded_tree()
    for key in [*list(items)[:20], b"absent"]:
        proof = tree.prove(key)
        data = encode_proof(proof)
        assert decode_proof(data) == proof
        assert msgpack.unpackb(data) == [
            1,
            proof.levels,
            proof.bucket,
            [list(entry) for entry in proof.entries],
            [list(level) for level in proof.siblings],
        ]


def _sample_proof_value() -> list[codec.Value]:
    proof = _crowded_tree()[0].prove(b"key-1")
    value = codec.decode(encode_proof(proof), PROOF_BYTES_MAX)
    assert isinstance(value, list)
    return value


def _mutations() -> list[bytes]:
    good = _sample_proof_value()
    levels, entries, siblings = good[1], good[3], good[4]
    assert isinstance(entries, list) and isinstance(siblings, list)
    assert isinstance(siblings[0], list)
    first_key = entries[0]
    assert isinstance(first_key, list)

    def with_field(index: int, value: codec.Value) -> bytes:
        return codec.encode([*good[:index], value, *good[index + 1 :]])

    return [
        with_field(0, 2),  # unknown version
        with_field(1, 0),  # levels out of range
        with_field(1, 8),
        with_field(1, True),
        with_field(2, 16),  # bucket out of range for levels=1
        with_field(2, -1),
        with_field(3, b"entries"),
        with_field(3, [[b"", b"\0" * 32]]),  # empty key
        with_field(3, [[b"k" * (KEY_BYTES_MAX + 1), b"\0" * 32]]),
        with_field(3, [[b"k", b"\0" * 31]]),  # short value hash
        with_field(3, [[b"k", b"\0" * 32, b"extra"]]),
        with_field(3, [["k", b"\0" * 32]]),  # text, not bytes
        with_field(4, []),  # fewer levels than declared
        with_field(4, [*siblings, siblings[0]]),
        with_field(4, [siblings[0][:14]]),
        with_field(4, [[*siblings[0][:14], b"\0" * 31]]),
        codec.encode([*good, 0]),  # extra field
        codec.encode(good[:4]),
        codec.encode([levels]),
    ]


def test_decode_rejects_malformed_proofs() -> None:
    good = codec.encode(_sample_proof_value())
    assert good[0] == 0x95 and good[1] == 0x01  # fixarray(5), version 1
    non_canonical = [
        good + b"\x00",  # trailing bytes
        b"\xdc\x00\x05" + good[1:],  # array16 where a fixarray fits
        b"\x95\xcc\x01" + good[2:],  # uint8 where a fixint fits
        msgpack.packb({"levels": 1}),
        b"",
        b"\xc1",
        b"\x95" + b"\x01" * (PROOF_BYTES_MAX + 1),
    ]
    for data in non_canonical + _mutations():
        with pytest.raises(codec.DecodeError):
            decode_proof(data)


@FAST
@given(st.binary(max_size=300))
def test_decode_of_garbage_raises_only_decode_error(data: bytes) -> None:
    try:
        proof = decode_proof(data)
    except codec.DecodeError:
        return
    assert encode_proof(proof) == data


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.binary(max_size=40),
    st.text(max_size=4),
    st.lists(st.binary(max_size=33), max_size=16).map(tuple),
)
digests = st.binary(min_size=32, max_size=32)
garbage_proofs = st.builds(
    StateProof,
    levels=st.one_of(st.integers(min_value=-1, max_value=9), anything),
    bucket=st.one_of(st.integers(min_value=-1, max_value=300), anything),
    entries=st.one_of(
        anything,
        st.lists(st.tuples(st.binary(max_size=8), digests) | anything, max_size=4).map(tuple),
    ),
    siblings=st.one_of(
        anything,
        st.lists(st.lists(digests, min_size=14, max_size=16).map(tuple) | anything, max_size=3).map(
            tuple
        ),
    ),
)


@FAST
@given(
    st.one_of(digests, anything),
    st.one_of(keys, anything),
    st.one_of(values, anything),
    st.one_of(garbage_proofs, anything),
)
def test_verify_never_raises(
    root: bytes, key: bytes, value: bytes | None, proof: StateProof
) -> None:
    assert verify_state_proof(root, key, value, proof) in (True, False)


@FAST
@given(maps, keys)
def test_every_key_has_a_verifying_proof(content: dict[bytes, bytes], key: bytes) -> None:
    tree = StateTree.from_items(content.items(), 1)
    proof = decode_proof(encode_proof(tree.prove(key)))
    assert verify_state_proof(tree.root(), key, content.get(key), proof)
    assert not verify_state_proof(tree.root(), key, b"?" + content.get(key, b""), proof)
