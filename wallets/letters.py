"""Paper letters: one A4 page per voucher, as one PDF per household or merged.

Each page shows the sender (the commune), the household's name and address
where a window envelope shows it, the amount, the campaign's rules in plain
French, the validity dates, the QR code (drawn as vector squares, 4 modules
of quiet zone, about 4 cm wide), the serial number, and how to check the
balance. The font is embedded in the PDF so that € and accented names print
anywhere: ``RELANCE_LETTER_FONT`` (a TTF path) if set, else DejaVu Sans
(Debian's fonts-dejavu-core, which ``make`` installs: all European Latin
letters), else Bitstream Vera shipped inside reportlab (Latin-1 and €).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from node.api import tokens
from node.text import fmt
from wallets import pdf_fonts
from wallets.book import Entry
from wallets.keystore import make_private_folder, write_atomic
from wallets.units import format_date_fr, format_euros
from wallets.voucher import Voucher, make_qr

FONT: Final = "RelanceSans"
FONT_BOLD: Final = "RelanceSans-Bold"
QR_SIZE_MM: Final = 42.0
BALANCE_QR_MM: Final = 34.0  # a ~150-character link: version 9, 0.55 mm modules
NACE_FR: Final = {division: names[0] for division, names in fmt.NACE.items()}


@dataclass(frozen=True, slots=True)
class CampaignText:
    """What a letter says about the campaign."""

    code: str
    name: str
    issuer_name: str
    zones: tuple[str, ...]
    categories: tuple[str, ...]
    valid_from_ms: int
    valid_until_ms: int  # exclusive
    chain_id: str = ""
    balance_url: str = ""  # a node's public address: the letter links <url>/b/<balance code>


def balance_link(campaign: CampaignText, voucher: Voucher) -> str:
    """The link that opens this voucher's balance page (read-only), or "" when not printed."""
    if not campaign.balance_url or not campaign.chain_id:
        return ""
    code = tokens.make_balance_code(voucher.signer, campaign.chain_id, campaign.valid_until_ms)
    return f"{campaign.balance_url.rstrip('/')}/b/{code}"


def balance_hint(with_link: bool) -> tuple[str, str]:
    """What the letter and the e-mail say about the balance page, in French then English.

    The page (``/b/<code>`` on the commune's node) shows the balance, the purchases and
    the shops that take the voucher, in a phone's browser: nothing to install.
    """
    if not with_link:
        return (
            "Tout commerce participant peut lire votre solde en scannant le code QR.",
            "Any participating shop can read your balance by scanning the QR code.",
        )
    return (
        "Pour voir votre solde, vos achats et les commerces où dépenser ce chèque, scannez "
        "le code « Solde » avec l'appareil photo de votre téléphone ou ouvrez le lien "
        "ci-dessous dans un navigateur (rien à installer). Cette page ne permet pas de payer.",
        "In English: scan the « Solde » code or open the link below to see your balance, "
        "your purchases and where to spend this voucher (nothing to install; it cannot pay).",
    )


def rules_fr(campaign: CampaignText) -> list[str]:
    """The campaign's rules in plain words (French)."""
    last_day = format_date_fr(fmt.last_valid_day(campaign.valid_until_ms))
    where = (
        "dans les commerces participants des quartiers " + ", ".join(campaign.zones)
        if campaign.zones
        else "dans tous les commerces participants de la commune"
    )
    if campaign.categories:
        kinds = sorted({_category_fr(c) for c in campaign.categories})
        what = "Secteurs acceptés : " + "; ".join(kinds) + "."
    else:
        what = "Tous les secteurs sont acceptés."
    return [
        f"Valable du {format_date_fr(fmt.local_day(campaign.valid_from_ms))} au {last_day} inclus.",
        f"À dépenser en une ou plusieurs fois, {where}.",
        what,
        "Le commerçant scanne le code QR et déduit le montant de vos achats ; le solde reste "
        "disponible pour la suite.",
        "Ce chèque n'est pas échangeable contre de l'argent liquide. Après la date de fin, "
        "le solde non utilisé revient à la commune.",
    ]


