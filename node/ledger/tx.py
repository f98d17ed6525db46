"""Transactions: their kinds, fields, canonical encoding and signatures.

A transaction's body is the msgpack array
``[version, kind, chain_id, sender, sequence, fields...]``; its wire form is
``[body, signature]``. The transaction id is the SHA-256 of the body (the
unsigned part). The signature covers the body under ``Domain.TX``.

List transactions (protocol 2). A list whose items belong to different parties
(``allocate``'s allocations, ``settle``'s settlements: ``DETACHED_FIELDS``) is
*committed* in the body as ``[count, items_root]``, ``items_root`` being the
``node.protocol.merkle`` root of the items' canonical encodings, in order. The wire form
of such a transaction is ``[body, signature, items]``: the items travel beside
the body (the ledger executes them) and decoding recomputes their root. So the
body, its id and its signature, and the block's leaf for it
(``node.protocol.merkle.tx_leaf``), can be checked by a reader who is shown one item
and its Merkle path, and the other items only as hashes (``CommittedTx``).

Decoding is strict and returns a ``Result`` instead of raising, so any bytes
from the network map to one stable code.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import ClassVar, Final

from node.ledger.codes import Result
from node.protocol import codec, limits, merkle
from node.protocol.codec import DecodeError, Value
from node.protocol.crypto import (
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
from node.protocol.statements import STATEMENT_BYTES_MAX

VERSION: Final = 3  # 3: merchants carry an address; 2: per-party lists committed by a Merkle root
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
    CONSENT_ZONES = 21
    SCHEDULE_UPGRADE = 22
    ROTATE_KEY = 23


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
    ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class Allocation:
    holder: PublicKey
    amount_cents: int
    zone: str


@dataclass(frozen=True, slots=True)
class Address:
    """Where a shop is, as the commune registered it (protocol 3): street and
    number, postcode, town. Each part is a name (``node.text.names``); all three empty
    means no address (a market stall, a shop that only delivers)."""

    street: str = ""
    postcode: str = ""
    town: str = ""

    def is_empty(self) -> bool:
        return not (self.street or self.postcode or self.town)


NO_ADDRESS: Final = Address()


def decode_address(value: Value) -> Address:
    """An address from its encoding ``[street, postcode, town]``; raises ``DecodeError``."""
    street, postcode, town = codec.as_list(value, 3)
    return Address(
        codec.as_str(street, limits.NAME_CHARS_MAX),
        codec.as_str(postcode, limits.POSTCODE_CHARS_MAX),
        codec.as_str(town, limits.NAME_CHARS_MAX),
    )


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


def _allocation(value: Value) -> Allocation:
    holder, amount, zone = codec.as_list(value, 3)
    return Allocation(
        PublicKey(codec.as_bytes(holder, PUBLIC_KEY_BYTES)),
        codec.as_int(amount, INT64_MIN, INT64_MAX),
        codec.as_str(zone, limits.CODE_CHARS_MAX),
    )


def _settlement(value: Value) -> Settlement:
    payout, reference = codec.as_list(value, 2)
    return Settlement(
        Digest(codec.as_bytes(payout, HASH_BYTES)),
        codec.as_str(reference, limits.REFERENCE_CHARS_MAX),
    )


Item = Allocation | Settlement


@dataclass(frozen=True, slots=True)
class DetachedList:
    """How one per-party list is decoded: each item, and the most items a transaction holds."""

    item: Callable[[Value], Item]
    count_max: int


DETACHED_FIELDS: Final[dict[Field, DetachedList]] = {
    Field.ALLOCATIONS: DetachedList(_allocation, limits.ALLOCATIONS_PER_TX_MAX),
    Field.SETTLEMENTS: DetachedList(_settlement, limits.SETTLEMENTS_PER_TX_MAX),
}
"""The lists whose items belong to different parties: committed by a root of their items."""


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
    Field.AUTHORIZATION: Authorization.decode_value,
    Field.SIGNATURE: lambda v: codec.as_bytes(v, SIGNATURE_BYTES),
    Field.STATEMENT: _statement,
    Field.APPROVALS: _approvals,
    Field.VALIDATORS: _validators,
    Field.ADDRESS: decode_address,
}


def encode_item(item: Item) -> bytes:
    """An item's canonical encoding: the leaf of its list's items root."""
    return codec.encode(_encode_field(item))


def decode_item(field: Field, data: bytes) -> Item:
    """One item of a detached list from its canonical bytes; raises ``DecodeError``."""
    return DETACHED_FIELDS[field].item(codec.decode(data, limits.TX_BYTES_MAX))


def _encode_field(value: object) -> Value:
    if isinstance(value, Allocation):
        return [value.holder, value.amount_cents, value.zone]
    if isinstance(value, Settlement):
        return [value.payout_id, value.bank_reference]
    if isinstance(value, Address):
        return [value.street, value.postcode, value.town]
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
        Field.KEY,
        Field.NAME,
        Field.CODE,
        Field.CODE,
        Field.DIGEST,
        Field.BOOL,
        Field.ADDRESS,
    )
    merchant: PublicKey
    name: str
    category: str
    zone: str
    payout_ref_hash: Digest
    auto_redeem: bool
    address: Address = NO_ADDRESS


@dataclass(frozen=True, slots=True)
class UpdateMerchant:
    """Signed by the registering issuer (any field) or by the merchant itself
    (only ``payout_ref_hash`` and ``auto_redeem`` may change). Every field is the
    new value: an update that leaves ``address`` out clears it."""

    KIND: ClassVar[Kind] = Kind.UPDATE_MERCHANT
    SPEC: ClassVar[tuple[Field, ...]] = RegisterMerchant.SPEC
    merchant: PublicKey
    name: str
    category: str
    zone: str
    payout_ref_hash: Digest
    auto_redeem: bool
    address: Address = NO_ADDRESS


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
        Field.CODE,
        Field.NAME,
        Field.CODES,
        Field.CODES,
        Field.TIME,
        Field.TIME,
        Field.AMOUNT,
    )
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
        Field.AUTHORIZATION,
        Field.SIGNATURE,
        Field.AMOUNT,
        Field.MEMO,
    )
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
        Field.STATEMENT,
        Field.SIGNATURE,
        Field.STATEMENT,
        Field.SIGNATURE,
    )
    first: bytes
    first_signature: bytes
    second: bytes
    second_signature: bytes


@dataclass(frozen=True, slots=True)
class AdmitIssuer:
    """A new commune or region, approved by more than 2/3 of the voting power."""

    KIND: ClassVar[Kind] = Kind.ADMIT_ISSUER
    SPEC: ClassVar[tuple[Field, ...]] = (
        Field.KEY,
        Field.NAME,
        Field.NAME,
        Field.CODES,
        Field.APPROVALS,
    )
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


@dataclass(frozen=True, slots=True)
class ConsentZones:
    """A commune's consent that ``region``'s campaigns be spent at its shops in
    ``zones`` (all of them the commune's own). It replaces the commune's previous
    consent to that region; an empty list revokes it."""

    KIND: ClassVar[Kind] = Kind.CONSENT_ZONES
    SPEC: ClassVar[tuple[Field, ...]] = (Field.KEY, Field.CODES)
    region: PublicKey
    zones: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScheduleUpgrade:
    """The protocol ``protocol`` takes effect at ``height``, approved by more than 2/3.

    ``software`` names the release that knows it: what a node that does not know
    ``protocol`` tells its operator to install before stopping at ``height - 1``."""

    KIND: ClassVar[Kind] = Kind.SCHEDULE_UPGRADE
    SPEC: ClassVar[tuple[Field, ...]] = (Field.CODE, Field.CODE, Field.TIME, Field.APPROVALS)
    protocol: str
    software: str
    height: int
    approvals: tuple[Approval, ...]

    def approval_body(self) -> bytes:
        return codec.encode([VERSION, int(self.KIND), self.protocol, self.software, self.height])


@dataclass(frozen=True, slots=True)
class RotateKey:
    """From ``height`` on, ``new_key`` signs for the account ``account`` (a bank, issuer
    or auditor) instead of the key that signed for it before, approved by more than 2/3.

    The account keeps its identity (``account``, the key it was made with): its records,
    campaigns, merchants and payouts stay where they are; only the signing key moves."""

    KIND: ClassVar[Kind] = Kind.ROTATE_KEY
    SPEC: ClassVar[tuple[Field, ...]] = (Field.KEY, Field.KEY, Field.TIME, Field.APPROVALS)
    account: PublicKey
    new_key: PublicKey
    height: int
    approvals: tuple[Approval, ...]

    def approval_body(self) -> bytes:
        return codec.encode([VERSION, int(self.KIND), self.account, self.new_key, self.height])


GovernancePayload = AdmitIssuer | ChangeValidators | ScheduleUpgrade | RotateKey


def approve(payload: GovernancePayload, signer: Signer, chain_id: str) -> Approval:
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
    | ConsentZones
    | ScheduleUpgrade
    | RotateKey
)

PAYLOAD_TYPES: Final[dict[Kind, type[Payload]]] = {
    cls.KIND: cls
    for cls in (
        RegisterMerchant,
        UpdateMerchant,
        SuspendMerchant,
        CreateCampaign,
        Fund,
        Allocate,
        Pay,
        PayAuthorized,
        Sweep,
        Refund,
        Reissue,
        Transfer,
        Redeem,
        Settle,
        CloseCampaign,
        Withdraw,
        Evidence,
        AdmitIssuer,
        ChangeValidators,
        ReturnPayout,
        ConsentZones,
        ScheduleUpgrade,
        RotateKey,
    )
}

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
        """The committed body: what is signed and hashed (per-party lists as their roots)."""
        values: list[Value] = [
            VERSION,
            int(self.payload.KIND),
            self.chain_id,
            self.sender,
            self.sequence,
        ]
        for spec, f in zip(self.payload.SPEC, fields(self.payload), strict=True):
            value = getattr(self.payload, f.name)
            if spec in DETACHED_FIELDS:
                encoded = [encode_item(item) for item in value]
                values.append([len(encoded), merkle.root(encoded)])
            else:
                values.append(_encode_field(value))
        return codec.encode(values)

    def items(self) -> tuple[Item, ...] | None:
        """The items of the kind's per-party list, or None for a kind without one."""
        for spec, f in zip(self.payload.SPEC, fields(self.payload), strict=True):
            if spec in DETACHED_FIELDS:
                found: tuple[Item, ...] = getattr(self.payload, f.name)
                return found
        return None

    def sign(self, signer: Signer) -> SignedTx:
        if signer.public_key != self.sender:
            raise ValueError("the signer is not the sender")
        body = self.body()
        signature = signer.sign(Domain.TX, self.chain_id, body)
        return SignedTx(self, body, signature, digest(body))


@dataclass(frozen=True, slots=True)
class SignedTx:
    tx: Tx
    body: bytes  # the committed body
    signature: bytes
    tx_id: Digest

    def encode(self) -> bytes:
        """The wire bytes: ``[body, signature]``; ``[body, signature, items]`` for a list kind."""
        items = self.tx.items()
        if items is None:
            return codec.encode([self.body, self.signature])
        return codec.encode([self.body, self.signature, _detached(items)])

    def items_digest(self) -> Digest | None:
        """SHA-256 of the encoded item list (what ``node.protocol.merkle.tx_leaf`` binds), if
        any."""
        items = self.tx.items()
        return None if items is None else digest(codec.encode(_detached(items)))

    def signature_ok(self) -> bool:
        return verify(Domain.TX, self.tx.chain_id, self.body, self.tx.sender, self.signature)


def _detached(items: tuple[Item, ...]) -> list[Value]:
    return [_encode_field(item) for item in items]


@dataclass(frozen=True, slots=True)
class CommittedTx:
    """A list transaction as its committed body shows it: everything but the items,
    which are ``item_count`` leaves under ``items_root``. What a reader of some of
    the items is given, with each item it may see and its Merkle path."""

    chain_id: str
    sender: PublicKey
    sequence: int
    kind: Kind
    list_field: Field
    item_count: int
    items_root: Digest
    body: bytes
    signature: bytes
    tx_id: Digest

    def signature_ok(self) -> bool:
        return verify(Domain.TX, self.chain_id, self.body, self.sender, self.signature)

    def item(self, data: bytes, proof: merkle.InclusionProof) -> Item:
        """The item ``data`` at ``proof.index`` of the committed list; ``DecodeError`` if not."""
        if proof.size != self.item_count or not merkle.verify_inclusion(
            self.items_root, data, proof
        ):
            raise DecodeError("the item is not in the committed list at the place claimed")
        return decode_item(self.list_field, data)


def decode_tx(data: bytes, chain_id: str) -> SignedTx | Result:
    """Decode wire bytes into a transaction for ``chain_id``, or the code that rejects them.

    Checks shape, chain and a list kind's items root; the signature is checked by
    ``SignedTx.signature_ok``.
    """
    if len(data) > limits.TX_BYTES_MAX:
        return Result.TOO_LARGE
    try:
        outer = codec.decode(data, limits.TX_BYTES_MAX)
        if not isinstance(outer, list) or len(outer) not in (2, 3):
            return Result.MALFORMED
        body = outer[0]
        if not isinstance(body, bytes):
            return Result.MALFORMED
        signature = codec.as_bytes(outer[1], SIGNATURE_BYTES)
        items = codec.decode(body, limits.TX_BYTES_MAX)
    except DecodeError:
        return Result.MALFORMED
    detached = outer[2] if len(outer) == 3 else None
    return _decode_body(items, body, signature, chain_id, detached)


def decode_committed(body: bytes, signature: bytes, chain_id: str) -> CommittedTx | Result:
    """A list transaction's committed body (as a reader of some items is shown it)."""
    if len(body) > limits.TX_BYTES_MAX or len(signature) != SIGNATURE_BYTES:
        return Result.MALFORMED
    try:
        items = codec.decode(body, limits.TX_BYTES_MAX)
    except DecodeError:
        return Result.MALFORMED
    parsed = _parse_body(items, chain_id)
    if isinstance(parsed, Result):
        return parsed
    cls, tx_chain, sender, sequence, values = parsed
    for spec, value in zip(cls.SPEC, values, strict=True):
        if isinstance(value, _Commitment):
            return CommittedTx(
                tx_chain,
                sender,
                sequence,
                cls.KIND,
                spec,
                value.count,
                value.root,
                body,
                signature,
                digest(body),
            )
    return Result.MALFORMED  # a kind without a per-party list is shown whole


@dataclass(frozen=True, slots=True)
class _Commitment:
    """A per-party list as the body commits to it."""

    count: int
    root: Digest


def _commitment(value: Value, count_max: int) -> _Commitment:
    count, root = codec.as_list(value, 2)
    return _Commitment(codec.as_int(count, 0, count_max), Digest(codec.as_bytes(root, HASH_BYTES)))


_Parsed = tuple[type["Payload"], str, PublicKey, int, list[object]]


def _parse_body(items: Value, chain_id: str) -> _Parsed | Result:
    """The header and fields of a body; a per-party list stays a ``_Commitment``."""
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
        # Any string the transaction can carry: one longer than limits.CHAIN_ID_CHARS_MAX is
        # never this chain's and is answered WRONG_CHAIN below, as any other chain id.
        tx_chain = codec.as_str(items[2], limits.TX_BYTES_MAX)
        sender = PublicKey(codec.as_bytes(items[3], PUBLIC_KEY_BYTES))
        sequence = codec.as_int(items[4], 0, INT64_MAX)
        pairs = zip(decoders, items[_HEADER_FIELDS:], strict=True)
        values = [decode(item) for decode, item in pairs]
    except DecodeError:
        return Result.MALFORMED
    if tx_chain != chain_id:
        return Result.WRONG_CHAIN
    return cls, tx_chain, sender, sequence, values


def _decode_body(
    items: Value, body: bytes, signature: bytes, chain_id: str, detached: Value | None
) -> SignedTx | Result:
    parsed = _parse_body(items, chain_id)
    if isinstance(parsed, Result):
        return parsed
    cls, tx_chain, sender, sequence, values = parsed
    for position, value in enumerate(values):
        if isinstance(value, _Commitment):
            found = _attach(value, DETACHED_FIELDS[cls.SPEC[position]], detached)
            if isinstance(found, Result):
                return found
            values[position] = found
            break
    else:
        if detached is not None:
            return Result.MALFORMED
    payload = cls(*values)  # type: ignore[arg-type]  # SPEC fixes each value's type; round-trip tested
    return SignedTx(Tx(tx_chain, sender, sequence, payload), body, signature, digest(body))


def _attach(
    commitment: _Commitment, spec: DetachedList, detached: Value | None
) -> tuple[Item, ...] | Result:
    """The items the body commits to, checked against its count and root."""
    if not isinstance(detached, list) or len(detached) != commitment.count:
        return Result.MALFORMED
    try:
        items = tuple(spec.item(item) for item in detached)
    except DecodeError:
        return Result.MALFORMED
    if merkle.root([codec.encode(item) for item in detached]) != commitment.root:
        return Result.MALFORMED
    return items


def _decoder(spec: Field) -> Callable[[Value], object]:
    found = DETACHED_FIELDS.get(spec)
    if found is None:
        return _DECODERS[spec]
    count_max = found.count_max
    return lambda value: _commitment(value, count_max)


# Per kind number: the payload class and its fields' decoders, resolved once
# (the hot path of every transaction looks up neither enum).
_DECODE_PLANS: Final[dict[int, tuple[type[Payload], tuple[Callable[[Value], object], ...]]]] = {
    int(kind): (cls, tuple(_decoder(spec) for spec in cls.SPEC))
    for kind, cls in PAYLOAD_TYPES.items()
}
