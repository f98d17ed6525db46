"""Consensus records: canonical round trips, strict decoding, quorums, proposers, certificates."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.consensus.types import (
    NIL_ROUND,
    Block,
    Certificate,
    CertifiedBlock,
    Header,
    Proposal,
    Validator,
    ValidatorSet,
    Vote,
    VoteKind,
    verify_certificate,
    verify_certified_block,
    vote_signing_body,
)
from node.protocol import codec, merkle
from node.protocol.codec import DecodeError
from node.protocol.crypto import Domain, Signer, digest

CHAIN = "relance-test"
KEYS = [Signer(digest(f"types-key-{i}".encode())) for i in range(7)]

hashes = st.binary(min_size=32, max_size=32)
keys = st.binary(min_size=32, max_size=32)
signatures = st.binary(min_size=64, max_size=64)
heights = st.integers(min_value=1, max_value=2**62)
rounds = st.integers(min_value=0, max_value=2**20)
txs = st.lists(st.binary(min_size=1, max_size=64), max_size=8).map(tuple)


def validator_sets(size: int) -> ValidatorSet:
    return ValidatorSet(
        tuple(Validator(k.public_key, 1, f"v{i}") for i, k in enumerate(KEYS[:size]))
    )


headers = st.builds(
    Header,
    chain_id=st.text(min_size=1, max_size=48),
    height=heights,
    time_ms=st.integers(min_value=0, max_value=2**62),
    previous_block_hash=hashes,
    tx_root=hashes,
    state_root=hashes,
    validators_hash=hashes,
    next_validators_hash=hashes,
    proposer=keys,
)
blocks = st.builds(Block, header=headers, txs=txs)
proposals = st.builds(
    Proposal,
    height=heights,
    round=rounds,
    block_hash=hashes,
    valid_round=st.integers(min_value=NIL_ROUND, max_value=2**20),
    proposer=keys,
    signature=signatures,
)
votes = st.builds(
    Vote,
    kind=st.sampled_from(VoteKind),
    height=heights,
    round=rounds,
    block_hash=st.none() | hashes,
    validator=keys,
    signature=signatures,
)
certificates = st.builds(
    Certificate,
    height=heights,
    round=rounds,
    block_hash=hashes,
    signatures=st.dictionaries(keys, signatures, min_size=1, max_size=8).map(
        lambda d: tuple(sorted(d.items()))
    ),
)
validators = st.builds(
    Validator,
    public_key=keys,
    power=st.integers(min_value=1, max_value=2**40),
    name=st.text(max_size=20),
)
sets = st.lists(validators, min_size=1, max_size=8, unique_by=lambda v: v.public_key).map(
    lambda vs: ValidatorSet(tuple(vs))
)


Record = Header | Block | Proposal | Vote | Certificate | ValidatorSet


@settings(max_examples=60, database=None)
@given(st.one_of(headers, blocks, proposals, votes, certificates, sets))
def test_round_trip_is_identity_and_canonical(record: Record) -> None:
    data = record.encode()
    decoded = type(record).decode(data)
    assert decoded == record
    assert decoded.encode() == data


@settings(database=None)
@given(validators)
def test_validator_round_trip(validator: Validator) -> None:
    data = codec.encode(validator.to_value())
    assert Validator.from_value(codec.decode(data, 1024)) == validator


def _vote() -> Vote:
    return Vote(VoteKind.PREVOTE, 3, 1, b"\x01" * 32, b"\x02" * 32, b"\x03" * 64)


def test_decode_rejects_non_canonical_and_malformed_input() -> None:
    vote = _vote()
    data = vote.encode()
    value = vote.to_value()
    assert Vote.decode(data) == vote
    with pytest.raises(DecodeError):
        Vote.decode(data + b"\x00")  # trailing bytes
    with pytest.raises(DecodeError):
        Vote.decode(msgpack.packb([2, *value[1:]]))  # unknown version
    with pytest.raises(DecodeError):
        Vote.decode(codec.encode([1, 5, *value[2:]]))  # another record kind
    with pytest.raises(DecodeError):
        Vote.decode(codec.encode([*value[:5], b"\x01" * 31, *value[6:]]))  # short hash
    with pytest.raises(DecodeError):
        Vote.decode(codec.encode([*value[:2], 3, *value[3:]]))  # no such vote kind
    with pytest.raises(DecodeError):
        Vote.decode(codec.encode([*value, b""]))  # an extra field
    head, tail = value[:3], value[4:]
    wide = b"\x98" + b"".join(map(codec.encode, head)) + b"\xcd\x00\x03"  # height as uint16
    wide += b"".join(map(codec.encode, tail))
    assert msgpack.unpackb(wide) == value  # msgpack reads it, but it is not minimal
    with pytest.raises(DecodeError):
        Vote.decode(wide)
    with pytest.raises(DecodeError):
        Vote.decode(msgpack.packb({"kind": 1}))


def test_certificate_keys_must_ascend_and_be_distinct() -> None:
    low, high = (b"\x01" * 32, b"\x05" * 64), (b"\x02" * 32, b"\x05" * 64)
    Certificate(1, 0, b"\x00" * 32, (low, high))
    with pytest.raises(ValueError):
        Certificate(1, 0, b"\x00" * 32, (high, low))
    with pytest.raises(ValueError):
        Certificate(1, 0, b"\x00" * 32, (low, low))
    swapped = codec.encode([1, 7, 1, 0, b"\x00" * 32, [list(high), list(low)]])
    with pytest.raises(DecodeError):
        Certificate.decode(swapped)


def test_validator_set_rejects_duplicate_keys() -> None:
    one = Validator(b"\x01" * 32, 1, "a")
    with pytest.raises(ValueError):
        ValidatorSet((one, one))
    with pytest.raises(DecodeError):
        ValidatorSet.decode(codec.encode([1, 2, [one.to_value(), one.to_value()]]))


@pytest.mark.parametrize(
    ("powers", "quorum", "skip"),
    [
        ((1,), 1, 1),
        ((1, 1, 1), 3, 2),
        ((1,) * 4, 3, 2),
        ((1,) * 6, 5, 3),
        ((1,) * 7, 5, 3),
        ((10, 20, 30, 40), 67, 34),
    ],
)
def test_quorum_is_strictly_above_two_thirds(
    powers: tuple[int, ...], quorum: int, skip: int
) -> None:
    vs = ValidatorSet(tuple(Validator(KEYS[i].public_key, p, "") for i, p in enumerate(powers)))
    assert vs.quorum_power == quorum
    assert 3 * vs.quorum_power > 2 * vs.total_power >= 3 * (vs.quorum_power - 1)
    assert vs.skip_power == skip
    assert 3 * vs.skip_power > vs.total_power >= 3 * (vs.skip_power - 1)


def test_proposer_is_round_robin_by_index() -> None:
    vs = validator_sets(4)
    assert [vs.proposer(1, r).name for r in range(5)] == ["v1", "v2", "v3", "v0", "v1"]
    assert [vs.proposer(h, 0).name for h in range(1, 6)] == ["v1", "v2", "v3", "v0", "v1"]


def test_ids_are_digests_of_the_encoding() -> None:
    header = Header(
        CHAIN,
        1,
        5,
        b"\x00" * 32,
        merkle.root([b"a"]),
        b"\x01" * 32,
        b"\x02" * 32,
        b"\x02" * 32,
        KEYS[0].public_key,
    )
    block = Block(header, (b"a",))
    assert block.hash() == header.hash() == digest(codec.encode(header.to_value()))
    vs = validator_sets(4)
    assert vs.hash() == digest(vs.encode())


def _certificate(signers: list[Signer], block_hash: bytes, chain: str = CHAIN) -> Certificate:
    pairs = []
    for signer in signers:
        body = vote_signing_body(VoteKind.PRECOMMIT, 4, 2, block_hash, signer.public_key)
        pairs.append((signer.public_key, signer.sign(Domain.VOTE, chain, body)))
    return Certificate(4, 2, block_hash, tuple(sorted(pairs)))


def test_verify_certificate() -> None:
    vs = validator_sets(4)
    block_hash = digest(b"block")
    assert verify_certificate(_certificate(KEYS[:3], block_hash), CHAIN, vs)
    assert verify_certificate(_certificate(KEYS[:4], block_hash), CHAIN, vs)
    assert not verify_certificate(_certificate(KEYS[:2], block_hash), CHAIN, vs)  # power
    assert not verify_certificate(_certificate([*KEYS[:2], KEYS[5]], block_hash), CHAIN, vs)
    assert not verify_certificate(_certificate(KEYS[:3], block_hash, "other"), CHAIN, vs)
    good = _certificate(KEYS[:3], block_hash)
    forged = Certificate(4, 2, digest(b"another"), good.signatures)
    assert not verify_certificate(forged, CHAIN, vs)
    tampered = ((good.signatures[0][0], b"\x00" * 64), *good.signatures[1:])
    assert not verify_certificate(Certificate(4, 2, block_hash, tampered), CHAIN, vs)


def test_certified_block_ties_the_certificate_to_the_block() -> None:
    vs = validator_sets(4)
    header = Header(
        CHAIN,
        4,
        5,
        b"\x00" * 32,
        merkle.root([]),
        b"\x01" * 32,
        vs.hash(),
        vs.hash(),
        KEYS[0].public_key,
    )
    block = Block(header, ())
    certified = CertifiedBlock(block, _certificate(KEYS[:3], block.hash()))
    assert verify_certified_block(certified, CHAIN, vs)
    with pytest.raises(ValueError):
        CertifiedBlock(block, _certificate(KEYS[:3], digest(b"another")))


def test_records_are_born_valid() -> None:
    with pytest.raises(ValueError):
        Vote(VoteKind.PREVOTE, 0, 0, None, b"\x01" * 32, b"\x02" * 64)  # height 0
    with pytest.raises(ValueError):
        Proposal(1, 0, b"\x00" * 32, -2, b"\x01" * 32, b"\x02" * 64)
    with pytest.raises(ValueError):
        Validator(b"\x01" * 32, 0, "no power")
    with pytest.raises(ValueError):
        Block(Header(CHAIN, 1, 0, *(b"\x00" * 32,) * 5, b"\x01" * 32), (b"",))
