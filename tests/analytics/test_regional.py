"""A region's campaign spent at two communes' shops: what each commune sees.

Wallonie (admitted by the validators, like a commune) runs one campaign in Namur's NA-1
and Liège's LG-1, both communes having consented. Each commune's analytics show the
regional spending at its shops (k-anonymous: holders counted), its statement lists it
per shop, and the region's own figures count those payments as local to its territory.
"""

from __future__ import annotations

from node.analytics.index import AnalyticsIndex
from node.analytics.report import long_rows
from node.api.routes import analytics as analytics_routes
from node.ledger import tx as t
from node.protocol.crypto import Digest, digest
from node.settlement import statement
from tests.analytics.chain import Chain
from tests.analytics.test_every_view import ChainStore
from tests.ledger.world import CHAIN_ID, DAY_MS, T0_MS, pk, signer

REGION = signer("regional-wallonie")
CAMPAIGN = "wal-2026"
BAKERY, BOOKSHOP = signer("regional-bakery"), signer("regional-bookshop")
HOLDERS = tuple(signer(f"regional-h{n}") for n in range(5))
IBAN = Digest(digest(b"iban"))


def _chain() -> Chain:
    chain = Chain()
    w = chain.world
    admit = t.AdmitIssuer(pk(REGION), "Wallonie", "Région wallonne", ("WAL",), ())
    approvals = tuple(t.approve(admit, v, CHAIN_ID) for v in w.validators)
    chain.do(w.validators[0], t.AdmitIssuer(pk(REGION), "Wallonie", "Région wallonne",
                                            ("WAL",), approvals))  # fmt: skip
    assert chain.commit(
        (w.namur, t.RegisterMerchant(pk(BAKERY), "Boulangerie", "10.71", "NA-1", IBAN, False)),
        (w.liege, t.RegisterMerchant(pk(BOOKSHOP), "Librairie", "47.61", "LG-1", IBAN, False)),
        (w.namur, t.ConsentZones(pk(REGION), ("NA-1",))),
        (w.liege, t.ConsentZones(pk(REGION), ("LG-1",))),
        (REGION, t.CreateCampaign(CAMPAIGN, "Chèque wallon", ("LG-1", "NA-1"), (), T0_MS,
                                  T0_MS + 60 * DAY_MS, 10_000)),
    )  # fmt: skip
    chain.do(w.bank, t.Fund(CAMPAIGN, 50_000, "DEP-WAL"))
    rows = tuple(t.Allocation(pk(h), 5_000, ("NA-1", "LG-1")[n % 2]) for n, h in enumerate(HOLDERS))
    chain.do(REGION, t.Allocate(CAMPAIGN, rows))
    for n, h in enumerate(HOLDERS):
        chain.do(h, t.Pay(CAMPAIGN, pk(BAKERY), 1_000 + n, "pain"))
    for h in HOLDERS[:3]:
        chain.do(h, t.Pay(CAMPAIGN, pk(BOOKSHOP), 500, "livre"))
    chain.do(BAKERY, t.Redeem(pk(REGION), 2_000))
    return chain


def test_each_commune_sees_the_regional_spending_at_its_shops() -> None:
    chain = _chain()
    index = AnalyticsIndex(chain.world.genesis)
    for block in chain.blocks:
        index.add_block(block)
    namur = index.report(chain.world.namur.public_key, 3)
    assert (namur.regional.rows, namur.regional.columns) == ([CAMPAIGN], ["NA-1"])
    cell = namur.regional.cells[0][0]
    assert (cell.value, cell.contributors) == (5_010, 5)
    assert namur.flows.total.value in (None, 0)  # Namur's own vouchers: none spent
    liege = index.report(chain.world.liege.public_key, 3)
    assert (liege.regional.rows, liege.regional.columns) == ([CAMPAIGN], ["LG-1"])
    assert (liege.regional.total.value, liege.regional.total.contributors) == (1_500, 3)
    # A stricter k hides Liège's cell of three holders (and the total with it).
    strict = index.report(chain.world.liege.public_key, 4)
    assert strict.regional.total.value is None and strict.regional.cells[0][0].suppressed
    # The region: every payment is its own spending, local to its territory.
    region = index.report(pk(REGION), 3)
    assert region.merchant_zones.total.value == 6_510
    assert region.multiplier.round1_cents == 6_510
    assert region.regional.rows == []
    assert ("regional", CAMPAIGN, "NA-1", "cents", 5_010, 5, False) in long_rows(namur)


def test_the_commune_statement_lists_the_regional_payments_at_its_shops() -> None:
    chain = _chain()
    store = ChainStore(chain)
    namur_pk = chain.world.namur.public_key
    s = statement.compute(store, CHAIN_ID, None, namur_pk, None, 0, 2**62)  # type: ignore[arg-type]
    assert s.campaigns == []  # the region's campaign is not Namur's
    assert s.payouts == []  # the bakery's payout comes from the region's escrow
    [line] = s.regional
    assert (line.campaign, line.region_name, line.name) == (CAMPAIGN, "Wallonie", "Boulangerie")
    assert (line.payments, line.paid_cents, line.refunded_cents) == (5, 5_010, 0)
    csv = statement.to_csv(s).decode()
    assert f"regional,{CAMPAIGN}/{pk(BAKERY).hex()},Wallonie / Boulangerie,paid,5010" in csv
    assert b"%PDF" in statement.to_pdf(s)[:8]
    # The region's statement has the payout of the bakery's redemption.
    region = statement.compute(store, CHAIN_ID, None, pk(REGION), None, 0, 2**62)  # type: ignore[arg-type]
    assert [p.opened_cents for p in region.payouts] == [2_000]
    assert region.regional == []
    [campaign] = region.campaigns
    assert campaign.spent_cents == 6_510


def test_the_report_made_in_a_worker_has_the_regional_table() -> None:
    chain = _chain()
    index = AnalyticsIndex(chain.world.genesis)
    for block in chain.blocks:
        index.add_block(block)
    namur = chain.world.namur.public_key
    blocks = [block.encode() for block in chain.blocks]
    made = analytics_routes.report_in_worker(chain.world.genesis, blocks, namur, 3)
    assert (made.regional.rows, made.regional.columns) == ([CAMPAIGN], ["NA-1"])
    assert made == index.report(namur, 3)
