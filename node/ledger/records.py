"""State records and their keys.

The whole ledger state is a map from keys to canonical msgpack records; the
state tree commits to it. Each key starts with one prefix byte naming the
record type. Records are frozen; a change is a new record.

Each record is declared as a transaction's payload is (``node.ledger.tx``): a
frozen dataclass with a ``SPEC``, one ``Field`` per field, from which ``@declared``
compiles its encoding ``[VERSION, fields...]`` and its bounded decoding, once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from operator import attrgetter
from typing import ClassVar, Final, Self, TypeVar

from node.ledger.tx import NO_ADDRESS, Address, decode_address
from node.protocol import codec, limits
from node.protocol.codec import DecodeError, Value
from node.protocol.crypto import HASH_BYTES, PUBLIC_KEY_BYTES, Digest, PublicKey

VERSION: Final = 1
_BIG: Final = 2**63 - 1
# What a stored Params record has always accepted; genesis admits only
# limits.CHAIN_ID_CHARS_MAX, so this bound is never the one that refuses.
_CHAIN_ID_STORED_CHARS_MAX: Final = 255


class Prefix(bytes, enum.Enum):
    PARAMS = b"G"
    BANK = b"B"
    ISSUER = b"I"
    MERCHANT = b"M"
    HOLDER = b"H"
    AUDITOR = b"A"
    CAMPAIGN = b"C"
    SPENT_AT = b"S"  # (holder, merchant, campaign) -> net cents paid, bounds refunds
    PAYOUT = b"Y"
    REFERENCE = b"R"  # bank references already used by fund / withdraw
    AUTHORIZATION = b"Q"  # spending authorizations already used
    CAMPAIGN_HOLDER = b"h"  # (campaign, holder) -> marker: who may hold a campaign balance
    VALIDATORS = b"V"  # the validator set in force, and a scheduled change
    NODE = b"N"  # a validator node key's sequence (evidence and governance senders)
    ZONE = b"Z"  # zone code -> the issuer owning it
    EVIDENCE = b"E"  # (validator, height, round, step) -> height the evidence was committed
    VALIDATOR_HISTORY = b"W"  # first height -> the validator set from that height on
    CONSENT = b"K"  # (region, commune) -> the commune's zones where the region's campaigns run
    UPGRADE = b"U"  # the last protocol upgrade scheduled by governance (pending or in force)
    SIGNING_KEY = b"J"  # account -> the key that signs for it (rotated by governance)
    DELEGATE = b"D"  # a rotated-in key -> the account it signs for


# Plain bytes for the key builders: enum attribute access is slow on the hot path.
_PARAMS: Final = Prefix.PARAMS.value
_BANK: Final = Prefix.BANK.value
_ISSUER: Final = Prefix.ISSUER.value
_MERCHANT: Final = Prefix.MERCHANT.value
_HOLDER: Final = Prefix.HOLDER.value
_AUDITOR: Final = Prefix.AUDITOR.value
_CAMPAIGN: Final = Prefix.CAMPAIGN.value
_SPENT_AT: Final = Prefix.SPENT_AT.value
_PAYOUT: Final = Prefix.PAYOUT.value
_REFERENCE: Final = Prefix.REFERENCE.value
_AUTHORIZATION: Final = Prefix.AUTHORIZATION.value
_CAMPAIGN_HOLDER: Final = Prefix.CAMPAIGN_HOLDER.value
_VALIDATORS: Final = Prefix.VALIDATORS.value
_NODE: Final = Prefix.NODE.value
_ZONE: Final = Prefix.ZONE.value
_EVIDENCE: Final = Prefix.EVIDENCE.value
_VALIDATOR_HISTORY: Final = Prefix.VALIDATOR_HISTORY.value
_CONSENT: Final = Prefix.CONSENT.value
_UPGRADE: Final = Prefix.UPGRADE.value
_SIGNING_KEY: Final = Prefix.SIGNING_KEY.value
_DELEGATE: Final = Prefix.DELEGATE.value


def params_key() -> bytes:
    return _PARAMS


def bank_key(pk: bytes) -> bytes:
    return _BANK + pk


def issuer_key(pk: bytes) -> bytes:
    return _ISSUER + pk


def merchant_key(pk: bytes) -> bytes:
    return _MERCHANT + pk


def holder_key(pk: bytes) -> bytes:
    return _HOLDER + pk


def auditor_key(pk: bytes) -> bytes:
    return _AUDITOR + pk


def campaign_key(code: str) -> bytes:
    return _CAMPAIGN + code.encode()


def spent_at_key(holder: bytes, merchant: bytes, campaign: str) -> bytes:
    return _SPENT_AT + holder + merchant + campaign.encode()


def payout_key(payout_id: bytes) -> bytes:
    return _PAYOUT + payout_id


def reference_key(reference: str) -> bytes:
    return _REFERENCE + reference.encode()


def authorization_key(authorization_id: bytes) -> bytes:
    return _AUTHORIZATION + authorization_id


def validators_key() -> bytes:
    return _VALIDATORS


def validator_history_key(first_height: int) -> bytes:
    return _VALIDATOR_HISTORY + first_height.to_bytes(8, "big")


def validator_history_prefix() -> bytes:
    return _VALIDATOR_HISTORY


def upgrade_key() -> bytes:
    return _UPGRADE


def signing_key_key(account: bytes) -> bytes:
    return _SIGNING_KEY + account


def delegate_key(key: bytes) -> bytes:
    return _DELEGATE + key


def node_key(pk: bytes) -> bytes:
    return _NODE + pk


def zone_key(zone: str) -> bytes:
    return _ZONE + zone.encode()


def consent_key(region: bytes, commune: bytes) -> bytes:
    return _CONSENT + region + commune


def evidence_key(validator: bytes, height: int, round: int, step: int) -> bytes:
    return (
        _EVIDENCE + validator + height.to_bytes(8, "big") + round.to_bytes(4, "big") + bytes([step])
    )


def campaign_holders_prefix(campaign: str) -> bytes:
    return _CAMPAIGN_HOLDER + campaign.encode() + b"\x00"


def campaign_holder_key(campaign: str, holder: bytes) -> bytes:
    return campaign_holders_prefix(campaign) + holder


_K = TypeVar("_K", bound=str | bytes)


# --- the field vocabulary ---------------------------------------------------------


class Field(enum.Enum):
    """How one record field is encoded and the bounds decoding holds it to.

    A record is the msgpack array ``[VERSION, fields...]``, its fields in the order of
    its ``SPEC``, as a transaction's payload is in ``node.ledger.tx``. The names match
    ``tx.Field`` where the meaning does; the bounds are the record's own (a stored
    amount is never negative, a balance row never zero). Bytes this node wrote decode
    without the canonical check (``codec.decode_trusted``), so each field is read with
    the typed accessors, which refuse every other type.
    """

    KEY = "key"  # a 32-byte public key
    DIGEST = "digest"  # a 32-byte hash
    BOOL = "bool"
    COUNT = "count"  # 0 .. 2**63-1: sequences, totals, times
    POSITIVE = "positive"  # 1 .. 2**63-1: an amount that exists only above zero, a height
    CHAIN_ID = "chain_id"
    NAME = "name"
    CODE = "code"
    REFERENCE = "reference"
    NAMES = "names"  # a list of names: zones, categories (each as long as a name)
    ISSUER_BALANCES = "issuer_balances"  # [[issuer key, positive cents], ...]
    CAMPAIGN_BALANCES = "campaign_balances"  # [[campaign code, positive cents], ...]
    VALIDATORS = "validators"  # [[key, positive power, name, role code], ...]
    ADDRESS = "address"  # [street, postcode, town]: ``tx.Address``


def _key(value: Value) -> PublicKey:
    return PublicKey(codec.as_bytes(value, PUBLIC_KEY_BYTES))


def _digest(value: Value) -> Digest:
    return Digest(codec.as_bytes(value, HASH_BYTES))


def _count(value: Value) -> int:
    return codec.as_int(value, 0, _BIG)


def _positive(value: Value) -> int:
    return codec.as_int(value, 1, _BIG)


def _chain_id(value: Value) -> str:
    return codec.as_str(value, _CHAIN_ID_STORED_CHARS_MAX)


def _name(value: Value) -> str:
    return codec.as_str(value, limits.NAME_CHARS_MAX)


def _code(value: Value) -> str:
    return codec.as_str(value, limits.CODE_CHARS_MAX)


def _reference(value: Value) -> str:
    return codec.as_str(value, limits.REFERENCE_CHARS_MAX)


def _names(value: Value) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise DecodeError("expected a list of strings")
    return tuple(_name(v) for v in value)


def _balances(value: Value, read_key: Callable[[Value], _K]) -> tuple[tuple[_K, int], ...]:
    """Rows ``[key, cents]``: a balance row is never zero."""
    if not isinstance(value, list):
        raise DecodeError("balances")
    rows = []
    for row in value:
        key, cents = codec.as_list(row, 2)
        rows.append((read_key(key), _positive(cents)))
    return tuple(rows)


def _issuer_balances(value: Value) -> tuple[tuple[PublicKey, int], ...]:
    return _balances(value, _key)


def _campaign_balances(value: Value) -> tuple[tuple[str, int], ...]:
    return _balances(value, _code)


@dataclass(frozen=True, slots=True)
class Validator:
    public_key: PublicKey
    power: int
    name: str
    role: str


def _validators(value: Value) -> tuple[Validator, ...]:
    if not isinstance(value, list):
        raise DecodeError("validators")
    out = []
    for item in value:
        key, power, name, role = codec.as_list(item, 4)
        out.append(Validator(_key(key), _positive(power), _name(name), _code(role)))
    return tuple(out)


_DECODERS: Final[dict[Field, Callable[[Value], object]]] = {
    Field.KEY: _key,
    Field.DIGEST: _digest,
    Field.BOOL: codec.as_bool,
    Field.COUNT: _count,
    Field.POSITIVE: _positive,
    Field.CHAIN_ID: _chain_id,
    Field.NAME: _name,
    Field.CODE: _code,
    Field.REFERENCE: _reference,
    Field.NAMES: _names,
    Field.ISSUER_BALANCES: _issuer_balances,
    Field.CAMPAIGN_BALANCES: _campaign_balances,
    Field.VALIDATORS: _validators,
    Field.ADDRESS: decode_address,
}


def _rows(rows: tuple[tuple[str | bytes, int], ...]) -> Value:
    return [[key, cents] for key, cents in rows]


def _validator_values(validators: tuple[Validator, ...]) -> Value:
    return [[v.public_key, v.power, v.name, v.role] for v in validators]


def _address_value(address: Address) -> Value:
    return [address.street, address.postcode, address.town]


# How a field that is not a scalar becomes a canonical value (a scalar is itself).
_ENCODERS: Final[dict[Field, Callable[..., Value]]] = {
    Field.NAMES: list,
    Field.ISSUER_BALANCES: _rows,
    Field.CAMPAIGN_BALANCES: _rows,
    Field.VALIDATORS: _validator_values,
    Field.ADDRESS: _address_value,
}


# --- declared records ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordCodec:
    """A record type's encoder and decoder, compiled once from its ``SPEC``."""

    encode: Callable[[Declared], bytes]
    decode: Callable[[bytes], Declared]


