"""Transactions: their kinds, fields, canonical encoding and signatures.

A transaction's body is the msgpack array
``[version, kind, chain_id, sender, sequence, fields...]``; its wire form is
``[body, signature]``. The transaction id is the SHA-256 of the body (the
unsigned part). The signature covers the body under ``Domain.TX``.

Decoding is strict and returns a ``Result`` instead of raising, so any bytes
from the network map to one stable code.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import ClassVar, Final

from node import codec, limits
from node.codec import DecodeError, Value
from node.crypto import (
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Digest,
    Domain,
    PublicKey,
    Signer,
    digest,
    verify,
)
from node.ledger.codes import Result
from node.statements import STATEMENT_BYTES_MAX

VERSION: Final = 1
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
NONCE_BYTES: Final = 16


class Kind(enum.IntEnum):
    """Transaction kinds; the numbers are protocol."""

    REGISTER_MERCHANT = 1
    UPDATE_MERCHANT = 2
    SUSPEND_MERCHANT = 3
    CREATE_CAMPAIGN = 4
    FUND = 5
    ALLOCATE = 6
    PAY = 7
    PAY_AUTHORIZED = 8
    SWEEP = 9
    REFUND = 10
    REISSUE = 11
    TRANSFER = 12
    REDEEM = 13
    SETTLE = 14
    CLOSE_CAMPAIGN = 15
    WITHDRAW = 16
    EVIDENCE = 17
    ADMIT_ISSUER = 18
    CHANGE_VALIDATORS = 19
    RETURN_PAYOUT = 20


# --- field codecs -------------------------------------------------------------


class Field(enum.Enum):
    """How one payload field is encoded and checked at decode time.

    Decoding checks only shape (types, lengths, counts). Amounts decode as any
    64-bit integer so that a zero or negative amount gets ``BAD_AMOUNT`` from
    the rules rather than ``MALFORMED``.
    """

    KEY = "key"
    DIGEST = "digest"
    AMOUNT = "amount"
    TIME = "time"
    NAME = "name"
    CODE = "code"
    MEMO = "memo"
    REFERENCE = "reference"
    BOOL = "bool"
    CODES = "codes"
    ALLOCATIONS = "allocations"
    SETTLEMENTS = "settlements"
    AUTHORIZATION = "authorization"
    SIGNATURE = "signature"
    STATEMENT = "statement"
    APPROVALS = "approvals"
    VALIDATORS = "validators"


@dataclass(frozen=True, slots=True)
class Allocation:
    holder: PublicKey
    amount_cents: int
    zone: str


@dataclass(frozen=True, slots=True)
class Settlement:
    payout_id: Digest
    bank_reference: str


@dataclass(frozen=True, slots=True)
class Authorization:
    """A holder's signed promise: ``merchant`` may take up to ``max_cents`` once.

    An empty ``merchant`` means any eligible merchant may complete it.
    """

    holder: PublicKey
    campaign: str
    merchant: bytes
    max_cents: int
    expires_ms: int
    nonce: bytes

    def encode(self) -> bytes:
        return codec.encode(
            [
                VERSION,
                self.holder,
                self.campaign,
                self.merchant,
                self.max_cents,
                self.expires_ms,
                self.nonce,
            ]
        )

    @property
    def authorization_id(self) -> Digest:
        return digest(self.encode())

    @staticmethod
    def decode_value(value: Value) -> Authorization:
        items = codec.as_list(value, 7)
        if codec.as_int(items[0], 0, INT64_MAX) != VERSION:
            raise DecodeError("authorization version")
        merchant = items[3]
        if not isinstance(merchant, bytes) or len(merchant) not in (0, PUBLIC_KEY_BYTES):
            raise DecodeError("authorization merchant")
        return Authorization(
            holder=PublicKey(codec.as_bytes(items[1], PUBLIC_KEY_BYTES)),
            campaign=codec.as_str(items[2], limits.CODE_CHARS_MAX),
            merchant=merchant,
            max_cents=codec.as_int(items[4], INT64_MIN, INT64_MAX),
            expires_ms=codec.as_int(items[5], 0, INT64_MAX),
            nonce=codec.as_bytes(items[6], NONCE_BYTES),
        )

    def sign(self, signer: Signer, chain_id: str) -> bytes:
        return signer.sign(Domain.AUTHORIZATION, chain_id, self.encode())

    def verify(self, chain_id: str, signature: bytes) -> bool:
        return verify(Domain.AUTHORIZATION, chain_id, self.encode(), self.holder, signature)


@dataclass(frozen=True, slots=True)
class Approval:
    """A validator's signature over a governance proposal (``Domain.GOVERNANCE``)."""

    validator: PublicKey
    signature: bytes


