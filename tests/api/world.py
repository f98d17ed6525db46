"""The data every API test reads: two communes, merchants, campaigns, holders, payments."""

from __future__ import annotations

from dataclasses import dataclass

from node.ledger import tx as t
from node.protocol.crypto import Digest, digest
from tests.api.harness import AUDITOR, BANK, DAY_MS, LIEGE, NAMUR, Account, LiveNode, key

CAMPAIGN = "namur-2026"
LIEGE_CAMPAIGN = "liege-2026"


@dataclass
class World:
    node: LiveNode
    bank: Account
    namur: Account
    liege: Account
    auditor: Account
    bakery: Account  # Namur, 47.24, NAM-1, auto_redeem off
    brasserie: Account  # Namur, 56.10, NAM-2, auto_redeem on
    supplier: Account  # Namur, 46.39 (not in the campaign's categories)
    liege_shop: Account
    alice: Account  # holders of the Namur campaign
    bob: Account
    carol: Account
    voucher: Account  # a paper voucher of the Namur campaign
    dave: Account  # holder of the Liège campaign
    alice_pay_id: Digest
    bob_payout_id: Digest
    campaign_end_ms: int

    @property
    def chain(self) -> str:
        return self.node.genesis.chain_id


def seed(node: LiveNode) -> World:
    chain = node.genesis.chain_id
    start = node.genesis.genesis_time_ms
    end = start + 90 * DAY_MS
    a = {name: Account(key(name)) for name in (
        "bakery", "brasserie", "supplier", "liege_shop", "alice", "bob", "carol", "voucher", "dave",
    )}  # fmt: skip
    bank, namur, liege = Account(BANK), Account(NAMUR), Account(LIEGE)
    node.commit(
        namur.sign(chain, t.RegisterMerchant(a["bakery"].pk, "Boulangerie du Marché", "47.24",
                                             "NAM-1", digest(b"iban-1"), False)),
        namur.sign(chain, t.RegisterMerchant(a["brasserie"].pk, "Brasserie de la Place", "56.10",
                                             "NAM-2", digest(b"iban-2"), True)),
        namur.sign(chain, t.RegisterMerchant(a["supplier"].pk, "Grossiste Alimentaire", "46.39",
                                             "NAM-1", digest(b"iban-3"), False)),
        namur.sign(chain, t.CreateCampaign(CAMPAIGN, "Chèques relance Namur", (), ("47", "56"),
                                           start, end, 10_000)),
        liege.sign(chain, t.RegisterMerchant(a["liege_shop"].pk, "Librairie Liège", "47.61",
                                             "LGE-1", digest(b"iban-4"), False)),
        liege.sign(chain, t.CreateCampaign(LIEGE_CAMPAIGN, "Chèques Liège", (), (), start, end,
                                           10_000)),
    )  # fmt: skip
    node.commit(
        bank.sign(chain, t.Fund(CAMPAIGN, 1_000_000, "DEP-NAM-1")),
        bank.sign(chain, t.Fund(LIEGE_CAMPAIGN, 100_000, "DEP-LGE-1")),
    )
    holders = [a[n] for n in ("alice", "bob", "carol", "voucher")]
    node.commit(
        namur.sign(chain, t.Allocate(CAMPAIGN, tuple(
            t.Allocation(h.pk, 5_000, "NAM-1") for h in holders))),
        liege.sign(chain, t.Allocate(LIEGE_CAMPAIGN, (
            t.Allocation(a["dave"].pk, 3_000, "LGE-1"),))),
    )  # fmt: skip
    alice_pay = a["alice"].sign(chain, t.Pay(CAMPAIGN, a["bakery"].pk, 1_234, "pain"))
    bob_pay = a["bob"].sign(chain, t.Pay(CAMPAIGN, a["brasserie"].pk, 2_000, "repas"))
    node.commit(alice_pay, bob_pay)
    node.commit(bank.sign(chain, t.Settle((t.Settlement(bob_pay.tx_id, "VIR-0001"),))))
    node.commit(
        a["bakery"].sign(chain, t.Transfer(a["supplier"].pk, NAMUR.public_key, 500, "farine"))
    )
    return World(
        node=node, bank=bank, namur=namur, liege=liege, auditor=Account(AUDITOR),
        bakery=a["bakery"], brasserie=a["brasserie"], supplier=a["supplier"],
        liege_shop=a["liege_shop"], alice=a["alice"], bob=a["bob"], carol=a["carol"],
        voucher=a["voucher"], dave=a["dave"], alice_pay_id=alice_pay.tx_id,
        bob_payout_id=bob_pay.tx_id, campaign_end_ms=end,
    )  # fmt: skip