class Declared:
    """A state record declared by its ``SPEC``: one ``Field`` per dataclass field, in
    order. ``@declared`` compiles the spec into the class's ``CODEC``."""

    __slots__ = ()
    SPEC: ClassVar[tuple[Field, ...]]
    CODEC: ClassVar[RecordCodec]

    def encode(self) -> bytes:
        """The canonical bytes ``[VERSION, fields...]``."""
        return self.CODEC.encode(self)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """The record from bytes this node wrote or authenticated (``DecodeError`` if a
        field is out of its bounds)."""
        return cls.CODEC.decode(data)  # type: ignore[return-value]  # compiled for cls


_D = TypeVar("_D", bound=Declared)


def declared(cls: type[_D]) -> type[_D]:
    """Compile ``cls.SPEC`` into ``cls.CODEC``, once, at import: the per-field
    converters are looked up here, not per call (records are decoded and encoded for
    every payment)."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]  # a dataclass
    if len(names) != len(cls.SPEC):
        raise TypeError(f"{cls.__name__}: {len(names)} fields, {len(cls.SPEC)} in SPEC")
    cls.CODEC = RecordCodec(_encoder(names, cls.SPEC), _decoder(cls, cls.SPEC))
    return cls


def _encoder(names: tuple[str, ...], spec: tuple[Field, ...]) -> Callable[[Declared], bytes]:
    """``[VERSION, fields...]``: the fields read at once, the few lists converted."""
    converts = tuple((i + 1, _ENCODERS[f]) for i, f in enumerate(spec) if f in _ENCODERS)
    if len(names) == 1:
        (name,) = names
        convert = _ENCODERS.get(spec[0])

        def encode_one(record: Declared) -> bytes:
            value = getattr(record, name)
            return codec.encode([VERSION, value if convert is None else convert(value)])

        return encode_one
    get = attrgetter(*names)

    def encode(record: Declared) -> bytes:
        values: list[Value] = [VERSION, *get(record)]
        for position, convert in converts:
            values[position] = convert(values[position])
        return codec.encode(values)

    return encode


def _decoder(cls: type[_D], spec: tuple[Field, ...]) -> Callable[[bytes], _D]:
    """The record from ``[VERSION, fields...]``, each field read by its ``Field``'s
    decoder (``codec.decode_trusted`` leaves the types to them)."""
    decoders = tuple(_DECODERS[f] for f in spec)
    length = len(spec) + 1

    def decode(data: bytes) -> _D:
        items = codec.as_list(codec.decode_trusted(data), length)
        if items[0] != VERSION:
            raise DecodeError("record version")
        return cls(*[read(item) for read, item in zip(decoders, items[1:], strict=True)])

    return decode


# --- records ------------------------------------------------------------------


@declared
@dataclass(frozen=True, slots=True)
class Params(Declared):
    """Protocol constants from genesis, stored in state so proofs can reach them."""

    SPEC: ClassVar[tuple[Field, ...]] = (Field.CHAIN_ID, Field.KEY, Field.POSITIVE)
    chain_id: str
    bank: PublicKey
    amount_max_cents: int


@declared
@dataclass(frozen=True, slots=True)
class Bank(Declared):
    SPEC: ClassVar[tuple[Field, ...]] = (Field.NAME, Field.COUNT)
    name: str
    sequence: int


@declared
@dataclass(frozen=True, slots=True)
class Issuer(Declared):
    """A commune or region. ``escrow`` is what the bank holds for it; ``pending``
    the payouts not yet settled."""

    SPEC: ClassVar[tuple[Field, ...]] = (
        Field.NAME,
        Field.NAME,
        Field.NAMES,
        Field.COUNT,
        Field.COUNT,
        Field.COUNT,
        Field.COUNT,
        Field.COUNT,
    )
    name: str
    territory: str
    zones: tuple[str, ...]
    sequence: int
    escrow_cents: int
    pending_cents: int
    redeemed_cents: int
    settled_cents: int

    def after_redeem(self, cents: int) -> Issuer:
        """Totals after ``cents`` more became pending payouts (the hot path)."""
        return Issuer(
            self.name,
            self.territory,
            self.zones,
            self.sequence,
            self.escrow_cents,
            self.pending_cents + cents,
            self.redeemed_cents + cents,
            self.settled_cents,
        )

    def next_sequence(self) -> Issuer:
        return replace(self, sequence=self.sequence + 1)


@declared
@dataclass(frozen=True, slots=True)
class Merchant(Declared):
    """``balances`` holds unrestricted units per issuer, sorted by issuer key."""

    SPEC: ClassVar[tuple[Field, ...]] = (
        Field.KEY,
        Field.NAME,
        Field.CODE,
        Field.CODE,
        Field.DIGEST,
        Field.BOOL,
        Field.BOOL,
        Field.COUNT,
        Field.ISSUER_BALANCES,
        Field.ADDRESS,
    )
    issuer: PublicKey
    name: str
    category: str
    zone: str
    payout_ref_hash: Digest
    auto_redeem: bool
    active: bool
    sequence: int
    balances: tuple[tuple[PublicKey, int], ...]
    address: Address = NO_ADDRESS

    def balance(self, issuer: bytes) -> int:
        for key, cents in self.balances:
            if key == issuer:
                return cents
        return 0

    def with_balance(self, issuer: PublicKey, cents: int) -> Merchant:
        return self._with(self.sequence, _set_row(self.balances, issuer, cents))

    def next_sequence(self) -> Merchant:
        return self._with(self.sequence + 1, self.balances)

    def _with(self, sequence: int, balances: tuple[tuple[PublicKey, int], ...]) -> Merchant:
        # Explicit construction: dataclasses.replace is several times slower on the hot path.
        return Merchant(
            self.issuer,
            self.name,
            self.category,
            self.zone,
            self.payout_ref_hash,
            self.auto_redeem,
            self.active,
            sequence,
            balances,
            self.address,
        )


@declared
@dataclass(frozen=True, slots=True)
class Holder(Declared):
    """A citizen's key or a bearer voucher: a sequence and a balance per campaign."""

    SPEC: ClassVar[tuple[Field, ...]] = (Field.COUNT, Field.CAMPAIGN_BALANCES)
    sequence: int
    balances: tuple[tuple[str, int], ...]

    def balance(self, campaign: str) -> int:
        for code, cents in self.balances:
            if code == campaign:
                return cents
        return 0

    def with_balance(self, campaign: str, cents: int) -> Holder:
        return Holder(self.sequence, _set_row(self.balances, campaign, cents))

    def next_sequence(self) -> Holder:
        return Holder(self.sequence + 1, self.balances)


