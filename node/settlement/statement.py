"""The commune statement: per issuer, campaign and period, from the committed blocks
and the bank's journal, as JSON-ready dataclasses, CSV and PDF (reportlab).

Per campaign: unspent at the start of the period, deposits (``fund``), spending
at merchants (``pay``), purchase refunds (``refund``), withdrawals
(``withdraw``), unspent at the end, and per merchant what it received and
refunded. By construction ``closing = opening + deposits - spent + refunds -
withdrawals``; when the period reaches the last block, ``closing`` is checked
against the ledger's own ``budget + outstanding``.

For the issuer's escrow account: payouts per merchant opened, settled and
returned in the period, and the bank reconciliation: every ``settle`` reference
of the period must be a transfer of the bank's pain.001 files, confirmed by a
statement, of exactly the settled amount; every ``return_payout`` reference a
transfer the bank rejected, of exactly the returned amount (a returned payout
left the escrow account for no one: its units are back in the merchant's
balance). Periods are ``[from_ms, to_ms)`` in block time.

Regional vouchers: a region's campaign spent at the commune's shops (where the
commune consented, ``consent_zones``) is listed per (campaign, shop) in
``regional``; the units are the region's, so the payouts and their bank
reconciliation are in the region's statement, not the commune's.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import StyleSheet1, getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from node.consensus.types import Block
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol.errors import SettlementError, SettlementInvariantBroken
from node.settlement.journal import Journal, TransferState
from node.settlement.money import to_decimal
from node.store.blockstore import BlockStore
from node.text import fmt
from node.text.escape import csv_writer, pdf_markup

BLOCKS_SCANNED_MAX: Final = 1_000_000
OPEN_END_MS: Final = 253_402_300_800_000  # year 10000: an end past it is "no end" (the default)


@dataclass(slots=True)
class MerchantLine:
    merchant: str
    name: str
    payments: int = 0
    paid_cents: int = 0
    refunded_cents: int = 0


@dataclass(slots=True)
class CampaignLine:
    campaign: str
    name: str
    opening_unspent_cents: int = 0
    deposits_cents: int = 0
    spent_cents: int = 0
    refunds_cents: int = 0
    withdrawals_cents: int = 0
    closing_unspent_cents: int = 0
    ledger_unspent_cents: int | None = None  # budget + outstanding, when the period is current
    merchants: list[MerchantLine] = field(default_factory=list)


@dataclass(slots=True)
class RegionalLine:
    """A region's campaign spent at one of this commune's shops (the region's units:
    its payouts come from the region's escrow and are in the region's statement)."""

    campaign: str
    region: str
    region_name: str
    merchant: str
    name: str
    payments: int = 0
    paid_cents: int = 0
    refunded_cents: int = 0


@dataclass(slots=True)
class PayoutLine:
    merchant: str
    name: str
    opened: int = 0
    opened_cents: int = 0
    settled: int = 0
    settled_cents: int = 0
    returned: int = 0  # payouts the bank returned to the merchant's balance (transfer rejected)
    returned_cents: int = 0


@dataclass(slots=True)
class BankLine:
    reference: str
    settled_cents: int
    bank_cents: int | None  # the confirmed transfer's amount; None when unknown to the bank
    file_id: int | None
    booked: str


@dataclass(slots=True)
class ReturnLine:
    reference: str  # the rejected transfer's end-to-end id
    reason: str  # ISO 20022 return reason code
    returned_cents: int
    bank_cents: int | None  # the rejected transfer's amount; None when unknown to the bank
    file_id: int | None


@dataclass(slots=True)
class CommuneStatement:
    issuer: str
    issuer_name: str
    from_ms: int
    to_ms: int
    height: int
    campaigns: list[CampaignLine]
    payouts: list[PayoutLine]
    bank: list[BankLine]
    returns: list[ReturnLine]
    settled_cents: int
    bank_confirmed_cents: int
    returned_cents: int
    reconciled: bool
    differences: list[str]
    last_block_ms: int = 0  # the time of block ``height``, the last one of the period
    regional: list[RegionalLine] = field(default_factory=list)  # regions' vouchers, our shops


def period_text(s: CommuneStatement) -> str:
    """The period as people read it: dates and times in Brussels, the dashboards' format
    (an open start or end, as the API's defaults make, is said in words)."""
    start = "the first block" if s.from_ms <= 0 else fmt.datetime_text(s.from_ms)
    end = "now" if s.to_ms >= OPEN_END_MS else f"{fmt.datetime_text(s.to_ms)} (excluded)"
    last = (
        f"block {s.height} of {fmt.datetime_text(s.last_block_ms)}"
        if s.height
        else "no block in the period"
    )
    return f"From {start} to {end}, Brussels time; up to {last}"


def _merchant_name(store: Source, key: bytes) -> str:
    raw = store.get(r.merchant_key(key))
    return "?" if raw is None else r.Merchant.decode(raw).name


class Source(Protocol):
    """What a statement reads: the store (a snapshot of it) or what ``gather`` took of it."""

    def height(self) -> int: ...

    def get(self, key: bytes) -> bytes | None: ...

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...

    def block(self, height: int) -> bytes | None: ...


class TooLarge(SettlementError, RuntimeError):
    """The history is more than one statement may read at once."""


@dataclass(frozen=True, slots=True)
class Gathered:
    """Everything a statement of one issuer reads, as plain data (for a worker process):
    the blocks up to ``top`` and the records of the issuer, campaigns, merchants and
    payouts, as the store held them at ``top``."""

    top: int
    blocks: tuple[bytes, ...]
    records: Mapping[bytes, bytes]

    def height(self) -> int:
        return self.top

    def get(self, key: bytes) -> bytes | None:
        return self.records.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self.records if k.startswith(prefix)):
            yield key, self.records[key]

    def block(self, height: int) -> bytes | None:
        return self.blocks[height - 1] if 1 <= height <= len(self.blocks) else None