@dataclass(frozen=True, slots=True)
class ValidatorEntry:
    public_key: PublicKey
    power: int
    name: str
    role: str


def _approvals(value: Value) -> tuple[Approval, ...]:
    if not isinstance(value, list) or len(value) > limits.VALIDATORS_MAX:
        raise DecodeError("expected a bounded list of approvals")
    out = []
    for item in value:
        key, signature = codec.as_list(item, 2)
        out.append(
            Approval(
                PublicKey(codec.as_bytes(key, PUBLIC_KEY_BYTES)),
                codec.as_bytes(signature, SIGNATURE_BYTES),
            )
        )
    return tuple(out)


def _validators(value: Value) -> tuple[ValidatorEntry, ...]:
    if not isinstance(value, list) or len(value) > limits.VALIDATORS_MAX:
        raise DecodeError("expected a bounded list of validators")
    out = []
    for item in value:
        key, power, name, role = codec.as_list(item, 4)
        out.append(
            ValidatorEntry(
                PublicKey(codec.as_bytes(key, PUBLIC_KEY_BYTES)),
                codec.as_int(power, INT64_MIN, INT64_MAX),
                codec.as_str(name, limits.NAME_CHARS_MAX),
                codec.as_str(role, limits.CODE_CHARS_MAX),
            )
        )
    return tuple(out)


def _statement(value: Value) -> bytes:
    if not isinstance(value, bytes) or not 1 <= len(value) <= STATEMENT_BYTES_MAX:
        raise DecodeError("expected a signed consensus statement")
    return value


def _codes(value: Value, max_count: int) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > max_count:
        raise DecodeError("expected a short list of codes")
    return tuple(codec.as_str(item, limits.CODE_CHARS_MAX) for item in value)


def _allocations(value: Value) -> tuple[Allocation, ...]:
    if not isinstance(value, list) or len(value) > limits.ALLOCATIONS_PER_TX_MAX:
        raise DecodeError("expected a bounded list of allocations")
    out = []
    for item in value:
        holder, amount, zone = codec.as_list(item, 3)
        out.append(
            Allocation(
                PublicKey(codec.as_bytes(holder, PUBLIC_KEY_BYTES)),
                codec.as_int(amount, INT64_MIN, INT64_MAX),
                codec.as_str(zone, limits.CODE_CHARS_MAX),
            )
        )
    return tuple(out)


def _settlements(value: Value) -> tuple[Settlement, ...]:
    if not isinstance(value, list) or len(value) > limits.SETTLEMENTS_PER_TX_MAX:
        raise DecodeError("expected a bounded list of settlements")
    out = []
    for item in value:
        payout, reference = codec.as_list(item, 2)
        out.append(
            Settlement(
                Digest(codec.as_bytes(payout, HASH_BYTES)),
                codec.as_str(reference, limits.REFERENCE_CHARS_MAX),
            )
        )
    return tuple(out)


