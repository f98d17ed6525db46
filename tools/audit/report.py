"""Audit reports: one JSON object for machines, Markdown or HTML for a commune's treasurer
(the PDF, from the same figures and checks, is drawn by ``tools.audit.pdf``).

The figures come from the re-executed state (campaign and issuer records) and
from the auditor's own tallies of the transaction history; ``reconcile``
states, to the cent, the identities between them, each as a check that
passes or fails. Presentation only: no check of the chain happens here.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass

from tools.audit.books import Books, CampaignTally, IssuerTally
from tools.audit.chain import AuditResult

CHECKS_DONE = (
    ("header chain", "heights, previous block hashes, strictly increasing times, validator hashes"),
    ("commit certificates", "every precommit signature; more than 2/3 of the voting power"),
    ("transaction roots", "every block's transactions against its certified root"),
    ("signatures", "every transaction's Ed25519 signature, on every core"),
    ("sequences", "each sender's sequence counts up by one (and re-execution agrees)"),
    ("re-execution", "every transaction applies; every state root is reproduced"),
    (
        "campaign rules",
        "re-execution checks every payment; the window and eligibility "
        "are also checked independently",
    ),
    (
        "payouts",
        "opened once, never changed, then settled with the bank reference of the "
        "settling transaction or returned to the merchant with the bank's reason, "
        "at most once",
    ),
    (
        "conservation",
        "escrow = budgets + holder balances + merchant balances + pending "
        "payouts, for every issuer after every block",
    ),
    ("evidence", "no evidence transaction exists in the protocol yet: nothing to check"),
)


@dataclass(frozen=True, slots=True)
class CampaignFigures:
    code: str
    name: str
    issuer: str
    closed: bool
    funded: int
    allocated: int
    spent: int
    refunded: int
    returned: int
    redeemed_direct: int
    settled_direct: int
    withdrawn: int
    unallocated: int
    held_by_holders: int
    unspent: int


@dataclass(frozen=True, slots=True)
class IssuerFigures:
    name: str
    public_key: str
    funded: int
    withdrawn: int
    redeemed: int
    settled: int
    returned: int
    pending: int
    merchant_balances: int
    escrow: int


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def campaign_figures(books: Books) -> list[CampaignFigures]:
    out = []
    for code in sorted(books.campaigns):
        c = books.campaigns[code]
        tally = books.campaign_tallies.get(code, CampaignTally(c.issuer))
        issuer = books.issuers.get(c.issuer)
        out.append(
            CampaignFigures(
                code=code,
                name=c.name,
                issuer=issuer.name if issuer else c.issuer.hex(),
                closed=c.closed,
                funded=c.funded_cents,
                allocated=c.allocated_cents,
                spent=c.spent_cents,
                refunded=c.refunded_cents,
                returned=c.returned_cents,
                redeemed_direct=tally.redeemed_direct,
                settled_direct=tally.settled_direct,
                withdrawn=c.withdrawn_cents,
                unallocated=c.budget_cents,
                held_by_holders=c.outstanding_cents,
                unspent=c.budget_cents + c.outstanding_cents,
            )
        )
    return out


def issuer_figures(books: Books) -> list[IssuerFigures]:
    out = []
    for pk, issuer in sorted(books.issuers.items(), key=lambda kv: kv[1].name):
        mine = [c for c in books.campaigns.values() if c.issuer == pk]
        out.append(
            IssuerFigures(
                name=issuer.name,
                public_key=pk.hex(),
                funded=sum(c.funded_cents for c in mine),
                withdrawn=sum(c.withdrawn_cents for c in mine),
                redeemed=issuer.redeemed_cents,
                settled=issuer.settled_cents,
                returned=books.issuer_tallies.get(pk, IssuerTally()).returned,
                pending=issuer.pending_cents,
                merchant_balances=books.merchant_units[pk],
                escrow=issuer.escrow_cents,
            )
        )
    return out


def reconcile(books: Books) -> list[Check]:
    """Every identity the figures must satisfy, to the cent."""
    checks: list[Check] = []

    def check(name: str, left: int, right: int, formula: str) -> None:
        ok = left == right
        detail = f"{formula}: {money(left)} {'=' if ok else '≠'} {money(right)}"
        checks.append(Check(name, ok, detail))

    for f in campaign_figures(books):
        tally = books.campaign_tallies.get(f.code, CampaignTally(b""))
        label = f"campaign {f.code}"
        check(
            f"{label} balance",
            f.funded,
            f.unspent + f.spent - f.refunded + f.withdrawn,
            "funded = unspent + spent - refunded + withdrawn",
        )
        for what in ("funded", "allocated", "spent", "refunded", "withdrawn"):
            check(
                f"{label} {what}",
                getattr(tally, what),
                getattr(f, what),
                f"{what}: sum of the history's transactions = campaign record",
            )
    for pk, issuer in books.issuers.items():
        label = f"issuer {issuer.name}"
        mine = [(code, c) for code, c in books.campaigns.items() if c.issuer == pk]
        funded = sum(c.funded_cents for _, c in mine)
        withdrawn = sum(c.withdrawn_cents for _, c in mine)
        net_spent = sum(c.spent_cents - c.refunded_cents for _, c in mine)
        held = sum(c.outstanding_cents for _, c in mine)
        budgets = sum(c.budget_cents for _, c in mine)
        issuer_tally = books.issuer_tallies.get(pk, IssuerTally())
        units = books.merchant_units[pk]
        check(
            f"{label} escrow",
            issuer.escrow_cents,
            funded - withdrawn - issuer.settled_cents,
            "escrow = funded - withdrawn - settled",
        )
        check(
            f"{label} backing",
            issuer.escrow_cents,
            budgets + held + units + issuer.pending_cents,
            "escrow = unallocated budgets + holder balances + merchant balances + pending payouts",
        )
        check(
            f"{label} spending",
            net_spent,
            units + issuer.redeemed_cents,
            "spent - refunded = merchant balances + redeemed",
        )
        check(
            f"{label} payouts",
            issuer.redeemed_cents,
            issuer.pending_cents + issuer.settled_cents,
            "redeemed = pending + settled",
        )
        check(
            f"{label} redeemed",
            issuer_tally.redeemed,
            issuer.redeemed_cents,
            "payouts opened minus returned in the history = issuer record",
        )
        check(
            f"{label} settled",
            issuer_tally.settled,
            issuer.settled_cents,
            "payouts settled in the history = issuer record",
        )
    return checks


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(cents), 100)
    return f"{sign}EUR {euros:,}.{rest:02d}"


# --- JSON -------------------------------------------------------------------------------


def to_json(result: AuditResult) -> dict[str, object]:
    checks = reconcile(result.books)
    return {
        "ok": result.ok and all(c.ok for c in checks),
        "chain_id": result.chain_id,
        "genesis_hash": result.genesis_hash,
        "top_height": result.top_height,
        "heights_checked": result.heights_checked,
        "transactions": result.transactions,
        "signatures_verified": result.signatures_verified,
        "certificates": result.certificates,
        "payments_rule_checked": result.payments_rule_checked,
        "payments_rule_by_execution_only": result.payments_rule_by_execution_only,
        "payouts_opened": result.books.payouts_opened,
        "payouts_settled": result.books.payouts_settled,
        "payouts_returned": result.books.payouts_returned,
        "evidence": result.evidence,
        "stored_state_checked": result.stored_state_checked,
        "last_block_hash": result.last_block_hash,
        "state_root": result.state_root,
        "seconds": round(result.seconds, 3),
        "tx_per_s": round(result.transactions / result.seconds, 1) if result.seconds else 0.0,
        "kinds": result.kinds,
        "divergence": None if result.divergence is None else asdict(result.divergence),
        "checks": [{"name": n, "what": w} for n, w in CHECKS_DONE],
        "campaigns": [asdict(c) for c in campaign_figures(result.books)],
        "issuers": [asdict(i) for i in issuer_figures(result.books)],
        "reconciliation": [asdict(c) for c in checks],
    }


# --- for people ----------------------------------------------------------------------

CAMPAIGN_COLUMNS = (
    ("funded", "Funded"),
    ("allocated", "Allocated"),
    ("spent", "Spent"),
    ("refunded", "Refunded"),
    ("redeemed_direct", "Redeemed"),
    ("settled_direct", "Settled"),
    ("withdrawn", "Withdrawn"),
    ("returned", "Returned at close"),
    ("unallocated", "Unallocated"),
    ("held_by_holders", "Held by citizens"),
    ("unspent", "Unspent"),
)
ISSUER_COLUMNS = (
    ("funded", "Funded"),
    ("withdrawn", "Withdrawn"),
    ("redeemed", "Redeemed"),
    ("settled", "Settled"),
    ("returned", "Returned by the bank"),
    ("pending", "Pending payouts"),
    ("merchant_balances", "Merchant balances"),
    ("escrow", "Escrow at the bank"),
)


def verdict(result: AuditResult, checks: list[Check]) -> str:
    if result.divergence is not None:
        return "FAILED: the history does not verify"
    if not all(c.ok for c in checks):
        return "FAILED: the figures do not reconcile"
    return "PASSED: every check holds"


def summary_lines(result: AuditResult) -> list[str]:
    return [
        f"Chain `{result.chain_id}`, genesis hash `{result.genesis_hash[:16]}…`",
        f"Heights checked: {result.heights_checked} of {result.top_height}; "
        f"transactions: {result.transactions}; signatures verified: "
        f"{result.signatures_verified}; time: {result.seconds:.2f} s",
        f"Last block hash `{result.last_block_hash[:16]}…`, state root `{result.state_root[:16]}…`",
    ]


def render_markdown(result: AuditResult, issuer: str | None = None) -> str:
    checks = reconcile(result.books)
    lines = ["# Relance audit report", "", f"**{verdict(result, checks)}**", ""]
    lines += [f"- {line}" for line in summary_lines(result)]
    if result.divergence is not None:
        lines += ["", "## First divergence", "", "```", result.divergence.describe(), "```"]
        lines += ["", f"Figures below are as of height {result.heights_checked}."]
    lines += ["", "## What was checked", ""]
    lines += [f"- **{name}**: {what}" for name, what in CHECKS_DONE]
    lines += [
        "",
        "## Campaigns",
        "",
        "Amounts in euros; “Redeemed” and “Settled” count the "
        "payments paid out directly (auto-redeem); the commune-wide totals are below.",
        "",
    ]
    campaigns = [c for c in campaign_figures(result.books) if wanted(c.issuer, issuer)]
    lines.append("| Campaign | Commune | " + " | ".join(t for _, t in CAMPAIGN_COLUMNS) + " |")
    lines.append("|---|---|" + "---:|" * len(CAMPAIGN_COLUMNS))
    for c in campaigns:
        cells = " | ".join(money(getattr(c, f)) for f, _ in CAMPAIGN_COLUMNS)
        lines.append(f"| {_md(c.code)} ({_md(c.name)}) | {_md(c.issuer)} | {cells} |")
    lines += ["", "## Communes", ""]
    lines.append("| Commune | " + " | ".join(t for _, t in ISSUER_COLUMNS) + " |")
    lines.append("|---|" + "---:|" * len(ISSUER_COLUMNS))
    for i in issuer_figures(result.books):
        if wanted(i.name, issuer):
            row = " | ".join(money(getattr(i, f)) for f, _ in ISSUER_COLUMNS)
            lines.append(f"| {_md(i.name)} | {row} |")
    lines += ["", "## Reconciliation (to the cent)", ""]
    for check in checks:
        if wanted(check.name, issuer, campaigns):
            mark = "✅" if check.ok else "❌"
            lines.append(f"- {mark} **{_md(check.name)}** — {_md(check.detail)}")
    return "\n".join(lines) + "\n"


def render_html(result: AuditResult, issuer: str | None = None) -> str:
    checks = reconcile(result.books)
    e = html.escape
    ok = result.ok and all(c.ok for c in checks)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Relance audit report</title>',
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:.3em .6em}td.n{text-align:right}"
        ".ok{color:#075}.bad{color:#b00}code{font-size:90%}</style></head><body>",
        "<h1>Relance audit report</h1>",
        f'<p class="{"ok" if ok else "bad"}"><strong>{e(verdict(result, checks))}</strong></p>',
        "<ul>" + "".join(f"<li>{e(line)}</li>" for line in summary_lines(result)) + "</ul>",
    ]
    if result.divergence is not None:
        parts += ["<h2>First divergence</h2>", f"<pre>{e(result.divergence.describe())}</pre>"]
    parts += ["<h2>What was checked</h2><ul>"]
    parts += [f"<li><strong>{e(n)}</strong>: {e(w)}</li>" for n, w in CHECKS_DONE]
    parts += ["</ul><h2>Campaigns</h2><table><tr><th>Campaign</th><th>Commune</th>"]
    parts += [f"<th>{e(t)}</th>" for _, t in CAMPAIGN_COLUMNS]
    parts.append("</tr>")
    campaigns = [c for c in campaign_figures(result.books) if wanted(c.issuer, issuer)]
    for campaign in campaigns:
        cells = _html_cells(campaign, CAMPAIGN_COLUMNS)
        name = f"{e(campaign.code)} ({e(campaign.name)})"
        parts.append(f"<tr><td>{name}</td><td>{e(campaign.issuer)}</td>{cells}</tr>")
    parts += ["</table><h2>Communes</h2><table><tr><th>Commune</th>"]
    parts += [f"<th>{e(t)}</th>" for _, t in ISSUER_COLUMNS]
    parts.append("</tr>")
    for i in issuer_figures(result.books):
        if wanted(i.name, issuer):
            cells = _html_cells(i, ISSUER_COLUMNS)
            parts.append(f"<tr><td>{e(i.name)}</td>{cells}</tr>")
    parts += ["</table><h2>Reconciliation (to the cent)</h2><ul>"]
    for check in checks:
        if wanted(check.name, issuer, campaigns):
            mark = '<span class="ok">✔</span>' if check.ok else '<span class="bad">✘</span>'
            parts.append(f"<li>{mark} <strong>{e(check.name)}</strong> — {e(check.detail)}</li>")
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"


def _html_cells(row: object, columns: tuple[tuple[str, str], ...]) -> str:
    return "".join(f'<td class="n">{html.escape(money(getattr(row, f)))}</td>' for f, _ in columns)


def wanted(name: str, issuer: str | None, campaigns: list[CampaignFigures] | None = None) -> bool:
    """With ``issuer``, keep that commune's rows (and its campaigns' checks) only."""
    if issuer is None:
        return True
    if issuer in name:
        return True
    return campaigns is not None and any(name.startswith(f"campaign {c.code} ") for c in campaigns)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
