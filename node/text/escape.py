"""A string someone chose, made safe for the format it lands in: CSV cells and PDF markup.

Every CSV the system writes goes through ``csv_writer`` and every string put
into reportlab markup (a ``Paragraph``) through ``pdf_markup``: names of
merchants, campaigns and communes, memos, references, reasons. The other
formats have their own one place: HTML is autoescaped by Jinja
(``node/api/templates``), XML is written by lxml or sepaxml, and names in
SEPA files are transliterated (``node.settlement.pain001``).

- CSV (OWASP "CSV injection"): a text cell that starts with ``= + - @``, a tab
  or a carriage return is a formula to a spreadsheet (``=cmd|' /C calc'!A0``,
  ``@SUM(...)``); it is prefixed with ``'``, which spreadsheets show as text.
  Numbers stay numbers: an ``int`` is never touched, nor a text cell that is a
  plain decimal number (``-12.50``, an amount), so sums still work.
- PDF: reportlab parses a ``Paragraph``'s text as XML-like markup (``<b>``,
  ``<img src=...>`` that opens a local file, ``<a href>``, entities);
  ``pdf_markup`` escapes ``& < >`` so the text is drawn as typed. Text drawn
  with ``canvas.drawString`` or put in a ``Table`` cell as ``str`` is not
  parsed: it needs no escaping (and must not get any).

Imports nothing of the project.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Final, Protocol
from xml.sax.saxutils import escape

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER: Final = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")


class _Text(Protocol):
    def write(self, text: str, /) -> object: ...


def csv_cell(value: object) -> object:
    """``value`` as a CSV cell no spreadsheet will run (see the module docstring)."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


class CsvWriter:
    """``csv.writer`` whose every row is made of ``csv_cell`` cells."""

    def __init__(self, out: _Text, lineterminator: str) -> None:
        self._writer = csv.writer(out, lineterminator=lineterminator)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([csv_cell(value) for value in row])


def csv_writer(out: _Text, lineterminator: str = "\r\n") -> CsvWriter:
    return CsvWriter(out, lineterminator)


def pdf_markup(text: str) -> str:
    """``text`` for a reportlab ``Paragraph``: drawn as typed, never read as markup."""
    return escape(text)