EMPTY_HOLDER: Final = Holder(0, ())


@declared
@dataclass(frozen=True, slots=True)
class Auditor(Declared):
    SPEC: ClassVar[tuple[Field, ...]] = (Field.NAME,)
    name: str


@declared
@dataclass(frozen=True, slots=True)
class Campaign(Declared):
    """Rules and running totals. ``budget`` is funded but not yet allocated;
    ``outstanding`` is the sum of holder balances in this campaign."""

    SPEC: ClassVar[tuple[Field, ...]] = (
        Field.KEY,
        Field.NAME,
        Field.NAMES,  # zones
        Field.NAMES,  # categories
        Field.COUNT,
        Field.COUNT,
        Field.POSITIVE,  # max_per_holder_cents
        Field.BOOL,
        Field.COUNT,  # budget_cents, then the seven running totals
        Field.COUNT,
        Field.COUNT,
        Field.COUNT,
        Field.COUNT,
        Field.COUNT,
        Field.COUNT,
        Field.COUNT,
    )
    issuer: PublicKey
    name: str
    zones: tuple[str, ...]
    categories: tuple[str, ...]
    valid_from_ms: int
    valid_until_ms: int
    max_per_holder_cents: int
    closed: bool
    budget_cents: int
    outstanding_cents: int
    funded_cents: int
    allocated_cents: int
    spent_cents: int
    refunded_cents: int
    returned_cents: int
    withdrawn_cents: int

    def is_active(self, time_ms: int) -> bool:
        return not self.closed and self.valid_from_ms <= time_ms < self.valid_until_ms

    def after_payment(self, cents: int) -> Campaign:
        """Totals after holders spent ``cents`` (explicit: this is the hot path)."""
        return Campaign(
            self.issuer,
            self.name,
            self.zones,
            self.categories,
            self.valid_from_ms,
            self.valid_until_ms,
            self.max_per_holder_cents,
            self.closed,
            self.budget_cents,
            self.outstanding_cents - cents,
            self.funded_cents,
            self.allocated_cents,
            self.spent_cents + cents,
            self.refunded_cents,
            self.returned_cents,
            self.withdrawn_cents,
        )


