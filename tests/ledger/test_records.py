"""State records declared by field specs (``node.ledger.records``): the compiled codec
writes the bytes the hand-written one wrote, and refuses what it refused.

Every stored state root depends on these bytes, so the reference below is the hand
encoding and decoding the records had before they were declared (session 7), copied
here unchanged in substance: the generic codec is compared with it on generated
records, and on generated near-records with one or two fields out of shape or bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import ClassVar, get_args

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.ledger import records as r
from node.ledger.tx import Address
from node.protocol import codec, limits
from node.protocol.codec import DecodeError, Value
from node.protocol.crypto import Digest, PublicKey

BIG = 2**63 - 1
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- the reference: the hand codec the records had before they were declared ---------
# (node/ledger/records.py at 25c3503, each type's encode() and decode(), verbatim but
# for names.)


def _items(data: bytes, length: int) -> list[Value]:
    items = codec.as_list(codec.decode_trusted(data), length)
    if items[0] != 1:
        raise DecodeError("record version")
    return items


def _key(value: Value) -> PublicKey:
    return PublicKey(codec.as_bytes(value, 32))


def _strs(value: Value) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise DecodeError("expected a list of strings")
    return tuple(codec.as_str(v, limits.NAME_CHARS_MAX) for v in value)


def _validator_list(value: Value) -> tuple[r.Validator, ...]:
    if not isinstance(value, list):
        raise DecodeError("validators")
    out = []
    for item in value:
        key, power, name, role = codec.as_list(item, 4)
        out.append(
            r.Validator(
                _key(key),
                codec.as_int(power, 1, BIG),
                codec.as_str(name, limits.NAME_CHARS_MAX),
                codec.as_str(role, limits.CODE_CHARS_MAX),
            )
        )
    return tuple(out)


def _validator_values(vs: tuple[r.Validator, ...]) -> list[Value]:
    return [[v.public_key, v.power, v.name, v.role] for v in vs]


def ref_params(data: bytes) -> r.Params:
    items = _items(data, 4)
    return r.Params(
        chain_id=codec.as_str(items[1], 255),
        bank=_key(items[2]),
        amount_max_cents=codec.as_int(items[3], 1, BIG),
    )


def ref_bank(data: bytes) -> r.Bank:
    items = _items(data, 3)
    return r.Bank(codec.as_str(items[1], limits.NAME_CHARS_MAX), codec.as_int(items[2], 0, BIG))


def ref_issuer(data: bytes) -> r.Issuer:
    items = _items(data, 9)
    return r.Issuer(
        name=codec.as_str(items[1], limits.NAME_CHARS_MAX),
        territory=codec.as_str(items[2], limits.NAME_CHARS_MAX),
        zones=_strs(items[3]),
        sequence=codec.as_int(items[4], 0, BIG),
        escrow_cents=codec.as_int(items[5], 0, BIG),
        pending_cents=codec.as_int(items[6], 0, BIG),
        redeemed_cents=codec.as_int(items[7], 0, BIG),
        settled_cents=codec.as_int(items[8], 0, BIG),
    )


def ref_merchant(data: bytes) -> r.Merchant:
    items = _items(data, 11)
    rows = items[9]
    if not isinstance(rows, list):
        raise DecodeError("balances")
    balances = []
    for row in rows:
        key, cents = codec.as_list(row, 2)
        balances.append((_key(key), codec.as_int(cents, 1, BIG)))
    street, postcode, town = codec.as_list(items[10], 3)
    return r.Merchant(
        issuer=_key(items[1]),
        name=codec.as_str(items[2], limits.NAME_CHARS_MAX),
        category=codec.as_str(items[3], limits.CODE_CHARS_MAX),
        zone=codec.as_str(items[4], limits.CODE_CHARS_MAX),
        payout_ref_hash=Digest(codec.as_bytes(items[5], 32)),
        auto_redeem=codec.as_bool(items[6]),
        active=codec.as_bool(items[7]),
        sequence=codec.as_int(items[8], 0, BIG),
        balances=tuple(balances),
        address=Address(
            codec.as_str(street, limits.NAME_CHARS_MAX),
            codec.as_str(postcode, limits.POSTCODE_CHARS_MAX),
            codec.as_str(town, limits.NAME_CHARS_MAX),
        ),
    )


def ref_holder(data: bytes) -> r.Holder:
    items = _items(data, 3)
    rows = items[2]
    if not isinstance(rows, list):
        raise DecodeError("balances")
    balances = []
    for row in rows:
        code, cents = codec.as_list(row, 2)
        balances.append((codec.as_str(code, limits.CODE_CHARS_MAX), codec.as_int(cents, 1, BIG)))
    return r.Holder(codec.as_int(items[1], 0, BIG), tuple(balances))


def ref_auditor(data: bytes) -> r.Auditor:
    return r.Auditor(codec.as_str(_items(data, 2)[1], limits.NAME_CHARS_MAX))


def ref_campaign(data: bytes) -> r.Campaign:
    items = _items(data, 17)
    ints = [codec.as_int(v, 0, BIG) for v in items[9:17]]
    return r.Campaign(
        issuer=_key(items[1]),
        name=codec.as_str(items[2], limits.NAME_CHARS_MAX),
        zones=_strs(items[3]),
        categories=_strs(items[4]),
        valid_from_ms=codec.as_int(items[5], 0, BIG),
        valid_until_ms=codec.as_int(items[6], 0, BIG),
        max_per_holder_cents=codec.as_int(items[7], 1, BIG),
        closed=codec.as_bool(items[8]),
        budget_cents=ints[0],
        outstanding_cents=ints[1],
        funded_cents=ints[2],
        allocated_cents=ints[3],
        spent_cents=ints[4],
        refunded_cents=ints[5],
        returned_cents=ints[6],
        withdrawn_cents=ints[7],
    )


def ref_payout(data: bytes) -> r.Payout:
    items = _items(data, 8)
    return r.Payout(
        merchant=_key(items[1]),
        issuer=_key(items[2]),
        amount_cents=codec.as_int(items[3], 1, BIG),
        created_ms=codec.as_int(items[4], 0, BIG),
        bank_reference=codec.as_str(items[5], limits.REFERENCE_CHARS_MAX),
        settled_ms=codec.as_int(items[6], 0, BIG),
        returned_reason=codec.as_str(items[7], limits.CODE_CHARS_MAX),
    )


def ref_validators(data: bytes) -> r.Validators:
    items = _items(data, 4)
    return r.Validators(
        current=_validator_list(items[1]),
        pending=_validator_list(items[2]),
        pending_height=codec.as_int(items[3], 0, BIG),
    )


def ref_upgrade(data: bytes) -> r.Upgrade:
    items = _items(data, 5)
    return r.Upgrade(
        codec.as_str(items[1], limits.CODE_CHARS_MAX),
        codec.as_str(items[2], limits.CODE_CHARS_MAX),
        codec.as_int(items[3], 1, BIG),
        codec.as_str(items[4], limits.CODE_CHARS_MAX),
    )


def ref_signing_key(data: bytes) -> r.SigningKey:
    items = _items(data, 4)
    return r.SigningKey(_key(items[1]), codec.as_int(items[2], 1, BIG), _key(items[3]))


REF_DECODE: dict[type[r.Record], Callable[[bytes], r.Record]] = {
    r.Params: ref_params,
    r.Bank: ref_bank,
    r.Issuer: ref_issuer,
    r.Merchant: ref_merchant,
    r.Holder: ref_holder,
    r.Auditor: ref_auditor,
    r.Campaign: ref_campaign,
    r.Payout: ref_payout,
    r.Counter: lambda data: r.Counter(codec.as_int(_items(data, 2)[1], 0, BIG)),
    r.Validators: ref_validators,
    r.ValidatorEra: lambda data: r.ValidatorEra(_validator_list(_items(data, 2)[1])),
    r.ZoneOwner: lambda data: r.ZoneOwner(_key(_items(data, 2)[1])),
    r.Consent: lambda data: r.Consent(_strs(_items(data, 2)[1])),
    r.Upgrade: ref_upgrade,
    r.SigningKey: ref_signing_key,
    r.Delegate: lambda data: r.Delegate(_key(_items(data, 2)[1])),
}


def ref_encode(x: r.Record) -> bytes:
    """One case per record type, as each type's ``encode`` was written."""
    match x:
        case r.Params():
            return codec.encode([1, x.chain_id, x.bank, x.amount_max_cents])
        case r.Bank():
            return codec.encode([1, x.name, x.sequence])
        case r.Issuer():
            return codec.encode(
                [
                    1,
                    x.name,
                    x.territory,
                    list(x.zones),
                    x.sequence,
                    x.escrow_cents,
                    x.pending_cents,
                    x.redeemed_cents,
                    x.settled_cents,
                ]
            )
        case r.Merchant():
            return codec.encode(
                [
                    1,
                    x.issuer,
                    x.name,
                    x.category,
                    x.zone,
                    x.payout_ref_hash,
                    x.auto_redeem,
                    x.active,
                    x.sequence,
                    [[k, c] for k, c in x.balances],
                    [x.address.street, x.address.postcode, x.address.town],
                ]
            )
        case r.Holder():
            return codec.encode([1, x.sequence, [[c, n] for c, n in x.balances]])
        case r.Auditor():
            return codec.encode([1, x.name])
        case r.Campaign():
            return codec.encode(
                [
                    1,
                    x.issuer,
                    x.name,
                    list(x.zones),
                    list(x.categories),
                    x.valid_from_ms,
                    x.valid_until_ms,
                    x.max_per_holder_cents,
                    x.closed,
                    x.budget_cents,
                    x.outstanding_cents,
                    x.funded_cents,
                    x.allocated_cents,
                    x.spent_cents,
                    x.refunded_cents,
                    x.returned_cents,
                    x.withdrawn_cents,
                ]
            )
        case r.Payout():
            return codec.encode(
                [
                    1,
                    x.merchant,
                    x.issuer,
                    x.amount_cents,
                    x.created_ms,
                    x.bank_reference,
                    x.settled_ms,
                    x.returned_reason,
                ]
            )
        case r.Counter():
            return codec.encode([1, x.value])
        case r.Validators():
            current, pending = _validator_values(x.current), _validator_values(x.pending)
            return codec.encode([1, current, pending, x.pending_height])
        case r.ValidatorEra():
            return codec.encode([1, _validator_values(x.validators)])
        case r.ZoneOwner():
            return codec.encode([1, x.issuer])
        case r.Consent():
            return codec.encode([1, list(x.zones)])
        case r.Upgrade():
            return codec.encode([1, x.protocol, x.software, x.height, x.previous])
        case r.SigningKey():
            return codec.encode([1, x.key, x.height, x.previous])
        case r.Delegate():
            return codec.encode([1, x.account])
    raise AssertionError(f"no reference encoding for {type(x).__name__}")


