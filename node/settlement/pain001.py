"""ISO 20022 pain.001.001.03 credit-transfer files, written with sepaxml.

One file per issuer and batch run: the debtor is the issuer's escrow account
at the bank, each credit transfer pays one merchant (its due payouts summed)
and carries its end-to-end id, which the bank echoes in its camt statements
and which becomes the ``bank_reference`` of the ``settle`` transaction.

Every file is validated against the pain.001.001.03 XSD that sepaxml ships
(``sepaxml/schemas/pain.001.001.03.xsd``) with xmlschema before it is stored.

Names (the merchant's, the escrow account's) are whatever the ledger accepts
(``node.text.names``: any Unicode). Banks accept only the EPC SEPA character set
(Latin letters, digits, ``/ - ? : ( ) . , ' +`` and space), so ``sepa_name``
transliterates (anyascii: é -> e, ß -> ss, œ -> oe, 北京 -> BeiJing), drops what
is left outside the set (``& < > = | ! "`` ..., emoji), and falls back to a name made
of the key's prefix when nothing is left (a name of emoji or punctuation only).
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Final

import xmlschema
from anyascii import anyascii
from sepaxml import SepaTransfer

from node.protocol.errors import SettlementError
from node.settlement.journal import FileRow, FileState, TransferRow, TransferState

SCHEMA: Final = "pain.001.001.03"
NAMESPACE: Final = f"urn:iso:std:iso:20022:tech:xsd:{SCHEMA}"
CURRENCY: Final = "EUR"
NAME_CHARS_MAX: Final = 70  # EPC: Nm of the debtor and creditor, at most 70 characters
_OUTSIDE_EPC_SET: Final = re.compile(r"[^A-Za-z0-9/?:().,'+ -]+")
_EMOJI_SHORTCODE: Final = re.compile(r":[a-z0-9_+-]+:")  # anyascii spells emoji :pizza:


class Pain001Error(SettlementError, ValueError):
    """The file would not be valid pain.001 (a bad name, IBAN or BIC)."""


@dataclass(frozen=True, slots=True)
class Built:
    msg_id: str
    xml: bytes


def xsd_path() -> str:
    return str(resources.files("sepaxml") / "schemas" / f"{SCHEMA}.xsd")


@functools.cache
def _schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(xsd_path())


def validate(xml: bytes) -> None:
    """Raise ``Pain001Error`` unless ``xml`` is valid against the pain.001.001.03 XSD."""
    errors = list(_schema().iter_errors(xml.decode("utf-8")))
    if errors:
        where = errors[0].path or "the document"
        raise Pain001Error(f"not valid {SCHEMA}: {where}: {errors[0].reason}")


def sepa_name(name: str, fallback: str) -> str:
    """``name`` in the EPC SEPA character set, at most 70 characters; ``fallback`` (itself
    in the set) when nothing of the name is left. Never starts with ``/`` nor holds ``//``
    (the EPC rules for references; harmless for names)."""
    latin = "".join(" " if _EMOJI_SHORTCODE.fullmatch(a := anyascii(c)) else a for c in name)
    text = _OUTSIDE_EPC_SET.sub(" ", latin)
    text = re.sub(r"/{2,}", "/", text)
    text = " ".join(text.split()).lstrip("/ ")[:NAME_CHARS_MAX].rstrip()
    if not any(c.isalnum() for c in text):
        return fallback
    return text


def build(file: FileRow, transfers: list[TransferRow], purpose: str = "Relance payout") -> Built:
    """The file's XML (validated). ``MsgId`` and timestamps come from sepaxml. Each
    transfer's remittance text is ``purpose`` and its end-to-end id.

    Raises ``Pain001Error`` with the reason when the file cannot be made valid."""
    if not transfers:
        raise Pain001Error("a file needs at least one transfer")
    try:
        xml, msg_id = _export(file, transfers, purpose)
    except Pain001Error:
        raise
    except Exception as exc:  # sepaxml raises what it likes (ValueError, KeyError...)
        raise Pain001Error(f"sepaxml refused the file: {type(exc).__name__}: {exc}") from None
    validate(xml)
    return Built(msg_id, xml)


def _export(file: FileRow, transfers: list[TransferRow], purpose: str) -> tuple[bytes, str]:
    config: dict[str, object] = {
        "name": sepa_name(file.debtor_name, f"Relance escrow {file.issuer.hex()[:8]}"),
        "IBAN": file.debtor_iban,
        "batch": True,
        "currency": CURRENCY,
    }
    if file.debtor_bic:
        config["BIC"] = file.debtor_bic
    sepa = SepaTransfer(config, schema=SCHEMA, clean=True)
    execution = datetime.date.fromisoformat(file.execution_date)
    for transfer in transfers:
        payment: dict[str, object] = {
            "name": sepa_name(transfer.creditor_name, f"Merchant {transfer.merchant.hex()[:8]}"),
            "IBAN": transfer.iban,
            "amount": transfer.amount_cents,
            "execution_date": execution,
            "description": f"{purpose} {transfer.end_to_end_id}",
            "endtoend_id": transfer.end_to_end_id,
        }
        if transfer.bic:
            payment["BIC"] = transfer.bic
        sepa.add_payment(payment)
    return bytes(sepa.export(validate=False)), str(sepa.msg_id)


@dataclass(frozen=True, slots=True)
class Party:
    """An account holder of a single transfer: name (any Unicode), IBAN, optional BIC."""

    name: str
    iban: str
    bic: str = ""


REFERENCE_CHARS_MAX: Final = 35  # ISO 20022 Max35Text: the end-to-end id
_REFERENCE: Final = re.compile(r"[A-Za-z0-9/?:().,'+ -]{1,35}")


def check_reference(reference: str) -> str | None:
    """Why ``reference`` cannot be an end-to-end id (EPC rules), or None if it can."""
    if not _REFERENCE.fullmatch(reference):
        return (
            f"a bank reference is 1 to {REFERENCE_CHARS_MAX} characters of the SEPA set "
            "(letters, digits, / - ? : ( ) . , ' + and space)"
        )
    if reference.startswith("/") or "//" in reference:
        return "a bank reference neither starts with / nor holds //"
    return None


def withdrawal(
    issuer: bytes,
    debtor: Party,
    creditor: Party,
    amount_cents: int,
    reference: str,
    execution_date: str,
) -> Built:
    """The credit transfer of a ``withdraw``: unspent budget from the commune's escrow
    account (``debtor``) back to the commune's own account (``creditor``), named by the
    bank's reference of the withdrawal (its end-to-end id). Validated like every file."""
    why = check_reference(reference)
    if why is not None:
        raise Pain001Error(why)
    file = FileRow(
        0,
        issuer,
        0,
        execution_date,
        FileState.ASSIGNED,
        debtor.name,
        debtor.iban,
        debtor.bic,
        1,
        amount_cents,
        None,
        None,
        None,
    )
    transfer = TransferRow(
        0,
        0,
        issuer,
        issuer,
        creditor.name,
        creditor.iban,
        creditor.bic,
        amount_cents,
        reference,
        TransferState.SENT,
        "",
        "",
    )
    return build(file, [transfer], "Relance withdrawal")