@declared
@dataclass(frozen=True, slots=True)
class Payout(Declared):
    """Units burnt by a merchant, owed in euros by the bank from the issuer's escrow.

    ``bank_reference`` is empty until settled. ``returned_reason`` is empty unless
    the bank returned the payout (a rejected transfer: its ISO 20022 return reason
    code); a returned payout's units are back in the merchant's balance, and it can
    be neither settled nor returned again.
    """

    SPEC: ClassVar[tuple[Field, ...]] = (
        Field.KEY,
        Field.KEY,
        Field.POSITIVE,
        Field.COUNT,
        Field.REFERENCE,
        Field.COUNT,
        Field.CODE,
    )
    merchant: PublicKey
    issuer: PublicKey
    amount_cents: int
    created_ms: int
    bank_reference: str
    settled_ms: int
    returned_reason: str

    @property
    def settled(self) -> bool:
        return self.bank_reference != ""

    @property
    def returned(self) -> bool:
        return self.returned_reason != ""


@declared
@dataclass(frozen=True, slots=True)
class Counter(Declared):
    """A bare number: net cents paid at a merchant, the amount behind a used
    bank reference, the block time an authorization was used."""

    SPEC: ClassVar[tuple[Field, ...]] = (Field.COUNT,)
    value: int


@declared
@dataclass(frozen=True, slots=True)
class Validators(Declared):
    """The set in force and, when ``pending_height`` > 0, the set from that height on."""

    SPEC: ClassVar[tuple[Field, ...]] = (Field.VALIDATORS, Field.VALIDATORS, Field.COUNT)
    current: tuple[Validator, ...]
    pending: tuple[Validator, ...]
    pending_height: int

    def at(self, height: int) -> tuple[Validator, ...]:
        """The set in force at ``height`` (this record's own height or later)."""
        if self.pending_height and height >= self.pending_height:
            return self.pending
        return self.current


