"""The wallet alone against a real 4-validator devnet on 127.0.0.1.

The commune registers merchants from a CSV and creates a campaign limited to one
zone and two categories; the bank funds it; the commune allocates to an app
holder, e-mail holders and a postal holder; letters are printed and e-mails sent
through a real SMTP server; each voucher pays an eligible merchant from its QR
code read by zbarimg; an ineligible merchant is refused with its code; a
merchant refunds, pays a supplier, the supplier redeems, the bank settles; every
balance and total checks out. Failures are one line and a documented exit code.

The steps share one devnet and build on each other's balances (the bakery's takings are what
the earlier steps paid), so they are one test that runs them in the order of the story, not
tests that would pass or fail with the order pytest picks.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from lxml import etree

from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, DevnetNode, Supervisor, write_devnet
from node.ledger import records as r
from node.protocol.genesis import parse
from node.settlement import pain001
from tests.node.netutil import eventually, free_base_port, get_json
from tests.wallet.support import Cli, Inbox, cli_env, pdf_text, pdf_to_png, start_smtp, zbar
from wallets.exits import Exit

CAMPAIGN = "NAM-2026"
SHORT = "NAM-FLASH"


@dataclass
class World:
    cli: Cli
    nodes: list[DevnetNode]
    chain_id: str
    keys: dict[str, str]  # wallet key name -> public key hex
    inbox: Inbox
    smtp_port: int
    work: Path
    short_until_ms: int

    def account(self, key: str) -> dict[str, object]:
        return get_json(f"{self.nodes[0].api_url}/v1/accounts/{key}")

    def holder_cents(self, key: str, campaign: str = CAMPAIGN) -> int:
        rows = self.account(key)["balances"]
        assert isinstance(rows, list)
        return sum(int(r["cents"]) for r in rows if r["campaign"] == campaign)

    def merchant_cents(self, key: str) -> int:
        rows = self.account(key)["balances"]
        assert isinstance(rows, list)
        return sum(int(r["cents"]) for r in rows)


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("e2e")
    nodes = write_devnet(root / "net", 4, free_base_port(8), time.time_ns() // 1_000_000)
    supervisor = Supervisor(nodes)
    inbox = Inbox(refuse={"nobody@example.be"})
    smtp_port = free_base_port(1)
    controller: Controller | None = None
    supervisor.start()
    try:
        for node in nodes:
            eventually(lambda n=node: get_json(n.api_url + "/v1/health"), 30, f"{node.name} up")
        controller = start_smtp(inbox, smtp_port)
        genesis = parse((nodes[0].home / "genesis.toml").read_text(encoding="utf-8"))
        # Talk to a commune's node: any node serves every role.
        cli = Cli(cli_env(root / "home", nodes[1].api_url))
        yield _set_up(cli, nodes, genesis.chain_id, inbox, smtp_port, root)
    finally:
        if controller is not None:
            controller.stop()
        supervisor.stop()


def _set_up(
    cli: Cli, nodes: list[DevnetNode], chain_id: str, inbox: Inbox, smtp_port: int, root: Path
) -> World:
    seeds = load_keys(nodes[0].home.parent / DEMO_KEYS_FILE)
    keys: dict[str, str] = {}
    imported = cli.json("key", "import", "issuer0", "--seed-hex", seeds["issuer0"].seed.hex())
    keys["issuer0"] = str(imported["public_key"])
    # The real console script, the seed on stdin (not in the process list).
    bank = cli.process("--json", "key", "import", "bank", "--seed-hex", "-",
                       stdin=seeds["bank"].seed.hex() + "\n")  # fmt: skip
    assert bank.returncode == 0, bank.stderr
    keys["bank"] = str(json.loads(bank.stdout)["public_key"])
    assert keys["bank"] == seeds["bank"].public_key.hex()
    for name in ("alice", "bakery", "bistro", "barber", "wholesaler"):
        keys[name] = str(cli.json("key", "new", name, "--no-phrase")["public_key"])
    work = root / "work"
    work.mkdir()
    (work / "merchants.csv").write_text(
        "public_key,name,category,zone,payout_ref,auto_redeem\n"
        f"{keys['bakery']},Boulangerie Zoë,47.24,NAM-CENTRE,BE71 0961 2345 6769,no\n"
        f"{keys['bistro']},Brasserie de la Place,56.10,NAM-CENTRE,BE02 0000 0000 0202,yes\n"
        f"{keys['barber']},Coiffure Élégance,96.02,NAM-CENTRE,BE03 0000 0000 0303,no\n"
        f"{keys['wholesaler']},Grossiste Alimentaire,46.39,NAM-JAMBES,BE04 0000 0000 0404,no\n",
        encoding="utf-8",
    )
    registered = cli.json("--yes", "issuer", "register-merchants", "--key", "issuer0",
                          str(work / "merchants.csv"))  # fmt: skip
    assert [r["result"] for r in registered["results"]] == ["OK"] * 4  # type: ignore[union-attr]
    again = cli.json("--yes", "issuer", "register-merchants", "--key", "issuer0",
                     str(work / "merchants.csv"))  # fmt: skip
    assert [r["result"] for r in again["results"]] == ["SKIPPED"] * 4  # type: ignore[union-attr]

    cli.json("--yes", "issuer", "create-campaign", "--key", "issuer0", CAMPAIGN,
             "--name", "Chèques relance Namur 2026", "--zone", "NAM-CENTRE",
             "--category", "47", "--category", "56", "--from", "-1d", "--until", "+90d",
             "--max-per-holder", "150")  # fmt: skip
    short = cli.json("--yes", "issuer", "create-campaign", "--key", "issuer0", SHORT,
                     "--name", "Flash", "--from", "-1d", "--until", "+8s",
                     "--max-per-holder", "20")  # fmt: skip
    cli.json("--yes", "bank", "fund", "--key", "bank", CAMPAIGN, "1000", "--reference", "DEP-1")
    cli.json("--yes", "bank", "fund", "--key", "bank", SHORT, "20", "--reference", "DEP-2")
    (work / "households.csv").write_text(
        "amount;zone;channel;name;address;email;holder\n"
        f"50;NAM-CENTRE;app;;;;{keys['alice']}\n"
        "40;NAM-JAMBES;email;Jean Dupont;;jean@example.be;\n"
        "35;NAM-CENTRE;email;Personne;;nobody@example.be;\n"
        "30,50;NAM-BOUGE;post;Zoë Lefèvre-Wałęsa;Rue de l'Église 12;5000 Namur;;\n",
        encoding="utf-8",
    )
    campaign_record = short["campaign"]
    assert isinstance(campaign_record, dict)
    (work / "flash.csv").write_text(
        f"amount,zone,channel,holder\n5,NAM-CENTRE,app,{keys['alice']}\n"
    )
    cli.json("--yes", "issuer", "allocate", "--key", "issuer0", SHORT, str(work / "flash.csv"))
    return World(cli, nodes, chain_id, keys, inbox, smtp_port, work,
                 int(campaign_record["valid_until_ms"]))  # fmt: skip


def step_the_commune_allocates_to_app_email_and_post_households(world: World) -> None:
    cli, work = world.cli, world.work
    allocated = cli.json("--yes", "issuer", "allocate", "--key", "issuer0", CAMPAIGN,
                         str(work / "households.csv"))  # fmt: skip
    assert allocated["allocated"] == 4
    assert allocated["by_channel"] == {"app": 1, "email": 2, "post": 1}
    assert allocated["total_cents"] == 15_550
    assert world.holder_cents(world.keys["alice"]) == 5_000
    rerun = cli.json("--yes", "issuer", "allocate", "--key", "issuer0", CAMPAIGN,
                     str(work / "households.csv"))  # fmt: skip
    assert rerun["allocated"] == 0 and rerun["skipped"] == 4
    book = Path(str(allocated["book"]))
    assert book.stat().st_mode & 0o777 == 0o600
    assert "Wałęsa" not in book.read_text()  # the book is sealed


def step_a_paper_voucher_pays_from_the_qr_of_its_printed_letter(world: World) -> None:
    cli, work = world.cli, world.work
    letters = cli.json("--yes", "issuer", "letters", "--key", "issuer0", CAMPAIGN,
                       "--out", str(work / "letters"))  # fmt: skip
    (pdf,) = (Path(p) for p in letters["files"])  # type: ignore[union-attr]
    text = pdf_text(pdf)
    assert "30,50" in text and "Zoë Lefèvre-Wałęsa" in text and "NAM-2026-000004" in text
    (page,) = pdf_to_png(pdf, work / "letter")
    receipt = cli.json("--yes", "merchant", "charge", "--key", "bakery", "--image", str(page),
                       "12,30", "--memo", "pain et croissants")  # fmt: skip
    assert receipt["amount_cents"] == 1_230 and receipt["merchant"] == "Boulangerie Zoë"
    assert isinstance(receipt["tx_id"], str) and len(receipt["tx_id"]) == 64
    voucher_key = str(receipt["payer"])
    assert world.holder_cents(voucher_key) == 3_050 - 1_230
    human = cli.ok("--yes", "merchant", "charge", "--key", "bakery", "--image", str(page), "1")
    assert "RECEIPT" in human.stdout and "tx id" in human.stdout
    # The merchant refunds part of the purchase, never more than was paid.
    cli.json("--yes", "merchant", "refund", "--key", "bakery", voucher_key, "2,30")
    too_much = cli("--yes", "merchant", "refund", "--key", "bakery", voucher_key, "50")
    assert too_much.exit_code == Exit.REJECTED
    assert "REFUND_EXCEEDS_PAYMENTS" in too_much.stderr
    assert world.holder_cents(voucher_key) == 3_050 - 1_230 - 100 + 230
    # Its balance link opens the holder's page.
    links = [c for c in zbar(page) if "/b/" in c]
    assert len(links) == 1 and links[0].startswith(world.nodes[1].api_url)


def step_e_mail_vouchers_arrive_with_a_qr_that_pays(world: World) -> None:
    cli, work = world.cli, world.work
    args = ("issuer", "mail", "--key", "issuer0", CAMPAIGN, "--smtp-host", "127.0.0.1",
            "--smtp-port", str(world.smtp_port), "--from", "Ville de Namur <relance@namur.be>",
            "--report", str(work / "mail-report.json"))  # fmt: skip
    first = cli("--json", *args)
    assert first.exit_code == Exit.PARTIAL  # one address refused
    body = json.loads(first.stdout)
    assert body["summary"] == {"sent": 1, "skipped": 0, "failed": 1}
    failed = [i for i in body["items"] if i["status"] == "failed"]
    assert failed[0]["email"] == "nobody@example.be" and "550" in failed[0]["detail"]
    report = json.loads((work / "mail-report.json").read_text())
    assert report["summary"]["failed"] == 1
    second = json.loads(cli("--json", *args).stdout)
    assert second["summary"] == {"sent": 0, "skipped": 1, "failed": 1}  # nothing sent twice
    (message,) = world.inbox.received()
    assert message["To"] == "jean@example.be"
    plain = message.get_body(("plain",))
    assert plain is not None
    assert f"{world.nodes[1].api_url}/b/" in plain.get_content()  # the read-only balance link
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    png = work / "mail-qr.png"
    payload = image.get_payload(decode=True)
    assert isinstance(payload, bytes)
    png.write_bytes(payload)
    (code,) = zbar(png)
    receipt = cli.json("--yes", "merchant", "charge", "--key", "bistro", code, "15")
    assert receipt["amount_cents"] == 1_500
    assert world.holder_cents(str(receipt["payer"])) == 2_500


def step_the_app_holder_pays_and_an_ineligible_merchant_is_refused(world: World) -> None:
    cli, keys = world.cli, world.keys
    balance = cli.json("holder", "balance", "--key", "alice")
    rows = balance["balances"]
    assert isinstance(rows, list)
    assert [r["cents"] for r in rows if r["campaign"] == CAMPAIGN] == [5_000]
    cli.json("--yes", "holder", "pay", "--key", "alice", "--campaign", CAMPAIGN,
             keys["bistro"], "8,00")  # fmt: skip
    refused = cli("--yes", "holder", "pay", "--key", "alice", "--campaign", CAMPAIGN,
                  keys["barber"], "5")  # fmt: skip
    assert refused.exit_code == Exit.REJECTED
    assert refused.stderr.startswith("error: MERCHANT_NOT_ELIGIBLE")
    # A signed authorization shown as a QR code, completed by the merchant.
    auth = cli.json("--yes", "holder", "authorize", "--key", "alice", "--campaign", CAMPAIGN,
                    "--max", "10", "--merchant", keys["bakery"], "--expires", "+10m",
                    "--png", str(world.work / "auth.png"))  # fmt: skip
    over = cli("--yes", "merchant", "complete", "--key", "bakery", str(auth["authorization"]), "11")
    assert over.exit_code == Exit.REJECTED and "AUTHORIZATION_EXCEEDED" in over.stderr
    done = cli.json("--yes", "merchant", "complete", "--key", "bakery", "--image",
                    str(world.work / "auth.png"), "9,50")  # fmt: skip
    assert done["payer"] == keys["alice"]
    reused = cli(
        "--yes", "merchant", "complete", "--key", "bakery", str(auth["authorization"]), "1"
    )
    assert reused.exit_code == Exit.REJECTED and "AUTHORIZATION_USED" in reused.stderr
    assert world.holder_cents(keys["alice"]) == 5_000 - 800 - 950
    history = cli.json("holder", "history", "--key", "alice")
    kinds = [i["kind"] for i in history["items"]]  # type: ignore[union-attr]
    assert kinds.count("pay") + kinds.count("pay_authorized") == 2 and "allocate" in kinds


def step_a_merchant_pays_its_supplier_who_redeems_and_the_bank_settles(world: World) -> None:
    cli, keys = world.cli, world.keys
    bakery_before = world.merchant_cents(keys["bakery"])
    assert bakery_before == 1_230 + 100 - 230 + 950
    cli.json("--yes", "merchant", "transfer", "--key", "bakery", keys["wholesaler"], "10",
             "--memo", "farine")  # fmt: skip
    assert world.merchant_cents(keys["wholesaler"]) == 1_000
    redeemed = cli.json("--yes", "merchant", "redeem", "--key", "wholesaler", "--all")
    assert redeemed["amount_cents"] == 1_000
    assert world.merchant_cents(keys["wholesaler"]) == 0
    pending = cli.json("merchant", "payouts", "--key", "wholesaler")
    assert pending["pending_cents"] == 1_000
    # The bistro has auto-redeem: each payment became a payout at once.
    assert world.merchant_cents(keys["bistro"]) == 0
    settled = cli.json("--yes", "bank", "settle", "--key", "bank", "--pending",
                       "--reference", "SEPA-2026-001")  # fmt: skip
    assert settled["settled"] == 3  # wholesaler + the bistro's two payments
    after = cli.json("merchant", "payouts", "--key", "wholesaler")
    assert after["pending_cents"] == 0
    assert [p["bank_reference"] for p in after["payouts"]] == ["SEPA-2026-001"]  # type: ignore[union-attr]
    off = cli.json("--yes", "merchant", "auto-redeem", "--key", "bistro", "off",
                   "--payout-ref", "BE02 0000 0000 0202")  # fmt: skip
    assert off["auto_redeem"] is False


def step_every_balance_and_total_checks_out(world: World) -> None:
    campaign = get_json(f"{world.nodes[2].api_url}/v1/campaigns/{CAMPAIGN}")
    keys = world.keys
    paid = 1_230 + 100 - 230 + 1_500 + 800 + 950  # net of the refund
    assert campaign["funded_cents"] == 100_000
    assert campaign["allocated_cents"] == 15_550
    assert int(str(campaign["spent_cents"])) - int(str(campaign["refunded_cents"])) == paid
    assert campaign["budget_cents"] == 100_000 - 15_550
    assert campaign["outstanding_cents"] == 15_550 - paid
    merchants = sum(world.merchant_cents(keys[n]) for n in ("bakery", "bistro", "barber",
                                                            "wholesaler"))  # fmt: skip
    payouts = 1_000 + 1_500 + 800
    assert merchants + payouts == paid
    report = world.cli.json("issuer", "campaign-report", "--key", "issuer0", CAMPAIGN, "--balances")
    by_channel = report["by_channel"]
    assert isinstance(by_channel, dict)
    left = sum(int(row["remaining_cents"]) for row in by_channel.values())
    assert left == campaign["outstanding_cents"]


def step_a_lost_voucher_is_reissued_and_a_voucher_swept_into_the_app(world: World) -> None:
    cli, work = world.cli, world.work
    reissued = cli.json("--yes", "issuer", "reissue", "--key", "issuer0", CAMPAIGN,
                        "NAM-2026-000004", "--out", str(work / "reissued.pdf"))  # fmt: skip
    assert reissued["serial"] == "NAM-2026-000005" and reissued["amount_cents"] == 1_950
    (page,) = pdf_to_png(Path(str(reissued["letter"])), work / "reissued")
    (old_page,) = sorted(work.glob("letter*.png"))
    stale = cli("--yes", "merchant", "charge", "--key", "bakery", "--image", str(old_page), "1")
    assert stale.exit_code == Exit.REJECTED and "INSUFFICIENT_FUNDS" in stale.stderr
    again = cli("--yes", "issuer", "reissue", "--key", "issuer0", CAMPAIGN, "NAM-2026-000004")
    assert again.exit_code == Exit.USAGE
    swept = cli.json("--yes", "holder", "sweep", "--key", "alice", "--image", str(page))
    assert swept["moved"] == [
        {"campaign": CAMPAIGN, "cents": 1_950, "tx_id": swept["moved"][0]["tx_id"]}
    ]  # type: ignore[index]
    assert world.holder_cents(world.keys["alice"]) == 5_000 - 800 - 950 + 1_950


def step_login_prints_a_token_the_node_accepts(world: World) -> None:
    login = world.cli.json("login", "--key", "bakery", "--ttl", "5")
    assert str(login["link"]).startswith(world.nodes[1].api_url + "/ui/login?token=")
    request = urllib.request.Request(
        world.nodes[1].api_url + "/v1/session",
        headers={"Authorization": f"Bearer {login['token']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        session = json.load(response)
    assert world.keys["bakery"] in json.dumps(session)


def step_failures_are_one_line_with_their_exit_code(world: World) -> None:
    cli, keys = world.cli, world.keys
    eventually(
        lambda: get_json(world.nodes[0].api_url + "/v1/status")["block_time_ms"]  # type: ignore[operator]
        > world.short_until_ms or None,
        30, "the flash campaign's end",
    )  # fmt: skip
    cases = [
        (Exit.KEYSTORE, "wrong passphrase",
         ("--yes", "holder", "pay", "--key", "alice", keys["bakery"], "1"),
         {"RELANCE_PASSPHRASE": "not it"}),
        (Exit.REJECTED, "UNKNOWN_MERCHANT",
         ("--yes", "holder", "pay", "--key", "alice", "--campaign", CAMPAIGN, keys["bank"], "1"),
         {}),
        (Exit.REJECTED, "INSUFFICIENT_FUNDS",
         ("--yes", "holder", "pay", "--key", "alice", "--campaign", CAMPAIGN, keys["bakery"],
          "500"), {}),
        (Exit.REJECTED, "CAMPAIGN_NOT_ACTIVE",
         ("--yes", "holder", "pay", "--key", "alice", "--campaign", SHORT, keys["bakery"], "1"),
         {}),
        (Exit.UNREACHABLE, "node unreachable",
         ("--yes", "holder", "pay", "--key", "alice", keys["bakery"], "1"),
         {"RELANCE_NODE": f"http://127.0.0.1:{free_base_port(1)}"}),
        (Exit.USAGE, "not an amount", ("--yes", "holder", "pay", "--key", "alice",
                                       keys["bakery"], "douze"), {}),
        (Exit.ABORTED, "confirmation declined",
         ("holder", "pay", "--key", "alice", "--campaign", CAMPAIGN, keys["bakery"], "1"), {}),
    ]  # fmt: skip
    for code, words, args, env in cases:
        done = cli.process(*args, **env)  # the real console script, in its own process
        assert done.returncode == code, (args, done.stderr)
        assert done.stderr.strip().count("\n") == 0 or code == Exit.ABORTED, done.stderr
        assert words in done.stderr.splitlines()[-1], done.stderr
        assert "Traceback" not in done.stderr
        assert done.stdout == ""
    as_json = cli.process("--json", "--yes", "holder", "pay", "--key", "alice", "--campaign",
                          SHORT, keys["bakery"], "1")  # fmt: skip
    assert as_json.returncode == Exit.REJECTED
    assert json.loads(as_json.stdout)["result"] == "CAMPAIGN_NOT_ACTIVE"
    closed = cli.json("--yes", "issuer", "close", "--key", "issuer0", SHORT)
    assert isinstance(closed["tx_id"], str)
    assert world.holder_cents(keys["alice"], SHORT) == 0  # returned to the budget


def step_the_confirmation_shows_what_is_signed(world: World) -> None:
    cli, keys = world.cli, world.keys
    answered = cli("holder", "pay", "--key", "alice", "--campaign", CAMPAIGN, keys["bakery"],
                   "0,50", input="y\n")  # fmt: skip
    assert answered.exit_code == 0, answered.stderr
    prompt = answered.stderr
    for shown in (world.chain_id, keys["alice"], keys["bakery"], "Boulangerie Zoë", "0,50"):
        assert shown in prompt, shown
    assert "tx id" in answered.stdout
    declined = cli("holder", "pay", "--key", "alice", "--campaign", CAMPAIGN, keys["bakery"],
                   "0,50", input="n\n")  # fmt: skip
    assert declined.exit_code == Exit.ABORTED


ESCROW_IBAN, COMMUNE_IBAN = "BE68539007547034", "BE71096123456769"


def _withdraw(*args: str, out: Path) -> tuple[str, ...]:
    return (
        "bank",
        "withdraw",
        "--key",
        "bank",
        CAMPAIGN,
        "--escrow-iban",
        ESCROW_IBAN,
        "--to-iban",
        COMMUNE_IBAN,
        "--out",
        str(out),
        *args,
    )  # fmt: skip (the last wins)


def step_the_bank_withdraws_unallocated_budget_and_refuses_what_it_must(world: World) -> None:
    cli = world.cli
    before = get_json(f"{world.nodes[0].api_url}/v1/campaigns/{CAMPAIGN}")
    out = world.work / "withdraw-RET-1.xml"
    done = cli.json("--yes", *_withdraw("100", "--reference", "RET-1", out=out))
    after = get_json(f"{world.nodes[0].api_url}/v1/campaigns/{CAMPAIGN}")
    assert after["budget_cents"] == int(str(before["budget_cents"])) - 10_000
    assert after["withdrawn_cents"] == 10_000
    assert done["file"] == str(out)
    xml = out.read_bytes()
    pain001.validate(xml)  # the XSD
    tree = etree.fromstring(xml)
    ns = {"p": pain001.NAMESPACE}
    assert tree.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=ns) == ESCROW_IBAN
    assert tree.findtext(".//p:CdtrAcct/p:Id/p:IBAN", namespaces=ns) == COMMUNE_IBAN
    assert tree.findtext(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", namespaces=ns) == "100.00"
    assert tree.findtext(".//p:EndToEndId", namespaces=ns) == "RET-1"
    commune = str(world.account(str(after["issuer"]))["name"])
    assert tree.findtext(".//p:Cdtr/p:Nm", namespaces=ns) == pain001.sepa_name(commune, "x")
    for bad, why in ((("1", "--reference", "RET//3"), "//"),
                     (("1", "--reference", "RET-3", "--to-iban", "BE00"), "IBAN")):  # fmt: skip
        refused = cli("--yes", *_withdraw(*bad, out=world.work / "bad.xml"))
        assert refused.exit_code == Exit.USAGE and why in refused.stderr, refused.stderr
        assert not (world.work / "bad.xml").exists()
    again = cli("--yes", *_withdraw("1", "--reference", "RET-4", out=out))  # never overwritten
    assert again.exit_code == Exit.USAGE and out.read_bytes() == xml
    unchanged = get_json(f"{world.nodes[0].api_url}/v1/campaigns/{CAMPAIGN}")
    assert unchanged["withdrawn_cents"] == 10_000  # nothing refused went to the ledger
    refused = cli("--yes", *_withdraw("100000", "--reference", "RET-2", out=world.work / "r2.xml"))
    assert refused.exit_code == Exit.REJECTED and not (world.work / "r2.xml").exists()
    cases = [
        ("DUPLICATE_REFERENCE", ("bank", "fund", "--key", "bank", CAMPAIGN, "1",
                                 "--reference", "DEP-1")),
        ("NOT_AUTHORIZED", ("bank", "fund", "--key", "issuer0", CAMPAIGN, "1",
                            "--reference", "DEP-3")),
        ("CAMPAIGN_EXISTS", ("issuer", "create-campaign", "--key", "issuer0", CAMPAIGN, "--name",
                             "x", "--until", "+1d", "--max-per-holder", "1")),
    ]  # fmt: skip
    for result, args in cases:
        refused = cli("--yes", *args)
        assert refused.exit_code == Exit.REJECTED, (args, refused.stderr)
        assert refused.stderr.startswith(f"error: {result}:"), refused.stderr


def step_a_voucher_reads_its_own_history_with_its_balance_code(world: World) -> None:
    (message,) = world.inbox.received()
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    png = world.work / "history-qr.png"
    payload = image.get_payload(decode=True)
    assert isinstance(payload, bytes)
    png.write_bytes(payload)
    (code,) = zbar(png)
    history = world.cli.json("holder", "history", "--voucher", code)
    kinds = sorted(str(i["kind"]) for i in history["items"])  # type: ignore[union-attr]
    assert kinds == ["allocate", "pay"]


def step_a_large_allocation_is_chunked_and_a_refused_one_keeps_its_keys(world: World) -> None:
    cli, work = world.cli, world.work
    cli.json("--yes", "issuer", "create-campaign", "--key", "issuer0", "NAM-MASS", "--name",
             "Masse", "--from", "-1d", "--until", "+30d", "--max-per-holder", "10")  # fmt: skip
    rows = "".join(f"5,NAM-CENTRE,post,Ménage {n},Rue {n};5000 Namur,\n" for n in range(1_200))
    (work / "mass.csv").write_text("amount,zone,channel,name,address,email\n" + rows)
    args = ("--yes", "issuer", "allocate", "--key", "issuer0", "NAM-MASS", str(work / "mass.csv"))
    refused = cli("--json", *args)  # nothing funded yet
    assert refused.exit_code == Exit.REJECTED
    body = json.loads(refused.stdout)
    assert body["result"] == "INSUFFICIENT_BUDGET" and body["allocated"] == 0
    cli.json("--yes", "bank", "fund", "--key", "bank", "NAM-MASS", "6000", "--reference", "DEP-M")
    allocated = cli.json(*args)
    assert allocated["allocated"] == 1_200 and allocated["skipped"] == 0
    assert [t["result"] for t in allocated["transactions"]] == ["OK", "OK"]  # type: ignore[union-attr]
    assert allocated["vouchers_in_book"] == 1_200
    assert allocated["book_entries"] == 1_200  # the keys kept by the refused run were reused
    campaign = get_json(f"{world.nodes[3].api_url}/v1/campaigns/NAM-MASS")
    assert campaign["allocated_cents"] == 600_000 and campaign["budget_cents"] == 0


def step_the_commune_suspends_updates_and_reinstates_a_merchant(world: World) -> None:
    """Leaves the barber as it found it: active, 96.02, in NAM-CENTRE."""
    cli, keys = world.cli, world.keys
    barber = keys["barber"]

    def profile() -> dict[str, object]:
        found = world.account(barber)["merchant"]
        assert isinstance(found, dict)
        return found

    suspended = cli.json("--yes", "issuer", "suspend-merchant", "--key", "issuer0", barber)
    assert suspended["active"] is False and profile()["active"] is False
    pay = ("--yes", "holder", "pay", "--key", "alice", "--campaign", CAMPAIGN, barber, "1")
    refused = cli(*pay)
    assert refused.exit_code == Exit.REJECTED
    assert refused.stderr.startswith("error: MERCHANT_SUSPENDED"), refused.stderr
    cli.json("--yes", "issuer", "reinstate-merchant", "--key", "issuer0", barber)
    assert profile()["active"] is True
    refused = cli(*pay)  # active again, and still outside the campaign's categories
    assert refused.stderr.startswith("error: MERCHANT_NOT_ELIGIBLE"), refused.stderr

    proof = f"{world.nodes[0].api_url}/v1/proofs/accounts/{barber}"
    payout_hash = r.Merchant.decode(bytes.fromhex(str(get_json(proof)["value"]))).payout_ref_hash
    asked = cli("issuer", "update-merchant", "--key", "issuer0", barber, "--zone", "NAM-JAMBES",
                input="n\n")  # fmt: skip
    assert asked.exit_code == Exit.ABORTED  # declined: the confirmation showed every field
    for shown in ("NAM-CENTRE -> NAM-JAMBES", payout_hash.hex()[:16], "auto-redeem"):
        assert shown in asked.stderr, asked.stderr
    updated = cli.json("--yes", "issuer", "update-merchant", "--key", "issuer0", barber,
                       "--name", "Coiffure & Parfums", "--category", "47.75",
                       "--zone", "NAM-JAMBES")  # fmt: skip
    assert updated["category"] == "47.75"
    assert {k: profile()[k] for k in ("name", "category", "zone", "auto_redeem")} == {
        "name": "Coiffure & Parfums", "category": "47.75", "zone": "NAM-JAMBES",
        "auto_redeem": False,
    }  # fmt: skip
    # The merchant's own key is not its commune's: the ledger refuses, the profile stays.
    own = cli("--yes", "issuer", "update-merchant", "--key", "barber", barber, "--name", "Moi")
    assert own.exit_code == Exit.REJECTED and "NOT_AUTHORIZED" in own.stderr
    usage = cli("--yes", "issuer", "update-merchant", "--key", "issuer0", barber)
    assert usage.exit_code == Exit.USAGE
    unknown = cli("--yes", "issuer", "suspend-merchant", "--key", "issuer0", "ab" * 32)
    assert unknown.exit_code == Exit.REJECTED and "UNKNOWN_MERCHANT" in unknown.stderr
    cli.json("--yes", "issuer", "update-merchant", "--key", "issuer0", barber,
             "--name", "Coiffure Élégance", "--category", "96.02",
             "--zone", "NAM-CENTRE")  # fmt: skip
    assert profile()["category"] == "96.02" and profile()["name"] == "Coiffure Élégance"
    # What the commune did not touch stayed: the payout hash the merchant registered.
    after = r.Merchant.decode(bytes.fromhex(str(get_json(proof)["value"])))
    assert after.payout_ref_hash == payout_hash and after.auto_redeem is False


STORY = (
    step_the_commune_allocates_to_app_email_and_post_households,
    step_a_paper_voucher_pays_from_the_qr_of_its_printed_letter,
    step_e_mail_vouchers_arrive_with_a_qr_that_pays,
    step_the_app_holder_pays_and_an_ineligible_merchant_is_refused,
    step_a_merchant_pays_its_supplier_who_redeems_and_the_bank_settles,
    step_every_balance_and_total_checks_out,
    step_a_lost_voucher_is_reissued_and_a_voucher_swept_into_the_app,
    step_login_prints_a_token_the_node_accepts,
    step_failures_are_one_line_with_their_exit_code,
    step_the_confirmation_shows_what_is_signed,
    step_the_bank_withdraws_unallocated_budget_and_refuses_what_it_must,
    step_a_voucher_reads_its_own_history_with_its_balance_code,
    step_a_large_allocation_is_chunked_and_a_refused_one_keeps_its_keys,
    step_the_commune_suspends_updates_and_reinstates_a_merchant,
)


@pytest.mark.slow
def test_the_story_from_the_commune_s_csv_to_the_bank_s_withdrawal(world: World) -> None:
    for step in STORY:
        step(world)
