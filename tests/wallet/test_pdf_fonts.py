"""One font choice for every embedded-font PDF (voucher letters and the audit report)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.audit import pdf as audit_pdf
from wallets import letters, pdf_fonts


def test_a_chosen_font_serves_both_weights() -> None:
    assert pdf_fonts.font_files("/fonts/Own.ttf") == (Path("/fonts/Own.ttf"),) * 2


def test_without_dejavu_the_font_shipped_in_reportlab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf_fonts, "DEJAVU", tmp_path)  # no DejaVu there
    regular, bold = pdf_fonts.font_files()
    assert (regular.name, bold.name) == ("Vera.ttf", "VeraBd.ttf")
    assert regular.is_file() and bold.is_file()


def test_letters_and_the_audit_report_embed_the_same_font(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RELANCE_LETTER_FONT", raising=False)
    chosen: list[tuple[str, tuple[Path, Path]]] = []
    monkeypatch.setattr(pdf_fonts, "register_fonts", lambda n, _b, f: chosen.append((n, f)))
    letters._register_fonts()
    audit_pdf._register_fonts()
    assert [name for name, _ in chosen] == [letters.FONT, audit_pdf.FONT]
    assert chosen[0][1] == chosen[1][1] == pdf_fonts.font_files()
