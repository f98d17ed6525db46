"""State records and their keys.

The whole ledger state is a map from keys to canonical msgpack records; the
state tree commits to it. Each key starts with one prefix byte naming the
record type. Records are frozen; a change is a new record.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final, TypeVar

from node.protocol import codec, limits
from node.protocol.codec import DecodeError, Value
from node.protocol.crypto import HASH_BYTES, PUBLIC_KEY_BYTES, Digest, PublicKey

VERSION: Final = 1
_BIG: Final = 2**63 - 1


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


# --- records ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Params:
    """Protocol constants from genesis, stored in state so proofs can reach them."""

    chain_id: str
    bank: PublicKey
    amount_max_cents: int

    def encode(self) -> bytes:
        return codec.encode([VERSION, self.chain_id, self.bank, self.amount_max_cents])

    @staticmethod
    def decode(data: bytes) -> Params:
        items = _items(data, 4)
        return Params(
            chain_id=codec.as_str(items[1], 255),
            bank=_key(items[2]),
            amount_max_cents=codec.as_int(items[3], 1, _BIG),
        )


@dataclass(frozen=True, slots=True)
class Bank:
    name: str
    sequence: int

    def encode(self) -> bytes:
        return codec.encode([VERSION, self.name, self.sequence])

    @staticmethod
    def decode(data: bytes) -> Bank:
        items = _items(data, 3)
        return Bank(codec.as_str(items[1], limits.NAME_CHARS_MAX), codec.as_int(items[2], 0, _BIG))


@dataclass(frozen=True, slots=True)
class Issuer:
    """A commune or region. ``escrow`` is what the bank holds for it; ``pending``
    the payouts not yet settled."""

    name: str
    territory: str
    zones: tuple[str, ...]
    sequence: int
    escrow_cents: int
    pending_cents: int
    redeemed_cents: int
    settled_cents: int

    def encode(self) -> bytes:
        return codec.encode(
            [
                VERSION,
                self.name,
                self.territory,
                list(self.zones),
                self.sequence,
                self.escrow_cents,
                self.pending_cents,
                self.redeemed_cents,
                self.settled_cents,
            ]
        )

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

    @staticmethod
    def decode(data: bytes) -> Issuer:
        items = _items(data, 9)
        return Issuer(
            name=codec.as_str(items[1], limits.NAME_CHARS_MAX),
            territory=codec.as_str(items[2], limits.NAME_CHARS_MAX),
            zones=_strs(items[3]),
            sequence=codec.as_int(items[4], 0, _BIG),
            escrow_cents=codec.as_int(items[5], 0, _BIG),
            pending_cents=codec.as_int(items[6], 0, _BIG),
            redeemed_cents=codec.as_int(items[7], 0, _BIG),
            settled_cents=codec.as_int(items[8], 0, _BIG),
        )


@dataclass(frozen=True, slots=True)
class Merchant:
    """``balances`` holds unrestricted units per issuer, sorted by issuer key."""

    issuer: PublicKey
    name: str
    category: str
    zone: str
    payout_ref_hash: Digest
    auto_redeem: bool
    active: bool
    sequence: int
    balances: tuple[tuple[PublicKey, int], ...]

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
        )

    def encode(self) -> bytes:
        return codec.encode(
            [
                VERSION,
                self.issuer,
                self.name,
                self.category,
                self.zone,
                self.payout_ref_hash,
                self.auto_redeem,
                self.active,
                self.sequence,
                [[k, c] for k, c in self.balances],
            ]
        )

    @staticmethod
    def decode(data: bytes) -> Merchant:
        items = _items(data, 10)
        rows = items[9]
        if not isinstance(rows, list):
            raise DecodeError("balances")
        balances = []
        for row in rows:
            key, cents = codec.as_list(row, 2)
            balances.append((_key(key), codec.as_int(cents, 1, _BIG)))
        return Merchant(
            issuer=_key(items[1]),
            name=codec.as_str(items[2], limits.NAME_CHARS_MAX),
            category=codec.as_str(items[3], limits.CODE_CHARS_MAX),
            zone=codec.as_str(items[4], limits.CODE_CHARS_MAX),
            payout_ref_hash=Digest(codec.as_bytes(items[5], HASH_BYTES)),
            auto_redeem=codec.as_bool(items[6]),
            active=codec.as_bool(items[7]),
            sequence=codec.as_int(items[8], 0, _BIG),
            balances=tuple(balances),
        )


@dataclass(frozen=True, slots=True)
class Holder:
    """A citizen's key or a bearer voucher: a sequence and a balance per campaign."""

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

    def encode(self) -> bytes:
        return codec.encode([VERSION, self.sequence, [[c, n] for c, n in self.balances]])

    @staticmethod
    def decode(data: bytes) -> Holder:
        items = _items(data, 3)
        rows = items[2]
        if not isinstance(rows, list):
            raise DecodeError("balances")
        balances = []
        for row in rows:
            code, cents = codec.as_list(row, 2)
            balances.append(
                (codec.as_str(code, limits.CODE_CHARS_MAX), codec.as_int(cents, 1, _BIG))
            )
        return Holder(codec.as_int(items[1], 0, _BIG), tuple(balances))