def _category_fr(code: str) -> str:
    label = NACE_FR.get(code[:2])
    return f"{label} ({code})" if label else f"code NACE {code}"


def font_files() -> tuple[Path, Path]:
    """The regular and bold TTF files letters embed (``RELANCE_LETTER_FONT`` if set)."""
    return pdf_fonts.font_files(os.environ.get("RELANCE_LETTER_FONT"))


def _register_fonts() -> None:
    pdf_fonts.register_fonts(FONT, FONT_BOLD, font_files())


def render(
    entries: list[tuple[Entry, Voucher]],
    campaign: CampaignText,
    progress: Callable[[Entry], None] = lambda entry: None,
) -> bytes:
    """A PDF with one page per voucher."""
    _register_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1, invariant=1)
    canvas.setTitle(f"{campaign.name} — chèques")
    canvas.setAuthor(campaign.issuer_name)
    for entry, voucher in entries:
        _page(canvas, entry, voucher, campaign)
        canvas.showPage()
        progress(entry)
    canvas.save()
    return buffer.getvalue()


def write_letters(
    entries: list[tuple[Entry, Voucher]],
    campaign: CampaignText,
    out: Path,
    merged: bool,
    progress: Callable[[Entry], None] = lambda entry: None,
) -> list[Path]:
    """One PDF per household in folder ``out`` (named by serial), or one merged PDF ``out``."""
    if merged:
        write_atomic(out, render(entries, campaign, progress), 0o600)
        return [out]
    make_private_folder(out)
    paths = []
    for entry, voucher in entries:
        path = out / f"{entry.serial}.pdf"
        write_atomic(path, render([(entry, voucher)], campaign, progress), 0o600)
        paths.append(path)
    return paths


def _page(canvas: Canvas, entry: Entry, voucher: Voucher, campaign: CampaignText) -> None:
    height = A4[1]
    left = 20 * mm
    # Sender, top left.
    canvas.setFont(FONT_BOLD, 12)
    canvas.drawString(left, height - 22 * mm, campaign.issuer_name)
    canvas.setFont(FONT, 9)
    canvas.drawString(left, height - 27 * mm, campaign.name)
    # Recipient, where a DL window envelope (right window) shows it.
    y = height - 52 * mm
    canvas.setFont(FONT, 11)
    for line in (entry.name, *entry.address):
        canvas.drawString(115 * mm, y, line)
        y -= 5.2 * mm
    # Title and amount.
    y = height - 95 * mm
    canvas.setFont(FONT_BOLD, 18)
    canvas.drawString(left, y, "Votre chèque-relance")
    canvas.setFont(FONT_BOLD, 30)
    canvas.drawString(left, y - 14 * mm, format_euros(entry.amount_cents))
    canvas.setFont(FONT, 11)
    y -= 26 * mm
    greeting = f"Bonjour {entry.name}," if entry.name else "Bonjour,"
    canvas.drawString(left, y, greeting)
    y -= 7 * mm
    intro = (
        f"{campaign.issuer_name} vous offre {format_euros(entry.amount_cents)} à dépenser "
        "chez les commerçants de chez vous."
    )
    y = _paragraph(canvas, intro, left, y, 100 * mm, 11)
    for rule in rules_fr(campaign):
        y = _paragraph(canvas, "• " + rule, left, y - 2 * mm, 100 * mm, 10)
    # QR code, right column, with its serial.
    qr_left, qr_top = 130 * mm, height - 115 * mm
    _draw_qr(canvas, voucher.uri(), qr_left, qr_top, QR_SIZE_MM * mm)
    canvas.setFont(FONT_BOLD, 10)
    canvas.drawCentredString(
        qr_left + QR_SIZE_MM * mm / 2, qr_top - QR_SIZE_MM * mm - 6 * mm, f"N° {entry.serial}"
    )
    canvas.setFont(FONT, 8)
    canvas.drawCentredString(
        qr_left + QR_SIZE_MM * mm / 2, qr_top - QR_SIZE_MM * mm - 11 * mm, "à montrer en caisse"
    )
    # Balance and safety, bottom.
    y = min(y, qr_top - QR_SIZE_MM * mm - 20 * mm) - 6 * mm
    _balance_and_safety(canvas, entry, voucher, campaign, y)


