"""Issue 15, finding 2: one merchant's name must not stop bank settlement for every commune.

Names are whatever the ledger accepts (``node.text.names``); pain.001 files carry them
transliterated to the EPC SEPA character set, with a fallback when nothing is left.
A file that still cannot be built is ``failed`` with its reason, its payouts ``held``,
and the service goes on with every other file, settlement and return, across restarts.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

import pytest
import xmlschema
from click.testing import CliRunner
from lxml import etree

from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import limits
from node.protocol.crypto import Digest
from node.protocol.genesis import GenesisError, parse
from node.run import daemon
from node.run.cli import main as node_cli
from node.run.governance import Proposal, ProposalError, from_json, to_json
from node.settlement import banksim, camt, pain001, refhash
from node.settlement.journal import (
    EscrowRow,
    FileState,
    MerchantRow,
    PayoutState,
    Schedule,
    SettleTxState,
    TransferState,
    open_journal,
)
from node.settlement.reconcile import import_statement
from node.settlement.service import Settings, SettlementService
from node.text import names
from node.text.names import UNICODE_VERSION, is_name, name_problem
from tests.api.harness import BANK, DAY_MS, LIEGE, NAMUR, Account, LiveNode, key
from wallets.cli import main as wallet_cli
from wallets.exits import Exit, WalletError
from wallets.units import parse_name

PIZZA_IBAN = "BE28001123456020"
LIBRARY_IBAN = "DE89370400440532013000"
NAMUR_ESCROW = EscrowRow(NAMUR.public_key, "Ville de Namur — séquestre", "BE68539007547034", "")
SALT = b"\x05" * 16


# --- the rule of names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Boulangerie Élise", "🍕", "✓", "Café & Co <Namur>", "北京饭店", "O'Brien - Zoë", "x" * 120],
)
def test_names_the_ledger_accepts(name: str) -> None:
    assert is_name(name), name_problem(name)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (" Café", "white space"),
        ("Café\t", "white space"),
        ("Cafe\u0301", "NFC"),  # e + combining acute: not the composed é
        ("a\nb", "U+000A"),
        ("a\x00b", "U+0000"),
        ("evil\u202etxt.exe", "U+202E"),  # right-to-left override
        ("a\u2066b\u2069", "U+2066"),  # left-to-right isolate
        ("a\u061cb", "U+061C"),  # Arabic letter mark
        ("a\u200bb", "U+200B"),  # zero-width space
        ("a\u2028b", "U+2028"),  # line separator
        ("a\ue000b", "U+E000"),  # private use
        ("a\U000e0041b", "U+E0041"),  # tag character
        ("x" * (limits.NAME_CHARS_MAX + 1), "characters"),
        ("\U0001f355" * (limits.NAME_BYTES_MAX // 4 + 1), "bytes"),
    ],
)
def test_names_the_ledger_refuses(name: str, why: str) -> None:
    problem = name_problem(name)
    assert problem is not None and why in problem
    assert not is_name(name)


def test_the_unicode_database_is_the_protocol_s() -> None:
    assert unicodedata.unidata_version == UNICODE_VERSION


# --- transliteration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sepa"),
    [
        ("Boulangerie Élise", "Boulangerie Elise"),
        ("Straße Œuvre çà", "Strasse Oeuvre ca"),
        ('Café & Co <Namur> = "best" | !', "Cafe Co Namur best"),
        ("🍕 Pizzeria Napoli", "Pizzeria Napoli"),
        ("🍕", "Merchant 4d4d4d4d"),
        ("!!! <> &&", "Merchant 4d4d4d4d"),
        ("//Coop//du/coin", "Coop/du/coin"),
        ("É" * 100, "E" * 70),
    ],
)
def test_names_are_transliterated_to_the_epc_set(name: str, sepa: str) -> None:
    assert pain001.sepa_name(name, f"Merchant {(b'M' * 4).hex()}") == sepa


# --- the settlement service -------------------------------------------------------------------


def _service(node: LiveNode, directory: Path) -> SettlementService:
    """The service, its journal opened on the node's loop (SQLite connections stay on the
    thread that opened them); the test reads and writes through its own connection."""

    def make() -> SettlementService:
        settings = Settings(BANK, DAY_MS, directory)
        journal = open_journal(directory)
        return SettlementService(node.ledger, journal, settings, lambda data: node.wake.set())

    return node.run(make)


def test_an_emoji_name_and_a_failed_file_stop_no_other_settlement(
    node: LiveNode, tmp_path: Path
) -> None:
    chain = node.genesis.chain_id
    start = node.genesis.genesis_time_ms
    bank, namur, liege = Account(BANK), Account(NAMUR), Account(LIEGE)
    pizza, library = Account(key("pizza")), Account(key("library"))
    alice, dave = Account(key("alice")), Account(key("dave"))
    pizza_hash = Digest(refhash.ref_hash(PIZZA_IBAN, SALT))
    library_hash = Digest(refhash.ref_hash(LIBRARY_IBAN, SALT))
    node.commit(
        namur.sign(chain, t.RegisterMerchant(pizza.pk, "🍕", "56.10", "NAM-1", pizza_hash, True)),
        namur.sign(chain, t.CreateCampaign("nam", "Relance ✓", (), (), start, start + DAY_MS,
                                           10_000)),
        liege.sign(chain, t.RegisterMerchant(library.pk, "Librairie <b>&amp; Fils", "47.61",
                                             "LGE-1", library_hash, True)),
        liege.sign(chain, t.CreateCampaign("lge", "Liège", (), (), start, start + DAY_MS, 10_000)),
    )  # fmt: skip
    node.commit(bank.sign(chain, t.Fund("nam", 100_000, "D1")),
                bank.sign(chain, t.Fund("lge", 100_000, "D2")))  # fmt: skip
    node.commit(
        namur.sign(chain, t.Allocate("nam", (t.Allocation(alice.pk, 5_000, "NAM-1"),))),
        liege.sign(chain, t.Allocate("lge", (t.Allocation(dave.pk, 5_000, "LGE-1"),))),
    )
    directory = tmp_path / "settlement"
    service = _service(node, directory)
    journal = open_journal(directory)
    for merchant, iban in ((pizza, PIZZA_IBAN), (library, LIBRARY_IBAN)):
        account = refhash.parse_iban(iban)
        journal.register_merchant(MerchantRow(
            merchant.pk, account.iban, account.bic, SALT, refhash.ref_hash(account.iban, SALT),
            Schedule.IMMEDIATE, 0))  # fmt: skip
    journal.set_escrow(NAMUR_ESCROW)
    # Liège's escrow account is broken in the bank's store: its file cannot be valid.
    journal.set_escrow(EscrowRow(LIEGE.public_key, "Ville de Liège", "be68 5390 0754", ""))
    node.run(service.start)

    # Liège's merchant is paid first: its file fails, with its reason, payouts held.
    node.commit(dave.sign(chain, t.Pay("lge", library.pk, 700, "livre")))
    node.run(service.step)
    [failed] = journal.files(FileState.FAILED)
    assert failed.issuer == LIEGE.public_key
    assert "IBAN" in failed.failure and "pattern" in failed.failure, failed.failure
    assert [p.state for p in journal.all_payouts()] == [PayoutState.HELD]
    [never_sent] = journal.transfers_of_file(failed.file_id)
    assert never_sent.state is TransferState.FAILED

    # Then the merchant named "🍕" in Namur: its file goes out, valid, with a fallback name.
    node.commit(alice.sign(chain, t.Pay("nam", pizza.pk, 1_250, "margherita")))
    node.run(service.step)
    [written] = journal.files(FileState.WRITTEN)
    assert written.issuer == NAMUR.public_key and written.name is not None
    xml = (directory / "outbox" / written.name).read_bytes()
    xmlschema.XMLSchema(pain001.xsd_path()).validate(xml.decode())
    root = etree.fromstring(xml)
    ns = {"p": pain001.NAMESPACE}
    creditor = root.findtext(".//p:Cdtr/p:Nm", namespaces=ns)
    assert creditor == f"Merchant {pizza.pk.hex()[:8]}"
    assert root.findtext(".//p:Dbtr/p:Nm", namespaces=ns) == "Ville de Namur - sequestre"

    # The bank confirms it: the settle transaction goes out and commits.
    [answer] = banksim.statements([xml], "2026-01-02", "camt.054")
    assert import_statement(journal, camt.parse(answer), 1).ok
    node.run(service.step)
    [settle] = journal.settle_txs(SettleTxState.PENDING)
    node.run(node.make_block)
    node.run(service.step)
    assert journal.settle_txs(SettleTxState.COMMITTED)[0].tx_id == settle.tx_id
    states = {p.merchant: p.state for p in journal.all_payouts()}
    assert states == {pizza.pk: PayoutState.SETTLED, library.pk: PayoutState.HELD}

    # The bank node restarts cleanly; the failure stays visible to the bank.
    node.run(service.close)
    service = _service(node, directory)
    node.run(service.start)
    status = CliRunner().invoke(node_cli, ["settlement", "status", "--home", str(tmp_path)])
    assert status.exit_code == 0, status.output
    assert '"state": "failed"' in status.output and failed.failure[:40] in status.output

    # Once the escrow account is fixed, releasing the file puts its payouts in a new file.
    journal.set_escrow(EscrowRow(LIEGE.public_key, "Ville de Liège", "BE68539007547034", ""))
    released = CliRunner().invoke(
        node_cli, ["settlement", "release", "--home", str(tmp_path), str(failed.file_id)]
    )
    assert released.exit_code == 0, released.output
    again = CliRunner().invoke(
        node_cli, ["settlement", "release", "--home", str(tmp_path), str(failed.file_id)]
    )
    assert again.exit_code == 0 and "0 payouts released" in again.output
    node.run(service.step)
    newest = journal.files(FileState.WRITTEN)[-1]
    assert newest.issuer == LIEGE.public_key and newest.file_id != failed.file_id
    xml = (directory / "outbox" / (newest.name or "")).read_bytes()
    liege_root = etree.fromstring(xml)
    assert liege_root.findtext(".//p:Cdtr/p:Nm", namespaces=ns) == "Librairie b amp Fils"
    assert liege_root.findtext(".//p:Dbtr/p:Nm", namespaces=ns) == "Ville de Liege"
    node.run(service.close)
    journal.close()


def test_the_ledger_refuses_a_bidi_name_with_its_own_code(node: LiveNode) -> None:
    chain = node.genesis.chain_id
    namur = Account(NAMUR)
    payload = t.RegisterMerchant(
        key("shop").public_key, "Shop\u202egnp.exe", "47.11", "NAM-1", Digest(bytes(32)), True
    )
    signed = namur.sign(chain, payload)
    verdict = node.run(lambda: node.ledger.check(signed.encode()))
    assert verdict.code == Result.INVALID_NAME


# --- the same rule before anything is signed --------------------------------------------------


def test_the_wallet_puts_names_in_nfc_and_refuses_bidi_before_signing(tmp_path: Path) -> None:
    assert parse_name("  Cafe\u0301 du coin ", "--name") == "Café du coin"
    with pytest.raises(WalletError) as caught:
        parse_name("Shop\u202egnp.exe", "--name")
    assert caught.value.exit_code == Exit.USAGE and "U+202E" in caught.value.message
    result = CliRunner().invoke(
        wallet_cli,
        ["issuer", "create-campaign", "--key", "nobody", "C1", "--name", "Relance\u2067",
         "--until", "+30d", "--max-per-holder", "150", "--yes"],
        env={"RELANCE_NODE": "http://127.0.0.1:9", "RELANCE_KEYSTORE": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == Exit.USAGE, result.output
    assert "U+2067" in result.output


def test_genesis_and_governance_refuse_bad_names() -> None:
    bad = t.AdmitIssuer(key("dinant").public_key, "Ville\u202e", "Dinant", ("DIN-1",), ())
    with pytest.raises(ProposalError, match="U\\+202E"):
        from_json(to_json(Proposal("relance-test", bad)))
    text = (Path(__file__).parents[2] / "configs" / "genesis.example.toml").read_text("utf-8")
    assert parse(text).issuers
    with pytest.raises(GenesisError, match="NFC"):
        parse(text.replace('"Ville de Liège"', '"Ville de Lie\u0300ge"', 1))


def test_a_node_refuses_to_run_on_another_unicode_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names are valid by the Unicode database: a node on another one could fork."""
    assert names.unicode_problem(UNICODE_VERSION) is None
    problem = names.unicode_problem("15.0.0")
    assert problem is not None and "15.0.0" in problem and UNICODE_VERSION in problem
    monkeypatch.setattr(names, "unicode_problem", functools.partial(problem_of, "15.0.0"))
    with pytest.raises(daemon.HomeError, match=r"Unicode database is 15\.0\.0"):
        daemon.read_home(tmp_path)


problem_of = names.unicode_problem
