"""A transfer the bank rejected (closed account): its payouts are returned on the ledger to
the merchant's balance, each exactly once, even with the bank's node SIGKILLed after a
return is journaled and after it is submitted; nothing is ever settled, and the commune
statement still reconciles with the bank's files."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from node.crypto import Digest, PublicKey
from node.ledger import tx as t
from node.settlement import banksim, refhash
from node.settlement.journal import PayoutState, SettleTxState, open_journal
from tests.node.netutil import eventually, get_json
from tests.settlement.netbank import BankNet, key, node_cli_ok

DAY_MS = 86_400_000
SHOP_IBAN = "BE28001123456020"


@pytest.mark.slow
def test_a_rejected_transfer_returns_each_payout_once(tmp_path: Path) -> None:
    net = BankNet(tmp_path / "net")
    try:
        net.start()
        net.wait_up()
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
            found = [e for f in files() for e in banksim.read_pain001(f.read_bytes())]
            return found if sum(e.amount_cents for e in found) == 2_500 else None

        def files() -> list[Path]:
            return sorted(net.outbox.glob("*.xml"))

        sent = eventually(transfers, 30, "the payouts in pain.001 files")  # 1 or 2 transfers

        # The bank returns the transfer (AC04, closed account); killed once the first
        # return is journaled, then once a return is submitted.
        net.stop()
        net.start(crash="return-recorded")
        net.wait_up()
        today = datetime.datetime.now(tz=datetime.UTC).date().isoformat()
        [answer] = banksim.statements(
            [f.read_bytes() for f in files()], today, "camt.054",
            {e.end_to_end_id: "AC04" for e in sent},
        )  # fmt: skip
        (tmp_path / "camt054.xml").write_bytes(answer)
        node_cli_ok("settlement", "import", "--home", str(net.bank_home),
                    str(tmp_path / "camt054.xml"))  # fmt: skip
        net.wait_killed()
        net.start(crash="return-submitted")
        net.wait_killed()
        net.start()
        net.wait_up()

        def all_returned() -> list[dict[str, object]] | None:
            found = net.payouts()
            return found if len(found) == 2 and all(p["returned_reason"] for p in found) else None

        payouts = eventually(all_returned, 60, "both payouts returned on the ledger")
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