def gather(store: BlockStore, issuer: bytes, bytes_max: int) -> Gathered:
    """Read what ``fold`` needs from ``store`` (a snapshot: it must not move meanwhile)."""
    top = store.height()
    size = 0
    records: dict[bytes, bytes] = {}
    # every issuer: a regional line names the region that paid at the commune's shops
    prefixes = (r.issuer_key(b""), r.campaign_key(""), r.merchant_key(b""), r.payout_key(b""))
    for prefix in prefixes:
        for key, raw in store.iter_prefix(prefix):
            records[key] = raw
            size += len(key) + len(raw)
    blocks = tuple(store.blocks(1, min(top, BLOCKS_SCANNED_MAX)))  # no Python code a block
    if size + sum(map(len, blocks)) > bytes_max:
        raise TooLarge(f"a statement reads at most {bytes_max >> 20} MiB of history")
    if len(blocks) != min(top, BLOCKS_SCANNED_MAX):
        raise SettlementInvariantBroken(f"blocks are missing below {top}")
    return Gathered(top, blocks, records)


@dataclass(slots=True)
class Folded:
    """A statement before the bank's journal is read: the references to reconcile."""

    statement: CommuneStatement
    settled_refs: dict[str, int]
    returned_refs: dict[tuple[str, str], int]
    campaign_differences: list[str]


def compute(
    store: Source,
    chain_id: str,
    journal: Journal | None,
    issuer: bytes,
    campaign: str | None,
    from_ms: int,
    to_ms: int,
) -> CommuneStatement:
    return reconcile(fold(store, chain_id, issuer, campaign, from_ms, to_ms), journal)