_DECODERS: dict[Field, Callable[[Value], object]] = {
    Field.KEY: lambda v: PublicKey(codec.as_bytes(v, PUBLIC_KEY_BYTES)),
    Field.DIGEST: lambda v: Digest(codec.as_bytes(v, HASH_BYTES)),
    Field.AMOUNT: lambda v: codec.as_int(v, INT64_MIN, INT64_MAX),
    Field.TIME: lambda v: codec.as_int(v, 0, INT64_MAX),
    Field.NAME: lambda v: codec.as_str(v, limits.NAME_CHARS_MAX),
    Field.CODE: lambda v: codec.as_str(v, limits.CODE_CHARS_MAX),
    Field.MEMO: lambda v: codec.as_str(v, limits.MEMO_CHARS_MAX),
    Field.REFERENCE: lambda v: codec.as_str(v, limits.REFERENCE_CHARS_MAX),
    Field.BOOL: codec.as_bool,
    Field.CODES: lambda v: _codes(v, max(limits.ZONES_PER_CAMPAIGN_MAX, 64)),
    Field.ALLOCATIONS: _allocations,
    Field.SETTLEMENTS: _settlements,
    Field.AUTHORIZATION: Authorization.decode_value,
    Field.SIGNATURE: lambda v: codec.as_bytes(v, SIGNATURE_BYTES),
    Field.STATEMENT: _statement,
    Field.APPROVALS: _approvals,
    Field.VALIDATORS: _validators,
}


def _encode_field(value: object) -> Value:
    if isinstance(value, Allocation):
        return [value.holder, value.amount_cents, value.zone]
    if isinstance(value, Settlement):
        return [value.payout_id, value.bank_reference]
    if isinstance(value, Approval):
        return [value.validator, value.signature]
    if isinstance(value, ValidatorEntry):
        return [value.public_key, value.power, value.name, value.role]
    if isinstance(value, Authorization):
        return codec.decode(value.encode(), limits.TX_BYTES_MAX)
    if isinstance(value, tuple):
        return [_encode_field(item) for item in value]
    if isinstance(value, (int, bytes, str, bool)):
        return value
    raise TypeError(f"cannot encode {type(value).__name__}")


# --- payloads -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterMerchant:
    KIND: ClassVar[Kind] = Kind.REGISTER_MERCHANT
    SPEC: ClassVar[tuple[Field, ...]] = (
        Field.KEY, Field.NAME, Field.CODE, Field.CODE, Field.DIGEST, Field.BOOL,
    )  # fmt: skip
    merchant: PublicKey
    name: str
    category: str
    zone: str
    payout_ref_hash: Digest
    auto_redeem: bool


@dataclass(frozen=True, slots=True)
class UpdateMerchant:
    """Signed by the registering issuer (any field) or by the merchant itself
    (only ``payout_ref_hash`` and ``auto_redeem`` may change)."""

    KIND: ClassVar[Kind] = Kind.UPDATE_MERCHANT
    SPEC: ClassVar[tuple[Field, ...]] = RegisterMerchant.SPEC
    merchant: PublicKey
    name: str
    category: str
    zone: str
    payout_ref_hash: Digest
    auto_redeem: bool


@dataclass(frozen=True, slots=True)
class SuspendMerchant:
    """``suspended`` False reinstates the merchant."""

    KIND: ClassVar[Kind] = Kind.SUSPEND_MERCHANT
    SPEC: ClassVar[tuple[Field, ...]] = (Field.KEY, Field.BOOL)
    merchant: PublicKey
    suspended: bool


@dataclass(frozen=True, slots=True)
class CreateCampaign:
    """Empty ``zones`` means the issuer's whole territory; empty ``categories``
    means every category. A category matches a merchant's NACE code by prefix."""

    KIND: ClassVar[Kind] = Kind.CREATE_CAMPAIGN
    SPEC: ClassVar[tuple[Field, ...]] = (
        Field.CODE, Field.NAME, Field.CODES, Field.CODES, Field.TIME, Field.TIME, Field.AMOUNT,
    )  # fmt: skip
    campaign: str
    name: str
    zones: tuple[str, ...]
    categories: tuple[str, ...]
    valid_from_ms: int
    valid_until_ms: int
    max_per_holder_cents: int


