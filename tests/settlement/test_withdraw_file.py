"""The transfer file of ``bank withdraw``: one pain.001 credit transfer from the commune's
escrow account to its own account, named by the bank's reference, valid or refused."""

from __future__ import annotations

import pytest
from lxml import etree

from node.settlement import pain001

NS = {"p": pain001.NAMESPACE}
ESCROW = pain001.Party("Ville de Liège - escrow", "BE68539007547034")
COMMUNE = pain001.Party("Ville de Liège <Trésorerie> & co", "BE71096123456769", "GKCCBEBB")


def test_a_withdrawal_is_one_valid_transfer_named_by_its_reference() -> None:
    built = pain001.withdrawal(b"L" * 32, ESCROW, COMMUNE, 123_456, "RET-2026-0007", "2026-03-31")
    pain001.validate(built.xml)
    tree = etree.fromstring(built.xml)
    assert tree.findtext(".//p:NbOfTxs", namespaces=NS) == "1"
    assert tree.findtext(".//p:InstdAmt", namespaces=NS) == "1234.56"
    assert tree.findtext(".//p:EndToEndId", namespaces=NS) == "RET-2026-0007"
    assert tree.findtext(".//p:ReqdExctnDt", namespaces=NS) == "2026-03-31"
    assert tree.findtext(".//p:Dbtr/p:Nm", namespaces=NS) == "Ville de Liege - escrow"
    assert tree.findtext(".//p:Cdtr/p:Nm", namespaces=NS) == "Ville de Liege Tresorerie co"
    assert tree.findtext(".//p:CdtrAgt//p:BIC", namespaces=NS) == "GKCCBEBB"
    assert "Relance withdrawal RET-2026-0007" in built.xml.decode()


@pytest.mark.parametrize(
    ("reference", "why"),
    [("", "1 to 35"), ("R" * 36, "1 to 35"), ("RET#1", "SEPA set"), ("/RET", "starts"),
     ("RET//1", "//"), ("=cmd|calc", "SEPA set")],
)  # fmt: skip
def test_a_reference_a_bank_would_refuse_makes_no_file(reference: str, why: str) -> None:
    with pytest.raises(pain001.Pain001Error, match=why):
        pain001.withdrawal(b"L" * 32, ESCROW, COMMUNE, 100, reference, "2026-03-31")


def test_a_bad_account_makes_no_file() -> None:
    bad = pain001.Party("Ville", "BE00")
    with pytest.raises(pain001.Pain001Error):
        pain001.withdrawal(b"L" * 32, ESCROW, bad, 100, "RET-1", "2026-03-31")