def fold(
    store: Source,
    chain_id: str,
    issuer: bytes,
    campaign: str | None,
    from_ms: int,
    to_ms: int,
) -> Folded:
    """The statement's figures from the blocks and records (the heavy part: every block)."""
    raw_issuer = store.get(r.issuer_key(issuer))
    if raw_issuer is None:
        raise ValueError("no issuer has this key")
    flows = _Flows(store, issuer, _campaign_lines(store, issuer, campaign))
    _scan_blocks(store, chain_id, from_ms, to_ms, flows)
    _close_campaigns(store, flows, current=flows.height == store.height())
    differences = [
        f"campaign {line.campaign}: unspent differs from the ledger"
        for line in flows.campaigns.values()
        if line.ledger_unspent_cents not in (None, line.closing_unspent_cents)
    ]
    issuer_name = r.Issuer.decode(raw_issuer).name
    statement = _folded_statement(flows, issuer.hex(), issuer_name, from_ms, to_ms)
    return Folded(statement, dict(flows.settled_refs), dict(flows.returned_refs), differences)


class _Flows:
    """What the scan of the blocks adds up, for one issuer."""

    def __init__(self, store: Source, issuer: bytes, campaigns: dict[str, CampaignLine]) -> None:
        self.issuer = issuer
        self.campaigns = campaigns
        self.merchants: dict[tuple[str, bytes], MerchantLine] = {}
        self.payouts: dict[bytes, PayoutLine] = {}
        self.settled_refs: dict[str, int] = defaultdict(int)
        self.returned_refs: dict[tuple[str, str], int] = defaultdict(int)
        self.regional = _Regional(store, issuer)
        self.height = 0  # the last block of the period
        self.last_time = 0


def _campaign_lines(store: Source, issuer: bytes, campaign: str | None) -> dict[str, CampaignLine]:
    """An empty line for each campaign of ``issuer`` (only ``campaign`` when named)."""
    campaigns: dict[str, CampaignLine] = {}
    for key, raw in store.iter_prefix(r.campaign_key("")):
        code = key[1:].decode()
        record = r.Campaign.decode(raw)
        if record.issuer == issuer and campaign in (None, code):
            campaigns[code] = CampaignLine(code, record.name)
    return campaigns


def _scan_blocks(store: Source, chain_id: str, from_ms: int, to_ms: int, flows: _Flows) -> None:
    """Every block before ``to_ms``: before ``from_ms`` it counts in the opening figures."""
    for h in range(1, min(store.height(), BLOCKS_SCANNED_MAX) + 1):
        raw_block = store.block(h)
        if raw_block is None:
            raise SettlementInvariantBroken(f"block {h} is missing")
        block = Block.decode(raw_block)
        time_ms = block.header.time_ms
        if time_ms >= to_ms:
            break
        flows.height, flows.last_time = h, time_ms
        inside = time_ms >= from_ms
        for data in block.txs:
            signed = t.decode_tx(data, chain_id)
            if isinstance(signed, Result):
                raise SettlementInvariantBroken(f"a committed transaction does not decode at {h}")
            _campaign_flows(signed, inside, flows.campaigns, flows.merchants, store)
            if inside:
                flows.regional.add(signed, flows.campaigns)
                _payout_flows(signed, store, flows)


def _close_campaigns(store: Source, flows: _Flows, current: bool) -> None:
    """Each campaign's closing figure, its merchants, and (``current``) the ledger's own."""
    for code, line in flows.campaigns.items():
        line.closing_unspent_cents = (
            line.opening_unspent_cents
            + line.deposits_cents
            - line.spent_cents
            + line.refunds_cents
            - line.withdrawals_cents
        )
        if current:
            raw_campaign = store.get(r.campaign_key(code))
            if raw_campaign is not None:
                record = r.Campaign.decode(raw_campaign)
                line.ledger_unspent_cents = record.budget_cents + record.outstanding_cents
        line.merchants = sorted(
            (m for (c, _), m in flows.merchants.items() if c == code), key=lambda m: m.merchant
        )


