"""Hostile and broken input: each gets its stable code and changes nothing.

Every non-canonical encoding here is *signed*, so the encoding is its only
fault. The signature attacks (a malleated ``s``, small-order public keys)
come with a small pure-Python Ed25519 that shows each forged signature would
pass a lax verifier; the ledger must still answer BAD_SIGNATURE.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import cast

import pytest
from nacl.signing import SigningKey

from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import execute_block
from node.protocol import codec, limits
from node.protocol.crypto import Domain, Signer, signing_bytes, verify
from node.protocol.statements import STATEMENT_BYTES_MAX, vote_signing_body
from tests.ledger.conftest import (
    AMOUNT_MAX,
    LATER,
    NA1,
    NAM,
    NAM_UNTIL_MS,
    Scene,
    allocate,
    assert_rejected,
)
from tests.ledger.world import CHAIN_ID, pk, signer

# --- a lax reference Ed25519 (RFC 8032 arithmetic, none of libsodium's checks) --------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]
_IDENTITY: _Point = (0, 1, 1, 0)


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = t1 * 2 * _D * t2 % _P
    dd = z1 * 2 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(scalar: int, point: _Point) -> _Point:
    out = _IDENTITY
    while scalar > 0:
        if scalar & 1:
            out = _add(out, point)
        point = _add(point, point)
        scalar >>= 1
    return out


def _same(a: _Point, b: _Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _x_of(y: int, sign: int) -> int | None:
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return 0  # lax: a set sign bit on x = 0 is ignored
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if (x & 1) != sign else x


def _decode_point(data: bytes) -> _Point | None:
    """Lax decoding: y is reduced mod p, as permissive verifiers do."""
    n = int.from_bytes(data, "little")
    y = (n & ((1 << 255) - 1)) % _P
    x = _x_of(y, n >> 255)
    return None if x is None else (x, y, 1, x * y % _P)


def _encode_point(p: _Point) -> bytes:
    z = pow(p[2], _P - 2, _P)
    x, y = p[0] * z % _P, p[1] * z % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


_BASE = _decode_point((4 * pow(5, _P - 2, _P)).to_bytes(32, "little"))
assert _BASE is not None


def lax_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Cofactored Ed25519 without canonical-``s``, canonical-point or small-order checks."""
    a, r = _decode_point(public_key), _decode_point(signature[:32])
    if a is None or r is None or _BASE is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little")
    left = _mul(8, _mul(s, _BASE))
    right = _mul(8, _add(r, _mul(k % _L, a)))
    return _same(left, right)


def forge(public_key: bytes, r: int = 7) -> bytes:
    """A signature on *any* message for a small-order key: R = rB, s = r."""
    assert _BASE is not None
    return _encode_point(_mul(r, _BASE)) + r.to_bytes(32, "little")


SMALL_ORDER_KEYS = {
    "identity": "0100000000000000000000000000000000000000000000000000000000000000",
    "order-2": "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "order-4-a": "0000000000000000000000000000000000000000000000000000000000000000",
    "order-4-b": "0000000000000000000000000000000000000000000000000000000000000080",
    "order-8-a": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "order-8-b": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "order-8-c": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "order-8-d": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    # non-canonical encodings of small-order points
    "identity-sign-bit": "0100000000000000000000000000000000000000000000000000000000000080",
    "order-2-sign-bit": "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "identity-y-is-p-plus-1": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "order-4-y-is-p": "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}
SMALL_ORDER_KEYS_IDENTITY = bytes.fromhex(SMALL_ORDER_KEYS["identity"])


def test_the_lax_verifier_is_a_verifier() -> None:
    s = Signer(bytes(range(32)))
    message = signing_bytes(Domain.TX, CHAIN_ID, b"body")
    signature = s.sign(Domain.TX, CHAIN_ID, b"body")
    assert lax_verify(s.public_key, message, signature)
    assert not lax_verify(s.public_key, message + b"!", signature)
    assert _BASE is not None
    assert _same(_mul(_L, _BASE), _IDENTITY)


@pytest.mark.parametrize("key_hex", SMALL_ORDER_KEYS.values(), ids=SMALL_ORDER_KEYS.keys())
def test_small_order_keys_really_are(key_hex: str) -> None:
    point = _decode_point(bytes.fromhex(key_hex))
    assert point is not None
    assert _same(_mul(8, point), _IDENTITY)


# --- raw transaction building ----------------------------------------------------------


def enc(value: codec.Value) -> bytes:
    return codec.encode(value)


def fixarray(parts: list[bytes]) -> bytes:
    assert len(parts) < 16
    return bytes([0x90 | len(parts)]) + b"".join(parts)


def signed(who: Signer, body: bytes, chain_id: str = CHAIN_ID) -> bytes:
    """The wire form of ``body`` (any bytes) with ``who``'s valid signature over it."""
    return enc([body, who.sign(Domain.TX, chain_id, body)])