# --- generated records ------------------------------------------------------------

keys = st.binary(min_size=32, max_size=32).map(PublicKey)
counts = st.integers(0, BIG)
positives = st.integers(1, BIG)
names = st.text(max_size=limits.NAME_CHARS_MAX)
codes = st.text(max_size=limits.CODE_CHARS_MAX)
name_lists = st.lists(names, max_size=3).map(tuple)
validators = st.lists(st.builds(r.Validator, keys, positives, names, codes), max_size=3).map(tuple)
addresses = st.builds(Address, names, st.text(max_size=limits.POSTCODE_CHARS_MAX), names)

RECORDS: dict[type[r.Record], st.SearchStrategy[r.Record]] = {
    r.Params: st.builds(r.Params, st.text(max_size=255), keys, positives),
    r.Bank: st.builds(r.Bank, names, counts),
    r.Issuer: st.builds(r.Issuer, names, names, name_lists, counts, counts, counts, counts, counts),
    r.Merchant: st.builds(
        r.Merchant,
        keys,
        names,
        codes,
        codes,
        keys.map(Digest),
        st.booleans(),
        st.booleans(),
        counts,
        st.lists(st.tuples(keys, positives), max_size=3).map(tuple),
        addresses,
    ),
    r.Holder: st.builds(
        r.Holder, counts, st.lists(st.tuples(codes, positives), max_size=3).map(tuple)
    ),
    r.Auditor: st.builds(r.Auditor, names),
    r.Campaign: st.builds(
        r.Campaign,
        keys,
        names,
        name_lists,
        name_lists,
        counts,
        counts,
        positives,
        st.booleans(),
        *[counts] * 8,
    ),
    r.Payout: st.builds(
        r.Payout,
        keys,
        keys,
        positives,
        counts,
        st.text(max_size=limits.REFERENCE_CHARS_MAX),
        counts,
        codes,
    ),
    r.Counter: st.builds(r.Counter, counts),
    r.Validators: st.builds(r.Validators, validators, validators, counts),
    r.ValidatorEra: st.builds(r.ValidatorEra, validators),
    r.ZoneOwner: st.builds(r.ZoneOwner, keys),
    r.Consent: st.builds(r.Consent, name_lists),
    r.Upgrade: st.builds(r.Upgrade, codes, codes, positives, codes),
    r.SigningKey: st.builds(r.SigningKey, keys, positives, keys),
    r.Delegate: st.builds(r.Delegate, keys),
}
"""Every record type, each field anywhere within the bounds the hand decoder kept."""