@dataclass(frozen=True, slots=True)
class Fund:
    KIND: ClassVar[Kind] = Kind.FUND
    SPEC: ClassVar[tuple[Field, ...]] = (Field.CODE, Field.AMOUNT, Field.REFERENCE)
    campaign: str
    amount_cents: int
    bank_reference: str


@dataclass(frozen=True, slots=True)
class Allocate:
    KIND: ClassVar[Kind] = Kind.ALLOCATE
    SPEC: ClassVar[tuple[Field, ...]] = (Field.CODE, Field.ALLOCATIONS)
    campaign: str
    allocations: tuple[Allocation, ...]


@dataclass(frozen=True, slots=True)
class Pay:
    KIND: ClassVar[Kind] = Kind.PAY
    SPEC: ClassVar[tuple[Field, ...]] = (Field.CODE, Field.KEY, Field.AMOUNT, Field.MEMO)
    campaign: str
    merchant: PublicKey
    amount_cents: int
    memo: str


@dataclass(frozen=True, slots=True)
class PayAuthorized:
    """A merchant completing a holder's signed spending authorization."""

    KIND: ClassVar[Kind] = Kind.PAY_AUTHORIZED
    SPEC: ClassVar[tuple[Field, ...]] = (
        Field.AUTHORIZATION, Field.SIGNATURE, Field.AMOUNT, Field.MEMO,
    )  # fmt: skip
    authorization: Authorization
    holder_signature: bytes
    amount_cents: int
    memo: str


@dataclass(frozen=True, slots=True)
class Sweep:
    """Signed by a bearer voucher key: its whole balance moves to ``to``."""

    KIND: ClassVar[Kind] = Kind.SWEEP
    SPEC: ClassVar[tuple[Field, ...]] = (Field.CODE, Field.KEY)
    campaign: str
    to: PublicKey


@dataclass(frozen=True, slots=True)
class Refund:
    KIND: ClassVar[Kind] = Kind.REFUND
    SPEC: ClassVar[tuple[Field, ...]] = (Field.KEY, Field.CODE, Field.AMOUNT, Field.MEMO)
    holder: PublicKey
    campaign: str
    amount_cents: int
    memo: str


@dataclass(frozen=True, slots=True)
class Reissue:
    KIND: ClassVar[Kind] = Kind.REISSUE
    SPEC: ClassVar[tuple[Field, ...]] = (Field.CODE, Field.KEY, Field.KEY)
    campaign: str
    lost: PublicKey
    replacement: PublicKey


@dataclass(frozen=True, slots=True)
class Transfer:
    KIND: ClassVar[Kind] = Kind.TRANSFER
    SPEC: ClassVar[tuple[Field, ...]] = (Field.KEY, Field.KEY, Field.AMOUNT, Field.MEMO)
    to: PublicKey
    issuer: PublicKey
    amount_cents: int
    memo: str


@dataclass(frozen=True, slots=True)
class Redeem:
    KIND: ClassVar[Kind] = Kind.REDEEM
    SPEC: ClassVar[tuple[Field, ...]] = (Field.KEY, Field.AMOUNT)
    issuer: PublicKey
    amount_cents: int


@dataclass(frozen=True, slots=True)
class Settle:
    KIND: ClassVar[Kind] = Kind.SETTLE
    SPEC: ClassVar[tuple[Field, ...]] = (Field.SETTLEMENTS,)
    settlements: tuple[Settlement, ...]


@dataclass(frozen=True, slots=True)
class CloseCampaign:
    KIND: ClassVar[Kind] = Kind.CLOSE_CAMPAIGN
    SPEC: ClassVar[tuple[Field, ...]] = (Field.CODE,)
    campaign: str