EMPTY_HOLDER: Final = Holder(0, ())


@dataclass(frozen=True, slots=True)
class Auditor:
    name: str

    def encode(self) -> bytes:
        return codec.encode([VERSION, self.name])

    @staticmethod
    def decode(data: bytes) -> Auditor:
        items = _items(data, 2)
        return Auditor(codec.as_str(items[1], limits.NAME_CHARS_MAX))


@dataclass(frozen=True, slots=True)
class Campaign:
    """Rules and running totals. ``budget`` is funded but not yet allocated;
    ``outstanding`` is the sum of holder balances in this campaign."""

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

    def encode(self) -> bytes:
        return codec.encode(
            [
                VERSION,
                self.issuer,
                self.name,
                list(self.zones),
                list(self.categories),
                self.valid_from_ms,
                self.valid_until_ms,
                self.max_per_holder_cents,
                self.closed,
                self.budget_cents,
                self.outstanding_cents,
                self.funded_cents,
                self.allocated_cents,
                self.spent_cents,
                self.refunded_cents,
                self.returned_cents,
                self.withdrawn_cents,
            ]
        )

    @staticmethod
    def decode(data: bytes) -> Campaign:
        items = _items(data, 17)
        ints = [codec.as_int(v, 0, _BIG) for v in items[9:17]]
        return Campaign(
            issuer=_key(items[1]),
            name=codec.as_str(items[2], limits.NAME_CHARS_MAX),
            zones=_strs(items[3]),
            categories=_strs(items[4]),
            valid_from_ms=codec.as_int(items[5], 0, _BIG),
            valid_until_ms=codec.as_int(items[6], 0, _BIG),
            max_per_holder_cents=codec.as_int(items[7], 1, _BIG),
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


@dataclass(frozen=True, slots=True)
class Payout:
    """Units burnt by a merchant, owed in euros by the bank from the issuer's escrow.

    ``bank_reference`` is empty until settled. ``returned_reason`` is empty unless
    the bank returned the payout (a rejected transfer: its ISO 20022 return reason
    code); a returned payout's units are back in the merchant's balance, and it can
    be neither settled nor returned again.
    """

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

    def encode(self) -> bytes:
        return codec.encode(
            [
                VERSION,
                self.merchant,
                self.issuer,
                self.amount_cents,
                self.created_ms,
                self.bank_reference,
                self.settled_ms,
                self.returned_reason,
            ]
        )

    @staticmethod
    def decode(data: bytes) -> Payout:
        items = _items(data, 8)
        return Payout(
            merchant=_key(items[1]),
            issuer=_key(items[2]),
            amount_cents=codec.as_int(items[3], 1, _BIG),
            created_ms=codec.as_int(items[4], 0, _BIG),
            bank_reference=codec.as_str(items[5], limits.REFERENCE_CHARS_MAX),
            settled_ms=codec.as_int(items[6], 0, _BIG),
            returned_reason=codec.as_str(items[7], limits.CODE_CHARS_MAX),
        )


@dataclass(frozen=True, slots=True)
class Counter:
    """A bare number: net cents paid at a merchant, the amount behind a used
    bank reference, the block time an authorization was used."""

    value: int

    def encode(self) -> bytes:
        return codec.encode([VERSION, self.value])

    @staticmethod
    def decode(data: bytes) -> Counter:
        return Counter(codec.as_int(_items(data, 2)[1], 0, _BIG))


@dataclass(frozen=True, slots=True)
class Validator:
    public_key: PublicKey
    power: int
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Validators:
    """The set in force and, when ``pending_height`` > 0, the set from that height on."""

    current: tuple[Validator, ...]
    pending: tuple[Validator, ...]
    pending_height: int

    def at(self, height: int) -> tuple[Validator, ...]:
        """The set in force at ``height`` (this record's own height or later)."""
        if self.pending_height and height >= self.pending_height:
            return self.pending
        return self.current

    def encode(self) -> bytes:
        return codec.encode(
            [
                VERSION,
                [_validator_value(v) for v in self.current],
                [_validator_value(v) for v in self.pending],
                self.pending_height,
            ]
        )

    @staticmethod
    def decode(data: bytes) -> Validators:
        items = _items(data, 4)
        return Validators(
            current=_validator_list(items[1]),
            pending=_validator_list(items[2]),
            pending_height=codec.as_int(items[3], 0, _BIG),
        )


def _validator_value(v: Validator) -> list[Value]:
    return [v.public_key, v.power, v.name, v.role]


def _validator_list(value: Value) -> tuple[Validator, ...]:
    if not isinstance(value, list):
        raise DecodeError("validators")
    out = []
    for item in value:
        key, power, name, role = codec.as_list(item, 4)
        out.append(
            Validator(
                _key(key),
                codec.as_int(power, 1, _BIG),
                codec.as_str(name, limits.NAME_CHARS_MAX),
                codec.as_str(role, limits.CODE_CHARS_MAX),
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ValidatorEra:
    """One validator set of the chain's history (keyed by its first height)."""

    validators: tuple[Validator, ...]

    def encode(self) -> bytes:
        return codec.encode([VERSION, [_validator_value(v) for v in self.validators]])

    @staticmethod
    def decode(data: bytes) -> ValidatorEra:
        return ValidatorEra(_validator_list(_items(data, 2)[1]))


@dataclass(frozen=True, slots=True)
class ZoneOwner:
    issuer: PublicKey

    def encode(self) -> bytes:
        return codec.encode([VERSION, self.issuer])

    @staticmethod
    def decode(data: bytes) -> ZoneOwner:
        return ZoneOwner(_key(_items(data, 2)[1]))


@dataclass(frozen=True, slots=True)
class Consent:
    """A commune's zones where one region's campaigns may be spent (regional campaigns)."""

    zones: tuple[str, ...]

    def encode(self) -> bytes:
        return codec.encode([VERSION, list(self.zones)])

    @staticmethod
    def decode(data: bytes) -> Consent:
        return Consent(_strs(_items(data, 2)[1]))


@dataclass(frozen=True, slots=True)
class Upgrade:
    """Protocol ``protocol`` is in force from ``height`` on; ``software`` knows it."""

    protocol: str
    software: str
    height: int

    def in_force(self, height: int) -> bool:
        return height >= self.height

    def encode(self) -> bytes:
        return codec.encode([VERSION, self.protocol, self.software, self.height])

    @staticmethod
    def decode(data: bytes) -> Upgrade:
        items = _items(data, 4)
        return Upgrade(
            codec.as_str(items[1], limits.CODE_CHARS_MAX),
            codec.as_str(items[2], limits.CODE_CHARS_MAX),
            codec.as_int(items[3], 1, _BIG),
        )


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
)


# --- helpers ---------------------------------------------------------------------


def _items(data: bytes, length: int) -> list[Value]:
    items = codec.as_list(codec.decode_trusted(data), length)
    if items[0] != VERSION:
        raise DecodeError("record version")
    return items


def _key(value: Value) -> PublicKey:
    return PublicKey(codec.as_bytes(value, PUBLIC_KEY_BYTES))


def _strs(value: Value) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise DecodeError("expected a list of strings")
    return tuple(codec.as_str(v, limits.NAME_CHARS_MAX) for v in value)


_K = TypeVar("_K", bound=str | bytes)


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