def _folded_statement(
    flows: _Flows, issuer: str, issuer_name: str, from_ms: int, to_ms: int
) -> CommuneStatement:
    """The statement before the bank's lines (``reconcile`` adds them)."""
    return CommuneStatement(
        issuer=issuer,
        issuer_name=issuer_name,
        from_ms=from_ms,
        to_ms=to_ms,
        height=flows.height,
        campaigns=[flows.campaigns[c] for c in sorted(flows.campaigns)],
        payouts=[flows.payouts[k] for k in sorted(flows.payouts)],
        bank=[],
        returns=[],
        settled_cents=sum(flows.settled_refs.values()),
        bank_confirmed_cents=0,
        returned_cents=sum(flows.returned_refs.values()),
        reconciled=False,
        differences=[],
        last_block_ms=flows.last_time,
        regional=[flows.regional.lines[k] for k in sorted(flows.regional.lines)],
    )


def reconcile(folded: Folded, journal: Journal | None) -> CommuneStatement:
    """The statement with the bank's lines: every reference checked against ``journal``."""
    bank, differences = _bank_lines(journal, folded.settled_refs)
    returns = _return_lines(journal, folded.returned_refs, differences)
    differences += folded.campaign_differences
    return replace(
        folded.statement,
        bank=bank,
        returns=returns,
        bank_confirmed_cents=sum(b.bank_cents or 0 for b in bank),
        reconciled=not differences,
        differences=differences,
    )


class _Regional:
    """Regions' payments and refunds at the commune's shops, per (campaign, shop)."""

    def __init__(self, store: Source, issuer: bytes) -> None:
        self.store = store
        self.issuer = issuer
        self.lines: dict[tuple[str, bytes], RegionalLine] = {}
        self._issuer_of: dict[bytes, bytes] = {}  # merchant -> the commune that registered it
        self._region_of: dict[str, bytes] = {}  # campaign -> its issuer

    def add(self, signed: t.SignedTx, own: dict[str, CampaignLine]) -> None:
        p = signed.tx.payload
        if not isinstance(p, t.Pay | t.PayAuthorized | t.Refund):
            return
        code = p.authorization.campaign if isinstance(p, t.PayAuthorized) else p.campaign
        merchant = p.merchant if isinstance(p, t.Pay) else signed.tx.sender
        if code in own or self._merchant_issuer(merchant) != self.issuer:
            return
        region = self._campaign_issuer(code)
        if region == self.issuer:
            return  # our own campaign outside the selected one
        line = self.lines.get((code, merchant))
        if line is None:
            raw = self.store.get(r.issuer_key(region))
            region_name = "" if raw is None else r.Issuer.decode(raw).name
            line = RegionalLine(
                code,
                region.hex(),
                region_name,
                merchant.hex(),
                _merchant_name(self.store, merchant),
            )
            self.lines[(code, merchant)] = line
        if isinstance(p, t.Refund):
            line.refunded_cents += p.amount_cents
        else:
            line.payments += 1
            line.paid_cents += p.amount_cents

    def _merchant_issuer(self, merchant: bytes) -> bytes:
        if merchant not in self._issuer_of:
            raw = self.store.get(r.merchant_key(merchant))
            self._issuer_of[merchant] = b"" if raw is None else r.Merchant.decode(raw).issuer
        return self._issuer_of[merchant]

    def _campaign_issuer(self, code: str) -> bytes:
        if code not in self._region_of:
            raw = self.store.get(r.campaign_key(code))
            self._region_of[code] = b"" if raw is None else r.Campaign.decode(raw).issuer
        return self._region_of[code]


