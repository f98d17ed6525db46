"""Voucher and authorization URIs, and their QR codes read back by a real decoder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.ledger.tx import Authorization
from node.protocol.crypto import Signer
from tests.wallet.support import zbar
from wallets import voucher as v
from wallets.exits import Exit, WalletError

CHAIN = "relance-devnet-1764431234"


def test_the_voucher_uri_round_trips() -> None:
    voucher = v.new_voucher(CHAIN)
    uri = voucher.uri()
    scheme, chain, seed, check = uri.split(":")
    assert (scheme, chain) == ("RLV1", CHAIN.upper())
    assert len(seed) == 52 and len(check) == 4
    assert set(uri) <= v.QR_ALPHANUMERIC
    assert v.parse_voucher(uri) == voucher
    assert v.parse_voucher(f"  {uri.lower()}\n") == voucher  # typed in lower case
    assert voucher.matches(CHAIN)
    assert not voucher.matches("relance-other")


def test_the_checksum_catches_a_mistyped_character() -> None:
    uri = v.new_voucher(CHAIN).uri()
    position = uri.index(":", 5) + 10
    typo = uri[:position] + ("A" if uri[position] != "A" else "B") + uri[position + 1 :]
    with pytest.raises(WalletError, match="checksum") as refused:
        v.parse_voucher(typo)
    assert refused.value.code == Exit.USAGE
    for bad in ("RLV2:X:Y:Z", "hello", "RLV1:" + "A" * 2000):
        with pytest.raises(WalletError):
            v.parse_voucher(bad)


def test_a_chain_id_a_qr_code_cannot_carry_is_refused() -> None:
    with pytest.raises(WalletError):
        v.new_voucher("relance_devnet")


def test_the_qr_code_is_alphanumeric_with_error_correction_m_or_better(tmp_path: Path) -> None:
    uri = v.new_voucher(CHAIN).uri()
    qr = v.make_qr(uri)
    assert qr.mode == "alphanumeric"
    assert qr.error in ("M", "Q", "H")
    assert qr.version <= 5  # 37x37 modules at most: scans from paper at 4 cm
    png = tmp_path / "voucher.png"
    png.write_bytes(v.qr_png(uri))
    decoded = zbar(png)
    assert decoded == [uri]
    back = v.parse_voucher(decoded[0])
    assert back.seed == v.parse_voucher(uri).seed and back.matches(CHAIN)
    assert v.read_qr_image(png) == [uri]  # the wallet's own reader (zbarimg)


def test_an_image_without_a_qr_code_is_a_usage_error(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    blank.write_bytes(v.qr_png("A")[:0] or b"not a png")
    with pytest.raises(WalletError) as refused:
        v.read_qr_image(blank)
    assert refused.value.code == Exit.USAGE
    with pytest.raises(WalletError):
        v.read_qr_image(tmp_path / "missing.png")


def test_the_authorization_uri_round_trips_and_its_qr_decodes(tmp_path: Path) -> None:
    holder = Signer.generate()
    merchant = Signer.generate().public_key
    auth = Authorization(holder.public_key, "NAM-2026", merchant, 2_000, 1_900_000_000_000,
                         os.urandom(16))  # fmt: skip
    signed = v.SignedAuthorization(CHAIN.upper(), auth, auth.sign(holder, CHAIN))
    uri = signed.uri()
    back = v.parse_authorization(uri)
    assert back.authorization == auth
    assert back.authorization.verify(CHAIN, back.signature)
    png = tmp_path / "auth.png"
    png.write_bytes(v.qr_png(uri))
    assert zbar(png) == [uri]
    assert v.make_qr(uri).mode == "alphanumeric"
    with pytest.raises(WalletError):
        v.parse_authorization(v.new_voucher(CHAIN).uri())  # a voucher is not an authorization


def test_the_terminal_qr_uses_block_characters() -> None:
    text = v.qr_text(v.new_voucher(CHAIN).uri())
    assert "█" in text and len(text.splitlines()) > 15