TYPES = list(RECORDS)

# Values at and beyond every bound a field has: the integers around 0, 1 and 2**63-1, a
# boolean and a float for an integer, strings of every cap's length and one more, keys
# one byte short and long, nothing; rows and lists of them.
EDGES: list[object] = [
    *(-1, 0, 1, BIG, BIG + 1, True, False, 1.5, None),
    *(b"", bytes(31), bytes(32), bytes(33)),
    *("x" * n for n in (0, 12, 13, 32, 33, 64, 65, 120, 121, 255, 256)),
    [],
]
scalars = st.sampled_from(EDGES)
near_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(st.lists(scalars, min_size=2, max_size=4), max_size=2),
)


def _outcome(decode: Callable[[bytes], r.Record], data: bytes) -> object:
    try:
        return decode(data)
    except DecodeError:
        return "refused"


# --- tests ------------------------------------------------------------------------------


def test_every_record_type_is_declared_and_generated_here() -> None:
    assert set(r.RECORD_TYPES) == set(get_args(r.Record)) == set(RECORDS) == set(REF_DECODE)
    for cls in r.RECORD_TYPES:
        assert len(cls.SPEC) == len(fields(cls)), cls


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
@EXAMPLES
@given(data=st.data())
def test_records_round_trip_in_the_bytes_of_the_hand_encoding(
    cls: type[r.Record], data: st.DataObject
) -> None:
    record = data.draw(RECORDS[cls])
    encoded = record.encode()
    assert encoded == ref_encode(record)
    assert cls.decode(encoded) == record == REF_DECODE[cls](encoded)
    assert codec.decode(encoded, limits.TX_BYTES_MAX) is not None  # canonical


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
@EXAMPLES
@given(data=st.data())
def test_a_record_out_of_shape_or_bounds_is_refused_as_by_the_hand_decoder(
    cls: type[r.Record], data: st.DataObject
) -> None:
    values = msgpack.unpackb(data.draw(RECORDS[cls]).encode())
    for _ in range(data.draw(st.integers(1, 2), label="changes")):
        position = data.draw(st.integers(0, len(values)), label="position")
        if position == len(values):  # one field more or one less
            values = values[:-1] if data.draw(st.booleans(), label="shorter") else [*values, 0]
        else:
            values[position] = data.draw(near_values, label="value")
    raw = msgpack.packb(values, use_bin_type=True)
    assert _outcome(cls.decode, raw) == _outcome(REF_DECODE[cls], raw)


