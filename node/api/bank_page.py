"""The bank's dashboard (``/ui/bank``), where the bank's login lands, and its CSV export.

What the bank's clerk watches: each commune's escrow and each campaign's money
(the ledger); payouts waiting, in a file, settled and returned with the ISO
20022 reason; the pain.001 files written (or failed, with why) and the bank
statements imported (camt.053, camt.054, the confirmation CSV) with their
outcome (the settlement journal, ``node.settlement.journal``); the
withdrawals of unspent budget (the ledger).

The settlement journal lives only on the bank's node (a home with
``settlement.toml``): ``node.run.daemon`` hands it to the page through
``app[SOURCE].journal``. Elsewhere the page shows the ledger's part and says
where the rest is. Every list is bounded (``node.protocol.limits.UI_BANK_*``); the CSV
(``/ui/bank/payouts.csv``) is written with ``node.text.escape.csv_writer``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from node.api import dashboards, views
from node.api import models as m
from node.api.access import Role, Viewer
from node.api.page_parts import PageParts
from node.ledger import records as r
from node.ledger import tx as t
from node.protocol import limits
from node.settlement.journal import FileRow, ImportRow, Journal, PayoutLine, PayoutState
from node.settlement.money import to_decimal
from node.text import fmt
from node.text.escape import csv_writer


@dataclass
class BankSource:
    """Where the page finds the settlement journal: set on the bank's node only."""

    journal: Journal | None = None


SOURCE: Final = web.AppKey("bank_source", BankSource)
BANK_ONLY: Final = frozenset({Role.BANK})
# The dashboard's groups of journal states, in the order a payout lives them.
GROUPS: Final[tuple[tuple[str, tuple[PayoutState, ...]], ...]] = (
    ("waiting", (PayoutState.SEEN, PayoutState.HELD)),
    ("in_file", (PayoutState.IN_FILE, PayoutState.CONFIRMED, PayoutState.SETTLE_SUBMITTED)),
    ("settled", (PayoutState.SETTLED,)),
    ("returned", (PayoutState.REJECTED, PayoutState.RETURN_SUBMITTED, PayoutState.RETURNED)),
)
GROUP_OF: Final = {state: name for name, states in GROUPS for state in states}
CSV_COLUMNS: Final = (
    "payout_id",
    "state",
    "group",
    "amount_cents",
    "amount_eur",
    "merchant",
    "merchant_name",
    "commune",
    "opened",
    "file_id",
    "end_to_end_id",
    "return_reason",
)