def pay_parts(s: Scene, amount: int = 5_00, sequence: int | None = None) -> list[bytes]:
    """Alice pays the bakery: the canonical encoding of each body item."""
    seq = s.w.sequences.get(pk(s.alice), 0) if sequence is None else sequence
    values: list[codec.Value] = [
        t.VERSION, 7, CHAIN_ID, pk(s.alice), seq, NAM, pk(s.bakery), amount, "hi",
    ]  # fmt: skip
    return [enc(v) for v in values]


def test_raw_building_matches_the_library(scene: Scene) -> None:
    data = signed(scene.alice, fixarray(pay_parts(scene)))
    assert data == scene.tx(scene.alice, t.Pay(NAM, pk(scene.bakery), 5_00, "hi"))
    scene.apply_ok(data)


def _variant(index: int, raw: bytes) -> Callable[[Scene], bytes]:
    def build(s: Scene) -> bytes:
        parts = pay_parts(s)
        parts[index] = raw
        return signed(s.alice, fixarray(parts))

    return build


def _body(make: Callable[[list[bytes]], bytes]) -> Callable[[Scene], bytes]:
    def build(s: Scene) -> bytes:
        return signed(s.alice, make(pay_parts(s)))

    return build


def _u(fmt: int, value: int, width: int) -> bytes:
    return bytes([fmt]) + value.to_bytes(width, "big", signed=fmt in (0xD0, 0xD1, 0xD2, 0xD3))


SEQ, KIND, VERSION, AMOUNT, MEMO, CAMPAIGN, MERCHANT = 4, 1, 0, 7, 8, 5, 6
BAKERY = signer("bakery").public_key

NON_CANONICAL = {
    # integers in a wider form than needed
    "sequence-as-uint8": _variant(SEQ, _u(0xCC, 1, 1)),
    "sequence-as-uint64": _variant(SEQ, _u(0xCF, 1, 8)),
    "amount-as-uint32": _variant(AMOUNT, _u(0xCE, 500, 4)),
    "amount-as-uint64": _variant(AMOUNT, _u(0xCF, 500, 8)),
    "amount-as-int16": _variant(AMOUNT, _u(0xD1, 500, 2)),
    "amount-as-int64": _variant(AMOUNT, _u(0xD3, 500, 8)),
    "kind-as-uint8": _variant(KIND, _u(0xCC, 7, 1)),
    "kind-as-int8": _variant(KIND, _u(0xD0, 7, 1)),
    "version-as-uint16": _variant(VERSION, _u(0xCD, t.VERSION, 2)),
    # strings and bytes in a wider form than needed
    "memo-as-str8": _variant(MEMO, b"\xd9\x02hi"),
    "memo-as-str16": _variant(MEMO, b"\xda\x00\x02hi"),
    "campaign-as-str32": _variant(CAMPAIGN, b"\xdb\x00\x00\x00\x03NAM"),
    "merchant-as-bin16": _variant(MERCHANT, b"\xc5\x00\x20" + BAKERY),
    "merchant-as-bin32": _variant(MERCHANT, b"\xc6\x00\x00\x00\x20" + BAKERY),
    # containers in a wider form than needed, or maps
    "body-as-array16": _body(lambda p: b"\xdc\x00\x09" + b"".join(p)),
    "body-as-array32": _body(lambda p: b"\xdd\x00\x00\x00\x09" + b"".join(p)),
    "body-as-map": _body(lambda p: b"\x89" + b"".join(enc(n) + x for n, x in enumerate(p))),
    "memo-as-map": _variant(MEMO, b"\x81\xa1k\xa1v"),
    "memo-as-empty-map": _variant(MEMO, b"\x80"),
    # floats, in both widths, even when integral
    "amount-as-float64": _variant(AMOUNT, b"\xcb" + struct.pack(">d", 500.0)),
    "amount-as-float32": _variant(AMOUNT, b"\xca" + struct.pack(">f", 500.0)),
    "sequence-as-float64": _variant(SEQ, b"\xcb" + struct.pack(">d", 1.0)),
    # other types where a field wants another
    "amount-as-true": _variant(AMOUNT, b"\xc3"),
    "amount-as-nil": _variant(AMOUNT, b"\xc0"),
    "amount-as-str": _variant(AMOUNT, enc("500")),
    "merchant-as-str": _variant(MERCHANT, enc("b" * 32)),
    "merchant-31-bytes": _variant(MERCHANT, enc(BAKERY[:31])),
    "memo-as-bin": _variant(MEMO, enc(b"hi")),
    "memo-as-list": _variant(MEMO, enc(["hi"])),
    "memo-as-ext": _variant(MEMO, b"\xd4\x01\x00"),
    "memo-as-timestamp-ext": _variant(MEMO, b"\xd6\xff\x00\x00\x00\x01"),
    "memo-invalid-utf8": _variant(MEMO, b"\xa2\xff\xfe"),
    "memo-utf8-surrogate": _variant(MEMO, b"\xa3\xed\xa0\x80"),
    "memo-too-long": _variant(MEMO, enc("x" * (limits.MEMO_CHARS_MAX + 1))),
    "campaign-too-long": _variant(CAMPAIGN, enc("C" * (limits.CODE_CHARS_MAX + 1))),
    "sequence-negative": _variant(SEQ, enc(-1)),
    "amount-above-int64": _variant(AMOUNT, _u(0xCF, 2**63, 8)),
    "sequence-above-int64": _variant(SEQ, _u(0xCF, 2**64 - 1, 8)),
    # shape
    "extra-field": _body(lambda p: fixarray([*p, enc("x")])),
    "missing-field": _body(lambda p: fixarray(p[:-1])),
    "header-only": _body(lambda p: fixarray(p[:5])),
    "short-header": _body(lambda p: fixarray(p[:4])),
    "empty-body-array": _body(lambda p: b"\x90"),
    "body-is-an-int": _body(lambda p: b"\x07"),
    "body-trailing-byte": _body(lambda p: fixarray(p) + b"\xc0"),
    "body-truncated": _body(lambda p: fixarray(p)[:-1]),
    "body-two-values": _body(lambda p: fixarray(p) + fixarray(p)),
    "body-nested-too-deep": _variant(MEMO, b"\x91" * 12 + b"\x00"),
}