GOLDEN_K = bytes(range(32))
GOLDEN_K2 = bytes(range(32, 64))
GOLDEN_V = r.Validator(PublicKey(GOLDEN_K), 3, "Banque", "bank")
GOLDEN: list[tuple[r.Record, str]] = [
    (
        r.Params("relance-test", PublicKey(GOLDEN_K), 10**9),
        "9401ac72656c616e63652d74657374c420" + GOLDEN_K.hex() + "ce3b9aca00",
    ),
    (r.Bank("Banque", 7), "9301a642616e71756507"),
    (
        r.Issuer("Commune", "Terr", ("Z1", "Z2"), 3, 100, 20, 30, 10),
        "9901a7436f6d6d756e65a45465727292a25a31a25a320364141e0a",
    ),
    (
        r.Merchant(
            PublicKey(GOLDEN_K),
            "Boulangerie",
            "47.24",
            "Z1",
            Digest(GOLDEN_K2),
            True,
            False,
            12,
            ((PublicKey(GOLDEN_K), 100), (PublicKey(GOLDEN_K2), 5)),
            Address("1 rue", "1000", "Ville"),
        ),
        "9b01c420"
        + GOLDEN_K.hex()
        + "ab426f756c616e6765726965a534372e3234a25a31c420"
        + GOLDEN_K2.hex()
        + "c3c20c9292c420"
        + GOLDEN_K.hex()
        + "6492c420"
        + GOLDEN_K2.hex()
        + "0593a53120727565a431303030a556696c6c65",
    ),
    (
        r.Holder(5, (("CAMP-A", 1500), ("CAMP-B", 20))),
        "9301059292a643414d502d41cd05dc92a643414d502d4214",
    ),
    (r.Auditor("Cour des comptes"), "9201b0436f75722064657320636f6d70746573"),
    (
        r.Campaign(
            PublicKey(GOLDEN_K),
            "Camp",
            ("Z1",),
            ("47",),
            1,
            10**12,
            5000,
            True,
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
        ),
        "dc001101c420" + GOLDEN_K.hex() + "a443616d7091a25a3191a2343701cf000000e8d4a51000cd1388c3"
        "0102030405060708",
    ),
    (
        r.Payout(PublicKey(GOLDEN_K), PublicKey(GOLDEN_K2), 100, 5, "REF-1", 6, "AC04"),
        "9801c420" + GOLDEN_K.hex() + "c420" + GOLDEN_K2.hex() + "6405a55245462d3106a441433034",
    ),
    (r.Counter(42), "92012a"),
    (
        r.Validators(
            (GOLDEN_V,), (GOLDEN_V, r.Validator(PublicKey(GOLDEN_K2), 1, "Commune", "commune")), 9
        ),
        "94019194c420"
        + GOLDEN_K.hex()
        + "03a642616e717565a462616e6b9294c420"
        + GOLDEN_K.hex()
        + "03a642616e717565a462616e6b94c420"
        + GOLDEN_K2.hex()
        + "01a7436f6d6d756e65a7636f6d6d"
        "756e6509",
    ),
    (r.ValidatorEra((GOLDEN_V,)), "92019194c420" + GOLDEN_K.hex() + "03a642616e717565a462616e6b"),
    (r.ZoneOwner(PublicKey(GOLDEN_K)), "9201c420" + GOLDEN_K.hex()),
    (r.Consent(("Z1", "Z3")), "920192a25a31a25a33"),
    (r.Upgrade("p2", "relance-2.0", 100, "p1"), "9501a27032ab72656c616e63652d322e3064a27031"),
    (
        r.SigningKey(PublicKey(GOLDEN_K2), 50, PublicKey(GOLDEN_K)),
        "9401c420" + GOLDEN_K2.hex() + "32c420" + GOLDEN_K.hex(),
    ),
    (r.Delegate(PublicKey(GOLDEN_K)), "9201c420" + GOLDEN_K.hex()),
]
"""One record of each type and the bytes the hand encoding gave it."""
GOLDEN_IDS = [type(record).__name__ for record, _ in GOLDEN]