def _balance_and_safety(
    canvas: Canvas, entry: Entry, voucher: Voucher, campaign: CampaignText, y: float
) -> None:
    """The bottom of the letter from ``y`` down: how to know the balance, keeping it safe."""
    width, left = A4[0], 20 * mm
    canvas.setFont(FONT_BOLD, 11)
    canvas.drawString(left, y, "Connaître votre solde")
    canvas.setFont(FONT, 10)
    link = balance_link(campaign, voucher)
    hint = " ".join(balance_hint(bool(link)))
    text_width = width - 2 * left - (BALANCE_QR_MM + 6) * mm * bool(link)
    heading_y = y
    y = _paragraph(canvas, hint, left, y - 6 * mm, text_width)
    if link:
        size, top = BALANCE_QR_MM * mm, heading_y + 4 * mm
        _draw_qr_bytes(canvas, link, width - left - size, top, size)
        canvas.setFont(FONT, 7)
        canvas.drawCentredString(width - left - size / 2, top - size - 3 * mm, "Solde")
        y = _paragraph(canvas, link, left, y - 1 * mm, text_width, 6)
        y = min(y, top - size - 4 * mm)
    canvas.setFont(FONT_BOLD, 11)
    canvas.drawString(left, y - 6 * mm, "Gardez cette lettre en lieu sûr")
    canvas.setFont(FONT, 10)
    safety = (
        "Ce code QR vaut de l'argent : toute personne qui le possède peut le dépenser. En cas "
        f"de perte ou de vol, contactez {campaign.issuer_name} avec le numéro de série "
        f"{entry.serial} : le solde restant vous sera rendu sur un nouveau chèque."
    )
    _paragraph(canvas, safety, left, y - 12 * mm, width - 2 * left)
    canvas.setFont(FONT, 7)
    canvas.drawString(left, 12 * mm, f"{campaign.code} · {entry.serial} · {voucher.uri()}")


def _paragraph(
    canvas: Canvas, text: str, x: float, y: float, width: float, size: float = 10
) -> float:
    """Draw ``text`` wrapped to ``width`` from baseline ``y``; the next free baseline."""
    font = FONT
    canvas.setFont(font, size)
    line = ""
    for word in _fitting_pieces(text.split(), font, size, width):
        candidate = f"{line} {word}".strip()
        if pdfmetrics.stringWidth(candidate, font, size) > width and line:
            canvas.drawString(x, y, line)
            y -= size * 1.35
            line = word
        else:
            line = candidate
    if line:
        canvas.drawString(x, y, line)
        y -= size * 1.35
    return y


def _fitting_pieces(words: list[str], font: str, size: float, width: float) -> list[str]:
    """Words, with any word wider than a line (a link) cut into pieces that fit."""
    out = []
    for word in words:
        rest = word
        while pdfmetrics.stringWidth(rest, font, size) > width:
            cut = len(rest) - 1
            while cut > 1 and pdfmetrics.stringWidth(rest[:cut], font, size) > width:
                cut -= 1
            out.append(rest[:cut])
            rest = rest[cut:]
        out.append(rest)
    return out


def _draw_qr(canvas: Canvas, uri: str, x: float, top: float, size: float) -> None:
    _draw_matrix(canvas, make_qr(uri), x, top, size)


def _draw_qr_bytes(canvas: Canvas, text: str, x: float, top: float, size: float) -> None:
    _draw_matrix(canvas, segno.make_qr(text, error="m", boost_error=True), x, top, size)


def _draw_matrix(canvas: Canvas, qr: segno.QRCode, x: float, top: float, size: float) -> None:
    """The symbol as one filled path: a rectangle per horizontal run of dark modules."""
    rows = [list(row) for row in qr.matrix_iter(scale=1, border=4)]
    module = size / len(rows)
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, top - size, size, size, stroke=0, fill=1)
    canvas.setFillColorRGB(0, 0, 0)
    path = canvas.beginPath()
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            path.rect(x + start * module, top - (r + 1) * module, (c - start) * module, module)
    canvas.drawPath(path, stroke=0, fill=1)
