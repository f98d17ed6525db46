"""IBANs and what the ledger keeps of them: a salted hash (pure; the wallet uses it too).

A merchant's ``payout_ref_hash`` on the ledger is
``SHA-256("relance/payout-ref/v1" 0x00 || salt || IBAN)`` with the IBAN in its
compact form (no spaces, upper case) and a random 16-byte salt that only the
merchant and the bank know, so nobody can confirm a guessed IBAN against the
public ledger. An empty salt means the legacy, unsalted form
``SHA-256(IBAN)`` (merchants registered from an issuer's CSV before settlement
existed); the bank accepts it but the wallet always salts.

IBANs are validated with schwifty (ISO 13616 check digits, national BBAN
format and checksums, SEPA zone).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from node.protocol.errors import SettlementError

SALT_BYTES: Final = 16
HASH_DOMAIN: Final = b"relance/payout-ref/v1\x00"
IBAN_CHARS_MAX: Final = 42  # 34 characters plus the spaces of the printed form


class IbanError(SettlementError, ValueError):
    """Not a valid SEPA IBAN; the message says why."""


@dataclass(frozen=True, slots=True)
class Account:
    """A validated SEPA account: compact IBAN and, when the registry knows it, the BIC."""

    iban: str
    bic: str

    @property
    def masked(self) -> str:
        return mask(self.iban)


def parse_iban(text: str) -> Account:
    """Validate ``text`` as an IBAN of the SEPA zone; raises ``IbanError``."""
    if len(text) > IBAN_CHARS_MAX or not text.isprintable():
        raise IbanError("an IBAN is at most 34 letters and digits")
    try:
        iban = IBAN(text)
    except SchwiftyException as exc:
        raise IbanError(f"not a valid IBAN: {exc}") from None
    if not iban.in_sepa_zone:
        raise IbanError(f"{iban.country_code} accounts are outside the SEPA zone")
    bic = iban.bic
    return Account(str(iban.compact), "" if bic is None else str(bic))


def compact(reference: str) -> str:
    """A payout reference in the form that is hashed: no whitespace, upper case."""
    return "".join(reference.split()).upper()


def ref_hash(iban_compact: str, salt: bytes) -> bytes:
    """What the ledger keeps of an IBAN (see the module docstring)."""
    if salt and len(salt) != SALT_BYTES:
        raise ValueError(f"a salt is {SALT_BYTES} bytes")
    if not salt:
        return hashlib.sha256(iban_compact.encode()).digest()
    return hashlib.sha256(HASH_DOMAIN + salt + iban_compact.encode()).digest()


def matches(ledger_hash: bytes, iban_compact: str, salt: bytes) -> bool:
    return hmac.compare_digest(ledger_hash, ref_hash(iban_compact, salt))


def mask(iban_compact: str) -> str:
    """``BE68 **** **** 7034``: country and check digits, and the last four."""
    if len(iban_compact) < 8:
        return "****"
    middle = len(iban_compact) - 8
    groups = ["*" * 4] * (middle // 4) + (["*" * (middle % 4)] if middle % 4 else [])
    return " ".join([iban_compact[:4], *groups, iban_compact[-4:]])