@dataclass(frozen=True, slots=True)
class Withdraw:
    KIND: ClassVar[Kind] = Kind.WITHDRAW
    SPEC: ClassVar[tuple[Field, ...]] = (Field.CODE, Field.AMOUNT, Field.REFERENCE)
    campaign: str
    amount_cents: int
    bank_reference: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two different consensus statements signed by one validator for one slot."""

    KIND: ClassVar[Kind] = Kind.EVIDENCE
    SPEC: ClassVar[tuple[Field, ...]] = (
        Field.STATEMENT, Field.SIGNATURE, Field.STATEMENT, Field.SIGNATURE,
    )  # fmt: skip
    first: bytes
    first_signature: bytes
    second: bytes
    second_signature: bytes


@dataclass(frozen=True, slots=True)
class AdmitIssuer:
    """A new commune or region, approved by more than 2/3 of the voting power."""

    KIND: ClassVar[Kind] = Kind.ADMIT_ISSUER
    SPEC: ClassVar[tuple[Field, ...]] = (
        Field.KEY, Field.NAME, Field.NAME, Field.CODES, Field.APPROVALS,
    )  # fmt: skip
    issuer: PublicKey
    name: str
    territory: str
    zones: tuple[str, ...]
    approvals: tuple[Approval, ...]

    def approval_body(self) -> bytes:
        """What each approving validator signs (``Domain.GOVERNANCE``)."""
        return codec.encode(
            [VERSION, int(self.KIND), self.issuer, self.name, self.territory, list(self.zones)]
        )


@dataclass(frozen=True, slots=True)
class ChangeValidators:
    """The validator set from ``effective_height`` on, approved by more than 2/3."""

    KIND: ClassVar[Kind] = Kind.CHANGE_VALIDATORS
    SPEC: ClassVar[tuple[Field, ...]] = (Field.VALIDATORS, Field.TIME, Field.APPROVALS)
    validators: tuple[ValidatorEntry, ...]
    effective_height: int
    approvals: tuple[Approval, ...]

    def approval_body(self) -> bytes:
        entries: list[Value] = [[v.public_key, v.power, v.name, v.role] for v in self.validators]
        return codec.encode([VERSION, int(self.KIND), entries, self.effective_height])


@dataclass(frozen=True, slots=True)
class ReturnPayout:
    """The bank could not pay a payout (a transfer rejected: closed account, bad IBAN):
    its units go back to the merchant's balance. ``reason`` is the ISO 20022 return
    reason code (``AC04`` closed account, ``AC01`` wrong IBAN)."""

    KIND: ClassVar[Kind] = Kind.RETURN_PAYOUT
    SPEC: ClassVar[tuple[Field, ...]] = (Field.DIGEST, Field.CODE, Field.REFERENCE)
    payout_id: Digest
    reason: str
    bank_reference: str


def approve(payload: AdmitIssuer | ChangeValidators, signer: Signer, chain_id: str) -> Approval:
    """A validator's approval of a governance proposal."""
    signature = signer.sign(Domain.GOVERNANCE, chain_id, payload.approval_body())
    return Approval(signer.public_key, signature)


Payload = (
    RegisterMerchant
    | UpdateMerchant
    | SuspendMerchant
    | CreateCampaign
    | Fund
    | Allocate
    | Pay
    | PayAuthorized
    | Sweep
    | Refund
    | Reissue
    | Transfer
    | Redeem
    | Settle
    | CloseCampaign
    | Withdraw
    | Evidence
    | AdmitIssuer
    | ChangeValidators
    | ReturnPayout
)

PAYLOAD_TYPES: Final[dict[Kind, type[Payload]]] = {
    cls.KIND: cls
    for cls in (
        RegisterMerchant, UpdateMerchant, SuspendMerchant, CreateCampaign, Fund, Allocate,
        Pay, PayAuthorized, Sweep, Refund, Reissue, Transfer, Redeem, Settle, CloseCampaign,
        Withdraw, Evidence, AdmitIssuer, ChangeValidators, ReturnPayout,
    )
}  # fmt: skip