@pytest.mark.parametrize("record, golden", GOLDEN, ids=GOLDEN_IDS)
def test_each_record_type_keeps_its_golden_bytes(record: r.Record, golden: str) -> None:
    assert record.encode().hex() == golden
    assert type(record).decode(bytes.fromhex(golden)) == record


def _paths(value: object, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Every place in a value: each list item, at every depth."""
    if not isinstance(value, list):
        return []
    found = []
    for index, item in enumerate(value):
        found.append((*path, index))
        found.extend(_paths(item, (*path, index)))
    return found


def _with(value: list[object], path: tuple[int, ...], new: object) -> list[object]:
    """A copy of ``value`` with ``new`` at ``path``."""
    copy = _copy(value)
    *outer, last = path
    place = copy
    for index in outer:
        place = place[index]  # type: ignore[assignment]  # a list on the path
    place[last] = new
    return copy


def _copy(value: list[object]) -> list[object]:
    return [_copy(v) if isinstance(v, list) else v for v in value]


def _reshaped(value: list[object]) -> list[list[object]]:
    """Each list of the value (the record itself too) one item shorter and one longer."""
    out = []
    for path in [(), *_paths(value)]:
        place: object = value
        for index in path:
            place = place[index]  # type: ignore[index]  # a list on the path
        if isinstance(place, list) and path:
            out.append(_with(value, path, place[:-1]))
            out.append(_with(value, path, [*place, place[-1] if place else 0]))
    return [value[:-1], [*value, 0], *out]


@pytest.mark.parametrize("record, golden", GOLDEN, ids=GOLDEN_IDS)
def test_every_field_at_every_edge_is_refused_or_read_as_by_the_hand_decoder(
    record: r.Record, golden: str
) -> None:
    """Each place of a record of each type (its list rows and their items too) set to
    each value at and beyond every bound, and each list one item shorter or longer."""
    cls, values = type(record), msgpack.unpackb(bytes.fromhex(golden))
    variants = [_with(values, path, edge) for path in _paths(values) for edge in EDGES]
    refused = 0
    for variant in [*variants, *_reshaped(values)]:
        raw = msgpack.packb(variant, use_bin_type=True)
        expected = _outcome(REF_DECODE[cls], raw)
        assert _outcome(cls.decode, raw) == expected, variant
        refused += expected == "refused"
    assert 0 < refused < len(variants)  # both sides of the bounds were reached


def test_the_bounds_each_field_kept_are_refused_at_their_edge() -> None:
    key = PublicKey(GOLDEN_K)
    refused: list[tuple[type[r.Record], list[Value]]] = [
        (r.Payout, [1, key, key, 0, 0, "", 0, ""]),  # a payout of nothing
        (r.Holder, [1, 0, [["C", 0]]]),  # a zero balance row
        (r.Holder, [1, -1, []]),  # a negative sequence
        (r.Merchant, [1, key, "", "", "", key, True, True, 0, [[key, 0]], ["", "", ""]]),
        (r.Merchant, [1, key, "", "", "", key, True, True, 0, [], ["", "x" * 13, ""]]),
        (r.Params, [1, "x" * 256, key, 1]),
        (r.Campaign, [1, key, "", [], [], 0, 0, 0, False, *[0] * 8]),  # max per holder 0
        (r.Validators, [1, [[key, 0, "", ""]], [], 0]),  # a validator without power
        (r.Upgrade, [1, "p", "s", 0, "p"]),
        (r.Issuer, [1, "", "", ["x" * 121], 0, 0, 0, 0, 0]),
        (r.Counter, [2, 0]),  # another record version
        (r.Counter, [1, 0, 0]),  # one field more
        (r.Counter, [1, True]),  # a boolean is not a number
        (r.Bank, [1, "x" * (limits.NAME_CHARS_MAX + 1), 0]),
    ]
    for cls, values in refused:
        raw = msgpack.packb(values, use_bin_type=True)
        with pytest.raises(DecodeError):
            cls.decode(raw)
        with pytest.raises(DecodeError):
            REF_DECODE[cls](raw)
    # ... and one step inside each edge decodes.
    assert r.Payout.decode(msgpack.packb([1, key, key, 1, 0, "", 0, ""])).amount_cents == 1
    assert r.Params.decode(msgpack.packb([1, "x" * 255, key, 1])).chain_id == "x" * 255


def test_a_spec_that_does_not_name_every_field_is_refused_when_declared() -> None:
    @dataclass(frozen=True, slots=True)
    class Short(r.Declared):
        SPEC: ClassVar[tuple[r.Field, ...]] = (r.Field.COUNT,)
        a: int
        b: int

    with pytest.raises(TypeError, match="2 fields, 1 in SPEC"):
        r.declared(Short)
