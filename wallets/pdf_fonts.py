"""The font Relance's PDFs embed (voucher letters, the treasurer's audit report), so that
€ and accented names print anywhere: a TTF the caller names, else DejaVu Sans (Debian's
fonts-dejavu-core, which ``make system-tools`` installs: all European Latin letters),
else Bitstream Vera shipped inside reportlab (Latin-1 and €).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import reportlab
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

DEJAVU: Final = Path("/usr/share/fonts/truetype/dejavu")
VERA: Final = Path(reportlab.__file__).parent / "fonts"


def font_files(chosen: str | None = None) -> tuple[Path, Path]:
    """The regular and bold TTF files to embed (``chosen`` for both when given)."""
    if chosen:
        return Path(chosen), Path(chosen)
    regular, bold = DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"
    if regular.is_file() and bold.is_file():
        return regular, bold
    return VERA / "Vera.ttf", VERA / "VeraBd.ttf"


def register_fonts(name: str, bold_name: str, files: tuple[Path, Path]) -> None:
    """Register ``files`` under ``name`` and ``bold_name`` for reportlab, once a process."""
    if name not in pdfmetrics.getRegisteredFontNames():
        regular, bold = files
        pdfmetrics.registerFont(TTFont(name, str(regular)))
        pdfmetrics.registerFont(TTFont(bold_name, str(bold)))