@declared
@dataclass(frozen=True, slots=True)
class ValidatorEra(Declared):
    """One validator set of the chain's history (keyed by its first height)."""

    SPEC: ClassVar[tuple[Field, ...]] = (Field.VALIDATORS,)
    validators: tuple[Validator, ...]


@declared
@dataclass(frozen=True, slots=True)
class ZoneOwner(Declared):
    SPEC: ClassVar[tuple[Field, ...]] = (Field.KEY,)
    issuer: PublicKey


@declared
@dataclass(frozen=True, slots=True)
class Consent(Declared):
    """A commune's zones where one region's campaigns may be spent (regional campaigns)."""

    SPEC: ClassVar[tuple[Field, ...]] = (Field.NAMES,)
    zones: tuple[str, ...]


@declared
@dataclass(frozen=True, slots=True)
class Upgrade(Declared):
    """Protocol ``protocol`` is in force from ``height`` on; ``software`` knows it.
    ``previous`` is the protocol in force before ``height`` (the one in force when the
    upgrade was scheduled): the record alone says which protocol rules any height."""

    SPEC: ClassVar[tuple[Field, ...]] = (Field.CODE, Field.CODE, Field.POSITIVE, Field.CODE)
    protocol: str
    software: str
    height: int
    previous: str

    def in_force(self, height: int) -> bool:
        return height >= self.height


