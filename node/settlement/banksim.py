"""A simulated bank for the devnet and tests: executes pain.001 files, answers with
camt.054 notifications (or camt.053 statements, or the confirmation CSV).

Each credit transfer becomes one booked debit on the debtor (escrow) account;
a transfer listed in ``reject`` is booked and then returned (a credit entry
with ``RtrInf/Rsn/Cd``, e.g. ``AC04`` closed account). One document per
debtor account.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

from node.settlement.camt import CSV_HEADER
from node.settlement.money import parse_decimal, to_decimal

NAMESPACES: Final = {
    "camt.053": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02",
    "camt.054": "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02",
}


@dataclass(frozen=True, slots=True)
class Executed:
    debtor_iban: str
    end_to_end_id: str
    amount_cents: int
    currency: str


def read_pain001(data: bytes) -> list[Executed]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(data, parser)
    out = []
    for info in root.iterfind(".//{*}PmtInf"):
        debtor = info.findtext("{*}DbtrAcct/{*}Id/{*}IBAN") or ""
        for tx in info.iterfind("{*}CdtTrfTxInf"):
            amount = tx.find("{*}Amt/{*}InstdAmt")
            if amount is None or amount.text is None:
                raise ValueError("a credit transfer without an amount")
            out.append(
                Executed(
                    debtor,
                    tx.findtext("{*}PmtId/{*}EndToEndId") or "",
                    parse_decimal(amount.text),
                    amount.get("Ccy", ""),
                )
            )
    return out


def statements(
    files: list[bytes], booking_date: str, kind: str, reject: dict[str, str] | None = None
) -> list[bytes]:
    """The bank's answer to ``files``: one camt document per debtor account, or one CSV."""
    reject = reject or {}
    executed = [e for data in files for e in read_pain001(data)]
    if kind == "csv":
        return [_csv(executed, booking_date, reject)]
    if kind not in NAMESPACES:
        raise ValueError(f"kind is csv, {' or '.join(NAMESPACES)}")
    by_account: dict[str, list[Executed]] = defaultdict(list)
    for e in executed:
        by_account[e.debtor_iban].append(e)
    return [
        _camt(kind, account, entries, booking_date, reject)
        for account, entries in sorted(by_account.items())
    ]


def _csv(executed: list[Executed], booked: str, reject: dict[str, str]) -> bytes:
    lines = [",".join(CSV_HEADER)]
    for e in executed:
        status = "REJECTED" if e.end_to_end_id in reject else "BOOKED"
        reason = reject.get(e.end_to_end_id, "")
        amount = to_decimal(e.amount_cents)
        lines.append(f"{e.end_to_end_id},{amount},{e.currency},{status},{reason},{booked}")
    return ("\n".join(lines) + "\n").encode()


def _entry(e: Executed, booked: str, credit: bool, reason: str) -> str:
    amount = f'<Amt Ccy="{escape(e.currency)}">{to_decimal(e.amount_cents)}</Amt>'
    returned = f"<RtrInf><Rsn><Cd>{escape(reason)}</Cd></Rsn></RtrInf>" if credit else ""
    return (
        f"<Ntry>{amount}<CdtDbtInd>{'CRDT' if credit else 'DBIT'}</CdtDbtInd><Sts>BOOK</Sts>"
        f"<BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{booked}</Dt></ValDt>"
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>"
        f"{'RRTN' if credit else 'ESCT'}</SubFmlyCd></Fmly></Domn></BkTxCd>"
        f"<NtryDtls><TxDtls><Refs><EndToEndId>{escape(e.end_to_end_id)}</EndToEndId></Refs>"
        f"<AmtDtls><TxAmt>{amount}</TxAmt></AmtDtls>{returned}</TxDtls></NtryDtls></Ntry>"
    )


def _camt(
    kind: str, account: str, entries: list[Executed], booked: str, reject: dict[str, str]
) -> bytes:
    body = []
    for e in entries:
        body.append(_entry(e, booked, False, ""))
        if e.end_to_end_id in reject:
            body.append(_entry(e, booked, True, reject[e.end_to_end_id]))
    seed = hashlib.sha256("".join(body).encode()).hexdigest()[:16]
    outer, inner = (
        ("BkToCstmrStmt", "Stmt") if kind == "camt.053" else ("BkToCstmrDbtCdtNtfctn", "Ntfctn")
    )
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{NAMESPACES[kind]}">'
        f"<{outer}><GrpHdr><MsgId>SIM-{seed}</MsgId><CreDtTm>{booked}T18:00:00</CreDtTm></GrpHdr>"
        f"<{inner}><Id>{seed}</Id><CreDtTm>{booked}T18:00:00</CreDtTm>"
        f"<FrToDt><FrDtTm>{booked}T00:00:00</FrDtTm><ToDtTm>{booked}T23:59:59</ToDtTm></FrToDt>"
        f"<Acct><Id><IBAN>{escape(account)}</IBAN></Id><Ccy>EUR</Ccy></Acct>"
        f"{''.join(body)}</{inner}></{outer}></Document>"
    )
    return xml.encode()
