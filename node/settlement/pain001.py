"""ISO 20022 pain.001.001.03 credit-transfer files, written with sepaxml.

One file per issuer and batch run: the debtor is the issuer's escrow account
at the bank, each credit transfer pays one merchant (its due payouts summed)
and carries its end-to-end id, which the bank echoes in its camt statements
and which becomes the ``bank_reference`` of the ``settle`` transaction.

Every file is validated against the pain.001.001.03 XSD that sepaxml ships
(``sepaxml/schemas/pain.001.001.03.xsd``) with xmlschema before it is stored.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Final

import xmlschema
from sepaxml import SepaTransfer

from node.settlement.journal import FileRow, TransferRow

SCHEMA: Final = "pain.001.001.03"
NAMESPACE: Final = f"urn:iso:std:iso:20022:tech:xsd:{SCHEMA}"
CURRENCY: Final = "EUR"


class Pain001Error(ValueError):
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
        raise Pain001Error(f"not valid {SCHEMA}: {errors[0].reason}")


def build(file: FileRow, transfers: list[TransferRow]) -> Built:
    """The file's XML (validated). ``MsgId`` and timestamps come from sepaxml."""
    if not transfers:
        raise Pain001Error("a file needs at least one transfer")
    config: dict[str, object] = {
        "name": file.debtor_name,
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
            "name": transfer.creditor_name,
            "IBAN": transfer.iban,
            "amount": transfer.amount_cents,
            "execution_date": execution,
            "description": f"Relance payout {transfer.end_to_end_id}",
            "endtoend_id": transfer.end_to_end_id,
        }
        if transfer.bic:
            payment["BIC"] = transfer.bic
        sepa.add_payment(payment)
    xml = bytes(sepa.export(validate=False))
    validate(xml)
    return Built(str(sepa.msg_id), xml)
