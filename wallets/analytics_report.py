"""``relance-wallet issuer analytics``: a commune's analytics as a PDF (reportlab).

Reads ``/v1/analytics/report`` with a short-lived token of the commune's key
(the node has already hidden every cell under k distinct holders: the PDF
shows exactly what the dashboard shows) and draws the day x hour heatmap,
the zone-to-zone flows, the local multiplier and the campaigns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import click
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from wallets.context import authenticate, common_options, emit, key_option, settings, unlock
from wallets.units import format_euros

Json = dict[str, object]
DAYS_FR: Final = ("lun", "mar", "mer", "jeu", "ven", "sam", "dim")


def _cell_text(cell: object) -> str:
    value = cell.get("value") if isinstance(cell, dict) else None
    return "—" if not isinstance(value, int) else format_euros(value)


def _rows(table: Json, key: str) -> list[object]:
    value = table.get(key)
    return value if isinstance(value, list) else []


def write_pdf(report: Json, path: Path, title: str) -> None:
    """Draw ``report`` (the JSON of ``/v1/analytics/report``) into a one-page A4 PDF."""
    canvas = Canvas(str(path), pagesize=A4)
    height = A4[1]
    y = height - 20 * mm
    canvas.setFont("Helvetica-Bold", 15)
    canvas.drawString(15 * mm, y, title)
    canvas.setFont("Helvetica", 9)
    y -= 6 * mm
    canvas.drawString(
        15 * mm,
        y,
        f"k = {report.get('k')} · hauteur {report.get('height')} · "
        "cases de moins de k bénéficiaires masquées (—)",
    )
    y = _heatmap(canvas, report.get("hours"), y - 10 * mm)
    y = _flows(canvas, report.get("flows"), y - 8 * mm)
    y = _multiplier(canvas, report.get("multiplier"), y - 8 * mm)
    _campaigns(canvas, report.get("campaigns"), y - 8 * mm)
    canvas.showPage()
    canvas.save()


def _heatmap(canvas: Canvas, hours: object, y: float) -> float:
    if not isinstance(hours, dict):
        return y
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(15 * mm, y, "Dépenses par jour et par heure (heure de Bruxelles)")
    cells = _rows(hours, "cells")
    top = (
        max(
            (
                c.get("value") or 0
                for row in cells
                if isinstance(row, list)
                for c in row
                if isinstance(c, dict)
            ),
            default=0,
        )
        or 1
    )
    size = 6.5 * mm
    canvas.setFont("Helvetica", 7)
    for i, row in enumerate(cells):
        row_y = y - 6 * mm - i * size
        canvas.drawString(15 * mm, row_y + 2 * mm, DAYS_FR[i])
        for j, cell in enumerate(row if isinstance(row, list) else []):
            value = cell.get("value") if isinstance(cell, dict) else None
            if isinstance(value, int):
                share = value / top
                canvas.setFillColor(
                    colors.Color(1 - 0.9 * share, 1 - 0.7 * share, 1 - 0.15 * share)
                )
            else:
                canvas.setFillColor(colors.lightgrey)
            canvas.rect(25 * mm + j * size, row_y, size - 0.5, size - 0.5, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
    for j in range(0, 24, 3):
        canvas.drawString(25 * mm + j * size, y - 8 * mm - 7 * size, f"{j:02d}h")
    return y - 12 * mm - 7 * size


def _flows(canvas: Canvas, flows: object, y: float) -> float:
    if not isinstance(flows, dict):
        return y
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(15 * mm, y, "Des quartiers des bénéficiaires aux quartiers des commerces")
    canvas.setFont("Helvetica", 8)
    columns = [str(c) for c in _rows(flows, "columns")]
    y -= 6 * mm
    for j, column in enumerate([*columns, "Total"]):
        canvas.drawRightString(70 * mm + j * 28 * mm, y, column)
    totals = _rows(flows, "row_totals")
    for i, (row, cells) in enumerate(zip(_rows(flows, "rows"), _rows(flows, "cells"), strict=True)):
        y -= 5 * mm
        canvas.drawString(15 * mm, y, str(row))
        items = [*(cells if isinstance(cells, list) else []), totals[i] if i < len(totals) else {}]
        for j, cell in enumerate(items):
            canvas.drawRightString(70 * mm + j * 28 * mm, y, _cell_text(cell))
    return y


def _multiplier(canvas: Canvas, mult: object, y: float) -> float:
    if not isinstance(mult, dict):
        return y
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(15 * mm, y, "Multiplicateur local (LM3)")
    canvas.setFont("Helvetica", 9)
    if mult.get("suppressed"):
        canvas.drawString(15 * mm, y - 5 * mm, "masqué (moins de k bénéficiaires)")
        return y - 5 * mm
    lm3 = mult.get("lm3_milli")
    text = "—" if not isinstance(lm3, int) else f"{lm3 // 1000},{lm3 % 1000:03d}"
    canvas.drawString(15 * mm, y - 5 * mm, f"LM3 : {text}")
    for n in (1, 2, 3):
        milli = mult.get(f"round{n}_per_euro_milli")
        share = milli if isinstance(milli, int) else 0
        row_y = y - 5 * mm - n * 6 * mm
        canvas.drawString(15 * mm, row_y, f"Tour {n}")
        canvas.setFillColor(colors.HexColor("#1d4ed8"))
        canvas.rect(32 * mm, row_y - 1 * mm, share * 0.12 * mm, 4 * mm, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
        canvas.drawString(
            35 * mm + share * 0.12 * mm, row_y, f"{share / 10:.1f} c par euro attribué"
        )
    return y - 25 * mm


def _campaigns(canvas: Canvas, campaigns: object, y: float) -> None:
    items = _rows(campaigns, "items") if isinstance(campaigns, dict) else []
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(15 * mm, y, "Campagnes")
    canvas.setFont("Helvetica", 8)
    for item in items:
        if not isinstance(item, dict):
            continue
        y -= 5 * mm
        if item.get("suppressed"):
            canvas.drawString(15 * mm, y, f"{item.get('name')} : masquée")
            continue
        spent, unspent = item.get("spent_cents"), item.get("unspent_cents")
        never = item.get("never_used_holders")
        canvas.drawString(
            15 * mm,
            y,
            f"{item.get('name')} : {item.get('holders')} bénéficiaires, dépensé "
            f"{format_euros(spent if isinstance(spent, int) else 0)}, non dépensé "
            f"{format_euros(unspent if isinstance(unspent, int) else 0)}, jamais utilisés "
            f"{'—' if never is None else never}",
        )


@click.command(
    "analytics",
    help="The commune's analytics (privacy-protected) as a PDF.",
    epilog="""\b
Examples:
  relance-wallet issuer analytics --key namur --out analytics.pdf
  relance-wallet --json issuer analytics --key namur --k 10""",
)
@key_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default="analytics.pdf",
    show_default=True,
    help="Where to write the PDF.",
)
@click.option("--k", type=int, default=None, help="A stricter k than the commune's setting.")
@common_options
def analytics_command(key_name: str, out: Path, k: int | None) -> None:
    signer = unlock(key_name)
    client = settings().client()
    authenticate(client, signer)
    report = client.get("/v1/analytics/report" + ("" if k is None else f"?k={k}"))
    write_pdf(report, out, "Analyse des flux commerciaux")
    emit(
        {"pdf": str(out), "k": report.get("k"), "height": report.get("height")},
        f"PDF written to {out}",
    )
