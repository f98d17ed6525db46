"""A transfer the bank rejected (closed account): its payouts are returned on the ledger to
the merchant's balance, each exactly once, even with the bank's node SIGKILLed after a
return is journaled and after it is submitted; nothing is ever settled, and the commune
statement still reconciles with the bank's files."""

from __future__ import annotations

import datetime
import json
import time
import urllib.request
from pathlib import Path

import pytest

from node.api.tokens import make_token
from node.ledger import tx as t
from node.protocol.crypto import Digest, PublicKey, Signer
from node.settlement import banksim, refhash
from node.settlement.journal import PayoutState, SettleTxState, open_journal
from tests.node.netutil import eventually, get_json
from tests.settlement.netbank import BankNet, key, node_cli_ok
from tests.wallet.support import Cli, cli_env

DAY_MS = 86_400_000
SHOP_IBAN = "BE28001123456020"


@pytest.mark.slow
def test_a_rejected_transfer_returns_each_payout_once(tmp_path: Path) -> None:
    net = BankNet(tmp_path / "net")
    try:
        net.start()
        net.wait_up()
        shop, _, sent = _paid_into_files(net)

        # The bank returns the transfer (AC04, closed account); killed once the first
        # return is journaled, then once a return is submitted.
        net.stop()
        net.start(crash="return-recorded")
        net.wait_up()
        _import_rejection(net, sent, tmp_path / "camt054.xml")
        net.wait_killed()
        net.start(crash="return-submitted")
        net.wait_killed()
        net.start()
        net.wait_up()

        payouts = _all_returned(net)
        assert all(p["returned_reason"] == "AC04" and not p["settled"] for p in payouts)
        balances = net.account(shop.public_key)["balances"]
        assert isinstance(balances, list)
        assert [(b["issuer"], b["cents"]) for b in balances] == [
            (net.issuer.public_key.hex(), 2_500)
        ]
        issuer = get_json(f"{net.url}/v1/accounts/{net.issuer.public_key.hex()}")["issuer"]
        assert isinstance(issuer, dict)
        assert (issuer["pending_cents"], issuer["settled_cents"]) == (0, 0)
        assert issuer["redeemed_cents"] == 0

        journal = open_journal(net.bank_home / "settlement")
        try:
            rows = journal.all_payouts()
            assert {r.state for r in rows} == {PayoutState.RETURNED}
            assert not any(r.outside for r in rows)
            assert len(journal.return_txs(SettleTxState.COMMITTED)) == 2
            assert journal.return_txs(SettleTxState.PENDING) == []
            assert journal.settle_txs(SettleTxState.COMMITTED) == []
        finally:
            journal.close()

        # The statement lists the returns and reconciles them with the bank's rejection.
        statement = net.get_json("/v1/settlement/statement?campaign=c", net.issuer)
        assert statement["reconciled"] is True, statement["differences"]
        assert (statement["settled_cents"], statement["returned_cents"]) == (0, 2_500)
        lines = statement["returns"]
        assert isinstance(lines, list)
        assert {(x["reference"], x["reason"], x["bank_cents"]) for x in lines} == {
            (e.end_to_end_id, "AC04", e.amount_cents) for e in sent
        }
        [merchant_line] = statement["payouts"]  # type: ignore[misc]
        assert (merchant_line["opened_cents"], merchant_line["returned_cents"]) == (2_500, 2_500)
    finally:
        net.stop_all()


