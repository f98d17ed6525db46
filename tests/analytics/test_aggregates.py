"""The published aggregates equal a direct computation over the simulated history.

The direct computation below is written independently of ``node.analytics``:
plain dictionaries over the committed transactions and their block times. It
relies on the town's shape for the rounds: shops receive only from holders,
the wholesaler only from shops, the breweries only from the wholesaler, so
round 2 is what shops transfer and round 3 what the wholesaler transfers.
With k = 1 nothing is hidden, so every raw figure can be compared.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from node.analytics.index import AnalyticsIndex
from node.analytics.report import Report
from node.api.routes.analytics import INDEX_KEY
from node.ledger import tx as t
from tests.analytics.conftest import CAMPAIGN, History
from tests.api.harness import NAMUR

BRUSSELS = ZoneInfo("Europe/Brussels")
NAMUR_ZONES = ("NAM-1", "NAM-2")


def index_of(history: History) -> AnalyticsIndex:
    return history.node.app[INDEX_KEY]


def open_report(history: History) -> Report:
    return index_of(history).report(NAMUR.public_key, 1)


def direct(history: History) -> dict[str, dict[object, tuple[int, int]]]:
    """name -> key -> (value, distinct contributors), straight from the transactions."""
    zone_of: dict[bytes, str] = {}
    category_of: dict[bytes, str] = {}
    auto: dict[bytes, bool] = {}
    home: dict[bytes, str] = {}
    sums: dict[str, dict[object, int]] = defaultdict(lambda: defaultdict(int))
    who: dict[str, dict[object, set[bytes]]] = defaultdict(lambda: defaultdict(set))

    def add(name: str, key: object, value: int, person: bytes) -> None:
        sums[name][key] += value
        who[name][key].add(person)

    for when, signed in history.committed:
        p, sender = signed.tx.payload, signed.tx.sender
        if isinstance(p, t.RegisterMerchant):
            zone_of[p.merchant], category_of[p.merchant] = p.zone, p.category[:2]
            auto[p.merchant] = p.auto_redeem
        elif isinstance(p, t.Allocate):
            for a in p.allocations:
                home.setdefault(a.holder, a.zone)
                add("allocated", "all", a.amount_cents, a.holder)
        elif isinstance(p, t.Pay):
            local = datetime.fromtimestamp(when / 1000, UTC).astimezone(BRUSSELS)
            add("zone", zone_of[p.merchant], p.amount_cents, sender)
            add("category", category_of[p.merchant], p.amount_cents, sender)
            add("hour", (local.weekday(), local.hour), p.amount_cents, sender)
            add("day", local.date().isoformat(), p.amount_cents, sender)
            add("flow", (home[sender], zone_of[p.merchant]), p.amount_cents, sender)
            add("spent", "all", p.amount_cents, sender)
            if auto[p.merchant]:
                add("hops", "1", p.amount_cents, p.merchant)
        elif isinstance(p, t.Transfer):
            add("mflow", (category_of[sender], category_of[p.to]), p.amount_cents, sender)
            shop = category_of[sender] != "46"
            if zone_of[p.to] not in NAMUR_ZONES:
                add("leaked", "all", p.amount_cents, sender)
            else:
                add("round2" if shop else "round3", "all", p.amount_cents, sender)
        elif isinstance(p, t.Redeem):
            hops = {"46": "2", "11": "3"}.get(category_of[sender], "1")
            add("hops", hops, p.amount_cents, sender)
    return {
        name: {k: (v, len(who[name][k])) for k, v in table.items()} for name, table in sums.items()
    }


def test_spending_by_zone_category_hour_and_day(history: History) -> None:
    report, expected = open_report(history), direct(history)
    zones = dict(zip(report.merchant_zones.labels, report.merchant_zones.cells, strict=True))
    for zone, (cents, holders) in expected["zone"].items():
        assert (zones[zone].value, zones[zone].contributors) == (cents, holders)
    categories = dict(zip(report.categories.labels, report.categories.cells, strict=True))
    assert {k: (c.value, c.contributors) for k, c in categories.items()} == expected["category"]
    for i, row in enumerate(report.hours.cells):
        for j, cell in enumerate(row):
            assert (cell.value, cell.contributors) == expected["hour"].get((i, j), (0, 0))
    days = dict(zip(report.daily.labels, report.daily.cells, strict=True))
    for day, cell in days.items():
        assert (cell.value, cell.contributors) == expected["day"].get(day, (0, 0))
    assert set(expected["day"]) <= set(days)
    spent = expected["spent"]["all"]
    for total in (report.merchant_zones.total, report.hours.total, report.daily.total,
                  report.categories.total, report.flows.total):  # fmt: skip
        assert (total.value, total.contributors) == spent


def test_zone_to_zone_and_merchant_flows(history: History) -> None:
    report, expected = open_report(history), direct(history)
    flows = report.flows
    for i, row in enumerate(flows.rows):
        for j, column in enumerate(flows.columns):
            got = flows.cells[i][j]
            assert (got.value, got.contributors) == expected["flow"].get((row, column), (0, 0))
    m = report.merchant_flows
    got = {
        (row, column): (m.cells[i][j].value, m.cells[i][j].contributors)
        for i, row in enumerate(m.rows)
        for j, column in enumerate(m.columns)
        if m.cells[i][j].contributors
    }
    assert got == expected["mflow"]


def test_local_multiplier_and_hops(history: History) -> None:
    m, expected = open_report(history).multiplier, direct(history)
    allocated = expected["allocated"]["all"][0]
    round1 = expected["spent"]["all"][0]
    round2, round3 = expected["round2"]["all"][0], expected["round3"]["all"][0]
    assert (m.allocated_cents, m.round1_cents, m.round2_cents, m.round3_cents) == (
        allocated, round1, round2, round3,
    )  # fmt: skip
    assert m.leaked_cents == expected["leaked"]["all"][0] == 100
    assert m.round1_per_euro_milli == round1 * 1000 // allocated
    assert m.lm3_milli == (round1 + round2 + round3) * 1000 // round1
    assert m.lm3_milli is not None and 1000 < m.lm3_milli < 2000
    hops = dict(zip(m.hops.labels, m.hops.cells, strict=True))
    for label, (cents, merchants) in expected["hops"].items():
        assert (hops[label].value, hops[label].contributors) == (cents, merchants)


def test_campaign_unspent_and_never_used(history: History) -> None:
    (row,) = open_report(history).campaigns.items
    spenders = {s.tx.sender for _, s in history.committed if isinstance(s.tx.payload, t.Pay)}
    holders = {
        a.holder for _, s in history.committed if isinstance(s.tx.payload, t.Allocate)
        for a in s.tx.payload.allocations
    }  # fmt: skip
    campaign = history.node.get(f"/v1/campaigns/{CAMPAIGN}").json()
    assert row.holders == len(holders)
    assert row.never_used_holders == len(holders - spenders) > 0
    assert row.allocated_cents == campaign["allocated_cents"]
    assert row.spent_cents == campaign["spent_cents"]
    assert row.refunded_cents == campaign["refunded_cents"] == 50
    assert row.unspent_cents == campaign["outstanding_cents"]


def test_merchant_lots_match_ledger_balances(history: History) -> None:
    tracker = index_of(history).tracker
    for merchant in tracker.merchants:
        account = history.node.get(f"/v1/accounts/{merchant.hex()}").json()
        balances = account.get("balances") or []
        assert isinstance(balances, list)
        on_ledger = sum(
            int(b["cents"]) for b in balances if b.get("issuer") == NAMUR.public_key.hex()
        )
        assert tracker.lot_cents(merchant, NAMUR.public_key) == on_ledger
