"""The treasurer's audit report as a PDF: the same figures and reconciliation
checks as the Markdown and HTML reports (``tools.audit.report``), laid out on A4.

The font is embedded so that € and accented commune names print anywhere:
DejaVu Sans (Debian's fonts-dejavu-core, which ``make system-tools``
installs), else Bitstream Vera shipped inside reportlab (Latin-1 and €).
Presentation only: no check of the chain happens here.
"""

from __future__ import annotations

import io
from typing import Final

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from node.text.escape import pdf_markup
from tools.audit.chain import AuditResult
from tools.audit.report import (
    CAMPAIGN_COLUMNS,
    CHECKS_DONE,
    ISSUER_COLUMNS,
    Check,
    campaign_figures,
    issuer_figures,
    money,
    reconcile,
    summary_lines,
    verdict,
    wanted,
)
from wallets import pdf_fonts

FONT: Final = "RelanceAuditSans"
FONT_BOLD: Final = "RelanceAuditSans-Bold"
_GREEN: Final = colors.HexColor("#007755")
_RED: Final = colors.HexColor("#bb0000")


def _register_fonts() -> None:
    pdf_fonts.register_fonts(FONT, FONT_BOLD, pdf_fonts.font_files())


def _styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12)
    return {
        "title": ParagraphStyle("title", fontName=FONT_BOLD, fontSize=16, leading=20),
        "h2": ParagraphStyle("h2", fontName=FONT_BOLD, fontSize=12, leading=16, spaceBefore=8),
        "h3": ParagraphStyle("h3", fontName=FONT_BOLD, fontSize=10, leading=13, spaceBefore=6),
        "body": body,
        "pre": ParagraphStyle("pre", parent=body, fontSize=8, leading=10),
    }


def _table(rows: list[list[str]], first_col_mm: float) -> Table:
    table = Table(rows, colWidths=(first_col_mm * mm, 40 * mm), hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    return table


def render_pdf(result: AuditResult, issuer: str | None = None) -> bytes:
    """The report as PDF bytes; ``issuer`` keeps one commune's rows and checks."""
    _register_fonts()
    s = _styles()
    checks = reconcile(result.books)
    ok = result.ok and all(c.ok for c in checks)
    story: list[Flowable] = [
        Paragraph("Relance audit report", s["title"]),
        Spacer(1, 3 * mm),
        Paragraph(
            f'<font color="#{(_GREEN if ok else _RED).hexval()[2:]}">'
            f"<b>{pdf_markup(verdict(result, checks))}</b></font>",
            ParagraphStyle("verdict", parent=s["body"], fontName=FONT_BOLD, fontSize=12),
        ),
        Spacer(1, 2 * mm),
    ]
    story += [
        Paragraph("• " + pdf_markup(line.replace("`", "")), s["body"])
        for line in summary_lines(result)
    ]
    if result.divergence is not None:
        story.append(Paragraph("First divergence", s["h2"]))
        text = pdf_markup(result.divergence.describe()).replace("\n", "<br/>")
        story.append(Paragraph(text, s["pre"]))
        story.append(
            Paragraph(f"Figures below are as of height {result.heights_checked}.", s["body"])
        )
    story.append(Paragraph("What was checked", s["h2"]))
    story += [
        Paragraph(f"• <b>{pdf_markup(name)}</b>: {pdf_markup(what)}", s["body"])
        for name, what in CHECKS_DONE
    ]
    story += _figures(result, checks, issuer, s)
    return _build(story)


def _figures(
    result: AuditResult, checks: list[Check], issuer: str | None, s: dict[str, ParagraphStyle]
) -> list[Flowable]:
    """The campaigns', the communes' figures and the reconciliation, for ``issuer`` if given."""
    story: list[Flowable] = []
    story.append(Paragraph("Campaigns", s["h2"]))
    story.append(
        Paragraph(
            "Amounts in euros (€); “Redeemed” and “Settled” count the payments paid out "
            "directly (auto-redeem); the commune-wide totals are below.",
            s["body"],
        )
    )
    campaigns = [c for c in campaign_figures(result.books) if wanted(c.issuer, issuer)]
    for c in campaigns:
        heading = Paragraph(pdf_markup(f"{c.code} ({c.name}) — {c.issuer}"), s["h3"])
        rows = [[t, money(getattr(c, f))] for f, t in CAMPAIGN_COLUMNS]
        story.append(KeepTogether([heading, _table(rows, 45)]))
    story.append(Paragraph("Communes", s["h2"]))
    for i in issuer_figures(result.books):
        if wanted(i.name, issuer):
            rows = [[t, money(getattr(i, f))] for f, t in ISSUER_COLUMNS]
            story.append(KeepTogether([Paragraph(pdf_markup(i.name), s["h3"]), _table(rows, 45)]))
    story.append(Paragraph("Reconciliation (to the cent)", s["h2"]))
    for check in checks:
        if wanted(check.name, issuer, campaigns):
            mark, color = ("OK", _GREEN) if check.ok else ("MISMATCH", _RED)  # Vera has no ✔
            story.append(
                Paragraph(
                    f'<font color="#{color.hexval()[2:]}"><b>{mark}</b></font> '
                    f"<b>{pdf_markup(check.name)}</b> — {pdf_markup(check.detail)}",
                    s["body"],
                )
            )
    return story


def _build(story: list[Flowable]) -> bytes:
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        title="Relance audit report",
        author="relance-audit",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        invariant=True,  # the same audit gives the same bytes
    )
    document.build(story)
    return out.getvalue()
