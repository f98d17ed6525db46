"""Issue 15, finding 8: names go into PDFs as text, never as reportlab markup.

Every PDF the system renders (the commune statement, the paper letters, the
analytics report, the audit report) is drawn with hostile names: ``<b>`` left
open (which made the statement fail), ``<img src=...>`` naming a local file
(which made the node open it), entities and fonts. The text must come out as
typed (pdftotext) and no file may be opened while rendering.
"""

from __future__ import annotations

import builtins
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate

from node.ledger import records as r
from node.protocol.crypto import PublicKey
from node.settlement import statement as st
from node.text.escape import pdf_markup
from tests.wallet.support import pdf_text
from tools.audit.books import Books
from tools.audit.chain import AuditResult
from tools.audit.pdf import render_pdf
from wallets.analytics_report import write_pdf
from wallets.book import Entry
from wallets.letters import CampaignText, write_letters
from wallets.voucher import new_voucher

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A local file that hostile markup names: no renderer may open it."""
    path = tmp_path / "secret.png"
    path.write_bytes(b"not for the PDF")
    return path


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every path opened with ``open`` while the test runs."""
    paths: list[str] = []
    real: Callable[..., object] = builtins.open

    def spy(file: object, *args: object, **kwargs: object) -> object:
        paths.append(str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    yield paths


def hostile(secret: Path) -> dict[str, str]:
    """Names as hostile people would choose them; each must print as typed."""
    return {
        "open": "Chez <b>Marcel",
        "image": f'<img src="{secret}"/> Boucherie',
        "entity": "Café &amp; Fils & <font size=40>Co</font>",
        "link": "<a href='javascript:alert(1)'>Promo</a>",
    }


def _as_typed(pdf: Path, names: dict[str, str], secret: Path, opened: list[str]) -> None:
    """Every name is in the PDF's text as typed, and the named file was never opened."""
    assert str(secret) not in opened
    flat = " ".join(pdf_text(pdf).split())
    for name in names.values():
        assert " ".join(name.split()) in flat, (name, flat[:2000])


def test_pdf_markup_escapes_what_reportlab_would_read() -> None:
    assert pdf_markup('<b>x & "y"') == '&lt;b&gt;x &amp; "y"'
    assert pdf_markup("Crème brûlée") == "Crème brûlée"


def test_the_statement_prints_hostile_names_as_text(
    tmp_path: Path, secret: Path, opened: list[str]
) -> None:
    names = hostile(secret)
    merchants = [st.MerchantLine(f"m{n}", name, 1, 100, 0) for n, name in enumerate(names.values())]
    statement = st.CommuneStatement(
        issuer="ab" * 32,
        issuer_name=names["open"],
        from_ms=0,
        to_ms=1,
        height=3,
        campaigns=[
            st.CampaignLine("C1", names["image"], merchants=merchants),
            st.CampaignLine("C2", names["entity"]),
            st.CampaignLine("C3", names["link"]),
        ],
        payouts=[st.PayoutLine(f"m{n}", name) for n, name in enumerate(names.values())],
        bank=[],
        returns=[],
        settled_cents=0,
        bank_confirmed_cents=0,
        returned_cents=0,
        reconciled=False,
        differences=[f"{names['open']}: differs"],
    )
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(st.to_pdf(statement))
    _as_typed(pdf, names, secret, opened)


def test_letters_print_hostile_names_as_text(
    tmp_path: Path, secret: Path, opened: list[str]
) -> None:
    names = hostile(secret)
    campaign = CampaignText(
        code="NAM-2026",
        name=names["image"],
        issuer_name=names["open"],
        zones=("NAM-1",),
        categories=("47",),
        valid_from_ms=START_MS,
        valid_until_ms=START_MS + 90 * DAY_MS,
        chain_id="relance-test",
    )
    voucher = new_voucher("relance-test")
    entry = Entry(
        serial="NAM-2026-000001", row_id="1", channel="post",
        public_key=voucher.signer.public_key.hex(), seed=voucher.seed.hex(), amount_cents=5_000,
        zone="NAM-1", name=names["link"], address=(names["entity"], "5000 Namur"), email="",
        status="allocated",
    )  # fmt: skip
    (pdf,) = write_letters([(entry, voucher)], campaign, tmp_path / "letter.pdf", merged=True)
    _as_typed(pdf, names, secret, opened)


def test_the_analytics_report_prints_hostile_names_as_text(
    tmp_path: Path, secret: Path, opened: list[str]
) -> None:
    names = hostile(secret)
    items: list[object] = [
        {"name": names["open"], "holders": 12, "spent_cents": 100, "unspent_cents": 5,
         "never_used_holders": 1},
        {"name": names["image"], "suppressed": True},
        {"name": names["link"], "holders": 12, "spent_cents": 1, "unspent_cents": 1},
    ]  # fmt: skip
    pdf = tmp_path / "analytics.pdf"
    write_pdf({"k": 10, "height": 5, "campaigns": {"items": items}}, pdf, names["entity"])
    _as_typed(pdf, names, secret, opened)


def test_the_audit_report_prints_hostile_names_as_text(
    tmp_path: Path, secret: Path, opened: list[str]
) -> None:
    names = hostile(secret)
    issuer = PublicKey(b"I" * 32)
    books = Books()
    books.issuers[issuer] = r.Issuer(names["open"], names["entity"], ("Z-1",), 0, 0, 0, 0, 0)
    books.campaigns["C1"] = r.Campaign(
        issuer, names["image"], ("Z-1",), (), 0, 1, 1, False, *([0] * 8)
    )
    books.campaigns["C2"] = r.Campaign(
        issuer, names["link"], ("Z-1",), (), 0, 1, 1, False, *([0] * 8)
    )
    result = AuditResult("relance-test", "00" * 32, 1, heights_checked=1, books=books)
    pdf = tmp_path / "audit.pdf"
    pdf.write_bytes(render_pdf(result))
    _as_typed(pdf, {k: v for k, v in names.items() if k != "entity"}, secret, opened)


def test_reportlab_would_open_the_file_without_escaping(secret: Path, opened: list[str]) -> None:
    """The spy above is able to see it: unescaped, the same markup opens the file."""
    doc = SimpleDocTemplate(io.BytesIO())
    with pytest.raises(OSError):  # PIL: the file is no image
        doc.build([Paragraph(f'<img src="{secret}"/>', getSampleStyleSheet()["Normal"])])
    assert str(secret) in opened