@pytest.mark.slow
def test_returned_units_spent_again_keep_every_node_advancing(tmp_path: Path) -> None:
    """Issue 14: the merchant refunds, transfers and redeems (``relance-wallet merchant
    redeem --all``) the units of a returned payout; once, every validator died in the
    analytics fold at that block. Every node must stay up, keep committing, and answer
    the analytics routes."""
    net = BankNet(tmp_path / "net", validators=4)
    try:
        net.start_all()
        shop, holders, sent = _paid_into_files(net)
        _import_rejection(net, sent, tmp_path / "camt054.xml")
        _all_returned(net)
        supplier = key("supplier")
        zone = net.genesis.issuers[0].zones[0]
        register = t.RegisterMerchant(
            supplier.public_key, "Grossiste", "46.39", zone, Digest(bytes(32)), False
        )
        net.submit(net.issuer, register, node=1)
        net.submit(shop, t.Refund(holders[0].public_key, "c", 100, "retour"), node=2)
        net.submit(shop, t.Transfer(supplier.public_key, net.issuer.public_key, 400, "farine"),
                   node=3)  # fmt: skip
        wallet = Cli(cli_env(tmp_path / "wallet", net.url))
        wallet.ok("key", "import", "shop", "--seed-hex", shop.seed.hex())
        redeemed = wallet.json("--yes", "merchant", "redeem", "--key", "shop", "--all")
        assert redeemed["amount_cents"] == 2_500 - 100 - 400
        assert net.account(shop.public_key)["balances"] == []
        spent_at = int(str(redeemed["height"]))

        # Every validator is alive and commits blocks well past the re-spend.
        def heights() -> list[int] | None:
            found = [int(str(get_json(n.api_url + "/v1/status")["height"])) for n in net.nodes]
            return found if min(found) >= spent_at + 5 else None

        eventually(heights, 60, "every node past the re-spend")
        assert all(proc.poll() is None for proc in net.procs.values())
        for node in net.nodes:  # each node's analytics folded the re-spend
            node_key = bytes.fromhex(str(get_json(node.api_url + "/v1/status")["node_key"]))
            now = time.time_ns() // 1_000_000
            token = make_token(net.issuer, net.chain, node_key, now, 600_000)
            request = urllib.request.Request(
                node.api_url + "/v1/analytics/report", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                report = json.loads(response.read())
            assert report["height"] >= spent_at, report
    finally:
        net.stop_all()


def _paid_into_files(net: BankNet) -> tuple[Signer, list[Signer], list[banksim.Executed]]:
    """An auto-redeeming shop (IBAN registered, paid at once) paid 1200 and 1300 cents by
    two holders: its payouts, as the transfers of the pain.001 files in the outbox."""
    shop = key("shop")
    zone = net.genesis.issuers[0].zones[0]
    now = net.genesis.genesis_time_ms
    net.submit(net.issuer, t.RegisterMerchant(
        shop.public_key, "Boulangerie", "47.11", zone, Digest(bytes(32)), True))  # fmt: skip
    net.submit(net.issuer, t.CreateCampaign(
        "c", "Relance", (), (), now - DAY_MS, now + DAY_MS, 100_000))  # fmt: skip
    net.submit(net.bank, t.Fund("c", 1_000_000, "dep-1"))
    holders = [key(f"holder{n}") for n in range(2)]
    net.submit(net.issuer, t.Allocate(
        "c", tuple(t.Allocation(h.public_key, 5_000, zone) for h in holders)))  # fmt: skip
    salt = b"\x07" * 16
    net.register_iban(shop, SHOP_IBAN, salt, "immediate")
    net.submit(shop, t.UpdateMerchant(
        shop.public_key, "Boulangerie", "47.11", zone,
        Digest(refhash.ref_hash(SHOP_IBAN, salt)), True))  # fmt: skip
    for n, holder in enumerate(holders):
        net.submit(holder, t.Pay("c", PublicKey(shop.public_key), 1_200 + n * 100, "pain"))
    assert net.account(shop.public_key)["balances"] == []  # auto-redeem: all in payouts

    def transfers() -> list[banksim.Executed] | None:
        found = [e for f in _files(net) for e in banksim.read_pain001(f.read_bytes())]
        return found if sum(e.amount_cents for e in found) == 2_500 else None

    sent = eventually(transfers, 30, "the payouts in pain.001 files")  # 1 or 2 transfers
    return shop, holders, sent


def _files(net: BankNet) -> list[Path]:
    return sorted(net.outbox.glob("*.xml"))


def _import_rejection(net: BankNet, sent: list[banksim.Executed], path: Path) -> None:
    """The bank's camt.054 rejecting every transfer (AC04, closed account), imported."""
    today = datetime.datetime.now(tz=datetime.UTC).date().isoformat()
    [answer] = banksim.statements(
        [f.read_bytes() for f in _files(net)], today, "camt.054",
        {e.end_to_end_id: "AC04" for e in sent},
    )  # fmt: skip
    path.write_bytes(answer)
    node_cli_ok("settlement", "import", "--home", str(net.bank_home), str(path))


def _all_returned(net: BankNet) -> list[dict[str, object]]:
    def returned() -> list[dict[str, object]] | None:
        found = net.payouts()
        return found if len(found) == 2 and all(p["returned_reason"] for p in found) else None

    return eventually(returned, 60, "both payouts returned on the ledger")