_HEADER_FIELDS: Final = 5  # version, kind, chain_id, sender, sequence


# --- transactions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tx:
    """An unsigned transaction."""

    chain_id: str
    sender: PublicKey
    sequence: int
    payload: Payload

    def body(self) -> bytes:
        values: list[Value] = [
            VERSION,
            int(self.payload.KIND),
            self.chain_id,
            self.sender,
            self.sequence,
        ]
        values.extend(_encode_field(getattr(self.payload, f.name)) for f in fields(self.payload))
        return codec.encode(values)

    def sign(self, signer: Signer) -> SignedTx:
        if signer.public_key != self.sender:
            raise ValueError("the signer is not the sender")
        body = self.body()
        signature = signer.sign(Domain.TX, self.chain_id, body)
        return SignedTx(self, body, signature, digest(body))


@dataclass(frozen=True, slots=True)
class SignedTx:
    tx: Tx
    body: bytes
    signature: bytes
    tx_id: Digest

    def encode(self) -> bytes:
        return codec.encode([self.body, self.signature])

    def signature_ok(self) -> bool:
        return verify(Domain.TX, self.tx.chain_id, self.body, self.tx.sender, self.signature)


def decode_tx(data: bytes, chain_id: str) -> SignedTx | Result:
    """Decode wire bytes into a transaction for ``chain_id``, or the code that rejects them.

    Checks shape and chain only; the signature is checked by ``SignedTx.signature_ok``.
    """
    if len(data) > limits.TX_BYTES_MAX:
        return Result.TOO_LARGE
    try:
        outer = codec.as_list(codec.decode(data, limits.TX_BYTES_MAX), 2)
        body = outer[0]
        if not isinstance(body, bytes):
            return Result.MALFORMED
        signature = codec.as_bytes(outer[1], SIGNATURE_BYTES)
        items = codec.decode(body, limits.TX_BYTES_MAX)
    except DecodeError:
        return Result.MALFORMED
    return _decode_body(items, body, signature, chain_id)


def _decode_body(items: Value, body: bytes, signature: bytes, chain_id: str) -> SignedTx | Result:
    if not isinstance(items, list) or len(items) < _HEADER_FIELDS:
        return Result.MALFORMED
    version, kind = items[0], items[1]
    if version != VERSION or isinstance(version, bool):
        return Result.UNSUPPORTED_VERSION
    plan = _DECODE_PLANS.get(kind) if type(kind) is int else None
    if plan is None:
        return Result.UNKNOWN_KIND
    cls, decoders = plan
    if len(items) != _HEADER_FIELDS + len(decoders):
        return Result.MALFORMED
    try:
        tx_chain = codec.as_str(items[2], 255)
        sender = PublicKey(codec.as_bytes(items[3], PUBLIC_KEY_BYTES))
        sequence = codec.as_int(items[4], 0, INT64_MAX)
        pairs = zip(decoders, items[_HEADER_FIELDS:], strict=True)
        values = [decode(item) for decode, item in pairs]
    except DecodeError:
        return Result.MALFORMED
    if tx_chain != chain_id:
        return Result.WRONG_CHAIN
    payload = cls(*values)  # type: ignore[arg-type]  # SPEC fixes each value's type; round-trip tested
    return SignedTx(Tx(tx_chain, sender, sequence, payload), body, signature, digest(body))


# Per kind number: the payload class and its fields' decoders, resolved once
# (the hot path of every transaction looks up neither enum).
_DECODE_PLANS: Final[dict[int, tuple[type[Payload], tuple[Callable[[Value], object], ...]]]] = {
    int(kind): (cls, tuple(_DECODERS[spec] for spec in cls.SPEC))
    for kind, cls in PAYLOAD_TYPES.items()
}