MESSAGES: Final[dict[str, tuple[str, str]]] = {
    "title": ("Tableau de bord de la banque", "Bank dashboard"),
    "escrow": ("Provisions par commune", "Escrow per commune"),
    "escrow_held": ("Provision", "Escrow"),
    "commune": ("Commune", "Commune"),
    "to_pay": ("Versements dus", "Payouts owed"),
    "settled_total": ("Versé", "Paid out"),
    "campaigns": ("Campagnes", "Campaigns"),
    "funded": ("Financé", "Funded"),
    "withdrawn": ("Retiré", "Withdrawn"),
    "budget": ("Non attribué", "Unallocated"),
    "outstanding": ("Chez les bénéficiaires", "With holders"),
    "spent": ("Dépensé", "Spent"),
    "payouts": ("Versements aux commerçants", "Payouts to merchants"),
    "group.waiting": ("En attente", "Waiting"),
    "group.in_file": ("Dans un fichier", "In a file"),
    "group.settled": ("Versés", "Settled"),
    "group.returned": ("Refusés, recrédités", "Returned"),
    "n_payouts": ("versement(s)", "payout(s)"),
    "amount": ("Montant", "Amount"),
    "latest_payouts": ("Derniers versements", "Latest payouts"),
    "merchant": ("Commerçant", "Merchant"),
    "opened": ("Ouvert le", "Opened"),
    "state": ("État", "State"),
    "file": ("Fichier", "File"),
    "reason": ("Motif ISO 20022", "ISO 20022 reason"),
    "files": ("Fichiers pain.001", "pain.001 files"),
    "execution": ("Exécution", "Execution"),
    "transfers": ("Virements", "Transfers"),
    "total": ("Total", "Total"),
    "failure": ("Raison de l'échec", "Why it failed"),
    "file_state.assigned": ("Préparé", "Prepared"),
    "file_state.built": ("Construit", "Built"),
    "file_state.written": ("Écrit", "Written"),
    "file_state.failed": ("Échec", "Failed"),
    "imports": ("Relevés importés", "Statements imported"),
    "statement": ("Relevé", "Statement"),
    "kind": ("Type", "Kind"),
    "imported": ("Importé le", "Imported"),
    "confirmed": ("Confirmés", "Confirmed"),
    "rejected": ("Rejetés", "Rejected"),
    "mismatches": ("Écarts", "Mismatches"),
    "import_ok": ("Conforme", "Matched"),
    "import_bad": ("Écarts, rien appliqué", "Mismatches, nothing applied"),
    "withdrawals": ("Retraits de budget", "Budget withdrawals"),
    "date": ("Date", "Date"),
    "campaign": ("Campagne", "Campaign"),
    "reference": ("Référence", "Reference"),
    "none": ("Rien pour le moment.", "Nothing yet."),
    "export": ("Exporter les versements en CSV", "Export the payouts as CSV"),
    "no_journal": (
        "Ce nœud ne tient pas de journal des versements (service de règlement éteint : "
        "relance-node settlement init). Les fichiers, les relevés et l'état de chaque "
        "versement se voient sur le nœud de la banque qui l'exécute.",
        "This node keeps no payout journal (the settlement service is off: relance-node "
        "settlement init). Files, statements and each payout's state show on the bank's "
        "node that runs it.",
    ),
    "newest": ("les plus récents", "newest"),
    **{
        f"payout_state.{s.value}": pair
        for s, pair in {
            PayoutState.SEEN: ("En attente d'échéance", "Waiting for its day"),
            PayoutState.HELD: ("Bloqué (fichier en échec)", "Held (its file failed)"),
            PayoutState.IN_FILE: ("Dans un fichier", "In a file"),
            PayoutState.CONFIRMED: ("Confirmé par la banque", "Confirmed by the bank"),
            PayoutState.SETTLE_SUBMITTED: ("Versement en cours", "Settling"),
            PayoutState.SETTLED: ("Versé", "Settled"),
            PayoutState.REJECTED: ("Rejeté par la banque", "Rejected by the bank"),
            PayoutState.RETURN_SUBMITTED: ("Recrédit en cours", "Returning"),
            PayoutState.RETURNED: ("Recrédité au commerçant", "Returned to the merchant"),
        }.items()
    },
}


def add_routes(app: web.Application, api: PageParts) -> None:
    app[SOURCE] = BankSource()

    async def page(request: web.Request) -> web.StreamResponse:
        return await dashboards.guard_page(api, request, bank_page, BANK_ONLY)

    async def csv_export(request: web.Request) -> web.StreamResponse:
        return await dashboards.guard_page(api, request, bank_csv, BANK_ONLY)

    app.router.add_get("/ui/bank", page)
    app.router.add_get("/ui/bank/payouts.csv", csv_export)


# --- what the page shows ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommuneEscrow:
    name: str
    issuer: r.Issuer
    campaigns: list[tuple[str, r.Campaign]]


@dataclass(frozen=True, slots=True)
class GroupTotal:
    name: str
    count: int
    cents: int


@dataclass(frozen=True, slots=True)
class ImportLine:
    row: ImportRow
    confirmed: int
    rejected: int
    mismatches: int