def _campaign_flows(
    signed: t.SignedTx,
    inside: bool,
    campaigns: dict[str, CampaignLine],
    merchants: dict[tuple[str, bytes], MerchantLine],
    store: Source,
) -> None:
    p = signed.tx.payload
    if isinstance(p, t.Fund | t.Withdraw) and p.campaign in campaigns:
        line = campaigns[p.campaign]
        sign = 1 if isinstance(p, t.Fund) else -1
        if not inside:
            line.opening_unspent_cents += sign * p.amount_cents
        elif sign > 0:
            line.deposits_cents += p.amount_cents
        else:
            line.withdrawals_cents += p.amount_cents
        return
    if isinstance(p, t.Pay | t.PayAuthorized | t.Refund):
        code = p.authorization.campaign if isinstance(p, t.PayAuthorized) else p.campaign
        if code not in campaigns:
            return
        line = campaigns[code]
        merchant = p.merchant if isinstance(p, t.Pay) else signed.tx.sender
        refund = isinstance(p, t.Refund)
        if not inside:
            line.opening_unspent_cents += p.amount_cents if refund else -p.amount_cents
            return
        row = merchants.get((code, merchant))
        if row is None:
            row = MerchantLine(merchant.hex(), _merchant_name(store, merchant))
            merchants[(code, merchant)] = row
        if refund:
            line.refunds_cents += p.amount_cents
            row.refunded_cents += p.amount_cents
        else:
            line.spent_cents += p.amount_cents
            row.payments += 1
            row.paid_cents += p.amount_cents


def _payout_flows(signed: t.SignedTx, store: Source, flows: _Flows) -> None:
    issuer, payouts = flows.issuer, flows.payouts
    settled_refs, returned_refs = flows.settled_refs, flows.returned_refs
    p = signed.tx.payload
    if isinstance(p, t.Pay | t.PayAuthorized | t.Redeem):
        found = store.get(r.payout_key(signed.tx_id))
        if found is None:
            return
        record = r.Payout.decode(found)
        if record.issuer != issuer:
            return
        line = _payout_line(payouts, record.merchant, store)
        line.opened += 1
        line.opened_cents += record.amount_cents
    elif isinstance(p, t.Settle):
        for s in p.settlements:
            found = store.get(r.payout_key(s.payout_id))
            if found is None:
                raise SettlementInvariantBroken("a settled payout is missing")
            record = r.Payout.decode(found)
            if record.issuer != issuer:
                continue
            line = _payout_line(payouts, record.merchant, store)
            line.settled += 1
            line.settled_cents += record.amount_cents
            settled_refs[s.bank_reference] += record.amount_cents
    elif isinstance(p, t.ReturnPayout):
        found = store.get(r.payout_key(p.payout_id))
        if found is None:
            raise SettlementInvariantBroken("a returned payout is missing")
        record = r.Payout.decode(found)
        if record.issuer != issuer:
            return
        line = _payout_line(payouts, record.merchant, store)
        line.returned += 1
        line.returned_cents += record.amount_cents
        returned_refs[(p.bank_reference, p.reason)] += record.amount_cents


def _payout_line(payouts: dict[bytes, PayoutLine], merchant: bytes, store: Source) -> PayoutLine:
    line = payouts.get(merchant)
    if line is None:
        line = PayoutLine(merchant.hex(), _merchant_name(store, merchant))
        payouts[merchant] = line
    return line


def _bank_lines(
    journal: Journal | None, settled_refs: dict[str, int]
) -> tuple[list[BankLine], list[str]]:
    lines, differences = [], []
    for reference, cents in sorted(settled_refs.items()):
        transfer = None if journal is None else journal.transfer_by_reference(reference)
        if transfer is None or transfer.state is not TransferState.CONFIRMED:
            lines.append(BankLine(reference, cents, None, None, ""))
            differences.append(f"{reference}: settled on the ledger, not confirmed by the bank")
            continue
        lines.append(
            BankLine(reference, cents, transfer.amount_cents, transfer.file_id, transfer.booked)
        )
        if transfer.amount_cents != cents:
            differences.append(
                f"{reference}: ledger {to_decimal(cents)} EUR, bank "
                f"{to_decimal(transfer.amount_cents)} EUR"
            )
    return lines, differences