@declared
@dataclass(frozen=True, slots=True)
class SigningKey(Declared):
    """``key`` signs for the account from ``height`` on; ``previous`` signed before it.

    Absent: the account's own key signs for it. One rotation is pending at a time, so
    this record tells the signing key of every height a block may still be executed at.
    """

    SPEC: ClassVar[tuple[Field, ...]] = (Field.KEY, Field.POSITIVE, Field.KEY)
    key: PublicKey
    height: int
    previous: PublicKey

    def at(self, height: int | None) -> PublicKey:
        """The key that signs at ``height`` (None: the latest)."""
        return self.key if height is None or height >= self.height else self.previous


@declared
@dataclass(frozen=True, slots=True)
class Delegate(Declared):
    """A key governance moved an account's signing authority to: it signs for ``account``
    (while the account's ``SigningKey`` names it). Kept after a later rotation, so the key
    is never taken up again for another role."""

    SPEC: ClassVar[tuple[Field, ...]] = (Field.KEY,)
    account: PublicKey


Record = (
    Params
    | Bank
    | Issuer
    | Merchant
    | Holder
    | Auditor
    | Campaign
    | Payout
    | Counter
    | Validators
    | ValidatorEra
    | ZoneOwner
    | Consent
    | Upgrade
    | SigningKey
    | Delegate
)

RECORD_TYPES: Final[tuple[type[Record], ...]] = (
    Params,
    Bank,
    Issuer,
    Merchant,
    Holder,
    Auditor,
    Campaign,
    Payout,
    Counter,
    Validators,
    ValidatorEra,
    ZoneOwner,
    Consent,
    Upgrade,
    SigningKey,
    Delegate,
)


# --- helpers ---------------------------------------------------------------------


def _set_row(rows: tuple[tuple[_K, int], ...], key: _K, cents: int) -> tuple[tuple[_K, int], ...]:
    """Rows sorted by key, without zero rows."""
    for index, (k, _) in enumerate(rows):
        if k == key:  # the common case: a balance that changes in place keeps its order
            if cents > 0:
                return (*rows[:index], (key, cents), *rows[index + 1 :])
            return rows[:index] + rows[index + 1 :]
    if cents <= 0:
        return rows
    return tuple(sorted((*rows, (key, cents))))