def escrow_by_commune(api: PageParts) -> list[CommuneEscrow]:
    """Every commune with its campaigns, by name (ledger records only)."""
    store = api.ledger.store
    campaigns: dict[bytes, list[tuple[str, r.Campaign]]] = {}
    prefix = r.campaign_key("")
    for key, raw in store.iter_prefix(prefix):
        campaign = r.Campaign.decode(raw)
        campaigns.setdefault(bytes(campaign.issuer), []).append(
            (key[len(prefix) :].decode(), campaign)
        )
    out = []
    for key, raw in dashboards.issuers(api):
        issuer = r.Issuer.decode(raw)
        out.append(CommuneEscrow(issuer.name, issuer, sorted(campaigns.get(key, []))))
    return sorted(out, key=lambda c: c.name)


def group_totals(journal: Journal) -> list[GroupTotal]:
    counts = journal.counts()
    return [
        GroupTotal(
            name,
            sum(counts[f"{s.value}_count"] for s in states),
            sum(counts[f"{s.value}_cents"] for s in states),
        )
        for name, states in GROUPS
    ]


def import_lines(rows: list[ImportRow]) -> list[ImportLine]:
    out = []
    for row in rows:
        try:
            report = json.loads(row.report)
        except ValueError:
            report = {}
        if not isinstance(report, dict):
            report = {}

        def count(field: str, report: dict[str, object] = report) -> int:
            value = report.get(field)
            return len(value) if isinstance(value, list) else 0

        out.append(ImportLine(row, count("confirmed"), count("rejected"), count("mismatches")))
    return out


def withdrawals(api: PageParts, viewer: Viewer) -> list[m.Transaction]:
    page = api.reads.history(
        viewer,
        viewer.key,
        frozenset({t.Kind.WITHDRAW}),
        None,
        None,
        limits.UI_BANK_WITHDRAWALS_SHOWN,
    )
    return page.items


def _names(api: PageParts, keys: set[bytes]) -> dict[bytes, str]:
    store = api.ledger.store
    return {k: views.party_name(store, k) or fmt.short_key(k.hex()) for k in keys}


async def bank_page(
    api: PageParts, request: web.Request, viewer: Viewer, lang: fmt.Lang
) -> web.StreamResponse:
    journal = request.app[SOURCE].journal
    totals: list[GroupTotal] = []
    payouts: list[PayoutLine] = []
    files: list[FileRow] = []
    imports: list[ImportLine] = []
    if journal is not None:
        totals = group_totals(journal)
        payouts = journal.payout_lines(tuple(PayoutState), limits.UI_BANK_ROWS_SHOWN)
        files = journal.recent_files(limits.UI_BANK_ROWS_SHOWN)
        imports = import_lines(journal.imports(limits.UI_BANK_ROWS_SHOWN))
    names = _names(
        api, {p.merchant for p in payouts} | {p.issuer for p in payouts} | {f.issuer for f in files}
    )

    def b(key: str) -> str:
        return fmt.translate(lang, key, MESSAGES)

    return dashboards.render(
        request,
        lang,
        "bank.html",
        viewer=viewer,
        b=b,
        communes=escrow_by_commune(api),
        has_journal=journal is not None,
        totals=totals,
        payouts=payouts,
        files=files,
        imports=imports,
        withdrawals=withdrawals(api, viewer),
        names=names,
        group_of=GROUP_OF,
        height=api.ledger.last_block().height,
    )


async def bank_csv(
    api: PageParts, request: web.Request, viewer: Viewer, lang: fmt.Lang
) -> web.StreamResponse:
    """Every payout of the journal (newest first, bounded), one row each."""
    journal = request.app[SOURCE].journal
    lines = (
        []
        if journal is None
        else journal.payout_lines(tuple(PayoutState), limits.HTTP_CSV_ROWS_MAX)
    )
    names = _names(api, {p.merchant for p in lines} | {p.issuer for p in lines})
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in lines:
        writer.writerow(
            [
                p.payout_id.hex(),
                p.state.value,
                GROUP_OF[p.state],
                p.amount_cents,
                to_decimal(p.amount_cents),
                p.merchant.hex(),
                names[p.merchant],
                names[p.issuer],
                fmt.iso(p.created_ms),
                "" if p.file_id is None else p.file_id,
                p.end_to_end_id,
                p.reason,
            ]
        )
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="relance-payouts.csv"'},
    )
