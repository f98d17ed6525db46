"""End to end on a real 4-validator devnet whose bank node runs the settlement service:
a merchant with auto-redeem paid at once (IBAN registered with the wallet), a merchant
without it redeeming on a daily schedule, a purchase refund and a withdrawal; pain.001
files produced, the bank's camt.053 imported, ``settle`` committed, and the commune
statement (JSON, CSV, PDF) equal to the ledger's totals and reconciled with the bank."""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from node.ledger import tx as t
from node.protocol.crypto import Digest, PublicKey
from node.settlement import banksim, pain001, refhash
from tests.node.netutil import eventually, get_json
from tests.settlement.netbank import BankNet, key, node_cli_ok
from tests.wallet.support import Cli, cli_env, pdf_text

DAY_MS = 86_400_000
IBAN_A = "BE28001123456020"
IBAN_B = "DE89370400440532013000"


@pytest.mark.slow
def test_payouts_files_confirmations_settle_and_statement(tmp_path: Path) -> None:
    net = BankNet(tmp_path / "net", validators=4, day_ms=4_000)
    try:
        net.start_all()
        _run(net, tmp_path)
    finally:
        net.stop_all()


def _run(net: BankNet, tmp_path: Path) -> None:
    shop_a, shop_b = key("shop-a"), key("shop-b")
    zone = net.genesis.issuers[0].zones[0]
    now = net.genesis.genesis_time_ms
    eventually(lambda: int(str(get_json(net.url + "/v1/status")["height"])) >= 1 or None, 60, "b")
    for shop, name, auto in ((shop_a, "Boulangerie", True), (shop_b, "Librairie", False)):
        net.submit(net.issuer, t.RegisterMerchant(
            shop.public_key, name, "47.11", zone, Digest(bytes(32)), auto))  # fmt: skip
    net.submit(net.issuer, t.CreateCampaign(
        "c", "Relance 2026", (), (), now - DAY_MS, now + DAY_MS, 100_000))  # fmt: skip
    net.submit(net.bank, t.Fund("c", 100_000, "dep-1"), node=1)
    holders = [key(f"holder{n}") for n in range(4)]
    net.submit(
        net.issuer, t.Allocate("c", tuple(t.Allocation(h.public_key, 5_000, zone) for h in holders))
    )

    # Merchant A registers its IBAN with the wallet: bank node + salted hash on the ledger.
    wallet = Cli(cli_env(tmp_path / "wallet", net.url))
    wallet.ok("key", "import", "shop-a", "--seed-hex", shop_a.seed.hex())
    registered = wallet.json("--yes", "settlement", "register-iban", "--key", "shop-a", IBAN_A)
    assert registered["iban"] == "BE28 **** **** 6020"
    # Merchant B over HTTP, paid daily; a holder may not register an IBAN.
    salt = b"\x05" * 16
    net.register_iban(shop_b, IBAN_B, salt, "daily")
    with pytest.raises(urllib.error.HTTPError) as refused:
        net.register_iban(holders[0], IBAN_B, salt, "daily")
    assert refused.value.code == 403
    refused.value.close()
    net.submit(shop_b, t.UpdateMerchant(
        shop_b.public_key, "Librairie", "47.11", zone,
        Digest(refhash.ref_hash(IBAN_B, salt)), False))  # fmt: skip

    a, b = PublicKey(shop_a.public_key), PublicKey(shop_b.public_key)
    net.submit(holders[0], t.Pay("c", a, 1_200, "pain"), node=2)
    net.submit(holders[1], t.Pay("c", a, 800, "croissants"), node=3)
    net.submit(holders[2], t.Pay("c", b, 1_500, "livre"))
    net.submit(holders[3], t.Pay("c", b, 700, "revue"))
    net.submit(shop_b, t.Refund(holders[3].public_key, "c", 200, "retour"))
    net.submit(shop_b, t.Redeem(PublicKey(net.issuer.public_key), 2_000))
    net.submit(net.bank, t.Withdraw("c", 10_000, "wd-1"), node=1)

    # Files: A's two payouts at once, B's redemption at the next "day" (4 s of block time).
    def transfers() -> dict[str, int] | None:
        found = {
            e.end_to_end_id: e.amount_cents
            for path in net.outbox.glob("*.xml")
            for e in banksim.read_pain001(path.read_bytes())
        }
        return found if sum(found.values()) == 4_000 and 2_000 in found.values() else None

    in_files = eventually(transfers, 60, "pain.001 files for both merchants")
    filed = _settlement_metrics(net)  # the bank's node exports how long files stay open
    assert filed["oldest_pending_age_seconds"] >= 0 and filed['payouts{state="in_file"}'] >= 1
    files = sorted(net.outbox.glob("*.xml"))
    for path in files:
        pain001.validate(path.read_bytes())
    today = datetime.datetime.now(tz=datetime.UTC).date().isoformat()
    answers = banksim.statements([p.read_bytes() for p in files], today, "camt.053")
    for n, answer in enumerate(answers):
        (tmp_path / f"camt053-{n}.xml").write_bytes(answer)
    report = json.loads(
        node_cli_ok("settlement", "import", "--home", str(net.bank_home),
                    *(str(tmp_path / f"camt053-{n}.xml") for n in range(len(answers))))
    )  # fmt: skip
    assert report["ok"] and sorted(report["confirmed"]) == sorted(in_files)

    def all_settled() -> list[dict[str, object]] | None:
        found = net.payouts()
        return found if len(found) == 3 and all(p["settled"] for p in found) else None

    payouts = eventually(all_settled, 60, "settle committed")
    closed = _settlement_metrics(net)
    assert closed["oldest_pending_age_seconds"] == 0 and closed['payouts{state="settled"}'] == 3
    assert {str(p["bank_reference"]) for p in payouts} == set(in_files)

    # The statement equals the ledger's totals and reconciles with the bank's files.
    statement = net.get_json("/v1/settlement/statement?campaign=c", net.issuer)
    ledger = get_json(net.url + "/v1/campaigns/c")
    [campaign] = statement["campaigns"]  # type: ignore[misc]
    assert campaign["deposits_cents"] == ledger["funded_cents"] == 100_000
    assert campaign["spent_cents"] == ledger["spent_cents"] == 4_200
    assert campaign["refunds_cents"] == ledger["refunded_cents"] == 200
    assert campaign["withdrawals_cents"] == ledger["withdrawn_cents"] == 10_000
    unspent = int(str(ledger["budget_cents"])) + int(str(ledger["outstanding_cents"]))
    assert campaign["closing_unspent_cents"] == campaign["ledger_unspent_cents"] == unspent
    assert unspent == 100_000 - 4_200 + 200 - 10_000
    merchants = {m["name"]: (m["paid_cents"], m["refunded_cents"]) for m in campaign["merchants"]}
    assert merchants == {"Boulangerie": (2_000, 0), "Librairie": (2_200, 200)}
    issuer = net.account(net.issuer.public_key)["issuer"]
    assert isinstance(issuer, dict)
    assert statement["settled_cents"] == issuer["settled_cents"] == 4_000
    assert statement["bank_confirmed_cents"] == 4_000
    assert statement["reconciled"] is True and statement["differences"] == []

    # CSV and PDF through the wallet; another merchant may not read the statement.
    wallet.ok("key", "import", "namur", "--seed-hex", net.issuer.seed.hex())
    csv_path, pdf_path = tmp_path / "statement.csv", tmp_path / "statement.pdf"
    wallet.ok("settlement", "statement", "--key", "namur", "--format", "csv", "--out",
              str(csv_path))  # fmt: skip
    wallet.ok("settlement", "statement", "--key", "namur", "--format", "pdf", "--out",
              str(pdf_path))  # fmt: skip
    rows = csv_path.read_text(encoding="utf-8").splitlines()
    assert "total,,,settled,4000,40.00" in rows and "total,,,reconciled,yes," in rows
    assert "campaign,c,Relance 2026,deposits,100000,1000.00" in rows
    text = pdf_text(pdf_path)
    assert "Reconciled to the cent." in text and "Librairie" in text
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        net.get("/v1/settlement/statement", shop_a)
    assert forbidden.value.code == 403
    forbidden.value.close()


def _settlement_metrics(net: BankNet) -> dict[str, float]:
    with urllib.request.urlopen(net.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    prefix = "relance_settlement_"
    return {
        name.removeprefix(prefix): float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines())
        if name.startswith(prefix)
    }
