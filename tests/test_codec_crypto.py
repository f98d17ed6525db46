"""The canonical encoding and domain-separated signatures."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.protocol import codec
from node.protocol.crypto import Domain, Signer, digest, signing_bytes, verify

values = st.recursive(
    st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20)
    | st.booleans()
    | st.none(),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=20,
)


@given(values)
def test_decode_inverts_encode(value: codec.Value) -> None:
    assert codec.decode(codec.encode(value), 1 << 20) == value


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (msgpack.packb({"a": 1}), "maps"),
        (msgpack.packb(1.5), "floats"),
        (b"\xcd\x00\x05", "an int in a wider form than needed"),
        (b"\xd9\x01a", "a str8 where a fixstr fits"),
        (codec.encode([1, 2]) + b"\x00", "a trailing byte"),
        (codec.encode([1, 2])[:-1], "truncated"),
        (msgpack.packb(msgpack.ExtType(5, b"xy")), "extension types"),
        (b"\x91" * 20 + b"\x01", "nesting"),
    ],
)
def test_non_canonical_bytes_are_refused(raw: bytes, why: str) -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode(raw, 1 << 20)


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(codec.DecodeError, match="too large"):
        codec.decode(codec.encode(b"x" * 100), 50)


def test_signatures_are_bound_to_domain_and_chain() -> None:
    key = Signer(digest(b"k"))
    body = b"body"
    signature = key.sign(Domain.TX, "chain-a", body)
    assert verify(Domain.TX, "chain-a", body, key.public_key, signature)
    assert not verify(Domain.VOTE, "chain-a", body, key.public_key, signature)
    assert not verify(Domain.TX, "chain-b", body, key.public_key, signature)
    assert not verify(Domain.TX, "chain-a", body + b"!", key.public_key, signature)
    assert not verify(Domain.TX, "chain-a", body, key.public_key, signature[:-1])


def test_domain_tags_cannot_collide_by_concatenation() -> None:
    tags = [d.value for d in Domain]
    assert len(set(tags)) == len(tags)
    # The NUL separator means no tag's signing bytes can be a prefix game on another.
    assert signing_bytes(Domain.TX, "ab", b"") != signing_bytes(Domain.TX, "a", b"b")


L = 2**252 + 27742317777372353535851937790883648493


def test_malleated_signature_and_small_order_keys_are_refused() -> None:
    key = Signer(digest(b"k"))
    signature = key.sign(Domain.TX, "c", b"m")
    s = int.from_bytes(signature[32:], "little") + L
    malleated = signature[:32] + s.to_bytes(32, "little")
    assert not verify(Domain.TX, "c", b"m", key.public_key, malleated)
    identity = bytes([1]) + bytes(31)
    # With a small-order key, R = identity and s = 0 verifies under lax rules.
    assert not verify(Domain.TX, "c", b"m", identity, identity + bytes(32))
    assert not verify(Domain.TX, "c", b"m", bytes(32), bytes(64))
