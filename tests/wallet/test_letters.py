"""Paper letters: accented names and € print, the text is searchable, the QR of the
rendered page decodes to the voucher."""

from __future__ import annotations

from pathlib import Path

from tests.wallet.support import pdf_text, pdf_to_png, zbar
from wallets.book import Entry
from wallets.letters import CampaignText, font_files, write_letters
from wallets.voucher import Voucher, new_voucher, parse_voucher

CHAIN = "relance-devnet-1764431234"
DAY_MS = 86_400_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CAMPAIGN = CampaignText(
    code="NAM-2026",
    name="Chèques relance Namur 2026",
    issuer_name="Ville de Namur",
    zones=("NAM-CENTRE",),
    categories=("47", "56.10"),
    valid_from_ms=START_MS,
    valid_until_ms=START_MS + 90 * DAY_MS,
    chain_id=CHAIN,
    balance_url="https://relance.namur.be",
)


def _entry(serial: str, name: str, voucher: Voucher, cents: int) -> Entry:
    return Entry(
        serial=serial,
        row_id=serial,
        channel="post",
        public_key=voucher.signer.public_key.hex(),
        seed=voucher.seed.hex(),
        amount_cents=cents,
        zone="NAM-CENTRE",
        name=name,
        address=("Rue de l'Église 12", "5000 Namur"),
        email="",
        status="allocated",
    )


def test_a_letter_prints_accents_euros_serial_and_a_qr_that_decodes(tmp_path: Path) -> None:
    voucher = new_voucher(CHAIN)
    entry = _entry("NAM-2026-000042", "Zoë Lefèvre-Wałęsa", voucher, 12_345)
    (pdf,) = write_letters([(entry, voucher)], CAMPAIGN, tmp_path / "letter.pdf", merged=True)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert font_files()[0].name == "DejaVuSans.ttf"  # the Debian font `make` installs
    text = pdf_text(pdf)
    for expected in (
        "123,45",
        "€",
        "Zoë Lefèvre-Wałęsa",
        "NAM-2026-000042",
        "Rue de l'Église 12",
        "1er janvier 2026",
        "31 mars 2026",
        "commerce de détail",
        "NAM-CENTRE",
    ):
        assert expected in text, expected
    (page,) = pdf_to_png(pdf, tmp_path / "page")
    codes = zbar(page)
    vouchers = [c for c in codes if c.startswith("RLV1:")]
    assert vouchers == [voucher.uri()]
    assert parse_voucher(vouchers[0]).seed == voucher.seed
    links = [c for c in codes if c.startswith("https://relance.namur.be/b/")]
    assert len(links) == 1  # the read-only balance link
    flat = " ".join(text.split())
    assert "où dépenser ce chèque" in flat and "where to spend this voucher" in flat
    assert "application" not in flat.lower()  # no app that does not exist


def test_letters_one_per_household_or_merged(tmp_path: Path) -> None:
    items = []
    for n, name in enumerate(("Anaïs Dubœuf", "Jérôme Çelik", "Ødegård")):
        voucher = new_voucher(CHAIN)
        items.append((_entry(f"NAM-2026-{n + 1:06d}", name, voucher, 5_000), voucher))
    separate = write_letters(items, CAMPAIGN, tmp_path / "each", merged=False)
    assert [p.name for p in separate] == [f"NAM-2026-{n:06d}.pdf" for n in (1, 2, 3)]
    merged = write_letters(items, CAMPAIGN, tmp_path / "print.pdf", merged=True)[0]
    pages = pdf_to_png(merged, tmp_path / "merged", dpi=100)
    assert len(pages) == 3
    text = pdf_text(merged)
    assert all(name in text for name in ("Anaïs Dubœuf", "Jérôme Çelik", "Ødegård"))
    assert items[2][1].uri() in zbar(pages[2])
