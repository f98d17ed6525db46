"""A payout the bank returned gives its units back to the merchant, in the analytics too.

Issue 14: after ``return_payout`` the merchant's next redeem, transfer or refund of the
returned units made the fold raise ("a merchant spent more than its lots"), and with it
every validator. Each block here is folded as the node does, one at a time, and the
figures must say what happened: the returned payout is not a redemption, the units keep
their campaign, round and time of receipt, and count once when they are spent again.
"""

from __future__ import annotations

import pytest

from node.analytics.index import AnalyticsIndex
from node.analytics.privacy import Cell
from node.analytics.report import Report, Series
from node.ledger import tx as t
from node.protocol.crypto import Digest, digest
from tests.analytics.chain import HOUR_MS, Chain
from tests.ledger.world import DAY_MS, T0_MS, pk, signer

CAMPAIGN = "relance"
BAKERY, BRASSERIE, SUPPLIER = signer("bakery"), signer("brasserie"), signer("supplier")
ALICE, BOB = signer("alice"), signer("bob")


def _setup() -> Chain:
    chain = Chain()
    namur, bank = chain.world.namur, chain.world.bank
    chain.commit(
        (namur, t.RegisterMerchant(pk(BAKERY), "Boulangerie", "47.24", "NA-1", Digest(digest(b"1")),
                                   False)),
        (namur, t.RegisterMerchant(pk(BRASSERIE), "Brasserie", "56.10", "NA-2",
                                   Digest(digest(b"2")), True)),
        (namur, t.RegisterMerchant(pk(SUPPLIER), "Grossiste", "46.39", "NA-2", Digest(digest(b"3")),
                                   False)),
        (namur, t.CreateCampaign(CAMPAIGN, "Relance", (), (), T0_MS, T0_MS + 90 * DAY_MS, 10_000)),
    )  # fmt: skip
    chain.do(bank, t.Fund(CAMPAIGN, 100_000, "DEP-1"))
    chain.do(namur, t.Allocate(CAMPAIGN, (t.Allocation(pk(ALICE), 5_000, "NA-1"),
                                          t.Allocation(pk(BOB), 5_000, "NA-2"))))  # fmt: skip
    return chain


def _fold(chain: Chain) -> AnalyticsIndex:
    """Block by block, as the node adds each finalised block."""
    index = AnalyticsIndex(chain.world.genesis)
    for block in chain.blocks:
        index.add_block(block)
    return index


def _cells(series: Series) -> dict[str, tuple[int | None, int | None]]:
    cells: list[Cell] = series.cells
    return {label: (c.value, c.contributors) for label, c in zip(series.labels, cells, strict=True)}


def _report(chain: Chain) -> tuple[AnalyticsIndex, Report]:
    index = _fold(chain)
    rebuilt = AnalyticsIndex(chain.world.genesis)
    assert rebuilt.catch_up(chain.blocks) == len(chain.blocks)
    assert rebuilt.snapshot() == index.snapshot()
    tracker, world = index.tracker, chain.world
    for shop in (BAKERY, BRASSERIE, SUPPLIER):
        merchant = world.merchant(shop)
        assert merchant is not None
        namur = world.namur.public_key
        assert tracker.lot_cents(pk(shop), namur) == merchant.balance(namur)
    issuer = world.issuer(world.namur)
    assert issuer is not None
    assert tracker.pending_cents(world.namur.public_key) == issuer.pending_cents
    return index, index.report(world.namur.public_key, 1)


@pytest.mark.parametrize("then", ["redeem", "transfer", "refund"])
def test_returned_units_spent_again(then: str) -> None:
    chain = _setup()
    world, namur = chain.world, chain.world.namur
    paid_ms = world.time_ms
    chain.do(ALICE, t.Pay(CAMPAIGN, pk(BAKERY), 1_000, "pain"))
    chain.do(BAKERY, t.Transfer(pk(SUPPLIER), pk(namur), 300, "farine"))
    payout = chain.do(BAKERY, t.Redeem(pk(namur), 700)).tx_id
    chain.do(world.bank, t.ReturnPayout(payout, "AC04", "RTN-1"), step_ms=DAY_MS)
    merchant = world.merchant(BAKERY)
    assert merchant is not None and merchant.balance(pk(namur)) == 700

    again_ms = world.time_ms
    if then == "redeem":
        chain.do(BAKERY, t.Redeem(pk(namur), 700))
    elif then == "transfer":
        chain.do(BAKERY, t.Transfer(pk(SUPPLIER), pk(namur), 400, "sucre"))
    else:
        chain.do(BAKERY, t.Refund(pk(ALICE), CAMPAIGN, 200, "retour"))
    _, report = _report(chain)

    # The returned payout is no redemption: only a redemption after the return counts,
    # round 1 (paid by a holder), aged from the payment (the units never left the shop).
    redeemed = 700 if then == "redeem" else 0
    hops = _cells(report.multiplier.hops)
    assert hops["1"] == (redeemed, 1 if redeemed else 0)
    assert report.multiplier.hops.total.value == redeemed
    delays = _cells(report.timing.redemption)
    assert delays["1d-7d"] == (redeemed, 1 if redeemed else 0)
    assert again_ms - paid_ms >= DAY_MS
    assert report.timing.redemption.total.value == redeemed

    # A transfer of returned units is round-2 money from the campaign, like the first one.
    assert report.multiplier.round2_cents == 300 + (400 if then == "transfer" else 0)
    [row] = report.campaigns.items
    refunded = 200 if then == "refund" else 0
    assert (row.spent_cents, row.refunded_cents) == (1_000, refunded)
    assert row.unspent_cents == 9_000 + refunded


def test_a_returned_auto_redeemed_payment_comes_back_as_round_one_money() -> None:
    chain = _setup()
    world, namur = chain.world, chain.world.namur
    payout = chain.do(BOB, t.Pay(CAMPAIGN, pk(BRASSERIE), 800, "repas")).tx_id
    index, report = _report(chain)
    assert _cells(report.multiplier.hops)["1"] == (800, 1)
    assert index.tracker.pending_cents(pk(namur)) == 800

    chain.do(world.bank, t.ReturnPayout(payout, "AC01", "RTN-2"))
    index, report = _report(chain)
    assert report.multiplier.hops.total.value == 0
    assert index.tracker.lot_cents(pk(BRASSERIE), pk(namur)) == 800

    chain.do(BRASSERIE, t.Transfer(pk(SUPPLIER), pk(namur), 500, "vin"), step_ms=HOUR_MS)
    chain.do(BRASSERIE, t.Redeem(pk(namur), 300))
    chain.do(SUPPLIER, t.Redeem(pk(namur), 500))
    _, report = _report(chain)
    assert report.multiplier.round2_cents == 500
    hops = _cells(report.multiplier.hops)
    assert (hops["1"], hops["2"]) == ((300, 1), (500, 1))


def test_a_settled_payout_leaves_the_pending_lots() -> None:
    chain = _setup()
    world, namur = chain.world, chain.world.namur
    chain.do(ALICE, t.Pay(CAMPAIGN, pk(BAKERY), 1_000, "pain"))
    payout = chain.do(BAKERY, t.Redeem(pk(namur), 1_000)).tx_id
    index, _ = _report(chain)
    assert index.tracker.pending_cents(pk(namur)) == 1_000
    chain.do(world.bank, t.Settle((t.Settlement(payout, "VIR-1"),)))
    index, report = _report(chain)
    assert index.tracker.pending == {}
    assert _cells(report.multiplier.hops)["1"] == (1_000, 1)