@pytest.mark.parametrize("build", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_non_canonical_body_is_malformed(scene: Scene, build: Callable[[Scene], bytes]) -> None:
    assert_rejected(scene.w, build(scene), Result.MALFORMED)


def _good(s: Scene) -> bytes:
    return s.tx(s.alice, t.Pay(NAM, pk(s.bakery), 5_00, "hi"))


def _parts(s: Scene) -> tuple[bytes, bytes]:
    outer = codec.decode(_good(s), limits.TX_BYTES_MAX)
    assert isinstance(outer, list)
    body, sig = outer
    assert isinstance(body, bytes) and isinstance(sig, bytes)
    return body, sig


def _bin16(data: bytes) -> bytes:
    return b"\xc5" + len(data).to_bytes(2, "big") + data


def _outer(make: Callable[[bytes, bytes], bytes]) -> Callable[[Scene], bytes]:
    def build(s: Scene) -> bytes:
        return make(*_parts(s))

    return build


OUTER = {
    "empty": lambda s: b"",
    "one-byte": lambda s: _good(s)[:1],
    "two-bytes": lambda s: _good(s)[:2],
    "half": lambda s: _good(s)[: len(_good(s)) // 2],
    "last-byte-missing": lambda s: _good(s)[:-1],
    "trailing-zero-byte": lambda s: _good(s) + b"\x00",
    "trailing-nil": lambda s: _good(s) + b"\xc0",
    "twice": lambda s: _good(s) + _good(s),
    "outer-as-map": _outer(lambda b, g: b"\x81" + enc(b) + enc(g)),
    "outer-as-array16": _outer(lambda b, g: b"\xdc\x00\x02" + enc(b) + enc(g)),
    "outer-body-as-bin16": _outer(lambda b, g: b"\x92" + _bin16(b) + enc(g)),
    "outer-signature-as-bin16": _outer(lambda b, g: b"\x92" + enc(b) + _bin16(g)),
    "outer-body-as-str": _outer(lambda b, g: enc([b.decode("latin-1"), g])),
    "outer-body-as-list": _outer(lambda b, g: enc([codec.decode(b, 1 << 20), g])),
    "outer-signature-63-bytes": _outer(lambda b, g: enc([b, g[:63]])),
    "outer-signature-65-bytes": _outer(lambda b, g: enc([b, g + b"\x00"])),
    "outer-signature-empty": _outer(lambda b, g: enc([b, b""])),
    "outer-signature-nil": _outer(lambda b, g: b"\x92" + enc(b) + b"\xc0"),
    "outer-three-items": _outer(lambda b, g: enc([b, g, g])),
    "outer-one-item": _outer(lambda b, g: enc([b])),
    "outer-is-the-body": _outer(lambda b, g: b),
    "outer-float": lambda s: b"\xcb" + struct.pack(">d", 1.5),
    "deep-nesting": lambda s: b"\x91" * 100_000 + b"\x00",
    "array-claims-4g-items": lambda s: b"\xdd\xff\xff\xff\xff\x00",
    "bin-claims-4g-bytes": lambda s: b"\xc6\xff\xff\xff\xff\x00",
    "exactly-the-size-cap": lambda s: b"\xc0" * limits.TX_BYTES_MAX,
}


@pytest.mark.parametrize("build", OUTER.values(), ids=OUTER.keys())
def test_broken_wire_is_malformed(scene: Scene, build: Callable[[Scene], bytes]) -> None:
    assert_rejected(scene.w, build(scene), Result.MALFORMED)


def _huge_allocate(s: Scene) -> bytes:
    zone = "Z" * limits.CODE_CHARS_MAX
    rows = [
        (bytes([n % 256, n // 256]) * 16, 1, zone) for n in range(limits.ALLOCATIONS_PER_TX_MAX)
    ]
    data = s.tx(s.namur, allocate(NAM, *rows))
    assert len(data) > limits.TX_BYTES_MAX
    return data


TOO_LARGE = {
    "garbage-one-byte-over": lambda s: b"\x00" * (limits.TX_BYTES_MAX + 1),
    "valid-prefix-padded": lambda s: _good(s) + b"\x00" * limits.TX_BYTES_MAX,
    "signed-allocate-over-the-cap": _huge_allocate,
}


@pytest.mark.parametrize("build", TOO_LARGE.values(), ids=TOO_LARGE.keys())
def test_oversized(scene: Scene, build: Callable[[Scene], bytes]) -> None:
    assert_rejected(scene.w, build(scene), Result.TOO_LARGE)


def test_5001_allocations_are_malformed(scene: Scene) -> None:
    rows = [(n.to_bytes(32, "big"), 1, "A") for n in range(limits.ALLOCATIONS_PER_TX_MAX + 1)]
    data = scene.tx(scene.namur, allocate(NAM, *rows))
    assert len(data) <= limits.TX_BYTES_MAX
    assert_rejected(scene.w, data, Result.MALFORMED)


# --- header fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [enc(0), enc(23), enc(99), enc(255), enc(65_535), enc(-1), enc(2**63 - 1), b"\xc3", b"\xc2"],
    ids=["0", "23", "99", "255", "65535", "minus-1", "int64-max", "true", "false"],
)
def test_unknown_kind(scene: Scene, kind: bytes) -> None:
    parts = pay_parts(scene)
    parts[KIND] = kind
    assert_rejected(scene.w, signed(scene.alice, fixarray(parts)), Result.UNKNOWN_KIND)


@pytest.mark.parametrize(
    "version",
    [enc(0), enc(1), enc(3), enc(255), enc(-1), b"\xc3", enc("2"), b"\xc0", enc(b"\x02")],
    ids=["0", "1-before-item-roots", "3", "255", "minus-1", "true", "str-2", "nil", "bin-2"],
)
def test_unsupported_version(scene: Scene, version: bytes) -> None:
    parts = pay_parts(scene)
    parts[VERSION] = version
    assert_rejected(scene.w, signed(scene.alice, fixarray(parts)), Result.UNSUPPORTED_VERSION)


def test_unknown_kind_of_any_length(scene: Scene) -> None:
    parts = pay_parts(scene)[:5]
    parts[KIND] = enc(42)
    assert_rejected(scene.w, signed(scene.alice, fixarray(parts)), Result.UNKNOWN_KIND)


@pytest.mark.parametrize(
    "chain_id",
    # Longer than limits.CHAIN_ID_CHARS_MAX: never this chain, answered as any other chain id.
    ["relance-other", "", "Relance-test", "relance-test ", "relance-tést", "c" * 49, "c" * 255],
)
def test_wrong_chain(scene: Scene, chain_id: str) -> None:
    tx = t.Tx(chain_id, pk(scene.alice), 1, t.Pay(NAM, pk(scene.bakery), 5_00, ""))
    assert_rejected(scene.w, tx.sign(scene.alice).encode(), Result.WRONG_CHAIN)


@pytest.mark.parametrize("chars", [256, 300, 5_000])
def test_a_chain_id_no_signature_can_cover_is_another_chain(scene: Scene, chars: int) -> None:
    parts = pay_parts(scene)
    parts[2] = enc("c" * chars)
    assert_rejected(scene.w, signed(scene.alice, fixarray(parts)), Result.WRONG_CHAIN)


def test_a_chain_id_that_is_no_string_is_malformed(scene: Scene) -> None:
    parts = pay_parts(scene)
    parts[2] = enc(7)
    assert_rejected(scene.w, signed(scene.alice, fixarray(parts)), Result.MALFORMED)


def test_a_malformed_field_wins_over_a_long_chain_id(scene: Scene) -> None:
    parts = pay_parts(scene)
    parts[2], parts[3] = enc("c" * 300), enc(b"short key")
    assert_rejected(scene.w, signed(scene.alice, fixarray(parts)), Result.MALFORMED)


# --- signatures -----------------------------------------------------------------------------


def _resign(s: Scene, sig: Callable[[Scene, bytes, bytes], bytes]) -> bytes:
    body, good = _parts(s)
    return enc([body, sig(s, body, good)])


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def _body_edited_after_signing(s: Scene) -> bytes:
    body, sig = _parts(s)
    return enc([body[:-1] + b"!", sig])  # memo "hi" -> "h!"


BAD_SIGNATURES = {
    "first-bit-flipped": lambda s: _resign(s, lambda s, b, g: _flip(g, 0)),
    "last-bit-flipped": lambda s: _resign(s, lambda s, b, g: _flip(g, 63)),
    "all-zero": lambda s: _resign(s, lambda s, b, g: bytes(64)),
    "all-ff": lambda s: _resign(s, lambda s, b, g: b"\xff" * 64),
    "another-key": lambda s: _resign(s, lambda s, b, g: s.bob.sign(Domain.TX, CHAIN_ID, b)),
    "another-chain": lambda s: _resign(s, lambda s, b, g: s.alice.sign(Domain.TX, "x", b)),
    "authorization-domain": lambda s: _resign(
        s, lambda s, b, g: s.alice.sign(Domain.AUTHORIZATION, CHAIN_ID, b)
    ),
    "vote-domain": lambda s: _resign(s, lambda s, b, g: s.alice.sign(Domain.VOTE, CHAIN_ID, b)),
    "no-domain": lambda s: _resign(s, lambda s, b, g: SigningKey(s.alice.seed).sign(b).signature),
    "body-edited-after-signing": _body_edited_after_signing,
    "halves-swapped": lambda s: _resign(s, lambda s, b, g: g[32:] + g[:32]),
}


@pytest.mark.parametrize("build", BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
def test_bad_signature(scene: Scene, build: Callable[[Scene], bytes]) -> None:
    assert_rejected(scene.w, build(scene), Result.BAD_SIGNATURE)


@pytest.mark.parametrize("multiple", [1, 2, 7])
def test_malleated_signature(scene: Scene, multiple: int) -> None:
    """(R, s + k·L) passes a lax verifier: another signature on the same body, refused."""
    body, sig = _parts(scene)
    s_value = int.from_bytes(sig[32:], "little")
    assert s_value < _L
    malleated = sig[:32] + (s_value + multiple * _L).to_bytes(32, "little")
    message = signing_bytes(Domain.TX, CHAIN_ID, body)
    assert lax_verify(pk(scene.alice), message, malleated)
    assert not verify(Domain.TX, CHAIN_ID, body, pk(scene.alice), malleated)
    assert_rejected(scene.w, enc([body, malleated]), Result.BAD_SIGNATURE)
    scene.apply_ok(enc([body, sig]))  # the original still applies


@pytest.fixture
def small_order_scene(scene: Scene) -> Scene:
    """The scene where Namur gave 1.00 to each small-order key (allocate checks no points)."""
    keys = [bytes.fromhex(h) for h in SMALL_ORDER_KEYS.values()]
    scene.do(scene.namur, allocate(NAM, *((key, 1_00, "NA-1") for key in keys)))
    return scene


@pytest.mark.parametrize("key_hex", SMALL_ORDER_KEYS.values(), ids=SMALL_ORDER_KEYS.keys())
@pytest.mark.parametrize("forgery", ["r-times-base", "identity-r-zero-s"])
def test_small_order_sender(small_order_scene: Scene, key_hex: str, forgery: str) -> None:
    s = small_order_scene
    key = t.PublicKey(bytes.fromhex(key_hex))
    assert s.w.holder(key) is not None
    body = t.Tx(CHAIN_ID, key, 0, t.Pay(NAM, pk(s.bakery), 1_00, "")).body()
    message = signing_bytes(Domain.TX, CHAIN_ID, body)
    if forgery == "r-times-base":
        signature = forge(key)
        assert lax_verify(key, message, signature)
    else:
        signature = SMALL_ORDER_KEYS_IDENTITY + bytes(32)
        if key_hex == SMALL_ORDER_KEYS["identity"]:
            assert lax_verify(key, message, signature)
    assert_rejected(s.w, enc([body, signature]), Result.BAD_SIGNATURE)


@pytest.mark.parametrize("key_hex", SMALL_ORDER_KEYS.values(), ids=SMALL_ORDER_KEYS.keys())
def test_small_order_holder_in_an_authorization(small_order_scene: Scene, key_hex: str) -> None:
    s = small_order_scene
    key = t.PublicKey(bytes.fromhex(key_hex))
    auth = t.Authorization(key, NAM, b"", 1_00, NAM_UNTIL_MS, bytes(16))
    signature = forge(key)
    assert lax_verify(key, signing_bytes(Domain.AUTHORIZATION, CHAIN_ID, auth.encode()), signature)
    payload = t.PayAuthorized(auth, signature, 1_00, "")
    assert_rejected(s.w, s.tx(s.bakery, payload), Result.BAD_AUTHORIZATION)


# --- sequences ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sequence", [0, 2, 3, 2**32, 2**63 - 1], ids=["replayed", "skip-1", "skip-2", "2^32", "max"]
)
def test_bad_sequence(scene: Scene, sequence: int) -> None:
    assert scene.w.sequences[pk(scene.alice)] == 1
    data = scene.tx(scene.alice, t.Pay(NAM, pk(scene.bakery), 5_00, ""), sequence)
    assert_rejected(scene.w, data, Result.BAD_SEQUENCE)


def test_replayed_bytes(scene: Scene) -> None:
    data = _good(scene)
    scene.apply_ok(data)
    assert_rejected(scene.w, data, Result.BAD_SEQUENCE)


def test_first_sequence_of_a_new_key_is_zero(scene: Scene) -> None:
    scene.do(scene.namur, allocate(NAM, (scene.app, 1_00, "NA-2")))
    data = scene.tx(scene.app, t.Pay(NAM, pk(scene.bakery), 1_00, ""), 1)
    assert_rejected(scene.w, data, Result.BAD_SEQUENCE)
    scene.apply_ok(scene.tx(scene.app, t.Pay(NAM, pk(scene.bakery), 1_00, ""), 0))


# --- amounts ---------------------------------------------------------------------------


AMOUNTS = [0, -1, -(2**63), AMOUNT_MAX + 1, 2**63 - 1]
AMOUNT_IDS = ["zero", "minus-one", "int64-min", "cap-plus-one", "int64-max"]


def _amount_cases() -> list[object]:
    makers: dict[str, Callable[[Scene, int], bytes]] = {
        "pay": lambda s, a: s.tx(s.alice, t.Pay(NAM, pk(s.bakery), a, "")),
        "fund": lambda s, a: s.tx(s.bank, t.Fund(NAM, a, "DEP-X")),
        "withdraw": lambda s, a: s.tx(s.bank, t.Withdraw(NAM, a, "RET-X")),
        "allocate": lambda s, a: s.tx(s.namur, allocate(NAM, (s.app, a, "NA-1"))),
        "transfer": lambda s, a: s.tx(s.bakery, t.Transfer(pk(s.supplier), pk(s.namur), a, "")),
        "redeem": lambda s, a: s.tx(s.bakery, t.Redeem(pk(s.namur), a)),
        "refund": lambda s, a: s.tx(s.bakery, t.Refund(pk(s.alice), NAM, a, "")),
        "campaign-max": lambda s, a: s.tx(
            s.namur, t.CreateCampaign("NEW", "N", (), (), 0, NAM_UNTIL_MS, a)
        ),
    }
    return [
        pytest.param(make, amount, id=f"{name}-{amount_id}")
        for name, make in makers.items()
        for amount, amount_id in zip(AMOUNTS, AMOUNT_IDS, strict=True)
    ]


@pytest.mark.parametrize(("make", "amount"), _amount_cases())
def test_bad_amount(scene: Scene, make: Callable[[Scene, int], bytes], amount: int) -> None:
    assert_rejected(scene.w, make(scene, amount), Result.BAD_AMOUNT)


def test_the_amount_cap_itself_is_an_amount(scene: Scene) -> None:
    scene.apply_ok(scene.tx(scene.bank, t.Fund(NAM, AMOUNT_MAX, "DEP-MAX")))


# --- who and where ---------------------------------------------------------------------


def _pay(
    s: Scene, to: Signer, cents: int = 1_00, code: str = NAM, by: Signer | None = None
) -> bytes:
    return s.tx(by or s.alice, t.Pay(code, pk(to), cents, ""))


def _expired(s: Scene) -> bytes:
    s.w.time_ms = NAM_UNTIL_MS
    return _pay(s, s.bakery)


RULES = [
    ("unknown-merchant", Result.UNKNOWN_MERCHANT, lambda s: _pay(s, s.stranger)),
    ("suspended-merchant", Result.MERCHANT_SUSPENDED, lambda s: _pay(s, s.closed_shop)),
    ("campaign-not-yet-open", Result.CAMPAIGN_NOT_ACTIVE, lambda s: _pay(s, s.bakery, code=LATER)),
    ("campaign-expired", Result.CAMPAIGN_NOT_ACTIVE, _expired),
    ("merchant-outside-zones", Result.MERCHANT_NOT_ELIGIBLE, lambda s: _pay(s, s.grocer, code=NA1)),
    ("merchant-outside-categories", Result.MERCHANT_NOT_ELIGIBLE, lambda s: _pay(s, s.bar)),
    ("holder-pays-holder", Result.UNKNOWN_MERCHANT, lambda s: _pay(s, s.bob)),
    ("voucher-pays-holder", Result.UNKNOWN_MERCHANT, lambda s: _pay(s, s.alice, by=s.voucher)),
    ("overspend-by-one-cent", Result.INSUFFICIENT_FUNDS, lambda s: _pay(s, s.bakery, 40_01)),
]


@pytest.mark.parametrize(
    ("code", "build"), [pytest.param(c, b, id=i) for i, c, b in RULES]
)  # fmt: skip
def test_rule_rejections(scene: Scene, code: Result, build: Callable[[Scene], bytes]) -> None:
    assert_rejected(scene.w, build(scene), code)


# --- blocks ---------------------------------------------------------------------------------


BAD_IN_BLOCK = {
    "malformed": (lambda s: _good(s)[:-1], Result.MALFORMED),
    "bad-signature": (lambda s: _resign(s, lambda s, b, g: _flip(g, 9)), Result.BAD_SIGNATURE),
    "bad-sequence": (
        lambda s: s.tx(s.bob, t.Pay(NAM, pk(s.bakery), 1, ""), 5),
        Result.BAD_SEQUENCE,
    ),
    "overspend": (lambda s: _pay(s, s.bakery, 40_01, by=s.alice), Result.INSUFFICIENT_FUNDS),
    "too-large": (lambda s: b"\x00" * (limits.TX_BYTES_MAX + 1), Result.TOO_LARGE),
}


@pytest.mark.parametrize("bad", BAD_IN_BLOCK.values(), ids=BAD_IN_BLOCK.keys())
def test_one_bad_transaction_rejects_the_block(
    scene: Scene, bad: tuple[Callable[[Scene], bytes], Result]
) -> None:
    s = scene
    build, code = bad
    first = s.tx(s.voucher, t.Sweep(NAM, pk(s.app)))
    last = s.tx(s.bank, t.Fund(NAM, 1_00, "DEP-BLOCK"))
    items, root, height = s.w.view.items(), s.w.root(), s.w.height
    outcome = execute_block(s.w.view, s.w.time_ms, [first, build(s), last], s.w.next_height)
    assert [o.result for o in outcome.outcomes] == [Result.OK, code, Result.OK]
    assert outcome.all_ok is False
    applied = s.w.apply(first, build(s), last)
    assert applied.all_ok is False
    assert (s.w.view.items(), s.w.root(), s.w.height) == (items, root, height)
    # A proposer dropping the bad one gets exactly the writes of the two good ones.
    without = execute_block(s.w.view, s.w.time_ms, [first, last], s.w.next_height)
    assert outcome.writes == without.writes
    s.apply_ok(first, last)


def test_two_good_payments_that_overspend_together(scene: Scene) -> None:
    s = scene
    txs = s.w.sign_block(
        (s.alice, t.Pay(NAM, pk(s.bakery), 30_00, "")),
        (s.alice, t.Pay(NAM, pk(s.bakery), 10_01, "")),
    )
    root = s.w.root()
    outcome = s.w.apply(*txs)
    assert [o.result for o in outcome.outcomes] == [Result.OK, Result.INSUFFICIENT_FUNDS]
    assert s.w.root() == root


def test_rejected_transaction_in_an_executor_stages_nothing(scene: Scene) -> None:
    s = scene
    executor = s.w.executor()
    assert executor.execute(s.tx(s.voucher, t.Sweep(NAM, pk(s.app)))).result == Result.OK
    staged = executor.writes()
    for data in (_pay(s, s.bakery, 40_01), _good(s)[:-1], _pay(s, s.stranger)):
        assert executor.execute(data).result != Result.OK
        assert executor.writes() == staged


def test_decode_tx_never_raises_on_prefixes(scene: Scene) -> None:
    data = scene.tx(scene.alice, t.Pay(NAM, pk(scene.bakery), 5_00, "hi"))
    for n in range(len(data)):
        assert t.decode_tx(data[:n], CHAIN_ID) == Result.MALFORMED
    decoded = t.decode_tx(data, CHAIN_ID)
    assert isinstance(decoded, t.SignedTx)
    assert decoded.encode() == data
    assert decoded.tx.body() == decoded.body


# --- validator kinds: shapes the decoder refuses --------------------------------------------


def _validator_tx(s: Scene, kind: t.Kind, fields: list[codec.Value]) -> bytes:
    """A body of ``kind`` with raw ``fields``, signed by validator v0 at its next sequence."""
    values: list[codec.Value] = [t.VERSION, int(kind), CHAIN_ID, pk(s.v0), 0, *fields]
    return signed(s.v0, enc(values))


_VOTE = vote_signing_body(1, 4, 0, bytes(32), signer("validator3").public_key)
_SIG = bytes(64)
_APPROVAL: list[codec.Value] = [signer("validator1").public_key, _SIG]
_ENTRY: list[codec.Value] = [signer("validator1").public_key, 1, "v1", "commune"]
_MAP = cast(codec.Value, {})  # msgpack maps are no field's shape


def _ev_fields(first: codec.Value = _VOTE, sig: codec.Value = _SIG) -> list[codec.Value]:
    return [first, sig, _VOTE, _SIG]


def _admit_fields(**changes: codec.Value) -> list[codec.Value]:
    fields: dict[str, codec.Value] = {"zones": ["CH-1"], "approvals": [_APPROVAL], **changes}
    return [signer("charleroi").public_key, "Charleroi", "Ville", fields["zones"],
            fields["approvals"]]  # fmt: skip


def _change_fields(**changes: codec.Value) -> list[codec.Value]:
    fields: dict[str, codec.Value] = {"validators": [_ENTRY], "height": 7, **changes}
    return [fields["validators"], fields["height"], []]


VALIDATOR_SHAPES: dict[str, tuple[t.Kind, list[codec.Value]]] = {
    "evidence-empty-statement": (t.Kind.EVIDENCE, _ev_fields(b"")),
    "evidence-statement-over-the-cap": (
        t.Kind.EVIDENCE, _ev_fields(b"\x00" * (STATEMENT_BYTES_MAX + 1))),
    "evidence-statement-as-str": (t.Kind.EVIDENCE, _ev_fields("vote")),
    "evidence-statement-as-list": (t.Kind.EVIDENCE, _ev_fields([1, 6])),
    "evidence-signature-63-bytes": (t.Kind.EVIDENCE, _ev_fields(sig=_SIG[:63])),
    "evidence-signature-nil": (t.Kind.EVIDENCE, _ev_fields(sig=None)),
    "evidence-three-fields": (t.Kind.EVIDENCE, _ev_fields()[:3]),
    "admit-zones-as-str": (t.Kind.ADMIT_ISSUER, _admit_fields(zones="CH-1")),
    "admit-zone-as-int": (t.Kind.ADMIT_ISSUER, _admit_fields(zones=[1])),
    "admit-zone-too-long": (
        t.Kind.ADMIT_ISSUER, _admit_fields(zones=["Z" * (limits.CODE_CHARS_MAX + 1)])),
    "admit-approvals-as-map": (t.Kind.ADMIT_ISSUER, _admit_fields(approvals=_MAP)),
    "admit-approval-three-items": (t.Kind.ADMIT_ISSUER, _admit_fields(
        approvals=[[*_APPROVAL, b""]])),
    "admit-approval-key-31-bytes": (t.Kind.ADMIT_ISSUER, _admit_fields(
        approvals=[[signer("validator1").public_key[:31], _SIG]])),
    "admit-approval-signature-65-bytes": (t.Kind.ADMIT_ISSUER, _admit_fields(
        approvals=[[signer("validator1").public_key, _SIG + b"\x00"]])),
    "change-validators-as-map": (t.Kind.CHANGE_VALIDATORS, _change_fields(validators=_MAP)),
    "change-entry-three-items": (t.Kind.CHANGE_VALIDATORS, _change_fields(
        validators=[_ENTRY[:3]])),
    "change-power-as-str": (t.Kind.CHANGE_VALIDATORS, _change_fields(
        validators=[[_ENTRY[0], "1", "v1", "commune"]])),
    "change-power-above-int64": (t.Kind.CHANGE_VALIDATORS, _change_fields(
        validators=[[_ENTRY[0], 2**64 - 1, "v1", "commune"]])),
    "change-name-too-long": (t.Kind.CHANGE_VALIDATORS, _change_fields(
        validators=[[_ENTRY[0], 1, "n" * (limits.NAME_CHARS_MAX + 1), "commune"]])),
    "change-height-negative": (t.Kind.CHANGE_VALIDATORS, _change_fields(height=-1)),
    "change-height-as-nil": (t.Kind.CHANGE_VALIDATORS, _change_fields(height=None)),
}  # fmt: skip


@pytest.mark.parametrize("shape", VALIDATOR_SHAPES.values(), ids=VALIDATOR_SHAPES.keys())
def test_validator_kind_shapes_are_malformed(
    scene: Scene, shape: tuple[t.Kind, list[codec.Value]]
) -> None:
    kind, fields = shape
    assert_rejected(scene.w, _validator_tx(scene, kind, fields), Result.MALFORMED)


def test_the_shape_builder_makes_decodable_validator_bodies(scene: Scene) -> None:
    """The unaltered fields decode: the cases above fail on their one change only."""
    for kind, fields in (
        (t.Kind.EVIDENCE, _ev_fields()),
        (t.Kind.ADMIT_ISSUER, _admit_fields()),
        (t.Kind.CHANGE_VALIDATORS, _change_fields()),
    ):
        decoded = t.decode_tx(_validator_tx(scene, kind, fields), CHAIN_ID)
        assert isinstance(decoded, t.SignedTx), kind
        assert scene.w.check(_validator_tx(scene, kind, fields)) != Result.MALFORMED