def _return_lines(
    journal: Journal | None, returned_refs: dict[tuple[str, str], int], differences: list[str]
) -> list[ReturnLine]:
    lines = []
    for (reference, reason), cents in sorted(returned_refs.items()):
        transfer = None if journal is None else journal.transfer_by_reference(reference)
        if transfer is None or transfer.state is not TransferState.REJECTED:
            lines.append(ReturnLine(reference, reason, cents, None, None))
            differences.append(f"{reference}: returned on the ledger, not rejected by the bank")
            continue
        lines.append(ReturnLine(reference, reason, cents, transfer.amount_cents, transfer.file_id))
        if transfer.amount_cents != cents:
            differences.append(
                f"{reference}: returned {to_decimal(cents)} EUR on the ledger, the bank "
                f"rejected {to_decimal(transfer.amount_cents)} EUR"
            )
    return lines


# --- renderings -------------------------------------------------------------------------------


CSV_COLUMNS: Final = ("section", "key", "name", "item", "cents", "euros")


def to_csv(s: CommuneStatement) -> bytes:
    out = io.StringIO()
    w = csv_writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)

    def row(section: str, key: str, name: str, item: str, cents: int) -> None:
        w.writerow((section, key, name, item, cents, to_decimal(cents)))

    w.writerow(("statement", s.issuer, s.issuer_name, f"{s.from_ms}-{s.to_ms}", s.height, ""))
    for c in s.campaigns:
        for item in (
            "opening_unspent",
            "deposits",
            "spent",
            "refunds",
            "withdrawals",
            "closing_unspent",
        ):
            row("campaign", c.campaign, c.name, item, getattr(c, f"{item}_cents"))
        for m in c.merchants:
            row("campaign_merchant", f"{c.campaign}/{m.merchant}", m.name, "paid", m.paid_cents)
            row(
                "campaign_merchant",
                f"{c.campaign}/{m.merchant}",
                m.name,
                "refunded",
                m.refunded_cents,
            )
    for g in s.regional:
        key = f"{g.campaign}/{g.merchant}"
        row("regional", key, f"{g.region_name} / {g.name}", "paid", g.paid_cents)
        row("regional", key, f"{g.region_name} / {g.name}", "refunded", g.refunded_cents)
    for p in s.payouts:
        row("payouts", p.merchant, p.name, "opened", p.opened_cents)
        row("payouts", p.merchant, p.name, "settled", p.settled_cents)
        row("payouts", p.merchant, p.name, "returned", p.returned_cents)
    for b in s.bank:
        row(
            "bank",
            b.reference,
            f"file {b.file_id}" if b.file_id else "",
            "settled",
            b.settled_cents,
        )
        if b.bank_cents is not None:
            row("bank", b.reference, b.booked, "bank_confirmed", b.bank_cents)
    for x in s.returns:
        row("returned", x.reference, x.reason, "returned", x.returned_cents)
        if x.bank_cents is not None:
            row("returned", x.reference, f"file {x.file_id}", "bank_rejected", x.bank_cents)
    row("total", "", "", "settled", s.settled_cents)
    row("total", "", "", "returned", s.returned_cents)
    row("total", "", "", "bank_confirmed", s.bank_confirmed_cents)
    w.writerow(("total", "", "", "reconciled", "yes" if s.reconciled else "no", ""))
    return out.getvalue().encode()


def to_pdf(s: CommuneStatement) -> bytes:
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, title=f"Relance statement {s.issuer_name}")
    style = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
            ("ALIGN", (-1, 1), (-1, -1), "RIGHT"),
            ("FONTSIZE", (0, 0), (-1, -1), 8),
        ]
    )
    story: list[object] = [
        Paragraph(f"Statement of {pdf_markup(s.issuer_name)}", styles["Title"]),
        Paragraph(period_text(s), styles["Normal"]),
        Spacer(1, 8),
    ]
    for c in s.campaigns:
        story += _pdf_campaign(c, styles, style)
    if s.regional:
        story += _pdf_regional(s.regional, styles, style)
    story += _pdf_payouts(s.payouts, styles, style)
    story += _pdf_bank(s, styles, style)
    if s.returns:
        story += _pdf_returns(s.returns, styles, style)
    verdict = (
        "Reconciled to the cent." if s.reconciled else "NOT reconciled: " + "; ".join(s.differences)
    )
    story += [Spacer(1, 8), Paragraph(pdf_markup(verdict), styles["Normal"])]
    doc.build(story)  # type: ignore[arg-type]  # platypus flowables
    return buffer.getvalue()


def _pdf_campaign(c: CampaignLine, styles: StyleSheet1, style: TableStyle) -> list[object]:
    heading = f"Campaign {pdf_markup(c.campaign)}: {pdf_markup(c.name)}"
    rows = [["", "EUR"]] + [
        [label, to_decimal(cents)]
        for label, cents in (
            ("Unspent at start", c.opening_unspent_cents),
            ("Deposits", c.deposits_cents),
            ("Spent at merchants", c.spent_cents),
            ("Purchase refunds", c.refunds_cents),
            ("Withdrawals", c.withdrawals_cents),
            ("Unspent at end", c.closing_unspent_cents),
        )
    ]
    part: list[object] = [Paragraph(heading, styles["Heading2"]), Table(rows, style=style)]
    if c.merchants:
        merchant_rows = [["Merchant", "Payments", "Paid EUR", "Refunded EUR"]] + [
            [m.name, str(m.payments), to_decimal(m.paid_cents), to_decimal(m.refunded_cents)]
            for m in c.merchants
        ]
        part += [Spacer(1, 6), Table(merchant_rows, style=style)]
    return part


def _pdf_regional(
    regional: list[RegionalLine], styles: StyleSheet1, style: TableStyle
) -> list[object]:
    heading = "Regional vouchers spent at the commune's shops (paid from the region's escrow)"
    header = ["Region", "Campaign", "Merchant", "Payments", "Paid EUR", "Refunded EUR"]
    rows = [header] + [
        [
            g.region_name,
            g.campaign,
            g.name,
            str(g.payments),
            to_decimal(g.paid_cents),
            to_decimal(g.refunded_cents),
        ]
        for g in regional
    ]
    return [Paragraph(heading, styles["Heading2"]), Table(rows, style=style)]


def _pdf_payouts(payouts: list[PayoutLine], styles: StyleSheet1, style: TableStyle) -> list[object]:
    header = [
        "Merchant",
        "Opened",
        "Opened EUR",
        "Settled",
        "Settled EUR",
        "Returned",
        "Returned EUR",
    ]
    rows = [header] + [
        [
            p.name,
            str(p.opened),
            to_decimal(p.opened_cents),
            str(p.settled),
            to_decimal(p.settled_cents),
            str(p.returned),
            to_decimal(p.returned_cents),
        ]
        for p in payouts
    ]
    heading = Paragraph("Payouts from the escrow account", styles["Heading2"])
    return [heading, Table(rows, style=style)]


def _pdf_bank(s: CommuneStatement, styles: StyleSheet1, style: TableStyle) -> list[object]:
    rows = [["Reference", "File", "Booked", "Ledger EUR", "Bank EUR"]] + [
        [
            b.reference,
            str(b.file_id or "-"),
            b.booked or "-",
            to_decimal(b.settled_cents),
            "-" if b.bank_cents is None else to_decimal(b.bank_cents),
        ]
        for b in s.bank
    ]
    rows.append(["Total", "", "", to_decimal(s.settled_cents), to_decimal(s.bank_confirmed_cents)])
    return [Paragraph("Bank reconciliation", styles["Heading2"]), Table(rows, style=style)]


def _pdf_returns(returns: list[ReturnLine], styles: StyleSheet1, style: TableStyle) -> list[object]:
    rows = [["Reference", "Reason", "File", "Ledger EUR", "Bank EUR"]] + [
        [
            x.reference,
            x.reason,
            str(x.file_id or "-"),
            to_decimal(x.returned_cents),
            "-" if x.bank_cents is None else to_decimal(x.bank_cents),
        ]
        for x in returns
    ]
    heading = Paragraph("Transfers rejected by the bank, returned", styles["Heading2"])
    return [heading, Table(rows, style=style)]
